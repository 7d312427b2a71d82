//! I/O work items: `IoAllocateWorkItem`, `IoQueueWorkItem` (the routine
//! runs on a system worker thread at PASSIVE_LEVEL) and `IoFreeWorkItem`.

use crate::kernel::{self, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::verifier::Violation;
use crate::verifier::{Rule, lock};
use ndis_sys::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) struct WorkItem {
    magic: u64,
    dev: usize,
    queued: AtomicBool,
    /// The context it was queued with (its routine's second argument).
    ctx: AtomicUsize,
}

const WORKITEM_MAGIC: u64 = 0x4D45_5449_4B52_4F57; // "WORKITEM"

pub(crate) unsafe extern "win64" fn IoAllocateWorkItem(dev: *mut DEVICE_OBJECT) -> *mut IO_WORKITEM {
    const CALL: &str = "IoAllocateWorkItem";
    crate::ndis::export(CALL, std::ptr::null_mut(), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if k.fail_alloc() {
            return std::ptr::null_mut();
        }
        let mut st = lock(&k.io.st);
        if !st.devices.iter().any(|d| d.dev == dev && !d.deleted) {
            drop(st);
            Violation::new(Rule::InvalidParameter, CALL, "not a live device object of the driver")
                .with_object(dev as usize)
                .report();
            return std::ptr::null_mut();
        }
        let w = Box::into_raw(Box::new(WorkItem {
            magic: WORKITEM_MAGIC,
            dev: dev as usize,
            queued: AtomicBool::new(false),
            ctx: AtomicUsize::new(0),
        }));
        st.workitems.insert(w as usize);
        drop(st);
        crate::ndis::owned::allocated(k, w as usize, "an I/O work item");
        w.cast()
    })
}

pub(crate) unsafe extern "win64" fn IoQueueWorkItem(
    item: *mut IO_WORKITEM,
    routine: IO_WORKITEM_ROUTINE,
    queue: u32,
    ctx: PVOID,
) {
    const CALL: &str = "IoQueueWorkItem";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if !lock(&k.io.st).workitems.contains(&(item as usize)) {
            Violation::new(Rule::InvalidParameter, CALL, "not a work item from IoAllocateWorkItem (or freed)")
                .with_object(item as usize)
                .report();
            return;
        }
        let Some(routine) = routine else {
            Violation::new(Rule::InvalidParameter, CALL, "WorkerRoutine is NULL").with_object(item as usize).report();
            return;
        };
        // The routine's page: "Drivers must specify DelayedWorkQueue."
        if queue != DelayedWorkQueue {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("QueueType {queue} is not DelayedWorkQueue, which drivers must specify"),
            )
            .with_object(item as usize)
            .report();
        }
        // SAFETY: a live work item (checked).
        let w = unsafe { &*(item as *const WorkItem) };
        // The routine's page: the I/O manager references the work item's
        // device while it is queued; one deleted (IoDeleteDevice) may be
        // gone by then.
        if lock(&k.io.st).devices.iter().any(|d| d.dev as usize == w.dev && d.deleted) {
            Violation::new(
                Rule::WorkItemMisuse,
                CALL,
                "queued a work item whose device object was deleted (IoDeleteDevice)",
            )
            .with_object(item as usize)
            .report();
        }
        if w.queued.swap(true, Ordering::AcqRel) {
            Violation::new(Rule::WorkItemMisuse, CALL, "queued a work item that is already queued")
                .with_object(item as usize)
                .report();
            return;
        }
        w.ctx.store(ctx as usize, Ordering::Release);
        if k.image.get().is_some_and(|i| !i.is_code(routine as usize)) {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "WorkerRoutine does not point into the driver's (non-discarded) code",
            )
            .with_object(routine as usize)
            .report();
        }
        let (wp, dev, c) = (item as usize, w.dev, ctx as usize);
        k.io.workers.push(Duration::ZERO, PASSIVE_LEVEL, move || {
            // SAFETY: the work item stays allocated while queued (freeing a
            // queued item is refused).
            unsafe { (*(wp as *const WorkItem)).queued.store(false, Ordering::Release) };
            kernel::call_driver("WorkerRoutine", PASSIVE_LEVEL, || {
                // SAFETY: the driver's routine with its device and context.
                unsafe { routine(dev as *mut DEVICE_OBJECT, c as PVOID) }
            });
        });
    })
}

pub(crate) unsafe extern "win64" fn IoFreeWorkItem(item: *mut IO_WORKITEM) {
    const CALL: &str = "IoFreeWorkItem";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let mut st = lock(&k.io.st);
        if !st.workitems.contains(&(item as usize)) {
            drop(st);
            Violation::new(Rule::InvalidParameter, CALL, "not a work item from IoAllocateWorkItem (or freed twice)")
                .with_object(item as usize)
                .report();
            return;
        }
        // SAFETY: a live work item.
        let w = unsafe { &*(item as *const WorkItem) };
        if w.magic != WORKITEM_MAGIC || w.queued.load(Ordering::Acquire) {
            drop(st);
            Violation::new(Rule::WorkItemMisuse, CALL, "freed a work item that is still queued")
                .with_object(item as usize)
                .report();
            return;
        }
        st.workitems.remove(&(item as usize));
        crate::ndis::owned::freed(k, item as usize);
        // SAFETY: allocated by IoAllocateWorkItem, freed once.
        unsafe { drop(Box::from_raw(item as *mut WorkItem)) };
    })
}

/// The contexts in `lo..hi` of work items queued whose routine has not
/// begun: it will be called with them.
pub(crate) fn queued_contexts_in(k: &kernel::Kernel, lo: usize, hi: usize) -> Vec<usize> {
    let st = lock(&k.io.st);
    st.workitems
        .iter()
        .filter_map(|&w| {
            // SAFETY: a live work item (freed only under this lock).
            let w = unsafe { &*(w as *const WorkItem) };
            let c = w.ctx.load(Ordering::Acquire);
            (w.queued.load(Ordering::Acquire) && (lo..hi).contains(&c)).then_some(c)
        })
        .collect()
}
