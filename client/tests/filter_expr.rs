//! Filter expressions compiled by `rawnic_client::compile_filter` take
//! the frames libpcap takes: each program is checked as the driver checks
//! it, run on the frames of `logic/tests/tcpdump.rs` (crafted headers and
//! those cut and changed at random), and its answers compared, frame by
//! frame, with tcpdump filtering the same capture file with the same
//! expression (`tcpdump -r FILE -w OUT EXPR`). Expressions libpcap refuses
//! are refused too. Needs tcpdump (`cargo make setup` installs it); no
//! network.

use rawnic_client::{FILTER_TAKE, compile_filter};
use rawnic_logic::bpf::Program;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[path = "../../logic/tests/support/frames.rs"]
mod frames;
use frames::*;

/// What is compared besides `logic/tests/tcpdump.rs`'s expressions (but
/// `mpls` and `llc`, which the compiler refuses; see `expressions`): each
/// primitive and qualifier the compiler handles, in combinations where
/// libpcap's order of tests decides what a short frame gives.
const OWN: &[&str] = &[
    "",
    // Link layer.
    "broadcast or multicast",
    "ether host 02:00:00:00:00:01",
    "ether dst 02:00:00:00:00:01 and not ether src host 02-00-00-00-00-02",
    "ether src or dst 01:00:5e:00:00:fb",
    "ether proto 0x0806 or ether proto 0x86dd",
    "ether proto 170",
    "ether proto \\arp",
    "ether[12:2] = 0x8100 and ether[14:2] & 0xfff = 5",
    "ether[60] = 0 or arp",
    // VLANs move what follows.
    "vlan 5 and ip host 10.0.0.1",
    "vlan and tcp port 80",
    "vlan or ip",
    "ip or vlan and ip",
    "vlan 7 and vlan 5 and tcp",
    "vlan (9) and arp",
    "vlan and ip6 and udp port 5353",
    "vlan and tcp[13] = 2",
    "not vlan 5 and udp",
    // IPv4 and ARP addresses, nets, inherited qualifiers.
    "dst host 10.0.0.1",
    "src or dst host 192.168.1.1",
    "src and dst net 10.0.0.0/8",
    "net 192.168.1.0 mask 255.255.255.0",
    "net 192.168",
    "net 10",
    "host 10.0.0",
    "ip host 255.255.255.255 or arp",
    "arp host 0.0.0.0",
    "rarp or arp dst host 0.0.0.0",
    "not host 10.0.0.1 and 192.168.1.1",
    "host (10.0.0.1 or 224.0.0.251)",
    "ip src net 224.0.0.0/4 and not dst 255.255.255.255",
    "net 0.0.0.0/0",
    // IPv6.
    "ip6 net fe80::/10",
    "ip6 net fe80::/64 or ip6 dst net ff00::/8",
    "ip6 src host fe80::1 or src fe80::3",
    "dst host ff00::1",
    "ip6 dst net 2000::/3 and tcp",
    "ip6 proto 17",
    "proto 6",
    "ip proto 6 or ip6 proto 6",
    "ip proto \\udp",
    "ip6[6] = 58 and ip6[40] = 129",
    "icmp6 and icmp6[icmp6type] = icmp6-echo",
    "icmp6[0] = 131",
    // Ports and transport headers.
    "port 53 or 80",
    "tcp port (80 or 22)",
    "src port 1234",
    "udp src port 5353",
    "tcp src or dst port 80",
    "tcp src and dst port 80",
    "dst portrange 50-60",
    "udp portrange 53",
    "portrange 1500-1",
    "sctp or igmp or pim or esp or ah",
    "udp[0:2] = 5353",
    "tcp[13] = 0x12",
    "tcp[tcpflags] & tcp-syn != 0 and not tcp[tcpflags] & tcp-ack != 0",
    "icmp[icmptype] != icmp-echo and icmp[icmpcode] = 0",
    "tcp[100] = 0 or udp",
    "not tcp[100] = 0",
    "udp port 53 and len > 60",
    "ip[6:2] & 0x1fff != 0",
    // Arithmetic: precedence, libpcap's `%` and `^`, the tests a right
    // side's loads lose.
    "ip[9] % 4 + 1 = 3",
    "ip[9] ^ 1 + 1 = 6",
    "ip[9] + 1 * 2 = 19",
    "ip[9] - 1 - 1 = 15",
    "ip[9] + tcp[0] = 6",
    "5 = ip[9] - 1",
    "ip[2:2] - len < 100",
    "len >= 64 and len <= 100",
    "less 60 or greater 400",
    "-len + 100 > 50",
    "ip[0:4] & 0xff = 0",
    "not ether[4294967295:4] = 0 or arp",
    "ip[9] << (ip[9] - 16) = 2",
    "5 << (20 + 20) = 0 and ip",
    "ether[0] & 1 != 0 and ether[0:4] >> 24 != 0xff",
    "(ip[9] & 0xf) > 5 and (ip[9]) < 17",
    // Boolean structure: `and` and `or` bind alike, from the left.
    "not (tcp or udp)",
    "tcp and not port 80",
    "tcp or udp and not icmp",
    "! tcp && ! udp || arp",
    "not not ip",
    "((ip) and (not (udp)))",
];

