//! Receive offloads with the real rawnic.sys in ndisim: frames the NIC
//! coalesced (RSC for TCP, URO for UDP) are delivered whole, however far
//! past the MTU, flagged `COALESCED` with the counts the adapter gave; a
//! long frame without coalescing info is delivered as before; rawnic
//! registers as NDIS 6.89 where NDIS has it (so NDIS leaves URO on) and
//! falls back to 6.30 where it does not (and NDIS turns URO off).

use ndisim::{AdapterId, Coalesce, InjectOpts, Sim, SimError};
use rawnic_proto::*;
use rawnic_tests::drv::*;

const IPV4: u16 = 0x0800;
/// The largest coalesced unit: a 64 KiB IP datagram and its Ethernet
/// header.
const MAX_SCU: usize = 65_535 + 14;

fn coalesced(c: Coalesce) -> InjectOpts {
    InjectOpts { coalesce: Some(c), ..InjectOpts::default() }
}

/// Injects one frame on adapter 0.
fn inject(sim: &Sim, f: &[u8], o: &InjectOpts) -> Result<usize, SimError> {
    sim.inject(AdapterId(0), &[f], o)
}

/// The NDIS version GET_VERSION reports.
fn reported_ndis(sim: &Sim) -> (u8, u8) {
    let h = sim.open().expect("open the control device");
    let r = h.ioctl(IOCTL_RAWNIC_GET_VERSION, &empty(), VersionReply::LEN);
    assert_eq!(r.status, 0);
    let v = VersionReply::parse(&r.data).unwrap();
    h.close();
    assert_eq!(v.proto_version, PROTO_VERSION);
    v.ndis
}

/// A handle on binding 0 taking IPv4, with a receive queue of
/// `queue_bytes` (0: the default).
fn open_ipv4(sim: &Sim, queue_bytes: u32) -> ndisim::Handle {
    let h = sim.open().expect("open the control device");
    let name = list(&h)[0].name.clone();
    let req = open_request_full(&name, filter::DEFAULT, &[IPV4], (0, queue_bytes, 0), LocalSends::Others, false);
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
    assert_eq!(r.status, 0, "OPEN: {:?}", status(r.status));
    h
}

fn flags_and_counts(h: &FrameHeader) -> (u16, u16, u16) {
    (h.flags, h.segs, h.seg_size)
}

#[test]
fn coalesced_frames_are_delivered_whole_and_flagged_with_their_counts() {
    let sim = start(&["null@uro=on"]);
    assert_eq!(sim.protocol_ndis_version(), Some((6, 89)));
    assert_eq!(sim.protocol_flags(), Some(0), "rawnic does not opt out of URO");
    assert!(sim.uro_enabled(AdapterId(0)), "a 6.89 protocol leaves URO on");
    assert_eq!(reported_ndis(&sim), (6, 89));
    let h = open_ipv4(&sim, 0);
    let rsc = frame(BROADCAST, PEER, IPV4, 20_000, 1);
    let uro = frame(BROADCAST, PEER, IPV4, 9_000, 2);
    let uro_no_count = frame(BROADCAST, PEER, IPV4, 4_000, 3);
    let biggest = frame(BROADCAST, PEER, IPV4, MAX_SCU, 4);
    let c = frame_flags::COALESCED;
    let cases = [
        (&rsc, Coalesce::Rsc { segs: 14, dup_acks: 1 }, (c, 14, 0)),
        (&uro, Coalesce::Uro { segs: 6, seg_size: 1472 }, (c, 6, 1472)),
        (&uro_no_count, Coalesce::Uro { segs: 0, seg_size: 1200 }, (c, 0, 1200)),
        (&biggest, Coalesce::Rsc { segs: 45, dup_acks: 0 }, (c, 45, 0)),
    ];
    // Retained until read (no read waits), then copied (NDIS wants its
    // resources back): the record is the same.
    for resources in [false, true] {
        for (f, how, _) in &cases {
            let o = InjectOpts { resources, ..coalesced(*how) };
            assert_eq!(inject(&sim, f, &o).unwrap(), 1);
        }
        let got = read(&h, 1 << 20);
        assert_eq!(got.len(), cases.len(), "resources {resources}");
        for ((hdr, data), (f, how, want)) in got.iter().zip(&cases) {
            assert_eq!(flags_and_counts(hdr), *want, "{how:?}, resources {resources}");
            assert_eq!((hdr.caplen as usize, hdr.origlen as usize), (f.len(), f.len()), "{how:?}: whole");
            assert!(data == *f, "{how:?}: the data as indicated");
        }
    }
    let s = stats(&h);
    assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops, s.handle.rx_truncated), (8, 0, 0));
    h.close();
    finish(sim);
}

#[test]
fn the_smallest_queue_holds_the_largest_coalesced_frame() {
    let sim = start(&["null"]);
    let h = open_ipv4(&sim, MIN_QUEUE_BYTES);
    let biggest = frame(BROADCAST, PEER, IPV4, MAX_SCU, 5);
    assert!(FrameHeader::record_len(MAX_SCU) <= MIN_QUEUE_BYTES as usize);
    inject(&sim, &biggest, &coalesced(Coalesce::Rsc { segs: 45, dup_acks: 0 })).unwrap();
    let got = read(&h, 1 << 20);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.origlen as usize, got[0].0.segs, got[0].1 == biggest), (MAX_SCU, 45, true));
    assert_eq!(stats(&h).handle.rx_queue_drops, 0);
    h.close();
    finish(sim);
}

