//! The watchdogs' clock in free-running mode: wall time less the time the
//! process could not run.
//!
//! A watchdog (a pause, restart or close that pended too long) is meant to
//! catch a driver that never completes, not a machine that is busy
//! elsewhere. On a loaded host (many test or chaos processes on a few
//! CPUs) a pended operation can take seconds of wall time while the
//! process gets little CPU. A heartbeat thread sleeps `TICK` at a time and
//! counts how late it wakes; that lateness is time the process was kept
//! from running, and the watchdogs do not count it. A driver that never
//! completes still trips them, only later on a loaded machine.
//!
//! The heartbeat learns of a stop only once it runs again, and another
//! thread may run first: one whose process (or virtual machine) was
//! stopped for longer than a watchdog's time would see every deadline
//! passed at once, a moment before the heartbeat took the stop off, and
//! the clock would then go back. So the time since the heartbeat's last
//! beat, beyond a tick and its slack, counts as stopped until the
//! heartbeat says otherwise, and the clock never goes back.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(5);
/// Lateness below this is the sleep's own slack, not starvation.
const SLACK: Duration = Duration::from_millis(2);

/// Lateness the heartbeat measured, in all.
static STARVED_NS: AtomicU64 = AtomicU64::new(0);
/// When the heartbeat last went to sleep (since `START`); `u64::MAX`
/// until it runs (a heartbeat that could not start leaves wall time).
static LAST_BEAT_NS: AtomicU64 = AtomicU64::new(u64::MAX);
/// The largest time `now` returned (it never goes back).
static LAST_NOW_NS: AtomicU64 = AtomicU64::new(0);
static START: OnceLock<Instant> = OnceLock::new();

fn start() -> Instant {
    *START.get_or_init(|| {
        let _ = std::thread::Builder::new().name("ndisim-heartbeat".into()).spawn(|| {
            let start = start();
            loop {
                let t = Instant::now();
                LAST_BEAT_NS.store(nanos(t.duration_since(start)), Ordering::Release);
                std::thread::sleep(TICK);
                let late = t.elapsed().saturating_sub(TICK);
                if late > SLACK {
                    STARVED_NS.fetch_add(nanos(late), Ordering::AcqRel);
                }
            }
        });
        Instant::now()
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The clock at wall time `wall` (since `START`), with `starved` of
/// lateness measured and the heartbeat's last sleep begun at `last_beat`:
/// a sleep that has lasted longer than a tick and its slack counts as
/// lateness already.
fn corrected(wall: u64, starved: u64, last_beat: u64) -> u64 {
    let asleep = wall.saturating_sub(last_beat);
    let tick = nanos(TICK);
    let pending = if asleep > tick + nanos(SLACK) { asleep - tick } else { 0 };
    wall.saturating_sub(starved).saturating_sub(pending)
}

/// Time the process could run since it first asked: wall time less the
/// heartbeat's measured lateness, and less the lateness of the sleep it is
/// in; never less than a time it returned before.
pub(crate) fn now() -> Duration {
    let wall = nanos(start().elapsed());
    // The beat before the lateness: a beat newer than the lateness read
    // would take off the sleep it ended twice (the clock would only hold
    // still a moment); an older one cannot make it run ahead.
    let last_beat = LAST_BEAT_NS.load(Ordering::Acquire);
    let starved = STARVED_NS.load(Ordering::Acquire);
    let t = corrected(wall, starved, last_beat);
    let before = LAST_NOW_NS.fetch_max(t, Ordering::AcqRel);
    Duration::from_nanos(t.max(before))
}

/// A time limit on this clock: a wait that gives up at it gives up only
/// after the time the process could run, however long it was stopped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Duration);

impl Deadline {
    /// `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline(now().saturating_add(timeout))
    }

    /// The time left, `None` once it passed. Never more than the wall time
    /// left: a wait of this long wakes early at worst, and looks again.
    pub(crate) fn left(self) -> Option<Duration> {
        let n = now();
        (n < self.0).then(|| self.0 - n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_wall_time_on_an_idle_process() {
        let a = now();
        std::thread::sleep(Duration::from_millis(50));
        let d = now() - a;
        // Never more than wall time; on an idle machine close to it.
        assert!(d <= Duration::from_millis(60) + Duration::from_millis(50), "{d:?}");
        assert!(d >= Duration::from_millis(10), "{d:?}");
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_stop_the_heartbeat_has_not_seen_yet_does_not_count() {
        // The heartbeat went to sleep at 1 s, having measured 100 ms of
        // lateness before; 30 s later it has not woken.
        let before_stop = corrected(1_000 * MS + 3 * MS, 100 * MS, 1_000 * MS);
        let after_stop = corrected(31_000 * MS, 100 * MS, 1_000 * MS);
        assert_eq!(before_stop, 903 * MS);
        // Only one tick of the 30 s counts.
        assert_eq!(after_stop, 905 * MS);
        // Once it woke and counted the lateness, the same.
        let woke = corrected(31_000 * MS, 100 * MS + 29_995 * MS, 31_000 * MS);
        assert_eq!(woke, after_stop);
    }

    #[test]
    fn a_sleep_within_its_slack_runs_with_wall_time() {
        assert_eq!(corrected(10 * MS + 6 * MS, 0, 10 * MS), 16 * MS);
        assert_eq!(corrected(10 * MS + 7 * MS, 0, 10 * MS), 17 * MS);
        // Beyond the tick and its slack, the clock holds at the tick.
        assert_eq!(corrected(10 * MS + 8 * MS, 0, 10 * MS), 15 * MS);
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut last = now();
        for _ in 0..1000 {
            let t = now();
            assert!(t >= last, "{t:?} after {last:?}");
            last = t;
        }
    }
}
