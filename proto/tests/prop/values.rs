//! Value strategies, the emitters and views that go with them, and
//! strategies of valid encodings.

use proptest::collection::vec;
use proptest::prelude::*;
use rawnic_proto::bridge::{self, CompletionHeader, MAX_MESSAGE, RequestHeader};
use rawnic_proto::*;

use super::reference::{R, pf, up8};

pub(crate) fn name() -> impl Strategy<Value = String> {
    // Mostly ASCII, sometimes multi-byte UTF-8; 1..=MAX_NAME bytes.
    prop_oneof!["[a-zA-Z0-9{}\\\\-]{1,40}", "\\PC{1,20}", Just("n".repeat(MAX_NAME))]
        .prop_filter("fits MAX_NAME", |s| !s.is_empty() && s.len() <= MAX_NAME)
}

#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub(crate) name: String,
    pub(crate) ethertypes: Vec<u16>,
    pub(crate) packet_filter: u32,
    pub(crate) queue_frames: u32,
    pub(crate) queue_bytes: u32,
    pub(crate) snaplen: u32,
    pub(crate) local_sends: LocalSends,
    pub(crate) strict_filter: bool,
}

pub(crate) fn open_value() -> impl Strategy<Value = Open> {
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

pub(crate) fn emit_open(o: &Open) -> Vec<u8> {
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
pub(crate) type OpenView = (String, Vec<u16>, u32, u32, u32, u32, LocalSends, bool);

pub(crate) fn view_open(r: &OpenRequest<'_>) -> OpenView {
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

#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) frames: Vec<(Vec<u8>, Option<u16>)>,
    pub(crate) max_frame: usize,
}

pub(crate) fn batch_value() -> impl Strategy<Value = Batch> {
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

pub(crate) fn emit_batch(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
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

pub(crate) type Frames = Vec<(Vec<u8>, Option<u16>)>;

pub(crate) fn view_batch(s: &SendBatch<'_>) -> Frames {
    s.frames().map(|f| (f.data.to_vec(), f.tci)).collect()
}

pub(crate) fn frame_header() -> impl Strategy<Value = (FrameHeader, Vec<u8>)> {
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

pub(crate) fn emit_records(recs: &[(FrameHeader, Vec<u8>)], drop_last_pad: bool) -> Vec<u8> {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) binding_id: u32,
    pub(crate) state: u8,
    pub(crate) link: u8,
    pub(crate) duplex: u8,
    pub(crate) mtu: u32,
    pub(crate) xmit_speed: u64,
    pub(crate) rcv_speed: u64,
    pub(crate) mac: [u8; 6],
    pub(crate) packet_filter: u32,
    pub(crate) open_handles: u32,
    pub(crate) supported_filter: u32,
    pub(crate) refused_filter: u32,
    pub(crate) name: String,
    pub(crate) description: String,
}

impl Entry {
    pub(crate) fn of(e: &BindingEntry<'_>) -> Entry {
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

pub(crate) fn entry() -> impl Strategy<Value = Entry> {
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

pub(crate) fn emit_list(entries: &[Entry], needed_extra: u32) -> Vec<u8> {
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

pub(crate) fn view_list(l: &ListReply<'_>) -> (u32, u32, Vec<Entry>) {
    (l.header.count, l.header.needed, l.entries().map(|e| Entry::of(&e)).collect())
}

// ---------------------------------------------------------------------------
// Strategies of valid encodings, for `fuzzed`.
// ---------------------------------------------------------------------------

pub(crate) fn open_bytes() -> impl Strategy<Value = Vec<u8>> {
    open_value().prop_map(|o| emit_open(&o))
}

pub(crate) fn batch_bytes() -> impl Strategy<Value = (Vec<u8>, usize)> {
    batch_value().prop_map(|b| (emit_batch(&b.frames), b.max_frame))
}

pub(crate) fn records_bytes() -> impl Strategy<Value = Vec<u8>> {
    (vec(frame_header(), 0..6), any::<bool>()).prop_map(|(r, cut)| emit_records(&r, cut))
}

pub(crate) fn list_bytes() -> impl Strategy<Value = Vec<u8>> {
    (vec(entry(), 0..5), any::<u32>()).prop_map(|(e, x)| emit_list(&e, x % 4096))
}

pub(crate) fn oid_request_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<u32>(), vec(any::<u8>(), 0..64)).prop_map(|(oid, data)| {
        let mut b = vec![0u8; 16 + data.len()];
        OidRequest { oid, data: &data }.emit(&mut b).unwrap();
        b
    })
}

pub(crate) fn oid_reply_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<i32>(), any::<u32>(), vec(any::<u8>(), 0..64)).prop_map(|(ndis_status, bytes_needed, data)| {
        let mut b = vec![0u8; 16];
        OidReplyHeader { ndis_status, bytes: data.len() as u32, bytes_needed }.emit(&mut b).unwrap();
        b.extend_from_slice(&data);
        b
    })
}

pub(crate) fn counters_value() -> impl Strategy<Value = Counters> {
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

pub(crate) fn stats_value() -> impl Strategy<Value = StatsReply> {
    (any::<bool>(), any::<u32>(), any::<u64>(), any::<(u32, u32)>(), counters_value(), counters_value()).prop_map(
        |(pending, queued_frames, queued_bytes, (requested_filter, effective_filter), handle, binding)| StatsReply {
            flags: u16::from(pending),
            queued_frames,
            queued_bytes,
            requested_filter: pf(requested_filter),
            effective_filter: pf(effective_filter),
            handle,
            binding,
        },
    )
}

pub(crate) fn event_value() -> impl Strategy<Value = EventRecord> {
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

pub(crate) fn emitted<const N: usize>(f: impl FnOnce(&mut [u8]) -> R<usize>) -> Vec<u8> {
    let mut b = vec![0u8; N];
    assert_eq!(f(&mut b).unwrap(), N);
    b
}

pub(crate) fn request_header_value() -> impl Strategy<Value = RequestHeader> {
    (
        bridge::op::CREATE..=bridge::op::IOCTL_SHARED,
        any::<u64>(),
        any::<u32>(),
        0..=MAX_MESSAGE as u32,
        0..=(MAX_MESSAGE - 32) as u32,
    )
        .prop_map(|(op, tag, code, out_len, in_len)| RequestHeader { op, tag, code, out_len, in_len })
}

pub(crate) fn completion_header_value() -> impl Strategy<Value = CompletionHeader> {
    (any::<u64>(), any::<i32>(), any::<u64>(), 0..=(MAX_MESSAGE - 40) as u32)
        .prop_map(|(tag, status, information, data_len)| CompletionHeader { tag, status, information, data_len })
}
