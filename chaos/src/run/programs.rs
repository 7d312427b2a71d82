//! `IoAction::Program`: a handle's SET_PROGRAM, and what its reply may be.
//! Every program the explorer sets takes every frame whole (so the
//! oracles of what a handle receives stand as they are); one is refused.

use super::Ctx;
use crate::schedule::ProgramKind;
use ndisim::Handle;
use rawnic_proto::{BpfInsn, IOCTL_RAWNIC_SET_PROGRAM, MAX_PROGRAM_INSNS, NtStatus, ProgramRequest};
use std::sync::atomic::Ordering;

/// The instructions of a program of `kind`.
pub(super) fn insns(kind: ProgramKind) -> Vec<BpfInsn> {
    const TAKE_ALL: BpfInsn = BpfInsn::new(0x06, 0, 0, u32::MAX);
    match kind {
        ProgramKind::Clear => Vec::new(),
        ProgramKind::TakeAll => vec![TAKE_ALL],
        ProgramKind::Reader => vec![
            // ld #len; jge #14 (else take it)
            BpfInsn::new(0x80, 0, 0, 0),
            BpfInsn::new(0x35, 0, 5, 14),
            // ldh [12]; st M[3]; ldxb 4*([0]&0xf); ldx #13; ldb [x+0]
            BpfInsn::new(0x28, 0, 0, 12),
            BpfInsn::new(0x02, 0, 0, 3),
            BpfInsn::new(0xb1, 0, 0, 0),
            BpfInsn::new(0x01, 0, 0, 13),
            BpfInsn::new(0x50, 0, 0, 0),
            TAKE_ALL,
        ],
        ProgramKind::Longest => {
            let mut v = vec![BpfInsn::new(0x05, 0, 0, 0); MAX_PROGRAM_INSNS - 1];
            v.push(TAKE_ALL);
            v
        }
        ProgramKind::Refused => vec![BpfInsn::new(0x15, 0, 2, 0), TAKE_ALL],
    }
}

/// Sets a program of `kind` on `h`: a valid one must not be refused as
/// invalid, the refused one must not be taken.
pub(super) fn set(c: &Ctx<'_>, h: &Handle, kind: ProgramKind) {
    let insns = insns(kind);
    let mut input = vec![0u8; ProgramRequest::wire_len(insns.len())];
    ProgramRequest::emit(&insns, &mut input).expect("a program the explorer writes fits");
    let r = h.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &input, 0);
    c.completions.fetch_add(1, Ordering::Relaxed);
    let st = NtStatus(r.status);
    let invalid = matches!(
        st,
        NtStatus::INVALID_PARAMETER
            | NtStatus::INFO_LENGTH_MISMATCH
            | NtStatus::BUFFER_TOO_SMALL
            | NtStatus::REVISION_MISMATCH
    );
    let wrong = match kind {
        ProgramKind::Refused => st == NtStatus::SUCCESS,
        _ => invalid,
    };
    if st == NtStatus::SUCCESS && kind != ProgramKind::Refused {
        c.programs_set.fetch_add(1, Ordering::Relaxed);
    }
    if wrong || r.information != 0 {
        c.problem(format!(
            "SET_PROGRAM of a {kind:?} program: {st:?} with {} bytes of output (a valid program must not be refused as invalid, nor an invalid one taken)",
            r.information
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_but_the_refused_one_takes_every_frame_whole() {
        let frames: Vec<Vec<u8>> =
            [0usize, 1, 5, 13, 14, 15, 60, 1514].iter().map(|&n| (0..n).map(|i| (i * 37) as u8).collect()).collect();
        for kind in [ProgramKind::TakeAll, ProgramKind::Reader, ProgramKind::Longest] {
            let p = rawnic_logic::bpf::Program::new(insns(kind).into_iter()).expect("valid");
            for f in &frames {
                assert_eq!(p.run(&f[..]), u32::MAX, "{kind:?} on {} bytes", f.len());
            }
        }
        assert!(rawnic_logic::bpf::Program::new(insns(ProgramKind::Refused).into_iter()).is_err());
    }
}
