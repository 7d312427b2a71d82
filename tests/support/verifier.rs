//! Helpers for the verifier's fixture tests (`ndisim/tests/verifier*.rs`,
//! `nbl_pool.rs`): start a fixture, and check that a report breaks one
//! rule.

use ndisim::{AdapterId, InjectOpts, Report, Rule, Sim};
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

/// A 60-byte broadcast frame of EtherType 0x88B5 (local experimental).
pub fn frame() -> Vec<u8> {
    let mut f = vec![0xFFu8; 60];
    f[12] = 0x88;
    f[13] = 0xB5;
    f
}

/// Indicates one [`frame`] on adapter 0.
pub fn inject_one(sim: &Sim) {
    sim.inject(AdapterId(0), &[&frame()], &InjectOpts::default()).unwrap();
}

/// Runs `exe` (the ndisim CLI) with `args`: its exit code (-1 if killed)
/// and its stderr followed by its stdout.
pub fn run_exe(exe: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(exe).args(args).output().expect("run ndisim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}
