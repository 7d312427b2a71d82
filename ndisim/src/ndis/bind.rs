//! Binding: `ProtocolBindAdapterEx` and its open, `NdisCloseAdapterEx`, the
//! unbind.

use super::*;
use crate::adapter::{self, Completion};
use crate::kernel::{DISPATCH_LEVEL, Kernel, PASSIVE_LEVEL, call_driver, check_irql_eq, check_irql_max};
use crate::verifier::{Rule, lock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// NDIS's `NDIS_RECEIVE_SCALE_CAPABILITIES` (revision 1), built by hand:
/// header, CapabilitiesFlags, NumberOfInterruptMessages,
/// NumberOfReceiveQueues.
pub(super) fn rss_caps() -> Box<[u8; 16]> {
    let mut b = Box::new([0u8; 16]);
    b[0] = 0x88; // NDIS_OBJECT_TYPE_RSS_CAPABILITIES
    b[1] = 1;
    b[2..4].copy_from_slice(&16u16.to_le_bytes());
    b[4..8].copy_from_slice(&0x0000_0300u32.to_le_bytes()); // IPV4 | IPV6 hash types
    b[8..12].copy_from_slice(&4u32.to_le_bytes());
    b[12..16].copy_from_slice(&4u32.to_le_bytes());
    b
}

/// Calls the protocol's `ProtocolUninstall` at PASSIVE_LEVEL.
pub(crate) fn uninstall(k: &Kernel) -> Result<(), SimError> {
    let Some(proto) = k.ndis.protocol() else { return Err(SimError::State("no protocol is registered".into())) };
    let Some(handler) = proto.chars.UninstallHandler else { return Ok(()) };
    call_driver("ProtocolUninstall", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler; it takes no arguments.
        unsafe { handler() }
    });
    Ok(())
}

