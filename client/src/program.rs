//! Capture programs (classic BPF): `Device::set_program`, and the text
//! forms tools print them in, read into instructions.

use crate::Device;
use crate::error::{Error, Result};
use crate::transport::Request;
use rawnic_proto::{BpfInsn, IOCTL_RAWNIC_SET_PROGRAM, MAX_PROGRAM_INSNS, ProgramRequest};

impl Device {
    /// `SET_PROGRAM`: the handle's capture program (classic BPF, as
    /// [`parse_program`](crate::parse_program) reads `tcpdump -dd`'s
    /// output, or as [`compile_filter`](crate::compile_filter) makes it of
    /// a filter expression): of the frames its other filters take, the handle then gets
    /// only those the program returns more than 0 for, cut to what it
    /// returns. The program sees a frame as it was on the wire: a tag the
    /// NIC stripped (the frame's [`tci`](crate::FrameRef::tci), with the
    /// frame delivered without it) is back after the MAC addresses, and
    /// a cut counts its 4 bytes where the program saw them. No
    /// instructions removes the program. Set before
    /// [`open_binding`](Self::open_binding), no frame reaches the handle
    /// unfiltered. A program the driver would refuse is
    /// [`Error::InvalidArgument`], saying which instruction breaks which
    /// rule.
    pub fn set_program(&self, insns: &[BpfInsn]) -> Result<()> {
        if let Some(why) = program_refusal(insns) {
            return Err(Error::InvalidArgument(why));
        }
        let mut input = vec![0u8; ProgramRequest::wire_len(insns.len())];
        ProgramRequest::emit(insns, &mut input)
            .map_err(|e| Error::InvalidArgument(format!("the capture program: {e:?}")))?;
        let request = Request::Ioctl(IOCTL_RAWNIC_SET_PROGRAM);
        self.call(request, &input, 0, None)?.success(request)?;
        Ok(())
    }
}

/// Reads a program in either of the forms `tcpdump` prints:
/// - `tcpdump -dd`: C initializers, `{ 0x28, 0, 0, 0x0000000c },` per
///   instruction;
/// - `tcpdump -ddd`: the count, then `code jt jf k` in decimal per
///   instruction, on lines or separated by commas (as iptables' `xt_bpf`
///   takes it: `4,40 0 0 12,21 0 1 2054,6 0 0 262144,6 0 0 0`).
///
/// The error is a sentence that says where the text is wrong. What the
/// instructions do is checked when the program is set.
pub fn parse_program(text: &str) -> Result<Vec<BpfInsn>, String> {
    let insns = if text.contains('{') { parse_dd(text)? } else { parse_ddd(text)? };
    if insns.is_empty() {
        return Err("the capture program has no instructions".into());
    }
    if insns.len() > MAX_PROGRAM_INSNS {
        return Err(format!(
            "the capture program has {} instructions; at most {MAX_PROGRAM_INSNS} are allowed",
            insns.len()
        ));
    }
    Ok(insns)
}

/// A number as C writes it: decimal, or hexadecimal after `0x`.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Four numbers as one instruction; `what` says where they were, for the
/// error.
fn insn(fields: &[&str], what: &str) -> Result<BpfInsn, String> {
    let [code, jt, jf, k] = fields else {
        return Err(format!("{what}: expected 4 numbers (code, jt, jf, k), found {}", fields.len()));
    };
    let field = |s: &str, name: &str, max: u64| {
        number(s).filter(|&v| v <= max).ok_or_else(|| format!("{what}: {name} {s:?} is not a number from 0 to {max}"))
    };
    Ok(BpfInsn {
        code: field(code, "code", u16::MAX.into())? as u16,
        jt: field(jt, "jt", u8::MAX.into())? as u8,
        jf: field(jf, "jf", u8::MAX.into())? as u8,
        k: field(k, "k", u32::MAX.into())? as u32,
    })
}

fn parse_dd(text: &str) -> Result<Vec<BpfInsn>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            return Err(format!("instruction {}: a '{{' without its '}}'", out.len()));
        };
        let body = &rest[open + 1..open + len];
        let fields: Vec<&str> = body.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
        out.push(insn(&fields, &format!("instruction {}", out.len()))?);
        rest = &rest[open + len + 1..];
    }
    Ok(out)
}

