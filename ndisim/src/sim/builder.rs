//! `SimBuilder`: the options of a simulation, and `start`, which loads the
//! driver image, runs `DriverEntry` and binds and starts every adapter.

use super::threads::{rx_thread, stop_threads, tap_thread};
use super::{Report, Sim};
use crate::adapter::{AdapterKind, AdapterSpec, Tap};
use crate::io;
use crate::kernel::{self, Config, ImageInfo, Kernel, PASSIVE_LEVEL, call_driver};
use crate::ndis::{self, Adapter};
use crate::pe::{Image, LoadError};
use crate::verifier::{Checksum, lock};
use ndis_sys::*;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why a simulation did not start.
#[derive(Debug)]
pub enum StartError {
    NoDriver,
    Adapter(String),
    Load(LoadError),
    /// DriverEntry failed with this NTSTATUS; the report says what the
    /// failed load broke or left behind (the kernel frees nothing for it).
    DriverEntry(NTSTATUS, Box<Report>),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoDriver => write!(f, "no driver image given"),
            StartError::Adapter(e) => write!(f, "adapter: {e}"),
            StartError::Load(e) => write!(f, "{e}"),
            StartError::DriverEntry(s, r) => write!(
                f,
                "DriverEntry failed with {:#010x} ({} violation(s), {} pool block(s) left)",
                *s as u32,
                r.violations.len(),
                r.leaked_pool.len()
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// Emulated processors unless `SimBuilder::cpus` says otherwise.
pub const DEFAULT_CPUS: usize = 2;

/// Builds a `Sim`.
#[derive(Debug, Clone)]
pub struct SimBuilder {
    driver: Option<PathBuf>,
    adapters: Vec<AdapterSpec>,
    watchdog: Duration,
    image_base: Option<usize>,
    checksum: Checksum,
    echo_dbgprint: bool,
    forbidden_debug: Vec<String>,
    bind_during_registration: bool,
    registration: ndis::RegistrationSpec,
    defer_binds: bool,
    service: String,
    deterministic: Option<u64>,
    strategy: crate::sched::Strategy,
    script: Vec<crate::sched::Deviation>,
    low_resources: Option<(u32, u64)>,
    low_resources_after_binds: bool,
    fail_allocations: (u64, u64),
    jitter: Option<(u32, u64)>,
    preempt: Option<(u32, u64)>,
    slow: Option<crate::slow::Slow>,
    prompt_pnp: bool,
    points_after: bool,
    special_pool: bool,
    count_calls: bool,
    garbage: u8,
    record_outputs: bool,
    stack_budget: usize,
    cpus: usize,
    ndis_version: (u8, u8),
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
            forbidden_debug: Vec::new(),
            bind_during_registration: false,
            registration: ndis::RegistrationSpec::default(),
            defer_binds: false,
            service: "RAWNIC".into(),
            deterministic: None,
            strategy: crate::sched::Strategy::Uniform,
            script: Vec::new(),
            low_resources: None,
            low_resources_after_binds: false,
            fail_allocations: (0, 0),
            jitter: None,
            preempt: None,
            slow: None,
            prompt_pnp: false,
            points_after: false,
            special_pool: false,
            count_calls: false,
            garbage: 0,
            record_outputs: false,
            stack_budget: crate::stack::DEFAULT_BUDGET,
            cpus: DEFAULT_CPUS,
            ndis_version: ndis::DEFAULT_NDIS_VERSION,
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

    /// Makes each line of the driver's debug output that contains one of
    /// `texts` a violation (rule `forbidden-debug-line`), checked as the
    /// line is printed: for lines a driver prints only when something it
    /// guards against happened (rawnic.sys's `safety net: `).
    pub fn forbid_debug_lines(mut self, texts: &[&str]) -> Self {
        self.forbidden_debug.extend(texts.iter().map(|t| t.to_string()));
        self
    }

    /// Binds the adapters from inside `NdisRegisterProtocolDriver` instead
    /// of after `DriverEntry` returns.
    pub fn bind_during_registration(mut self, on: bool) -> Self {
        self.bind_during_registration = on;
        self
    }

    /// At `NdisRegisterProtocolDriver`, a user opens the device first (as
    /// an administrator, as another thread could at any time once the
    /// device lets opens in); `Sim::open_in_registration` tells what that
    /// open got. The file stays open until the simulation ends.
    pub fn open_during_registration(mut self, on: bool) -> Self {
        self.registration.open_first = on;
        self
    }

    /// `NdisRegisterProtocolDriver` fails with `status` (as when NDIS lacks
    /// resources), after checking the characteristics.
    pub fn refuse_registration(mut self, status: NDIS_STATUS) -> Self {
        self.registration.refuse = Some(status);
        self
    }

    /// Leaves every adapter unbound after `DriverEntry`, as at boot, when
    /// NDIS binds a protocol some time after it registered and user mode
    /// may already have opened its device: `Sim::bind_all` binds them and
    /// indicates BindsComplete later. (With `bind_during_registration` the
    /// adapters are bound inside the registration regardless.)
    pub fn defer_binds(mut self, on: bool) -> Self {
        self.defer_binds = on;
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

    /// With `deterministic`: how the scheduler picks the next thread
    /// (uniformly by default; `Strategy::Priorities` is PCT, see
    /// `sched`). Part of what a seed replays.
    pub fn strategy(mut self, strategy: crate::sched::Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// With `deterministic`: the systematic scheduler
    /// (`Strategy::Bounded`), its default picks changed at the switches
    /// `script` names. `Report::sched_points` then says how many
    /// alternatives each switch had, for the next deviations to try.
    pub fn deviations(mut self, script: Vec<crate::sched::Deviation>) -> Self {
        self.strategy = crate::sched::Strategy::Bounded;
        self.script = script;
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

    /// Free-running only: `per_second` times a second, a thread that is
    /// inside a call into the driver at that moment is stalled for 5 to
    /// 300 µs (picked by a generator seeded with `seed`) if it is
    /// executing the driver's own instructions, wherever it is in them:
    /// a window between two of the driver's instructions opens as it does
    /// when a CPU is held up (an interrupt; in a virtual machine, the
    /// hypervisor descheduling it). See `preempt.rs`. Off by default.
    pub fn preempt(mut self, per_second: u32, seed: u64) -> Self {
        self.preempt = (per_second > 0).then_some((per_second.min(100_000), seed));
        self
    }

    /// While a thread runs inside one of the handlers `slow` aims at
    /// (`ndisim::slow::HANDLERS`), some of its calls into ndisim stall it
    /// first, so other threads run into the handler's middle: free-running
    /// a real sleep, deterministic one in virtual time (see `slow.rs`).
    /// Off by default.
    pub fn slow_handlers(mut self, slow: crate::slow::Slow) -> Self {
        self.slow = (slow.mask != 0 && slow.per_mille > 0).then_some(slow);
        self
    }

    /// A pause or restart returns (and the next PnP event may come) as soon
    /// as the driver completed it, while the work item that completed it
    /// may still run, as NDIS may send it; by default ndisim lets that work
    /// item finish first, so a test's next step finds the driver settled.
    /// `jitter` implies it; a deterministic simulation can have it too.
    pub fn prompt_pnp(mut self, on: bool) -> Self {
        self.prompt_pnp = on;
        self
    }

    /// Makes every export a scheduling point after its body as well as at
    /// its entry: the deterministic scheduler may switch threads (and
    /// free-running jitter stall one) between a call's return and the
    /// driver's next instruction, where a thread that has just completed
    /// an IRP, returned NBLs or let a lock go can be overtaken by the
    /// receiver of what it handed over. Off by default: each seed keeps
    /// the interleaving it had, and a deterministic run switches about
    /// twice as often with it.
    pub fn points_after_exports(mut self, on: bool) -> Self {
        self.points_after = on;
        self
    }

    /// Emulated processors: this many threads run deferred NDIS work (DPC
    /// level completions, pending opens and closes) and this many system
    /// worker threads run work items, so two of the driver's work items or
    /// two completions can run at once, as on a multi-processor Windows
    /// machine. 2 by default; 1 serializes them (a laxer model).
    pub fn cpus(mut self, n: usize) -> Self {
        self.cpus = n.clamp(1, 8);
        self
    }

    /// Driver Verifier's low-resources simulation: `per_mille` of the
    /// driver's pool, NBL, MDL, work-item and IRP allocations fail, picked
    /// by a generator seeded with `seed` (so a run can be replayed).
    pub fn low_resources(mut self, per_mille: u32, seed: u64) -> Self {
        self.low_resources = (per_mille > 0).then_some((per_mille.min(1000), seed));
        self
    }

    /// With `low_resources`: allocations start failing only once the
    /// adapters present at the start are bound and running (memory that
    /// runs short after boot), not already in their binds. Binds later in
    /// the run (a `bind`, `bind_all` with `defer_binds`) fail as any
    /// allocation does.
    pub fn low_resources_after_binds(mut self, on: bool) -> Self {
        self.low_resources_after_binds = on;
        self
    }

    /// Fails the `n`th allocation of the run (1-based; 0, the default,
    /// fails none), counted from before `DriverEntry` over every call that
    /// can fail for want of memory: pool, NBL and NET_BUFFER pools and
    /// their NBLs, MDLs, mappings, work items, the I/O manager's IRPs for
    /// the user's requests, and also `IoCreateDevice`,
    /// `IoCreateSymbolicLink` and `NdisRegisterProtocolDriver`, which the
    /// low-resources simulation spares but Windows can fail when memory
    /// is short. A sweep over `n` (the systematic form of a low-resources
    /// run, as Linux's fail-nth) visits every allocation failure of a
    /// scenario once; `Sim::allocations_counted` says how many there were
    /// and `Sim::allocations_refused` how many it refused. Each refusal
    /// counts among `Sim::alloc_failures`.
    pub fn fail_nth_allocation(self, n: u64) -> Self {
        self.fail_allocations_from(n, 1)
    }

    /// As `fail_nth_allocation(n)`, refusing `count` allocations in a row
    /// from the `n`th (a shortage that lasts a while: retries in it fail
    /// too), until `Sim::end_allocation_refusals`.
    pub fn fail_allocations_from(mut self, n: u64, count: u64) -> Self {
        self.fail_allocations = (n, count);
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

    /// Other garbage where the driver has not written: fresh pool blocks,
    /// a fresh NBL's and NET_BUFFER's `ProtocolReserved` words, a fresh
    /// NBL's context data (`NET_BUFFER_LIST_CONTEXT`) and the data buffer
    /// of an NBL of a pool with a `DataSize` are filled with 0xC5 ^ `g`
    /// (no page promises any of them zeroed), the output part of a
    /// buffered request's system buffer with 0xD5 ^ `g`, and the driver's
    /// stacks painted with "DNASTACK" xor'ed with `g` in every byte (0, the
    /// default, keeps those). A deterministic run of a seed with another `g` must give
    /// its callers the same (`record_outputs`, `first_difference`): a
    /// difference is memory the driver never wrote reaching user mode, or
    /// steering what the driver does.
    pub fn garbage(mut self, g: u8) -> Self {
        self.garbage = g;
        self
    }

    /// Counts the calls the driver makes inside each handler from the start
    /// (`Sim::count_calls`, `Sim::calls_made_in`).
    pub fn count_calls(mut self, on: bool) -> Self {
        self.count_calls = on;
        self
    }

    /// Keeps what every IRP gives its caller (`Sim::outputs`): its status,
    /// `Information` and bytes.
    pub fn record_outputs(mut self, on: bool) -> Self {
        self.record_outputs = on;
        self
    }

    /// How many bytes of its kernel stack the driver may use (default 8
    /// KiB of the 24 KiB stack; rule stack-budget). The driver runs on a
    /// real 24 KiB stack whatever the budget: past its end is a bug check.
    pub fn stack_budget(mut self, bytes: usize) -> Self {
        self.stack_budget = bytes;
        self
    }

    /// The highest NDIS version of the emulated Windows (default 6.89,
    /// Windows 11 24H2; 6.30 is Windows 8): `NdisRegisterProtocolDriver`
    /// refuses a newer one with `NDIS_STATUS_BAD_VERSION`.
    pub fn ndis_version(mut self, major: u8, minor: u8) -> Self {
        self.ndis_version = (major, minor);
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
                forbidden_debug: self.forbidden_debug,
                deterministic: self.deterministic.map(|seed| (seed, self.strategy)),
                script: self.script,
                low_resources: self.low_resources,
                stack_budget: self.stack_budget,
                jitter: self.jitter,
                preempt: self.preempt,
                slow: self.slow,
                prompt_pnp: self.prompt_pnp || self.jitter.is_some(),
                points_after: self.points_after,
                garbage: self.garbage,
                record_outputs: self.record_outputs,
            },
            self.checksum,
        );
        k.pool.set_special(self.special_pool);
        k.census.set(self.count_calls);
        k.nth_alloc.store(self.fail_allocations.0, Ordering::Release);
        k.nth_count.store(self.fail_allocations.1, Ordering::Release);
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
        *lock(&k.ndis.registration) = self.registration.clone();
        *lock(&k.ndis.versions.max) = self.ndis_version;
        crate::preempt::start(&k);
        // Threads: deferred NDIS work, system workers, receive threads.
        for cpu in 0..self.cpus {
            k.spawn(&format!("dpc{cpu}"), |k| crate::jobs::Jobs::serve(k, |k| &k.dpc));
            k.spawn(&format!("worker{cpu}"), |k| crate::jobs::Jobs::serve(k, |k| &k.io.workers));
        }
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
        crate::stack::image_at(image.base);
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
            // The user's handles close (the failed load's dispatch
            // routines run for them), then what is left is reported.
            let report = sim.finish(false);
            return Err(StartError::DriverEntry(st, Box::new(report)));
        }
        sim.k.io.after_driver_entry();
        if !self.low_resources_after_binds {
            sim.k.arm_low_resources();
        }
        if sim.k.ndis.protocol().is_some() && !self.bind_during_registration && !self.defer_binds {
            ndis::bind_all_and_start(&sim.k);
        }
        if self.low_resources_after_binds {
            sim.k.arm_low_resources();
        }
        drop(_e);
        Ok(sim)
    }
}
