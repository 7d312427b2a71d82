//! The driver logic: what rawnic does with each NDIS event and each user
//! request. No `unsafe`: everything goes through the wrapper's types.
//!
//! Every allocation on a request, bind or PnP path is fallible (the
//! `kernel::alloc::try_*` helpers, `try_reserve`): a failed one fails the
//! request with `STATUS_INSUFFICIENT_RESOURCES`, the bind with
//! `NDIS_STATUS_RESOURCES`, or the restart (back to Paused); none panics.

#![allow(non_upper_case_globals)]

mod binding;
mod client;
mod control;
mod filter;
mod local;
mod multicast;
mod program;
mod receive;
mod rings;
mod user_oid;

use crate::kernel::alloc::{try_string, try_zeroed};
use crate::kernel::debug::{LEVEL_ERROR, LEVEL_INFO};
use crate::kernel::device::PendingIrp;
use crate::kernel::entry::Driver;
use crate::kernel::nbl::{Indication, ZcReturns};
use crate::kernel::oid::{OidCompletion, OidKind, OidRequest, Submitted};
use crate::kernel::protocol::{
    BindParams, Binding, LinkState, NdisStatus, Protocol, RestartInfo, RestartToken, SendGateError,
};
use crate::kernel::sync::SpinLock;
use crate::kprint;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use binding::{BindingInfo, ClientTable, FilterSet, ListPlace, RawnicBinding, RestartProgress};
use client::{AtomicCounters, Client, Completions, Mode};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use ndis_sys::*;
use rawnic_logic::multicast::MulticastList;
use rawnic_proto::{NtStatus, PacketFilter, event};

/// Whose OID request it is.
pub enum OidTag {
    /// A user's QUERY_OID / SET_OID: the IRP completes with the result.
    User { client: Arc<Client>, irp: PendingIrp },
    /// The adapter's description, after the open.
    Description,
    /// Link state, during a restart (the attributes did not carry it),
    /// with the count of link indications recorded when it was sent.
    Link(u32),
    /// RSS capabilities, during a restart (the attributes did not carry them).
    Rss,
    /// The packet filter the handles need.
    PacketFilter(FilterSet),
    /// A user's multicast list set (`multicast.rs`): the union sent, the
    /// handle's list before, and the generation of the union.
    UserMulticast { client: Arc<Client>, irp: PendingIrp, old: MulticastList, generation: u64 },
    /// The driver's set of the union of the handles' multicast lists.
    Multicast { generation: u64 },
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
        Rawnic {
            bindings: SpinLock::new(Vec::new()),
            binds: SpinLock::new(BindsState { complete: false, waiters: VecDeque::new() }),
            clients: SpinLock::new(Vec::new()),
            next_binding: AtomicU32::new(1),
            next_client: AtomicU32::new(1),
            uninstalling: AtomicBool::new(false),
        }
    }

    const VERSION: (u8, u8) = (parse_u8(env!("CARGO_PKG_VERSION_MAJOR")), parse_u8(env!("CARGO_PKG_VERSION_MINOR")));
}

fn link_up(l: &LinkState) -> bool {
    l.connect_state == MediaConnectStateConnected
}

impl Rawnic {
    /// Posts an event to every handle that watches `binding_id`.
    fn post_event(&self, kind: u16, binding_id: u32, speed: u64, mtu: u32) {
        let mut done = Completions::new();
        self.post_event_into(kind, binding_id, speed, mtu, &mut done);
        done.complete();
    }

    /// `post_event`, leaving the waits it satisfies in `done` for the
    /// caller to complete once it holds no lock.
    fn post_event_into(&self, kind: u16, binding_id: u32, speed: u64, mtu: u32, done: &mut Completions) {
        // Lock order: the handle list, then each handle.
        let list = self.clients.lock();
        for w in list.iter() {
            let Some(c) = w.upgrade() else { continue };
            let mut st = c.state.lock_dpr(list.at_dispatch());
            if c.watches(&st, binding_id) {
                st.post_event(kind, binding_id, speed, mtu, done);
            }
        }
    }

    /// Records the binding's link state and tells the handles: when it
    /// went up or down, and for every indication that it is up (`indicated`:
    /// a status indication, whose speed may be new; else a restart's
    /// attributes or a query). Nothing is told before the handles heard
    /// BOUND (a status indication may come while the bind runs: the state
    /// is recorded, and a listing gives it) nor once the unbind began (they
    /// heard UNBOUND). Recording and telling happen under the
    /// binding's `link_events` lock, so the handles hear the changes in
    /// the order they were recorded, even from indications on two CPUs.
    fn record_link(&self, b: &Binding<Rawnic>, link: LinkState, indicated: bool) {
        self.record_link_when(b, link, indicated, None);
    }

