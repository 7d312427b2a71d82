//! A schedule: the adapters, and what each of the concurrent actors does.
//!
//! Three kinds of actors run at once against one simulation:
//! - the **PnP** actor is NDIS above the binding: pause, restart, unbind,
//!   bind, link changes and power transitions;
//! - the **NIC** actor is the miniport below it: receive bursts, send
//!   completion policies, sends and OIDs held back for a while;
//!   with `--parallel N` there are up to N of each: PnP actors on disjoint
//!   sets of adapters, NIC actors indicating at once;
//! - one to three **handle** actors (five to ten, on 6 to 16 adapters,
//!   in a crowd: `gen/crowd.rs`) are user-mode threads with up to four
//!   handles each: creates, opens, sends, reads, event waits, OIDs,
//!   cancels, closes with requests pending, abandons, garbage requests
//!   and damaged well-formed ones; and (`GenOptions::rings`) rings: a
//!   UMEM attached, fill and tx rings stocked, kicks, waits, detaches,
//!   cancels of the attach, garbage in the UMEM (`RingOp`).
//!
//! A schedule is generated from a seed (`gen`), runs (`run`), and, when it
//! fails, is shrunk to fewer actions (`shrink`); it is plain data, saved
//! and replayed as JSON.

use serde::{Deserialize, Serialize};

mod io;
pub use io::*;

/// How the simulated threads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Real threads on the host's CPUs: real SMP races, not replayable bit
    /// for bit.
    Free,
    /// One seeded scheduler runs one thread at a time and switches only at
    /// ndisim's exports and at harness steps: the same seed replays the same
    /// interleaving.
    Det,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Free => "free",
            Mode::Det => "det",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "free" => Some(Mode::Free),
            "det" => Some(Mode::Det),
            _ => None,
        }
    }
}

