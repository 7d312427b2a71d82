//! The primitives of pcap-filter(7) for Ethernet, as the tests libpcap
//! (1.10) generates for them, in the same order: which loads a frame
//! reaches decides whether a short frame is taken, so the order is part
//! of the meaning.

use super::Fail;
use super::codegen::{
    ALU_ADD_X, ALU_NEG, Bool, Jump, LD_IMM, LD_LEN, LDX_MEM, LDX_MSH, ST, TAX, Test, cmp, eq, insn, ld_abs, ld_ind,
};
use rawnic_proto::BpfInsn;

/// A protocol qualifier (`ip`, `tcp`, `ether`...); `Default` when none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proto {
    Default,
    Link,
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Ah,
    Esp,
}

impl Proto {
    pub fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            "ether" | "link" => Proto::Link,
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "arp" => Proto::Arp,
            "rarp" => Proto::Rarp,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            "icmp" => Proto::Icmp,
            "icmp6" => Proto::Icmp6,
            "igmp" => Proto::Igmp,
            "igrp" => Proto::Igrp,
            "pim" => Proto::Pim,
            "vrrp" => Proto::Vrrp,
            "carp" => Proto::Carp,
            "ah" => Proto::Ah,
            "esp" => Proto::Esp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Default => "",
            Proto::Link => "ether",
            Proto::Ip => "ip",
            Proto::Ip6 => "ip6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Igmp => "igmp",
            Proto::Igrp => "igrp",
            Proto::Pim => "pim",
            Proto::Vrrp => "vrrp",
            Proto::Carp => "carp",
            Proto::Ah => "ah",
            Proto::Esp => "esp",
        }
    }

    /// The IP protocol number of a transport qualifier that takes ports.
    pub fn port_proto(self) -> Option<Option<u32>> {
        match self {
            Proto::Default => Some(None),
            Proto::Tcp => Some(Some(TCP)),
            Proto::Udp => Some(Some(UDP)),
            Proto::Sctp => Some(Some(SCTP)),
            _ => None,
        }
    }
}

/// A direction qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    Default,
    Src,
    Dst,
    Or,
    And,
}

const ETH_IP: u32 = 0x0800;
const ETH_IP6: u32 = 0x86dd;
const ETH_ARP: u32 = 0x0806;
const ETH_RARP: u32 = 0x8035;
const TCP: u32 = 6;
const UDP: u32 = 17;
const SCTP: u32 = 132;
const FRAGMENT: u32 = 44;
const ETHERMTU: u32 = 1500;

/// Where the headers are: the EtherType, and the link layer's payload.
/// Each `vlan` moves both 4 bytes on, for what follows it in the text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offsets {
    pub linktype: u32,
    pub linkpl: u32,
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets { linktype: 12, linkpl: 14 }
    }
}

/// `a or b` and `a and b` for a direction: the source's test, then the
/// destination's.
fn by_dir(dir: Dir, src: impl Fn() -> Bool, dst: impl Fn() -> Bool) -> Bool {
    match dir {
        Dir::Src => src(),
        Dir::Dst => dst(),
        Dir::And => Bool::and(src(), dst()),
        Dir::Default | Dir::Or => Bool::or(src(), dst()),
    }
}

impl Offsets {
    /// The frame's EtherType (or, up to 1500, 802.3 length) is `p`.
    pub fn linktype(&self, p: u32) -> Result<Bool, Fail> {
        let llc = || Bool::not(cmp(2, self.linktype, u32::MAX, Jump::Gt(ETHERMTU)));
        Ok(match p {
            // OSI, IP over 802.2, NetBEUI: DSAP and SSAP.
            0x06 | 0xfe | 0xf0 => Bool::and(llc(), eq(2, self.linkpl, (p << 8) | p)),
            0xe0 | 0x809b | 0x80f3 => {
                return Err(Fail::whole(format!(
                    "EtherType or SAP {p:#x} (IPX, AppleTalk) is not supported: its 802.2 and SNAP encapsulations are not compiled"
                )));
            }
            p if p <= ETHERMTU => Bool::and(llc(), eq(1, self.linktype + 2, p)),
            p => eq(2, self.linktype, p),
        })
    }

