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
    let (one_type, one_vlan, looped) = shared(frames, o, first_nbl, sizes);
    // The draws in the order the flags are listed, each only where its
    // flag would be true.
    let mut flags = 0;
    if r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_PERFECT_FILTERED;
    }
    if one_type && r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE;
    }
    if one_vlan && r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_SINGLE_VLAN;
    }
    if !looped && r.chance(500) {
        flags |= NDIS_RECEIVE_FLAGS_SINGLE_QUEUE;
    }
    flags
}

/// What `info_flags` asks of an indication: whether its frames share one
/// EtherType pair (and there is one), whether they share one VLAN, and
/// whether any of its NBLs was looped back.
fn shared(frames: &[&[u8]], o: &InjectOpts, first_nbl: usize, sizes: &[usize]) -> (bool, bool, bool) {
    // One pass over the frames, NBL by NBL: whether they share the first
    // one's EtherTypes (a frame without a whole header shares none), and
    // each frame's VLAN (its NBL's 802.1Q info, else an inline tag's, else
    // none) the first one's; and whether any NBL was looped back.
    let mut same = Same::default();
    let mut looped = false;
    let mut at = 0;
    if o.tcis.is_empty() && o.loopbacks.is_empty() {
        // Every NBL's info and loopback mark the same: no per-NBL look-up.
        let info = o.tci.map(|t| t & 0xFFF);
        looped = o.loopback && !sizes.is_empty();
        at = sizes.iter().sum::<usize>().min(frames.len());
        for f in &frames[..at] {
            same.see(f, info);
        }
    } else {
        for (j, &n) in sizes.iter().enumerate() {
            let info = o.tci_of(first_nbl + j).map(|t| t & 0xFFF);
            looped |= o.loopback_of(first_nbl + j);
            let end = (at + n).min(frames.len());
            for f in &frames[at.min(end)..end] {
                same.see(f, info);
            }
            at = end;
        }
    }
    // (Frames past the NBLs' sizes, if ever: their VLAN is their inline
    // tag's.)
    for f in &frames[at.min(frames.len())..] {
        same.see(f, None);
    }
    (same.seen && same.one_type, same.one_vlan, looped)
}

/// What the frames seen so far share with the first.
struct Same {
    seen: bool,
    types: Option<(u16, u16)>,
    one_type: bool,
    vid: u16,
    one_vlan: bool,
}

impl Default for Same {
    fn default() -> Self {
        Same { seen: false, types: None, one_type: true, vid: 0, one_vlan: true }
    }
}

impl Same {
    /// Frame `f`, its NBL's VLAN ID `info`.
    #[inline]
    fn see(&mut self, f: &[u8], info: Option<u16>) {
        let t = ethertypes(f);
        let v = match info {
            Some(v) => v,
            None => vid_of(f, t).unwrap_or(0),
        };
        if self.seen {
            self.one_type &= t == self.types;
            self.one_vlan &= v == self.vid;
        } else {
            *self = Same { seen: true, types: t, one_type: t.is_some(), vid: v, one_vlan: true };
        }
    }
}

/// `inline_vid` of a frame whose `ethertypes` are `t`.
#[inline]
fn vid_of(f: &[u8], t: Option<(u16, u16)>) -> Option<u16> {
    match t? {
        (0x8100 | 0x88A8, _) => f.get(14..16).map(|t| u16::from_be_bytes([t[0], t[1]]) & 0xFFF),
        _ => None,
    }
}

/// A frame's EtherType and the one after its inline 802.1Q/802.1ad tag
/// (the same when it has none); `None` for a frame without a whole header.
#[inline]
fn ethertypes(f: &[u8]) -> Option<(u16, u16)> {
    if let Some(h) = f.first_chunk::<18>() {
        // (A whole tagged header: no look-up can fail.)
        let outer = u16::from_be_bytes([h[12], h[13]]);
        let inner = if matches!(outer, 0x8100 | 0x88A8) { u16::from_be_bytes([h[16], h[17]]) } else { outer };
        return Some((outer, inner));
    }
    let at = |i: usize| f.get(i..i + 2).map(|t| u16::from_be_bytes([t[0], t[1]]));
    let outer = at(12)?;
    let inner = if matches!(outer, 0x8100 | 0x88A8) { at(16)? } else { outer };
    Some((outer, inner))
}

