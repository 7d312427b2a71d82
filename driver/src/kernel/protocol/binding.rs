//! One binding: its state machine, what it has outstanding, its lifetime,
//! and the calls NDIS must see in a given order. Its work item is in
//! `binding/deferred.rs`, its close in `binding/close.rs`.
//!
//! # Invariants
//! - A `Binding` only ever lives in an `Arc` (made in the bind handler).
//!   From a successful or pending `NdisOpenAdapterEx` until the close
//!   completes, NDIS holds one strong count of it (the
//!   `ProtocolBindingContext`); every handler NDIS calls takes one more for
//!   as long as it runs.
//! - `proto` points to the protocol object the `Registration` owns; NDIS
//!   calls no handler of a binding after the registration is gone, and the
//!   wrapper reads `proto` only in handlers and in the binding's work item,
//!   which runs before the close completes.
//! - `Core::ndis_running` is true only while NDIS considers the binding
//!   Running: it is set after `NdisCompleteNetPnPEvent` of a successful
//!   restart returned, and cleared, under the gate held exclusively, when a
//!   pause begins.

use super::complete_at_drop::CompleteAtDrop;
pub(crate) use super::handshake::Handshake;
use super::{BindParams, NdisStatus, Protocol};
use crate::kernel::device::IrpList;
use crate::kernel::nbl::{RetainTable, ReturnChain, SendPool};
use crate::kernel::sync::{GateState, Irql, RwGate, SpinLock};
use crate::kernel::work::WorkItem;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use ndis_sys::*;
use rawnic_logic::state::{BindingEvent, BindingState, StateMachine};

mod close;
mod deferred;
pub(super) use close::closed;
pub(crate) use deferred::DEFER_RETURNS;
use deferred::{DEFER_NOTIFY_PAUSED, DEFER_NOTIFY_RESTARTED, DEFER_PNP_COMPLETE};

/// Which PnP event is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PnpKind {
    None,
    Pause,
    Restart,
    /// `NetEventSetPower` for a low-power state, pended until the OID
    /// calls that began before it end.
    Power,
}

/// An OID request NDIS holds.
pub(crate) struct HeldOid {
    /// Its `NDIS_OID_REQUEST` (the address NDIS hands back on completion).
    pub(crate) req: usize,
    /// Its `RequestId`, unique for the binding's life.
    pub(crate) id: usize,
    /// A cancel was sent for it.
    pub(crate) cancelled: bool,
}

