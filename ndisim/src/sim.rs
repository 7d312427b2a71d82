//! The library API: build a simulation around a driver image, drive NDIS
//! events and device I/O, and collect the verifier's report.

use crate::adapter::{AdapterKind, AdapterSpec, CompletionPolicy, Frame, Tap};
use crate::io::{self, Identity, IoResult, Request, Waiter};
use crate::kernel::{self, call_driver, Config, ImageInfo, Kernel, PASSIVE_LEVEL};
use crate::ndis::{self, Adapter, BindingState, InjectOpts, RestartSpec, SimError};
use crate::pe::{Image, LoadError};
use crate::pool::{PoolBlock, PoolStats};
use crate::verifier::{lock, Checksum, Rule, Violation};
use ndis_sys::*;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// An adapter of a simulation, by its position in the builder's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdapterId(pub usize);

/// Why a simulation did not start.
#[derive(Debug)]
pub enum StartError {
    NoDriver,
    Adapter(String),
    Load(LoadError),
    /// DriverEntry failed with this NTSTATUS.
    DriverEntry(NTSTATUS),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoDriver => write!(f, "no driver image given"),
            StartError::Adapter(e) => write!(f, "adapter: {e}"),
            StartError::Load(e) => write!(f, "{e}"),
            StartError::DriverEntry(s) => write!(f, "DriverEntry failed with {:#010x}", *s as u32),
        }
    }
}

impl std::error::Error for StartError {}

/// Builds a `Sim`.
#[derive(Debug, Clone)]
pub struct SimBuilder {
    driver: Option<PathBuf>,
    adapters: Vec<AdapterSpec>,
    watchdog: Duration,
    image_base: Option<usize>,
    checksum: Checksum,
    echo_dbgprint: bool,
    bind_during_registration: bool,
    service: String,
    deterministic: Option<u64>,
    low_resources: Option<(u32, u64)>,
    jitter: Option<(u32, u64)>,
    special_pool: bool,
    stack_budget: usize,
}

impl Default for SimBuilder {
    fn default() -> Self {
        SimBuilder {
            driver: None,
            adapters: Vec::new(),
            watchdog: Duration::from_secs(10),
            image_base: None,
            checksum: Checksum::Full,
            echo_dbgprint: std::env::var_os("NDISIM_DBGPRINT").is_some(),
            bind_during_registration: false,
            service: "RAWNIC".into(),
            deterministic: None,
            low_resources: None,
            jitter: None,
            special_pool: false,
            stack_budget: crate::stack::DEFAULT_BUDGET,
        }
    }
}

impl SimBuilder {
    /// The driver image (`.sys`); a linker map beside it (`.map`) is used
    /// for symbols.
    pub fn driver(mut self, p: impl AsRef<Path>) -> Self {
        self.driver = Some(p.as_ref().to_path_buf());
        self
    }

    /// Adds the adapter(s) of a spec string (`loopback`, `null`,
    /// `pair:A,B`, `tap:NAME`, each with `@key=value,...` options).
    ///
    /// # Panics
    /// On a malformed spec; use `adapter_spec` for parsed specs.
    pub fn adapter(mut self, spec: &str) -> Self {
        match AdapterSpec::parse(spec) {
            Ok(v) => self.adapters.extend(v),
            Err(e) => panic!("bad adapter spec: {e}"),
        }
        self
    }

    /// Adds a parsed adapter spec.
    pub fn adapter_spec(mut self, spec: AdapterSpec) -> Self {
        self.adapters.push(spec);
        self
    }

    /// How long a pended NDIS event may take before the verifier reports it.
    pub fn watchdog(mut self, d: Duration) -> Self {
        self.watchdog = d;
        self
    }

    /// Maps the image at this address (64 KiB aligned).
    pub fn image_base(mut self, base: usize) -> Self {
        self.image_base = Some(base);
        self
    }

    /// How much of in-flight NBLs the verifier checksums.
    pub fn checksum(mut self, c: Checksum) -> Self {
        self.checksum = c;
        self
    }

