//! Scenes the random draws meet too rarely to see, each a named profile
//! (never drawn, so every other seed's schedule stays what it was): a
//! few handles on one adapter, timed by sleeps against a hold of the
//! miniport's OIDs or a power change, with noise on other adapters, that
//! end quiet with every handle on the scene's adapter open and its list
//! known, for the union oracle (`run/unions.rs`: the adapter's multicast
//! list is the union of its open handles' lists).
//!
//! - `union-race`: a set of the driver's own of the multicast union (a
//!   handle closed) and, after it, a handle's set of its new list, both
//!   held by the miniport and completed the last first: the driver's
//!   older union completes last, and must be followed by the union of now
//!   (the test that caught it: `tests/capture.rs`,
//!   `a_multicast_set_of_the_drivers_that_a_handles_overtook_is_followed_by_the_union`).
//! - `d0-no-restart`: on an adapter whose miniport keeps its bindings
//!   running through power changes (`pause-on-suspend=off`), a handle
//!   closes (its groups leave the union) and another opens (its filter is
//!   owed) while the adapter is in D3; D0 comes without a restart, and
//!   what low power refused must be set then (`tests/driver_oids.rs`,
//!   `what_low_power_refused_is_set_at_d0_without_a_restart`).
//! - `filter-shortage` (`shortage`): handles on a0 open with packet
//!   filters, join groups, close and ask (GET_STATS, a read that waits),
//!   each change after a shortage aimed at the driver's next pool
//!   allocations (`IoAction::ShortOfMemory`: a few go through, the next
//!   are refused), so that what the change asks of the adapter (a set of
//!   the packet filter, of the multicast union, a handle's own set) and
//!   the retries of a set not sent find no memory; sometimes the miniport
//!   fails the filter sets for want of resources too (`FailOids` with
//!   `busy`), more times than the work item retries. The oracles of a
//!   shortage (`run/owed.rs`, `run/unions.rs`) then ask for what is owed
//!   and judge the adapter's filter and list.
//!
//! Free-running, the sleeps place the scene's steps most of the time
//! (a loaded machine may move them out of the window: then the schedule
//! only sees less, the oracle holds either way); deterministic, always.

use super::profile::{open_action, pause_restart};
use super::{GenOptions, Profile, dst, frame_len, inject_action};
use crate::schedule::*;
use ndis_sys::{OID_802_3_MULTICAST_LIST, OID_GEN_CURRENT_PACKET_FILTER};
use ndisim::rng::Rng;
use rawnic_proto::filter as pf;

/// The schedule of a scene profile (`Profile::is_scene`).
pub(super) fn schedule(seed: u64, r: &mut Rng, o: GenOptions, p: Profile) -> Schedule {
    if p == Profile::FilterShortage {
        return shortage(seed, r, o);
    }
    let power = p == Profile::D0NoRestart;
    // The scene's adapter, a0, and half the time noise on others.
    let mut a0 = String::from(if r.chance(500) { "null@name=a0" } else { "loopback@name=a0" });
    if power {
        a0.push_str(",pause-on-suspend=off");
    }
    for (odds, opt) in [(300, "oid=pending"), (250, "open=pending"), (200, "rss=on"), (200, "vlan=off")] {
        if r.chance(odds) {
            a0.push(',');
            a0.push_str(opt);
        }
    }
    let mut specs = vec![a0];
    if r.chance(500) {
        specs.push(if r.chance(500) { "pair:a1,a2".into() } else { "loopback@name=a1".into() });
    }
    let n = super::adapter_count(&specs);
    // Groups: the keeper's (which stays), the closer's (which leaves) and
    // the joiner's new list, each with groups none of the others has.
    let keep = r.below(16) as u8 | u8::from(r.chance(700));
    let gone = ((1 + r.below(3) as u8) << 4) | r.below(16) as u8;
    let new = ((1 + r.below(3) as u8) << 6) | r.below(64) as u8;
    // When the scene's window opens (the hold, or D3) and how long it
    // lasts; the handles act well inside it.
    let start = r.range(30, 60) as u32;
    let window = r.range(250, 400) as u32;
    let at = start + r.range(60, 150) as u32;
    let mut pnp = Vec::new();
    let mut nic = Vec::new();
    if power {
        pnp.push(PnpAction::Sleep { ms: start });
        pnp.push(PnpAction::Power { a: 0, d3: true });
        pnp.push(PnpAction::Sleep { ms: window });
        pnp.push(PnpAction::Power { a: 0, d3: false });
    } else {
        nic.push(NicAction::Sleep { ms: start });
        // The last made first, but one hold in eight (in order: the
        // driver's union completes first, as NDIS would).
        nic.push(NicAction::HoldOids { a: 0, ms: window, reverse: !r.chance(125) });
    }
    // Noise after the scene on a0 (frames to the groups), and anywhere on
    // the other adapters.
    for _ in 0..r.range(0, 12) {
        let a = r.below(n as u64) as usize;
        let mut act = inject_action(r, a, false);
        if let NicAction::Inject { dst: d, .. } = &mut act {
            if a == 0 && r.chance(500) {
                *d = Dst::Multicast;
            }
        }
        nic.push(act);
    }
    if n > 1 {
        for _ in 0..r.range(0, 6) {
            // Pauses and restarts of the other adapters only.
            let at = pnp.len();
            pause_restart(r, n - 1, &mut pnp);
            for act in &mut pnp[at..] {
                if let PnpAction::Pause { a } | PnpAction::Restart { a, .. } = act {
                    *a += 1;
                }
            }
        }
    }
    let mut handles = vec![scene_thread(r, power, gone, new, at)];
    if r.chance(750) {
        handles.push(keeper(r, keep));
    }
    if n > 1 && r.chance(600) {
        handles.push(noise(r, n));
    }
    if power {
        // From a stream of its own: the rest of the scene stays as drawn.
        handles.push(d3_sender(&mut Rng::new(seed ^ 0x6433_7365_6E64_0000), start, window));
    }
    scene_schedule(seed, o, specs, pnp, nic, handles, false)
}

