//! What depends on the NDIS version a protocol registered with: the
//! revision of the structures it passes NDIS, and what NDIS tells it.
//!
//! From the documentation ("Version Information Requirements for NDIS
//! Drivers" and "... for NDIS"): a driver must use the revision of a
//! structure that goes with its registered NDIS version, and NDIS fails
//! the call of a driver that passes an older revision than that version
//! has (its example: an NDIS 6.30 driver passing `Xxx_REVISION_1` where
//! 6.30 has `Xxx_REVISION_2`). A newer revision than the registered
//! version has is one the driver's headers do not define for it, and one
//! an older NDIS does not know: ndisim refuses both, so a driver that
//! passes here passes on every NDIS from its registered version on.

use super::*;

/// `NDIS_PAUSE_NDIS_INTERNAL`: the reason NDIS gives protocols.
pub(crate) const NDIS_PAUSE_NDIS_INTERNAL: u32 = 0x1;
/// `NDIS_PAUSE_LOW_POWER`: the pause after a transition to low power.
pub(crate) const NDIS_PAUSE_LOW_POWER: u32 = 0x2;

/// The `NDIS_PROTOCOL_DRIVER_CHARACTERISTICS` revision of an NDIS 6
/// version: 2 from NDIS 6.1 (`DirectOidRequestCompleteHandler`), 1 for
/// 6.0 (ns-ndis-_ndis_protocol_driver_characteristics).
pub(crate) fn characteristics_revision(minor: u8) -> u8 {
    if minor >= 1 { 2 } else { 1 }
}

/// The `NDIS_OID_REQUEST` revision of an NDIS 6 version: 2 from NDIS 6.50
/// (`SwitchId`, `VPortId`, `Flags`), 1 before (ns-oidrequest-ndis_oid_request).
pub(crate) fn oid_request_revision(minor: u8) -> u8 {
    if minor >= 50 { NDIS_OID_REQUEST_REVISION_2 } else { NDIS_OID_REQUEST_REVISION_1 }
}

/// `NDIS_SIZEOF_OID_REQUEST_REVISION_n`.
pub(crate) fn oid_request_size(revision: u8) -> u16 {
    if revision >= NDIS_OID_REQUEST_REVISION_2 {
        NDIS_SIZEOF_OID_REQUEST_REVISION_2
    } else {
        NDIS_SIZEOF_OID_REQUEST_REVISION_1
    }
}

/// Why NDIS fails an `NDIS_OID_REQUEST` header from a protocol of NDIS
/// 6.`minor`, if it does.
pub(crate) fn oid_request_header_wrong(h: &NDIS_OBJECT_HEADER, minor: u8) -> Option<String> {
    let want = oid_request_revision(minor);
    if h.Type != NDIS_OBJECT_TYPE_OID_REQUEST {
        return Some(format!("Header.Type {:#x} is not NDIS_OBJECT_TYPE_OID_REQUEST", h.Type));
    }
    if h.Revision != want {
        return Some(format!(
            "Header.Revision {}: a protocol registered as NDIS 6.{minor} passes NDIS_OID_REQUEST_REVISION_{want} \
             (revision 2 is NDIS 6.50's; NDIS fails a revision older than the registered version's, and an older \
             NDIS does not know a newer one)",
            h.Revision
        ));
    }
    let need = oid_request_size(want);
    if h.Size < need {
        return Some(format!("Header.Size {:#x} is smaller than revision {want}'s {need:#x}", h.Size));
    }
    None
}

/// The `PauseReason` NDIS gives a protocol of NDIS 6.`minor` for a pause
/// of `reason`: from NDIS 6.40 the member is deprecated and always
/// `NDIS_PAUSE_NDIS_INTERNAL` (ns-ndis-_ndis_protocol_pause_parameters),
/// so a driver of 6.40 or later never learns from it that the pause is
/// for low power.
pub(crate) fn pause_reason_for(minor: u8, reason: u32) -> u32 {
    if minor >= 40 { NDIS_PAUSE_NDIS_INTERNAL } else { reason }
}