    /// `record_link` of a query's answer, sent when `seen` link
    /// indications had been recorded: dropped if another came since.
    fn record_link_if(&self, b: &Binding<Rawnic>, link: LinkState, seen: u32) {
        self.record_link_when(b, link, false, Some(seen));
    }

    fn record_link_when(&self, b: &Binding<Rawnic>, link: LinkState, indicated: bool, seen: Option<u32>) {
        let _order = b.link_events.lock();
        let (was_up, untold) = {
            let mut info = b.info.lock();
            if seen.is_some_and(|n| n != info.link_indications) {
                return;
            }
            if indicated {
                info.link_indications = info.link_indications.wrapping_add(1);
            }
            (link_up(&core::mem::replace(&mut info.link, link)), info.closing || !info.announced)
        };
        let up = link_up(&link);
        let mut done = Completions::new();
        // Not told before the handles heard BOUND, nor after UNBOUND.
        if (up != was_up || (up && indicated)) && !untold {
            let kind = if up { event::LINK_UP } else { event::LINK_DOWN };
            self.post_event_into(kind, b.id, link.xmit_speed, 0, &mut done);
        }
        // The waits complete once the order lock is let go (no IRP
        // completes under a lock).
        drop(_order);
        done.complete();
    }

    /// A binding that is not closing, by adapter name (case-insensitive).
    fn find_binding(&self, name: &str) -> Option<Arc<Binding<Rawnic>>> {
        let found = self.bindings.lock().iter().find(|b| b.name.eq_ignore_ascii_case(name)).cloned()?;
        let closing = found.info.lock().closing;
        (!closing).then_some(found)
    }

    /// Sends an internal OID request. Returns false (nothing sent, `tag`
    /// dropped) when the binding is closing or memory ran out.
    fn internal_oid(&self, b: &Arc<Binding<Rawnic>>, kind: OidKind, oid: u32, data: Vec<u8>, tag: OidTag) -> bool {
        match b.request_oid(OidRequest { kind, oid, data, tag }, |_| {}) {
            Submitted::Done(c) => {
                self.oid_complete(b, c);
                true
            }
            Submitted::Pending(_) => true,
            Submitted::Refused(why, _) => {
                kprint!(LEVEL_ERROR, "{}: OID {oid:#x} not sent: {why:?}", b.name);
                false
            }
        }
    }

    /// One restart OID finished; the last one completes the restart, with
    /// success: a protocol driver always succeeds NetEventRestart (a query
    /// or set that failed leaves the last known value, or the filter owed).
    fn restart_step(&self, b: &Arc<Binding<Rawnic>>) {
        let finished = {
            let mut info = b.info.lock();
            let Some(p) = info.restart.as_mut() else { return };
            p.waiting -= 1;
            if p.waiting == 0 { info.restart.take() } else { None }
        };
        if let Some(p) = finished {
            p.token.complete(Ok(()));
        }
    }

    /// Sends one restart query (one step is counted for it in advance). A
    /// query that cannot be sent for want of memory finishes its step as
    /// one the adapter failed does: the last known value stands (failing
    /// the restart would leave the binding Paused until NDIS restarts it
    /// again, which it may never do).
    fn restart_oid(
        &self,
        b: &Arc<Binding<Rawnic>>,
        kind: OidKind,
        oid: u32,
        data: Result<Vec<u8>, crate::kernel::alloc::AllocError>,
        tag: OidTag,
    ) {
        let sent = match data {
            Ok(d) => self.internal_oid(b, kind, oid, d, tag),
            Err(_) => false,
        };
        if !sent {
            kprint!(LEVEL_ERROR, "{}: no memory to query OID {oid:#x} at the restart; the last value stands", b.name);
            self.restart_step(b);
        }
    }
}

impl Protocol for Rawnic {
    type Binding = RawnicBinding;
    type OidTag = OidTag;
    type Ring = rings::SharedRings;

    const NAME: &'static [u16] = crate::wstr!(rawnic_proto::PROTOCOL_NAME);

