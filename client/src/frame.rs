//! Received frames: the checked [`Records`] of one read, each a
//! [`FrameRef`] into its buffer or an owned [`Frame`].

use crate::error::{Error, Result};
use crate::ether::Tci;
use crate::transport::Request;
use rawnic_proto::*;
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which way a received frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the wire.
    Inbound,
    /// Sent from this host.
    Outbound,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        }
    }
}

/// How the NIC coalesced a received frame: receive segment coalescing of
/// TCP segments (RSC) or UDP datagrams (URO) into one frame, which may be
/// longer than the MTU. rawnic delivers such frames whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalesced {
    /// How many segments were coalesced, when the adapter said.
    pub segments: Option<u16>,
    /// URO: the UDP payload size of each datagram (the last may be
    /// shorter), when the adapter said.
    pub segment_size: Option<u16>,
}

impl std::fmt::Display for Coalesced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("coalesced by the NIC")?;
        match (self.segments, self.segment_size) {
            (Some(n), Some(s)) => write!(f, ": {n} segments of {s} bytes"),
            (Some(n), None) => write!(f, ": {n} segments"),
            (None, Some(s)) => write!(f, ": segments of {s} bytes"),
            (None, None) => Ok(()),
        }
    }
}

/// A received frame, borrowed from a [`Records`] buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub header: FrameHeader,
    /// The captured bytes (`header.caplen` of them).
    pub data: &'a [u8],
}

impl FrameRef<'_> {
    /// Receive time, nanoseconds since the Unix epoch.
    pub fn timestamp_ns(&self) -> u64 {
        self.header.timestamp_ns
    }

    pub fn timestamp(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.header.timestamp_ns)
    }

    /// The frame's length on the wire.
    pub fn origlen(&self) -> u32 {
        self.header.origlen
    }

    /// `true` when fewer bytes than the frame's length were kept.
    pub fn is_truncated(&self) -> bool {
        self.header.flags & frame_flags::TRUNCATED != 0
    }

    /// Whether the frame came in from the wire or was sent from this host
    /// (by another rawnic handle, this one with [`LocalSends::All`], or
    /// another protocol whose send NDIS looped back).
    pub fn direction(&self) -> Direction {
        if self.header.flags & frame_flags::OUTBOUND != 0 { Direction::Outbound } else { Direction::Inbound }
    }

    /// Whether NDIS looped the frame back from another protocol's send.
    pub fn is_loopback(&self) -> bool {
        self.header.flags & frame_flags::LOOPBACK != 0
    }

    /// The frame's 802.1Q tag, if it had one: stripped by the NIC (see
    /// [`tag_stripped`](Self::tag_stripped)) or inline in `data`. A tag of
    /// TCI 0 is `Some(Tci(0))`, told from no tag by the record's
    /// `frame_flags::TAGGED` (`VLAN` alone, from a driver before it, says
    /// the same).
    pub fn tci(&self) -> Option<Tci> {
        (self.header.flags & (frame_flags::TAGGED | frame_flags::VLAN) != 0).then_some(Tci(self.header.tci))
    }

    /// Whether the NIC coalesced several received segments into this frame
    /// (RSC for TCP, URO for UDP: `frame_flags::COALESCED`), with the
    /// counts it gave.
    pub fn coalesced(&self) -> Option<Coalesced> {
        let nonzero = |n: u16| (n != 0).then_some(n);
        (self.header.flags & frame_flags::COALESCED != 0)
            .then_some(Coalesced { segments: nonzero(self.header.segs), segment_size: nonzero(self.header.seg_size) })
    }

    /// `true` when the NIC stripped the tag (`frame_flags::VLAN`): `data`
    /// lacks it.
    pub fn tag_stripped(&self) -> bool {
        self.header.flags & frame_flags::VLAN != 0
    }

    /// The frame as it was on the wire: with a stripped 802.1Q tag put
    /// back (by the record's flag, whatever the TCI), and the lengths to
    /// match (`caplen`, `origlen`). A tag inline is on the wire already.
    pub fn wire_bytes(&self) -> (Cow<'_, [u8]>, u32) {
        match self.tci() {
            Some(t) if self.tag_stripped() && self.data.len() >= 12 => {
                (Cow::Owned(crate::ether::insert_vlan_tag(self.data, t.0)), self.header.origlen.saturating_add(4))
            }
            _ => (Cow::Borrowed(self.data), self.header.origlen),
        }
    }

    pub fn to_owned(&self) -> Frame {
        Frame { header: self.header, data: self.data.to_vec() }
    }
}

/// A received frame that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef { header: self.header, data: &self.data }
    }
}

/// The checked records of one read.
#[derive(Debug, Clone, Default)]
pub struct Records {
    buf: Vec<u8>,
    count: usize,
}

impl Records {
    /// Checks a ReadFile buffer.
    pub fn parse(buf: Vec<u8>) -> Result<Records> {
        let count = FrameRecords::new_checked(&buf)
            .map_err(|e| Error::bad_reply(Request::Read, e, "the frame records do not parse"))?
            .len();
        Ok(Records { buf, count })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes the driver returned.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn iter(&self) -> impl Iterator<Item = FrameRef<'_>> + '_ {
        FrameRecords::new_checked(&self.buf)
            .expect("checked in Records::parse")
            .iter()
            .map(|(header, data)| FrameRef { header, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coalescing_counts_follow_the_flag() {
        let f = |flags: u16, segs: u16, seg_size: u16| FrameRef {
            header: FrameHeader { caplen: 0, origlen: 0, timestamp_ns: 1, flags, tci: 0, segs, seg_size },
            data: &[],
        };
        let c = frame_flags::COALESCED;
        assert_eq!(f(0, 0, 0).coalesced(), None);
        let rsc = f(c, 12, 0).coalesced().unwrap();
        assert_eq!((rsc.segments, rsc.segment_size), (Some(12), None));
        assert_eq!(rsc.to_string(), "coalesced by the NIC: 12 segments");
        assert_eq!(f(c, 5, 1472).coalesced().unwrap().to_string(), "coalesced by the NIC: 5 segments of 1472 bytes");
        assert_eq!(f(c, 0, 1200).coalesced().unwrap().to_string(), "coalesced by the NIC: segments of 1200 bytes");
        assert_eq!(f(c, 0, 0).coalesced().unwrap().to_string(), "coalesced by the NIC");
    }
}
