//! The emulated NDIS: protocol registration, bindings and their PnP events,
//! NBL pools, the send and receive paths, OID requests and status
//! indications, each checked against the documented rules.

use crate::adapter::{self, Completion, CompletionPolicy, Frame, Model};
use crate::kernel::{self, call_driver, check_irql_eq, check_irql_max, irql, Kernel, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::nbl::{self, own};
use crate::verifier::{lock, Checksum, Rule, Violation};
use ndis_sys::*;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};


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
    /// The pause handler is executing: sends racing with its start are
    /// tolerated (NDIS passes them down).
    pub pause_in_handler: AtomicBool,
    /// `NdisCloseAdapterEx` was called: the handle is no longer valid.
    pub closed: AtomicBool,
    pub close_completed: AtomicBool,
    pub sends: AtomicU64,
    pub recvs: AtomicU64,
    pub oids: AtomicU64,
}

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
    pub freed: AtomicBool,
    pub live: AtomicUsize,
    pub free_list: Mutex<Vec<usize>>,
    pub all: Mutex<Vec<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Bind,
    Unbind,
    Pnp,
}

struct Op {
    abandoned: bool,
    kind: OpKind,
    key: usize,
    binding: usize,
    completed: Option<NDIS_STATUS>,
    returned: bool,
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
    /// Receive NBLs indicated (without NDIS_RECEIVE_FLAGS_RESOURCES) and not
    /// yet returned, and the most at once.
    pub recv_held: AtomicU64,
    pub recv_held_peak: AtomicU64,
}

/// A pending OID request.
struct PendingOid {
    req: usize,
    request_id: usize,
    binding: Arc<Binding>,
    status: NDIS_STATUS,
}

/// Receive buffers of one NBL of an adapter's receive pool.
pub(crate) struct RecvSlot {
    nbl: *mut NET_BUFFER_LIST,
    nbs: Vec<RecvNb>,
    returned_sum: u64,
}

struct RecvNb {
    nb: *mut NET_BUFFER,
    buf: Vec<u8>,
    mdl: *mut MDL,
}

