//! The messages: each request and reply, with a checked parser (`parse` or
//! `new_checked`) and an emitter (`emit`).
//!
//! Every request's input starts with a 4-byte header: `version: u16` (must
//! be `PROTO_VERSION`) and `flags: u16` (must be 0 unless the message says
//! otherwise).

use crate::status::Error;
use crate::vlan::{inline_tci, VLAN_TAG};
use crate::wire::{i32_at, pad8, u16_at, u32_at, u64_at, Writer};
use crate::PROTO_VERSION;

/// Largest number of frames in one `SEND_BATCH`.
pub const MAX_BATCH: u32 = 4096;
/// Largest EtherType filter set.
pub const MAX_ETHERTYPES: usize = 32;
/// Longest adapter name, in bytes of UTF-8.
pub const MAX_NAME: usize = 512;
/// Largest OID data buffer.
pub const MAX_OID_DATA: u32 = 64 * 1024;
/// Default receive queue bound, in frames.
pub const DEFAULT_QUEUE_FRAMES: u32 = 4096;
/// Default receive queue bound, in bytes.
pub const DEFAULT_QUEUE_BYTES: u32 = 8 * 1024 * 1024;
/// Largest receive queue bound, in frames.
pub const MAX_QUEUE_FRAMES: u32 = 1 << 20;
/// Smallest and largest receive queue bounds, in bytes.
pub const MIN_QUEUE_BYTES: u32 = 64 * 1024;
pub const MAX_QUEUE_BYTES: u32 = 256 * 1024 * 1024;
/// An Ethernet header.
pub const ETH_HEADER: usize = 14;

pub use crate::filter;

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

// ---------------------------------------------------------------------------
// LIST_BINDINGS
// ---------------------------------------------------------------------------

/// Binding state numbers on the wire (the seven states of a binding).
pub mod state {
    pub const UNBOUND: u8 = 0;
    pub const OPENING: u8 = 1;
    pub const PAUSED: u8 = 2;
    pub const RESTARTING: u8 = 3;
    pub const RUNNING: u8 = 4;
    pub const PAUSING: u8 = 5;
    pub const CLOSING: u8 = 6;

    pub fn name(s: u8) -> &'static str {
        match s {
            UNBOUND => "unbound",
            OPENING => "opening",
            PAUSED => "paused",
            RESTARTING => "restarting",
            RUNNING => "running",
            PAUSING => "pausing",
            CLOSING => "closing",
            _ => "unknown",
        }
    }
}

/// Link states on the wire.
pub mod link {
    pub const UNKNOWN: u8 = 0;
    pub const UP: u8 = 1;
    pub const DOWN: u8 = 2;

    pub fn name(s: u8) -> &'static str {
        match s {
            UP => "up",
            DOWN => "down",
            _ => "unknown",
        }
    }
}

/// Header of the `IOCTL_RAWNIC_LIST_BINDINGS` reply. `needed` is the byte
/// count of the whole list; when it exceeds the output buffer the driver
/// returns `STATUS_BUFFER_OVERFLOW` with the entries that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHeader {
    pub count: u32,
    pub needed: u32,
}

impl ListHeader {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.count)?.u32(self.needed)?.u32(0)?;
        Ok(w.position())
    }
}

/// One binding, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingEntry<'a> {
    pub binding_id: u32,
    pub state: u8,
    pub link: u8,
    pub duplex: u8,
    pub mtu: u32,
    pub xmit_speed: u64,
    pub rcv_speed: u64,
    pub mac: [u8; 6],
    /// The packet filter set on the adapter now (all handles' together).
    pub packet_filter: u32,
    pub open_handles: u32,
    /// The packet filters the adapter says it supports.
    pub supported_filter: u32,
    /// Filter bits the adapter refused to set (since the binding began).
    pub refused_filter: u32,
    pub name: &'a str,
    pub description: &'a str,
}

impl<'a> BindingEntry<'a> {
    pub const FIXED: usize = 56;

    /// Bytes this entry takes on the wire.
    pub fn wire_len(&self) -> usize {
        pad8(Self::FIXED + self.name.len() + self.description.len()).unwrap_or(usize::MAX)
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.wire_len();
        if len > u16::MAX as usize || self.name.len() > MAX_NAME || self.description.len() > MAX_NAME {
            return Err(Error::InvalidParameter);
        }
        let mut w = Writer::new(buf);
        w.u16(len as u16)?.u16(self.name.len() as u16)?.u16(self.description.len() as u16)?;
        w.u8(self.state)?.u8(self.link)?;
        w.u32(self.mtu)?.u32(self.binding_id)?;
        w.u64(self.xmit_speed)?.u64(self.rcv_speed)?;
        w.bytes(&self.mac)?.u8(6)?.u8(self.duplex)?;
        w.u32(self.packet_filter)?.u32(self.open_handles)?;
        w.u32(self.supported_filter)?.u32(self.refused_filter)?;
        w.bytes(self.name.as_bytes())?.bytes(self.description.as_bytes())?.pad8()?;
        Ok(w.position())
    }

