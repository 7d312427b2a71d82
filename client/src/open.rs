//! What `OPEN` asks for ([`OpenOptions`], checked before it is sent) and
//! what it answers ([`OpenInfo`]), with the sentences about a packet
//! filter the adapter does not give.

use crate::error::{Error, Result};
use crate::ether::MacAddr;
use rawnic_proto::*;

/// What `OPEN` asks for. Build it with [`OpenOptions::new`] and the setters;
/// [`Device::open_binding`] checks it before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    pub adapter: String,
    /// EtherTypes to receive; empty receives all.
    pub ethertypes: Vec<u16>,
    /// The frames to receive; none receives nothing (a send-only handle).
    pub packet_filter: PacketFilter,
    /// Receive queue bounds; 0 is the driver's default.
    pub queue_frames: u32,
    pub queue_bytes: u32,
    /// Bytes kept of each received frame; 0 keeps all.
    pub snaplen: u32,
    /// Which frames sent from this host the handle receives (default:
    /// other handles' and other protocols', not its own).
    pub local_sends: LocalSends,
    /// Fail the open (`STATUS_NOT_SUPPORTED`) unless the adapter gives the
    /// whole packet filter; by default the handle opens with what the
    /// adapter allows ([`OpenInfo::refusal`] says what it lost).
    pub strict_filter: bool,
}

impl OpenOptions {
    /// Opens `adapter` (a name from [`Device::list`]) receiving directed,
    /// multicast and broadcast frames of every EtherType.
    pub fn new(adapter: impl Into<String>) -> Self {
        OpenOptions {
            adapter: adapter.into(),
            ethertypes: Vec::new(),
            packet_filter: filter::DEFAULT,
            queue_frames: 0,
            queue_bytes: 0,
            snaplen: 0,
            local_sends: LocalSends::Others,
            strict_filter: false,
        }
    }

    /// Fails the open unless the adapter gives the whole packet filter.
    pub fn strict_filter(mut self, strict: bool) -> Self {
        self.strict_filter = strict;
        self
    }

    /// Which frames sent from this host the handle receives.
    pub fn local_sends(mut self, l: LocalSends) -> Self {
        self.local_sends = l;
        self
    }

    /// Receives this EtherType too (the first call restricts the handle to
    /// the EtherTypes given).
    pub fn ethertype(mut self, t: u16) -> Self {
        self.ethertypes.push(t);
        self
    }

    pub fn ethertypes(mut self, ts: &[u16]) -> Self {
        self.ethertypes.extend_from_slice(ts);
        self
    }

    pub fn packet_filter(mut self, filter: PacketFilter) -> Self {
        self.packet_filter = filter;
        self
    }