/// Binds the protocol to `a`: `ProtocolBindAdapterEx` and its open.
pub(crate) fn bind(k: &Kernel, a: &Arc<Adapter>) -> Result<(), SimError> {
    let Some(proto) = k.ndis.protocol() else { return Err(SimError::State("no protocol is registered".into())) };
    if lock(&a.binding).is_some() {
        return Err(SimError::State(format!("adapter {} is bound already", a.name)));
    }
    // The binding opened by this bind takes status indications until the
    // bind completes (`status::status_binding`); after that as `a.binding`.
    struct Opening<'a>(&'a Adapter);
    impl Drop for Opening<'_> {
        fn drop(&mut self) {
            *lock(&self.0.opening) = None;
        }
    }
    let _opening = Opening(a);
    uro_at_bind(a, &proto);
    // NDIS binds an adapter in D0: one left in a low-power state by its
    // last binding is powered again first.
    lock(&a.model).powered = true;
    a.resume_running.store(false, Ordering::Release);
    let m = lock(&a.model).clone();
    let name_buf = a.ndis_name.clone();
    let section_buf = wstr(&proto.name);
    let mut ctx = Box::new(BindCtx {
        magic: BINDCTX_MAGIC,
        adapter: a.idx,
        opened: Mutex::new(None),
        // SAFETY: NDIS_BIND_PARAMETERS is plain data; filled below.
        params: unsafe { std::mem::zeroed() },
        adapter_name: ustr(&name_buf),
        name_buf,
        section: ustr(&section_buf),
        section_buf,
        rss: rss_caps(),
    });
    ctx.adapter_name = ustr(&ctx.name_buf);
    ctx.section = ustr(&ctx.section_buf);
    let an: *mut UNICODE_STRING = &mut ctx.adapter_name;
    let sec: *mut UNICODE_STRING = &mut ctx.section;
    let rss = if a.spec.rss { ctx.rss.as_mut_ptr().cast() } else { std::ptr::null_mut() };
    let p = &mut ctx.params;
    // The running NDIS's revision (`versions`): 4 from 6.30 on.
    let (revision, size) = bind_parameters_revision(lock(&k.ndis.versions.max).1);
    p.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_BIND_PARAMETERS, Revision: revision, Size: size };
    p.ProtocolSection = sec;
    p.AdapterName = an;
    p.PhysicalDeviceObject = std::ptr::null_mut();
    p.MediaType = NdisMedium802_3;
    p.MtuSize = m.mtu;
    p.MaxXmitLinkSpeed = m.speed;
    p.XmitLinkSpeed = if m.link_up { m.speed } else { 0 };
    p.MaxRcvLinkSpeed = m.speed;
    p.RcvLinkSpeed = if m.link_up { m.speed } else { 0 };
    p.MediaConnectState = if m.link_up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
    p.MediaDuplexState = MediaDuplexStateFull;
    p.LookaheadSize = m.mtu;
    p.SupportedPacketFilters = m.supported_filters;
    p.MaxMulticastListSize = adapter::MAX_MULTICAST as u32;
    p.MacAddressLength = 6;
    p.CurrentMacAddress[..6].copy_from_slice(&m.mac);
    p.PhysicalMediumType = 14; // NdisPhysicalMedium802_3
    p.RcvScaleCapabilities = rss;
    p.BoundIfNetluid = 0x0006_0000_0000_0000 | (a.idx as u64 + 1);
    p.BoundIfIndex = a.idx as u32 + 10;
    p.LowestIfNetluid = p.BoundIfNetluid;
    p.LowestIfIndex = p.BoundIfIndex;
    p.AccessType = 2; // NET_IF_ACCESS_BROADCAST
    p.DirectionType = 0; // NET_IF_DIRECTION_SENDRECEIVE
    p.ConnectionType = 1; // NET_IF_CONNECTION_DEDICATED
    p.IfType = 6; // IF_TYPE_ETHERNET_CSMACD
    p.IfConnectorPresent = 1;
    p.MacOptions = a.mac_options();
    p.CompartmentId = 1;
    p.BoundAdapterName = an;
    // Past the size of an older revision: garbage, as on an older NDIS.
    // SAFETY: our own plain-data parameters.
    unsafe { poison_past(&mut ctx.params, size) };
    let key = &*ctx as *const BindCtx as usize;
    let params: *mut NDIS_BIND_PARAMETERS = &mut ctx.params;
    k.ndis.op_begin(OpKind::Bind, key, 0, (0, 0));
    let handler = proto.chars.BindAdapterHandlerEx.expect("validated");
    let pctx = proto.ctx;
    k.ndis.stats.binds_begun.fetch_add(1, Ordering::AcqRel);
    let in_handler = PnpHandlerGuard::enter();
    let st = owned::in_bind(key, || {
        call_driver("ProtocolBindAdapterEx", PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its context, our bind
            // context and parameters that live until the bind finishes.
            unsafe { handler(pctx as NDIS_HANDLE, key as NDIS_HANDLE, params) }
        })
    });
    drop(in_handler);
    if st != NDIS_STATUS_SUCCESS && st != NDIS_STATUS_PENDING {
        owned::check_bind_failed(k, key, "ProtocolBindAdapterEx");
    }
    let result =
        k.ndis.op_returned(k, OpKind::Bind, key, st, "ProtocolBindAdapterEx", &format!("the bind of {}", a.name));
    let opened = lock(&ctx.opened).take();
    // The bind context dies here; keep it until the simulation ends in case
    // the driver kept a pointer (NDIS would have freed it).
    let final_status = match result {
        Ok(s) => s,
        Err(e) => {
            k.ndis.kept.keep(ctx);
            return Err(e);
        }
    };
    drop(ctx);
    let made = match (final_status, &opened) {
        (NDIS_STATUS_SUCCESS, Some(b)) => Some(Arc::as_ptr(b) as usize),
        _ => None,
    };
    owned::bind_finished(k, key, made);
    match (final_status, opened) {
        (NDIS_STATUS_SUCCESS, Some(b)) => {
            if !b.closed.load(Ordering::Acquire)
                && matches!(b.state(), BindingState::Opening | BindingState::Paused)
                && !b.close_completed.load(Ordering::Acquire)
            {
                // Opened: the binding is Paused until the restart.
                b.set_state(BindingState::Paused);
                *lock(&a.binding) = Some(b);
                bind_ended(a, true);
                Ok(())
            } else {
                Err(SimError::State("the bind succeeded but the adapter was not left open".into()))
            }
        }
        (NDIS_STATUS_SUCCESS, None) => {
            Violation::new(
                Rule::InvalidParameter,
                "ProtocolBindAdapterEx",
                format!("the bind of {} succeeded without a successful NdisOpenAdapterEx", a.name),
            )
            .report();
            Err(SimError::Other("bind succeeded without an open".into()))
        }
        (s, opened) => {
            if let Some(b) = opened {
                if !b.closed.load(Ordering::Acquire) && b.state() != BindingState::Unbound {
                    Violation::new(
                        Rule::ResourceLeak,
                        "ProtocolBindAdapterEx",
                        format!("the bind failed ({s:#x}) but the adapter it opened was not closed"),
                    )
                    .with_binding(b.name.clone())
                    .report();
                }
                b.set_state(BindingState::Unbound);
            }
            bind_ended(a, false);
            Err(SimError::Status(s))
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisOpenAdapterEx(
    ph: NDIS_HANDLE,
    pbc: NDIS_HANDLE,
    open: *mut NDIS_OPEN_PARAMETERS,
    bind_ctx: NDIS_HANDLE,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const CALL: &str = "NdisOpenAdapterEx";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        let Some(proto) = proto_of(ph, CALL) else { return NDIS_STATUS_INVALID_PARAMETER };
        let bc = bind_ctx as usize;
        // SAFETY: a bind context NDIS gave out is a live `BindCtx` during
        // the bind; anything else fails the magic check (read only when the
        // pointer is one of the pending bind operations).
        let pending = lock(&k.ndis.ops).iter().any(|o| o.kind == OpKind::Bind && o.key == bc && o.completed.is_none());
        if !pending {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "BindContext is not the context of a bind in progress (call NdisOpenAdapterEx from ProtocolBindAdapterEx)",
            )
            .with_object(bc)
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: checked: a pending bind's context.
        let ctx = unsafe { &*(bc as *const BindCtx) };
        if open.is_null() || out.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null OpenParameters or NdisBindingHandle").report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's open parameters.
        let o = unsafe { &*open };
        if o.Header.Type != NDIS_OBJECT_TYPE_OPEN_PARAMETERS
            || o.Header.Revision < NDIS_OPEN_PARAMETERS_REVISION_1
            || o.Header.Size < NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1
        {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "bad NDIS_OPEN_PARAMETERS header {{Type {:#x}, Revision {}, Size {:#x}}}",
                    o.Header.Type, o.Header.Revision, o.Header.Size
                ),
            )
            .with_object(open as usize)
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        let a = k.ndis.adapter(ctx.adapter).clone();
        // SAFETY: a UNICODE_STRING the driver passes.
        let name = unsafe { read_ustr(o.AdapterName) };
        let want = String::from_utf16_lossy(&a.ndis_name[..a.ndis_name.len() - 1]);
        if name.as_deref() != Some(want.as_str()) {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("AdapterName {name:?} is not the bind's adapter {want:?}"),
            )
            .report();
            return NDIS_STATUS_ADAPTER_NOT_FOUND;
        }
        if o.MediumArray.is_null() || o.MediumArraySize == 0 || o.SelectedMediumIndex.is_null() {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "MediumArray, MediumArraySize and SelectedMediumIndex are required",
            )
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's medium array of MediumArraySize entries.
        let media = unsafe { std::slice::from_raw_parts(o.MediumArray, o.MediumArraySize as usize) };
        let Some(i) = media.iter().position(|&m| m == NdisMedium802_3) else {
            return NDIS_STATUS_UNSUPPORTED_MEDIA;
        };
        if lock(&ctx.opened).is_some() {
            Violation::new(Rule::InvalidParameter, CALL, "this bind already opened the adapter")
                .with_object(bc)
                .report();
            return NDIS_STATUS_FAILURE;
        }
        let first = a.opens.fetch_add(1, Ordering::AcqRel) == 0;
        let fail = if a.spec.open_fails {
            Some(NDIS_STATUS_ADAPTER_NOT_FOUND)
        } else {
            (a.spec.open_fails_once && first).then_some(NDIS_STATUS_RESOURCES)
        };
        if let Some(st) = fail {
            // The miniport could not be opened (`open=fail`, or
            // `open=fail-once` the first time), at once or, with
            // `open=pending`, through ProtocolOpenAdapterCompleteEx.
            if a.spec.open != Completion::Sync {
                complete_open(k, &a, &proto, pbc as usize, st, None);
                return NDIS_STATUS_PENDING;
            }
            return st;
        }
        let b = Arc::new(Binding {
            magic: BINDING_MAGIC,
            adapter: a.idx,
            ctx: pbc as usize,
            proto: proto.clone(),
            name: a.name.clone(),
            state: Mutex::new(BindingState::Opening),
            running: AtomicBool::new(false),
            pause_in_handler: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_called: AtomicBool::new(false),
            close_completed: AtomicBool::new(false),
            sends: AtomicU64::new(0),
            completing: AtomicU64::new(0),
            sent_ok: AtomicU64::new(0),
            sent_failed: AtomicU64::new(0),
            recvs: AtomicU64::new(0),
            retained: std::sync::atomic::AtomicI64::new(0),
            oids: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            in_calls: AtomicU64::new(0),
            in_returns: AtomicU64::new(0),
            pause_phase: std::sync::atomic::AtomicU8::new(PAUSE_NONE),
            restarts: AtomicU64::new(0),
            open_done: AtomicBool::new(a.spec.open == Completion::Sync),
        });
        lock(&k.ndis.bindings).push(b.clone());
        *lock(&ctx.opened) = Some(b.clone());
        // The bind operation now names its binding (NdisCloseAdapterEx is
        // allowed on it until the bind completes).
        if let Some(op) =
            lock(&k.ndis.ops).iter_mut().find(|o| o.kind == OpKind::Bind && o.key == bc && o.completed.is_none())
        {
            op.binding = Arc::as_ptr(&b) as usize;
        }
        // SAFETY: the driver's out parameters.
        unsafe {
            *o.SelectedMediumIndex = i as u32;
            *out = b.handle();
        }
        if a.spec.open != Completion::Sync {
            let opened = b.clone();
            complete_open(k, &a, &proto, pbc as usize, NDIS_STATUS_SUCCESS, Some(opened));
            return NDIS_STATUS_PENDING;
        }
        // Open: the miniport may indicate status to it from now on, before
        // this call returns.
        super::status::opened(k, &a, &b);
        NDIS_STATUS_SUCCESS
    })
}

