//! ndisim: runs the real, unmodified `rawnic.sys` in a Linux process.
//!
//! It loads the PE image (`pe`), resolves its imports against emulated
//! `ndis.sys`, `ntoskrnl.exe` and `HAL.dll` exports (`exports`), runs
//! virtual NICs below it (`adapter`), sends it real IRPs (`io`) and checks
//! what it does the way Driver Verifier would (`verifier`).
//!
//! ```no_run
//! use ndisim::{Sim, InjectOpts};
//! let sim = Sim::builder().driver("target/package/rawnic.sys").adapter("loopback").start()?;
//! let a = sim.adapter_id("loop0").unwrap();
//! sim.pause(a)?;
//! sim.restart(a, &Default::default())?;
//! sim.inject(a, &[&[0u8; 60][..]], &InjectOpts::default())?;
//! let report = sim.unload();
//! assert!(report.is_clean(), "{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `README.md` beside this crate for the whole API, the script format
//! and the verifier's rules.
#![allow(non_snake_case, non_upper_case_globals)]

pub mod adapter;
pub mod bridge;
mod callback;
mod census;
mod dbg;
mod demo;
pub mod exports;
mod freed;
mod held;
mod io;
mod jobs;
mod kept;
mod kernel;
mod lock_stall;
mod lockorder;
mod nbl;
mod ndis;
pub mod pe;
mod pool;
pub mod preempt;
mod ringwatch;
pub mod rng;
pub(crate) mod sched;
pub mod script;
mod sim;
pub mod slow;
mod stack;
mod starve;
mod stop;
mod sync;
pub mod verifier;

pub use adapter::{AdapterKind, AdapterSpec, Completion, CompletionPolicy, Frame};
pub use io::{Ace, Identity, IoResult, Output, UserRegion, first_difference, sid, sid_string};
pub use kernel::{EXIT_BUGCHECK, EXIT_DRIVER_FAULT};
pub use ndis::{
    BindingState, Coalesce, DEFAULT_NDIS_VERSION, HeldOid, InjectOpts, NbLayout, OTHER_EVENTS as OTHER_PNP_EVENTS,
    RestartSpec, SUPPORTED_OIDS, SetAnswer, SimError, statistics_info,
};
pub use pool::{PoolBlock, PoolStats};
pub use ringwatch::{Handback, RingWatch};
pub use sched::{Deviation, Strategy};
pub use sim::{AdapterId, FileRef, Handle, IoToken, NblStats, Outstanding, Report, Sim, SimBuilder, StartError};
pub use stack::{DEFAULT_BUDGET as DEFAULT_STACK_BUDGET, HandlerDepth, KERNEL_STACK, StackReport, count_call_sites};
pub use stop::abort_on_stop;
pub use verifier::{Checksum, Rule, Violation};
