//! The handlers NDIS calls for bindings and PnP events. Each turns raw
//! pointers into the wrapper's types, takes a strong count of the binding
//! for as long as it runs, and routes every state change through the
//! binding's state machine.

use super::binding::{Binding, PnpKind, RestartToken, closed};
use super::complete_at_drop;
use super::registration::{protocol_handle, registered_protocol};
use super::{BindParams, GeneralAttributes, LinkState, NdisStatus, Protocol, RestartInfo};
use crate::kernel::sync::{AtDispatch, GateState, Irql};
use crate::kernel::ustr;
use alloc::sync::Arc;
use core::ptr;
use core::sync::atomic::Ordering;
use ndis_sys::*;
use rawnic_logic::state::BindingEvent;

/// Proof of DISPATCH_LEVEL from an NDIS `*_DISPATCH_LEVEL` flag.
pub(crate) fn irql_from_flag<'a>(flags: u32, dispatch_flag: u32) -> Irql<'a> {
    if flags & dispatch_flag != 0 {
        // SAFETY: NDIS sets the flag only when the caller runs at
        // DISPATCH_LEVEL, for the duration of the call.
        Irql::Dispatch(unsafe { AtDispatch::assume() })
    } else {
        Irql::AtMostDispatch
    }
}

/// # Safety
/// `p` points to `NDIS_BIND_PARAMETERS` NDIS passed to the bind handler.
unsafe fn read_bind_params(p: *const NDIS_BIND_PARAMETERS) -> Option<BindParams> {
    // SAFETY: valid for the duration of the bind handler (caller).
    let p = unsafe { &*p };
    let mut mac = [0u8; 6];
    let n = usize::from(p.MacAddressLength).min(6);
    mac[..n].copy_from_slice(&p.CurrentMacAddress[..n]);
    Some(BindParams {
        // SAFETY: NDIS passes a valid adapter name.
        adapter_name: unsafe { ustr::try_from_unicode_string(p.AdapterName) }.ok()?,
        medium: p.MediaType,
        mtu: p.MtuSize,
        mac,
        max_xmit_speed: p.MaxXmitLinkSpeed,
        xmit_speed: p.XmitLinkSpeed,
        rcv_speed: p.RcvLinkSpeed,
        connect_state: p.MediaConnectState,
        duplex_state: p.MediaDuplexState,
        lookahead: p.LookaheadSize,
        supported_packet_filters: p.SupportedPacketFilters,
        mac_options: p.MacOptions,
        if_index: p.BoundIfIndex,
    })
}

static MEDIUM_ARRAY: [NDIS_MEDIUM; 1] = [NdisMedium802_3];

pub(super) unsafe extern "win64" fn bind_adapter<T: Protocol>(
    driver_ctx: NDIS_HANDLE,
    bind_ctx: NDIS_HANDLE,
    params: *mut NDIS_BIND_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: as NDIS called this.
    let status = unsafe { bind_adapter_inner::<T>(driver_ctx, bind_ctx, params) };
    if status != NDIS_STATUS_SUCCESS && status != NDIS_STATUS_PENDING {
        // (A failure told later is noted where it is armed.)
        super::registration::bind_declined();
    }
    status
}

