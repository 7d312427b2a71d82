//! What a failed packet-filter set is put down to, against the real
//! rawnic.sys in ndisim: only a refusal that says the adapter does not
//! support the filter (`NDIS_STATUS_NOT_SUPPORTED`, `NOT_RECOGNIZED`,
//! `INVALID_DATA`) bans a bit, and only a bit the adapter refuses: a set
//! that added promiscuous mode and all-multicast at once and was refused
//! is followed by a probe without promiscuous mode, so a bit the adapter
//! takes is never banned, whatever order the sets complete in. A set that
//! failed for any other reason bans nothing: the filter is owed, set
//! again, and the handles told as for any failure.

use ndis_sys::*;
use ndisim::{AdapterId, Handle, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use std::time::{Duration, Instant};

const PROMISC: PacketFilter = filter::DEFAULT.union(filter::PROMISCUOUS);
/// What the driver sets for a promiscuous handle: promiscuous implies
/// all-multicast.
const PROMISC_SET: PacketFilter = PROMISC.union(filter::ALL_MULTICAST);

fn open_plain(sim: &Sim, f: PacketFilter) -> Handle {
    let h = sim.open().unwrap();
    let name = entry(sim, 0).name;
    let req = open_request_full(&name, f, &[], (0, 0, 0), LocalSends::Others, false);
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
    assert_eq!(r.status, 0, "{:?}", status(r.status));
    h
}

/// Events queued on `h` now (kinds and refused bits), without waiting.
fn events_now(h: &Handle) -> Vec<(u16, PacketFilter, PacketFilter)> {
    let mut out = Vec::new();
    loop {
        let t = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN).unwrap();
        match t.try_result() {
            Some(r) => {
                assert_eq!(r.status, 0);
                let e = EventRecord::parse(&r.data).unwrap();
                out.push((e.kind, e.filter, e.refused));
            }
            None => {
                t.cancel();
                t.wait();
                return out;
            }
        }
    }
}

/// The packet-filter sets pending at `a`: (seq, value).
fn held_sets(sim: &Sim, a: AdapterId) -> Vec<(u64, PacketFilter)> {
    sim.pending_oids(a)
        .into_iter()
        .filter(|o| o.oid == OID_GEN_CURRENT_PACKET_FILTER && o.data.len() == 4)
        .map(|o| (o.seq, PacketFilter::from_bits_retain(u32::from_le_bytes(o.data[..4].try_into().unwrap()))))
        .collect()
}

