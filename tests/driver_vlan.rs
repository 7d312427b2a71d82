//! 802.1Q tags end to end with the real rawnic.sys in ndisim: a send's tag
//! reaches the wire exactly once, in the NBL's 802.1Q info when the adapter
//! advertises 802.1Q (`vlan=on`, the default) and written into the frame by
//! the driver when it does not (`vlan=off`); a frame carrying its tag
//! inline may be MTU + 18 bytes; a received tag of TCI 0 is told from no
//! tag; EtherType lists see a stripped tag as on the wire. (The TAP side
//! is in `tests/tap.rs`.)

use ndisim::{AdapterId, Frame, InjectOpts, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;

/// `f` with an 802.1Q tag of `tci` after its MAC addresses.
fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    [&f[..12], &[0x81, 0x00], &tci.to_be_bytes()[..], &f[12..]].concat()
}

/// What the adapter took from the driver for a send of `f` with `tci`:
/// the tag in the NBL's info with 802.1Q (but TCI 0, which the info cannot
/// carry), else in the frame.
fn expected(f: &[u8], tci: Option<u16>, vlan: bool) -> Frame {
    match tci {
        None => Frame { data: f.to_vec(), tci: None },
        Some(t) if vlan && t != 0 => Frame { data: f.to_vec(), tci: Some(t) },
        Some(t) => Frame { data: tagged(f, t), tci: None },
    }
}

/// How another handle records `f`, sent with TCI `tci` (not 0): (flags,
/// TCI, data). With 802.1Q the adapter inserts the tag (reported
/// stripped); without, the driver wrote it into the frame.
fn sent_with_tag(f: &[u8], tci: u16, vlan: bool) -> (u16, u16, Vec<u8>) {
    let out = frame_flags::OUTBOUND | frame_flags::TAGGED;
    if vlan { (out | frame_flags::VLAN, tci, f.to_vec()) } else { (out, tci, tagged(f, tci)) }
}

fn send_status(h: &ndisim::Handle, frames: &[(Vec<u8>, Option<u16>)]) -> NtStatus {
    status(h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(frames), SendReply::LEN).status)
}

fn last_captured(sim: &Sim, a: AdapterId) -> Frame {
    assert!(sim.settle(a));
    sim.captured(a).pop().expect("a frame was sent")
}

#[test]
fn a_send_tag_goes_in_the_nbl_info_or_into_the_frame_as_the_adapter_advertises() {
    let sim = start(&["null@name=on", "null@name=off,vlan=off"]);
    let f = frame(PEER, PEER, 0x88b5, 60, 1);
    let sends: Vec<(Vec<u8>, Option<u16>)> =
        [Some(0xa064), None, Some(0), Some(0x0064), Some(0x1000)].iter().map(|&t| (f.clone(), t)).collect();
    for (idx, name, vlan) in [(0, "on", true), (1, "off", false)] {
        let a = sim.adapter_id(name).unwrap();
        sim.set_capture(a, true);
        let (h, _) = open(&sim, idx, PacketFilter::NONE, &[]);
        let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&sends), SendReply::LEN);
        assert_eq!(r.status, 0, "{name}: {:?}", status(r.status));
        let reply = SendReply::parse(&r.data).unwrap();
        assert_eq!((reply.accepted, reply.bytes), (5, 5 * 60), "{name}: the bytes given are counted");
        assert!(sim.settle(a));
        let got = sim.captured(a);
        let want: Vec<Frame> = sends.iter().map(|(d, t)| expected(d, *t, vlan)).collect();
        assert_eq!(got, want, "{name}");
        // On the wire, each frame has its tag exactly once.
        for (c, (d, t)) in got.iter().zip(&sends) {
            assert_eq!(c.wire(), t.map_or(d.clone(), |t| tagged(d, t)), "{name}");
        }
        assert_eq!(sim.tags_ignored(a), 0, "{name}: the driver set 802.1Q info the adapter ignores");
        h.close();
    }
    finish(sim);
}