    fn ip(&self) -> Bool {
        eq(2, self.linktype, ETH_IP)
    }

    fn ip6(&self) -> Bool {
        eq(2, self.linktype, ETH_IP6)
    }

    /// `ip[6:2] & 0x1fff = 0`: not a fragment after the first.
    fn first_fragment(&self) -> Bool {
        Bool::not(cmp(2, self.linkpl + 6, u32::MAX, Jump::Set(0x1fff)))
    }

    /// An IPv4 (or ARP) address at `src_off` or `dst_off` of the payload.
    fn hostop(&self, addr: u32, mask: u32, dir: Dir, ethertype: u32, src_off: u32, dst_off: u32) -> Bool {
        // A mask of 0 tests nothing: libpcap's optimizer drops the load,
        // so a frame too short for it is still taken.
        let one = |off: u32| {
            let ty = eq(2, self.linktype, ethertype);
            if mask == 0 { ty } else { Bool::and(ty, cmp(4, self.linkpl + off, mask, Jump::Eq(addr))) }
        };
        by_dir(dir, || one(src_off), || one(dst_off))
    }

    /// `host`/`net` of an IPv4 address and mask.
    pub fn host4(&self, addr: u32, mask: u32, proto: Proto, dir: Dir, what: &str) -> Result<Bool, Fail> {
        Ok(match proto {
            Proto::Default => {
                let ip = self.hostop(addr, mask, dir, ETH_IP, 12, 16);
                let arp = self.hostop(addr, mask, dir, ETH_ARP, 14, 24);
                let rarp = self.hostop(addr, mask, dir, ETH_RARP, 14, 24);
                Bool::or(Bool::or(ip, arp), rarp)
            }
            Proto::Ip => self.hostop(addr, mask, dir, ETH_IP, 12, 16),
            Proto::Arp => self.hostop(addr, mask, dir, ETH_ARP, 14, 24),
            Proto::Rarp => self.hostop(addr, mask, dir, ETH_RARP, 14, 24),
            Proto::Link => return Err(Fail::whole(format!("'ether' cannot qualify an IPv4 {what}"))),
            Proto::Ip6 => return Err(Fail::whole("'ip6' cannot qualify an IPv4 address")),
            p => return Err(Fail::whole(format!("'{}' cannot qualify a {what}", p.name()))),
        })
    }

    /// `host`/`net` of an IPv6 address and mask.
    pub fn host6(&self, addr: [u8; 16], mask: [u8; 16], proto: Proto, dir: Dir, what: &str) -> Result<Bool, Fail> {
        if !matches!(proto, Proto::Default | Proto::Ip6) {
            return Err(Fail::whole(format!("'{}' cannot qualify an IPv6 {what}", proto.name())));
        }
        let word = |b: &[u8; 16], i: usize| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let one = |off: u32| {
            // The words from the last, each and-ed before those after it;
            // a word of mask 0 tests nothing (as above).
            let mut words: Option<Bool> = None;
            for i in (0..4).rev() {
                let m = word(&mask, i);
                if m != 0 {
                    let w = cmp(4, self.linkpl + off + 4 * i as u32, m, Jump::Eq(word(&addr, i)));
                    words = Some(match words {
                        Some(after) => Bool::and(w, after),
                        None => w,
                    });
                }
            }
            match words {
                Some(w) => Bool::and(self.ip6(), w),
                None => self.ip6(),
            }
        };
        Ok(by_dir(dir, || one(8), || one(24)))
    }

