//! rawnic.sys: an NDIS 6 protocol driver that gives user mode raw Ethernet
//! access.
//!
//! - `kernel`: the safe wrapper layer over `ndis-sys`; all `unsafe` is there.
//! - `rawnic`: the driver logic, which forbids `unsafe`; the pure parts of
//!   it (state machine, queues, filters) live in the `rawnic-logic` crate.
#![no_std]
#![no_main]
// `Arc::try_new`: a kernel driver must not bug-check when memory runs out,
// and `alloc` has no stable fallible `Arc` constructor.
#![feature(allocator_api)]

extern crate alloc;

#[macro_use]
pub mod kernel;
#[forbid(unsafe_code)]
mod rawnic;

#[global_allocator]
static ALLOCATOR: kernel::alloc::PoolAllocator = kernel::alloc::PoolAllocator;

/// compiler_builtins refers to this symbol; kernel code uses no x87 state.
#[unsafe(no_mangle)]
static _fltused: i32 = 0;

/// The driver's entry point; it lives in the discardable INIT section.
///
/// # Safety
/// Called once by the kernel with a valid driver object and registry path.
#[unsafe(no_mangle)]
#[unsafe(link_section = "INIT")]
unsafe extern "system" fn DriverEntry(
    driver: *mut ndis_sys::DRIVER_OBJECT,
    registry_path: *mut ndis_sys::UNICODE_STRING,
) -> ndis_sys::NTSTATUS {
    // SAFETY: forwarded from the kernel's call.
    unsafe { kernel::entry::driver_entry::<rawnic::Rawnic>(driver, registry_path) }.0
}