/// `logic/tests/tcpdump.rs`'s expressions the compiler takes, then `OWN`.
fn expressions() -> impl Iterator<Item = &'static str> {
    TCPDUMP_EXPRESSIONS.iter().copied().filter(|e| !matches!(*e, "mpls" | "llc")).chain(OWN.iter().copied())
}

/// Expressions libpcap refuses: the compiler refuses them too.
const REFUSED: &[&str] = &[
    "port 70000",
    "net 10.0.0.1/8",
    "net 10.0.0.0 mask 255.0.0.0 and host 10.0.0.0/8",
    "vlan 5000",
    "ip[0:3] = 1",
    "ip[9] / 0 = 1",
    "ip[9] % 0 = 1",
    "tcp proto 6",
    "ether host 10.0.0.1",
    "ip host 02:00:00:00:00:01",
    "tcp host 10.0.0.1",
    "ip port 80",
    "host fe80::/10",
    "ip6 net fe80::1/10",
    "ip6 host 10.0.0.1",
    "src proto 6",
    "udp or 53",
    "tcp and",
    "(tcp",
    "ip[",
    "port 80 443",
    "ip[1] << 32 = 0",
    // libpcap judges a divisor or shift by the constant its code starts
    // with (here the index 0 of ip[0]), and its optimizer refuses these.
    "len / ip[0] = 1",
    "len << ip[40] = 1",
    "len << (20 + 20) = 0",
    "ip[0] / (1 - 1) = 0",
];

fn tcpdump_takes(all: &Path, out: &Path, expr: &str) -> Vec<usize> {
    tcpdump_takes_with(all, out, expr, &[])
}

/// `tcpdump_takes` with more options (`-O`: libpcap's code unoptimized).
fn tcpdump_takes_with(all: &Path, out: &Path, expr: &str, opts: &[&str]) -> Vec<usize> {
    let o = Command::new("tcpdump")
        .args(["-r", all.to_str().unwrap(), "-w", out.to_str().unwrap()])
        .args(opts)
        .args(["--", expr])
        .output()
        .expect("tcpdump (cargo make setup installs it)");
    assert!(o.status.success(), "tcpdump {expr:?}: {}", String::from_utf8_lossy(&o.stderr));
    read_stamps(out)
}

