//! A schedule is a hang when it makes no step for a whole limit, or runs
//! five limits in all; one that is slow but still moves (an oversubscribed
//! machine) is not. Stand-in workers (shell scripts speaking the worker's
//! line protocol) play each case with a two-second limit: almost seven of
//! the slow worker's 0.3 s steps, so that a loaded machine's late
//! wake-ups (a step once came more than a second late, load average 26)
//! do not make a hang of it.

use rawnic_chaos::Verdict;
use rawnic_chaos::supervise::{Workers, run_file};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The stand-in workers: name and body (sh), run after announcing the
/// schedule.
const WORKERS: [(&str, &str); 4] = [
    ("still", "sleep 30"),
    ("slow", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 0.3; echo ALIVE; done\nsleep 30"),
    ("livelock", "while :; do sleep 0.2; echo ALIVE; done"),
    ("dies", "echo ALIVE\nkill -SEGV $$"),
];

/// Writes every worker's script once, before any test starts one: a
/// script still open for writing in this process when another test's
/// thread forks a child would fail that exec with ETXTBSY ("Text file
/// busy"), as the child holds the descriptor until its own exec.
fn scripts() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rawnic-hang-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, body) in WORKERS {
            let exe = dir.join(name);
            std::fs::write(&exe, format!("#!/bin/sh\necho START 1\n{body}\n")).expect("script");
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        dir
    })
}

/// The worker named `name` in `WORKERS`.
/// The limit the stand-ins are judged by.
const LIMIT: Duration = Duration::from_secs(2);

fn worker(name: &str) -> Workers {
    let exe = scripts().join(name);
    Workers { exe, driver: PathBuf::from("unused.sys"), limit: LIMIT, jobs: 1, patient: false }
}

fn hang(v: Verdict) -> (Duration, Duration) {
    match v {
        Verdict::Hang { after, still, .. } => (after, still),
        v => panic!("not a hang: {v:?}"),
    }
}

#[test]
fn a_worker_that_never_steps_hangs_after_one_limit() {
    let w = worker("still");
    let (after, still) = hang(run_file(&w, &w.exe));
    // (Upper bounds leave room for a loaded machine's late wake-ups.)
    assert!(after >= LIMIT && after < 3 * LIMIT, "{after:?}");
    assert!(still >= LIMIT, "{still:?}");
}

#[test]
fn a_worker_slow_but_stepping_is_given_time_until_it_stops() {
    // Steps every 0.3 s for 3.6 s (well past the limit), then stops: a
    // hang one limit after its last step.
    let w = worker("slow");
    let (after, still) = hang(run_file(&w, &w.exe));
    assert!(after >= Duration::from_millis(3600) + LIMIT, "hung at {after:?} while it still stepped");
    assert!(after < Duration::from_secs(6) * 2, "{after:?}");
    assert!(still >= LIMIT && still < 3 * LIMIT, "{still:?}");
}

#[test]
fn a_worker_stepping_for_ever_hangs_after_five_limits() {
    let w = worker("livelock");
    let (after, still) = hang(run_file(&w, &w.exe));
    assert!(after >= 5 * LIMIT && after < 8 * LIMIT, "{after:?}");
    // Still stepping: never a whole limit without a step.
    assert!(still < LIMIT + Duration::from_secs(1), "{still:?}");
}

#[test]
fn a_worker_that_dies_is_a_crash_not_a_hang() {
    let w = worker("dies");
    match run_file(&w, &w.exe) {
        Verdict::Crash { how, .. } => assert!(how.contains("SIGSEGV"), "{how}"),
        v => panic!("{v:?}"),
    }
}
