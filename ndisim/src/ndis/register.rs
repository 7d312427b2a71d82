//! Registration: `NdisRegisterProtocolDriver`, `NdisDeregisterProtocolDriver`,
//! and binding every adapter once a protocol is there.

use super::*;
use crate::kernel::{self, Kernel, PASSIVE_LEVEL, call_driver, check_irql_eq};
use crate::verifier::{Rule, lock};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The handlers a protocol must supply.
pub(super) const REQUIRED: &[&str] = &[
    "BindAdapterHandlerEx",
    "UnbindAdapterHandlerEx",
    "OpenAdapterCompleteHandlerEx",
    "CloseAdapterCompleteHandlerEx",
    "NetPnPEventHandler",
    "OidRequestCompleteHandler",
    "StatusHandlerEx",
    "ReceiveNetBufferListsHandler",
    "SendNetBufferListsCompleteHandler",
];

pub(super) fn handler_addrs(c: &NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, rev2: bool) -> Vec<(&'static str, usize)> {
    let mut v = vec![
        ("SetOptionsHandler", c.SetOptionsHandler.map_or(0, |f| f as usize)),
        ("BindAdapterHandlerEx", c.BindAdapterHandlerEx.map_or(0, |f| f as usize)),
        ("UnbindAdapterHandlerEx", c.UnbindAdapterHandlerEx.map_or(0, |f| f as usize)),
        ("OpenAdapterCompleteHandlerEx", c.OpenAdapterCompleteHandlerEx.map_or(0, |f| f as usize)),
        ("CloseAdapterCompleteHandlerEx", c.CloseAdapterCompleteHandlerEx.map_or(0, |f| f as usize)),
        ("NetPnPEventHandler", c.NetPnPEventHandler.map_or(0, |f| f as usize)),
        ("UninstallHandler", c.UninstallHandler.map_or(0, |f| f as usize)),
        ("OidRequestCompleteHandler", c.OidRequestCompleteHandler.map_or(0, |f| f as usize)),
        ("StatusHandlerEx", c.StatusHandlerEx.map_or(0, |f| f as usize)),
        ("ReceiveNetBufferListsHandler", c.ReceiveNetBufferListsHandler.map_or(0, |f| f as usize)),
        ("SendNetBufferListsCompleteHandler", c.SendNetBufferListsCompleteHandler.map_or(0, |f| f as usize)),
    ];
    if rev2 {
        v.push(("DirectOidRequestCompleteHandler", c.DirectOidRequestCompleteHandler.map_or(0, |f| f as usize)));
    }
    v
}

/// NDIS 6 minor versions Windows knows.
pub(super) const MINORS: &[u8] = &[0, 1, 20, 30, 40, 50, 51, 60, 70, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89];

