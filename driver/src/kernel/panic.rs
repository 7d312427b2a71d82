//! The panic handler: print the message, then bug check with rawnic's code
//! and the file, line and column as parameters.

use super::debug::{self, FixedBuf};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use ndis_sys::KeBugCheckEx;
use rawnic_proto::BUGCHECK_PANIC;

static PANICKING: AtomicBool = AtomicBool::new(false);

/// The file name, NUL-terminated, for bug check parameter 1. Written once,
/// by the first CPU to panic.
static mut FILE: FixedBuf<128> = FixedBuf::new();

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line, column) = info.location().map(|l| (l.file(), l.line(), l.column())).unwrap_or(("<unknown>", 0, 0));
    let mut file_ptr: *const u8 = c"<nested panic>".as_ptr().cast();
    if !PANICKING.swap(true, Ordering::AcqRel) {
        debug::print(debug::LEVEL_ERROR, format_args!("panic at {file}:{line}:{column}: {}", info.message()));
        let file_buf = core::ptr::addr_of_mut!(FILE);
        // SAFETY: only the first panicking CPU gets here (the swap above),
        // so this is the one reference to `FILE` ever made.
        let buf = unsafe { &mut *file_buf };
        let _ = buf.write_str(file);
        file_ptr = buf.as_cstr();
    }
    // SAFETY: KeBugCheckEx does not return; its parameters are plain values
    // and the address of a NUL-terminated static string.
    unsafe { KeBugCheckEx(BUGCHECK_PANIC, file_ptr as usize, line as usize, column as usize, 0) }
}
