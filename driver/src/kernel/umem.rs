//! A UMEM: user memory a handle shares with the driver for its rings
//! (`rawnic_proto::ring`).
//!
//! The memory is the output buffer of a `METHOD_OUT_DIRECT` IOCTL: the I/O
//! manager probes and locks it into the IRP's MDL in the caller's context
//! (so the driver never calls `MmProbeAndLockPages`, whose exception on a
//! bad address Rust cannot catch), and the driver keeps that IRP pending for
//! as long as the UMEM is attached. A `Umem` owns the pending IRP: the pages
//! stay locked and the kernel mapping (no-execute) stays valid exactly as
//! long as the `Umem` lives, and `finish` (which consumes it) is the only
//! way to complete the IRP.
//!
//! Every access goes through raw pointers, atomics for the indices: the
//! user may change any byte at any moment, so no Rust reference to the
//! memory is ever made.

use super::device::{Armed, DeviceHandler, Dispatched, Irp, IrpId, PendingIrp};
use super::nbl::ReceivedFrame;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use ndis_sys::*;
use rawnic_logic::umem::{EntryWords, SharedMem};
use rawnic_proto::NtStatus;

/// The kernel's view of an attached UMEM.
///
/// # Invariants
/// `irp` is pending; its MDL (`mdl`) describes `len` bytes of locked user
/// memory starting on a page boundary at user address `user_va`, mapped
/// no-execute at `base`. All of it stays valid until `irp` completes,
/// which only `finish` (consuming `self`) or dropping `self` does.
pub struct Umem {
    irp: PendingIrp,
    base: NonNull<u8>,
    len: usize,
    mdl: *mut MDL,
    user_va: usize,
}

// SAFETY: the mapping is system memory valid in any context until the IRP
// completes (invariant), and every access is atomic or a raw copy.
unsafe impl Send for Umem {}
// SAFETY: as above; shared access is only through atomics and raw copies.
unsafe impl Sync for Umem {}

impl Umem {
    /// Takes a `METHOD_OUT_DIRECT` IRP whose output buffer must be exactly
    /// `len` bytes and start on a page, maps it and pends the IRP. On
    /// failure the IRP is given back with the status to complete it with.
    pub fn attach<H: DeviceHandler>(irp: Irp, len: usize) -> Result<(Dispatched, Umem), (Irp, NtStatus)> {
        let mdl = irp.mdl();
        if mdl.is_null() || irp.output_len() < len {
            return Err((irp, NtStatus::BUFFER_TOO_SMALL));
        }
        // SAFETY: the I/O manager built and locked this MDL for the IRP,
        // which is ours.
        let m = unsafe { &*mdl };
        let (count, offset, start) = (m.ByteCount as usize, m.ByteOffset, m.StartVa);
        if count != len || irp.output_len() != len {
            return Err((irp, NtStatus::INFO_LENGTH_MISMATCH));
        }
        if offset != 0 {
            // The rings' atomics need an aligned UMEM, and the layout puts
            // the frames on pages (VirtualAlloc gives page-aligned memory).
            return Err((irp, NtStatus::INVALID_PARAMETER));
        }
        // SAFETY: a locked MDL of the IRP (above).
        let va = unsafe { super::nbl::system_address(mdl) };
        let Some(base) = NonNull::new(va) else {
            return Err((irp, NtStatus::INSUFFICIENT_RESOURCES));
        };
        let (d, irp) = irp.pend::<H>();
        Ok((d, Umem { irp, base, len, mdl, user_va: start as usize }))
    }

