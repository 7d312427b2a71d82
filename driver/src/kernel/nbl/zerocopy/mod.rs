//! Zero-copy sends from a UMEM: NET_BUFFERs that point into the UMEM's
//! locked pages, so NDIS reads each frame where the user wrote it.
//!
//! Each UMEM frame has a partial MDL of the attach IRP's MDL, describing
//! exactly that frame, built once at attach in one pool block
//! (`FrameMdls`); a frame's NET_BUFFER has the frame's MDL as its only MDL,
//! and `DataOffset`/`CurrentMdlOffset` select the bytes within the frame.
//! So no MDL is built or mapped per send, and the only unused data space a
//! driver below may retreat into (`NdisRetreatNetBufferDataStart` writes
//! headers there) is the frame's own headroom, never another frame or a
//! ring. NET_BUFFERs in flight may share a frame's MDL (a frame sent
//! twice), which nothing changes while they are.
//!
//! A kick's frames go as few NBLs: each NBL carries up to
//! `ZC_FRAMES_PER_NBL` frames, one NET_BUFFER each (NDIS sends every
//! NET_BUFFER of an NBL as a frame, and completes the NBL with one status
//! for all of them). A ring has its own `ZcPool`: the frames' MDLs made at
//! attach, and NBLs (made with no NET_BUFFER) and NET_BUFFERs (from a
//! NET_BUFFER pool) made as kicks first need them, up to the ring's bound,
//! and reused: no allocation per frame in steady state. A kick's view of
//! the pool (`ZcFiller::fill`) points a free NET_BUFFER at a frame and
//! puts it on the last NBL of a `ZcChain`, which names its ring;
//! `Binding::send_zc` hands the chain to NDIS only while sends may reach it
//! and counts its NBLs in flight (so a pause waits for them). From then
//! nothing in rawnic can reach those NBLs until
//! `ProtocolSendNetBufferListsComplete` gives each back as a `ZcDone`,
//! whose NET_BUFFERs name their frames' offsets; `ZcReturner::put` hands
//! those to the ring and the NBL and its NET_BUFFERs to the pool. The pool
//! must be dropped (everything back) before the attach IRP completes: its
//! MDLs are partial MDLs of that IRP's.
//!
//! A zero-copy NBL names its ring (a pointer, no count of its own): the
//! ring's `ZcAnchor` holds one strong count of the ring for as long as
//! NDIS has any of its NBLs, taken by the send that brings their number
//! from 0 and given up by the completion that brings it back to 0, so
//! that no atomic operation is paid per frame.

use super::frame_mdls::{FrameMdls, MdlTable};
use super::{NblLinks, first_nb, nb_fields, next_nbl};
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
use rawnic_logic::umem::TxSend;
use rawnic_proto::ring::TxDesc;

mod done;

pub use done::{ZcDone, ZcDoneFrames, ZcReturner, ZcReturns, ZcRun};

/// The `ProtocolReserved` word of a zero-copy NBL that names its ring
/// (`Arc::as_ptr`; the count that keeps it is its chain's, then its
/// anchor's), null in every NBL of the binding's send pool.
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

/// Most frames (NET_BUFFERs) one zero-copy NBL carries. A kick's frames go
/// as few NBLs, each frame a NET_BUFFER of its own (NDIS sends each
/// NET_BUFFER as a frame), so the costs of an NBL (taking it, naming its
/// ring, linking it, its completion and its return) are shared by up to
/// this many frames; its status is theirs.
pub const ZC_FRAMES_PER_NBL: usize = 32;

/// The `ProtocolReserved` word of a zero-copy NET_BUFFER that holds its
/// frame's UMEM offset (its length is its `DataLength`).
const NB_ADDR: usize = 0;

