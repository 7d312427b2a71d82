//! Which received frames a handle wants: its packet filter (by the
//! destination address) and its EtherType set.

use rawnic_proto::PacketFilter;
use rawnic_proto::filter as pf;

/// What a frame's destination address is, seen from the binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DestClass {
    /// The binding's own MAC.
    Directed,
    /// ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// Any other group address.
    Multicast,
    /// Some other station (seen only in promiscuous mode).
    OtherHost,
}

pub fn classify(dst: &[u8], own: &[u8; 6]) -> DestClass {
    if dst.len() < 6 {
        return DestClass::OtherHost;
    }
    if dst[..6] == [0xff; 6] {
        DestClass::Broadcast
    } else if dst[0] & 1 != 0 {
        DestClass::Multicast
    } else if dst[..6] == own[..] {
        DestClass::Directed
    } else {
        DestClass::OtherHost
    }
}

/// `classify` for a whole header: its destination read as one word
/// (with the source's first two bytes, shifted out), compared whole. The
/// same class as `classify(&header[..6], own)`.
#[inline(always)]
pub fn classify_header(header: &[u8; 14], own: &[u8; 6]) -> DestClass {
    let (first, _) = header.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    // The destination in the word's top six bytes.
    let dst = u64::from_le_bytes(*first) << 16;
    if dst == 0xffff_ffff_ffff_0000 {
        DestClass::Broadcast
    } else if header[0] & 1 != 0 {
        DestClass::Multicast
    } else if dst == u64::from_le_bytes([0, 0, own[0], own[1], own[2], own[3], own[4], own[5]]) {
        DestClass::Directed
    } else {
        DestClass::OtherHost
    }
}

/// Whether `classify_header(header, own)` is one of `classes` (bit
/// `class as u8` each): each class's test followed at once by its bit's,
/// so no class is worked out as a value.
#[inline(always)]
pub fn header_class_in(header: &[u8; 14], own: &[u8; 6], classes: u8) -> bool {
    let (first, _) = header.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    // As in `classify_header`.
    let dst = u64::from_le_bytes(*first) << 16;
    let bit = |class: DestClass| 1u8 << class as u8;
    let class = if dst == 0xffff_ffff_ffff_0000 {
        bit(DestClass::Broadcast)
    } else if header[0] & 1 != 0 {
        bit(DestClass::Multicast)
    } else if dst == u64::from_le_bytes([0, 0, own[0], own[1], own[2], own[3], own[4], own[5]]) {
        bit(DestClass::Directed)
    } else {
        bit(DestClass::OtherHost)
    };
    classes & class != 0
}

/// The EtherType of an Ethernet header, and the inner one if it carries an
/// 802.1Q tag. A header shorter than 14 bytes (a runt, or a header that
/// could not be read) has none: `None`, which no EtherType matches, not
/// even 0x0000 (an 802.3 length field of 0).
pub fn ethertypes(header: &[u8]) -> (Option<u16>, Option<u16>) {
    if header.len() < 14 {
        return (None, None);
    }
    let outer = u16::from_be_bytes([header[12], header[13]]);
    let inner =
        (matches!(outer, 0x8100 | 0x88a8) && header.len() >= 18).then(|| u16::from_be_bytes([header[16], header[17]]));
    (Some(outer), inner)
}

/// `ethertypes` of a frame as it was on the wire: a frame whose 802.1Q
/// tag the NIC stripped into the NBL's info (`stripped`, 0 for none; for
/// a send, the tag the NIC will insert) had TPID 0x8100 after its
/// addresses, so its EtherType is 0x8100 and the inner one is the one its
/// bytes show (as a capture program sees it, `bpf::Tagged`). A stripped
/// runt of 12 or 13 bytes (16 or 17 on the wire) is of EtherType 0x8100
/// with none inside, as the same runt with its tag inline is; one shorter
/// than its addresses has none.
#[inline]
pub fn ethertypes_on_wire(header: &[u8], stripped: u16) -> (Option<u16>, Option<u16>) {
    match (stripped, ethertypes(header)) {
        (0, types) => types,
        (_, (Some(outer), _)) => (Some(rawnic_proto::TPID_8021Q), Some(outer)),
        (_, (None, _)) if header.len() >= 12 => (Some(rawnic_proto::TPID_8021Q), None),
        (_, types) => types,
    }
}

/// Whether packet filter `f` takes frames of destination class `class`
/// (with MULTICAST alone, only the groups on the handle's own list:
/// `Filter::multicast_listed`, the caller looks).
fn takes_class(f: PacketFilter, class: DestClass) -> bool {
    if f.contains(pf::PROMISCUOUS) {
        return true;
    }
    match class {
        DestClass::Directed => f.contains(pf::DIRECTED),
        DestClass::Broadcast => f.contains(pf::BROADCAST),
        DestClass::Multicast => f.intersects(pf::MULTICAST | pf::ALL_MULTICAST),
        DestClass::OtherHost => false,
    }
}

