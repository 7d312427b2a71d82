//! Spin locks over `NDIS_SPIN_LOCK`, with the IRQL rules in the types.
//!
//! `lock()` raises to DISPATCH_LEVEL (`NdisAcquireSpinLock`) and is for
//! callers at or below it. `lock_dpr()` needs an `AtDispatch` proof (from
//! NDIS's `*_DISPATCH_LEVEL` flags, or from another guard) and uses the
//! cheaper `NdisDprAcquireSpinLock`.

use crate::kernel::device::IrpList;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};
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
/// The `NDIS_SPIN_LOCK` lives inline, and `NdisAllocateSpinLock` initialises
/// it where it stays: at the first lock, not in `new` (whose value still
/// moves into its `Arc` or `Box`). A copy of an initialised lock is not
/// one: the documentation asks for the call on the lock the acquire is
/// given. A `SpinLock` is locked only through `&self`, so it does not
/// move while held; one moved after its first lock is a bug, and its next
/// lock panics (a bug check) rather than take a lock NDIS never saw.
/// Making one allocates nothing and cannot fail.
///
/// # Invariants
/// `at` is 0 until `raw` is initialised, then `raw`'s address: the lock was
/// initialised there by `NdisAllocateSpinLock` (under `FIRST_LOCKS`), and
/// is freed in `drop`.
pub struct SpinLock<T> {
    raw: UnsafeCell<NDIS_SPIN_LOCK>,
    at: AtomicUsize,
    data: UnsafeCell<T>,
}

/// The lock that serialises first locks (`SpinLock::init`), initialised in
/// place by `init_first_locks` in `DriverEntry`, before any `SpinLock` is
/// locked. A first lock takes it (raising to DISPATCH_LEVEL), so the thread
/// initialising a lock cannot be preempted by one waiting for it.
struct FirstLocks(UnsafeCell<NDIS_SPIN_LOCK>);

// SAFETY: only NDIS's spin lock functions touch it, which serialise.
unsafe impl Sync for FirstLocks {}

static FIRST_LOCKS: FirstLocks = FirstLocks(UnsafeCell::new(NDIS_SPIN_LOCK { SpinLock: 0, OldIrql: 0 }));

/// Initialises the lock first locks take. Called once, by `DriverEntry`,
/// before anything can lock a `SpinLock`.
pub(crate) fn init_first_locks() {
    // SAFETY: a static, initialised where it stays, before any other thread
    // of the driver runs (DriverEntry).
    unsafe { NdisAllocateSpinLock(FIRST_LOCKS.0.get()) };
}

