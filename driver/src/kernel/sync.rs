//! Spin locks over `NDIS_SPIN_LOCK`, with the IRQL rules in the types.
//!
//! `lock()` raises to DISPATCH_LEVEL (`NdisAcquireSpinLock`) and is for
//! callers at or below it. `lock_dpr()` needs an `AtDispatch` proof (from
//! NDIS's `*_DISPATCH_LEVEL` flags, or from another guard) and uses the
//! cheaper `NdisDprAcquireSpinLock`.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use ndis_sys::{
    NDIS_SPIN_LOCK, NdisAcquireSpinLock, NdisAllocateSpinLock, NdisDprAcquireSpinLock, NdisDprReleaseSpinLock,
    NdisFreeSpinLock, NdisReleaseSpinLock,
};

/// Proof that the current code runs at DISPATCH_LEVEL. Only the wrapper
/// layer makes one: from a `*_DISPATCH_LEVEL` flag NDIS passed, or from a
/// held spin-lock guard.
#[derive(Clone, Copy)]
pub struct AtDispatch<'a>(PhantomData<&'a ()>);

impl AtDispatch<'_> {
    /// # Safety
    /// The caller runs at DISPATCH_LEVEL for the lifetime of the proof.
    pub(in crate::kernel) unsafe fn assume() -> Self {
        AtDispatch(PhantomData)
    }
}

/// What the IRQL is known to be, from NDIS's flags.
#[derive(Clone, Copy)]
pub enum Irql<'a> {
    /// At DISPATCH_LEVEL.
    Dispatch(AtDispatch<'a>),
    /// At or below DISPATCH_LEVEL, not known which.
    AtMostDispatch,
}

/// A spin lock protecting a `T`.
///
/// The `NDIS_SPIN_LOCK` lives inline: an unheld spin lock is a plain value
/// (`NdisAllocateSpinLock` only initialises it), so moving the `SpinLock`
/// before it is first locked is harmless, and a guard borrows it, so it
/// cannot move while held. Making one allocates nothing and cannot fail.
///
/// # Invariants
/// `raw` was initialised by `NdisAllocateSpinLock`, and is freed in `drop`.
pub struct SpinLock<T> {
    raw: UnsafeCell<NDIS_SPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`, so sharing the lock
// between threads only requires `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves `T`; the NDIS lock stays put in its box.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub fn new(value: T) -> Self {
        let raw = UnsafeCell::new(NDIS_SPIN_LOCK { SpinLock: 0, OldIrql: 0 });
        // SAFETY: `raw` is a fresh NDIS_SPIN_LOCK that nothing else uses.
        unsafe { NdisAllocateSpinLock(raw.get()) };
        SpinLock { raw, data: UnsafeCell::new(value) }
    }

    /// Acquires from IRQL <= DISPATCH_LEVEL, raising to DISPATCH_LEVEL.
    #[inline]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: the lock is initialised (invariant); the guard releases it.
        unsafe { NdisAcquireSpinLock(self.raw.get()) };
        SpinLockGuard { lock: self, dpr: false }
    }

    /// Acquires when already at DISPATCH_LEVEL.
    #[inline]
    pub fn lock_dpr<'a>(&'a self, _at: AtDispatch<'a>) -> SpinLockGuard<'a, T> {
        // SAFETY: as in `lock`; the proof shows IRQL is DISPATCH_LEVEL, as
        // NdisDprAcquireSpinLock requires.
        unsafe { NdisDprAcquireSpinLock(self.raw.get()) };
        SpinLockGuard { lock: self, dpr: true }
    }

    /// Acquires the cheapest way the known IRQL allows.
    #[inline]
    pub fn lock_at<'a>(&'a self, irql: Irql<'a>) -> SpinLockGuard<'a, T> {
        match irql {
            Irql::Dispatch(at) => self.lock_dpr(at),
            Irql::AtMostDispatch => self.lock(),
        }
    }

    /// Access without locking, through exclusive ownership.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T> Drop for SpinLock<T> {
    fn drop(&mut self) {
        // SAFETY: no guard can outlive `self`, so the lock is free.
        unsafe { NdisFreeSpinLock(self.raw.get()) };
    }
}

