//! Where an IRP's result goes: the `IoResult` a request returns and the
//! `Waiter` that a completion fills and a caller waits on (under the
//! deterministic scheduler too).

use crate::kernel;
use crate::verifier::lock;
use ndis_sys::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What an I/O request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoResult {
    pub status: NTSTATUS,
    pub information: usize,
    /// What the driver wrote for the caller (output buffer up to
    /// `information` for buffered and direct output, the read data).
    pub data: Vec<u8>,
}

/// Called once with an IRP's result when it completes.
pub(crate) type Notify = Box<dyn FnOnce(&IoResult) + Send>;

/// Where a completion goes.
pub(crate) struct Waiter {
    result: Mutex<Option<IoResult>>,
    cv: Condvar,
    notify: Mutex<Option<Notify>>,
    /// IoCancelIrp was called on the request (by anyone).
    cancelled: AtomicBool,
}

impl Waiter {
    pub(crate) fn new(notify: Option<Notify>) -> Arc<Waiter> {
        Arc::new(Waiter {
            result: Mutex::new(None),
            cv: Condvar::new(),
            notify: Mutex::new(notify),
            cancelled: AtomicBool::new(false),
        })
    }

    /// Records that the request was cancelled (before its cancel routine
    /// runs, so a completion it causes finds it recorded).
    pub(super) fn mark_cancelled(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether IoCancelIrp was called on the request.
    pub(crate) fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    pub(super) fn complete(&self, r: IoResult) {
        if let Some(f) = lock(&self.notify).take() {
            f(&r);
        }
        *lock(&self.result) = Some(r);
        self.cv.notify_all();
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<IoResult> {
        self.wait_for(timeout, |r| r.clone())
    }

    /// Like `wait`, but moves the result out (for the one waiter of a
    /// synchronous request).
    pub(crate) fn wait_take(&self, timeout: Option<Duration>) -> Option<IoResult> {
        self.wait_for(timeout, Option::take)
    }

    /// Waits up to `timeout` (forever with `None`) until `get` finds the
    /// result in its slot.
    fn wait_for(
        &self,
        timeout: Option<Duration>,
        mut get: impl FnMut(&mut Option<IoResult>) -> Option<IoResult>,
    ) -> Option<IoResult> {
        if let Some(k) = kernel::kernel().filter(|k| k.sched_here().is_some()) {
            let mut out = None;
            let cond = || {
                let mut g = lock(&self.result);
                out = get(&mut g);
                out.is_some()
            };
            match timeout {
                Some(t) => {
                    k.wait_until(t, "an IRP's completion", cond);
                }
                None => k.wait_forever("an IRP's completion", cond, || {}),
            }
            return out;
        }
        let deadline = timeout.map(crate::starve::Deadline::after);
        let mut g = lock(&self.result);
        loop {
            if let Some(r) = get(&mut g) {
                return Some(r);
            }
            match deadline {
                Some(d) => {
                    let left = d.left()?;
                    g = self.cv.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
                }
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    pub(crate) fn try_result(&self) -> Option<IoResult> {
        lock(&self.result).clone()
    }
}
