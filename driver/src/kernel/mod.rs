//! The safe wrapper layer: every `unsafe` of the driver lives below this
//! module (and `ndis-sys` declares what it calls). Above it, the driver
//! logic sees owned types whose use cannot break NDIS's rules: a
//! `SendBatch` exists only while the binding is Running, a sent NBL cannot
//! be reached until its completion, a `RetainedFrame` returns its NBL when
//! dropped, an IRP is completed exactly once.

#![allow(non_upper_case_globals)]

pub mod alloc;
pub mod debug;
pub mod device;
pub mod entry;
pub mod mem;
pub mod nbl;
pub mod oid;
pub mod panic;
pub mod protocol;
pub mod sync;
pub mod time;
pub mod umem;
pub mod ustr;
pub mod work;
