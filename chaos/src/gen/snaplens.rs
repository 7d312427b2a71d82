//! Snap lengths on more opens. The generator gives one to about one open
//! in seven, so few records meet one: a driver that kept one byte more
//! than the snap length failed 2 of 40 schedules. Here `per_mille` of the
//! opens that have none get one: half of them from 14 to 200 bytes, half
//! at or next to the lengths the explorer's frames have (the header
//! alone, the shortest frame, a tagged one, the longest), where an
//! off-by-one shows.
//!
//! From a stream of its own, drawn last, and only changing a snap length
//! of 0: with `per_mille` 0 every seed's schedule is the one it had
//! before.

use crate::schedule::*;
use ndisim::rng::Rng;

/// The default per mille of the opens without a snap length that get one.
pub const SNAPLENS_PER_MILLE: u32 = 250;

/// Lengths at which an off-by-one shows: the Ethernet header, one byte
/// either side of the shortest frame, of 64 (a tagged shortest one) and of
/// the longest untagged frame.
const EDGES: [u32; 11] = [14, 15, 59, 60, 61, 63, 64, 65, 1513, 1514, 1515];

pub(super) fn snaplens(r: &mut Rng, per_mille: u32, handles: &mut [Vec<IoAction>]) {
    if per_mille == 0 {
        return;
    }
    for act in handles.iter_mut().flatten() {
        if let IoAction::Open { snaplen, .. } = act {
            if *snaplen == 0 && r.chance(per_mille) {
                *snaplen = if r.chance(500) { r.range(14, 200) as u32 } else { *r.pick(&EDGES) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, generate};
    use super::*;

    fn snaplens(s: &Schedule) -> Vec<u32> {
        let opens = s.handles.iter().flatten().filter_map(|a| match a {
            IoAction::Open { snaplen, .. } => Some(*snaplen),
            _ => None,
        });
        opens.collect()
    }

    #[test]
    fn snap_lengths_are_drawn_on_their_own_for_opens_without_one() {
        let off = GenOptions::plain(Mode::Det);
        let on = GenOptions { snaplens: SNAPLENS_PER_MILLE, ..off };
        let (mut opens, mut had, mut given, mut edges) = (0, 0, 0, 0);
        for seed in 214_900_000..214_900_200 {
            let (a, mut b) = (generate(seed, off), generate(seed, on));
            let (before, after) = (snaplens(&a), snaplens(&b));
            assert_eq!(before.len(), after.len(), "seed {seed}");
            for (&x, &y) in before.iter().zip(&after) {
                opens += 1;
                if x != 0 {
                    had += 1;
                    assert_eq!(x, y, "seed {seed}: a snap length the generator drew is kept");
                } else if y != 0 {
                    given += 1;
                    edges += usize::from(EDGES.contains(&y));
                    assert!((14..=1515).contains(&y), "seed {seed}: {y}");
                }
            }
            // Nothing else changes.
            for act in b.handles.iter_mut().flatten() {
                if let IoAction::Open { snaplen, .. } = act {
                    *snaplen = 0;
                }
            }
            let mut a = a;
            for act in a.handles.iter_mut().flatten() {
                if let IoAction::Open { snaplen, .. } = act {
                    *snaplen = 0;
                }
            }
            assert_eq!(a, b, "seed {seed}");
        }
        // A quarter of the opens without one; about half of those at an edge.
        let without = opens - had;
        assert!(given * 5 > without && given * 3 < without, "{given} of {without}");
        assert!(edges * 3 > given && edges * 3 < given * 2, "{edges} of {given}");
    }
}
