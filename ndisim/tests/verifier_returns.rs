//! `NdisReturnNetBufferLists` (fixture `return_rules`): a protocol gives
//! back only the NBLs it holds, each once, in any order and batching, with
//! `NDIS_RETURN_FLAGS_DISPATCH_LEVEL` set when, and only when, it knows it
//! runs at DISPATCH_LEVEL; and the indications it is given are mixed
//! chains (loopback and wire, coalesced and plain NBLs in one call).

use ndisim::*;
use rawnic_tests::verifier::{only, start};

const KEEP: u32 = 0x0012_0000;
const GIVE_BACK: u32 = 0x0012_0004;
const TWICE: u32 = 0x0012_0008;
const WRONG_FLAGS: u32 = 0x0012_000C;
const RETURN_RESOURCES: u32 = 0x0012_0010;

fn frame(seed: u8) -> Vec<u8> {
    let mut f = vec![0xFFu8; 60];
    f[12] = 0x88;
    f[13] = 0xB5;
    f[14] = seed;
    f
}

fn ioctl(h: &Handle, code: u32) {
    assert_eq!(h.ioctl(code, &[], 0).status, 0, "IOCTL {code:#x}");
}

fn fixture_handle(sim: &Sim) -> Handle {
    sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap()
}

/// Three indications of three NBLs, each mixing looped-back and wire
/// NBLs, coalesced and plain.
fn mixed(sim: &Sim, resources: bool) {
    let frames: Vec<Vec<u8>> = (0..9).map(frame).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let o = InjectOpts {
        nbls_per_indication: 3,
        loopbacks: vec![true, false],
        coalesces: vec![None, Some(Coalesce::Rsc { segs: 3, dup_acks: 0 }), None],
        resources,
        ..InjectOpts::default()
    };
    assert_eq!(sim.inject(AdapterId(0), &refs, &o).unwrap(), 9);
}

#[test]
fn kept_nbls_given_back_in_any_order_and_batching_are_clean() {
    let sim = start("return_rules", &["null"]);
    let h = fixture_handle(&sim);
    ioctl(&h, KEEP);
    mixed(&sim, false);
    assert_eq!(sim.outstanding(AdapterId(0)).receives_retained, 9);
    // Last kept first, as two chains that each mix indications.
    ioctl(&h, GIVE_BACK);
    assert_eq!(sim.outstanding(AdapterId(0)).receives_retained, 0);
    h.close();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

#[test]
fn an_nbl_given_back_twice() {
    let sim = start("return_rules", &["null"]);
    let h = fixture_handle(&sim);
    ioctl(&h, KEEP);
    mixed(&sim, false);
    ioctl(&h, TWICE);
    h.close();
    let r = sim.unload();
    only(&r, Rule::NblOwnership);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("returned twice"), "{r}");
}

#[test]
fn a_resources_chain_given_back() {
    let sim = start("return_rules", &["null"]);
    let h = fixture_handle(&sim);
    ioctl(&h, RETURN_RESOURCES);
    mixed(&sim, true);
    h.close();
    let r = sim.unload();
    only(&r, Rule::NblOwnership);
    // One per indication: the walk of a chain stops at the first NBL that
    // is not the driver's.
    assert_eq!(r.violations.len(), 3, "{r}");
    assert!(r.violations.iter().all(|v| v.detail.contains("NDIS_RECEIVE_FLAGS_RESOURCES")), "{r}");
}

#[test]
fn return_flags_say_the_irql_when_it_is_known() {
    let sim = start("return_rules", &["null"]);
    let h = fixture_handle(&sim);
    ioctl(&h, WRONG_FLAGS);
    let f = frame(1);
    // At DISPATCH_LEVEL and told so: the flag left clear.
    sim.inject(AdapterId(0), &[&f], &InjectOpts::default()).unwrap();
    assert_eq!(sim.violations().len(), 1);
    // At DISPATCH_LEVEL, not told: the flag set is right after all.
    sim.inject(AdapterId(0), &[&f], &InjectOpts { unflagged: true, ..InjectOpts::default() }).unwrap();
    assert_eq!(sim.violations().len(), 1);
    // At PASSIVE_LEVEL: the flag set.
    sim.inject(AdapterId(0), &[&f], &InjectOpts { dispatch: false, ..InjectOpts::default() }).unwrap();
    h.close();
    let r = sim.unload();
    only(&r, Rule::Irql);
    let details: Vec<&str> = r.violations.iter().map(|v| v.detail.as_str()).collect();
    assert_eq!(details.len(), 2, "{r}");
    assert!(details[0].contains("is clear inside a receive handler"), "{r}");
    assert!(details[1].contains("is set but the caller is not at DISPATCH_LEVEL"), "{r}");
}
