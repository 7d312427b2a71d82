//! Where mingw-w64's headers differ from Windows, and so from ndis-sys,
//! which follows Windows' own symbols (`tests/layout.rs`). Each is a number
//! the check compares and the header gets wrong or leaves out; every other
//! difference fails the check, and so does a listed gap that stops being
//! one.

use crate::{Gap, What};

const DH_RESERVED1: &str = "DISPATCHER_HEADER's fourth byte is Reserved1 in Windows 10's symbols; mingw-w64 has the \
     Windows 7 WDK's unnamed union there (TimerMiscFlags, DebugActive, DpcActive), same offset and size";
const NEW_HEAD_MEMBERS: &str = "AllocationProcessorNumber and Reserved (Windows 7 and later) fill what mingw-w64 \
     leaves as padding after the two CSHORTs; every later offset and the size agree";

const fn gap(c_type: &'static str, member: &'static str, what: What, reason: &'static str) -> Gap {
    Gap { c_type, member, what, reason }
}

/// The known differences between ndis-sys and mingw-w64's `ntddk.h` and
/// `ntddndis.h`.
pub const MINGW_GAPS: &[Gap] = &[
    gap(
        "DEVICE_OBJECT",
        "",
        What::Size,
        "the WDK declares DEVICE_OBJECT DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT), 16 on x64, which rounds \
         0x148 up to Windows' 0x150; mingw-w64 does not",
    ),
    gap("DEVICE_OBJECT", "", What::Align, "the same DECLSPEC_ALIGN(16), missing from mingw-w64"),
    gap("DISPATCHER_HEADER", "Reserved1", What::Offset, DH_RESERVED1),
    gap("KEVENT", "Header.Reserved1", What::Offset, DH_RESERVED1),
    gap("DEVICE_OBJECT", "DeviceLock.Header.Reserved1", What::Offset, DH_RESERVED1),
    gap("FILE_OBJECT", "Lock.Header.Reserved1", What::Offset, DH_RESERVED1),
    gap("FILE_OBJECT", "Event.Header.Reserved1", What::Offset, DH_RESERVED1),
    gap("MDL", "AllocationProcessorNumber", What::Offset, NEW_HEAD_MEMBERS),
    gap("MDL", "Reserved", What::Offset, NEW_HEAD_MEMBERS),
    gap("IRP", "AllocationProcessorNumber", What::Offset, NEW_HEAD_MEMBERS),
    gap("IRP", "Reserved", What::Offset, NEW_HEAD_MEMBERS),
    gap(
        "IRP",
        "Tail.Overlay.IrpExtension",
        What::Offset,
        "IrpExtension (Windows 8 and later) is missing from mingw-w64's Tail.Overlay",
    ),
    gap(
        "IRP",
        "Tail.Overlay",
        What::MemberSize,
        "without IrpExtension, mingw-w64's Tail.Overlay is 0x50 bytes, not 0x58; Tail and IRP keep their sizes, \
         set by Tail's KAPC",
    ),
];

/// What the `wdk` check allows ndis-sys to differ in from the WDK's headers
/// (NDIS 6.30, WDM): members that Windows' symbols have and the WDK's
/// headers, as far as is known, do not, and the WDK's stricter alignment of
/// IRP. Written without a Windows host to try it on: an entry that turns out
/// not to differ does no harm at compile time, and `tests/wdk.rs` (feature
/// `wdk`) reports it so that it can be removed.
pub const WDK_ALLOWED: &[Gap] = &[
    gap("MDL", "AllocationProcessorNumber", What::Offset, NEW_HEAD_MEMBERS_WDK),
    gap("MDL", "Reserved", What::Offset, NEW_HEAD_MEMBERS_WDK),
    gap("IRP", "AllocationProcessorNumber", What::Offset, NEW_HEAD_MEMBERS_WDK),
    gap("IRP", "Reserved", What::Offset, NEW_HEAD_MEMBERS_WDK),
    gap(
        "IRP",
        "",
        What::Align,
        "the WDK declares IRP DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT); ndis-sys's IRP is 8-aligned, which \
         changes no offset and not its size (0xd0); the driver never allocates an IRP itself",
    ),
];

const NEW_HEAD_MEMBERS_WDK: &str = "in Windows' symbols, not in the WDK's declaration, where the same bytes are \
     padding after the two CSHORTs";
