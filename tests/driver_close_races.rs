//! A handle's cleanup (another thread's CloseHandle) landing at each step
//! of one of the handle's own requests, and an unbind landing at each step
//! of a cleanup and the reverse. As in `driver_open_races.rs`, ndisim
//! stalls the request (or the cleanup, or the unbind's handler) at its
//! `nth` spin-lock acquire (`Sim::stall_lock_acquire`, det seeds) while the
//! other thread runs as far as it gets, for every `nth` the handler
//! reaches. Whatever the step, the request ends (never left pending in a
//! closed handle) with one of the statuses it may have, the closed handle
//! is on no binding, nothing of it stays on the adapter (its packet
//! filter, its multicast groups), and the simulation unloads clean (no
//! IRP, pool block, OID or NBL left). Likewise a `CancelIoEx` landing in
//! each step of a request that waits, and receives that a cleanup lands in
//! or that land in a cleanup (no NBL stays retained for a closed handle).
//!
//! Two of these windows no other test reached: a user OID whose cleanup
//! comes between its check of the handle and its registration, which its
//! sender must cancel itself (`user_oid.rs`, `cancel_requested: closed`;
//! with the miniport holding OIDs, a mutant that registers it uncancelled
//! leaves the request pending for good), and a RING_WAIT that took the
//! rings before the cleanup detached them and locks them after, while a
//! kicked frame keeps them detaching (`rings.rs`, the wait's `detaching`
//! check; without it the wait is queued on rings whose waits were already
//! failed, and never ends).

use ndisim::{AdapterId, IoToken, RestartSpec, Sim};
use rawnic_proto::ring::{RingLayout, RingReply, RingSetup, TxDesc, wait_flags};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{MAX_NTH, Raced, each_acquire, racing, sweep};
use rawnic_tests::rings::{SETUP, User, kick, wait_request};
use std::time::Duration;

const SEEDS: [u64; 2] = [0, 1];

const GROUP: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x07];

/// One of the handle's requests, sent through the thread that stalls.
#[derive(Clone, Copy, Debug)]
enum Req {
    Read,
    WaitEvent,
    QueryOid,
    SetMulticast,
    SetProgram,
    Write,
    SendBatch,
    Stats,
    /// A ring attach (its IRP stays pending while attached).
    RingAttach,
    /// With rings attached first: a wait for frames, a kick of a frame
    /// the tx ring holds, a detach.
    RingWait,
    RingKick,
    RingDetach,
}

impl Req {
    fn handler(self) -> &'static str {
        match self {
            Req::Read => "IRP_MJ_READ",
            Req::Write => "IRP_MJ_WRITE",
            _ => "IRP_MJ_DEVICE_CONTROL",
        }
    }

    /// Rings attached on `h` before the request, for the ring requests
    /// but the attach, with a frame kicked that the adapter holds (so a
    /// detach waits for it: the rings stay detaching until the test lets
    /// the send go), and one more frame in the tx ring for the kick.
    fn prepare(self, sim: &Sim, a: AdapterId, h: &ndisim::Handle) -> Option<User> {
        if !matches!(self, Req::RingWait | Req::RingKick | Req::RingDetach) {
            return None;
        }
        let u = User::attach(h, SETUP);
        sim.hold_sends(a).unwrap();
        for i in 0..2 {
            let f = frame(PEER, PEER, 0x88b5, 60, i);
            u.m.write(u.frame(i as u64) as usize, &f);
            u.tx(&[TxDesc { addr: u.frame(i as u64), len: f.len() as u32, flags: 0 }]);
            if i == 0 {
                assert_eq!(kick(h).0, NtStatus::SUCCESS);
                assert_eq!(sim.held_sends(a), 1, "the adapter holds the kicked frame");
            }
        }
        Some(u)
    }

    fn send(self, h: &ndisim::Handle) -> IoToken {
        let f = frame(PEER, PEER, 0x88b5, 60, 1);
        match self {
            Req::RingAttach => {
                let l = RingLayout::new(&SETUP).unwrap();
                let region = ndisim::UserRegion::new(l.total).unwrap();
                let mut input = [0u8; RingSetup::LEN];
                SETUP.emit(&mut input).unwrap();
                h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, region)
            }
            Req::RingWait => h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN),
            Req::RingKick => h.ioctl_async(IOCTL_RAWNIC_RING_KICK, &empty(), RingReply::LEN),
            Req::RingDetach => h.ioctl_async(IOCTL_RAWNIC_RING_DETACH, &empty(), 0),
            Req::Read => h.read_async(4096),
            Req::WaitEvent => h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN),
            Req::QueryOid => {
                let mut q = vec![0u8; 16];
                OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut q).unwrap();
                h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &q, 64)
            }
            Req::SetMulticast => h.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[GROUP]), 64),
            Req::SetProgram => {
                let insns = [BpfInsn::new(0x6, 0, 0, 0xffff)];
                let mut b = vec![0u8; ProgramRequest::wire_len(insns.len())];
                ProgramRequest::emit(&insns, &mut b).unwrap();
                h.ioctl_async(IOCTL_RAWNIC_SET_PROGRAM, &b, 0)
            }
            Req::Write => h.write_async(&f),
            Req::SendBatch => h.ioctl_async(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f, None)]), SendReply::LEN),
            Req::Stats => h.ioctl_async(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN),
        }
        .expect("the request reaches the driver")
    }

    /// The statuses it may end with: done before the cleanup, cancelled by
    /// it, or refused after it.
    fn may_end(self, s: NtStatus) -> bool {
        let late = s == NtStatus::INVALID_DEVICE_STATE;
        late || match self {
            Req::Read | Req::WaitEvent | Req::RingWait | Req::RingAttach => s == NtStatus::CANCELLED,
            Req::RingKick | Req::RingDetach => s == NtStatus::SUCCESS,
            // A set the adapter took, or one cancelled by the cleanup.
            Req::QueryOid | Req::SetMulticast => s == NtStatus::SUCCESS || s == NtStatus::CANCELLED,
            Req::SetProgram | Req::Write | Req::SendBatch | Req::Stats => s == NtStatus::SUCCESS,
        }
    }
}

