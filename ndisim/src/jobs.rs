//! Deferred work of the emulated system: NDIS completions that come "later,
//! from another CPU" (pending opens and closes at PASSIVE_LEVEL, OID and
//! delayed send completions at DISPATCH_LEVEL, like a DPC), and the I/O
//! manager's system worker thread for work items.
//!
//! Due times are the simulation's clock (`Kernel::now_ns`): real time, or
//! virtual time under the deterministic scheduler.

use crate::kernel::{self, Kernel};
use crate::verifier::lock;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

struct Entry {
    due: u64,
    seq: u64,
    irql: u8,
    job: Job,
}

#[derive(Default)]
struct State {
    queue: Vec<Entry>,
    seq: u64,
    running: usize,
    stop: bool,
    /// Nothing is taken while set (`Sim::hold_work_items`), until `stop`.
    held: bool,
}

impl State {
    /// The job to run next: the earliest due, first queued (none while
    /// held).
    fn next(&self) -> Option<(usize, u64)> {
        if self.held && !self.stop {
            return None;
        }
        self.queue.iter().enumerate().min_by_key(|(_, e)| (e.due, e.seq)).map(|(i, e)| (i, e.due))
    }
}

/// A queue served by one or more threads (`SimBuilder::cpus`), in due-time
/// order: with more than one, jobs due together may run at once.
pub(crate) struct Jobs {
    state: Mutex<State>,
    cv: Condvar,
    idle: Condvar,
}

impl Jobs {
    pub(crate) fn new() -> Self {
        Jobs { state: Mutex::new(State::default()), cv: Condvar::new(), idle: Condvar::new() }
    }

    /// Runs `job` at `irql` after `delay`.
    pub(crate) fn push(&self, delay: Duration, irql: u8, job: impl FnOnce() + Send + 'static) {
        let now = kernel::kernel().map_or(0, |k| k.now_ns());
        let mut s = lock(&self.state);
        s.seq += 1;
        let seq = s.seq;
        s.queue.push(Entry { due: now.saturating_add(delay.as_nanos() as u64), seq, irql, job: Box::new(job) });
        self.cv.notify_all();
    }

    /// Takes the next job once it is due; `None` when stopped and empty.
    fn take(k: &Kernel, me: &Jobs) -> Option<Entry> {
        if let Some(sc) = k.sched_here() {
            loop {
                let (deadline, taken) = {
                    let mut s = lock(&me.state);
                    let now = k.now_ns();
                    match s.next() {
                        Some((i, due)) if due <= now => {
                            let e = s.queue.swap_remove(i);
                            s.running += 1;
                            (None, Some(e))
                        }
                        _ if s.stop && s.queue.is_empty() => return None,
                        Some((_, due)) => (Some(due), None),
                        None => (None, None),
                    }
                };
                if let Some(e) = taken {
                    return Some(e);
                }
                // Wait for the next due time, or for a change of the queue
                // or of its hold.
                let (len, held) = {
                    let s = lock(&me.state);
                    (s.queue.len(), s.held)
                };
                sc.block_until(deadline, "queued work", || {
                    let s = lock(&me.state);
                    s.stop || s.queue.len() != len || s.held != held
                });
            }
        }
        let mut s = lock(&me.state);
        loop {
            if s.stop && s.queue.is_empty() {
                return None;
            }
            let now = k.now_ns();
            match s.next() {
                Some((i, due)) if due <= now => {
                    let e = s.queue.swap_remove(i);
                    s.running += 1;
                    return Some(e);
                }
                Some((_, due)) => {
                    s = me.cv.wait_timeout(s, Duration::from_nanos(due - now)).unwrap_or_else(|e| e.into_inner()).0;
                }
                None => {
                    me.idle.notify_all();
                    s = me.cv.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// The thread's loop; `pick` returns the queue of `k` to serve.
    pub(crate) fn serve(k: &Arc<Kernel>, pick: fn(&Kernel) -> &Jobs) {
        let me = pick(k);
        while let Some(e) = Self::take(k, me) {
            let name = "deferred NDIS/kernel work";
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kernel::call_checked(name, e.irql, e.job)));
            if let Err(p) = r {
                kernel::internal_panic(name, p);
            }
            let mut s = lock(&me.state);
            s.running -= 1;
            if s.queue.is_empty() && s.running == 0 {
                me.idle.notify_all();
            }
        }
    }

    /// Waits until nothing is queued or running, at most `timeout`.
    pub(crate) fn drain(&self, timeout: Duration) -> bool {
        if let Some(k) = kernel::kernel().filter(|k| k.sched_here().is_some()) {
            return k.wait_until(timeout, "deferred work to drain", || {
                let s = lock(&self.state);
                s.queue.is_empty() && s.running == 0
            });
        }
        let deadline = crate::starve::Deadline::after(timeout);
        let mut s = lock(&self.state);
        while !(s.queue.is_empty() && s.running == 0) {
            let Some(left) = deadline.left() else { return false };
            s = self.idle.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    pub(crate) fn pending(&self) -> usize {
        let s = lock(&self.state);
        s.queue.len() + s.running
    }

    /// Holds the queued jobs (and the ones queued next) until `hold(false)`
    /// or `stop`: a worker thread that does not get to run.
    pub(crate) fn hold(&self, on: bool) {
        lock(&self.state).held = on;
        self.cv.notify_all();
    }

    pub(crate) fn stop(&self) {
        lock(&self.state).stop = true;
        self.cv.notify_all();
    }
}
