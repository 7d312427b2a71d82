//! The requests a handle thread builds from a description rather than
//! sends as drawn: the well-formed request a mutated one starts from, and
//! the requests sent after a handle's cleanup or racing a cancel.

use super::{Kind, Slot, check_reply, empty, rings, send_batch_input};
use crate::frames;
use crate::run::Ctx;
use crate::schedule::*;
use ndisim::{FileRef, IoToken};
use rawnic_proto::*;
use std::sync::atomic::Ordering;

/// The well-formed request a mutated one starts from: its code, input and
/// the output its reply needs.
pub(super) fn template_request(c: &Ctx<'_>, t: &Template) -> (u32, Vec<u8>, usize) {
    match t {
        Template::Open { a, ethertypes, filter } => {
            let r = OpenRepr {
                name: &c.names[*a % c.names.len()],
                ethertypes,
                packet_filter: PacketFilter::from_bits_retain(*filter),
                queue_frames: 0,
                queue_bytes: 0,
                snaplen: 0,
                local_sends: rawnic_proto::LocalSends::Others,
                strict_filter: false,
            };
            let mut input = vec![0u8; r.wire_len()];
            r.emit(&mut input).expect("a valid open request");
            (IOCTL_RAWNIC_OPEN, input, OpenReply::LEN)
        }
        Template::SendBatch { frames: n, len, tci } => {
            // Frames the readers' check passes over: not EtherType 0x88B5,
            // and so far from it (16 bits apart) that no edit makes them
            // look like the explorer's own, nor any run of their bytes
            // (a damaged length makes the driver cut frames elsewhere).
            let damaged = |_| {
                let mut f = frames::build(Dst::Broadcast, [0; 6], 0, *len as usize);
                f[12..14].copy_from_slice(&0x774Au16.to_be_bytes());
                f[14..].fill(0);
                (f, *tci)
            };
            let fs: Vec<(Vec<u8>, Option<u16>)> = (0..*n).map(damaged).collect();
            (IOCTL_RAWNIC_SEND_BATCH, send_batch_input(&fs), SendReply::LEN)
        }
        Template::Oid { set, oid, len } => {
            let data: Vec<u8> = match (*set, *oid) {
                (false, _) => Vec::new(),
                // Group addresses (a list the driver takes when whole).
                (true, ndis_sys::OID_802_3_MULTICAST_LIST) => {
                    (0..*len).map(|i| if i % 6 == 0 { 0x01 } else { (i / 6) as u8 }).collect()
                }
                (true, _) => super::set_value(*oid, usize::from(*len)),
            };
            let req = OidRequest { oid: *oid, data: &data };
            let mut input = vec![0u8; OidRequest::FIXED + data.len()];
            req.emit(&mut input).expect("room for the request");
            let code = if *set { IOCTL_RAWNIC_SET_OID } else { IOCTL_RAWNIC_QUERY_OID };
            (code, input, OidReplyHeader::LEN + if *set { 0 } else { *len as usize })
        }
        Template::Empty { code } => {
            let right = match *code {
                IOCTL_RAWNIC_GET_VERSION => VersionReply::LEN,
                IOCTL_RAWNIC_GET_STATS => StatsReply::LEN,
                IOCTL_RAWNIC_WAIT_EVENT => EventRecord::LEN,
                IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => BindsCompleteReply::LEN,
                _ => 16 * 1024,
            };
            (*code, empty(), right)
        }
        Template::Program { .. }
        | Template::RingAttach { .. }
        | Template::RingWait { .. }
        | Template::RingKick
        | Template::RingDetach => ring_request(t).expect("a request of the rings or a program"),
    }
}

