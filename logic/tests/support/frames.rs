//! Frames and capture files for the tests that compare capture programs
//! with libpcap's own filtering (`tcpdump -r FILE -w OUT EXPR`): crafted
//! headers (ARP, IPv4 with options and fragments, IPv6, TCP, UDP, ICMP,
//! 802.1Q and QinQ tags, LLC, runts) and those cut and changed at random.
//! Shared by `logic/tests/tcpdump.rs` and `client/tests/filter_expr.rs`
//! (which includes it by path).

#![allow(dead_code)]

use rawnic_logic::bpf::Insn;
use std::path::Path;
use std::process::Command;

/// What the filters are compiled and run on: Ethernet, 65535 bytes.
pub fn pcap_header() -> Vec<u8> {
    let mut h = Vec::new();
    for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

/// A capture file of `frames`, frame `i` stamped `i + 1` seconds.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = pcap_header();
    for (i, f) in frames.iter().enumerate() {
        for v in [i as u32 + 1, 0, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

/// The frames (by index) of capture file `path`, from their stamps.
pub fn read_stamps(path: &Path) -> Vec<usize> {
    let b = std::fs::read(path).unwrap();
    let (mut at, mut out) = (24, Vec::new());
    while at + 16 <= b.len() {
        let word = |o: usize| u32::from_le_bytes(b[at + o..at + o + 4].try_into().unwrap()) as usize;
        out.push(word(0) - 1);
        at += 16 + word(8);
    }
    out
}

pub fn tcpdump(args: &[&str]) -> Vec<u8> {
    let o = Command::new("tcpdump").args(args).output().expect("tcpdump (cargo make setup installs it)");
    assert!(o.status.success(), "tcpdump {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// `tcpdump -dd`'s `{ code, jt, jf, k },` lines.
pub fn parse_dd(text: &str) -> Vec<Insn> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('{'))
        .map(|l| {
            let n: Vec<u64> = l
                .trim_end_matches(['}', ',', ' '])
                .split(',')
                .map(|s| {
                    let s = s.trim();
                    s.strip_prefix("0x").map_or_else(|| s.parse().unwrap(), |h| u64::from_str_radix(h, 16).unwrap())
                })
                .collect();
            Insn::new(n[0] as u16, n[1] as u8, n[2] as u8, n[3] as u32)
        })
        .collect()
}

/// A small deterministic generator (xorshift), so a failure repeats.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub const ME: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub fn eth(dst: [u8; 6], tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&PEER);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A transport header: TCP (20 bytes, `flags`) or UDP (8), then `payload`.
pub fn transport(proto: u8, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        t.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        t.extend_from_slice(&[0, 0]);
    }
    t.extend_from_slice(payload);
    t
}

pub fn ipv4(ihl: u8, proto: u8, src: [u8; 4], dst: [u8; 4], frag: u16, ttl: u8, body: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; usize::from(ihl) * 4];
    ip[0] = 0x40 | ihl;
    let total = (ip.len() + body.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    ip.extend_from_slice(body);
    ip
}

pub fn ipv6(next: u8, src_last: u8, dst: [u8; 16], body: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(body.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next, 64]);
    let mut src = [0u8; 16];
    src[0] = 0xfe;
    src[1] = 0x80;
    src[15] = src_last;
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(body);
    ip
}

/// Headers of the kinds the expressions look at, in many combinations.
pub fn crafted() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let get = b"GET / HTTP/1.1\r\n";
    let hosts = [[10, 0, 0, 1], [192, 168, 1, 1], [224, 0, 0, 251], [255, 255, 255, 255]];
    for &(proto, sport, dport, flags) in &[
        (6u8, 1234u16, 80u16, 0x02u8),
        (6, 80, 40000, 0x12),
        (6, 22, 1500, 0x10),
        (17, 5353, 53, 0),
        (17, 53, 1999, 0),
    ] {
        for ihl in [5u8, 6, 15] {
            for (i, &dst) in hosts.iter().enumerate() {
                let body = transport(proto, sport, dport, flags, if dport == 80 { get } else { b"\x12\x34abcd" });
                for frag in [0u16, 0x4000, 0x2000, 0x0010] {
                    let ip = ipv4(ihl, proto, hosts[(i + 1) % 4], dst, frag, 64 >> i, &body);
                    v.push(eth(if i < 2 { ME } else { [0xff; 6] }, &[], 0x0800, &ip));
                }
                let ip = ipv4(ihl, proto, hosts[i], dst, 0, 1, &body);
                v.push(eth([1, 0, 0x5e, 0, 0, 0xfb], &[(0x8100, 5)], 0x0800, &ip));
                v.push(eth(ME, &[(0x88a8, 7), (0x8100, 5)], 0x0800, &ip));
            }
            let mut dst6 = [0u8; 16];
            dst6[0] = if ihl == 5 { 0xff } else { 0x20 };
            dst6[15] = 1;
            let body = transport(proto, sport, dport, flags, b"abcd");
            v.push(eth(ME, &[], 0x86dd, &ipv6(proto, 1, dst6, &body)));
            // A hop-by-hop header before the transport.
            let mut hbh = vec![proto, 0, 1, 4, 0, 0, 0, 0];
            hbh.extend_from_slice(&body);
            v.push(eth(ME, &[], 0x86dd, &ipv6(0, 2, dst6, &hbh)));
            v.push(eth(ME, &[(0x8100, 0x2005)], 0x86dd, &ipv6(proto, 3, dst6, &body)));
        }
    }
    for ty in [0u8, 8, 3] {
        v.push(eth(ME, &[], 0x0800, &ipv4(5, 1, hosts[0], hosts[1], 0, 64, &[ty, 0, 0, 0, 0, 1, 0, 1])));
        v.push(eth(ME, &[], 0x86dd, &ipv6(58, 4, [0xff; 16], &[128 + ty, 0, 0, 0])));
    }
    for op in [1u16, 2] {
        let mut arp = vec![0, 1, 8, 0, 6, 4];
        arp.extend_from_slice(&op.to_be_bytes());
        arp.extend_from_slice(&[0; 20]);
        v.push(eth([0xff; 6], &[], 0x0806, &arp));
        v.push(eth(ME, &[(0x8100, 9)], 0x0806, &arp));
    }
    // IP in GRE, an EtherType of its own, LLC (a length, not a type), MPLS.
    v.push(eth(ME, &[], 0x0800, &ipv4(5, 47, hosts[0], hosts[1], 0, 64, &[0, 0, 8, 0])));
    v.push(eth(ME, &[], 0x88b5, &[0x11, 0x22, 0x33]));
    v.push(eth(ME, &[], 46, &[0xaa, 0xaa, 3, 0, 0, 0, 8, 0]));
    v.push(eth(ME, &[], 0x8847, &[0, 0, 0x11, 64, 0x45, 0, 0, 20]));
    // Runts: every length up to past the Ethernet header.
    let whole = v[0].clone();
    for n in 0..20 {
        v.push(whole[..n].to_vec());
    }
    v
}

