//! The emulated kernel's context: which simulation a thread works for, the
//! thread's IRQL (the locks it holds are in `held`, re-exported here), and
//! the calls into driver code. The fatal stops (bug checks, faults in
//! driver code) are in `stop`, re-exported here.
//!
//! Every export is a plain `extern "win64"` function, so the simulation it
//! belongs to is found through a thread-local pointer that each thread sets
//! before it runs driver code (`enter`).

pub(crate) use crate::held::*;
pub(crate) use crate::stop::*;
use crate::verifier::{Rule, Verifier, Violation, lock};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const PASSIVE_LEVEL: u8 = 0;
pub const APC_LEVEL: u8 = 1;
pub const DISPATCH_LEVEL: u8 = 2;

/// Exit status of the process after a bug check.
pub const EXIT_BUGCHECK: i32 = 3;
/// Exit status after a fault in driver code (or in a discarded section).
pub const EXIT_DRIVER_FAULT: i32 = 4;

static NEXT_TID: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static CURRENT: Cell<*const Kernel> = const { Cell::new(std::ptr::null()) };
    static IRQL: Cell<u8> = const { Cell::new(PASSIVE_LEVEL) };
    static TID: u32 = NEXT_TID.fetch_add(1, Ordering::Relaxed);
}

/// Static facts about the loaded image that the exports check against.
#[derive(Debug, Clone)]
pub(crate) struct ImageInfo {
    pub name: String,
    pub base: usize,
    pub size: usize,
    /// Executable ranges that stay mapped after `DriverEntry`.
    pub code: Vec<(usize, usize)>,
    pub symbols: Vec<crate::pe::Symbol>,
}

impl ImageInfo {
    pub fn is_code(&self, addr: usize) -> bool {
        self.code.iter().any(|&(s, e)| addr >= s && addr < e)
    }
}

/// Settings of one simulation.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub watchdog: Duration,
    pub echo_dbgprint: bool,
    /// Debug lines containing any of these are violations
    /// (`SimBuilder::forbid_debug_lines`).
    pub forbidden_debug: Vec<String>,
    /// Run every thread under one scheduler seeded with this, picking so.
    pub deterministic: Option<(u64, crate::sched::Strategy)>,
    /// `Strategy::Bounded`'s deviations (`SimBuilder::deviations`).
    pub script: Vec<crate::sched::Deviation>,
    /// Low-resources simulation: (per mille, seed).
    pub low_resources: Option<(u32, u64)>,
    /// Bytes of stack the driver's frames may use (rule stack-budget).
    pub stack_budget: usize,
    /// Free-running: (per mille, seed) of exports that first stall their
    /// thread for a moment, to widen the windows between the driver's
    /// steps.
    pub jitter: Option<(u32, u64)>,
    /// Free-running: (a second's preemptions, seed) of threads inside the
    /// driver's code (`SimBuilder::preempt`).
    pub preempt: Option<(u32, u64)>,
    /// PnP events return once the driver completed them, not once the
    /// work item that completed them finished (`SimBuilder::prompt_pnp`).
    pub prompt_pnp: bool,
    /// Every export is a scheduling point after its body too
    /// (`SimBuilder::points_after_exports`).
    pub points_after: bool,
    /// Handlers whose calls into ndisim stall now and then
    /// (`SimBuilder::slow_handlers`).
    pub slow: Option<crate::slow::Slow>,
    /// Mixed into what memory the driver never wrote holds: fresh pool, a
    /// fresh NBL's `ProtocolReserved`, its context data and its pool's
    /// `DataSize` data, the unwritten output of a buffered request and the
    /// stack's paint (`SimBuilder::garbage`; 0 keeps ndisim's usual
    /// bytes).
    pub garbage: u8,
    /// Every IRP's result kept as its caller got it (`SimBuilder::
    /// record_outputs`, `Sim::outputs`).
    pub record_outputs: bool,
}

/// Driver Verifier's low-resources simulation: which allocations fail.
pub(crate) struct LowRes {
    per_mille: u32,
    rng: crate::rng::Rng,
    /// Failures are injected only once DriverEntry returned (Driver
    /// Verifier also spares a driver's initialisation).
    armed: bool,
    injected: u64,
}

