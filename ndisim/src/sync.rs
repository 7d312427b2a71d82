//! Spin locks and NDIS reader/writer locks.
//!
//! A `KSPIN_LOCK` is 8 bytes of driver memory. ndisim keeps a futex-based
//! lock in its low 32 bits (0 free, 1 held, 2 held with waiters) and the
//! owner's thread number in the high 32 bits, so a waiter sleeps instead of
//! spinning (an emulated CPU at DISPATCH_LEVEL can still be preempted by
//! Linux) and a release by the wrong thread is seen.

use crate::kernel::{self, Held, LockKind};
use crate::verifier::{Rule, Violation};
use std::sync::atomic::{AtomicU32, Ordering};

fn futex_wait(w: &AtomicU32, val: u32) {
    // SAFETY: FUTEX_WAIT on a valid, aligned 32-bit word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(w: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned 32-bit word.
    unsafe {
        libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1);
    }
}

/// The two halves of a `KSPIN_LOCK`.
///
/// # Safety
/// `lock` points to a live, 8-byte aligned `KSPIN_LOCK`.
unsafe fn halves<'a>(lock: *mut usize) -> (&'a AtomicU32, &'a AtomicU32) {
    // SAFETY: per the caller; both halves are aligned 32-bit words.
    unsafe { (&*(lock as *const AtomicU32), &*((lock as *const AtomicU32).add(1))) }
}

/// Initialises a spin lock.
///
/// # Safety
/// As `halves`.
pub(crate) unsafe fn spin_init(lock: *mut usize) {
    // SAFETY: per the caller.
    unsafe { lock.write(0) };
}

/// Acquires a spin lock (IRQL is the caller's business); `how` is the
/// hold's `Held::state` (which NDIS function took it, or 0).
///
/// # Safety
/// As `halves`.
pub(crate) unsafe fn spin_acquire(call: &str, lock: *mut usize, how: usize) {
    // SAFETY: per the caller.
    let (w, owner) = unsafe { halves(lock) };
    let me = kernel::tid();
    if w.load(Ordering::Relaxed) != 0 && owner.load(Ordering::Relaxed) == me && kernel::holds(lock as usize) {
        Violation::new(
            Rule::SpinLockImbalance,
            call,
            "acquired recursively by the thread that holds it: a deadlock on Windows",
        )
        .with_object(lock as usize)
        .report();
        // A real CPU would spin forever; stop here the way Verifier does.
        kernel::bugcheck(0xC4, [0x1001, lock as usize, 0, 0]);
    }
    kernel::check_lock_order(call, lock as usize, LockKind::Spin);
    let det = kernel::kernel().filter(|k| k.sched_here().is_some());
    if let Some(k) = det {
        // One thread runs at a time: the holder yielded with the lock
        // held; let it (and the others) run until the lock is free.
        if w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            k.wait_forever(
                "a spin lock",
                || w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok(),
                || {},
            );
        }
    } else if w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
        let mut spins = 0;
        loop {
            if spins < 64 {
                spins += 1;
                std::hint::spin_loop();
                if w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    break;
                }
                continue;
            }
            if w.swap(2, Ordering::Acquire) == 0 {
                break;
            }
            futex_wait(w, 2);
        }
    }
    owner.store(me, Ordering::Relaxed);
    kernel::push_held(lock as usize, LockKind::Spin, how);
}

/// Releases a spin lock; false (and a violation) when this thread does not
/// hold it.
///
/// # Safety
/// As `halves`.
pub(crate) unsafe fn spin_release(call: &str, lock: *mut usize) -> bool {
    // SAFETY: per the caller.
    let (w, owner) = unsafe { halves(lock) };
    if w.load(Ordering::Relaxed) == 0 {
        Violation::new(Rule::SpinLockImbalance, call, "released a spin lock that is not held")
            .with_object(lock as usize)
            .report();
        return false;
    }
    if owner.load(Ordering::Relaxed) != kernel::tid() || kernel::pop_held(lock as usize).is_none() {
        Violation::new(Rule::SpinLockImbalance, call, "released a spin lock that another thread (CPU) holds")
            .with_object(lock as usize)
            .report();
        return false;
    }
    owner.store(0, Ordering::Relaxed);
    if w.swap(0, Ordering::Release) == 2 {
        futex_wake(w);
    }
    true
}

/// True when the spin lock is held by anyone.
///
/// # Safety
/// As `halves`.
pub(crate) unsafe fn spin_is_held(lock: *mut usize) -> bool {
    // SAFETY: per the caller.
    unsafe { halves(lock) }.0.load(Ordering::Relaxed) != 0
}

/// An `NDIS_RW_LOCK_EX` (NDIS allocates it; the driver sees only a pointer).
#[allow(dead_code)]
pub(crate) struct RwLockEx {
    pub magic: u64,
    pub raw: parking_lot::RawRwLock,
}

pub(crate) const RWLOCK_MAGIC: u64 = 0x4B43_4F4C_5752_444E; // "NDRWLOCK"

/// `LOCK_STATE_EX::LockState` values ndisim writes.
pub(crate) const RW_STATE_READ: u8 = 0x11;
pub(crate) const RW_STATE_WRITE: u8 = 0x22;

/// Releases what a callback forgot, so the simulation can go on.
pub(crate) fn force_release(h: Held) {
    match h.kind {
        LockKind::Spin => {
            // SAFETY: the entry was pushed by `spin_acquire` for a live lock.
            let (w, owner) = unsafe { halves(h.addr as *mut usize) };
            owner.store(0, Ordering::Relaxed);
            if w.swap(0, Ordering::Release) == 2 {
                futex_wake(w);
            }
        }
        LockKind::Read | LockKind::Write => {
            use parking_lot::lock_api::RawRwLock as _;
            // SAFETY: the entry was pushed when this thread acquired the
            // live lock at `addr` in this mode.
            unsafe {
                let l = &*(h.addr as *const RwLockEx);
                if h.kind == LockKind::Read {
                    l.raw.unlock_shared();
                } else {
                    l.raw.unlock_exclusive();
                }
            }
        }
    }
}
