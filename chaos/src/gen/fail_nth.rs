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
/// start past the run's end, the teardown's allocations being few.)
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
    if !r.chance(125) {
        return Some(FailNth { n, count, lasting: false });
    }
    Some(FailNth { n, count: FailNth::ALL, lasting: true })
}
