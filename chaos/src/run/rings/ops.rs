//! What a ring user does: each `RingOp` against its handle and its model
//! (`super`), the hostile user's garbage, and the check of a wait's reply.

use super::*;

fn empty() -> Vec<u8> {
    let mut b = vec![0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).expect("room");
    b
}

/// A wait the caller keeps pending: its token, flags, and its handle's ring
/// key and epoch when it went.
pub(in crate::run) type PendingWait = (IoToken, u16, usize, u64);

/// Runs one ring action on handle `h` (`shared` with other threads; `mac`
/// is its adapter's address). Returns a wait left pending.
pub(in crate::run) fn ring_action(
    c: &Ctx<'_>,
    h: &Arc<Handle>,
    shared: bool,
    mac: [u8; 6],
    op: &RingOp,
) -> Option<PendingWait> {
    let user = user_of(c, h);
    refresh(c, &user);
    match op {
        RingOp::Attach { frame_size, frames, fill, rx, tx, completion, damage } => {
            attach(c, h, shared, &user, ring_setup(*frame_size, *frames, *fill, *rx, *tx, *completion), *damage);
        }
        RingOp::Fill { frames, invalid } => {
            let mut g = lock(&user);
            if let Some(a) = g.active.as_mut().filter(|a| !a.detach && !a.cancel) {
                fill(c, a, *frames as usize, *invalid as usize);
            }
        }
        RingOp::Tx { frames, len, dst, garbage, kick: k } => {
            {
                let mut g = lock(&user);
                let a = g.active.as_mut().filter(|a| !a.detach && !a.cancel)?;
                tx(c, a, mac, *frames as usize, *len as usize, *dst, *garbage as usize);
            }
            if *k {
                kick(c, h, &user);
            }
        }
        RingOp::Kick => kick(c, h, &user),
        RingOp::Poll => {
            // As an AF_XDP loop does: what came in goes back on the fill
            // ring.
            if let Some(a) = lock(&user).active.as_mut() {
                let before = a.rx;
                a.drain(c);
                if !a.detach && !a.cancel {
                    fill(c, a, (a.rx - before) as usize, 0);
                }
            }
        }
        RingOp::Wait { flags, .. } => {
            let mut req = vec![0u8; RingWaitRequest::LEN];
            RingWaitRequest::emit(*flags, &mut req).ok()?;
            let key = Ctx::ring_key(h);
            let epoch = c.ring_epoch(key);
            let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &req, RingReply::LEN).ok()?;
            return Some((t, *flags, key, epoch));
        }
        RingOp::Detach => detach(c, h, shared, &user, &empty(), 0),
        RingOp::CancelAttach => {
            let t = lock(&user).active.as_mut().map(|a| {
                a.cancel = true;
                a.token.clone()
            });
            if let Some(t) = t {
                // As a detach: the cancel routine detaches.
                c.ring_event(Ctx::ring_key(h), || t.cancel());
                let mut g = lock(&user);
                if let Some(a) = g.active.take() {
                    g.draining.push(a);
                }
            }
        }
        RingOp::Scribble { at, value } => {
            if let Some(a) = lock(&user).active.as_mut() {
                scribble(a, *at, *value);
            }
        }
    }
    None
}

/// `IOCTL_RAWNIC_RING_DETACH` of `input` (well-formed) with `out` bytes of
/// output, and what the ring user's model makes of it.
fn detach(c: &Ctx<'_>, h: &Arc<Handle>, shared: bool, user: &Arc<Mutex<RingUser>>, input: &[u8], out: usize) {
    let had = {
        let mut g = lock(user);
        g.detaches += 1;
        g.active.as_mut().map(|a| {
            let fresh = !a.detach && !a.cancel;
            a.detach = true;
            fresh
        })
    };
    let r = c.ring_event(Ctx::ring_key(h), || h.ioctl(IOCTL_RAWNIC_RING_DETACH, input, out));
    c.completions.fetch_add(1, Ordering::Relaxed);
    let st = NtStatus(r.status);
    // (A damaged one's output buffer too, when some allocation was refused;
    // and any IRP once `Schedule::fail_nth` refused one, as low resources.)
    let short = c.sched.lowres > 0 || c.sim.allocations_refused() > 0 || (out != 0 && c.sim.alloc_failures() > 0);
    if st == NtStatus::INSUFFICIENT_RESOURCES && short {
        // The I/O manager had no IRP for it (low resources): the
        // driver never saw the detach, which cannot fail for memory
        // once it does. Nothing changed.
        let mut g = lock(user);
        if let (Some(a), Some(true)) = (g.active.as_mut(), had) {
            a.detach = false;
        }
        return;
    }
    if !shared && st == NtStatus::SUCCESS && had != Some(true) {
        c.problem(format!("rings: a detach succeeded with nothing attached (model: {had:?})"));
    }
    if !shared && had == Some(true) && st != NtStatus::SUCCESS {
        c.problem(format!("rings: a detach of an attached UMEM failed: {st:?}"));
    }
    // The attach it ended goes on draining.
    let mut g = lock(user);
    if let Some(a) = g.active.take() {
        g.draining.push(a);
    }
}