/// Most EtherTypes a handle can list.
pub const MAX_TYPES: usize = rawnic_proto::MAX_ETHERTYPES;

pub use rawnic_proto::filter::{Blame, REFUSABLE, allowed, blame, covers, effective, gets, lost};

/// `RxFilter::classes` bit: multicast only from the handle's list.
const LISTED: u8 = 1 << 7;

/// A handle's receive filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxFilter {
    /// What the handle asked for.
    requested: PacketFilter,
    /// What it gets (`effective(requested, allowed)`).
    packet_filter: PacketFilter,
    /// Bit `class as u8` set for each `DestClass` `packet_filter` takes
    /// (`accepts_class`, computed when the filter changes).
    classes: u8,
    types: [u16; MAX_TYPES],
    n_types: usize,
}

impl RxFilter {
    /// `types` empty means all.
    /// Extra types beyond `MAX_TYPES` are refused by rawnic_proto before this.
    pub fn new(packet_filter: PacketFilter, types: impl IntoIterator<Item = u16>) -> Self {
        let mut f = RxFilter { requested: packet_filter, packet_filter, classes: 0, types: [0; MAX_TYPES], n_types: 0 };
        f.classes = f.class_bits();
        for t in types.into_iter().take(MAX_TYPES) {
            if !f.types[..f.n_types].contains(&t) {
                f.types[f.n_types] = t;
                f.n_types += 1;
            }
        }
        f
    }

    /// The packet filter the handle gets.
    pub fn packet_filter(&self) -> PacketFilter {
        self.packet_filter
    }

    /// The packet filter the handle asked for.
    pub fn requested(&self) -> PacketFilter {
        self.requested
    }

    /// Narrows (or widens back) the filter to what the adapter allows;
    /// returns the bits the handle had and lost.
    pub fn restrict(&mut self, allowed: PacketFilter) -> PacketFilter {
        let old = self.packet_filter;
        self.packet_filter = effective(self.requested, allowed);
        self.classes = self.class_bits();
        pf::lost(old, self.packet_filter)
    }

    /// A send-only handle: it asked for no frames (whatever the adapter
    /// allows, this does not change while it is open).
    pub fn receives_nothing(&self) -> bool {
        self.requested.is_empty()
    }

    fn accepts_class(&self, class: DestClass) -> bool {
        takes_class(self.packet_filter, class)
    }

    /// Whether the handle, its packet filter within `has` (what the
    /// adapter's filter takes in while it owes the handles theirs:
    /// `covers`; `gets`, as GET_STATS's effective filter), takes frames of
    /// `class`.
    #[inline]
    pub fn accepts_class_within(&self, class: DestClass, has: PacketFilter) -> bool {
        takes_class(gets(self.packet_filter, has), class)
    }

    /// `accepts_class` for every class, as bits, and `LISTED`.
    fn class_bits(&self) -> u8 {
        let f = self.packet_filter;
        let listed = f.contains(pf::MULTICAST) && !f.intersects(pf::ALL_MULTICAST | pf::PROMISCUOUS);
        [DestClass::Directed, DestClass::Broadcast, DestClass::Multicast, DestClass::OtherHost]
            .into_iter()
            .filter(|&c| self.accepts_class(c))
            .fold(if listed { LISTED } else { 0 }, |bits, c| bits | (1 << c as u8))
    }

    /// The handle takes multicast frames (group addresses but broadcast)
    /// only for the groups on its own list: its filter has MULTICAST but
    /// neither ALL_MULTICAST nor PROMISCUOUS. The adapter lets through the
    /// union of the binding's handles' lists, so `accepts` says yes to
    /// every group, and the caller checks the destination against the
    /// handle's list, as NDIS does for each open.
    #[inline]
    pub fn multicast_listed(&self) -> bool {
        self.classes & LISTED != 0
    }

    /// The destination classes (bit `class as u8` each) whose frames the
    /// handle takes on their class alone: it has no EtherType list, and a
    /// `Multicast` one is not limited to the handle's groups
    /// (`multicast_listed`). A frame of a class not in the set may still be
    /// taken: `accepts` (and the caller's multicast list) say.
    #[inline]
    pub fn taken_by_class(&self) -> u8 {
        if self.n_types != 0 {
            return 0;
        }
        let listed = if self.classes & LISTED != 0 { 1 << DestClass::Multicast as u8 } else { 0 };
        self.classes & !LISTED & !listed
    }

