//! `memcpy` and `memset` for the image.
//!
//! compiler-builtins gives the image weak versions that split each call
//! into three `rep` string instructions (bytes up to alignment, quadwords,
//! the tail), each paying its own start-up cost; every frame copy of the
//! send and receive paths is one of these calls. These strong definitions
//! replace them at link time with one `rep movsb` / `rep stosb`, which
//! every x86-64 processor runs correctly and the ones with "enhanced REP
//! MOVSB" (Intel since Ivy Bridge, AMD since Zen 3) run at full speed for
//! any size and alignment. `memmove` and `memcmp` stay compiler-builtins'.

use core::arch::asm;

/// # Safety
/// `src` is readable and `dest` writable for `n` bytes, and the two ranges
/// do not overlap (the C contract the compiler relies on when it emits a
/// call to `memcpy`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: per the contract above; `rep movsb` copies exactly `rcx`
    // bytes from `rsi` to `rdi`, forward (the x64 ABI guarantees the
    // direction flag is clear at a call), touching nothing else.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// # Safety
/// `dest` is writable for `n` bytes (the C contract of `memset`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: per the contract above; `rep stosb` stores `al` into exactly
    // `rcx` bytes from `rdi`, forward (direction flag clear, as above).
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags)
        );
    }
    dest
}
