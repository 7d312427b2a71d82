//! Call sweeps: a handler stalled right after each call it makes, of any
//! export (`Sim::stall_call`, det seeds), while a PnP event and a close
//! land. After a call is where a hand-over's windows are: the thread has
//! just completed an IRP, returned or sent NBLs, completed an OID request
//! or let a lock go, and waits before its next instruction while the
//! receiver of what it handed over finishes with it and frees it. The
//! deterministic scheduler switches only at an export's entry, and the
//! lock sweeps (`driver_pnp_sweeps.rs`) stall before acquires, so no other
//! test opens these windows. Whatever the call: no send reaches a binding
//! that is not Running, a pause completes with nothing outstanding, every
//! request ends with a status it may have, and the simulation unloads
//! clean. Dispatch routines too: an OPEN as the adapter unbinds (a
//! SEND_BATCH and a RING_KICK as the binding pauses are swept after their
//! calls in `driver_pnp_sweeps.rs`, beside their acquires).

use ndisim::{InjectOpts, RestartSpec};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{MAX_NTH, racing_call, sweep};

const SEEDS: [u64; 2] = [0, 1];

/// More calls than a cleanup with READs pending and frames queued makes.
const CLEANUP_CALLS: u64 = 160;

/// More calls than an OPEN makes.
const REQUEST_CALLS: u64 = 100;

