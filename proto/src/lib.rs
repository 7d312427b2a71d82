//! rawnic's user/kernel interface: device names, IOCTL codes, NTSTATUS
//! values and the versioned wire formats, shared by the driver (no_std) and
//! user mode.
//!
//! Every buffer user mode hands in is parsed through a `new_checked`
//! constructor that validates all lengths, counts and versions before any
//! field is read; the accessors of a checked view cannot fail. Every
//! structure the driver writes is emitted by a `Repr::emit` that writes only
//! the bytes it owns, so no output carries bytes that were not written.
//!
//! All integers are little-endian. All records are padded to 8 bytes.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

/// Declares a wire enum: a Rust enum for the values a field is known to
/// take, plus `Unknown(raw)` for any other, so that decoding never fails
/// and encoding gives back exactly the integer read (`From` both ways).
/// Each known variant also gets its name for people (`name()`), and
/// unknown values are called "unknown".
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident: $raw:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:path, $text:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $ty {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the crate has no name for.
            Unknown($raw),
        }

        impl From<$raw> for $ty {
            fn from(v: $raw) -> Self {
                match v {
                    $( $value => $ty::$variant, )+
                    other => $ty::Unknown(other),
                }
            }
        }

        impl From<$ty> for $raw {
            fn from(v: $ty) -> $raw {
                match v {
                    $( $ty::$variant => $value, )+
                    $ty::Unknown(other) => other,
                }
            }
        }

        impl $ty {
            /// The lower-case name tools print ("unknown" for a value
            /// without one).
            pub fn name(self) -> &'static str {
                match self {
                    $( $ty::$variant => $text, )+
                    $ty::Unknown(_) => "unknown",
                }
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub mod bridge;
pub mod filter;
#[cfg(feature = "alloc")]
pub mod hex;
pub mod ioctl;
pub mod msg;
pub mod ring;
pub mod status;
pub mod time;
pub mod vlan;
pub mod wire;

pub use filter::PacketFilter;
pub use ioctl::*;
pub use msg::*;
pub use status::{Error, NtStatus};
pub use vlan::*;

/// The wire-format version this crate speaks. Every request and reply
/// starts with it.
///
/// - 1: the first.
/// - 2: the IOCTL codes carry the access the I/O manager checks on the
///   handle: FILE_READ_ACCESS to read state (LIST_BINDINGS,
///   WAIT_BINDS_COMPLETE, QUERY_OID, GET_STATS, WAIT_EVENT),
///   FILE_WRITE_ACCESS to send and set OIDs (SEND_BATCH, SET_OID), both to
///   OPEN (it receives frames and sets the adapter's packet filter);
///   GET_VERSION alone needs none.
/// - 3: a truthful packet filter: OPEN may ask to fail unless the adapter
///   gives every filter bit asked for (`open_flags::STRICT_FILTER`); the
///   OPEN reply and GET_STATS carry the handle's effective filter; a
///   listed binding carries the filters its adapter supports and refused;
///   event `FILTER_REFUSED` (records grow to 40 bytes) tells a handle its
///   filter shrank. And 802.1Q tags: the record flag `TAGGED` (the frame
///   had a tag, stripped with `VLAN` or inline in the data, and `tci` is
///   its TCI, even 0); SEND_BATCH and WriteFile frames that carry their
///   tag inline may be MTU + 18 bytes long; a `TAG` frame's tag is written
///   into the frame by the driver when the adapter does not insert it.
/// - 4: receive offloads. A frame the NIC coalesced (RSC, URO) is
///   delivered whole, however long, with the record flag `COALESCED`; the
///   record's last 4 bytes (reserved and 0 before) carry the segment count
///   and, for URO, the segment size (`FrameHeader::segs`, `seg_size`).
///   The smallest receive queue (`MIN_QUEUE_BYTES`) is 128 KiB, so that it
///   holds the largest coalesced frame. GET_VERSION's NDIS version is the
///   one the driver registered with (6.89 where NDIS has it, else 6.30).
/// - 5: rings (`ring`): RING_ATTACH, RING_DETACH, RING_WAIT, RING_KICK.
///   Later, within 5: event `FILTER_FAILED` (8), which a client that does
///   not know it sees as an event of an unknown kind; and GET_STATS's
///   header flag `stats_flags::FILTER_PENDING` (the adapter does not have
///   the handle's filter yet; a client that does not know it refuses a
///   reply that carries it as invalid, so it learns something is amiss).
pub const PROTO_VERSION: u16 = 5;

/// The kernel name of the control device.
pub const DEVICE_NAME: &str = "\\Device\\RawNic";
/// The symbolic link the driver creates for it.
pub const SYMLINK_NAME: &str = "\\DosDevices\\RawNic";
/// The path user mode opens.
pub const USER_PATH: &str = "\\\\.\\RawNic";
/// The NDIS protocol name the driver registers (and the INF's service name).
pub const PROTOCOL_NAME: &str = "RAWNIC";

/// How each debug line starts that rawnic prints when one of its safety
/// nets caught a broken invariant and survived it (the driver's
/// `safety_net!`). The tests, the explorer, the fuzzer and ndisim's demo
/// fail on such a line (ndisim's `SimBuilder::forbid_debug_lines`); one
/// constant, so the driver and what watches it cannot drift apart.
pub const SAFETY_NET_LINE: &str = "rawnic: safety net: ";

/// The bug check code rawnic's panic handler raises, `0x5241574E` ("RAWN"
/// in ASCII), so that a crash dump names the driver at once. Parameters:
/// 1 = address of the NUL-terminated source file name, 2 = line, 3 =
/// column. ndisim decodes it, and the verifier fixtures raise it too.
pub const BUGCHECK_PANIC: u32 = u32::from_be_bytes(*b"RAWN");
