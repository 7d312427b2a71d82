//! Running a schedule against the real rawnic.sys in ndisim.
//!
//! The PnP, NIC and handle actors run at once (`Sim::run_actors`); each
//! action is one call into the simulation, and between actions each actor
//! takes a harness step (`Sim::step`), where a deterministic simulation may
//! switch threads. Everything the driver hands back is checked: replies
//! must parse, read frames must be intact, and every request must complete
//! once cancelled. The schedule ends with every handle closed and the
//! driver unloaded; the verifier's report must be clean.

mod accounts;
mod actors;
mod build;
mod ctx;
mod edges;
mod flood;
mod handles;
mod joins;
mod knobs;
mod lasting;
mod links;
mod local;
pub mod oid_answers;
mod open_unbind;
mod owed;
mod probe;
mod probe_handles;
mod programs;
mod received;
mod rings;
mod set_answers;
mod stacks;
mod stalls;
mod twin;
mod unions;
mod wire;

use crate::schedule::*;
use actors::{nic_actor, pnp_actor, wait_for_binds};
pub use edges::Edges;
use handles::{close, handle_actor};
use ndisim::{AdapterId, Handle, Sim, SimError};
use serde::{Deserialize, Serialize};
use stacks::{HOOK_STACKS, watchdog_stacks_for};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// Allocation failures the low-resources simulation injected (and
    /// allocations `Schedule::fail_nth` refused).
    pub alloc_failures: u64,
    /// Allocations counted for `Schedule::fail_nth` (`Sim::
    /// allocations_counted`) before the unload.
    #[serde(default)]
    pub allocations: u64,
    /// Free-running runs: every thread's stack (by gdb) at the moment the
    /// first watchdog gave up, while whatever the operation waits for is
    /// still stuck.
    #[serde(default)]
    pub stacks: Option<String>,
    /// Actions on a shared slot that found a handle there (one file
    /// object used by several threads).
    #[serde(default)]
    pub shared_actions: u64,
    /// Ring attaches tried, rx descriptors and completions taken.
    #[serde(default)]
    pub ring_attaches: u64,
    #[serde(default)]
    pub ring_rx: u64,
    #[serde(default)]
    pub ring_tx: u64,
    /// How often the schedule met the edges Windows allows and a driver
    /// easily forgets.
    #[serde(default)]
    pub edges: Edges,
    /// A schedule run by the systematic scheduler (`Schedule::bounded`):
    /// each switch's number of alternatives to the default pick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<u16>>,
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
    /// Load the image there (`coverage`), not where ndisim likes.
    pub image_base: Option<u64>,
}

impl RunConfig {
    /// The watchdog is 20 s: a completion that never comes still trips
    /// it, and a test machine running many schedules at once (a load of
    /// 40 on 2 CPUs in our long runs) does not. With 5 s, about one
    /// free-running schedule in 5,000 tripped it on such a machine with a
    /// restart that completed late and never failed in hundreds of
    /// replays (RELIABILITY.md).
    pub fn new(driver: impl AsRef<Path>) -> Self {
        RunConfig { driver: driver.as_ref().to_path_buf(), watchdog: Duration::from_secs(20), image_base: None }
    }
}

