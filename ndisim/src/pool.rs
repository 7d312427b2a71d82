//! Tagged pool: `ExAllocatePoolWithTag` / `ExFreePoolWithTag`, with the
//! statistics, leak report and double-free detection of Driver Verifier's
//! pool tracking, and its special pool.
//!
//! Special pool (`SimBuilder::special_pool`): every block gets pages of its
//! own, placed so that it ends where a guard page (no access) begins; a
//! freed block's pages are made inaccessible and kept so for the next
//! `QUARANTINE_BLOCKS` frees. An overrun past the end, or a use after free,
//! then faults at the guilty instruction, and ndisim's fault handler
//! reports it with the driver's symbol (exit status 4), instead of the
//! heap being corrupted silently.

use crate::verifier::lock;
use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// By address, so that the block holding an address is found.
    live: BTreeMap<usize, PoolBlock>,
    freed: HashSet<usize>,
    stats: PoolStats,
    /// Special-pool mappings of live or quarantined blocks: block address to
    /// (mapping base, mapping length).
    maps: HashMap<usize, (usize, usize)>,
    /// Freed special-pool blocks still mapped without access, oldest first.
    quarantine: VecDeque<usize>,
}

pub(crate) struct Pool {
    inner: Mutex<Inner>,
    special: AtomicBool,
    /// What fresh blocks are filled with (`FILL`, or another byte under
    /// `SimBuilder::garbage`).
    fill: u8,
}

/// Pool blocks are 16-byte aligned on x64.
const ALIGN: usize = 16;
/// What fresh pool is filled with, so a driver that relies on zeroed
/// memory is caught.
const FILL: u8 = 0xC5;
const PAGE: usize = 4096;
/// What a freed block is filled with (outside special pool, whose freed
/// pages are made inaccessible instead): data NDIS still reads there
/// (a sent NBL's frame) then fails its checksum at completion, and a use
/// after free reads a pattern rather than what the driver left.
const FREED: u8 = 0xDF;
/// What the slack after a special-pool block is filled with.
const SLACK: u8 = 0xD7;
/// Freed special-pool blocks kept inaccessible before their pages go back.
const QUARANTINE_BLOCKS: usize = 2048;

/// A tag as the four characters pool tools show.
pub fn tag_str(tag: u32) -> String {
    tag.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect()
}

impl Pool {
    /// A pool whose fresh blocks hold `FILL ^ garbage`.
    pub(crate) fn new(garbage: u8) -> Self {
        Pool { inner: Mutex::new(Inner::default()), special: AtomicBool::new(false), fill: FILL ^ garbage }
    }

    /// What fresh blocks are filled with.
    pub(crate) fn fill(&self) -> u8 {
        self.fill
    }

    /// Whether special pool is on.
    pub(crate) fn is_special(&self) -> bool {
        self.special.load(Ordering::Acquire)
    }

    /// Turns special pool on (or off) for every later allocation.
    pub(crate) fn set_special(&self, on: bool) {
        self.special.store(on, Ordering::Release);
    }

    /// Pages of their own for `size` bytes, ending at a guard page: returns
    /// (block, mapping base, mapping length), the block 16-aligned and as
    /// close to the guard as that allows.
    fn special_alloc(size: usize) -> Option<(usize, usize, usize)> {
        let data = size.max(1).div_ceil(PAGE) * PAGE;
        let len = data + PAGE;
        let base = map_rw(len)? as usize;
        // SAFETY: the last page of our own mapping becomes the guard.
        unsafe { libc::mprotect((base + data) as *mut libc::c_void, PAGE, libc::PROT_NONE) };
        let block = (base + data - size.max(1)) & !(ALIGN - 1);
        Some((block, base, len))
    }

