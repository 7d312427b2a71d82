//! Status indications: link state from the adapter model, and any status
//! code with any buffer (`indicate_status`); and the ones an adapter with
//! `bind-status=N` makes while a binding's bind is still in progress
//! (`opened`).

use super::*;
use crate::kernel::{DISPATCH_LEVEL, Kernel, PASSIVE_LEVEL, call_driver};
use crate::verifier::lock;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// `a`'s binding once its open completed (what status indications and PnP
/// events go to), or why there is none.
pub(crate) fn open_binding(a: &Adapter) -> Result<Arc<Binding>, SimError> {
    lock(&a.binding)
        .clone()
        .filter(|b| !matches!(b.state(), BindingState::Opening | BindingState::Unbound))
        .ok_or_else(|| SimError::State(format!("adapter {} is not bound", a.name)))
}

/// The binding status indications go to: the bound one, or one whose
/// open succeeded while its bind is still in progress (on Windows the
/// open is on the miniport's open list from then on, and the binding
/// Paused, so `ProtocolStatusEx` may come before the bind handler
/// returns), unless its close began.
pub(crate) fn status_binding(a: &Adapter) -> Result<Arc<Binding>, SimError> {
    open_binding(a).or_else(|e| {
        lock(&a.opening)
            .clone()
            .filter(|b| b.open_done.load(Ordering::Acquire) && !b.close_called.load(Ordering::Acquire))
            .ok_or(e)
    })
}

/// Waits until the adapter's `bind-status` indications are done (a link
/// change of the harness's comes after them, so the adapter's link state
/// is the last one indicated).
pub(crate) fn settle_statuses(k: &Kernel, a: &Adapter) {
    if !k.wait_until(k.config.watchdog, "bind-status indications", || a.status_jobs.load(Ordering::Acquire) == 0) {
        crate::kernel::internal_error(format!("the bind-status indications of {} did not end", a.name));
    }
}

/// The adapter's link state, once its `bind-status` indications are done.
pub(crate) fn link_state(k: &Kernel, a: &Adapter) -> bool {
    settle_statuses(k, a);
    lock(&a.model).link_up
}

/// One adapter's link change at a time, from the model's update to the
/// end of its indication (a miniport that tells its link changes in the
/// order they happened): without it the harness's change and a
/// `bind-status` flip could each update the model and then indicate in
/// the other order, and the driver rightly keep the wrong one.
struct LinkGate<'a>(&'a AtomicBool);

impl<'a> LinkGate<'a> {
    fn take(k: &Kernel, a: &'a Adapter) -> Self {
        let g = &a.link_gate;
        let free = || g.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok();
        if !free() {
            k.wait_forever("an adapter's link indication", free, || std::thread::sleep(Duration::from_micros(20)));
        }
        LinkGate(g)
    }
}

impl Drop for LinkGate<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Sets the adapter's link state and indicates `NDIS_STATUS_LINK_STATE`
/// (to its binding, if open, or opened by a bind in progress; a binding
/// whose close began hears nothing, and the next one's bind parameters
/// carry the new state).
pub(crate) fn link(k: &Kernel, a: &Adapter, up: bool) -> Result<(), SimError> {
    settle_statuses(k, a);
    let _gate = LinkGate::take(k, a);
    lock(&a.model).link_up = up;
    let Ok(b) = status_binding(a) else { return Ok(()) };
    let Some(call) = b.enter_call(false) else { return Ok(()) };
    indicate_link(k, a, &call, up);
    Ok(())
}

fn indicate_link(k: &Kernel, a: &Adapter, call: &CallGuard<'_>, up: bool) {
    let m = lock(&a.model).clone();
    // SAFETY: plain data.
    let mut l: NDIS_LINK_STATE = unsafe { std::mem::zeroed() };
    l.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NDIS_LINK_STATE_REVISION_1,
        Size: NDIS_SIZEOF_LINK_STATE_REVISION_1,
    };
    l.MediaConnectState = if up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
    l.MediaDuplexState = MediaDuplexStateFull;
    l.XmitLinkSpeed = if up { m.speed } else { 0 };
    l.RcvLinkSpeed = l.XmitLinkSpeed;
    // SAFETY: `l` is plain data, read during the call.
    let buf = unsafe {
        std::slice::from_raw_parts((&l as *const NDIS_LINK_STATE).cast::<u8>(), std::mem::size_of::<NDIS_LINK_STATE>())
    };
    deliver(k, a, call, NDIS_STATUS_LINK_STATE, buf, DISPATCH_LEVEL);
}

/// A status code no protocol knows (`bind-status`'s garbage indications).
pub const UNKNOWN_STATUS: NDIS_STATUS = 0x4001_0BAD;

