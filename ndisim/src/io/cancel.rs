//! Cancellation: `IoCancelIrp` (the I/O manager's and the export), which
//! calls the driver's cancel routine under the cancel spin lock, and
//! `IoAcquireCancelSpinLock` / `IoReleaseCancelSpinLock`.

use crate::kernel::{self, DISPATCH_LEVEL, Kernel};
use crate::verifier::Violation;
use crate::verifier::{Rule, lock};
use ndis_sys::*;
use std::sync::atomic::Ordering;

thread_local! {
    /// The IRP whose cancel routine this thread runs, until the routine
    /// releases the cancel spin lock (its address and its waiter's, which
    /// tells it from a later IRP at the same address); 0 otherwise.
    static CANCELLING: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Whether this thread runs `irp`'s cancel routine and still holds the
/// cancel spin lock it was called with (a completion from there is the
/// routine's own, not a race with it).
pub(super) fn cancelling_here(irp: usize) -> bool {
    CANCELLING.get().0 == irp
}

/// The cancel routine this thread runs released the cancel spin lock (or
/// returned): from here its IRP may complete on any thread, as the
/// routine's own contract with the driver's other paths says (it reads the
/// IRP only while it holds the lock; `IoCancelIrp` holds no reference).
fn end_cancel_window(k: &Kernel) {
    let (irp, waiter) = CANCELLING.replace((0, 0));
    if irp == 0 {
        return;
    }
    if let Some(r) = lock(&k.io.st).irps.get_mut(&irp) {
        if std::sync::Arc::as_ptr(&r.waiter) as usize == waiter {
            r.cancel_running = false;
        }
    }
}

/// `Sim::stall_cancel_routines`: a cancel routine's release of the cancel
/// spin lock it was called with waits, the lock still held, until
/// `Sim::release_cancel_routines` (at most the watchdog's time): a routine
/// that takes a while before it lets go, the window in which only a
/// completion that waits for the lock is safe.
fn stall_cancel_routine(k: &Kernel) {
    if !k.io.cancel_stall.load(Ordering::Acquire) {
        return;
    }
    k.io.cancel_stalled.fetch_add(1, Ordering::AcqRel);
    k.wait_until(k.config.watchdog, "a cancel routine the test stalled", || !k.io.cancel_stall.load(Ordering::Acquire));
    k.io.cancel_stalled.fetch_sub(1, Ordering::AcqRel);
}

/// `IoCancelIrp`: marks the IRP cancelled and, if it has a cancel routine,
/// calls it at DISPATCH_LEVEL with the cancel spin lock held (the routine
/// releases it with `IoReleaseCancelSpinLock(Irp->CancelIrql)`).
pub(crate) fn cancel_irp(k: &Kernel, irp: usize) -> bool {
    cancel_irp_if(k, irp, |_| true)
}

/// `cancel_irp` if the IRP at `irp` is still the one meant (`is`): the
/// caller's IRP may have completed and its memory gone to a new one (the
/// I/O manager reuses IRPs, as ndisim does, `super::irp::retire`).
pub(super) fn cancel_irp_if(k: &Kernel, irp: usize, is: impl Fn(&super::IrpRec) -> bool) -> bool {
    {
        let mut st = lock(&k.io.st);
        match st.irps.get_mut(&irp) {
            // Held while the cancel touches it: the driver may complete the
            // IRP on another thread meanwhile, and its memory must stay
            // until `cancel_held` lets go.
            Some(r) if !r.completed && is(r) => {
                r.pins += 1;
                r.waiter.mark_cancelled();
                let in_dispatch = r.dispatch_status.is_none();
                st.cancels_in_dispatch += u64::from(in_dispatch);
            }
            _ => return false,
        }
    }
    let called = cancel_held(k, irp);
    super::irp::retire(k, irp);
    called
}

/// Lets go of an IRP `cancel_irp_if` held.
fn unpin(k: &Kernel, irp: usize) {
    let mut st = lock(&k.io.st);
    if let Some(r) = st.irps.get_mut(&irp) {
        r.pins -= 1;
    }
}

/// The harness cancels its request `irp` (the one `waiter` waits for): a
/// no-op once it completed, even if a new IRP has the same address.
pub(crate) fn cancel_request(k: &Kernel, irp: usize, waiter: &std::sync::Arc<super::Waiter>) -> bool {
    cancel_irp_if(k, irp, |r| std::sync::Arc::ptr_eq(&r.waiter, waiter))
}

/// `CancelIoEx(handle, NULL)`: IoCancelIrp on every request of file
/// `file` in flight, whichever thread sent it, including those still in
/// the driver's dispatch routine (the I/O manager lists an IRP on its
/// thread before it calls the driver). Returns how many had a cancel
/// routine.
pub(crate) fn cancel_file(k: &Kernel, file: usize) -> usize {
    let irps = lock(&k.io.st).files.get(&file).map(|f| f.irps.clone()).unwrap_or_default();
    // The I/O manager's own CLEANUP and CLOSE belong to no thread's I/O.
    let user = |r: &super::IrpRec| r.file == file && !matches!(r.major, IRP_MJ_CLEANUP | IRP_MJ_CLOSE);
    irps.into_iter().filter(|&i| cancel_irp_if(k, i, user)).count()
}

/// `cancel_irp` on an IRP it holds.
fn cancel_held(k: &Kernel, irp: usize) -> bool {
    let ip = irp as *mut IRP;
    let lockp = k.io.cancel_lock_ptr();
    let old = kernel::set_irql(DISPATCH_LEVEL);
    // SAFETY: our cancel spin lock.
    unsafe { crate::sync::spin_acquire("IoCancelIrp", lockp, 0) };
    // The routine is taken under the I/O records' lock, which a completion
    // holds while it looks at `cancel_running`: a completion on another
    // thread comes either before the routine is taken or sees it running.
    let (routine, waiter) = {
        let mut st = lock(&k.io.st);
        // SAFETY: a live IRP: set Cancel, then take the routine atomically.
        let routine = unsafe {
            (*ip).Cancel = 1;
            let slot = &*(std::ptr::addr_of_mut!((*ip).CancelRoutine) as *const std::sync::atomic::AtomicUsize);
            slot.swap(0, Ordering::AcqRel)
        };
        let rec = st.irps.get_mut(&irp).expect("pinned");
        rec.cancel_running = routine != 0;
        (routine, std::sync::Arc::as_ptr(&rec.waiter) as usize)
    };
    if routine == 0 {
        // SAFETY: we hold it.
        unsafe { crate::sync::spin_release("IoCancelIrp", lockp) };
        kernel::set_irql(old);
        unpin(k, irp);
        return false;
    }
    // SAFETY: a live IRP.
    unsafe { (*ip).CancelIrql = old };
    // SAFETY: the routine pointer was the driver's DRIVER_CANCEL.
    let f: unsafe extern "win64" fn(*mut DEVICE_OBJECT, *mut IRP) = unsafe { std::mem::transmute(routine) };
    // SAFETY: the IRP's stack location names its device.
    let dev = unsafe { (*(*ip).Tail.Overlay.anon2.CurrentStackLocation).DeviceObject };
    // From here ndisim does not touch the IRP, and holds it no longer, as
    // Windows' IoCancelIrp holds no reference across the routine: the
    // driver's completion waits for the cancel spin lock, which the routine
    // releases; after that the IRP may complete, be freed and its memory
    // reused by the next request while the routine still runs. A routine
    // that looks the IRP up by address then finds another request.
    unpin(k, irp);
    CANCELLING.set((irp, waiter));
    let held_before = kernel::held_count();
    // The routine is entered at DISPATCH_LEVEL holding the cancel lock and
    // must leave at CancelIrql having released it.
    let exit = kernel::at_irql(DISPATCH_LEVEL, || {
        // A handler `Sim::stall_lock_acquire` may aim at: what the routine
        // does once it let go of the cancel spin lock races with the IRP's
        // completion, the handle's close and the driver's unload.
        let _slow = crate::slow::enter("CancelRoutine");
        crate::stack::run_driver(k, "CancelRoutine", || {
            // SAFETY: the driver's cancel routine with its device and IRP.
            unsafe { f(dev, ip) }
        });
        kernel::irql()
    });
    // A routine that kept the lock: its window ends here.
    end_cancel_window(k);
    let kept_cancel = kernel::holds(lockp as usize) && kernel::held_count() >= held_before;
    if kept_cancel {
        Violation::new(
            Rule::SpinLockImbalance,
            "CancelRoutine",
            "the cancel routine returned without releasing the cancel spin lock (IoReleaseCancelSpinLock(Irp->CancelIrql))",
        )
        .with_object(irp)
        .report();
        // SAFETY: we (this thread) hold it.
        unsafe { crate::sync::spin_release("CancelRoutine", lockp) };
    }
    // Any other lock it took and kept ("must not hold any spin locks when
    // the dispatch routine or cancel routine ends"): the cancel lock was
    // the last one held when it began.
    let leaked = kernel::take_held_since(held_before.saturating_sub(1));
    for h in &leaked {
        Violation::new(
            Rule::SpinLockImbalance,
            "CancelRoutine",
            format!("the cancel routine returned still holding a {:?} lock; ndisim releases it to go on", h.kind),
        )
        .with_object(h.addr)
        .report();
        crate::sync::force_release(*h);
    }
    if !kept_cancel && leaked.is_empty() && exit != old {
        Violation::new(
            Rule::Irql,
            "CancelRoutine",
            format!("the cancel routine returned at IRQL {exit}, not at Irp->CancelIrql ({old})"),
        )
        .with_object(irp)
        .report();
    }
    kernel::set_irql(old);
    true
}

pub(crate) unsafe extern "win64" fn IoAcquireCancelSpinLock(irql: *mut KIRQL) {
    const CALL: &str = "IoAcquireCancelSpinLock";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let old = kernel::set_irql(DISPATCH_LEVEL);
        k.io.cancel_waiters.fetch_add(1, Ordering::AcqRel);
        // SAFETY: our cancel spin lock.
        unsafe { crate::sync::spin_acquire(CALL, k.io.cancel_lock_ptr(), 0) };
        k.io.cancel_waiters.fetch_sub(1, Ordering::AcqRel);
        if !irql.is_null() {
            // SAFETY: the driver's out parameter.
            unsafe { *irql = old };
        }
    })
}

pub(crate) unsafe extern "win64" fn IoReleaseCancelSpinLock(irql: KIRQL) {
    const CALL: &str = "IoReleaseCancelSpinLock";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_eq(CALL, DISPATCH_LEVEL);
        if CANCELLING.get().0 != 0 && kernel::holds(k.io.cancel_lock_ptr() as usize) {
            stall_cancel_routine(k);
            end_cancel_window(k);
        }
        // SAFETY: our cancel spin lock.
        if unsafe { crate::sync::spin_release(CALL, k.io.cancel_lock_ptr()) } {
            kernel::set_irql(irql);
        }
    })
}

/// `IoCancelIrp` as an export (drivers may cancel IRPs they sent; ndisim's
/// I/O manager uses `cancel_irp`).
pub(crate) unsafe extern "win64" fn IoCancelIrp(irp: *mut IRP) -> BOOLEAN {
    const CALL: &str = "IoCancelIrp";
    crate::ndis::export(CALL, 0, |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        cancel_irp(k, irp as usize) as u8
    })
}
