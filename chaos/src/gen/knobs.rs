//! Six of ndisim's test knobs, as actions, from a stream of their own
//! (drawn after every other pass, so each seed keeps the rest of the
//! schedule it had, and after the swarm, which never leaves them out):
//!
//! - **work items held** (`NicAction::HoldWorkItems`): the system worker
//!   thread is busy for 10 to 150 ms, so what the driver does only from
//!   its work items (a pause's or a restart's completion, a retry)
//!   waits, while PnP events, closes and requests come;
//! - **D0 held** (`PnpAction::HeldD0`): an adapter goes to D3, and its
//!   return to D0 is held for 10 to 150 ms between its restart and its
//!   `NetEventSetPower` for D0: the binding runs and the driver still
//!   believes it is in low power, while the handle threads make OID
//!   requests, opens and closes on that adapter;
//! - **allocations stalled** (`NicAction::StallAllocations`): every pool
//!   allocation of one size stalls inside `ExAllocatePoolWithTag` for 10
//!   to 120 ms: a size the schedule's own OID requests make the driver
//!   allocate (a query's answer buffer, a multicast list's copy), or one
//!   of the sizes of the driver's live pool blocks when the spell begins
//!   (its binding, file and request blocks); half the spells a handle
//!   thread casts (`IoAction::StallAllocations`) right before requests of
//!   its own, and they end by themselves, so that thread's requests are
//!   the ones held inside the call while the other threads run;
//! - **cancels on threads nobody waits for** (`IoAction::CancelAway`):
//!   reads left pending, then cancelled each from a
//!   thread of its own, the next cancel routine stalled at its first lock
//!   (none in one in five, 1 to 300 ms in two, 1 to 4 s in two), often
//!   right before the handle closes or at the end of the thread's list:
//!   the routine may still run when the IRP completes another way, the
//!   handle closes, and the driver unloads;
//! - **a handler stalled before one of its locks**
//!   (`PnpAction::StallLockAcquire`, right before a PnP event): the `nth`
//!   (1 to 4, now and then up
//!   to 8) spin-lock acquire a thread makes inside one of the handlers
//!   ndisim knows (a `Protocol*` handler, a dispatch routine, the work
//!   item's or a cancel routine) stalls for 1 to 40 ms before it takes
//!   the lock, holding the ones it holds, while the PnP actor's events,
//!   the handle threads' requests and closes and the NIC's completions
//!   run: the shape of the races reviews found by sweeping one handler's
//!   acquires by hand. Not drawn where the schedule aims such a stall
//!   itself (an OPEN racing an unbind, a cancel away): one aim at a time.
//! - **a handler stalled at one of its calls** (`PnpAction::StallCall`,
//!   right before a PnP event, as the lock's): the `nth` (1 to 3, now and
//!   then up to 8) call of one export (one the run has seen the driver
//!   call inside that handler: a hand-over, a lock's release, an
//!   allocation, a free), or the 1st to 256th call of any, inside one
//!   handler stalls its thread for 1 to 40 ms, after the export's body
//!   three times in four (before it otherwise): the thread
//!   has just completed an IRP, sent or returned NBLs, completed a PnP
//!   event or let a lock go, and waits before its next instruction while
//!   the receiver of what it handed over finishes with it. The
//!   deterministic scheduler switches only at an export's entry, so no
//!   other draw opens that window there. Its own aim, beside the lock's.
//!
//! Each is bounded in time and ended by the actor that began it (the NIC
//! actor ends any left as its list ends), so the end checks run with
//! every work item, allocation and return to D0 let go; only the cancel
//! routines' stalls may last into the teardown, which joins them.

use super::Profile;
use crate::schedule::*;
use ndisim::rng::Rng;

/// `GenOptions::knobs`'s default: each knob at the odds `odds` gives.
pub const KNOBS_PER_CENT: u32 = 100;

