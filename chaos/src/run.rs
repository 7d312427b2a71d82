//! Running a schedule against the real rawnic.sys in ndisim.
//!
//! The PnP, NIC and handle actors run at once (`Sim::run_actors`); each
//! action is one call into the simulation, and between actions each actor
//! takes a harness step (`Sim::step`), where a deterministic simulation may
//! switch threads. Everything the driver hands back is checked: replies
//! must parse, read frames must be intact, and every request must complete
//! once cancelled. The schedule ends with every handle closed and the
//! driver unloaded; the verifier's report must be clean.

use crate::frames;
use crate::schedule::*;
use ndisim::{AdapterId, CompletionPolicy, Handle, InjectOpts, IoResult, IoToken, RestartSpec, Sim, SimError};
use rawnic_proto::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Verifier violations: `rule: detail`.
    pub violations: Vec<String>,
    /// The distinct rules broken, sorted.
    pub rules: Vec<String>,
    /// ndisim's own internal errors.
    pub internal: Vec<String>,
    /// What the harness found wrong in the driver's replies.
    pub harness: Vec<String>,
    /// The simulation could not start.
    pub start_error: Option<String>,
    /// Actions carried out, and how many of them the simulation refused for
    /// the state it was in (a pause of a paused binding, ...).
    pub actions: u64,
    pub refused: u64,
    /// Requests that completed, and frames read back intact.
    pub completions: u64,
    pub frames_read: u64,
    /// Deterministic runs: the hash of every scheduling decision and their
    /// number (the same seed gives the same pair).
    pub trace: Option<(u64, u64)>,
    /// Allocation failures the low-resources simulation injected.
    pub alloc_failures: u64,
    /// Free-running runs: every thread's stack (by gdb) at the moment the
    /// first watchdog gave up, while whatever the operation waits for is
    /// still stuck.
    #[serde(default)]
    pub stacks: Option<String>,
    /// Actions on a shared slot that found a handle there (one file
    /// object used by several threads).
    #[serde(default)]
    pub shared_actions: u64,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
            || !self.internal.is_empty()
            || !self.harness.is_empty()
            || self.start_error.is_some()
    }

    /// A one-line summary of what failed.
    pub fn summary(&self) -> String {
        if !self.failed() {
            return "clean".into();
        }
        let mut parts = Vec::new();
        if let Some(e) = &self.start_error {
            parts.push(format!("start: {e}"));
        }
        if !self.rules.is_empty() {
            parts.push(format!("violations [{}]", self.rules.join(", ")));
        }
        if !self.internal.is_empty() {
            parts.push(format!("{} internal error(s)", self.internal.len()));
        }
        if !self.harness.is_empty() {
            parts.push(format!("harness: {}", self.harness[0]));
        }
        parts.join("; ")
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub driver: std::path::PathBuf,
    /// How long a PnP event or request may take before it is a hang.
    pub watchdog: Duration,
}

impl RunConfig {
    /// The watchdog is 20 s: a completion that never comes still trips
    /// it, and a test machine running many schedules at once (a load of
    /// 40 on 2 CPUs in our long runs) does not. With 5 s, about one
    /// free-running schedule in 5,000 tripped it on such a machine with a
    /// restart that completed late and never failed in hundreds of
    /// replays (RELIABILITY.md).
    pub fn new(driver: impl AsRef<Path>) -> Self {
        RunConfig { driver: driver.as_ref().to_path_buf(), watchdog: Duration::from_secs(20) }
    }
}

/// A shared slot: its handle, and the adapter it was opened on.
type SharedSlot = (Option<Arc<Handle>>, Option<usize>);

/// Shared state of one run.
struct Ctx<'s> {
    sim: &'s Sim,
    sched: &'s Schedule,
    adapters: Vec<AdapterId>,
    names: Vec<String>,
    watchdog: Duration,
    seq: AtomicU32,
    actions: AtomicU64,
    refused: AtomicU64,
    completions: AtomicU64,
    frames_read: AtomicU64,
    problems: Mutex<Vec<String>>,
    stacks: Mutex<Option<String>>,
    shared_actions: AtomicU64,
    /// Unbinds, uninstalls and power changes begun, and those running (an
    /// OID aborted across one may be the unbind's doing).
    pnp_epoch: AtomicU64,
    pnp_busy: AtomicU64,
    /// The shared slots (`SHARED_SLOTS`..`SLOTS`): a handle every handle
    /// thread may use, and the adapter it was opened on.
    shared: Vec<Mutex<SharedSlot>>,
}

