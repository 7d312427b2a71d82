//! The OID answers oracle (`run/oid_answers.rs`) takes each OID's own
//! answer, as ndisim's miniport writes it, and refuses the answer of every
//! other OID the explorer queries: a driver that handed one request's
//! completion to another requester is caught.

use ndis_sys::*;
use rawnic_chaos::run::oid_answers::{Miniport, judge};

const SPEED: u64 = 1_000_000_000;
const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const DESC: &[u8] = b"ndisim e1000 adapter eth0\0";

/// ndisim's supported list (OIDs, little-endian), its miniport's answer.
fn supported() -> Vec<u8> {
    ndisim::SUPPORTED_OIDS.iter().flat_map(|o| o.to_le_bytes()).collect()
}

fn as_bytes<T>(v: &T) -> Vec<u8> {
    // SAFETY: plain data of its size.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }.to_vec()
}

fn link_state() -> Vec<u8> {
    // SAFETY: plain data.
    let mut l: NDIS_LINK_STATE = unsafe { std::mem::zeroed() };
    l.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NDIS_LINK_STATE_REVISION_1,
        Size: NDIS_SIZEOF_LINK_STATE_REVISION_1,
    };
    l.MediaConnectState = MediaConnectStateConnected;
    l.MediaDuplexState = MediaDuplexStateFull;
    l.XmitLinkSpeed = SPEED;
    l.RcvLinkSpeed = SPEED;
    as_bytes(&l)
}

/// ndisim's answer (its header, its supported statistics) with some counts.
fn statistics() -> Vec<u8> {
    let mut s = ndisim::statistics_info();
    s.ifHCInUcastPkts = 17;
    s.ifHCOutUcastPkts = 5;
    as_bytes(&s)
}

/// Each queried OID and a genuine answer of ndisim's miniport to it.
fn answers() -> Vec<(u32, Vec<u8>)> {
    vec![
        (OID_GEN_LINK_SPEED, ((SPEED / 100) as u32).to_le_bytes().to_vec()),
        (OID_GEN_VENDOR_DESCRIPTION, DESC.to_vec()),
        (OID_GEN_CURRENT_PACKET_FILTER, 0x0bu32.to_le_bytes().to_vec()),
        (OID_GEN_STATISTICS, statistics()),
        (OID_GEN_LINK_STATE, link_state()),
        (OID_802_3_CURRENT_ADDRESS, MAC.to_vec()),
        (OID_802_3_MULTICAST_LIST, [[0x01, 0x00, 0x5e, 0, 0, 1], [0x01, 0x00, 0x5e, 0, 0, 2]].concat()),
        (OID_GEN_XMIT_OK, 5u64.to_le_bytes().to_vec()),
        (OID_GEN_SUPPORTED_LIST, supported()),
        (OID_GEN_MAXIMUM_FRAME_SIZE, 1500u32.to_le_bytes().to_vec()),
    ]
}

fn miniport(oid: u32, overstates: bool) -> Miniport {
    let fixed = match oid {
        OID_GEN_SUPPORTED_LIST => Some(supported()),
        OID_GEN_VENDOR_DESCRIPTION => Some(DESC.to_vec()),
        OID_802_3_CURRENT_ADDRESS => Some(MAC.to_vec()),
        _ => None,
    };
    Miniport { fixed, overstates, speed: SPEED, filters: 0x2f, mtus: vec![1500, 9000], sent: 5 }
}

/// As the driver passes it: the answer, and with an overstating miniport
/// the rest of the buffer (zeros).
fn reply(answer: &[u8], limit: u32, overstates: bool) -> Vec<u8> {
    let mut d = answer.to_vec();
    if overstates {
        d.resize(limit as usize, 0);
    }
    d
}

#[test]
fn each_oid_s_own_answer_passes() {
    for overstates in [false, true] {
        for (oid, a) in answers() {
            let r = reply(&a, 256, overstates);
            assert_eq!(judge(oid, 256, &r, &[miniport(oid, overstates)]), Ok(()), "OID {oid:#x}");
        }
    }
    // A 64-bit counter read into 4 bytes.
    assert_eq!(judge(OID_GEN_XMIT_OK, 4, &5u32.to_le_bytes(), &[miniport(OID_GEN_XMIT_OK, false)]), Ok(()));
    // A link down: speed 0; an empty multicast list.
    assert_eq!(judge(OID_GEN_LINK_SPEED, 12, &[0; 4], &[miniport(OID_GEN_LINK_SPEED, false)]), Ok(()));
    assert_eq!(judge(OID_802_3_MULTICAST_LIST, 0, &[], &[miniport(OID_802_3_MULTICAST_LIST, false)]), Ok(()));
}