    /// Parses one entry at the start of `buf`; returns it and its length.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, usize), Error> {
        if buf.len() < Self::FIXED {
            return Err(Error::Truncated);
        }
        let len = u16_at(buf, 0) as usize;
        let name_len = u16_at(buf, 2) as usize;
        let desc_len = u16_at(buf, 4) as usize;
        let need = pad8(Self::FIXED + name_len + desc_len).ok_or(Error::Overflow)?;
        if len != need {
            return Err(Error::LengthMismatch);
        }
        if len > buf.len() {
            return Err(Error::Truncated);
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&buf[32..38]);
        let name_end = Self::FIXED + name_len;
        let name = core::str::from_utf8(&buf[Self::FIXED..name_end]).map_err(|_| Error::BadName)?;
        let description = core::str::from_utf8(&buf[name_end..name_end + desc_len]).map_err(|_| Error::BadName)?;
        Ok((
            BindingEntry {
                state: buf[6],
                link: buf[7],
                mtu: u32_at(buf, 8),
                binding_id: u32_at(buf, 12),
                xmit_speed: u64_at(buf, 16),
                rcv_speed: u64_at(buf, 24),
                mac,
                duplex: buf[39],
                packet_filter: u32_at(buf, 40),
                open_handles: u32_at(buf, 44),
                supported_filter: u32_at(buf, 48),
                refused_filter: u32_at(buf, 52),
                name,
                description,
            },
            len,
        ))
    }
}

/// A checked `LIST_BINDINGS` reply.
pub struct ListReply<'a> {
    buf: &'a [u8],
    pub header: ListHeader,
}

impl<'a> ListReply<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() < ListHeader::LEN {
            return Err(Error::Truncated);
        }
        let header = ListHeader { count: u32_at(buf, 4), needed: u32_at(buf, 8) };
        let reply = ListReply { buf, header };
        // Validate every entry now, so that iteration cannot fail.
        let mut n = 0u32;
        for e in reply.raw_entries() {
            e?;
            n += 1;
        }
        if n != header.count {
            return Err(Error::LengthMismatch);
        }
        Ok(reply)
    }

    fn raw_entries(&self) -> impl Iterator<Item = Result<BindingEntry<'a>, Error>> + '_ {
        let mut off = ListHeader::LEN;
        let mut left = self.header.count;
        let buf = self.buf;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            match BindingEntry::parse(&buf[off.min(buf.len())..]) {
                Ok((e, len)) => {
                    off += len;
                    Some(Ok(e))
                }
                Err(e) => {
                    left = 0;
                    Some(Err(e))
                }
            }
        })
    }

    pub fn entries(&self) -> impl Iterator<Item = BindingEntry<'a>> + '_ {
        self.raw_entries().filter_map(Result::ok)
    }
}

/// `IOCTL_RAWNIC_WAIT_BINDS_COMPLETE` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindsCompleteReply {
    pub bindings: u32,
}

impl BindsCompleteReply {
    pub const LEN: usize = 8;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.bindings)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(BindsCompleteReply { bindings: u32_at(buf, 4) })
    }
}

// ---------------------------------------------------------------------------
// OPEN
// ---------------------------------------------------------------------------

/// Which frames sent from this host a handle receives (besides what
/// arrives from the wire): those of rawnic's other handles on the binding
/// and those NDIS loops back from other protocols, marked
/// `frame_flags::OUTBOUND`. A handle's filters apply to them as to any
/// frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalSends {
    /// Other handles' sends and NDIS's loopback, not the handle's own.
    #[default]
    Others,
    /// Also the handle's own sends.
    All,
    /// None: only frames from the wire.
    None,
}

/// Flags in an `IOCTL_RAWNIC_OPEN` request's header.
pub mod open_flags {
    /// `LocalSends::All`.
    pub const LOCAL_SENDS_ALL: u16 = 0x0001;
    /// `LocalSends::None`.
    pub const LOCAL_SENDS_NONE: u16 = 0x0002;
    /// Fail the open (`STATUS_NOT_SUPPORTED`) unless the adapter gives
    /// every packet-filter bit asked for; without it the handle opens with
    /// what the adapter allows and is told (`event::FILTER_REFUSED`).
    pub const STRICT_FILTER: u16 = 0x0004;
    /// The bits that choose `LocalSends`.
    pub const LOCAL_SENDS: u16 = LOCAL_SENDS_ALL | LOCAL_SENDS_NONE;
    /// Every flag an open may carry.
    pub const ALL: u16 = LOCAL_SENDS | STRICT_FILTER;
}

impl LocalSends {
    fn flags(self) -> u16 {
        match self {
            LocalSends::Others => 0,
            LocalSends::All => open_flags::LOCAL_SENDS_ALL,
            LocalSends::None => open_flags::LOCAL_SENDS_NONE,
        }
    }

