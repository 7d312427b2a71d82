//! Tests of the rings' driver side against a `Vec` for user memory.

use super::*;
use core::cell::RefCell;
use rawnic_proto::frame_flags;
use rawnic_proto::ring::{RingSetup, wait_flags};
use std::vec;
use std::vec::Vec;
use wrap::Base;

struct Mem(RefCell<Vec<u8>>);

/// `Mem`'s ring entries: every access still checked (by the `Vec`).
#[derive(Clone, Copy)]
struct MemEntries<'a> {
    mem: &'a Mem,
    first: usize,
    mask: u32,
}

impl<const W: usize> EntryWords<W> for MemEntries<'_> {
    fn load(&self, i: u32) -> [u64; W] {
        let at = self.first + (i & self.mask) as usize * 8 * W;
        core::array::from_fn(|w| self.mem.load_u64(at + 8 * w))
    }
    fn store(&self, i: u32, words: [u64; W]) {
        let at = self.first + (i & self.mask) as usize * 8 * W;
        for (w, v) in words.into_iter().enumerate() {
            self.mem.store_u64(at + 8 * w, v);
        }
    }
}

impl SharedMem for Mem {
    type Entries<'a, const W: usize> = MemEntries<'a>;
    fn entries<const W: usize>(&self, first: usize, count: u32) -> Option<MemEntries<'_>> {
        let end = first.checked_add(count as usize * 8 * W)?;
        (count.is_power_of_two() && end <= self.0.borrow().len()).then_some(MemEntries {
            mem: self,
            first,
            mask: count - 1,
        })
    }
    fn load_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
    }
    fn store_u32(&self, off: usize, v: u32) {
        self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn load_u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.0.borrow()[off..off + 8].try_into().unwrap())
    }
    fn store_u64(&self, off: usize, v: u64) {
        self.0.borrow_mut()[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.0.borrow()[off..off + dst.len()]);
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.0.borrow_mut()[off..off + src.len()].copy_from_slice(src);
    }
}

fn setup() -> (RingLayout, Mem) {
    let s = RingSetup { frame_size: 2048, frame_count: 16, fill: 8, rx: 8, tx: 8, completion: 8 };
    let l = RingLayout::new(&s).unwrap();
    (l, Mem(RefCell::new(vec![0xEE; l.total])))
}

/// `setup`, with the user's indices at 0 (the garbage `setup` fills with
/// elsewhere), and the driver's side attached.
fn attached() -> (RingLayout, Mem, RingState) {
    let (l, m) = setup();
    for off in [l.fill.producer(), l.rx.consumer(), l.tx.producer(), l.completion.consumer()] {
        m.store_u32(off, 0);
    }
    let s = RingState::new(l);
    s.announce(&m);
    (l, m, s)
}

fn frame(l: &RingLayout, i: u64) -> u64 {
    l.frames as u64 + i * 2048
}

/// The user posts `addrs` on the fill ring.
fn fill(l: &RingLayout, m: &Mem, addrs: &[u64]) {
    let mut p = m.load_u32(l.fill.producer());
    for a in addrs {
        m.store_u64(l.fill.entry_at(p), *a);
        p = p.wrapping_add(1);
    }
    m.store_u32(l.fill.producer(), p);
}

fn tx(l: &RingLayout, m: &Mem, descs: &[TxDesc]) {
    let mut p = m.load_u32(l.tx.producer());
    for d in descs {
        m.write(l.tx.entry_at(p), &d.to_bytes());
        p = p.wrapping_add(1);
    }
    m.store_u32(l.tx.producer(), p);
}

