//! `--systematic`: a saved schedule run under ndisim's bounded scheduler,
//! once as is and then with single deviations, against the rawnic.sys just
//! built. Every run must be clean, the deviations must make interleavings
//! of their own, and a run saved with its deviations must replay the same.

use rawnic_chaos::schedule::Schedule;
use rawnic_chaos::supervise::{Workers, run_file_points};
use rawnic_chaos::systematic::{Plan, bounded, explore};
use std::path::PathBuf;
use std::time::Duration;

mod common;

fn workers() -> Workers {
    common::workers(Duration::from_secs(300), 2)
}

fn regression(name: &str) -> Schedule {
    serde_json::from_str(&std::fs::read_to_string(common::regression_path(name)).expect("schedule")).expect("json")
}

fn out(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rawnic-systematic-{name}-{}", std::process::id()))
}

#[test]
fn single_deviations_of_a_send_racing_a_pause_are_clean_and_interleave_differently() {
    let base = regression("send-while-pausing-and-restarting.json");
    let ex = explore(&workers(), &base, Plan { deviations: 1, budget: 120 }, &out("send"), &|_| {});
    assert!(ex.failures.is_empty(), "{}\n{:?}", ex.render(), ex.failures);
    assert_eq!(ex.runs, 120, "{}", ex.render());
    assert!(ex.switches > 100 && ex.branching > 0, "{}", ex.render());
    // Most deviations change the interleaving (one that lets a waiting
    // thread only look at its wait again changes nothing).
    assert!(ex.distinct > 60, "{}", ex.render());
}

#[test]
fn a_run_with_deviations_replays_the_same_interleaving() {
    let base = regression("retain-across-restart.json");
    let dir = out("replay");
    std::fs::create_dir_all(&dir).expect("dir");
    let w = workers();
    let run = |script: Vec<(u64, u32)>, name: &str| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string(&bounded(&base, script)).expect("json")).expect("write");
        run_file_points(&w, &p)
    };
    let (v0, points, t0) = run(Vec::new(), "base.json");
    assert!(v0.is_clean(), "{v0:?}");
    let points = points.expect("the bounded scheduler's points");
    // A deviation halfway through, at a switch with an alternative.
    let at = points
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, _)| i as u64)
        .nth(points.len() / 4)
        .expect("a switch");
    let (v1, _, t1) = run(vec![(at, 0)], "a.json");
    let (v2, _, t2) = run(vec![(at, 0)], "b.json");
    assert!(v1.is_clean() && v2.is_clean(), "{v1:?} {v2:?}");
    assert_eq!(t1, t2, "the same deviations replay the same interleaving");
    assert_ne!(t0, t1, "the deviation at switch {at} changed nothing");
}

#[test]
fn every_regression_schedule_is_clean_one_deviation_from_its_default_interleaving() {
    // 40 runs each, spread evenly over the single deviations (a sample:
    // `cargo make chaos-systematic` runs thousands).
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("regressions").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let w = workers();
    let mut failed = Vec::new();
    for f in &files {
        let name = f.file_stem().expect("name").to_string_lossy().into_owned();
        let base = regression(&format!("{name}.json"));
        let ex = explore(&w, &base, Plan { deviations: 1, budget: 40 }, &out(&name), &|_| {});
        if !ex.failures.is_empty() || ex.runs < 40.min(1 + ex.single as usize) {
            failed.push(format!("{name}: {}: {:?}", ex.render(), ex.failures));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `--systematic-seeds`: the seeds' schedules explored in turn, a line per
/// seed and the totals, all runs counted, the exit clean.
#[test]
fn systematic_seeds_explores_each_seeds_schedule_in_turn() {
    let dir = out("seeds");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rawnic-chaos"))
        .args(["--driver", &rawnic_tests::rawnic_sys().display().to_string(), "--systematic-seeds"])
        .args(["--seed", "76000000", "--schedules", "2", "--profile", "d0-no-restart", "--budget", "6", "--jobs", "1"])
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run rawnic-chaos");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}\n{}", String::from_utf8_lossy(&o.stderr));
    for seed in ["76000000", "76000001"] {
        assert!(text.contains(&format!("seed {seed}: systematic:")), "{text}");
    }
    assert!(text.contains("systematic seeds 76000000..76000002: 12 runs, 0 failed"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
