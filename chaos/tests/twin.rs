//! Twin runs (`Schedule::twin`): a det schedule run again with other
//! garbage where rawnic.sys never wrote must give its callers the same
//! results, and does; a schedule whose driver lets such memory out is told
//! apart (the mechanism's own fixture test is ndisim's
//! `verifier_garbage.rs`).

use rawnic_chaos::{GenOptions, Mode, RunConfig, generate, run};

#[test]
fn rawnic_gives_the_same_results_whatever_the_garbage() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let o = GenOptions { twin: 1000, rings: 500, ..GenOptions::plain(Mode::Det) };
    let mut compared = 0;
    for seed in 191_000_000..191_000_004 {
        let s = generate(seed, o);
        assert!(s.twin);
        let r = run(&s, &cfg);
        assert!(!r.failed(), "seed {seed}: {}", r.summary());
        assert_eq!(r.edges.twins, 1);
        compared += r.edges.twin_outputs;
    }
    assert!(compared > 200, "{compared} requests compared");
}

#[test]
fn a_twin_schedule_saved_and_loaded_is_one() {
    let s = generate(191_000_000, GenOptions { twin: 1000, ..GenOptions::plain(Mode::Det) });
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"twin\":true"));
    assert_eq!(serde_json::from_str::<rawnic_chaos::Schedule>(&json).unwrap(), s);
    assert!(s.describe().starts_with(&format!("seed {} mode det lowres 0/1000 special-pool false twin", s.seed)));
}
