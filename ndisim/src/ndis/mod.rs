//! The emulated NDIS: protocol registration, bindings and their PnP events,
//! NBL pools, the send and receive paths, OID requests and status
//! indications, each checked against the documented rules.

use crate::adapter::{self, CompletionPolicy, Frame, Model};
use crate::kernel::{self, Kernel};
use crate::nbl::{self};
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

mod bind;
mod export_call;
mod failed;
mod handler_calls;
mod in_call;
mod in_handler;
mod inject;
pub(crate) mod lent;
mod nb_pool;
mod offload;
mod oid;
mod ops;
use ops::{Op, OpKind};
pub(crate) mod owned;
mod pnp;
mod pool;
mod recv;
mod reenum;
mod register;
mod rx_flags;
mod rx_pool;
mod send;
mod status;
mod teardown;
mod versions;

pub(crate) use bind::*;
pub(crate) use export_call::{export, export_yield_after, in_export, stall_while};
pub(crate) use handler_calls::CallGuard;
pub use inject::{InjectOpts, NbLayout};
pub(crate) use nb_pool::*;
pub(crate) use offload::*;
pub use offload::{Coalesce, DEFAULT_NDIS_VERSION};
pub(crate) use oid::*;
pub use oid::{HeldOid, SetAnswer, statistics_info};
pub(crate) use pnp::*;
pub use pnp::{OTHER_EVENTS, SUPPORTED_OIDS};
pub(crate) use pool::*;
pub(crate) use recv::*;
pub(crate) use reenum::*;
pub(crate) use register::*;
pub(crate) use send::*;
pub(crate) use status::*;
pub(crate) use teardown::{end_test_holds, free_everything, leak_check};
pub(crate) use versions::*;

const PROTOCOL_MAGIC: u64 = 0x4C4F_434F_544F_5250; // "PROTOCOL"
const BINDING_MAGIC: u64 = 0x474E_4944_4E49_4244; // "DBINDING"
const POOL_MAGIC: u64 = 0x4C4F_4F50_4C42_4E44; // "DNBLPOOL"
const BINDCTX_MAGIC: u64 = 0x5854_4344_4E49_4242; // "BBINDCTX"
const UNBINDCTX_MAGIC: u64 = 0x5854_4344_4E42_4E55; // "UNBNDCTX"

/// Binding states, as NDIS sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingState {
    /// No binding (never bound, failed, or unbound).
    Unbound,
    Opening,
    Paused,
    Restarting,
    Running,
    Pausing,
    Closing,
}

/// The registered protocol.
#[allow(dead_code)]
pub(crate) struct Protocol {
    pub magic: u64,
    pub chars: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    pub ctx: usize,
    pub name: String,
}

// SAFETY: the characteristics are a copy of plain values and function
// pointers into the driver image; the name buffer is only read.
unsafe impl Send for Protocol {}
// SAFETY: as above; nothing in it is mutated after registration.
unsafe impl Sync for Protocol {}

