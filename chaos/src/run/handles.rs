//! The handle threads: user-mode programs with handles to `\\.\RawNic`,
//! their own and shared ones, whose every reply is checked (`replies.rs`).

use super::rings::{self, RingUser};
use super::{Ctx, lock};
use crate::frames;
use crate::schedule::*;
use ndisim::{Handle, IoToken};
use rawnic_proto::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod queued;
mod replies;
mod requests;
pub(super) mod stats;
pub(super) use queued::read_queued;
use replies::check_reply;
use requests::{late_ended, late_request, wait_or_cancel};

/// What a pending request was, to check its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Event,
    /// `epoch`: `Ctx::pnp_epoch` when it was sent.
    /// `join`: the groups of a multicast-list set of `gen/joins.rs`, and
    /// its number among the handle's joins.
    /// `limit`: the bytes of the set's value, or the room for a query's
    /// answer; no reply may say the adapter read or wrote more.
    /// `oid`: the OID asked for (a query's answer is judged by
    /// `oid_answers.rs`).
    Oid {
        oid: u32,
        query: bool,
        epoch: u64,
        join: Option<(u8, u64)>,
        limit: u32,
    },
    Binds,
    /// `IOCTL_RAWNIC_RING_WAIT` for `flags`, sent when its handle's
    /// (`key`) ring epoch was `epoch`.
    RingWait {
        flags: u16,
        key: usize,
        epoch: u64,
    },
    /// A ring wait that reached the driver after its handle's cleanup.
    LateWait,
    Other,
}

impl Kind {
    /// A wait on something only the driver ends (no NDIS operation, no
    /// other request): one whose handle is closed must end without a
    /// cancel.
    fn waits_on_the_driver(&self) -> bool {
        matches!(self, Kind::Read | Kind::Event | Kind::Binds | Kind::RingWait { .. } | Kind::LateWait)
    }
}

struct Slot {
    /// Shared with the other threads for a shared slot; this thread's
    /// alone otherwise.
    handle: Option<Arc<Handle>>,
    /// The adapter it was opened on.
    adapter: Option<usize>,
    /// An OPEN the explorer did not make as its own (a damaged or raw
    /// one, or one whose reply was malformed) succeeded on it: it is open,
    /// on a binding the explorer does not follow.
    opened_unseen: bool,
    tokens: Vec<(IoToken, Kind)>,
}

impl Slot {
    /// Whether its handle was opened.
    fn opened(&self) -> bool {
        self.adapter.is_some() || self.opened_unseen
    }

    /// Its handle is gone (closed, or given up).
    fn closed(&mut self) {
        self.adapter = None;
        self.opened_unseen = false;
    }

    /// The reply to a request the explorer follows no further (a raw or
    /// damaged one, code `code`) on its handle, checked if it came soon,
    /// else kept to be checked when it does. An OPEN completes in its
    /// dispatch routine: it is waited for, so that whether it opened the
    /// handle is known.
    fn untracked_reply(&mut self, c: &Ctx<'_>, t: IoToken, code: u32) {
        let ms = if code == IOCTL_RAWNIC_OPEN { c.watchdog.as_millis() as u32 } else { 5 };
        match wait_or_cancel(&t, ms) {
            Some(r) => {
                self.opened_unseen |= code == IOCTL_RAWNIC_OPEN && r.status == 0;
                check_reply(c, Kind::Other, &t, &r)
            }
            None => self.tokens.push((t, Kind::Other)),
        }
    }
}