/// What the binding's lock protects in the wrapper.
pub struct Core {
    pub(crate) sm: StateMachine,
    /// NDIS considers the binding Running: sends may reach it, and
    /// received NBLs may be retained (see the module's invariants).
    pub(crate) ndis_running: bool,
    /// Counts pause and restart events, so a restart that finishes after a
    /// later pause began does not open sends.
    pnp_seq: u32,
    /// Send NBLs NDIS owns.
    pub(crate) sends_in_flight: u64,
    /// Received NBLs rawnic holds past their indication.
    pub(crate) retained: u64,
    /// Receive indications running now (in every state).
    pub(crate) indicating: u32,
    /// The pause notification to complete when nothing is outstanding.
    pending_pause: Option<*mut NET_PNP_EVENT_NOTIFICATION>,
    pub(crate) pnp_kind: PnpKind,
    /// The send NBLs the binding owns and may use.
    pub(crate) pool: SendPool,
    /// What sends must fit now: the MTU the pool follows, and the MAC
    /// options. It changes only in `set_send_shape` (while not Running),
    /// so a send that took NBLs while Running holds the shape its frames
    /// must have until they are back.
    pub(crate) send_shape: SendShape,
    /// Retained receive NBLs and their reference counts (boxed: it is a
    /// kilobyte, and the bind handler's stack is small).
    pub(crate) retain: alloc::boxed::Box<RetainTable>,
    /// Retained NBLs released while an indication ran: still counted in
    /// `retained`, they go back to NDIS with the NBLs of the next
    /// indication to end, in one `NdisReturnNetBufferLists`.
    pub(crate) deferred_returns: ReturnChain,
    /// OID requests NDIS holds.
    pub(crate) oids: Vec<HeldOid>,
    /// The `RequestId` of the next OID request: ids are never reused while
    /// the binding lives, so a cancel that races with a completion cannot
    /// reach a later request that happens to get the same memory.
    pub(crate) next_oid_id: usize,
    /// OID calls (`NdisOidRequest`, `NdisCancelOidRequest`) and OID
    /// completions (`ProtocolOidRequestComplete`) running now.
    pub(crate) handle_calls: u32,
    /// The unbind began: no new OID request; the adapter closes once
    /// `oids` is empty and `handle_calls` is 0.
    pub(crate) closing: bool,
    close_issued: bool,
    /// The adapter is in a low-power state: from `NetEventSetPower` for
    /// D1-D3 until the restart or `NetEventSetPower` for D0 that says it
    /// is back in D0. No send and no OID request reaches NDIS meanwhile
    /// ("If the miniport adapter is in a low-power state, the protocol
    /// driver cannot issue any OID requests"; from NDIS 6.30 it "must stop
    /// generating new I/O requests" once told).
    pub(crate) low_power: bool,
    /// The `NetEventSetPower` to complete once no OID call is running
    /// (`handle_calls` back to 0): one that began before the event still
    /// calls `NdisOidRequest`.
    pending_power: Option<*mut NET_PNP_EVENT_NOTIFICATION>,
}

// SAFETY: `Core`'s raw pointers are a pending pause notification (NDIS keeps
// it valid until it is completed, from any thread) and NBLs in its chains,
// which rawnic owns.
unsafe impl Send for Core {}

/// One binding: the wrapper's state and the logic's `T::Binding`.
pub struct Binding<T: Protocol> {
    proto: NonNull<T>,
    handle: AtomicPtr<c_void>,
    pub(crate) core: SpinLock<Core>,
    /// Held shared by sends across their NDIS call, exclusively by the move
    /// out of Running.
    gate: RwGate,
    /// Runs the NDIS calls that need PASSIVE_LEVEL (`DEFER_*` bits).
    work: WorkItem,
    deferred: AtomicU32,
    /// A restart NDIS was told of whose `restarted` has not returned yet: a
    /// pause that begins meanwhile is completed by the work item, after it
    /// (so the protocol hears of the two in the order they happened).
    restart_notice: AtomicBool,
    /// Zero-copy NBLs with NDIS: while there are none, a send completion
    /// need not look for them.
    pub(crate) zc_in_flight: AtomicUsize,
    pub(super) bind_ctx: AtomicPtr<c_void>,
    pub(super) bind_hs: Handshake,
    pub(super) bind_status: AtomicI32,
    pub(super) selected_medium: core::cell::UnsafeCell<u32>,
    pub(super) unbind_ctx: AtomicPtr<c_void>,
    pub(super) pnp_hs: Handshake,
    pnp_status: AtomicI32,
    pnp_event: AtomicPtr<NET_PNP_EVENT_NOTIFICATION>,
    /// `pnp_seq` when the pending restart began.
    restart_seq: AtomicU32,
    params: BindParams,
    logic: T::Binding,
    /// Last, so that it drops last: the unbind's completion, or the failed
    /// bind's (`complete_at_drop`).
    pub(super) complete_at_drop: CompleteAtDrop,
}

// SAFETY: the raw pointers are NDIS handles and notifications that NDIS
// lets any thread use, and the protocol object, which is `Sync`;
// `selected_medium` is written by NDIS only during the open, before any
// other thread can see the binding.
unsafe impl<T: Protocol> Send for Binding<T> {}
// SAFETY: as above; all mutable state is atomic or behind `core`'s lock.
unsafe impl<T: Protocol> Sync for Binding<T> {}

