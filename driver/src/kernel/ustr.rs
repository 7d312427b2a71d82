//! UTF-16 strings for the kernel: compile-time constants and conversion of
//! NDIS's `UNICODE_STRING`s.

use super::alloc::AllocError;
use alloc::string::String;
use ndis_sys::UNICODE_STRING;

/// A `&'static [u16]` from an ASCII string literal, NUL-terminated (the NUL
/// is not part of the `UNICODE_STRING` length).
#[macro_export]
macro_rules! wstr {
    ($s:expr) => {{
        const S: &str = $s;
        const N: usize = S.len() + 1;
        const W: [u16; N] = $crate::kernel::ustr::ascii_to_utf16::<N>(S);
        &W
    }};
}

/// Widens an ASCII string at compile time; the array has room for a NUL.
pub const fn ascii_to_utf16<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    assert!(b.len() + 1 == N, "length mismatch");
    let mut out = [0u16; N];
    let mut i = 0;
    while i < b.len() {
        assert!(b[i] < 0x80, "wstr! takes ASCII only");
        out[i] = b[i] as u16;
        i += 1;
    }
    out
}

/// A `UNICODE_STRING` over a static, NUL-terminated wide string.
pub fn unicode_string(w: &'static [u16]) -> UNICODE_STRING {
    let chars = w.len().saturating_sub(1);
    UNICODE_STRING { Length: (chars * 2) as u16, MaximumLength: (w.len() * 2) as u16, Buffer: w.as_ptr().cast_mut() }
}

/// Converts UTF-16 to UTF-8, replacing unpaired surrogates; fails when
/// memory runs out.
pub fn utf16_to_string(units: &[u16]) -> Result<String, AllocError> {
    let mut out = String::new();
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    out.try_reserve(units.len() * 3).map_err(|_| AllocError)?;
    out.extend(char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
    Ok(out)
}

/// Reads a `UNICODE_STRING` that NDIS passed in.
///
/// # Safety
/// `s` is null, or points to a valid `UNICODE_STRING` whose buffer holds
/// `Length` bytes.
pub unsafe fn try_from_unicode_string(s: *const UNICODE_STRING) -> Result<String, AllocError> {
    if s.is_null() {
        return Ok(String::new());
    }
    // SAFETY: the caller guarantees `s` is valid.
    let s = unsafe { &*s };
    if s.Buffer.is_null() || s.Length == 0 {
        return Ok(String::new());
    }
    // SAFETY: the buffer holds `Length` bytes, i.e. `Length / 2` units.
    let units = unsafe { core::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) };
    utf16_to_string(units)
}
