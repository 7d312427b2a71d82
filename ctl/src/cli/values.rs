//! The value parsers of rawnicctl's options and arguments: times,
//! EtherTypes, packet filters, MACs, 802.1Q tags, hex, OIDs and bounded
//! numbers. Each is a clap `value_parser`; its error is the sentence clap
//! prints after "invalid value 'X' for '--option <VALUE>': ", so it says
//! what the option wants rather than repeating what was given.

use rawnic_client::ether::{self, MacAddr, Tci, TciError};
use rawnic_client::oid::{self, OidInfo};
use rawnic_client::{PacketFilter, rawnic_proto};
use std::net::Ipv4Addr;
use std::time::Duration;

/// What a parser says about a value it refuses.
pub type Refusal = String;

/// `1.5`, `2s`, `500ms`, `2m`: a non-negative, finite time.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    let secs = v * scale;
    (0.0..1e9).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

/// An EtherType: a number (`0x88b5`, decimal) or `arp`, `ipv4`/`ip`,
/// `ipv6`, `vlan`.
pub fn parse_ethertype(text: &str) -> Option<u16> {
    match text.trim().to_ascii_lowercase().as_str() {
        "arp" => Some(ether::ETHERTYPE_ARP),
        "ip" | "ipv4" => Some(ether::ETHERTYPE_IPV4),
        "ipv6" => Some(ether::ETHERTYPE_IPV6),
        "vlan" => Some(ether::ETHERTYPE_VLAN),
        t => oid::parse_u64(t).and_then(|n| u16::try_from(n).ok()),
    }
}

/// A packet filter: comma-separated names, or a number.
pub fn parse_filter(text: &str) -> Option<PacketFilter> {
    if let Some(n) = oid::parse_u64(text) {
        return u32::try_from(n).ok().map(PacketFilter::from_bits_retain);
    }
    let mut bits = PacketFilter::NONE;
    for part in text.split(',').map(str::trim) {
        bits |= match part {
            "none" => PacketFilter::NONE,
            name => PacketFilter::from_name(name)?,
        };
    }
    Some(bits)
}

/// `--timeout`, `--interval`: a time.
pub fn duration(text: &str) -> Result<Duration, Refusal> {
    parse_duration(text).ok_or_else(|| "it must be a time in seconds (like 1.5, 500ms or 2m)".into())
}

/// A time that is more than nothing (how long to wait for a reply).
pub fn positive_duration(text: &str) -> Result<Duration, Refusal> {
    let d = duration(text)?;
    if d.is_zero() {
        return Err("it must be more than 0".into());
    }
    Ok(d)
}

/// A number (decimal or `0x` hex) that `fits` takes; `what` says what the
/// option counts, `bounds` what `fits` wants.
fn number(text: &str, what: &str, fits: impl Fn(u64) -> bool, bounds: &str) -> Result<u64, Refusal> {
    let n = oid::parse_u64(text).ok_or_else(|| format!("it must be a number of {what}"))?;
    if fits(n) { Ok(n) } else { Err(format!("it must be {bounds}")) }
}

/// `--count`: how many of `what`, at least 1.
pub fn count(what: &'static str) -> impl Fn(&str) -> Result<u64, Refusal> + Clone + Send + Sync + 'static {
    move |text| number(text, what, |n| n >= 1, "at least 1")
}

/// `send --batch`, `selftest --count`: frames that fit in one SEND_BATCH
/// request.
pub fn batch(text: &str) -> Result<u32, Refusal> {
    let max = rawnic_proto::MAX_BATCH;
    number(text, "frames", |n| (1..=u64::from(max)).contains(&n), &format!("1 to {max}")).map(|n| n as u32)
}

/// `send --rate`: frames per second, more than 0.
pub fn rate(text: &str) -> Result<f64, Refusal> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| "it must be a number of frames per second, more than 0".into())
}

/// `recv --snaplen`: 0 (whole frames) or at least an Ethernet header.
pub fn snaplen(text: &str) -> Result<u32, Refusal> {
    let min = rawnic_proto::ETH_HEADER as u64;
    let bounds = format!("at least {min} (an Ethernet header), or 0 for whole frames");
    number(text, "bytes", |n| n == 0 || (min..=u64::from(u32::MAX)).contains(&n), &bounds).map(|n| n as u32)
}

/// `recv --queue-frames`: 0 (the driver's) up to the driver's bound.
pub fn queue_frames(text: &str) -> Result<u32, Refusal> {
    let max = rawnic_proto::MAX_QUEUE_FRAMES;
    number(text, "frames", |n| n <= u64::from(max), &format!("at most {max}")).map(|n| n as u32)
}

