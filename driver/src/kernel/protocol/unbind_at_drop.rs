//! A binding's unbind completion, owed until the binding itself is gone.
//!
//! NDIS: when a protocol completes an unbind, it has released what it
//! allocated for the binding. `NdisDeregisterProtocolDriver` returns once
//! NDIS has every unbind's completion, and `DriverUnload` then deletes the
//! device and frees the protocol object; the registration handle, with
//! which each binding allocated its read/write lock and NBL pool, is gone.
//! The work item or the close completion that finishes a close still
//! holds the binding for a moment after (its own `Arc`), and a handle may
//! hold it a moment longer (an ioctl in flight), so a binding whose unbind
//! completed as its close did could be freed, with `NdisFreeRWLock` and
//! `NdisFreeNetBufferListPool`, after the unbind completed, and after the
//! deregistration returned, while its work item could still run. So the
//! unbind handler always returns NDIS_STATUS_PENDING, the close arms this
//! with the unbind context, and the binding's last field completes the
//! unbind as the binding is dropped, after every other field is freed.
//! Nothing keeps a binding after its unbind but for a moment: handles lose
//! it at the unbind (`Mode::Orphaned`), and so do their rings.
//!
//! # Invariants
//! `ctx`, once not null, is the unbind context of an unbind handler that
//! returned NDIS_STATUS_PENDING (or is returning it), not completed yet.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::NdisCompleteUnbindAdapterEx;

pub(crate) struct UnbindAtDrop {
    ctx: AtomicPtr<c_void>,
}

impl UnbindAtDrop {
    pub(super) const fn new() -> Self {
        UnbindAtDrop { ctx: AtomicPtr::new(ptr::null_mut()) }
    }

    /// At the close's end: the unbind (of context `unbind_ctx`, whose
    /// handler returned NDIS_STATUS_PENDING) completes at drop.
    pub(super) fn arm(&self, unbind_ctx: *mut c_void) {
        self.ctx.store(unbind_ctx, Ordering::Release);
    }
}

impl Drop for UnbindAtDrop {
    fn drop(&mut self) {
        let ctx = *self.ctx.get_mut();
        if !ctx.is_null() {
            // SAFETY: the unbind handler returned NDIS_STATUS_PENDING with
            // this context, which nothing else completes (invariant); a
            // binding is dropped at IRQL <= DISPATCH_LEVEL, which the call
            // allows.
            unsafe { NdisCompleteUnbindAdapterEx(ctx) };
        }
    }
}
