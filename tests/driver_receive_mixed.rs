//! Mixed receive indications against the real rawnic.sys in ndisim: one
//! call of the receive handler chaining NBLs NDIS looped back from another
//! protocol's send (`NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`) among NBLs from the
//! wire, and coalesced units (RSC, URO) among plain NBLs, some of several
//! NET_BUFFERs. Each handle must get exactly its frames, in order, with
//! the right flags: `OUTBOUND | LOOPBACK` for the loopbacks (only to
//! handles that take this host's sends), `COALESCED` with the NBL's counts
//! for the coalesced units from the wire (never for a loopback, whose
//! coalescing slots carry send info), cut by a snap length or a UMEM frame
//! where those apply; the counts must add up and every NBL go back, with
//! NDIS_RECEIVE_FLAGS_RESOURCES and without, and when the miniport runs
//! low on receive buffers while frames are retained.

use ndisim::{AdapterId, Coalesce, Handle, InjectOpts, NbLayout, Sim};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// NBL `k`'s NET_BUFFERs, in turn: the coalesced ones (`COALESCES`) hold
/// one, the plain ones one or several (35 crosses the driver's 32-frame
/// walk).
const SIZES: [usize; 8] = [1, 3, 1, 35, 1, 2, 1, 4];
/// NBL `k`'s coalescing, in turn (an RSC info of 0 segments is no RSC;
/// a URO info without a count is URO).
const COALESCES: [Option<Coalesce>; 8] = [
    Some(Coalesce::Rsc { segs: 14, dup_acks: 1 }),
    None,
    Some(Coalesce::Uro { segs: 6, seg_size: 1472 }),
    None,
    Some(Coalesce::Rsc { segs: 0, dup_acks: 2 }),
    None,
    Some(Coalesce::Uro { segs: 0, seg_size: 1200 }),
    None,
];
/// NBL `k` was looped back, in turn (5 against 8: every NBL shape meets
/// both).
const LOOPBACKS: [bool; 5] = [false, true, false, false, true];

/// Plain frames' lengths in turn: a bare header, short (copied), long
/// (retained while no read waits), the MTU's.
const PLAIN_LENS: [usize; 5] = [14, 60, 300, 1514, 700];
/// Coalesced units' lengths in turn: past the MTU, past a UMEM frame.
const UNIT_LENS: [usize; 3] = [4_000, 9_000, 20_000];

const SNAPLEN: u32 = 100;
/// The rings' UMEM: frames of 4 KiB (the largest), room for a whole
/// injection.
const UMEM: RingSetup = RingSetup { frame_size: 4096, frame_count: 256, fill: 256, rx: 256, tx: 32, completion: 32 };

/// What a reader must find for one frame.
#[derive(Debug, Clone)]
struct Want {
    data: Vec<u8>,
    /// NDIS looped it back.
    loopback: bool,
    /// The record's coalescing: (segs, seg_size).
    coalesced: Option<(u16, u16)>,
}

impl Want {
    fn flags(&self) -> u16 {
        let mut f = 0;
        if self.loopback {
            f |= frame_flags::OUTBOUND | frame_flags::LOOPBACK;
        }
        if self.coalesced.is_some() {
            f |= frame_flags::COALESCED;
        }
        f
    }
}

/// The options of every injection here: `nbls` NBLs an indication, per-NBL
/// sizes, loopback and coalescing mixed in each.
fn opts(nbls: usize, resources: bool, dispatch: bool) -> InjectOpts {
    InjectOpts {
        nbls_per_indication: nbls,
        nbl_sizes: SIZES.to_vec(),
        coalesces: COALESCES.to_vec(),
        loopbacks: LOOPBACKS.to_vec(),
        resources,
        dispatch,
        // Frames laid out as NICs do, whole or across MDLs: a loopback's
        // header is copied, never read in place, whatever its layout.
        layouts: shaped_layouts().into_iter().chain([NbLayout::default()]).collect(),
        ..InjectOpts::default()
    }
}

