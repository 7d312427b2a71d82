//! OPEN: a handle opens a binding.

use super::*;

/// Which frames sent from this host a handle receives (besides what
/// arrives from the wire): those of rawnic's other handles on the binding
/// and those NDIS loops back from other protocols, marked
/// `frame_flags::OUTBOUND`. A handle's filters apply to them as to any
/// frame: its packet filter as far as the adapter's filter takes it in
/// (GET_STATS's `effective_filter`), its EtherTypes, its multicast list
/// and its capture program.
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
    /// EtherTypes to receive; empty means all. A frame matches by its
    /// EtherType as on the wire or, behind an 802.1Q or 802.1ad tag, by the
    /// one inside: a tag the NIC stripped into the NBL's info counts as
    /// 0x8100 on the wire.
    pub ethertypes: &'a [u16],
    /// The frames to receive; none receives nothing (a send-only handle).
    pub packet_filter: PacketFilter,
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
        if !PacketFilter::from_bits_retain(u32_at(buf, 4)).unknown().is_empty() {
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

    pub fn packet_filter(&self) -> PacketFilter {
        PacketFilter::from_bits_retain(u32_at(self.buf, 4))
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
        w.u32(self.packet_filter.bits())?.u32(self.queue_frames)?.u32(self.queue_bytes)?.u32(self.snaplen)?;
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
    pub packet_filter: PacketFilter,
}

impl OpenReply {
    pub const LEN: usize = 24;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.binding_id)?.u32(self.mtu)?;
        w.bytes(&self.mac)?.u16(0)?.u32(self.packet_filter.bits())?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&buf[12..18]);
        Ok(OpenReply {
            binding_id: u32_at(buf, 4),
            mtu: u32_at(buf, 8),
            mac,
            packet_filter: PacketFilter::from_bits_retain(u32_at(buf, 20)),
        })
    }
}