impl super::Ndis {
    /// The bindings NDIS may still call with their `ProtocolBindingContext`
    /// (open or opening, their close not complete) whose context is in
    /// `lo..hi`: (adapter name, context).
    pub(crate) fn contexts_in(&self, lo: usize, hi: usize) -> Vec<(String, usize)> {
        lock(&self.bindings)
            .iter()
            .filter(|b| (lo..hi).contains(&b.ctx) && !b.close_completed.load(Ordering::Acquire))
            .map(|b| (b.name.clone(), b.ctx))
            .collect()
    }

    /// Frames of sends given back with a status other than success, on
    /// every binding there has been.
    pub(crate) fn sends_failed(&self) -> u64 {
        lock(&self.bindings).iter().map(|b| b.sent_failed.load(Ordering::Acquire)).sum()
    }
}

/// A pended open's `ProtocolOpenAdapterCompleteEx` with `status`: inside
/// the call, before it returns PENDING (`open=inline`), or from a passive
/// worker.
fn complete_open(k: &Kernel, a: &Adapter, proto: &Protocol, pbc: usize, status: NDIS_STATUS, b: Option<Arc<Binding>>) {
    let handler = proto.chars.OpenAdapterCompleteHandlerEx.expect("validated");
    let complete = move || {
        if let Some(b) = &b {
            b.open_done.store(true, Ordering::Release);
            // Open: status indications may come from now on, racing the
            // completion handler.
            if let Some(k) = crate::kernel::kernel() {
                super::status::opened(k, &k.ndis.adapter(b.adapter).clone(), b);
            }
        }
        call_driver("ProtocolOpenAdapterCompleteEx", PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its binding context.
            unsafe { handler(pbc as NDIS_HANDLE, status) }
        })
    };
    if a.spec.open == Completion::Inline {
        complete();
    } else {
        k.dpc_passive(complete, "ProtocolOpenAdapterCompleteEx");
    }
}