/// A scene's schedule: what its threads do, in the options given, with
/// none of the main draws' extras (no PCT, swarm or shapes; handles left
/// open at the end for the oracles). `lowres_after_binds`: the adapters
/// bind before any allocation fails.
fn scene_schedule(
    seed: u64,
    o: GenOptions,
    adapters: Vec<String>,
    pnp: Vec<PnpAction>,
    mut nic: Vec<NicAction>,
    handles: Vec<Vec<IoAction>>,
    lowres_after_binds: bool,
) -> Schedule {
    let mut adapters = adapters;
    super::edges::bind_statuses(&mut Rng::new(seed ^ 0x6269_6E64_7374_6174), o.bind_status, &mut adapters);
    let ndis_version = super::edges::older_ndis(&mut Rng::new(seed ^ 0x6E64_6973_7665_7200), o.old_ndis, &mut nic);
    Schedule {
        seed,
        mode: o.mode,
        lowres: o.lowres,
        special_pool: o.special_pool,
        jitter: o.jitter,
        preempt: o.preempt,
        adapters,
        pnp,
        nic,
        handles,
        pnp_more: Vec::new(),
        nic_more: Vec::new(),
        late_binds: false,
        lowres_after_binds,
        pct: None,
        bounded: None,
        prompt_pnp: false,
        ndis_version,
        binds_in_registration: false,
        open_in_registration: false,
        cpus: None,
        swarm: Vec::new(),
        shapes: 0,
        keep_open: true,
        slow: None,
        // (A scene is only named: `o.profile` is it.)
        fail_nth: super::fail_nth(seed, o.fail_nth, o.profile.unwrap_or(Profile::UnionRace)),
        answer_on_arrival: Vec::new(),
        twin: super::twin(seed, o),
        points_after: super::points_after(seed, o),
    }
}

