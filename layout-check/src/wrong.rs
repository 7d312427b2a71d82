//! Deliberately wrong declarations of two header structures. The build
//! script reads this file as it reads ndis-sys (record names, members in
//! order) and writes `mingw::WRONG_CHECKS` for it through the same walk and
//! the same generated `offset_of`-style expressions, so the tests can show
//! that a wrong layout is caught and named.

#![allow(non_snake_case, non_camel_case_types, dead_code)]

/// `Size` and `Revision` swapped: `Revision` lands at 4, not 1, and the
/// structure is 6 bytes, not 4.
#[repr(C)]
pub struct NDIS_OBJECT_HEADER {
    pub Type: u8,
    pub Size: u16,
    pub Revision: u8,
}

/// `Blink` misspelt: the header has no member `Back`.
#[repr(C)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Back: *mut LIST_ENTRY,
}