pub(crate) unsafe extern "win64" fn NdisCompleteBindAdapterEx(bind_ctx: NDIS_HANDLE, status: NDIS_STATUS) {
    const CALL: &str = "NdisCompleteBindAdapterEx";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if status == NDIS_STATUS_PENDING {
            Violation::new(Rule::InvalidParameter, CALL, "completed with NDIS_STATUS_PENDING")
                .with_object(bind_ctx as usize)
                .report();
        }
        if status != NDIS_STATUS_SUCCESS && status != NDIS_STATUS_PENDING {
            owned::check_bind_failed(k, bind_ctx as usize, CALL);
        }
        k.ndis.op_complete(OpKind::Bind, bind_ctx as usize, status, CALL, None);
    })
}

pub(crate) unsafe extern "win64" fn NdisCloseAdapterEx(h: NDIS_HANDLE) -> NDIS_STATUS {
    const CALL: &str = "NdisCloseAdapterEx";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        let Some(in_call) = k.ndis.binding(h, CALL, false) else { return NDIS_STATUS_INVALID_PARAMETER };
        let b = in_call.get();
        // nf-ndis-ndiscloseadapterex: a protocol closes an adapter from its
        // bind (an open it cannot keep) or its unbind, pended or not; to
        // close one anywhere else it calls NdisUnbindAdapter, and NDIS
        // unbinds. Closing it under NDIS's feet leaves NDIS a binding it
        // will still pause, restart and unbind. Refused here (the binding
        // stays open, for its unbind to close).
        if !k.ndis.bind_or_unbind_pending(b) {
            Violation::new(
                Rule::PnpContext,
                CALL,
                format!(
                    "closed the binding outside its bind or unbind (no ProtocolBindAdapterEx or \
                     ProtocolUnbindAdapterEx of it is in progress, the binding is {:?}): a protocol that must close \
                     an adapter elsewhere calls NdisUnbindAdapter; the close is refused",
                    b.state()
                ),
            )
            .with_binding(b.name.clone())
            .with_object(h as usize)
            .report();
            return NDIS_STATUS_FAILURE;
        }
        // A request, cancel or send on another CPU from here on is a use
        // of a handle being closed (caught in `Ndis::binding`).
        b.close_called.store(true, Ordering::SeqCst);
        super::in_call::check_close(b, h as usize);
        let a = k.ndis.adapter(b.adapter).clone();
        let pends = a.spec.close != Completion::Sync;
        // A close that completes in the call stops indications here; one
        // that pends, only when it completes: "The driver can get receive
        // and status indications from the underlying miniport adapter
        // until the close operation is complete" (ProtocolUnbindAdapterEx).
        if !pends {
            stop_indications(k, b, h as usize);
        }
        // Received NBLs: all of them once the calls have returned; while
        // indications may still run (a close that pends), those the driver
        // kept past its handler (the rest are checked at the completion).
        let r = if pends { b.retained.load(Ordering::Acquire).max(0) as u64 } else { b.recvs.load(Ordering::Acquire) };
        let (s, o) = (b.sends.load(Ordering::Acquire), b.oids.load(Ordering::Acquire));
        if s + r + o != 0 {
            Violation::new(
                Rule::CloseOutstanding,
                CALL,
                format!("closed with {s} send NBL(s) in flight, {r} received NBL(s) not returned and {o} OID request(s) pending"),
            )
            .with_binding(b.name.clone())
            .with_object(h as usize)
            .report();
        }
        b.closed.store(true, Ordering::Release);
        b.set_state(BindingState::Closing);
        if pends {
            let handler = b.proto.chars.CloseAdapterCompleteHandlerEx.expect("validated");
            let ctx = b.ctx;
            let bp = b as *const Binding as usize;
            let hv = h as usize;
            let complete = move || {
                // SAFETY: a binding stays allocated for the simulation.
                let b = unsafe { &*(bp as *const Binding) };
                if let Some(k) = kernel::kernel() {
                    stop_indications(k, b, hv);
                    super::in_call::check_close_complete(b, "ProtocolCloseAdapterCompleteEx");
                    // What was indicated since the call is back by now.
                    let r = b.recvs.load(Ordering::Acquire);
                    if r != 0 {
                        Violation::new(
                            Rule::CloseOutstanding,
                            "ProtocolCloseAdapterCompleteEx",
                            format!("{r} NBL(s) indicated after NdisCloseAdapterEx were not returned when the close completed"),
                        )
                        .with_binding(b.name.clone())
                        .report();
                    }
                }
                b.close_completed.store(true, Ordering::Release);
                call_driver("ProtocolCloseAdapterCompleteEx", PASSIVE_LEVEL, || {
                    // SAFETY: the driver's handler with its binding context.
                    unsafe { handler(ctx as NDIS_HANDLE) }
                })
            };
            if a.spec.close == Completion::Inline {
                // Completed inside the call, before it returns PENDING.
                complete();
            } else {
                k.dpc_passive(complete, "ProtocolCloseAdapterCompleteEx");
            }
            return NDIS_STATUS_PENDING;
        }
        super::in_call::check_close_complete(b, CALL);
        b.close_completed.store(true, Ordering::Release);
        NDIS_STATUS_SUCCESS
    })
}