/// `n_nbls` NBLs' frames as `o` groups them, and what each must read as;
/// the plain ones `plain` bytes long in turn.
fn frames(o: &InjectOpts, n_nbls: usize, seed: u32, plain: &[usize]) -> Vec<Want> {
    let mut out = Vec::new();
    for k in 0..n_nbls {
        let c = o.coalesce_of(k);
        let loopback = o.loopback_of(k);
        for _ in 0..o.nbs_of(k) {
            let i = out.len();
            let len = if c.is_some() { UNIT_LENS[k % UNIT_LENS.len()] } else { plain[i % plain.len()] };
            let dst = if i % 3 == 0 { PEER } else { BROADCAST };
            let mut data = frame(dst, PEER, 0x0800, len, seed * 1000 + i as u32);
            // The last two bytes say which frame this is.
            let at = data.len() - 2;
            data[at..].copy_from_slice(&(i as u16).to_be_bytes());
            let coalesced = match c {
                _ if loopback => None,
                Some(Coalesce::Rsc { segs, .. }) if segs != 0 => Some((segs, 0)),
                Some(Coalesce::Uro { segs, seg_size }) => Some((segs, seg_size)),
                _ => None,
            };
            out.push(Want { data, loopback, coalesced });
        }
    }
    out
}

fn inject(sim: &Sim, want: &[Want], o: &InjectOpts) {
    let refs: Vec<&[u8]> = want.iter().map(|w| &w.data[..]).collect();
    assert_eq!(sim.inject(AdapterId(0), &refs, o).unwrap(), want.len());
}

/// A promiscuous ReadFile handle on binding 0 cutting at `snaplen` (0: not),
/// taking this host's sends or not.
fn reader(sim: &Sim, snaplen: u32, local: LocalSends) -> Handle {
    let h = sim.open().expect("open the control device");
    let name = list(&h)[0].name.clone();
    let req = open_request_full(&name, filter::PROMISCUOUS, &[], (0, 0, snaplen), local, false);
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
    assert_eq!(r.status, 0, "OPEN: {:?}", status(r.status));
    h
}

/// Every record queued on `h`, `want` of them (several reads if need be).
fn read_all(h: &Handle, want: usize) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut got = Vec::new();
    while got.len() < want {
        let r = read(h, 4 << 20);
        assert!(!r.is_empty());
        got.extend(r);
    }
    assert_eq!(got.len(), want);
    got
}

/// The frames a handle must get: all, or those from the wire.
fn for_handle(want: &[Want], local: LocalSends) -> Vec<Want> {
    want.iter().filter(|w| local != LocalSends::None || !w.loopback).cloned().collect()
}

/// Records against what a handle cutting at `cap` (0: not) must get.
fn check_records(got: &[(FrameHeader, Vec<u8>)], want: &[Want], cap: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: each frame once");
    for (i, ((h, d), w)) in got.iter().zip(want).enumerate() {
        let keep = if cap == 0 { w.data.len() } else { w.data.len().min(cap) };
        assert!(d[..] == w.data[..keep], "{what}: frame {i} ({} bytes) as indicated", w.data.len());
        assert_eq!((h.caplen as usize, h.origlen as usize), (keep, w.data.len()), "{what}: frame {i}");
        let cut = if keep < w.data.len() { frame_flags::TRUNCATED } else { 0 };
        assert_eq!(h.flags, w.flags() | cut, "{what}: frame {i}'s flags ({w:?})");
        let (segs, seg_size) = w.coalesced.unwrap_or((0, 0));
        assert_eq!((h.segs, h.seg_size, h.tci), (segs, seg_size, 0), "{what}: frame {i}'s counts");
    }
}

/// Rx descriptors against what a ring handle must get.
fn check_ring(got: &[(RxDesc, Vec<u8>)], want: &[Want], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: each frame once");
    for (i, ((r, d), w)) in got.iter().zip(want).enumerate() {
        let keep = w.data.len().min(UMEM.frame_size as usize);
        assert!(d[..] == w.data[..keep], "{what}: frame {i} ({} bytes) as indicated", w.data.len());
        assert_eq!((r.len as usize, r.origlen as usize), (keep, w.data.len()), "{what}: frame {i}");
        let cut = if keep < w.data.len() { frame_flags::TRUNCATED } else { 0 };
        assert_eq!(r.flags, w.flags() | cut, "{what}: frame {i}'s flags ({w:?})");
        let (segs, seg_size) = w.coalesced.unwrap_or((0, 0));
        assert_eq!((r.segs, r.seg_size, r.tci), (segs, seg_size, 0), "{what}: frame {i}'s counts");
    }
}

/// Every NBL is back with the miniport and none is kept (`retained` waits
/// for the returns a read owes).
fn all_back(sim: &Sim, what: &str) {
    assert_eq!(retained(sim, AdapterId(0), 0), 0, "{what}: NBLs still retained");
    assert_eq!(sim.receive_buffers(AdapterId(0)).0, 0, "{what}: receive buffers not given back");
}