/// Per mille of the schedules that draw each knob in `profile`: work
/// items held, D0 held, allocations stalled, cancels away, a handler's
/// lock acquire stalled, a handler's call stalled.
pub fn odds(profile: Profile) -> [u32; 6] {
    match profile {
        Profile::Teardown => [400, 350, 400, 500, 500, 500],
        Profile::OidStorm => [250, 250, 450, 300, 400, 400],
        Profile::Mixed => [350, 300, 300, 300, 400, 400],
        Profile::RetainStorm | Profile::SendStorm => [350, 100, 150, 150, 400, 450],
        Profile::Crowd => [250, 200, 200, 300, 300, 300],
        _ => [150, 100, 150, 150, 300, 300],
    }
}

/// Adds the knobs' actions to the lists.
pub(super) fn knobs(
    r: &mut Rng,
    per_cent: u32,
    profile: Profile,
    pnp: &mut Vec<PnpAction>,
    nic: &mut Vec<NicAction>,
    handles: &mut [Vec<IoAction>],
    n: usize,
) {
    if per_cent == 0 || profile.is_scene() || n == 0 {
        return;
    }
    let [work, d0, alloc, away, locks, calls] = odds(profile).map(|o| (o * per_cent / 100).min(1000));
    if r.chance(work) {
        for _ in 0..r.range(1, 3) {
            let at = r.below(nic.len() as u64 + 1) as usize;
            nic.insert(at, NicAction::HoldWorkItems { ms: r.range(10, 150) as u32 });
        }
    }
    if r.chance(d0) {
        for _ in 0..r.range(1, 2) {
            held_d0(r, pnp, handles, n);
        }
    }
    if r.chance(alloc) {
        let sizes = oid_sizes(handles);
        for _ in 0..r.range(1, 3) {
            let at = r.below(1000) as usize;
            let bytes = if !sizes.is_empty() && r.chance(500) { *r.pick(&sizes) } else { 0 };
            let pick = r.below(1 << 16) as u16;
            let ms = r.range(10, 120) as u32;
            // Half the spells a handle thread casts right before its own
            // requests, and they end by themselves: under the
            // deterministic scheduler's virtual time the NIC actor's
            // spells mostly come after the handle threads are done.
            let mut cast = !r.chance(500);
            if cast {
                let j = nic.len() * at / 1000;
                nic.insert(j, NicAction::StallAllocations { bytes, pick, ms });
            }
            // Requests that allocate, at about the same point.
            let a = r.below(n as u64) as usize;
            for list in handles.iter_mut() {
                if r.chance(500) || !cast {
                    let k = list.len() * at / 1000;
                    let mut acts = super::stalls::requests(r, list, k, a);
                    if !cast {
                        acts.insert(0, IoAction::StallAllocations { bytes, pick, ms });
                        cast = true;
                    }
                    list.splice(k..k, acts);
                }
            }
        }
    }
    if r.chance(away) {
        for list in handles.iter_mut() {
            if r.chance(600) {
                cancel_away(r, list);
            }
        }
    }
    if r.chance(locks) && !aims_itself(handles) {
        for _ in 0..r.range(1, 4) {
            // Right before an event (not a sleep), or at the end.
            let events: Vec<usize> = (0..pnp.len()).filter(|&i| !matches!(pnp[i], PnpAction::Sleep { .. })).collect();
            let at = if events.is_empty() { pnp.len() } else { *r.pick(&events) };
            let handler = handler_near(r, pnp.get(at), handlers_of);
            let nth = if r.chance(800) { r.range(1, 4) } else { r.range(5, 8) } as u8;
            let ms = r.range(1, 40) as u32;
            pnp.insert(at, PnpAction::StallLockAcquire { handler, nth, ms });
        }
    }
    if r.chance(calls) {
        for _ in 0..r.range(1, 4) {
            let events: Vec<usize> = (0..pnp.len()).filter(|&i| is_event(&pnp[i])).collect();
            let at = if events.is_empty() { pnp.len() } else { *r.pick(&events) };
            let handler = handler_near(r, pnp.get(at), call_handlers_of);
            // Any export's nth call (some handlers make hundreds), or
            // one export's, of those the run has seen the handler make.
            let pick = if r.chance(350) { 0 } else { r.range(1, 1 << 12) as u16 };
            let nth = match pick {
                0 if r.chance(500) => r.range(1, 16),
                0 => r.range(17, 256),
                _ if r.chance(800) => r.range(1, 3),
                _ => r.range(4, 8),
            } as u16;
            let after = r.chance(750);
            let ms = r.range(1, 40) as u32;
            pnp.insert(at, PnpAction::StallCall { handler, pick, nth, after, ms });
        }
    }
}