/// The `NDIS_BIND_PARAMETERS` revision and size an NDIS of version
/// (6, `minor`) gives (ns-ndis-_ndis_bind_parameters): revision 4 from
/// NDIS 6.30 (the last; through `NicSwitchArray`), 3 for 6.20 (through
/// `NicSwitchCapabilities`), 2 for 6.1 (through `HDSplitCurrentConfig`), 1
/// for 6.0 (through `BoundAdapterName`). It is the running NDIS's
/// structure, whatever the protocol registered as.
pub(crate) fn bind_parameters_revision(minor: u8) -> (u8, u16) {
    use std::mem::offset_of;
    type P = NDIS_BIND_PARAMETERS;
    let through = |off: usize| (off + 8) as u16;
    match minor {
        30.. => (4, through(offset_of!(P, NicSwitchArray))),
        20..=29 => (3, through(offset_of!(P, NicSwitchCapabilities))),
        1..=19 => (2, through(offset_of!(P, HDSplitCurrentConfig))),
        0 => (1, through(offset_of!(P, BoundAdapterName))),
    }
}

/// What NDIS's structures hold past the `Header.Size` it gave: garbage
/// (the next allocation's bytes on Windows), here a non-canonical pattern
/// that faults when a driver follows it as a pointer.
pub(crate) const PAST_SIZE: u8 = 0xD1;

/// Fills the bytes of `*p` from `size` on with `PAST_SIZE`.
///
/// # Safety
/// `p` is valid for writes of `size_of::<T>()` bytes, and `T` is plain
/// data for which any bytes are a value.
pub(crate) unsafe fn poison_past<T>(p: *mut T, size: u16) {
    let whole = std::mem::size_of::<T>();
    let from = (size as usize).min(whole);
    // SAFETY: per the caller.
    unsafe { std::ptr::write_bytes(p.cast::<u8>().add(from), PAST_SIZE, whole - from) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_follow_the_registered_version() {
        assert_eq!([0, 1, 20, 30, 89].map(characteristics_revision), [1, 2, 2, 2, 2]);
        assert_eq!([0, 30, 40, 50, 89].map(oid_request_revision), [1, 1, 1, 2, 2]);
        assert_eq!(NDIS_SIZEOF_OID_REQUEST_REVISION_2 as usize, std::mem::size_of::<NDIS_OID_REQUEST>());
        let h =
            |revision, size| NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_OID_REQUEST, Revision: revision, Size: size };
        assert!(oid_request_header_wrong(&h(1, 0xEC), 30).is_none());
        assert!(oid_request_header_wrong(&h(2, 0xF8), 30).is_some());
        assert!(oid_request_header_wrong(&h(1, 0xEC), 89).is_some());
        assert!(oid_request_header_wrong(&h(2, 0xEC), 89).is_some());
        assert!(oid_request_header_wrong(&h(2, 0xF8), 89).is_none());
        assert_eq!(pause_reason_for(30, NDIS_PAUSE_LOW_POWER), NDIS_PAUSE_LOW_POWER);
        assert_eq!(pause_reason_for(40, NDIS_PAUSE_LOW_POWER), NDIS_PAUSE_NDIS_INTERNAL);
    }

    #[test]
    fn bind_parameters_follow_the_running_ndis() {
        assert_eq!(bind_parameters_revision(89), (4, std::mem::size_of::<NDIS_BIND_PARAMETERS>() as u16));
        assert_eq!(bind_parameters_revision(30).0, 4);
        let (r3, s3) = bind_parameters_revision(20);
        let (r2, s2) = bind_parameters_revision(1);
        let (r1, s1) = bind_parameters_revision(0);
        assert_eq!((r3, r2, r1), (3, 2, 1));
        assert!(s1 < s2 && s2 < s3 && s3 < bind_parameters_revision(30).1);
    }

    #[test]
    fn a_restart_attribute_holds_garbage_past_its_data_length() {
        // Revision-1 general attributes: 0x54 bytes; the 4 bytes where
        // revision 2 has MaxLookaheadSizeAccessed, and the rest of the
        // element, are not zeros.
        let v = super::super::pnp::aligned_attr(OID_GEN_MINIPORT_RESTART_ATTRIBUTES, &[7u8; 0x54]);
        // SAFETY: plain bytes of the vector.
        let b = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 16) };
        assert_eq!(u32::from_ne_bytes(b[12..16].try_into().unwrap()), 0x54);
        assert!(b[16..16 + 0x54].iter().all(|&x| x == 7));
        assert!(b[16 + 0x54..].iter().all(|&x| x == super::super::pnp::ATTR_SLACK), "{:?}", &b[16 + 0x54..]);
        assert_eq!(b.len(), 112);
    }
}