proptest::proptest! {
    /// One `RxRun` over many frames (which keeps the room and the fill
    /// entries it read between frames) leaves the state, the counters
    /// and the shared memory exactly as one `rx_frame` per frame does,
    /// whatever the user posted (garbage fill entries, a producer index
    /// out of range, a consumer that lags). What a run writes back is
    /// pinned by the tests of `rx_frame` below. From any base (the
    /// indices across their wrap), each leaves what it does from 0.
    #[test]
    fn a_run_of_frames_is_the_frames_one_by_one(
        entries in proptest::collection::vec(0u64..40, 0..24),
        garbage_prod in proptest::bool::ANY,
        rx_cons in proptest::prop_oneof![proptest::strategy::Just(0u32), 0u32..12],
        frames in 0usize..20,
        b in wrap::base(),
    ) {
        let (l, _) = setup();
        let mk = |b: Base| {
            let m = Mem(RefCell::new(vec![0xEE; l.total]));
            // The user's indices start at the base (the rest of the
            // memory is garbage).
            wrap::user_at(&l, &m, b);
            let st = wrap::state_at(l, b);
            st.announce(&m);
            // Entries: frame starts, and (odd values) addresses inside frames.
            let addrs: Vec<u64> = entries.iter().map(|&e| frame(&l, e / 2) + (e % 2) * 7).collect();
            fill(&l, &m, &addrs[..addrs.len().min(8)]);
            if garbage_prod {
                m.store_u32(l.fill.producer(), b.fill(1000));
            }
            m.store_u32(l.rx.consumer(), b.rx(rx_cons));
            (st, m)
        };
        let desc = |i: usize| RxDesc { origlen: 60 + i as u32, timestamp_ns: i as u64, flags: 1, ..RxDesc::default() };
        let one_by_one = |b: Base| {
            let (mut one, m1) = mk(b);
            let r1: Vec<_> = (0..frames).map(|i| one.rx_frame(&m1, desc(i), |_, _| 60)).collect();
            one.publish(&m1);
            (r1, one.counters, wrap::canon(&l, &m1, b))
        };
        let (r1, c1, b1) = one_by_one(b);
        let (mut run, m2) = mk(b);
        let r2: Vec<_> = {
            let mut r = run.rx_run(&m2);
            (0..frames).map(|i| r.frame(&m2, desc(i), |_, _| 60)).collect()
        };
        run.publish(&m2);
        proptest::prop_assert_eq!(&r1, &r2);
        proptest::prop_assert_eq!(c1, run.counters);
        let b2 = wrap::canon(&l, &m2, b);
        proptest::prop_assert!(b1 == b2, "the shared memory differs");
        let (r0, c0, b0) = one_by_one(Base::ZERO);
        proptest::prop_assert_eq!(r0, r1);
        proptest::prop_assert_eq!(c0, c1);
        proptest::prop_assert!(b0 == b1, "the shared memory differs from a run from 0");
    }
}

/// A batch that fills the rx ring and then finds it still full when it
/// reads the user's consumer again drops the rest (`RX_RING_FULL`), as one
/// frame at a time does: the slots it took count against the room.
#[test]
fn a_batch_never_overfills_the_rx_ring() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let addrs: Vec<u64> = (0..12).map(|i| frame(&l, i)).collect();
        // Four frames one at a time (the rx ring has room for four more), then
        // the user posts four more frames: eight on the fill ring.
        fill(&l, &m, &addrs[..8]);
        for _ in 0..4 {
            assert_eq!(s.rx_frame(&m, RxDesc { origlen: 60, ..RxDesc::default() }, |_, _| 60), Ok(false));
        }
        fill(&l, &m, &addrs[8..]);
        let items: Vec<u32> = (0..8).collect();
        let mut dropped = Vec::new();
        {
            let mut r = s.rx_run(&m);
            let desc = |_: &u32| RxDesc { origlen: 60, ..RxDesc::default() };
            r.frames::<u32, 32>(&m, &items, u32::MAX, desc, |_, _, _| {}, |&i, why| dropped.push((i, why)));
        }
        s.publish(&m);
        let want: Vec<(u32, RxDrop)> = (4..8).map(|i| (i, RxDrop::RingFull)).collect();
        assert_eq!(dropped, want);
        assert_eq!(m.load_u32(l.rx.producer()), b.rx(8), "the ring's 8 entries, no more");
        assert_eq!(s.counters.rx_ring_full, 4);
        assert_eq!(s.counters.rx_frames, 8);
    });
}

