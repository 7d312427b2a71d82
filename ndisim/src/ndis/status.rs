//! Status indications: link state from the adapter model, and any status
//! code with any buffer (`indicate_status`).

use super::*;
use crate::kernel::{DISPATCH_LEVEL, Kernel, call_driver};
use crate::verifier::lock;

/// `a`'s binding once its open completed (what status indications and PnP
/// events go to), or why there is none.
pub(crate) fn open_binding(a: &Adapter) -> Result<Arc<Binding>, SimError> {
    lock(&a.binding)
        .clone()
        .filter(|b| !matches!(b.state(), BindingState::Opening | BindingState::Unbound))
        .ok_or_else(|| SimError::State(format!("adapter {} is not bound", a.name)))
}

/// Sets the adapter's link state and indicates `NDIS_STATUS_LINK_STATE`
/// (to its binding, if open).
pub(crate) fn link(k: &Kernel, a: &Adapter, up: bool) -> Result<(), SimError> {
    lock(&a.model).link_up = up;
    let Ok(b) = open_binding(a) else { return Ok(()) };
    let m = lock(&a.model).clone();
    // SAFETY: plain data.
    let mut l: NDIS_LINK_STATE = unsafe { std::mem::zeroed() };
    l.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NDIS_LINK_STATE_REVISION_1,
        Size: NDIS_SIZEOF_LINK_STATE_REVISION_1,
    };
    l.MediaConnectState = if up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
    l.MediaDuplexState = MediaDuplexStateFull;
    l.XmitLinkSpeed = if up { m.speed } else { 0 };
    l.RcvLinkSpeed = l.XmitLinkSpeed;
    // SAFETY: `l` is plain data, read during the call.
    let buf = unsafe {
        std::slice::from_raw_parts((&l as *const NDIS_LINK_STATE).cast::<u8>(), std::mem::size_of::<NDIS_LINK_STATE>())
    };
    indicate_to(k, a, &b, NDIS_STATUS_LINK_STATE, buf, DISPATCH_LEVEL);
    Ok(())
}

/// Indicates `code` with a copy of `buffer` (NULL when empty) to `a`'s
/// binding at `irql` (PASSIVE_LEVEL or DISPATCH_LEVEL), whatever its
/// state once opened, as a miniport's indications reach protocols:
/// codes a protocol does not know, and buffers shorter or other than the
/// code's structure, included.
pub(crate) fn indicate_status(
    k: &Kernel,
    a: &Adapter,
    code: NDIS_STATUS,
    buffer: &[u8],
    irql: u8,
) -> Result<(), SimError> {
    let b = open_binding(a)?;
    indicate_to(k, a, &b, code, buffer, irql);
    Ok(())
}

fn indicate_to(k: &Kernel, a: &Adapter, b: &Binding, code: NDIS_STATUS, buffer: &[u8], irql: u8) {
    // A copy of exactly `buffer.len()` bytes, ending at a guard page, taken
    // back when the handler returns (`lent`).
    let copy = (!buffer.is_empty())
        .then(|| k.ndis.lent.status_buffer(code, buffer).expect("ndisim: out of address space for a status buffer"));
    // SAFETY: plain data.
    let mut ind: NDIS_STATUS_INDICATION = unsafe { std::mem::zeroed() };
    ind.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_STATUS_INDICATION,
        Revision: NDIS_STATUS_INDICATION_REVISION_1,
        Size: NDIS_SIZEOF_STATUS_INDICATION_REVISION_1,
    };
    ind.SourceHandle = a as *const Adapter as NDIS_HANDLE;
    ind.StatusCode = code;
    if let Some(copy) = &copy {
        ind.StatusBuffer = copy.ptr().cast();
        ind.StatusBufferSize = buffer.len() as u32;
    }
    let handler = b.proto.chars.StatusHandlerEx.expect("validated");
    let ctx = b.ctx;
    let Some(_call) = b.enter_call(false) else { return };
    call_driver("ProtocolStatusEx", irql, || {
        // SAFETY: the driver's handler with its binding context and an
        // indication valid for the call.
        unsafe { handler(ctx as NDIS_HANDLE, &mut ind) }
    });
}
