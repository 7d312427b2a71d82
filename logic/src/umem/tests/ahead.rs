//! Completion entries a kick writes ahead (`TxRun::take`,
//! `CompRun::complete_ahead`).

use super::*;

/// Frames taken by a kick with no invalid descriptor and completed in the
/// order they were taken are posted from the entries `take` wrote ahead,
/// exactly as writing them would post them; a post in between, or a
/// completion out of order, makes `complete_ahead` decline.
#[test]
fn completions_written_ahead_are_posted_as_written_when_in_order() {
    wrap::from_each_base(|b| {
        let run = |ahead: bool| {
            let (l, m, mut s) = wrap::attached_at(b);
            let descs: Vec<TxDesc> =
                (0..6).map(|i| TxDesc { addr: frame(&l, i) + 3, len: 60 + i as u32, flags: 0 }).collect();
            tx(&l, &m, &descs);
            assert_eq!(s.tx_refresh(&s.tx_side(&m), 64), 6);
            let side = s.tx_side(&m);
            let mut r = s.tx_run();
            let start = r.ahead();
            assert_eq!(start, b.comp);
            assert_eq!(r.take(&side, 6, 1518, |_, _, _, _| true), (6, 0));
            drop(r);
            // Nothing published yet.
            s.publish(&m);
            assert_eq!(s.producers().1, b.comp(0));
            let mut c = s.comp_run();
            // The first three, then the last three, as two NBLs would be.
            for (first, ok) in [(0u64, true), (3, false)] {
                if ahead {
                    assert!(c.complete_ahead(start.wrapping_add(first), 3, ok));
                } else {
                    let addrs = descs[first as usize..first as usize + 3].iter().map(|d| d.addr);
                    assert_eq!(c.complete_each(&side, addrs, ok), 3);
                }
            }
            drop(c);
            s.publish(&m);
            let entries: Vec<u64> = published(&l, &m, b.comp(0), b.comp(6));
            assert_eq!(entries, descs.iter().map(|d| d.addr).collect::<Vec<_>>());
            (s.counters, s.producers(), s.tx_outstanding(), m.0.borrow().clone())
        };
        assert_eq!(run(true), run(false));
        // Out of order, or after a post in between: declined, nothing done.
        let (l, m, mut s) = wrap::attached_at(b);
        let (descs, start) = kick(&l, &m, &mut s, 0..4);
        let side = s.tx_side(&m);
        let mut c = s.comp_run();
        assert!(!c.complete_ahead(start.wrapping_add(2), 2, true), "out of order");
        c.complete(&side, descs[2].addr, true);
        assert!(!c.complete_ahead(start, 2, true), "a post in between");
        assert!(!c.complete_ahead(start.wrapping_add(1), 4, true), "more than are owed");
        drop(c);
        assert_eq!(s.tx_outstanding(), 3);
        assert_eq!(s.counters.tx_frames, 1);
    });
}

/// A kick of `frames` (60 bytes each, none refused): posts their
/// descriptors, takes them all and writes their completions ahead.
/// Returns the descriptors and where their first completion was reserved.
fn kick(l: &RingLayout, m: &Mem, s: &mut RingState, frames: std::ops::Range<u64>) -> (Vec<TxDesc>, u64) {
    let descs: Vec<TxDesc> = frames.map(|i| TxDesc { addr: frame(l, i), len: 60, flags: 0 }).collect();
    tx(l, m, &descs);
    let n = descs.len() as u32;
    assert_eq!(s.tx_refresh(&s.tx_side(m), 64), n);
    let side = s.tx_side(m);
    let mut r = s.tx_run();
    let start = r.ahead();
    assert_eq!(r.take(&side, n, 1518, |_, _, _, _| true), (n, 0));
    (descs, start)
}

/// The published completion entries, `from..to` (free-running indices,
/// `to` maybe past the wrap).
fn published(l: &RingLayout, m: &Mem, from: u32, to: u32) -> Vec<u64> {
    (0..to.wrapping_sub(from)).map(|i| m.load_u64(l.completion.entry_at(from.wrapping_add(i)))).collect()
}

