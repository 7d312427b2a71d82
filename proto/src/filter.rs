//! Packet filter bits (the NDIS `NDIS_PACKET_TYPE_*` values) as a type,
//! [`PacketFilter`], and what a handle gets when the adapter does not allow
//! all it asked for.

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub, SubAssign};

/// A set of packet filter bits: the `u32` NDIS and the wire carry, typed.
///
/// Any `u32` is a `PacketFilter`: bits without a name here are kept as
/// they are ([`PacketFilter::from_bits_retain`]), so what the wire carries
/// goes back on it unchanged, and whoever checks a filter
/// ([`PacketFilter::unknown`]) decides what to do with them.
///
/// `Display` gives the names tools print, comma-separated
/// (`directed,broadcast`; `none` for no bits; bits without a name in hex);
/// `Debug` the constants' names (`DIRECTED | BROADCAST`); `{:#x}` the
/// number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct PacketFilter(u32);

impl PacketFilter {
    /// `NDIS_PACKET_TYPE_DIRECTED`: frames to the adapter's own address.
    pub const DIRECTED: Self = Self(0x01);
    /// `NDIS_PACKET_TYPE_MULTICAST`: the multicast groups in the adapter's list.
    pub const MULTICAST: Self = Self(0x02);
    /// `NDIS_PACKET_TYPE_ALL_MULTICAST`: every multicast frame.
    pub const ALL_MULTICAST: Self = Self(0x04);
    /// `NDIS_PACKET_TYPE_BROADCAST`.
    pub const BROADCAST: Self = Self(0x08);
    /// `NDIS_PACKET_TYPE_PROMISCUOUS`: every frame.
    pub const PROMISCUOUS: Self = Self(0x20);
    /// No bits: a handle that receives nothing (send-only).
    pub const NONE: Self = Self(0);
    /// Every bit a handle may ask for.
    pub const ALL: Self = Self(0x01 | 0x02 | 0x04 | 0x08 | 0x20);
    /// What a handle usually wants.
    pub const DEFAULT: Self = Self(0x01 | 0x02 | 0x08);
    /// Bits an adapter can refuse without the binding losing its use (what
    /// many Wi-Fi and some Ethernet miniports refuse).
    pub const REFUSABLE: Self = Self(0x20 | 0x04);

    /// The named bits with the names tools print and parse, in bit order.
    pub const NAMES: [(&'static str, Self); 5] = [
        ("directed", Self::DIRECTED),
        ("multicast", Self::MULTICAST),
        ("all-multicast", Self::ALL_MULTICAST),
        ("broadcast", Self::BROADCAST),
        ("promiscuous", Self::PROMISCUOUS),
    ];

    /// The names of `Debug`, in the order of [`Self::NAMES`].
    const CONST_NAMES: [&'static str; 5] = ["DIRECTED", "MULTICAST", "ALL_MULTICAST", "BROADCAST", "PROMISCUOUS"];

    /// No bits.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The bits, as NDIS and the wire carry them.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Exactly `bits`, those without a name included.
    pub const fn from_bits_retain(bits: u32) -> Self {
        Self(bits)
    }

    /// `bits`, or `None` if any of them has no name here.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        if bits & !Self::ALL.0 == 0 { Some(Self(bits)) } else { None }
    }

    /// `bits` less those without a name here.
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// The bit called `name` (one of [`Self::NAMES`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    /// The bits that have no name here (that no handle may ask for).
    pub const fn unknown(self) -> Self {
        Self(self.0 & !Self::ALL.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The bits of `self` that are not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }

    /// Inserts `other` if `on`, else removes it.
    pub fn set(&mut self, other: Self, on: bool) {
        if on { self.insert(other) } else { self.remove(other) }
    }
}

impl BitOr for PacketFilter {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for PacketFilter {
    fn bitor_assign(&mut self, rhs: Self) {
        self.insert(rhs);
    }
}

impl BitAnd for PacketFilter {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        self.intersection(rhs)
    }
}

impl BitAndAssign for PacketFilter {
    fn bitand_assign(&mut self, rhs: Self) {
        self.0 &= rhs.0;
    }
}

/// The bits of the left side that are not in the right.
impl Sub for PacketFilter {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        self.difference(rhs)
    }
}

impl SubAssign for PacketFilter {
    fn sub_assign(&mut self, rhs: Self) {
        self.remove(rhs);
    }
}

/// Every bit of the `u32` flipped, those without a name too (as `!` on the
/// number), so that `a & !b` is `a - b` whatever bits they hold.
impl Not for PacketFilter {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

impl fmt::Debug for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketFilter(")?;
        let mut sep = "";
        for (i, (_, bit)) in Self::NAMES.iter().enumerate() {
            if self.contains(*bit) {
                write!(f, "{sep}{}", Self::CONST_NAMES[i])?;
                sep = " | ";
            }
        }
        let rest = self.unknown();
        if !rest.is_empty() || sep.is_empty() {
            write!(f, "{sep}{:#x}", rest.0)?;
        }
        f.write_str(")")
    }
}

/// The names tools print: `directed,broadcast`, `none`, and bits without a
/// name in hex (`directed,0x40`).
impl fmt::Display for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, bit) in Self::NAMES {
            if self.contains(bit) {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        let rest = self.unknown();
        if !rest.is_empty() {
            write!(f, "{sep}{:#x}", rest.0)?;
        } else if sep.is_empty() {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::LowerHex for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::UpperHex for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(&self.0, f)
    }
}

impl fmt::Binary for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Binary::fmt(&self.0, f)
    }
}