/// One simulation's emulated kernel.
pub(crate) struct Kernel {
    pub verifier: Verifier,
    pub pool: crate::pool::Pool,
    pub io: crate::io::Io,
    pub ndis: crate::ndis::Ndis,
    pub dbg: crate::dbg::DebugLog,
    /// Deferred NDIS work (pending completions, DPCs).
    pub dpc: crate::jobs::Jobs,
    pub image: OnceLock<ImageInfo>,
    pub config: Config,
    /// Background threads of the simulation (workers, adapters), joined at
    /// shutdown, with their scheduler ids (0 when not deterministic).
    pub threads: Mutex<Vec<(std::thread::JoinHandle<()>, u32)>>,
    /// The deterministic scheduler, if the simulation has one.
    pub sched: Option<crate::sched::Sched>,
    /// When the simulation began (real time, for the free-running clock).
    pub epoch: std::time::Instant,
    pub lowres: Mutex<Option<LowRes>>,
    /// Which lock was taken while which was held (deadlock detection).
    pub lock_order: crate::lockorder::LockOrder,
    /// The driver's stack depths.
    pub stack: Arc<crate::stack::Stats>,
    /// Preemption inside the driver's code (free-running only).
    pub preempt: Option<Arc<crate::preempt::Preempt>>,
    /// Jitter draws so far (each export one).
    pub jitter_draws: std::sync::atomic::AtomicU64,
    /// Slow-handler draws so far (each call inside an aimed handler one),
    /// and the stalls they made.
    pub slow_draws: std::sync::atomic::AtomicU64,
    pub slow_stalls: std::sync::atomic::AtomicU64,
    /// NBL allocations still to refuse (`Sim::refuse_nbl_allocations`).
    pub refuse_nbls: std::sync::atomic::AtomicU64,
    /// NBL allocations to let through before those refused
    /// (`Sim::refuse_nbl_allocations_after`).
    pub refuse_nbls_skip: std::sync::atomic::AtomicU64,
    /// System mappings still to refuse (`Sim::refuse_mappings`).
    pub refuse_maps: std::sync::atomic::AtomicU64,
    pub refuse_maps_skip: std::sync::atomic::AtomicU64,
    /// Pool allocations (`ExAllocatePool2`) still to refuse
    /// (`Sim::refuse_pool_allocations`).
    pub refuse_pool: std::sync::atomic::AtomicU64,
    /// A shortage aimed at the driver's next pool allocations
    /// (`Sim::short_of_pool`): how many still go through, how many after
    /// them are refused, and how many were refused so (counted among the
    /// allocation failures).
    pub short_skip: std::sync::atomic::AtomicU64,
    pub short_left: std::sync::atomic::AtomicU64,
    pub short_refused: std::sync::atomic::AtomicU64,
    /// Pool allocations of this many bytes stall until released
    /// (`Sim::stall_pool_allocations_of`); 0: none. And how many are
    /// stalled now.
    pub pool_stall_size: std::sync::atomic::AtomicUsize,
    pub pool_stalled: std::sync::atomic::AtomicU64,
    /// When a spell of `Sim::stall_pool_allocations_for` ends (`now_ns`;
    /// 0: at `Sim::release_pool_allocations`).
    pub pool_stall_until: std::sync::atomic::AtomicU64,
    /// Pool allocations stalled so far.
    pub pool_stalls: std::sync::atomic::AtomicU64,
    /// NBL and NET_BUFFER pools (`NdisAllocateNetBufferListPool`,
    /// `NdisAllocateNetBufferPool`) to let through, then to refuse
    /// (`Sim::refuse_ndis_pools_after`).
    pub refuse_pools_skip: std::sync::atomic::AtomicU64,
    pub refuse_pools: std::sync::atomic::AtomicU64,
    /// A stall aimed at one spin-lock acquire inside a handler
    /// (`Sim::stall_lock_acquire`).
    pub lock_stall: crate::lock_stall::LockStall,
    /// A stall aimed at one call inside a handler (`Sim::stall_call`).
    pub call_stall: crate::lock_stall::LockStall,
    /// The calls made inside each handler (`Sim::count_calls`).
    pub census: crate::census::Census,
    /// `SimBuilder::fail_allocations_from`: the first allocation of the
    /// run refused (1-based, counted from before `DriverEntry`; 0: none)
    /// and how many from it, how many allocations were counted so far,
    /// and how many were refused so.
    pub nth_alloc: std::sync::atomic::AtomicU64,
    pub nth_count: std::sync::atomic::AtomicU64,
    pub allocs_seen: std::sync::atomic::AtomicU64,
    pub nth_failed: std::sync::atomic::AtomicU64,
    /// Where the first one refused was: the export and the thread.
    pub nth_where: Mutex<Option<String>>,
}

