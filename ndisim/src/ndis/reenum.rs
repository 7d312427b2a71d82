//! `NdisReEnumerateProtocolBindings`: NDIS offers the protocol again the
//! adapters it should be bound to and is not, and the handlers the call
//! is not allowed from.
//!
//! NDIS does not retry a bind the protocol declined: the adapter stays
//! unbound until the protocol calls `NdisReEnumerateProtocolBindings`
//! (nf-ndis-ndisreenumerateprotocolbindings), and then binds it later, on
//! its own thread ("NDIS might complete the binding operations after the
//! call returns"). Here an adapter whose last bind the driver declined is
//! marked when the driver asks, and the bind happens when the harness
//! serves it (`Sim::serve_reenumeration`), on the thread that runs that
//! adapter's PnP actions, so that it never races them. An adapter the
//! harness unbound is not offered again: NDIS offers only adapters the
//! protocol is configured to bind, and an unbind is the harness's removal.

use super::*;
use crate::kernel::{Kernel, PASSIVE_LEVEL, check_irql_eq};
use crate::verifier::Rule;
use std::cell::Cell;
use std::sync::atomic::Ordering;

/// `Adapter::rebind`: nothing owed.
pub(crate) const REBIND_NONE: u8 = 0;
/// The driver declined the adapter's last bind.
pub(crate) const REBIND_DECLINED: u8 = 1;
/// ... and asked for a re-enumeration since: a bind is owed.
pub(crate) const REBIND_OWED: u8 = 2;

thread_local! {
    /// ProtocolBindAdapterEx, ProtocolUnbindAdapterEx or a binding's
    /// ProtocolNetPnPEvent runs on this thread (nested calls counted).
    static IN_PNP_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// This thread runs one of the handlers re-enumeration is not allowed
/// from, while it lives.
pub(crate) struct PnpHandlerGuard(());

impl PnpHandlerGuard {
    pub(crate) fn enter() -> Self {
        IN_PNP_HANDLER.with(|c| c.set(c.get() + 1));
        PnpHandlerGuard(())
    }
}

impl Drop for PnpHandlerGuard {
    fn drop(&mut self) {
        IN_PNP_HANDLER.with(|c| c.set(c.get() - 1));
    }
}

/// A bind of `a` ended: declined (`ok` false) or made.
pub(crate) fn bind_ended(a: &Adapter, ok: bool) {
    a.rebind.store(if ok { REBIND_NONE } else { REBIND_DECLINED }, Ordering::Release);
}

pub(crate) unsafe extern "win64" fn NdisReEnumerateProtocolBindings(h: NDIS_HANDLE) {
    const CALL: &str = "NdisReEnumerateProtocolBindings";
    export(CALL, (), |k| {
        check_irql_eq(CALL, PASSIVE_LEVEL);
        if proto_of(h, CALL).is_none() {
            return;
        }
        if IN_PNP_HANDLER.with(Cell::get) != 0 {
            // The NdisReEnumerateProtocolBindings rule (ndis): NDIS is in
            // the middle of a bind, unbind or PnP event of this protocol.
            Violation::new(
                Rule::PnpContext,
                CALL,
                "called from ProtocolBindAdapterEx, ProtocolUnbindAdapterEx or a binding's ProtocolNetPnPEvent, \
                 where it is not allowed (only from ProtocolNetPnPEvent with a NULL ProtocolBindingContext)",
            )
            .report();
            return;
        }
        k.ndis.stats.reenumerations.fetch_add(1, Ordering::Relaxed);
        for a in k.ndis.adapters() {
            let _ = a.rebind.compare_exchange(REBIND_DECLINED, REBIND_OWED, Ordering::AcqRel, Ordering::Acquire);
        }
    })
}

/// Whether NDIS owes `a` a bind (the driver declined its last one and
/// asked for a re-enumeration since).
pub(crate) fn owed(a: &Adapter) -> bool {
    a.rebind.load(Ordering::Acquire) == REBIND_OWED
}

/// Makes the bind NDIS owes `a`, if it owes one: binds it and restarts it
/// to Running. `Ok(true)` when it is bound now, `Ok(false)` when nothing
/// was owed or the driver declined again.
pub(crate) fn serve(k: &Kernel, a: &Arc<Adapter>) -> Result<bool, SimError> {
    if a.rebind.compare_exchange(REBIND_OWED, REBIND_NONE, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Ok(false);
    }
    if lock(&a.binding).is_some() {
        return Ok(false);
    }
    match bind(k, a) {
        Ok(()) => {}
        Err(SimError::Status(_)) => return Ok(false),
        Err(e) => return Err(e),
    }
    restart(k, a, &RestartSpec::default())?;
    Ok(true)
}