/// The `filter-shortage` scene (module doc): a scene thread that changes
/// handles on a0 after aimed shortages, a keeper that joins again after
/// one, and noise.
fn shortage(seed: u64, r: &mut Rng, o: GenOptions) -> Schedule {
    let mut a0 = String::from(if r.chance(500) { "null@name=a0" } else { "loopback@name=a0" });
    match r.below(3) {
        0 => a0.push_str(",oid=pending"),
        1 => a0.push_str(",oid=inline"),
        _ => {}
    }
    let mut specs = vec![a0];
    if r.chance(400) {
        specs.push("loopback@name=a1".into());
    }
    let n = super::adapter_count(&specs);
    let mut pnp = Vec::new();
    let mut nic = Vec::new();
    // The miniport short of resources for the packet filter, more times
    // than the work item retries (4), while the scene changes it (from
    // about 60 ms).
    let miniport = r.chance(350);
    if miniport {
        nic.push(NicAction::Sleep { ms: r.range(40, 55) as u32 });
        let busy = r.range(6, 12) as u8;
        let ms = r.range(300, 500) as u32;
        nic.push(NicAction::FailOids { a: 0, oids: vec![OID_GEN_CURRENT_PACKET_FILTER], ms, busy });
    } else if r.chance(300) {
        // Sets held a while, so the next change finds one in flight.
        nic.push(NicAction::Sleep { ms: r.range(50, 80) as u32 });
        nic.push(NicAction::HoldOids { a: 0, ms: r.range(20, 120) as u32, reverse: r.chance(500) });
    }
    // Frames to the groups once the scene is done, and noise elsewhere.
    nic.push(NicAction::Sleep { ms: r.range(200, 300) as u32 });
    for _ in 0..r.range(0, 8) {
        let a = r.below(n as u64) as usize;
        let mut act = inject_action(r, a, false);
        if let NicAction::Inject { dst: d, .. } = &mut act {
            if a == 0 && r.chance(500) {
                *d = Dst::Multicast;
            }
        }
        nic.push(act);
    }
    // A pause and restart of a0 in the middle of the scene now and then
    // (the restart's own sets may meet the shortage), else of the others.
    if r.chance(250) {
        pnp.push(PnpAction::Sleep { ms: r.range(60, 150) as u32 });
        pause_restart(r, 1, &mut pnp);
    }
    if n > 1 {
        for _ in 0..r.range(0, 4) {
            let at = pnp.len();
            pause_restart(r, n - 1, &mut pnp);
            for act in &mut pnp[at..] {
                if let PnpAction::Pause { a } | PnpAction::Restart { a, .. } = act {
                    *a += 1;
                }
            }
        }
    }
    let mut handles = vec![shortage_thread(r, miniport)];
    if r.chance(400) {
        handles.push(short_keeper(r));
    }
    if n > 1 && r.chance(500) {
        handles.push(noise(r, n));
    }
    // The adapters bound before any allocation fails: the scene is about
    // what comes after.
    scene_schedule(seed, o, specs, pnp, nic, handles, true)
}

/// A shortage aimed at the next request: `skip` of the driver's pool
/// allocations go through (0 to 5: the request's copy, its list's room,
/// the union, the OID's block come in about that order), then one to a
/// dozen are refused (a dozen outlast the work item's retries).
fn short(r: &mut Rng) -> IoAction {
    let skip = *r.pick(&[0u8, 0, 1, 1, 2, 3, 4, 5]);
    let refuse = *r.pick(&[1u8, 1, 2, 3, 6, 12]);
    IoAction::ShortOfMemory { skip, refuse }
}

/// A packet filter a handle of the scene opens with (never
/// all-multicast nor promiscuous: those are the closer's).
fn short_filter(r: &mut Rng) -> pf::PacketFilter {
    *r.pick(&[
        pf::DEFAULT,
        pf::DEFAULT | pf::MULTICAST,
        pf::DIRECTED | pf::BROADCAST,
        pf::DIRECTED | pf::MULTICAST,
        pf::MULTICAST,
    ])
}

