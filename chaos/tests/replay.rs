//! A deterministic schedule replays bit for bit: the same seed gives the
//! same interleaving (the hash of every scheduling decision), and another
//! seed gives another.

use rawnic_chaos::{GenOptions, Mode, RunConfig, generate, run};

#[test]
fn a_seed_replays_the_same_interleaving() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let o =
        GenOptions { mode: Mode::Det, lowres: 0, special_pool: false, profile: None, jitter: 0, parallel: 1, rings: 0 };
    let s = generate(424_242, o);
    let a = run(&s, &cfg);
    let b = run(&s, &cfg);
    assert!(!a.failed(), "{a:?}");
    let (ta, tb) = (a.trace.expect("deterministic"), b.trace.expect("deterministic"));
    assert!(ta.1 > 100, "the run switched threads {} times", ta.1);
    assert_eq!(ta, tb, "the same seed must replay the same interleaving");
    assert_eq!(
        (a.actions, a.refused, a.completions, a.frames_read),
        (b.actions, b.refused, b.completions, b.frames_read)
    );
    let c = run(&generate(424_243, o), &cfg);
    assert_ne!(c.trace, a.trace);
}
