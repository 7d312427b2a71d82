//! The control device: each handle is a `Client`; its requests are parsed
//! with `proto`'s checked parsers, so a malformed one is refused with a
//! specific status before anything changes.

use super::client::{enqueue, Client, Completions, Mode, OidInFlight};
use super::{OidTag, Rawnic};
use crate::kernel::device::{Armed, DeviceHandler, Dispatched, Irp, IrpId, PendingIrp};
use crate::kernel::nbl::SendError;
use crate::kernel::oid::{OidId, OidKind, OidRequest as NdisOidRequest, Submitted};
use crate::kernel::protocol::{Binding, Protocol};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use ndis_sys::*;
use proto::*;
use rawnic_logic::filter::RxFilter;
use rawnic_logic::ring::RxRing;

fn fail(irp: Irp, s: NtStatus) -> Dispatched {
    irp.complete(s.0, 0)
}

/// Completes with the reply `emit` writes into the output buffer.
fn reply(mut irp: Irp, min: usize, emit: impl FnOnce(&mut [u8]) -> core::result::Result<usize, Error>) -> Dispatched {
    let out = irp.output();
    if out.len() < min {
        return fail(irp, NtStatus::BUFFER_TOO_SMALL);
    }
    match emit(out) {
        Ok(n) => irp.complete(STATUS_SUCCESS, n),
        Err(e) => fail(irp, e.status()),
    }
}

fn driver_version() -> (u16, u16, u16) {
    const fn p(s: &str) -> u16 {
        let b = s.as_bytes();
        let mut v = 0u16;
        let mut i = 0;
        while i < b.len() {
            v = v * 10 + (b[i] - b'0') as u16;
            i += 1;
        }
        v
    }
    (p(env!("CARGO_PKG_VERSION_MAJOR")), p(env!("CARGO_PKG_VERSION_MINOR")), p(env!("CARGO_PKG_VERSION_PATCH")))
}

impl DeviceHandler for Rawnic {
    type File = Client;

