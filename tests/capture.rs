//! What a capture tool sees, against the real rawnic.sys in ndisim: NDIS
//! indicates only what the binding's packet filter accepts; a handle's
//! sends reach the binding's other handles marked outbound (its own only
//! when it asks); NDIS's loopback of other protocols' sends is marked too;
//! a protocol's own sends never come back from NDIS.

use ndisim::InjectOpts;
use rawnic_proto::*;
use rawnic_tests::drv::*;

const ETHERTYPE: u16 = 0x88b5;
const OTHER_HOST: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x77];

#[test]
fn sends_reach_the_other_handles_marked_outbound() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (tx, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (all, _) = open_with(&sim, 0, filter::DEFAULT, &[], LocalSends::All);
    let (none, _) = open_with(&sim, 0, filter::DEFAULT, &[], LocalSends::None);
    let (promisc, _) = open(&sim, 0, filter::DEFAULT | filter::PROMISCUOUS, &[]);
    let (arp_only, _) = open(&sim, 0, filter::DEFAULT, &[0x0806]);
    let bcast = frame(BROADCAST, PEER, ETHERTYPE, 60, 1);
    let unicast = frame(OTHER_HOST, PEER, ETHERTYPE, 60, 2);
    assert_eq!(send(&tx, &[bcast.clone(), unicast.clone()]).accepted, 2);
    // The other handle gets what its filter accepts (the broadcast, not a
    // unicast to another station), marked outbound and not looped back by
    // NDIS.
    let got = queued(&other);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, bcast);
    assert_eq!(got[0].0.flags & (frame_flags::OUTBOUND | frame_flags::LOOPBACK), frame_flags::OUTBOUND);
    // A promiscuous handle gets both; one filtering on ARP neither.
    let got: Vec<Vec<u8>> = queued(&promisc).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, vec![bcast.clone(), unicast.clone()]);
    assert!(queued(&arp_only).is_empty());
    // The sender does not see its own frames; a handle that wants no local
    // sends sees none; `All` sees the others' as well.
    assert!(queued(&tx).is_empty());
    assert!(queued(&none).is_empty());
    assert_eq!(queued(&all).len(), 1);
    // With `All`, a handle sees its own sends too.
    let own = frame(BROADCAST, PEER, ETHERTYPE, 80, 3);
    assert_eq!(send(&all, std::slice::from_ref(&own)).accepted, 1);
    let got = queued(&all);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].1.clone(), got[0].0.flags & frame_flags::OUTBOUND), (own.clone(), frame_flags::OUTBOUND));
    assert!(queued(&tx).len() == 1 && queued(&none).is_empty());
    // WriteFile sends are delivered the same way.
    let w = frame(BROADCAST, PEER, ETHERTYPE, 70, 4);
    assert_eq!(tx.write(&w).status, 0);
    assert_eq!(queued(&other).iter().filter(|(_, d)| *d == w).count(), 1);
    assert!(queued(&tx).is_empty(), "its own WriteFile does not come back to the sender");
    // NDIS itself never indicated any of them: rawnic did not ask for
    // NDIS's loopback, so nothing arrives twice.
    assert_eq!(stats(&tx).binding.rx_frames, 0);
    assert_eq!(sim.outstanding(a).sends_in_flight, 0);
    for h in [tx, other, all, none, promisc, arp_only] {
        h.close();
    }
    finish(sim);
}

