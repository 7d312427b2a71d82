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
//! Checked only where the explorer knows every handle's filter and no set
//! may rightly be owed: no allocation refused; every handle still open
//! (`Ctx::survivors` and the shared slots) placed on an adapter by an
//! OPEN the explorer made, unless no damaged, raced or garbage request
//! could have opened one; no packet-filter set failed, was refused or was
//! not sent except for low power (the driver's own lines say which: a
//! failure for any other reason may leave the filter rightly owed until a
//! handle asks), and the driver's output is whole; the binding never
//! unbound, Running and not left in low power.

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

/// Lines ndisim keeps of the driver's output (`dbg.rs`): a log that long
/// may have lost a line.
const LOG_KEPT: usize = 4096;

/// Checks every adapter it can; returns how many it checked.
pub(super) fn check(c: &Ctx<'_>) -> u64 {
    if c.sim.alloc_failures() > 0 {
        return 0;
    }
    let out = c.sim.debug_output();
    if out.len() >= LOG_KEPT || out.iter().any(|l| owed_rightly(l)) {
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
        if super::unions::rebound(c.sched, i)
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
                "packet filter of {}: the handles open on it were told they get {w:#x} (nothing moves any more, no set failed but for low power, before any request of the end), but the adapter's filter is {set:#x}; PnP events {:?} (the driver's last output {tail:?})",
                c.names[i],
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
/// bits changed.
fn owed_rightly(line: &str) -> bool {
    (line.contains("setting packet filter") && !line.ends_with(LOW_POWER))
        || (line.contains("packet filter") && line.contains("not sent"))
        || line.contains("refused filter bits")
        || line.contains("took filter bits")
}

/// What adapter `i` allows (its spec's supported filters less the ones it
/// refuses); `None` when its spec cannot be read.
fn allowed(c: &Ctx<'_>, i: usize) -> Option<PacketFilter> {
    super::accounts::spec_of(c, i).map(|spec| super::accounts::allowed_by(&spec))
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
        assert!(!owed_rightly(&format!("{name}: setting packet filter 0xb failed: 0xc023002f")));
        assert!(owed_rightly(&format!("{name}: setting packet filter 0xb failed: 0xc000009a")));
        assert!(owed_rightly(&format!("{name}: packet filter 0xb not sent; it is owed")));
        assert!(owed_rightly(&format!("{name}: the adapter refused filter bits 0x20")));
        assert!(owed_rightly(&format!("{name}: the adapter took filter bits 0x20 it had refused")));
        assert!(!owed_rightly(&format!("{name}: restarted")));
    }
}
