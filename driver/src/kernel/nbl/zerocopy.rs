//! Zero-copy sends from a UMEM: NBLs whose NET_BUFFER points into the
//! UMEM's locked pages, so NDIS reads the frame where the user wrote it.
//!
//! Each UMEM frame has a partial MDL of the attach IRP's MDL, describing
//! exactly that frame, built once at attach in one pool block
//! (`FrameMdls`); a send's NET_BUFFER has the frame's MDL as its
//! only MDL, and `DataOffset`/`CurrentMdlOffset` select the bytes within
//! the frame. So no MDL is built or mapped per send, and the only unused
//! data space a driver below may retreat into (`NdisRetreatNetBufferDataStart`
//! writes headers there) is the frame's own headroom, never another frame
//! or a ring. NBLs in flight may share a frame's MDL (a frame sent twice),
//! which nothing changes while they are. A ring has its own `ZcPool` (the
//! frames' MDLs made at attach; NBLs made as kicks first need them, up to
//! the ring's bound, and reused: no allocation per frame in steady state). A
//! `ZcNbl` is one of its NBLs that NDIS does not own; a kick's view of the
//! pool (`ZcFiller::take_filled`) points it at a frame and tags it with its ring, and a `ZcChain` of filled ones
//! goes to `Binding::send_zc`, which hands it to NDIS only while sends may
//! reach it and counts it in flight (so a pause waits for it). From then
//! nothing in rawnic can reach those NBLs until
//! `ProtocolSendNetBufferListsComplete` gives each back as a `ZcDone`,
//! holding the `ZcNbl` again, its frame's offset and its ring. The pool
//! must be dropped (all its NBLs back) before the attach IRP completes:
//! its MDLs are partial MDLs of that IRP's.
//!
//! A zero-copy NBL names its ring (a pointer, no count of its own): the
//! ring's `ZcAnchor` holds one strong count of the ring for as long as
//! NDIS has any of its NBLs, taken by the send that brings their number
//! from 0 and given up by the completion that brings it back to 0, so
//! that no atomic operation is paid per frame.

use super::frame_mdls::{FrameMdls, MdlTable};
use super::{first_nb, next_nbl};
use crate::kernel::alloc::{AllocError, try_vec};
use crate::kernel::protocol::{Binding, Protocol};
use crate::kernel::sync::{GateState, Irql, SpinLock};
use crate::kernel::umem::Umem;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering;
use ndis_sys::*;

/// `ProtocolReserved` words of a zero-copy NBL: [0] owner tag and length
/// (as the pool's send NBLs, so completions count alike), [1] the frame's
/// UMEM offset, [3] its ring (`Arc::as_ptr`; the count that keeps it is
/// its chain's, then its anchor's), which is null in every NBL of the
/// binding's send pool.
const RESERVED_ADDR: usize = 1;
pub(crate) const RESERVED_RING: usize = 3;

/// A ring whose frames are sent zero-copy: it has the anchor that keeps it
/// alive while NDIS has its NBLs.
pub trait ZcRing: Send + Sync + Sized + 'static {
    fn anchor(&self) -> &ZcAnchor<Self>;
}

/// Keeps a ring alive while NDIS has any of its zero-copy NBLs (see the
/// module's documentation).
///
/// # Invariants
/// `keep` is `Some` whenever `in_flight` is not 0, and then holds a strong
/// count of the one ring whose NBLs `in_flight` counts: `enter` and `exit`
/// check that the ring they are given is the one kept (whatever
/// `ZcRing::anchor` returns, a count is never given up while that ring's
/// NBLs are counted).
pub struct ZcAnchor<R> {
    inner: SpinLock<(usize, Option<Arc<R>>)>,
}

impl<R: ZcRing> Default for ZcAnchor<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: ZcRing> ZcAnchor<R> {
    pub fn new() -> Self {
        ZcAnchor { inner: SpinLock::new((0, None)) }
    }