pub(super) fn handle_actor(c: &Ctx<'_>, thread: usize) {
    let mut slots: Vec<Slot> =
        (0..SLOTS).map(|_| Slot { handle: None, adapter: None, opened_unseen: false, tokens: Vec::new() }).collect();
    // Requests of closed handles still have to complete.
    let mut orphans: Vec<(IoToken, Kind)> = Vec::new();
    // And the attaches of closed handles.
    let mut ring_orphans: Vec<Arc<Mutex<RingUser>>> = Vec::new();
    for act in &c.sched.handles[thread] {
        c.sim.step();
        c.actions.fetch_add(1, Ordering::Relaxed);
        super::progressed();
        for s in slots.iter_mut() {
            reap(c, &mut s.tokens);
        }
        reap(c, &mut orphans);
        let shared = act.slot().map(|s| s % SLOTS).filter(|&s| s >= SHARED_SLOTS);
        if let Some(i) = shared {
            share_in(c, act, i, &mut slots[i as usize]);
        }
        io_action(c, act, &mut slots, &mut orphans, &mut ring_orphans);
        if let Some(i) = shared {
            share_out(c, act, i, &mut slots[i as usize]);
        }
    }
    // The end. A request of a closed handle that waits on nothing outside
    // the driver must be done without a cancel: the cleanup ended it, or
    // the driver refused it (one that reached the driver after the cleanup
    // included); queued, it would wait forever in a thread of a process
    // that closed its handle.
    for (t, k) in slots.iter().flat_map(|s| s.tokens.iter()).chain(orphans.iter()) {
        if k.waits_on_the_driver() && t.handle_closed() && !t.was_cancelled() && t.wait_for(c.watchdog).is_none() {
            c.problem(format!(
                "a {k:?} request (IRP {:#x}) stayed pending after its handle's cleanup, though nobody cancelled it",
                t.irp()
            ));
        }
    }
    // Then cancel what is pending, close every handle, and every request
    // must complete. In half the schedules (even seeds, and those with
    // `keep_open`) handles without rings stay open for their receive
    // accounts, checked when every actor is done; in the others they close
    // now, while other threads may still receive.
    for s in slots.iter_mut() {
        for (t, _) in &s.tokens {
            t.cancel();
        }
        if let Some(h) = s.handle.take() {
            match rings::release(c, &h) {
                None if c.sched.seed % 2 == 0 || c.sched.keep_open => c.keep_open(h),
                ring => {
                    ring_orphans.extend(ring);
                    close(h, false);
                }
            }
        }
        orphans.append(&mut s.tokens);
    }
    for (t, k) in orphans {
        match t.wait_for(c.watchdog) {
            Some(r) => check_reply(c, k, &t, &r),
            None => c.problem(format!(
                "a {k:?} request (IRP {:#x}) never completed after it was cancelled and its handle closed",
                t.irp()
            )),
        }
    }
    rings::finish(c, ring_orphans);
}

/// CloseHandle (or the death of the process, `abandon`). A shared handle
/// closes for every thread at once, as a HANDLE value does: another
/// thread's request in flight on it may reach the driver after the
/// cleanup.
pub(super) fn close(h: Arc<Handle>, abandon: bool) {
    match Arc::try_unwrap(h) {
        Ok(h) if abandon => h.abandon(),
        Ok(h) => h.close(),
        Err(still_used) => still_used.close_shared(abandon),
    }
}

/// Before an action on shared slot `i`: the thread sees the handle there
/// now (another thread may have created, opened or closed it). A close
/// takes the handle out of the slot first, so that it can really close.
fn share_in(c: &Ctx<'_>, act: &IoAction, i: u8, local: &mut Slot) {
    let mut sh = lock(&c.shared[(i - SHARED_SLOTS) as usize]);
    local.handle = if matches!(act, IoAction::Close { .. } | IoAction::Abandon { .. } | IoAction::CloseRacing { .. }) {
        sh.1 = None;
        sh.0.take()
    } else {
        sh.0.clone()
    };
    local.adapter = sh.1;
    if local.handle.is_some() {
        c.shared_actions.fetch_add(1, Ordering::Relaxed);
    }
}

