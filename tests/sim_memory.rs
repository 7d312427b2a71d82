//! Many simulations in one process (as a fuzzer runs them): once a
//! simulation has unloaded, what it mapped and allocated is given back or
//! reused, so neither the process's mappings nor its resident memory grow
//! with the number of simulations. (One libFuzzer process once ran out of
//! mappings after about 99,000 runs of `driver_ioctls`.)
//!
//! `SIM_MEMORY_RUNS=N` runs N simulations and prints each one's growth
//! (`--nocapture`), for measuring.

use ndisim::{InjectOpts, RestartSpec};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The heap bytes live now (the process's Rust allocations: ndisim's and
/// the test's).
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call goes to `System` unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: per the caller.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: per the caller.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: per the caller.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: per the caller.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Simulations started so far: every other one runs under the
/// deterministic scheduler.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// One full simulation: load, bind, open, IOCTLs, a UMEM attached and
/// frames received into it, detach, a pause and restart, a status
/// indication, an unbind and a bind again, close, unload clean.
fn one() {
    let i = STARTED.fetch_add(1, Ordering::Relaxed);
    let sim = start_with(&["null"], |b| if i % 2 == 1 { b.deterministic(i as u64) } else { b });
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let r = h.ioctl(IOCTL_RAWNIC_GET_VERSION, &empty(), 64);
    assert_eq!(r.status, 0);
    let u = User::attach(&h, SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    let f = frame(BROADCAST, PEER, 0x88b5, 100, 1);
    sim.inject(a, &[&f, &f], &InjectOpts::default()).unwrap();
    assert_eq!(u.rx().len(), 2);
    let _ = stats(&h);
    detach(&h, u);
    // A second handle, left open: the unload closes it.
    let h2 = sim.open().expect("a second handle");
    let _ = list(&h2);
    h.close();
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    sim.indicate_status(a, 0x4001_0BAD, &[7; 24], true).unwrap();
    sim.unbind(a).unwrap();
    sim.bind(a).unwrap();
    finish(sim);
    drop(h2);
}

/// Lines of /proc/self/maps, resident bytes and live heap bytes.
fn usage() -> (usize, usize, isize) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    (maps, pages * 4096, LIVE.load(Ordering::Relaxed))
}

/// The process's threads and open file descriptors.
fn threads() -> (usize, usize) {
    let n = |d| std::fs::read_dir(d).unwrap().count();
    // A thread just joined may still be listed for a moment while the
    // kernel reaps it (longer on a loaded machine): the count once it
    // holds still for 20 ms.
    let mut last = (n("/proc/self/task"), n("/proc/self/fd"));
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = (n("/proc/self/task"), n("/proc/self/fd"));
        if now == last {
            break;
        }
        last = now;
    }
    last
}

// ---------------------------------------------------------------------------
// Each simulation on a thread of its own, started as a foreign runtime
// starts threads (ASan's, under which the fuzzer runs): with a small
// alternate signal stack of its own, which the runtime takes down and
// unmaps at the thread's end, after the thread locals' destructors, if it
// finds it installed then.
// ---------------------------------------------------------------------------

const PAGE: usize = 4096;
/// The runtime's alternate stack, after a guard page (so that mappings
/// left behind do not merge with their neighbours and hide in the count).
const ALT: usize = 16 * 1024;
/// Threads whose runtime did not find its alternate stack at their end.
static ALT_LOST: AtomicUsize = AtomicUsize::new(0);
/// What went wrong on a simulation's thread.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// The runtime's end of a thread (a pthread key's destructor).
extern "C" fn runtime_thread_end(mapping: *mut libc::c_void) {
    // SAFETY: queries and disables this thread's alternate stack; unmaps
    // the runtime's mapping if it found its stack (else, as ASan, leaves it).
    unsafe {
        let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        let mut now: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(&off, &mut now);
        if now.ss_flags & libc::SS_DISABLE == 0 && now.ss_sp as usize == mapping as usize + PAGE {
            libc::munmap(mapping, PAGE + ALT);
        } else {
            ALT_LOST.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn runtime_key() -> libc::pthread_key_t {
    static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: a key whose destructor is `runtime_thread_end`.
        assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(runtime_thread_end)) }, 0);
        key
    })
}