impl Ctx<'_> {
    fn problem(&self, p: String) {
        let mut v = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 20 {
            v.push(p);
        }
    }

    /// Runs `f`, an unbind, an uninstall or a power change, counted so that
    /// the OIDs it aborts are not taken for stray cancels.
    fn teardown(&self, f: impl FnOnce()) {
        self.pnp_busy.fetch_add(1, Ordering::AcqRel);
        self.pnp_epoch.fetch_add(1, Ordering::AcqRel);
        f();
        self.pnp_epoch.fetch_add(1, Ordering::AcqRel);
        self.pnp_busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether an unbind, uninstall or power change ran or began since
    /// `epoch`, or runs now.
    fn torn_down_since(&self, epoch: u64) -> bool {
        self.pnp_busy.load(Ordering::Acquire) > 0 || self.pnp_epoch.load(Ordering::Acquire) != epoch
    }

    /// The first watchdog of a free-running run: every thread's stack now,
    /// before this thread goes on (its next action may be what unblocks the
    /// operation, as a completion that comes right after the watchdog
    /// suggests).
    fn take_stacks(&self) {
        if self.sched.mode != Mode::Free {
            return;
        }
        let mut st = self.stacks.lock().unwrap_or_else(|e| e.into_inner());
        if st.is_none() {
            *st = Some(crate::supervise::stacks_of(std::process::id()));
        }
    }

    fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn mac(&self, a: usize) -> [u8; 6] {
        self.sim.adapter_mac(self.adapters[a]).unwrap_or([0; 6])
    }

    /// The result of a simulation call: a refusal for the state is fine, a
    /// watchdog or a driver failure of a pause is not (the verifier records
    /// those too).
    fn sim_result(&self, what: &str, r: Result<(), SimError>) {
        self.actions.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(()) => {}
            Err(SimError::State(_)) | Err(SimError::Status(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(e @ SimError::Watchdog(_)) => {
                self.problem(format!("{what}: {e}"));
                self.take_stacks();
            }
            Err(SimError::Other(e)) => self.problem(format!("{what}: {e}")),
        }
    }
}

/// Runs `s` and reports what the verifier and the harness found.
pub fn run(s: &Schedule, cfg: &RunConfig) -> Outcome {
    let mut b = Sim::builder().driver(&cfg.driver).watchdog(cfg.watchdog);
    if s.mode == Mode::Det {
        b = b.deterministic(s.seed);
    }
    if s.lowres > 0 {
        b = b.low_resources(s.lowres, s.seed ^ 0x10_5E5);
    }
    if s.special_pool {
        b = b.special_pool(true);
    }
    if s.jitter > 0 && s.mode == Mode::Free {
        b = b.jitter(s.jitter, s.seed ^ 0x0071_77E5);
    }
    for spec in &s.adapters {
        b = b.adapter(spec);
    }
    let sim = match b.start() {
        Ok(sim) => sim,
        Err(e) => return Outcome { start_error: Some(e.to_string()), ..Outcome::default() },
    };
    let names = sim.adapter_names();
    let adapters: Vec<AdapterId> = names.iter().map(|n| sim.adapter_id(n).expect("listed")).collect();
    let ndis_names = adapters.iter().map(|&a| sim.adapter_ndis_name(a).unwrap_or_default()).collect();
    let ctx = Ctx {
        sim: &sim,
        sched: s,
        adapters,
        names: ndis_names,
        watchdog: cfg.watchdog,
        seq: AtomicU32::new(1),
        actions: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        completions: AtomicU64::new(0),
        frames_read: AtomicU64::new(0),
        problems: Mutex::new(Vec::new()),
        stacks: Mutex::new(None),
        shared_actions: AtomicU64::new(0),
        pnp_epoch: AtomicU64::new(0),
        pnp_busy: AtomicU64::new(0),
        shared: (SHARED_SLOTS..SLOTS).map(|_| Mutex::new((None, None))).collect(),
    };
    {
        let c = &ctx;
        let mut actors: Vec<Box<dyn FnOnce() + Send + '_>> =
            vec![Box::new(move || pnp_actor(c, &s.pnp)), Box::new(move || nic_actor(c, &s.nic))];
        for l in &s.pnp_more {
            actors.push(Box::new(move || pnp_actor(c, l)));
        }
        for l in &s.nic_more {
            actors.push(Box::new(move || nic_actor(c, l)));
        }
        for i in 0..s.handles.len() {
            actors.push(Box::new(move || handle_actor(c, i)));
        }
        sim.run_actors(actors);
    }
    // The shared handles close last (their requests were cancelled by the
    // threads that made them).
    for sh in &ctx.shared {
        let h = sh.lock().unwrap_or_else(|e| e.into_inner()).0.take();
        if let Some(h) = h {
            close(h, false);
        }
    }
    let problems = std::mem::take(&mut *ctx.problems.lock().unwrap_or_else(|e| e.into_inner()));
    let stacks = ctx.stacks.lock().unwrap_or_else(|e| e.into_inner()).take();
    let shared_actions = ctx.shared_actions.load(Ordering::Relaxed);
    let (actions, refused, completions, frames_read) = (
        ctx.actions.load(Ordering::Relaxed),
        ctx.refused.load(Ordering::Relaxed),
        ctx.completions.load(Ordering::Relaxed),
        ctx.frames_read.load(Ordering::Relaxed),
    );
    drop(ctx);
    let trace = sim.trace();
    let alloc_failures = sim.alloc_failures();
    let report = sim.unload();
    let mut rules: Vec<String> = report.rules().iter().map(|r| r.name().to_string()).collect();
    rules.sort();
    Outcome {
        violations: report.violations.iter().map(|v| v.to_string()).collect(),
        rules,
        internal: report.internal_errors.clone(),
        harness: problems,
        start_error: None,
        actions,
        refused,
        completions,
        frames_read,
        trace,
        alloc_failures,
        stacks,
        shared_actions,
    }
}

// ---------------------------------------------------------------------------
// PnP: NDIS above the binding
// ---------------------------------------------------------------------------

fn pnp_actor(c: &Ctx<'_>, list: &[PnpAction]) {
    for act in list {
        c.sim.step();
        let ad = |a: usize| c.adapters[a];
        match act {
            PnpAction::Pause { a } => c.sim_result("pause", c.sim.pause(ad(*a))),
            PnpAction::Restart { a, mtu, link, filters, general_revision, short_params } => {
                let spec = RestartSpec {
                    mtu: *mtu,
                    filter_modules: filters.clone(),
                    link: *link,
                    general_revision: Some(*general_revision),
                    extra_attributes: Vec::new(),
                    params_length: short_params
                        .then_some(ndis_sys::NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1 as u32),
                };
                c.sim_result("restart", c.sim.restart(ad(*a), &spec));
            }
            PnpAction::Unbind { a } => c.teardown(|| c.sim_result("unbind", c.sim.unbind(ad(*a)))),
            PnpAction::Bind { a } => c.sim_result("bind", c.sim.bind(ad(*a))),
            PnpAction::Link { a, up } => c.sim_result("link", c.sim.link(ad(*a), *up)),
            PnpAction::Power { a, d3 } => {
                c.teardown(|| c.sim_result("power", c.sim.set_power(ad(*a), if *d3 { 4 } else { 1 })))
            }
            PnpAction::Sleep { ms } => c.sim.sleep(Duration::from_millis(*ms as u64)),
            PnpAction::Uninstall => c.teardown(|| {
                c.sim_result("uninstall", c.sim.uninstall());
                for &id in &c.adapters {
                    c.sim_result("unbind", c.sim.unbind(id));
                }
            }),
        }
    }
}

// ---------------------------------------------------------------------------
// NIC: the miniport below the binding
// ---------------------------------------------------------------------------

fn policy(p: Policy) -> CompletionPolicy {
    match p {
        Policy::Immediate => CompletionPolicy::Immediate,
        Policy::Batch(n) => CompletionPolicy::Batched(n.max(1) as usize),
        Policy::Reorder(n) => CompletionPolicy::Reordered(n.max(1) as usize),
        Policy::Delay(ms) => CompletionPolicy::Delayed(Duration::from_millis(ms as u64)),
    }
}

fn nic_actor(c: &Ctx<'_>, list: &[NicAction]) {
    // The policy each adapter had before a hold, to restore after it.
    let mut policies: Vec<CompletionPolicy> =
        c.adapters.iter().map(|&id| c.sim.completion_policy(id).unwrap_or(CompletionPolicy::Immediate)).collect();
    for act in list {
        c.sim.step();
        match act {
            NicAction::HoldSends { a, ms, parts } => {
                let id = c.adapters[*a];
                c.sim_result("hold sends", c.sim.hold_sends(id));
                let parts = (*parts).max(1) as u32;
                for _ in 0..parts {
                    c.sim.sleep(Duration::from_millis((*ms / parts) as u64));
                    let held = c.sim.held_sends(id);
                    let _ = c.sim.release_sends(id, Some(held.div_ceil(parts as usize)));
                }
                let _ = c.sim.set_completion(id, policies[*a]);
                let _ = c.sim.release_sends(id, None);
            }
            NicAction::HoldOids { a, ms } => {
                let id = c.adapters[*a];
                c.sim_result("hold oids", c.sim.hold_oids(id));
                c.sim.sleep(Duration::from_millis(*ms as u64));
                let _ = c.sim.release_oids(id);
            }
            NicAction::Inject { a, count, len, resources, nbls, nbs, passive, tci, dst, loopback, coalesce } => {
                let mac = c.mac(*a);
                let frames: Vec<Vec<u8>> =
                    (0..*count).map(|_| frames::build(*dst, mac, c.next_seq(), *len as usize)).collect();
                let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                let o = InjectOpts {
                    resources: *resources,
                    nbls_per_indication: (*nbls).max(1) as usize,
                    nbs_per_nbl: (*nbs).max(1) as usize,
                    dispatch: !*passive,
                    tci: *tci,
                    loopback: *loopback,
                    coalesce: coalesce.map(|c| match c {
                        Coalesced::Rsc { segs } => ndisim::Coalesce::Rsc { segs, dup_acks: 0 },
                        Coalesced::Uro { segs, size } => ndisim::Coalesce::Uro { segs, seg_size: size },
                    }),
                };
                c.sim_result("inject", c.sim.inject(c.adapters[*a], &refs, &o).map(|_| ()));
            }
            NicAction::Completion { a, policy: p } => {
                policies[*a] = policy(*p);
                c.sim_result("completion policy", c.sim.set_completion(c.adapters[*a], policies[*a]));
            }
            NicAction::Sleep { ms } => c.sim.sleep(Duration::from_millis(*ms as u64)),
        }
    }
    // A miniport completes everything in the end.
    for &id in &c.adapters {
        let _ = c.sim.set_completion(id, CompletionPolicy::Immediate);
        let _ = c.sim.release_sends(id, None);
        let _ = c.sim.release_oids(id);
    }
}

// ---------------------------------------------------------------------------
// Handles: user-mode threads
// ---------------------------------------------------------------------------

/// What a pending request was, to check its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Event,
    /// `epoch`: `Ctx::pnp_epoch` when it was sent.
    Oid {
        query: bool,
        epoch: u64,
    },
    Binds,
    Other,
}

