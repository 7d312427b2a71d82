//! MDL rules that an MDL's flags alone do not show, proven by the fixture
//! `mdl_rebuild` (the rest of the MDL rules are in `verifier_user_memory.rs`).

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

const FIXTURE: &str = "\\\\.\\Fixture";
/// `CTL_CODE(0x12, 0x900, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)`.
const CODE_MAP: u32 = 0x0012_0000 | (0x900 << 2) | 2;

#[test]
fn mdl_rebuilt_or_mapped_wrongly_is_an_invalid_parameter() {
    let sim = Sim::builder().driver(fixture("mdl_rebuild")).watchdog(Duration::from_secs(5)).start().unwrap();
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(2 * 4096).unwrap();
    let t = h.ioctl_region_async(CODE_MAP, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    h.close();
    let r = sim.unload();
    let lock_gone = format!("user region #{}'s pages, whose lock is gone", region.id());
    only_invalid_parameters(
        &r,
        &[
            ("IoBuildPartialMdl", "TargetMdl's own pages are still locked"),
            ("IoBuildPartialMdl", &lock_gone),
            ("MmUnlockPages", "a partial MDL (IoBuildPartialMdl) locks nothing"),
            ("MmMapLockedPagesSpecifyCache", "BugCheckOnFailure is 1"),
            ("MmMapLockedPagesSpecifyCache", "AccessMode 1 (UserMode)"),
        ],
    );
}

/// The report breaks only invalid-parameter, exactly these violations in
/// order: (call, part of the detail).
fn only_invalid_parameters(r: &Report, want: &[(&str, &str)]) {
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert_eq!(r.rules(), vec![Rule::InvalidParameter], "{r}");
    let seen: Vec<(&str, &str)> = r.violations.iter().map(|v| (v.call.as_str(), v.detail.as_str())).collect();
    assert_eq!(seen.len(), want.len(), "{r}");
    for ((call, detail), (want_call, want_detail)) in seen.iter().zip(want) {
        assert!(call == want_call && detail.contains(want_detail), "{want_call}: {want_detail}\n{r}");
    }
}

/// The `pool_mdl` fixture: MDLs the driver builds in its own pool.
mod pool_mdl {
    use super::*;

    const CODE_GOOD: u32 = 0x0012_0000 | (0x900 << 2) | 2;
    const CODE_FREE_SENT: u32 = 0x0012_0000 | (0x901 << 2) | 2;
    const CODE_MISUSE: u32 = 0x0012_0000 | (0x902 << 2) | 2;

    fn start(completion: &str) -> Sim {
        Sim::builder()
            .driver(fixture("pool_mdl"))
            .adapter(&format!("loopback@completion={completion},capture=on"))
            .watchdog(Duration::from_secs(5))
            .start()
            .unwrap()
    }

    fn frame() -> Vec<u8> {
        (0..60).map(|i| if i < 6 { 0xFF } else { i as u8 }).collect()
    }

    #[test]
    fn a_partial_mdl_in_the_drivers_pool_done_right_is_clean() {
        for completion in ["immediate", "held", "delay:5"] {
            let sim = start(completion);
            let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
            let region = UserRegion::new(4096).unwrap();
            region.write(0, &frame());
            let t = h.ioctl_region_async(CODE_GOOD, &[], region.clone()).unwrap();
            if completion == "held" {
                assert!(t.wait_for(Duration::from_millis(50)).is_none(), "pending until the send is back");
                sim.release_sends(AdapterId(0), None).unwrap();
            }
            assert_eq!(t.wait().expect("completed").status, 0);
            assert_eq!(sim.captured(AdapterId(0))[0].data, frame(), "{completion}: the user's bytes, sent");
            h.close();
            let r = sim.unload();
            assert!(r.is_clean(), "{completion}: {r}");
        }
    }

    #[test]
    fn freeing_the_pool_under_a_sent_mdl_breaks_nbl_ownership() {
        let sim = start("held");
        let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
        let region = UserRegion::new(4096).unwrap();
        region.write(0, &frame());
        let t = h.ioctl_region_async(CODE_FREE_SENT, &[], region.clone()).unwrap();
        let first = sim.violations();
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!((first[0].rule, first[0].call.as_str()), (Rule::NblOwnership, "ExFreePoolWithTag"));
        assert!(first[0].detail.contains("in 1 NBL(s) NDIS still owns"), "{first:?}");
        // The block was kept for the miniport, which still reads it.
        assert_eq!(sim.release_sends(AdapterId(0), None).unwrap(), 1);
        assert_eq!(t.wait().expect("completed").status, 0);
        h.close();
        let r = sim.unload();
        assert!(r.internal_errors.is_empty(), "internal errors: {r}");
        assert_eq!(r.rules(), vec![Rule::NblOwnership, Rule::PoolLeak], "{r}");
    }

    #[test]
    fn bad_pool_targets_and_freeing_one_are_invalid_parameters() {
        let sim = start("immediate");
        let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
        let region = UserRegion::new(4096).unwrap();
        assert_eq!(h.ioctl_region_async(CODE_MISUSE, &[], region).unwrap().wait().expect("completed").status, 0);
        h.close();
        let r = sim.unload();
        only_invalid_parameters(
            &r,
            &[
                ("IoBuildPartialMdl", "TargetMdl's Size is 48"),
                ("IoBuildPartialMdl", "runs past the end of its pool block"),
                ("IoBuildPartialMdl", "nor one in a live block of the driver's pool"),
                ("IoFreeMdl", "goes with its block"),
                ("NdisAllocateMdl", "memory outside any pool block"),
                ("NdisAllocateMdl", "memory outside any pool block"),
                ("MmMapLockedPagesSpecifyCache", "MDL_SOURCE_IS_NONPAGED_POOL"),
            ],
        );
    }
}
