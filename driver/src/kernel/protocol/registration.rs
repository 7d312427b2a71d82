//! Registering the protocol with NDIS, and deregistering it on drop.

use super::trampolines::*;
use super::{NdisStatus, Protocol};
use crate::kernel::{nbl, oid, ustr};
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use ndis_sys::*;

/// The NDIS versions rawnic registers with, newest first, each with the
/// characteristics revision (and size) that goes with it: NDIS 6.89
/// (Windows 11 24H2: a protocol older than 6.89 turns URO off on the
/// adapters it binds, so rawnic asks for it where NDIS has it) and NDIS
/// 6.30 (Windows 8, the oldest rawnic runs on). Both use revision 2.
pub const NDIS_VERSIONS: [(u8, u8, u8, u16); 2] = [
    (
        NDIS_PROTOCOL_MAJOR_VERSION,
        NDIS_MINOR_VERSION_689,
        NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
        NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
    ),
    (
        NDIS_PROTOCOL_MAJOR_VERSION,
        NDIS_MINOR_VERSION_630,
        NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
        NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
    ),
];

/// The NDIS minor version the protocol registered with (0 while it is
/// not registered).
static REGISTERED_MINOR: AtomicU8 = AtomicU8::new(0);

/// The NDIS version rawnic registered with (major, minor), while it is
/// registered.
pub fn registered_version() -> Option<(u8, u8)> {
    let minor = REGISTERED_MINOR.load(Ordering::Acquire);
    (minor != 0).then_some((NDIS_PROTOCOL_MAJOR_VERSION, minor))
}

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

/// A bind failed since NDIS was last asked to offer the adapters again:
/// NDIS does not retry a bind the protocol declined (for want of memory,
/// say), so the adapter stays unbound until rawnic asks
/// (`offer_declined_again`).
static BIND_DECLINED: AtomicBool = AtomicBool::new(false);

/// Notes a bind that failed (synchronously, or at its completion).
pub(super) fn bind_declined() {
    BIND_DECLINED.store(true, Ordering::Release);
}

/// If a bind failed since the last call, asks NDIS to offer the protocol
/// every adapter it should be bound to and is not
/// (`NdisReEnumerateProtocolBindings`); NDIS binds them later, on its own
/// thread. Called while dispatching an IRP of rawnic's device (`_irp`):
/// PASSIVE_LEVEL, and never from ProtocolBindAdapterEx,
/// ProtocolUnbindAdapterEx or a binding's ProtocolNetPnPEvent, where the
/// call is not allowed (nf-ndis-ndisreenumerateprotocolbindings). Whether
/// it asked.
pub fn offer_declined_again(_irp: &crate::kernel::device::Irp) -> bool {
    if !BIND_DECLINED.swap(false, Ordering::AcqRel) {
        return false;
    }
    let handle = protocol_handle();
    if handle.is_null() {
        return false;
    }
    // SAFETY: the handle NdisRegisterProtocolDriver returned, valid until
    // DriverUnload deregisters (and then deletes the device); an IRP of the
    // device is being dispatched, so a file of it is open, and DriverUnload
    // runs only once none is (the device lets opens in only after the
    // registration, when DriverEntry can no longer fail). PASSIVE_LEVEL,
    // outside the handlers that may not call it (above).
    unsafe { NdisReEnumerateProtocolBindings(handle) };
    true
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
    /// Registers `proto` with NDIS with every protocol handler, as the
    /// newest NDIS version of `NDIS_VERSIONS` that NDIS accepts: a version
    /// NDIS refuses (`NDIS_STATUS_BAD_VERSION`, an older Windows) is
    /// retried as the next one; any other failure is final.
    ///
    /// # Safety
    /// `proto` stays valid, and is not moved, until the registration has
    /// dropped.
    pub unsafe fn register(proto: NonNull<T>, major: u8, minor: u8) -> Result<Self, NdisStatus> {
        let mut status = NdisStatus(NDIS_STATUS_BAD_VERSION);
        for version in NDIS_VERSIONS {
            // SAFETY: per this function's contract.
            status = match unsafe { Self::register_as(proto, version, (major, minor)) } {
                Ok(r) => return Ok(r),
                Err(s) => s,
            };
            if status != NdisStatus(NDIS_STATUS_BAD_VERSION) {
                break;
            }
        }
        Err(status)
    }

    /// One `NdisRegisterProtocolDriver` as NDIS version `version` (major,
    /// minor, characteristics revision and size).
    ///
    /// # Safety
    /// As `register`.
    unsafe fn register_as(proto: NonNull<T>, version: (u8, u8, u8, u16), driver: (u8, u8)) -> Result<Self, NdisStatus> {
        let (ndis_major, ndis_minor, revision, size) = version;
        let mut chars = NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS,
                Revision: revision,
                Size: size,
            },
            MajorNdisVersion: ndis_major,
            MinorNdisVersion: ndis_minor,
            MajorDriverVersion: driver.0,
            MinorDriverVersion: driver.1,
            // rawnic takes URO frames (it does not set
            // NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED at 6.89), and the
            // flags are reserved before 6.89.
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
        // Set before NDIS may bind (and indicate) from inside the call.
        REGISTERED_MINOR.store(ndis_minor, Ordering::Release);
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
            REGISTERED_MINOR.store(0, Ordering::Release);
            return Err(NdisStatus(status));
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
        // returns (each unbind completes as its binding is dropped,
        // `complete_at_drop`), and calls no handler afterwards.
        unsafe { NdisDeregisterProtocolDriver(self.handle) };
        PROTOCOL_HANDLE.store(ptr::null_mut(), Ordering::Release);
        PROTOCOL_OBJECT.store(ptr::null_mut(), Ordering::Release);
        REGISTERED_MINOR.store(0, Ordering::Release);
    }
}