    /// `n` NBLs of `ring` go to NDIS: its anchor takes a count of `ring` if
    /// it had none.
    fn enter(ring: &Arc<R>, n: usize) {
        let mut g = ring.anchor().inner.lock();
        match &g.1 {
            Some(kept) => assert!(Arc::ptr_eq(kept, ring), "a zero-copy anchor keeps another ring"),
            None => g.1 = Some(ring.clone()),
        }
        g.0 += n;
    }

    /// `n` NBLs of `ring` came back from NDIS: the anchor's count, when none
    /// is left with NDIS, to be dropped once nothing uses the ring.
    fn exit(ring: &Arc<R>, n: usize) -> Option<Arc<R>> {
        let mut g = ring.anchor().inner.lock();
        assert!(
            g.1.as_ref().is_some_and(|kept| Arc::ptr_eq(kept, ring)) && g.0 >= n,
            "zero-copy NBLs came back that their ring's anchor did not count"
        );
        g.0 -= n;
        if g.0 == 0 { g.1.take() } else { None }
    }
}

/// Where a UMEM's frames are: their offset, their size (a power of two)
/// and count.
#[derive(Clone, Copy, Debug)]
pub struct FrameGeometry {
    pub offset: usize,
    pub size: usize,
    pub count: usize,
}

/// One ring's zero-copy NBLs, and its frames' MDLs.
///
/// # Invariants
/// `all` holds every NBL allocated from `nbl_pool` (each with one
/// NET_BUFFER), at most `limit`; `free` those NDIS does not own and no
/// `ZcNbl` holds. `all` and `free` have room for `limit` (reserved at
/// creation). `frames` has an MDL for each frame of `geometry`, a partial
/// MDL of the UMEM's attach MDL describing exactly that frame.
pub struct ZcPool {
    nbl_pool: NDIS_HANDLE,
    all: Vec<*mut NET_BUFFER_LIST>,
    free: Vec<*mut NET_BUFFER_LIST>,
    limit: usize,
    frames: FrameMdls,
    geometry: FrameGeometry,
    /// The UMEM's mapping, for `ZcChain::frames`.
    mapping: (NonNull<u8>, usize),
}

// SAFETY: the pool's NBLs and MDLs are kernel memory usable from any
// thread; the pool is only used under its owner's lock.
unsafe impl Send for ZcPool {}

/// A zero-copy NBL that NDIS does not own (`ZcFiller::take_filled`).
#[must_use = "send it in a ZcChain, or give it back with ZcReturner::put"]
pub struct ZcNbl(NonNull<NET_BUFFER_LIST>);

// SAFETY: an NBL the holder owns, usable from any thread.
unsafe impl Send for ZcNbl {}

impl ZcPool {
    /// A pool of at most `n` NBLs for frames of `umem` (made as `ready`
    /// first needs them), and an MDL for each of its frames.
    pub fn new(umem: &Umem, n: usize, geometry: FrameGeometry) -> Result<Self, AllocError> {
        if !geometry.size.is_power_of_two() || geometry.offset % geometry.size != 0 {
            return Err(AllocError);
        }
        let (Ok(all), Ok(free)) = (try_vec(n), try_vec(n)) else {
            return Err(AllocError);
        };
        let mut frames = FrameMdls::new(geometry.count, geometry.size)?;
        for k in 0..geometry.count {
            let off = geometry.offset + k * geometry.size;
            let Some((source, va)) = umem.source(off, geometry.size) else { return Err(AllocError) };
            // SAFETY: `source` is the attach IRP's locked MDL and the frame
            // lies inside it (`source`); the pool (and `frames` with it) is
            // dropped before that IRP completes (`Umem::finish`'s contract).
            unsafe { frames.build_next(source, va, geometry.size) }?;
        }
        let handle = crate::kernel::protocol::protocol_handle();
        // SAFETY: the protocol's registration handle.
        let nbl_pool = unsafe { super::nbl_pool(handle) }.ok_or(AllocError)?;
        Ok(ZcPool { nbl_pool, all, free, limit: n, frames, geometry, mapping: umem.mapping() })
    }

