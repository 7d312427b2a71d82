//! Rule freed-in-use: a pool block freed while something still uses it.
//! The fixture frees each block early (the bug) and then again where the
//! free belonged; ndisim keeps the block at the first, so the second is
//! legal here and the report holds that one rule.

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

const FIXTURE: &str = "\\\\.\\Fixture";

const fn code(function: u32) -> u32 {
    0x0012_0000 | (function << 2)
}

/// Runs the fixture on `adapter` (with one system worker thread, so a
/// work item it keeps busy holds the next one queued), sends `function`,
/// then `after`, and unloads.
fn run(adapter: &str, function: u32, after: impl FnOnce(&Sim)) -> Report {
    let sim = Sim::builder()
        .driver(fixture("freed_in_use"))
        .watchdog(Duration::from_secs(5))
        .cpus(1)
        .adapter(adapter)
        .start()
        .unwrap();
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(code(function), &[], 0).status, 0);
    after(&sim);
    h.close();
    sim.unload()
}

/// The report's one violation: freed-in-use, saying `what`.
fn freed_in_use(r: &Report, what: &str) {
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert_eq!(r.rules(), vec![Rule::FreedInUse], "{r}");
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains(what), "expected {what:?}:\n{r}");
}

#[test]
fn a_spin_lock_held_in_the_block() {
    freed_in_use(&run("null", 0x920, |_| {}), "a spin lock (at offset 16) that is held");
}

#[test]
fn a_spin_lock_released_first_is_clean() {
    let r = run("null", 0x921, |_| {});
    assert!(r.is_clean(), "{r}");
}

#[test]
fn an_oid_request_ndis_pended() {
    let r = run("null@oid=held", 0x922, |sim| {
        // Its own and the restart's packet-filter set.
        assert_eq!(sim.release_oids(AdapterId(0)).unwrap(), 2);
    });
    freed_in_use(&r, "an NDIS_OID_REQUEST (at offset 0) that NDIS owns");
}

#[test]
fn the_information_buffer_of_an_oid_request_ndis_pended() {
    let r = run("null@oid=held", 0x926, |sim| {
        assert_eq!(sim.release_oids(AdapterId(0)).unwrap(), 2);
    });
    freed_in_use(&r, "the InformationBuffer of a pending request for OID 0x10106 (at offset 0)");
}

#[test]
fn the_context_of_a_queued_work_item() {
    freed_in_use(&run("null", 0x923, |_| {}), "the context (at offset 0) of a queued work item");
}

#[test]
fn the_context_of_an_open_binding() {
    let r = run("null", 0x924, |_| {});
    freed_in_use(&r, "the ProtocolBindingContext (at offset 0) of a binding NDIS may still call");
    assert_eq!(r.violations[0].binding.as_deref(), Some("null0"), "{r}");
}

#[test]
fn the_context_of_the_registered_protocol() {
    freed_in_use(&run("null", 0x925, |_| {}), "the ProtocolDriverContext (at offset 0)");
}
