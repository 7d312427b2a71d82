//! A deterministic schedule replays bit for bit: the same seed gives the
//! same interleaving (the hash of every scheduling decision), and another
//! seed gives another.

use rawnic_chaos::{GenOptions, Mode, RunConfig, generate, run};

#[test]
fn a_seed_replays_the_same_interleaving() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let o = GenOptions::plain(Mode::Det);
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

#[test]
fn a_seed_scheduled_by_priorities_replays_too_and_interleaves_otherwise() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let o = GenOptions { pct: 100, ..GenOptions::plain(Mode::Det) };
    let s = generate(424_242, o);
    let p = s.pct.expect("every det schedule draws PCT at --pct 100");
    assert!((2..=4).contains(&p.depth) && (1 << 10..=1 << 17).contains(&p.horizon), "{p:?}");
    // The same schedule but for the scheduler's strategy.
    let uniform = generate(424_242, GenOptions { pct: 0, ..o });
    assert_eq!(uniform.pct, None);
    assert_eq!(rawnic_chaos::Schedule { pct: s.pct, ..uniform.clone() }, s);
    let a = run(&s, &cfg);
    let b = run(&s, &cfg);
    assert!(!a.failed(), "{a:?}");
    assert_eq!(a.trace, b.trace, "a PCT schedule must replay the same interleaving");
    assert_ne!(a.trace, run(&uniform, &cfg).trace, "priorities pick otherwise than uniform draws");
    // Saved and loaded, it is the same schedule.
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<rawnic_chaos::Schedule>(&json).unwrap(), s);
    // Free schedules never draw it.
    assert_eq!(generate(424_242, GenOptions { mode: Mode::Free, ..o }).pct, None);
}

#[test]
fn a_schedule_with_slow_handlers_stalls_inside_them_and_still_replays() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let o = GenOptions::plain(Mode::Det);
    let base = generate(424_242, o);
    let slow = rawnic_chaos::Schedule {
        slow: Some(rawnic_chaos::Slow {
            handlers: vec!["ProtocolNetPnPEvent".into(), "IRP_MJ_DEVICE_CONTROL".into()],
            per_mille: 500,
            max_us: 1000,
        }),
        ..base.clone()
    };
    let a = run(&slow, &cfg);
    let b = run(&slow, &cfg);
    assert!(!a.failed(), "{a:?}");
    assert!(a.edges.slow_stalls > 20, "{} stalls", a.edges.slow_stalls);
    assert_eq!((a.trace, a.edges.slow_stalls), (b.trace, b.edges.slow_stalls), "stalls drawn the same way again");
    let plain = run(&base, &cfg);
    assert_eq!(plain.edges.slow_stalls, 0);
    assert_ne!(plain.trace, a.trace, "the stalls change the interleaving");
    // A handler ndisim cannot slow is a start error, not a run.
    let bad = rawnic_chaos::Schedule {
        slow: Some(rawnic_chaos::Slow { handlers: vec!["DriverEntry".into()], per_mille: 1, max_us: 1 }),
        ..base
    };
    let e = run(&bad, &cfg).start_error.expect("refused");
    assert!(e.contains("DriverEntry"), "{e}");
}
