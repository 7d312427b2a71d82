//! PnP events: pause, restart (with its attributes), query and set power,
//! BindsComplete, the others NDIS sends (remove queries, reconfigure, bind
//! lists, capabilities, ports), and `NdisCompleteNetPnPEvent`.

use super::*;
use crate::adapter::{self, CompletionPolicy};
use crate::kernel::{Kernel, PASSIVE_LEVEL, call_driver, check_irql_eq};
use crate::verifier::{Rule, lock};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A PnP notification and its buffer.
#[repr(C)]
pub(super) struct PnpBlock {
    notif: NET_PNP_EVENT_NOTIFICATION,
    pause: NDIS_PROTOCOL_PAUSE_PARAMETERS,
    restart: NDIS_PROTOCOL_RESTART_PARAMETERS,
    power: u32,
    attrs: Vec<Vec<u128>>,
    filter_names: Vec<u8>,
    oid_list: Vec<u32>,
    rss: Box<[u8; 16]>,
    /// The buffer of another event (`other_event`).
    other: Vec<u8>,
}

pub(super) fn pnp_block(code: NET_PNP_EVENT_CODE) -> Box<PnpBlock> {
    let mut p: Box<PnpBlock> = Box::new(PnpBlock {
        // SAFETY: plain data; zero is its initial state.
        notif: unsafe { std::mem::zeroed() },
        // SAFETY: plain data; zero is its initial state.
        pause: unsafe { std::mem::zeroed() },
        // SAFETY: plain data; zero is its initial state.
        restart: unsafe { std::mem::zeroed() },
        power: 0,
        attrs: Vec::new(),
        filter_names: Vec::new(),
        oid_list: Vec::new(),
        rss: rss_caps(),
        other: Vec::new(),
    });
    p.notif.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
        Size: NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1,
    };
    p.notif.NetPnPEvent.NetEvent = code;
    p
}

/// Delivers a PnP event to the binding (or to the protocol when `b` is
/// None) and returns its final status.
pub(super) fn pnp(
    k: &Kernel,
    proto: &Protocol,
    b: Option<&Arc<Binding>>,
    mut blk: Box<PnpBlock>,
    what: &str,
) -> Result<NDIS_STATUS, SimError> {
    let key = &blk.notif as *const NET_PNP_EVENT_NOTIFICATION as usize;
    let notif: *mut NET_PNP_EVENT_NOTIFICATION = &mut blk.notif;
    let event = blk.notif.NetPnPEvent.NetEvent;
    let power = if event == NetEventSetPower { blk.power } else { 0 };
    k.ndis.op_begin(OpKind::Pnp, key, b.map_or(0, |b| Arc::as_ptr(b) as usize), (event, power));
    let handler = proto.chars.NetPnPEventHandler.expect("validated");
    let ctx = b.map_or(0, |b| b.ctx);
    let is_pause = event == NetEventPause;
    if let Some(b) = b {
        let detail = match event {
            NetEventPause => blk.pause.PauseReason,
            NetEventSetPower | NetEventQueryPower => blk.power,
            _ => 0,
        };
        lock(&k.ndis.adapter(b.adapter).pnp_log).push((event, detail));
    }
    if let (true, Some(b)) = (is_pause, b) {
        b.pause_phase.store(PAUSE_IN_HANDLER, Ordering::Release);
        b.pause_in_handler.store(true, Ordering::Release);
    }
    let call = b.map(|b| b.enter_call(true));
    let pausing = PauseHandlerGuard::enter(b.filter(|_| is_pause).map(|b| Arc::as_ptr(b) as usize));
    // With a binding context, re-enumeration is not allowed from it.
    let in_handler = b.map(|_| PnpHandlerGuard::enter());
    let st = call_driver("ProtocolNetPnPEvent", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler with its binding context (or NULL)
        // and a notification that lives until the event completes.
        unsafe { handler(ctx as NDIS_HANDLE, notif) }
    });
    drop(in_handler);
    drop(pausing);
    drop(call);
    if let Some(b) = b {
        if is_pause {
            b.pause_in_handler.store(false, Ordering::Release);
            if st == NDIS_STATUS_PENDING {
                // The driver knows of the pause; unless it completed it
                // already.
                let _ = b.pause_phase.compare_exchange(
                    PAUSE_IN_HANDLER,
                    PAUSE_PENDING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            } else {
                check_pause_done(b, "ProtocolNetPnPEvent(NetEventPause)");
            }
        }
        if st != NDIS_STATUS_PENDING {
            // Finished in the handler: NDIS's view changes as it returns.
            pnp_done(b, (event, power), st);
        }
    }
    let r = k.ndis.op_returned(k, OpKind::Pnp, key, st, "ProtocolNetPnPEvent", what);
    if let Ok(status) = r {
        check_event_status(event, b.map(|b| b.name.clone()), status);
    }
    // NDIS frees the notification; ndisim keeps it for the simulation's
    // life so a driver that kept the pointer does not corrupt our memory
    // (freed when the simulation ends: `kept`).
    k.ndis.kept.keep(blk);
    r
}