struct Slot {
    /// Shared with the other threads for a shared slot; this thread's
    /// alone otherwise.
    handle: Option<Arc<Handle>>,
    /// The adapter it was opened on.
    adapter: Option<usize>,
    tokens: Vec<(IoToken, Kind)>,
}

fn handle_actor(c: &Ctx<'_>, thread: usize) {
    let mut slots: Vec<Slot> = (0..SLOTS).map(|_| Slot { handle: None, adapter: None, tokens: Vec::new() }).collect();
    // Requests of closed handles still have to complete.
    let mut orphans: Vec<(IoToken, Kind)> = Vec::new();
    for act in &c.sched.handles[thread] {
        c.sim.step();
        c.actions.fetch_add(1, Ordering::Relaxed);
        for s in slots.iter_mut() {
            reap(c, &mut s.tokens);
        }
        reap(c, &mut orphans);
        let shared = act.slot().map(|s| s % SLOTS).filter(|&s| s >= SHARED_SLOTS);
        if let Some(i) = shared {
            share_in(c, act, i, &mut slots[i as usize]);
        }
        io_action(c, act, &mut slots, &mut orphans);
        if let Some(i) = shared {
            share_out(c, act, i, &mut slots[i as usize]);
        }
    }
    // The end: cancel what is pending, close every handle, and every
    // request must complete.
    for s in slots.iter_mut() {
        for (t, _) in &s.tokens {
            t.cancel();
        }
        if let Some(h) = s.handle.take() {
            close(h, false);
        }
        orphans.append(&mut s.tokens);
    }
    for (t, k) in orphans {
        match t.wait_for(c.watchdog) {
            Some(r) => check_reply(c, k, &t, &r),
            None => c.problem(format!(
                "a {k:?} request (IRP {:#x}) never completed after it was cancelled and its handle closed",
                t.irp()
            )),
        }
    }
}

