//! `IoAction::Program`: a handle's SET_PROGRAM, what its reply may be, and
//! the program oracle. The explorer's programs take every frame whole, cut
//! every frame (to 14 bytes or more), drop the marked frames of odd
//! sequence number, or take only the frames whose byte at some offset past
//! the first 128 is odd: the oracles of what a handle may receive stand as
//! they are, and the receive accounts check what it took. One is refused.
//!
//! The program oracle (in both modes: the driver stamps frames with the
//! system time ndisim gives it, virtual in det mode, which the explorer
//! reads too, `Sim::system_time_ns`): a record whose frame the driver
//! took while one program was surely in force on its file object, and
//! stayed so until the record was checked, obeys it: no odd marked frame
//! under `DropOdd`, no more bytes than the cut under `Cut`. A program
//! sees a frame as it was on the wire: a tag the NIC stripped is back in
//! place for it, so `DropOdd` looks past a tag, and a `Cut` counts the
//! tag's bytes that a record with `VLAN` does not have. A set counts
//! from its start (before the IOCTL) to its end (after it returns), since
//! the driver may swap the program in anywhere between; a frame is judged
//! only when every set of its file object that began before the check
//! had ended before the frame's stamp, and no two of them overlapped.

use super::{Ctx, lock};
use crate::schedule::ProgramKind;
use ndisim::Handle;
use rawnic_proto::{BpfInsn, IOCTL_RAWNIC_SET_PROGRAM, MAX_PROGRAM_INSNS, NtStatus, ProgramRequest};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
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
        ProgramKind::Cut { bytes } => vec![BpfInsn::new(0x06, 0, 0, u32::from(bytes.max(14)))],
        ProgramKind::DropOdd => vec![
            // ld #len; jge #MARKED (else take it)
            BpfInsn::new(0x80, 0, 0, 0),
            BpfInsn::new(0x35, 0, 12, crate::frames::MARKED as u32),
            // ldx #0; ldh [12]; jeq #0x8100 (else to the EtherType's test)
            BpfInsn::new(0x01, 0, 0, 0),
            BpfInsn::new(0x28, 0, 0, 12),
            BpfInsn::new(0x15, 0, 2, 0x8100),
            // A tag (inline, or one the NIC stripped, which the program
            // sees in place): ldx #4; ldh [16]
            BpfInsn::new(0x01, 0, 0, 4),
            BpfInsn::new(0x28, 0, 0, 16),
            // jeq #0x88b5 (else take it)
            BpfInsn::new(0x15, 0, 6, u32::from(crate::frames::ETHERTYPE)),
            // ld #len; sub x; jge #MARKED (else take it)
            BpfInsn::new(0x80, 0, 0, 0),
            BpfInsn::new(0x1c, 0, 0, 0),
            BpfInsn::new(0x35, 0, 3, crate::frames::MARKED as u32),
            // ldb [x + 18]: the sequence number's low byte; jset #1: drop
            BpfInsn::new(0x50, 0, 0, 18),
            BpfInsn::new(0x45, 0, 1, 1),
            BpfInsn::new(0x06, 0, 0, 0),
            TAKE_ALL,
        ],
        ProgramKind::DeepOdd { at } => vec![
            // ldb [at]; jset #1 (else drop); a load past the frame's end
            // drops it too.
            BpfInsn::new(0x30, 0, 0, u32::from(at)),
            BpfInsn::new(0x45, 0, 1, 1),
            TAKE_ALL,
            BpfInsn::new(0x06, 0, 0, 0),
        ],
        ProgramKind::Random { seed, refused } => crate::randprog::program(seed, refused),
    }
}

/// A file object, as `IoToken::file` names it.
type File = (usize, u64);

/// A SET_PROGRAM of a file object: from before it was sent to after it
/// returned (`u64::MAX` while on its way), and its program (`None`: the
/// program removed); `damaged`: a damaged request's (`set_damaged`),
/// whose program is none the explorer knows.
#[derive(Debug, Clone, Copy)]
struct Set {
    start: u64,
    end: u64,
    kind: Option<ProgramKind>,
    damaged: bool,
}

