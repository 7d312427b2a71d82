//! Clocks.

use ndis_sys::{KeQueryPerformanceCounter, KeQuerySystemTimePrecise, LARGE_INTEGER};

/// System time: 100-ns intervals since 1601-01-01 UTC.
pub fn system_time() -> i64 {
    let mut t = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: writes one LARGE_INTEGER we own.
    unsafe {
        KeQuerySystemTimePrecise(&mut t);
        t.QuadPart
    }
}

/// The performance counter and its frequency.
pub fn performance_counter() -> (i64, u64) {
    let mut f = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: writes one LARGE_INTEGER we own.
    let ticks = unsafe { KeQueryPerformanceCounter(&mut f) };
    // SAFETY: written by the call.
    (ticks, unsafe { f.QuadPart } as u64)
}

/// The performance counter alone.
#[inline]
pub fn ticks() -> i64 {
    // SAFETY: a null frequency pointer is allowed.
    unsafe { KeQueryPerformanceCounter(core::ptr::null_mut()) }
}
