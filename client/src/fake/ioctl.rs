//! The fake's answers to rawnic's IOCTLs, each request parsed and each
//! reply emitted by `rawnic_proto`: version, bindings, open, sends, OIDs, stats,
//! events and capture programs.

use super::State;
use super::frames::{pump_events, transmit};
use crate::oid;
use rawnic_proto::bridge::RequestHeader;
use rawnic_proto::*;

pub(super) fn ioctl(
    st: &mut State,
    id: u64,
    h: &RequestHeader,
    input: &[u8],
    reply: &dyn Fn(NtStatus, &[u8]),
    fail: &dyn Fn(NtStatus),
) {
    let empty = || EmptyRequest::parse(input).map_err(NtStatus::from);
    match h.code {
        IOCTL_RAWNIC_GET_VERSION => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let mut b = [0u8; VersionReply::LEN];
            VersionReply { proto_version: PROTO_VERSION, driver: (0, 1, 0), ndis: (6, 89), max_batch: st.max_batch }
                .emit(&mut b)
                .expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_LIST_BINDINGS => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let open: Vec<u32> = st.handles.values().filter_map(|(_, h)| h.binding).collect();
            let entries: Vec<Vec<u8>> = st
                .adapters
                .iter()
                .map(|a| {
                    let e = BindingEntry {
                        binding_id: a.id,
                        state: state::RUNNING,
                        link: if a.info.link_up { link::UP } else { link::DOWN },
                        duplex: 2,
                        mtu: a.info.mtu,
                        xmit_speed: a.info.speed,
                        rcv_speed: a.info.speed,
                        mac: a.info.mac.0,
                        packet_filter: st
                            .handles
                            .values()
                            .filter(|(_, h)| h.binding == Some(a.id))
                            .fold(PacketFilter::NONE, |f, (_, h)| f | h.packet_filter),
                        open_handles: open.iter().filter(|b| **b == a.id).count() as u32,
                        supported_filter: a.info.supported_filters,
                        refused_filter: PacketFilter::NONE,
                        name: &a.info.name,
                        description: &a.info.description,
                    };
                    let mut b = vec![0u8; e.wire_len()];
                    e.emit(&mut b).expect("sized");
                    b
                })
                .collect();
            let needed = ListHeader::LEN + entries.iter().map(Vec::len).sum::<usize>();
            if let Some(needed) = st.list_claim.take() {
                let mut out = vec![0u8; ListHeader::LEN];
                ListHeader { count: 0, needed }.emit(&mut out).expect("sized");
                return reply(NtStatus::BUFFER_OVERFLOW, &out);
            }
            let mut out = vec![0u8; ListHeader::LEN];
            let mut count = 0;
            for e in &entries {
                if out.len() + e.len() > h.out_len as usize {
                    break;
                }
                out.extend_from_slice(e);
                count += 1;
            }
            if h.out_len as usize >= ListHeader::LEN {
                ListHeader { count, needed: needed as u32 }.emit(&mut out).expect("sized");
            }
            let status = if count as usize == entries.len() { NtStatus::SUCCESS } else { NtStatus::BUFFER_OVERFLOW };
            reply(status, &out);
        }
        IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => {
            if let Err(s) = empty() {
                return fail(s);
            }
            if st.binds_complete {
                let mut b = [0u8; BindsCompleteReply::LEN];
                BindsCompleteReply { bindings: st.adapters.len() as u32 }.emit(&mut b).expect("sized");
                reply(NtStatus::SUCCESS, &b);
            } else {
                let waits = &mut st.handles.get_mut(&id).expect("open").1.bind_waits;
                if waits.len() >= MAX_HANDLE_EVENT_WAITS {
                    return fail(NtStatus::INSUFFICIENT_RESOURCES);
                }
                waits.push_back(h.tag);
            }
        }
        IOCTL_RAWNIC_OPEN => {
            let req = match OpenRequest::new_checked(input) {
                Ok(r) => r,
                Err(e) => return fail(e.status()),
            };
            let Some(a) = st.adapters.iter().find(|a| a.info.name == req.name()) else {
                return fail(NtStatus::OBJECT_NAME_NOT_FOUND);
            };
            let (binding, mtu, mac) = (a.id, a.info.mtu, a.info.mac);
            let requested = req.packet_filter();
            let effective = filter::effective(requested, a.info.supported_filters);
            let lost = filter::lost(requested, effective);
            let hd = &mut st.handles.get_mut(&id).expect("open").1;
            if hd.binding.is_some() {
                return fail(NtStatus::INVALID_DEVICE_STATE);
            }
            if !requested.is_empty() && (effective.is_empty() || (req.strict_filter() && !lost.is_empty())) {
                return fail(NtStatus::NOT_SUPPORTED);
            }
            if !lost.is_empty() {
                hd.event_seq += 1;
                hd.events.push_back(EventRecord {
                    kind: event::FILTER_REFUSED,
                    binding_id: binding,
                    seq: hd.event_seq,
                    filter: effective,
                    refused: lost,
                    ..EventRecord::default()
                });
            }
            hd.binding = Some(binding);
            hd.ethertypes = req.ethertypes().collect();
            hd.packet_filter = effective;
            hd.requested_filter = requested;
            hd.local_sends = req.local_sends();
            hd.snaplen = req.snaplen();
            hd.queue_frames = req.queue_frames();
            let mut b = [0u8; OpenReply::LEN];
            OpenReply { binding_id: binding, mtu, mac: mac.0, packet_filter: effective }.emit(&mut b).expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_SEND_BATCH => {
            let Some(binding) = st.handles[&id].1.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            let mtu = st.adapters.iter().find(|a| a.id == binding).map_or(1500, |a| a.info.mtu) as usize;
            let batch = match SendBatch::new_checked(input, mtu + ETH_HEADER) {
                Ok(b) => b,
                Err(e) => return fail(e.status()),
            };
            let cap = match st.send_plan.pop_front() {
                None => u32::MAX,
                Some(Ok(cap)) => cap,
                Some(Err(status)) => return fail(status),
            };
            let mut accepted = 0u32;
            let mut bytes = 0u64;
            for f in batch.frames().take(cap as usize) {
                transmit(st, id, binding, f.data, f.tci, false);
                accepted += 1;
                bytes += f.data.len() as u64;
            }
            let mut b = [0u8; SendReply::LEN];
            SendReply { accepted, bytes }.emit(&mut b).expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_QUERY_OID | IOCTL_RAWNIC_SET_OID => {
            let set = h.code == IOCTL_RAWNIC_SET_OID;
            let req = match OidRequest::parse(input) {
                Ok(r) => r,
                Err(e) => return fail(e.status()),
            };
            let Some(binding) = st.handles[&id].1.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            if set && !OID_SET_ALLOW_LIST.contains(&req.oid) {
                return fail(NtStatus::ACCESS_DENIED);
            }
            let capacity = (h.out_len as usize).saturating_sub(OidReplyHeader::LEN);
            if !set && req.data.len() > capacity.min(MAX_OID_DATA as usize) {
                return fail(NtStatus::BUFFER_TOO_SMALL);
            }
            let a = st.adapters.iter_mut().find(|a| a.id == binding).expect("bound");
            let result: Result<Vec<u8>, i32> = if set {
                match req.oid {
                    oid::OID_GEN_CURRENT_LOOKAHEAD if req.data.len() == 4 => {
                        a.lookahead = u32::from_le_bytes(req.data.try_into().expect("4"));
                        Ok(Vec::new())
                    }
                    oid::OID_802_3_MULTICAST_LIST if req.data.len() % 6 == 0 => {
                        a.multicast = req.data.to_vec();
                        Ok(Vec::new())
                    }
                    oid::OID_GEN_CURRENT_LOOKAHEAD | oid::OID_802_3_MULTICAST_LIST => Err(0xC001_0014u32 as i32),
                    _ => Err(0xC001_0017u32 as i32),
                }
            } else {
                match req.oid {
                    oid::OID_802_3_CURRENT_ADDRESS | oid::OID_802_3_PERMANENT_ADDRESS => Ok(a.info.mac.0.to_vec()),
                    oid::OID_GEN_LINK_SPEED => Ok(((a.info.speed / 100) as u32).to_le_bytes().to_vec()),
                    oid::OID_GEN_MAXIMUM_FRAME_SIZE => Ok(a.info.mtu.to_le_bytes().to_vec()),
                    oid::OID_GEN_CURRENT_LOOKAHEAD => Ok(a.lookahead.to_le_bytes().to_vec()),
                    oid::OID_GEN_MEDIA_CONNECT_STATUS => Ok(u32::from(!a.info.link_up).to_le_bytes().to_vec()),
                    oid::OID_GEN_VENDOR_DESCRIPTION => Ok([a.info.description.as_bytes(), &[0]].concat()),
                    oid::OID_802_3_MULTICAST_LIST => Ok(a.multicast.clone()),
                    oid::OID_GEN_SUPPORTED_LIST => Ok(oid::NAMED.iter().flat_map(|i| i.oid.to_le_bytes()).collect()),
                    _ => Err(0xC001_0017u32 as i32),
                }
            };
            let mut out = vec![0u8; OidReplyHeader::LEN];
            let header = match result {
                Ok(data) if !set && data.len() > capacity => {
                    OidReplyHeader { ndis_status: 0xC001_0016u32 as i32, bytes: 0, bytes_needed: data.len() as u32 }
                }
                Ok(data) => {
                    let bytes = if set { req.data.len() } else { data.len() };
                    out.extend_from_slice(&data);
                    OidReplyHeader { ndis_status: 0, bytes: bytes as u32, bytes_needed: 0 }
                }
                Err(status) => OidReplyHeader { ndis_status: status, bytes: 0, bytes_needed: 0 },
            };
            header.emit(&mut out).expect("sized");
            reply(NtStatus::SUCCESS, &out);
        }
        IOCTL_RAWNIC_GET_STATS => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let hd = &st.handles[&id].1;
            let Some(binding) = hd.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            let a = st.adapters.iter().find(|a| a.id == binding).expect("bound");
            let s = StatsReply {
                flags: 0,
                queued_frames: hd.rx.len() as u32,
                queued_bytes: hd.rx.iter().map(|(_, d)| d.len() as u64).sum(),
                requested_filter: hd.requested_filter,
                effective_filter: hd.packet_filter,
                handle: hd.counters,
                binding: a.counters,
            };
            let mut b = [0u8; StatsReply::LEN];
            s.emit(&mut b).expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_WAIT_EVENT => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let (conn, hd) = st.handles.get_mut(&id).expect("open");
            // Waits pend only while no event is queued.
            if hd.event_waits.len() >= MAX_HANDLE_EVENT_WAITS {
                return fail(NtStatus::INSUFFICIENT_RESOURCES);
            }
            hd.event_waits.push_back(h.tag);
            pump_events(conn, hd);
        }
        IOCTL_RAWNIC_SET_PROGRAM => {
            let program = match ProgramRequest::new_checked(input) {
                Err(e) => return fail(e.status()),
                Ok(req) if req.is_empty() => None,
                Ok(req) => match rawnic_logic::bpf::Program::new(req.insns()) {
                    Ok(p) => Some(p),
                    Err(_) => return fail(NtStatus::INVALID_PARAMETER),
                },
            };
            st.handles.get_mut(&id).expect("open").1.program = program;
            reply(NtStatus::SUCCESS, &[]);
        }
        // The fake has no rings.
        IOCTL_RAWNIC_RING_ATTACH | IOCTL_RAWNIC_RING_DETACH | IOCTL_RAWNIC_RING_WAIT | IOCTL_RAWNIC_RING_KICK => {
            fail(NtStatus::NOT_SUPPORTED)
        }
        _ => fail(NtStatus::INVALID_DEVICE_REQUEST),
    }
}
