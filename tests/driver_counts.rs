//! Statistics of the real rawnic.sys in ndisim agree with what the user
//! already has, at every moment, not only once things are quiet: a frame is
//! counted (the handle's GET_STATS, the binding's, a ring's control block)
//! before the user can find it. These tests look while NDIS is still
//! indicating; a count made after the frames were published shows up as a
//! GET_STATS or a control block behind the rx ring. And every frame is
//! counted where it belongs: by the binding when a ring handle skips it, as
//! dropped by a ring handle that could not read it, a ring's drops by the
//! binding too, another handle's sends by the handle they reach, and every
//! handle's sent frames and bytes by the binding.

use ndisim::InjectOpts;
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// Frames per indication: several of the driver's chunks.
const BURST: usize = 240;

/// Indicates `BURST` frames at a time, `rounds` times, to a ring handle (and
/// to a second, copy-mode handle when `beside`, so that the indication is
/// walked a chunk at a time), and meanwhile checks the counts against the
/// rx ring as often as it can.
fn counts_keep_up_with_the_ring(beside: bool, rounds: usize) {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let other = beside.then(|| open(&sim, 0, filter::DEFAULT, &[]).0);
    let u =
        User::attach(&h, RingSetup { frame_size: 2048, frame_count: 256, fill: 256, rx: 256, tx: 32, completion: 32 });
    let frames: Vec<Vec<u8>> = (0..BURST).map(|i| frame(BROADCAST, PEER, 0x88b5, 60, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let opts = InjectOpts { nbls_per_indication: BURST, ..InjectOpts::default() };
    let (mut looks, mut behind) = (0u64, Vec::new());
    for round in 0..rounds as u64 {
        u.fill((0..BURST as u64).map(|i| u.frame(i)));
        std::thread::scope(|s| {
            let nic = s.spawn(|| sim.inject(a, &refs, &opts).unwrap());
            loop {
                let done = nic.is_finished();
                // What the user can see: the producer (frames placed since
                // the attach) first, acquiring what the driver published,
                // then the counts.
                let on_ring = u64::from(u.m.load_u32(u.l.rx.producer()));
                let block = u.counter(control::RX_FRAMES);
                let st = stats(&h);
                looks += 1;
                if block < on_ring || st.handle.rx_frames < on_ring || st.binding.rx_frames < st.handle.rx_frames {
                    behind.push((on_ring, block, st.handle.rx_frames, st.binding.rx_frames));
                }
                if done {
                    break;
                }
            }
        });
        assert_eq!(u.rx().len(), BURST, "round {round}: every frame placed");
    }
    assert!(
        behind.is_empty(),
        "{} of {looks} looks found counts behind the ring (on the ring, control block, handle, binding): {:?}",
        behind.len(),
        &behind[..behind.len().min(5)]
    );
    let st = stats(&h);
    assert_eq!(st.handle.rx_frames, (rounds * BURST) as u64);
    assert_eq!(st.binding.rx_frames, (rounds * BURST) as u64);
    assert_eq!(u.counter(control::RX_FRAMES), (rounds * BURST) as u64);
    if let Some(o) = other {
        let k = stats(&o).handle;
        assert_eq!(k.rx_frames + k.rx_queue_drops, (rounds * BURST) as u64, "the other handle had them all too");
        o.close();
    }
    detach(&h, u);
    h.close();
    finish(sim);
}

/// The one-pass path (the ring handle is the binding's only receiver).
#[test]
fn counts_keep_up_with_a_sole_ring_receiver() {
    counts_keep_up_with_the_ring(false, 8);
}

/// The chunk path (another handle receives too): the binding's count was
/// made only once the whole indication was walked, while a ring's producer
/// moved a chunk at a time.
#[test]
fn counts_keep_up_with_a_ring_beside_another_receiver() {
    counts_keep_up_with_the_ring(true, 8);
}

/// On the one-pass path, the frames a ring handle does not want that the
/// adapter indicates all the same (broadcast ones, the adapter's filter
/// still that of a handle that closed: its set is held) are counted by the
/// binding, frames and bytes, beside the ones placed. Found by `xtask
/// mutants` (M654: the bytes of a frame skipped in a batch went uncounted).
#[test]
fn the_binding_counts_the_frames_a_sole_ring_receiver_skips() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let own = sim.adapter_mac(a).unwrap();
    let (h, _) = open(&sim, 0, filter::DIRECTED, &[]);
    let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    sim.hold_oids(a).unwrap();
    other.close();
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits(), "the close's set is held");
    let frames: Vec<Vec<u8>> =
        (0..12).map(|i| frame(if i % 3 == 1 { own } else { BROADCAST }, PEER, 0x88b5, 60 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    u.fill((0..16).map(|i| u.frame(i)));
    let before = stats(&h).binding;
    sim.inject(a, &refs, &InjectOpts { nbls_per_indication: frames.len(), ..InjectOpts::default() }).unwrap();
    let wanted: Vec<&Vec<u8>> = frames.iter().filter(|f| f[..6] == own).collect();
    let got = u.rx();
    assert_eq!(got.iter().map(|(_, d)| d).collect::<Vec<_>>(), wanted, "the directed frames, in order");
    let s = stats(&h);
    let bytes = |fs: &[&Vec<u8>]| fs.iter().map(|f| f.len() as u64).sum::<u64>();
    assert_eq!((s.handle.rx_frames, s.handle.rx_bytes), (wanted.len() as u64, bytes(&wanted)));
    let all: Vec<&Vec<u8>> = frames.iter().collect();
    let counted = (s.binding.rx_frames - before.rx_frames, s.binding.rx_bytes - before.rx_bytes);
    assert_eq!(counted, (all.len() as u64, bytes(&all)), "the binding counts every frame");
    sim.release_oids(a).unwrap();
    detach(&h, u);
    h.close();
    finish(sim);
}

/// On the chunk path (another handle receives too), a frame whose header
/// cannot be read (no mapping under low resources) may have been one a
/// ring handle wanted: it counts it as dropped, as a handle reading from
/// its queue does. Found by `xtask mutants` (M664: the ring's chunk path
/// left it uncounted).
#[test]
fn a_ring_handle_counts_a_frame_it_could_not_read_as_dropped() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (all, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..16).map(|i| u.frame(i)));
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    let layout = ndisim::NbLayout { unmapped: true, ..ndisim::NbLayout::default() };
    sim.refuse_mappings(u64::MAX);
    sim.inject(a, &[&f[..], &f[..]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
    sim.refuse_mappings(0);
    assert_eq!(read(&all, 1 << 16).len(), 2, "the promiscuous handle has both, cut to nothing");
    assert!(u.rx().is_empty(), "nothing on the ring");
    let s = stats(&h).handle;
    assert_eq!((s.rx_frames, s.rx_queue_drops), (0, 2), "counted as dropped");
    detach(&h, u);
    h.close();
    all.close();
    finish(sim);
}

/// Frames a ring handle drops (its fill ring runs out) count as dropped
/// twice: by the handle, and by the binding. Found by `xtask mutants`
/// (M710: the tally's drops went to the handle only).
#[test]
fn frames_a_ring_drops_count_for_the_binding_too() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    let frames: Vec<Vec<u8>> = (0..12).map(|i| frame(BROADCAST, PEER, 0x88b5, 60, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let before = stats(&h).binding;
    sim.inject(a, &refs, &InjectOpts { nbls_per_indication: frames.len(), ..InjectOpts::default() }).unwrap();
    assert_eq!(u.rx().len(), 4, "as many as the fill ring gave");
    let s = stats(&h);
    assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops), (4, 8));
    assert_eq!(s.binding.rx_queue_drops - before.rx_queue_drops, 8, "the binding counts the drops too");
    assert_eq!(u.counter(control::RX_FILL_EMPTY), 8);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A frame another handle sent on the binding, delivered to a handle
/// marked outbound, counts as that handle's received frame and bytes, as
/// one from the wire does. Found by `xtask mutants` (M720: the local
/// deliveries' tally was never credited).
#[test]
fn a_handle_counts_the_frames_another_handle_sent() {
    let sim = start(&["null"]);
    let (tx, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (rx, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let frames = [frame(BROADCAST, PEER, 0x88b5, 60, 1), frame(BROADCAST, PEER, 0x88b5, 100, 2)];
    let before = stats(&rx).handle;
    assert_eq!(send(&tx, &frames).accepted, 2);
    let got = queued(&rx);
    assert_eq!(got.len(), 2, "both, marked outbound");
    let after = stats(&rx).handle;
    let bytes = frames.iter().map(|f| f.len() as u64).sum::<u64>();
    assert_eq!((after.rx_frames - before.rx_frames, after.rx_bytes - before.rx_bytes), (2, bytes));
    tx.close();
    rx.close();
    finish(sim);
}

/// Sends of two handles, batched and one at a time, each completed: each
/// handle counts its own frames and bytes, and the binding counts them
/// all. Found by `xtask mutants` (M756: the binding's sent bytes were
/// never added, while its frames were).
#[test]
fn the_binding_counts_every_handles_sent_frames_and_bytes() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h1, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (h2, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let before = stats(&h1).binding;
    let batch1: Vec<Vec<u8>> = (0..5).map(|i| frame(PEER, PEER, 0x88b5, 60 + i * 10, i as u32)).collect();
    assert_eq!(send(&h1, &batch1).accepted, 5);
    let single = frame(PEER, PEER, 0x88b5, 700, 9);
    assert_eq!(status(h2.write(&single).status), NtStatus::SUCCESS);
    let batch2 = [frame(PEER, PEER, 0x88b5, 1514, 10), frame(PEER, PEER, 0x88b5, 64, 11)];
    assert_eq!(send(&h2, &batch2).accepted, 2);
    sends_back(&sim, a);
    let bytes = |fs: &[Vec<u8>]| fs.iter().map(|f| f.len() as u64).sum::<u64>();
    let (b1, b2) = (bytes(&batch1), single.len() as u64 + bytes(&batch2));
    let (s1, s2) = (stats(&h1), stats(&h2));
    assert_eq!((s1.handle.tx_frames, s1.handle.tx_bytes, s1.handle.tx_errors), (5, b1, 0));
    assert_eq!((s2.handle.tx_frames, s2.handle.tx_bytes, s2.handle.tx_errors), (3, b2, 0));
    let after = s2.binding;
    assert_eq!(
        (after.tx_frames - before.tx_frames, after.tx_bytes - before.tx_bytes, after.tx_in_flight),
        (8, b1 + b2, 0),
        "the binding counts both handles' sends"
    );
    h1.close();
    h2.close();
    finish(sim);
}
