//! The union oracle: once the schedule is quiet, an adapter's multicast
//! list is exactly the union of the lists of the handles open on its
//! binding (a closed handle's groups gone, every open handle's there),
//! however the sets that made it were ordered, completed or refused on
//! the way. `accounts::check_groups` asks only that an open handle's
//! groups be there; this one also catches a list the driver left stale
//! with groups nobody has any more: a set of an older union that
//! completed last (M40), or a union low power refused and D0 without a
//! restart never set (final1).
//!
//! Checked only where the explorer knows every list: every handle still
//! open on the adapter (`Ctx::survivors`; every other handle is closed by
//! now) has a known list or never set one (`joins.rs`: a join that failed
//! leaves the list it was sent over), no handle opened by a damaged or
//! raced OPEN set one, no request of garbage could be a SET_OID, the
//! binding was never unbound, is Running and not left in low power, and
//! no set of the list failed at the adapter.
//!
//! Under low resources (an allocation was refused) the driver promises
//! less, and later: a union it could not make or send for want of memory
//! is stale (`multicast.stale`), set again at the next change of a list,
//! restart or return to D0, or when a handle asks (a LIST, a GET_STATS,
//! a read waiting for frames), and a user's set that failed (for want
//! of memory too) gives the handle its old list back. So once the
//! schedule is quiet the shortage ends (`Sim::end_low_resources`), the
//! driver is asked for a stale union (`settle`: a LIST in schedules of
//! even seed, a pause and restart of each binding that could be judged in
//! the others; each sets a stale union again, and a driver that forgot it
//! was stale never does), and then the list must be that same union. The shortage
//! is resumed after the quiet checks of the handles left open
//! (`accounts::check_receives`), so closes and the unload still run short.

use super::{Ctx, lock};
use crate::schedule::{InCall, IoAction, PnpAction, Schedule};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Checks every adapter it can; returns how many it checked. Under low
/// resources it ends the shortage first and restarts the bindings
/// (`settle`); the caller resumes it.
pub(super) fn check(c: &Ctx<'_>) -> u64 {
    if c.sim.alloc_failures() > 0 {
        c.sim.end_low_resources();
        super::lasting::end_refusals(c);
        // (Refusals that last into the teardown and may still come leave
        // no union to judge: `lasting.rs`.)
        if super::lasting::refusing(c) {
            return 0;
        }
        settle(c);
    }
    if super::joins::any_unplaced(c) || garbage_may_set(c.sched) {
        return 0;
    }
    let files: Vec<(usize, u64)> = lock(&c.survivors).iter().filter_map(|h| h.file()).collect();
    let by_adapter = lock(&c.adapter_by_file).clone();
    let mut checked = 0;
    'adapters: for (i, &a) in c.adapters.iter().enumerate() {
        if !judged(c, i) || c.sim.multicast_sets_failed(a) > 0 {
            continue;
        }
        let mut want = 0u8;
        for f in files.iter().filter(|f| by_adapter.get(f) == Some(&i)) {
            match super::joins::in_union(c, *f) {
                Some(m) => want |= m,
                None => continue 'adapters,
            }
        }
        let mut groups: Vec<[u8; 6]> = (0..8).filter(|b| want & (1 << b) != 0).map(crate::frames::group).collect();
        groups.sort_unstable();
        let list = || {
            let mut list = c.sim.adapter_filter(a).map(|f| f.2).unwrap_or_default();
            list.sort_unstable();
            list.dedup();
            list
        };
        match settles(c, a, &groups, list) {
            Ok(()) => checked += 1,
            Err((list, tail)) => c.problem(format!(
                "multicast union of {}: the handles open on it have {groups:02x?} (lists known, nothing moves any more{}), but the adapter's list is {list:02x?} (the driver's last output {tail:?})",
                c.names[i],
                if c.sim.alloc_failures() > 0 { ", the shortage of memory over and the union asked for since (a LIST for an even seed, a restart for an odd one)" } else { "" }
            )),
        }
    }
    c.unions_checked.fetch_add(checked, Ordering::Relaxed);
    if !lock(&c.settled).is_empty() {
        c.unions_after_shortage.fetch_add(checked, Ordering::Relaxed);
    }
    checked
}

