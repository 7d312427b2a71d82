//! The accounts, checked when a schedule ends.
//!
//! Sends: whatever happened, every frame rawnic counts as sent on a binding
//! is one NDIS gave back with NDIS_STATUS_SUCCESS, and each that NDIS
//! failed is among the errors rawnic counts (which also hold frames it
//! never gave NDIS, such as a zero-copy chain a pause stopped).
//!
//! Receives: no frame a handle took is lost. Every frame rawnic counts as
//! delivered to an open handle's queue was read back through it or is
//! still queued, whatever reads were cancelled, cut short, raced by pauses
//! or served from retained NBLs on the way.

use super::{Ctx, close, lock};
use ndisim::Handle;
use rawnic_proto::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Checks every bound adapter's binding through a handle opened for it;
/// returns how many were checked (a handle that cannot be opened, as under
/// low resources, skips its binding).
pub(super) fn check(c: &Ctx<'_>) -> u64 {
    let mut checked = 0;
    for (i, &a) in c.adapters.iter().enumerate() {
        super::progressed();
        // What NDIS still has (late completions) comes back first.
        let mut waited = Duration::ZERO;
        let idle = loop {
            match c.sim.binding_sends(a) {
                None => break false,
                Some((_, _, 0)) => break true,
                Some(_) if waited >= c.watchdog => break false,
                Some(_) => {
                    c.sim.sleep(Duration::from_millis(5));
                    waited += Duration::from_millis(5);
                }
            }
        };
        if !idle {
            continue;
        }
        let stats = match binding_stats(c, i) {
            Ok(s) => s,
            Err(NtStatus::OBJECT_NAME_NOT_FOUND)
                if matches!(c.sim.binding_state(a), ndisim::BindingState::Paused | ndisim::BindingState::Running) =>
            {
                // NDIS has the adapter bound (nothing moves any more), yet
                // rawnic has no binding by that name: no handle could ever
                // open it.
                c.problem(format!(
                    "{} is bound ({:?} to NDIS), but rawnic does not list it: an OPEN of it fails OBJECT_NAME_NOT_FOUND",
                    c.names[i],
                    c.sim.binding_state(a)
                ));
                continue;
            }
            Err(_) => continue,
        };
        let Some((ok, failed, _)) = c.sim.binding_sends(a) else { continue };
        let s = stats.binding;
        if s.tx_frames != ok || s.tx_errors < failed || s.tx_in_flight != 0 {
            c.problem(format!(
                "send accounts of {}: rawnic counts {} sent, {} errors, {} in flight; NDIS gave back {ok} frames sent and {failed} failed, and holds none",
                c.names[i], s.tx_frames, s.tx_errors, s.tx_in_flight
            ));
        }
        checked += 1;
    }
    checked
}

/// Checks the handles left open (`Ctx::survivors`) once nothing moves any
/// more, and closes them; returns how many were checked (a handle that is
/// not open on a binding, as after an unbind, has no accounts to check),
/// and the frames their full queues dropped.
pub(super) fn check_receives(c: &Ctx<'_>) -> (u64, u64) {
    // Frames a pair or a loopback adapter still carries arrive first.
    for &a in &c.adapters {
        c.sim.settle(a);
    }
    // While every handle left is still open: the adapters' lists (under
    // low resources, the shortage ends there, until these checks are
    // done).
    let lowres = c.sim.alloc_failures() > 0;
    super::unions::check(c);
    // Refusals that last into the teardown (`lasting.rs`) and may still
    // come leave the probe and the handles' accounts out: each needs
    // memory. The handles close all the same.
    let short = super::lasting::refusing(c);
    // Before the accounts: frames each handle must get (the probe's
    // requests ask for no filter the checks below do not ask for).
    if !short {
        super::probe::check(c);
    }
    let (mut checked, mut drops) = (0, 0);
    for h in std::mem::take(&mut *lock(&c.survivors)) {
        super::progressed();
        if short {
            drain_events(c, &h);
            close(h, false);
            continue;
        }
        let file = h.file();
        let stats = h.ioctl(IOCTL_RAWNIC_GET_STATS, &super::handles::empty(), StatsReply::LEN);
        if let (Some(file), 0, Ok(s)) = (file, stats.status, StatsReply::parse(&stats.data)) {
            let read = lock(&c.reads_by_file).get(&file).copied().unwrap_or(0);
            if s.handle.rx_frames != read + u64::from(s.queued_frames) {
                c.problem(format!(
                    "receive accounts of handle {h:?}: rawnic counts {} frames delivered to it, but {read} were read back and {} are queued",
                    s.handle.rx_frames, s.queued_frames
                ));
            }
            checked += 1;
            drops += s.handle.rx_queue_drops;
            // What no reader came for: read back and checked, every record.
            c.rx.drained.fetch_add(super::handles::read_queued(c, &h, s.queued_frames), Ordering::Relaxed);
            check_filter(c, &h, file, s.effective_filter);
            check_granted(c, &h, file, s);
            check_groups(c, file);
        }
        drain_events(c, &h);
        close(h, false);
    }
    if lowres {
        c.sim.resume_low_resources();
    }
    (checked, drops)
}

