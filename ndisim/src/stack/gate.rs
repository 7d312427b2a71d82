//! The machinery under `stack`: the driver stacks (slots of one reserved
//! region), the switch onto them, and the gate every export goes through to
//! get off them again.
//!
//! A slot is 128 KiB, aligned to its size, so code that only has a stack
//! pointer (the gate, `__chkstk`, the fault handler) finds the slot's
//! header without thread-locals: the header is the slot's last page, the
//! stack the 24 KiB below it, and the rest of the slot is an inaccessible
//! guard.
//!
//! The driver's import table does not point at ndisim's exports but at
//! thunks (`mov r10, export; jmp ndisim_gate`). On a driver stack the gate
//! notes the depth (the stack pointer holds the driver's return address:
//! nothing of ndisim is on the driver's stack yet), copies the stack
//! arguments to the thread's own stack, calls the export there and comes
//! back. Elsewhere it jumps to the export. So no ndisim frame is ever on a
//! driver stack but the one that calls the handler at its top.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// One slot of the region.
pub(crate) const SLOT: usize = 128 * 1024;
/// The header page at the top of each slot.
const PAGE: usize = 4096;
/// The driver stack below the header: Windows x64's `KERNEL_STACK_SIZE`.
pub const KERNEL_STACK: usize = 24 * 1024;
/// How many threads can have a driver stack at once.
const SLOTS: usize = 2048;

/// The region's bounds (read by the assembly).
#[unsafe(no_mangle)]
static NDISIM_STACKS_LO: AtomicUsize = AtomicUsize::new(0);
#[unsafe(no_mangle)]
static NDISIM_STACKS_LEN: AtomicUsize = AtomicUsize::new(0);

/// The header of a slot, at the top of its stack (`hi`). The assembly
/// uses the offsets `H_*`.
#[repr(C)]
pub(crate) struct Header {
    /// The thread's own stack pointer when it switched to the driver's:
    /// exports run below it.
    pub resume_host: std::cell::Cell<usize>,
    /// The driver stack's pointer when driver code called an export (0:
    /// no driver code is on the stack): a nested handler runs below it.
    pub resume_drv: std::cell::Cell<usize>,
    /// The deepest sample of the outermost call: bytes below `hi`, and the
    /// driver address there (the return address of the export or of
    /// `__chkstk`).
    pub deepest: std::cell::Cell<usize>,
    pub deepest_at: std::cell::Cell<usize>,
    /// The innermost handler running (a `&'static str` as pointer and
    /// length), and a copy of it at the deepest sample.
    pub inner: [std::cell::Cell<usize>; 2],
    pub deepest_in: [std::cell::Cell<usize>; 2],
    /// What the stack was painted with (`stack::paint`; 0 before the
    /// first paint, as the fresh words are).
    pub paint: std::cell::Cell<u64>,
}

const H_RESUME_HOST: usize = 0;
const H_RESUME_DRV: usize = 8;
const H_DEEPEST: usize = 16;
const H_DEEPEST_AT: usize = 24;
const H_INNER: usize = 32;
const H_DEEPEST_IN: usize = 48;
const _: () = assert!(std::mem::offset_of!(Header, resume_drv) == H_RESUME_DRV);
const _: () = assert!(std::mem::offset_of!(Header, resume_host) == H_RESUME_HOST);
const _: () = assert!(std::mem::offset_of!(Header, deepest) == H_DEEPEST);
const _: () = assert!(std::mem::offset_of!(Header, deepest_at) == H_DEEPEST_AT);
const _: () = assert!(std::mem::offset_of!(Header, inner) == H_INNER);
const _: () = assert!(std::mem::offset_of!(Header, deepest_in) == H_DEEPEST_IN);