    /// Prints the driver's DbgPrint output to stderr as it comes.
    pub fn echo_dbgprint(mut self, on: bool) -> Self {
        self.echo_dbgprint = on;
        self
    }

    /// Binds the adapters from inside `NdisRegisterProtocolDriver` instead
    /// of after `DriverEntry` returns.
    pub fn bind_during_registration(mut self, on: bool) -> Self {
        self.bind_during_registration = on;
        self
    }

    /// Runs every simulated thread (adapters, DPCs, work items, the actors of
    /// `Sim::run_actors` and the thread that builds the simulation) under
    /// one scheduler seeded with `seed`: one thread runs at a time, and the
    /// scheduler switches only at ndisim's exports and at `Sim::step`, so
    /// the same seed replays the same interleaving. Time is virtual.
    pub fn deterministic(mut self, seed: u64) -> Self {
        self.deterministic = Some(seed);
        self
    }

    /// Free-running only: `per_mille` of the calls into ndisim's exports
    /// first stall their thread for up to 200 µs (picked by a generator
    /// seeded with `seed`), so other threads run in between the driver's
    /// steps and narrow races open wider; and a pause or restart returns as
    /// soon as the driver completed it, not once the work item that
    /// completed it has finished, so the next PnP event can come while it
    /// still runs, as NDIS may send it. Off by default.
    pub fn jitter(mut self, per_mille: u32, seed: u64) -> Self {
        self.jitter = (per_mille > 0).then_some((per_mille.min(1000), seed));
        self
    }

    /// Driver Verifier's low-resources simulation: `per_mille` of the
    /// driver's pool, NBL, MDL, work-item and IRP allocations fail, picked
    /// by a generator seeded with `seed` (so a run can be replayed).
    pub fn low_resources(mut self, per_mille: u32, seed: u64) -> Self {
        self.low_resources = (per_mille > 0).then_some((per_mille.min(1000), seed));
        self
    }

    /// Driver Verifier's special pool: every pool block on pages of its
    /// own, ending at a guard page, and freed blocks kept inaccessible for a
    /// while; an overrun or a use after free faults at the guilty
    /// instruction.
    pub fn special_pool(mut self, on: bool) -> Self {
        self.special_pool = on;
        self
    }

    /// How many bytes of its kernel stack the driver may use (default 8
    /// KiB of the 24 KiB stack; rule stack-budget). The driver runs on a
    /// real 24 KiB stack whatever the budget: past its end is a bug check.
    pub fn stack_budget(mut self, bytes: usize) -> Self {
        self.stack_budget = bytes;
        self
    }

