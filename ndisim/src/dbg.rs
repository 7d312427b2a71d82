//! `DbgPrint` and `DbgPrintEx`: the variadic imports. A small assembly
//! trampoline stores the fourth register argument in its home slot and
//! passes a pointer to it, so the formatter sees every variadic argument as
//! one array of 8-byte slots (the Windows x64 varargs layout).

use crate::verifier::lock;
use std::sync::Mutex;

/// Kept debug output lines.
const KEEP: usize = 4096;

pub(crate) struct DebugLog {
    lines: Mutex<std::collections::VecDeque<String>>,
    echo: bool,
    /// Texts a line must not contain (rule `forbidden-debug-line`).
    forbidden: Vec<String>,
}

impl DebugLog {
    pub(crate) fn new(echo: bool, forbidden: Vec<String>) -> Self {
        DebugLog { lines: Mutex::new(Default::default()), echo, forbidden }
    }

    /// The forbidden text `line` contains, if any.
    pub(crate) fn forbidden_in(&self, line: &str) -> Option<&str> {
        self.forbidden.iter().find(|f| line.contains(f.as_str())).map(String::as_str)
    }

    pub(crate) fn push(&self, level: u32, text: String) {
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        if self.echo {
            eprintln!("dbg[{level}]: {text}");
        }
        let mut l = lock(&self.lines);
        if l.len() == KEEP {
            l.pop_front();
        }
        l.push_back(text);
    }

    pub(crate) fn all(&self) -> Vec<String> {
        lock(&self.lines).iter().cloned().collect()
    }

    pub(crate) fn tail(&self, n: usize) -> Vec<String> {
        let l = lock(&self.lines);
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }
}

std::arch::global_asm!(
    ".globl ndisim_dbgprintex_trampoline",
    "ndisim_dbgprintex_trampoline:",
    // The caller's home slot of the fourth argument becomes the first
    // variadic slot; the stack arguments follow it.
    "mov [rsp+0x20], r9",
    "lea r9, [rsp+0x20]",
    // The formatter runs through the stack gate, which returns to the
    // driver (the arguments stay where the driver put them).
    "lea r10, [rip + {fmt}]",
    "jmp ndisim_gate",
    ".globl ndisim_dbgprint_trampoline",
    "ndisim_dbgprint_trampoline:",
    "mov [rsp+0x10], rdx",
    "mov [rsp+0x18], r8",
    "mov [rsp+0x20], r9",
    "lea rdx, [rsp+0x10]",
    "lea r10, [rip + {fmt1}]",
    "jmp ndisim_gate",
    fmt = sym dbgprintex_impl,
    fmt1 = sym dbgprint_impl,
);

unsafe extern "C" {
    fn ndisim_dbgprintex_trampoline();
    fn ndisim_dbgprint_trampoline();
}

/// Addresses of the variadic exports.
pub(crate) fn dbgprintex_addr() -> usize {
    ndisim_dbgprintex_trampoline as *const () as usize
}
pub(crate) fn dbgprint_addr() -> usize {
    ndisim_dbgprint_trampoline as *const () as usize
}
unsafe extern "win64" fn dbgprintex_impl(_component: u32, level: u32, fmt: *const u8, args: *const u64) -> u32 {
    match std::panic::catch_unwind(|| {
        // SAFETY: the driver passes a format and its arguments as DbgPrintEx
        // documents; `args` points at the variadic slots.
        let (text, unicode) = unsafe { format_checked(fmt, args) };
        // nf-wdm-dbgprintex: the Unicode format codes (%C, %S, %lc, %ls,
        // %wc, %ws, %wZ) may be used at PASSIVE_LEVEL only; their
        // conversion to ANSI touches pageable tables, which Driver
        // Verifier's Force IRQL Checking trims at every raise.
        let level_now = crate::kernel::irql();
        if let Some(code) = unicode.filter(|_| level_now > crate::kernel::PASSIVE_LEVEL) {
            crate::verifier::Violation::new(
                crate::verifier::Rule::Irql,
                "DbgPrintEx",
                format!(
                    "the Unicode format code {code} used at {}: Unicode conversions are allowed at PASSIVE_LEVEL only",
                    crate::kernel::irql_name(level_now)
                ),
            )
            .report();
        }
        if let Some(k) = crate::kernel::kernel() {
            if let Some(f) = k.dbg.forbidden_in(&text) {
                crate::verifier::Violation::new(
                    crate::verifier::Rule::ForbiddenDebugLine,
                    "DbgPrintEx",
                    format!("the driver printed {:?}, which contains {f:?} (a line the test forbids)", text.trim_end()),
                )
                .report();
            }
            k.dbg.push(level, text);
        } else {
            eprintln!("dbg: {text}");
        }
    }) {
        Ok(()) => 0,
        Err(p) => {
            crate::kernel::internal_panic("DbgPrintEx", p);
            0
        }
    }
}

unsafe extern "win64" fn dbgprint_impl(fmt: *const u8, args: *const u64) -> u32 {
    // SAFETY: as in `dbgprintex_impl`.
    unsafe { dbgprintex_impl(0, 0, fmt, args) }
}

