//! `DriverEntry` and `DriverUnload`.

use super::device::{ControlDevice, DeviceHandler};
use super::protocol::{leak_protocol, set_registered_protocol, Protocol, Registration};
use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;

/// What the driver is: an NDIS protocol with a control device.
pub trait Driver: Protocol + DeviceHandler {
    /// Builds the driver's global state.
    fn new() -> Self;
    /// (major, minor) driver version, for the NDIS characteristics.
    const VERSION: (u8, u8);
}

/// Field order is drop order: deregister (which unbinds everything) before
/// deleting the device that the bindings' work items use.
struct Installed<T: Protocol> {
    /// Deregisters when dropped.
    _registration: Registration<T>,
    /// Deleted when dropped.
    _device: ControlDevice,
    proto: &'static T,
}

static INSTALLED: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(ptr::null_mut());

/// The body of `DriverEntry`.
///
/// # Safety
/// Called once, by the kernel, with a valid driver object.
pub unsafe fn driver_entry<T: Driver>(driver: *mut DRIVER_OBJECT, _registry: *mut UNICODE_STRING) -> NTSTATUS {
    let proto = leak_protocol(T::new());
    let forget = |proto: &'static T| {
        set_registered_protocol::<T>(None);
        // SAFETY: `proto` came from `Box::leak` and nothing else uses it.
        unsafe { drop(Box::from_raw(proto as *const T as *mut T)) };
    };
    // The device first: bindings allocate their work items on it.
    // SAFETY: the driver object is ours, at PASSIVE_LEVEL.
    let device = match unsafe { ControlDevice::create(driver, proto) } {
        Ok(d) => d,
        Err(status) => {
            crate::kprint!(super::debug::LEVEL_ERROR, "creating the control device failed: {status:#x}");
            forget(proto);
            return status;
        }
    };
    let registration = match Registration::register(proto, T::VERSION.0, T::VERSION.1) {
        Ok(r) => r,
        Err(status) => {
            crate::kprint!(super::debug::LEVEL_ERROR, "NdisRegisterProtocolDriver failed: {status:#x}");
            drop(device);
            forget(proto);
            return status;
        }
    };
    let installed = Box::new(Installed { _registration: registration, _device: device, proto });
    INSTALLED.store(Box::into_raw(installed).cast(), Ordering::Release);
    // SAFETY: the kernel passes a valid driver object, ours to fill in.
    unsafe { (*driver).DriverUnload = Some(driver_unload::<T>) };
    STATUS_SUCCESS
}

unsafe extern "win64" fn driver_unload<T: Driver>(_driver: *mut DRIVER_OBJECT) {
    let p = INSTALLED.swap(ptr::null_mut(), Ordering::AcqRel).cast::<Installed<T>>();
    if p.is_null() {
        return;
    }
    // SAFETY: `driver_entry` stored a leaked `Box<Installed<T>>`.
    let installed = unsafe { Box::from_raw(p) };
    let proto = installed.proto;
    // Deregistering unbinds every binding first.
    drop(installed);
    set_registered_protocol::<T>(None);
    // SAFETY: NDIS calls nothing of the protocol after deregistration.
    unsafe { drop(Box::from_raw(proto as *const T as *mut T)) };
}