/// The events ProtocolNetPnPEvent's page (nc-ndis-protocol_net_pnp_event,
/// Return value) says a protocol driver "should always succeed ... by
/// returning NDIS_STATUS_SUCCESS", with `NetEventQueryPower` from its
/// remarks ("A protocol driver should always succeed a NetEventQueryPower
/// event"). `NetEventPause` is among them too, and is checked by
/// `pause_for` ("a pause cannot fail"). Only `NetEventQueryRemoveDevice`
/// and `NetEventPortActivation` may fail ("A protocol driver can fail the
/// NetEventQueryRemoveDevice and NetEventPortActivation events"), and
/// `NetEventSetPower`, whose page says nothing either way.
pub(crate) const MUST_SUCCEED: &[NET_PNP_EVENT_CODE] = &[
    NetEventRestart,
    NetEventIMReEnableDevice,
    NetEventCancelRemoveDevice,
    NetEventReconfigure,
    NetEventBindList,
    NetEventBindsComplete,
    NetEventPortDeactivation,
    NetEventPnPCapabilities,
    NetEventQueryPower,
];

/// The final status of a PnP event (the handler's return, or the status of
/// `NdisCompleteNetPnPEvent` when it pended), against ProtocolNetPnPEvent's
/// page: `NDIS_STATUS_NOT_SUPPORTED` is never allowed ("NDIS 6.0 and later
/// protocol drivers must not return this status"), and the events of
/// `MUST_SUCCEED` succeed. On Windows NDIS may act on a failure (a failed
/// restart leaves the binding Paused until NDIS restarts it again, which it
/// may never do), or ignore it; either way the driver broke the contract.
fn check_event_status(event: NET_PNP_EVENT_CODE, binding: Option<String>, status: NDIS_STATUS) {
    if event == NetEventPause {
        // `pause_for` reports any status but success.
        return;
    }
    let detail = if status == NDIS_STATUS_NOT_SUPPORTED {
        format!(
            "event {event} ({}) answered NDIS_STATUS_NOT_SUPPORTED, which NDIS 6.0 and later protocol drivers must not return (succeed an event the driver does not handle)",
            event_name(event)
        )
    } else if status != NDIS_STATUS_SUCCESS && MUST_SUCCEED.contains(&event) {
        format!(
            "event {event} ({}) failed with {status:#x}; a protocol driver always succeeds it with NDIS_STATUS_SUCCESS (only NetEventQueryRemoveDevice and NetEventPortActivation may fail)",
            event_name(event)
        )
    } else {
        return;
    };
    Violation::new(Rule::InvalidParameter, "ProtocolNetPnPEvent", detail).with_binding(binding).report();
}

