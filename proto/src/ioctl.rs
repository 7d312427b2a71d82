//! Device type and IOCTL codes (`CTL_CODE`).

/// rawnic's device type, in the range Windows leaves to vendors.
pub const FILE_DEVICE_RAWNIC: u32 = 0x8A4E;
// Device types below 0x8000 are reserved for Microsoft.
const _: () = assert!(FILE_DEVICE_RAWNIC >= 0x8000);

pub const METHOD_BUFFERED: u32 = 0;
pub const METHOD_IN_DIRECT: u32 = 1;
pub const METHOD_OUT_DIRECT: u32 = 2;
pub const METHOD_NEITHER: u32 = 3;
pub const FILE_ANY_ACCESS: u32 = 0;
pub const FILE_READ_ACCESS: u32 = 1;
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The method bits of an IOCTL code.
pub const fn method_of(code: u32) -> u32 {
    code & 3
}

/// The access bits of an IOCTL code.
pub const fn access_of(code: u32) -> u32 {
    (code >> 14) & 3
}

const fn rawnic(function: u32, access: u32) -> u32 {
    ctl_code(FILE_DEVICE_RAWNIC, function, METHOD_BUFFERED, access)
}

/// Driver and wire-format versions. Out: `VersionReply`.
pub const IOCTL_RAWNIC_GET_VERSION: u32 = rawnic(0x800, FILE_ANY_ACCESS);
/// All bindings. Out: `ListReply` header and `BindingEntry` records.
pub const IOCTL_RAWNIC_LIST_BINDINGS: u32 = rawnic(0x801, FILE_READ_ACCESS);
/// Pends until NDIS has reported that binds are complete. Out: `BindsCompleteReply`.
/// Refused (INVALID_DEVICE_STATE), as every request is, when it reaches
/// the driver after its handle's cleanup (another thread's request in
/// flight as the handle closes), binds complete or not.
pub const IOCTL_RAWNIC_WAIT_BINDS_COMPLETE: u32 = rawnic(0x802, FILE_READ_ACCESS);
/// Opens a binding on this handle: it receives frames and sets the
/// adapter's packet filter. In: `OpenRequest`. Out: `OpenReply`.
pub const IOCTL_RAWNIC_OPEN: u32 = rawnic(0x803, FILE_READ_ACCESS | FILE_WRITE_ACCESS);
/// Sends many frames. In: `SendBatch`. Out: `SendReply`.
pub const IOCTL_RAWNIC_SEND_BATCH: u32 = rawnic(0x804, FILE_WRITE_ACCESS);
/// Queries an OID on the handle's binding. In: `OidRequest`. Out: `OidReply`.
pub const IOCTL_RAWNIC_QUERY_OID: u32 = rawnic(0x805, FILE_READ_ACCESS);
/// Sets an allow-listed OID. In: `OidRequest`. Out: `OidReply`.
pub const IOCTL_RAWNIC_SET_OID: u32 = rawnic(0x806, FILE_WRITE_ACCESS);
/// Per-handle and per-binding counters, and the handle's packet filter as
/// the adapter gives it now (`stats_flags::FILTER_PENDING` when it owes
/// bits for a passing reason). Out: `StatsReply`.
pub const IOCTL_RAWNIC_GET_STATS: u32 = rawnic(0x807, FILE_READ_ACCESS);
/// Pends until an event (link change, pause, restart, unbind, new
/// binding). Out: `EventRecord`. A binding's first event is `BOUND` (a
/// link change while it was being bound is in the state LIST_BINDINGS
/// gives then), and `UNBOUND` its last.
pub const IOCTL_RAWNIC_WAIT_EVENT: u32 = rawnic(0x808, FILE_READ_ACCESS);

/// Attaches a UMEM and its rings (`ring` module) to the handle's binding.
/// In: `RingSetup`. Out: the UMEM, `RingLayout::total` bytes, locked for
/// as long as the request stays pending (until detached or cancelled).
pub const IOCTL_RAWNIC_RING_ATTACH: u32 =
    ctl_code(FILE_DEVICE_RAWNIC, 0x809, METHOD_OUT_DIRECT, FILE_READ_ACCESS | FILE_WRITE_ACCESS);
