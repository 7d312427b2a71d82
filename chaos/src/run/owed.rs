//! The owed-filter oracle: once the schedule is quiet, and before the
//! explorer's own end-of-schedule requests (a GET_STATS, a pending read,
//! a listing or a close asks the driver to set any packet filter the
//! adapter owes, and so would hide one it never set), an adapter's packet
//! filter is the union of what the handles open on it were told they get
//! (the OPEN's reply), promiscuous standing for the bits it covers, within
//! what the adapter allows. It catches a filter that low power refused
//! and D0 without a restart never set (final1), which the quiet checks of
//! `accounts.rs` hide by asking for it.
//!
//! Under low resources (an allocation was refused, or the miniport failed
//! a set with `NDIS_STATUS_RESOURCES`) a set that could not be sent or
//! failed for want of memory leaves the filter owed until a handle asks
//! (`filter_owed`; the work item gives up after four tries).
//! The promise is then eventual: once the shortage ends
//! (`Sim::end_low_resources`) and a LIST asks every binding for the
//! filter it owes, the adapter's filter comes to be that same union (low
//! resources are resumed after the check, for the rest of the end). That
//! is weaker than the check without a shortage, which asks nothing: it
//! cannot tell a filter owed for want of memory from one D0 never set.
//!
//! Checked only where the explorer knows every handle's filter and no set
//! may rightly be owed: every handle still open
//! (`Ctx::survivors` and the shared slots) placed on an adapter by an
//! OPEN the explorer made, unless no damaged, raced or garbage request
//! could have opened one; no packet-filter set failed, was refused or was
//! not sent except for low power (the driver's own lines say which: a
//! failure for any other reason may leave the filter rightly owed until a
//! handle asks), and the driver's output is whole; the binding never
//! unbound, Running and not left in low power. Once asked under low
//! resources, a set not sent or failed with `NDIS_STATUS_RESOURCES` no
//! longer counts as owed rightly (a failure of the adapter's, a refusal,
//! still does: the ask may fail the same way).

use super::{Ctx, lock};
use crate::schedule::IoAction;
use ndisim::Handle;
use rawnic_proto::PacketFilter;
use rawnic_proto::filter as pf;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// `NDIS_STATUS_LOW_POWER_STATE`, as the driver prints it.
const LOW_POWER: &str = "0xc023002f";

/// `NDIS_STATUS_RESOURCES`, as the driver prints it.
const RESOURCES: &str = "0xc000009a";

/// Lines ndisim keeps of the driver's output (`dbg.rs`): a log that long
/// may have lost a line.
const LOG_KEPT: usize = 4096;

/// Checks every adapter it can; returns how many it checked.
pub(super) fn check(c: &Ctx<'_>) -> u64 {
    // A schedule's refused allocations (`Schedule::fail_nth`) end here,
    // whether or not they came: the end checks run with memory (the
    // random low resources resume after this one, these do not). Those
    // that last into the teardown go on (`lasting.rs`): while they may
    // still refuse, no filter owed could be set, and none is judged.
    super::lasting::end_refusals(c);
    if super::lasting::refusing(c) {
        return 0;
    }
    let lowres = c.sim.alloc_failures() > 0;
    // A miniport short of resources for a set (`FailOids` with `busy`)
    // leaves the filter owed as a shortage of the driver's does.
    let short = lowres || c.sim.debug_output().iter().any(|l| failed_for_resources(l));
    if lowres {
        // The shortage ends.
        c.sim.end_low_resources();
    }
    if short {
        // A listing asks every binding for the filter it owes.
        ask_owed(c);
    }
    let checked = judge(c, short);
    if lowres {
        c.sim.resume_low_resources();
    }
    if short {
        c.filters_after_shortage.fetch_add(checked, Ordering::Relaxed);
    }
    checked
}

/// A line of the driver's that says a packet-filter set failed for want
/// of resources (the miniport's).
fn failed_for_resources(line: &str) -> bool {
    line.contains("setting packet filter") && line.ends_with(RESOURCES)
}

/// A LIST through a handle of its own, which asks each binding for a
/// packet filter it owes, and a multicast union it may lack
/// (`set_all_owed`).
pub(super) fn ask_owed(c: &Ctx<'_>) {
    let Ok(h) = c.sim.open() else { return };
    super::handles::list_judged(c, &h, 64 * 1024);
    h.close();
}

