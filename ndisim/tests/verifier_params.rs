//! Parameters the pages constrain that ndisim checks at the call: an OID
//! request's `PortNumber` (a port the miniport allocated), and the
//! `Flags` of `NdisAcquireRWLockRead`/`Write` (only
//! `NDIS_RWL_AT_DISPATCH_LEVEL` is defined).

use ndisim::*;
use rawnic_tests::verifier::{only, start};

/// A request to `PortNumber` 7 is refused at the call with
/// `NDIS_STATUS_INVALID_PARAMETER` (the fixture takes that as its
/// completion): ndisim's miniports allocate no port, as for sends.
#[test]
fn oid_request_to_a_port_never_allocated() {
    let r = start("oid_port", &["null"]).unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("PortNumber 7"), "{r}");
}

/// A read with `Flags` 0x80 and a write with 0x2: each reported; the
/// clean code (flags 0 and `NDIS_RWL_AT_DISPATCH_LEVEL`) is not.
#[test]
fn rw_lock_flags_other_than_at_dispatch_level() {
    let sim = start("rwlock_misuse", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(0x0022_2004, &[], 0).status, 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(h.ioctl(0x0012_000C, &[], 0).status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 2, "{r}");
    assert_eq!(r.violations[0].call, "NdisAcquireRWLockRead", "{r}");
    assert!(r.violations[0].detail.contains("Flags 0x80"), "{r}");
    assert_eq!(r.violations[1].call, "NdisAcquireRWLockWrite", "{r}");
}