/// After an action on shared slot `i`: a handle this thread created goes
/// into the slot (unless another thread's got there first: then it
/// closes), and so does the adapter a handle was opened on. The thread
/// keeps no reference between its actions.
fn share_out(c: &Ctx<'_>, act: &IoAction, i: u8, local: &mut Slot) {
    let Some(h) = local.handle.take() else { return };
    let mut sh = lock(&c.shared[(i - SHARED_SLOTS) as usize]);
    match act {
        IoAction::Create { .. } if sh.0.is_none() => {
            sh.0 = Some(h);
            sh.1 = None;
        }
        IoAction::Create { .. } if !sh.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, &h)) => {
            drop(sh);
            close(h, false);
        }
        IoAction::Open { .. } if local.adapter.is_some() && sh.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, &h)) => {
            sh.1 = local.adapter;
        }
        _ => {}
    }
}

/// Checks the requests that completed.
fn reap(c: &Ctx<'_>, tokens: &mut Vec<(IoToken, Kind)>) {
    tokens.retain(|(t, k)| match t.try_result() {
        Some(r) => {
            check_reply(c, *k, t, &r);
            false
        }
        None => true,
    });
}

/// The value of a set of `oid` (not a multicast list) of `len` bytes: a
/// lookahead the adapter takes (64 bytes, within any MTU) when there is
/// room for one, so that such sets succeed (and a miniport that
/// overstates its `BytesRead` is heard), then bytes counting up.
pub(super) fn set_value(oid: u32, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| i as u8).collect();
    if oid == ndis_sys::OID_GEN_CURRENT_LOOKAHEAD && len >= 4 {
        v[..4].copy_from_slice(&64u32.to_le_bytes());
    }
    v
}

pub(super) fn empty() -> Vec<u8> {
    let mut b = vec![0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).expect("room");
    b
}

/// A LIST_BINDINGS through `h` with `out` bytes of output, its reply
/// judged when it succeeded (`check_list`).
pub(super) fn list_judged(c: &Ctx<'_>, h: &Handle, out: usize) -> ndisim::IoResult {
    let r = h.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty(), out);
    if r.status == 0 {
        match ListReply::new_checked(&r.data) {
            Ok(list) => check_list(c, &list),
            Err(e) => c.problem(format!("list: a malformed reply: {e:?}")),
        }
    }
    r
}

/// What a LIST_BINDINGS says of each binding, whatever races it: a known
/// state, one of the schedule's adapters by name with that adapter's
/// address, an MTU that adapter had, and no binding twice. Each binding's
/// adapter is noted (`Ctx::binding_adapters`).
fn check_list(c: &Ctx<'_>, list: &ListReply<'_>) {
    let mut ids = Vec::new();
    for e in list.entries() {
        c.list_entries.fetch_add(1, Ordering::Relaxed);
        let Some(i) = c.names.iter().position(|n| n.eq_ignore_ascii_case(e.name)) else {
            c.problem(format!("list: binding {} names {:?}, no adapter of the schedule", e.binding_id, e.name));
            continue;
        };
        if let BindingState::Unknown(s) = e.binding_state() {
            c.problem(format!("list: binding {} of {} is in state {s}, none of the seven", e.binding_id, e.name));
        }
        if e.mac != c.mac(i) {
            c.problem(format!(
                "list: binding {} of {} has address {:02x?}, the adapter's is {:02x?}",
                e.binding_id,
                e.name,
                e.mac,
                c.mac(i)
            ));
        }
        lock(&c.binding_adapters).insert(e.binding_id, i);
        // (0 before the binding learnt it; an adapter whose spec the
        // explorer cannot read is not judged.)
        let mtus = super::accounts::spec_of(c, i).map(|spec| super::oid_answers::had(c, i, &spec).0);
        if e.mtu != 0 && mtus.as_ref().is_some_and(|m| !m.contains(&e.mtu)) {
            c.problem(format!(
                "list: binding {} of {} has an MTU of {}, none its adapter had ({:?})",
                e.binding_id,
                e.name,
                e.mtu,
                mtus.unwrap_or_default()
            ));
        }
        if ids.contains(&e.binding_id) {
            c.problem(format!("list: binding {} is listed twice", e.binding_id));
        }
        ids.push(e.binding_id);
    }
}

