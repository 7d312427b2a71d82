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

use crate::rng::Rng;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

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

struct Thread {
    name: String,
    state: State,
    deadline: Option<u64>,
    /// What it waits for, for a deadlock report.
    waits_for: &'static str,
}

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
    /// A scheduler seeded with `seed`; the calling thread becomes its first
    /// managed thread, holding the baton.
    pub(crate) fn new(seed: u64) -> Sched {
        let mut threads = BTreeMap::new();
        threads.insert(1, Thread { name: "main".into(), state: State::Runnable, deadline: None, waits_for: "" });
        TID.with(|t| t.set(1));
        Sched {
            st: Mutex::new(St {
                rng: Rng::new(seed),
                now: 0,
                current: 1,
                threads,
                next_tid: 2,
                trace: 0xcbf2_9ce4_8422_2325,
                switches: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
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
        st.threads.insert(tid, Thread { name: name.into(), state: State::Runnable, deadline: None, waits_for: "" });
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
                let next = candidates[st.rng.below(candidates.len() as u64) as usize];
                st.trace = fnv(st.trace, &next.to_le_bytes());
                st.trace = fnv(st.trace, at.as_bytes());
                st.switches += 1;
                st.current = next;
                if next != me {
                    self.cv.notify_all();
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
                    // SAFETY: ends the process at once; a deadlocked
                    // simulation cannot go on.
                    unsafe { libc::_exit(EXIT_DEADLOCK) }
                }
            }
        }
    }

    /// Waits until the baton is `me`'s.
    fn wait_turn<'a>(&'a self, mut st: MutexGuard<'a, St>, me: u32) -> MutexGuard<'a, St> {
        while st.current != me {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
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
        let s = Arc::new(Sched::new(seed));
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
        s.exit();
        for h in hs {
            h.join().unwrap();
        }
        let l = log.lock().unwrap().clone();
        (trace, l)
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
}
