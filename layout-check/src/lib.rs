//! Checks ndis-sys's hand-written layouts against bindgen's reading of real
//! C headers.
//!
//! The build script runs bindgen over the headers and generates, for every
//! structure that both ndis-sys and the headers declare, a table of
//! [`Check`]s: the structure's size and alignment, and each member's offset
//! and size, once as ndis-sys lays it out and once as the generated
//! bindings do. The numbers are constant expressions evaluated by rustc
//! (`size_of`, `align_of`, and [`offset!`]/[`member_size!`] through nested
//! structs and unions); nothing is computed by hand. bindgen's own layout
//! assertions, compiled with the bindings, hold those bindings to clang's
//! layout of the C declarations. [`model`] pairs the members by C name.
//!
//! - [`mingw`]: mingw-w64's `ddk/ntifs.h` (`ntddk.h` and more) and
//!   `ntddndis.h`, on any host; `tests/mingw.rs` compares, allowing only the
//!   header gaps that [`gaps::MINGW_GAPS`] lists and explains.
//! - `wdk` (feature `wdk`, Windows with the WDK only): the WDK's `ndis.h`
//!   for NDIS 6.30; every check must agree, but for
//!   [`gaps::WDK_ALLOWED`], or the crate does not compile.
//!
//! See ARCHITECTURE.md for how these checks and the table from Windows'
//! symbols (`tests/layout.rs`) cover ndis-sys.

use core::fmt;

pub mod gaps;
pub mod model;
pub mod wrong;

/// What a [`Check`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The structure's size.
    Size,
    /// The structure's alignment.
    Align,
    /// A member's offset from the start of the structure.
    Offset,
    /// A member's size.
    MemberSize,
}

/// One number, as ndis-sys has it and as the header has it.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// The C name of the structure (`IRP`).
    pub c_type: &'static str,
    /// The C member path (`Tail.Overlay.Thread`); empty for the whole structure.
    pub member: &'static str,
    pub what: What,
    pub ours: usize,
    /// `None` when the header does not declare the member.
    pub theirs: Option<usize>,
    /// `IRP.Tail.Overlay.Thread: offset`, for compile-time messages.
    pub label: &'static str,
}

impl Check {
    /// True when the header declares the member and the numbers are equal.
    pub const fn agrees(&self) -> bool {
        match self.theirs {
            Some(t) => t == self.ours,
            None => false,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name =
            if self.member.is_empty() { self.c_type.to_string() } else { format!("{}.{}", self.c_type, self.member) };
        match (self.what, self.theirs) {
            (_, None) => write!(f, "{name}: ndis-sys declares it, the header does not"),
            (What::Size, Some(t)) => write!(f, "sizeof({name}): ndis-sys {:#x}, header {t:#x}", self.ours),
            (What::Align, Some(t)) => write!(f, "alignof({name}): ndis-sys {:#x}, header {t:#x}", self.ours),
            (What::Offset, Some(t)) => write!(f, "{name} at {:#x} in ndis-sys, {t:#x} in the header", self.ours),
            (What::MemberSize, Some(t)) => {
                write!(f, "{name} is {:#x} bytes in ndis-sys, {t:#x} in the header", self.ours)
            }
        }
    }
}

/// The size of the value `_field` points to; `member_size!` calls it with a
/// pointer to a field, which it never reads.
pub const fn pointee_size<F>(_field: *const F) -> usize {
    core::mem::size_of::<F>()
}

/// The offset of a (nested, possibly union) field: `offset!(IRP, Tail.Overlay.Thread)`.
/// Evaluated by rustc, in `const` context too; nothing is read.
#[allow(unused_macros)] // only the generated tables use it
macro_rules! offset {
    ($t:ty, $($f:ident).+) => {{
        let value = ::core::mem::MaybeUninit::<$t>::uninit();
        let base = value.as_ptr();
        // SAFETY: only the address of a field of `value` is taken; no memory is read.
        let field = unsafe { &raw const (*base).$($f).+ };
        // SAFETY: both pointers are into the same allocation, `value`.
        unsafe { field.cast::<u8>().offset_from(base.cast::<u8>()) as usize }
    }};
}

/// The size of a (nested, possibly union) field's type.
#[allow(unused_macros)] // only the generated tables use it
macro_rules! member_size {
    ($t:ty, $($f:ident).+) => {{
        let value = ::core::mem::MaybeUninit::<$t>::uninit();
        let base = value.as_ptr();
        // SAFETY: only the address of a field of `value` is taken; no memory is read.
        $crate::pointee_size(unsafe { &raw const (*base).$($f).+ })
    }};
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// True when `gap` names `check`'s number.
pub const fn names(gap: &Gap, check: &Check) -> bool {
    str_eq(gap.c_type, check.c_type) && str_eq(gap.member, check.member) && gap.what as u8 == check.what as u8
}

/// Panics, naming the first check that neither agrees nor is `allowed`. In
/// a `const` item this fails the build with that name.
pub const fn assert_all_agree(checks: &[Check], allowed: &[Gap]) {
    let mut i = 0;
    while i < checks.len() {
        if !checks[i].agrees() {
            let mut j = 0;
            while j < allowed.len() && !names(&allowed[j], &checks[i]) {
                j += 1;
            }
            if j == allowed.len() {
                panic!("{}", checks[i].label);
            }
        }
        i += 1;
    }
}

/// A difference between ndis-sys and a header that is known and explained:
/// the header, not ndis-sys, is behind Windows (ndis-sys follows Windows'
/// symbols, `tests/layout.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    pub c_type: &'static str,
    /// Empty for the whole structure.
    pub member: &'static str,
    pub what: What,
    pub reason: &'static str,
}

/// What [`compare`] found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Structures compared.
    pub types: usize,
    /// Members compared (by C path, nested members included).
    pub members: usize,
    /// Numbers compared.
    pub checks: usize,
    /// The gaps that were seen, as listed.
    pub gaps_seen: usize,
    /// One line per difference that no gap explains, and per gap that no
    /// longer is one.
    pub failures: Vec<String>,
}

