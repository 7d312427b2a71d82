//! Refused allocations that last into the teardown (`FailNth::lasting`).
//!
//! A schedule's burst of refused allocations (`Schedule::fail_nth`)
//! usually ends at the first end check (`owed::check`): the end checks
//! run with memory. A lasting burst is not ended there: it refuses on
//! through the end checks, the closes of the handles left open, the
//! unbinds and the unload, until its `count` is used up. What the driver
//! promises then is what it promises under any shortage: every close and
//! cleanup completes, nothing leaks (ndisim's unload checks the pool,
//! NBLs, MDLs, IRPs and handles), no verifier rule fires, the unload is
//! clean. The checks whose state needs memory to come about (a filter or
//! multicast union owed and asked for again, frames a probe must get, the
//! handles' accounts read through GET_STATS) are left out while the burst
//! may still refuse (`refusing`); the explorer's own listings may fail,
//! but only for want of memory (`short_status`).

use super::Ctx;
use crate::schedule::{FailNth, Schedule};
use rawnic_proto::NtStatus;

/// Whether `s`'s burst lasts into the teardown.
pub(super) fn lasts(s: &Schedule) -> bool {
    s.fail_nth.is_some_and(|f| f.lasting)
}

/// At the first end check: ends the schedule's refused allocations,
/// unless they last into the teardown.
pub(super) fn end_refusals(c: &Ctx<'_>) {
    if !lasts(c.sched) {
        c.sim.end_allocation_refusals();
    }
}

/// Whether a lasting burst may still refuse an allocation now (its
/// window is not over: it has not come yet, or is under way).
pub(super) fn refusing(c: &Ctx<'_>) -> bool {
    c.sched.fail_nth.is_some_and(|f| still_refusing(f, c.sim.allocations_counted()))
}

/// Whether burst `f` may refuse an allocation once `counted` were
/// counted: a lasting one whose last refusal is still to come.
fn still_refusing(f: FailNth, counted: u64) -> bool {
    f.lasting && counted < f.n.saturating_add(f.count).saturating_sub(1)
}

/// The status `st` of one of the end's own requests (`what`) that needs
/// memory: under a lasting burst it may fail, but only for want of it
/// (`STATUS_INSUFFICIENT_RESOURCES`, which is also
/// `NDIS_STATUS_RESOURCES`); `Err` says what is wrong. Without a
/// lasting burst, anything goes here (the callers judge as before).
pub(super) fn short_status(c: &Ctx<'_>, what: &str, st: i32) -> Result<(), String> {
    judge_status(lasts(c.sched), what, st)
}

/// `short_status`, given whether the burst lasts.
fn judge_status(lasting: bool, what: &str, st: i32) -> Result<(), String> {
    if !lasting || st == 0 || st == NtStatus::INSUFFICIENT_RESOURCES.0 {
        return Ok(());
    }
    Err(format!(
        "{what} failed with {:#010x} under refused allocations that last into the teardown (only {:#010x}, for want of memory, may fail it)",
        st as u32,
        NtStatus::INSUFFICIENT_RESOURCES.0 as u32
    ))
}

#[cfg(test)]
mod tests {
    use super::{judge_status, still_refusing};
    use crate::schedule::FailNth;

    #[test]
    fn a_lasting_burst_refuses_until_its_count_is_used_up() {
        let f = FailNth { n: 100, count: 16, lasting: true, in_body: false };
        // Before it came, and while it lasts (the 100th to the 115th).
        assert!(still_refusing(f, 10));
        assert!(still_refusing(f, 99));
        assert!(still_refusing(f, 114));
        assert!(!still_refusing(f, 115));
        assert!(!still_refusing(f, 1_000));
        // One to the end never ends.
        assert!(still_refusing(FailNth { count: FailNth::ALL, ..f }, u64::MAX / 2));
        // A burst the first end check ends does not refuse in the end.
        assert!(!still_refusing(FailNth { lasting: false, ..f }, 10));
    }

    #[test]
    fn only_a_shortage_may_fail_the_ends_listings_under_a_lasting_burst() {
        assert!(judge_status(true, "x", 0).is_ok());
        assert!(judge_status(true, "x", 0xC000_009A_u32 as i32).is_ok());
        let e = judge_status(true, "the links' LIST_BINDINGS", 0xC000_0001_u32 as i32).unwrap_err();
        assert!(e.contains("LIST_BINDINGS failed with 0xc0000001"), "{e}");
        // Without one, the callers judge as they did.
        assert!(judge_status(false, "x", 0xC000_0001_u32 as i32).is_ok());
    }
}
