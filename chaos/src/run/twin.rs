//! Twin runs (`Schedule::twin`): a deterministic schedule run twice, the
//! second time with other garbage in the memory the driver never wrote
//! (`SimBuilder::garbage`: fresh pool, a fresh NBL's reserved words,
//! context data and preallocated data, the unwritten output of a buffered
//! request, the stack's paint). One seed
//! replays one interleaving, so both runs must make the same scheduling
//! decisions and give the driver's callers the same statuses, lengths and
//! bytes (`Sim::outputs`). Where they differ, memory the driver never
//! wrote reached user mode (on Windows, stale kernel memory handed to a
//! process) or steered what the driver did; no check of one run can tell
//! those bytes from written ones.

use super::{Outcome, RunConfig, run_once};
use crate::schedule::Schedule;

/// What the second run mixes into ndisim's garbage bytes: fresh pool 0x9F
/// instead of 0xC5, unwritten buffered output 0x8F instead of 0xD5.
pub const GARBAGE: u8 = 0x5A;

pub(super) fn run(s: &Schedule, cfg: &RunConfig) -> Outcome {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut a = run_once(s, cfg, Some(0), &mut first);
    if a.failed() {
        return a;
    }
    let mut b = run_once(s, cfg, Some(GARBAGE), &mut second);
    if b.failed() {
        b.harness.insert(0, format!("twin: clean with ndisim's usual garbage, not with garbage {GARBAGE:#04x}"));
        return b;
    }
    if let Some(d) = ndisim::first_difference(&first, &second) {
        a.harness.push(format!(
            "twin: the driver's callers got different results with other garbage in memory it never wrote (fresh pool, NBLs' reserved words, context and data, unwritten output, the stack): {d}"
        ));
    } else if a.trace != b.trace {
        a.harness.push(format!(
            "twin: the same results, but another interleaving with other garbage in memory the driver never wrote (scheduling decisions {:?} against {:?}): the driver branches on memory it never wrote",
            a.trace, b.trace
        ));
    }
    a.edges.twins = 1;
    a.edges.twin_outputs = first.len() as u64;
    a
}
