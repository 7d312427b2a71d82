//! Sweeps of one handler's spin-lock acquires: the handler stalls at its
//! `nth` acquire (`Sim::stall_lock_acquire`, virtual time under the
//! deterministic scheduler) while another thread runs as far as it gets,
//! for every `nth` the handler reaches. `driver_close_races.rs`,
//! `driver_open_races.rs` and `driver_receive.rs` use them. The same at
//! one export's calls, before or after its body (`Sim::stall_call`):
//! `driver_call_sweeps.rs`.

use ndisim::{AdapterId, Sim};
use std::sync::Mutex;
use std::time::Duration;

/// How long the stalled thread waits at the acquire aimed at (virtual
/// time): far longer than the other thread's work takes.
pub const STALL: Duration = Duration::from_millis(50);

/// More acquires than any handler the sweeps aim at makes.
pub const MAX_NTH: u64 = 40;

/// What [`racing`] saw.
pub struct Raced<A, R> {
    /// What the stalled thread's work returned.
    pub first: A,
    /// What the racer returned.
    pub racer: R,
    /// Whether the handler stalled at all (it made `nth` acquires).
    pub stalled: bool,
    /// Whether it was still stalled when the racer began.
    pub stalled_at_start: bool,
    /// Whether it was still stalled when the racer returned.
    pub stalled_at_end: bool,
}

/// Runs `first` on one thread, `handler` stalled at its `nth` spin-lock
/// acquire, and on another, once that stalled (or `first` returned),
/// `racer`.
pub fn racing<A: Send, R: Send>(
    sim: &Sim,
    handler: &str,
    nth: u64,
    first: impl FnOnce() -> A + Send,
    racer: impl FnOnce() -> R + Send,
) -> Raced<A, R> {
    sim.stall_lock_acquire(handler, nth, STALL).unwrap();
    race(sim, || sim.lock_acquire_stalls(), first, racer)
}

/// As [`racing`], `handler` stalled at its `nth` call of export `call`
/// (of any export when `None`), after the export's body when `after`
/// (`Sim::stall_call`): the thread has just handed something over, or let
/// a lock go, and waits before its next instruction.
pub fn racing_call<A: Send, R: Send>(
    sim: &Sim,
    handler: &str,
    call: Option<&str>,
    after: bool,
    nth: u64,
    first: impl FnOnce() -> A + Send,
    racer: impl FnOnce() -> R + Send,
) -> Raced<A, R> {
    sim.stall_call(handler, call, nth, after, STALL).unwrap();
    race(sim, || sim.call_stalls(), first, racer)
}

/// Where a sweep stops its handler: before its nth spin-lock acquire
/// ([`racing`]), or right after its nth call of any export
/// ([`racing_call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Acquire,
    AfterCall,
}

/// [`racing`] or [`racing_call`] (after any export's body), as `stop` says.
pub fn racing_at<A: Send, R: Send>(
    sim: &Sim,
    stop: Stop,
    handler: &str,
    nth: u64,
    first: impl FnOnce() -> A + Send,
    racer: impl FnOnce() -> R + Send,
) -> Raced<A, R> {
    match stop {
        Stop::Acquire => racing(sim, handler, nth, first, racer),
        Stop::AfterCall => racing_call(sim, handler, None, true, nth, first, racer),
    }
}

/// `first` on one thread; on another, once the stall aimed at (whose
/// counts `stalls` gives) holds a thread, or `first` returned, `racer`.
fn race<A: Send, R: Send>(
    sim: &Sim,
    stalls: impl Fn() -> (u64, u64, u64) + Sync,
    first: impl FnOnce() -> A + Send,
    racer: impl FnOnce() -> R + Send,
) -> Raced<A, R> {
    let done = Mutex::new(None);
    let raced = Mutex::new(None);
    sim.run_actors(vec![
        Box::new(|| {
            let r = first();
            *done.lock().unwrap() = Some(r);
        }),
        Box::new(|| {
            while stalls().2 == 0 && done.lock().unwrap().is_none() {
                sim.step();
            }
            let at_start = stalls().2 == 1;
            let r = racer();
            *raced.lock().unwrap() = Some((r, at_start, stalls().2 == 1));
        }),
    ]);
    let stalled = stalls().1 == 1;
    let (racer, stalled_at_start, stalled_at_end) = raced.into_inner().unwrap().expect("the racer returned");
    Raced {
        first: done.into_inner().unwrap().expect("the stalled thread returned"),
        racer,
        stalled,
        stalled_at_start,
        stalled_at_end,
    }
}

/// Runs `run(seed, nth)` for each seed and each `nth` from 1 to
/// `max_nth`, going on to the next seed once a run says its handler did
/// not stall (it makes fewer acquires). Returns the runs that stalled.
pub fn each_acquire(seeds: &[u64], max_nth: u64, mut run: impl FnMut(u64, u64) -> bool) -> usize {
    let mut stalled = 0;
    for &seed in seeds {
        for nth in 1..=max_nth {
            if !run(seed, nth) {
                break;
            }
            stalled += 1;
        }
    }
    stalled
}

/// `each_acquire` over `seeds`, each run on a fresh deterministic
/// simulation of one `spec` adapter (`null0`): `run(what, sim, adapter,
/// nth)` says whether its handler stalled. Returns the runs that stalled
/// and the furthest acquire that did.
pub fn sweep(
    seeds: &[u64],
    spec: &str,
    max_nth: u64,
    mut run: impl FnMut(&str, Sim, AdapterId, u64) -> bool,
) -> (usize, u64) {
    let mut furthest = 0;
    let runs = each_acquire(seeds, max_nth, |seed, nth| {
        let what = format!("seed {seed}, acquire {nth}");
        let sim = crate::drv::start_with(&[spec], |b| b.deterministic(seed));
        let a = sim.adapter_id("null0").unwrap();
        let stalled = run(&what, sim, a, nth);
        if stalled {
            furthest = furthest.max(nth);
        }
        stalled
    });
    (runs, furthest)
}
