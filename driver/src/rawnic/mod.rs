//! The driver logic: what rawnic does with each NDIS event and each user
//! request. No `unsafe`: everything goes through the wrapper's types.

#![allow(non_upper_case_globals)]

mod binding;
mod client;
mod control;

use crate::kernel::debug::{LEVEL_ERROR, LEVEL_INFO};
use crate::kernel::device::PendingIrp;
use crate::kernel::entry::Driver;
use crate::kernel::nbl::{Indication, CHUNK};
use crate::kernel::oid::{OidCompletion, OidId, OidKind, OidRequest, Submitted};
use crate::kernel::protocol::{
    BindParams, Binding, LinkState, NdisStatus, Protocol, RestartInfo, RestartToken, UnbindToken,
};
use crate::kernel::sync::SpinLock;
use crate::kernel::time;
use crate::kprint;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use binding::{BindingInfo, ClientTable, RawnicBinding, RestartProgress};
use client::{AtomicCounters, Client, Completions, Mode};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use ndis_sys::*;
use proto::{event, frame_flags, FrameHeader};
use rawnic_logic::filter::{classify, ethertypes, DestClass};
use rawnic_logic::time::Clock;

/// Frames at least this long are retained (not copied) when the handle has
/// no read waiting: the copy into the queue is saved.
const RETAIN_MIN: u32 = 256;
/// Most retained frames one handle's queue holds. A handle that reaches it
/// has a reader that fell behind: its retained frames are copied into the
/// queue (their NBLs returned) and its frames are copied, not retained,
/// until its queue is empty again. (Retaining more would only move the
/// copy later, at the cost of a retention and a return per frame.)
const RETAIN_PER_CLIENT: usize = 16;

/// Whose OID request it is.
pub enum OidTag {
    /// A user's QUERY_OID / SET_OID: the IRP completes with the result.
    User { client: Arc<Client>, irp: PendingIrp },
    /// The adapter's description, after the open.
    Description,
    /// Link state, during a restart (the attributes did not carry it).
    Link,
    /// RSS capabilities, during a restart (the attributes did not carry them).
    Rss,
    /// The packet filter the handles need.
    PacketFilter { value: u32, restart: bool },
}

struct BindsState {
    complete: bool,
    /// (handle id, request) waiting for binds to complete.
    waiters: VecDeque<(u32, PendingIrp)>,
}

/// The driver's global state.
pub struct Rawnic {
    bindings: SpinLock<Vec<Arc<Binding<Rawnic>>>>,
    binds: SpinLock<BindsState>,
    clients: SpinLock<Vec<Weak<Client>>>,
    next_binding: AtomicU32,
    next_client: AtomicU32,
    clock: Clock,
    /// `ProtocolUninstall` came: no new binding is opened by a handle.
    uninstalling: AtomicBool,
}

const fn parse_u8(s: &str) -> u8 {
    let b = s.as_bytes();
    let mut v: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    assert!(v < 256);
    v as u8
}

impl Driver for Rawnic {
    fn new() -> Self {
        let (ticks, freq) = time::performance_counter();
        Rawnic {
            bindings: SpinLock::new(Vec::new()),
            binds: SpinLock::new(BindsState { complete: false, waiters: VecDeque::new() }),
            clients: SpinLock::new(Vec::new()),
            next_binding: AtomicU32::new(1),
            next_client: AtomicU32::new(1),
            clock: Clock::new(time::system_time(), ticks, freq),
            uninstalling: AtomicBool::new(false),
        }
    }

    const VERSION: (u8, u8) =
        (parse_u8(env!("CARGO_PKG_VERSION_MAJOR")), parse_u8(env!("CARGO_PKG_VERSION_MINOR")));
}

fn link_up(l: &LinkState) -> bool {
    l.connect_state == MediaConnectStateConnected
}

