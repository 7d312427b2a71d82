//! Deferred work of the emulated system: NDIS completions that come "later,
//! from another CPU" (pending opens and closes at PASSIVE_LEVEL, OID and
//! delayed send completions at DISPATCH_LEVEL, like a DPC), and the I/O
//! manager's system worker thread for work items.

use crate::kernel::{self, Kernel};
use crate::verifier::lock;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

struct Entry {
    due: Instant,
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
}

/// A queue served by one thread, in due-time order.
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
        let mut s = lock(&self.state);
        s.seq += 1;
        let seq = s.seq;
        s.queue.push(Entry { due: Instant::now() + delay, seq, irql, job: Box::new(job) });
        self.cv.notify_all();
    }

    /// The thread's loop; `pick` returns the queue of `k` to serve.
    pub(crate) fn serve(k: &Arc<Kernel>, pick: fn(&Kernel) -> &Jobs) {
        let me = pick(k);
        let mut s = lock(&me.state);
        loop {
            if s.stop && s.queue.is_empty() {
                return;
            }
            let now = Instant::now();
            let next = s.queue.iter().enumerate().min_by_key(|(_, e)| (e.due, e.seq)).map(|(i, e)| (i, e.due));
            match next {
                Some((i, due)) if due <= now => {
                    let e = s.queue.swap_remove(i);
                    s.running += 1;
                    drop(s);
                    let name = "deferred NDIS/kernel work";
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kernel::call_driver(name, e.irql, e.job)));
                    if let Err(p) = r {
                        kernel::internal_panic(name, p);
                    }
                    s = lock(&me.state);
                    s.running -= 1;
                    if s.queue.is_empty() && s.running == 0 {
                        me.idle.notify_all();
                    }
                }
                Some((_, due)) => {
                    s = me.cv.wait_timeout(s, due - now).unwrap_or_else(|e| e.into_inner()).0;
                }
                None => {
                    me.idle.notify_all();
                    s = me.cv.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// Waits until nothing is queued or running, at most `timeout`.
    pub(crate) fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.state);
        while !(s.queue.is_empty() && s.running == 0) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.idle.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    pub(crate) fn pending(&self) -> usize {
        let s = lock(&self.state);
        s.queue.len() + s.running
    }

    pub(crate) fn stop(&self) {
        lock(&self.state).stop = true;
        self.cv.notify_all();
    }
}
