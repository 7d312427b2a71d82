//! Receive shapes (`Shape`): a burst's NBLs of different sizes (one
//! NET_BUFFER, a few, more than the driver walks at a time), each NBL with
//! its own 802.1Q info or none, and each frame in its own MDL layout: data
//! deep in the chain behind headroom MDLs, at an offset into an MDL that is
//! not the chain's first, zero-length MDLs around every MDL, a last MDL
//! longer than the frame, pages not mapped yet. Swarm-style, a schedule
//! draws how many of its bursts get a shape: most schedules a tenth,
//! some a third, some nearly all (and every `rx-storm` schedule).

use super::Profile;
use crate::schedule::*;
use ndisim::rng::Rng;

/// NBL sizes: one NET_BUFFER, a few, and past the driver's 32-frame walk.
const SIZES: [u8; 11] = [1, 1, 2, 3, 5, 8, 17, 32, 33, 40, 64];

/// Gives some of `nic`'s receive bursts a shape; returns the per mille
/// drawn.
pub(super) fn shapes(r: &mut Rng, profile: Profile, nic: &mut [NicAction]) -> u32 {
    let per_mille = match (profile, r.below(10)) {
        (Profile::RxStorm, _) | (_, 8..=9) => 850,
        (_, 6..=7) => 350,
        _ => 100,
    };
    for act in nic.iter_mut() {
        if let NicAction::Inject { len, coalesce: None, shape, .. } = act {
            if r.chance(per_mille) {
                *shape = Some(draw(r, *len));
            }
        }
    }
    per_mille
}

/// A shape for frames of `len` bytes.
fn draw(r: &mut Rng, len: u16) -> Shape {
    let sizes = if r.chance(800) { (0..r.range(1, 4)).map(|_| *r.pick(&SIZES)).collect() } else { Vec::new() };
    let tcis = if r.chance(600) {
        (0..r.range(1, 4))
            .map(|_| match r.below(5) {
                0 | 1 => None,
                // NDIS's "no tag".
                2 => Some(0),
                _ => Some(r.range(1, 0xFFFF) as u16),
            })
            .collect()
    } else {
        Vec::new()
    };
    let layouts = if r.chance(700) { (0..r.range(1, 5)).map(|_| layout(r, len)).collect() } else { Vec::new() };
    Shape { sizes, tcis, layouts }
}

/// One frame's MDL layout, of a few hundred MDLs at most.
fn layout(r: &mut Rng, len: u16) -> Layout {
    let headroom = *r.pick(&[0u16, 2, 33, 64, 100, 200]);
    let headroom_mdl = r.chance(500);
    let mut l = Layout {
        headroom,
        first: *r.pick(&[0u16, 0, 1, 6, 13, 14, 18, 54]),
        chunk: *r.pick(&[0u16, 0, 1, 3, 7, 16, 64, 256, 1024]),
        unmapped: r.chance(250),
        headroom_mdl,
        headroom_mdls: if headroom_mdl { *r.pick(&[0u8, 1, 2, 3, 5]) } else { 0 },
        current_offset: if headroom_mdl { (*r.pick(&[0u16, 0, 1, 5, 10])).min(headroom) } else { 0 },
        empty_mdls: r.chance(400),
        tail: *r.pick(&[0u16, 0, 0, 1, 5, 64, 300]),
    };
    while len.checked_div(l.chunk).is_some_and(|n| n > 300) {
        l.chunk *= 4;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, Profile, generate};
    use crate::schedule::*;

    fn shaped(s: &Schedule) -> (usize, usize) {
        let injects: Vec<_> = s.nic.iter().filter(|a| matches!(a, NicAction::Inject { .. })).collect();
        let shaped = injects.iter().filter(|a| matches!(a, NicAction::Inject { shape: Some(_), .. })).count();
        (shaped, injects.len())
    }

    #[test]
    fn some_schedules_shape_most_bursts_and_most_shape_few() {
        let o = GenOptions::plain(Mode::Free);
        let (mut heavy, mut light) = (0, 0);
        for seed in 1..300 {
            let s = generate(seed, o);
            let (k, n) = shaped(&s);
            if n >= 8 && k * 2 > n {
                heavy += 1;
            }
            if n >= 8 && k * 4 < n {
                light += 1;
            }
            for a in &s.nic {
                if let NicAction::Inject { shape: Some(sh), coalesce, .. } = a {
                    assert!(coalesce.is_none(), "seed {seed}: a coalesced burst has NBLs of one frame");
                    assert!(!sh.sizes.contains(&0), "seed {seed}");
                }
            }
        }
        assert!(heavy > 20 && light > 60, "{heavy} heavy, {light} light");
        let rx = GenOptions { profile: Some(Profile::RxStorm), ..o };
        let (k, n) = (1..40).map(|seed| shaped(&generate(seed, rx))).fold((0, 0), |(a, b), (k, n)| (a + k, b + n));
        assert!(k * 10 > n * 7, "rx-storm: {k} of {n} bursts shaped");
    }
}
