//! 802.1Q tags: where the tag of a frame to send goes, and what the record
//! of a received frame says about its tag.
//!
//! NDIS carries a tag beside the frame, in the NBL's
//! `Ieee8021QNetBufferListInfo`, and only a miniport that advertises
//! 802.1Q (`NDIS_MAC_OPTION_8021Q_VLAN`, and `NDIS_MAC_OPTION_8021P_PRIORITY`
//! for the priority) puts it on the wire; any other ignores it. The info is
//! a number whose 0 means "no tag", so a TCI of 0 cannot travel in it.
//! Whatever cannot go in the info goes in the frame: the driver writes the
//! tag after the two MAC addresses.

use rawnic_proto::{TPID_8021Q, VLAN_TAG, frame_flags, inline_tci};

/// What the adapter does with 802.1Q tags in hardware (its MAC options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offload {
    /// `NDIS_MAC_OPTION_8021Q_VLAN`: it inserts and strips tags.
    pub vlan: bool,
    /// `NDIS_MAC_OPTION_8021P_PRIORITY`: it honours the priority bits.
    pub priority: bool,
}

/// Where the tag of a frame to send goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPlacement {
    /// No tag.
    None,
    /// In the NBL's 802.1Q info; the adapter inserts it.
    Info(u16),
    /// In the frame: TPID 0x8100 and the TCI after the MAC addresses.
    Inline(u16),
}

impl TagPlacement {
    /// Where the tag `tci` of a frame goes on an adapter that does
    /// `offload`: in the NBL's info only when the adapter will put all of
    /// it on the wire (802.1Q, the priority option too when a priority is
    /// set) and the info can say it (not TCI 0); else inline.
    pub fn for_send(offload: Offload, tci: Option<u16>) -> TagPlacement {
        let Some(t) = tci else { return TagPlacement::None };
        let priority = t >> 13 != 0;
        if t != 0 && offload.vlan && (!priority || offload.priority) {
            TagPlacement::Info(t)
        } else {
            TagPlacement::Inline(t)
        }
    }

    /// Bytes the driver adds to the frame.
    pub fn added_len(self) -> usize {
        match self {
            TagPlacement::Inline(_) => rawnic_proto::VLAN_TAG,
            _ => 0,
        }
    }

    /// Whether `frame`, its tag placed so, goes out no longer than a
    /// binding whose longest untagged frame is `max_frame` (MTU + 14) may
    /// send: 4 bytes more when it goes out with a tag inline (the driver's,
    /// or the caller's own when no other is asked for). What
    /// `rawnic_proto::max_send_len` lets a request through with, checked
    /// again where the send is made.
    #[inline]
    pub fn fits(self, frame: &[u8], max_frame: usize) -> bool {
        let wire = frame.len() + self.added_len();
        // Most frames: no tag to look for.
        wire <= max_frame
            || (wire <= max_frame + VLAN_TAG
                && match self {
                    TagPlacement::Inline(_) => true,
                    TagPlacement::None => inline_tci(frame).is_some(),
                    TagPlacement::Info(_) => false,
                })
    }
}

/// The 4 bytes of an 802.1Q tag of TCI `tci`: TPID 0x8100, then the TCI.
pub fn tag_bytes(tci: u16) -> [u8; 4] {
    let [p0, p1] = TPID_8021Q.to_be_bytes();
    let [t0, t1] = tci.to_be_bytes();
    [p0, p1, t0, t1]
}

/// Copies the start of `frame` as it goes out into `out`, as many bytes as
/// fit: with `inline`'s tag (TPID 0x8100, then the TCI) written in after
/// the two MAC addresses, when given. Returns the bytes copied. A frame
/// that gets a tag has its 12 address bytes (a frame to send has at least
/// 14).
pub fn copy_tagged(frame: &[u8], inline: Option<u16>, out: &mut [u8]) -> usize {
    let Some(t) = inline else {
        let n = out.len().min(frame.len());
        out[..n].copy_from_slice(&frame[..n]);
        return n;
    };
    let tag = tag_bytes(t);
    let macs = frame.len().min(12);
    let n = out.len().min(frame.len() + VLAN_TAG);
    let a = n.min(macs);
    out[..a].copy_from_slice(&frame[..a]);
    if n > macs {
        let b = (n - macs).min(VLAN_TAG);
        out[macs..macs + b].copy_from_slice(&tag[..b]);
    }
    if n > macs + VLAN_TAG {
        out[macs + VLAN_TAG..n].copy_from_slice(&frame[macs..n - VLAN_TAG]);
    }
    n
}

