//! 802.1Q tags on the wire: how a frame carries one inline, and how long a
//! frame to send may be with it.

/// The 802.1Q tag protocol identifier (the EtherType of a tagged frame).
pub const TPID_8021Q: u16 = 0x8100;
/// Bytes an 802.1Q tag adds to a frame (TPID and TCI).
pub const VLAN_TAG: usize = 4;

/// The TCI of the 802.1Q tag `frame` carries inline: TPID 0x8100 right
/// after the two MAC addresses (and room for the TCI). `None` for an
/// untagged frame.
#[inline]
pub fn inline_tci(frame: &[u8]) -> Option<u16> {
    match frame.get(12..16) {
        Some(t) if u16::from_be_bytes([t[0], t[1]]) == TPID_8021Q => Some(u16::from_be_bytes([t[2], t[3]])),
        _ => None,
    }
}

/// The longest `data` a frame to send may have on a binding whose longest
/// untagged frame is `max_frame` (its MTU + 14): 4 bytes more when the
/// frame carries its 802.1Q tag inline and asks for no other (`tci` is
/// `None`). A frame sent with a `tci` gets the tag added (by the NIC or by
/// the driver), so its data stays within `max_frame`.
#[inline]
pub fn max_send_len(max_frame: usize, data: &[u8], tci: Option<u16>) -> usize {
    if tci.is_none() && inline_tci(data).is_some() { max_frame + VLAN_TAG } else { max_frame }
}