/// A batch takes only fill entries that name one of the UMEM's frames: an
/// entry just past the last frame (where a bound off by one would write
/// past the UMEM's end) or just before the first is skipped and counted,
/// as `frame` skips it; the last frame itself is taken.
#[test]
fn a_batch_skips_fill_entries_past_the_umem_end() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let (last, past, before) = (frame(&l, 15), frame(&l, 16), frame(&l, 0).wrapping_sub(2048));
        // (The first entry is taken as `frame` takes one, reading the
        // indices; the rest as a run, with what the first read found.)
        fill(&l, &m, &[frame(&l, 1), past, last, before, frame(&l, 2)]);
        let items: Vec<u32> = (0..4).collect();
        let (mut copied, mut dropped) = (Vec::new(), Vec::new());
        {
            let mut r = s.rx_run(&m);
            let desc = |_: &u32| RxDesc { origlen: 60, ..RxDesc::default() };
            r.frames::<u32, 32>(
                &m,
                &items,
                u32::MAX,
                desc,
                |&i, off, _| copied.push((i, off as u64)),
                |&i, why| dropped.push((i, why)),
            );
        }
        s.publish(&m);
        assert_eq!(copied, [(0, frame(&l, 1)), (1, last), (2, frame(&l, 2))]);
        assert_eq!(dropped, [(3, RxDrop::FillEmpty)]);
        assert_eq!(s.counters.fill_invalid, 2);
        assert_eq!(s.counters.rx_frames, 3);
    });
}

