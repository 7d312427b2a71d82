//! The ring's buffer as it fills: records that wrap, pending or copied, keep
//! their order and data through a growth; an exact fit takes no more memory;
//! a ring at its budget compacts for a record that fills it to the byte; a
//! reader's buffer of a header alone takes the first record cut to nothing.

use super::*;

/// Frames of 1000 bytes: records of 1024.
const LEN: usize = 1000;
const REC: usize = 1024;

/// Queues frame `ts` (1000 bytes), pending (its source kept) or copied.
fn push(r: &mut RxRing<Held>, ts: u64, pending: bool, live: &Rc<Cell<usize>>) -> Result<(), Refused> {
    let f = frame(ts as usize, LEN);
    if pending {
        r.push_pending(&hdr(LEN, ts), Held::new(f, live)).map_err(|e| e.0)
    } else {
        r.push_with(&hdr(LEN, ts), |d| {
            d.copy_from_slice(&f);
            LEN
        })
        .map(|_| ())
    }
}

/// Reads what fits in `room` bytes: the frames' (timestamp, data).
fn read(r: &mut RxRing<Held>, room: usize) -> Vec<(u64, Vec<u8>)> {
    let mut out = vec![0u8; room];
    let got = r.read_into(&mut out);
    decode(&out[..got.bytes]).into_iter().map(|(h, d)| (h.timestamp_ns, d)).collect()
}

#[test]
fn a_wrapped_ring_grows_with_its_records_in_order() {
    let live = Rc::new(Cell::new(0));
    let mut r: RxRing<Held> = RxRing::new(10_000, 1 << 20);
    let per = INITIAL_BYTES / REC;
    // Every third record pending, on both sides of the wrap.
    let pending = |ts: u64| ts % 3 == 0;
    for ts in 0..per as u64 {
        push(&mut r, ts, pending(ts), &live).unwrap();
    }
    assert_eq!(r.capacity(), INITIAL_BYTES);
    let first = read(&mut r, 8 * REC);
    assert_eq!(first.iter().map(|f| f.0).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    // Eight records fit at the buffer's start, below the oldest: the
    // last of them exactly, with no growth.
    for ts in per as u64..per as u64 + 8 {
        push(&mut r, ts, pending(ts), &live).unwrap();
        assert_eq!(r.capacity(), INITIAL_BYTES, "frame {ts} fits in the wrapped buffer");
    }
    // The ninth needs more: the buffer grows with both runs copied, the
    // older first, and the pending records still found.
    push(&mut r, per as u64 + 8, pending(per as u64 + 8), &live).unwrap();
    assert_eq!(r.capacity(), 2 * INITIAL_BYTES);
    assert_eq!(r.len(), per + 1);
    r.materialize_oldest();
    let rest = read(&mut r, 1 << 20);
    assert_eq!(rest.len(), per + 1);
    for (k, (ts, d)) in rest.iter().enumerate() {
        let want = 8 + k as u64;
        assert_eq!(*ts, want);
        assert!(d == &frame(want as usize, LEN), "frame {want}: other data");
    }
    assert_eq!(live.get(), 0);
    assert!(r.is_empty());
}

#[test]
fn a_ring_at_its_budget_compacts_for_a_record_that_fills_it() {
    static BUDGET: QueueBudget = QueueBudget::new(INITIAL_BYTES);
    let live = Rc::new(Cell::new(0));
    let mut r: RxRing<Held> = RxRing::bounded(10_000, 1 << 20, &BUDGET);
    // A record of 512 bytes, then 1024-byte ones up to 512 bytes short of
    // the buffer's end.
    r.push_with(&hdr(512 - FrameHeader::LEN, 0), |_| 512 - FrameHeader::LEN).unwrap();
    let per = INITIAL_BYTES / REC - 1;
    for ts in 1..=per as u64 {
        push(&mut r, ts, ts % 2 == 0, &live).unwrap();
    }
    assert_eq!(BUDGET.used(), INITIAL_BYTES);
    assert_eq!(read(&mut r, 512).len(), 1);
    // 512 bytes free at each end: a record of 1024 fits in neither, the
    // budget allows no growth, and the ring, compacted, holds it to its
    // last byte.
    push(&mut r, per as u64 + 1, true, &live).unwrap();
    assert_eq!(r.bytes(), INITIAL_BYTES);
    assert_eq!(r.capacity(), INITIAL_BYTES);
    let all = read(&mut r, 1 << 20);
    assert_eq!(all.len(), per + 1);
    for (k, (ts, d)) in all.iter().enumerate() {
        assert_eq!(*ts, k as u64 + 1);
        assert!(d == &frame(k + 1, LEN), "frame {ts}: other data");
    }
    assert_eq!(live.get(), 0);
    drop(r);
    assert_eq!(BUDGET.used(), 0);
}

#[test]
fn a_header_s_room_takes_the_first_record_cut_to_nothing() {
    let mut r: RxRing<Held> = RxRing::new(10, 1 << 20);
    r.push_with(&hdr(20, 5), |_| 20).unwrap();
    let mut out = [0u8; FrameHeader::LEN];
    let got = r.read_into(&mut out);
    assert_eq!((got.frames, got.bytes, got.truncated), (1, FrameHeader::LEN, true));
    let h = FrameHeader::parse_raw(&out);
    assert_eq!((h.caplen, h.origlen, h.timestamp_ns), (0, 20, 5));
    assert_ne!(h.flags & frame_flags::TRUNCATED, 0);
    assert!(r.is_empty());
}