/// The `filter-shortage` scene's thread: two or three handles (slots 0
/// to 2) opened with filters of their own and joined to groups 0 to 3,
/// and a closer (slot 3) with bits none of them has (all-multicast or
/// promiscuous) and groups 4 to 7, with memory to spare; then, from about
/// 60 ms, one to three changes of the first handles (closes, joins,
/// opens, asks; only joins and asks while the miniport fails the filter
/// sets), each after a shortage aimed at it; last, the closer closes
/// (the packet filter and the union both change) under a shortage that
/// outlasts the work item's retries, its first refusal on the union or
/// the filter set (or, while the miniport fails the filter sets, with
/// memory to spare: the sets reach it), or a handle joins under a
/// shortage that may fall on any of the join's allocations, most often
/// the OID request's block; and a pause for the retries.
fn shortage_thread(r: &mut Rng, miniport: bool) -> Vec<IoAction> {
    let mut v = Vec::new();
    let mut live = [false; 3];
    for slot in 0..r.range(2, 3) as u8 {
        let f = short_filter(r);
        v.push(IoAction::Create { slot });
        v.push(open(r, slot, f));
        v.push(join(slot, 1 + r.below(15) as u8, 1000));
        live[usize::from(slot)] = true;
    }
    let closer = *r.pick(&[pf::ALL_MULTICAST | pf::DIRECTED, pf::ALL_MULTICAST, pf::PROMISCUOUS]);
    v.push(IoAction::Create { slot: 3 });
    v.push(open(r, 3, closer));
    v.push(join(3, (1 + r.below(15) as u8) << 4, 1000));
    v.push(IoAction::Sleep { ms: 60 });
    for _ in 0..r.range(1, 3) {
        v.push(short(r));
        if miniport {
            // The packet filter is left to the miniport's shortage (a set
            // not sent for want of memory would leave it owed already).
            let slot = r.below(2) as u8;
            v.push(if r.chance(700) { join(slot, r.below(16) as u8, 1000) } else { IoAction::Stats { slot } });
            continue;
        }
        let slot = r.below(3) as u8;
        let i = usize::from(slot);
        if !live[i] {
            let f = short_filter(r);
            v.push(IoAction::Create { slot });
            v.push(open(r, slot, f));
            live[i] = true;
            continue;
        }
        match r.below(10) {
            0..=2 => {
                v.push(if r.chance(200) { IoAction::Abandon { slot } } else { IoAction::Close { slot } });
                live[i] = false;
            }
            3..=6 => v.push(join(slot, r.below(16) as u8, 1000)),
            7..=8 => v.push(IoAction::Stats { slot }),
            _ => v.push(IoAction::Read { slot, len: 2048, wait_ms: r.range(1, 20) as u32 }),
        }
        if r.chance(300) {
            v.push(IoAction::Sleep { ms: r.range(0, 20) as u32 });
        }
    }
    if miniport && r.chance(700) {
        v.push(IoAction::ShortOfMemory { skip: 0, refuse: 0 });
        v.push(IoAction::Close { slot: 3 });
    } else if r.chance(600) {
        v.push(IoAction::ShortOfMemory { skip: r.below(3) as u8, refuse: *r.pick(&[6u8, 12]) });
        v.push(IoAction::Close { slot: 3 });
    } else {
        let slot = *r.pick(&[0u8, 1, 3]);
        let groups = r.below(256) as u8;
        v.push(IoAction::ShortOfMemory { skip: *r.pick(&[0u8, 1, 2, 3, 3, 4]), refuse: *r.pick(&[1u8, 2, 6]) });
        v.push(join(slot, groups, 1000));
    }
    // What is left of a shortage ends with the scene's steps: the work
    // item's retries and the oracles' asks find memory.
    v.push(IoAction::ShortOfMemory { skip: 0, refuse: 0 });
    v.push(IoAction::Sleep { ms: r.range(20, 80) as u32 });
    v
}

/// A handle on a0 that joins groups 0 to 3 with memory to spare, then
/// joins again after a shortage (its old list is what a failed set must
/// give back), and stays open.
fn short_keeper(r: &mut Rng) -> Vec<IoAction> {
    let f = pf::DEFAULT | pf::MULTICAST | *r.pick(&[pf::PacketFilter::NONE, pf::BROADCAST]);
    let mut v = vec![
        IoAction::Create { slot: 0 },
        open(r, 0, f),
        join(0, 1 + r.below(15) as u8, 1000),
        IoAction::Sleep { ms: r.range(0, 60) as u32 },
    ];
    for _ in 0..r.range(1, 3) {
        v.push(short(r));
        v.push(join(0, r.below(16) as u8, 1000));
        if r.chance(500) {
            v.push(IoAction::Stats { slot: 0 });
        }
    }
    v
}

/// A set of handle `slot`'s multicast list to `groups`, waited for (a
/// held set completes when the hold ends).
fn join(slot: u8, groups: u8, wait_ms: u32) -> IoAction {
    IoAction::Oid { slot, set: true, oid: OID_802_3_MULTICAST_LIST, len: 0, wait_ms, groups: Some(groups) }
}

fn open(r: &mut Rng, slot: u8, filter: pf::PacketFilter) -> IoAction {
    open_action(r, slot, 1, filter.bits())
}

