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
//! run. So the unbind handler always returns NDIS_STATUS_PENDING, and so
//! does the bind handler for a bind that fails; the close (or the failed
//! open) arms this, and the binding's last field makes the call as the
//! binding is dropped, after every other field is freed. Nothing keeps a
//! binding after its unbind but for a moment: handles lose it at the
//! unbind (`Mode::Orphaned`), and so do their rings.
//!
//! # Invariants
//! Once armed, `ctx` is the context of an unbind handler, or of a bind
//! handler, that returned NDIS_STATUS_PENDING (or is returning it), not
//! completed yet; `kind` says which.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, Ordering};
use ndis_sys::{NDIS_STATUS, NdisCompleteBindAdapterEx, NdisCompleteUnbindAdapterEx};

const NONE: u8 = 0;
const UNBIND: u8 = 1;
const BIND_FAILED: u8 = 2;

pub(crate) struct CompleteAtDrop {
    kind: AtomicU8,
    ctx: AtomicPtr<c_void>,
    status: AtomicI32,
}

impl CompleteAtDrop {
    pub(super) const fn new() -> Self {
        CompleteAtDrop { kind: AtomicU8::new(NONE), ctx: AtomicPtr::new(ptr::null_mut()), status: AtomicI32::new(0) }
    }

    /// At the close's end: the unbind (of context `unbind_ctx`, whose
    /// handler returned NDIS_STATUS_PENDING) completes at drop.
    pub(super) fn arm_unbind(&self, unbind_ctx: *mut c_void) {
        self.arm(UNBIND, unbind_ctx, 0);
    }

    /// The open failed with `status`: the bind (of context `bind_ctx`,
    /// whose handler returned NDIS_STATUS_PENDING) fails at drop.
    pub(super) fn arm_bind_failure(&self, bind_ctx: *mut c_void, status: NDIS_STATUS) {
        self.arm(BIND_FAILED, bind_ctx, status);
    }

    fn arm(&self, kind: u8, ctx: *mut c_void, status: NDIS_STATUS) {
        self.ctx.store(ctx, Ordering::Relaxed);
        self.status.store(status, Ordering::Relaxed);
        self.kind.store(kind, Ordering::Release);
    }
}

impl Drop for CompleteAtDrop {
    fn drop(&mut self) {
        let ctx = *self.ctx.get_mut();
        match *self.kind.get_mut() {
            // SAFETY: the unbind handler returned NDIS_STATUS_PENDING with
            // this context, which nothing else completes (invariant); a
            // binding is dropped at IRQL <= DISPATCH_LEVEL, which the call
            // allows.
            UNBIND => unsafe { NdisCompleteUnbindAdapterEx(ctx) },
            // SAFETY: the bind handler returned NDIS_STATUS_PENDING with
            // this context, which nothing else completes (invariant); IRQL
            // as above.
            BIND_FAILED => unsafe { NdisCompleteBindAdapterEx(ctx, *self.status.get_mut()) },
            _ => {}
        }
    }
}
