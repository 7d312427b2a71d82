//! OPENs that race their adapter's unbind (`gen/open_unbind.rs`): the
//! unbind of an adapter some handle thread waits for (`IoAction::AwaitUnbind`)
//! first waits a little for the waiter, then marks itself begun, so the
//! waiter's OPEN and the unbind start together; the OPENs sent while an
//! unbind of their adapter is marked are counted
//! (`Edges::opens_in_unbinds`, and `opened_in_unbinds` of them that
//! succeeded: the unbind then took the handle off the binding).

use super::{Ctx, lock};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `PnpAction::Unbind` of adapter `a`: if a handle thread of the schedule
/// waits for it, first waits (at most 200 ms) for one to wait, pauses the
/// binding, marks the unbind begun and lets a millisecond pass, the
/// waiter's poll.
pub(super) fn unbind(c: &Ctx<'_>, a: usize) {
    let awaited = c.unbinds_awaited.contains(&a);
    if awaited {
        c.wait_until(Duration::from_millis(200), || lock(&c.awaiting_unbind).get(&a).is_some_and(|&n| n > 0));
        // NDIS pauses a binding before it unbinds it (ndisim's unbind does
        // it too, if the binding runs): paused first, the OPEN meets the
        // unbind handler itself, not the pause that comes before it.
        c.sim_result("pause", c.sim.pause(c.adapters[a]));
        lock(&c.unbinding).push(a);
        c.sim.sleep(Duration::from_millis(1));
    }
    c.sim_result("unbind", c.sim.unbind(c.adapters[a]));
    if awaited {
        let mut on = lock(&c.unbinding);
        if let Some(i) = on.iter().position(|&x| x == a) {
            on.swap_remove(i);
        }
    }
}

/// `IoAction::AwaitUnbind`: waits at most `max` for an unbind of `a` to
/// begin; once it has, aims a stall of 2 ms at the `stall_at`th spin-lock
/// acquire of this thread's IOCTLs (the OPEN's; 0: none).
pub(super) fn await_unbind(c: &Ctx<'_>, a: usize, max: Duration, stall_at: u8) {
    *lock(&c.awaiting_unbind).entry(a).or_default() += 1;
    let begun = c.wait_until(max, || lock(&c.unbinding).contains(&a));
    *lock(&c.awaiting_unbind).entry(a).or_default() -= 1;
    if begun && stall_at > 0 {
        c.sim
            .stall_my_lock_acquire("IRP_MJ_DEVICE_CONTROL", u64::from(stall_at), Duration::from_millis(2))
            .expect("a handler ndisim knows");
    }
}

/// Whether an unbind of `a` is marked begun (an OPEN sent now races it).
pub(super) fn racing(c: &Ctx<'_>, a: usize) -> bool {
    lock(&c.unbinding).contains(&a)
}

/// An OPEN that raced an unbind ended, `opened` or not.
pub(super) fn raced(c: &Ctx<'_>, opened: bool) {
    c.opens_in_unbinds.fetch_add(1, Ordering::Relaxed);
    if opened {
        c.opened_in_unbinds.fetch_add(1, Ordering::Relaxed);
    }
}
