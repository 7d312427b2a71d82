//! Frames through the fake: delivering one to the handles whose filters
//! take it (from the "wire" or from another handle's send, as the driver
//! does), a handle's sends (recorded, looped to the others, answered by the
//! ARP responders), and completing pending reads and event waits.

use super::{Conn, Handle, Sent, State, now_ns};
use crate::ether::{Arp, MacAddr};
use rawnic_proto::*;

fn classify(adapter_mac: MacAddr, dst: &[u8]) -> PacketFilter {
    if dst == [0xff; 6] {
        filter::BROADCAST
    } else if dst[0] & 1 != 0 {
        filter::MULTICAST | filter::ALL_MULTICAST
    } else if dst == adapter_mac.0 {
        filter::DIRECTED
    } else {
        PacketFilter::NONE
    }
}

/// Hands `frame` to the handles of `binding_id` that take it: from the
/// wire (`sender` None), or sent by handle `sender` (as the driver does:
/// marked outbound, to the handles whose local-sends mode takes it).
pub(super) fn deliver(st: &mut State, binding_id: u32, frame: &[u8], tci: Option<u16>, sender: Option<u64>) {
    if frame.len() < ETH_HEADER {
        return;
    }
    let Some(adapter) = st.adapters.iter_mut().find(|a| a.id == binding_id) else { return };
    if sender.is_none() {
        adapter.counters.rx_frames += 1;
        adapter.counters.rx_bytes += frame.len() as u64;
    }
    let class = classify(adapter.info.mac, &frame[0..6]);
    let ty = u16::from_be_bytes([frame[12], frame[13]]);
    // As the driver: a tagged frame's inner EtherType counts too, and a
    // tag stripped into the NBL's info counts as on the wire (EtherType
    // 0x8100, the frame's own inside it).
    let inner =
        (matches!(ty, 0x8100 | 0x88a8) && frame.len() >= 18).then(|| u16::from_be_bytes([frame[16], frame[17]]));
    let (ty, inner) = match tci.filter(|&t| t != 0) {
        Some(_) => (rawnic_proto::TPID_8021Q, Some(ty)),
        None => (ty, inner),
    };
    for (&hid, (conn, h)) in st.handles.iter_mut() {
        if h.binding != Some(binding_id) || h.packet_filter.is_empty() {
            continue;
        }
        if sender.is_some_and(|s| !h.local_sends.wants(s == hid)) {
            continue;
        }
        if !h.packet_filter.contains(filter::PROMISCUOUS) && !h.packet_filter.intersects(class) {
            continue;
        }
        if !h.ethertypes.is_empty() && !h.ethertypes.contains(&ty) && !inner.is_some_and(|t| h.ethertypes.contains(&t))
        {
            continue;
        }
        // As the driver: the program after the other filters, on the
        // frame with its stripped tag back in place; 0 is not taken, less
        // than the frame cuts it.
        let cut = h.program.as_ref().map_or(u32::MAX, |p| p.run_stripped(frame, tci.unwrap_or(0)));
        if cut == 0 {
            continue;
        }
        if h.rx.len() >= h.queue_frames as usize {
            h.counters.rx_queue_drops += 1;
            continue;
        }
        let keep = if h.snaplen == 0 { frame.len() } else { frame.len().min(h.snaplen as usize) };
        let keep = keep.min(cut as usize);
        let mut flags = 0;
        if keep < frame.len() {
            flags |= frame_flags::TRUNCATED;
            h.counters.rx_truncated += 1;
        }
        if sender.is_some() {
            flags |= frame_flags::OUTBOUND;
        }
        // As the driver: a stripped tag, else one inline (even TCI 0).
        let (tag_flags, tci) = match (tci.filter(|&t| t != 0), rawnic_proto::inline_tci(frame)) {
            (Some(t), _) => (frame_flags::VLAN | frame_flags::TAGGED, t),
            (None, Some(t)) => (frame_flags::TAGGED, t),
            (None, None) => (0, 0),
        };
        flags |= tag_flags;
        let hdr = FrameHeader {
            caplen: keep as u32,
            origlen: frame.len() as u32,
            timestamp_ns: now_ns(),
            flags,
            tci,
            segs: 0,
            seg_size: 0,
        };
        h.counters.rx_frames += 1;
        h.counters.rx_bytes += frame.len() as u64;
        h.rx.push_back((hdr, frame[..keep].to_vec()));
        pump_reads(conn, h);
    }
}

/// Completes pending reads while frames are queued.
pub(super) fn pump_reads(conn: &Conn, h: &mut Handle) {
    while !h.rx.is_empty() {
        let Some((tag, out_len)) = h.reads.pop_front() else { return };
        let out = take_records(h, out_len as usize);
        conn.complete(tag, NtStatus::SUCCESS, out.len() as u64, &out);
    }
}

/// As many whole records as fit `room`; a first record that does not fit
/// is cut to fit.
fn take_records(h: &mut Handle, room: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((hdr, data)) = h.rx.front() {
        let len = FrameHeader::record_len(data.len());
        if out.len() + len > room {
            if out.is_empty() {
                let keep = room - FrameHeader::LEN;
                let hdr = FrameHeader { caplen: keep as u32, flags: hdr.flags | frame_flags::TRUNCATED, ..*hdr };
                out.extend_from_slice(&hdr.to_bytes());
                out.extend_from_slice(&data[..keep]);
                h.rx.pop_front();
            }
            break;
        }
        out.extend_from_slice(&hdr.to_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + len - FrameHeader::LEN - data.len(), 0);
        h.rx.pop_front();
    }
    out
}

pub(super) fn pump_events(conn: &Conn, h: &mut Handle) {
    while !h.events.is_empty() {
        let Some(tag) = h.event_waits.pop_front() else { return };
        let ev = h.events.pop_front().expect("not empty");
        let mut b = [0u8; EventRecord::LEN];
        ev.emit(&mut b).expect("sized");
        conn.complete(tag, NtStatus::SUCCESS, b.len() as u64, &b);
    }
}

pub(super) fn transmit(st: &mut State, id: u64, binding: u32, data: &[u8], tci: Option<u16>, by_write: bool) {
    st.sent.push(Sent { binding_id: binding, data: data.to_vec(), tci, by_write });
    // As the driver: a tag of TCI 0, which NDIS's info cannot carry, goes
    // into the frame.
    match tci {
        Some(0) => deliver(st, binding, &crate::ether::insert_vlan_tag(data, 0), None, Some(id)),
        _ => deliver(st, binding, data, tci, Some(id)),
    }
    if let Some((_, hd)) = st.handles.get_mut(&id) {
        hd.counters.tx_frames += 1;
        hd.counters.tx_bytes += data.len() as u64;
    }
    if let Some(a) = st.adapters.iter_mut().find(|a| a.id == binding) {
        a.counters.tx_frames += 1;
        a.counters.tx_bytes += data.len() as u64;
    }
    // The ARP responders answer requests for their addresses.
    if let Some(req) = Arp::from_frame(data).filter(|a| a.op == Arp::REQUEST) {
        let answer = st.arp.iter().find(|(b, ip, _)| *b == binding && *ip == req.target_ip).copied();
        if let Some((_, ip, mac)) = answer {
            let reply = Arp {
                op: Arp::REPLY,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: req.sender_mac,
                target_ip: req.sender_ip,
            };
            let frame = reply.to_frame(mac);
            deliver(st, binding, &frame, tci, None);
        }
    }
}
