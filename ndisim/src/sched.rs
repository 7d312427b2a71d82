//! The deterministic scheduler.
//!
//! In a deterministic simulation every thread that runs driver or ndisim
//! code (the test's thread, the actors of `Sim::run_actors`, the DPC and
//! worker threads, the adapters' receive threads) is a *managed* thread,
//! and exactly one of them runs at a time: the one holding the baton. A
//! thread gives the baton up only at a scheduling point: every ndisim
//! export, every harness step (`Sim::step`), and every wait. The next
//! thread is picked by a generator seeded with the simulation's seed, among
//! the threads that can run, in the order they were created; so the same
//! seed replays the same interleaving, and the trace hash proves it.
//!
//! A thread that must wait (for a spin lock, a completion, a queue)
//! registers as waiting with an optional virtual deadline. When a running
//! thread reaches a scheduling point, every waiting thread is marked for a
//! recheck: it is picked like any other and looks at its condition again.
//! When no thread can run and none has a recheck pending, virtual time
//! jumps to the earliest deadline; if no waiting thread has one, the
//! threads are deadlocked, which is reported with every thread's name and
//! what it waits for, and the process ends (`EXIT_DEADLOCK`).
//!
//! Time is virtual: it moves only when every thread waits.
//!
//! Two ways to pick (`Strategy`): uniformly at every scheduling point, or
//! by priorities (PCT, Burckhardt et al., "A Randomized Scheduler with
//! Probabilistic Guarantees of Finding Bugs", ASPLOS 2010): each thread
//! gets a random priority and the highest that can run always runs; at
//! `depth - 1` switches drawn from the first `horizon`, the thread running
//! drops below every other. A uniform pick hands the baton back to a
//! preempted thread within a few steps, so a bug that needs one thread
//! stopped between two instructions while another runs a whole operation
//! (a pause, a close) is rare; a priority change at that point gives it
//! exactly that. A thread that could run but was passed over for
//! `STARVE_LIMIT` switches gets the next turn, so that threads polling
//! with `yield_now` or rechecking a wait cannot starve what they wait for.
//!
//! A third way (`Strategy::Bounded`) explores systematically instead of
//! at random: every pick has a fixed default (the running thread goes on
//! while it can, for at most `FAIR_LIMIT` picks in a row; else the next
//! thread after it in creation order), and a script of *deviations*
//! (`Deviation`: at switch `at`, the `pick`-th of the other candidates)
//! changes chosen picks. Each switch's number of alternatives to the
//! default is logged (`Sched::points`), so an explorer can run every
//! schedule within one deviation of the default, and more within two
//! (delay bounding: Emmi, Qadeer and Rakamaric, "Delay-Bounded
//! Scheduling", POPL 2011; a bug that needs one thread stopped at one
//! point while another runs is one deviation away).

use crate::rng::Rng;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Exit status when the managed threads deadlock.
pub const EXIT_DEADLOCK: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Can run (and may hold the baton).
    Runnable,
    /// Waits for a condition, until `deadline` if it has one.
    Waiting,
    /// Waiting, but something ran since it last looked: it may check again.
    Recheck,
    Finished,
}

/// How the next thread is picked at a scheduling point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Uniformly among the threads that can run.
    Uniform,
    /// The highest priority that can run (PCT); `depth - 1` priority
    /// changes, at switches drawn uniformly below `horizon`.
    Priorities { depth: u32, horizon: u64 },
    /// A fixed default pick, changed only where the script of deviations
    /// says (`Sched::with_script`); every switch's alternatives logged.
    Bounded,
}

/// One deviation from `Strategy::Bounded`'s default: at switch `at`, the
/// baton goes to the `pick`-th (modulo their number) of the candidates
/// other than the default, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deviation {
    pub at: u64,
    pub pick: u32,
}

/// `Strategy::Bounded`: picks in a row the running thread may have while
/// others could run, before the next one gets the baton (a thread that
/// polls must not keep it for ever; a deterministic turn, not a
/// deviation).
const FAIR_LIMIT: u32 = 256;

/// Switches a thread that could run may be passed over before it gets a
/// turn whatever its priority (`Strategy::Priorities`).
const STARVE_LIMIT: u64 = 2048;