// SAFETY: the lock serialises all access to `data`, so sharing the lock
// between threads only requires `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves `T`; the lock is not held (a guard
// borrows it).
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock {
            raw: UnsafeCell::new(NDIS_SPIN_LOCK { SpinLock: 0, OldIrql: 0 }),
            at: AtomicUsize::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// The NDIS lock, initialised where it is.
    #[inline]
    fn raw(&self) -> *mut NDIS_SPIN_LOCK {
        let p = self.raw.get();
        if self.at.load(Ordering::Acquire) == p as usize {
            return p;
        }
        self.init(p)
    }

    #[cold]
    fn init(&self, p: *mut NDIS_SPIN_LOCK) -> *mut NDIS_SPIN_LOCK {
        // SAFETY: initialised in DriverEntry, before any SpinLock is
        // locked; released below.
        unsafe { NdisAcquireSpinLock(FIRST_LOCKS.0.get()) };
        let at = self.at.load(Ordering::Acquire);
        if at == 0 {
            // SAFETY: under FIRST_LOCKS, which every first lock takes: this
            // thread alone initialises the lock, which nothing has used.
            unsafe { NdisAllocateSpinLock(p) };
            self.at.store(p as usize, Ordering::Release);
        }
        // SAFETY: taken above.
        unsafe { NdisReleaseSpinLock(FIRST_LOCKS.0.get()) };
        if at != 0 && at != p as usize {
            panic!("a SpinLock moved after its first lock");
        }
        p
    }

    /// Acquires from IRQL <= DISPATCH_LEVEL, raising to DISPATCH_LEVEL.
    #[inline]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: the lock is initialised where it is (`raw`); the guard
        // releases it.
        unsafe { NdisAcquireSpinLock(self.raw()) };
        SpinLockGuard { lock: self, dpr: false }
    }

    /// Acquires when already at DISPATCH_LEVEL.
    #[inline]
    pub fn lock_dpr<'a>(&'a self, _at: AtDispatch<'a>) -> SpinLockGuard<'a, T> {
        // SAFETY: as in `lock`; the proof shows IRQL is DISPATCH_LEVEL, as
        // NdisDprAcquireSpinLock requires.
        unsafe { NdisDprAcquireSpinLock(self.raw()) };
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
        let p = self.raw.get();
        // Never locked, nothing to free; moved after its first lock (a bug
        // its next lock would have caught), not this lock to free.
        if *self.at.get_mut() == p as usize {
            // SAFETY: initialised here (invariant); no guard can outlive
            // `self`, so the lock is free.
            unsafe { NdisFreeSpinLock(p) };
        }
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
/// rawnic uses one per binding as a gate: sends hold it shared across
/// their NDIS calls, and the move out of Running takes it exclusively, so
/// that no send starts once a pause has begun.
///
/// A send completion NDIS makes inside `NdisSendNetBufferLists` runs under
/// the sender's hold, and no IRP is completed under a lock: the IRPs a
/// completion makes ready go through `complete_outside`, which completes
/// them at once when nobody holds the gate, and otherwise leaves them to
/// the next holder to let go of it, on a thread that then holds it no more
/// (each side re-checks after its own step, so one of them always sees the
/// other's; and senders that overlap without end cannot hold them back).
///
/// # Invariants
/// `raw` is a lock `NdisAllocateRWLock` returned, freed in `drop`.
/// `holders` counts the guards alive; `deferred` is empty whenever
/// `holders` is 0 and no `complete_outside` or guard drop is under way.
pub struct RwGate {
    raw: core::ptr::NonNull<ndis_sys::NDIS_RW_LOCK_EX>,
    holders: AtomicUsize,
    deferred: SpinLock<IrpList>,
    /// `deferred` may hold IRPs (set after an append, cleared before a
    /// flush takes them): what a guard's drop looks at, without the lock.
    pending: core::sync::atomic::AtomicBool,
}

// SAFETY: NDIS RW locks are made to be used from any processor.
unsafe impl Send for RwGate {}
// SAFETY: as above.
unsafe impl Sync for RwGate {}

/// The `LOCK_STATE_EX` of one hold of an `RwGate`, in the holder's frame.
///
/// NDIS is handed the same variable at the release as at the acquire: the
/// documentation ties the variable to one hold, from its acquire to its
/// release, and asks for a different one for each acquire. A guard borrows
/// its state mutably, so the state cannot move, or serve a second acquire,
/// while the gate is held; the guard itself may move.
pub struct GateState(UnsafeCell<ndis_sys::LOCK_STATE_EX>);

impl GateState {
    pub const fn new() -> Self {
        GateState(UnsafeCell::new(ndis_sys::LOCK_STATE_EX { OldIrql: 0, LockState: 0, Flags: 0 }))
    }
}

impl Default for GateState {
    fn default() -> Self {
        Self::new()
    }
}

/// A held `RwGate`, shared or exclusive.
pub struct GateGuard<'a> {
    gate: &'a RwGate,
    state: &'a mut GateState,
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
        core::ptr::NonNull::new(raw).map(|raw| RwGate {
            raw,
            holders: AtomicUsize::new(0),
            deferred: SpinLock::new(IrpList::new()),
            pending: core::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Completes `list`'s IRPs now if nobody holds the gate, else when the
    /// next holder lets go (a completion inside a sender's NDIS call runs
    /// under its hold). Call with no lock held but perhaps the gate; a
    /// thread never holds the gate twice, so a holder that lets go holds
    /// it no more.
    pub fn complete_outside(&self, mut list: IrpList) {
        if list.is_empty() {
            return;
        }
        if self.holders.load(Ordering::SeqCst) == 0 {
            list.complete_all();
            return;
        }
        {
            let mut d = self.deferred.lock();
            d.append(&mut list);
            self.pending.store(true, Ordering::SeqCst);
        }
        // A holder that let go meanwhile may have looked before the append.
        if self.holders.load(Ordering::SeqCst) == 0 {
            self.flush();
        }
    }

    /// Completes what waits in `deferred`, outside its lock.
    fn flush(&self) {
        let mut l = {
            let mut d = self.deferred.lock();
            self.pending.store(false, Ordering::SeqCst);
            core::mem::take(&mut *d)
        };
        l.complete_all();
    }

    fn acquire<'a>(&'a self, state: &'a mut GateState, irql: Irql<'a>, write: bool) -> GateGuard<'a> {
        let flags = match irql {
            Irql::Dispatch(_) => ndis_sys::NDIS_RWL_AT_DISPATCH_LEVEL,
            Irql::AtMostDispatch => 0,
        };
        // The lock is valid (invariant). The state is borrowed by the guard,
        // which releases the lock exactly once, with the same state, which
        // cannot move before.
        if write {
            // SAFETY: as above.
            unsafe { ndis_sys::NdisAcquireRWLockWrite(self.raw.as_ptr(), state.0.get(), flags) };
        } else {
            // SAFETY: as above.
            unsafe { ndis_sys::NdisAcquireRWLockRead(self.raw.as_ptr(), state.0.get(), flags) };
        }
        self.holders.fetch_add(1, Ordering::SeqCst);
        GateGuard { gate: self, state }
    }

    /// Shared, with its lock state in `state`.
    pub fn read<'a>(&'a self, state: &'a mut GateState, irql: Irql<'a>) -> GateGuard<'a> {
        self.acquire(state, irql, false)
    }

    /// Exclusive, with its lock state in `state`.
    pub fn write<'a>(&'a self, state: &'a mut GateState) -> GateGuard<'a> {
        self.acquire(state, Irql::AtMostDispatch, true)
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
        // SAFETY: this guard acquired the lock with this state, which has
        // not moved since (it is borrowed).
        unsafe { ndis_sys::NdisReleaseRWLock(self.gate.raw.as_ptr(), self.state.0.get()) };
        // Whoever lets go completes what completions left (`RwGate`): this
        // thread holds the gate no more, whoever else still does.
        self.gate.holders.fetch_sub(1, Ordering::SeqCst);
        if self.gate.pending.load(Ordering::SeqCst) {
            self.gate.flush();
        }
    }
}

impl Drop for RwGate {
    fn drop(&mut self) {
        // SAFETY: no guard outlives the gate.
        unsafe { ndis_sys::NdisFreeRWLock(self.raw.as_ptr()) };
    }
}
