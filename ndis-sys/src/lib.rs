//! Raw, hand-written NDIS 6 and WDM declarations for x86_64 Windows.
//!
//! This crate holds declarations only: `#[repr(C)]` types, constants and
//! imports. It has no logic. Its layouts are checked against the offsets of
//! Windows' own symbols by `tests/layout.rs` at the workspace root.
//!
//! Every callback type and every import pointer type uses the `win64` ABI,
//! which is the Windows x64 convention on every host; this lets ndisim, a
//! Linux program, call into the driver and be called by it through the same
//! declarations.
#![no_std]
#![allow(non_snake_case, non_camel_case_types, non_upper_case_globals)]
#![allow(clippy::missing_safety_doc)]

pub mod consts;
pub mod imports;
pub mod layout;
pub mod ndis;
pub mod types;
pub mod wdm;

pub use consts::*;
pub use imports::*;
pub use ndis::*;
pub use types::*;
pub use wdm::*;