/// `crafted` frames, and as many again cut short or with bytes changed
/// at random.
pub fn frames(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut v = crafted();
    let n = v.len();
    for _ in 0..n {
        let mut f = v[rng.below(n)].clone();
        match rng.below(3) {
            0 if !f.is_empty() => f.truncate(rng.below(f.len())),
            1 if !f.is_empty() => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(f.len().min(80));
                    f[i] = rng.next() as u8;
                }
            }
            _ => f.extend((0..rng.below(300)).map(|_| rng.next() as u8)),
        }
        v.push(f);
    }
    v
}

/// Expressions that compile to each kind of instruction tcpdump emits
/// (`logic/tests/tcpdump.rs`; `client/tests/filter_expr.rs` compiles them
/// too, but the two its compiler refuses).
pub const TCPDUMP_EXPRESSIONS: &[&str] = &[
    "arp",
    "arp[6:2] = 2",
    "ip",
    "ip6",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "udp port 53",
    "tcp port 80",
    "tcp dst portrange 1-1023",
    "portrange 1000-2000",
    "host 10.0.0.1",
    "src host 192.168.1.1 and dst port 1500",
    "net 10.0.0.0/8 or net 224.0.0.0/4",
    "ip6 host fe80::1",
    "ether broadcast",
    "ether multicast",
    "ether src 02:00:00:00:00:02 and ether dst 02:00:00:00:00:01",
    "ether proto 0x88b5",
    "ip multicast",
    "ip6 multicast",
    "vlan",
    "vlan 5",
    "vlan and udp port 53",
    "vlan 7 and vlan 5 and ip",
    "mpls",
    "llc",
    "not ip and not ip6",
    "ip proto 47",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn|tcp-ack",
    "icmp[icmptype] = icmp-echo",
    "ip[6:2] & 0x1fff = 0",
    "ip[0] & 0xf > 5",
    "ip[8] < 32",
    "len > 100",
    "less 64",
    "greater 200",
    "len - 14 = ip[2:2]",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "udp[8:2] = 0x1234",
    "ip[9] * 3 - 1 > 20",
    "ip[9] / 2 = 3",
    "ip[9] % 4 = 2",
    "ip[9] ^ 1 = 7",
    "ip[9] << 2 = 68",
    "ip[9] >> 1 = 8",
    "ip[9] & 7 = 6 or ip[9] | 1 = 17",
    "-ip[9] = 4294967290",
    "ip[ip[0] & 0xf] = 0",
    "ether[len - 1] & 1 = 1",
    "len / (ip[9] - 17) = 0 or len % 7 = 3",
];
