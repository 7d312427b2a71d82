//! Splitting a schedule's PnP and NIC actions among several actors
//! (`--parallel`).

use crate::schedule::{NicAction, PnpAction};

/// Moves the PnP actions of adapters `a` with `a % k == i` (i > 0) to
/// actor i, so that two actors never touch one binding; a sleep stays with
/// the action before it. Returns actors 1.. (empty ones dropped).
pub(super) fn split_pnp(pnp: &mut Vec<PnpAction>, k: usize, n: usize) -> Vec<Vec<PnpAction>> {
    if n < 2 {
        return Vec::new();
    }
    let mut lists: Vec<Vec<PnpAction>> = vec![Vec::new(); k];
    let mut last = 0;
    for act in pnp.drain(..) {
        // (An event for every adapter, an uninstall, a bind of all: the
        // first actor.)
        let i = match &act {
            PnpAction::Sleep { .. } => last,
            _ => act.adapter().map_or(0, |a| a % k),
        };
        last = i;
        lists[i].push(act);
    }
    let mut more = lists.split_off(1);
    *pnp = lists.pop().unwrap_or_default();
    more.retain(|l| !l.is_empty());
    more
}

/// Deals the NIC actions round robin to `k` actors; returns actors 1...
pub(super) fn split_nic(nic: &mut Vec<NicAction>, k: usize) -> Vec<Vec<NicAction>> {
    let mut lists: Vec<Vec<NicAction>> = vec![Vec::new(); k];
    for (j, act) in nic.drain(..).enumerate() {
        lists[j % k].push(act);
    }
    let mut more = lists.split_off(1);
    *nic = lists.pop().unwrap_or_default();
    more.retain(|l| !l.is_empty());
    more
}
