//! MDL rules that an MDL's flags alone do not show, proven by the fixture
//! `mdl_rebuild` (the rest of the MDL rules are in `verifier.rs`).

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
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert_eq!(r.rules(), vec![Rule::InvalidParameter], "{r}");
    let seen: Vec<(&str, &str)> = r.violations.iter().map(|v| (v.call.as_str(), v.detail.as_str())).collect();
    let want = [
        ("IoBuildPartialMdl", "TargetMdl's own pages are still locked"),
        ("IoBuildPartialMdl", &format!("user region #{}'s pages, whose lock is gone", region.id())),
        ("MmUnlockPages", "a partial MDL (IoBuildPartialMdl) locks nothing"),
        ("MmMapLockedPagesSpecifyCache", "BugCheckOnFailure is 1"),
        ("MmMapLockedPagesSpecifyCache", "AccessMode 1 (UserMode)"),
    ];
    assert_eq!(seen.len(), want.len(), "{r}");
    for ((call, detail), (want_call, want_detail)) in seen.iter().zip(want) {
        assert!(*call == want_call && detail.contains(want_detail), "{want_call}: {want_detail}\n{r}");
    }
}