/// `b`'s open of `a` succeeded (`NdisOpenAdapterEx` returns success, or
/// NDIS is about to call `ProtocolOpenAdapterCompleteEx`): status
/// indications reach it from here on, and with `bind-status=N` the
/// miniport makes N of them from a deferred-work thread, racing the bind
/// handler (a scheduling point apart in a deterministic run). Half the
/// time the caller (the open, or the open's completion) goes on only once
/// the first indication began, or after 200 µs: a free-running thread
/// that wakes for the work would otherwise mostly come after a bind
/// handler that is quick.
pub(crate) fn opened(k: &Kernel, a: &Arc<Adapter>, b: &Arc<Binding>) {
    *lock(&a.opening) = Some(b.clone());
    let n = a.spec.bind_status;
    if n == 0 {
        return;
    }
    a.status_jobs.fetch_add(1, Ordering::AcqRel);
    let seed = a.opens.load(Ordering::Acquire) ^ ((a.idx as u64) << 32);
    let started = Arc::new(AtomicBool::new(false));
    let (a2, b2, s2) = (a.clone(), b.clone(), started.clone());
    k.dpc_passive(
        move || {
            if let Some(k) = crate::kernel::kernel() {
                bind_statuses(k, &a2, &b2, n, seed, &s2);
            }
            s2.store(true, Ordering::Release);
            a2.status_jobs.fetch_sub(1, Ordering::AcqRel);
        },
        "bind-status indications",
    );
    if seed & 1 == 0 {
        k.wait_until(Duration::from_micros(200), "the first bind-status indication", || {
            started.load(Ordering::Acquire)
        });
    }
}

/// `bind-status`'s indications: link flips (the adapter's link state
/// changes with each) and, every third, `UNKNOWN_STATUS` with garbage,
/// until `b` takes no more indications (its close stops them).
/// `started` is set as the first begins.
fn bind_statuses(k: &Kernel, a: &Adapter, b: &Binding, n: u32, seed: u64, started: &AtomicBool) {
    let mut r = crate::rng::Rng::new(seed ^ 0x6269_6E64_7374_6174);
    for i in 0..n {
        // A while apart (the first at once): a few scheduling points under
        // the deterministic scheduler (whose virtual time a sleep would let
        // the bind finish in first), up to 20 µs free-running.
        match r.below(20) {
            _ if i == 0 => {}
            us if k.sched_here().is_some() || us < 5 => {
                for _ in 0..=us % 4 {
                    k.yield_point("bind-status");
                }
            }
            us => k.sleep(Duration::from_micros(us)),
        }
        // The call is entered before the model changes: a flip whose
        // indication the close would refuse must not happen at all (the
        // next binding's bind parameters would carry the state the model
        // had before it, and no indication would tell it the new one).
        let _gate = (i % 3 != 2).then(|| LinkGate::take(k, a));
        let Some(call) = b.enter_call(false) else { return };
        started.store(true, Ordering::Release);
        if i % 3 == 2 {
            let len = r.below(48) as usize;
            let garbage: Vec<u8> = (0..len).map(|_| r.below(256) as u8).collect();
            let irql = if r.chance(500) { PASSIVE_LEVEL } else { DISPATCH_LEVEL };
            deliver(k, a, &call, UNKNOWN_STATUS, &garbage, irql);
        } else {
            let up = {
                let mut m = lock(&a.model);
                m.link_up = !m.link_up;
                m.link_up
            };
            k.yield_point("bind-status link flip");
            indicate_link(k, a, &call, up);
        }
    }
}

/// Indicates `code` with a copy of `buffer` (NULL when empty) to `a`'s
/// binding at `irql` (PASSIVE_LEVEL or DISPATCH_LEVEL), whatever its
/// state once opened, as a miniport's indications reach protocols:
/// codes a protocol does not know, and buffers shorter or other than the
/// code's structure, included.
pub(crate) fn indicate_status(
    k: &Kernel,
    a: &Adapter,
    code: NDIS_STATUS,
    buffer: &[u8],
    irql: u8,
) -> Result<(), SimError> {
    let b = status_binding(a)?;
    indicate_to(k, a, &b, code, buffer, irql);
    Ok(())
}

fn indicate_to(k: &Kernel, a: &Adapter, b: &Binding, code: NDIS_STATUS, buffer: &[u8], irql: u8) {
    if let Some(call) = b.enter_call(false) {
        deliver(k, a, &call, code, buffer, irql);
    }
}

/// Calls the binding's `ProtocolStatusEx` (the call entered) with `code`
/// and a copy of `buffer`.
fn deliver(k: &Kernel, a: &Adapter, call: &CallGuard<'_>, code: NDIS_STATUS, buffer: &[u8], irql: u8) {
    let b = call.binding();
    // A copy of exactly `buffer.len()` bytes, ending at a guard page, taken
    // back when the handler returns (`lent`).
    let copy = (!buffer.is_empty())
        .then(|| k.ndis.lent.status_buffer(code, buffer).expect("ndisim: out of address space for a status buffer"));
    // SAFETY: plain data.
    let mut ind: NDIS_STATUS_INDICATION = unsafe { std::mem::zeroed() };
    ind.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_STATUS_INDICATION,
        Revision: NDIS_STATUS_INDICATION_REVISION_1,
        Size: NDIS_SIZEOF_STATUS_INDICATION_REVISION_1,
    };
    ind.SourceHandle = a as *const Adapter as NDIS_HANDLE;
    ind.StatusCode = code;
    if let Some(copy) = &copy {
        ind.StatusBuffer = copy.ptr().cast();
        ind.StatusBufferSize = buffer.len() as u32;
    }
    let handler = b.proto.chars.StatusHandlerEx.expect("validated");
    let ctx = b.ctx;
    if lock(&a.opening).as_ref().is_some_and(|o| std::ptr::eq(Arc::as_ptr(o), b)) {
        a.statuses_in_bind.fetch_add(1, Ordering::AcqRel);
    }
    call_driver("ProtocolStatusEx", irql, || {
        // SAFETY: the driver's handler with its binding context and an
        // indication valid for the call.
        unsafe { handler(ctx as NDIS_HANDLE, &mut ind) }
    });
}
