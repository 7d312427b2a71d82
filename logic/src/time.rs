//! Receive timestamps: performance-counter ticks to nanoseconds since the
//! Unix epoch, anchored once to the system time.

/// 100-ns intervals between 1601-01-01 (Windows' epoch) and 1970-01-01.
pub const EPOCH_DIFF_100NS: i64 = 116_444_736_000_000_000;

/// The anchor: a system time (100 ns since 1601) and the counter reading
/// taken with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    base_unix_ns: u64,
    base_ticks: i64,
    frequency: u64,
}

impl Clock {
    pub fn new(system_time_100ns: i64, ticks: i64, frequency: u64) -> Self {
        let unix_100ns = system_time_100ns.saturating_sub(EPOCH_DIFF_100NS).max(0) as u64;
        Clock { base_unix_ns: unix_100ns.saturating_mul(100), base_ticks: ticks, frequency: frequency.max(1) }
    }

    /// Nanoseconds since the Unix epoch at counter reading `ticks`.
    pub fn unix_ns(&self, ticks: i64) -> u64 {
        let dt = ticks.saturating_sub(self.base_ticks).max(0) as u128;
        let ns = dt * 1_000_000_000 / self.frequency as u128;
        self.base_unix_ns.saturating_add(ns as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts() {
        // 2026-01-01T00:00:00Z = 1767225600 s.
        let st = EPOCH_DIFF_100NS + 1_767_225_600 * 10_000_000;
        let c = Clock::new(st, 1000, 10_000_000);
        assert_eq!(c.unix_ns(1000), 1_767_225_600_000_000_000);
        assert_eq!(c.unix_ns(1000 + 10_000_000), 1_767_225_601_000_000_000);
        assert_eq!(c.unix_ns(0), 1_767_225_600_000_000_000, "never before the anchor");
    }
}
