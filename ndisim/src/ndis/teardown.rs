//! What NDIS checks and frees when the driver is gone: the pools, NBLs,
//! NET_BUFFERs, MDLs and RW locks it never freed (each a verifier report),
//! then everything ndisim allocated for them.

use super::{Adapter, nb_pool, nbl};
use crate::BindingState;
use crate::adapter::CompletionPolicy;
use crate::kernel::DISPATCH_LEVEL;
use crate::kernel::Kernel;
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long after a pause begins an adapter gives back what a test held
/// and never released: the pause handler is called first, with it still
/// outstanding.
const GIVE_BACK_AFTER: Duration = Duration::from_millis(1);

/// The test is over when the simulation unloads, and so are the holds
/// it put on each adapter: a real miniport completes its sends and OID
/// requests in due course, and a pause waits for them, not for ever. Calls
/// stalled on entry or exit and held returns to D0 go on now. Sends and
/// OID requests held at the miniport (`hold_sends`, `hold_oids`) come
/// back from a DPC once the binding's next pause has begun (at once if
/// it is not running), so the unload's pause still begins with them
/// outstanding and a driver that does not wait for them is still caught.
/// Without this a test that forgot a hold would see the driver blamed for
/// a pause that never ended.
pub(crate) fn end_test_holds(k: &Kernel) {
    for a in k.ndis.adapters() {
        a.oid_stall.store(false, Ordering::Release);
        a.oid_stall_return.store(false, Ordering::Release);
        a.send_stall.store(false, Ordering::Release);
        a.d0_hold.store(false, Ordering::Release);
        {
            let mut policy = lock(&a.policy);
            if *policy == CompletionPolicy::Held {
                *policy = CompletionPolicy::Immediate;
            }
        }
        // Flag first, then look: a pause that begins meanwhile (its state
        // set before it takes the flag) either is seen here or finds the
        // flag; whichever takes it gives back, once.
        a.give_back.store(true, Ordering::SeqCst);
        let running = lock(&a.binding).as_ref().is_some_and(|b| b.state() == BindingState::Running);
        if !running {
            give_back_at_pause(k, a);
        }
    }
}

/// A pause of `a`'s binding has begun (or it does not run): what the
/// adapter holds for a test that is over comes back `GIVE_BACK_AFTER`
/// from now (`end_test_holds`).
pub(super) fn give_back_at_pause(k: &Kernel, a: &Arc<Adapter>) {
    if !a.give_back.swap(false, Ordering::SeqCst) {
        return;
    }
    let oids = a.oid_hold.load(Ordering::Acquire);
    let a = a.clone();
    k.dpc.push(GIVE_BACK_AFTER, DISPATCH_LEVEL, move || {
        if let Some(k) = crate::kernel::kernel() {
            super::release_sends(k, &a, None);
            if oids {
                super::release_oids(k, &a);
            }
        }
    });
}

/// Reports NBL pools, NBLs, NET_BUFFER pools, NET_BUFFERs and MDLs the
/// driver did not free, and receive buffers it changed after giving them
/// back.
pub(crate) fn leak_check(k: &Kernel) {
    for a in k.ndis.adapters() {
        a.sweep_returned(k, "DriverUnload");
    }
    for p in lock(&k.ndis.pools).iter() {
        let live = p.live.load(Ordering::Acquire);
        if !p.freed.load(Ordering::Acquire) {
            Violation::new(
                Rule::ResourceLeak,
                "DriverUnload",
                format!("NBL pool (tag {}) was never freed", crate::pool::tag_str(p.tag)),
            )
            .with_object(Arc::as_ptr(p) as usize)
            .report();
        }
        if live != 0 && !p.freed.load(Ordering::Acquire) {
            Violation::new(
                Rule::NblLeak,
                "DriverUnload",
                format!("{live} NBL(s) of pool (tag {}) were never freed", crate::pool::tag_str(p.tag)),
            )
            .with_object(Arc::as_ptr(p) as usize)
            .report();
        }
    }
    nb_pool::nb_leak_check(k);
    let mdls = lock(&k.ndis.mdls).len();
    if mdls != 0 {
        Violation::new(
            Rule::ResourceLeak,
            "DriverUnload",
            format!("{mdls} MDL(s) from NdisAllocateMdl were never freed"),
        )
        .report();
    }
    let rw = lock(&k.ndis.rwlocks).len();
    if rw != 0 {
        Violation::new(Rule::ResourceLeak, "DriverUnload", format!("{rw} NDIS_RW_LOCK_EX(s) were never freed"))
            .report();
    }
    for a in k.ndis.adapters() {
        if let Some(b) = lock(&a.binding).as_ref() {
            Violation::new(
                Rule::ResourceLeak,
                "DriverUnload",
                "the binding is still open after the protocol deregistered (or never deregistered)",
            )
            .with_binding(b.name.clone())
            .report();
        }
    }
}

/// Frees what ndisim allocated for NBL and NET_BUFFER pools, and the
/// status buffers it keeps inaccessible (after the driver is gone).
pub(crate) fn free_everything(k: &Kernel) {
    k.ndis.lent.release();
    k.ndis.kept.release();
    nb_pool::free_nb_pools(k);
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
    for l in lock(&k.ndis.rwlocks).drain() {
        // SAFETY: an `NdisAllocateRWLock` box the driver never freed (it is
        // gone); it left the set, so it is dropped once.
        unsafe { drop(Box::from_raw(l as *mut crate::sync::RwLockEx)) };
    }
}