    fn create_binding(&self, p: &BindParams) -> Result<RawnicBinding, NdisStatus> {
        kprint!(LEVEL_INFO, "binding to {} (MTU {})", p.adapter_name, p.mtu);
        let name = try_string(&p.adapter_name).map_err(|_| NdisStatus::RESOURCES)?;
        let clients = ClientTable::new().map_err(|_| NdisStatus::RESOURCES)?;
        // Room in the binding list now: when the open completes, NDIS has
        // the adapter open and the binding must be listed without fail. (A
        // bind declined here is offered again: `offer_declined_again`.)
        let list_place = ListPlace::keep(&mut self.bindings.lock()).map_err(|_| NdisStatus::RESOURCES)?;
        Ok(RawnicBinding {
            list_place,
            link_events: SpinLock::new(()),
            id: self.next_binding.fetch_add(1, Ordering::Relaxed),
            name,
            mac: p.mac,
            info: SpinLock::new(BindingInfo {
                mtu: p.mtu,
                link: LinkState {
                    connect_state: p.connect_state,
                    duplex_state: p.duplex_state,
                    xmit_speed: p.xmit_speed,
                    rcv_speed: p.rcv_speed,
                },
                lookahead: p.lookahead,
                mac_options: p.mac_options,
                supported_filters: PacketFilter::from_bits_retain(p.supported_packet_filters),
                description: String::new(),
                filter_modules: Vec::new(),
                rss: None,
                packet_filter: PacketFilter::NONE,
                refused_filters: PacketFilter::NONE,
                filter_in_flight: false,
                filter_dirty: false,
                filter_sending: false,
                filter_next: None,
                filter_probe: (PacketFilter::NONE, PacketFilter::NONE),
                filter_owed: false,
                filter_retries: 0,
                filter_later: false,
                filter_failing: false,
                filter_failure_told: false,
                restart: None,
                multicast: Default::default(),
                closing: false,
                announced: false,
                restarts: 0,
                link_indications: 0,
            }),
            clients: SpinLock::new(clients),
            listeners: AtomicUsize::new(0),
            counters: AtomicCounters::default(),
            umem_bytes: AtomicUsize::new(0),
        })
    }

    fn open_complete(&self, b: &Arc<Binding<Self>>, result: Result<(), NdisStatus>) {
        match result {
            Ok(()) => {
                {
                    let mut list = self.bindings.lock();
                    // The place kept at the bind's start: no allocation.
                    b.list_place.take();
                    debug_assert!(list.len() < list.capacity());
                    list.push(b.clone());
                }
                // The friendly description; the binding is usable without it.
                if let Ok(buf) = try_zeroed(256) {
                    self.internal_oid(b, OidKind::Query, OID_GEN_VENDOR_DESCRIPTION, buf, OidTag::Description);
                }
                // Under the link lock: a link change recorded before this
                // is not told (the listing BOUND invites gives it), one
                // after is told after BOUND.
                let mut done = Completions::new();
                let order = b.link_events.lock();
                let mtu = {
                    let mut info = b.info.lock();
                    info.announced = true;
                    info.mtu
                };
                self.post_event_into(event::BOUND, b.id, 0, mtu, &mut done);
                drop(order);
                done.complete();
            }
            Err(s) => {
                b.list_place.take();
                kprint!(LEVEL_ERROR, "opening {} failed: {:#x}", b.name, s.0)
            }
        }
    }

    fn unbind(&self, b: &Arc<Binding<Self>>) {
        // The binding stays listed (as closing) until the close completes.
        {
            // Under the link lock: a link change being told finishes
            // first, and none is told after the handles hear UNBOUND.
            let _order = b.link_events.lock();
            b.info.lock().closing = true;
        }
        // Handles on it lose it: their reads fail, their waits learn why.
        let mut done = Completions::new();
        loop {
            let Some(c) = ({
                let mut table = b.clients.lock();
                let c = table.take_any();
                b.set_listeners(&table);
                c
            }) else {
                break;
            };
            let mut st = c.state.lock();
            if matches!(st.mode, Mode::Closed) {
                // Its cleanup is under way and does the rest.
                continue;
            }
            st.mode = Mode::Orphaned;
            st.ring.clear();
            st.post_event(event::UNBOUND, b.id, 0, 0, &mut done);
            st.fail_pending(NtStatus::DEVICE_REMOVED, &mut done);
            let rings = st.rings.clone();
            drop(st);
            // Their ring waits too (nothing will be produced), now and
            // later; and the rings let go of the binding.
            if let Some(r) = rings {
                drop(r.unbound(&mut done));
            }
        }
        // Handles not bound to an adapter hear of it too.
        {
            let list = self.clients.lock();
            for w in list.iter() {
                let Some(c) = w.upgrade() else { continue };
                let mut st = c.state.lock_dpr(list.at_dispatch());
                // (An opening handle may have heard BOUND; its open may
                // still fail.)
                if matches!(st.mode, Mode::Unopened | Mode::Opening) {
                    st.post_event(event::UNBOUND, b.id, 0, 0, &mut done);
                }
            }
        }
        done.complete();
        // The NBLs of the frames the handles' queues held (none after the
        // pause; as a belt).
        b.flush_returns();
        // The wrapper cancels the OID requests still pending and closes the
        // adapter once they are back.
    }

