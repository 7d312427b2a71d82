//! Unloading: closing what is open, `DriverUnload`, the leak checks, and
//! the verifier's `Report`.

use super::Sim;
use super::threads::stop_threads;
use crate::io;
use crate::kernel::{self, PASSIVE_LEVEL, call_driver};
use crate::ndis;
use crate::pool::{PoolBlock, PoolStats};
use crate::verifier::{Rule, Violation};
use ndis_sys::*;
use std::fmt;
use std::sync::atomic::Ordering;

/// The verifier's report at unload.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub internal_errors: Vec<String>,
    pub pool: PoolStats,
    /// Pool blocks the driver never freed.
    pub leaked_pool: Vec<PoolBlock>,
    /// Most send NBLs NDIS held at once.
    pub nbls_in_flight_peak: u64,
    pub nbls_sent: u64,
    pub receive_indications: u64,
    /// The driver's stack use: each handler's deepest call and the
    /// stacks' high-water mark.
    pub stack: crate::stack::StackReport,
    pub debug_output: Vec<String>,
    /// A deterministic simulation with `Strategy::Bounded`: each switch's
    /// number of alternatives to the default pick, the unload's included.
    pub sched_points: Option<Vec<u16>>,
    /// A deterministic simulation: the hash of every scheduling decision
    /// and their number, the unload's included (`Sim::trace` before it).
    pub sched_trace: Option<(u64, u64)>,
}

impl Report {
    /// No violation and no internal error.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.internal_errors.is_empty()
    }

    /// The distinct rules broken, sorted.
    pub fn rules(&self) -> Vec<Rule> {
        let mut r: Vec<Rule> = self.violations.iter().map(|v| v.rule).collect();
        r.sort();
        r.dedup();
        r
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ndisim verifier report")?;
        writeln!(f, "  violations: {}", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "    {v}")?;
        }
        if !self.internal_errors.is_empty() {
            writeln!(f, "  ndisim internal errors: {}", self.internal_errors.len())?;
            for e in &self.internal_errors {
                writeln!(f, "    {e}")?;
            }
        }
        writeln!(
            f,
            "  pool: {} allocations, {} frees, peak {} bytes, {} block(s) leaked",
            self.pool.allocations,
            self.pool.frees,
            self.pool.peak_bytes,
            self.leaked_pool.len()
        )?;
        writeln!(
            f,
            "  NBLs: {} sent, peak {} in flight; {} receive indications",
            self.nbls_sent, self.nbls_in_flight_peak, self.receive_indications
        )?;
        writeln!(f, "  {}", self.stack)?;
        write!(f, "  result: {}", if self.is_clean() { "CLEAN" } else { "VIOLATIONS" })
    }
}

impl Sim {
    /// Unloads: closes open handles, calls `DriverUnload` (work items the
    /// closes queued may still wait or run: Windows does not wait for
    /// them first), waits for work items, checks for leaks and returns the
    /// report.
    pub fn unload(mut self) -> Report {
        self.finish(true)
    }

    pub(super) fn finish(&mut self, call_unload: bool) -> Report {
        if self.unloaded {
            return Report::default();
        }
        self.unloaded = true;
        let k = self.k.clone();
        let e = kernel::enter(&k);
        // Held work items (`Sim::hold_work_items`) run now, and the
        // test's other holds end: stalled allocations and cancel routines
        // go on, and each adapter gives back what it held
        // (`ndis::end_test_holds`).
        k.io.workers.hold(false);
        k.pool_stall_size.store(0, Ordering::Release);
        k.io.cancel_stall.store(false, Ordering::Release);
        ndis::end_test_holds(&k);
        for f in io::open_files(&k) {
            io::close(&k, f, true);
        }
        let wd = k.config.watchdog;
        // Work items are not drained here: Windows calls `DriverUnload`
        // once the last file object of the driver's devices is gone, and a
        // queued work item's reference on its device object does not
        // count (it keeps the image loaded, not the driver's state). A work
        // item a close queued may still wait, or run, while `DriverUnload`
        // runs, and after it: what it touches must still be there.
        k.dpc.drain(wd);
        for a in k.ndis.adapters() {
            a.rx.wait_idle(wd);
        }
        if call_unload {
            match self.driver.obj.DriverUnload {
                Some(unload) => {
                    let d: *mut DRIVER_OBJECT = &mut self.driver.obj;
                    call_driver("DriverUnload", PASSIVE_LEVEL, || {
                        // SAFETY: the driver's unload routine with its object.
                        unsafe { unload(d) }
                    });
                }
                None => {
                    if k.ndis.protocol().is_some() {
                        Violation::new(
                            Rule::ResourceLeak,
                            "DriverUnload",
                            "the driver has no DriverUnload and its protocol stays registered",
                        )
                        .report();
                    }
                }
            }
        }
        if k.io.workers.pending() > 0 && !k.io.workers.drain(wd) {
            Violation::new(
                Rule::ResourceLeak,
                "DriverUnload",
                "work items were still queued or running after DriverUnload",
            )
            .report();
        }
        k.dpc.drain(wd);
        if k.ndis.protocol().is_some() {
            Violation::new(
                Rule::ResourceLeak,
                "DriverUnload",
                "the protocol was not deregistered (NdisDeregisterProtocolDriver)",
            )
            .report();
        }
        ndis::leak_check(&k);
        io::leak_check(&k);
        let leaked = k.pool.live();
        // (A failed DriverEntry gets no DriverUnload: what it left is its.)
        let at = if call_unload { "DriverUnload" } else { "DriverEntry (failed)" };
        for b in &leaked {
            Violation::new(
                Rule::PoolLeak,
                at,
                format!("{} bytes of pool with tag {:?} were never freed", b.size, crate::pool::tag_str(b.tag)),
            )
            .with_object(b.addr)
            .report();
        }
        stop_threads(&k);
        drop(e);
        let stack = k.stack.report(&k);
        let report = Report {
            violations: k.verifier.violations(),
            internal_errors: k.verifier.internal_errors(),
            pool: k.pool.stats(),
            leaked_pool: leaked,
            nbls_in_flight_peak: k.ndis.stats.in_flight_peak.load(Ordering::Acquire),
            nbls_sent: k.ndis.stats.sends.load(Ordering::Acquire),
            receive_indications: k.ndis.stats.indications.load(Ordering::Acquire),
            stack,
            debug_output: k.dbg.all(),
            sched_points: k.sched.as_ref().filter(|s| s.is_bounded()).map(|s| s.points()),
            sched_trace: k.sched.as_ref().map(|s| s.trace()),
        };
        {
            let _e = kernel::enter(&k);
            ndis::free_everything(&k);
            io::free_everything(&k);
            k.pool.release_all();
        }
        // The thread that built the simulation leaves its scheduler.
        if let Some(s) = k.sched_here() {
            s.exit();
        }
        report
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if !self.unloaded {
            let r = self.finish(true);
            if !r.is_clean() {
                eprintln!("ndisim: a simulation dropped without unload() had findings:\n{r}");
            }
        }
        // The image is unmapped when `self.image` drops, after every thread
        // that could run driver code has been joined.
        self.image.take();
    }
}