#[test]
fn ndis_loopback_and_wire_frames_carry_their_direction() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (none, _) = open_with(&sim, 0, filter::DEFAULT, &[], LocalSends::None);
    let f = frame(BROADCAST, PEER, ETHERTYPE, 60, 1);
    // From the wire: inbound, for both.
    assert_eq!(sim.inject(a, &[&f], &InjectOpts::default()).unwrap(), 1);
    // Another protocol's send that NDIS loops back.
    let looped = frame(BROADCAST, PEER, ETHERTYPE, 64, 2);
    assert_eq!(sim.inject(a, &[&looped], &InjectOpts { loopback: true, ..Default::default() }).unwrap(), 1);
    let got = queued(&h);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0.flags & (frame_flags::OUTBOUND | frame_flags::LOOPBACK), 0, "inbound");
    assert_eq!(got[1].1, looped);
    assert_eq!(
        got[1].0.flags & (frame_flags::OUTBOUND | frame_flags::LOOPBACK),
        frame_flags::OUTBOUND | frame_flags::LOOPBACK
    );
    let got = queued(&none);
    assert_eq!(got.len(), 1, "LocalSends::None takes only the wire's frames");
    assert_eq!(got[0].1, f);
    h.close();
    none.close();
    finish(sim);
}

#[test]
fn ndis_indicates_only_what_the_packet_filter_accepts() {
    let sim = start(&["null@mac=02:00:00:00:00:0a"]);
    let a = sim.adapter_id("null0").unwrap();
    let mine = [2, 0, 0, 0, 0, 0x0a];
    let group = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    let frames = [
        frame(mine, PEER, ETHERTYPE, 60, 1),
        frame(OTHER_HOST, PEER, ETHERTYPE, 60, 2),
        frame(BROADCAST, PEER, ETHERTYPE, 60, 3),
        frame(group, PEER, ETHERTYPE, 60, 4),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let o = InjectOpts::default();
    // No handle receives: the binding's packet filter is 0 and NDIS
    // indicates nothing.
    assert_eq!(sim.inject(a, &refs, &o).unwrap(), 0);
    assert_eq!(sim.adapter_filter(a).unwrap().1, 0);
    // Directed and broadcast (a multicast filter with an empty list takes
    // no group).
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(sim.inject(a, &refs, &o).unwrap(), 2);
    assert_eq!(queued(&h).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![frames[0].clone(), frames[2].clone()]);
    // All multicast adds the group frame.
    let (m, _) = open(&sim, 0, filter::ALL_MULTICAST, &[]);
    assert_eq!(sim.inject(a, &refs, &o).unwrap(), 3);
    // Promiscuous: everything.
    let (p, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    assert_eq!(sim.inject(a, &refs, &o).unwrap(), 4);
    // The handles still get only what their own filters take: the default
    // handle's multicast bit means "the groups on its own list", which is
    // empty, so it takes neither the group frame the binding now receives
    // nor the other host's frame.
    let got = queued(&h);
    assert_eq!(data(got), [&frames[0], &frames[2], &frames[0], &frames[2]].map(|f| f.clone()).to_vec());
    assert_eq!(queued(&m).len(), 2);
    assert_eq!(queued(&p).len(), 4);
    // As handles close, the binding's filter narrows again.
    p.close();
    m.close();
    assert_eq!(sim.inject(a, &refs, &o).unwrap(), 2);
    h.close();
    assert_eq!(sim.inject(a, &refs, &o).unwrap(), 0);
    finish(sim);
}

#[test]
fn each_frame_is_stamped_with_the_system_time_as_the_driver_takes_it() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let frames: Vec<Vec<u8>> = (0..40).map(|i| frame(BROADCAST, PEER, ETHERTYPE, 60, i)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let mut stamps = Vec::new();
    for _ in 0..5 {
        // Rounded down to the system time's 100 ns.
        let before = now() / 100 * 100;
        assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), frames.len());
        let after = now();
        let got = queued(&h);
        assert_eq!(got.len(), frames.len());
        for (hdr, _) in &got {
            assert!(
                (before..=after).contains(&hdr.timestamp_ns),
                "{} not within the indication ({before}..={after})",
                hdr.timestamp_ns
            );
            assert_eq!(hdr.timestamp_ns % 100, 0, "the system time's resolution is 100 ns");
        }
        stamps.extend(got.iter().map(|(h, _)| h.timestamp_ns));
    }
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "in order: {stamps:?}");
    // Stamped per frame, not once per indication: 40 frames of one
    // indication do not all carry the same time.
    assert!(stamps.chunks(40).any(|c| c.first() != c.last()), "one stamp per indication: {stamps:?}");
    drop(h);
    finish(sim);
}

