//! Status indications (link state).

use super::*;
use crate::kernel::{DISPATCH_LEVEL, Kernel, call_driver};
use crate::verifier::lock;

/// Sets the adapter's link state and indicates `NDIS_STATUS_LINK_STATE`.
pub(crate) fn link(k: &Kernel, a: &Adapter, up: bool) -> Result<(), SimError> {
    lock(&a.model).link_up = up;
    let Some(b) = lock(&a.binding).clone() else { return Ok(()) };
    if matches!(b.state(), BindingState::Opening | BindingState::Unbound) {
        return Ok(());
    }
    let _ = k;
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
    // SAFETY: plain data.
    let mut ind: NDIS_STATUS_INDICATION = unsafe { std::mem::zeroed() };
    ind.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_STATUS_INDICATION,
        Revision: NDIS_STATUS_INDICATION_REVISION_1,
        Size: NDIS_SIZEOF_STATUS_INDICATION_REVISION_1,
    };
    ind.SourceHandle = a as *const Adapter as NDIS_HANDLE;
    ind.StatusCode = NDIS_STATUS_LINK_STATE;
    ind.StatusBuffer = (&mut l as *mut NDIS_LINK_STATE).cast();
    ind.StatusBufferSize = std::mem::size_of::<NDIS_LINK_STATE>() as u32;
    let handler = b.proto.chars.StatusHandlerEx.expect("validated");
    let ctx = b.ctx;
    let Some(_call) = b.enter_call(false) else { return Ok(()) };
    call_driver("ProtocolStatusEx", DISPATCH_LEVEL, || {
        // SAFETY: the driver's handler with its binding context and an
        // indication valid for the call.
        unsafe { handler(ctx as NDIS_HANDLE, &mut ind) }
    });
    Ok(())
}
