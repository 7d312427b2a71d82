//! GET_STATS judged: a handle's counters are at least what its user
//! already has (frames read or taken off its rx ring, and their bytes;
//! frames its sends handed over), its binding's at least the frames NDIS
//! indicated of those, and no counter but the sends in flight ever goes
//! down between two replies on one handle, the second asked after the
//! first came back.

use super::super::{Ctx, lock};
use super::empty;
use ndisim::Handle;
use rawnic_proto::*;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file object, as `IoToken::file` names it.
type File = (usize, u64);

/// What the replies of each file object's GET_STATS said, for the
/// counters' order.
#[derive(Default)]
pub(in super::super) struct Seen {
    /// Each file object's latest reply to come back: when (`ticks`), and
    /// its handle's and binding's counters.
    latest: Mutex<HashMap<File, (u64, Counters, Counters)>>,
    /// A clock of GET_STATS asked and come back.
    ticks: AtomicU64,
    /// Pairs of replies whose counters were compared.
    pub(in super::super) compared: AtomicU64,
}

/// A GET_STATS on `h`, and its reply judged.
pub(super) fn stats(c: &Ctx<'_>, h: &Handle) {
    // Frames the handle's user already has (read, or taken off an rx
    // ring), and frames its sends handed over: rawnic counts a frame
    // before a reader can find it, and a sent one stays counted (in
    // flight, then sent or failed), so its GET_STATS, asked after, counts
    // at least these.
    let of = |m: &Mutex<HashMap<File, u64>>, f| lock(m).get(&f).copied().unwrap_or(0);
    let had = h.file().map(|f| {
        (
            of(&c.reads_by_file, f) + of(&c.ring_rx_by_file, f),
            of(&c.sent_by_file, f),
            of(&c.wire_by_file, f),
            of(&c.bytes_by_file, f),
        )
    });
    let asked = c.stats_seen.ticks.fetch_add(1, Ordering::AcqRel);
    let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN);
    let back = c.stats_seen.ticks.fetch_add(1, Ordering::AcqRel);
    c.completions.fetch_add(1, Ordering::Relaxed);
    if r.status != 0 {
        return;
    }
    let st = match StatsReply::parse(&r.data) {
        Ok(st) => st,
        Err(e) => return c.problem(format!("stats: a malformed reply: {e:?}")),
    };
    let k = st.handle;
    let (got, sent, wire, bytes) = had.unwrap_or_default();
    if k.rx_frames < got {
        c.problem(format!(
            "stats: the handle's user has {got} frames (read or off its rx ring), but its GET_STATS counts {} delivered",
            k.rx_frames
        ));
    }
    if k.rx_bytes < bytes {
        c.problem(format!(
            "stats: the handle's user has frames of {bytes} bytes on the wire (read or off its rx ring), but its GET_STATS counts {} bytes delivered",
            k.rx_bytes
        ));
    }
    // The binding counts what NDIS indicates before any handle has it (its
    // handles live and die with it).
    if st.binding.rx_frames < wire {
        c.problem(format!(
            "stats: the handle's user has {wire} frames NDIS indicated, but its binding's GET_STATS counts {} received",
            st.binding.rx_frames
        ));
    }
    let out = k.tx_frames + k.tx_errors + k.tx_in_flight;
    if out < sent {
        c.problem(format!(
            "stats: the handle handed {sent} frames to rawnic, but its GET_STATS counts {out} (sent {}, failed {}, in flight {})",
            k.tx_frames, k.tx_errors, k.tx_in_flight
        ));
    }
    if let Some(f) = h.file() {
        in_order(c, f, asked, back, &st);
    }
}

/// The cumulative counters of `k`, named: all but the sends in flight.
/// (Sent, failed and in flight together may count a send twice for a
/// moment, the one completing as it is read, never less than were handed
/// over; so their sum is no counter.)
fn cumulative(k: &Counters) -> [(&'static str, u64); 7] {
    [
        ("rx_frames", k.rx_frames),
        ("rx_bytes", k.rx_bytes),
        ("rx_queue_drops", k.rx_queue_drops),
        ("rx_truncated", k.rx_truncated),
        ("tx_frames", k.tx_frames),
        ("tx_bytes", k.tx_bytes),
        ("tx_errors", k.tx_errors),
    ]
}

/// No cumulative counter of file object `f`'s handle or binding is lower
/// in a reply (asked at tick `asked`, back at `back`) than in the latest
/// reply that came back before it was asked. (Replies that overlap are
/// in no known order; the handle stays on one binding for its life.)
fn in_order(c: &Ctx<'_>, f: File, asked: u64, back: u64, st: &StatsReply) {
    let seen = &c.stats_seen;
    let mut latest = lock(&seen.latest);
    if let Some((_, handle, binding)) = latest.get(&f).copied().filter(|l| l.0 < asked) {
        seen.compared.fetch_add(1, Ordering::Relaxed);
        for (whose, before, now) in [("handle", &handle, &st.handle), ("binding", &binding, &st.binding)] {
            for ((name, was), (_, is)) in cumulative(before).into_iter().zip(cumulative(now)) {
                if is < was {
                    c.problem(format!(
                        "stats: the {whose}'s {name} went down from {was} to {is} between two GET_STATS of one handle (the second asked after the first came back)"
                    ));
                }
            }
        }
    }
    if latest.get(&f).is_none_or(|l| l.0 < back) {
        latest.insert(f, (back, st.handle, st.binding));
    }
}
