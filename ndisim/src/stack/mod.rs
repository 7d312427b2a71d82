//! The driver's kernel stack: driver code runs on a stack of its own, as
//! bounded as a Windows x64 kernel stack, and how deep it goes is checked
//! against a budget.
//!
//! Every thread that runs driver code gets a 24 KiB stack (Windows'
//! `KERNEL_STACK_SIZE`) above an inaccessible guard (`gate`).
//! `call_driver` switches to it for the handler; every export the driver
//! calls switches back to the thread's own stack for ndisim's code, in an
//! assembly gate before any ndisim frame is pushed, so only the driver's
//! frames use it. A handler that calls an export that calls back into the
//! driver (a send that completes at once) goes on below the frames already
//! there: nested calls add up as they do on Windows. Running past the end
//! touches the guard, and the fault handler stops the machine with bug
//! check 0x7F (UNEXPECTED_KERNEL_MODE_TRAP, a double fault), as Windows
//! does.
//!
//! Within that, the driver has a budget (8 KiB by default): its share of a
//! stack that NDIS, the miniport and filters use too. The depth is sampled
//! where it costs next to nothing: in the gate at every export the driver
//! calls (the stack pointer is the driver's; a subtract and a compare) and
//! in `__chkstk` (which the compiler calls for any frame over 4 KiB, with
//! the frame's size). The deepest sample of each call from NDIS or the I/O
//! manager is kept per handler (`stats`), and a handler that goes past the
//! budget breaks rule `stack-budget`. A leaf that goes deep without calling
//! anything is caught too: each stack is painted with a pattern before a
//! simulation uses it, and at unload the deepest word written (the
//! high-water mark) is checked against the budget.

mod gate;
mod sites;
mod stats;
#[cfg(test)]
mod tests;

pub use gate::KERNEL_STACK;
pub(crate) use gate::{chkstk_addr, thunks};
pub use sites::count_call_sites;
pub(crate) use sites::image_at;
pub(crate) use stats::Stats;
pub use stats::{HandlerDepth, StackReport};

use crate::kernel::Kernel;
use gate::{Slot, rsp};
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;

/// The default budget for the driver's own frames. Built with
/// AddressSanitizer (`cargo make chaos-asan`), ndisim's frames between
/// nested calls into the driver (an export that calls back into it: an
/// OID completed inside `NdisOidRequest`) grow by their redzones, and they
/// count against the driver: the budget is 16 KiB there, so that only the
/// plain build judges the driver's share (the guard below the 24 KiB still
/// stops a real overflow in both).
pub const DEFAULT_BUDGET: usize = if cfg!(ndisim_asan) { 16 * 1024 } else { 8 * 1024 };
/// What an unused stack word holds (each byte xor'ed with
/// `SimBuilder::garbage`'s: a driver that reads its stack before writing
/// it reads other bytes in a twin run).
pub(crate) const PAINT: u64 = 0x4B43_4154_5341_4E44; // "DNASTACK"
/// How many handlers a thread remembers the depth of (a cache in front of
/// the simulation's table).
const SEEN: usize = 16;

struct Tls {
    /// The thread's slot (`hi` 0: none yet).
    index: Cell<usize>,
    lo: Cell<usize>,
    hi: Cell<usize>,
    /// Where the outermost handler's frames begin: the stack pointer of the
    /// ndisim frame that calls it (depths count from here).
    base: Cell<usize>,
    /// The outermost handler running.
    outer: Cell<&'static str>,
    /// The simulation (`Stats::id`) the stack is painted for.
    owner: Cell<u64>,
    /// Handlers (name pointers) and the depth already recorded for them.
    seen: [Cell<(usize, usize)>; SEEN],
}

thread_local! {
    static T: Tls = const {
        Tls {
            index: Cell::new(0),
            lo: Cell::new(0),
            hi: Cell::new(0),
            base: Cell::new(0),
            outer: Cell::new(""),
            owner: Cell::new(0),
            seen: [const { Cell::new((0, 0)) }; SEEN],
        }
    };
    /// Gives the slot back when the thread ends.
    static OWNED: RefCell<Option<ThreadSlot>> = const { RefCell::new(None) };
}

struct ThreadSlot {
    slot: Slot,
    /// An alternate signal stack installed for this thread.
    alt: Option<AltStack>,
}