/// One open of an adapter by the protocol. Its address is the
/// `NdisBindingHandle`.
#[repr(C)]
pub(crate) struct Binding {
    pub magic: u64,
    pub adapter: usize,
    pub ctx: usize,
    pub proto: Arc<Protocol>,
    pub name: String,
    pub state: Mutex<BindingState>,
    pub running: AtomicBool,
    /// A pause is being delivered (from NDIS's move to Pausing until the
    /// pause handler returns): sends racing with it are tolerated (NDIS
    /// passes them down, or fails them).
    pub pause_in_handler: AtomicBool,
    /// `NdisCloseAdapterEx` was called: the handle is no longer valid.
    pub closed: AtomicBool,
    /// `NdisCloseAdapterEx` was entered (`closed` is set later, after it
    /// waited for the indications): from here on the handle may not be
    /// used, even while that call still runs.
    pub close_called: AtomicBool,
    pub close_completed: AtomicBool,
    pub sends: AtomicU64,
    /// Send NBLs given back whose completion handler has not returned yet
    /// (the driver may still be counting them).
    pub completing: AtomicU64,
    /// Frames (NET_BUFFERs) of sends given back with NDIS_STATUS_SUCCESS,
    /// and with another status.
    pub sent_ok: AtomicU64,
    pub sent_failed: AtomicU64,
    /// Receive NBLs indicated and not yet returned (during the handler and
    /// after it).
    pub recvs: AtomicU64,
    /// Of those, the ones the driver kept after its receive handler
    /// returned. Counted after the NBL is marked kept (and uncounted when it
    /// comes back), so it may read one low for an instant, never one high:
    /// the pause check must not blame the driver for ndisim's bookkeeping.
    pub retained: std::sync::atomic::AtomicI64,
    pub oids: AtomicU64,
    /// NDIS's calls into the binding's handlers running now, times two;
    /// bit 0 is set once `NdisCloseAdapterEx` began (no new receive or
    /// status indication starts then, and the close waits for the calls
    /// running to return, as NDIS's own references do).
    pub calls: AtomicU64,
    /// Where a pause stands (`PAUSE_*`).
    pub pause_phase: std::sync::atomic::AtomicU8,
    /// Restarts completed: an indication during which one completed may
    /// have seen the binding Running, whatever the phase when it began.
    pub restarts: AtomicU64,
    /// The open is complete: `NdisOpenAdapterEx` returned success, or NDIS
    /// is calling `ProtocolOpenAdapterCompleteEx` (requests on the handle
    /// before that are refused, `NDIS_STATUS_ADAPTER_NOT_READY`).
    pub open_done: AtomicBool,
    /// The driver's calls that take the binding handle running now: those
    /// but `NdisReturnNetBufferLists`, and the returns (rule
    /// close-during-call, `in_call`). A call is in one count only, so a
    /// close that reads both never sees one moving between them.
    pub in_calls: AtomicU64,
    pub in_returns: AtomicU64,
}

/// A PnP event of binding `b` completed with `status`: NDIS's state moves
/// (a pause to Paused; a restart to Running, or back to Paused if it
/// failed; a set power to D1-D3 puts the adapter in low power, so an OID
/// request or a send the driver makes from then on is one the adapter in
/// low power gets). `power` is a set-power event's device state.
pub(crate) fn pnp_done(b: &Binding, (event, power): (u32, u32), status: NDIS_STATUS) {
    match event {
        NetEventSetPower if power > NetDeviceStateD0 => {
            if let Some(k) = kernel::kernel() {
                lock(&k.ndis.adapter(b.adapter).model).powered = false;
            }
        }
        NetEventPause => {
            b.pause_phase.store(PAUSE_DONE, Ordering::Release);
            b.set_state(BindingState::Paused);
        }
        NetEventRestart if status == NDIS_STATUS_SUCCESS => {
            b.restarts.fetch_add(1, Ordering::AcqRel);
            b.pause_phase.store(PAUSE_NONE, Ordering::Release);
            b.set_state(BindingState::Running);
        }
        NetEventRestart => b.set_state(BindingState::Paused),
        _ => {}
    }
}

/// No pause (Running, or restarted).
pub(crate) const PAUSE_NONE: u8 = 0;
/// The pause handler is running.
pub(crate) const PAUSE_IN_HANDLER: u8 = 1;
/// The pause handler returned NDIS_STATUS_PENDING: the driver knows.
pub(crate) const PAUSE_PENDING: u8 = 2;
/// The pause completed.
pub(crate) const PAUSE_DONE: u8 = 3;

impl Binding {
    pub(crate) fn state(&self) -> BindingState {
        *lock(&self.state)
    }
    fn set_state(&self, s: BindingState) {
        *lock(&self.state) = s;
        self.running.store(s == BindingState::Running, Ordering::Release);
    }
    fn handle(&self) -> NDIS_HANDLE {
        self as *const Binding as NDIS_HANDLE
    }
}