/// Answers the OID requests the adapter holds, as it answers them (a
/// refused bit: `NDIS_STATUS_NOT_SUPPORTED`), the newest packet-filter set
/// first (`newest_first`) or the oldest, one at a time, until none comes
/// for a while and `done` says so. Returns the filter sets, in the order
/// answered.
fn answer_sets(sim: &Sim, a: AdapterId, newest_first: bool, done: impl Fn() -> bool) -> Vec<PacketFilter> {
    let mut answered = Vec::new();
    let mut quiet = Instant::now();
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(20), "sets answered: {answered:?}");
        let sets = held_sets(sim, a);
        let pick = if newest_first { sets.last() } else { sets.first() };
        if let Some(&(seq, value)) = pick {
            if sim.complete_oid(a, seq, None).unwrap() {
                answered.push(value);
            }
            quiet = Instant::now();
            continue;
        }
        // Other requests (a restart's queries) as they come.
        for o in sim.pending_oids(a) {
            sim.complete_oid(a, o.seq, None).unwrap();
            quiet = Instant::now();
        }
        if quiet.elapsed() > Duration::from_millis(150) && done() {
            return answered;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An adapter that refuses all-multicast only: a promiscuous handle keeps
/// promiscuous mode (the probe without it is refused, so all-multicast is
/// to blame, and promiscuous mode is taken alone), and loses nothing, since
/// promiscuous mode covers every multicast frame. An adapter that refuses
/// promiscuous mode only: the probe is taken, promiscuous mode is banned
/// and nothing else. One that refuses both: both, one at a time. Before,
/// promiscuous mode was blamed first, whatever the adapter refused: on the
/// first adapter, the handle lost the promiscuous mode it supports.
#[test]
fn only_the_bit_the_adapter_refuses_is_banned() {
    use filter::{ALL_MULTICAST as A, PROMISCUOUS as P};
    // (refused by the adapter, banned, adapter's filter in the end, the
    // handle's effective filter, sets the open costs at most)
    let cases = [
        (A, A, PROMISC, PROMISC, 3),
        (P, P, filter::DEFAULT | A, filter::DEFAULT | A, 2),
        (P | A, P | A, filter::DEFAULT, filter::DEFAULT, 3),
    ];
    for (refuses, banned, set, effective, most) in cases {
        let sim = start(&[&format!("null@refuse-filter={:#x}", refuses.bits())]);
        let a = sim.adapter_id("null0").unwrap();
        let plain = open_plain(&sim, filter::DEFAULT);
        sim.oid_log(a, true);
        let h = open_plain(&sim, PROMISC);
        // The sets may complete after the open returns.
        let t0 = Instant::now();
        while sim.adapter_filter(a).unwrap().1 != set.bits() || entry(&sim, 0).refused_filter != banned {
            assert!(t0.elapsed() < Duration::from_secs(10), "adapter refusing {refuses:?}: settles");
            std::thread::sleep(Duration::from_millis(2));
        }
        sim.sleep(Duration::from_millis(50));
        let sets = sim
            .oid_log(a, false)
            .into_iter()
            .filter(|&(k, oid)| k == NdisRequestSetInformation && oid == OID_GEN_CURRENT_PACKET_FILTER)
            .count();
        let what = format!("adapter refusing {refuses:?}");
        assert_eq!(entry(&sim, 0).refused_filter, banned, "{what}");
        assert_eq!(sim.adapter_filter(a).unwrap().1, set.bits(), "{what}");
        assert_eq!(stats(&h).effective_filter, effective, "{what}");
        assert!(sets <= most, "{what}: {sets} packet-filter sets for one open");
        let told = events_now(&h);
        let lost = filter::lost(PROMISC, effective);
        if lost.is_empty() {
            assert!(told.is_empty(), "{what}: nothing lost, nothing told: {told:?}");
        } else {
            assert_eq!(told, vec![(event::FILTER_REFUSED, effective, lost)], "{what}");
        }
        assert!(events_now(&plain).is_empty(), "{what}");
        // A handle that asks for all-multicast itself gets it unless the
        // adapter refuses it.
        let am = open_plain(&sim, filter::DEFAULT | A);
        let want = if banned.contains(A) { filter::DEFAULT } else { filter::DEFAULT | A };
        assert_eq!(stats(&am).effective_filter, want, "{what}");
        drop((plain, h, am));
        finish(sim);
    }
}

/// The same with the sets completing late and in either order: the one
/// from before a pause and a restart's are both on their way, both adding
/// promiscuous mode and all-multicast, on an adapter that refuses only
/// all-multicast. Whichever is answered first, and whatever the probes
/// that follow meet, promiscuous mode is never banned, the restart
/// succeeds, and the sets stay few.
#[test]
fn blame_stays_precise_when_sets_complete_late_and_out_of_order() {
    for newest_first in [false, true] {
        let sim = start(&["null@refuse-filter=0x4"]);
        let a = sim.adapter_id("null0").unwrap();
        let plain = open_plain(&sim, filter::DEFAULT);
        sim.hold_oids(a).unwrap();
        let h = open_plain(&sim, PROMISC);
        assert_eq!(held_sets(&sim, a).len(), 1, "the open's set is held");
        sim.pause(a).unwrap();
        let answered = std::thread::scope(|s| {
            let restart = s.spawn(|| sim.restart(a, &RestartSpec::default()));
            let t0 = Instant::now();
            while held_sets(&sim, a).len() < 2 {
                assert!(t0.elapsed() < Duration::from_secs(10), "the restart sets the filter too");
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(held_sets(&sim, a).iter().all(|&(_, v)| v == PROMISC_SET));
            let answered = answer_sets(&sim, a, newest_first, || restart.is_finished());
            restart.join().unwrap().unwrap();
            answered
        });
        sim.release_oids(a).unwrap();
        let order = if newest_first { "newest first" } else { "oldest first" };
        assert_eq!(sim.binding_state(a), ndisim::BindingState::Running, "{order}: the restart succeeded");
        sim.sleep(Duration::from_millis(100));
        assert_eq!(entry(&sim, 0).refused_filter, filter::ALL_MULTICAST, "{order}: {answered:?}");
        assert_eq!(sim.adapter_filter(a).unwrap().1, PROMISC.bits(), "{order}: {answered:?}");
        assert_eq!(stats(&h).effective_filter, PROMISC, "{order}");
        assert!(answered.len() <= 4, "{order}: {answered:?}");
        assert!(!events_now(&h).iter().any(|e| e.0 == event::FILTER_REFUSED), "{order}: nothing lost");
        drop((plain, h));
        finish(sim);
    }
}

/// A set that fails for a reason that says nothing about the filter's
/// bits, answered with each such status, bans nothing: the binding lists
/// no refused bit, and once the adapter is well the handle gets the
/// promiscuous mode it asked for. Before, `NDIS_STATUS_FAILURE`,
/// `NDIS_STATUS_NOT_ACCEPTED` and `NDIS_STATUS_ADAPTER_NOT_READY` banned
/// promiscuous mode (and then all-multicast) for the binding's life.
#[test]
fn a_set_failed_for_another_reason_bans_no_bit() {
    for fail in [
        NDIS_STATUS_FAILURE,
        NDIS_STATUS_NOT_ACCEPTED,
        NDIS_STATUS_ADAPTER_NOT_READY,
        NDIS_STATUS_RESOURCES,
        NDIS_STATUS_REQUEST_ABORTED,
        NDIS_STATUS_RESET_IN_PROGRESS,
    ] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let plain = open_plain(&sim, filter::DEFAULT);
        sim.hold_oids(a).unwrap();
        let h = open_plain(&sim, PROMISC);
        let sets = held_sets(&sim, a);
        assert_eq!(sets.iter().map(|s| s.1).collect::<Vec<_>>(), vec![PROMISC_SET]);
        // Every set on its way now fails so (a retry may follow at once).
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(200) {
            for (seq, _) in held_sets(&sim, a) {
                sim.complete_oid(a, seq, Some(fail)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let what = format!("{fail:#x}");
        assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE, "{what}: nothing banned");
        assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits(), "{what}: the adapter kept its filter");
        // Told as any failure is: the handle gets what the adapter has.
        assert_eq!(stats(&h).effective_filter, filter::DEFAULT, "{what}");
        assert!(!events_now(&h).iter().any(|e| e.0 == event::FILTER_REFUSED), "{what}: no refusal told");
        // The adapter is well again: the owed filter is set.
        sim.release_oids(a).unwrap();
        let t0 = Instant::now();
        while stats(&h).effective_filter != PROMISC {
            assert!(t0.elapsed() < Duration::from_secs(10), "{what}: the filter is set again");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sim.adapter_filter(a).unwrap().1, PROMISC_SET.bits(), "{what}");
        assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE, "{what}");
        drop((plain, h));
        finish(sim);
    }
}

/// The statuses that say the adapter does not support the filter ban the
/// one bit the set added: `NDIS_STATUS_NOT_SUPPORTED` (what ndisim's
/// `refuse-filter` answers), `NDIS_STATUS_NOT_RECOGNIZED` and
/// `NDIS_STATUS_INVALID_DATA`.
#[test]
fn a_set_refused_as_not_supported_bans_the_bit_it_added() {
    for fail in [NDIS_STATUS_NOT_SUPPORTED, NDIS_STATUS_NOT_RECOGNIZED, NDIS_STATUS_INVALID_DATA] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let plain = open_plain(&sim, filter::DEFAULT);
        sim.hold_oids(a).unwrap();
        let am = filter::DEFAULT | filter::ALL_MULTICAST;
        let h = open_plain(&sim, am);
        let sets = held_sets(&sim, a);
        assert_eq!(sets.iter().map(|s| s.1).collect::<Vec<_>>(), vec![am]);
        sim.complete_oid(a, sets[0].0, Some(fail)).unwrap();
        sim.release_oids(a).unwrap();
        sim.sleep(Duration::from_millis(50));
        let what = format!("{fail:#x}");
        assert_eq!(entry(&sim, 0).refused_filter, filter::ALL_MULTICAST, "{what}");
        assert_eq!(stats(&h).effective_filter, filter::DEFAULT, "{what}");
        assert_eq!(events_now(&h), vec![(event::FILTER_REFUSED, filter::DEFAULT, filter::ALL_MULTICAST)], "{what}");
        drop((plain, h));
        finish(sim);
    }
}

