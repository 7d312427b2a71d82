//! The link oracle of adapters whose miniport indicates status while a
//! binding's bind is in progress (`bind-status=`, ndisim's README): at the
//! end of a run the driver's link state of each bound binding must be its
//! adapter's, the last one indicated, whether the indications came before
//! the bind handler returned or after. Only adapters whose link nothing
//! else may have told the driver wrong are judged: none of the schedule's
//! `NDIS_STATUS_LINK_STATE` indications of garbage, and none of its
//! restarts that change the link without an indication (the driver learns
//! that one by a query a miniport may fail).

use super::Ctx;
use crate::schedule::{NicAction, PnpAction, Schedule, adapter_spec};
use ndis_sys::NDIS_STATUS_LINK_STATE;
use rawnic_proto::{ListReply, link, state};

/// Whether adapter `a`'s link is judged.
fn judged(s: &Schedule, a: usize) -> bool {
    let pnp = s.pnp.iter().chain(s.pnp_more.iter().flatten());
    let nic = s.nic.iter().chain(s.nic_more.iter().flatten());
    adapter_spec(&s.adapters, a).is_some_and(|spec| spec.contains("bind-status="))
        && !pnp.into_iter().any(|p| matches!(p, PnpAction::Restart { a: x, link: Some(_), .. } if *x == a))
        && !nic
            .into_iter()
            .any(|n| matches!(n, NicAction::Status { a: x, code, .. } if *x == a && *code == NDIS_STATUS_LINK_STATE))
}

/// Turns on the answers on arrival of the schedule's adapters that give
/// them (`Schedule::answer_on_arrival`), before the actors run (the binds
/// at the start answered as they complete); returns how many.
pub(super) fn answer_on_arrival(sim: &ndisim::Sim, s: &Schedule, adapters: &[ndisim::AdapterId]) -> u64 {
    let on = s.answer_on_arrival.iter().filter_map(|&a| adapters.get(a));
    on.filter(|&&id| sim.answer_queries_on_arrival(id, true).is_ok()).count() as u64
}

/// Judges the link state of every bound binding of a judged adapter;
/// returns how many were judged.
pub(super) fn check(c: &Ctx<'_>) -> u64 {
    let judged: Vec<usize> = (0..c.adapters.len()).filter(|&a| judged(c.sched, a)).collect();
    if judged.is_empty() {
        return 0;
    }
    // The adapters' link states first: each read waits for the adapter's
    // bind-time indications to end, so none changes the driver's state
    // after the listing below.
    let links: Vec<Option<bool>> = judged.iter().map(|&a| c.sim.adapter_link(c.adapters[a]).ok()).collect();
    let Ok(h) = c.sim.open() else { return 0 };
    let r = super::handles::list_judged(c, &h, 64 * 1024);
    // Under refused allocations that last into the teardown the listing
    // may fail, for want of memory only (`lasting.rs`).
    if let Err(e) = super::lasting::short_status(c, "the links' LIST_BINDINGS", r.status) {
        c.problem(e);
    }
    let mut checked = 0;
    if let Ok(list) = ListReply::new_checked(&r.data) {
        for e in list.entries() {
            if e.state != state::PAUSED && e.state != state::RUNNING {
                continue;
            }
            let Some(j) = judged.iter().position(|&a| c.names[a].eq_ignore_ascii_case(e.name)) else { continue };
            let a = judged[j];
            if !matches!(
                c.sim.binding_state(c.adapters[a]),
                ndisim::BindingState::Paused | ndisim::BindingState::Running
            ) {
                continue;
            }
            let Some(up) = links[j] else { continue };
            if (e.link == link::UP) != up {
                c.problem(format!(
                    "links: binding {} ({}) says its link is {}, but the adapter's is {} (a status indication was lost; the adapter indicates status during its binds: {})",
                    e.binding_id,
                    e.name,
                    e.link,
                    if up { "up" } else { "down" },
                    adapter_spec(&c.sched.adapters, a).unwrap_or("?"),
                ));
            }
            checked += 1;
        }
    }
    h.close();
    checked
}