/// Detaches the handle's UMEM: ring activity stops, and the attach request
/// completes once every send of its frames is back. In: 4-byte header.
/// With no UMEM attached, refused INVALID_DEVICE_STATE, or DEVICE_REMOVED
/// once the handle's binding is gone (whose UMEM, if it has one, still
/// detaches).
/// The access of the attach: a handle opened (or duplicated) for reading
/// alone cannot stop its owner's rings.
pub const IOCTL_RAWNIC_RING_DETACH: u32 = rawnic(0x80A, FILE_READ_ACCESS | FILE_WRITE_ACCESS);
/// Pends until the rx or completion ring has entries. In:
/// `RingWaitRequest`. Out: `RingReply`. Ends CANCELLED when cancelled,
/// when its handle closes or when the rings detach (RING_DETACH, or the
/// attach cancelled); DEVICE_REMOVED once the binding is gone (with or
/// without a UMEM attached; what its rings hold is still told first).
pub const IOCTL_RAWNIC_RING_WAIT: u32 = rawnic(0x80B, FILE_READ_ACCESS);
/// Sends what the tx ring holds. In: 4-byte header. Out: `RingReply`.
pub const IOCTL_RAWNIC_RING_KICK: u32 = rawnic(0x80C, FILE_WRITE_ACCESS);
/// Sets the handle's capture program (classic BPF), or removes it (no
/// instructions): frames indicated after it completes that the handle's
/// other filters take are taken only if the program returns more than 0,
/// cut to what it returns. It may come before the OPEN, so that no frame
/// reaches the handle unfiltered. In: `ProgramRequest`. Out: nothing.
pub const IOCTL_RAWNIC_SET_PROGRAM: u32 = rawnic(0x80D, FILE_READ_ACCESS);

/// Every IOCTL with its name.
pub const IOCTLS: &[(u32, &str)] = &[
    (IOCTL_RAWNIC_GET_VERSION, "GET_VERSION"),
    (IOCTL_RAWNIC_LIST_BINDINGS, "LIST_BINDINGS"),
    (IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, "WAIT_BINDS_COMPLETE"),
    (IOCTL_RAWNIC_OPEN, "OPEN"),
    (IOCTL_RAWNIC_SEND_BATCH, "SEND_BATCH"),
    (IOCTL_RAWNIC_QUERY_OID, "QUERY_OID"),
    (IOCTL_RAWNIC_SET_OID, "SET_OID"),
    (IOCTL_RAWNIC_GET_STATS, "GET_STATS"),
    (IOCTL_RAWNIC_WAIT_EVENT, "WAIT_EVENT"),
    (IOCTL_RAWNIC_RING_ATTACH, "RING_ATTACH"),
    (IOCTL_RAWNIC_RING_DETACH, "RING_DETACH"),
    (IOCTL_RAWNIC_RING_WAIT, "RING_WAIT"),
    (IOCTL_RAWNIC_RING_KICK, "RING_KICK"),
    (IOCTL_RAWNIC_SET_PROGRAM, "SET_PROGRAM"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_buffered_and_in_the_vendor_range() {
        for (i, (a, _)) in IOCTLS.iter().enumerate() {
            // All but the attach, whose output buffer is the UMEM.
            let method = if *a == IOCTL_RAWNIC_RING_ATTACH { METHOD_OUT_DIRECT } else { METHOD_BUFFERED };
            assert_eq!(method_of(*a), method);
            assert_eq!(a >> 16, FILE_DEVICE_RAWNIC);
            for (b, _) in &IOCTLS[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // The I/O manager checks these against the handle's granted access:
        // only the version may be asked with no access at all.
        assert_eq!(access_of(IOCTL_RAWNIC_GET_VERSION), FILE_ANY_ACCESS);
        for code in [
            IOCTL_RAWNIC_LIST_BINDINGS,
            IOCTL_RAWNIC_WAIT_BINDS_COMPLETE,
            IOCTL_RAWNIC_QUERY_OID,
            IOCTL_RAWNIC_GET_STATS,
            IOCTL_RAWNIC_WAIT_EVENT,
            IOCTL_RAWNIC_RING_WAIT,
        ] {
            assert_eq!(access_of(code), FILE_READ_ACCESS);
        }
        for code in [IOCTL_RAWNIC_RING_ATTACH, IOCTL_RAWNIC_RING_DETACH] {
            assert_eq!(access_of(code), FILE_READ_ACCESS | FILE_WRITE_ACCESS);
        }
        for code in [IOCTL_RAWNIC_SEND_BATCH, IOCTL_RAWNIC_SET_OID, IOCTL_RAWNIC_RING_KICK] {
            assert_eq!(access_of(code), FILE_WRITE_ACCESS);
        }
        assert_eq!(access_of(IOCTL_RAWNIC_OPEN), FILE_READ_ACCESS | FILE_WRITE_ACCESS);
        // The NDISPROT-era layout: CTL_CODE(0x12, 0x200, 0, 3) = 0x0012c800.
        assert_eq!(ctl_code(0x12, 0x200, 0, 3), 0x0012_c800);
    }
}
