//! The tx side one call at a time: descriptors taken and checked,
//! completions reserved and posted.

use super::*;

#[test]
fn tx_takes_valid_frames_completes_bad_ones_and_reserves_completions() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let good = |i| TxDesc { addr: frame(&l, i), len: 60, flags: 0 };
        let bad = TxDesc { addr: frame(&l, 1) + 2000, len: 60, flags: 0 };
        tx(&l, &m, &[good(0), bad, good(2)]);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 3);
        assert_eq!(s.tx_next(&s.tx_side(&m), 1518), TxNext::Frame(good(0)));
        assert_eq!(s.tx_next(&s.tx_side(&m), 1518), TxNext::Invalid);
        assert_eq!(s.tx_next(&s.tx_side(&m), 1518), TxNext::Frame(good(2)));
        assert_eq!(s.tx_next(&s.tx_side(&m), 1518), TxNext::Done);
        assert_eq!(s.tx_outstanding(), 2);
        // Completions in any order.
        s.tx_complete(&s.tx_side(&m), frame(&l, 2), true);
        s.tx_complete(&s.tx_side(&m), frame(&l, 0), false);
        assert_eq!(s.publish(&m), (false, true));
        let comp: Vec<u64> = (0..3).map(|i| m.load_u64(l.completion.entry_at(b.comp(i)))).collect();
        assert_eq!(comp, [bad.addr, frame(&l, 2), frame(&l, 0)]);
        assert_eq!(m.load_u32(l.tx.consumer()), b.tx(3));
        assert_eq!((s.counters.tx_frames, s.counters.tx_errors, s.counters.tx_invalid), (1, 1, 1));
        // The completion ring (8) bounds what is taken: with 3 unconsumed
        // completions and 2 frames in flight, 3 more may go.
        tx(&l, &m, &[good(3), good(4)]);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 2);
        s.tx_next(&s.tx_side(&m), 1518);
        s.tx_next(&s.tx_side(&m), 1518);
        tx(&l, &m, &[good(5), good(6), good(7), good(8), good(9)]);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 3);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 2), 2);
        // The user consumes the three completions: room for all five.
        m.store_u32(l.completion.consumer(), b.comp(3));
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 5);
    });
}

#[test]
fn a_take_checks_flags_and_length_at_their_edges_and_refuses_all_below_a_header() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let d = |i, len, flags| TxDesc { addr: frame(&l, i), len, flags };
        let descs = [
            d(0, 13, 0),
            d(1, 14, 0),
            d(2, 1518, 0),
            d(3, 1519, 0),
            d(4, 60, 1),
            d(5, 60, 0x8000_0000),
            d(6, u32::MAX, 0),
            d(7, 0, 0),
        ];
        tx(&l, &m, &descs);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 8);
        let mut sent = Vec::new();
        let side = s.tx_side(&m);
        let mut run = s.tx_run();
        assert_eq!(
            run.take(&side, 64, 1518, |d, len, _, _| {
                assert_eq!(len, d.len as usize);
                sent.push(d.len);
                true
            }),
            (8, 6)
        );
        drop(run);
        assert_eq!(sent, [14, 1518]);
        assert_eq!(s.counters.tx_invalid, 6);
        assert_eq!(s.tx_outstanding(), 2);
        // A bound below a header: nothing is valid, each is completed unsent.
        tx(&l, &m, &[d(1, 14, 0), d(2, 14, 0)]);
        m.store_u32(l.completion.consumer(), b.comp(6));
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 2);
        let side = s.tx_side(&m);
        let mut run = s.tx_run();
        assert_eq!(run.take(&side, 64, 13, |_, _, _, _| panic!("no frame is valid")), (2, 2));
        drop(run);
        assert_eq!(s.counters.tx_invalid, 8);
        assert_eq!(s.tx_outstanding(), 2);
        s.publish(&m);
        let comp: Vec<u64> = (0..8).map(|i| m.load_u64(l.completion.entry_at(b.comp(i)))).collect();
        assert_eq!(comp, [0, 3, 4, 5, 6, 7, 1, 2].map(|i| frame(&l, i)));
    });
}

#[test]
fn a_taken_frame_is_placed_by_its_frame_index_and_offset_within() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let d = TxDesc { addr: frame(&l, 5) + 123, len: 60, flags: 0 };
        tx(&l, &m, &[d]);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 1);
        let side = s.tx_side(&m);
        let mut run = s.tx_run();
        assert_eq!(run.next(&side, 1518), TxNext::Frame(d));
        assert_eq!(run.place(&d), (5, 123));
    });
}

#[test]
fn completions_of_one_status_are_posted_in_order_and_counted_once() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let descs: Vec<TxDesc> = (0..5).map(|i| TxDesc { addr: frame(&l, i), len: 60, flags: 0 }).collect();
        tx(&l, &m, &descs);
        assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 5);
        for d in &descs {
            assert_eq!(s.tx_next(&s.tx_side(&m), 1518), TxNext::Frame(*d));
        }
        let side = s.tx_side(&m);
        let mut comp = s.comp_run();
        assert_eq!(comp.complete_each(&side, [frame(&l, 3), frame(&l, 1), frame(&l, 4)].into_iter(), true), 3);
        assert_eq!(comp.complete_each(&side, [frame(&l, 0), frame(&l, 2)].into_iter(), false), 2);
        drop(comp);
        assert_eq!(s.tx_outstanding(), 0);
        assert_eq!((s.counters.tx_frames, s.counters.tx_errors), (3, 2));
        assert_eq!(s.publish(&m), (false, true));
        let comp: Vec<u64> = (0..5).map(|i| m.load_u64(l.completion.entry_at(b.comp(i)))).collect();
        assert_eq!(comp, [3, 1, 4, 0, 2].map(|i| frame(&l, i)));
    });
}