/// `ProtocolBindAdapterEx`'s body.
///
/// # Safety
/// As NDIS calls `ProtocolBindAdapterEx`: `driver_ctx` is the protocol
/// object, `params` valid for the call.
unsafe fn bind_adapter_inner<T: Protocol>(
    driver_ctx: NDIS_HANDLE,
    bind_ctx: NDIS_HANDLE,
    params: *mut NDIS_BIND_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: as this function's.
    let b = match unsafe { new_binding::<T>(driver_ctx, params) } {
        Ok(b) => b,
        Err(status) => return status,
    };
    b.bind_ctx.store(bind_ctx, Ordering::Release);
    {
        let mut c = b.core.lock();
        b.apply(&mut c, BindingEvent::Bind);
    }
    let mut open = NDIS_OPEN_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_OPEN_PARAMETERS,
            Revision: NDIS_OPEN_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1,
        },
        // SAFETY: `params` is valid for the call (NDIS).
        AdapterName: unsafe { (*params).AdapterName },
        MediumArray: MEDIUM_ARRAY.as_ptr().cast_mut(),
        MediumArraySize: MEDIUM_ARRAY.len() as u32,
        SelectedMediumIndex: b.selected_medium.get(),
        FrameTypeArray: ptr::null_mut(),
        FrameTypeArraySize: 0,
    };
    // Whether a failed bind is told by the return or by the binding's drop.
    let shared = b.complete_at_drop.bind();
    // NDIS's strong count, given back when the close completes or the open
    // fails.
    let ctx = Arc::into_raw(b.clone()) as NDIS_HANDLE;
    // SAFETY: `open` is initialised; the adapter name and the medium array
    // outlive the open (NDIS keeps the bind parameters until the bind
    // completes; the array is static); the selected-medium cell and the
    // handle slot live in the binding, which NDIS's strong count keeps
    // alive until the open completes.
    let status = unsafe { NdisOpenAdapterEx(protocol_handle(), ctx, &mut open, bind_ctx, b.handle_slot()) };
    if status == NDIS_STATUS_PENDING {
        // `open_adapter_complete` finishes; whoever of it and this handler
        // comes second decides between PENDING and the status.
        if !b.bind_hs.handler_returns() {
            let status = b.bind_status.load(Ordering::Acquire);
            if status == NDIS_STATUS_SUCCESS {
                return status;
            }
            // Failed: NDIS hears it once the binding is freed
            // (`complete_at_drop`).
            // SAFETY: `bind_ctx` is this bind handler's own context; the
            // open's completion came first and left the bind to this
            // handler, which has not completed it.
            unsafe { b.complete_at_drop.arm_bind_failure(bind_ctx, status) };
        }
    } else {
        finish_open(&b, NdisStatus(status));
        if status == NDIS_STATUS_SUCCESS {
            return status;
        }
        // SAFETY: `bind_ctx` is this bind handler's own context; the open
        // failed at once, so nothing else completes the bind.
        unsafe { b.complete_at_drop.arm_bind_failure(bind_ctx, status) };
    }
    // Pending, or failed: this reference goes first; then PENDING while the
    // binding lives, or the failure once it is freed.
    drop(b);
    complete_at_drop::handler_result(&shared)
}

/// The binding `ProtocolBindAdapterEx` makes, from its parameters; the
/// status to fail the bind with if it cannot be made. Out of line: the
/// parameters and the logic's state are built on its stack frame, which is
/// gone before the open, under which NDIS may complete the open, OID
/// requests and more inline (at `NdisRegisterProtocolDriver`, all of it
/// under `DriverEntry`'s frame).
///
/// # Safety
/// As `bind_adapter_inner`'s.
#[inline(never)]
unsafe fn new_binding<T: Protocol>(
    driver_ctx: NDIS_HANDLE,
    params: *mut NDIS_BIND_PARAMETERS,
) -> Result<Arc<Binding<T>>, NDIS_STATUS> {
    // SAFETY: the driver context is the protocol object the registration
    // was made with, alive while NDIS calls handlers.
    let proto: &T = unsafe { &*(driver_ctx as *const T) };
    // SAFETY: NDIS passes valid parameters for the call.
    let Some(bp) = (unsafe { read_bind_params(params) }) else {
        return Err(NDIS_STATUS_RESOURCES);
    };
    if bp.medium != NdisMedium802_3 {
        return Err(NDIS_STATUS_UNSUPPORTED_MEDIA);
    }
    let logic = proto.create_binding(&bp).map_err(|s| s.0)?;
    Binding::new(proto, bp, logic, protocol_handle()).map_err(|_| NDIS_STATUS_RESOURCES)
}

/// The open finished: Paused on success, Unbound (and forgotten) on failure.
fn finish_open<T: Protocol>(b: &Arc<Binding<T>>, status: NdisStatus) {
    let ok = status == NdisStatus::SUCCESS;
    {
        let mut c = b.core.lock();
        b.apply(&mut c, if ok { BindingEvent::OpenSucceeded } else { BindingEvent::OpenFailed });
        if !ok {
            c.pool.release_all();
        }
    }
    b.bind_status.store(status.0, Ordering::Release);
    b.proto().open_complete(b, if ok { Ok(()) } else { Err(status) });
    if !ok {
        // NDIS will not use the context: give back its strong count.
        // SAFETY: the pointer came from `Arc::into_raw` in `bind_adapter`.
        unsafe { drop(Arc::from_raw(Arc::as_ptr(b))) };
    }
}