/// `ProtocolReserved` words of a zero-copy NBL besides its ring's
/// (`RESERVED_RING`), set as a kick closes it: where its first frame's
/// completion entry was reserved (`NBL_AHEAD`), its last NET_BUFFER
/// (`NBL_LAST`), and its frames, their bytes and whether their entries
/// were written ahead, one after another from `NBL_AHEAD` (`NBL_SPAN`, a
/// `span`), so that its completion need not count them, and posts them
/// without writing them when they were (`CompRun::complete_ahead`).
const NBL_AHEAD: usize = 0;
// `NBL_AHEAD` holds a 64-bit count (`TxRun::ahead`) whole.
const _: () = assert!(usize::BITS == 64);
const NBL_LAST: usize = 1;
const NBL_SPAN: usize = 2;

/// An NBL's `NBL_SPAN` word: `k` frames (at most `ZC_FRAMES_PER_NBL`),
/// whether their completion entries were written ahead, their bytes.
#[inline(always)]
fn span(k: usize, ahead: bool, bytes: u64) -> usize {
    k | (usize::from(ahead) << 8) | ((bytes as usize) << 32)
}

/// (frames, written ahead, bytes) of an NBL's `NBL_SPAN` word.
#[inline(always)]
fn unspan(w: usize) -> (usize, bool, u64) {
    (w & 0xff, w & 0x100 != 0, (w >> 32) as u64)
}

/// One ring's zero-copy NBLs and NET_BUFFERs, and its frames' MDLs.
///
/// # Invariants
/// `nbls` holds every NBL allocated from `nbl_pool` (made with no
/// NET_BUFFER), `nbs` every NET_BUFFER allocated from `nb_pool`, each at
/// most `limit`; `nbls` and `free_nbls` have room for `limit` (reserved
/// at creation). `free_nbls` holds the NBLs NDIS does not own and no
/// chain holds; the NET_BUFFERs that are free are the `n_free_nb` linked
/// from `free_nb` by their `Next`, and no NBL has them. `frames` has an
/// MDL for each frame of `geometry`, a partial MDL of the UMEM's attach
/// MDL describing exactly that frame.
pub struct ZcPool {
    nbl_pool: NDIS_HANDLE,
    nb_pool: NDIS_HANDLE,
    nbls: Vec<*mut NET_BUFFER_LIST>,
    free_nbls: Vec<*mut NET_BUFFER_LIST>,
    nbs: Vec<*mut NET_BUFFER>,
    free_nb: *mut NET_BUFFER,
    n_free_nb: usize,
    limit: usize,
    frames: FrameMdls,
    geometry: FrameGeometry,
    /// The UMEM's mapping, for `ZcChain::frames`.
    mapping: (NonNull<u8>, usize),
}

// SAFETY: the pool's NBLs, NET_BUFFERs and MDLs are kernel memory usable
// from any thread; the pool is only used under its owner's lock.
unsafe impl Send for ZcPool {}

