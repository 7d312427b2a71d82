//! The schedule explorer: seeded, replayable random schedules of PnP
//! events, miniport behaviour, low resources and user I/O against the real
//! rawnic.sys in ndisim, checked by ndisim's verifier and by the harness.
//!
//! - `schedule`: what a schedule is (plain data, saved as JSON);
//! - `gen`: the schedule of a seed;
//! - `frames`: self-checking frames;
//! - `run`: one schedule against one simulation;
//! - `supervise`: many schedules in worker processes (crashes and hangs are
//!   results, not the end of the run);
//! - `shrink`: a failing schedule cut down to the actions that matter;
//! - `coverage`: which of the driver's source lines the schedules run
//!   (`--coverage`).
//!
//! `cargo make chaos -- [--schedules N] [--seed S] [--mode free|det|both]`
//! runs it; `rawnic-chaos --help` lists the options. `--rings N` (per
//! mille of the schedules, 250 by default) adds ring users
//! (`run/rings/`): UMEMs attached, fills, zero-copy sends, waits,
//! detaches and a hostile user's garbage, judged by the user's own model
//! of its frames.

pub mod coverage;
pub mod frames;
pub mod r#gen;
pub mod randprog;
pub mod refbpf;
pub mod run;
pub mod schedule;
pub mod shrink;
pub mod supervise;
pub mod systematic;

pub use r#gen::{GenOptions, Profile, generate};
pub use run::{Outcome, RunConfig, run};
pub use schedule::{Mode, Schedule, Slow};
pub use supervise::Verdict;
