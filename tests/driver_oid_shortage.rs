//! A handle's OID requests when the driver's memory runs short (ndisim's
//! `short_of_pool`: the driver's next pool allocations go through, one
//! after them is refused): each allocation a request makes is refused in
//! turn, the request's own (its buffer, its place on the handle's list, the
//! multicast union, the `NDIS_OID_REQUEST` block, its place on the
//! binding's list of requests NDIS holds). Each refusal fails the request
//! at once with STATUS_INSUFFICIENT_RESOURCES, leaves nothing behind (no
//! pool, no request pending, a multicast list as it was, on the handle and
//! on the adapter) and the next request works. The driver's own sets that
//! could not be sent (a packet filter, a multicast union) are owed and set
//! once memory is back.

use ndisim::{Handle, IoToken, Sim};
use rawnic_proto::{
    IOCTL_RAWNIC_OPEN, IOCTL_RAWNIC_QUERY_OID, IOCTL_RAWNIC_SET_OID, NtStatus, OidReplyHeader, OpenReply, PacketFilter,
    filter,
};
use rawnic_tests::drv::*;
use std::time::{Duration, Instant};

/// A group address.
fn g(i: u8) -> [u8; 6] {
    [0x01, 0x00, 0x5e, 0x00, 0x00, i]
}

/// Waits (at most 10 s) until `done()`.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts a user query of the link speed.
fn link_speed_query(h: &Handle) -> IoToken {
    let mut input = vec![0u8; 16];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
    h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &input, 64).unwrap()
}

/// The pool blocks the driver holds (a list that grew in place of a
/// smaller one is still one block).
fn pool_blocks(sim: &Sim) -> u64 {
    let s = sim.pool_stats();
    s.allocations - s.frees
}

/// A shortage aimed at the `skip`+1st allocation from now; whether it was
/// used is `refused(sim, before)`.
fn aim(sim: &Sim, skip: u64) -> u64 {
    let before = sim.alloc_failures();
    sim.short_of_pool(skip, 1);
    before
}

/// Whether the aimed shortage refused an allocation (and ends it if not).
fn refused(sim: &Sim, before: u64) -> bool {
    sim.short_of_pool(0, 0);
    sim.alloc_failures() > before
}

/// Queries that pend (the adapter holds every OID) while each allocation
/// of the next one is refused in turn, for 0 to 20 queries pending, made
/// by three handles in turn: the lists the binding and each handle keep of
/// their pending requests grow in between, at different moments (a
/// refusal of the binding's is `Refusal::NoMemory` of a request built and
/// about to be sent; were they to grow at the same query, a refusal of the
/// later one would never come, since the earlier list keeps its room once
/// grown). Every
/// refusal completes the query at once, INSUFFICIENT_RESOURCES; nothing
/// of it reaches NDIS, stays on a list or holds pool; the queries held
/// complete when the adapter answers them.
#[test]
fn each_allocation_of_a_user_query_refused_in_turn_fails_it_cleanly() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let hs: Vec<Handle> = (0..3).map(|_| open(&sim, 0, PacketFilter::NONE, &[]).0).collect();
    // (One query first on each: what the first one makes once and keeps.)
    for h in &hs {
        assert_eq!(link_speed_query(h).wait().unwrap().status, 0);
    }
    sim.hold_oids(a).unwrap();
    let mut held: Vec<IoToken> = Vec::new();
    let mut failed = 0;
    let mut pool = Vec::new();
    while held.len() < 20 {
        let mut skip = 0;
        loop {
            let logged = sim.oid_log(a, false).len();
            let blocks = pool_blocks(&sim);
            let before = aim(&sim, skip);
            let t = link_speed_query(&hs[held.len() % 3]);
            let hit = refused(&sim, before);
            match t.try_result() {
                Some(r) => {
                    assert!(hit, "{} held, allocation {skip}: completed with no refusal", held.len());
                    assert_eq!(
                        status(r.status),
                        NtStatus::INSUFFICIENT_RESOURCES,
                        "{} held, allocation {skip} refused",
                        held.len()
                    );
                    assert_eq!(sim.oid_log(a, false).len(), logged, "nothing reached NDIS");
                    assert_eq!(pool_blocks(&sim), blocks, "{} held, allocation {skip}: pool left", held.len());
                    assert_eq!(sim.outstanding(a).oids_pending as usize, held.len());
                    failed += 1;
                    skip += 1;
                }
                None => {
                    // It reached the adapter, which holds it: every one of
                    // its allocations was tried.
                    assert!(!hit, "{} held: allocation {skip} refused, yet the query went", held.len());
                    assert_eq!(sim.outstanding(a).oids_pending as usize, held.len() + 1);
                    pool.push(skip);
                    held.push(t);
                    break;
                }
            }
        }
    }
    assert!(failed >= 40, "{failed} refusals; allocations per query: {pool:?}");
    // The binding's list (room for 8 at the bind) grew at the 9th and the
    // 17th: those queries made one allocation more.
    assert!(pool[8] > pool[7] && pool[16] > pool[15], "allocations per query: {pool:?}");
    assert_eq!(sim.release_oids(a).unwrap(), 20);
    for t in held {
        let r = t.wait().unwrap();
        assert_eq!(r.status, 0);
        let (hdr, _) = OidReplyHeader::parse(&r.data, true).unwrap();
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_SUCCESS);
    }
    assert_eq!(sim.outstanding(a).oids_pending, 0);
    for h in hs {
        h.close();
    }
    finish(sim);
}