    /// Makes sure `want` NBLs are free if the bound allows, allocating the
    /// ones never made yet; returns how many are free, at most `want`
    /// (fewer when an allocation fails: low resources).
    #[inline(always)]
    pub fn ready(&mut self, want: usize) -> usize {
        if self.free.len() < want && self.all.len() < self.limit {
            self.grow(want);
        }
        self.free.len().min(want)
    }

    /// Makes NBLs until `want` are free, the bound is reached or an
    /// allocation fails (only the first kicks of a ring, or after low
    /// resources: out of the kick's line).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, want: usize) {
        while self.free.len() < want && self.all.len() < self.limit {
            // SAFETY: the pool allocates NET_BUFFERs with its NBLs; no MDL
            // yet (`fill` gives each send its frame's).
            let nbl = unsafe { NdisAllocateNetBufferAndNetBufferList(self.nbl_pool, 0, 0, ptr::null_mut(), 0, 0) };
            if nbl.is_null() {
                break;
            }
            // Room for `limit` was reserved (invariant).
            self.all.push(nbl);
            self.free.push(nbl);
        }
    }

    /// NBLs NDIS has now (or a `ZcNbl` holds).
    pub fn out(&self) -> usize {
        self.all.len() - self.free.len()
    }

    /// NBLs that could be sent now: the free ones and those not made yet.
    pub fn room(&self) -> usize {
        self.limit - self.out()
    }

    /// A completion's view of the pool, to give NBLs back.
    #[inline(always)]
    pub fn returner(&mut self) -> ZcReturner<'_> {
        let (len, cap) = (self.free.len(), self.free.capacity());
        ZcReturner { base: self.free.as_mut_ptr(), len, cap, free: &mut self.free }
    }

    /// A kick's view of the pool, to take NBLs pointed at its frames.
    #[inline(always)]
    pub fn filler(&mut self) -> ZcFiller<'_> {
        let g = self.geometry;
        ZcFiller {
            n_free: self.free.len(),
            free: &mut self.free,
            offset: g.offset,
            shift: g.size.trailing_zeros(),
            size: g.size,
            mdls: self.frames.table(),
        }
    }
}

/// A kick's view of a `ZcPool` (`ZcPool::filler`): the count of free NBLs
/// and where the frames and their MDLs are, kept in the view rather than
/// read again from the pool for each frame (to the compiler, the writes
/// into NBLs between frames might change the pool). The free list is cut
/// to the count when the view ends.
pub struct ZcFiller<'p> {
    free: &'p mut Vec<*mut NET_BUFFER_LIST>,
    /// The first `n_free` entries of `free` are the free NBLs.
    n_free: usize,
    offset: usize,
    shift: u32,
    size: usize,
    mdls: MdlTable<'p>,
}

impl ZcFiller<'_> {
    /// A free NBL pointed at `len` bytes at UMEM offset `off` and tagged
    /// with `owner` (its ring is named when it joins a chain); `None`, and
    /// nothing taken, when the bytes do not lie in one frame. Panics when
    /// no NBL is free (the caller takes no more than `ZcPool::ready` said).
    #[inline(always)]
    pub fn take_filled(&mut self, off: usize, len: usize, owner: u32) -> Option<ZcNbl> {
        let rel = off.checked_sub(self.offset)?;
        // A power of two: a shift and a mask.
        let (k, within) = (rel >> self.shift, rel & (self.size - 1));
        let mdl = self.mdls.get(k)?;
        if len == 0 || within + len > self.size {
            return None;
        }
        assert!(self.n_free > 0, "the budget is the free NBLs");
        self.n_free -= 1;
        let mut nbl = ZcNbl(NonNull::new(self.free[self.n_free]).expect("pool NBLs are not null"));
        let n = nbl.nbl();
        // SAFETY: the NBL's one NET_BUFFER, ours as the NBL is.
        let nb = unsafe { &mut *first_nb(n) };
        // The frame's MDL, valid (and its pages locked) until the attach
        // IRP completes, which is not before this send is back (the ring's
        // contract); the offsets select the bytes within the frame.
        nb.anon.anon.MdlChain = mdl;
        nb.anon.anon.CurrentMdl = mdl;
        nb.anon.anon.CurrentMdlOffset = within as u32;
        nb.anon.anon.DataOffset = within as u32;
        nb.anon.anon.anon.DataLength = len as u32;
        n.anon2.Status = NDIS_STATUS_SUCCESS;
        n.NetBufferListInfo[Ieee8021QNetBufferListInfo] = ptr::null_mut();
        n.ProtocolReserved[0] = ((owner as usize) | (len << 32)) as PVOID;
        n.ProtocolReserved[RESERVED_ADDR] = off as PVOID;
        Some(nbl)
    }
}

