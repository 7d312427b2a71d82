//! The NDIS protocol-driver boundary: the `Protocol` trait that the driver
//! logic implements, the `extern "win64"` trampolines NDIS calls, the
//! `Registration` that deregisters on drop, and the per-binding `Binding`
//! that owns the binding's state machine.
//!
//! The trampolines are the only entry points from NDIS. Each turns raw
//! pointers into safe views, routes every state change through the binding's
//! `StateMachine`, and handles the NDIS rule that a handler which returned
//! `NDIS_STATUS_PENDING` must later call the matching `NdisComplete*`
//! function, while one that finished in time must not.

use super::nbl::{self, Indication, RetainTable, SendPool};
use super::oid::{self, OidCompletion};
use super::sync::{AtDispatch, Irql, RwGate, SpinLock};
use super::ustr;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, Ordering};
use super::work::WorkItem;
use ndis_sys::*;
use rawnic_logic::state::{BindingEvent, BindingState, StateMachine};

/// An NDIS_STATUS value.
pub type NdisStatus = NDIS_STATUS;

/// What the adapter told us at bind time.
#[derive(Debug, Clone)]
pub struct BindParams {
    pub adapter_name: String,
    pub medium: NDIS_MEDIUM,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub max_xmit_speed: u64,
    pub xmit_speed: u64,
    pub rcv_speed: u64,
    pub connect_state: u32,
    pub duplex_state: u32,
    pub lookahead: u32,
    pub supported_packet_filters: u32,
    pub mac_options: u32,
    pub if_index: u32,
}

/// Link state, from bind parameters, restart attributes or a status
/// indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    pub connect_state: u32,
    pub duplex_state: u32,
    pub xmit_speed: u64,
    pub rcv_speed: u64,
}

/// `NDIS_RESTART_GENERAL_ATTRIBUTES`, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GeneralAttributes {
    pub mtu: u32,
    pub max_xmit_speed: u64,
    pub max_rcv_speed: u64,
    pub lookahead: u32,
    pub mac_options: u32,
    pub supported_packet_filters: u32,
    pub max_multicast_list: u32,
    pub has_rss_capabilities: bool,
    pub revision: u8,
}

/// What a restart notification carried.
#[derive(Debug, Clone, Default)]
pub struct RestartInfo {
    /// The underlying filter modules, top first.
    pub filter_modules: Vec<String>,
    /// From the `OID_GEN_MINIPORT_RESTART_ATTRIBUTES` element, if any.
    pub general: Option<GeneralAttributes>,
    /// From an `OID_GEN_LINK_STATE` element, if any.
    pub link: Option<LinkState>,
    /// Attribute elements whose OID rawnic does not use.
    pub unknown_attributes: u32,
    /// True when the buffers were malformed (lengths out of range).
    pub malformed: bool,
}