/// A refused set that completes while the binding is paused leaves its
/// probe (a set without promiscuous mode) for the next set; if the handle
/// that asked for the refused bits closed meanwhile, that set is no probe:
/// the filter wanted no longer adds the bits, and a probe taken would put
/// the refusal on promiscuous mode, which this adapter takes. Found by
/// `xtask mutants` (M61: the probe made whenever the adapter's filter has
/// none of the bits the refused set added, wanted or not).
#[test]
fn a_probe_left_by_a_handle_that_closed_during_a_pause_bans_nothing() {
    let sim = start(&["null@refuse-filter=0x4"]);
    let a = sim.adapter_id("null0").unwrap();
    let plain = open_plain(&sim, filter::DEFAULT);
    sim.hold_oids(a).unwrap();
    let h = open_plain(&sim, PROMISC);
    let sets = held_sets(&sim, a);
    assert_eq!(sets.iter().map(|s| s.1).collect::<Vec<_>>(), vec![PROMISC_SET]);
    sim.pause(a).unwrap();
    // Refused for all-multicast: the probe that is to follow waits, since
    // the binding is paused.
    assert!(sim.complete_oid(a, sets[0].0, None).unwrap());
    drop(h);
    sim.release_oids(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    sim.sleep(Duration::from_millis(50));
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE, "nothing was put down to a bit");
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits());
    // Promiscuous mode is still the adapter's to give (all-multicast is
    // banned by this open's own probe).
    let p = open_plain(&sim, PROMISC);
    let t0 = Instant::now();
    while sim.adapter_filter(a).unwrap().1 != PROMISC.bits() {
        assert!(t0.elapsed() < Duration::from_secs(10), "promiscuous mode is set");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(stats(&p).effective_filter, PROMISC);
    assert_eq!(entry(&sim, 0).refused_filter, filter::ALL_MULTICAST);
    drop((plain, p));
    finish(sim);
}

