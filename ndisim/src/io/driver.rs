//! The driver object `DriverEntry` gets: its extension, names and registry
//! path, with every major function set to fail as invalid until the driver
//! sets its own.

use super::irp::IofCompleteRequest;
use ndis_sys::*;

/// The driver object, its extension and strings.
#[repr(C)]
pub(crate) struct DriverBox {
    pub obj: DRIVER_OBJECT,
    pub ext: DRIVER_EXTENSION,
    name: Vec<u16>,
    pub registry: UNICODE_STRING,
    registry_buf: Vec<u16>,
    service: Vec<u16>,
}

unsafe extern "win64" fn invalid_device_request(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: called by our I/O manager with a live IRP.
    unsafe {
        (*irp).IoStatus.anon.Status = STATUS_INVALID_DEVICE_REQUEST;
        (*irp).IoStatus.Information = 0;
        IofCompleteRequest(irp, 0);
    }
    STATUS_INVALID_DEVICE_REQUEST
}

pub(super) fn wbuf(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

pub(super) fn us(b: &[u16]) -> UNICODE_STRING {
    UNICODE_STRING {
        Length: ((b.len() - 1) * 2) as u16,
        MaximumLength: (b.len() * 2) as u16,
        Buffer: b.as_ptr().cast_mut(),
    }
}

/// Builds the driver object for an image.
pub(crate) fn driver_object(service: &str, start: usize, size: usize) -> Box<DriverBox> {
    let mut d: Box<DriverBox> = Box::new(DriverBox {
        // SAFETY: DRIVER_OBJECT is plain data; zero is its initial state.
        obj: unsafe { std::mem::zeroed() },
        // SAFETY: DRIVER_EXTENSION is plain data; zero is its initial state.
        ext: unsafe { std::mem::zeroed() },
        name: wbuf(&format!("\\Driver\\{service}")),
        registry: UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: std::ptr::null_mut() },
        registry_buf: wbuf(&format!("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\{service}")),
        service: wbuf(service),
    });
    d.registry = us(&d.registry_buf);
    let objp: *mut DRIVER_OBJECT = &mut d.obj;
    let extp: *mut DRIVER_EXTENSION = &mut d.ext;
    d.ext.DriverObject = objp;
    d.ext.ServiceKeyName = us(&d.service);
    d.obj.Type = 4; // IO_TYPE_DRIVER
    d.obj.Size = std::mem::size_of::<DRIVER_OBJECT>() as i16;
    d.obj.DriverStart = start as PVOID;
    d.obj.DriverSize = size as u32;
    d.obj.DriverExtension = extp;
    d.obj.DriverName = us(&d.name);
    for f in d.obj.MajorFunction.iter_mut() {
        *f = Some(invalid_device_request);
    }
    d
}
