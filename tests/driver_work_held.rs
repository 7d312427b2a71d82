//! The binding's work item delayed (ndisim's `hold_work_items`): a system
//! worker thread may run an I/O work item long after it was queued, and
//! rawnic's binding does its PASSIVE_LEVEL NDIS calls there (the restart's
//! and a pended pause's `NdisCompleteNetPnPEvent`, `NdisCloseAdapterEx`).
//! Meanwhile NDIS and the handles go on: what they do must neither reach a
//! binding NDIS does not consider Running nor outlive the binding, and the
//! verifier stays clean once the item runs.

use ndisim::{InjectOpts, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use std::time::{Duration, Instant};

/// Waits (at most 30 s) until a work item is queued.
fn until_work_queued(sim: &Sim) {
    let t0 = Instant::now();
    while sim.pending_work_items() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "no work item was queued");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Holds the work items once none is queued or running, so the item the
/// test waits for is the one its PnP event queues.
fn hold_when_idle(sim: &Sim) {
    let t0 = Instant::now();
    while sim.pending_work_items() != 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "the work items never ended");
        std::thread::sleep(Duration::from_millis(1));
    }
    sim.hold_work_items();
}

/// A restart the logic finished while its `NdisCompleteNetPnPEvent` waits
/// for the work item: NDIS still sees the binding Restarting, so long
/// frames indicated meanwhile are copied (none retained), sends are
/// refused, and handles may open, change the filter and close. Once the
/// item runs the binding runs: the frames are read, a send goes.
#[test]
fn a_restart_whose_completion_waits_for_the_work_item() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    sim.pause(a).unwrap();
    hold_when_idle(&sim);
    let big: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, PEER, 0x88b5, 1000 + i, i as u32)).collect();
    let (write, retained_meanwhile) = std::thread::scope(|s| {
        let restart = s.spawn(|| sim.restart(a, &RestartSpec::default()));
        until_work_queued(&sim);
        // The logic finished the restart (NDIS has not heard of it).
        let t0 = Instant::now();
        while entry(&sim, 0).state != state::RUNNING {
            assert!(t0.elapsed() < Duration::from_secs(30), "the restart never ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!restart.is_finished(), "the restart waits for the work item");
        for f in &big {
            sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        }
        let retained_meanwhile = sim.outstanding(a).receives_retained;
        let write = status(h.write(&frame(PEER, PEER, 0x88b5, 60, 9)).status);
        // Another handle comes and goes, promiscuous (a filter set each way).
        let (other, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
        sim.link(a, false).unwrap();
        other.close();
        sim.release_work_items();
        restart.join().unwrap().unwrap();
        (write, retained_meanwhile)
    });
    assert_eq!(retained_meanwhile, 0, "nothing retained before NDIS hears of the restart");
    assert_eq!(write, NtStatus::DEVICE_NOT_READY, "no send before NDIS hears of the restart");
    let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, big);
    assert_eq!(status(h.write(&frame(PEER, PEER, 0x88b5, 60, 10)).status), NtStatus::SUCCESS);
    h.close();
    finish(sim);
}

/// An unbind whose `NdisCloseAdapterEx` waits for the work item: the
/// handle was orphaned at once (its requests fail DEVICE_REMOVED), a link
/// status NDIS indicates meanwhile reaches no handle of the binding, the
/// binding cannot be opened again, and the handle closes. Once the item
/// runs the unbind completes; a new bind works.
#[test]
fn an_unbind_whose_close_waits_for_the_work_item() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let name = list(&h)[0].name.clone();
    hold_when_idle(&sim);
    let (write, reopen) = std::thread::scope(|s| {
        let unbind = s.spawn(|| sim.unbind(a));
        until_work_queued(&sim);
        assert!(!unbind.is_finished(), "the unbind waits for the work item");
        sim.link(a, false).unwrap();
        let write = status(h.write(&frame(PEER, PEER, 0x88b5, 60, 1)).status);
        let h2 = sim.open().unwrap();
        let r = h2.ioctl(IOCTL_RAWNIC_OPEN, &open_request(&name, filter::DEFAULT, &[], 0, 0, 0), OpenReply::LEN);
        h2.close();
        h.close();
        sim.release_work_items();
        unbind.join().unwrap().unwrap();
        (write, status(r.status))
    });
    assert_eq!(write, NtStatus::DEVICE_REMOVED);
    assert_ne!(reopen, NtStatus::SUCCESS, "a binding being closed does not open");
    sim.bind(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(status(h.write(&frame(PEER, PEER, 0x88b5, 60, 2)).status), NtStatus::SUCCESS);
    h.close();
    finish(sim);
}

/// A pause that the last send completion finishes while its
/// `NdisCompleteNetPnPEvent` (and the logic's `paused`) wait for the work
/// item: NDIS still sees the binding Pausing, so frames indicated
/// meanwhile go back at once, a handle may close and no send starts. The
/// frames the handles' queues retained before were given back at the
/// pause's start and stay readable; once the item runs the pause
/// completes and a restart brings sends back.
#[test]
fn a_pause_whose_completion_waits_for_the_work_item() {
    let sim = start(&["null@completion=held"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let big: Vec<Vec<u8>> = (0..2).map(|i| frame(BROADCAST, PEER, 0x88b5, 1000 + i, i as u32)).collect();
    for f in &big {
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    }
    assert_eq!(retained(&sim, a, 2), 2, "both handles keep the two frames in their NBLs");
    assert_eq!(send(&h, &[frame(PEER, PEER, 0x88b5, 60, 7)]).accepted, 1);
    hold_when_idle(&sim);
    let (write, retained_meanwhile, pending) = std::thread::scope(|s| {
        let pause = s.spawn(|| sim.pause(a));
        let t0 = Instant::now();
        while entry(&sim, 0).state != state::PAUSING {
            assert!(t0.elapsed() < Duration::from_secs(30), "the pause never began");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The last send back finishes the pause; NDIS hears of it from the
        // work item.
        assert_eq!(sim.release_sends(a, None).unwrap(), 1);
        until_work_queued(&sim);
        let pending = !pause.is_finished();
        sim.inject(a, &[&big[0][..]], &InjectOpts::default()).unwrap();
        let retained_meanwhile = sim.outstanding(a).receives_retained;
        other.close();
        let write = status(h.write(&frame(PEER, PEER, 0x88b5, 60, 8)).status);
        sim.release_work_items();
        pause.join().unwrap().unwrap();
        (write, retained_meanwhile, pending)
    });
    assert!(pending, "the pause waits for the work item");
    assert_eq!(retained_meanwhile, 0, "nothing kept while the pause is pending");
    assert_eq!(write, NtStatus::DEVICE_NOT_READY);
    let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, big, "the frames retained before the pause, copied at its start");
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(status(h.write(&frame(PEER, PEER, 0x88b5, 60, 9)).status), NtStatus::SUCCESS);
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    h.close();
    finish(sim);
}
