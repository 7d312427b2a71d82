//! pcap-filter(7)'s grammar, read by recursive descent into the tests of
//! `gen`, in the order of the text (a `vlan` moves the offsets of what
//! follows it). As in libpcap: `and` and `or` have the same precedence
//! and group from the left; `not` binds tighter; an address or number
//! alone after `and`/`or` takes the qualifiers of the primitive before
//! it (`port 53 or 80`); in arithmetic, `%` and `^` take the rest of the
//! expression as their right side (libpcap's grammar gives them no
//! precedence).

use super::Fail;
use super::codegen::{Bool, Jump};
use super::lexer::{Tok, Token};
use super::prims::{AExpr, Arith, Dir, Offsets, Proto, relation};

/// What a primitive's address or number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addr {
    Default,
    Host,
    Net,
    Port,
    Portrange,
    Proto,
}

/// A primitive's qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Qual {
    proto: Proto,
    dir: Dir,
    addr: Addr,
}

/// Keywords of pcap-filter(7) that rawnic's compiler refuses, with why.
fn unsupported(w: &str) -> Option<&'static str> {
    Some(match w {
        "protochain" => "compiles to a loop (a jump back), which the driver refuses",
        "gateway" => "needs host name lookups",
        "mpls" | "pppoed" | "pppoes" | "geneve" | "llc" => "is an encapsulation this compiler does not handle",
        "inbound" | "outbound" | "ifindex" => "needs metadata a frame does not carry",
        "decnet" | "atalk" | "aarp" | "lat" | "sca" | "moprc" | "mopdl" | "iso" | "esis" | "es-is" | "isis"
        | "is-is" | "l1" | "l2" | "iih" | "lsp" | "snp" | "csnp" | "psnp" | "clnp" | "stp" | "ipx" | "netbeui" => {
            "is a protocol this compiler does not handle"
        }
        "ppp" | "slip" | "fddi" | "tr" | "wlan" | "radio" | "type" | "subtype" | "dir" | "direction" | "addr1"
        | "addr2" | "addr3" | "addr4" | "address1" | "address2" | "address3" | "address4" | "ra" | "ta" => {
            "is for other link layers; rawnic's is Ethernet"
        }
        "byte" | "on" | "ifname" | "rset" | "ruleset" | "rnr" | "rulenum" | "srnr" | "subrulenum" | "reason"
        | "action" | "lane" | "metac" | "bcc" | "oam" | "oamf4" | "oamf4ec" | "oamf4sc" | "sc" | "ilmic"
        | "connectmsg" | "metaconnect" | "vpi" | "vci" | "fisu" | "lssu" | "lsu" | "msu" | "hfisu" | "hlssu"
        | "hmsu" | "sio" | "opc" | "dpc" | "sls" | "hsio" | "hopc" | "hdpc" | "hsls" => "is not supported",
        _ => return None,
    })
}

/// Words with a meaning of their own (a name must not be one).
fn keyword(w: &str) -> bool {
    Proto::from_word(w).is_some()
        || unsupported(w).is_some()
        || matches!(
            w,
            "and"
                | "or"
                | "not"
                | "src"
                | "dst"
                | "host"
                | "net"
                | "mask"
                | "port"
                | "portrange"
                | "proto"
                | "less"
                | "greater"
                | "broadcast"
                | "multicast"
                | "len"
                | "length"
                | "vlan"
        )
}

/// The binary arithmetic operators with a precedence, and their ALU bits.
fn binop(t: &Tok) -> Option<(u16, u8)> {
    let Tok::Sym(s) = t else { return None };
    Some(match *s {
        "|" => (0x40, 1),
        "&" => (0x50, 2),
        "<<" => (0x60, 3),
        ">>" => (0x70, 3),
        "+" => (0x00, 4),
        "-" => (0x10, 4),
        "*" => (0x20, 5),
        "/" => (0x30, 5),
        _ => return None,
    })
}

pub(super) struct Parser {
    toks: Vec<Token>,
    pos: usize,
    off: Offsets,
    /// How deep `not`, parentheses and unary minus nest here.
    depth: u32,
}

/// The deepest nesting read (the parser recurses).
const MAX_DEPTH: u32 = 100;

type Res<T> = Result<T, Fail>;

