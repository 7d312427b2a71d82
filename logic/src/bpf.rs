//! A handle's capture program: classic BPF (the instruction set of BSD's
//! `bpf(4)`, libpcap's `pcap_compile` and `tcpdump -dd`), checked once when
//! it is set and then run on each frame the handle's other filters take.
//!
//! The check (`Program::new`) admits exactly the classic instructions (the
//! list Linux's `sk_chk_filter` admits, without its ancillary loads), with
//! every jump forward and inside the program, every scratch-memory index
//! below 16, no division or remainder by a constant 0, no shift by a
//! constant of 32 or more, and a return as the last instruction. So every
//! run ends within the program's length in instructions.
//!
//! A run (`Program::run`) cannot fail or panic: a load past the frame's
//! end or at an offset that overflows, and a division or remainder by an
//! X of 0, end it with 0 (the frame is not taken), as BSD's does; a shift
//! by an X of 32 or more gives 0. Its result is how many bytes of the
//! frame to keep (0: the frame is not taken).

use alloc::vec::Vec;

/// Most instructions in a program (Linux's `BPF_MAXINSNS`).
pub const MAX_INSNS: usize = rawnic_proto::MAX_PROGRAM_INSNS;
/// Words of scratch memory (`BPF_MEMWORDS`).
pub const MEM_WORDS: usize = 16;

/// One instruction as it is written: `struct bpf_insn`.
pub use rawnic_proto::BpfInsn as Insn;

/// Why a program was refused: instruction `at` (or, for `Length` and
/// `OutOfMemory`, the program as a whole: `at` is its length) breaks the
/// rule `why`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub at: usize,
    pub why: Why,
}

/// The rules a program may break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No instructions, or more than `MAX_INSNS`.
    Length,
    /// An opcode outside the classic set.
    Opcode,
    /// A jump past the program's last instruction.
    Jump,
    /// A scratch-memory index of 16 or more.
    Memory,
    /// A division or remainder by the constant 0.
    DivideByZero,
    /// A shift by a constant of 32 or more.
    Shift,
    /// The last instruction is not a return.
    NoReturn,
    /// A load at one of Linux's negative offsets (`SKF_AD_OFF`,
    /// `SKF_NET_OFF`, `SKF_LL_OFF`: 0xffe00000 and up), which read
    /// metadata of a Linux socket buffer, not the frame. A filter compiled
    /// for a live Linux capture has them; one compiled for a capture file
    /// (`tcpdump -r FILE -dd`) does not.
    Ancillary,
    /// No memory for the checked program.
    OutOfMemory,
}

impl Why {
    /// The rule, in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Length => "a program has 1 to 4096 instructions",
            Why::Opcode => "not an instruction of classic BPF",
            Why::Jump => "a jump past the last instruction",
            Why::Memory => "scratch memory has 16 words",
            Why::DivideByZero => "a division or remainder by the constant 0",
            Why::Shift => "a shift by a constant of 32 or more",
            Why::NoReturn => "the last instruction must be a return",
            Why::Ancillary => {
                "a load of Linux socket metadata (compile the filter for a capture file: tcpdump -r FILE -dd)"
            }
            Why::OutOfMemory => "no memory for the program",
        }
    }
}

/// The frame a program runs on.
pub trait Packet {
    /// The frame's length (`BPF_LEN`).
    fn wire_len(&self) -> u32;
    /// The `N` bytes at `off`, or `None` when they run past the frame's end.
    fn bytes<const N: usize>(&self, off: u32) -> Option<[u8; N]>;
}

impl Packet for [u8] {
    fn wire_len(&self) -> u32 {
        u32::try_from(self.len()).unwrap_or(u32::MAX)
    }

    #[inline]
    fn bytes<const N: usize>(&self, off: u32) -> Option<[u8; N]> {
        let off = usize::try_from(off).ok()?;
        self.get(off..off.checked_add(N)?)?.try_into().ok()
    }
}

/// A frame in parts, one after another (a frame sent from this host, its
/// 802.1Q tag written between two of them).
pub struct Parts<'p>(pub &'p [&'p [u8]]);

impl Packet for Parts<'_> {
    fn wire_len(&self) -> u32 {
        u32::try_from(self.0.iter().map(|p| p.len()).sum::<usize>()).unwrap_or(u32::MAX)
    }

    fn bytes<const N: usize>(&self, off: u32) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        let (mut at, mut got) = (usize::try_from(off).ok()?, 0);
        for p in self.0 {
            if got == N {
                break;
            }
            let Some(rest) = p.get(at..) else {
                at -= p.len();
                continue;
            };
            let n = rest.len().min(N - got);
            b[got..got + n].copy_from_slice(&rest[..n]);
            got += n;
            at = 0;
        }
        (got == N).then_some(b)
    }
}

