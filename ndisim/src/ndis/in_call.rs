//! The driver's calls that take a binding handle, counted while they run
//! (rule close-during-call): `NdisCloseAdapterEx` while another thread is
//! still inside `NdisOidRequest`, `NdisCancelOidRequest`,
//! `NdisSendNetBufferLists`, `NdisCompleteNetPnPEvent` (or the close
//! itself) on that handle closes it under the call: on Windows the open
//! block that call reads goes with the close. `NdisReturnNetBufferLists`
//! may overlap the close (receives may come until the close completes,
//! and are given back with the handle), but not outlive its completion.
//! Cheap: an atomic add and subtract on the binding, and a thread-local
//! list of this thread's calls, per call.

use super::{BINDING_MAGIC, Binding, Ndis};
use crate::verifier::{Rule, Violation};
use ndis_sys::NDIS_HANDLE;
use std::cell::RefCell;
use std::sync::atomic::Ordering;

thread_local! {
    /// The bindings this thread is inside a call on (a handler NDIS calls
    /// inside one may call again: nested calls are its own, not another
    /// thread's).
    static MINE: RefCell<Vec<(usize, bool)>> = const { RefCell::new(Vec::new()) };
}

/// A call on a binding handle, counted until it is dropped (at the end of
/// the export).
pub(crate) struct InCall {
    b: &'static Binding,
    ret: bool,
}

impl std::ops::Deref for InCall {
    type Target = Binding;
    fn deref(&self) -> &Binding {
        self.b
    }
}

impl InCall {
    /// The binding, for comparisons by address.
    pub(crate) fn get(&self) -> &'static Binding {
        self.b
    }
}

impl Drop for InCall {
    fn drop(&mut self) {
        // Each call in one count only: a close that read two counts a
        // call moved between would see a call that is not there.
        if self.ret {
            self.b.in_returns.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.b.in_calls.fetch_sub(1, Ordering::SeqCst);
        }
        let me = self.b as *const Binding as usize;
        MINE.with_borrow_mut(|v| {
            if let Some(i) = v.iter().rposition(|&(x, _)| x == me) {
                v.swap_remove(i);
            }
        });
    }
}

/// This thread's calls on `b` running now: returns, and the others.
fn mine(b: &Binding) -> (u64, u64) {
    let me = b as *const Binding as usize;
    MINE.with_borrow(|v| {
        let calls = v.iter().filter(|&&(x, _)| x == me);
        let returns = calls.clone().filter(|&&(_, ret)| ret).count() as u64;
        (calls.count() as u64 - returns, returns)
    })
}

/// At `NdisCloseAdapterEx` (after it marked the handle closing): reports
/// the calls other than returns that other threads are still inside.
pub(super) fn check_close(b: &Binding, h: usize) {
    let others = b.in_calls.load(Ordering::SeqCst) - mine(b).0;
    if others != 0 {
        Violation::new(
            Rule::CloseDuringCall,
            "NdisCloseAdapterEx",
            format!(
                "closed the binding while {others} call(s) on its handle (NdisOidRequest, NdisCancelOidRequest, \
                 NdisSendNetBufferLists, ...) still run on other threads: the close frees what they use"
            ),
        )
        .with_binding(b.name.clone())
        .with_object(h)
        .report();
    }
}

/// When the close completes (in `NdisCloseAdapterEx`, or when NDIS
/// completes a pended one): reports the returns still running on other
/// threads (the other calls were reported at the close, or as uses after
/// it).
pub(super) fn check_close_complete(b: &Binding, call: &str) {
    let others = b.in_returns.load(Ordering::SeqCst) - mine(b).1;
    if others != 0 {
        Violation::new(
            Rule::CloseDuringCall,
            call,
            format!(
                "the close completed while {others} NdisReturnNetBufferLists call(s) on the binding's handle still \
                 run on other threads"
            ),
        )
        .with_binding(b.name.clone())
        .report();
    }
}

impl Ndis {
    /// The binding a handle names, checking it, and counted as in a call
    /// until the guard is dropped. `allow_closed`: the call is a return of
    /// received NBLs (allowed after the close began).
    pub(super) fn binding(&self, h: NDIS_HANDLE, call: &str, allow_closed: bool) -> Option<InCall> {
        let p = h as usize;
        if p < 0x10000 || p % 8 != 0 {
            Violation::new(Rule::InvalidParameter, call, "NdisBindingHandle is not a binding handle NDIS gave out")
                .with_object(p)
                .report();
            return None;
        }
        // SAFETY: binding handles point at `Binding`s that live until the
        // simulation ends (kept in `bindings`); the magic rejects others.
        let b = unsafe { &*(p as *const Binding) };
        if b.magic != BINDING_MAGIC {
            Violation::new(Rule::InvalidParameter, call, "NdisBindingHandle is not a binding handle NDIS gave out")
                .with_object(p)
                .report();
            return None;
        }
        // Counted before the handle is checked (a close marks it before it
        // counts): a close either finds this call or this call finds the
        // handle closing.
        if allow_closed {
            b.in_returns.fetch_add(1, Ordering::SeqCst);
        } else {
            b.in_calls.fetch_add(1, Ordering::SeqCst);
        }
        MINE.with_borrow_mut(|v| v.push((p, allow_closed)));
        let g = InCall { b, ret: allow_closed };
        if (b.closed.load(Ordering::SeqCst) || b.close_called.load(Ordering::SeqCst)) && !allow_closed {
            drop(g);
            Violation::new(
                Rule::InvalidParameter,
                call,
                "used a binding handle after NdisCloseAdapterEx (it is invalid from that call on)",
            )
            .with_binding(b.name.clone())
            .with_object(p)
            .report();
            return None;
        }
        Some(g)
    }
}