/// The well-formed request of a template of the rings or of a capture
/// program (`Template::of_rings_or_programs`), as `template_request`
/// gives it (for a RING_ATTACH, the output is the UMEM's length); `None`
/// for the others.
pub(super) fn ring_request(t: &Template) -> Option<(u32, Vec<u8>, usize)> {
    Some(match t {
        Template::Program { kind } => {
            let insns = crate::run::programs::insns(*kind);
            let mut input = vec![0u8; ProgramRequest::wire_len(insns.len())];
            ProgramRequest::emit(&insns, &mut input).expect("a program the explorer writes fits");
            (IOCTL_RAWNIC_SET_PROGRAM, input, 0)
        }
        // The output is the UMEM: its length is the layout's.
        Template::RingAttach { frame_size, frames, fill, rx, tx, completion } => {
            let s = ring_setup(*frame_size, *frames, *fill, *rx, *tx, *completion);
            let mut input = vec![0u8; ring::RingSetup::LEN];
            s.emit(&mut input).expect("room for the setup");
            (IOCTL_RAWNIC_RING_ATTACH, input, ring::RingLayout::new(&s).map_or(ring::PAGE, |l| l.total))
        }
        Template::RingWait { flags } => {
            let mut input = vec![0u8; ring::RingWaitRequest::LEN];
            ring::RingWaitRequest::emit(*flags, &mut input).expect("room for the request");
            (IOCTL_RAWNIC_RING_WAIT, input, ring::RingReply::LEN)
        }
        Template::RingKick => (IOCTL_RAWNIC_RING_KICK, empty(), ring::RingReply::LEN),
        Template::RingDetach => (IOCTL_RAWNIC_RING_DETACH, empty(), 0),
        _ => return None,
    })
}

/// Why a request that needs an open binding may be refused before its
/// input is looked at (`Client::binding` in the driver): the handle is not
/// open (not yet, or closed), or its adapter unbound.
const NOT_OPEN: [NtStatus; 2] = [NtStatus::INVALID_DEVICE_STATE, NtStatus::DEVICE_REMOVED];

/// The statuses a damaged request of the OPEN, SEND_BATCH, OID and
/// header-only templates (`code`, `input` as edited, `out` bytes of
/// output) must be refused with, one of them, in its dispatch routine,
/// from the order of the driver's checks (`driver/src/rawnic/control.rs`,
/// `user_oid.rs`); `None` where the driver may take it (judged as a
/// request of its kind). Exactly the parse error's status where the
/// request is parsed first (OPEN; GET_VERSION, LIST_BINDINGS,
/// WAIT_BINDS_COMPLETE, GET_STATS, WAIT_EVENT); for SEND_BATCH and the
/// OIDs, whose handle must be open first (the explorer cannot tell that it
/// is: a damaged OPEN may open it, an unbind orphan it), that status or one
/// of `NOT_OPEN`. Where the output is shorter than the reply's least,
/// `BUFFER_TOO_SMALL` where the driver looks at that (after the parse, but
/// for SEND_BATCH and the OIDs, before it; GET_STATS looks at the binding
/// first).
pub(super) fn refusal(t: &Template, code: u32, input: &[u8], out: usize) -> Option<Vec<NtStatus>> {
    let unless_not_open = |s: &[NtStatus]| Some(NOT_OPEN.iter().chain(s).copied().collect::<Vec<_>>());
    match t {
        // `open`: parsed before anything else, then the output's length.
        Template::Open { .. } => match OpenRequest::new_checked(input) {
            Err(e) => Some(vec![e.status()]),
            Ok(_) if out < OpenReply::LEN => Some(vec![NtStatus::BUFFER_TOO_SMALL]),
            Ok(_) => None,
        },
        // A bare header parsed before anything else (GET_VERSION takes no
        // input at all too), then the output's length; GET_STATS looks at
        // the handle's binding between them.
        Template::Empty { .. } => {
            if !(code == IOCTL_RAWNIC_GET_VERSION && input.is_empty()) {
                if let Err(e) = EmptyRequest::parse(input) {
                    return Some(vec![e.status()]);
                }
            }
            let need = match code {
                IOCTL_RAWNIC_GET_VERSION => VersionReply::LEN,
                IOCTL_RAWNIC_LIST_BINDINGS => ListHeader::LEN,
                IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => BindsCompleteReply::LEN,
                IOCTL_RAWNIC_GET_STATS => StatsReply::LEN,
                IOCTL_RAWNIC_WAIT_EVENT => EventRecord::LEN,
                _ => return None,
            };
            match out < need {
                false => None,
                true if code == IOCTL_RAWNIC_GET_STATS => unless_not_open(&[NtStatus::BUFFER_TOO_SMALL]),
                true => Some(vec![NtStatus::BUFFER_TOO_SMALL]),
            }
        }
        // `send_batch`: the handle's binding, the output's length, then
        // the batch, parsed for the binding's longest frame (its MTU + 14,
        // which a restart may change): a record's length is checked
        // against it, so a batch refused for another flaw at the shortest
        // (14) is refused for it at any; one refused for a frame's length
        // there is refused for that or for what it is refused for at the
        // longest (65,535, where no length is too long), or taken.
        Template::SendBatch { .. } => {
            if out < SendReply::LEN {
                return unless_not_open(&[NtStatus::BUFFER_TOO_SMALL]);
            }
            match SendBatch::new_checked(input, ETH_HEADER) {
                Ok(_) => None,
                Err(Error::FrameLength) => match SendBatch::new_checked(input, usize::from(u16::MAX)) {
                    Ok(_) => None,
                    Err(e) => unless_not_open(&[Error::FrameLength.status(), e.status()]),
                },
                Err(e) => unless_not_open(&[e.status()]),
            }
        }
        // `oid`: the handle's binding, the output's length (a reply's
        // header), the request; then a set's OID must be on the
        // allow-list, a query's input fit the room its answer has, a
        // multicast list parse.
        Template::Oid { set, .. } => {
            if out < OidReplyHeader::LEN {
                return unless_not_open(&[NtStatus::BUFFER_TOO_SMALL]);
            }
            let room = (out - OidReplyHeader::LEN).min(MAX_OID_DATA as usize);
            match OidRequest::parse(input) {
                Err(e) => unless_not_open(&[e.status()]),
                Ok(r) if *set && !OID_SET_ALLOW_LIST.contains(&r.oid) => unless_not_open(&[NtStatus::ACCESS_DENIED]),
                Ok(r) if !*set && r.data.len() > room => unless_not_open(&[NtStatus::BUFFER_TOO_SMALL]),
                Ok(r)
                    if *set
                        && r.oid == ndis_sys::OID_802_3_MULTICAST_LIST
                        && rawnic_logic::multicast::MulticastList::parse(r.data).is_none() =>
                {
                    unless_not_open(&[NtStatus::INVALID_PARAMETER])
                }
                Ok(_) => None,
            }
        }
        _ => None,
    }
}