/// The VLAN ID of a frame's inline 802.1Q/802.1ad tag, if it has one.
#[cfg(test)]
fn inline_vid(f: &[u8]) -> Option<u16> {
    vid_of(f, ethertypes(f))
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

    /// `shared` as `info_flags` first computed it, one iterator chain per
    /// flag.
    fn shared_by_chains(frames: &[&[u8]], o: &InjectOpts, first_nbl: usize, sizes: &[usize]) -> (bool, bool, bool) {
        let one_type =
            frames.first().and_then(|f| ethertypes(f)).is_some_and(|t| frames.iter().all(|f| ethertypes(f) == Some(t)));
        let mut vlans = sizes.iter().enumerate().flat_map(|(j, &n)| {
            let info = o.tci_of(first_nbl + j).map(|t| t & 0xFFF);
            std::iter::repeat_n(info, n)
        });
        let mut vids = frames.iter().map(|f| vlans.next().flatten().or_else(|| inline_vid(f)).unwrap_or(0));
        let first = vids.next();
        let one_vlan = vids.all(|v| Some(v) == first);
        let looped = (0..sizes.len()).any(|j| o.loopback_of(first_nbl + j));
        (one_type, one_vlan, looped)
    }

    #[test]
    fn one_pass_finds_what_the_chains_found() {
        let kinds = [
            frame(&[0x0800]),
            frame(&[0x86DD]),
            frame(&[0x8100, 0x2005, 0x0800]),
            frame(&[0x8100, 0x0007, 0x0800]),
            frame(&[0x88A8, 0x0005, 0x86DD]),
            vec![0u8; 13],
            vec![0u8; 16],
            frame(&[0x0800])[..14].to_vec(),
            frame(&[0x8100, 0x2005, 0x0800])[..15].to_vec(),
            frame(&[0x8100, 0x2005, 0x0800])[..16].to_vec(),
            frame(&[0x8100, 0x2005, 0x0800])[..17].to_vec(),
            frame(&[0x8100, 0x2005, 0x0800])[..18].to_vec(),
        ];
        // The look-ups as first written, without the whole-header path.
        let slow = |f: &[u8]| {
            let at = |i: usize| f.get(i..i + 2).map(|t| u16::from_be_bytes([t[0], t[1]]));
            let outer = at(12)?;
            let inner = if matches!(outer, 0x8100 | 0x88A8) { at(16)? } else { outer };
            Some((outer, inner))
        };
        for f in &kinds {
            assert_eq!(ethertypes(f), slow(f), "{f:?}");
        }
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m) as usize
        };
        for _ in 0..4000 {
            let n = next(7);
            let frames: Vec<&[u8]> = (0..n).map(|_| &kinds[next(kinds.len() as u64)][..]).collect();
            let mut sizes = Vec::new();
            let mut left = n + if next(4) == 0 { next(3) } else { 0 };
            while left > 0 {
                let s = 1 + next(3).min(left - 1);
                sizes.push(s);
                left -= s;
            }
            let tcis: Vec<Option<u16>> =
                (0..next(4)).map(|_| [None, Some(5), Some(0x2005), Some(7)][next(4)]).collect();
            let loopbacks: Vec<bool> = (0..next(3)).map(|_| next(2) == 1).collect();
            let o = InjectOpts { tcis, loopbacks, tci: [None, Some(5)][next(2)], ..InjectOpts::default() };
            let first_nbl = next(5);
            assert_eq!(
                shared(&frames, &o, first_nbl, &sizes),
                shared_by_chains(&frames, &o, first_nbl, &sizes),
                "{frames:?} {sizes:?} {o:?} {first_nbl}"
            );
        }
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