/// The status a damaged request that does not parse must complete with:
/// `want`, its error's, which the driver reads before anything else (or
/// INSUFFICIENT_RESOURCES when memory was short: the I/O manager's IRP;
/// or INVALID_HANDLE from the I/O manager, when the handle is `shared`
/// with a thread that may have closed it).
fn refused_as(c: &Ctx<'_>, shared: bool, what: &str, want: NtStatus, st: NtStatus) {
    if st != want && !c.refusal_excused(shared, st) {
        c.problem(format!("rings: a damaged {what} that does not parse completed with {st:?}, not {want:?}"));
    }
}

/// The ring user of handle `h` if it has one (a damaged request of a
/// handle that never attached makes none, so the end closes it or keeps
/// it open as before).
fn user_if_any(c: &Ctx<'_>, h: &Arc<Handle>) -> Option<Arc<Mutex<RingUser>>> {
    let user = lock(&c.rings).iter().find(|(w, _)| is(w, h)).map(|(_, u)| u.clone())?;
    refresh(c, &user);
    Some(user)
}

/// Before a ring user's next request: the attaches it ended that are done
/// reaped, and the memory of its active one as the user last wrote it.
fn refresh(c: &Ctx<'_>, user: &Mutex<RingUser>) {
    let mut g = lock(user);
    reap(c, &mut g);
    if let Some(a) = g.active.as_mut() {
        a.restore_now();
    }
}

/// A damaged `IOCTL_RAWNIC_RING_DETACH` (`Template::RingDetach` with its
/// edits), `out` bytes of output: one that does not parse is refused with
/// its error's status and changes nothing; one that does is the ring
/// user's detach, judged as one.
pub(in crate::run) fn damaged_detach(c: &Ctx<'_>, h: &Arc<Handle>, shared: bool, input: &[u8], out: usize) {
    match EmptyRequest::parse(input) {
        Err(e) => {
            let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, input, out);
            c.completions.fetch_add(1, Ordering::Relaxed);
            refused_as(c, shared, "detach", e.status(), NtStatus(r.status));
        }
        Ok(()) => {
            let user = user_if_any(c, h).unwrap_or_default();
            detach(c, h, shared, &user, input, out);
        }
    }
}

/// A damaged `IOCTL_RAWNIC_RING_KICK` (`Template::RingKick` with its
/// edits), `out` bytes of output: one that does not parse is refused with
/// its error's status; one that does is a kick, whose frames count as
/// sent.
pub(in crate::run) fn damaged_kick(c: &Ctx<'_>, h: &Arc<Handle>, shared: bool, input: &[u8], out: usize) {
    let user = user_if_any(c, h);
    let r = h.ioctl(IOCTL_RAWNIC_RING_KICK, input, out);
    c.completions.fetch_add(1, Ordering::Relaxed);
    let st = NtStatus(r.status);
    match EmptyRequest::parse(input) {
        Err(e) => refused_as(c, shared, "kick", e.status(), st),
        Ok(()) if st == NtStatus::SUCCESS => match RingReply::parse(&r.data) {
            Ok(rep) => c.sent(h.file(), rep.sent.into()),
            Err(e) if out == RingReply::LEN => {
                c.problem(format!("rings: a kick's reply is malformed ({} bytes): {e:?}", r.data.len()))
            }
            Err(_) => {}
        },
        Ok(()) if r.status == ndis_sys::STATUS_PENDING => {
            c.problem("rings: a kick completed with STATUS_PENDING".into())
        }
        Ok(()) => {}
    }
    if let Some(u) = user {
        if let Some(a) = lock(&u).active.as_mut() {
            a.drain(c);
        }
    }
}

