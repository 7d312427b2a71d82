//! Ethernet helpers: MAC addresses, building frames, 802.1Q tags, ARP, hex,
//! and a one-line summary of a frame.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Parsing hex text (frames, OID values): one parser, `rawnic_proto`'s, which
/// ndisim's scripts use too.
pub use rawnic_proto::hex::{HexError, parse_hex};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// IEEE 802 "local experimental" EtherType 1.
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88B5;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why text is not a [`MacAddr`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MacAddrError {
    /// Not six groups (between `:` or `-`), nor 12 hex digits; the text.
    Groups(String),
    /// A group is not one or two hex digits; the whole text.
    Digits(String),
}

impl fmt::Display for MacAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (MacAddrError::Groups(s) | MacAddrError::Digits(s)) = self;
        write!(f, "{s:?} is not a MAC address (write it like 02:00:00:00:00:01)")
    }
}

impl std::error::Error for MacAddrError {}

impl FromStr for MacAddr {
    type Err = MacAddrError;

    /// `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, or 12 hex digits.
    fn from_str(s: &str) -> Result<Self, MacAddrError> {
        let groups = || MacAddrError::Groups(s.to_string());
        let parts: Vec<&str> = if s.contains(':') || s.contains('-') {
            s.split([':', '-']).collect()
        } else if s.len() == 12 && s.is_ascii() {
            (0..6).map(|i| &s[2 * i..2 * i + 2]).collect()
        } else {
            return Err(groups());
        };
        if parts.len() != 6 {
            return Err(groups());
        }
        let mut m = [0u8; 6];
        for (o, p) in m.iter_mut().zip(&parts) {
            let digits = || MacAddrError::Digits(s.to_string());
            if p.is_empty() || p.len() > 2 {
                return Err(digits());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| digits())?;
        }
        Ok(MacAddr(m))
    }
}

/// An 802.1Q tag control field: priority (3 bits), DEI (1), VLAN ID (12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tci(pub u16);

impl Tci {
    /// A TCI for VLAN `id` (1..=4094) with priority `prio` (0..=7).
    pub fn new(id: u16, prio: u8) -> Result<Tci, TciError> {
        if id == 0 || id >= 0x0FFF {
            return Err(TciError::VlanIdRange(id));
        }
        if prio > 7 {
            return Err(TciError::PriorityRange(prio));
        }
        Ok(Tci((u16::from(prio) << 13) | id))
    }

    pub fn vlan_id(self) -> u16 {
        self.0 & 0x0FFF
    }

    pub fn priority(self) -> u8 {
        (self.0 >> 13) as u8
    }

    pub fn dei(self) -> bool {
        self.0 & 0x1000 != 0
    }
}

/// Why a VLAN ID and priority, or text for them, make no [`Tci`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TciError {
    /// The VLAN ID is not 1 to 4094.
    VlanIdRange(u16),
    /// The priority is not 0 to 7.
    PriorityRange(u8),
    /// The text is not `ID` or `ID:PRIORITY` with an ID that is a number.
    Syntax(String),
    /// The priority after the `:` is not a number; the priority text.
    Priority(String),
}

impl fmt::Display for TciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TciError::VlanIdRange(id) => write!(f, "VLAN ID {id} is out of range: it must be 1 to 4094"),
            TciError::PriorityRange(p) => write!(f, "priority {p} is out of range: it must be 0 to 7"),
            TciError::Syntax(s) => write!(f, "{s:?} is not a VLAN (write ID or ID:PRIORITY, like 100 or 100:5)"),
            TciError::Priority(p) => write!(f, "{p:?} is not a priority (0 to 7)"),
        }
    }
}

impl std::error::Error for TciError {}

impl FromStr for Tci {
    type Err = TciError;

    /// `ID` or `ID:PRIO`.
    fn from_str(s: &str) -> Result<Self, TciError> {
        let (id, prio) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let id: u16 = id.trim().parse().map_err(|_| TciError::Syntax(s.to_string()))?;
        let prio: u8 = match prio {
            Some(p) => p.trim().parse().map_err(|_| TciError::Priority(p.to_string()))?,
            None => 0,
        };
        Tci::new(id, prio)
    }
}

