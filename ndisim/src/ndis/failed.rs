//! Sends NDIS or the miniport failed, kept as the adapter's capture keeps
//! what it sent (`Sim::take_failed_sends`): a test that looks for every
//! frame a driver said it sent finds each on the wire or here.

use super::{Binding, Kernel};
use crate::nbl;
use crate::verifier::lock;
use ndis_sys::*;
use std::sync::atomic::Ordering;

/// Keeps the frames of send NBL `n` of binding `b`, completed with a
/// failure, when its adapter captures.
///
/// # Safety
/// NDIS owns `n` (it is being completed), and the memory its MDLs describe
/// is still locked.
pub(super) unsafe fn keep(k: &Kernel, b: &Binding, n: *mut NET_BUFFER_LIST) {
    let a = k.ndis.adapter(b.adapter);
    if !a.capture.load(Ordering::Relaxed) {
        return;
    }
    let mut kept = lock(&a.failed_sends);
    // SAFETY: per the caller: the NBL, its NET_BUFFERs and their data are
    // valid while NDIS owns it.
    unsafe {
        let mut nb = (*n).anon.anon.FirstNetBuffer;
        while !nb.is_null() {
            let mut data = Vec::with_capacity((*nb).anon.anon.anon.DataLength as usize);
            nbl::copy_nb(nb, &mut data);
            kept.push(data);
            nb = (*nb).anon.anon.Next;
        }
    }
}