    fn from_flags(f: u16) -> Result<Self, Error> {
        match f & open_flags::LOCAL_SENDS {
            0 => Ok(LocalSends::Others),
            open_flags::LOCAL_SENDS_ALL => Ok(LocalSends::All),
            open_flags::LOCAL_SENDS_NONE => Ok(LocalSends::None),
            _ => Err(Error::InvalidParameter),
        }
    }

    /// Whether a handle in this mode receives a frame sent from this host;
    /// `own` when the handle sent it itself.
    #[inline]
    pub fn wants(self, own: bool) -> bool {
        match self {
            LocalSends::Others => !own,
            LocalSends::All => true,
            LocalSends::None => false,
        }
    }
}

/// `IOCTL_RAWNIC_OPEN` request, as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRepr<'a> {
    pub name: &'a str,
    /// EtherTypes to receive; empty means all.
    pub ethertypes: &'a [u16],
    /// `filter::*` bits; 0 receives nothing (a send-only handle).
    pub packet_filter: u32,
    /// 0 means `DEFAULT_QUEUE_FRAMES`.
    pub queue_frames: u32,
    /// 0 means `DEFAULT_QUEUE_BYTES`.
    pub queue_bytes: u32,
    /// Bytes kept of each received frame; 0 keeps all.
    pub snaplen: u32,
    /// Which frames sent from this host the handle receives.
    pub local_sends: LocalSends,
    /// Fail the open unless the adapter gives the whole `packet_filter`
    /// (`open_flags::STRICT_FILTER`).
    pub strict_filter: bool,
}

/// A checked `IOCTL_RAWNIC_OPEN` request.
///
/// Layout: header (4; flags are `open_flags`), `packet_filter: u32`, `queue_frames: u32`,
/// `queue_bytes: u32`, `snaplen: u32`, `name_len: u16`, `n_ethertypes: u16`,
/// then `n_ethertypes` × `u16`, then `name_len` bytes of UTF-8.
pub struct OpenRequest<'a> {
    buf: &'a [u8],
    name: &'a str,
    local_sends: LocalSends,
    strict_filter: bool,
}

impl<'a> OpenRequest<'a> {
    pub const FIXED: usize = 24;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        let flags = check_header(buf, open_flags::ALL)?;
        let local_sends = LocalSends::from_flags(flags)?;
        let strict_filter = flags & open_flags::STRICT_FILTER != 0;
        if buf.len() < Self::FIXED {
            return Err(Error::Truncated);
        }
        let name_len = u16_at(buf, 20) as usize;
        let n_types = u16_at(buf, 22) as usize;
        if n_types > MAX_ETHERTYPES || name_len == 0 || name_len > MAX_NAME {
            return Err(Error::InvalidParameter);
        }
        let total = Self::FIXED + 2 * n_types + name_len;
        if buf.len() != total {
            return Err(Error::LengthMismatch);
        }
        let filter_bits = u32_at(buf, 4);
        if filter_bits & !filter::ALL != 0 {
            return Err(Error::InvalidParameter);
        }
        let frames = u32_at(buf, 8);
        let bytes = u32_at(buf, 12);
        let snaplen = u32_at(buf, 16);
        if frames > MAX_QUEUE_FRAMES
            || (bytes != 0 && !(MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES).contains(&bytes))
            || (snaplen != 0 && (snaplen as usize) < ETH_HEADER)
        {
            return Err(Error::InvalidParameter);
        }
        let name = core::str::from_utf8(&buf[total - name_len..]).map_err(|_| Error::BadName)?;
        Ok(OpenRequest { buf, name, local_sends, strict_filter })
    }

    pub fn local_sends(&self) -> LocalSends {
        self.local_sends
    }

    /// `open_flags::STRICT_FILTER`.
    pub fn strict_filter(&self) -> bool {
        self.strict_filter
    }

    pub fn packet_filter(&self) -> u32 {
        u32_at(self.buf, 4)
    }

    pub fn queue_frames(&self) -> u32 {
        match u32_at(self.buf, 8) {
            0 => DEFAULT_QUEUE_FRAMES,
            n => n,
        }
    }

    pub fn queue_bytes(&self) -> u32 {
        match u32_at(self.buf, 12) {
            0 => DEFAULT_QUEUE_BYTES,
            n => n,
        }
    }

    pub fn snaplen(&self) -> u32 {
        u32_at(self.buf, 16)
    }

    pub fn ethertypes(&self) -> impl Iterator<Item = u16> + '_ {
        let n = u16_at(self.buf, 22) as usize;
        (0..n).map(move |i| u16_at(self.buf, Self::FIXED + 2 * i))
    }

    pub fn name(&self) -> &'a str {
        self.name
    }
}

