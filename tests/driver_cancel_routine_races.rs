//! A cancel routine stalled at each of its own spin-lock acquires (ndisim's
//! `CancelRoutine` handler, `Sim::stall_lock_acquire`, det seeds) while
//! everything else runs to completion on another thread: the request ends
//! some other way (a frame, the miniport's answer, a detach), the handle
//! closes and the adapter unbinds. The routine then goes on with an id
//! that names nothing any more, and must touch nothing it no longer may:
//! not the closed binding's handle, not a freed queue, not a later
//! request of the handle. Whatever the step, the request ends once, with
//! a status it may have, the unbind completes, the adapter binds again,
//! and the simulation unloads clean.
//!
//! `driver_close_races.rs` stalls the request (or the cleanup, or the
//! unbind) and lands the other party in it; `driver_unload_races.rs`
//! stalls the routine at its first acquire against the unload. This one
//! stalls the routine at every acquire it makes, for each kind of request
//! that waits.

use ndisim::{AdapterId, InjectOpts, IoToken, RestartSpec, Sim};
use rawnic_proto::ring::{RingLayout, RingReply, RingSetup, wait_flags};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{MAX_NTH, Raced, each_acquire, racing};
use rawnic_tests::rings::{SETUP, User, wait_request};
use std::time::Duration;

const SEEDS: [u64; 2] = [0, 1];

const GROUP: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x07];

/// A request that waits, cancelled while its routine is stalled.
#[derive(Clone, Copy, Debug)]
enum Req {
    Read,
    WaitEvent,
    /// A query the miniport holds until it is answered or cancelled.
    QueryOid,
    /// A multicast set the miniport holds.
    SetMulticast,
    /// The attach IRP of rings (pending while attached).
    RingAttach,
    /// A wait for frames on attached rings.
    RingWait,
}

impl Req {
    fn oid(self) -> bool {
        matches!(self, Req::QueryOid | Req::SetMulticast)
    }

    /// Sends the request on `h`; it pends. The rings of a ring wait are
    /// attached first (returned, so that the test can detach them).
    fn send(self, h: &ndisim::Handle) -> (IoToken, Option<User>) {
        let mut rings = None;
        let t = match self {
            Req::Read => h.read_async(4096),
            Req::WaitEvent => h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN),
            Req::QueryOid => {
                let mut q = vec![0u8; 16];
                OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut q).unwrap();
                h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &q, 64)
            }
            Req::SetMulticast => h.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[GROUP]), 64),
            Req::RingAttach => {
                let l = RingLayout::new(&SETUP).unwrap();
                let region = ndisim::UserRegion::new(l.total).unwrap();
                let mut input = [0u8; RingSetup::LEN];
                SETUP.emit(&mut input).unwrap();
                h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, region)
            }
            Req::RingWait => {
                let u = User::attach(h, SETUP);
                let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN);
                rings = Some(u);
                t
            }
        }
        .expect("the request reaches the driver");
        (t, rings)
    }

    /// Ends the request without its cancel: a frame for a read or a ring
    /// wait, the miniport's answer for an OID, a detach for an attach (an
    /// event wait ends with the unbind's UNBOUND).
    fn end_otherwise(self, sim: &Sim, a: AdapterId, h: &ndisim::Handle) {
        match self {
            Req::Read | Req::RingWait => {
                let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
                sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
            }
            Req::QueryOid | Req::SetMulticast => {
                sim.release_oids(a).unwrap();
            }
            Req::RingAttach => {
                let _ = h.ioctl_async(IOCTL_RAWNIC_RING_DETACH, &empty(), 0).unwrap().wait();
            }
            Req::WaitEvent => {}
        }
    }

    /// The statuses it may end with.
    fn may_end(self, s: NtStatus) -> bool {
        match self {
            // Served, cancelled, or failed by the close or the unbind.
            Req::Read | Req::RingWait => {
                matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED)
            }
            Req::WaitEvent => matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED),
            // Answered (perhaps NDIS_STATUS_REQUEST_ABORTED in the reply:
            // the unbind's cancel), or cancelled.
            Req::QueryOid | Req::SetMulticast => matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED),
            // Detached (SUCCESS) or cancelled.
            Req::RingAttach => matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED),
        }
    }
}

