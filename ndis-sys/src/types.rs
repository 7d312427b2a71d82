//! Scalar typedefs of the Windows x64 (LLP64) C headers.
//!
//! `long` is 32 bits on Windows, so `ULONG` is `u32` even on a Linux host.

use core::ffi::c_void;

pub type PVOID = *mut c_void;
pub type HANDLE = PVOID;
pub type NTSTATUS = i32;
pub type NDIS_STATUS = i32;
pub type NDIS_HANDLE = PVOID;
pub type BOOLEAN = u8;
pub type CSHORT = i16;
pub type CCHAR = i8;
pub type KIRQL = u8;
pub type KPRIORITY = i32;
pub type KPROCESSOR_MODE = i8;
pub type KSPIN_LOCK = usize;
pub type ULONG_PTR = usize;
pub type SIZE_T = usize;
pub type ACCESS_MASK = u32;
pub type WCHAR = u16;
pub type NDIS_OID = u32;
pub type NDIS_PORT_NUMBER = u32;
pub type NET_IFINDEX = u32;
/// `NET_LUID` is a union of a `ULONG64` and a bitfield struct; only the
/// integer is used.
pub type NET_LUID = u64;
pub type NDIS_MEDIUM = u32;
pub type NDIS_PHYSICAL_MEDIUM = u32;
pub type NDIS_MEDIA_CONNECT_STATE = u32;
pub type NDIS_MEDIA_DUPLEX_STATE = u32;
pub type NDIS_SUPPORTED_PAUSE_FUNCTIONS = u32;
pub type NDIS_REQUEST_TYPE = u32;
pub type NET_PNP_EVENT_CODE = u32;
pub type NET_DEVICE_POWER_STATE = u32;
pub type NDIS_STATUS_CODE = NDIS_STATUS;
pub type NET_IF_ACCESS_TYPE = u32;
pub type NET_IF_DIRECTION_TYPE = u32;
pub type NET_IF_CONNECTION_TYPE = u32;
pub type NET_IFTYPE = u16;
pub type NET_IF_COMPARTMENT_ID = u32;
pub type POOL_TYPE = u32;
pub type EVENT_TYPE = u32;
pub type KWAIT_REASON = u32;
pub type DEVICE_TYPE = u32;
pub type SECURITY_INFORMATION = u32;
pub type PSID = PVOID;
pub type PSECURITY_DESCRIPTOR = PVOID;