/// How many handles' ring epochs are told apart: handles share one by the
/// address of their `Handle` (sharing only makes the check weaker, never
/// wrong: more events count as causes).
const RING_KEYS: usize = 64;

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
    /// `Edges::joins` and `Edges::groups_checked`.
    joins: AtomicU64,
    groups_checked: AtomicU64,
    /// `Edges::unions_checked`.
    unions_checked: AtomicU64,
    /// `Edges::filters_checked`.
    filters_checked: AtomicU64,
    /// `Edges::unions_after_shortage` and `Edges::filters_after_shortage`.
    unions_after_shortage: AtomicU64,
    filters_after_shortage: AtomicU64,
    /// Adapters restarted after a shortage ended, whose multicast list is
    /// judged (`unions::settle`).
    settled: Mutex<Vec<usize>>,
    /// `Edges::filters_granted`.
    filters_granted: AtomicU64,
    problems: Mutex<Vec<String>>,
    stacks: Mutex<Option<String>>,
    shared_actions: AtomicU64,
    /// WAIT_BINDS_COMPLETE requests that did not complete in their
    /// dispatch routine.
    pub(super) binds_waited: AtomicU64,
    /// Unbinds, uninstalls and power changes begun, and those running (an
    /// OID aborted across one may be the unbind's doing).
    pnp_epoch: AtomicU64,
    pnp_busy: AtomicU64,
    /// The shared slots (`SHARED_SLOTS`..`SLOTS`): a handle every handle
    /// thread may use, and the adapter it was opened on.
    shared: Vec<Mutex<SharedSlot>>,
    /// Each handle's ring user (`rings.rs`).
    rings: rings::RingUsers,
    /// Per handle (`ring_key`): detaches, attach cancels and completed
    /// attaches so far (a wait of that handle cancelled across one is
    /// theirs).
    ring_epoch: [AtomicU64; RING_KEYS],
    /// Per handle: detaches and attach cancels under way (a wait they
    /// complete may be checked before the epoch moves again after them).
    ring_busy: [AtomicU64; RING_KEYS],
    /// Per handle: the unbind epoch (`pnp_epoch`) when it was made, else at
    /// its first ring attach (`u64::MAX` before either; handles sharing a
    /// key share the earliest). An unbind since may have orphaned it, whose
    /// RING_WAITs then fail with STATUS_DEVICE_REMOVED, rings or none.
    ring_made_at: [AtomicU64; RING_KEYS],
    ring_attaches: AtomicU64,
    /// Binds served for re-enumerations that succeeded.
    rebinds: AtomicU64,
    ring_rx: AtomicU64,
    ring_tx: AtomicU64,
    /// The ring receive path's rarer branches the schedule reached.
    ring_edges: edges::RingEdges,
    /// Frames read back per file object (`IoToken::file`).
    reads_by_file: Mutex<HashMap<(usize, u64), u64>>,
    /// Rx descriptors taken per file object (from attaches the user's
    /// garbage did not taint), for the statistics oracle (`Stats`).
    ring_rx_by_file: Mutex<HashMap<(usize, u64), u64>>,
    /// The wire lengths (`origlen`) of those frames (reads and rx
    /// descriptors), which the handle's `rx_bytes` counts.
    bytes_by_file: Mutex<HashMap<(usize, u64), u64>>,
    /// Of those (reads and rx descriptors), the frames NDIS indicated (all
    /// but other handles' sends the driver handed over itself), which the
    /// handle's binding counts before any handle has them.
    wire_by_file: Mutex<HashMap<(usize, u64), u64>>,
    /// Frames each file object's sends handed to the driver (a WriteFile
    /// that succeeded, a SEND_BATCH's or a kick's count), for the same
    /// oracle.
    sent_by_file: Mutex<HashMap<(usize, u64), u64>>,
    /// The packet filter each file object opened a binding with (an OPEN
    /// that succeeded), for the multicast oracle (`joins::check_group`).
    filter_by_file: Mutex<HashMap<(usize, u64), u32>>,
    /// The packet filter each file object was told it gets (the reply of
    /// its OPEN that succeeded), for the owed-filter oracle (`owed.rs`).
    told_by_file: Mutex<HashMap<(usize, u64), u32>>,
    /// The multicast lists file objects asked for and have (`joins.rs`).
    joins_by_file: Mutex<HashMap<(usize, u64), joins::Joins>>,
    /// The adapter each file object opened (the last OPEN that succeeded),
    /// for the packet-filter oracle (`accounts::check_filter`).
    adapter_by_file: Mutex<HashMap<(usize, u64), usize>>,
    /// Events heard per file object, for their order
    /// (`accounts::check_events`).
    events_by_file: Mutex<HashMap<(usize, u64), Vec<rawnic_proto::EventRecord>>>,
    /// A handle that never opens a binding: it hears every binding's
    /// events, read at the end (`accounts::check_events`).
    watcher: Option<Handle>,
    /// Binds begun before the watcher opened: rawnic numbers bindings from
    /// 1 as their binds begin, so the watcher heard BOUND first of any
    /// numbered above (`accounts::check_events`).
    binds_before_watcher: u64,
    /// Handles left open when their threads ended, for the receive
    /// accounts (`accounts::check_receives`).
    survivors: Mutex<Vec<Arc<Handle>>>,
    /// The injected frames and what handles may read of them
    /// (`received.rs`).
    rx: received::Model,
    /// `Edges::in_oid_calls`.
    in_oid_calls: AtomicU64,
    /// `Edges::late_returns`, `Edges::slow_cancels`.
    late_returns: AtomicU64,
    slow_cancels: AtomicU64,
    /// What `run/knobs.rs` caught.
    knobs: knobs::Counts,
    /// Spells of late OID returns or slow cancel routines on now
    /// (`IoAction::AwaitSpell` waits for one).
    spells: AtomicU64,
    /// Handle threads waiting for one (a spell waits a little for them).
    awaiting_spell: AtomicU64,
    /// The adapters some handle thread waits for the unbind of
    /// (`IoAction::AwaitUnbind`): only their unbinds wait for a waiter.
    unbinds_awaited: Vec<usize>,
    /// Handle threads waiting for the unbind of each adapter, and the
    /// adapters whose unbind began and is not over.
    awaiting_unbind: Mutex<HashMap<usize, u32>>,
    unbinding: Mutex<Vec<usize>>,
    /// `Edges::opens_in_unbinds`, `Edges::opened_in_unbinds`.
    opens_in_unbinds: AtomicU64,
    opened_in_unbinds: AtomicU64,
    /// `Edges::programs_set`.
    programs_set: AtomicU64,
    /// `Edges::damaged_programs`, `Edges::damaged_ring_requests`.
    damaged_programs: AtomicU64,
    damaged_ring_requests: AtomicU64,
    /// `Edges::damaged_refusals`.
    damaged_refusals: AtomicU64,
    /// `Edges::oid_answers_judged`.
    oid_answers_judged: AtomicU64,
    /// The miniports' set answers SET_OID replies claimed
    /// (`set_answers::check`).
    sets: set_answers::Claims,
    /// What the handle threads sent, for the wire oracle (`wire.rs`).
    wire: wire::Sent,
    /// The records of this host's sends the driver handed over
    /// (`local.rs`).
    local: local::Model,
    /// The GET_STATS replies each file object got (`handles::stats`).
    stats_seen: handles::stats::Seen,
    /// `Edges::list_entries`, `Edges::restart_mtus`.
    list_entries: AtomicU64,
    restart_mtus: AtomicU64,
    /// The adapter of each binding a LIST_BINDINGS named (rawnic numbers
    /// bindings once, from 1), for the restart events' MTUs.
    binding_adapters: Mutex<HashMap<u32, usize>>,
}