/// A damaged `IOCTL_RAWNIC_RING_WAIT` that does not parse: refused with
/// its error's status, in its dispatch routine (`t` its request).
pub(in crate::run) fn damaged_wait_refused(c: &Ctx<'_>, shared: bool, t: &IoToken, want: NtStatus) {
    match t.wait_for(c.watchdog) {
        Some(r) => {
            c.completions.fetch_add(1, Ordering::Relaxed);
            refused_as(c, shared, "wait", want, NtStatus(r.status));
        }
        None => {
            c.problem(format!("rings: a damaged wait that does not parse (IRP {:#x}) stayed pending", t.irp()));
            t.cancel();
        }
    }
}

fn attach(c: &Ctx<'_>, h: &Arc<Handle>, shared: bool, user: &Arc<Mutex<RingUser>>, s: RingSetup, damage: AttachDamage) {
    let mut input = vec![0u8; RingSetup::LEN];
    if s.emit(&mut input).is_err() {
        return;
    }
    let base = RingLayout::new(&s).map_or(PAGE, |l| l.total);
    let len = match damage {
        AttachDamage::None => base,
        AttachDamage::Setup(e) => {
            crate::r#gen::apply_edits(&mut input, &[e]);
            base
        }
        AttachDamage::Region(p) => base.saturating_add_signed(p as isize * PAGE as isize).max(PAGE),
    };
    attach_input(c, h, shared, user, input, len, &damage);
}

/// A damaged `IOCTL_RAWNIC_RING_ATTACH` (`Template::RingAttach` with its
/// edits): `input` the setup as edited, `len` the UMEM's length. Judged as
/// the ring user's own: refused with exactly the status its flaw calls for
/// when the setup does not parse or its layout is not `len` bytes, and a
/// good attach in the ring user's model when it is (the edits left it
/// well-formed), to detach, drain and finish as any.
pub(in crate::run) fn damaged_attach(c: &Ctx<'_>, h: &Arc<Handle>, shared: bool, input: Vec<u8>, len: usize) {
    let user = user_of(c, h);
    refresh(c, &user);
    attach_input(c, h, shared, &user, input, len, &"a damaged request");
}

/// Sends the attach of `input` with a UMEM of `len` bytes (`damage`: how
/// it was spoiled, for the reports) and judges it.
fn attach_input(
    c: &Ctx<'_>,
    h: &Arc<Handle>,
    shared: bool,
    user: &Arc<Mutex<RingUser>>,
    input: Vec<u8>,
    len: usize,
    damage: &dyn std::fmt::Debug,
) {
    // What the driver must make of it.
    let layout = RingSetup::parse(&input).ok().and_then(|s| RingLayout::new(&s).ok()).filter(|l| l.total == len);
    let Ok(m) = UserRegion::new(len) else { return };
    let (detaches, epoch) = (lock(user).detaches, c.ring_epoch(Ctx::ring_key(h)));
    // (For a handle whose making was not noted: the probe's.)
    c.ring_handle_made(Ctx::ring_key(h));
    let Ok(t) = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone()) else { return };
    c.ring_attaches.fetch_add(1, Ordering::Relaxed);
    let Some(l) = layout else {
        match t.wait_for(c.watchdog) {
            None => {
                c.problem(format!("rings: a spoiled attach ({damage:?}) stayed pending"));
                t.cancel();
                let _ = t.wait_for(c.watchdog);
            }
            Some(r) => {
                let st = NtStatus(r.status);
                let short = c.sim.alloc_failures() > 0;
                let may = spoiled_attach_statuses(&input, len, t.may_be_cancelled(), short);
                if !may.contains(&st) {
                    c.problem(format!(
                        "rings: a spoiled attach ({damage:?}, {len} bytes) completed with {st:?}, not one of {may:?}"
                    ));
                }
            }
        }
        return;
    };
    if let Some(r) = t.try_result() {
        // Refused at once: no binding (never opened, closed, or its
        // adapter gone), one UMEM already, or low resources (the binding's
        // budget of locked memory, 64 MiB, is far above what a schedule
        // attaches). A good request (the layout's length, on a page) is
        // never refused as a bad one, nor for want of memory when none
        // was refused: a driver that refuses every attach would pass every
        // other check here.
        let st = NtStatus(r.status);
        let short = c.sim.alloc_failures() > 0;
        let why = [NtStatus::INVALID_DEVICE_STATE, NtStatus::DEVICE_REMOVED, NtStatus::CANCELLED];
        if (!shared && (st == NtStatus::SUCCESS || (st == NtStatus::CANCELLED && !t.may_be_cancelled())))
            || (st != NtStatus::SUCCESS && !why.contains(&st) && !(short && st == NtStatus::INSUFFICIENT_RESOURCES))
        {
            c.problem(format!("rings: a good attach ({} bytes, on a page) completed at once with {st:?}", l.total));
        }
        return;
    }
    let mut g = lock(user);
    if let Some(old) = g.active.take() {
        // (Another thread's detach may have ended it unseen.)
        if !shared && !old.detach && !old.cancel && old.token.try_result().is_none() {
            c.problem("rings: a second UMEM was attached to a handle while the first was".into());
        }
        g.draining.push(old);
    }
    g.active = Some(Att::new(Ctx::ring_key(h), m, l, t, (detaches, epoch)));
}