/// An Ethernet frame: destination, source, EtherType, payload.
pub fn build_frame(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The frame with an 802.1Q tag inserted after the addresses (as it was on
/// the wire before the NIC stripped it). Frames shorter than 12 bytes are
/// returned unchanged.
pub fn insert_vlan_tag(frame: &[u8], tci: u16) -> Vec<u8> {
    if frame.len() < 12 {
        return frame.to_vec();
    }
    let mut f = Vec::with_capacity(frame.len() + 4);
    f.extend_from_slice(&frame[..12]);
    f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// The EtherType and payload of a frame, past any 802.1Q tags, and the
/// outermost tag's TCI.
pub fn ethertype_and_payload(frame: &[u8]) -> Option<(u16, &[u8], Option<u16>)> {
    if frame.len() < 14 {
        return None;
    }
    let mut off = 12;
    let mut tci = None;
    let mut ty = u16::from_be_bytes([frame[off], frame[off + 1]]);
    while (ty == ETHERTYPE_VLAN || ty == 0x88A8) && frame.len() >= off + 6 {
        tci.get_or_insert(u16::from_be_bytes([frame[off + 2], frame[off + 3]]));
        off += 4;
        ty = u16::from_be_bytes([frame[off], frame[off + 1]]);
    }
    Some((ty, &frame[off + 2..], tci))
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
    pub const LEN: usize = 28;

    /// A request: who has `target`? Tell `sender_ip` at `sender_mac`.
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target: Ipv4Addr) -> Arp {
        Arp { op: Self::REQUEST, sender_mac, sender_ip, target_mac: MacAddr::ZERO, target_ip: target }
    }

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        b[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// The broadcast Ethernet frame carrying this packet, padded to the
    /// 60-byte minimum.
    pub fn to_frame(&self, src: MacAddr) -> Vec<u8> {
        let dst = if self.op == Self::REQUEST { MacAddr::BROADCAST } else { self.target_mac };
        let mut f = build_frame(dst, src, ETHERTYPE_ARP, &self.to_bytes());
        f.resize(60, 0);
        f
    }

    /// Parses an ARP payload (IPv4 over Ethernet only).
    pub fn parse(p: &[u8]) -> Option<Arp> {
        if p.len() < Self::LEN || p[0..2] != [0, 1] || p[2..4] != ETHERTYPE_IPV4.to_be_bytes() || p[4] != 6 || p[5] != 4
        {
            return None;
        }
        let mac = |o: usize| MacAddr(p[o..o + 6].try_into().expect("6 bytes"));
        let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
        Some(Arp {
            op: u16::from_be_bytes([p[6], p[7]]),
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// Parses the ARP packet in an Ethernet frame (tagged or not).
    pub fn from_frame(frame: &[u8]) -> Option<Arp> {
        match ethertype_and_payload(frame)? {
            (ETHERTYPE_ARP, p, _) => Arp::parse(p),
            _ => None,
        }
    }
}

/// A one-line description of a frame: addresses, EtherType, and for ARP,
/// IPv4 and IPv6 the essentials.
pub fn summarize(frame: &[u8]) -> String {
    if frame.len() < 14 {
        return format!("runt frame of {} bytes", frame.len());
    }
    let dst = MacAddr(frame[0..6].try_into().expect("6 bytes"));
    let src = MacAddr(frame[6..12].try_into().expect("6 bytes"));
    let (ty, payload, tci) = ethertype_and_payload(frame).expect("14 bytes");
    let mut s = format!("{src} > {dst}");
    if let Some(t) = tci {
        let t = Tci(t);
        s.push_str(&format!(" vlan {} prio {}", t.vlan_id(), t.priority()));
    }
    match ty {
        ETHERTYPE_ARP => match Arp::parse(payload) {
            Some(a) if a.op == Arp::REQUEST => {
                s.push_str(&format!(" ARP who-has {} tell {}", a.target_ip, a.sender_ip))
            }
            Some(a) if a.op == Arp::REPLY => s.push_str(&format!(" ARP reply {} is-at {}", a.sender_ip, a.sender_mac)),
            _ => s.push_str(" ARP"),
        },
        ETHERTYPE_IPV4 if payload.len() >= 20 => {
            let proto = payload[9];
            let src = Ipv4Addr::new(payload[12], payload[13], payload[14], payload[15]);
            let dst = Ipv4Addr::new(payload[16], payload[17], payload[18], payload[19]);
            let name = match proto {
                1 => "ICMP".to_string(),
                6 => "TCP".to_string(),
                17 => "UDP".to_string(),
                p => format!("protocol {p}"),
            };
            s.push_str(&format!(" IPv4 {src} > {dst} {name}"));
        }
        ETHERTYPE_IPV6 => s.push_str(" IPv6"),
        t if t < 0x0600 => s.push_str(&format!(" 802.3 length {t}")),
        t => s.push_str(&format!(" ethertype {t:#06x}")),
    }
    s
}

/// A hex dump: offset, 16 bytes per line in hex, and ASCII.
pub fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        out.push_str(&format!("  {:04x}  ", i * 16));
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_print() {
        let m: MacAddr = "02:00:5E:10:00:01".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0x5e, 0x10, 0, 1]);
        assert_eq!(m.to_string(), "02:00:5e:10:00:01");
        assert_eq!("02-00-5e-10-00-01".parse::<MacAddr>().unwrap(), m);
        assert_eq!("02005e100001".parse::<MacAddr>().unwrap(), m);
        for bad in
            ["", "02:00:5e:10:00", "02:00:5e:10:00:01:02", "0g:00:00:00:00:00", "020:0:5e:10:00:01", "02005e10000é"]
        {
            let e = bad.parse::<MacAddr>().unwrap_err();
            assert!(e.to_string().contains("is not a MAC address"), "{bad}");
        }
        assert_eq!("0g:00:00:00:00:00".parse::<MacAddr>(), Err(MacAddrError::Digits("0g:00:00:00:00:00".into())));
        assert_eq!("02:00".parse::<MacAddr>(), Err(MacAddrError::Groups("02:00".into())));
    }

    #[test]
    fn tci_from_text() {
        assert_eq!("100".parse::<Tci>().unwrap(), Tci(100));
        let t: Tci = "100:5".parse().unwrap();
        assert_eq!((t.vlan_id(), t.priority(), t.dei()), (100, 5, false));
        assert_eq!("0".parse::<Tci>(), Err(TciError::VlanIdRange(0)));
        assert!("4095".parse::<Tci>().unwrap_err().to_string().contains("1 to 4094"));
        assert_eq!("10:8".parse::<Tci>(), Err(TciError::PriorityRange(8)));
        assert!("10:8".parse::<Tci>().unwrap_err().to_string().contains("0 to 7"));
        assert!("x".parse::<Tci>().unwrap_err().to_string().contains("is not a VLAN"));
        assert_eq!("10:p".parse::<Tci>(), Err(TciError::Priority("p".into())));
    }

    #[test]
    fn arp_round_trips_through_a_frame() {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let req = Arp::request(mac, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let f = req.to_frame(mac);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(Arp::from_frame(&f), Some(req));
        // The same packet behind an 802.1Q tag.
        let tagged = insert_vlan_tag(&f, 5);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 0x05]);
        assert_eq!(Arp::from_frame(&tagged), Some(req));
        assert_eq!(summarize(&f), "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP who-has 10.0.0.1 tell 10.0.0.2");
        assert_eq!(
            summarize(&tagged),
            "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff vlan 5 prio 0 ARP who-has 10.0.0.1 tell 10.0.0.2"
        );
        assert_eq!(Arp::from_frame(&f[..30]), None);
    }

    #[test]
    fn summaries() {
        let f = build_frame(MacAddr::BROADCAST, MacAddr([2, 0, 0, 0, 0, 9]), 0x88b5, b"hello");
        assert_eq!(summarize(&f), "02:00:00:00:00:09 > ff:ff:ff:ff:ff:ff ethertype 0x88b5");
        assert_eq!(summarize(&f[..10]), "runt frame of 10 bytes");
        assert_eq!(hexdump(b"AB"), "  0000  41 42                                             AB\n");
    }
}