std::arch::global_asm!(
    // ndisim_stack_call(data, f, sp, save): stores the stack pointer in
    // *save, calls f(data) on the stack that ends at sp, and comes back.
    // The CFI lets a backtrace go on across the switch.
    ".globl ndisim_stack_call",
    ".type ndisim_stack_call,@function",
    "ndisim_stack_call:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov [rcx], rsp",
    "mov rsp, rdx",
    "and rsp, -16",
    "call rsi",
    "mov rsp, rbp",
    ".cfi_def_cfa_register rsp",
    "pop rbp",
    ".cfi_def_cfa_offset 8",
    "ret",
    ".cfi_endproc",
    ".size ndisim_stack_call, .-ndisim_stack_call",
    //
    // ndisim_gate: the driver called an export (win64: arguments in RCX,
    // RDX, R8, R9 and from [rsp+0x28]; [rsp] is its return address); R10
    // is the export's code. Uses only RAX, R10, R11, XMM4, XMM5 and the
    // flags, which the callee may change anyway.
    ".globl ndisim_gate",
    ".type ndisim_gate,@function",
    "ndisim_gate:",
    // The call's site counted, if counting is on (`sites`): a byte of the
    // table picked by the export's offset from the gate and the return
    // address's offset in the image, bumped up to 255.
    "mov rax, [rip + {sites}]",
    "test rax, rax",
    "jz 8f",
    "mov r11, r10",
    "sub r11, [rip + {sites_anchor}]",
    "imul r11, r11, 0x2545f491",
    "add r11, [rsp]",
    "sub r11, [rip + {sites_image}]",
    "imul r11, r11, 0x5bd1e995",
    "ror r11, 20",
    "and r11, [rip + {sites_mask}]",
    "add byte ptr [rax + r11], 1",
    "sbb byte ptr [rax + r11], 0",
    "8:",
    "mov r11, rsp",
    "sub r11, [rip + {lo}]",
    "cmp r11, [rip + {len}]",
    "jae 9f",
    // The header: the slot's last page.
    "mov r11, rsp",
    "or r11, {slot_mask}",
    "sub r11, {page_less_one}",
    // The depth sample.
    "mov rax, r11",
    "sub rax, rsp",
    "cmp rax, [r11 + {deepest}]",
    "jbe 2f",
    "mov [r11 + {deepest}], rax",
    "mov rax, [rsp]",
    "mov [r11 + {deepest_at}], rax",
    "movdqu xmm4, [r11 + {inner}]",
    "movdqu [r11 + {deepest_in}], xmm4",
    "2:",
    // A frame on the thread's own stack: shadow space, six stack argument
    // slots (the widest export takes seven arguments, three of them on the
    // stack), the driver's stack pointer and the previous resume_drv.
    "mov rax, [r11 + {resume_host}]",
    "sub rax, 0x60",
    "and rax, -16",
    "mov [rax + 0x50], rsp",
    "movq xmm5, [r11 + {resume_drv}]",
    "movq [rax + 0x58], xmm5",
    "mov [r11 + {resume_drv}], rsp",
    "movdqu xmm4, [rsp + 0x28]",
    "movdqu [rax + 0x20], xmm4",
    "movdqu xmm4, [rsp + 0x38]",
    "movdqu [rax + 0x30], xmm4",
    "movdqu xmm4, [rsp + 0x48]",
    "movdqu [rax + 0x40], xmm4",
    "mov rsp, rax",
    "call r10",
    // Back: restore resume_drv and return to the driver on its stack.
    "mov r11, [rsp + 0x50]",
    "mov r10, [rsp + 0x58]",
    "mov rcx, r11",
    "or rcx, {slot_mask}",
    "sub rcx, {page_less_one}",
    "mov [rcx + {resume_drv}], r10",
    "mov rsp, r11",
    "ret",
    "9:",
    "jmp r10",
    ".size ndisim_gate, .-ndisim_gate",
    //
    // __chkstk: the driver's prologue asks for RAX bytes of frame. Notes
    // the depth the frame reaches, then probes each page from the caller's
    // stack pointer down (a frame past the end touches the guard).
    // Preserves every register but R10, R11 and the flags, as Windows'
    // does.
    ".globl ndisim_chkstk",
    ".type ndisim_chkstk,@function",
    "ndisim_chkstk:",
    "push r10",
    "push r11",
    "push rax",
    "push rcx",
    "lea r10, [rsp + 0x28]",
    "mov r11, r10",
    "sub r11, rax",
    "mov rcx, r10",
    "sub rcx, [rip + {lo}]",
    "cmp rcx, [rip + {len}]",
    "jae 4f",
    "mov rcx, r10",
    "or rcx, {slot_mask}",
    "sub rcx, {page_less_one}",
    "mov rax, rcx",
    "sub rax, r11",
    "cmp rax, [rcx + {deepest}]",
    "jbe 4f",
    "mov [rcx + {deepest}], rax",
    "mov rax, [rsp + 0x20]",
    "mov [rcx + {deepest_at}], rax",
    "mov rax, [rcx + {inner}]",
    "mov [rcx + {deepest_in}], rax",
    "mov rax, [rcx + {inner} + 8]",
    "mov [rcx + {deepest_in} + 8], rax",
    "4:",
    "pop rcx",
    "pop rax",
    "3:",
    "sub r10, 0x1000",
    "cmp r10, r11",
    "jb 5f",
    "test [r10], r10",
    "jmp 3b",
    "5:",
    "test [r11], r11",
    "pop r11",
    "pop r10",
    "ret",
    ".size ndisim_chkstk, .-ndisim_chkstk",
    lo = sym NDISIM_STACKS_LO,
    sites = sym super::sites::NDISIM_SITES,
    sites_mask = sym super::sites::NDISIM_SITES_MASK,
    sites_image = sym super::sites::NDISIM_SITES_IMAGE,
    sites_anchor = sym super::sites::NDISIM_SITES_ANCHOR,
    len = sym NDISIM_STACKS_LEN,
    slot_mask = const SLOT - 1,
    page_less_one = const PAGE - 1,
    resume_host = const H_RESUME_HOST,
    resume_drv = const H_RESUME_DRV,
    deepest = const H_DEEPEST,
    deepest_at = const H_DEEPEST_AT,
    inner = const H_INNER,
    deepest_in = const H_DEEPEST_IN,
);

