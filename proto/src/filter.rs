//! Packet filter bits (the NDIS `NDIS_PACKET_TYPE_*` values), and what a
//! handle gets when the adapter does not allow all it asked for.

pub const DIRECTED: u32 = 0x01;
pub const MULTICAST: u32 = 0x02;
pub const ALL_MULTICAST: u32 = 0x04;
pub const BROADCAST: u32 = 0x08;
pub const PROMISCUOUS: u32 = 0x20;
/// Every bit a handle may ask for.
pub const ALL: u32 = DIRECTED | MULTICAST | ALL_MULTICAST | BROADCAST | PROMISCUOUS;
/// What a handle usually wants.
pub const DEFAULT: u32 = DIRECTED | MULTICAST | BROADCAST;

/// Bits an adapter can refuse without the binding losing its use (what
/// many Wi-Fi and some Ethernet miniports refuse).
pub const REFUSABLE: u32 = PROMISCUOUS | ALL_MULTICAST;

/// The bits an adapter lets its protocols set: those it supports (0, not
/// known: all) less those it refused to set.
pub fn allowed(supported: u32, refused: u32) -> u32 {
    let s = if supported == 0 { ALL } else { supported };
    s & !refused
}

/// The filter a handle that asked for `requested` gets when the adapter
/// allows `allowed`. A bit not allowed falls back to what it covers:
/// promiscuous to directed, broadcast and all-multicast; all-multicast to
/// the multicast list.
pub fn effective(requested: u32, allowed: u32) -> u32 {
    let mut f = requested;
    if f & PROMISCUOUS != 0 && allowed & PROMISCUOUS == 0 {
        f |= DIRECTED | BROADCAST | ALL_MULTICAST;
    }
    if f & ALL_MULTICAST != 0 && allowed & ALL_MULTICAST == 0 {
        f |= MULTICAST;
    }
    f & allowed
}

/// What a filter takes in: promiscuous covers every bit, all-multicast
/// the multicast list.
pub fn covers(f: u32) -> u32 {
    let f = if f & PROMISCUOUS != 0 { ALL } else { f };
    if f & ALL_MULTICAST != 0 { f | MULTICAST } else { f }
}

/// What a handle that asked for `requested` and got `effective` lost.
pub fn lost(requested: u32, effective: u32) -> u32 {
    covers(requested) & !covers(effective)
}

/// The bit a failed set of packet filter `failed` is put down to, when
/// `current` is the filter the adapter has: of the refusable bits it
/// added, promiscuous first (the one adapters refuse most), then
/// all-multicast; one at a time, so a bit is never refused on another's
/// account. 0 when the failure is not about them (nothing to take away).
pub fn blame(failed: u32, current: u32) -> u32 {
    let added = failed & !current & REFUSABLE;
    if added & PROMISCUOUS != 0 { PROMISCUOUS } else { added }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_bits_fall_back_to_what_they_cover() {
        let all = allowed(0, 0);
        assert_eq!(all, ALL, "unknown support allows everything");
        assert_eq!(effective(DEFAULT | PROMISCUOUS, all), DEFAULT | PROMISCUOUS);
        let no_promisc = allowed(ALL, PROMISCUOUS);
        assert_eq!(effective(PROMISCUOUS, no_promisc), DIRECTED | BROADCAST | ALL_MULTICAST);
        let neither = allowed(DIRECTED | BROADCAST | MULTICAST | PROMISCUOUS, PROMISCUOUS);
        assert_eq!(effective(PROMISCUOUS, neither), DIRECTED | BROADCAST | MULTICAST);
        assert_eq!(effective(BROADCAST, neither), BROADCAST, "nothing added that was not asked for");
        assert_eq!(effective(ALL_MULTICAST, allowed(DIRECTED, 0)), 0);
        assert_eq!(lost(DEFAULT | PROMISCUOUS, DEFAULT | ALL_MULTICAST), PROMISCUOUS);
        assert_eq!(lost(DEFAULT | ALL_MULTICAST, DEFAULT | PROMISCUOUS), 0, "promiscuous covers all");
    }

    #[test]
    fn a_refusal_is_put_down_to_the_refusable_bits_added() {
        assert_eq!(blame(DEFAULT | PROMISCUOUS, DEFAULT), PROMISCUOUS);
        assert_eq!(blame(DEFAULT | PROMISCUOUS, DEFAULT | PROMISCUOUS), 0, "not added now");
        assert_eq!(blame(DEFAULT, 0), 0, "basic bits are never blamed");
        assert_eq!(blame(ALL, DIRECTED), PROMISCUOUS, "one bit at a time, promiscuous first");
        assert_eq!(blame(DEFAULT | ALL_MULTICAST, DEFAULT), ALL_MULTICAST);
    }
}