/// The SET_PROGRAMs of each file object, the refused ones taken out, and
/// how many records the oracle judged under a program that drops or cuts
/// (and of those, under a random program, whose answer the record's
/// bytes told).
#[derive(Default)]
pub(super) struct Sets(Mutex<HashMap<File, Vec<Set>>>, pub(super) AtomicU64, pub(super) AtomicU64);

/// The system time the driver stamps frames with, in ns since 1970 (the
/// virtual one in det mode).
fn now_ns(c: &Ctx<'_>) -> u64 {
    c.sim.system_time_ns()
}

/// A SET_PROGRAM of `input` on `h` (`out` bytes of output), recorded as
/// a set of `kind` (`damaged`: a program the explorer does not know) from
/// just before it to its completion; refused, it is marked as none (the
/// program in force did not change; marked rather than removed, so other
/// threads' indices stay).
fn recorded_set(
    c: &Ctx<'_>,
    h: &Handle,
    input: &[u8],
    out: usize,
    kind: Option<ProgramKind>,
    damaged: bool,
) -> (NtStatus, ndisim::IoResult) {
    let file = h.file();
    let at = file.map(|f| {
        let mut sets = lock(&c.rx.programs.0);
        let list = sets.entry(f).or_default();
        list.push(Set { start: now_ns(c), end: u64::MAX, kind, damaged });
        list.len() - 1
    });
    let r = h.ioctl(IOCTL_RAWNIC_SET_PROGRAM, input, out);
    let end = now_ns(c);
    c.completions.fetch_add(1, Ordering::Relaxed);
    let st = NtStatus(r.status);
    if let (Some(f), Some(i)) = (file, at) {
        let mut sets = lock(&c.rx.programs.0);
        if let Some(list) = sets.get_mut(&f) {
            if st == NtStatus::SUCCESS {
                list[i].end = end;
            } else {
                list[i] = Set { start: u64::MAX, end: 0, kind: None, damaged: false };
            }
        }
    }
    (st, r)
}

/// The statuses of a program refused as invalid.
fn refused_as_invalid(st: NtStatus) -> bool {
    matches!(
        st,
        NtStatus::INVALID_PARAMETER
            | NtStatus::INFO_LENGTH_MISMATCH
            | NtStatus::BUFFER_TOO_SMALL
            | NtStatus::REVISION_MISMATCH
    )
}

/// Sets a program of `kind` on `h`: a valid one must not be refused as
/// invalid, the refused one must not be taken.
pub(super) fn set(c: &Ctx<'_>, h: &Handle, kind: ProgramKind) {
    let insns = insns(kind);
    let mut input = vec![0u8; ProgramRequest::wire_len(insns.len())];
    ProgramRequest::emit(&insns, &mut input).expect("a program the explorer writes fits");
    let program = (!insns.is_empty()).then_some(kind);
    let (st, r) = recorded_set(c, h, &input, 0, program, false);
    let invalid = refused_as_invalid(st);
    let wrong = if kind.refused() { st == NtStatus::SUCCESS } else { invalid };
    if st == NtStatus::SUCCESS && !kind.refused() {
        c.programs_set.fetch_add(1, Ordering::Relaxed);
    }
    if wrong || r.information != 0 {
        c.problem(format!(
            "SET_PROGRAM of a {kind:?} program: {st:?} with {} bytes of output (a valid program must not be refused as invalid, nor an invalid one taken)",
            r.information
        ));
    }
}

/// The program surely in force on `file` from `ts` to now (`Some(None)`:
/// none), or `None` when it is not known.
pub(super) fn in_force(c: &Ctx<'_>, file: File, ts: u64) -> Option<Option<ProgramKind>> {
    let now = now_ns(c);
    let sets = lock(&c.rx.programs.0);
    let Some(list) = sets.get(&file) else { return Some(None) };
    // A set that began at the same instant as this check (the virtual
    // clock of det mode stands still between its steps) may have begun
    // before it.
    let mut done: Vec<Set> = list.iter().copied().filter(|s| s.start <= now).collect();
    if done.iter().any(|s| s.end >= ts) {
        return None;
    }
    done.sort_by_key(|s| s.end);
    // Two that overlapped: which took effect last is not known.
    if done.windows(2).any(|w| w[1].start <= w[0].end) {
        return None;
    }
    match done.last() {
        Some(s) if s.damaged => None,
        last => Some(last.and_then(|s| s.kind)),
    }
}