    /// Adds or removes `filter::PROMISCUOUS`.
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.packet_filter.set(filter::PROMISCUOUS, on);
        self
    }

    /// A handle that only sends: no packet filter bits.
    pub fn send_only(mut self) -> Self {
        self.packet_filter = PacketFilter::NONE;
        self
    }

    pub fn queue_frames(mut self, n: u32) -> Self {
        self.queue_frames = n;
        self
    }

    pub fn queue_bytes(mut self, n: u32) -> Self {
        self.queue_bytes = n;
        self
    }

    pub fn snaplen(mut self, n: u32) -> Self {
        self.snaplen = n;
        self
    }

    /// Checks the options against the interface's limits, with a sentence
    /// for the first one that is broken.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(Error::InvalidArgument(s));
        if self.adapter.is_empty() {
            return bad("the adapter name is empty".into());
        }
        if self.adapter.len() > MAX_NAME {
            return bad(format!(
                "the adapter name is {} bytes long; the driver takes at most {MAX_NAME}",
                self.adapter.len()
            ));
        }
        if self.ethertypes.len() > MAX_ETHERTYPES {
            return bad(format!(
                "{} EtherTypes were given; a handle filters on at most {MAX_ETHERTYPES}",
                self.ethertypes.len()
            ));
        }
        if !self.packet_filter.unknown().is_empty() {
            return bad(format!(
                "packet filter {:#x} has bits the driver does not allow ({:#x}); allowed are directed, multicast, all-multicast, broadcast and promiscuous",
                self.packet_filter,
                self.packet_filter.unknown()
            ));
        }
        if self.queue_frames > MAX_QUEUE_FRAMES {
            return bad(format!(
                "a receive queue of {} frames is more than the driver allows ({MAX_QUEUE_FRAMES})",
                self.queue_frames
            ));
        }
        if self.queue_bytes != 0 && !(MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES).contains(&self.queue_bytes) {
            return bad(format!(
                "a receive queue of {} bytes is out of range: it must be {MIN_QUEUE_BYTES} to {MAX_QUEUE_BYTES} bytes",
                self.queue_bytes
            ));
        }
        if self.snaplen != 0 && (self.snaplen as usize) < ETH_HEADER {
            return bad(format!(
                "a snap length of {} bytes is shorter than an Ethernet header ({ETH_HEADER})",
                self.snaplen
            ));
        }
        Ok(())
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let repr = OpenRepr {
            name: &self.adapter,
            ethertypes: &self.ethertypes,
            packet_filter: self.packet_filter,
            queue_frames: self.queue_frames,
            queue_bytes: self.queue_bytes,
            snaplen: self.snaplen,
            local_sends: self.local_sends,
            strict_filter: self.strict_filter,
        };
        let mut buf = vec![0u8; repr.wire_len()];
        let n = repr
            .emit(&mut buf)
            .map_err(|e| Error::InvalidArgument(format!("the OPEN request cannot be encoded ({e:?})")))?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// What `OPEN` reports about the binding it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInfo {
    pub binding_id: u32,
    pub mtu: u32,
    pub mac: MacAddr,
    /// The packet filter the handle asked for.
    pub requested_filter: PacketFilter,
    /// The packet filter it got (less what the adapter does not allow).
    pub packet_filter: PacketFilter,
}

/// A sentence saying what a handle lost when it asked for packet filter
/// `requested` and got `effective`; `None` when it lost nothing.
pub fn filter_refusal(requested: PacketFilter, effective: PacketFilter) -> Option<String> {
    let lost = filter::lost(requested, effective);
    if lost.is_empty() {
        None
    } else if lost.contains(filter::PROMISCUOUS) {
        Some("the adapter refused promiscuous mode; you get frames for this host only".into())
    } else if lost.contains(filter::ALL_MULTICAST) {
        Some(
            "the adapter refused all-multicast mode; you get only the multicast groups in its list, besides frames for this host"
                .into(),
        )
    } else {
        Some(format!(
            "the adapter does not give packet filter {}; you get {}",
            crate::oid::filter_names(lost),
            crate::oid::filter_names(effective)
        ))
    }
}

/// A sentence saying what a GET_STATS reply tells of the handle's packet
/// filter, when it does not get all it asked for: bits the adapter does
/// not give ([`filter_refusal`]), or bits it does not have yet
/// (`stats_flags::FILTER_PENDING`); `None` when it gets them all.
pub fn stats_filter_note(s: &rawnic_proto::StatsReply) -> Option<String> {
    if s.flags & rawnic_proto::stats_flags::FILTER_PENDING == 0 {
        return filter_refusal(s.requested_filter, s.effective_filter);
    }
    let missing = filter::lost(s.requested_filter, s.effective_filter);
    Some(format!(
        "the adapter does not have packet filter {} yet: setting it failed for a passing reason (such as a shortage of memory) and is tried again; you get {} meanwhile",
        crate::oid::filter_names(missing),
        crate::oid::filter_names(s.effective_filter)
    ))
}

impl OpenInfo {
    /// What the handle lost of its packet filter, in a sentence.
    pub fn refusal(&self) -> Option<String> {
        filter_refusal(self.requested_filter, self.packet_filter)
    }

    /// The longest untagged frame the binding sends: MTU plus the
    /// Ethernet header.
    pub fn max_frame(&self) -> usize {
        self.mtu as usize + ETH_HEADER
    }

    /// The longest `data` a frame to send may have: [`max_frame`](Self::max_frame),
    /// or 4 bytes more when the frame carries its 802.1Q tag inline and
    /// asks for no other.
    pub fn max_send_len(&self, data: &[u8], tci: Option<u16>) -> usize {
        rawnic_proto::max_send_len(self.max_frame(), data, tci)
    }
}