impl Drop for RecvSlot {
    fn drop(&mut self) {
        for n in &self.nbs {
            // SAFETY: built in `new_nb`; freed once here.
            unsafe {
                nbl::free_mdl(n.mdl);
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
    pub binding: Mutex<Option<Arc<Binding>>>,
    pub policy: Mutex<CompletionPolicy>,
    pub held: Mutex<Vec<usize>>,
    pub oid_hold: AtomicBool,
    pub captured: Mutex<Vec<Frame>>,
    pub capture: AtomicBool,
    pub rx: adapter::RxQueue,
    recv_free: Mutex<Vec<usize>>,
    recv_all: Mutex<Vec<usize>>,
    pub peer: OnceLock<usize>,
    pub tap: Option<adapter::Tap>,
    pub counters: adapter::Counters,
    /// Was Running before a low-power transition.
    pub resume_running: AtomicBool,
    /// OIDs this adapter fails with `NDIS_STATUS_FAILURE` (tests make a
    /// restart fail with it).
    pub failing_oids: Mutex<Vec<u32>>,
    /// Every OID request the driver made: (request type, OID).
    pub oid_log: Mutex<Vec<(u32, u32)>>,
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

/// Options of a receive indication.
#[derive(Debug, Clone)]
pub struct InjectOpts {
    /// Indicate with `NDIS_RECEIVE_FLAGS_RESOURCES`: the driver may not keep
    /// the NBLs.
    pub resources: bool,
    /// NBLs per `ProtocolReceiveNetBufferLists` call.
    pub nbls_per_indication: usize,
    /// NET_BUFFERs (frames) per NBL.
    pub nbs_per_nbl: usize,
    /// Indicate at DISPATCH_LEVEL (with the flag) or PASSIVE_LEVEL.
    pub dispatch: bool,
    /// 802.1Q TCI to put in each NBL's info.
    pub tci: Option<u16>,
}

impl Default for InjectOpts {
    fn default() -> Self {
        InjectOpts { resources: false, nbls_per_indication: 1, nbs_per_nbl: 1, dispatch: true, tci: None }
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
    /// Revision of `NDIS_RESTART_GENERAL_ATTRIBUTES` (1 or 2; default 2).
    pub general_revision: Option<u8>,
    /// Extra restart attribute elements (OID, data) after the general one.
    pub extra_attributes: Vec<(u32, Vec<u8>)>,
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
    pub mdls: Mutex<HashSet<usize>>,
    pub rwlocks: Mutex<HashSet<usize>>,
    bindings: Mutex<Vec<Arc<Binding>>>,
    oids: Mutex<Vec<PendingOid>>,
    pub stats: NdisStats,
    pub binds_completed: AtomicBool,
    /// Bind adapters from inside `NdisRegisterProtocolDriver` (the
    /// documentation: "must be prepared for an immediate call to any of
    /// their ProtocolXxx functions").
    pub bind_during_registration: AtomicBool,
    pub registered_once: AtomicBool,
}

thread_local! {
    static SCRATCH: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Runs an export body: catches panics (recorded as internal errors) and
/// finds the simulation.
pub(crate) fn export<R>(call: &'static str, default: R, f: impl FnOnce(&'static Kernel) -> R) -> R {
    let Some(k) = kernel::kernel() else {
        kernel::internal_error(format!("{call} was called by a thread outside any simulation"));
        return default;
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(k))) {
        Ok(r) => r,
        Err(p) => {
            kernel::internal_panic(call, p);
            default
        }
    }
}

fn v(rule: Rule, call: &str, binding: Option<&Binding>, object: Option<usize>, detail: String) {
    kernel::report_violation(Violation { rule, call: call.into(), binding: binding.map(|b| b.name.clone()), object, detail });
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
            mdls: Mutex::new(HashSet::new()),
            rwlocks: Mutex::new(HashSet::new()),
            bindings: Mutex::new(Vec::new()),
            oids: Mutex::new(Vec::new()),
            stats: NdisStats::default(),
            binds_completed: AtomicBool::new(false),
            bind_during_registration: AtomicBool::new(false),
            registered_once: AtomicBool::new(false),
        }
    }

    pub(crate) fn adapters(&self) -> &[Arc<Adapter>] {
        self.adapters.get().map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub(crate) fn protocol(&self) -> Option<Arc<Protocol>> {
        lock(&self.protocol).clone()
    }

    /// The binding a handle names, checking it.
    fn binding(&self, h: NDIS_HANDLE, call: &str, allow_closed: bool) -> Option<&'static Binding> {
        let p = h as usize;
        if p < 0x10000 || p % 8 != 0 {
            v(Rule::InvalidParameter, call, None, Some(p), "NdisBindingHandle is not a binding handle NDIS gave out".into());
            return None;
        }
        // SAFETY: binding handles point at `Binding`s that live until the
        // simulation ends (kept in `bindings`); the magic rejects others.
        let b = unsafe { &*(p as *const Binding) };
        if b.magic != BINDING_MAGIC {
            v(Rule::InvalidParameter, call, None, Some(p), "NdisBindingHandle is not a binding handle NDIS gave out".into());
            return None;
        }
        if b.closed.load(Ordering::Acquire) && !allow_closed {
            v(Rule::InvalidParameter, call, Some(b), Some(p), "used a binding handle after NdisCloseAdapterEx (it is invalid from that call on)".into());
            return None;
        }
        Some(b)
    }

    fn op_begin(&self, kind: OpKind, key: usize, binding: usize) {
        lock(&self.ops).push(Op { abandoned: false, kind, key, binding, completed: None, returned: false });
    }

    /// A `NdisComplete*` call. False (and a violation) when no such
    /// operation is pending.
    fn op_complete(&self, kind: OpKind, key: usize, status: NDIS_STATUS, call: &str, b: Option<&Binding>) -> bool {
        let mut ops = lock(&self.ops);
        match ops.iter_mut().find(|o| o.kind == kind && o.key == key && o.completed.is_none()) {
            Some(o) => {
                o.completed = Some(status);
                let (abandoned, b, k2) = (o.abandoned, o.binding, o.key);
                if abandoned {
                    // Completed after the watchdog gave up: NDIS finishes
                    // the operation now (a late pause leaves the binding
                    // Paused).
                    ops.retain(|x| x.key != k2);
                    if b != 0 && kind == OpKind::Pnp {
                        // SAFETY: bindings live for the simulation.
                        let b = unsafe { &*(b as *const Binding) };
                        if b.state() == BindingState::Pausing {
                            b.set_state(BindingState::Paused);
                        }
                    }
                }
                self.ops_cv.notify_all();
                true
            }
            None => {
                drop(ops);
                v(Rule::UnexpectedCompletion, call, b, Some(key), format!("no {kind:?} operation with this context is waiting for completion (the handler did not return NDIS_STATUS_PENDING, or it was completed already)"));
                false
            }
        }
    }

    /// The handler returned `status`: the operation's final status, waiting
    /// for the completion call when it pended.
    fn op_returned(&self, k: &Kernel, kind: OpKind, key: usize, status: NDIS_STATUS, call: &str, what: &str) -> Result<NDIS_STATUS, SimError> {
        let mut ops = lock(&self.ops);
        let i = ops.iter().position(|o| o.kind == kind && o.key == key && !o.returned).expect("op begun");
        if status != NDIS_STATUS_PENDING {
            let o = ops.remove(i);
            drop(ops);
            if o.completed.is_some() {
                v(Rule::UnexpectedCompletion, call, None, Some(key), format!("{what}: the handler returned {status:#x} (not NDIS_STATUS_PENDING) but the driver also called the completion function"));
            }
            return Ok(status);
        }
        ops[i].returned = true;
        let deadline = Instant::now() + k.config.watchdog;
        loop {
            let i = ops.iter().position(|o| o.kind == kind && o.key == key && o.returned).expect("op present");
            if let Some(s) = ops[i].completed {
                ops.remove(i);
                return Ok(s);
            }
            let now = Instant::now();
            if now >= deadline {
                let b = ops[i].binding;
                ops[i].abandoned = true;
                drop(ops);
                let bname = self.binding_name(b);
                kernel::report_violation(Violation {
                    rule: Rule::Watchdog,
                    call: call.into(),
                    binding: bname,
                    object: Some(key),
                    detail: format!("{what} pended and was not completed within {} ms", k.config.watchdog.as_millis()),
                });
                return Err(SimError::Watchdog(format!("{what} did not complete within {} ms", k.config.watchdog.as_millis())));
            }
            ops = self.ops_cv.wait_timeout(ops, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn binding_name(&self, b: usize) -> Option<String> {
        lock(&self.bindings).iter().find(|x| Arc::as_ptr(x) as usize == b).map(|x| x.name.clone())
    }

    pub(crate) fn adapter(&self, idx: usize) -> &Arc<Adapter> {
        &self.adapters()[idx]
    }
}

// ===========================================================================
// Registration
// ===========================================================================

/// The handlers a protocol must supply.
const REQUIRED: &[&str] = &[
    "BindAdapterHandlerEx",
    "UnbindAdapterHandlerEx",
    "OpenAdapterCompleteHandlerEx",
    "CloseAdapterCompleteHandlerEx",
    "NetPnPEventHandler",
    "OidRequestCompleteHandler",
    "StatusHandlerEx",
    "ReceiveNetBufferListsHandler",
    "SendNetBufferListsCompleteHandler",
];

fn handler_addrs(c: &NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, rev2: bool) -> Vec<(&'static str, usize)> {
    let mut v = vec![
        ("SetOptionsHandler", c.SetOptionsHandler.map_or(0, |f| f as usize)),
        ("BindAdapterHandlerEx", c.BindAdapterHandlerEx.map_or(0, |f| f as usize)),
        ("UnbindAdapterHandlerEx", c.UnbindAdapterHandlerEx.map_or(0, |f| f as usize)),
        ("OpenAdapterCompleteHandlerEx", c.OpenAdapterCompleteHandlerEx.map_or(0, |f| f as usize)),
        ("CloseAdapterCompleteHandlerEx", c.CloseAdapterCompleteHandlerEx.map_or(0, |f| f as usize)),
        ("NetPnPEventHandler", c.NetPnPEventHandler.map_or(0, |f| f as usize)),
        ("UninstallHandler", c.UninstallHandler.map_or(0, |f| f as usize)),
        ("OidRequestCompleteHandler", c.OidRequestCompleteHandler.map_or(0, |f| f as usize)),
        ("StatusHandlerEx", c.StatusHandlerEx.map_or(0, |f| f as usize)),
        ("ReceiveNetBufferListsHandler", c.ReceiveNetBufferListsHandler.map_or(0, |f| f as usize)),
        ("SendNetBufferListsCompleteHandler", c.SendNetBufferListsCompleteHandler.map_or(0, |f| f as usize)),
    ];
    if rev2 {
        v.push(("DirectOidRequestCompleteHandler", c.DirectOidRequestCompleteHandler.map_or(0, |f| f as usize)));
    }
    v
}

const NDIS_STATUS_BAD_VERSION: NDIS_STATUS = 0xC001_0004_u32 as i32;
const NDIS_STATUS_BAD_CHARACTERISTICS: NDIS_STATUS = 0xC001_0005_u32 as i32;
/// NDIS 6 minor versions Windows knows.
const MINORS: &[u8] = &[0, 1, 20, 30, 40, 50, 51, 60, 70, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89];

pub(crate) unsafe extern "win64" fn NdisRegisterProtocolDriver(
    ctx: NDIS_HANDLE,
    chars: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const CALL: &str = "NdisRegisterProtocolDriver";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        if chars.is_null() || handle.is_null() {
            v(Rule::InvalidParameter, CALL, None, None, "null characteristics or handle pointer".into());
            return NDIS_STATUS_FAILURE;
        }
        // SAFETY: the driver passes a characteristics structure; its header
        // is checked before anything beyond it is read.
        let h = unsafe { (*chars).Header };
        let bad = |why: String, st: NDIS_STATUS| {
            v(Rule::InvalidParameter, CALL, None, Some(chars as usize), why);
            st
        };
        if h.Type != NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS {
            return bad(format!("Header.Type is {:#x}, not NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS", h.Type), NDIS_STATUS_BAD_CHARACTERISTICS);
        }
        let need = match h.Revision {
            1 => 0x78u16,
            2 => NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            r => return bad(format!("Header.Revision {r} is not 1 or 2"), NDIS_STATUS_BAD_CHARACTERISTICS),
        };
        if h.Size < need {
            return bad(format!("Header.Size {:#x} is smaller than revision {}'s {need:#x}", h.Size, h.Revision), NDIS_STATUS_BAD_CHARACTERISTICS);
        }
        // SAFETY: the header says the structure is at least this large.
        let c = unsafe { std::ptr::read(chars) };
        if c.MajorNdisVersion != 6 || !MINORS.contains(&c.MinorNdisVersion) {
            return bad(format!("NDIS version {}.{} is not an NDIS 6 version", c.MajorNdisVersion, c.MinorNdisVersion), NDIS_STATUS_BAD_VERSION);
        }
        if h.Revision >= 2 && c.MinorNdisVersion < 1 {
            return bad("revision 2 characteristics need NDIS 6.1 or later".into(), NDIS_STATUS_BAD_CHARACTERISTICS);
        }
        // SAFETY: the name is a UNICODE_STRING in the characteristics.
        let name = unsafe { read_ustr(&c.Name) }.unwrap_or_default();
        if name.is_empty() {
            return bad("the protocol Name is empty".into(), NDIS_STATUS_BAD_CHARACTERISTICS);
        }
        let image = k.image.get();
        for (hname, addr) in handler_addrs(&c, h.Revision >= 2) {
            if addr == 0 {
                if REQUIRED.contains(&hname) {
                    return bad(format!("required handler {hname} is NULL"), NDIS_STATUS_BAD_CHARACTERISTICS);
                }
                continue;
            }
            if let Some(img) = image {
                if !img.is_code(addr) {
                    return bad(format!("{hname} ({addr:#x}) does not point into the driver's code (or points into the discardable INIT section)"), NDIS_STATUS_BAD_CHARACTERISTICS);
                }
            }
        }
        if c.Flags != 0 {
            return bad(format!("Flags {:#x}: protocol drivers pass 0", c.Flags), NDIS_STATUS_BAD_CHARACTERISTICS);
        }
        {
            let mut p = lock(&k.ndis.protocol);
            if p.is_some() {
                drop(p);
                return bad("the driver registered a protocol already".into(), NDIS_STATUS_FAILURE);
            }
            let proto = Arc::new(Protocol { magic: PROTOCOL_MAGIC, chars: c, ctx: ctx as usize, name, });
            // SAFETY: the driver's out parameter.
            unsafe { *handle = Arc::as_ptr(&proto) as NDIS_HANDLE };
            *p = Some(proto);
        }
        k.ndis.registered_once.store(true, Ordering::Release);
        if let Some(set_options) = c.SetOptionsHandler {
            let st = call_driver("ProtocolSetOptions", PASSIVE_LEVEL, || {
                // SAFETY: the driver's handler with its own handle and context.
                unsafe { set_options(*handle, ctx) }
            });
            if st != NDIS_STATUS_SUCCESS {
                *lock(&k.ndis.protocol) = None;
                return st;
            }
        }
        if k.ndis.bind_during_registration.load(Ordering::Acquire) {
            bind_all_and_start(k);
        }
        NDIS_STATUS_SUCCESS
    })
}

/// Binds every adapter, restarts them to Running and indicates
/// BindsComplete (what NDIS does once a protocol registers).
pub(crate) fn bind_all_and_start(k: &Kernel) {
    for a in k.ndis.adapters() {
        if bind(k, a).is_ok() {
            let _ = restart(k, a, &RestartSpec::default());
        }
    }
    let _ = binds_complete(k);
}

fn proto_of(p: NDIS_HANDLE, call: &str) -> Option<Arc<Protocol>> {
    let k = kernel::kernel()?;
    let cur = k.ndis.protocol();
    match cur {
        Some(pr) if std::ptr::addr_eq(Arc::as_ptr(&pr), p) => Some(pr),
        _ => {
            v(Rule::InvalidParameter, call, None, Some(p as usize), "not the handle NdisRegisterProtocolDriver returned".into());
            None
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisDeregisterProtocolDriver(h: NDIS_HANDLE) {
    const CALL: &str = "NdisDeregisterProtocolDriver";
    export(CALL, (), |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        if proto_of(h, CALL).is_none() {
            return;
        }
        // NDIS unbinds every binding before this returns.
        for a in k.ndis.adapters() {
            let b = lock(&a.binding).clone();
            if b.is_some() {
                let _ = unbind(k, a);
            }
        }
        *lock(&k.ndis.protocol) = None;
    })
}

// ===========================================================================
// Bind, open, close, unbind
// ===========================================================================

/// NDIS's `NDIS_RECEIVE_SCALE_CAPABILITIES` (revision 1), built by hand:
/// header, CapabilitiesFlags, NumberOfInterruptMessages,
/// NumberOfReceiveQueues.
fn rss_caps() -> Box<[u8; 16]> {
    let mut b = Box::new([0u8; 16]);
    b[0] = 0x88; // NDIS_OBJECT_TYPE_RSS_CAPABILITIES
    b[1] = 1;
    b[2..4].copy_from_slice(&16u16.to_le_bytes());
    b[4..8].copy_from_slice(&0x0000_0300u32.to_le_bytes()); // IPV4 | IPV6 hash types
    b[8..12].copy_from_slice(&4u32.to_le_bytes());
    b[12..16].copy_from_slice(&4u32.to_le_bytes());
    b
}

/// Calls the protocol's `ProtocolUninstall` at PASSIVE_LEVEL.
pub(crate) fn uninstall(k: &Kernel) -> Result<(), SimError> {
    let Some(proto) = k.ndis.protocol() else { return Err(SimError::State("no protocol is registered".into())) };
    let Some(handler) = proto.chars.UninstallHandler else { return Ok(()) };
    call_driver("ProtocolUninstall", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler; it takes no arguments.
        unsafe { handler() }
    });
    Ok(())
}

/// Binds the protocol to `a`: `ProtocolBindAdapterEx` and its open.
pub(crate) fn bind(k: &Kernel, a: &Arc<Adapter>) -> Result<(), SimError> {
    let Some(proto) = k.ndis.protocol() else { return Err(SimError::State("no protocol is registered".into())) };
    if lock(&a.binding).is_some() {
        return Err(SimError::State(format!("adapter {} is bound already", a.name)));
    }
    let m = lock(&a.model).clone();
    let name_buf = a.ndis_name.clone();
    let section_buf = wstr(&proto.name);
    let mut ctx = Box::new(BindCtx {
        magic: BINDCTX_MAGIC,
        adapter: a.idx,
        opened: Mutex::new(None),
        // SAFETY: NDIS_BIND_PARAMETERS is plain data; filled below.
        params: unsafe { std::mem::zeroed() },
        adapter_name: ustr(&name_buf),
        name_buf,
        section: ustr(&section_buf),
        section_buf,
        rss: rss_caps(),
    });
    ctx.adapter_name = ustr(&ctx.name_buf);
    ctx.section = ustr(&ctx.section_buf);
    let an: *mut UNICODE_STRING = &mut ctx.adapter_name;
    let sec: *mut UNICODE_STRING = &mut ctx.section;
    let rss = if a.spec.rss { ctx.rss.as_mut_ptr().cast() } else { std::ptr::null_mut() };
    let p = &mut ctx.params;
    p.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_BIND_PARAMETERS,
        Revision: NDIS_BIND_PARAMETERS_REVISION_4,
        Size: std::mem::size_of::<NDIS_BIND_PARAMETERS>() as u16,
    };
    p.ProtocolSection = sec;
    p.AdapterName = an;
    p.PhysicalDeviceObject = std::ptr::null_mut();
    p.MediaType = NdisMedium802_3;
    p.MtuSize = m.mtu;
    p.MaxXmitLinkSpeed = m.speed;
    p.XmitLinkSpeed = if m.link_up { m.speed } else { 0 };
    p.MaxRcvLinkSpeed = m.speed;
    p.RcvLinkSpeed = if m.link_up { m.speed } else { 0 };
    p.MediaConnectState = if m.link_up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
    p.MediaDuplexState = MediaDuplexStateFull;
    p.LookaheadSize = m.mtu;
    p.SupportedPacketFilters = adapter::SUPPORTED_FILTERS;
    p.MaxMulticastListSize = adapter::MAX_MULTICAST as u32;
    p.MacAddressLength = 6;
    p.CurrentMacAddress[..6].copy_from_slice(&m.mac);
    p.PhysicalMediumType = 14; // NdisPhysicalMedium802_3
    p.RcvScaleCapabilities = rss;
    p.BoundIfNetluid = 0x0006_0000_0000_0000 | (a.idx as u64 + 1);
    p.BoundIfIndex = a.idx as u32 + 10;
    p.LowestIfNetluid = p.BoundIfNetluid;
    p.LowestIfIndex = p.BoundIfIndex;
    p.AccessType = 2; // NET_IF_ACCESS_BROADCAST
    p.DirectionType = 0; // NET_IF_DIRECTION_SENDRECEIVE
    p.ConnectionType = 1; // NET_IF_CONNECTION_DEDICATED
    p.IfType = 6; // IF_TYPE_ETHERNET_CSMACD
    p.IfConnectorPresent = 1;
    p.MacOptions = 0;
    p.CompartmentId = 1;
    p.BoundAdapterName = an;
    let key = &*ctx as *const BindCtx as usize;
    let params: *mut NDIS_BIND_PARAMETERS = &mut ctx.params;
    k.ndis.op_begin(OpKind::Bind, key, 0);
    let handler = proto.chars.BindAdapterHandlerEx.expect("validated");
    let pctx = proto.ctx;
    let st = call_driver("ProtocolBindAdapterEx", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler with its context, our bind context and
        // parameters that live until the bind finishes.
        unsafe { handler(pctx as NDIS_HANDLE, key as NDIS_HANDLE, params) }
    });
    let result = k.ndis.op_returned(k, OpKind::Bind, key, st, "ProtocolBindAdapterEx", &format!("the bind of {}", a.name));
    let opened = lock(&ctx.opened).take();
    // The bind context dies here; keep it until the simulation ends in case
    // the driver kept a pointer (NDIS would have freed it).
    let final_status = match result {
        Ok(s) => s,
        Err(e) => {
            std::mem::forget(ctx);
            return Err(e);
        }
    };
    drop(ctx);
    match (final_status, opened) {
        (NDIS_STATUS_SUCCESS, Some(b)) => {
            if !b.closed.load(Ordering::Acquire) && matches!(b.state(), BindingState::Opening | BindingState::Paused) && !b.close_completed.load(Ordering::Acquire) {
                // Opened: the binding is Paused until the restart.
                b.set_state(BindingState::Paused);
                *lock(&a.binding) = Some(b);
                Ok(())
            } else {
                Err(SimError::State("the bind succeeded but the adapter was not left open".into()))
            }
        }
        (NDIS_STATUS_SUCCESS, None) => {
            v(Rule::InvalidParameter, "ProtocolBindAdapterEx", None, None, format!("the bind of {} succeeded without a successful NdisOpenAdapterEx", a.name));
            Err(SimError::Other("bind succeeded without an open".into()))
        }
        (s, opened) => {
            if let Some(b) = opened {
                if !b.closed.load(Ordering::Acquire) && b.state() != BindingState::Unbound {
                    v(Rule::ResourceLeak, "ProtocolBindAdapterEx", Some(&b), None, format!("the bind failed ({s:#x}) but the adapter it opened was not closed"));
                }
                b.set_state(BindingState::Unbound);
            }
            Err(SimError::Status(s))
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisOpenAdapterEx(
    ph: NDIS_HANDLE,
    pbc: NDIS_HANDLE,
    open: *mut NDIS_OPEN_PARAMETERS,
    bind_ctx: NDIS_HANDLE,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const CALL: &str = "NdisOpenAdapterEx";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        let Some(proto) = proto_of(ph, CALL) else { return NDIS_STATUS_INVALID_PARAMETER };
        let bc = bind_ctx as usize;
        // SAFETY: a bind context NDIS gave out is a live `BindCtx` during
        // the bind; anything else fails the magic check (read only when the
        // pointer is one of the pending bind operations).
        let pending = lock(&k.ndis.ops).iter().any(|o| o.kind == OpKind::Bind && o.key == bc && o.completed.is_none());
        if !pending {
            v(Rule::InvalidParameter, CALL, None, Some(bc), "BindContext is not the context of a bind in progress (call NdisOpenAdapterEx from ProtocolBindAdapterEx)".into());
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: checked: a pending bind's context.
        let ctx = unsafe { &*(bc as *const BindCtx) };
        if open.is_null() || out.is_null() {
            v(Rule::InvalidParameter, CALL, None, None, "null OpenParameters or NdisBindingHandle".into());
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's open parameters.
        let o = unsafe { &*open };
        if o.Header.Type != NDIS_OBJECT_TYPE_OPEN_PARAMETERS || o.Header.Revision < NDIS_OPEN_PARAMETERS_REVISION_1 || o.Header.Size < NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1 {
            v(Rule::InvalidParameter, CALL, None, Some(open as usize), format!("bad NDIS_OPEN_PARAMETERS header {{Type {:#x}, Revision {}, Size {:#x}}}", o.Header.Type, o.Header.Revision, o.Header.Size));
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        let a = k.ndis.adapter(ctx.adapter).clone();
        // SAFETY: a UNICODE_STRING the driver passes.
        let name = unsafe { read_ustr(o.AdapterName) };
        let want = String::from_utf16_lossy(&a.ndis_name[..a.ndis_name.len() - 1]);
        if name.as_deref() != Some(want.as_str()) {
            v(Rule::InvalidParameter, CALL, None, None, format!("AdapterName {name:?} is not the bind's adapter {want:?}"));
            return NDIS_STATUS_ADAPTER_NOT_FOUND;
        }
        if o.MediumArray.is_null() || o.MediumArraySize == 0 || o.SelectedMediumIndex.is_null() {
            v(Rule::InvalidParameter, CALL, None, None, "MediumArray, MediumArraySize and SelectedMediumIndex are required".into());
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's medium array of MediumArraySize entries.
        let media = unsafe { std::slice::from_raw_parts(o.MediumArray, o.MediumArraySize as usize) };
        let Some(i) = media.iter().position(|&m| m == NdisMedium802_3) else {
            return NDIS_STATUS_UNSUPPORTED_MEDIA;
        };
        if lock(&ctx.opened).is_some() {
            v(Rule::InvalidParameter, CALL, None, Some(bc), "this bind already opened the adapter".into());
            return NDIS_STATUS_FAILURE;
        }
        if a.spec.open_fails {
            // The miniport could not be opened (`open=fail`), at once or,
            // with `open=pending`, through ProtocolOpenAdapterCompleteEx.
            if a.spec.open == Completion::Pending {
                let handler = proto.chars.OpenAdapterCompleteHandlerEx.expect("validated");
                let pbc = pbc as usize;
                k.dpc_passive(move || {
                    // SAFETY: the driver's handler with its binding context.
                    unsafe { handler(pbc as NDIS_HANDLE, NDIS_STATUS_ADAPTER_NOT_FOUND) }
                }, "ProtocolOpenAdapterCompleteEx");
                return NDIS_STATUS_PENDING;
            }
            return NDIS_STATUS_ADAPTER_NOT_FOUND;
        }
        let b = Arc::new(Binding {
            magic: BINDING_MAGIC,
            adapter: a.idx,
            ctx: pbc as usize,
            proto: proto.clone(),
            name: a.name.clone(),
            state: Mutex::new(BindingState::Opening),
            running: AtomicBool::new(false),
            pause_in_handler: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_completed: AtomicBool::new(false),
            sends: AtomicU64::new(0),
            recvs: AtomicU64::new(0),
            oids: AtomicU64::new(0),
        });
        lock(&k.ndis.bindings).push(b.clone());
        *lock(&ctx.opened) = Some(b.clone());
        // SAFETY: the driver's out parameters.
        unsafe {
            *o.SelectedMediumIndex = i as u32;
            *out = b.handle();
        }
        if a.spec.open == Completion::Pending {
            let handler = proto.chars.OpenAdapterCompleteHandlerEx.expect("validated");
            let pbc = pbc as usize;
            k.dpc_passive(move || {
                // SAFETY: the driver's handler with its binding context.
                unsafe { handler(pbc as NDIS_HANDLE, NDIS_STATUS_SUCCESS) }
            }, "ProtocolOpenAdapterCompleteEx");
            return NDIS_STATUS_PENDING;
        }
        NDIS_STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn NdisCompleteBindAdapterEx(bind_ctx: NDIS_HANDLE, status: NDIS_STATUS) {
    const CALL: &str = "NdisCompleteBindAdapterEx";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if status == NDIS_STATUS_PENDING {
            v(Rule::InvalidParameter, CALL, None, Some(bind_ctx as usize), "completed with NDIS_STATUS_PENDING".into());
        }
        k.ndis.op_complete(OpKind::Bind, bind_ctx as usize, status, CALL, None);
    })
}

pub(crate) unsafe extern "win64" fn NdisCloseAdapterEx(h: NDIS_HANDLE) -> NDIS_STATUS {
    const CALL: &str = "NdisCloseAdapterEx";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        let Some(b) = k.ndis.binding(h, CALL, false) else { return NDIS_STATUS_INVALID_PARAMETER };
        let (s, r, o) = (b.sends.load(Ordering::Acquire), b.recvs.load(Ordering::Acquire), b.oids.load(Ordering::Acquire));
        if s + r + o != 0 {
            v(Rule::CloseOutstanding, CALL, Some(b), Some(h as usize), format!("closed with {s} send NBL(s) in flight, {r} received NBL(s) not returned and {o} OID request(s) pending"));
        }
        b.closed.store(true, Ordering::Release);
        b.set_state(BindingState::Closing);
        let a = k.ndis.adapter(b.adapter).clone();
        if a.spec.close == Completion::Pending {
            let handler = b.proto.chars.CloseAdapterCompleteHandlerEx.expect("validated");
            let ctx = b.ctx;
            let bp = b as *const Binding as usize;
            k.dpc_passive(move || {
                // SAFETY: a binding stays allocated for the simulation.
                unsafe { (*(bp as *const Binding)).close_completed.store(true, Ordering::Release) };
                // SAFETY: the driver's handler with its binding context.
                unsafe { handler(ctx as NDIS_HANDLE) }
            }, "ProtocolCloseAdapterCompleteEx");
            return NDIS_STATUS_PENDING;
        }
        b.close_completed.store(true, Ordering::Release);
        NDIS_STATUS_SUCCESS
    })
}

/// Unbinds: pauses a running binding, then `ProtocolUnbindAdapterEx`.
pub(crate) fn unbind(k: &Kernel, a: &Arc<Adapter>) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else { return Err(SimError::State(format!("adapter {} is not bound", a.name))) };
    match b.state() {
        BindingState::Running => pause(k, a)?,
        BindingState::Paused => {}
        s => return Err(SimError::State(format!("binding {} is {s:?}; it can only be unbound from Running or Paused", a.name))),
    }
    b.set_state(BindingState::Closing);
    let unbind_ctx = Box::new(UNBINDCTX_MAGIC);
    let key = &*unbind_ctx as *const u64 as usize;
    k.ndis.op_begin(OpKind::Unbind, key, Arc::as_ptr(&b) as usize);
    let handler = b.proto.chars.UnbindAdapterHandlerEx.expect("validated");
    let ctx = b.ctx;
    let st = call_driver("ProtocolUnbindAdapterEx", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler with our unbind context and its
        // binding context.
        unsafe { handler(key as NDIS_HANDLE, ctx as NDIS_HANDLE) }
    });
    let r = k.ndis.op_returned(k, OpKind::Unbind, key, st, "ProtocolUnbindAdapterEx", &format!("the unbind of {}", a.name));
    std::mem::forget(unbind_ctx);
    r?;
    if !b.closed.load(Ordering::Acquire) {
        v(Rule::ResourceLeak, "ProtocolUnbindAdapterEx", Some(&b), None, "the unbind completed without NdisCloseAdapterEx".into());
    } else {
        // A pending close must have completed before the unbind completes.
        let deadline = Instant::now() + k.config.watchdog;
        while !b.close_completed.load(Ordering::Acquire) && Instant::now() < deadline {
            k.dpc.drain(Duration::from_millis(50));
        }
    }
    let r = b.recvs.load(Ordering::Acquire);
    if r != 0 {
        v(Rule::NblLeak, "ProtocolUnbindAdapterEx", Some(&b), None, format!("{r} received NBL(s) were never returned"));
    }
    b.set_state(BindingState::Unbound);
    *lock(&a.binding) = None;
    Ok(())
}

pub(crate) unsafe extern "win64" fn NdisCompleteUnbindAdapterEx(unbind_ctx: NDIS_HANDLE) {
    const CALL: &str = "NdisCompleteUnbindAdapterEx";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        k.ndis.op_complete(OpKind::Unbind, unbind_ctx as usize, NDIS_STATUS_SUCCESS, CALL, None);
    })
}

// ===========================================================================
// PnP events
// ===========================================================================

/// A PnP notification and its buffer.
#[repr(C)]
struct PnpBlock {
    notif: NET_PNP_EVENT_NOTIFICATION,
    pause: NDIS_PROTOCOL_PAUSE_PARAMETERS,
    restart: NDIS_PROTOCOL_RESTART_PARAMETERS,
    power: u32,
    attrs: Vec<Vec<u128>>,
    filter_names: Vec<u8>,
    oid_list: Vec<u32>,
    rss: Box<[u8; 16]>,
}

fn pnp_block(code: NET_PNP_EVENT_CODE) -> Box<PnpBlock> {
    let mut p: Box<PnpBlock> = Box::new(PnpBlock {
        // SAFETY: plain data; zero is its initial state.
        notif: unsafe { std::mem::zeroed() },
        // SAFETY: plain data; zero is its initial state.
        pause: unsafe { std::mem::zeroed() },
        // SAFETY: plain data; zero is its initial state.
        restart: unsafe { std::mem::zeroed() },
        power: 0,
        attrs: Vec::new(),
        filter_names: Vec::new(),
        oid_list: Vec::new(),
        rss: rss_caps(),
    });
    p.notif.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
        Size: NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1,
    };
    p.notif.NetPnPEvent.NetEvent = code;
    p
}

/// Delivers a PnP event to the binding (or to the protocol when `b` is
/// None) and returns its final status.
fn pnp(k: &Kernel, proto: &Protocol, b: Option<&Arc<Binding>>, mut blk: Box<PnpBlock>, what: &str) -> Result<NDIS_STATUS, SimError> {
    let key = &blk.notif as *const NET_PNP_EVENT_NOTIFICATION as usize;
    let notif: *mut NET_PNP_EVENT_NOTIFICATION = &mut blk.notif;
    k.ndis.op_begin(OpKind::Pnp, key, b.map_or(0, |b| Arc::as_ptr(b) as usize));
    let handler = proto.chars.NetPnPEventHandler.expect("validated");
    let ctx = b.map_or(0, |b| b.ctx);
    let is_pause = blk.notif.NetPnPEvent.NetEvent == NetEventPause;
    if let (true, Some(b)) = (is_pause, b) {
        b.pause_in_handler.store(true, Ordering::Release);
    }
    let st = call_driver("ProtocolNetPnPEvent", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler with its binding context (or NULL)
        // and a notification that lives until the event completes.
        unsafe { handler(ctx as NDIS_HANDLE, notif) }
    });
    if let (true, Some(b)) = (is_pause, b) {
        b.pause_in_handler.store(false, Ordering::Release);
        if st != NDIS_STATUS_PENDING {
            check_pause_done(b, "ProtocolNetPnPEvent(NetEventPause)");
        }
    }
    let r = k.ndis.op_returned(k, OpKind::Pnp, key, st, "ProtocolNetPnPEvent", what);
    // NDIS frees the notification; ndisim keeps it for the simulation's
    // life so a driver that kept the pointer does not corrupt our memory.
    std::mem::forget(blk);
    r
}

