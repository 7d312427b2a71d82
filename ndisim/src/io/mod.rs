//! The emulated I/O manager: the driver object, device objects and
//! symbolic links, file objects, IRPs with a real `IO_STACK_LOCATION`
//! (CREATE, CLEANUP, CLOSE, READ, WRITE, DEVICE_CONTROL with BUFFERED,
//! DIRECT and NEITHER buffers), completion, cancellation under the cancel
//! spin lock, work items, kernel handles and the device's security
//! descriptor, enforced on CREATE.
//!
//! This module holds the I/O manager's state (the records of devices,
//! files and IRPs), path lookup and the checks at unload; each part of the
//! I/O manager is a module of its own:
//!
//! - `driver`: the driver object handed to `DriverEntry`;
//! - `device`: `IoCreateDevice`, `IoDeleteDevice` and symbolic links;
//! - `file`: opening a device (CREATE), requests on an open file, and
//!   closing it (CLEANUP, then CLOSE);
//! - `irp`: building an IRP, calling the dispatch routine and
//!   `IofCompleteRequest`;
//! - `waiter`: where an IRP's result goes;
//! - `cancel`: `IoCancelIrp` and the cancel spin lock;
//! - `workitem`: I/O work items;
//! - `mdl`: `MmMapLockedPagesSpecifyCache`, `MmUnmapLockedPages`,
//!   `MmProbeAndLockPages`, `MmUnlockPages`;
//! - `partial`: `IoAllocateMdl`, `IoBuildPartialMdl` (onto those, or onto
//!   MDLs the driver builds in its pool), `IoFreeMdl`;
//! - `region`: `UserRegion`, user memory backed by a memfd;
//! - `revoke`: under special pool, IRPs and their buffers on pages of
//!   their own, made inaccessible at completion;
//! - `umem`: the locks on user regions' pages, their system mappings
//!   (revoked at unlock) and the driver's MDLs;
//! - `handle`: kernel handles to device objects;
//! - `security`: identities, SIDs, DACLs, the access check and the
//!   security-descriptor exports.

mod cancel;
mod device;
mod driver;
mod file;
mod handle;
mod irp;
mod mdl;
mod outputs;
mod partial;
mod region;
mod revoke;
mod security;
mod umem;
mod waiter;
mod workitem;

pub(crate) use cancel::{IoAcquireCancelSpinLock, IoCancelIrp, IoReleaseCancelSpinLock, cancel_file, cancel_request};
pub(crate) use device::{IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink};
pub(crate) use driver::{DriverBox, driver_object};
pub(crate) use file::{
    Request, close, create, handle_closed, open_file_seq, open_files, reference, request, unreference,
};
pub(crate) use handle::{ObOpenObjectByPointer, ZwClose};
pub(crate) use irp::{IofCompleteRequest, cancel_at_dispatch};
pub(crate) use mdl::{MmMapLockedPagesSpecifyCache, MmProbeAndLockPages, MmUnlockPages, MmUnmapLockedPages};
pub use outputs::{Output, first_difference};
pub(crate) use partial::{IoAllocateMdl, IoBuildPartialMdl, IoFreeMdl, pool_mdls_freed};
pub use region::UserRegion;
pub use security::{Ace, Identity, sid, sid_string};
pub(crate) use security::{
    RtlAddAccessAllowedAce, RtlCreateAcl, RtlCreateSecurityDescriptor, RtlSetDaclSecurityDescriptor, SeTokenIsAdmin,
    ZwSetSecurityObject, check_access, sid_list,
};
pub use waiter::IoResult;
pub(crate) use waiter::Waiter;
pub(crate) use workitem::{IoAllocateWorkItem, IoFreeWorkItem, IoQueueWorkItem, queued_contexts_in};

use crate::kernel::Kernel;
use crate::verifier::{Rule, Violation, lock};
use irp::{free_irp, major_name};
use ndis_sys::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use workitem::WorkItem;