#[test]
fn the_driver_follows_the_mac_options_of_each_restart() {
    let sim = start(&["null"]);
    let a = AdapterId(0);
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let f = frame(PEER, PEER, 0x88b5, 80, 2);
    let tag = [(f.clone(), Some(0x2064))];
    assert_eq!(send_status(&h, &tag), NtStatus::SUCCESS);
    assert_eq!(last_captured(&sim, a), Frame { data: f.clone(), tci: Some(0x2064) });
    // The miniport stops doing 802.1Q before it says so: it ignores the
    // info, as a miniport without 802.1Q does, and the frame goes out
    // untagged.
    sim.set_vlan(a, false);
    assert_eq!(send_status(&h, &tag), NtStatus::SUCCESS);
    let ignored = last_captured(&sim, a);
    assert_eq!((ignored.tci, ignored.wire()), (None, f.clone()));
    assert_eq!(sim.tags_ignored(a), 1);
    // Its restart attributes say so: the driver writes the tag itself.
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(send_status(&h, &tag), NtStatus::SUCCESS);
    assert_eq!(last_captured(&sim, a), Frame { data: tagged(&f, 0x2064), tci: None });
    assert_eq!(sim.tags_ignored(a), 1, "no info set once the driver knows");
    // And back.
    sim.set_vlan(a, true);
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(send_status(&h, &tag), NtStatus::SUCCESS);
    assert_eq!(last_captured(&sim, a), Frame { data: f.clone(), tci: Some(0x2064) });
    h.close();
    finish(sim);
}

#[test]
fn a_frame_with_its_tag_inline_may_be_mtu_plus_18_bytes() {
    let sim = start(&["null@name=on", "null@name=off,vlan=off"]);
    let untagged = |len: usize| frame(PEER, PEER, 0x88b5, len, 3);
    let inline = |len: usize| tagged(&untagged(len - 4), 0x0007);
    for (idx, name, vlan) in [(0, "on", true), (1, "off", false)] {
        let a = sim.adapter_id(name).unwrap();
        sim.set_capture(a, true);
        let (h, reply) = open(&sim, idx, PacketFilter::NONE, &[]);
        assert_eq!(reply.mtu, 1500);
        let check = |mtu: usize| {
            let ok = NtStatus::SUCCESS;
            let bad = NtStatus::INVALID_BUFFER_SIZE;
            for (f, tci, want, what) in [
                (inline(mtu + 18), None, ok, "MTU + 18 with a tag inline"),
                (tagged(&untagged(mtu + 14), 0), None, ok, "MTU + 18 with a tag of TCI 0 inline"),
                (inline(mtu + 19), None, bad, "MTU + 19 with a tag inline"),
                (untagged(mtu + 15), None, bad, "MTU + 15 untagged"),
                (untagged(mtu + 14), None, ok, "MTU + 14 untagged"),
                (untagged(mtu + 14), Some(7), ok, "MTU + 14 to be tagged"),
                (untagged(mtu + 15), Some(7), bad, "MTU + 15 to be tagged"),
                (inline(mtu + 18), Some(7), bad, "a second tag past MTU + 18"),
            ] {
                assert_eq!(send_status(&h, &[(f.clone(), tci)]), want, "{name}, MTU {mtu}: {what}");
                if want == ok {
                    assert_eq!(last_captured(&sim, a), expected(&f, tci, vlan), "{name}, MTU {mtu}: {what}");
                }
            }
            // WriteFile: the same limits, no tag of its own.
            let r = h.write(&inline(mtu + 18));
            assert_eq!((status(r.status), r.information), (NtStatus::SUCCESS, mtu + 18), "{name}");
            assert_eq!(last_captured(&sim, a), Frame { data: inline(mtu + 18), tci: None });
            assert_eq!(status(h.write(&inline(mtu + 19)).status), NtStatus::INVALID_BUFFER_SIZE, "{name}");
            assert_eq!(status(h.write(&untagged(mtu + 15)).status), NtStatus::INVALID_BUFFER_SIZE, "{name}");
        };
        check(1500);
        // The send buffers follow a larger MTU, tag included.
        sim.pause(a).unwrap();
        sim.restart(a, &RestartSpec { mtu: Some(9000), ..Default::default() }).unwrap();
        check(9000);
        h.close();
    }
    finish(sim);
}