    /// `ether host`: a MAC address at 6 (source) or 0 (destination),
    /// compared as libpcap does: the last 4 bytes, then the first 2.
    pub fn ehost(mac: [u8; 6], dir: Dir) -> Bool {
        let one = |off: u32| {
            Bool::and(
                eq(4, off + 2, u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]])),
                eq(2, off, u32::from(u16::from_be_bytes([mac[0], mac[1]]))),
            )
        };
        by_dir(dir, || one(6), || one(0))
    }

    /// The 2 bytes at `off` of an IPv4 payload: `ldxb 4*([linkpl]&0xf)`,
    /// `ldh [x + linkpl + off]`.
    fn port4(&self, off: u32, jump: Jump) -> Bool {
        Bool::Test(Test { code: vec![insn(LDX_MSH, self.linkpl), ld_ind(2, self.linkpl + off)], jump })
    }

    /// The 2 bytes at `off` of an IPv6 payload (no extension headers).
    fn port6(&self, off: u32, jump: Jump) -> Bool {
        cmp(2, self.linkpl + 40 + off, u32::MAX, jump)
    }

    /// `port` or `portrange` (`lo..=hi`), IPv6 first, then IPv4.
    pub fn ports(&self, lo: u32, hi: u32, range: bool, ipproto: Option<u32>, dir: Dir) -> Bool {
        let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
        let atom = |v6: bool, off: u32| {
            let t = |j| if v6 { self.port6(off, j) } else { self.port4(off, j) };
            if range { Bool::and(t(Jump::Ge(lo)), Bool::not(t(Jump::Gt(hi)))) } else { t(Jump::Eq(lo)) }
        };
        let op = |v6: bool, p: u32| {
            let ports = by_dir(dir, || atom(v6, 0), || atom(v6, 2));
            if v6 {
                Bool::and(eq(1, self.linkpl + 6, p), ports)
            } else {
                Bool::and(Bool::and(eq(1, self.linkpl + 9, p), self.first_fragment()), ports)
            }
        };
        let family = |v6: bool| {
            let body = match ipproto {
                Some(p) => op(v6, p),
                None => Bool::or(Bool::or(op(v6, TCP), op(v6, UDP)), op(v6, SCTP)),
            };
            Bool::and(if v6 { self.ip6() } else { self.ip() }, body)
        };
        Bool::or(family(true), family(false))
    }

    /// `proto N` under qualifier `p`.
    pub fn proto(&self, v: u32, p: Proto) -> Result<Bool, Fail> {
        Ok(match p {
            Proto::Default => Bool::or(self.proto(v, Proto::Ip)?, self.proto(v, Proto::Ip6)?),
            Proto::Link => self.linktype(v)?,
            Proto::Ip => Bool::and(self.ip(), eq(1, self.linkpl + 9, v)),
            Proto::Ip6 => {
                let frag = Bool::and(eq(1, self.linkpl + 6, FRAGMENT), eq(1, self.linkpl + 40, v));
                Bool::and(self.ip6(), Bool::or(eq(1, self.linkpl + 6, v), frag))
            }
            Proto::Arp | Proto::Rarp => {
                return Err(Fail::whole(format!("'{} proto': {} does not carry another protocol", p.name(), p.name())));
            }
            p => return Err(Fail::whole(format!("'{} proto' means nothing", p.name()))),
        })
    }

    /// A protocol alone: `ip`, `tcp`, `arp`...
    pub fn abbrev(&self, p: Proto) -> Result<Bool, Fail> {
        match p {
            Proto::Tcp => self.proto(TCP, Proto::Default),
            Proto::Udp => self.proto(UDP, Proto::Default),
            Proto::Sctp => self.proto(SCTP, Proto::Default),
            Proto::Icmp => self.proto(1, Proto::Ip),
            Proto::Igmp => self.proto(2, Proto::Ip),
            Proto::Igrp => self.proto(9, Proto::Ip),
            Proto::Pim => self.proto(103, Proto::Default),
            Proto::Vrrp | Proto::Carp => self.proto(112, Proto::Ip),
            Proto::Ah => self.proto(51, Proto::Default),
            Proto::Esp => self.proto(50, Proto::Default),
            Proto::Icmp6 => self.proto(58, Proto::Ip6),
            Proto::Ip => Ok(self.ip()),
            Proto::Ip6 => Ok(self.ip6()),
            Proto::Arp => self.linktype(ETH_ARP),
            Proto::Rarp => self.linktype(ETH_RARP),
            Proto::Link | Proto::Default => {
                Err(Fail::whole("'ether' alone is not a test: say what of it (host, proto...)"))
            }
        }
    }

    /// `vlan [N]`: a VLAN tag (TPID 0x8100, 0x88a8 or 0x9100) of VLAN `n`;
    /// what follows in the text looks past the tag.
    pub fn vlan(&mut self, n: Option<u32>) -> Result<Bool, Fail> {
        let tpid = Bool::or(
            Bool::or(eq(2, self.linktype, 0x8100), eq(2, self.linktype, 0x88a8)),
            eq(2, self.linktype, 0x9100),
        );
        let b = match n {
            Some(n) if n > 0xfff => return Err(Fail::whole(format!("VLAN {n} is greater than the largest, 4095"))),
            Some(n) => Bool::and(tpid, cmp(2, self.linkpl, 0xfff, Jump::Eq(n))),
            None => tpid,
        };
        self.linktype += 4;
        self.linkpl += 4;
        Ok(b)
    }

    /// `[proto] broadcast`.
    pub fn broadcast(p: Proto) -> Result<Bool, Fail> {
        match p {
            Proto::Default | Proto::Link => Ok(Self::ehost([0xff; 6], Dir::Dst)),
            Proto::Ip => Err(Fail::whole(
                "'ip broadcast' is not supported: it needs the network's mask, which rawnic does not know",
            )),
            p => Err(Fail::whole(format!("'{} broadcast' means nothing: only ether and ip have broadcasts", p.name()))),
        }
    }

    /// `[proto] multicast`.
    pub fn multicast(&self, p: Proto) -> Result<Bool, Fail> {
        match p {
            Proto::Default | Proto::Link => Ok(cmp(1, 0, u32::MAX, Jump::Set(1))),
            Proto::Ip => Ok(Bool::and(self.ip(), cmp(1, self.linkpl + 16, u32::MAX, Jump::Ge(224)))),
            Proto::Ip6 => Ok(Bool::and(self.ip6(), eq(1, self.linkpl + 24, 255))),
            p => Err(Fail::whole(format!(
                "'{} multicast' means nothing: only ether, ip and ip6 have multicasts",
                p.name()
            ))),
        }
    }

    /// `p[index:size]`.
    pub fn load(&self, p: Proto, index: Arith, size: u32) -> Result<Arith, Fail> {
        let size = match size {
            1 | 2 | 4 => size as u8,
            _ => return Err(Fail::whole(format!("a load of {size} bytes: the size must be 1, 2 or 4"))),
        };
        let Arith { e, checks, first_imm } = index;
        let index = Box::new(e);
        Ok(match p {
            Proto::Link => Arith { e: AExpr::Load { base: Base::Abs(0), index, size }, checks, first_imm },
            Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp => Arith {
                e: AExpr::Load { base: Base::Abs(self.linkpl), index, size },
                checks: Some(Bool::and_opt(checks, self.abbrev(p)?)),
                first_imm,
            },
            Proto::Icmp6 => {
                let c = Bool::and(Bool::and_opt(checks, self.ip6()), eq(1, self.linkpl + 6, 58));
                Arith { e: AExpr::Load { base: Base::Abs(self.linkpl + 40), index, size }, checks: Some(c), first_imm }
            }
            Proto::Ah | Proto::Esp | Proto::Default => {
                return Err(Fail::whole(format!("'{}[...]' is not supported", p.name())));
            }
            _ => {
                let inner = Bool::and_opt(checks, Bool::and(self.abbrev(p)?, self.first_fragment()));
                Arith {
                    e: AExpr::Load { base: Base::Ip4Payload(self.linkpl), index, size },
                    checks: Some(Bool::and(self.ip(), inner)),
                    first_imm,
                }
            }
        })
    }
}