/// Sets `h`'s multicast list to `GROUP` (an adapter that completes OIDs
/// later answers in virtual time).
fn set_group(h: &ndisim::Handle, what: &str) {
    let t = h.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[GROUP]), 64).unwrap();
    let r = t.wait().unwrap_or_else(|| panic!("{what}: the multicast set never ended"));
    assert_eq!(status(r.status), NtStatus::SUCCESS, "{what}");
}

/// A user query and a multicast set (of another group) sent on `h`, which
/// the miniport holds: they pend.
fn held_oids(h: &ndisim::Handle) -> [IoToken; 2] {
    let mut q = vec![0u8; 16];
    OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut q).unwrap();
    let query = h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &q, 64).unwrap();
    let set = h.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[GROUP, [1, 0, 0x5e, 0, 0, 9]]), 64).unwrap();
    assert!(query.try_result().is_none() && set.try_result().is_none(), "held OIDs pend");
    [query, set]
}

/// The held OIDs ended: cancelled by the close (`STATUS_CANCELLED`), or
/// answered with the miniport's status in the reply (the unbind's cancel,
/// `NDIS_STATUS_REQUEST_ABORTED`).
fn oids_ended(oids: &[IoToken; 2], what: &str) {
    for t in oids {
        let r = t.wait().unwrap_or_else(|| panic!("{what}: a held OID never ended"));
        match status(r.status) {
            NtStatus::CANCELLED => assert_eq!(r.information, 0, "{what}"),
            NtStatus::SUCCESS => {
                let (hdr, _) = OidReplyHeader::parse(&r.data, false).expect("a reply header");
                assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_REQUEST_ABORTED, "{what}");
            }
            s => panic!("{what}: a held OID ended {s:?}"),
        }
    }
}

/// Waits (virtual time) until the adapter has neither a packet filter nor
/// a multicast group: what a closed handle's sets and the driver's own
/// after its close leave once they are all back.
fn adapter_emptied(sim: &Sim, a: AdapterId, what: &str) {
    for _ in 0..200 {
        if adapter_has(sim, a) == (0, vec![]) {
            return;
        }
        sim.sleep(Duration::from_millis(5));
    }
    panic!("{what}: the adapter still has {:?}", adapter_has(sim, a));
}

