//! Slow handlers (`SimBuilder::slow_handlers`): while a thread runs inside
//! one of the driver's handlers named, some of its calls into ndisim first
//! stall it, for up to a few milliseconds. A pause handler that stalls
//! half-way lets a kick, an indication or a close on another CPU run into
//! its middle; a dispatch routine that stalls lets a pause overtake it.
//! Windows gives those windows whenever a CPU is interrupted, or a virtual
//! machine's vCPU descheduled, inside the handler: jitter (`jitter`) opens
//! them everywhere at random and briefly, this opens them wide where a
//! schedule aims. Running free the stall is a real sleep; deterministic, a
//! sleep in virtual time (the scheduler runs the others meanwhile), drawn
//! from a count of draws only the running thread makes, so a seed replays.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The handlers a schedule may aim at: NDIS's entry points into a
/// protocol, the work item's routine, the dispatch routines by major
/// function, and the cancel routine (`IoCancelIrp`'s call). A handler's bit
/// is its index.
pub const HANDLERS: [&str; 17] = [
    "ProtocolNetPnPEvent",
    "ProtocolReceiveNetBufferLists",
    "ProtocolSendNetBufferListsComplete",
    "ProtocolOidRequestComplete",
    "ProtocolStatusEx",
    "ProtocolBindAdapterEx",
    "ProtocolUnbindAdapterEx",
    "ProtocolOpenAdapterCompleteEx",
    "ProtocolCloseAdapterCompleteEx",
    "WorkerRoutine",
    "IRP_MJ_CREATE",
    "IRP_MJ_CLEANUP",
    "IRP_MJ_CLOSE",
    "IRP_MJ_READ",
    "IRP_MJ_WRITE",
    "IRP_MJ_DEVICE_CONTROL",
    "CancelRoutine",
];

/// The mask of handler `name` (0: not one `HANDLERS` names).
pub fn bit(name: &str) -> u32 {
    HANDLERS.iter().position(|&h| h == name).map_or(0, |i| 1 << i)
}

/// Which handlers stall, how often, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slow {
    /// `HANDLERS` bits.
    pub mask: u32,
    /// Of the calls into ndisim made inside one of them, this many in 1000
    /// stall.
    pub per_mille: u32,
    /// A stall lasts 1 µs to this many.
    pub max_us: u32,
    pub seed: u64,
}

impl Slow {
    /// Aimed at the handlers `names` (each one of `HANDLERS`); `Err` names
    /// the first that is not.
    pub fn new(names: &[&str], per_mille: u32, max_us: u32, seed: u64) -> Result<Slow, String> {
        let mut mask = 0;
        for n in names {
            match bit(n) {
                0 => return Err(format!("{n:?} is not a handler ndisim can slow (one of {HANDLERS:?})")),
                b => mask |= b,
            }
        }
        Ok(Slow { mask, per_mille: per_mille.min(1000), max_us: max_us.max(1), seed })
    }

    /// Whether this call stalls, and for how long: `draws` counts the
    /// draws made so far (one per call inside an aimed handler).
    pub(crate) fn draw(&self, draws: &AtomicU64) -> Option<Duration> {
        if INSIDE.with(Cell::get) & self.mask == 0 {
            return None;
        }
        let n = draws.fetch_add(1, Ordering::Relaxed);
        let mut r = crate::rng::Rng::new(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if r.below(1000) >= u64::from(self.per_mille) {
            return None;
        }
        Some(Duration::from_micros(r.range(1, u64::from(self.max_us))))
    }
}

thread_local! {
    /// The `HANDLERS` bits of the handlers this thread is inside (an export
    /// may call back into the driver: both count).
    static INSIDE: Cell<u32> = const { Cell::new(0) };
}

/// The `HANDLERS` bits of the handlers this thread is inside.
pub(crate) fn inside_bits() -> u32 {
    INSIDE.with(Cell::get)
}

/// Whether this thread is inside one of the handlers of `mask`.
pub(crate) fn inside(mask: u32) -> bool {
    INSIDE.with(Cell::get) & mask != 0
}

/// This thread is inside handler `name` until the guard drops.
pub(crate) fn enter(name: &str) -> Inside {
    let before = INSIDE.with(|i| i.replace(i.get() | bit(name)));
    Inside(before)
}

/// `enter`'s guard: puts back the bits of before.
pub(crate) struct Inside(u32);

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|i| i.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calls_inside_an_aimed_handler_stall_and_a_seed_draws_the_same() {
        let s = Slow::new(&["ProtocolNetPnPEvent", "IRP_MJ_DEVICE_CONTROL"], 500, 300, 7).expect("known handlers");
        let draws = AtomicU64::new(0);
        assert_eq!(s.draw(&draws), None);
        assert_eq!(draws.load(Ordering::Relaxed), 0, "outside every handler: no draw");
        let run = || {
            let d = AtomicU64::new(0);
            let _g = enter("ProtocolReceiveNetBufferLists");
            let none = (0..50).filter_map(|_| s.draw(&d)).count();
            let _h = enter("IRP_MJ_DEVICE_CONTROL");
            let got: Vec<_> = (0..200).map(|_| s.draw(&d)).collect();
            (none, got)
        };
        let (none, got) = run();
        assert_eq!(none, 0, "a handler not aimed at");
        let stalls = got.iter().flatten().count();
        assert!((60..140).contains(&stalls), "{stalls} of 200 at 500 per mille");
        assert!(got.iter().flatten().all(|d| (1..=300).contains(&d.as_micros())));
        assert_eq!(run().1, got, "the same draws again");
        assert_eq!(INSIDE.with(Cell::get), 0, "the guards put the bits back");
        assert!(Slow::new(&["ProtocolNetPnPEvent", "DriverEntry"], 1, 1, 0).unwrap_err().contains("DriverEntry"));
    }

    #[test]
    fn the_cancel_routine_is_a_handler_with_its_own_bit() {
        let b = bit("CancelRoutine");
        assert_ne!(b, 0);
        assert_eq!(HANDLERS.iter().map(|h| bit(h)).filter(|&x| x == b).count(), 1);
        let _g = enter("CancelRoutine");
        assert!(inside(b) && !inside(bit("IRP_MJ_READ")));
    }
}