proptest::proptest! {
    /// `RxRun::frames` over batches (with runs of the one-frame path
    /// between them) leaves the state, the counters, the results and the
    /// shared memory exactly as `frame` for each frame does, whatever the
    /// user posted (garbage fill entries, a producer index out of range, a
    /// consumer that lags, a user who posts more and takes some meanwhile);
    /// from any base (the indices across their wrap), what it does from 0.
    #[test]
    fn a_batch_of_frames_is_the_frames_one_by_one(
        entries in proptest::collection::vec(0u64..40, 0..24),
        garbage_prod in proptest::bool::weighted(0.1),
        rx_cons in proptest::prop_oneof![proptest::strategy::Just(0u32), 0u32..12],
        lens in proptest::collection::vec(14u32..3000, 0..24),
        cuts in proptest::collection::vec(0usize..24, 0..4),
        keep in proptest::sample::select(std::vec![u32::MAX, 60, 2048, 100]),
        more in 0usize..8,
        consume in 0u32..10,
        b in wrap::base(),
    ) {
        // A fill ring larger than the rx ring: the rx ring fills while
        // frames remain to take.
        let l = RingLayout::new(&RingSetup { frame_size: 2048, frame_count: 32, fill: 32, rx: 8, tx: 8, completion: 8 })
            .unwrap();
        // Entries: frame starts, and (one in eight) addresses inside frames.
        let addrs: Vec<u64> = entries.iter().map(|&e| frame(&l, e / 2) + u64::from(e % 8 == 1) * 7).collect();
        let mk = |b: Base| {
            let m = Mem(RefCell::new(vec![0xEE; l.total]));
            // The user's indices start at the base (the rest of the
            // memory is garbage).
            wrap::user_at(&l, &m, b);
            let st = wrap::state_at(l, b);
            st.announce(&m);
            fill(&l, &m, &addrs[..addrs.len().min(8)]);
            if garbage_prod {
                m.store_u32(l.fill.producer(), b.fill(1000));
            }
            m.store_u32(l.rx.consumer(), b.rx(rx_cons));
            (st, m)
        };
        let desc = |i: usize| RxDesc {
            origlen: lens[i],
            timestamp_ns: 1000 + i as u64,
            flags: (i % 3) as u16,
            tci: i as u16,
            ..RxDesc::default()
        };
        let bytes = |i: usize| std::vec![i as u8 + 1; lens[i] as usize];
        // Where batches end: `cuts` (the rest one by one, then a batch).
        let mut ends: Vec<usize> = cuts.iter().map(|&c| c.min(lens.len())).collect();
        ends.sort();
        let one_by_one = |b: Base| {
        let (mut one, m1) = mk(b);
        let mut r1 = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            if i == more {
                // The user posts the rest meanwhile.
                fill(&l, &m1, &addrs[addrs.len().min(8)..]);
                m1.store_u32(l.rx.consumer(), b.rx(rx_cons.wrapping_add(consume)));
            }
            let k = keep.min(2048) as usize;
            let r = one.rx_frame(&m1, desc(i), |off, cap| {
                let n = (len as usize).min(k).min(cap);
                m1.write(off, &bytes(i)[..n]);
                n
            });
            r1.push(r);
        }
        one.publish(&m1);
        (r1, one.counters, wrap::canon(&l, &m1, b))
        };
        let (r1, c1, b1) = one_by_one(b);
        let (mut run, m2) = mk(b);
        let mut r2 = std::vec![None; lens.len()];
        {
            let mut r = run.rx_run(&m2);
            let mut i = 0;
            let mut cut_total = 0;
            let batch = |r: &mut RxRun<'_, '_, Mem>, from: usize, to: usize, r2: &mut Vec<Option<Result<bool, RxDrop>>>| {
                let items: Vec<usize> = (from..to).collect();
                for &j in &items {
                    r2[j] = Some(Ok(false));
                }
                let cut = r.frames::<usize, 32>(
                    &m2,
                    &items,
                    keep,
                    |&j| desc(j),
                    |&j, off, len| {
                        assert_eq!(len, lens[j].min(keep).min(2048), "the descriptor's length");
                        m2.write(off, &bytes(j)[..len as usize])
                    },
                    |&j, why| r2[j] = Some(Err(why)),
                );
                for &j in &items {
                    if r2[j] == Some(Ok(false)) && lens[j] > keep.min(2048) {
                        r2[j] = Some(Ok(true));
                    }
                }
                cut
            };
            for &end in &ends {
                // One by one up to where a batch begins, halfway to `end`.
                let mid = i + (end.saturating_sub(i)) / 2;
                while i < mid {
                    if i == more {
                        fill(&l, &m2, &addrs[addrs.len().min(8)..]);
                m2.store_u32(l.rx.consumer(), b.rx(rx_cons.wrapping_add(consume)));
                    }
                    let k = keep.min(2048) as usize;
                    r2[i] = Some(r.frame(&m2, desc(i), |off, cap| {
                        let n = (lens[i] as usize).min(k).min(cap);
                        m2.write(off, &bytes(i)[..n]);
                        n
                    }));
                    i += 1;
                }
                // A batch may not straddle `more` (the user posts between
                // frames, not within a batch).
                let to = if i <= more && more < end { more.max(i) } else { end.max(i) };
                if i == more && i < to {
                    fill(&l, &m2, &addrs[addrs.len().min(8)..]);
                m2.store_u32(l.rx.consumer(), b.rx(rx_cons.wrapping_add(consume)));
                }
                cut_total += batch(&mut r, i, to, &mut r2);
                i = to;
            }
            while i < lens.len() {
                let to = if i <= more && more < lens.len() && i < more { more } else { lens.len() };
                if i == more {
                    fill(&l, &m2, &addrs[addrs.len().min(8)..]);
                m2.store_u32(l.rx.consumer(), b.rx(rx_cons.wrapping_add(consume)));
                }
                cut_total += batch(&mut r, i, to, &mut r2);
                i = to;
            }
            let _ = cut_total;
        }
        run.publish(&m2);
        let r2: Vec<_> = r2.into_iter().map(|x| x.unwrap()).collect();
        proptest::prop_assert_eq!(&r1, &r2);
        proptest::prop_assert_eq!(c1, run.counters);
        let b2 = wrap::canon(&l, &m2, b);
        proptest::prop_assert!(b1 == b2, "the shared memory differs");
        // From any base, what a run from 0 leaves.
        let (r0, c0, b0) = one_by_one(Base::ZERO);
        proptest::prop_assert_eq!(r0, r1);
        proptest::prop_assert_eq!(c0, c1);
        proptest::prop_assert!(b0 == b1, "the shared memory differs from a run from 0");
    }
}