unsafe extern "C" {
    fn ndisim_stack_call(data: *mut u8, f: unsafe extern "C" fn(*mut u8), sp: usize, save: *mut usize);
    fn ndisim_gate();
    fn ndisim_chkstk();
}

/// The address of the `__chkstk` export.
pub(crate) fn chkstk_addr() -> usize {
    ndisim_chkstk as *const () as usize
}

/// The gate, for the `DbgPrint` trampolines (which jump to it themselves
/// once they have taken the address of their variadic arguments).
pub(crate) fn gate_addr() -> usize {
    ndisim_gate as *const () as usize
}

#[inline(always)]
pub(crate) fn rsp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer.
    unsafe { std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

// ---------------------------------------------------------------------------
// Running a closure on another stack
// ---------------------------------------------------------------------------

/// A closure to run on the other stack, and what it gave.
struct Job<F, R> {
    f: Option<F>,
    out: Option<std::thread::Result<R>>,
}

/// Runs a `Job` (on the other stack). A panic is caught here and goes on
/// once back on the stack it came from.
unsafe extern "C" fn run_job<F: FnOnce() -> R, R>(p: *mut u8) {
    // SAFETY: `call_on` passes its own `Job<F, R>`, alive across the call.
    let job = unsafe { &mut *p.cast::<Job<F, R>>() };
    if let Some(f) = job.f.take() {
        job.out = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    }
}

fn run_job_of<F: FnOnce() -> R, R>(_: &Job<F, R>) -> unsafe extern "C" fn(*mut u8) {
    run_job::<F, R>
}

/// Runs `f` on the stack whose free part ends at `sp`, storing the stack
/// pointer it leaves in `save`.
///
/// # Safety
/// `sp` is the end of free memory of a stack that nothing else uses while
/// `f` runs, deep enough for `f`.
pub(crate) unsafe fn call_on<R>(
    sp: usize,
    save: &std::cell::Cell<usize>,
    f: impl FnOnce() -> R,
) -> std::thread::Result<R> {
    let mut job = Job { f: Some(f), out: None };
    let run = run_job_of(&job);
    // SAFETY: per the caller; the job outlives the call.
    unsafe { ndisim_stack_call((&mut job as *mut Job<_, R>).cast(), run, sp, save.as_ptr()) };
    job.out.unwrap_or_else(|| Err(Box::new("the job did not run")))
}

// ---------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------

struct Region {
    base: usize,
    free: Mutex<Vec<usize>>,
    next: AtomicUsize,
}

fn region() -> Option<&'static Region> {
    static R: OnceLock<Option<Region>> = OnceLock::new();
    R.get_or_init(|| {
        let len = SLOTS * SLOT;
        // SAFETY: reserves address space, inaccessible until a slot's
        // stack and header are made read-write.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + SLOT,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = (p as usize + SLOT - 1) & !(SLOT - 1);
        NDISIM_STACKS_LO.store(base, Ordering::Release);
        NDISIM_STACKS_LEN.store(len, Ordering::Release);
        Some(Region { base, free: Mutex::new(Vec::new()), next: AtomicUsize::new(0) })
    })
    .as_ref()
}

/// A slot's stack: its index, `lo` (lowest byte) and `hi` (the header).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub index: usize,
    pub lo: usize,
    pub hi: usize,
}

