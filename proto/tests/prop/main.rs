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

mod mutate;
mod reference;
mod values;

use proptest::collection::vec;
use proptest::prelude::*;
use rawnic_proto::bridge::{self, CompletionHeader, RequestHeader};
use rawnic_proto::*;

use mutate::{apply, cfg, fuzzed, mutation};
use reference::{
    le16, le32, le64, pf, ref_batch, ref_completion_header, ref_entry, ref_event, ref_fixed, ref_frame_header,
    ref_list, ref_oid_reply, ref_oid_request, ref_open, ref_records, ref_request_header, ref_stats, up8,
};
use values::{
    Entry, Open, batch_bytes, batch_value, completion_header_value, emit_batch, emit_list, emit_open, emit_records,
    emitted, entry, event_value, frame_header, list_bytes, oid_reply_bytes, oid_request_bytes, open_bytes, open_value,
    records_bytes, request_header_value, stats_value, view_batch, view_list, view_open,
};

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