// The bits as module constants too (`filter::DEFAULT`, `use filter::*`):
// the same values as `PacketFilter`'s.
pub const DIRECTED: PacketFilter = PacketFilter::DIRECTED;
pub const MULTICAST: PacketFilter = PacketFilter::MULTICAST;
pub const ALL_MULTICAST: PacketFilter = PacketFilter::ALL_MULTICAST;
pub const BROADCAST: PacketFilter = PacketFilter::BROADCAST;
pub const PROMISCUOUS: PacketFilter = PacketFilter::PROMISCUOUS;
/// Every bit a handle may ask for.
pub const ALL: PacketFilter = PacketFilter::ALL;
/// What a handle usually wants.
pub const DEFAULT: PacketFilter = PacketFilter::DEFAULT;
/// Bits an adapter can refuse without the binding losing its use (what
/// many Wi-Fi and some Ethernet miniports refuse).
pub const REFUSABLE: PacketFilter = PacketFilter::REFUSABLE;

/// The bits an adapter lets its protocols set: those it supports (0, not
/// known: all) less those it refused to set.
pub fn allowed(supported: PacketFilter, refused: PacketFilter) -> PacketFilter {
    let s = if supported.is_empty() { ALL } else { supported };
    s & !refused
}

/// The filter a handle that asked for `requested` gets when the adapter
/// allows `allowed`. A bit not allowed falls back to what it covers:
/// promiscuous to directed, broadcast and all-multicast; all-multicast to
/// the multicast list.
pub fn effective(requested: PacketFilter, allowed: PacketFilter) -> PacketFilter {
    let mut f = requested;
    if f.contains(PROMISCUOUS) && !allowed.contains(PROMISCUOUS) {
        f |= DIRECTED | BROADCAST | ALL_MULTICAST;
    }
    if f.contains(ALL_MULTICAST) && !allowed.contains(ALL_MULTICAST) {
        f |= MULTICAST;
    }
    f & allowed
}

/// What a filter takes in: promiscuous covers every bit, all-multicast
/// the multicast list.
pub fn covers(f: PacketFilter) -> PacketFilter {
    let f = if f.contains(PROMISCUOUS) { ALL } else { f };
    if f.contains(ALL_MULTICAST) { f | MULTICAST } else { f }
}

/// What a handle whose filter is `wants` gets of the frames an adapter
/// lets in whose filter covers `has` (`covers` of it): `wants` when it
/// misses none of them; else each bit of `has` its own filter takes in (a
/// promiscuous handle takes whatever comes in, an all-multicast one every
/// group that does).
pub fn gets(wants: PacketFilter, has: PacketFilter) -> PacketFilter {
    if (covers(wants) & !has).is_empty() { wants } else { covers(wants) & has }
}

