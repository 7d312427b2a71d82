//! Registering the protocol with NDIS, and deregistering it on drop.

use super::Protocol;
use super::trampolines::*;
use crate::kernel::{nbl, oid, ustr};
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;

/// The registered protocol. NDIS's handlers receive a pointer to the
/// protocol object as their driver context; NDIS calls none of them after
/// deregistration.
///
/// # Invariants
/// `handle` is the handle `NdisRegisterProtocolDriver` returned for the
/// characteristics built from `T`, with `proto` as the driver context;
/// `proto` outlives the registration (`register`'s contract).
pub struct Registration<T: Protocol> {
    handle: NDIS_HANDLE,
    proto: NonNull<T>,
}

// SAFETY: the handle may be used from any thread; `T` is `Sync`.
unsafe impl<T: Protocol> Send for Registration<T> {}
// SAFETY: as above.
unsafe impl<T: Protocol> Sync for Registration<T> {}

/// The protocol handle, for NDIS calls that take it (pools, MDLs, locks).
static PROTOCOL_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// The protocol object, for protocol-level handlers (BindsComplete,
/// uninstall), which NDIS calls without a binding context.
static PROTOCOL_OBJECT: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

pub(crate) fn protocol_handle() -> NDIS_HANDLE {
    PROTOCOL_HANDLE.load(Ordering::Acquire)
}

/// The registered protocol object, while it is registered.
///
/// # Safety
/// Only from an NDIS handler: NDIS calls none after deregistration, and the
/// object lives until then.
pub(super) unsafe fn registered_protocol<'a, T: Protocol>() -> Option<&'a T> {
    let p = PROTOCOL_OBJECT.load(Ordering::Acquire);
    // SAFETY: only `register::<T>` stores here, a pointer to the `T` the
    // registration owns (the one protocol type the driver registers).
    (!p.is_null()).then(|| unsafe { &*(p as *const T) })
}

impl<T: Protocol> Registration<T> {
    /// Registers `proto` with NDIS as an NDIS 6.30 protocol driver with
    /// every protocol handler.
    ///
    /// # Safety
    /// `proto` stays valid, and is not moved, until the registration has
    /// dropped.
    pub unsafe fn register(proto: NonNull<T>, major: u8, minor: u8) -> Result<Self, NDIS_STATUS> {
        let mut chars = NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS,
                Revision: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
                Size: NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            },
            MajorNdisVersion: NDIS_PROTOCOL_MAJOR_VERSION,
            MinorNdisVersion: NDIS_PROTOCOL_MINOR_VERSION,
            MajorDriverVersion: major,
            MinorDriverVersion: minor,
            Flags: 0,
            Name: ustr::unicode_string(T::NAME),
            SetOptionsHandler: None,
            BindAdapterHandlerEx: Some(bind_adapter::<T>),
            UnbindAdapterHandlerEx: Some(unbind_adapter::<T>),
            OpenAdapterCompleteHandlerEx: Some(open_adapter_complete::<T>),
            CloseAdapterCompleteHandlerEx: Some(close_adapter_complete::<T>),
            NetPnPEventHandler: Some(net_pnp_event::<T>),
            UninstallHandler: Some(uninstall::<T>),
            OidRequestCompleteHandler: Some(oid::oid_request_complete::<T>),
            StatusHandlerEx: Some(status_ex::<T>),
            ReceiveNetBufferListsHandler: Some(nbl::receive_net_buffer_lists::<T>),
            SendNetBufferListsCompleteHandler: Some(nbl::send_net_buffer_lists_complete::<T>),
            DirectOidRequestCompleteHandler: None,
        };
        PROTOCOL_OBJECT.store(proto.as_ptr().cast(), Ordering::Release);
        let ctx = proto.as_ptr() as NDIS_HANDLE;
        // NDIS may call ProtocolBindAdapterEx before NdisRegisterProtocolDriver
        // returns ("must be prepared for an immediate call to any of their
        // ProtocolXxx functions"), and the bind needs the handle: NDIS
        // writes it straight into PROTOCOL_HANDLE before it binds.
        // SAFETY: `chars` is fully initialised and its name points to a
        // static string; `ctx` is the protocol object the trampolines cast
        // it back to, alive until the registration drops; the out pointer
        // is a static.
        let status = unsafe { NdisRegisterProtocolDriver(ctx, &mut chars, PROTOCOL_HANDLE.as_ptr()) };
        if status != NDIS_STATUS_SUCCESS {
            PROTOCOL_HANDLE.store(ptr::null_mut(), Ordering::Release);
            PROTOCOL_OBJECT.store(ptr::null_mut(), Ordering::Release);
            return Err(status);
        }
        let handle = PROTOCOL_HANDLE.load(Ordering::Acquire);
        Ok(Registration { handle, proto })
    }

    /// The protocol object, for as long as the registration is borrowed.
    pub fn protocol(&self) -> &T {
        // SAFETY: it outlives the registration (invariant).
        unsafe { self.proto.as_ref() }
    }
}

impl<T: Protocol> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: the handle came from NdisRegisterProtocolDriver
        // (invariant); NDIS unbinds and closes every binding before this
        // returns, and calls no handler afterwards.
        unsafe { NdisDeregisterProtocolDriver(self.handle) };
        PROTOCOL_HANDLE.store(ptr::null_mut(), Ordering::Release);
        PROTOCOL_OBJECT.store(ptr::null_mut(), Ordering::Release);
    }
}