impl Parser {
    pub fn new(toks: Vec<Token>) -> Self {
        Parser { toks, pos: 0, off: Offsets::default(), depth: 0 }
    }

    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        // Past the end too (`peek` stays on it), so that a step back
        // after reading the end lands on it again.
        self.pos += 1;
        t
    }

    /// Whether the next token is keyword `w` (not `\w`).
    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word { w: x, escaped: false } if x == w)
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek().tok, Tok::Sym(x) if x == s)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.next();
        }
        yes
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = self.is_sym(s);
        if yes {
            self.next();
        }
        yes
    }

    /// The error for the next token, which is not what `wanted` says.
    fn unexpected(&self, wanted: &str) -> Fail {
        let t = self.peek();
        if t.tok == Tok::End {
            return Fail::at(t.at, "", &format!("the expression ends where {wanted} should follow"));
        }
        if let Tok::Word { w, escaped: false } = &t.tok {
            if let Some(why) = unsupported(w) {
                return Fail::at(t.at, w, &format!("is not supported: it {why}"));
            }
        }
        Fail::at(t.at, &t.text, &format!("is not expected here; {wanted} should be here"))
    }

    fn expect_sym(&mut self, s: &str) -> Res<()> {
        if self.eat_sym(s) { Ok(()) } else { Err(self.unexpected(&format!("'{s}'"))) }
    }

    /// The whole expression.
    pub fn parse(mut self) -> Res<Option<Bool>> {
        if self.peek().tok == Tok::End {
            return Ok(None);
        }
        let (b, _) = self.expr(None, false)?;
        if self.peek().tok != Tok::End {
            return Err(self.unexpected("'and', 'or' or the end"));
        }
        Ok(Some(b))
    }

    /// Terms joined by `and`/`or`, from the left; an operand after one may
    /// be an address alone (`inherit`ing the qualifiers before it).
    fn expr(&mut self, inherit: Option<Qual>, id_first: bool) -> Res<(Bool, Option<Qual>)> {
        let (mut b, mut q) = self.term(inherit, id_first)?;
        loop {
            let and = self.is_word("and");
            if !and && !self.is_word("or") {
                return Ok((b, q));
            }
            self.next();
            let (r, rq) = self.term(q, true)?;
            b = if and { Bool::and(b, r) } else { Bool::or(b, r) };
            q = rq;
        }
    }

    /// Whether the tokens from `n` on start an arithmetic relation rather
    /// than an address alone: a number followed by an operator.
    fn number_starts_relation(&self) -> bool {
        matches!(self.peek_at(1), Tok::Sym(s) if *s != "(" && *s != ")" && *s != "]")
    }

    /// Runs `f` one level deeper, refusing past `MAX_DEPTH`.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<T> {
        if self.depth >= MAX_DEPTH {
            let at = self.peek().at;
            return Err(Fail::at(at, "", &format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn term(&mut self, inherit: Option<Qual>, id_ok: bool) -> Res<(Bool, Option<Qual>)> {
        self.nested(|p| p.term_inner(inherit, id_ok))
    }

    fn term_inner(&mut self, inherit: Option<Qual>, id_ok: bool) -> Res<(Bool, Option<Qual>)> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Word { w, escaped: false } if w == "not" => {
                self.next();
                let (b, q) = self.term(inherit, id_ok)?;
                Ok((Bool::not(b), q))
            }
            Tok::Sym("(") => {
                // An arithmetic relation, or a parenthesized expression.
                let save = (self.pos, self.off);
                match self.relation() {
                    Ok(b) => Ok((b, None)),
                    Err(arith) => {
                        let arith_reached = self.pos;
                        (self.pos, self.off) = save;
                        self.next();
                        let inner = self.expr(inherit, inherit.is_some()).and_then(|(b, _)| {
                            self.expect_sym(")")?;
                            Ok(b)
                        });
                        match inner {
                            Ok(b) => Ok((b, inherit)),
                            Err(_) if arith_reached > self.pos => Err(arith),
                            Err(e) => Err(e),
                        }
                    }
                }
            }
            Tok::Num(_) if !self.number_starts_relation() && id_ok && inherit.is_some() => {
                let q = inherit.expect("checked");
                Ok((self.id(q)?, Some(q)))
            }
            Tok::Num(_) | Tok::Sym("-") => Ok((self.relation()?, None)),
            Tok::Word { w, escaped: false } if w == "len" || w == "length" => Ok((self.relation()?, None)),
            Tok::Hid(..) | Tok::Hid6(_) | Tok::Eid(_) => match inherit {
                Some(q) if id_ok => Ok((self.id(q)?, Some(q))),
                _ => Err(Fail::at(t.at, &t.text, "needs a qualifier before it (host, net, ether host...)")),
            },
            Tok::Word { w, escaped } if *escaped || !keyword(w) => match inherit {
                Some(q) if id_ok => Ok((self.id(q)?, Some(q))),
                _ => Err(Fail::at(t.at, w, "is not a keyword of a filter expression")),
            },
            Tok::Word { w, .. } => self.keyword_term(w.clone(), t.at),
            _ => Err(self.unexpected("a primitive (host, port, tcp, ip[...] = N...)")),
        }
    }

    /// A term that starts with a keyword.
    fn keyword_term(&mut self, w: String, at: usize) -> Res<(Bool, Option<Qual>)> {
        if let Some(why) = unsupported(&w) {
            return Err(Fail::at(at, &w, &format!("is not supported: it {why}")));
        }
        match w.as_str() {
            "vlan" => {
                self.next();
                let n = if matches!(self.peek().tok, Tok::Num(_))
                    || (self.is_sym("(") && matches!(self.peek_at(1), Tok::Num(_)))
                {
                    Some(self.pnum()?)
                } else {
                    None
                };
                Ok((self.off.vlan(n).map_err(|f| f.or_at(at))?, None))
            }
            "less" | "greater" => {
                self.next();
                let t = self.next();
                let Tok::Num(n) = t.tok else {
                    self.pos -= 1;
                    return Err(self.unexpected(&format!("a number after '{w}'")));
                };
                let len = Bool::Test(super::codegen::Test {
                    code: vec![super::codegen::insn(super::codegen::LD_LEN, 0)],
                    jump: if w == "less" { Jump::Gt(n) } else { Jump::Ge(n) },
                });
                Ok((if w == "less" { Bool::not(len) } else { len }, None))
            }
            "broadcast" | "multicast" => {
                self.next();
                Ok((self.cast(&w, Proto::Default).map_err(|f| f.or_at(at))?, None))
            }
            _ => {
                if Proto::from_word(&w).is_some() && self.peek_at(1) == &Tok::Sym("[") {
                    return Ok((self.relation()?, None));
                }
                self.head(at)
            }
        }
    }

    fn cast(&mut self, w: &str, p: Proto) -> Res<Bool> {
        if w == "broadcast" { Offsets::broadcast(p) } else { self.off.multicast(p) }
    }

    /// `[proto] [dir] [addr] id`, or a protocol alone.
    fn head(&mut self, at: usize) -> Res<(Bool, Option<Qual>)> {
        let mut q = Qual { proto: Proto::Default, dir: Dir::Default, addr: Addr::Default };
        let mut pname = false;
        let named = match &self.peek().tok {
            Tok::Word { w, escaped: false } => Proto::from_word(w),
            _ => None,
        };
        if let Some(p) = named {
            q.proto = p;
            pname = true;
            self.next();
        }
        if pname && (self.is_word("broadcast") || self.is_word("multicast")) {
            let w = self.next().text;
            return Ok((self.cast(&w, q.proto).map_err(|f| f.or_at(at))?, None));
        }
        if self.eat_word("proto") {
            q.addr = Addr::Proto;
            return Ok((self.id(q)?, Some(q)));
        }
        let mut dq = false;
        if self.is_word("src") || self.is_word("dst") {
            let first = self.next().text;
            q.dir = if first == "src" { Dir::Src } else { Dir::Dst };
            let other = if first == "src" { "dst" } else { "src" };
            for (joint, d) in [("or", Dir::Or), ("and", Dir::And)] {
                if self.is_word(joint) && matches!(self.peek_at(1), Tok::Word { w, escaped: false } if w == other) {
                    self.next();
                    self.next();
                    q.dir = d;
                }
            }
            dq = true;
        }
        for (w, a) in [("host", Addr::Host), ("net", Addr::Net), ("port", Addr::Port), ("portrange", Addr::Portrange)] {
            if self.eat_word(w) {
                q.addr = a;
                return Ok((self.id(q)?, Some(q)));
            }
        }
        if dq {
            return Ok((self.id(q)?, Some(q)));
        }
        if pname {
            return Ok((self.off.abbrev(q.proto).map_err(|f| f.or_at(at))?, None));
        }
        Err(self.unexpected("a primitive (host, port, tcp, ip[...] = N...)"))
    }

    /// `NUM` or `( pnum )`.
    fn pnum(&mut self) -> Res<u32> {
        if self.eat_sym("(") {
            let n = self.pnum()?;
            self.expect_sym(")")?;
            return Ok(n);
        }
        match self.peek().tok {
            Tok::Num(n) => {
                self.next();
                Ok(n)
            }
            _ => Err(self.unexpected("a number")),
        }
    }

    /// An address, number or name under qualifiers `q`.
    fn id(&mut self, q: Qual) -> Res<Bool> {
        self.nested(|p| p.id_inner(q))
    }

    fn id_inner(&mut self, q: Qual) -> Res<Bool> {
        let t = self.next();
        let at = t.at;
        let r = match t.tok {
            Tok::Word { ref w, escaped: false } if w == "not" => return Ok(Bool::not(self.id(q)?)),
            Tok::Sym("(") => {
                let (b, _) = self.expr(Some(q), true)?;
                self.expect_sym(")")?;
                return Ok(b);
            }
            Tok::Num(v) => self.ncode(None, v, q),
            Tok::Hid(v, parts) => {
                if self.eat_sym("/") {
                    let Tok::Num(len) = self.next().tok else {
                        self.pos -= 1;
                        return Err(self.unexpected("a prefix length after '/'"));
                    };
                    self.mcode(v, parts, None, len, q, &t.text)
                } else if self.eat_word("mask") {
                    let Tok::Hid(m, mparts) = self.next().tok else {
                        self.pos -= 1;
                        return Err(self.unexpected("a mask (a.b.c.d) after 'mask'"));
                    };
                    self.mcode(v, parts, Some(m << (32 - 8 * mparts)), 0, q, &t.text)
                } else {
                    match q.addr {
                        Addr::Port | Addr::Portrange | Addr::Proto => {
                            return Err(Fail::at(
                                at,
                                &t.text,
                                &format!("is an IPv4 address, not a {}", addr_name(q.addr)),
                            ));
                        }
                        _ => self.ncode(Some(parts), v, q),
                    }
                }
            }
            Tok::Hid6(a) => {
                let len = if self.eat_sym("/") {
                    match self.next().tok {
                        Tok::Num(n) => n,
                        _ => {
                            self.pos -= 1;
                            return Err(self.unexpected("a prefix length after '/'"));
                        }
                    }
                } else {
                    128
                };
                mcode6(&self.off, a, len, q)
            }
            Tok::Eid(m) => {
                if q.proto == Proto::Link && matches!(q.addr, Addr::Default | Addr::Host) {
                    Ok(Offsets::ehost(m, q.dir))
                } else {
                    Err(Fail::whole(format!("a MAC address needs 'ether' before it (ether host {})", t.text)))
                }
            }
            Tok::Word { ref w, escaped } if escaped || !keyword(w) => self.scode(w, q),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected(&format!("an address or number for '{}'", addr_name(q.addr))));
            }
        };
        r.map_err(|f| f.or_at(at))
    }

    /// A number (or, with `parts`, an IPv4 address of that many parts).
    fn ncode(&self, parts: Option<u32>, v: u32, q: Qual) -> Res<Bool> {
        match q.addr {
            Addr::Default | Addr::Host | Addr::Net => {
                if q.proto == Proto::Link {
                    return Err(Fail::whole("'ether' takes a MAC address (ether host 02:00:00:00:00:01)"));
                }
                let (mut v, mut mask) = (v, u32::MAX);
                match parts {
                    None if q.addr == Addr::Net => {
                        while v != 0 && v & 0xff00_0000 == 0 {
                            v <<= 8;
                            mask <<= 8;
                        }
                    }
                    None => {}
                    Some(p) => {
                        v <<= 32 - 8 * p;
                        mask <<= 32 - 8 * p;
                    }
                }
                self.off.host4(v, mask, q.proto, q.dir, if q.addr == Addr::Net { "net" } else { "host" })
            }
            Addr::Port | Addr::Portrange => {
                let p = port_proto(q)?;
                if v > 65535 {
                    return Err(Fail::whole(format!("port {v} is greater than 65535")));
                }
                Ok(self.off.ports(v, v, q.addr == Addr::Portrange, p, q.dir))
            }
            Addr::Proto => {
                if q.dir != Dir::Default {
                    return Err(Fail::whole("a direction (src, dst) cannot qualify 'proto'"));
                }
                self.off.proto(v, q.proto)
            }
        }
    }

    /// `net A/len` or `net A mask M`.
    fn mcode(&self, v: u32, parts: u32, mask: Option<u32>, len: u32, q: Qual, text: &str) -> Res<Bool> {
        let n = v << (32 - 8 * parts);
        let m = match mask {
            Some(m) => m,
            None if len > 32 => return Err(Fail::whole(format!("a prefix length of {len}: at most 32"))),
            None if len == 0 => 0,
            None => u32::MAX << (32 - len),
        };
        if n & !m != 0 {
            return Err(Fail::whole(format!("{text} has bits set outside its network's mask")));
        }
        if q.addr != Addr::Net {
            return Err(Fail::whole("a mask or prefix length is only for 'net'"));
        }
        self.off.host4(n, m, q.proto, q.dir, "net")
    }

    /// A name: `portrange A-B`, a protocol's name after `proto`.
    fn scode(&self, w: &str, q: Qual) -> Res<Bool> {
        let range = w.split_once('-').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
        if let (Addr::Portrange, Some((a, b))) = (q.addr, range) {
            if a.max(b) > 65535 {
                return Err(Fail::whole(format!("port {} is greater than 65535", a.max(b))));
            }
            return Ok(self.off.ports(a, b, true, port_proto(q)?, q.dir));
        }
        if q.addr == Addr::Proto {
            let n = match (q.proto, w) {
                (Proto::Link, "ip") => Some(0x0800),
                (Proto::Link, "ip6") => Some(0x86dd),
                (Proto::Link, "arp") => Some(0x0806),
                (Proto::Link, "rarp") => Some(0x8035),
                (Proto::Link, _) => None,
                (_, "icmp") => Some(1),
                (_, "igmp") => Some(2),
                (_, "tcp") => Some(6),
                (_, "udp") => Some(17),
                (_, "sctp") => Some(132),
                _ => None,
            };
            if let Some(n) = n {
                return self.ncode(None, n, q);
            }
        }
        Err(Fail::whole(format!("'{w}' is a name, and this compiler looks up none: give the address or number")))
    }

    /// `arith relop arith`.
    fn relation(&mut self) -> Res<Bool> {
        let a0 = self.arith(0)?;
        let t = self.next();
        let (jump, negate): (fn(Option<u32>) -> Jump, bool) = match t.tok {
            Tok::Sym(">") => (|k| k.map_or(Jump::GtX, Jump::Gt), false),
            Tok::Sym(">=") => (|k| k.map_or(Jump::GeX, Jump::Ge), false),
            Tok::Sym("=") => (|k| k.map_or(Jump::EqX, Jump::Eq), false),
            Tok::Sym("<=") => (|k| k.map_or(Jump::GtX, Jump::Gt), true),
            Tok::Sym("<") => (|k| k.map_or(Jump::GeX, Jump::Ge), true),
            Tok::Sym("!=") => (|k| k.map_or(Jump::EqX, Jump::Eq), true),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("a comparison (=, !=, <, <=, >, >=)"));
            }
        };
        let a1 = self.arith(0)?;
        relation(a0, jump, negate, a1).map_err(|f| f.or_at(t.at))
    }

    /// Binary operators of precedence `min` and up, from the left.
    fn arith(&mut self, min: u8) -> Res<Arith> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = binop(&self.peek().tok) {
            if prec < min {
                break;
            }
            let at = self.next().at;
            let rhs = self.arith(prec + 1)?;
            lhs = bin(op, lhs, rhs).map_err(|f| f.or_at(at))?;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Res<Arith> {
        self.nested(Self::unary_inner)
    }

    fn unary_inner(&mut self) -> Res<Arith> {
        if self.eat_sym("-") {
            let a = self.unary()?;
            let e = match a.e {
                AExpr::Const(k) => AExpr::Const(k.wrapping_neg()),
                e => AExpr::Neg(Box::new(e)),
            };
            return Ok(Arith { e, checks: a.checks, first_imm: a.first_imm });
        }
        let prim = self.primary()?;
        if let Tok::Sym(s @ ("%" | "^")) = self.peek().tok {
            let at = self.next().at;
            let rhs = self.arith(0)?;
            return bin(if s == "%" { 0x90 } else { 0xa0 }, prim, rhs).map_err(|f| f.or_at(at));
        }
        Ok(prim)
    }

    fn primary(&mut self) -> Res<Arith> {
        let t = self.next();
        match &t.tok {
            Tok::Num(n) => Ok(Arith { e: AExpr::Const(*n), checks: None, first_imm: Some(*n) }),
            Tok::Word { w, escaped: false } if w == "len" || w == "length" => {
                Ok(Arith { e: AExpr::Len, checks: None, first_imm: None })
            }
            Tok::Sym("(") => {
                let a = self.arith(0)?;
                self.expect_sym(")")?;
                Ok(a)
            }
            Tok::Word { w, escaped: false } if Proto::from_word(w).is_some() && self.is_sym("[") => {
                let p = Proto::from_word(w).expect("checked");
                self.next();
                let index = self.arith(0)?;
                let size = if self.eat_sym(":") {
                    match self.next().tok {
                        Tok::Num(n) => n,
                        _ => {
                            self.pos -= 1;
                            return Err(self.unexpected("a size (1, 2 or 4) after ':'"));
                        }
                    }
                } else {
                    1
                };
                self.expect_sym("]")?;
                self.off.load(p, index, size).map_err(|f| f.or_at(t.at))
            }
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a number, len or proto[offset]"))
            }
        }
    }
}