impl OpenRepr<'_> {
    pub fn wire_len(&self) -> usize {
        OpenRequest::FIXED + 2 * self.ethertypes.len() + self.name.len()
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.ethertypes.len() > MAX_ETHERTYPES || self.name.is_empty() || self.name.len() > MAX_NAME {
            return Err(Error::InvalidParameter);
        }
        let mut w = Writer::new(buf);
        let strict = if self.strict_filter { open_flags::STRICT_FILTER } else { 0 };
        w.u16(PROTO_VERSION)?.u16(self.local_sends.flags() | strict)?;
        w.u32(self.packet_filter)?.u32(self.queue_frames)?.u32(self.queue_bytes)?.u32(self.snaplen)?;
        w.u16(self.name.len() as u16)?.u16(self.ethertypes.len() as u16)?;
        for t in self.ethertypes {
            w.u16(*t)?;
        }
        w.bytes(self.name.as_bytes())?;
        Ok(w.position())
    }
}

/// `IOCTL_RAWNIC_OPEN` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenReply {
    pub binding_id: u32,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// The packet filter the handle got: what it asked for, less what the
    /// adapter does not support or refused.
    pub packet_filter: u32,
}

impl OpenReply {
    pub const LEN: usize = 24;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.binding_id)?.u32(self.mtu)?;
        w.bytes(&self.mac)?.u16(0)?.u32(self.packet_filter)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&buf[12..18]);
        Ok(OpenReply { binding_id: u32_at(buf, 4), mtu: u32_at(buf, 8), mac, packet_filter: u32_at(buf, 20) })
    }
}

// ---------------------------------------------------------------------------
// SEND_BATCH
// ---------------------------------------------------------------------------

/// Per-frame send flags.
pub mod send_flags {
    /// Send the frame with an 802.1Q tag (`tci`): the NIC inserts it when
    /// the adapter advertises 802.1Q (and the TCI is not 0, which NDIS
    /// cannot tell from no tag); otherwise the driver writes it into the
    /// frame after the MAC addresses.
    pub const TAG: u16 = 0x0001;
}

/// One frame of a send batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFrame<'a> {
    pub data: &'a [u8],
    /// 802.1Q TCI (`priority:3, dei:1, vlan:12`), when present.
    pub tci: Option<u16>,
}

impl SendFrame<'_> {
    pub const HEADER: usize = 8;

    pub fn wire_len(&self) -> usize {
        pad8(Self::HEADER + self.data.len()).unwrap_or(usize::MAX)
    }
}

/// Builds a `SEND_BATCH` input buffer.
pub struct SendBatchWriter<'a> {
    w: Writer<'a>,
    count: u32,
    count_at: usize,
}

impl<'a> SendBatchWriter<'a> {
    pub const HEADER: usize = 16;

    pub fn new(buf: &'a mut [u8]) -> Result<Self, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?;
        let count_at = w.position();
        w.u32(0)?.u64(0)?;
        Ok(SendBatchWriter { w, count: 0, count_at })
    }

    /// Appends a frame; fails (writing nothing more) when it does not fit.
    pub fn push(&mut self, f: &SendFrame<'_>) -> Result<(), Error> {
        if f.data.len() > u16::MAX as usize {
            return Err(Error::FrameLength);
        }
        if self.w.remaining() < f.wire_len() {
            return Err(Error::Truncated);
        }
        let (flags, tci) = match f.tci {
            Some(t) => (send_flags::TAG, t),
            None => (0, 0),
        };
        self.w.u16(f.data.len() as u16)?.u16(flags)?.u16(tci)?.u16(0)?;
        self.w.bytes(f.data)?.pad8()?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Writes the count and returns the buffer length to send.
    pub fn finish(self) -> usize {
        let len = self.w.position();
        let count = self.count;
        let at = self.count_at;
        let buf = self.w.into_inner();
        buf[at..at + 4].copy_from_slice(&count.to_le_bytes());
        len
    }
}

/// A checked `IOCTL_RAWNIC_SEND_BATCH` input.
///
/// Layout: header (4), `count: u32`, 8 reserved bytes; then `count`
/// records of `len: u16, flags: u16, tci: u16, reserved: u16` and `len`
/// bytes of frame, padded to 8. The buffer must end with the last record.
/// A frame is 14 bytes to `max_frame`, or to `max_frame + 4` when it has no
/// `TAG` flag and carries an 802.1Q tag inline ([`max_send_len`]).
#[derive(Clone, Copy)]
pub struct SendBatch<'a> {
    buf: &'a [u8],
    count: u32,
}