#[test]
fn a_received_tag_of_tci_0_is_told_from_no_tag() {
    let sim = start(&["null"]);
    let a = AdapterId(0);
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[0x88b5]);
    let plain = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    // 300 bytes: kept as a retained NBL until read, not copied.
    let long = frame(BROADCAST, PEER, 0x88b5, 300, 2);
    let inject = |f: &[u8], tci: Option<u16>| {
        assert_eq!(sim.inject(a, &[f], &InjectOpts { tci, ..Default::default() }).unwrap(), 1);
    };
    inject(&tagged(&plain, 0), None);
    inject(&tagged(&long, 0), None);
    inject(&tagged(&plain, 0xe007), None);
    inject(&plain, Some(0x2005));
    inject(&plain, Some(0)); // NDIS's info of 0 is no tag
    inject(&plain, None);
    let got = read(&h, 64 * 1024);
    let tagged_only = frame_flags::TAGGED;
    let stripped = frame_flags::TAGGED | frame_flags::VLAN;
    let want: [(u16, u16, Vec<u8>); 6] = [
        (tagged_only, 0, tagged(&plain, 0)),
        (tagged_only, 0, tagged(&long, 0)),
        (tagged_only, 0xe007, tagged(&plain, 0xe007)),
        (stripped, 0x2005, plain.clone()),
        (0, 0, plain.clone()),
        (0, 0, plain.clone()),
    ];
    assert_eq!(got.len(), want.len());
    for (i, ((hdr, data), (flags, tci, bytes))) in got.iter().zip(&want).enumerate() {
        assert_eq!((hdr.flags, hdr.tci), (*flags, *tci), "record {i}");
        assert_eq!(data, bytes, "record {i}");
    }
    h.close();
    finish(sim);
}

#[test]
fn tags_cross_a_pair_once_stripped_or_inline_as_the_receiver_advertises() {
    // `a` does 802.1Q, `b` does not (and has told the driver so).
    let sim = start(&["pair:a,b"]);
    let (a, b) = (sim.adapter_id("a").unwrap(), sim.adapter_id("b").unwrap());
    sim.set_vlan(b, false);
    sim.pause(b).unwrap();
    sim.restart(b, &RestartSpec::default()).unwrap();
    let (ha, _) = open(&sim, 0, filter::DEFAULT, &[0x88b5]);
    let (hb, _) = open(&sim, 1, filter::DEFAULT, &[0x88b5]);
    let f = frame(BROADCAST, PEER, 0x88b5, 64, 4);
    let exchange = |from: &ndisim::Handle, to: &ndisim::Handle, peer: AdapterId, tci: u16| {
        assert_eq!(send_status(from, &[(f.clone(), Some(tci))]), NtStatus::SUCCESS);
        assert!(sim.settle(peer));
        let got = read(to, 4096);
        assert_eq!(got.len(), 1);
        let (h, d) = &got[0];
        (h.flags, h.tci, d.clone())
    };
    let inline = frame_flags::TAGGED;
    let stripped = frame_flags::TAGGED | frame_flags::VLAN;
    // a's NIC inserts the tag; b indicates it inline.
    assert_eq!(exchange(&ha, &hb, b, 0x2064), (inline, 0x2064, tagged(&f, 0x2064)));
    // The driver writes TCI 0 into the frame itself, even on a; inline at b.
    assert_eq!(exchange(&ha, &hb, b, 0), (inline, 0, tagged(&f, 0)));
    // The driver tags b's frames; a's NIC strips the tag into the info.
    assert_eq!(exchange(&hb, &ha, a, 0x2064), (stripped, 0x2064, f.clone()));
    // Stripped, a tag of TCI 0 is an info of 0: untagged, as NDIS says.
    assert_eq!(exchange(&hb, &ha, a, 0), (0, 0, f.clone()));
    ha.close();
    hb.close();
    finish(sim);
}

#[test]
fn a_handle_with_rings_gets_the_other_handles_sends_in_its_rx_ring() {
    use rawnic_tests::rings::{SETUP, User, detach};
    let sim = start(&["null@name=on", "null@name=off,vlan=off"]);
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 5);
    let elsewhere = frame([0x02, 0, 0x5e, 0, 0, 0x77], PEER, 0x88b5, 60, 6);
    for (idx, name, vlan) in [(0, "on", true), (1, "off", false)] {
        let (tx, _) = open(&sim, idx, filter::DEFAULT, &[]);
        let (rx, _) = open(&sim, idx, filter::DEFAULT, &[0x88b5]);
        let u = User::attach(&rx, SETUP);
        u.fill((0..8).map(|i| u.frame(i)));
        let sends = [(f.clone(), Some(0x2064)), (elsewhere.clone(), None), (f.clone(), None)];
        assert_eq!(send_status(&tx, &sends), NtStatus::SUCCESS, "{name}");
        assert_eq!(tx.write(&f).status, 0, "{name}");
        // In the rx ring, as a handle with rings gets what it receives; the
        // unicast to another station is not for its filter.
        let got: Vec<(u16, u16, Vec<u8>)> = u.rx().into_iter().map(|(d, b)| (d.flags, d.tci, b)).collect();
        let out = frame_flags::OUTBOUND;
        let want = [sent_with_tag(&f, 0x2064, vlan), (out, 0, f.clone()), (out, 0, f.clone())];
        assert_eq!(got, want, "{name}");
        // Nothing went to its ReadFile queue, which nobody reads.
        let s = stats(&rx);
        assert_eq!((s.queued_frames, s.handle.rx_frames), (0, 3), "{name}");
        detach(&rx, u);
        tx.close();
        rx.close();
    }
    finish(sim);
}