/// What an attach whose setup or buffer is spoiled may complete with
/// (`proto::ioctl`, `RingSetup::parse` and the driver's order of checks):
/// a setup that does not parse, exactly the status of its error (it is
/// read first, whatever the handle's state); a setup that parses, with a
/// buffer of `len` bytes other than its layout's, `BUFFER_TOO_SMALL` when
/// shorter and `INFO_LENGTH_MISMATCH` when longer, unless the handle has no
/// binding (`INVALID_DEVICE_STATE`, `DEVICE_REMOVED`), has rings already
/// (`INVALID_DEVICE_STATE`), or the binding's budget of locked memory is
/// spent (`INSUFFICIENT_RESOURCES`, for a large layout only: a schedule's
/// other UMEMs are a few MiB). `CANCELLED` when the harness may have
/// cancelled it; `INSUFFICIENT_RESOURCES` too when some allocation was
/// refused (`short`: the I/O manager's IRP or MDL for the request).
fn spoiled_attach_statuses(input: &[u8], len: usize, cancelled: bool, short: bool) -> Vec<NtStatus> {
    let mut may = match RingSetup::parse(input).map(|s| RingLayout::new(&s).map(|l| l.total)) {
        Err(e) => vec![e.status()],
        Ok(Err(e)) => vec![e.status()],
        Ok(Ok(total)) => {
            let region = if len < total { NtStatus::BUFFER_TOO_SMALL } else { NtStatus::INFO_LENGTH_MISMATCH };
            let mut v = vec![region, NtStatus::INVALID_DEVICE_STATE, NtStatus::DEVICE_REMOVED];
            if total > 8 << 20 {
                v.push(NtStatus::INSUFFICIENT_RESOURCES);
            }
            v
        }
    };
    if short && !may.contains(&NtStatus::INSUFFICIENT_RESOURCES) {
        may.push(NtStatus::INSUFFICIENT_RESOURCES);
    }
    if cancelled {
        may.push(NtStatus::CANCELLED);
    }
    may
}

fn fill(c: &Ctx<'_>, a: &mut Att, frames: usize, invalid: usize) {
    a.drain(c);
    let size = a.l.fill.size;
    let used = a.fill_prod.wrapping_sub(a.m.load_u32(a.l.fill.consumer()));
    let room = size.saturating_sub(used) as usize;
    let (mut bad_left, mut good_left) = (invalid, frames);
    for k in 0..(frames + invalid).min(room) {
        let bad = bad_left > 0 && (good_left == 0 || k % 3 == 1);
        if bad {
            bad_left -= 1;
        } else {
            good_left -= 1;
        }
        let (addr, frame) = if bad {
            (a.bad_fill(), None)
        } else {
            match a.take_mine(c) {
                Some(i) => (a.frame_addr(i), Some(i)),
                None => break,
            }
        };
        if let Some(i) = frame {
            a.frames[i] = Frame::Fill;
        }
        a.m.store_u64(a.l.fill.entry_at(a.fill_prod), addr);
        a.fill.push_back(Entry { idx: a.fill_prod, addr, frame, len: 0, seq: None, back: false });
        a.fill_prod = a.fill_prod.wrapping_add(1);
    }
    a.m.store_u32(a.l.fill.producer(), a.fill_prod);
}