impl<'a> SendBatch<'a> {
    /// Validates every record. `max_frame` is the binding's MTU + 14, the
    /// longest untagged frame.
    pub fn new_checked(buf: &'a [u8], max_frame: usize) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() < SendBatchWriter::HEADER {
            return Err(Error::Truncated);
        }
        let count = u32_at(buf, 4);
        if u64_at(buf, 8) != 0 {
            return Err(Error::InvalidParameter);
        }
        // The smallest record is 8 + 14 bytes padded to 24; a count whose
        // minimum size does not fit 32 bits overflows.
        let min = count.checked_mul(24).and_then(|v| v.checked_add(SendBatchWriter::HEADER as u32));
        if min.is_none() {
            return Err(Error::Overflow);
        }
        if count == 0 || count > MAX_BATCH {
            return Err(Error::InvalidParameter);
        }
        // One 8-byte load per record header; the checks, in this order,
        // are the record's whole validation.
        const TAG: u64 = (send_flags::TAG as u64) << 16;
        const RESERVED: u64 = ((!send_flags::TAG as u64 & 0xffff) << 16) | (0xffff << 48);
        let end = buf.len();
        let mut off = SendBatchWriter::HEADER;
        for _ in 0..count {
            let h = match buf.get(off..off + SendFrame::HEADER) {
                Some(h) => u64_at(h, 0),
                None => return Err(Error::LengthMismatch),
            };
            if h & RESERVED != 0 {
                return Err(Error::InvalidParameter);
            }
            if h & TAG != 0 && (h >> 32) & 0x0FFF == 0x0FFF {
                return Err(Error::InvalidParameter);
            }
            let len = (h & 0xffff) as usize;
            if len < ETH_HEADER || len > max_frame + VLAN_TAG {
                return Err(Error::FrameLength);
            }
            let data_end = off + SendFrame::HEADER + len;
            if data_end > end {
                return Err(Error::LengthMismatch);
            }
            // Longer than an untagged frame: only with its tag inline.
            if len > max_frame && (h & TAG != 0 || inline_tci(&buf[off + SendFrame::HEADER..data_end]).is_none()) {
                return Err(Error::FrameLength);
            }
            // The last record's padding may be omitted.
            off = ((data_end + 7) & !7).min(end);
        }
        if off != end {
            return Err(Error::LengthMismatch);
        }
        Ok(SendBatch { buf, count })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn frames(&self) -> SendFrames<'a> {
        SendFrames { buf: self.buf, off: SendBatchWriter::HEADER, left: self.count }
    }
}

/// Iterator over the frames of a checked batch.
#[derive(Clone)]
pub struct SendFrames<'a> {
    buf: &'a [u8],
    off: usize,
    left: u32,
}

impl<'a> Iterator for SendFrames<'a> {
    type Item = SendFrame<'a>;

    #[inline]
    fn next(&mut self) -> Option<SendFrame<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let off = self.off;
        let h = u64_at(self.buf, off);
        let len = (h & 0xffff) as usize;
        let tci = (h & ((send_flags::TAG as u64) << 16) != 0).then_some((h >> 32) as u16);
        let start = off + SendFrame::HEADER;
        let data = &self.buf[start..start + len];
        self.off = ((start + len + 7) & !7).min(self.buf.len());
        Some(SendFrame { data, tci })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// `IOCTL_RAWNIC_SEND_BATCH` reply: how many frames, from the start of the
/// batch, NDIS accepted. Fewer than sent means the binding ran out of send
/// buffers; the caller sends the rest again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReply {
    pub accepted: u32,
    pub bytes: u64,
}

impl SendReply {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.accepted)?.u64(self.bytes)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(SendReply { accepted: u32_at(buf, 4), bytes: u64_at(buf, 8) })
    }
}

// ---------------------------------------------------------------------------
// ReadFile records
// ---------------------------------------------------------------------------

/// Flags of a received frame.
pub mod frame_flags {
    /// `caplen < origlen`: the snap length or the read buffer cut it.
    pub const TRUNCATED: u16 = 0x0001;
    /// The NIC stripped the frame's 802.1Q tag (NDIS gave it in the NBL's
    /// 802.1Q info): the data lacks it; `tci` holds it. The driver sets
    /// `TAGGED` with it (drivers before `TAGGED` set `VLAN` alone, which
    /// means the same). NDIS cannot tell a stripped tag of TCI 0 from no
    /// tag, so such a frame comes untagged.
    pub const VLAN: u16 = 0x0002;
    /// Sent from this host, not received from the wire: by another rawnic
    /// handle on the binding (or this one, with `LocalSends::All`), or, with
    /// `LOOPBACK`, by another protocol (NDIS looped it back).
    pub const OUTBOUND: u16 = 0x0004;
    /// NDIS looped the frame back (`NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`):
    /// another protocol on this host sent it. Always with `OUTBOUND`.
    pub const LOOPBACK: u16 = 0x0008;
    /// The frame carried an 802.1Q tag and `tci` holds its TCI (which may
    /// be 0): stripped (with `VLAN`), or inline in the data (TPID 0x8100
    /// after the MAC addresses). Without it or `VLAN`, `tci` is 0.
    pub const TAGGED: u16 = 0x0010;
}