/// A whole schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was generated from (also the deterministic scheduler's
    /// seed).
    pub seed: u64,
    pub mode: Mode,
    /// Low-resources simulation: this many allocations in 1000 fail.
    pub lowres: u32,
    /// Special pool: every pool block on its own pages, freed blocks kept
    /// inaccessible for a while.
    pub special_pool: bool,
    /// Free-running: this many calls in 1000 into ndisim stall a moment
    /// first (`SimBuilder::jitter`).
    #[serde(default)]
    pub jitter: u32,
    /// Free-running: this many times a second a thread inside the driver
    /// is stalled between two of its instructions
    /// (`SimBuilder::preempt`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preempt: u32,
    /// ndisim adapter specs, one per adapter (a pair is two specs that name
    /// each other).
    pub adapters: Vec<String>,
    pub pnp: Vec<PnpAction>,
    pub nic: Vec<NicAction>,
    pub handles: Vec<Vec<IoAction>>,
    /// More PnP actors running at once with `pnp`, each on adapters none of
    /// the others touches (NDIS serializes PnP per binding, not across
    /// miniports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pnp_more: Vec<Vec<PnpAction>>,
    /// More NIC actors running at once with `nic` (receive indications on
    /// several CPUs, as with RSS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nic_more: Vec<Vec<NicAction>>,
    /// The adapters are not bound when the driver loads: the PnP actor
    /// binds them (`PnpAction::BindAll`) while the handles already run, as
    /// NDIS binds a protocol at boot some time after user mode may have
    /// opened its device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late_binds: bool,
    /// With `lowres`: allocations fail only once the adapters present at
    /// the start are bound and running (else their binds too, and about
    /// half of them failed under `--lowres 50`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lowres_after_binds: bool,
    /// Deterministic: the scheduler picks by priorities (PCT), not
    /// uniformly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pct: Option<Pct>,
    /// Deterministic: the systematic scheduler instead (`ndisim`'s
    /// `Strategy::Bounded`): its fixed default picks, changed at these
    /// switches (switch, which other candidate). `--systematic` runs a
    /// schedule with every set of deviations within its bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounded: Option<Vec<(u64, u32)>>,
    /// Deterministic: a pause or restart returns once the driver completed
    /// it, while the work item that completed it may still run
    /// (`SimBuilder::prompt_pnp`; free-running schedules get it with
    /// jitter).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompt_pnp: bool,
    /// Every export is a scheduling point after its body as well as at its
    /// entry (`SimBuilder::points_after_exports`): the deterministic
    /// scheduler may switch, and free-running jitter stall, between a
    /// call's return and the driver's next instruction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub points_after: bool,
    /// The emulated Windows' highest NDIS version (`SimBuilder::
    /// ndis_version`; none: 6.89, Windows 11 24H2). On an older one rawnic
    /// registers as NDIS 6.30, and NDIS turns URO off as it binds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndis_version: Option<(u8, u8)>,
    /// NDIS binds the adapters from inside `NdisRegisterProtocolDriver`,
    /// before `DriverEntry` returns (`SimBuilder::
    /// bind_during_registration`), as it may.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binds_in_registration: bool,
    /// A user opens the device while `DriverEntry` registers the protocol
    /// (`SimBuilder::open_during_registration`); that file stays open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_in_registration: bool,
    /// Emulated processors (`SimBuilder::cpus`; none: ndisim's 2): with
    /// more, more DPC-level completions and work items run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u8>,
    /// The kinds of actions this swarm schedule left out (`gen/swarm.rs`),
    /// by name; empty for the others. Only a record: the action lists are
    /// what runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swarm: Vec<String>,
    /// Per mille of the receive bursts drawn with a `Shape`
    /// (`gen/shapes.rs`: most schedules few, some most). Only a record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shapes: u32,
    /// Every handle thread leaves its handles (those without rings) open
    /// for the checks at the end, whatever the seed (otherwise only even
    /// seeds do): the scenes of `gen/scenes.rs` end with handles whose
    /// lists and filters the adapter must hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_open: bool,
    /// Handlers of the driver whose calls into ndisim stall now and then,
    /// so other threads run into their middle (`ndisim::slow`; both modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<Slow>,
    /// Allocations refused systematically (`SimBuilder::
    /// fail_allocations_from`): from the `n`th of the run, counted from
    /// before `DriverEntry`, `count` in a row (`--fail-nth`; `gen::
    /// fail_nth` draws it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_nth: Option<FailNth>,
    /// Adapters (indices) whose miniport answers a query that pends from
    /// its state when the query arrives, and completes it later
    /// (`Sim::answer_queries_on_arrival`, turned on before the actors
    /// run; `--answer-on-arrival`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer_on_arrival: Vec<usize>,
    /// Deterministic: run twice, the second time with other garbage in the
    /// memory the driver never wrote, and judge that the driver's callers
    /// got the same both times (`run/twin.rs`; `--twin`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub twin: bool,
}

/// A burst of refused allocations (`Schedule::fail_nth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailNth {
    /// The first allocation refused, 1-based, counted over the whole run.
    pub n: u64,
    /// Allocations refused in a row from there (until the end checks end
    /// the refusals: `Sim::end_allocation_refusals`, unless `lasting`);
    /// `FailNth::ALL`: every one from there on.
    pub count: u64,
    /// Not ended at the first end check: the refusals go on through the
    /// end checks, the closes, the unbinds and the unload (`run/
    /// lasting.rs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lasting: bool,
    /// Aimed at the schedule's body: `n` counts from the first allocation
    /// after `DriverEntry` and the first binds (as the actors start), not
    /// from the run's (`Sim::refuse_allocations_after`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_body: bool,
}

impl FailNth {
    /// A `count` that refuses every allocation from the `n`th on.
    pub const ALL: u64 = u64::MAX;
}

/// `ndisim::slow::Slow` as a schedule holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slow {
    /// Names of `ndisim::slow::HANDLERS`.
    pub handlers: Vec<String>,
    /// Of their calls into ndisim, this many in 1000 stall.
    pub per_mille: u32,
    /// The longest stall, in µs.
    pub max_us: u32,
}

/// PCT's parameters (`ndisim::Strategy::Priorities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pct {
    /// One more than the number of priority changes.
    pub depth: u32,
    /// The changes come within this many switches.
    pub horizon: u64,
}

/// The spec of adapter `a` among `specs` (a pair's spec makes two
/// adapters, with the same options).
pub fn adapter_spec(specs: &[String], a: usize) -> Option<&str> {
    let mut at = 0;
    for s in specs {
        at += if s.starts_with("pair:") { 2 } else { 1 };
        if a < at {
            return Some(s);
        }
    }
    None
}