/// The close of `b` (handle `h`) stops its indications: none starts from
/// here on, the calls into it running on other processors return first
/// (as NDIS's own references make it wait), and the packet filter and
/// multicast list, which belong to the open, go (a new binding starts
/// receiving nothing).
fn stop_indications(k: &Kernel, b: &Binding, h: usize) {
    b.calls.fetch_or(1, Ordering::AcqRel);
    if !k.wait_until(k.config.watchdog, "the calls into a closing binding", || b.calls_elsewhere() == 0) {
        Violation::new(
            Rule::Watchdog,
            "NdisCloseAdapterEx",
            format!("a handler of the binding did not return within {} ms of the close", k.config.watchdog.as_millis()),
        )
        .with_binding(b.name.clone())
        .with_object(h)
        .report();
    }
    let a = k.ndis.adapter(b.adapter);
    let mut m = lock(&a.model);
    m.packet_filter = 0;
    m.multicast.clear();
}

/// Unbinds: pauses a running binding, then `ProtocolUnbindAdapterEx`.
pub(crate) fn unbind(k: &Kernel, a: &Arc<Adapter>) -> Result<(), SimError> {
    let Some(b) = lock(&a.binding).clone() else {
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    match b.state() {
        BindingState::Running => pause(k, a)?,
        BindingState::Paused => {}
        s => {
            return Err(SimError::State(format!(
                "binding {} is {s:?}; it can only be unbound from Running or Paused",
                a.name
            )));
        }
    }
    b.set_state(BindingState::Closing);
    let unbind_ctx = Box::new(UNBINDCTX_MAGIC);
    let key = &*unbind_ctx as *const u64 as usize;
    k.ndis.op_begin(OpKind::Unbind, key, Arc::as_ptr(&b) as usize, (0, 0));
    let handler = b.proto.chars.UnbindAdapterHandlerEx.expect("validated");
    let ctx = b.ctx;
    let call = b.enter_call(true);
    let in_handler = PnpHandlerGuard::enter();
    let st = call_driver("ProtocolUnbindAdapterEx", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler with our unbind context and its
        // binding context.
        unsafe { handler(key as NDIS_HANDLE, ctx as NDIS_HANDLE) }
    });
    drop(in_handler);
    drop(call);
    if st == NDIS_STATUS_SUCCESS {
        owned::check_released(k, Arc::as_ptr(&b) as usize, Some(b.name.clone()), "ProtocolUnbindAdapterEx");
    }
    if st != NDIS_STATUS_SUCCESS && st != NDIS_STATUS_PENDING {
        Violation::new(
            Rule::InvalidParameter,
            "ProtocolUnbindAdapterEx",
            format!("returned {st:#x}; an unbind handler returns only NDIS_STATUS_SUCCESS or NDIS_STATUS_PENDING"),
        )
        .with_binding(b.name.clone())
        .report();
    }
    let r =
        k.ndis.op_returned(k, OpKind::Unbind, key, st, "ProtocolUnbindAdapterEx", &format!("the unbind of {}", a.name));
    k.ndis.kept.keep(unbind_ctx);
    r?;
    if !b.closed.load(Ordering::Acquire) {
        Violation::new(
            Rule::ResourceLeak,
            "ProtocolUnbindAdapterEx",
            "the unbind completed without NdisCloseAdapterEx",
        )
        .with_binding(b.name.clone())
        .report();
    } else {
        // A pending close must have completed before the unbind completes.
        k.wait_until(k.config.watchdog, "a pending close", || b.close_completed.load(Ordering::Acquire));
    }
    let r = b.recvs.load(Ordering::Acquire);
    if r != 0 {
        Violation::new(Rule::NblLeak, "ProtocolUnbindAdapterEx", format!("{r} received NBL(s) were never returned"))
            .with_binding(b.name.clone())
            .report();
    }
    a.sweep_returned(k, "ProtocolUnbindAdapterEx");
    b.set_state(BindingState::Unbound);
    *lock(&a.binding) = None;
    Ok(())
}

pub(crate) unsafe extern "win64" fn NdisCompleteUnbindAdapterEx(unbind_ctx: NDIS_HANDLE) {
    const CALL: &str = "NdisCompleteUnbindAdapterEx";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if let Some(b) = k.ndis.op_binding(OpKind::Unbind, unbind_ctx as usize) {
            owned::check_released(k, b, k.ndis.binding_name(b), CALL);
        }
        k.ndis.op_complete(OpKind::Unbind, unbind_ctx as usize, NDIS_STATUS_SUCCESS, CALL, None);
    })
}
