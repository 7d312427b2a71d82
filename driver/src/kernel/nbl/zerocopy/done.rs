//! Zero-copy NBLs back from NDIS (or never sent): walked a run of one
//! ring's at a time (`ZcReturns::for_each_run`), each NBL a `ZcDone`
//! whose frames (`ZcDoneFrames`) `ZcReturner::put` hands to the ring as it
//! puts the NBL and its NET_BUFFERs back in the pool.

use super::{NB_ADDR, NBL_AHEAD, NBL_LAST, NBL_SPAN, RESERVED_RING, ZcAnchor, ZcPool, ZcRing, unspan};
use crate::kernel::nbl::{first_nb, nb_fields, next_nbl};
use alloc::sync::Arc;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use ndis_sys::*;

/// A zero-copy NBL back from NDIS (or never sent), with its frames'
/// NET_BUFFERs, and whether NDIS sent them (one status for all): to give
/// back with `ZcReturner::put`.
#[must_use = "give it back with ZcReturner::put"]
pub struct ZcDone {
    pub(super) nbl: NonNull<NET_BUFFER_LIST>,
    pub ok: bool,
}

// SAFETY: an NBL the holder owns, usable from any thread.
unsafe impl Send for ZcDone {}

impl ZcDone {
    /// Hands `f` its frames (their UMEM offsets, in order, which `f` may
    /// leave unread when their completion entries were written ahead:
    /// `ZcDoneFrames::ahead`). Returns its first and last NET_BUFFERs,
    /// how many it has and their frames' bytes, as the kick that sent it
    /// recorded them (`ZcFiller::close`).
    #[inline(always)]
    pub(super) fn walk(&self, f: impl FnOnce(&mut ZcDoneFrames<'_>)) -> (*mut NET_BUFFER, *mut NET_BUFFER, usize, u64) {
        // SAFETY: an NBL that is ours again (`ZcDone`), with its chain of
        // NET_BUFFERs and its words as `ZcFiller` made them.
        let n = unsafe { self.nbl.as_ref() };
        let (first, last) = (first_nb(n), n.ProtocolReserved[NBL_LAST].cast::<NET_BUFFER>());
        let (k, in_order, bytes) = unspan(n.ProtocolReserved[NBL_SPAN] as usize);
        assert!(k != 0 && !first.is_null() && !last.is_null(), "a zero-copy NBL with no NET_BUFFER");
        let ahead = in_order.then_some((n.ProtocolReserved[NBL_AHEAD] as usize as u64, k as u32));
        f(&mut ZcDoneFrames { cur: first, ahead, _done: core::marker::PhantomData });
        (first, last, k, bytes)
    }

    /// Hands `f` its frames and leaks the NBL (when its pool is gone: never
    /// while NBLs are out). Returns the frames and their bytes.
    pub fn leak(self, f: impl FnOnce(&mut ZcDoneFrames<'_>)) -> (usize, u64) {
        let (_, _, k, bytes) = self.walk(f);
        (k, bytes)
    }
}

/// A completion's view of a `ZcPool` (`ZcPool::returner`): the free NBLs'
/// count and the free NET_BUFFERs' list kept in the view while NBLs come
/// back, set in the pool when it ends.
///
/// # Invariants
/// `base` is `pool.free_nbls`' buffer, of `cap` entries, of which the
/// first `len` are set (`len <= cap`); `free_nb` heads a list of
/// `n_free_nb` free NET_BUFFERs. `pool` is borrowed for the view's life,
/// so the buffer neither moves nor changes under it.
pub struct ZcReturner<'p> {
    pub(super) pool: &'p mut ZcPool,
    pub(super) base: *mut *mut NET_BUFFER_LIST,
    pub(super) len: usize,
    pub(super) cap: usize,
    pub(super) free_nb: *mut NET_BUFFER,
    pub(super) n_free_nb: usize,
}

impl ZcReturner<'_> {
    /// Gives back an NBL NDIS handed back (or one never sent) and its
    /// NET_BUFFERs, after `f` has seen its frames (their UMEM offsets, in
    /// order; what `f` leaves is walked here). Returns the frames and
    /// their bytes.
    #[inline(always)]
    pub fn put(&mut self, d: ZcDone, f: impl FnOnce(&mut ZcDoneFrames<'_>)) -> (usize, u64) {
        // Room for every NBL of the pool was reserved at creation.
        assert!(self.len < self.cap, "more NBLs back than the pool made");
        let (first, last, k, bytes) = d.walk(f);
        // SAFETY: the NBL's last NET_BUFFER, ours again: the NBL's chain
        // goes on the free list whole.
        let last = unsafe { &mut *last };
        last.anon.anon.Next = self.free_nb;
        self.free_nb = first;
        self.n_free_nb += k;
        // SAFETY: `len < cap`: inside the buffer (invariant).
        let slot = unsafe { self.base.add(self.len) };
        // SAFETY: an entry of the buffer past its set ones, which nothing
        // else reaches while the view lives (invariant).
        unsafe { slot.write(d.nbl.as_ptr()) };
        self.len += 1;
        (k, bytes)
    }
}

impl Drop for ZcReturner<'_> {
    fn drop(&mut self) {
        // SAFETY: the first `len <= cap` entries are set (invariant).
        unsafe { self.pool.free_nbls.set_len(self.len) };
        self.pool.free_nb = self.free_nb;
        self.pool.n_free_nb = self.n_free_nb;
    }
}

