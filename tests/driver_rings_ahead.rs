//! A kick writes its frames' completion entries ahead, and an NBL that
//! comes back in order is posted without writing them again
//! (`CompRun::complete_ahead`). With descriptors refused in the middle of
//! kicks and NBLs given back batched and in reverse, every frame still
//! comes back on the completion ring exactly once, and nothing else does.

use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;
use std::collections::BTreeMap;

/// Rings whose completion ring laps a few times over the run.
const SETUP: RingSetup = RingSetup { frame_size: 2048, frame_count: 256, fill: 32, rx: 32, tx: 128, completion: 128 };

/// Kicks of `n` descriptors each, every `bad`-th (from the `skew`-th)
/// one of the first `upto` refused (a flag set), against an adapter that
/// completes sends as `policy` says: each frame, refused or sent, comes
/// back once.
fn every_frame_back_once(policy: &str, kicks: &[(usize, usize, usize, usize)]) {
    let (sim, a) = sim_with(&format!("null@completion={policy}"));
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 60, 7);
    // Each frame of the UMEM, as the offset a descriptor names.
    let mut posted: BTreeMap<u64, usize> = BTreeMap::new();
    let mut back: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut next, mut refused, mut sent) = (0u64, 0u64, 0u64);
    for &(n, bad, skew, upto) in kicks {
        let descs: Vec<TxDesc> = (0..n)
            .map(|i| {
                let addr = u.frame(next % u64::from(SETUP.frame_count));
                next += 1;
                u.m.write(addr as usize, &f);
                let flags = u32::from(bad != 0 && i < upto && i % bad == skew);
                TxDesc { addr, len: f.len() as u32, flags }
            })
            .collect();
        for d in &descs {
            *posted.entry(d.addr).or_default() += 1;
        }
        u.tx(&descs);
        // Kicked until the tx ring is empty (a kick takes no more than
        // the frames the adapter holds leave room for).
        let mut taken = 0;
        for tries in 0.. {
            assert!(tries < 1000, "the tx ring drains");
            let r = kick(&h).1.unwrap();
            taken += r.sent + r.invalid;
            (refused, sent) = (refused + u64::from(r.invalid), sent + u64::from(r.sent));
            for a in u.completions() {
                *back.entry(a).or_default() += 1;
            }
            if taken == n as u32 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    // What the adapter still holds comes back.
    sim.set_completion(a, ndisim::CompletionPolicy::Immediate).unwrap();
    assert!(sim.settle(a));
    for tries in 0.. {
        assert!(tries < 5000, "every send comes back");
        if stats(&h).handle.tx_in_flight == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    for a in u.completions() {
        *back.entry(a).or_default() += 1;
    }
    assert_eq!(back, posted, "each frame back once, and no other");
    let st = stats(&h);
    assert_eq!((st.handle.tx_frames, st.handle.tx_in_flight), (sent, 0));
    assert_eq!(u.counter(control::TX_INVALID), refused);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// The kicks: (descriptors, every how many one is refused, from which,
/// among how many first). The first makes two NBLs, the first of 32
/// frames among 32 refused descriptors, the second of the 32 after: back
/// in reverse (`reorder:2`), the second finds the completion ring's index
/// where its entries would be had the refusals not come first.
const KICKS: [(usize, usize, usize, usize); 11] = [
    (96, 2, 0, 64),
    (70, 0, 0, 0),
    (40, 17, 5, 40),
    (64, 0, 0, 0),
    (33, 0, 0, 0),
    (90, 31, 30, 90),
    (5, 0, 0, 0),
    (64, 2, 1, 64),
    (100, 0, 0, 0),
    (20, 7, 0, 20),
    (3, 0, 0, 0),
];

#[test]
fn nbls_given_back_in_reverse_pairs_post_each_frame_once() {
    every_frame_back_once("reorder:2", &KICKS);
}

#[test]
fn nbls_given_back_batched_and_reversed_post_each_frame_once() {
    every_frame_back_once("reorder:3", &KICKS);
}

#[test]
fn nbls_given_back_in_pieces_post_each_frame_once() {
    every_frame_back_once("scatter", &KICKS);
}

#[test]
fn nbls_given_back_in_order_post_each_frame_once() {
    every_frame_back_once("batch:2", &KICKS);
}

/// The first kick of the rings, every descriptor good: its NBLs' entries
/// were all written ahead, and they come back in reverse pairs. The
/// second NBL back first finds the completion ring's index at 0 while
/// its entries lie after the first NBL's: it must post its own frames,
/// not the ones still in flight at the index.
#[test]
fn the_first_kick_all_good_and_given_back_in_reverse_posts_each_frame_once() {
    every_frame_back_once("reorder:2", &[(96, 0, 0, 0), (64, 0, 0, 0), (40, 3, 1, 40)]);
}
