//! The control device (`\Device\RawNic`, `\\.\RawNic`) and IRPs.
//!
//! An `Irp` is owned by whoever holds it and is completed exactly once:
//! `complete` consumes it, and `pend` turns it into a `PendingIrp` that the
//! logic keeps in a queue. A `PendingIrp` with a cancel routine follows the
//! classic cancel-safe protocol: the routine runs with the cancel spin lock,
//! takes a reference to the file's context, releases the lock and asks the
//! logic to find and complete the IRP; whoever else completes it first
//! clears the cancel routine atomically and, if the routine is already
//! running, waits for it to release the cancel spin lock before completing.

mod irp_list;

pub use irp_list::IrpList;

use super::alloc::{AllocError, try_box};
use super::ustr;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use ndis_sys::*;
use rawnic_proto::NtStatus;

/// The logic behind the control device. `&self` is valid for each call:
/// the handler outlives the device, and the I/O manager calls nothing once
/// the device is deleted.
pub trait DeviceHandler: Sync + Sized + 'static {
    /// One open handle.
    type File: Send + Sync + 'static;

    /// `IRP_MJ_CREATE`: a new handle's context.
    fn create(&self) -> Result<Arc<Self::File>, NtStatus>;
    /// `IRP_MJ_CLEANUP`: the last handle closed; complete its pending IRPs.
    fn cleanup(&self, file: &Arc<Self::File>);
    /// `IRP_MJ_CLOSE`: the last reference is gone.
    fn close(&self, file: Arc<Self::File>);
    /// `IRP_MJ_READ` (direct I/O).
    fn read(&self, file: &Arc<Self::File>, irp: Irp) -> Dispatched;
    /// `IRP_MJ_WRITE` (direct I/O).
    fn write(&self, file: &Arc<Self::File>, irp: Irp) -> Dispatched;
    /// `IRP_MJ_DEVICE_CONTROL` (METHOD_BUFFERED).
    fn ioctl(&self, file: &Arc<Self::File>, irp: Irp) -> Dispatched;
    /// A pending IRP of `file` was cancelled: find it (by `id`), take it out
    /// of its queue and complete it with `STATUS_CANCELLED`. Not finding it
    /// means someone else is completing it.
    fn cancel(&self, file: &Arc<Self::File>, id: IrpId);
}

/// What a dispatch routine returns; only `Irp::complete` and `Irp::pend`
/// make one, so every IRP is completed or pended.
#[must_use]
pub struct Dispatched(NtStatus);

impl Dispatched {
    /// The NTSTATUS the dispatch routine returns.
    fn raw(self) -> NTSTATUS {
        self.0.0
    }
}

/// A kernel routine's NTSTATUS as a result: `Err` unless it is
/// STATUS_SUCCESS.
fn nt_result(status: NTSTATUS) -> Result<(), NtStatus> {
    if status == NtStatus::SUCCESS.0 { Ok(()) } else { Err(NtStatus(status)) }
}

/// The identity of a pending IRP, for cancellation: a number given when it
/// pends, never reused, not its address. A cancel routine may still be
/// looking for an IRP that completed meanwhile (it runs on after the cancel
/// spin lock is released); by then the I/O manager may have reused the
/// IRP's memory for the next request of the same file, which the address
/// would name as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrpId(usize);

/// The next `IrpId` (0 is never given).
static NEXT_IRP_ID: AtomicUsize = AtomicUsize::new(1);

/// An IRP being dispatched.
///
/// # Invariants
/// `raw` is an IRP the I/O manager sent to this driver, not yet completed,
/// whose current stack location is ours.
pub struct Irp {
    raw: NonNull<IRP>,
}

