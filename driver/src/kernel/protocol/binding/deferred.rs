//! The binding's work item: what `Binding::defer` asks of it (the
//! `DEFER_*` operations) and runs at PASSIVE_LEVEL, in order: returns of
//! retained NBLs, the logic's `paused`, `NdisCompleteNetPnPEvent`, the
//! logic's `restarted` and deferred work, and `NdisCloseAdapterEx`.

use super::close::closed;
use super::{Binding, PnpKind, Protocol};
use alloc::sync::Arc;
use core::ffi::c_void;
use core::sync::atomic::Ordering;
use ndis_sys::*;

impl<T: Protocol> Binding<T> {
    /// Runs `op` (`DEFER_*`) in the binding's work item, at PASSIVE_LEVEL.
    pub(crate) fn defer(&self, op: u32) {
        self.deferred.fetch_or(op, Ordering::SeqCst);
        let ctx = Arc::into_raw(self.self_arc()) as *mut c_void;
        // SAFETY: `ctx` is a strong count the routine takes back; the
        // routine looks for work until none is left.
        if !unsafe { self.work.queue(binding_worker::<T>, ctx) } {
            // Already queued or running: that run will see the bit.
            // SAFETY: not handed to the work item: take the count back.
            unsafe { drop(Arc::from_raw(ctx as *const Binding<T>)) };
        }
    }

    /// Asks for `Protocol::deferred_work` in the binding's work item: for
    /// work a completion should not do on its caller's stack (another
    /// request whose completion may come inside it, and so on).
    pub fn defer_work(&self) {
        self.defer(DEFER_LOGIC);
    }
}

/// `Binding::defer` operations.
pub(crate) const DEFER_PNP_COMPLETE: u32 = 1;
pub(crate) const DEFER_CLOSE: u32 = 2;
pub(crate) const DEFER_NOTIFY_PAUSED: u32 = 4;
pub(crate) const DEFER_NOTIFY_RESTARTED: u32 = 8;
pub(crate) const DEFER_RETURNS: u32 = 16;
pub(crate) const DEFER_LOGIC: u32 = 32;

/// The binding's work item: NDIS calls that need PASSIVE_LEVEL.
unsafe extern "win64" fn binding_worker<T: Protocol>(_device: *mut DEVICE_OBJECT, ctx: *mut c_void) {
    // SAFETY: `defer` passed a strong count of the binding.
    let b = unsafe { Arc::from_raw(ctx as *const Binding<T>) };
    // One run at a time, until no work is left: a restart's notification
    // (`restarted`) ends before the pause that follows is told (`paused`),
    // and before the close, after which the protocol may be gone.
    loop {
        let ops = b.deferred.swap(0, Ordering::AcqRel);
        run_deferred(&b, ops);
        if !b.work.finished(|| b.deferred.load(Ordering::SeqCst) != 0) {
            break;
        }
    }
}

/// The work `ops` (`DEFER_*` bits) of the binding's work item, in order.
fn run_deferred<T: Protocol>(b: &Arc<Binding<T>>, ops: u32) {
    if ops & DEFER_RETURNS != 0 {
        b.flush_returns();
    }
    if ops & DEFER_NOTIFY_PAUSED != 0 {
        b.proto().paused(b);
    }
    if ops & DEFER_PNP_COMPLETE != 0 {
        let n = b.pnp_event.load(Ordering::Acquire);
        let status = b.pnp_status.load(Ordering::Acquire);
        let kind = b.core.lock().pnp_kind;
        // The sequence number of the restart this completes, read while
        // NDIS still waits for the completion (no PnP event can begin
        // before it): once NdisCompleteNetPnPEvent returns, NDIS may pause
        // and restart the binding again before this work item goes on, and
        // `restart_seq` is then the next restart's.
        let seq = b.restart_seq.load(Ordering::Acquire);
        let succeeded = kind == PnpKind::Restart && status == NDIS_STATUS_SUCCESS;
        if succeeded && ops & DEFER_NOTIFY_RESTARTED != 0 {
            // Before NDIS may pause again: the pause handler sees it.
            b.restart_notice.store(true, Ordering::Release);
        }
        // SAFETY: the PnP handler returned (or is returning)
        // NDIS_STATUS_PENDING for this notification (the handshake), which
        // NDIS keeps valid until this call; a work item runs at
        // PASSIVE_LEVEL.
        unsafe { NdisCompleteNetPnPEvent(b.ndis_handle(), n, status) };
        if succeeded {
            // NDIS now considers the binding Running: sends may start,
            // unless a pause (and perhaps the next restart, not yet
            // complete) began meanwhile.
            let mut c = b.core.lock();
            if c.sm.is_running() && c.pnp_seq == seq {
                c.ndis_running = true;
            }
        }
    }
    if ops & DEFER_NOTIFY_RESTARTED != 0 {
        // Whether the restart succeeded (a pause may have begun since: it
        // waits for this, see `restart_notice`).
        let succeeded = b.restart_notice.load(Ordering::Acquire);
        b.proto().restarted(b, succeeded);
        b.restart_notice.store(false, Ordering::Release);
    }
    if ops & DEFER_LOGIC != 0 {
        b.proto().deferred_work(b);
    }
    if ops & DEFER_CLOSE != 0 {
        // SAFETY: the handle is the open binding's; the unbind began and no
        // OID request is outstanding or running (`close_if_ready`), and the
        // binding is Paused, so no send or retained receive is either;
        // PASSIVE_LEVEL.
        let status = unsafe { NdisCloseAdapterEx(b.ndis_handle()) };
        if status != NDIS_STATUS_PENDING {
            closed(b);
        }
    }
}