/// A handle left open on a Running binding (its GET_STATS just asked for
/// any filter the adapter owes): the adapter's packet filter comes to take
/// in every bit the handle was told it gets. Under low resources too: a
/// set that failed for want of memory (or could not be sent) leaves the
/// filter owed, and the handle must be told it gets only what the
/// adapter's filter takes meanwhile (`stats_flags::FILTER_PENDING`). On an adapter that
/// fails every packet-filter set (`oid-fail=0x1010e`) no driver can set
/// it, and the handle must be told it gets only what the adapter's filter
/// takes (rawnic's `FILTER_FAILED`).
fn check_filter(c: &Ctx<'_>, h: &Handle, file: (usize, u64), effective: PacketFilter) {
    let Some(i) = lock(&c.adapter_by_file).get(&file).copied() else { return };
    let a = c.adapters[i];
    if effective.is_empty() {
        return;
    }
    let mut waited = Duration::ZERO;
    let mut effective = effective;
    loop {
        if c.sim.binding_state(a) != ndisim::BindingState::Running {
            return;
        }
        let set = c.sim.adapter_filter(a).map_or(0, |f| f.1);
        if waited > Duration::ZERO {
            // The handle may have lost bits meanwhile (a set its GET_STATS
            // asked for, refused): what it is told now.
            let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &super::handles::empty(), StatsReply::LEN);
            match (r.status, StatsReply::parse(&r.data)) {
                (0, Ok(s)) => effective = s.effective_filter,
                _ => return,
            }
        }
        if rawnic_proto::filter::covers(PacketFilter::from_bits_retain(set)).contains(effective) {
            return;
        }
        if waited >= c.watchdog {
            // What led here: the sets the driver asked for, the PnP events
            // the binding had, and the driver's last words.
            let sets = c
                .sim
                .oid_log(a, false)
                .iter()
                .filter(|&&(kind, oid)| {
                    kind == ndis_sys::NdisRequestSetInformation && oid == ndis_sys::OID_GEN_CURRENT_PACKET_FILTER
                })
                .count();
            let pnp = c.sim.pnp_log(a, false);
            let out = c.sim.debug_output();
            let tail = &out[out.len().saturating_sub(6)..];
            c.problem(format!(
                "packet filter of {}: handle {h:?} was told it gets {effective:#x}, but the adapter's filter is {set:#x} ({sets} packet-filter sets asked for; PnP events {pnp:?}; the driver's last output {tail:?})",
                c.names[i]
            ));
            return;
        }
        c.sim.sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
}

/// A RESTARTED event of a binding whose adapter a listing named carries
/// an MTU that adapter had.
fn check_restart_mtu(c: &Ctx<'_>, file: (usize, u64), e: &rawnic_proto::EventRecord) {
    let Some(i) = lock(&c.binding_adapters).get(&e.binding_id).copied() else { return };
    let Some(spec) = spec_of(c, i) else { return };
    let mtus = super::oid_answers::had(c, i, &spec).0;
    c.restart_mtus.fetch_add(1, Ordering::Relaxed);
    if !mtus.contains(&e.mtu) {
        c.problem(format!(
            "events of file {file:?}: binding {} of {} restarted with an MTU of {}, none its adapter had ({mtus:?}) (event {})",
            e.binding_id, c.names[i], e.mtu, e.seq
        ));
    }
}

/// Adapter `i`'s spec, as the schedule gives it; `None` when it cannot be
/// read.
pub(super) fn spec_of(c: &Ctx<'_>, i: usize) -> Option<ndisim::AdapterSpec> {
    crate::schedule::adapter_spec(&c.sched.adapters, i)
        .and_then(|s| ndisim::AdapterSpec::parse(s).ok())
        .and_then(|v| v.into_iter().next())
}

/// The filters adapter `i` of `spec` allows now: those its miniport
/// supports (its spec's until a restart changed them) less those it
/// refuses (`filter::allowed`).
pub(super) fn allowed_now(c: &Ctx<'_>, i: usize, spec: &ndisim::AdapterSpec) -> PacketFilter {
    let supported = c.sim.adapter_supported_filters(c.adapters[i]).unwrap_or(spec.supported_filters);
    filter::allowed(PacketFilter::from_bits_retain(supported), PacketFilter::from_bits_retain(spec.refused_filters))
}

