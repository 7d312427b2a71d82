//! User memory the driver may lock and map: a `UserRegion` is a run of
//! pages backed by a memfd and mapped shared into this process, which
//! stands for a user process's buffer (a UMEM, say) that a
//! `METHOD_*_DIRECT` IOCTL hands the driver through the IRP's MDL.
//!
//! The mapping `as_ptr` returns is the *user* mapping. A system mapping the
//! driver asks for (`MmMapLockedPagesSpecifyCache`) is a second mapping of
//! the same memfd pages at another address (`io::umem`), so a driver that
//! keeps using the user address, or the system one after the pages were
//! unlocked, is caught rather than served.
//!
//! The test (or the bridge, for a client process that sent its memfd) acts
//! as the user through the accessors here: atomic loads and stores of ring
//! indices and plain reads and writes of frames, all bounds-checked.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

const PAGE: usize = 4096;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// User memory backed by a memfd (see the module's documentation).
pub struct UserRegion {
    fd: OwnedFd,
    /// The user mapping: page-aligned, `mapped` bytes.
    ptr: *mut u8,
    len: usize,
    mapped: usize,
    id: usize,
}

// SAFETY: the mapping is shared memory that every access goes through
// atomics or bounds-checked copies (racing with the driver, as user memory
// does on Windows); the fd is thread-safe.
unsafe impl Send for UserRegion {}
// SAFETY: as above.
unsafe impl Sync for UserRegion {}

impl std::fmt::Debug for UserRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserRegion(#{}, {} bytes at {:#x})", self.id, self.len, self.ptr as usize)
    }
}

impl UserRegion {
    /// `len` bytes (more than 0) of zeroed user memory in a new memfd,
    /// sealed against shrinking.
    pub fn new(len: usize) -> io::Result<Arc<UserRegion>> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a user region must not be empty"));
        }
        let mapped = len.div_ceil(PAGE) * PAGE;
        // SAFETY: a C string literal and flags; returns a new fd or -1.
        let raw =
            unsafe { libc::memfd_create(c"ndisim-user-region".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), mapped as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, len)
    }

    /// The region a client process shares: `fd` is its memfd (received
    /// over `SCM_RIGHTS`), of at least `len` bytes (more than 0). The memfd
    /// must have been created with `MFD_ALLOW_SEALING`: the region seals it
    /// against shrinking (`F_SEAL_SHRINK`), so that the client cannot take
    /// pages from under the driver (which would fault ndisim with SIGBUS).
    pub fn from_fd(fd: OwnedFd, len: usize) -> io::Result<Arc<UserRegion>> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a user region must not be empty"));
        }
        // SAFETY: adds a seal to an fd we own; fails on files without seals.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot seal the region's fd against shrinking (a memfd made with MFD_ALLOW_SEALING?): {e}"),
            ));
        }
        // SAFETY: an all-zero stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid stat buffer for our fd.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if (st.st_size as u64) < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the region's fd holds {} bytes, fewer than the {len} asked for", st.st_size),
            ));
        }
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Arc<UserRegion>> {
        let mapped = len.div_ceil(PAGE) * PAGE;
        // SAFETY: a new shared mapping of our fd; nothing else is at it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(UserRegion { fd, ptr: p.cast(), len, mapped, id }))
    }

    /// The user mapping's first byte (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Its length in bytes, as asked for (the mapping is rounded up to
    /// whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (an empty region cannot be made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd behind it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A number that names the region in reports (unique in the process).
    pub fn id(&self) -> usize {
        self.id
    }

    #[inline]
    fn at(&self, off: usize, n: usize, align: usize, what: &str) -> *mut u8 {
        let end = off.saturating_add(n);
        assert!(end <= self.len, "{what}: bytes {off}..{end} are outside the {}-byte region", self.len);
        assert!(off % align == 0, "{what}: offset {off} is not {align}-byte aligned");
        // SAFETY: `off + n <= len`, inside the mapping (checked).
        unsafe { self.ptr.add(off) }
    }

    /// An atomic load (Acquire) of the `u32` at `off` (4-byte aligned).
    #[inline]
    pub fn load_u32(&self, off: usize) -> u32 {
        let p = self.at(off, 4, 4, "load_u32").cast::<u32>();
        // SAFETY: aligned, inside the live shared mapping; every access to
        // it from Rust is atomic or a byte copy.
        unsafe { AtomicU32::from_ptr(p) }.load(Ordering::Acquire)
    }

    /// An atomic store (Release) of `v` at `off` (4-byte aligned).
    #[inline]
    pub fn store_u32(&self, off: usize, v: u32) {
        let p = self.at(off, 4, 4, "store_u32").cast::<u32>();
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU32::from_ptr(p) }.store(v, Ordering::Release)
    }

    /// An atomic load (Acquire) of the `u64` at `off` (8-byte aligned).
    #[inline]
    pub fn load_u64(&self, off: usize) -> u64 {
        let p = self.at(off, 8, 8, "load_u64").cast::<u64>();
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU64::from_ptr(p) }.load(Ordering::Acquire)
    }

    /// An atomic store (Release) of `v` at `off` (8-byte aligned).
    #[inline]
    pub fn store_u64(&self, off: usize, v: u64) {
        let p = self.at(off, 8, 8, "store_u64").cast::<u64>();
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU64::from_ptr(p) }.store(v, Ordering::Release)
    }

    /// Copies `out.len()` bytes from `off`.
    #[inline]
    pub fn read(&self, off: usize, out: &mut [u8]) {
        let p = self.at(off, out.len(), 1, "read");
        // SAFETY: inside the mapping (checked); `out` is ours. The driver
        // may write the same bytes meanwhile, as with any user memory: the
        // copy is of bytes, never of a Rust value with invariants.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
    }

    /// Copies `data` to `off`.
    #[inline]
    pub fn write(&self, off: usize, data: &[u8]) {
        let p = self.at(off, data.len(), 1, "write");
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    }

    /// The bytes at `off..off + n`, copied.
    pub fn to_vec(&self, off: usize, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.read(off, &mut v);
        v
    }
}

impl Drop for UserRegion {
    fn drop(&mut self) {
        // SAFETY: our mapping; the last reference is going (an IRP that
        // locks it holds one, so nothing of the driver's can be using it).
        unsafe { libc::munmap(self.ptr.cast(), self.mapped) };
    }
}

#[cfg(test)]
mod tests {
    use super::UserRegion;

    #[test]
    fn two_mappings_of_one_fd_share_the_bytes() {
        let r = UserRegion::new(10_000).unwrap();
        assert_eq!(r.len(), 10_000);
        assert_eq!(r.as_ptr() as usize % 4096, 0);
        r.store_u32(4096, 0xdead_beef);
        r.write(9_990, b"0123456789");
        let fd = r.fd().try_clone_to_owned().unwrap();
        let s = UserRegion::from_fd(fd, 10_000).unwrap();
        assert_ne!(s.as_ptr(), r.as_ptr());
        assert_eq!(s.load_u32(4096), 0xdead_beef);
        assert_eq!(s.to_vec(9_990, 10), b"0123456789");
        s.store_u64(8, u64::MAX - 1);
        assert_eq!(r.load_u64(8), u64::MAX - 1);
        assert!(UserRegion::from_fd(r.fd().try_clone_to_owned().unwrap(), 20_000).is_err());
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_range_panics() {
        UserRegion::new(100).unwrap().write(98, b"abc");
    }

    #[test]
    #[should_panic(expected = "aligned")]
    fn misaligned_atomic_panics() {
        UserRegion::new(100).unwrap().load_u32(2);
    }
}
