//! The export tables of the emulated `ndis.sys`, `ntoskrnl.exe` and
//! `HAL.dll`, and the small exports that need no module of their own.
//!
//! Every export that `ndis-sys` declares is coerced to its pointer type
//! there (`ndis_sys::ndis_imports::NdisSendNetBufferLists`, ...), so the
//! compiler checks that the emulation and the driver agree on each
//! signature.

use crate::kernel::{self, DISPATCH_LEVEL, check_irql_eq, check_irql_max};
use crate::ndis::export;
use crate::sync::{self, RW_STATE_READ, RW_STATE_WRITE, RWLOCK_MAGIC, RwLockEx};
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use parking_lot::lock_api::{RawRwLock as _, RawRwLockRecursive as _};

/// One export.
#[derive(Debug, Clone, Copy)]
pub struct Export {
    pub dll: &'static str,
    pub name: &'static str,
    pub addr: usize,
}

// --- Pool ---------------------------------------------------------------

unsafe extern "win64" fn ExAllocatePoolWithTag(pool_type: POOL_TYPE, n: SIZE_T, tag: u32) -> PVOID {
    const CALL: &str = "ExAllocatePoolWithTag";
    export(CALL, std::ptr::null_mut(), |k| {
        // Paged pool types are odd (PagedPool = 1, PagedPoolCacheAligned...).
        let paged = pool_type & 1 == 1;
        if !paged && pool_type & NonPagedPoolNx == 0 {
            Violation::new(
                Rule::NoExecute,
                CALL,
                format!("pool type {pool_type} is executable non-paged pool; use NonPagedPoolNx"),
            )
            .report();
        }
        check_irql_max(CALL, if paged { kernel::APC_LEVEL } else { DISPATCH_LEVEL });
        if let Some(why) = pool_type_problem(pool_type) {
            Violation::new(Rule::InvalidParameter, CALL, why).report();
        }
        if tag == 0 {
            Violation::new(Rule::InvalidParameter, CALL, "Tag is zero").report();
        } else if let Some(why) = tag_problem(tag) {
            Violation::new(Rule::InvalidParameter, CALL, why).report();
        }
        if n == 0 {
            Violation::new(Rule::InvalidParameter, CALL, "NumberOfBytes is zero").report();
        }
        if n != 0 {
            k.stall_pool_allocation(n);
        }
        if k.fail_alloc() || k.refuse_pool() || k.short_of_pool() {
            return std::ptr::null_mut();
        }
        k.pool.alloc(n, tag, pool_type).cast()
    })
}

/// What is wrong with a non-zero pool tag, against ExAllocatePoolWithTag's
/// page: "a non-zero character literal of one to four characters ... Each
/// ASCII character in the tag must be a value in the range 0x20 (space) to
/// 0x7E (tilde)". A literal of fewer than four characters leaves its high
/// bytes zero ('abc' is 0x00616263), so zero bytes may only be the high
/// ones. (The tag is how `!poolused`, poolmon and Driver Verifier's pool
/// tracking name the driver's memory; a byte outside the range, such as
/// the PROTECTED_POOL bit, breaks them.)
pub(crate) fn tag_problem(tag: u32) -> Option<String> {
    let bytes = tag.to_le_bytes();
    let len = 4 - bytes.iter().rev().take_while(|&&c| c == 0).count();
    let bad = bytes[..len].iter().position(|&c| !(0x20..=0x7E).contains(&c))?;
    Some(format!(
        "Tag {tag:#010x}: its byte {bad} ({:#04x}) is not printable ASCII; each character of a pool tag is 0x20 (space) to 0x7E (tilde)",
        bytes[bad]
    ))
}

/// `POOL_COLD_ALLOCATION`: an advisory flag ExAllocatePoolWithTag's page
/// allows on any pool type.
const POOL_COLD_ALLOCATION: POOL_TYPE = 0x100;
/// `POOL_RAISE_IF_ALLOCATION_FAILURE`: a failure raises an exception.
const POOL_RAISE_IF_ALLOCATION_FAILURE: POOL_TYPE = 0x10;