    /// Loads the driver, runs `DriverEntry`, binds every adapter, restarts
    /// them to Running and indicates BindsComplete.
    pub fn start(self) -> Result<Sim, StartError> {
        let path = self.driver.clone().ok_or(StartError::NoDriver)?;
        kernel::install_fault_handler();
        if self.deterministic.is_some() && self.adapters.iter().any(|a| matches!(a.kind, AdapterKind::Tap(_))) {
            return Err(StartError::Adapter(
                "a TAP adapter cannot run in a deterministic simulation (a real network is not replayable)".into(),
            ));
        }
        let k = Kernel::new(
            Config {
                watchdog: self.watchdog,
                echo_dbgprint: self.echo_dbgprint,
                deterministic: self.deterministic,
                low_resources: self.low_resources,
                stack_budget: self.stack_budget,
                jitter: self.jitter,
            },
            self.checksum,
        );
        k.pool.set_special(self.special_pool);
        let _e = kernel::enter(&k);
        // Adapters.
        let mut names: Vec<String> = Vec::new();
        let mut built = Vec::new();
        let mut counts = std::collections::HashMap::new();
        for (i, spec) in self.adapters.iter().enumerate() {
            let name = spec.name.clone().unwrap_or_else(|| {
                let base = match spec.kind {
                    AdapterKind::Loopback => "loop",
                    AdapterKind::Null => "null",
                    AdapterKind::Pair(_) => "pair",
                    AdapterKind::Tap(_) => "tap",
                };
                let n = counts.entry(base).or_insert(0);
                *n += 1;
                format!("{base}{}", *n - 1)
            });
            if names.contains(&name) {
                return Err(StartError::Adapter(format!("two adapters are named {name:?}")));
            }
            let tap = match &spec.kind {
                AdapterKind::Tap(ifname) => Some(Tap::open(ifname).map_err(StartError::Adapter)?),
                _ => None,
            };
            names.push(name.clone());
            built.push(Adapter::new(i, name, spec.clone(), tap));
        }
        for (i, a) in built.iter().enumerate() {
            if let AdapterKind::Pair(peer) = &a.spec.kind {
                let j = names
                    .iter()
                    .position(|n| n == peer)
                    .ok_or_else(|| StartError::Adapter(format!("pair peer {peer:?} of {} is missing", a.name)))?;
                let _ = a.peer.set(j);
                let _ = i;
            }
        }
        let adapters: Vec<Arc<Adapter>> = built.into_iter().map(Arc::new).collect();
        let _ = k.ndis.adapters.set(adapters.clone());
        k.ndis.bind_during_registration.store(self.bind_during_registration, Ordering::Release);
        // Threads: deferred NDIS work, system workers, receive threads.
        k.spawn("dpc", |k| crate::jobs::Jobs::serve(k, |k| &k.dpc));
        k.spawn("worker", |k| crate::jobs::Jobs::serve(k, |k| &k.io.workers));
        for a in &adapters {
            let idx = a.idx;
            // Every adapter has one: frames from the wire (pair, TAP) and
            // NDIS's loopback of sends (any adapter).
            k.spawn(&format!("rx{idx}"), move |k| rx_thread(k, idx));
            if a.tap.is_some() {
                k.spawn(&format!("tap{idx}"), move |k| tap_thread(k, idx));
            }
        }
        // The image.
        let table = crate::exports::table();
        let image = match Image::load(&path, &|dll, name| crate::exports::resolve(&table, dll, name), self.image_base) {
            Ok(i) => i,
            Err(e) => {
                stop_threads(&k);
                return Err(StartError::Load(e));
            }
        };
        let code = image
            .sections
            .iter()
            .filter(|s| s.executable && !s.discardable)
            .map(|s| (image.base + s.rva, image.base + s.rva + s.size))
            .collect();
        let _ = k.image.set(ImageInfo {
            name: image.name.clone(),
            base: image.base,
            size: image.size,
            code,
            symbols: image.symbols.clone(),
        });
        let mut driver = io::driver_object(&self.service, image.base, image.size);
        *lock(&k.io.driver) = &mut driver.obj as *mut DRIVER_OBJECT as usize;
        let mut sim = Sim { k: k.clone(), image: Some(image), driver, unloaded: false, path };
        // DriverEntry.
        let entry = sim.image.as_ref().map(|i| i.va(i.entry_rva)).unwrap_or(0);
        // SAFETY: the image's entry point is DriverEntry (DRIVER_INITIALIZE).
        let entry: unsafe extern "win64" fn(*mut DRIVER_OBJECT, *mut UNICODE_STRING) -> NTSTATUS =
            unsafe { std::mem::transmute(entry) };
        let dobj: *mut DRIVER_OBJECT = &mut sim.driver.obj;
        let reg: *mut UNICODE_STRING = &mut sim.driver.registry;
        let st = call_driver("DriverEntry", PASSIVE_LEVEL, || {
            // SAFETY: a real driver object and registry path.
            unsafe { entry(dobj, reg) }
        });
        if let Some(img) = &sim.image {
            if let Err(e) = img.discard_init() {
                kernel::internal_error(format!("discarding INIT: {e}"));
            }
        }
        if st < 0 {
            // The kernel unloads a driver whose DriverEntry failed without
            // calling DriverUnload; what it left behind is leaked.
            sim.finish(false);
            return Err(StartError::DriverEntry(st));
        }
        sim.k.io.after_driver_entry();
        sim.k.arm_low_resources();
        if sim.k.ndis.protocol().is_some() && !self.bind_during_registration {
            ndis::bind_all_and_start(&sim.k);
        }
        drop(_e);
        Ok(sim)
    }
}