impl Rawnic {
    /// Open handles (for events).
    fn clients(&self) -> Vec<Arc<Client>> {
        let mut list = self.clients.lock();
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// Posts an event to every handle that watches `binding_id`.
    fn post_event(&self, kind: u16, binding_id: u32, speed: u64, mtu: u32) {
        let mut done = Completions::new();
        for c in self.clients() {
            let mut st = c.state.lock();
            if c.watches(&st, binding_id) {
                st.post_event(kind, binding_id, speed, mtu, &mut done);
            }
        }
        done.complete();
    }

    /// A binding that is not closing, by adapter name (case-insensitive).
    fn find_binding(&self, name: &str) -> Option<Arc<Binding<Rawnic>>> {
        let found = self.bindings.lock().iter().find(|b| b.name.eq_ignore_ascii_case(name)).cloned()?;
        let closing = found.info.lock().closing;
        (!closing).then_some(found)
    }

    /// Sends an internal OID request, keeping its id for cancellation.
    /// Returns false (nothing sent) when the binding is closing.
    fn internal_oid(&'static self, b: &Arc<Binding<Rawnic>>, kind: OidKind, oid: u32, data: Vec<u8>, tag: OidTag) -> bool {
        if b.info.lock().closing {
            return false;
        }
        let sub = b.request_oid(OidRequest { kind, oid, data, tag }, |id| b.info.lock().oids_pending.push(id));
        if let Submitted::Done(c) = sub {
            self.oid_complete(b, c);
        }
        true
    }

    /// Sets the adapter's packet filter to what the handles need, if it
    /// changed and the binding runs (a restart sets it too).
    fn update_packet_filter(&'static self, b: &Arc<Binding<Rawnic>>) {
        let wanted = {
            let table = b.clients.lock();
            let supported = b.info.lock().supported_filters;
            b.wanted_filter(&table, supported)
        };
        let send = {
            let mut info = b.info.lock();
            if info.closing || info.restart.is_some() || !matches!(b.state(), rawnic_logic::state::BindingState::Running) {
                false
            } else if info.filter_in_flight {
                info.filter_dirty = true;
                false
            } else if info.packet_filter != wanted {
                info.filter_in_flight = true;
                true
            } else {
                false
            }
        };
        if send {
            self.internal_oid(
                b,
                OidKind::Set,
                OID_GEN_CURRENT_PACKET_FILTER,
                wanted.to_le_bytes().to_vec(),
                OidTag::PacketFilter { value: wanted, restart: false },
            );
        }
    }

    /// One restart OID finished; the last one completes the restart.
    fn restart_step(&'static self, b: &Arc<Binding<Rawnic>>, failure: Option<i32>) {
        let finished = {
            let mut info = b.info.lock();
            let Some(p) = info.restart.as_mut() else { return };
            if failure.is_some() && p.failed.is_none() {
                p.failed = failure;
            }
            p.waiting -= 1;
            if p.waiting == 0 {
                info.restart.take()
            } else {
                None
            }
        };
        if let Some(p) = finished {
            p.token.complete(match p.failed {
                None => Ok(()),
                Some(s) => Err(s),
            });
        }
    }

    /// An unbinding binding whose last OID completed: close it.
    fn maybe_close(&self, b: &Binding<Rawnic>) {
        let token = {
            let mut info = b.info.lock();
            if info.closing && info.oids_pending.is_empty() {
                info.unbind.take()
            } else {
                None
            }
        };
        if let Some(t) = token {
            t.close();
        }
    }
}

impl Protocol for Rawnic {
    type Binding = RawnicBinding;
    type OidTag = OidTag;

    const NAME: &'static [u16] = crate::wstr!(proto::PROTOCOL_NAME);