    /// The attach IRP's id (its cancel routine names it).
    pub fn id(&self) -> IrpId {
        self.irp.id()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the attach IRP's cancel routine (see `PendingIrp::arm_cancel`):
    /// `Err` gives the UMEM back when the IRP was cancelled already.
    pub fn arm_cancel(self) -> Result<Umem, Umem> {
        let Umem { irp, base, len, mdl, user_va } = self;
        match irp.arm_cancel() {
            Armed::Queued(irp) => Ok(Umem { irp, base, len, mdl, user_va }),
            Armed::Cancelled(irp) => Err(Umem { irp, base, len, mdl, user_va }),
        }
    }

    /// Completes the attach IRP: the I/O manager unmaps and unlocks the
    /// pages. Nothing may reach the memory afterwards, which consuming
    /// `self` ensures for this type; the caller proves no send of its
    /// frames is with NDIS (their NBLs point into it).
    pub fn finish(self, status: NtStatus) {
        self.irp.complete(status, 0);
    }

    /// The attach IRP, to complete later as `finish` would (in an
    /// `IrpList`, once no lock is held): the same promise, consuming
    /// `self`.
    pub fn into_irp(self) -> PendingIrp {
        self.irp
    }

    /// The attach IRP's MDL and the user address of byte `off`, for a
    /// NET_BUFFER of `len` bytes there (`None` past the UMEM's end).
    pub(crate) fn source(&self, off: usize, len: usize) -> Option<(*mut MDL, usize)> {
        (off.checked_add(len)? <= self.len).then_some((self.mdl, self.user_va + off))
    }

    /// A pointer to `size` bytes at `off`, inside the mapping.
    #[inline]
    fn at(&self, off: usize, size: usize) -> *mut u8 {
        if off.checked_add(size).is_none_or(|end| end > self.len) {
            out_of_range(off, size);
        }
        // SAFETY: `off + size <= len`, inside the mapping (invariant).
        unsafe { self.base.as_ptr().add(off) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        // `off + 4 <= len` as one compare (`len - 3` saturates: below 4
        // bytes nothing is in range), which the four indices a publish
        // writes share.
        if off >= self.len.saturating_sub(3) {
            out_of_range(off, 4);
        }
        // SAFETY: `off + 4 <= len`, inside the mapping (invariant).
        let p = unsafe { self.base.as_ptr().add(off) };
        assert!(off % 4 == 0, "unaligned UMEM index");
        // SAFETY: 4 aligned bytes (the base is page-aligned) of the mapping,
        // valid while `self` is; the user reaches them only as memory, and
        // the driver only through this atomic.
        unsafe { AtomicU32::from_ptr(p.cast()) }
    }

    /// `N` consecutive words at `off`, checked once.
    #[inline]
    fn words<const N: usize>(&self, off: usize) -> &[AtomicU64; N] {
        let p = self.at(off, 8 * N);
        assert!(off % 8 == 0, "unaligned UMEM word");
        // SAFETY: `8 * N` aligned bytes (the base is page-aligned) of the
        // mapping, valid while `self` is; `AtomicU64` has `u64`'s layout, and
        // the driver reaches these bytes only through these atomics.
        unsafe { &*p.cast::<[AtomicU64; N]>() }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        &self.words::<1>(off)[0]
    }

    /// Copies a received frame into the UMEM at `off`, at most `cap` bytes.
    /// Returns the bytes copied.
    pub fn write_frame(&self, off: usize, cap: usize, frame: &impl ReceivedFrame) -> usize {
        let dst = self.at(off, cap);
        // SAFETY: `cap` bytes at `dst` are inside the mapping (`at`), which
        // the frame's buffers do not overlap.
        unsafe { frame.copy_to_raw(dst, cap) }
    }

    /// Where the UMEM is mapped, and its length (for `ZcPool`'s view of its
    /// frames).
    pub(crate) fn mapping(&self) -> (NonNull<u8>, usize) {
        (self.base, self.len)
    }

    /// Copies `bytes` into the UMEM at `off`. Returns the bytes copied.
    #[inline(always)]
    pub fn write_bytes(&self, off: usize, bytes: &[u8]) -> usize {
        let n = bytes.len();
        let dst = self.at(off, n);
        // SAFETY: `n` bytes at `dst` are inside the mapping (`at`); `bytes`
        // is kernel memory or another mapping, never these bytes. The user
        // may touch them meanwhile: they are its frame's, and the driver
        // only writes them.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n) };
        n
    }

    /// The mapping as a plain value, for a run of copies into it (its
    /// figures stay in registers across the copies).
    #[inline(always)]
    pub fn writer(&self) -> UmemWriter<'_> {
        UmemWriter { base: self.base, len: self.len, _umem: core::marker::PhantomData }
    }

    /// Copies `parts`, one after another, into the UMEM at `off`, at most
    /// `cap` bytes in all. Returns the bytes copied.
    pub fn write_parts(&self, off: usize, cap: usize, parts: &[&[u8]]) -> usize {
        let mut n = 0;
        for p in parts {
            n += self.write_bytes(off + n, &p[..p.len().min(cap - n)]);
        }
        n
    }
}

/// A UMEM's mapping, for a run of copies into it (`Umem::writer`).
///
/// # Invariants
/// `base` is the UMEM's mapping of `len` bytes, valid for `'a` (the `Umem`
/// is borrowed for it).
#[derive(Clone, Copy)]
pub struct UmemWriter<'a> {
    base: NonNull<u8>,
    len: usize,
    _umem: core::marker::PhantomData<&'a Umem>,
}