fn check_pause_done(b: &Binding, call: &str) {
    let (s, r) = (b.sends.load(Ordering::Acquire), b.recvs.load(Ordering::Acquire));
    if s + r != 0 {
        v(Rule::PauseOutstanding, call, Some(b), None, format!("the pause completed with {s} send NBL(s) still in flight and {r} received NBL(s) not returned"));
    }
}

pub(crate) unsafe extern "win64" fn NdisCompleteNetPnPEvent(h: NDIS_HANDLE, n: *mut NET_PNP_EVENT_NOTIFICATION, status: NDIS_STATUS) {
    const CALL: &str = "NdisCompleteNetPnPEvent";
    export(CALL, (), |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        let b = if h.is_null() { None } else { k.ndis.binding(h, CALL, false) };
        let key = n as usize;
        // Which binding does the pending event belong to?
        let owner = lock(&k.ndis.ops).iter().find(|o| o.kind == OpKind::Pnp && o.key == key && o.completed.is_none()).map(|o| o.binding);
        if let Some(owner) = owner {
            let want = b.map_or(0, |b| b as *const Binding as usize);
            if owner != want {
                v(Rule::InvalidParameter, CALL, b, Some(key), "NdisBindingHandle is not the binding the event was indicated on".into());
            }
            if owner != 0 {
                // SAFETY: bindings live for the simulation.
                let ob = unsafe { &*(owner as *const Binding) };
                // SAFETY: the notification is pending, so ours and live.
                if unsafe { (*n).NetPnPEvent.NetEvent } == NetEventPause {
                    check_pause_done(ob, CALL);
                }
            }
        }
        if status == NDIS_STATUS_PENDING {
            v(Rule::InvalidParameter, CALL, b, Some(key), "completed with NDIS_STATUS_PENDING".into());
        }
        k.ndis.op_complete(OpKind::Pnp, key, status, CALL, b);
    })
}

