//! SET_PROGRAM: a handle's capture program (classic BPF).

use super::*;

/// Most instructions in a capture program (Linux's `BPF_MAXINSNS`).
pub const MAX_PROGRAM_INSNS: usize = 4096;

/// One classic BPF instruction, as `struct bpf_insn` (and Linux's `struct
/// sock_filter`) lay it out: the opcode, the jump offsets if true and if
/// false, and the constant. `tcpdump -dd` prints them as
/// `{ code, jt, jf, k }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl BpfInsn {
    pub const LEN: usize = 8;

    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        BpfInsn { code, jt, jf, k }
    }
}

/// A checked `IOCTL_RAWNIC_SET_PROGRAM` request: the wire format only
/// (lengths); what the instructions do is checked where the program is
/// made (`rawnic_logic::bpf::Program::new`).
///
/// Layout: header (4), `count: u32`, then `count` × 8-byte instructions
/// (`code: u16`, `jt: u8`, `jf: u8`, `k: u32`). `count` 0 removes the
/// handle's program.
pub struct ProgramRequest<'a> {
    insns: &'a [u8],
}

impl<'a> ProgramRequest<'a> {
    pub const FIXED: usize = 8;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() < Self::FIXED {
            return Err(Error::Truncated);
        }
        let count = u32_at(buf, 4) as usize;
        if count > MAX_PROGRAM_INSNS {
            return Err(Error::InvalidParameter);
        }
        if buf.len() != Self::FIXED + BpfInsn::LEN * count {
            return Err(Error::LengthMismatch);
        }
        Ok(ProgramRequest { insns: &buf[Self::FIXED..] })
    }

    /// How many instructions (0: the program is removed).
    pub fn len(&self) -> usize {
        self.insns.len() / BpfInsn::LEN
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The instructions, each read once from the request.
    pub fn insns(&self) -> impl ExactSizeIterator<Item = BpfInsn> + 'a {
        self.insns.chunks_exact(BpfInsn::LEN).map(|c| BpfInsn {
            code: u16_at(c, 0),
            jt: c[2],
            jf: c[3],
            k: u32_at(c, 4),
        })
    }

    /// The request's length for `n` instructions.
    pub const fn wire_len(n: usize) -> usize {
        Self::FIXED + BpfInsn::LEN * n
    }

    /// Writes the request for `insns` (at most `MAX_PROGRAM_INSNS`).
    pub fn emit(insns: &[BpfInsn], buf: &mut [u8]) -> Result<usize, Error> {
        if insns.len() > MAX_PROGRAM_INSNS {
            return Err(Error::InvalidParameter);
        }
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(insns.len() as u32)?;
        for i in insns {
            w.u16(i.code)?.u8(i.jt)?.u8(i.jf)?.u32(i.k)?;
        }
        Ok(w.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(insns: &[BpfInsn]) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0u8; ProgramRequest::wire_len(insns.len())];
        assert_eq!(ProgramRequest::emit(insns, &mut buf), Ok(buf.len()));
        buf
    }

    #[test]
    fn a_program_goes_over_the_wire_and_back() {
        let insns = [BpfInsn::new(0x28, 0, 0, 12), BpfInsn::new(0x15, 0, 1, 0x806), BpfInsn::new(0x6, 0, 0, 0x40000)];
        let buf = emitted(&insns);
        assert_eq!(&buf[8..16], &[0x28, 0, 0, 0, 12, 0, 0, 0], "struct bpf_insn's layout, little-endian");
        let r = ProgramRequest::new_checked(&buf).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r.insns().eq(insns.iter().copied()));
        // No instructions: a removal.
        let none = emitted(&[]);
        assert!(ProgramRequest::new_checked(&none).unwrap().is_empty());
    }

    #[test]
    fn wrong_lengths_and_counts_are_refused() {
        let buf = emitted(&[BpfInsn::new(0x6, 0, 0, 0); 2]);
        assert_eq!(ProgramRequest::new_checked(&buf[..4]).err(), Some(Error::Truncated));
        assert_eq!(ProgramRequest::new_checked(&buf[..buf.len() - 1]).err(), Some(Error::LengthMismatch));
        let mut longer = buf.clone();
        longer.push(0);
        assert_eq!(ProgramRequest::new_checked(&longer).err(), Some(Error::LengthMismatch));
        let mut many = buf.clone();
        many[4..8].copy_from_slice(&(MAX_PROGRAM_INSNS as u32 + 1).to_le_bytes());
        assert_eq!(ProgramRequest::new_checked(&many).err(), Some(Error::InvalidParameter));
        // A count whose byte length would overflow 32 bits is just too many.
        many[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ProgramRequest::new_checked(&many).err(), Some(Error::InvalidParameter));
        let mut flagged = buf.clone();
        flagged[2] = 1;
        assert_eq!(ProgramRequest::new_checked(&flagged).err(), Some(Error::InvalidParameter));
        let too_many = std::vec![BpfInsn::default(); MAX_PROGRAM_INSNS + 1];
        assert_eq!(ProgramRequest::emit(&too_many, &mut [0u8; 8]).err(), Some(Error::InvalidParameter));
    }
}
