//! The verifier's rules on IRPs and the control device: an IRP completed
//! twice, never, under a lock, pending without its mark, with its cancel
//! routine still set, with more output than its buffer or output it never
//! wrote, or with a direct write's buffer modified (irp-*), and a device
//! anyone may open (insecure-device). Each is proven by a deliberately
//! wrong fixture driver that breaks exactly that rule; the other rules
//! are in `verifier.rs` and the other `verifier_*.rs` files.

use ndisim::*;
use rawnic_tests::fixture;
use rawnic_tests::verifier::{only, start};
use std::time::Duration;

#[test]
fn irp_double_complete() {
    let sim = start("irp_double", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(0x0012_0000, &[], 0).status, 0);
    h.close();
    only(&sim.unload(), Rule::IrpDoubleComplete);
}

#[test]
fn irp_completed_under_a_lock() {
    let sim = start("irp_complete_locked", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    // Released first, then completed: clean.
    assert_eq!(h.ioctl(0x0022_2004, &[], 0).status, 0);
    // Completed with the cancel spin lock held.
    assert_eq!(h.ioctl(0x0012_0000, &[], 0).status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::IrpCompleteUnderLock);
    assert_eq!(r.violations.len(), 1, "{r}");
}

#[test]
fn irp_complete_under_an_rw_lock() {
    let sim = start("rwlock_misuse", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    // Completed while the lock is held for read.
    assert_eq!(h.ioctl(0x0012_0008, &[], 0).status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::IrpCompleteUnderLock);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("Read lock"), "{r}");
}

#[test]
fn irp_not_completed() {
    let sim = start("irp_never", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let t = h.ioctl_async(0x0012_0000, &[], 0).unwrap();
    assert!(t.try_result().is_none());
    assert!(!t.cancel(), "the fixture sets no cancel routine");
    h.close();
    only(&sim.unload(), Rule::IrpNotCompleted);
}

#[test]
fn irp_pending_without_mark() {
    let sim = start("irp_unmarked", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    h.ioctl(0x0012_0000, &[], 0);
    h.close();
    only(&sim.unload(), Rule::IrpPendingMismatch);
}

#[test]
fn irp_cancel_routine_left_set() {
    let sim = start("irp_cancel_set", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    h.ioctl(0x0012_0000, &[], 0);
    h.close();
    only(&sim.unload(), Rule::IrpCancelRoutineSet);
}

#[test]
fn irp_information_overflow() {
    let sim = start("irp_overflow", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(0x0012_0000, &[1, 2, 3], 8);
    assert_eq!(r.data.len(), 8, "the I/O manager copies no more than the buffer");
    h.close();
    only(&sim.unload(), Rule::IrpInformationOverflow);
}

#[test]
fn irp_stale_output() {
    let sim = start("irp_stale", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(0x0012_0000, &[], 64);
    assert_eq!(r.information, 64);
    h.close();
    only(&sim.unload(), Rule::IrpStaleOutput);
}

/// A direct write whose first byte is 0xAA has its last byte zeroed by the
/// fixture before it completes: reported at the completion. Another write,
/// only read, is clean; so is the same check under special pool (the
/// buffer on pages of its own).
#[test]
fn irp_write_modified() {
    for special in [false, true] {
        let sim = Sim::builder()
            .driver(fixture("write_modify"))
            .special_pool(special)
            .watchdog(Duration::from_secs(5))
            .start()
            .unwrap_or_else(|e| panic!("write_modify: {e}"));
        let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
        assert_eq!(h.write(&[0x11; 60]).information, 60);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(h.write(&[0xAA; 60]).information, 60);
        h.close();
        let r = sim.unload();
        only(&r, Rule::IrpWriteModified);
        assert_eq!(r.violations.len(), 1, "{r}");
        assert!(r.violations[0].detail.contains("from byte 59"), "{r}");
    }
}

#[test]
fn device_without_dacl_is_world_accessible() {
    let sim = start("no_dacl", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::User).expect("no DACL: anyone opens it");
    h.close();
    only(&sim.unload(), Rule::InsecureDevice);
}

#[test]
fn device_with_dacl_refuses_users() {
    // The same control device with the SYSTEM + Administrators DACL.
    let sim = start("irp_double", &[]);
    assert_eq!(sim.device_access("\\Device\\Fixture", Identity::User, 0xC000_0000), Some(false));
    assert_eq!(sim.device_access("\\Device\\Fixture", Identity::Admin, 0xC000_0000), Some(true));
    // The fixture does not protect its DACL (SE_DACL_PROTECTED): what
    // `\Device` passes on by inheritance joins it, read for Everyone.
    assert_eq!(sim.device_access("\\Device\\Fixture", Identity::User, 0x8000_0000), Some(true));
    let e = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::User).unwrap_err();
    assert_eq!(e as u32, 0xC000_0022, "STATUS_ACCESS_DENIED");
    assert!(sim.unload().is_clean());
}