impl Kernel {
    pub(crate) fn new(config: Config, checksum: crate::verifier::Checksum) -> Arc<Kernel> {
        let echo = config.echo_dbgprint;
        let low_resources = config.low_resources;
        let (stack_budget, garbage) = (config.stack_budget, config.garbage);
        Arc::new(Kernel {
            verifier: Verifier::new(checksum, true),
            pool: crate::pool::Pool::new(garbage),
            io: crate::io::Io::new(config.record_outputs),
            ndis: crate::ndis::Ndis::new(),
            dbg: crate::dbg::DebugLog::new(echo, config.forbidden_debug.clone()),
            dpc: crate::jobs::Jobs::new(),
            image: OnceLock::new(),
            sched: config
                .deterministic
                .map(|(seed, how)| crate::sched::Sched::with_script(seed, how, config.script.clone())),
            preempt: config
                .preempt
                .filter(|_| config.deterministic.is_none())
                .map(|(rate, seed)| crate::preempt::Preempt::new(rate, seed)),
            config,
            threads: Mutex::new(Vec::new()),
            epoch: std::time::Instant::now(),
            lock_order: crate::lockorder::LockOrder::new(),
            stack: crate::stack::Stats::new(stack_budget, garbage),
            jitter_draws: std::sync::atomic::AtomicU64::new(0),
            slow_draws: std::sync::atomic::AtomicU64::new(0),
            slow_stalls: std::sync::atomic::AtomicU64::new(0),
            refuse_nbls: std::sync::atomic::AtomicU64::new(0),
            refuse_maps: std::sync::atomic::AtomicU64::new(0),
            refuse_maps_skip: std::sync::atomic::AtomicU64::new(0),
            refuse_nbls_skip: std::sync::atomic::AtomicU64::new(0),
            refuse_pool: std::sync::atomic::AtomicU64::new(0),
            short_skip: std::sync::atomic::AtomicU64::new(0),
            short_left: std::sync::atomic::AtomicU64::new(0),
            short_refused: std::sync::atomic::AtomicU64::new(0),
            pool_stall_size: std::sync::atomic::AtomicUsize::new(0),
            pool_stalled: std::sync::atomic::AtomicU64::new(0),
            pool_stall_until: std::sync::atomic::AtomicU64::new(0),
            pool_stalls: std::sync::atomic::AtomicU64::new(0),
            refuse_pools_skip: std::sync::atomic::AtomicU64::new(0),
            refuse_pools: std::sync::atomic::AtomicU64::new(0),
            nth_alloc: std::sync::atomic::AtomicU64::new(0),
            nth_count: std::sync::atomic::AtomicU64::new(0),
            allocs_seen: std::sync::atomic::AtomicU64::new(0),
            nth_failed: std::sync::atomic::AtomicU64::new(0),
            nth_where: Mutex::new(None),
            lock_stall: crate::lock_stall::LockStall::default(),
            call_stall: crate::lock_stall::LockStall::default(),
            census: crate::census::Census::default(),
            lowres: Mutex::new(low_resources.map(|(per_mille, seed)| LowRes {
                per_mille,
                rng: crate::rng::Rng::new(seed),
                armed: false,
                injected: 0,
            })),
        })
    }

    /// Starts injecting allocation failures (after DriverEntry).
    pub(crate) fn arm_low_resources(&self) {
        if let Some(l) = lock(&self.lowres).as_mut() {
            l.armed = true;
        }
    }

    /// Stops (`false`) or resumes (`true`) injecting allocation failures,
    /// where the simulation has low resources (`Sim::end_low_resources`).
    pub(crate) fn set_low_resources(&self, on: bool) {
        if let Some(l) = lock(&self.lowres).as_mut() {
            l.armed = on;
        }
        if !on {
            // An aimed shortage not used up ends too.
            self.short_left.store(0, std::sync::atomic::Ordering::Release);
        }
    }

