//! Rule forbidden-debug-line: a line of the driver's debug output that
//! contains a text the test forbade (`SimBuilder::forbid_debug_lines`).
//! The rule's wrong driver is rawnic.sys itself, with a text it prints on
//! every restart forbidden. Every other test and schedule of rawnic.sys
//! forbids its safety-net lines (`rawnic_tests::rawnic_builder`), which it
//! prints only when it caught a broken invariant.

use ndisim::*;
use rawnic_tests::verifier::only;

#[test]
fn a_forbidden_line_is_a_violation_when_it_is_printed() {
    // rawnic.sys prints its binding's first change of state ("... (Bind)")
    // once, as the adapter binds.
    let sim = Sim::builder()
        .driver(rawnic_tests::rawnic_sys())
        .adapter("loopback")
        .forbid_debug_lines(&["nothing prints this", "(Bind)"])
        .start()
        .unwrap();
    // More lines than the debug log keeps (4,096) come after it: the check
    // is made as each line is printed, so the line scrolling out of the log
    // loses nothing.
    for _ in 0..1100 {
        sim.pause(AdapterId(0)).unwrap();
        sim.restart(AdapterId(0), &RestartSpec::default()).unwrap();
    }
    assert!(!sim.debug_output().iter().any(|l| l.contains("(Bind)")), "still in the log");
    let r = sim.unload();
    only(&r, Rule::ForbiddenDebugLine);
    assert_eq!(r.violations.len(), 1, "{r}");
    let v = &r.violations[0];
    assert_eq!(v.call, "DbgPrintEx", "{r}");
    assert!(v.detail.contains("rawnic: binding ") && v.detail.contains("(Bind)"), "{r}");
}
