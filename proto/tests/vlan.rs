//! 802.1Q tags in the wire format: a frame to send may be 4 bytes longer
//! when it carries its tag inline, and a received frame's record says
//! whether the frame had a tag (even of TCI 0) and whether it was stripped.

use rawnic_proto::*;

/// A SEND_BATCH input of `frames`.
fn batch(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
    let mut buf = vec![0u8; 16 + frames.iter().map(|(f, _)| (8 + f.len() + 7) & !7).sum::<usize>()];
    let mut w = SendBatchWriter::new(&mut buf).unwrap();
    for (f, tci) in frames {
        w.push(&SendFrame { data: f, tci: *tci }).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// A frame of `len` bytes; with `tci`, an 802.1Q tag inline.
fn eth(len: usize, tci: Option<u16>) -> Vec<u8> {
    let mut f = vec![0x5a; len];
    match tci {
        Some(t) => {
            f[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
            f[14..16].copy_from_slice(&t.to_be_bytes());
        }
        None => f[12..14].copy_from_slice(&[0x88, 0xb5]),
    }
    f
}

#[test]
fn a_frame_with_its_tag_inline_may_be_4_bytes_longer() {
    let check = |f: Vec<u8>, tci: Option<u16>| SendBatch::new_checked(&batch(&[(f, tci)]), 1514).err();
    assert_eq!(check(eth(1518, Some(0)), None), None, "MTU + 18 with a tag inline (even TCI 0)");
    assert_eq!(check(eth(1519, Some(5)), None), Some(Error::FrameLength), "MTU + 19");
    assert_eq!(check(eth(1515, None), None), Some(Error::FrameLength), "MTU + 15 untagged");
    assert_eq!(check(eth(1514, None), Some(5)), None, "MTU + 14 to be tagged: MTU + 18 on the wire");
    assert_eq!(check(eth(1518, Some(5)), Some(7)), Some(Error::FrameLength), "a second tag past MTU + 18");
    let mut qinq = eth(1518, None);
    qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
    assert_eq!(check(qinq, None), Some(Error::FrameLength), "only an 802.1Q tag counts");
    assert_eq!(inline_tci(&eth(16, Some(0))), Some(0));
    assert_eq!(inline_tci(&eth(15, None)), None);
    assert_eq!(inline_tci(&eth(14, None)), None);
    assert_eq!(max_send_len(1514, &eth(60, Some(0)), None), 1518);
    assert_eq!(max_send_len(1514, &eth(60, Some(0)), Some(1)), 1514);
    assert_eq!(max_send_len(1514, &eth(60, None), None), 1514);
}

#[test]
fn a_record_says_whether_the_frame_had_a_tag() {
    let h =
        |flags: u16, tci: u16| FrameHeader { caplen: 0, origlen: 0, timestamp_ns: 1, flags, tci, ..Default::default() };
    let parse = |h: FrameHeader| FrameHeader::parse(&h.to_bytes());
    assert!(parse(h(0, 0)).is_ok(), "untagged");
    assert!(parse(h(frame_flags::TAGGED, 0)).is_ok(), "tagged with TCI 0");
    assert!(parse(h(frame_flags::TAGGED | frame_flags::VLAN, 0x2005)).is_ok(), "stripped");
    assert!(parse(h(frame_flags::VLAN, 5)).is_ok(), "stripped, as drivers before TAGGED say it");
    assert_eq!(parse(h(0, 5)), Err(Error::InvalidParameter), "a TCI without a tag");
    assert_eq!(parse(h(frame_flags::OUTBOUND, 5)), Err(Error::InvalidParameter), "a TCI without a tag");
    let all = [frame_flags::TRUNCATED, frame_flags::VLAN, frame_flags::OUTBOUND, frame_flags::LOOPBACK];
    assert!(all.iter().all(|&f| f & frame_flags::TAGGED == 0), "TAGGED is a bit of its own");
}
