//! The frames a schedule sends and injects. Each carries a marker, its own
//! sequence number and length, and a payload derived from them, so every
//! frame a handle reads can be checked byte for byte: a frame that comes
//! back changed (a use after free, a stale buffer, a wrong copy) is found.

use crate::schedule::Dst;

/// The EtherType of schedule frames (IEEE local experimental).
pub const ETHERTYPE: u16 = 0x88B5;
const MARK: [u8; 4] = *b"RnCh";
/// Where the marker starts: after the Ethernet header.
const BODY: usize = 14;
/// Marker, sequence number, length.
const META: usize = 12;

/// The destination address of a frame to `dst` (`mac`: the adapter's).
/// The group is on no handle's multicast list (the explorer's lists are
/// all of the form 01:k:k:k:k:k).
pub fn dst_addr(dst: Dst, mac: [u8; 6]) -> [u8; 6] {
    match dst {
        Dst::Broadcast => [0xff; 6],
        Dst::Directed => mac,
        Dst::Multicast => [0x01, 0x00, 0x5e, 0x00, 0x00, 0x42],
        Dst::Other => [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30],
    }
}

/// Multicast group `i` (0 to 7) of the explorer's joins: group 0 is the
/// one the NIC's multicast frames go to (`Dst::Multicast`).
pub fn group(i: u8) -> [u8; 6] {
    match i {
        0 => dst_addr(Dst::Multicast, [0; 6]),
        i => [0x01, 0x00, 0x5e, 0x00, 0x01, i],
    }
}

/// A frame of `len` bytes (at least the header and the metadata) to `dst`.
pub fn build(dst: Dst, mac: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let len = len.max(BODY + META);
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst_addr(dst, mac));
    f[6..12].copy_from_slice(&[0x02, 0xc4, 0xa0, 0x5e, (seq >> 8) as u8, seq as u8]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[BODY..BODY + 4].copy_from_slice(&MARK);
    f[BODY + 4..BODY + 8].copy_from_slice(&seq.to_le_bytes());
    f[BODY + 8..BODY + 12].copy_from_slice(&(len as u32).to_le_bytes());
    for (i, b) in f[BODY + META..].iter_mut().enumerate() {
        *b = pattern(seq, i);
    }
    f
}

/// A schedule frame delivered from the wrong place: its marker (with the
/// EtherType before it) found anywhere but where it belongs, after the
/// addresses, or 4 bytes later behind an 802.1Q tag. A driver that copied
/// from the start of an MDL instead of the frame's offset in it, or from
/// the chain's first MDL instead of the current one, delivers that (a
/// frame with the marker nowhere is left to `check`: requests the
/// explorer damages on purpose make such frames).
pub fn shifted(data: &[u8]) -> Result<(), String> {
    let head = &data[..data.len().min(320)];
    let key = [ETHERTYPE.to_be_bytes()[0], ETHERTYPE.to_be_bytes()[1], MARK[0], MARK[1], MARK[2], MARK[3]];
    let Some(at) = head.windows(key.len()).position(|w| w == key) else { return Ok(()) };
    let tagged = at == 16 && matches!(data[12..14], [0x81, 0x00] | [0x88, 0xa8]);
    if at == 12 || tagged {
        return Ok(());
    }
    Err(format!(
        "a schedule frame arrived shifted: its EtherType and marker at byte {at}, not 12: {:02x?}",
        &data[..data.len().min(32)]
    ))
}

/// Bytes of a frame up to the end of its marker: shorter frames (runts)
/// carry none.
pub const MARKED: usize = BODY + META;

/// The 802.1Q and 802.1ad tag protocol identifiers.
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88A8;

/// Puts an inline tag (`tpid`, `tci`) after the addresses of a frame that
/// has a header: the frame is 4 bytes longer, its marker unchanged.
pub fn tag_inline(f: &mut Vec<u8>, tpid: u16, tci: u16) {
    if f.len() >= 12 {
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&tci.to_be_bytes());
        f.splice(12..12, tag);
    }
}

/// The bytes of an inline tag `data` carries (4 when its EtherType is one
/// of `tpids`), else 0.
fn tag_len(data: &[u8], tpids: &[u16]) -> usize {
    match data.get(12..14) {
        Some(t) if tpids.contains(&u16::from_be_bytes([t[0], t[1]])) => 4,
        _ => 0,
    }
}

/// The sequence number of a schedule frame (None for another frame, or
/// one cut before its marker's end).
pub fn seq_of(data: &[u8]) -> Option<u32> {
    seq_behind(data, &[])
}

/// `seq_of` of a frame that may carry an inline tag of one of `tpids`
/// (its marker 4 bytes later).
pub fn seq_behind(data: &[u8], tpids: &[u16]) -> Option<u32> {
    let t = tag_len(data, tpids);
    let data = data.get(t..)?;
    (data.len() >= MARKED && data[12..14] == ETHERTYPE.to_be_bytes() && data[BODY..BODY + 4] == MARK)
        .then(|| u32::from_le_bytes(data[BODY + 4..BODY + 8].try_into().expect("4 bytes")))
}

fn pattern(seq: u32, i: usize) -> u8 {
    (seq.wrapping_mul(131) as usize).wrapping_add(i.wrapping_mul(7)) as u8 ^ (i >> 8) as u8
}

