//! The Windows backend: `\\.\RawNic` opened for overlapped I/O. Every
//! request has its own `OVERLAPPED`, event and buffers, so requests from
//! several threads can be pending on one handle. This file makes the system
//! calls; `overlapped.rs` holds the rules they follow (tested on every host
//! with a fake): a timed-out or dropped request is cancelled with
//! `CancelIoEx` and given a grace period to complete, because the driver
//! owns its buffers until its status block stops reading `STATUS_PENDING`;
//! one that does not complete in time is leaked, never freed.
//!
//! A completed request's NTSTATUS and `Information` are read from the
//! `OVERLAPPED` (`Internal`, `InternalHigh`: the I/O status block). A
//! request the driver fails at once never reaches the status block; its
//! NTSTATUS is recovered from the thread's last NTSTATUS, or by mapping the
//! Win32 error back to the one interface status that produces it.
//!
//! Requests are `Send`, as on the bridge. The handle has no completion
//! port, so Windows cancels a request when the thread that issued it exits
//! (the I/O manager cancels the IRPs queued on behalf of a terminated
//! thread); it then completes as `STATUS_CANCELLED`.

use crate::error::{Error, Result};
use crate::overlapped::{self, OsRequest, Overlapped, Signal, Start};
use crate::transport::{Completion, Request};
use rawnic_proto::NtStatus;
use std::ffi::{OsStr, c_void};
use std::fmt;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::ptr::{self, NonNull, addr_of, addr_of_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING, ERROR_MORE_DATA,
    ERROR_MR_MID_NOT_FOUND, ERROR_NOT_FOUND, ERROR_PATH_NOT_FOUND, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE,
    INVALID_HANDLE_VALUE, RtlNtStatusToDosError, STATUS_PENDING, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING, ReadFile, WriteFile,
};
use windows_sys::Win32::System::Console::{
    CONSOLE_MODE, ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetStdHandle, STD_ERROR_HANDLE, SetConsoleMode,
};
use windows_sys::Win32::System::IO::{CancelIoEx, DeviceIoControl, OVERLAPPED};
use windows_sys::Win32::System::Threading::{CreateEventW, INFINITE, WaitForSingleObject};

// The rules in overlapped.rs spell these codes out; they are Windows' own.
const _: () = {
    assert!(overlapped::ERROR_IO_INCOMPLETE == ERROR_IO_INCOMPLETE);
    assert!(overlapped::ERROR_IO_PENDING == ERROR_IO_PENDING);
    assert!(overlapped::ERROR_MORE_DATA == ERROR_MORE_DATA);
    assert!(overlapped::INFINITE == INFINITE);
    assert!(STATUS_PENDING == NtStatus::PENDING.0);
};

mod ntdll {
    // `RtlGetLastNtStatus`: the NTSTATUS behind the thread's last Win32
    // error (kept in the TEB next to it). Not in windows-sys.
    windows_link::link!("ntdll.dll" "system" fn RtlGetLastNtStatus() -> i32);
}

/// An owned kernel handle, closed on drop.
struct Handle(HANDLE);

// SAFETY: a kernel handle is a process-wide index, usable from any thread;
// the calls made with it here are thread-safe.
unsafe impl Send for Handle {}
// SAFETY: as above; shared use only passes the value to thread-safe calls.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is owned, open, and closed exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// The last Win32 error of this thread.
fn last_error() -> u32 {
    // SAFETY: no arguments; reads the thread's last-error value.
    unsafe { GetLastError() }
}

fn dos_error_of(status: NtStatus) -> u32 {
    // SAFETY: a pure mapping function; no pointers.
    unsafe { RtlNtStatusToDosError(status.0) }
}

/// The interface NTSTATUS behind Win32 error `code`, if it can be known.
fn recover_status(code: u32) -> Option<NtStatus> {
    // SAFETY: no arguments; reads the thread's TEB.
    let last = NtStatus(unsafe { ntdll::RtlGetLastNtStatus() });
    if !last.is_success() && dos_error_of(last) == code {
        return Some(last);
    }
    let mut found = None;
    for &s in NtStatus::ALL {
        if !s.is_success() && dos_error_of(s) == code {
            if found.is_some() {
                return None;
            }
            found = Some(s);
        }
    }
    found
}

pub(crate) fn explain_unknown_status(f: &mut fmt::Formatter<'_>, status: NtStatus) -> fmt::Result {
    let code = dos_error_of(status);
    if code != ERROR_MR_MID_NOT_FOUND {
        write!(f, "; Windows says: {}", io::Error::from_raw_os_error(code as i32))?;
    }
    Ok(())
}