/// The cleanup of a handle landing at each spin-lock acquire of one of its
/// own requests, in flight on another thread (both past the handle check:
/// Windows sends IRP_MJ_CLEANUP without waiting for them). Over adapters
/// completing OIDs inline and later.
fn cleanup_landing_in(req: Req) {
    // (adapter, whether the miniport holds OID requests until cancelled)
    let oid = matches!(req, Req::QueryOid | Req::SetMulticast);
    let configs = [("null", false), ("null@oid=pending", false), ("null", true)];
    for (adapter, hold) in configs.into_iter().filter(|&(_, hold)| oid || !hold) {
        let mut seen = std::collections::BTreeMap::<i32, u32>::new();
        each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
            let what = format!("{adapter}, holding OIDs {hold}, {req:?}, seed {seed}, acquire {nth}");
            let sim = start_with(&[adapter], |b| b.deterministic(seed));
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST | filter::MULTICAST, &[]);
            let rings = req.prepare(&sim, a, &h);
            if hold {
                // Only a cancel ends the request: the close's, or its
                // sender's for one the close overtook before it was
                // registered.
                sim.hold_oids(a).unwrap();
            }
            let Raced { first: t, stalled, .. } =
                racing(&sim, req.handler(), nth, || req.send(&h), || h.close_shared(false));
            let r = t.wait().unwrap_or_else(|| panic!("{what}: the request never ended"));
            if hold {
                let s = status(r.status);
                assert!(matches!(s, NtStatus::CANCELLED | NtStatus::INVALID_DEVICE_STATE), "{what}: ended {s:?}");
                // The driver's own sets after the close go through.
                sim.release_oids(a).unwrap();
            }
            if let Some(u) = rings {
                // The attach ends once the adapter gives its frames
                // back: detached by the request or by the cleanup.
                sim.release_sends(a, None).unwrap();
                let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
                let s = status(done.status);
                assert!(matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED), "{what}: the attach ended {s:?}");
            }
            let s = status(r.status);
            assert!(req.may_end(s), "{what}: ended {s:?}");
            *seen.entry(r.status).or_default() += 1;
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            let watcher = sim.open().unwrap();
            assert_eq!(list(&watcher)[0].open_handles, 0, "{what}: the closed handle is on no binding");
            adapter_emptied(&sim, a, &what);
            // The adapter unbinds and binds again: nothing of the
            // closed handle holds the binding.
            sim.unbind(a).unwrap_or_else(|e| panic!("{what}: the unbind failed: {e}"));
            sim.bind(a).unwrap();
            sim.restart(a, &RestartSpec::default()).unwrap();
            assert_eq!(list(&watcher)[0].open_handles, 0, "{what}");
            watcher.close();
            drop(h);
            finish(sim);
            stalled
        });
        eprintln!("{adapter}, holding OIDs {hold}, {req:?}: statuses {seen:?}");
    }
}

#[test]
fn a_cleanup_landing_in_a_read() {
    cleanup_landing_in(Req::Read);
}

#[test]
fn a_cleanup_landing_in_an_event_wait() {
    cleanup_landing_in(Req::WaitEvent);
}

#[test]
fn a_cleanup_landing_in_an_oid_query() {
    cleanup_landing_in(Req::QueryOid);
}

#[test]
fn a_cleanup_landing_in_a_multicast_set() {
    cleanup_landing_in(Req::SetMulticast);
}

#[test]
fn a_cleanup_landing_in_a_program_set() {
    cleanup_landing_in(Req::SetProgram);
}

#[test]
fn a_cleanup_landing_in_a_write() {
    cleanup_landing_in(Req::Write);
}

#[test]
fn a_cleanup_landing_in_a_send_batch() {
    cleanup_landing_in(Req::SendBatch);
}

#[test]
fn a_cleanup_landing_in_a_stats_request() {
    cleanup_landing_in(Req::Stats);
}

#[test]
fn a_cleanup_landing_in_a_ring_attach() {
    cleanup_landing_in(Req::RingAttach);
}

#[test]
fn a_cleanup_landing_in_a_ring_wait() {
    cleanup_landing_in(Req::RingWait);
}

#[test]
fn a_cleanup_landing_in_a_ring_kick() {
    cleanup_landing_in(Req::RingKick);
}

#[test]
fn a_cleanup_landing_in_a_ring_detach() {
    cleanup_landing_in(Req::RingDetach);
}

