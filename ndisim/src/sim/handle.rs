//! Device I/O from the test's side: the devices and links the driver
//! made and their DACLs, opening a device, and `Handle` (an open file) and
//! `IoToken` (a request in flight).

use super::Sim;
use crate::io::{self, Identity, IoResult, Request, UserRegion, Waiter};
use crate::kernel::{self, Kernel};
use ndis_sys::*;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

impl Sim {
    /// Device names and symbolic links the driver created.
    pub fn devices(&self) -> (Vec<String>, Vec<String>) {
        (self.k.io.device_names(), self.k.io.link_names())
    }

    /// Whether `who` may open `device` for `desired` by its DACL (None
    /// when the driver set no DACL).
    pub fn device_access(&self, device: &str, who: Identity, desired: u32) -> Option<bool> {
        io::check_access(&self.k, device, who, desired)
    }

    /// The DACL set on `device`, as text.
    pub fn device_dacl(&self, device: &str) -> Option<String> {
        self.k.io.dacl_of(device).map(|d| io::sid_list(&d))
    }

    /// Replaces the DACL of `device` (`None`: a NULL DACL, open to all), as
    /// an administrator could after the driver set it; false when there is
    /// no such device.
    pub fn set_device_dacl(&self, device: &str, dacl: Option<Vec<io::Ace>>) -> bool {
        self.k.io.set_dacl(device, dacl)
    }

    /// Opens the driver's control device (`\\.\RawNic`) as an
    /// administrator with read and write access.
    pub fn open(&self) -> Result<Handle, NTSTATUS> {
        self.open_path(rawnic_proto::USER_PATH, 0xC000_0000, Identity::Admin)
    }

    /// Opens `path` as `who` with `desired` access (IRP_MJ_CREATE after the
    /// DACL check).
    pub fn open_path(&self, path: &str, desired: u32, who: Identity) -> Result<Handle, NTSTATUS> {
        let _e = self.enter();
        let file = io::create(&self.k, path, desired, who)?;
        Ok(Handle { k: self.k.clone(), file, closed: AtomicBool::new(false) })
    }
}

/// An open handle to a device of the driver (a file object).
pub struct Handle {
    k: Arc<Kernel>,
    file: usize,
    closed: AtomicBool,
}

/// A reference to the file object of a handle, as the I/O manager takes one
/// for each request (`ObReferenceObjectByHandle`) and as a request that is
/// past its handle check holds it: requests sent through it reach the
/// driver even after the handle closed, after the file's IRP_MJ_CLEANUP
/// (which Windows does not hold back for requests in flight), and
/// IRP_MJ_CLOSE waits until it is dropped. What another thread's request
/// looks like to the driver when one thread closes a handle others use.
pub struct FileRef {
    k: Arc<Kernel>,
    file: usize,
}

impl fmt::Debug for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileRef({:#x})", self.file)
    }
}

/// Sends `req` on `file` (`by_ref`: through a `FileRef`) without waiting.
fn submit(k: &Arc<Kernel>, file: usize, req: Request<'_>, by_ref: bool) -> Result<IoToken, NTSTATUS> {
    let _e = kernel::enter_api(k);
    let w = Waiter::new(None);
    let (irp, seq) = io::request(k, file, req, w.clone(), by_ref)?;
    Ok(IoToken { k: k.clone(), waiter: w, irp, file: (file, seq), cancelled: AtomicBool::new(false) })
}

impl FileRef {
    fn submit(&self, req: Request<'_>) -> Result<IoToken, NTSTATUS> {
        submit(&self.k, self.file, req, true)
    }

