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

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(5);
/// Lateness below this is the sleep's own slack, not starvation.
const SLACK: Duration = Duration::from_millis(2);

static STARVED_NS: AtomicU64 = AtomicU64::new(0);
static START: OnceLock<Instant> = OnceLock::new();

fn start() -> Instant {
    *START.get_or_init(|| {
        let _ = std::thread::Builder::new().name("ndisim-heartbeat".into()).spawn(|| {
            loop {
                let t = Instant::now();
                std::thread::sleep(TICK);
                let late = t.elapsed().saturating_sub(TICK);
                if late > SLACK {
                    STARVED_NS.fetch_add(late.as_nanos() as u64, Ordering::Relaxed);
                }
            }
        });
        Instant::now()
    })
}

/// Time the process could run since it first asked: wall time less the
/// heartbeat's measured lateness.
pub(crate) fn now() -> Duration {
    let wall = start().elapsed();
    wall.saturating_sub(Duration::from_nanos(STARVED_NS.load(Ordering::Relaxed)))
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
}
