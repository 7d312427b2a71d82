//! The verifier rules about a driver's threads racing each other on one
//! object: an IRP completed while its cancel routine still holds the
//! cancel spin lock (irp-complete-in-cancel), a binding closed while
//! another thread is inside a call on its handle (close-during-call).
//! The windows are widened by ndisim's stalls, so each race is taken
//! every time.

use ndisim::*;
use rawnic_tests::verifier::{only, start};
use std::time::{Duration, Instant};

fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

const CODE_PEND: u32 = 0x0022_2000;
const CODE_COMPLETE: u32 = 0x0022_2004;
const CODE_COMPLETE_GOOD: u32 = 0x0022_2008;

/// `irp_cancel_race`: a pended IOCTL is cancelled; its cancel routine is
/// stalled before it releases the cancel spin lock; another IOCTL takes
/// the IRP (IoSetCancelRoutine returns NULL) and completes it. Completing
/// at once breaks the rule; waiting for the cancel spin lock first is clean.
fn cancel_race(code: u32) -> Report {
    let sim = start("irp_cancel_race", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let pending = h.ioctl_async(CODE_PEND, &[], 0).unwrap();
    sim.stall_cancel_routines();
    std::thread::scope(|s| {
        let canceller = s.spawn(|| pending.cancel());
        until("the cancel routine is stalled", || sim.stalled_cancel_routines() == 1);
        let taker = s.spawn(|| h.ioctl(code, &[], 0));
        // The other IOCTL has taken the IRP: it completed it without
        // waiting (and returned), or it waits for the cancel spin lock the
        // stalled routine holds. (A fixed sleep lost this race on a loaded
        // machine: the cancel routine, released first, completed the IRP.)
        until("the other IOCTL took the IRP", || taker.is_finished() || sim.cancel_lock_waiters() == 1);
        assert_eq!(sim.stalled_cancel_routines(), 1, "the routine still holds the lock");
        sim.release_cancel_routines();
        assert_eq!(taker.join().unwrap().status, 0);
        assert!(canceller.join().unwrap(), "the IRP had its cancel routine");
    });
    let r = pending.wait().expect("the pended IOCTL completed");
    assert_eq!(r.status, 0, "completed by the other IOCTL, not by its cancel routine");
    h.close();
    sim.unload()
}

#[test]
fn irp_completed_while_its_cancel_routine_holds_the_lock() {
    let r = cancel_race(CODE_COMPLETE);
    only(&r, Rule::IrpCompleteInCancel);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "IofCompleteRequest", "{r}");
}

#[test]
fn irp_completed_after_waiting_for_the_cancel_spin_lock_is_clean() {
    let r = cancel_race(CODE_COMPLETE_GOOD);
    assert!(r.is_clean(), "{r}");
}

/// The cancel routine completing the IRP itself (nobody takes it) is the
/// routine's own completion: clean.
#[test]
fn a_cancel_routine_completing_its_irp_is_clean() {
    let sim = start("irp_cancel_race", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let pending = h.ioctl_async(CODE_PEND, &[], 0).unwrap();
    assert!(pending.cancel());
    assert_eq!(status_of(&pending), STATUS_CANCELLED_CODE);
    h.close();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

const STATUS_CANCELLED_CODE: i32 = 0xC000_0120_u32 as i32;

fn status_of(t: &IoToken) -> i32 {
    t.wait().expect("completed").status
}

/// `close_in_call`: an IOCTL's thread is stalled inside `NdisOidRequest`
/// while the adapter is unbound; the fixture's unbind closes at once
/// (the rule), or, `careful`, waits until the call returned (clean).
fn close_race(careful: bool) -> Report {
    let sim = start("close_in_call", &["null"]);
    let a = AdapterId(0);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    if careful {
        assert_eq!(h.ioctl(0x0022_2004, &[], 0).status, 0);
    }
    sim.stall_oid_calls(a).unwrap();
    std::thread::scope(|s| {
        let call = s.spawn(|| h.ioctl(0x0022_2000, &[], 0));
        until("the OID call is inside NdisOidRequest", || sim.stalled_oid_calls(a) == 1);
        let unbind = s.spawn(|| sim.unbind(a));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sim.stalled_oid_calls(a), 1, "the call is still inside NdisOidRequest");
        sim.release_oid_calls(a).unwrap();
        assert_eq!(call.join().unwrap().status, 0);
        unbind.join().unwrap().unwrap();
    });
    h.close();
    sim.unload()
}

#[test]
fn close_while_another_thread_is_inside_ndis_oid_request() {
    let r = close_race(false);
    only(&r, Rule::CloseDuringCall);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "NdisCloseAdapterEx", "{r}");
}

#[test]
fn close_after_the_call_returned_is_clean() {
    let r = close_race(true);
    assert!(r.is_clean(), "{r}");
}
