//! Clocks.

use ndis_sys::{KeDelayExecutionThread, KeQuerySystemTimePrecise, KernelMode, LARGE_INTEGER};

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

/// Puts the calling thread to sleep for at least `ms` milliseconds (at
/// PASSIVE_LEVEL: the CPU goes to other threads meanwhile).
pub fn sleep_ms(ms: u32) {
    let mut interval = LARGE_INTEGER { QuadPart: -(i64::from(ms) * 10_000) };
    // SAFETY: a kernel-mode, non-alertable wait on a relative interval we
    // own; the caller runs at PASSIVE_LEVEL (at most APC_LEVEL is allowed).
    // Not alertable, it returns only when the interval has passed.
    let _ = unsafe { KeDelayExecutionThread(KernelMode, 0, &mut interval) };
}
