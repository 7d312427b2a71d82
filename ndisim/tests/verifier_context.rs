//! Where a call may be made (rule pnp-context, and Unicode output above
//! PASSIVE_LEVEL), each proven by the `ndis_context` fixture: a protocol's
//! close belongs to its bind or unbind, its deregistration never comes
//! from a handler NDIS called, and `DbgPrintEx`'s Unicode codes need
//! PASSIVE_LEVEL.

use ndisim::*;
use rawnic_tests::verifier::{only, start};

/// `NdisCloseAdapterEx` belongs to the binding's bind or unbind; from an
/// IOCTL it is refused (the unbind closes the binding later, cleanly).
#[test]
fn close_outside_bind_or_unbind() {
    let sim = start("ndis_context", &["null"]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    assert_ne!(h.ioctl(0x0012_2000, &[], 0).status, 0);
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Running);
    h.close();
    let r = sim.unload();
    only(&r, Rule::PnpContext);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "NdisCloseAdapterEx", "{r}");
}

/// The fixture's bind and unbind close the adapter (the unbind pended, and
/// completed from the close completion): clean.
#[test]
fn close_inside_a_pended_unbind_is_clean() {
    let sim = start("ndis_context", &["null@close=pending"]);
    sim.unbind(AdapterId(0)).unwrap();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

/// `DbgPrintEx`'s Unicode format codes at DISPATCH_LEVEL; `%s` there and
/// the Unicode codes at PASSIVE_LEVEL are clean.
#[test]
fn dbgprint_unicode_above_passive() {
    let sim = start("ndis_context", &["null"]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(0x0012_2008, &[], 0).status, 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(h.ioctl(0x0012_2004, &[], 0).status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::Irql);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "DbgPrintEx", "{r}");
    assert!(r.violations[0].detail.contains("%ws used at DISPATCH_LEVEL"), "{r}");
}

/// `NdisDeregisterProtocolDriver` from `ProtocolStatusEx`: reported, and
/// the protocol stays registered (the unload deregisters it).
#[test]
fn deregister_from_an_ndis_handler() {
    let sim = start("ndis_context", &["null"]);
    sim.indicate_status(AdapterId(0), 0x4001_7777, &[], true).unwrap();
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Running);
    let r = sim.unload();
    only(&r, Rule::PnpContext);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "NdisDeregisterProtocolDriver", "{r}");
}
