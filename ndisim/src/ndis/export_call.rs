//! How each of NDIS's exports runs when the driver calls it: `export`
//! finds the simulation, makes the call a scheduling point, notes it and
//! applies a test's stalls, and catches a panic of its body (an internal
//! error, answered with a default); and which export a thread is in.

use crate::kernel::{self, Kernel};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Runs an export body: catches panics (recorded as internal errors) and
/// finds the simulation.
pub(crate) fn export<R>(call: &'static str, default: R, f: impl FnOnce(&'static Kernel) -> R) -> R {
    let Some(k) = export_kernel(call) else { return default };
    // Every export is a scheduling point of a deterministic simulation.
    k.yield_point(call);
    k.census.note(call);
    k.stall_call(call, false);
    let r = run_export(k, call, default, f);
    k.stall_call(call, true);
    if k.config.points_after {
        k.yield_point(call);
    }
    r
}

/// `export`, with its scheduling point after the body rather than before:
/// for `NdisReturnNetBufferLists`, where a driver arrives straight from
/// taking the NBLs off its own list under its lock (it cannot call with
/// the lock held: NDIS may indicate from inside). Windows may preempt a
/// thread there too, but rule retained-when-low cannot tell that from a
/// driver sitting on them; running free it waits for them
/// (`Adapter::low_begins`), deterministic it needs no window to wait out.
pub(crate) fn export_yield_after<R>(call: &'static str, default: R, f: impl FnOnce(&'static Kernel) -> R) -> R {
    let Some(k) = export_kernel(call) else { return default };
    k.census.note(call);
    k.stall_call(call, false);
    let r = run_export(k, call, default, f);
    k.stall_call(call, true);
    k.yield_point(call);
    r
}

/// The simulation an export runs in; none (an internal error) for a
/// thread outside any.
fn export_kernel(call: &str) -> Option<&'static Kernel> {
    let k = kernel::kernel();
    if k.is_none() {
        kernel::internal_error(format!("{call} was called by a thread outside any simulation"));
    }
    k
}

thread_local! {
    /// The export this thread is in (the innermost), for reports.
    static IN_EXPORT: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

/// A test's stall of a call on this thread (`Sim::stall_oid_calls`,
/// `stall_oid_returns`, `stall_send_calls`): while `stall` is set, waits
/// (at most the watchdog's time), counted in `stalled` meanwhile.
pub(crate) fn stall_while(k: &Kernel, stall: &AtomicBool, stalled: &AtomicU64, what: &'static str) {
    if !stall.load(Ordering::Acquire) {
        return;
    }
    stalled.fetch_add(1, Ordering::AcqRel);
    k.wait_until(k.config.watchdog, what, || !stall.load(Ordering::Acquire));
    stalled.fetch_sub(1, Ordering::AcqRel);
}

/// The export the calling thread is in ("" outside any).
pub(crate) fn in_export() -> &'static str {
    IN_EXPORT.with(|c| c.get())
}

fn run_export<R>(k: &'static Kernel, call: &'static str, default: R, f: impl FnOnce(&'static Kernel) -> R) -> R {
    let outer = IN_EXPORT.with(|c| c.replace(call));
    let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(k))) {
        Ok(r) => r,
        Err(p) => {
            kernel::internal_panic(call, p);
            default
        }
    };
    IN_EXPORT.with(|c| c.set(outer));
    r
}
