//! Memory the I/O manager lends a driver for one request, taken back when
//! the request completes.
//!
//! On Windows an IRP and its buffers are gone once `IoCompleteRequest`
//! returns: the system buffer of a buffered request is copied to the
//! caller and freed, the system mapping of a direct request's pages is
//! undone when they are unlocked, and the IRP itself goes back to a
//! lookaside list (or, under Driver Verifier's I/O verification, to
//! special pool). A driver that touches any of them afterwards reads or
//! writes memory that belongs to someone else by then.
//!
//! Under special pool ndisim gives every IRP and every buffer it hands
//! the driver (system buffers, direct and neither buffers) pages of its
//! own, ending at a guard page, and at completion copies out what the
//! caller gets and makes those pages inaccessible: the driver's next touch
//! faults at the guilty instruction, and the fault names the request.
//! Outside special pool the memory is ordinary heap, as before (cheaper:
//! the benchmarks run there).

use crate::verifier::lock;
use std::collections::VecDeque;
use std::sync::Mutex;

const PAGE: usize = 4096;
/// Revoked ranges kept inaccessible before their pages go back.
const KEEP: usize = 512;

/// Pages of their own for `size` bytes, the bytes ending 16-aligned as
/// near a guard page as that allows, zeroed.
pub(crate) struct Pages {
    base: usize,
    len: usize,
    data: usize,
    size: usize,
}

// SAFETY: plain memory owned by the record that holds it.
unsafe impl Send for Pages {}

impl Pages {
    pub(crate) fn new(size: usize) -> Pages {
        let span = size.max(1).div_ceil(PAGE) * PAGE;
        let len = span + PAGE;
        let base = crate::pool::map_rw(len).expect("ndisim: out of address space for an IRP's pages") as usize;
        // SAFETY: the last page of our own mapping becomes the guard.
        unsafe { libc::mprotect((base + span) as *mut libc::c_void, PAGE, libc::PROT_NONE) };
        let data = (base + span - size.max(1)) & !15;
        Pages { base, len, data, size }
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.data as *mut u8
    }
}

/// A request's buffer: heap memory, or pages revoked at completion.
pub(crate) enum Buf {
    Heap(Vec<u8>),
    Pages(Pages),
}

impl Default for Buf {
    fn default() -> Self {
        Buf::Heap(Vec::new())
    }
}

impl Buf {
    /// `data`, then `fill` up to `size` bytes (at least one byte in all).
    pub(crate) fn new(special: bool, data: &[u8], size: usize, fill: u8) -> Buf {
        let size = size.max(data.len()).max(1);
        let mut b = if special {
            Buf::Pages(Pages::new(size))
        } else {
            let mut v = Vec::with_capacity(size);
            v.extend_from_slice(data);
            v.resize(size, fill);
            return Buf::Heap(v);
        };
        let s: &mut [u8] = &mut b;
        s[..data.len()].copy_from_slice(data);
        s[data.len()..].fill(fill);
        b
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            Buf::Heap(v) => v.as_mut_ptr(),
            Buf::Pages(p) => p.ptr(),
        }
    }

    /// The first `n` bytes, for the caller: heap memory moves (nothing is
    /// copied), pages are copied out.
    pub(crate) fn take_prefix(&mut self, n: usize) -> Vec<u8> {
        match self {
            Buf::Heap(v) => {
                let mut v = std::mem::take(v);
                v.truncate(n);
                v
            }
            Buf::Pages(_) => self[..n.min(self.len())].to_vec(),
        }
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Buf::Heap(v) => v,
            // SAFETY: `size` bytes of our mapping, accessible until revoked
            // (which consumes the pages).
            Buf::Pages(p) => unsafe { std::slice::from_raw_parts(p.ptr(), p.size) },
        }
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Buf::Heap(v) => v,
            // SAFETY: as in `deref`.
            Buf::Pages(p) => unsafe { std::slice::from_raw_parts_mut(p.ptr(), p.size) },
        }
    }
}

/// One revoked range, for the fault handler.
#[derive(Clone, Copy)]
struct Gone {
    base: usize,
    len: usize,
    what: &'static str,
    major: &'static str,
    irp: usize,
}

/// Ranges revoked at completion, kept inaccessible for a while (their
/// addresses are not handed out again meanwhile).
#[derive(Default)]
pub(crate) struct Revoked {
    gone: Mutex<VecDeque<Gone>>,
}

impl Revoked {
    /// Makes `pages` inaccessible; `what` they were to request `irp`.
    pub(crate) fn revoke(&self, pages: Pages, what: &'static str, major: &'static str, irp: usize) {
        // SAFETY: our own mapping, which nothing of ndisim's uses from
        // now on; its memory goes back to the system, its addresses stay.
        unsafe {
            libc::madvise(pages.base as *mut libc::c_void, pages.len, libc::MADV_DONTNEED);
            libc::mprotect(pages.base as *mut libc::c_void, pages.len, libc::PROT_NONE);
        }
        let mut g = lock(&self.gone);
        g.push_back(Gone { base: pages.base, len: pages.len, what, major, irp });
        while g.len() > KEEP {
            let old = g.pop_front().expect("not empty");
            // SAFETY: a revoked mapping nobody may use.
            unsafe { libc::munmap(old.base as *mut libc::c_void, old.len) };
        }
    }

    /// `buf`'s pages, if it has any, revoked.
    pub(crate) fn revoke_buf(&self, buf: &mut Buf, what: &'static str, major: &'static str, irp: usize) {
        if let Buf::Pages(p) = std::mem::take(buf) {
            self.revoke(p, what, major, irp);
        }
    }

    /// What a faulting address was (from the fault handler: no
    /// allocation, no waiting for the lock).
    pub(crate) fn describe(&self, addr: usize, w: &mut impl std::fmt::Write) -> bool {
        let Ok(g) = self.gone.try_lock() else { return false };
        let Some(r) = g.iter().rev().find(|r| addr >= r.base && addr < r.base + r.len) else { return false };
        let _ = write!(
            w,
            ": {} of {} IRP {:#x}, revoked when the IRP was completed (I/O verification under special pool: the driver touched a request after IoCompleteRequest)",
            r.what, r.major, r.irp
        );
        true
    }

    /// Unmaps every revoked range (the simulation is over).
    pub(crate) fn release(&self) {
        let mut g = lock(&self.gone);
        for r in g.drain(..) {
            // SAFETY: a revoked mapping nobody may use.
            unsafe { libc::munmap(r.base as *mut libc::c_void, r.len) };
        }
    }
}

/// An IRP's memory: a heap block (outside special pool; reused through
/// the lookaside list) or pages of its own.
pub(crate) fn irp_pages<T>() -> (Pages, *mut T) {
    let p = Pages::new(std::mem::size_of::<T>());
    debug_assert!(std::mem::align_of::<T>() <= 16);
    let t = p.ptr().cast::<T>();
    (p, t)
}
