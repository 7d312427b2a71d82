//! Named OIDs: their values, how their data is laid out, how to decode a
//! query's result into text and how to encode a value to set.

use crate::ether::{MacAddr, MacAddrError};
use std::fmt;
use std::fmt::Write as _;

/// How an OID's data is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `ULONG`.
    U32,
    /// A `ULONG` or a `ULONG64` (statistics: the adapter picks the size).
    Counter,
    /// A `ULONG64`.
    U64,
    /// A `ULONG` link speed in units of 100 bit/s.
    Speed100,
    /// `NDIS_LINK_SPEED`: transmit and receive speed, `ULONG64` bit/s each.
    LinkSpeedPair,
    /// `NDIS_LINK_STATE`.
    LinkState,
    /// `NDIS_LINK_PARAMETERS`.
    LinkParameters,
    /// `NDIS_MEDIA_STATE`: 0 connected, 1 disconnected.
    MediaConnect,
    /// `NDIS_HARDWARE_STATUS`.
    HardwareStatus,
    /// `NDIS_MEDIUM` values.
    Medium,
    /// `NDIS_PHYSICAL_MEDIUM`.
    PhysicalMedium,
    /// Packet filter bits.
    PacketFilter,
    /// One MAC address.
    Mac,
    /// A list of MAC addresses.
    MacList,
    /// A list of OIDs.
    OidList,
    /// An ANSI string, maybe NUL-terminated.
    Ansi,
    /// `ULONG` vendor ID: 3 bytes of OUI and an adapter byte.
    VendorId,
    /// A `USHORT` version, major in the high byte.
    DriverVersion,
    /// Anything else: shown in hex.
    Bytes,
}

/// A named OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidInfo {
    pub name: &'static str,
    pub oid: u32,
    pub kind: Kind,
}

macro_rules! oids {
    ($($name:ident = $value:expr, $kind:ident;)*) => {
        $(#[doc = concat!("`", stringify!($name), "`")] pub const $name: u32 = $value;)*
        /// Every named OID.
        pub const NAMED: &[OidInfo] = &[$(OidInfo { name: stringify!($name), oid: $value, kind: Kind::$kind }),*];
    };
}

oids! {
    OID_GEN_SUPPORTED_LIST = 0x0001_0101, OidList;
    OID_GEN_HARDWARE_STATUS = 0x0001_0102, HardwareStatus;
    OID_GEN_MEDIA_SUPPORTED = 0x0001_0103, Medium;
    OID_GEN_MEDIA_IN_USE = 0x0001_0104, Medium;
    OID_GEN_MAXIMUM_LOOKAHEAD = 0x0001_0105, U32;
    OID_GEN_MAXIMUM_FRAME_SIZE = 0x0001_0106, U32;
    OID_GEN_LINK_SPEED = 0x0001_0107, Speed100;
    OID_GEN_TRANSMIT_BUFFER_SPACE = 0x0001_0108, U32;
    OID_GEN_RECEIVE_BUFFER_SPACE = 0x0001_0109, U32;
    OID_GEN_TRANSMIT_BLOCK_SIZE = 0x0001_010A, U32;
    OID_GEN_RECEIVE_BLOCK_SIZE = 0x0001_010B, U32;
    OID_GEN_VENDOR_ID = 0x0001_010C, VendorId;
    OID_GEN_VENDOR_DESCRIPTION = 0x0001_010D, Ansi;
    OID_GEN_CURRENT_PACKET_FILTER = 0x0001_010E, PacketFilter;
    OID_GEN_CURRENT_LOOKAHEAD = 0x0001_010F, U32;
    OID_GEN_DRIVER_VERSION = 0x0001_0110, DriverVersion;
    OID_GEN_MAXIMUM_TOTAL_SIZE = 0x0001_0111, U32;
    OID_GEN_MAC_OPTIONS = 0x0001_0113, U32;
    OID_GEN_MEDIA_CONNECT_STATUS = 0x0001_0114, MediaConnect;
    OID_GEN_MAXIMUM_SEND_PACKETS = 0x0001_0115, U32;
    OID_GEN_VENDOR_DRIVER_VERSION = 0x0001_0116, U32;
    OID_GEN_PHYSICAL_MEDIUM = 0x0001_0202, PhysicalMedium;
    OID_GEN_MAX_LINK_SPEED = 0x0001_0206, LinkSpeedPair;
    OID_GEN_LINK_STATE = 0x0001_0207, LinkState;
    OID_GEN_LINK_PARAMETERS = 0x0001_0208, LinkParameters;
    OID_GEN_XMIT_OK = 0x0002_0101, Counter;
    OID_GEN_RCV_OK = 0x0002_0102, Counter;
    OID_GEN_XMIT_ERROR = 0x0002_0103, Counter;
    OID_GEN_RCV_ERROR = 0x0002_0104, Counter;
    OID_GEN_RCV_NO_BUFFER = 0x0002_0105, Counter;
    OID_GEN_STATISTICS = 0x0002_0106, Bytes;
    OID_GEN_RCV_CRC_ERROR = 0x0002_020D, Counter;
    OID_GEN_TRANSMIT_QUEUE_LENGTH = 0x0002_020E, U32;
    OID_802_3_PERMANENT_ADDRESS = 0x0101_0101, Mac;
    OID_802_3_CURRENT_ADDRESS = 0x0101_0102, Mac;
    OID_802_3_MULTICAST_LIST = 0x0101_0103, MacList;
    OID_802_3_MAXIMUM_LIST_SIZE = 0x0101_0104, U32;
    OID_802_3_RCV_ERROR_ALIGNMENT = 0x0102_0101, Counter;
    OID_802_3_XMIT_ONE_COLLISION = 0x0102_0102, Counter;
    OID_802_3_XMIT_MORE_COLLISIONS = 0x0102_0103, Counter;
}

/// The named OID with this value.
pub fn by_value(oid: u32) -> Option<&'static OidInfo> {
    NAMED.iter().find(|i| i.oid == oid)
}