/// The routine of `req`'s IRP stalled at its `nth` acquire, while the
/// request ends otherwise (`natural`), the handle closes and the adapter
/// unbinds; or, with `natural` false, the adapter unbinds first and the
/// handle closes after.
fn cancel_routine_stalled_in(req: Req, natural: bool) {
    let mut seen = std::collections::BTreeMap::<i32, u32>::new();
    // Runs whose routine was still stalled when the other thread was done.
    let outlived = std::sync::Mutex::new(0u32);
    let stalls = each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
        let what = format!("{req:?}, natural {natural}, seed {seed}, acquire {nth}");
        let sim = start_with(&["null"], |b| b.deterministic(seed));
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST | filter::MULTICAST, &[]);
        if req.oid() {
            sim.hold_oids(a).unwrap();
        }
        let (t, rings) = req.send(&h);
        if req.oid() {
            // Held by the miniport: only the answer or a cancel ends it.
            for _ in 0..100 {
                if !sim.pending_oids(a).is_empty() {
                    break;
                }
                sim.sleep(Duration::from_millis(1));
            }
        } else {
            sim.sleep(Duration::from_millis(1));
        }
        assert!(t.try_result().is_none(), "{what}: the request pends");
        let Raced { racer: unbound, stalled, stalled_at_end, .. } = racing(
            &sim,
            "CancelRoutine",
            nth,
            || t.cancel(),
            || {
                if natural {
                    req.end_otherwise(&sim, a, &h);
                    h.close_shared(false);
                    sim.unbind(a)
                } else {
                    let u = sim.unbind(a);
                    h.close_shared(false);
                    u
                }
            },
        );
        unbound.unwrap_or_else(|e| panic!("{what}: the unbind failed: {e}"));
        let r = t.wait().unwrap_or_else(|| panic!("{what}: the request never ended"));
        let s = status(r.status);
        assert!(req.may_end(s), "{what}: ended {s:?}");
        if s == NtStatus::CANCELLED {
            assert_eq!(r.information, 0, "{what}: cancelled with information");
        }
        *seen.entry(r.status).or_default() += 1;
        if stalled_at_end {
            *outlived.lock().unwrap() += 1;
        }
        if let Some(u) = rings {
            let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
            let s = status(done.status);
            assert!(matches!(s, NtStatus::SUCCESS | NtStatus::CANCELLED), "{what}: the attach ended {s:?}");
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        if req.oid() {
            // The restart's own requests go through.
            sim.release_oids(a).unwrap();
        }
        sim.bind(a).unwrap();
        sim.restart(a, &RestartSpec::default()).unwrap();
        let watcher = sim.open().unwrap();
        assert_eq!(list(&watcher)[0].open_handles, 0, "{what}: the closed handle is on no binding");
        watcher.close();
        drop(h);
        finish(sim);
        stalled
    });
    let outlived = outlived.into_inner().unwrap();
    eprintln!("{req:?}, natural {natural}: {stalls} stalled runs ({outlived} outlived the rest), statuses {seen:?}");
    assert!(stalls > 0, "{req:?}: the cancel routine never stalled");
}

#[test]
fn a_read_s_cancel_routine_stalled_at_each_acquire() {
    cancel_routine_stalled_in(Req::Read, true);
    cancel_routine_stalled_in(Req::Read, false);
}

#[test]
fn an_event_wait_s_cancel_routine_stalled_at_each_acquire() {
    cancel_routine_stalled_in(Req::WaitEvent, true);
    cancel_routine_stalled_in(Req::WaitEvent, false);
}

#[test]
fn a_held_oid_query_s_cancel_routine_stalled_at_each_acquire() {
    cancel_routine_stalled_in(Req::QueryOid, true);
    cancel_routine_stalled_in(Req::QueryOid, false);
}

#[test]
fn a_held_multicast_set_s_cancel_routine_stalled_at_each_acquire() {
    cancel_routine_stalled_in(Req::SetMulticast, true);
    cancel_routine_stalled_in(Req::SetMulticast, false);
}

#[test]
fn a_ring_attach_s_cancel_routine_stalled_at_each_acquire() {
    cancel_routine_stalled_in(Req::RingAttach, true);
    cancel_routine_stalled_in(Req::RingAttach, false);
}

#[test]
fn a_ring_wait_s_cancel_routine_stalled_at_each_acquire() {
    cancel_routine_stalled_in(Req::RingWait, true);
    cancel_routine_stalled_in(Req::RingWait, false);
}

/// Not a cancel: a user multicast set (and a query after it) whose
/// dispatch is stalled at each of its spin-lock acquires while the
/// adapter goes to D3 (a miniport that stays Running through it,
/// `pause-on-suspend=off`) and, once the set ended, back to D0. Whatever
/// the step, the set ends (taken, or answered as in low power, which
/// gives the handle its old list back), nothing reaches the adapter in
/// low power (ndisim's rule), and back in D0 the adapter's multicast list
/// is the handle's: the group if the set was taken, none if not.
#[test]
fn a_multicast_set_meeting_a_power_down_at_each_acquire() {
    let mut seen = std::collections::BTreeMap::<u32, u32>::new();
    let stalls = each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
        let what = format!("seed {seed}, acquire {nth}");
        let sim = start_with(&["null@pause-on-suspend=off"], |b| b.deterministic(seed));
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, filter::DIRECTED | filter::BROADCAST | filter::MULTICAST, &[]);
        let Raced { first: set, racer: powered, stalled, .. } = racing(
            &sim,
            "IRP_MJ_DEVICE_CONTROL",
            nth,
            || h.ioctl(IOCTL_RAWNIC_SET_OID, &multicast_input(&[GROUP]), 64),
            || sim.set_power(a, 4),
        );
        powered.unwrap_or_else(|e| panic!("{what}: the set power: {e:?}"));
        assert_eq!(status(set.status), NtStatus::SUCCESS, "{what}: the set ends with a reply");
        let (hdr, _) = OidReplyHeader::parse(&set.data, false).expect("a reply header");
        *seen.entry(hdr.ndis_status as u32).or_default() += 1;
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.set_power(a, 1).unwrap();
        let want: Vec<[u8; 6]> = if hdr.ndis_status == 0 { vec![GROUP] } else { vec![] };
        let mut has = adapter_has(&sim, a).1;
        for _ in 0..200 {
            if has == want {
                break;
            }
            sim.sleep(Duration::from_millis(5));
            has = adapter_has(&sim, a).1;
        }
        assert_eq!(has, want, "{what}: the adapter's list back in D0 (set answered {:#x})", hdr.ndis_status);
        // The handle's list is what the set left: a set of it again
        // changes nothing, and the adapter keeps it.
        let (s, ndis) = set_multicast(&h, &want);
        assert_eq!((s, ndis), (NtStatus::SUCCESS, 0), "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        h.close();
        finish(sim);
        stalled
    });
    eprintln!("multicast set meeting D3: {stalls} stalled runs, NDIS statuses {seen:x?}");
    assert!(stalls > 0);
}