fn addr_name(a: Addr) -> &'static str {
    match a {
        Addr::Default | Addr::Host => "host",
        Addr::Net => "net",
        Addr::Port => "port",
        Addr::Portrange => "portrange",
        Addr::Proto => "proto",
    }
}

fn port_proto(q: Qual) -> Res<Option<u32>> {
    q.proto.port_proto().ok_or_else(|| {
        Fail::whole(format!(
            "'{} {}' means nothing: only tcp, udp and sctp have ports",
            q.proto.name(),
            addr_name(q.addr)
        ))
    })
}

/// `a op b`, folded when both are constants; `b`'s protocol tests are
/// dropped, as libpcap drops them. Refused as libpcap refuses it: a
/// division or remainder by, or a shift by more than 31 of, an expression
/// whose code starts by loading such a constant (`first_imm`); and, as
/// libpcap's optimizer refuses them, a division or remainder by a
/// constant expression of 0, and a shift of a value that is not constant
/// by one of 32 or more.
fn bin(op: u16, a: Arith, b: Arith) -> Res<Arith> {
    match (op, b.first_imm) {
        (0x30, Some(0)) => return Err(Fail::whole("a division by 0")),
        (0x90, Some(0)) => return Err(Fail::whole("a remainder by 0")),
        (0x60 | 0x70, Some(k)) if k > 31 => return Err(Fail::whole(format!("a shift by {k}: at most 31"))),
        _ => {}
    }
    // libpcap's optimizer folds a constant right side into the operation,
    // and refuses these.
    if let (false, AExpr::Const(k)) = (matches!(a.e, AExpr::Const(_)), &b.e) {
        match (op, *k) {
            (0x30 | 0x90, 0) => return Err(Fail::whole("a division or remainder by an expression of 0")),
            (0x60 | 0x70, k) if k > 31 => return Err(Fail::whole(format!("a shift by {k}: at most 31"))),
            _ => {}
        }
    }
    if let (AExpr::Const(j), AExpr::Const(k)) = (&a.e, &b.e) {
        let (j, k) = (*j, *k);
        let v = match op {
            0x00 => j.wrapping_add(k),
            0x10 => j.wrapping_sub(k),
            0x20 => j.wrapping_mul(k),
            0x30 | 0x90 if k == 0 => return Err(Fail::whole("a division or remainder by an expression of 0")),
            0x30 => j / k,
            0x90 => j % k,
            0x40 => j | k,
            0x50 => j & k,
            0xa0 => j ^ k,
            0x60 => j.checked_shl(k).unwrap_or(0),
            _ => j.checked_shr(k).unwrap_or(0),
        };
        return Ok(Arith { e: AExpr::Const(v), checks: a.checks, first_imm: a.first_imm });
    }
    Ok(Arith { e: AExpr::Bin(op, Box::new(a.e), Box::new(b.e)), checks: a.checks, first_imm: a.first_imm })
}

/// An IPv6 address with a prefix length of `len`.
fn mcode6(off: &Offsets, a: [u8; 16], len: u32, q: Qual) -> Res<Bool> {
    if len > 128 {
        return Err(Fail::whole(format!("a prefix length of {len}: at most 128")));
    }
    let m = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    if u128::from_be_bytes(a) & !m != 0 {
        return Err(Fail::whole("the IPv6 address has bits set outside its network's prefix"));
    }
    match q.addr {
        Addr::Default | Addr::Host if len != 128 => Err(Fail::whole("a prefix length is only for 'net'")),
        Addr::Default | Addr::Host | Addr::Net => {
            off.host6(a, m.to_be_bytes(), q.proto, q.dir, if q.addr == Addr::Net { "net" } else { "host" })
        }
        a => Err(Fail::whole(format!("an IPv6 address is not a {}", addr_name(a)))),
    }
}