/// Whether `a` is a PnP event (not a sleep or another aim).
fn is_event(a: &PnpAction) -> bool {
    !matches!(a, PnpAction::Sleep { .. } | PnpAction::StallLockAcquire { .. } | PnpAction::StallCall { .. })
}

/// Three times in four one of the handlers event `a` calls, as `lists`
/// gives them (in virtual time the handle threads are often done by
/// then), else any: its index in ndisim's `slow::HANDLERS`.
fn handler_near(r: &mut Rng, a: Option<&PnpAction>, lists: fn(&PnpAction) -> &'static [&'static str]) -> u8 {
    let called = a.map_or(&[][..], lists);
    let name = if !called.is_empty() && r.chance(750) { *r.pick(called) } else { *r.pick(&ndisim::slow::HANDLERS) };
    ndisim::slow::HANDLERS.iter().position(|&h| h == name).unwrap_or(0) as u8
}

/// The driver's handlers PnP action `a` calls (ndisim's
/// `slow::HANDLERS` names), besides the requests it meets.
fn handlers_of(a: &PnpAction) -> &'static [&'static str] {
    match a {
        PnpAction::Pause { .. }
        | PnpAction::Restart { .. }
        | PnpAction::Event { .. }
        | PnpAction::Power { .. }
        | PnpAction::HeldD0 { .. }
        | PnpAction::InOidCall { .. } => &["ProtocolNetPnPEvent", "WorkerRoutine", "ProtocolOidRequestComplete"],
        PnpAction::Unbind { .. } | PnpAction::Uninstall => {
            &["ProtocolNetPnPEvent", "ProtocolUnbindAdapterEx", "ProtocolCloseAdapterCompleteEx", "WorkerRoutine"]
        }
        PnpAction::Bind { .. } | PnpAction::BindAll => {
            &["ProtocolBindAdapterEx", "ProtocolOpenAdapterCompleteEx", "ProtocolOidRequestComplete", "WorkerRoutine"]
        }
        PnpAction::Link { .. } => &["ProtocolStatusEx"],
        PnpAction::Sleep { .. } | PnpAction::StallLockAcquire { .. } | PnpAction::StallCall { .. } => &[],
    }
}

/// `handlers_of`, weighted for call stalls by what the calls made showed
/// in 200 det schedules: an OID's completion handler is called only
/// when the miniport pends the request (of the aims at it before a pause,
/// restart or power event, four in five came to no call), and the pause's
/// and the unbind's work reaches its end in the work item.
fn call_handlers_of(a: &PnpAction) -> &'static [&'static str] {
    const PNP: &[&str] =
        &["ProtocolNetPnPEvent", "ProtocolNetPnPEvent", "WorkerRoutine", "WorkerRoutine", "ProtocolOidRequestComplete"];
    match a {
        PnpAction::Pause { .. }
        | PnpAction::Restart { .. }
        | PnpAction::Event { .. }
        | PnpAction::Power { .. }
        | PnpAction::HeldD0 { .. }
        | PnpAction::InOidCall { .. } => PNP,
        PnpAction::Unbind { .. } | PnpAction::Uninstall => &[
            "ProtocolNetPnPEvent",
            "ProtocolUnbindAdapterEx",
            "ProtocolUnbindAdapterEx",
            "ProtocolCloseAdapterCompleteEx",
            "WorkerRoutine",
            "WorkerRoutine",
        ],
        PnpAction::Bind { .. } | PnpAction::BindAll => &[
            "ProtocolBindAdapterEx",
            "ProtocolBindAdapterEx",
            "ProtocolOpenAdapterCompleteEx",
            "ProtocolOidRequestComplete",
            "WorkerRoutine",
        ],
        _ => handlers_of(a),
    }
}

