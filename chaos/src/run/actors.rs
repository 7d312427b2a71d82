//! The PnP actor (NDIS above the binding) and the NIC actor (the miniport
//! below it): each plays its list of a schedule's actions.

use super::{Ctx, knobs, progressed, received, stalls};
use crate::schedule::*;
use ndisim::{CompletionPolicy, RestartSpec};
use std::sync::atomic::Ordering;
use std::time::Duration;

// PnP: NDIS above the binding
// ---------------------------------------------------------------------------

/// Waits (in the simulation's time) until NDIS indicated BindsComplete,
/// at most the watchdog time.
pub(super) fn wait_for_binds(c: &Ctx<'_>) {
    c.wait_until(c.watchdog, || c.sim.binds_completed());
}

/// `len` bytes of no meaning, for a buffer NDIS passes that the driver
/// must read with care (a PnP event's, a status indication's).
fn garbage(len: u16) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(37) ^ 0xA5).collect()
}

pub(super) fn pnp_actor(c: &Ctx<'_>, list: &[PnpAction]) {
    for act in list {
        c.sim.step();
        progressed();
        let ad = |a: usize| c.adapters[a];
        // A bind NDIS owes the adapter (the driver declined its last one
        // and asked for a re-enumeration since) comes first, on this
        // thread: NDIS serializes PnP per adapter.
        if let Some(a) = act.adapter() {
            if c.sim.reenumeration_owed(ad(a)).unwrap_or(false) {
                let r = c.sim.serve_reenumeration(ad(a));
                if r == Ok(true) {
                    c.rebinds.fetch_add(1, Ordering::Relaxed);
                }
                c.sim_result("re-enumerated bind", r.map(|_| ()));
            }
        }
        match act {
            PnpAction::Pause { a } => c.sim_result("pause", c.sim.pause(ad(*a))),
            PnpAction::Restart { a, mtu, link, filters, general_revision, short_params, supported } => {
                let spec = RestartSpec {
                    mtu: *mtu,
                    filter_modules: filters.clone(),
                    link: *link,
                    supported_filters: *supported,
                    general_revision: Some(*general_revision),
                    extra_attributes: Vec::new(),
                    params_length: short_params
                        .then_some(ndis_sys::NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1 as u32),
                };
                c.sim_result("restart", c.sim.restart(ad(*a), &spec));
            }
            PnpAction::Unbind { a } => c.teardown(|| super::open_unbind::unbind(c, *a)),
            PnpAction::Bind { a } => c.sim_result("bind", c.sim.bind(ad(*a))),
            PnpAction::BindAll => c.sim_result("bind all", c.sim.bind_all()),
            PnpAction::Link { a, up } => c.sim_result("link", c.sim.link(ad(*a), *up)),
            PnpAction::Power { a, d3 } => {
                c.teardown(|| c.sim_result("power", c.sim.set_power(ad(*a), if *d3 { 4 } else { 1 })))
            }
            PnpAction::InOidCall { a, wait_ms, event } => stalls::in_oid_call(c, *a, *wait_ms, *event),
            PnpAction::HeldD0 { a, ms } => knobs::held_d0(c, *a, *ms),
            PnpAction::StallLockAcquire { handler, nth, ms } => knobs::stall_lock_acquire(c, *handler, *nth, *ms),
            PnpAction::StallCall { handler, pick, nth, after, ms } => {
                knobs::stall_call(c, *handler, *pick, *nth, *after, *ms)
            }
            PnpAction::Event { a, code, len } => {
                // A power query carries a device state; the others get
                // whatever bytes (their buffers are the protocol's to read
                // with care).
                let buf: Vec<u8> = if *code == ndis_sys::NetEventQueryPower && *len >= 4 {
                    4u32.to_le_bytes().to_vec()
                } else {
                    garbage(*len)
                };
                c.sim_result("pnp event", c.sim.pnp_event(a.map(ad), *code, &buf).map(|_| ()));
            }
            PnpAction::Sleep { ms } => c.sim.sleep(Duration::from_millis(*ms as u64)),
            PnpAction::Uninstall => c.teardown(|| {
                c.sim_result("uninstall", c.sim.uninstall());
                for &id in &c.adapters {
                    c.sim_result("unbind", c.sim.unbind(id));
                }
            }),
        }
    }
}

// ---------------------------------------------------------------------------
// NIC: the miniport below the binding
// ---------------------------------------------------------------------------

fn policy(p: Policy) -> CompletionPolicy {
    match p {
        Policy::Immediate => CompletionPolicy::Immediate,
        Policy::Batch(n) => CompletionPolicy::Batched(n.max(1) as usize),
        Policy::Reorder(n) => CompletionPolicy::Reordered(n.max(1) as usize),
        Policy::Delay(ms) => CompletionPolicy::Delayed(Duration::from_millis(ms as u64)),
        Policy::Scatter => CompletionPolicy::Scatter,
    }
}