/// What is wrong with a pool type, against the POOL_TYPE page (which values
/// a driver may pass) and ExAllocatePoolWithTag's (which flags it may add):
/// a driver passes `NonPagedPoolNx`, `PagedPool` or `NonPagedPool`
/// (executable: rule no-execute), with `POOL_COLD_ALLOCATION` or not.
/// `POOL_RAISE_IF_ALLOCATION_FAILURE` turns a failure into an exception
/// that only `__try`/`__except` catches, which a Rust driver cannot have:
/// under low memory (or Driver Verifier's low-resources simulation) the
/// machine would stop with bug check 0x1E (KMODE_EXCEPTION_NOT_HANDLED), or
/// 0x7E (SYSTEM_THREAD_EXCEPTION_NOT_HANDLED) on a system thread.
pub(crate) fn pool_type_problem(pool_type: POOL_TYPE) -> Option<String> {
    let t = pool_type & !POOL_COLD_ALLOCATION;
    let why = if t & POOL_RAISE_IF_ALLOCATION_FAILURE != 0 {
        "POOL_RAISE_IF_ALLOCATION_FAILURE: a failed allocation raises an exception instead of returning NULL, which a Rust driver cannot catch (bug check 0x1E, or 0x7E on a system thread)"
    } else {
        match t {
            0 | 1 | NonPagedPoolNx => return None,
            2 | 6 => {
                "a must-succeed type (NonPagedPoolMustSucceed, NonPagedPoolCacheAlignedMustS): drivers must not specify it; a must-succeed request that cannot be met crashes the system"
            }
            3 | 4 | 5 | 7 | 516 | 544 => {
                "reserved for the system (internal use only): drivers pass NonPagedPoolNx or PagedPool"
            }
            32..=38 => "a session pool type, deprecated (\"Do not use\")",
            _ => "not a POOL_TYPE value",
        }
    };
    Some(format!("PoolType {pool_type:#x}: {why}"))
}

unsafe extern "win64" fn ExFreePoolWithTag(p: PVOID, tag: u32) {
    const CALL: &str = "ExFreePoolWithTag";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if p.is_null() {
            Violation::new(Rule::PoolDoubleFree, CALL, "freed a NULL pointer").report();
            return;
        }
        // Paged pool is freed at APC_LEVEL at most (the routine's page: a
        // caller at DISPATCH_LEVEL must have allocated non-paged memory).
        if let Some(b) = k.pool.containing(p as usize, 1).filter(|b| b.addr == p as usize) {
            if b.pool_type & 1 == 1 && kernel::irql() > kernel::APC_LEVEL {
                Violation::new(Rule::Irql, CALL, "freed paged pool above APC_LEVEL").with_object(p as usize).report();
            }
        }
        // Locks inside the block go with it (their addresses may be reused),
        // and so do MDLs the driver built there.
        if let Some(size) = k.pool.size_of(p as usize) {
            // What is still in use there keeps the block (and is reported).
            let mdls = crate::io::pool_mdls_freed(k, p as usize, size);
            if crate::freed::in_use(k, p as usize, size) || mdls {
                return;
            }
            k.lock_order.forget(p as usize, p as usize + size.max(1));
        }
        match k.pool.free(p as usize, Some(tag)) {
            Ok(()) => {}
            Err(crate::pool::FreeError::DoubleFree) => {
                Violation::new(Rule::PoolDoubleFree, CALL, "freed a pool block that is already free (double free)")
                    .with_object(p as usize)
                    .report()
            }
            Err(crate::pool::FreeError::NotAllocated) => {
                Violation::new(Rule::PoolDoubleFree, CALL, "freed an address that the pool never gave out")
                    .with_object(p as usize)
                    .report()
            }
            Err(crate::pool::FreeError::TagMismatch(t)) => Violation::new(
                Rule::PoolTagMismatch,
                CALL,
                format!("freed with tag {:?}, allocated with {:?}", crate::pool::tag_str(tag), crate::pool::tag_str(t)),
            )
            .with_object(p as usize)
            .report(),
        }
    })
}

// --- Misc kernel ------------------------------------------------------------

unsafe extern "win64" fn KeBugCheckEx(code: u32, p1: ULONG_PTR, p2: ULONG_PTR, p3: ULONG_PTR, p4: ULONG_PTR) -> ! {
    // The report is written from the thread's own stack.
    kernel::bugcheck(code, [p1, p2, p3, p4])
}

/// The system time as the kernel gives it: 100-ns units since 1601,
/// without a 128-bit division (it is read for every frame received).
fn system_time_100ns(k: &kernel::Kernel) -> i64 {
    let d = k.system_time();
    d.as_secs() as i64 * 10_000_000 + i64::from(d.subsec_nanos() / 100) + 116_444_736_000_000_000
}