/// Completes the sends the adapter holds back under a batching policy, as
/// a miniport does when it pauses.
fn flush_batched(k: &Kernel, a: &Adapter) {
    let batched = matches!(*lock(&a.policy), CompletionPolicy::Batched(_) | CompletionPolicy::Reordered(_));
    if batched {
        let held = std::mem::take(&mut *lock(&a.held));
        complete_nbls(k, &held, NDIS_STATUS_SUCCESS);
    }
}

/// Pauses a Running binding.
pub(crate) fn pause(k: &Kernel, a: &Arc<Adapter>) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else { return Err(SimError::State(format!("adapter {} is not bound", a.name))) };
    if b.state() != BindingState::Running {
        return Err(SimError::State(format!("binding {} is {:?}, not Running", a.name, b.state())));
    }
    b.set_state(BindingState::Pausing);
    flush_batched(k, a);
    let mut blk = pnp_block(NetEventPause);
    blk.pause.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_DEFAULT, Revision: NDIS_PROTOCOL_PAUSE_PARAMETERS_REVISION_1, Size: 12 };
    blk.pause.PauseReason = 1; // NDIS_PAUSE_NDIS_INTERNAL
    blk.notif.NetPnPEvent.Buffer = (&mut blk.pause as *mut NDIS_PROTOCOL_PAUSE_PARAMETERS).cast();
    blk.notif.NetPnPEvent.BufferLength = 12;
    let st = pnp(k, &b.proto, Some(&b), blk, &format!("the pause of {}", a.name))?;
    if st != NDIS_STATUS_SUCCESS {
        v(Rule::InvalidParameter, "ProtocolNetPnPEvent(NetEventPause)", Some(&b), None, format!("a pause cannot fail, but the driver returned {st:#x}"));
    }
    b.set_state(BindingState::Paused);
    Ok(())
}

/// The OIDs the adapter model answers.
pub(crate) const SUPPORTED_OIDS: &[u32] = &[
    OID_GEN_SUPPORTED_LIST, OID_GEN_HARDWARE_STATUS, OID_GEN_MEDIA_SUPPORTED, OID_GEN_MEDIA_IN_USE,
    OID_GEN_MAXIMUM_LOOKAHEAD, OID_GEN_MAXIMUM_FRAME_SIZE, OID_GEN_LINK_SPEED, OID_GEN_TRANSMIT_BUFFER_SPACE,
    OID_GEN_RECEIVE_BUFFER_SPACE, OID_GEN_VENDOR_ID, OID_GEN_VENDOR_DESCRIPTION, OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_CURRENT_LOOKAHEAD, OID_GEN_DRIVER_VERSION, OID_GEN_MAXIMUM_TOTAL_SIZE, OID_GEN_MAC_OPTIONS,
    OID_GEN_MEDIA_CONNECT_STATUS, OID_GEN_MAXIMUM_SEND_PACKETS, OID_GEN_VENDOR_DRIVER_VERSION, OID_GEN_PHYSICAL_MEDIUM,
    OID_GEN_RECEIVE_SCALE_CAPABILITIES, OID_GEN_MAX_LINK_SPEED, OID_GEN_LINK_STATE, OID_GEN_XMIT_OK, OID_GEN_RCV_OK,
    OID_GEN_XMIT_ERROR, OID_GEN_RCV_ERROR, OID_GEN_RCV_NO_BUFFER, OID_GEN_STATISTICS, OID_802_3_PERMANENT_ADDRESS,
    OID_802_3_CURRENT_ADDRESS, OID_802_3_MULTICAST_LIST, OID_802_3_MAXIMUM_LIST_SIZE,
];

fn aligned_attr(oid: u32, data: &[u8]) -> Vec<u128> {
    let words = (16 + data.len()).div_ceil(16).max(2);
    let mut v = vec![0u128; words];
    let p = v.as_mut_ptr().cast::<u8>();
    // SAFETY: `v` holds 16 + data.len() bytes at least; the element header
    // is Next (8), Oid (4), DataLength (4), then data at 16.
    unsafe {
        std::ptr::write_bytes(p, 0, 8);
        p.add(8).cast::<u32>().write(oid);
        p.add(12).cast::<u32>().write(data.len() as u32);
        std::ptr::copy_nonoverlapping(data.as_ptr(), p.add(16), data.len());
    }
    v
}

/// Restarts a Paused binding.
pub(crate) fn restart(k: &Kernel, a: &Arc<Adapter>, spec: &RestartSpec) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else { return Err(SimError::State(format!("adapter {} is not bound", a.name))) };
    if b.state() != BindingState::Paused {
        return Err(SimError::State(format!("binding {} is {:?}, not Paused", a.name, b.state())));
    }
    {
        let mut m = lock(&a.model);
        if let Some(mtu) = spec.mtu {
            m.mtu = mtu;
        }
        if let Some(l) = spec.link {
            m.link_up = l;
        }
    }
    let m = lock(&a.model).clone();
    b.set_state(BindingState::Restarting);
    let mut blk = pnp_block(NetEventRestart);
    blk.oid_list = SUPPORTED_OIDS.to_vec();
    // SAFETY: plain data.
    let mut g: NDIS_RESTART_GENERAL_ATTRIBUTES = unsafe { std::mem::zeroed() };
    let rev = spec.general_revision.unwrap_or(2);
    g.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES,
        Revision: rev,
        Size: if rev == 1 { NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1 } else { NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2 },
    };
    g.MtuSize = m.mtu;
    g.MaxXmitLinkSpeed = m.speed;
    g.MaxRcvLinkSpeed = m.speed;
    g.LookaheadSize = m.mtu;
    g.MacOptions = 0;
    g.SupportedPacketFilters = adapter::SUPPORTED_FILTERS;
    g.MaxMulticastListSize = adapter::MAX_MULTICAST as u32;
    g.RecvScaleCapabilities = if a.spec.rss { blk.rss.as_mut_ptr().cast() } else { std::ptr::null_mut() };
    g.AccessType = 2;
    g.ConnectionType = 1;
    g.SupportedStatistics = 0x3F_FFFF;
    g.SupportedOidList = blk.oid_list.as_mut_ptr();
    g.SupportedOidListLength = (blk.oid_list.len() * 4) as u32;
    g.MaxLookaheadSizeAccessed = m.mtu;
    let glen = g.Header.Size as usize;
    // SAFETY: `g` is plain data of at least `glen` bytes.
    let gbytes = unsafe { std::slice::from_raw_parts((&g as *const NDIS_RESTART_GENERAL_ATTRIBUTES).cast::<u8>(), glen) }.to_vec();
    blk.attrs.push(aligned_attr(OID_GEN_MINIPORT_RESTART_ATTRIBUTES, &gbytes));
    for (oid, data) in &spec.extra_attributes {
        blk.attrs.push(aligned_attr(*oid, data));
    }
    for i in 0..blk.attrs.len() {
        let next = blk.attrs.get(i + 1).map_or(std::ptr::null_mut(), |v| v.as_ptr() as *mut u8);
        // SAFETY: each element starts with its `Next` pointer.
        unsafe { blk.attrs[i].as_mut_ptr().cast::<*mut u8>().write(next) };
    }
    for name in &spec.filter_modules {
        let w: Vec<u16> = name.encode_utf16().collect();
        blk.filter_names.extend_from_slice(&((w.len() * 2) as u16).to_le_bytes());
        for c in w {
            blk.filter_names.extend_from_slice(&c.to_le_bytes());
        }
    }
    let r = &mut blk.restart;
    r.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS,
        Revision: NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
        Size: NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
    };
    r.FilterModuleNameBuffer = if blk.filter_names.is_empty() { std::ptr::null_mut() } else { blk.filter_names.as_mut_ptr() };
    r.FilterModuleNameBufferLength = blk.filter_names.len() as u32;
    r.RestartAttributes = blk.attrs[0].as_mut_ptr().cast();
    r.BoundIfIndex = a.idx as u32 + 10;
    r.BoundIfNetluid = 0x0006_0000_0000_0000 | (a.idx as u64 + 1);
    blk.notif.NetPnPEvent.Buffer = (&mut blk.restart as *mut NDIS_PROTOCOL_RESTART_PARAMETERS).cast();
    blk.notif.NetPnPEvent.BufferLength = std::mem::size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>() as u32;
    let st = pnp(k, &b.proto, Some(&b), blk, &format!("the restart of {}", a.name))?;
    if st == NDIS_STATUS_SUCCESS {
        b.set_state(BindingState::Running);
        Ok(())
    } else {
        b.set_state(BindingState::Paused);
        Err(SimError::Status(st))
    }
}

/// `NetEventSetPower`: a low-power state pauses after the event, D0
/// restarts (if it was Running) after it.
pub(crate) fn set_power(k: &Kernel, a: &Arc<Adapter>, state: u32) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else { return Err(SimError::State(format!("adapter {} is not bound", a.name))) };
    let mut blk = pnp_block(NetEventSetPower);
    blk.power = state;
    blk.notif.NetPnPEvent.Buffer = (&mut blk.power as *mut u32).cast();
    blk.notif.NetPnPEvent.BufferLength = 4;
    let st = pnp(k, &b.proto, Some(&b), blk, &format!("the set-power of {}", a.name))?;
    if st != NDIS_STATUS_SUCCESS {
        return Err(SimError::Status(st));
    }
    if state != NetDeviceStateD0 {
        lock(&a.model).powered = false;
        let running = b.state() == BindingState::Running;
        a.resume_running.store(running, Ordering::Release);
        if running {
            pause(k, a)?;
        }
    } else {
        lock(&a.model).powered = true;
        if a.resume_running.swap(false, Ordering::AcqRel) && b.state() == BindingState::Paused {
            restart(k, a, &RestartSpec::default())?;
        }
    }
    Ok(())
}

/// The protocol-level `NetEventBindsComplete`.
pub(crate) fn binds_complete(k: &Kernel) -> Result<(), SimError> {
    let Some(proto) = k.ndis.protocol() else { return Err(SimError::State("no protocol is registered".into())) };
    let st = pnp(k, &proto, None, pnp_block(NetEventBindsComplete), "BindsComplete")?;
    k.ndis.binds_completed.store(true, Ordering::Release);
    if st != NDIS_STATUS_SUCCESS {
        return Err(SimError::Status(st));
    }
    Ok(())
}

// ===========================================================================
// NBL pools, NBLs, MDLs
// ===========================================================================

