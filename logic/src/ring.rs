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
mod tests;