/// A completion's view of a `ZcPool` (`ZcPool::returner`): the free list's
/// length kept in the view while NBLs come back, set when it ends.
///
/// # Invariants
/// `base` is `free`'s buffer, of `cap` entries, of which the first `len`
/// are set (`len <= cap`); `free` is borrowed for the view's life, so the
/// buffer neither moves nor changes under it.
pub struct ZcReturner<'p> {
    free: &'p mut Vec<*mut NET_BUFFER_LIST>,
    base: *mut *mut NET_BUFFER_LIST,
    len: usize,
    cap: usize,
}

impl ZcReturner<'_> {
    /// Gives back an NBL NDIS handed back (or one never sent).
    #[inline(always)]
    pub fn put(&mut self, nbl: ZcNbl) {
        // Room for every NBL of the pool was reserved at creation.
        assert!(self.len < self.cap, "more NBLs back than the pool made");
        // SAFETY: `len < cap`: inside the buffer (invariant).
        let slot = unsafe { self.base.add(self.len) };
        // SAFETY: an entry of the buffer past its set ones, which nothing
        // else reaches while the view lives (invariant).
        unsafe { slot.write(nbl.0.as_ptr()) };
        self.len += 1;
    }
}

impl Drop for ZcReturner<'_> {
    fn drop(&mut self) {
        // SAFETY: the first `len <= cap` entries are set (invariant).
        unsafe { self.free.set_len(self.len) };
    }
}

impl Drop for ZcFiller<'_> {
    fn drop(&mut self) {
        // The NBLs taken are the ZcNbls handed out (invariant of `ZcPool`:
        // `free` holds only the ones no `ZcNbl` holds).
        self.free.truncate(self.n_free);
    }
}

impl Drop for ZcPool {
    fn drop(&mut self) {
        if self.free.len() != self.all.len() {
            crate::kprint!(
                crate::kernel::debug::LEVEL_ERROR,
                "zero-copy pool released with {} NBLs not back; leaking them",
                self.all.len() - self.free.len()
            );
            // Their frames' MDLs too: NDIS may still read them.
            core::mem::forget(core::mem::replace(&mut self.frames, FrameMdls::empty()));
            return;
        }
        for &nbl in &self.all {
            // SAFETY: an NBL of this pool, back (all are free), so ours.
            let n = unsafe { &mut *nbl };
            // SAFETY: its one NET_BUFFER, ours as the NBL is.
            let nb = unsafe { &mut *first_nb(n) };
            // The frames' MDLs are freed below, apart from the NBLs.
            nb.anon.anon.MdlChain = ptr::null_mut();
            nb.anon.anon.CurrentMdl = ptr::null_mut();
            // SAFETY: the NBL came from this pool and is back (all free).
            unsafe { NdisFreeNetBufferList(nbl) };
        }
        // The frames' MDLs go with `frames`, now that no NBL holds them.
        // SAFETY: every NBL of the pool is freed.
        unsafe { NdisFreeNetBufferListPool(self.nbl_pool) };
    }
}

impl ZcNbl {
    fn nbl(&mut self) -> &mut NET_BUFFER_LIST {
        // SAFETY: an NBL of a pool that NDIS does not own; `self` holds it.
        unsafe { self.0.as_mut() }
    }
}

