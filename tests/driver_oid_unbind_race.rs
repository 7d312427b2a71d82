//! A user's OID request that found its handle's binding and meets the
//! unbind before it is sent: ndisim stalls the request's thread inside an
//! allocation only that request makes (`stall_pool_allocations_of`, its
//! answer buffer or its copy of the multicast list, after the handle's
//! check of its binding), the unbind runs to its close meanwhile, and the
//! request goes on into a binding that is closing (`Refusal::Closing`).
//! It is refused there: STATUS_DEVICE_REMOVED, nothing of it reaches
//! NDIS (the adapter is closed by then: ndisim would report a request on
//! a closed binding), nothing is left pending, the unbind completes once
//! the request let go of the binding, and the verifier stays clean.

use ndisim::{AdapterId, Sim};
use rawnic_proto::{IOCTL_RAWNIC_QUERY_OID, IOCTL_RAWNIC_SET_OID, NtStatus, PacketFilter};
use rawnic_tests::drv::*;
use std::time::{Duration, Instant};

/// Waits (at most 10 s) until `done()`.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How many requests for `oid` the driver made on `a`.
fn requests_for(sim: &Sim, a: AdapterId, oid: u32) -> usize {
    sim.oid_log(a, false).iter().filter(|&&(_, o)| o == oid).count()
}

/// A group address.
fn g(i: u8) -> [u8; 6] {
    [0x01, 0x00, 0x5e, 0x00, 0x00, i]
}

/// The request a test races with the unbind: its IOCTL, input, output
/// size, the OID, and the size of the allocation only it makes.
struct Racer {
    code: u32,
    input: Vec<u8>,
    out: usize,
    oid: u32,
    stall: usize,
}

fn query() -> Racer {
    let mut input = vec![0u8; 16];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
    // The answer's buffer: the output less the reply's 16-byte header.
    Racer { code: IOCTL_RAWNIC_QUERY_OID, input, out: 16 + 1234, oid: ndis_sys::OID_GEN_LINK_SPEED, stall: 1234 }
}

fn multicast_set() -> Racer {
    // 31 groups: the copy of the list is 186 bytes.
    let value: Vec<u8> = (0..31).flat_map(|i| g(100 + i)).collect();
    let mut input = vec![0u8; 16 + value.len()];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &value }.emit(&mut input).unwrap();
    Racer { code: IOCTL_RAWNIC_SET_OID, input, out: 64, oid: ndis_sys::OID_802_3_MULTICAST_LIST, stall: 186 }
}

#[test]
fn a_user_oid_that_meets_the_unbind_before_it_is_sent_is_refused_device_removed() {
    for (what, r) in [("query", query()), ("multicast set", multicast_set())] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
        // A list of its own on the adapter, which the set would replace.
        let mut one = vec![0u8; 16 + 6];
        rawnic_proto::OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &g(1) }.emit(&mut one).unwrap();
        assert_eq!(h.ioctl(IOCTL_RAWNIC_SET_OID, &one, 64).status, 0);
        let sent = requests_for(&sim, a, r.oid);
        sim.stall_pool_allocations_of(r.stall);
        std::thread::scope(|s| {
            let call = s.spawn(|| h.ioctl(r.code, &r.input, r.out));
            until("the request is inside its allocation", || sim.stalled_pool_allocations() == 1);
            let unbind = s.spawn(|| sim.unbind(a));
            // The close was made and completed: the binding is closing
            // (the unbind itself waits for the request's reference).
            until("the binding is closed", || sim.debug_output().iter().any(|l| l.contains("closed ")));
            assert!(!unbind.is_finished(), "{what}: the unbind waits for the request to let go of the binding");
            assert_eq!(sim.stalled_pool_allocations(), 1, "{what}: the request is still inside its allocation");
            sim.release_pool_allocations();
            let res = call.join().unwrap();
            assert_eq!(status(res.status), NtStatus::DEVICE_REMOVED, "{what}");
            unbind.join().unwrap().unwrap();
        });
        assert_eq!(requests_for(&sim, a, r.oid), sent, "{what}: nothing of it reached NDIS");
        assert_eq!(sim.outstanding(a).oids_pending, 0, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        // The adapter binds again, and a new handle's requests work.
        sim.bind(a).unwrap();
        sim.restart(a, &ndisim::RestartSpec::default()).unwrap();
        let (n, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
        let res = n.ioctl(r.code, &r.input, r.out);
        assert_eq!(status(res.status), NtStatus::SUCCESS, "{what}");
        h.close();
        n.close();
        finish(sim);
    }
}