fn valid_ndis_handle(k: &Kernel, h: NDIS_HANDLE, call: &str) -> bool {
    let ok = k.ndis.protocol().is_some_and(|p| std::ptr::addr_eq(Arc::as_ptr(&p), h))
        || lock(&k.ndis.bindings).iter().any(|b| std::ptr::addr_eq(Arc::as_ptr(b), h) && !b.closed.load(Ordering::Acquire));
    if !ok {
        v(Rule::InvalidParameter, call, None, Some(h as usize), "NdisHandle is not the protocol's registration handle (or an open binding handle)".into());
    }
    ok
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBufferListPool(h: NDIS_HANDLE, p: *mut NET_BUFFER_LIST_POOL_PARAMETERS) -> NDIS_HANDLE {
    const CALL: &str = "NdisAllocateNetBufferListPool";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !valid_ndis_handle(k, h, CALL) {
            return std::ptr::null_mut();
        }
        if p.is_null() {
            v(Rule::InvalidParameter, CALL, None, None, "null Parameters".into());
            return std::ptr::null_mut();
        }
        // SAFETY: the driver's parameters.
        let pp = unsafe { &*p };
        if pp.Header.Type != NDIS_OBJECT_TYPE_DEFAULT || pp.Header.Revision != NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 || pp.Header.Size < NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 {
            v(Rule::InvalidParameter, CALL, None, Some(p as usize), format!("bad header {{Type {:#x}, Revision {}, Size {:#x}}}", pp.Header.Type, pp.Header.Revision, pp.Header.Size));
            return std::ptr::null_mut();
        }
        if pp.ContextSize % 16 != 0 {
            v(Rule::InvalidParameter, CALL, None, Some(p as usize), format!("ContextSize {} is not a multiple of MEMORY_ALLOCATION_ALIGNMENT", pp.ContextSize));
            return std::ptr::null_mut();
        }
        if pp.PoolTag == 0 {
            v(Rule::InvalidParameter, CALL, None, Some(p as usize), "PoolTag is zero".into());
            return std::ptr::null_mut();
        }
        if pp.DataSize != 0 && pp.fAllocateNetBuffer == 0 {
            v(Rule::InvalidParameter, CALL, None, Some(p as usize), "DataSize needs fAllocateNetBuffer".into());
            return std::ptr::null_mut();
        }
        let pool = Arc::new(NblPool {
            magic: POOL_MAGIC,
            tag: pp.PoolTag,
            context_size: pp.ContextSize,
            alloc_nb: pp.fAllocateNetBuffer != 0,
            freed: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            free_list: Mutex::new(Vec::new()),
            all: Mutex::new(Vec::new()),
        });
        let hp = Arc::as_ptr(&pool) as NDIS_HANDLE;
        lock(&k.ndis.pools).push(pool);
        hp
    })
}

fn pool_of(k: &Kernel, h: NDIS_HANDLE, call: &str) -> Option<Arc<NblPool>> {
    let p = lock(&k.ndis.pools).iter().find(|p| std::ptr::addr_eq(Arc::as_ptr(p), h)).cloned();
    match p {
        Some(p) if !p.freed.load(Ordering::Acquire) => Some(p),
        Some(_) => {
            v(Rule::InvalidParameter, call, None, Some(h as usize), "the NBL pool was freed already".into());
            None
        }
        None => {
            v(Rule::InvalidParameter, call, None, Some(h as usize), "not an NBL pool handle".into());
            None
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisFreeNetBufferListPool(h: NDIS_HANDLE) {
    const CALL: &str = "NdisFreeNetBufferListPool";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = pool_of(k, h, CALL) else { return };
        let live = pool.live.load(Ordering::Acquire);
        if live != 0 {
            v(Rule::NblLeak, CALL, None, Some(h as usize), format!("the pool is freed with {live} NBL(s) still allocated"));
        }
        pool.freed.store(true, Ordering::Release);
        // The blocks stay allocated (and marked free) until the simulation
        // ends, so a late use of one is caught, not a use after free.
        lock(&pool.free_list).clear();
    })
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBufferAndNetBufferList(
    h: NDIS_HANDLE,
    context_size: u16,
    context_backfill: u16,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: SIZE_T,
) -> *mut NET_BUFFER_LIST {
    const CALL: &str = "NdisAllocateNetBufferAndNetBufferList";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = pool_of(k, h, CALL) else { return std::ptr::null_mut() };
        if !pool.alloc_nb {
            v(Rule::InvalidParameter, CALL, None, Some(h as usize), "the pool was not created with fAllocateNetBuffer".into());
            return std::ptr::null_mut();
        }
        if context_size % 16 != 0 {
            v(Rule::InvalidParameter, CALL, None, None, format!("ContextSize {context_size} is not a multiple of MEMORY_ALLOCATION_ALIGNMENT"));
            return std::ptr::null_mut();
        }
        // Walk the MDL chain to find where the data starts.
        let mut total = 0usize;
        let mut m = mdl_chain;
        let (mut cur, mut cur_off): (*mut MDL, u32) = (std::ptr::null_mut(), 0u32);
        while !m.is_null() {
            // SAFETY: the driver's MDL chain.
            let bc = unsafe { (*m).ByteCount } as usize;
            if cur.is_null() && (data_offset as usize) < total + bc {
                cur = m;
                cur_off = (data_offset as usize - total) as u32;
            }
            total += bc;
            // SAFETY: as above.
            m = unsafe { (*m).Next };
        }
        if (data_offset as usize).saturating_add(data_length) > total && !mdl_chain.is_null() {
            v(Rule::InvalidParameter, CALL, None, None, format!("DataOffset {data_offset} + DataLength {data_length} exceed the MDL chain's {total} bytes"));
            return std::ptr::null_mut();
        }
        let reuse = lock(&pool.free_list).pop();
        let n = match reuse {
            Some(p) => {
                let n = p as *mut NET_BUFFER_LIST;
                // SAFETY: a free-listed block of this pool: clear it for reuse.
                unsafe {
                    std::ptr::write_bytes(n.cast::<u8>(), 0, nbl::NBL_SIZE);
                    let nb = (n as *mut u8).add(nbl::NBL_SIZE).cast::<NET_BUFFER>();
                    std::ptr::write_bytes(nb, 0, 1);
                    (*n).NdisPoolHandle = h;
                    (*nb).NdisPoolHandle = h;
                    (*n).anon.anon.FirstNetBuffer = nb;
                }
                n
            }
            None => {
                let n = nbl::alloc_nbl(Arc::as_ptr(&pool) as usize, true, false);
                if n.is_null() {
                    return n;
                }
                lock(&pool.all).push(n as usize);
                n
            }
        };
        // SAFETY: `n` is our fresh NBL with its NET_BUFFER.
        unsafe {
            nbl::owner(n).store(own::DRIVER, Ordering::Release);
            let nb = (*n).anon.anon.FirstNetBuffer;
            let d = &mut (*nb).anon.anon;
            d.MdlChain = mdl_chain;
            d.CurrentMdl = if cur.is_null() { mdl_chain } else { cur };
            d.CurrentMdlOffset = cur_off;
            d.DataOffset = data_offset;
            d.anon.DataLength = data_length as u32;
            let csize = context_size as usize + context_backfill as usize + pool.context_size as usize;
            if csize > 0 {
                let lay = std::alloc::Layout::from_size_align(32 + csize, 16).expect("context layout");
                let c = std::alloc::alloc_zeroed(lay).cast::<NET_BUFFER_LIST_CONTEXT>();
                (*c).Size = csize as u16;
                (*c).Offset = (context_backfill as usize + pool.context_size as usize) as u16;
                (*n).Context = c;
                let hd = nbl::hdr(n);
                (*hd).context = c as usize;
                (*hd).context_size = 32 + csize;
            }
        }
        pool.live.fetch_add(1, Ordering::AcqRel);
        n
    })
}

pub(crate) unsafe extern "win64" fn NdisFreeNetBufferList(n: *mut NET_BUFFER_LIST) {
    const CALL: &str = "NdisFreeNetBufferList";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !nbl::valid(n) {
            v(Rule::InvalidParameter, CALL, None, Some(n as usize), "not an NBL allocated by NDIS".into());
            return;
        }
        // SAFETY: valid.
        let o = unsafe { nbl::owner(n) };
        let st = o.load(Ordering::Acquire);
        if st != own::DRIVER {
            let why = match st {
                own::FREE => "freed an NBL that is already free (double free)",
                own::IN_FLIGHT => "freed a sent NBL that NDIS owns until its send completes",
                _ => "freed a receive NBL that belongs to NDIS",
            };
            v(Rule::NblOwnership, CALL, None, Some(n as usize), why.into());
            return;
        }
        // SAFETY: valid; its pool is one of ours.
        let pool_addr = unsafe { (*nbl::hdr(n)).pool };
        let Some(pool) = lock(&k.ndis.pools).iter().find(|p| Arc::as_ptr(p) as usize == pool_addr).cloned() else {
            v(Rule::InvalidParameter, CALL, None, Some(n as usize), "the NBL's pool is unknown".into());
            return;
        };
        o.store(own::FREE, Ordering::Release);
        // SAFETY: ours again; drop its context.
        unsafe {
            let hd = nbl::hdr(n);
            if (*hd).context != 0 {
                std::alloc::dealloc((*hd).context as *mut u8, std::alloc::Layout::from_size_align_unchecked((*hd).context_size, 16));
                (*hd).context = 0;
            }
        }
        pool.live.fetch_sub(1, Ordering::AcqRel);
        if pool.freed.load(Ordering::Acquire) {
            v(Rule::InvalidParameter, CALL, None, Some(n as usize), "freed an NBL after its pool was freed".into());
            return;
        }
        lock(&pool.free_list).push(n as usize);
    })
}

pub(crate) unsafe extern "win64" fn NdisAllocateMdl(h: NDIS_HANDLE, va: PVOID, len: u32) -> *mut MDL {
    const CALL: &str = "NdisAllocateMdl";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !valid_ndis_handle(k, h, CALL) {
            return std::ptr::null_mut();
        }
        if va.is_null() || len == 0 {
            v(Rule::InvalidParameter, CALL, None, None, "null VirtualAddress or zero Length".into());
            return std::ptr::null_mut();
        }
        let m = nbl::alloc_mdl(va as usize, len as usize, true);
        if !m.is_null() {
            lock(&k.ndis.mdls).insert(m as usize);
        }
        m
    })
}

pub(crate) unsafe extern "win64" fn NdisFreeMdl(m: *mut MDL) {
    const CALL: &str = "NdisFreeMdl";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !lock(&k.ndis.mdls).remove(&(m as usize)) {
            v(Rule::InvalidParameter, CALL, None, Some(m as usize), "not an MDL from NdisAllocateMdl (or freed already)".into());
            return;
        }
        // SAFETY: allocated by NdisAllocateMdl, freed once.
        unsafe { nbl::free_mdl(m) };
    })
}

// ===========================================================================
// Send
// ===========================================================================

fn with_scratch<R>(f: impl FnOnce(&mut Vec<usize>) -> R) -> R {
    SCRATCH.with(|s| {
        let mut v = std::mem::take(&mut *s.borrow_mut());
        v.clear();
        let r = f(&mut v);
        *s.borrow_mut() = v;
        r
    })
}

pub(crate) unsafe extern "win64" fn NdisSendNetBufferLists(h: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, _port: NDIS_PORT_NUMBER, flags: u32) {
    const CALL: &str = "NdisSendNetBufferLists";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 && irql() != DISPATCH_LEVEL {
            v(Rule::Irql, CALL, None, None, "NDIS_SEND_FLAGS_DISPATCH_LEVEL is set but the caller is not at DISPATCH_LEVEL".into());
        }
        let Some(b) = k.ndis.binding(h, CALL, false) else { return };
        let mode = k.verifier.checksum();
        with_scratch(|list| {
            let mut cur = nbls;
            while !cur.is_null() {
                if !nbl::valid(cur) {
                    v(Rule::InvalidParameter, CALL, Some(b), Some(cur as usize), "not an NBL allocated by NDIS; the rest of the chain is dropped".into());
                    break;
                }
                // SAFETY: a valid NBL; `Next` is read before NDIS relinks it.
                let next = unsafe { (*cur).anon.anon.Next };
                // SAFETY: valid.
                let o = unsafe { nbl::owner(cur) };
                if let Err(st) = o.compare_exchange(own::DRIVER, own::IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire) {
                    let why = match st {
                        own::IN_FLIGHT => "sent an NBL again while NDIS still owns it from an earlier send",
                        own::FREE => "sent an NBL that was freed",
                        _ => "sent a receive NBL that NDIS owns",
                    };
                    v(Rule::NblOwnership, CALL, Some(b), Some(cur as usize), why.into());
                    cur = next;
                    continue;
                }
                // SAFETY: the NBL is now NDIS's.
                unsafe {
                    if (*cur).SourceHandle != h {
                        v(Rule::SendSourceHandle, CALL, Some(b), Some(cur as usize), format!("SourceHandle is {:#x}, not the binding handle {:#x}", (*cur).SourceHandle as usize, h as usize));
                    }
                    let hd = nbl::hdr(cur);
                    (*hd).binding.store(b as *const Binding as usize, Ordering::Relaxed);
                    (*hd).checksum = nbl::checksum(cur, mode);
                }
                list.push(cur as usize);
                cur = next;
            }
            let n = list.len() as u64;
            if n == 0 {
                return;
            }
            b.sends.fetch_add(n, Ordering::AcqRel);
            let f = k.ndis.stats.in_flight.fetch_add(n, Ordering::AcqRel) + n;
            k.ndis.stats.in_flight_peak.fetch_max(f, Ordering::AcqRel);
            k.ndis.stats.sends.fetch_add(n, Ordering::Relaxed);
            if !b.running.load(Ordering::Acquire) && !b.pause_in_handler.load(Ordering::Acquire) {
                v(Rule::SendNotRunning, CALL, Some(b), Some(list[0]), format!("sent {n} NBL(s) while the binding is {:?}; NDIS fails them with NDIS_STATUS_PAUSED", b.state()));
                complete_nbls(k, list, NDIS_STATUS_PAUSED);
                return;
            }
            let a = k.ndis.adapter(b.adapter);
            transmit(k, a, list);
            let policy = *lock(&a.policy);
            match policy {
                CompletionPolicy::Immediate => complete_nbls(k, list, NDIS_STATUS_SUCCESS),
                CompletionPolicy::Batched(nb) | CompletionPolicy::Reordered(nb) => {
                    let ready = {
                        let mut held = lock(&a.held);
                        held.extend_from_slice(list);
                        if held.len() >= nb {
                            Some(std::mem::take(&mut *held))
                        } else {
                            None
                        }
                    };
                    if let Some(mut ready) = ready {
                        if matches!(policy, CompletionPolicy::Reordered(_)) {
                            ready.reverse();
                        }
                        complete_nbls(k, &ready, NDIS_STATUS_SUCCESS);
                    }
                }
                CompletionPolicy::Delayed(d) => {
                    let owned = list.clone();
                    k.dpc.push(d, DISPATCH_LEVEL, move || {
                        if let Some(k) = kernel::kernel() {
                            complete_nbls(k, &owned, NDIS_STATUS_SUCCESS);
                        }
                    });
                }
                CompletionPolicy::Held => lock(&a.held).extend_from_slice(list),
            }
        });
    })
}

