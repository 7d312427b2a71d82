//! Tests of the receive queue (`RxRing`): records copied or pending, read
//! in order with zero padding, cut when they do not fit, bounded in frames,
//! bytes and a shared budget, and the sources of pending records released;
//! and property tests against a queue model.

use super::*;
use proptest::prelude::*;
use std::cell::Cell;
use std::rc::Rc;
use std::vec;

/// A retained frame stand-in that counts live instances.
struct Held {
    data: Vec<u8>,
    live: Rc<Cell<usize>>,
}

impl Held {
    fn new(data: Vec<u8>, live: &Rc<Cell<usize>>) -> Self {
        live.set(live.get() + 1);
        Held { data, live: live.clone() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.live.set(self.live.get() - 1);
    }
}

impl FrameSource for Held {
    fn frame_len(&self) -> usize {
        self.data.len()
    }
    fn copy_frame(&self, offset: usize, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.data.len().saturating_sub(offset));
        dst[..n].copy_from_slice(&self.data[offset..offset + n]);
        n
    }
}

fn hdr(len: usize, ts: u64) -> FrameHeader {
    FrameHeader { caplen: len as u32, origlen: len as u32, timestamp_ns: ts, ..Default::default() }
}

fn frame(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

fn decode(buf: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let recs = rawnic_proto::FrameRecords::new_checked(buf).expect("well-formed records");
    recs.iter().map(|(h, d)| (h, d.to_vec())).collect()
}

/// Growth and compaction of a ring whose records wrap, and the exact
/// fits at its edges.
mod grow;

#[test]
fn a_record_keeps_its_coalescing_counts_pending_materialized_or_copied() {
    let live = Rc::new(Cell::new(0));
    let mut r: RxRing<Held> = RxRing::new(10, 1 << 20);
    let h = FrameHeader { flags: frame_flags::COALESCED, segs: 7, seg_size: 1200, ..hdr(300, 1) };
    assert!(r.push_pending(&h, Held::new(frame(1, 300), &live)).is_ok());
    assert!(r.push_pending(&h, Held::new(frame(2, 300), &live)).is_ok());
    assert!(r.materialize_oldest());
    r.push_with(&h, |d| Held::new(frame(3, 300), &live).copy_frame(0, d)).unwrap();
    let mut out = vec![0u8; 4096];
    let n = r.read_into(&mut out).bytes;
    let got = decode(&out[..n]);
    assert_eq!(got.iter().map(|(h, _)| (h.segs, h.seg_size)).collect::<Vec<_>>(), vec![(7, 1200); 3]);
    assert_eq!(live.get(), 0);
}

#[test]
fn copies_then_reads_in_order_with_zero_padding() {
    let mut r: RxRing<Held> = RxRing::new(100, 1 << 20);
    for i in 0..10 {
        let f = frame(i, 60 + i);
        r.push_with(&hdr(f.len(), i as u64), |d| {
            d.copy_from_slice(&f);
            f.len()
        })
        .unwrap();
    }
    let mut out = vec![0xAAu8; 4096];
    let got = r.read_into(&mut out);
    assert_eq!(got.frames, 10);
    let recs = decode(&out[..got.bytes]);
    for (i, (h, d)) in recs.iter().enumerate() {
        assert_eq!(h.timestamp_ns, i as u64);
        assert_eq!(d, &frame(i, 60 + i));
    }
    // Padding is zero, not the 0xAA that was there.
    let first_pad = FrameHeader::LEN + 60;
    assert!(out[first_pad..FrameHeader::record_len(60)].iter().all(|&b| b == 0));
    assert!(r.is_empty());
}

#[test]
fn a_fill_that_gives_less_cuts_the_record_and_says_so() {
    let mut r: RxRing<Held> = RxRing::new(16, 1 << 16);
    // 100 bytes announced, 37 given (memory that could not be mapped).
    assert_eq!(
        r.push_with(&hdr(100, 1), |d| {
            d[..37].fill(0xAB);
            37
        }),
        Ok(true)
    );
    assert_eq!(
        r.push_with(&hdr(20, 2), |d| {
            d.fill(0xCD);
            20
        }),
        Ok(false)
    );
    assert_eq!(r.bytes(), FrameHeader::record_len(37) + FrameHeader::record_len(20), "the room of what came");
    let mut out = vec![0u8; 4096];
    let got = r.read_into(&mut out);
    assert_eq!(got.frames, 2);
    let h = FrameHeader::parse_raw(&out[..FrameHeader::LEN]);
    assert_eq!((h.caplen, h.origlen, h.flags & frame_flags::TRUNCATED), (37, 100, frame_flags::TRUNCATED));
    assert!(out[FrameHeader::LEN..FrameHeader::LEN + 37].iter().all(|&b| b == 0xAB));
    let at = FrameHeader::record_len(37);
    let h2 = FrameHeader::parse_raw(&out[at..at + FrameHeader::LEN]);
    assert_eq!((h2.caplen, h2.flags & frame_flags::TRUNCATED), (20, 0));
    assert!(out[at + FrameHeader::LEN..at + FrameHeader::LEN + 20].iter().all(|&b| b == 0xCD));
}

#[test]
fn bounds_frames_and_bytes() {
    let mut r: RxRing<Held> = RxRing::new(3, 1 << 20);
    for _ in 0..3 {
        r.push_with(&hdr(14, 0), |_| 14).unwrap();
    }
    assert_eq!(r.push_with(&hdr(14, 0), |_| 14), Err(Refused::Full));
    let mut r: RxRing<Held> = RxRing::new(1000, 200);
    // Each record of 60 bytes takes 88.
    r.push_with(&hdr(60, 0), |_| 60).unwrap();
    r.push_with(&hdr(60, 0), |_| 60).unwrap();
    assert_eq!(r.push_with(&hdr(60, 0), |_| 60), Err(Refused::Full));
    assert_eq!(r.bytes(), 176);
}

#[test]
fn rings_grow_only_as_far_as_their_shared_budget_allows() {
    static BUDGET: QueueBudget = QueueBudget::new(INITIAL_BYTES * 3);
    // Records of 1000 bytes take 1024.
    let fill = |r: &mut RxRing<Held>, n: usize| (0..n).filter(|_| r.push_with(&hdr(1000, 0), |_| 1000).is_ok()).count();
    let per = INITIAL_BYTES / 1024;
    let mut a: RxRing<Held> = RxRing::bounded(1 << 20, 16 << 20, &BUDGET);
    let mut b: RxRing<Held> = RxRing::bounded(1 << 20, 16 << 20, &BUDGET);
    assert_eq!(BUDGET.used(), 0, "nothing until the first record");
    assert_eq!(fill(&mut a, per), per);
    assert_eq!(fill(&mut b, 1), 1);
    assert_eq!(BUDGET.used(), 2 * INITIAL_BYTES);
    // `a` would double to 512 KiB: 256 more than the budget has left
    // beside `b`... exactly what it has: it grows.
    assert_eq!(fill(&mut a, per), per);
    assert_eq!(BUDGET.used(), 3 * INITIAL_BYTES);
    // Full now: `a` keeps what it has and drops what does not fit;
    // `b` still has room in its own buffer.
    assert_eq!(fill(&mut a, 10), 0);
    assert_eq!(fill(&mut b, per - 1), per - 1);
    assert_eq!(fill(&mut b, 1), 0);
    // What `a` read out it can use again (compacted, not grown).
    let mut out = vec![0u8; 10 * 1024];
    assert_eq!(a.read_into(&mut out).frames, 10);
    assert_eq!(fill(&mut a, 20), 10);
    assert_eq!(BUDGET.used(), 3 * INITIAL_BYTES);
    // A cleared ring, and a dropped one, give their memory back.
    b.clear();
    assert_eq!(BUDGET.used(), 2 * INITIAL_BYTES);
    assert_eq!(fill(&mut a, 10), 0, "doubling to 1 MiB takes 512 KiB more, and 256 are free");
    drop(a);
    assert_eq!(BUDGET.used(), 0);
    // A ring alone gets at most the budget (its next doubling past it).
    let mut c: RxRing<Held> = RxRing::bounded(1 << 20, 16 << 20, &BUDGET);
    assert_eq!(fill(&mut c, 3 * per), 2 * per);
    assert_eq!(BUDGET.used(), 2 * INITIAL_BYTES);
}

#[test]
fn cuts_a_first_record_that_does_not_fit() {
    let mut r: RxRing<Held> = RxRing::new(10, 1 << 20);
    let f = frame(1, 100);
    r.push_with(&hdr(100, 7), |d| {
        d.copy_from_slice(&f);
        100
    })
    .unwrap();
    let mut out = vec![0u8; FrameHeader::LEN + 10];
    let got = r.read_into(&mut out);
    assert!(got.truncated);
    let recs = decode(&out[..got.bytes]);
    assert_eq!(recs[0].0.caplen, 10);
    assert_eq!(recs[0].0.origlen, 100);
    assert_ne!(recs[0].0.flags & frame_flags::TRUNCATED, 0);
    assert_eq!(recs[0].1, f[..10].to_vec());
    assert!(r.is_empty());
    // Shorter than a header: nothing is taken.
    r.push_with(&hdr(20, 0), |_| 20).unwrap();
    assert_eq!(r.read_into(&mut [0u8; 10]).frames, 0);
    assert_eq!(r.len(), 1);
}

#[test]
fn pending_records_keep_order_and_release_their_source() {
    let live = Rc::new(Cell::new(0));
    let mut r: RxRing<Held> = RxRing::new(100, 1 << 20);
    for i in 0..6 {
        let f = frame(i, 200);
        if i % 2 == 0 {
            r.push_pending(&hdr(200, i as u64), Held::new(f, &live)).map_err(|e| e.0).unwrap();
        } else {
            r.push_with(&hdr(200, i as u64), |d| {
                d.copy_from_slice(&f);
                200
            })
            .unwrap();
        }
    }
    assert_eq!(live.get(), 3);
    assert!(r.materialize_oldest());
    assert_eq!(live.get(), 2);
    let mut out = vec![0u8; 1 << 16];
    let got = r.read_into(&mut out);
    assert_eq!(live.get(), 0, "reading releases pending sources");
    let recs = decode(&out[..got.bytes]);
    assert_eq!(recs.len(), 6);
    for (i, (h, d)) in recs.iter().enumerate() {
        assert_eq!(h.timestamp_ns, i as u64);
        assert_eq!(d, &frame(i, 200));
    }
}

#[test]
fn clear_releases_sources() {
    let live = Rc::new(Cell::new(0));
    let mut r: RxRing<Held> = RxRing::new(100, 1 << 20);
    r.push_pending(&hdr(50, 0), Held::new(frame(0, 50), &live)).map_err(|e| e.0).unwrap();
    r.clear();
    assert_eq!(live.get(), 0);
    assert!(r.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Push { len: usize, pending: bool },
    Read { room: usize },
    Materialize,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (14usize..1600, any::<bool>()).prop_map(|(len, pending)| Op::Push { len, pending }),
        (0usize..8000).prop_map(|room| Op::Read { room }),
        Just(Op::Materialize),
    ]
}

proptest! {
    /// The ring behaves like a queue of frames, through wraps and growth.
    #[test]
    fn matches_a_queue_model(ops in proptest::collection::vec(op(), 1..200), max_kb in 8usize..64) {
        let live = Rc::new(Cell::new(0));
        let max_bytes = max_kb * 1024;
        let mut r: RxRing<Held> = RxRing::new(50, max_bytes);
        let mut model: std::collections::VecDeque<(u64, Vec<u8>)> = Default::default();
        let mut model_bytes = 0usize;
        let mut ts = 0u64;
        for op in ops {
            match op {
                Op::Push { len, pending } => {
                    ts += 1;
                    let f = frame(ts as usize, len);
                    let n = FrameHeader::record_len(len);
                    let fits = model.len() < 50 && model_bytes + n <= max_bytes;
                    let res = if pending {
                        r.push_pending(&hdr(len, ts), Held::new(f.clone(), &live)).map_err(|e| e.0)
                    } else {
                        r.push_with(&hdr(len, ts), |d| { d.copy_from_slice(&f); len }).map(|_| ())
                    };
                    prop_assert_eq!(res.is_ok(), fits);
                    if fits {
                        model.push_back((ts, f));
                        model_bytes += n;
                    }
                }
                Op::Read { room } => {
                    let mut out = vec![0u8; room];
                    let got = r.read_into(&mut out);
                    let recs = decode(&out[..got.bytes]);
                    prop_assert_eq!(recs.len(), got.frames);
                    for (h, d) in recs {
                        let (mts, mf) = model.pop_front().unwrap();
                        model_bytes -= FrameHeader::record_len(mf.len());
                        prop_assert_eq!(h.timestamp_ns, mts);
                        prop_assert_eq!(h.origlen as usize, mf.len());
                        prop_assert_eq!(&d[..], &mf[..d.len()]);
                        prop_assert_eq!(d.len() < mf.len(), got.truncated);
                    }
                }
                Op::Materialize => { r.materialize_oldest(); }
            }
            prop_assert_eq!(r.len(), model.len());
            prop_assert_eq!(r.bytes(), model_bytes);
            prop_assert!(r.capacity() <= max_bytes);
            prop_assert_eq!(live.get(), r.pending_count());
        }
    }

    /// Rings sharing a budget: each behaves as a queue, refusing only
    /// what its own bounds or the budget leave no room for; the budget
    /// counts exactly the rings' buffers, never more than its limit,
    /// and is all given back by clears and drops.
    #[test]
    fn rings_share_a_budget_exactly(
        ops in proptest::collection::vec((0usize..3, op(), any::<bool>()), 1..300),
        limit_kb in 200usize..1200,
    ) {
        let budget: &'static QueueBudget = std::boxed::Box::leak(std::boxed::Box::new(QueueBudget::new(limit_kb * 1024)));
        let live = Rc::new(Cell::new(0));
        let mut rings: Vec<RxRing<Held>> = (0..3).map(|_| RxRing::bounded(1000, 1 << 20, budget)).collect();
        let mut ts = 0u64;
        for (i, op, clear) in ops {
            let r = &mut rings[i];
            match op {
                Op::Push { len, pending } => {
                    ts += 1;
                    let f = frame(ts as usize, len);
                    let before = (r.len(), r.capacity(), budget.used());
                    let ok = if pending {
                        r.push_pending(&hdr(len, ts), Held::new(f, &live)).is_ok()
                    } else {
                        r.push_with(&hdr(len, ts), |d| { d.copy_from_slice(&f); len }).is_ok()
                    };
                    prop_assert_eq!(r.len(), before.0 + usize::from(ok));
                    if !ok {
                        // Refused: its own bound, or a growth the
                        // budget could not cover (the buffer then
                        // stays as it was).
                        let n = FrameHeader::record_len(len);
                        let own_bound = before.0 >= 1000 || r.bytes() + n > 1 << 20;
                        // As `grow` sizes it.
                        let want = (r.bytes() + n).max(before.1 * 2).max(INITIAL_BYTES);
                        let grown = want.min(1 << 20).max(r.bytes() + n);
                        prop_assert!(own_bound || before.2 - before.1 + grown > limit_kb * 1024, "{before:?} {n}");
                        prop_assert_eq!(r.capacity(), before.1);
                    }
                }
                Op::Read { room } => {
                    let mut out = vec![0u8; room];
                    r.read_into(&mut out);
                }
                Op::Materialize => { r.materialize_oldest(); }
            }
            if clear && i == 0 {
                rings[0].clear();
            }
            let held: usize = rings.iter().map(|r| r.capacity()).sum();
            prop_assert_eq!(budget.used(), held);
            prop_assert!(held <= limit_kb * 1024);
        }
        rings.truncate(1);
        rings[0].clear();
        prop_assert_eq!(budget.used(), 0);
        drop(rings);
        prop_assert_eq!(live.get(), 0);
    }
}