#[test]
fn a_long_frame_without_coalescing_info_is_delivered_as_before() {
    // Today (and before offloads): rawnic checks no length on receive; a
    // frame longer than MTU + 14 that NDIS indicates is queued whole, as
    // any frame, and not flagged. An RSC info whose count is 0 is no RSC
    // (the documentation: 0 on every frame that is not coalesced).
    let sim = start(&["null"]);
    let h = open_ipv4(&sim, 0);
    let long = frame(BROADCAST, PEER, IPV4, 3_000, 6);
    inject(&sim, &long, &InjectOpts::default()).unwrap();
    inject(&sim, &long, &coalesced(Coalesce::Rsc { segs: 0, dup_acks: 3 })).unwrap();
    // NDIS's loopback of another protocol's send carries send-path info in
    // those slots: never read as coalescing.
    let looped = InjectOpts { loopback: true, ..coalesced(Coalesce::Rsc { segs: 9, dup_acks: 0 }) };
    inject(&sim, &long, &looped).unwrap();
    let got = read(&h, 1 << 20);
    let flags: Vec<(u16, u16, u16)> = got.iter().map(|(h, _)| flags_and_counts(h)).collect();
    let out = frame_flags::OUTBOUND | frame_flags::LOOPBACK;
    assert_eq!(flags, [(0, 0, 0), (0, 0, 0), (out, 0, 0)]);
    assert!(got.iter().all(|(h, d)| h.origlen == 3_000 && *d == long));
    h.close();
    finish(sim);
}

#[test]
fn rawnic_registers_as_6_89_and_falls_back_to_6_30_where_ndis_refuses_it() {
    // Windows 8 (NDIS 6.30) and Windows 11 21H2 (6.86): NDIS refuses 6.89
    // with NDIS_STATUS_BAD_VERSION and rawnic registers again as 6.30 (no
    // verifier report: the refusal is NDIS's answer, not a mistake).
    for os in [(6, 30), (6, 86)] {
        let sim = rawnic_tests::rawnic_builder().adapter("null@uro=on").ndis_version(os.0, os.1);
        let sim = sim.start().expect("rawnic starts");
        assert_eq!(sim.refused_ndis_versions(), [(6, 89)], "NDIS {os:?}");
        assert_eq!(sim.protocol_ndis_version(), Some((6, 30)), "NDIS {os:?}");
        assert_eq!(reported_ndis(&sim), (6, 30));
        // A 6.30 protocol is unfamiliar with URO: NDIS turned it off when
        // rawnic bound, and the NIC indicates no URO frames.
        assert!(!sim.uro_enabled(AdapterId(0)));
        assert_eq!(sim.uro_turned_off(AdapterId(0)), 1);
        let f = frame(BROADCAST, PEER, IPV4, 4_000, 7);
        let e = inject(&sim, &f, &coalesced(Coalesce::Uro { segs: 3, seg_size: 1300 })).unwrap_err();
        assert!(e.to_string().contains("URO is off"), "{e}");
        // RSC is for protocols of 6.30 and later alike.
        let h = open_ipv4(&sim, 0);
        inject(&sim, &f, &coalesced(Coalesce::Rsc { segs: 3, dup_acks: 0 })).unwrap();
        let got = read(&h, 1 << 20);
        assert_eq!(flags_and_counts(&got[0].0), (frame_flags::COALESCED, 3, 0));
        h.close();
        finish(sim);
    }
    // Windows 11 24H2: 6.89 at once, URO stays on.
    let sim = rawnic_tests::rawnic_builder().adapter("null@uro=on").ndis_version(6, 89);
    let sim = sim.start().expect("rawnic starts");
    assert!(sim.refused_ndis_versions().is_empty());
    assert_eq!(sim.protocol_ndis_version(), Some((6, 89)));
    assert!(sim.uro_enabled(AdapterId(0)));
    assert_eq!(sim.uro_turned_off(AdapterId(0)), 0);
    finish(sim);
}

/// rawnic's OID requests carry the `NDIS_OID_REQUEST` revision of the NDIS
/// version it registered with: revision 2 (NDIS 6.50's) as a 6.89
/// protocol, revision 1 as a 6.30 one. NDIS fails a driver's structure of
/// an older revision than its registered version has, and ndisim a newer
/// one too. The image before this test sent revision 1 as 6.89: every
/// request of the bind and of a handle's open was refused.
#[test]
fn oid_requests_carry_the_revision_of_the_registered_version() {
    for (os, registered) in [((6, 89), (6, 89)), ((6, 50), (6, 30)), ((6, 30), (6, 30))] {
        let sim = rawnic_tests::rawnic_builder().adapter("null").ndis_version(os.0, os.1);
        let sim = sim.start().expect("rawnic starts");
        assert_eq!(sim.protocol_ndis_version(), Some(registered), "NDIS {os:?}");
        let h = open_ipv4(&sim, 0);
        h.close();
        sim.settle(AdapterId(0));
        assert!(sim.violations().is_empty(), "NDIS {os:?}: {:?}", sim.violations());
        let sets = sim.oid_log(AdapterId(0), false);
        assert!(
            sets.iter().any(|&(kind, oid)| kind == ndis_sys::NdisRequestSetInformation
                && oid == ndis_sys::OID_GEN_CURRENT_PACKET_FILTER),
            "NDIS {os:?}: the packet filter was set ({sets:?})"
        );
        finish(sim);
    }
}