/// A `NET_PNP_EVENT_CODE`'s name.
pub(crate) fn event_name(event: NET_PNP_EVENT_CODE) -> &'static str {
    match event {
        NetEventSetPower => "NetEventSetPower",
        NetEventQueryPower => "NetEventQueryPower",
        NetEventQueryRemoveDevice => "NetEventQueryRemoveDevice",
        NetEventCancelRemoveDevice => "NetEventCancelRemoveDevice",
        NetEventReconfigure => "NetEventReconfigure",
        NetEventBindList => "NetEventBindList",
        NetEventBindsComplete => "NetEventBindsComplete",
        NetEventPnPCapabilities => "NetEventPnPCapabilities",
        NetEventPause => "NetEventPause",
        NetEventRestart => "NetEventRestart",
        NetEventPortActivation => "NetEventPortActivation",
        NetEventPortDeactivation => "NetEventPortDeactivation",
        NetEventIMReEnableDevice => "NetEventIMReEnableDevice",
        _ => "unknown",
    }
}

thread_local! {
    /// Bindings whose pause handler this thread is running.
    static IN_PAUSE_HANDLER: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks this thread as running the pause handler of a binding while it
/// lives.
struct PauseHandlerGuard(Option<usize>);

impl PauseHandlerGuard {
    fn enter(b: Option<usize>) -> PauseHandlerGuard {
        if let Some(b) = b {
            IN_PAUSE_HANDLER.with(|v| v.borrow_mut().push(b));
        }
        PauseHandlerGuard(b)
    }
}

impl Drop for PauseHandlerGuard {
    fn drop(&mut self) {
        if let Some(b) = self.0 {
            IN_PAUSE_HANDLER.with(|v| {
                let mut v = v.borrow_mut();
                if let Some(i) = v.iter().rposition(|&x| x == b) {
                    v.remove(i);
                }
            });
        }
    }
}

/// Is this thread inside `b`'s pause handler? A send made there is made by
/// a driver that knows of the pause: the binding is Pausing ("Binding
/// States of a Protocol Driver": Pausing begins when NDIS sends the pause
/// notification, and in it the driver stops sending; only in Running does
/// it send).
pub(super) fn in_own_pause_handler(b: &Binding) -> bool {
    let me = b as *const Binding as usize;
    IN_PAUSE_HANDLER.with(|v| v.borrow().contains(&me))
}

/// At a pause's completion: no send may be in flight, and no received NBL
/// kept past its indication ("A binding enters the Paused state after the
/// protocol driver is done returning outstanding receive indications for
/// the binding, and NDIS has completed all outstanding send requests",
/// Pausing a Binding). NBLs of an indication whose handler is still
/// running are checked when it returns.
pub(super) fn check_pause_done(b: &Binding, call: &str) {
    let (s, r) = (b.sends.load(Ordering::Acquire), b.retained.load(Ordering::Acquire).max(0) as u64);
    if s + r != 0 {
        Violation::new(
            Rule::PauseOutstanding,
            call,
            format!("the pause completed with {s} send NBL(s) still in flight and {r} received NBL(s) not returned"),
        )
        .with_binding(b.name.clone())
        .report();
    }
}

pub(crate) unsafe extern "win64" fn NdisCompleteNetPnPEvent(
    h: NDIS_HANDLE,
    n: *mut NET_PNP_EVENT_NOTIFICATION,
    status: NDIS_STATUS,
) {
    const CALL: &str = "NdisCompleteNetPnPEvent";
    export(CALL, (), |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        let in_call = if h.is_null() { None } else { k.ndis.binding(h, CALL, false) };
        let b = in_call.as_ref().map(|c| c.get());
        let key = n as usize;
        // Which binding does the pending event belong to?
        let owner = lock(&k.ndis.ops)
            .iter()
            .find(|o| o.kind == OpKind::Pnp && o.key == key && o.completed.is_none())
            .map(|o| o.binding);
        if let Some(owner) = owner {
            let want = b.map_or(0, |b| b as *const Binding as usize);
            if owner != want {
                Violation::new(
                    Rule::InvalidParameter,
                    CALL,
                    "NdisBindingHandle is not the binding the event was indicated on",
                )
                .with_binding(b.map(|b| b.name.clone()))
                .with_object(key)
                .report();
            }
            if owner != 0 {
                // SAFETY: bindings live for the simulation.
                let ob = unsafe { &*(owner as *const Binding) };
                // SAFETY: the notification is pending, so ours and live.
                if unsafe { (*n).NetPnPEvent.NetEvent } == NetEventPause {
                    check_pause_done(ob, CALL);
                }
            }
        }
        if status == NDIS_STATUS_PENDING {
            Violation::new(Rule::InvalidParameter, CALL, "completed with NDIS_STATUS_PENDING")
                .with_binding(b.map(|b| b.name.clone()))
                .with_object(key)
                .report();
        }
        k.ndis.op_complete(OpKind::Pnp, key, status, CALL, b);
    })
}