/// `IoAction::Mutated` on slot `s` (`shared` with other threads or not):
/// the request built from its template, damaged by its edits, sent with
/// `out_len` of output, and judged: exactly when its flaws or the
/// handle's state call for a refusal, else as any reply.
pub(super) fn mutated(c: &Ctx<'_>, s: &mut Slot, shared: bool, request: &Template, edits: &[Edit], out_len: &OutLen) {
    let Some(h) = s.handle.clone() else { return };
    // Garbage may set the multicast list: the adapter's list owes this
    // handle nothing the explorer can tell.
    if let Some(f) = h.file() {
        super::super::joins::taint(c, f);
    }
    let (code, mut input, right) = template_request(c, request);
    crate::r#gen::apply_edits(&mut input, edits);
    let out = match out_len {
        OutLen::Right => right,
        OutLen::Short => right.saturating_sub(1),
        OutLen::Bytes(n) => *n as usize,
    };
    if request.of_rings_or_programs() {
        // An attach's output is its UMEM: a page less for `Short`, whole
        // pages.
        let umem = match out_len {
            OutLen::Right => right,
            OutLen::Short => right.saturating_sub(ring::PAGE),
            OutLen::Bytes(n) => (*n as usize).next_multiple_of(ring::PAGE),
        };
        damaged_rings_or_program(c, &h, &mut s.tokens, shared, request, (code, input, out), umem);
        return;
    }
    let refused = refusal(request, code, &input, out).or_else(|| {
        // (A shared handle may be opened or closed by another thread
        // meanwhile.)
        let open = matches!(request, Template::Open { .. }) && !shared;
        open.then(|| open_refusal(&c.names, &input, s.opened())).flatten()
    });
    if let Some(want) = refused {
        if let Ok(t) = h.ioctl_async(code, &input, out) {
            judge_refused(c, shared, &t, &want, code, &input, out);
        }
        return;
    }
    if let Ok(t) = h.ioctl_async(code, &input, out) {
        s.untracked_reply(c, t, code);
    }
}

/// What a damaged OPEN that still parses, with room for its reply, must
/// get on a handle only this thread uses, from the order of the driver's
/// checks (after the parse and the output's length: an uninstall, the
/// handle's state, then the name): `opened`, the handle is open already
/// (its state is looked at before the name); else a name none of the
/// adapters' NDIS `names` is (compared as the driver does, ASCII case
/// aside). `None`: it may open.
pub(super) fn open_refusal(names: &[String], input: &[u8], opened: bool) -> Option<Vec<NtStatus>> {
    let r = OpenRequest::new_checked(input).ok()?;
    if opened {
        return Some(NOT_OPEN.to_vec());
    }
    let known = names.iter().any(|n| n.eq_ignore_ascii_case(r.name()));
    (!known).then(|| vec![NtStatus::OBJECT_NAME_NOT_FOUND, NtStatus::DEVICE_REMOVED])
}

