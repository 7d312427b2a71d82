//! Capture programs (`IoAction::Program`): a handle sets one after about
//! one action in 30, and one handle in four right after its CreateFile,
//! before its OPEN. Drawn from a stream of their own, so a seed's other
//! choices stay what they were; half the programs that take every
//! frame then become ones that load a byte deep in the frame (`deep`,
//! from another stream).

use crate::schedule::{IoAction, ProgramKind};
use ndisim::rng::Rng;

pub(super) fn programs(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for list in handles.iter_mut() {
        let mut out = Vec::with_capacity(list.len() + list.len() / 16);
        for act in list.drain(..) {
            let created = matches!(act, IoAction::Create { .. });
            let slot = act.slot();
            out.push(act);
            if let Some(slot) = slot {
                if r.chance(if created { 250 } else { 33 }) {
                    out.push(IoAction::Program { slot, kind: kind(r) });
                }
            }
        }
        *list = out;
    }
}

/// The program of one `IoAction::Program` (or of a damaged SET_PROGRAM,
/// `mutate.rs`).
pub(super) fn kind(r: &mut Rng) -> ProgramKind {
    let cut = ProgramKind::Cut { bytes: *r.pick(&[14u16, 26, 60, 200]) };
    *r.pick(&[
        ProgramKind::TakeAll,
        ProgramKind::TakeAll,
        ProgramKind::Reader,
        ProgramKind::Reader,
        ProgramKind::Reader,
        ProgramKind::Clear,
        ProgramKind::Longest,
        ProgramKind::Refused,
        cut,
        ProgramKind::DropOdd,
    ])
}

/// `--random-programs`'s default: a quarter of the programs.
pub const RANDOM_PROGRAMS_PER_MILLE: u32 = 250;

/// `per_mille` of the programs set (but `Clear`, `Longest` and `Refused`)
/// become random ones (`randprog.rs`), one in ten of those spoiled so
/// that the driver must refuse it. Per mille 0 leaves them as they were.
pub(super) fn random(r: &mut Rng, per_mille: u32, handles: &mut [Vec<IoAction>]) {
    if per_mille == 0 {
        return;
    }
    for act in handles.iter_mut().flatten() {
        if let IoAction::Program { kind, .. } = act {
            let fixed = matches!(kind, ProgramKind::Clear | ProgramKind::Longest | ProgramKind::Refused);
            if !fixed && r.chance(per_mille) {
                *kind = ProgramKind::Random { seed: r.next_u64() as u32, refused: r.chance(100) };
            }
        }
    }
}

/// The deep load of a `DeepOdd` program.
pub(super) fn deep_at(r: &mut Rng) -> u16 {
    *r.pick(&[129u16, 130, 200, 296, 511, 600, 1000, 1400])
}

/// Half the `TakeAll` programs become `DeepOdd` ones, which load a
/// byte past the first 128 of the frame: in frames laid out in many small
/// MDLs (`shapes.rs`) the load must find its MDL far down the chain.
pub(super) fn deep(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        if let IoAction::Program { kind, .. } = act {
            if *kind == ProgramKind::TakeAll && r.chance(500) {
                *kind = ProgramKind::DeepOdd { at: deep_at(r) };
            }
        }
    }
}