/// `recv --queue-bytes`: 0 (the driver's) or within the driver's bounds.
pub fn queue_bytes(text: &str) -> Result<u32, Refusal> {
    let (min, max) = (rawnic_proto::MIN_QUEUE_BYTES, rawnic_proto::MAX_QUEUE_BYTES);
    let fits = |n: u64| n == 0 || (u64::from(min)..=u64::from(max)).contains(&n);
    number(text, "bytes", fits, &format!("{min} to {max}, or 0 for the driver's")).map(|n| n as u32)
}

/// `recv --buffer`: bytes per read.
pub fn buffer(text: &str) -> Result<usize, Refusal> {
    number(text, "bytes", |n| (64..=16 << 20).contains(&n), "64 bytes to 16 MiB").map(|n| n as usize)
}

/// `--ring-frames`: frames in a UMEM.
pub fn ring_frames(text: &str) -> Result<u32, Refusal> {
    number(text, "frames", |n| (1..=32768).contains(&n), "1 to 32768").map(|n| n as u32)
}

/// `--ring-size`: entries of a ring, a power of two.
pub fn ring_entries(text: &str) -> Result<u32, Refusal> {
    let (min, max) = (rawnic_proto::ring::MIN_RING, rawnic_proto::ring::MAX_RING);
    let fits = |n: u64| n.is_power_of_two() && (u64::from(min)..=u64::from(max)).contains(&n);
    number(text, "entries", fits, &format!("a power of two from {min} to {max}")).map(|n| n as u32)
}

/// `--frame-size`: one of the UMEM frame sizes.
pub fn frame_size(text: &str) -> Result<u32, Refusal> {
    let sizes = rawnic_proto::ring::FRAME_SIZES;
    let fits = |n: u64| sizes.iter().any(|&s| u64::from(s) == n);
    number(text, "bytes", fits, "2048 or 4096").map(|n| n as u32)
}

/// `oid get --len`: room for the data.
pub fn oid_len(text: &str) -> Result<usize, Refusal> {
    let max = rawnic_proto::MAX_OID_DATA;
    number(text, "bytes", |n| n <= u64::from(max), &format!("at most {max}")).map(|n| n as usize)
}

/// `--dst`, `--src`, `--src-mac`.
pub fn mac(text: &str) -> Result<MacAddr, Refusal> {
    text.parse().map_err(|_| "it must be a MAC address like 02:00:00:00:00:01".into())
}

/// `--vlan`: `ID` or `ID:PRIO`.
pub fn vlan(text: &str) -> Result<Tci, Refusal> {
    text.parse().map_err(|e: TciError| e.to_string())
}

/// One EtherType (`send --ethertype`; `recv --ethertype` splits its value
/// at commas first).
pub fn ethertype(text: &str) -> Result<u16, Refusal> {
    parse_ethertype(text)
        .ok_or_else(|| "it must be an EtherType: a number like 0x88b5, or arp, ipv4, ipv6 or vlan".into())
}

/// `recv --filter`: bits the driver allows.
pub fn filter(text: &str) -> Result<PacketFilter, Refusal> {
    let bits = parse_filter(text).ok_or_else(|| {
        "it must be packet filter bits (directed, multicast, all-multicast, broadcast, promiscuous, comma-separated) or a number"
            .to_string()
    })?;
    if !bits.unknown().is_empty() {
        return Err(format!("packet filter {bits:#x} has bits the driver does not allow"));
    }
    Ok(bits)
}

/// Bytes given in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

/// `send HEX...`, `oid set --hex`: bytes in hex (spaces, `:`, `-` and `.`
/// between them are ignored).
pub fn hex(text: &str) -> Result<Hex, Refusal> {
    ether::parse_hex(text).map(Hex).map_err(|e| e.to_string())
}

/// `arping TARGET`, `--source`.
pub fn ipv4(text: &str) -> Result<Ipv4Addr, Refusal> {
    text.trim().parse().map_err(|_| "it must be an IPv4 address like 10.0.0.1".into())
}

/// An OID, by name or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oid {
    pub oid: u32,
    /// What rawnicctl knows of it, when it has a name.
    pub info: Option<&'static OidInfo>,
}

/// `oid get OID`, `oid set OID`: a name (`OID_GEN_LINK_SPEED` or
/// `GEN_LINK_SPEED`, any case) or a number (`0x00010107`).
pub fn oid(text: &str) -> Result<Oid, Refusal> {
    oid::lookup(text)
        .map(|(oid, info)| Oid { oid, info })
        .ok_or_else(|| "it must be an OID: a name from `rawnicctl oid names` or a number like 0x00010107".into())
}

/// `oid set --u32`: the value's 4 bytes.
pub fn u32_value(text: &str) -> Result<Hex, Refusal> {
    oid::encode(oid::Kind::U32, text).map(Hex).map_err(|e| e.to_string())
}

/// `oid set --u64`: the value's 8 bytes.
pub fn u64_value(text: &str) -> Result<Hex, Refusal> {
    oid::encode(oid::Kind::U64, text).map(Hex).map_err(|e| e.to_string())
}

