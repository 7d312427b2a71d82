//! The control device: each handle is a `Client`; its requests are parsed
//! with `rawnic_proto`'s checked parsers, so a malformed one is refused with a
//! specific status before anything changes.

use super::Rawnic;
use super::client::{Client, Completions, Mode, enqueue};
use crate::kernel::alloc::{try_arc, try_string};
use crate::kernel::device::{Armed, DeviceHandler, Dispatched, Irp, IrpId};
use crate::kernel::nbl::SendError;
use crate::kernel::oid::OidKind;
use crate::kernel::protocol::{Binding, offer_declined_again, registered_version};
use crate::kernel::sync::GateState;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use ndis_sys::*;
use rawnic_logic::budget::QueueBudget;
use rawnic_logic::filter::{RxFilter, gets};
use rawnic_logic::multicast::MulticastList;
use rawnic_logic::ring::RxRing;
use rawnic_logic::vlan::TagPlacement;
use rawnic_proto::*;

/// The pool all handles' receive queues may take together: a handle's
/// bound is its own, and this keeps many handles from exhausting the
/// system's non-paged pool (a queue that cannot grow drops, and counts).
static QUEUES_POOL: QueueBudget = QueueBudget::new(MAX_QUEUES_POOL_BYTES);

pub(super) fn fail(irp: Irp, s: NtStatus) -> Dispatched {
    irp.complete(s, 0)
}