/// Runts (a miniport that passes frames shorter than an Ethernet header,
/// or another protocol's 14-byte send looped back) reach a promiscuous
/// handle as they came, byte for byte, with their true length; a handle
/// that filters by EtherType or address does not take them (they have
/// neither), and nothing reads past their end.
#[test]
fn runts_reach_a_promiscuous_handle_as_they_came() {
    let sim = start(&["null@mac=02:00:00:00:00:0a"]);
    let a = sim.adapter_id("null0").unwrap();
    let runts: Vec<Vec<u8>> =
        [1usize, 5, 6, 12, 13, 14, 15, 17].iter().map(|&n| (0..n as u8).map(|i| 0xff - i).collect()).collect();
    let refs: Vec<&[u8]> = runts.iter().map(|f| &f[..]).collect();
    let (p, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let (typed, _) = open(&sim, 0, filter::PROMISCUOUS, &[ETHERTYPE]);
    let (directed, _) = open(&sim, 0, filter::DIRECTED, &[]);
    for o in [InjectOpts::default(), InjectOpts { resources: true, ..Default::default() }] {
        assert_eq!(sim.inject(a, &refs, &o).unwrap(), runts.len());
        let got = queued(&p);
        assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), runts);
        assert!(got.iter().zip(&runts).all(|((h, _), r)| h.origlen as usize == r.len() && h.caplen == h.origlen));
        assert!(queued(&typed).is_empty(), "a runt has no EtherType to match");
        assert!(queued(&directed).is_empty(), "nor an address of this adapter");
    }
    for h in [p, typed, directed] {
        h.close();
    }
    finish(sim);
}

/// The adapter's multicast list, as a query through `h` shows it.
fn adapter_groups(h: &ndisim::Handle) -> Vec<[u8; 6]> {
    let (_, d) = oid_query(h, ndis_sys::OID_802_3_MULTICAST_LIST, 16 + 6 * 64);
    let mut g: Vec<[u8; 6]> = d.chunks(6).map(|c| c.try_into().unwrap()).collect();
    g.sort();
    g
}

/// Waits (up to 10 s) for the adapter's multicast list to be `want`.
fn groups_become(h: &ndisim::Handle, want: &[[u8; 6]]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = adapter_groups(h);
        if now == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the adapter's multicast list stayed {now:?}, not {want:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn multicast_lists_are_each_handles_own_and_the_adapter_gets_their_union() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let (h1, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let (h2, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    assert_eq!(set_multicast(&h1, &[g(1), g(2)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&h2, &[g(2), g(3)]), (NtStatus::SUCCESS, 0));
    // The second handle's set did not take the first one's groups away.
    assert_eq!(adapter_groups(&h1), vec![g(1), g(2), g(3)]);
    // A handle's new list replaces its own, not the others'.
    assert_eq!(set_multicast(&h2, &[g(4)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_groups(&h1), vec![g(1), g(2), g(4)]);
    // Frames to a group reach the handles that have it (the adapter let
    // through every group of the union; g(3) is no longer on it).
    let to = |i: u8| frame(g(i), PEER, ETHERTYPE, 60, i as u32);
    sim.inject(a, &[&to(1)[..], &to(3)[..], &to(4)[..]], &InjectOpts::default()).unwrap();
    assert_eq!(queued(&h1).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to(1)]);
    assert_eq!(queued(&h2).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to(4)]);
    // Not a list of group addresses, or more than a handle may have: the
    // request is refused and the list stays.
    let unicast = [0x02, 0, 0, 0, 0, 1];
    assert_eq!(set_multicast(&h1, &[g(9), unicast]).0, NtStatus::INVALID_PARAMETER);
    let many: Vec<[u8; 6]> = (10..10 + MAX_HANDLE_MULTICAST as u8 + 1).map(g).collect();
    assert_eq!(set_multicast(&h1, &many).0, NtStatus::INVALID_PARAMETER);
    assert_eq!(adapter_groups(&h1), vec![g(1), g(2), g(4)]);
    // A union the adapter cannot take: the miniport's answer, and the
    // handle keeps its old list (the adapter too).
    let (st, ndis) = set_multicast(&h1, &many[..MAX_HANDLE_MULTICAST]);
    assert_eq!(st, NtStatus::SUCCESS);
    assert_eq!(ndis, ndis_sys::NDIS_STATUS_MULTICAST_FULL, "33 groups in all: more than the adapter's 32");
    assert_eq!(adapter_groups(&h1), vec![g(1), g(2), g(4)]);
    // A closed handle's groups leave the adapter's list: the failed set
    // above is undone by a set from the binding's work item, which may
    // still be on its way when the close asks for another, so the list
    // comes to be the remaining handle's in a moment, not at once.
    h1.close();
    groups_become(&h2, &[g(4)]);
    sim.inject(a, &[&to(1)[..], &to(4)[..]], &InjectOpts::default()).unwrap();
    assert_eq!(queued(&h2).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to(4)]);
    h2.close();
    finish(sim);
}