unsafe extern "win64" fn KeQuerySystemTimePrecise(t: *mut LARGE_INTEGER) {
    export("KeQuerySystemTimePrecise", (), |k| {
        let v = system_time_100ns(k);
        // SAFETY: the driver's out parameter.
        unsafe { (*t).QuadPart = v };
    })
}

/// Sleeps the calling thread (virtual time in a deterministic
/// simulation). A driver's thread waits in `KernelMode`, not alertable (an
/// alertable wait may return `STATUS_ALERTED` or `STATUS_USER_APC` early,
/// which ndisim never delivers, so it refuses what it could not honour),
/// at most APC_LEVEL; the interval is read once.
unsafe extern "win64" fn KeDelayExecutionThread(
    mode: KPROCESSOR_MODE,
    alertable: BOOLEAN,
    interval: *mut LARGE_INTEGER,
) -> NTSTATUS {
    const CALL: &str = "KeDelayExecutionThread";
    export(CALL, STATUS_INVALID_PARAMETER, |k| {
        kernel::check_irql_max(CALL, APC_LEVEL);
        if interval.is_null() || mode != KernelMode || alertable != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("WaitMode {mode}, Alertable {alertable}, Interval {interval:p}: a driver's delay is KernelMode, not alertable, with an interval"),
            )
            .report();
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's in parameter, checked non-null.
        let v = unsafe { (*interval).QuadPart };
        let ns = if v < 0 {
            v.unsigned_abs().saturating_mul(100)
        } else {
            // An absolute system time: the wait ends when the clock gets there.
            (v.saturating_sub(system_time_100ns(k)).max(0) as u64).saturating_mul(100)
        };
        k.sleep(std::time::Duration::from_nanos(ns));
        STATUS_SUCCESS
    })
}

unsafe extern "win64" fn KeQueryPerformanceCounter(freq: *mut LARGE_INTEGER) -> i64 {
    export("KeQueryPerformanceCounter", 0, |k| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        if k.sched.is_some() {
            let n = k.now_ns();
            ts.tv_sec = (n / 1_000_000_000) as i64;
            ts.tv_nsec = (n % 1_000_000_000) as i64;
        } else {
            // SAFETY: a valid out pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        }
        if !freq.is_null() {
            // SAFETY: the driver's out parameter.
            unsafe { (*freq).QuadPart = 10_000_000 };
        }
        ts.tv_sec * 10_000_000 + ts.tv_nsec / 100
    })
}

// --- NDIS spin locks ---------------------------------------------------------

fn spin_word(l: *mut NDIS_SPIN_LOCK) -> *mut usize {
    l.cast()
}

unsafe extern "win64" fn NdisAllocateSpinLock(l: *mut NDIS_SPIN_LOCK) {
    export("NdisAllocateSpinLock", (), |k| {
        // A new lock: whatever was at this address before is forgotten.
        k.lock_order.forget(spin_word(l) as usize, spin_word(l) as usize + 1);
        lock(&k.ndis.spin_locks).insert(l as usize);
        // SAFETY: the driver's lock.
        unsafe {
            sync::spin_init(spin_word(l));
            (*l).OldIrql = 0;
        }
    })
}

unsafe extern "win64" fn NdisFreeSpinLock(l: *mut NDIS_SPIN_LOCK) {
    const CALL: &str = "NdisFreeSpinLock";
    export(CALL, (), |k| {
        // The page: it "releases a spin lock initialized in a preceding
        // call to the NdisAllocateSpinLock function", and NdisAllocateSpinLock
        // comes "before it calls any other Ndis..SpinLock function". A lock
        // never initialised (or freed already) is not one to free.
        if !lock(&k.ndis.spin_locks).contains(&(l as usize)) {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "a spin lock NdisAllocateSpinLock did not initialise at this address, or that was freed already",
            )
            .with_object(l as usize)
            .report();
        }
        // SAFETY: the driver's lock.
        if unsafe { sync::spin_is_held(spin_word(l)) } {
            Violation::new(Rule::SpinLockImbalance, CALL, "freed a spin lock that is held")
                .with_object(l as usize)
                .report();
        }
        lock(&k.ndis.spin_locks).remove(&(l as usize));
        k.lock_order.forget(spin_word(l) as usize, spin_word(l) as usize + 1);
    })
}