/// Looks an OID up by name (case-insensitive; the `OID_` prefix may be
/// left out) or parses a number (`0x00010107` or decimal).
pub fn lookup(text: &str) -> Option<(u32, Option<&'static OidInfo>)> {
    let t = text.trim();
    if let Some(n) = parse_number(t) {
        return Some((n, by_value(n)));
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("OID_") { upper } else { format!("OID_{upper}") };
    NAMED.iter().find(|i| i.name == full).map(|i| (i.oid, Some(i)))
}

fn parse_number(t: &str) -> Option<u32> {
    parse_u64(t).and_then(|n| u32::try_from(n).ok())
}

/// `OID_GEN_LINK_SPEED (0x00010107)` or `OID 0x12345678`.
pub fn display_oid(oid: u32) -> String {
    match by_value(oid) {
        Some(i) => format!("{} ({oid:#010x})", i.name),
        None => format!("OID {oid:#010x}"),
    }
}

/// The name of an `NDIS_STATUS` an adapter answers OID requests with.
pub fn ndis_status_name(status: i32) -> Option<&'static str> {
    Some(match status as u32 {
        0x0000_0000 => "NDIS_STATUS_SUCCESS",
        0x0000_0103 => "NDIS_STATUS_PENDING",
        0xC000_0001 => "NDIS_STATUS_FAILURE",
        0xC000_009A => "NDIS_STATUS_RESOURCES",
        0xC000_00BB => "NDIS_STATUS_NOT_SUPPORTED",
        0xC000_000D => "NDIS_STATUS_INVALID_PARAMETER",
        0xC001_0002 => "NDIS_STATUS_CLOSING",
        0xC001_0006 => "NDIS_STATUS_ADAPTER_NOT_FOUND",
        0xC001_0009 => "NDIS_STATUS_MULTICAST_FULL",
        0xC001_000C => "NDIS_STATUS_REQUEST_ABORTED",
        0xC001_000D => "NDIS_STATUS_RESET_IN_PROGRESS",
        0xC001_0014 => "NDIS_STATUS_INVALID_LENGTH",
        0xC001_0015 => "NDIS_STATUS_INVALID_DATA",
        0xC001_0016 => "NDIS_STATUS_BUFFER_TOO_SHORT",
        0xC001_0017 => "NDIS_STATUS_INVALID_OID",
        0xC001_0019 => "NDIS_STATUS_UNSUPPORTED_MEDIA",
        0xC001_001F => "NDIS_STATUS_MEDIA_DISCONNECTED",
        0xC023_002A => "NDIS_STATUS_PAUSED",
        0xC023_002F => "NDIS_STATUS_LOW_POWER_STATE",
        0xC000_0022 => "NDIS_STATUS_ACCESS_DENIED (from the driver's allow-list)",
        _ => return None,
    })
}

