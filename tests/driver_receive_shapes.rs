//! Receive indications of every shape NDIS lets a miniport make, against
//! the real rawnic.sys in ndisim: NBLs of one NET_BUFFER and of many (more
//! than the driver walks at a time), chained in indications of one to many
//! NBLs, each NBL with its own 802.1Q info, and NET_BUFFERs whose data
//! starts deep in their MDL chain, crosses many small and zero-length
//! MDLs, ends inside an MDL that goes on, or lies in MDLs not mapped yet;
//! frames shorter than an Ethernet header and longer than the MTU; with
//! NDIS_RECEIVE_FLAGS_RESOURCES and without. Every frame must reach every
//! reader (ReadFile and rings) intact and exactly once, the counts must
//! add up, and every NBL must go back to the miniport.

use ndisim::{InjectOpts, NbLayout, Sim};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// Lengths of the frames: runts (1 to 13 bytes: no whole Ethernet
/// header), a bare header, short and long frames (retained or copied,
/// 256 bytes being where the driver starts retaining), the MTU's frame,
/// one with a tag's 4 more, and frames past the MTU (a jumbo frame).
const LENS: [usize; 14] = [1, 5, 12, 13, 14, 60, 255, 256, 300, 1514, 1518, 2047, 4000, 9018];

/// `n` frames cycling through `LENS`, each with its own bytes; the longer
/// ones broadcast, some to another host (the handles are promiscuous).
fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = LENS[i % LENS.len()];
            let dst = if i % 3 == 0 { PEER } else { BROADCAST };
            let mut f = frame(dst, PEER, 0x88b5 + (i % 2) as u16, len, i as u32 + 1);
            f.truncate(len);
            // The last bytes say which frame this is (a runt's too).
            let tail = f.len().min(2);
            let at = f.len() - tail;
            f[at..].copy_from_slice(&(i as u16).to_be_bytes()[2 - tail..]);
            f
        })
        .collect()
}

/// NET_BUFFER layouts beyond `shaped_layouts`: data starting in the
/// fourth MDL at an offset into it, zero-length MDLs before, between and
/// after the data (one of them `CurrentMdl`), a last MDL that goes on past
/// the frame, one-byte MDLs, `shaped_layouts` with their MDLs apart in
/// memory (`spread`: a read past an MDL's end finds a pattern, not the
/// frame's next bytes), and the same not mapped yet.
fn deep_layouts() -> Vec<NbLayout> {
    let d = NbLayout::default;
    let mapped = [
        NbLayout {
            headroom: 100,
            headroom_mdl: true,
            headroom_mdls: 3,
            current_offset: 10,
            first: 14,
            chunk: 200,
            ..d()
        },
        NbLayout { empty_mdls: true, first: 6, chunk: 7, ..d() },
        NbLayout { headroom: 40, headroom_mdl: true, headroom_mdls: 2, empty_mdls: true, chunk: 100, tail: 64, ..d() },
        NbLayout { headroom: 33, headroom_mdl: true, current_offset: 5, empty_mdls: true, first: 1, chunk: 1, ..d() },
        NbLayout { headroom: 2, first: 13, chunk: 3, tail: 300, ..d() },
        NbLayout { empty_mdls: true, ..d() },
        NbLayout { tail: 1, ..d() },
    ];
    let spread = shaped_layouts().map(|l| NbLayout { spread: 16, ..l });
    let mapped: Vec<NbLayout> = mapped.into_iter().chain(spread).collect();
    let unmapped = mapped.iter().map(|l| NbLayout { unmapped: true, ..*l });
    mapped.iter().copied().chain(shaped_layouts()).chain(unmapped).chain([NbLayout::default()]).collect()
}

/// NBL sizes: one NET_BUFFER, many (40 and 33 cross the driver's 32-frame
/// walk), a few.
const NBL_SIZES: [usize; 7] = [1, 40, 3, 33, 2, 1, 5];

/// The 802.1Q TCI of each NBL in turn (None: no info).
const TCIS: [Option<u16>; 4] = [None, Some(0x2005), None, Some(0xE00F)];

/// The TCI each frame's NBL carried, as `opts` groups them.
fn tci_per_frame(opts: &InjectOpts, n: usize) -> Vec<Option<u16>> {
    opts.nbl_groups(n).iter().enumerate().flat_map(|(k, &size)| std::iter::repeat_n(opts.tci_of(k), size)).collect()
}