/// A user that says it consumed completions not yet published (its
/// consumer index past the driver's producer, within what is reserved)
/// gets no more room for it: a kick that believed it would write ahead
/// over entries an earlier kick wrote ahead and has not published, and
/// that kick's in-order completion would then publish the later kick's
/// frames (still with NDIS) in place of its own.
#[test]
fn a_consumer_past_the_published_completions_gives_no_room() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let (first, start) = kick(&l, &m, &mut s, 0..4);
        // Nothing published, yet the user says it consumed four completions.
        m.store_u32(l.completion.consumer(), b.comp(4));
        let later: Vec<TxDesc> = (4..12).map(|i| TxDesc { addr: frame(&l, i), len: 60, flags: 0 }).collect();
        tx(&l, &m, &later);
        let n = s.tx_refresh(&s.tx_side(&m), 64);
        let side = s.tx_side(&m);
        let mut r = s.tx_run();
        r.take(&side, n, 1518, |_, _, _, _| true);
        drop(r);
        // The first kick's frames come back, in order.
        let mut c = s.comp_run();
        if !c.complete_ahead(start, 4, true) {
            c.complete_each(&side, first.iter().map(|d| d.addr), true);
        }
        drop(c);
        s.publish(&m);
        let (_, prod) = s.producers();
        assert_eq!(prod, b.comp(4));
        assert_eq!(
            published(&l, &m, b.comp(0), prod),
            first.iter().map(|d| d.addr).collect::<Vec<_>>(),
            "its own frames"
        );
        assert_eq!(n, 0, "no room: the consumer is past what was published");
        assert_eq!(s.counters.bad_index, 1);
    });
}

/// An NBL the NIC holds while 2^32 other completions are posted (out of
/// order around it) finds the completion ring's index where its entries
/// were reserved again, a lap of the index later: its entries, written
/// ahead a lap ago, were written over meanwhile, and must be written
/// again, not posted as they are. (The 2^32 frames in between are not run
/// one by one: the state is moved on by what they leave changed, the
/// indices of the tx and completion rings, the user's with them.)
#[test]
fn an_nbl_held_for_a_lap_of_the_index_has_its_completions_written_again() {
    wrap::from_each_base(|b| {
        let (l, m, mut s) = wrap::attached_at(b);
        let (held, start) = kick(&l, &m, &mut s, 0..4);
        // Another kick's four frames, completed before the held ones: written
        // at the index (over the held ones' entries), and consumed.
        let (other, other_start) = kick(&l, &m, &mut s, 4..8);
        let side = s.tx_side(&m);
        let mut c = s.comp_run();
        assert!(!c.complete_ahead(other_start, 4, true), "out of order");
        c.complete_each(&side, other.iter().map(|d| d.addr), true);
        drop(c);
        s.publish(&m);
        assert_eq!(s.producers().1, b.comp(4));
        m.store_u32(l.completion.consumer(), b.comp(4));
        // 2^32 - 4 more frames go and come back the same way, the held ones
        // still out: each index has moved on by as many (the entries they
        // wrote last at 0..4 are the other kick's, as now), so that the
        // completion ring's is back where the held ones' were reserved.
        let lap = 0u32.wrapping_sub(4);
        skip_sent(&mut s, lap);
        let user = |off: usize| m.store_u32(off, m.load_u32(off).wrapping_add(lap));
        user(l.tx.producer());
        user(l.completion.consumer());
        s.publish(&m);
        assert_eq!(s.producers().1, start as u32, "a lap later");
        assert_eq!(s.tx_outstanding(), 4);
        // The held frames come back at last.
        let mut c = s.comp_run();
        if !c.complete_ahead(start, 4, true) {
            c.complete_each(&side, held.iter().map(|d| d.addr), true);
        }
        drop(c);
        s.publish(&m);
        let start = start as u32;
        assert_eq!(published(&l, &m, start, start.wrapping_add(4)), held.iter().map(|d| d.addr).collect::<Vec<_>>());
        assert_eq!(s.comp_prod, b.comp.wrapping_add(1 << 32).wrapping_add(4), "a lap and four on");
    });
}

/// Moves `s` on as `n` frames taken from the tx ring and completed
/// (written at the index) would, with nothing else changed.
fn skip_sent(s: &mut RingState, n: u32) {
    s.tx_cons = s.tx_cons.wrapping_add(n);
    s.comp_prod = s.comp_prod.wrapping_add(u64::from(n));
    s.counters.tx_frames += u64::from(n);
}
