//! The Windows backend: `\\.\RawNic` opened for overlapped I/O. Every
//! request has its own `OVERLAPPED`, event and buffers, so requests from
//! several threads can be pending on one handle; a timed-out request is
//! cancelled with `CancelIoEx` and waited for, because the driver owns its
//! buffers until it completes.
//!
//! A completed request's NTSTATUS and `Information` are read from the
//! `OVERLAPPED` (`Internal`, `InternalHigh`: the I/O status block). A
//! request the driver fails at once never reaches the status block; its
//! NTSTATUS is recovered from the thread's last NTSTATUS, or by mapping the
//! Win32 error back to the one interface status that produces it.

use crate::error::{Error, Result};
use crate::transport::{Completion, Request};
use proto::NtStatus;
use std::ffi::{c_void, OsStr};
use std::fmt;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::ptr::{self, addr_of, addr_of_mut};
use std::sync::Arc;
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, RtlNtStatusToDosError, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_IO_PENDING,
    ERROR_MORE_DATA, ERROR_MR_MID_NOT_FOUND, ERROR_NOT_FOUND, ERROR_PATH_NOT_FOUND, GENERIC_READ, GENERIC_WRITE,
    HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject, INFINITE};
use windows_sys::Win32::System::IO::{CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED};

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
                ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => {
                    " (the device does not exist: is the rawnic driver installed and bound? `netcfg -l rawnic.inf -c p -i RAWNIC`)"
                }
                ERROR_ACCESS_DENIED => " (only SYSTEM and Administrators may open rawnic: run from an elevated prompt)",
                _ => "",
            };
            return Err(Error::io(format!("cannot open {path}{hint}"), io::Error::from_raw_os_error(code as i32)));
        }
        Ok(WinDevice { handle: Arc::new(Handle(h)) })
    }

    pub(crate) fn submit(&self, request: Request, input: &[u8], out_len: usize) -> Result<WinPending<'_>> {
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
        let op = Box::into_raw(Box::new(Op {
            ov: OVERLAPPED { hEvent: event.0, ..Default::default() },
            input: input.to_vec(),
            output: vec![0u8; out_len],
        }));
        let mut pending = WinPending { dev: self, op, event, state: State::InFlight };
        let h = self.handle.0;
        // SAFETY: `op` is a live heap allocation that `pending` owns and
        // frees only after the I/O is over (Drop cancels and waits); the
        // buffers are its vectors, whose heap storage does not move, sized
        // as passed; `ov` carries a valid event. Only raw pointers into it
        // exist while the driver may write it.
        let ok = unsafe {
            let ov = addr_of_mut!((*op).ov);
            let inp = (*op).input.as_ptr();
            let outp = (*op).output.as_mut_ptr();
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
                Request::Create => {
                    pending.state = State::Failed;
                    return Err(Error::InvalidArgument("CREATE is not a request on an open Windows handle".into()));
                }
            }
        };
        if ok != 0 {
            pending.state = State::Completed;
            return Ok(pending);
        }
        match last_error() {
            ERROR_IO_PENDING => Ok(pending),
            // A warning (STATUS_BUFFER_OVERFLOW): the I/O status block and
            // the output were written.
            ERROR_MORE_DATA => {
                pending.state = State::Completed;
                Ok(pending)
            }
            code => {
                // Failed before it was queued: the status block was not
                // written, and nothing refers to the buffers.
                pending.state = State::Failed;
                let call = match request {
                    Request::Read => "ReadFile",
                    Request::Write => "WriteFile",
                    _ => "DeviceIoControl",
                };
                match recover_status(code) {
                    Some(status) => {
                        pending.state = State::Synchronous(status);
                        Ok(pending)
                    }
                    None => Err(Error::Win32 { call, code }),
                }
            }
        }
    }

    pub(crate) fn canceller(&self) -> WinCanceller {
        WinCanceller { handle: Arc::clone(&self.handle) }
    }
}

/// A request's `OVERLAPPED` and buffers; the driver owns them until the
/// request completes.
struct Op {
    ov: OVERLAPPED,
    input: Vec<u8>,
    output: Vec<u8>,
}

enum State {
    /// Queued; the driver may write the op.
    InFlight,
    /// Completed; the status block holds the result.
    Completed,
    /// Failed at once with this status; the status block was not written.
    Synchronous(NtStatus),
    /// Never queued.
    Failed,
}

