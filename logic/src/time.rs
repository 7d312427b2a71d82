//! Receive timestamps: the system time (100-ns intervals since 1601, as
//! `KeQuerySystemTimePrecise` gives it) as nanoseconds since the Unix epoch.
//! The driver reads the system time for every chunk of frames it hands
//! out, so timestamps follow the wall clock (NTP adjustments included)
//! instead of drifting from an anchor taken at load.

/// 100-ns intervals between 1601-01-01 (Windows' epoch) and 1970-01-01.
pub const EPOCH_DIFF_100NS: i64 = 116_444_736_000_000_000;

/// Nanoseconds since the Unix epoch of a system time; 0 before 1970.
#[inline(always)]
pub fn unix_ns(system_time_100ns: i64) -> u64 {
    // After 1970 and before 2554: the multiply's overflow flag alone. A
    // time before 1970 wraps to at least `2^63 - EPOCH_DIFF_100NS` (a
    // negative one is `2^63` or more as a u64), far over
    // `u64::MAX / 100`, so its multiply overflows too (and 1970 itself
    // gives 0).
    let since = (system_time_100ns as u64).wrapping_sub(EPOCH_DIFF_100NS as u64);
    if let Some(ns) = since.checked_mul(100) {
        return ns;
    }
    unix_ns_outside(system_time_100ns)
}

/// `unix_ns` of a time before 1970 (0) or after 2554 (saturated).
#[cold]
#[inline(never)]
fn unix_ns_outside(system_time_100ns: i64) -> u64 {
    reference_unix_ns(system_time_100ns)
}

/// `unix_ns`, written plainly.
fn reference_unix_ns(system_time_100ns: i64) -> u64 {
    if system_time_100ns <= EPOCH_DIFF_100NS {
        return 0;
    }
    // Both positive: the difference cannot overflow.
    ((system_time_100ns - EPOCH_DIFF_100NS) as u64).saturating_mul(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts() {
        // 2026-01-01T00:00:00Z = 1767225600 s.
        let st = EPOCH_DIFF_100NS + 1_767_225_600 * 10_000_000;
        assert_eq!(unix_ns(st), 1_767_225_600_000_000_000);
        assert_eq!(unix_ns(st + 1), 1_767_225_600_000_000_100, "100-ns resolution");
        assert_eq!(unix_ns(0), 0, "never before 1970");
        assert_eq!(unix_ns(i64::MAX), u64::MAX, "saturates");
        let last = EPOCH_DIFF_100NS + (u64::MAX / 100) as i64;
        assert_eq!(unix_ns(last), u64::MAX / 100 * 100, "the last time that fits");
        assert_eq!(unix_ns(last + 1), u64::MAX, "the first that does not");
        // The last time whose nanoseconds an `i64` holds, and the first
        // after it (`unix_ns`'s fast path ends there).
        let i64_last = EPOCH_DIFF_100NS + i64::MAX / 100;
        for t in [
            i64::MIN,
            -1,
            0,
            1,
            EPOCH_DIFF_100NS - 1,
            EPOCH_DIFF_100NS,
            EPOCH_DIFF_100NS + 1,
            i64_last,
            i64_last + 1,
            last,
            last + 1,
        ] {
            assert_eq!(unix_ns(t), reference_unix_ns(t), "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn unix_ns_is_the_reference(t in proptest::num::i64::ANY, near in -3i64..3, at in 0usize..5) {
            let last = EPOCH_DIFF_100NS + (u64::MAX / 100) as i64;
            let i64_last = EPOCH_DIFF_100NS + i64::MAX / 100;
            let t = [t, EPOCH_DIFF_100NS + near, last + near, i64::MIN + near.abs(), i64_last + near][at];
            proptest::prop_assert_eq!(unix_ns(t), reference_unix_ns(t));
        }
    }
}
