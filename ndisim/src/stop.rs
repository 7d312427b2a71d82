//! The fatal stops: bug checks (`KeBugCheckEx`, and those ndisim raises
//! as Windows would), and faults in driver code (a host signal handler
//! that tells a fault in the image, and a stack overflow, from one in
//! ndisim), each reported with the last debug output and the verifier's
//! findings before the process ends.

use crate::kernel::*;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a fatal stop aborts the process instead of exiting it.
static ABORT_ON_STOP: AtomicBool = AtomicBool::new(false);

/// Makes every fatal stop (a bug check, a fault in driver code, a
/// deadlock of the deterministic scheduler) end the process with `abort()`
/// (SIGABRT) instead of `_exit(code)`, after the same report on fd 2: a
/// harness that catches crashes by signal, such as libFuzzer, which saves
/// the input that crashed, then sees the stop as a crash rather than as the
/// process ending quietly mid-run. Off by default (the exit codes are what
/// the explorer and the tests read).
pub fn abort_on_stop(on: bool) {
    ABORT_ON_STOP.store(on, Ordering::Release);
}

/// Ends the process after a fatal stop: `_exit(code)`, or `abort()` after
/// `abort_on_stop(true)`. Both are async-signal-safe (the fault handler
/// calls this).
pub(crate) fn stop_exit(code: i32) -> ! {
    if ABORT_ON_STOP.load(Ordering::Acquire) {
        // SAFETY: raises SIGABRT; nothing of ours runs after it.
        unsafe { libc::abort() }
    }
    // SAFETY: ends the process at once, as a stopped machine does.
    unsafe { libc::_exit(code) }
}

/// Writes to fd 2 directly: never captured by the test harness, usable
/// while the process is going down.
pub(crate) fn write_stderr(s: &str) {
    let mut b = s.as_bytes();
    while !b.is_empty() {
        // SAFETY: writing a valid buffer to fd 2.
        let n = unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            break;
        }
        b = &b[n as usize..];
    }
}

/// `KeBugCheckEx`: the machine stops. ndisim prints the stop code, what it
/// means for rawnic's own code, the last debug output and the verifier's
/// findings so far, then ends the process with `EXIT_BUGCHECK`.
/// A bug check that ndisim itself raises (as Windows would), with what it
/// found.
pub(crate) fn bugcheck_with(code: u32, p: [usize; 4], why: &str) -> ! {
    write_stderr(&format!("\n*** ndisim: {why}\n"));
    bugcheck(code, p)
}

pub(crate) fn bugcheck(code: u32, p: [usize; 4]) -> ! {
    let mut s = format!(
        "\n*** ndisim: STOP (KeBugCheckEx) {code:#010X} ({:#x}, {:#x}, {:#x}, {:#x})\n",
        p[0], p[1], p[2], p[3]
    );
    if code == rawnic_proto::BUGCHECK_PANIC {
        // SAFETY: rawnic's panic handler passes a NUL-terminated static
        // string (or 0); read at most 512 bytes of it.
        let file = unsafe { read_cstr(p[0] as *const u8, 512) };
        s.push_str(&format!("*** driver panic at {file}:{}:{}\n", p[1], p[2]));
    }
    if let Some(k) = kernel() {
        s.push_str(&format!("*** called from thread {:?}\n", std::thread::current().name()));
        let tail = k.dbg.tail(8);
        if !tail.is_empty() {
            s.push_str("*** last debug output:\n");
            for l in tail {
                s.push_str(&format!("    {l}\n"));
            }
        }
        let v = k.verifier.violations();
        s.push_str(&format!("*** verifier: {} violation(s) before the stop\n", v.len()));
        for v in v {
            s.push_str(&format!("    {v}\n"));
        }
    }
    write_stderr(&s);
    stop_exit(EXIT_BUGCHECK)
}

/// Reads a NUL-terminated string of at most `max` bytes.
///
/// # Safety
/// `p` is null or readable up to its NUL or `max` bytes.
pub(crate) unsafe fn read_cstr(p: *const u8, max: usize) -> String {
    if p.is_null() {
        return String::from("(null)");
    }
    let mut v = Vec::new();
    for i in 0..max {
        // SAFETY: per the caller.
        let b = unsafe { *p.add(i) };
        if b == 0 {
            break;
        }
        v.push(b);
    }
    String::from_utf8_lossy(&v).into_owned()
}

// ---------------------------------------------------------------------------
// Faults in driver code
// ---------------------------------------------------------------------------

