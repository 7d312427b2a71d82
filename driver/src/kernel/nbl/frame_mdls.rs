//! The partial MDLs of a UMEM's frames, built in one block of the driver's
//! non-paged pool: one allocation per attach instead of an `IoAllocateMdl`
//! per frame, so that an attach under low resources fails (or not) on one
//! allocation, and costs one.
//!
//! Each MDL is set up as the WDK's `MmInitializeMdl` macro does (an MDL
//! header followed by its PFN array, `Size` covering both) and then made a
//! partial MDL of the attach IRP's locked MDL by `IoBuildPartialMdl`, which
//! takes a caller-allocated target of that kind ("the caller can allocate
//! it with IoAllocateMdl, or from non-paged pool with MmInitializeMdl").

use super::super::alloc::{AllocError, try_vec};
use alloc::vec::Vec;
use core::mem::size_of;
use core::ptr;
use ndis_sys::*;

const PAGE: usize = 4096;

/// Pages `len` bytes at `va` span (`ADDRESS_AND_SIZE_TO_SPAN_PAGES`).
fn span_pages(va: usize, len: usize) -> usize {
    ((va & (PAGE - 1)) + len).div_ceil(PAGE)
}

/// `count` MDLs in one pool block, each with room for `pages` PFNs.
///
/// # Invariants
/// `base` points at `count * stride` bytes of `_block` (8-aligned, never
/// reallocated or otherwise touched until it drops); MDL `k` is at
/// `base + k * stride`. `built` MDLs, `0..built`, are partial MDLs
/// (`IoBuildPartialMdl`); no reference to any of them is made while the
/// kernel or NDIS may use it (only `drop` reads one, when nothing does).
pub struct FrameMdls {
    _block: Vec<u64>,
    base: *mut u8,
    stride: usize,
    count: usize,
    built: usize,
}

// SAFETY: pool memory, reachable from any thread; written only while
// built (under `&mut self`), read by the kernel afterwards.
unsafe impl Send for FrameMdls {}

impl FrameMdls {
    /// Room for `count` MDLs of frames of `frame_size` bytes, which start on
    /// a multiple of their size (so each spans the same number of pages).
    pub fn new(count: usize, frame_size: usize) -> Result<Self, AllocError> {
        let pages = span_pages(0, frame_size).max(1);
        let stride = size_of::<MDL>() + pages * size_of::<u64>();
        // `Size` is a CSHORT.
        if stride > i16::MAX as usize {
            return Err(AllocError);
        }
        let words = count.checked_mul(stride).ok_or(AllocError)? / size_of::<u64>();
        let mut block: Vec<u64> = try_vec(words)?;
        block.resize(words, 0);
        let base = block.as_mut_ptr().cast::<u8>();
        Ok(FrameMdls { _block: block, base, stride, count, built: 0 })
    }

    /// No MDLs (what a pool leaking its MDLs leaves in their place).
    pub fn empty() -> Self {
        FrameMdls { _block: Vec::new(), base: ptr::null_mut(), stride: 0, count: 0, built: 0 }
    }

    /// Builds the next MDL as a partial MDL of `source` for the `len`
    /// bytes at (system or user) address `va`, which `source` describes.
    ///
    /// # Safety
    /// `source` is a locked MDL (the attach IRP's) covering `va..va+len`,
    /// and stays so until every built MDL is out of use (the caller's
    /// `ZcPool` is dropped before the IRP completes).
    pub unsafe fn build_next(&mut self, source: *mut MDL, va: usize, len: usize) -> Result<(), AllocError> {
        if self.built == self.count || span_pages(va, len) * size_of::<u64>() + size_of::<MDL>() > self.stride {
            return Err(AllocError);
        }
        let mdl = self.base.wrapping_add(self.built * self.stride).cast::<MDL>();
        let header = MDL {
            Next: ptr::null_mut(),
            Size: self.stride as CSHORT,
            MdlFlags: 0,
            AllocationProcessorNumber: 0,
            Reserved: 0,
            Process: ptr::null_mut(),
            MappedSystemVa: ptr::null_mut(),
            StartVa: (va & !(PAGE - 1)) as PVOID,
            ByteCount: len as u32,
            ByteOffset: (va & (PAGE - 1)) as u32,
        };
        // SAFETY: MDL `built` lies inside the block (`built < count`,
        // invariant) and is 8-aligned (the block is, and so is `stride`);
        // nothing else uses it yet. This is `MmInitializeMdl`.
        unsafe { mdl.write(header) };
        // SAFETY: the target is an MDL in non-paged pool with room for the
        // range's PFNs (checked above); the source covers the range (the
        // caller).
        unsafe { IoBuildPartialMdl(source, mdl, va as PVOID, len as u32) };
        self.built += 1;
        Ok(())
    }

    /// The built MDLs, as a view to keep in locals (`ZcFiller`).
    #[inline(always)]
    pub fn table(&self) -> MdlTable<'_> {
        MdlTable { base: self.base, stride: self.stride, built: self.built, _mdls: core::marker::PhantomData }
    }
}

/// Where `FrameMdls`' built MDLs are, borrowed from it.
#[derive(Clone, Copy)]
pub struct MdlTable<'a> {
    base: *mut u8,
    stride: usize,
    built: usize,
    _mdls: core::marker::PhantomData<&'a FrameMdls>,
}

impl MdlTable<'_> {
    /// MDL `k`, if built.
    #[inline(always)]
    pub fn get(&self, k: usize) -> Option<*mut MDL> {
        (k < self.built).then(|| self.base.wrapping_add(k * self.stride).cast::<MDL>())
    }
}

impl Drop for FrameMdls {
    fn drop(&mut self) {
        for k in 0..self.built {
            let mdl = self.base.wrapping_add(k * self.stride).cast::<MDL>();
            // SAFETY: a built MDL (invariant) that nothing uses any more (the
            // pool that sent it is dropping; its NBLs are all back).
            let m = unsafe { &*mdl };
            let (flags, va) = (m.MdlFlags, m.MappedSystemVa);
            if flags & MDL_PARTIAL_HAS_BEEN_MAPPED != 0 {
                // `MmPrepareMdlForReuse`: a partial MDL someone mapped has a
                // system mapping of its own, which goes before its memory.
                // SAFETY: that mapping, of this MDL, still in place.
                unsafe { MmUnmapLockedPages(va, mdl) };
                // SAFETY: as above; the MDL is ours.
                unsafe { (*mdl).MdlFlags = flags & !MDL_PARTIAL_HAS_BEEN_MAPPED };
            }
        }
    }
}
