//! What NDIS checks and frees when the driver is gone: the pools, NBLs,
//! NET_BUFFERs, MDLs and RW locks it never freed (each a verifier report),
//! then everything ndisim allocated for them.

use super::{nb_pool, nbl};
use crate::kernel::Kernel;
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