/// Reports the acquire of a lock that `NdisAllocateSpinLock` did not
/// initialise where it is (or that was freed since). Windows would take a
/// copy of an initialised lock all the same; the documentation asks for the
/// call on the lock the acquire is given, and ndisim's checks of locks that
/// are freed while held see only the locks it was told of.
fn check_allocated(k: &kernel::Kernel, call: &str, l: *mut NDIS_SPIN_LOCK) {
    if !lock(&k.ndis.spin_locks).contains(&(l as usize)) {
        Violation::new(
            Rule::InvalidParameter,
            call,
            "a spin lock NdisAllocateSpinLock did not initialise at this address (a copy of one is not one), or that was freed since",
        )
        .with_object(l as usize)
        .report();
    }
}

unsafe extern "win64" fn NdisAcquireSpinLock(l: *mut NDIS_SPIN_LOCK) {
    const CALL: &str = "NdisAcquireSpinLock";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        check_allocated(k, CALL, l);
        k.stall_lock_acquire();
        let old = kernel::set_irql(DISPATCH_LEVEL);
        // SAFETY: the driver's lock.
        unsafe {
            sync::spin_acquire(CALL, spin_word(l), kernel::SPIN_RAISED);
            (*l).OldIrql = old;
        }
    })
}

/// Reports a release by the other pair's function: `NdisReleaseSpinLock`
/// lowers IRQL to the `OldIrql` that only `NdisAcquireSpinLock` saves, and
/// `NdisDprReleaseSpinLock` leaves IRQL where `NdisAcquireSpinLock` raised
/// it.
fn check_pair(call: &str, l: *mut NDIS_SPIN_LOCK, want: usize) {
    let Some(h) = kernel::held_entry(spin_word(l) as usize) else { return };
    if h.state == want {
        return;
    }
    let detail = if want == kernel::SPIN_RAISED {
        "released with NdisReleaseSpinLock a lock NdisDprAcquireSpinLock took: it lowers IRQL to an OldIrql that acquire did not save"
    } else {
        "released with NdisDprReleaseSpinLock a lock NdisAcquireSpinLock took: IRQL stays at DISPATCH_LEVEL"
    };
    Violation::new(Rule::SpinLockImbalance, call, detail).with_object(l as usize).report();
}

unsafe extern "win64" fn NdisReleaseSpinLock(l: *mut NDIS_SPIN_LOCK) {
    const CALL: &str = "NdisReleaseSpinLock";
    export(CALL, (), |_k| {
        check_irql_eq(CALL, DISPATCH_LEVEL);
        check_pair(CALL, l, kernel::SPIN_RAISED);
        // SAFETY: the driver's lock; OldIrql is read while still holding it.
        unsafe {
            let old = (*l).OldIrql;
            if sync::spin_release(CALL, spin_word(l)) {
                kernel::set_irql(old);
            }
        }
    })
}

unsafe extern "win64" fn NdisDprAcquireSpinLock(l: *mut NDIS_SPIN_LOCK) {
    const CALL: &str = "NdisDprAcquireSpinLock";
    export(CALL, (), |k| {
        check_irql_eq(CALL, DISPATCH_LEVEL);
        check_allocated(k, CALL, l);
        k.stall_lock_acquire();
        // SAFETY: the driver's lock.
        unsafe { sync::spin_acquire(CALL, spin_word(l), kernel::SPIN_DPR) };
    })
}

unsafe extern "win64" fn NdisDprReleaseSpinLock(l: *mut NDIS_SPIN_LOCK) {
    const CALL: &str = "NdisDprReleaseSpinLock";
    export(CALL, (), |_k| {
        check_irql_eq(CALL, DISPATCH_LEVEL);
        check_pair(CALL, l, kernel::SPIN_DPR);
        // SAFETY: the driver's lock.
        unsafe { sync::spin_release(CALL, spin_word(l)) };
    })
}

// --- NDIS RW locks -----------------------------------------------------------

unsafe extern "win64" fn NdisAllocateRWLock(h: NDIS_HANDLE) -> *mut NDIS_RW_LOCK_EX {
    const CALL: &str = "NdisAllocateRWLock";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if k.ndis.protocol().is_none_or(|p| !std::ptr::addr_eq(std::sync::Arc::as_ptr(&p), h)) {
            Violation::new(Rule::InvalidParameter, CALL, "NdisHandle is not the protocol's registration handle")
                .with_object(h as usize)
                .report();
            return std::ptr::null_mut();
        }
        if k.fail_alloc() {
            return std::ptr::null_mut();
        }
        let l = Box::into_raw(Box::new(RwLockEx { magic: RWLOCK_MAGIC, raw: parking_lot::RawRwLock::INIT }));
        lock(&k.ndis.rwlocks).insert(l as usize);
        crate::ndis::owned::allocated(k, l as usize, "an NDIS_RW_LOCK_EX");
        l.cast()
    })
}