pub(crate) struct WinPending<'d> {
    dev: &'d WinDevice,
    /// From `Box::into_raw`; freed in Drop once the I/O is over.
    op: *mut Op,
    event: Handle,
    state: State,
}

impl WinPending<'_> {
    /// Waits for the event up to `deadline`; `true` once it is signalled.
    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            let ms = match deadline {
                None => INFINITE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Rounded up, so that a wait never ends early and spins.
                    let ms = left.as_nanos().div_ceil(1_000_000);
                    ms.min(u128::from(INFINITE - 1)) as u32
                }
            };
            // SAFETY: the event handle is open for the life of `self`.
            match unsafe { WaitForSingleObject(self.event.0, ms) } {
                WAIT_OBJECT_0 => return Ok(true),
                WAIT_TIMEOUT => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(false);
                    }
                }
                _ => return Err(Error::Win32 { call: "WaitForSingleObject", code: last_error() }),
            }
        }
    }

    /// Waits, without a limit, until the driver has completed the request.
    fn wait_for_completion(&mut self) {
        let mut n = 0u32;
        // SAFETY: `op` is live and its OVERLAPPED is the one the request was
        // issued with; bWait = TRUE returns only once it has completed.
        unsafe { GetOverlappedResult(self.dev.handle.0, addr_of!((*self.op).ov), &mut n, 1) };
        self.state = State::Completed;
    }

    /// The completion of a request that is over.
    fn collect(&mut self) -> Completion {
        match self.state {
            State::Synchronous(status) => Completion { status, information: 0, data: Vec::new() },
            _ => {
                // SAFETY: the request is complete (or never started): nothing
                // else reads or writes the op any more.
                let op = unsafe { &mut *self.op };
                let status = NtStatus(op.ov.Internal as u32 as i32);
                let information = op.ov.InternalHigh as u64;
                let mut data = std::mem::take(&mut op.output);
                data.truncate(information.min(data.len() as u64) as usize);
                Completion { status, information, data }
            }
        }
    }

    pub(crate) fn wait(mut self, request: Request, timeout: Option<Duration>) -> Result<Completion> {
        if matches!(self.state, State::InFlight) {
            let deadline = timeout.map(|t| Instant::now() + t);
            let signalled = self.wait_until(deadline)?;
            if !signalled {
                // A request that completed meanwhile is not found; either
                // way, wait for the completion.
                self.cancel()?;
                self.wait_for_completion();
                let c = self.collect();
                if c.status == NtStatus::CANCELLED {
                    return Err(Error::TimedOut { request, after: timeout.unwrap_or_default() });
                }
                return Ok(c);
            }
            self.wait_for_completion();
        }
        Ok(self.collect())
    }

    pub(crate) fn cancel(&self) -> Result<()> {
        if !matches!(self.state, State::InFlight) {
            return Ok(());
        }
        // SAFETY: the handle is open and `op`'s OVERLAPPED identifies the
        // request; a request that already completed is simply not found.
        let ok = unsafe { CancelIoEx(self.dev.handle.0, addr_of!((*self.op).ov)) };
        if ok == 0 {
            let code = last_error();
            if code != ERROR_NOT_FOUND {
                return Err(Error::Win32 { call: "CancelIoEx", code });
            }
        }
        Ok(())
    }
}

impl Drop for WinPending<'_> {
    fn drop(&mut self) {
        if matches!(self.state, State::InFlight) {
            // The driver may still write the buffers: cancel, and wait until
            // it has let go of them.
            let _ = self.cancel();
            self.wait_for_completion();
        }
        // SAFETY: from Box::into_raw in `submit`, freed once, after the I/O
        // is over.
        drop(unsafe { Box::from_raw(self.op) });
    }
}

/// Cancels every pending request of a handle (`CancelIoEx` with no
/// `OVERLAPPED`), from any thread.
#[derive(Clone)]
pub(crate) struct WinCanceller {
    handle: Arc<Handle>,
}

impl WinCanceller {
    pub(crate) fn cancel_all(&self) -> Result<()> {
        // SAFETY: the handle is open while `self` holds it; a null
        // OVERLAPPED cancels all of the handle's I/O.
        let ok = unsafe { CancelIoEx(self.handle.0, ptr::null()) };
        if ok == 0 {
            let code = last_error();
            if code != ERROR_NOT_FOUND {
                return Err(Error::Win32 { call: "CancelIoEx", code });
            }
        }
        Ok(())
    }
}
