//! One connection of the fake: reading `rawnic_proto::bridge` requests, CREATE,
//! CANCEL and CLOSE, and READ and WRITE on an open handle (IOCTLs go to
//! `ioctl`).

use super::frames::{pump_reads, transmit};
use super::ioctl::ioctl;
use super::{Conn, Handle, Logged, Shared, State, lock};
use rawnic_proto::bridge::{RequestHeader, op};
use rawnic_proto::*;
use std::io::Read;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

pub(super) fn serve(shared: &Shared, stream: UnixStream) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (Ok(writer), Ok(keep)) = (stream.try_clone(), stream.try_clone()) else { return };
    let conn = Arc::new(Conn { writer: Mutex::new(writer) });
    lock(&shared.state).streams.push(keep);
    let mut stream = stream;
    loop {
        let mut hdr = [0u8; RequestHeader::LEN];
        if stream.read_exact(&mut hdr).is_err() {
            break;
        }
        let Ok(h) = RequestHeader::parse(&hdr) else { break };
        let mut input = vec![0u8; h.in_len as usize];
        if stream.read_exact(&mut input).is_err() {
            break;
        }
        let mut st = lock(&shared.state);
        st.log.push(Logged { conn: id, op: h.op, tag: h.tag, code: h.code, out_len: h.out_len });
        match h.op {
            op::CREATE => {
                if st.deny_create {
                    conn.complete(h.tag, NtStatus::ACCESS_DENIED, 0, &[]);
                    continue;
                }
                st.handles.insert(id, (Arc::clone(&conn), Handle::default()));
                conn.complete(h.tag, NtStatus::SUCCESS, 0, &[]);
            }
            // The fake host names no interface.
            op::ALIAS => conn.complete(h.tag, NtStatus::OBJECT_NAME_NOT_FOUND, 0, &[]),
            // The fake has no rings, so no shared memory (the descriptor
            // that came with the message was closed by the plain read).
            op::IOCTL_SHARED => conn.complete(h.tag, NtStatus::NOT_SUPPORTED, 0, &[]),
            op::CLOSE => {
                if let Some((conn, h)) = st.handles.remove(&id) {
                    for tag in h
                        .reads
                        .iter()
                        .map(|r| r.0)
                        .chain(h.event_waits.iter().copied())
                        .chain(h.bind_waits.iter().copied())
                    {
                        conn.complete(tag, NtStatus::CANCELLED, 0, &[]);
                    }
                }
                st.closed += 1;
                break;
            }
            op::CANCEL => {
                if let Some((conn, hd)) = st.handles.get_mut(&id) {
                    let tag = h.tag;
                    let before = hd.reads.len() + hd.event_waits.len() + hd.bind_waits.len();
                    hd.reads.retain(|r| r.0 != tag);
                    hd.event_waits.retain(|t| *t != tag);
                    hd.bind_waits.retain(|t| *t != tag);
                    if hd.reads.len() + hd.event_waits.len() + hd.bind_waits.len() != before {
                        conn.complete(tag, NtStatus::CANCELLED, 0, &[]);
                    }
                }
            }
            op::READ | op::WRITE | op::IOCTL => {
                if !st.handles.contains_key(&id) {
                    conn.complete(h.tag, NtStatus::INVALID_DEVICE_STATE, 0, &[]);
                    continue;
                }
                request(&mut st, id, &h, &input);
            }
            _ => break,
        }
    }
    let _ = conn.writer.lock().map(|w| w.shutdown(Shutdown::Both));
}

fn request(st: &mut State, id: u64, h: &RequestHeader, input: &[u8]) {
    let (conn, _) = st.handles.get(&id).expect("checked");
    let conn = Arc::clone(conn);
    let out_len = h.out_len as usize;
    let reply = |status: NtStatus, data: &[u8]| {
        if data.len() > out_len {
            conn.complete(h.tag, NtStatus::BUFFER_TOO_SMALL, 0, &[]);
        } else {
            conn.complete(h.tag, status, data.len() as u64, data);
        }
    };
    let fail = |status: NtStatus| conn.complete(h.tag, status, 0, &[]);
    match h.op {
        op::READ => {
            let (_, hd) = st.handles.get_mut(&id).expect("checked");
            if hd.binding.is_none() {
                return fail(NtStatus::INVALID_DEVICE_STATE);
            }
            if out_len < FrameHeader::LEN + ETH_HEADER {
                return fail(NtStatus::BUFFER_TOO_SMALL);
            }
            // Reads pend only while no frame is queued.
            if hd.reads.len() >= MAX_HANDLE_READS {
                return fail(NtStatus::INSUFFICIENT_RESOURCES);
            }
            hd.reads.push_back((h.tag, h.out_len));
            pump_reads(&conn, hd);
        }
        op::WRITE => {
            let Some(binding) = st.handles[&id].1.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            let mtu = st.adapters.iter().find(|a| a.id == binding).map_or(1500, |a| a.info.mtu) as usize;
            if input.len() < ETH_HEADER || input.len() > rawnic_proto::max_send_len(mtu + ETH_HEADER, input, None) {
                return fail(NtStatus::INVALID_BUFFER_SIZE);
            }
            transmit(st, id, binding, input, None, true);
            conn.complete(h.tag, NtStatus::SUCCESS, input.len() as u64, &[]);
        }
        _ => ioctl(st, id, h, input, &reply, &fail),
    }
}