/// The whole frame of `origlen` bytes whose first bytes `data` holds, when
/// it is a schedule frame and they show its marker (behind an inline tag
/// or not) and a length that is `origlen`: the rest is its payload, which
/// follows from its sequence number (as `check` holds it to). `None` for
/// any other frame.
pub fn complete(data: &[u8], origlen: usize) -> Option<Vec<u8>> {
    let t = match tag_len(data, &[TPID_8021Q, TPID_8021AD]) {
        4 if data.get(16..18) == Some(&ETHERTYPE.to_be_bytes()[..]) => 4,
        _ => 0,
    };
    let body = BODY + t;
    let meta = data.get(body..body + META)?;
    if data[12 + t..14 + t] != ETHERTYPE.to_be_bytes() || meta[..4] != MARK {
        return None;
    }
    let seq = u32::from_le_bytes(meta[4..8].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(meta[8..12].try_into().expect("4 bytes")) as usize;
    if len + t != origlen || data.len() > origlen {
        return None;
    }
    let mut f = data.to_vec();
    f.extend((data.len()..origlen).map(|at| pattern(seq, at - body - META)));
    Some(f)
}

/// Checks a received frame (`data` is the first `data.len()` bytes of a
/// frame of `origlen`). Frames without the marker are not the schedule's
/// and are accepted; a marked frame must be intact.
pub fn check(data: &[u8], origlen: usize) -> Result<(), String> {
    shifted(data)?;
    // A frame with its tag inline: its marker and payload are those of the
    // frame without it.
    let t = tag_len(data, &[TPID_8021Q, TPID_8021AD]);
    if t != 0 && data.len() >= 18 && data[16..18] == ETHERTYPE.to_be_bytes() {
        let mut plain = data[..12].to_vec();
        plain.extend_from_slice(&data[12 + t..]);
        let Some(untagged) = origlen.checked_sub(t) else {
            return Err(format!("a {}-byte record of a tagged frame says the frame was {origlen} bytes", data.len()));
        };
        return check(&plain, untagged);
    }
    if data.len() < BODY + META || data[12..14] != ETHERTYPE.to_be_bytes() || data[BODY..BODY + 4] != MARK {
        if data.len() >= BODY + 4 && data[12..14] == ETHERTYPE.to_be_bytes() && data[BODY..BODY + 4] != MARK {
            return Err(format!(
                "a {origlen}-byte frame of EtherType 0x88b5 lost its marker: {:02x?}",
                &data[..data.len().min(32)]
            ));
        }
        return Ok(());
    }
    let seq = u32::from_le_bytes(data[BODY + 4..BODY + 8].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(data[BODY + 8..BODY + 12].try_into().expect("4 bytes")) as usize;
    if len != origlen {
        return Err(format!("frame {seq} says it is {len} bytes but arrived as {origlen}"));
    }
    for (i, &b) in data[BODY + META..].iter().enumerate() {
        if b != pattern(seq, i) {
            return Err(format!(
                "frame {seq} ({len} bytes) differs at byte {}: {b:#04x}, not {:#04x}",
                BODY + META + i,
                pattern(seq, i)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_check_and_changes_are_found() {
        let f = build(Dst::Broadcast, [2, 0, 0, 0, 0, 1], 77, 300);
        assert_eq!(f.len(), 300);
        check(&f, 300).unwrap();
        check(&f[..100], 300).unwrap();
        let mut g = f.clone();
        g[200] ^= 1;
        assert!(check(&g, 300).is_err());
        assert!(check(&f, 301).is_err());
        check(&[0u8; 60], 60).unwrap();
    }

    #[test]
    fn a_frame_from_the_wrong_offset_is_found_and_a_tagged_one_is_not() {
        let f = build(Dst::Broadcast, [2, 0, 0, 0, 0, 1], 9, 200);
        let mut shifted = vec![0xA5u8; 64];
        shifted.extend_from_slice(&f);
        let e = check(&shifted[..200], 200).unwrap_err();
        assert!(e.contains("at byte 76"), "{e}");
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x05]);
        tagged.extend_from_slice(&f[12..]);
        check(&tagged, 204).unwrap();
    }

    #[test]
    fn a_cut_schedule_frame_is_completed_and_another_is_not() {
        let f = build(Dst::Broadcast, [2, 0, 0, 0, 0, 1], 77, 300);
        for cut in [26, 27, 60, 300] {
            assert_eq!(complete(&f[..cut], 300).as_deref(), Some(&f[..]), "cut at {cut}");
        }
        assert_eq!(complete(&f[..25], 300), None);
        assert_eq!(complete(&f[..60], 301), None);
        let mut t = f.clone();
        tag_inline(&mut t, TPID_8021Q, 5);
        assert_eq!(complete(&t[..40], 304).as_deref(), Some(&t[..]));
        let mut ip = f.clone();
        ip[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(complete(&ip[..60], 300), None);
    }

    #[test]
    fn frames_with_inline_tags_are_checked_behind_them() {
        for tpid in [TPID_8021Q, TPID_8021AD] {
            let mut f = build(Dst::Directed, [2, 0, 0, 0, 0, 1], 31, 120);
            tag_inline(&mut f, tpid, 0x2005);
            assert_eq!(f.len(), 124);
            assert_eq!(&f[12..16], &[(tpid >> 8) as u8, tpid as u8, 0x20, 0x05]);
            check(&f, 124).unwrap();
            check(&f[..40], 124).unwrap();
            assert!(check(&f, 120).is_err(), "the wire length counts the tag");
            let mut g = f.clone();
            g[100] ^= 1;
            assert!(check(&g, 124).is_err(), "behind a {tpid:#x} tag");
            assert_eq!(seq_behind(&f, &[TPID_8021Q, TPID_8021AD]), Some(31));
            assert_eq!(seq_of(&f), None);
        }
        assert_eq!(seq_behind(&build(Dst::Directed, [2; 6], 8, 60), &[TPID_8021Q]), Some(8));
    }
}