/// The header of one received frame in a ReadFile buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// Bytes of frame that follow.
    pub caplen: u32,
    /// The frame's length on the wire.
    pub origlen: u32,
    /// Receive time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    pub flags: u16,
    pub tci: u16,
}

impl FrameHeader {
    pub const LEN: usize = 24;

    /// Bytes a record with `caplen` bytes of data takes.
    #[inline]
    pub fn record_len(caplen: usize) -> usize {
        (Self::LEN + caplen + 7) & !7
    }

    #[inline]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.caplen.to_le_bytes());
        b[4..8].copy_from_slice(&self.origlen.to_le_bytes());
        b[8..16].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[16..18].copy_from_slice(&self.flags.to_le_bytes());
        b[18..20].copy_from_slice(&self.tci.to_le_bytes());
        b
    }

    /// The fields of a header the driver itself wrote, unchecked.
    /// `buf` holds at least `LEN` bytes.
    pub fn parse_raw(buf: &[u8]) -> Self {
        FrameHeader {
            caplen: u32_at(buf, 0),
            origlen: u32_at(buf, 4),
            timestamp_ns: u64_at(buf, 8),
            flags: u16_at(buf, 16),
            tci: u16_at(buf, 18),
        }
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        let h = FrameHeader {
            caplen: u32_at(buf, 0),
            origlen: u32_at(buf, 4),
            timestamp_ns: u64_at(buf, 8),
            flags: u16_at(buf, 16),
            tci: u16_at(buf, 18),
        };
        if h.caplen > h.origlen || u32_at(buf, 20) != 0 {
            return Err(Error::InvalidParameter);
        }
        // A TCI without a tag is garbage.
        if h.tci != 0 && h.flags & (frame_flags::TAGGED | frame_flags::VLAN) == 0 {
            return Err(Error::InvalidParameter);
        }
        if (h.caplen < h.origlen) != (h.flags & frame_flags::TRUNCATED != 0) {
            return Err(Error::InvalidParameter);
        }
        if h.flags & frame_flags::LOOPBACK != 0 && h.flags & frame_flags::OUTBOUND == 0 {
            return Err(Error::InvalidParameter);
        }
        Ok(h)
    }
}

/// A checked ReadFile buffer: whole records, back to back.
pub struct FrameRecords<'a> {
    buf: &'a [u8],
    count: usize,
}

impl<'a> FrameRecords<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        let mut off = 0;
        let mut count = 0;
        while off < buf.len() {
            let h = FrameHeader::parse(&buf[off..])?;
            let data_end = off + FrameHeader::LEN + h.caplen as usize;
            if data_end > buf.len() {
                return Err(Error::Truncated);
            }
            off = (off + FrameHeader::record_len(h.caplen as usize)).min(buf.len());
            count += 1;
        }
        Ok(FrameRecords { buf, count })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (FrameHeader, &'a [u8])> + 'a {
        let mut off = 0;
        let buf = self.buf;
        core::iter::from_fn(move || {
            if off >= buf.len() {
                return None;
            }
            let h = FrameHeader::parse(&buf[off..]).ok()?;
            let start = off + FrameHeader::LEN;
            let data = &buf[start..start + h.caplen as usize];
            off = (off + FrameHeader::record_len(h.caplen as usize)).min(buf.len());
            Some((h, data))
        })
    }
}

// ---------------------------------------------------------------------------
// OIDs
// ---------------------------------------------------------------------------

/// The OIDs a handle may set; every other set is refused with
/// `STATUS_ACCESS_DENIED`. The packet filter is not among them: the driver
/// owns it (the union of the handles' filters).
pub const OID_SET_ALLOW_LIST: &[u32] = &[
    0x0101_0103, // OID_802_3_MULTICAST_LIST
    0x0001_010F, // OID_GEN_CURRENT_LOOKAHEAD
    0x0001_0208, // OID_GEN_LINK_PARAMETERS
];

/// A checked OID request (`QUERY_OID` or `SET_OID` input).
///
/// Layout: header (4), `oid: u32`, `data_len: u32`, 4 reserved bytes, then
/// `data_len` bytes (the value for a set; usually empty for a query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidRequest<'a> {
    pub oid: u32,
    pub data: &'a [u8],
}

impl<'a> OidRequest<'a> {
    pub const FIXED: usize = 16;

    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() < Self::FIXED {
            return Err(Error::Truncated);
        }
        let oid = u32_at(buf, 4);
        let data_len = u32_at(buf, 8);
        if u32_at(buf, 12) != 0 {
            return Err(Error::InvalidParameter);
        }
        let total = data_len.checked_add(Self::FIXED as u32).ok_or(Error::Overflow)?;
        if data_len > MAX_OID_DATA {
            return Err(Error::InvalidParameter);
        }
        if buf.len() != total as usize {
            return Err(Error::LengthMismatch);
        }
        Ok(OidRequest { oid, data: &buf[Self::FIXED..] })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.oid)?.u32(self.data.len() as u32)?.u32(0)?;
        w.bytes(self.data)?;
        Ok(w.position())
    }
}