/// Whether a damaged SET_PROGRAM of `file` was taken (or is on its way):
/// the handle's program may since have cut frames below their Ethernet
/// header, which the programs the explorer writes never do.
pub(super) fn damaged(c: &Ctx<'_>, file: File) -> bool {
    lock(&c.rx.programs.0).get(&file).is_some_and(|l| l.iter().any(|s| s.damaged && s.start != u64::MAX))
}

/// A damaged SET_PROGRAM (`Template::Program` with its edits): `input` as
/// edited, `out` bytes of output. What the driver must make of it is
/// what `ProgramRequest::new_checked` and `rawnic_logic::bpf::Program::
/// new` make of it: a request that does not parse is refused with its
/// error's status, a program that does not verify with INVALID_PARAMETER
/// (or INSUFFICIENT_RESOURCES, the programs' pool), one that does is not
/// refused as invalid; never any output. One taken is a program the
/// explorer does not know: the program oracle stands aside for the file
/// object from its start on (`in_force`), unless it removed the program.
/// On a handle `shared` with other threads, one of which may have closed
/// it, the I/O manager may fail it (`INVALID_HANDLE`) before the driver.
pub(super) fn set_damaged(c: &Ctx<'_>, h: &Handle, shared: bool, input: &[u8], out: usize) {
    // Err: the status of a request that does not parse; Ok(None): it
    // removes the program; Ok(Some(valid)).
    let want = match ProgramRequest::new_checked(input) {
        Err(e) => Err(e.status()),
        Ok(req) if req.is_empty() => Ok(None),
        Ok(req) => Ok(Some(rawnic_logic::bpf::Program::new(req.insns()).is_ok())),
    };
    let (st, r) = recorded_set(c, h, input, out, None, want != Ok(None));
    let invalid = refused_as_invalid(st);
    let right = c.refusal_excused(shared, st)
        || match want {
            Err(s) => st == s,
            Ok(None) | Ok(Some(true)) => !invalid && st != NtStatus::PENDING,
            Ok(Some(false)) => matches!(st, NtStatus::INVALID_PARAMETER | NtStatus::INSUFFICIENT_RESOURCES),
        };
    if !right || r.information != 0 {
        c.problem(format!(
            "a damaged SET_PROGRAM ({} bytes, {out} of output; the explorer's parse: {want:?}, Ok(Some(valid))) completed with {st:?} and {} bytes of output",
            input.len(),
            r.information
        ));
    }
}

/// Whether a program of `kind` (`None`: no program) keeps `wire`, a frame
/// as on the wire, as the instructions of `insns` do.
pub(super) fn keeps(kind: Option<ProgramKind>, wire: &[u8]) -> bool {
    let at = |i: usize| wire.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match kind {
        None
        | Some(ProgramKind::Clear | ProgramKind::TakeAll | ProgramKind::Reader | ProgramKind::Longest)
        | Some(ProgramKind::Cut { .. }) => true,
        Some(ProgramKind::Refused | ProgramKind::Random { refused: true, .. }) => false,
        Some(ProgramKind::Random { seed, refused: false }) => {
            let v = crate::refbpf::View { known: wire.to_vec(), len: wire.len() as u32 };
            crate::refbpf::eval(&random(seed), &v) != crate::refbpf::Verdict::Keep(0)
        }
        Some(ProgramKind::DropOdd) => {
            // Behind one 802.1Q tag at most: x is 4 past one.
            let x = if at(12) == Some(crate::frames::TPID_8021Q) { 4 } else { 0 };
            let marked = at(12 + x) == Some(crate::frames::ETHERTYPE) && wire.len() - x >= crate::frames::MARKED;
            !(marked && wire.get(x + 18).is_some_and(|b| b & 1 == 1))
        }
        Some(ProgramKind::DeepOdd { at }) => wire.get(usize::from(at)).is_some_and(|b| b & 1 == 1),
    }
}