/// A handle left open on a Running binding is told, in the end, that it
/// gets the filter it asked for less only what the adapter does not allow
/// (its supported filters less the bits it refuses, `filters=` and
/// `refuse-filter=`, with their fallback: `filter::effective`). A bit the
/// adapter takes but the driver banned is caught here: promiscuous mode
/// put down to a refusal of all-multicast, or a bit banned for a set that
/// failed for another reason. Not on adapters that fail every filter set
/// (`oid-fail=0x1010e`: the handle is told what the adapter gets
/// meanwhile), nor while the filter is owed (`FILTER_PENDING`) at the
/// end of the wait: each GET_STATS asks for it again.
fn check_granted(c: &Ctx<'_>, h: &Handle, file: (usize, u64), stats: StatsReply) {
    let Some(i) = lock(&c.adapter_by_file).get(&file).copied() else { return };
    let a = c.adapters[i];
    let Some(spec) = spec_of(c, i) else { return };
    if spec.failing_oids.contains(&ndis_sys::OID_GEN_CURRENT_PACKET_FILTER) {
        return;
    }
    let mut s = stats;
    let mut waited = Duration::ZERO;
    loop {
        if c.sim.binding_state(a) != ndisim::BindingState::Running {
            return;
        }
        // What the miniport supports may change at each restart: what is
        // owed is judged against the filters of the moment.
        let allowed = allowed_now(c, i, &spec);
        let want = filter::effective(stats.requested_filter, allowed);
        if s.effective_filter.contains(want) {
            c.filters_granted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Owed on an adapter in low power with its bindings running
        // (`pause-on-suspend=off`): every set fails there until D0, so
        // waiting tells nothing (a watchdog a handle made an end with
        // many handles last minutes).
        if s.flags & stats_flags::FILTER_PENDING != 0 && super::unions::in_low_power(c, a) {
            return;
        }
        if waited >= c.watchdog {
            if s.flags & stats_flags::FILTER_PENDING == 0 {
                let out = c.sim.debug_output();
                let tail = &out[out.len().saturating_sub(6)..];
                c.problem(format!(
                    "packet filter of {}: handle {h:?} asked for {:#x} and is told it gets {:#x}, without {:#x}, which the adapter allows (it allows {:#x}: supported {:#x}, refused {:#x}; the adapter's filter {:#x}, {} of its sets failed; the driver's last output {tail:?})",
                    c.names[i],
                    stats.requested_filter.bits(),
                    s.effective_filter.bits(),
                    want.difference(s.effective_filter).bits(),
                    allowed.bits(),
                    c.sim.adapter_supported_filters(a).unwrap_or(spec.supported_filters),
                    spec.refused_filters,
                    c.sim.adapter_filter(a).map_or(0, |f| f.1),
                    c.sim.filter_sets_failed(a),
                ));
            }
            return;
        }
        c.sim.sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
        let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &super::handles::empty(), StatsReply::LEN);
        match (r.status, StatsReply::parse(&r.data)) {
            (0, Ok(n)) => s = n,
            _ => return,
        }
    }
}