    fn closed(&self, b: &Arc<Binding<Self>>) {
        self.bindings.lock().retain(|x| !Arc::ptr_eq(x, b));
        kprint!(LEVEL_INFO, "closed {}", b.name);
    }

    fn pausing(&self, b: &Arc<Binding<Self>>) {
        self.give_back_retained(b);
        // Their NBLs go back now, not when the work item next runs (a
        // miniport low on receive buffers waits for them).
        b.flush_returns();
    }

    fn give_back_retained(&self, b: &Arc<Binding<Self>>) {
        // Every retained receive is copied into its queue slot.
        ClientTable::materialize_retained(&b.clients.lock());
    }

    fn paused(&self, b: &Arc<Binding<Self>>) {
        self.post_event(event::PAUSED, b.id, 0, 0);
    }

    fn set_power(&self, b: &Arc<Binding<Self>>, device_state: u32) {
        // Back in D0: what the adapter could not be sent in low power (a
        // filter a handle opened with, the union after a close) is set
        // now. NDIS restarts a binding it paused for low power before this
        // event, and the restart set them; but from NDIS 6.30 a miniport
        // may keep its stack running through the power change
        // (NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND, OID_PNP_SET_POWER),
        // and then no restart comes. (A binding still Paused gets its
        // filter at its restart.)
        if device_state == NetDeviceStateD0 {
            self.set_owed(b);
        }
    }

