//! A cancel routine that runs on after the cancel spin lock is released
//! must not reach another request: two threads read on one shared handle
//! while one cancels its reads and frames complete them
//! (`chaos/regressions/stale-irp-cancel.json`), or query OIDs while one
//! cancels its own and the adapter holds and releases OIDs
//! (`stale-oid-cancel.json`). The race is a few instructions wide, so each
//! schedule runs many times; the driver that named IRPs by address failed
//! about one run in a hundred of the first and two in a hundred of the
//! second.

use rawnic_chaos::supervise::{Verdict, run_file};
use std::time::Duration;

mod common;

fn run_many(name: &str, times: usize) {
    let f = common::regression_path(name);
    let w = common::workers(Duration::from_secs(60), 1);
    for i in 0..times {
        let v = run_file(&w, &f);
        assert!(matches!(v, Verdict::Clean(_)), "{name}, run {i}: {}\n{v:?}", v.class());
    }
}

#[test]
fn a_stale_cancel_never_cancels_another_read() {
    run_many("stale-irp-cancel.json", 150);
}

#[test]
fn a_stale_cancel_never_cancels_another_oid() {
    run_many("stale-oid-cancel.json", 100);
}