    /// Counts one allocation that could fail for want of resources, and
    /// says whether it is one `SimBuilder::fail_allocations_from` aims
    /// at. Every site of `fail_alloc` counts, and so do the calls the
    /// low-resources simulation spares but Windows can still fail for
    /// lack of memory (`IoCreateDevice`, `IoCreateSymbolicLink`,
    /// `NdisRegisterProtocolDriver`).
    pub(crate) fn nth_alloc(&self) -> bool {
        use std::sync::atomic::Ordering;
        let seen = self.allocs_seen.fetch_add(1, Ordering::AcqRel) + 1;
        let first = self.nth_alloc.load(Ordering::Acquire);
        if first == 0 || seen < first || seen - first >= self.nth_count.load(Ordering::Acquire) {
            return false;
        }
        if self.nth_failed.fetch_add(1, Ordering::AcqRel) == 0 {
            let t = std::thread::current();
            let call = match crate::ndis::in_export() {
                "" => "the I/O manager's IRP for a user's request",
                c => c,
            };
            let at = format!("{call} on thread {}", t.name().unwrap_or("?"));
            *lock(&self.nth_where) = Some(at);
        }
        true
    }

    /// Whether this allocation fails (low-resources simulation, or an
    /// allocation `SimBuilder::fail_allocations_from` aims at).
    pub(crate) fn fail_alloc(&self) -> bool {
        if self.nth_alloc() {
            return true;
        }
        let mut g = lock(&self.lowres);
        let Some(l) = g.as_mut() else { return false };
        if l.armed && l.rng.chance(l.per_mille) {
            l.injected += 1;
            return true;
        }
        false
    }

    /// Whether this NBL allocation is one `Sim::refuse_nbl_allocations`
    /// asked to refuse (counting it).
    pub(crate) fn refuse_nbl(&self) -> bool {
        // The allocations still to let through come first.
        !take_one(&self.refuse_nbls_skip) && take_one(&self.refuse_nbls)
    }

    /// Whether this system mapping is one `Sim::refuse_mappings` asked to
    /// refuse (counting it).
    pub(crate) fn refuse_map(&self) -> bool {
        // The mappings still to let through come first.
        !take_one(&self.refuse_maps_skip) && take_one(&self.refuse_maps)
    }

    /// Whether this pool allocation is one `Sim::refuse_pool_allocations`
    /// asked to refuse (counting it).
    pub(crate) fn refuse_pool(&self) -> bool {
        take_one(&self.refuse_pool)
    }

