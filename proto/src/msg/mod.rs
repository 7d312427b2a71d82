//! The messages: each request and reply, with a checked parser (`parse` or
//! `new_checked`) and an emitter (`emit`).
//!
//! Every request's input starts with a 4-byte header: `version: u16` (must
//! be `PROTO_VERSION`) and `flags: u16` (must be 0 unless the message says
//! otherwise).

use crate::PROTO_VERSION;
use crate::status::Error;
use crate::vlan::{VLAN_TAG, inline_tci};
use crate::wire::{Writer, i32_at, pad8, u16_at, u32_at, u64_at};

/// Largest number of frames in one `SEND_BATCH`.
pub const MAX_BATCH: u32 = 4096;
/// Largest EtherType filter set.
pub const MAX_ETHERTYPES: usize = 32;
/// Longest adapter name, in bytes of UTF-8.
pub const MAX_NAME: usize = 512;
/// Largest OID data buffer.
pub const MAX_OID_DATA: u32 = 64 * 1024;
/// Most OID requests a handle may have pending at once; the next one
/// completes with STATUS_INSUFFICIENT_RESOURCES.
pub const MAX_HANDLE_OIDS: usize = 64;
/// Most READs a handle may have pending at once (each is an IRP the
/// driver keeps until a frame comes); the next one completes with
/// STATUS_INSUFFICIENT_RESOURCES.
pub const MAX_HANDLE_READS: usize = 1024;
/// Most WAIT_EVENTs a handle may have pending at once, and apart from
/// them most WAIT_BINDS_COMPLETEs; the next one completes with
/// STATUS_INSUFFICIENT_RESOURCES.
pub const MAX_HANDLE_EVENT_WAITS: usize = 64;
/// Default receive queue bound, in frames.
pub const DEFAULT_QUEUE_FRAMES: u32 = 4096;
/// Default receive queue bound, in bytes.
pub const DEFAULT_QUEUE_BYTES: u32 = 8 * 1024 * 1024;
/// Largest receive queue bound, in frames.
pub const MAX_QUEUE_FRAMES: u32 = 1 << 20;
/// Smallest and largest receive queue bounds, in bytes. The smallest
/// holds the record of the largest frame NDIS indicates: a coalesced unit
/// (RSC, URO) of up to a 64 KiB IP datagram, with its Ethernet header.
pub const MIN_QUEUE_BYTES: u32 = 128 * 1024;
pub const MAX_QUEUE_BYTES: u32 = 256 * 1024 * 1024;
/// Most multicast addresses one handle may set (`OID_802_3_MULTICAST_LIST`);
/// the binding gets the union of its handles' lists.
pub const MAX_HANDLE_MULTICAST: usize = 32;
/// The most memory (non-paged pool) all handles' receive queues take
/// together. A queue grows (up to its own bound) only while this allows;
/// beyond, frames that do not fit what it has are dropped and counted.
pub const MAX_QUEUES_POOL_BYTES: usize = 1024 * 1024 * 1024;
/// The pool all handles' capture programs may take together (SET_PROGRAM):
/// a program past it is refused with `STATUS_INSUFFICIENT_RESOURCES`, so
/// handles opened by the thousand cannot take the system's non-paged pool
/// 64 KiB at a time.
pub const MAX_PROGRAMS_POOL_BYTES: usize = 16 * 1024 * 1024;
/// An Ethernet header.
pub const ETH_HEADER: usize = 14;

pub use crate::filter::{self, PacketFilter};

fn check_header(buf: &[u8], allowed_flags: u16) -> Result<u16, Error> {
    if buf.len() < 4 {
        return Err(Error::Truncated);
    }
    if u16_at(buf, 0) != PROTO_VERSION {
        return Err(Error::Version);
    }
    let flags = u16_at(buf, 2);
    if flags & !allowed_flags != 0 {
        return Err(Error::InvalidParameter);
    }
    Ok(flags)
}

/// A request with no parameters: exactly the 4-byte header.
pub struct EmptyRequest;

impl EmptyRequest {
    pub const LEN: usize = 4;

    pub fn parse(buf: &[u8]) -> Result<(), Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(())
    }

    pub fn emit(buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?;
        Ok(w.position())
    }
}

// ---------------------------------------------------------------------------
// GET_VERSION
// ---------------------------------------------------------------------------

/// `IOCTL_RAWNIC_GET_VERSION` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionReply {
    pub proto_version: u16,
    pub driver: (u16, u16, u16),
    pub ndis: (u8, u8),
    pub max_batch: u32,
}

impl VersionReply {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(self.proto_version)?.u16(0)?;
        w.u16(self.driver.0)?.u16(self.driver.1)?.u16(self.driver.2)?;
        w.u8(self.ndis.0)?.u8(self.ndis.1)?.u32(self.max_batch)?;
        Ok(w.position())
    }

    /// Any version's reply parses (that is how a client learns it).
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        Ok(VersionReply {
            proto_version: u16_at(buf, 0),
            driver: (u16_at(buf, 4), u16_at(buf, 6), u16_at(buf, 8)),
            ndis: (buf[10], buf[11]),
            max_batch: u32_at(buf, 12),
        })
    }
}

mod list;
pub use list::*;
mod open;
pub use open::*;
mod send;
pub use send::*;
mod records;
pub use records::*;
mod oid;
pub use oid::*;
mod stats;
pub use stats::*;
mod events;
pub use events::*;
mod program;
pub use program::*;