/// CloseHandle (or the death of the process, `abandon`). A shared handle
/// another thread still uses closes when that thread lets it go (as the
/// last reference).
fn close(h: Arc<Handle>, abandon: bool) {
    match Arc::try_unwrap(h) {
        Ok(h) if abandon => h.abandon(),
        Ok(h) => h.close(),
        Err(_still_used) => {}
    }
}

/// Before an action on shared slot `i`: the thread sees the handle there
/// now (another thread may have created, opened or closed it). A close
/// takes the handle out of the slot first, so that it can really close.
fn share_in(c: &Ctx<'_>, act: &IoAction, i: u8, local: &mut Slot) {
    let mut sh = c.shared[(i - SHARED_SLOTS) as usize].lock().unwrap_or_else(|e| e.into_inner());
    local.handle = if matches!(act, IoAction::Close { .. } | IoAction::Abandon { .. }) {
        sh.1 = None;
        sh.0.take()
    } else {
        sh.0.clone()
    };
    local.adapter = sh.1;
    if local.handle.is_some() {
        c.shared_actions.fetch_add(1, Ordering::Relaxed);
    }
}

/// After an action on shared slot `i`: a handle this thread created goes
/// into the slot (unless another thread's got there first: then it
/// closes), and so does the adapter a handle was opened on. The thread
/// keeps no reference between its actions.
fn share_out(c: &Ctx<'_>, act: &IoAction, i: u8, local: &mut Slot) {
    let Some(h) = local.handle.take() else { return };
    let mut sh = c.shared[(i - SHARED_SLOTS) as usize].lock().unwrap_or_else(|e| e.into_inner());
    match act {
        IoAction::Create { .. } if sh.0.is_none() => {
            sh.0 = Some(h);
            sh.1 = None;
        }
        IoAction::Create { .. } if !sh.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, &h)) => {
            drop(sh);
            close(h, false);
        }
        IoAction::Open { .. } if local.adapter.is_some() && sh.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, &h)) => {
            sh.1 = local.adapter;
        }
        _ => {}
    }
}