impl Schedule {
    /// Actions in all the lists.
    pub fn len(&self) -> usize {
        self.pnp.len()
            + self.nic.len()
            + self.handles.iter().map(Vec::len).sum::<usize>()
            + self.pnp_more.iter().map(Vec::len).sum::<usize>()
            + self.nic_more.iter().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One line per action, for a report.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "seed {} mode {} lowres {}/1000 special-pool {}{}{}{}{}{}{}{}{}{}{}{}\nadapters: {}\n",
            self.seed,
            self.mode.name(),
            self.lowres,
            self.special_pool,
            if self.twin { " twin" } else { "" },
            self.fail_nth
                .map(|f| format!(
                    " fail-nth {} count {}{}{}",
                    f.n,
                    f.count,
                    if f.lasting { " lasting" } else { "" },
                    if f.in_body { " in-body" } else { "" }
                ))
                .unwrap_or_default(),
            if self.answer_on_arrival.is_empty() {
                String::new()
            } else {
                format!(" answer-on-arrival {:?}", self.answer_on_arrival)
            },
            if self.late_binds { " late-binds" } else { "" },
            if self.prompt_pnp { " prompt-pnp" } else { "" },
            if self.points_after { " points-after" } else { "" },
            self.pct.map(|p| format!(" pct depth {} horizon {}", p.depth, p.horizon)).unwrap_or_default(),
            if self.swarm.is_empty() { String::new() } else { format!(" swarm without {}", self.swarm.join(",")) },
            if self.shapes == 0 { String::new() } else { format!(" rx shapes {}/1000", self.shapes) },
            if self.keep_open { " keep-open" } else { "" },
            self.slow
                .as_ref()
                .map(|w| format!(" slow {} {}/1000 up to {} µs", w.handlers.join(","), w.per_mille, w.max_us))
                .unwrap_or_default(),
            self.adapters.join(" ")
        );
        for a in &self.pnp {
            s.push_str(&format!("  pnp: {a:?}\n"));
        }
        for a in &self.nic {
            s.push_str(&format!("  nic: {a:?}\n"));
        }
        for (i, l) in self.pnp_more.iter().enumerate() {
            for a in l {
                s.push_str(&format!("  pnp{}: {a:?}\n", i + 1));
            }
        }
        for (i, l) in self.nic_more.iter().enumerate() {
            for a in l {
                s.push_str(&format!("  nic{}: {a:?}\n", i + 1));
            }
        }
        for (i, h) in self.handles.iter().enumerate() {
            for a in h {
                s.push_str(&format!("  handles{i}: {a:?}\n"));
            }
        }
        s
    }
}