fn rw(k: &kernel::Kernel, l: *mut NDIS_RW_LOCK_EX, call: &str) -> Option<&'static RwLockEx> {
    if !lock(&k.ndis.rwlocks).contains(&(l as usize)) {
        Violation::new(Rule::InvalidParameter, call, "not a lock from NdisAllocateRWLock (or freed)")
            .with_object(l as usize)
            .report();
        return None;
    }
    // SAFETY: a live lock of ours.
    Some(unsafe { &*(l as *const RwLockEx) })
}

unsafe extern "win64" fn NdisFreeRWLock(l: *mut NDIS_RW_LOCK_EX) {
    const CALL: &str = "NdisFreeRWLock";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(x) = rw(k, l, CALL) else { return };
        if x.raw.is_locked() {
            Violation::new(Rule::SpinLockImbalance, CALL, "freed an RW lock that is held")
                .with_object(l as usize)
                .report();
            return;
        }
        lock(&k.ndis.rwlocks).remove(&(l as usize));
        crate::ndis::owned::freed(k, l as usize);
        k.lock_order.forget(l as usize, l as usize + 1);
        // SAFETY: allocated by NdisAllocateRWLock, freed once.
        unsafe { drop(Box::from_raw(l as *mut RwLockEx)) };
    })
}

fn rw_acquire(l: *mut NDIS_RW_LOCK_EX, st: *mut LOCK_STATE_EX, flags: u8, write: bool, call: &str) {
    export("NdisAcquireRWLock", (), |k| {
        check_irql_max(call, DISPATCH_LEVEL);
        // The pages define one flag: "Set this parameter to
        // NDIS_RWL_AT_DISPATCH_LEVEL if the caller's current IRQL is
        // DISPATCH_LEVEL. Otherwise, set this parameter to zero."
        if flags & !NDIS_RWL_AT_DISPATCH_LEVEL != 0 {
            Violation::new(
                Rule::InvalidParameter,
                call,
                format!("Flags {flags:#x}: only NDIS_RWL_AT_DISPATCH_LEVEL is defined"),
            )
            .with_object(l as usize)
            .report();
        }
        if flags & NDIS_RWL_AT_DISPATCH_LEVEL != 0 && kernel::irql() != DISPATCH_LEVEL {
            Violation::new(
                Rule::Irql,
                call,
                "NDIS_RWL_AT_DISPATCH_LEVEL is set but the caller is not at DISPATCH_LEVEL",
            )
            .with_object(l as usize)
            .report();
        }
        let Some(x) = rw(k, l, call) else { return };
        if st.is_null() {
            Violation::new(Rule::InvalidParameter, call, "null LockState").with_object(l as usize).report();
            return;
        }
        if let Some(h) = kernel::held_with_state(st as usize) {
            Violation::new(
                Rule::InvalidParameter,
                call,
                format!(
                    "LockState is the LOCK_STATE_EX of a hold of the lock at {:#x} this thread has not released: each acquire needs its own",
                    h.addr
                ),
            )
            .with_object(l as usize)
            .report();
        }
        if let Some(h) = kernel::held_entry(l as usize).filter(|h| write || h.kind == kernel::LockKind::Write) {
            let (now, before) = (
                if write { "write" } else { "read" },
                if h.kind == kernel::LockKind::Write { "write" } else { "read" },
            );
            Violation::new(
                Rule::SpinLockImbalance,
                call,
                format!("acquired for {now} by the thread that holds it for {before}: a deadlock on Windows (only reads nest)"),
            )
            .with_object(l as usize)
            .report();
            // A real CPU would spin forever; stop here the way Verifier does.
            kernel::bugcheck(0xC4, [0x1001, l as usize, 0, 0]);
        }
        kernel::check_lock_order(
            call,
            l as usize,
            if write { kernel::LockKind::Write } else { kernel::LockKind::Read },
        );
        let old = kernel::set_irql(DISPATCH_LEVEL);
        if k.sched_here().is_some() {
            // One thread runs at a time: wait (letting the holder run)
            // until the lock can be taken.
            if write {
                k.wait_forever("an RW lock (write)", || x.raw.try_lock_exclusive(), || {});
            } else {
                k.wait_forever("an RW lock (read)", || x.raw.try_lock_shared_recursive(), || {});
            }
        } else if write {
            x.raw.lock_exclusive();
        } else {
            x.raw.lock_shared_recursive();
        }
        kernel::push_held(
            l as usize,
            if write { kernel::LockKind::Write } else { kernel::LockKind::Read },
            st as usize,
        );
        // SAFETY: the caller's lock state.
        unsafe {
            st.write(LOCK_STATE_EX {
                OldIrql: old,
                LockState: if write { RW_STATE_WRITE } else { RW_STATE_READ },
                Flags: flags,
            })
        };
    })
}

