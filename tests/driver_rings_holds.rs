//! How long the ring receive of a sole receiver holds its locks: the
//! handle's and the rings' locks are taken for about 64 frames at a time
//! (the driver's `DRAIN_BATCH`) and let go between, so that a send
//! completion, a kick or a reader on another CPU waiting for either spins
//! for a batch at most, not for a whole indication of hundreds of frames.

use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::STALL;
use rawnic_tests::rings::*;

/// Frames the driver copies under one hold of the handle's and the rings'
/// locks, at most (the NBL that reaches the count is finished).
const DRAIN_BATCH: usize = 64;

/// Rings with room for every frame of the indication.
const ROOMY: RingSetup = RingSetup { frame_size: 2048, frame_count: 512, fill: 512, rx: 512, tx: 32, completion: 32 };

/// The spin-lock acquires the driver makes inside one receive indication
/// of `n` frames (an NBL each) to a handle with rings, its only receiver,
/// all of them taken; and the frames that reached the rx ring.
fn acquires_for(n: usize) -> (u64, usize) {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, PacketFilter::BROADCAST, &[]);
    let u = User::attach(&h, ROOMY);
    u.fill((0..n as u64).map(|i| u.frame(i)));
    let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(BROADCAST, PEER, 0x88b5, 60, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    // Aimed past any acquire the indication makes: it counts, and stalls
    // none.
    sim.stall_lock_acquire("ProtocolReceiveNetBufferLists", u64::MAX, STALL).unwrap();
    let one = ndisim::InjectOpts { nbls_per_indication: n, ..ndisim::InjectOpts::default() };
    sim.inject(a, &refs, &one).unwrap();
    let (acquires, stalls, _) = sim.lock_acquire_stalls();
    assert_eq!(stalls, 0);
    let got = u.rx();
    assert!(got.iter().zip(&frames).all(|((_, d), f)| d == f), "the frames, in order");
    detach(&h, u);
    h.close();
    finish(sim);
    (acquires, got.len())
}

/// An indication of 512 frames takes the locks again for each batch of
/// 64: eight batches, each with both locks, so at least 16 acquires
/// besides the indication's own, and every frame reaches the rx ring. (One
/// hold over the whole indication makes as many acquires as one of 64
/// frames does.)
#[test]
fn a_long_indication_lets_go_of_the_rings_every_batch() {
    let (one, got) = acquires_for(DRAIN_BATCH);
    assert_eq!(got, DRAIN_BATCH);
    let (eight, got) = acquires_for(8 * DRAIN_BATCH);
    assert_eq!(got, 8 * DRAIN_BATCH);
    eprintln!("acquires: {one} for one batch, {eight} for eight");
    assert!(
        eight >= one + 7 * 2,
        "{eight} acquires for eight batches, {one} for one: the locks were held across batches"
    );
}