#[test]
fn compiled_filters_take_what_libpcap_takes() {
    let dir = std::env::temp_dir().join(format!("rawnic-filter-expr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(0x5950_0000_0000_0001);
    let frames = frames(&mut rng);
    let all = dir.join("frames.pcap");
    write_pcap(&all, &frames);
    let out = dir.join("taken.pcap");
    let started = Instant::now();
    let (mut runs, mut taken, mut stripped_runs) = (0usize, 0usize, 0usize);
    for expr in expressions() {
        let insns = compile_filter(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        let p = Program::new(insns.iter().copied()).unwrap_or_else(|r| panic!("{expr:?}: refused: {r:?}"));
        let theirs = tcpdump_takes(&all, &out, expr);
        let ours: Vec<usize> = (0..frames.len()).filter(|&i| p.run(&frames[i][..]) != 0).collect();
        assert_eq!(ours, theirs, "{expr:?}: the frames taken (by index) differ from libpcap's; program {insns:?}");
        for (i, f) in frames.iter().enumerate() {
            let r = p.run(&f[..]);
            assert!(r == 0 || r == FILTER_TAKE, "{expr:?}: frame {i}: returned {r}");
            // A tagged frame whose tag the NIC stripped: the driver runs
            // the program on it with the tag put back, so it is taken as
            // libpcap takes the tagged frame.
            if let (Some([0x81, 0x00, t0, t1]), true) = (f.get(12..16).and_then(|t| t.first_chunk()), f.len() >= 16) {
                let tci = u16::from_be_bytes([*t0, *t1]);
                if tci != 0 {
                    let stripped = [&f[..12], &f[16..]].concat();
                    let got = p.run_stripped(&stripped[..], tci);
                    assert_eq!(got != 0, theirs.contains(&i), "{expr:?}: frame {i} with its tag stripped");
                    stripped_runs += 1;
                }
            }
        }
        runs += frames.len();
        taken += ours.len();
    }
    let took = started.elapsed();
    eprintln!(
        "{} expressions x {} frames: {runs} answers compared with libpcap's ({taken} taken), {stripped_runs} on stripped tags, in {took:.1?}",
        expressions().count(),
        frames.len()
    );
    assert!(expressions().count() >= 50);
    assert!(taken > runs / 20 && taken < runs / 2, "{taken} of {runs}");
    // Refused by both.
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, pcap_header()).unwrap();
    for expr in REFUSED {
        let e = compile_filter(expr).expect_err(expr);
        assert!(!e.is_empty() && e.len() < 200, "{expr:?}: {e}");
        let o = Command::new("tcpdump").args(["-r", empty.to_str().unwrap(), "-d", "--", expr]).output().unwrap();
        assert!(!o.status.success(), "{expr:?}: libpcap compiles it, and rawnic refuses it: {e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A random expression over the supported primitives: `and`, `or`, `not`
/// and parentheses, `vlan` anywhere (moving what follows), and relations
/// over random arithmetic on loads of every protocol.
struct Gen(Rng);

impl Gen {
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.0.below(v.len())]
    }

    fn arith(&mut self, depth: u32) -> String {
        match self.0.below(if depth > 2 { 3 } else { 6 }) {
            0 => format!("{}", [0u64, 1, 2, 6, 17, 0x45, 0xff, 0x1fff, 4294967295][self.0.below(9)]),
            1 => "len".into(),
            2 | 3 => {
                let p = self.pick(&["ether", "ip", "ip6", "arp", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp"]);
                let idx = if self.0.below(4) == 0 { self.arith(depth + 1) } else { self.0.below(48).to_string() };
                let size = self.pick(&["", ":1", ":2", ":4"]);
                format!("{p}[{idx}{size}]")
            }
            4 => format!("-{}", self.arith(depth + 1)),
            _ => {
                let op = self.pick(&["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]);
                let rhs = match op {
                    "/" | "%" if self.0.below(2) == 0 => (1 + self.0.below(7)).to_string(),
                    "<<" | ">>" if self.0.below(2) == 0 => self.0.below(32).to_string(),
                    _ => self.arith(depth + 1),
                };
                let e = format!("{} {op} {rhs}", self.arith(depth + 1));
                if self.0.below(2) == 0 { format!("({e})") } else { e }
            }
        }
    }

    fn atom(&mut self) -> String {
        if self.0.below(4) == 0 {
            let rel = self.pick(&["=", "!=", "<", "<=", ">", ">="]);
            return format!("{} {rel} {}", self.arith(0), self.arith(0));
        }
        self.pick(&[
            "ip",
            "ip6",
            "arp",
            "rarp",
            "tcp",
            "udp",
            "icmp",
            "icmp6",
            "sctp",
            "vlan",
            "vlan 5",
            "vlan 7",
            "vlan 9",
            "host 10.0.0.1",
            "src net 192.168.0.0/16",
            "dst host ff00::1",
            "ip6 src fe80::2",
            "ip6 net fe80::/64",
            "port 53",
            "tcp dst port 80",
            "udp src port 5353",
            "portrange 1000-2000",
            "tcp portrange 22-80",
            "ether broadcast",
            "ether multicast",
            "ether src 02:00:00:00:00:02",
            "ether dst host 02:00:00:00:00:01",
            "ip multicast",
            "ip6 multicast",
            "ip proto 47",
            "ip6 proto 6",
            "proto 17",
            "ether proto 0x88b5",
            "ether proto 0x8100",
            "less 64",
            "greater 100",
            "tcp[tcpflags] & tcp-syn != 0",
            "icmp[icmptype] = icmp-echo",
            "arp host 0.0.0.0",
            "net 224.0.0.0/4",
            "dst 255.255.255.255",
            "src host 10.0.0.1 or 192.168.1.1",
            "ether proto 46",
            "ip host 224.0.0.251",
            "tcp src port 80 or 22",
            "net 10",
        ])
        .into()
    }

    fn expr(&mut self, depth: u32) -> String {
        match self.0.below(if depth > 3 { 1 } else { 6 }) {
            0 | 1 => self.atom(),
            2 => format!("not {}", self.expr(depth + 1)),
            3 => format!("({})", self.expr(depth + 1)),
            _ => {
                let j = self.pick(&["and", "or", "&&", "||"]);
                format!("{} {j} {}", self.expr(depth + 1), self.expr(depth + 1))
            }
        }
    }
}

#[test]
fn random_expressions_take_what_libpcap_takes() {
    let dir = std::env::temp_dir().join(format!("rawnic-filter-random-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let frames = frames(&mut Rng(0x5950_0000_0000_0002));
    let all = dir.join("frames.pcap");
    write_pcap(&all, &frames);
    let out = dir.join("taken.pcap");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, pcap_header()).unwrap();
    let n: usize = std::env::var("RAWNIC_FILTER_RANDOM").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut g = Gen(Rng(0x0fe0_1234_5678_9abd));
    let started = Instant::now();
    let (mut compared, mut refused, mut empty_ones, mut differs) = (0, 0, 0, Vec::new());
    // RAWNIC_FILTER_ONLY=EXPR: that expression alone (to look into one).
    let only = std::env::var("RAWNIC_FILTER_ONLY").ok();
    for _ in 0..if only.is_some() { 1 } else { n } {
        let expr = only.clone().unwrap_or_else(|| g.expr(0));
        let libpcap =
            Command::new("tcpdump").args(["-r", empty.to_str().unwrap(), "-d", "--", &expr]).output().unwrap();
        let ours = compile_filter(&expr);
        // libpcap's optimizer refuses what can take nothing: the program
        // takes none of the frames.
        if String::from_utf8_lossy(&libpcap.stderr).contains("expression rejects all packets") {
            let insns = ours.unwrap_or_else(|e| panic!("{expr:?}: {e}"));
            let p = Program::new(insns.iter().copied()).unwrap_or_else(|r| panic!("{expr:?}: refused: {r:?}"));
            assert!(frames.iter().all(|f| p.run(&f[..]) == 0), "{expr:?} takes a frame, libpcap none");
            empty_ones += 1;
            continue;
        }
        if !libpcap.status.success() {
            assert!(
                ours.is_err(),
                "{expr:?}: libpcap refuses it ({}), rawnic compiles it",
                String::from_utf8_lossy(&libpcap.stderr)
            );
            refused += 1;
            continue;
        }
        let insns = ours.unwrap_or_else(|e| panic!("{expr:?}: libpcap compiles it, rawnic refuses it: {e}"));
        let p = Program::new(insns.iter().copied()).unwrap_or_else(|r| panic!("{expr:?}: refused: {r:?}"));
        let ours: Vec<usize> = (0..frames.len()).filter(|&i| p.run(&frames[i][..]) != 0).collect();
        // Every frame libpcap's own code (unoptimized) takes. libpcap's
        // optimizer drops loads whose value cannot change the answer, and
        // so takes some frames too short for them; this compiler drops
        // such loads as far as its jump threading finds them, and then
        // differs from it on few frames, always too short for a load of
        // libpcap's own code.
        let unoptimized = tcpdump_takes_with(&all, &out, &expr, &["-O"]);
        let optimized = tcpdump_takes(&all, &out, &expr);
        let missing: Vec<_> = unoptimized.iter().filter(|i| !ours.contains(i)).collect();
        assert!(missing.is_empty(), "{expr:?}: libpcap's unoptimized code takes frames {missing:?}, rawnic not");
        let set = |v: &[usize]| {
            let mut s = vec![false; frames.len()];
            v.iter().for_each(|&i| s[i] = true);
            s
        };
        let (o, opt, unopt) = (set(&ours), set(&optimized), set(&unoptimized));
        let (mut more, mut fewer) = (0, 0);
        for i in 0..frames.len() {
            assert!(o[i] == opt[i] || !unopt[i], "{expr:?}: frame {i}");
            more += usize::from(o[i] && !opt[i]);
            fewer += usize::from(!o[i] && opt[i]);
        }
        if more + fewer > 0 {
            eprintln!("{expr:?}: {fewer} frames fewer, {more} more than libpcap's optimized code");
            differs.push((more, fewer));
        }
        compared += 1;
    }
    assert!(
        differs.len() * 40 <= compared.max(40),
        "{} of {compared} expressions differ from libpcap's optimized code",
        differs.len()
    );
    eprintln!(
        "{n} random expressions: {compared} compared on {} frames, {} of them not as libpcap's optimized code ({} taking fewer frames, {} taking more; {} frames fewer, {} more), {empty_ones} that take nothing, {refused} refused by both, in {:.1?}",
        frames.len(),
        differs.len(),
        differs.iter().filter(|d| d.1 > 0).count(),
        differs.iter().filter(|d| d.0 > 0).count(),
        differs.iter().map(|d| d.1).sum::<usize>(),
        differs.iter().map(|d| d.0).sum::<usize>(),
        started.elapsed()
    );
    std::fs::remove_dir_all(&dir).ok();
}