pub(super) unsafe extern "win64" fn open_adapter_complete<T: Protocol>(ctx: NDIS_HANDLE, status: NDIS_STATUS) {
    // SAFETY: NDIS passes the context we gave NdisOpenAdapterEx, and holds
    // its strong count until this returns (or until the close).
    let b = unsafe { super::binding_arc::<T>(ctx) };
    finish_open(&b, NdisStatus(status));
    if b.bind_hs.completes() {
        let bind_ctx = b.bind_ctx.load(Ordering::Acquire);
        if status != NDIS_STATUS_SUCCESS {
            // Failed once the binding is freed (`complete_at_drop`):
            // perhaps as `b` drops here.
            // SAFETY: `bind_ctx` is the bind handler's context (stored
            // before it opened); that handler returned PENDING first, so
            // the bind is this completion's to finish, and nothing has.
            unsafe { b.complete_at_drop.arm_bind_failure(bind_ctx, status) };
            return;
        }
        // SAFETY: the bind handler returned NDIS_STATUS_PENDING with this
        // bind context.
        unsafe { NdisCompleteBindAdapterEx(bind_ctx, status) };
    }
}

pub(super) unsafe extern "win64" fn unbind_adapter<T: Protocol>(
    unbind_ctx: NDIS_HANDLE,
    ctx: NDIS_HANDLE,
) -> NDIS_STATUS {
    // SAFETY: NDIS passes our binding context, and holds its count.
    let b = unsafe { super::binding_arc::<T>(ctx) };
    {
        let mut c = b.core.lock();
        // NDIS unbinds only a Paused binding; if it does otherwise, the
        // binding is closed all the same (an unbind cannot be refused).
        b.apply(&mut c, BindingEvent::Unbind);
    }
    b.unbind_ctx.store(unbind_ctx, Ordering::Release);
    let shared = b.complete_at_drop.unbind();
    b.proto().unbind(&b);
    b.begin_close();
    // The binding's drop completes the unbind (`complete_at_drop`): this
    // reference goes first; then PENDING while the binding lives, or
    // SUCCESS if the close is done and it is freed.
    drop(b);
    complete_at_drop::handler_result(&shared)
}

pub(super) unsafe extern "win64" fn close_adapter_complete<T: Protocol>(ctx: NDIS_HANDLE) {
    // SAFETY: NDIS passes our binding context and still holds its count.
    let b = unsafe { super::binding_arc::<T>(ctx) };
    closed(&b);
}

/// Copies a structure of which only the first `len` bytes may be present
/// (an older revision) into a zeroed one.
///
/// # Safety
/// `p` is readable for `len.min(size_of::<S>())` bytes; `S` is plain data.
unsafe fn read_prefix<S>(p: *const u8, len: usize) -> S {
    // SAFETY: `S` is plain data, for which all-zero is a valid value.
    let mut s: S = unsafe { core::mem::zeroed() };
    let n = len.min(core::mem::size_of::<S>());
    // SAFETY: `n` bytes are readable (caller) and fit in `s`.
    unsafe { ptr::copy_nonoverlapping(p, (&mut s as *mut S).cast::<u8>(), n) };
    s
}

