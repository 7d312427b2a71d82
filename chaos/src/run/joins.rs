//! What the explorer knows of each handle's multicast list, for two
//! oracles: the groups whose frames a handle may get
//! (`check_group`), and the group the adapter's list must hold
//! once the schedule is quiet (`accounts::check_groups`).
//!
//! A join (`gen/joins.rs`) counts from when it is sent: the driver's list
//! is the new one from then on. The list a handle has is known when its
//! last join succeeded, or failed (whatever the status: no IRP, no memory,
//! cancelled, DEVICE_BUSY, or a failure of the adapter's) while the list
//! before it was known: the driver gives the handle its old list back on
//! every failure (`multicast_undo`, or the list never changed), and a
//! handle has one set on its way at a time, so the old list is the one the
//! join was sent over. A join still on its way leaves it unknown, and so
//! does any other set of the list on the handle (garbage, or the main
//! draws' made-up groups) and joins from two threads on one shared handle
//! (the driver may take them in the other order).

use super::{Ctx, lock};
use std::sync::atomic::Ordering;
use std::thread::ThreadId;

#[derive(Debug, Default)]
pub(super) struct Joins {
    /// The groups of every list asked for, or-ed.
    asked: u8,
    /// Joins sent, the thread of the last, and whether the list is beyond
    /// telling.
    sent: u64,
    thread: Option<ThreadId>,
    tainted: bool,
    /// The handle's list, when known.
    known: Option<u8>,
    /// The list before the last join sent, when known (it comes back if
    /// that join fails).
    prior: Option<u8>,
}

/// A join of `groups` is about to be sent on `file`; returns its number.
pub(super) fn sent(c: &Ctx<'_>, file: (usize, u64), groups: u8) -> u64 {
    let mut all = lock(&c.joins_by_file);
    let j = all.entry(file).or_default();
    let me = std::thread::current().id();
    if j.thread.is_some_and(|t| t != me) {
        j.tainted = true;
    }
    j.thread = Some(me);
    // A handle that never set a list has none.
    j.prior = if j.tainted {
        None
    } else if j.sent == 0 {
        Some(0)
    } else {
        j.known
    };
    j.asked |= groups;
    j.sent += 1;
    j.known = None;
    j.sent
}

/// Join number `seq` of `file` failed (the request was never made, or
/// the driver refused or failed it): the handle has its list from before
/// the join again.
pub(super) fn failed(c: &Ctx<'_>, file: (usize, u64), seq: u64) {
    let mut all = lock(&c.joins_by_file);
    let j = all.entry(file).or_default();
    if j.sent == seq && !j.tainted {
        j.known = j.prior;
    }
}

/// Join number `seq` of `file`, of `groups`, succeeded.
pub(super) fn succeeded(c: &Ctx<'_>, file: (usize, u64), groups: u8, seq: u64) {
    c.joins.fetch_add(1, Ordering::Relaxed);
    let mut all = lock(&c.joins_by_file);
    let j = all.entry(file).or_default();
    if j.sent == seq && !j.tainted {
        j.known = Some(groups);
    }
}

/// Join number `seq` of `file` completed with `r`: one that failed (the
/// request, or the set at the adapter) gives the handle its old list back.
pub(super) fn replied(c: &Ctx<'_>, file: (usize, u64), seq: u64, r: &ndisim::IoResult) {
    let set_failed = rawnic_proto::OidReplyHeader::parse(&r.data, false).is_ok_and(|(h, _)| h.ndis_status != 0);
    if r.status != 0 || set_failed {
        failed(c, file, seq);
    }
}

/// Something else set `file`'s list (or may have).
pub(super) fn taint(c: &Ctx<'_>, file: (usize, u64)) {
    let mut all = lock(&c.joins_by_file);
    let j = all.entry(file).or_default();
    j.tainted = true;
    j.known = None;
    j.prior = None;
}

/// The groups `file` ever asked for.
pub(super) fn asked(c: &Ctx<'_>, file: (usize, u64)) -> u8 {
    lock(&c.joins_by_file).get(&file).map_or(0, |j| j.asked)
}

/// `file`'s list, when known.
pub(super) fn known(c: &Ctx<'_>, file: (usize, u64)) -> Option<u8> {
    lock(&c.joins_by_file).get(&file).and_then(|j| j.known)
}

/// `file`'s list as the adapter's union counts it: its known list, none
/// when it never set one, `None` when the explorer cannot tell.
pub(super) fn in_union(c: &Ctx<'_>, file: (usize, u64)) -> Option<u8> {
    match lock(&c.joins_by_file).get(&file) {
        None => Some(0),
        Some(j) => j.known,
    }
}

/// Whether a file object that set (or may have set) a list has no
/// adapter the explorer knows of: one opened by a damaged or raced OPEN
/// (`IoAction::Mutated`, `IoAction::RaceCancel`), which the harness does
/// not place.
pub(super) fn any_unplaced(c: &Ctx<'_>) -> bool {
    let files: Vec<(usize, u64)> =
        lock(&c.joins_by_file).iter().filter(|(_, j)| j.asked != 0 || j.tainted).map(|(f, _)| *f).collect();
    let placed = lock(&c.adapter_by_file);
    files.iter().any(|f| !placed.contains_key(f))
}

/// The multicast oracle: a handle whose filter has MULTICAST but neither
/// ALL_MULTICAST nor PROMISCUOUS takes only the groups on its own list.
/// The group the explorer's frames go to (`Dst::Multicast`, `frames::group(0)`)
/// is on a handle's list only if the handle asked for a list with it (a
/// join, `gen/joins.rs`; it may have left since, with frames of the
/// group still queued): a handle that never did must never read one of
/// them, whatever groups the adapter lets through for the others.
pub(super) fn check_group(c: &Ctx<'_>, via: &str, file: (usize, u64), frame: &[u8]) {
    use rawnic_proto::filter as pf;
    let Some(f) = lock(&c.filter_by_file).get(&file).copied().map(rawnic_proto::PacketFilter::from_bits_retain) else {
        return;
    };
    let asked = asked(c, file);
    if f.contains(pf::MULTICAST)
        && asked & 1 == 0
        && !f.intersects(pf::ALL_MULTICAST | pf::PROMISCUOUS)
        && frame.len() >= 6
        && frame[..6] == crate::frames::dst_addr(crate::schedule::Dst::Multicast, [0; 6])
    {
        c.problem(format!(
            "{via}: a handle whose filter is {:#x} (MULTICAST without ALL_MULTICAST) got a frame to a group not on its list",
            f.bits()
        ));
    }
}