/// NDIS above the binding. `a` is an adapter's index in `Schedule::adapters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PnpAction {
    Pause {
        a: usize,
    },
    /// `short_params`: the notification's `BufferLength` is the revision 1
    /// size of the restart parameters (no tail padding).
    Restart {
        a: usize,
        mtu: Option<u32>,
        link: Option<bool>,
        filters: Vec<String>,
        general_revision: u8,
        short_params: bool,
        /// The packet filters the miniport advertises from this restart
        /// on (`RestartSpec::supported_filters`): the stack below changed
        /// while the binding was paused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supported: Option<u32>,
    },
    Unbind {
        a: usize,
    },
    Bind {
        a: usize,
    },
    Link {
        a: usize,
        up: bool,
    },
    /// `NetEventSetPower`: D3 (then a pause), or D0 (then a restart).
    Power {
        a: usize,
        d3: bool,
    },
    /// Another PnP event (`ndisim::OTHER_PNP_EVENTS`) with a buffer of
    /// `len` bytes (none when 0), to adapter `a`'s binding or, with None,
    /// to the protocol.
    Event {
        a: Option<usize>,
        code: u32,
        len: u16,
    },
    Sleep {
        ms: u32,
    },
    /// Every adapter bound, restarted and BindsComplete indicated (the
    /// first action of a `late_binds` schedule's PnP actor).
    BindAll,
    /// `ProtocolUninstall`, then every binding unbound, as NDIS does before
    /// it removes the protocol; the handles go on until the schedule ends.
    /// Only ever the last action of the only PnP actor.
    Uninstall,
    /// Waits up to `wait_ms` for an `NdisOidRequest` call on `a` that a
    /// `NicAction::StallOidCalls` holds, then sends `event` to `a`'s
    /// binding while the call is still inside (or at once, if none came).
    InOidCall {
        a: usize,
        wait_ms: u32,
        event: InCall,
    },
    /// Holds adapter `a`'s next return to D0 between its restart and its
    /// `NetEventSetPower` for D0 (`Sim::hold_set_power_d0`) for `ms`
    /// while the return runs on another thread: the binding runs again
    /// and the driver has not heard of D0 yet (`gen/knobs.rs`).
    HeldD0 {
        a: usize,
        ms: u32,
    },
    /// A stall of `ms` aimed at the `nth` (from 1) spin-lock acquire a
    /// thread makes inside handler `handler` (an index into ndisim's
    /// `slow::HANDLERS`: a `Protocol*` handler, a dispatch routine, the
    /// work item's or a cancel routine), counted from when the action
    /// runs (`Sim::stall_lock_acquire`), armed until the next such aim or
    /// the end of the schedule's body: that thread waits before the lock,
    /// holding the locks it holds, while the PnP event drawn right after
    /// this action, requests and completions run on the others
    /// (`gen/knobs.rs`). In the PnP actor's list, whose events pace the
    /// schedule in virtual time: the NIC actor's spells and bursts often
    /// come when the handle threads are done.
    StallLockAcquire {
        handler: u8,
        nth: u8,
        ms: u32,
    },
    /// A stall of `ms` aimed at the `nth` (from 1) call of one export a
    /// thread makes inside handler `handler` (as `StallLockAcquire`):
    /// when `pick` is 0, of any export; else of the `(pick - 1)`th (modulo
    /// their number) of the exports the run has seen the driver call inside
    /// that handler so far (`Sim::calls_made_in`; any, if none yet), by
    /// name. Before the export's body or `after` it (`Sim::stall_call`),
    /// armed until the next such aim or the end of the schedule's body: a
    /// thread that has just completed an IRP, handed NBLs over, completed
    /// a PnP event or released a lock waits there while the PnP event
    /// drawn right after this action and the other threads run
    /// (`gen/knobs.rs`).
    StallCall {
        handler: u8,
        pick: u16,
        nth: u16,
        after: bool,
        ms: u32,
    },
}

impl PnpAction {
    /// The adapter the action is for, if one.
    pub fn adapter(&self) -> Option<usize> {
        match self {
            PnpAction::Pause { a }
            | PnpAction::Restart { a, .. }
            | PnpAction::Unbind { a }
            | PnpAction::Bind { a }
            | PnpAction::Link { a, .. }
            | PnpAction::Power { a, .. }
            | PnpAction::InOidCall { a, .. }
            | PnpAction::HeldD0 { a, .. } => Some(*a),
            PnpAction::Event { a, .. } => *a,
            PnpAction::BindAll
            | PnpAction::Sleep { .. }
            | PnpAction::Uninstall
            | PnpAction::StallLockAcquire { .. }
            | PnpAction::StallCall { .. } => None,
        }
    }
}

/// What arrives while a driver's OID call is inside `NdisOidRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InCall {
    /// `NetEventSetPower` for D3 (the driver must pend it until the call
    /// leaves).
    PowerDown,
    /// `NetEventSetPower` for D0.
    PowerUp,
    Pause,
    Unbind,
}

/// A tag in a frame's bytes: its protocol identifier (0x8100 for 802.1Q,
/// 0x88a8 for 802.1ad) and its TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineTag {
    pub tpid: u16,
    pub tci: u16,
}