/// Reads `NDIS_PROTOCOL_RESTART_PARAMETERS` of `len` bytes, checking its
/// header (a revision 1 structure may be `NDIS_SIZEOF_..._REVISION_1` bytes,
/// shorter than the Rust struct with its tail padding) and each attribute's.
///
/// # Safety
/// `params` is null or valid for `len` bytes, with the buffers it points
/// to.
unsafe fn read_restart(params: *const NDIS_PROTOCOL_RESTART_PARAMETERS, len: u32) -> RestartInfo {
    let mut info = RestartInfo::default();
    let need = NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1 as usize;
    if params.is_null() || (len as usize) < need {
        info.malformed = !params.is_null();
        return info;
    }
    // SAFETY: `len >= need` bytes are readable (caller).
    let p: NDIS_PROTOCOL_RESTART_PARAMETERS = unsafe { read_prefix(params.cast(), len as usize) };
    if p.Header.Type != NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS
        || p.Header.Revision < NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1
        || (p.Header.Size as usize) < need
    {
        info.malformed = true;
        return info;
    }
    if !p.FilterModuleNameBuffer.is_null() && p.FilterModuleNameBufferLength > 0 {
        // SAFETY: NDIS gives `FilterModuleNameBufferLength` bytes.
        let raw =
            unsafe { core::slice::from_raw_parts(p.FilterModuleNameBuffer, p.FilterModuleNameBufferLength as usize) };
        match rawnic_logic::restart::filter_module_names(raw) {
            Ok(names) => info.filter_modules = names,
            Err(rawnic_logic::restart::NamesError::Malformed) => info.malformed = true,
            Err(rawnic_logic::restart::NamesError::NoMemory) => info.no_memory = true,
        }
    }
    let mut attr = p.RestartAttributes;
    let mut guard = 0;
    while !attr.is_null() && guard < 64 {
        guard += 1;
        // SAFETY: each element of the chain is valid (caller).
        let a = unsafe { &*attr };
        let data = a.Data.as_ptr();
        let len = a.DataLength as usize;
        match a.Oid {
            OID_GEN_MINIPORT_RESTART_ATTRIBUTES => {
                // SAFETY: the element carries `DataLength` bytes; at most
                // that many are read.
                let g: NDIS_RESTART_GENERAL_ATTRIBUTES = unsafe { read_prefix(data, len) };
                let rev_size = match g.Header.Revision {
                    1 => NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1,
                    _ => NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2,
                } as usize;
                let ok = g.Header.Type == NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES
                    && g.Header.Revision >= 1
                    && len >= rev_size
                    && g.Header.Size as usize >= NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1 as usize
                    && g.Header.Size as usize <= len;
                if ok {
                    info.general = Some(GeneralAttributes {
                        mtu: g.MtuSize,
                        max_xmit_speed: g.MaxXmitLinkSpeed,
                        max_rcv_speed: g.MaxRcvLinkSpeed,
                        lookahead: g.LookaheadSize,
                        mac_options: g.MacOptions,
                        supported_packet_filters: g.SupportedPacketFilters,
                        max_multicast_list: g.MaxMulticastListSize,
                        has_rss_capabilities: !g.RecvScaleCapabilities.is_null(),
                        revision: g.Header.Revision,
                    });
                } else {
                    info.malformed = true;
                }
            }
            OID_GEN_LINK_STATE if len >= core::mem::size_of::<NDIS_LINK_STATE>() => {
                // SAFETY: `DataLength` bytes of an NDIS_LINK_STATE.
                let l = unsafe { ptr::read_unaligned(data.cast::<NDIS_LINK_STATE>()) };
                info.link = Some(LinkState {
                    connect_state: l.MediaConnectState,
                    duplex_state: l.MediaDuplexState,
                    xmit_speed: l.XmitLinkSpeed,
                    rcv_speed: l.RcvLinkSpeed,
                });
            }
            _ => info.unknown_attributes += 1,
        }
        attr = a.Next;
    }
    if !attr.is_null() {
        info.malformed = true;
    }
    info
}

