//! A census of the calls the driver makes inside each handler
//! (`Sim::count_calls`): for each of `slow::HANDLERS` the exports called
//! while a thread is inside it, and how often. A test that aims a stall at
//! one call (`Sim::stall_call`) picks among the calls a handler is seen to
//! make, rather than guessing them. Off unless asked for: it takes a lock
//! at every export.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub(crate) struct Census {
    on: AtomicBool,
    /// (handler's index in `slow::HANDLERS`, export) -> calls.
    calls: Mutex<BTreeMap<(usize, &'static str), u64>>,
}

impl Census {
    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::Release);
    }

    /// At an export's entry.
    #[inline]
    pub(crate) fn note(&self, call: &'static str) {
        if self.on.load(Ordering::Relaxed) {
            self.note_slow(call);
        }
    }

    #[inline(never)]
    fn note_slow(&self, call: &'static str) {
        let mut bits = crate::slow::inside_bits();
        if bits == 0 {
            return;
        }
        let mut calls = crate::verifier::lock(&self.calls);
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            *calls.entry((i, call)).or_default() += 1;
            bits &= bits - 1;
        }
    }

    /// The exports called inside handler `i` so far, by name, and how
    /// often.
    pub(crate) fn of(&self, i: usize) -> Vec<(&'static str, u64)> {
        crate::verifier::lock(&self.calls)
            .range((i, "")..)
            .take_while(|((h, _), _)| *h == i)
            .map(|((_, c), n)| (*c, *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_for_each_handler_the_thread_is_inside_and_only_when_on() {
        let c = Census::default();
        let _g = crate::slow::enter("WorkerRoutine");
        c.note("ExAllocatePoolWithTag");
        assert!(c.of(9).is_empty(), "off");
        c.set(true);
        c.note("ExAllocatePoolWithTag");
        {
            let _h = crate::slow::enter("ProtocolOidRequestComplete");
            c.note("IofCompleteRequest");
        }
        c.note("ExAllocatePoolWithTag");
        let worker = crate::slow::HANDLERS.iter().position(|&h| h == "WorkerRoutine").unwrap();
        let oid = crate::slow::HANDLERS.iter().position(|&h| h == "ProtocolOidRequestComplete").unwrap();
        assert_eq!(c.of(worker), [("ExAllocatePoolWithTag", 2), ("IofCompleteRequest", 1)]);
        assert_eq!(c.of(oid), [("IofCompleteRequest", 1)]);
        assert!(c.of(0).is_empty());
    }
}