/// The check, once the filters owed were asked for after a shortage
/// (`lowres`).
fn judge(c: &Ctx<'_>, lowres: bool) -> u64 {
    let out = c.sim.debug_output();
    if out.len() >= LOG_KEPT || out.iter().any(|l| owed_rightly(l, lowres)) {
        return 0;
    }
    let mut open: Vec<Arc<Handle>> = lock(&c.survivors).clone();
    for sh in &c.shared {
        if let Some(h) = lock(sh).0.clone() {
            if !open.iter().any(|x| Arc::ptr_eq(x, &h)) {
                open.push(h);
            }
        }
    }
    let by_adapter = lock(&c.adapter_by_file).clone();
    let told = lock(&c.told_by_file).clone();
    let mut want: HashMap<usize, u32> = HashMap::new();
    for h in &open {
        match h.file().and_then(|f| Some((by_adapter.get(&f)?, told.get(&f)?))) {
            Some((&i, &t)) => *want.entry(i).or_default() |= t,
            None if may_open_unseen(c) => return 0,
            None => {}
        }
    }
    let mut checked = 0;
    for (i, &a) in c.adapters.iter().enumerate() {
        // An adapter whose supported filters a restart changed is judged
        // by what its handles are told now (`accounts::check_granted`),
        // not here by what they were told at their opens.
        if super::unions::rebound(c.sched, i)
            || super::unions::supported_changed(c.sched, i)
            || c.sim.binding_state(a) != ndisim::BindingState::Running
            || super::unions::in_low_power(c, a)
        {
            continue;
        }
        let Some(allowed) = allowed(c, i) else { continue };
        let mut w = PacketFilter::from_bits_retain(want.get(&i).copied().unwrap_or(0));
        if w.contains(pf::PROMISCUOUS) {
            w |= pf::DIRECTED | pf::BROADCAST | pf::ALL_MULTICAST;
        }
        let w = (w & allowed).bits();
        match super::unions::settles(c, a, &w, || c.sim.adapter_filter(a).map_or(0, |f| f.1)) {
            Ok(()) => checked += 1,
            Err((set, tail)) => c.problem(format!(
                "packet filter of {}: the handles open on it were told they get {w:#x} (nothing moves any more, no set failed but for low power, {}), but the adapter's filter is {set:#x}; PnP events {:?} (the driver's last output {tail:?})",
                c.names[i],
                if lowres {
                    "the shortage of memory over and a LIST made to ask for any filter owed"
                } else {
                    "before any request of the end"
                },
                c.sim.pnp_log(a, false)
            )),
        }
    }
    c.filters_checked.fetch_add(checked, Ordering::Relaxed);
    checked
}

/// A line of the driver's that says a packet-filter set failed, was
/// refused or not sent for another reason than low power (the filter may
/// rightly stay owed until a handle asks), or that the adapter's allowed
/// bits changed. Once a handle asked (`asked`, under low resources), a set
/// not sent (for want of memory) or failed for want of resources is no
/// longer owed rightly: the ask set it again, with memory to spare.
fn owed_rightly(line: &str, asked: bool) -> bool {
    (line.contains("setting packet filter") && !line.ends_with(LOW_POWER) && !(asked && line.ends_with(RESOURCES)))
        || (line.contains("packet filter") && line.contains("not sent") && !asked)
        || line.contains("refused filter bits")
        || line.contains("took filter bits")
}

/// What adapter `i` allows now (the filters its miniport supports less
/// the ones it refuses); `None` when its spec cannot be read.
fn allowed(c: &Ctx<'_>, i: usize) -> Option<PacketFilter> {
    super::accounts::spec_of(c, i).map(|spec| super::accounts::allowed_now(c, i, &spec))
}

/// Whether a request the explorer does not place (damaged, raced with a
/// cancel or a close, or garbage) may have opened a binding on a handle.
fn may_open_unseen(c: &Ctx<'_>) -> bool {
    c.sched.handles.iter().flatten().any(|act| {
        matches!(
            act,
            IoAction::Mutated { .. }
                | IoAction::RaceCancel { .. }
                | IoAction::CloseRacing { .. }
                | IoAction::Garbage { .. }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::owed_rightly;

    #[test]
    fn only_low_power_failures_leave_the_filter_checked() {
        let name = "\\DEVICE\\{A0}";
        for asked in [false, true] {
            assert!(!owed_rightly(&format!("{name}: setting packet filter 0xb failed: 0xc023002f"), asked));
            assert!(owed_rightly(&format!("{name}: setting packet filter 0xb failed: 0xc0000001"), asked));
            assert!(owed_rightly(&format!("{name}: the adapter refused filter bits 0x20"), asked));
            assert!(owed_rightly(&format!("{name}: the adapter took filter bits 0x20 it had refused"), asked));
            assert!(!owed_rightly(&format!("{name}: restarted"), asked));
        }
        assert!(owed_rightly(&format!("{name}: setting packet filter 0xb failed: 0xc000009a"), false));
        assert!(owed_rightly(&format!("{name}: packet filter 0xb not sent; it is owed"), false));
    }

    #[test]
    fn a_miniports_shortage_is_one_to_ask_for() {
        let name = "\\DEVICE\\{A0}";
        assert!(super::failed_for_resources(&format!("{name}: setting packet filter 0xb failed: 0xc000009a")));
        assert!(!super::failed_for_resources(&format!("{name}: setting packet filter 0xb failed: 0xc0000001")));
        assert!(!super::failed_for_resources(&format!("{name}: setting the multicast list failed: 0xc000009a")));
    }

    #[test]
    fn once_asked_a_shortage_owes_nothing() {
        let name = "\\DEVICE\\{A0}";
        assert!(!owed_rightly(&format!("{name}: setting packet filter 0xb failed: 0xc000009a"), true));
        assert!(!owed_rightly(&format!("{name}: packet filter 0xb not sent; it is owed"), true));
    }
}