/// Filled zero-copy NBLs of one ring, chained for one send. The chain
/// holds a count of the ring, which each of its NBLs names.
///
/// # Invariants
/// `mapping` is where the UMEM of the pool the NBLs came from is mapped,
/// and its length: valid while the chain holds NBLs of it (the pool is
/// dropped, and the UMEM unmapped, only once all its NBLs are back).
pub struct ZcChain<R> {
    head: *mut NET_BUFFER_LIST,
    tail: *mut NET_BUFFER_LIST,
    count: usize,
    ring: Arc<R>,
    mapping: (NonNull<u8>, usize),
}

/// The frames of a `ZcChain`, in order, as the NIC will read them.
#[derive(Clone)]
pub struct ZcFrames<'a> {
    cur: *mut NET_BUFFER_LIST,
    mapping: (NonNull<u8>, usize),
    _chain: core::marker::PhantomData<&'a ()>,
}

/// One frame of a `ZcChain`: bytes of the UMEM, which its user may change
/// at any moment (they are its frame's), so they are only ever copied out
/// raw, never borrowed.
///
/// # Invariants
/// `p` points at `len` bytes of a UMEM's mapping, valid for `'a`.
pub struct ZcFrame<'a> {
    p: NonNull<u8>,
    len: usize,
    _chain: core::marker::PhantomData<&'a ()>,
}

impl ZcFrame<'_> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the frame's first bytes into `dst` (as many as fit); returns
    /// how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = self.len.min(dst.len());
        // SAFETY: `n` bytes at `p` are the UMEM's (invariant), which `dst`,
        // kernel memory, does not overlap; a raw copy, as the user may
        // write them meanwhile.
        unsafe { ptr::copy_nonoverlapping(self.p.as_ptr(), dst.as_mut_ptr(), n) };
        n
    }
}

impl<'a> Iterator for ZcFrames<'a> {
    type Item = ZcFrame<'a>;

    fn next(&mut self) -> Option<ZcFrame<'a>> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: an NBL of the chain `self` borrows, which owns it.
        let n = unsafe { &*self.cur };
        self.cur = next_nbl(n);
        let off = n.ProtocolReserved[RESERVED_ADDR] as usize;
        let len = (n.ProtocolReserved[0] as usize) >> 32;
        // `ZcFiller::take_filled` put the frame inside one frame of the UMEM.
        assert!(off.checked_add(len).is_some_and(|end| end <= self.mapping.1), "a zero-copy frame outside its UMEM");
        // SAFETY: `off` lies inside the UMEM's mapping (checked), which is
        // valid while the chain holds NBLs of it (its invariant), so for
        // `'a`.
        let p = unsafe { self.mapping.0.add(off) };
        Some(ZcFrame { p, len, _chain: core::marker::PhantomData })
    }
}

// SAFETY: NBLs the chain owns, and a count of `Arc<R>` (Send + Sync).
unsafe impl<R: Send + Sync> Send for ZcChain<R> {}

impl<R: ZcRing> ZcChain<R> {
    /// An empty chain for NBLs of `ring`'s pool `pool`.
    pub fn new(ring: &Arc<R>, pool: &ZcPool) -> Self {
        ZcChain { head: ptr::null_mut(), tail: ptr::null_mut(), count: 0, ring: ring.clone(), mapping: pool.mapping }
    }

    /// The chain's frames, in order.
    pub fn frames(&self) -> ZcFrames<'_> {
        ZcFrames { cur: self.head, mapping: self.mapping, _chain: core::marker::PhantomData }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends an NBL `fill` prepared, naming the chain's ring in it.
    #[inline(always)]
    pub fn push(&mut self, mut nbl: ZcNbl) {
        let p = nbl.0.as_ptr();
        let n = nbl.nbl();
        n.anon.anon.Next = ptr::null_mut();
        n.ProtocolReserved[RESERVED_RING] = Arc::as_ptr(&self.ring).cast_mut().cast();
        if self.tail.is_null() {
            self.head = p;
        } else {
            // SAFETY: the chain's last NBL, ours.
            let last = unsafe { &mut *self.tail };
            last.anon.anon.Next = p;
        }
        self.tail = p;
        self.count += 1;
    }