/// Gives sent NBLs back to their bindings (grouped by binding, in order):
/// checks their checksums, sets their status and calls
/// `ProtocolSendNetBufferListsComplete` at DISPATCH_LEVEL.
pub(crate) fn complete_nbls(k: &Kernel, nbls: &[usize], status: NDIS_STATUS) {
    let mode = k.verifier.checksum();
    let mut i = 0;
    while i < nbls.len() {
        // SAFETY: in-flight NBLs of ours.
        let bp = unsafe { (*nbl::hdr(nbls[i] as *mut NET_BUFFER_LIST)).binding.load(Ordering::Relaxed) };
        let mut j = i;
        // SAFETY: as above.
        while j < nbls.len() && unsafe { (*nbl::hdr(nbls[j] as *mut NET_BUFFER_LIST)).binding.load(Ordering::Relaxed) } == bp {
            j += 1;
        }
        // SAFETY: bindings live for the simulation.
        let b = unsafe { &*(bp as *const Binding) };
        let group = &nbls[i..j];
        for (x, &p) in group.iter().enumerate() {
            let n = p as *mut NET_BUFFER_LIST;
            // SAFETY: NDIS owns `n` until the handler below.
            unsafe {
                if mode != Checksum::Off {
                    let c = nbl::checksum(n, mode);
                    if c != (*nbl::hdr(n)).checksum {
                        v(Rule::NblOwnership, "NdisSendNetBufferLists", Some(b), Some(p), "the NBL (or its NET_BUFFERs, MDLs or data) changed while NDIS owned it, between the send and its completion".into());
                    }
                }
                (*n).anon2.Status = status;
                (*n).anon.anon.Next = group.get(x + 1).map_or(std::ptr::null_mut(), |&q| q as *mut NET_BUFFER_LIST);
                nbl::owner(n).store(own::DRIVER, Ordering::Release);
            }
        }
        let cnt = group.len() as u64;
        b.sends.fetch_sub(cnt, Ordering::AcqRel);
        k.ndis.stats.in_flight.fetch_sub(cnt, Ordering::AcqRel);
        let handler = b.proto.chars.SendNetBufferListsCompleteHandler.expect("validated");
        let ctx = b.ctx;
        let head = group[0] as *mut NET_BUFFER_LIST;
        call_driver("ProtocolSendNetBufferListsComplete", DISPATCH_LEVEL, || {
            // SAFETY: the driver's handler with its binding context and the
            // NBLs it sent, now its own again.
            unsafe { handler(ctx as NDIS_HANDLE, head, NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL) }
        });
        i = j;
    }
}

/// Releases held send completions of `a` (all of them, or the first `n`).
pub(crate) fn release_sends(k: &Kernel, a: &Adapter, n: Option<usize>) -> usize {
    let take = {
        let mut held = lock(&a.held);
        let n = n.unwrap_or(held.len()).min(held.len());
        held.drain(..n).collect::<Vec<_>>()
    };
    let count = take.len();
    complete_nbls(k, &take, NDIS_STATUS_SUCCESS);
    count
}

/// The adapter puts the frames on its wire.
fn transmit(k: &Kernel, a: &Adapter, list: &[usize]) {
    let capture = a.capture.load(Ordering::Relaxed);
    let needs_bytes = capture || a.tap.is_some() || matches!(a.spec.kind, adapter::AdapterKind::Loopback | adapter::AdapterKind::Pair(_));
    // Counted once per call, not per frame: the null adapter's cost per
    // frame stays a few loads and stores.
    let (mut frames, mut bytes) = (0u64, 0u64);
    for &p in list {
        let n = p as *mut NET_BUFFER_LIST;
        // SAFETY: NDIS owns the NBL (in flight); its NBs and MDLs are the
        // driver's, valid while in flight.
        unsafe {
            let info = (*n).NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize;
            let tci = (info != 0).then(|| {
                let prio = (info & 7) as u16;
                let cfi = ((info >> 3) & 1) as u16;
                let vlan = ((info >> 4) & 0xFFF) as u16;
                (prio << 13) | (cfi << 12) | vlan
            });
            let mut nb = (*n).anon.anon.FirstNetBuffer;
            while !nb.is_null() {
                let len = (*nb).anon.anon.anon.DataLength as u64;
                frames += 1;
                bytes += len;
                if needs_bytes {
                    let mut data = Vec::with_capacity(len as usize);
                    nbl::copy_nb(nb, &mut data);
                    deliver(k, a, Frame { data, tci }, capture);
                }
                nb = (*nb).anon.anon.Next;
            }
        }
    }
    a.counters.tx_frames.fetch_add(frames, Ordering::Relaxed);
    a.counters.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
}

fn deliver(k: &Kernel, a: &Adapter, f: Frame, capture: bool) {
    if let Some(t) = &a.tap {
        if !t.write(&f.data) {
            a.counters.rx_dropped.fetch_add(0, Ordering::Relaxed);
        }
    }
    match &a.spec.kind {
        adapter::AdapterKind::Loopback => a.rx.push(f.clone()),
        adapter::AdapterKind::Pair(_) => {
            if let Some(&peer) = a.peer.get() {
                k.ndis.adapter(peer).rx.push(f.clone());
            }
        }
        _ => {}
    }
    if capture {
        lock(&a.captured).push(f);
    }
}

// ===========================================================================
// Receive
// ===========================================================================

impl Adapter {
    pub(crate) fn new(idx: usize, name: String, spec: adapter::AdapterSpec, tap: Option<adapter::Tap>) -> Adapter {
        let mac = spec.mac.unwrap_or_else(|| adapter::default_mac(idx));
        let guid = format!("{{5E1A0D15-{:04X}-4E44-9A11-{:012X}}}", idx, idx as u64 + 0x5245_4E44);
        Adapter {
            idx,
            ndis_name: wstr(&format!("\\DEVICE\\{guid}")),
            desc: format!("ndisim {} adapter {name}", spec.kind),
            model: Mutex::new(Model {
                mtu: spec.mtu,
                mac,
                permanent_mac: mac,
                link_up: spec.link_up,
                speed: spec.speed,
                packet_filter: 0,
                lookahead: spec.mtu,
                multicast: Vec::new(),
                powered: true,
            }),
            binding: Mutex::new(None),
            policy: Mutex::new(spec.completion),
            held: Mutex::new(Vec::new()),
            oid_hold: AtomicBool::new(spec.hold_oids),
            captured: Mutex::new(Vec::new()),
            capture: AtomicBool::new(spec.capture),
            rx: adapter::RxQueue::new(),
            recv_free: Mutex::new(Vec::new()),
            recv_all: Mutex::new(Vec::new()),
            peer: OnceLock::new(),
            tap,
            counters: adapter::Counters::default(),
            resume_running: AtomicBool::new(false),
            failing_oids: Mutex::new(spec.failing_oids.clone()),
            oid_log: Mutex::new(Vec::new()),
            name,
            spec,
        }
    }

    /// `n` receive slots (one lock for all), each checked unchanged since
    /// it was returned; appended to `out`.
    fn take_slots(&self, k: &Kernel, n: usize, out: &mut Vec<usize>) {
        let first = out.len();
        {
            let mut free = lock(&self.recv_free);
            let have = free.len().min(n);
            let at = free.len() - have;
            out.extend(free.drain(at..));
        }
        let mode = k.verifier.checksum();
        if mode != Checksum::Off {
            for &s in &out[first..] {
                let s = s as *mut RecvSlot;
                // SAFETY: a free slot: NDIS owns it and nobody else touches it.
                unsafe {
                    if (*s).returned_sum != 0 && nbl::checksum((*s).nbl, mode) != (*s).returned_sum {
                        let bp = (*nbl::hdr((*s).nbl)).binding.load(Ordering::Relaxed);
                        let b = (bp != 0).then(|| &*(bp as *const Binding));
                        v(Rule::NblOwnership, "NdisReturnNetBufferLists", b, Some((*s).nbl as usize), "a received NBL (or its data) was changed after the driver gave it back to NDIS".into());
                    }
                }
            }
        }
        while out.len() - first < n {
            let nbl = nbl::alloc_nbl(self.idx, false, true);
            let slot = Box::into_raw(Box::new(RecvSlot { nbl, nbs: Vec::new(), returned_sum: 0 }));
            // SAFETY: fresh.
            unsafe { (*nbl::hdr(nbl)).slot = slot as usize };
            lock(&self.recv_all).push(slot as usize);
            out.push(slot as usize);
        }
    }

    /// Puts slots back (one lock for all), with their checksums.
    fn put_slots(&self, k: &Kernel, slots: &[usize]) {
        let mode = k.verifier.checksum();
        for &s in slots {
            let s = s as *mut RecvSlot;
            // SAFETY: the slot is NDIS's again.
            unsafe {
                (*s).returned_sum = if mode == Checksum::Off { 0 } else { nbl::checksum((*s).nbl, mode) };
            }
        }
        lock(&self.recv_free).extend_from_slice(slots);
    }
}

fn new_nb() -> RecvNb {
    // SAFETY: NET_BUFFER is plain data.
    let nb = Box::into_raw(Box::new(NbBox(unsafe { std::mem::zeroed() }))).cast::<NET_BUFFER>();
    let buf = vec![0u8; 2048];
    let mdl = nbl::alloc_mdl(buf.as_ptr() as usize, buf.len(), true);
    RecvNb { nb, buf, mdl }
}

/// Fills `slot` with `frames` and links its NBs.
///
/// # Safety
/// The slot is ours (taken from the free list).
unsafe fn fill_slot(a: &Adapter, s: *mut RecvSlot, frames: &[&[u8]], tci: Option<u16>) {
    // SAFETY: per the caller.
    let s = unsafe { &mut *s };
    while s.nbs.len() < frames.len() {
        s.nbs.push(new_nb());
    }
    let n = s.nbl;
    // SAFETY: ours; reset what the driver may have seen last time.
    unsafe {
        let keep_pool = (*n).NdisPoolHandle;
        std::ptr::write_bytes(n.cast::<u8>(), 0, nbl::NBL_SIZE);
        (*n).NdisPoolHandle = keep_pool;
        (*n).SourceHandle = a as *const Adapter as NDIS_HANDLE;
        if let Some(t) = tci {
            let info = ((t >> 13) & 7) as usize | ((((t >> 12) & 1) as usize) << 3) | (((t & 0xFFF) as usize) << 4);
            (*n).NetBufferListInfo[Ieee8021QNetBufferListInfo] = info as PVOID;
        }
        for (i, f) in frames.iter().enumerate() {
            let r = &mut s.nbs[i];
            if r.buf.len() < f.len() {
                r.buf = vec![0u8; f.len().next_power_of_two()];
                nbl::free_mdl(r.mdl);
                r.mdl = nbl::alloc_mdl(r.buf.as_ptr() as usize, r.buf.len(), true);
            }
            r.buf[..f.len()].copy_from_slice(f);
            std::ptr::write_bytes(r.nb, 0, 1);
            let d = &mut (*r.nb).anon.anon;
            d.MdlChain = r.mdl;
            d.CurrentMdl = r.mdl;
            d.anon.DataLength = f.len() as u32;
            (*r.mdl).Next = std::ptr::null_mut();
            (*r.nb).NdisPoolHandle = keep_pool;
        }
        for i in 0..frames.len() {
            let next = if i + 1 < frames.len() { s.nbs[i + 1].nb } else { std::ptr::null_mut() };
            (*s.nbs[i].nb).anon.anon.Next = next;
        }
        (*n).anon.anon.FirstNetBuffer = s.nbs[0].nb;
    }
}