/// An NBL pool. Its address is the pool handle.
#[repr(C)]
pub(crate) struct NblPool {
    pub magic: u64,
    pub tag: u32,
    pub context_size: u16,
    pub alloc_nb: bool,
    /// The pool's `DataSize`: NDIS preallocates data of this size with
    /// each NET_BUFFER (0: none).
    pub data_size: u32,
    pub freed: AtomicBool,
    pub live: AtomicUsize,
    pub free_list: Mutex<Vec<usize>>,
    pub all: Mutex<Vec<usize>>,
}

/// Bind context: what NDIS keeps for one `ProtocolBindAdapterEx` call.
#[repr(C)]
struct BindCtx {
    magic: u64,
    adapter: usize,
    opened: Mutex<Option<Arc<Binding>>>,
    params: NDIS_BIND_PARAMETERS,
    adapter_name: UNICODE_STRING,
    name_buf: Vec<u16>,
    section: UNICODE_STRING,
    section_buf: Vec<u16>,
    rss: Box<[u8; 16]>,
}

// SAFETY: the raw pointers point into the block itself, which lives until
// the bind is finished.
unsafe impl Send for BindCtx {}
// SAFETY: as above.
unsafe impl Sync for BindCtx {}

/// Statistics NDIS keeps.
#[derive(Debug, Default)]
pub(crate) struct NdisStats {
    pub in_flight: AtomicU64,
    pub in_flight_peak: AtomicU64,
    pub sends: AtomicU64,
    pub indications: AtomicU64,
    /// `NdisReEnumerateProtocolBindings` calls made where allowed.
    pub reenumerations: AtomicU64,
    /// `ProtocolBindAdapterEx` calls begun.
    pub binds_begun: AtomicU64,
    /// Indications to a binding NDIS was restarting.
    pub indications_restarting: AtomicU64,
    /// Indications with `NDIS_RECEIVE_FLAGS_RESOURCES` because the
    /// miniport ran low on receive buffers (`AdapterSpec::rx_buffers`).
    pub indications_low: AtomicU64,
    /// Indications to a binding whose driver had called
    /// `NdisCloseAdapterEx` (a close still pending).
    pub indications_closing: AtomicU64,
    /// Receive NBLs indicated (without NDIS_RECEIVE_FLAGS_RESOURCES) and not
    /// yet returned, and the most at once.
    pub recv_held: AtomicU64,
    pub recv_held_peak: AtomicU64,
}

/// A pending OID request.
struct PendingOid {
    req: usize,
    /// Which submission (a driver may reuse the memory of a completed
    /// request for the next one: a late cancel or completion of the first
    /// must not reach the second).
    seq: u64,
    request_id: usize,
    binding: Arc<Binding>,
    /// `oid::request_fields` at submission.
    fields: oid::RequestFields,
    /// A query's answer made when it arrived
    /// (`Sim::answer_queries_on_arrival`), written at the completion.
    early: Option<oid::Answer>,
}

/// Receive buffers of one NBL of an adapter's receive pool.
pub(crate) struct RecvSlot {
    nbl: *mut NET_BUFFER_LIST,
    nbs: Vec<RecvNb>,
    returned_sum: u64,
    /// `nbl::received_checksum` as indicated (0: not taken), and in which
    /// mode.
    indicated_sum: u64,
    indicated_mode: crate::verifier::Checksum,
    /// `Adapter::low_begun` when the driver kept the NBL past its handler
    /// (rule retained-when-low).
    kept_at: AtomicU64,
}

struct RecvNb {
    nb: *mut NET_BUFFER,
    buf: Vec<u8>,
    /// Describes all of `buf` (a frame in the whole layout).
    mdl: *mut MDL,
    /// `mdl`'s fields a driver must not write, as built: checked when the
    /// NBL comes back (`rx_pool::check_mdls`), since the MDL is reused.
    built: rx_pool::MdlFields,
    /// `rx_pool::mdl_sig` of `built`.
    sig: u64,
    /// The chain of the last frame put here in another layout.
    shaped: Vec<*mut MDL>,
}