/// A ring writer's way back to the ring's start, once a lap: out of line,
/// so that the writes branch to it rather than pay a conditional move each.
#[cold]
#[inline(never)]
fn lap(start: *mut AtomicU64) -> *mut AtomicU64 {
    start
}

impl<'a> UmemWriter<'a> {
    /// The mapping for copies of at most `cap` bytes each: one compare per
    /// copy checks it lies inside.
    #[inline(always)]
    pub fn capped(self, cap: usize) -> CappedWriter<'a> {
        let Some(limit) = self.len.checked_sub(cap) else { out_of_range(0, cap) };
        CappedWriter { base: self.base, limit, cap, _umem: core::marker::PhantomData }
    }
}

/// A UMEM's mapping, for a run of copies of at most `cap` bytes each
/// (`UmemWriter::capped`).
///
/// # Invariants
/// `base` is the UMEM's mapping of `limit + cap` bytes, valid for `'a`.
#[derive(Clone, Copy)]
pub struct CappedWriter<'a> {
    base: NonNull<u8>,
    limit: usize,
    cap: usize,
    _umem: core::marker::PhantomData<&'a Umem>,
}

impl CappedWriter<'_> {
    /// `Umem::write_bytes`, for at most `cap` bytes.
    #[inline(always)]
    pub fn write_bytes(&self, off: usize, bytes: &[u8]) -> usize {
        let n = bytes.len();
        if n > self.cap || off > self.limit {
            out_of_range(off, n);
        }
        // SAFETY: `off + n <= limit + cap`: inside the mapping (invariant).
        let dst = unsafe { self.base.as_ptr().add(off) };
        // SAFETY: `n` bytes at `dst` are inside the mapping; `bytes` is
        // kernel memory or another mapping, never these bytes. The user may
        // touch them meanwhile: they are its frame's, and the driver only
        // writes them.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n) };
        n
    }
}

/// The logic asked for bytes outside the UMEM: a bug, never the user's
/// doing (every offset it computes is checked against the layout first).
/// Out of line, so the checks on the data path stay a compare and a branch.
#[cold]
#[inline(never)]
fn out_of_range(off: usize, size: usize) -> ! {
    panic!("UMEM offset {off}+{size} out of range")
}

/// A ring's entries in a UMEM, checked once to lie inside its mapping
/// (`SharedMem::entries`).
///
/// # Invariants
/// `first` points at `(mask + 1) * W` aligned `u64`s inside the UMEM's
/// mapping, valid for `'a` (the `Umem` is borrowed for it).
#[derive(Clone, Copy)]
pub struct UmemEntries<'a, const W: usize> {
    first: NonNull<AtomicU64>,
    mask: u32,
    _umem: core::marker::PhantomData<&'a Umem>,
}

