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
/// pauses, or the pause never completes.
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
        assert!(r.is_clean(), "{policy}: {r}");
    }
}