impl Drop for RecvSlot {
    fn drop(&mut self) {
        for n in &self.nbs {
            // SAFETY: built in `new_nb`; freed once here.
            unsafe {
                nbl::free_mdl(n.mdl);
                for &m in &n.shaped {
                    nbl::free_mdl(m);
                }
                drop(Box::from_raw(n.nb.cast::<NbBox>()));
            }
        }
        // SAFETY: allocated by `alloc_nbl` for this slot only.
        unsafe { nbl::free_block(self.nbl) };
    }
}

#[repr(C, align(16))]
struct NbBox(NET_BUFFER);

/// A runtime adapter.
pub(crate) struct Adapter {
    pub idx: usize,
    pub name: String,
    pub ndis_name: Vec<u16>,
    pub desc: String,
    pub spec: adapter::AdapterSpec,
    pub model: Mutex<Model>,
    /// The largest frame without an 802.1Q tag inline that a protocol may
    /// send (rule send-oversize): the model's MTU plus the 14-byte header,
    /// kept beside the model so that a send does not take its lock.
    pub max_frame: std::sync::atomic::AtomicUsize,
    pub binding: Mutex<Option<Arc<Binding>>>,
    /// The binding whose open succeeded while its bind has not completed
    /// (status indications reach it: `status_binding`), and the
    /// `bind-status` indications queued or running (`status::opened`).
    pub opening: Mutex<Option<Arc<Binding>>>,
    pub status_jobs: AtomicU64,
    /// Held across a link change of the model and its indication
    /// (`status::LinkGate`): the miniport's link changes reach the
    /// binding in the order the model took them.
    pub link_gate: AtomicBool,
    /// Status indications that began before the bind of their binding
    /// completed.
    pub statuses_in_bind: AtomicU64,
    pub policy: Mutex<CompletionPolicy>,
    pub held: Mutex<Vec<usize>>,
    pub oid_hold: AtomicBool,
    /// A pending query is answered from the adapter's state when it
    /// arrives, not when it completes (`Sim::answer_queries_on_arrival`).
    pub oid_answer_on_arrival: AtomicBool,
    /// `NdisOidRequest` calls on the adapter wait on entry, before NDIS
    /// looks at the request, until `Sim::release_oid_calls`; and how many
    /// wait now (`stall_oid_call`).
    pub oid_stall: AtomicBool,
    pub oid_stalled: AtomicU64,
    /// The same on the way out: every `NdisOidRequest` on the adapter waits
    /// just before it returns, its answer given (a request completed in
    /// the call has been completed), until `Sim::release_oid_returns`.
    pub oid_stall_return: AtomicBool,
    pub oid_stalled_return: AtomicU64,
    /// `NdisSendNetBufferLists` calls on the adapter wait inside the call,
    /// before NDIS walks the chain, until `Sim::release_send_calls`; and
    /// how many wait now (`send::stall_send_call`).
    pub send_stall: AtomicBool,
    pub send_stalled: AtomicU64,
    /// A return to D0 waits between its restart (completed) and its
    /// `NetEventSetPower` for D0 until `Sim::release_set_power_d0`; and
    /// how many wait now (`pnp::hold_set_power_d0`).
    pub d0_hold: AtomicBool,
    pub d0_held: AtomicU64,
    /// Held by a PnP call of the harness on the adapter (`Sim::pause`,
    /// `restart`, `unbind`, `bind`, `set_power`, `pnp_event`,
    /// `serve_reenumeration`) for its whole length: NDIS sends one PnP
    /// event of a miniport at a time (`pnp::PnpGate`).
    pub pnp_gate: AtomicBool,
    /// The unload ended the test's holds while the binding ran: what the
    /// adapter still holds (sends, OID requests) is given back once the
    /// binding's next pause begins (`teardown::end_test_holds`).
    pub give_back: AtomicBool,
    pub captured: Mutex<Vec<Frame>>,
    /// The frames of sends NDIS or the miniport failed, while capturing
    /// (`failed.rs`).
    pub failed_sends: Mutex<Vec<Vec<u8>>>,
    pub capture: AtomicBool,
    /// Does 802.1Q in hardware: starts as `spec.vlan`; `Sim::set_vlan`
    /// changes it at once (what it advertises changes at the next bind or
    /// restart).
    pub vlan: AtomicBool,
    /// URO is on: the adapter has it (`spec.uro`) and NDIS left it on when
    /// the protocol bound (see `offload`).
    pub uro: AtomicBool,
    pub rx: adapter::RxQueue,
    recv_free: Mutex<Vec<usize>>,
    recv_all: Mutex<Vec<usize>>,
    /// Receive slots out: taken for an indication and not yet back.
    recv_out: AtomicU64,
    /// Indications the miniport began because it was low on receive
    /// buffers (`AdapterSpec::rx_buffers`), and the last of them whose
    /// handler returned (rule retained-when-low).
    low_begun: AtomicU64,
    low_done: AtomicU64,
    /// Receive handlers running on the adapter's binding.
    in_handler: AtomicU64,
    /// Rule retained-when-low was reported (once per adapter).
    low_reported: AtomicBool,
    pub peer: OnceLock<usize>,
    pub tap: Option<adapter::Tap>,
    pub counters: adapter::Counters,
    /// Was Running before a low-power transition.
    pub resume_running: AtomicBool,
    /// OIDs this adapter fails with `NDIS_STATUS_FAILURE` (tests make a
    /// restart fail with it).
    pub failing_oids: Mutex<Vec<u32>>,
    /// OIDs this adapter answers `NDIS_STATUS_RESOURCES` for, each the
    /// given number of times more (a passing shortage in the miniport).
    pub busy_oids: Mutex<Vec<(u32, u64)>>,
    /// OID requests failed so.
    pub oids_failed: std::sync::atomic::AtomicU64,
    /// Sets of the multicast list the adapter failed, for any reason.
    pub multicast_sets_failed: std::sync::atomic::AtomicU64,
    /// Sets of the packet filter the adapter failed, other than for want
    /// of resources (`NDIS_STATUS_RESOURCES`, a passing shortage) or by a
    /// cancel.
    pub filter_sets_failed: std::sync::atomic::AtomicU64,
    /// NBLs NDIS looped back from a send that a protocol kept past its
    /// receive handler (legal; the sender's completion waits for them).
    pub loopbacks_kept: std::sync::atomic::AtomicU64,
    /// Sends looked at for `send-fail`.
    pub send_draws: std::sync::atomic::AtomicU64,
    /// Draws for `AdapterSpec::reindicate` (a count, so runs replay).
    pub reindicate_draws: std::sync::atomic::AtomicU64,
    /// Draws for `AdapterSpec::cancel_ignore`.
    pub cancel_draws: std::sync::atomic::AtomicU64,
    /// Draws for `CompletionPolicy::Scatter`.
    pub scatter_draws: std::sync::atomic::AtomicU64,
    /// Draws for the informational receive flags (`recv::info_flags`).
    pub info_draws: std::sync::atomic::AtomicU64,
    /// Every OID request the driver made: (request type, OID, buffer
    /// length, whether the buffer was NULL).
    pub oid_log: Mutex<Vec<(u32, u32, u32, bool)>>,
    /// Every set the miniport answered, in order.
    pub set_answers: Mutex<Vec<oid::SetAnswer>>,
    /// Every PnP event delivered to the adapter's binding: (event code,
    /// pause reason or power state, else 0).
    pub pnp_log: Mutex<Vec<(u32, u32)>>,
    /// Whether NDIS owes the adapter a bind (`reenum`: `REBIND_*`).
    pub rebind: std::sync::atomic::AtomicU8,
    /// `NdisOpenAdapterEx` calls on the adapter (for `open=fail-once`).
    pub opens: AtomicU64,
}

