//! The ring receive's one-pass path, of the real rawnic.sys in ndisim: a
//! ring handle that is its binding's only receiver has each indication
//! walked once (classified, stamped and copied frame by frame, the frames
//! of plain NBLs mapped whole gathered into batches). It places the same
//! frames as the path beside other receivers, with the same descriptors
//! and counts, takes a tagged frame by the EtherType inside, keeps frames
//! of every kind in order on the rx ring, and fills its batches without
//! writing past them. (Receive, attach and detach: `driver_rings.rs`.)

use ndisim::InjectOpts;
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// Everything a received frame's descriptor says but where it went and
/// when, with the bytes placed.
type Placed = (u32, u32, u16, u16, u16, u16, Vec<u8>);

/// The frames placed since the last call, and their stamps.
fn placed(u: &User) -> (Vec<Placed>, Vec<u64>) {
    let got = u.rx();
    // The frames go back on the fill ring for the next indication.
    u.fill(got.iter().map(|(d, _)| d.addr));
    let stamps = got.iter().map(|(d, _)| d.timestamp_ns).collect();
    (got.into_iter().map(|(d, b)| (d.len, d.origlen, d.flags, d.tci, d.segs, d.seg_size, b)).collect(), stamps)
}

/// The counters the rings publish, and the handle's.
fn ring_counts(h: &ndisim::Handle, u: &User) -> [u64; 6] {
    let s = stats(h);
    [
        u.counter(control::RX_FRAMES),
        u.counter(control::RX_FILL_EMPTY),
        s.handle.rx_frames,
        s.handle.rx_bytes,
        s.handle.rx_queue_drops,
        s.handle.rx_truncated,
    ]
}