fn rx_thread(k: &Arc<Kernel>, idx: usize) {
    let a = k.ndis.adapter(idx).clone();
    loop {
        if k.sched_here().is_some() {
            // Deterministic: wait (letting others run) for a frame or the
            // stop, then take it as below.
            k.wait_forever(
                "frames to indicate",
                || a.rx.stop.load(Ordering::Acquire) || !lock(&a.rx.q).is_empty(),
                || {},
            );
        }
        let f = {
            let mut q = lock(&a.rx.q);
            loop {
                if let Some(f) = q.pop_front() {
                    *lock(&a.rx.busy) += 1;
                    break Some(f);
                }
                if a.rx.stop.load(Ordering::Acquire) {
                    break None;
                }
                q = a.rx.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some((f, loopback)) = f else { return };
        // What came off the wire (or back from the adapter's own send), as
        // this adapter indicates it.
        let f = f.received(a.vlan());
        let o = InjectOpts { tci: f.tci, loopback, ..InjectOpts::default() };
        let _ = ndis::indicate(k, &a, &[&f.data], &o);
        let mut b = lock(&a.rx.busy);
        *b -= 1;
        a.rx.idle.notify_all();
    }
}

fn tap_thread(k: &Arc<Kernel>, idx: usize) {
    let a = k.ndis.adapter(idx).clone();
    let Some(t) = &a.tap else { return };
    let mut buf = vec![0u8; 65536];
    while !a.rx.stop.load(Ordering::Acquire) {
        if let Some(n) = t.read(&mut buf, 50) {
            a.rx.push(Frame { data: buf[..n].to_vec(), tci: None });
        }
    }
}

fn stop_threads(k: &Arc<Kernel>) {
    k.dpc.stop();
    k.io.workers.stop();
    for a in k.ndis.adapters() {
        a.rx.stop.store(true, Ordering::Release);
        a.rx.cv.notify_all();
    }
    let hs: Vec<_> = lock(&k.threads).drain(..).collect();
    if let Some(s) = k.sched_here() {
        // Let them run to their end before joining them.
        let tids: Vec<u32> = hs.iter().map(|(_, t)| *t).collect();
        k.wait_forever("the simulation's threads to stop", || tids.iter().all(|&t| s.is_finished(t)), || {});
    }
    for (h, _) in hs {
        let _ = h.join();
    }
}

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
    /// `ProtocolReceiveNetBufferLists` calls.
    pub receive_indications: u64,
    /// Receive NBLs indicated and not yet returned, and the most at once.
    pub receives_held: u64,
    pub receives_held_peak: u64,
}

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
    /// A builder.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    fn enter(&self) -> kernel::Entered {
        kernel::enter(&self.k)
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

    fn adapter(&self, a: AdapterId) -> Result<Arc<Adapter>, SimError> {
        self.k.ndis.adapters().get(a.0).cloned().ok_or_else(|| SimError::Other(format!("no adapter {}", a.0)))
    }

    /// The adapter's NDIS name (`\\DEVICE\\{GUID}`), which handles open.
    pub fn adapter_ndis_name(&self, a: AdapterId) -> Option<String> {
        self.k.ndis.adapters().get(a.0).map(|a| String::from_utf16_lossy(&a.ndis_name[..a.ndis_name.len() - 1]))
    }

    /// The adapter's current MAC address.
    pub fn adapter_mac(&self, a: AdapterId) -> Option<[u8; 6]> {
        self.k.ndis.adapters().get(a.0).map(|a| lock(&a.model).mac)
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

    /// Allocation failures the low-resources simulation injected so far.
    pub fn alloc_failures(&self) -> u64 {
        self.k.alloc_failures()
    }

    /// In a deterministic simulation, the hash of every scheduling decision
    /// so far and how many there were: the same seed gives the same hash.
    pub fn trace(&self) -> Option<(u64, u64)> {
        self.k.sched.as_ref().map(|s| s.trace())
    }

    /// The adapter named `name`.
    pub fn adapter_id(&self, name: &str) -> Option<AdapterId> {
        self.k.ndis.adapters().iter().position(|a| a.name == name).map(AdapterId)
    }

    /// Names of the adapters, in order.
    pub fn adapter_names(&self) -> Vec<String> {
        self.k.ndis.adapters().iter().map(|a| a.name.clone()).collect()
    }

    /// The protocol name the driver registered.
    pub fn protocol_name(&self) -> Option<String> {
        self.k.ndis.protocol().map(|p| p.name.clone())
    }

    /// The binding's state as NDIS sees it.
    pub fn binding_state(&self, a: AdapterId) -> BindingState {
        self.k
            .ndis
            .adapters()
            .get(a.0)
            .and_then(|a| lock(&a.binding).as_ref().map(|b| b.state()))
            .unwrap_or(BindingState::Unbound)
    }

    /// Whether NDIS indicated BindsComplete.
    pub fn binds_completed(&self) -> bool {
        self.k.ndis.binds_completed.load(Ordering::Acquire)
    }

    pub fn pause(&self, a: AdapterId) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::pause(&self.k, &self.adapter(a)?)
    }

    pub fn restart(&self, a: AdapterId, spec: &RestartSpec) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::restart(&self.k, &self.adapter(a)?, spec)
    }

    /// Pauses (if Running) and unbinds.
    pub fn unbind(&self, a: AdapterId) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::unbind(&self.k, &self.adapter(a)?)
    }

    /// Binds (the binding is then Paused; `restart` makes it Running).
    pub fn bind(&self, a: AdapterId) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::bind(&self.k, &self.adapter(a)?)
    }

    /// Link up or down: sets the model and indicates `NDIS_STATUS_LINK_STATE`.
    pub fn link(&self, a: AdapterId, up: bool) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::link(&self.k, &*self.adapter(a)?, up)
    }

    /// `NetEventSetPower` with a `NET_DEVICE_POWER_STATE` (1 = D0, 4 = D3).
    pub fn set_power(&self, a: AdapterId, state: u32) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::set_power(&self.k, &self.adapter(a)?, state)
    }

    /// `ProtocolUninstall`, as NDIS calls it before the protocol is
    /// uninstalled (the bindings stay until they are unbound).
    pub fn uninstall(&self) -> Result<(), SimError> {
        let _e = self.enter();
        crate::ndis::uninstall(&self.k)
    }

    /// Indicates `frames` as received on `a`, on this thread.
    pub fn inject(&self, a: AdapterId, frames: &[&[u8]], opts: &InjectOpts) -> Result<usize, SimError> {
        let _e = self.enter();
        ndis::indicate(&self.k, &*self.adapter(a)?, frames, opts)
    }

    /// Waits until the adapter's receive thread indicated everything queued
    /// (loopback and pair frames).
    pub fn settle(&self, a: AdapterId) -> bool {
        match self.adapter(a) {
            Ok(a) => a.rx.wait_idle(self.k.config.watchdog),
            Err(_) => false,
        }
    }

    /// Sets how the adapter completes sends.
    pub fn set_completion(&self, a: AdapterId, p: CompletionPolicy) -> Result<(), SimError> {
        let ad = self.adapter(a)?;
        *lock(&ad.policy) = p;
        Ok(())
    }

    /// How the adapter completes sends now.
    pub fn completion_policy(&self, a: AdapterId) -> Option<CompletionPolicy> {
        self.adapter(a).ok().map(|ad| *lock(&ad.policy))
    }

    /// Holds send completions until `release_sends`.
    pub fn hold_sends(&self, a: AdapterId) -> Result<(), SimError> {
        self.set_completion(a, CompletionPolicy::Held)
    }

    /// Completes held sends (all, or the first `n`), on this thread at
    /// DISPATCH_LEVEL. Returns how many.
    pub fn release_sends(&self, a: AdapterId, n: Option<usize>) -> Result<usize, SimError> {
        let _e = self.enter();
        let ad = self.adapter(a)?;
        Ok(ndis::release_sends(&self.k, &ad, n))
    }

    /// Sends the adapter holds back now.
    pub fn held_sends(&self, a: AdapterId) -> usize {
        self.adapter(a).map(|a| lock(&a.held).len()).unwrap_or(0)
    }

    /// Pends every OID request until `release_oids`.
    pub fn hold_oids(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.oid_hold.store(true, Ordering::Release);
        Ok(())
    }

    /// Completes held OID requests; returns how many.
    pub fn release_oids(&self, a: AdapterId) -> Result<usize, SimError> {
        let _e = self.enter();
        let ad = self.adapter(a)?;
        Ok(ndis::release_oids(&self.k, &ad))
    }

    /// Every OID request the driver made on `a`, in order: (request type,
    /// OID). `clear` empties the log after reading it.
    pub fn oid_log(&self, a: AdapterId, clear: bool) -> Vec<(u32, u32)> {
        self.oid_buffers(a, clear).into_iter().map(|(kind, oid, _, _)| (kind, oid)).collect()
    }

    /// Every PnP event delivered to `a`'s binding, in order: (event code,
    /// the pause reason for a pause, the device power state for a set
    /// power, else 0). `clear` empties the log after reading it.
    pub fn pnp_log(&self, a: AdapterId, clear: bool) -> Vec<(u32, u32)> {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut log = ad.pnp_log.lock().unwrap_or_else(|e| e.into_inner());
        if clear {
            std::mem::take(&mut *log)
        } else {
            log.clone()
        }
    }

    /// As `oid_log`, with each request's InformationBufferLength and whether
    /// its InformationBuffer was NULL: (request type, OID, length, NULL).
    pub fn oid_buffers(&self, a: AdapterId, clear: bool) -> Vec<(u32, u32, u32, bool)> {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut log = ad.oid_log.lock().unwrap_or_else(|e| e.into_inner());
        if clear {
            std::mem::take(&mut *log)
        } else {
            log.clone()
        }
    }

    /// Makes `a` answer `oid` with `NDIS_STATUS_FAILURE` (`fail`), or
    /// normally again.
    pub fn fail_oid(&self, a: AdapterId, oid: u32, fail: bool) {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut list = ad.failing_oids.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&o| o != oid);
        if fail {
            list.push(oid);
        }
    }

    /// Frames the driver sent on `a` (when capture is on), in order, as the
    /// adapter took them: `tci` is the NBL's 802.1Q info when the adapter
    /// advertises 802.1Q, else `None`; `Frame::wire` is the frame on the
    /// wire.
    pub fn captured(&self, a: AdapterId) -> Vec<Frame> {
        self.adapter(a).map(|a| lock(&a.captured).clone()).unwrap_or_default()
    }

    /// Turns the adapter's 802.1Q in hardware on or off (`vlan=`), at once:
    /// its sends and receives follow now; the driver learns of it from the
    /// MAC options of the next bind or restart (or `OID_GEN_MAC_OPTIONS`).
    pub fn set_vlan(&self, a: AdapterId, on: bool) {
        if let Ok(a) = self.adapter(a) {
            a.vlan.store(on, Ordering::Release);
        }
    }

    /// Turns capturing of sent frames on or off.
    pub fn set_capture(&self, a: AdapterId, on: bool) {
        if let Ok(a) = self.adapter(a) {
            a.capture.store(on, Ordering::Release);
        }
    }

    /// Frames the adapter indicated to the driver so far.
    pub fn received_frames(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.rx_frames.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Frames the driver sent on the adapter so far.
    pub fn sent_frames(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.tx_frames.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Frames the adapter failed to put on its wire (a failed TAP write),
    /// as `OID_GEN_XMIT_ERROR` reports them.
    pub fn transmit_errors(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.tx_errors.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Send NBLs whose 802.1Q info the adapter ignored because it does not
    /// advertise 802.1Q (`vlan=off`).
    pub fn tags_ignored(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.tx_tags_ignored.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// NBLs and OIDs outstanding on the adapter's binding.
    pub fn outstanding(&self, a: AdapterId) -> Outstanding {
        self.adapter(a)
            .map(|a| {
                let (s, r, o) = ndis::outstanding(&a);
                Outstanding { sends_in_flight: s, receives_retained: r, oids_pending: o }
            })
            .unwrap_or_default()
    }

    /// The model's link state, packet filter and multicast list.
    pub fn adapter_filter(&self, a: AdapterId) -> Option<(bool, u32, Vec<[u8; 6]>)> {
        self.adapter(a).ok().map(|a| {
            let m = lock(&a.model);
            (m.link_up, m.packet_filter, m.multicast.clone())
        })
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

    /// Device names and symbolic links the driver created.
    pub fn devices(&self) -> (Vec<String>, Vec<String>) {
        (self.k.io.device_names(), self.k.io.link_names())
    }

    /// Whether `who` may open `device` for `desired` by its DACL (None
    /// when the driver set no DACL).
    pub fn device_access(&self, device: &str, who: Identity, desired: u32) -> Option<bool> {
        io::check_access(&self.k, device, who, desired)
    }

    /// The DACL set on `device`, as text.
    pub fn device_dacl(&self, device: &str) -> Option<String> {
        self.k.io.dacl_of(device).map(|d| io::sid_list(&d))
    }

    /// Replaces the DACL of `device` (`None`: a NULL DACL, open to all), as
    /// an administrator could after the driver set it; false when there is
    /// no such device.
    pub fn set_device_dacl(&self, device: &str, dacl: Option<Vec<io::Ace>>) -> bool {
        self.k.io.set_dacl(device, dacl)
    }

    /// Opens the driver's control device (`\\.\RawNic`) as an
    /// administrator with read and write access.
    pub fn open(&self) -> Result<Handle, NTSTATUS> {
        self.open_path(proto::USER_PATH, 0xC000_0000, Identity::Admin)
    }

    /// Opens `path` as `who` with `desired` access (IRP_MJ_CREATE after the
    /// DACL check).
    pub fn open_path(&self, path: &str, desired: u32, who: Identity) -> Result<Handle, NTSTATUS> {
        let _e = self.enter();
        let file = io::create(&self.k, path, desired, who)?;
        Ok(Handle { k: self.k.clone(), file, closed: false })
    }

    /// Unloads: closes open handles, waits for work items, calls
    /// `DriverUnload`, checks for leaks and returns the report.
    pub fn unload(mut self) -> Report {
        self.finish(true)
    }

    fn finish(&mut self, call_unload: bool) -> Report {
        if self.unloaded {
            return Report::default();
        }
        self.unloaded = true;
        let k = self.k.clone();
        let e = kernel::enter(&k);
        for f in io::open_files(&k) {
            io::close(&k, f, true);
        }
        let wd = k.config.watchdog;
        k.io.workers.drain(wd);
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
                        kernel::report_violation(Violation {
                            rule: Rule::ResourceLeak,
                            call: "DriverUnload".into(),
                            binding: None,
                            object: None,
                            detail: "the driver has no DriverUnload and its protocol stays registered".into(),
                        });
                    }
                }
            }
        }
        if k.io.workers.pending() > 0 && !k.io.workers.drain(wd) {
            kernel::report_violation(Violation {
                rule: Rule::ResourceLeak,
                call: "DriverUnload".into(),
                binding: None,
                object: None,
                detail: "work items were still queued or running after DriverUnload".into(),
            });
        }
        k.dpc.drain(wd);
        if k.ndis.protocol().is_some() {
            kernel::report_violation(Violation {
                rule: Rule::ResourceLeak,
                call: "DriverUnload".into(),
                binding: None,
                object: None,
                detail: "the protocol was not deregistered (NdisDeregisterProtocolDriver)".into(),
            });
        }
        ndis::leak_check(&k);
        io::leak_check(&k);
        let leaked = k.pool.live();
        for b in &leaked {
            kernel::report_violation(Violation {
                rule: Rule::PoolLeak,
                call: "DriverUnload".into(),
                binding: None,
                object: Some(b.addr),
                detail: format!("{} bytes of pool with tag {:?} were never freed", b.size, crate::pool::tag_str(b.tag)),
            });
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
        };
        {
            let _e = kernel::enter(&k);
            ndis::free_everything(&k);
            io::free_everything(&k);
            k.pool.release_quarantine();
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

/// An open handle to a device of the driver (a file object).
pub struct Handle {
    k: Arc<Kernel>,
    file: usize,
    closed: bool,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({:#x})", self.file)
    }
}

/// A request in flight: wait for it, or cancel it.
pub struct IoToken {
    k: Arc<Kernel>,
    waiter: Arc<Waiter>,
    irp: usize,
}

impl fmt::Debug for IoToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IoToken(irp {:#x})", self.irp)
    }
}

impl IoToken {
    /// Waits for the completion (at most the watchdog time; `None` then).
    pub fn wait(&self) -> Option<IoResult> {
        self.waiter.wait(Some(self.k.config.watchdog))
    }

    /// Waits at most `d` for the completion (`None` if it did not come).
    pub fn wait_for(&self, d: Duration) -> Option<IoResult> {
        self.waiter.wait(Some(d))
    }

    /// The result, if it completed.
    pub fn try_result(&self) -> Option<IoResult> {
        self.waiter.try_result()
    }

    /// `IoCancelIrp`; true when the IRP had a cancel routine.
    pub fn cancel(&self) -> bool {
        let _e = kernel::enter(&self.k);
        io::cancel_irp(&self.k, self.irp)
    }

    /// The IRP's address.
    pub fn irp(&self) -> usize {
        self.irp
    }
}

impl Handle {
    fn submit(&self, req: Request<'_>) -> Result<IoToken, NTSTATUS> {
        let _e = kernel::enter(&self.k);
        let w = Waiter::new(None);
        let irp = io::request(&self.k, self.file, req, w.clone())?;
        Ok(IoToken { k: self.k.clone(), waiter: w, irp })
    }

    fn sync(&self, req: Request<'_>) -> IoResult {
        match self.submit(req) {
            Ok(t) => t.waiter.wait_take(Some(self.k.config.watchdog)).unwrap_or(IoResult {
                status: STATUS_PENDING,
                information: 0,
                data: Vec::new(),
            }),
            Err(s) => IoResult { status: s, information: 0, data: Vec::new() },
        }
    }

    /// DeviceIoControl, waiting for the completion.
    pub fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> IoResult {
        self.sync(Request::Ioctl { code, input, out_len })
    }

    /// DeviceIoControl without waiting.
    pub fn ioctl_async(&self, code: u32, input: &[u8], out_len: usize) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Ioctl { code, input, out_len })
    }

    pub fn read(&self, len: usize) -> IoResult {
        self.sync(Request::Read(len))
    }

    pub fn read_async(&self, len: usize) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Read(len))
    }

    pub fn write(&self, data: &[u8]) -> IoResult {
        self.sync(Request::Write(data))
    }

    pub fn write_async(&self, data: &[u8]) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Write(data))
    }

    /// CloseHandle: IRP_MJ_CLEANUP, then IRP_MJ_CLOSE once its IRPs are
    /// done.
    pub fn close(mut self) {
        self.do_close(false);
    }

    /// Closes as a dying process does: cancels outstanding IRPs first.
    pub fn abandon(mut self) {
        self.do_close(true);
    }

    fn do_close(&mut self, cancel: bool) {
        if !self.closed {
            self.closed = true;
            let _e = kernel::enter(&self.k);
            io::close(&self.k, self.file, cancel);
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.do_close(true);
    }
}