/// A list that names a group twice counts it once: a handle may list its
/// `MAX_HANDLE_MULTICAST` groups with repeats (M261 of mutation round 6:
/// the repeats were kept, counted against the bound, and the list refused).
#[test]
fn a_multicast_list_counts_a_repeated_group_once() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let (h, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let all: Vec<[u8; 6]> = (10..10 + MAX_HANDLE_MULTICAST as u8).map(g).collect();
    let with_repeats = [&all[..], &[g(10), all[MAX_HANDLE_MULTICAST - 1]]].concat();
    assert_eq!(set_multicast(&h, &with_repeats), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_groups(&h), all);
    let to = frame(g(10), PEER, ETHERTYPE, 60, 1);
    sim.inject(a, &[&to[..]], &InjectOpts::default()).unwrap();
    assert_eq!(queued(&h).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to], "once");
    h.close();
    finish(sim);
}

/// The adapter's multicast list is shared by every protocol bound to it:
/// with 30 of its 32 entries held by others, a set that takes the union
/// past the 2 left fails with the miniport's NDIS_STATUS_MULTICAST_FULL,
/// and that handle keeps its old list, while the handles whose sets fit
/// keep their groups, on the adapter and in what they receive.
#[test]
fn a_multicast_list_the_adapter_has_no_room_for_is_refused_and_the_others_stay() {
    let sim = start(&["null@multicast-held=30"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let (h1, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let (h2, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    assert_eq!(set_multicast(&h1, &[g(1), g(2)]), (NtStatus::SUCCESS, 0), "2 of 32 were left");
    assert_eq!(set_multicast(&h2, &[g(3)]), (NtStatus::SUCCESS, ndis_sys::NDIS_STATUS_MULTICAST_FULL));
    // The same group the other handle has takes no more room.
    assert_eq!(set_multicast(&h2, &[g(2)]), (NtStatus::SUCCESS, 0));
    groups_become(&h1, &[g(1), g(2)]);
    let to = |i: u8| frame(g(i), PEER, ETHERTYPE, 60, i as u32);
    sim.inject(a, &[&to(1)[..], &to(2)[..], &to(3)[..]], &InjectOpts::default()).unwrap();
    let got = |h: &ndisim::Handle| queued(h).into_iter().map(|(_, d)| d).collect::<Vec<_>>();
    assert_eq!(got(&h1), vec![to(1), to(2)]);
    assert_eq!(got(&h2), vec![to(2)], "its refused group is not its own");
    // Room again once a handle's groups go.
    h1.close();
    groups_become(&h2, &[g(2)]);
    assert_eq!(set_multicast(&h2, &[g(3), g(4)]), (NtStatus::SUCCESS, 0));
    groups_become(&h2, &[g(3), g(4)]);
    h2.close();
    finish(sim);
}

#[test]
fn a_handle_has_one_multicast_set_on_its_way_at_a_time() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let (h, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let request = |groups: &[[u8; 6]]| {
        let value = groups.concat();
        let mut input = vec![0u8; 16 + value.len()];
        OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &value }.emit(&mut input).unwrap();
        input
    };
    // The miniport holds OIDs until the test releases them.
    sim.hold_oids(a).unwrap();
    let first = h.ioctl_async(IOCTL_RAWNIC_SET_OID, &request(&[g(1)]), 64).unwrap();
    assert!(first.try_result().is_none(), "held by the miniport");
    // A second set while the first is on its way: refused, nothing changed.
    let second = h.ioctl(IOCTL_RAWNIC_SET_OID, &request(&[g(2)]), 64);
    assert_eq!(status(second.status), NtStatus::DEVICE_BUSY);
    assert_eq!(sim.release_oids(a).unwrap(), 1);
    let r = first.wait().expect("the held set completes once released");
    assert_eq!(r.status, 0);
    assert_eq!(OidReplyHeader::parse(&r.data, false).unwrap().0.ndis_status, 0);
    assert_eq!(adapter_groups(&h), vec![g(1)]);
    // Then the next one goes.
    assert_eq!(set_multicast(&h, &[g(2), g(3)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_groups(&h), vec![g(2), g(3)]);
    h.close();
    finish(sim);
}

/// A multicast SET's reply says how many of the handle's bytes the
/// adapter took, not the size of the union the driver sent in their
/// place (another handle's groups are no business of this one; rawnicctl
/// printed "the adapter took 18 of 6 bytes").
#[test]
fn a_multicast_set_reports_the_handles_bytes_not_the_unions() {
    let sim = start(&["null"]);
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let (h1, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let (h2, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    assert_eq!(set_multicast(&h2, &[g(2), g(3)]), (NtStatus::SUCCESS, 0));
    let value = [g(1)].concat();
    let mut input = vec![0u8; 16 + value.len()];
    OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &value }.emit(&mut input).unwrap();
    let r = h1.ioctl(IOCTL_RAWNIC_SET_OID, &input, 64);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    let (hdr, _) = OidReplyHeader::parse(&r.data, false).unwrap();
    assert_eq!(hdr.ndis_status, 0);
    assert_eq!(hdr.bytes, 6, "the handle's one group, not the union's three");
    assert_eq!(adapter_groups(&h1), vec![g(1), g(2), g(3)]);
    h1.close();
    h2.close();
    finish(sim);
}

/// The adapter's multicast list (the model's, not through an OID, which
/// the miniport may be holding), sorted.
fn model_groups(sim: &ndisim::Sim, a: ndisim::AdapterId) -> Vec<[u8; 6]> {
    let mut g = sim.adapter_filter(a).unwrap().2;
    g.sort();
    g
}

/// The multicast sets the miniport holds now: (submission, sorted groups).
fn held_multicast_sets(sim: &ndisim::Sim, a: ndisim::AdapterId) -> Vec<(u64, Vec<[u8; 6]>)> {
    sim.pending_oids(a)
        .into_iter()
        .filter(|o| o.kind == ndis_sys::NdisRequestSetInformation && o.oid == ndis_sys::OID_802_3_MULTICAST_LIST)
        .map(|o| {
            let mut g: Vec<[u8; 6]> = o.data.chunks(6).map(|c| c.try_into().unwrap()).collect();
            g.sort();
            (o.seq, g)
        })
        .collect()
}

/// Waits (up to 10 s) for the miniport to hold a multicast set of
/// `groups` (in any order); returns its submission.
fn held_set_of(sim: &ndisim::Sim, a: ndisim::AdapterId, groups: &[[u8; 6]]) -> u64 {
    let mut want = groups.to_vec();
    want.sort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let held = held_multicast_sets(sim, a);
        if let Some(&(seq, _)) = held.iter().find(|(_, g)| *g == want) {
            return seq;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no multicast set of {want:02x?} reached the miniport; it holds {held:02x?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Lets every OID request the miniport holds, and any the driver makes
/// next, complete as the adapter answers them, until none comes for a
/// while and the adapter's list is `want` (failing after 10 s with the
/// list it has): the quiet end of a schedule.
fn quiet_with_groups(sim: &ndisim::Sim, a: ndisim::AdapterId, want: &[[u8; 6]]) {
    let mut want = want.to_vec();
    want.sort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut still = 0;
    loop {
        let held = sim.pending_oids(a);
        for o in &held {
            sim.complete_oid(a, o.seq, None).unwrap();
        }
        let now = model_groups(sim, a);
        still = if held.is_empty() && now == want { still + 1 } else { 0 };
        // 100 ms without a request, with the list right.
        if still == 50 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the adapter's multicast list stayed {now:02x?}, not the union of the handles' lists {want:02x?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Two handles' multicast sets on their way at once, the miniport
/// completing them in the other order, or failing one: each set carried
/// the union of when it was made, so the last to complete may leave an
/// old union on the adapter (without the other handle's new groups, or
/// with a failed list's). The driver sets the union of now again, and
/// once quiet the adapter has exactly the handles' lists (a driver that
/// never set a stale union again, M40, leaves the old one).
#[test]
fn multicast_sets_completed_out_of_order_or_failed_leave_the_union_of_the_handles_lists() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let (h1, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let (h2, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    assert_eq!(set_multicast(&h1, &[g(1)]), (NtStatus::SUCCESS, 0));
    assert_eq!(model_groups(&sim, a), vec![g(1)]);
    sim.hold_oids(a).unwrap();
    let ok = |t: ndisim::IoToken| {
        let r = t.wait().expect("the set completes");
        assert_eq!(r.status, 0);
        OidReplyHeader::parse(&r.data, false).unwrap().0.ndis_status
    };

    // Overtaken: h1's set (union g1 g2) completes after h2's (g1 g2 g3).
    let t1 = h1.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(1), g(2)]), 64).unwrap();
    let s1 = held_set_of(&sim, a, &[g(1), g(2)]);
    let t2 = h2.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(3)]), 64).unwrap();
    let s2 = held_set_of(&sim, a, &[g(1), g(2), g(3)]);
    assert!(sim.complete_oid(a, s2, None).unwrap());
    assert_eq!(ok(t2), 0);
    assert!(sim.complete_oid(a, s1, None).unwrap());
    assert_eq!(ok(t1), 0);
    assert_eq!(model_groups(&sim, a), vec![g(1), g(2)], "the older union, last to complete");
    quiet_with_groups(&sim, a, &[g(1), g(2), g(3)]);

    // Failed after another went by: h1's set (g4 g3) fails once h2's
    // (g4 g3 g5) is on the adapter; h1 keeps g1 g2, and g4 must go.
    let t1 = h1.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(4)]), 64).unwrap();
    let s1 = held_set_of(&sim, a, &[g(3), g(4)]);
    let t2 = h2.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(3), g(5)]), 64).unwrap();
    let s2 = held_set_of(&sim, a, &[g(3), g(4), g(5)]);
    assert!(sim.complete_oid(a, s2, None).unwrap());
    assert_eq!(ok(t2), 0);
    assert!(sim.complete_oid(a, s1, Some(ndis_sys::NDIS_STATUS_FAILURE)).unwrap());
    assert_eq!(ok(t1), ndis_sys::NDIS_STATUS_FAILURE);
    quiet_with_groups(&sim, a, &[g(1), g(2), g(3), g(5)]);

    // Failed before the other completes: h2's set (g1 g2 g6) fails first,
    // then h1's (g1 g2 g6 g7), which carried h2's failed list, succeeds;
    // h2 keeps g3 g5.
    let t2 = h2.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(6)]), 64).unwrap();
    let s2 = held_set_of(&sim, a, &[g(1), g(2), g(6)]);
    let t1 = h1.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(1), g(2), g(7)]), 64).unwrap();
    let s1 = held_set_of(&sim, a, &[g(1), g(2), g(6), g(7)]);
    assert!(sim.complete_oid(a, s2, Some(ndis_sys::NDIS_STATUS_FAILURE)).unwrap());
    assert_eq!(ok(t2), ndis_sys::NDIS_STATUS_FAILURE);
    assert!(sim.complete_oid(a, s1, None).unwrap());
    assert_eq!(ok(t1), 0);
    quiet_with_groups(&sim, a, &[g(1), g(2), g(3), g(5), g(7)]);

    sim.release_oids(a).unwrap();
    h1.close();
    h2.close();
    finish(sim);
}