/// Compares every check, allowing exactly the listed gaps.
pub fn compare(checks: &[Check], gaps: &[Gap]) -> Outcome {
    let mut out = Outcome { checks: checks.len(), ..Outcome::default() };
    let mut types = std::collections::BTreeSet::new();
    let mut members = std::collections::BTreeSet::new();
    let mut seen = vec![false; gaps.len()];
    for c in checks {
        types.insert(c.c_type);
        if !c.member.is_empty() {
            members.insert((c.c_type, c.member));
        }
        let gap = gaps.iter().position(|g| names(g, c));
        match (c.agrees(), gap) {
            (true, _) => {}
            (false, Some(i)) => seen[i] = true,
            (false, None) => out.failures.push(c.to_string()),
        }
    }
    for (g, seen) in gaps.iter().zip(seen) {
        if seen {
            out.gaps_seen += 1;
        } else {
            out.failures.push(format!(
                "listed gap {}.{} ({:?}) is not a difference any more: remove it from the list",
                g.c_type, g.member, g.what
            ));
        }
    }
    out.types = types.len();
    out.members = members.len();
    out
}

/// The C integer types of the Windows x64 (LLP64) ABI, which the generated
/// bindings use on every host (`long` is 32 bits on Windows).
#[allow(non_camel_case_types)]
pub mod llp64 {
    pub type c_char = i8;
    pub type c_schar = i8;
    pub type c_uchar = u8;
    pub type c_short = i16;
    pub type c_ushort = u16;
    pub type c_int = i32;
    pub type c_uint = u32;
    pub type c_long = i32;
    pub type c_ulong = u32;
    pub type c_longlong = i64;
    pub type c_ulonglong = u64;
    pub type c_float = f32;
    pub type c_double = f64;
    pub use core::ffi::c_void;
}

/// mingw-w64's `ddk/ntifs.h` and `ntddndis.h`, read by bindgen for x64
/// Windows (`x86_64-w64-windows-gnu`, `-mms-bitfields`, `-fms-extensions`):
/// the bindings, `CHECKS` (ndis-sys against them) and `WRONG_CHECKS`
/// ([`wrong`] against them).
///
/// `UNAVAILABLE` says why, when the build script could not read them
/// (libclang or the headers missing); the tables are then empty.
#[allow(warnings, clippy::all, clippy::pedantic, clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
pub mod mingw {
    include!(concat!(env!("OUT_DIR"), "/mingw.rs"));
}

/// The WDK's `ndis.h` (NDIS 6.30, `NDIS630`, `NDIS_WDM`), read by bindgen on
/// a Windows host where wdk-build finds the WDK. Every check must agree, but
/// for [`gaps::WDK_ALLOWED`]: this is evaluated at compile time.
#[cfg(feature = "wdk")]
#[allow(warnings, clippy::all, clippy::pedantic, clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
pub mod wdk {
    include!(concat!(env!("OUT_DIR"), "/wdk.rs"));

    const _: () = crate::assert_all_agree(CHECKS, crate::gaps::WDK_ALLOWED);
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn check(ours: usize, theirs: Option<usize>, label: &'static str) -> Check {
        Check { c_type: "T", member: "m", what: What::Offset, ours, theirs, label }
    }

    #[test]
    fn agreeing_checks_pass() {
        assert_all_agree(&[check(8, Some(8), "T.m: offset"), check(0, Some(0), "T.n: offset")], &[]);
    }

    #[test]
    #[should_panic(expected = "T.m: offset")]
    fn a_different_number_fails() {
        assert_all_agree(&[check(0, Some(0), "T.n: offset"), check(8, Some(16), "T.m: offset")], &[]);
    }

    #[test]
    #[should_panic(expected = "T.m: offset")]
    fn a_member_the_header_lacks_fails() {
        assert_all_agree(&[check(8, None, "T.m: offset")], &[]);
    }

    #[test]
    fn an_allowed_difference_passes_and_a_stale_one_is_reported() {
        let allowed = [Gap { c_type: "T", member: "m", what: What::Offset, reason: "r" }];
        assert_all_agree(&[check(8, Some(16), "T.m: offset")], &allowed);
        assert!(compare(&[check(8, Some(16), "")], &allowed).failures.is_empty());
        let stale = compare(&[check(8, Some(8), "")], &allowed);
        assert_eq!(stale.failures, ["listed gap T.m (Offset) is not a difference any more: remove it from the list"]);
        let other = Gap { what: What::MemberSize, ..allowed[0] };
        assert_eq!(compare(&[check(8, Some(16), "")], &[other]).failures.len(), 2);
    }

    #[test]
    fn the_macros_reach_through_nested_unions() {
        #[repr(C)]
        union U {
            _a: u8,
            b: [u16; 3],
        }
        #[repr(C)]
        struct S {
            _x: u32,
            u: U,
        }
        const OFFSET: usize = offset!(S, u.b);
        assert_eq!(OFFSET, 4);
        assert_eq!(member_size!(S, u.b), 6);
    }
}