    fn create_binding(&'static self, p: &BindParams) -> Result<RawnicBinding, NdisStatus> {
        kprint!(LEVEL_INFO, "binding to {} (MTU {})", p.adapter_name, p.mtu);
        Ok(RawnicBinding {
            id: self.next_binding.fetch_add(1, Ordering::Relaxed),
            name: p.adapter_name.clone(),
            mac: p.mac,
            info: SpinLock::new(BindingInfo {
                mtu: p.mtu,
                link: LinkState {
                    connect_state: p.connect_state,
                    duplex_state: p.duplex_state,
                    xmit_speed: p.xmit_speed,
                    rcv_speed: p.rcv_speed,
                },
                max_xmit_speed: p.max_xmit_speed,
                lookahead: p.lookahead,
                mac_options: p.mac_options,
                supported_filters: p.supported_packet_filters,
                description: String::new(),
                filter_modules: Vec::new(),
                rss: None,
                packet_filter: 0,
                filter_in_flight: false,
                filter_dirty: false,
                oids_pending: Vec::new(),
                restart: None,
                unbind: None,
                closing: false,
                restarts: 0,
            }),
            clients: SpinLock::new(ClientTable::new()),
            counters: AtomicCounters::default(),
        })
    }

    fn open_complete(&'static self, b: &Arc<Binding<Self>>, result: Result<(), NdisStatus>) {
        match result {
            Ok(()) => {
                self.bindings.lock().push(b.clone());
                // The friendly description; the binding is usable without it.
                self.internal_oid(b, OidKind::Query, OID_GEN_VENDOR_DESCRIPTION, vec![0; 256], OidTag::Description);
                let mtu = b.info.lock().mtu;
                self.post_event(event::BOUND, b.id, 0, mtu);
            }
            Err(s) => kprint!(LEVEL_ERROR, "opening {} failed: {s:#x}", b.name),
        }
    }

    fn unbind(&'static self, b: &Arc<Binding<Self>>, token: UnbindToken<Self>) {
        // The binding stays listed (as closing) until the close completes.
        let pending: Vec<OidId> = {
            let mut info = b.info.lock();
            info.closing = true;
            info.unbind = Some(token);
            info.oids_pending.clone()
        };
        // Handles on it lose it: their reads fail, their waits learn why.
        let clients = b.clients.lock().drain();
        let mut done = Completions::new();
        for c in &clients {
            let mut st = c.state.lock();
            st.mode = Mode::Orphaned;
            st.ring.clear();
            st.post_event(event::UNBOUND, b.id, 0, 0, &mut done);
            st.fail_pending(STATUS_DEVICE_REMOVED, &mut done);
        }
        done.complete();
        // Handles not bound to an adapter hear of it too.
        for c in self.clients() {
            let mut done = Completions::new();
            let mut st = c.state.lock();
            if matches!(st.mode, Mode::Unopened) {
                st.post_event(event::UNBOUND, b.id, 0, 0, &mut done);
            }
            drop(st);
            done.complete();
        }
        for id in pending {
            b.cancel_oid(id);
        }
        self.maybe_close(b);
    }

    fn closed(&'static self, b: &Arc<Binding<Self>>) {
        self.bindings.lock().retain(|x| !Arc::ptr_eq(x, b));
        kprint!(LEVEL_INFO, "closed {}", b.name);
    }

    fn pausing(&'static self, b: &Arc<Binding<Self>>) {
        // Give back every retained receive: copy it into its queue slot.
        let table = b.clients.lock();
        for c in table.iter() {
            c.state.lock_dpr(table.at_dispatch()).ring.materialize_all();
        }
    }

    fn paused(&'static self, b: &Arc<Binding<Self>>) {
        self.post_event(event::PAUSED, b.id, 0, 0);
    }

