//! Field tables for every `#[repr(C)]` type this crate declares.
//!
//! The `ffi_types!` macro declares the types and, beside each one, a table
//! of `(field, offset, size, type)` computed by the compiler with
//! `offset_of!` and `size_of`. The workspace test `tests/layout.rs` compares
//! those tables with `ndis-sys/layout/ndis-x64-layout.tsv`, the offsets that
//! Windows' own symbols give. Nothing here is used at run time.

/// One field of a declared type, as the compiler laid it out.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The Rust field name, which is the C member name. Members that C
    /// declares anonymously are named `anon*`; the layout test looks through
    /// them, as C does.
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    /// The Rust type, as written (`LIST_ENTRY`, `[PVOID; 4]`, `*mut IRP`).
    pub ty: &'static str,
}

/// One declared type.
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo {
    /// The Rust name.
    pub rust: &'static str,
    /// The name the layout table uses for it (C tag or typedef name).
    pub c: &'static str,
    pub size: usize,
    pub align: usize,
    pub fields: &'static [Field],
}

/// Declares `#[repr(C)]` structs and unions, each with a field table, and a
/// `TYPES` list of everything declared in the invocation.
macro_rules! ffi_types {
    (
        const $types:ident;
        $(
            $(#[doc = $doc:literal])*
            $(#[c = $cname:literal])?
            #[repr($($repr:tt)*)]
            pub $kind:tt $name:ident {
                $(
                    $(#[doc = $fdoc:literal])*
                    pub $field:ident : $fty:ty
                ),* $(,)?
            }
        )*
    ) => {
        $(
            $(#[doc = $doc])*
            #[repr($($repr)*)]
            #[derive(Clone, Copy)]
            #[allow(non_snake_case, non_camel_case_types)]
            pub $kind $name {
                $(
                    $(#[doc = $fdoc])*
                    pub $field: $fty,
                )*
            }
        )*

        /// Every type declared in this module, with its field table.
        pub const $types: &[$crate::layout::TypeInfo] = &[
            $(
                $crate::layout::TypeInfo {
                    rust: stringify!($name),
                    c: ffi_types!(@cname $name $($cname)?),
                    size: ::core::mem::size_of::<$name>(),
                    align: ::core::mem::align_of::<$name>(),
                    fields: &[
                        $(
                            $crate::layout::Field {
                                name: stringify!($field),
                                offset: ::core::mem::offset_of!($name, $field),
                                size: ::core::mem::size_of::<$fty>(),
                                ty: stringify!($fty),
                            },
                        )*
                    ],
                },
            )*
        ];
    };
    (@cname $name:ident $cname:literal) => { $cname };
    (@cname $name:ident) => { stringify!($name) };
}

pub(crate) use ffi_types;

/// Every type the crate declares.
pub fn all_types() -> impl Iterator<Item = &'static TypeInfo> {
    crate::wdm::WDM_TYPES.iter().chain(crate::ndis::NDIS_TYPES.iter())
}