/// Completes the sends the adapter holds back under a batching policy, as
/// a miniport does when it pauses.
pub(super) fn flush_batched(k: &Kernel, a: &Adapter) {
    // The policy under the lock of what is held (as the send path reads it).
    let batch = {
        let mut held = lock(&a.held);
        let batched = matches!(*lock(&a.policy), CompletionPolicy::Batched(_) | CompletionPolicy::Reordered(_));
        if batched { std::mem::take(&mut *held) } else { Vec::new() }
    };
    complete_nbls(k, &batch, NDIS_STATUS_SUCCESS);
}

/// One PnP operation of the harness on an adapter at a time, as NDIS
/// (and the PnP manager, one IRP of a device at a time) sends them: two
/// threads of a test that pause, restart or unbind one adapter at once
/// do so one after the other, and the second finds the state the first
/// left, rather than the driver getting a second event while it is in
/// the first. Held until dropped.
pub(crate) struct PnpGate<'a>(&'a Adapter);

impl<'a> PnpGate<'a> {
    /// Waits until no other PnP call of the harness is on `a`. (Free, it
    /// is taken without a scheduling point, so schedules replay as
    /// before.)
    pub(crate) fn take(k: &Kernel, a: &'a Adapter) -> Self {
        let free = || a.pnp_gate.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok();
        k.wait_forever("another PnP event of the adapter to end", free, || {
            std::thread::sleep(std::time::Duration::from_micros(50))
        });
        PnpGate(a)
    }
}

impl Drop for PnpGate<'_> {
    fn drop(&mut self) {
        self.0.pnp_gate.store(false, Ordering::Release);
    }
}

/// Pauses a Running binding.
pub(crate) fn pause(k: &Kernel, a: &Arc<Adapter>) -> Result<(), SimError> {
    pause_for(k, a, NDIS_PAUSE_NDIS_INTERNAL)
}

/// Pauses a Running binding, giving `reason`.
pub(crate) fn pause_for(k: &Kernel, a: &Arc<Adapter>, reason: u32) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else {
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    if b.state() != BindingState::Running {
        return Err(SimError::State(format!("binding {} is {:?}, not Running", a.name, b.state())));
    }
    // Until the pause handler returns, the driver may not know of the pause
    // yet: sends that race with its delivery are NDIS's to fail, not a
    // violation (`pnp` clears the flag when the handler returns).
    b.pause_in_handler.store(true, Ordering::Release);
    b.set_state(BindingState::Pausing);
    flush_batched(k, a);
    super::teardown::give_back_at_pause(k, a);
    let mut blk = pnp_block(NetEventPause);
    blk.pause.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NDIS_PROTOCOL_PAUSE_PARAMETERS_REVISION_1,
        Size: 12,
    };
    // A protocol of NDIS 6.40 or later is told NDIS_PAUSE_NDIS_INTERNAL
    // whatever the reason (`versions::pause_reason_for`).
    blk.pause.PauseReason = pause_reason_for(b.proto.chars.MinorNdisVersion, reason);
    blk.notif.NetPnPEvent.Buffer = (&mut blk.pause as *mut NDIS_PROTOCOL_PAUSE_PARAMETERS).cast();
    blk.notif.NetPnPEvent.BufferLength = 12;
    let st = pnp(k, &b.proto, Some(&b), blk, &format!("the pause of {}", a.name))?;
    if st != NDIS_STATUS_SUCCESS {
        Violation::new(
            Rule::InvalidParameter,
            "ProtocolNetPnPEvent(NetEventPause)",
            format!("a pause cannot fail, but the driver returned {st:#x}"),
        )
        .with_binding(b.name.clone())
        .report();
    }
    // The binding became Paused when the pause completed; let the work item
    // that completed it (if any) finish, unless PnP events are to come as
    // promptly as NDIS may send them.
    if !k.config.prompt_pnp {
        k.io.workers.drain(k.config.watchdog);
    }
    Ok(())
}

