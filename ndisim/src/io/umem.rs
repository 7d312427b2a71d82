//! What the memory manager knows of user memory the driver reaches: the
//! user regions IRPs brought in, the locks on their pages (an IRP's MDL,
//! locked by the I/O manager until the IRP is retired, or an MDL the driver
//! locked with `MmProbeAndLockPages`), the system mappings made of them,
//! and every MDL the driver allocated with `IoAllocateMdl`.
//!
//! A system mapping of region memory is a second mapping of the region's
//! memfd, never its user address. When the lock it was made under goes,
//! the mapping is revoked: made inaccessible in place and kept reserved for
//! the next `REVOKED_KEPT` revocations, so that a late access faults (and
//! the fault report names the mapping) instead of reaching whatever reused
//! the address.

mod sent;

use super::UserRegion;
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use sent::Seen;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

const PAGE: usize = 4096;
/// Revoked mappings kept reserved (inaccessible) before their addresses
/// are given back.
const REVOKED_KEPT: usize = 256;

/// How the pages of a lock were locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// By the I/O manager for a direct IRP (the IRP's address).
    Irp(usize),
    /// By the driver, `MmProbeAndLockPages`.
    Probe,
}

struct RegionRec {
    region: Weak<UserRegion>,
    id: usize,
    mapped: usize,
    /// The file whose IRP brought it in.
    file: usize,
}

struct LockRec {
    region_base: usize,
    region_id: usize,
    kind: LockKind,
    /// What holds the region while the driver's probe lock does.
    hold: Option<Arc<UserRegion>>,
}

struct SysMap {
    len: usize,
    region_id: usize,
    /// The lock (its MDL) the mapping was made under.
    lock: usize,
    /// The MDL whose mapping it is.
    mdl: usize,
}

#[derive(Clone, Copy)]
struct Revoked {
    base: usize,
    len: usize,
    region_id: usize,
    /// 1: unlocked with its pages; 2: unmapped by the driver.
    why: u8,
}

/// An MDL the driver allocated.
pub(crate) struct MdlRec {
    /// Pages its PFN array has room for.
    pub pages: usize,
    /// The MDL `IoBuildPartialMdl` built it from.
    pub source: Option<usize>,
    /// NBLs with NDIS that it is in.
    pub in_ndis: u32,
    /// Built in the driver's own pool (`MmInitializeMdl`), not allocated
    /// by `IoAllocateMdl`: it goes with its pool block.
    pub in_pool: bool,
    /// Where its data was the last time a send or a completion looked.
    seen: Seen,
}

impl MdlRec {
    fn new(pages: usize, in_pool: bool) -> Self {
        MdlRec { pages, source: None, in_ndis: 0, in_pool, seen: Seen::NONE }
    }
}