pub(crate) unsafe extern "win64" fn NdisRegisterProtocolDriver(
    ctx: NDIS_HANDLE,
    chars: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const CALL: &str = "NdisRegisterProtocolDriver";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        if chars.is_null() || handle.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null characteristics or handle pointer").report();
            return NDIS_STATUS_FAILURE;
        }
        // SAFETY: the driver passes a characteristics structure; its header
        // is checked before anything beyond it is read.
        let h = unsafe { (*chars).Header };
        let bad = |why: String, st: NDIS_STATUS| {
            Violation::new(Rule::InvalidParameter, CALL, why).with_object(chars as usize).report();
            st
        };
        if h.Type != NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS {
            return bad(
                format!("Header.Type is {:#x}, not NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS", h.Type),
                NDIS_STATUS_BAD_CHARACTERISTICS,
            );
        }
        let need = match h.Revision {
            1 => 0x78u16,
            2 => NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            r => return bad(format!("Header.Revision {r} is not 1 or 2"), NDIS_STATUS_BAD_CHARACTERISTICS),
        };
        if h.Size < need {
            return bad(
                format!("Header.Size {:#x} is smaller than revision {}'s {need:#x}", h.Size, h.Revision),
                NDIS_STATUS_BAD_CHARACTERISTICS,
            );
        }
        // Only the bytes the header gives: revision 1 ends before
        // DirectOidRequestCompleteHandler, which stays NULL.
        // SAFETY: plain data (integers, pointers, Option<fn>): all-zero is
        // valid.
        let mut c: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS = unsafe { std::mem::zeroed() };
        let n = (h.Size as usize).min(std::mem::size_of::<NDIS_PROTOCOL_DRIVER_CHARACTERISTICS>());
        // SAFETY: the header says the driver's structure holds `n` bytes;
        // `c` is at least that large.
        unsafe {
            std::ptr::copy_nonoverlapping(
                chars.cast::<u8>(),
                (&mut c as *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS).cast::<u8>(),
                n,
            )
        };
        if c.MajorNdisVersion != 6 || !MINORS.contains(&c.MinorNdisVersion) {
            return bad(
                format!("NDIS version {}.{} is not an NDIS 6 version", c.MajorNdisVersion, c.MinorNdisVersion),
                NDIS_STATUS_BAD_VERSION,
            );
        }
        // A version the emulated Windows does not have yet: NDIS says so,
        // and the driver may register as an older one.
        if !k.ndis.versions.accepts(c.MajorNdisVersion, c.MinorNdisVersion) {
            return NDIS_STATUS_BAD_VERSION;
        }
        // The revision of the registered version, no other (`versions`):
        // revision 2 is NDIS 6.1's, so a protocol of 6.1 or later passing
        // revision 1 is one NDIS fails, and 6.0 has no revision 2.
        let want = characteristics_revision(c.MinorNdisVersion);
        if h.Revision != want {
            return bad(
                format!(
                    "Header.Revision {}: a protocol of NDIS 6.{} passes NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_{want} \
                     (revision 2 is NDIS 6.1's; NDIS fails a driver that passes a revision older than its registered \
                     version's)",
                    h.Revision, c.MinorNdisVersion
                ),
                NDIS_STATUS_BAD_CHARACTERISTICS,
            );
        }
        // SAFETY: the name is a UNICODE_STRING in the characteristics.
        let name = unsafe { read_ustr(&c.Name) }.unwrap_or_default();
        if name.is_empty() {
            return bad("the protocol Name is empty".into(), NDIS_STATUS_BAD_CHARACTERISTICS);
        }
        let image = k.image.get();
        for (hname, addr) in handler_addrs(&c, h.Revision >= 2) {
            if addr == 0 {
                if REQUIRED.contains(&hname) {
                    return bad(format!("required handler {hname} is NULL"), NDIS_STATUS_BAD_CHARACTERISTICS);
                }
                continue;
            }
            if let Some(img) = image {
                if !img.is_code(addr) {
                    return bad(
                        format!(
                            "{hname} ({addr:#x}) does not point into the driver's code (or points into the discardable INIT section)"
                        ),
                        NDIS_STATUS_BAD_CHARACTERISTICS,
                    );
                }
            }
        }
        if c.Flags & !allowed_flags(c.MinorNdisVersion) != 0 {
            return bad(
                format!(
                    "Flags {:#x}: a protocol of NDIS 6.{} may pass {:#x} at most",
                    c.Flags,
                    c.MinorNdisVersion,
                    allowed_flags(c.MinorNdisVersion)
                ),
                NDIS_STATUS_BAD_CHARACTERISTICS,
            );
        }
        let (open_first, refuse) = {
            let r = lock(&k.ndis.registration);
            (r.open_first, r.refuse)
        };
        if open_first {
            // A user's open, racing DriverEntry: it gets through if the
            // device already lets opens in. (A file it opens stays open
            // until the simulation closes what is open.)
            let st = match crate::io::create(k, rawnic_proto::USER_PATH, 0xC000_0000, crate::io::Identity::Admin) {
                Ok(_) => STATUS_SUCCESS,
                Err(s) => s,
            };
            lock(&k.ndis.registration).opened = Some(st);
        }
        if let Some(st) = refuse {
            return st;
        }
        if k.nth_alloc() {
            // NDIS could not allocate the protocol's block.
            return NDIS_STATUS_RESOURCES;
        }
        {
            let mut p = lock(&k.ndis.protocol);
            if p.is_some() {
                drop(p);
                return bad("the driver registered a protocol already".into(), NDIS_STATUS_FAILURE);
            }
            let proto = Arc::new(Protocol { magic: PROTOCOL_MAGIC, chars: c, ctx: ctx as usize, name });
            // SAFETY: the driver's out parameter.
            unsafe { *handle = Arc::as_ptr(&proto) as NDIS_HANDLE };
            *p = Some(proto);
        }
        k.ndis.registered_once.store(true, Ordering::Release);
        if let Some(set_options) = c.SetOptionsHandler {
            let st = call_driver("ProtocolSetOptions", PASSIVE_LEVEL, || {
                // SAFETY: the driver's handler with its own handle and context.
                unsafe { set_options(*handle, ctx) }
            });
            if st != NDIS_STATUS_SUCCESS {
                *lock(&k.ndis.protocol) = None;
                return st;
            }
        }
        if k.ndis.bind_during_registration.load(Ordering::Acquire) {
            bind_all_and_start(k);
        }
        NDIS_STATUS_SUCCESS
    })
}