/// The OID reply header; for a query, `bytes` of data follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidReplyHeader {
    /// The NDIS_STATUS the adapter answered with.
    pub ndis_status: i32,
    /// Bytes written (query) or read (set).
    pub bytes: u32,
    /// Bytes the adapter needs, when the buffer was too short.
    pub bytes_needed: u32,
}

impl OidReplyHeader {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.i32(self.ndis_status)?.u32(self.bytes)?.u32(self.bytes_needed)?;
        Ok(w.position())
    }

    /// Parses a reply; returns the header and the data that follows.
    pub fn parse(buf: &[u8], is_query: bool) -> Result<(Self, &[u8]), Error> {
        check_header(buf, 0)?;
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        let h = OidReplyHeader { ndis_status: i32_at(buf, 4), bytes: u32_at(buf, 8), bytes_needed: u32_at(buf, 12) };
        let data_len = if is_query { h.bytes as usize } else { 0 };
        if buf.len() != Self::LEN + data_len {
            return Err(Error::LengthMismatch);
        }
        Ok((h, &buf[Self::LEN..]))
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Counters of a handle or of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames delivered to the receive queue (binding: indicated by NDIS).
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames dropped because a receive queue was full.
    pub rx_queue_drops: u64,
    /// Frames cut by the snap length.
    pub rx_truncated: u64,
    /// Frames sent and completed successfully.
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames NDIS completed with a failure status.
    pub tx_errors: u64,
    /// Frames handed to NDIS and not completed yet.
    pub tx_in_flight: u64,
}

impl Counters {
    pub const LEN: usize = 64;

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        for v in [
            self.rx_frames,
            self.rx_bytes,
            self.rx_queue_drops,
            self.rx_truncated,
            self.tx_frames,
            self.tx_bytes,
            self.tx_errors,
            self.tx_in_flight,
        ] {
            w.u64(v)?;
        }
        Ok(())
    }

    fn parse(buf: &[u8]) -> Self {
        let f = |i: usize| u64_at(buf, 8 * i);
        Counters {
            rx_frames: f(0),
            rx_bytes: f(1),
            rx_queue_drops: f(2),
            rx_truncated: f(3),
            tx_frames: f(4),
            tx_bytes: f(5),
            tx_errors: f(6),
            tx_in_flight: f(7),
        }
    }
}

/// `IOCTL_RAWNIC_GET_STATS` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsReply {
    /// Frames and bytes waiting in this handle's receive queue.
    pub queued_frames: u32,
    pub queued_bytes: u64,
    /// The packet filter the handle asked for at open.
    pub requested_filter: u32,
    /// The packet filter it gets (less what the adapter refused).
    pub effective_filter: u32,
    pub handle: Counters,
    pub binding: Counters,
}

impl StatsReply {
    pub const LEN: usize = 24 + 2 * Counters::LEN;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.queued_frames)?.u64(self.queued_bytes)?;
        w.u32(self.requested_filter)?.u32(self.effective_filter)?;
        self.handle.emit(&mut w)?;
        self.binding.emit(&mut w)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(StatsReply {
            queued_frames: u32_at(buf, 4),
            queued_bytes: u64_at(buf, 8),
            requested_filter: u32_at(buf, 16),
            effective_filter: u32_at(buf, 20),
            handle: Counters::parse(&buf[24..]),
            binding: Counters::parse(&buf[24 + Counters::LEN..]),
        })
    }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// Event kinds.
pub mod event {
    pub const LINK_UP: u16 = 1;
    pub const LINK_DOWN: u16 = 2;
    pub const PAUSED: u16 = 3;
    pub const RESTARTED: u16 = 4;
    pub const UNBOUND: u16 = 5;
    pub const BOUND: u16 = 6;
    /// The adapter refused part of the handle's packet filter: `filter` is
    /// what the handle gets now, `refused` what it lost.
    pub const FILTER_REFUSED: u16 = 7;

    pub fn name(k: u16) -> &'static str {
        match k {
            LINK_UP => "link-up",
            LINK_DOWN => "link-down",
            PAUSED => "paused",
            RESTARTED => "restarted",
            UNBOUND => "unbound",
            BOUND => "bound",
            FILTER_REFUSED => "filter-refused",
            _ => "unknown",
        }
    }
}

/// `IOCTL_RAWNIC_WAIT_EVENT` reply: one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventRecord {
    pub kind: u16,
    pub binding_id: u32,
    /// Increases by one per event the handle was sent (lost ones included).
    pub seq: u64,
    /// Link speed in bits per second (link events), else 0.
    pub speed: u64,
    /// The binding's MTU (restart events), else 0.
    pub mtu: u32,
    /// Events dropped because the handle's event queue was full.
    pub lost: u32,
    /// The handle's effective packet filter (`FILTER_REFUSED`), else 0.
    pub filter: u32,
    /// The filter bits the adapter refused (`FILTER_REFUSED`), else 0.
    pub refused: u32,
}