/// The injections each test makes of `frames`: every NBL size, layout and
/// TCI mixed in one injection, in indications of one, seven and a hundred
/// NBLs, with NDIS_RECEIVE_FLAGS_RESOURCES and without, at DISPATCH_LEVEL
/// and PASSIVE_LEVEL.
fn rounds() -> Vec<InjectOpts> {
    let mut out = Vec::new();
    for (nbls, resources, dispatch) in
        [(1, false, true), (7, false, true), (100, false, false), (1, true, true), (7, true, false), (100, true, true)]
    {
        out.push(InjectOpts {
            nbls_per_indication: nbls,
            nbl_sizes: NBL_SIZES.to_vec(),
            tcis: TCIS.to_vec(),
            layouts: deep_layouts(),
            resources,
            dispatch,
            ..InjectOpts::default()
        });
    }
    out
}

/// What a reader must find for frame `f`, whose NBL carried `tci`: its
/// record flags (tag) and TCI.
fn tag_of(f: &[u8], tci: Option<u16>) -> (u16, u16) {
    match tci {
        Some(t) => (frame_flags::VLAN | frame_flags::TAGGED, t),
        None if f.len() >= 16 && f[12..14] == [0x81, 0x00] => (frame_flags::TAGGED, u16::from_be_bytes([f[14], f[15]])),
        None => (0, 0),
    }
}

fn adapter(sim: &Sim) -> ndisim::AdapterId {
    sim.adapter_id("null0").unwrap()
}

/// Every NBL is back with the miniport and none is kept.
fn all_back(sim: &Sim, a: ndisim::AdapterId, what: &str) {
    assert_eq!(retained(sim, a, 0), 0, "{what}: NBLs still retained");
    assert_eq!(sim.receive_buffers(a).0, 0, "{what}: receive buffers not given back");
}

/// Reads every record queued on `h` (several reads if need be).
fn read_all(h: &ndisim::Handle, want: usize) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut got = Vec::new();
    while got.len() < want {
        let r = read(h, 4 << 20);
        assert!(!r.is_empty());
        got.extend(r);
    }
    got
}

/// Checks records against the frames injected: each once, in order, whole
/// and with its NBL's tag.
fn check_records(got: &[(FrameHeader, Vec<u8>)], frames: &[Vec<u8>], tcis: &[Option<u16>], what: &str) {
    assert_eq!(got.len(), frames.len(), "{what}: every frame once");
    for (i, ((r, d), f)) in got.iter().zip(frames).enumerate() {
        assert_eq!(d, f, "{what}: frame {i} ({} bytes) intact", f.len());
        assert_eq!((r.caplen as usize, r.origlen as usize), (f.len(), f.len()), "{what}: frame {i}");
        assert_eq!(r.flags & frame_flags::TRUNCATED, 0, "{what}: frame {i} not cut");
        let want = tag_of(f, tcis[i]);
        assert_eq!((r.flags & (frame_flags::VLAN | frame_flags::TAGGED), r.tci), want, "{what}: frame {i}'s tag");
        assert_eq!(r.flags & (frame_flags::OUTBOUND | frame_flags::LOOPBACK | frame_flags::COALESCED), 0);
    }
}

/// A reader (ReadFile) gets every frame of every shape, intact, once, in
/// order, tagged as its own NBL says; the handle and the binding count
/// each once; and every NBL goes back, retained ones when read.
#[test]
fn every_shape_of_indication_reaches_a_reader_intact_and_once() {
    let sim = start(&["null"]);
    let a = adapter(&sim);
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let frames = frames(200);
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    for (round, o) in rounds().into_iter().enumerate() {
        let what = format!("round {round} ({} NBLs an indication, resources {})", o.nbls_per_indication, o.resources);
        assert_eq!(sim.inject(a, &refs, &o).unwrap(), frames.len(), "{what}");
        if o.resources {
            all_back(&sim, a, &what);
        }
        let got = read_all(&h, frames.len());
        check_records(&got, &frames, &tci_per_frame(&o, frames.len()), &what);
        all_back(&sim, a, &what);
        let s = stats(&h);
        let n = (round as u64 + 1) * frames.len() as u64;
        assert_eq!((s.handle.rx_frames, s.handle.rx_bytes), (n, n / 200 * bytes), "{what}: the handle's counts");
        assert_eq!((s.binding.rx_frames, s.binding.rx_bytes), (n, n / 200 * bytes), "{what}: the binding's counts");
        assert_eq!((s.handle.rx_queue_drops, s.handle.rx_truncated, s.queued_frames), (0, 0, 0), "{what}");
    }
    h.close();
    finish(sim);
}