/// The frames of a `ZcDone`: each one's UMEM offset, in order.
///
/// # Invariants
/// `cur` is the NET_BUFFER to see next (null at the end), the `ZcDone`'s,
/// which `'a` borrows.
pub struct ZcDoneFrames<'a> {
    cur: *mut NET_BUFFER,
    ahead: Option<(u64, u32)>,
    _done: core::marker::PhantomData<&'a ZcDone>,
}

impl ZcDoneFrames<'_> {
    /// (where the first's completion entry was reserved, counted in 64
    /// bits as `TxRun::ahead` counts it, how many), when
    /// the kick wrote their entries ahead, one after another from there
    /// (`TxRun::take`, `CompRun::complete_ahead`).
    #[inline(always)]
    pub fn ahead(&self) -> Option<(u64, u32)> {
        self.ahead
    }
}

impl Iterator for ZcDoneFrames<'_> {
    type Item = u64;

    #[inline(always)]
    fn next(&mut self) -> Option<u64> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: a NET_BUFFER of the NBL, ours as it is (invariant).
        let nb = unsafe { &*self.cur };
        self.cur = nb_fields(nb).Next;
        Some(nb.ProtocolReserved[NB_ADDR] as u64)
    }
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
///
/// # Safety
/// `nbl` is an NBL that is ours (not with NDIS).
unsafe fn ring_of<R>(nbl: *mut NET_BUFFER_LIST) -> *const R {
    // SAFETY: ours (the caller's promise).
    unsafe { (*nbl).ProtocolReserved[RESERVED_RING] }.cast_const().cast()
}

impl<R: ZcRing> Iterator for ZcRun<'_, R> {
    type Item = ZcDone;

    #[inline]
    fn next(&mut self) -> Option<ZcDone> {
        let p = NonNull::new(self.returns.cur)?;
        // SAFETY: an NBL of the chain, ours (`ZcReturns`' invariant).
        if unsafe { ring_of::<R>(p.as_ptr()) } != self.ring {
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
        self.n += 1;
        Some(ZcDone { nbl: p, ok })
    }
}

impl<R: ZcRing> ZcReturns<R> {
    /// The NBLs of a completed chain, which `ZcFiller::fill` named rings
    /// of type `R` in and `Binding::send_zc` counted in their anchors.
    ///
    /// # Safety
    /// `head` is a chain (or null) NDIS gave back, of zero-copy NBLs only,
    /// each naming a ring of type `R` whose anchor counts it (the
    /// invariant).
    pub(in crate::kernel::nbl) unsafe fn completed(head: *mut NET_BUFFER_LIST) -> Self {
        ZcReturns { cur: head, held: None }
    }

    /// The NBLs of a chain never sent (`ZcChain::unsent`), with the
    /// chain's count of their ring.
    ///
    /// # Safety
    /// `head` is a chain (or null) of zero-copy NBLs that never went to
    /// NDIS, each naming `ring` (the invariant, with `held`).
    pub(super) unsafe fn unsent(head: *mut NET_BUFFER_LIST, ring: Arc<R>) -> Self {
        ZcReturns { cur: head, held: Some(ring) }
    }

    /// Hands the NBLs to `f` a run at a time: consecutive NBLs of one
    /// ring, with that ring. `f` should take every NBL of its run (each
    /// goes back to its pool); one it leaves is leaked, and its ring with
    /// it.
    pub fn for_each_run(mut self, mut f: impl FnMut(&Arc<R>, &mut ZcRun<'_, R>)) {
        while !self.cur.is_null() {
            // SAFETY: `cur` is not null: an NBL of the chain, ours (the
            // invariant).
            let ptr = unsafe { ring_of::<R>(self.cur) };
            // A strong count of the ring is held for as long as its NBLs
            // of this run are not counted back (invariant): the `Arc` made
            // here borrows it, and is never dropped.
            // SAFETY: `ptr` is an `Arc::as_ptr` of a live `Arc<R>`.
            let ring = ManuallyDrop::new(unsafe { Arc::from_raw(ptr) });
            let mut run = ZcRun { returns: &mut self, ring: ptr, n: 0 };
            f(&ring, &mut run);
            let n = run.n;
            // SAFETY: when not null, `cur` is an NBL of the chain, ours
            // (the invariant).
            if !self.cur.is_null() && unsafe { ring_of::<R>(self.cur) } == ptr {
                crate::safety_net!("zero-copy returns left untaken; leaking them and their ring");
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
            crate::safety_net!("zero-copy returns dropped unwalked; leaking them");
            // Their rings must outlive them.
            if let Some(r) = self.held.take() {
                core::mem::forget(r);
            }
        }
    }
}
