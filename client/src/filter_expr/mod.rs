//! Filter expressions (pcap-filter(7), as `tcpdump 'udp port 53'` takes
//! them) compiled to capture programs for Ethernet, without libpcap: the
//! tests are those libpcap 1.10 generates, in its order, so a frame too
//! short for a load is dropped where libpcap's code drops it. libpcap's
//! optimizer, which tcpdump runs, drops loads whose value cannot change
//! the answer; `thread` drops them where jump threading (its main part)
//! finds them, and `prims` for a mask of 0. What remains differs from
//! tcpdump only on frames too short for one of libpcap's own loads, for
//! about 1 random expression in 100 (`client/tests/filter_expr.rs`).
//!
//! Supported: `ether host|src|dst MAC`, `ether broadcast|multicast`,
//! `ether proto N`; `vlan [N]` (moving the offsets of what follows, as in
//! libpcap); `ip`, `ip6`, `arp`, `rarp`, `tcp`, `udp`, `sctp`, `icmp`,
//! `icmp6`, `igmp`, `igrp`, `pim`, `vrrp`, `carp`, `ah`, `esp`; `[ip|ip6]
//! proto N`; `[ip|arp|rarp|ip6] [src|dst] host A`, `net A/len`, `net A
//! mask M`; `[tcp|udp|sctp] [src|dst] port N`, `portrange A-B` (IPv4 and
//! IPv6; IPv4 only on a first fragment); `ip multicast`, `ip6
//! multicast`; `len`, `less N`, `greater N`; `proto[expr:size]` for
//! ether, ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp...;
//! arithmetic (`+ - * / % & | ^ << >>`, unary `-`) and relations (`= ==
//! != < <= > >=`); `and`/`&&`, `or`/`||`, `not`/`!`, parentheses; the
//! names `tcpflags`, `icmptype`, `tcp-syn`..., `icmp-echo`...;
//! qualifiers carried to a bare address (`host a or b`).
//!
//! Refused, with a sentence naming the word: host and service names (no
//! lookups), `protochain` (a loop, which the driver refuses), `ip
//! broadcast` (needs the netmask), `gateway`, `mpls`, `llc`, `pppoe*`,
//! `geneve`, `inbound`/`outbound`, and the protocols and link layers of
//! other networks (DECnet, ISO, AppleTalk, IPX, 802.11...).

mod codegen;
mod lexer;
mod parser;
mod prims;
#[cfg(test)]
mod tests;
mod thread;

use rawnic_proto::BpfInsn;

pub use codegen::{TAKE, format_ddd};

/// The longest expression read (its tests nest as deep as it has terms).
pub const MAX_LEN: usize = 16 * 1024;

/// Why an expression does not compile: a sentence, and where in the text
/// (a byte offset) when it is about one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    at: Option<usize>,
    msg: String,
}

impl Fail {
    /// `word` at `at` is wrong: `rest` says how.
    fn at(at: usize, word: &str, rest: &str) -> Fail {
        let msg = if word.is_empty() { rest.to_owned() } else { format!("'{word}' {rest}") };
        Fail { at: Some(at), msg }
    }

    /// A fault of a primitive, not yet placed.
    fn whole(msg: impl Into<String>) -> Fail {
        Fail { at: None, msg: msg.into() }
    }

    /// Places a fault not yet placed at `at`.
    fn or_at(mut self, at: usize) -> Fail {
        self.at.get_or_insert(at);
        self
    }

    fn sentence(&self, text: &str) -> String {
        match self.at {
            // Characters, counted from 1, as a user counts them.
            Some(at) => {
                format!("{} (at character {} of the filter)", self.msg, text[..at.min(text.len())].chars().count() + 1)
            }
            None => self.msg.clone(),
        }
    }
}

/// Compiles filter expression `expr` (pcap-filter(7), for Ethernet) into
/// a capture program for [`Device::set_program`](crate::Device::set_program):
/// it returns [`TAKE`] (262144, as `tcpdump -dd`) for a frame the
/// expression matches and 0 for the others. An empty expression takes
/// every frame. The error is one sentence that names the word at fault
/// and where it is.
pub fn compile_filter(expr: &str) -> Result<Vec<BpfInsn>, String> {
    if expr.len() > MAX_LEN {
        return Err(format!("the filter expression is {} bytes long; at most {MAX_LEN} are read", expr.len()));
    }
    let toks = lexer::lex(expr).map_err(|f| f.sentence(expr))?;
    let b = parser::Parser::new(toks).parse().map_err(|f| f.sentence(expr))?;
    codegen::program(b.as_ref()).map_err(|f| f.sentence(expr))
}