    fn create(&'static self) -> core::result::Result<Arc<Client>, NTSTATUS> {
        let c = Arc::new(Client::new(self.next_client.fetch_add(1, Ordering::Relaxed)));
        let mut list = self.clients.lock();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&c));
        Ok(c)
    }

    fn cleanup(&'static self, file: &Arc<Client>) {
        let mut done = Completions::new();
        let (mode, receives, oids) = {
            let mut st = file.state.lock();
            let receives = !st.filter.receives_nothing();
            let mode = core::mem::replace(&mut st.mode, Mode::Closed);
            st.fail_pending(STATUS_CANCELLED, &mut done);
            st.ring.clear();
            let oids: Vec<OidId> = st.oids.iter_mut().filter_map(|o| {
                o.cancel_requested = true;
                o.oid
            }).collect();
            (mode, receives, oids)
        };
        {
            let mut binds = self.binds.lock();
            let mut i = 0;
            while i < binds.waiters.len() {
                if binds.waiters[i].0 == file.id {
                    let (_, irp) = binds.waiters.remove(i).expect("index in range");
                    done.push((irp, STATUS_CANCELLED, 0));
                } else {
                    i += 1;
                }
            }
        }
        done.complete();
        if let Mode::Open { binding, slot } = mode {
            for id in oids {
                binding.cancel_oid(id);
            }
            binding.clients.lock().remove(slot, receives);
            if receives {
                self.update_packet_filter(&binding);
            }
        }
    }

    fn close(&'static self, file: Arc<Client>) {
        self.clients.lock().retain(|w| w.strong_count() > 0 && !core::ptr::eq(w.as_ptr(), Arc::as_ptr(&file)));
    }

    fn read(&'static self, file: &Arc<Client>, mut irp: Irp) -> Dispatched {
        match irp.direct_buffer() {
            Ok(b) if b.len() >= FrameHeader::LEN => {}
            Ok(_) => return fail(irp, NtStatus::BUFFER_TOO_SMALL),
            Err(s) => return irp.complete(s, 0),
        }
        let mut done = Completions::new();
        let mut st = file.state.lock();
        match st.mode {
            Mode::Open { .. } => {}
            Mode::Orphaned => return fail(irp, NtStatus::DEVICE_REMOVED),
            _ => return fail(irp, NtStatus::INVALID_DEVICE_STATE),
        }
        if st.filter.receives_nothing() {
            // A send-only handle (packet filter 0) would wait forever.
            return fail(irp, NtStatus::INVALID_DEVICE_STATE);
        }
        if !st.ring.is_empty() {
            let out = match irp.direct_buffer() {
                Ok(b) => st.ring.read_into(b),
                Err(s) => return irp.complete(s, 0),
            };
            drop(st);
            return irp.complete(STATUS_SUCCESS, out.bytes);
        }
        let (d, p) = irp.pend::<Rawnic>();
        enqueue(&mut st.reads, p, &mut done);
        drop(st);
        done.complete();
        d
    }

    fn write(&'static self, file: &Arc<Client>, mut irp: Irp) -> Dispatched {
        let (binding, tag) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        let max = binding.info.lock().mtu as usize + ETH_HEADER;
        let (sent, len) = {
            let frame = match irp.direct_buffer() {
                Ok(f) => f,
                Err(s) => return irp.complete(s, 0),
            };
            if frame.len() < ETH_HEADER || frame.len() > max {
                return fail(irp, NtStatus::INVALID_BUFFER_SIZE);
            }
            let len = frame.len();
            let mut batch = match binding.begin_send(1) {
                Ok(b) => b,
                Err(e) => return fail(irp, send_error(e)),
            };
            let pushed = batch.push(frame, None, tag);
            if pushed {
                count_in_flight(file, &binding, 1);
            }
            (batch.send().0, len)
        };
        if sent == 1 {
            irp.complete(STATUS_SUCCESS, len)
        } else {
            fail(irp, NtStatus::INSUFFICIENT_RESOURCES)
        }
    }

    fn ioctl(&'static self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        match irp.ioctl_code() {
            IOCTL_RAWNIC_GET_VERSION => {
                if !irp.input().is_empty() {
                    if let Err(e) = EmptyRequest::parse(irp.input()) {
                        return fail(irp, e.status());
                    }
                }
                let (a, b, c) = driver_version();
                reply(irp, VersionReply::LEN, |out| {
                    VersionReply {
                        proto_version: PROTO_VERSION,
                        driver: (a, b, c),
                        ndis: (NDIS_PROTOCOL_MAJOR_VERSION, NDIS_PROTOCOL_MINOR_VERSION),
                        max_batch: MAX_BATCH,
                    }
                    .emit(out)
                })
            }
            IOCTL_RAWNIC_LIST_BINDINGS => self.list(irp),
            IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => self.wait_binds(file, irp),
            IOCTL_RAWNIC_OPEN => self.open(file, irp),
            IOCTL_RAWNIC_SEND_BATCH => self.send_batch(file, irp),
            IOCTL_RAWNIC_QUERY_OID => self.oid(file, irp, OidKind::Query),
            IOCTL_RAWNIC_SET_OID => self.oid(file, irp, OidKind::Set),
            IOCTL_RAWNIC_GET_STATS => self.stats(file, irp),
            IOCTL_RAWNIC_WAIT_EVENT => self.wait_event(file, irp),
            _ => fail(irp, NtStatus::INVALID_DEVICE_REQUEST),
        }
    }

    fn cancel(&'static self, file: &Arc<Client>, id: IrpId) {
        let mut binding = None;
        let mut oid = None;
        {
            let mut st = file.state.lock();
            if let Some(p) = st.take_pending(id) {
                drop(st);
                p.complete(STATUS_CANCELLED, 0);
                return;
            }
            if let Some(o) = st.oids.iter_mut().find(|o| o.irp == id) {
                o.cancel_requested = true;
                oid = o.oid;
                if let Mode::Open { binding: b, .. } = &st.mode {
                    binding = Some(b.clone());
                }
            }
        }
        if let (Some(b), Some(oid)) = (binding, oid) {
            // NDIS completes it with NDIS_STATUS_REQUEST_ABORTED; the IRP
            // completes then, as cancelled.
            b.cancel_oid(oid);
            return;
        }
        let found = {
            let mut binds = self.binds.lock();
            binds.waiters.iter().position(|(_, p)| p.id() == id).and_then(|i| binds.waiters.remove(i))
        };
        if let Some((_, p)) = found {
            p.complete(STATUS_CANCELLED, 0);
        }
    }
}