extern "C" fn runtime_thread(_: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: a guard page and a stack, installed as this thread's
    // alternate stack; the key's destructor takes it down.
    unsafe {
        let m = libc::mmap(
            std::ptr::null_mut(),
            PAGE + ALT,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(m, libc::MAP_FAILED);
        libc::mprotect(m, PAGE, libc::PROT_NONE);
        let ss = libc::stack_t { ss_sp: m.cast::<u8>().add(PAGE).cast(), ss_flags: 0, ss_size: ALT };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        libc::pthread_setspecific(runtime_key(), m);
    }
    if let Err(e) = std::panic::catch_unwind(one) {
        let what = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
        *FAILED.lock().unwrap() = Some(what.unwrap_or_else(|| "a panic".into()));
    }
    std::ptr::null_mut()
}

/// `one` on a thread of its own, as above.
fn one_on_a_runtime_thread() {
    let mut t: libc::pthread_t = 0;
    // SAFETY: a thread running `runtime_thread`, joined at once.
    unsafe {
        assert_eq!(libc::pthread_create(&mut t, std::ptr::null(), runtime_thread, std::ptr::null_mut()), 0);
        assert_eq!(libc::pthread_join(t, std::ptr::null_mut()), 0);
    }
    if let Some(e) = FAILED.lock().unwrap().take() {
        panic!("a simulation failed: {e}");
    }
}

#[test]
fn simulations_leave_no_mappings_or_memory_behind() {
    let runs: usize = std::env::var("SIM_MEMORY_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let verbose = std::env::var_os("SIM_MEMORY_RUNS").is_some();
    let warm = 20.min(runs / 3);
    for _ in 0..warm {
        one_on_a_runtime_thread();
    }
    let (maps0, rss0, heap0) = usage();
    let threads0 = threads();
    let mut last = (maps0, rss0, heap0);
    for i in 0..runs - warm {
        one_on_a_runtime_thread();
        let now = usage();
        if verbose {
            eprintln!(
                "run {}: maps {} ({:+}), rss {} KiB ({:+} KiB), heap {} B ({:+} B)",
                warm + i + 1,
                now.0,
                now.0 as isize - last.0 as isize,
                now.1 / 1024,
                (now.1 as isize - last.1 as isize) / 1024,
                now.2,
                now.2 - last.2
            );
        }
        last = now;
    }
    let (maps1, rss1, heap1) = usage();
    let threads1 = threads();
    let n = runs - warm;
    eprintln!(
        "{n} simulations after {warm}: maps {maps0} -> {maps1}, rss {} -> {} KiB ({:.1} KiB a simulation), \
         heap {heap0} -> {heap1} B ({:.0} B a simulation), {} alternate stacks lost",
        rss0 / 1024,
        rss1 / 1024,
        (rss1 as f64 - rss0 as f64) / 1024.0 / n as f64,
        (heap1 - heap0) as f64 / n as f64,
        ALT_LOST.load(Ordering::Relaxed)
    );
    assert_eq!(ALT_LOST.load(Ordering::Relaxed), 0, "threads' own alternate stacks were left replaced");
    assert_eq!(threads1, threads0, "every thread and file of a simulation is gone when it ends (threads, fds)");
    // A few mappings may come and go (malloc's arenas, thread stacks); one
    // a simulation would be hundreds.
    assert!(maps1 <= maps0 + 16, "mappings grew from {maps0} to {maps1} over {n} simulations");
    // What a simulation allocated is freed once it is over: the heap is as
    // it was, give or take what the allocator's and the runtime's caches
    // hold (a leak of a few hundred bytes a simulation shows).
    assert!(heap1 - heap0 < 32 * 1024, "the heap grew from {heap0} to {heap1} bytes over {n} simulations");
    // Resident memory: allocator noise only, no page a simulation.
    assert!(
        rss1 <= rss0 + n * 1024 + 4 * 1024 * 1024,
        "resident memory grew from {rss0} to {rss1} over {n} simulations"
    );
}