/// The formatted text alone (the unit tests').
///
/// # Safety
/// As [`format_checked`].
#[cfg(test)]
pub(crate) unsafe fn format(fmt: *const u8, args: *const u64) -> String {
    // SAFETY: per the caller.
    unsafe { format_checked(fmt, args) }.0
}

/// Formats a Windows kernel `printf` format: `%s %S %ws %Z %wZ %c %C %d %i
/// %u %x %X %o %p %%`, with flags `- 0 + space #`, width and precision
/// (also `*`), and sizes `h hh l ll I I32 I64 z w`. `long` is 32 bits.
/// Also returns the first Unicode conversion the format used (`%C`, `%S`,
/// `%lc`, `%ls`, `%wc`, `%ws`, `%wZ`), which DbgPrint(Ex) allows at
/// PASSIVE_LEVEL only.
///
/// # Safety
/// `fmt` is NUL-terminated and `args` holds a slot for every conversion.
pub(crate) unsafe fn format_checked(fmt: *const u8, args: *const u64) -> (String, Option<String>) {
    // SAFETY: per the caller.
    let f = unsafe { std::ffi::CStr::from_ptr(fmt.cast()) }.to_bytes();
    let mut out = String::new();
    let mut unicode: Option<String> = None;
    let mut ai = 0usize;
    let mut next = || {
        // SAFETY: per the caller, one slot per conversion.
        let v = unsafe { *args.add(ai) };
        ai += 1;
        v
    };
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        i += 1;
        if c != b'%' {
            out.push(c as char);
            continue;
        }
        let start = i - 1;
        let (mut left, mut zero, mut plus, mut space, mut alt) = (false, false, false, false, false);
        while i < f.len() {
            match f[i] {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => alt = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        if i < f.len() && f[i] == b'*' {
            width = next() as i32 as usize;
            i += 1;
        }
        while i < f.len() && f[i].is_ascii_digit() {
            width = width * 10 + (f[i] - b'0') as usize;
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if i < f.len() && f[i] == b'.' {
            i += 1;
            let mut p = 0;
            if i < f.len() && f[i] == b'*' {
                p = next() as i32 as usize;
                i += 1;
            }
            while i < f.len() && f[i].is_ascii_digit() {
                p = p * 10 + (f[i] - b'0') as usize;
                i += 1;
            }
            prec = Some(p);
        }
        // Size: bits of the integer (0 = default 32), or wide for strings.
        let mut bits = 32u32;
        let mut wide = false;
        loop {
            if f[i..].starts_with(b"I64") || f[i..].starts_with(b"ll") {
                bits = 64;
                i += if f[i] == b'I' { 3 } else { 2 };
            } else if f[i..].starts_with(b"I32") {
                bits = 32;
                i += 3;
            } else if i < f.len() && (f[i] == b'I' || f[i] == b'z') {
                bits = 64;
                i += 1;
            } else if f[i..].starts_with(b"hh") {
                bits = 8;
                i += 2;
            } else if i < f.len() && f[i] == b'h' {
                bits = 16;
                i += 1;
            } else if i < f.len() && (f[i] == b'l' || f[i] == b'w') {
                wide = true;
                i += 1;
            } else {
                break;
            }
        }
        let Some(&conv) = f.get(i) else { break };
        i += 1;
        if unicode.is_none() && (matches!(conv, b'C' | b'S') || (wide && matches!(conv, b'c' | b's' | b'Z'))) {
            unicode = Some(String::from_utf8_lossy(&f[start..i]).into_owned());
        }
        let body: String = match conv {
            b'%' => "%".into(),
            b'd' | b'i' => {
                let v = next();
                let n: i64 = match bits {
                    64 => v as i64,
                    16 => v as i16 as i64,
                    8 => v as i8 as i64,
                    _ => v as i32 as i64,
                };
                let mut s = n.unsigned_abs().to_string();
                if let Some(p) = prec {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let sign = if n < 0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                if zero && !left && prec.is_none() {
                    while s.len() + sign.len() < width {
                        s.insert(0, '0');
                    }
                }
                format!("{sign}{s}")
            }
            b'u' | b'x' | b'X' | b'o' => {
                let v = next();
                let n: u64 = match bits {
                    64 => v,
                    16 => v as u16 as u64,
                    8 => v as u8 as u64,
                    _ => v as u32 as u64,
                };
                let mut s = match conv {
                    b'u' => n.to_string(),
                    b'x' => format!("{n:x}"),
                    b'X' => format!("{n:X}"),
                    _ => format!("{n:o}"),
                };
                if let Some(p) = prec {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let prefix = if alt && n != 0 {
                    match conv {
                        b'x' => "0x",
                        b'X' => "0X",
                        b'o' => "0",
                        _ => "",
                    }
                } else {
                    ""
                };
                if zero && !left && prec.is_none() {
                    while s.len() + prefix.len() < width {
                        s.insert(0, '0');
                    }
                }
                format!("{prefix}{s}")
            }
            b'p' => format!("{:016X}", next()),
            b'c' | b'C' => {
                let v = next();
                char::from_u32(if wide || conv == b'C' { v as u16 as u32 } else { v as u8 as u32 })
                    .unwrap_or('?')
                    .to_string()
            }
            b's' | b'S' => {
                let p = next() as usize;
                // SAFETY: the driver passes a NUL-terminated narrow or wide
                // string (or NULL) for %s / %S / %ws.
                unsafe {
                    if wide || conv == b'S' {
                        read_wstr(p as *const u16, prec.unwrap_or(4096))
                    } else {
                        crate::kernel::read_cstr(p as *const u8, prec.unwrap_or(4096))
                    }
                }
            }
            b'Z' => {
                let p = next() as usize;
                // SAFETY: %wZ takes a PUNICODE_STRING, %Z a PANSI_STRING.
                unsafe { counted_string(p, wide) }
            }
            other => format!("%{}", other as char),
        };
        let pad = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    (out, unicode)
}

/// # Safety
/// `p` is null or a NUL-terminated UTF-16 string.
unsafe fn read_wstr(p: *const u16, max: usize) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    let mut v = Vec::new();
    for i in 0..max {
        // SAFETY: per the caller.
        let c = unsafe { *p.add(i) };
        if c == 0 {
            break;
        }
        v.push(c);
    }
    String::from_utf16_lossy(&v)
}

/// # Safety
/// `p` is null or a valid UNICODE_STRING (wide) / ANSI_STRING.
unsafe fn counted_string(p: usize, wide: bool) -> String {
    if p == 0 {
        return "(null)".into();
    }
    // Both are { USHORT Length; USHORT MaximumLength; PVOID Buffer; }.
    // SAFETY: per the caller.
    let s = unsafe { &*(p as *const ndis_sys::UNICODE_STRING) };
    if s.Buffer.is_null() {
        return "(null)".into();
    }
    let n = s.Length as usize;
    // SAFETY: the buffer holds `Length` bytes.
    unsafe {
        if wide {
            String::from_utf16_lossy(std::slice::from_raw_parts(s.Buffer, n / 2))
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(s.Buffer.cast::<u8>(), n)).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format;

    fn fmt(f: &str, args: &[u64]) -> String {
        let c = std::ffi::CString::new(f).unwrap();
        // SAFETY: a NUL-terminated format and one slot per conversion.
        unsafe { format(c.as_ptr().cast(), args.as_ptr()) }
    }

    #[test]
    fn integers_and_widths() {
        assert_eq!(fmt("%d %u %x %X", &[-5i64 as u64, 7, 255, 255]), "-5 7 ff FF");
        assert_eq!(fmt("%08x|%-4d|%4d", &[0xbeef, 3, 3]), "0000beef|3   |   3");
        assert_eq!(fmt("%ld %lu %lx", &[(-1i64) as u64, 0x1_0000_0001, 0x1_0000_00ff]), "-1 1 ff");
        assert_eq!(
            fmt("%I64x %llx %lld", &[0x1_0000_0000, 0xabc_0000_0000, (-3i64) as u64]),
            "100000000 abc00000000 -3"
        );
        assert_eq!(fmt("%p", &[0x1234]), "0000000000001234");
        assert_eq!(fmt("%c%%", &[b'A' as u64]), "A%");
    }

    #[test]
    fn strings() {
        let s = std::ffi::CString::new("hi").unwrap();
        let w: Vec<u16> = "wide\0".encode_utf16().collect();
        let us = ndis_sys::UNICODE_STRING { Length: 8, MaximumLength: 10, Buffer: w.as_ptr().cast_mut() };
        let out = fmt(
            "%s %S %ws %wZ %s",
            &[s.as_ptr() as u64, w.as_ptr() as u64, w.as_ptr() as u64, &us as *const _ as u64, 0],
        );
        assert_eq!(out, "hi wide wide wide (null)");
    }

    #[test]
    fn unicode_conversions_are_named() {
        let code = |f: &str, args: &[u64]| {
            let c = std::ffi::CString::new(f).unwrap();
            // SAFETY: a NUL-terminated format and one slot per conversion.
            unsafe { super::format_checked(c.as_ptr().cast(), args.as_ptr()) }.1
        };
        let s = std::ffi::CString::new("hi").unwrap();
        let w: Vec<u16> = "w\0".encode_utf16().collect();
        let (sp, wp) = (s.as_ptr() as u64, w.as_ptr() as u64);
        assert_eq!(code("%s %d %hs %c %x %p", &[sp, 1, sp, 65, 2, 3]), None);
        assert_eq!(code("%s %-8ws", &[sp, wp]).as_deref(), Some("%-8ws"));
        assert_eq!(code("%S", &[wp]).as_deref(), Some("%S"));
        assert_eq!(code("%ls", &[wp]).as_deref(), Some("%ls"));
        assert_eq!(code("%C %wc", &[65, 66]).as_deref(), Some("%C"));
        assert_eq!(code("%lc", &[65]).as_deref(), Some("%lc"));
        assert_eq!(code("%wZ", &[0]).as_deref(), Some("%wZ"));
        assert_eq!(code("%Z", &[0]), None);
    }
}