/// The OIDs the adapter model answers: its restart attributes'
/// `SupportedOidList`, and its answer to OID_GEN_SUPPORTED_LIST (as
/// little-endian `u32`s). Public so that tests judging that answer use
/// this list, not a copy of it.
pub const SUPPORTED_OIDS: &[u32] = &[
    OID_GEN_SUPPORTED_LIST,
    OID_GEN_HARDWARE_STATUS,
    OID_GEN_MEDIA_SUPPORTED,
    OID_GEN_MEDIA_IN_USE,
    OID_GEN_MAXIMUM_LOOKAHEAD,
    OID_GEN_MAXIMUM_FRAME_SIZE,
    OID_GEN_LINK_SPEED,
    OID_GEN_TRANSMIT_BUFFER_SPACE,
    OID_GEN_RECEIVE_BUFFER_SPACE,
    OID_GEN_VENDOR_ID,
    OID_GEN_VENDOR_DESCRIPTION,
    OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_CURRENT_LOOKAHEAD,
    OID_GEN_DRIVER_VERSION,
    OID_GEN_MAXIMUM_TOTAL_SIZE,
    OID_GEN_MAC_OPTIONS,
    OID_GEN_MEDIA_CONNECT_STATUS,
    OID_GEN_MAXIMUM_SEND_PACKETS,
    OID_GEN_VENDOR_DRIVER_VERSION,
    OID_GEN_PHYSICAL_MEDIUM,
    OID_GEN_RECEIVE_SCALE_CAPABILITIES,
    OID_GEN_MAX_LINK_SPEED,
    OID_GEN_LINK_STATE,
    OID_GEN_XMIT_OK,
    OID_GEN_RCV_OK,
    OID_GEN_XMIT_ERROR,
    OID_GEN_RCV_ERROR,
    OID_GEN_RCV_NO_BUFFER,
    OID_GEN_STATISTICS,
    OID_802_3_PERMANENT_ADDRESS,
    OID_802_3_CURRENT_ADDRESS,
    OID_802_3_MULTICAST_LIST,
    OID_802_3_MAXIMUM_LIST_SIZE,
];

/// A restart attribute element (`NDIS_RESTART_ATTRIBUTES`) of `oid` with
/// `data`, 16-aligned as the structure is. The bytes after `DataLength`
/// (to the element's 16-byte end) are not zeros but `ATTR_SLACK`, as the
/// pool slack or the next allocation would be on Windows: a driver that
/// reads a structure past the size NDIS gave (the revision-2 member of
/// revision-1 general attributes, `MaxLookaheadSizeAccessed`) reads
/// garbage, not a plausible 0.
pub(super) fn aligned_attr(oid: u32, data: &[u8]) -> Vec<u128> {
    let words = (16 + data.len()).div_ceil(16).max(2);
    let mut v = vec![u128::from_ne_bytes([ATTR_SLACK; 16]); words];
    let p = v.as_mut_ptr().cast::<u8>();
    // SAFETY: `v` holds 16 + data.len() bytes at least; the element header
    // is Next (8), Oid (4), DataLength (4), then data at 16.
    unsafe {
        std::ptr::write_bytes(p, 0, 8);
        p.add(8).cast::<u32>().write(oid);
        p.add(12).cast::<u32>().write(data.len() as u32);
        std::ptr::copy_nonoverlapping(data.as_ptr(), p.add(16), data.len());
    }
    v
}

/// What a restart attribute element holds past its `DataLength`.
pub(crate) const ATTR_SLACK: u8 = PAST_SIZE;

