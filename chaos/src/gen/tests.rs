//! The generator's own tests.

use super::*;

/// Free mode, no profile, one thread per role, no rings, nothing else.
fn plain() -> GenOptions {
    GenOptions::plain(Mode::Free)
}

#[test]
fn a_seed_gives_one_schedule() {
    let o = plain();
    assert_eq!(generate(5, o), generate(5, o));
    assert_ne!(generate(5, o), generate(6, o));
}

#[test]
fn a_profile_given_is_every_schedule_s() {
    for p in Profile::NAMED {
        assert_eq!(Profile::parse(p.name()), Some(p));
    }
    let o = GenOptions { profile: Some(Profile::RetainStorm), ..plain() };
    // Retain storms run on pairs, and half of them complete sends late
    // (pauses pend, so receives arrive while Pausing).
    let mut late = 0;
    for seed in 0..40 {
        let s = generate(seed, o);
        assert!(s.adapters.iter().all(|a| a.starts_with("pair:")), "{:?}", s.adapters);
        late += s.adapters.iter().filter(|a| a.contains("completion=")).count();
    }
    assert!(late > 5, "{late}");
}

#[test]
fn parallel_actors_split_the_same_actions_and_never_share_a_binding() {
    let one = plain();
    let three = GenOptions { parallel: 3, ..one };
    let (mut split, mut uninstalls) = (0, 0);
    for seed in 0..200 {
        let (a, b) = (generate(seed, one), generate(seed, three));
        // An uninstall ends the only PnP actor's list.
        let last_only = |l: &[PnpAction]| l.iter().rev().skip(1).all(|x| *x != PnpAction::Uninstall);
        assert!(last_only(&a.pnp), "seed {seed}");
        uninstalls += usize::from(a.pnp.last() == Some(&PnpAction::Uninstall));
        let a = Schedule { pnp: a.pnp.into_iter().filter(|x| *x != PnpAction::Uninstall).collect(), ..a };
        assert!(b.pnp.iter().chain(b.pnp_more.iter().flatten()).all(|x| *x != PnpAction::Uninstall));
        assert_eq!(a.len(), b.len(), "seed {seed}");
        assert_eq!(a.handles, b.handles);
        assert!(b.pnp_more.len() <= 2 && b.nic_more.len() <= 2);
        split += b.pnp_more.len();
        // Every adapter's PnP actions stay on one actor, in order.
        let lists: Vec<&Vec<PnpAction>> = std::iter::once(&b.pnp).chain(b.pnp_more.iter()).collect();
        for ad in 0..adapter_count(&b.adapters) {
            let on = |l: &Vec<PnpAction>| {
                l.iter()
                    .filter(|x| {
                        matches!(x, PnpAction::Pause { a } | PnpAction::Restart { a, .. } | PnpAction::Unbind { a }
                            | PnpAction::Bind { a } | PnpAction::Link { a, .. } | PnpAction::Power { a, .. }
                            | PnpAction::Event { a: Some(a), .. } if *a == ad)
                    })
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let holders: Vec<_> = lists.iter().filter(|l| !on(l).is_empty()).collect();
            assert!(holders.len() <= 1, "seed {seed}: adapter {ad} on {} actors", holders.len());
            if let Some(l) = holders.first() {
                assert_eq!(on(l), on(&a.pnp), "seed {seed}");
            }
        }
    }
    assert!(split > 50, "{split}");
    assert!((2..30).contains(&uninstalls), "{uninstalls}");
}

#[test]
fn some_receive_bursts_lie_in_several_mdls() {
    let o = plain();
    let (mut shaped, mut chained, mut headroom, mut most) = (0, 0, 0, 0);
    for seed in 0..200 {
        for a in &generate(seed, o).nic {
            if let NicAction::Inject { layout: Some(l), len, .. } = a {
                shaped += 1;
                chained += usize::from(l.first != 0 || l.chunk != 0);
                headroom += usize::from(l.headroom != 0);
                most = most.max(len.checked_div(l.chunk).unwrap_or(0));
            }
        }
    }
    assert!(shaped > 200 && chained > 150 && headroom > 100, "{shaped} {chained} {headroom}");
    assert!(most <= 300, "{most} MDLs");
}

#[test]
fn some_receive_bursts_are_coalesced_units() {
    let o = plain();
    let (mut units, mut big, mut uro) = (0, 0, 0);
    for seed in 0..300 {
        let s = generate(seed, o);
        uro += s.adapters.iter().filter(|a| a.contains("uro=on")).count();
        for a in &s.nic {
            if let NicAction::Inject { coalesce: Some(_), len, nbs, .. } = a {
                units += 1;
                big += usize::from(*len > 9014);
                assert_eq!(*nbs, 1);
            }
        }
    }
    assert!(units > 50 && big > 10 && uro > 20, "{units} {big} {uro}");
}

/// On an older Windows (`edges::older_ndis`) no burst is a URO unit (NDIS
/// turned URO off): the schedule's become RSC units of as many segments,
/// and nothing else of the schedule moves.
#[test]
fn schedules_on_an_older_windows_have_no_uro_units() {
    let uro_units = |s: &Schedule| {
        let is_uro = |c: &Option<Coalesced>| matches!(c, Some(Coalesced::Uro { .. }));
        s.nic
            .iter()
            .map(|a| match a {
                NicAction::Inject { coalesce, shape, .. } => {
                    usize::from(is_uro(coalesce))
                        + shape.iter().flat_map(|sh| &sh.coalesces).filter(|c| is_uro(c)).count()
                }
                _ => 0,
            })
            .sum::<usize>()
    };
    let (mut old, mut turned) = (0, 0);
    for seed in 0..400 {
        let new = generate(seed, GenOptions { old_ndis: 0, ..plain() });
        assert_eq!(new.ndis_version, None);
        let s = generate(seed, GenOptions { old_ndis: 1000, ..plain() });
        let v = s.ndis_version.expect("every schedule on an older Windows");
        assert!(((6, 30)..(6, 89)).contains(&v), "{v:?}");
        assert_eq!(uro_units(&s), 0, "seed {seed}");
        turned += uro_units(&new);
        old += usize::from(v == (6, 30));
        // Only the URO units changed.
        assert_eq!((s.adapters, s.pnp, s.handles), (new.adapters.clone(), new.pnp.clone(), new.handles.clone()));
        assert_eq!(s.nic.len(), new.nic.len());
    }
    assert!(turned > 5 && old > 5, "{turned} URO units, {old} schedules on NDIS 6.30");
}

/// Some boots have binds and a user's open inside the registration, or
/// more emulated processors, or a miniport that cannot be opened the first
/// time; never binds in the registration of adapters bound late.
#[test]
fn some_boots_bind_and_open_during_the_registration() {
    let (mut binds, mut opens, mut cpus, mut flaky) = (0, 0, 0, 0);
    for seed in 0..400 {
        let s = generate(seed, plain());
        assert!(!(s.binds_in_registration && s.late_binds), "seed {seed}");
        assert!(s.cpus.is_none_or(|n| (3..=4).contains(&n)), "seed {seed}: {:?}", s.cpus);
        binds += usize::from(s.binds_in_registration);
        opens += usize::from(s.open_in_registration);
        cpus += usize::from(s.cpus.is_some());
        flaky += s.adapters.iter().filter(|a| a.contains("open=fail-once")).count();
        assert!(s.adapters.iter().all(|a| !(a.contains("open=fail-once") && a.contains("open=fail,"))), "seed {seed}");
    }
    assert!(binds > 20 && opens > 20 && cpus > 40 && flaky > 20, "{binds} {opens} {cpus} {flaky}");
}

#[test]
fn some_schedules_bind_late_and_close_handles_under_requests_in_flight() {
    let (mut late, mut racing, mut waits, mut cancelled) = (0, 0, 0, 0);
    for seed in 0..300 {
        let o = GenOptions { parallel: 1 + (seed % 3) as u8, ..plain() };
        let s = generate(seed, o);
        let n = adapter_count(&s.adapters);
        if s.late_binds {
            late += 1;
            let first = s.pnp.iter().find(|a| !matches!(a, PnpAction::Sleep { .. }));
            assert_eq!(first, Some(&PnpAction::BindAll), "seed {seed}: the main PnP actor binds first");
            waits += s.handles.iter().filter(|l| matches!(l.get(1), Some(IoAction::WaitBinds { .. }))).count();
            // Half of them are followed by one cancelled before it runs.
            cancelled += s
                .handles
                .iter()
                .filter(|l| {
                    matches!(l.get(2), Some(IoAction::RaceCancel { request: Late::WaitBinds, first: true, .. }))
                })
                .count();
        }
        assert!(s.pnp_more.iter().flatten().all(|a| *a != PnpAction::BindAll));
        for a in s.handles.iter().flatten() {
            if let IoAction::CloseRacing { late, .. } = a {
                racing += 1;
                assert!((1..=4).contains(&late.len()));
                assert!(late.iter().all(|l| !matches!(l, Late::Open { a } if *a >= n)));
            }
        }
    }
    assert!((20..=80).contains(&late) && waits > 10 && racing > 30, "{late} {waits} {racing}");
    assert!(cancelled * 4 > waits && cancelled * 4 < waits * 3, "{cancelled} of {waits}");
}

#[test]
fn damaged_requests_of_every_kind_come_and_name_existing_adapters() {
    let o = plain();
    let mut kinds = [0usize; 5];
    let (mut short, mut stomps) = (0, 0);
    for seed in 0..200 {
        let s = generate(seed, o);
        let n = adapter_count(&s.adapters);
        for a in s.handles.iter().flatten() {
            let IoAction::Mutated { request, edits, out_len, .. } = a else { continue };
            kinds[match request {
                Template::Open { a, .. } => {
                    assert!(*a < n, "seed {seed}");
                    0
                }
                Template::SendBatch { .. } => 1,
                Template::Oid { .. } => 2,
                Template::Empty { .. } => 3,
                // Their own test: `run/handles/requests.rs`.
                _ => 4,
            }] += 1;
            assert!((1..=4).contains(&edits.len()));
            short += usize::from(*out_len == OutLen::Short);
            stomps += edits.iter().filter(|e| matches!(e, Edit::Stomp { .. })).count();
        }
    }
    assert!(kinds.iter().all(|&k| k > 50), "{kinds:?}");
    assert!(short > 20 && stomps > 100, "{short} {stomps}");
}

#[test]
fn some_schedules_share_handles_among_their_threads() {
    let o = plain();
    let (mut multi, mut shared, mut created_and_used, mut two_users) = (0, 0, 0, 0);
    for seed in 0..300 {
        let s = generate(seed, o);
        let uses = |l: &Vec<IoAction>| l.iter().filter(|a| a.slot() == Some(SHARED_SLOTS)).count();
        if s.handles.len() >= 2 {
            multi += 1;
        }
        let users = s.handles.iter().filter(|l| uses(l) > 0).count();
        if users == 0 {
            assert!(s.handles.iter().flatten().all(|a| a.slot().is_none_or(|x| x < SHARED_SLOTS)));
            continue;
        }
        shared += 1;
        // Mostly two threads or more (a thread that never used the slot
        // it gave up does not use the shared one).
        two_users += usize::from(users >= 2);
        let creates = s.handles.iter().flatten().any(|a| *a == IoAction::Create { slot: SHARED_SLOTS });
        let requests =
            s.handles.iter().flatten().any(|a| {
                a.slot() == Some(SHARED_SLOTS) && !matches!(a, IoAction::Create { .. } | IoAction::Close { .. })
            });
        created_and_used += usize::from(creates && requests);
    }
    // About 35% of the schedules with two threads or more.
    assert!(shared * 100 > multi * 20 && shared * 100 < multi * 50, "{shared} of {multi}");
    assert!(created_and_used * 10 > shared * 8, "{created_and_used} of {shared}");
    assert!(two_users * 10 > shared * 8, "{two_users} of {shared}");
}

#[test]
fn adapter_specs_parse_and_actions_name_existing_adapters() {
    let o = GenOptions { mode: Mode::Det, lowres: 10, special_pool: true, ..plain() };
    for seed in 0..300 {
        let s = generate(seed, o);
        let mut n = 0;
        for spec in &s.adapters {
            n += ndisim::AdapterSpec::parse(spec).unwrap_or_else(|e| panic!("seed {seed}: {e}")).len();
        }
        assert_eq!(n, adapter_count(&s.adapters));
        for a in &s.pnp {
            if let PnpAction::Pause { a } | PnpAction::Unbind { a } | PnpAction::Bind { a } = a {
                assert!(*a < n);
            }
        }
    }
}

#[test]
fn a_filter_storm_opens_handles_with_filters_of_their_own_on_several_threads() {
    let o = GenOptions { profile: Some(Profile::FilterStorm), ..plain() };
    let mut filters = std::collections::HashSet::new();
    for seed in 0..40 {
        let s = generate(seed, o);
        assert!(s.handles.len() >= 2, "seed {seed}: {} threads", s.handles.len());
        for h in &s.handles {
            let opens: Vec<u32> = h
                .iter()
                .filter_map(|a| match a {
                    IoAction::Open { filter, .. } => Some(*filter),
                    _ => None,
                })
                .collect();
            assert!(opens.len() >= 2, "seed {seed}: {opens:?}");
            filters.extend(opens);
        }
    }
    assert!(filters.len() >= 8, "{filters:x?}");
    // Never drawn: every seed keeps the schedule it had before it.
    assert!(!Profile::ALL.contains(&Profile::FilterStorm));
}

/// A quarter of the good ring attaches are followed by a RING_WAIT
/// cancelled before its dispatch routine (the rings hold nothing yet).
#[test]
fn some_good_attaches_are_followed_by_a_ring_wait_cancelled_first() {
    let o = GenOptions { profile: Some(Profile::RingStorm), ..plain() };
    let (mut attaches, mut cancelled) = (0, 0);
    for seed in 0..60 {
        for h in &generate(seed, o).handles {
            for w in h.windows(2) {
                if let IoAction::Ring { slot, op: RingOp::Attach { damage: AttachDamage::None, .. } } = w[0] {
                    attaches += 1;
                    if w[1] == (IoAction::RaceCancel { slot, request: Late::RingWait, first: true }) {
                        cancelled += 1;
                    }
                }
            }
        }
    }
    assert!(attaches > 100 && cancelled * 6 > attaches && cancelled * 3 < attaches, "{cancelled} of {attaches}");
}

/// Two filter storms in three have miniports fail every packet-filter set
/// for 20 to 200 ms (`NDIS_STATUS_FAILURE`: a failure no bit is blamed
/// for), a tenth of the other schedules one such window.
#[test]
fn filter_storms_have_miniports_fail_filter_sets_for_a_while() {
    let windows = |s: &Schedule| {
        s.nic
            .iter()
            .filter(|a| {
                matches!(a, NicAction::FailOids { oids, ms, busy: 0, .. }
                    if oids == &[ndis_sys::OID_GEN_CURRENT_PACKET_FILTER] && (20..=200).contains(ms))
            })
            .count()
    };
    let storm = GenOptions { profile: Some(Profile::FilterStorm), ..plain() };
    let failing = (0..300).filter(|&seed| windows(&generate(seed, storm)) > 0).count();
    assert!((170..=230).contains(&failing), "{failing} of 300 filter storms");
    let mixed = (0..300).filter(|&seed| windows(&generate(seed, plain())) > 0).count();
    assert!((15..=50).contains(&mixed), "{mixed} of 300 mixed schedules");
}

/// Some miniports refuse all-multicast alone: rarely in a mixed run (one
/// in sixteen of the adapters that draw a filter option, in place of some
/// `filters=0xf`, so the others keep their options), a quarter of a
/// filter storm's adapters without a filter option of their own.
#[test]
fn some_miniports_refuse_all_multicast_alone() {
    let count = |o: GenOptions| {
        let (mut alone, mut filter, mut all) = (0, 0, 0);
        for seed in 0..1500 {
            for spec in generate(seed, o).adapters {
                alone += usize::from(spec.contains("refuse-filter=0x4"));
                filter += usize::from(spec.contains("filter"));
                all += 1;
            }
        }
        (alone, filter, all)
    };
    let (alone, filter, all) = count(plain());
    assert!(alone > 0 && alone * 8 < filter && alone * 40 < all, "{alone} of {filter} of {all}");
    let (alone, _, all) = count(GenOptions { profile: Some(Profile::FilterStorm), ..plain() });
    assert!(alone * 8 > all, "filter storm: {alone} of {all}");
}

/// One adapter in ten has its shared multicast list all but full: one to
/// three entries left (`multicast-held=29..31`); never a scene's.
#[test]
fn some_adapters_have_little_room_left_on_their_multicast_list() {
    let (mut held, mut all) = (0, 0);
    let mut values = std::collections::BTreeSet::new();
    for seed in 0..1000 {
        for spec in generate(seed, plain()).adapters {
            all += 1;
            if let Some((_, v)) = spec.split_once("multicast-held=") {
                held += 1;
                values.insert(v.split(',').next().unwrap().parse::<u32>().unwrap());
            }
        }
    }
    assert!(held * 20 > all && held * 6 < all, "{held} of {all}");
    assert_eq!(values.into_iter().collect::<Vec<_>>(), vec![29, 30, 31]);
    for seed in 0..50 {
        let s = generate(seed, GenOptions { profile: Some(Profile::UnionRace), ..plain() });
        assert!(s.adapters.iter().all(|a| !a.contains("multicast-held")));
    }
}

/// A ring storm makes every handle thread a ring user, floods their
/// adapters (more bursts than any other schedule's rings get), and half
/// its attaches have an rx ring of 8 or 16 entries; with `rings: 0` too.
#[test]
fn a_ring_storm_gives_every_thread_rings_and_their_adapters_floods() {
    use crate::schedule::{IoAction, NicAction, RingOp};
    let (mut attaches, mut small) = (0, 0);
    for seed in 0..100 {
        let s = generate(seed, GenOptions { profile: Some(Profile::RingStorm), ..plain() });
        assert!(!s.handles.is_empty());
        for list in &s.handles {
            assert!(list.iter().any(|a| matches!(a, IoAction::Ring { .. })), "seed {seed}: a thread without rings");
            for a in list {
                if let IoAction::Ring { op: RingOp::Attach { rx, .. }, .. } = a {
                    attaches += 1;
                    small += usize::from(*rx <= 16);
                }
            }
        }
        let bursts = s.nic.iter().filter(|a| matches!(a, NicAction::Inject { .. })).count();
        assert!(bursts >= 40, "seed {seed}: {bursts} bursts");
    }
    assert!(small * 3 > attaches, "{small} of {attaches} attaches with a small rx ring");
}

#[test]
fn a_quarter_of_the_schedules_slow_handlers_ndisim_knows_and_half_the_ring_storms() {
    let slowed = |profile, mode| {
        (0..400u64)
            .filter_map(|seed| generate(seed, GenOptions { profile, mode, ..plain() }).slow)
            .inspect(|w| {
                let names: Vec<&str> = w.handlers.iter().map(String::as_str).collect();
                ndisim::slow::Slow::new(&names, w.per_mille, w.max_us, 0).expect("handlers ndisim can slow");
                assert!(w.per_mille > 0 && w.max_us > 0, "{w:?}");
            })
            .count()
    };
    let mixed = slowed(Some(Profile::Mixed), Mode::Free);
    let det = slowed(Some(Profile::Mixed), Mode::Det);
    let storm = slowed(Some(Profile::RingStorm), Mode::Free);
    assert!((70..130).contains(&mixed) && (70..130).contains(&det), "{mixed} free, {det} det of 400");
    assert!((160..240).contains(&storm), "{storm} ring storms of 400");
}

#[test]
fn some_restarts_change_the_supported_filters_and_some_miniports_overstate() {
    let (mut restarts, mut changed, mut adapters, mut overstating) = (0, 0, 0, 0);
    for seed in 0..300 {
        let s = generate(seed, plain());
        for act in &s.pnp {
            if let PnpAction::Restart { supported, .. } = act {
                restarts += 1;
                if let Some(f) = supported {
                    changed += 1;
                    assert!(edges::SUPPORTED_AFTER_RESTART.contains(f), "seed {seed}: {f:#x}");
                    assert_ne!(f & 1, 0, "directed frames are always supported");
                }
            }
        }
        adapters += s.adapters.len();
        overstating += s.adapters.iter().filter(|a| a.contains("oid-overstate=on")).count();
    }
    // One restart in eight, one adapter spec in ten, give or take.
    assert!(changed * 16 > restarts && changed * 5 < restarts, "{changed} of {restarts}");
    assert!(overstating * 20 > adapters && overstating * 5 < adapters, "{overstating} of {adapters}");
}

#[test]
fn some_reads_and_writes_ask_for_no_bytes() {
    let (mut empty, mut all) = (0, 0);
    for seed in 0..200 {
        for act in generate(seed, plain()).handles.iter().flatten() {
            let len = match act {
                IoAction::Read { len, .. } => u64::from(*len),
                IoAction::Write { len, .. } => u64::from(*len),
                _ => continue,
            };
            all += 1;
            empty += usize::from(len == 0);
        }
    }
    assert!(empty * 100 > all && empty * 20 < all, "{empty} of {all}");
}

/// `--mixed-bursts`: some bursts send their frames to two to four
/// destinations in turn, the burst's own first, some with frames of
/// another EtherType; some ring users' opens list EtherTypes; the rest of
/// each schedule is what it is without (0: the schedule it had before).
#[test]
fn some_bursts_mix_destinations_and_nothing_else_changes() {
    let (mut mixed, mut foreign, mut bursts, mut listed) = (0, 0, 0, 0);
    // A schedule's handles with the EtherType lists of its opens cleared.
    let unlisted = |s: &Schedule| {
        let mut h = s.handles.clone();
        for a in h.iter_mut().flatten() {
            if let IoAction::Open { ethertypes, .. } = a {
                ethertypes.clear();
            }
        }
        h
    };
    for seed in 0..200 {
        let old = generate(seed, GenOptions { rings: 500, ..plain() });
        let s = generate(seed, GenOptions { rings: 500, mixed_bursts: MIXED_BURSTS_PER_MILLE, ..plain() });
        assert_eq!((&s.adapters, &s.pnp), (&old.adapters, &old.pnp), "seed {seed}");
        assert_eq!(unlisted(&s), unlisted(&old), "seed {seed}");
        for (t, (a, b)) in s.handles.iter().flatten().zip(old.handles.iter().flatten()).enumerate() {
            if let (IoAction::Open { ethertypes, .. }, IoAction::Open { ethertypes: e0, .. }) = (a, b) {
                if ethertypes != e0 {
                    assert!(e0.is_empty() && ethertypes.len() == 1, "seed {seed}, action {t}: {ethertypes:x?}");
                    listed += 1;
                }
            }
        }
        assert_eq!(s.nic.len(), old.nic.len());
        for (a, b) in s.nic.iter().zip(&old.nic) {
            match (a, b) {
                (NicAction::Inject { dst, shape, .. }, NicAction::Inject { dst: d0, shape: s0, .. }) => {
                    bursts += 1;
                    assert_eq!(dst, d0);
                    let (dsts, other) = shape.as_ref().map_or((&[][..], &[][..]), |s| (&s.dsts[..], &s.foreign[..]));
                    if dsts.is_empty() && other.is_empty() {
                        assert_eq!(shape, s0);
                        continue;
                    }
                    mixed += 1;
                    if let Some(sh) = shape.as_ref().filter(|_| !dsts.is_empty()) {
                        assert!((2..=4).contains(&dsts.len()) && dsts[0] == *dst, "{dsts:?}");
                        // Only where the oracle knows each frame's NBL
                        // whatever the adapter drops.
                        assert!(sh.tcis.is_empty() && sh.loopbacks.is_empty() && sh.coalesces.is_empty(), "{sh:?}");
                    }
                    // Besides its destinations and EtherTypes, the shape it had.
                    let mut without = shape.clone().unwrap_or_default();
                    without.dsts.clear();
                    if !without.foreign.is_empty() {
                        foreign += 1;
                        assert!(without.foreign.contains(&true) && without.foreign.contains(&false));
                    }
                    without.foreign.clear();
                    assert_eq!(&without, &s0.clone().unwrap_or_default());
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }
    assert!(mixed * 1000 > bursts * 100 && mixed * 1000 < bursts * 200, "{mixed} of {bursts} bursts mixed");
    assert!(foreign * 3 > mixed && foreign * 4 < mixed * 3, "{foreign} of {mixed} with other EtherTypes");
    assert!(listed > 10, "{listed} ring users' opens list EtherTypes");
}

/// `--random-programs`: at 1000 every program but the empty, the longest
/// and the refused one is random, about one in ten of those spoiled; the
/// rest of each schedule is what it is without (0: the schedule it had
/// before).
#[test]
fn random_programs_replace_the_fixed_ones_and_nothing_else() {
    let (mut random, mut refused) = (0, 0);
    for seed in 0..100 {
        let o = GenOptions { rings: 500, mixed_bursts: MIXED_BURSTS_PER_MILLE, ..plain() };
        let old = generate(seed, o);
        let s = generate(seed, GenOptions { random_programs: 1000, ..o });
        assert_eq!((&s.adapters, &s.pnp, &s.nic), (&old.adapters, &old.pnp, &old.nic), "seed {seed}");
        assert_eq!(
            s.handles.iter().map(Vec::len).collect::<Vec<_>>(),
            old.handles.iter().map(Vec::len).collect::<Vec<_>>()
        );
        for (a, b) in s.handles.iter().flatten().zip(old.handles.iter().flatten()) {
            match (a, b) {
                (IoAction::Program { slot, kind }, IoAction::Program { slot: s0, kind: k0 }) => {
                    assert_eq!(slot, s0);
                    let fixed = matches!(k0, ProgramKind::Clear | ProgramKind::Longest | ProgramKind::Refused);
                    match kind {
                        ProgramKind::Random { refused: r, .. } => {
                            assert!(!fixed, "{k0:?}");
                            random += 1;
                            refused += u32::from(*r);
                        }
                        k => assert!(fixed && k == k0, "{k:?} for {k0:?}"),
                    }
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }
    assert!(random > 100 && refused * 20 > random && refused * 5 < random, "{refused} of {random} spoiled");
}

#[test]
fn refused_allocations_come_from_the_seed_and_nothing_else_changes() {
    let off = plain();
    let on = GenOptions { fail_nth: 1000, ..off };
    let some = GenOptions { fail_nth: 250, ..off };
    let (mut early, mut counts, mut drawn, mut lasting, mut in_body) = (0, std::collections::BTreeMap::new(), 0, 0, 0);
    for seed in 170_000_000..170_000_400 {
        let (a, b) = (generate(seed, off), generate(seed, on));
        // Off, no burst; on, the same schedule with one.
        assert_eq!(a.fail_nth, None);
        let f = b.fail_nth.expect("every schedule has a burst at 1000 per mille");
        assert_eq!(Schedule { fail_nth: None, ..b.clone() }, a, "seed {seed}");
        // Replayable: the same seed draws the same burst, which the
        // schedule's JSON (what --print shows and --replay reads) and its
        // header keep.
        assert_eq!(generate(seed, on).fail_nth, Some(f));
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&j).unwrap(), b);
        assert!(b.describe().lines().next().unwrap().contains(&format!("fail-nth {} count {}", f.n, f.count)));
        // A burst that lasts into the teardown refuses to the end, and
        // says so (the others' JSON is as it was, without the field).
        assert_eq!(b.describe().lines().next().unwrap().contains(" lasting"), f.lasting);
        assert_eq!(j.contains("lasting"), f.lasting);
        if f.lasting {
            assert_eq!(f.count, FailNth::ALL, "seed {seed}");
            lasting += 1;
        }
        // A burst aimed at the body counts from its start, within the
        // profile's body span, and says so.
        assert_eq!(b.describe().lines().next().unwrap().contains(" in-body"), f.in_body);
        assert_eq!(j.contains("in_body"), f.in_body);
        if f.in_body {
            assert!(
                !f.lasting && (1..=super::fail_nth::fail_nth_body_span(Profile::Crowd)).contains(&f.n),
                "seed {seed}: {f:?}"
            );
            in_body += 1;
        }
        assert!(!serde_json::to_string(&a).unwrap().contains("fail_nth"));
        assert!((1..=FAIL_NTH_SPAN).contains(&f.n), "seed {seed}: {f:?}");
        early += usize::from(f.n <= FAIL_NTH_EARLY && !f.in_body);
        if !f.lasting {
            *counts.entry(f.count).or_insert(0) += 1;
        }
        // A share of the seeds only, each with the burst it has at 1000.
        if let Some(g) = generate(seed, some).fail_nth {
            assert_eq!(g, f);
            drawn += 1;
        }
    }
    // One in eight early (and a few of the rest by chance), most bursts
    // of one allocation, some of 4, 16 and 1000.
    assert!((40..=90).contains(&early), "{early}");
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [1, 4, 16, 1000]);
    assert!(counts[&1] > 200, "{counts:?}");
    assert!((60..=140).contains(&drawn), "{drawn}");
    // One in eight lasts; of the rest not drawn early, half are aimed at
    // the body.
    assert!((25..=80).contains(&lasting), "{lasting}");
    assert!((120..=190).contains(&in_body), "{in_body}");
    // The scenes get theirs too.
    let scene = generate(170_000_000, GenOptions { profile: Some(Profile::UnionRace), ..on });
    assert!(scene.fail_nth.is_some());
}

#[test]
fn each_profiles_bursts_fit_its_span() {
    for p in Profile::NAMED {
        let o = GenOptions { fail_nth: 1000, profile: Some(p), ..plain() };
        let span = fail_nth_span(p);
        assert!((600..=FAIL_NTH_SPAN).contains(&span), "{p:?}");
        let (mut late, mut top) = (0, 0);
        for seed in 180_000_000..180_000_060 {
            let f = generate(seed, o).fail_nth.expect("every schedule has a burst at 1000 per mille");
            // (One aimed at the body counts from the body's start, within
            // the profile's body span.)
            if f.in_body {
                assert!((1..=super::fail_nth::fail_nth_body_span(p)).contains(&f.n), "{p:?} seed {seed}: {f:?}");
                late += 1;
                continue;
            }
            assert!((1..=span).contains(&f.n), "{p:?} seed {seed}: {f:?}");
            late += usize::from(f.n > FAIL_NTH_EARLY);
            top = top.max(f.n);
        }
        // Most anywhere in the span, reaching its far half.
        assert!(late >= 40 && top > span / 2, "{p:?}: {late} late, the furthest {top}");
    }
    // The profile sets the span only: the count and the early share are
    // the seed's whatever the profile.
    let of = |p| generate(180_000_007, GenOptions { fail_nth: 1000, profile: Some(p), ..plain() }).fail_nth.unwrap();
    assert_eq!(of(Profile::Teardown).count, of(Profile::UnionRace).count);
}

#[test]
fn answers_on_arrival_come_only_with_the_knob_and_only_where_status_comes_in_binds() {
    let off = plain();
    let on = GenOptions { answer_on_arrival: 1000, ..off };
    let (mut schedules, mut adapters, mut made_pending) = (0, 0, 0);
    for seed in 180_000_000..180_000_200 {
        let (a, b) = (generate(seed, off), generate(seed, on));
        // Off: none, and nothing in the JSON (every seed as it was).
        assert!(a.answer_on_arrival.is_empty());
        assert!(!serde_json::to_string(&a).unwrap().contains("answer_on_arrival"));
        // On: the same schedule but for the field and `oid=pending` on
        // the adapters that answer on arrival.
        let strip = |s: &str| s.replace(",oid=pending", "");
        let specs: Vec<String> = b.adapters.iter().map(|s| strip(s)).collect();
        let a_specs: Vec<String> = a.adapters.iter().map(|s| strip(s)).collect();
        assert_eq!(specs, a_specs, "seed {seed}");
        assert_eq!(
            Schedule { answer_on_arrival: Vec::new(), adapters: a.adapters.clone(), ..b.clone() },
            a,
            "seed {seed}"
        );
        for &i in &b.answer_on_arrival {
            let spec = adapter_spec(&b.adapters, i).expect("an adapter of the schedule");
            assert!(spec.contains("bind-status=") && spec.contains("oid="), "seed {seed}: {spec}");
            adapters += 1;
        }
        made_pending += b.adapters.iter().zip(&a.adapters).filter(|(x, y)| x != y).count();
        schedules += usize::from(!b.answer_on_arrival.is_empty());
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&j).unwrap(), b);
    }
    // A third of the specs have bind-status, three in four of those answer
    // on arrival (72 of these 200 schedules, 118 adapters, 49 specs made
    // to pend).
    assert!(schedules > 40 && adapters >= schedules && made_pending > 25, "{schedules} {adapters} {made_pending}");
}

#[test]
fn points_after_exports_are_drawn_on_their_own() {
    let off = GenOptions::plain(Mode::Det);
    let on = GenOptions { points_after: edges::POINTS_AFTER_PER_MILLE, ..off };
    let mut drawn = 0;
    for seed in 181_000_000..181_000_400 {
        let (a, b) = (generate(seed, off), generate(seed, on));
        assert!(!a.points_after && !serde_json::to_string(&a).unwrap().contains("points_after"), "seed {seed}");
        assert_eq!(Schedule { points_after: false, ..b.clone() }, a, "seed {seed}");
        drawn += usize::from(b.points_after);
        let free = GenOptions { mode: Mode::Free, ..on };
        assert_eq!(generate(seed, free).points_after, b.points_after, "seed {seed}: free-running too");
    }
    // A quarter of 400.
    assert!((70..=130).contains(&drawn), "{drawn}");
}

#[test]
fn twins_are_drawn_on_their_own_and_only_for_det_schedules() {
    let off = GenOptions::plain(Mode::Det);
    let on = GenOptions { twin: edges::TWIN_PER_MILLE, ..off };
    let mut twins = 0;
    for seed in 180_000_000..180_000_400 {
        let (a, b) = (generate(seed, off), generate(seed, on));
        // Off: none, and nothing in the JSON.
        assert!(!a.twin && !serde_json::to_string(&a).unwrap().contains("twin"), "seed {seed}");
        // On: the same schedule but for the field.
        assert_eq!(Schedule { twin: false, ..b.clone() }, a, "seed {seed}");
        twins += usize::from(b.twin);
        // Free-running schedules replay no interleaving: never twins.
        assert!(!generate(seed, GenOptions { twin: 1000, ..plain() }).twin, "seed {seed}");
    }
    // One in eight of 400.
    assert!((30..=70).contains(&twins), "{twins} twins");
    assert!((180_000_000..180_000_020).all(|s| generate(s, GenOptions { twin: 1000, ..off }).twin));
}

#[test]
fn some_sends_are_shorter_than_sixty_bytes() {
    let (mut short, mut all) = (0, 0);
    for seed in 180_000_000..180_000_100 {
        for act in generate(seed, plain()).handles.iter().flatten() {
            if let IoAction::Write { len, .. } | IoAction::SendBatch { len, .. } = act {
                all += usize::from(*len > 0);
                short += usize::from((1..60).contains(len));
                assert!(*len == 0 || *len >= 26, "seed {seed}: {len}");
            }
        }
    }
    // One in sixteen.
    assert!(all > 500 && short * 30 > all && short * 10 < all, "{short} of {all}");
}