/// Hashes an address (the keys here): a multiply, as the send path asks
/// per NBL and SipHash's cost there showed in the benchmarks.
#[derive(Default, Clone, Copy)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_usize(&mut self, v: usize) {
        self.0 = (v as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

type AddrMap<V> = HashMap<usize, V, std::hash::BuildHasherDefault<AddrHasher>>;
type AddrSet = HashSet<usize, std::hash::BuildHasherDefault<AddrHasher>>;

#[derive(Default)]
struct St {
    /// Bumped by every change of `regions`, `locks`, `maps` or `revoked`
    /// (what `place_of` reads): a `Seen` of an older one is stale.
    generation: u64,
    regions: BTreeMap<usize, RegionRec>,
    locks: AddrMap<LockRec>,
    maps: BTreeMap<usize, SysMap>,
    revoked: VecDeque<Revoked>,
    mdls: AddrMap<MdlRec>,
    /// The `in_pool` ones among `mdls`, by address.
    pool_mdls: BTreeSet<usize>,
    freed_mdls: AddrSet,
    /// NBLs with NDIS that hold driver MDLs. The first MDL is in the
    /// NBL's header (`NblHdr::sent_mdl`), the others (rare) in `sent_more`.
    sent: usize,
    sent_more: AddrMap<Vec<usize>>,
}

pub(crate) struct Umem {
    st: Mutex<St>,
    /// Regions, locks and MDLs known: 0 lets the send path skip all this.
    active: AtomicUsize,
}

/// Where a range of memory is, to the memory manager.
pub(crate) enum Place {
    /// Not region memory, nor a mapping of it.
    Other,
    /// Region memory, or a live mapping of it, under a lock.
    Locked,
    /// Unlocked region memory, or a revoked mapping: what, in words.
    Gone(String),
}

impl Umem {
    pub(crate) fn new() -> Self {
        Umem { st: Mutex::new(St { generation: 1, ..St::default() }), active: AtomicUsize::new(0) }
    }

    fn bump(&self, st: &St) {
        let n = st.regions.len() + st.locks.len() + st.mdls.len() + st.maps.len() + st.sent;
        self.active.store(n, Ordering::Release);
    }

    /// Whether anything is tracked (the send path's fast check).
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire) != 0
    }

    /// The I/O manager locked `region` for IRP `irp` of `file`, described
    /// by `mdl`.
    pub(crate) fn lock_irp(&self, region: &Arc<UserRegion>, mdl: usize, irp: usize, file: usize) {
        let mut st = lock(&self.st);
        let base = region.as_ptr() as usize;
        st.freed_mdls.remove(&mdl);
        // Regions that are gone (their addresses may be reused).
        st.regions.retain(|_, r| r.region.strong_count() > 0);
        st.regions.insert(
            base,
            RegionRec {
                region: Arc::downgrade(region),
                id: region.id(),
                mapped: region.len().div_ceil(PAGE) * PAGE,
                file,
            },
        );
        st.locks
            .insert(mdl, LockRec { region_base: base, region_id: region.id(), kind: LockKind::Irp(irp), hold: None });
        st.generation += 1;
        self.bump(&st);
    }

    /// The live region whose user mapping holds `[va, va + len)` (a region
    /// that is gone may have had its addresses reused: by another region,
    /// or by the pages of an IRP's buffer under special pool).
    fn region_at(st: &St, va: usize, len: usize) -> Option<(usize, &RegionRec)> {
        let (&base, r) = st.regions.range(..=va).next_back()?;
        (va + len <= base + r.mapped && r.region.strong_count() > 0).then_some((base, r))
    }

    /// Locks region memory for `MmProbeAndLockPages`: `Ok(region id)`, or
    /// `Err` when `[va, va + len)` is no region's live memory.
    pub(crate) fn lock_probe(&self, mdl: usize, va: usize, len: usize) -> Result<usize, ()> {
        let mut st = lock(&self.st);
        let Some((base, r)) = Self::region_at(&st, va, len.max(1)) else { return Err(()) };
        let Some(region) = r.region.upgrade() else { return Err(()) };
        let id = r.id;
        st.locks.insert(mdl, LockRec { region_base: base, region_id: id, kind: LockKind::Probe, hold: Some(region) });
        st.generation += 1;
        self.bump(&st);
        Ok(id)
    }

    /// The lock `mdl`'s pages are under: its own, or its source's (for a
    /// partial MDL, through any number of partials).
    fn lock_of(st: &St, mut mdl: usize) -> Option<usize> {
        for _ in 0..64 {
            if st.locks.contains_key(&mdl) {
                return Some(mdl);
            }
            mdl = st.mdls.get(&mdl)?.source?;
        }
        None
    }

    /// The live region `mdl` (which describes `[va, va + len)`) is memory
    /// of, when no lock holds its pages: neither its own nor, for a partial MDL, that
    /// of the MDL it was built from.
    pub(crate) fn unlocked_region(&self, mdl: usize, va: usize, len: usize) -> Option<usize> {
        let st = lock(&self.st);
        let (_, r) = Self::region_at(&st, va, len.max(1))?;
        Self::lock_of(&st, mdl).is_none().then_some(r.id)
    }

    /// Whether `mdl` holds a lock and of what kind.
    pub(crate) fn lock_kind(&self, mdl: usize) -> Option<LockKind> {
        lock(&self.st).locks.get(&mdl).map(|l| l.kind)
    }

    /// A system mapping for `mdl`, which describes `[va, va + len)` of a
    /// region: `None` when it is not region memory (the caller maps it as
    /// before), `Some(Err)` when its pages are not locked, else the
    /// mapping's address for `va`.
    pub(crate) fn map(&self, mdl: usize, va: usize, len: usize) -> Option<Result<usize, String>> {
        let mut st = lock(&self.st);
        let (base, r) = Self::region_at(&st, va, len.max(1))?;
        let id = r.id;
        let Some(lk) = Self::lock_of(&st, mdl) else {
            return Some(Err(format!("the MDL describes memory of user region #{id} whose pages it does not lock")));
        };
        let Some(region) = r.region.upgrade() else { return Some(Err(format!("user region #{id} is gone"))) };
        let first = (va - base) & !(PAGE - 1);
        let span = (va + len.max(1)).div_ceil(PAGE) * PAGE - (base + first);
        // SAFETY: a new shared mapping of the region's memfd at a page
        // offset inside it; nothing else is at the address the system picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                region.fd().as_raw_fd(),
                first as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Some(Err(format!("mmap of user region #{id} failed: {}", std::io::Error::last_os_error())));
        }
        st.maps.insert(p as usize, SysMap { len: span, region_id: id, lock: lk, mdl });
        st.generation += 1;
        self.bump(&st);
        Some(Ok(p as usize + (va & (PAGE - 1))))
    }

    /// Revokes the mapping at `base` (kept reserved, inaccessible).
    fn revoke(st: &mut St, base: usize, why: u8) -> Option<SysMap> {
        let m = st.maps.remove(&base)?;
        st.generation += 1;
        // SAFETY: our own mapping, replaced in place by an inaccessible
        // one; nothing of ndisim's points into it, and the driver must not.
        let p = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                m.len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            // SAFETY: as above; at least it goes.
            unsafe { libc::munmap(base as *mut libc::c_void, m.len) };
        }
        st.revoked.push_back(Revoked { base, len: m.len, region_id: m.region_id, why });
        while st.revoked.len() > REVOKED_KEPT {
            let old = st.revoked.pop_front().expect("non-empty");
            // SAFETY: a reserved range no one may use, given back.
            unsafe { libc::munmap(old.base as *mut libc::c_void, old.len) };
        }
        Some(m)
    }

    /// `MmUnmapLockedPages` of a region mapping: `Some(true)` when `base`
    /// is `mdl`'s own live mapping (now revoked), `Some(false)` when it is
    /// a region mapping but not `mdl`'s, `None` when no region mapping.
    pub(crate) fn unmap(&self, base: usize, mdl: usize) -> Option<bool> {
        let mut st = lock(&self.st);
        let page = base & !(PAGE - 1);
        let m = st.maps.get(&page)?;
        if m.mdl != mdl {
            return Some(false);
        }
        Self::revoke(&mut st, page, 2);
        self.bump(&st);
        Some(true)
    }

    /// The lock held by `mdl` goes (the IRP was retired, or
    /// `MmUnlockPages`): its mappings are revoked. Reports a mapping of
    /// a partial MDL still live, and NBLs with NDIS that still describe
    /// these pages. `call` names who unlocked.
    pub(crate) fn unlock(&self, mdl: usize, call: &str) {
        let mut st = lock(&self.st);
        let Some(l) = st.locks.remove(&mdl) else { return };
        st.generation += 1;
        if let LockKind::Irp(_) = l.kind {
            // The I/O manager frees the IRP's MDL next.
            st.freed_mdls.insert(mdl);
        }
        let mut problems = Vec::new();
        let bases: Vec<usize> = st.maps.iter().filter(|(_, m)| m.lock == mdl).map(|(&b, _)| b).collect();
        for b in bases {
            let m = Self::revoke(&mut st, b, 1).expect("listed");
            if m.mdl != mdl {
                problems.push((
                    m.mdl,
                    format!(
                        "the partial MDL's own system mapping of user region #{} (MDL_PARTIAL_HAS_BEEN_MAPPED) outlived the lock on its pages: release it (MmPrepareMdlForReuse or IoFreeMdl) before the pages are unlocked",
                        l.region_id
                    ),
                ));
            }
        }
        let st_ref = &*st;
        for (&m, rec) in &st_ref.mdls {
            if rec.in_ndis > 0 && Self::depends_on(st_ref, m, mdl) {
                problems.push((
                    m,
                    format!(
                        "NDIS still owns an NBL whose MDL describes user region #{}'s pages: the miniport may still read them",
                        l.region_id
                    ),
                ));
            }
        }
        self.bump(&st);
        drop(st);
        drop(l.hold);
        for (obj, d) in problems {
            Violation::new(Rule::MappingAfterUnlock, call.to_string(), d).with_object(obj).report();
        }
    }

    /// Whether `mdl` is, or was built from, `lock`'s MDL.
    fn depends_on(st: &St, mut mdl: usize, lock: usize) -> bool {
        for _ in 0..64 {
            if mdl == lock {
                return true;
            }
            match st.mdls.get(&mdl).and_then(|r| r.source) {
                Some(s) => mdl = s,
                None => return false,
            }
        }
        false
    }

    /// Where `[addr, addr + len)` is.
    fn place_of(st: &St, addr: usize, len: usize) -> Place {
        if let Some((&b, m)) = st.maps.range(..=addr).next_back() {
            if addr < b + m.len {
                return Place::Locked;
            }
        }
        if let Some(r) = st.revoked.iter().rev().find(|r| addr >= r.base && addr < r.base + r.len) {
            return Place::Gone(format!(
                "a system mapping of user region #{} that was {}",
                r.region_id,
                if r.why == 1 { "revoked when its pages were unlocked" } else { "unmapped (MmUnmapLockedPages)" }
            ));
        }
        if let Some((base, r)) = Self::region_at(st, addr, len.max(1)) {
            return match st.locks.values().find(|l| l.region_base == base) {
                Some(_) => Place::Locked,
                None => Place::Gone(format!("user region #{}'s memory, whose pages are not locked", r.id)),
            };
        }
        Place::Other
    }

    /// `IoAllocateMdl` made `mdl`.
    pub(crate) fn add_mdl(&self, mdl: usize, pages: usize) {
        let mut st = lock(&self.st);
        st.freed_mdls.remove(&mdl);
        st.mdls.insert(mdl, MdlRec::new(pages, false));
        self.bump(&st);
    }

    /// `IoBuildPartialMdl` took `mdl`, built in the driver's pool, as its
    /// target (with room for `pages` PFNs): tracked from now on, until its
    /// pool block is freed.
    pub(crate) fn add_pool_mdl(&self, mdl: usize, pages: usize) {
        let mut st = lock(&self.st);
        st.freed_mdls.remove(&mdl);
        st.pool_mdls.insert(mdl);
        let r = st.mdls.entry(mdl).or_insert(MdlRec::new(pages, true));
        r.pages = pages;
        self.bump(&st);
    }

    /// The driver frees the pool block `base..base + len`: the MDLs it built
    /// there are forgotten, and returned with the NBLs NDIS still has them
    /// in and whether they have a mapping of their own.
    pub(crate) fn pool_freed(&self, base: usize, len: usize) -> Vec<(usize, u32, bool)> {
        let mut st = lock(&self.st);
        let inside: Vec<usize> = st.pool_mdls.range(base..base + len.max(1)).copied().collect();
        if inside.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(inside.len());
        for m in inside {
            st.pool_mdls.remove(&m);
            let in_ndis = st.mdls.remove(&m).map_or(0, |r| r.in_ndis);
            let mapped = Self::revoke_own(&mut st, m);
            st.freed_mdls.insert(m);
            out.push((m, in_ndis, mapped));
        }
        self.bump(&st);
        out
    }

    /// Runs `f` on the driver's MDL record, if `mdl` is one (`Err(true)`
    /// when it was freed, `Err(false)` when never allocated).
    pub(crate) fn with_mdl<R>(&self, mdl: usize, f: impl FnOnce(&mut MdlRec) -> R) -> Result<R, bool> {
        let mut st = lock(&self.st);
        let freed = st.freed_mdls.contains(&mdl);
        match st.mdls.get_mut(&mdl) {
            Some(r) => Ok(f(r)),
            None => Err(freed),
        }
    }

    /// Whether `mdl` is an MDL the memory manager knows (the driver's, or
    /// one holding a lock).
    pub(crate) fn known(&self, mdl: usize) -> bool {
        let st = lock(&self.st);
        st.mdls.contains_key(&mdl) || st.locks.contains_key(&mdl)
    }

    /// `IoFreeMdl`: forgets `mdl` and revokes mappings of its own that are
    /// left (a partial MDL's, which `IoFreeMdl` releases).
    pub(crate) fn remove_mdl(&self, mdl: usize) {
        let mut st = lock(&self.st);
        st.mdls.remove(&mdl);
        st.freed_mdls.insert(mdl);
        Self::revoke_own(&mut st, mdl);
        self.bump(&st);
    }

    /// Revokes the mappings of `mdl`'s own (a partial MDL's, made by
    /// mapping it): what freeing it releases. Whether it had any.
    fn revoke_own(st: &mut St, mdl: usize) -> bool {
        let own: Vec<usize> = st.maps.iter().filter(|(_, m)| m.mdl == mdl).map(|(&b, _)| b).collect();
        for &b in &own {
            Self::revoke(st, b, 2);
        }
        !own.is_empty()
    }

    /// Driver MDLs left at unload, and probe locks still held: reported.
    pub(crate) fn leak_check(&self) {
        let st = lock(&self.st);
        // (MDLs in the driver's pool are its pool's leaks.)
        let mut left: Vec<usize> = st.mdls.iter().filter(|(_, r)| !r.in_pool).map(|(&m, _)| m).collect();
        left.sort();
        let mut held: Vec<(usize, usize)> =
            st.locks.iter().filter(|(_, l)| l.kind == LockKind::Probe).map(|(&m, l)| (m, l.region_id)).collect();
        held.sort();
        drop(st);
        for m in left {
            Violation::new(Rule::MdlLeak, "DriverUnload", "an MDL from IoAllocateMdl was never freed (IoFreeMdl)")
                .with_object(m)
                .report();
        }
        for (m, id) in held {
            Violation::new(
                Rule::PagesLockedAtClose,
                "DriverUnload",
                format!("pages of user region #{id} the driver locked (MmProbeAndLockPages) are still locked"),
            )
            .with_object(m)
            .report();
        }
    }

    /// The handle of `file` closed (IRP_MJ_CLOSE): the driver's probe locks
    /// on regions that file's IRPs brought are reported.
    pub(crate) fn file_closed(&self, file: usize) {
        let st = lock(&self.st);
        let mut held: Vec<(usize, usize)> = st
            .locks
            .iter()
            .filter(|(_, l)| {
                l.kind == LockKind::Probe && st.regions.get(&l.region_base).is_some_and(|r| r.file == file)
            })
            .map(|(&m, l)| (m, l.region_id))
            .collect();
        held.sort();
        drop(st);
        for (m, id) in held {
            Violation::new(
                Rule::PagesLockedAtClose,
                "IRP_MJ_CLOSE",
                format!(
                    "the handle closed with pages of its user region #{id} still locked by the driver (MmProbeAndLockPages without MmUnlockPages): on Windows the process cannot exit (bug check 0x76 PROCESS_HAS_LOCKED_PAGES)"
                ),
            )
            .with_object(m)
            .report();
        }
    }

    /// Frees what is left at the end of the simulation: the driver's MDLs
    /// (reported by `leak_check`), mappings and reserved ranges.
    pub(crate) fn free_everything(&self) {
        let mut st = lock(&self.st);
        st.pool_mdls.clear();
        for (m, r) in st.mdls.drain() {
            if r.in_pool {
                // The driver's pool, which the pool frees.
                continue;
            }
            // SAFETY: the driver's MDL (from IoAllocateMdl), which it leaked
            // and which nobody uses now that the driver is gone.
            unsafe { crate::nbl::free_mdl(m as *mut MDL) };
        }
        let maps: Vec<(usize, usize)> = st.maps.iter().map(|(&b, m)| (b, m.len)).collect();
        let revoked: Vec<(usize, usize)> = st.revoked.drain(..).map(|r| (r.base, r.len)).collect();
        for (b, n) in maps.into_iter().chain(revoked) {
            // SAFETY: our mappings; the driver is gone.
            unsafe { libc::munmap(b as *mut libc::c_void, n) };
        }
        st.maps.clear();
        st.locks.clear();
        st.regions.clear();
        st.sent = 0;
        st.sent_more.clear();
        st.generation += 1;
        self.bump(&st);
    }

    /// What a faulting address is to the memory manager (from the fault
    /// handler: no allocation, no waiting for the lock), written into `w`.
    pub(crate) fn describe(&self, addr: usize, w: &mut impl Write) -> bool {
        let Ok(st) = self.st.try_lock() else { return false };
        let Some(r) = st.revoked.iter().rev().find(|r| addr >= r.base && addr < r.base + r.len) else { return false };
        let _ = write!(
            w,
            ": a system mapping of user region #{} ({:#x}, {} bytes) that was {} (rule mapping-after-unlock: the driver used a mapping of user pages after they were unlocked)",
            r.region_id,
            r.base,
            r.len,
            if r.why == 1 {
                "revoked when its pages were unlocked (the IRP that locked them was completed, or MmUnlockPages)"
            } else {
                "unmapped (MmUnmapLockedPages, MmPrepareMdlForReuse or IoFreeMdl)"
            }
        );
        true
    }
}
