//! File objects, as user mode sees the device: CREATE after the access
//! check, READ, WRITE and DEVICE_CONTROL requests on an open file, and
//! closing it (CLEANUP at once, CLOSE once its IRPs are done).

use super::cancel::cancel_irp_if;
use super::driver::{us, wbuf};
use super::irp::send;
use super::security::{access_check, map_generic};
use super::{DO_EXCLUSIVE, FILE_READ_DATA, FILE_WRITE_DATA, FileRec, Identity, Io, IoResult, UserRegion, Waiter};
use crate::kernel::Kernel;
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use std::sync::Arc;

/// A request to send to the driver.
pub(crate) enum Request<'a> {
    Read(usize),
    Write(&'a [u8]),
    Ioctl {
        code: u32,
        input: &'a [u8],
        out_len: usize,
    },
    /// A `METHOD_IN_DIRECT` or `METHOD_OUT_DIRECT` IOCTL whose output
    /// buffer is live user memory: the IRP's MDL describes the region's
    /// user mapping, locked (as the I/O manager's probe and lock leaves
    /// it), nothing is copied back at completion, and the IRP holds the
    /// region until it is retired (when the pages are unlocked).
    IoctlRegion {
        code: u32,
        input: &'a [u8],
        region: Arc<UserRegion>,
        /// Where in the region the buffer starts (0: its first byte, on a
        /// page); the buffer runs to the region's end.
        skip: usize,
    },
}

/// Opens `path` as `who` with `desired` access: the access check, then
/// IRP_MJ_CREATE. Returns the file object's address.
pub(crate) fn create(k: &Kernel, path: &str, desired: u32, who: Identity) -> Result<usize, NTSTATUS> {
    let (dev, rest, granted) = {
        let mut st = lock(&k.io.st);
        let Some((dev, rest)) = Io::find_device(&st, path) else { return Err(STATUS_OBJECT_NAME_NOT_FOUND) };
        let has_link = !st.links.is_empty();
        let d = st.devices.iter_mut().find(|d| d.dev as usize == dev).expect("found");
        // SAFETY: a live device object.
        let (flags, chars) = unsafe { ((*d.dev).Flags, (*d.dev).Characteristics) };
        if flags & DO_DEVICE_INITIALIZING != 0 {
            return Err(STATUS_DEVICE_NOT_READY);
        }
        if flags & DO_EXCLUSIVE != 0 && d.opens > 0 {
            return Err(STATUS_ACCESS_DENIED);
        }
        if has_link && !d.warned {
            if !d.sd_set || d.dacl.is_none() {
                d.warned = true;
                Violation::new(
                    Rule::InsecureDevice,
                    "IRP_MJ_CREATE",
                    format!(
                        "device {:?} has a symbolic link but no DACL: anyone can open it",
                        d.name.as_deref().unwrap_or("?")
                    ),
                )
                .with_object(dev)
                .report();
            } else if chars & FILE_DEVICE_SECURE_OPEN == 0 {
                d.warned = true;
                Violation::new(
                    Rule::InsecureDevice,
                    "IRP_MJ_CREATE",
                    format!(
                        "device {:?} lacks FILE_DEVICE_SECURE_OPEN: opens of names below it skip its DACL",
                        d.name.as_deref().unwrap_or("?")
                    ),
                )
                .with_object(dev)
                .report();
            }
        }
        // Without FILE_DEVICE_SECURE_OPEN an open of a name below the
        // device is not checked against the device's DACL.
        let check = rest.is_empty() || chars & FILE_DEVICE_SECURE_OPEN != 0;
        let dacl = if d.sd_set { d.dacl.clone() } else { None };
        let granted = if check { access_check(&dacl, who, desired) } else { Some(map_generic(desired)) };
        let Some(granted) = granted else { return Err(STATUS_ACCESS_DENIED) };
        (dev, rest, granted)
    };
    // The file object.
    // SAFETY: FILE_OBJECT is plain data.
    let fo = Box::into_raw(Box::new(unsafe { std::mem::zeroed::<FILE_OBJECT>() }));
    // The name's characters live as long as the file object (its record
    // frees both).
    let name_buf = Box::into_raw(wbuf(&rest).into_boxed_slice());
    // SAFETY: fresh: the file object and the name's box.
    unsafe {
        (*fo).Type = 5;
        (*fo).Size = std::mem::size_of::<FILE_OBJECT>() as i16;
        (*fo).DeviceObject = dev as *mut DEVICE_OBJECT;
        (*fo).ReadAccess = (granted & FILE_READ_DATA != 0) as u8;
        (*fo).WriteAccess = (granted & FILE_WRITE_DATA != 0) as u8;
        (*fo).FileName = us(&*name_buf);
    }
    {
        let mut st = lock(&k.io.st);
        st.next_file_seq += 1;
        let seq = st.next_file_seq;
        st.files.insert(
            fo as usize,
            FileRec {
                file: fo,
                name: name_buf,
                dev,
                granted,
                cleaned: false,
                seq,
                cleanup_done: false,
                closed: false,
                irps: Vec::new(),
                refs: 0,
            },
        );
    }
    let w = Waiter::new(None);
    send(k, fo as usize, IRP_MJ_CREATE, None, desired, who, w.clone());
    let r = w.wait(Some(k.config.watchdog)).unwrap_or(IoResult {
        status: STATUS_PENDING,
        information: 0,
        data: Vec::new(),
    });
    if r.status < 0 || r.status == STATUS_PENDING {
        // A failed create: no cleanup or close follows.
        let mut st = lock(&k.io.st);
        if let Some(f) = st.files.get_mut(&(fo as usize)) {
            f.cleaned = true;
            f.cleanup_done = true;
            f.closed = true;
        }
        return Err(r.status);
    }
    let mut st = lock(&k.io.st);
    if let Some(d) = st.devices.iter_mut().find(|d| d.dev as usize == dev) {
        d.opens += 1;
    }
    Ok(fo as usize)
}