/// An open `\\.\RawNic` handle.
pub(crate) struct WinDevice {
    handle: Arc<Handle>,
}

impl WinDevice {
    pub(crate) fn open(path: &str) -> Result<WinDevice> {
        if path.contains('\0') {
            // DevicePath::parse refuses it too: CreateFileW would stop there.
            return Err(Error::InvalidArgument(format!(
                "the device path {} contains a NUL character",
                path.escape_debug()
            )));
        }
        let wide: Vec<u16> = OsStr::new(path).encode_wide().chain(std::iter::once(0)).collect();
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the
        // call; the other pointers are null, which CreateFileW allows.
        let h = unsafe {
            CreateFileW(
                wide.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            let code = last_error();
            let hint = match code {
                ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => crate::path::native_not_found_hint(path),
                ERROR_ACCESS_DENIED => {
                    " (only SYSTEM and Administrators may open rawnic: run from an elevated prompt)".into()
                }
                _ => String::new(),
            };
            return Err(Error::io(format!("cannot open {path}{hint}"), io::Error::from_raw_os_error(code as i32)));
        }
        Ok(WinDevice { handle: Arc::new(Handle(h)) })
    }

    pub(crate) fn submit(&self, request: Request, input: &[u8], out_len: usize) -> Result<WinPending<'_>> {
        self.issue(request, input, out_len, None)
    }

    /// An IOCTL whose output buffer is `mem` itself (the UMEM of
    /// `RING_ATTACH`, `METHOD_OUT_DIRECT`): the I/O manager locks its pages
    /// for the request. The request keeps a reference to `mem` until it is
    /// over, and leaks it with itself if it never is, so the pages are not
    /// freed while the driver may use them.
    pub(crate) fn submit_shared(
        &self,
        request: Request,
        input: &[u8],
        mem: &Arc<crate::ring::mem::SharedMem>,
    ) -> Result<WinPending<'_>> {
        if !matches!(request, Request::Ioctl(_)) {
            return Err(Error::InvalidArgument(format!("{} cannot take shared memory", request.doing())));
        }
        self.issue(request, input, mem.len(), Some(Arc::clone(mem)))
    }

    fn issue(
        &self,
        request: Request,
        input: &[u8],
        out_len: usize,
        shared: Option<Arc<crate::ring::mem::SharedMem>>,
    ) -> Result<WinPending<'_>> {
        if request == Request::Create {
            return Err(Error::InvalidArgument("CREATE is not a request on an open Windows handle".into()));
        }
        let too_big = |what: &str, n: usize| {
            Error::InvalidArgument(format!(
                "{} with {n} bytes of {what} is larger than Windows allows (4 GiB)",
                request.doing()
            ))
        };
        let in_len = u32::try_from(input.len()).map_err(|_| too_big("input", input.len()))?;
        let out_len32 = u32::try_from(out_len).map_err(|_| too_big("output", out_len))?;
        // SAFETY: default security, manual reset, initially clear, unnamed.
        let event = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        if event.is_null() {
            return Err(Error::Win32 { call: "CreateEventW", code: last_error() });
        }
        let event = Handle(event);
        let op = NonNull::from(Box::leak(Box::new(Op {
            // The status block reads STATUS_PENDING until the system writes
            // it (OVERLAPPED's documentation says the system sets it so when
            // the request is issued): one that a failing call never writes
            // is not read as a success.
            ov: OVERLAPPED { Internal: STATUS_PENDING as u32 as usize, hEvent: event.0, ..Default::default() },
            input: input.to_vec(),
            // Shared memory is the output buffer itself: nothing to copy.
            output: if shared.is_some() { Vec::new() } else { vec![0u8; out_len] },
            shared,
        })));
        // Owned by `req` from here: freed by its Drop only once the I/O is
        // over (or was never queued), else leaked.
        let mut req = WinRequest { handle: &self.handle, op, event, queued: true };
        let h = self.handle.0;
        let op = op.as_ptr();
        // SAFETY: `op` is a live heap allocation that `req` owns and frees
        // only once the status block no longer reads pending (or the call
        // failed before queuing anything); the buffers are its vectors,
        // whose heap storage does not move, sized as passed, or the shared
        // memory it holds a reference to (`out_len` is its length); `ov` carries a
        // valid event. Only raw pointers into it exist while the driver may
        // write it.
        let ok = unsafe {
            let ov = addr_of_mut!((*op).ov);
            let inp = (*op).input.as_ptr();
            let outp = match &(*op).shared {
                Some(mem) => mem.as_ptr(),
                None => (*op).output.as_mut_ptr(),
            };
            match request {
                Request::Ioctl(code) => DeviceIoControl(
                    h,
                    code,
                    inp.cast::<c_void>(),
                    in_len,
                    outp.cast::<c_void>(),
                    out_len32,
                    ptr::null_mut(),
                    ov,
                ),
                Request::Read => ReadFile(h, outp, out_len32, ptr::null_mut(), ov),
                Request::Write => WriteFile(h, inp, in_len, ptr::null_mut(), ov),
                Request::Create => unreachable!("refused above"),
            }
        };
        let issued = if ok != 0 { Ok(()) } else { Err(last_error()) };
        match overlapped::classify(issued, req.status_pending(), recover_status) {
            Ok(start) => {
                req.queued = !matches!(start, Start::Synchronous(_));
                Ok(Overlapped::new(req, start))
            }
            Err(code) => {
                // Failed before it was queued: nothing refers to the op.
                req.queued = false;
                let call = match request {
                    Request::Read => "ReadFile",
                    Request::Write => "WriteFile",
                    _ => "DeviceIoControl",
                };
                Err(Error::Win32 { call, code })
            }
        }
    }

    pub(crate) fn canceller(&self) -> WinCanceller {
        WinCanceller { handle: Arc::downgrade(&self.handle) }
    }
}