/// An unbind and a handle's cleanup racing, one of them stalled at each
/// spin-lock acquire of its handler in turn (`stall_unbind`: the unbind's,
/// after a pause so that its own handler is what stalls; else the
/// cleanup's), the handle having a read, an event wait and two OID
/// requests the miniport holds pending, a multicast group and a capture
/// program: the read ends cancelled by the close or failed by the unbind,
/// the wait with the unbind's event or cancelled, the OIDs cancelled by
/// the close or aborted by the unbind, the unbind completes, and the
/// adapter binds again with no handle and nothing of the closed one.
/// Returns how many runs stalled.
fn unbind_and_cleanup_racing(stall_unbind: bool) -> usize {
    let mut runs = 0;
    for adapter in ["null", "null@oid=pending"] {
        runs += each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
            let what = format!("{adapter}, seed {seed}, acquire {nth}");
            let sim = start_with(&[adapter], |b| b.deterministic(seed));
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DIRECTED | filter::MULTICAST, &[]);
            set_group(&h, &what);
            let set = Req::SetProgram.send(&h).wait().expect("SET_PROGRAM ends");
            assert_eq!(status(set.status), NtStatus::SUCCESS, "{what}");
            let read = h.read_async(4096).unwrap();
            let wait = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN).unwrap();
            // A query and a multicast set the miniport holds.
            sim.hold_oids(a).unwrap();
            let oids = held_oids(&h);
            assert!(read.try_result().is_none() && wait.try_result().is_none(), "{what}: they pend");
            let (unbound, stalled) = if stall_unbind {
                sim.pause(a).unwrap();
                let r = racing(&sim, "ProtocolUnbindAdapterEx", nth, || sim.unbind(a), || h.close_shared(false));
                (r.first, r.stalled)
            } else {
                let r = racing(&sim, "IRP_MJ_CLEANUP", nth, || h.close_shared(false), || sim.unbind(a));
                (r.racer, r.stalled)
            };
            unbound.unwrap_or_else(|e| panic!("{what}: the unbind failed: {e}"));
            let r = read.wait().unwrap_or_else(|| panic!("{what}: the read never ended"));
            let s = status(r.status);
            assert!(matches!(s, NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED), "{what}: the read ended {s:?}");
            let w = wait.wait().unwrap_or_else(|| panic!("{what}: the wait never ended"));
            let s = status(w.status);
            assert!(
                matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED),
                "{what}: the wait ended {s:?}"
            );
            oids_ended(&oids, &what);
            sim.release_oids(a).unwrap();
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            sim.bind(a).unwrap();
            sim.restart(a, &RestartSpec::default()).unwrap();
            let watcher = sim.open().unwrap();
            assert_eq!(list(&watcher)[0].open_handles, 0, "{what}: the closed handle is on no binding");
            adapter_emptied(&sim, a, &what);
            watcher.close();
            drop(h);
            finish(sim);
            stalled
        });
    }
    runs
}

/// An unbind landing at each spin-lock acquire of a handle's cleanup.
#[test]
fn an_unbind_landing_in_each_step_of_a_cleanup_leaves_nothing_behind() {
    let runs = unbind_and_cleanup_racing(false);
    eprintln!("{runs} stalled cleanups");
    assert!(runs > 0);
}

/// A handle's cleanup landing at each spin-lock acquire of an unbind (its
/// handler, which takes the handles off the binding).
#[test]
fn a_cleanup_landing_in_each_step_of_an_unbind_leaves_nothing_behind() {
    let runs = unbind_and_cleanup_racing(true);
    eprintln!("{runs} stalled unbinds");
    assert!(runs > 0);
}

/// `CancelIoEx` from another thread landing at each spin-lock acquire of
/// a request that waits (with the miniport holding OID requests, so only a
/// cancel ends a user OID): whatever the step (before the cancel routine
/// is armed, between arming it and the request's registration, between
/// its registration and `NdisOidRequest`, after), the request ends
/// `STATUS_CANCELLED`, a multicast set cancelled gives the handle its old
/// list back (the adapter keeps no group of it), and the simulation
/// unloads clean.
fn cancel_landing_in(req: Req) {
    let mut seen = std::collections::BTreeMap::<i32, u32>::new();
    each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
        let what = format!("{req:?}, seed {seed}, acquire {nth}");
        let sim = start_with(&["null"], |b| b.deterministic(seed));
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST | filter::MULTICAST, &[]);
        let rings = req.prepare(&sim, a, &h);
        sim.hold_oids(a).unwrap();
        let Raced { first: t, stalled, .. } = racing(&sim, req.handler(), nth, || req.send(&h), || h.cancel_io());
        let r = t.wait().unwrap_or_else(|| panic!("{what}: the request never ended"));
        let s = status(r.status);
        // (The same CancelIoEx cancels the rings' attach: a wait that
        // comes after it finds no rings.)
        let detached = matches!(req, Req::RingWait) && s == NtStatus::INVALID_DEVICE_STATE;
        assert!(s == NtStatus::CANCELLED || detached, "{what}: ended {s:?}");
        *seen.entry(r.status).or_default() += 1;
        sim.release_oids(a).unwrap();
        if let Some(u) = rings {
            // Cancelled too, the attach ends once the kicked frame is
            // back.
            sim.release_sends(a, None).unwrap();
            let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
            assert_eq!(status(done.status), NtStatus::CANCELLED, "{what}");
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        // The handle goes on: no group of the cancelled set is left,
        // and the same request made again waits as it should.
        let groups = || adapter_has(&sim, a).1;
        for _ in 0..200 {
            if groups().is_empty() {
                break;
            }
            sim.sleep(Duration::from_millis(5));
        }
        assert_eq!(groups(), Vec::<[u8; 6]>::new(), "{what}");
        h.close();
        finish(sim);
        stalled
    });
    eprintln!("{req:?}: statuses {seen:?}");
}