fn send_error(e: SendError) -> NtStatus {
    match e {
        SendError::NotRunning => NtStatus::DEVICE_NOT_READY,
        SendError::NoResources => NtStatus::INSUFFICIENT_RESOURCES,
    }
}

fn count_in_flight(file: &Client, binding: &Binding<Rawnic>, n: u64) {
    file.counters.tx_in_flight.fetch_add(n, Ordering::Relaxed);
    binding.counters.tx_in_flight.fetch_add(n, Ordering::Relaxed);
}

impl Rawnic {
    fn list(&'static self, mut irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        if irp.output_len() < ListHeader::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        struct Snap {
            id: u32,
            state: u8,
            link: u8,
            duplex: u8,
            mtu: u32,
            speeds: (u64, u64),
            mac: [u8; 6],
            filter: u32,
            handles: u32,
            name: String,
            desc: String,
        }
        let bindings = self.bindings.lock().clone();
        let snaps: Vec<Snap> = bindings
            .iter()
            .map(|b| {
                let handles = b.clients.lock().len() as u32;
                let info = b.info.lock();
                let link = match info.link.connect_state {
                    MediaConnectStateConnected => link::UP,
                    MediaConnectStateDisconnected => link::DOWN,
                    _ => link::UNKNOWN,
                };
                Snap {
                    id: b.id,
                    state: 0,
                    link,
                    duplex: info.link.duplex_state as u8,
                    mtu: info.mtu,
                    speeds: (info.link.xmit_speed, info.link.rcv_speed),
                    mac: b.mac,
                    filter: info.packet_filter,
                    handles,
                    name: b.name.clone(),
                    desc: info.description.clone(),
                }
            })
            .zip(bindings.iter())
            .map(|(mut s, b)| {
                s.state = b.state().wire();
                s
            })
            .collect();
        let out = irp.output();
        let mut off = ListHeader::LEN;
        let mut needed = ListHeader::LEN;
        let mut count = 0u32;
        for s in &snaps {
            let e = BindingEntry {
                binding_id: s.id,
                state: s.state,
                link: s.link,
                duplex: s.duplex,
                mtu: s.mtu,
                xmit_speed: s.speeds.0,
                rcv_speed: s.speeds.1,
                mac: s.mac,
                packet_filter: s.filter,
                open_handles: s.handles,
                name: &s.name,
                description: &s.desc,
            };
            let len = e.wire_len();
            needed += len;
            if off + len <= out.len() && e.emit(&mut out[off..off + len]).is_ok() {
                off += len;
                count += 1;
            }
        }
        let header = ListHeader { count, needed: needed as u32 };
        let _ = header.emit(&mut out[..ListHeader::LEN]);
        let status = if count as usize == snaps.len() { STATUS_SUCCESS } else { STATUS_BUFFER_OVERFLOW };
        irp.complete(status, off)
    }

    fn wait_binds(&'static self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        if irp.output_len() < BindsCompleteReply::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let mut binds = self.binds.lock();
        if binds.complete {
            drop(binds);
            let n = self.bindings.lock().len() as u32;
            return reply(irp, BindsCompleteReply::LEN, |out| BindsCompleteReply { bindings: n }.emit(out));
        }
        let (d, p) = irp.pend::<Rawnic>();
        match p.arm_cancel() {
            Armed::Queued(p) => binds.waiters.push_back((file.id, p)),
            Armed::Cancelled(p) => {
                drop(binds);
                p.complete(STATUS_CANCELLED, 0);
            }
        }
        d
    }

    fn open(&'static self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        // Everything is checked before anything changes.
        let (name, filter, frames, bytes, snaplen) = match OpenRequest::new_checked(irp.input()) {
            Ok(r) => (
                String::from(r.name()),
                RxFilter::new(r.packet_filter(), r.ethertypes()),
                r.queue_frames(),
                r.queue_bytes(),
                r.snaplen(),
            ),
            Err(e) => return fail(irp, e.status()),
        };
        if irp.output_len() < OpenReply::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        if self.uninstalling.load(Ordering::Acquire) {
            return fail(irp, NtStatus::DEVICE_REMOVED);
        }
        {
            let mut st = file.state.lock();
            if !matches!(st.mode, Mode::Unopened) {
                return fail(irp, NtStatus::INVALID_DEVICE_STATE);
            }
            st.mode = Mode::Opening;
        }
        let reset = |file: &Client| file.state.lock().mode = Mode::Unopened;
        let Some(binding) = self.find_binding(&name) else {
            reset(file);
            return fail(irp, NtStatus::OBJECT_NAME_NOT_FOUND);
        };
        let receives = !filter.receives_nothing();
        let (mtu, mac) = {
            let mut table = binding.clients.lock();
            let info = binding.info.lock();
            if info.closing {
                drop(info);
                drop(table);
                reset(file);
                return fail(irp, NtStatus::OBJECT_NAME_NOT_FOUND);
            }
            let (mtu, mac) = (info.mtu, binding.mac);
            drop(info);
            let tag = table.insert(file.clone(), receives);
            let mut st = file.state.lock_dpr(table.at_dispatch());
            if !matches!(st.mode, Mode::Opening) {
                // The handle was cleaned up meanwhile.
                drop(st);
                table.remove(tag, receives);
                drop(table);
                return fail(irp, NtStatus::INVALID_DEVICE_STATE);
            }
            st.filter = filter;
            st.snaplen = snaplen;
            st.ring = RxRing::new(frames as usize, bytes as usize);
            st.mode = Mode::Open { binding: binding.clone(), slot: tag };
            (mtu, mac)
        };
        if receives {
            self.update_packet_filter(&binding);
        }
        let id = binding.id;
        reply(irp, OpenReply::LEN, |out| OpenReply { binding_id: id, mtu, mac }.emit(out))
    }

    fn send_batch(&'static self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        let (binding, tag) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        if irp.output_len() < SendReply::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let max_frame = binding.info.lock().mtu as usize + ETH_HEADER;
        let (accepted, bytes) = {
            let batch = match SendBatch::new_checked(irp.input(), max_frame) {
                Ok(b) => b,
                Err(e) => return fail(irp, e.status()),
            };
            let mut nbls = match binding.begin_send(batch.count() as usize) {
                Ok(s) => s,
                Err(e) => return fail(irp, send_error(e)),
            };
            for f in batch.frames() {
                if !nbls.push(f.data, f.tci, tag) {
                    break;
                }
            }
            count_in_flight(file, &binding, nbls.len() as u64);
            let (n, bytes) = nbls.send();
            (n as u32, bytes)
        };
        reply(irp, SendReply::LEN, |out| SendReply { accepted, bytes }.emit(out))
    }

    fn oid(&'static self, file: &Arc<Client>, irp: Irp, kind: OidKind) -> Dispatched {
        let (binding, _) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        let (oid, data) = match OidRequest::parse(irp.input()) {
            Ok(r) => (r.oid, r.data.to_vec()),
            Err(e) => return fail(irp, e.status()),
        };
        let out_len = irp.output_len();
        if out_len < OidReplyHeader::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let data = match kind {
            OidKind::Set => {
                if !OID_SET_ALLOW_LIST.contains(&oid) {
                    return fail(irp, NtStatus::ACCESS_DENIED);
                }
                data
            }
            OidKind::Query => {
                let room = (out_len - OidReplyHeader::LEN).min(MAX_OID_DATA as usize);
                let mut buf = vec![0u8; room];
                let n = data.len().min(room);
                buf[..n].copy_from_slice(&data[..n]);
                buf
            }
        };
        if binding.info.lock().closing {
            return fail(irp, NtStatus::DEVICE_REMOVED);
        }
        let (d, p) = irp.pend::<Rawnic>();
        let id = p.id();
        {
            let mut st = file.state.lock();
            match p.arm_cancel() {
                Armed::Cancelled(p) => {
                    drop(st);
                    p.complete(STATUS_CANCELLED, 0);
                    return d;
                }
                Armed::Queued(p) => {
                    st.oids.push(OidInFlight { irp: id, oid: None, cancel_requested: false });
                    drop(st);
                    let client = file.clone();
                    let sub = binding.request_oid(
                        NdisOidRequest { kind, oid, data, tag: OidTag::User { client: file.clone(), irp: p } },
                        |oid_id| {
                            if let Some(o) = client.state.lock().oids.iter_mut().find(|o| o.irp == id) {
                                o.oid = Some(oid_id);
                            }
                            binding.info.lock().oids_pending.push(oid_id);
                        },
                    );
                    match sub {
                        Submitted::Done(c) => self.oid_complete(&binding, c),
                        Submitted::Pending(oid_id) => {
                            // A cancel that came before the id was known.
                            let cancel = file.state.lock().oids.iter().any(|o| o.irp == id && o.cancel_requested);
                            if cancel {
                                binding.cancel_oid(oid_id);
                            }
                        }
                    }
                }
            }
        }
        d
    }

    fn stats(&'static self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        let (binding, _) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        let (queued_frames, queued_bytes) = {
            let st = file.state.lock();
            (st.ring.len() as u32, st.ring.bytes() as u64)
        };
        let r = StatsReply {
            queued_frames,
            queued_bytes,
            handle: file.counters.snapshot(),
            binding: binding.counters.snapshot(),
        };
        reply(irp, StatsReply::LEN, |out| r.emit(out))
    }

    fn wait_event(&'static self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        if irp.output_len() < EventRecord::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let mut done = Completions::new();
        let mut st = file.state.lock();
        if let Some(ev) = st.events.pop() {
            drop(st);
            return reply(irp, EventRecord::LEN, |out| ev.emit(out));
        }
        match st.mode {
            Mode::Orphaned => return fail(irp, NtStatus::DEVICE_REMOVED),
            Mode::Closed => return fail(irp, NtStatus::INVALID_DEVICE_STATE),
            _ => {}
        }
        let (d, p) = irp.pend::<Rawnic>();
        enqueue(&mut st.event_waits, p, &mut done);
        drop(st);
        done.complete();
        d
    }
}