/// A request's `OVERLAPPED` and buffers; the driver owns them until the
/// request completes.
struct Op {
    ov: OVERLAPPED,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The output buffer when it is shared memory (`output` is then empty):
    /// held until the op is freed, never if it is leaked.
    shared: Option<Arc<crate::ring::mem::SharedMem>>,
}

/// One issued request: the system calls of [`OsRequest`] on its
/// `OVERLAPPED`, event and device handle. `overlapped::Overlapped` holds
/// the rules of waiting, cancelling and freeing.
pub(crate) struct WinRequest<'d> {
    handle: &'d Handle,
    /// From `Box::leak`; freed in Drop once the I/O is over, else leaked.
    op: NonNull<Op>,
    event: Handle,
    /// The call that issued it may have queued it: the status block, not
    /// the call's return, says when the driver is done with `op`.
    queued: bool,
}

// SAFETY: a request is its heap op, an event handle and a reference to the
// device handle. None of them is tied to the thread that issued it: the op
// is owned by this value alone (the system writes it, from no particular
// thread, until the status block is written), and the wait, the status
// block read and CancelIoEx work from any thread of the process. A request
// whose issuing thread exits is cancelled by the system (this client uses
// no completion port) and completes as STATUS_CANCELLED through the same
// status block and event, so the memory rules do not change. Not Sync:
// `Overlapped` is used by one thread at a time.
unsafe impl Send for WinRequest<'_> {}

/// A pending request on the Windows device.
pub(crate) type WinPending<'d> = Overlapped<WinRequest<'d>>;

impl WinRequest<'_> {
    fn ov(&self) -> *const OVERLAPPED {
        // SAFETY: `op` is live while `self` is; only the field's address is
        // taken, no reference is made.
        unsafe { addr_of!((*self.op.as_ptr()).ov) }
    }
}

