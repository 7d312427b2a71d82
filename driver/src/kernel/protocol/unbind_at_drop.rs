//! The unbind completion of a protocol that is deregistering, owed by the
//! binding until the binding itself is gone.
//!
//! `NdisDeregisterProtocolDriver` returns once NDIS has every unbind's
//! completion; then `DriverUnload` deletes the device and frees the
//! protocol object, and the registration handle, with which each binding
//! allocated its read/write lock and NBL pool, is no longer valid. The work
//! item or the close completion that completes an unbind still holds the
//! binding for a moment after (its own `Arc`), so a binding completed the
//! usual way could be freed, with `NdisFreeRWLock` and
//! `NdisFreeNetBufferListPool`, after the deregistration returned, and its
//! work item could still run. While the protocol deregisters, the unbind
//! handler latches this (and returns NDIS_STATUS_PENDING), the close arms
//! it with the unbind context instead of completing, and the binding's
//! last field completes the unbind as the binding is dropped, after every
//! other field is freed. No handle holds a binding then: Windows calls
//! `DriverUnload` only once every handle of the device is closed.
//!
//! # Invariants
//! `ctx`, once not null, is the unbind context of an unbind handler that
//! returned NDIS_STATUS_PENDING (or is returning it), not completed yet.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use ndis_sys::NdisCompleteUnbindAdapterEx;

/// Set while `NdisDeregisterProtocolDriver` runs.
pub(super) static DEREGISTERING: AtomicBool = AtomicBool::new(false);

pub(crate) struct UnbindAtDrop {
    latched: AtomicBool,
    ctx: AtomicPtr<c_void>,
}

impl UnbindAtDrop {
    pub(super) const fn new() -> Self {
        UnbindAtDrop { latched: AtomicBool::new(false), ctx: AtomicPtr::new(ptr::null_mut()) }
    }

    /// In the unbind handler, before the close can begin: whether this
    /// unbind is completed at drop (the protocol deregisters).
    pub(super) fn latch(&self) -> bool {
        let on = DEREGISTERING.load(Ordering::Acquire);
        self.latched.store(on, Ordering::Release);
        on
    }

    /// Whether the unbind handler latched it.
    pub(super) fn is_latched(&self) -> bool {
        self.latched.load(Ordering::Acquire)
    }

    /// At the close's end, for a latched unbind: completes it at drop.
    pub(super) fn arm(&self, unbind_ctx: *mut c_void) {
        debug_assert!(self.is_latched());
        self.ctx.store(unbind_ctx, Ordering::Release);
    }
}

impl Drop for UnbindAtDrop {
    fn drop(&mut self) {
        let ctx = *self.ctx.get_mut();
        if !ctx.is_null() {
            // SAFETY: the unbind handler returned NDIS_STATUS_PENDING with
            // this context, which nothing else completes (invariant); the
            // last holder of a binding while the protocol deregisters is
            // the unbind handler, the work item or the close completion,
            // all at PASSIVE_LEVEL.
            unsafe { NdisCompleteUnbindAdapterEx(ctx) };
        }
    }
}
