//! The completion a binding owes NDIS until the binding itself is gone:
//! its unbind's, or its failed bind's.
//!
//! NDIS: when a protocol completes an unbind, it has released what it
//! allocated for the binding; when it fails a bind, it has freed what it
//! allocated to establish it. `NdisDeregisterProtocolDriver` returns once
//! NDIS has every unbind's completion, and `DriverUnload` then deletes the
//! device and frees the protocol object; the registration handle, with
//! which each binding allocated its read/write lock and NBL pool, is gone.
//! The thread that finishes a close or an open (the work item, the close
//! or open completion, the bind handler) still holds the binding for a
//! moment after, and a handle may hold it a moment longer (an ioctl in
//! flight), so a binding completed from there could be freed, with
//! `NdisFreeRWLock` and `NdisFreeNetBufferListPool`, after NDIS was told,
//! and after the deregistration returned, while its work item could still
//! run. So the close (or the failed open) arms this, and the binding's
//! last field tells NDIS as the binding is dropped, after every other
//! field is freed. NDIS is told by a call only after the handler returned
//! NDIS_STATUS_PENDING: the handler drops its own reference before it
//! returns and then looks at a handshake it shares with the drop (kept
//! apart from the binding, which may be gone by then). If the binding was
//! dropped already, the handler returns the outcome itself (SUCCESS for an
//! unbind, the failure for a bind); else it returns PENDING and the drop
//! makes the call. Nothing keeps a binding after its unbind but for a
//! moment: handles lose it at the unbind (`Mode::Orphaned`), and so do
//! their rings.
//!
//! # Invariants
//! Once armed, `ctx` is the context of the unbind or bind handler whose
//! operation it completes, not completed yet; `kind` says which, and the
//! bind's `Shared::status` its failure. The drop calls NDIS only when the
//! operation's handshake says its handler returned NDIS_STATUS_PENDING.

use super::binding::Handshake;
use crate::kernel::alloc::{AllocError, try_arc};
use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, Ordering};
use ndis_sys::{
    NDIS_STATUS, NDIS_STATUS_PENDING, NDIS_STATUS_SUCCESS, NdisCompleteBindAdapterEx, NdisCompleteUnbindAdapterEx,
};

const NONE: u8 = 0;
const UNBIND: u8 = 1;
const BIND_FAILED: u8 = 2;

/// What the handler and the binding's drop share: whoever of the two is
/// second tells NDIS (the drop by a call, the handler by its return).
pub(crate) struct Shared {
    hs: Handshake,
    /// The outcome: SUCCESS for an unbind, the failure for a bind.
    status: AtomicI32,
}

/// One for the bind and one for the unbind, so that a bind handler still
/// on its way out cannot touch the unbind's.
pub(crate) struct Pair {
    bind: Shared,
    unbind: Shared,
}

/// A handler's hold on its operation's half of the pair.
pub(super) struct HandlerHold {
    pair: Arc<Pair>,
    kind: u8,
}

pub(crate) struct CompleteAtDrop {
    kind: AtomicU8,
    ctx: AtomicPtr<c_void>,
    /// Both handshakes in one allocation: a bind makes one allocation
    /// fewer that can fail under low memory.
    pair: Arc<Pair>,
}

fn shared() -> Shared {
    Shared { hs: Handshake::new(), status: AtomicI32::new(NDIS_STATUS_SUCCESS) }
}

impl CompleteAtDrop {
    pub(super) fn new() -> Result<Self, AllocError> {
        Ok(CompleteAtDrop {
            kind: AtomicU8::new(NONE),
            ctx: AtomicPtr::new(ptr::null_mut()),
            pair: try_arc(Pair { bind: shared(), unbind: shared() })?,
        })
    }

    /// The bind's handshake, for the bind handler's `handler_result`.
    pub(super) fn bind(&self) -> HandlerHold {
        HandlerHold { pair: self.pair.clone(), kind: BIND_FAILED }
    }

    /// The unbind's handshake, for the unbind handler's `handler_result`.
    pub(super) fn unbind(&self) -> HandlerHold {
        HandlerHold { pair: self.pair.clone(), kind: UNBIND }
    }

    /// At the close's end: the unbind (of context `unbind_ctx`) completes
    /// at drop.
    ///
    /// # Safety
    /// `unbind_ctx` is the context NDIS passed to this binding's
    /// `ProtocolUnbindAdapterEx`, whose unbind nothing has completed: the
    /// drop hands it to `NdisCompleteUnbindAdapterEx`.
    pub(super) unsafe fn arm_unbind(&self, unbind_ctx: *mut c_void) {
        self.arm(UNBIND, unbind_ctx, NDIS_STATUS_SUCCESS);
    }

    /// The open failed with `status`: the bind (of context `bind_ctx`)
    /// fails at drop.
    ///
    /// # Safety
    /// `bind_ctx` is the context NDIS passed to this binding's
    /// `ProtocolBindAdapterEx`, whose bind nothing has completed: the drop
    /// hands it to `NdisCompleteBindAdapterEx`.
    pub(super) unsafe fn arm_bind_failure(&self, bind_ctx: *mut c_void, status: NDIS_STATUS) {
        super::registration::bind_declined();
        self.arm(BIND_FAILED, bind_ctx, status);
    }

    fn arm(&self, kind: u8, ctx: *mut c_void, status: NDIS_STATUS) {
        self.ctx.store(ctx, Ordering::Relaxed);
        self.of(kind).status.store(status, Ordering::Relaxed);
        self.kind.store(kind, Ordering::Release);
    }

    fn of(&self, kind: u8) -> &Shared {
        self.pair.of(kind)
    }
}

impl Pair {
    fn of(&self, kind: u8) -> &Shared {
        if kind == UNBIND { &self.unbind } else { &self.bind }
    }
}

/// What a handler returns, once it has dropped its own reference to the
/// binding: NDIS_STATUS_PENDING while the binding lives (its drop will
/// tell NDIS), else the outcome the drop left.
pub(super) fn handler_result(hold: &HandlerHold) -> NDIS_STATUS {
    let shared = hold.pair.of(hold.kind);
    if shared.hs.handler_returns() { NDIS_STATUS_PENDING } else { shared.status.load(Ordering::Acquire) }
}

impl Drop for CompleteAtDrop {
    fn drop(&mut self) {
        let kind = *self.kind.get_mut();
        if kind == NONE || !self.of(kind).hs.completes() {
            // Nothing to tell, or the handler has not returned yet: it
            // returns the outcome itself (`handler_result`).
            return;
        }
        let ctx = *self.ctx.get_mut();
        match kind {
            // SAFETY: the unbind handler returned NDIS_STATUS_PENDING with
            // this context (the handshake), which nothing else completes
            // (invariant); a binding is dropped at IRQL <= DISPATCH_LEVEL,
            // which the call allows.
            UNBIND => unsafe { NdisCompleteUnbindAdapterEx(ctx) },
            // SAFETY: as above, for the bind handler and its context.
            _ => unsafe { NdisCompleteBindAdapterEx(ctx, self.pair.bind.status.load(Ordering::Acquire)) },
        }
    }
}