/// Whether adapter `i`'s list can be judged: its binding never unbound,
/// Running and not left in low power, and, after a shortage, restarted
/// since it ended (`settle`).
fn judged(c: &Ctx<'_>, i: usize) -> bool {
    let a = c.adapters[i];
    !rebound(c.sched, i)
        && c.sim.binding_state(a) == ndisim::BindingState::Running
        && !in_low_power(c, a)
        && (c.sim.alloc_failures() == 0 || lock(&c.settled).contains(&i))
}

/// After a shortage (allocations refused), with no more refused: the
/// driver is asked to set again a union it could not set
/// (`multicast_if_stale`), by a LIST (`owed::ask_owed`) in schedules of
/// even seed, by a pause and restart of each binding that could be judged
/// in those of odd seed, so that both promises are held; the bindings
/// asked are noted in `Ctx::settled`.
fn settle(c: &Ctx<'_>) {
    let by_list = c.sched.seed % 2 == 0;
    if by_list {
        super::owed::ask_owed(c);
    }
    for (i, &a) in c.adapters.iter().enumerate() {
        if rebound(c.sched, i) || c.sim.binding_state(a) != ndisim::BindingState::Running || in_low_power(c, a) {
            continue;
        }
        if by_list {
            lock(&c.settled).push(i);
            continue;
        }
        super::progressed();
        let paused = c.sim.pause(a);
        let ok = paused.is_ok();
        c.sim_result("pause to settle", paused);
        if ok {
            let restarted = c.sim.restart(a, &ndisim::RestartSpec::default());
            let ok = restarted.is_ok();
            c.sim_result("restart to settle", restarted);
            if ok && c.sim.binding_state(a) == ndisim::BindingState::Running {
                lock(&c.settled).push(i);
            }
        }
    }
}

/// Waits, 5 ms at a time, up to the watchdog's time and while adapter
/// `a`'s binding stays Running, until `look` (what the adapter has) gives
/// `want`; otherwise the last look and the driver's last four lines of
/// output.
pub(super) fn settles<T: PartialEq>(
    c: &Ctx<'_>,
    a: ndisim::AdapterId,
    want: &T,
    look: impl Fn() -> T,
) -> Result<(), (T, Vec<String>)> {
    let mut waited = Duration::ZERO;
    loop {
        let now = look();
        if now == *want {
            return Ok(());
        }
        if waited >= c.watchdog || c.sim.binding_state(a) != ndisim::BindingState::Running {
            let out = c.sim.debug_output();
            return Err((now, out[out.len().saturating_sub(4)..].to_vec()));
        }
        c.sim.sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
}

/// Whether adapter `i`'s binding may have been unbound (or bound again)
/// in the schedule: handles opened before are no longer on it.
pub(super) fn rebound(s: &Schedule, i: usize) -> bool {
    s.pnp.iter().chain(s.pnp_more.iter().flatten()).any(|act| match act {
        PnpAction::Unbind { a } | PnpAction::Bind { a } => *a == i,
        PnpAction::InOidCall { a, event: InCall::Unbind, .. } => *a == i,
        PnpAction::Uninstall => true,
        _ => false,
    })
}

/// Whether a restart of adapter `i` may have changed the packet filters
/// its miniport supports (`RestartSpec::supported_filters`): a filter a
/// handle was told at its open may have narrowed or widened since, and
/// the driver tells the handle so only when asked.
pub(super) fn supported_changed(s: &Schedule, i: usize) -> bool {
    s.pnp
        .iter()
        .chain(s.pnp_more.iter().flatten())
        .any(|act| matches!(act, PnpAction::Restart { a, supported: Some(_), .. } if *a == i))
}

/// Whether the last power event of `a`'s binding left it out of D0 (a
/// `pause-on-suspend=off` binding runs on in D3, where no set may go).
pub(super) fn in_low_power(c: &Ctx<'_>, a: ndisim::AdapterId) -> bool {
    c.sim
        .pnp_log(a, false)
        .iter()
        .rev()
        .find(|(ev, _)| *ev == ndis_sys::NetEventSetPower)
        .is_some_and(|&(_, state)| state != 1)
}

/// Whether a request of garbage may be a SET_OID (of the list, for all
/// the explorer can tell).
fn garbage_may_set(s: &Schedule) -> bool {
    s.handles
        .iter()
        .flatten()
        .any(|act| matches!(act, IoAction::Garbage { code, .. } if *code == rawnic_proto::IOCTL_RAWNIC_SET_OID))
}
