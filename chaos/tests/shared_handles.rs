//! Schedules whose handle threads share a file object really use it from
//! several threads, and run clean.

use rawnic_chaos::schedule::{IoAction, SHARED_SLOTS};
use rawnic_chaos::{GenOptions, Mode, RunConfig, generate, run};

#[test]
fn threads_sharing_a_handle_use_it_and_run_clean() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let o = GenOptions::plain(Mode::Free);
    let mut ran = 0;
    let mut used = 0;
    for seed in 0..400u64 {
        let s = generate(seed, o);
        let users = s
            .handles
            .iter()
            .filter(|l| l.iter().any(|a| a.slot() == Some(SHARED_SLOTS) && !matches!(a, IoAction::Sleep { .. })))
            .count();
        if users < 2 {
            continue;
        }
        let out = run(&s, &cfg);
        assert!(!out.failed(), "seed {seed}: {out:?}");
        ran += 1;
        used += out.shared_actions;
        if ran == 6 {
            break;
        }
    }
    eprintln!("{used} actions found a shared handle in {ran} schedules");
    assert_eq!(ran, 6, "too few seeds share handles");
    assert!(used > 200, "only {used} actions found a shared handle in {ran} schedules");
}
