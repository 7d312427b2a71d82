//! `DriverEntry` and `DriverUnload`.

use super::alloc::try_box;
use super::device::{ControlDevice, DeviceHandler};
use super::protocol::{Protocol, Registration};
use alloc::boxed::Box;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;
use rawnic_proto::NtStatus;

/// What the driver is: an NDIS protocol with a control device.
pub trait Driver: Protocol + DeviceHandler {
    /// Builds the driver's global state.
    fn new() -> Self;
    /// (major, minor) driver version, for the NDIS characteristics.
    const VERSION: (u8, u8);
}

/// The installed driver. It owns the driver object (`proto`); the device
/// and the registration hand pointers to it to the I/O manager and NDIS.
///
/// # Invariants
/// `proto` came from `Box::leak` and is freed in `drop`, after the
/// registration (deregistering unbinds every binding first) and the device
/// (whose bindings' work items ran) are gone and no cancel routine runs:
/// nothing can reach it then.
struct Installed<T: Driver> {
    registration: ManuallyDrop<Registration<T>>,
    device: ManuallyDrop<ControlDevice>,
    proto: NonNull<T>,
}

impl<T: Driver> Drop for Installed<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, first: deregistering unbinds every
        // binding (invariant).
        unsafe { ManuallyDrop::drop(&mut self.registration) };
        // SAFETY: dropped once, here, after the registration (invariant).
        unsafe { ManuallyDrop::drop(&mut self.device) };
        // A cancel routine may still be looking through the protocol
        // object's queues, its IRP completed meanwhile on another CPU.
        super::device::wait_for_cancel_routines();
        // SAFETY: `proto` came from `Box::leak` and is freed once, here, when
        // neither NDIS nor the I/O manager can reach it (invariant).
        drop(unsafe { Box::from_raw(self.proto.as_ptr()) });
    }
}

static INSTALLED: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(ptr::null_mut());

/// The body of `DriverEntry`.
///
/// # Safety
/// Called once, by the kernel, with a valid driver object.
pub unsafe fn driver_entry<T: Driver>(driver: *mut DRIVER_OBJECT, _registry: *mut UNICODE_STRING) -> NtStatus {
    super::sync::init_first_locks();
    let Ok(proto) = try_box(T::new()) else {
        return NtStatus::INSUFFICIENT_RESOURCES;
    };
    let proto = NonNull::from(Box::leak(proto));
    // SAFETY: `proto` came from `Box::leak` and nothing else uses it.
    let forget = |p: NonNull<T>| unsafe { drop(Box::from_raw(p.as_ptr())) };
    // The device first: bindings allocate their work items on it.
    // SAFETY: the driver object is ours, at PASSIVE_LEVEL; `proto` outlives
    // the device (freed after it, below or in `Installed::drop`).
    let device = match unsafe { ControlDevice::create(driver, proto) } {
        Ok(d) => d,
        Err(status) => {
            crate::kprint!(super::debug::LEVEL_ERROR, "creating the control device failed: {:#x}", status.0);
            forget(proto);
            return status;
        }
    };
    // SAFETY: `proto` outlives the registration, as for the device.
    let registration = match unsafe { Registration::register(proto, T::VERSION.0, T::VERSION.1) } {
        Ok(r) => r,
        Err(status) => {
            crate::kprint!(super::debug::LEVEL_ERROR, "NdisRegisterProtocolDriver failed: {:#x}", status.0);
            drop(device);
            forget(proto);
            // DriverEntry passes it on, as the WDK's samples do.
            return status.to_nt();
        }
    };
    let installed = match try_box(Installed {
        registration: ManuallyDrop::new(registration),
        device: ManuallyDrop::new(device),
        proto,
    }) {
        Ok(i) => i,
        // Dropping the value that could not be boxed deregisters, deletes
        // the device and frees the driver object.
        Err(_) => return NtStatus::INSUFFICIENT_RESOURCES,
    };
    // Nothing can fail now: user mode may open the device.
    installed.device.accept_opens();
    INSTALLED.store(Box::into_raw(installed).cast(), Ordering::Release);
    // SAFETY: the kernel passes a valid driver object, ours to fill in.
    unsafe { (*driver).DriverUnload = Some(driver_unload::<T>) };
    NtStatus::SUCCESS
}

unsafe extern "win64" fn driver_unload<T: Driver>(_driver: *mut DRIVER_OBJECT) {
    let p = INSTALLED.swap(ptr::null_mut(), Ordering::AcqRel).cast::<Installed<T>>();
    if p.is_null() {
        return;
    }
    // SAFETY: `driver_entry` stored a leaked `Box<Installed<T>>`; dropping
    // it deregisters (which unbinds every binding), deletes the device and
    // frees the driver object.
    drop(unsafe { Box::from_raw(p) });
}