/// How an injected frame lies in MDLs: unused bytes before it in the
/// first MDL, how much of it the first MDL holds (0: `chunk`'s worth), the
/// size of the MDLs after (0: one for the rest), and whether they are
/// mapped yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Layout {
    pub headroom: u16,
    pub first: u16,
    pub chunk: u16,
    /// Locked pages the protocol must map (which may fail).
    #[serde(default)]
    pub unmapped: bool,
    /// The headroom is an MDL of its own before the frame's.
    #[serde(default)]
    pub headroom_mdl: bool,
    /// With `headroom_mdl`: the headroom cut into this many MDLs, so the
    /// data starts deep in the chain (`ndisim::NbLayout::headroom_mdls`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub headroom_mdls: u8,
    /// With `headroom_mdl`: bytes of the headroom left in the data's first
    /// MDL (`CurrentMdlOffset` not 0 in an MDL not the chain's first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current_offset: u16,
    /// A zero-length MDL before each MDL and after the last.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub empty_mdls: bool,
    /// The last MDL goes on this many bytes past the frame.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tail: u16,
    /// Each MDL after the chain's first begins this many bytes past where
    /// the one before it ended (`ndisim::NbLayout::spread`): the chain is
    /// not one run of memory, as a NIC's separate receive buffers are not,
    /// and a read past an MDL's end finds a pattern, not the frame.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spread: u16,
}

impl Layout {
    /// The layout as ndisim lays a frame out.
    pub fn nb_layout(self) -> ndisim::NbLayout {
        ndisim::NbLayout {
            headroom: self.headroom,
            first: self.first,
            chunk: self.chunk,
            unmapped: self.unmapped,
            headroom_mdl: self.headroom_mdl,
            headroom_mdls: self.headroom_mdls,
            current_offset: self.current_offset,
            empty_mdls: self.empty_mdls,
            tail: self.tail,
            spread: self.spread,
        }
    }
}

/// The shapes of one receive burst beyond `nbls`, `nbs`, `tci` and
/// `layout` (`ndisim::InjectOpts`'s per-NBL and per-frame lists): each
/// list empty means the burst's single value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Shape {
    /// NBL `k` of the burst holds `sizes[k % len]` NET_BUFFERs (`nbl_sizes`;
    /// none is 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<u8>,
    /// NBL `k`'s 802.1Q info is `tcis[k % len]` (None: no info).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcis: Vec<Option<u16>>,
    /// Frame `i` of the burst lies as `layouts[i % len]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layouts: Vec<Layout>,
    /// NBL `k` is looped back (`NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`) when
    /// `loopbacks[k % len]`, instead of as `loopback` says: one indication
    /// mixes NDIS's loopbacks with frames from the wire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loopbacks: Vec<bool>,
    /// NBL `k` carries `coalesces[k % len]` (None: a plain NBL): coalesced
    /// units among plain NBLs. Every NBL given one holds one NET_BUFFER,
    /// and URO is drawn only for adapters with `uro=on`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coalesces: Vec<Option<Coalesced>>,
    /// Frame `i` of the burst is sent to `dsts[i % len]` instead of the
    /// burst's `dst`: one indication mixes destination classes, as a NIC's
    /// receive DPC does (`gen/shapes.rs`'s `mixed_bursts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dsts: Vec<Dst>,
    /// Frame `i` is of EtherType IPv4 (0x0800), not the schedule's, when
    /// `foreign[i % len]`: not a schedule frame (the oracle checks only
    /// that it reaches no handle whose EtherType list leaves it out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign: Vec<bool>,
}

/// Receive offload info an injected NBL carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Coalesced {
    /// RSC (TCP): `segs` segments (0: the info is there but says "not
    /// coalesced").
    Rsc { segs: u16 },
    /// URO (UDP): `segs` datagrams (0: not counted) of `size` bytes; only on
    /// adapters with `uro=on`, refused elsewhere.
    Uro { segs: u16, size: u16 },
}

/// A send completion policy, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    Immediate,
    Batch(u16),
    Reorder(u16),
    Delay(u16),
    /// Each send's NBLs shuffled, in pieces, some inside the send call and
    /// some from DPCs, the DISPATCH_LEVEL flag clear half the time
    /// (ndisim's `completion=scatter`).
    Scatter,
}