/// What a handle that asked for `requested` and got `effective` lost.
pub fn lost(requested: PacketFilter, effective: PacketFilter) -> PacketFilter {
    covers(requested) & !covers(effective)
}

/// What a refused set of packet filter `failed` is put down to, when
/// `current` is the filter the adapter has (a refusal that means the
/// adapter does not support what was asked: a failure for any other
/// reason is put down to no bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// No refusable bit was added: nothing to take away.
    Nothing,
    /// The one refusable bit the set added: it is refused.
    Bits(PacketFilter),
    /// The set added several refusable bits, and which of them the adapter
    /// refuses is not known. A set without `drop` tells, and never bans a
    /// bit the adapter takes: taken, `drop` is what it refused (it took
    /// the rest); refused, the one bit it added, kept back, is refused
    /// (`Bits`), and the next set tries `drop` on its own account.
    Probe { drop: PacketFilter },
}

/// The refusable bits, the one adapters refuse most first (many Wi-Fi
/// miniports refuse promiscuous mode; few refuse all-multicast).
const MOST_REFUSED_FIRST: [PacketFilter; 2] = [PROMISCUOUS, ALL_MULTICAST];

/// What a refused set of `failed` is put down to ([`Blame`]), the adapter
/// having `current`: the refusable bits it added; one alone is to blame;
/// of several, a probe leaves out all but the one adapters refuse least
/// (so with the adapters that refuse promiscuous mode, the common case,
/// the probe is taken and costs one set).
pub fn blame(failed: PacketFilter, current: PacketFilter) -> Blame {
    let added = failed & !current & REFUSABLE;
    let Some(&least) = MOST_REFUSED_FIRST.iter().rev().find(|&&b| added.contains(b)) else {
        return Blame::Nothing;
    };
    if added == least { Blame::Bits(added) } else { Blame::Probe { drop: added - least } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    const NONE: PacketFilter = PacketFilter::NONE;

    #[test]
    fn what_a_handle_gets_of_what_the_adapter_lets_in() {
        // Nothing missed: its own filter, as it asked.
        assert_eq!(gets(PROMISCUOUS, ALL), PROMISCUOUS);
        assert_eq!(gets(ALL_MULTICAST, covers(ALL_MULTICAST)), ALL_MULTICAST);
        assert_eq!(gets(DIRECTED | BROADCAST, covers(PROMISCUOUS)), DIRECTED | BROADCAST);
        // A promiscuous handle behind an adapter that has this host's
        // frames and broadcasts gets those, not nothing.
        assert_eq!(gets(PROMISCUOUS, covers(DIRECTED | BROADCAST)), DIRECTED | BROADCAST);
        assert_eq!(gets(ALL_MULTICAST, covers(DIRECTED | MULTICAST)), MULTICAST);
        // A bit the adapter lacks is simply missing.
        assert_eq!(gets(DIRECTED | BROADCAST, covers(DIRECTED)), DIRECTED);
        assert_eq!(gets(BROADCAST, covers(NONE)), NONE);
        // What it misses is what it asked for beyond what it gets.
        let g = gets(PROMISCUOUS, covers(DIRECTED | BROADCAST));
        assert_eq!(lost(PROMISCUOUS, g), MULTICAST | ALL_MULTICAST | PROMISCUOUS);
    }

    #[test]
    fn refused_bits_fall_back_to_what_they_cover() {
        let all = allowed(NONE, NONE);
        assert_eq!(all, ALL, "unknown support allows everything");
        assert_eq!(effective(DEFAULT | PROMISCUOUS, all), DEFAULT | PROMISCUOUS);
        let no_promisc = allowed(ALL, PROMISCUOUS);
        assert_eq!(effective(PROMISCUOUS, no_promisc), DIRECTED | BROADCAST | ALL_MULTICAST);
        let neither = allowed(DIRECTED | BROADCAST | MULTICAST | PROMISCUOUS, PROMISCUOUS);
        assert_eq!(effective(PROMISCUOUS, neither), DIRECTED | BROADCAST | MULTICAST);
        assert_eq!(effective(BROADCAST, neither), BROADCAST, "nothing added that was not asked for");
        assert_eq!(effective(ALL_MULTICAST, allowed(DIRECTED, NONE)), NONE);
        assert_eq!(lost(DEFAULT | PROMISCUOUS, DEFAULT | ALL_MULTICAST), PROMISCUOUS);
        assert_eq!(lost(DEFAULT | ALL_MULTICAST, DEFAULT | PROMISCUOUS), NONE, "promiscuous covers all");
    }

    #[test]
    fn a_refusal_is_put_down_to_the_refusable_bits_added() {
        assert_eq!(blame(DEFAULT | PROMISCUOUS, DEFAULT), Blame::Bits(PROMISCUOUS));
        assert_eq!(blame(DEFAULT | PROMISCUOUS, DEFAULT | PROMISCUOUS), Blame::Nothing, "not added now");
        assert_eq!(blame(DEFAULT, NONE), Blame::Nothing, "basic bits are never blamed");
        assert_eq!(blame(DEFAULT | ALL_MULTICAST, DEFAULT), Blame::Bits(ALL_MULTICAST));
        // Two added: which one is not known; a set without promiscuous
        // mode (the one adapters refuse most) tells.
        assert_eq!(blame(ALL, DIRECTED), Blame::Probe { drop: PROMISCUOUS });
        // Refused, that probe added all-multicast alone: to blame.
        assert_eq!(blame(ALL - PROMISCUOUS, DIRECTED), Blame::Bits(ALL_MULTICAST));
        // One of the two on the adapter already: the other alone.
        assert_eq!(blame(ALL, DEFAULT | ALL_MULTICAST), Blame::Bits(PROMISCUOUS));
        assert_eq!(blame(ALL, DEFAULT | PROMISCUOUS), Blame::Bits(ALL_MULTICAST));
    }

    #[test]
    fn bits_without_a_name_are_kept_and_shown() {
        let odd = PacketFilter::from_bits_retain(0x40 | 0x09);
        assert_eq!(odd.bits(), 0x49);
        assert_eq!(odd.unknown().bits(), 0x40);
        assert_eq!(PacketFilter::from_bits(0x49), None);
        assert_eq!(PacketFilter::from_bits(0x09), Some(DIRECTED | BROADCAST));
        assert_eq!(PacketFilter::from_bits_truncate(0x49), DIRECTED | BROADCAST);
        assert_eq!((odd & !BROADCAST).bits(), 0x41);
        assert_eq!((!odd).bits(), !0x49);
        assert_eq!(odd - DIRECTED, PacketFilter::from_bits_retain(0x48));
        assert!(odd.contains(DIRECTED | BROADCAST) && !odd.contains(DEFAULT) && odd.intersects(DEFAULT));
        assert_eq!(format!("{odd}"), "directed,broadcast,0x40");
        assert_eq!(format!("{:?}", odd), "PacketFilter(DIRECTED | BROADCAST | 0x40)");
        assert_eq!(format!("{odd:#x} {odd:#06X}"), "0x49 0x0049");
        assert_eq!(format!("{} {:?}", NONE, NONE), "none PacketFilter(0x0)");
        assert_eq!(format!("{}", PacketFilter::from_bits_retain(0x100)), "0x100");
        assert_eq!(format!("{ALL}"), "directed,multicast,all-multicast,broadcast,promiscuous");
        let mut f = NONE;
        f.set(PROMISCUOUS, true);
        f |= DEFAULT;
        f.set(PROMISCUOUS, false);
        assert_eq!(f, DEFAULT);
        assert_eq!(PacketFilter::default(), NONE);
    }

    #[test]
    fn names_give_back_their_bits() {
        for (name, bit) in PacketFilter::NAMES {
            assert_eq!(PacketFilter::from_name(name), Some(bit));
            assert_eq!(format!("{bit}"), name);
        }
        assert_eq!(PacketFilter::from_name("none"), None);
        assert_eq!(PacketFilter::NAMES.iter().fold(NONE, |a, &(_, b)| a | b), ALL);
    }
}
