//! LIST_BINDINGS: the list of bindings.

use super::*;

/// Binding state numbers on the wire (the seven states of a binding).
/// [`BindingState`] is the typed form.
pub mod state {
    pub const UNBOUND: u8 = 0;
    pub const OPENING: u8 = 1;
    pub const PAUSED: u8 = 2;
    pub const RESTARTING: u8 = 3;
    pub const RUNNING: u8 = 4;
    pub const PAUSING: u8 = 5;
    pub const CLOSING: u8 = 6;

    pub fn name(s: u8) -> &'static str {
        super::BindingState::from(s).name()
    }
}

/// Link states on the wire. [`LinkState`] is the typed form.
pub mod link {
    pub const UNKNOWN: u8 = 0;
    pub const UP: u8 = 1;
    pub const DOWN: u8 = 2;

    pub fn name(s: u8) -> &'static str {
        super::LinkState::from(s).name()
    }
}

/// Duplex numbers on the wire (`NDIS_MEDIA_DUPLEX_STATE`). [`Duplex`] is
/// the typed form.
pub mod duplex {
    pub const UNKNOWN: u8 = 0;
    pub const HALF: u8 = 1;
    pub const FULL: u8 = 2;
}

wire_enum! {
    /// A binding's state, as `LIST_BINDINGS` reports it (`state::*`).
    pub enum BindingState: u8 {
        Unbound = state::UNBOUND, "unbound";
        Opening = state::OPENING, "opening";
        Paused = state::PAUSED, "paused";
        Restarting = state::RESTARTING, "restarting";
        Running = state::RUNNING, "running";
        Pausing = state::PAUSING, "pausing";
        Closing = state::CLOSING, "closing";
    }
}

wire_enum! {
    /// A binding's link state (`link::*`).
    pub enum LinkState: u8 {
        /// The adapter has not said (`MediaConnectStateUnknown`).
        Unreported = link::UNKNOWN, "unknown";
        Up = link::UP, "up";
        Down = link::DOWN, "down";
    }
}

wire_enum! {
    /// A binding's duplex (`duplex::*`).
    pub enum Duplex: u8 {
        /// The adapter has not said (`MediaDuplexStateUnknown`).
        Unreported = duplex::UNKNOWN, "unknown";
        Half = duplex::HALF, "half";
        Full = duplex::FULL, "full";
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
    pub packet_filter: PacketFilter,
    pub open_handles: u32,
    /// The packet filters the adapter says it supports.
    pub supported_filter: PacketFilter,
    /// Filter bits the adapter refused to set (since the binding began).
    pub refused_filter: PacketFilter,
    pub name: &'a str,
    pub description: &'a str,
}

impl<'a> BindingEntry<'a> {
    pub const FIXED: usize = 56;

    /// `state` as a [`BindingState`].
    pub fn binding_state(&self) -> BindingState {
        BindingState::from(self.state)
    }

    /// `link` as a [`LinkState`].
    pub fn link_state(&self) -> LinkState {
        LinkState::from(self.link)
    }

    /// `duplex` as a [`Duplex`].
    pub fn duplex_state(&self) -> Duplex {
        Duplex::from(self.duplex)
    }

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
        w.u32(self.packet_filter.bits())?.u32(self.open_handles)?;
        w.u32(self.supported_filter.bits())?.u32(self.refused_filter.bits())?;
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
                packet_filter: PacketFilter::from_bits_retain(u32_at(buf, 40)),
                open_handles: u32_at(buf, 44),
                supported_filter: PacketFilter::from_bits_retain(u32_at(buf, 48)),
                refused_filter: PacketFilter::from_bits_retain(u32_at(buf, 52)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_give_back_every_byte() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(BindingState::from(v)), v);
            assert_eq!(u8::from(LinkState::from(v)), v);
            assert_eq!(u8::from(Duplex::from(v)), v);
        }
        assert_eq!(BindingState::from(state::RUNNING), BindingState::Running);
        assert_eq!(BindingState::from(7), BindingState::Unknown(7));
        assert_eq!(LinkState::from(link::UNKNOWN), LinkState::Unreported);
        assert_eq!(Duplex::from(duplex::FULL).name(), "full");
        assert_eq!(
            (state::name(state::PAUSING), state::name(9), link::name(link::DOWN)),
            ("pausing", "unknown", "down")
        );
    }
}