    /// Whether every frame the handle may take is taken on its class alone
    /// (`taken_by_class` is every class it accepts): a frame of another
    /// class is never taken.
    #[inline]
    pub fn taken_whole_by_class(&self) -> bool {
        self.taken_by_class() == self.classes & !LISTED
    }

    /// Whether the handle wants a frame with this destination class and
    /// EtherTypes (for a `DestClass::Multicast` one, see also
    /// `multicast_listed`). A frame with no EtherType (`outer` None: no
    /// whole header) goes only to handles that take every EtherType.
    #[inline]
    pub fn accepts(&self, class: DestClass, outer: Option<u16>, inner: Option<u16>) -> bool {
        if self.classes & (1 << class as u8) == 0 {
            return false;
        }
        if self.n_types == 0 {
            return true;
        }
        let types = &self.types[..self.n_types];
        outer.is_some_and(|t| types.contains(&t)) || inner.is_some_and(|t| types.contains(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn header(dst: [u8; 6], ty: u16) -> [u8; 18] {
        let mut h = [0u8; 18];
        h[..6].copy_from_slice(&dst);
        h[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        h[12..14].copy_from_slice(&ty.to_be_bytes());
        h
    }

    proptest::proptest! {
        /// `classify_header` is `classify` on the header's first six bytes,
        /// whatever they are (broadcast, group, own or any other address,
        /// and near misses of each).
        #[test]
        fn classify_header_is_classify(
            dst in proptest::sample::select(std::vec![[0xff; 6], [0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], OWN, [2, 0, 0, 0, 0, 2], [3, 0, 0, 0, 0, 1], [0x01, 0x00, 0x5e, 0, 0, 1], [0; 6]]),
            any_dst in proptest::array::uniform6(proptest::num::u8::ANY),
            random in proptest::bool::ANY,
            rest in proptest::array::uniform8(proptest::num::u8::ANY),
            own_is in proptest::bool::ANY,
        ) {
            let dst = if random { any_dst } else { dst };
            let own = if own_is { dst } else { OWN };
            let mut h = [0u8; 14];
            h[..6].copy_from_slice(&dst);
            h[6..].copy_from_slice(&rest);
            proptest::prop_assert_eq!(classify_header(&h, &own), classify(&h[..6], &own));
            // And `header_class_in` says whether that class is in any set.
            for classes in 0..16u8 {
                let class = classify_header(&h, &own);
                proptest::prop_assert_eq!(header_class_in(&h, &own, classes), classes & (1 << class as u8) != 0);
            }
        }
    }

    /// A class in `taken_by_class` is accepted with any EtherType (or
    /// none) and, for `Multicast`, without a look at the list; every
    /// filter, with and without an EtherType list.
    #[test]
    fn taken_by_class_is_taken() {
        let classes = [DestClass::Directed, DestClass::Broadcast, DestClass::Multicast, DestClass::OtherHost];
        for bits in 0..64u32 {
            let asked = PacketFilter::from_bits_truncate(bits) & pf::ALL;
            for types in [&[][..], &[0x0800][..]] {
                for allowed in [pf::ALL, pf::ALL & !pf::REFUSABLE] {
                    let mut f = RxFilter::new(asked, types.iter().copied());
                    f.restrict(allowed);
                    let mut whole = true;
                    for c in classes {
                        let alone = f.taken_by_class() & (1 << c as u8) != 0;
                        let always = [None, Some(0x0800), Some(0x86dd)].into_iter().all(|t| f.accepts(c, t, None))
                            && (c != DestClass::Multicast || !f.multicast_listed());
                        assert_eq!(alone, always, "{asked:?} {types:?} {allowed:?} {c:?}");
                        let never = [None, Some(0x0800), Some(0x86dd)].into_iter().all(|t| !f.accepts(c, t, None));
                        whole &= alone || never;
                    }
                    assert_eq!(f.taken_whole_by_class(), whole, "{asked:?} {types:?} {allowed:?}");
                }
            }
        }
    }

    #[test]
    fn restricting_keeps_the_request() {
        let mut f = RxFilter::new(pf::DEFAULT | pf::PROMISCUOUS, []);
        assert_eq!(f.restrict(allowed(pf::ALL, pf::PROMISCUOUS)), pf::PROMISCUOUS);
        assert_eq!(
            (f.requested(), f.packet_filter()),
            (pf::DEFAULT | pf::PROMISCUOUS, pf::DEFAULT | pf::ALL_MULTICAST)
        );
        assert!(!f.accepts(DestClass::OtherHost, Some(0x0800), None));
        assert_eq!(f.restrict(pf::ALL), PacketFilter::NONE, "widening loses nothing");
        assert!(f.accepts(DestClass::OtherHost, Some(0x0800), None));
        let mut send_only = RxFilter::new(PacketFilter::NONE, []);
        send_only.restrict(pf::DIRECTED);
        assert!(send_only.receives_nothing());
    }

    #[test]
    fn class_bits_agree_with_the_packet_filter_for_every_filter() {
        let bits = [pf::DIRECTED, pf::BROADCAST, pf::MULTICAST, pf::ALL_MULTICAST, pf::PROMISCUOUS];
        for mask in 0u32..1 << bits.len() {
            let filter = bits
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & 1 << i != 0)
                .fold(PacketFilter::NONE, |f, (_, &b)| f | b);
            let mut f = RxFilter::new(filter, []);
            for allowed in [pf::ALL, pf::DIRECTED | pf::BROADCAST] {
                f.restrict(allowed);
                for c in [DestClass::Directed, DestClass::Broadcast, DestClass::Multicast, DestClass::OtherHost] {
                    assert_eq!(
                        f.accepts(c, Some(0x0800), None),
                        f.accepts_class(c),
                        "{filter:?} within {allowed:?}, {c:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn classifies_destinations() {
        assert_eq!(classify(&OWN, &OWN), DestClass::Directed);
        assert_eq!(classify(&[0xff; 6], &OWN), DestClass::Broadcast);
        assert_eq!(classify(&[0x01, 0, 0x5e, 0, 0, 1], &OWN), DestClass::Multicast);
        assert_eq!(classify(&[2, 0, 0, 0, 0, 2], &OWN), DestClass::OtherHost);
        assert_eq!(classify(&[1, 2], &OWN), DestClass::OtherHost);
    }

    #[test]
    fn packet_filter_bits() {
        let f = RxFilter::new(pf::DIRECTED | pf::BROADCAST, []);
        assert!(f.accepts(DestClass::Directed, Some(0x0800), None));
        assert!(f.accepts(DestClass::Broadcast, Some(0x0806), None));
        assert!(!f.accepts(DestClass::Multicast, Some(0x0800), None));
        assert!(!f.accepts(DestClass::OtherHost, Some(0x0800), None));
        let p = RxFilter::new(pf::PROMISCUOUS, []);
        assert!(p.accepts(DestClass::OtherHost, Some(0x1234), None));
        let none = RxFilter::new(PacketFilter::NONE, []);
        assert!(none.receives_nothing());
        assert!(!none.accepts(DestClass::Directed, Some(0x0800), None));
    }

    #[test]
    fn ethertype_sets_match_outer_or_tagged_inner() {
        let f = RxFilter::new(pf::DEFAULT, [0x0806, 0x88cc, 0x0806]);
        let (o, i) = ethertypes(&header(OWN, 0x0806));
        assert!(f.accepts(DestClass::Directed, o, i));
        let (o, i) = ethertypes(&header(OWN, 0x0800));
        assert!(!f.accepts(DestClass::Directed, o, i));
        let mut tagged = header(OWN, 0x8100);
        tagged[16..18].copy_from_slice(&0x88ccu16.to_be_bytes());
        let (o, i) = ethertypes(&tagged);
        assert_eq!((o, i), (Some(0x8100), Some(0x88cc)));
        assert!(f.accepts(DestClass::Directed, o, i));
        // A runt has no EtherType, and no list matches it, even one with
        // 0x0000 (an 802.3 length field of 0, which a whole header has).
        assert_eq!(ethertypes(&[0; 13]), (None, None));
        // A tag the NIC stripped: as on the wire.
        assert_eq!(ethertypes_on_wire(&header(OWN, 0x0800), 5), (Some(0x8100), Some(0x0800)));
        assert_eq!(ethertypes_on_wire(&header(OWN, 0x0800), 0), (Some(0x0800), None));
        assert_eq!(ethertypes_on_wire(&tagged, 5), (Some(0x8100), Some(0x8100)));
        // A stripped runt: 0x8100 once its addresses are whole (16 or 17
        // bytes on the wire), as with its tag inline.
        assert_eq!(ethertypes_on_wire(&[0; 13], 5), (Some(0x8100), None));
        assert_eq!(ethertypes_on_wire(&[0; 12], 5), (Some(0x8100), None));
        assert_eq!(ethertypes(&[&[0; 12][..], &[0x81, 0, 0, 5]].concat()), (Some(0x8100), None));
        assert_eq!(ethertypes_on_wire(&[0; 11], 5), (None, None));
        assert_eq!(ethertypes_on_wire(&[0; 13], 0), (None, None));
        let zero = RxFilter::new(pf::PROMISCUOUS, [0x0000]);
        assert!(!zero.accepts(DestClass::OtherHost, None, None));
        assert!(zero.accepts(DestClass::OtherHost, ethertypes(&[0; 14]).0, None));
        assert!(RxFilter::new(pf::PROMISCUOUS, []).accepts(DestClass::OtherHost, None, None));
    }
}