#[test]
fn a_sole_ring_receiver_gets_what_it_gets_beside_other_receivers() {
    // A ring handle that is its binding's only receiver has each
    // indication walked in one pass (classified, stamped and copied frame
    // by frame); beside another receiver the frames are classified a chunk
    // at a time and then placed. Both must place the same frames, with
    // the same descriptors, and count the same.
    let sim = start(&["null@uro=on"]);
    let a = sim.adapter_id("null0").unwrap();
    let name = {
        let h = sim.open().unwrap();
        let n = list(&h)[0].name.clone();
        h.close();
        n
    };
    let h = sim.open().unwrap();
    let req = open_request_full(&name, filter::DEFAULT, &[0x88b5, 0x0800], (0, 0, 1000), LocalSends::Others, false);
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
    assert_eq!(r.status, 0);
    let mac = OpenReply::parse(&r.data).unwrap().mac;
    let u =
        User::attach(&h, RingSetup { frame_size: 2048, frame_count: 256, fill: 256, rx: 256, tx: 32, completion: 32 });
    u.fill((0..256).map(|i| u.frame(i)));
    let mut tagged = frame(BROADCAST, PEER, 0x8100, 90, 7);
    tagged[14..18].copy_from_slice(&[0x20, 0x05, 0x08, 0x00]);
    let frames = [
        frame(BROADCAST, PEER, 0x88b5, 60, 1),
        frame(mac, PEER, 0x0800, 1514, 2),
        frame([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], PEER, 0x0800, 300, 3),
        // Another host's: no handle takes it (no promiscuous mode).
        frame([0x02, 0, 0, 0, 0, 0x42], PEER, 0x0800, 100, 4),
        // An EtherType the handle does not take.
        frame(BROADCAST, PEER, 0x86dd, 100, 5),
        tagged,
        // Cut by the frame (and the snap length).
        frame(mac, PEER, 0x0800, 1400, 6),
        frame(BROADCAST, PEER, 0x88b5, 14, 8),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let coalesced = [frame(mac, PEER, 0x0800, 20_000, 9)];
    let big: Vec<&[u8]> = coalesced.iter().map(|f| &f[..]).collect();
    // More NBLs in one indication than the one-pass path drains per hold
    // of its locks (64).
    let many: Vec<&[u8]> = refs.iter().copied().cycle().take(130).collect();
    let d = InjectOpts::default;
    let rounds: Vec<(&[&[u8]], InjectOpts)> = vec![
        (&refs, d()),
        (&refs, InjectOpts { nbls_per_indication: 8, ..d() }),
        (&refs, InjectOpts { nbs_per_nbl: 3, nbls_per_indication: 2, ..d() }),
        (&refs, InjectOpts { tci: Some(0x6007), nbls_per_indication: 4, ..d() }),
        (&refs, InjectOpts { loopback: true, nbls_per_indication: 8, ..d() }),
        (&refs, InjectOpts { resources: true, nbls_per_indication: 8, ..d() }),
        (&refs, InjectOpts { dispatch: false, nbls_per_indication: 8, ..d() }),
        (&big, InjectOpts { coalesce: Some(ndisim::Coalesce::Rsc { segs: 14, dup_acks: 0 }), ..d() }),
        (&big, InjectOpts { coalesce: Some(ndisim::Coalesce::Uro { segs: 6, seg_size: 1472 }), ..d() }),
        (&many, InjectOpts { nbls_per_indication: 130, ..d() }),
    ];
    // The same frames as NICs may lay them out in MDLs (headroom before
    // the frame, header-data split, chains of small buffers, a split
    // inside the addresses or the tag): what is placed must not change.
    let shaped = rounds.len();
    let mut rounds = rounds;
    for layout in shaped_layouts() {
        rounds.push((&refs, InjectOpts { layout, nbls_per_indication: 8, ..d() }));
        rounds.push((&refs, InjectOpts { layout, resources: true, nbs_per_nbl: 2, nbls_per_indication: 4, ..d() }));
    }
    let run = || {
        let before = ring_counts(&h, &u);
        let got: Vec<Vec<Placed>> = rounds
            .iter()
            .map(|(f, o)| {
                // Each frame is stamped with the system time as the driver
                // takes it: within the indication, at 100 ns, in order.
                let now =
                    || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
                let t0 = now() / 100 * 100;
                sim.inject(a, f, o).unwrap();
                let t1 = now();
                let (got, stamps) = placed(&u);
                assert!(stamps.iter().all(|t| (t0..=t1).contains(t) && t % 100 == 0), "{stamps:?} not in {t0}..={t1}");
                assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "in order: {stamps:?}");
                got
            })
            .collect();
        let after = ring_counts(&h, &u);
        (got, std::array::from_fn::<u64, 6, _>(|i| after[i] - before[i]))
    };
    let (alone, alone_counts) = run();
    // Beside a second receiver: a queue handle with the same packet filter
    // (so the binding's, and what the adapter passes, stays the same).
    let (other, _) = open(&sim, 0, filter::DEFAULT, &[0x0800]);
    let (beside, beside_counts) = run();
    assert_eq!(alone.len(), beside.len());
    for (i, (x, y)) in alone.iter().zip(&beside).enumerate() {
        assert_eq!(x, y, "round {i}: {:?}", rounds[i].1);
    }
    assert_eq!(alone_counts, beside_counts);
    // What the rounds hold, checked once: 5 of the 8 frames are taken
    // (not another host's, not IPv6, not the group no handle joined, which
    // the adapter does not pass), the tagged one with its inline TCI, the
    // long ones cut to the snap length.
    assert_eq!(alone[0].len(), 5);
    let tag = &alone[0][2];
    assert_eq!((tag.2 & (frame_flags::TAGGED | frame_flags::VLAN), tag.3), (frame_flags::TAGGED, 0x2005));
    assert!(alone[0].iter().all(|p| p.0 == p.1.min(1000)));
    assert_eq!(alone[0].iter().filter(|p| p.2 & frame_flags::TRUNCATED != 0).count(), 2);
    assert!(alone[..7].iter().enumerate().all(|(i, r)| r.len() == 5 || i == 3), "however NDIS groups them");
    // With a tag stripped into every NBL's info, the tagged frame has two
    // tags on the wire: its EtherType is 0x8100 and the one inside too,
    // neither listed (as for a frame with both tags inline).
    assert_eq!(alone[3].len(), 4);
    assert!(alone[3].iter().all(|p| p.3 == 0x6007 || p.3 == 0x2005), "the NIC's TCI");
    assert!(alone[4].iter().all(|p| p.2 & frame_flags::LOOPBACK != 0));
    assert_eq!((alone[7][0].2 & frame_flags::COALESCED, alone[7][0].4), (frame_flags::COALESCED, 14));
    assert_eq!((alone[8][0].4, alone[8][0].5), (6, 1472));
    assert_eq!(alone[9].len(), 130 / 8 * 5 + 2, "across three holds of the locks");
    assert_eq!(alone_counts[0], alone.iter().map(Vec::len).sum::<usize>() as u64);
    for (i, r) in alone.iter().enumerate().skip(shaped) {
        assert_eq!(r, &alone[0], "round {i}: {:?}", rounds[i].1.layout);
    }
    other.close();
    detach(&h, u);
    h.close();
    finish(sim);
}

