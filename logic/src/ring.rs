//! A handle's receive queue: frame records, already in the ReadFile wire
//! format (`rawnic_proto::FrameHeader` + data padded to 8), in a byte ring, so a
//! read is a copy of whole records.
//!
//! A record can be *pending*: its space is reserved and its header written,
//! but its data stays in a retained NBL (an `R: FrameSource`) until it is
//! read (copied straight to the reader) or materialized (copied into its
//! reserved space, and `R` dropped, which gives the NBL back). Records keep
//! their order either way.
//!
//! The ring starts small and grows (by copying the records in order) up to
//! its byte bound; it never holds more than `max_frames` records or
//! `max_bytes` bytes of records. A ring may draw its memory from a
//! `QueueBudget` shared by all of a driver's rings: it grows only while the
//! budget allows, and gives back what it has when cleared or dropped.
//! Padding bytes are always zero, so a read never hands out stale memory.

use crate::budget::QueueBudget;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use rawnic_proto::{FrameHeader, frame_flags};

/// Where a pending record's data comes from.
pub trait FrameSource {
    /// The frame's length.
    fn frame_len(&self) -> usize;
    /// Copies from `offset` into `dst`; returns the bytes copied.
    fn copy_frame(&self, offset: usize, dst: &mut [u8]) -> usize;
}

/// The first allocation of a ring.
pub const INITIAL_BYTES: usize = 256 * 1024;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The frame or byte bound is reached (or memory ran out).
    Full,
}

/// What `read_into` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOut {
    pub bytes: usize,
    pub frames: usize,
    /// The first record did not fit and was cut.
    pub truncated: bool,
}

pub struct RxRing<R> {
    buf: Vec<u8>,
    /// Offset of the oldest record.
    head: usize,
    /// Where the next record goes.
    tail: usize,
    /// When wrapped, records run from `head` to `wrap_end`, then from 0 to
    /// `tail`.
    wrapped: bool,
    wrap_end: usize,
    frames: usize,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// Pending records: (offset of the record, its source), oldest first.
    pending: VecDeque<(usize, R)>,
    /// What `buf`'s bytes are counted against, if anything.
    budget: Option<&'static QueueBudget>,
}