/// `--adapter`: a name or an index, not nothing.
pub fn adapter(text: &str) -> Result<String, Refusal> {
    if text.is_empty() {
        return Err("it must be an adapter's name or its index in `rawnicctl list`".into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in ["soon", "-1", "inf", "NaN", "1e10", ""] {
            assert_eq!(duration(bad), Err("it must be a time in seconds (like 1.5, 500ms or 2m)".into()), "{bad}");
        }
        assert_eq!(positive_duration("0"), Err("it must be more than 0".into()));
        assert_eq!(positive_duration("0.2"), Ok(Duration::from_millis(200)));
    }

    #[test]
    fn numbers_and_their_bounds() {
        let frames = count("frames");
        assert_eq!(frames("10"), Ok(10));
        assert_eq!(frames("0x10"), Ok(16));
        assert_eq!(frames("0"), Err("it must be at least 1".into()));
        assert_eq!(frames("-3"), Err("it must be a number of frames".into()));
        assert_eq!(count("events")("x"), Err("it must be a number of events".into()));
        assert_eq!(batch("4096"), Ok(4096));
        assert_eq!(batch("5000"), Err("it must be 1 to 4096".into()));
        assert_eq!(batch("0"), Err("it must be 1 to 4096".into()));
        assert_eq!(rate("0"), Err("it must be a number of frames per second, more than 0".into()));
        assert_eq!(rate("2.5"), Ok(2.5));
        assert_eq!(snaplen("0"), Ok(0));
        assert_eq!(snaplen("14"), Ok(14));
        assert_eq!(snaplen("10"), Err("it must be at least 14 (an Ethernet header), or 0 for whole frames".into()));
        assert_eq!(queue_bytes("100"), Err("it must be 131072 to 268435456, or 0 for the driver's".into()));
        assert_eq!(queue_bytes("0"), Ok(0));
        assert_eq!(queue_frames("2000000"), Err("it must be at most 1048576".into()));
        assert_eq!(buffer("10"), Err("it must be 64 bytes to 16 MiB".into()));
        assert_eq!(buffer("4096"), Ok(4096));
        assert_eq!(oid_len("70000"), Err("it must be at most 65536".into()));
    }

    #[test]
    fn ethertypes_filters_macs_and_tags() {
        assert_eq!(ethertype("arp"), Ok(0x0806));
        assert_eq!(ethertype("IPv6"), Ok(0x86dd));
        assert_eq!(ethertype("0x88b5"), Ok(0x88b5));
        assert!(ethertype("0x1ffff").unwrap_err().starts_with("it must be an EtherType"));
        use rawnic_proto::filter::*;
        assert_eq!(filter("broadcast,directed"), Ok(BROADCAST | DIRECTED));
        assert_eq!(filter("none"), Ok(PacketFilter::NONE));
        assert_eq!(filter("0x40"), Err("packet filter 0x40 has bits the driver does not allow".into()));
        assert!(filter("everything").unwrap_err().starts_with("it must be packet filter bits"));
        assert_eq!(mac("02:00:00:00:00:02"), Ok(MacAddr([2, 0, 0, 0, 0, 2])));
        assert_eq!(mac("nope"), Err("it must be a MAC address like 02:00:00:00:00:01".into()));
        assert_eq!(vlan("5:3"), Ok(Tci::new(5, 3).unwrap()));
        assert_eq!(vlan("4095"), Err("VLAN ID 4095 is out of range: it must be 1 to 4094".into()));
        assert_eq!(vlan("1:9"), Err("priority 9 is out of range: it must be 0 to 7".into()));
    }

    #[test]
    fn hex_addresses_and_oids() {
        assert_eq!(hex("ff:ff 0a-0b"), Ok(Hex(vec![0xff, 0xff, 0x0a, 0x0b])));
        assert_eq!(hex("abc"), Err("3 hex digits is an odd number: every byte takes two".into()));
        assert_eq!(hex("0g"), Err("'g' is not a hex digit".into()));
        assert_eq!(ipv4("10.0.0.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ipv4("host"), Err("it must be an IPv4 address like 10.0.0.1".into()));
        assert_eq!(oid("gen_link_speed").map(|o| o.oid), Ok(0x0001_0107));
        assert_eq!(oid("0x12345678"), Ok(Oid { oid: 0x1234_5678, info: None }));
        assert!(oid("OID_FROB").unwrap_err().contains("`rawnicctl oid names`"));
        assert_eq!(u32_value("256"), Ok(Hex(vec![0, 1, 0, 0])));
        assert_eq!(u32_value("5000000000"), Err("5000000000 does not fit in 32 bits".into()));
        assert_eq!(u64_value("5"), Ok(Hex(5u64.to_le_bytes().to_vec())));
        assert_eq!(adapter(""), Err("it must be an adapter's name or its index in `rawnicctl list`".into()));
    }
}