impl OsRequest for WinRequest<'_> {
    fn wait_event(&self, ms: u32) -> Signal {
        // SAFETY: the event handle is open for the life of `self`.
        match unsafe { WaitForSingleObject(self.event.0, ms) } {
            WAIT_OBJECT_0 => Signal::Set,
            WAIT_TIMEOUT => Signal::TimedOut,
            _ => Signal::Failed(Error::Win32 { call: "WaitForSingleObject", code: last_error() }),
        }
    }

    fn status_pending(&self) -> bool {
        // `HasOverlappedIoCompleted`: the system writes `Internal` when the
        // request completes, concurrently with this read, so it is read
        // atomically; Acquire orders the reads of the output after it.
        // SAFETY: `Internal` is a usize at the start of the live op's
        // OVERLAPPED, so aligned for an AtomicUsize, and this process only
        // ever reads it while the request may be pending.
        let internal = unsafe { AtomicUsize::from_ptr(addr_of!((*self.ov()).Internal).cast_mut()) };
        internal.load(Ordering::Acquire) == STATUS_PENDING as u32 as usize
    }

    fn cancel(&self) -> Result<()> {
        // SAFETY: the handle is open (the device outlives its requests) and
        // `ov` identifies the request; one that already completed is simply
        // not found.
        let ok = unsafe { CancelIoEx(self.handle.0, self.ov()) };
        if ok == 0 {
            let code = last_error();
            if code != ERROR_NOT_FOUND {
                return Err(Error::Win32 { call: "CancelIoEx", code });
            }
        }
        Ok(())
    }

    fn completion(&mut self) -> Completion {
        // SAFETY: the request is over (Overlapped collects only then):
        // nothing else reads or writes the op any more.
        let op = unsafe { self.op.as_mut() };
        let status = NtStatus(op.ov.Internal as u32 as i32);
        let information = op.ov.InternalHigh as u64;
        let mut data = std::mem::take(&mut op.output);
        data.truncate(information.min(data.len() as u64) as usize);
        Completion { status, information, data }
    }

    fn leak(self) {
        // The op and the event stay allocated for the rest of the process:
        // the driver may still write the op and signal the event.
        std::mem::forget(self);
    }
}

impl Drop for WinRequest<'_> {
    fn drop(&mut self) {
        // Overlapped drops a request only once it is over; this check keeps
        // the free below sound on its own.
        if self.queued && self.status_pending() {
            return;
        }
        // SAFETY: from Box::leak in `submit`, freed once, after the I/O is
        // over or when nothing was queued.
        drop(unsafe { Box::from_raw(self.op.as_ptr()) });
    }
}

/// Cancels every pending request of a handle (`CancelIoEx` with no
/// `OVERLAPPED`), from any thread. It does not keep the handle open: once
/// the `Device` is dropped (which closes the handle, and with it the
/// handle's binding and receive queue), cancelling does nothing — as on the
/// bridge, whose `Device` sends CLOSE when dropped.
#[derive(Clone)]
pub(crate) struct WinCanceller {
    handle: Weak<Handle>,
}

impl WinCanceller {
    pub(crate) fn cancel_all(&self) -> Result<()> {
        // Held only for the call, so the handle cannot close under it.
        let Some(handle) = self.handle.upgrade() else { return Ok(()) };
        // SAFETY: the handle is open while `handle` holds it; a null
        // OVERLAPPED cancels all of the handle's I/O.
        let ok = unsafe { CancelIoEx(handle.0, ptr::null()) };
        if ok == 0 {
            let code = last_error();
            if code != ERROR_NOT_FOUND {
                return Err(Error::Win32 { call: "CancelIoEx", code });
            }
        }
        Ok(())
    }
}

/// A console's mode to put back: [`enable_virtual_terminal_on_stderr`]
/// changed it.
#[derive(Debug)]
pub(crate) struct ConsoleMode {
    console: HANDLE,
    mode: CONSOLE_MODE,
}

/// Sets `ENABLE_VIRTUAL_TERMINAL_PROCESSING` on stderr's console, so that
/// it interprets escape sequences instead of printing them. `Ok(Some)`: set
/// now, with the mode to restore; `Ok(None)`: it was set already; `Err`:
/// stderr is no console, or the console refuses the flag (before Windows
/// 10 1511).
pub(crate) fn enable_virtual_terminal_on_stderr() -> std::result::Result<Option<ConsoleMode>, ()> {
    // SAFETY: no pointers; returns the process's stderr handle (possibly
    // null or invalid, which GetConsoleMode then refuses). It is not ours
    // to close.
    let console = unsafe { GetStdHandle(STD_ERROR_HANDLE) };
    let mut mode: CONSOLE_MODE = 0;
    // SAFETY: `mode` is a valid out-parameter; a handle that is no console
    // makes the call fail.
    if unsafe { GetConsoleMode(console, &mut mode) } == 0 {
        return Err(());
    }
    if mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
        return Ok(None);
    }
    // SAFETY: `console` is a console handle (GetConsoleMode took it).
    if unsafe { SetConsoleMode(console, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) } == 0 {
        return Err(());
    }
    Ok(Some(ConsoleMode { console, mode }))
}

impl Drop for ConsoleMode {
    fn drop(&mut self) {
        // SAFETY: the stderr console handle whose mode was read and changed;
        // putting the mode back is best effort.
        unsafe { SetConsoleMode(self.console, self.mode) };
    }
}

#[cfg(test)]
mod tests;