#[test]
fn another_oid_s_answer_fails() {
    let all = answers();
    for overstates in [false, true] {
        for (oid, _) in &all {
            // Where the miniport overstates, a 4-byte answer comes back
            // followed by the buffer's zeros, as a small 64-bit counter
            // does: the sent frames' count and the 4-byte link speed and
            // packet filter cannot be told apart (as neither can the
            // three in a 4-byte buffer, where the counter is cut to 4); and
            // one whose first byte is odd reads as a one-group multicast
            // list followed by zeros.
            let small =
                [OID_GEN_LINK_SPEED, OID_GEN_CURRENT_PACKET_FILTER, OID_GEN_XMIT_OK, OID_GEN_MAXIMUM_FRAME_SIZE];
            let alike =
                |o: u32| overstates && (small.contains(oid) || *oid == OID_802_3_MULTICAST_LIST) && small.contains(&o);
            for (other, a) in all.iter().filter(|(o, _)| o != oid && !alike(*o)) {
                let r = reply(a, 256, overstates);
                let verdict = judge(*oid, 256, &r, &[miniport(*oid, overstates)]);
                assert!(
                    verdict.is_err(),
                    "OID {other:#x}'s answer ({} bytes) passed as OID {oid:#x}'s (overstating {overstates})",
                    a.len()
                );
            }
        }
    }
    // The unknown OID is answered by no miniport of ndisim's.
    let (_, a) = &all[0];
    assert!(judge(0x00FF_FF01, 256, a, &[miniport(0x00FF_FF01, false)]).is_err());
}

#[test]
fn another_adapter_s_fixed_answer_fails() {
    let other = Miniport { fixed: Some(vec![0x02, 0x00, 0x5e, 0x10, 0x00, 0x02]), ..miniport(0, false) };
    let e = judge(OID_802_3_CURRENT_ADDRESS, 256, &MAC, std::slice::from_ref(&other));
    assert!(e.is_err(), "{e:?}");
    // Unknown placement: any of the schedule's adapters may have answered.
    assert_eq!(
        judge(OID_802_3_CURRENT_ADDRESS, 256, &MAC, &[other, miniport(OID_802_3_CURRENT_ADDRESS, false)]),
        Ok(())
    );
}

#[test]
fn a_damaged_shape_fails() {
    let m = miniport(OID_GEN_LINK_STATE, false);
    let mut l = link_state();
    l[1] = 2;
    assert!(judge(OID_GEN_LINK_STATE, 256, &l, std::slice::from_ref(&m)).is_err(), "a revision 2 header");
    let l = link_state();
    assert!(judge(OID_GEN_LINK_STATE, 256, &l[..32], &[m]).is_err(), "a cut structure");
    let mut st = statistics();
    st[1] = 2;
    let sm = miniport(OID_GEN_STATISTICS, false);
    assert!(judge(OID_GEN_STATISTICS, 256, &st, &[sm]).is_err(), "a statistics header of revision 2");
    let f = miniport(OID_GEN_CURRENT_PACKET_FILTER, false);
    assert!(judge(OID_GEN_CURRENT_PACKET_FILTER, 256, &0x1000u32.to_le_bytes(), &[f]).is_err());
    let mc = miniport(OID_802_3_MULTICAST_LIST, false);
    assert!(judge(OID_802_3_MULTICAST_LIST, 256, &MAC, std::slice::from_ref(&mc)).is_err(), "a unicast address");
    assert!(judge(OID_802_3_MULTICAST_LIST, 256, &[1, 0, 0, 0], &[mc]).is_err(), "a part of an address");
    // Overstated: the buffer's tail must be zeros.
    let mut r = reply(&MAC, 256, true);
    r[100] = 1;
    assert!(judge(OID_802_3_CURRENT_ADDRESS, 256, &r, &[miniport(OID_802_3_CURRENT_ADDRESS, true)]).is_err());
}
