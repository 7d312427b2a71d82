//! Preemption inside the driver's code (free-running only,
//! `SimBuilder::preempt`).
//!
//! Jitter stalls a thread where it calls an export; a race whose window
//! lies between two of the driver's instructions, with no export call in
//! between (a check and the use it guards), stays a few instructions wide.
//! On Windows such a window opens whenever the CPU running it is held up:
//! an interrupt, a cache miss on a contended line, or, in a virtual
//! machine, the hypervisor descheduling the virtual CPU at any instruction
//! (with a spin lock held or not) while the other CPUs run on.
//!
//! Here a preemptor thread, up to `rate` times a second, picks one of the
//! threads that are inside a call into the driver at that moment and
//! sends it a real-time signal carrying a stall of 5 to 300 µs (the next
//! signal waits for that stall to end as well, so no thread is held up
//! more than about half of the time). The
//! handler stalls the thread (`nanosleep`) only when the signal caught it
//! executing the driver's own instructions (its `rip` inside a loaded
//! image), so the stall lands between two of the driver's instructions
//! anywhere, and the other threads run meanwhile. The handler reads no
//! lock and allocates nothing; it runs on the thread's alternate signal
//! stack (a thread without one is never picked: the driver's small kernel
//! stack must not carry a handler's frames).

use crate::kernel::Kernel;
use crate::verifier::lock;
use std::cell::{OnceCell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// Stalls the signal handler made inside the driver's code (all
/// simulations of the process).
static STALLS: AtomicU64 = AtomicU64::new(0);

/// The signal: a real-time one well above those glibc keeps for itself.
fn signal() -> i32 {
    libc::SIGRTMIN() + 6
}

/// A thread that calls into the driver.
pub(crate) struct Slot {
    tid: i32,
    /// Calls into the driver it is inside now (nested through exports).
    depth: AtomicU32,
}

/// One simulation's preemption: its threads, the preemptor's stop flag
/// and how often it strikes.
pub(crate) struct Preempt {
    slots: Mutex<Vec<Arc<Slot>>>,
    stop: AtomicBool,
    rate: u32,
    seed: u64,
}

thread_local! {
    /// This thread's slot in each simulation it called the driver for
    /// (a weak link to the simulation's `Preempt`, and the slot).
    static MINE: RefCell<Vec<(Weak<Preempt>, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
    /// Whether this thread has an alternate signal stack (asked once).
    static ALTSTACK: OnceCell<bool> = const { OnceCell::new() };
}

impl Preempt {
    /// Preemption `rate` times a second, with stalls drawn from `seed`.
    pub(crate) fn new(rate: u32, seed: u64) -> Arc<Preempt> {
        install_handler();
        Arc::new(Preempt { slots: Mutex::new(Vec::new()), stop: AtomicBool::new(false), rate: rate.max(1), seed })
    }

    /// This thread's slot, registered at its first call into the driver;
    /// `None` for a thread with no alternate signal stack.
    fn slot(self: &Arc<Self>) -> Option<Arc<Slot>> {
        MINE.with(|m| {
            let mut m = m.borrow_mut();
            // (A dead simulation's entry cannot match: its `Weak` keeps
            // the allocation, so no new `Preempt` has its address.)
            if let Some((_, s)) = m.iter().find(|(p, _)| std::ptr::eq(p.as_ptr(), Arc::as_ptr(self))) {
                return Some(s.clone());
            }
            if !ALTSTACK.with(|a| *a.get_or_init(has_altstack)) {
                return None;
            }
            m.retain(|(p, _)| p.strong_count() > 0);
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let s = Arc::new(Slot { tid, depth: AtomicU32::new(0) });
            lock(&self.slots).push(s.clone());
            m.push((Arc::downgrade(self), s.clone()));
            Some(s)
        })
    }

    /// Runs `f`, a call into the driver, with this thread open to
    /// preemption while it lasts.
    pub(crate) fn around<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        let Some(s) = self.slot() else { return f() };
        s.depth.fetch_add(1, Ordering::AcqRel);
        struct Out<'a>(&'a Slot);
        impl Drop for Out<'_> {
            fn drop(&mut self) {
                self.0.depth.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _out = Out(&s);
        f()
    }

    /// The preemptor's loop, until `stop`.
    pub(crate) fn run(&self) {
        let period = Duration::from_nanos(1_000_000_000 / u64::from(self.rate));
        let mut rng = crate::rng::Rng::new(self.seed ^ 0x5052_4545_4D50_5400);
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let mut inside = Vec::new();
        // The last stall sent: the next signal waits for it to end too, so
        // a thread that stays inside the driver (spinning on a flag, say)
        // is stalled at most about half of the time, and goes on.
        let mut last = Duration::ZERO;
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(period + last);
            last = Duration::ZERO;
            inside.clear();
            inside.extend(lock(&self.slots).iter().filter(|s| s.depth.load(Ordering::Acquire) > 0).map(|s| s.tid));
            if inside.is_empty() {
                continue;
            }
            let tid = inside[rng.below(inside.len() as u64) as usize];
            let us = 5 + rng.below(296);
            send(pid, tid, us);
            last = Duration::from_micros(us);
        }
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Stalls made inside the driver's code so far, in this process.
pub fn stalls() -> u64 {
    STALLS.load(Ordering::Relaxed)
}

/// Whether this thread has an alternate signal stack.
fn has_altstack() -> bool {
    // SAFETY: a query only (a null new stack); `old` is written.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut old) == 0 && old.ss_flags & libc::SS_DISABLE == 0 && old.ss_size > 0
    }
}

/// Sends thread `tid` the signal, with a stall of `us` microseconds as
/// its value.
fn send(pid: i32, tid: i32, us: u64) {
    // SAFETY: a zeroed siginfo filled as rt_tgsigqueueinfo expects for a
    // queued signal (SI_QUEUE, the sender's pid and uid, the value); the
    // thread may have exited (ESRCH), which is harmless.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let p = &mut info as *mut libc::siginfo_t as *mut i32;
        // si_signo, si_errno, si_code; then (x86-64) the pid, the uid and
        // the value at byte offsets 16, 20 and 24.
        *p = signal();
        *p.add(2) = libc::SI_QUEUE;
        *p.add(4) = pid;
        *p.add(5) = libc::getuid() as i32;
        *(p.add(6) as *mut u64) = us;
        libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, signal(), &info as *const libc::siginfo_t);
    }
}