/// An 802.1ad frame (S-tag 0x88a8 inline) is taken by the EtherType its
/// tag carries, as `ethertypes` reads it, on the ring's one-pass path
/// too (frames mapped whole, a batch at a time): a handle that lists
/// IPv4 takes one with IPv4 inside and not one with IPv6 inside, nor a
/// plain IPv6 frame.
#[test]
fn an_8021ad_frame_is_taken_by_the_ethertype_inside() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[0x0800]);
    let u = User::attach(&h, SETUP);
    u.fill((0..16).map(|i| u.frame(i)));
    let tagged = |inner: [u8; 2], seed| {
        let mut f = frame(BROADCAST, PEER, 0x88a8, 120, seed);
        f[14..18].copy_from_slice(&[0x00, 0x05, inner[0], inner[1]]);
        f
    };
    let frames = [
        frame(BROADCAST, PEER, 0x0800, 100, 1),
        tagged([0x08, 0x00], 2),
        tagged([0x86, 0xdd], 3),
        frame(BROADCAST, PEER, 0x86dd, 100, 4),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    let got = u.rx();
    let types: Vec<[u8; 2]> = got.iter().map(|(_, b)| [b[12], b[13]]).collect();
    assert_eq!(types, [[0x08, 0x00], [0x88, 0xa8]], "the plain IPv4 frame and the tagged one");
    assert!(got.iter().zip(&frames).all(|((_, b), f)| b == f));
    detach(&h, u);
    h.close();
    finish(sim);
}