impl EventRecord {
    pub const LEN: usize = 40;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(self.kind)?.u32(self.binding_id)?;
        w.u64(self.seq)?.u64(self.speed)?.u32(self.mtu)?.u32(self.lost)?;
        w.u32(self.filter)?.u32(self.refused)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < 4 {
            return Err(Error::Truncated);
        }
        if u16_at(buf, 0) != PROTO_VERSION {
            return Err(Error::Version);
        }
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(EventRecord {
            kind: u16_at(buf, 2),
            binding_id: u32_at(buf, 4),
            seq: u64_at(buf, 8),
            speed: u64_at(buf, 16),
            mtu: u32_at(buf, 24),
            lost: u32_at(buf, 28),
            filter: u32_at(buf, 32),
            refused: u32_at(buf, 36),
        })
    }
}

#[cfg(test)]
mod send_batch_tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn batch(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
        let mut buf = vec![0u8; 16 + frames.iter().map(|(f, _)| (8 + f.len() + 7) & !7).sum::<usize>()];
        let mut w = SendBatchWriter::new(&mut buf).unwrap();
        for (f, tci) in frames {
            w.push(&SendFrame { data: f, tci: *tci }).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn frames_come_back_as_written() {
        let a: Vec<u8> = (0..60).collect();
        let b: Vec<u8> = (0..1514).map(|i| i as u8).collect();
        let c: Vec<u8> = (0..17).collect();
        let buf = batch(&[(a.clone(), None), (b.clone(), Some(0xe005)), (c.clone(), None)]);
        let sb = SendBatch::new_checked(&buf, 1514).unwrap();
        assert_eq!(sb.count(), 3);
        let got: Vec<(Vec<u8>, Option<u16>)> = sb.frames().map(|f| (f.data.to_vec(), f.tci)).collect();
        assert_eq!(got, vec![(a, None), (b, Some(0xe005)), (c.clone(), None)]);
        // The last record's padding may be left out.
        let short = &buf[..buf.len() - 7];
        let sb = SendBatch::new_checked(short, 1514).unwrap();
        assert_eq!(sb.frames().last().unwrap().data, &c[..]);
    }

    #[test]
    fn every_malformed_batch_is_refused_with_its_error() {
        let f: Vec<u8> = vec![1; 60];
        let good = batch(&[(f.clone(), None), (f.clone(), Some(5))]);
        let check = |b: &[u8]| SendBatch::new_checked(b, 1514).err();
        assert_eq!(check(&good), None);
        assert_eq!(check(&good[..8]), Some(Error::Truncated));
        let mut v = good.clone();
        v[0] = PROTO_VERSION as u8 + 1;
        assert_eq!(check(&v), Some(Error::Version));
        let mut v = good.clone();
        v[8] = 1;
        assert_eq!(check(&v), Some(Error::InvalidParameter), "reserved header bytes");
        let mut v = good.clone();
        v[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(check(&v), Some(Error::Overflow));
        let mut v = good.clone();
        v[4..8].copy_from_slice(&(MAX_BATCH + 1).to_le_bytes());
        assert_eq!(check(&v), Some(Error::InvalidParameter));
        let mut v = good.clone();
        v[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(check(&v), Some(Error::InvalidParameter), "an empty batch");
        let mut v = good.clone();
        v[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(check(&v), Some(Error::LengthMismatch), "a count past the buffer");
        let mut v = good.clone();
        v.extend_from_slice(&[0; 8]);
        assert_eq!(check(&v), Some(Error::LengthMismatch), "bytes after the last frame");
        assert_eq!(check(&good[..good.len() - 8]), Some(Error::LengthMismatch), "a frame cut short");
        for (at, what) in [(18, "unknown flag"), (22, "reserved record bytes")] {
            let mut v = good.clone();
            v[at] = 0x10;
            assert_eq!(check(&v), Some(Error::InvalidParameter), "{what}");
        }
        assert_eq!(check(&batch(&[(f[..13].to_vec(), None)])), Some(Error::FrameLength));
        assert_eq!(check(&batch(&[(vec![0; 1515], None)])), Some(Error::FrameLength));
        assert_eq!(check(&batch(&[(f.clone(), Some(0x0fff))])), Some(Error::InvalidParameter), "VLAN 4095");
        assert_eq!(
            check(&batch(&[(f.clone(), Some(0xffff))])),
            Some(Error::InvalidParameter),
            "VLAN 4095 with priority"
        );
        assert_eq!(check(&batch(&[(f.clone(), Some(0x0ffe))])), None, "VLAN 4094");
    }
}