/// Whether the schedule aims a lock-acquire stall of its own (an OPEN
/// stalled as an unbind begins, a cancel routine's): ndisim keeps one aim.
fn aims_itself(handles: &[Vec<IoAction>]) -> bool {
    handles
        .iter()
        .flatten()
        .any(|a| matches!(a, IoAction::CancelAway { .. } | IoAction::AwaitUnbind { stall_at: 1.., .. }))
}

/// D3 for adapter `a`, then a return to D0 held before its set-power
/// event, and OID requests, opens and closes on `a` at about that point of
/// most handle threads' lists.
fn held_d0(r: &mut Rng, pnp: &mut Vec<PnpAction>, handles: &mut [Vec<IoAction>], n: usize) {
    let a = r.below(n as u64) as usize;
    let at = r.below(1000) as usize;
    let mut p = vec![PnpAction::Power { a, d3: true }];
    if r.chance(500) {
        p.push(PnpAction::Sleep { ms: r.range(0, 20) as u32 });
    }
    p.push(PnpAction::HeldD0 { a, ms: r.range(10, 150) as u32 });
    let i = pnp.len() * at / 1000;
    pnp.splice(i..i, p);
    for list in handles.iter_mut() {
        if r.chance(700) {
            let k = list.len() * at / 1000;
            let acts = super::stalls::requests(r, list, k, a);
            list.splice(k..k, acts);
        }
    }
}