/// The miniport below the binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NicAction {
    /// Hold send completions for `ms`, then give them back (in `parts`
    /// releases).
    HoldSends {
        a: usize,
        ms: u32,
        parts: u8,
    },
    /// Hold OID completions for `ms`, then give them back: in the order
    /// the driver made them, or (`reverse`) the last first, as a miniport
    /// (or a filter below the protocol) may complete them.
    HoldOids {
        a: usize,
        ms: u32,
        #[serde(default)]
        reverse: bool,
    },
    /// A receive burst: `count` frames of `len` bytes, `nbls` NBLs per
    /// indication and `nbs` frames per NBL.
    Inject {
        a: usize,
        count: u16,
        len: u16,
        resources: bool,
        nbls: u8,
        nbs: u8,
        passive: bool,
        tci: Option<u16>,
        dst: Dst,
        /// Marked as NDIS's loopback of another protocol's send.
        #[serde(default)]
        loopback: bool,
        /// Each frame a unit the NIC coalesced (RSC or URO info on its NBL).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coalesce: Option<Coalesced>,
        /// How each frame lies in its NET_BUFFER's MDLs (`ndisim::NbLayout`):
        /// headroom, the first MDL's share of the frame, the rest's MDL size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layout: Option<Layout>,
        /// NBLs of different sizes, each with its own 802.1Q info, frames
        /// each in its own MDL layout (`gen/shapes.rs`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shape: Option<Shape>,
        /// Each frame carries this tag inline, after its addresses (an
        /// 802.1Q or 802.1ad tag the NIC left in the frame; `gen/tags.rs`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inline: Option<InlineTag>,
    },
    /// Every `NdisOidRequest` call on `a` stalls on entry, inside the call
    /// and before NDIS looks at the request, for `ms`
    /// (`Sim::stall_oid_calls`): the driver's thread stays in the call
    /// while PnP events, pauses and closes arrive.
    StallOidCalls {
        a: usize,
        ms: u32,
    },
    /// Every `NdisOidRequest` call on `a` stalls at its end, after NDIS
    /// answered it (and after its completion, when the miniport completed
    /// it inside the call), for `ms` (`Sim::stall_oid_returns`): the
    /// driver's thread is still in the call when all it asked for is done,
    /// while closes, unbinds and PnP events come.
    StallOidReturns {
        a: usize,
        ms: u32,
    },
    /// Every cancel routine stalls where it lets go of the cancel spin
    /// lock, the lock still held, for `ms` (`Sim::stall_cancel_routines`):
    /// completions on other threads come while a cancel routine runs.
    StallCancels {
        ms: u32,
    },
    /// The system worker thread held for `ms` (`Sim::hold_work_items`):
    /// the driver's work items (`IoQueueWorkItem`) wait, then run
    /// (`gen/knobs.rs`).
    HoldWorkItems {
        ms: u32,
    },
    /// Every pool allocation of one size stalls inside
    /// `ExAllocatePoolWithTag` for `ms` (`Sim::stall_pool_allocations_of`):
    /// of `bytes` when not 0 (a size the schedule's own requests make the
    /// driver allocate), else of the `pick`th (modulo their number) of the
    /// distinct sizes of the driver's pool blocks live when the action
    /// runs (`Sim::live_pool_sizes`), smallest first (`gen/knobs.rs`).
    StallAllocations {
        bytes: u32,
        pick: u16,
        ms: u32,
    },
    Completion {
        a: usize,
        policy: Policy,
    },
    /// A status indication of `code` with `len` bytes of garbage (none
    /// when 0), at PASSIVE_LEVEL when `passive`.
    Status {
        a: usize,
        code: i32,
        len: u16,
        passive: bool,
    },
    /// The miniport fails these OIDs with `NDIS_STATUS_FAILURE` for `ms`,
    /// then answers them again; when `busy`, with `NDIS_STATUS_RESOURCES`
    /// (a passing shortage), at most `busy` times each within the `ms`.
    FailOids {
        a: usize,
        oids: Vec<u32>,
        ms: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        busy: u8,
    },
    Sleep {
        ms: u32,
    },
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl NicAction {
    /// A hold of `a`'s OIDs for `ms`, given back the last first when `ms`
    /// is odd (no draw of its own, so a seed keeps its other actions).
    pub fn hold_oids(a: usize, ms: u32) -> Self {
        NicAction::HoldOids { a, ms, reverse: ms % 2 == 1 }
    }
}
