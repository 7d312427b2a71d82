//! The stack switch, the gate and the budget checks, with Rust closures
//! standing in for driver code.

use super::*;
use crate::kernel::{Config, Kernel};
use crate::verifier::Checksum;
use std::sync::Arc;

fn kernel(budget: usize) -> Arc<Kernel> {
    Kernel::new(
        Config {
            watchdog: std::time::Duration::from_secs(1),
            echo_dbgprint: false,
            forbidden_debug: Vec::new(),
            deterministic: None,
            script: Vec::new(),
            low_resources: None,
            stack_budget: budget,
            jitter: None,
            preempt: None,
            prompt_pnp: false,
            points_after: false,
            slow: None,
            garbage: 0,
            record_outputs: false,
        },
        Checksum::Off,
    )
}

fn on_driver_stack(sp: usize) -> bool {
    T.with(|t| sp >= t.lo.get() && sp < t.hi.get())
}

thread_local! {
    static K: Cell<*const Kernel> = const { Cell::new(std::ptr::null()) };
    static INNER_SP: Cell<usize> = const { Cell::new(0) };
}

/// An export with seven arguments (three on the stack, as
/// `IoCreateDevice` has); it runs a nested handler when `a` is 1.
unsafe extern "win64" fn export7(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64) -> u64 {
    assert!(!on_driver_stack(rsp()), "the export runs on the thread's own stack");
    if a == 1 {
        // SAFETY: set by the test around the call.
        let k = unsafe { &*K.with(|k| k.get()) };
        let sp = run_driver(k, "Nested", rsp);
        INNER_SP.with(|c| c.set(sp));
    }
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g
}

type Export7 = unsafe extern "win64" fn(u64, u64, u64, u64, u64, u64, u64) -> u64;

fn gated() -> Export7 {
    let t = thunks(&[export7 as Export7 as usize])[0];
    // SAFETY: the thunk jumps (through the gate) to `export7`.
    unsafe { std::mem::transmute::<usize, Export7>(t) }
}

/// A frame of `n` KiB (touched), then a call to the export.
#[inline(never)]
fn deep_call<const N: usize>(f: Export7, a: u64) -> u64 {
    let mut buf = [1u8; N];
    std::hint::black_box(&mut buf);
    // SAFETY: the gated export.
    unsafe { f(a, 1, 1, 1, 1, 1, u64::from(buf[N - 1])) }
}

#[test]
fn the_gate_switches_stacks_and_passes_every_argument() {
    let k = kernel(DEFAULT_BUDGET);
    let f = gated();
    let (on_drv, r) = run_driver(&k, "Outer", || {
        // SAFETY: the gated export.
        (on_driver_stack(rsp()), unsafe { f(2, 3, 5, 7, 11, 13, 17) })
    });
    assert!(on_drv, "the handler runs on the driver stack");
    assert_eq!(r, 2 + 6 + 15 + 28 + 55 + 78 + 119);
    // Off the driver stack, the gate goes straight to the export.
    // SAFETY: as above.
    assert_eq!(unsafe { f(0, 0, 0, 0, 0, 0, 1) }, 7);
    let s = k.stack.report(&k);
    assert!(s.handlers.iter().any(|h| h.handler == "Outer" && h.depth > 0 && h.depth < 1024), "{s}");
}

#[test]
fn a_nested_handler_goes_on_below_the_driver_frames() {
    let k = kernel(DEFAULT_BUDGET);
    K.with(|c| c.set(Arc::as_ptr(&k)));
    let f = gated();
    let outer_sp = run_driver(&k, "Outer", || {
        deep_call::<6144>(f, 1);
        rsp()
    });
    let inner = INNER_SP.with(|c| c.get());
    assert!(on_driver_stack(inner), "the nested handler runs on the driver stack");
    assert!(inner + 6144 < outer_sp, "below the outer handler's 6 KiB frame: {outer_sp:#x} {inner:#x}");
    let s = k.stack.report(&k);
    let d = s.deepest().expect("a sample");
    assert_eq!((d.handler.as_str(), d.innermost.as_str()), ("Outer", "Outer"));
    assert!((6144..6144 + 512).contains(&d.depth), "{s}");
    assert!(k.verifier.violations().is_empty());
    // The header is as it was: no driver code on the stack.
    T.with(|t| assert_eq!(slot_of(t).header().resume_drv.get(), 0));
}

#[test]
fn a_sample_past_the_budget_is_a_violation_once_per_handler() {
    let k = kernel(4096);
    let f = gated();
    for _ in 0..3 {
        run_driver(&k, "Deep", || deep_call::<6144>(f, 0));
    }
    run_driver(&k, "Shallow", || deep_call::<1024>(f, 0));
    let v = k.verifier.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].rule, v[0].call.as_str()), (crate::verifier::Rule::StackBudget, "Deep"));
    let s = k.stack.report(&k);
    assert_eq!(s.handlers.iter().map(|h| h.handler.as_str()).collect::<Vec<_>>(), ["Deep", "Shallow"]);
}

