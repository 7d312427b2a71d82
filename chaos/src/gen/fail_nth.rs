//! Bursts of refused allocations (`--fail-nth`, `Schedule::fail_nth`):
//! where in a run they start, how many in a row, and which last into the
//! teardown.

use super::Profile;
use crate::schedule::FailNth;
use ndisim::rng::Rng;

/// How far into a run a refusal may land (`fail_nth`): the longest
/// profile's span (`fail_nth_span`).
pub const FAIL_NTH_SPAN: u64 = 7_000;

/// How far into a run of `profile` a refusal may land (`fail_nth`): short
/// enough that about 85 in 100 of the bursts drawn up to it come before
/// the first end check ends the refusals, so land. Measured as
/// `Sim::allocations_counted` at that check (`Outcome::allocations`
/// counts on to the unload) on 24 seeds of each profile from 180000000
/// with `--fail-nth 1000`, both modes (which differ by a few per cent):
/// medians the scenes 600 to 630 (a quarter of them 1,200 or more),
/// mixed 1,760, filter-storm 1,800, rx-storm 1,950, ring-storm 2,350,
/// oid-storm 3,100, send-storm 3,800, retain-storm 4,900, teardown
/// 5,800, crowd 7,800 (free). With one span of 6,000 for all, a half to
/// two thirds of the bursts of the first six never landed.
pub fn fail_nth_span(profile: Profile) -> u64 {
    match profile {
        Profile::UnionRace | Profile::D0NoRestart | Profile::FilterShortage => 600,
        Profile::Mixed | Profile::FilterStorm => 1_200,
        Profile::RxStorm | Profile::RingStorm => 2_000,
        Profile::OidStorm => 3_000,
        Profile::SendStorm => 4_000,
        Profile::RetainStorm | Profile::Teardown => 5_000,
        Profile::Crowd => FAIL_NTH_SPAN,
    }
}

/// The first allocations of a run: `DriverEntry` (device, link, protocol,
/// its pools) and the first binds.
pub const FAIL_NTH_EARLY: u64 = 40;

/// For `per_mille` of the seeds, a burst of refused allocations, from its
/// own stream (the seed's other draws stay as they were): from the `n`th
/// allocation of the run, one in eight within the first
/// `FAIL_NTH_EARLY` (`DriverEntry`, the first binds), the rest anywhere
/// up to the span of the schedule's `profile` (`fail_nth_span`; some past
/// a short schedule's first end check: nothing refused); `count` in a
/// row, mostly 1, else 4, 16 or 1000 (a shortage that lasts until the end
/// checks end it). One burst in eight lasts into the teardown (`FailNth::
/// lasting`: the end checks do not end it) and refuses every allocation
/// from `n` on (`FailNth::ALL`): the rest of the body, the end checks,
/// the closes, the unbinds and the unload. (`n` is drawn as for the
/// others: a burst drawn to start past the first end check would mostly
/// start past the run's end, the teardown's allocations being few.) Half
/// of the rest not drawn early are aimed at the body (`FailNth::in_body`:
/// `n` counted from the actors' start, up to `fail_nth_body_span`): the
/// start makes most of a short profile's allocations, so a burst drawn
/// over the whole run landed before the actors in most of its schedules
/// (det seeds 183000000 on, 24 a profile, first refusals in the body:
/// union-race 6, mixed 9, ring-storm 11, oid-storm 15, teardown 14; of 48
/// before, 4, 6, 14, 16 and 28).
pub fn fail_nth(seed: u64, per_mille: u32, profile: Profile) -> Option<FailNth> {
    let mut r = Rng::new(seed ^ 0x6661_696C_6E74_6800);
    if per_mille == 0 || !r.chance(per_mille) {
        return None;
    }
    let span = fail_nth_span(profile);
    let n = if r.chance(125) { r.range(1, FAIL_NTH_EARLY) } else { r.range(1, span) };
    let count = match r.below(100) {
        0..70 => 1,
        70..82 => 4,
        82..92 => 16,
        _ => 1000,
    };
    // (Drawn after the rest: a burst that does not last is as it was.)
    if r.chance(125) {
        return Some(FailNth { n, count: FailNth::ALL, lasting: true, in_body: false });
    }
    // (And after that: half of the rest stay as they were.)
    if n > FAIL_NTH_EARLY && r.chance(500) {
        let n = r.range(1, fail_nth_body_span(profile));
        return Some(FailNth { n, count, lasting: false, in_body: true });
    }
    Some(FailNth { n, count, lasting: false, in_body: false })
}

/// How far into a schedule's body (from the first allocation after
/// `DriverEntry` and the first binds, as the actors start) a burst aimed
/// at it (`FailNth::in_body`) may land: about the allocations the body
/// makes before the first end check.
pub fn fail_nth_body_span(profile: Profile) -> u64 {
    match profile {
        Profile::UnionRace | Profile::D0NoRestart | Profile::FilterShortage => 40,
        Profile::Mixed | Profile::FilterStorm => 600,
        Profile::RxStorm | Profile::RingStorm => 1_000,
        Profile::OidStorm => 2_000,
        Profile::SendStorm => 3_000,
        Profile::RetainStorm | Profile::Teardown => 4_000,
        Profile::Crowd => 5_000,
    }
}
