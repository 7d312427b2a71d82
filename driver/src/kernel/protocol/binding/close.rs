//! Closing a binding: the unbind cancels the OID requests NDIS holds,
//! the OID calls that use the handle are counted, the close is issued
//! once the last of them ended, and what the closed binding held is
//! released and the unbind completed at its drop.

use super::deferred::{DEFER_CLOSE, DEFER_PNP_COMPLETE};
use super::{Binding, Core, Protocol};
use alloc::sync::Arc;
use core::ptr;
use core::sync::atomic::Ordering;
use ndis_sys::*;
use rawnic_logic::state::BindingEvent;

impl<T: Protocol> Binding<T> {
    /// If the unbind began and no OID is outstanding or running, issues the
    /// close (in the work item). Called with the lock held.
    pub(crate) fn close_if_ready(&self, c: &mut Core) -> bool {
        if c.closing && !c.close_issued && c.oids.is_empty() && c.handle_calls == 0 {
            c.close_issued = true;
            return true;
        }
        false
    }

    /// The unbind began: no new OID request; cancel the pending ones; close
    /// once they are back.
    pub(in crate::kernel::protocol) fn begin_close(&self) {
        {
            let mut c = self.core.lock();
            c.closing = true;
        }
        // Cancel what NDIS still holds, a few at a time (no allocation).
        loop {
            let mut batch = [0usize; 16];
            let n = {
                let mut c = self.core.lock();
                let mut n = 0;
                for e in c.oids.iter_mut() {
                    if !e.cancelled && n < batch.len() {
                        e.cancelled = true;
                        batch[n] = e.id;
                        n += 1;
                    }
                }
                if n > 0 {
                    c.handle_calls += 1;
                }
                n
            };
            if n == 0 {
                break;
            }
            for &id in &batch[..n] {
                // SAFETY: the binding is open (the close waits for
                // `handle_calls`), and `id` is a request NDIS holds.
                unsafe { NdisCancelOidRequest(self.ndis_handle(), id as PVOID) };
            }
            self.end_handle_call();
        }
        self.end_handle_call_check();
    }

    /// An OID call with the handle ended.
    pub(crate) fn end_handle_call(&self) {
        let (close, power) = {
            let mut c = self.core.lock();
            c.handle_calls -= 1;
            let power = if c.handle_calls == 0 { c.pending_power.take() } else { None };
            (self.close_if_ready(&mut c), power)
        };
        if power.is_some() && self.pnp_hs.completes() {
            // The set-power handler returned NDIS_STATUS_PENDING: the work
            // item completes the event, at PASSIVE_LEVEL.
            self.defer(DEFER_PNP_COMPLETE);
        }
        if close {
            self.defer(DEFER_CLOSE);
        }
    }

    fn end_handle_call_check(&self) {
        let close = {
            let mut c = self.core.lock();
            self.close_if_ready(&mut c)
        };
        if close {
            self.defer(DEFER_CLOSE);
        }
    }
}

/// After the adapter closed: release everything and tell NDIS.
pub(in crate::kernel::protocol) fn closed<T: Protocol>(b: &Arc<Binding<T>>) {
    b.proto().closed(b);
    {
        let mut c = b.core.lock();
        c.pool.release_all();
        b.apply(&mut c, BindingEvent::CloseComplete);
    }
    b.handle.store(ptr::null_mut(), Ordering::Release);
    let ctx = b.unbind_ctx.load(Ordering::Acquire);
    // The binding's drop completes the unbind, once nothing of it is left
    // (`complete_at_drop`).
    // SAFETY: `ctx` is the context NDIS passed to this binding's unbind
    // handler (stored there before it began the close); the unbind is not
    // completed: only this binding's drop completes it, after this.
    unsafe { b.complete_at_drop.arm_unbind(ctx) };
    // NDIS forgets the binding context: drop its strong count.
    // SAFETY: the pointer came from `Arc::into_raw` in the bind handler, and
    // this is the one place it is given back.
    unsafe { drop(Arc::from_raw(Arc::as_ptr(b))) };
}