#[test]
fn a_write_past_the_budget_that_no_sample_saw_is_found_at_unload() {
    let k = kernel(DEFAULT_BUDGET);
    // Below the budget line, but not in the words just under it that each
    // return checks: only the high-water mark at unload sees it.
    run_driver(&k, "Leaf", || {
        let p = (rsp() - DEFAULT_BUDGET - 2048) as *mut u64;
        // SAFETY: free memory of this thread's driver stack.
        unsafe { p.write_volatile(1) };
    });
    assert!(k.verifier.violations().is_empty());
    let s = k.stack.report(&k);
    let v = k.verifier.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].call, "driver code");
    // (At least that deep: the closure may run with no frame of its own
    // in an optimised build.)
    assert!(s.high_water >= DEFAULT_BUDGET + 2048 && s.high_water < DEFAULT_BUDGET + 2048 + 512, "{s}");
}

#[test]
fn a_panic_in_a_handler_goes_on_from_the_thread_s_own_stack() {
    let k = kernel(DEFAULT_BUDGET);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_driver(&k, "Panics", || panic!("boom"))));
    assert!(r.is_err());
    // The thread can run driver code again, from the top of its stack.
    T.with(|t| assert_eq!(slot_of(t).header().resume_drv.get(), 0));
    assert!(run_driver(&k, "Again", || on_driver_stack(rsp())));
}

/// The alternate stack a thread's runtime gave it (ASan's, say), and what
/// that runtime found when the thread ended, after ndisim's own thread
/// locals went.
static FOREIGN_ALT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static FOUND_AT_EXIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);
static REPLACED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
const FOREIGN: usize = 16 * 1024;

/// What ASan's runtime does at a thread's end (a pthread key's destructor:
/// after the thread locals' destructors): takes the alternate stack it
/// finds down and unmaps it; one that is not its own stays mapped.
extern "C" fn foreign_exit(_: *mut libc::c_void) {
    use std::sync::atomic::Ordering;
    // SAFETY: queries and disables this thread's alternate stack.
    unsafe {
        let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        let mut now: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(&off, &mut now);
        let found = if now.ss_flags & libc::SS_DISABLE == 0 { now.ss_sp as usize } else { 0 };
        FOUND_AT_EXIT.store(found, Ordering::SeqCst);
    }
    // SAFETY: the mapping the thread made, whatever it found (the test
    // process must not keep it).
    unsafe { libc::munmap(FOREIGN_ALT.load(Ordering::SeqCst) as *mut libc::c_void, FOREIGN) };
}

/// A thread as a foreign runtime starts it: its own small alternate stack,
/// then driver code.
extern "C" fn foreign_thread(k: *mut libc::c_void) -> *mut libc::c_void {
    use std::sync::atomic::Ordering;
    // SAFETY: a fresh mapping installed as this thread's alternate stack;
    // the key's destructor takes it down when the thread ends.
    unsafe {
        let p = crate::pool::map_rw(FOREIGN).expect("a mapping");
        FOREIGN_ALT.store(p as usize, Ordering::SeqCst);
        let ss = libc::stack_t { ss_sp: p, ss_flags: 0, ss_size: FOREIGN };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        let mut key: libc::pthread_key_t = 0;
        libc::pthread_key_create(&mut key, Some(foreign_exit));
        libc::pthread_setspecific(key, p);
    }
    // SAFETY: the test's kernel, alive until the thread is joined.
    let k = unsafe { &*(k as *const Kernel) };
    run_driver(k, "Foreign", || ());
    // SAFETY: queries this thread's alternate stack into a local.
    let now = unsafe {
        let mut now: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut now);
        now
    };
    REPLACED.store(now.ss_sp as usize != FOREIGN_ALT.load(Ordering::SeqCst), Ordering::SeqCst);
    std::ptr::null_mut()
}

/// ndisim gives a thread whose alternate stack is too small one of its own,
/// and puts the thread's back when the thread ends: the runtime that made
/// it (ASan's) frees only the one it finds then, so one left replaced was
/// a mapping lost for each thread of each simulation (a fuzzer's process
/// ran out of them after about 99,000 simulations).
#[test]
fn a_thread_s_own_alternate_stack_is_put_back_when_it_ends() {
    use std::sync::atomic::Ordering;
    let k = kernel(DEFAULT_BUDGET);
    let mut t: libc::pthread_t = 0;
    // SAFETY: a thread that runs `foreign_thread` on the kernel, joined
    // before the kernel goes.
    unsafe {
        assert_eq!(
            libc::pthread_create(&mut t, std::ptr::null(), foreign_thread, Arc::as_ptr(&k) as *mut libc::c_void),
            0
        );
        assert_eq!(libc::pthread_join(t, std::ptr::null_mut()), 0);
    }
    assert!(REPLACED.load(Ordering::SeqCst), "ndisim's alternate stack replaced the small one while the thread ran");
    assert_eq!(
        FOUND_AT_EXIT.load(Ordering::SeqCst),
        FOREIGN_ALT.load(Ordering::SeqCst),
        "at the thread's end its runtime finds its own alternate stack again"
    );
}
