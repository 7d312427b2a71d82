//! A bound on the memory several receive queues take together
//! (`ring::RxRing::bounded`): a queue grows only while its budget allows,
//! and gives back what it held when cleared or dropped.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes that rings may allocate together.
#[derive(Debug)]
pub struct QueueBudget {
    used: AtomicUsize,
    limit: usize,
}

impl QueueBudget {
    pub const fn new(limit: usize) -> Self {
        QueueBudget { used: AtomicUsize::new(0), limit }
    }

    /// Bytes the rings hold now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes if the limit allows.
    pub(crate) fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| u.checked_add(n).filter(|&t| t <= self.limit))
            .is_ok()
    }

    /// Gives back `n` bytes taken.
    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}