/// A user's multicast set with each of its allocations refused in turn
/// (the list's copy, the union of the handles' lists, the request's block):
/// the set fails INSUFFICIENT_RESOURCES, the handle gets its old list back
/// (frames to its old group still come, those to the new one do not; the
/// adapter's list is the old union) and is not left with a set "on its
/// way" (the next set works, where a second set while one is on its way
/// fails STATUS_DEVICE_BUSY).
#[test]
fn each_allocation_of_a_users_multicast_set_refused_in_turn_gives_the_old_list_back() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let mc = PacketFilter::DIRECTED | PacketFilter::MULTICAST;
    let (h, _) = open(&sim, 0, mc, &[]);
    let (other, _) = open(&sim, 0, mc, &[]);
    assert_eq!(set_multicast(&other, &[g(9)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&h, &[g(1)]), (NtStatus::SUCCESS, 0));
    let old = (0x03, vec![g(1), g(9)]);
    assert_eq!(adapter_has(&sim, a), old);
    // (The same set, twice: what the first one makes once and keeps.)
    assert_eq!(set_multicast(&h, &[g(1)]), (NtStatus::SUCCESS, 0));
    let mut skip = 0;
    loop {
        let blocks = pool_blocks(&sim);
        let before = aim(&sim, skip);
        let (st, ndis) = set_multicast(&h, &[g(1), g(2)]);
        let hit = refused(&sim, before);
        if st == NtStatus::SUCCESS {
            assert!(!hit, "allocation {skip} refused, yet the set went");
            assert_eq!(ndis, 0);
            break;
        }
        assert!(hit, "allocation {skip}: failed with no refusal: {st:?}");
        assert_eq!(st, NtStatus::INSUFFICIENT_RESOURCES, "allocation {skip} refused");
        // The union is set again (from the dispatch, or later from the
        // work item): the old one.
        until("the adapter has the old union", || adapter_has(&sim, a) == old && sim.pending_oids(a).is_empty());
        assert_eq!(pool_blocks(&sim), blocks, "allocation {skip}: pool left");
        // The handle's own list is the old one: its group's frame comes,
        // the new group's does not (the other handle's is not its).
        for grp in [g(2), g(9), g(1)] {
            let f = frame(grp, PEER, 0x88b5, 60, skip as u32);
            sim.inject(a, &[&f[..]], &ndisim::InjectOpts::default()).unwrap();
        }
        let got = queued(&h);
        assert_eq!(got.len(), 1, "allocation {skip}: the handle's list is its old one");
        assert_eq!(got[0].1[..6], g(1));
        let _ = queued(&other);
        skip += 1;
    }
    assert!(skip >= 3, "the copy, the union and the block were each refused: {skip}");
    assert_eq!(adapter_has(&sim, a), (0x03, vec![g(1), g(2), g(9)]));
    assert_eq!(set_multicast(&h, &[g(3)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_has(&sim, a), (0x03, vec![g(3), g(9)]));
    h.close();
    other.close();
    finish(sim);
}

/// The driver's lines saying a packet filter set could not be sent.
fn filters_not_sent(sim: &Sim) -> usize {
    sim.debug_output().iter().filter(|l| l.contains("not sent; it is owed")).count()
}

/// An open that asks for more of the adapter's filter (promiscuous) with
/// each of its allocations refused in turn: it fails
/// INSUFFICIENT_RESOURCES and the adapter keeps its filter; or it opens,
/// and the filter set it needs that could not be sent (its buffer or its
/// request refused) is owed and set from the binding's work item, with no
/// other request asking. Closed, the filter goes back.
#[test]
fn an_open_whose_filter_set_cannot_be_sent_is_owed_and_set_later() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h0, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let name = list(&h0)[0].name.clone();
    let default = filter::DEFAULT.bits();
    let promisc = filter::DEFAULT.union(filter::PROMISCUOUS).union(filter::ALL_MULTICAST).bits();
    assert_eq!(adapter_has(&sim, a).0, default);
    let request = open_request(&name, filter::DEFAULT.union(filter::PROMISCUOUS), &[], 0, 0, 0);
    let (mut skip, mut owed, mut failed) = (0, 0, 0);
    loop {
        let h = sim.open().unwrap();
        let blocks = pool_blocks(&sim);
        let not_sent = filters_not_sent(&sim);
        let before = aim(&sim, skip);
        let r = h.ioctl(IOCTL_RAWNIC_OPEN, &request, OpenReply::LEN);
        let hit = refused(&sim, before);
        if r.status != 0 {
            assert!(hit, "allocation {skip}: failed with no refusal");
            assert_eq!(status(r.status), NtStatus::INSUFFICIENT_RESOURCES, "allocation {skip}");
            until("nothing pending", || sim.pending_oids(a).is_empty());
            assert_eq!(adapter_has(&sim, a).0, default, "allocation {skip}: the filter as it was");
            assert_eq!(pool_blocks(&sim), blocks, "allocation {skip}: pool left");
            failed += 1;
        } else {
            if filters_not_sent(&sim) > not_sent {
                owed += 1;
            }
            // Set: at once, or owed and set from the work item.
            until("the adapter has the open's filter", || adapter_has(&sim, a).0 == promisc);
        }
        h.close();
        until("the adapter has its filter back", || adapter_has(&sim, a).0 == default);
        if !hit {
            break;
        }
        skip += 1;
    }
    assert!(owed >= 2, "{owed} opens owed their filter (its buffer, its request), {failed} failed");
    assert!(failed >= 1, "{failed} opens failed");
    h0.close();
    finish(sim);
}

/// A handle's close while no memory can be had: the union of the other
/// handles' multicast lists cannot be made, so the adapter keeps the
/// closed handle's groups for now (the union is stale), and the next
/// chance (here a GET_STATS) sets it once memory is back.
#[test]
fn a_union_that_cannot_be_made_at_a_close_is_set_at_the_next_chance() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let mc = PacketFilter::DIRECTED | PacketFilter::MULTICAST;
    let (h1, _) = open(&sim, 0, mc, &[]);
    let (h2, _) = open(&sim, 0, mc, &[]);
    assert_eq!(set_multicast(&h1, &[g(1)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&h2, &[g(2)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_has(&sim, a).1, vec![g(1), g(2)]);
    sim.refuse_pool_allocations(u64::MAX);
    h2.close();
    std::thread::sleep(Duration::from_millis(20));
    assert!(sim.refuse_pool_allocations(0) < u64::MAX, "the close asked for memory");
    until("nothing pending", || sim.pending_oids(a).is_empty());
    assert_eq!(adapter_has(&sim, a).1, vec![g(1), g(2)], "the union could not be made");
    let _ = stats(&h1);
    until("the union is set", || adapter_has(&sim, a).1 == vec![g(1)]);
    // And it works on: a set of the remaining handle's.
    assert_eq!(set_multicast(&h1, &[g(3)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_has(&sim, a).1, vec![g(3)]);
    h1.close();
    finish(sim);
}

/// A user's multicast set refused where the binding's list of the requests
/// NDIS holds must grow (8 queries held fill its first room) and cannot:
/// its fourth allocation, after the list's copy, the union and the
/// request's block (`Refusal::NoMemory` of a request built and about to be
/// sent). The set fails INSUFFICIENT_RESOURCES, the handle gets its old
/// list back (the driver sets the old union again, which the adapter
/// holds with the rest), and once the adapter answers, its list is the old
/// one and the handle's next set works.
#[test]
fn a_multicast_set_refused_for_room_on_the_bindings_list_gives_the_old_list_back() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let hs: Vec<Handle> = (0..3).map(|_| open(&sim, 0, PacketFilter::NONE, &[]).0).collect();
    let (m, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
    assert_eq!(set_multicast(&m, &[g(1)]), (NtStatus::SUCCESS, 0));
    sim.hold_oids(a).unwrap();
    let held: Vec<IoToken> = (0..8).map(|i| link_speed_query(&hs[i % 3])).collect();
    assert_eq!(sim.outstanding(a).oids_pending, 8);
    let logged = sim.oid_log(a, false).len();
    let before = aim(&sim, 3);
    let value = [g(1), g(2)].concat();
    let mut input = vec![0u8; 16 + value.len()];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &value }.emit(&mut input).unwrap();
    let t = m.ioctl_async(IOCTL_RAWNIC_SET_OID, &input, 64).unwrap();
    assert!(refused(&sim, before), "the fourth allocation was made and refused");
    let r = t.try_result().expect("refused at once");
    assert_eq!(status(r.status), NtStatus::INSUFFICIENT_RESOURCES);
    // What reached NDIS: only the driver's set of the old union.
    let log = sim.oid_log(a, false);
    assert_eq!(log[logged..].iter().map(|&(_, oid)| oid).collect::<Vec<_>>(), [ndis_sys::OID_802_3_MULTICAST_LIST]);
    let sets = sim.pending_oids(a);
    assert_eq!(sets.last().map(|o| o.data.clone()), Some(g(1).to_vec()), "the old union");
    assert_eq!(sim.release_oids(a).unwrap(), 9);
    for t in held {
        assert_eq!(t.wait().unwrap().status, 0);
    }
    assert_eq!(adapter_has(&sim, a).1, vec![g(1)]);
    assert_eq!(set_multicast(&m, &[g(1), g(2)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_has(&sim, a).1, vec![g(1), g(2)]);
    for h in hs.into_iter().chain([m]) {
        h.close();
    }
    finish(sim);
}