#[test]
fn a_send_reaches_the_other_handles_with_its_tag_as_it_went_out() {
    let sim = start(&["null@name=on", "null@name=off,vlan=off"]);
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 5);
    let sends = [(f.clone(), Some(0x2064)), (f.clone(), Some(0)), (f.clone(), None), (tagged(&f, 7), None)];
    for (idx, name, vlan) in [(0, "on", true), (1, "off", false)] {
        let a = sim.adapter_id(name).unwrap();
        sim.set_capture(a, true);
        let (tx, _) = open(&sim, idx, filter::DEFAULT, &[]);
        // Filtering on the EtherType inside the tag.
        let (rx, _) = open(&sim, idx, filter::DEFAULT, &[0x88b5]);
        assert_eq!(send_status(&tx, &sends), NtStatus::SUCCESS, "{name}");
        let got = read(&rx, 64 * 1024);
        let out = frame_flags::OUTBOUND;
        let want = [
            sent_with_tag(&f, 0x2064, vlan),
            (out | frame_flags::TAGGED, 0, tagged(&f, 0)),
            (out, 0, f.clone()),
            (out | frame_flags::TAGGED, 7, tagged(&f, 7)),
        ];
        let got_tags: Vec<(u16, u16, Vec<u8>)> = got.iter().map(|(h, d)| (h.flags, h.tci, d.clone())).collect();
        assert_eq!(got_tags, want, "{name}");
        // Each record, its stripped tag put back, is what reached the wire.
        assert!(sim.settle(a));
        let wire: Vec<Vec<u8>> = sim.captured(a).iter().map(|c| c.wire()).collect();
        let recorded: Vec<Vec<u8>> = got
            .iter()
            .map(|(h, d)| if h.flags & frame_flags::VLAN != 0 { tagged(d, h.tci) } else { d.clone() })
            .collect();
        assert_eq!(recorded, wire, "{name}");
        for (h, d) in &got {
            assert_eq!((h.caplen as usize, h.origlen as usize), (d.len(), d.len()), "{name}");
        }
        // A snap length that cuts into the tag the driver wrote in.
        let cut = sim.open().unwrap();
        let req = open_request(&list(&cut)[idx].name, filter::DEFAULT, &[], 0, 0, 14);
        assert_eq!(cut.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN).status, 0);
        assert_eq!(send_status(&tx, &sends[1..2]), NtStatus::SUCCESS, "{name}");
        let got = read(&cut, 4096);
        assert_eq!(got.len(), 1, "{name}");
        let (h, d) = &got[0];
        assert_eq!(
            (h.caplen, h.origlen, h.flags & !frame_flags::OUTBOUND, h.tci),
            (14, 64, frame_flags::TAGGED | frame_flags::TRUNCATED, 0)
        );
        assert_eq!(d[..], tagged(&f, 0)[..14], "{name}");
        cut.close();
        tx.close();
        rx.close();
    }
    finish(sim);
}

