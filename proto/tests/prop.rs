//! Property tests of every parser in `rawnic_proto`:
//!
//! - round trips: any valid value, emitted, parses back to itself;
//! - any bytes: arbitrary buffers and mutated valid encodings never make a
//!   parser panic, and its answer — the fields it parsed, or which `Error` —
//!   equals that of a reference decoder written here from the layouts the
//!   documentation gives.
//!
//! The reference decoders check in the order the parsers do, so that when a
//! buffer has several faults both name the same one.

use proptest::collection::vec;
use proptest::prelude::*;
use rawnic_proto::bridge::{self, CompletionHeader, MAX_MESSAGE, RequestHeader};
use rawnic_proto::*;

/// Filter bits as the library types them (the models here keep the `u32`).
fn pf(bits: u32) -> PacketFilter {
    PacketFilter::from_bits_retain(bits)
}

type R<T> = Result<T, Error>;

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn up8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Version 5 (the wire format's) and flags within `allowed`.
fn ref_header(b: &[u8], allowed: u16) -> R<()> {
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

// ---------------------------------------------------------------------------
// Mutations: arbitrary bytes, and valid encodings with a few faults.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    U16(usize, u16),
    U32(usize, u32),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Byte(i, v)),
        (any::<usize>(), prop_oneof![Just(0u16), Just(1), Just(0xffff), any::<u16>()])
            .prop_map(|(i, v)| Mutation::U16(i, v)),
        (any::<usize>(), prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()])
            .prop_map(|(i, v)| Mutation::U32(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
    ]
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let n = b.len();
    match m {
        Mutation::Byte(i, v) if n > 0 => b[i % n] = *v,
        // Fields sit at aligned offsets.
        Mutation::U16(i, v) if n >= 2 => {
            let o = (i % (n / 2)) * 2;
            b[o..o + 2].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::U32(i, v) if n >= 4 => {
            let o = (i % (n / 4)) * 4;
            b[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::Truncate(i) => b.truncate(i % (n + 1)),
        Mutation::Extend(x) => b.extend_from_slice(x),
        _ => {}
    }
}

/// Arbitrary bytes, a valid encoding, or a valid encoding with faults.
fn fuzzed(valid: impl Strategy<Value = Vec<u8>> + 'static) -> impl Strategy<Value = Vec<u8>> {
    let valid = valid.boxed();
    prop_oneof![
        1 => vec(any::<u8>(), 0..200),
        1 => valid.clone(),
        4 => (valid, vec(mutation(), 1..4)).prop_map(|(mut b, ms)| {
            for m in &ms {
                apply(&mut b, m);
            }
            b
        }),
    ]
}

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------
// Value strategies.
// ---------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    // Mostly ASCII, sometimes multi-byte UTF-8; 1..=MAX_NAME bytes.
    prop_oneof!["[a-zA-Z0-9{}\\\\-]{1,40}", "\\PC{1,20}", Just("n".repeat(MAX_NAME))]
        .prop_filter("fits MAX_NAME", |s| !s.is_empty() && s.len() <= MAX_NAME)
}

#[derive(Debug, Clone)]
struct Open {
    name: String,
    ethertypes: Vec<u16>,
    packet_filter: u32,
    queue_frames: u32,
    queue_bytes: u32,
    snaplen: u32,
    local_sends: LocalSends,
    strict_filter: bool,
}

fn open_value() -> impl Strategy<Value = Open> {
    (
        name(),
        vec(any::<u16>(), 0..=MAX_ETHERTYPES),
        (0u32..=filter::ALL.bits()).prop_map(|f| f & filter::ALL.bits()),
        prop_oneof![Just(0u32), 1..=MAX_QUEUE_FRAMES],
        prop_oneof![Just(0u32), MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES],
        prop_oneof![Just(0u32), (ETH_HEADER as u32)..=65535],
        prop_oneof![Just(LocalSends::Others), Just(LocalSends::All), Just(LocalSends::None)],
        any::<bool>(),
    )
        .prop_map(
            |(name, ethertypes, packet_filter, queue_frames, queue_bytes, snaplen, local_sends, strict_filter)| Open {
                name,
                ethertypes,
                packet_filter,
                queue_frames,
                queue_bytes,
                snaplen,
                local_sends,
                strict_filter,
            },
        )
}

fn emit_open(o: &Open) -> Vec<u8> {
    let r = OpenRepr {
        name: &o.name,
        ethertypes: &o.ethertypes,
        packet_filter: pf(o.packet_filter),
        queue_frames: o.queue_frames,
        queue_bytes: o.queue_bytes,
        snaplen: o.snaplen,
        local_sends: o.local_sends,
        strict_filter: o.strict_filter,
    };
    let mut b = vec![0u8; r.wire_len()];
    assert_eq!(r.emit(&mut b).unwrap(), b.len());
    b
}

/// What `OpenRequest` shows: name, EtherTypes, filter, queue bounds (with
/// defaults for 0), snap length, local sends, strict filter.
type OpenView = (String, Vec<u16>, u32, u32, u32, u32, LocalSends, bool);

fn view_open(r: &OpenRequest<'_>) -> OpenView {
    (
        r.name().to_string(),
        r.ethertypes().collect(),
        r.packet_filter().bits(),
        r.queue_frames(),
        r.queue_bytes(),
        r.snaplen(),
        r.local_sends(),
        r.strict_filter(),
    )
}

/// Layout: header (4; flag 1 all local sends, 2 none, not both; 4 strict
/// filter), filter,
/// frames, bytes, snaplen (u32 each), name_len u16 @20, n_ethertypes u16
/// @22, EtherTypes, name.
fn ref_open(b: &[u8]) -> R<OpenView> {
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

#[derive(Debug, Clone)]
struct Batch {
    frames: Vec<(Vec<u8>, Option<u16>)>,
    max_frame: usize,
}

fn batch_value() -> impl Strategy<Value = Batch> {
    (14usize..=1600).prop_flat_map(|max_frame| {
        let untagged = (
            vec(any::<u8>(), 14..=max_frame.min(200)),
            prop::option::of((0u16..=0xffff).prop_filter("VLAN 4095 is reserved", |t| t & 0xfff != 0xfff)),
        );
        // A frame with its 802.1Q tag inline and no TAG flag: up to 4
        // bytes longer.
        let inline = vec(any::<u8>(), 16..=(max_frame + 4).clamp(16, 200)).prop_map(|mut d| {
            d[12..14].copy_from_slice(&[0x81, 0x00]);
            (d, None)
        });
        let frame = prop_oneof![3 => untagged, 1 => inline];
        (vec(frame, 1..12), Just(max_frame)).prop_map(|(frames, max_frame)| Batch { frames, max_frame })
    })
}

fn emit_batch(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
    let size = SendBatchWriter::HEADER + frames.iter().map(|(d, _)| up8(8 + d.len())).sum::<usize>();
    let mut b = vec![0u8; size];
    let mut w = SendBatchWriter::new(&mut b).unwrap();
    for (d, t) in frames {
        w.push(&SendFrame { data: d, tci: *t }).unwrap();
    }
    assert_eq!(w.count() as usize, frames.len());
    assert_eq!(w.finish(), size);
    // The one-call builder gives the same bytes.
    let items: Vec<SendFrame<'_>> = frames.iter().map(|(d, t)| SendFrame { data: d, tci: *t }).collect();
    assert_eq!(SendBatchWriter::build(&items).unwrap(), b);
    b
}

type Frames = Vec<(Vec<u8>, Option<u16>)>;

/// Layout: header (4), count u32, 8 reserved bytes; records of len u16,
/// flags u16, tci u16, reserved u16 and the frame, padded to 8 (the last
/// record's padding may be left out); nothing after the last record. A
/// frame is 14 to `max_frame` bytes, or up to 4 more when it has no TAG
/// flag (bit 0) and bytes 12..14 are 0x81 0x00 (an inline 802.1Q tag).
fn ref_batch(b: &[u8], max_frame: usize) -> R<Frames> {
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

fn view_batch(s: &SendBatch<'_>) -> Frames {
    s.frames().map(|f| (f.data.to_vec(), f.tci)).collect()
}

fn frame_header() -> impl Strategy<Value = (FrameHeader, Vec<u8>)> {
    (vec(any::<u8>(), 0..100), 0u32..3000, any::<u64>(), 0u8..4, any::<u16>(), 0u8..3, (0u8..4, any::<[u16; 2]>()))
        .prop_map(|(data, extra, ts, tag, tci, direction, (coalesced, [segs, seg_size]))| {
            let caplen = data.len() as u32;
            let origlen = caplen + if extra % 3 == 0 { extra } else { 0 };
            // No tag, an inline one, a stripped one, a stripped one as a
            // driver before TAGGED said it.
            let (mut flags, tci) = match tag {
                0 => (0, 0),
                1 => (frame_flags::TAGGED, tci),
                2 => (frame_flags::TAGGED | frame_flags::VLAN, tci),
                _ => (frame_flags::VLAN, tci),
            };
            flags |= match direction {
                0 => 0,
                1 => frame_flags::OUTBOUND,
                _ => frame_flags::OUTBOUND | frame_flags::LOOPBACK,
            };
            if caplen < origlen {
                flags |= frame_flags::TRUNCATED;
            }
            // Not coalesced; coalesced with a count (RSC), with a count and
            // a size (URO), or with neither.
            let (segs, seg_size) = match coalesced {
                0 => (0, 0),
                1 => (segs, 0),
                2 => (segs, seg_size),
                _ => (0, 0),
            };
            if coalesced != 0 {
                flags |= frame_flags::COALESCED;
            }
            (FrameHeader { caplen, origlen, timestamp_ns: ts, flags, tci, segs, seg_size }, data)
        })
}

fn emit_records(recs: &[(FrameHeader, Vec<u8>)], drop_last_pad: bool) -> Vec<u8> {
    let mut b = Vec::new();
    for (h, d) in recs {
        b.extend_from_slice(&h.to_bytes());
        b.extend_from_slice(d);
        b.resize(up8(b.len()), 0);
    }
    if drop_last_pad {
        if let Some((_, d)) = recs.last() {
            b.truncate(b.len() - (up8(24 + d.len()) - 24 - d.len()));
        }
    }
    b
}

/// Records of caplen u32, origlen u32, timestamp u64, flags u16, tci u16,
/// segs u16, seg_size u16 and `caplen` bytes, padded to 8 (the last may be
/// cut).
fn ref_records(b: &[u8]) -> R<Vec<(FrameHeader, Vec<u8>)>> {
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

fn ref_frame_header(b: &[u8]) -> R<FrameHeader> {
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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    binding_id: u32,
    state: u8,
    link: u8,
    duplex: u8,
    mtu: u32,
    xmit_speed: u64,
    rcv_speed: u64,
    mac: [u8; 6],
    packet_filter: u32,
    open_handles: u32,
    supported_filter: u32,
    refused_filter: u32,
    name: String,
    description: String,
}

impl Entry {
    fn of(e: &BindingEntry<'_>) -> Entry {
        Entry {
            binding_id: e.binding_id,
            state: e.state,
            link: e.link,
            duplex: e.duplex,
            mtu: e.mtu,
            xmit_speed: e.xmit_speed,
            rcv_speed: e.rcv_speed,
            mac: e.mac,
            packet_filter: e.packet_filter.bits(),
            open_handles: e.open_handles,
            supported_filter: e.supported_filter.bits(),
            refused_filter: e.refused_filter.bits(),
            name: e.name.into(),
            description: e.description.into(),
        }
    }

    fn repr(&self) -> BindingEntry<'_> {
        BindingEntry {
            binding_id: self.binding_id,
            state: self.state,
            link: self.link,
            duplex: self.duplex,
            mtu: self.mtu,
            xmit_speed: self.xmit_speed,
            rcv_speed: self.rcv_speed,
            mac: self.mac,
            packet_filter: pf(self.packet_filter),
            open_handles: self.open_handles,
            supported_filter: pf(self.supported_filter),
            refused_filter: pf(self.refused_filter),
            name: &self.name,
            description: &self.description,
        }
    }
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        (any::<u32>(), 0u8..7, 0u8..3, 0u8..3, any::<u32>()),
        (any::<u64>(), any::<u64>(), any::<[u8; 6]>(), any::<u32>(), any::<u32>()),
        (name(), "\\PC{0,30}"),
        (any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |(
                (binding_id, state, link, duplex, mtu),
                (xmit_speed, rcv_speed, mac, packet_filter, open_handles),
                (name, description),
                (supported_filter, refused_filter),
            )| Entry {
                binding_id,
                state,
                link,
                duplex,
                mtu,
                xmit_speed,
                rcv_speed,
                mac,
                packet_filter,
                open_handles,
                supported_filter,
                refused_filter,
                name,
                description,
            },
        )
}

fn emit_list(entries: &[Entry], needed_extra: u32) -> Vec<u8> {
    let mut b = vec![0u8; ListHeader::LEN];
    for e in entries {
        let r = e.repr();
        let mut x = vec![0u8; r.wire_len()];
        assert_eq!(r.emit(&mut x).unwrap(), x.len());
        b.extend_from_slice(&x);
    }
    let needed = b.len() as u32 + needed_extra;
    ListHeader { count: entries.len() as u32, needed }.emit(&mut b).unwrap();
    b
}

/// An entry: len u16, name_len u16, desc_len u16, state u8, link u8, mtu,
/// binding_id, xmit_speed u64, rcv_speed u64, mac[6], 6, duplex u8,
/// packet_filter, open_handles, supported_filter, refused_filter, name,
/// description, padded to 8; `len` is
/// exactly that padded size and must fit the buffer.
fn ref_entry(b: &[u8]) -> R<(Entry, usize)> {
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
fn ref_list(b: &[u8]) -> R<(u32, u32, Vec<Entry>)> {
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

fn view_list(l: &ListReply<'_>) -> (u32, u32, Vec<Entry>) {
    (l.header.count, l.header.needed, l.entries().map(|e| Entry::of(&e)).collect())
}

/// header (4), oid, data_len, 4 reserved, data.
fn ref_oid_request(b: &[u8]) -> R<(u32, Vec<u8>)> {
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
fn ref_oid_reply(b: &[u8], query: bool) -> R<(OidReplyHeader, Vec<u8>)> {
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
fn ref_fixed(b: &[u8], len: usize) -> R<()> {
    ref_header(b, 0)?;
    if b.len() != len {
        return Err(Error::LengthMismatch);
    }
    Ok(())
}

fn counters(b: &[u8]) -> Counters {
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

fn ref_stats(b: &[u8]) -> R<StatsReply> {
    ref_fixed(b, 152)?;
    Ok(StatsReply {
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
fn ref_event(b: &[u8]) -> R<EventRecord> {
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
fn ref_request_header(b: &[u8]) -> R<RequestHeader> {
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
fn ref_completion_header(b: &[u8]) -> R<CompletionHeader> {
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

// ---------------------------------------------------------------------------
// Strategies of valid encodings, for `fuzzed`.
// ---------------------------------------------------------------------------

fn open_bytes() -> impl Strategy<Value = Vec<u8>> {
    open_value().prop_map(|o| emit_open(&o))
}

fn batch_bytes() -> impl Strategy<Value = (Vec<u8>, usize)> {
    batch_value().prop_map(|b| (emit_batch(&b.frames), b.max_frame))
}

fn records_bytes() -> impl Strategy<Value = Vec<u8>> {
    (vec(frame_header(), 0..6), any::<bool>()).prop_map(|(r, cut)| emit_records(&r, cut))
}

fn list_bytes() -> impl Strategy<Value = Vec<u8>> {
    (vec(entry(), 0..5), any::<u32>()).prop_map(|(e, x)| emit_list(&e, x % 4096))
}

fn oid_request_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<u32>(), vec(any::<u8>(), 0..64)).prop_map(|(oid, data)| {
        let mut b = vec![0u8; 16 + data.len()];
        OidRequest { oid, data: &data }.emit(&mut b).unwrap();
        b
    })
}

fn oid_reply_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<i32>(), any::<u32>(), vec(any::<u8>(), 0..64)).prop_map(|(ndis_status, bytes_needed, data)| {
        let mut b = vec![0u8; 16];
        OidReplyHeader { ndis_status, bytes: data.len() as u32, bytes_needed }.emit(&mut b).unwrap();
        b.extend_from_slice(&data);
        b
    })
}

fn counters_value() -> impl Strategy<Value = Counters> {
    any::<[u64; 8]>().prop_map(|c| Counters {
        rx_frames: c[0],
        rx_bytes: c[1],
        rx_queue_drops: c[2],
        rx_truncated: c[3],
        tx_frames: c[4],
        tx_bytes: c[5],
        tx_errors: c[6],
        tx_in_flight: c[7],
    })
}

fn stats_value() -> impl Strategy<Value = StatsReply> {
    (any::<u32>(), any::<u64>(), any::<(u32, u32)>(), counters_value(), counters_value()).prop_map(
        |(queued_frames, queued_bytes, (requested_filter, effective_filter), handle, binding)| StatsReply {
            queued_frames,
            queued_bytes,
            requested_filter: pf(requested_filter),
            effective_filter: pf(effective_filter),
            handle,
            binding,
        },
    )
}

fn event_value() -> impl Strategy<Value = EventRecord> {
    (any::<u16>(), any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>(), any::<(u32, u32)>()).prop_map(
        |(kind, binding_id, seq, speed, mtu, lost, (filter, refused))| EventRecord {
            kind,
            binding_id,
            seq,
            speed,
            mtu,
            lost,
            filter: pf(filter),
            refused: pf(refused),
        },
    )
}

fn emitted<const N: usize>(f: impl FnOnce(&mut [u8]) -> R<usize>) -> Vec<u8> {
    let mut b = vec![0u8; N];
    assert_eq!(f(&mut b).unwrap(), N);
    b
}

fn request_header_value() -> impl Strategy<Value = RequestHeader> {
    (
        bridge::op::CREATE..=bridge::op::IOCTL_SHARED,
        any::<u64>(),
        any::<u32>(),
        0..=MAX_MESSAGE as u32,
        0..=(MAX_MESSAGE - 32) as u32,
    )
        .prop_map(|(op, tag, code, out_len, in_len)| RequestHeader { op, tag, code, out_len, in_len })
}

fn completion_header_value() -> impl Strategy<Value = CompletionHeader> {
    (any::<u64>(), any::<i32>(), any::<u64>(), 0..=(MAX_MESSAGE - 40) as u32)
        .prop_map(|(tag, status, information, data_len)| CompletionHeader { tag, status, information, data_len })
}

// ---------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn open_request_round_trips(o in open_value()) {
        let b = emit_open(&o);
        let r = OpenRequest::new_checked(&b).unwrap();
        let frames = if o.queue_frames == 0 { DEFAULT_QUEUE_FRAMES } else { o.queue_frames };
        let bytes = if o.queue_bytes == 0 { DEFAULT_QUEUE_BYTES } else { o.queue_bytes };
        prop_assert_eq!(
            view_open(&r),
            (
                o.name.clone(),
                o.ethertypes.clone(),
                o.packet_filter,
                frames,
                bytes,
                o.snaplen,
                o.local_sends,
                o.strict_filter
            )
        );
    }

    #[test]
    fn send_batch_round_trips(b in batch_value()) {
        let bytes = emit_batch(&b.frames);
        let s = SendBatch::new_checked(&bytes, b.max_frame).unwrap();
        prop_assert_eq!(s.count() as usize, b.frames.len());
        prop_assert_eq!(view_batch(&s), b.frames.clone());
        // Without the last record's padding it is the same batch.
        let last = b.frames.last().unwrap().0.len();
        let cut = &bytes[..bytes.len() - (up8(8 + last) - 8 - last)];
        prop_assert_eq!(view_batch(&SendBatch::new_checked(cut, b.max_frame).unwrap()), b.frames);
    }

    #[test]
    fn a_writer_refuses_frames_that_do_not_fit(frames in vec(vec(any::<u8>(), 14..100), 1..8), room in 0usize..600) {
        let mut b = vec![0u8; 16 + room];
        let mut w = SendBatchWriter::new(&mut b).unwrap();
        let mut fitted = Vec::new();
        for f in &frames {
            match w.push(&SendFrame { data: f, tci: None }) {
                Ok(()) => fitted.push((f.clone(), None)),
                Err(e) => prop_assert_eq!(e, Error::Truncated),
            }
        }
        let n = w.finish();
        if !fitted.is_empty() {
            prop_assert_eq!(view_batch(&SendBatch::new_checked(&b[..n], 1514).unwrap()), fitted);
        }
    }

    #[test]
    fn frame_records_round_trip(recs in vec(frame_header(), 0..8), cut in any::<bool>()) {
        let b = emit_records(&recs, cut);
        let r = FrameRecords::new_checked(&b).unwrap();
        prop_assert_eq!(r.len(), recs.len());
        let got: Vec<(FrameHeader, Vec<u8>)> = r.iter().map(|(h, d)| (h, d.to_vec())).collect();
        prop_assert_eq!(got, recs);
    }

    #[test]
    fn list_reply_round_trips(entries in vec(entry(), 0..6), extra in 0u32..10_000) {
        let b = emit_list(&entries, extra);
        let l = ListReply::new_checked(&b).unwrap();
        prop_assert_eq!(view_list(&l), (entries.len() as u32, b.len() as u32 + extra, entries));
    }

    #[test]
    fn oid_messages_round_trip(oid in any::<u32>(), data in vec(any::<u8>(), 0..300), status in any::<i32>(), needed in any::<u32>()) {
        let mut b = vec![0u8; 16 + data.len()];
        prop_assert_eq!(OidRequest { oid, data: &data }.emit(&mut b).unwrap(), b.len());
        prop_assert_eq!(OidRequest::parse(&b).unwrap(), OidRequest { oid, data: &data });
        let h = OidReplyHeader { ndis_status: status, bytes: data.len() as u32, bytes_needed: needed };
        let mut r = vec![0u8; 16];
        h.emit(&mut r).unwrap();
        let set = r.clone();
        r.extend_from_slice(&data);
        prop_assert_eq!(OidReplyHeader::parse(&r, true).unwrap(), (h, &data[..]));
        prop_assert_eq!(OidReplyHeader::parse(&set, false).unwrap(), (h, &[][..]));
    }

    #[test]
    fn fixed_replies_round_trip(
        s in stats_value(), e in event_value(),
        v in (any::<u16>(), any::<(u16, u16, u16)>(), any::<(u8, u8)>(), any::<u32>()),
        o in (any::<u32>(), any::<u32>(), any::<[u8; 6]>(), any::<u32>()),
        sr in (any::<u32>(), any::<u64>()), n in any::<u32>(),
    ) {
        let b = emitted::<{ StatsReply::LEN }>(|b| s.emit(b));
        prop_assert_eq!(StatsReply::parse(&b).unwrap(), s);
        let b = emitted::<{ EventRecord::LEN }>(|b| e.emit(b));
        prop_assert_eq!(EventRecord::parse(&b).unwrap(), e);
        let vr = VersionReply { proto_version: v.0, driver: v.1, ndis: v.2, max_batch: v.3 };
        let b = emitted::<{ VersionReply::LEN }>(|b| vr.emit(b));
        prop_assert_eq!(VersionReply::parse(&b).unwrap(), vr);
        let or = OpenReply { binding_id: o.0, mtu: o.1, mac: o.2, packet_filter: pf(o.3) };
        let b = emitted::<{ OpenReply::LEN }>(|b| or.emit(b));
        prop_assert_eq!(OpenReply::parse(&b).unwrap(), or);
        let s2 = SendReply { accepted: sr.0, bytes: sr.1 };
        let b = emitted::<{ SendReply::LEN }>(|b| s2.emit(b));
        prop_assert_eq!(SendReply::parse(&b).unwrap(), s2);
        let bc = BindsCompleteReply { bindings: n };
        let b = emitted::<{ BindsCompleteReply::LEN }>(|b| bc.emit(b));
        prop_assert_eq!(BindsCompleteReply::parse(&b).unwrap(), bc);
        let b = emitted::<{ EmptyRequest::LEN }>(EmptyRequest::emit);
        prop_assert_eq!(EmptyRequest::parse(&b), Ok(()));
    }

    #[test]
    fn bridge_headers_round_trip(r in request_header_value(), c in completion_header_value()) {
        let b = emitted::<{ RequestHeader::LEN }>(|b| r.emit(b));
        prop_assert_eq!(RequestHeader::parse(&b).unwrap(), r);
        let b = emitted::<{ CompletionHeader::LEN }>(|b| c.emit(b));
        prop_assert_eq!(CompletionHeader::parse(&b).unwrap(), c);
    }
}

// ---------------------------------------------------------------------------
// Any bytes: no panic, and the reference's answer.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(2000))]

    #[test]
    fn any_open_request(b in fuzzed(open_bytes())) {
        prop_assert_eq!(OpenRequest::new_checked(&b).map(|r| view_open(&r)), ref_open(&b));
    }

    #[test]
    fn any_send_batch((b, max_frame) in prop_oneof![
        (vec(any::<u8>(), 0..200), 14usize..2000),
        batch_bytes(),
        (batch_bytes(), vec(mutation(), 1..4)).prop_map(|((mut b, m), ms)| { for x in &ms { apply(&mut b, x); } (b, m) }),
    ]) {
        prop_assert_eq!(SendBatch::new_checked(&b, max_frame).map(|s| view_batch(&s)), ref_batch(&b, max_frame));
    }

    #[test]
    fn any_frame_records(b in fuzzed(records_bytes())) {
        let got = FrameRecords::new_checked(&b).map(|r| {
            prop_assert_eq!(r.len(), r.iter().count());
            Ok(r.iter().map(|(h, d)| (h, d.to_vec())).collect::<Vec<_>>())
        });
        let got = match got { Ok(v) => Ok(v?), Err(e) => Err(e) };
        prop_assert_eq!(got, ref_records(&b));
        prop_assert_eq!(FrameHeader::parse(&b), ref_frame_header(&b));
    }

    #[test]
    fn any_list_reply(b in fuzzed(list_bytes())) {
        prop_assert_eq!(ListReply::new_checked(&b).map(|l| view_list(&l)), ref_list(&b));
        let off = 16.min(b.len());
        prop_assert_eq!(BindingEntry::parse(&b[off..]).map(|(e, n)| (Entry::of(&e), n)), ref_entry(&b[off..]));
    }

    #[test]
    fn any_oid_request(b in fuzzed(oid_request_bytes())) {
        prop_assert_eq!(OidRequest::parse(&b).map(|r| (r.oid, r.data.to_vec())), ref_oid_request(&b));
    }

    #[test]
    fn any_oid_reply(b in fuzzed(oid_reply_bytes())) {
        prop_assert_eq!(OidReplyHeader::parse(&b, true).map(|(h, d)| (h, d.to_vec())), ref_oid_reply(&b, true));
        prop_assert_eq!(OidReplyHeader::parse(&b, false).map(|(h, d)| (h, d.to_vec())), ref_oid_reply(&b, false));
    }

    #[test]
    fn any_stats_reply(b in fuzzed(stats_value().prop_map(|s| emitted::<{ StatsReply::LEN }>(|b| s.emit(b))))) {
        prop_assert_eq!(StatsReply::parse(&b), ref_stats(&b));
    }

    #[test]
    fn any_event_record(b in fuzzed(event_value().prop_map(|e| emitted::<{ EventRecord::LEN }>(|b| e.emit(b))))) {
        prop_assert_eq!(EventRecord::parse(&b), ref_event(&b));
    }

    #[test]
    fn any_small_reply(b in fuzzed(vec(any::<u8>(), 0..32).prop_map(|mut b| { if b.len() >= 2 { b[0] = PROTO_VERSION as u8; b[1] = 0; } b }))) {
        prop_assert_eq!(EmptyRequest::parse(&b), ref_fixed(&b, 4));
        prop_assert_eq!(BindsCompleteReply::parse(&b), ref_fixed(&b, 8).map(|_| BindsCompleteReply { bindings: le32(&b, 4) }));
        prop_assert_eq!(SendReply::parse(&b), ref_fixed(&b, 16).map(|_| SendReply { accepted: le32(&b, 4), bytes: le64(&b, 8) }));
        prop_assert_eq!(
            OpenReply::parse(&b),
            ref_fixed(&b, 24).map(|_| OpenReply { binding_id: le32(&b, 4), mtu: le32(&b, 8), mac: b[12..18].try_into().unwrap(), packet_filter: pf(le32(&b, 20)) })
        );
        // Any version's reply parses: that is how a client learns the version.
        let v = if b.len() < 16 { Err(Error::Truncated) } else {
            Ok(VersionReply { proto_version: le16(&b, 0), driver: (le16(&b, 4), le16(&b, 6), le16(&b, 8)), ndis: (b[10], b[11]), max_batch: le32(&b, 12) })
        };
        prop_assert_eq!(VersionReply::parse(&b), v);
    }

    #[test]
    fn any_request_header(b in fuzzed(request_header_value().prop_map(|r| emitted::<{ RequestHeader::LEN }>(|b| r.emit(b))))) {
        prop_assert_eq!(RequestHeader::parse(&b), ref_request_header(&b));
    }

    #[test]
    fn any_completion_header(b in fuzzed(completion_header_value().prop_map(|c| emitted::<{ CompletionHeader::LEN }>(|b| c.emit(b))))) {
        prop_assert_eq!(CompletionHeader::parse(&b), ref_completion_header(&b));
    }
}

// ---------------------------------------------------------------------------
// Single faults name the right error.
// ---------------------------------------------------------------------------

#[test]
fn single_faults_name_their_error() {
    let o = Open {
        name: "eth0".into(),
        ethertypes: vec![0x0806],
        packet_filter: 1,
        queue_frames: 0,
        queue_bytes: 0,
        snaplen: 0,
        local_sends: LocalSends::Others,
        strict_filter: false,
    };
    let good = emit_open(&o);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        OpenRequest::new_checked(&b).err()
    };
    assert_eq!(with(&|b| b.truncate(3)), Some(Error::Truncated));
    assert_eq!(with(&|b| b.truncate(23)), Some(Error::Truncated));
    assert_eq!(with(&|b| b[0] = rawnic_proto::PROTO_VERSION as u8 + 1), Some(Error::Version));
    // Flags 1 (all local sends) and 2 (none) are valid, alone.
    assert_eq!(with(&|b| b[2] = 1), None);
    assert_eq!(with(&|b| b[2] = 2), None);
    assert_eq!(with(&|b| b[2] = 3), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[2] = 4), None, "strict filter");
    assert_eq!(with(&|b| b[2] = 7), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[2] = 8), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b.push(0)), Some(Error::LengthMismatch));
    assert_eq!(with(&|b| b.truncate(b.len() - 1)), Some(Error::LengthMismatch));
    assert_eq!(with(&|b| b[4] = 0x40), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[16] = 13), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[12] = 1), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[22] = 33), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| *b.last_mut().unwrap() = 0xff), Some(Error::BadName));

    let frame = [0u8; 60];
    let good = emit_batch(&[(frame.to_vec(), None), (frame.to_vec(), Some(5))]);
    let with = |f: &dyn Fn(&mut Vec<u8>), max: usize| {
        let mut b = good.clone();
        f(&mut b);
        SendBatch::new_checked(&b, max).err()
    };
    assert_eq!(with(&|_| {}, 1514), None);
    assert_eq!(with(&|_| {}, 59), Some(Error::FrameLength));
    assert_eq!(with(&|b| b[4] = 0, 1514), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[4..8].copy_from_slice(&4097u32.to_le_bytes()), 1514), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[4..8].copy_from_slice(&u32::MAX.to_le_bytes()), 1514), Some(Error::Overflow));
    assert_eq!(with(&|b| b[4] = 3, 1514), Some(Error::LengthMismatch));
    assert_eq!(with(&|b| b[8] = 1, 1514), Some(Error::InvalidParameter));
    assert_eq!(with(&|b| b[18] = 2, 1514), Some(Error::InvalidParameter));
    assert_eq!(
        with(&|b| b[16 + 72 + 4..16 + 72 + 6].copy_from_slice(&0x0fffu16.to_le_bytes()), 1514),
        Some(Error::InvalidParameter)
    );
    assert_eq!(with(&|b| b.extend_from_slice(&[0; 8]), 1514), Some(Error::LengthMismatch));
    assert_eq!(with(&|b| b.truncate(b.len() - 5), 1514), Some(Error::LengthMismatch));

    let mut h = [0u8; RequestHeader::LEN];
    RequestHeader { op: bridge::op::READ, tag: 1, code: 0, out_len: 64, in_len: 0 }.emit(&mut h).unwrap();
    let with = |i: usize, v: u8| {
        let mut b = h;
        b[i] = v;
        RequestHeader::parse(&b).err()
    };
    assert_eq!(with(0, 33), Some(Error::LengthMismatch));
    assert_eq!(with(4, 7), None, "ALIAS");
    assert_eq!(with(4, 8), None, "IOCTL_SHARED");
    assert_eq!(with(4, 9), Some(Error::InvalidParameter));
    assert_eq!(with(4, 0), Some(Error::InvalidParameter));
    assert_eq!(with(5, 1), Some(Error::InvalidParameter), "reserved bytes after op");
    assert_eq!(with(29, 1), Some(Error::InvalidParameter), "reserved bytes after in_len");
}
