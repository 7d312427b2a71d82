//! A bound on the memory several owners take together: receive queues
//! (`ring::RxRing::bounded`: a queue grows only while its budget allows,
//! and gives back what it held when cleared or dropped), and capture
//! programs (a `Charge` each, given back when the program goes).

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

/// `bytes` taken from a budget, given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: &'static QueueBudget,
    bytes: usize,
}

impl QueueBudget {
    /// `n` bytes, if the limit allows them.
    pub fn charge(&'static self, n: usize) -> Option<Charge> {
        self.take(n).then(|| Charge { budget: self, bytes: n })
    }
}

impl Charge {
    /// The bytes charged.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_given_back_when_dropped_and_none_passes_the_limit() {
        static B: QueueBudget = QueueBudget::new(100);
        let a = B.charge(60).expect("within the limit");
        assert!(B.charge(41).is_none());
        let b = B.charge(40).expect("to the limit");
        assert_eq!((B.used(), a.bytes(), b.bytes()), (100, 60, 40));
        assert!(B.charge(usize::MAX).is_none());
        drop(a);
        assert_eq!(B.used(), 40);
        drop(b);
        assert_eq!(B.used(), 0);
    }
}