impl ZcPool {
    /// A pool of at most `n` NET_BUFFERs (frames in flight) and `n` NBLs
    /// for frames of `umem` (made as `ready` first needs them), and an MDL
    /// for each of its frames.
    pub fn new(umem: &Umem, n: usize, geometry: FrameGeometry) -> Result<Self, AllocError> {
        if !geometry.size.is_power_of_two() || geometry.offset % geometry.size != 0 {
            return Err(AllocError);
        }
        let (Ok(nbls), Ok(free_nbls), Ok(nbs)) = (try_vec(n), try_vec(n), try_vec(n)) else {
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
        let nbl_pool = unsafe { super::nbl_pool(handle, false) }.ok_or(AllocError)?;
        // SAFETY: as above.
        let Some(nb_pool) = (unsafe { super::nb_pool(handle) }) else {
            // SAFETY: the pool just made, with nothing allocated from it.
            unsafe { NdisFreeNetBufferListPool(nbl_pool) };
            return Err(AllocError);
        };
        Ok(ZcPool {
            nbl_pool,
            nb_pool,
            nbls,
            free_nbls,
            nbs,
            free_nb: ptr::null_mut(),
            n_free_nb: 0,
            limit: n,
            frames,
            geometry,
            mapping: umem.mapping(),
        })
    }

    /// Makes sure `want` frames can be taken if the bound allows (as many
    /// free NET_BUFFERs, and NBLs for them), allocating the ones never made
    /// yet; returns how many can, at most `want` (fewer when an allocation
    /// fails: low resources).
    #[inline(always)]
    pub fn ready(&mut self, want: usize) -> usize {
        let nbls = want.div_ceil(ZC_FRAMES_PER_NBL);
        if (self.n_free_nb < want && self.nbs.len() < self.limit)
            || (self.free_nbls.len() < nbls && self.nbls.len() < self.limit)
        {
            self.grow(want, nbls);
        }
        want.min(self.n_free_nb).min(self.free_nbls.len() * ZC_FRAMES_PER_NBL)
    }

    /// Makes NET_BUFFERs and NBLs until `want` and `nbls` are free, the
    /// bound is reached or an allocation fails (only the first kicks of a
    /// ring, or after low resources: out of the kick's line).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, want: usize, nbls: usize) {
        while self.n_free_nb < want && self.nbs.len() < self.limit {
            // SAFETY: a pool of NET_BUFFERs without data; no MDL yet
            // (`ZcFiller::fill` gives each send its frame's).
            let nb = unsafe { NdisAllocateNetBuffer(self.nb_pool, ptr::null_mut(), 0, 0) };
            if nb.is_null() {
                break;
            }
            // Room for `limit` was reserved (invariant).
            self.nbs.push(nb);
            // SAFETY: the NET_BUFFER just made, ours.
            let b = unsafe { &mut *nb };
            b.anon.anon.Next = self.free_nb;
            self.free_nb = nb;
            self.n_free_nb += 1;
        }
        while self.free_nbls.len() < nbls && self.nbls.len() < self.limit {
            // SAFETY: the pool makes NBLs with no NET_BUFFER.
            let nbl = unsafe { NdisAllocateNetBufferList(self.nbl_pool, 0, 0) };
            if nbl.is_null() {
                break;
            }
            self.nbls.push(nbl);
            self.free_nbls.push(nbl);
        }
    }

    /// Frames (NET_BUFFERs) NDIS has now (or a chain holds).
    pub fn out(&self) -> usize {
        self.nbs.len() - self.n_free_nb
    }

    /// Frames that could be sent now: the free NET_BUFFERs and those not
    /// made yet.
    pub fn room(&self) -> usize {
        self.limit - self.out()
    }

    /// A completion's view of the pool, to give NBLs back.
    #[inline(always)]
    pub fn returner(&mut self) -> ZcReturner<'_> {
        let (len, cap) = (self.free_nbls.len(), self.free_nbls.capacity());
        ZcReturner {
            base: self.free_nbls.as_mut_ptr(),
            len,
            cap,
            free_nb: self.free_nb,
            n_free_nb: self.n_free_nb,
            pool: self,
        }
    }

    /// A kick's view of the pool, to take NET_BUFFERs pointed at its
    /// frames and NBLs to carry them, chained for `ring`. `ahead`: the
    /// completion entry the kick's first frame reserves
    /// (`TxRun::ahead`), the next frame's the one after, and so on.
    #[inline(always)]
    pub fn filler<R: ZcRing>(&mut self, ring: &Arc<R>, ahead: u64) -> ZcFiller<'_, R> {
        let chain = ZcChain { links: NblLinks::EMPTY, nbls: 0, frames: 0, ring: ring.clone(), mapping: self.mapping };
        ZcFiller {
            n_free_nbls: self.free_nbls.len(),
            free_nb: self.free_nb,
            n_free_nb: self.n_free_nb,
            size: self.geometry.size,
            mdls: self.frames.table(),
            free_nbls: &mut self.free_nbls,
            pool_free_nb: &mut self.free_nb,
            pool_n_free_nb: &mut self.n_free_nb,
            chain: ManuallyDrop::new(chain),
            last_nb: ptr::null_mut(),
            open: ptr::null_mut(),
            ahead,
            in_order: true,
            bytes: 0,
            room: 0,
            opened: 0,
            finished: false,
        }
    }
}