/// The instructions of random program `seed` (valid), written once per
/// thread and seed.
fn random(seed: u32) -> std::rc::Rc<Vec<BpfInsn>> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u32, std::rc::Rc<Vec<BpfInsn>>)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        match &*l {
            Some((s, p)) if *s == seed => p.clone(),
            _ => {
                let p = std::rc::Rc::new(crate::randprog::program(seed, false));
                *l = Some((seed, p.clone()));
                p
            }
        }
    })
}

/// The program oracle on a record `file` got through `via`: `data` its
/// bytes, `ts` its stamp, `origlen` its frame's length.
pub(super) fn check_record(c: &Ctx<'_>, via: &str, file: File, data: &[u8], ts: u64, flags: u16, rec: (u16, u32)) {
    let Some(Some(kind)) = in_force(c, file, ts) else { return };
    if matches!(
        kind,
        ProgramKind::DropOdd | ProgramKind::Cut { .. } | ProgramKind::DeepOdd { .. } | ProgramKind::Random { .. }
    ) {
        c.rx.programs.1.fetch_add(1, Ordering::Relaxed);
    }
    match kind {
        ProgramKind::Random { seed, .. } => check_random(c, via, seed, data, flags, rec),
        ProgramKind::DropOdd => {
            // The program looks behind one 802.1Q tag as on the wire: one
            // inline, or the one the NIC stripped (`VLAN`), not both.
            let seq = if flags & rawnic_proto::frame_flags::VLAN != 0 {
                crate::frames::seq_of(data)
            } else {
                crate::frames::seq_behind(data, &[crate::frames::TPID_8021Q])
            };
            if let Some(seq) = seq.filter(|s| s % 2 == 1) {
                c.problem(format!(
                    "{via}: got frame {seq}, which its handle's capture program drops (odd marked frames)"
                ));
            }
        }
        ProgramKind::Cut { bytes } if data.len() > delivered(bytes.max(14), flags) => c.problem(format!(
            "{via}: a record of {} bytes (flags {flags:#x}) under a capture program that keeps {} of the frame as on the wire",
            data.len(),
            bytes.max(14)
        )),
        ProgramKind::DeepOdd { at } => {
            let cut = flags & rawnic_proto::frame_flags::TRUNCATED != 0;
            match recorded(at, flags).map(|i| data.get(i)) {
                Some(Some(b)) if b & 1 == 0 => c.problem(format!(
                    "{via}: a {}-byte record (flags {flags:#x}) whose byte {at} as on the wire is {b:#04x}, under a capture program that takes only frames with that byte odd",
                    data.len()
                )),
                Some(None) if !cut => c.problem(format!(
                    "{via}: a whole {}-byte record (flags {flags:#x}) with no byte {at} as on the wire, under a capture program that drops frames too short to have one",
                    data.len()
                )),
                _ => {}
            }
        }
        _ => {}
    }
}

/// The oracle of a random program `seed` (`programs::random`) on a
/// record: its own evaluator (`refbpf.rs`) on the frame as the driver's
/// program saw it (the record's bytes, its stripped tag `rec.0` back in
/// place, of `rec.1` bytes; a schedule frame's bytes past the record's
/// end rebuilt, `frames::complete`) must take the frame, and keep no
/// fewer bytes than the record has. A record of another frame cut before
/// a byte the program loads is not judged.
fn check_random(c: &Ctx<'_>, via: &str, seed: u32, data: &[u8], flags: u16, (tci, origlen): (u16, u32)) {
    use crate::refbpf::{Verdict, delivered, eval, on_record};
    let stripped = flags & rawnic_proto::frame_flags::VLAN != 0;
    // A schedule frame cut short: the rest of it is known too.
    let whole = crate::frames::complete(data, origlen as usize);
    let v = on_record(whole.as_deref().unwrap_or(data), origlen, stripped.then_some(tci));
    let Verdict::Keep(keep) = eval(&random(seed), &v) else { return };
    c.rx.programs.2.fetch_add(1, Ordering::Relaxed);
    let keep = delivered(keep, origlen, stripped);
    if keep == 0 {
        c.problem(format!(
            "{via}: a {}-byte record (flags {flags:#x}, TCI {tci:#06x}) of a {origlen}-byte frame, which its handle's random capture program (seed {seed}) drops",
            data.len()
        ));
    } else if data.len() as u64 > u64::from(keep) {
        c.problem(format!(
            "{via}: a {}-byte record (flags {flags:#x}, TCI {tci:#06x}) of a {origlen}-byte frame, whose handle's random capture program (seed {seed}) keeps {keep} bytes of it",
            data.len()
        ));
    }
}