/// Where `proto[...]` loads from: a fixed offset, or the IPv4 payload
/// (past the header's own length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    Abs(u32),
    Ip4Payload(u32),
}

/// An arithmetic expression's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AExpr {
    Const(u32),
    Len,
    Load {
        base: Base,
        index: Box<AExpr>,
        size: u8,
    },
    /// The ALU operation (its `bpf.h` bits, 0x00 to 0xa0) on two values.
    Bin(u16, Box<AExpr>, Box<AExpr>),
    Neg(Box<AExpr>),
}

/// An arithmetic expression and the protocol tests its loads need (as
/// libpcap keeps them: a binary operation keeps its left side's only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Arith {
    pub e: AExpr,
    pub checks: Option<Bool>,
    /// The constant libpcap's code for the expression starts by loading,
    /// if it does (its first statement, before any folding): libpcap
    /// judges a divisor or a shift by it (`len / ip[0]` is "division by
    /// zero" there, as `ip[0]` starts with `ld #0`).
    pub first_imm: Option<u32>,
}

/// `BPF_ALU | op | BPF_K` or `BPF_X`.
fn alu(op: u16, x: bool) -> u16 {
    0x04 | op | if x { 0x08 } else { 0 }
}

/// Code that leaves `e`'s value in A, with scratch words from `depth` on.
fn eval(e: &AExpr, depth: u32, out: &mut Vec<BpfInsn>) -> Result<(), Fail> {
    if depth as usize >= rawnic_logic::bpf::MEM_WORDS {
        return Err(Fail::whole("the arithmetic is nested too deeply for the 16 words of scratch memory"));
    }
    match e {
        AExpr::Const(k) => out.push(insn(LD_IMM, *k)),
        AExpr::Len => out.push(insn(LD_LEN, 0)),
        AExpr::Load { base: Base::Abs(k), index, size } => match **index {
            // Offsets from 0xffe00000 on are Linux's metadata, which the
            // driver refuses in an absolute load: those go through X (and
            // end the program, past any frame's end, as in libpcap).
            AExpr::Const(c) if k.checked_add(c).is_some_and(|o| o < 0xffe0_0000) => out.push(ld_abs(*size, k + c)),
            _ => {
                eval(index, depth, out)?;
                out.push(insn(TAX, 0));
                out.push(ld_ind(*size, *k));
            }
        },
        AExpr::Load { base: Base::Ip4Payload(k), index, size } => {
            eval(index, depth, out)?;
            out.push(insn(LDX_MSH, *k));
            out.push(insn(ALU_ADD_X, 0));
            out.push(insn(TAX, 0));
            out.push(ld_ind(*size, *k));
        }
        AExpr::Bin(op, a, b) => match **b {
            // A shift by 32 or more gives 0 (as a shift by X does); the
            // driver refuses such a constant shift.
            AExpr::Const(c) if matches!(*op, 0x60 | 0x70) && c > 31 => {
                eval(a, depth, out)?;
                out.push(insn(LD_IMM, 0));
            }
            AExpr::Const(c) => {
                eval(a, depth, out)?;
                out.push(insn(alu(*op, false), c));
            }
            _ => {
                eval(b, depth, out)?;
                out.push(insn(ST, depth));
                eval(a, depth + 1, out)?;
                out.push(insn(LDX_MEM, depth));
                out.push(insn(alu(*op, true), 0));
            }
        },
        AExpr::Neg(a) => {
            eval(a, depth, out)?;
            out.push(insn(ALU_NEG, 0));
        }
    }
    Ok(())
}

/// The relation `a0 jump a1` (`=`, `>`, `>=`; `negate` for `!=`, `<=`,
/// `<`), after the tests both sides' loads need (which the negation
/// leaves as they are, as in libpcap).
pub(super) fn relation(a0: Arith, jump: fn(Option<u32>) -> Jump, negate: bool, a1: Arith) -> Result<Bool, Fail> {
    let mut code = Vec::new();
    let j = match a1.e {
        AExpr::Const(c) => {
            eval(&a0.e, 0, &mut code)?;
            jump(Some(c))
        }
        ref e1 => {
            eval(e1, 0, &mut code)?;
            code.push(insn(ST, 0));
            eval(&a0.e, 1, &mut code)?;
            code.push(insn(LDX_MEM, 0));
            jump(None)
        }
    };
    let mut test = Bool::Test(Test { code, jump: j });
    if negate {
        test = Bool::not(test);
    }
    let checks = match (a0.checks, a1.checks) {
        (Some(a), Some(b)) => Some(Bool::and(a, b)),
        (a, b) => a.or(b),
    };
    Ok(Bool::and_opt(checks, test))
}