/// A sentence for an `NDIS_STATUS`.
pub fn ndis_status_sentence(status: i32) -> String {
    let text = match status as u32 {
        0xC000_0001 => "the adapter reported a failure",
        0xC000_009A => "the adapter is out of resources",
        0xC000_00BB | 0xC001_0017 => "the adapter does not support this OID",
        0xC000_000D => "the adapter refused the value as invalid",
        0xC001_0002 => "the adapter is closing",
        0xC001_000C => "the request was aborted",
        0xC001_000D => "the adapter is resetting",
        0xC001_0014 | 0xC001_0016 => "the data buffer has the wrong length for this OID",
        0xC001_0015 => "the adapter refused the data as invalid",
        0xC001_0009 => {
            "the adapter's multicast list is full (it is shared with the other protocols bound to the adapter); \
             the handle keeps its old list"
        }
        0xC001_001F => "the adapter's link is down",
        0xC023_002A => "the adapter is paused",
        0xC023_002F => "the adapter is in a low-power state",
        0xC000_0022 => "the driver allows no set of this OID",
        _ => "the adapter answered with an unexpected status",
    };
    match ndis_status_name(status) {
        Some(n) => format!("{text} ({n}, {:#010x})", status as u32),
        None => format!("{text} ({:#010x})", status as u32),
    }
}