static OLD_ACTIONS: OnceLock<Vec<(i32, libc::sigaction)>> = OnceLock::new();

unsafe extern "C" {
    // glibc's <execinfo.h>; not in the libc crate.
    fn backtrace(buffer: *mut *mut libc::c_void, size: libc::c_int) -> libc::c_int;
    fn backtrace_symbols_fd(buffer: *const *mut libc::c_void, size: libc::c_int, fd: libc::c_int);
}

/// Reports a fault in host code (ndisim or the harness) on fd 2: the
/// signal, rip, the address, what special pool knows of it, the thread's
/// name and a native backtrace. Runs in the fault handler: no allocation
/// (backtrace's unwinder was loaded when the handler was installed).
fn host_fault(sig: i32, rip: usize, addr: usize) {
    host_fault_line(sig, rip, addr);
    let mut frames = [std::ptr::null_mut::<libc::c_void>(); 40];
    // SAFETY: backtrace fills at most `frames.len()` entries and
    // backtrace_symbols_fd only reads them.
    unsafe {
        let n = backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int);
        backtrace_symbols_fd(frames.as_ptr(), n, 2);
    }
}

/// The first line of [`host_fault`]'s report (its own frame: the
/// alternate signal stack is small, and backtrace needs what is left).
#[inline(never)]
fn host_fault_line(sig: i32, rip: usize, addr: usize) {
    use std::fmt::Write;
    let mut b = StackBuf { buf: [0; 1024], len: 0 };
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into `name`.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    let name = std::str::from_utf8(&name[..name.iter().position(|&c| c == 0).unwrap_or(16)]).unwrap_or("?");
    let _ = write!(
        b,
        "\n*** ndisim: HOST FAULT: signal {sig} in ndisim or harness code, thread {name:?}, rip {rip:#x}, address {addr:#x}"
    );
    describe_addr(addr, &mut b);
    let _ = writeln!(b);
    // SAFETY: writing our stack buffer to fd 2.
    unsafe { libc::write(2, b.buf.as_ptr().cast(), b.len) };
}

/// Installs the handler that reports faults in driver code (once per
/// process). Faults elsewhere go to the handler that was there before.
pub(crate) fn install_fault_handler() {
    OLD_ACTIONS.get_or_init(|| {
        let mut olds = Vec::new();
        let mut frame = [std::ptr::null_mut::<libc::c_void>(); 1];
        // SAFETY: loads the unwinder backtrace uses now, so the fault
        // handler's call does not (that one must not allocate).
        unsafe { backtrace(frame.as_mut_ptr(), 1) };
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL] {
            // SAFETY: plain sigaction setup; the handler only reads
            // atomics, formats into a stack buffer and writes to fd 2.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = fault_handler as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut old) == 0 {
                    olds.push((sig, old));
                }
            }
        }
        olds
    });
}

/// Driver code ran off the end of its kernel stack (into the guard below
/// it): Windows stops with bug check 0x7F, UNEXPECTED_KERNEL_MODE_TRAP,
/// EXCEPTION_DOUBLE_FAULT (the fault cannot be delivered on the stack that
/// faulted). Runs in the fault handler, on the alternate signal stack.
fn stack_overflow(rip: usize, addr: usize, at_rip: &crate::pe::Where, outer: &str, inner: &str) -> ! {
    use std::fmt::Write;
    let mut b = StackBuf { buf: [0; 1024], len: 0 };
    let _ = write!(
        b,
        "\n*** ndisim: STOP 0x0000007F (0x8, 0, 0, 0) UNEXPECTED_KERNEL_MODE_TRAP: double fault, the driver overflowed its {}-byte kernel stack in {outer}",
        crate::stack::KERNEL_STACK
    );
    if inner != outer {
        let _ = write!(b, " (inside {inner})");
    }
    let _ = write!(b, ": rip {rip:#x}");
    if let crate::pe::Where::Image { rva, .. } = *at_rip {
        if let Some(sym) =
            kernel().and_then(|k| k.image.get()).and_then(|i| i.symbols.iter().rev().find(|s| s.rva <= rva))
        {
            let _ = write!(b, " in {}+{:#x}", sym.name, rva - sym.rva);
        }
    } else {
        let _ = write!(b, " (ndisim's __chkstk or an export's entry)");
    }
    let _ = writeln!(b, ", address {addr:#x} in the guard below the stack");
    // SAFETY: writing our stack buffer to fd 2.
    unsafe { libc::write(2, b.buf.as_ptr().cast(), b.len) };
    stop_exit(EXIT_BUGCHECK)
}

