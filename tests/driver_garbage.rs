//! Nothing rawnic.sys never wrote reaches its callers: a scripted life
//! that makes every request the device takes (each with output buffers
//! too small, exact and larger), frames both ways over a pair of adapters
//! (some shorter than 60 bytes), OID queries and sets, events, programs
//! and rings, run twice in one deterministic simulation seed with
//! different garbage where the driver has not written (ndisim's
//! `garbage`: fresh pool, a fresh NBL's reserved words, context data and
//! preallocated data, unwritten buffered output, the stack's paint). Every
//! request must complete the same way with the same bytes
//! (`Sim::outputs`, `first_difference`).

use ndisim::{AdapterId, Output, first_difference};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::{SETUP, User, detach, kick, wait_request};

const OIDS: [u32; 5] = [
    ndis_sys::OID_GEN_VENDOR_DESCRIPTION,
    ndis_sys::OID_GEN_LINK_SPEED,
    ndis_sys::OID_802_3_CURRENT_ADDRESS,
    ndis_sys::OID_GEN_CURRENT_PACKET_FILTER,
    ndis_sys::OID_GEN_STATISTICS,
];

fn oid_input(oid: u32, data: &[u8]) -> Vec<u8> {
    let mut input = vec![0u8; 16 + data.len()];
    OidRequest { oid, data }.emit(&mut input).unwrap();
    input
}

/// The scripted life under `garbage`: what every request gave back.
fn life(garbage: u8) -> Vec<Output> {
    let sim = start_with(&["pair:a,b"], |b| b.deterministic(11).garbage(garbage).record_outputs(true));
    let ctl = sim.open().unwrap();
    for out in [0, 4, 16, 4096] {
        ctl.ioctl(IOCTL_RAWNIC_GET_VERSION, &empty(), out);
    }
    for out in [0, 16, 200, 64 * 1024] {
        ctl.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty(), out);
    }
    ctl.ioctl(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, &empty(), 64);
    let (tx, _) = open(&sim, 0, PacketFilter::PROMISCUOUS, &[]);
    let (rx, _) = open(&sim, 1, PacketFilter::PROMISCUOUS, &[]);
    // Frames of 14 to 1514 bytes, some shorter than Ethernet's 60.
    let lens = [14usize, 20, 42, 59, 60, 61, 200, 1514];
    let frames: Vec<Vec<u8>> =
        lens.iter().enumerate().map(|(i, &l)| frame(BROADCAST, PEER, 0x88b5, l, i as u32)).collect();
    send(&tx, &frames);
    for f in &frames {
        tx.write(f);
    }
    // And from the wire, to both.
    let mut seq = 100;
    inject_numbered(&sim, AdapterId(1), [14, 33, 60, 700], &mut seq);
    inject_numbered(&sim, AdapterId(0), [15, 64], &mut seq);
    for a in [AdapterId(0), AdapterId(1)] {
        sim.settle(a);
    }
    for out in [16, 100, 1 << 16] {
        rx.read(out);
        tx.read(out);
    }
    for h in [&tx, &rx, &ctl] {
        for out in [0, 8, StatsReply::LEN, StatsReply::LEN + 64] {
            h.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), out);
        }
    }
    for oid in OIDS {
        for out in [16, 20, 64, 4096] {
            tx.ioctl(IOCTL_RAWNIC_QUERY_OID, &oid_input(oid, &[]), out);
        }
    }
    tx.ioctl(IOCTL_RAWNIC_SET_OID, &multicast_input(&[[1, 0, 0x5e, 0, 0, 1]]), 64);
    tx.ioctl(IOCTL_RAWNIC_SET_OID, &oid_input(ndis_sys::OID_GEN_CURRENT_LOOKAHEAD, &[0, 1]), 64);
    // Events: a pause and restart while a wait pends, and one after.
    let wait = rx.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), 256).unwrap();
    sim.pause(AdapterId(1)).unwrap();
    sim.restart(AdapterId(1), &ndisim::RestartSpec::default()).unwrap();
    wait.wait();
    for out in [0, 8, 256] {
        rx.ioctl(IOCTL_RAWNIC_WAIT_EVENT, &empty(), out);
    }
    // A program (classic BPF: accept 100 bytes), and one refused.
    let accept = [0x06u8, 0, 0, 0, 100, 0, 0, 0];
    rx.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &accept, 0);
    rx.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &[0xFF; 8], 64);
    // Rings: an attach, fills, frames onto the rx ring, a kick with
    // nothing posted, a wait the detach ends.
    let (ring, _) = open(&sim, 1, PacketFilter::PROMISCUOUS, &[]);
    let u = User::attach(&ring, SETUP);
    u.fill(0..16);
    inject_numbered(&sim, AdapterId(1), [20, 60, 1000], &mut seq);
    sim.settle(AdapterId(1));
    let _ = u.rx();
    kick(&ring);
    let wait = ring.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(rawnic_proto::ring::wait_flags::RX), 64).unwrap();
    detach(&ring, u);
    wait.wait();
    // Requests of no kind the device knows, and damaged ones.
    ctl.ioctl(0x0022_7FFC, &[1, 2, 3], 64);
    ctl.ioctl(IOCTL_RAWNIC_OPEN, &[0xAB; 7], 64);
    tx.ioctl(IOCTL_RAWNIC_SEND_BATCH, &[0xCD; 40], 64);
    drop((tx, rx, ring, ctl));
    let outputs = sim.outputs();
    finish(sim);
    outputs
}

#[test]
fn every_request_gives_the_same_back_whatever_the_garbage() {
    let a = life(0);
    assert!(a.len() > 80, "{} requests", a.len());
    assert!(a.iter().filter(|o| o.status == 0 && o.len > 0).count() > 30);
    assert_eq!(first_difference(&a, &life(0)), None, "the same garbage: the same life");
    for g in [0x5A, 0xFF] {
        assert_eq!(first_difference(&a, &life(g)), None, "garbage {g:#x}");
    }
}