struct Thread {
    name: String,
    /// Its priority (`Strategy::Priorities`; 0 otherwise).
    prio: u64,
    /// The switch at which it last got the baton, or was created.
    last_pick: u64,
    state: State,
    deadline: Option<u64>,
    /// What it waits for, for a deadlock report.
    waits_for: &'static str,
    /// Where it waits for the baton: a switch wakes only the thread that
    /// gets it (one condition variable for all woke every thread at every
    /// switch, a cost that grew with the threads: with 15 to 20 of them, as
    /// in chaos's crowds, most of a run's time).
    turn: Arc<Condvar>,
}

/// A turn this long (real time, no scheduling point) is told of on
/// stderr: a thread that blocks on a lock of the test's own hangs the
/// simulation, and nothing else would say where.
#[cfg(not(test))]
const LONG_TURN: std::time::Duration = std::time::Duration::from_secs(60);
#[cfg(test)]
const LONG_TURN: std::time::Duration = std::time::Duration::from_millis(100);

struct St {
    rng: Rng,
    /// Virtual time, nanoseconds.
    now: u64,
    /// The thread holding the baton.
    current: u32,
    threads: BTreeMap<u32, Thread>,
    next_tid: u32,
    /// FNV-1a over every decision: (thread picked, scheduling point).
    trace: u64,
    switches: u64,
    strategy: Strategy,
    /// Switches at which the running thread's priority drops, latest
    /// first (popped as they pass).
    change_points: Vec<u64>,
    /// The priority the next drop gives (below every initial one, each
    /// lower than the last).
    next_low: u64,
    /// `Strategy::Bounded`: the deviations still to come, latest first.
    script: Vec<Deviation>,
    /// `Strategy::Bounded`: each switch's number of alternatives to the
    /// default pick (saturated), in order.
    points: Vec<u16>,
    /// `Strategy::Bounded`: picks in a row of the thread running now.
    streak: u32,
    /// A turn that went on for `LONG_TURN` was told of (once a run).
    long_turn_told: bool,
}

impl St {
    /// A new thread's priority: above every lowered one.
    fn initial_prio(&mut self) -> u64 {
        match self.strategy {
            Strategy::Uniform | Strategy::Bounded => 0,
            Strategy::Priorities { .. } => (1 << 32) + self.rng.below(1 << 32),
        }
    }

    /// The candidate (tids in order) to run next.
    fn pick(&mut self, candidates: &[u32], me: u32) -> u32 {
        if self.strategy == Strategy::Uniform {
            return candidates[self.rng.below(candidates.len() as u64) as usize];
        }
        if self.strategy == Strategy::Bounded {
            return self.pick_bounded(candidates, me);
        }
        while self.change_points.last().is_some_and(|&c| self.switches >= c) {
            self.change_points.pop();
            let low = self.next_low;
            self.next_low = self.next_low.saturating_sub(1);
            if let Some(t) = self.threads.get_mut(&me) {
                t.prio = low;
            }
        }
        let now = self.switches;
        let key = |tid: &u32| self.threads.get(tid).map_or((0, 0), |t| (t.prio, t.last_pick));
        let starved =
            candidates.iter().filter(|t| now.saturating_sub(key(t).1) > STARVE_LIMIT).min_by_key(|t| (key(t).1, **t));
        let next = match starved {
            Some(&t) => t,
            None => *candidates.iter().max_by_key(|t| (key(t).0, **t)).expect("not empty"),
        };
        if let Some(t) = self.threads.get_mut(&next) {
            t.last_pick = now;
        }
        next
    }
}

impl St {
    /// `Strategy::Bounded`'s pick: the default, or the script's deviation
    /// at this switch.
    fn pick_bounded(&mut self, candidates: &[u32], me: u32) -> u32 {
        let stay = self.streak < FAIR_LIMIT
            && candidates.contains(&me)
            && self.threads.get(&me).is_some_and(|t| t.state == State::Runnable);
        let default = if stay || candidates.len() == 1 {
            if candidates.contains(&me) { me } else { candidates[0] }
        } else {
            *candidates.iter().find(|&&t| t > me).unwrap_or(&candidates[0])
        };
        let others = candidates.len() - 1;
        self.points.push(others.min(u16::MAX as usize) as u16);
        while self.script.last().is_some_and(|d| d.at < self.switches) {
            self.script.pop();
        }
        let mut next = default;
        if self.script.last().is_some_and(|d| d.at == self.switches) {
            let d = self.script.pop().expect("looked at");
            if others > 0 {
                let alts: Vec<u32> = candidates.iter().copied().filter(|&t| t != default).collect();
                next = alts[d.pick as usize % alts.len()];
            }
        }
        self.streak = if next == me { self.streak + 1 } else { 0 };
        next
    }
}

