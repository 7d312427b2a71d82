//! The library API: build a simulation around a driver image, drive NDIS
//! events and device I/O, and collect the verifier's report.
//!
//! This module holds the `Sim` itself and what it tells about the run so
//! far; the rest of the API is split by what it is for:
//!
//! - `builder`: `SimBuilder`, which loads the driver and starts it;
//! - `threads`: the simulation's receive threads and their stop;
//! - `adapters`: NDIS events (pause, restart, bind, link, power, receive
//!   indications) and the virtual adapters' controls and counters;
//! - `handle`: the driver's devices, opening them, `Handle`, `FileRef` and
//!   `IoToken` for requests on an open file;
//! - `unload`: unloading the driver and the verifier's `Report`.

mod adapters;
mod builder;
mod handle;
mod offload;
mod threads;
mod unload;

pub use builder::{SimBuilder, StartError};
pub use handle::{FileRef, Handle, IoToken};
pub use unload::Report;

use crate::io;
use crate::kernel::{self, Kernel};
use crate::pe::Image;
use crate::pool::PoolStats;
use crate::verifier::{Checksum, Violation};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// An adapter of a simulation, by its position in the builder's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdapterId(pub usize);

/// A running simulation: one loaded driver and its virtual adapters.
pub struct Sim {
    k: Arc<Kernel>,
    image: Option<Image>,
    driver: Box<io::DriverBox>,
    unloaded: bool,
    path: PathBuf,
}

// SAFETY: `&Sim` methods only use the `Kernel` (which is `Sync`: it is
// shared with the driver's threads already) and read the immutable image
// mapping; the driver object box is touched only by `unload`, which owns
// the `Sim`.
unsafe impl Sync for Sim {}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim").field("driver", &self.path).field("image_base", &self.image_base()).finish()
    }
}

/// Outstanding NBLs and requests of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outstanding {
    pub sends_in_flight: u64,
    pub receives_retained: u64,
    pub oids_pending: u64,
}

/// NDIS's NBL counters of a simulation so far (`Sim::nbl_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NblStats {
    /// Send NBLs the driver handed to NDIS.
    pub sent: u64,
    /// Send NBLs NDIS holds now, and the most it held at once.
    pub in_flight: u64,
    pub in_flight_peak: u64,
    /// `ProtocolReceiveNetBufferLists` calls, and those to a binding NDIS
    /// was restarting.
    pub receive_indications: u64,
    pub receive_indications_restarting: u64,
    /// Those a miniport made low on receive buffers (`rx-buffers=N`), so
    /// with `NDIS_RECEIVE_FLAGS_RESOURCES`.
    pub receive_indications_low: u64,
    /// Those to a binding whose close was called and still pending.
    pub receive_indications_closing: u64,
    /// Receive NBLs indicated and not yet returned, and the most at once.
    pub receives_held: u64,
    pub receives_held_peak: u64,
}