impl Slot {
    fn at(base: usize, index: usize) -> Slot {
        let hi = base + (index + 1) * SLOT - PAGE;
        Slot { index, lo: hi - KERNEL_STACK, hi }
    }

    pub(crate) fn header(&self) -> &'static Header {
        // SAFETY: the header page of a slot handed out is read-write and
        // stays mapped for the process; its fields are Cells used by the
        // slot's thread only (and by the assembly on that thread).
        unsafe { &*(self.hi as *const Header) }
    }

    /// The stack as words, read with atomics (another thread may own it).
    pub(crate) fn words(&self) -> &'static [std::sync::atomic::AtomicU64] {
        // SAFETY: [lo, hi) is read-write for the process once handed out.
        unsafe { std::slice::from_raw_parts(self.lo as *const std::sync::atomic::AtomicU64, KERNEL_STACK / 8) }
    }

    /// The slot of a given index (handed out before).
    pub(crate) fn of(index: usize) -> Option<Slot> {
        region().map(|r| Slot::at(r.base, index))
    }
}

/// A free slot, its stack and header made read-write.
pub(crate) fn take_slot() -> Option<Slot> {
    let r = region()?;
    if let Some(i) = crate::verifier::lock_process(&r.free).pop() {
        return Some(Slot::at(r.base, i));
    }
    let i = r.next.fetch_add(1, Ordering::AcqRel);
    if i >= SLOTS {
        return None;
    }
    let s = Slot::at(r.base, i);
    // SAFETY: the stack and header of slot i, inside our reservation.
    let ok = unsafe {
        libc::mprotect(s.lo as *mut libc::c_void, KERNEL_STACK + PAGE, libc::PROT_READ | libc::PROT_WRITE) == 0
    };
    ok.then_some(s)
}

/// Gives a slot back (its thread ended).
pub(crate) fn put_slot(s: Slot) {
    if let Some(r) = region() {
        crate::verifier::lock_process(&r.free).push(s.index);
    }
}

/// Whether `addr` lies in the guard of a slot: `(slot index)`.
pub(crate) fn guard_of(addr: usize) -> Option<usize> {
    let lo = NDISIM_STACKS_LO.load(Ordering::Acquire);
    let len = NDISIM_STACKS_LEN.load(Ordering::Acquire);
    let off = addr.checked_sub(lo).filter(|&o| o < len)?;
    (off % SLOT < SLOT - PAGE - KERNEL_STACK).then_some(off / SLOT)
}

// ---------------------------------------------------------------------------
// Thunks: the driver's imports point at them
// ---------------------------------------------------------------------------

/// `mov r10, imm64; jmp [rip+0]; .quad gate`, padded.
const THUNK: usize = 32;

/// The thunks that make the driver's calls to `exports` go through the
/// gate, in the same order. Each export gets one per process; new ones are
/// written to fresh pages that become read-execute once written (a page
/// is never writable and executable, and a page in use never changes).
pub(crate) fn thunks(exports: &[usize]) -> Vec<usize> {
    static MADE: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    let mut made = crate::verifier::lock_process(&MADE);
    let missing: Vec<usize> = {
        let mut m: Vec<usize> = exports.iter().copied().filter(|e| !made.iter().any(|(x, _)| x == e)).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    if !missing.is_empty() {
        let len = (missing.len() * THUNK).div_ceil(PAGE) * PAGE;
        let Some(p) = crate::pool::map_rw(len) else {
            crate::kernel::internal_error("no page for export thunks: the driver calls exports directly".into());
            return exports.to_vec();
        };
        for (i, &e) in missing.iter().enumerate() {
            let mut code = [0xCCu8; THUNK];
            code[..2].copy_from_slice(&[0x49, 0xBA]);
            code[2..10].copy_from_slice(&(e as u64).to_le_bytes());
            code[10..16].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]);
            code[16..24].copy_from_slice(&(gate_addr() as u64).to_le_bytes());
            let at = p as usize + i * THUNK;
            // SAFETY: inside the fresh pages, not yet executable.
            unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), at as *mut u8, THUNK) };
            made.push((e, at));
        }
        // SAFETY: our pages, now complete.
        if unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
            crate::kernel::internal_error("cannot make the export thunks executable".into());
        }
    }
    exports.iter().map(|e| made.iter().find(|(x, _)| x == e).map_or(*e, |&(_, t)| t)).collect()
}