#[allow(clippy::too_many_arguments)]
fn tx(c: &Ctx<'_>, a: &mut Att, mac: [u8; 6], frames: usize, len: usize, dst: Dst, garbage: usize) {
    a.drain(c);
    let size = a.l.tx.size;
    let used = a.tx_prod.wrapping_sub(a.m.load_u32(a.l.tx.consumer()));
    let room = size.saturating_sub(used) as usize;
    // A tainted user gives only descriptors the driver must refuse.
    let (frames, garbage) = if a.tainted.is_some() { (0, frames + garbage) } else { (frames, garbage) };
    let (mut bad_left, mut good_left) = (garbage, frames);
    for k in 0..(frames + garbage).min(room) {
        let bad = bad_left > 0 && (good_left == 0 || k % 3 == 1);
        if bad {
            bad_left -= 1;
        } else {
            good_left -= 1;
        }
        let (d, frame) = match (!bad).then(|| a.take_mine(c)).flatten() {
            Some(i) => {
                a.seq += 1;
                // Mostly near the frame's start; one in four ending at the
                // frame's very end, one in four from its upper half, so a
                // wrong mask or shift in the kick's walk (one for each frame
                // size) sends other bytes, or none, and is seen.
                let want = len.max(60).min(a.fs());
                let off = match a.seq % 4 {
                    0 => a.fs() - want,
                    1 => (a.fs() / 2 + 2 * (a.seq as usize % 32)).min(a.fs() - want),
                    _ => 2 * (a.seq as usize % 32),
                };
                let n = want.min(a.fs() - off);
                let seq = c.next_seq();
                let f = frames::build(dst, mac, seq, n);
                c.wire.frames(Some(a.token.file()), dst, [(f.as_slice(), None)]);
                let addr = a.frame_addr(i) + off as u64;
                a.m.write(addr as usize, &f);
                a.frames[i] = Frame::Tx;
                (TxDesc { addr, len: f.len() as u32, flags: 0 }, Some((i, seq)))
            }
            None => (a.bad_tx(k as u64), None),
        };
        a.m.write(a.l.tx.entry_at(a.tx_prod), &d.to_bytes());
        let (frame, seq) = (frame.map(|(i, _)| i), frame.map(|(_, s)| s));
        a.tx.push_back(Entry { idx: a.tx_prod, addr: d.addr, frame, len: d.len, seq, back: false });
        a.tx_prod = a.tx_prod.wrapping_add(1);
    }
    a.m.store_u32(a.l.tx.producer(), a.tx_prod);
}

fn kick(c: &Ctx<'_>, h: &Arc<Handle>, user: &Arc<Mutex<RingUser>>) {
    let r = h.ioctl(IOCTL_RAWNIC_RING_KICK, &empty(), RingReply::LEN);
    c.completions.fetch_add(1, Ordering::Relaxed);
    if r.status == 0 {
        match RingReply::parse(&r.data) {
            Ok(rep) => c.sent(h.file(), rep.sent.into()),
            Err(_) => c.problem(format!("rings: a kick's reply is malformed ({} bytes)", r.data.len())),
        }
    }
    if let Some(a) = lock(user).active.as_mut() {
        a.drain(c);
    }
}