    /// Whether this pool allocation is one an aimed shortage
    /// (`Sim::short_of_pool`) refuses (counting it).
    pub(crate) fn short_of_pool(&self) -> bool {
        // The allocations still to let through come first.
        if take_one(&self.short_skip) || !take_one(&self.short_left) {
            return false;
        }
        self.short_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// `Sim::stall_pool_allocations_of`: a pool allocation of the size
    /// aimed at waits, before the pool looks at it, until
    /// `Sim::release_pool_allocations` or the end of the spell
    /// (`Sim::stall_pool_allocations_for`; at most the watchdog's time):
    /// the driver's thread is inside `ExAllocatePoolWithTag` a while, as a
    /// thread Windows preempts there (or one the pool makes wait).
    pub(crate) fn stall_pool_allocation(&self, n: usize) {
        use std::sync::atomic::Ordering;
        if self.pool_stall_size.load(Ordering::Acquire) != n {
            return;
        }
        let mut limit = self.config.watchdog;
        let until = self.pool_stall_until.load(Ordering::Acquire);
        if until != 0 {
            let left = until.saturating_sub(self.now_ns());
            if left == 0 {
                return;
            }
            limit = limit.min(Duration::from_nanos(left));
        }
        self.pool_stalled.fetch_add(1, Ordering::AcqRel);
        self.pool_stalls.fetch_add(1, Ordering::Relaxed);
        self.wait_until(limit, "a pool allocation the test stalled", || {
            self.pool_stall_size.load(Ordering::Acquire) != n
        });
        self.pool_stalled.fetch_sub(1, Ordering::AcqRel);
    }

    /// `Sim::stall_lock_acquire`: the spin-lock acquire aimed at sleeps
    /// first (in virtual time when deterministic).
    pub(crate) fn stall_lock_acquire(&self) {
        if let Some(d) = self.lock_stall.at_acquire() {
            self.lock_stall.stalling(|| self.sleep(d));
        }
    }

    /// `Sim::stall_call`: the call aimed at sleeps before its body or
    /// after it (in virtual time when deterministic).
    #[inline]
    pub(crate) fn stall_call(&self, call: &str, after: bool) {
        if let Some(d) = self.call_stall.at_call(call, after) {
            self.call_stall.stalling(|| self.sleep(d));
        }
    }

    /// Whether this NBL or NET_BUFFER pool is one
    /// `Sim::refuse_ndis_pools_after` asked to refuse (counting it).
    pub(crate) fn refuse_ndis_pool(&self) -> bool {
        // The pools still to let through come first.
        !take_one(&self.refuse_pools_skip) && take_one(&self.refuse_pools)
    }

    /// Allocation failures injected so far: the low-resources
    /// simulation's and an aimed shortage's.
    pub(crate) fn alloc_failures(&self) -> u64 {
        let aimed = self.short_refused.load(std::sync::atomic::Ordering::Relaxed)
            + self.nth_failed.load(std::sync::atomic::Ordering::Acquire);
        lock(&self.lowres).as_ref().map_or(0, |l| l.injected) + aimed
    }

    /// The scheduler, when the calling thread is one it manages.
    pub(crate) fn sched_here(&self) -> Option<&crate::sched::Sched> {
        self.sched.as_ref().filter(|s| s.manages_me())
    }

    /// Nanoseconds since the simulation began: virtual time in a
    /// deterministic simulation, real time otherwise.
    /// The system time (`KeQuerySystemTimePrecise`), since 1970: virtual
    /// under the deterministic scheduler (from 2026-01-01, so a replay
    /// gives the same times), else the host's.
    pub(crate) fn system_time(&self) -> std::time::Duration {
        if self.sched.is_some() {
            std::time::Duration::from_secs(1_767_225_600) + std::time::Duration::from_nanos(self.now_ns())
        } else {
            host_time()
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        match &self.sched {
            Some(s) => s.now(),
            None => self.epoch.elapsed().as_nanos() as u64,
        }
    }

    /// A scheduling point.
    #[inline]
    pub(crate) fn yield_point(&self, at: &'static str) {
        // Free-running without jitter or slow stalls (the configuration is
        // fixed for the simulation): nothing to do, without a call.
        if self.sched.is_none() && self.config.jitter.is_none() && self.config.slow.is_none() {
            return;
        }
        self.yield_point_slow(at);
    }

    /// `yield_point` when there is something to do.
    #[inline(never)]
    fn yield_point_slow(&self, at: &'static str) {
        if let Some(s) = &self.sched {
            s.yield_now(at);
        } else if let Some((per_mille, seed)) = self.config.jitter {
            // A stall of up to 200 µs at this export: another CPU gets to
            // run what the driver does next (a race a free-running schedule
            // would otherwise rarely open).
            let n = self.jitter_draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let x = crate::rng::Rng::new(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).below(1000 * 200);
            if x % 1000 < per_mille as u64 {
                let us = x / 1000;
                if us < 20 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(us));
                }
            }
        }
        // Inside a handler a schedule aimed at: a stall now and then (a
        // sleep in virtual time when deterministic).
        if let Some(d) = self.config.slow.and_then(|s| s.draw(&self.slow_draws)) {
            self.slow_stalls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.sleep(d);
        }
    }

    /// Sleeps `d` (virtual time in a deterministic simulation).
    pub(crate) fn sleep(&self, d: Duration) {
        match self.sched_here() {
            Some(s) => {
                let until = s.now().saturating_add(d.as_nanos() as u64);
                s.block_until(Some(until), "sleep", || false);
            }
            None => std::thread::sleep(d),
        }
    }