/// A WAIT_BINDS_COMPLETE that pends before NDIS binds (`defer_binds`),
/// with one party stalled at each of its spin-lock acquires while the
/// other two run: its dispatch (while BindsComplete comes and the handle
/// closes), the handle's cleanup (while BindsComplete comes), or its
/// cancel routine (while BindsComplete comes and the handle closes).
/// Whatever the step, the wait ends once, with the binding count or
/// cancelled (or, when the cleanup overtook its stalled dispatch,
/// refused as a request after the cleanup is: INVALID_DEVICE_STATE), and
/// the simulation unloads clean.
#[test]
fn a_wait_for_binds_meeting_binds_complete_and_the_close_at_each_acquire() {
    // (The dispatch is stalled twice: with BindsComplete before the
    // close, and after it.)
    for party in ["IRP_MJ_DEVICE_CONTROL", "IRP_MJ_DEVICE_CONTROL, closed first", "IRP_MJ_CLEANUP", "CancelRoutine"] {
        let stalled_party = party.split(',').next().unwrap();
        let closed_first = party.ends_with("closed first");
        let mut seen = std::collections::BTreeMap::<i32, u32>::new();
        let stalls = each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
            let what = format!("{party} stalled, seed {seed}, acquire {nth}");
            let sim = start_with(&["null"], |b| b.deterministic(seed).defer_binds(true));
            let h = sim.open().unwrap();
            let wait = || h.ioctl_async(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, &empty(), BindsCompleteReply::LEN).unwrap();
            let (t, stalled) = match stalled_party {
                "IRP_MJ_DEVICE_CONTROL" => {
                    let Raced { first: t, stalled, .. } = racing(&sim, stalled_party, nth, wait, || {
                        if closed_first {
                            h.close_shared(false);
                            sim.bind_all().unwrap();
                        } else {
                            sim.bind_all().unwrap();
                            h.close_shared(false);
                        }
                    });
                    (t, stalled)
                }
                "IRP_MJ_CLEANUP" => {
                    let t = wait();
                    sim.sleep(Duration::from_millis(1));
                    assert!(t.try_result().is_none(), "{what}: the wait pends");
                    let Raced { stalled, .. } =
                        racing(&sim, stalled_party, nth, || h.close_shared(false), || sim.bind_all().unwrap());
                    (t, stalled)
                }
                _ => {
                    let t = wait();
                    sim.sleep(Duration::from_millis(1));
                    assert!(t.try_result().is_none(), "{what}: the wait pends");
                    let Raced { stalled, .. } = racing(
                        &sim,
                        stalled_party,
                        nth,
                        || t.cancel(),
                        || {
                            sim.bind_all().unwrap();
                            h.close_shared(false);
                        },
                    );
                    (t, stalled)
                }
            };
            let r = t.wait().unwrap_or_else(|| panic!("{what}: the wait never ended"));
            let s = status(r.status);
            match s {
                NtStatus::SUCCESS => {
                    let reply = BindsCompleteReply::parse(&r.data).expect("a reply");
                    assert_eq!(reply.bindings, 1, "{what}");
                    assert_eq!(r.information, BindsCompleteReply::LEN, "{what}");
                }
                NtStatus::CANCELLED => assert_eq!(r.information, 0, "{what}"),
                // Its dispatch found the handle closed.
                NtStatus::INVALID_DEVICE_STATE if stalled_party == "IRP_MJ_DEVICE_CONTROL" => {
                    assert_eq!(r.information, 0, "{what}")
                }
                s => panic!("{what}: the wait ended {s:?}"),
            }
            *seen.entry(r.status).or_default() += 1;
            assert!(sim.binds_completed(), "{what}");
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            drop(h);
            finish(sim);
            stalled
        });
        eprintln!("wait for binds, {party} stalled: {stalls} stalled runs, statuses {seen:?}");
        assert!(stalls > 0, "{party} never stalled");
    }
}
