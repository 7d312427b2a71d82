//! `count_call_sites`: the driver's calls into ndisim counted by site, for
//! a fuzzer's feedback. A site keeps its byte wherever the image is mapped,
//! and a simulation that does more calls from more places.

use ndisim::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

static TABLE: [AtomicU8; 4096] = [const { AtomicU8::new(0) }; 4096];

/// The table's counts after a run of the loopback probe mapped at `base`,
/// with `frames` frames given to it (each makes it send two). The table is
/// cleared first.
fn run(base: usize, frames: usize) -> Vec<u8> {
    for b in &TABLE {
        b.store(0, Ordering::Relaxed);
    }
    let s = Sim::builder()
        .driver(rawnic_tests::fixture("probe_loopback"))
        .adapter("null")
        .image_base(base)
        .watchdog(Duration::from_secs(5))
        .start()
        .expect("the probe starts");
    let mut f = vec![0xFFu8; 60];
    f[12] = 0x88;
    f[13] = 0xB5;
    let a = AdapterId(0);
    for _ in 0..frames {
        assert_eq!(s.inject(a, &[&f], &InjectOpts::default()).unwrap(), 1);
        assert!(s.settle(a));
    }
    let r = s.unload();
    assert!(r.is_clean(), "{r}");
    TABLE.iter().map(|b| b.load(Ordering::Relaxed)).collect()
}

fn sites(t: &[u8]) -> BTreeSet<usize> {
    t.iter().enumerate().filter(|(_, n)| **n != 0).map(|(i, _)| i).collect()
}

#[test]
fn sites_are_counted_where_the_image_lies_and_grow_with_what_the_driver_does() {
    count_call_sites(&TABLE);
    // (The simulations of this test run one after another: the counts are
    // of the last image loaded.)
    let idle_a = run(0x7e00_0000_0000, 0);
    let idle_b = run(0x7d00_0000_0000, 0);
    assert!(sites(&idle_a).len() >= 5, "load, bind and unload call ndisim from several places: {:?}", sites(&idle_a));
    assert_eq!(idle_a, idle_b, "the same calls, wherever the image is mapped");
    let busy = run(0x7e00_0000_0000, 3);
    // The probe's receive handler and its sends call from places an idle
    // run never reaches, and the calls made in both are made more often.
    assert!(sites(&busy).is_superset(&sites(&idle_a)), "{:?} vs {:?}", sites(&busy), sites(&idle_a));
    assert!(sites(&busy).len() > sites(&idle_a).len(), "{:?}", sites(&busy));
}
