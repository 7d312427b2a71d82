//! The end's flood (`probe.rs`, one adapter in three): a handle of the
//! probe's that reads little gets 1,700 to 2,600 broadcast frames, most
//! shorter than the driver retains (copied into its queue), up to 16
//! longer ones among them (their NBLs retained, their data still the
//! miniport's), more than the queue's first buffer of 256 KiB holds: the
//! queue grows while it holds retained records; in half the floods a
//! read part way frees its start first, so that it wraps, then grows. Every frame
//! NDIS indicated must be counted delivered or dropped, and those
//! delivered read back whole and in order: a growth that moved a
//! retained record's place, or copied a wrapped queue out of order,
//! is found (mutants M251 and M253 of the sixth mutation round).

use super::probe::stats;
use super::{Ctx, close};
use crate::frames;
use crate::schedule::Dst;
use ndisim::rng::Rng;
use ndisim::{AdapterId, Handle, InjectOpts};
use rawnic_proto::{FrameRecords, filter as pf, stats_flags};
use std::sync::atomic::Ordering;

/// Floods adapter `i` (NDIS's `a`) through a handle of its own.
pub(super) fn flood(c: &Ctx<'_>, i: usize, a: AdapterId, r: &mut Rng) {
    let Ok(h) = c.sim.open() else { return };
    let open = super::probe_handles::plain(&c.names[i], pf::BROADCAST);
    let Some(h) = super::probe_handles::opened(std::sync::Arc::new(h), &open) else { return };
    let Some(before) = stats(&h).filter(|s| s.flags & stats_flags::FILTER_PENDING == 0 && s.queued_frames == 0) else {
        close(h, false);
        return;
    };
    // Records of about 180 bytes on average: some 1,450 fill the first
    // buffer. A flood with a read part way has more, so that the queue
    // wraps into what the read freed and then grows.
    let mid = if r.chance(500) { r.range(800, 1300) as usize } else { usize::MAX };
    let n = if mid == usize::MAX { r.range(1700, 2200) } else { r.range(2000, 2600) } as usize;
    let long = r.range(1, 16);
    let mac = c.mac(i);
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let len = if r.chance((long * 1000 / n as u64) as u32 + 1) { r.range(256, 1514) } else { r.range(60, 255) };
            frames::build(Dst::Broadcast, mac, c.next_seq(), len as usize)
        })
        .collect();
    // Indications of 1 to 64 frames; those that found no receive buffer
    // (the first of each that did are indicated) are left out. Once, part
    // way, a read takes some from the front (the queue then wraps before
    // it grows).
    let mut sent: Vec<&[u8]> = Vec::new();
    let mut back = Back { next: 0, read: 0, dropped: false };
    let mut at = 0;
    while at < frames.len() {
        let k = (r.range(1, 64) as usize).min(frames.len() - at);
        let refs: Vec<&[u8]> = frames[at..at + k].iter().map(|f| &f[..]).collect();
        let o = InjectOpts { nbls_per_indication: k, ..InjectOpts::default() };
        let got = c.sim.inject(a, &refs, &o).unwrap_or(0);
        sent.extend_from_slice(&refs[..got.min(k)]);
        if at < mid && mid <= at + k && !sent.is_empty() {
            back.dropped = stats(&h).is_none_or(|s| s.handle.rx_queue_drops != before.handle.rx_queue_drops);
            back.read_once(c, i, &h, &sent, r.range(4096, 64 * 1024) as usize);
        }
        at += k;
    }
    let Some(after) = stats(&h) else {
        close(h, false);
        return;
    };
    let (b, s) = (before.handle, after.handle);
    let (delivered, dropped) = (s.rx_frames - b.rx_frames, s.rx_queue_drops - b.rx_queue_drops);
    if delivered + dropped != sent.len() as u64 || u64::from(after.queued_frames) + back.read != delivered {
        c.problem(format!(
            "flood of {}: {} frames indicated to a handle that reads little; it counts {delivered} delivered and {dropped} dropped, {} read, {} queued",
            c.names[i],
            sent.len(),
            back.read,
            after.queued_frames
        ));
    }
    // The rest read back: the delivered ones are those indicated, in
    // order, less what a full queue dropped; each whole.
    back.dropped = dropped > 0;
    while back.read < delivered && back.next < sent.len() {
        if !back.read_once(c, i, &h, &sent, 1 << 20) {
            break;
        }
    }
    if back.read != delivered {
        c.problem(format!("flood of {}: {} frames read back of {delivered} delivered", c.names[i], back.read));
    }
    c.rx.flooded.fetch_add(back.read, Ordering::Relaxed);
    close(h, false);
}

/// What the flood's reads got so far: the next frame indicated they may
/// find, the frames read, and whether some were dropped (then those read
/// may skip frames indicated).
struct Back {
    next: usize,
    read: u64,
    dropped: bool,
}

impl Back {
    /// One read of `len` bytes, its records checked against `sent`; false
    /// when it got nothing (or waited: a problem, frames being queued).
    fn read_once(&mut self, c: &Ctx<'_>, i: usize, h: &Handle, sent: &[&[u8]], len: usize) -> bool {
        let Ok(t) = h.read_async(len) else { return false };
        let Some(res) = t.wait_for(c.watchdog) else {
            c.problem(format!("flood of {}: a read waited with frames queued", c.names[i]));
            t.cancel();
            let _ = t.wait_for(c.watchdog);
            return false;
        };
        let Ok(recs) = FrameRecords::new_checked(&res.data).map(|r| r.iter().collect::<Vec<_>>()) else {
            c.problem(format!("flood of {}: a read's records are malformed", c.names[i]));
            return false;
        };
        if res.status != 0 || recs.is_empty() {
            return false;
        }
        for (hd, d) in recs {
            self.read += 1;
            if let Err(e) = frames::check(d, hd.origlen as usize) {
                c.problem(format!("flood of {}: record {}: {e}", c.names[i], self.read));
                self.next = sent.len();
                return false;
            }
            // Its place among those indicated: the next (or, frames
            // dropped, a later one). A record cut by the read's room is
            // matched by its first bytes.
            let cut = (hd.caplen as usize) < hd.origlen as usize;
            let same =
                |f: &&[u8]| f.len() == hd.origlen as usize && (f[..d.len()] == *d) && (cut || f.len() == d.len());
            match sent[self.next..].iter().position(same) {
                Some(k) if self.dropped || k == 0 => self.next += k + 1,
                _ => {
                    c.problem(format!(
                        "flood of {}: record {} ({} bytes of {}) is not the next frame indicated (frame {} of {})",
                        c.names[i],
                        self.read,
                        d.len(),
                        hd.origlen,
                        self.next,
                        sent.len()
                    ));
                    self.next = sent.len();
                    return false;
                }
            }
        }
        true
    }
}