/// Binds every adapter, restarts them to Running and indicates
/// BindsComplete (what NDIS does once a protocol registers).
pub(crate) fn bind_all_and_start(k: &Kernel) {
    for a in k.ndis.adapters() {
        if bind(k, a).is_ok() {
            let _ = restart(k, a, &RestartSpec::default());
        }
    }
    let _ = binds_complete(k);
}

pub(super) fn proto_of(p: NDIS_HANDLE, call: &str) -> Option<Arc<Protocol>> {
    let k = kernel::kernel()?;
    let cur = k.ndis.protocol();
    match cur {
        Some(pr) if std::ptr::addr_eq(Arc::as_ptr(&pr), p) => Some(pr),
        _ => {
            Violation::new(Rule::InvalidParameter, call, "not the handle NdisRegisterProtocolDriver returned")
                .with_object(p as usize)
                .report();
            None
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisDeregisterProtocolDriver(h: NDIS_HANDLE) {
    const CALL: &str = "NdisDeregisterProtocolDriver";
    export(CALL, (), |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        if proto_of(h, CALL).is_none() {
            return;
        }
        // nf-ndis-ndisderegisterprotocoldriver: never from an entry point
        // NDIS calls. The call waits for every unbind, and NDIS waits for
        // the handler to return first: a deadlock on Windows. Reported,
        // and the protocol stays registered.
        if crate::callback::in_ndis_callback() {
            Violation::new(
                Rule::PnpContext,
                CALL,
                "called from inside a Protocol* handler (an entry point NDIS called), which it must never be: \
                 it waits for NDIS to unbind every binding, and NDIS waits for the handler; the protocol stays registered",
            )
            .with_object(h as usize)
            .report();
            return;
        }
        // NDIS unbinds every binding before this returns.
        for a in k.ndis.adapters() {
            let b = lock(&a.binding).clone();
            if b.is_some() {
                let _ = unbind(k, a);
            }
        }
        *lock(&k.ndis.protocol) = None;
        outlived_deregistration(k);
    })
}

/// What the driver allocated with its registration handle (or a binding's)
/// must be freed before the deregistration returns: the handles are gone
/// after it, and `DriverUnload` goes on to free the protocol's state. A
/// binding's read/write lock, NBL pool and NET_BUFFER pool go with the binding, so one
/// still allocated means a binding outlived its unbind's completion (a
/// work item or a close completion that completed the unbind and still
/// held it).
fn outlived_deregistration(k: &Kernel) {
    let rw = lock(&k.ndis.rwlocks).len();
    let pools = k.ndis.live_pools();
    let nb_pools = k.ndis.live_nb_pools();
    if rw + pools + nb_pools != 0 {
        Violation::new(
            Rule::ResourceLeak,
            "NdisDeregisterProtocolDriver",
            format!(
                "{rw} NDIS_RW_LOCK_EX(s), {pools} NBL pool(s) and {nb_pools} NET_BUFFER pool(s) allocated with the \
                 protocol's handles were still allocated when the deregistration returned (a binding outlived its \
                 unbind's completion)"
            ),
        )
        .report();
    }
}