/// Frames and bytes of `want`, and how many a cut at `cap` shortens.
fn sums(want: &[Want], cap: usize) -> (u64, u64, u64) {
    let bytes = want.iter().map(|w| w.data.len() as u64).sum();
    let cut = if cap == 0 { 0 } else { want.iter().filter(|w| w.data.len() > cap).count() as u64 };
    (want.len() as u64, bytes, cut)
}

/// The injections each test makes: indications of one, three and forty
/// NBLs, with NDIS_RECEIVE_FLAGS_RESOURCES and without, at DISPATCH_LEVEL
/// and PASSIVE_LEVEL.
const ROUNDS: [(usize, bool, bool); 6] =
    [(1, false, true), (3, false, true), (40, false, false), (1, true, true), (3, true, false), (40, true, true)];

/// NBLs an injection makes: five turns of the sizes.
const NBLS: usize = 40;

/// ReadFile handles (one taking every frame, one only the wire's, one
/// cutting at a snap length) and a ring handle, all on one binding (the
/// chunked path): each gets its frames, in order, flagged and counted,
/// and every NBL goes back.
#[test]
fn mixed_indications_reach_each_handle_as_its_own() {
    let sim = start(&["null@uro=on"]);
    let all = reader(&sim, 0, LocalSends::Others);
    let wire = reader(&sim, 0, LocalSends::None);
    let snap = reader(&sim, SNAPLEN, LocalSends::Others);
    let ring = reader(&sim, 0, LocalSends::Others);
    let u = User::attach(&ring, UMEM);
    let handles: [(&Handle, LocalSends, usize); 3] =
        [(&all, LocalSends::Others, 0), (&wire, LocalSends::None, 0), (&snap, LocalSends::Others, SNAPLEN as usize)];
    let mut expect = [(0u64, 0u64, 0u64); 4];
    let mut binding = (0u64, 0u64);
    for (round, &(nbls, resources, dispatch)) in ROUNDS.iter().enumerate() {
        let o = opts(nbls, resources, dispatch);
        let want = frames(&o, NBLS, round as u32, &PLAIN_LENS);
        let what = format!("round {round} ({nbls} NBLs an indication, resources {resources})");
        u.fill((0..want.len() as u64).map(|i| u.frame(i)));
        inject(&sim, &want, &o);
        if resources {
            all_back(&sim, &what);
        }
        for (i, &(h, local, cap)) in handles.iter().enumerate() {
            let mine = for_handle(&want, local);
            check_records(&read_all(h, mine.len()), &mine, cap, &format!("{what}, handle {i}"));
            let (f, b, c) = sums(&mine, cap);
            expect[i] = (expect[i].0 + f, expect[i].1 + b, expect[i].2 + c);
        }
        check_ring(&u.rx(), &want, &format!("{what}, rings"));
        let (f, b, c) = sums(&want, UMEM.frame_size as usize);
        expect[3] = (expect[3].0 + f, expect[3].1 + b, expect[3].2 + c);
        binding = (binding.0 + f, binding.1 + b);
        all_back(&sim, &what);
        for (i, h) in [&all, &wire, &snap, &ring].into_iter().enumerate() {
            let s = stats(h);
            let got = (s.handle.rx_frames, s.handle.rx_bytes, s.handle.rx_truncated);
            assert_eq!(got, expect[i], "{what}: handle {i}'s counts");
            assert_eq!((s.handle.rx_queue_drops, s.queued_frames), (0, 0), "{what}: handle {i}");
            assert_eq!((s.binding.rx_frames, s.binding.rx_bytes), binding, "{what}: the binding's counts");
        }
        assert_eq!(u.counter(control::RX_FRAMES), expect[3].0, "{what}: the control block");
    }
    assert_eq!(u.counter(control::RX_FILL_EMPTY) + u.counter(control::RX_RING_FULL), 0);
    detach(&ring, u);
    for h in [all, wire, snap, ring] {
        h.close();
    }
    finish(sim);
}

/// A ring handle alone on its binding (the one-pass path), taking this
/// host's sends or only the wire's: the same frames, flags and counts.
#[test]
fn mixed_indications_reach_a_sole_ring_handle() {
    for local in [LocalSends::Others, LocalSends::None] {
        let sim = start(&["null@uro=on"]);
        let h = reader(&sim, 0, local);
        let u = User::attach(&h, UMEM);
        let mut expect = (0u64, 0u64, 0u64);
        for (round, &(nbls, resources, dispatch)) in ROUNDS.iter().enumerate() {
            let o = opts(nbls, resources, dispatch);
            let want = frames(&o, NBLS, round as u32, &PLAIN_LENS);
            let what = format!("{local:?}, round {round} ({nbls} NBLs an indication, resources {resources})");
            let mine = for_handle(&want, local);
            // As many frames as it will take: the fill ring holds no more.
            u.fill((0..mine.len() as u64).map(|i| u.frame(i)));
            inject(&sim, &want, &o);
            check_ring(&u.rx(), &mine, &what);
            all_back(&sim, &what);
            let (f, b, c) = sums(&mine, UMEM.frame_size as usize);
            expect = (expect.0 + f, expect.1 + b, expect.2 + c);
            let s = stats(&h);
            assert_eq!((s.handle.rx_frames, s.handle.rx_bytes, s.handle.rx_truncated), expect, "{what}");
            assert_eq!(s.handle.rx_queue_drops, 0, "{what}");
        }
        detach(&h, u);
        h.close();
        finish(sim);
    }
}

