//! Counts of the driver's calls into ndisim by call site, for a
//! coverage-guided fuzzer (`count_call_sites`).
//!
//! The driver's image is not instrumented, so a fuzzer running it sees
//! only ndisim's own edges and what it chooses to count of the driver's
//! answers. The gate every export goes through (`gate`) knows where in
//! the driver each call comes from (the return address, `[rsp]`) and which
//! export it is (`R10`): when counting is on, it bumps a byte of the
//! caller's table picked by a hash of the two, as relative addresses (the
//! return address's offset in the image, the export's from the gate), so a
//! site keeps its byte across simulations (each maps the image at an
//! address of its own) and across processes (libFuzzer's `-fork` children,
//! which map ndisim elsewhere). Off by default: one load and a branch per
//! export call.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The table (0: counting is off), its length less one (a power of two),
/// the base of the image whose calls are counted, and the gate's address.
/// Read by the gate's assembly.
#[unsafe(no_mangle)]
pub(super) static NDISIM_SITES: AtomicUsize = AtomicUsize::new(0);
#[unsafe(no_mangle)]
pub(super) static NDISIM_SITES_MASK: AtomicUsize = AtomicUsize::new(0);
#[unsafe(no_mangle)]
pub(super) static NDISIM_SITES_IMAGE: AtomicUsize = AtomicUsize::new(0);
#[unsafe(no_mangle)]
pub(super) static NDISIM_SITES_ANCHOR: AtomicUsize = AtomicUsize::new(0);

/// Counts every call the driver makes into ndisim from now on in `table`
/// (a power of two bytes long, at least 2): the byte of the call's site
/// (where in the image it returns to, and which export it calls), one more
/// per call, stopping at 255. A fuzzer passes its extra counters
/// (libFuzzer's `__libfuzzer_extra_counters` section), which it reads and
/// clears around each run. The counts are of the last image loaded (the
/// simulations of a process are counted one after another; calls from an
/// image loaded meanwhile by another simulation count under its base).
///
/// # Panics
/// If `table`'s length is not a power of two of at least 2.
pub fn count_call_sites(table: &'static [AtomicU8]) {
    let len = table.len();
    assert!(len >= 2 && len.is_power_of_two(), "a table of a power of two bytes");
    NDISIM_SITES_ANCHOR.store(super::gate::gate_addr(), Ordering::Release);
    NDISIM_SITES_MASK.store(len - 1, Ordering::Release);
    NDISIM_SITES.store(table.as_ptr() as usize, Ordering::Release);
}

/// The image whose calls are counted is now at `base` (ndisim's loader,
/// for each simulation's image).
pub(crate) fn image_at(base: usize) {
    NDISIM_SITES_IMAGE.store(base, Ordering::Release);
}
