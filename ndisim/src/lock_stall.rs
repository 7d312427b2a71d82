//! A stall aimed at one spin-lock acquire of the driver's
//! (`Sim::stall_lock_acquire`): the `nth` acquire (`NdisAcquireSpinLock`,
//! `NdisDprAcquireSpinLock`) a thread makes while inside a handler a test
//! names (one of `slow::HANDLERS`), counted from the call, first stalls
//! its thread for a while, before the lock is looked at: the thread keeps
//! the locks it already holds and is about to take the next, as a thread
//! Windows preempts there (or one that spins on the lock) would be. A
//! dispatch routine's steps between its locks are windows another thread
//! can land in: counting acquires aims a stall at each in turn, where no
//! allocation (`Sim::stall_pool_allocations_of`) marks the step. Under
//! the deterministic scheduler the stall is a sleep in virtual time, so
//! the other threads run as far as they can meanwhile and a seed replays;
//! free-running, a real sleep.
//!
//! The same aim, at calls (`Sim::stall_call`): the `nth` call of one
//! export (or of any) made inside a handler stalls before its body or
//! after it. After is where a hand-over's windows are: a thread that has
//! just completed an IRP, sent or returned NBLs, completed a PnP event or
//! released a lock waits there, while the receiver of what it handed over
//! finishes with it and frees it, before the thread's next instruction.
//! The deterministic scheduler switches only at an export's entry, so
//! nothing else opens that window there.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// What `Sim::stall_lock_acquire` (or `Sim::stall_call`) aimed, and what
/// came of it.
#[derive(Default)]
pub(crate) struct LockStall {
    /// `slow::HANDLERS` bits of the handler aimed at; 0: none.
    mask: AtomicU32,
    /// The only thread whose acquires count (`kernel::tid`); 0: any.
    thread: AtomicU32,
    /// Acquires inside it still to let through before the stalled one
    /// (the stalled one included: it stalls when this goes from 1 to 0).
    left: AtomicU64,
    /// The stall's length, in nanoseconds.
    ns: AtomicU64,
    /// Acquires inside the handler seen since it was aimed.
    seen: AtomicU64,
    /// Threads stalled now, and stalls made since it was aimed.
    stalled: AtomicU64,
    stalls: AtomicU64,
    /// For a call stall (`Sim::stall_call`): the export whose calls count
    /// (`name_key` of its name; 0: every export), and whether the stall
    /// comes after its body rather than before.
    call: AtomicU64,
    after: std::sync::atomic::AtomicBool,
}

impl LockStall {
    /// Aims at the `nth` (from 1) acquire inside `mask`'s handler, for `d`,
    /// counting only thread `thread`'s (0: every thread's).
    pub(crate) fn aim(&self, mask: u32, thread: u32, nth: u64, d: Duration) {
        self.aim_call(mask, thread, None, false, nth, d);
    }

    /// Aims at the `nth` (from 1) call of export `call` (every export's
    /// when `None`) made inside `mask`'s handler, before its body or
    /// `after` it, for `d`, counting only thread `thread`'s (0: every
    /// thread's).
    pub(crate) fn aim_call(&self, mask: u32, thread: u32, call: Option<&str>, after: bool, nth: u64, d: Duration) {
        self.mask.store(0, Ordering::Release);
        self.call.store(call.map_or(0, name_key), Ordering::Release);
        self.after.store(after, Ordering::Release);
        self.thread.store(thread, Ordering::Release);
        self.left.store(nth, Ordering::Release);
        self.ns.store(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Release);
        self.seen.store(0, Ordering::Release);
        self.stalls.store(0, Ordering::Release);
        self.mask.store(mask, Ordering::Release);
    }

    /// At an acquire: how long this thread stalls first, if this is the
    /// acquire aimed at.
    pub(crate) fn at_acquire(&self) -> Option<Duration> {
        let mask = self.mask.load(Ordering::Acquire);
        if mask == 0 || !crate::slow::inside(mask) {
            return None;
        }
        self.count_one()
    }