/// A UMEM of 256 frames of 4 KiB with rings of 256.
const BIG: RingSetup = RingSetup { frame_size: 4096, frame_count: 256, fill: 256, rx: 256, tx: 32, completion: 32 };

/// Checks rx descriptors against the frames injected: each once, in
/// order, cut only by the frame size (and then marked), with its NBL's
/// tag.
fn check_ring(got: &[(RxDesc, Vec<u8>)], frames: &[Vec<u8>], tcis: &[Option<u16>], what: &str) {
    assert_eq!(got.len(), frames.len(), "{what}: every frame once");
    for (i, ((r, d), f)) in got.iter().zip(frames).enumerate() {
        let keep = f.len().min(BIG.frame_size as usize);
        assert_eq!(&d[..], &f[..keep], "{what}: frame {i} ({} bytes) intact", f.len());
        assert_eq!((r.len as usize, r.origlen as usize), (keep, f.len()), "{what}: frame {i}");
        let cut = if keep < f.len() { frame_flags::TRUNCATED } else { 0 };
        assert_eq!(r.flags & frame_flags::TRUNCATED, cut, "{what}: frame {i}");
        let want = tag_of(f, tcis[i]);
        assert_eq!((r.flags & (frame_flags::VLAN | frame_flags::TAGGED), r.tci), want, "{what}: frame {i}'s tag");
    }
}

/// The same indications into a handle's rings: alone on its binding (the
/// one-pass path) and beside a ReadFile handle (the chunked path), every
/// frame lands once, intact, in order, in both readers; the counts add up
/// and every NBL goes back.
#[test]
fn every_shape_of_indication_reaches_rings_intact_and_once() {
    let sim = start(&["null"]);
    let a = adapter(&sim);
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let u = User::attach(&h, BIG);
    let frames = frames(200);
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let mut reader = None;
    let mut placed = 0;
    for beside in [false, true] {
        if beside {
            reader = Some(open(&sim, 0, filter::PROMISCUOUS, &[]).0);
        }
        for (round, o) in rounds().into_iter().enumerate() {
            let what = format!(
                "beside a reader {beside}, round {round} ({} NBLs, resources {})",
                o.nbls_per_indication, o.resources
            );
            u.fill((0..frames.len() as u64).map(|i| u.frame(i)));
            assert_eq!(sim.inject(a, &refs, &o).unwrap(), frames.len(), "{what}");
            let tcis = tci_per_frame(&o, frames.len());
            check_ring(&u.rx(), &frames, &tcis, &what);
            placed += frames.len() as u64;
            assert_eq!(u.counter(control::RX_FRAMES), placed, "{what}");
            if let Some(r) = &reader {
                check_records(&read_all(r, frames.len()), &frames, &tcis, &what);
            }
            all_back(&sim, a, &what);
            let s = stats(&h);
            let cut = (placed / frames.len() as u64) * frames.iter().filter(|f| f.len() > 4096).count() as u64;
            assert_eq!(
                (s.handle.rx_frames, s.handle.rx_queue_drops, s.handle.rx_truncated),
                (placed, 0, cut),
                "{what}"
            );
        }
    }
    assert_eq!(u.counter(control::RX_FILL_EMPTY) + u.counter(control::RX_RING_FULL), 0);
    reader.unwrap().close();
    detach(&h, u);
    h.close();
    finish(sim);
}

/// No miniport indicates an NBL without a NET_BUFFER, and NDIS passes
/// none up: ndisim refuses to make one rather than hand it to the driver,
/// and nothing of the injection reaches it.
#[test]
fn an_nbl_without_a_net_buffer_is_never_indicated() {
    let sim = start(&["null"]);
    let a = adapter(&sim);
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let frames = frames(4);
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let before = sim.nbl_stats().receive_indications;
    let o = InjectOpts { nbl_sizes: vec![2, 0], nbls_per_indication: 2, ..InjectOpts::default() };
    let e = sim.inject(a, &refs, &o).unwrap_err();
    assert!(e.to_string().contains("no NET_BUFFER"), "{e}");
    assert_eq!(sim.nbl_stats().receive_indications, before, "nothing indicated");
    assert_eq!(stats(&h).binding.rx_frames, 0);
    all_back(&sim, a, "refused");
    h.close();
    finish(sim);
}