/// Garbage into the UMEM (see `Scribble`).
fn scribble(a: &mut Att, at: Scribble, value: u64) {
    let l = a.l;
    let garbage = value.rotate_left(29) ^ 0x5A5A_5A5A_0000_0000;
    match at {
        Scribble::Control => {
            let off = 8 * (value % 16) as usize;
            a.m.store_u64(off, garbage);
            a.scribbled.push((off, garbage));
            a.inexact = true;
        }
        Scribble::DriverIndex => {
            let off =
                [l.fill.consumer(), l.rx.producer(), l.tx.consumer(), l.completion.producer()][value as usize % 4];
            let v = a.m.load_u32(off);
            a.m.store_u32(off, garbage as u32);
            if a.m.load_u32(off) == garbage as u32 {
                a.m.store_u32(off, v);
            }
            a.inexact = true;
        }
        Scribble::FarIndex => {
            let far = |size: u32| size + 1 + ((value >> 8) % (1 << 30)) as u32;
            let (off, g) = match value % 4 {
                0 => (l.fill.producer(), a.fill_prod.wrapping_add(far(l.fill.size))),
                1 => (l.tx.producer(), a.tx_prod.wrapping_add(far(l.tx.size))),
                2 => (l.rx.consumer(), a.rx_cons.wrapping_sub(far(l.rx.size))),
                _ => (l.completion.consumer(), a.comp_cons.wrapping_sub(far(l.completion.size))),
            };
            a.m.store_u32(off, g);
            a.restore = Some(off);
        }
        Scribble::NearIndex => {
            let near = |size: u32| 1 + ((value >> 8) % size as u64) as u32;
            match value % 3 {
                // Stale fill entries may name any frame: only with no frame
                // to send about (none goes out after).
                0 if !a.tx_outstanding() => {
                    a.fill_prod = a.fill_prod.wrapping_add(near(l.fill.size));
                    a.m.store_u32(l.fill.producer(), a.fill_prod);
                }
                0 => return scribble(a, Scribble::FarIndex, value & !3),
                1 => {
                    a.rx_cons = a.rx_cons.wrapping_add(near(l.rx.size));
                    a.m.store_u32(l.rx.consumer(), a.rx_cons);
                }
                _ => {
                    a.comp_cons = a.comp_cons.wrapping_add(near(l.completion.size));
                    a.m.store_u32(l.completion.consumer(), a.comp_cons);
                }
            }
            a.tainted = Some("an index within the ring size");
        }
        Scribble::Descriptor => {
            let ring = [l.fill, l.rx, l.tx, l.completion][value as usize % 4];
            let slot = ((value >> 8) % ring.size as u64) as u32;
            let live = |log: &VecDeque<Entry>, cons: u32| {
                log.iter().any(|e| !consumed(e.idx, cons) && (e.idx & (ring.size - 1)) == slot && !e.back)
            };
            let off = ring.entry_at(slot);
            match value % 4 {
                0 => {
                    let live = live(&a.fill, a.m.load_u32(l.fill.consumer()));
                    if live && a.tx_outstanding() {
                        return;
                    }
                    let v = if value & 0x100_0000 != 0 {
                        a.frame_addr((garbage as usize >> 3) % a.frames.len())
                    } else {
                        garbage
                    };
                    a.m.store_u64(off, v);
                    if live {
                        a.tainted = Some("a live fill descriptor");
                    }
                }
                2 => {
                    if live(&a.tx, a.m.load_u32(l.tx.consumer())) {
                        // Refused whatever else it says: the flags first.
                        a.m.write(off + 12, &(1 | garbage as u32).to_le_bytes());
                        a.m.write(off, &garbage.to_le_bytes());
                        a.tainted = Some("a live tx descriptor");
                    } else {
                        let d = TxDesc { addr: garbage, len: (garbage >> 3) as u32, flags: (garbage >> 35) as u32 };
                        a.m.write(off, &d.to_bytes());
                    }
                }
                _ => {
                    a.m.write(off, &garbage.to_le_bytes());
                    a.tainted = Some("a descriptor the driver wrote");
                }
            }
        }
    }
}

/// Checks a completed `IOCTL_RAWNIC_RING_WAIT` for `flags`, sent when its
/// handle's (`key`) ring epoch was `epoch`.
pub(in crate::run) fn check_wait(c: &Ctx<'_>, flags: u16, key: usize, epoch: u64, t: &IoToken, r: &IoResult) {
    let st = NtStatus(r.status);
    if st == NtStatus::SUCCESS {
        match RingReply::parse(&r.data) {
            Ok(rep) if rep.ready & flags != 0 => {}
            Ok(rep) => {
                c.problem(format!("rings: a wait for {flags:#x} completed with nothing it waits for ready ({rep:?})"))
            }
            Err(e) => c.problem(format!("rings: a wait's reply is malformed: {e:?}")),
        }
    } else if st == NtStatus::CANCELLED {
        // The busy count first: a detach that ends between the two loads
        // has moved the epoch.
        let busy = c.ring_busy[key].load(Ordering::Acquire) != 0;
        if !t.may_be_cancelled() && !busy && c.ring_epoch(key) == epoch {
            c.problem(
                "rings: a wait completed with STATUS_CANCELLED, but nobody cancelled, detached or closed its handle"
                    .into(),
            );
        }
    } else if st == NtStatus::DEVICE_REMOVED {
        // An unbind fails the waits of the handles it orphans: of rings
        // attached before it, and of a handle with none.
        if !c.ring_unbound_since_made(key) {
            c.problem(
                "rings: a wait completed with STATUS_DEVICE_REMOVED, but no adapter unbound since its handle was made"
                    .into(),
            );
        }
    } else if ![
        NtStatus::INVALID_PARAMETER,
        NtStatus::INVALID_DEVICE_STATE,
        NtStatus::INSUFFICIENT_RESOURCES,
        NtStatus::BUFFER_TOO_SMALL,
    ]
    .contains(&st)
    {
        c.problem(format!("rings: a wait for {flags:#x} completed with {st:?}"));
    }
}
