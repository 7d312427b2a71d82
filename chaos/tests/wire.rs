//! The wire oracle's own regression (`chaos/src/run/wire.rs`): seed
//! 215300179, whose adapters do not put a tag on the wire themselves
//! (`vlan=off`), so the driver puts its sends' tags into the frames. The
//! oracle's first version read each frame's sequence number where an
//! untagged frame has it, found none of the 42 frames the schedule's
//! sends said were sent, and failed the schedule of a correct driver. Each
//! is found behind its tag now, and judged.

use rawnic_chaos::schedule::Schedule;
use rawnic_chaos::{RunConfig, run};
use std::path::PathBuf;

#[test]
fn frames_the_driver_tagged_inline_are_found_on_the_wire() {
    let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/wire/inline-tags.json");
    let s: Schedule = serde_json::from_str(&std::fs::read_to_string(&f).expect("the schedule")).expect("JSON");
    assert!(s.adapters.iter().any(|a| a.contains("vlan=off")));
    let o = run(&s, &RunConfig::new(rawnic_tests::rawnic_sys()));
    assert!(!o.failed(), "{o:?}");
    // Every frame said sent was looked for, and every one judged on a wire.
    assert!(o.edges.wire_accepted >= 42, "{:?}", o.edges);
    assert!(o.edges.wire_frames >= o.edges.wire_accepted, "{:?}", o.edges);
}
