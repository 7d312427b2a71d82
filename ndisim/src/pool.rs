//! Tagged pool: `ExAllocatePoolWithTag` / `ExFreePoolWithTag`, with the
//! statistics, leak report and double-free detection of Driver Verifier's
//! pool tracking.

use crate::verifier::lock;
use std::alloc::Layout;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A block of pool the driver holds.
#[derive(Debug, Clone, Copy)]
pub struct PoolBlock {
    pub addr: usize,
    pub size: usize,
    pub tag: u32,
    pub pool_type: u32,
}

/// Pool statistics of one simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Allocations made.
    pub allocations: u64,
    /// Frees made.
    pub frees: u64,
    /// Bytes allocated now.
    pub bytes: usize,
    /// Most bytes allocated at once.
    pub peak_bytes: usize,
}

#[derive(Default)]
struct Inner {
    live: HashMap<usize, PoolBlock>,
    freed: HashSet<usize>,
    stats: PoolStats,
}

pub(crate) struct Pool {
    inner: Mutex<Inner>,
}

/// Pool blocks are 16-byte aligned on x64.
const ALIGN: usize = 16;
/// What fresh pool is filled with, so a driver that relies on zeroed
/// memory is caught.
const FILL: u8 = 0xC5;

/// A tag as the four characters pool tools show.
pub fn tag_str(tag: u32) -> String {
    tag.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect()
}

impl Pool {
    pub(crate) fn new() -> Self {
        Pool { inner: Mutex::new(Inner::default()) }
    }

    pub(crate) fn alloc(&self, size: usize, tag: u32, pool_type: u32) -> *mut u8 {
        let Ok(layout) = Layout::from_size_align(size.max(1), ALIGN) else { return std::ptr::null_mut() };
        // SAFETY: a non-zero size layout.
        let p = unsafe { std::alloc::alloc(layout) };
        if p.is_null() {
            return p;
        }
        // SAFETY: `p` is a fresh block of `size` bytes.
        unsafe { std::ptr::write_bytes(p, FILL, size) };
        let mut g = lock(&self.inner);
        g.freed.remove(&(p as usize));
        g.live.insert(p as usize, PoolBlock { addr: p as usize, size, tag, pool_type });
        g.stats.allocations += 1;
        g.stats.bytes += size;
        g.stats.peak_bytes = g.stats.peak_bytes.max(g.stats.bytes);
        p
    }

    /// Frees `p`. `Err` says what was wrong (and nothing was freed unless
    /// the problem is only the tag).
    pub(crate) fn free(&self, p: usize, tag: Option<u32>) -> Result<(), FreeError> {
        let mut g = lock(&self.inner);
        let Some(b) = g.live.remove(&p) else {
            return Err(if g.freed.contains(&p) { FreeError::DoubleFree } else { FreeError::NotAllocated });
        };
        g.freed.insert(p);
        g.stats.frees += 1;
        g.stats.bytes -= b.size;
        drop(g);
        // SAFETY: the block came from `alloc` with this layout and is
        // freed once (it was in `live`).
        unsafe { std::alloc::dealloc(p as *mut u8, Layout::from_size_align_unchecked(b.size.max(1), ALIGN)) };
        match tag {
            // The protected-pool bit is not part of the tag.
            Some(t) if t & 0x7FFF_FFFF != b.tag & 0x7FFF_FFFF => Err(FreeError::TagMismatch(b.tag)),
            _ => Ok(()),
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        lock(&self.inner).stats
    }

    pub(crate) fn live(&self) -> Vec<PoolBlock> {
        let mut v: Vec<PoolBlock> = lock(&self.inner).live.values().copied().collect();
        v.sort_by_key(|b| b.addr);
        v
    }
}

#[derive(Debug)]
pub(crate) enum FreeError {
    DoubleFree,
    NotAllocated,
    TagMismatch(u32),
}
