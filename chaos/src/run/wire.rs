//! The wire oracle: what reaches the adapters' wires of the frames the
//! handle threads sent with WriteFile, SEND_BATCH and their tx rings.
//!
//! The send accounts compare counts (what rawnic counts as sent against
//! what NDIS completed with success), and a frame is read back byte for
//! byte only where a loopback or a pair brings it to a handle. A driver
//! that sent one frame twice (the accounts count both), sent a stale or
//! shifted buffer on an adapter nobody reads back, or put a frame the NIC
//! indicated on the wire, passes those. Here every adapter captures what
//! its miniport takes (`Sim::set_capture`, on for the null adapters too),
//! and at the end each captured schedule frame is judged:
//!
//! - a frame a handle thread sent (its sequence number registered as it
//!   was built) must be intact (`frames::check`: marker, length and
//!   payload), and reach a wire once, on one adapter;
//! - a frame a SEND_BATCH's reply counted as not accepted must reach none
//!   (its caller sends it again);
//! - a frame the NIC actor indicated must never reach one;
//! - no frame shows a schedule frame's marker anywhere but where it
//!   belongs (`frames::shifted`: bytes sent from the wrong place of a
//!   buffer);
//! - every frame a WriteFile or a SEND_BATCH's reply said was sent
//!   reached a wire, or NDIS or the miniport failed it
//!   (`Sim::take_failed_sends`): a frame said sent and then dropped is
//!   lost;
//! - of the frames a tx ring gave back on its completion ring that no
//!   binding refuses (good descriptors, at most the least MTU long), those
//!   on no wire and not failed by NDIS are no more than the errors the
//!   attach's control block counts (the driver counts a frame a pause
//!   stopped before NDIS had it as an error; the completion ring says
//!   nothing of each frame).
//!
//! Ring users' garbage sends nothing a correct driver puts on a wire: the
//! garbage tx descriptors are ones the driver must refuse, a live tx
//! descriptor scribbled over is made one, a fill entry that could place a
//! received frame over a frame to be sent is not written, and an index
//! scribbled over (a random 32-bit value) is out of the ring's bounds, or
//! the driver's own, which it must not read back (`rings/ops.rs`). A
//! driver that trusted one would send a ring's old frames again: twice on
//! the wire.

use super::{Ctx, lock};
use crate::frames;
use crate::schedule::Dst;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the handle threads sent, as the wire oracle needs it.
#[derive(Default)]
pub(super) struct Sent {
    /// The sequence numbers of the frames built for WriteFile, SEND_BATCH
    /// and the tx rings.
    seqs: Mutex<HashSet<u32>>,
    /// Those a SEND_BATCH's reply counted as not accepted: the caller
    /// sends them again, so none may have gone.
    refused: Mutex<HashSet<u32>>,
    /// Those a WriteFile or a SEND_BATCH's reply said were sent.
    accepted: Mutex<HashSet<u32>>,
    /// Each finished attach's frames back on its completion ring, and its
    /// errors (`ring_back`).
    ring_backs: Mutex<Vec<(Vec<u32>, u64)>>,
    /// Who sent each, and how (`local.rs`).
    pub(super) by: Mutex<HashMap<u32, Sender>>,
    /// Frames said sent that were looked for on the wires
    /// (`Edges::wire_accepted`).
    pub(super) looked_for: AtomicU64,
    /// Captured frames judged (`Edges::wire_frames`).
    pub(super) judged: AtomicU64,
}

/// Who sent a frame and how, for the local-sends oracle (`local.rs`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sender {
    /// The file object it was sent on (None: a handle already closed).
    pub file: Option<(usize, u64)>,
    /// Where it is addressed.
    pub dst: Dst,
    /// The 802.1Q TCI its send asked for.
    pub tci: Option<u16>,
}

impl Sent {
    /// Frames about to be sent on file object `file` by WriteFile or
    /// SEND_BATCH, or put on a tx ring: each addressed to `dst`, with the
    /// 802.1Q TCI its send asks for.
    pub(in crate::run) fn frames<'a>(
        &self,
        file: Option<(usize, u64)>,
        dst: Dst,
        fs: impl IntoIterator<Item = (&'a [u8], Option<u16>)> + Clone,
    ) {
        note(&self.seqs, fs.clone().into_iter().map(|(f, _)| f));
        let mut by = lock(&self.by);
        for (f, tci) in fs {
            if let Some(seq) = seq(f) {
                by.insert(seq, Sender { file, dst, tci });
            }
        }
    }

    /// Whether a SEND_BATCH's reply counted frame `seq` as not accepted.
    pub(super) fn was_refused(&self, seq: u32) -> bool {
        lock(&self.refused).contains(&seq)
    }