    /// Waits until `cond()` holds, at most `timeout`; true if it held.
    pub(crate) fn wait_until(&self, timeout: Duration, what: &'static str, mut cond: impl FnMut() -> bool) -> bool {
        if let Some(s) = self.sched_here() {
            let until = s.now().saturating_add(timeout.as_nanos() as u64);
            return s.block_until(Some(until), what, cond);
        }
        // Time the process could run (crate::starve): a busy host does not
        // trip the watchdog, a driver that never finishes still does.
        let deadline = crate::starve::Deadline::after(timeout);
        let mut pause = Duration::from_micros(10);
        loop {
            if cond() {
                return true;
            }
            if deadline.left().is_none() {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }

    /// Waits, with no deadline, until `cond()` holds (a lock that is free,
    /// a queue with work). `wait` is the free-running way to wait a little
    /// before looking again (a futex or a condvar with a timeout).
    pub(crate) fn wait_forever(&self, what: &'static str, mut cond: impl FnMut() -> bool, mut wait: impl FnMut()) {
        if let Some(s) = self.sched_here() {
            s.block_until(None, what, cond);
            return;
        }
        while !cond() {
            wait();
        }
    }

    /// Starts a background thread that works for this simulation (a
    /// managed thread of the deterministic scheduler, if there is one).
    pub(crate) fn spawn(self: &Arc<Self>, name: &str, f: impl FnOnce(&Arc<Kernel>) + Send + 'static) {
        let k = self.clone();
        let tid = self.sched.as_ref().map_or(0, |s| s.register(name));
        let h = std::thread::Builder::new()
            .name(format!("ndisim-{name}"))
            .spawn(move || {
                if let Some(s) = &k.sched {
                    s.start(tid);
                }
                let _e = enter(&k);
                f(&k);
                if let Some(s) = &k.sched {
                    s.exit();
                }
            })
            .expect("spawn an ndisim thread");
        lock(&self.threads).push((h, tid));
    }

    /// Runs driver work `f` later at PASSIVE_LEVEL on the deferred-work
    /// thread (a pending NDIS completion).
    pub(crate) fn dpc_passive(&self, f: impl FnOnce() + Send + 'static, _what: &'static str) {
        self.dpc.push(Duration::ZERO, PASSIVE_LEVEL, f);
    }

    pub(crate) fn symbolize(&self, addr: usize) -> String {
        match self.image.get() {
            Some(i) if addr >= i.base && addr < i.base + i.size => {
                let rva = addr - i.base;
                match i.symbols.iter().rev().find(|s| s.rva <= rva) {
                    Some(s) => format!("{}+{:#x}", s.name, rva - s.rva),
                    None => format!("{}+{rva:#x}", i.name),
                }
            }
            _ => format!("{addr:#x}"),
        }
    }
}

/// The thread is working for a simulation until this drops.
pub(crate) struct Entered {
    prev: *const Kernel,
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Makes `k` the current thread's simulation.
pub(crate) fn enter(k: &Arc<Kernel>) -> Entered {
    let prev = CURRENT.with(|c| c.replace(Arc::as_ptr(k)));
    Entered { prev }
}

/// `enter`, from a call of the simulation's API (`Sim`, `Handle`,
/// `FileRef`, `IoToken`): a deterministic simulation refuses a thread its
/// scheduler does not run, which would wait in real time for threads
/// that never move meanwhile, and see the driver blamed for a pause or
/// an unbind that seems never to end.
pub(crate) fn enter_api(k: &Arc<Kernel>) -> Entered {
    if k.sched.as_ref().is_some_and(|s| s.foreign()) {
        panic!(
            "ndisim: a thread the deterministic scheduler does not run called into a deterministic simulation; only the thread that built it and the threads of Sim::run_actors may"
        );
    }
    enter(k)
}

/// The host's time since 1970, as
/// `SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()` gives
/// it (the same `CLOCK_REALTIME` read, 0 before 1970), without the
/// `SystemTime` arithmetic: `KeQuerySystemTimePrecise` is on the driver's
/// per-frame path.
fn host_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out parameter; CLOCK_REALTIME always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 || ts.tv_sec < 0 {
        return std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The current thread's simulation.
pub(crate) fn kernel() -> Option<&'static Kernel> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: `enter` stores a pointer to a `Kernel` in an `Arc` that the
    // simulation keeps alive until every thread that entered it has left
    // (its background threads are joined; API calls hold their own `Arc`).
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Records an internal error of ndisim (a bug of the emulator, not the
/// driver).
pub(crate) fn internal_error(what: String) {
    match kernel() {
        Some(k) => k.verifier.internal_error(what),
        None => eprintln!("ndisim: INTERNAL ERROR (no simulation): {what}"),
    }
}

/// A panic caught at an export boundary.
pub(crate) fn internal_panic(call: &str, payload: Box<dyn std::any::Any + Send>) {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    internal_error(format!("panic in the emulation of {call}: {msg}"));
}

// ---------------------------------------------------------------------------
// IRQL and held locks
// ---------------------------------------------------------------------------

pub(crate) fn irql() -> u8 {
    IRQL.with(|c| c.get())
}

pub(crate) fn set_irql(v: u8) -> u8 {
    IRQL.with(|c| c.replace(v))
}

pub(crate) fn tid() -> u32 {
    TID.with(|t| *t)
}

pub(crate) fn irql_name(l: u8) -> &'static str {
    match l {
        PASSIVE_LEVEL => "PASSIVE_LEVEL",
        APC_LEVEL => "APC_LEVEL",
        DISPATCH_LEVEL => "DISPATCH_LEVEL",
        _ => "DIRQL",
    }
}

/// Checks that the caller of `call` runs at most at `max`.
#[inline]
pub(crate) fn check_irql_max(call: &str, max: u8) {
    let l = irql();
    if l > max {
        Violation::new(
            Rule::Irql,
            call,
            format!("called at {}; the documentation allows at most {}", irql_name(l), irql_name(max)),
        )
        .report();
    }
}

/// Checks that the caller of `call` runs exactly at `level`.
#[inline]
pub(crate) fn check_irql_eq(call: &str, level: u8) {
    let l = irql();
    if l != level {
        Violation::new(
            Rule::Irql,
            call,
            format!("called at {}; the documentation requires {}", irql_name(l), irql_name(level)),
        )
        .report();
    }
}

/// Runs driver code `f` (a handler named `call`) at `level` on the
/// thread's driver stack (`stack`), then checks that it came back at the
/// same IRQL and holding no lock it took.
pub(crate) fn call_driver<R>(call: &'static str, level: u8, f: impl FnOnce() -> R) -> R {
    // NDIS's entry points into a protocol are its `Protocol*` handlers.
    let _ndis = call.starts_with("Protocol").then(crate::callback::NdisCallback::enter);
    let _slow = crate::slow::enter(call);
    match kernel() {
        Some(k) => {
            let run = || call_checked(call, level, || crate::stack::run_driver(k, call, f));
            match &k.preempt {
                Some(p) => p.around(run),
                None => run(),
            }
        }
        None => call_checked(call, level, f),
    }
}

/// Runs `f` at `level` with `call_driver`'s checks, on this thread's own
/// stack: for ndisim's deferred work, whose calls into the driver go
/// through `call_driver` themselves.
pub(crate) fn call_checked<R>(call: &str, level: u8, f: impl FnOnce() -> R) -> R {
    let prev = set_irql(level);
    let held = held_count();
    let r = f();
    let leaked = take_held_since(held);
    for h in &leaked {
        Violation::new(
            Rule::SpinLockImbalance,
            call,
            format!("returned still holding a {:?} lock; ndisim releases it to go on", h.kind),
        )
        .with_object(h.addr)
        .report();
        crate::sync::force_release(*h);
    }
    let now = irql();
    if now != level && leaked.is_empty() {
        Violation::new(
            Rule::Irql,
            call,
            format!("returned at {}; it was called at {}", irql_name(now), irql_name(level)),
        )
        .report();
    }
    set_irql(prev);
    r
}

/// Runs `f` on this thread at `level` without the checks (for ndisim's own
/// work that calls exports, e.g. raising before a DPC-level callback).
pub(crate) fn at_irql<R>(level: u8, f: impl FnOnce() -> R) -> R {
    let prev = set_irql(level);
    let r = f();
    set_irql(prev);
    r
}

/// Takes one from a count of refusals still to make: true if there was one.
fn take_one(n: &std::sync::atomic::AtomicU64) -> bool {
    use std::sync::atomic::Ordering::{AcqRel, Acquire};
    n.fetch_update(AcqRel, Acquire, |n| n.checked_sub(1)).is_ok()
}