/// A frame shorter than an Ethernet header has no EtherType, and neither
/// has one whose header could not be read (no mapping under low
/// resources): a handle that lists EtherTypes gets neither, even with
/// 0x0000 on its list (an 802.3 length field of 0, which a whole frame can
/// carry), and counts the unread one as dropped, since it may have wanted
/// it; a handle that takes every EtherType gets them all.
#[test]
fn a_frame_without_a_whole_header_has_no_ethertype() {
    let sim = start(&["null"]);
    let a = adapter(&sim);
    let (typed, _) = open(&sim, 0, filter::PROMISCUOUS, &[0x0000, 0x88b5]);
    let (all, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let zero = frame(BROADCAST, PEER, 0x0000, 60, 1);
    let mut runt = frame(BROADCAST, PEER, 0x0000, 14, 2);
    runt.truncate(13);
    let tiny = vec![0u8; 1];
    sim.inject(a, &[&tiny[..], &runt[..], &zero[..]], &InjectOpts { nbls_per_indication: 3, ..InjectOpts::default() })
        .unwrap();
    let data = |h| read(h, 1 << 16).into_iter().map(|(_, d)| d).collect::<Vec<_>>();
    assert_eq!(data(&typed), std::slice::from_ref(&zero), "only the frame whose type/length field is 0x0000");
    assert_eq!(data(&all), [tiny, runt, zero.clone()]);
    // A header that cannot be read: the EtherType is not known.
    let layout = NbLayout { unmapped: true, ..NbLayout::default() };
    sim.refuse_mappings(u64::MAX);
    sim.inject(a, &[&zero[..]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
    sim.refuse_mappings(0);
    let got = read(&all, 1 << 16);
    assert_eq!((got[0].0.caplen, got[0].0.flags & frame_flags::TRUNCATED), (0, frame_flags::TRUNCATED));
    let s = stats(&typed);
    assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops, s.queued_frames), (1, 1, 0), "counted as dropped");
    typed.close();
    all.close();
    finish(sim);
}

/// Frames retained in NBLs of several NET_BUFFERs (one retention per NBL,
/// many frames on it, some of them copied once the reader is behind) all
/// go back at a pause and at a miniport's low-resources indication, and
/// the reader still reads each frame once, in order.
#[test]
fn frames_retained_in_nbls_of_many_net_buffers_go_back_at_a_pause_and_when_the_miniport_is_low() {
    let sim = start(&["null@rx-buffers=12"]);
    let a = adapter(&sim);
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let big: Vec<Vec<u8>> = (0..60).map(|i| frame(BROADCAST, PEER, 0x88b5, 300 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = big.iter().map(|f| &f[..]).collect();
    let o = |sizes: &[usize]| InjectOpts {
        nbl_sizes: sizes.to_vec(),
        nbls_per_indication: 2,
        layouts: deep_layouts(),
        ..InjectOpts::default()
    };
    // Five NBLs of three: fifteen frames retained on five NBLs.
    sim.inject(a, &refs[..15], &o(&[3])).unwrap();
    assert_eq!(retained(&sim, a, 5), 5);
    sim.pause(a).unwrap();
    all_back(&sim, a, "paused");
    sim.restart(a, &ndisim::RestartSpec::default()).unwrap();
    check_records(&read_all(&h, 15), &big[..15], &[None; 15], "after the pause");
    // Nine NBLs of one, then an indication that leaves the miniport low
    // (fewer than three of its twelve buffers free): all nine come back.
    sim.inject(a, &refs[15..24], &o(&[1])).unwrap();
    assert_eq!(retained(&sim, a, 9), 9);
    sim.inject(a, &refs[24..60], &o(&[20, 16])).unwrap();
    all_back(&sim, a, "low");
    check_records(&read_all(&h, 45), &big[15..], &[None; 45], "after the low indication");
    assert_eq!(sim.receive_buffers(a).1, 0, "no frame found the NIC without a buffer");
    h.close();
    finish(sim);
}
