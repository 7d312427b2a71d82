//! Crowds (`--profile crowd`, `gen/crowd.rs`): 6 to 16 adapters and 5 to
//! 10 handle threads, where every other profile has 1 to 3 of each, run
//! clean against the rawnic.sys just built in both modes (det, and free
//! with jitter and parallel PnP and NIC actors), and really reach many
//! bindings: frames read back, many bindings' send accounts checked, many
//! handles probed at the end.

use rawnic_chaos::schedule::Mode;
use rawnic_chaos::supervise::{Activity, Job};
use rawnic_chaos::{GenOptions, Profile};
use std::time::Duration;

mod common;

/// The explorer's defaults (`--rings 250 --pct 50 --swarm 30`), a crowd.
fn crowd(mode: Mode) -> GenOptions {
    GenOptions {
        profile: Some(Profile::Crowd),
        rings: 250,
        pct: 50,
        swarm: 30,
        old_ndis: rawnic_chaos::r#gen::OLD_NDIS_PER_MILLE,
        ..GenOptions::plain(mode)
    }
}

fn explore(first: u64, n: u64, opts: GenOptions, what: &str) -> Activity {
    let job = Job { seeds: (first..first + n).collect(), opts };
    // One worker: a crowd has 15 to 25 threads of its own.
    let results = common::run_clean(&common::workers(Duration::from_secs(120), 1), &job, what);
    let a = Activity::total(results.iter().map(|(_, v)| v));
    eprintln!(
        "{what}: {n} schedules, {} requests completed, {} frames read back, {} bindings' send accounts, {} handles probed",
        a.completions, a.frames_read, a.edges.accounts_checked, a.edges.probe_handles
    );
    // A crowd whose bindings never ran would test nothing of its scale:
    // at least four bindings' accounts checked a schedule (six to sixteen
    // adapters, some unbound or in D3 at the end).
    assert!(a.frames_read > 100 * n, "{what}: {} frames read back", a.frames_read);
    assert!(a.edges.accounts_checked >= 4 * n, "{what}: {} bindings' send accounts", a.edges.accounts_checked);
    assert!(a.edges.probe_handles >= 4 * n, "{what}: {} handles probed", a.edges.probe_handles);
    a
}

/// Deterministic: three crowds (about 3 to 10 s each alone).
#[test]
fn det_crowds_run_clean_on_many_bindings() {
    explore(710_000, 3, crowd(Mode::Det), "det crowds");
}

/// Free-running, with jitter and PnP events of different adapters and
/// receives from three threads at once: three crowds (1 to 4 s each).
#[test]
fn free_crowds_with_jitter_and_parallel_actors_run_clean_on_many_bindings() {
    explore(711_000, 3, GenOptions { jitter: 20, parallel: 3, ..crowd(Mode::Free) }, "free crowds");
}