/// A kick's view of a `ZcPool` (`ZcPool::filler`), which builds a
/// `ZcChain`: the free NBLs' count, the free NET_BUFFERs' list, and where
/// the frames' MDLs are, kept in the view rather than read again from the
/// pool for each frame (to the compiler, the writes into NET_BUFFERs
/// between frames might change the pool). The pool is brought up to date
/// when the view ends (`finish`).
///
/// Frames take the free NET_BUFFERs in the list's order, so the
/// NET_BUFFERs of an NBL are already linked by the list's `Next`: only the
/// last one's is cut (`close`), when the next NBL opens or the chain is
/// finished. An NBL reserves, as it opens, the NET_BUFFERs it may take
/// (`room`, up to `ZC_FRAMES_PER_NBL`), so that a frame only counts one
/// down; the ones it did not take go back to the count as it closes.
///
/// # Invariants
/// The first `n_free_nbls` entries of `free_nbls` are free NBLs. `free_nb`
/// heads a list of at least `room + n_free_nb` free NET_BUFFERs, the
/// first `room` of them reserved for the open NBL (the pool's count is
/// set when the view ends). What the view took from either is on `chain`.
/// Its last NBL, while open (`opened` is not 0), is `open`; it took
/// `opened - room` NET_BUFFERs (at least one), from its `FirstNetBuffer`
/// to `last_nb` by `Next`, the last one's `Next` still the free list's,
/// their frames of `bytes` bytes in all, and they are not counted in
/// `chain.frames` yet: `close` cuts that `Next`, sets the NBL's
/// `NBL_AHEAD` (`ahead` plus the chain's frames before it), `NBL_LAST`
/// and `NBL_SPAN` (written ahead if `in_order`), counts them, gives
/// `room` back to `n_free_nb` and sets `opened`, `room` and `bytes` to
/// 0. Every other NBL of the chain has those words set so, written ahead
/// only if `in_order`.
/// `chain` is taken (by `finish`) or dropped (by `abandon`) once, which
/// sets `finished`.
pub struct ZcFiller<'p, R: ZcRing> {
    free_nbls: &'p mut Vec<*mut NET_BUFFER_LIST>,
    n_free_nbls: usize,
    pool_free_nb: &'p mut *mut NET_BUFFER,
    pool_n_free_nb: &'p mut usize,
    free_nb: *mut NET_BUFFER,
    n_free_nb: usize,
    size: usize,
    mdls: MdlTable<'p>,
    chain: ManuallyDrop<ZcChain<R>>,
    last_nb: *mut NET_BUFFER,
    open: *mut NET_BUFFER_LIST,
    ahead: u64,
    in_order: bool,
    bytes: u64,
    room: usize,
    opened: usize,
    finished: bool,
}