#[test]
fn a_cancel_landing_in_a_read() {
    cancel_landing_in(Req::Read);
}

#[test]
fn a_cancel_landing_in_an_event_wait() {
    cancel_landing_in(Req::WaitEvent);
}

#[test]
fn a_cancel_landing_in_a_held_oid_query() {
    cancel_landing_in(Req::QueryOid);
}

#[test]
fn a_cancel_landing_in_a_held_multicast_set() {
    cancel_landing_in(Req::SetMulticast);
}

#[test]
fn a_cancel_landing_in_a_ring_attach() {
    cancel_landing_in(Req::RingAttach);
}

#[test]
fn a_cancel_landing_in_a_ring_wait() {
    cancel_landing_in(Req::RingWait);
}

/// Receives landing at each spin-lock acquire of a handle's cleanup: the
/// handle holds retained frames (long ones, no read waiting) and more
/// come while its cleanup runs, from a second thread, in indications of
/// their own and then one that says the miniport is low on buffers
/// (`NDIS_RECEIVE_FLAGS_RESOURCES`). Whatever the step, once the cleanup
/// is done the binding holds no received NBL (none is retained for a
/// closed handle), a pause completes, and another handle still gets the
/// frames.
#[test]
fn receives_landing_in_each_step_of_a_cleanup_leave_no_nbl_retained() {
    let (runs, _) = sweep(&SEEDS, "null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST, &[]);
        let mut seq = 0;
        inject_numbered(&sim, a, [600; 8], &mut seq);
        assert_eq!(sim.outstanding(a).receives_retained, 8, "{what}: the long frames are retained");
        let Raced { stalled, .. } = racing(
            &sim,
            "IRP_MJ_CLEANUP",
            nth,
            || h.close_shared(false),
            || {
                let f = frame(BROADCAST, PEER, 0x88b5, 600, 99);
                let refs = [&f[..]; 4];
                sim.inject(a, &refs, &ndisim::InjectOpts::default()).unwrap();
                let low = ndisim::InjectOpts { resources: true, ..ndisim::InjectOpts::default() };
                sim.inject(a, &refs, &low).unwrap();
            },
        );
        assert_eq!(retained(&sim, a, 0), 0, "{what}: NBLs still retained after the cleanup");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.pause(a).unwrap_or_else(|e| panic!("{what}: the pause failed: {e}"));
        sim.restart(a, &RestartSpec::default()).unwrap();
        let (other, _) = open(&sim, 0, filter::BROADCAST, &[]);
        inject_numbered(&sim, a, [600], &mut seq);
        assert_eq!(queued(&other).len(), 1, "{what}");
        other.close();
        drop(h);
        finish(sim);
        stalled
    });
    eprintln!("{runs} stalled cleanups");
    assert!(runs > 0);
}

/// A handle's cleanup landing at each spin-lock acquire of a receive
/// indication of long frames (which a handle with no read waiting would
/// retain): the same ends.
#[test]
fn a_cleanup_landing_in_each_step_of_a_receive_leaves_no_nbl_retained() {
    let (runs, _) = sweep(&SEEDS, "null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST, &[]);
        let mut seq = 0;
        inject_numbered(&sim, a, [600; 4], &mut seq);
        let f = frame(BROADCAST, PEER, 0x88b5, 600, 99);
        let Raced { stalled, .. } = racing(
            &sim,
            "ProtocolReceiveNetBufferLists",
            nth,
            || {
                let refs = [&f[..]; 8];
                sim.inject(a, &refs, &ndisim::InjectOpts::default()).unwrap();
            },
            || h.close_shared(false),
        );
        assert_eq!(retained(&sim, a, 0), 0, "{what}: NBLs still retained after the cleanup");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.pause(a).unwrap_or_else(|e| panic!("{what}: the pause failed: {e}"));
        sim.restart(a, &RestartSpec::default()).unwrap();
        drop(h);
        finish(sim);
        stalled
    });
    eprintln!("{runs} stalled receives");
    assert!(runs > 0);
}