/// Restarts a Paused binding.
pub(crate) fn restart(k: &Kernel, a: &Arc<Adapter>, spec: &RestartSpec) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else {
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    if b.state() != BindingState::Paused {
        return Err(SimError::State(format!("binding {} is {:?}, not Paused", a.name, b.state())));
    }
    {
        let mut m = lock(&a.model);
        if let Some(mtu) = spec.mtu {
            m.mtu = mtu;
            a.max_frame.store(mtu as usize + 14, Ordering::Release);
        }
        if let Some(l) = spec.link {
            m.link_up = l;
        }
        if let Some(f) = spec.supported_filters {
            m.supported_filters = f;
        }
    }
    let m = lock(&a.model).clone();
    b.set_state(BindingState::Restarting);
    let mut blk = pnp_block(NetEventRestart);
    blk.oid_list = SUPPORTED_OIDS.to_vec();
    // SAFETY: plain data.
    let mut g: NDIS_RESTART_GENERAL_ATTRIBUTES = unsafe { std::mem::zeroed() };
    // Revision 2 (MaxLookaheadSizeAccessed) is NDIS 6.20's: an older
    // emulated NDIS gives revision 1.
    let rev = spec.general_revision.unwrap_or(if lock(&k.ndis.versions.max).1 >= 20 { 2 } else { 1 });
    g.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES,
        Revision: rev,
        Size: if rev == 1 {
            NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1
        } else {
            NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2
        },
    };
    g.MtuSize = m.mtu;
    g.MaxXmitLinkSpeed = m.speed;
    g.MaxRcvLinkSpeed = m.speed;
    g.LookaheadSize = m.mtu;
    g.MacOptions = a.mac_options();
    g.SupportedPacketFilters = m.supported_filters;
    g.MaxMulticastListSize = adapter::MAX_MULTICAST as u32;
    g.RecvScaleCapabilities = if a.spec.rss { blk.rss.as_mut_ptr().cast() } else { std::ptr::null_mut() };
    g.AccessType = 2;
    g.ConnectionType = 1;
    g.SupportedStatistics = SUPPORTED_STATISTICS;
    g.SupportedOidList = blk.oid_list.as_mut_ptr();
    g.SupportedOidListLength = (blk.oid_list.len() * 4) as u32;
    g.MaxLookaheadSizeAccessed = m.mtu;
    let glen = g.Header.Size as usize;
    // SAFETY: `g` is plain data of at least `glen` bytes.
    let gbytes =
        unsafe { std::slice::from_raw_parts((&g as *const NDIS_RESTART_GENERAL_ATTRIBUTES).cast::<u8>(), glen) }
            .to_vec();
    blk.attrs.push(aligned_attr(OID_GEN_MINIPORT_RESTART_ATTRIBUTES, &gbytes));
    for (oid, data) in &spec.extra_attributes {
        blk.attrs.push(aligned_attr(*oid, data));
    }
    for i in 0..blk.attrs.len() {
        let next = blk.attrs.get(i + 1).map_or(std::ptr::null_mut(), |v| v.as_ptr() as *mut u8);
        // SAFETY: each element starts with its `Next` pointer.
        unsafe { blk.attrs[i].as_mut_ptr().cast::<*mut u8>().write(next) };
    }
    for name in &spec.filter_modules {
        let w: Vec<u16> = name.encode_utf16().collect();
        blk.filter_names.extend_from_slice(&((w.len() * 2) as u16).to_le_bytes());
        for c in w {
            blk.filter_names.extend_from_slice(&c.to_le_bytes());
        }
    }
    let r = &mut blk.restart;
    r.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS,
        Revision: NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
        Size: NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
    };
    r.FilterModuleNameBuffer =
        if blk.filter_names.is_empty() { std::ptr::null_mut() } else { blk.filter_names.as_mut_ptr() };
    r.FilterModuleNameBufferLength = blk.filter_names.len() as u32;
    r.RestartAttributes = blk.attrs[0].as_mut_ptr().cast();
    r.BoundIfIndex = a.idx as u32 + 10;
    r.BoundIfNetluid = 0x0006_0000_0000_0000 | (a.idx as u64 + 1);
    blk.notif.NetPnPEvent.Buffer = (&mut blk.restart as *mut NDIS_PROTOCOL_RESTART_PARAMETERS).cast();
    blk.notif.NetPnPEvent.BufferLength =
        spec.params_length.unwrap_or(std::mem::size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>() as u32);
    let st = pnp(k, &b.proto, Some(&b), blk, &format!("the restart of {}", a.name))?;
    // The binding became Running (or Paused again) when the restart
    // completed; let the work item that completed it (if any) finish, so
    // the driver is ready to send when this returns. With jitter, the next
    // event may come at once, as from NDIS: the work item may still be
    // running after its NdisCompleteNetPnPEvent returned.
    if !k.config.prompt_pnp {
        k.io.workers.drain(k.config.watchdog);
    }
    if st == NDIS_STATUS_SUCCESS { Ok(()) } else { Err(SimError::Status(st)) }
}