/// What a faulting address was, when ndisim knows: pool memory (live or
/// freed), a UMEM, an IRP's buffer revoked at completion, memory lent to
/// the driver and taken back.
fn describe_addr(addr: usize, b: &mut StackBuf) {
    use std::fmt::Write;
    if let Some(what) = kernel().and_then(|k| k.pool.describe(addr)) {
        let _ = write!(b, ": {what}");
    } else if let Some(k) = kernel() {
        let _ = k.io.umem.describe(addr, b) || k.io.revoked.describe(addr, b) || k.ndis.lent.describe(addr, b);
    }
}

struct StackBuf {
    buf: [u8; 1024],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn fault_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    use std::fmt::Write;
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    let (addr, rip, code) = unsafe {
        let addr = (*info).si_addr() as usize;
        let uc = ctx as *const libc::ucontext_t;
        let rip = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        (addr, rip, (*info).si_code)
    };
    // A general-protection fault (no page at fault, so no address): on
    // x86-64 most often an access through a non-canonical address.
    let gp = sig == libc::SIGSEGV && code == libc::SI_KERNEL && addr == 0;
    let at_rip = crate::pe::locate(rip);
    let at_addr = crate::pe::locate(addr);
    if let Some((outer, inner)) = crate::stack::guard_fault(addr) {
        stack_overflow(rip, addr, &at_rip, outer, inner);
    }
    let ours = matches!(at_rip, crate::pe::Where::Image { .. })
        || matches!(at_addr, crate::pe::Where::Image { discarded_section: true, .. });
    if ours {
        let mut b = StackBuf { buf: [0; 1024], len: 0 };
        let what = match sig {
            libc::SIGILL => "illegal instruction",
            libc::SIGBUS => "bus error",
            _ if gp => "general protection",
            _ => "access violation",
        };
        let _ = write!(b, "\n*** ndisim: DRIVER FAULT: {what} at rip {rip:#x}");
        if let crate::pe::Where::Image { base, rva, discarded_section } = at_rip {
            // The driver's symbol, from its linker map (no allocation here).
            if let Some(sym) =
                kernel().and_then(|k| k.image.get()).and_then(|i| i.symbols.iter().rev().find(|s| s.rva <= rva))
            {
                let _ = write!(b, " in {}+{:#x}", sym.name, rva - sym.rva);
            }
            let _ = write!(b, " (image {base:#x} rva {rva:#x}");
            if discarded_section {
                let _ =
                    write!(b, ", in a discarded INIT section: code that runs after DriverEntry must not live in INIT");
            }
            let _ = write!(b, ")");
        }
        if gp {
            let _ = write!(
                b,
                ", at a non-canonical address: such as the StartVa of an MDL with no system mapping, which ndisim marks so (bit 62); map it with MmGetSystemAddressForMdlSafe"
            );
        } else {
            let _ = write!(b, ", address {addr:#x}");
        }
        if let crate::pe::Where::Image { rva, discarded_section: true, .. } = at_addr {
            let _ = write!(b, " (rva {rva:#x}, in a discarded section)");
        }
        describe_addr(addr, &mut b);
        let _ = writeln!(b);
        // SAFETY: writing our stack buffer to fd 2.
        unsafe { libc::write(2, b.buf.as_ptr().cast(), b.len) };
        stop_exit(EXIT_DRIVER_FAULT)
    }
    // Not the driver's: ndisim's or the harness's own code faulted, often
    // on a pointer the driver handed it. Say where (with the native
    // backtrace: `exe(+offset)` frames resolve with addr2line), then hand
    // it to whoever handled it before.
    host_fault(sig, rip, addr);
    if let Some(olds) = OLD_ACTIONS.get() {
        if let Some((_, old)) = olds.iter().find(|(s, _)| *s == sig) {
            let h = old.sa_sigaction;
            if h == libc::SIG_DFL || h == libc::SIG_IGN {
                // SAFETY: restoring the default action; returning re-runs
                // the faulting instruction, which then takes it.
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                }
                return;
            }
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: calling the previous SA_SIGINFO handler as the
                // kernel would have.
                let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = unsafe { std::mem::transmute(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: as above, for a plain handler.
                let f: extern "C" fn(i32) = unsafe { std::mem::transmute(h) };
                f(sig);
            }
        }
    }
}