    pub(crate) fn alloc(&self, size: usize, tag: u32, pool_type: u32) -> *mut u8 {
        let special = self.special.load(Ordering::Acquire);
        let (p, map) = if special {
            let Some((block, base, len)) = Self::special_alloc(size) else { return std::ptr::null_mut() };
            (block as *mut u8, Some((base, len)))
        } else {
            let Ok(layout) = Layout::from_size_align(size.max(1), ALIGN) else { return std::ptr::null_mut() };
            // SAFETY: a non-zero size layout.
            let p = unsafe { std::alloc::alloc(layout) };
            if p.is_null() {
                return p;
            }
            (p, None)
        };
        // SAFETY: `p` is a fresh block of `size` bytes.
        unsafe { std::ptr::write_bytes(p, self.fill, size) };
        if let Some((base, len)) = map {
            // The slack between the block's end and the guard page (under 16
            // bytes: the block is 16-aligned) gets a pattern, checked at free.
            let end = p as usize + size;
            // SAFETY: inside our mapping, before the guard page.
            unsafe { std::ptr::write_bytes(end as *mut u8, SLACK, base + len - PAGE - end) };
        }
        let mut g = lock(&self.inner);
        g.freed.remove(&(p as usize));
        if let Some(m) = map {
            g.maps.insert(p as usize, m);
        }
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
        if let Some(&(base, len)) = g.maps.get(&p) {
            let end = p + b.size;
            // SAFETY: the slack inside our mapping, still accessible.
            let slack = unsafe { std::slice::from_raw_parts(end as *const u8, base + len - PAGE - end) };
            if let Some(i) = slack.iter().position(|&x| x != SLACK) {
                drop(g);
                // What Windows' special pool does: stop the machine.
                crate::kernel::bugcheck_with(
                    0xC1,
                    [p, b.size, i, 0x24],
                    &format!(
                        "SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION: the driver wrote {} byte(s) past the end of a {}-byte block at {p:#x} (tag {:?})",
                        i + 1,
                        b.size,
                        tag_str(b.tag)
                    ),
                );
            }
            // Special pool: no access from now on, for a while.
            // SAFETY: our own mapping of this block.
            unsafe { libc::mprotect(base as *mut libc::c_void, len, libc::PROT_NONE) };
            g.quarantine.push_back(p);
            while g.quarantine.len() > QUARANTINE_BLOCKS {
                let old = g.quarantine.pop_front().expect("not empty");
                if let Some((ob, ol)) = g.maps.remove(&old) {
                    g.freed.remove(&old);
                    // SAFETY: a quarantined mapping nobody may use.
                    unsafe { libc::munmap(ob as *mut libc::c_void, ol) };
                }
            }
        } else {
            drop(g);
            // SAFETY: the block came from `alloc` with this layout and is
            // freed once (it was in `live`); it is written before it goes.
            unsafe { std::ptr::write_bytes(p as *mut u8, FREED, b.size) };
            // SAFETY: as above.
            unsafe { std::alloc::dealloc(p as *mut u8, Layout::from_size_align_unchecked(b.size.max(1), ALIGN)) };
        }
        match tag {
            // The protected-pool bit is not part of the tag.
            Some(t) if t & 0x7FFF_FFFF != b.tag & 0x7FFF_FFFF => Err(FreeError::TagMismatch(b.tag)),
            _ => Ok(()),
        }
    }

    /// The size of the live block at `p`.
    pub(crate) fn size_of(&self, p: usize) -> Option<usize> {
        lock(&self.inner).live.get(&p).map(|b| b.size)
    }

    /// The live block that holds all of `addr..addr + len`.
    pub(crate) fn containing(&self, addr: usize, len: usize) -> Option<PoolBlock> {
        let g = lock(&self.inner);
        let (_, b) = g.live.range(..=addr).next_back()?;
        (addr.checked_add(len)? <= b.addr + b.size).then_some(*b)
    }

    pub(crate) fn stats(&self) -> PoolStats {
        lock(&self.inner).stats
    }

    pub(crate) fn live(&self) -> Vec<PoolBlock> {
        let mut v: Vec<PoolBlock> = lock(&self.inner).live.values().copied().collect();
        v.sort_by_key(|b| b.addr);
        v
    }

    /// The distinct sizes of the live blocks, smallest first.
    pub(crate) fn live_sizes(&self) -> Vec<usize> {
        let mut v: Vec<usize> = lock(&self.inner).live.values().map(|b| b.size).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// What a faulting address is to special pool (from the fault handler:
    /// no allocation, and no waiting for the lock).
    pub(crate) fn describe(&self, addr: usize) -> Option<&'static str> {
        let g = self.inner.try_lock().ok()?;
        for (&block, &(base, len)) in g.maps.iter() {
            if addr >= base && addr < base + len {
                return Some(if !g.live.contains_key(&block) {
                    "a special-pool block that was freed (use after free)"
                } else if addr >= base + len - PAGE {
                    "the guard page after a special-pool block (a write or read past its end)"
                } else {
                    "a special-pool block"
                });
            }
        }
        None
    }

