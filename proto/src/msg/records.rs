//! ReadFile: the records of received frames.

use super::*;

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
    /// The NIC coalesced several received segments of one flow into this
    /// frame (receive segment coalescing: RSC for TCP, NDIS 6.30; URO for
    /// UDP, NDIS 6.89), so it may be longer than the MTU plus the
    /// Ethernet header (up to a whole IP datagram). The driver delivers it
    /// as NDIS indicated it. `segs` holds the number of segments when the
    /// adapter reported it (else 0), and `seg_size`, for URO, the UDP
    /// payload size of each datagram (the last may be shorter).
    pub const COALESCED: u16 = 0x0020;
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
    /// With `COALESCED`: how many segments (TCP segments or UDP datagrams)
    /// the NIC coalesced into the frame, 0 when it did not say. Else 0.
    pub segs: u16,
    /// With `COALESCED`, for URO: the UDP payload size of each coalesced
    /// datagram (the last may be shorter); 0 for RSC, which reports none.
    /// Else 0.
    pub seg_size: u16,
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
        b[20..22].copy_from_slice(&self.segs.to_le_bytes());
        b[22..24].copy_from_slice(&self.seg_size.to_le_bytes());
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
            segs: u16_at(buf, 20),
            seg_size: u16_at(buf, 22),
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
            segs: u16_at(buf, 20),
            seg_size: u16_at(buf, 22),
        };
        if h.caplen > h.origlen {
            return Err(Error::InvalidParameter);
        }
        // Coalescing counts without the flag are garbage.
        if (h.segs != 0 || h.seg_size != 0) && h.flags & frame_flags::COALESCED == 0 {
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

    pub fn iter(&self) -> impl Iterator<Item = (FrameHeader, &'a [u8])> + 'a + use<'a> {
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