/// Judges `t`, a damaged request (`code`, `input`, `out` bytes of output)
/// the driver must refuse in its dispatch routine with one of `want`
/// (`refusal`), and no byte of output: as the refused requests of the
/// rings, a shortage may refuse it too where the run makes them, and a
/// shared slot's handle may have been closed by another thread.
pub(super) fn judge_refused(
    c: &Ctx<'_>,
    shared: bool,
    t: &IoToken,
    want: &[NtStatus],
    code: u32,
    input: &[u8],
    out: usize,
) {
    let what = || {
        let head: String = input.iter().take(48).map(|b| format!("{b:02x}")).collect();
        format!(
            "a damaged request {code:#x} ({} bytes of input: {head}{}; {out} of output)",
            input.len(),
            if input.len() > 48 { "..." } else { "" }
        )
    };
    let Some(r) = t.wait_for(c.watchdog) else {
        c.problem(format!(
            "{} that must be refused in its dispatch routine stayed pending (IRP {:#x})",
            what(),
            t.irp()
        ));
        t.cancel();
        return;
    };
    c.completions.fetch_add(1, Ordering::Relaxed);
    c.damaged_refusals.fetch_add(1, Ordering::Relaxed);
    let st = NtStatus(r.status);
    if !want.contains(&st) && !c.refusal_excused(shared, st) {
        c.problem(format!("{} completed with {st:?}, not one of {want:?}", what()));
    } else if r.information != 0 {
        c.problem(format!("{} was refused ({st:?}) with {} bytes of output", what(), r.information));
    }
}

/// Judges `t`, a request of kind `k` that reached the driver after its
/// handle's cleanup (`own`: a handle no other thread uses, whose cleanup
/// was over when the close returned). A wait on a closed handle has
/// nothing to wait for: rawnic ends it in its dispatch routine, or, when
/// another thread's close of the shared handle is still in its cleanup
/// (this close then returned at once), that cleanup ends it. A
/// WAIT_BINDS_COMPLETE is refused as every request after the cleanup is,
/// binds complete or not.
pub(super) fn late_ended(c: &Ctx<'_>, own: bool, t: &IoToken, k: Kind) {
    if !k.waits_on_the_driver() {
        return;
    }
    match t.wait_for(c.watchdog) {
        None => c.problem(format!(
            "a {k:?} request (IRP {:#x}) that reached the driver after its handle's cleanup was left pending",
            t.irp()
        )),
        Some(r)
            if own && matches!(k, Kind::Binds | Kind::Event | Kind::Read) && r.status == ndis_sys::STATUS_SUCCESS =>
        {
            c.problem(format!(
                "a {k:?} request (IRP {:#x}) that reached the driver after its handle's cleanup succeeded",
                t.irp()
            ))
        }
        Some(_) => {}
    }
}

