//! Clocks.

use ndis_sys::{KeQuerySystemTimePrecise, LARGE_INTEGER};

/// System time: 100-ns intervals since 1601-01-01 UTC.
#[inline(always)]
pub fn system_time() -> i64 {
    let mut t = core::mem::MaybeUninit::<LARGE_INTEGER>::uninit();
    // SAFETY: writes one LARGE_INTEGER we own.
    unsafe { KeQuerySystemTimePrecise(t.as_mut_ptr()) };
    // SAFETY: the kernel wrote all eight bytes.
    let t = unsafe { t.assume_init() };
    // SAFETY: every member of the union is plain integers over the same
    // eight bytes.
    unsafe { t.QuadPart }
}

/// Now, in nanoseconds since the Unix epoch (100-ns resolution).
#[inline]
pub fn unix_ns() -> u64 {
    rawnic_logic::time::unix_ns(system_time())
}