unsafe extern "win64" fn NdisAcquireRWLockRead(l: *mut NDIS_RW_LOCK_EX, st: *mut LOCK_STATE_EX, flags: u8) {
    rw_acquire(l, st, flags, false, "NdisAcquireRWLockRead")
}

unsafe extern "win64" fn NdisAcquireRWLockWrite(l: *mut NDIS_RW_LOCK_EX, st: *mut LOCK_STATE_EX, flags: u8) {
    rw_acquire(l, st, flags, true, "NdisAcquireRWLockWrite")
}

unsafe extern "win64" fn NdisReleaseRWLock(l: *mut NDIS_RW_LOCK_EX, st: *mut LOCK_STATE_EX) {
    const CALL: &str = "NdisReleaseRWLock";
    export(CALL, (), |k| {
        check_irql_eq(CALL, DISPATCH_LEVEL);
        let Some(x) = rw(k, l, CALL) else { return };
        if st.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null LockState").with_object(l as usize).report();
            return;
        }
        // The hold this releases: the one whose acquire filled `st`. NDIS
        // reads the hold's state back from that variable; a copy elsewhere
        // is not it (reported, and released all the same, from the copy,
        // so that the run goes on).
        let mut hold = st as usize;
        if let Some(h) = kernel::held_entry(l as usize).filter(|h| h.state != hold)
            && kernel::held_with_state(hold).is_none_or(|o| o.addr != l as usize)
        {
            Violation::new(
                Rule::SpinLockImbalance,
                CALL,
                format!(
                    "released with the LOCK_STATE_EX at {hold:#x}, not the one its acquire filled (at {:#x})",
                    h.state
                ),
            )
            .with_object(l as usize)
            .report();
            hold = h.state;
        }
        // SAFETY: the caller's lock state from the acquire.
        let s = unsafe { *st };
        let held = kernel::pop_held_rw(l as usize, hold);
        let ok = matches!(
            (s.LockState, held),
            (RW_STATE_READ, Some(kernel::LockKind::Read)) | (RW_STATE_WRITE, Some(kernel::LockKind::Write))
        );
        if !ok {
            if let Some(h) = held {
                kernel::push_held(l as usize, h, hold);
            }
            Violation::new(
                Rule::SpinLockImbalance,
                CALL,
                "released an RW lock this thread does not hold with this LOCK_STATE_EX",
            )
            .with_object(l as usize)
            .report();
            return;
        }
        // SAFETY: this thread holds it in this mode (checked).
        unsafe {
            if s.LockState == RW_STATE_READ {
                x.raw.unlock_shared();
            } else {
                x.raw.unlock_exclusive();
            }
            (*st).LockState = 0;
        }
        kernel::set_irql(s.OldIrql);
    })
}

// --- The tables -----------------------------------------------------------------

macro_rules! typed {
    ($v:ident, $module:ident, $dll:expr, $($name:ident => $f:path),* $(,)?) => {
        $(
            let f: ndis_sys::$module::$name = $f;
            $v.push(Export { dll: $dll, name: stringify!($name), addr: f as usize });
        )*
    };
}

/// Every export of the emulated modules, as the driver's imports are bound
/// to them: through the stack gate (`stack`), which runs ndisim's code off
/// the driver's stack (`__chkstk` runs on it; the `DbgPrint` trampolines go
/// through the gate themselves).
pub fn table() -> Vec<Export> {
    let mut v = raw_table();
    let gated: Vec<usize> = crate::stack::thunks(
        &v.iter()
            .filter(|e| !e.name.starts_with("DbgPrint") && e.name != "__chkstk")
            .map(|e| e.addr)
            .collect::<Vec<_>>(),
    );
    for (e, t) in v.iter_mut().filter(|e| !e.name.starts_with("DbgPrint") && e.name != "__chkstk").zip(gated) {
        e.addr = t;
    }
    v
}

