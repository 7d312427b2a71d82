//! Every schedule in `chaos/regressions/` broke a promise of an earlier
//! rawnic.sys (see the README there); each must now run clean against the
//! driver just built. Deterministic ones replay their interleaving exactly;
//! free-running ones run three times.

use rawnic_chaos::schedule::{Mode, Schedule};
use rawnic_chaos::supervise::{Verdict, run_file};
use std::path::PathBuf;
use std::time::Duration;

mod common;

#[test]
fn every_regression_schedule_runs_clean() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let w = common::workers(Duration::from_secs(120), 1);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("chaos/regressions")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the regression schedules are missing");
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("chaos/regressions/README.md");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(readme.contains(&name), "{name} is not described in chaos/regressions/README.md");
        let s: Schedule =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let runs = if s.mode == Mode::Det { 1 } else { 3 };
        for _ in 0..runs {
            let v = run_file(&w, f);
            assert!(matches!(v, Verdict::Clean(_)), "{name}: {}\n{v:?}", v.class());
        }
    }
}