/// Sends `l` through `r`: after its handle's cleanup (`CloseRacing`), or
/// racing a cancel (`RaceCancel`).
/// `file`: the file object `r` refers to, as its handle named it.
pub(super) fn late_request(
    c: &Ctx<'_>,
    r: &FileRef,
    file: Option<(usize, u64)>,
    l: &Late,
    mac: [u8; 6],
) -> Option<(IoToken, Kind)> {
    let ioctl = |code: u32, input: &[u8], out: usize, k: Kind| r.ioctl_async(code, input, out).ok().map(|t| (t, k));
    match l {
        Late::Read => r.read_async(65536).ok().map(|t| (t, Kind::Read)),
        Late::WaitEvent => ioctl(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN, Kind::Event),
        Late::WaitBinds => ioctl(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, &empty(), BindsCompleteReply::LEN, Kind::Binds),
        Late::Oid { set, oid } => {
            let (code, input, out) = template_request(c, &Template::Oid { set: *set, oid: *oid, len: 8 });
            let k =
                Kind::Oid { oid: *oid, query: !*set, epoch: c.pnp_epoch.load(Ordering::Acquire), join: None, limit: 8 };
            ioctl(code, &input, out, k)
        }
        Late::Stats => ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN, Kind::Other),
        Late::Write { len } => {
            let f = frames::build(Dst::Broadcast, mac, c.next_seq(), *len as usize);
            c.wire.frames(file, Dst::Broadcast, [(f.as_slice(), None)]);
            r.write_async(&f).ok().map(|t| (t, Kind::Other))
        }
        Late::SendBatch { frames: n } => {
            let fs: Vec<(Vec<u8>, Option<u16>)> =
                (0..*n).map(|_| (frames::build(Dst::Broadcast, mac, c.next_seq(), 60), None)).collect();
            c.wire.frames(file, Dst::Broadcast, fs.iter().map(|(f, t)| (f.as_slice(), *t)));
            ioctl(IOCTL_RAWNIC_SEND_BATCH, &send_batch_input(&fs), SendReply::LEN, Kind::Other)
        }
        Late::Open { a } => {
            let t = Template::Open { a: *a, ethertypes: Vec::new(), filter: filter::DEFAULT.bits() };
            let (code, input, out) = template_request(c, &t);
            ioctl(code, &input, out, Kind::Other)
        }
        Late::RingWait => {
            let mut input = vec![0u8; ring::RingWaitRequest::LEN];
            ring::RingWaitRequest::emit(ring::wait_flags::ALL, &mut input).ok()?;
            ioctl(IOCTL_RAWNIC_RING_WAIT, &input, ring::RingReply::LEN, Kind::LateWait)
        }
        Late::RingKick => ioctl(IOCTL_RAWNIC_RING_KICK, &empty(), ring::RingReply::LEN, Kind::Other),
        Late::RingDetach => ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0, Kind::Other),
    }
}

/// A damaged request of the rings or of a capture program (`Template::
/// of_rings_or_programs`): `req` its code, input as edited and output
/// length, `umem` the length of the UMEM an attach names. One that parses
/// is judged as the ring user's or the program oracle's own, one that does
/// not is refused with exactly its parse error's status (`rings::
/// damaged_*`, `programs::set_damaged`); counted in the summary.
pub(super) fn damaged_rings_or_program(
    c: &Ctx<'_>,
    h: &std::sync::Arc<ndisim::Handle>,
    tokens: &mut Vec<(IoToken, Kind)>,
    shared: bool,
    request: &Template,
    req: (u32, Vec<u8>, usize),
    umem: usize,
) {
    let (code, input, out) = req;
    let counter =
        if matches!(request, Template::Program { .. }) { &c.damaged_programs } else { &c.damaged_ring_requests };
    counter.fetch_add(1, Ordering::Relaxed);
    match request {
        Template::Program { .. } => crate::run::programs::set_damaged(c, h, shared, &input, out),
        Template::RingAttach { .. } => rings::damaged_attach(c, h, shared, input, umem.max(ring::PAGE)),
        Template::RingDetach => rings::damaged_detach(c, h, shared, &input, out),
        Template::RingKick => rings::damaged_kick(c, h, shared, &input, out),
        _ => {
            // A wait: one that parses is judged as the ring user's own, for
            // the flags it parses to.
            let key = Ctx::ring_key(h);
            let epoch = c.ring_epoch(key);
            let Ok(t) = h.ioctl_async(code, &input, out) else { return };
            match ring::RingWaitRequest::parse(&input) {
                Err(e) => rings::damaged_wait_refused(c, shared, &t, e.status()),
                Ok(flags) => {
                    let k = Kind::RingWait { flags, key, epoch };
                    match wait_or_cancel(&t, 5) {
                        Some(r) => check_reply(c, k, &t, &r),
                        None => tokens.push((t, k)),
                    }
                }
            }
        }
    }
}