// SAFETY: receive slot pointers are only used under the adapter's locks or
// by the thread that took them from the free list.
unsafe impl Send for Adapter {}
// SAFETY: as above.
unsafe impl Sync for Adapter {}

impl Drop for Adapter {
    fn drop(&mut self) {
        for &s in lock(&self.recv_all).iter() {
            // SAFETY: each slot was leaked from a Box in `new_slot`.
            unsafe { drop(Box::from_raw(s as *mut RecvSlot)) };
        }
    }
}

/// What a restart tells the binding.
#[derive(Debug, Clone, Default)]
pub struct RestartSpec {
    /// A new MTU for the adapter.
    pub mtu: Option<u32>,
    /// Names of filter modules to list in the restart parameters.
    pub filter_modules: Vec<String>,
    /// Link state to set before restarting.
    pub link: Option<bool>,
    /// The packet filters the miniport advertises from this restart on
    /// (in the restart's general attributes, in later binds' parameters,
    /// and for its packet-filter sets): the stack below may change while
    /// the binding is paused, a filter module inserted or removed.
    pub supported_filters: Option<u32>,
    /// Revision of `NDIS_RESTART_GENERAL_ATTRIBUTES` (1 or 2; default 2).
    pub general_revision: Option<u8>,
    /// Extra restart attribute elements (OID, data) after the general one.
    pub extra_attributes: Vec<(u32, Vec<u8>)>,
    /// `BufferLength` of the notification (default: the size of
    /// `NDIS_PROTOCOL_RESTART_PARAMETERS`, tail padding included; NDIS may
    /// pass the revision 1 size, 0x34).
    pub params_length: Option<u32>,
}