    /// Takes the chain apart without sending it: its NBLs back, with their
    /// ring (the chain's count goes with them).
    pub fn unsent(mut self) -> ZcReturns<R> {
        let head = core::mem::replace(&mut self.head, ptr::null_mut());
        self.count = 0;
        ZcReturns { cur: head, held: Some(self.ring.clone()) }
    }
}

impl<R> Drop for ZcChain<R> {
    fn drop(&mut self) {
        if self.count != 0 {
            crate::kprint!(crate::kernel::debug::LEVEL_ERROR, "an unsent zero-copy chain was dropped; leaking it");
            // Its NBLs name the ring: it must outlive them.
            core::mem::forget(self.ring.clone());
        }
    }
}

/// A zero-copy NBL back from NDIS (or never sent): the NBL, its frame's
/// UMEM offset and length, and whether NDIS sent it.
pub struct ZcDone {
    pub nbl: ZcNbl,
    pub addr: u64,
    /// The frame's length.
    pub len: u32,
    pub ok: bool,
}

/// Zero-copy NBLs that are ours again, walked a run of one ring's at a
/// time (`for_each_run`).
///
/// # Invariants
/// Every NBL on the chain at `cur` names (`RESERVED_RING`) a ring of type
/// `R` of which a strong count is held: `held` (NBLs never sent), or that
/// ring's anchor, in which each of them is counted (completed NBLs).
pub struct ZcReturns<R: ZcRing> {
    cur: *mut NET_BUFFER_LIST,
    held: Option<Arc<R>>,
}

/// The NBLs of one run (`ZcReturns::for_each_run`): consecutive ones of
/// one ring.
pub struct ZcRun<'a, R: ZcRing> {
    returns: &'a mut ZcReturns<R>,
    ring: *const R,
    /// NBLs handed out.
    n: usize,
}

/// The ring an NBL of a zero-copy chain names.
fn ring_of<R>(nbl: *mut NET_BUFFER_LIST) -> *const R {
    // SAFETY: an NBL of a chain that is ours (the caller's).
    unsafe { (*nbl).ProtocolReserved[RESERVED_RING] }.cast_const().cast()
}

impl<R: ZcRing> Iterator for ZcRun<'_, R> {
    type Item = ZcDone;

    #[inline]
    fn next(&mut self) -> Option<ZcDone> {
        let p = NonNull::new(self.returns.cur)?;
        if ring_of::<R>(p.as_ptr()) != self.ring {
            return None;
        }
        // SAFETY: the chain's NBLs are ours (NDIS gave them back, or they
        // were never sent).
        let n = unsafe { &mut *p.as_ptr() };
        self.returns.cur = next_nbl(n);
        n.anon.anon.Next = ptr::null_mut();
        n.ProtocolReserved[RESERVED_RING] = ptr::null_mut();
        // SAFETY: a status is a plain integer in either union member.
        let ok = unsafe { n.anon2.Status } == NDIS_STATUS_SUCCESS;
        let addr = n.ProtocolReserved[RESERVED_ADDR] as u64;
        let len = (n.ProtocolReserved[0] as usize >> 32) as u32;
        self.n += 1;
        Some(ZcDone { nbl: ZcNbl(p), addr, len, ok })
    }
}

impl<R: ZcRing> ZcReturns<R> {
    /// The NBLs of a completed chain, which `ZcChain::push` named rings of
    /// type `R` in and `Binding::send_zc` counted in their anchors.
    pub(super) fn completed(head: *mut NET_BUFFER_LIST) -> Self {
        ZcReturns { cur: head, held: None }
    }