/// Completes with the reply `emit` writes into the output buffer.
fn reply(mut irp: Irp, min: usize, emit: impl FnOnce(&mut [u8]) -> core::result::Result<usize, Error>) -> Dispatched {
    let out = irp.output();
    if out.len() < min {
        return fail(irp, NtStatus::BUFFER_TOO_SMALL);
    }
    match emit(out) {
        Ok(n) => irp.complete(NtStatus::SUCCESS, n),
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

    fn create(&self) -> core::result::Result<Arc<Client>, NtStatus> {
        let c = Client::new(self.next_client.fetch_add(1, Ordering::Relaxed))
            .ok_or(NtStatus::INSUFFICIENT_RESOURCES)
            .and_then(|c| try_arc(c).map_err(|_| NtStatus::INSUFFICIENT_RESOURCES))?;
        let mut list = self.clients.lock();
        list.retain(|w| w.strong_count() > 0);
        if list.try_reserve(1).is_err() {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        list.push(Arc::downgrade(&c));
        Ok(c)
    }

    fn cleanup(&self, file: &Arc<Client>) {
        let mut done = Completions::new();
        // Off its binding first, so no receive reaches the handle any more;
        // then its queue and requests go.
        let (mode, receives) = {
            let mut st = file.state.lock();
            let receives = !st.filter.receives_nothing();
            (core::mem::replace(&mut st.mode, Mode::Closed), receives)
        };
        if let Mode::Open { binding, slot } = &mode {
            let mut table = binding.clients.lock();
            table.remove(*slot, receives);
            binding.set_listeners(&table);
            // Its retained frames go with it, in the same hold of the
            // table: an indication that says the miniport is low gives
            // back the retained NBLs of the handles in the table, and would
            // miss these while the rest of the cleanup runs.
            file.state.lock_dpr(table.at_dispatch()).ring.clear();
        }
        let rings = file.state.lock().rings.take();
        if let Some(r) = rings {
            r.detach(NtStatus::CANCELLED);
        }
        let (had_multicast, program) = {
            let mut st = file.state.lock();
            st.fail_pending(NtStatus::CANCELLED, &mut done);
            // (Already empty for a handle that was open.)
            st.ring.clear();
            // Its capture program goes now, and its share of the programs'
            // pool with it: the close may come much later (it waits for
            // every reference to the file), and a SET_PROGRAM after this
            // is refused.
            (!core::mem::replace(&mut st.multicast, MulticastList::EMPTY).is_empty(), st.program.take())
        };
        drop(program);
        {
            let mut binds = self.binds.lock();
            let mut i = 0;
            while i < binds.waiters.len() {
                if binds.waiters[i].0 == file.id {
                    let (_, irp) = binds.waiters.remove(i).expect("index in range");
                    done.push((irp, NtStatus::CANCELLED, 0));
                } else {
                    i += 1;
                }
            }
        }
        done.complete();
        if let Mode::Open { binding, .. } = mode {
            // The NBLs of the frames its queue held, now that no lock is.
            binding.flush_returns();
            // Its OID requests are cancelled, every one (once the handle is
            // closed, a cancel of their IRPs finds no binding to pass on
            // to), sixteen at a time outside the handle's lock. One whose
            // id is not known yet is cancelled by its sender when it is.
            loop {
                let mut batch = [None; 16];
                let mut n = 0;
                {
                    let mut st = file.state.lock();
                    for o in st.oids.iter_mut().filter(|o| !o.cancel_requested).take(batch.len()) {
                        o.cancel_requested = true;
                        batch[n] = o.oid;
                        n += 1;
                    }
                }
                for id in batch.into_iter().flatten() {
                    binding.cancel_oid(id);
                }
                if n < batch.len() {
                    break;
                }
            }
            if had_multicast {
                // Its groups leave the adapter's list.
                self.multicast_changed(&binding);
            }
            if receives {
                self.update_packet_filter(&binding);
            }
        }
    }

    fn close(&self, file: Arc<Client>) {
        self.clients.lock().retain(|w| w.strong_count() > 0 && !core::ptr::eq(w.as_ptr(), Arc::as_ptr(&file)));
    }

    fn read(&self, file: &Arc<Client>, mut irp: Irp) -> Dispatched {
        // Checked before anything is mapped: the buffer is mapped only to
        // be filled.
        if irp.direct_len() < FrameHeader::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let mut done = Completions::new();
        // No IRP completes under the handle's lock (a completion may run
        // other drivers' completion routines): each early return lets go
        // of it first.
        let mut st = file.state.lock();
        let binding = match &st.mode {
            Mode::Open { binding, .. } => Ok(binding.clone()),
            Mode::Orphaned => Err(NtStatus::DEVICE_REMOVED),
            // A send-only handle (packet filter 0) would wait forever.
            _ => Err(NtStatus::INVALID_DEVICE_STATE),
        }
        .and_then(|b| if st.filter.receives_nothing() { Err(NtStatus::INVALID_DEVICE_STATE) } else { Ok(b) });
        let binding = match binding {
            Ok(b) => b,
            Err(s) => {
                drop(st);
                return fail(irp, s);
            }
        };
        if !st.ring.is_empty() {
            let out = match irp.direct_buffer() {
                Ok(b) => st.ring.read_into(b),
                Err(s) => {
                    drop(st);
                    return irp.complete(s, 0);
                }
            };
            drop(st);
            // The NBLs of the frames read, now that no lock is held.
            binding.flush_returns();
            return irp.complete(NtStatus::SUCCESS, out.bytes);
        }
        let (d, p) = irp.pend::<Rawnic>();
        enqueue(&mut st.reads, MAX_HANDLE_READS, p, &mut done);
        drop(st);
        done.complete();
        // A reader that waits for frames: a packet filter the adapter owes
        // (its work item may have given up on a shortage that outlasted
        // its retries), or a multicast union, is set again, as for
        // GET_STATS. A read pends here
        // only while the queue is empty, so this is tried at most once per
        // frame the handle gets.
        self.set_owed(&binding);
        d
    }

    fn write(&self, file: &Arc<Client>, mut irp: Irp) -> Dispatched {
        let (binding, tag) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        let max = binding.send_shape().max_frame;
        // The length alone first (the widest a frame may be: with an
        // 802.1Q tag inline), before anything is mapped.
        let n = irp.direct_len();
        if n < ETH_HEADER || n > max + VLAN_TAG {
            return fail(irp, NtStatus::INVALID_BUFFER_SIZE);
        }
        let (pushed, sent, len) = {
            let frame = match irp.direct_buffer() {
                Ok(f) => f,
                Err(s) => return irp.complete(s, 0),
            };
            // MTU + 14, or MTU + 18 with an 802.1Q tag inline.
            if frame.len() < ETH_HEADER || frame.len() > max_send_len(max, frame, None) {
                return fail(irp, NtStatus::INVALID_BUFFER_SIZE);
            }
            let len = frame.len();
            let mut gate = GateState::new();
            let mut batch = match binding.begin_send(&mut gate, 1) {
                Ok(b) => b,
                Err(e) => return fail(irp, send_error(e)),
            };
            let pushed = batch.push(frame, TagPlacement::None, tag);
            let mut done = Completions::new();
            if pushed {
                count_in_flight(file, &binding, 1);
                // The other handles get what NDIS sends, the driver's copy:
                // the user may be rewriting the buffer meanwhile. (A frame
                // pushed is sent.)
                if let Some(copy) = batch.last_pushed() {
                    super::local::deliver_into(
                        &binding,
                        file.id,
                        core::iter::once((copy, TagPlacement::None)),
                        &mut done,
                    );
                }
            }
            let sent = batch.send().0;
            done.complete();
            (pushed, sent, len)
        };
        match (pushed, sent) {
            (_, 1) => irp.complete(NtStatus::SUCCESS, len),
            // Longer than the MTU a restart set after the check above.
            (false, _) => fail(irp, NtStatus::INVALID_BUFFER_SIZE),
            _ => fail(irp, NtStatus::INSUFFICIENT_RESOURCES),
        }
    }

    fn ioctl(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
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
                        // The version NDIS accepted: 6.89 where it has it.
                        ndis: registered_version().unwrap_or((NDIS_PROTOCOL_MAJOR_VERSION, NDIS_MINOR_VERSION_630)),
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
            IOCTL_RAWNIC_RING_ATTACH => self.ring_attach(file, irp),
            IOCTL_RAWNIC_RING_DETACH => self.ring_detach(file, irp),
            IOCTL_RAWNIC_RING_WAIT => self.ring_wait(file, irp),
            IOCTL_RAWNIC_RING_KICK => self.ring_kick(file, irp),
            IOCTL_RAWNIC_SET_PROGRAM => self.set_program(file, irp),
            _ => fail(irp, NtStatus::INVALID_DEVICE_REQUEST),
        }
    }

    fn cancel(&self, file: &Arc<Client>, id: IrpId) {
        let mut binding = None;
        let mut oid = None;
        {
            let mut st = file.state.lock();
            if let Some(p) = st.take_pending(id) {
                drop(st);
                p.complete(NtStatus::CANCELLED, 0);
                return;
            }
            if let Some(r) = st.rings.clone() {
                if r.attach_id == id {
                    // The attach was cancelled: a detach (it completes once
                    // the UMEM's sends are back).
                    st.rings = None;
                    drop(st);
                    r.detach(NtStatus::CANCELLED);
                    return;
                }
                let wait = r.take_wait(id);
                if let Some(p) = wait {
                    drop(st);
                    p.complete(NtStatus::CANCELLED, 0);
                    return;
                }
            }
            let open = match &st.mode {
                Mode::Open { binding: b, .. } => Some(b.clone()),
                _ => None,
            };
            if let Some(o) = st.oids.iter_mut().find(|o| o.irp == id) {
                oid = o.oid;
                binding = open;
                // Marked only when the cancel goes on: from here, or from
                // the sender once the id is known. A closed handle's
                // cleanup cancels the requests not marked, and must not
                // skip one whose cancel went nowhere.
                if binding.is_some() || oid.is_none() {
                    o.cancel_requested = true;
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
            p.complete(NtStatus::CANCELLED, 0);
        }
    }
}

fn send_error(e: SendError) -> NtStatus {
    match e {
        SendError::NotRunning => NtStatus::DEVICE_NOT_READY,
        SendError::NoResources => NtStatus::INSUFFICIENT_RESOURCES,
    }
}

/// Frames of a SEND_BATCH copied and sent under one hold of the send gate.
const SEND_CHUNK: usize = 64;

fn count_in_flight(file: &Client, binding: &Binding<Rawnic>, n: u64) {
    file.counters.tx_in_flight.fetch_add(n, Ordering::Relaxed);
    binding.counters.tx_in_flight.fetch_add(n, Ordering::Relaxed);
}

impl Rawnic {
    fn list(&self, mut irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        if irp.output_len() < ListHeader::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        // An adapter whose bind failed (for want of memory, say) is offered
        // again: it shows in a later listing once bound.
        offer_declined_again(&irp);
        // So is a packet filter or multicast union an adapter failed to
        // take.
        self.set_all_owed();
        let out = irp.output();
        let mut off = ListHeader::LEN;
        let mut needed = ListHeader::LEN;
        let (mut count, mut total) = (0u32, 0u32);
        {
            // Written straight from the bindings, under their locks: a
            // listing allocates nothing. Lock order: the binding list, a
            // binding's client table, its info, the wrapper's lock.
            let bindings = self.bindings.lock();
            for b in bindings.iter() {
                let handles = b.clients.lock().len() as u32;
                let state = b.state().wire();
                let info = b.info.lock();
                let link = match info.link.connect_state {
                    MediaConnectStateConnected => link::UP,
                    MediaConnectStateDisconnected => link::DOWN,
                    _ => link::UNKNOWN,
                };
                let e = BindingEntry {
                    binding_id: b.id,
                    state,
                    link,
                    duplex: info.link.duplex_state as u8,
                    mtu: info.mtu,
                    xmit_speed: info.link.xmit_speed,
                    rcv_speed: info.link.rcv_speed,
                    mac: b.mac,
                    packet_filter: info.packet_filter,
                    open_handles: handles,
                    supported_filter: info.supported_filters,
                    refused_filter: info.refused_filters,
                    name: &b.name,
                    description: &info.description,
                };
                let len = e.wire_len();
                needed += len;
                total += 1;
                if off + len <= out.len() && e.emit(&mut out[off..off + len]).is_ok() {
                    off += len;
                    count += 1;
                }
            }
        }
        let header = ListHeader { count, needed: needed as u32 };
        let _ = header.emit(&mut out[..ListHeader::LEN]);
        let status = if count == total { NtStatus::SUCCESS } else { NtStatus::BUFFER_OVERFLOW };
        irp.complete(status, off)
    }

    fn wait_binds(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        if irp.output_len() < BindsCompleteReply::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let mut binds = self.binds.lock();
        // A request that was in flight when its handle closed can reach
        // the driver after the cleanup: it is refused as every request
        // there is, binds complete or not (queued, it would wait for a
        // cleanup that has passed). Looked at with the list's lock held,
        // which the cleanup takes after it marks the handle closed.
        if matches!(file.state.lock().mode, Mode::Closed) {
            drop(binds);
            return fail(irp, NtStatus::INVALID_DEVICE_STATE);
        }
        if binds.complete {
            drop(binds);
            let n = self.bindings.lock().len() as u32;
            return reply(irp, BindsCompleteReply::LEN, |out| BindsCompleteReply { bindings: n }.emit(out));
        }
        // A handle's waits count against its WAIT_EVENT bound.
        let mine = binds.waiters.iter().filter(|(id, _)| *id == file.id).count();
        if mine >= MAX_HANDLE_EVENT_WAITS || binds.waiters.try_reserve(1).is_err() {
            drop(binds);
            return fail(irp, NtStatus::INSUFFICIENT_RESOURCES);
        }
        let (d, p) = irp.pend::<Rawnic>();
        match p.arm_cancel() {
            Armed::Queued(p) => binds.waiters.push_back((file.id, p)),
            Armed::Cancelled(p) => {
                drop(binds);
                p.complete(NtStatus::CANCELLED, 0);
            }
        }
        d
    }

    fn open(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        // Everything is checked before anything changes.
        let (name, mut filter, frames, bytes, snaplen, local_sends, strict) =
            match OpenRequest::new_checked(irp.input()) {
                Ok(r) => (
                    match try_string(r.name()) {
                        Ok(n) => n,
                        Err(_) => return fail(irp, NtStatus::INSUFFICIENT_RESOURCES),
                    },
                    RxFilter::new(r.packet_filter(), r.ethertypes()),
                    r.queue_frames(),
                    r.queue_bytes(),
                    r.snaplen(),
                    r.local_sends(),
                    r.strict_filter(),
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
                drop(st);
                return fail(irp, NtStatus::INVALID_DEVICE_STATE);
            }
            st.mode = Mode::Opening;
        }
        // A failed OPEN leaves the handle as it found it, unless its
        // cleanup ran meanwhile: a closed handle stays closed (an OPEN that
        // reaches it after the cleanup must not put it on a binding).
        let reset = |file: &Client| {
            let mut st = file.state.lock();
            if matches!(st.mode, Mode::Opening) {
                st.mode = Mode::Unopened;
            }
        };
        let Some(binding) = self.find_binding(&name) else {
            reset(file);
            // Perhaps its bind failed: offered again, it may open later.
            offer_declined_again(&irp);
            return fail(irp, NtStatus::OBJECT_NAME_NOT_FOUND);
        };
        let receives = !filter.receives_nothing();
        let (mtu, mac, done) = {
            let mut table = binding.clients.lock();
            let info = binding.info.lock();
            if info.closing {
                drop(info);
                drop(table);
                reset(file);
                return fail(irp, NtStatus::OBJECT_NAME_NOT_FOUND);
            }
            let (mtu, mac) = (info.mtu, binding.mac);
            // The handle gets what the adapter allows; a strict open, or
            // one that would get nothing, fails instead.
            let lost = filter.restrict(info.allowed_filters());
            drop(info);
            if receives && (filter.packet_filter().is_empty() || (strict && !lost.is_empty())) {
                drop(table);
                reset(file);
                return fail(irp, NtStatus::NOT_SUPPORTED);
            }
            let tag = match table.insert(file.clone(), receives) {
                Ok(t) => {
                    binding.set_listeners(&table);
                    t
                }
                Err(_) => {
                    drop(table);
                    reset(file);
                    return fail(irp, NtStatus::INSUFFICIENT_RESOURCES);
                }
            };
            let mut st = file.state.lock_dpr(table.at_dispatch());
            if !matches!(st.mode, Mode::Opening) {
                // The handle was cleaned up meanwhile.
                drop(st);
                table.remove(tag, receives);
                binding.set_listeners(&table);
                drop(table);
                return fail(irp, NtStatus::INVALID_DEVICE_STATE);
            }
            st.filter = filter;
            let mut done = Completions::new();
            if !lost.is_empty() {
                st.events.push_record(EventRecord {
                    kind: event::FILTER_REFUSED,
                    binding_id: binding.id,
                    filter: filter.packet_filter(),
                    refused: lost,
                    ..EventRecord::default()
                });
                // A wait the handle already has gets it.
                st.serve_event_waits(&mut done);
            }
            st.local_sends = local_sends;
            st.snaplen = snaplen;
            st.ring = RxRing::bounded(frames as usize, bytes as usize, &QUEUES_POOL);
            st.mode = Mode::Open { binding: binding.clone(), slot: tag };
            (mtu, mac, done)
        };
        done.complete();
        if receives {
            self.update_packet_filter(&binding);
        }
        let id = binding.id;
        let packet_filter = filter.packet_filter();
        reply(irp, OpenReply::LEN, |out| OpenReply { binding_id: id, mtu, mac, packet_filter }.emit(out))
    }

    fn send_batch(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        let (binding, tag) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        if irp.output_len() < SendReply::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let max_frame = binding.send_shape().max_frame;
        let batch = match SendBatch::new_checked(irp.input(), max_frame) {
            Ok(b) => b,
            Err(e) => return fail(irp, e.status()),
        };
        // The frames go in chunks, each copied and sent under one hold of
        // the send gate (at DISPATCH_LEVEL, holding off a pause): a batch
        // of 4,096 jumbo frames would otherwise hold it for milliseconds.
        let (mut accepted, mut bytes) = (0usize, 0u64);
        let mut frames = batch.frames().peekable();
        while frames.peek().is_some() {
            let want = (batch.count() as usize - accepted).min(SEND_CHUNK);
            let mut gate = GateState::new();
            let mut nbls = match binding.begin_send(&mut gate, want) {
                Ok(s) => s,
                Err(e) if accepted == 0 => return fail(irp, send_error(e)),
                // Paused or out of buffers after some went: the reply says
                // how many (the caller sends the rest again).
                Err(_) => break,
            };
            // A tag goes in the NBL's 802.1Q info when the adapter puts it
            // on the wire, else into the frame: as its MAC options are while
            // these NBLs are out (a restart since the shape was read above
            // may have changed them; `push` checks the length again too).
            let offload = super::binding::offload(nbls.mac_options());
            let chunk = frames.clone();
            while let Some(f) = frames.peek() {
                if !nbls.push(f.data, TagPlacement::for_send(offload, f.tci), tag) {
                    break;
                }
                frames.next();
            }
            let pushed = nbls.len();
            count_in_flight(file, &binding, pushed as u64);
            let (n, b) = nbls.send();
            super::local::deliver(
                &binding,
                file.id,
                chunk.take(n).map(|f| (f.data, TagPlacement::for_send(offload, f.tci))),
            );
            accepted += n;
            bytes += b;
            // A frame the binding refused (its MTU shrank), or fewer
            // buffers than asked for: the batch ends here.
            if pushed < want {
                break;
            }
        }
        let accepted = accepted as u32;
        reply(irp, SendReply::LEN, |out| SendReply { accepted, bytes }.emit(out))
    }

    fn stats(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        let (binding, _) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        // A handle that asks why no frame comes: a packet filter or
        // multicast union the adapter failed to take is set again.
        self.set_owed(&binding);
        // While the adapter owes the filter (a set failed, or could not be
        // sent, and none succeeded since), a handle gets what the
        // adapter's filter, unchanged, takes of its own; `FILTER_PENDING`
        // says when that is for a passing reason (tried again), not a
        // failure no bit can be blamed for (told by `FILTER_FAILED`).
        let (has, passing) = super::filter::granted(&binding);
        let (queued_frames, queued_bytes, requested_filter, wanted) = {
            let st = file.state.lock();
            (st.ring.len() as u32, st.ring.bytes() as u64, st.filter.requested(), st.filter.packet_filter())
        };
        let effective_filter = gets(wanted, has);
        let flags = if passing && effective_filter != wanted { stats_flags::FILTER_PENDING } else { 0 };
        let r = StatsReply {
            flags,
            queued_frames,
            queued_bytes,
            requested_filter,
            effective_filter,
            handle: file.counters.snapshot(),
            binding: binding.counters.snapshot(),
        };
        reply(irp, StatsReply::LEN, |out| r.emit(out))
    }

    fn wait_event(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return fail(irp, e.status());
        }
        if irp.output_len() < EventRecord::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let mut done = Completions::new();
        let mut st = file.state.lock();
        // After the handle's cleanup nothing more, events still queued
        // included (as every other request then); an orphaned handle
        // still gets the events queued before its binding went.
        if let Some(ev) = (!matches!(st.mode, Mode::Closed)).then(|| st.events.pop()).flatten() {
            drop(st);
            return reply(irp, EventRecord::LEN, |out| ev.emit(out));
        }
        let refused = match st.mode {
            Mode::Orphaned => Some(NtStatus::DEVICE_REMOVED),
            Mode::Closed => Some(NtStatus::INVALID_DEVICE_STATE),
            _ => None,
        };
        if let Some(s) = refused {
            // Not under the handle's lock.
            drop(st);
            return fail(irp, s);
        }
        let (d, p) = irp.pend::<Rawnic>();
        enqueue(&mut st.event_waits, MAX_HANDLE_EVENT_WAITS, p, &mut done);
        drop(st);
        done.complete();
        d
    }
}