impl<R: ZcRing> ZcFiller<'_, R> {
    /// Appends a frame of `len` bytes at UMEM offset `addr`, at `within`
    /// bytes into the UMEM's frame `index` (as the ring's logic placed it):
    /// a free NET_BUFFER pointed at it, on the chain's last NBL or, when
    /// that one is full, on a new one. False, and nothing taken, when
    /// those bytes do not lie in that frame (so the logic's figures are
    /// checked, not trusted). Panics when no
    /// NET_BUFFER (or NBL) is free (the caller takes no more than
    /// `ZcPool::ready` said).
    #[inline(always)]
    pub fn fill(&mut self, index: u64, within: u64, len: usize, addr: u64) -> bool {
        let Some(mdl) = self.mdls.get(index as usize) else { return false };
        // The length's lower bound (a header) is the logic's to check
        // (`TxRun::take`): bytes within the frame are safe to send at any
        // length.
        // Both are used as 32 bits, and checked so: a sum of two that
        // cannot wrap, whatever the caller passed.
        let (within, len) = (within as u32, len as u32);
        if u64::from(within) + u64::from(len) > self.size as u64 {
            return false;
        }
        if self.room == 0 {
            self.open_nbl();
        }
        self.room -= 1;
        let p = self.free_nb;
        // SAFETY: the first of the open NBL's reserved NET_BUFFERs (`room`
        // was not 0: invariant), ours.
        let nb = unsafe { &mut *p };
        // The frame's MDL, valid (and its pages locked) until the attach
        // IRP completes, which is not before this send is back (the ring's
        // contract); the offsets select the bytes within the frame. `Next`
        // stays the free list's: the next frame takes that one.
        nb.anon.anon.MdlChain = mdl;
        nb.anon.anon.CurrentMdl = mdl;
        nb.anon.anon.CurrentMdlOffset = within;
        nb.anon.anon.DataOffset = within;
        nb.anon.anon.anon.DataLength = len;
        nb.ProtocolReserved[NB_ADDR] = addr as PVOID;
        self.bytes += u64::from(len);
        self.free_nb = nb_fields(nb).Next;
        self.last_nb = p;
        true
    }

    /// Closes the last NBL, if open: its NET_BUFFERs cut from the free
    /// list and counted in the chain's frames, the ones it did not take
    /// free again.
    #[inline(always)]
    fn close(&mut self) {
        if self.opened != 0 {
            // SAFETY: the open NBL's last NET_BUFFER, ours (invariant: it
            // took at least one).
            let last = unsafe { &mut *self.last_nb };
            last.anon.anon.Next = ptr::null_mut();
            let k = self.opened - self.room;
            // SAFETY: the open NBL (invariant), ours.
            let n = unsafe { &mut *self.open };
            n.ProtocolReserved[NBL_AHEAD] = self.ahead.wrapping_add(self.chain.frames as u64) as usize as PVOID;
            n.ProtocolReserved[NBL_LAST] = self.last_nb.cast();
            n.ProtocolReserved[NBL_SPAN] = span(k, self.in_order, self.bytes) as PVOID;
            self.chain.frames += k;
            self.n_free_nb += self.room;
            (self.opened, self.room, self.bytes) = (0, 0, 0);
        }
    }

    /// The kick's frames' completion entries are not one after another
    /// (a descriptor between them was refused): none of its NBLs counts
    /// as written ahead (`TxRun::take`).
    #[cold]
    pub fn not_in_order(&mut self) {
        self.in_order = false;
        let mut cur = self.chain.links.head();
        while !cur.is_null() {
            // SAFETY: an NBL of the chain, ours.
            let n = unsafe { &mut *cur };
            let (k, _, bytes) = unspan(n.ProtocolReserved[NBL_SPAN] as usize);
            n.ProtocolReserved[NBL_SPAN] = span(k, false, bytes) as PVOID;
            cur = next_nbl(n);
        }
    }

    /// Puts a new NBL at the end of the chain, for the NET_BUFFERs that
    /// head the free list: as many as it may carry are reserved for it.
    #[inline(always)]
    fn open_nbl(&mut self) {
        self.close();
        assert!(self.n_free_nbls > 0, "the budget covers the NBLs");
        let room = self.n_free_nb.min(ZC_FRAMES_PER_NBL);
        assert!(room > 0 && !self.free_nb.is_null(), "the budget is the free NET_BUFFERs");
        self.n_free_nbls -= 1;
        let p = self.free_nbls[self.n_free_nbls];
        let c = &mut *self.chain;
        // SAFETY: a free NBL of the pool (invariant), ours.
        let n = unsafe { &mut *p };
        n.anon.anon.FirstNetBuffer = self.free_nb;
        n.anon2.Status = NDIS_STATUS_SUCCESS;
        n.NetBufferListInfo[Ieee8021QNetBufferListInfo] = ptr::null_mut();
        n.ProtocolReserved[RESERVED_RING] = Arc::as_ptr(&c.ring).cast_mut().cast();
        // SAFETY: as above; a free NBL is on no chain.
        unsafe { c.links.append(p) };
        c.nbls += 1;
        self.n_free_nb -= room;
        (self.opened, self.room, self.open) = (room, room, p);
    }

    /// The chain made, and the pool up to date: the view is done with
    /// (its drop does nothing more). Once only (a second call panics).
    /// Inlined, with the view borrowed rather than consumed, so that the
    /// view is not copied to be finished.
    #[inline(always)]
    pub fn finish(&mut self) -> ZcChain<R> {
        assert!(!self.finished, "a zero-copy filler finished twice");
        self.close();
        self.update_pool();
        self.finished = true;
        // SAFETY: taken once (`finished`, checked above, keeps another
        // call and `drop` from touching it).
        unsafe { ManuallyDrop::take(&mut self.chain) }
    }

    /// Brings the pool up to date with the view.
    #[inline(always)]
    fn update_pool(&mut self) {
        self.free_nbls.truncate(self.n_free_nbls);
        *self.pool_free_nb = self.free_nb;
        *self.pool_n_free_nb = self.n_free_nb;
    }

    /// A view dropped unfinished: its last NBL closed, the pool brought
    /// up to date and the chain dropped (out of the kick's line).
    #[cold]
    #[inline(never)]
    fn abandon(&mut self) {
        // The NBLs and NET_BUFFERs taken are on the chain (invariant): a
        // NET_BUFFER for each of its frames, once its last NBL is closed.
        self.close();
        self.update_pool();
        self.finished = true;
        // SAFETY: not taken (`finished` was false); dropped once. An
        // unsent chain with NBLs leaks them (`ZcChain`'s drop).
        unsafe { ManuallyDrop::drop(&mut self.chain) };
    }
}