    /// DeviceIoControl on the file, without waiting.
    pub fn ioctl_async(&self, code: u32, input: &[u8], out_len: usize) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Ioctl { code, input, out_len })
    }

    /// ReadFile on the file, without waiting.
    pub fn read_async(&self, len: usize) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Read(len))
    }

    /// WriteFile on the file, without waiting.
    pub fn write_async(&self, data: &[u8]) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Write(data))
    }

    /// Runs `send` (requests through this reference), the first request
    /// of which is cancelled after the I/O manager listed its IRP and
    /// before the driver's dispatch routine runs, as `CancelIoEx` from
    /// another thread at that moment would: `Irp->Cancel` is set and no
    /// cancel routine is called.
    pub fn cancelled_at_dispatch<R>(&self, send: impl FnOnce(&FileRef) -> R) -> R {
        io::cancel_at_dispatch(|| send(self))
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        let _e = kernel::enter_api(&self.k);
        io::unreference(&self.k, self.file);
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({:#x})", self.file)
    }
}

/// A request in flight: wait for it, or cancel it.
pub struct IoToken {
    k: Arc<Kernel>,
    waiter: Arc<Waiter>,
    irp: usize,
    /// The file it was sent on, and that file's creation number.
    file: (usize, u64),
    cancelled: AtomicBool,
}

impl fmt::Debug for IoToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IoToken(irp {:#x})", self.irp)
    }
}

impl IoToken {
    /// Waits for the completion (at most the watchdog time; `None` then).
    pub fn wait(&self) -> Option<IoResult> {
        self.wait_for(self.k.config.watchdog)
    }

    /// Waits at most `d` for the completion (`None` if it did not come):
    /// in a deterministic simulation, `d` of virtual time, the scheduler
    /// running the simulation's threads meanwhile (a wait in real time
    /// let nothing run there: the DPC that completes a pending OID never
    /// came).
    pub fn wait_for(&self, d: Duration) -> Option<IoResult> {
        let _e = kernel::enter_api(&self.k);
        self.waiter.wait(Some(d))
    }

    /// The result, if it completed.
    pub fn try_result(&self) -> Option<IoResult> {
        self.waiter.try_result()
    }

    /// `IoCancelIrp`; true when the IRP had a cancel routine.
    pub fn cancel(&self) -> bool {
        self.cancelled.store(true, Ordering::Release);
        let _e = kernel::enter_api(&self.k);
        // This request's IRP, not a later one that reuses its memory.
        io::cancel_request(&self.k, self.irp, &self.waiter)
    }

    /// `cancel` on a thread of the simulation's own (as another thread of
    /// the process calling CancelIoEx), which the unload joins before its
    /// report: a cancel routine still running when the driver unloads is
    /// seen to its end.
    pub fn cancel_on_another_thread(&self) {
        self.cancelled.store(true, Ordering::Release);
        let (irp, waiter) = (self.irp, self.waiter.clone());
        self.k.spawn("cancel", move |k| {
            io::cancel_request(k, irp, &waiter);
        });
    }

    /// Whether the request was cancelled: by `cancel`, or by
    /// `Handle::cancel_io` from any thread, or as its handle was abandoned
    /// (whether or not the cancel reached the driver).
    pub fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || self.waiter.was_cancelled()
    }

    /// Whether the handle it was sent on has been closed (the cleanup,
    /// which cancels the file's requests, began), by any thread.
    pub fn handle_closed(&self) -> bool {
        io::handle_closed(&self.k, self.file.0, self.file.1)
    }

    /// Whether the request may have been cancelled: by `cancel`, or by the
    /// close of its handle. A request completed with `STATUS_CANCELLED`
    /// otherwise was cancelled by mistake (the driver took another
    /// request's cancel for it, for example).
    pub fn may_be_cancelled(&self) -> bool {
        self.was_cancelled() || self.handle_closed()
    }

    /// The IRP's address.
    pub fn irp(&self) -> usize {
        self.irp
    }

    /// The file object it was sent on: its address and creation number
    /// (`Handle::file`).
    pub fn file(&self) -> (usize, u64) {
        self.file
    }
}

impl Handle {
    /// The simulation the handle is open in.
    pub(crate) fn kernel(&self) -> &Arc<Kernel> {
        &self.k
    }

    /// Its file object: address and creation number, the pair
    /// `IoToken::file` gives for the requests sent on it (None once the
    /// handle is closed). The address alone may come back for a later file.
    pub fn file(&self) -> Option<(usize, u64)> {
        io::open_file_seq(&self.k, self.file).map(|seq| (self.file, seq))
    }

    fn submit(&self, req: Request<'_>) -> Result<IoToken, NTSTATUS> {
        submit(&self.k, self.file, req, false)
    }

    fn sync(&self, req: Request<'_>) -> IoResult {
        match self.submit(req) {
            Ok(t) => t.waiter.wait_take(Some(self.k.config.watchdog)).unwrap_or(IoResult {
                status: STATUS_PENDING,
                information: 0,
                data: Vec::new(),
            }),
            Err(s) => IoResult { status: s, information: 0, data: Vec::new() },
        }
    }