    fn restart(&'static self, b: &Arc<Binding<Self>>, info: RestartInfo, token: RestartToken<Self>) {
        // What the attributes say, instead of asking with OIDs.
        let old_mtu;
        let mut need_link = info.link.is_none();
        let mut need_rss = true;
        {
            let mut bi = b.info.lock();
            old_mtu = bi.mtu;
            bi.restarts += 1;
            if let Some(g) = &info.general {
                bi.mtu = g.mtu;
                bi.lookahead = g.lookahead;
                bi.mac_options = g.mac_options;
                bi.max_xmit_speed = g.max_xmit_speed;
                if g.supported_packet_filters != 0 {
                    bi.supported_filters = g.supported_packet_filters;
                }
                if g.has_rss_capabilities {
                    bi.rss = Some(true);
                    need_rss = false;
                }
            }
            if let Some(l) = info.link {
                bi.link = l;
                need_link = false;
            }
            bi.filter_modules = info.filter_modules.clone();
        }
        if info.malformed {
            kprint!(LEVEL_ERROR, "{}: malformed restart parameters", b.name);
        }
        kprint!(
            LEVEL_INFO,
            "restart {}: mtu {} filter modules {:?} general attributes {} link {}",
            b.name,
            info.general.map_or(0, |g| g.mtu),
            info.filter_modules,
            if info.general.is_some() { "given" } else { "absent" },
            if info.link.is_some() { "given" } else { "queried" },
        );
        // The send buffers follow the MTU.
        let mtu = b.info.lock().mtu;
        if mtu != old_mtu && b.resize_send_pool(mtu).is_err() {
            kprint!(LEVEL_ERROR, "{}: no memory for MTU {mtu}", b.name);
            b.info.lock().mtu = old_mtu;
            token.complete(Err(NDIS_STATUS_RESOURCES));
            return;
        }
        // The stack below may have changed while paused: set the packet
        // filter again, and ask what the attributes did not tell.
        let wanted = {
            let table = b.clients.lock();
            let supported = b.info.lock().supported_filters;
            b.wanted_filter(&table, supported)
        };
        let mut oids: Vec<(OidKind, u32, Vec<u8>, OidTag)> = Vec::new();
        if need_link {
            oids.push((OidKind::Query, OID_GEN_LINK_STATE, vec![0; core::mem::size_of::<NDIS_LINK_STATE>()], OidTag::Link));
        }
        if need_rss {
            oids.push((OidKind::Query, OID_GEN_RECEIVE_SCALE_CAPABILITIES, vec![0; 64], OidTag::Rss));
        }
        if wanted != 0 || b.info.lock().packet_filter != 0 {
            oids.push((
                OidKind::Set,
                OID_GEN_CURRENT_PACKET_FILTER,
                wanted.to_le_bytes().to_vec(),
                OidTag::PacketFilter { value: wanted, restart: true },
            ));
        }
        if oids.is_empty() {
            token.complete(Ok(()));
            return;
        }
        {
            let mut bi = b.info.lock();
            // One extra step for this function, so completions that come
            // while requests are still being sent cannot finish early.
            bi.restart = Some(RestartProgress { token, waiting: oids.len() as u32 + 1, failed: None });
            if wanted != 0 {
                bi.filter_in_flight = true;
            }
        }
        for (kind, oid, data, tag) in oids {
            if !self.internal_oid(b, kind, oid, data, tag) {
                self.restart_step(b, None);
            }
        }
        self.restart_step(b, None);
    }

    fn restarted(&'static self, b: &Arc<Binding<Self>>, running: bool) {
        let mtu = b.info.lock().mtu;
        if running {
            self.post_event(event::RESTARTED, b.id, 0, mtu);
            // Handles that opened while the binding was paused.
            self.update_packet_filter(b);
        } else {
            kprint!(LEVEL_ERROR, "{}: restart failed; the binding stays paused", b.name);
        }
    }

    fn binds_complete(&'static self) {
        let count = self.bindings.lock().len() as u32;
        let waiters = {
            let mut st = self.binds.lock();
            st.complete = true;
            core::mem::take(&mut st.waiters)
        };
        for (_, mut irp) in waiters {
            let n = proto::BindsCompleteReply { bindings: count }.emit(irp.output()).unwrap_or(0);
            irp.complete(STATUS_SUCCESS, n);
        }
    }