proptest::proptest! {
    /// A kick's `TxRun` and a completion's `CompRun` (which keep the
    /// rings' indices and counts in locals while they last) leave the
    /// state, the counters and the shared memory exactly as one call per
    /// frame does (`tx_next`, `tx_refuse`, `tx_complete`), whatever the
    /// user posted (descriptors outside any frame, a producer out of
    /// range), whichever frames the caller refuses after the logic took
    /// them, and in whatever order and with whatever outcome they come back.
    /// (A call per frame is a run of one: what a run writes back is pinned
    /// by `tx_takes_valid_frames_completes_bad_ones_and_reserves_completions`.)
    /// From any base (the indices across their wrap), each leaves what it
    /// does from 0.
    #[test]
    fn a_run_of_sends_and_completions_is_the_frames_one_by_one(
        descs in proptest::collection::vec((0u64..40, 0u32..1600, proptest::sample::select(std::vec![0u32, 0, 0, 0, 1, 0x8000_0000])), 0..8),
        garbage_prod in proptest::bool::ANY,
        comp_cons in 0u32..12,
        refuse in proptest::collection::vec(proptest::bool::weighted(0.2), 8),
        outcome in proptest::collection::vec(proptest::bool::weighted(0.8), 8),
        order in proptest::strategy::Strategy::prop_shuffle(proptest::sample::subsequence((0usize..8).collect::<Vec<_>>(), 0..=8)),
        b in wrap::base(),
    ) {
        let (l, _) = setup();
        let mk = |b: Base| {
            let m = Mem(RefCell::new(vec![0xEE; l.total]));
            wrap::user_at(&l, &m, b);
            let st = wrap::state_at(l, b);
            st.announce(&m);
            // Addresses: frame starts, and (odd values) places inside frames.
            let ds: Vec<TxDesc> =
                descs.iter().map(|&(e, len, flags)| TxDesc { addr: frame(&l, e / 2) + (e % 2) * 2000, len, flags }).collect();
            tx(&l, &m, &ds);
            if garbage_prod {
                m.store_u32(l.tx.producer(), b.tx(1000));
            }
            m.store_u32(l.completion.consumer(), b.comp(comp_cons));
            (st, m)
        };
        // Frame by frame.
        let one_by_one = |b: Base| {
        let (mut one, m1) = mk(b);
        let n = one.tx_refresh(&one.tx_side(&m1), 64);
        let mut taken1 = Vec::new();
        for &refused in refuse.iter().take(n as usize) {
            let side = one.tx_side(&m1);
            match one.tx_next(&side, 1518) {
                TxNext::Frame(d) if refused => one.tx_refuse(&side, d.addr),
                TxNext::Frame(d) => taken1.push(d.addr),
                TxNext::Invalid => {}
                TxNext::Done => break,
            }
        }
        for &k in order.iter().filter(|&&k| k < taken1.len()) {
            one.tx_complete(&one.tx_side(&m1), taken1[k], outcome[k]);
        }
        one.publish(&m1);
        (n, taken1, one.counters, one.tx_outstanding(), wrap::canon(&l, &m1, b))
        };
        let (n, taken1, c1, out1, b1) = one_by_one(b);
        // As runs.
        let (mut run, m2) = mk(b);
        let n2 = run.tx_refresh(&run.tx_side(&m2), 64);
        let mut taken2 = Vec::new();
        {
            let side = run.tx_side(&m2);
            let mut r = run.tx_run();
            for &refused in refuse.iter().take(n2 as usize) {
                match r.next(&side, 1518) {
                    TxNext::Frame(d) if refused => r.refuse(&side, d.addr),
                    TxNext::Frame(d) => taken2.push(d.addr),
                    TxNext::Invalid => {}
                    TxNext::Done => break,
                }
            }
        }
        {
            let side = run.tx_side(&m2);
            let mut c = run.comp_run();
            for &k in order.iter().filter(|&&k| k < taken2.len()) {
                c.complete(&side, taken2[k], outcome[k]);
            }
        }
        run.publish(&m2);
        // As a kick does: `take`, with the caller's check of where each
        // frame lies (the layout's, as the driver's filler makes it
        // against its MDLs) and the same refusals.
        let (mut kick, m3) = mk(b);
        let n3 = kick.tx_refresh(&kick.tx_side(&m3), 64);
        let mut taken3 = Vec::new();
        let mut called = Vec::new();
        let (k3, invalid3) = {
            let side = kick.tx_side(&m3);
            let mut r = kick.tx_run();
            let mut pos = 0usize;
            r.take(&side, n3, 1518, |d, len, index, within| {
                assert_eq!(len, d.len as usize);
                // The position of this descriptor: the next one whose flags
                // and length pass (the only ones `take` hands on).
                while !((14..=1518).contains(&descs[pos].1) && descs[pos].2 == 0) {
                    pos += 1;
                }
                called.push(pos);
                let lies = index < u64::from(l.frame_count) && within + u64::from(d.len) <= u64::from(l.frame_size);
                let ok = lies && !refuse[pos];
                pos += 1;
                if ok {
                    taken3.push(d.addr);
                }
                ok
            })
        };
        {
            let side = kick.tx_side(&m3);
            let mut c = kick.comp_run();
            for &k in order.iter().filter(|&&k| k < taken3.len()) {
                c.complete(&side, taken3[k], outcome[k]);
            }
        }
        kick.publish(&m3);
        proptest::prop_assert_eq!(n, n2);
        proptest::prop_assert_eq!(n, n3);
        proptest::prop_assert_eq!(k3, n3);
        proptest::prop_assert!(called.iter().all(|&p| p < n3 as usize));
        proptest::prop_assert_eq!(&taken1, &taken2);
        proptest::prop_assert_eq!(&taken1, &taken3);
        proptest::prop_assert_eq!(c1, run.counters);
        proptest::prop_assert_eq!(c1, kick.counters);
        proptest::prop_assert_eq!(u64::from(invalid3), kick.counters.tx_invalid);
        proptest::prop_assert_eq!(out1, run.tx_outstanding());
        proptest::prop_assert_eq!(out1, kick.tx_outstanding());
        let (b2, mut b3) = (wrap::canon(&l, &m2, b), wrap::canon(&l, &m3, b));
        proptest::prop_assert!(b1 == b2, "the shared memory differs");
        // A take writes the completion entries of the frames it takes
        // ahead, into the entries reserved for them: past the published
        // index, which the user does not read. Those of frames still out
        // may differ; nothing else may.
        let (_, published) = kick.producers();
        for i in 0..kick.tx_outstanding() {
            let at = l.completion.entry_at(published.wrapping_sub(b.comp(0)).wrapping_add(i));
            b3[at..at + 8].copy_from_slice(&b1[at..at + 8]);
        }
        proptest::prop_assert!(b1 == b3, "the shared memory differs after a take");
        // From any base (the indices across their wrap), what a run
        // from 0 leaves.
        let (n0, taken0, c0, out0, b0) = one_by_one(Base::ZERO);
        proptest::prop_assert_eq!((n0, taken0, c0, out0), (n, taken1, c1, out1));
        proptest::prop_assert!(b0 == b1, "the shared memory differs from a run from 0");
    }
}

