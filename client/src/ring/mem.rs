//! The UMEM's memory: page-aligned, zeroed, shared with the driver. On
//! Linux a sealed memfd mapped here (its descriptor goes to ndisim over the
//! bridge, which maps the same pages); on Windows `VirtualAlloc`'s pages,
//! which the I/O manager locks for the attach request.
//!
//! Nothing here makes a Rust reference to the memory: the driver writes it
//! concurrently, so it is reached only through the raw pointer, by the
//! ring code's atomics and volatile accesses, and as slices of the frames
//! the user owns.

use crate::error::{Error, Result};
use std::ptr::NonNull;

/// Shared, page-aligned memory; unmapped (or freed) when the last
/// reference goes. The attach request holds one until it completes, so the
/// memory outlives every access the driver may make (on Windows a request
/// that never completes is leaked, and its memory with it).
pub(crate) struct SharedMem {
    ptr: NonNull<u8>,
    len: usize,
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
}

// SAFETY: the memory is a process-wide mapping, not tied to a thread; all
// access goes through raw pointers with atomics or volatile operations,
// under the ownership rules of the rings.
unsafe impl Send for SharedMem {}
// SAFETY: as above; `&SharedMem` only hands out the raw pointer.
unsafe impl Sync for SharedMem {}

impl std::fmt::Debug for SharedMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMem").field("ptr", &self.ptr).field("len", &self.len).finish()
    }
}

impl SharedMem {
    /// The first byte.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The memfd behind the mapping (what the bridge passes to ndisim).
    #[cfg(target_os = "linux")]
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

#[cfg(target_os = "linux")]
impl SharedMem {
    /// A memfd of `len` bytes (a multiple of the page size), sealed against
    /// resizing, mapped shared for reading and writing.
    pub(crate) fn new(len: usize) -> Result<SharedMem> {
        use rustix::fs::{MemfdFlags, SealFlags};
        use rustix::mm::{MapFlags, ProtFlags};
        let fail = |what: &str, e: rustix::io::Errno| {
            Error::io(format!("cannot {what} the ring memory ({len} bytes)"), std::io::Error::from(e))
        };
        if len == 0 || len % rawnic_proto::ring::PAGE != 0 {
            return Err(Error::InvalidArgument(format!("ring memory of {len} bytes is not a whole number of pages")));
        }
        let fd = rustix::fs::memfd_create("rawnic-umem", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| fail("create", e))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(|e| fail("size", e))?;
        // Sealed against resizing before anyone else sees it (ndisim seals
        // it against shrinking again, which `SEAL` would refuse).
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW).map_err(|e| fail("seal", e))?;
        // SAFETY: a new shared mapping of the whole memfd at an address the
        // system chooses; nothing else refers to that range.
        let p = unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }
        .map_err(|e| fail("map", e))?;
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| Error::InvalidArgument("mmap returned null".into()))?;
        Ok(SharedMem { ptr, len, fd })
    }
}

#[cfg(target_os = "linux")]
impl Drop for SharedMem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once (the last
        // reference is going); no slice into it outlives the `Umem` whose
        // reference this may be. ndisim's own mapping is unaffected.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(windows)]
impl SharedMem {
    /// `len` bytes of committed, zeroed pages (page-aligned).
    pub(crate) fn new(len: usize) -> Result<SharedMem> {
        use windows_sys::Win32::System::Memory::{MEM_COMMIT, MEM_RESERVE, PAGE_READWRITE, VirtualAlloc};
        if len == 0 || len % rawnic_proto::ring::PAGE != 0 {
            return Err(Error::InvalidArgument(format!("ring memory of {len} bytes is not a whole number of pages")));
        }
        // SAFETY: a new allocation at an address the system chooses.
        let p = unsafe { VirtualAlloc(std::ptr::null(), len, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) };
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| Error::Win32 {
            call: "VirtualAlloc",
            // SAFETY: no arguments; the thread's last error.
            code: unsafe { windows_sys::Win32::Foundation::GetLastError() },
        })?;
        Ok(SharedMem { ptr, len })
    }
}

#[cfg(windows)]
impl Drop for SharedMem {
    fn drop(&mut self) {
        use windows_sys::Win32::System::Memory::{MEM_RELEASE, VirtualFree};
        // SAFETY: the allocation made in `new`, released once, after the
        // attach request that locked it completed (the request holds a
        // reference until then, and leaks it if it never completes).
        unsafe { VirtualFree(self.ptr.as_ptr().cast(), 0, MEM_RELEASE) };
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
impl SharedMem {
    pub(crate) fn new(_len: usize) -> Result<SharedMem> {
        Err(Error::Unsupported("rings need shared memory, which rawnic's client has only on Linux and Windows".into()))
    }
}
