//! The UMEM as the user side sees it: the shared memory and its layout,
//! who owns each frame, and the frame tokens.
//!
//! The driver writes the memory concurrently, so nothing here makes a
//! reference to more of it than one frame the user owns. Indices and
//! counters are reached as atomics, descriptors with volatile reads and
//! writes, each at an offset checked against the memory's length.
//!
//! Ownership is in the types: a [`UmemFrame`] is the only handle to a frame
//! the user owns, and it is not `Clone`. Giving it to the fill or tx ring
//! consumes it; the rx and completion rings make a new one for each frame
//! they return. Behind the types, `owner` records whose each frame is, so
//! that a frame the driver returns twice, or one it never had, is an error
//! rather than two handles to one frame.

use super::mem::SharedMem;
use crate::error::{Error, Result};
use crate::transport::Request;
use rawnic_proto::IOCTL_RAWNIC_RING_ATTACH;
use rawnic_proto::ring::{RingArea, RingLayout};
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The user owns the frame: a token, or the free pool.
const USER: u8 = 0;
/// The driver owns the frame: posted on the fill ring or the tx ring.
const DRIVER: u8 = 1;

/// The error for something the driver wrote into the UMEM that breaks the
/// ring rules.
pub(crate) fn broken(detail: impl Into<String>) -> Error {
    Error::bad_reply(Request::Ioctl(IOCTL_RAWNIC_RING_ATTACH), rawnic_proto::Error::InvalidParameter, detail)
}

/// The UMEM's memory, layout and frame owners.
pub(crate) struct Space {
    pub(crate) mem: Arc<SharedMem>,
    pub(crate) layout: RingLayout,
    owner: Box<[AtomicU8]>,
    /// Frames the user owns that no token holds (by index).
    pool: Mutex<Vec<u32>>,
}

impl Space {
    pub(crate) fn new(mem: Arc<SharedMem>, layout: RingLayout) -> Space {
        assert!(mem.len() >= layout.total, "the memory holds the layout");
        let n = layout.frame_count;
        Space {
            mem,
            layout,
            owner: (0..n).map(|_| AtomicU8::new(USER)).collect(),
            // Handed out from the end: frame 0 first.
            pool: Mutex::new((0..n).rev().collect()),
        }
    }

    /// The address of byte `off`, which with `len` bytes after it lies in
    /// the memory and is aligned to `align`.
    fn at(&self, off: usize, len: usize, align: usize) -> *mut u8 {
        assert!(off.checked_add(len).is_some_and(|end| end <= self.mem.len()), "offset {off} is outside the UMEM");
        assert!(off % align == 0, "offset {off} is not aligned to {align}");
        self.mem.as_ptr().wrapping_add(off)
    }

