//! A cancel routine that runs on after the cancel spin lock is released
//! must not reach another request: two threads read on one shared handle
//! while one cancels its reads and frames complete them
//! (`chaos/regressions/stale-irp-cancel.json`). The race is a few
//! instructions wide, so the schedule runs 150 times; the driver that named
//! IRPs by address failed about one run in a hundred of it.

use rawnic_chaos::supervise::{Verdict, Workers, run_file};
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn a_stale_cancel_never_cancels_another_read() {
    let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions/stale-irp-cancel.json");
    let w = Workers {
        exe: env!("CARGO_BIN_EXE_rawnic-chaos").into(),
        driver: rawnic_tests::rawnic_sys(),
        limit: Duration::from_secs(60),
        jobs: 1,
    };
    for i in 0..150 {
        let v = run_file(&w, &f);
        assert!(matches!(v, Verdict::Clean), "run {i}: {}\n{v:?}", v.class());
    }
}