/// A set refused as not supported while another that carries the same bit
/// is on its way (the one from before a pause, and the restart's, made
/// before the refusal was known), the other then taken: the adapter took
/// the bit after all, and the refusal is forgotten. The binding lists no
/// refused bit, the handle has all-multicast again, and the adapter keeps
/// it. Found by `xtask mutants` (M644: a bit taken by a set left among the
/// refused ones, so the handle stayed without it, and the next set took it
/// off the adapter).
#[test]
fn a_bit_refused_by_one_set_and_taken_by_a_later_one_is_allowed_again() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let plain = open_plain(&sim, filter::DEFAULT);
    sim.hold_oids(a).unwrap();
    let am = filter::DEFAULT | filter::ALL_MULTICAST;
    let h = open_plain(&sim, am);
    let before = held_sets(&sim, a);
    assert_eq!(before.iter().map(|s| s.1).collect::<Vec<_>>(), vec![am], "the open's set is held");
    sim.pause(a).unwrap();
    std::thread::scope(|s| {
        let restart = s.spawn(|| sim.restart(a, &RestartSpec::default()));
        // The restart's set goes out (and pends) before its handler returns.
        let t0 = Instant::now();
        while sim.pnp_pending(a) != vec![NetEventRestart] && !restart.is_finished() {
            assert!(t0.elapsed() < Duration::from_secs(10), "the restart pends on its requests");
            std::thread::yield_now();
        }
        let sets = held_sets(&sim, a);
        assert_eq!(sets.iter().map(|s| s.1).collect::<Vec<_>>(), vec![am, am], "the restart sets the filter too");
        // The open's set refused: all-multicast is put down as refused.
        assert!(sim.complete_oid(a, sets[0].0, Some(NDIS_STATUS_NOT_SUPPORTED)).unwrap());
        assert_eq!(stats(&h).effective_filter, filter::DEFAULT, "the refusal narrowed the handle");
        // The restart's set, with all-multicast, is taken (and its queries
        // answered, which ends the restart).
        sim.release_oids(a).unwrap();
        restart.join().unwrap().unwrap();
    });
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE, "the bit the adapter took is allowed again");
    assert_eq!(stats(&h).effective_filter, am, "the handle has all-multicast again");
    assert_eq!(sim.adapter_filter(a).unwrap().1, am.bits(), "the adapter keeps it");
    drop((plain, h));
    finish(sim);
}