pub(crate) const SL_PENDING_RETURNED: u8 = 0x01;
const IRP_BUFFERED_IO: u32 = 0x10;
const IRP_INPUT_OPERATION: u32 = 0x40;
const DO_EXCLUSIVE: u32 = 0x08;
const FILE_OPEN: u32 = 1;
const FILE_READ_DATA: u32 = 0x0001;
const FILE_WRITE_DATA: u32 = 0x0002;

#[repr(C)]
struct IrpBlock {
    irp: IRP,
    stack: IO_STACK_LOCATION,
    sec: IO_SECURITY_CONTEXT,
    access: ACCESS_STATE,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Buffered,
    Direct,
    Neither,
}

struct IrpRec {
    block: *mut IrpBlock,
    file: usize,
    major: u8,
    /// An `IRP_MJ_DEVICE_CONTROL`'s control code (0 for the others).
    code: u32,
    completed: bool,
    dispatch_status: Option<NTSTATUS>,
    completion: Option<(NTSTATUS, usize)>,
    /// `IoCancelIrp` calls under way: the memory stays until they return,
    /// even if the IRP completes meanwhile (whoever cancels an IRP on
    /// Windows holds it).
    pins: u32,
    /// Its cancel routine runs and has not released the cancel spin lock
    /// yet (rule irp-complete-in-cancel; `cancel::CANCELLING` names the
    /// thread's).
    cancel_running: bool,
    waiter: Arc<Waiter>,
    /// Output size the caller gave.
    out_len: usize,
    /// Input bytes at the start of a METHOD_BUFFERED system buffer.
    in_len: usize,
    method: Method,
    system_buffer: revoke::Buf,
    user_out: revoke::Buf,
    user_in: revoke::Buf,
    /// The IRP's own pages under special pool (revoked at completion,
    /// `block` then null), else `block` is a heap block.
    block_pages: Option<revoke::Pages>,
    /// SL_PENDING_RETURNED as the IRP's stack said at completion.
    marked_at_completion: bool,
    mdl: *mut MDL,
    /// The live user memory `mdl` describes (`Request::IoctlRegion`),
    /// locked until the IRP is retired.
    region: Option<Arc<UserRegion>>,
    /// A direct-I/O write's data as the caller gave it: its buffer must
    /// be the same at completion (rule irp-write-modified).
    invariant: Option<Vec<u8>>,
}

// SAFETY: the raw pointers are IRP memory and MDLs owned by the record.
unsafe impl Send for IrpRec {}

struct DeviceRec {
    dev: *mut DEVICE_OBJECT,
    ext: usize,
    ext_size: usize,
    name: Option<String>,
    deleted: bool,
    opens: usize,
    sd_set: bool,
    dacl: Option<Vec<Ace>>,
    warned: bool,
}

// SAFETY: device memory is owned by the record.
unsafe impl Send for DeviceRec {}

struct FileRec {
    file: *mut FILE_OBJECT,
    /// The characters of the file object's `FileName` (a box's, freed
    /// with the file object).
    name: *mut [u16],
    dev: usize,
    granted: u32,
    /// The handle was closed: no new request.
    cleaned: bool,
    /// Creation order (for a deterministic order of closes at unload).
    seq: u64,
    /// IRP_MJ_CLEANUP was dispatched: IRP_MJ_CLOSE may follow once the
    /// file's IRPs are done (never before: the I/O manager sends CLEANUP
    /// first).
    cleanup_done: bool,
    closed: bool,
    irps: Vec<usize>,
    /// References that keep IRP_MJ_CLOSE away though the handle may be
    /// closed: requests past the handle check whose IRP is not sent yet,
    /// and `FileRef`s.
    refs: u32,
}

// SAFETY: the file object memory is owned by the record.
unsafe impl Send for FileRec {}