/// A restart a test asks for: NDIS restarts a binding only with its
/// adapter in D0, so one asked for while the adapter is in a low-power
/// state is the way back to D0: the restart (with `spec`), then
/// `NetEventSetPower` for D0, as `set_power` does it.
pub(crate) fn restart_in_d0(k: &Kernel, a: &Arc<Adapter>, spec: &RestartSpec) -> Result<(), SimError> {
    if lock(&a.model).powered {
        return restart(k, a, spec);
    }
    let Some(b) = lock(&a.binding).clone() else {
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    if b.state() != BindingState::Paused {
        return Err(SimError::State(format!("binding {} is {:?}, not Paused", a.name, b.state())));
    }
    a.resume_running.store(true, Ordering::Release);
    power(k, a, NetDeviceStateD0, spec)
}

/// `NetEventSetPower`: a low-power state pauses after the event, D0
/// restarts (if it was Running) after it.
pub(crate) fn set_power(k: &Kernel, a: &Arc<Adapter>, state: u32) -> Result<(), SimError> {
    power(k, a, state, &RestartSpec::default())
}

/// `set_power`, with `spec` for the restart of a binding back in D0.
fn power(k: &Kernel, a: &Arc<Adapter>, state: u32, spec: &RestartSpec) -> Result<(), SimError> {
    // A NET_DEVICE_POWER_STATE NDIS sends: D0 (1) to D3 (4), never
    // NetDeviceStateUnspecified (0).
    if !(NetDeviceStateD0..=NetDeviceStateD3).contains(&state) {
        return Err(SimError::Other(format!("{state} is not a device power state (D0 is 1, D3 is 4)")));
    }
    let Some(b) = lock(&a.binding).clone() else {
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    // A power event with the state as its buffer; its final status.
    let power_event = |code: NET_PNP_EVENT_CODE, what: &str| -> Result<NDIS_STATUS, SimError> {
        let mut blk = pnp_block(code);
        blk.power = state;
        blk.notif.NetPnPEvent.Buffer = (&mut blk.power as *mut u32).cast();
        blk.notif.NetPnPEvent.BufferLength = 4;
        pnp(k, &b.proto, Some(&b), blk, &format!("the {what} of {}", a.name))
    };
    let event = || match power_event(NetEventSetPower, "set-power")? {
        NDIS_STATUS_SUCCESS => Ok(()),
        st => Err(SimError::Status(st)),
    };
    // OID_PNP_SET_POWER: from NDIS 6.30, a miniport that sets
    // NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND, under protocols of 6.30
    // or later, keeps its stack running through a power change.
    let protocol_630 = b.proto.chars.MajorNdisVersion == 6 && b.proto.chars.MinorNdisVersion >= 30;
    if a.spec.no_pause_on_suspend && protocol_630 {
        if state != NetDeviceStateD0 {
            power_event(NetEventQueryPower, "query-power")?;
        } else {
            lock(&a.model).powered = true;
            hold_set_power_d0(k, a);
        }
        return event();
    }
    if state != NetDeviceStateD0 {
        // Into low power: the power manager asks first (a protocol cannot
        // veto it: the answer is not looked at), then the set-power event,
        // then a pause for low power. The adapter is in low power from
        // the moment the driver completes the event (`pnp_done`), not
        // only once this thread sees it: an OID request the driver makes
        // after it said it was done is one the adapter in low power gets.
        power_event(NetEventQueryPower, "query-power")?;
        event()?;
        let running = b.state() == BindingState::Running;
        a.resume_running.store(running, Ordering::Release);
        if running {
            pause_for(k, a, NDIS_PAUSE_LOW_POWER)?;
        }
    } else {
        // Back to D0: the restart first, then the set-power event.
        lock(&a.model).powered = true;
        if a.resume_running.swap(false, Ordering::AcqRel) && b.state() == BindingState::Paused {
            restart(k, a, spec)?;
        }
        hold_set_power_d0(k, a);
        event()?;
    }
    Ok(())
}

/// `Sim::hold_set_power_d0`: a return to D0 waits here, after its restart
/// (if any) completed and its work item finished, and before
/// `NetEventSetPower` for D0 is delivered, until
/// `Sim::release_set_power_d0`, at most the watchdog's time. NDIS sends
/// the two one after the other, but the binding runs from the restart's
/// completion on, and the protocol's threads with it: what they do in
/// between is done before the driver hears of D0.
fn hold_set_power_d0(k: &Kernel, a: &Adapter) {
    if !a.d0_hold.load(Ordering::Acquire) {
        return;
    }
    a.d0_held.fetch_add(1, Ordering::AcqRel);
    k.wait_until(k.config.watchdog, "a NetEventSetPower for D0 the test held", || !a.d0_hold.load(Ordering::Acquire));
    a.d0_held.fetch_sub(1, Ordering::AcqRel);
}

/// The events `other_event` delivers: the ones NDIS sends besides pause,
/// restart, set power and BindsComplete (which have calls of their own).
pub const OTHER_EVENTS: &[NET_PNP_EVENT_CODE] = &[
    NetEventQueryPower,
    NetEventQueryRemoveDevice,
    NetEventCancelRemoveDevice,
    NetEventReconfigure,
    NetEventBindList,
    NetEventPnPCapabilities,
    NetEventPortActivation,
    NetEventPortDeactivation,
];

/// Delivers `code` (one of `OTHER_EVENTS`) with a copy of `buffer` (NULL
/// when empty) to `a`'s binding, or to the protocol (binding context NULL)
/// when `a` is None, as NDIS sends a global reconfigure or a bind list.
/// NDIS acts on none of the answers here (a failed remove query would only
/// veto the removal, which the caller does not go on with); it is returned.
pub(crate) fn other_event(
    k: &Kernel,
    a: Option<&Arc<Adapter>>,
    code: NET_PNP_EVENT_CODE,
    buffer: &[u8],
) -> Result<NDIS_STATUS, SimError> {
    if !OTHER_EVENTS.contains(&code) {
        return Err(SimError::Other(format!("event {code} has a call of its own, or is no NET_PNP_EVENT_CODE")));
    }
    let Some(proto) = k.ndis.protocol() else {
        return Err(SimError::State("no protocol is registered".into()));
    };
    let b = a.map(|a| open_binding(a)).transpose()?;
    let mut blk = pnp_block(code);
    blk.other = buffer.to_vec();
    if !blk.other.is_empty() {
        blk.notif.NetPnPEvent.Buffer = blk.other.as_mut_ptr().cast();
        blk.notif.NetPnPEvent.BufferLength = blk.other.len() as u32;
    }
    let what = format!("event {code} of {}", a.map_or("the protocol", |a| a.name.as_str()));
    pnp(k, &proto, b.as_ref(), blk, &what)
}

/// The protocol-level `NetEventBindsComplete`.
pub(crate) fn binds_complete(k: &Kernel) -> Result<(), SimError> {
    let Some(proto) = k.ndis.protocol() else {
        return Err(SimError::State("no protocol is registered".into()));
    };
    let st = pnp(k, &proto, None, pnp_block(NetEventBindsComplete), "BindsComplete")?;
    k.ndis.binds_completed.store(true, Ordering::Release);
    if st != NDIS_STATUS_SUCCESS {
        return Err(SimError::Status(st));
    }
    Ok(())
}
