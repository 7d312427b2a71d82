//! Retained receive NBLs.
//!
//! A `RetainedFrame` keeps the NBL its frame lives in; the NBL goes back to
//! NDIS when the last frame of it (and the indication that walked it) let
//! go. Retaining is refused unless NDIS considers the binding Running,
//! checked under the binding's lock, so once a pause has begun no NBL is
//! retained; the pause completes only when every retained NBL is back.

use super::RETAIN_BUDGET;
use super::frame::sealed::Holder;
use super::frame::{FrameParts, ReceivedFrame};
use crate::kernel::protocol::{Binding, Protocol};
use crate::kernel::sync::Irql;
use alloc::sync::Arc;
use core::ptr::NonNull;
use ndis_sys::*;

#[derive(Clone, Copy)]
struct Slot {
    nbl: usize,
    refs: u32,
    generation: u32,
}

/// Retained NBLs of one binding, with their reference counts. Fixed size:
/// retaining never allocates.
pub(crate) struct RetainTable {
    slots: [Slot; RETAIN_BUDGET],
    free: [u16; RETAIN_BUDGET],
    n_free: usize,
}

impl RetainTable {
    pub(crate) fn new() -> Self {
        let mut free = [0u16; RETAIN_BUDGET];
        for (i, f) in free.iter_mut().enumerate() {
            *f = (RETAIN_BUDGET - 1 - i) as u16;
        }
        RetainTable { slots: [Slot { nbl: 0, refs: 0, generation: 0 }; RETAIN_BUDGET], free, n_free: RETAIN_BUDGET }
    }

    /// Whether some NBL is retained.
    pub(crate) fn in_use(&self) -> bool {
        self.n_free != RETAIN_BUDGET
    }
}

/// Retains `nbl` for one more frame: a new slot (`existing` None) or one
/// more reference on the NBL's slot. `None` when the binding is not Running
/// or the budget is used up.
pub(super) fn retain_slot<T: Protocol>(
    b: &Binding<T>,
    nbl: *mut NET_BUFFER_LIST,
    existing: Option<(u16, u32)>,
    irql: Irql<'_>,
) -> Option<(u16, u32)> {
    let mut c = b.core.lock_at(irql);
    // Only while NDIS itself considers the binding Running: not in the
    // moment between the logic finishing a restart and NDIS hearing of it
    // (an indication NDIS began while Paused may arrive then), nor once a
    // pause began.
    if !c.ndis_running {
        return None;
    }
    match existing {
        Some((s, generation)) => {
            let e = &mut c.retain.slots[s as usize];
            if e.generation != generation || e.refs == 0 {
                return None;
            }
            e.refs += 1;
            Some((s, generation))
        }
        None => {
            let t = &mut c.retain;
            if t.n_free == 0 {
                return None;
            }
            t.n_free -= 1;
            let s = t.free[t.n_free];
            let e = &mut t.slots[s as usize];
            // One reference for the frame, one for the indication until
            // every frame of the NBL has been handed out.
            e.generation = e.generation.wrapping_add(1);
            *e = Slot { nbl: nbl as usize, refs: 2, generation: e.generation };
            let generation = e.generation;
            c.retained += 1;
            Some((s, generation))
        }
    }
}

/// Drops one reference of a slot; the last one gives the NBL back (with
/// the NBLs of the next indication to end, if one is running).
pub(super) fn release_slot<T: Protocol>(b: &Binding<T>, s: u16, generation: u32) {
    let mut c = b.core.lock();
    let e = &mut c.retain.slots[s as usize];
    if e.generation != generation || e.refs == 0 {
        crate::safety_net!("retention slot {s} released twice");
        return;
    }
    e.refs -= 1;
    if e.refs != 0 {
        return;
    }
    let nbl = e.nbl as *mut NET_BUFFER_LIST;
    e.nbl = 0;
    let t = &mut c.retain;
    t.free[t.n_free] = s;
    t.n_free += 1;
    // Never returned from here: the frame may drop where its caller holds
    // a lock its receive handler takes, and a miniport may indicate from
    // inside `NdisReturnNetBufferLists` (one that had a frame waiting for
    // this buffer). The next indication to end returns it, with its own;
    // with none running, `flush_returns` does, called by the caller once
    // it let go of its locks or else by the binding's work item.
    // SAFETY: the slot's NBL, retained by this binding, its last
    // reference just dropped (nothing reads it again) and its slot
    // emptied, so it goes on no chain twice.
    unsafe { c.deferred_returns.push(nbl) };
    let idle = c.indicating == 0;
    drop(c);
    if idle {
        b.defer(crate::kernel::protocol::DEFER_RETURNS);
    }
}

/// The binding side of retention, without its type parameter.
pub(crate) trait RetainHost: Send + Sync {
    fn release(&self, slot: u16, generation: u32);
}

impl<T: Protocol> RetainHost for Binding<T> {
    fn release(&self, slot: u16, generation: u32) {
        release_slot(self, slot, generation);
    }
}

/// A received frame rawnic kept after the indication. Its NBL goes back to
/// NDIS when the last `RetainedFrame` of it drops.
///
/// # Invariants
/// `host` is the binding whose retention table holds `slot` at
/// `generation`, with a reference counted for this frame; `nb` belongs to
/// that slot's NBL, which stays rawnic's while the reference exists.
pub struct RetainedFrame {
    host: Arc<dyn RetainHost>,
    slot: u16,
    generation: u32,
    nb: NonNull<NET_BUFFER>,
    len: u32,
    tci: u16,
}

// SAFETY: a retained NBL may be read and returned from any thread; the
// host is `Send + Sync`.
unsafe impl Send for RetainedFrame {}

impl RetainedFrame {
    pub(super) fn new<T: Protocol>(
        host: Arc<Binding<T>>,
        slot: (u16, u32),
        nb: NonNull<NET_BUFFER>,
        len: u32,
        tci: u16,
    ) -> Self {
        RetainedFrame { host, slot: slot.0, generation: slot.1, nb, len, tci }
    }
}

// SAFETY: the NBL is retained (invariant), so the NET_BUFFER and its
// memory stay valid and ours while the `RetainedFrame` exists.
unsafe impl Holder for RetainedFrame {
    fn parts(&self) -> FrameParts {
        FrameParts { nb: self.nb, len: self.len, tci: self.tci }
    }
}

impl ReceivedFrame for RetainedFrame {}

impl Drop for RetainedFrame {
    fn drop(&mut self) {
        self.host.release(self.slot, self.generation);
    }
}