/// A held spin lock. Holding one means running at DISPATCH_LEVEL.
pub struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
    dpr: bool,
}

impl<T> SpinLockGuard<'_, T> {
    /// Code holding a spin lock runs at DISPATCH_LEVEL.
    pub fn at_dispatch(&self) -> AtDispatch<'_> {
        AtDispatch(PhantomData)
    }
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other reference exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.dpr {
            // SAFETY: this guard acquired the lock with NdisDprAcquireSpinLock.
            unsafe { NdisDprReleaseSpinLock(self.lock.raw.get()) };
        } else {
            // SAFETY: this guard acquired the lock with NdisAcquireSpinLock.
            unsafe { NdisReleaseSpinLock(self.lock.raw.get()) };
        }
    }
}

/// A reader/writer lock over `NDIS_RW_LOCK_EX`. Acquiring either side
/// raises to DISPATCH_LEVEL.
///
/// rawnic uses one per binding as a gate: sends and receives hold it shared
/// across their NDIS calls, and the move out of Running takes it
/// exclusively, so that no send starts, and no receive is retained, once a
/// pause has begun.
///
/// # Invariants
/// `raw` is a lock `NdisAllocateRWLock` returned, freed in `drop`.
pub struct RwGate {
    raw: core::ptr::NonNull<ndis_sys::NDIS_RW_LOCK_EX>,
}

// SAFETY: NDIS RW locks are made to be used from any processor.
unsafe impl Send for RwGate {}
// SAFETY: as above.
unsafe impl Sync for RwGate {}

/// A held `RwGate`, shared or exclusive.
pub struct GateGuard<'a> {
    gate: &'a RwGate,
    state: UnsafeCell<ndis_sys::LOCK_STATE_EX>,
}

impl RwGate {
    /// Allocates the lock with the protocol's registration handle (so only
    /// while the protocol is registered: from a binding's handlers).
    pub(crate) fn new() -> Option<Self> {
        let handle = crate::kernel::protocol::protocol_handle();
        if handle.is_null() {
            return None;
        }
        // SAFETY: the handle is the protocol's registration handle, which
        // stays valid until deregistration, after every binding is gone.
        let raw = unsafe { ndis_sys::NdisAllocateRWLock(handle) };
        core::ptr::NonNull::new(raw).map(|raw| RwGate { raw })
    }

    fn acquire(&self, irql: Irql<'_>, write: bool) -> GateGuard<'_> {
        let g = GateGuard {
            gate: self,
            state: UnsafeCell::new(ndis_sys::LOCK_STATE_EX { OldIrql: 0, LockState: 0, Flags: 0 }),
        };
        let flags = match irql {
            Irql::Dispatch(_) => ndis_sys::NDIS_RWL_AT_DISPATCH_LEVEL,
            Irql::AtMostDispatch => 0,
        };
        // The lock is valid (invariant). The lock state lives in the guard,
        // which releases it exactly once; the guard may move while held
        // because NDIS keeps no pointer to the state between calls (it is
        // passed again on release).
        if write {
            // SAFETY: as above.
            unsafe { ndis_sys::NdisAcquireRWLockWrite(self.raw.as_ptr(), g.state.get(), flags) };
        } else {
            // SAFETY: as above.
            unsafe { ndis_sys::NdisAcquireRWLockRead(self.raw.as_ptr(), g.state.get(), flags) };
        }
        g
    }

    /// Shared.
    pub fn read<'a>(&'a self, irql: Irql<'a>) -> GateGuard<'a> {
        self.acquire(irql, false)
    }

    /// Exclusive.
    pub fn write(&self) -> GateGuard<'_> {
        self.acquire(Irql::AtMostDispatch, true)
    }
}

impl GateGuard<'_> {
    /// Holding the gate means running at DISPATCH_LEVEL.
    pub fn at_dispatch(&self) -> AtDispatch<'_> {
        AtDispatch(PhantomData)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard acquired the lock with this state.
        unsafe { ndis_sys::NdisReleaseRWLock(self.gate.raw.as_ptr(), self.state.get()) };
    }
}

impl Drop for RwGate {
    fn drop(&mut self) {
        // SAFETY: no guard outlives the gate.
        unsafe { ndis_sys::NdisFreeRWLock(self.raw.as_ptr()) };
    }
}