impl<T: Protocol> core::ops::Deref for Binding<T> {
    type Target = T::Binding;
    fn deref(&self) -> &T::Binding {
        &self.logic
    }
}

/// Why a binding could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoResources;

/// What the frames of a send must fit, as NDIS last told the binding
/// (bind parameters, then each restart's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendShape {
    /// The longest untagged frame: MTU plus the Ethernet header.
    pub max_frame: usize,
    /// The adapter's MAC options (which say whether it puts 802.1Q tags
    /// from the NBL's info on the wire).
    pub mac_options: u32,
}

impl SendShape {
    pub fn new(mtu: u32, mac_options: u32) -> SendShape {
        SendShape { max_frame: mtu as usize + rawnic_proto::ETH_HEADER, mac_options }
    }
}

impl<T: Protocol> Binding<T> {
    /// A new binding in the Unbound state, in an `Arc` (the only place a
    /// binding lives).
    pub(super) fn new(
        proto: &T,
        params: BindParams,
        logic: T::Binding,
        protocol_handle: NDIS_HANDLE,
    ) -> Result<Arc<Self>, NoResources> {
        let pool = SendPool::new(protocol_handle, params.mtu).map_err(|_| NoResources)?;
        let retain = crate::kernel::alloc::try_box(RetainTable::new()).map_err(|_| NoResources)?;
        let oids = crate::kernel::alloc::try_vec(8).map_err(|_| NoResources)?;
        let gate = RwGate::new().ok_or(NoResources)?;
        let work = WorkItem::new().ok_or(NoResources)?;
        let complete_at_drop = CompleteAtDrop::new().map_err(|_| NoResources)?;
        crate::kernel::alloc::try_arc(Binding {
            proto: NonNull::from(proto),
            handle: AtomicPtr::new(ptr::null_mut()),
            core: SpinLock::new(Core {
                sm: StateMachine::new(),
                ndis_running: false,
                pnp_seq: 0,
                sends_in_flight: 0,
                retained: 0,
                indicating: 0,
                pending_pause: None,
                pnp_kind: PnpKind::None,
                pool,
                send_shape: SendShape::new(params.mtu, params.mac_options),
                retain,
                deferred_returns: ReturnChain::new(),
                oids,
                next_oid_id: 1,
                handle_calls: 0,
                closing: false,
                close_issued: false,
                low_power: false,
                pending_power: None,
            }),
            gate,
            work,
            deferred: AtomicU32::new(0),
            restart_notice: AtomicBool::new(false),
            zc_in_flight: AtomicUsize::new(0),
            bind_ctx: AtomicPtr::new(ptr::null_mut()),
            bind_hs: Handshake::new(),
            bind_status: AtomicI32::new(NDIS_STATUS_PENDING),
            selected_medium: core::cell::UnsafeCell::new(0),
            unbind_ctx: AtomicPtr::new(ptr::null_mut()),
            pnp_hs: Handshake::new(),
            pnp_status: AtomicI32::new(NDIS_STATUS_SUCCESS),
            pnp_event: AtomicPtr::new(ptr::null_mut()),
            restart_seq: AtomicU32::new(0),
            params,
            logic,
            complete_at_drop,
        })
        .map_err(|_| NoResources)
    }

    /// The protocol object. Only the wrapper reads it, in handlers and the
    /// work item (the invariant): the logic may keep an `Arc<Binding>` after
    /// the registration, and the object with it, is gone, so it gets the
    /// protocol object as `&self` of its own methods instead.
    pub(in crate::kernel) fn proto(&self) -> &T {
        // SAFETY: the registration owns it and outlives every call that
        // reads it (type invariant).
        unsafe { self.proto.as_ref() }
    }

    /// The NDIS binding handle (null before the open and after the close).
    pub(crate) fn ndis_handle(&self) -> NDIS_HANDLE {
        self.handle.load(Ordering::Acquire)
    }