fn parse_ddd(text: &str) -> Result<Vec<BpfInsn>, String> {
    let mut parts = text.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty());
    let Some(first) = parts.next() else {
        return Err("the capture program is empty".into());
    };
    let count = number(first)
        .filter(|_| !first.contains(char::is_whitespace))
        .ok_or_else(|| format!("the first number (the instruction count) is {first:?}"))?;
    let out = parts
        .enumerate()
        .map(|(i, p)| insn(&p.split_whitespace().collect::<Vec<_>>(), &format!("instruction {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() as u64 != count {
        return Err(format!("the program says it has {count} instructions, but {} follow", out.len()));
    }
    Ok(out)
}

/// Why the driver would refuse `insns`, as a sentence: the instruction and
/// the rule it breaks (`None`: it would take them).
pub fn program_refusal(insns: &[BpfInsn]) -> Option<String> {
    if insns.is_empty() {
        return None;
    }
    let r = rawnic_logic::bpf::Program::new(insns.iter().copied()).err()?;
    Some(match insns.get(r.at) {
        Some(i) => format!(
            "the capture program's instruction {} ({{ {:#x}, {}, {}, {:#x} }}) is refused: {}",
            r.at,
            i.code,
            i.jt,
            i.jf,
            i.k,
            r.why.as_str()
        ),
        None => format!("the capture program is refused: {}", r.why.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP: [BpfInsn; 4] = [
        BpfInsn::new(0x28, 0, 0, 12),
        BpfInsn::new(0x15, 0, 1, 0x806),
        BpfInsn::new(0x6, 0, 0, 0x40000),
        BpfInsn::new(0x6, 0, 0, 0),
    ];

    #[test]
    fn tcpdumps_three_forms_read_the_same() {
        let dd = "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000806 },\n{ 0x6, 0, 0, 0x00040000 },\n{ 0x6, 0, 0, 0x00000000 },\n";
        let ddd = "4\n40 0 0 12\n21 0 1 2054\n6 0 0 262144\n6 0 0 0\n";
        let xt = "4,40 0 0 12,21 0 1 2054,6 0 0 262144,6 0 0 0";
        for t in [dd, ddd, xt] {
            assert_eq!(parse_program(t).unwrap(), ARP, "{t:?}");
        }
    }

    #[test]
    fn broken_text_says_where() {
        assert_eq!(parse_program("").unwrap_err(), "the capture program is empty");
        assert_eq!(
            parse_program("{ 0x28, 0, 0 }").unwrap_err(),
            "instruction 0: expected 4 numbers (code, jt, jf, k), found 3"
        );
        assert!(
            parse_program("{ 0x6, 0, 0, 0 }, { 0x6, 256, 0, 0 }").unwrap_err().starts_with("instruction 1: jt \"256\"")
        );
        assert!(parse_program("{ 0x6, 0, 0, 0 ").unwrap_err().contains("without its"));
        assert_eq!(parse_program("3\n6 0 0 0\n").unwrap_err(), "the program says it has 3 instructions, but 1 follow");
        assert!(parse_program("6 0 0 0").unwrap_err().contains("instruction count"));
        assert!(parse_program("1,6 0 0 x").unwrap_err().starts_with("instruction 0: k \"x\""));
    }

    #[test]
    fn a_refusal_names_the_instruction_and_the_rule() {
        assert_eq!(program_refusal(&ARP), None);
        assert_eq!(program_refusal(&[]), None);
        let jump = [BpfInsn::new(0x15, 0, 3, 0), BpfInsn::new(0x6, 0, 0, 0)];
        assert_eq!(
            program_refusal(&jump).unwrap(),
            "the capture program's instruction 0 ({ 0x15, 0, 3, 0x0 }) is refused: a jump past the last instruction"
        );
        let linux = [BpfInsn::new(0x30, 0, 0, 0xfffff030), BpfInsn::new(0x6, 0, 0, 0)];
        assert!(program_refusal(&linux).unwrap().contains("tcpdump -r FILE -dd"));
    }
}