/// The driver's own set of the union (a handle closed) on its way with a
/// handle's, which overtakes it: the driver's older union, last to
/// complete, is followed by the union of now.
#[test]
fn a_multicast_set_of_the_drivers_that_a_handles_overtook_is_followed_by_the_union() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let f = filter::DEFAULT | filter::MULTICAST;
    let (h1, _) = open(&sim, 0, f, &[]);
    let (h2, _) = open(&sim, 0, f, &[]);
    let (h3, _) = open(&sim, 0, f, &[]);
    assert_eq!(set_multicast(&h1, &[g(1)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&h3, &[g(3)]), (NtStatus::SUCCESS, 0));
    sim.hold_oids(a).unwrap();
    // h3 closes: the driver sets g1; h2's set (g1 g2) goes by it.
    h3.close();
    let d = held_set_of(&sim, a, &[g(1)]);
    let t = h2.ioctl_async(IOCTL_RAWNIC_SET_OID, &multicast_input(&[g(2)]), 64).unwrap();
    let s = held_set_of(&sim, a, &[g(1), g(2)]);
    assert!(sim.complete_oid(a, s, None).unwrap());
    assert_eq!(t.wait().expect("the set completes").status, 0);
    assert!(sim.complete_oid(a, d, None).unwrap());
    assert_eq!(model_groups(&sim, a), vec![g(1)], "the driver's older union, last to complete");
    quiet_with_groups(&sim, a, &[g(1), g(2)]);
    sim.release_oids(a).unwrap();
    h1.close();
    h2.close();
    finish(sim);
}

