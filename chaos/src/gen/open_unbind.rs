//! OPENs that race their adapter's unbind. The handle threads open
//! adapters, and the PnP thread unbinds them, at points of their lists
//! that meet only by chance, and an OPEN takes microseconds: the unbind
//! rarely comes while one is between finding its binding and checking
//! that it is not closing, or while it puts its handle in the binding's
//! table (`tests/driver_open_races.rs` lands each of those steps in
//! turn). Here, for `per_mille` of the schedule's unbinds, one or two
//! handle threads get, at about the same point of their lists as the
//! unbind's on the PnP thread's, a spare handle, a bounded wait for that
//! unbind to begin (`IoAction::AwaitUnbind`; the unbind waits up to 200 ms
//! for such a waiter), then an OPEN of the handle on the adapter,
//! sometimes closed again at once: the OPEN and the unbind start together.
//! Half the waits also aim a stall at one of the first 8 spin-lock acquires of the
//! OPEN (ndisim's `stall_lock_acquire`), so that the unbind lands between
//! two of its steps, as in `tests/driver_open_races.rs`.
//!
//! From a stream of its own, drawn last, and only inserting: with
//! `per_mille` 0 every seed's schedule is the one it had before.

use crate::schedule::*;
use ndisim::rng::Rng;

/// The default per mille of unbinds an OPEN is aimed at.
pub const OPEN_UNBIND_PER_MILLE: u32 = 250;

/// The handle slot the OPENs use (`stalls::requests`'s spare too).
const SPARE: u8 = 3;

pub(super) fn opens_into_unbinds(r: &mut Rng, per_mille: u32, pnp: &[PnpAction], handles: &mut [Vec<IoAction>]) {
    if per_mille == 0 || handles.is_empty() {
        return;
    }
    // (thread, point in its list as it is now, the actions)
    let mut inserts: Vec<(usize, usize, Vec<IoAction>)> = Vec::new();
    for (i, p) in pnp.iter().enumerate() {
        let PnpAction::Unbind { a } = *p else { continue };
        if !r.chance(per_mille) {
            continue;
        }
        // Where in the lists, as a fraction of their lengths.
        let at = i * 1000 / pnp.len();
        let threads = r.range(1, 2.min(handles.len() as u64)) as usize;
        let first = r.below(handles.len() as u64) as usize;
        for t in 0..threads {
            let thread = (first + t) % handles.len();
            let k = handles[thread].len() * at / 1000;
            let mut acts = vec![
                IoAction::Create { slot: SPARE },
                IoAction::AwaitUnbind {
                    a,
                    wait_ms: r.range(50, 400) as u32,
                    stall_at: if r.chance(500) { r.range(1, 8) as u8 } else { 0 },
                },
                super::profile::plain_open(
                    SPARE,
                    a,
                    *r.pick(&[
                        rawnic_proto::filter::DEFAULT.bits(),
                        rawnic_proto::filter::BROADCAST.bits(),
                        rawnic_proto::filter::PROMISCUOUS.bits() | rawnic_proto::filter::BROADCAST.bits(),
                    ]),
                ),
            ];
            if r.chance(300) {
                acts.push(IoAction::Close { slot: SPARE });
            }
            inserts.push((thread, k, acts));
        }
    }
    // The last points first, so that each lands where it was drawn, none
    // inside another's.
    inserts.sort_by_key(|&(t, k, _)| std::cmp::Reverse((t, k)));
    for (t, k, acts) in inserts {
        handles[t].splice(k..k, acts);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, Profile, generate};
    use crate::schedule::*;

    /// At 1000 every unbind gets its OPENs, on its adapter, and nothing
    /// else changes: without the waits and what follows them each
    /// schedule is the one of 0, itself what the seed gave before.
    #[test]
    fn every_unbind_gets_an_open_and_nothing_else_changes() {
        let (mut unbinds, mut waits) = (0, 0);
        for seed in 0..100 {
            let o = GenOptions { profile: Some(Profile::Teardown), rings: 250, ..GenOptions::plain(Mode::Det) };
            let old = generate(seed, o);
            let s = generate(seed, GenOptions { open_unbind: 1000, ..o });
            assert_eq!((&s.adapters, &s.pnp, &s.nic), (&old.adapters, &old.pnp, &old.nic), "seed {seed}");
            let unbound: Vec<usize> = s
                .pnp
                .iter()
                .chain(s.pnp_more.iter().flatten())
                .filter_map(|p| match p {
                    PnpAction::Unbind { a } => Some(*a),
                    _ => None,
                })
                .collect();
            unbinds += unbound.len();
            for (new, old) in s.handles.iter().zip(&old.handles) {
                for (i, x) in new.iter().enumerate() {
                    if let IoAction::AwaitUnbind { a, .. } = *x {
                        assert!(unbound.contains(&a), "seed {seed}: a wait for an unbind of {a} that never comes");
                        assert_eq!(new[i - 1], IoAction::Create { slot: 3 }, "seed {seed}");
                        assert!(matches!(new[i + 1], IoAction::Open { slot: 3, a: to, .. } if to == a), "seed {seed}");
                        waits += 1;
                    }
                }
                assert!(inserted_into(new, old), "seed {seed}: only the inserts differ");
            }
        }
        assert!(unbinds > 50 && waits >= unbinds, "{waits} waits for {unbinds} unbinds");
    }

    /// Whether `new` is `old` with blocks inserted: a create, a wait and an
    /// open, and maybe a close of the spare slot.
    fn inserted_into(new: &[IoAction], old: &[IoAction]) -> bool {
        match new.first() {
            None => old.is_empty(),
            Some(IoAction::Create { slot: 3 }) if matches!(new.get(1), Some(IoAction::AwaitUnbind { .. })) => {
                let rest = &new[3..];
                inserted_into(rest, old)
                    || (matches!(rest.first(), Some(IoAction::Close { slot: 3 })) && inserted_into(&rest[1..], old))
            }
            Some(x) => old.first() == Some(x) && inserted_into(&new[1..], &old[1..]),
        }
    }
}
