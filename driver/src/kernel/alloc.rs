//! The global allocator: tagged non-paged pool, and fallible allocation.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use ndis_sys::{ExAllocatePoolWithTag, ExFreePoolWithTag, NonPagedPoolNx};

/// rawnic's pool tag; pool tools show it as `RawN`.
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"RawN");

/// Pool blocks are 16-byte aligned on x64.
const POOL_ALIGN: usize = 16;

/// Allocates from `NonPagedPoolNx` with `POOL_TAG`.
pub struct PoolAllocator;

// SAFETY: `alloc` returns blocks of at least `layout.size()` bytes aligned to
// `layout.align()` (pool blocks are 16-aligned; larger alignments are carved
// out of a larger block whose start is stored just before the returned
// pointer), or null on failure; `dealloc` frees exactly what `alloc` returned.
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= POOL_ALIGN {
            // SAFETY: plain pool allocation; a null return is passed on.
            return unsafe { ExAllocatePoolWithTag(NonPagedPoolNx, layout.size(), POOL_TAG) }.cast();
        }
        let Some(total) = layout.size().checked_add(layout.align() + POOL_ALIGN) else {
            return core::ptr::null_mut();
        };
        // SAFETY: as above.
        let base: *mut u8 = unsafe { ExAllocatePoolWithTag(NonPagedPoolNx, total, POOL_TAG) }.cast();
        if base.is_null() {
            return base;
        }
        let start = base as usize + core::mem::size_of::<usize>();
        let aligned = (start + layout.align() - 1) & !(layout.align() - 1);
        let p = aligned as *mut u8;
        // SAFETY: `aligned - 8 >= base`, so the word before `p` lies inside
        // the allocation.
        let word = unsafe { p.cast::<usize>().sub(1) };
        // SAFETY: as above; and `aligned + size <= base + total`, so the
        // block after it does too.
        unsafe { word.write_unaligned(base as usize) };
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let base = if layout.align() <= POOL_ALIGN {
            ptr
        } else {
            // SAFETY: `alloc` stored the block's start in the word just
            // before `ptr`, inside the same allocation.
            let word = unsafe { ptr.cast::<usize>().sub(1) };
            // SAFETY: that word, written by `alloc`.
            unsafe { word.read_unaligned() as *mut u8 }
        };
        // SAFETY: `base` came from `ExAllocatePoolWithTag` with `POOL_TAG`.
        unsafe { ExFreePoolWithTag(base.cast(), POOL_TAG) }
    }
}

/// Allocation failed: the caller reports `STATUS_INSUFFICIENT_RESOURCES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocError;

/// `Box::new` that gives the value back instead of panicking when memory
/// runs out.
pub fn try_box_or_back<T>(value: T) -> Result<alloc::boxed::Box<T>, T> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(alloc::boxed::Box::new(value));
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    let Some(p) = NonNull::new(p) else { return Err(value) };
    // SAFETY: `p` is a fresh, properly aligned block for one `T`; writing
    // initialises it.
    unsafe { p.as_ptr().write(value) };
    // SAFETY: `Box::from_raw` takes ownership of a block from the global
    // allocator with `T`'s layout, initialised just above.
    Ok(unsafe { alloc::boxed::Box::from_raw(p.as_ptr()) })
}

/// `Box::new` that reports failure instead of panicking.
pub fn try_box<T>(value: T) -> Result<alloc::boxed::Box<T>, AllocError> {
    try_box_or_back(value).map_err(|_| AllocError)
}

/// `Arc::new` that reports failure instead of panicking.
pub fn try_arc<T>(value: T) -> Result<alloc::sync::Arc<T>, AllocError> {
    alloc::sync::Arc::try_new(value).map_err(|_| AllocError)
}

/// A `Vec` with `capacity` reserved, or an error.
pub fn try_vec<T>(capacity: usize) -> Result<alloc::vec::Vec<T>, AllocError> {
    let mut v = alloc::vec::Vec::new();
    v.try_reserve_exact(capacity).map_err(|_| AllocError)?;
    Ok(v)
}

/// `n` zero bytes.
pub fn try_zeroed(n: usize) -> Result<alloc::vec::Vec<u8>, AllocError> {
    let mut v = try_vec(n)?;
    v.resize(n, 0);
    Ok(v)
}

/// A copy of `s`.
pub fn try_copy(s: &[u8]) -> Result<alloc::vec::Vec<u8>, AllocError> {
    let mut v = try_vec(s.len())?;
    v.extend_from_slice(s);
    Ok(v)
}

/// A copy of `s`.
pub fn try_string(s: &str) -> Result<alloc::string::String, AllocError> {
    let mut out = alloc::string::String::new();
    out.try_reserve_exact(s.len()).map_err(|_| AllocError)?;
    out.push_str(s);
    Ok(out)
}
