//! A PnP event while one of the driver's OID calls is held inside
//! `NdisOidRequest` (`PnpAction::InOidCall`; the NIC actor's
//! `NicAction::StallOidCalls` holds it). A set-power event for low power
//! must pend until the call leaves; the others, and closes, must not
//! break on the call in there. What the driver does wrong shows in the
//! verifier's rules (an OID request in low power, a request NDIS never
//! saw cancelled, a binding freed with a call inside) and in the other
//! oracles.

use super::Ctx;
use crate::schedule::InCall;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Stalls the OID calls on adapter `a` and waits up to `wait_ms` (the
/// simulation's time) for one of them; then sends `event` from one thread
/// while another lets the calls go `wait_ms` later, as NDIS or a filter
/// driver that kept the call a while would (the event may wait for the
/// call: a set-power event for low power must). When no call came, the
/// stall ends and the event comes alone.
pub(super) fn in_oid_call(c: &Ctx<'_>, a: usize, wait_ms: u32, event: InCall) {
    let id = c.adapters[a];
    c.sim_result("stall oid calls", c.sim.stall_oid_calls(id));
    c.wait_until(Duration::from_millis(wait_ms.into()), || c.sim.stalled_oid_calls(id) != 0);
    let send = move || match event {
        InCall::PowerDown => c.teardown(|| c.sim_result("power", c.sim.set_power(id, 4))),
        InCall::PowerUp => c.teardown(|| c.sim_result("power", c.sim.set_power(id, 1))),
        InCall::Pause => c.sim_result("pause", c.sim.pause(id)),
        InCall::Unbind => c.teardown(|| c.sim_result("unbind", c.sim.unbind(id))),
    };
    if c.sim.stalled_oid_calls(id) == 0 {
        c.sim_result("release oid calls", c.sim.release_oid_calls(id));
        send();
        return;
    }
    c.in_oid_calls.fetch_add(1, Ordering::Relaxed);
    let release = move || {
        c.sim.sleep(Duration::from_millis(u64::from(wait_ms.max(1))));
        c.sim_result("release oid calls", c.sim.release_oid_calls(id));
    };
    c.sim.run_actors(vec![Box::new(send), Box::new(release)]);
}