/// The sizes the driver allocates for the schedule's OID requests: a
/// query's answer buffer (the output less the reply's header: `len`), a
/// multicast list's copy (`len` bytes, or six a group joined).
fn oid_sizes(handles: &[Vec<IoAction>]) -> Vec<u32> {
    let mut v: Vec<u32> = handles
        .iter()
        .flatten()
        .filter_map(|a| match a {
            IoAction::Oid { set: false, len, .. } => Some(u32::from(*len)),
            IoAction::Oid { set: true, oid: ndis_sys::OID_802_3_MULTICAST_LIST, len, groups, .. } => {
                Some(groups.map_or(u32::from(*len), |g| 6 * g.count_ones()))
            }
            _ => None,
        })
        .filter(|&b| b > 0)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Reads left pending on the handle the thread opened
/// last before a point of its `list` (half the time its end), then
/// cancelled from threads nobody waits for, and most often the handle
/// closed right after.
fn cancel_away(r: &mut Rng, list: &mut Vec<IoAction>) {
    let k = if r.chance(500) { list.len() } else { r.below(list.len() as u64 + 1) as usize };
    let Some(slot) = super::stalls::last_open(list, k) else { return };
    let mut acts: Vec<IoAction> =
        (0..r.range(1, 3)).map(|_| IoAction::ReadPending { slot, len: *r.pick(&[64u32, 2048, 65536]) }).collect();
    // None, short (over by the close), or long (into the end checks and
    // the unload, when the thread's list ends with it).
    let stall_ms = match r.below(5) {
        0 => 0,
        1 | 2 => r.range(1, 300),
        _ => r.range(1000, 4000),
    } as u32;
    acts.push(IoAction::CancelAway { slot, stall_ms });
    match r.below(10) {
        0..=4 => acts.push(IoAction::Close { slot }),
        5 => acts.push(IoAction::Abandon { slot }),
        _ => {}
    }
    list.splice(k..k, acts);
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, Profile, generate};
    use crate::schedule::*;

    /// Deterministic schedules of `profile` with the knobs at their odds.
    fn with(profile: Profile) -> GenOptions {
        GenOptions { profile: Some(profile), knobs: super::KNOBS_PER_CENT, ..GenOptions::plain(Mode::Det) }
    }

    /// How many of `seeds` drew each knob in `profile`: work items held,
    /// D0 held, allocations stalled (of a schedule's size, of a live one),
    /// cancels away, lock acquires stalled, calls stalled.
    fn drawn(profile: Profile, seeds: std::ops::Range<u64>) -> [usize; 7] {
        let mut n = [0; 7];
        for seed in seeds {
            let s = generate(seed, with(profile));
            let nic = || s.nic.iter().chain(s.nic_more.iter().flatten());
            n[0] += usize::from(nic().any(|a| matches!(a, NicAction::HoldWorkItems { .. })));
            n[1] += usize::from(s.pnp.iter().any(|a| matches!(a, PnpAction::HeldD0 { .. })));
            let io = || s.handles.iter().flatten();
            n[2] += usize::from(
                nic().any(|a| matches!(a, NicAction::StallAllocations { bytes: 1.., .. }))
                    || io().any(|a| matches!(a, IoAction::StallAllocations { bytes: 1.., .. })),
            );
            n[3] += usize::from(
                nic().any(|a| matches!(a, NicAction::StallAllocations { bytes: 0, .. }))
                    || io().any(|a| matches!(a, IoAction::StallAllocations { bytes: 0, .. })),
            );
            n[4] += usize::from(s.handles.iter().flatten().any(|a| matches!(a, IoAction::CancelAway { .. })));
            let lk = s.pnp.iter().any(|a| matches!(a, PnpAction::StallLockAcquire { .. }));
            n[5] += usize::from(lk);
            n[6] += usize::from(s.pnp.iter().any(|a| matches!(a, PnpAction::StallCall { .. })));
            // One aim at a time: never beside the schedule's own.
            if lk {
                assert!(!super::aims_itself(&s.handles), "seed {seed}");
            }
        }
        n
    }

    #[test]
    fn each_knob_is_drawn_within_a_hundred_seeds_of_the_profiles_it_fits() {
        for p in [Profile::Teardown, Profile::OidStorm, Profile::Mixed] {
            let n = drawn(p, 1..101);
            assert!(n.iter().all(|&k| k > 0), "{}: {n:?}", p.name());
            // A share, not every schedule.
            assert!(n.iter().all(|&k| k < 70), "{}: {n:?}", p.name());
        }
        // The teardown profile draws cancels away in about half.
        let n = drawn(Profile::Teardown, 1..201);
        assert!((60..140).contains(&n[4]), "{n:?}");
    }

    /// Whether `small` is `big` with some elements left out.
    fn within<T: PartialEq>(small: &[T], big: &[T]) -> bool {
        let mut it = big.iter();
        small.iter().all(|x| it.any(|y| y == x))
    }

    #[test]
    fn every_handler_a_pnp_event_is_said_to_call_is_one_ndisim_counts_acquires_in() {
        let all = [
            PnpAction::Pause { a: 0 },
            PnpAction::Unbind { a: 0 },
            PnpAction::Bind { a: 0 },
            PnpAction::Power { a: 0, d3: true },
            PnpAction::Link { a: 0, up: true },
            PnpAction::BindAll,
            PnpAction::Uninstall,
        ];
        for a in &all {
            for h in super::handlers_of(a).iter().chain(super::call_handlers_of(a)) {
                assert!(ndisim::slow::HANDLERS.contains(h), "{h}");
            }
        }
    }

    #[test]
    fn the_knobs_only_add_actions_to_a_seeds_schedule() {
        // Off, a seed's schedule is what it was before the knobs; on, the
        // same seed's lists are those lists with actions added, and its
        // adapters the same: the knobs draw from a stream of their own.
        for seed in 1..80 {
            for p in [Profile::Teardown, Profile::Mixed, Profile::OidStorm] {
                let on = generate(seed, with(p));
                assert_eq!(on, generate(seed, with(p)), "seed {seed}: replayable");
                let off = generate(seed, GenOptions { knobs: 0, ..with(p) });
                assert_eq!(on.adapters, off.adapters, "seed {seed}");
                assert!(within(&off.pnp, &on.pnp) && within(&off.nic, &on.nic), "seed {seed}");
                for (a, b) in off.handles.iter().zip(&on.handles) {
                    assert!(within(a, b), "seed {seed}");
                }
                let any = |s: &Schedule| {
                    s.nic
                        .iter()
                        .any(|a| matches!(a, NicAction::HoldWorkItems { .. } | NicAction::StallAllocations { .. }))
                        || s.pnp.iter().any(|a| {
                            matches!(
                                a,
                                PnpAction::HeldD0 { .. }
                                    | PnpAction::StallLockAcquire { .. }
                                    | PnpAction::StallCall { .. }
                            )
                        })
                        || s.handles
                            .iter()
                            .flatten()
                            .any(|a| matches!(a, IoAction::CancelAway { .. } | IoAction::StallAllocations { .. }))
                };
                assert!(!any(&off), "seed {seed}: no knob when off");
                for a in on.nic.iter() {
                    match a {
                        NicAction::HoldWorkItems { ms } => assert!((10..=150).contains(ms)),
                        NicAction::StallAllocations { ms, .. } => assert!((10..=120).contains(ms)),
                        _ => {}
                    }
                }
                for list in &on.handles {
                    for (i, a) in list.iter().enumerate() {
                        if let IoAction::StallAllocations { ms, .. } = a {
                            assert!((10..=120).contains(ms));
                            // Right before requests of its own thread.
                            assert!(i + 1 < list.len(), "seed {seed}: a spell cast last");
                        }
                    }
                }
                for a in on.pnp.iter() {
                    if let PnpAction::StallLockAcquire { handler, nth, ms } = a {
                        assert!(usize::from(*handler) < ndisim::slow::HANDLERS.len());
                        assert!((1..=8).contains(nth) && (1..=40).contains(ms));
                    }
                    if let PnpAction::StallCall { handler, pick, nth, ms, .. } = a {
                        assert!(usize::from(*handler) < ndisim::slow::HANDLERS.len());
                        let most = if *pick == 0 { 256 } else { 8 };
                        assert!((1..=most).contains(nth) && (1..=40).contains(ms));
                    }
                }
            }
        }
    }

    #[test]
    fn a_schedule_with_every_knob_round_trips_through_json_and_the_shrinker_can_drop_each() {
        let mut s = generate(7, GenOptions::plain(Mode::Det));
        s.nic.push(NicAction::HoldWorkItems { ms: 40 });
        s.nic.push(NicAction::StallAllocations { bytes: 256, pick: 0, ms: 30 });
        s.nic.push(NicAction::StallAllocations { bytes: 0, pick: 513, ms: 30 });
        s.pnp.push(PnpAction::StallLockAcquire { handler: 0, nth: 2, ms: 5 });
        s.pnp.push(PnpAction::StallCall { handler: 9, pick: 1, nth: 1, after: true, ms: 7 });
        s.pnp.push(PnpAction::Power { a: 0, d3: true });
        s.pnp.push(PnpAction::HeldD0 { a: 0, ms: 50 });
        s.handles[0].push(IoAction::ReadPending { slot: 0, len: 2048 });
        s.handles[0].push(IoAction::StallAllocations { bytes: 0, pick: 7, ms: 40 });
        s.handles[0].push(IoAction::CancelAway { slot: 0, stall_ms: 120 });
        let j = serde_json::to_string_pretty(&s).unwrap();
        for name in ["HoldWorkItems", "StallAllocations", "StallLockAcquire", "StallCall", "HeldD0", "CancelAway"] {
            assert!(j.contains(name), "{name}");
        }
        let back: Schedule = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
        // Each is an action of a list, as the shrinker drops actions.
        let len = s.len();
        let mut t = s.clone();
        t.nic.retain(|a| !matches!(a, NicAction::HoldWorkItems { .. } | NicAction::StallAllocations { .. }));
        t.pnp.retain(|a| {
            !matches!(a, PnpAction::HeldD0 { .. } | PnpAction::StallLockAcquire { .. } | PnpAction::StallCall { .. })
        });
        t.handles[0].retain(|a| !matches!(a, IoAction::CancelAway { .. } | IoAction::StallAllocations { .. }));
        assert!(t.len() <= len - 8);
        assert_eq!(s.pnp.last().and_then(PnpAction::adapter), Some(0));
        assert_eq!(s.handles[0].last().and_then(IoAction::slot), Some(0));
    }
}
