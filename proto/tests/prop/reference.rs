//! Reference decoders, written from the layouts the documentation gives,
//! and the little-endian helpers they share with the tests.

use rawnic_proto::bridge::{CompletionHeader, MAX_MESSAGE, RequestHeader};
use rawnic_proto::*;

use super::values::{Entry, Frames, OpenView};

/// Filter bits as the library types them (the models here keep the `u32`).
pub(crate) fn pf(bits: u32) -> PacketFilter {
    PacketFilter::from_bits_retain(bits)
}

pub(crate) type R<T> = Result<T, Error>;

pub(crate) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub(crate) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
pub(crate) fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
pub(crate) fn up8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Version 5 (the wire format's) and flags within `allowed`.
pub(crate) fn ref_header(b: &[u8], allowed: u16) -> R<()> {
    if b.len() < 4 {
        return Err(Error::Truncated);
    }
    if le16(b, 0) != 5 {
        return Err(Error::Version);
    }
    if le16(b, 2) & !allowed != 0 {
        return Err(Error::InvalidParameter);
    }
    Ok(())
}

/// Layout: header (4; flag 1 all local sends, 2 none, not both; 4 strict
/// filter), filter,
/// frames, bytes, snaplen (u32 each), name_len u16 @20, n_ethertypes u16
/// @22, EtherTypes, name.
pub(crate) fn ref_open(b: &[u8]) -> R<OpenView> {
    ref_header(b, 7)?;
    let strict = le16(b, 2) & 4 != 0;
    let local = match le16(b, 2) & 3 {
        0 => LocalSends::Others,
        1 => LocalSends::All,
        2 => LocalSends::None,
        _ => return Err(Error::InvalidParameter),
    };
    if b.len() < 24 {
        return Err(Error::Truncated);
    }
    let (name_len, n) = (le16(b, 20) as usize, le16(b, 22) as usize);
    if n > MAX_ETHERTYPES || name_len == 0 || name_len > MAX_NAME {
        return Err(Error::InvalidParameter);
    }
    if b.len() != 24 + 2 * n + name_len {
        return Err(Error::LengthMismatch);
    }
    let (filter_bits, frames, bytes, snaplen) = (le32(b, 4), le32(b, 8), le32(b, 12), le32(b, 16));
    if filter_bits & !filter::ALL.bits() != 0 {
        return Err(Error::InvalidParameter);
    }
    if frames > MAX_QUEUE_FRAMES
        || (bytes != 0 && !(MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES).contains(&bytes))
        || (snaplen != 0 && snaplen < 14)
    {
        return Err(Error::InvalidParameter);
    }
    let name = std::str::from_utf8(&b[24 + 2 * n..]).map_err(|_| Error::BadName)?;
    let types = (0..n).map(|i| le16(b, 24 + 2 * i)).collect();
    let frames = if frames == 0 { DEFAULT_QUEUE_FRAMES } else { frames };
    let bytes = if bytes == 0 { DEFAULT_QUEUE_BYTES } else { bytes };
    Ok((name.to_string(), types, filter_bits, frames, bytes, snaplen, local, strict))
}

/// Layout: header (4), count u32, 8 reserved bytes; records of len u16,
/// flags u16, tci u16, reserved u16 and the frame, padded to 8 (the last
/// record's padding may be left out); nothing after the last record. A
/// frame is 14 to `max_frame` bytes, or up to 4 more when it has no TAG
/// flag (bit 0) and bytes 12..14 are 0x81 0x00 (an inline 802.1Q tag).
pub(crate) fn ref_batch(b: &[u8], max_frame: usize) -> R<Frames> {
    ref_header(b, 0)?;
    if b.len() < 16 {
        return Err(Error::Truncated);
    }
    let count = le32(b, 4);
    if le64(b, 8) != 0 {
        return Err(Error::InvalidParameter);
    }
    if u64::from(count) * 24 + 16 > u64::from(u32::MAX) {
        return Err(Error::Overflow);
    }
    if count == 0 || count > MAX_BATCH {
        return Err(Error::InvalidParameter);
    }
    let mut off = 16;
    let mut out = Vec::new();
    for _ in 0..count {
        if b.len() - off < 8 {
            return Err(Error::LengthMismatch);
        }
        let (len, flags, tci, reserved) = (le16(b, off) as usize, le16(b, off + 2), le16(b, off + 4), le16(b, off + 6));
        if flags & !1 != 0 || reserved != 0 {
            return Err(Error::InvalidParameter);
        }
        if flags & 1 != 0 && tci & 0xfff == 0xfff {
            return Err(Error::InvalidParameter);
        }
        if len < 14 || len > max_frame + 4 {
            return Err(Error::FrameLength);
        }
        if b.len() - off < 8 + len {
            return Err(Error::LengthMismatch);
        }
        let inline = len >= 16 && b[off + 8 + 12] == 0x81 && b[off + 8 + 13] == 0x00;
        if len > max_frame && (flags & 1 != 0 || !inline) {
            return Err(Error::FrameLength);
        }
        out.push((b[off + 8..off + 8 + len].to_vec(), (flags & 1 != 0).then_some(tci)));
        off = (off + up8(8 + len)).min(b.len());
    }
    if off != b.len() {
        return Err(Error::LengthMismatch);
    }
    Ok(out)
}

/// Records of caplen u32, origlen u32, timestamp u64, flags u16, tci u16,
/// segs u16, seg_size u16 and `caplen` bytes, padded to 8 (the last may be
/// cut).
pub(crate) fn ref_records(b: &[u8]) -> R<Vec<(FrameHeader, Vec<u8>)>> {
    let mut off = 0;
    let mut out = Vec::new();
    while off < b.len() {
        let h = ref_frame_header(&b[off..])?;
        let end = off + 24 + h.caplen as usize;
        if end > b.len() {
            return Err(Error::Truncated);
        }
        out.push((h, b[off + 24..end].to_vec()));
        off = (off + up8(24 + h.caplen as usize)).min(b.len());
    }
    Ok(out)
}

pub(crate) fn ref_frame_header(b: &[u8]) -> R<FrameHeader> {
    if b.len() < 24 {
        return Err(Error::Truncated);
    }
    let h = FrameHeader {
        caplen: le32(b, 0),
        origlen: le32(b, 4),
        timestamp_ns: le64(b, 8),
        flags: le16(b, 16),
        tci: le16(b, 18),
        segs: le16(b, 20),
        seg_size: le16(b, 22),
    };
    if h.caplen > h.origlen {
        return Err(Error::InvalidParameter);
    }
    // Segment counts only on a coalesced frame (0x20).
    if le32(b, 20) != 0 && h.flags & 0x0020 == 0 {
        return Err(Error::InvalidParameter);
    }
    if (h.caplen < h.origlen) != (h.flags & frame_flags::TRUNCATED != 0) {
        return Err(Error::InvalidParameter);
    }
    // Looped back by NDIS implies sent from this host.
    if h.flags & 0x0008 != 0 && h.flags & 0x0004 == 0 {
        return Err(Error::InvalidParameter);
    }
    // A TCI needs a tag: TAGGED (0x10) or VLAN (stripped, 0x2).
    if h.tci != 0 && h.flags & (0x0010 | 0x0002) == 0 {
        return Err(Error::InvalidParameter);
    }
    Ok(h)
}

/// An entry: len u16, name_len u16, desc_len u16, state u8, link u8, mtu,
/// binding_id, xmit_speed u64, rcv_speed u64, mac[6], 6, duplex u8,
/// packet_filter, open_handles, supported_filter, refused_filter, name,
/// description, padded to 8; `len` is
/// exactly that padded size and must fit the buffer.
pub(crate) fn ref_entry(b: &[u8]) -> R<(Entry, usize)> {
    if b.len() < 56 {
        return Err(Error::Truncated);
    }
    let (len, nl, dl) = (le16(b, 0) as usize, le16(b, 2) as usize, le16(b, 4) as usize);
    if len != up8(56 + nl + dl) {
        return Err(Error::LengthMismatch);
    }
    if len > b.len() {
        return Err(Error::Truncated);
    }
    let name = std::str::from_utf8(&b[56..56 + nl]).map_err(|_| Error::BadName)?;
    let description = std::str::from_utf8(&b[56 + nl..56 + nl + dl]).map_err(|_| Error::BadName)?;
    Ok((
        Entry {
            binding_id: le32(b, 12),
            state: b[6],
            link: b[7],
            duplex: b[39],
            mtu: le32(b, 8),
            xmit_speed: le64(b, 16),
            rcv_speed: le64(b, 24),
            mac: b[32..38].try_into().unwrap(),
            packet_filter: le32(b, 40),
            open_handles: le32(b, 44),
            supported_filter: le32(b, 48),
            refused_filter: le32(b, 52),
            name: name.into(),
            description: description.into(),
        },
        len,
    ))
}

/// Header: version, flags, count, needed, 4 reserved; then `count` entries.
pub(crate) fn ref_list(b: &[u8]) -> R<(u32, u32, Vec<Entry>)> {
    ref_header(b, 0)?;
    if b.len() < 16 {
        return Err(Error::Truncated);
    }
    let (count, needed) = (le32(b, 4), le32(b, 8));
    let mut off = 16;
    let mut out = Vec::new();
    for _ in 0..count {
        let (e, len) = ref_entry(&b[off.min(b.len())..])?;
        out.push(e);
        off += len;
    }
    Ok((count, needed, out))
}

/// header (4), oid, data_len, 4 reserved, data.
pub(crate) fn ref_oid_request(b: &[u8]) -> R<(u32, Vec<u8>)> {
    ref_header(b, 0)?;
    if b.len() < 16 {
        return Err(Error::Truncated);
    }
    let data_len = le32(b, 8);
    if le32(b, 12) != 0 {
        return Err(Error::InvalidParameter);
    }
    if u64::from(data_len) + 16 > u64::from(u32::MAX) {
        return Err(Error::Overflow);
    }
    if data_len > MAX_OID_DATA {
        return Err(Error::InvalidParameter);
    }
    if b.len() != 16 + data_len as usize {
        return Err(Error::LengthMismatch);
    }
    Ok((le32(b, 4), b[16..].to_vec()))
}

/// header (4), ndis_status i32, bytes, bytes_needed; a query's `bytes` of data.
pub(crate) fn ref_oid_reply(b: &[u8], query: bool) -> R<(OidReplyHeader, Vec<u8>)> {
    ref_header(b, 0)?;
    if b.len() < 16 {
        return Err(Error::Truncated);
    }
    let h = OidReplyHeader { ndis_status: le32(b, 4) as i32, bytes: le32(b, 8), bytes_needed: le32(b, 12) };
    let data = if query { h.bytes as usize } else { 0 };
    if b.len() != 16 + data {
        return Err(Error::LengthMismatch);
    }
    Ok((h, b[16..].to_vec()))
}

/// A reply of exactly `len` bytes after a version-2 header.
pub(crate) fn ref_fixed(b: &[u8], len: usize) -> R<()> {
    ref_header(b, 0)?;
    if b.len() != len {
        return Err(Error::LengthMismatch);
    }
    Ok(())
}

pub(crate) fn counters(b: &[u8]) -> Counters {
    let f = |i: usize| le64(b, 8 * i);
    Counters {
        rx_frames: f(0),
        rx_bytes: f(1),
        rx_queue_drops: f(2),
        rx_truncated: f(3),
        tx_frames: f(4),
        tx_bytes: f(5),
        tx_errors: f(6),
        tx_in_flight: f(7),
    }
}

pub(crate) fn ref_stats(b: &[u8]) -> R<StatsReply> {
    ref_header(b, 0x0001)?;
    if b.len() != 152 {
        return Err(Error::LengthMismatch);
    }
    Ok(StatsReply {
        flags: le16(b, 2),
        queued_frames: le32(b, 4),
        queued_bytes: le64(b, 8),
        requested_filter: pf(le32(b, 16)),
        effective_filter: pf(le32(b, 20)),
        handle: counters(&b[24..]),
        binding: counters(&b[88..]),
    })
}

/// version u16, kind u16, binding_id, seq u64, speed u64, mtu, lost,
/// filter, refused.
pub(crate) fn ref_event(b: &[u8]) -> R<EventRecord> {
    if b.len() < 4 {
        return Err(Error::Truncated);
    }
    if le16(b, 0) != 5 {
        return Err(Error::Version);
    }
    if b.len() != 40 {
        return Err(Error::LengthMismatch);
    }
    Ok(EventRecord {
        kind: le16(b, 2),
        binding_id: le32(b, 4),
        seq: le64(b, 8),
        speed: le64(b, 16),
        mtu: le32(b, 24),
        lost: le32(b, 28),
        filter: pf(le32(b, 32)),
        refused: pf(le32(b, 36)),
    })
}

/// len u32, op u8, 3 zero bytes, tag u64, code, out_len, in_len, 4 zero
/// bytes.
pub(crate) fn ref_request_header(b: &[u8]) -> R<RequestHeader> {
    if b.len() < 32 {
        return Err(Error::Truncated);
    }
    let h = RequestHeader { op: b[4], tag: le64(b, 8), code: le32(b, 16), out_len: le32(b, 20), in_len: le32(b, 24) };
    let len = le32(b, 0) as usize;
    if len != 32 + h.in_len as usize || len > MAX_MESSAGE || h.out_len as usize > MAX_MESSAGE {
        return Err(Error::LengthMismatch);
    }
    if b[5..8] != [0, 0, 0] || le32(b, 28) != 0 {
        return Err(Error::InvalidParameter);
    }
    // CREATE (1) to IOCTL_SHARED (8).
    if !(1..=8).contains(&h.op) {
        return Err(Error::InvalidParameter);
    }
    Ok(h)
}

/// len u32, kind u8 (1), 3 zero bytes, tag u64, status i32, 4 zero bytes,
/// information u64, data_len u32, 4 zero bytes.
pub(crate) fn ref_completion_header(b: &[u8]) -> R<CompletionHeader> {
    if b.len() < 40 {
        return Err(Error::Truncated);
    }
    let h = CompletionHeader {
        tag: le64(b, 8),
        status: le32(b, 16) as i32,
        information: le64(b, 24),
        data_len: le32(b, 32),
    };
    let len = le32(b, 0) as usize;
    if b[4] != 1 || len != 40 + h.data_len as usize || len > MAX_MESSAGE {
        return Err(Error::LengthMismatch);
    }
    Ok(h)
}
