//! `--fail-nth` end to end: a schedule's burst of refused allocations
//! reaches the simulation of the real rawnic.sys, a `DriverEntry` it
//! fails is judged (clean: it failed for want of memory and left nothing
//! behind), and the outcome says where the first refusal landed.

use rawnic_chaos::schedule::{FailNth, Mode};
use rawnic_chaos::{GenOptions, RunConfig, generate, run};

#[test]
fn a_burst_lands_where_it_is_drawn_and_a_failed_driver_entry_is_clean() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let base = generate(170_000_000, GenOptions::plain(Mode::Det));
    // Without a burst: the allocations a run counts, none refused.
    let o = run(&base, &cfg);
    assert!(!o.failed(), "{}", o.summary());
    assert!(o.allocations > 100, "{}", o.allocations);
    let e = o.edges;
    assert_eq!((e.refused_in_entry, e.refused_in_start, e.refused_in_body, e.refusals_unreached), (0, 0, 0, 0));
    // The first allocation (DriverEntry's), alone or in a long shortage:
    // DriverEntry fails, cleanly.
    for count in [1, 1000] {
        let s = rawnic_chaos::Schedule {
            fail_nth: Some(FailNth { n: 1, count, lasting: false, in_body: false }),
            ..base.clone()
        };
        let o = run(&s, &cfg);
        assert!(!o.failed(), "count {count}: {}", o.summary());
        assert_eq!(o.edges.refused_in_entry, 1, "count {count}");
        assert_eq!(o.actions, 0);
    }
    // Past the run's end: nothing refused.
    let s = rawnic_chaos::Schedule {
        fail_nth: Some(FailNth { n: o.allocations * 10, count: 1, lasting: false, in_body: false }),
        ..base.clone()
    };
    let o2 = run(&s, &cfg);
    assert!(!o2.failed(), "{}", o2.summary());
    assert_eq!((o2.edges.refusals_unreached, o2.alloc_failures), (1, 0));
    // Half way: refused in the schedule's body (det: the same run up to
    // there), and counted among the allocation failures.
    let s = rawnic_chaos::Schedule {
        fail_nth: Some(FailNth { n: o.allocations / 2, count: 4, lasting: false, in_body: false }),
        ..base.clone()
    };
    let o3 = run(&s, &cfg);
    assert!(!o3.failed(), "{}", o3.summary());
    assert_eq!(o3.edges.refused_in_body, 1);
    assert!(o3.alloc_failures >= 1);
}

/// A burst that lasts into the teardown (`FailNth::lasting`) is not ended
/// by the end checks: from half way through the body to the end, or from
/// among the end's own allocations, it refuses in the end checks, the
/// closes and the unload, and the run stays clean (everything closes,
/// nothing leaks, no rule fires).
#[test]
fn a_lasting_burst_refuses_into_the_teardown_and_the_run_stays_clean() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let base = generate(170_000_000, GenOptions::plain(Mode::Det));
    let o = run(&base, &cfg);
    // (A lasting burst still to come leaves the end checks that need
    // memory out: a run makes fewer allocations then.)
    let far = FailNth { n: o.allocations * 10, count: FailNth::ALL, lasting: true, in_body: false };
    let unreached = run(&rawnic_chaos::Schedule { fail_nth: Some(far), ..base.clone() }, &cfg);
    assert!(!unreached.failed(), "{}", unreached.summary());
    assert_eq!((unreached.edges.refusals_unreached, unreached.edges.lasting_bursts), (1, 1));
    for n in [o.allocations / 2, unreached.allocations - 3] {
        let f = FailNth { n, count: FailNth::ALL, lasting: true, in_body: false };
        let s = rawnic_chaos::Schedule { fail_nth: Some(f), ..base.clone() };
        let o = run(&s, &cfg);
        assert!(!o.failed(), "n {n}: {}", o.summary());
        let e = o.edges;
        assert_eq!(e.lasting_bursts, 1);
        assert!(e.refused_after_check >= 1, "n {n}: {e:?}");
        assert_eq!(e.refused_in_body + e.refused_in_teardown, 1, "n {n}: {e:?}");
    }
    // The same burst, not lasting, ends at the first end check.
    let f = FailNth { n: o.allocations / 2, count: FailNth::ALL, lasting: false, in_body: false };
    let o = run(&rawnic_chaos::Schedule { fail_nth: Some(f), ..base.clone() }, &cfg);
    assert!(!o.failed(), "{}", o.summary());
    assert_eq!((o.edges.lasting_bursts, o.edges.refused_after_check), (0, 0));
}

/// A burst aimed at the body (`FailNth::in_body`) counts from the first
/// allocation after `DriverEntry` and the first binds: its first refusal
/// is the body's first allocation, never one of the start's, and the run
/// stays clean; one aimed past the body's allocations refuses nothing.
#[test]
fn a_burst_aimed_at_the_body_lands_in_it() {
    let cfg = RunConfig::new(rawnic_tests::rawnic_sys());
    let base = generate(170_000_000, GenOptions::plain(Mode::Det));
    for count in [1, 16] {
        let f = FailNth { n: 1, count, lasting: false, in_body: true };
        let o = run(&rawnic_chaos::Schedule { fail_nth: Some(f), ..base.clone() }, &cfg);
        assert!(!o.failed(), "count {count}: {}", o.summary());
        let e = o.edges;
        assert_eq!((e.refused_in_entry, e.refused_in_start, e.refused_in_body), (0, 0, 1), "count {count}");
        assert!(o.alloc_failures >= 1);
    }
    let f = FailNth { n: 1 << 40, count: 1, lasting: false, in_body: true };
    let o = run(&rawnic_chaos::Schedule { fail_nth: Some(f), ..base.clone() }, &cfg);
    assert!(!o.failed(), "{}", o.summary());
    assert_eq!((o.edges.refusals_unreached, o.alloc_failures), (1, 0));
}