/// The send-completion handler stalled after each of its calls (the
/// WRITEs' IRPs completed, its lock let go) while the writer's handle
/// closes and the binding pauses: every WRITE ends once, the pause
/// completes with no send in flight.
#[test]
fn a_close_and_a_pause_landing_after_each_call_of_a_send_completion() {
    let (_, furthest) = sweep(&SEEDS, "null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        sim.hold_sends(a).unwrap();
        let writes: Vec<_> =
            (0..3).map(|i| h.write_async(&frame(PEER, PEER, 0x88b5, 80 + i, i as u32)).unwrap()).collect();
        let r = racing_call(
            &sim,
            "ProtocolSendNetBufferListsComplete",
            None,
            true,
            nth,
            || sim.release_sends(a, None),
            || {
                h.close_shared(false);
                sim.pause(a)
            },
        );
        assert_eq!(r.first.unwrap_or_else(|e| panic!("{what}: the release: {e:?}")), 3, "{what}");
        r.racer.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
        for w in &writes {
            let st = status(w.wait().expect("the write ended").status);
            assert_eq!(st, NtStatus::SUCCESS, "{what}");
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        let o = sim.outstanding(a);
        assert_eq!((o.sends_in_flight, o.receives_retained), (0, 0), "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        drop(h);
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 4, "the send completion was stalled after {furthest} calls at most");
}

/// The receive handler stalled after each of its calls (a pending READ
/// completed, NBLs returned, its locks let go) while the reader's handle
/// closes and the binding pauses: the pause completes with nothing
/// retained, and the READ ends once, with the frame or cancelled.
#[test]
fn a_close_and_a_pause_landing_after_each_call_of_a_receive() {
    let (_, furthest) = sweep(&SEEDS, "null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let pending = h.read_async(2048).unwrap();
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, PEER, 0x88b5, 600 + i, 40 + i as u32)).collect();
        let r = racing_call(
            &sim,
            "ProtocolReceiveNetBufferLists",
            None,
            true,
            nth,
            || {
                let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                sim.inject(a, &refs, &InjectOpts::default())
            },
            || {
                h.close_shared(true);
                sim.pause(a)
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: the receive: {e:?}"));
        r.racer.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
        let got = pending.wait().expect("the read ended");
        match status(got.status) {
            NtStatus::SUCCESS => assert_eq!(records(&got)[0].1, frames[0], "{what}"),
            NtStatus::CANCELLED => {}
            st => panic!("{what}: {st:?}"),
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert_eq!(sim.outstanding(a).receives_retained, 0, "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        drop(h);
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 4, "the receive was stalled after {furthest} calls at most");
}

/// The cleanup of a handle with READs pending and frames retained,
/// stalled after each of its calls (each READ cancelled and completed,
/// NBLs returned, locks let go) while long frames arrive and the binding
/// unbinds: every READ ends once, the unbind completes with nothing
/// retained or in flight, and the adapter binds and runs again.
#[test]
fn receives_and_an_unbind_landing_after_each_call_of_a_cleanup() {
    let (_, furthest) = sweep(&SEEDS, "null", CLEANUP_CALLS, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
        for i in 0..3 {
            let f = frame(BROADCAST, PEER, 0x88b5, 700 + i, 60 + i as u32);
            sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        }
        // The frames stay queued on `h`; `other` reads one of its own.
        let _ = read(&other, 2048);
        let reads: Vec<_> = (0..2).map(|_| other.read_async(64).unwrap()).collect();
        let r = racing_call(
            &sim,
            "IRP_MJ_CLEANUP",
            None,
            true,
            nth,
            || other.close_shared(true),
            || {
                for i in 0..2 {
                    let f = frame(BROADCAST, PEER, 0x88b5, 650 + i, 80 + i as u32);
                    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
                }
                sim.unbind(a)
            },
        );
        r.racer.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
        for t in &reads {
            let st = status(t.wait().expect("the read ended").status);
            assert!(
                matches!(st, NtStatus::SUCCESS | NtStatus::CANCELLED | NtStatus::BUFFER_TOO_SMALL),
                "{what}: {st:?}"
            );
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        let o = sim.outstanding(a);
        assert_eq!((o.sends_in_flight, o.receives_retained), (0, 0), "{what}");
        sim.bind(a).unwrap();
        sim.restart(a, &RestartSpec::default()).unwrap();
        let (again, _) = open(&sim, 0, filter::DEFAULT, &[]);
        assert_eq!(status(again.write(&frame(PEER, PEER, 0x88b5, 80, 2)).status), NtStatus::SUCCESS, "{what}");
        again.close();
        drop(other);
        h.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 4, "the cleanup was stalled after {furthest} calls at most");
    assert!(furthest < CLEANUP_CALLS, "the cleanup makes more calls than the sweep reaches");
}

/// The OID completion handler stalled after each of its calls (the
/// user's query completed, its lock let go) while the asker's handle
/// closes and the binding pauses and unbinds: the query ends once, with
/// the miniport's answer or refused, and the unbind completes.
#[test]
fn a_close_and_an_unbind_landing_after_each_call_of_an_oid_completion() {
    let (_, furthest) = sweep(&SEEDS, "null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        sim.hold_oids(a).unwrap();
        let mut input = vec![0u8; 16];
        OidRequest { oid: ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, data: &[] }.emit(&mut input).unwrap();
        let query = h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &input, OidReplyHeader::LEN + 4).unwrap();
        let r = racing_call(
            &sim,
            "ProtocolOidRequestComplete",
            None,
            true,
            nth,
            || sim.release_oids(a),
            || {
                h.close_shared(true);
                sim.pause(a).and_then(|()| sim.unbind(a))
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: the release: {e:?}"));
        r.racer.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
        let st = status(query.wait().expect("the query ended").status);
        assert!(matches!(st, NtStatus::SUCCESS | NtStatus::CANCELLED), "{what}: {st:?}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.bind(a).unwrap();
        sim.restart(a, &RestartSpec::default()).unwrap();
        drop(h);
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the OID completion was stalled after {furthest} calls at most");
}

/// An OPEN stalled after each of its calls (its locks let go, the
/// binding's reference taken) while the adapter unbinds, Running or
/// paused: the OPEN fails OBJECT_NAME_NOT_FOUND and the handle opens
/// again later, or it succeeds and the unbind orphans the handle
/// (DEVICE_REMOVED); the unbind completes, and the adapter binds again.
#[test]
fn an_unbind_landing_after_each_call_of_an_open() {
    let mut runs = 0;
    for paused in [false, true] {
        let (n, furthest) = sweep(&SEEDS, "null", REQUEST_CALLS, |what, sim, a, nth| {
            let what = format!("{what}, paused {paused}");
            if paused {
                sim.pause(a).unwrap();
            }
            let name = entry(&sim, 0).name;
            let h = sim.open().unwrap();
            let req = open_request(&name, PacketFilter::DIRECTED, &[], 0, 0, 0);
            let r = racing_call(
                &sim,
                "IRP_MJ_DEVICE_CONTROL",
                None,
                true,
                nth,
                || h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN),
                || sim.unbind(a),
            );
            r.racer.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            assert!(list(&h).is_empty(), "{what}: the binding is gone");
            let f = frame(PEER, PEER, 0x88b5, 60, 1);
            match status(r.first.status) {
                NtStatus::OBJECT_NAME_NOT_FOUND => {
                    sim.bind(a).unwrap();
                    sim.restart(a, &RestartSpec::default()).unwrap();
                    let again = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
                    assert_eq!(status(again.status), NtStatus::SUCCESS, "{what}: the handle is reusable");
                    assert_eq!(status(h.write(&f).status), NtStatus::SUCCESS, "{what}");
                }
                NtStatus::SUCCESS => {
                    assert_eq!(status(h.write(&f).status), NtStatus::DEVICE_REMOVED, "{what}: orphaned");
                    sim.bind(a).unwrap();
                    sim.restart(a, &RestartSpec::default()).unwrap();
                    let (n, _) = open(&sim, 0, PacketFilter::DIRECTED, &[]);
                    assert_eq!(list(&n)[0].open_handles, 1, "{what}: the orphan stays off the new binding");
                    n.close();
                }
                s => panic!("{what}: the OPEN ended {s:?}"),
            }
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            h.close();
            finish(sim);
            r.stalled
        });
        assert!(furthest >= 4, "the OPEN was stalled after {furthest} calls at most");
        assert!(furthest < REQUEST_CALLS, "the OPEN makes more calls than the sweep reaches");
        runs += n;
    }
    assert!(runs >= 8, "{runs} runs stalled");
}
