//! Hand-over windows: a handler stalled right after each call it makes
//! (`Sim::stall_call`, after the export's body, det seeds), while another
//! thread does what frees or changes what was just handed over: the close
//! of a handle whose request the stalled thread just completed, an unbind
//! while the unbind's own handlers and work item stand after a call, a
//! close right after a cancel routine completed its IRP. Each sweep runs
//! under special pool in a child process (a use-after-free faults there,
//! and a fault in driver code ends the process): the parent asserts the
//! child passed. Whatever the call: no verifier violation, nothing
//! outstanding, every request ends with a status it may have, and the
//! simulation unloads clean.

use ndisim::{CompletionPolicy, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{STALL, each_acquire, racing_call};
use std::sync::Mutex;

const SEEDS: [u64; 2] = [0, 1];

/// More calls than any handler these sweeps aim at makes in its scenario.
const MAX_CALLS: u64 = 120;

/// More calls than an unbind's handlers and work item make with two
/// handles' requests to end.
const UNBIND_CALLS: u64 = 160;

/// The environment variable naming the sweep a child process runs.
const CHILD: &str = "RAWNIC_HANDOVER_CHILD";

/// Runs `body` in a child process (this test binary, `--exact name`),
/// or, in that child, runs it here. A child sent for another test runs
/// nothing.
fn in_child(name: &str, body: impl FnOnce()) {
    match std::env::var(CHILD) {
        Ok(n) if n == name => return body(),
        Ok(_) => return,
        Err(_) => {}
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .output()
        .expect("the child process ran");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed in its child ({:?}):\n{text}", out.status.code());
    assert!(text.contains("1 passed"), "{name} did not run in its child:\n{text}");
}

/// `each_acquire` over `SEEDS`, each run on a fresh deterministic
/// simulation of one `null` adapter under special pool: `run(what, sim,
/// nth)` says whether its handler stalled. Returns the runs that stalled
/// and the furthest call that did.
fn sweep(mut run: impl FnMut(&str, Sim, u64) -> bool) -> (usize, u64) {
    sweep_to(MAX_CALLS, &mut run)
}

/// `sweep`, to the `max`th call.
fn sweep_to(max: u64, run: impl FnMut(&str, Sim, u64) -> bool) -> (usize, u64) {
    sweep_on("null", max, run)
}

/// `sweep_to`, of an adapter of ndisim spec `spec` (named `null0`).
fn sweep_on(spec: &str, max: u64, mut run: impl FnMut(&str, Sim, u64) -> bool) -> (usize, u64) {
    let mut furthest = 0;
    let runs = each_acquire(&SEEDS, max, |seed, nth| {
        let what = format!("seed {seed}, call {nth}");
        if std::env::var_os("RAWNIC_HANDOVER_TRACE").is_some() {
            eprintln!("{what}");
        }
        let sim = start_with(&[spec], |b| b.deterministic(seed).special_pool(true));
        let stalled = run(&what, sim, nth);
        if stalled {
            furthest = furthest.max(nth);
        }
        stalled
    });
    assert!(furthest < max, "the handler makes more calls than the sweep reaches");
    if std::env::var_os("RAWNIC_HANDOVER_TRACE").is_some() {
        eprintln!("{runs} runs stalled, the furthest after call {furthest}");
    }
    (runs, furthest)
}

fn clean(sim: &Sim, what: &str) {
    assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
    let a = sim.adapter_id("null0").unwrap();
    let o = sim.outstanding(a);
    assert_eq!((o.sends_in_flight, o.receives_retained), (0, 0), "{what}");
}

/// A WRITE stalled after each of its calls (among them the completion of
/// another handle's pending READ, which the frame satisfied as a local
/// send) while that reader closes its handle as soon as its READ
/// completes: the close frees the reader's state, which the writer must
/// not touch after; the READ has the frame, the WRITE succeeds.
#[test]
fn a_read_completed_by_a_local_write_then_its_handle_closed() {
    in_child("a_read_completed_by_a_local_write_then_its_handle_closed", || {
        let (_, furthest) = sweep(|what, sim, nth| {
            let (w, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (r, _) = open_with(&sim, 0, filter::DEFAULT, &[], LocalSends::Others);
            let pending = r.read_async(2048).unwrap();
            let f = frame(BROADCAST, PEER, 0x88b5, 90, 7);
            let raced = racing_call(
                &sim,
                "IRP_MJ_WRITE",
                None,
                true,
                nth,
                || w.write(&f),
                || {
                    let got = pending.wait().expect("the read ended");
                    r.close_shared(false);
                    got
                },
            );
            assert_eq!(status(raced.first.status), NtStatus::SUCCESS, "{what}");
            assert_eq!(status(raced.racer.status), NtStatus::SUCCESS, "{what}");
            assert_eq!(records(&raced.racer)[0].1, f, "{what}");
            clean(&sim, what);
            w.close();
            drop(r);
            finish(sim);
            raced.stalled
        });
        assert!(furthest >= 3, "the write was stalled after {furthest} calls at most");
    });
}

/// A cancel routine stalled after each of its calls (the READ it
/// cancelled completed, the cancel spin lock let go) while the READ's
/// handle closes and the adapter unbinds: the READ ends CANCELLED, once,
/// the unbind completes, and the driver unloads (it waits for the
/// routine).
#[test]
fn a_close_and_an_unbind_landing_after_each_call_of_a_cancel_routine() {
    in_child("a_close_and_an_unbind_landing_after_each_call_of_a_cancel_routine", || {
        let (_, furthest) = sweep(|what, sim, nth| {
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let pending = h.read_async(2048).unwrap();
            let raced = racing_call(
                &sim,
                "CancelRoutine",
                None,
                true,
                nth,
                || pending.cancel(),
                || {
                    h.close_shared(false);
                    sim.unbind(a)
                },
            );
            assert!(raced.first, "{what}: the read had a cancel routine");
            raced.racer.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
            let st = status(pending.wait().expect("the read ended").status);
            assert_eq!(st, NtStatus::CANCELLED, "{what}");
            clean(&sim, what);
            sim.bind(a).unwrap();
            sim.restart(a, &RestartSpec::default()).unwrap();
            drop(h);
            finish(sim);
            raced.stalled
        });
        assert!(furthest >= 2, "the cancel routine was stalled after {furthest} calls at most");
    });
}

/// A QUERY_OID stalled after each of its calls (the request handed to
/// NDIS and completed inline by the `null` miniport, its IRP completed,
/// its locks let go) while its own handle closes and the binding pauses
/// and unbinds: the query ends once, with the answer or refused, the
/// unbind completes, and the adapter binds again.
#[test]
fn a_close_and_an_unbind_landing_after_each_call_of_a_user_oid_query() {
    in_child("a_close_and_an_unbind_landing_after_each_call_of_a_user_oid_query", || {
        let (_, furthest) = sweep(|what, sim, nth| {
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let mut input = vec![0u8; 16];
            OidRequest { oid: ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, data: &[] }.emit(&mut input).unwrap();
            let raced = racing_call(
                &sim,
                "IRP_MJ_DEVICE_CONTROL",
                None,
                true,
                nth,
                || h.ioctl(IOCTL_RAWNIC_QUERY_OID, &input, OidReplyHeader::LEN + 4),
                || {
                    h.close_shared(true);
                    sim.pause(a).and_then(|()| sim.unbind(a))
                },
            );
            raced.racer.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
            let st = status(raced.first.status);
            assert!(
                matches!(
                    st,
                    NtStatus::SUCCESS
                        | NtStatus::CANCELLED
                        | NtStatus::DEVICE_REMOVED
                        | NtStatus::DEVICE_NOT_READY
                        | NtStatus::INVALID_DEVICE_STATE
                ),
                "{what}: {st:?}"
            );
            clean(&sim, what);
            sim.bind(a).unwrap();
            sim.restart(a, &RestartSpec::default()).unwrap();
            let (again, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (hdr, _) = oid_query(&again, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, OidReplyHeader::LEN + 4);
            assert_eq!(hdr.ndis_status, 0, "{what}");
            again.close();
            drop(h);
            finish(sim);
            raced.stalled
        });
        assert!(furthest >= 3, "the query was stalled after {furthest} calls at most");
    });
}

/// An unbind whose handlers and work item (and, with a close that pends,
/// NDIS's close completion) stall after each of their calls, or each of
/// their hand-overs (the pause completed, NdisCloseAdapterEx, the unbind
/// completed as the binding goes, an IRP completed, a lock let go) while a handle with a READ pending and one with
/// rings and a ring wait close, and a third opens the adapter and lists:
/// every request ends with a status it may have, the unbind completes,
/// and the adapter binds and runs again.
#[test]
fn closes_and_an_open_landing_after_each_call_of_an_unbind() {
    use rawnic_tests::rings::{SETUP, User, wait_request};
    in_child("closes_and_an_open_landing_after_each_call_of_an_unbind", || {
        // The work item makes hundreds of calls over the test (the
        // binding's returns, the handles' requests, the next bind's work):
        // it stalls after each call of the hand-overs an unbind makes there.
        let aims: [(&str, Option<&str>); 8] = [
            ("ProtocolNetPnPEvent", None),
            ("ProtocolUnbindAdapterEx", None),
            ("WorkerRoutine", Some("NdisCompleteNetPnPEvent")),
            ("WorkerRoutine", Some("NdisCloseAdapterEx")),
            ("WorkerRoutine", Some("NdisCompleteUnbindAdapterEx")),
            ("WorkerRoutine", Some("IofCompleteRequest")),
            ("WorkerRoutine", Some("NdisReleaseSpinLock")),
            ("WorkerRoutine", Some("NdisDprReleaseSpinLock")),
        ];
        // And with a close that pends: NDIS's close completion, which
        // lets the binding go, after each of its calls.
        // (It frees the send pool's NBLs one call each: aimed at its
        // hand-overs.)
        let pending: [(&str, Option<&str>); 5] = [
            ("ProtocolCloseAdapterCompleteEx", Some("IofCompleteRequest")),
            ("ProtocolCloseAdapterCompleteEx", Some("NdisCompleteUnbindAdapterEx")),
            ("ProtocolCloseAdapterCompleteEx", Some("NdisReleaseSpinLock")),
            ("ProtocolCloseAdapterCompleteEx", Some("NdisDprReleaseSpinLock")),
            ("WorkerRoutine", Some("NdisCloseAdapterEx")),
        ];
        let aims = aims.iter().map(|&(h, c)| ("null", h, c));
        for (spec, handler, call) in aims.chain(pending.iter().map(|&(h, c)| ("null@close=pending", h, c))) {
            let (_, furthest) = sweep_on(spec, UNBIND_CALLS, |what, sim, nth| {
                let what = format!("{spec}: {handler} after {call:?}, {what}");
                let a = sim.adapter_id("null0").unwrap();
                let name = entry(&sim, 0).name;
                let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
                let read = h.read_async(2048).unwrap();
                let (rh, _) = open(&sim, 0, filter::DEFAULT, &[]);
                let u = User::attach(&rh, SETUP);
                let wait = rh
                    .ioctl_async(
                        IOCTL_RAWNIC_RING_WAIT,
                        &wait_request(rawnic_proto::ring::wait_flags::RX),
                        rawnic_proto::ring::RingReply::LEN,
                    )
                    .unwrap();
                let n = sim.open().unwrap();
                let req = open_request(&name, PacketFilter::DIRECTED, &[], 0, 0, 0);
                let raced = racing_call(
                    &sim,
                    handler,
                    call,
                    true,
                    nth,
                    || sim.unbind(a),
                    || {
                        h.close_shared(true);
                        rh.close_shared(true);
                        let opened = status(n.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN).status);
                        let _ = list(&n);
                        opened
                    },
                );
                raced.first.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
                let st = status(read.wait().expect("the read ended").status);
                assert!(matches!(st, NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED), "{what}: read {st:?}");
                let st = status(wait.wait().expect("the wait ended").status);
                assert!(matches!(st, NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED), "{what}: ring wait {st:?}");
                let st = status(u.attach.wait().expect("the attach ended").status);
                assert!(
                    matches!(st, NtStatus::SUCCESS | NtStatus::CANCELLED | NtStatus::DEVICE_REMOVED),
                    "{what}: attach {st:?}"
                );
                assert!(
                    matches!(raced.racer, NtStatus::SUCCESS | NtStatus::OBJECT_NAME_NOT_FOUND),
                    "{what}: open {:?}",
                    raced.racer
                );
                clean(&sim, &what);
                assert!(list(&n).is_empty(), "{what}: the binding is gone");
                sim.bind(a).unwrap();
                sim.restart(a, &RestartSpec::default()).unwrap();
                let (again, _) = open(&sim, 0, filter::DEFAULT, &[]);
                assert_eq!(status(again.write(&frame(PEER, PEER, 0x88b5, 80, 2)).status), NtStatus::SUCCESS, "{what}");
                again.close();
                n.close();
                drop((h, rh, u));
                finish(sim);
                raced.stalled
            });
            if call.is_none() || call == Some("NdisCloseAdapterEx") {
                assert!(furthest >= 1, "{handler} was stalled after {furthest} calls of {call:?} at most");
            }
            if std::env::var_os("RAWNIC_HANDOVER_TRACE").is_some() {
                eprintln!("{handler} after {call:?}: furthest {furthest}");
            }
        }
    });
}

/// The work item that completes a pause (the last send came back after
/// the pause handler pended) stalled after each of its calls,
/// NdisCompleteNetPnPEvent among them, while the sender's handle closes
/// and another handle sends: no send reaches the paused binding, the
/// pause completes with none in flight, and the binding restarts.
#[test]
fn a_close_and_a_send_landing_after_each_call_of_a_pause_work_item() {
    in_child("a_close_and_a_send_landing_after_each_call_of_a_pause_work_item", || {
        let (_, furthest) = sweep(|what, sim, nth| {
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
            sim.hold_sends(a).unwrap();
            let writes: Vec<_> =
                (0..3).map(|i| h.write_async(&frame(PEER, PEER, 0x88b5, 80 + i, i as u32)).unwrap()).collect();
            sim.stall_call("WorkerRoutine", None, nth, true, STALL).unwrap();
            let paused = Mutex::new(None);
            let raced = Mutex::new(None);
            sim.run_actors(vec![
                Box::new(|| *paused.lock().unwrap() = Some(sim.pause(a))),
                Box::new(|| {
                    // The pause pends for the held sends; their completion
                    // leaves it to the work item.
                    while sim.pnp_pending(a).is_empty() {
                        sim.step();
                    }
                    sim.release_sends(a, None).unwrap();
                    while sim.call_stalls().2 == 0 && paused.lock().unwrap().is_none() {
                        sim.step();
                    }
                    h.close_shared(true);
                    let st = status(other.write(&frame(PEER, PEER, 0x88b5, 70, 9)).status);
                    *raced.lock().unwrap() = Some(st);
                }),
            ]);
            let stalled = sim.call_stalls().1 == 1;
            paused.into_inner().unwrap().unwrap().unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
            let st = raced.into_inner().unwrap().unwrap();
            assert!(matches!(st, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: the other's write {st:?}");
            for w in &writes {
                let st = status(w.wait().expect("the write ended").status);
                assert_eq!(st, NtStatus::SUCCESS, "{what}");
            }
            clean(&sim, what);
            sim.set_completion(a, CompletionPolicy::Immediate).unwrap();
            sim.restart(a, &RestartSpec::default()).unwrap();
            assert_eq!(status(other.write(&frame(PEER, PEER, 0x88b5, 80, 2)).status), NtStatus::SUCCESS, "{what}");
            other.close();
            drop(h);
            finish(sim);
            stalled
        });
        assert!(furthest >= 2, "the work item was stalled after {furthest} calls at most");
    });
}

/// A send completion stalled after each of its calls while the rings it
/// returns frames to are detached: the last completion completes the
/// attach IRP (the UMEM given back), and the user closes the handle as
/// soon as it sees that; every frame came back, the attach ends SUCCESS.
#[test]
fn an_attach_completed_by_a_send_completion_then_its_handle_closed() {
    use rawnic_tests::rings::{SETUP, User};
    in_child("an_attach_completed_by_a_send_completion_then_its_handle_closed", || {
        let (_, furthest) = sweep(|what, sim, nth| {
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let u = User::attach(&h, SETUP);
            u.post_copies(&frame(BROADCAST, PEER, 0x88b5, 120, 5), 8);
            sim.hold_sends(a).unwrap();
            let (st, _) = rawnic_tests::rings::kick(&h);
            assert_eq!(st, NtStatus::SUCCESS, "{what}");
            let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
            assert_eq!(status(r.status), NtStatus::SUCCESS, "{what}");
            let raced = racing_call(
                &sim,
                "ProtocolSendNetBufferListsComplete",
                None,
                true,
                nth,
                || sim.release_sends(a, None),
                || {
                    let done = u.attach.wait().expect("the attach ended");
                    h.close_shared(false);
                    done
                },
            );
            raced.first.unwrap_or_else(|e| panic!("{what}: the release: {e:?}"));
            assert_eq!(status(raced.racer.status), NtStatus::SUCCESS, "{what}");
            clean(&sim, what);
            sim.set_completion(a, CompletionPolicy::Immediate).unwrap();
            assert_eq!(status(other.write(&frame(PEER, PEER, 0x88b5, 80, 2)).status), NtStatus::SUCCESS, "{what}");
            other.close();
            drop((h, u));
            finish(sim);
            raced.stalled
        });
        assert!(furthest >= 2, "the send completion was stalled after {furthest} calls at most");
    });
}

/// The work item that completes a restart (its OID requests held, so the
/// restart pended) stalled after each of its calls while, once NDIS may
/// pause again (after its NdisCompleteNetPnPEvent), the binding pauses and
/// a handle sends: no send reaches the binding once the pause began, the
/// pause completes with none in flight, and the binding runs after the
/// next restart.
#[test]
fn a_pause_and_a_send_landing_after_each_call_of_a_restart_work_item() {
    in_child("a_pause_and_a_send_landing_after_each_call_of_a_restart_work_item", || {
        // Runs whose pause began while the work item stood after a call,
        // the restart already complete.
        let mut in_window = 0;
        let (_, furthest) = sweep(|what, sim, nth| {
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            sim.pause(a).unwrap();
            sim.hold_oids(a).unwrap();
            sim.stall_call("WorkerRoutine", None, nth, true, STALL).unwrap();
            let restarted = Mutex::new(None);
            let raced = Mutex::new(None);
            sim.run_actors(vec![
                Box::new(|| *restarted.lock().unwrap() = Some(sim.restart(a, &RestartSpec::default()))),
                Box::new(|| {
                    // The restart pends for its OID requests, whose
                    // completion leaves its completion to the work item.
                    while sim.call_stalls().2 == 0 && restarted.lock().unwrap().is_none() {
                        sim.release_oids(a).unwrap();
                        sim.step();
                    }
                    let sent = status(h.write(&frame(PEER, PEER, 0x88b5, 70, 9)).status);
                    // Only once NDIS heard the restart complete may it pause.
                    let paused = restarted.lock().unwrap().is_some() || sim.pnp_pending(a).is_empty();
                    let window = paused && sim.call_stalls().2 == 1;
                    let paused = paused.then(|| sim.pause(a));
                    *raced.lock().unwrap() = Some((sent, paused, window));
                }),
            ]);
            let stalled = sim.call_stalls().1 == 1;
            restarted.into_inner().unwrap().unwrap().unwrap_or_else(|e| panic!("{what}: the restart: {e:?}"));
            let (sent, paused, window) = raced.into_inner().unwrap().unwrap();
            in_window += usize::from(window);
            assert!(matches!(sent, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: the write {sent:?}");
            clean(&sim, what);
            match paused {
                Some(p) => p.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}")),
                None => sim.pause(a).unwrap(),
            }
            clean(&sim, what);
            let st = status(h.write(&frame(PEER, PEER, 0x88b5, 80, 3)).status);
            assert_eq!(st, NtStatus::DEVICE_NOT_READY, "{what}: paused");
            sim.restart(a, &RestartSpec::default()).unwrap();
            assert_eq!(status(h.write(&frame(PEER, PEER, 0x88b5, 80, 2)).status), NtStatus::SUCCESS, "{what}");
            h.close();
            finish(sim);
            stalled
        });
        assert!(furthest >= 2, "the work item was stalled after {furthest} calls at most");
        assert!(in_window >= 2, "{in_window} pauses began while the work item stood after a call");
        if std::env::var_os("RAWNIC_HANDOVER_TRACE").is_some() {
            eprintln!("{in_window} pauses in the window");
        }
    });
}