/// An unbind (its pause, then its handler) landing at each spin-lock
/// acquire of one of a handle's requests: the request ends, done before
/// or refused as the binding went, the unbind completes (waiting, if it
/// must, for a send that holds the send gate), the adapter binds again,
/// and the simulation unloads clean.
fn unbind_landing_in(req: Req) {
    let mut seen = std::collections::BTreeMap::<i32, u32>::new();
    for adapter in ["null", "null@oid=pending"] {
        each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
            let what = format!("{adapter}, {req:?}, seed {seed}, acquire {nth}");
            let sim = start_with(&[adapter], |b| b.deterministic(seed));
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST | filter::MULTICAST, &[]);
            let rings = req.prepare(&sim, a, &h);
            if rings.is_some() {
                // The unbind's pause waits for the kicked frame.
                sim.release_sends(a, None).unwrap();
                sim.set_completion(a, ndisim::CompletionPolicy::Immediate).unwrap();
            }
            let Raced { first: t, racer: unbound, stalled, .. } =
                racing(&sim, req.handler(), nth, || req.send(&h), || sim.unbind(a));
            unbound.unwrap_or_else(|e| panic!("{what}: the unbind failed: {e}"));
            if matches!(req, Req::RingAttach) && t.wait_for(Duration::from_millis(100)).is_none() {
                // Attached before the unbind: the UMEM stays attached
                // (its pages locked) until the user detaches it, which
                // an orphaned handle still may.
                let d = h.ioctl_async(IOCTL_RAWNIC_RING_DETACH, &empty(), 0).unwrap().wait().expect("the detach ends");
                assert_eq!(status(d.status), NtStatus::SUCCESS, "{what}");
            }
            let r = t.wait().unwrap_or_else(|| panic!("{what}: the request never ended"));
            let s = status(r.status);
            // Done before the unbind (a send while the pause began:
            // DEVICE_NOT_READY), or refused as the binding went:
            // DEVICE_REMOVED, whichever step the unbind overtook it at
            // (never INVALID_DEVICE_STATE, which tells the user to open
            // a binding first: the handle did).
            assert!(
                matches!(s, NtStatus::SUCCESS | NtStatus::DEVICE_REMOVED | NtStatus::DEVICE_NOT_READY),
                "{what}: ended {s:?}"
            );
            *seen.entry(r.status).or_default() += 1;
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            if let Some(u) = rings {
                if !matches!(req, Req::RingDetach) || s != NtStatus::SUCCESS {
                    let d = h.ioctl_async(IOCTL_RAWNIC_RING_DETACH, &empty(), 0).unwrap().wait().unwrap();
                    assert_eq!(status(d.status), NtStatus::SUCCESS, "{what}: the orphaned handle detaches");
                }
                let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
                assert_eq!(status(done.status), NtStatus::SUCCESS, "{what}");
            }
            sim.bind(a).unwrap();
            sim.restart(a, &RestartSpec::default()).unwrap();
            let watcher = sim.open().unwrap();
            assert_eq!(list(&watcher)[0].open_handles, 0, "{what}: the orphaned handle is on no binding");
            watcher.close();
            h.close();
            finish(sim);
            stalled
        });
    }
    eprintln!("{req:?}: statuses {seen:?}");
}

#[test]
fn an_unbind_landing_in_requests() {
    for req in [
        Req::Read,
        Req::WaitEvent,
        Req::QueryOid,
        Req::SetMulticast,
        Req::SetProgram,
        Req::Write,
        Req::SendBatch,
        Req::Stats,
        Req::RingWait,
        Req::RingKick,
        Req::RingDetach,
    ] {
        unbind_landing_in(req);
    }
}

/// A RING_ATTACH that the unbind overtakes after its check of the
/// handle's binding (between the UMEM's setup and the handle's lock that
/// installs the rings) fails `STATUS_DEVICE_REMOVED`, as one that comes a
/// moment later does, not `STATUS_INVALID_DEVICE_STATE`.
#[test]
fn an_unbind_landing_in_a_ring_attach() {
    unbind_landing_in(Req::RingAttach);
}
