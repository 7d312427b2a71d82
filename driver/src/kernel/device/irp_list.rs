//! Pending IRPs waiting to be completed once their taker lets go of its
//! locks, linked through the IRPs themselves.

use super::{PendingIrp, id_slot};
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use ndis_sys::{IO_STATUS_BLOCK, IO_STATUS_BLOCK_STATUS, IRP};
use rawnic_proto::NtStatus;

/// IRPs to complete later (with no lock held), in the order they were
/// added, each with its status and information. The list is threaded
/// through the IRPs: the second DriverContext word of each links the next,
/// the third keeps its cancel routine, and the status and information wait
/// in its `IoStatus`. So adding an IRP never allocates and never fails:
/// none is ever completed under a lock for want of memory.
///
/// # Invariants
/// Every IRP on the list came from a `PendingIrp` that `push` consumed,
/// and is owned by the list until `pop` hands it back: its DriverContext
/// words 1 and 2 are the link and the cancel routine, word 0 still its
/// `IrpId`. `head` is null exactly when the list is empty, and `tail` is
/// then null too, else the last IRP (whose link is 0).
pub struct IrpList {
    head: *mut IRP,
    tail: *mut IRP,
}

// SAFETY: the list owns its IRPs as `PendingIrp`s are owned, and those
// are `Send`.
unsafe impl Send for IrpList {}

/// A pending IRP's cancel routine (`PendingIrp::cancel`).
type CancelRoutine = unsafe extern "win64" fn(*mut ndis_sys::DEVICE_OBJECT, *mut IRP);

/// DriverContext word `i` of an IRP.
fn word(irp: *mut IRP, i: usize) -> *mut usize {
    // The words follow one another from the first (`id_slot`).
    id_slot(irp).wrapping_add(i)
}

impl IrpList {
    pub const fn new() -> Self {
        IrpList { head: ptr::null_mut(), tail: ptr::null_mut() }
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Adds `irp`, to be completed with `status` and `information`.
    pub fn push(&mut self, irp: PendingIrp, status: NtStatus, information: usize) {
        let irp = ManuallyDrop::new(irp);
        let raw = irp.raw.as_ptr();
        // SAFETY: (and for the three writes below) the IRP is ours (PendingIrp's
        // invariant) and now the list's: its DriverContext words are the
        // driver's while it holds it (the cancel routine reads only word 0,
        // the id), and its IoStatus is read by nobody before it completes.
        unsafe { word(raw, 1).write(0) };
        // SAFETY: as above.
        unsafe { word(raw, 2).write(irp.cancel as usize) };
        let io = IO_STATUS_BLOCK { anon: IO_STATUS_BLOCK_STATUS { Status: status.0 }, Information: information };
        // SAFETY: as above.
        unsafe { (*raw).IoStatus = io };
        if self.tail.is_null() {
            self.head = raw;
        } else {
            // SAFETY: the tail is an IRP the list owns (invariant).
            unsafe { word(self.tail, 1).write(raw as usize) };
        }
        self.tail = raw;
    }

    /// Moves every IRP of `other` to the end of this list, in order.
    pub fn append(&mut self, other: &mut IrpList) {
        if other.head.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = other.head;
        } else {
            // SAFETY: the tail is an IRP this list owns (invariant).
            unsafe { word(self.tail, 1).write(other.head as usize) };
        }
        self.tail = other.tail;
        // Emptied in place (an assignment would drop, so complete, what
        // this list now owns).
        other.head = ptr::null_mut();
        other.tail = ptr::null_mut();
    }

    /// Takes the first IRP back, with its status and information.
    pub fn pop(&mut self) -> Option<(PendingIrp, NtStatus, usize)> {
        let raw = NonNull::new(self.head)?;
        let p = raw.as_ptr();
        // SAFETY: (and for the two reads below) an IRP the list owns
        // (invariant), whose link, cancel routine and staged status `push`
        // wrote.
        let next = unsafe { word(p, 1).read() } as *mut IRP;
        // SAFETY: as above.
        let cancel_word = unsafe { word(p, 2).read() };
        // SAFETY: as above.
        let io = unsafe { &(*p).IoStatus };
        // SAFETY: `push` wrote the union's `Status` member.
        let status = NtStatus(unsafe { io.anon.Status });
        let information = io.Information;
        // SAFETY: `push` wrote a `PendingIrp`'s cancel routine there, a
        // function pointer of exactly this type, as a usize.
        let cancel = unsafe { core::mem::transmute::<usize, CancelRoutine>(cancel_word) };
        self.head = next;
        if next.is_null() {
            self.tail = ptr::null_mut();
        }
        Some((PendingIrp { raw, cancel }, status, information))
    }

    /// Completes every IRP, in order (call with no lock held).
    pub fn complete_all(&mut self) {
        while let Some((irp, status, information)) = self.pop() {
            irp.complete(status, information);
        }
    }
}

impl Default for IrpList {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrpList {
    /// A list dropped with IRPs on it completes them as they were staged:
    /// an IRP is never forgotten.
    fn drop(&mut self) {
        self.complete_all();
    }
}