/// Indicates `frames` to the adapter's binding. Returns frames indicated.
pub(crate) fn indicate(k: &Kernel, a: &Adapter, frames: &[&[u8]], o: &InjectOpts) -> Result<usize, SimError> {
    let Some(b) = lock(&a.binding).clone() else {
        a.counters.rx_dropped.fetch_add(frames.len() as u64, Ordering::Relaxed);
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    match b.state() {
        BindingState::Running | BindingState::Pausing => {}
        s => {
            a.counters.rx_dropped.fetch_add(frames.len() as u64, Ordering::Relaxed);
            return Err(SimError::State(format!("binding {} is {s:?}: NDIS indicates no receives", a.name)));
        }
    }
    if frames.iter().any(|f| f.is_empty()) {
        return Err(SimError::Other("an empty frame".into()));
    }
    let per_nbl = o.nbs_per_nbl.max(1);
    let per_ind = o.nbls_per_indication.max(1);
    let handler = b.proto.chars.ReceiveNetBufferListsHandler.expect("validated");
    let ctx = b.ctx;
    let bp = Arc::as_ptr(&b) as usize;
    let mut flags = if o.dispatch { NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL } else { 0 };
    if o.resources {
        flags |= NDIS_RECEIVE_FLAGS_RESOURCES;
    }
    let level = if o.dispatch { DISPATCH_LEVEL } else { PASSIVE_LEVEL };
    let mut done = 0;
    for chunk in frames.chunks(per_nbl * per_ind) {
        with_scratch(|slots| {
            a.take_slots(k, chunk.len().div_ceil(per_nbl), slots);
            for (nf, &s) in chunk.chunks(per_nbl).zip(slots.iter()) {
                let s = s as *mut RecvSlot;
                // SAFETY: a slot we just took.
                unsafe {
                    fill_slot(a, s, nf, o.tci);
                    let n = (*s).nbl;
                    let hd = nbl::hdr(n);
                    (*hd).binding.store(bp, Ordering::Relaxed);
                    (*hd).owner.store(if o.resources { own::INDICATED_RESOURCES } else { own::INDICATED }, Ordering::Release);
                }
            }
            for i in 0..slots.len() {
                // SAFETY: our slots; link their NBLs.
                unsafe {
                    let next = slots.get(i + 1).map_or(std::ptr::null_mut(), |&q| (*(q as *mut RecvSlot)).nbl);
                    (*(*(slots[i] as *mut RecvSlot)).nbl).anon.anon.Next = next;
                }
            }
            let count = slots.len() as u32;
            if !o.resources {
                b.recvs.fetch_add(count as u64, Ordering::AcqRel);
                let held = k.ndis.stats.recv_held.fetch_add(count as u64, Ordering::AcqRel) + count as u64;
                k.ndis.stats.recv_held_peak.fetch_max(held, Ordering::AcqRel);
            }
            a.counters.rx_frames.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            a.counters.rx_bytes.fetch_add(chunk.iter().map(|f| f.len() as u64).sum(), Ordering::Relaxed);
            k.ndis.stats.indications.fetch_add(1, Ordering::Relaxed);
            // SAFETY: our first slot.
            let head = unsafe { (*(slots[0] as *mut RecvSlot)).nbl };
            call_driver("ProtocolReceiveNetBufferLists", level, || {
                // SAFETY: the driver's handler with its binding context and
                // NBLs that stay valid while it may hold them.
                unsafe { handler(ctx as NDIS_HANDLE, head, 0, count, flags) }
            });
            if o.resources {
                for &s in slots.iter() {
                    let s = s as *mut RecvSlot;
                    // SAFETY: our slot; NDIS takes it back on return.
                    let o = unsafe { nbl::owner((*s).nbl) };
                    o.store(own::NDIS, Ordering::Release);
                }
                a.put_slots(k, slots);
            }
        });
        done += chunk.len();
    }
    Ok(done)
}

pub(crate) unsafe extern "win64" fn NdisReturnNetBufferLists(h: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    const CALL: &str = "NdisReturnNetBufferLists";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if flags & NDIS_RETURN_FLAGS_DISPATCH_LEVEL != 0 && irql() != DISPATCH_LEVEL {
            v(Rule::Irql, CALL, None, None, "NDIS_RETURN_FLAGS_DISPATCH_LEVEL is set but the caller is not at DISPATCH_LEVEL".into());
        }
        let Some(b) = k.ndis.binding(h, CALL, true) else { return };
        // Slots go back to their adapter, and counts to their binding, a
        // batch at a time (one lock and one atomic per batch, not per NBL).
        struct Back<'k> {
            k: &'k Kernel,
            adapter: usize,
            binding: usize,
            slots: [usize; 32],
            n: usize,
        }
        impl Back<'_> {
            fn flush(&mut self) {
                if self.n == 0 {
                    return;
                }
                // SAFETY: bindings live for the simulation.
                unsafe { (*(self.binding as *const Binding)).recvs.fetch_sub(self.n as u64, Ordering::AcqRel) };
                self.k.ndis.stats.recv_held.fetch_sub(self.n as u64, Ordering::AcqRel);
                self.k.ndis.adapter(self.adapter).put_slots(self.k, &self.slots[..self.n]);
                self.n = 0;
            }
            fn push(&mut self, adapter: usize, binding: usize, slot: usize) {
                if self.n == self.slots.len() || (self.n != 0 && (adapter, binding) != (self.adapter, self.binding)) {
                    self.flush();
                }
                self.adapter = adapter;
                self.binding = binding;
                self.slots[self.n] = slot;
                self.n += 1;
            }
        }
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                self.flush();
            }
        }
        let mut back = Back { k, adapter: 0, binding: 0, slots: [0; 32], n: 0 };
        let mut cur = nbls;
        while !cur.is_null() {
            if !nbl::valid(cur) {
                v(Rule::InvalidParameter, CALL, Some(b), Some(cur as usize), "not an NBL NDIS indicated; the rest of the chain is ignored".into());
                return;
            }
            // SAFETY: valid.
            let (next, hd) = unsafe { ((*cur).anon.anon.Next, nbl::hdr(cur)) };
            // SAFETY: valid.
            let o = unsafe { nbl::owner(cur) };
            match o.compare_exchange(own::INDICATED, own::NDIS, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // SAFETY: a receive NBL: its slot and adapter are ours.
                    let (bp, slot, aidx) = unsafe { ((*hd).binding.load(Ordering::Relaxed), (*hd).slot, (*hd).pool) };
                    if bp != b as *const Binding as usize {
                        v(Rule::InvalidParameter, CALL, Some(b), Some(cur as usize), "returned on a binding other than the one it was indicated to".into());
                    }
                    back.push(aidx, bp, slot);
                }
                Err(st) => {
                    let why = match st {
                        own::INDICATED_RESOURCES => "returned an NBL indicated with NDIS_RECEIVE_FLAGS_RESOURCES (NDIS takes those back when the handler returns)",
                        own::NDIS => "returned an NBL that NDIS already owns (returned twice)",
                        _ => "returned an NBL that was not indicated to the driver (a send NBL?)",
                    };
                    v(Rule::NblOwnership, CALL, Some(b), Some(cur as usize), why.into());
                }
            }
            cur = next;
        }
    })
}

// ===========================================================================
// OID requests
// ===========================================================================

enum Answer {
    Data(Vec<u8>),
    Set,
    Status(NDIS_STATUS),
}

fn u32b(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The adapter model answers a query or set.
fn answer(a: &Adapter, kind: NDIS_REQUEST_TYPE, oid: u32, input: &[u8]) -> Answer {
    if lock(&a.failing_oids).contains(&oid) {
        return Answer::Status(NDIS_STATUS_FAILURE);
    }
    let mut m = lock(&a.model);
    let speed100 = (m.speed / 100).min(u32::MAX as u64) as u32;
    let link_state = || {
        // SAFETY: plain data.
        let mut l: NDIS_LINK_STATE = unsafe { std::mem::zeroed() };
        l.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_DEFAULT, Revision: NDIS_LINK_STATE_REVISION_1, Size: NDIS_SIZEOF_LINK_STATE_REVISION_1 };
        l.MediaConnectState = if m.link_up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
        l.MediaDuplexState = MediaDuplexStateFull;
        l.XmitLinkSpeed = if m.link_up { m.speed } else { 0 };
        l.RcvLinkSpeed = l.XmitLinkSpeed;
        l
    };
    let c = &a.counters;
    if kind == NdisRequestSetInformation {
        return match oid {
            OID_GEN_CURRENT_PACKET_FILTER => {
                let Some(v) = input.get(..4) else { return Answer::Status(NDIS_STATUS_INVALID_LENGTH) };
                let f = u32::from_le_bytes(v.try_into().unwrap());
                if f & !adapter::SUPPORTED_FILTERS != 0 {
                    return Answer::Status(NDIS_STATUS_NOT_SUPPORTED);
                }
                m.packet_filter = f;
                Answer::Set
            }
            OID_GEN_CURRENT_LOOKAHEAD => {
                let Some(v) = input.get(..4) else { return Answer::Status(NDIS_STATUS_INVALID_LENGTH) };
                let l = u32::from_le_bytes(v.try_into().unwrap());
                if l > m.mtu {
                    return Answer::Status(NDIS_STATUS_INVALID_PARAMETER);
                }
                m.lookahead = l;
                Answer::Set
            }
            OID_802_3_MULTICAST_LIST => {
                if input.len() % 6 != 0 {
                    return Answer::Status(NDIS_STATUS_INVALID_LENGTH);
                }
                if input.len() / 6 > adapter::MAX_MULTICAST {
                    return Answer::Status(NDIS_STATUS_RESOURCES);
                }
                m.multicast = input.chunks(6).map(|c| c.try_into().unwrap()).collect();
                Answer::Set
            }
            _ => Answer::Status(NDIS_STATUS_NOT_SUPPORTED),
        };
    }
    if kind != NdisRequestQueryInformation && kind != NdisRequestQueryStatistics {
        return Answer::Status(NDIS_STATUS_NOT_SUPPORTED);
    }
    let as_bytes = |p: *const u8, n: usize| {
        // SAFETY: `p` points at a local plain-data value of `n` bytes.
        unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
    };
    Answer::Data(match oid {
        OID_GEN_SUPPORTED_LIST => SUPPORTED_OIDS.iter().flat_map(|o| o.to_le_bytes()).collect(),
        OID_GEN_HARDWARE_STATUS => u32b(0),
        OID_GEN_MEDIA_SUPPORTED | OID_GEN_MEDIA_IN_USE => u32b(NdisMedium802_3),
        OID_GEN_MAXIMUM_LOOKAHEAD | OID_GEN_MAXIMUM_FRAME_SIZE => u32b(m.mtu),
        OID_GEN_CURRENT_LOOKAHEAD => u32b(m.lookahead),
        OID_GEN_MAXIMUM_TOTAL_SIZE => u32b(m.mtu + 14),
        OID_GEN_LINK_SPEED => u32b(if m.link_up { speed100 } else { 0 }),
        OID_GEN_TRANSMIT_BUFFER_SPACE | OID_GEN_RECEIVE_BUFFER_SPACE => u32b((m.mtu + 14) * 256),
        OID_GEN_VENDOR_ID => vec![0x02, 0x00, 0x5e, 0x01],
        OID_GEN_VENDOR_DESCRIPTION => {
            let mut d = a.desc.clone().into_bytes();
            d.push(0);
            d
        }
        OID_GEN_CURRENT_PACKET_FILTER => u32b(m.packet_filter),
        OID_GEN_DRIVER_VERSION => vec![0x14, 0x06],
        OID_GEN_MAC_OPTIONS => u32b(0),
        OID_GEN_MEDIA_CONNECT_STATUS => u32b(if m.link_up { 0 } else { 1 }),
        OID_GEN_MAXIMUM_SEND_PACKETS => u32b(1),
        OID_GEN_VENDOR_DRIVER_VERSION => u32b(0x0001_0000),
        OID_GEN_PHYSICAL_MEDIUM => u32b(14),
        OID_GEN_RECEIVE_SCALE_CAPABILITIES => {
            if !a.spec.rss {
                return Answer::Status(NDIS_STATUS_NOT_SUPPORTED);
            }
            rss_caps().to_vec()
        }
        OID_GEN_MAX_LINK_SPEED => [m.speed.to_le_bytes(), m.speed.to_le_bytes()].concat(),
        OID_GEN_LINK_STATE => {
            let l = link_state();
            as_bytes((&l as *const NDIS_LINK_STATE).cast(), std::mem::size_of::<NDIS_LINK_STATE>())
        }
        OID_GEN_XMIT_OK => c.tx_frames.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_RCV_OK => c.rx_frames.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_XMIT_ERROR | OID_GEN_RCV_ERROR => 0u64.to_le_bytes().to_vec(),
        OID_GEN_RCV_NO_BUFFER => c.rx_dropped.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_STATISTICS => {
            // SAFETY: plain data.
            let mut s: NDIS_STATISTICS_INFO = unsafe { std::mem::zeroed() };
            s.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_DEFAULT, Revision: NDIS_STATISTICS_INFO_REVISION_1, Size: NDIS_SIZEOF_STATISTICS_INFO_REVISION_1 };
            s.SupportedStatistics = 0x3F_FFFF;
            s.ifHCInUcastPkts = c.rx_frames.load(Ordering::Relaxed);
            s.ifHCInOctets = c.rx_bytes.load(Ordering::Relaxed);
            s.ifHCOutUcastPkts = c.tx_frames.load(Ordering::Relaxed);
            s.ifHCOutOctets = c.tx_bytes.load(Ordering::Relaxed);
            s.ifInDiscards = c.rx_dropped.load(Ordering::Relaxed);
            as_bytes((&s as *const NDIS_STATISTICS_INFO).cast(), std::mem::size_of::<NDIS_STATISTICS_INFO>())
        }
        OID_802_3_PERMANENT_ADDRESS => m.permanent_mac.to_vec(),
        OID_802_3_CURRENT_ADDRESS => m.mac.to_vec(),
        OID_802_3_MULTICAST_LIST => m.multicast.concat(),
        OID_802_3_MAXIMUM_LIST_SIZE => u32b(adapter::MAX_MULTICAST as u32),
        _ => return Answer::Status(NDIS_STATUS_NOT_SUPPORTED),
    })
}