/// A handle left open whose last multicast list that succeeded holds
/// groups: the adapter's list comes to hold them too (the driver sets
/// the union of its handles' lists, again when a set of it went stale).
/// Not checked when a set of the adapter's list failed: a set of the
/// union that failed is tried again only at the next change or restart.
/// After allocations were refused, only on a binding restarted once the
/// shortage ended (`unions::settle`; it stays ended until these checks
/// are done). Nor on an adapter its last power event left out of D0 with
/// its binding running (`pause-on-suspend=off`): no set may go there
/// until D0, and the union stays owed (as the packet filter's check).
fn check_groups(c: &Ctx<'_>, file: (usize, u64)) {
    let Some(mask) = super::joins::known(c, file) else { return };
    let Some(i) = lock(&c.adapter_by_file).get(&file).copied() else { return };
    let a = c.adapters[i];
    if mask == 0
        || c.sim.multicast_sets_failed(a) > 0
        || (c.sim.alloc_failures() > 0 && !lock(&c.settled).contains(&i))
        || super::unions::in_low_power(c, a)
    {
        return;
    }
    let groups: Vec<[u8; 6]> = (0..8).filter(|b| mask & (1 << b) != 0).map(crate::frames::group).collect();
    let mut waited = Duration::ZERO;
    loop {
        if c.sim.binding_state(a) != ndisim::BindingState::Running {
            return;
        }
        let list = c.sim.adapter_filter(a).map(|f| f.2).unwrap_or_default();
        if groups.iter().all(|g| list.contains(g)) {
            c.groups_checked.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if waited >= c.watchdog {
            c.problem(format!(
                "multicast list of {}: a handle joined {groups:02x?} (its set succeeded, and it is still open), but the adapter's list is {list:02x?}",
                c.names[i]
            ));
            return;
        }
        c.sim.sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
}

/// The binding counters of adapter `i`, through a new handle.
/// A binding's statistics, through a handle opened on it; `Err` with the
/// OPEN's status when it failed (`INSUFFICIENT_RESOURCES` when no handle
/// could even be made).
fn binding_stats(c: &Ctx<'_>, i: usize) -> Result<StatsReply, NtStatus> {
    let h: Handle = c.sim.open().map_err(|_| NtStatus::INSUFFICIENT_RESOURCES)?;
    let open = super::probe_handles::plain(&c.names[i], PacketFilter::NONE);
    let mut input = vec![0u8; open.wire_len()];
    open.emit(&mut input).map_err(|_| NtStatus::INVALID_PARAMETER)?;
    let empty = super::handles::empty();
    let opened = h.ioctl(IOCTL_RAWNIC_OPEN, &input, OpenReply::LEN).status;
    let stats = if opened != 0 {
        Err(NtStatus(opened))
    } else {
        let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &empty, StatsReply::LEN);
        if r.status == 0 {
            StatsReply::parse(&r.data).map_err(|_| NtStatus::INVALID_PARAMETER)
        } else {
            Err(NtStatus(r.status))
        }
    };
    h.close();
    stats
}

/// The order of the pause and restart events each handle heard: per
/// binding, PAUSED and RESTARTED alternate (a binding is paused, then
/// restarted, then paused...), from one event to the next in the handle's
/// sequence (`seq`); a gap in it (an event lost, or one this harness did
/// not read) or a BOUND or UNBOUND starts over. No event is heard twice.
/// A `FILTER_FAILED` event says what the handle gets (`filter`) and misses
/// (`refused`, not none) of what it asked for, two disjoint sets, and
/// follows a packet-filter set its adapter failed: a handle is told once
/// per failure at most, so no more of them than the adapter failed sets.
/// Returns how many events were checked against the one before them, and
/// how many `FILTER_FAILED` events were judged.
pub(super) fn check_events(c: &Ctx<'_>) -> (u64, u64) {
    use rawnic_proto::event;
    // The link oracle needs every event the watcher had.
    let watcher_read = c.watcher.as_ref().is_some_and(|w| drain_events(c, w));
    // The bindings of now, judged and mapped to their adapters (for the
    // restart events' MTUs).
    if let Some(w) = &c.watcher {
        super::handles::list_judged(c, w, 64 * 1024);
    }
    let mut checked = 0;
    let watcher = c.watcher.as_ref().and_then(|w| w.file());
    // The watcher's last link event per binding, while its events run on
    // without a gap.
    let mut link_told: HashMap<u32, u16> = HashMap::new();
    let mut failed_told = 0;
    for (file, mut evs) in std::mem::take(&mut *lock(&c.events_by_file)) {
        evs.sort_by_key(|e| e.seq);
        failed_told += check_filter_failed(c, file, &evs);
        let mut last: HashMap<u32, (u16, u64)> = HashMap::new();
        let mut prev: Option<u64> = None;
        let is_watcher = Some(file) == watcher;
        // While the watcher's events run from its first without a gap, the
        // first event of each binding whose bind began after it opened is
        // BOUND.
        let mut from_start = is_watcher && evs.first().is_some_and(|e| e.seq == 1);
        let mut announced: std::collections::HashSet<u32> = std::collections::HashSet::new();
        for e in &evs {
            if prev == Some(e.seq) {
                c.problem(format!("events of file {file:?}: event {} was heard twice", e.seq));
                continue;
            }
            if prev.is_none_or(|p| p + 1 != e.seq) || e.lost != 0 {
                last.clear();
                if is_watcher {
                    link_told.clear();
                }
                from_start &= prev.is_none() && e.lost == 0;
            }
            prev = Some(e.seq);
            if from_start
                && e.kind != event::BOUND
                && !announced.contains(&e.binding_id)
                && u64::from(e.binding_id) > c.binds_before_watcher
            {
                c.problem(format!(
                    "events: the first event of binding {} the watcher heard was {} (event {}), not bound",
                    e.binding_id,
                    event::name(e.kind),
                    e.seq
                ));
            }
            announced.insert(e.binding_id);
            if is_watcher && (e.kind == event::LINK_UP || e.kind == event::LINK_DOWN) {
                link_told.insert(e.binding_id, e.kind);
            }
            match e.kind {
                event::BOUND | event::UNBOUND => {
                    last.remove(&e.binding_id);
                    if is_watcher {
                        link_told.remove(&e.binding_id);
                    }
                }
                event::PAUSED | event::RESTARTED => {
                    if e.kind == event::RESTARTED {
                        check_restart_mtu(c, file, e);
                    }
                    if let Some(&(k, at)) = last.get(&e.binding_id) {
                        if k == e.kind {
                            c.problem(format!(
                                "events of file {file:?}: binding {} was {} twice in a row (events {} and {}): a pause or restart was told out of order or left out",
                                e.binding_id,
                                event::name(e.kind),
                                at,
                                e.seq
                            ));
                        }
                        checked += 1;
                    }
                    last.insert(e.binding_id, (e.kind, e.seq));
                }
                _ => {}
            }
        }
    }
    // The last link event the watcher heard of a binding says its link
    // state now (link changes are told in the order they were recorded).
    if let (Some(w), true, false) = (&c.watcher, watcher_read, link_told.is_empty()) {
        let r = w.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &super::handles::empty(), 64 * 1024);
        if let Ok(list) = ListReply::new_checked(&r.data) {
            for e in list.entries() {
                let Some(&k) = link_told.get(&e.binding_id) else { continue };
                if (k == event::LINK_UP) != (e.link == link::UP) {
                    c.problem(format!(
                        "events: the last link event of binding {} was {}, but its link is {} (link changes told out of order)",
                        e.binding_id,
                        event::name(k),
                        e.link
                    ));
                }
                checked += 1;
            }
        }
    }
    (checked, failed_told)
}