impl<R: ZcRing> TxSend for &mut ZcFiller<'_, R> {
    #[inline(always)]
    fn send(&mut self, d: &TxDesc, len: usize, index: u64, within: u64) -> bool {
        self.fill(index, within, len, d.addr)
    }
}

impl<R: ZcRing> Drop for ZcFiller<'_, R> {
    /// Nothing once finished (`finish` brought the pool up to date and
    /// took the chain); else `abandon`.
    #[inline(always)]
    fn drop(&mut self) {
        if !self.finished {
            self.abandon();
        }
    }
}

impl Drop for ZcPool {
    fn drop(&mut self) {
        if self.n_free_nb != self.nbs.len() || self.free_nbls.len() != self.nbls.len() {
            crate::safety_net!("zero-copy pool released with {} frames not back; leaking it", self.out());
            // Its frames' MDLs too: NDIS may still read them.
            core::mem::forget(core::mem::replace(&mut self.frames, FrameMdls::empty()));
            return;
        }
        for &nb in &self.nbs {
            // SAFETY: a NET_BUFFER of this pool, back (all are free), ours.
            let b = unsafe { &mut *nb };
            // The frames' MDLs are freed below, apart from the NET_BUFFERs.
            b.anon.anon.Next = ptr::null_mut();
            b.anon.anon.MdlChain = ptr::null_mut();
            b.anon.anon.CurrentMdl = ptr::null_mut();
            // SAFETY: allocated from `nb_pool`, back, on no NBL.
            unsafe { NdisFreeNetBuffer(nb) };
        }
        for &nbl in &self.nbls {
            // SAFETY: an NBL of this pool, back (all are free), ours; its
            // NET_BUFFERs were freed above.
            let n = unsafe { &mut *nbl };
            n.anon.anon.FirstNetBuffer = ptr::null_mut();
            // SAFETY: as above.
            unsafe { NdisFreeNetBufferList(nbl) };
        }
        // The frames' MDLs go with `frames`, now that nothing holds them.
        // SAFETY: everything allocated from the pool is freed.
        unsafe { NdisFreeNetBufferPool(self.nb_pool) };
        // SAFETY: as above.
        unsafe { NdisFreeNetBufferListPool(self.nbl_pool) };
    }
}

/// Filled zero-copy NBLs of one ring, chained for one send. The chain
/// holds a count of the ring, which each of its NBLs names.
///
/// # Invariants
/// `mapping` is where the UMEM of the pool the NBLs came from is mapped,
/// and its length: valid while the chain holds NBLs of it (the pool is
/// dropped, and the UMEM unmapped, only once all its NBLs are back).
/// `links` are `nbls` NBLs, each with 1 to `ZC_FRAMES_PER_NBL`
/// NET_BUFFERs (`frames` in all; while a `ZcFiller` builds it, those of
/// its open NBL are counted when it closes).
pub struct ZcChain<R> {
    links: NblLinks,
    nbls: usize,
    frames: usize,
    ring: Arc<R>,
    mapping: (NonNull<u8>, usize),
}