/// Every export, at the address of its code.
fn raw_table() -> Vec<Export> {
    let mut v = Vec::new();
    typed!(v, ndis_imports, "ndis.sys",
        NdisRegisterProtocolDriver => crate::ndis::NdisRegisterProtocolDriver,
        NdisDeregisterProtocolDriver => crate::ndis::NdisDeregisterProtocolDriver,
        NdisReEnumerateProtocolBindings => crate::ndis::NdisReEnumerateProtocolBindings,
        NdisOpenAdapterEx => crate::ndis::NdisOpenAdapterEx,
        NdisCompleteBindAdapterEx => crate::ndis::NdisCompleteBindAdapterEx,
        NdisCloseAdapterEx => crate::ndis::NdisCloseAdapterEx,
        NdisCompleteUnbindAdapterEx => crate::ndis::NdisCompleteUnbindAdapterEx,
        NdisCompleteNetPnPEvent => crate::ndis::NdisCompleteNetPnPEvent,
        NdisOidRequest => crate::ndis::NdisOidRequest,
        NdisCancelOidRequest => crate::ndis::NdisCancelOidRequest,
        NdisSendNetBufferLists => crate::ndis::NdisSendNetBufferLists,
        NdisReturnNetBufferLists => crate::ndis::NdisReturnNetBufferLists,
        NdisAllocateNetBufferListPool => crate::ndis::NdisAllocateNetBufferListPool,
        NdisFreeNetBufferListPool => crate::ndis::NdisFreeNetBufferListPool,
        NdisAllocateNetBufferAndNetBufferList => crate::ndis::NdisAllocateNetBufferAndNetBufferList,
        NdisFreeNetBufferList => crate::ndis::NdisFreeNetBufferList,
        NdisAllocateNetBufferList => crate::ndis::NdisAllocateNetBufferList,
        NdisAllocateNetBufferPool => crate::ndis::NdisAllocateNetBufferPool,
        NdisFreeNetBufferPool => crate::ndis::NdisFreeNetBufferPool,
        NdisAllocateNetBuffer => crate::ndis::NdisAllocateNetBuffer,
        NdisFreeNetBuffer => crate::ndis::NdisFreeNetBuffer,
        NdisAllocateMdl => crate::ndis::NdisAllocateMdl,
        NdisFreeMdl => crate::ndis::NdisFreeMdl,
        NdisAllocateSpinLock => NdisAllocateSpinLock,
        NdisFreeSpinLock => NdisFreeSpinLock,
        NdisAcquireSpinLock => NdisAcquireSpinLock,
        NdisReleaseSpinLock => NdisReleaseSpinLock,
        NdisDprAcquireSpinLock => NdisDprAcquireSpinLock,
        NdisDprReleaseSpinLock => NdisDprReleaseSpinLock,
        NdisAllocateRWLock => NdisAllocateRWLock,
        NdisFreeRWLock => NdisFreeRWLock,
        NdisAcquireRWLockRead => NdisAcquireRWLockRead,
        NdisAcquireRWLockWrite => NdisAcquireRWLockWrite,
        NdisReleaseRWLock => NdisReleaseRWLock,
    );
    typed!(v, ntoskrnl_imports, "ntoskrnl.exe",
        ExAllocatePoolWithTag => ExAllocatePoolWithTag,
        ExFreePoolWithTag => ExFreePoolWithTag,
        KeBugCheckEx => KeBugCheckEx,
        KeQuerySystemTimePrecise => KeQuerySystemTimePrecise,
        KeDelayExecutionThread => KeDelayExecutionThread,
        IoCreateDevice => crate::io::IoCreateDevice,
        IoDeleteDevice => crate::io::IoDeleteDevice,
        IoCreateSymbolicLink => crate::io::IoCreateSymbolicLink,
        IoDeleteSymbolicLink => crate::io::IoDeleteSymbolicLink,
        IofCompleteRequest => crate::io::IofCompleteRequest,
        IoAllocateWorkItem => crate::io::IoAllocateWorkItem,
        IoQueueWorkItem => crate::io::IoQueueWorkItem,
        IoFreeWorkItem => crate::io::IoFreeWorkItem,
        IoAcquireCancelSpinLock => crate::io::IoAcquireCancelSpinLock,
        IoReleaseCancelSpinLock => crate::io::IoReleaseCancelSpinLock,
        MmMapLockedPagesSpecifyCache => crate::io::MmMapLockedPagesSpecifyCache,
        MmUnmapLockedPages => crate::io::MmUnmapLockedPages,
        MmProbeAndLockPages => crate::io::MmProbeAndLockPages,
        MmUnlockPages => crate::io::MmUnlockPages,
        IoAllocateMdl => crate::io::IoAllocateMdl,
        IoBuildPartialMdl => crate::io::IoBuildPartialMdl,
        IoFreeMdl => crate::io::IoFreeMdl,
        ObOpenObjectByPointer => crate::io::ObOpenObjectByPointer,
        ZwSetSecurityObject => crate::io::ZwSetSecurityObject,
        ZwClose => crate::io::ZwClose,
        SeTokenIsAdmin => crate::io::SeTokenIsAdmin,
        RtlCreateSecurityDescriptor => crate::io::RtlCreateSecurityDescriptor,
        RtlCreateAcl => crate::io::RtlCreateAcl,
        RtlAddAccessAllowedAce => crate::io::RtlAddAccessAllowedAce,
        RtlSetDaclSecurityDescriptor => crate::io::RtlSetDaclSecurityDescriptor,
    );
    typed!(v, hal_imports, "HAL.dll",
        KeQueryPerformanceCounter => KeQueryPerformanceCounter,
    );
    // Exports without a declared pointer type in ndis-sys.
    let complete: ndis_sys::ntoskrnl_imports::IofCompleteRequest = crate::io::IofCompleteRequest;
    v.push(Export { dll: "ntoskrnl.exe", name: "IoCompleteRequest", addr: complete as usize });
    let cancel: unsafe extern "win64" fn(*mut IRP) -> BOOLEAN = crate::io::IoCancelIrp;
    v.push(Export { dll: "ntoskrnl.exe", name: "IoCancelIrp", addr: cancel as usize });
    v.push(Export { dll: "ntoskrnl.exe", name: "DbgPrintEx", addr: crate::dbg::dbgprintex_addr() });
    v.push(Export { dll: "ntoskrnl.exe", name: "DbgPrint", addr: crate::dbg::dbgprint_addr() });
    v.push(Export { dll: "ntoskrnl.exe", name: "__chkstk", addr: crate::stack::chkstk_addr() });
    v
}