/// A set of the driver's (a handle closed) that fails leaves the old union
/// on the adapter until the binding restarts, or a handle asks (a
/// GET_STATS, or any listing), as for an owed packet filter: each sets
/// the union again.
#[test]
fn a_failed_multicast_set_of_the_drivers_is_set_again_at_a_restart_or_when_a_handle_asks() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let f = filter::DEFAULT | filter::MULTICAST;
    for ask in ["restart", "GET_STATS", "LIST"] {
        let (h1, _) = open(&sim, 0, f, &[]);
        let (h2, _) = open(&sim, 0, f, &[]);
        assert_eq!(set_multicast(&h1, &[g(1)]), (NtStatus::SUCCESS, 0));
        assert_eq!(set_multicast(&h2, &[g(2)]), (NtStatus::SUCCESS, 0));
        sim.hold_oids(a).unwrap();
        h2.close();
        let d = held_set_of(&sim, a, &[g(1)]);
        assert!(sim.complete_oid(a, d, Some(ndis_sys::NDIS_STATUS_FAILURE)).unwrap());
        sim.release_oids(a).unwrap();
        assert_eq!(model_groups(&sim, a), vec![g(1), g(2)], "{ask}");
        match ask {
            "restart" => {
                sim.pause(a).unwrap();
                sim.restart(a, &ndisim::RestartSpec::default()).unwrap();
            }
            "GET_STATS" => drop(stats(&h1)),
            _ => drop(list(&sim.open().unwrap())),
        }
        quiet_with_groups(&sim, a, &[g(1)]);
        h1.close();
        quiet_with_groups(&sim, a, &[]);
    }
    finish(sim);
}