    /// Gives back everything the pool still holds: the simulation is over
    /// (the driver unloaded, its threads joined), so nothing can use it.
    /// Special pool's quarantine is unmapped, and the blocks the driver
    /// leaked (reported already) are freed, so a process that runs many
    /// simulations does not keep them.
    pub(crate) fn release_all(&self) {
        let mut g = lock(&self.inner);
        while let Some(old) = g.quarantine.pop_front() {
            if let Some((ob, ol)) = g.maps.remove(&old) {
                // SAFETY: a quarantined mapping nobody may use.
                unsafe { libc::munmap(ob as *mut libc::c_void, ol) };
            }
        }
        for (p, b) in std::mem::take(&mut g.live) {
            match g.maps.remove(&p) {
                Some((base, len)) => {
                    // SAFETY: a leaked special-pool block's own mapping; the
                    // driver that had it is gone.
                    unsafe { libc::munmap(base as *mut libc::c_void, len) };
                }
                None => {
                    // SAFETY: a block from `alloc` with this layout, freed
                    // once (it left `live` above); the driver that had it is
                    // gone.
                    unsafe {
                        std::alloc::dealloc(p as *mut u8, Layout::from_size_align_unchecked(b.size.max(1), ALIGN))
                    };
                }
            }
        }
        g.freed.clear();
    }
}

#[derive(Debug)]
pub(crate) enum FreeError {
    DoubleFree,
    NotAllocated,
    TagMismatch(u32),
}

/// Fresh private anonymous read-write pages of `len` bytes (special pool
/// blocks, export thunks, alternate signal stacks); `None` when the system
/// has none.
pub(crate) fn map_rw(len: usize) -> Option<*mut libc::c_void> {
    // SAFETY: a fresh private anonymous mapping; nothing else uses it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping of `/proc/self/maps` that holds `addr`, if any.
    fn mapped(addr: usize) -> bool {
        std::fs::read_to_string("/proc/self/maps").unwrap().lines().any(|l| {
            let (lo, hi) = l.split_whitespace().next().unwrap().split_once('-').unwrap();
            (usize::from_str_radix(lo, 16).unwrap()..usize::from_str_radix(hi, 16).unwrap()).contains(&addr)
        })
    }

    #[test]
    fn live_sizes_are_the_distinct_sizes_of_the_live_blocks() {
        let p = Pool::new(0);
        let a = p.alloc(48, 0x4b4c_4e52, 0) as usize;
        let _b = p.alloc(48, 0x4b4c_4e52, 0);
        let c = p.alloc(24, 0x4b4c_4e52, 0) as usize;
        let _d = p.alloc(200, 0x4b4c_4e52, 0);
        assert_eq!(p.live_sizes(), vec![24, 48, 200]);
        p.free(c, None).unwrap();
        p.free(a, None).unwrap();
        assert_eq!(p.live_sizes(), vec![48, 200], "a size stays while a block of it lives");
        p.release_all();
        assert!(p.live_sizes().is_empty());
    }

    #[test]
    fn at_the_end_leaked_blocks_and_the_quarantine_are_given_back() {
        let p = Pool::new(0);
        let heap = p.alloc(100, 0x4b4c_4e52, 0);
        p.set_special(true);
        let leaked = p.alloc(5000, 0x4b4c_4e52, 0) as usize;
        let freed = p.alloc(10, 0x4b4c_4e52, 0) as usize;
        p.free(freed, None).unwrap();
        assert!(mapped(leaked) && mapped(freed), "a live block and a quarantined one stay mapped");
        assert_eq!(p.live().len(), 2);
        p.release_all();
        assert!(p.live().is_empty());
        let g = lock(&p.inner);
        assert!(g.maps.is_empty() && g.quarantine.is_empty() && g.freed.is_empty());
        // (Whether their pages are gone is not asked of /proc: another
        // test's thread may map something there at once.)
        drop(g);
        assert!(!heap.is_null());
    }
}
