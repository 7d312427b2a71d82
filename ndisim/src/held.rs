//! The locks each thread holds, in the order it took them: what the lock
//! order graph, the recursion and pairing checks and
//! irp-complete-under-lock look at.

use crate::verifier::{Rule, Violation};
use std::cell::RefCell;

/// What kind of lock a thread holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    Spin,
    Read,
    Write,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub addr: usize,
    pub kind: LockKind,
    /// An RW lock's `LOCK_STATE_EX` (the acquire's); for an NDIS spin
    /// lock, which acquire took it (`SPIN_RAISED`, `SPIN_DPR`); else 0.
    pub state: usize,
}

/// `Held::state` of an NDIS spin lock taken by `NdisAcquireSpinLock`.
pub(crate) const SPIN_RAISED: usize = 1;
/// `Held::state` of an NDIS spin lock taken by `NdisDprAcquireSpinLock`.
pub(crate) const SPIN_DPR: usize = 2;

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// `call` is about to take lock `addr`: checks the order against the locks
/// this thread holds (before it may block, so a deadlock that is about to
/// happen is still reported).
pub(crate) fn check_lock_order(call: &str, addr: usize, kind: LockKind) {
    let Some(k) = crate::kernel::kernel() else { return };
    let cycle = HELD.with(|h| {
        let h = h.borrow();
        k.lock_order.acquiring(&h, addr, kind, call)
    });
    if let Some(c) = cycle {
        Violation::new(Rule::LockOrder, call, c.detail).with_object(addr).report();
    }
}

/// This thread took lock `addr` (`state` as `Held::state`).
pub(crate) fn push_held(addr: usize, kind: LockKind, state: usize) {
    HELD.with(|h| h.borrow_mut().push(Held { addr, kind, state }));
}

/// The most recent hold of `addr` by this thread.
pub(crate) fn held_entry(addr: usize) -> Option<Held> {
    HELD.with(|h| h.borrow().iter().rev().find(|e| e.addr == addr).copied())
}

/// The hold this thread made with the `LOCK_STATE_EX` at `state`.
pub(crate) fn held_with_state(state: usize) -> Option<Held> {
    HELD.with(|h| h.borrow().iter().rev().find(|e| e.state == state).copied())
}

/// Removes the hold of `addr` made with `state`.
pub(crate) fn pop_held_rw(addr: usize, state: usize) -> Option<LockKind> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h.iter().rposition(|e| e.addr == addr && e.state == state)?;
        Some(h.remove(i).kind)
    })
}

/// Removes the most recent entry for `addr`; false when it is not held.
pub(crate) fn pop_held(addr: usize) -> Option<LockKind> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h.iter().rposition(|e| e.addr == addr)?;
        Some(h.remove(i).kind)
    })
}

pub(crate) fn holds(addr: usize) -> bool {
    HELD.with(|h| h.borrow().iter().any(|e| e.addr == addr))
}

/// The locks this thread holds, in the order it took them.
pub(crate) fn held_locks() -> Vec<Held> {
    HELD.with(|h| h.borrow().clone())
}

pub(crate) fn held_count() -> usize {
    HELD.with(|h| h.borrow().len())
}

pub(crate) fn take_held_since(n: usize) -> Vec<Held> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.len() > n { h.split_off(n) } else { Vec::new() }
    })
}
