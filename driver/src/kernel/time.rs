//! Clocks.

use ndis_sys::{KeQuerySystemTimePrecise, LARGE_INTEGER};

/// System time: 100-ns intervals since 1601-01-01 UTC.
pub fn system_time() -> i64 {
    let mut t = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: writes one LARGE_INTEGER we own.
    unsafe { KeQuerySystemTimePrecise(&mut t) };
    // SAFETY: every member of the union is plain integers over the same
    // eight bytes, and the kernel wrote all of them.
    unsafe { t.QuadPart }
}

/// Now, in nanoseconds since the Unix epoch (100-ns resolution).
#[inline]
pub fn unix_ns() -> u64 {
    rawnic_logic::time::unix_ns(system_time())
}