#[derive(Default)]
struct State {
    devices: Vec<DeviceRec>,
    links: HashMap<String, String>,
    /// Open kernel handles: the object, and whose handle table holds it.
    handles: HashMap<usize, (usize, handle::Scope)>,
    next_handle: usize,
    irps: HashMap<usize, IrpRec>,
    done_irps: HashSet<usize>,
    /// Retired IRP blocks for reuse (`irp::retire`).
    irp_lookaside: Vec<usize>,
    files: HashMap<usize, FileRec>,
    next_file_seq: u64,
    workitems: HashSet<usize>,
    /// Requests that reached the driver after their file's cleanup.
    late_requests: u64,
    /// IoCancelIrp calls on IRPs whose dispatch routine had not returned.
    cancels_in_dispatch: u64,
    /// What each completed IRP gave its caller, when recorded
    /// (`SimBuilder::record_outputs`).
    outputs: Option<outputs::Outputs>,
}

pub(crate) struct Io {
    st: Mutex<State>,
    pub cancel_lock: Box<std::cell::UnsafeCell<usize>>,
    pub workers: crate::jobs::Jobs,
    pub driver: Mutex<usize>,
    /// User regions, their locks and mappings, and the driver's MDLs.
    pub umem: umem::Umem,
    /// IRPs and their buffers taken back at completion (special pool).
    pub revoked: revoke::Revoked,
    /// `Sim::stall_cancel_routines`: a cancel routine's release of the
    /// cancel spin lock waits while this is set; how many wait now.
    pub cancel_stall: std::sync::atomic::AtomicBool,
    pub cancel_stalled: std::sync::atomic::AtomicU64,
    /// Threads inside `IoAcquireCancelSpinLock` that have not got the lock
    /// yet (`Sim::cancel_lock_waiters`).
    pub cancel_waiters: std::sync::atomic::AtomicU64,
}

impl Io {
    /// Requests that reached the driver after their file's IRP_MJ_CLEANUP
    /// (sent as another thread closed the handle, or through a `FileRef`).
    pub(crate) fn late_requests(&self) -> u64 {
        crate::verifier::lock(&self.st).late_requests
    }

    /// IoCancelIrp calls on IRPs still in the driver's dispatch routine.
    pub(crate) fn cancels_in_dispatch(&self) -> u64 {
        crate::verifier::lock(&self.st).cancels_in_dispatch
    }

    /// What the IRPs completed so far gave their callers (empty unless
    /// recorded).
    pub(crate) fn outputs(&self) -> Vec<Output> {
        crate::verifier::lock(&self.st).outputs.as_ref().map(|o| o.list.clone()).unwrap_or_default()
    }
}

// SAFETY: the cancel lock is only used through the spin-lock functions,
// which synchronise on it.
unsafe impl Sync for Io {}
// SAFETY: as above.
unsafe impl Send for Io {}

/// `\DosDevices\X`, `\??\X`, `\GLOBAL??\X`, `\\.\X` → `dos:x`; a device
/// path stays itself (lowercase).
fn norm_link(s: &str) -> String {
    let l = s.to_ascii_lowercase();
    for p in ["\\dosdevices\\", "\\??\\", "\\global??\\", "\\\\.\\"] {
        if let Some(r) = l.strip_prefix(p) {
            return format!("dos:{r}");
        }
    }
    l
}