    /// Hands the NBLs to `f` a run at a time: consecutive NBLs of one
    /// ring, with that ring. `f` should take every NBL of its run (each
    /// goes back to its pool); one it leaves is leaked, and its ring with
    /// it.
    pub fn for_each_run(mut self, mut f: impl FnMut(&Arc<R>, &mut ZcRun<'_, R>)) {
        while !self.cur.is_null() {
            let ptr = ring_of::<R>(self.cur);
            // A strong count of the ring is held for as long as its NBLs
            // of this run are not counted back (invariant): the `Arc` made
            // here borrows it, and is never dropped.
            // SAFETY: `ptr` is an `Arc::as_ptr` of a live `Arc<R>`.
            let ring = ManuallyDrop::new(unsafe { Arc::from_raw(ptr) });
            let mut run = ZcRun { returns: &mut self, ring: ptr, n: 0 };
            f(&ring, &mut run);
            let n = run.n;
            if !self.cur.is_null() && ring_of::<R>(self.cur) == ptr {
                crate::kprint!(
                    crate::kernel::debug::LEVEL_ERROR,
                    "zero-copy returns left untaken; leaking them and their ring"
                );
                self.cur = ptr::null_mut();
                return;
            }
            // Counted back; the anchor's count (when none is left with
            // NDIS) goes after the last use of `ring`.
            let last = if self.held.is_none() { ZcAnchor::exit(&ring, n) } else { None };
            drop(last);
        }
    }
}

impl<R: ZcRing> Drop for ZcReturns<R> {
    fn drop(&mut self) {
        if !self.cur.is_null() {
            crate::kprint!(crate::kernel::debug::LEVEL_ERROR, "zero-copy returns dropped unwalked; leaking them");
            // Their rings must outlive them.
            if let Some(r) = self.held.take() {
                core::mem::forget(r);
            }
        }
    }
}

impl<T: Protocol> Binding<T> {
    /// Sends a chain of zero-copy NBLs if sends may reach NDIS now (the
    /// same test as `begin_send`), counting them in flight so that a pause
    /// waits for them; `Err` gives the chain back unsent. `max_frame` is
    /// the longest untagged frame its frames were checked against (MTU +
    /// 14): if the binding's is another now (a pause and a restart changed
    /// the MTU since), the chain goes back unsent too. `sending` sees the
    /// frames once they are sure to go, before NDIS has them (so before
    /// any completion hands one back to its user), at DISPATCH_LEVEL.
    pub fn send_zc(
        &self,
        mut chain: ZcChain<T::Ring>,
        max_frame: usize,
        sending: impl FnOnce(ZcFrames<'_>),
    ) -> Result<usize, ZcChain<T::Ring>> {
        if chain.count == 0 {
            return Ok(0);
        }
        let mut st = GateState::new();
        let gate = self.gate().read(&mut st, Irql::AtMostDispatch);
        {
            let mut c = self.core.lock_dpr(gate.at_dispatch());
            if !c.ndis_running || c.low_power || c.send_shape.max_frame != max_frame {
                return Err(chain);
            }
            c.sends_in_flight += chain.count as u64;
        }
        // Counted before NDIS can complete any (the completion subtracts),
        // and the ring kept by its anchor until they are all back.
        self.zc_in_flight.fetch_add(chain.count, Ordering::AcqRel);
        ZcAnchor::enter(&chain.ring, chain.count);
        sending(chain.frames());
        let handle = self.ndis_handle();
        let mut cur = chain.head;
        while !cur.is_null() {
            // SAFETY: the chain's NBLs are ours until the send below.
            let n = unsafe { &mut *cur };
            n.SourceHandle = handle;
            cur = next_nbl(n);
        }
        let (head, count) = (chain.head, chain.count);
        chain.head = ptr::null_mut();
        chain.count = 0;
        // SAFETY: `count` NBLs of a zero-copy pool, each with SourceHandle
        // set and the MDL of a UMEM that stays locked until its
        // completion comes back (the ring's contract); from here NDIS owns
        // them until `send_net_buffer_lists_complete`. The gate keeps a
        // pause from beginning across the call, at DISPATCH_LEVEL.
        unsafe { NdisSendNetBufferLists(handle, head, 0, NDIS_SEND_FLAGS_DISPATCH_LEVEL) };
        drop(gate);
        Ok(count)
    }
}