// SAFETY: an IRP may be completed from any thread.
unsafe impl Send for Irp {}

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` is an IRP this driver holds: sent to it and not yet completed.
unsafe fn current_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the IRP is valid while the driver holds it (caller).
    let tail = unsafe { &(*irp).Tail };
    // SAFETY: while a driver holds an IRP its tail is `Overlay` (the I/O
    // manager uses `Apc` and `CompletionKey` only once it is completed).
    let overlay = unsafe { &tail.Overlay };
    // SAFETY: an IRP (unlike a mini-packet, which has `PacketType` there)
    // keeps its current stack location in this union.
    unsafe { overlay.anon2.CurrentStackLocation }
}

impl Irp {
    fn stack(&self) -> &IO_STACK_LOCATION {
        // SAFETY: the IRP is ours (invariant).
        let sl = unsafe { current_stack_location(self.raw.as_ptr()) };
        // SAFETY: the current stack location is valid while the IRP is ours.
        unsafe { &*sl }
    }

    /// `Irp->AssociatedIrp.SystemBuffer`: a buffered request's buffer.
    fn system_buffer(&self) -> *mut u8 {
        // SAFETY: the IRP is ours (invariant).
        let associated = unsafe { &(*self.raw.as_ptr()).AssociatedIrp };
        // SAFETY: an IRP the I/O manager sends to a driver is not a master
        // IRP, so the union holds `SystemBuffer` (null when there is none).
        unsafe { associated.SystemBuffer }.cast()
    }

    pub fn major(&self) -> u8 {
        self.stack().MajorFunction
    }

    /// For IRP_MJ_CREATE: whether the opener's token (the impersonation
    /// token if the thread impersonates, else the process's) holds the
    /// Administrators group, as SYSTEM's and an elevated administrator's do.
    fn creator_is_admin(&self) -> bool {
        // SAFETY: a CREATE's stack location carries `Create` parameters
        // (CREATE is the only major function that asks).
        let sc = unsafe { self.stack().Parameters.Create.SecurityContext };
        if sc.is_null() {
            return false;
        }
        // SAFETY: the I/O manager's security context, valid for the call.
        let access = unsafe { (*sc).AccessState };
        if access.is_null() {
            return false;
        }
        // SAFETY: the context's access state, valid for the call too.
        let subject = unsafe { &(*access).SubjectSecurityContext };
        let token = if subject.ClientToken.is_null() { subject.PrimaryToken } else { subject.ClientToken };
        // SAFETY: a token of the access state, at PASSIVE_LEVEL (CREATE).
        !token.is_null() && unsafe { SeTokenIsAdmin(token) } != 0
    }

    /// The IOCTL code (DEVICE_CONTROL only).
    pub fn ioctl_code(&self) -> u32 {
        // SAFETY: the DeviceIoControl member is the one a DEVICE_CONTROL
        // IRP carries; other IRPs are not asked.
        unsafe { self.stack().Parameters.DeviceIoControl.IoControlCode }
    }

    /// The input of a METHOD_BUFFERED IOCTL. In METHOD_BUFFERED the input
    /// and the output share one system buffer: read the input before
    /// writing the output (the borrow rules enforce it).
    pub fn input(&self) -> &[u8] {
        // Only an IOCTL that is not METHOD_NEITHER has its input in the
        // system buffer.
        if self.major() != IRP_MJ_DEVICE_CONTROL || self.ioctl_code() & 3 == METHOD_NEITHER {
            return &[];
        }
        // SAFETY: as in `ioctl_code`.
        let len = unsafe { self.stack().Parameters.DeviceIoControl.InputBufferLength } as usize;
        let buf = self.system_buffer();
        if len == 0 || buf.is_null() {
            return &[];
        }
        // SAFETY: the I/O manager's system buffer holds max(in, out) bytes,
        // so `len` bytes of it, valid while the IRP is ours; no mutable view
        // exists while `&self` is borrowed.
        unsafe { core::slice::from_raw_parts(buf, len) }
    }

    /// The output of a METHOD_BUFFERED IOCTL.
    pub fn output(&mut self) -> &mut [u8] {
        // Only a METHOD_BUFFERED IOCTL has its output in the system buffer
        // (a direct one's is its MDL: `direct_buffer`).
        if self.major() != IRP_MJ_DEVICE_CONTROL || self.ioctl_code() & 3 != METHOD_BUFFERED {
            return &mut [];
        }
        // SAFETY: as in `input`.
        let len = unsafe { self.stack().Parameters.DeviceIoControl.OutputBufferLength } as usize;
        let buf = self.system_buffer();
        if len == 0 || buf.is_null() {
            return &mut [];
        }
        // SAFETY: `len` bytes of the system buffer, which holds max(in, out)
        // bytes; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(buf, len) }
    }

    /// The IRP's MDL (`MdlAddress`): a direct-I/O buffer the I/O manager
    /// locked, or null.
    pub(crate) fn mdl(&self) -> *mut MDL {
        // SAFETY: `raw` is ours; reading the MDL pointer.
        unsafe { (*self.raw.as_ptr()).MdlAddress }
    }

    /// Output buffer length without borrowing it.
    pub fn output_len(&self) -> usize {
        // SAFETY: as in `ioctl_code`.
        unsafe { self.stack().Parameters.DeviceIoControl.OutputBufferLength as usize }
    }

    /// The length of a direct-I/O read's or write's buffer (its MDL's
    /// byte count), without mapping it.
    pub fn direct_len(&self) -> usize {
        let mdl = self.mdl();
        if mdl.is_null() {
            return 0;
        }
        // SAFETY: the I/O manager built and locked this MDL for the IRP.
        unsafe { (*mdl).ByteCount as usize }
    }

    /// The buffer of a direct-I/O read or write (its MDL, mapped into
    /// system space: the I/O manager unmaps it at completion).
    pub fn direct_buffer(&mut self) -> Result<&mut [u8], NtStatus> {
        // SAFETY: `raw` is ours; reading the MDL pointer.
        let mdl = unsafe { (*self.raw.as_ptr()).MdlAddress };
        if mdl.is_null() {
            return Ok(&mut []);
        }
        // SAFETY: the I/O manager built and locked this MDL for the IRP.
        let va = unsafe { super::nbl::system_address(mdl) };
        if va.is_null() {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        // SAFETY: the MDL describes `ByteCount` bytes, mapped at `va`.
        let len = unsafe { (*mdl).ByteCount } as usize;
        // SAFETY: the mapping is valid until the IRP completes; `&mut self`
        // makes this the only view.
        Ok(unsafe { core::slice::from_raw_parts_mut(va, len) })
    }

    /// Completes the IRP with `information` bytes of output.
    pub fn complete(self, status: NtStatus, information: usize) -> Dispatched {
        complete_raw(self.raw, status, information);
        Dispatched(status)
    }

    /// Marks the IRP pending; the dispatch routine returns STATUS_PENDING
    /// and the `PendingIrp` is completed later, once.
    pub fn pend<H: DeviceHandler>(self) -> (Dispatched, PendingIrp) {
        // SAFETY: the IRP is ours (invariant).
        let sl = unsafe { current_stack_location(self.raw.as_ptr()) };
        // SAFETY: IoMarkIrpPending: set SL_PENDING_RETURNED in the current
        // stack location, which is ours.
        unsafe { (*sl).Control |= SL_PENDING_RETURNED };
        let me = self;
        let id = NEXT_IRP_ID.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the IRP is ours (invariant), and while it is the
        // DriverContext words of its tail are the driver's: the id is kept
        // there for the cancel routine.
        unsafe { id_slot(me.raw.as_ptr()).write(id) };
        let p = PendingIrp { raw: me.raw, cancel: cancel_routine::<H> };
        (Dispatched(NtStatus::PENDING), p)
    }
}

/// Where a pending IRP keeps its `IrpId`: the first DriverContext word of
/// its tail, which belongs to the driver that holds the IRP.
fn id_slot(irp: *mut IRP) -> *mut usize {
    // SAFETY: only the address is taken (nothing is read); `irp` is an IRP
    // the caller holds.
    let tail = unsafe { ptr::addr_of_mut!((*irp).Tail) };
    // The union's members start at its address, and DriverContext is the
    // first member of `Tail.Overlay` (asserted below).
    tail.cast::<usize>()
}

const _: () = assert!(core::mem::offset_of!(IRP_TAIL_OVERLAY, anon) == 0);

/// `SL_PENDING_RETURNED`.
const SL_PENDING_RETURNED: u8 = 0x01;

fn complete_raw(raw: NonNull<IRP>, status: NtStatus, information: usize) {
    let irp = raw.as_ptr();
    // SAFETY: the IRP is ours and not completed (caller).
    let io = unsafe { &mut (*irp).IoStatus };
    io.anon.Status = status.0;
    io.Information = information;
    // SAFETY: as above; after this call it belongs to the I/O manager again
    // and is never touched.
    unsafe { IofCompleteRequest(irp, IO_NO_INCREMENT) };
}

/// An IRP that returned STATUS_PENDING and is waiting in a queue. It
/// cannot be forgotten: one dropped without `complete` is completed with
/// `STATUS_CANCELLED` (and the mistake is logged).
///
/// # Invariants
/// As `Irp`'s; the IRP's first DriverContext word holds its `IrpId`
/// (`pend` put it there).
pub struct PendingIrp {
    raw: NonNull<IRP>,
    cancel: unsafe extern "win64" fn(*mut DEVICE_OBJECT, *mut IRP),
}

// SAFETY: as for `Irp`.
unsafe impl Send for PendingIrp {}

/// What `arm_cancel` found.
pub enum Armed {
    /// The cancel routine is set; keep the IRP in a queue the routine's
    /// `DeviceHandler::cancel` searches.
    Queued(PendingIrp),
    /// The IRP was cancelled before the routine was set: complete it now.
    Cancelled(PendingIrp),
}

impl PendingIrp {
    pub fn id(&self) -> IrpId {
        // SAFETY: the IRP is ours (invariant); `pend` stored its id there
        // (kept in the IRP, not here: pending IRPs travel in arrays on the
        // receive path's stack, where every byte counts).
        IrpId(unsafe { id_slot(self.raw.as_ptr()).read() })
    }

    /// The buffer of a pending read, mapped into system space when it is
    /// first asked for (a read that waits holds no system mapping), at
    /// IRQL <= DISPATCH_LEVEL; `STATUS_INSUFFICIENT_RESOURCES` if it cannot
    /// be mapped.
    pub fn read_buffer(&mut self) -> Result<&mut [u8], NtStatus> {
        let mut irp = Irp { raw: self.raw };
        let b = irp.direct_buffer()?;
        // SAFETY: re-borrow for `self`'s lifetime; the mapping lasts until
        // the IRP completes, which takes `self`.
        Ok(unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr(), b.len()) })
    }

    /// The system buffer of a pending METHOD_BUFFERED IOCTL, as output.
    pub fn output(&mut self) -> &mut [u8] {
        let mut irp = Irp { raw: self.raw };
        let out = irp.output();
        // SAFETY: re-borrow for `self`'s lifetime; the view is the same
        // system buffer, owned through `self`.
        unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr(), out.len()) }
    }

    /// Sets the cancel routine. Call while holding the lock of the queue the
    /// handler's `cancel` searches, and put `Queued` IRPs in it before
    /// unlocking.
    pub fn arm_cancel(self) -> Armed {
        let slot = self.cancel_slot();
        // SAFETY: `CancelRoutine` is a pointer-sized field of our IRP;
        // IoSetCancelRoutine is this atomic exchange.
        slot.store(self.cancel as usize, Ordering::SeqCst);
        // SAFETY: the IRP is ours (invariant); this takes a field's address.
        let cancel_flag = unsafe { ptr::addr_of!((*self.raw.as_ptr()).Cancel) };
        // SAFETY: reading the IRP's Cancel flag, which IoCancelIrp may set
        // on another processor (hence volatile).
        let cancelled = unsafe { ptr::read_volatile(cancel_flag) } != 0;
        if cancelled && slot.swap(0, Ordering::SeqCst) != 0 {
            // IoCancelIrp ran before the routine was set: it will not call it.
            return Armed::Cancelled(self);
        }
        // Either not cancelled, or the routine is already running and will
        // look for the IRP in the queue.
        Armed::Queued(self)
    }

    fn cancel_slot(&self) -> &AtomicUsize {
        // SAFETY: the IRP is ours (invariant); this takes a field's address.
        let field = unsafe { ptr::addr_of_mut!((*self.raw.as_ptr()).CancelRoutine) };
        // SAFETY: `CancelRoutine` is an aligned pointer-sized field of an
        // IRP we own, for as long as `self` lives; the I/O manager also
        // accesses it only atomically.
        unsafe { AtomicUsize::from_ptr(field.cast()) }
    }

    /// Completes the IRP (taken out of its queue by the caller).
    pub fn complete(self, status: NtStatus, information: usize) {
        let me = core::mem::ManuallyDrop::new(self);
        me.complete_once(status, information);
    }

    fn complete_once(&self, status: NtStatus, information: usize) {
        if self.cancel_slot().swap(0, Ordering::SeqCst) == 0 {
            // No routine set, or the cancel routine is running: if it is,
            // wait until it released the cancel spin lock (it reads the IRP
            // only before that), then complete.
            let mut irql: KIRQL = 0;
            // SAFETY: a plain acquire of the system cancel spin lock, at
            // IRQL <= DISPATCH_LEVEL; released just below.
            unsafe { IoAcquireCancelSpinLock(&mut irql) };
            // SAFETY: the lock acquired just above, with its old IRQL.
            unsafe { IoReleaseCancelSpinLock(irql) };
        }
        complete_raw(self.raw, status, information);
    }
}

impl Drop for PendingIrp {
    fn drop(&mut self) {
        crate::safety_net!("a pending IRP was dropped without being completed; completing it as cancelled");
        self.complete_once(NtStatus::CANCELLED, 0);
    }
}

/// The routine the I/O manager calls, with the cancel spin lock held, to
/// cancel a pending IRP.
unsafe extern "win64" fn cancel_routine<H: DeviceHandler>(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // The IRP is pending in this driver (its routine was set) and cannot
    // complete before the cancel spin lock is released, so it, its stack
    // location and its file object are valid until then.
    // SAFETY: as above.
    let sl = unsafe { current_stack_location(irp) };
    // SAFETY: as above.
    let fo = unsafe { (*sl).FileObject };
    // SAFETY: as above; its FsContext holds the strong count `create` gave
    // it (CLOSE, which takes it back, comes after every IRP completed).
    let ctx = unsafe { (*fo).FsContext } as *const H::File;
    // Take a reference while the IRP (and so the file) surely lives.
    // SAFETY: the file object's count keeps the strong count above zero.
    unsafe { Arc::increment_strong_count(ctx) };
    // SAFETY: takes the count just added.
    let file = unsafe { Arc::from_raw(ctx) };
    // SAFETY: as above; `pend` stored the IRP's id there, and the driver
    // context stays the driver's while the IRP is pending.
    let id = unsafe { id_slot(irp).read() };
    // SAFETY: the I/O manager stored the IRQL to return to before calling.
    let irql = unsafe { (*irp).CancelIrql };
    // Counted while the IRP (so its file, so the driver) surely lives:
    // once the lock is released the IRP may complete on another CPU, its
    // handle close and DriverUnload begin, which waits for this routine
    // (`wait_for_cancel_routines`) before it frees the handler.
    CANCELS_RUNNING.fetch_add(1, Ordering::SeqCst);
    // SAFETY: releasing the cancel spin lock the I/O manager acquired.
    unsafe { IoReleaseCancelSpinLock(irql) };
    // SAFETY: a cancel routine counted in `CANCELS_RUNNING` (above).
    if let Some(h) = unsafe { handler::<H>() } {
        h.cancel(&file, IrpId(id));
    }
    // The file (perhaps its last reference) goes before the count: its
    // memory is the driver's pool, which must be freed by the unload.
    drop(file);
    CANCELS_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

/// Cancel routines that released the cancel spin lock and have not
/// returned. Windows holds no reference for a cancel routine past that
/// lock: the IRP may complete on another CPU meanwhile, its handle close
/// and the service stop, while the routine still looks through the
/// handler's queues.
static CANCELS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Waits until no cancel routine is running (in `DriverUnload`, at
/// PASSIVE_LEVEL, with the device deleted: no IRP of it is left, so no
/// routine starts after). A routine counted itself before it released the
/// cancel spin lock, and DriverUnload begins only once the IRP it was
/// called for completed, after that release, so this sees every one that
/// may still run. It sleeps a millisecond at a time (a routine left running
/// at an unload is rare and short), so the routine gets the CPU even on a
/// single one.
pub(super) fn wait_for_cancel_routines() {
    while CANCELS_RUNNING.load(Ordering::SeqCst) != 0 {
        super::time::sleep_ms(1);
    }
}

// ---------------------------------------------------------------------------
// The device
// ---------------------------------------------------------------------------

static HANDLER: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(ptr::null_mut());

/// The device's handler.
///
/// # Safety
/// Only while the device exists (from a dispatch routine), or from a cancel
/// routine counted in `CANCELS_RUNNING`: the handler outlives the device
/// (`ControlDevice::create`'s contract) and every counted cancel routine
/// (`DriverUnload` waits for them before it frees the handler).
unsafe fn handler<'a, H: DeviceHandler>() -> Option<&'a H> {
    let p = HANDLER.load(Ordering::Acquire);
    // SAFETY: only `ControlDevice::create::<H>` stores here, a handler that
    // outlives the device (caller).
    (!p.is_null()).then(|| unsafe { &*(p as *const H) })
}

/// The control device object, for work items.
pub fn device_object() -> *mut DEVICE_OBJECT {
    DEVICE.load(Ordering::Acquire)
}

/// `\Device\RawNic` and its link; deleted on drop.
///
/// # Invariants
/// `device` was created by `IoCreateDevice` and the link points to it.
pub struct ControlDevice {
    device: NonNull<DEVICE_OBJECT>,
}

// SAFETY: the device object may be used from any thread.
unsafe impl Send for ControlDevice {}
// SAFETY: as above.
unsafe impl Sync for ControlDevice {}

static DEVICE_NAME: &[u16] = crate::wstr!(rawnic_proto::DEVICE_NAME);
static LINK_NAME: &[u16] = crate::wstr!(rawnic_proto::SYMLINK_NAME);

impl ControlDevice {
    /// Creates the device with FILE_DEVICE_SECURE_OPEN and direct I/O, the
    /// link for user mode, a DACL that admits only SYSTEM and
    /// Administrators, and the driver's dispatch routines.
    ///
    /// # Safety
    /// `driver` is the driver's object, during DriverEntry (PASSIVE_LEVEL);
    /// `handler` stays valid, and is not moved, until the device has been
    /// dropped.
    pub unsafe fn create<H: DeviceHandler>(driver: *mut DRIVER_OBJECT, handler: NonNull<H>) -> Result<Self, NtStatus> {
        let mut name = ustr::unicode_string(DEVICE_NAME);
        let mut link = ustr::unicode_string(LINK_NAME);
        let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
        // SAFETY: valid driver object (caller) and names.
        let status = unsafe {
            IoCreateDevice(
                driver,
                0,
                &mut name,
                rawnic_proto::FILE_DEVICE_RAWNIC,
                FILE_DEVICE_SECURE_OPEN,
                0,
                &mut device,
            )
        };
        nt_result(status)?;
        let dev = ControlDevice { device: NonNull::new(device).ok_or(NtStatus::UNSUCCESSFUL)? };
        if let Err(s) = restrict_to_admins(device) {
            // SAFETY: the device was just created and nothing uses it.
            unsafe { IoDeleteDevice(device) };
            core::mem::forget(dev);
            return Err(s);
        }
        // SAFETY: valid names; the device exists.
        let status = unsafe { IoCreateSymbolicLink(&mut link, &mut name) };
        if let Err(s) = nt_result(status) {
            // SAFETY: as above.
            unsafe { IoDeleteDevice(device) };
            core::mem::forget(dev);
            return Err(s);
        }
        HANDLER.store(handler.as_ptr().cast(), Ordering::Release);
        DEVICE.store(device, Ordering::Release);
        // SAFETY: the driver object is ours during DriverEntry (caller).
        let mf = unsafe { &mut (*driver).MajorFunction };
        for f in mf.iter_mut() {
            *f = Some(dispatch_unsupported);
        }
        mf[IRP_MJ_CREATE as usize] = Some(dispatch::<H>);
        mf[IRP_MJ_CLEANUP as usize] = Some(dispatch::<H>);
        mf[IRP_MJ_CLOSE as usize] = Some(dispatch::<H>);
        mf[IRP_MJ_READ as usize] = Some(dispatch::<H>);
        mf[IRP_MJ_WRITE as usize] = Some(dispatch::<H>);
        mf[IRP_MJ_DEVICE_CONTROL as usize] = Some(dispatch::<H>);
        // SAFETY: the device is ours until deleted, and no IRP reaches it
        // while DO_DEVICE_INITIALIZING is set.
        let d = unsafe { &mut *device };
        d.Flags |= DO_DIRECT_IO;
        // DO_DEVICE_INITIALIZING stays until `accept_opens`: an open that
        // came while DriverEntry could still fail would reach a handler
        // that the failure frees.
        Ok(dev)
    }

    /// Lets user mode open the device: the last step of a DriverEntry that
    /// succeeds (the I/O manager would clear the flag when DriverEntry
    /// returns; clearing it here says so where it matters).
    pub fn accept_opens(&self) {
        // SAFETY: the device exists (invariant); the flag is the driver's
        // to clear, during DriverEntry, before any IRP can reach it.
        let d = unsafe { &mut *self.device.as_ptr() };
        d.Flags &= !DO_DEVICE_INITIALIZING;
    }
}

impl Drop for ControlDevice {
    fn drop(&mut self) {
        let mut link = ustr::unicode_string(LINK_NAME);
        DEVICE.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: the link exists (invariant), deleted once, here.
        unsafe { IoDeleteSymbolicLink(&mut link) };
        // SAFETY: the device exists (invariant) and no handle is open (the
        // driver unloads only then); deleted once, here.
        unsafe { IoDeleteDevice(self.device.as_ptr()) };
        HANDLER.store(ptr::null_mut(), Ordering::Release);
    }
}

/// A SID with one or two sub-authorities in the NT authority (S-1-5-…).
#[repr(C)]
struct Sid<const N: usize> {
    revision: u8,
    count: u8,
    authority: [u8; 6],
    sub: [u32; N],
}

/// Gives the device a protected DACL: GENERIC_ALL for SYSTEM (S-1-5-18) and
/// Administrators (S-1-5-32-544), nothing for anyone else.
fn restrict_to_admins(device: *mut DEVICE_OBJECT) -> Result<(), NtStatus> {
    let system = Sid::<1> { revision: 1, count: 1, authority: [0, 0, 0, 0, 0, 5], sub: [18] };
    let admins = Sid::<2> { revision: 1, count: 2, authority: [0, 0, 0, 0, 0, 5], sub: [32, 544] };
    // ACL header 8 + two ACCESS_ALLOWED_ACEs (8-byte header + SID).
    const ACL_BYTES: usize = 8 + (8 + 12) + (8 + 16);
    let mut acl_buf = try_box([0u64; (ACL_BYTES + 7) / 8]).map_err(|AllocError| NtStatus::INSUFFICIENT_RESOURCES)?;
    let acl = acl_buf.as_mut_ptr().cast::<ACL>();
    let mut sd = SECURITY_DESCRIPTOR {
        Revision: 0,
        Sbz1: 0,
        Control: 0,
        Owner: ptr::null_mut(),
        Group: ptr::null_mut(),
        Sacl: ptr::null_mut(),
        Dacl: ptr::null_mut(),
    };
    // SAFETY: `acl` is our buffer of ACL_BYTES bytes.
    nt_result(unsafe { RtlCreateAcl(acl, ACL_BYTES as u32, ACL_REVISION) })?;
    let (system, admins) = (ptr::addr_of!(system).cast_mut().cast(), ptr::addr_of!(admins).cast_mut().cast());
    // SAFETY: the ACL above has room for this ACE; the SID is well-formed
    // and copied into it.
    nt_result(unsafe { RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, system) })?;
    // SAFETY: as above, for the second ACE.
    nt_result(unsafe { RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, admins) })?;
    let sd_ptr = (&mut sd as *mut SECURITY_DESCRIPTOR).cast::<c_void>();
    // SAFETY: `sd` is our absolute security descriptor.
    nt_result(unsafe { RtlCreateSecurityDescriptor(sd_ptr, SECURITY_DESCRIPTOR_REVISION) })?;
    // SAFETY: the descriptor and the ACL above, which both outlive its use.
    nt_result(unsafe { RtlSetDaclSecurityDescriptor(sd_ptr, 1, acl, 0) })?;
    sd.Control |= SE_DACL_PROTECTED;
    // Taken again after the write through `sd` above.
    let sd_ptr = (&mut sd as *mut SECURITY_DESCRIPTOR).cast::<c_void>();
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: our device object, at PASSIVE_LEVEL (DriverEntry); the kernel
    // handle is closed below.
    nt_result(unsafe {
        ObOpenObjectByPointer(
            device.cast(),
            OBJ_KERNEL_HANDLE,
            ptr::null_mut(),
            WRITE_DAC,
            ptr::null_mut(),
            KernelMode,
            &mut handle,
        )
    })?;
    // SAFETY: the handle just opened with WRITE_DAC; the descriptor above.
    let status = unsafe { ZwSetSecurityObject(handle, DACL_SECURITY_INFORMATION, sd_ptr) };
    // SAFETY: the handle just opened, closed once.
    unsafe { ZwClose(handle) };
    nt_result(status)
}

unsafe extern "win64" fn dispatch_unsupported(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let Some(raw) = NonNull::new(irp) else { return NtStatus::INVALID_DEVICE_REQUEST.0 };
    Irp { raw }.complete(NtStatus::INVALID_DEVICE_REQUEST, 0).raw()
}

/// Reads the file object's context as a new `Arc` reference.
///
/// # Safety
/// `fo` is a file object of this device whose FsContext was set at create
/// and not yet taken back by close.
unsafe fn file_of<F>(fo: *mut FILE_OBJECT) -> Option<Arc<F>> {
    // SAFETY: valid per the caller.
    let ctx = unsafe { (*fo).FsContext } as *const F;
    if ctx.is_null() {
        return None;
    }
    // SAFETY: FsContext holds one strong count (from create), so adding
    // one is sound.
    unsafe { Arc::increment_strong_count(ctx) };
    // SAFETY: takes the count just added.
    Some(unsafe { Arc::from_raw(ctx) })
}

unsafe extern "win64" fn dispatch<H: DeviceHandler>(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let Some(raw) = NonNull::new(irp) else { return NtStatus::INVALID_PARAMETER.0 };
    let irp = Irp { raw };
    // SAFETY: the I/O manager calls the dispatch routine only while the
    // device exists.
    let Some(h) = (unsafe { handler::<H>() }) else {
        return irp.complete(NtStatus::DEVICE_REMOVED, 0).raw();
    };
    let fo = irp.stack().FileObject;
    if fo.is_null() {
        return irp.complete(NtStatus::INVALID_PARAMETER, 0).raw();
    }
    match irp.major() {
        IRP_MJ_CREATE => {
            // SAFETY: CREATE's file name is in the file object we were given.
            let name_len = unsafe { (*fo).FileName.Length };
            if name_len != 0 {
                // Only the device itself can be opened, not a name below it.
                return irp.complete(NtStatus::OBJECT_NAME_NOT_FOUND, 0).raw();
            }
            // The DACL admits only SYSTEM and Administrators; the driver
            // checks too, so a device whose DACL was loosened (by an
            // administrator, or a future bug) still refuses anyone else.
            if !irp.creator_is_admin() {
                return irp.complete(NtStatus::ACCESS_DENIED, 0).raw();
            }
            match h.create() {
                Ok(file) => {
                    // SAFETY: the file object is new and ours to annotate;
                    // close takes this strong count back.
                    unsafe { (*fo).FsContext = Arc::into_raw(file) as PVOID };
                    irp.complete(NtStatus::SUCCESS, 0).raw()
                }
                Err(s) => irp.complete(s, 0).raw(),
            }
        }
        IRP_MJ_CLOSE => {
            // SAFETY: the file object of this device; CLOSE is the last IRP.
            let ctx = unsafe { (*fo).FsContext } as *const H::File;
            if !ctx.is_null() {
                // SAFETY: the file object of this device; CLOSE is its last
                // IRP, so nothing else reads its context.
                unsafe { (*fo).FsContext = ptr::null_mut() };
                // SAFETY: take back the count create gave the file object.
                let file = unsafe { Arc::from_raw(ctx) };
                h.close(file);
            }
            irp.complete(NtStatus::SUCCESS, 0).raw()
        }
        major => {
            // SAFETY: a file object of this device, opened by create.
            let Some(file) = (unsafe { file_of::<H::File>(fo) }) else {
                return irp.complete(NtStatus::INVALID_HANDLE, 0).raw();
            };
            let d = match major {
                IRP_MJ_CLEANUP => {
                    h.cleanup(&file);
                    irp.complete(NtStatus::SUCCESS, 0)
                }
                IRP_MJ_READ => h.read(&file, irp),
                IRP_MJ_WRITE => h.write(&file, irp),
                IRP_MJ_DEVICE_CONTROL => h.ioctl(&file, irp),
                _ => irp.complete(NtStatus::INVALID_DEVICE_REQUEST, 0),
            };
            d.raw()
        }
    }
}