fn data(got: Vec<(FrameHeader, Vec<u8>)>) -> Vec<Vec<u8>> {
    got.into_iter().map(|(_, d)| d).collect()
}

/// A handle whose filter has MULTICAST (but neither ALL_MULTICAST nor
/// PROMISCUOUS) gets only the groups on its own list, as NDIS filters
/// each open, though the adapter lets through the union of the handles'
/// lists: frames from the wire into read queues and into rings (with other
/// receivers, and as the binding's one receiver), and other handles' sends.
#[test]
fn a_multicast_handle_gets_only_its_own_groups() {
    use rawnic_tests::rings::{SETUP, User};
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let to = |i: u8| frame(g(i), PEER, ETHERTYPE, 60, i as u32);
    let (h1, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let (h2, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let (all, _) = open(&sim, 0, filter::DEFAULT | filter::ALL_MULTICAST, &[]);
    let (promisc, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let (r, _) = open(&sim, 0, filter::DEFAULT | filter::MULTICAST, &[]);
    let ring = User::attach(&r, SETUP);
    ring.fill((0..16).map(|i| ring.frame(i)));
    assert_eq!(set_multicast(&h1, &[g(1)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&h2, &[g(2), g(5)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&r, &[g(1), g(3)]), (NtStatus::SUCCESS, 0));
    let wire = [to(1), to(2), to(3), to(4)];
    let refs: Vec<&[u8]> = wire.iter().map(|f| &f[..]).collect();
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 4);
    assert_eq!(data(queued(&h1)), vec![to(1)]);
    assert_eq!(data(queued(&h2)), vec![to(2)]);
    assert_eq!(data(queued(&all)), wire.to_vec(), "ALL_MULTICAST takes every group");
    assert_eq!(data(queued(&promisc)), wire.to_vec());
    assert_eq!(ring.rx().into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to(1), to(3)]);
    // Another handle's sends: the same rule.
    let (tx, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    assert_eq!(send(&tx, &[to(5), to(3)]).accepted, 2);
    assert!(queued(&h1).is_empty());
    assert_eq!(data(queued(&h2)), vec![to(5)]);
    assert_eq!(data(queued(&all)), vec![to(5), to(3)]);
    assert_eq!(ring.rx().into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to(3)]);
    // The ring handle alone receives, with the send-only handle's group on
    // the adapter too: it takes its own.
    for h in [h1, h2, all, promisc] {
        h.close();
    }
    assert_eq!(set_multicast(&tx, &[g(2)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_groups(&tx), vec![g(1), g(2), g(3)]);
    assert_eq!(sim.inject(a, &[&to(2)[..], &to(3)[..]], &InjectOpts::default()).unwrap(), 2);
    assert_eq!(ring.rx().into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![to(3)]);
    rawnic_tests::rings::detach(&r, ring);
    r.close();
    tx.close();
    finish(sim);
}

/// The driver has one multicast set of its own on its way at a time:
/// handles that close while it is held leave the next union to its
/// completion, which sets the union of now, once. Found by `xtask
/// mutants` (M73: a change while the driver's set is on its way sends
/// another; M74: the driver's set no longer counted on its way once sent).
#[test]
fn the_driver_has_one_multicast_set_of_its_own_on_its_way_at_a_time() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let f = filter::DEFAULT | filter::MULTICAST;
    let mut hs = Vec::new();
    for i in 1..=4u8 {
        let (h, _) = open(&sim, 0, f, &[]);
        assert_eq!(set_multicast(&h, &[g(i)]), (NtStatus::SUCCESS, 0));
        hs.push(h);
    }
    sim.hold_oids(a).unwrap();
    let last = hs.pop().unwrap();
    let mut hs = hs.into_iter();
    hs.next().unwrap().close();
    held_set_of(&sim, a, &[g(2), g(3), g(4)]);
    for h in hs {
        h.close();
        sim.sleep(std::time::Duration::from_millis(50));
        let held = held_multicast_sets(&sim, a);
        assert_eq!(held.len(), 1, "one set of the driver's on its way: {held:02x?}");
    }
    quiet_with_groups(&sim, a, &[g(4)]);
    sim.release_oids(a).unwrap();
    last.close();
    finish(sim);
}