    /// Frames a WriteFile or a SEND_BATCH's reply said were sent.
    pub(super) fn accepted<'a>(&self, fs: impl IntoIterator<Item = &'a [u8]>) {
        note(&self.accepted, fs);
    }

    /// The frames an attach's tx ring gave back on its completion ring
    /// that no binding refuses (good descriptors, no longer than the least
    /// MTU allows), and the errors its control block counts at its end
    /// (exact: no scribble).
    pub(super) fn ring_back(&self, seqs: Vec<u32>, errors: u64) {
        lock(&self.ring_backs).push((seqs, errors));
    }

    /// Frames a SEND_BATCH's reply counted as not accepted.
    pub(super) fn refused<'a>(&self, fs: impl IntoIterator<Item = &'a [u8]>) {
        note(&self.refused, fs);
    }
}

/// Adds the sequence numbers of schedule frames `fs` to `set`.
fn note<'a>(set: &Mutex<HashSet<u32>>, fs: impl IntoIterator<Item = &'a [u8]>) {
    lock(set).extend(fs.into_iter().filter_map(seq));
}

/// A schedule frame's sequence number, behind a tag it carries inline
/// (the end's probe sends such frames).
fn seq(f: &[u8]) -> Option<u32> {
    frames::seq_behind(f, &[frames::TPID_8021Q, frames::TPID_8021AD])
}

/// Every adapter captures what its miniport takes.
pub(super) fn capture(c: &Ctx<'_>) {
    for &a in &c.adapters {
        c.sim.set_capture(a, true);
    }
}

/// Judges what the adapters captured (taking it).
pub(super) fn check(c: &Ctx<'_>) {
    let captured: Vec<_> = c.adapters.iter().map(|&a| c.sim.take_captured(a)).collect();
    let failed: HashSet<u32> =
        c.adapters.iter().flat_map(|&a| c.sim.take_failed_sends(a)).filter_map(|f| seq(&f)).collect();
    let sent = lock(&c.wire.seqs);
    let refused = lock(&c.wire.refused);
    let accepted = lock(&c.wire.accepted);
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, frames) in captured.iter().enumerate() {
        let name = &c.names[i];
        for f in frames {
            // (A tag the adapter does not put on the wire itself goes into
            // the frame.)
            let Some(seq) = seq(&f.data) else {
                // Not a schedule frame where one belongs: one from the
                // wrong place in its buffer shows its marker elsewhere.
                if let Err(e) = frames::shifted(&f.data) {
                    c.problem(format!("wire: {name}: {e}"));
                }
                continue;
            };
            if sent.contains(&seq) {
                c.wire.judged.fetch_add(1, Ordering::Relaxed);
                if refused.contains(&seq) {
                    c.problem(format!(
                        "wire: {name}: frame {seq} reached the wire, but its SEND_BATCH's reply counted it as not accepted (its caller sends it again)"
                    ));
                }
                if let Err(e) = frames::check(&f.data, f.data.len()) {
                    c.problem(format!("wire: {name}: frame {seq}, which a handle sent, reached the wire changed: {e}"));
                }
                match seen.insert(seq, i) {
                    Some(j) if j == i => c.problem(format!(
                        "wire: {name}: frame {seq}, which a handle sent once, reached the wire twice"
                    )),
                    Some(j) => c.problem(format!(
                        "wire: frame {seq}, which a handle sent once, reached the wires of both {} and {name}",
                        c.names[j]
                    )),
                    None => {}
                }
            } else if c.rx.was_injected(seq) {
                c.problem(format!(
                    "wire: {name}: frame {seq}, which the NIC indicated to the driver, went out on the wire"
                ));
            }
        }
    }
    // On no wire, and not among the sends NDIS or the miniport failed.
    let missing = |s: &u32| !seen.contains_key(s) && !failed.contains(s);
    for (seqs, errors) in lock(&c.wire.ring_backs).iter() {
        c.wire.looked_for.fetch_add(seqs.len() as u64, Ordering::Relaxed);
        let lost: Vec<u32> = seqs.iter().copied().filter(missing).collect();
        if lost.len() as u64 > *errors {
            c.problem(format!(
                "wire: {} of the {} frames a tx ring gave back reached no wire, and NDIS failed none of them, but the attach counts {errors} errors (the first: {:?})",
                lost.len(),
                seqs.len(),
                &lost[..lost.len().min(8)]
            ));
        }
    }
    let mut lost: Vec<u32> = accepted.iter().copied().filter(missing).collect();
    c.wire.looked_for.fetch_add(accepted.len() as u64, Ordering::Relaxed);
    if !lost.is_empty() {
        lost.sort_unstable();
        c.problem(format!(
            "wire: {} of the {} frames WriteFile or SEND_BATCH said were sent reached no wire, and NDIS failed none of them (the first: {:?})",
            lost.len(),
            accepted.len(),
            &lost[..lost.len().min(8)]
        ));
    }
}