/// What `NdisRegisterProtocolDriver` does besides registering.
#[derive(Debug, Clone, Default)]
pub struct RegistrationSpec {
    /// Open the driver's device as an administrator first (another thread
    /// may open it at any time once DO_DEVICE_INITIALIZING is clear): the
    /// open's status, and the file while it stays open, are kept.
    pub open_first: bool,
    /// The status that open got.
    pub opened: Option<NTSTATUS>,
    /// Fail the registration with this status (as NDIS does without
    /// resources) after checking the characteristics.
    pub refuse: Option<NDIS_STATUS>,
}

/// Why an operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The adapter is not in a state for it (with the state).
    State(String),
    /// The driver failed it with this status.
    Status(NDIS_STATUS),
    /// The driver did not complete it within the watchdog time.
    Watchdog(String),
    /// Something else, described.
    Other(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::State(s) => write!(f, "wrong state: {s}"),
            SimError::Status(s) => write!(f, "the driver failed it with status {:#010x}", *s as u32),
            SimError::Watchdog(s) => write!(f, "watchdog: {s}"),
            SimError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for SimError {}

/// NDIS's state in one simulation.
pub(crate) struct Ndis {
    pub protocol: Mutex<Option<Arc<Protocol>>>,
    pub adapters: OnceLock<Vec<Arc<Adapter>>>,
    ops: Mutex<Vec<Op>>,
    ops_cv: Condvar,
    pools: Mutex<Vec<Arc<NblPool>>>,
    nb_pools: Mutex<Vec<Arc<NbPool>>>,
    pub mdls: Mutex<HashSet<usize>>,
    pub rwlocks: Mutex<HashSet<usize>>,
    /// What bind handlers allocated (`owned`): object -> (its bind's
    /// context, then its binding; its kind).
    bind_owned: Mutex<std::collections::HashMap<usize, (usize, &'static str)>>,
    /// Where the driver's `NDIS_SPIN_LOCK`s are (`NdisAllocateSpinLock`
    /// until `NdisFreeSpinLock` or the free of their pool block).
    pub spin_locks: Mutex<std::collections::BTreeSet<usize>>,
    bindings: Mutex<Vec<Arc<Binding>>>,
    oids: Mutex<Vec<PendingOid>>,
    /// Status indications' buffers (`lent`).
    pub lent: lent::Lent,
    /// PnP notifications and bind and unbind contexts, kept until the
    /// simulation ends (`kept`).
    pub kept: crate::kept::Kept,
    pub stats: NdisStats,
    pub binds_completed: AtomicBool,
    /// Bind adapters from inside `NdisRegisterProtocolDriver` (the
    /// documentation: "must be prepared for an immediate call to any of
    /// their ProtocolXxx functions").
    pub bind_during_registration: AtomicBool,
    /// What happens at `NdisRegisterProtocolDriver` (`SimBuilder`): a user
    /// opens the device first, and NDIS refuses the registration.
    pub registration: Mutex<RegistrationSpec>,
    pub registered_once: AtomicBool,
    /// The NDIS versions the emulated Windows has (`offload`).
    pub versions: Versions,
}

thread_local! {
    static SCRATCH: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn wstr(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn ustr(buf: &[u16]) -> UNICODE_STRING {
    let n = buf.len().saturating_sub(1);
    UNICODE_STRING { Length: (n * 2) as u16, MaximumLength: (buf.len() * 2) as u16, Buffer: buf.as_ptr().cast_mut() }
}

/// # Safety
/// `s` is null or a valid UNICODE_STRING.
pub(crate) unsafe fn read_ustr(s: *const UNICODE_STRING) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: per the caller.
    let s = unsafe { &*s };
    if s.Buffer.is_null() {
        return Some(String::new());
    }
    // SAFETY: the buffer holds `Length` bytes.
    Some(String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(s.Buffer, s.Length as usize / 2) }))
}

impl Ndis {
    pub(crate) fn new() -> Self {
        Ndis {
            protocol: Mutex::new(None),
            adapters: OnceLock::new(),
            ops: Mutex::new(Vec::new()),
            ops_cv: Condvar::new(),
            pools: Mutex::new(Vec::new()),
            nb_pools: Mutex::new(Vec::new()),
            mdls: Mutex::new(HashSet::new()),
            rwlocks: Mutex::new(HashSet::new()),
            bind_owned: Mutex::new(std::collections::HashMap::new()),
            spin_locks: Mutex::new(std::collections::BTreeSet::new()),
            bindings: Mutex::new(Vec::new()),
            oids: Mutex::new(Vec::new()),
            lent: lent::Lent::default(),
            kept: crate::kept::Kept::default(),
            stats: NdisStats::default(),
            binds_completed: AtomicBool::new(false),
            bind_during_registration: AtomicBool::new(false),
            registration: Mutex::new(RegistrationSpec::default()),
            registered_once: AtomicBool::new(false),
            versions: Versions::new(),
        }
    }

    pub(crate) fn adapters(&self) -> &[Arc<Adapter>] {
        self.adapters.get().map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub(crate) fn protocol(&self) -> Option<Arc<Protocol>> {
        lock(&self.protocol).clone()
    }

    pub(super) fn binding_name(&self, b: usize) -> Option<String> {
        self.binding_at(b).map(|x| x.name.clone())
    }

    /// The binding at address `b`, while NDIS knows it.
    pub(super) fn binding_at(&self, b: usize) -> Option<Arc<Binding>> {
        lock(&self.bindings).iter().find(|x| Arc::as_ptr(x) as usize == b).cloned()
    }

    pub(crate) fn adapter(&self, idx: usize) -> &Arc<Adapter> {
        &self.adapters()[idx]
    }
}

impl Ndis {
    /// NBL pools the driver has not freed.
    pub(crate) fn live_pools(&self) -> usize {
        lock(&self.pools).iter().filter(|p| !p.freed.load(Ordering::Acquire)).count()
    }
}

/// Current outstanding counts of an adapter's binding.
pub(crate) fn outstanding(a: &Adapter) -> (u64, u64, u64) {
    match lock(&a.binding).as_ref() {
        Some(b) => (b.sends.load(Ordering::Acquire), b.recvs.load(Ordering::Acquire), b.oids.load(Ordering::Acquire)),
        None => (0, 0, 0),
    }
}
