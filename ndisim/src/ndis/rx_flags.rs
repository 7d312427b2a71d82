//! The informational flags of a receive indication
//! (`NDIS_RECEIVE_FLAGS_PERFECT_FILTERED`, `_SINGLE_ETHER_TYPE`,
//! `_SINGLE_VLAN`, `_SINGLE_QUEUE`): each set only where it is true of the
//! whole chain, and then only some of the time, so a receiver that
//! compares the whole flags word, or trusts a flag for more than it says,
//! is caught.

use super::{Adapter, InjectOpts};
use ndis_sys::*;

/// Informational receive flags, which a receiver must test bit by bit, not
/// compare the whole word, each set only where it is true of every NBL of
/// the chain (PROTOCOL_RECEIVE_NET_BUFFER_LISTS: "all of the
/// NET_BUFFER_LIST structures in the list"), and then on one indication
/// in two (drawn from the adapter's own count):
/// `NDIS_RECEIVE_FLAGS_PERFECT_FILTERED` (ndisim filters each binding's
/// frames exactly, loopbacks too); `NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE`
/// when the frames share one EtherType, the one after any 802.1Q or
/// 802.1ad tag inline as well as the first (so either reading of "protocol
/// type" holds); `NDIS_RECEIVE_FLAGS_SINGLE_VLAN` when they share one VLAN
/// (the VLAN ID of the NBL's 802.1Q info, or of a tag inline, or none);
/// `NDIS_RECEIVE_FLAGS_SINGLE_QUEUE` when none was looped back (ndisim's
/// NIC has one receive queue; a loopback comes from no queue).
/// `frames` are the indication's frames, `sizes` its NBLs' sizes and
/// `first_nbl` the injection's index of its first NBL.
pub(super) fn info_flags(a: &Adapter, frames: &[&[u8]], o: &InjectOpts, first_nbl: usize, sizes: &[usize]) -> u32 {
    let mut r = a.draw_rng(&a.info_draws, 0x494E_464F);
    let mut flags = 0;
    if r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_PERFECT_FILTERED;
    }
    if frames.first().and_then(|f| ethertypes(f)).is_some_and(|t| frames.iter().all(|f| ethertypes(f) == Some(t)))
        && r.chance(500)
    {
        flags |= NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE;
    }
    // Each frame's VLAN, NBL by NBL.
    let mut vlans = sizes.iter().enumerate().flat_map(|(j, &n)| {
        let info = o.tci_of(first_nbl + j).map(|t| t & 0xFFF);
        std::iter::repeat_n(info, n)
    });
    let mut vids = frames.iter().map(|f| vlans.next().flatten().or_else(|| inline_vid(f)).unwrap_or(0));
    let first = vids.next();
    if vids.all(|v| Some(v) == first) && r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_SINGLE_VLAN;
    }
    if !(0..sizes.len()).any(|j| o.loopback_of(first_nbl + j)) && r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_SINGLE_QUEUE;
    }
    flags
}

/// A frame's EtherType and the one after its inline 802.1Q/802.1ad tag
/// (the same when it has none); `None` for a frame without a whole header.
fn ethertypes(f: &[u8]) -> Option<(u16, u16)> {
    let at = |i: usize| f.get(i..i + 2).map(|t| u16::from_be_bytes([t[0], t[1]]));
    let outer = at(12)?;
    let inner = if matches!(outer, 0x8100 | 0x88A8) { at(16)? } else { outer };
    Some((outer, inner))
}

/// The VLAN ID of a frame's inline 802.1Q/802.1ad tag, if it has one.
fn inline_vid(f: &[u8]) -> Option<u16> {
    match ethertypes(f)? {
        (0x8100 | 0x88A8, _) => f.get(14..16).map(|t| u16::from_be_bytes([t[0], t[1]]) & 0xFFF),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(types: &[u16]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in types {
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.resize(60, 0);
        f
    }

    #[test]
    fn ethertypes_and_vlans_look_past_an_inline_tag() {
        assert_eq!(ethertypes(&frame(&[0x0800])), Some((0x0800, 0x0800)));
        assert_eq!(ethertypes(&frame(&[0x8100, 0x2005, 0x86DD])), Some((0x8100, 0x86DD)));
        assert_eq!(ethertypes(&[0u8; 13]), None);
        assert_eq!(inline_vid(&frame(&[0x8100, 0x2005, 0x86DD])), Some(5));
        assert_eq!(inline_vid(&frame(&[0x88A8, 0x0FFF, 0x0800])), Some(0xFFF));
        assert_eq!(inline_vid(&frame(&[0x0800])), None);
    }
}