/// The frames of a `ZcChain`, in order, as the NIC will read them.
#[derive(Clone)]
pub struct ZcFrames<'a> {
    nbl: *mut NET_BUFFER_LIST,
    nb: *mut NET_BUFFER,
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
        while self.nb.is_null() {
            if self.nbl.is_null() {
                return None;
            }
            // SAFETY: an NBL of the chain `self` borrows, which owns it.
            let n = unsafe { &*self.nbl };
            self.nb = first_nb(n);
            self.nbl = next_nbl(n);
        }
        // SAFETY: a NET_BUFFER of an NBL of the chain, owned as it is.
        let nb = unsafe { &*self.nb };
        self.nb = nb_fields(nb).Next;
        let off = nb.ProtocolReserved[NB_ADDR] as usize;
        // The length the kick set (the chain is still its).
        let len = super::nb_data_length(nb) as usize;
        // `ZcFiller::fill` put the frame inside one frame of the UMEM.
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
    /// The chain's frames, in order.
    pub fn frames(&self) -> ZcFrames<'_> {
        ZcFrames {
            nbl: self.links.head(),
            nb: ptr::null_mut(),
            mapping: self.mapping,
            _chain: core::marker::PhantomData,
        }
    }

    /// Its frames.
    pub fn len(&self) -> usize {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Takes the chain apart without sending it: its NBLs back, with their
    /// ring (the chain's count goes with them).
    pub fn unsent(mut self) -> ZcReturns<R> {
        let head = self.links.take();
        self.nbls = 0;
        self.frames = 0;
        // SAFETY: the chain's NBLs never went to NDIS (`self` is unsent),
        // and each names `self.ring` (as `ZcChain` says).
        unsafe { ZcReturns::unsent(head, self.ring.clone()) }
    }
}

impl<R> Drop for ZcChain<R> {
    fn drop(&mut self) {
        if self.nbls != 0 {
            crate::safety_net!("an unsent zero-copy chain was dropped; leaking it");
            // Its NBLs name the ring: it must outlive them.
            core::mem::forget(self.ring.clone());
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
        if chain.nbls == 0 {
            return Ok(0);
        }
        let mut st = GateState::new();
        let gate = self.gate().read(&mut st, Irql::AtMostDispatch);
        {
            let mut c = self.core.lock_dpr(gate.at_dispatch());
            if !c.ndis_running || c.low_power || c.send_shape.max_frame != max_frame {
                return Err(chain);
            }
            c.sends_in_flight += chain.nbls as u64;
        }
        // Counted before NDIS can complete any (the completion subtracts),
        // and the ring kept by its anchor until they are all back.
        self.zc_in_flight.fetch_add(chain.nbls, Ordering::AcqRel);
        ZcAnchor::enter(&chain.ring, chain.nbls);
        sending(chain.frames());
        let handle = self.ndis_handle();
        let mut cur = chain.links.head();
        while !cur.is_null() {
            // SAFETY: the chain's NBLs are ours until the send below.
            let n = unsafe { &mut *cur };
            n.SourceHandle = handle;
            cur = next_nbl(n);
        }
        let (head, frames) = (chain.links.take(), chain.frames);
        chain.nbls = 0;
        chain.frames = 0;
        // SAFETY: NBLs of a zero-copy pool, each with SourceHandle
        // set and the MDL of a UMEM that stays locked until its
        // completion comes back (the ring's contract); from here NDIS owns
        // them until `send_net_buffer_lists_complete`. The gate keeps a
        // pause from beginning across the call, at DISPATCH_LEVEL.
        unsafe { NdisSendNetBufferLists(handle, head, 0, NDIS_SEND_FLAGS_DISPATCH_LEVEL) };
        drop(gate);
        Ok(frames)
    }
}