/// A handle's EtherType list meets a frame as it was on the wire, as a
/// capture program does: a frame whose tag the NIC stripped into the NBL's
/// info (or will insert, for a send from this host) is of EtherType
/// 0x8100, with its own EtherType inside, exactly as one carrying its tag
/// inline. So listing 0x8100 takes every tagged frame whichever side of
/// the NIC the tag is on, and listing the inner EtherType takes them too.
#[test]
fn an_ethertype_list_sees_a_stripped_tag_as_on_the_wire() {
    let sim = start(&["null"]);
    let a = AdapterId(0);
    let vlan = open(&sim, 0, filter::DEFAULT, &[0x8100]).0;
    let ip = open(&sim, 0, filter::DEFAULT, &[0x0800]).0;
    let ip6 = open(&sim, 0, filter::DEFAULT, &[0x86dd]).0;
    let plain = frame(BROADCAST, PEER, 0x0800, 60, 1);
    // Received: stripped, inline, and untagged; then sent from this host
    // with a tag the adapter inserts (`vlan=on`).
    for (f, tci) in [(plain.clone(), Some(5u16)), (tagged(&plain, 6), None), (plain.clone(), None)] {
        assert_eq!(sim.inject(a, &[&f], &InjectOpts { tci, ..Default::default() }).unwrap(), 1);
    }
    let (tx, _) = open(&sim, 0, filter::DEFAULT, &[0x88b5]);
    assert_eq!(send_status(&tx, &[(plain.clone(), Some(7))]), NtStatus::SUCCESS);
    let tags = |h: &ndisim::Handle| queued(h).iter().map(|(h, _)| h.tci).collect::<Vec<_>>();
    assert_eq!(tags(&vlan), [5, 6, 7]);
    assert_eq!(tags(&ip), [5, 6, 0, 7]);
    assert!(tags(&ip6).is_empty());
    drop((vlan, ip, ip6, tx));
    // The rings' one pass (a sole receiver with rings) classifies alike.
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[0x8100]);
    let u = rawnic_tests::rings::User::attach(&h, rawnic_tests::rings::SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    for tci in [Some(5u16), None] {
        assert_eq!(sim.inject(a, &[&plain], &InjectOpts { tci, ..Default::default() }).unwrap(), 1);
    }
    let got = u.rx();
    assert_eq!(got.iter().map(|(d, f)| (d.tci, f.clone())).collect::<Vec<_>>(), [(5, plain.clone())]);
    rawnic_tests::rings::detach(&h, u);
    drop(h);
    finish(sim);
}

/// A runt whose tag the NIC stripped, 12 or 13 bytes as indicated, was 16
/// or 17 on the wire: its addresses, then TPID 0x8100 and the TCI. Its
/// EtherType as on the wire is 0x8100, as for the same runt carrying its
/// tag inline (and as a capture program sees at `ether[12:2]`): a handle
/// that lists 0x8100 takes both, queue and rings alike; one that lists
/// another EtherType takes neither. A shorter one has no EtherType at all.
#[test]
fn a_stripped_runt_is_of_ethertype_8100_as_it_was_on_the_wire() {
    let sim = start(&["null"]);
    let a = AdapterId(0);
    let full = frame(BROADCAST, PEER, 0x0800, 14, 1);
    // (data, the TCI in the NBL's info): stripped, then the same inline.
    let mut cases: Vec<(Vec<u8>, Option<u16>)> = Vec::new();
    for n in [12usize, 13] {
        cases.push((full[..n].to_vec(), Some(5)));
        cases.push(([&full[..12], &[0x81, 0x00, 0x00, 0x05][..], &full[12..n]].concat(), None));
    }
    // Too short for its addresses: of no EtherType, stripped or not.
    let short = (full[..11].to_vec(), Some(5u16));
    let vlan = open(&sim, 0, filter::DEFAULT, &[0x8100]).0;
    let ip = open(&sim, 0, filter::DEFAULT, &[0x0800]).0;
    for (f, tci) in cases.iter().chain([&short]) {
        assert_eq!(sim.inject(a, &[f], &InjectOpts { tci: *tci, ..Default::default() }).unwrap(), 1);
    }
    let got = |h: &ndisim::Handle| queued(h).into_iter().map(|(h, d)| (d, h.tci)).collect::<Vec<_>>();
    let want: Vec<(Vec<u8>, u16)> = cases.iter().map(|(f, _)| (f.clone(), 5)).collect();
    assert_eq!(got(&vlan), want, "as on the wire, the stripped runts with the inline ones");
    assert!(got(&ip).is_empty(), "no inner EtherType in any");
    drop((vlan, ip));
    // The rings' one pass (a sole receiver with rings) classifies alike.
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[0x8100]);
    let u = rawnic_tests::rings::User::attach(&h, rawnic_tests::rings::SETUP);
    u.fill((0..8).map(|i| u.frame(i)));
    for (f, tci) in cases.iter().chain([&short]) {
        assert_eq!(sim.inject(a, &[f], &InjectOpts { tci: *tci, ..Default::default() }).unwrap(), 1);
    }
    let rx = u.rx();
    assert_eq!(rx.into_iter().map(|(d, f)| (f, d.tci)).collect::<Vec<_>>(), want);
    rawnic_tests::rings::detach(&h, u);
    drop(h);
    finish(sim);
}
