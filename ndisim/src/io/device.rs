//! Device objects and symbolic links: `IoCreateDevice`, `IoDeleteDevice`,
//! `IoCreateSymbolicLink` and `IoDeleteSymbolicLink`.

use super::{DO_EXCLUSIVE, DeviceRec, norm_link};
use crate::kernel::{self, PASSIVE_LEVEL};
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;

/// # Safety
/// `s` is null or a valid UNICODE_STRING.
unsafe fn read(s: *const UNICODE_STRING) -> Option<String> {
    // SAFETY: per the caller.
    unsafe { crate::ndis::read_ustr(s) }
}

pub(crate) unsafe extern "win64" fn IoCreateDevice(
    driver: *mut DRIVER_OBJECT,
    ext_size: u32,
    name: *mut UNICODE_STRING,
    dtype: DEVICE_TYPE,
    chars: u32,
    exclusive: BOOLEAN,
    out: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    const CALL: &str = "IoCreateDevice";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        // DDI rule IrqlIoPassive1: PASSIVE_LEVEL.
        kernel::check_irql_eq(CALL, kernel::PASSIVE_LEVEL);
        if driver.is_null() || driver as usize != *lock(&k.io.driver) || out.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "DriverObject is not the driver's, or DeviceObject is null")
                .with_object(driver as usize)
                .report();
            return STATUS_INVALID_PARAMETER;
        }
        if k.nth_alloc() {
            // The object manager could not allocate the device object.
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: a string the driver passes (or null).
        let nm = unsafe { read(name) };
        let mut st = lock(&k.io.st);
        if let Some(n) = &nm {
            if st
                .devices
                .iter()
                .any(|d| !d.deleted && d.name.as_deref().map(|x| x.eq_ignore_ascii_case(n)) == Some(true))
            {
                return STATUS_OBJECT_NAME_COLLISION;
            }
        }
        let lay = std::alloc::Layout::new::<DEVICE_OBJECT>();
        // SAFETY: a non-zero layout.
        let dev = unsafe { std::alloc::alloc_zeroed(lay) }.cast::<DEVICE_OBJECT>();
        let ext = if ext_size > 0 {
            // SAFETY: a non-zero layout.
            unsafe {
                std::alloc::alloc_zeroed(
                    std::alloc::Layout::from_size_align(ext_size as usize, 16).expect("extension layout"),
                )
            }
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: fresh device memory; the driver object is the driver's.
        unsafe {
            let d = &mut *dev;
            d.Type = 3; // IO_TYPE_DEVICE
            d.Size = (std::mem::size_of::<DEVICE_OBJECT>() + ext_size as usize) as u16;
            d.ReferenceCount = 0;
            d.DriverObject = driver;
            d.NextDevice = (*driver).DeviceObject;
            (*driver).DeviceObject = dev;
            d.Flags = DO_DEVICE_INITIALIZING | if exclusive != 0 { DO_EXCLUSIVE } else { 0 };
            d.Characteristics = chars;
            d.DeviceExtension = ext.cast();
            d.DeviceType = dtype;
            d.StackSize = 1;
            d.AlignmentRequirement = 0;
            d.SectorSize = 0;
            *out = dev;
        }
        st.devices.push(DeviceRec {
            dev,
            ext: ext as usize,
            ext_size: ext_size as usize,
            name: nm,
            deleted: false,
            opens: 0,
            sd_set: false,
            dacl: None,
            warned: false,
        });
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn IoDeleteDevice(dev: *mut DEVICE_OBJECT) {
    const CALL: &str = "IoDeleteDevice";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        let mut st = lock(&k.io.st);
        let Some(d) = st.devices.iter_mut().find(|d| d.dev == dev && !d.deleted) else {
            Violation::new(Rule::InvalidParameter, CALL, "not a live device object").with_object(dev as usize).report();
            return;
        };
        d.deleted = true;
        // Unlink it from the driver's list.
        // SAFETY: our device objects and the driver object.
        unsafe {
            let drv = (*dev).DriverObject;
            let mut p: *mut *mut DEVICE_OBJECT = &mut (*drv).DeviceObject;
            while !(*p).is_null() {
                if *p == dev {
                    *p = (*dev).NextDevice;
                    break;
                }
                p = &mut (**p).NextDevice;
            }
        }
    })
}

pub(crate) unsafe extern "win64" fn IoCreateSymbolicLink(
    link: *mut UNICODE_STRING,
    target: *mut UNICODE_STRING,
) -> NTSTATUS {
    const CALL: &str = "IoCreateSymbolicLink";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        // SAFETY: strings the driver passes.
        let (Some(l), Some(t)) = (unsafe { read(link) }, unsafe { read(target) }) else {
            Violation::new(Rule::InvalidParameter, CALL, "null link or device name").report();
            return STATUS_INVALID_PARAMETER;
        };
        if k.nth_alloc() {
            // The object manager could not allocate the link object.
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        let mut st = lock(&k.io.st);
        let key = norm_link(&l);
        if st.links.contains_key(&key) {
            return STATUS_OBJECT_NAME_COLLISION;
        }
        st.links.insert(key, t);
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn IoDeleteSymbolicLink(link: *mut UNICODE_STRING) -> NTSTATUS {
    const CALL: &str = "IoDeleteSymbolicLink";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        // SAFETY: a string the driver passes.
        let Some(l) = (unsafe { read(link) }) else { return STATUS_INVALID_PARAMETER };
        if lock(&k.io.st).links.remove(&norm_link(&l)).is_some() {
            STATUS_SUCCESS
        } else {
            STATUS_OBJECT_NAME_NOT_FOUND
        }
    })
}
