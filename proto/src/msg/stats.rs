//! GET_STATS: counters.

use super::*;

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

/// The flags of a GET_STATS reply (its header's second word).
pub mod stats_flags {
    /// The adapter does not have this handle's packet filter yet: the
    /// driver's last set of it failed for a passing reason (no memory, a
    /// reset, low power) or could not be sent, and is tried again (at the
    /// next open, close, restart, listing, GET_STATS, read or RING_WAIT
    /// that waits for frames, and a few times from the binding's work
    /// item). `effective_filter` is what the adapter's filter of now gives
    /// the handle meanwhile. Never set with
    /// bits refused for good: those are out of the effective filter, and
    /// told by `FILTER_REFUSED` or `FILTER_FAILED`.
    pub const FILTER_PENDING: u16 = 0x0001;
    /// Every flag a reply may carry.
    pub const ALL: u16 = FILTER_PENDING;
}

/// `IOCTL_RAWNIC_GET_STATS` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsReply {
    /// `stats_flags`.
    pub flags: u16,
    /// Frames and bytes waiting in this handle's receive queue.
    pub queued_frames: u32,
    pub queued_bytes: u64,
    /// The packet filter the handle asked for at open.
    pub requested_filter: PacketFilter,
    /// The packet filter it gets (less what the adapter refused).
    pub effective_filter: PacketFilter,
    pub handle: Counters,
    pub binding: Counters,
}

impl StatsReply {
    pub const LEN: usize = 24 + 2 * Counters::LEN;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(self.flags)?.u32(self.queued_frames)?.u64(self.queued_bytes)?;
        w.u32(self.requested_filter.bits())?.u32(self.effective_filter.bits())?;
        self.handle.emit(&mut w)?;
        self.binding.emit(&mut w)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let flags = check_header(buf, stats_flags::ALL)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(StatsReply {
            flags,
            queued_frames: u32_at(buf, 4),
            queued_bytes: u64_at(buf, 8),
            requested_filter: PacketFilter::from_bits_retain(u32_at(buf, 16)),
            effective_filter: PacketFilter::from_bits_retain(u32_at(buf, 20)),
            handle: Counters::parse(&buf[24..]),
            binding: Counters::parse(&buf[24 + Counters::LEN..]),
        })
    }
}
