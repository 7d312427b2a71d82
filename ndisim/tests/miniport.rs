//! How the virtual miniport completes sends, checked with correct fixture
//! drivers: a policy ndisim offers must never keep a correct driver from
//! finishing what NDIS asks of it.

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

/// The fixture sends from its pause handler and completes the pause when
/// that send comes back. Under a batching policy the send is held until
/// the batch fills, which no further send can do once the pause has begun:
/// the miniport must complete it, as one completes its sends when it
/// pauses, or the pause never completes. (A send from the pause handler
/// itself is a `send-not-running` violation; ndisim still passes it down as
/// it does a send that races with the pause from another processor, which
/// is what this exercises.)
#[test]
fn a_send_made_while_a_pause_begins_completes_under_batching() {
    for policy in ["batch:8", "reorder:8"] {
        let sim = Sim::builder()
            .driver(fixture("pause_send"))
            .adapter(&format!("null@completion={policy}"))
            .watchdog(Duration::from_secs(5))
            .start()
            .unwrap_or_else(|e| panic!("{policy}: {e}"));
        sim.pause(AdapterId(0)).unwrap_or_else(|e| panic!("{policy}: {e}"));
        assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Paused, "{policy}");
        let r = sim.unload();
        assert!(r.internal_errors.is_empty(), "{policy}: {r}");
        assert_eq!(r.rules(), vec![Rule::SendNotRunning], "{policy}: {r}");
        assert_eq!(r.violations.len(), 1, "{policy}: {r}");
    }
}

/// rawnic.sys sends one frame into a batch of eight; the adapter then stops
/// batching. Nothing else will fill the batch, so changing the policy must
/// complete it (else the next pause waits for that send forever).
#[test]
fn leaving_a_batching_policy_completes_the_batch() {
    use rawnic_tests::drv;
    let sim = drv::start(&["null@completion=batch:8"]);
    let (h, _) = drv::open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let f = drv::frame([0xFF; 6], [2, 0, 0, 0, 0, 1], 0x88B5, 60, 1);
    assert_eq!(drv::send(&h, &[f]).accepted, 1);
    assert_eq!(sim.held_sends(AdapterId(0)), 1);
    sim.set_completion(AdapterId(0), CompletionPolicy::Immediate).unwrap();
    assert_eq!(sim.held_sends(AdapterId(0)), 0);
    sim.pause(AdapterId(0)).unwrap();
    sim.restart(AdapterId(0), &RestartSpec::default()).unwrap();
    h.close();
    drv::finish(sim);
}