/// An operand: the constant, or X.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    K(u32),
    X,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alu {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Lsh,
    Rsh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
}

/// A checked instruction; jump targets are absolute indices inside the
/// program, memory indices below `MEM_WORDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A = the 1, 2 or 4 bytes at k (`Abs`) or at X + k (`Ind`).
    LdAbs(u8, u32),
    LdInd(u8, u32),
    LdImm(u32),
    LdLen,
    LdMem(u8),
    LdxImm(u32),
    LdxLen,
    LdxMem(u8),
    /// X = 4 * (the byte at k & 0xf): an IPv4 header's length.
    LdxMsh(u32),
    St(u8),
    Stx(u8),
    Alu(Alu, Src),
    Neg,
    Ja(u16),
    Jmp(Cond, Src, u16, u16),
    RetK(u32),
    RetA,
    Tax,
    Txa,
}

/// A checked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    ops: Vec<Op>,
}

impl Program {
    /// Checks `insns` (see the module's rules) into a program. Memory is
    /// taken with `try_reserve`: a shortage is `Why::OutOfMemory`, not a
    /// failed allocation.
    pub fn new(insns: impl ExactSizeIterator<Item = Insn>) -> Result<Self, Refused> {
        let n = insns.len();
        if n == 0 || n > MAX_INSNS {
            return Err(Refused { at: n, why: Why::Length });
        }
        let mut ops = Vec::new();
        ops.try_reserve_exact(n).map_err(|_| Refused { at: n, why: Why::OutOfMemory })?;
        for (at, i) in insns.take(n).enumerate() {
            ops.push(check(at, n, i).map_err(|why| Refused { at, why })?);
        }
        // An iterator that gave fewer than it said: the jumps were checked
        // against a longer program.
        if ops.len() != n {
            return Err(Refused { at: ops.len(), why: Why::Length });
        }
        if !matches!(ops.last(), Some(Op::RetK(_) | Op::RetA)) {
            return Err(Refused { at: n - 1, why: Why::NoReturn });
        }
        Ok(Program { ops })
    }

    /// Bytes of memory a program of `insns` instructions takes (what
    /// `new` reserves).
    pub const fn bytes_for(insns: usize) -> usize {
        insns.saturating_mul(core::mem::size_of::<Op>())
    }

    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Never: a program has an instruction at least.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many bytes of frame `p` to keep: 0 when the program does not
    /// take it. At most as many instructions as the program has run.
    pub fn run<P: Packet + ?Sized>(&self, p: &P) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEM_WORDS];
        let mut pc = 0usize;
        loop {
            // The check makes every jump land inside and ends the program
            // with a return: running off its end cannot happen, and would
            // take nothing.
            let Some(&op) = self.ops.get(pc) else { return 0 };
            pc += 1;
            match op {
                Op::LdAbs(size, k) => match load(p, size, Some(k)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdInd(size, k) => match load(p, size, x.checked_add(k)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdImm(k) => a = k,
                Op::LdLen => a = p.wire_len(),
                Op::LdMem(m) => a = mem[usize::from(m) % MEM_WORDS],
                Op::LdxImm(k) => x = k,
                Op::LdxLen => x = p.wire_len(),
                Op::LdxMem(m) => x = mem[usize::from(m) % MEM_WORDS],
                Op::LdxMsh(k) => match p.bytes::<1>(k) {
                    Some([b]) => x = 4 * u32::from(b & 0xf),
                    None => return 0,
                },
                Op::St(m) => mem[usize::from(m) % MEM_WORDS] = a,
                Op::Stx(m) => mem[usize::from(m) % MEM_WORDS] = x,
                Op::Alu(alu, src) => {
                    let v = match src {
                        Src::K(k) => k,
                        Src::X => x,
                    };
                    a = match alu {
                        Alu::Add => a.wrapping_add(v),
                        Alu::Sub => a.wrapping_sub(v),
                        Alu::Mul => a.wrapping_mul(v),
                        Alu::Div => match a.checked_div(v) {
                            Some(q) => q,
                            None => return 0,
                        },
                        Alu::Mod => match a.checked_rem(v) {
                            Some(r) => r,
                            None => return 0,
                        },
                        Alu::And => a & v,
                        Alu::Or => a | v,
                        Alu::Xor => a ^ v,
                        Alu::Lsh => a.checked_shl(v).unwrap_or(0),
                        Alu::Rsh => a.checked_shr(v).unwrap_or(0),
                    };
                }
                Op::Neg => a = a.wrapping_neg(),
                Op::Ja(t) => pc = usize::from(t),
                Op::Jmp(cond, src, t, f) => {
                    let v = match src {
                        Src::K(k) => k,
                        Src::X => x,
                    };
                    let taken = match cond {
                        Cond::Eq => a == v,
                        Cond::Gt => a > v,
                        Cond::Ge => a >= v,
                        Cond::Set => a & v != 0,
                    };
                    pc = usize::from(if taken { t } else { f });
                }
                Op::RetK(k) => return k,
                Op::RetA => return a,
                Op::Tax => x = a,
                Op::Txa => a = x,
            }
        }
    }
}

