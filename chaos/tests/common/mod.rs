//! What the explorer's integration tests share: worker processes of this
//! build's `rawnic-chaos` against the rawnic.sys just built, the saved
//! regression schedules, and the verdict that every seed of a job ran
//! clean (each test crate uses what it needs).
#![allow(dead_code, reason = "each test crate uses a part")]

use rawnic_chaos::supervise::{Job, Verdict, Workers, replay_cmd, run_all};
use std::path::PathBuf;
use std::time::Duration;

/// Workers of this build against the rawnic.sys just built: `jobs` at
/// once, a schedule that goes `limit` without a step a hang (stretched by
/// the machine's load: `patient`).
pub fn workers(limit: Duration, jobs: usize) -> Workers {
    Workers {
        exe: env!("CARGO_BIN_EXE_rawnic-chaos").into(),
        driver: rawnic_tests::rawnic_sys(),
        limit,
        jobs,
        patient: true,
    }
}

/// A schedule saved in `chaos/regressions/`.
pub fn regression_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions").join(name)
}

/// Runs `job`'s seeds; every one must give a clean verdict (`what` names
/// them in the failure, each failing seed with its first findings and its
/// replay command). Returns the verdicts.
pub fn run_clean(w: &Workers, job: &Job, what: &str) -> Vec<(u64, Verdict)> {
    let n = job.seeds.len();
    let results = run_all(w, job, &|_, _| {});
    assert_eq!(results.len(), n, "every schedule gave a verdict");
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, v)| !v.is_clean())
        .map(|(seed, v)| {
            let detail: Vec<String> = match v {
                Verdict::Failed(o) => {
                    o.violations.iter().chain(&o.harness).chain(&o.internal).take(4).cloned().collect()
                }
                Verdict::Crash { how, stderr } => vec![how.clone(), stderr.clone()],
                Verdict::Hang { stacks, .. } => stacks.lines().take(20).map(String::from).collect(),
                Verdict::Clean(_) => Vec::new(),
            };
            format!(
                "seed {seed} ({}, lowres {}): {}\n    {}\n  replay: {}",
                job.opts.mode.name(),
                job.opts.lowres,
                v.class(),
                detail.join("\n    "),
                replay_cmd(*seed, job.opts)
            )
        })
        .collect();
    assert!(failed.is_empty(), "{} of {n} {what} failed:\n{}", failed.len(), failed.join("\n"));
    results
}