/// The driver logic, as NDIS sees it. Every method runs in the context the
/// NDIS documentation gives for the matching handler.
pub trait Protocol: Sync + Sized + 'static {
    /// Per-binding state the logic keeps.
    type Binding: Send + Sync + 'static;
    /// Identifies the owner of an OID request, for its completion.
    type OidTag: Send + 'static;

    /// The protocol name, NUL-terminated UTF-16 (`wstr!`).
    const NAME: &'static [u16];

    /// `ProtocolBindAdapterEx`, before the adapter is opened: allocate the
    /// binding's logic state. An error fails the bind.
    fn create_binding(&'static self, params: &BindParams) -> Result<Self::Binding, NdisStatus>;
    /// The open finished; the binding is Paused (`Ok`) or gone (`Err`).
    fn open_complete(&'static self, b: &Arc<Binding<Self>>, result: Result<(), NdisStatus>);
    /// `ProtocolUnbindAdapterEx`: the binding is Closing. Fail user I/O,
    /// cancel OID requests, and call `UnbindToken::close` once nothing of
    /// the binding is outstanding (now, or from a later completion).
    fn unbind(&'static self, b: &Arc<Binding<Self>>, token: UnbindToken<Self>);
    /// The adapter closed; the binding is Unbound and NDIS forgets it.
    fn closed(&'static self, b: &Arc<Binding<Self>>);
    /// A pause began (Pausing): stop sending and give back retained
    /// receives. The wrapper completes the pause when the last send and
    /// receive are back.
    fn pausing(&'static self, b: &Arc<Binding<Self>>);
    /// The pause completed (Paused). Runs at PASSIVE_LEVEL with no lock
    /// held (in the pause handler, or in the binding's work item).
    fn paused(&'static self, b: &Arc<Binding<Self>>);
    /// A restart began (Restarting). Finish it with `token.complete`, now or
    /// later, without holding any lock `restarted` takes.
    fn restart(&'static self, b: &Arc<Binding<Self>>, info: RestartInfo, token: RestartToken<Self>);
    /// The restart finished: Running (`true`) or back to Paused. Runs at
    /// PASSIVE_LEVEL with no lock held (in the restart handler, or in the
    /// binding's work item).
    fn restarted(&'static self, b: &Arc<Binding<Self>>, running: bool);
    /// `NetEventSetPower`.
    fn set_power(&'static self, _b: &Arc<Binding<Self>>, _device_state: u32) {}
    /// `NetEventBindsComplete`.
    fn binds_complete(&'static self);
    /// Frames NDIS indicated while Running.
    fn receive(&'static self, b: &Binding<Self>, ind: &mut Indication<'_, Self>);
    /// Sends came back; `done` yields (tag, bytes, status) per frame.
    fn send_complete(&'static self, b: &Binding<Self>, done: &mut dyn Iterator<Item = (u32, u32, NdisStatus)>);
    /// An OID request finished.
    fn oid_complete(&'static self, b: &Arc<Binding<Self>>, done: OidCompletion<Self::OidTag>);
    /// `ProtocolStatusEx`: a link change (the others are ignored).
    fn link_changed(&'static self, b: &Binding<Self>, link: LinkState);
    /// `ProtocolUninstall`.
    fn uninstall(&'static self) {}
}

/// Two parties finishing one NDIS operation: the handler that may return
/// `NDIS_STATUS_PENDING`, and the completion that may run on another CPU
/// before or after it returns. Whoever comes second does the follow-up.
pub(crate) struct Handshake(AtomicU8);

const RETURNED: u8 = 1;
const COMPLETED: u8 = 2;

impl Handshake {
    pub(crate) const fn new() -> Self {
        Handshake(AtomicU8::new(0))
    }

    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// The handler is returning: `true` means the operation is still going
    /// and the handler returns `NDIS_STATUS_PENDING`.
    pub(crate) fn handler_returns(&self) -> bool {
        self.0.fetch_or(RETURNED, Ordering::AcqRel) & COMPLETED == 0
    }

    /// The operation finished: `true` means the handler already returned
    /// `NDIS_STATUS_PENDING`, so NDIS must be told.
    pub(crate) fn completes(&self) -> bool {
        self.0.fetch_or(COMPLETED, Ordering::AcqRel) & RETURNED != 0
    }
}

/// What the binding's lock protects in the wrapper.
pub struct Core {
    pub(crate) sm: StateMachine,
    /// Send NBLs NDIS owns.
    pub(crate) sends_in_flight: u64,
    /// Received NBLs rawnic holds.
    pub(crate) retained: u64,
    /// The pause notification to complete when both counts reach zero.
    pending_pause: Option<*mut NET_PNP_EVENT_NOTIFICATION>,
    /// The send NBLs the binding owns and may use.
    pub(crate) pool: SendPool,
    /// Retained receive NBLs and their reference counts.
    pub(crate) retain: RetainTable,
    /// Receive indications running now.
    pub(crate) indicating: u32,
    /// Retained NBLs released while an indication ran: still counted in
    /// `retained`, they go back to NDIS with that indication's own NBLs,
    /// in one `NdisReturnNetBufferLists`, when the last running indication
    /// ends.
    pub(crate) deferred_returns: nbl::ReturnChain,
}

/// One binding: the wrapper's state and the logic's `T::Binding`.
///
/// # Invariants
/// From a successful (or pending) `NdisOpenAdapterEx` until the close
/// completes, NDIS holds one strong count of the `Arc` this lives in, as the
/// `ProtocolBindingContext`.
pub struct Binding<T: Protocol> {
    proto: &'static T,
    handle: AtomicPtr<c_void>,
    pub(crate) core: SpinLock<Core>,
    /// Held shared by sends and receives, exclusively by the move out of
    /// Running.
    gate: RwGate,
    /// Runs the NDIS calls that need PASSIVE_LEVEL (`DEFER_*` bits).
    work: WorkItem,
    deferred: AtomicU32,
    bind_ctx: AtomicPtr<c_void>,
    bind_hs: Handshake,
    bind_status: core::sync::atomic::AtomicI32,
    selected_medium: core::cell::UnsafeCell<u32>,
    unbind_ctx: AtomicPtr<c_void>,
    unbind_hs: Handshake,
    pnp_hs: Handshake,
    pnp_status: core::sync::atomic::AtomicI32,
    pnp_event: AtomicPtr<NET_PNP_EVENT_NOTIFICATION>,
    params: BindParams,
    logic: T::Binding,
}

// SAFETY: the raw pointers are NDIS handles and notifications that NDIS
// lets any thread use; `selected_medium` is written by NDIS only during the
// open, before any other thread can see the binding.
unsafe impl<T: Protocol> Send for Binding<T> {}
// SAFETY: as above; all mutable state is atomic or behind `core`'s lock.
unsafe impl<T: Protocol> Sync for Binding<T> {}
// SAFETY: `Core`'s raw pointer is a pending pause notification, which NDIS
// keeps valid until it is completed, from any thread.
unsafe impl Send for Core {}

impl<T: Protocol> core::ops::Deref for Binding<T> {
    type Target = T::Binding;
    fn deref(&self) -> &T::Binding {
        &self.logic
    }
}

impl<T: Protocol> Binding<T> {
    /// The NDIS binding handle (null before the open).
    pub fn ndis_handle(&self) -> NDIS_HANDLE {
        self.handle.load(Ordering::Acquire)
    }

    pub fn params(&self) -> &BindParams {
        &self.params
    }

    pub fn state(&self) -> BindingState {
        self.core.lock().sm.state()
    }

    /// Events NDIS sent that were not legal in the binding's state.
    pub fn illegal_events(&self) -> u32 {
        self.core.lock().sm.illegal_count()
    }

    /// Send NBLs in flight and retained receive NBLs.
    pub fn outstanding(&self) -> (u64, u64) {
        let c = self.core.lock();
        (c.sends_in_flight, c.retained)
    }

    pub(crate) fn gate(&self) -> &RwGate {
        &self.gate
    }

    pub(crate) fn proto_receive(&self, ind: &mut Indication<'_, T>) {
        self.proto.receive(self, ind);
    }

    pub(crate) fn proto_send_complete(&self, done: &mut dyn Iterator<Item = (u32, u32, NdisStatus)>) {
        self.proto.send_complete(self, done);
    }

    pub(crate) fn proto_oid_complete(self: &Arc<Self>, done: OidCompletion<T::OidTag>) {
        self.proto.oid_complete(self, done);
    }

    /// The size the send pool's buffers have.
    pub fn send_slot_size(&self) -> usize {
        self.core.lock().pool.slot_size()
    }

    /// Rebuilds the send pool for a new MTU (Paused or Restarting only:
    /// nothing may be in flight).
    pub fn resize_send_pool(&self, mtu: u32) -> Result<(), super::alloc::AllocError> {
        let mut c = self.core.lock();
        if c.sm.is_running() || c.sends_in_flight != 0 {
            return Err(super::alloc::AllocError);
        }
        c.pool.resize(mtu)
    }

    /// (total, free, peak in use) send NBLs.
    pub fn send_pool_counts(&self) -> (usize, usize, usize) {
        nbl::pool_counts(&self.core.lock().pool)
    }

    /// Applies `event`; on an illegal one, counts it and says so. Every
    /// change is logged ("state A -> B"), which is how tests see the
    /// transient states.
    fn apply(&self, core: &mut Core, event: BindingEvent) -> bool {
        let from = core.sm.state();
        match core.sm.apply(event) {
            Ok(to) => {
                crate::kprint!(
                    super::debug::LEVEL_INFO,
                    "binding {}: state {:?} -> {:?} ({:?})",
                    self.params.adapter_name,
                    from,
                    to,
                    event
                );
                true
            }
            Err(e) => {
                crate::kprint!(
                    super::debug::LEVEL_ERROR,
                    "binding {}: refused {:?} in state {:?}",
                    self.params.adapter_name,
                    e.event,
                    e.state
                );
                false
            }
        }
    }

    /// If a pause is waiting and nothing is outstanding, completes it.
    /// Called with the lock held; returns the notification to complete
    /// after unlocking.
    pub(crate) fn pause_ready(&self, core: &mut Core) -> Option<*mut NET_PNP_EVENT_NOTIFICATION> {
        if core.sends_in_flight == 0 && core.retained == 0 {
            if let Some(n) = core.pending_pause.take() {
                self.apply(core, BindingEvent::PauseComplete);
                return Some(n);
            }
        }
        None
    }

    /// A pause that `pause_ready` released, from a completion (lock not
    /// held; any IRQL). If the pause handler already returned
    /// NDIS_STATUS_PENDING, the work item tells the logic and NDIS, at
    /// PASSIVE_LEVEL and outside every lock; otherwise the handler, still
    /// running, does it when it returns.
    pub(crate) fn finish_pause(self: &Binding<T>, notification: *mut NET_PNP_EVENT_NOTIFICATION) {
        debug_assert_eq!(notification, self.pnp_event.load(Ordering::Acquire));
        self.pnp_status.store(NDIS_STATUS_SUCCESS, Ordering::Release);
        if self.pnp_hs.completes() {
            self.defer(DEFER_NOTIFY_PAUSED | DEFER_PNP_COMPLETE);
        }
    }

    /// Runs `op` (`DEFER_*`) in the binding's work item, at PASSIVE_LEVEL.
    fn defer(&self, op: u32) {
        self.deferred.fetch_or(op, Ordering::AcqRel);
        let ctx = Arc::into_raw(self.self_arc()) as *mut c_void;
        // SAFETY: `ctx` is a strong count the routine takes back; the
        // routine calls `started` first.
        if !unsafe { self.work.queue(binding_worker::<T>, ctx) } {
            // Already queued: that run will see the bit.
            // SAFETY: not handed to the work item: take the count back.
            unsafe { drop(Arc::from_raw(ctx as *const Binding<T>)) };
        }
    }

    /// A new strong reference to this binding, from NDIS's.
    fn self_arc(&self) -> Arc<Binding<T>> {
        let p: *const Binding<T> = self;
        // SAFETY: every `Binding` lives in an `Arc`, and NDIS's strong count
        // (invariant) keeps it alive while NDIS calls into it.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// Returns retained receive NBLs, and completes a waiting pause if they
    /// were the last outstanding ones.
    pub(crate) fn release_retained(&self, chain: nbl::ReturnChain, irql: Irql<'_>) {
        let n = chain.len() as u64;
        if n == 0 {
            return;
        }
        chain.return_to(self.ndis_handle(), irql);
        let ready = {
            let mut c = self.core.lock_at(irql);
            c.retained -= n;
            self.pause_ready(&mut c)
        };
        if let Some(notification) = ready {
            self.finish_pause(notification);
        }
    }

    /// Sends an OID request on this binding; `register` gets its id first
    /// (see `oid::submit`).
    pub fn request_oid(
        &self,
        req: oid::OidRequest<T::OidTag>,
        register: impl FnOnce(oid::OidId),
    ) -> oid::Submitted<T::OidTag> {
        oid::submit(self, req, register)
    }
}

/// Obligation to close the adapter of a binding that is unbinding.
#[must_use = "an unbinding binding must be closed"]
pub struct UnbindToken<T: Protocol> {
    binding: Arc<Binding<T>>,
}

impl<T: Protocol> UnbindToken<T> {
    /// Closes the adapter (`NdisCloseAdapterEx`, from the binding's work
    /// item at PASSIVE_LEVEL, whatever the caller's IRQL); the unbind
    /// completes when the close does.
    pub fn close(self) {
        self.binding.defer(DEFER_CLOSE);
    }
}

/// Obligation to finish a restart.
#[must_use = "a restart must be completed"]
pub struct RestartToken<T: Protocol> {
    binding: Arc<Binding<T>>,
}

impl<T: Protocol> RestartToken<T> {
    /// Finishes the restart: `Ok` enters Running, `Err` returns to Paused
    /// and fails the restart with that status.
    pub fn complete(self, result: Result<(), NdisStatus>) {
        let b = self.binding;
        {
            let mut c = b.core.lock();
            let ev = if result.is_ok() { BindingEvent::RestartSucceeded } else { BindingEvent::RestartFailed };
            b.apply(&mut c, ev);
        }
        let status = match result {
            Ok(()) => NDIS_STATUS_SUCCESS,
            Err(s) => s,
        };
        b.pnp_status.store(status, Ordering::Release);
        if b.pnp_hs.completes() {
            // The handler returned PENDING: the work item tells the logic,
            // then NDIS. Otherwise the handler does when it returns.
            b.defer(DEFER_NOTIFY_RESTARTED | DEFER_PNP_COMPLETE);
        }
    }
}

/// `Binding::defer` operations.
const DEFER_PNP_COMPLETE: u32 = 1;
const DEFER_CLOSE: u32 = 2;
const DEFER_NOTIFY_PAUSED: u32 = 4;
const DEFER_NOTIFY_RESTARTED: u32 = 8;

/// The binding's work item: NDIS calls that need PASSIVE_LEVEL.
unsafe extern "win64" fn binding_worker<T: Protocol>(_device: *mut DEVICE_OBJECT, ctx: *mut c_void) {
    // SAFETY: `defer` passed a strong count of the binding.
    let b = unsafe { Arc::from_raw(ctx as *const Binding<T>) };
    b.work.started();
    let ops = b.deferred.swap(0, Ordering::AcqRel);
    if ops & DEFER_NOTIFY_PAUSED != 0 {
        b.proto.paused(&b);
    }
    if ops & DEFER_NOTIFY_RESTARTED != 0 {
        let running = b.core.lock().sm.is_running();
        b.proto.restarted(&b, running);
    }
    if ops & DEFER_PNP_COMPLETE != 0 {
        let n = b.pnp_event.load(Ordering::Acquire);
        let status = b.pnp_status.load(Ordering::Acquire);
        // SAFETY: the PnP handler returned NDIS_STATUS_PENDING for this
        // notification (the handshake), which NDIS keeps valid until this
        // call; a work item runs at PASSIVE_LEVEL.
        unsafe { NdisCompleteNetPnPEvent(b.ndis_handle(), n, status) };
    }
    if ops & DEFER_CLOSE != 0 {
        // SAFETY: the handle is the open binding's, which is Closing with
        // nothing outstanding; PASSIVE_LEVEL.
        let status = unsafe { NdisCloseAdapterEx(b.ndis_handle()) };
        if status != NDIS_STATUS_PENDING {
            closed(&b);
        }
    }
}

/// After the adapter closed: release everything and tell NDIS.
fn closed<T: Protocol>(b: &Arc<Binding<T>>) {
    b.proto.closed(b);
    {
        let mut c = b.core.lock();
        c.pool.release_all();
        b.apply(&mut c, BindingEvent::CloseComplete);
    }
    let ctx = b.unbind_ctx.load(Ordering::Acquire);
    if b.unbind_hs.completes() {
        // SAFETY: the unbind handler returned NDIS_STATUS_PENDING with this
        // context.
        unsafe { NdisCompleteUnbindAdapterEx(ctx) };
    }
    // NDIS forgets the binding context: drop its strong count.
    // SAFETY: the pointer came from `Arc::into_raw` in `bind_adapter`, and
    // this is the one place it is given back.
    unsafe { drop(Arc::from_raw(Arc::as_ptr(b))) };
}

/// The registered protocol.
///
/// # Invariants
/// `handle` is the handle `NdisRegisterProtocolDriver` returned for the
/// characteristics built from `T`, and `proto` outlives it.
pub struct Registration<T: Protocol> {
    handle: NDIS_HANDLE,
    proto: &'static T,
}

// SAFETY: the handle may be used from any thread.
unsafe impl<T: Protocol> Send for Registration<T> {}
// SAFETY: as above.
unsafe impl<T: Protocol> Sync for Registration<T> {}

/// The protocol handle, for NDIS calls that take it (pools, MDLs).
static PROTOCOL_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

pub(crate) fn protocol_handle() -> NDIS_HANDLE {
    PROTOCOL_HANDLE.load(Ordering::Acquire)
}

impl<T: Protocol> Registration<T> {
    /// Registers `proto` with NDIS as an NDIS 6.30 protocol driver with
    /// every protocol handler.
    pub fn register(proto: &'static T, major: u8, minor: u8) -> Result<Self, NdisStatus> {
        let mut chars = NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS,
                Revision: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
                Size: NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            },
            MajorNdisVersion: NDIS_PROTOCOL_MAJOR_VERSION,
            MinorNdisVersion: NDIS_PROTOCOL_MINOR_VERSION,
            MajorDriverVersion: major,
            MinorDriverVersion: minor,
            Flags: 0,
            Name: ustr::unicode_string(T::NAME),
            SetOptionsHandler: None,
            BindAdapterHandlerEx: Some(bind_adapter::<T>),
            UnbindAdapterHandlerEx: Some(unbind_adapter::<T>),
            OpenAdapterCompleteHandlerEx: Some(open_adapter_complete::<T>),
            CloseAdapterCompleteHandlerEx: Some(close_adapter_complete::<T>),
            NetPnPEventHandler: Some(net_pnp_event::<T>),
            UninstallHandler: Some(uninstall::<T>),
            OidRequestCompleteHandler: Some(oid::oid_request_complete::<T>),
            StatusHandlerEx: Some(status_ex::<T>),
            ReceiveNetBufferListsHandler: Some(nbl::receive_net_buffer_lists::<T>),
            SendNetBufferListsCompleteHandler: Some(nbl::send_net_buffer_lists_complete::<T>),
            DirectOidRequestCompleteHandler: None,
        };
        let ctx = proto as *const T as NDIS_HANDLE;
        // NDIS may call ProtocolBindAdapterEx before NdisRegisterProtocolDriver
        // returns ("must be prepared for an immediate call to any of their
        // ProtocolXxx functions"), and the bind needs the handle: NDIS
        // writes it straight into PROTOCOL_HANDLE before it binds.
        // SAFETY: `chars` is fully initialised and its name points to a
        // static string; `ctx` is the `'static` protocol object the
        // trampolines cast it back to; the out pointer is a static.
        let status = unsafe { NdisRegisterProtocolDriver(ctx, &mut chars, PROTOCOL_HANDLE.as_ptr()) };
        if status != NDIS_STATUS_SUCCESS {
            PROTOCOL_HANDLE.store(ptr::null_mut(), Ordering::Release);
            return Err(status);
        }
        let handle = PROTOCOL_HANDLE.load(Ordering::Acquire);
        Ok(Registration { handle, proto })
    }

    pub fn protocol(&self) -> &'static T {
        self.proto
    }
}

impl<T: Protocol> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: the handle came from NdisRegisterProtocolDriver
        // (invariant); NDIS unbinds every binding before this returns.
        unsafe { NdisDeregisterProtocolDriver(self.handle) };
        PROTOCOL_HANDLE.store(ptr::null_mut(), Ordering::Release);
    }
}

// ---------------------------------------------------------------------------
// Trampolines
// ---------------------------------------------------------------------------

/// # Safety
/// `ctx` is a `ProtocolBindingContext` this module gave NDIS, still held.
pub(crate) unsafe fn binding_ref<'a, T: Protocol>(ctx: NDIS_HANDLE) -> &'a Binding<T> {
    // SAFETY: the caller guarantees NDIS still holds its strong count.
    unsafe { &*(ctx as *const Binding<T>) }
}

/// # Safety
/// As `binding_ref`.
pub(crate) unsafe fn binding_arc<T: Protocol>(ctx: NDIS_HANDLE) -> Arc<Binding<T>> {
    let p = ctx as *const Binding<T>;
    // SAFETY: NDIS holds a strong count (caller), so adding one is sound.
    unsafe {
        Arc::increment_strong_count(p);
        Arc::from_raw(p)
    }
}

/// # Safety
/// `p` points to `NDIS_BIND_PARAMETERS` NDIS passed to the bind handler.
unsafe fn read_bind_params(p: *const NDIS_BIND_PARAMETERS) -> BindParams {
    // SAFETY: valid for the duration of the bind handler (caller).
    let p = unsafe { &*p };
    let mut mac = [0u8; 6];
    let n = usize::from(p.MacAddressLength).min(6);
    mac[..n].copy_from_slice(&p.CurrentMacAddress[..n]);
    BindParams {
        // SAFETY: NDIS passes a valid adapter name.
        adapter_name: unsafe { ustr::from_unicode_string(p.AdapterName) },
        medium: p.MediaType,
        mtu: p.MtuSize,
        mac,
        max_xmit_speed: p.MaxXmitLinkSpeed,
        xmit_speed: p.XmitLinkSpeed,
        rcv_speed: p.RcvLinkSpeed,
        connect_state: p.MediaConnectState,
        duplex_state: p.MediaDuplexState,
        lookahead: p.LookaheadSize,
        supported_packet_filters: p.SupportedPacketFilters,
        mac_options: p.MacOptions,
        if_index: p.BoundIfIndex,
    }
}

static MEDIUM_ARRAY: [NDIS_MEDIUM; 1] = [NdisMedium802_3];

unsafe extern "win64" fn bind_adapter<T: Protocol>(
    driver_ctx: NDIS_HANDLE,
    bind_ctx: NDIS_HANDLE,
    params: *mut NDIS_BIND_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: the driver context is the `&'static T` registered in
    // `Registration::register`.
    let proto: &'static T = unsafe { &*(driver_ctx as *const T) };
    // SAFETY: NDIS passes valid parameters for the call.
    let bp = unsafe { read_bind_params(params) };
    if bp.medium != NdisMedium802_3 {
        return NDIS_STATUS_UNSUPPORTED_MEDIA;
    }
    let logic = match proto.create_binding(&bp) {
        Ok(l) => l,
        Err(s) => return s,
    };
    let pool = match SendPool::new(protocol_handle(), bp.mtu) {
        Ok(p) => p,
        Err(_) => return NDIS_STATUS_RESOURCES,
    };
    let Some(gate) = RwGate::new() else {
        return NDIS_STATUS_RESOURCES;
    };
    let Some(work) = WorkItem::new() else {
        return NDIS_STATUS_RESOURCES;
    };
    let b = Arc::new(Binding {
        proto,
        handle: AtomicPtr::new(ptr::null_mut()),
        core: SpinLock::new(Core {
            sm: StateMachine::new(),
            sends_in_flight: 0,
            retained: 0,
            pending_pause: None,
            pool,
            retain: RetainTable::new(),
            indicating: 0,
            deferred_returns: nbl::ReturnChain::new(),
        }),
        gate,
        work,
        deferred: AtomicU32::new(0),
        bind_ctx: AtomicPtr::new(bind_ctx),
        bind_hs: Handshake::new(),
        bind_status: core::sync::atomic::AtomicI32::new(NDIS_STATUS_PENDING),
        selected_medium: core::cell::UnsafeCell::new(0),
        unbind_ctx: AtomicPtr::new(ptr::null_mut()),
        unbind_hs: Handshake::new(),
        pnp_hs: Handshake::new(),
        pnp_status: core::sync::atomic::AtomicI32::new(NDIS_STATUS_SUCCESS),
        pnp_event: AtomicPtr::new(ptr::null_mut()),
        params: bp,
        logic,
    });
    {
        let mut c = b.core.lock();
        b.apply(&mut c, BindingEvent::Bind);
    }
    let mut open = NDIS_OPEN_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_OPEN_PARAMETERS,
            Revision: NDIS_OPEN_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1,
        },
        // SAFETY: `params` is valid for the call (NDIS).
        AdapterName: unsafe { (*params).AdapterName },
        MediumArray: MEDIUM_ARRAY.as_ptr().cast_mut(),
        MediumArraySize: MEDIUM_ARRAY.len() as u32,
        SelectedMediumIndex: b.selected_medium.get(),
        FrameTypeArray: ptr::null_mut(),
        FrameTypeArraySize: 0,
    };
    // NDIS's strong count, given back in `closed` or on a failed open.
    let ctx = Arc::into_raw(b.clone()) as NDIS_HANDLE;
    // SAFETY: `open` is initialised; the adapter name and the medium array
    // outlive the open (NDIS keeps the bind parameters until the bind
    // completes; the array is static); the selected-medium cell and the
    // handle variable live in the binding, which NDIS's strong count keeps
    // alive until the open completes.
    let status = unsafe { NdisOpenAdapterEx(protocol_handle(), ctx, &mut open, bind_ctx, b.handle.as_ptr()) };
    if status == NDIS_STATUS_PENDING {
        // `open_adapter_complete` finishes; whoever of it and this handler
        // comes second decides between PENDING and the status.
        if b.bind_hs.handler_returns() {
            return NDIS_STATUS_PENDING;
        }
        return b.bind_status.load(Ordering::Acquire);
    }
    finish_open(&b, status);
    status
}

/// The open finished: Paused on success, Unbound (and forgotten) on failure.
fn finish_open<T: Protocol>(b: &Arc<Binding<T>>, status: NDIS_STATUS) {
    let ok = status == NDIS_STATUS_SUCCESS;
    {
        let mut c = b.core.lock();
        b.apply(&mut c, if ok { BindingEvent::OpenSucceeded } else { BindingEvent::OpenFailed });
        if !ok {
            c.pool.release_all();
        }
    }
    b.bind_status.store(status, Ordering::Release);
    b.proto.open_complete(b, if ok { Ok(()) } else { Err(status) });
    if !ok {
        // NDIS will not use the context: give back its strong count.
        // SAFETY: the pointer came from `Arc::into_raw` in `bind_adapter`.
        unsafe { drop(Arc::from_raw(Arc::as_ptr(b))) };
    }
}

unsafe extern "win64" fn open_adapter_complete<T: Protocol>(ctx: NDIS_HANDLE, status: NDIS_STATUS) {
    // SAFETY: NDIS passes the context we gave NdisOpenAdapterEx, and holds
    // its strong count until this returns (or until the close).
    let b = unsafe { binding_arc::<T>(ctx) };
    if status != NDIS_STATUS_SUCCESS {
        b.handle.store(ptr::null_mut(), Ordering::Release);
    }
    finish_open(&b, status);
    if b.bind_hs.completes() {
        let bind_ctx = b.bind_ctx.load(Ordering::Acquire);
        // SAFETY: the bind handler returned NDIS_STATUS_PENDING with this
        // bind context.
        unsafe { NdisCompleteBindAdapterEx(bind_ctx, status) };
    }
}

unsafe extern "win64" fn unbind_adapter<T: Protocol>(unbind_ctx: NDIS_HANDLE, ctx: NDIS_HANDLE) -> NDIS_STATUS {
    // SAFETY: NDIS passes our binding context, and holds its count.
    let b = unsafe { binding_arc::<T>(ctx) };
    let legal = {
        let mut c = b.core.lock();
        b.apply(&mut c, BindingEvent::Unbind)
    };
    if !legal {
        return NDIS_STATUS_FAILURE;
    }
    b.unbind_ctx.store(unbind_ctx, Ordering::Release);
    b.unbind_hs.reset();
    b.proto.unbind(&b, UnbindToken { binding: b.clone() });
    if b.unbind_hs.handler_returns() {
        NDIS_STATUS_PENDING
    } else {
        NDIS_STATUS_SUCCESS
    }
}

unsafe extern "win64" fn close_adapter_complete<T: Protocol>(ctx: NDIS_HANDLE) {
    // SAFETY: NDIS passes our binding context and still holds its count.
    let b = unsafe { binding_arc::<T>(ctx) };
    closed(&b);
}

/// # Safety
/// `params` is null or a valid `NDIS_PROTOCOL_RESTART_PARAMETERS` with the
/// buffers it points to.
unsafe fn read_restart(params: *const NDIS_PROTOCOL_RESTART_PARAMETERS, len: u32) -> RestartInfo {
    let mut info = RestartInfo::default();
    if params.is_null() || (len as usize) < core::mem::size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>() {
        return info;
    }
    // SAFETY: checked non-null and long enough; valid per the caller.
    let p = unsafe { &*params };
    if !p.FilterModuleNameBuffer.is_null() && p.FilterModuleNameBufferLength > 0 {
        // SAFETY: NDIS gives `FilterModuleNameBufferLength` bytes.
        let raw = unsafe {
            core::slice::from_raw_parts(p.FilterModuleNameBuffer, p.FilterModuleNameBufferLength as usize)
        };
        match rawnic_logic::restart::filter_module_names(raw) {
            Ok(names) => info.filter_modules = names,
            Err(rawnic_logic::restart::Malformed) => info.malformed = true,
        }
    }
    let mut attr = p.RestartAttributes;
    let mut guard = 0;
    while !attr.is_null() && guard < 64 {
        guard += 1;
        // SAFETY: each element of the chain is valid (caller).
        let a = unsafe { &*attr };
        let data = a.Data.as_ptr();
        let len = a.DataLength as usize;
        match a.Oid {
            OID_GEN_MINIPORT_RESTART_ATTRIBUTES
                if len >= core::mem::size_of::<NDIS_RESTART_GENERAL_ATTRIBUTES>() - 4 =>
            {
                // SAFETY: the element carries `DataLength` bytes of an
                // NDIS_RESTART_GENERAL_ATTRIBUTES (revision 1 lacks the last
                // field, which is not read); `read_unaligned` copes with
                // any alignment.
                let g = unsafe {
                    let mut g: NDIS_RESTART_GENERAL_ATTRIBUTES = core::mem::zeroed();
                    ptr::copy_nonoverlapping(
                        data,
                        (&mut g as *mut NDIS_RESTART_GENERAL_ATTRIBUTES).cast::<u8>(),
                        len.min(core::mem::size_of::<NDIS_RESTART_GENERAL_ATTRIBUTES>()),
                    );
                    g
                };
                info.general = Some(GeneralAttributes {
                    mtu: g.MtuSize,
                    max_xmit_speed: g.MaxXmitLinkSpeed,
                    max_rcv_speed: g.MaxRcvLinkSpeed,
                    lookahead: g.LookaheadSize,
                    mac_options: g.MacOptions,
                    supported_packet_filters: g.SupportedPacketFilters,
                    max_multicast_list: g.MaxMulticastListSize,
                    has_rss_capabilities: !g.RecvScaleCapabilities.is_null(),
                    revision: g.Header.Revision,
                });
            }
            OID_GEN_LINK_STATE if len >= core::mem::size_of::<NDIS_LINK_STATE>() => {
                // SAFETY: `DataLength` bytes of an NDIS_LINK_STATE.
                let l = unsafe { ptr::read_unaligned(data.cast::<NDIS_LINK_STATE>()) };
                info.link = Some(LinkState {
                    connect_state: l.MediaConnectState,
                    duplex_state: l.MediaDuplexState,
                    xmit_speed: l.XmitLinkSpeed,
                    rcv_speed: l.RcvLinkSpeed,
                });
            }
            _ => info.unknown_attributes += 1,
        }
        attr = a.Next;
    }
    if !attr.is_null() {
        info.malformed = true;
    }
    info
}

unsafe extern "win64" fn net_pnp_event<T: Protocol>(
    ctx: NDIS_HANDLE,
    notification: *mut NET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    // SAFETY: NDIS passes a valid notification for the call.
    let ev = unsafe { &(*notification).NetPnPEvent };
    if ctx.is_null() {
        // Protocol-level events.
        if ev.NetEvent == NetEventBindsComplete {
            if let Some(proto) = registered_protocol::<T>() {
                proto.binds_complete();
            }
        }
        return NDIS_STATUS_SUCCESS;
    }
    // SAFETY: NDIS passes our binding context and holds its count.
    let b = unsafe { binding_arc::<T>(ctx) };
    match ev.NetEvent {
        NetEventPause => {
            let legal = {
                // Out of Running only with the gate held exclusively: no
                // send or receive is between its state check and its NDIS
                // call.
                let _gate = b.gate.write();
                let mut c = b.core.lock_dpr(_gate.at_dispatch());
                b.apply(&mut c, BindingEvent::Pause)
            };
            if !legal {
                // A pause cannot fail; the binding is not running anyway.
                return NDIS_STATUS_SUCCESS;
            }
            b.pnp_hs.reset();
            b.pnp_event.store(notification, Ordering::Release);
            b.proto.pausing(&b);
            let ready = {
                let mut c = b.core.lock();
                c.pending_pause = Some(notification);
                b.pause_ready(&mut c)
            };
            if ready.is_some() {
                // Nothing was outstanding: this handler completes it.
                b.pnp_hs.completes();
            }
            if b.pnp_hs.handler_returns() {
                // The last completion finishes it (`finish_pause`).
                return NDIS_STATUS_PENDING;
            }
            // Completed, here or by a completion before this returned.
            b.proto.paused(&b);
            NDIS_STATUS_SUCCESS
        }
        NetEventRestart => {
            let legal = {
                let mut c = b.core.lock();
                b.apply(&mut c, BindingEvent::Restart)
            };
            if !legal {
                return NDIS_STATUS_FAILURE;
            }
            b.pnp_hs.reset();
            b.pnp_event.store(notification, Ordering::Release);
            // SAFETY: for NetEventRestart, Buffer is the restart parameters
            // (or null), valid for the event.
            let info = unsafe { read_restart(ev.Buffer.cast(), ev.BufferLength) };
            b.proto.restart(&b, info, RestartToken { binding: b.clone() });
            if b.pnp_hs.handler_returns() {
                return NDIS_STATUS_PENDING;
            }
            let running = b.core.lock().sm.is_running();
            b.proto.restarted(&b, running);
            b.pnp_status.load(Ordering::Acquire)
        }
        NetEventSetPower => {
            let state = if ev.Buffer.is_null() || (ev.BufferLength as usize) < 4 {
                NetDeviceStateUnspecified
            } else {
                // SAFETY: the buffer holds a NET_DEVICE_POWER_STATE.
                unsafe { ptr::read_unaligned(ev.Buffer.cast::<u32>()) }
            };
            b.proto.set_power(&b, state);
            NDIS_STATUS_SUCCESS
        }
        _ => NDIS_STATUS_SUCCESS,
    }
}

static PROTOCOL_OBJECT: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// Records the protocol object for protocol-level callbacks.
pub(crate) fn set_registered_protocol<T: Protocol>(p: Option<&'static T>) {
    let raw = p.map_or(ptr::null_mut(), |p| p as *const T as *mut c_void);
    PROTOCOL_OBJECT.store(raw, Ordering::Release);
}

fn registered_protocol<T: Protocol>() -> Option<&'static T> {
    let p = PROTOCOL_OBJECT.load(Ordering::Acquire);
    // SAFETY: only `set_registered_protocol::<T>` stores here, with a
    // `&'static T` of the one protocol type the driver registers.
    (!p.is_null()).then(|| unsafe { &*(p as *const T) })
}

unsafe extern "win64" fn uninstall<T: Protocol>() {
    if let Some(proto) = registered_protocol::<T>() {
        proto.uninstall();
    }
}

unsafe extern "win64" fn status_ex<T: Protocol>(ctx: NDIS_HANDLE, ind: *mut NDIS_STATUS_INDICATION) {
    // SAFETY: NDIS passes our binding context and a valid indication.
    let (b, ind) = unsafe { (binding_ref::<T>(ctx), &*ind) };
    if ind.StatusCode == NDIS_STATUS_LINK_STATE
        && !ind.StatusBuffer.is_null()
        && ind.StatusBufferSize as usize >= core::mem::size_of::<NDIS_LINK_STATE>()
    {
        // SAFETY: checked: the buffer holds an NDIS_LINK_STATE.
        let l = unsafe { ptr::read_unaligned(ind.StatusBuffer.cast::<NDIS_LINK_STATE>()) };
        b.proto.link_changed(
            b,
            LinkState {
                connect_state: l.MediaConnectState,
                duplex_state: l.MediaDuplexState,
                xmit_speed: l.XmitLinkSpeed,
                rcv_speed: l.RcvLinkSpeed,
            },
        );
    }
}

/// Installs the registration for the driver's lifetime.
pub fn leak_protocol<T: Protocol>(proto: T) -> &'static T {
    let p = Box::leak(Box::new(proto));
    set_registered_protocol::<T>(Some(p));
    p
}

/// Proof of DISPATCH_LEVEL from an NDIS `*_DISPATCH_LEVEL` flag.
pub(crate) fn irql_from_flag<'a>(flags: u32, dispatch_flag: u32) -> Irql<'a> {
    if flags & dispatch_flag != 0 {
        // SAFETY: NDIS sets the flag only when the caller runs at
        // DISPATCH_LEVEL, for the duration of the call.
        Irql::Dispatch(unsafe { AtDispatch::assume() })
    } else {
        Irql::AtMostDispatch
    }
}
