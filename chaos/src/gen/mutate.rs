//! Damaged requests, drawn last (so a seed's other choices stay what they
//! were): some of the garbage requests of a schedule become well-formed
//! requests of rawnic's IOCTLs with a few bytes flipped, a field stomped
//! with a boundary value, cut short or grown.
//!
//! The requests of the rings and of capture programs (SET_PROGRAM,
//! RING_ATTACH, RING_WAIT, RING_KICK, RING_DETACH) come from a stream of
//! their own (`more`): the main stream draws every damaged request's
//! template, edits and output length as it did before they existed, then
//! `more` turns `RING_TEMPLATES_PER_MILLE` of those templates into one of
//! theirs. A seed's damaged requests keep their places, edits and output
//! lengths; only some of their templates change.

use super::{QUERY_OIDS, SET_OIDS, frame_len};
use crate::schedule::{Edit, IoAction, OutLen, ProgramKind, Template};
use ndisim::rng::Rng;
use rawnic_proto::ring::{FRAME_SIZES, wait_flags};

/// Values that sit on the edges of length and count checks.
const BOUNDARIES: &[u32] =
    &[0, 1, 2, 7, 8, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFF8, 0xFFFF_FFFF];

/// Of the damaged requests, those whose template `more` turns into one of
/// the rings or of a capture program.
pub(super) const RING_TEMPLATES_PER_MILLE: u32 = 300;

/// Turns seven garbage requests in ten into damaged well-formed ones, and
/// adds one after about one action in 25 (on a handle slot drawn anew).
pub(super) fn mutate(r: &mut Rng, more: &mut Rng, handles: &mut [Vec<IoAction>], adapters: usize) {
    for list in handles.iter_mut() {
        let mut out = Vec::with_capacity(list.len() + list.len() / 16);
        for mut act in list.drain(..) {
            if let IoAction::Garbage { slot, .. } = act {
                if r.chance(700) {
                    act = damaged(r, more, slot, adapters);
                }
            }
            out.push(act);
            if r.chance(40) {
                let slot = r.below(4) as u8;
                out.push(damaged(r, more, slot, adapters));
            }
        }
        *list = out;
    }
}

fn damaged(r: &mut Rng, more: &mut Rng, slot: u8, adapters: usize) -> IoAction {
    let (request, edits, out_len) = (template(r, adapters), edits(r), out_len(r));
    let request = if more.chance(RING_TEMPLATES_PER_MILLE) { ring_template(more) } else { request };
    IoAction::Mutated { slot, request, edits, out_len }
}

/// Damaged requests of the rings and programs among a ring user's own
/// actions too (where garbage is rare, as in ring storms), where its rings
/// are attached, draining or detached: one after about one ring action or
/// capture program in `RING_DAMAGE_EVERY`, on the same slot. Drawn after
/// the other passes that draw for each of the handles' actions, from a
/// stream of its own, so every action a seed had stays, in the same order
/// (but in swarms, which draw from what the lists hold).
pub(super) fn ring_damage(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for list in handles.iter_mut() {
        let mut out = Vec::with_capacity(list.len() + list.len() / 16);
        for act in list.drain(..) {
            let slot = match act {
                IoAction::Ring { slot, .. } | IoAction::Program { slot, .. } => Some(slot),
                _ => None,
            };
            out.push(act);
            if let Some(slot) = slot.filter(|_| r.below(RING_DAMAGE_EVERY) == 0) {
                let request = ring_template(r);
                out.push(IoAction::Mutated { slot, request, edits: edits(r), out_len: out_len(r) });
            }
        }
        *list = out;
    }
}

/// See `ring_damage`.
const RING_DAMAGE_EVERY: u64 = 16;

/// A well-formed request of the rings or a capture program, whatever the
/// handle's state: a program the explorer sets (`programs.rs`), a UMEM of
/// a small shape the driver takes, a wait for what a wait may ask.
fn ring_template(r: &mut Rng) -> Template {
    match r.below(20) {
        0..=5 => {
            let kind = match super::programs::kind(r) {
                ProgramKind::TakeAll if r.chance(500) => ProgramKind::DeepOdd { at: super::programs::deep_at(r) },
                k => k,
            };
            Template::Program { kind }
        }
        6..=10 => {
            let mut size = || *r.pick(&[8u32, 16, 32, 64, 256]);
            let (fill, rx, tx, completion) = (size(), size(), size(), size());
            Template::RingAttach {
                frame_size: *r.pick(&FRAME_SIZES),
                frames: r.range(8, 64) as u32,
                fill,
                rx,
                tx,
                completion,
            }
        }
        11..=13 => Template::RingWait { flags: *r.pick(&[wait_flags::RX, wait_flags::COMPLETION, wait_flags::ALL]) },
        14..=16 => Template::RingKick,
        _ => Template::RingDetach,
    }
}

