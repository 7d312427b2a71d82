//! Multicast lists: each handle sets its own (`OID_802_3_MULTICAST_LIST`
//! through SET_OID), and the binding's list is the union of its handles'
//! lists, so one handle's set never takes another's groups away and a
//! handle's groups go when it closes.

use alloc::vec::Vec;
use rawnic_proto::MAX_HANDLE_MULTICAST;

/// One handle's multicast addresses: at most `MAX_HANDLE_MULTICAST`
/// distinct group addresses, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastList {
    addrs: [[u8; 6]; MAX_HANDLE_MULTICAST],
    n: usize,
}

impl MulticastList {
    pub const EMPTY: MulticastList = MulticastList { addrs: [[0; 6]; MAX_HANDLE_MULTICAST], n: 0 };

    /// The list an `OID_802_3_MULTICAST_LIST` set carries: 6 bytes per
    /// address, each a group address (its first byte's low bit set), at
    /// most `MAX_HANDLE_MULTICAST` once repeats are dropped. `None` when
    /// the data is not that.
    pub fn parse(data: &[u8]) -> Option<Self> {
        if data.len() % 6 != 0 {
            return None;
        }
        let mut l = Self::EMPTY;
        for a in data.chunks_exact(6) {
            let a: [u8; 6] = a.try_into().ok()?;
            if a[0] & 1 == 0 {
                return None;
            }
            if l.as_slice().contains(&a) {
                continue;
            }
            if l.n == MAX_HANDLE_MULTICAST {
                return None;
            }
            l.addrs[l.n] = a;
            l.n += 1;
        }
        Some(l)
    }

    pub fn as_slice(&self) -> &[[u8; 6]] {
        &self.addrs[..self.n]
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether a frame whose destination starts `dst` is for one of the
    /// groups (false for fewer than 6 bytes).
    pub fn contains(&self, dst: &[u8]) -> bool {
        dst.len() >= 6 && self.as_slice().iter().any(|a| a[..] == dst[..6])
    }
}

/// Adds the addresses of `l` that `out` (6 bytes each) does not have yet.
pub fn add_to_union(out: &mut Vec<u8>, l: &MulticastList) {
    for a in l.as_slice() {
        if !out.chunks_exact(6).any(|c| c == a) {
            out.extend_from_slice(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G1: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 1];
    const G2: [u8; 6] = [0x33, 0x33, 0, 0, 0, 2];

    #[test]
    fn parses_group_addresses_and_drops_repeats() {
        let l = MulticastList::parse(&[G1, G2, G1].concat()).unwrap();
        assert_eq!(l.as_slice(), &[G1, G2]);
        assert!(MulticastList::parse(&[]).unwrap().is_empty());
        // A unicast address, a partial address, one too many.
        assert_eq!(MulticastList::parse(&[G1, [2, 0, 0, 0, 0, 1]].concat()), None);
        assert_eq!(MulticastList::parse(&G1[..5]), None);
        let many: Vec<u8> = (0..=MAX_HANDLE_MULTICAST as u8).flat_map(|i| [1, 0, 0x5e, 0, 0, i]).collect();
        assert_eq!(MulticastList::parse(&many), None);
        assert_eq!(MulticastList::parse(&many[6..]).unwrap().as_slice().len(), MAX_HANDLE_MULTICAST);
    }

    #[test]
    fn a_list_contains_its_groups_only() {
        let l = MulticastList::parse(&[G1, G2].concat()).unwrap();
        // A frame's start: the destination, then more.
        assert!(l.contains(&[&G1[..], &[0xaa; 8]].concat()));
        assert!(l.contains(&G2));
        assert!(!l.contains(&[0x01, 0x00, 0x5e, 0, 0, 3]));
        assert!(!l.contains(&G1[..5]), "fewer than 6 bytes");
        assert!(!MulticastList::EMPTY.contains(&G1));
    }

    #[test]
    fn the_union_has_each_address_once() {
        let a = MulticastList::parse(&[G1, G2].concat()).unwrap();
        let b = MulticastList::parse(&G2).unwrap();
        let mut u = Vec::new();
        add_to_union(&mut u, &a);
        add_to_union(&mut u, &b);
        assert_eq!(u, [G1, G2].concat());
    }
}
