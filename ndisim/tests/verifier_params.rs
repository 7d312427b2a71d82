//! Parameters the pages constrain that ndisim checks at the call: an OID
//! request's `PortNumber` (a port the miniport allocated), the `Flags` of
//! `NdisAcquireRWLockRead`/`Write` (only `NDIS_RWL_AT_DISPATCH_LEVEL` is
//! defined), the revision of the structures a protocol passes, which
//! must be its registered NDIS version's, and of the kernel's own exports
//! the `PoolType` of `ExAllocatePoolWithTag`, the `HandleAttributes` of
//! `ObOpenObjectByPointer` and where its handles are used.

use ndisim::*;
use rawnic_tests::verifier::{only, start};
use std::time::Duration;

/// A request to `PortNumber` 7 is refused at the call with
/// `NDIS_STATUS_INVALID_PARAMETER` (the fixture takes that as its
/// completion): ndisim's miniports allocate no port, as for sends.
/// Also on an NDIS 6.20 (Windows 7), whose bind parameters are of
/// revision 3, garbage past their size.
#[test]
fn oid_request_to_a_port_never_allocated() {
    let r = start("oid_port", &["null"]).unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("PortNumber 7"), "{r}");
    let sim = Sim::builder().driver(rawnic_tests::fixture("oid_port")).adapter("null").ndis_version(6, 20);
    let r = sim.watchdog(Duration::from_secs(5)).start().expect("a 6.20 protocol on NDIS 6.20").unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 1, "{r}");
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

/// Characteristics of the wrong revision or flags for their NDIS version
/// are refused with `NDIS_STATUS_BAD_CHARACTERISTICS` and reported; an OID
/// request of another revision than the registered version's is refused
/// at the call: revision 1 from a 6.89 protocol, revision 2 (NDIS 6.50's)
/// from a 6.30 one.
#[test]
fn structures_of_another_revision_than_the_registered_versions() {
    for (os, registered, wrong_oid_revision) in [((6, 89), (6, 89), 1), ((6, 30), (6, 30), 2)] {
        let sim = Sim::builder()
            .driver(rawnic_tests::fixture("ndis_revisions"))
            .adapter("null")
            .ndis_version(os.0, os.1)
            .watchdog(Duration::from_secs(5))
            .start()
            .expect("the fixture registers in the end");
        assert_eq!(sim.protocol_ndis_version(), Some(registered));
        let r = sim.unload();
        only(&r, Rule::InvalidParameter);
        let v: Vec<(&str, &str)> = r.violations.iter().map(|v| (v.call.as_str(), v.detail.as_str())).collect();
        assert_eq!(v.len(), 4, "NDIS {os:?}: {r}");
        assert!(
            v[0].0 == "NdisRegisterProtocolDriver" && v[0].1.contains("Header.Revision 1: a protocol of NDIS 6.30"),
            "{r}"
        );
        assert!(v[1].1.contains("Flags 0x8: a protocol of NDIS 6.30 may pass 0x0"), "{r}");
        assert!(v[2].1.contains("Header.Revision 2: a protocol of NDIS 6.0 passes"), "{r}");
        assert_eq!(v[3].0, "NdisOidRequest", "{r}");
        let want = format!("Revision {wrong_oid_revision}: a protocol registered as NDIS 6.{}", registered.1);
        assert!(v[3].1.contains(&want), "NDIS {os:?}: {r}");
    }
}

/// ExAllocatePoolWithTag with `NonPagedPoolNx | POOL_RAISE_IF_ALLOCATION_FAILURE`
/// (a failure raises an exception a Rust driver cannot catch: bug check
/// 0x1E, or 0x7E on a system thread) and with `NonPagedPoolNxCacheAligned`
/// (reserved for the system): one violation each. `NonPagedPoolNx | POOL_COLD_ALLOCATION` and
/// `PagedPool` are clean.
#[test]
fn pool_types_a_driver_may_not_pass() {
    let r = start("pool_type", &[]).unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 2, "{r}");
    assert!(r.violations.iter().all(|v| v.call == "ExAllocatePoolWithTag"), "{r}");
    assert!(r.violations[0].detail.contains("POOL_RAISE_IF_ALLOCATION_FAILURE"), "{r}");
    assert!(r.violations[1].detail.contains("0x204") && r.violations[1].detail.contains("reserved"), "{r}");
}

/// ObOpenObjectByPointer without OBJ_KERNEL_HANDLE from an IOCTL's dispatch
/// routine (the requester's process), and ZwClose from a dispatch routine
/// of a handle DriverEntry opened without it (the system process's): one
/// violation each. The same open in DriverEntry, one with OBJ_KERNEL_HANDLE
/// from an IOCTL, and the close of DriverEntry's handle in DriverUnload
/// are clean.
#[test]
fn handles_outside_the_system_process_must_be_kernel_handles() {
    for close_from_ioctl in [false, true] {
        let sim = start("user_handle", &[]);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
        assert_eq!(h.ioctl(0x0022_2004, &[], 0).status, 0);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(h.ioctl(0x0012_0000, &[], 0).status, 0);
        if close_from_ioctl {
            assert_eq!(h.ioctl(0x0022_2008, &[], 0).status, 0);
        }
        h.close();
        let r = sim.unload();
        only(&r, Rule::InvalidParameter);
        let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
        let want: &[&str] =
            if close_from_ioctl { &["ObOpenObjectByPointer", "ZwClose"] } else { &["ObOpenObjectByPointer"] };
        assert_eq!(calls, want, "{r}");
        assert!(r.violations.iter().all(|v| v.detail.contains("in IRP_MJ_DEVICE_CONTROL")), "{r}");
    }
}