/// Mixed indications on a miniport with few receive buffers: retained
/// frames (long ones, no read waiting) are copied and their NBLs given
/// back when an indication says the miniport is low, which itself carries
/// NDIS_RECEIVE_FLAGS_RESOURCES; the readers still get each frame once, in
/// order, with its flags.
#[test]
fn mixed_indications_while_the_miniport_runs_low() {
    // Sixteen buffers: an indication that leaves fewer than four free says
    // the miniport is low.
    let sim = start(&["null@uro=on,rx-buffers=16"]);
    let all = reader(&sim, 0, LocalSends::Others);
    let wire = reader(&sim, 0, LocalSends::None);
    let mut want_all = Vec::new();
    // Indications of three NBLs of one long frame each: the two from the
    // wire retained (fewer than the 16 a reader may fall behind by), the
    // looped-back one copied (a loopback is never retained), until the
    // sixth finds the miniport low (10 buffers kept and its own 3 in use).
    for round in 0..7u32 {
        let o = InjectOpts { nbl_sizes: vec![1], ..opts(3, false, round % 2 == 0) };
        let want = frames(&o, 3, 100 + round, &[300, 1514, 700]);
        inject(&sim, &want, &o);
        want_all.extend(want);
        let low = sim.nbl_stats().receive_indications_low;
        assert_eq!(low > 0, round >= 5, "round {round}: the miniport is low from the sixth indication on");
    }
    assert_eq!(sim.receive_buffers(AdapterId(0)).1, 0, "no frame found the NIC without a buffer");
    check_records(&read_all(&all, want_all.len()), &want_all, 0, "all");
    let wire_want = for_handle(&want_all, LocalSends::None);
    check_records(&read_all(&wire, wire_want.len()), &wire_want, 0, "wire");
    all_back(&sim, "read");
    all.close();
    wire.close();
    finish(sim);
}

/// Headers that cannot be read (MDLs not mapped yet, mappings refused, as
/// under low resources) in a mixed chain: promiscuous handles get each
/// frame cut to nothing but still flagged by its NBL (`LOOPBACK`,
/// `COALESCED` with its counts), and one that takes only the wire's still
/// gets no loopback: its NBL says what it is.
#[test]
fn unreadable_headers_in_a_mixed_chain() {
    let sim = start(&["null@uro=on"]);
    let all = reader(&sim, 0, LocalSends::Others);
    let wire = reader(&sim, 0, LocalSends::None);
    let o = InjectOpts { layouts: vec![NbLayout { unmapped: true, ..NbLayout::default() }], ..opts(8, false, true) };
    let want = frames(&o, 8, 7, &PLAIN_LENS);
    sim.refuse_mappings(u64::MAX);
    inject(&sim, &want, &o);
    sim.refuse_mappings(0);
    for (h, local) in [(&all, LocalSends::Others), (&wire, LocalSends::None)] {
        let mine = for_handle(&want, local);
        let got = read_all(h, mine.len());
        for (i, ((r, d), w)) in got.iter().zip(&mine).enumerate() {
            assert_eq!((r.caplen, d.len(), r.origlen as usize), (0, 0, w.data.len()), "{local:?}: frame {i}");
            assert_eq!(r.flags, w.flags() | frame_flags::TRUNCATED, "{local:?}: frame {i}'s flags ({w:?})");
            let (segs, seg_size) = w.coalesced.unwrap_or((0, 0));
            assert_eq!((r.segs, r.seg_size), (segs, seg_size), "{local:?}: frame {i}'s counts");
        }
        let s = stats(h);
        let n = mine.len() as u64;
        assert_eq!((s.handle.rx_frames, s.handle.rx_truncated, s.handle.rx_queue_drops), (n, n, 0), "{local:?}");
    }
    all_back(&sim, "read");
    all.close();
    wire.close();
    finish(sim);
}