impl Io {
    pub(crate) fn new(record_outputs: bool) -> Self {
        Io {
            st: Mutex::new(State {
                next_handle: 4,
                outputs: record_outputs.then(outputs::Outputs::default),
                ..Default::default()
            }),
            cancel_lock: Box::new(std::cell::UnsafeCell::new(0)),
            workers: crate::jobs::Jobs::new(),
            driver: Mutex::new(0),
            umem: umem::Umem::new(),
            revoked: revoke::Revoked::default(),
            cancel_stall: std::sync::atomic::AtomicBool::new(false),
            cancel_stalled: std::sync::atomic::AtomicU64::new(0),
            cancel_waiters: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn cancel_lock_ptr(&self) -> *mut usize {
        self.cancel_lock.get()
    }

    /// Clears DO_DEVICE_INITIALIZING on the devices made so far (what the
    /// I/O manager does when DriverEntry returns).
    pub(crate) fn after_driver_entry(&self) {
        for d in lock(&self.st).devices.iter().filter(|d| !d.deleted) {
            // SAFETY: a live device object of ours.
            unsafe { (*d.dev).Flags &= !DO_DEVICE_INITIALIZING };
        }
    }

    pub(crate) fn device_names(&self) -> Vec<String> {
        lock(&self.st).devices.iter().filter(|d| !d.deleted).filter_map(|d| d.name.clone()).collect()
    }

    pub(crate) fn link_names(&self) -> Vec<String> {
        lock(&self.st).links.keys().cloned().collect()
    }

    fn find_device(st: &State, path: &str) -> Option<(usize, String)> {
        let n = norm_link(path);
        // A symbolic link, possibly with a remainder.
        for (link, target) in &st.links {
            if n == *link || n.starts_with(&format!("{link}\\")) {
                let rest = path[path.len() - (n.len() - link.len())..].to_string();
                let t = target.to_ascii_lowercase();
                let d = st
                    .devices
                    .iter()
                    .find(|d| !d.deleted && d.name.as_deref().map(|x| x.to_ascii_lowercase()) == Some(t.clone()))?;
                return Some((d.dev as usize, rest));
            }
        }
        for d in st.devices.iter().filter(|d| !d.deleted) {
            if let Some(name) = &d.name {
                let ln = name.to_ascii_lowercase();
                if n == ln || n.starts_with(&format!("{ln}\\")) {
                    return Some((d.dev as usize, path[name.len()..].to_string()));
                }
            }
        }
        None
    }
}

/// Reports what the driver left behind at unload.
pub(crate) fn leak_check(k: &Kernel) {
    let st = lock(&k.io.st);
    for (irp, r) in &st.irps {
        if !r.completed {
            Violation::new(Rule::IrpNotCompleted, major_name(r.major), "the IRP was never completed")
                .with_object(*irp)
                .report();
        }
    }
    for d in st.devices.iter().filter(|d| !d.deleted) {
        Violation::new(
            Rule::ResourceLeak,
            "DriverUnload",
            format!("device {:?} was not deleted", d.name.as_deref().unwrap_or("(unnamed)")),
        )
        .with_object(d.dev as usize)
        .report();
    }
    for (l, t) in &st.links {
        Violation::new(Rule::ResourceLeak, "DriverUnload", format!("symbolic link {l} -> {t} was not deleted"))
            .report();
    }
    for h in st.handles.keys() {
        Violation::new(Rule::ResourceLeak, "DriverUnload", "a kernel handle was not closed (ZwClose)")
            .with_object(*h)
            .report();
    }
    for w in &st.workitems {
        Violation::new(Rule::ResourceLeak, "DriverUnload", "a work item was not freed (IoFreeWorkItem)")
            .with_object(*w)
            .report();
    }
    drop(st);
    k.io.umem.leak_check();
}

/// Frees device and file objects (after the driver is gone).
pub(crate) fn free_everything(k: &Kernel) {
    let mut st = lock(&k.io.st);
    for (_, r) in st.irps.drain() {
        free_irp(k, r);
    }
    for b in st.irp_lookaside.drain(..) {
        // SAFETY: retired blocks from `irp::send`, no longer in use.
        unsafe { drop(Box::from_raw(b as *mut IrpBlock)) };
    }
    for (_, f) in st.files.drain() {
        // SAFETY: our file objects and their names' boxes.
        unsafe {
            drop(Box::from_raw(f.file));
            drop(Box::from_raw(f.name));
        }
    }
    for d in st.devices.drain(..) {
        // SAFETY: our device objects and extensions.
        unsafe {
            if d.ext != 0 {
                std::alloc::dealloc(d.ext as *mut u8, std::alloc::Layout::from_size_align_unchecked(d.ext_size, 16));
            }
            std::alloc::dealloc(d.dev.cast(), std::alloc::Layout::new::<DEVICE_OBJECT>());
        }
    }
    for w in st.workitems.drain() {
        // SAFETY: leaked by the driver, which is gone.
        unsafe { drop(Box::from_raw(w as *mut WorkItem)) };
    }
    drop(st);
    k.io.umem.free_everything();
    k.io.revoked.release();
}
