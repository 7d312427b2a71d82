//! The driver's unload against what may still run in it: a cancel routine
//! that let go of the cancel spin lock goes on (it looks the IRP up in the
//! handle's queues and in the driver's), while on another CPU the IRP is
//! completed some other way, the handle closes and the service stops
//! (DriverUnload frees the driver's state). Windows keeps no reference for
//! a cancel routine past the cancel spin lock; ndisim's `CancelRoutine`
//! stall holds it at its first lock while the rest happens.

use ndisim::InjectOpts;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use std::time::{Duration, Instant};

/// A READ cancelled on one thread while a frame serves it on another: the
/// cancel routine, stalled once it released the cancel spin lock, finds
/// the read gone; the handle closes and the driver unloads meanwhile. The
/// routine must not reach the driver's freed state when it goes on (on
/// main's image it did: `Rawnic::cancel` took the lock of the freed binds
/// list, which the freed pool's fill made a `SpinLock` "moved after its
/// first lock", a bug check).
#[test]
fn a_cancel_routine_still_running_when_the_driver_unloads() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let read = h.read_async(4096).unwrap();
    sim.stall_lock_acquire("CancelRoutine", 1, Duration::from_secs(3)).unwrap();
    read.cancel_on_another_thread();
    let t0 = Instant::now();
    while sim.lock_acquire_stalls().2 == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "the cancel routine never stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The frame serves the read: its IRP completes while the routine runs.
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    let r = read.wait().expect("the read completed");
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    h.close();
    assert_eq!(sim.lock_acquire_stalls().2, 1, "the cancel routine is still stalled at the unload");
    // DriverUnload, with the routine still in the driver; the unload joins
    // it before its report.
    let report = sim.unload();
    assert!(report.is_clean(), "{report}");
}

/// The same under the deterministic scheduler, for each of a few seeds:
/// the routine stalls in virtual time and DriverUnload sleeps
/// (`KeDelayExecutionThread`, virtual time too) until it has returned, so
/// the unload's wait is a switch to the routine, not a spin that keeps the
/// scheduler's baton for ever.
#[test]
fn a_cancel_routine_still_running_when_the_driver_unloads_deterministic() {
    for seed in 0..4 {
        let sim = start_with(&["null"], |b| b.deterministic(seed));
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let read = h.read_async(4096).unwrap();
        sim.stall_lock_acquire("CancelRoutine", 1, Duration::from_secs(3)).unwrap();
        read.cancel_on_another_thread();
        while sim.lock_acquire_stalls().2 == 0 {
            sim.step();
        }
        let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        let r = read.wait().expect("the read completed");
        assert_eq!(status(r.status), NtStatus::SUCCESS, "seed {seed}");
        h.close();
        assert_eq!(sim.lock_acquire_stalls().2, 1, "seed {seed}: the cancel routine is still stalled at the unload");
        let report = sim.unload();
        assert!(report.is_clean(), "seed {seed}: {report}");
    }
}