    /// Runs `send` (requests on this handle), the first request of which
    /// is cancelled after the I/O manager listed its IRP and before the
    /// driver's dispatch routine runs (`FileRef::cancelled_at_dispatch`).
    pub fn cancelled_at_dispatch<R>(&self, send: impl FnOnce(&Handle) -> R) -> R {
        io::cancel_at_dispatch(|| send(self))
    }

    /// DeviceIoControl, waiting for the completion.
    pub fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> IoResult {
        self.sync(Request::Ioctl { code, input, out_len })
    }

    /// DeviceIoControl without waiting.
    pub fn ioctl_async(&self, code: u32, input: &[u8], out_len: usize) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Ioctl { code, input, out_len })
    }

    /// DeviceIoControl of a `METHOD_IN_DIRECT` or `METHOD_OUT_DIRECT` code
    /// whose output buffer is `region`, without waiting: the IRP's MDL
    /// describes the region's pages, locked, and the driver reads and
    /// writes them live (nothing is copied at completion; the result's
    /// `data` is empty). The IRP holds `region` until it is done, when the
    /// pages are unlocked. `STATUS_INVALID_PARAMETER` for another method.
    pub fn ioctl_region_async(&self, code: u32, input: &[u8], region: Arc<UserRegion>) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::IoctlRegion { code, input, region, skip: 0 })
    }

    /// As `ioctl_region_async`, with the output buffer starting `skip`
    /// bytes into `region` (so not on a page unless `skip` is a multiple of
    /// one) and running to its end, as a caller may pass any address of
    /// its memory. `STATUS_INVALID_PARAMETER` when `skip` leaves no byte.
    pub fn ioctl_region_at_async(
        &self,
        code: u32,
        input: &[u8],
        region: Arc<UserRegion>,
        skip: usize,
    ) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::IoctlRegion { code, input, region, skip })
    }

    pub fn read(&self, len: usize) -> IoResult {
        self.sync(Request::Read(len))
    }

    pub fn read_async(&self, len: usize) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Read(len))
    }

    pub fn write(&self, data: &[u8]) -> IoResult {
        self.sync(Request::Write(data))
    }

    pub fn write_async(&self, data: &[u8]) -> Result<IoToken, NTSTATUS> {
        self.submit(Request::Write(data))
    }

    /// CloseHandle: IRP_MJ_CLEANUP, then IRP_MJ_CLOSE once its IRPs are
    /// done.
    pub fn close(self) {
        self.do_close(false);
    }

    /// Closes as a dying process does: cancels outstanding IRPs first.
    pub fn abandon(self) {
        self.do_close(true);
    }

    /// CloseHandle by one thread of a handle other threads are using: it
    /// closes for all of them at once (`cancel`: as `abandon`). Their
    /// requests already past the handle check still reach the driver,
    /// after the file's IRP_MJ_CLEANUP maybe; later ones fail with
    /// `STATUS_INVALID_HANDLE`.
    pub fn close_shared(&self, cancel: bool) {
        self.do_close(cancel);
    }

    /// `CancelIoEx(handle, NULL)`: cancels every request in flight on the
    /// handle, whichever thread sent it, those still in the driver's
    /// dispatch routine included (the driver then finds `Irp->Cancel` set
    /// when it tries to set a cancel routine). Returns how many had a
    /// cancel routine; 0 once the handle is closed (CancelIoEx then fails
    /// with ERROR_INVALID_HANDLE).
    pub fn cancel_io(&self) -> usize {
        if self.closed.load(Ordering::Acquire) {
            return 0;
        }
        let _e = kernel::enter_api(&self.k);
        io::cancel_file(&self.k, self.file)
    }

    /// A reference to the handle's file object (`None` once the handle is
    /// closed): see `FileRef`.
    pub fn reference(&self) -> Option<FileRef> {
        let _e = kernel::enter_api(&self.k);
        io::reference(&self.k, self.file).ok().map(|_| FileRef { k: self.k.clone(), file: self.file })
    }

    fn do_close(&self, cancel: bool) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _e = kernel::enter_api(&self.k);
            io::close(&self.k, self.file, cancel);
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.do_close(true);
    }
}