    fn receive(&'static self, b: &Binding<Self>, ind: &mut Indication<'_, Self>) {
        #[derive(Clone, Copy, Default)]
        struct Meta {
            len: u32,
            outer: u16,
            inner: Option<u16>,
            class: Option<DestClass>,
        }
        let table = b.clients.lock_at(ind.irql());
        let ts = self.clock.unix_ns(time::ticks());
        let mut done = Completions::new();
        let (mut frames, mut bytes) = (0u64, 0u64);
        while let Some(mut chunk) = ind.next_chunk() {
            let n = chunk.frames().len();
            let mut meta = [Meta::default(); CHUNK];
            for (m, f) in meta.iter_mut().zip(chunk.frames()) {
                let mut scratch = [0u8; 18];
                let hdr = f.head(&mut scratch);
                let (outer, inner) = ethertypes(hdr);
                *m = Meta { len: f.len() as u32, outer, inner, class: Some(classify(&hdr[..hdr.len().min(6)], &b.mac)) };
                bytes += f.len() as u64;
            }
            frames += n as u64;
            if table.receivers == 0 {
                continue;
            }
            for c in table.iter() {
                let mut st = c.state.lock_dpr(table.at_dispatch());
                if st.filter.receives_nothing() {
                    continue;
                }
                let (mut q_frames, mut q_bytes, mut drops, mut cut) = (0u64, 0u64, 0u64, 0u64);
                for (i, m) in meta.iter().enumerate().take(n) {
                    let class = m.class.unwrap_or(DestClass::OtherHost);
                    if !st.filter.accepts(class, m.outer, m.inner) {
                        continue;
                    }
                    let frame = chunk.frames()[i];
                    let caplen = if st.snaplen != 0 { m.len.min(st.snaplen) } else { m.len };
                    let mut flags = 0;
                    if caplen < m.len {
                        flags |= frame_flags::TRUNCATED;
                    }
                    if frame.tci() != 0 {
                        flags |= frame_flags::VLAN;
                    }
                    let hdr = FrameHeader { caplen, origlen: m.len, timestamp_ns: ts, flags, tci: frame.tci() };
                    let mut queued = None;
                    if st.behind && st.ring.is_empty() {
                        st.behind = false;
                    }
                    if m.len >= RETAIN_MIN && !st.behind && st.reads.is_empty() && !chunk.must_copy() {
                        if st.ring.pending_count() >= RETAIN_PER_CLIENT {
                            st.ring.materialize_all();
                            st.behind = true;
                        } else if let Some(r) = chunk.retain(i) {
                            queued = Some(st.ring.push_pending(&hdr, r).is_ok());
                        }
                    }
                    let ok = match queued {
                        Some(ok) => ok,
                        None => st.ring.push_with(&hdr, |d| frame.copy_to(0, d)).is_ok(),
                    };
                    if ok {
                        q_frames += 1;
                        q_bytes += m.len as u64;
                        if flags & frame_flags::TRUNCATED != 0 {
                            cut += 1;
                        }
                    } else {
                        drops += 1;
                    }
                }
                st.serve_reads(&mut done);
                drop(st);
                let k = &c.counters;
                AtomicCounters::add(&k.rx_frames, q_frames);
                AtomicCounters::add(&k.rx_bytes, q_bytes);
                AtomicCounters::add(&k.rx_queue_drops, drops);
                AtomicCounters::add(&k.rx_truncated, cut);
                AtomicCounters::add(&b.counters.rx_queue_drops, drops);
                AtomicCounters::add(&b.counters.rx_truncated, cut);
            }
        }
        drop(table);
        AtomicCounters::add(&b.counters.rx_frames, frames);
        AtomicCounters::add(&b.counters.rx_bytes, bytes);
        done.complete();
    }