fn template(r: &mut Rng, adapters: usize) -> Template {
    match r.below(10) {
        0..=2 => Template::Open {
            a: r.below(adapters.max(1) as u64) as usize,
            ethertypes: (0..r.below(4)).map(|_| *r.pick(&[0x88B5u16, 0x0800, 0x86DD, 0x8100, 0])).collect(),
            filter: if r.chance(200) { r.next_u64() as u32 } else { rawnic_proto::filter::DEFAULT.bits() },
        },
        3..=5 => Template::SendBatch {
            frames: r.range(1, 4) as u8,
            len: frame_len(r),
            // Not any u16: the frames must not hold the bytes 88 B5.
            tci: r.chance(200).then(|| *r.pick(&[1u16, 0x0FFF, 0x1000, 0xE001])),
        },
        6..=7 => {
            let set = r.chance(400);
            let oid = if set { *r.pick(SET_OIDS) } else { *r.pick(QUERY_OIDS) };
            Template::Oid { set, oid, len: *r.pick(&[0u16, 4, 6, 8, 64]) }
        }
        _ => Template::Empty {
            code: *r.pick(&[
                rawnic_proto::IOCTL_RAWNIC_GET_VERSION,
                rawnic_proto::IOCTL_RAWNIC_LIST_BINDINGS,
                rawnic_proto::IOCTL_RAWNIC_WAIT_BINDS_COMPLETE,
                rawnic_proto::IOCTL_RAWNIC_GET_STATS,
                rawnic_proto::IOCTL_RAWNIC_WAIT_EVENT,
            ]),
        },
    }
}

fn edits(r: &mut Rng) -> Vec<Edit> {
    (0..r.range(1, 4))
        .map(|_| match r.below(10) {
            0..=3 => Edit::Flip { at: r.below(256) as u32, xor: 1 << r.below(8) },
            4..=6 => Edit::Stomp { at: r.below(128) as u32, value: *r.pick(BOUNDARIES) },
            7..=8 => Edit::Truncate { to: r.below(64) as u32 },
            _ => Edit::Extend { by: r.range(1, 64) as u16, fill: *r.pick(&[0u8, 0xFF, 0x41]) },
        })
        .collect()
}

fn out_len(r: &mut Rng) -> OutLen {
    match r.below(6) {
        0..=2 => OutLen::Right,
        3 => OutLen::Short,
        _ => OutLen::Bytes(*r.pick(&[0u32, 4, 65536])),
    }
}

/// Applies `edits` to `input`, in order.
pub fn apply(input: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let len = input.len();
        match *e {
            Edit::Flip { at, xor } if len > 0 => input[at as usize % len] ^= xor,
            Edit::Stomp { at, value } if len >= 4 => {
                let at = (at as usize % (len - 3)) & !3;
                input[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            Edit::Truncate { to } => input.truncate(to as usize % (len + 1)),
            Edit::Extend { by, fill } => input.resize(len + by as usize, fill),
            Edit::Flip { .. } | Edit::Stomp { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_stay_inside_the_request() {
        let mut v: Vec<u8> = (0..10).collect();
        apply(&mut v, &[Edit::Flip { at: 13, xor: 0x80 }, Edit::Stomp { at: 9, value: 0xAABB_CCDD }]);
        // 13 wraps to 3; 9 wraps to 9 % 7 = 2, rounded down to 0.
        assert_eq!(v, [0xDD, 0xCC, 0xBB, 0xAA, 4, 5, 6, 7, 8, 9]);
        apply(&mut v, &[Edit::Truncate { to: 14 }]);
        assert_eq!(v.len(), 3, "14 wraps to 14 % 11");
        apply(&mut v, &[Edit::Extend { by: 2, fill: 0xFF }, Edit::Truncate { to: 0 }, Edit::Flip { at: 5, xor: 1 }]);
        assert!(v.is_empty(), "an empty request takes flips and stomps as no-ops");
        apply(&mut v, &[Edit::Stomp { at: 0, value: 1 }]);
        assert!(v.is_empty());
    }
}
