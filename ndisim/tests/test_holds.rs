//! Holds a test put on an adapter and never released end when the
//! simulation unloads (`ndis::end_test_holds`): a real miniport completes
//! its sends and OID requests in due course, so the driver's unload must
//! not be blamed for a pause that waited on a hold nobody released. The
//! held sends and requests still come back only after the unload's pauses
//! have begun, so a driver that does not wait for them is still caught.

use ndisim::*;
use rawnic_proto::*;
use rawnic_tests::drv::{self, finish, start_with};
use rawnic_tests::verifier::{inject_one, start};

/// A QUERY_OID request for `oid`.
fn query(oid: u32) -> Vec<u8> {
    let mut input = vec![0u8; 16];
    OidRequest { oid, data: &[] }.emit(&mut input).unwrap();
    input
}

/// rawnic with a send and a query held at the miniport, neither
/// released: the unload's pause waits for them, they come back, and
/// every request ends. Deterministic seeds and free-running.
#[test]
fn holds_a_test_forgot_end_at_the_unload() {
    for seed in [None, Some(0), Some(1), Some(2)] {
        let sim = start_with(&["null"], |b| match seed {
            Some(s) => b.deterministic(s),
            None => b,
        });
        let a = AdapterId(0);
        let (h, _) = drv::open(&sim, 0, filter::DEFAULT, &[]);
        sim.hold_sends(a).unwrap();
        sim.hold_oids(a).unwrap();
        let sent = h.write(&drv::frame(drv::PEER, drv::PEER, 0x88b5, 70, 1));
        assert_eq!(drv::status(sent.status), NtStatus::SUCCESS, "{seed:?}");
        let q = h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &query(0x0001_0107), 64).unwrap();
        assert_eq!(sim.held_sends(a), 1, "{seed:?}");
        assert_eq!(sim.pending_oids(a).len(), 1, "{seed:?}");
        drop(h);
        let r = sim.unload();
        assert!(r.is_clean(), "{seed:?}: {r}");
        let st = drv::status(q.wait().expect("the query ended").status);
        assert!(matches!(st, NtStatus::SUCCESS | NtStatus::CANCELLED), "{seed:?}: the query {st:?}");
    }
}

/// A held send still comes back after the unload's pause began: a driver
/// that completes that pause at once, its send in flight, breaks
/// `pause-with-outstanding` as when the test releases the send itself
/// (`verifier::pause_with_outstanding_send`), and then closes the
/// adapter and frees its pool with the send still out.
#[test]
fn a_pause_that_does_not_wait_is_caught_at_the_unload() {
    let sim = start("pause_send_early", &["null@completion=held"]);
    inject_one(&sim);
    assert_eq!(sim.held_sends(AdapterId(0)), 1);
    let r = sim.unload();
    assert!(r.internal_errors.is_empty(), "{r}");
    assert_eq!(r.violations[0].rule, Rule::PauseOutstanding, "{r}");
    assert!(r.rules().contains(&Rule::CloseOutstanding), "{r}");
}

/// A hold released by the test leaves the adapter as the test set it: the
/// unload changes nothing then.
#[test]
fn released_holds_unload_as_before() {
    let sim = drv::start(&["null"]);
    let a = AdapterId(0);
    let (h, _) = drv::open(&sim, 0, filter::DEFAULT, &[]);
    sim.hold_sends(a).unwrap();
    let w = h.write_async(&drv::frame(drv::PEER, drv::PEER, 0x88b5, 70, 2)).unwrap();
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    assert_eq!(drv::status(w.wait().unwrap().status), NtStatus::SUCCESS);
    assert_eq!(sim.completion_policy(a), Some(CompletionPolicy::Held));
    h.close();
    finish(sim);
}

/// A pause that waits on sends the test holds and never releases before
/// the watchdog's time: the watchdog's report says the test holds them.
#[test]
fn a_watchdog_names_the_test_hold_it_waited_on() {
    let sim = start_with(&["null"], |b| b.deterministic(0));
    let a = AdapterId(0);
    let (h, _) = drv::open(&sim, 0, filter::DEFAULT, &[]);
    sim.hold_sends(a).unwrap();
    let w = h.write_async(&drv::frame(drv::PEER, drv::PEER, 0x88b5, 70, 4)).unwrap();
    assert!(matches!(sim.pause(a), Err(SimError::Watchdog(_))));
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    assert_eq!(drv::status(w.wait().unwrap().status), NtStatus::SUCCESS);
    drop(h);
    let r = sim.unload();
    assert_eq!(r.rules(), vec![Rule::Watchdog], "{r}");
    assert!(r.violations[0].detail.contains("the test holds 1 send NBL(s) (`hold_sends`)"), "{r}");
}