/// An alternate signal stack ndisim installed, and the one it replaced.
struct AltStack {
    /// The mapping and its size.
    p: usize,
    len: usize,
    /// The thread's alternate stack before (too small, or disabled): put
    /// back when the thread ends, as its owner (ASan's runtime, the C
    /// library) expects to find it then and unmaps only what it finds.
    old: libc::stack_t,
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        let _ = T.try_with(|t| {
            t.lo.set(0);
            t.hi.set(0);
            t.owner.set(0);
        });
        stats::release(self.slot.index, high_water(&self.slot));
        gate::put_slot(self.slot);
        if let Some(alt) = &self.alt {
            // SAFETY: if the alternate stack this thread installed is still
            // the thread's (Rust's runtime may have disabled it already, when
            // it freed its own), puts back the one it replaced, or disables
            // it; then unmaps it; the thread is ending. The one put back is
            // its owner's to free: ASan's runtime unmaps the alternate
            // stack it finds at the thread's end, so one left replaced was
            // leaked, a mapping for each thread of each simulation, until
            // a fuzzer's process ran out of them.
            unsafe {
                let mut now: libc::stack_t = std::mem::zeroed();
                if libc::sigaltstack(std::ptr::null(), &mut now) == 0 && now.ss_sp as usize == alt.p {
                    let back = if alt.old.ss_flags & libc::SS_DISABLE == 0 {
                        libc::stack_t { ss_sp: alt.old.ss_sp, ss_flags: 0, ss_size: alt.old.ss_size }
                    } else {
                        libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 }
                    };
                    libc::sigaltstack(&back, std::ptr::null_mut());
                }
                libc::munmap(alt.p as *mut libc::c_void, alt.len);
            }
        }
    }
}

/// Gives the thread an alternate signal stack if it has none (Rust's
/// threads usually have one): the fault handler must not run on a driver
/// stack that is used up. Returns the mapping it made and the stack it
/// replaced.
fn ensure_alt_stack() -> Option<AltStack> {
    const ALT: usize = 64 * 1024;
    // SAFETY: a zeroed stack_t is a valid out parameter.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: queries this thread's alternate stack into a local.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut old) } != 0 {
        return None;
    }
    // Rust's threads come with a small one (SIGSTKSZ): too small for the
    // fault handler's report and backtrace in a debug build. A fault that
    // overflows the alternate stack kills the process with no word.
    if old.ss_flags & libc::SS_DISABLE == 0 && old.ss_size >= ALT {
        return None;
    }
    let p = crate::pool::map_rw(ALT)?;
    let ss = libc::stack_t { ss_sp: p, ss_flags: 0, ss_size: ALT };
    // SAFETY: installs our mapping as this thread's alternate stack.
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        // SAFETY: our mapping, unused.
        unsafe { libc::munmap(p, ALT) };
        return None;
    }
    Some(AltStack { p: p as usize, len: ALT, old })
}

/// Gives the thread a slot on first use; false if none is left.
fn ensure_slot(t: &Tls) -> bool {
    if t.hi.get() != 0 {
        return true;
    }
    OWNED
        .try_with(|o| {
            let Some(slot) = gate::take_slot() else { return false };
            let alt = ensure_alt_stack();
            t.index.set(slot.index);
            t.lo.set(slot.lo);
            t.hi.set(slot.hi);
            t.owner.set(0);
            *o.borrow_mut() = Some(ThreadSlot { slot, alt });
            true
        })
        .unwrap_or(false)
}

fn slot_of(t: &Tls) -> Slot {
    Slot { index: t.index.get(), lo: t.lo.get(), hi: t.hi.get() }
}

fn name_of(w: &[Cell<usize>; 2]) -> &'static str {
    let (p, n) = (w[0].get(), w[1].get());
    if p == 0 {
        return "";
    }
    // SAFETY: the words were written from a `&'static str` (`set_name`).
    unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p as *const u8, n)) }
}

fn set_name(w: &[Cell<usize>; 2], s: &'static str) {
    w[0].set(s.as_ptr() as usize);
    w[1].set(s.len());
}

thread_local! {
    /// The innermost handler of the driver this thread runs ("" outside).
    static HANDLER: Cell<&'static str> = const { Cell::new("") };
}

/// The innermost handler of the driver this thread is in ("" when it is in
/// none): an export the driver calls reads which routine called it.
pub(crate) fn current_handler() -> &'static str {
    HANDLER.with(Cell::get)
}