/// Whether a delivered frame's flags say NDIS indicated it: received
/// from the wire, or looped back by NDIS; not a send of another rawnic
/// handle that the driver handed over itself (OUTBOUND without LOOPBACK).
fn from_ndis(flags: u16) -> bool {
    use rawnic_proto::frame_flags::{LOOPBACK, OUTBOUND};
    flags & OUTBOUND == 0 || flags & LOOPBACK != 0
}

/// A harness lock (a panic in another actor is reported on its own).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Steps every schedule run in this process has made: actions begun and
/// teardown stages. A worker reports it (`ALIVE`), so that a supervisor
/// tells a schedule that stopped moving (a hang) from one slowed down by
/// an oversubscribed machine.
pub static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// One step made (see [`PROGRESS`]).
pub(crate) fn progressed() {
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Runs `s` and reports what the verifier and the harness found.
pub fn run(s: &Schedule, cfg: &RunConfig) -> Outcome {
    if s.twin && s.mode == Mode::Det {
        return twin::run(s, cfg);
    }
    run_once(s, cfg, None, &mut Vec::new())
}

/// Runs `s`; with `garbage`, that garbage where the driver never wrote,
/// and what the driver's callers got, in `outputs` (`twin.rs`).
fn run_once(s: &Schedule, cfg: &RunConfig, garbage: Option<u8>, outputs: &mut Vec<ndisim::Output>) -> Outcome {
    let b = match build::builder(s, cfg) {
        Ok(b) => b.garbage(garbage.unwrap_or(0)).record_outputs(garbage.is_some()),
        Err(e) => return Outcome { start_error: Some(e), ..Outcome::default() },
    };
    let stalls_before = ndisim::preempt::stalls();
    watchdog_stacks_for(s.mode == Mode::Free);
    let sim = match b.start() {
        Ok(sim) => sim,
        Err(ndisim::StartError::DriverEntry(st, report)) if s.fail_nth.is_some() => {
            return build::failed_entry(st, &report);
        }
        Err(e) => return Outcome { start_error: Some(e.to_string()), ..Outcome::default() },
    };
    // Allocations of DriverEntry and the binds at the start (a refusal
    // among them landed before the schedule's actors ran).
    let allocations_at_start = sim.allocations_counted();
    if let Some(f) = s.fail_nth.filter(|f| f.in_body) {
        sim.refuse_allocations_after(f.n.saturating_sub(1), f.count);
    }
    let names = sim.adapter_names();
    let adapters: Vec<AdapterId> = names.iter().map(|n| sim.adapter_id(n).expect("listed")).collect();
    let ndis_names = adapters.iter().map(|&a| sim.adapter_ndis_name(a).unwrap_or_default()).collect();
    let answering_on_arrival = links::answer_on_arrival(&sim, s, &adapters);
    let binds_before_watcher = sim.binds_begun();
    let watcher = sim.open().ok();
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
        joins: AtomicU64::new(0),
        groups_checked: AtomicU64::new(0),
        unions_checked: AtomicU64::new(0),
        filters_checked: AtomicU64::new(0),
        settled: Mutex::new(Vec::new()),
        unions_after_shortage: AtomicU64::new(0),
        filters_after_shortage: AtomicU64::new(0),
        filters_granted: AtomicU64::new(0),
        problems: Mutex::new(Vec::new()),
        stacks: Mutex::new(None),
        shared_actions: AtomicU64::new(0),
        binds_waited: AtomicU64::new(0),
        pnp_epoch: AtomicU64::new(0),
        pnp_busy: AtomicU64::new(0),
        shared: (SHARED_SLOTS..SLOTS).map(|_| Mutex::new((None, None))).collect(),
        rings: Mutex::new(Vec::new()),
        ring_epoch: [const { AtomicU64::new(0) }; RING_KEYS],
        ring_busy: [const { AtomicU64::new(0) }; RING_KEYS],
        ring_made_at: [const { AtomicU64::new(u64::MAX) }; RING_KEYS],
        ring_attaches: AtomicU64::new(0),
        rebinds: AtomicU64::new(0),
        ring_rx: AtomicU64::new(0),
        ring_tx: AtomicU64::new(0),
        ring_edges: Default::default(),
        reads_by_file: Mutex::new(HashMap::new()),
        ring_rx_by_file: Mutex::new(HashMap::new()),
        bytes_by_file: Mutex::new(HashMap::new()),
        wire_by_file: Mutex::new(HashMap::new()),
        sent_by_file: Mutex::new(HashMap::new()),
        filter_by_file: Mutex::new(HashMap::new()),
        told_by_file: Mutex::new(HashMap::new()),
        joins_by_file: Mutex::new(HashMap::new()),
        adapter_by_file: Mutex::new(HashMap::new()),
        events_by_file: Mutex::new(HashMap::new()),
        watcher,
        binds_before_watcher,
        survivors: Mutex::new(Vec::new()),
        rx: received::Model::default(),
        in_oid_calls: AtomicU64::new(0),
        late_returns: AtomicU64::new(0),
        slow_cancels: AtomicU64::new(0),
        knobs: Default::default(),
        spells: AtomicU64::new(0),
        awaiting_spell: AtomicU64::new(0),
        unbinds_awaited: s
            .handles
            .iter()
            .flatten()
            .filter_map(|x| match x {
                IoAction::AwaitUnbind { a, .. } => Some(*a),
                _ => None,
            })
            .collect(),
        awaiting_unbind: Mutex::new(HashMap::new()),
        unbinding: Mutex::new(Vec::new()),
        opens_in_unbinds: AtomicU64::new(0),
        opened_in_unbinds: AtomicU64::new(0),
        programs_set: AtomicU64::new(0),
        damaged_programs: AtomicU64::new(0),
        damaged_ring_requests: AtomicU64::new(0),
        damaged_refusals: AtomicU64::new(0),
        oid_answers_judged: AtomicU64::new(0),
        sets: Default::default(),
        wire: Default::default(),
        local: Default::default(),
        stats_seen: Default::default(),
        list_entries: AtomicU64::new(0),
        restart_mtus: AtomicU64::new(0),
        binding_adapters: Mutex::new(HashMap::new()),
    };
    let old_ndis = s.ndis_version.is_some_and(|v| build::older_ndis(&ctx, v));
    wire::capture(&ctx);
    {
        let c = &ctx;
        let mut actors: Vec<Box<dyn FnOnce() + Send + '_>> =
            vec![Box::new(move || pnp_actor(c, &s.pnp)), Box::new(move || nic_actor(c, &s.nic))];
        for l in &s.pnp_more {
            actors.push(Box::new(move || {
                // The main PnP actor binds their adapters first.
                if s.late_binds {
                    wait_for_binds(c);
                }
                pnp_actor(c, l)
            }));
        }
        for l in &s.nic_more {
            actors.push(Box::new(move || nic_actor(c, l)));
        }
        for i in 0..s.handles.len() {
            actors.push(Box::new(move || handle_actor(c, i)));
        }
        sim.run_actors(actors);
    }
    knobs::take_lock_aim(&ctx);
    knobs::count_stalled_allocations(&ctx);
    // What the miniports still send (late binds' statuses, loops) comes first.
    for &a in &ctx.adapters {
        sim.settle(a);
    }
    // Before any request of the end (each may ask for an owed filter):
    // the adapters' packet filters (where refusals end, unless lasting).
    let (allocations_at_check, refused_at_check) = (sim.allocations_counted(), sim.allocations_refused());
    owed::check(&ctx);
    // The shared handles close last (their requests were cancelled by the
    // threads that made them), after their receive accounts.
    for sh in &ctx.shared {
        let h = lock(sh).0.take();
        if let Some(h) = h {
            if rings::has_user(&ctx, &h) {
                close(h, false);
            } else {
                ctx.keep_open(h);
            }
        }
    }
    progressed();
    rings::finish(&ctx, rings::release_all(&ctx));
    progressed();
    let accounts_checked = accounts::check(&ctx);
    let (rx_accounts_checked, rx_drops_checked) = accounts::check_receives(&ctx);
    let (events_checked, filter_failed_told) = accounts::check_events(&ctx);
    let links_checked = links::check(&ctx);
    let bind_statuses = ctx.adapters.iter().map(|&a| sim.statuses_during_bind(a)).sum();
    received::check_loopbacks_copied(&ctx);
    wire::check(&ctx);
    let problems = std::mem::take(&mut *lock(&ctx.problems));
    let stacks = lock(&ctx.stacks).take();
    let shared_actions = ctx.shared_actions.load(Ordering::Relaxed);
    let binds_waited = ctx.binds_waited.load(Ordering::Relaxed);
    let ring = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (ring_attaches, ring_rx, ring_tx) = (ring(&ctx.ring_attaches), ring(&ctx.ring_rx), ring(&ctx.ring_tx));
    let (actions, refused, completions, frames_read) = (
        ctx.actions.load(Ordering::Relaxed),
        ctx.refused.load(Ordering::Relaxed),
        ctx.completions.load(Ordering::Relaxed),
        ctx.frames_read.load(Ordering::Relaxed),
    );
    let ctx_rebinds = ctx.rebinds.load(Ordering::Relaxed);
    let (joins, groups_checked) = (ring(&ctx.joins), ring(&ctx.groups_checked));
    let unions_checked = ring(&ctx.unions_checked);
    let filters_checked = ring(&ctx.filters_checked);
    let (unions_after_shortage, filters_after_shortage) =
        (ring(&ctx.unions_after_shortage), ring(&ctx.filters_after_shortage));
    let (rx_checked, shaped_frames) = (ring(&ctx.rx.checked), ring(&ctx.rx.shaped));
    let (rx_looped, rx_coalesced) = (ring(&ctx.rx.looped), ring(&ctx.rx.coalesced));
    let (rx_tagged_inline, rx_stamped) = (ring(&ctx.rx.tagged_inline), ring(&ctx.rx.stamped));
    let (probe_handles, probe_frames) = (ring(&ctx.rx.probe_handles), ring(&ctx.rx.probed));
    let (probe_widened, rx_stamp_pairs) = (ring(&ctx.rx.widened), ring(&ctx.rx.stamp_pairs));
    let rx_snapped = ring(&ctx.rx.snapped);
    let (queued_read_at_end, flooded) = (ring(&ctx.rx.drained), ring(&ctx.rx.flooded));
    let filters_granted = ring(&ctx.filters_granted);
    let (in_oid_calls, programs_set) = (ring(&ctx.in_oid_calls), ring(&ctx.programs_set));
    let (late_returns, slow_cancels) = (ring(&ctx.late_returns), ring(&ctx.slow_cancels));
    let (programs_judged, random_judged) = (ring(&ctx.rx.programs.1), ring(&ctx.rx.programs.2));
    let (damaged_programs, damaged_ring_requests) = (ring(&ctx.damaged_programs), ring(&ctx.damaged_ring_requests));
    let (damaged_refusals, knob_edges) = (ring(&ctx.damaged_refusals), ctx.knobs.edges());
    let (oid_answers_judged, stats_compared) = (ring(&ctx.oid_answers_judged), ring(&ctx.stats_seen.compared));
    let (list_entries, restart_mtus) = (ring(&ctx.list_entries), ring(&ctx.restart_mtus));
    let sets_judged = ring(&ctx.sets.judged);
    let (wire_frames, wire_accepted) = (ring(&ctx.wire.judged), ring(&ctx.wire.looked_for));
    let (local_records, send_probes) = (ring(&ctx.local.judged), ring(&ctx.rx.send_probes));
    let failing_probes = ring(&ctx.rx.failing_probes);
    let (opens_in_unbinds, opened_in_unbinds) = (ring(&ctx.opens_in_unbinds), ring(&ctx.opened_in_unbinds));
    let re = &ctx.ring_edges;
    let (ring_full, fill_invalid, bad_index, ring_cut) =
        (ring(&re.ring_full), ring(&re.fill_invalid), ring(&re.bad_index), ring(&re.cut));
    drop(ctx);
    let trace = sim.trace();
    let alloc_failures = sim.alloc_failures();
    let allocations = sim.allocations_counted();
    let (refused_in_start, refused_in_body, refusals_unreached) = match s.fail_nth {
        Some(_) if !sim.nth_allocation_failed() => (0, 0, 1),
        // (Counted from the body's start: refused in it, or past the check.)
        Some(f) if f.in_body => (0, u64::from(refused_at_check > 0), 0),
        Some(f) if f.n <= allocations_at_start => (1, 0, 0),
        Some(f) if f.n > allocations_at_check => (0, 0, 0),
        Some(_) => (0, 1, 0),
        None => (0, 0, 0),
    };
    let lasting = s.fail_nth.filter(|f| f.lasting);
    let refused_in_teardown =
        u64::from(sim.nth_allocation_failed() && lasting.is_some_and(|f| f.n > allocations_at_check));
    let mut edges = Edges {
        late_requests: sim.requests_after_cleanup(),
        early_cancels: sim.cancels_in_dispatch(),
        restarting_indications: sim.nbl_stats().receive_indications_restarting,
        low_indications: sim.nbl_stats().receive_indications_low,
        bind_statuses,
        old_ndis: u64::from(old_ndis),
        links_checked,
        answering_on_arrival,
        binds_waited,
        oids_failed: sim.oids_failed(),
        sends_failed: sim.sends_failed(),
        accounts_checked,
        rx_accounts_checked,
        rx_drops_checked,
        events_checked,
        filter_failed_told,
        reenumerations: sim.reenumerations(),
        rebinds: ctx_rebinds,
        preemptions: ndisim::preempt::stalls() - stalls_before,
        slow_stalls: sim.slow_stalls(),
        joins,
        groups_checked,
        unions_checked,
        filters_checked,
        unions_after_shortage,
        filters_after_shortage,
        rx_checked,
        shaped_frames,
        rx_looped,
        rx_coalesced,
        rx_tagged_inline,
        rx_stamped,
        rx_stamp_pairs,
        rx_snapped,
        probe_handles,
        probe_widened,
        send_probes,
        failing_probes,
        probe_frames,
        queued_read_at_end,
        flooded,
        filters_granted,
        opens_in_unbinds,
        opened_in_unbinds,
        in_oid_calls,
        late_returns,
        slow_cancels,
        programs_set,
        programs_judged,
        random_judged,
        damaged_programs,
        damaged_ring_requests,
        damaged_refusals,
        oid_answers_judged,
        sets_judged,
        wire_frames,
        wire_accepted,
        local_records,
        stats_compared,
        list_entries,
        restart_mtus,
        ring_full,
        fill_invalid,
        bad_index,
        ring_cut,
        refused_in_entry: 0,
        refused_in_start,
        refused_in_body,
        refusals_unreached,
        refused_in_teardown,
        lasting_bursts: u64::from(lasting.is_some()),
        refused_after_check: sim.allocations_refused() - refused_at_check,
        // (Known at the unload.)
        stack_deepest: 0,
        // (`twin.rs`'s.)
        twins: 0,
        twin_outputs: 0,
        ..knob_edges
    };
    (edges.cancel_stalls, edges.cancels_in_unload) = knobs::cancels_in_unload(&sim, s);
    progressed();
    if garbage.is_some() {
        *outputs = sim.outputs();
    }
    let mut report = sim.unload();
    progressed();
    edges.stack_deepest = report.stack.deepest().map_or(0, |h| h.depth as u64);
    let points = report.sched_points.take();
    // The unload's decisions too (its unbinds, closes and work items).
    let trace = report.sched_trace.or(trace);
    // A watchdog outside the actors (the unload's unbinds) took them too.
    let stacks = stacks.or_else(|| lock(&HOOK_STACKS).take());
    let (violations, rules, internal) = build::findings(&report);
    Outcome {
        violations,
        rules,
        internal,
        harness: problems,
        start_error: None,
        actions,
        refused,
        completions,
        frames_read,
        trace,
        alloc_failures,
        allocations,
        stacks,
        shared_actions,
        ring_attaches,
        ring_rx,
        ring_tx,
        edges,
        points,
    }
}
