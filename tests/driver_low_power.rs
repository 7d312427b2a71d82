//! Sends while the adapter is in a low-power state: NDIS pauses the
//! binding after `NetEventSetPower` for D1-D3, or (a miniport of NDIS 6.30
//! that keeps its stack running through a power change,
//! NO_PAUSE_ON_SUSPEND) it stays Running, and only the driver's own
//! low-power state stops its sends. Either way none reaches NDIS: a WRITE
//! and a SEND_BATCH fail STATUS_DEVICE_NOT_READY, nothing is counted in
//! flight, the verifier stays clean; back in D0 sends go.

use rawnic_proto::*;
use rawnic_tests::drv::*;

#[test]
fn no_send_reaches_an_adapter_in_low_power() {
    for adapter in ["null", "null@pause-on-suspend=off"] {
        let sim = start(&[adapter]);
        let a = sim.adapter_id("null0").unwrap();
        sim.set_capture(a, true);
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let f = frame(PEER, PEER, 0x88b5, 60, 1);
        assert_eq!(h.write(&f).status, 0, "{adapter}: in D0 a send goes");
        assert!(sim.settle(a));
        let sent = sim.nbl_stats().sent;
        // D3.
        sim.set_power(a, 4).unwrap();
        assert_eq!(status(h.write(&f).status), NtStatus::DEVICE_NOT_READY, "{adapter}");
        let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f.clone(), None)]), SendReply::LEN);
        assert_eq!(status(r.status), NtStatus::DEVICE_NOT_READY, "{adapter}");
        assert_eq!(sim.nbl_stats().sent, sent, "{adapter}: nothing reached NDIS");
        assert_eq!(stats(&h).handle.tx_in_flight, 0, "{adapter}");
        assert!(sim.violations().is_empty(), "{adapter}: {:?}", sim.violations());
        // D0.
        sim.set_power(a, 1).unwrap();
        assert_eq!(h.write(&f).status, 0, "{adapter}: back in D0 a send goes");
        assert!(sim.settle(a));
        assert_eq!(sim.captured(a).len(), 2, "{adapter}");
        h.close();
        finish(sim);
    }
}
