//! Helpers for the verifier's fixture tests (`ndisim/tests/verifier*.rs`,
//! `nbl_pool.rs`): start a fixture, and check that a report breaks one
//! rule.

use ndisim::{Report, Rule, Sim};
use std::time::Duration;

/// A simulation of the fixture `name` over `adapters` (ndisim adapter
/// specs), with a 5 s watchdog.
pub fn start(name: &str, adapters: &[&str]) -> Sim {
    let mut b = Sim::builder().driver(crate::fixture(name)).watchdog(Duration::from_secs(5));
    for a in adapters {
        b = b.adapter(a);
    }
    b.start().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The report breaks `rule` and no other rule.
pub fn only(r: &Report, rule: Rule) {
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert_eq!(r.rules(), vec![rule], "expected exactly {rule}:\n{r}");
}
