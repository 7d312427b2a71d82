//! A free-running schedule whose watchdog gives up records every thread's
//! stack at that moment, while the operation is still stuck: a completion
//! that comes later (the "late, not lost" report) then shows what it was
//! waiting for.

use rawnic_chaos::schedule::{Mode, PnpAction, Schedule};
use rawnic_chaos::{RunConfig, run};
use std::time::Duration;

#[test]
fn a_watchdog_records_every_threads_stack() {
    // The fixture pends every pause and never completes it.
    let cfg = RunConfig { watchdog: Duration::from_secs(1), ..RunConfig::new(rawnic_tests::fixture("pause_hang")) };
    let s = Schedule {
        seed: 1,
        mode: Mode::Free,
        lowres: 0,
        special_pool: false,
        jitter: 0,
        preempt: 0,
        adapters: vec!["null@name=a0".into()],
        pnp: vec![PnpAction::Pause { a: 0 }],
        nic: vec![],
        handles: vec![],
        pnp_more: vec![],
        nic_more: vec![],
        late_binds: false,
        lowres_after_binds: false,
        pct: None,
        bounded: None,
        prompt_pnp: false,
        ndis_version: None,
        binds_in_registration: false,
        open_in_registration: false,
        cpus: None,
        swarm: vec![],
        shapes: 0,
        keep_open: false,
        slow: None,
        fail_nth: None,
        answer_on_arrival: Vec::new(),
        twin: false,
        points_after: false,
    };
    let o = run(&s, &cfg);
    assert!(o.rules.iter().any(|r| r == "watchdog"), "{o:?}");
    let stacks = o.stacks.expect("stacks taken when the watchdog gave up");
    assert!(stacks.lines().any(|l| l.starts_with("Thread")), "no thread in gdb's output:\n{stacks}");
    // The emulated system's threads are there, and the PnP actor that the
    // watchdog let go (it takes them before its next action).
    for t in ["ndisim-dpc0", "ndisim-worker0", "ndisim-actor0"] {
        assert!(stacks.contains(t), "thread {t} is missing:\n{stacks}");
    }
    assert!(stacks.contains("rawnic_chaos::run::actors::pnp_actor"), "the PnP actor is missing:\n{stacks}");

    // Deterministic runs do not take them (one thread runs at a time: the
    // scheduler's state says more than the stacks).
    let det = run(&Schedule { mode: Mode::Det, ..s }, &cfg);
    assert!(det.rules.iter().any(|r| r == "watchdog"), "{det:?}");
    assert_eq!(det.stacks, None);
}