pub(super) fn nic_actor(c: &Ctx<'_>, list: &[NicAction]) {
    // The policy each adapter had before a hold, to restore after it.
    let mut policies: Vec<CompletionPolicy> =
        c.adapters.iter().map(|&id| c.sim.completion_policy(id).unwrap_or(CompletionPolicy::Immediate)).collect();
    for act in list {
        c.sim.step();
        progressed();
        match act {
            NicAction::HoldSends { a, ms, parts } => {
                let id = c.adapters[*a];
                c.sim_result("hold sends", c.sim.hold_sends(id));
                let parts = (*parts).max(1) as u32;
                for _ in 0..parts {
                    c.sim.sleep(Duration::from_millis((*ms / parts) as u64));
                    let held = c.sim.held_sends(id);
                    let _ = c.sim.release_sends(id, Some(held.div_ceil(parts as usize)));
                }
                let _ = c.sim.set_completion(id, policies[*a]);
                let _ = c.sim.release_sends(id, None);
            }
            NicAction::HoldOids { a, ms, reverse } => {
                let id = c.adapters[*a];
                c.sim_result("hold oids", c.sim.hold_oids(id));
                c.sim.sleep(Duration::from_millis(*ms as u64));
                if *reverse {
                    // The last made first: a set made after another
                    // (another handle's multicast list, a restart's
                    // filter) completes before it.
                    for o in c.sim.pending_oids(id).into_iter().rev() {
                        let _ = c.sim.complete_oid(id, o.seq, None);
                    }
                }
                let _ = c.sim.release_oids(id);
            }
            NicAction::Inject { .. } => received::inject(c, act),
            NicAction::StallOidCalls { a, ms } => {
                c.sim_result("stall oid calls", c.sim.stall_oid_calls(c.adapters[*a]));
                c.sim.sleep(Duration::from_millis(*ms as u64));
                c.sim_result("release oid calls", c.sim.release_oid_calls(c.adapters[*a]));
            }
            NicAction::StallOidReturns { a, ms } => {
                c.spell_meets_its_callers();
                c.sim_result("stall oid returns", c.sim.stall_oid_returns(c.adapters[*a]));
                c.spell(*ms);
                c.late_returns.fetch_add(c.sim.stalled_oid_returns(c.adapters[*a]), Ordering::Relaxed);
                c.sim_result("release oid returns", c.sim.release_oid_returns(c.adapters[*a]));
            }
            NicAction::StallCancels { ms } => {
                c.spell_meets_its_callers();
                c.sim.stall_cancel_routines();
                c.spell(*ms);
                c.slow_cancels.fetch_add(c.sim.stalled_cancel_routines(), Ordering::Relaxed);
                c.sim.release_cancel_routines();
            }
            NicAction::HoldWorkItems { ms } => knobs::hold_work_items(c, *ms),
            NicAction::StallAllocations { bytes, pick, ms } => knobs::stall_allocations(c, *bytes, *pick, *ms),
            NicAction::Completion { a, policy: p } => {
                policies[*a] = policy(*p);
                c.sim_result("completion policy", c.sim.set_completion(c.adapters[*a], policies[*a]));
            }
            NicAction::Status { a, code, len, passive } => {
                c.sim_result("status", c.sim.indicate_status(c.adapters[*a], *code, &garbage(*len), *passive));
            }
            NicAction::FailOids { a, oids, ms, busy: 0 } => {
                for &oid in oids {
                    c.sim.fail_oid(c.adapters[*a], oid, true);
                }
                c.sim.sleep(Duration::from_millis(*ms as u64));
                for &oid in oids {
                    c.sim.fail_oid(c.adapters[*a], oid, false);
                }
            }
            NicAction::FailOids { a, oids, ms, busy } => {
                for &oid in oids {
                    c.sim.fail_oid_for_a_while(c.adapters[*a], oid, u64::from(*busy));
                }
                c.sim.sleep(Duration::from_millis(*ms as u64));
                for &oid in oids {
                    c.sim.fail_oid_for_a_while(c.adapters[*a], oid, 0);
                }
            }
            NicAction::Sleep { ms } => c.sim.sleep(Duration::from_millis(*ms as u64)),
        }
    }
    // A miniport completes everything in the end.
    c.sim.release_cancel_routines();
    knobs::end(c);
    for &id in &c.adapters {
        let _ = c.sim.release_oid_calls(id);
        let _ = c.sim.release_oid_returns(id);
        let _ = c.sim.set_completion(id, CompletionPolicy::Immediate);
        let _ = c.sim.release_sends(id, None);
        let _ = c.sim.release_oids(id);
    }
}