/// The big-endian value of `size` bytes at `off` (`None`: past the end,
/// or the offset overflowed).
#[inline]
fn load<P: Packet + ?Sized>(p: &P, size: u8, off: Option<u32>) -> Option<u32> {
    let off = off?;
    match size {
        1 => p.bytes::<1>(off).map(|[b]| u32::from(b)),
        2 => p.bytes::<2>(off).map(|b| u32::from(u16::from_be_bytes(b))),
        _ => p.bytes::<4>(off).map(u32::from_be_bytes),
    }
}

// An opcode's class (`bpf.h`): its low three bits. The other bits of the
// ALU and jump classes are the operation (0xf0) and the operand (0x08:
// X, else the constant).
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;

/// Checks instruction `at` of `n`.
fn check(at: usize, n: usize, i: Insn) -> Result<Op, Why> {
    let k = i.k;
    // A jump `off` instructions past the next one, as an index.
    let target = |off: u32| -> Result<u16, Why> {
        let t = (at as u64) + 1 + u64::from(off);
        if t < n as u64 { Ok(t as u16) } else { Err(Why::Jump) }
    };
    let mem = || -> Result<u8, Why> { if (k as usize) < MEM_WORDS { Ok(k as u8) } else { Err(Why::Memory) } };
    // Linux's ancillary offsets, the lowest of them `SKF_LL_OFF`.
    let frame = |off: u32| -> Result<u32, Why> { if off < 0xffe0_0000 { Ok(off) } else { Err(Why::Ancillary) } };
    let src = |code: u16| if code & 0x08 != 0 { Src::X } else { Src::K(k) };
    Ok(match i.code {
        0x20 => Op::LdAbs(4, frame(k)?),
        0x28 => Op::LdAbs(2, frame(k)?),
        0x30 => Op::LdAbs(1, frame(k)?),
        0x40 => Op::LdInd(4, frame(k)?),
        0x48 => Op::LdInd(2, frame(k)?),
        0x50 => Op::LdInd(1, frame(k)?),
        0x00 => Op::LdImm(k),
        0x80 => Op::LdLen,
        0x60 => Op::LdMem(mem()?),
        0x01 => Op::LdxImm(k),
        0x81 => Op::LdxLen,
        0x61 => Op::LdxMem(mem()?),
        0xb1 => Op::LdxMsh(frame(k)?),
        0x02 => Op::St(mem()?),
        0x03 => Op::Stx(mem()?),
        0x84 => Op::Neg,
        c if c & !0xf8 == ALU => {
            let alu = match c & 0xf0 {
                0x00 => Alu::Add,
                0x10 => Alu::Sub,
                0x20 => Alu::Mul,
                0x30 => Alu::Div,
                0x40 => Alu::Or,
                0x50 => Alu::And,
                0x60 => Alu::Lsh,
                0x70 => Alu::Rsh,
                0x90 => Alu::Mod,
                0xa0 => Alu::Xor,
                _ => return Err(Why::Opcode),
            };
            let s = src(c);
            match (alu, s) {
                (Alu::Div | Alu::Mod, Src::K(0)) => return Err(Why::DivideByZero),
                (Alu::Lsh | Alu::Rsh, Src::K(32..)) => return Err(Why::Shift),
                _ => {}
            }
            Op::Alu(alu, s)
        }
        0x05 => Op::Ja(target(k)?),
        c if c & !0xf8 == JMP => {
            let cond = match c & 0xf0 {
                0x10 => Cond::Eq,
                0x20 => Cond::Gt,
                0x30 => Cond::Ge,
                0x40 => Cond::Set,
                _ => return Err(Why::Opcode),
            };
            Op::Jmp(cond, src(c), target(u32::from(i.jt))?, target(u32::from(i.jf))?)
        }
        0x06 => Op::RetK(k),
        0x16 => Op::RetA,
        0x07 => Op::Tax,
        0x87 => Op::Txa,
        _ => return Err(Why::Opcode),
    })
}

mod tagged;
pub use tagged::Tagged;

#[cfg(test)]
mod tests;