/// One simulation's scheduler.
pub(crate) struct Sched {
    st: Mutex<St>,
    cv: Condvar,
}

thread_local! {
    /// This thread's id in the scheduler that manages it (0: none).
    static TID: Cell<u32> = const { Cell::new(0) };
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    let mut h = h;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Sched {
    /// A scheduler seeded with `seed` that picks by `strategy`; the calling
    /// thread becomes its first managed thread, holding the baton.
    #[cfg(test)]
    pub(crate) fn new(seed: u64, strategy: Strategy) -> Sched {
        Self::with_script(seed, strategy, Vec::new())
    }

    /// A scheduler as `new`'s, whose `Strategy::Bounded` picks deviate as
    /// `script` says.
    pub(crate) fn with_script(seed: u64, strategy: Strategy, mut script: Vec<Deviation>) -> Sched {
        script.sort_unstable_by(|a, b| b.cmp(a));
        let mut st = St {
            rng: Rng::new(seed),
            now: 0,
            current: 1,
            threads: BTreeMap::new(),
            next_tid: 2,
            trace: 0xcbf2_9ce4_8422_2325,
            switches: 0,
            strategy,
            change_points: Vec::new(),
            next_low: 0,
            script,
            points: Vec::new(),
            streak: 0,
            long_turn_told: false,
        };
        if let Strategy::Priorities { depth, horizon } = strategy {
            let mut points: Vec<u64> = (1..depth.max(1)).map(|_| st.rng.below(horizon.max(1))).collect();
            points.sort_unstable_by(|a, b| b.cmp(a));
            st.change_points = points;
            st.next_low = u64::from(depth);
        }
        let prio = st.initial_prio();
        st.threads.insert(
            1,
            Thread {
                name: "main".into(),
                prio,
                last_pick: 0,
                state: State::Runnable,
                deadline: None,
                waits_for: "",
                turn: Arc::new(Condvar::new()),
            },
        );
        TID.with(|t| t.set(1));
        Sched { st: Mutex::new(st), cv: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the calling thread is one this scheduler does not run
    /// while the simulation's threads still run: its waits would be in
    /// real time, for threads that move only when the scheduler lets
    /// them (`kernel::enter_api`).
    pub(crate) fn foreign(&self) -> bool {
        let me = TID.with(|t| t.get());
        let st = self.lock();
        !st.threads.contains_key(&me) && st.threads.values().any(|t| t.state != State::Finished)
    }

    /// Whether the calling thread is one of this scheduler's.
    pub(crate) fn manages_me(&self) -> bool {
        let me = TID.with(|t| t.get());
        me != 0 && self.lock().threads.contains_key(&me)
    }

    /// Registers a thread about to be spawned (by the thread holding the
    /// baton, so the order is the same in every run); the new thread calls
    /// `start` first.
    pub(crate) fn register(&self, name: &str) -> u32 {
        let mut st = self.lock();
        let tid = st.next_tid;
        st.next_tid += 1;
        let (prio, last_pick) = (st.initial_prio(), st.switches);
        st.threads.insert(
            tid,
            Thread {
                name: name.into(),
                prio,
                last_pick,
                state: State::Runnable,
                deadline: None,
                waits_for: "",
                turn: Arc::new(Condvar::new()),
            },
        );
        tid
    }

    /// The new thread `tid` waits for its first turn.
    pub(crate) fn start(&self, tid: u32) {
        TID.with(|t| t.set(tid));
        let st = self.lock();
        drop(self.wait_turn(st, tid));
    }

    /// The calling thread is done: it gives the baton away for good.
    pub(crate) fn exit(&self) {
        let me = TID.with(|t| t.replace(0));
        let mut st = self.lock();
        if let Some(t) = st.threads.get_mut(&me) {
            t.state = State::Finished;
        }
        // Someone may wait for this thread to end.
        Self::wake_waiters(&mut st, me);
        if st.current == me {
            self.pass(&mut st, me, "exit");
        }
    }

    /// Whether thread `tid` has exited.
    pub(crate) fn is_finished(&self, tid: u32) -> bool {
        self.lock().threads.get(&tid).is_none_or(|t| t.state == State::Finished)
    }

    /// Virtual time now, in nanoseconds.
    pub(crate) fn now(&self) -> u64 {
        self.lock().now
    }

    /// The hash of every scheduling decision so far, and how many there
    /// were.
    pub(crate) fn trace(&self) -> (u64, u64) {
        let st = self.lock();
        (st.trace, st.switches)
    }

    /// `Strategy::Bounded`: each switch's number of alternatives to the
    /// default pick so far.
    pub(crate) fn points(&self) -> Vec<u16> {
        self.lock().points.clone()
    }

    /// Whether it picks by `Strategy::Bounded`.
    pub(crate) fn is_bounded(&self) -> bool {
        self.lock().strategy == Strategy::Bounded
    }

    /// A scheduling point: the baton may go to another thread.
    pub(crate) fn yield_now(&self, at: &'static str) {
        let me = TID.with(|t| t.get());
        if me == 0 {
            return;
        }
        let mut st = self.lock();
        if st.current != me {
            // Not ours to give (an unmanaged path); nothing to do.
            return;
        }
        Self::wake_waiters(&mut st, me);
        self.pass(&mut st, me, at);
        drop(self.wait_turn(st, me));
    }

    /// Waits (giving the baton away) until `cond` holds or virtual time
    /// reaches `deadline`; true when `cond` held. `cond` runs with the baton
    /// held, never under the scheduler's own lock.
    pub(crate) fn block_until(
        &self,
        deadline: Option<u64>,
        waits_for: &'static str,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        let me = TID.with(|t| t.get());
        assert!(me != 0, "block_until from a thread the scheduler does not manage");
        // Others may be waiting for what this thread did since its last
        // scheduling point.
        {
            let mut st = self.lock();
            Self::wake_waiters(&mut st, me);
        }
        loop {
            if cond() {
                return true;
            }
            let mut st = self.lock();
            if deadline.is_some_and(|d| st.now >= d) {
                return false;
            }
            if let Some(t) = st.threads.get_mut(&me) {
                t.state = State::Waiting;
                t.deadline = deadline;
                t.waits_for = waits_for;
            }
            self.pass(&mut st, me, waits_for);
            st = self.wait_turn(st, me);
            if let Some(t) = st.threads.get_mut(&me) {
                t.state = State::Runnable;
                t.deadline = None;
            }
        }
    }

    /// Marks every waiting thread for a recheck.
    fn wake_waiters(st: &mut St, me: u32) {
        for (&tid, t) in st.threads.iter_mut() {
            if tid != me && t.state == State::Waiting {
                t.state = State::Recheck;
            }
        }
    }

    /// Picks who runs next (possibly `me` again) and hands it the baton.
    fn pass(&self, st: &mut St, me: u32, at: &'static str) {
        loop {
            let candidates: Vec<u32> = st
                .threads
                .iter()
                .filter(|(_, t)| matches!(t.state, State::Runnable | State::Recheck))
                .map(|(&tid, _)| tid)
                .collect();
            if !candidates.is_empty() {
                let next = st.pick(&candidates, me);
                st.trace = fnv(st.trace, &next.to_le_bytes());
                st.trace = fnv(st.trace, at.as_bytes());
                st.switches += 1;
                st.current = next;
                if next != me {
                    match st.threads.get(&next) {
                        Some(t) => t.turn.notify_one(),
                        None => self.cv.notify_all(),
                    }
                }
                return;
            }
            // Nobody can run: time moves to the earliest deadline.
            let earliest = st.threads.values().filter(|t| t.state == State::Waiting).filter_map(|t| t.deadline).min();
            match earliest {
                Some(d) => {
                    st.now = st.now.max(d);
                    let now = st.now;
                    for t in st.threads.values_mut() {
                        if t.state == State::Waiting && t.deadline.is_some_and(|x| x <= now) {
                            t.state = State::Recheck;
                        }
                    }
                }
                None => {
                    if st.threads.values().all(|t| t.state == State::Finished) {
                        // The last thread left; nobody needs the baton.
                        st.current = 0;
                        return;
                    }
                    let mut report = String::from(
                        "\n*** ndisim: DEADLOCK in the deterministic scheduler: every thread waits and none has a deadline\n",
                    );
                    for (tid, t) in &st.threads {
                        if t.state != State::Finished {
                            report.push_str(&format!("***   thread {tid} {:?} waits for {}\n", t.name, t.waits_for));
                        }
                    }
                    crate::kernel::write_stderr(&report);
                    // A deadlocked simulation cannot go on.
                    crate::stop::stop_exit(EXIT_DEADLOCK)
                }
            }
        }
    }

    /// Waits until the baton is `me`'s.
    fn wait_turn<'a>(&'a self, mut st: MutexGuard<'a, St>, me: u32) -> MutexGuard<'a, St> {
        let turn = st.threads.get(&me).map(|t| Arc::clone(&t.turn));
        let cv = turn.as_deref().unwrap_or(&self.cv);
        while st.current != me {
            // A whole wait that timed out with no switch meanwhile: the
            // running thread kept its turn that long.
            let switches = st.switches;
            let (g, waited) = cv.wait_timeout(st, LONG_TURN).unwrap_or_else(|e| e.into_inner());
            st = g;
            if waited.timed_out() && st.switches == switches && !st.long_turn_told && st.current != me {
                st.long_turn_told = true;
                let name = |tid: u32| st.threads.get(&tid).map_or("?", |t| t.name.as_str()).to_string();
                crate::kernel::write_stderr(&format!(
                    "\n*** ndisim: thread {} ({:?}) of the deterministic scheduler has run for {:?} without a scheduling point while thread {me} ({:?}) waits for its turn. If it waits for a lock, channel or join of the test's own, which the scheduler cannot see, and the thread that would let it go waits for its turn, the simulation hangs here: hold no lock of your own across a call into the simulation.\n",
                    st.current,
                    name(st.current),
                    LONG_TURN,
                    name(me),
                ));
            }
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn run(seed: u64) -> (u64, Vec<u32>) {
        run_with(seed, Strategy::Uniform)
    }

    fn run_with(seed: u64, strategy: Strategy) -> (u64, Vec<u32>) {
        let (trace, log, _) = run_sched(Arc::new(Sched::new(seed, strategy)));
        (trace, log)
    }

    /// Three threads of 20 steps each under `s`: the trace, which thread
    /// made each step, and `Strategy::Bounded`'s points.
    fn run_sched(s: Arc<Sched>) -> (u64, Vec<u32>, Vec<u16>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::new(AtomicU64::new(0));
        let mut hs = Vec::new();
        for i in 0..3u32 {
            let tid = s.register(&format!("t{i}"));
            let (s2, log2, c2) = (s.clone(), log.clone(), counter.clone());
            hs.push(std::thread::spawn(move || {
                s2.start(tid);
                for _ in 0..20 {
                    log2.lock().unwrap().push(i);
                    c2.fetch_add(1, Ordering::SeqCst);
                    s2.yield_now("step");
                }
                // Wait for everyone to have done 40 steps.
                s2.block_until(None, "others", || c2.load(Ordering::SeqCst) >= 60);
                s2.exit();
            }));
        }
        // The main thread sleeps in virtual time, then waits for the rest.
        let t0 = s.now();
        s.block_until(Some(t0 + 1_000), "sleep", || false);
        s.block_until(None, "join", || counter.load(Ordering::SeqCst) >= 60);
        let trace = s.trace().0;
        let points = s.points();
        s.exit();
        for h in hs {
            h.join().unwrap();
        }
        let l = log.lock().unwrap().clone();
        (trace, l, points)
    }

    /// A thread that keeps its turn (blocked on something of the host's,
    /// here a sleep) is told of once, by a thread waiting for its turn,
    /// and the run goes on when it moves.
    #[test]
    fn a_turn_held_too_long_is_told_of_once() {
        let s = Arc::new(Sched::new(5, Strategy::Uniform));
        let mut hs = Vec::new();
        for i in 0..2u32 {
            let tid = s.register(&format!("t{i}"));
            let s2 = s.clone();
            hs.push(std::thread::spawn(move || {
                s2.start(tid);
                for _ in 0..3 {
                    std::thread::sleep(LONG_TURN * 2);
                    s2.yield_now("step");
                }
                s2.exit();
            }));
        }
        s.exit();
        for h in hs {
            h.join().unwrap();
        }
        assert!(s.st.lock().unwrap().long_turn_told);
        let quick = Arc::new(Sched::new(5, Strategy::Uniform));
        run_sched(quick.clone());
        assert!(!quick.st.lock().unwrap().long_turn_told, "no turn of a quick run is told of");
    }

    fn bounded(script: Vec<Deviation>) -> (u64, Vec<u32>, Vec<u16>) {
        run_sched(Arc::new(Sched::with_script(1, Strategy::Bounded, script)))
    }

    #[test]
    fn bounded_runs_each_thread_on_until_it_waits_and_logs_every_switch() {
        let (trace, log, points) = bounded(Vec::new());
        assert_eq!(bounded(Vec::new()), (trace, log.clone(), points.clone()), "replays");
        // The default: each thread runs its 20 steps in one go.
        assert_eq!(log, [vec![0; 20], vec![1; 20], vec![2; 20]].concat());
        assert!(points.iter().any(|&p| p > 0), "switches with alternatives: {points:?}");
        // The seed does not matter to it.
        let other = run_sched(Arc::new(Sched::with_script(99, Strategy::Bounded, Vec::new())));
        assert_eq!(other.1, log);
    }

    #[test]
    fn each_single_deviation_replays_and_together_they_cut_every_run() {
        let (_, base, points) = bounded(Vec::new());
        assert!(!base.is_empty());
        let mut seen = std::collections::BTreeSet::new();
        for (at, &alts) in points.iter().enumerate() {
            for pick in 0..u32::from(alts) {
                let script = vec![Deviation { at: at as u64, pick }];
                let a = bounded(script.clone());
                assert_eq!(a, bounded(script), "deviation at {at} pick {pick} replays");
                // (One that hands the baton to a thread that only looks at
                // its wait again changes no step.)
                seen.insert(a.1);
            }
        }
        // One deviation stops a thread after any of its steps while another
        // runs: the first two threads' runs are cut after each of their
        // steps (the last runs alone once the others are done: cutting it
        // needs a second deviation, to start it early).
        let first_run = |l: &[u32], i: u32| {
            let p = l.iter().position(|&t| t == i).unwrap_or(l.len());
            l[p..].iter().take_while(|&&t| t == i).count()
        };
        for i in 0..2u32 {
            for cut in 1..20 {
                assert!(seen.iter().any(|l| first_run(l, i) == cut), "no schedule stops thread {i} after {cut} steps");
            }
        }
    }

    #[test]
    fn a_seed_replays_the_same_interleaving() {
        let a = run(7);
        let b = run(7);
        assert_eq!(a, b);
        let c = run(8);
        assert_ne!(a.1, c.1, "another seed interleaves differently");
        assert_eq!(a.1.len(), 60);
    }

    /// How many runs of one thread's steps the log has.
    fn segments(log: &[u32]) -> usize {
        1 + log.windows(2).filter(|w| w[0] != w[1]).count()
    }

    #[test]
    fn priorities_replay_and_run_each_thread_until_a_change_point() {
        for seed in 0..20 {
            let none = Strategy::Priorities { depth: 1, horizon: 100 };
            let a = run_with(seed, none);
            assert_eq!(a, run_with(seed, none));
            // No change point: the highest priority runs its 20 steps, then
            // the next, then the last.
            assert_eq!(segments(&a.1), 3, "seed {seed}: {:?}", a.1);
            // One change point: one thread is cut once, at most.
            let one = run_with(seed, Strategy::Priorities { depth: 2, horizon: 60 });
            assert!(segments(&one.1) <= 4, "seed {seed}: {:?}", one.1);
        }
        // Somewhere a change point cuts a thread's run in two.
        assert!((0..20).any(|seed| segments(&run_with(seed, Strategy::Priorities { depth: 2, horizon: 60 }).1) == 4));
    }

    #[test]
    fn a_thread_that_polls_does_not_starve_the_one_it_waits_for() {
        for seed in 0..8 {
            let s = Arc::new(Sched::new(seed, Strategy::Priorities { depth: 1, horizon: 1 }));
            let flag = Arc::new(AtomicU64::new(0));
            let mut hs = Vec::new();
            for i in 0..2u64 {
                let tid = s.register(&format!("t{i}"));
                let (s2, f2) = (s.clone(), flag.clone());
                hs.push(std::thread::spawn(move || {
                    s2.start(tid);
                    if i == 0 {
                        // Polls, whatever its priority.
                        while f2.load(Ordering::SeqCst) == 0 {
                            s2.yield_now("poll");
                        }
                    } else {
                        s2.yield_now("before");
                        f2.store(1, Ordering::SeqCst);
                    }
                    s2.exit();
                }));
            }
            s.block_until(None, "join", || hs.iter().all(|h| h.is_finished()) || flag.load(Ordering::SeqCst) == 1);
            s.exit();
            for h in hs {
                h.join().unwrap();
            }
        }
    }
}
