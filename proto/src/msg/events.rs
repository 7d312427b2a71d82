//! WAIT_EVENT: events.

use super::*;

/// Event kinds on the wire. [`EventKind`] is the typed form.
pub mod event {
    pub const LINK_UP: u16 = 1;
    pub const LINK_DOWN: u16 = 2;
    pub const PAUSED: u16 = 3;
    pub const RESTARTED: u16 = 4;
    /// The binding's last event.
    pub const UNBOUND: u16 = 5;
    /// The binding's first event (`speed` 0, `mtu` its MTU).
    pub const BOUND: u16 = 6;
    /// The adapter refused part of the handle's packet filter: `filter` is
    /// what the handle gets now, `refused` what it lost.
    pub const FILTER_REFUSED: u16 = 7;
    /// The adapter failed to take the packet filter the handles need, for
    /// no bit rawnic can blame (a device in trouble), after rawnic's
    /// retries began: until a set succeeds, `filter` is what the handle
    /// gets (what the adapter's unchanged filter takes of its own) and
    /// `refused` what it misses. Told once per handle until a set succeeds
    /// (GET_STATS's effective filter says when it did).
    pub const FILTER_FAILED: u16 = 8;

    pub fn name(k: u16) -> &'static str {
        super::EventKind::from(k).name()
    }
}

wire_enum! {
    /// What an event says happened (`event::*`).
    pub enum EventKind: u16 {
        LinkUp = event::LINK_UP, "link-up";
        LinkDown = event::LINK_DOWN, "link-down";
        Paused = event::PAUSED, "paused";
        Restarted = event::RESTARTED, "restarted";
        Unbound = event::UNBOUND, "unbound";
        Bound = event::BOUND, "bound";
        /// The adapter refused part of the handle's packet filter.
        FilterRefused = event::FILTER_REFUSED, "filter-refused";
        /// The adapter failed to take the handles' packet filter.
        FilterFailed = event::FILTER_FAILED, "filter-failed";
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
    /// Events dropped because the handle's event queue was full (64): the
    /// oldest go, so these came just before this one, and the events after
    /// it, the newest included, are all there.
    pub lost: u32,
    /// The handle's effective packet filter (`FILTER_REFUSED`, and
    /// `FILTER_FAILED`: for now), else none.
    pub filter: PacketFilter,
    /// The filter bits the adapter refused (`FILTER_REFUSED`), or that the
    /// handle misses for now (`FILTER_FAILED`), else none.
    pub refused: PacketFilter,
}

impl EventRecord {
    pub const LEN: usize = 40;

    /// `kind` as an [`EventKind`].
    pub fn event_kind(&self) -> EventKind {
        EventKind::from(self.kind)
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(self.kind)?.u32(self.binding_id)?;
        w.u64(self.seq)?.u64(self.speed)?.u32(self.mtu)?.u32(self.lost)?;
        w.u32(self.filter.bits())?.u32(self.refused.bits())?;
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
            filter: PacketFilter::from_bits_retain(u32_at(buf, 32)),
            refused: PacketFilter::from_bits_retain(u32_at(buf, 36)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn event_kinds_give_back_every_value() {
        for v in (0..=16).chain([0xFFFF]) {
            assert_eq!(u16::from(EventKind::from(v)), v);
        }
        assert_eq!(EventKind::from(event::FILTER_REFUSED), EventKind::FilterRefused);
        assert_eq!(EventKind::from(event::FILTER_FAILED).name(), "filter-failed");
        assert_eq!(EventKind::from(0), EventKind::Unknown(0));
        let ev = EventRecord { kind: event::LINK_UP, ..EventRecord::default() };
        assert_eq!((ev.event_kind(), ev.event_kind().to_string()), (EventKind::LinkUp, "link-up".to_string()));
    }
}