    pub(super) fn handle_slot(&self) -> *mut NDIS_HANDLE {
        self.handle.as_ptr()
    }

    pub fn params(&self) -> &BindParams {
        &self.params
    }

    /// The send shape, if sends may reach NDIS now (Running, as NDIS sees
    /// it too): a hint for refusing early, taken with the shape under one
    /// hold of the lock; `begin_send` and `send_zc` decide.
    pub fn send_shape_if_sending(&self) -> Option<SendShape> {
        let c = self.core.lock();
        (c.ndis_running && !c.low_power).then_some(c.send_shape)
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

    /// Completes `irps` once no send holds the binding's gate (a send
    /// completion may run inside a sender's NDIS call, under its hold):
    /// now, or as a holder lets go. Call with no lock held.
    pub fn complete_outside_sends(&self, irps: IrpList) {
        self.gate.complete_outside(irps);
    }

    /// The size the send pool's buffers have.
    pub fn send_slot_size(&self) -> usize {
        self.core.lock().pool.slot_size()
    }

    /// What sends must fit from the next Running on: the MTU (the send
    /// pool is rebuilt for it when its buffers are another size) and the
    /// MAC options. Only while Paused or Restarting, with nothing in
    /// flight (else `WrongState`, and nothing changes).
    ///
    /// A new pool that cannot be made (`NoMemory`) leaves the old one:
    /// when its buffers are larger than `mtu` needs they serve it, and the
    /// shape is set (`Ok`); else sends stay within the old MTU (only the
    /// MAC options change) and it is `Err(NoMemory)`.
    pub fn set_send_shape(&self, mtu: u32, mac_options: u32) -> Result<(), SendGateError> {
        let shape = SendShape::new(mtu, mac_options);
        {
            let mut c = self.core.lock();
            if c.sm.is_running() || c.sends_in_flight != 0 {
                return Err(SendGateError::WrongState);
            }
            if c.pool.fits(mtu) {
                c.send_shape = shape;
                return Ok(());
            }
        }
        // Built outside the lock (it allocates), swapped in under it.
        let Ok(fresh) = SendPool::new(super::protocol_handle(), mtu) else {
            let mut c = self.core.lock();
            if c.sm.is_running() || c.sends_in_flight != 0 {
                return Err(SendGateError::WrongState);
            }
            if c.pool.holds(mtu) {
                c.send_shape = shape;
                return Ok(());
            }
            c.send_shape.mac_options = mac_options;
            return Err(SendGateError::NoMemory);
        };
        let old = {
            let mut c = self.core.lock();
            if c.sm.is_running() || c.sends_in_flight != 0 {
                drop(c);
                drop(fresh);
                return Err(SendGateError::WrongState);
            }
            c.send_shape = shape;
            core::mem::replace(&mut c.pool, fresh)
        };
        drop(old);
        Ok(())
    }

    /// What sends must fit now (they check again when they take NBLs).
    pub fn send_shape(&self) -> SendShape {
        self.core.lock().send_shape
    }

    /// (total, free, peak in use) send NBLs.
    pub fn send_pool_counts(&self) -> (usize, usize, usize) {
        self.core.lock().pool.counts()
    }

    /// Applies `event`; on an illegal one, counts it and says so. Every
    /// change is logged ("state A -> B"), which is how tests see the
    /// transient states.
    pub(crate) fn apply(&self, core: &mut Core, event: BindingEvent) -> bool {
        let from = core.sm.state();
        match core.sm.apply(event) {
            Ok(to) => {
                if matches!(event, BindingEvent::Pause | BindingEvent::Restart) {
                    core.pnp_seq = core.pnp_seq.wrapping_add(1);
                }
                crate::kprint!(
                    crate::kernel::debug::LEVEL_INFO,
                    "binding {}: state {:?} -> {:?} ({:?})",
                    self.params.adapter_name,
                    from,
                    to,
                    event
                );
                true
            }
            Err(e) => {
                crate::safety_net!(
                    "binding {}: refused {:?} in state {:?}",
                    self.params.adapter_name,
                    e.event,
                    e.state
                );
                false
            }
        }
    }

    /// If a pause is waiting and nothing is outstanding (no send in flight,
    /// no received NBL retained, no indication running), completes it.
    /// Called with the lock held; returns the notification to complete
    /// after unlocking.
    pub(in crate::kernel) fn pause_ready(&self, core: &mut Core) -> Option<*mut NET_PNP_EVENT_NOTIFICATION> {
        if core.sends_in_flight == 0 && core.retained == 0 && core.indicating == 0 {
            if let Some(n) = core.pending_pause.take() {
                self.apply(core, BindingEvent::PauseComplete);
                return Some(n);
            }
        }
        None
    }

    /// Starts waiting for the pause `n`; true when it completed at once.
    ///
    /// # Safety
    /// As for `pnp_begins`: `n` is the pause's notification, not yet
    /// completed (whoever finishes the pause completes it, once).
    pub(super) unsafe fn wait_for_pause(&self, n: *mut NET_PNP_EVENT_NOTIFICATION) -> bool {
        let mut c = self.core.lock();
        c.pending_pause = Some(n);
        self.pause_ready(&mut c).is_some()
    }

    /// A pause that `pause_ready` released, from a completion (lock not
    /// held; any IRQL). If the pause handler already returned
    /// NDIS_STATUS_PENDING, the work item tells the logic and NDIS, at
    /// PASSIVE_LEVEL and outside every lock; otherwise the handler, still
    /// running, does it when it returns.
    pub(in crate::kernel) fn finish_pause(&self, notification: *mut NET_PNP_EVENT_NOTIFICATION) {
        debug_assert_eq!(notification, self.pnp_event.load(Ordering::Acquire));
        self.pnp_status.store(NDIS_STATUS_SUCCESS, Ordering::Release);
        if self.pnp_hs.completes() {
            self.defer(DEFER_NOTIFY_PAUSED | DEFER_PNP_COMPLETE);
        }
    }

    /// A PnP event begins: remember its notification.
    ///
    /// # Safety
    /// `n` is the notification NDIS passed to this binding's PnP handler
    /// for the event now beginning, not yet completed: the binding hands it
    /// to `NdisCompleteNetPnPEvent` once, when the event ends (`pnp_hs`).
    pub(super) unsafe fn pnp_begins(&self, kind: PnpKind, n: *mut NET_PNP_EVENT_NOTIFICATION) {
        self.pnp_hs.reset();
        self.pnp_event.store(n, Ordering::Release);
        let seq = {
            let mut c = self.core.lock();
            c.pnp_kind = kind;
            c.pnp_seq
        };
        self.restart_seq.store(seq, Ordering::Release);
    }

    /// The restart handler is returning: it always pends, and the work item
    /// completes the event (now, if the logic already finished the restart).
    pub(super) fn restart_handler_returns(&self) -> NdisStatus {
        if !self.pnp_hs.handler_returns() {
            // The token completed while the handler ran: this is the second
            // party.
            self.defer(DEFER_PNP_COMPLETE | DEFER_NOTIFY_RESTARTED);
        }
        NdisStatus::PENDING
    }

    /// Whether a successful restart's `restarted` has not returned yet.
    pub(super) fn restart_notice_outstanding(&self) -> bool {
        self.restart_notice.load(Ordering::Acquire)
    }

    /// A new strong reference to this binding.
    pub(crate) fn self_arc(&self) -> Arc<Binding<T>> {
        let p: *const Binding<T> = self;
        // SAFETY: every `Binding` lives in an `Arc` (invariant), and a
        // reference to it means that `Arc`'s value is alive, so its strong
        // count is at least one.
        unsafe { Arc::increment_strong_count(p) };
        // SAFETY: as above; this takes the count just added.
        unsafe { Arc::from_raw(p) }
    }

    /// Returns the retained receive NBLs released while no indication ran
    /// (while one runs, the next to end returns them). Call it holding no
    /// lock: NDIS may indicate from inside the return. Releases ask the
    /// binding's work item to call it too, so a caller that does not only
    /// delays them.
    pub fn flush_returns(&self) {
        let chain = {
            let mut c = self.core.lock();
            if c.indicating != 0 || c.deferred_returns.len() == 0 {
                return;
            }
            core::mem::replace(&mut c.deferred_returns, ReturnChain::new())
        };
        self.release_retained(chain, Irql::AtMostDispatch);
    }

    /// Returns retained receive NBLs, and completes a waiting pause if they
    /// were the last outstanding ones.
    pub(crate) fn release_retained(&self, chain: ReturnChain, irql: Irql<'_>) {
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

    /// `NetEventSetPower` for a low-power state (`n`): from now on no send
    /// starts (the gate is taken exclusively, so none is between its check
    /// and its NDIS call either) and no OID request is sent. True when an
    /// OID call that began before is still running: the event then
    /// completes when the last such call ends (`end_handle_call`), and the
    /// handler returns what `pnp_hs` decides.
    ///
    /// # Safety
    /// As for `pnp_begins`: `n` is the `NetEventSetPower` notification NDIS
    /// passed to this binding's PnP handler, not yet completed.
    pub(super) unsafe fn enter_low_power(&self, n: *mut NET_PNP_EVENT_NOTIFICATION) -> bool {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.pnp_begins(PnpKind::Power, n) };
        self.pnp_status.store(NDIS_STATUS_SUCCESS, Ordering::Release);
        let mut st = GateState::new();
        let gate = self.gate().write(&mut st);
        let mut c = self.core.lock_dpr(gate.at_dispatch());
        c.low_power = true;
        if c.handle_calls > 0 {
            c.pending_power = Some(n);
            true
        } else {
            false
        }
    }
}

/// Why a send could not start, or the send pool could not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendGateError {
    /// The binding is not Running (or is not Paused, for a resize).
    WrongState,
    /// Memory ran out.
    NoMemory,
}