/// Checks the requests that completed.
fn reap(c: &Ctx<'_>, tokens: &mut Vec<(IoToken, Kind)>) {
    tokens.retain(|(t, k)| match t.try_result() {
        Some(r) => {
            check_reply(c, *k, t, &r);
            false
        }
        None => true,
    });
}

/// Checks a completed request of token `t`.
fn check_reply(c: &Ctx<'_>, k: Kind, t: &IoToken, r: &IoResult) {
    c.completions.fetch_add(1, Ordering::Relaxed);
    if r.status == ndis_sys::STATUS_PENDING {
        c.problem(format!("a {k:?} request completed with STATUS_PENDING"));
        return;
    }
    // rawnic cancels a request only when asked to: IoCancelIrp, or the
    // cleanup of its handle. Checked after the completion, so a cancel or a
    // close that raced with it counts.
    if r.status == ndis_sys::STATUS_CANCELLED && !t.may_be_cancelled() {
        c.problem(format!(
            "a {k:?} request (IRP {:#x}) completed with STATUS_CANCELLED, but nobody cancelled it and its handle is open",
            t.irp()
        ));
        return;
    }
    if r.status != 0 {
        return;
    }
    match k {
        Kind::Read => match FrameRecords::new_checked(&r.data) {
            Ok(recs) => {
                for (h, d) in recs.iter() {
                    if let Err(e) = frames::check(d, h.origlen as usize) {
                        c.problem(format!("read: {e}"));
                    }
                    c.frames_read.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => c.problem(format!("read: {} bytes of malformed records: {e:?}", r.data.len())),
        },
        Kind::Event => {
            if let Err(e) = EventRecord::parse(&r.data) {
                c.problem(format!("wait event: a malformed event: {e:?}"));
            }
        }
        Kind::Oid { query, epoch } => match OidReplyHeader::parse(&r.data, query) {
            // NDIS aborts a request only when asked to: by rawnic, for this
            // request's cancel or close, or for an unbind. One aborted
            // otherwise got a cancel meant for another request.
            Ok((h, _))
                if h.ndis_status == ndis_sys::NDIS_STATUS_REQUEST_ABORTED
                    && !t.may_be_cancelled()
                    && !c.torn_down_since(epoch) =>
            {
                c.problem(format!(
                    "oid: a request (IRP {:#x}) was aborted, but nobody cancelled it, its handle is open and no adapter unbound or changed power",
                    t.irp()
                ));
            }
            Ok(_) => {}
            Err(e) => c.problem(format!("oid: a malformed reply: {e:?}")),
        },
        Kind::Binds => {
            if let Err(e) = BindsCompleteReply::parse(&r.data) {
                c.problem(format!("wait binds: a malformed reply: {e:?}"));
            }
        }
        Kind::Other => {}
    }
}

fn empty() -> Vec<u8> {
    let mut b = vec![0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).expect("room");
    b
}

fn send_batch_input(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
    let size: usize = SendBatchWriter::HEADER + frames.iter().map(|(f, _)| (8 + f.len() + 7) & !7).sum::<usize>();
    let mut buf = vec![0u8; size];
    let n = {
        let mut w = SendBatchWriter::new(&mut buf).expect("room for the header");
        for (f, tci) in frames {
            w.push(&SendFrame { data: f, tci: *tci }).expect("room for the frame");
        }
        w.finish()
    };
    buf.truncate(n);
    buf
}

/// Waits up to `ms` for a request, then cancels it if it is still pending.
fn wait_or_cancel(t: &IoToken, ms: u32) -> Option<IoResult> {
    if let Some(r) = t.wait_for(Duration::from_millis(ms as u64)) {
        return Some(r);
    }
    t.cancel();
    None
}

fn io_action(c: &Ctx<'_>, act: &IoAction, slots: &mut [Slot], orphans: &mut Vec<(IoToken, Kind)>) {
    let slot_of = |s: &u8| (*s as usize) % slots.len();
    match act {
        IoAction::Create { slot } => {
            let s = &mut slots[slot_of(slot)];
            if s.handle.is_none() {
                match c.sim.open() {
                    Ok(h) => {
                        s.handle = Some(Arc::new(h));
                        s.adapter = None;
                    }
                    Err(st) if st == ndis_sys::STATUS_INSUFFICIENT_RESOURCES => {}
                    Err(st) => c.problem(format!("create: {:?}", NtStatus(st))),
                }
            }
        }
        IoAction::Open { slot, a, filter, ethertypes, queue_frames, queue_bytes, snaplen, local_sends, strict } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let r = OpenRepr {
                name: &c.names[*a],
                ethertypes,
                packet_filter: PacketFilter::from_bits_retain(*filter),
                queue_frames: *queue_frames,
                queue_bytes: *queue_bytes,
                snaplen: *snaplen,
                local_sends: match local_sends {
                    1 => rawnic_proto::LocalSends::All,
                    2 => rawnic_proto::LocalSends::None,
                    _ => rawnic_proto::LocalSends::Others,
                },
                strict_filter: *strict,
            };
            let mut input = vec![0u8; r.wire_len()];
            r.emit(&mut input).expect("a valid open request");
            let res = h.ioctl(IOCTL_RAWNIC_OPEN, &input, OpenReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if res.status == 0 {
                match OpenReply::parse(&res.data) {
                    Ok(_) => s.adapter = Some(*a),
                    Err(e) => c.problem(format!("open: a malformed reply: {e:?}")),
                }
            }
        }
        IoAction::SendBatch { slot, frames: n, len, tci, dst, oversize } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            let len = if *oversize { 9100 } else { *len as usize };
            let fs: Vec<(Vec<u8>, Option<u16>)> =
                (0..*n).map(|_| (frames::build(*dst, mac, c.next_seq(), len), *tci)).collect();
            let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &send_batch_input(&fs), SendReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 {
                match SendReply::parse(&r.data) {
                    Ok(rep) if rep.accepted as usize <= fs.len() => {}
                    Ok(rep) => c.problem(format!("send batch: {} of {} frames accepted", rep.accepted, fs.len())),
                    Err(e) => c.problem(format!("send batch: a malformed reply: {e:?}")),
                }
            }
        }
        IoAction::Write { slot, len, dst } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let mac = s.adapter.map_or([0; 6], |a| c.mac(a));
            let f = frames::build(*dst, mac, c.next_seq(), *len as usize);
            let r = h.write(&f);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 && r.information != f.len() {
                c.problem(format!("write: {} of {} bytes reported written", r.information, f.len()));
            }
        }
        IoAction::Read { slot, len, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.read_async(*len as usize) {
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, Kind::Read, &t, &r),
                    None => s.tokens.push((t, Kind::Read)),
                }
            }
        }
        IoAction::ReadPending { slot, len } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.read_async(*len as usize) {
                s.tokens.push((t, Kind::Read));
            }
        }
        IoAction::WaitEvent { slot, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN) {
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, Kind::Event, &t, &r),
                    None => s.tokens.push((t, Kind::Event)),
                }
            }
        }
        IoAction::Oid { slot, set, oid, len, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let data: Vec<u8> = if *set { (0..*len).map(|i| i as u8).collect() } else { Vec::new() };
            let req = OidRequest { oid: *oid, data: &data };
            let mut input = vec![0u8; OidRequest::FIXED + data.len()];
            if req.emit(&mut input).is_err() {
                return;
            }
            let code = if *set { IOCTL_RAWNIC_SET_OID } else { IOCTL_RAWNIC_QUERY_OID };
            let out = OidReplyHeader::LEN + if *set { 0 } else { *len as usize };
            // Read before the request goes: an unbind between the two would
            // otherwise not count.
            let k = Kind::Oid { query: !*set, epoch: c.pnp_epoch.load(Ordering::Acquire) };
            if let Ok(t) = h.ioctl_async(code, &input, out) {
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, k, &t, &r),
                    None => s.tokens.push((t, k)),
                }
            }
        }
        IoAction::Stats { slot } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 {
                if let Err(e) = StatsReply::parse(&r.data) {
                    c.problem(format!("stats: a malformed reply: {e:?}"));
                }
            }
        }
        IoAction::List { slot } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let r = h.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty(), 16 * 1024);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 {
                if let Err(e) = ListReply::new_checked(&r.data) {
                    c.problem(format!("list: a malformed reply: {e:?}"));
                }
            }
        }
        IoAction::Version { slot } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let r = h.ioctl(IOCTL_RAWNIC_GET_VERSION, &empty(), VersionReply::LEN);
            c.completions.fetch_add(1, Ordering::Relaxed);
            if r.status == 0 {
                if let Err(e) = VersionReply::parse(&r.data) {
                    c.problem(format!("version: a malformed reply: {e:?}"));
                }
            }
        }
        IoAction::WaitBinds { slot, wait_ms } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            if let Ok(t) = h.ioctl_async(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, &empty(), BindsCompleteReply::LEN) {
                match wait_or_cancel(&t, *wait_ms) {
                    Some(r) => check_reply(c, Kind::Binds, &t, &r),
                    None => s.tokens.push((t, Kind::Binds)),
                }
            }
        }
        IoAction::CancelAll { slot } => {
            for (t, _) in &slots[slot_of(slot)].tokens {
                t.cancel();
            }
        }
        IoAction::Close { slot } => {
            let s = &mut slots[slot_of(slot)];
            if let Some(h) = s.handle.take() {
                close(h, false);
            }
            orphans.append(&mut s.tokens);
            s.adapter = None;
        }
        IoAction::Abandon { slot } => {
            let s = &mut slots[slot_of(slot)];
            if let Some(h) = s.handle.take() {
                close(h, true);
            }
            orphans.append(&mut s.tokens);
            s.adapter = None;
        }
        IoAction::Garbage { slot, code, input, out_len } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            // Only rawnic's device type: other codes are refused by the I/O
            // manager before they reach the driver.
            if let Ok(t) = h.ioctl_async(*code, input, *out_len as usize) {
                match wait_or_cancel(&t, 5) {
                    Some(r) => check_reply(c, Kind::Other, &t, &r),
                    None => s.tokens.push((t, Kind::Other)),
                }
            }
        }
        IoAction::Mutated { slot, request, edits, out_len } => {
            let s = &mut slots[slot_of(slot)];
            let Some(h) = &s.handle else { return };
            let (code, mut input, right) = template_request(c, request);
            crate::r#gen::apply_edits(&mut input, edits);
            let out = match out_len {
                OutLen::Right => right,
                OutLen::Short => right.saturating_sub(1),
                OutLen::Bytes(n) => *n as usize,
            };
            if let Ok(t) = h.ioctl_async(code, &input, out) {
                match wait_or_cancel(&t, 5) {
                    Some(r) => check_reply(c, Kind::Other, &t, &r),
                    None => s.tokens.push((t, Kind::Other)),
                }
            }
        }
        IoAction::Sleep { ms } => c.sim.sleep(Duration::from_millis(*ms as u64)),
    }
}