proptest::proptest! {
    /// The shift-and-mask checks agree with the layout's reference ones.
    #[test]
    fn fast_checks_agree_with_the_layout(
        big in proptest::bool::ANY,
        count in 1u32..300,
        k in 0u64..320,
        off in proptest::sample::select(std::vec![0u64, 0, 0, 1, 60, 2047, 2048, 4095]),
        addr in proptest::num::u64::ANY,
        near in proptest::bool::ANY,
        len in 0u32..5000,
        edge in 0usize..4,
        flags in proptest::sample::select(std::vec![0u32, 0, 0, 1, 0x8000_0000]),
    ) {
        let s = RingSetup { frame_size: if big { 4096 } else { 2048 }, frame_count: count, fill: 8, rx: 8, tx: 8, completion: 8 };
        let l = RingLayout::new(&s).unwrap();
        let m = Mem(RefCell::new(vec![0; l.total]));
        let mut st = RingState::new(l);
        st.announce(&m);
        let a = if near { (l.frames as u64 + k * u64::from(s.frame_size) + off).wrapping_sub(u64::from(big)) } else { addr };
        proptest::prop_assert_eq!(st.rx_run(&m).is_frame_start(a), l.is_frame_start(a));
        // Lengths at the edges: to the frame's end, one past it.
        let to_end = (u64::from(s.frame_size) - (off % u64::from(s.frame_size))) as u32;
        let len = [len, to_end, to_end + 1, 14][edge];
        let d = TxDesc { addr: a, len, flags };
        for max in [1518, 4096] {
            proptest::prop_assert_eq!(st.tx_run().ok(&d, max), l.check_tx(&d, max).is_ok());
        }
    }
}