impl<R: FrameSource> RxRing<R> {
    /// An empty ring bounded by `max_frames` records and `max_bytes` bytes.
    /// Allocates nothing yet.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        RxRing {
            buf: Vec::new(),
            head: 0,
            tail: 0,
            wrapped: false,
            wrap_end: 0,
            frames: 0,
            bytes: 0,
            max_frames,
            max_bytes,
            pending: VecDeque::new(),
            budget: None,
        }
    }

    /// `new`, its memory counted against `budget`.
    pub fn bounded(max_frames: usize, max_bytes: usize, budget: &'static QueueBudget) -> Self {
        let mut r = Self::new(max_frames, max_bytes);
        r.budget = Some(budget);
        r
    }

    pub fn len(&self) -> usize {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Bytes of records queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Finds room for `n` bytes; returns the offset. Grows if it must.
    fn reserve(&mut self, n: usize) -> Result<usize, Refused> {
        if self.frames >= self.max_frames || self.bytes + n > self.max_bytes {
            return Err(Refused::Full);
        }
        if self.frames == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrapped = false;
        }
        if let Some(at) = self.fit(n) {
            return Ok(at);
        }
        self.grow(n)?;
        self.fit(n).ok_or(Refused::Full)
    }

    fn fit(&mut self, n: usize) -> Option<usize> {
        let cap = self.buf.len();
        if !self.wrapped {
            if cap - self.tail >= n {
                return Some(self.tail);
            }
            if self.head >= n {
                // Wrap: the records at the top end at the old tail.
                self.wrap_end = self.tail;
                self.wrapped = true;
                self.tail = 0;
                return Some(0);
            }
            None
        } else if self.head - self.tail >= n {
            Some(self.tail)
        } else {
            None
        }
    }

    /// Makes room for `need` bytes: a larger buffer while below the bound
    /// (records copied in order to offset 0), else compaction in place.
    fn grow(&mut self, need: usize) -> Result<(), Refused> {
        let cap = self.buf.len();
        if cap >= self.max_bytes {
            self.compact();
            return Ok(());
        }
        let want = (self.bytes + need).max(cap.saturating_mul(2)).max(INITIAL_BYTES);
        let new_cap = want.min(self.max_bytes).max(self.bytes + need);
        if let Some(b) = self.budget {
            if !b.take(new_cap - cap) {
                // No more memory for rings: what this one has, compacted.
                if self.bytes + need <= cap {
                    self.compact();
                    return Ok(());
                }
                return Err(Refused::Full);
            }
        }
        let mut next: Vec<u8> = Vec::new();
        if next.try_reserve_exact(new_cap).is_err() {
            if let Some(b) = self.budget {
                b.give(new_cap - cap);
            }
            return Err(Refused::Full);
        }
        next.resize(new_cap, 0);
        let mut out = 0;
        let mut pend = 0;
        let mut at = self.head;
        let mut wrapped = self.wrapped;
        for _ in 0..self.frames {
            if wrapped && at == self.wrap_end {
                at = 0;
                wrapped = false;
            }
            let len = record_len_at(&self.buf, at);
            next[out..out + len].copy_from_slice(&self.buf[at..at + len]);
            if pend < self.pending.len() && self.pending[pend].0 == at {
                self.pending[pend].0 = out;
                pend += 1;
            }
            out += len;
            at += len;
        }
        self.buf = next;
        self.head = 0;
        self.tail = out;
        self.wrapped = false;
        self.wrap_end = 0;
        Ok(())
    }

    /// Moves the records to the start of the buffer, in order, without
    /// allocating.
    fn compact(&mut self) {
        if self.wrapped {
            // [head, wrap_end) then [0, tail): rotating [0, wrap_end) left by
            // `head` puts the first run at 0, the second right after it.
            let first = self.wrap_end - self.head;
            let head = self.head;
            self.buf[..self.wrap_end].rotate_left(head);
            for (off, _) in self.pending.iter_mut() {
                *off = if *off >= head { *off - head } else { *off + first };
            }
        } else {
            self.buf.copy_within(self.head..self.tail, 0);
            let head = self.head;
            for (off, _) in self.pending.iter_mut() {
                *off -= head;
            }
        }
        self.head = 0;
        self.tail = self.bytes;
        self.wrapped = false;
        self.wrap_end = 0;
    }

    /// Queues a record whose data `fill` copies into the slice it is given
    /// (`hdr.caplen` bytes; it returns how many it wrote). `Ok(true)` when
    /// the record is cut: `hdr` says so, or `fill` gave less.
    pub fn push_with(&mut self, hdr: &FrameHeader, fill: impl FnOnce(&mut [u8]) -> usize) -> Result<bool, Refused> {
        let caplen = hdr.caplen as usize;
        let n = FrameHeader::record_len(caplen);
        let at = self.reserve(n)?;
        let rec = &mut self.buf[at..at + n];
        // The padding is all in the record's last 8 bytes: zero them with
        // one store before the header and the data go in.
        rec[n - 8..].fill(0);
        rec[..FrameHeader::LEN].copy_from_slice(&hdr.to_bytes());
        let got = fill(&mut rec[FrameHeader::LEN..FrameHeader::LEN + caplen]);
        if got >= caplen {
            self.commit(n);
            return Ok(hdr.flags & frame_flags::TRUNCATED != 0);
        }
        // The source gave less than it had (memory the driver could not
        // map under low resources): the record says so instead of passing
        // zeros off as the frame's bytes. It is cut to what came, marked
        // truncated, and takes only that room.
        let mut cut = *hdr;
        cut.caplen = got as u32;
        cut.flags |= frame_flags::TRUNCATED;
        let m = FrameHeader::record_len(got);
        rec[..FrameHeader::LEN].copy_from_slice(&cut.to_bytes());
        rec[FrameHeader::LEN + got..m].fill(0);
        self.commit(m);
        Ok(true)
    }

    /// Queues a pending record for `src`: the data is copied later.
    pub fn push_pending(&mut self, hdr: &FrameHeader, src: R) -> Result<(), (Refused, R)> {
        let caplen = hdr.caplen as usize;
        let n = FrameHeader::record_len(caplen);
        if self.pending.len() == self.pending.capacity() && self.pending.try_reserve(1).is_err() {
            return Err((Refused::Full, src));
        }
        let at = match self.reserve(n) {
            Ok(at) => at,
            Err(e) => return Err((e, src)),
        };
        let rec = &mut self.buf[at..at + n];
        rec[..FrameHeader::LEN].copy_from_slice(&hdr.to_bytes());
        // Padding now; the data area is written when materialized.
        rec[FrameHeader::LEN + caplen..].fill(0);
        self.pending.push_back((at, src));
        self.commit(n);
        Ok(())
    }

    fn commit(&mut self, n: usize) {
        self.tail += n;
        self.frames += 1;
        self.bytes += n;
    }

    /// Copies the oldest pending record's data into its place and drops its
    /// source. Returns false if none is pending.
    pub fn materialize_oldest(&mut self) -> bool {
        let Some((at, src)) = self.pending.pop_front() else { return false };
        let caplen = caplen_at(&self.buf, at);
        let data = &mut self.buf[at + FrameHeader::LEN..at + FrameHeader::LEN + caplen];
        let got = src.copy_frame(0, data);
        data[got.min(caplen)..].fill(0);
        drop(src);
        true
    }

    /// Materializes every pending record.
    pub fn materialize_all(&mut self) {
        while self.materialize_oldest() {}
    }

    /// Copies as many whole records as fit into `dst`, oldest first, and
    /// removes them. If not even the first fits but its header does, it is
    /// cut to fit (marked TRUNCATED if data was lost; the last record may
    /// lack its padding) and removed. Returns nothing written if
    /// `dst` is shorter than a header.
    pub fn read_into(&mut self, dst: &mut [u8]) -> ReadOut {
        let mut out = ReadOut::default();
        while self.frames > 0 {
            if self.wrapped && self.head == self.wrap_end {
                self.head = 0;
                self.wrapped = false;
            }
            let at = self.head;
            let n = record_len_at(&self.buf, at);
            let caplen = caplen_at(&self.buf, at);
            let room = dst.len() - out.bytes;
            let is_pending = self.pending.front().is_some_and(|(p, _)| *p == at);
            if n <= room {
                let d = &mut dst[out.bytes..out.bytes + n];
                if is_pending {
                    d[..FrameHeader::LEN].copy_from_slice(&self.buf[at..at + FrameHeader::LEN]);
                    let (_, src) = self.pending.pop_front().expect("front is pending");
                    let got = src.copy_frame(0, &mut d[FrameHeader::LEN..FrameHeader::LEN + caplen]);
                    d[FrameHeader::LEN + got.min(caplen)..].fill(0);
                } else {
                    d.copy_from_slice(&self.buf[at..at + n]);
                }
            } else if out.frames == 0 && room >= FrameHeader::LEN {
                // Cut the first record to what fits.
                let keep = (room - FrameHeader::LEN).min(caplen);
                let mut hdr = FrameHeader::parse_raw(&self.buf[at..at + FrameHeader::LEN]);
                hdr.caplen = keep as u32;
                if keep < caplen {
                    hdr.flags |= frame_flags::TRUNCATED;
                }
                let d = &mut dst[..FrameHeader::LEN + keep];
                d[..FrameHeader::LEN].copy_from_slice(&hdr.to_bytes());
                if is_pending {
                    let (_, src) = self.pending.pop_front().expect("front is pending");
                    let got = src.copy_frame(0, &mut d[FrameHeader::LEN..]);
                    d[FrameHeader::LEN + got.min(keep)..].fill(0);
                } else {
                    d[FrameHeader::LEN..]
                        .copy_from_slice(&self.buf[at + FrameHeader::LEN..at + FrameHeader::LEN + keep]);
                }
                out.truncated = keep < caplen;
                out.bytes = FrameHeader::LEN + keep;
                out.frames = 1;
                self.pop(n);
                break;
            } else {
                break;
            }
            out.bytes += n;
            out.frames += 1;
            self.pop(n);
        }
        out
    }

    fn pop(&mut self, n: usize) {
        self.head += n;
        self.frames -= 1;
        self.bytes -= n;
        if self.frames == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrapped = false;
        }
    }

    /// Drops every record (their sources too) and the memory that held
    /// them.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.frames = 0;
        self.bytes = 0;
        self.head = 0;
        self.tail = 0;
        self.wrapped = false;
        self.release();
    }

    fn release(&mut self) {
        let buf = core::mem::take(&mut self.buf);
        if let Some(b) = self.budget {
            b.give(buf.len());
        }
    }
}

impl<R> Drop for RxRing<R> {
    fn drop(&mut self) {
        if let Some(b) = self.budget {
            b.give(self.buf.len());
        }
    }
}

fn caplen_at(buf: &[u8], at: usize) -> usize {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize
}

fn record_len_at(buf: &[u8], at: usize) -> usize {
    FrameHeader::record_len(caplen_at(buf, at))
}

#[cfg(test)]
mod tests {
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
        let fill =
            |r: &mut RxRing<Held>, n: usize| (0..n).filter(|_| r.push_with(&hdr(1000, 0), |_| 1000).is_ok()).count();
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
}
