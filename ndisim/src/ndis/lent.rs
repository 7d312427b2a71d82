//! Buffers NDIS lends a driver for the length of one call: a status
//! indication's `StatusBuffer`, given to `ProtocolStatusEx`.
//!
//! The driver sees exactly `StatusBufferSize` bytes: the copy ends where an
//! inaccessible guard page begins, so a read (or a write) one byte past it
//! faults at the driver's instruction, and the fault names the indication.
//! A heap copy rounded up to 8 bytes let a driver read a few bytes past a
//! short buffer and find zeros. The buffer starts wherever its size puts
//! it: aligned for a size that is a multiple of 8 (NDIS's structures), not
//! for another (a short buffer, which a driver must not read as a
//! structure anyway; x64 reads unaligned data as it is). When the handler
//! returns the pages are taken back (inaccessible, and their addresses kept
//! for the next `KEEP` buffers), as the miniport may free its buffer once
//! `NdisMIndicateStatusEx` returns: a driver that kept the pointer faults
//! there too.

use crate::verifier::lock;
use std::collections::VecDeque;
use std::sync::Mutex;

const PAGE: usize = 4096;
/// Buffers taken back kept inaccessible before their addresses go back.
const KEEP: usize = 64;

/// One buffer lent, or taken back.
#[derive(Clone, Copy)]
struct Record {
    /// The mapping: the data's pages, then the guard page.
    base: usize,
    len: usize,
    /// The bytes the driver sees.
    data: usize,
    size: usize,
    code: i32,
    back: bool,
}

/// The buffers lent now and the last ones taken back, for the fault
/// handler.
#[derive(Default)]
pub(crate) struct Lent {
    records: Mutex<VecDeque<Record>>,
}

/// A buffer lent for one call; taken back when dropped.
pub(crate) struct LentBuf<'a> {
    lent: &'a Lent,
    base: usize,
    data: usize,
}

impl LentBuf<'_> {
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.data as *mut u8
    }
}

impl Drop for LentBuf<'_> {
    fn drop(&mut self) {
        self.lent.take_back(self.base);
    }
}

impl Lent {
    /// A copy of `bytes` (not empty) that ends at a guard page, for a status
    /// indication of `code`; `None` when the system has no pages left.
    pub(crate) fn status_buffer(&self, code: i32, bytes: &[u8]) -> Option<LentBuf<'_>> {
        let size = bytes.len();
        let span = size.max(1).div_ceil(PAGE) * PAGE;
        let len = span + PAGE;
        let base = crate::pool::map_rw(len)? as usize;
        let data = base + span - size;
        // SAFETY: our own fresh mapping: `size` bytes at `data` lie in its
        // data pages, and its last page becomes the guard.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, size);
            libc::mprotect((base + span) as *mut libc::c_void, PAGE, libc::PROT_NONE);
        }
        lock(&self.records).push_back(Record { base, len, data, size, code, back: false });
        Some(LentBuf { lent: self, base, data })
    }

    /// The call returned: the mapping at `base` is made inaccessible, and
    /// the oldest ones taken back before it go.
    fn take_back(&self, base: usize) {
        let mut g = lock(&self.records);
        let Some(r) = g.iter_mut().find(|r| r.base == base && !r.back) else { return };
        r.back = true;
        // SAFETY: our own mapping, which nothing of ndisim's uses from now
        // on; its memory goes back to the system, its addresses stay.
        unsafe {
            libc::madvise(r.base as *mut libc::c_void, r.len, libc::MADV_DONTNEED);
            libc::mprotect(r.base as *mut libc::c_void, r.len, libc::PROT_NONE);
        }
        while g.iter().filter(|r| r.back).count() > KEEP {
            let Some(i) = g.iter().position(|r| r.back) else { break };
            let old = g.remove(i).expect("present");
            // SAFETY: a mapping taken back that nobody may use.
            unsafe { libc::munmap(old.base as *mut libc::c_void, old.len) };
        }
    }

    /// What a faulting address was (from the fault handler: no
    /// allocation, no waiting for the lock).
    pub(crate) fn describe(&self, addr: usize, w: &mut impl std::fmt::Write) -> bool {
        let Ok(g) = self.records.try_lock() else { return false };
        let Some(r) = g.iter().rev().find(|r| addr >= r.base && addr < r.base + r.len) else { return false };
        let what = if r.back {
            "taken back when ProtocolStatusEx returned (the driver used it after the call; NDIS lends it for the call only)"
        } else if addr >= r.data + r.size {
            "the guard page right after it (the driver read or wrote past StatusBufferSize)"
        } else {
            "inside it"
        };
        let _ = write!(
            w,
            ": the StatusBuffer of a status indication {:#x}, StatusBufferSize {} at {:#x}, {what}",
            r.code as u32, r.size, r.data
        );
        true
    }

    /// Unmaps every buffer (the simulation is over).
    pub(crate) fn release(&self) {
        let mut g = lock(&self.records);
        for r in g.drain(..) {
            // SAFETY: no call is running: nobody may use it.
            unsafe { libc::munmap(r.base as *mut libc::c_void, r.len) };
        }
    }
}