impl<const W: usize> UmemEntries<'_, W> {
    /// The words of entry `i` (modulo the entry count).
    #[inline(always)]
    fn entry(&self, i: u32) -> &[AtomicU64; W] {
        let k = (i & self.mask) as usize * W;
        // SAFETY: `k + W <= (mask + 1) * W` words from `first`, all inside
        // the mapping (invariant).
        let p = unsafe { self.first.as_ptr().add(k) };
        // SAFETY: `W` aligned `u64`s of the mapping, valid while `self` is;
        // the user reaches them only as memory, the driver only through
        // these atomics.
        unsafe { &*p.cast::<[AtomicU64; W]>() }
    }
}

impl<const W: usize> EntryWords<W> for UmemEntries<'_, W> {
    #[inline(always)]
    fn load(&self, i: u32) -> [u64; W] {
        let e = self.entry(i);
        core::array::from_fn(|w| e[w].load(Ordering::Relaxed))
    }

    #[inline(always)]
    fn store(&self, i: u32, words: [u64; W]) {
        for (a, v) in self.entry(i).iter().zip(words) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// A pointer into the ring, moved on by each write and back to the
    /// ring's start at its end: no entry's place worked out from its
    /// index.
    #[inline(always)]
    fn writer(&self, first: u32) -> impl FnMut(Option<[u64; W]>) + '_ {
        let start = self.first.as_ptr();
        // SAFETY: one past the ring's last entry: inside or at the end of
        // the mapping (invariant).
        let end = unsafe { start.add((self.mask as usize + 1) * W) };
        // SAFETY: `first & mask` is an entry of the ring, inside the
        // mapping (invariant).
        let mut p = unsafe { start.add((first & self.mask) as usize * W) };
        move |words| {
            if let Some(words) = words {
                // SAFETY: `p` is an entry of the ring (it starts on one and
                // goes back to the first past the last): `W` aligned
                // `u64`s of the mapping, valid while `self` is, reached
                // only as memory by the user and through these atomics by
                // the driver.
                let e = unsafe { &*p.cast::<[AtomicU64; W]>() };
                for (i, (a, v)) in e.iter().zip(words).enumerate() {
                    if W == 4 && i == 1 {
                        // A four-word entry (an rx descriptor): its second
                        // word, two lengths the caller joined, stored as
                        // its two halves (little-endian: the same bytes),
                        // so that no shift joins them.
                        // SAFETY: the word's eight bytes, aligned, as two
                        // aligned `u32`s of the mapping, reached as above.
                        let h = unsafe { &*core::ptr::from_ref(a).cast::<[AtomicU32; 2]>() };
                        h[0].store(v as u32, Ordering::Relaxed);
                        h[1].store((v >> 32) as u32, Ordering::Relaxed);
                    } else {
                        a.store(v, Ordering::Relaxed);
                    }
                }
            }
            // SAFETY: at most one past the ring's last entry (`end`).
            p = unsafe { p.add(W) };
            if p == end {
                p = lap(start);
            }
        }
    }

    /// A pointer walk, a run up to the ring's end and then one from its
    /// start: no entry's place worked out from its index.
    #[inline(always)]
    fn for_each(&self, first: u32, k: u32, mut f: impl FnMut([u64; W])) {
        let count = self.mask as usize + 1;
        let mut at = (first & self.mask) as usize;
        // Never more than the ring holds, whatever the caller asks.
        let mut left = (k as usize).min(count);
        while left != 0 {
            let n = left.min(count - at);
            // SAFETY: `at < count`: entry `at` lies inside the mapping
            // (invariant).
            let mut p = unsafe { self.first.as_ptr().add(at * W) };
            // SAFETY: `at + n <= count`: one past the run's last entry is
            // at most one past the ring's, inside or at the end of the
            // same mapping.
            let end = unsafe { p.add(n * W) };
            while p != end {
                // SAFETY: `p` is an entry of the run (before `end`): `W`
                // aligned `u64`s of the mapping, valid while `self` is,
                // reached only as memory by the user and through these
                // atomics by the driver.
                let e = unsafe { &*p.cast::<[AtomicU64; W]>() };
                f(core::array::from_fn(|w| e[w].load(Ordering::Relaxed)));
                // SAFETY: at most `end`, as above.
                p = unsafe { p.add(W) };
            }
            left -= n;
            at = 0;
        }
    }
}