pub(super) fn send_batch_input(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
    let items: Vec<SendFrame<'_>> = frames.iter().map(|(f, tci)| SendFrame { data: f, tci: *tci }).collect();
    SendBatchWriter::build(&items).expect("frames a record can say")
}

fn io_action(
    c: &Ctx<'_>,
    act: &IoAction,
    slots: &mut [Slot],
    orphans: &mut Vec<(IoToken, Kind)>,
    ring_orphans: &mut Vec<Arc<Mutex<RingUser>>>,
) {
    let slot_of = |s: &u8| (*s as usize) % slots.len();
    match act {
        IoAction::Create { slot } => {
            let s = &mut slots[slot_of(slot)];
            if s.handle.is_none() {
                match c.sim.open() {
                    Ok(h) => {
                        let h = Arc::new(h);
                        // Before it can be opened, and orphaned.
                        c.ring_handle_made(Ctx::ring_key(&h));
                        s.handle = Some(h);
                        s.closed();
                    }
                    Err(st) if st == ndis_sys::STATUS_INSUFFICIENT_RESOURCES => {}
                    Err(st) => c.problem(format!("create: {:?}", NtStatus(st))),
                }
            }
        }
        IoAction::Open { slot, a, filter, ethertypes, queue_frames, queue_bytes, snaplen, local_sends, strict } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let r = OpenRepr {
                name: &c.names[*a],
                ethertypes,
                packet_filter: PacketFilter::from_bits_retain(*filter),
                queue_frames: *queue_frames,
                queue_bytes: *queue_bytes,
                snaplen: *snaplen,
                local_sends: match local_sends {
                    1 => rawnic_proto::LocalSends::All,
                    2 => rawnic_proto::LocalSends::None,
                    _ => rawnic_proto::LocalSends::Others,
                },
                strict_filter: *strict,
            };
            let mut input = vec![0u8; r.wire_len()];
            r.emit(&mut input).expect("a valid open request");
            let racing = super::open_unbind::racing(c, *a);
            let res = h.ioctl(IOCTL_RAWNIC_OPEN, &input, OpenReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if racing {
                super::open_unbind::raced(c, res.status == 0);
            }
            if res.status == 0 {
                if let Some(f) = h.file() {
                    lock(&c.filter_by_file).insert(f, *filter);
                    c.rx.opened(f, ethertypes, r.local_sends, *snaplen);
                    lock(&c.adapter_by_file).insert(f, *a);
                }
                match OpenReply::parse(&res.data) {
                    Ok(rep) => {
                        s.adapter = Some(*a);
                        if let Some(f) = h.file() {
                            lock(&c.told_by_file).insert(f, rep.packet_filter.bits());
                        }
                    }
                    Err(e) => {
                        s.opened_unseen = true;
                        c.problem(format!("open: a malformed reply: {e:?}"))
                    }
                }
            }
        }
        IoAction::SendBatch { slot, frames: n, len, tci, dst, oversize } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            let len = if *oversize { 9100 } else { *len as usize };
            let fs: Vec<(Vec<u8>, Option<u16>)> =
                (0..*n).map(|_| (frames::build(*dst, mac, c.next_seq(), len), *tci)).collect();
            c.wire.frames(h.file(), *dst, fs.iter().map(|(f, t)| (f.as_slice(), *t)));
            let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &send_batch_input(&fs), SendReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 {
                match SendReply::parse(&r.data) {
                    Ok(rep) if rep.accepted as usize <= fs.len() => {
                        c.sent(h.file(), rep.accepted.into());
                        let (took, left) = fs.split_at(rep.accepted as usize);
                        c.wire.accepted(took.iter().map(|(f, _)| f.as_slice()));
                        c.wire.refused(left.iter().map(|(f, _)| f.as_slice()));
                    }
                    Ok(rep) => c.problem(format!("send batch: {} of {} frames accepted", rep.accepted, fs.len())),
                    Err(e) => c.problem(format!("send batch: a malformed reply: {e:?}")),
                }
            } else {
                // Refused whole: none of it may have gone.
                c.wire.refused(fs.iter().map(|(f, _)| f.as_slice()));
            }
        }
        IoAction::Write { slot, len, dst } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            // A write of no bytes comes with no MDL at all (`gen::edges::empty_io`).
            let f = if *len == 0 { Vec::new() } else { frames::build(*dst, mac, c.next_seq(), *len as usize) };
            c.wire.frames(h.file(), *dst, [(f.as_slice(), None)]);
            let r = h.write(&f);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 && f.is_empty() {
                c.problem("write: a write of no bytes succeeded (no frame is that short)".to_string());
            }
            if r.status == 0 && r.information != f.len() {
                c.problem(format!("write: {} of {} bytes reported written", r.information, f.len()));
            }
            if r.status == 0 {
                c.sent(h.file(), 1);
                c.wire.accepted([f.as_slice()]);
            }
        }
        IoAction::Read { slot, len, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.read_async(*len as usize) {
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, Kind::Read, &t, &r),
                    None => s.tokens.push((t, Kind::Read)),
                }
            }
        }
        IoAction::ReadPending { slot, len } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.read_async(*len as usize) {
                s.tokens.push((t, Kind::Read));
            }
        }
        IoAction::WaitEvent { slot, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN) {
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, Kind::Event, &t, &r),
                    None => s.tokens.push((t, Kind::Event)),
                }
            }
        }
        IoAction::Oid { slot, set, oid, len, wait_ms, groups } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let multicast_set = *set && *oid == ndis_sys::OID_802_3_MULTICAST_LIST;
            let join = groups.filter(|_| multicast_set);
            let data: Vec<u8> = match (*set, join) {
                (false, _) => Vec::new(),
                // A join: the groups of its bits.
                (true, Some(mask)) => (0..8).filter(|i| mask & (1 << i) != 0).flat_map(frames::group).collect(),
                // Group addresses (a list the driver takes when whole).
                (true, None) if multicast_set => (0..*len)
                    .map(|i| if i % 6 == 0 { 0x01 } else { (usize::from(i) / 6 + usize::from(*slot)) as u8 })
                    .collect(),
                (true, _) => set_value(*oid, usize::from(*len)),
            };
            let req = OidRequest { oid: *oid, data: &data };
            let mut input = vec![0u8; OidRequest::FIXED + data.len()];
            if req.emit(&mut input).is_err() {
                return;
            }
            let code = if *set { IOCTL_RAWNIC_SET_OID } else { IOCTL_RAWNIC_QUERY_OID };
            let out = OidReplyHeader::LEN + if *set { 0 } else { *len as usize };
            // The groups the handle may get from now on (before the set goes:
            // the driver's list counts from when it is sent); any other set
            // of the list makes it unknown.
            let join = match (join, h.file()) {
                (Some(mask), Some(f)) => Some((mask, super::joins::sent(c, f, mask))),
                (None, Some(f)) if multicast_set => {
                    super::joins::taint(c, f);
                    None
                }
                _ => None,
            };
            // Read before the request goes: an unbind between the two would
            // otherwise not count.
            let limit = if *set { data.len() as u32 } else { u32::from(*len) };
            let k = Kind::Oid { oid: *oid, query: !*set, epoch: c.pnp_epoch.load(Ordering::Acquire), join, limit };
            match h.ioctl_async(code, &input, out) {
                Ok(t) => match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, k, &t, &r),
                    None => s.tokens.push((t, k)),
                },
                // No IRP (low resources): the driver never saw it.
                Err(_) => {
                    if let (Some((_, seq)), Some(f)) = (join, h.file()) {
                        super::joins::failed(c, f, seq);
                    }
                }
            }
        }
        IoAction::Stats { slot } => {
            let s = &mut slots[slot_of(slot)];
            if let Some(h) = &s.handle {
                stats::stats(c, h);
            }
        }
        IoAction::List { slot } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            list_judged(c, h, 16 * 1024);
            c.completions.fetch_add(1, Ordering::Relaxed);
        }
        IoAction::Version { slot } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let r = h.ioctl(IOCTL_RAWNIC_GET_VERSION, &empty(), VersionReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 {
                match VersionReply::parse(&r.data) {
                    // The protocol version, the batch limit and the NDIS
                    // version the driver registered with (6.89, or 6.30 on
                    // an older NDIS), as NDIS holds it.
                    Ok(v) => {
                        let ndis = c.sim.protocol_ndis_version();
                        if (v.proto_version, v.max_batch) != (PROTO_VERSION, MAX_BATCH) || Some(v.ndis) != ndis {
                            c.problem(format!(
                                "version: the reply says protocol {}, batches of {} and NDIS {:?}, not {PROTO_VERSION}, {MAX_BATCH} and {ndis:?}",
                                v.proto_version, v.max_batch, v.ndis
                            ));
                        }
                    }
                    Err(e) => c.problem(format!("version: a malformed reply: {e:?}")),
                }
            }
        }
        IoAction::WaitBinds { slot, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.ioctl_async(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, &empty(), BindsCompleteReply::LEN) {
                if t.try_result().is_none() {
                    c.binds_waited.fetch_add(1, Ordering::Relaxed);
                }
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, Kind::Binds, &t, &r),
                    None => s.tokens.push((t, Kind::Binds)),
                }
            }
        }
        IoAction::CancelAll { slot } => {
            for (t, _) in &slots[slot_of(slot)].tokens {
                t.cancel();
            }
        }
        IoAction::RaceCancel { slot, request, first } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = s.handle.clone() else { return };
            let Some(r) = h.reference() else { return };
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            let file = h.file();
            // The cancel also ends the rings (their attach is cancelled): a
            // ring wait is judged by the ring epoch, read before either.
            let key = super::Ctx::ring_key(&h);
            let epoch = c.ring_epoch(key);
            let sent = if *first {
                // Nothing will call the cancel routine the driver sets: it
                // must see the flag as it sets the routine, in the dispatch
                // routine, or the request waits for data or an event that
                // may never come (or for the handle's close, in a thread
                // that cancelled it). Stricter than Windows, which would
                // let a driver look later: rawnic queues its waits only in
                // their dispatch routines.
                let sent = r.cancelled_at_dispatch(|r| late_request(c, r, file, request, mac));
                if let Some((t, k)) = &sent {
                    if k.waits_on_the_driver() && t.try_result().is_none() {
                        c.problem(format!(
                            "a {k:?} request (IRP {:#x}) cancelled before its dispatch routine ran was still pending when that returned",
                            t.irp()
                        ));
                    }
                }
                sent
            } else {
                let sent = Mutex::new(None);
                c.sim.run_actors(vec![
                    Box::new(|| *lock(&sent) = late_request(c, &r, file, request, mac)),
                    Box::new(|| rings::cancel_io(c, &h)),
                ]);
                sent.into_inner().unwrap_or_else(|e| e.into_inner())
            };
            if let Some((t, k)) = sent {
                let k = match k {
                    Kind::LateWait => Kind::RingWait { flags: ring::wait_flags::ALL, key, epoch },
                    k => k,
                };
                s.tokens.push((t, k));
            }
        }
        IoAction::CancelAway { slot, stall_ms } => {
            super::knobs::cancel_away(c, &slots[slot_of(slot)].tokens, *stall_ms)
        }
        IoAction::StallAllocations { bytes, pick, ms } => super::knobs::timed_spell(c, *bytes, *pick, *ms),
        IoAction::CancelIo { slot } => {
            if let Some(h) = &slots[slot_of(slot)].handle {
                rings::cancel_io(c, h);
            }
        }
        IoAction::Close { slot } => {
            let s = &mut slots[slot_of(slot)];
            if let Some(h) = s.handle.take() {
                ring_orphans.extend(rings::release(c, &h));
                close(h, false);
            }
            orphans.append(&mut s.tokens);
            s.closed();
        }
        IoAction::Abandon { slot } => {
            let s = &mut slots[slot_of(slot)];
            if let Some(h) = s.handle.take() {
                ring_orphans.extend(rings::release(c, &h));
                close(h, true);
            }
            orphans.append(&mut s.tokens);
            s.closed();
        }
        IoAction::CloseRacing { slot, abandon, late } => {
            // A handle no other thread uses: its cleanup is over when the
            // close returns.
            let own = slot_of(slot) < SHARED_SLOTS as usize;
            let s = &mut slots[slot_of(slot)];
            let Some(h) = s.handle.take() else { return };
            // Other threads' requests, past the handle check (each holds a
            // reference to the file object) when the handle closes.
            let (r, file) = (h.reference(), h.file());
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            let key = Ctx::ring_key(&h);
            ring_orphans.extend(rings::release(c, &h));
            close(h, *abandon);
            orphans.append(&mut s.tokens);
            s.closed();
            if let Some(r) = r {
                // A late detach may still reach the rings before the
                // cleanup does (on a handle shared with another thread):
                // it counts as a detach of the handle's attach.
                let send = |l: &Late| match l {
                    Late::RingDetach => c.ring_event(key, || late_request(c, &r, file, l, mac)),
                    _ => late_request(c, &r, file, l, mac),
                };
                for (t, k) in late.iter().filter_map(send) {
                    late_ended(c, own, &t, k);
                    orphans.push((t, k));
                }
            }
        }
        IoAction::Garbage { slot, code, input, out_len } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = s.handle.clone() else { return };
            // Only rawnic's device type: other codes are refused by the I/O
            // manager before they reach the driver.
            if let Ok(t) = h.ioctl_async(*code, input, *out_len as usize) {
                s.untracked_reply(c, t, *code);
            }
        }
        IoAction::Mutated { slot, request, edits, out_len } => {
            let i = slot_of(slot);
            requests::mutated(c, &mut slots[i], i >= SHARED_SLOTS as usize, request, edits, out_len);
        }
        IoAction::Program { slot, kind } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            super::programs::set(c, h, *kind);
        }
        IoAction::Ring { slot, op } => {
            let i = slot_of(slot);
            let s = &mut slots[i];
            let Some(h) = s.handle.clone() else { return };
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            let Some((t, flags, key, epoch)) = rings::ring_action(c, &h, i >= SHARED_SLOTS as usize, mac, op) else {
                return;
            };
            let k = Kind::RingWait { flags, key, epoch };
            match op {
                RingOp::Wait { wait_ms: Some(ms), .. } => match wait_or_cancel(&t, *ms) {
                    Some(r) => check_reply(c, k, &t, &r),
                    None => s.tokens.push((t, k)),
                },
                _ => s.tokens.push((t, k)),
            }
        }
        IoAction::Sleep { ms } => c.sim.sleep(Duration::from_millis(*ms as u64)),
        IoAction::AwaitSpell { wait_ms } => {
            c.awaiting_spell.fetch_add(1, Ordering::Relaxed);
            c.wait_until(Duration::from_millis(u64::from(*wait_ms)), || c.spells.load(Ordering::Relaxed) > 0);
            c.awaiting_spell.fetch_sub(1, Ordering::Relaxed);
        }
        IoAction::AwaitUnbind { a, wait_ms, stall_at } => {
            super::open_unbind::await_unbind(c, *a, Duration::from_millis(u64::from(*wait_ms)), *stall_at)
        }
        IoAction::ShortOfMemory { skip, refuse } => c.sim.short_of_pool(u64::from(*skip), u64::from(*refuse)),
    }
}