/// Whether `name` is one the driver's calls of an export are reported
/// and aimed at by (`Sim::stall_call`): an export's name, but
/// `IofCompleteRequest` for `IoCompleteRequest`.
pub fn reports_calls_of(name: &str) -> bool {
    name == "IofCompleteRequest" || (name != "IoCompleteRequest" && raw_table().iter().any(|e| e.name == name))
}

/// The address of `dll!name` (module names compare case-insensitively).
pub fn resolve(table: &[Export], dll: &str, name: &str) -> Option<usize> {
    table.iter().find(|e| e.dll.eq_ignore_ascii_case(dll) && e.name == name).map(|e| e.addr)
}

#[cfg(test)]
mod tests {
    use super::{pool_type_problem, tag_problem};

    #[test]
    fn pool_types_are_the_three_a_driver_may_pass() {
        // NonPagedPool, PagedPool, NonPagedPoolNx, each also cold.
        for ok in [0, 1, 512, 0x100, 0x101, 0x300] {
            assert_eq!(pool_type_problem(ok), None, "{ok:#x}");
        }
        for (bad, what) in [
            (0x210, "POOL_RAISE_IF_ALLOCATION_FAILURE"),
            (0x11, "POOL_RAISE_IF_ALLOCATION_FAILURE"),
            (2, "must-succeed"),
            (6, "must-succeed"),
            (4, "reserved"),
            (516, "reserved"),
            (544, "reserved"),
            (33, "session"),
            (8, "not a POOL_TYPE"),
            (0x400, "not a POOL_TYPE"),
        ] {
            let why = pool_type_problem(bad).unwrap_or_else(|| panic!("{bad:#x} passed"));
            assert!(why.contains(what), "{bad:#x}: {why}");
        }
    }

    #[test]
    fn pool_tags_are_one_to_four_printable_characters() {
        for ok in [u32::from_le_bytes(*b"RNic"), u32::from_le_bytes(*b"a b~"), 0x0061_6263, 0x41] {
            assert_eq!(tag_problem(ok), None, "{ok:#x}");
        }
        // A zero byte below a character, a control character, DEL, and the
        // PROTECTED_POOL bit.
        for (bad, at) in
            [(0x4100_0041, 1), (u32::from_le_bytes(*b"a\nbc"), 1), (0x7F, 0), (0x8000_0000 | 0x4141_4141, 3)]
        {
            let why = tag_problem(bad).unwrap_or_else(|| panic!("{bad:#x} passed"));
            assert!(why.contains(&format!("byte {at}")), "{bad:#x}: {why}");
        }
    }
}