/// Where byte `at` of the frame as on the wire is in a record with
/// `flags`: 4 bytes on when the NIC stripped a tag (`VLAN`); `None` when
/// it is a byte of that tag, which the record does not hold.
fn recorded(at: u16, flags: u16) -> Option<usize> {
    let at = usize::from(at);
    match flags & rawnic_proto::frame_flags::VLAN {
        0 => Some(at),
        _ if at < 12 => Some(at),
        _ if at < 16 => None,
        _ => Some(at - 4),
    }
}

/// Of a cut at `bytes` of the frame as on the wire, the bytes of a record
/// with `flags`: a tag the NIC stripped (`VLAN`) is in the frame the
/// program sees, after the MAC addresses, and not in the record.
fn delivered(bytes: u16, flags: u16) -> usize {
    let b = usize::from(bytes);
    match flags & rawnic_proto::frame_flags::VLAN {
        0 => b,
        _ if b <= 16 => b.min(12),
        _ => b - 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_a_header_and_drop_odd_drops_only_odd_marked_frames() {
        let run = |kind, f: &[u8]| rawnic_logic::bpf::Program::new(insns(kind).into_iter()).expect("valid").run(f);
        let mac = [2, 0, 0, 0, 0, 1];
        for seq in [0u32, 1, 2, 255, 256, 257] {
            let f = crate::frames::build(crate::schedule::Dst::Broadcast, mac, seq, 100);
            let want = if seq % 2 == 1 { 0 } else { u32::MAX };
            assert_eq!(run(ProgramKind::DropOdd, &f), want, "seq {seq}");
            // With a tag the NIC stripped (the program sees it in place),
            // or inline.
            let p = rawnic_logic::bpf::Program::new(insns(ProgramKind::DropOdd).into_iter()).expect("valid");
            assert_eq!(p.run_stripped(&f[..], 5), want, "seq {seq}, stripped");
            let inline = [&f[..12], &[0x81, 0, 0, 5][..], &f[12..]].concat();
            assert_eq!(p.run(&inline[..]), want, "seq {seq}, inline");
            assert_eq!(p.run(&inline[..crate::frames::MARKED + 3]), u32::MAX, "seq {seq}, too short to be marked");
            assert_eq!(run(ProgramKind::Cut { bytes: 60 }, &f), 60);
        }
        // Not the schedule's: taken whole.
        let vlan = rawnic_proto::frame_flags::VLAN;
        let other: Vec<u8> = (0..100u8).collect();
        assert_eq!(run(ProgramKind::DropOdd, &other), u32::MAX);
        assert_eq!(run(ProgramKind::DropOdd, &other[..5]), u32::MAX);
        assert_eq!(run(ProgramKind::Cut { bytes: 3 }, &other), 14);
        // A deep load: odd bytes taken, even ones and frames too short
        // dropped; with a tag the NIC stripped, the byte 4 on.
        let deep = rawnic_logic::bpf::Program::new(insns(ProgramKind::DeepOdd { at: 200 }).into_iter()).expect("valid");
        let mut f: Vec<u8> = vec![0; 300];
        f[200] = 3;
        assert_eq!(deep.run(&f[..]), u32::MAX);
        f[200] = 2;
        assert_eq!(deep.run(&f[..]), 0);
        assert_eq!(deep.run(&f[..200]), 0);
        f[196] = 1;
        assert_eq!(deep.run_stripped(&f[..], 5), u32::MAX);
        assert_eq!(
            [0, 11, 12, 15, 16, 200].map(|a| recorded(a, vlan)),
            [Some(0), Some(11), None, None, Some(12), Some(196)]
        );
        assert_eq!(recorded(200, 0), Some(200));
        // A cut as on the wire, of a record whose tag the NIC stripped.
        assert_eq!([14, 16, 17, 60].map(|b| delivered(b, vlan)), [12, 12, 13, 56]);
        assert_eq!(delivered(60, 0), 60);
    }

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
