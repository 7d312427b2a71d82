//! rawnic.sys on a TAP adapter in a private network namespace: the Linux
//! kernel is its peer. Frames cross both ways through the driver's real
//! IRP path. (Needs root, as CI has; it skips nothing.)

use ndisim::AdapterId;
use rawnic_proto::{filter, frame_flags};
use rawnic_tests::drv::*;
use rawnic_tests::tap::{RawSocket, ip_link_up, private_netns};

const ETHERTYPE: u16 = 0x88b5;

#[test]
fn frames_cross_between_the_driver_and_the_linux_kernel_both_ways() {
    // The namespace is this thread's (and that of the threads it starts).
    private_netns();
    let sim = start(&["tap:rawnic0@mac=02:00:00:00:00:01"]);
    ip_link_up("rawnic0");
    let sock = RawSocket::bind(c"rawnic0");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[ETHERTYPE]);

    // Driver to Linux: a SEND_BATCH reaches the kernel's side of the TAP.
    let out: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE, 60 + i, i as u32)).collect();
    assert_eq!(send(&h, &out).accepted, 3);
    for f in &out {
        assert_eq!(sock.recv(ETHERTYPE).as_ref(), Some(f), "the Linux side did not see the driver's frame");
    }

    // Linux to driver: a frame the kernel sends reaches a ReadFile.
    let back = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 0x77], ETHERTYPE, 100, 9);
    sock.send(&back);
    let t = h.read_async(4096).unwrap();
    let r = t.wait().expect("the frame from Linux reached the driver");
    let got = records(&r);
    assert_eq!(got[0].1, back);
    h.close();
    finish(sim);
}

/// `f` with an 802.1Q tag of `tci` after its MAC addresses.
fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    [&f[..12], &[0x81, 0x00], &tci.to_be_bytes()[..], &f[12..]].concat()
}

#[test]
fn tags_cross_the_tap_once_and_a_failed_write_is_counted() {
    private_netns();
    let sim = start(&["tap:vlanon@mac=02:00:00:00:00:01", "tap:vlanoff@mac=02:00:00:00:00:02,vlan=off"]);
    let (h_on, _) = open(&sim, 0, filter::DEFAULT, &[ETHERTYPE]);
    let (h_off, _) = open(&sim, 1, filter::DEFAULT, &[ETHERTYPE]);
    let out = frame(BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE, 60, 1);

    // Until its link is up, a TAP device refuses writes (EIO): the adapter
    // counts a transmit error, and OID_GEN_XMIT_ERROR reports it.
    assert_eq!(send(&h_on, std::slice::from_ref(&out)).accepted, 1);
    assert_eq!(sim.transmit_errors(AdapterId(0)), 1);
    let (hdr, data) = oid_query(&h_on, ndis_sys::OID_GEN_XMIT_ERROR, 64);
    assert_eq!((hdr.ndis_status, data), (0, 1u64.to_le_bytes().to_vec()));
    ip_link_up("vlanon");
    ip_link_up("vlanoff");
    let (s_on, s_off) = (RawSocket::bind(c"vlanon"), RawSocket::bind(c"vlanoff"));
    s_on.report_tags();
    s_off.report_tags();

    for (h, s, vlan, mac) in [(&h_on, &s_on, true, 1), (&h_off, &s_off, false, 2)] {
        for tci in [0x2064, 0] {
            // Driver to Linux: the tag is on the wire once (the kernel
            // takes one off; a second would hide the EtherType), put there
            // by the adapter (vlan=on) or by the driver (vlan=off, or TCI
            // 0).
            let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(out.clone(), Some(tci))]), 16);
            assert_eq!(r.status, 0, "vlan {vlan}, TCI {tci:#x}");
            assert_eq!(s.recv_tagged(ETHERTYPE), Some((out.clone(), Some(tci))), "vlan {vlan}, TCI {tci:#x}");

            // Linux to driver: a tag inline on the wire is stripped into the
            // NBL's info (vlan=on; NDIS cannot say TCI 0) or indicated
            // inline.
            let back = frame([2, 0, 0, 0, 0, mac], [2, 0, 0, 0, 0, 0x77], ETHERTYPE, 100, tci.into());
            s.send(&tagged(&back, tci));
            let r = h.read_async(4096).unwrap().wait().expect("the frame from Linux reached the driver");
            let got = records(&r);
            let want = match (vlan, tci) {
                (true, 0) => (0, 0, back.clone()),
                (true, t) => (frame_flags::TAGGED | frame_flags::VLAN, t, back.clone()),
                (false, t) => (frame_flags::TAGGED, t, tagged(&back, t)),
            };
            assert_eq!((got[0].0.flags, got[0].0.tci, got[0].1.clone()), want, "vlan {vlan}, TCI {tci:#x}");
        }
    }
    assert_eq!(sim.transmit_errors(AdapterId(0)) + sim.transmit_errors(AdapterId(1)), 1);
    assert_eq!(sim.tags_ignored(AdapterId(1)), 0);
    h_on.close();
    h_off.close();
    finish(sim);
}
