//! Receive timestamps: the system time (100-ns intervals since 1601, as
//! `KeQuerySystemTimePrecise` gives it) as nanoseconds since the Unix epoch.
//! The driver reads the system time for every chunk of frames it hands
//! out, so timestamps follow the wall clock (NTP adjustments included)
//! instead of drifting from an anchor taken at load.

/// 100-ns intervals between 1601-01-01 (Windows' epoch) and 1970-01-01.
pub const EPOCH_DIFF_100NS: i64 = 116_444_736_000_000_000;

/// Nanoseconds since the Unix epoch of a system time; 0 before 1970.
#[inline]
pub fn unix_ns(system_time_100ns: i64) -> u64 {
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
    }
}
