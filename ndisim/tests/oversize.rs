//! Rule send-oversize: a frame longer than the adapter's largest (its MTU
//! and the Ethernet header, 4 more with an 802.1Q tag inline) reaching
//! `NdisSendNetBufferLists`. The `send_echo` fixture sends, for each NBL it
//! receives, a frame as long as it (tagged inline when the NBL carried a
//! tag in its info), so the test picks the lengths.

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

/// Frames of `len` bytes (tagged inline or not) echoed by the `send_echo`
/// fixture on an adapter of MTU 100: the largest is 114 bytes, 118 with a
/// tag.
fn echoed(lens: &[(usize, bool)]) -> Report {
    let sim = Sim::builder()
        .driver(fixture("send_echo"))
        .watchdog(Duration::from_secs(5))
        .adapter("null@mtu=100")
        .start()
        .unwrap();
    for &(len, tagged) in lens {
        let mut f = vec![0xFFu8; len];
        f[12] = 0x88;
        f[13] = 0xB5;
        let opts = InjectOpts { tci: tagged.then_some(5), ..InjectOpts::default() };
        sim.inject(AdapterId(0), &[&f], &opts).unwrap();
    }
    sim.unload()
}

#[test]
fn frames_up_to_the_adapters_largest_are_sent() {
    let r = echoed(&[(60, false), (114, false), (60, true), (118, true)]);
    assert!(r.is_clean(), "{r}");
}

#[test]
fn send_oversize() {
    for (len, tagged) in [(115, false), (119, true), (1514, false)] {
        let r = echoed(&[(60, false), (len, tagged)]);
        assert!(r.internal_errors.is_empty(), "internal errors: {r}");
        assert_eq!(r.rules(), vec![Rule::SendOversize], "{len} bytes, tagged {tagged}: {r}");
        assert_eq!(r.violations.len(), 1, "{len} bytes, tagged {tagged}: {r}");
        assert!(r.violations[0].detail.contains(&format!("a {len}-byte frame")), "{r}");
    }
}
