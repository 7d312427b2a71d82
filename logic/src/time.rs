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
    // The 100-ns intervals since 1970, less one: below `u64::MAX / 100`
    // for every time after 1970 whose nanoseconds a u64 holds (until
    // 2554); one compare for both ends (a time before 1970 wraps far
    // above).
    let since = (system_time_100ns as u64).wrapping_sub(EPOCH_DIFF_100NS as u64 + 1);
    if since < u64::MAX / 100 {
        // `(since + 1) * 100 <= u64::MAX`.
        return (since + 1) * 100;
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
        for t in [i64::MIN, -1, 0, 1, EPOCH_DIFF_100NS - 1, EPOCH_DIFF_100NS, EPOCH_DIFF_100NS + 1, last, last + 1] {
            assert_eq!(unix_ns(t), reference_unix_ns(t), "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn unix_ns_is_the_reference(t in proptest::num::i64::ANY, near in -3i64..3, at in 0usize..4) {
            let last = EPOCH_DIFF_100NS + (u64::MAX / 100) as i64;
            let t = [t, EPOCH_DIFF_100NS + near, last + near, i64::MIN + near.abs()][at];
            proptest::prop_assert_eq!(unix_ns(t), reference_unix_ns(t));
        }
    }
}
