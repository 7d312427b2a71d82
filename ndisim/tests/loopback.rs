//! NDIS's loopback, as ndisim models it: a protocol's sends come back to it
//! only with NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK, marked
//! NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET (and, as every indication, only if its
//! packet filter takes them: `tests/capture.rs`); the wire does not bring
//! them back either.

use ndisim::*;
use std::time::Duration;

fn probe(adapter: &str) -> Sim {
    Sim::builder()
        .driver(rawnic_tests::fixture("probe_loopback"))
        .adapter(adapter)
        .watchdog(Duration::from_secs(5))
        .start()
        .expect("the probe starts")
}

fn looped(s: &Sim) -> usize {
    s.debug_output().iter().filter(|l| l.contains("probe: loopback receive")).count()
}

#[test]
fn only_a_send_that_asks_comes_back_and_it_is_marked() {
    // (The fixtures bind one adapter at a time.)
    for adapter in ["null", "loopback", "null@completion=batch:4"] {
        let s = probe(adapter);
        let a = AdapterId(0);
        let mut f = vec![0xFFu8; 60];
        f[12] = 0x88;
        f[13] = 0xB5;
        // The probe's first receive makes it send two frames.
        assert_eq!(s.inject(a, &[&f], &InjectOpts::default()).unwrap(), 1);
        assert!(s.settle(a));
        assert_eq!(looped(&s), 1, "{adapter}: {:?}", s.debug_output());
        assert_eq!(s.sent_frames(a), 2, "{adapter}: both went out on the wire");
        // A frame NDIS loops back from another protocol is marked too.
        assert_eq!(s.inject(a, &[&f], &InjectOpts { loopback: true, ..Default::default() }).unwrap(), 1);
        assert_eq!(looped(&s), 2, "{adapter}");
        let r = s.unload();
        assert!(r.is_clean(), "{adapter}: {r}");
    }
}