    fn restart(&self, b: &Arc<Binding<Self>>, info: RestartInfo, token: RestartToken<Self>) {
        if info.no_memory {
            // The filter-module names are only logged: the restart goes on
            // without them (failing it would leave the binding Paused until
            // NDIS restarts it again, which it may never do).
            kprint!(LEVEL_ERROR, "{}: no memory to copy the restart's filter-module names", b.name);
        }
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
                if g.supported_packet_filters != 0 {
                    bi.supported_filters = PacketFilter::from_bits_retain(g.supported_packet_filters);
                }
                if g.has_rss_capabilities {
                    bi.rss = Some(true);
                    need_rss = false;
                }
            }
        }
        if let Some(l) = info.link {
            // A change while paused that no status indication told.
            self.record_link(b, l, false);
            need_link = false;
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
        // The names move into the binding's info (no copy).
        let old_modules = core::mem::replace(&mut b.info.lock().filter_modules, info.filter_modules);
        drop(old_modules);
        // Sends follow the MTU (their pool's buffers too) and the MAC
        // options from the next Running on.
        let (mtu, mac_options) = {
            let bi = b.info.lock();
            (bi.mtu, bi.mac_options)
        };
        match b.set_send_shape(mtu, mac_options) {
            Ok(()) => {}
            Err(SendGateError::NoMemory) => {
                // Running with sends within the old MTU beats staying
                // Paused until NDIS restarts the binding again (which it
                // may never do); the next restart tries again.
                kprint!(LEVEL_ERROR, "{}: no memory for sends of MTU {mtu}; they stay within MTU {old_mtu}", b.name);
                b.info.lock().mtu = old_mtu;
            }
            Err(e) => {
                // Not failed either (a protocol driver always succeeds
                // NetEventRestart): sends stay within the old MTU.
                kprint!(LEVEL_ERROR, "{}: the send pool cannot follow MTU {mtu}: {e:?}", b.name);
                b.info.lock().mtu = old_mtu;
            }
        }
        // The stack below may have changed while paused: set the packet
        // filter again, and ask what the attributes did not tell.
        let set_filter = !Self::wanted_filter(b).is_empty() || {
            let info = b.info.lock();
            !info.packet_filter.is_empty() || info.filter_owed
        };
        let n = need_link as u32 + need_rss as u32 + set_filter as u32;
        if n == 0 {
            token.complete(Ok(()));
            return;
        }
        {
            let mut bi = b.info.lock();
            // One extra step for this function, so completions that come
            // while requests are still being sent cannot finish early.
            bi.restart = Some(RestartProgress { token, waiting: n + 1 });
        }
        if need_link {
            let seen = b.info.lock().link_indications;
            self.restart_oid(
                b,
                OidKind::Query,
                OID_GEN_LINK_STATE,
                try_zeroed(core::mem::size_of::<NDIS_LINK_STATE>()),
                OidTag::Link(seen),
            );
        }
        if need_rss {
            self.restart_oid(b, OidKind::Query, OID_GEN_RECEIVE_SCALE_CAPABILITIES, try_zeroed(64), OidTag::Rss);
        }
        // A set that cannot be sent (no memory) leaves the filter owed,
        // set once the binding runs: the restart goes on.
        if set_filter && self.restart_filter(b) != Some(true) {
            self.restart_step(b);
        }
        self.restart_step(b);
    }

    fn restarted(&self, b: &Arc<Binding<Self>>, running: bool) {
        let mtu = b.info.lock().mtu;
        if running {
            self.post_event(event::RESTARTED, b.id, 0, mtu);
            // The adapter's supported filters may have changed; handles
            // that opened while the binding was paused need the filter.
            self.reconcile_filters(b);
            self.update_packet_filter(b);
            self.multicast_if_stale(b);
        } else {
            kprint!(LEVEL_ERROR, "{}: restart failed; the binding stays paused", b.name);
        }
    }

    fn deferred_work(&self, b: &Arc<Binding<Self>>) {
        self.multicast_deferred(b);
        self.filter_deferred(b);
    }

    fn binds_complete(&self) {
        let count = self.bindings.lock().len() as u32;
        let waiters = {
            let mut st = self.binds.lock();
            st.complete = true;
            core::mem::take(&mut st.waiters)
        };
        for (_, mut irp) in waiters {
            let n = rawnic_proto::BindsCompleteReply { bindings: count }.emit(irp.output()).unwrap_or(0);
            irp.complete(NtStatus::SUCCESS, n);
        }
    }

    fn receive(&self, b: &Arc<Binding<Self>>, ind: &mut Indication<'_, Self>) {
        receive::receive(b, ind);
    }

    fn send_complete(&self, b: &Binding<Self>, done: &mut dyn Iterator<Item = (u64, u32, NdisStatus)>) {
        receive::send_complete(b, done);
    }

    fn ring_send_complete(&self, b: &Binding<Self>, done: ZcReturns<rings::SharedRings>) {
        self.ring_send_complete_inner(b, done, false);
    }

    fn oid_complete(&self, b: &Arc<Binding<Self>>, done: OidCompletion<OidTag>) {
        let ok = done.status == NdisStatus::SUCCESS;
        let user = |client: &Client, irp| {
            user_oid::finish_user_oid(client, irp, done.kind, done.status, &done.data, done.bytes, done.bytes_needed)
        };
        match done.tag {
            OidTag::User { client, irp } => user(&client, irp),
            OidTag::UserMulticast { client, irp, old, generation } => {
                self.multicast_set_done(&client, b, old, generation, done.status);
                user(&client, irp)
            }
            OidTag::Multicast { generation } => self.multicast_sync_done(b, generation, done.status),
            OidTag::Description => {
                if ok {
                    let text = &done.data[..];
                    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
                    let mut desc = String::new();
                    if desc.try_reserve(end).is_ok() {
                        desc.extend(
                            text[..end]
                                .iter()
                                .map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }),
                        );
                        b.info.lock().description = desc;
                    }
                }
            }
            OidTag::Link(seen) => {
                if ok && done.data.len() >= core::mem::size_of::<NDIS_LINK_STATE>() {
                    let d = &done.data;
                    let u32_at = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
                    let u64_at = |o: usize| {
                        u64::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3], d[o + 4], d[o + 5], d[o + 6], d[o + 7]])
                    };
                    let link = LinkState {
                        connect_state: u32_at(4),
                        duplex_state: u32_at(8),
                        xmit_speed: u64_at(16),
                        rcv_speed: u64_at(24),
                    };
                    // A status indication recorded since the query went
                    // out is newer than its answer (the miniport may have
                    // filled it before the change): the answer is kept only
                    // when none came.
                    self.record_link_if(b, link, seen);
                }
                self.restart_step(b);
            }
            OidTag::Rss => {
                b.info.lock().rss = Some(ok);
                self.restart_step(b);
            }
            OidTag::PacketFilter(set) => self.filter_set_done(b, set, done.status),
        }
    }

    fn uninstall(&self) {
        // The protocol is being uninstalled: its bindings go next (through
        // the usual unbinds). Handles may not open a binding any more, and
        // whoever waits for binds to complete is told how many there are.
        kprint!(LEVEL_INFO, "uninstalling");
        self.uninstalling.store(true, Ordering::Release);
        self.binds_complete();
    }

    fn link_changed(&self, b: &Binding<Self>, link: LinkState) {
        self.record_link(b, link, true);
    }
}