/// The thread the scene is about: a handle with `gone` on a0 that closes
/// at `at` ms (its groups leave the union: the driver's own set), and
/// then (`union-race`: at once, inside the hold) a handle's set of
/// `new`, or (`d0-no-restart`: in D3) a handle that opens with a filter
/// the adapter must be given.
fn scene_thread(r: &mut Rng, power: bool, gone: u8, new: u8, at: u32) -> Vec<IoAction> {
    let same = pf::DEFAULT | pf::MULTICAST;
    let mut v = vec![IoAction::Create { slot: 0 }, open(r, 0, same), join(0, gone, 1000)];
    // What d0-no-restart does in D3: close and open, close, or open.
    let (close, open_later) = if power {
        match r.below(4) {
            0 | 1 => (true, true),
            2 => (true, false),
            _ => (false, true),
        }
    } else {
        (true, false)
    };
    if !power {
        // The joiner: open before the hold (its filter set done by then),
        // sometimes with a list already.
        let f = same | *r.pick(&[pf::PacketFilter::NONE, pf::ALL_MULTICAST, pf::BROADCAST]);
        v.push(IoAction::Create { slot: 1 });
        v.push(open(r, 1, f));
        if r.chance(300) {
            v.push(join(1, r.below(16) as u8, 1000));
        }
    }
    v.push(IoAction::Sleep { ms: at });
    if close {
        v.push(if r.chance(200) { IoAction::Abandon { slot: 0 } } else { IoAction::Close { slot: 0 } });
    }
    if !power {
        if r.chance(300) {
            v.push(IoAction::Sleep { ms: r.range(0, 5) as u32 });
        }
        v.push(join(1, new, 3000));
        v.push(IoAction::Read { slot: 1, len: 2048, wait_ms: r.range(0, 20) as u32 });
    }
    if open_later {
        let f =
            *r.pick(&[pf::DIRECTED | pf::BROADCAST, pf::BROADCAST, pf::DEFAULT | pf::ALL_MULTICAST, pf::PROMISCUOUS]);
        v.push(IoAction::Create { slot: 1 });
        v.push(open(r, 1, f));
        if r.chance(500) {
            v.push(IoAction::ReadPending { slot: 1, len: 65536 });
        }
    }
    v
}

/// A handle on a0 with `groups` that stays open and reads.
fn keeper(r: &mut Rng, groups: u8) -> Vec<IoAction> {
    let f = pf::DEFAULT | pf::MULTICAST | *r.pick(&[pf::PacketFilter::NONE, pf::PacketFilter::NONE, pf::BROADCAST]);
    let mut v = vec![IoAction::Create { slot: 0 }, open(r, 0, f), join(0, groups, 1000)];
    for _ in 0..r.range(0, 12) {
        v.push(match r.below(3) {
            0 => IoAction::Read { slot: 0, len: 65536, wait_ms: r.range(0, 30) as u32 },
            1 => IoAction::Stats { slot: 0 },
            _ => IoAction::Sleep { ms: r.range(0, 40) as u32 },
        });
    }
    v
}

/// `d0-no-restart`'s sender: a handle on a0 that sends (WriteFile,
/// SEND_BATCH) from inside D3 (`start` ms on, for `window` ms) until after
/// D0. NDIS keeps that adapter's bindings running through the power
/// change, so only the driver's low-power refusal keeps these sends off
/// the miniport (ndisim's `low-power` rule); after D0 they go.
/// Half of them also kick zero-copy sends from rings.
fn d3_sender(r: &mut Rng, start: u32, window: u32) -> Vec<IoAction> {
    let mut v = vec![IoAction::Create { slot: 0 }, open(r, 0, pf::DIRECTED)];
    let rings = r.chance(500);
    if rings {
        let (frame_size, damage) = (2048, AttachDamage::None);
        let op = RingOp::Attach { frame_size, frames: 64, fill: 64, rx: 64, tx: 64, completion: 64, damage };
        v.push(IoAction::Ring { slot: 0, op });
    }
    v.push(IoAction::Sleep { ms: start + r.range(5, 40) as u32 });
    let mut t = 0;
    while t < window + 60 {
        v.push(if rings && r.chance(400) {
            let frames = r.range(1, 16) as u16;
            IoAction::Ring {
                slot: 0,
                op: RingOp::Tx { frames, len: frame_len(r), dst: dst(r), garbage: 0, kick: true },
            }
        } else if rings && r.chance(200) {
            IoAction::Ring { slot: 0, op: RingOp::Poll }
        } else if r.chance(500) {
            IoAction::Write { slot: 0, len: frame_len(r), dst: dst(r) }
        } else {
            let frames = r.range(1, 16) as u16;
            IoAction::SendBatch { slot: 0, frames, len: frame_len(r), tci: None, dst: dst(r), oversize: false }
        });
        let ms = r.range(10, 40) as u32;
        v.push(IoAction::Sleep { ms });
        t += ms;
    }
    v
}