#[test]
fn attach_publishes_zero_indices_and_the_magic() {
    let (l, m) = setup();
    let before = m.0.borrow().clone();
    let s = RingState::new(l);
    // Nothing before the attach is committed: the memory is the user's
    // until then (and, when two attaches on one handle race naming the same
    // memory, the winner's rings).
    assert!(*m.0.borrow() == before);
    s.announce(&m);
    assert_eq!(m.load_u32(control::MAGIC), RING_MAGIC);
    assert_eq!(m.load_u32(l.rx.producer()), 0);
    assert_eq!(m.load_u64(control::RX_FRAMES), 0);
}

#[test]
fn frames_go_where_the_fill_ring_says_and_drops_are_counted() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        assert_eq!(s.rx_frame(&m, RxDesc::default(), |_, _| 60), Err(RxDrop::FillEmpty));
        // A bad entry (not a frame start) is skipped.
        fill(&l, &m, &[frame(&l, 3) + 1, frame(&l, 3), frame(&l, 5)]);
        let mut seen = Vec::new();
        for (n, cut) in [(60usize, false), (4000, true)] {
            let d = RxDesc { origlen: n as u32, flags: 0x40, ..Default::default() };
            let placed = s.rx_frame(&m, d, |off, cap| {
                seen.push((off, cap));
                n.min(cap)
            });
            assert_eq!(placed, Ok(cut), "cut to the frame size: {cut}");
        }
        assert_eq!(seen, [(frame(&l, 3) as usize, 2048), (frame(&l, 5) as usize, 2048)]);
        assert_eq!(s.counters.fill_invalid, 1);
        assert_eq!(s.publish(&m), (true, false));
        assert_eq!(m.load_u32(l.rx.producer()), b.rx(2));
        assert_eq!(m.load_u32(l.fill.consumer()), b.fill(3));
        let mut raw = [0u8; RxDesc::LEN];
        m.read(l.rx.entry_at(b.rx(1)), &mut raw);
        let d = RxDesc::from_bytes(&raw);
        assert_eq!((d.addr, d.len, d.origlen, d.flags), (frame(&l, 5), 2048, 4000, 0x40 | frame_flags::TRUNCATED));
        m.read(l.rx.entry_at(b.rx(0)), &mut raw);
        assert_eq!(RxDesc::from_bytes(&raw).flags, 0x40, "a whole frame is not marked");
        assert_eq!(m.load_u64(control::FILL_INVALID), 1);
        assert_eq!(m.load_u64(control::RX_FRAMES), 2);
        assert_eq!(s.ready_flags(&m), wait_flags::RX);
        // Fill 8 more: the rx ring (8) takes 6 more, then is full.
        fill(&l, &m, &(0..8).map(|i| frame(&l, i)).collect::<Vec<_>>());
        let mut placed = 0;
        while s.rx_frame(&m, RxDesc::default(), |_, _| 60).is_ok() {
            placed += 1;
        }
        assert_eq!(placed, 6);
        assert_eq!(s.counters.rx_ring_full, 1);
        // The user consumes 4: 4 more fit.
        m.store_u32(l.rx.consumer(), b.rx(4));
        assert!(s.rx_frame(&m, RxDesc::default(), |_, _| 60).is_ok());
    });
}