/// On the ring's one-pass path the frames a handle takes on their
/// destination class alone go a batch at a time, and any other (one whose
/// EtherType must be looked at, or with a tag inline) alone: the rx ring
/// holds the frames the handle wants in the order they came, and every
/// frame is counted, placed or not.
#[test]
fn frames_of_every_kind_keep_their_order_on_the_rx_ring() {
    const OWN: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    let (sim, a) = sim_with("null@mac=02:00:00:00:00:01");
    let mut tagged = frame(BROADCAST, PEER, 0x8100, 120, 9);
    tagged[14..18].copy_from_slice(&[0x00, 0x05, 0x88, 0xb5]);
    let frames = [
        frame(BROADCAST, PEER, 0x88b5, 100, 1),
        frame(OWN, PEER, 0x88b5, 101, 2),
        frame(BROADCAST, PEER, 0x0800, 102, 3),
        tagged,
        frame(BROADCAST, PEER, 0x88b5, 104, 5),
        frame(OWN, PEER, 0x0800, 105, 6),
        frame(OWN, PEER, 0x88b5, 106, 7),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let all: u64 = frames.iter().map(|f| f.len() as u64).sum();
    // Every frame taken on its class but the tagged one; then only those
    // of EtherType 0x88b5 (none on its class alone), the tagged one too.
    for (types, placed) in [(&[][..], &[0, 1, 2, 3, 4, 5, 6][..]), (&[0x88b5][..], &[0, 1, 3, 4, 6][..])] {
        let (h, _) = open(&sim, 0, filter::DEFAULT, types);
        let u = User::attach(&h, SETUP);
        u.fill((0..16).map(|i| u.frame(i)));
        let before = stats(&h).binding;
        sim.inject(a, &refs, &InjectOpts::default()).unwrap();
        let got = u.rx();
        assert_eq!(got.len(), placed.len(), "{types:x?}");
        for ((d, bytes), &i) in got.iter().zip(placed) {
            assert_eq!(bytes, &frames[i], "{types:x?}: frame {i}, in order");
            assert_eq!(d.flags & frame_flags::TAGGED != 0, i == 3, "{types:x?}: frame {i}'s flags");
        }
        assert_eq!(u.counter(control::RX_FRAMES), placed.len() as u64);
        let s = stats(&h);
        let placed_bytes: u64 = placed.iter().map(|&i| frames[i].len() as u64).sum();
        let counted = (s.handle.rx_frames, s.handle.rx_bytes, s.handle.rx_queue_drops);
        assert_eq!(counted, (placed.len() as u64, placed_bytes, 0), "{types:x?}");
        let binding = (s.binding.rx_frames - before.rx_frames, s.binding.rx_bytes - before.rx_bytes);
        assert_eq!(binding, (frames.len() as u64, all), "{types:x?}: the binding counts every frame");
        detach(&h, u);
        h.close();
    }
    finish(sim);
}

/// The one-pass walk gathers the frames of plain NBLs mapped whole into
/// batches of 32, up to 64 frames a hold of the handle's locks: an
/// indication of many one-frame NBLs (past a batch and a hold), of NBLs of
/// many NET_BUFFERs (40: past a batch, the next NBL's first frame written
/// where the batch has room, its others wherever the batch ends), and of
/// a mix, and for a handle with an EtherType list frames of another type
/// among them (each batch filtered): every frame the handle wants lands
/// once, in order, intact, and nothing is written past a batch.
#[test]
fn batches_of_frames_mapped_whole_fill_up_and_land_once_in_order() {
    const RX: RingSetup = RingSetup { frame_size: 2048, frame_count: 256, fill: 256, rx: 256, tx: 32, completion: 32 };
    const N: usize = 200;
    let (sim, a) = sim_with("null");
    let frames: Vec<Vec<u8>> =
        (0..N).map(|i| frame(BROADCAST, PEER, if i % 5 == 4 { 0x0800 } else { 0x88b5 }, 60 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    for types in [&[][..], &[0x88b5][..]] {
        let (h, _) = open(&sim, 0, filter::DEFAULT, types);
        let u = User::attach(&h, RX);
        for sizes in [vec![1], vec![40], vec![31, 1, 40, 2, 33, 1, 64]] {
            let what = format!("types {types:x?}, NBL sizes {sizes:?}");
            let want: Vec<usize> = (0..N).filter(|i| types.is_empty() || i % 5 != 4).collect();
            // A frame for each frame wanted: the fill ring is empty again
            // after each indication.
            u.fill((0..want.len() as u64).map(|i| u.frame(i)));
            let o = InjectOpts { nbls_per_indication: N, nbl_sizes: sizes.clone(), ..InjectOpts::default() };
            assert_eq!(sim.inject(a, &refs, &o).unwrap(), N, "{what}");
            let got = u.rx();
            assert_eq!(got.len(), want.len(), "{what}: the frames the handle wants, each once");
            for ((d, bytes), &i) in got.iter().zip(&want) {
                assert_eq!(bytes, &frames[i], "{what}: frame {i}, in order and intact");
                assert_eq!((d.len, d.origlen, d.flags), (frames[i].len() as u32, frames[i].len() as u32, 0), "{what}");
            }
        }
        assert_eq!(u.counter(control::RX_FILL_EMPTY) + u.counter(control::RX_RING_FULL), 0);
        detach(&h, u);
        h.close();
    }
    finish(sim);
}