/// Fills in the request's result fields; returns the status.
///
/// # Safety
/// `req` is a valid request NDIS owns.
unsafe fn apply_answer(a: &Adapter, req: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
    // SAFETY: per the caller.
    unsafe {
        let r = &mut *req;
        let kind = r.RequestType;
        match kind {
            NdisRequestSetInformation => {
                let s = &mut r.DATA.SET_INFORMATION;
                let input = if s.InformationBuffer.is_null() { &[][..] } else { std::slice::from_raw_parts(s.InformationBuffer.cast::<u8>(), s.InformationBufferLength as usize) };
                match answer(a, kind, s.Oid, input) {
                    Answer::Set => {
                        s.BytesRead = s.InformationBufferLength;
                        NDIS_STATUS_SUCCESS
                    }
                    Answer::Status(st) => st,
                    Answer::Data(_) => NDIS_STATUS_NOT_SUPPORTED,
                }
            }
            NdisRequestQueryInformation | NdisRequestQueryStatistics => {
                let q = &mut r.DATA.QUERY_INFORMATION;
                match answer(a, kind, q.Oid, &[]) {
                    Answer::Data(d) => {
                        // 64-bit counters may be read into 4 bytes.
                        let small_counter = matches!(q.Oid, OID_GEN_XMIT_OK | OID_GEN_RCV_OK | OID_GEN_XMIT_ERROR | OID_GEN_RCV_ERROR | OID_GEN_RCV_NO_BUFFER) && q.InformationBufferLength == 4;
                        let n = if small_counter { 4 } else { d.len() };
                        if (q.InformationBufferLength as usize) < n || (n > 0 && q.InformationBuffer.is_null()) {
                            q.BytesNeeded = d.len() as u32;
                            q.BytesWritten = 0;
                            return NDIS_STATUS_BUFFER_TOO_SHORT;
                        }
                        std::ptr::copy_nonoverlapping(d.as_ptr(), q.InformationBuffer.cast::<u8>(), n);
                        q.BytesWritten = n as u32;
                        q.BytesNeeded = 0;
                        NDIS_STATUS_SUCCESS
                    }
                    Answer::Status(st) => st,
                    Answer::Set => NDIS_STATUS_NOT_SUPPORTED,
                }
            }
            _ => NDIS_STATUS_NOT_SUPPORTED,
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisOidRequest(h: NDIS_HANDLE, req: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
    const CALL: &str = "NdisOidRequest";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(b) = k.ndis.binding(h, CALL, false) else { return NDIS_STATUS_INVALID_PARAMETER };
        if req.is_null() {
            v(Rule::InvalidParameter, CALL, Some(b), None, "null OidRequest".into());
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        if lock(&k.ndis.oids).iter().any(|p| p.req == req as usize) {
            v(Rule::OidDoubleComplete, CALL, Some(b), Some(req as usize), "submitted an NDIS_OID_REQUEST that NDIS still owns from an earlier NdisOidRequest; NDIS would complete it twice".into());
            return NDIS_STATUS_FAILURE;
        }
        // SAFETY: the driver's request.
        let r = unsafe { &mut *req };
        if r.Header.Type != NDIS_OBJECT_TYPE_OID_REQUEST || r.Header.Revision < NDIS_OID_REQUEST_REVISION_1 || r.Header.Size < NDIS_SIZEOF_OID_REQUEST_REVISION_1 {
            v(Rule::InvalidParameter, CALL, Some(b), Some(req as usize), format!("bad NDIS_OID_REQUEST header {{Type {:#x}, Revision {}, Size {:#x}}}", r.Header.Type, r.Header.Revision, r.Header.Size));
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        let a = k.ndis.adapter(b.adapter).clone();
        // SAFETY: the union member is the OID for every request type.
        lock(&a.oid_log).push((r.RequestType, unsafe { r.DATA.QUERY_INFORMATION.Oid }));
        // SAFETY: as above.
        let st = unsafe { apply_answer(&a, req) };
        let hold = a.oid_hold.load(Ordering::Acquire);
        if a.spec.oid == Completion::Sync && !hold {
            return st;
        }
        let bind = lock(&a.binding).clone().filter(|x| std::ptr::eq(Arc::as_ptr(x), b));
        let Some(bind) = bind else { return st };
        b.oids.fetch_add(1, Ordering::AcqRel);
        lock(&k.ndis.oids).push(PendingOid { req: req as usize, request_id: r.RequestId as usize, binding: bind, status: st });
        if !hold {
            let rq = req as usize;
            k.dpc.push(Duration::ZERO, DISPATCH_LEVEL, move || {
                if let Some(k) = kernel::kernel() {
                    finish_oid(k, rq, None);
                }
            });
        }
        NDIS_STATUS_PENDING
    })
}

/// Completes a pending OID request (with its status, or `status`).
fn finish_oid(k: &Kernel, req: usize, status: Option<NDIS_STATUS>) -> bool {
    let p = {
        let mut l = lock(&k.ndis.oids);
        let Some(i) = l.iter().position(|p| p.req == req) else { return false };
        l.remove(i)
    };
    let st = status.unwrap_or(p.status);
    p.binding.oids.fetch_sub(1, Ordering::AcqRel);
    let handler = p.binding.proto.chars.OidRequestCompleteHandler.expect("validated");
    let ctx = p.binding.ctx;
    kernel::at_irql(irql(), || {
        call_driver("ProtocolOidRequestComplete", DISPATCH_LEVEL, || {
            // SAFETY: the driver's handler with its binding context and the
            // request it submitted.
            unsafe { handler(ctx as NDIS_HANDLE, req as *mut NDIS_OID_REQUEST, st) }
        })
    });
    true
}

/// Completes held OID requests of `a`.
pub(crate) fn release_oids(k: &Kernel, a: &Adapter) -> usize {
    a.oid_hold.store(false, Ordering::Release);
    let reqs: Vec<usize> = lock(&k.ndis.oids).iter().filter(|p| p.binding.adapter == a.idx).map(|p| p.req).collect();
    let mut n = 0;
    for r in reqs {
        if finish_oid(k, r, None) {
            n += 1;
        }
    }
    n
}

pub(crate) unsafe extern "win64" fn NdisCancelOidRequest(h: NDIS_HANDLE, request_id: PVOID) {
    const CALL: &str = "NdisCancelOidRequest";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(b) = k.ndis.binding(h, CALL, false) else { return };
        let req = lock(&k.ndis.oids)
            .iter()
            .find(|p| p.request_id == request_id as usize && std::ptr::eq(Arc::as_ptr(&p.binding), b))
            .map(|p| p.req);
        if let Some(rq) = req {
            // The miniport aborts it and completes it from its own context.
            k.dpc.push(Duration::ZERO, DISPATCH_LEVEL, move || {
                if let Some(k) = kernel::kernel() {
                    finish_oid(k, rq, Some(NDIS_STATUS_REQUEST_ABORTED));
                }
            });
        }
    })
}

// ===========================================================================
// Status indications
// ===========================================================================

/// Sets the adapter's link state and indicates `NDIS_STATUS_LINK_STATE`.
pub(crate) fn link(k: &Kernel, a: &Adapter, up: bool) -> Result<(), SimError> {
    lock(&a.model).link_up = up;
    let Some(b) = lock(&a.binding).clone() else { return Ok(()) };
    if matches!(b.state(), BindingState::Opening | BindingState::Unbound) {
        return Ok(());
    }
    let _ = k;
    let m = lock(&a.model).clone();
    // SAFETY: plain data.
    let mut l: NDIS_LINK_STATE = unsafe { std::mem::zeroed() };
    l.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_DEFAULT, Revision: NDIS_LINK_STATE_REVISION_1, Size: NDIS_SIZEOF_LINK_STATE_REVISION_1 };
    l.MediaConnectState = if up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
    l.MediaDuplexState = MediaDuplexStateFull;
    l.XmitLinkSpeed = if up { m.speed } else { 0 };
    l.RcvLinkSpeed = l.XmitLinkSpeed;
    // SAFETY: plain data.
    let mut ind: NDIS_STATUS_INDICATION = unsafe { std::mem::zeroed() };
    ind.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_STATUS_INDICATION, Revision: NDIS_STATUS_INDICATION_REVISION_1, Size: NDIS_SIZEOF_STATUS_INDICATION_REVISION_1 };
    ind.SourceHandle = a as *const Adapter as NDIS_HANDLE;
    ind.StatusCode = NDIS_STATUS_LINK_STATE;
    ind.StatusBuffer = (&mut l as *mut NDIS_LINK_STATE).cast();
    ind.StatusBufferSize = std::mem::size_of::<NDIS_LINK_STATE>() as u32;
    let handler = b.proto.chars.StatusHandlerEx.expect("validated");
    let ctx = b.ctx;
    call_driver("ProtocolStatusEx", DISPATCH_LEVEL, || {
        // SAFETY: the driver's handler with its binding context and an
        // indication valid for the call.
        unsafe { handler(ctx as NDIS_HANDLE, &mut ind) }
    });
    Ok(())
}

// ===========================================================================
// Leaks at the end
// ===========================================================================

/// Reports NBL pools, NBLs and MDLs the driver did not free.
pub(crate) fn leak_check(k: &Kernel) {
    for p in lock(&k.ndis.pools).iter() {
        let live = p.live.load(Ordering::Acquire);
        if !p.freed.load(Ordering::Acquire) {
            v(Rule::ResourceLeak, "DriverUnload", None, Some(Arc::as_ptr(p) as usize), format!("NBL pool (tag {}) was never freed", crate::pool::tag_str(p.tag)));
        }
        if live != 0 && !p.freed.load(Ordering::Acquire) {
            v(Rule::NblLeak, "DriverUnload", None, Some(Arc::as_ptr(p) as usize), format!("{live} NBL(s) of pool (tag {}) were never freed", crate::pool::tag_str(p.tag)));
        }
    }
    let mdls = lock(&k.ndis.mdls).len();
    if mdls != 0 {
        v(Rule::ResourceLeak, "DriverUnload", None, None, format!("{mdls} MDL(s) from NdisAllocateMdl were never freed"));
    }
    let rw = lock(&k.ndis.rwlocks).len();
    if rw != 0 {
        v(Rule::ResourceLeak, "DriverUnload", None, None, format!("{rw} NDIS_RW_LOCK_EX(s) were never freed"));
    }
    for a in k.ndis.adapters() {
        if let Some(b) = lock(&a.binding).as_ref() {
            v(Rule::ResourceLeak, "DriverUnload", Some(b), None, "the binding is still open after the protocol deregistered (or never deregistered)".into());
        }
    }
}

/// Frees what ndisim allocated for NBL pools (after the driver is gone).
pub(crate) fn free_everything(k: &Kernel) {
    for p in lock(&k.ndis.pools).drain(..) {
        for &n in lock(&p.all).iter() {
            // SAFETY: the driver is unloaded; nothing uses these NBLs now.
            unsafe { nbl::free_block(n as *mut NET_BUFFER_LIST) };
        }
        lock(&p.free_list).clear();
    }
    for m in lock(&k.ndis.mdls).drain() {
        // SAFETY: leaked by the driver, which is gone.
        unsafe { nbl::free_mdl(m as *mut MDL) };
    }
}

/// Current outstanding counts of an adapter's binding.
pub(crate) fn outstanding(a: &Adapter) -> (u64, u64, u64) {
    match lock(&a.binding).as_ref() {
        Some(b) => (b.sends.load(Ordering::Acquire), b.recvs.load(Ordering::Acquire), b.oids.load(Ordering::Acquire)),
        None => (0, 0, 0),
    }
}