    /// At a call of export `call`, before its body or `after` it: how
    /// long this thread stalls there, if this is the call aimed at.
    #[inline]
    pub(crate) fn at_call(&self, call: &str, after: bool) -> Option<Duration> {
        let mask = self.mask.load(Ordering::Relaxed);
        if mask == 0 {
            return None;
        }
        self.at_call_slow(mask, call, after)
    }

    #[inline(never)]
    fn at_call_slow(&self, mask: u32, call: &str, after: bool) -> Option<Duration> {
        std::sync::atomic::fence(Ordering::Acquire);
        if !crate::slow::inside(mask) || self.after.load(Ordering::Acquire) != after {
            return None;
        }
        let want = self.call.load(Ordering::Acquire);
        if want != 0 && want != name_key(call) {
            return None;
        }
        self.count_one()
    }

    /// Counts an acquire or call inside the handler: the stall, if it is
    /// the one aimed at.
    fn count_one(&self) -> Option<Duration> {
        let only = self.thread.load(Ordering::Acquire);
        if only != 0 && only != crate::kernel::tid() {
            return None;
        }
        self.seen.fetch_add(1, Ordering::AcqRel);
        let due = self.left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).ok() == Some(1);
        due.then(|| Duration::from_nanos(self.ns.load(Ordering::Acquire)))
    }

    /// Around the stall itself.
    pub(crate) fn stalling(&self, stall: impl FnOnce()) {
        self.stalled.fetch_add(1, Ordering::AcqRel);
        self.stalls.fetch_add(1, Ordering::AcqRel);
        stall();
        self.stalled.fetch_sub(1, Ordering::AcqRel);
    }

    /// (Acquires seen inside the handler, stalls made, threads stalled now.)
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (self.seen.load(Ordering::Acquire), self.stalls.load(Ordering::Acquire), self.stalled.load(Ordering::Acquire))
    }
}

/// A key of an export's name (FNV-1a, never 0), so a call is matched
/// without a lock.
fn name_key(name: &str) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nth_acquire_inside_the_handler_stalls() {
        let s = LockStall::default();
        assert_eq!(s.at_acquire(), None, "nothing aimed");
        s.aim(crate::slow::bit("IRP_MJ_DEVICE_CONTROL"), 0, 3, Duration::from_millis(5));
        assert_eq!(s.at_acquire(), None, "outside the handler");
        assert_eq!(s.counts(), (0, 0, 0), "not counted outside it");
        let _g = crate::slow::enter("IRP_MJ_DEVICE_CONTROL");
        let got: Vec<_> = (0..5).map(|_| s.at_acquire()).collect();
        assert_eq!(got, [None, None, Some(Duration::from_millis(5)), None, None]);
        s.stalling(|| assert_eq!(s.counts().2, 1, "stalled meanwhile"));
        assert_eq!(s.counts(), (5, 1, 0));
    }

    #[test]
    fn only_the_nth_call_of_the_export_inside_the_handler_stalls_where_aimed() {
        let s = LockStall::default();
        let d = Duration::from_millis(3);
        s.aim_call(crate::slow::bit("WorkerRoutine"), 0, Some("IofCompleteRequest"), true, 2, d);
        assert_eq!(s.at_call("IofCompleteRequest", true), None, "outside the handler");
        let _g = crate::slow::enter("WorkerRoutine");
        assert_eq!(s.at_call("NdisAcquireSpinLock", true), None, "another export");
        assert_eq!(s.at_call("IofCompleteRequest", false), None, "before its body");
        assert_eq!(s.counts().0, 0, "none of them counted");
        let got: Vec<_> = (0..3).map(|_| s.at_call("IofCompleteRequest", true)).collect();
        assert_eq!(got, [None, Some(d), None], "the second");
        assert_eq!(s.counts(), (3, 0, 0));
        // Every export's calls count when none is named.
        s.aim_call(crate::slow::bit("WorkerRoutine"), 0, None, false, 3, d);
        let got: Vec<_> = ["ExAllocatePoolWithTag", "NdisAcquireSpinLock", "IoFreeMdl", "ZwClose"]
            .iter()
            .map(|c| s.at_call(c, false))
            .collect();
        assert_eq!(got, [None, None, Some(d), None]);
    }
}