    fn send_complete(&'static self, b: &Binding<Self>, done: &mut dyn Iterator<Item = (u32, u32, NdisStatus)>) {
        /// Completions counted together: consecutive ones of one handle (a
        /// batch comes back as a run of NBLs with the same tag), or all.
        #[derive(Default, Clone, Copy)]
        struct Tally {
            ok: u64,
            bytes: u64,
            bad: u64,
        }
        impl Tally {
            fn add_to(&self, k: &AtomicCounters) {
                if self.ok != 0 {
                    AtomicCounters::add(&k.tx_frames, self.ok);
                    AtomicCounters::add(&k.tx_bytes, self.bytes);
                }
                if self.bad != 0 {
                    AtomicCounters::add(&k.tx_errors, self.bad);
                }
                k.tx_in_flight.fetch_sub(self.ok + self.bad, Ordering::Relaxed);
            }
        }
        let table = b.clients.lock();
        let mut all = Tally::default();
        let mut run = Tally::default();
        let mut run_tag = 0;
        let flush = |run: &mut Tally, tag: u32, all: &mut Tally| {
            if let Some(c) = table.by_tag(tag) {
                run.add_to(&c.counters);
            }
            all.ok += run.ok;
            all.bytes += run.bytes;
            all.bad += run.bad;
            *run = Tally::default();
        };
        for (tag, bytes, status) in done {
            if tag != run_tag {
                if run.ok + run.bad != 0 {
                    flush(&mut run, run_tag, &mut all);
                }
                run_tag = tag;
            }
            if status == NDIS_STATUS_SUCCESS {
                run.ok += 1;
                run.bytes += bytes as u64;
            } else {
                run.bad += 1;
            }
        }
        if run.ok + run.bad != 0 {
            flush(&mut run, run_tag, &mut all);
        }
        drop(table);
        all.add_to(&b.counters);
    }

    fn oid_complete(&'static self, b: &Arc<Binding<Self>>, done: OidCompletion<OidTag>) {
        b.info.lock().oids_pending.retain(|id| *id != done.id);
        let ok = done.status == NDIS_STATUS_SUCCESS;
        match done.tag {
            OidTag::User { client, irp } => control::finish_user_oid(&client, irp, done.id, done.kind, done.status, &done.data, done.bytes, done.bytes_needed),
            OidTag::Description => {
                if ok {
                    let text = &done.data[..];
                    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
                    let desc: String = text[..end].iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }).collect();
                    b.info.lock().description = desc;
                }
            }
            OidTag::Link => {
                if ok && done.data.len() >= core::mem::size_of::<NDIS_LINK_STATE>() {
                    let d = &done.data;
                    let u32_at = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
                    let u64_at = |o: usize| u64::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3], d[o + 4], d[o + 5], d[o + 6], d[o + 7]]);
                    b.info.lock().link = LinkState {
                        connect_state: u32_at(4),
                        duplex_state: u32_at(8),
                        xmit_speed: u64_at(16),
                        rcv_speed: u64_at(24),
                    };
                }
                self.restart_step(b, None);
            }
            OidTag::Rss => {
                b.info.lock().rss = Some(ok);
                self.restart_step(b, None);
            }
            OidTag::PacketFilter { value, restart } => {
                let again = {
                    let mut info = b.info.lock();
                    info.filter_in_flight = false;
                    if ok {
                        info.packet_filter = value;
                    }
                    core::mem::take(&mut info.filter_dirty)
                };
                if restart {
                    self.restart_step(b, (!ok).then_some(done.status));
                }
                if !ok {
                    kprint!(LEVEL_ERROR, "{}: setting packet filter {value:#x} failed: {:#x}", b.name, done.status);
                }
                if again {
                    self.update_packet_filter(b);
                }
            }
        }
        self.maybe_close(b);
    }

    fn uninstall(&'static self) {
        // The protocol is being uninstalled: its bindings go next (through
        // the usual unbinds). Handles may not open a binding any more, and
        // whoever waits for binds to complete is told how many there are.
        kprint!(LEVEL_INFO, "uninstalling");
        self.uninstalling.store(true, Ordering::Release);
        self.binds_complete();
    }

    fn link_changed(&'static self, b: &Binding<Self>, link: LinkState) {
        let was_up = {
            let mut info = b.info.lock();
            let was = link_up(&info.link);
            info.link = link;
            was
        };
        let up = link_up(&link);
        if up != was_up || up {
            self.post_event(if up { event::LINK_UP } else { event::LINK_DOWN }, b.id, link.xmit_speed, 0);
        }
    }
}