impl Sim {
    /// A builder.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    fn enter(&self) -> kernel::Entered {
        kernel::enter_api(&self.k)
    }

    pub(crate) fn kernel(&self) -> &Arc<Kernel> {
        &self.k
    }

    /// Where the image is mapped (RVA + base = address; callgrind
    /// addresses map to `rawnic.map` symbols through it).
    pub fn image_base(&self) -> usize {
        self.image.as_ref().map_or(0, |i| i.base)
    }

    /// The image's mapped size.
    pub fn image_size(&self) -> usize {
        self.image.as_ref().map_or(0, |i| i.size)
    }

    /// The system time the driver reads now (`KeQuerySystemTimePrecise`),
    /// in nanoseconds since 1970: virtual under the deterministic
    /// scheduler, so a test can compare it with the driver's stamps in
    /// either mode.
    pub fn system_time_ns(&self) -> u64 {
        self.k.system_time().as_nanos() as u64
    }

    /// The pool statistics so far (a snapshot during the run; the report
    /// at unload has the final ones).
    pub fn pool_stats(&self) -> PoolStats {
        self.k.pool.stats()
    }

    /// NDIS's NBL counters so far.
    pub fn nbl_stats(&self) -> NblStats {
        let s = &self.k.ndis.stats;
        NblStats {
            sent: s.sends.load(Ordering::Acquire),
            in_flight: s.in_flight.load(Ordering::Acquire),
            in_flight_peak: s.in_flight_peak.load(Ordering::Acquire),
            receive_indications: s.indications.load(Ordering::Acquire),
            receive_indications_restarting: s.indications_restarting.load(Ordering::Acquire),
            receive_indications_low: s.indications_low.load(Ordering::Acquire),
            receive_indications_closing: s.indications_closing.load(Ordering::Acquire),
            receives_held: s.recv_held.load(Ordering::Acquire),
            receives_held_peak: s.recv_held_peak.load(Ordering::Acquire),
        }
    }

    /// The image's preferred base (from its headers).
    pub fn preferred_base(&self) -> u64 {
        self.image.as_ref().map_or(0, |i| i.preferred_base)
    }

    /// `symbol+offset` of an address in the image.
    pub fn symbolize(&self, addr: usize) -> String {
        self.k.symbolize(addr)
    }

    /// Runs `actors` at once, each on a thread of its own, and returns when
    /// all have finished. Each may use the simulation as the test thread
    /// does.
    pub fn run_actors<'s>(&'s self, actors: Vec<Box<dyn FnOnce() + Send + 's>>) {
        let k = &self.k;
        let _e = self.enter();
        std::thread::scope(|scope| {
            let mut tids = Vec::new();
            for (i, f) in actors.into_iter().enumerate() {
                let name = format!("actor{i}");
                // Registered in order by the thread that holds the baton.
                let tid = k.sched_here().map_or(0, |s| s.register(&name));
                tids.push(tid);
                std::thread::Builder::new()
                    .name(format!("ndisim-{name}"))
                    .spawn_scoped(scope, move || {
                        if let Some(s) = &k.sched {
                            if tid != 0 {
                                s.start(tid);
                            }
                        }
                        let _e = kernel::enter(k);
                        f();
                        if let Some(s) = &k.sched {
                            if tid != 0 {
                                s.exit();
                            }
                        }
                    })
                    .expect("spawn an actor thread");
            }
            if let Some(s) = k.sched_here() {
                k.wait_forever("the actors to finish", || tids.iter().all(|&t| s.is_finished(t)), || {});
            }
        });
    }

    /// A harness step: where a deterministic simulation may switch threads.
    pub fn step(&self) {
        self.k.yield_point("step");
    }

    /// Sleeps for `d` (virtual time in a deterministic simulation).
    pub fn sleep(&self, d: Duration) {
        let _e = self.enter();
        self.k.sleep(d);
    }

    /// Refuses (NULL) the next `n` NBL and NET_BUFFER allocations
    /// (`NdisAllocateNetBufferAndNetBufferList`, `NdisAllocateNetBufferList`,
    /// `NdisAllocateNetBuffer`), as low resources would, on purpose; 0
    /// stops refusing. Returns how many were still to refuse.
    pub fn refuse_nbl_allocations(&self, n: u64) -> u64 {
        self.k.refuse_nbls.swap(n, std::sync::atomic::Ordering::AcqRel)
    }

    /// As `refuse_nbl_allocations(n)`, after letting the next `skip` NBL
    /// allocations through (a shortage that begins in the middle of the
    /// driver's work).
    pub fn refuse_nbl_allocations_after(&self, skip: u64, n: u64) {
        self.k.refuse_nbls_skip.store(skip, std::sync::atomic::Ordering::Release);
        self.k.refuse_nbls.store(n, std::sync::atomic::Ordering::Release);
    }

    /// Refuses (NULL) the next `n` pool allocations of the driver's
    /// (`ExAllocatePool2`), as low resources would, on purpose; 0 stops
    /// refusing. Returns how many were still to refuse.
    pub fn refuse_pool_allocations(&self, n: u64) -> u64 {
        self.k.refuse_pool.swap(n, std::sync::atomic::Ordering::AcqRel)
    }

    /// A shortage of memory aimed at what the driver does next: its next
    /// `skip` pool allocations (`ExAllocatePoolWithTag`) go through, the
    /// `n` after them are refused, as Driver Verifier's low-resources
    /// simulation would refuse them (with or without one), and each is
    /// counted among `alloc_failures`, so a check knows memory was short.
    /// `end_low_resources` ends what is left of it.
    pub fn short_of_pool(&self, skip: u64, n: u64) {
        self.k.short_left.store(0, std::sync::atomic::Ordering::Release);
        self.k.short_skip.store(skip, std::sync::atomic::Ordering::Release);
        self.k.short_left.store(n, std::sync::atomic::Ordering::Release);
    }

    /// Refuses (NULL) the next `n` kernel-mode system mappings
    /// (`MmMapLockedPagesSpecifyCache`, and so `MmGetSystemAddressForMdlSafe`
    /// of an MDL not mapped yet), as low resources would; 0 stops refusing.
    /// Returns how many were still to refuse.
    pub fn refuse_mappings(&self, n: u64) -> u64 {
        self.k.refuse_maps.swap(n, std::sync::atomic::Ordering::AcqRel)
    }

    /// As `refuse_mappings(n)`, after letting the next `skip` mappings
    /// through (a frame whose first MDL maps and whose next does not).
    pub fn refuse_mappings_after(&self, skip: u64, n: u64) {
        self.k.refuse_maps_skip.store(skip, std::sync::atomic::Ordering::Release);
        self.k.refuse_maps.store(n, std::sync::atomic::Ordering::Release);
    }

    /// Stalls every pool allocation (`ExAllocatePoolWithTag`) of exactly
    /// `bytes` bytes on entry, before the pool looks at it, until
    /// `release_pool_allocations` (or the watchdog's time): the driver's
    /// thread stays inside the call, as one Windows preempts there, while
    /// others run. A size only the driver's step of interest asks for aims
    /// at that step; 0 stalls none.
    pub fn stall_pool_allocations_of(&self, bytes: usize) {
        self.k.pool_stall_until.store(0, std::sync::atomic::Ordering::Release);
        self.k.pool_stall_size.store(bytes, std::sync::atomic::Ordering::Release);
    }

    /// As `stall_pool_allocations_of`, for `d` from now (virtual time when
    /// deterministic): the spell ends by itself, so the thread that casts
    /// it may go on into the driver and be the one stalled there. An
    /// allocation stalled near the end waits out only what is left.
    pub fn stall_pool_allocations_for(&self, bytes: usize, d: std::time::Duration) {
        let until = self.k.now_ns().saturating_add(d.as_nanos() as u64).max(1);
        self.k.pool_stall_until.store(until, std::sync::atomic::Ordering::Release);
        self.k.pool_stall_size.store(bytes, std::sync::atomic::Ordering::Release);
    }

    /// Lets the stalled pool allocations go on, and the next ones through.
    pub fn release_pool_allocations(&self) {
        self.k.pool_stall_size.store(0, std::sync::atomic::Ordering::Release);
        self.k.pool_stall_until.store(0, std::sync::atomic::Ordering::Release);
    }

    /// Pool allocations stalled so far, by either kind of spell.
    pub fn pool_allocations_stalled(&self) -> u64 {
        self.k.pool_stalls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The distinct sizes of the driver's pool blocks live now, smallest
    /// first: sizes the driver does allocate, for
    /// `stall_pool_allocations_of` to aim at.
    pub fn live_pool_sizes(&self) -> Vec<usize> {
        self.k.pool.live_sizes()
    }

    /// Pool allocations stalled now (`stall_pool_allocations_of`).
    pub fn stalled_pool_allocations(&self) -> u64 {
        self.k.pool_stalled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Holds the system worker thread: work items queued
    /// (`IoQueueWorkItem`) and queued next run only after
    /// `release_work_items` (or when the simulation unloads), as on a
    /// Windows machine whose worker threads are busy elsewhere. What a
    /// driver does only from its work item waits meanwhile; what it must do
    /// at once is seen not to.
    pub fn hold_work_items(&self) {
        self.k.io.workers.hold(true);
    }

    /// Lets the held work items run (`hold_work_items`).
    pub fn release_work_items(&self) {
        self.k.io.workers.hold(false);
    }

    /// Work items queued or running now.
    pub fn pending_work_items(&self) -> usize {
        self.k.io.workers.pending()
    }

    /// Aims a stall at one spin-lock acquire of the driver's: counted from
    /// now, the `nth` (from 1) `NdisAcquireSpinLock` or
    /// `NdisDprAcquireSpinLock` a thread makes while inside `handler` (one
    /// of `slow::HANDLERS`: a dispatch routine, a `Protocol*` handler)
    /// first stalls its thread for `d`, holding the locks it holds, before
    /// it takes that lock: under the deterministic scheduler a sleep in
    /// virtual time (the others run as far as they can meanwhile),
    /// free-running a real one. Sweeping `nth` lands another thread in
    /// each of the steps between a handler's locks, where no allocation
    /// marks the step (`stall_pool_allocations_of`). Aiming again starts
    /// the count again. `Err` when `handler` is not one ndisim knows.
    pub fn stall_lock_acquire(&self, handler: &str, nth: u64, d: Duration) -> Result<(), String> {
        self.aim_lock_stall(handler, 0, nth, d)
    }

    /// As `stall_lock_acquire`, counting only the acquires of the calling
    /// thread (its next requests' dispatch routines, which run on it),
    /// not those other threads make inside `handler` meanwhile.
    pub fn stall_my_lock_acquire(&self, handler: &str, nth: u64, d: Duration) -> Result<(), String> {
        let _e = self.enter();
        self.aim_lock_stall(handler, kernel::tid(), nth, d)
    }

    fn aim_lock_stall(&self, handler: &str, thread: u32, nth: u64, d: Duration) -> Result<(), String> {
        match crate::slow::bit(handler) {
            0 => Err(format!("{handler:?} is not a handler ndisim knows (one of {:?})", crate::slow::HANDLERS)),
            mask => {
                self.k.lock_stall.aim(mask, thread, nth, d);
                Ok(())
            }
        }
    }

    /// Aims a stall at one call the driver makes: counted from now, the
    /// `nth` (from 1) call of export `call` (by the name it reports in,
    /// `IofCompleteRequest` for `IoCompleteRequest`; every export's calls
    /// when `None`) a thread makes while inside `handler` (one of
    /// `slow::HANDLERS`) stalls its thread for `d`, before the export's
    /// body or, when `after`, between its body and the return to the
    /// driver: a thread that has just completed an IRP, handed NBLs over or
    /// released a lock waits there while the others run (under the
    /// deterministic scheduler, which switches only at an export's entry,
    /// nothing else opens that window). One such aim at a time, apart from
    /// `stall_lock_acquire`'s; aiming again starts the count again, and
    /// `nth` 0 disarms. `Err` when `handler` or `call` is not one ndisim
    /// knows.
    pub fn stall_call(
        &self,
        handler: &str,
        call: Option<&str>,
        nth: u64,
        after: bool,
        d: Duration,
    ) -> Result<(), String> {
        let mask = crate::slow::bit(handler);
        if mask == 0 {
            return Err(format!("{handler:?} is not a handler ndisim knows (one of {:?})", crate::slow::HANDLERS));
        }
        if let Some(c) = call.filter(|c| !crate::exports::reports_calls_of(c)) {
            return Err(format!("{c:?} is not an export ndisim reports calls of"));
        }
        self.k.call_stall.aim_call(mask, 0, call, after, nth, d);
        Ok(())
    }

    /// Counts, from now, the calls of each export the driver makes inside
    /// each handler (`calls_made_in`); off by default (it costs a lock at
    /// every export).
    pub fn count_calls(&self, on: bool) {
        self.k.census.set(on);
    }

    /// The exports called inside `handler` (one of `slow::HANDLERS`) while
    /// `count_calls` was on, by name (as `stall_call` takes them), and how
    /// often; none for a handler ndisim does not know.
    pub fn calls_made_in(&self, handler: &str) -> Vec<(&'static str, u64)> {
        crate::slow::HANDLERS.iter().position(|&h| h == handler).map_or_else(Vec::new, |i| self.k.census.of(i))
    }

    /// Since `stall_call` aimed: (the calls counted inside the handler,
    /// the stalls made, the threads stalled now).
    pub fn call_stalls(&self) -> (u64, u64, u64) {
        self.k.call_stall.counts()
    }

    /// Since `stall_lock_acquire` aimed: (the acquires counted inside the
    /// handler, the stalls made, the threads stalled now). Fewer acquires
    /// than `nth` once the handler returned: it made fewer.
    pub fn lock_acquire_stalls(&self) -> (u64, u64, u64) {
        self.k.lock_stall.counts()
    }

    /// Lets the next `skip` NBL and NET_BUFFER pool allocations
    /// (`NdisAllocateNetBufferListPool`, `NdisAllocateNetBufferPool`)
    /// through, then refuses (NULL) the `n` after them, as low resources
    /// would; `(0, 0)` stops. (A driver that makes two pools for one
    /// object, say, with the second refused.)
    pub fn refuse_ndis_pools_after(&self, skip: u64, n: u64) {
        self.k.refuse_pools.store(0, std::sync::atomic::Ordering::Release);
        self.k.refuse_pools_skip.store(skip, std::sync::atomic::Ordering::Release);
        self.k.refuse_pools.store(n, std::sync::atomic::Ordering::Release);
    }

    /// NBL and NET_BUFFER pool allocations `refuse_ndis_pools_after` has
    /// still to let through and to refuse.
    pub fn ndis_pools_to_refuse(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (self.k.refuse_pools_skip.load(Ordering::Acquire), self.k.refuse_pools.load(Ordering::Acquire))
    }

    /// Allocation failures the low-resources simulation injected so far.
    pub fn alloc_failures(&self) -> u64 {
        self.k.alloc_failures()
    }

    /// Allocations counted so far for `SimBuilder::fail_nth_allocation`
    /// (whether or not it aims at one).
    pub fn allocations_counted(&self) -> u64 {
        self.k.allocs_seen.load(Ordering::Acquire)
    }

    /// How many allocations `SimBuilder::fail_nth_allocation` (or
    /// `fail_allocations_from`) refused so far.
    pub fn allocations_refused(&self) -> u64 {
        self.k.nth_failed.load(Ordering::Acquire)
    }

    /// Whether the first allocation `SimBuilder::fail_nth_allocation` (or
    /// `fail_allocations_from`) aimed at came, and failed.
    pub fn nth_allocation_failed(&self) -> bool {
        self.allocations_refused() > 0
    }

    /// Where the first allocation `SimBuilder::fail_nth_allocation`
    /// refused was: the export (or the I/O manager's IRP for a user's
    /// request) and the thread ("ExAllocatePoolWithTag on thread rx1");
    /// none before it came.
    pub fn nth_allocation(&self) -> Option<String> {
        crate::verifier::lock(&self.k.nth_where).clone()
    }

    /// As `SimBuilder::fail_allocations_from`, aimed from now: after the
    /// next `skip` allocations go through, `count` in a row are refused
    /// (until `end_allocation_refusals`). A refusal at a point of the
    /// harness's choosing (the start of a schedule's body, past
    /// `DriverEntry` and the first binds, whose allocations vary). It
    /// replaces any earlier aim; `nth_allocation` keeps naming the first
    /// refusal of the run.
    pub fn refuse_allocations_after(&self, skip: u64, count: u64) {
        let first = self.k.allocs_seen.load(Ordering::Acquire).saturating_add(skip).saturating_add(1);
        self.k.nth_count.store(count, Ordering::Release);
        self.k.nth_alloc.store(first, Ordering::Release);
    }

    /// Ends the refusals `SimBuilder::fail_allocations_from` aimed at (those
    /// refused so far stay counted): every allocation from now goes
    /// through, as far as that knob goes.
    pub fn end_allocation_refusals(&self) {
        self.k.nth_count.store(0, Ordering::Release);
    }

    /// Stops injecting allocation failures (a low-resources simulation
    /// only; the count so far stays): the shortage is over, and what the
    /// driver owes for it can be asked for and checked
    /// (`resume_low_resources` starts it again).
    pub fn end_low_resources(&self) {
        self.k.set_low_resources(false);
    }

    /// Injects allocation failures again after `end_low_resources`.
    pub fn resume_low_resources(&self) {
        self.k.set_low_resources(true);
    }

    /// Requests that reached the driver after their handle's
    /// IRP_MJ_CLEANUP (see `Handle::close_shared` and `FileRef`).
    pub fn requests_after_cleanup(&self) -> u64 {
        self.k.io.late_requests()
    }

    /// OID requests the adapters failed because a test or an adapter
    /// option told them to (`fail_oid`, `oid-fail=`).
    pub fn oids_failed(&self) -> u64 {
        self.k.ndis.adapters().iter().map(|a| a.oids_failed.load(std::sync::atomic::Ordering::Relaxed)).sum()
    }

    /// Frames of sends NDIS gave back failed (`send-fail=`, a send racing a
    /// pause, one made while not Running), on every binding there has been.
    pub fn sends_failed(&self) -> u64 {
        self.k.ndis.sends_failed()
    }

    /// Stalls made inside the handlers `SimBuilder::slow_handlers` aimed at.
    pub fn slow_stalls(&self) -> u64 {
        self.k.slow_stalls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Cancels of requests whose dispatch routine had not returned yet
    /// (`Handle::cancel_io`, or a handle abandoned, from another thread).
    pub fn cancels_in_dispatch(&self) -> u64 {
        self.k.io.cancels_in_dispatch()
    }

    /// Stalls every cancel routine where it releases the cancel spin lock
    /// it was called with (`IoReleaseCancelSpinLock(Irp->CancelIrql)`),
    /// the lock still held, until `release_cancel_routines` (or the
    /// watchdog's time): a routine that takes a while before it lets go,
    /// so a completion on another thread that does not wait for the lock
    /// comes while it runs (rule irp-complete-in-cancel).
    pub fn stall_cancel_routines(&self) {
        self.k.io.cancel_stall.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Lets the stalled cancel routines go on, and the next ones through.
    pub fn release_cancel_routines(&self) {
        self.k.io.cancel_stall.store(false, std::sync::atomic::Ordering::Release);
    }

    /// Cancel routines stalled now (`stall_cancel_routines`).
    pub fn stalled_cancel_routines(&self) -> u64 {
        self.k.io.cancel_stalled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Threads inside `IoAcquireCancelSpinLock` that have not got the
    /// cancel spin lock yet (one held by a stalled cancel routine, say).
    pub fn cancel_lock_waiters(&self) -> u64 {
        self.k.io.cancel_waiters.load(std::sync::atomic::Ordering::Acquire)
    }

    /// In a deterministic simulation, the hash of every scheduling decision
    /// so far and how many there were: the same seed gives the same hash.
    pub fn trace(&self) -> Option<(u64, u64)> {
        self.k.sched.as_ref().map(|s| s.trace())
    }

    /// What every IRP completed so far gave its caller, in completion
    /// order (`SimBuilder::record_outputs`; empty without it). Two
    /// deterministic runs of one seed with different `SimBuilder::garbage`
    /// must give the same (`first_difference`).
    pub fn outputs(&self) -> Vec<crate::Output> {
        self.k.io.outputs()
    }

    /// Violations so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.k.verifier.violations()
    }

    /// The driver's debug output so far.
    pub fn debug_output(&self) -> Vec<String> {
        self.k.dbg.all()
    }

    /// Switches NBL checksumming (e.g. off for benchmarks).
    pub fn set_checksum(&self, c: Checksum) {
        self.k.verifier.set_checksum(c);
    }
}