/// Sends `req` on an open file; the result arrives through `waiter`.
/// Returns the IRP's address and the file's creation number (for
/// `handle_closed`). `by_ref`: sent through a reference the caller holds
/// (`reference`), which a closed handle does not stop.
pub(crate) fn request(
    k: &Kernel,
    file: usize,
    req: Request<'_>,
    waiter: Arc<Waiter>,
    by_ref: bool,
) -> Result<(usize, u64), NTSTATUS> {
    let (granted, seq) = {
        let mut st = lock(&k.io.st);
        let Some(f) = st.files.get_mut(&file) else { return Err(STATUS_INVALID_HANDLE) };
        if f.closed || (f.cleaned && !by_ref) {
            return Err(STATUS_INVALID_HANDLE);
        }
        // The I/O manager's reference to the file object
        // (ObReferenceObjectByHandle): from here the request goes to the
        // driver even if the handle closes meanwhile.
        f.refs += 1;
        (f.granted, f.seq)
    };
    // Another thread may close the handle now (CloseHandle does not wait
    // for requests in flight): this one still reaches the driver, after
    // the file's IRP_MJ_CLEANUP maybe.
    k.yield_point("NtDeviceIoControlFile");
    let r = send_referenced(k, file, req, waiter, granted);
    unreference(k, file);
    r.map(|irp| (irp, seq))
}

/// Takes a reference to the file of an open handle (as
/// ObReferenceObjectByHandle does): IRP_MJ_CLOSE waits for its release
/// (`unreference`). Returns the file's creation number.
pub(crate) fn reference(k: &Kernel, file: usize) -> Result<u64, NTSTATUS> {
    let mut st = lock(&k.io.st);
    match st.files.get_mut(&file) {
        Some(f) if !f.cleaned => {
            f.refs += 1;
            Ok(f.seq)
        }
        _ => Err(STATUS_INVALID_HANDLE),
    }
}

/// Releases a reference `reference` or `request` took; the last one of a
/// closed handle's file lets IRP_MJ_CLOSE go (once its IRPs are done).
pub(crate) fn unreference(k: &Kernel, file: usize) {
    if let Some(f) = lock(&k.io.st).files.get_mut(&file) {
        f.refs = f.refs.saturating_sub(1);
    }
    maybe_close(k, file);
}

