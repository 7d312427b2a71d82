//! The words of a filter expression, as libpcap's scanner splits them:
//! numbers (decimal, `0x` hex, octal after a leading 0), IPv4 addresses
//! and their prefixes (`10.1`), IPv6 and MAC addresses, keywords, names
//! (`1-1023`, `tcp-syn`, `\tcp`), and the operators.

use super::Fail;

/// A word or operator and where it starts (a byte offset in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub at: usize,
    /// The text as written.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// A number, or one of the names libpcap reads as one (`tcpflags`,
    /// `tcp-syn`, `icmp-echo`).
    Num(u32),
    /// An IPv4 address of 1 to 4 parts with a dot at least (`10.0`,
    /// `192.168.1.1`): the value and the number of parts.
    Hid(u32, u32),
    /// An IPv6 address.
    Hid6([u8; 16]),
    /// A MAC address.
    Eid([u8; 6]),
    /// A keyword or a name; `escaped` for `\name`, never a keyword.
    Word {
        w: String,
        escaped: bool,
    },
    /// An operator or punctuation: `( ) [ ] : + - * / % & | ^ << >> = != < <= > >= ! && ||`.
    Sym(&'static str),
    End,
}

const SYMS: [&str; 23] = [
    "&&", "||", "<<", ">>", "<=", ">=", "!=", "==", "(", ")", "[", "]", ":", "+", "-", "*", "/", "%", "&", "|", "^",
    "=", "<",
];

/// The names libpcap's scanner reads as numbers.
fn named_number(w: &str) -> Option<u32> {
    Some(match w {
        "icmptype" | "icmp6type" | "icmp-echoreply" => 0,
        "icmpcode" | "icmp6code" => 1,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp-ireq" => 15,
        "icmp-ireqreply" => 16,
        "icmp-maskreq" => 17,
        "icmp-maskreply" => 18,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-multicastlistenerquery" => 130,
        "icmp6-multicastlistenerreportv1" => 131,
        "icmp6-multicastlistenerdone" => 132,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        "icmp6-redirect" => 137,
        "icmp6-routerrenum" => 138,
        "icmp6-multicastlistenerreportv2" => 143,
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        _ => return None,
    })
}

/// A number as libpcap's scanner reads it; `None`: not a number.
/// `Some(Err)`: a number too big for 32 bits.
fn number(w: &str) -> Option<Result<u32, ()>> {
    let (digits, radix) = if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        (h, 16)
    } else if w.len() > 1 && w.starts_with('0') {
        (&w[1..], 8)
    } else {
        (w, 10)
    };
    if digits.is_empty() && radix == 16 {
        return None;
    }
    if radix == 8 && !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if radix == 8 && digits.bytes().any(|b| b > b'7') {
        // libpcap's scanner takes "09" as a decimal number.
        return Some(w.parse::<u32>().map_err(|_| ()));
    }
    if !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    Some(u32::from_str_radix(digits, radix).map_err(|_| ()))
}

/// An IPv4 address or prefix of 2 to 4 dotted decimal parts.
fn dotted(w: &str) -> Option<Option<(u32, u32)>> {
    let parts: Vec<&str> = w.split('.').collect();
    if !(2..=4).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut v = 0u32;
    for p in &parts {
        let Ok(n) = p.parse::<u8>() else { return Some(None) };
        v = (v << 8) | u32::from(n);
    }
    Some(Some((v, parts.len() as u32)))
}

/// A MAC address: six groups of 1 or 2 hex digits separated by ':' or '-'.
fn mac(w: &str) -> Option<[u8; 6]> {
    let sep = if w.contains(':') { ':' } else { '-' };
    let parts: Vec<&str> = w.split(sep).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

pub(super) fn lex(text: &str) -> Result<Vec<Token>, Fail> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let push =
            |out: &mut Vec<Token>, tok, end: usize| out.push(Token { tok, at: start, text: text[start..end].into() });
        if c == b'\\' {
            let end = (i + 1..b.len()).find(|&j| b" !()\n\t".contains(&b[j])).unwrap_or(b.len());
            if end == i + 1 {
                return Err(Fail::at(start, "\\", "a '\\' must be followed by a name"));
            }
            push(&mut out, Tok::Word { w: text[i + 1..end].into(), escaped: true }, end);
            i = end;
            continue;
        }
        if c.is_ascii_alphanumeric() || (c == b':' && b.get(i + 1) == Some(&b':')) {
            // An IPv6 or MAC address: the longest run of hex digits,
            // colons and dots (and dashes, for a MAC) that reads as one.
            let end6 =
                (i..b.len()).find(|&j| !(b[j].is_ascii_hexdigit() || b[j] == b':' || b[j] == b'.')).unwrap_or(b.len());
            let end_mac =
                (i..b.len()).find(|&j| !(b[j].is_ascii_hexdigit() || b[j] == b':' || b[j] == b'-')).unwrap_or(b.len());
            let word_end = (i..b.len()).find(|&j| !is_word_byte(b[j])).unwrap_or(b.len());
            if let Some(m) = mac(&text[i..end_mac]).filter(|_| end_mac >= word_end) {
                push(&mut out, Tok::Eid(m), end_mac);
                i = end_mac;
                continue;
            }
            if text[i..end6].contains(':') && end6 >= word_end {
                match text[i..end6].parse::<std::net::Ipv6Addr>() {
                    Ok(a) => {
                        push(&mut out, Tok::Hid6(a.octets()), end6);
                        i = end6;
                        continue;
                    }
                    Err(_) if text[i..end6].matches(':').count() >= 2 => {
                        return Err(Fail::at(start, &text[i..end6], "is not an IPv6 address"));
                    }
                    Err(_) => {}
                }
            }
            if c == b':' {
                return Err(Fail::at(start, ":", "is not an IPv6 address"));
            }
            // A word ends with a letter, digit or dot, as libpcap's names do.
            let mut end = word_end;
            while end > i + 1 && matches!(b[end - 1], b'-' | b'_') {
                end -= 1;
            }
            let w = &text[i..end];
            let tok = if let Some(n) = number(w) {
                Tok::Num(n.map_err(|()| Fail::at(start, w, "is a number too big for 32 bits"))?)
            } else if let Some(d) = dotted(w) {
                let (v, parts) = d.ok_or_else(|| Fail::at(start, w, "is not an IPv4 address"))?;
                Tok::Hid(v, parts)
            } else if let Some(n) = named_number(w) {
                Tok::Num(n)
            } else {
                Tok::Word { w: w.into(), escaped: false }
            };
            push(&mut out, tok, end);
            i = end;
            continue;
        }
        let Some(&raw) = SYMS.iter().chain(&[">", "!"]).find(|s| text[i..].starts_with(**s)) else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return Err(Fail::at(start, &ch.to_string(), "is not part of a filter expression"));
        };
        let len = raw.len();
        let tok = match raw {
            "&&" => Tok::Word { w: "and".into(), escaped: false },
            "||" => Tok::Word { w: "or".into(), escaped: false },
            "!" => Tok::Word { w: "not".into(), escaped: false },
            "==" => Tok::Sym("="),
            s => Tok::Sym(s),
        };
        push(&mut out, tok, i + len);
        i += len;
    }
    out.push(Token { tok: Tok::End, at: text.len(), text: String::new() });
    Ok(out)
}