pub(super) unsafe extern "win64" fn net_pnp_event<T: Protocol>(
    ctx: NDIS_HANDLE,
    notification: *mut NET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    // SAFETY: NDIS passes a valid notification for the call.
    let ev = unsafe { &(*notification).NetPnPEvent };
    if ctx.is_null() {
        // Protocol-level events.
        if ev.NetEvent == NetEventBindsComplete {
            // SAFETY: an NDIS handler: the protocol is registered.
            if let Some(proto) = unsafe { registered_protocol::<T>() } {
                proto.binds_complete();
            }
        }
        return NDIS_STATUS_SUCCESS;
    }
    // SAFETY: NDIS passes our binding context and holds its count.
    let b = unsafe { super::binding_arc::<T>(ctx) };
    match ev.NetEvent {
        NetEventPause => {
            let legal = {
                // Out of Running only with the gate held exclusively: no
                // send is between its state check and its NDIS call, and
                // none starts after this.
                let mut st = GateState::new();
                let gate = b.gate().write(&mut st);
                let mut c = b.core.lock_dpr(gate.at_dispatch());
                let ok = b.apply(&mut c, BindingEvent::Pause);
                c.ndis_running = false;
                ok
            };
            if !legal {
                // A pause cannot fail; the binding is not running anyway.
                return NDIS_STATUS_SUCCESS;
            }
            // SAFETY: `notification` is the event NDIS passed to this
            // handler, completed once, when the pause ends.
            unsafe { b.pnp_begins(PnpKind::Pause, notification) };
            b.proto().pausing(&b);
            // What `pausing` let go of goes back now (no lock is held).
            b.flush_returns();
            // SAFETY: `notification` is the event NDIS passed to this
            // handler, not yet completed.
            if unsafe { b.wait_for_pause(notification) } {
                // Nothing was outstanding: this handler completes it.
                b.pnp_hs.completes();
            }
            if b.pnp_hs.handler_returns() {
                // The last completion finishes it (`finish_pause`).
                return NDIS_STATUS_PENDING;
            }
            // Completed, here or by a completion before this returned.
            // The restart before this one may not have been told to the
            // protocol yet (NDIS heard of it first): then the work item
            // tells the protocol of this pause after that, and completes
            // it. (Checked only now: a completion may have finished the
            // pause while the notice was still out, and the notice, once
            // seen gone, stays gone until the next restart.)
            if b.restart_notice_outstanding() {
                // Both parties are done: this defers to the work item.
                b.finish_pause(notification);
                return NDIS_STATUS_PENDING;
            }
            b.proto().paused(&b);
            NDIS_STATUS_SUCCESS
        }
        NetEventRestart => {
            let legal = {
                let mut c = b.core.lock();
                // NDIS restarts a binding only with the adapter in D0 (back
                // from a low-power state, before NetEventSetPower for D0).
                c.low_power = false;
                b.apply(&mut c, BindingEvent::Restart)
            };
            if !legal {
                return NDIS_STATUS_FAILURE;
            }
            // SAFETY: `notification` is the event NDIS passed to this
            // handler, completed once, when the restart ends.
            unsafe { b.pnp_begins(PnpKind::Restart, notification) };
            // SAFETY: for NetEventRestart, Buffer is the restart parameters
            // (or null), valid for `BufferLength` bytes during the event.
            let info = unsafe { read_restart(ev.Buffer.cast(), ev.BufferLength) };
            b.proto().restart(&b, info, RestartToken { binding: b.clone() });
            // Always pending: sends may start only once NDIS considers the
            // binding Running, which is after NdisCompleteNetPnPEvent.
            b.restart_handler_returns().0
        }
        NetEventSetPower => {
            let state = if ev.Buffer.is_null() || (ev.BufferLength as usize) < 4 {
                NetDeviceStateUnspecified
            } else {
                // SAFETY: the buffer holds a NET_DEVICE_POWER_STATE.
                unsafe { ptr::read_unaligned(ev.Buffer.cast::<u32>()) }
            };
            if state > NetDeviceStateD0 && state <= NetDeviceStateD3 {
                // SAFETY: `notification` is the event NDIS passed to this
                // handler, completed once, when it ends.
                let waiting = unsafe { b.enter_low_power(notification) };
                b.proto().set_power(&b, state);
                if waiting && b.pnp_hs.handler_returns() {
                    // The last OID call to end completes it.
                    return NDIS_STATUS_PENDING;
                }
                return NDIS_STATUS_SUCCESS;
            }
            if state == NetDeviceStateD0 {
                b.core.lock().low_power = false;
            }
            b.proto().set_power(&b, state);
            NDIS_STATUS_SUCCESS
        }
        _ => NDIS_STATUS_SUCCESS,
    }
}

pub(super) unsafe extern "win64" fn uninstall<T: Protocol>() {
    // SAFETY: an NDIS handler: the protocol is registered.
    if let Some(proto) = unsafe { registered_protocol::<T>() } {
        proto.uninstall();
    }
}

pub(super) unsafe extern "win64" fn status_ex<T: Protocol>(ctx: NDIS_HANDLE, ind: *mut NDIS_STATUS_INDICATION) {
    // SAFETY: NDIS passes our binding context.
    let b = unsafe { super::binding_arc::<T>(ctx) };
    // SAFETY: NDIS passes a valid indication, for the duration of the call.
    let ind = unsafe { &*ind };
    if ind.StatusCode == NDIS_STATUS_LINK_STATE
        && !ind.StatusBuffer.is_null()
        && ind.StatusBufferSize as usize >= core::mem::size_of::<NDIS_LINK_STATE>()
    {
        // SAFETY: checked: the buffer holds an NDIS_LINK_STATE.
        let l = unsafe { ptr::read_unaligned(ind.StatusBuffer.cast::<NDIS_LINK_STATE>()) };
        b.proto().link_changed(
            &b,
            LinkState {
                connect_state: l.MediaConnectState,
                duplex_state: l.MediaDuplexState,
                xmit_speed: l.XmitLinkSpeed,
                rcv_speed: l.RcvLinkSpeed,
            },
        );
    }
}