/// Obligation to finish a restart.
#[must_use = "a restart must be completed"]
pub struct RestartToken<T: Protocol> {
    pub(super) binding: Arc<Binding<T>>,
}

impl<T: Protocol> RestartToken<T> {
    /// Finishes the restart: `Ok` enters Running, `Err` returns to Paused
    /// and fails the restart with that status. NDIS is told from the
    /// binding's work item; sends may start once it has been.
    pub fn complete(self, result: Result<(), NdisStatus>) {
        let b = self.binding;
        {
            let mut c = b.core.lock();
            let ev = if result.is_ok() { BindingEvent::RestartSucceeded } else { BindingEvent::RestartFailed };
            b.apply(&mut c, ev);
        }
        let status = match result {
            Ok(()) => NdisStatus::SUCCESS,
            Err(s) => s,
        };
        b.pnp_status.store(status.0, Ordering::Release);
        if b.pnp_hs.completes() {
            b.defer(DEFER_PNP_COMPLETE | DEFER_NOTIFY_RESTARTED);
        }
    }
}

/// A strong count of the binding NDIS passes as `ctx`, for the duration of
/// a handler.
///
/// # Safety
/// `ctx` is a `ProtocolBindingContext` this module gave NDIS, and NDIS still
/// holds its count (the close has not completed).
pub(crate) unsafe fn binding_arc<T: Protocol>(ctx: NDIS_HANDLE) -> Arc<Binding<T>> {
    let p = ctx as *const Binding<T>;
    // SAFETY: NDIS holds a strong count (caller), so adding one is sound.
    unsafe { Arc::increment_strong_count(p) };
    // SAFETY: `p` came from `Arc::into_raw`; this takes the count just added.
    unsafe { Arc::from_raw(p) }
}
