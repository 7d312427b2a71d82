//! The device bridge: how `rawnicctl --device unix:SOCKET` reaches the
//! driver's control device inside ndisim. One stream connection is one file
//! handle. Requests carry the same IOCTL codes and payload bytes as on
//! Windows; ndisim turns each into a real IRP.
//!
//! Request: `len: u32` (whole message), `op: u8`, 3 zero bytes, `tag: u64`,
//! `code: u32` (IOCTL code, or the desired access for `CREATE`),
//! `out_len: u32` (output buffer size), `in_len: u32`, 4 zero bytes, then
//! `in_len` bytes.
//!
//! Completion: `len: u32`, `kind: u8` (1), 3 zero bytes, `tag: u64`,
//! `status: i32`, 4 zero bytes, `information: u64`, `data_len: u32`,
//! 4 zero bytes, then `data_len` bytes (what the driver wrote).
//!
//! Shared memory (`op::IOCTL_SHARED`): an IOCTL whose output buffer is
//! memory the client shares with ndisim rather than bytes copied back — the
//! UMEM of `IOCTL_RAWNIC_RING_ATTACH` (`ring`). The request message is sent
//! with one file descriptor as `SCM_RIGHTS` ancillary data, in the same
//! `sendmsg` as the message's bytes (on a stream socket the descriptor
//! arrives with the first of them, so it belongs to the message whose bytes
//! carried it). The descriptor is a memfd (`memfd_create` with
//! `MFD_ALLOW_SEALING`, not sealed with `F_SEAL_SEAL`) of exactly `out_len`
//! bytes, a multiple of 4096, open for reading and writing; ndisim seals it
//! with `F_SEAL_SHRINK` before it maps it, so that the client cannot cut the
//! pages from under ndisim's mapping. `code` is a `METHOD_IN_DIRECT` or
//! `METHOD_OUT_DIRECT` IOCTL. ndisim maps it shared:
//! the IRP's MDL describes that memory, so each side sees the other's writes
//! as they happen, for as long as the request is pending. Its completion
//! carries no data (`data_len` 0). A shared-memory message that carries no
//! descriptor, more than one, or one that is not such a memfd, and any
//! READ, WRITE, IOCTL or ALIAS that carries descriptors, completes at once
//! with `STATUS_INVALID_PARAMETER` and no IRP is made (CREATE, CANCEL and
//! CLOSE, which have no completion to refuse them with, end the connection
//! when they carry one); ndisim closes every descriptor it received with a
//! message it refused. Descriptors cannot travel over Winsock's
//! `AF_UNIX`, so a Windows client of the bridge has no shared memory.

use crate::status::Error;
use crate::wire::{Writer, i32_at, u32_at, u64_at};

pub mod op {
    /// `IRP_MJ_CREATE`; `code` is the desired access (GENERIC_READ|WRITE bits).
    pub const CREATE: u8 = 1;
    /// `IRP_MJ_READ` of `out_len` bytes.
    pub const READ: u8 = 2;
    /// `IRP_MJ_WRITE` of the input bytes.
    pub const WRITE: u8 = 3;
    /// `IRP_MJ_DEVICE_CONTROL` with `code`.
    pub const IOCTL: u8 = 4;
    /// Cancels (`IoCancelIrp`) the pending request whose tag is this
    /// message's `tag`; it has no completion of its own.
    pub const CANCEL: u8 = 5;
    /// `IRP_MJ_CLEANUP` then `IRP_MJ_CLOSE`; the connection ends after it.
    pub const CLOSE: u8 = 6;
    /// Not an IRP: the interface alias the host gives the adapter whose
    /// `\DEVICE\{GUID}` name is the input (UTF-8), as IP Helper answers on
    /// Windows; the completion's data is the alias (UTF-8), or the status
    /// is `STATUS_OBJECT_NAME_NOT_FOUND`.
    pub const ALIAS: u8 = 7;
    /// `IRP_MJ_DEVICE_CONTROL` with `code` (METHOD_IN_DIRECT or
    /// METHOD_OUT_DIRECT) whose output buffer is the `out_len`-byte memfd
    /// sent with the message (see the module's documentation).
    pub const IOCTL_SHARED: u8 = 8;
}

/// The bytes of a page: a shared-memory buffer is a whole number of them.
pub const SHARED_PAGE: usize = 4096;

/// `GENERIC_READ` / `GENERIC_WRITE`, for `CREATE`.
pub const GENERIC_READ: u32 = 0x8000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;

/// Largest message either side accepts.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub op: u8,
    pub tag: u64,
    pub code: u32,
    pub out_len: u32,
    pub in_len: u32,
}

impl RequestHeader {
    pub const LEN: usize = 32;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let total = (Self::LEN as u64) + self.in_len as u64;
        if total > MAX_MESSAGE as u64 {
            return Err(Error::Overflow);
        }
        let mut w = Writer::new(buf);
        w.u32(total as u32)?.u8(self.op)?.u8(0)?.u16(0)?.u64(self.tag)?;
        w.u32(self.code)?.u32(self.out_len)?.u32(self.in_len)?.u32(0)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        let len = u32_at(buf, 0) as usize;
        let h = RequestHeader {
            op: buf[4],
            tag: u64_at(buf, 8),
            code: u32_at(buf, 16),
            out_len: u32_at(buf, 20),
            in_len: u32_at(buf, 24),
        };
        if len != Self::LEN + h.in_len as usize || len > MAX_MESSAGE || h.out_len as usize > MAX_MESSAGE {
            return Err(Error::LengthMismatch);
        }
        // The zero bytes are zero, as in every request the driver parses.
        if buf[5..8] != [0, 0, 0] || u32_at(buf, 28) != 0 {
            return Err(Error::InvalidParameter);
        }
        if !(op::CREATE..=op::IOCTL_SHARED).contains(&h.op) {
            return Err(Error::InvalidParameter);
        }
        Ok(h)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletionHeader {
    pub tag: u64,
    pub status: i32,
    pub information: u64,
    pub data_len: u32,
}

impl CompletionHeader {
    pub const LEN: usize = 40;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let total = (Self::LEN as u64) + self.data_len as u64;
        if total > MAX_MESSAGE as u64 {
            return Err(Error::Overflow);
        }
        let mut w = Writer::new(buf);
        w.u32(total as u32)?.u8(1)?.u8(0)?.u16(0)?.u64(self.tag)?;
        w.i32(self.status)?.u32(0)?.u64(self.information)?.u32(self.data_len)?.u32(0)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        let len = u32_at(buf, 0) as usize;
        let h = CompletionHeader {
            tag: u64_at(buf, 8),
            status: i32_at(buf, 16),
            information: u64_at(buf, 24),
            data_len: u32_at(buf, 32),
        };
        if buf[4] != 1 || len != Self::LEN + h.data_len as usize || len > MAX_MESSAGE {
            return Err(Error::LengthMismatch);
        }
        Ok(h)
    }
}
