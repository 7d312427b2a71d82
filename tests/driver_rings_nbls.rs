//! A kick's zero-copy frames go as few NBLs: up to 32 frames an NBL, one
//! NET_BUFFER each, which NDIS sends as a frame each and completes with
//! the NBL's one status. Every frame still reaches the wire once, in order,
//! and comes back on the completion ring once, in the order NDIS gave its
//! NBL back; a failed NBL fails each of its frames, and nothing is held
//! after.

use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// Frames a zero-copy NBL carries (the driver's `ZC_FRAMES_PER_NBL`).
const PER_NBL: usize = 32;

/// Rings with room for 128 frames in flight.
const BIG: RingSetup = RingSetup { frame_size: 2048, frame_count: 128, fill: 32, rx: 32, tx: 128, completion: 128 };

/// Writes `n` distinct frames into frames `first..first + n` of `u` and
/// posts them on its tx ring; returns them.
fn post(u: &User, first: u64, n: usize) -> Vec<Vec<u8>> {
    let frames: Vec<Vec<u8>> =
        (0..n).map(|i| frame(PEER, PEER, 0x88b5, 60 + (i * 37) % 1400, (first as usize + i) as u32)).collect();
    for (i, f) in frames.iter().enumerate() {
        u.m.write(u.frame(first + i as u64) as usize, f);
    }
    let descs: Vec<TxDesc> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| TxDesc { addr: u.frame(first + i as u64), len: f.len() as u32, flags: 0 })
        .collect();
    u.tx(&descs);
    frames
}

#[test]
fn a_kick_of_seventy_frames_goes_as_three_nbls_and_each_comes_back_whole() {
    let (sim, a) = sim_with("null");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, BIG);
    sim.hold_sends(a).unwrap();
    let frames = post(&u, 0, 70);
    assert_eq!(kick(&h).1.unwrap().sent, 70);
    assert_eq!(sim.outstanding(a).sends_in_flight, 3, "32 + 32 + 6 frames");
    assert!(u.completions().is_empty(), "NDIS has them all");
    // The first NBL back: its 32 frames, in order, and no other.
    assert_eq!(sim.release_sends(a, Some(1)).unwrap(), 1);
    let first: Vec<u64> = (0..PER_NBL as u64).map(|i| u.frame(i)).collect();
    assert_eq!(u.completions(), first);
    assert_eq!(stats(&h).handle.tx_in_flight, 38);
    assert_eq!(sim.release_sends(a, None).unwrap(), 2);
    let rest: Vec<u64> = (PER_NBL as u64..70).map(|i| u.frame(i)).collect();
    assert_eq!(u.completions(), rest, "every frame once, in order");
    let wire: Vec<Vec<u8>> = sim.captured(a).into_iter().map(|f| f.data).collect();
    assert_eq!(wire, frames, "each NET_BUFFER went as its own frame, as the user wrote it");
    let st = stats(&h);
    assert_eq!((st.handle.tx_frames, st.handle.tx_errors, st.handle.tx_in_flight), (70, 0, 0));
    assert_eq!(u.counter(control::TX_FRAMES), 70);
    // The NBLs and NET_BUFFERs are reused: the next kicks send again.
    for round in 0..3 {
        post(&u, 0, 50 + round);
        assert_eq!(kick(&h).1.unwrap().sent as usize, 50 + round);
        assert_eq!(sim.release_sends(a, None).unwrap(), 2);
        assert_eq!(u.completions().len(), 50 + round);
    }
    assert_eq!(sim.captured(a).len(), 70 + 50 + 51 + 52);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn a_failed_nbl_fails_each_of_its_frames_and_none_reaches_the_wire() {
    let (sim, a) = sim_with("null@send-fail=1000");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, BIG);
    post(&u, 0, 40);
    assert_eq!(kick(&h).1.unwrap().sent, 40, "all went to NDIS");
    assert!(sim.settle(a));
    let all: Vec<u64> = (0..40).map(|i| u.frame(i)).collect();
    assert_eq!(u.completions(), all, "every frame back, failed");
    assert!(sim.captured(a).is_empty());
    let st = stats(&h);
    assert_eq!((st.handle.tx_frames, st.handle.tx_errors, st.handle.tx_in_flight), (0, 40, 0));
    assert_eq!((st.binding.tx_frames, st.binding.tx_errors), (0, 40));
    assert_eq!(u.counter(control::TX_FRAMES), 0);
    assert_eq!(u.counter(control::TX_ERRORS), 40, "the UMEM's count of frames NDIS failed");
    assert_eq!(sim.sends_failed(), 40);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn with_half_the_nbls_failed_the_counts_add_up_frame_by_frame() {
    let (sim, a) = sim_with("null@send-fail=500");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, BIG);
    let mut total = 0u64;
    for round in 0..20u64 {
        let n = 1 + (round as usize * 13) % 90;
        post(&u, 0, n);
        assert_eq!(kick(&h).1.unwrap().sent as usize, n);
        assert!(sim.settle(a));
        assert_eq!(u.completions().len(), n, "round {round}: every frame back");
        total += n as u64;
    }
    let wire = sim.captured(a).len() as u64;
    let st = stats(&h);
    assert_eq!(st.handle.tx_frames, wire, "sent is what reached the wire");
    assert_eq!(st.handle.tx_errors, sim.sends_failed());
    assert_eq!(st.handle.tx_frames + st.handle.tx_errors, total);
    assert_eq!(u.counter(control::TX_FRAMES), wire);
    assert_eq!(u.counter(control::TX_ERRORS), sim.sends_failed());
    assert!(wire > 0 && wire < total, "{wire} of {total} sent with half the NBLs failed");
    detach(&h, u);
    h.close();
    finish(sim);
}