static INSTALLED: OnceLock<()> = OnceLock::new();

fn install_handler() {
    INSTALLED.get_or_init(|| {
        // SAFETY: plain sigaction setup for a handler that only reads the
        // signal's context and sleeps (both async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(signal(), &sa, std::ptr::null_mut());
        }
    });
}

extern "C" fn on_signal(_sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler; the value is where `send` put it.
    let (rip, us) = unsafe {
        let uc = ctx as *const libc::ucontext_t;
        let rip = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let us = *((info as *const u8).add(24) as *const u64);
        (rip, us)
    };
    if !matches!(crate::pe::locate(rip), crate::pe::Where::Image { .. }) {
        return;
    }
    STALLS.fetch_add(1, Ordering::Relaxed);
    let ts = libc::timespec { tv_sec: 0, tv_nsec: (us.min(1000) * 1000) as libc::c_long };
    // SAFETY: nanosleep is async-signal-safe; an interrupted sleep is
    // simply shorter.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// Starts `k`'s preemptor thread, if its simulation has preemption.
pub(crate) fn start(k: &Arc<Kernel>) {
    if let Some(p) = &k.preempt {
        let p = p.clone();
        let h = std::thread::Builder::new()
            .name("ndisim-preempt".into())
            .spawn(move || p.run())
            .expect("spawn the preemptor");
        lock(&k.threads).push((h, 0));
    }
}