/// A thread that sends and reads on the other adapters.
fn noise(r: &mut Rng, n: usize) -> Vec<IoAction> {
    let mut o = open_action(r, 0, n - 1, pf::DEFAULT.bits());
    if let IoAction::Open { a, .. } = &mut o {
        *a += 1;
    }
    let mut v = vec![IoAction::Create { slot: 0 }, o];
    for _ in 0..r.range(5, 30) {
        v.push(match r.below(3) {
            0 => IoAction::SendBatch {
                slot: 0,
                frames: r.range(1, 32) as u16,
                len: frame_len(r),
                tci: None,
                dst: dst(r),
                oversize: false,
            },
            1 => IoAction::Read { slot: 0, len: 65536, wait_ms: r.range(0, 20) as u32 },
            _ => IoAction::Sleep { ms: r.range(0, 20) as u32 },
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, Profile, generate};
    use crate::schedule::*;

    fn scene(p: Profile, seed: u64) -> Schedule {
        generate(seed, GenOptions { profile: Some(p), ..GenOptions::plain(Mode::Free) })
    }

    /// Where the scene thread's close and set fall, in ms from the start
    /// (its sleep; what comes before it takes next to no time).
    fn at(s: &Schedule) -> u32 {
        s.handles[0].iter().find_map(|a| if let IoAction::Sleep { ms } = a { Some(*ms) } else { None }).unwrap()
    }

    #[test]
    fn scenes_are_never_drawn_and_a_seed_gives_one() {
        for p in [Profile::UnionRace, Profile::D0NoRestart, Profile::FilterShortage] {
            assert!(!Profile::ALL.contains(&p) && Profile::NAMED.contains(&p) && p.is_scene());
            assert_eq!(scene(p, 7), scene(p, 7));
            assert_ne!(scene(p, 7), scene(p, 8));
        }
    }

    #[test]
    fn a_union_race_closes_then_sets_inside_a_hold_and_leaves_a0_alone() {
        let mut reversed = 0;
        for seed in 0..200 {
            let s = scene(Profile::UnionRace, seed);
            assert!(s.keep_open);
            let (start, hold, reverse) = match &s.nic[..2] {
                [NicAction::Sleep { ms }, NicAction::HoldOids { a: 0, ms: hold, reverse }] => (*ms, *hold, *reverse),
                other => panic!("seed {seed}: {other:?}"),
            };
            reversed += usize::from(reverse);
            assert!(start + 50 <= at(&s) && at(&s) + 50 <= start + hold, "seed {seed}");
            let t = &s.handles[0];
            let close = t.iter().position(|a| matches!(a, IoAction::Close { slot: 0 } | IoAction::Abandon { slot: 0 }));
            let set = t.iter().rposition(|a| matches!(a, IoAction::Oid { slot: 1, groups: Some(_), .. }));
            assert!(close.unwrap() < set.unwrap(), "seed {seed}");
            assert!(!s.pnp.iter().any(|a| matches!(a, PnpAction::Pause { a: 0 } | PnpAction::Restart { a: 0, .. })));
        }
        assert!((150..200).contains(&reversed), "{reversed}");
    }

    #[test]
    fn a_d0_without_a_restart_changes_handles_in_d3() {
        let mut attached = 0;
        for seed in 0..200 {
            let s = scene(Profile::D0NoRestart, seed);
            assert!(s.adapters[0].contains("pause-on-suspend=off"));
            let (start, d3) = match &s.pnp[..4] {
                [
                    PnpAction::Sleep { ms },
                    PnpAction::Power { a: 0, d3: true },
                    PnpAction::Sleep { ms: d3 },
                    PnpAction::Power { a: 0, d3: false },
                ] => (*ms, *d3),
                other => panic!("seed {seed}: {other:?}"),
            };
            assert!(start + 50 <= at(&s) && at(&s) + 50 <= start + d3, "seed {seed}");
            assert!(
                !s.pnp[4..].iter().any(|a| matches!(a, PnpAction::Pause { a: 0 } | PnpAction::Restart { a: 0, .. }))
            );
            let t = &s.handles[0];
            assert!(t.iter().any(|a| matches!(
                a,
                IoAction::Close { .. } | IoAction::Abandon { .. } | IoAction::Open { slot: 1, .. }
            )));
            // The sender: its first send inside D3, its sends on until
            // after D0.
            let sender = s.handles.last().unwrap();
            assert!(matches!(sender[1], IoAction::Open { a: 0, .. }), "seed {seed}");
            let rings = matches!(sender[2], IoAction::Ring { op: RingOp::Attach { .. }, .. });
            attached += usize::from(rings);
            let at = 2 + usize::from(rings);
            let IoAction::Sleep { ms: first } = sender[at] else { panic!("seed {seed}: {:?}", sender[at]) };
            assert!(start < first && first + 10 < start + d3, "seed {seed}");
            let sends = sender.iter().filter(|a| {
                matches!(
                    a,
                    IoAction::Write { .. } | IoAction::SendBatch { .. } | IoAction::Ring { op: RingOp::Tx { .. }, .. }
                )
            });
            let slept: u32 =
                sender[at + 1..].iter().map(|a| if let IoAction::Sleep { ms } = a { *ms } else { 0 }).sum();
            assert!(sends.count() >= 2 && first + slept > start + d3, "seed {seed}");
        }
        // Half the senders kick from rings too.
        assert!((70..130).contains(&attached), "{attached}");
    }

    #[test]
    fn a_filter_shortage_aims_one_before_each_change_and_ends_it() {
        let (mut busy, mut refused_past_retries) = (0, 0);
        for seed in 0..200 {
            let s = scene(Profile::FilterShortage, seed);
            assert!(s.keep_open && s.adapters[0].contains("name=a0"));
            let t = &s.handles[0];
            // Each change of the scene's handles after the first open and
            // join comes right after a shortage aimed at it.
            let setup = t.iter().position(|a| matches!(a, IoAction::Sleep { ms: 60 })).unwrap();
            assert!(!t[..setup].iter().any(|a| matches!(a, IoAction::ShortOfMemory { .. })), "seed {seed}");
            let miniport = s.nic.iter().any(|a| matches!(a, NicAction::FailOids { a: 0, busy: 6.., .. }));
            let mut n = 0;
            for i in setup + 1..t.len() {
                if matches!(
                    t[i],
                    IoAction::Create { .. }
                        | IoAction::Oid { .. }
                        | IoAction::Close { .. }
                        | IoAction::Abandon { .. }
                        | IoAction::Stats { .. }
                        | IoAction::Read { .. }
                ) {
                    match t[i - 1] {
                        IoAction::ShortOfMemory { refuse: 1.., .. } => {}
                        // The last close, while the miniport fails the
                        // filter sets.
                        IoAction::ShortOfMemory { refuse: 0, .. }
                            if miniport && matches!(t[i], IoAction::Close { .. }) => {}
                        ref other => panic!("seed {seed}: {other:?}"),
                    }
                    n += 1;
                }
            }
            assert!((1..=5).contains(&n), "seed {seed}: {n} changes");
            // The last shortage ends whatever is left.
            let last = t.iter().rposition(|a| matches!(a, IoAction::ShortOfMemory { .. })).unwrap();
            assert_eq!(t[last], IoAction::ShortOfMemory { skip: 0, refuse: 0 }, "seed {seed}");
            assert!(t[last + 1..].iter().all(|a| matches!(a, IoAction::Sleep { .. })), "seed {seed}");
            refused_past_retries +=
                usize::from(t.iter().any(|a| matches!(a, IoAction::ShortOfMemory { refuse: 5.., .. })));
            busy += usize::from(miniport);
        }
        // Most schedules refuse more than the work item retries at least
        // once; about a third have the miniport fail the filter sets too.
        assert!(refused_past_retries > 100, "{refused_past_retries}");
        assert!((40..100).contains(&busy), "{busy}");
    }
}