/// `Mem`, noting the offset of every word written outside a ring's
/// entries.
struct Logged<'a>(&'a Mem, RefCell<Vec<usize>>);

impl SharedMem for Logged<'_> {
    type Entries<'b, const W: usize>
        = MemEntries<'b>
    where
        Self: 'b;
    fn entries<const W: usize>(&self, first: usize, count: u32) -> Option<MemEntries<'_>> {
        self.0.entries::<W>(first, count)
    }
    fn load_u32(&self, off: usize) -> u32 {
        self.0.load_u32(off)
    }
    fn store_u32(&self, off: usize, v: u32) {
        self.1.borrow_mut().push(off);
        self.0.store_u32(off, v)
    }
    fn load_u64(&self, off: usize) -> u64 {
        self.0.load_u64(off)
    }
    fn store_u64(&self, off: usize, v: u64) {
        self.1.borrow_mut().push(off);
        self.0.store_u64(off, v)
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        self.0.read(off, dst)
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.0.write(off, src)
    }
}

#[test]
fn counters_are_published_before_the_entries_they_count() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        fill(&l, &m, &[frame(&l, 0), frame(&l, 1)]);
        s.rx_frame(&m, RxDesc::default(), |_, _| 60).unwrap();
        tx(&l, &m, &[TxDesc { addr: frame(&l, 2), len: 60, flags: 0 }]);
        s.tx_refresh(&s.tx_side(&m), 64);
        assert!(matches!(s.tx_next(&s.tx_side(&m), 1518), TxNext::Frame(_)));
        s.tx_complete(&s.tx_side(&m), frame(&l, 2), true);
        let logged = Logged(&m, RefCell::new(Vec::new()));
        assert_eq!(s.publish(&logged), (true, true));
        let order = logged.1.into_inner();
        let at = |off: usize| order.iter().position(|&o| o == off).expect("written");
        let last_counter = [control::RX_FRAMES, control::TX_FRAMES, control::TX_ERRORS, control::TX_INVALID]
            .into_iter()
            .map(at)
            .max()
            .unwrap();
        // A user who reads a producer (acquiring what its store released)
        // and then the counters finds every frame it can see counted.
        assert!(last_counter < at(l.rx.producer()), "{order:?}");
        assert!(last_counter < at(l.completion.producer()), "{order:?}");
        assert_eq!(m.load_u64(control::RX_FRAMES), 1);
        assert_eq!(m.load_u64(control::TX_FRAMES), 1);
    });
}

#[test]
fn garbage_indices_are_not_believed() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        m.store_u32(l.fill.producer(), b.fill(1000));
        assert_eq!(s.rx_frame(&m, RxDesc::default(), |_, _| 60), Err(RxDrop::FillEmpty));
        assert_eq!(s.counters.bad_index, 1);
        m.store_u32(l.fill.producer(), b.fill(1));
        m.store_u64(l.fill.entry_at(b.fill(0)), frame(&l, 0));
        // Room already seen stays good (the user's index only moves
        // forward); a fresh look at a garbage consumer finds none.
        m.store_u32(l.rx.consumer(), b.rx(0x8000_0000));
        let mut fresh = wrap::state_at(l, b);
        fresh.announce(&m);
        assert_eq!(fresh.rx_frame(&m, RxDesc::default(), |_, _| 60), Err(RxDrop::RingFull));
        assert_eq!(fresh.counters.bad_index, 1);
        m.store_u32(l.tx.producer(), b.tx(u32::MAX));
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 0);
        m.store_u32(l.tx.producer(), b.tx(0));
        m.store_u32(l.completion.consumer(), b.comp(77));
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 0);
        assert_eq!(s.counters.bad_index, 3);
    });
}

mod ahead;
mod flip;
mod model;
mod place;
mod tx;
mod wrap;