/// Finishes a user's OID request: the reply header, the data of a query,
/// or `STATUS_CANCELLED` if it was cancelled.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish_user_oid(
    client: &Client,
    mut irp: PendingIrp,
    _id: OidId,
    kind: OidKind,
    status: NDIS_STATUS,
    data: &[u8],
    bytes: u32,
    needed: u32,
) {
    let cancelled = {
        let mut st = client.state.lock();
        let pos = st.oids.iter().position(|o| o.irp == irp.id());
        let entry = pos.map(|i| st.oids.swap_remove(i));
        entry.is_some_and(|e| e.cancel_requested)
    };
    if cancelled && status == NDIS_STATUS_REQUEST_ABORTED {
        irp.complete(STATUS_CANCELLED, 0);
        return;
    }
    let out = irp.output();
    let data = if kind == OidKind::Query { &data[..data.len().min(out.len() - OidReplyHeader::LEN)] } else { &[][..] };
    let h = OidReplyHeader { ndis_status: status, bytes: if kind == OidKind::Query { data.len() as u32 } else { bytes }, bytes_needed: needed };
    let n = match h.emit(out) {
        Ok(n) => n,
        Err(e) => {
            irp.complete(e.status().0, 0);
            return;
        }
    };
    out[n..n + data.len()].copy_from_slice(data);
    irp.complete(STATUS_SUCCESS, n + data.len())
}