/// Waits up to `ms` for a request, then cancels it if it is still pending.
pub(super) fn wait_or_cancel(t: &IoToken, ms: u32) -> Option<ndisim::IoResult> {
    if let Some(r) = t.wait_for(std::time::Duration::from_millis(ms as u64)) {
        return Some(r);
    }
    t.cancel();
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::r#gen::{GenOptions, generate};

    /// The damaged requests of the rings and programs come, of every kind,
    /// and each is well-formed before its edits: the driver's own parsers
    /// take it, and its program verifies (but the one meant to be
    /// refused).
    #[test]
    fn damaged_ring_and_program_requests_come_well_formed_before_their_edits() {
        let o = GenOptions::plain(Mode::Det);
        let mut kinds = [0usize; 5];
        for seed in 0..200 {
            let s = generate(seed, o);
            for a in s.handles.iter().flatten() {
                let IoAction::Mutated { request, .. } = a else { continue };
                let Some((code, input, out)) = ring_request(request) else {
                    assert!(!request.of_rings_or_programs(), "{request:?}");
                    continue;
                };
                assert!(request.of_rings_or_programs(), "{request:?}");
                let k = match request {
                    Template::Program { kind } => {
                        assert_eq!(code, IOCTL_RAWNIC_SET_PROGRAM);
                        let req = ProgramRequest::new_checked(&input).expect("a program request that parses");
                        let valid = req.is_empty() || rawnic_logic::bpf::Program::new(req.insns()).is_ok();
                        assert_eq!(valid, !kind.refused(), "{kind:?}");
                        assert_eq!(out, 0);
                        0
                    }
                    Template::RingAttach { .. } => {
                        assert_eq!(code, IOCTL_RAWNIC_RING_ATTACH);
                        let setup = ring::RingSetup::parse(&input).expect("a setup that parses");
                        let l = ring::RingLayout::new(&setup).expect("a layout the driver takes");
                        assert_eq!(out, l.total, "{setup:?}");
                        assert!(l.total <= 4 << 20, "{setup:?}: {} bytes", l.total);
                        1
                    }
                    Template::RingWait { flags } => {
                        assert_eq!(code, IOCTL_RAWNIC_RING_WAIT);
                        assert_eq!(ring::RingWaitRequest::parse(&input), Ok(*flags));
                        assert_eq!(out, ring::RingReply::LEN);
                        2
                    }
                    Template::RingKick => {
                        assert_eq!((code, out), (IOCTL_RAWNIC_RING_KICK, ring::RingReply::LEN));
                        EmptyRequest::parse(&input).expect("a bare header");
                        3
                    }
                    Template::RingDetach => {
                        assert_eq!((code, out), (IOCTL_RAWNIC_RING_DETACH, 0));
                        EmptyRequest::parse(&input).expect("a bare header");
                        4
                    }
                    _ => unreachable!(),
                };
                kinds[k] += 1;
            }
        }
        assert!(kinds.iter().all(|&k| k > 20), "{kinds:?}");
        // Among a ring user's own actions too (`gen/mutate.rs`).
        let o = GenOptions { profile: Some(crate::r#gen::Profile::RingStorm), rings: 1000, ..o };
        let mut among = 0;
        for seed in 0..50 {
            let s = generate(seed, o);
            for l in &s.handles {
                among += l
                    .windows(2)
                    .filter(|w| {
                        matches!(w[0], IoAction::Ring { .. })
                            && matches!(&w[1], IoAction::Mutated { request, .. } if request.of_rings_or_programs())
                    })
                    .count();
            }
        }
        assert!(among > 50, "{among}");
    }

    /// `open_refusal`: an open handle first, then a name no adapter has,
    /// compared as the driver compares (ASCII case aside).
    #[test]
    fn an_open_that_parses_is_refused_for_its_handle_then_for_its_name() {
        let open = |name: &str| {
            let r = OpenRepr {
                name,
                ethertypes: &[],
                packet_filter: PacketFilter::DIRECTED,
                queue_frames: 0,
                queue_bytes: 0,
                snaplen: 0,
                local_sends: LocalSends::Others,
                strict_filter: false,
            };
            let mut input = vec![0u8; r.wire_len()];
            r.emit(&mut input).expect("a valid open request");
            input
        };
        let names = ["\\DEVICE\\{AB12}".to_string(), "\\DEVICE\\{CD34}".to_string()];
        let (ids, dr, nf) = (NtStatus::INVALID_DEVICE_STATE, NtStatus::DEVICE_REMOVED, NtStatus::OBJECT_NAME_NOT_FOUND);
        assert_eq!(open_refusal(&names, &open("\\DEVICE\\{AB12}"), false), None);
        assert_eq!(open_refusal(&names, &open("\\device\\{ab12}"), false), None, "ASCII case aside");
        assert_eq!(open_refusal(&names, &open("\\DEVICE\\{AB1}"), false), Some(vec![nf, dr]));
        assert_eq!(open_refusal(&names, &open("{AB12}"), false), Some(vec![nf, dr]));
        for name in ["\\DEVICE\\{AB12}", "nothing"] {
            assert_eq!(open_refusal(&names, &open(name), true), Some(vec![ids, dr]), "the handle before the name");
        }
        assert_eq!(open_refusal(&names, &[1, 2, 3], false), None, "not parsed: `refusal`'s");
    }

    fn template_need(code: u32) -> usize {
        match code {
            IOCTL_RAWNIC_GET_VERSION => VersionReply::LEN,
            IOCTL_RAWNIC_LIST_BINDINGS => ListHeader::LEN,
            _ => StatsReply::LEN,
        }
    }

    /// `refusal` of well-formed requests and of a few damaged ones, as the
    /// driver's dispatch checks them.
    #[test]
    fn refusals_follow_the_order_of_the_drivers_checks() {
        let s = |v: &[NtStatus]| Some(v.to_vec());
        let (ids, dr) = (NtStatus::INVALID_DEVICE_STATE, NtStatus::DEVICE_REMOVED);
        for code in [IOCTL_RAWNIC_GET_VERSION, IOCTL_RAWNIC_LIST_BINDINGS, IOCTL_RAWNIC_GET_STATS] {
            let t = Template::Empty { code };
            let need = template_need(code);
            assert_eq!(refusal(&t, code, &empty(), need), None);
            let short = match code {
                IOCTL_RAWNIC_GET_STATS => s(&[ids, dr, NtStatus::BUFFER_TOO_SMALL]),
                _ => s(&[NtStatus::BUFFER_TOO_SMALL]),
            };
            assert_eq!(refusal(&t, code, &empty(), need - 1), short, "the output is checked after the input");
            let mut grown = empty();
            grown.push(0);
            assert_eq!(refusal(&t, code, &grown, 0), s(&[NtStatus::INFO_LENGTH_MISMATCH]));
            let want = (code != IOCTL_RAWNIC_GET_VERSION).then(|| vec![NtStatus::BUFFER_TOO_SMALL]);
            assert_eq!(refusal(&t, code, &[], need), want, "GET_VERSION takes no input");
        }
        // A batch of one 60-byte frame.
        let t = Template::SendBatch { frames: 1, len: 60, tci: None };
        let f = frames::build(Dst::Broadcast, [0; 6], 0, 60);
        let input = send_batch_input(&[(f, None)]);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_SEND_BATCH, &input, SendReply::LEN), None);
        let short = s(&[ids, dr, NtStatus::BUFFER_TOO_SMALL]);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_SEND_BATCH, &input, SendReply::LEN - 1), short);
        let mut zero = input.clone();
        zero[4..8].fill(0);
        assert_eq!(
            refusal(&t, IOCTL_RAWNIC_SEND_BATCH, &zero, SendReply::LEN),
            s(&[ids, dr, NtStatus::INVALID_PARAMETER])
        );
        // The frame's end cut off: too long for the shortest frame, and
        // past the input's end for the longest.
        let cut = &input[..input.len() - 8];
        let want = s(&[ids, dr, NtStatus::INVALID_BUFFER_SIZE, NtStatus::INFO_LENGTH_MISMATCH]);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_SEND_BATCH, cut, SendReply::LEN), want);
        // OIDs: a query, a set off the allow-list.
        let oid = |set: bool, oid: u32, data: &[u8]| {
            let mut input = vec![0u8; OidRequest::FIXED + data.len()];
            OidRequest { oid, data }.emit(&mut input).expect("room");
            (Template::Oid { set, oid, len: data.len() as u16 }, input)
        };
        let (t, q) = oid(false, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, &[]);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_QUERY_OID, &q, OidReplyHeader::LEN + 4), None);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_QUERY_OID, &q, OidReplyHeader::LEN - 1), short);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_QUERY_OID, &q[..5], 64), s(&[ids, dr, NtStatus::BUFFER_TOO_SMALL]));
        let (t, q) = oid(false, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, &[0; 8]);
        assert_eq!(
            refusal(&t, IOCTL_RAWNIC_QUERY_OID, &q, OidReplyHeader::LEN + 4),
            short,
            "input longer than the room"
        );
        let (t, q) = oid(true, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, &[0; 4]);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_SET_OID, &q, 64), s(&[ids, dr, NtStatus::ACCESS_DENIED]));
        let (t, q) = oid(true, ndis_sys::OID_802_3_MULTICAST_LIST, &[0x01; 5]);
        assert_eq!(refusal(&t, IOCTL_RAWNIC_SET_OID, &q, 64), s(&[ids, dr, NtStatus::INVALID_PARAMETER]));
    }
}