/// Puts back the handler of before when a handler returns (or unwinds).
struct Current(&'static str);

impl Drop for Current {
    fn drop(&mut self) {
        HANDLER.with(|h| h.set(self.0));
    }
}

/// Runs driver code `f` (the handler `name`) on the thread's driver stack:
/// at its top when no driver code is running on this thread, below the
/// frames already there when the driver called an export that calls back
/// into it.
pub(crate) fn run_driver<R>(k: &Kernel, name: &'static str, f: impl FnOnce() -> R) -> R {
    let _current = Current(HANDLER.with(|h| h.replace(name)));
    T.with(|t| {
        let sp = rsp();
        if sp >= t.lo.get() && sp < t.hi.get() {
            // Already on the driver stack (ndisim code the driver reached
            // without an export): go on there.
            return f();
        }
        if !ensure_slot(t) {
            crate::kernel::internal_error(format!(
                "no driver stack left for {name} (every slot is in use): it runs on the thread's own stack, unchecked"
            ));
            return f();
        }
        let slot = slot_of(t);
        let h = slot.header();
        let outermost = h.resume_drv.get() == 0;
        if outermost {
            if t.owner.get() != k.stack.id() {
                adopt(t, &k.stack);
            }
            h.deepest.set(0);
            t.outer.set(name);
        }
        let start = if outermost { slot.hi } else { h.resume_drv.get() };
        let prev_inner = [h.inner[0].get(), h.inner[1].get()];
        let prev_host = h.resume_host.get();
        let prev_base = t.base.get();
        set_name(&h.inner, name);
        // SAFETY: `start` is the top of the driver stack, or the stack
        // pointer the driver left when it called the export this thread is
        // in (nothing below it is in use); the stack is this thread's.
        let r = unsafe {
            gate::call_on(start, &h.resume_host, || {
                t.base.set(rsp());
                f()
            })
        };
        h.resume_host.set(prev_host);
        h.inner[0].set(prev_inner[0]);
        h.inner[1].set(prev_inner[1]);
        if outermost {
            finish(t, k, &slot, name);
        } else {
            t.base.set(prev_base);
        }
        r.unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// The thread's stack starts serving simulation `s`: it is painted afresh
/// (what it held counts for the simulation that used it before).
fn adopt(t: &Tls, s: &std::sync::Arc<Stats>) {
    let slot = slot_of(t);
    stats::release(slot.index, high_water(&slot));
    paint(&slot, s.paint());
    s.adopt(slot.index);
    t.owner.set(s.id());
    for c in &t.seen {
        c.set((0, 0));
    }
}

fn paint(slot: &Slot, with: u64) {
    slot.header().paint.set(with);
    for w in slot.words() {
        w.store(with, Ordering::Relaxed);
    }
}

/// Bytes from the top of a stack down to the deepest word written since it
/// was painted.
pub(crate) fn high_water(slot: &Slot) -> usize {
    let paint = slot.header().paint.get();
    match slot.words().iter().position(|w| w.load(Ordering::Relaxed) != paint) {
        Some(i) => KERNEL_STACK - i * 8,
        None => 0,
    }
}

/// The outermost call `name` returned: records its deepest sample.
fn finish(t: &Tls, k: &Kernel, slot: &Slot, name: &'static str) {
    let h = slot.header();
    let raw = h.deepest.get();
    // ndisim's frames above the handler (the switch and the closure that
    // calls it) are not the driver's.
    let glue = slot.hi - t.base.get();
    k.stack.glue(glue);
    let d = raw.saturating_sub(glue);
    if written_below(slot, t.base.get().saturating_sub(k.stack.budget())) {
        if d <= k.stack.budget() {
            // No sample went past the budget, but the words just below the
            // budget line are no longer the paint: a leaf went there.
            k.stack.unsampled(k, name);
        }
        // Painted afresh (nothing is on the stack now), so the next call
        // is judged by what it writes; the mark so far is kept.
        k.stack.fold(high_water(slot));
        paint(slot, slot.header().paint.get());
    }
    if d == 0 {
        return;
    }
    let key = name.as_ptr() as usize;
    let mut free = None;
    for c in &t.seen {
        let (n, depth) = c.get();
        if n == key {
            if d <= depth {
                return;
            }
            free = Some(c);
            break;
        }
        if n == 0 && free.is_none() {
            free = Some(c);
        }
    }
    if let Some(c) = free {
        c.set((key, d));
    }
    k.stack.note(k, name, name_of(&h.deepest_in), d, h.deepest_at.get());
}

/// Whether any of the eight words below `line` on the stack was written
/// since it was painted.
fn written_below(slot: &Slot, line: usize) -> bool {
    let line = line & !7;
    if line < slot.lo + 64 || line > slot.hi {
        return false;
    }
    let i = (line - slot.lo) / 8;
    let paint = slot.header().paint.get();
    slot.words()[i - 8..i].iter().any(|w| w.load(Ordering::Relaxed) != paint)
}

/// Where a fault hit this thread's stack guard: `(handler, innermost
/// handler)`. Called from the fault handler: reads thread-locals and the
/// slot's header only.
pub(crate) fn guard_fault(addr: usize) -> Option<(&'static str, &'static str)> {
    let index = gate::guard_of(addr)?;
    let slot = Slot::of(index)?;
    T.try_with(|t| {
        (t.hi.get() == slot.hi).then(|| {
            let inner = name_of(&slot.header().inner);
            (t.outer.get(), inner)
        })
    })
    .ok()
    .flatten()
}
