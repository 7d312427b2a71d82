//! Work items: running NDIS calls that need PASSIVE_LEVEL
//! (`NdisCompleteNetPnPEvent`, `NdisCloseAdapterEx`) when the event that
//! triggers them arrives at DISPATCH_LEVEL (a send completion, a returned
//! NBL, an OID completion). Protocol drivers have no NDIS work items, so
//! these are I/O work items on the control device.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use ndis_sys::*;

/// One I/O work item, queued or running at most once at a time: its
/// routine never runs beside itself. (Windows lets a routine that began
/// queue its item again, and the second run may start on another worker
/// thread while the first still runs; `queued` stays set until the
/// routine has no work left, so work that arrives meanwhile is the
/// running routine's.)
///
/// # Invariants
/// `item` came from `IoAllocateWorkItem` and is freed in `drop`, never
/// while queued (the owner outlives the routine's run: it passes a strong
/// reference to itself as the context).
pub struct WorkItem {
    item: NonNull<IO_WORKITEM>,
    queued: AtomicBool,
}

// SAFETY: work items may be queued from any thread.
unsafe impl Send for WorkItem {}
// SAFETY: `queued` serialises queueing.
unsafe impl Sync for WorkItem {}

impl WorkItem {
    /// A work item on the control device.
    pub fn new() -> Option<Self> {
        let dev = super::device::device_object();
        if dev.is_null() {
            return None;
        }
        // SAFETY: the control device exists while the driver is loaded.
        let item = unsafe { IoAllocateWorkItem(dev) };
        NonNull::new(item).map(|item| WorkItem { item, queued: AtomicBool::new(false) })
    }

    /// Queues `routine(ctx)` unless already queued or running; returns
    /// whether it queued (if not, that run will see the new work).
    ///
    /// # Safety
    /// `ctx` stays valid until `routine` runs, and `routine` looks for
    /// work until `finished` says there is none left.
    pub unsafe fn queue(
        &self,
        routine: unsafe extern "win64" fn(*mut DEVICE_OBJECT, *mut c_void),
        ctx: *mut c_void,
    ) -> bool {
        if self.queued.swap(true, Ordering::SeqCst) {
            return false;
        }
        // SAFETY: the item is valid and not queued (the flag); the caller
        // keeps `ctx` valid.
        unsafe { IoQueueWorkItem(self.item.as_ptr(), Some(routine), DelayedWorkQueue, ctx) };
        true
    }

    /// The routine did the work it found; `more` says whether work arrived
    /// since it last looked (a sequentially consistent load of what the
    /// owner stores, sequentially consistent, before it calls `queue`).
    /// Returns whether the routine must look again (it keeps the item); if
    /// not, the item may be queued again (and work that arrives from now on
    /// queues it).
    pub fn finished(&self, more: impl Fn() -> bool) -> bool {
        // Sequentially consistent, with `more`'s load, the owner's store of
        // its work and `queue`'s swap: otherwise this store and that load
        // (a store then a load of another location) may pass each other,
        // and a `queue` that found the item still queued and a run that
        // found no work would both leave the new work to the other.
        self.queued.swap(false, Ordering::SeqCst);
        // Work that arrived before the swap found the item queued and left
        // it to this run: take the item back for it, unless a new run was
        // queued meanwhile (which will see it).
        more() && !self.queued.swap(true, Ordering::SeqCst)
    }
}

impl Drop for WorkItem {
    fn drop(&mut self) {
        // SAFETY: the item is not queued (invariant).
        unsafe { IoFreeWorkItem(self.item.as_ptr()) };
    }
}