/// `request` once the file is referenced: the access checks, then the
/// IRP.
fn send_referenced(
    k: &Kernel,
    file: usize,
    req: Request<'_>,
    waiter: Arc<Waiter>,
    granted: u32,
) -> Result<usize, NTSTATUS> {
    // NtReadFile and NtWriteFile check the handle's access, as the I/O
    // manager checks an IOCTL's RequiredAccess bits below.
    match req {
        Request::Read(_) if granted & FILE_READ_DATA == 0 => return Err(STATUS_ACCESS_DENIED),
        Request::Write(_) if granted & FILE_WRITE_DATA == 0 => return Err(STATUS_ACCESS_DENIED),
        _ => {}
    }
    if k.fail_alloc() {
        // The I/O manager could not allocate the IRP.
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    if let Request::IoctlRegion { code, region, skip, .. } = &req {
        if !matches!(code & 3, METHOD_IN_DIRECT | METHOD_OUT_DIRECT) || *skip >= region.len() {
            // Only direct I/O hands the driver the caller's pages (and
            // only pages of the region, at least one byte).
            return Err(STATUS_INVALID_PARAMETER);
        }
    }
    if let Request::Ioctl { code, .. } | Request::IoctlRegion { code, .. } = &req {
        let access = (code >> 14) & 3;
        if (access & FILE_READ_ACCESS != 0 && granted & FILE_READ_DATA == 0)
            || (access & FILE_WRITE_ACCESS != 0 && granted & FILE_WRITE_DATA == 0)
        {
            return Err(STATUS_ACCESS_DENIED);
        }
    }
    let major = match req {
        Request::Read(_) => IRP_MJ_READ,
        Request::Write(_) => IRP_MJ_WRITE,
        Request::Ioctl { .. } | Request::IoctlRegion { .. } => IRP_MJ_DEVICE_CONTROL,
    };
    Ok(send(k, file, major, Some(req), 0, Identity::User, waiter))
}

/// Whether the handle of file `file` (creation number `seq`) was closed:
/// its cleanup began, or it is gone.
/// The creation number of the open file object at `file` (None when there
/// is none, or its handle was closed).
pub(crate) fn open_file_seq(k: &Kernel, file: usize) -> Option<u64> {
    lock(&k.io.st).files.get(&file).filter(|f| !f.cleaned).map(|f| f.seq)
}

pub(crate) fn handle_closed(k: &Kernel, file: usize, seq: u64) -> bool {
    lock(&k.io.st).files.get(&file).is_none_or(|f| f.seq != seq || f.cleaned)
}

/// Closes a handle: IRP_MJ_CLEANUP now, IRP_MJ_CLOSE once the file's IRPs
/// are all completed and no reference is left. With `cancel`, outstanding
/// IRPs are cancelled first (what happens when the process that owns the
/// handle exits).
pub(crate) fn close(k: &Kernel, file: usize, cancel: bool) {
    let irps = {
        let mut st = lock(&k.io.st);
        let Some(f) = st.files.get_mut(&file) else { return };
        if f.cleaned {
            return;
        }
        f.cleaned = true;
        f.irps.clone()
    };
    if cancel {
        for i in irps {
            // Only while it is still this file's (it may have completed
            // and its memory gone to another file's request).
            cancel_irp_if(k, i, |r| r.file == file);
        }
    }
    let w = Waiter::new(None);
    send(k, file, IRP_MJ_CLEANUP, None, 0, Identity::User, w);
    if let Some(f) = lock(&k.io.st).files.get_mut(&file) {
        f.cleanup_done = true;
    }
    maybe_close(k, file);
}

pub(super) fn maybe_close(k: &Kernel, file: usize) {
    let go = {
        let mut st = lock(&k.io.st);
        let Some(f) = st.files.get_mut(&file) else { return };
        if !f.cleanup_done || f.closed || !f.irps.is_empty() || f.refs != 0 {
            false
        } else {
            f.closed = true;
            true
        }
    };
    if go {
        let w = Waiter::new(None);
        send(k, file, IRP_MJ_CLOSE, None, 0, Identity::User, w);
        k.io.umem.file_closed(file);
        let mut st = lock(&k.io.st);
        let dev = st.files.get(&file).map(|f| f.dev);
        if let Some(d) = dev.and_then(|dv| st.devices.iter_mut().find(|d| d.dev as usize == dv)) {
            d.opens = d.opens.saturating_sub(1);
        }
    }
}

/// Files still open.
pub(crate) fn open_files(k: &Kernel) -> Vec<usize> {
    let st = lock(&k.io.st);
    let mut v: Vec<(u64, usize)> = st.files.iter().filter(|(_, f)| !f.cleaned).map(|(&a, f)| (f.seq, a)).collect();
    v.sort();
    v.into_iter().map(|(_, a)| a).collect()
}