    /// The `u32` at `off` (a ring index), as an atomic.
    pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
        let p = self.at(off, 4, 4).cast::<u32>();
        // SAFETY: in bounds and aligned (checked by `at`), in a mapping that
        // lives as long as `self`; the driver reaches this word only with
        // atomic accesses of the same size.
        unsafe { AtomicU32::from_ptr(p) }
    }

    /// The `u64` at `off` (a counter of the control block), as an atomic.
    pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
        let p = self.at(off, 8, 8).cast::<u64>();
        // SAFETY: as for `u32_at`, for an aligned 8-byte word.
        unsafe { AtomicU64::from_ptr(p) }
    }

    /// `N` bytes at `off` (a descriptor), read once.
    pub(crate) fn read<const N: usize>(&self, off: usize) -> [u8; N] {
        let p = self.at(off, N, 1).cast::<[u8; N]>();
        // SAFETY: in bounds (checked by `at`), no alignment needed for a byte
        // array; a volatile read, because the ring's other side may write
        // the memory at any time (a descriptor the rules say is ours is not
        // written, and a broken one is checked after this copy).
        unsafe { std::ptr::read_volatile(p) }
    }

    /// Writes `N` bytes at `off` (a descriptor of a ring the user produces).
    pub(crate) fn write<const N: usize>(&self, off: usize, bytes: [u8; N]) {
        let p = self.at(off, N, 1).cast::<[u8; N]>();
        // SAFETY: in bounds (checked by `at`); a volatile write into the
        // shared mapping, of an entry the producer index does not yet
        // publish, so the driver does not read it.
        unsafe { std::ptr::write_volatile(p, bytes) }
    }

    /// The index of the frame that holds UMEM offset `addr`, and where in
    /// it `addr` is.
    pub(crate) fn frame_of(&self, addr: u64) -> Option<(u32, usize)> {
        let rel = usize::try_from(addr).ok()?.checked_sub(self.layout.frames)?;
        let fs = self.layout.frame_size as usize;
        let idx = rel / fs;
        (idx < self.layout.frame_count as usize).then_some((idx as u32, rel % fs))
    }

    /// The UMEM offset of frame `idx`'s first byte.
    pub(crate) fn frame_offset(&self, idx: u32) -> u64 {
        (self.layout.frames + idx as usize * self.layout.frame_size as usize) as u64
    }

    /// Gives the user's frame to the driver.
    pub(crate) fn give(&self, f: UmemFrame<'_>) -> u64 {
        self.check_mine(&f);
        let prev = self.owner[f.idx as usize].swap(DRIVER, Ordering::Relaxed);
        debug_assert_eq!(prev, USER, "a token is the user's");
        self.frame_offset(f.idx)
    }

    /// Takes back frame `idx` from the driver, which returned it; an error
    /// if the driver did not have it.
    pub(crate) fn take_back(&self, idx: u32) -> Result<UmemFrame<'_>> {
        match self.owner[idx as usize].compare_exchange(DRIVER, USER, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => Ok(UmemFrame { space: self, idx, len: 0 }),
            Err(_) => Err(broken(format!("the driver returned frame {idx}, which it did not have"))),
        }
    }

    /// Frames the driver has now.
    pub(crate) fn drivers_count(&self) -> usize {
        self.owner.iter().filter(|o| o.load(Ordering::Relaxed) == DRIVER).count()
    }

    pub(crate) fn alloc(&self) -> Option<UmemFrame<'_>> {
        let idx = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
        Some(UmemFrame { space: self, idx, len: 0 })
    }

    pub(crate) fn free(&self, f: UmemFrame<'_>) {
        self.check_mine(&f);
        self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(f.idx);
    }

    pub(crate) fn pooled(&self) -> usize {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Once the driver is done with the memory (the attach request
    /// completed): takes back the frames on the rings' unconsumed parts,
    /// then any other the driver had. Returns how many came from the fill,
    /// rx, tx and completion rings, and how many were on none (lost by the
    /// driver).
    pub(crate) fn reclaim(&self) -> [usize; 5] {
        let l = self.layout;
        let index = |off: usize| self.u32_at(off).load(Ordering::Acquire);
        let take = |area: RingArea| -> usize {
            let (from, to) = (index(area.consumer()), index(area.producer()));
            let n = to.wrapping_sub(from);
            if n > area.size {
                return 0;
            }
            let mut got = 0;
            for i in 0..n {
                // Every descriptor starts with its frame's offset (`addr`).
                let addr = u64::from_le_bytes(self.read::<8>(area.entry_at(from.wrapping_add(i))));
                if let Some(f) = self.frame_of(addr).and_then(|(idx, _)| self.take_back(idx).ok()) {
                    self.free(f);
                    got += 1;
                }
            }
            got
        };
        let rings = [take(l.fill), take(l.rx), take(l.tx), take(l.completion)];
        let mut missing = 0;
        for idx in 0..l.frame_count {
            if let Ok(f) = self.take_back(idx) {
                self.free(f);
                missing += 1;
            }
        }
        [rings[0], rings[1], rings[2], rings[3], missing]
    }

    fn check_mine(&self, f: &UmemFrame<'_>) {
        assert!(std::ptr::eq(f.space, self), "frame {} belongs to another UMEM", f.idx);
    }
}

/// A frame of a UMEM that the user owns: the only handle to it. Write the
/// frame to send into it ([`write`](UmemFrame::write), or
/// [`buf_mut`](UmemFrame::buf_mut) and [`set_len`](UmemFrame::set_len)),
/// then give it to [`TxRing::send`](super::TxRing::send); or give it to
/// [`RxRing::fill`](super::RxRing::fill) to receive into. Dropping a frame
/// loses it until the UMEM is detached: give it back with
/// [`Umem::free`](super::Umem::free) instead.
#[must_use = "a dropped frame is lost until the UMEM is detached; give it back with Umem::free"]
pub struct UmemFrame<'u> {
    space: &'u Space,
    idx: u32,
    /// Bytes of frame to send.
    len: usize,
}

impl fmt::Debug for UmemFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UmemFrame").field("index", &self.idx).field("len", &self.len).finish()
    }
}

impl UmemFrame<'_> {
    /// The frame's number in the UMEM.
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// Offset of the frame's first byte from the UMEM's start.
    pub fn offset(&self) -> u64 {
        self.space.frame_offset(self.idx)
    }

    /// The frame's size in bytes.
    pub fn capacity(&self) -> usize {
        self.space.layout.frame_size as usize
    }

    /// Bytes to send from the frame's start.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets how many bytes of the frame a send sends (at most its
    /// capacity).
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.capacity(), "a frame of {} bytes cannot send {len}", self.capacity());
        self.len = len;
    }

    /// The whole frame.
    pub fn buf(&self) -> &[u8] {
        let p = self.space.at(self.offset() as usize, self.capacity(), 1);
        // SAFETY: the frame lies in the mapping (checked by `at`), which
        // outlives 'u; this token is the only handle to it and the user
        // owns it, so the driver does not write it (it writes only frames
        // posted on the fill ring, and a frame leaves the user only by
        // consuming its token).
        unsafe { std::slice::from_raw_parts(p, self.capacity()) }
    }

    /// The whole frame, to write.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        let p = self.space.at(self.offset() as usize, self.capacity(), 1);
        // SAFETY: as for `buf`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(p, self.capacity()) }
    }

    /// The bytes to send: the first [`len`](Self::len).
    pub fn data(&self) -> &[u8] {
        &self.buf()[..self.len]
    }

    /// Copies `data` to the frame's start and sends that much.
    pub fn write(&mut self, data: &[u8]) {
        assert!(data.len() <= self.capacity(), "{} bytes do not fit a frame of {}", data.len(), self.capacity());
        self.buf_mut()[..data.len()].copy_from_slice(data);
        self.len = data.len();
    }
}