/// The well-formed request a mutated one starts from: its code, input and
/// the output its reply needs.
fn template_request(c: &Ctx<'_>, t: &Template) -> (u32, Vec<u8>, usize) {
    match t {
        Template::Open { a, ethertypes, filter } => {
            let r = OpenRepr {
                name: &c.names[*a % c.names.len()],
                ethertypes,
                packet_filter: PacketFilter::from_bits_retain(*filter),
                queue_frames: 0,
                queue_bytes: 0,
                snaplen: 0,
                local_sends: rawnic_proto::LocalSends::Others,
                strict_filter: false,
            };
            let mut input = vec![0u8; r.wire_len()];
            r.emit(&mut input).expect("a valid open request");
            (IOCTL_RAWNIC_OPEN, input, OpenReply::LEN)
        }
        Template::SendBatch { frames: n, len, tci } => {
            // Frames the readers' check passes over: not EtherType 0x88B5,
            // and so far from it (16 bits apart) that no edit makes them
            // look like the explorer's own, nor any run of their bytes
            // (a damaged length makes the driver cut frames elsewhere).
            let damaged = |_| {
                let mut f = frames::build(Dst::Broadcast, [0; 6], 0, *len as usize);
                f[12..14].copy_from_slice(&0x774Au16.to_be_bytes());
                f[14..].fill(0);
                (f, *tci)
            };
            let fs: Vec<(Vec<u8>, Option<u16>)> = (0..*n).map(damaged).collect();
            (IOCTL_RAWNIC_SEND_BATCH, send_batch_input(&fs), SendReply::LEN)
        }
        Template::Oid { set, oid, len } => {
            let data: Vec<u8> = if *set { (0..*len).map(|i| i as u8).collect() } else { Vec::new() };
            let req = OidRequest { oid: *oid, data: &data };
            let mut input = vec![0u8; OidRequest::FIXED + data.len()];
            req.emit(&mut input).expect("room for the request");
            let code = if *set { IOCTL_RAWNIC_SET_OID } else { IOCTL_RAWNIC_QUERY_OID };
            (code, input, OidReplyHeader::LEN + if *set { 0 } else { *len as usize })
        }
        Template::Empty { code } => {
            let right = match *code {
                IOCTL_RAWNIC_GET_VERSION => VersionReply::LEN,
                IOCTL_RAWNIC_GET_STATS => StatsReply::LEN,
                IOCTL_RAWNIC_WAIT_EVENT => EventRecord::LEN,
                IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => BindsCompleteReply::LEN,
                _ => 16 * 1024,
            };
            (*code, empty(), right)
        }
    }
}