impl SharedMem for Umem {
    type Entries<'a, const W: usize> = UmemEntries<'a, W>;

    fn entries<const W: usize>(&self, first: usize, count: u32) -> Option<UmemEntries<'_, W>> {
        let bytes = (count as usize).checked_mul(8 * W)?;
        // A power of two: its lowest bit shifted back in gives it again (0
        // has no bit, 32 trailing zeros). Not `is_power_of_two`, which the
        // kernel's target (no POPCNT) makes a bit count of some twenty
        // instructions, asked for each of a kick's and a completion's rings.
        let pow2 = 1u64 << count.trailing_zeros() == u64::from(count);
        if !pow2 || first % 8 != 0 || first.checked_add(bytes)? > self.len {
            return None;
        }
        // `first + bytes <= len`: inside the mapping (invariant), checked
        // once for every entry.
        let first = NonNull::new(self.at(first, bytes).cast::<AtomicU64>())?;
        Some(UmemEntries { first, mask: count - 1, _umem: core::marker::PhantomData })
    }

    #[inline]
    fn load_u32(&self, off: usize) -> u32 {
        self.u32_at(off).load(Ordering::Acquire)
    }

    #[inline]
    fn store_u32(&self, off: usize, v: u32) {
        self.u32_at(off).store(v, Ordering::Release)
    }

    #[inline]
    fn load_u64(&self, off: usize) -> u64 {
        self.u64_at(off).load(Ordering::Relaxed)
    }

    #[inline]
    fn store_u64(&self, off: usize, v: u64) {
        self.u64_at(off).store(v, Ordering::Relaxed)
    }

    /// One raw copy of the words (a frame's bytes are written so too):
    /// the compiler makes it a few wide stores, where a store per word
    /// needs a register per word.
    #[inline]
    fn store_words<const N: usize>(&self, off: usize, words: [u64; N]) {
        let p = self.at(off, 8 * N);
        assert!(off % 8 == 0, "unaligned UMEM word");
        // SAFETY: `8 * N` bytes of the mapping (`at`), which `words` (on
        // the kernel stack) does not overlap. A raw copy, as a frame's
        // bytes are written (`write_bytes`): the user, reading meanwhile,
        // may see some words old and some new, as with a store per word.
        unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), p.cast::<u64>(), N) };
    }

    #[inline]
    fn load_words<const N: usize>(&self, off: usize) -> [u64; N] {
        let ws = self.words::<N>(off);
        core::array::from_fn(|i| ws[i].load(Ordering::Relaxed))
    }

    fn read(&self, off: usize, dst: &mut [u8]) {
        let src = self.at(off, dst.len());
        // SAFETY: `dst.len()` bytes of the mapping (`at`) into a buffer of
        // ours that does not overlap it.
        unsafe { core::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    }

    #[inline]
    fn prefetch_write(&self, off: usize) {
        // Only an address (never dereferenced): no bound to check, and
        // none is needed. The offset may be anything the user wrote: a
        // run's next fill entry is prefetched before its check
        // (`RxRun::take`), and the address is formed with a wrapping add.
        let p = self.base.as_ptr().wrapping_add(off);
        // SAFETY: `prefetcht0` (SSE, in every x86_64 CPU) is a hint: it
        // reads and writes nothing and cannot fault, whatever the address.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast_const().cast()) };
    }

    /// The mapping's address in a register for the run.
    #[inline(always)]
    fn prefetcher(&self) -> impl Fn(usize) + '_ {
        let base = self.base.as_ptr();
        move |off| {
            // As in `prefetch_write`.
            let p = base.wrapping_add(off);
            // SAFETY: as in `prefetch_write`: a hint, whatever the address.
            unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast_const().cast()) };
        }
    }

    fn write(&self, off: usize, src: &[u8]) {
        let dst = self.at(off, src.len());
        // SAFETY: as in `read`, the other way.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }
}