/// `check_events`' judgement of one handle's `FILTER_FAILED` events (sorted
/// by `seq`); returns how many it judged.
fn check_filter_failed(c: &Ctx<'_>, file: (usize, u64), evs: &[rawnic_proto::EventRecord]) -> u64 {
    use rawnic_proto::event;
    let told: Vec<_> = evs.iter().filter(|e| e.kind == event::FILTER_FAILED).collect();
    for e in &told {
        if e.refused.is_empty() || e.filter.intersects(e.refused) {
            c.problem(format!(
                "events of file {file:?}: FILTER_FAILED (event {}) says the handle gets {:#x} and misses {:#x}: it must miss something, and not what it gets",
                e.seq,
                e.filter.bits(),
                e.refused.bits()
            ));
        }
    }
    let Some(i) = lock(&c.adapter_by_file).get(&file).copied() else { return told.len() as u64 };
    // Read after the schedule: every failure the events could follow has
    // been counted.
    let failed = c.sim.filter_sets_failed(c.adapters[i]);
    if told.len() as u64 > failed {
        c.problem(format!(
            "events of file {file:?}: {} FILTER_FAILED events (the first {}), but {} failed {} packet-filter sets: a handle is told once per failure at most",
            told.len(),
            told[0].seq,
            c.names[i],
            failed
        ));
    }
    told.len() as u64
}

/// Reads the events queued on `h` (those that complete a WAIT_EVENT in its
/// dispatch routine) into `events_by_file`.
/// Returns whether it read them all (under low resources a request may
/// find no IRP, or no memory, a few times in a row: it tries again).
fn drain_events(c: &Ctx<'_>, h: &Handle) -> bool {
    let Some(file) = h.file() else { return false };
    let mut refused = 0;
    for _ in 0..4096 {
        let Ok(t) = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &super::handles::empty(), EventRecord::LEN) else {
            refused += 1;
            if refused > 64 {
                return false;
            }
            continue;
        };
        let Some(r) = t.try_result() else {
            // None queued: the wait pends; take it back (an event that
            // comes meanwhile is read with it).
            t.cancel();
            return match t.wait_for(c.watchdog) {
                Some(r) if r.status == 0 => match EventRecord::parse(&r.data) {
                    Ok(e) => {
                        lock(&c.events_by_file).entry(file).or_default().push(e);
                        drain_events(c, h)
                    }
                    Err(_) => false,
                },
                Some(r) => r.status == rawnic_proto::NtStatus::CANCELLED.0,
                None => false,
            };
        };
        match EventRecord::parse(&r.data) {
            Ok(e) if r.status == 0 => lock(&c.events_by_file).entry(file).or_default().push(e),
            Err(_) if r.status == 0 => return false,
            _ => {
                refused += 1;
                if refused > 64 {
                    return false;
                }
            }
        }
    }
    false
}