fn u32le(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

fn u64le(d: &[u8], off: usize) -> Option<u64> {
    d.get(off..off + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// `1 Gbit/s`, `100 Mbit/s`, `2.5 Gbit/s`; `unknown` for the NDIS
/// "unknown" value (all ones).
pub fn format_speed(bps: u64) -> String {
    if bps == u64::MAX {
        return "unknown".into();
    }
    let units = [(1_000_000_000_000u64, "Tbit/s"), (1_000_000_000, "Gbit/s"), (1_000_000, "Mbit/s"), (1_000, "kbit/s")];
    for (scale, unit) in units {
        if bps >= scale {
            let v = bps as f64 / scale as f64;
            return if bps % scale == 0 { format!("{} {unit}", bps / scale) } else { format!("{v:.1} {unit}") };
        }
    }
    format!("{bps} bit/s")
}

fn connect_state(v: u32) -> &'static str {
    match v {
        1 => "connected",
        2 => "disconnected",
        _ => "unknown",
    }
}

fn duplex(v: u32) -> &'static str {
    match v {
        1 => "half duplex",
        2 => "full duplex",
        _ => "unknown duplex",
    }
}

fn medium(v: u32) -> String {
    let n = match v {
        0 => "802.3",
        1 => "802.5",
        2 => "FDDI",
        3 => "WAN",
        4 => "LocalTalk",
        5 => "DIX",
        6 => "ARCNET raw",
        7 => "ARCNET 878.2",
        8 => "ATM",
        9 => "wireless WAN",
        10 => "IrDA",
        11 => "BPC",
        12 => "CoWAN",
        13 => "1394",
        14 => "InfiniBand",
        15 => "tunnel",
        16 => "native 802.11",
        17 => "loopback",
        18 => "WiMAX",
        19 => "IP",
        _ => return format!("medium {v}"),
    };
    n.to_string()
}

fn physical_medium(v: u32) -> String {
    let n = match v {
        0 => "unspecified",
        1 => "wireless LAN",
        2 => "cable modem",
        3 => "phone line",
        4 => "power line",
        5 => "DSL",
        6 => "Fibre Channel",
        7 => "1394",
        8 => "wireless WAN",
        9 => "native 802.11",
        10 => "Bluetooth",
        11 => "InfiniBand",
        12 => "WiMAX",
        13 => "UWB",
        14 => "802.3",
        15 => "802.5",
        16 => "IrDA",
        17 => "wired WAN",
        18 => "wired CoWAN",
        19 => "other",
        20 => "native 802.15.4",
        _ => return format!("physical medium {v}"),
    };
    n.to_string()
}

/// Names of packet filter bits, comma-separated (`directed,broadcast`).
/// Bits without a name are given in hex (`directed,0x40`); no bits are
/// `none`. The same as `PacketFilter`'s `Display`.
pub fn filter_names(filter: rawnic_proto::PacketFilter) -> String {
    filter.to_string()
}

/// Lowercase hex, no separators.
pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A query result as text, decoded by the OID's kind (hex when the data
/// does not have the kind's size).
pub fn decode(oid: u32, data: &[u8]) -> String {
    let kind = by_value(oid).map_or(Kind::Bytes, |i| i.kind);
    decode_kind(kind, data).unwrap_or_else(|| if data.is_empty() { "(no data)".into() } else { hex(data) })
}

fn decode_kind(kind: Kind, d: &[u8]) -> Option<String> {
    let exact_u32 = || (d.len() == 4).then(|| u32le(d, 0)).flatten();
    Some(match kind {
        Kind::U32 => exact_u32()?.to_string(),
        Kind::Counter => match d.len() {
            4 => u32le(d, 0)?.to_string(),
            8 => u64le(d, 0)?.to_string(),
            _ => return None,
        },
        Kind::U64 => (d.len() == 8).then(|| u64le(d, 0)).flatten()?.to_string(),
        Kind::Speed100 => format_speed(u64::from(exact_u32()?) * 100),
        Kind::LinkSpeedPair => {
            if d.len() != 16 {
                return None;
            }
            format!("transmit {}, receive {}", format_speed(u64le(d, 0)?), format_speed(u64le(d, 8)?))
        }
        Kind::LinkState => {
            if d.len() < 40 {
                return None;
            }
            format!(
                "{}, {}, transmit {}, receive {}, pause functions {}, auto-negotiation flags {:#x}",
                connect_state(u32le(d, 4)?),
                duplex(u32le(d, 8)?),
                format_speed(u64le(d, 16)?),
                format_speed(u64le(d, 24)?),
                u32le(d, 32)?,
                u32le(d, 36)?
            )
        }
        Kind::LinkParameters => {
            if d.len() < 32 {
                return None;
            }
            format!(
                "{}, transmit {}, receive {}, pause functions {}, auto-negotiation flags {:#x}",
                duplex(u32le(d, 4)?),
                format_speed(u64le(d, 8)?),
                format_speed(u64le(d, 16)?),
                u32le(d, 24)?,
                u32le(d, 28)?
            )
        }
        Kind::MediaConnect => match exact_u32()? {
            0 => "connected".into(),
            1 => "disconnected".into(),
            v => format!("unknown media state {v}"),
        },
        Kind::HardwareStatus => match exact_u32()? {
            0 => "ready".into(),
            1 => "initializing".into(),
            2 => "reset".into(),
            3 => "closing".into(),
            4 => "not ready".into(),
            v => format!("unknown hardware status {v}"),
        },
        Kind::Medium => {
            if d.is_empty() || d.len() % 4 != 0 {
                return None;
            }
            d.chunks_exact(4).map(|c| medium(u32le(c, 0).expect("4 bytes"))).collect::<Vec<_>>().join(", ")
        }
        Kind::PhysicalMedium => physical_medium(exact_u32()?),
        Kind::PacketFilter => {
            let v = rawnic_proto::PacketFilter::from_bits_retain(exact_u32()?);
            format!("{v:#x} ({v})")
        }
        Kind::Mac => MacAddr(d.try_into().ok()?).to_string(),
        Kind::MacList => {
            if d.len() % 6 != 0 {
                return None;
            }
            if d.is_empty() {
                return Some("(empty list)".into());
            }
            d.chunks_exact(6)
                .map(|c| MacAddr(c.try_into().expect("6 bytes")).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
        Kind::OidList => {
            if d.len() % 4 != 0 {
                return None;
            }
            d.chunks_exact(4).map(|c| display_oid(u32le(c, 0).expect("4 bytes"))).collect::<Vec<_>>().join("\n")
        }
        Kind::Ansi => {
            let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            format!("{:?}", String::from_utf8_lossy(&d[..end]))
        }
        Kind::VendorId => {
            let v = exact_u32()?;
            let b = v.to_le_bytes();
            format!("OUI {:02x}:{:02x}:{:02x}, adapter {}", b[0], b[1], b[2], b[3])
        }
        Kind::DriverVersion => {
            if d.len() != 2 {
                return None;
            }
            let v = u16::from_le_bytes([d[0], d[1]]);
            format!("{}.{}", v >> 8, v & 0xff)
        }
        Kind::Bytes => return None,
    })
}

/// Why [`encode`] could not turn a value's text into its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A number was wanted; the text given.
    NotANumber(String),
    /// The number does not fit in the OID's 32 bits.
    TooBig(u64),
    /// A MAC address (or one of a list) is not one.
    Mac(MacAddrError),
    /// The OID's kind has no text form; only raw bytes set it.
    NoTextForm,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NotANumber(text) => write!(f, "{text:?} is not a number"),
            EncodeError::TooBig(v) => write!(f, "{v} does not fit in 32 bits"),
            EncodeError::Mac(e) => e.fmt(f),
            EncodeError::NoTextForm => f.write_str("this OID's value has no text form; give its bytes with --hex"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeError::Mac(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MacAddrError> for EncodeError {
    fn from(e: MacAddrError) -> Self {
        EncodeError::Mac(e)
    }
}

/// Encodes a value given as text for a set of an OID of `kind`: a number
/// for the `ULONG` kinds, comma-separated MACs for a MAC list, a single MAC
/// for a MAC. Other kinds take raw bytes (hex).
pub fn encode(kind: Kind, text: &str) -> Result<Vec<u8>, EncodeError> {
    let number = || parse_u64(text).ok_or_else(|| EncodeError::NotANumber(text.to_string()));
    match kind {
        Kind::U32 | Kind::Counter | Kind::PacketFilter | Kind::Speed100 => {
            let v = number()?;
            let v = u32::try_from(v).map_err(|_| EncodeError::TooBig(v))?;
            Ok(v.to_le_bytes().to_vec())
        }
        Kind::U64 => Ok(number()?.to_le_bytes().to_vec()),
        Kind::Mac => Ok(text.parse::<MacAddr>()?.0.to_vec()),
        Kind::MacList => {
            let mut out = Vec::new();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                out.extend_from_slice(&part.parse::<MacAddr>()?.0);
            }
            Ok(out)
        }
        _ => Err(EncodeError::NoTextForm),
    }
}

/// A decimal or `0x` hexadecimal number.
pub fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(lookup("OID_GEN_LINK_SPEED"), Some((0x0001_0107, by_value(0x0001_0107))));
        assert_eq!(lookup("gen_link_speed").map(|v| v.0), Some(0x0001_0107));
        assert_eq!(lookup("0x01010102").map(|v| v.1.map(|i| i.name)), Some(Some("OID_802_3_CURRENT_ADDRESS")));
        assert_eq!(lookup("16843010").map(|v| v.0), Some(0x0101_0102));
        assert_eq!(lookup("0xdeadbeef"), Some((0xdead_beef, None)));
        assert_eq!(lookup("OID_NO_SUCH"), None);
        // The allow-listed sets are all named.
        for oid in rawnic_proto::OID_SET_ALLOW_LIST {
            assert!(by_value(*oid).is_some(), "{oid:#x}");
        }
        // Names and values are unique.
        for (i, a) in NAMED.iter().enumerate() {
            for b in &NAMED[i + 1..] {
                assert!(a.name != b.name && a.oid != b.oid, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn decodes_common_results() {
        assert_eq!(decode(OID_GEN_LINK_SPEED, &10_000_000u32.to_le_bytes()), "1 Gbit/s");
        assert_eq!(decode(OID_802_3_CURRENT_ADDRESS, &[2, 0, 0, 0, 0, 1]), "02:00:00:00:00:01");
        assert_eq!(decode(OID_GEN_MEDIA_CONNECT_STATUS, &0u32.to_le_bytes()), "connected");
        assert_eq!(decode(OID_GEN_MAXIMUM_FRAME_SIZE, &1500u32.to_le_bytes()), "1500");
        assert_eq!(decode(OID_GEN_XMIT_OK, &7u64.to_le_bytes()), "7");
        assert_eq!(decode(OID_GEN_XMIT_OK, &7u32.to_le_bytes()), "7");
        assert_eq!(decode(OID_GEN_VENDOR_DESCRIPTION, b"Virtual NIC\0\0"), "\"Virtual NIC\"");
        assert_eq!(decode(OID_GEN_CURRENT_PACKET_FILTER, &0x0bu32.to_le_bytes()), "0xb (directed,multicast,broadcast)");
        let mut ls = vec![0u8; 40];
        ls[4] = 1;
        ls[8] = 2;
        ls[16..24].copy_from_slice(&2_500_000_000u64.to_le_bytes());
        ls[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decode(OID_GEN_LINK_STATE, &ls),
            "connected, full duplex, transmit 2.5 Gbit/s, receive unknown, pause functions 0, auto-negotiation flags 0x0"
        );
        // The wrong size falls back to hex; unknown OIDs are hex.
        assert_eq!(decode(OID_GEN_LINK_SPEED, &[1, 2, 3]), "010203");
        assert_eq!(decode(0x7777_7777, &[0xab]), "ab");
        assert_eq!(decode(0x7777_7777, &[]), "(no data)");
    }

    #[test]
    fn encodes_values_to_set() {
        assert_eq!(encode(Kind::U32, "256").unwrap(), vec![0, 1, 0, 0]);
        assert_eq!(encode(Kind::U32, "0x10").unwrap(), vec![16, 0, 0, 0]);
        assert!(encode(Kind::U32, "5000000000").unwrap_err().to_string().contains("32 bits"));
        assert_eq!(
            encode(Kind::MacList, "01:00:5e:00:00:01, 33:33:00:00:00:01").unwrap(),
            vec![1, 0, 0x5e, 0, 0, 1, 0x33, 0x33, 0, 0, 0, 1]
        );
        assert!(encode(Kind::LinkParameters, "x").unwrap_err().to_string().contains("--hex"));
    }

    #[test]
    fn ndis_statuses_read_as_sentences() {
        assert_eq!(
            ndis_status_sentence(0xC001_0017u32 as i32),
            "the adapter does not support this OID (NDIS_STATUS_INVALID_OID, 0xc0010017)"
        );
        assert_eq!(ndis_status_sentence(0x1234), "the adapter answered with an unexpected status (0x00001234)");
    }

    #[test]
    fn speeds() {
        assert_eq!(format_speed(100_000_000), "100 Mbit/s");
        assert_eq!(format_speed(2_500_000_000), "2.5 Gbit/s");
        assert_eq!(format_speed(999), "999 bit/s");
        assert_eq!(format_speed(u64::MAX), "unknown");
    }
}