/// The record flags (`frame_flags::VLAN`, `TAGGED`) and TCI of a received
/// frame. `stripped` is the TCI NDIS gave in the NBL's 802.1Q info (0 when
/// the info is 0, which NDIS uses for "no tag"); `header` is the start of
/// the frame as indicated. A stripped tag wins; else a tag inline (TPID
/// 0x8100 after the MAC addresses) is reported with its TCI, even 0.
pub fn rx_tag(stripped: u16, header: &[u8]) -> (u16, u16) {
    if stripped != 0 {
        return (frame_flags::VLAN | frame_flags::TAGGED, stripped);
    }
    match inline_tci(header) {
        Some(t) => (frame_flags::TAGGED, t),
        None => (0, 0),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_frame_fits_as_the_request_checks_allowed_it() {
        let max = 1514;
        let plain = [0u8; 1514];
        let mut tagged = [0u8; 1518];
        tagged[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
        assert!(TagPlacement::None.fits(&plain, max));
        assert!(!TagPlacement::None.fits(&plain[..1514], max - 1));
        assert!(TagPlacement::None.fits(&tagged, max), "a tag of its own: 4 more");
        assert!(!TagPlacement::None.fits(&tagged, max - 1));
        assert!(!TagPlacement::None.fits(&[0u8; 1518], max), "4 more without a tag");
        assert!(TagPlacement::Inline(5).fits(&plain, max), "the driver's tag: 4 more");
        assert!(!TagPlacement::Inline(5).fits(&tagged, max), "another tag: its own 4 do not count");
        assert!(TagPlacement::Info(5).fits(&plain, max), "the NIC's tag is not in the frame");
        assert!(!TagPlacement::Info(5).fits(&tagged, max));
        // As a request is checked: max_send_len's bound, the same answers.
        for (f, tci) in [(&plain[..], None), (&tagged[..], None), (&plain[..], Some(5u16)), (&tagged[..], Some(5))] {
            let ok = f.len() <= rawnic_proto::max_send_len(max, f, tci);
            let p = if tci.is_some() { TagPlacement::Inline(5) } else { TagPlacement::None };
            assert_eq!(p.fits(f, max), ok, "{} bytes, tci {tci:?}", f.len());
        }
    }

    use super::*;

    const ALL: Offload = Offload { vlan: true, priority: true };
    const NONE: Offload = Offload { vlan: false, priority: false };

    #[test]
    fn the_info_carries_a_tag_only_when_the_adapter_puts_it_on_the_wire() {
        assert_eq!(TagPlacement::for_send(ALL, None), TagPlacement::None);
        assert_eq!(TagPlacement::for_send(NONE, None), TagPlacement::None);
        assert_eq!(TagPlacement::for_send(ALL, Some(0xa064)), TagPlacement::Info(0xa064));
        assert_eq!(TagPlacement::for_send(ALL, Some(0x1000)), TagPlacement::Info(0x1000), "DEI alone");
        assert_eq!(TagPlacement::for_send(NONE, Some(0xa064)), TagPlacement::Inline(0xa064));
        // TCI 0 is "no tag" in the info.
        assert_eq!(TagPlacement::for_send(ALL, Some(0)), TagPlacement::Inline(0));
        // 802.1Q without the priority option: a priority goes inline.
        let vlan_only = Offload { vlan: true, priority: false };
        assert_eq!(TagPlacement::for_send(vlan_only, Some(100)), TagPlacement::Info(100));
        assert_eq!(TagPlacement::for_send(vlan_only, Some(0x2064)), TagPlacement::Inline(0x2064));
        // Priority alone is not 802.1Q.
        let prio_only = Offload { vlan: false, priority: true };
        assert_eq!(TagPlacement::for_send(prio_only, Some(0x2000)), TagPlacement::Inline(0x2000));
        assert_eq!(TagPlacement::Inline(0).added_len(), 4);
        assert_eq!(TagPlacement::Info(5).added_len(), 0);
        assert_eq!(TagPlacement::None.added_len(), 0);
    }

    #[test]
    fn a_tag_is_written_after_the_mac_addresses_as_far_as_the_output_reaches() {
        let frame: [u8; 20] = core::array::from_fn(|i| i as u8);
        let mut out = [0xffu8; 32];
        assert_eq!(copy_tagged(&frame, None, &mut out), 20);
        assert_eq!(&out[..20], &frame[..]);
        assert_eq!(out[20], 0xff);
        let mut out = [0xffu8; 32];
        assert_eq!(copy_tagged(&frame, Some(0xe007), &mut out), 24);
        assert_eq!(&out[..12], &frame[..12]);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0xe0, 0x07]);
        assert_eq!(&out[16..24], &frame[12..]);
        assert_eq!(out[24], 0xff);
        // Cut short anywhere: a prefix of the whole.
        let whole = out;
        for cut in 0..=24 {
            let mut part = [0xffu8; 24];
            assert_eq!(copy_tagged(&frame, Some(0xe007), &mut part[..cut]), cut);
            assert_eq!(&part[..cut], &whole[..cut], "cut at {cut}");
            assert!(part[cut..].iter().all(|&b| b == 0xff), "cut at {cut}");
        }
        // TCI 0 is a tag like any other.
        let mut out = [0xffu8; 24];
        copy_tagged(&frame, Some(0), &mut out);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0, 0]);
    }

    #[test]
    fn a_record_tells_a_tag_of_tci_0_from_none() {
        let mut h = [0u8; 18];
        h[12..14].copy_from_slice(&[0x88, 0xb5]);
        assert_eq!(rx_tag(0, &h), (0, 0), "untagged");
        assert_eq!(rx_tag(0x2005, &h), (frame_flags::VLAN | frame_flags::TAGGED, 0x2005), "stripped");
        h[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x00]);
        assert_eq!(rx_tag(0, &h), (frame_flags::TAGGED, 0), "inline, TCI 0");
        h[14..16].copy_from_slice(&[0xe0, 0x07]);
        assert_eq!(rx_tag(0, &h), (frame_flags::TAGGED, 0xe007), "inline");
        assert_eq!(rx_tag(9, &h), (frame_flags::VLAN | frame_flags::TAGGED, 9), "stripped outer, inline inner");
        assert_eq!(rx_tag(0, &h[..15]), (0, 0), "too short for a TCI");
    }
}
