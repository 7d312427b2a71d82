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

/// Mixes, in some shaped bursts (so schedules without shapes keep their
/// actions, and shaped ones their shapes: `r` is a stream of its own),
/// NBLs NDIS looped back among NBLs from the wire (`Shape::loopbacks`),
/// and coalesced units among plain NBLs (`Shape::coalesces`): only NBLs
/// of one NET_BUFFER are given a coalescing (ndisim refuses the
/// injection otherwise), and URO only on adapters with `uro=on` (RSC on
/// the others).
pub(super) fn mixes(r: &mut Rng, specs: &[String], nic: &mut [NicAction]) {
    for act in nic.iter_mut() {
        let NicAction::Inject { a, nbs, coalesce: None, shape: Some(sh), .. } = act else { continue };
        if r.chance(350) {
            sh.loopbacks = (0..r.range(1, 4)).map(|_| r.chance(400)).collect();
        }
        if r.chance(350) {
            let uro = adapter_spec(specs, *a).is_some_and(|s| s.contains("uro=on"));
            sh.coalesces = coalesces(r, &sh.sizes, *nbs, uro);
        }
    }
}

/// Spreads the MDL chains of a third of the bursts that lie in several
/// MDLs (`Layout::spread`): each MDL after the first begins some bytes past
/// where the one before it ended, as separate receive buffers do, so a read
/// that runs past an MDL's end meets ndisim's pattern instead of the
/// frame's next bytes. At most 8 KiB of gaps a frame.
pub(super) fn spreads(r: &mut Rng, nic: &mut [NicAction]) {
    for act in nic.iter_mut() {
        let NicAction::Inject { len, layout, shape, .. } = act else { continue };
        let len = *len as usize;
        let spread = |r: &mut Rng, l: &mut Layout| {
            let mdls = l.nb_layout().chain(len).mdls.len();
            if mdls > 1 && r.chance(350) {
                let want = *r.pick(&[1u16, 2, 7, 64, 300, 4096]) as usize;
                l.spread = want.min(8192 / (mdls - 1)).max(1) as u16;
            }
        };
        if let Some(l) = layout {
            spread(r, l);
        }
        if let Some(sh) = shape {
            sh.layouts.iter_mut().for_each(|l| spread(r, l));
        }
    }
}

/// Per-NBL coalescing for a burst whose NBL `k` holds `sizes[k % len]`
/// NET_BUFFERs (`nbs` when `sizes` is empty): a list whose length is a
/// multiple of `sizes`', so NBL `k`'s entry and size go together, with
/// units only where the size is 1 (empty when no NBL holds one).
fn coalesces(r: &mut Rng, sizes: &[u8], nbs: u8, uro: bool) -> Vec<Option<Coalesced>> {
    let one = |j: usize| if sizes.is_empty() { nbs.max(1) == 1 } else { sizes[j % sizes.len()].max(1) == 1 };
    let period = sizes.len().max(1);
    if !(0..period).any(one) {
        return Vec::new();
    }
    (0..period * r.range(1, 3) as usize)
        .map(|j| {
            (one(j) && r.chance(600)).then(|| {
                let segs = if r.chance(150) { 0 } else { r.range(2, 45) as u16 };
                if uro && r.chance(500) {
                    Coalesced::Uro { segs, size: r.range(64, 1472) as u16 }
                } else {
                    Coalesced::Rsc { segs }
                }
            })
        })
        .collect()
}

/// How many receive bursts in 1000 mix destinations (and EtherTypes)
/// unless `--mixed-bursts` says otherwise.
pub const MIXED_BURSTS_PER_MILLE: u32 = 150;

/// Gives `per_mille` of `nic`'s receive bursts frames to two to four
/// destinations in turn (`Shape::dsts`; the burst's own first), and half
/// of those some frames of another EtherType (`Shape::foreign`), so one
/// indication mixes frames a handle takes with frames it drops; and has
/// some of the ring users' opens list EtherTypes (the schedule's, or
/// IPv4's alone). Every burst had one destination and EtherType, and the
/// adapter drops what a sole handle's filter leaves out: a filtered batch
/// on the ring's one-pass path (`sole_batch_filtered`) kept all of its
/// frames or none, and never moved a frame down past one it dropped.
/// Drawn last, from a stream of its own (0: every seed's schedule is what
/// it was before).
pub(super) fn mixed_bursts(r: &mut Rng, per_mille: u32, nic: &mut [NicAction], handles: &mut [Vec<IoAction>]) {
    const ALL: [Dst; 4] = [Dst::Broadcast, Dst::Directed, Dst::Multicast, Dst::Other];
    if per_mille == 0 {
        return;
    }
    for act in nic.iter_mut() {
        let NicAction::Inject { dst, shape, .. } = act else { continue };
        if !r.chance(per_mille) {
            continue;
        }
        let mut dsts = vec![*dst];
        dsts.extend((0..r.range(1, 3)).map(|_| *r.pick(&ALL)));
        let other_types = r.chance(500);
        // One of each at least, in some order.
        let mut foreign: Vec<bool> = (0..r.range(2, 4)).map(|_| r.chance(400)).collect();
        foreign[0] = r.chance(500);
        foreign[1] = !foreign[0];
        // The adapter drops the frames its filter leaves out before NDIS
        // makes its NBLs of the rest, so the oracle knows no frame's NBL in
        // a burst that mixes destinations: only bursts whose NBLs are all
        // alike (one 802.1Q info, loopback mark and coalescing) mix them;
        // the others mix EtherTypes, which no adapter filters.
        let sh = shape.get_or_insert_with(Shape::default);
        let alike = sh.tcis.is_empty() && sh.loopbacks.is_empty() && sh.coalesces.is_empty();
        if alike {
            sh.dsts = dsts;
        }
        if other_types || !alike {
            sh.foreign = foreign;
        }
    }
    for list in handles.iter_mut() {
        if !list.iter().any(|a| matches!(a, IoAction::Ring { .. })) {
            continue;
        }
        for act in list.iter_mut() {
            if let IoAction::Open { ethertypes, .. } = act {
                if ethertypes.is_empty() && r.chance(per_mille) {
                    *ethertypes = if r.chance(700) { vec![crate::frames::ETHERTYPE] } else { vec![0x0800] };
                }
            }
        }
    }
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
    Shape { sizes, tcis, layouts, ..Shape::default() }
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
        spread: 0,
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

    /// Shaped bursts mix loopback and wire NBLs, coalesced and plain ones,
    /// as ndisim takes them: a coalescing only on NBLs of one NET_BUFFER
    /// (NBL `k`'s size is `sizes[k % len]`, its coalescing `coalesces[k %
    /// len']`), URO only on adapters with `uro=on`.
    #[test]
    fn shaped_bursts_mix_loopbacks_and_coalesced_units_as_ndisim_takes_them() {
        let (mut looped, mut wire, mut units, mut plain, mut uro) = (0, 0, 0, 0, 0);
        for seed in 1..400 {
            let o =
                GenOptions { profile: (seed % 3 == 0).then_some(Profile::RxStorm), ..GenOptions::plain(Mode::Free) };
            let s = generate(seed, o);
            for a in &s.nic {
                let NicAction::Inject { a, nbs, shape: Some(sh), .. } = a else { continue };
                looped += sh.loopbacks.iter().filter(|&&l| l).count();
                wire += sh.loopbacks.iter().filter(|&&l| !l).count();
                let n = sh.coalesces.len().max(sh.sizes.len()).max(1);
                let lcm = if sh.coalesces.is_empty() || sh.sizes.is_empty() {
                    n
                } else {
                    sh.coalesces.len() * sh.sizes.len()
                };
                for k in 0..lcm {
                    let Some(c) = sh.coalesces.get(k % sh.coalesces.len().max(1)).copied().flatten() else {
                        plain += usize::from(!sh.coalesces.is_empty());
                        continue;
                    };
                    units += 1;
                    let size = if sh.sizes.is_empty() { *nbs } else { sh.sizes[k % sh.sizes.len()] };
                    assert_eq!(size.max(1), 1, "seed {seed}: coalesced NBL {k} would hold {size} NET_BUFFERs: {sh:?}");
                    if matches!(c, Coalesced::Uro { .. }) {
                        uro += 1;
                        let spec = adapter_spec(&s.adapters, *a).unwrap_or_default();
                        assert!(spec.contains("uro=on"), "seed {seed}: URO on {spec}");
                    }
                }
            }
        }
        assert!(
            looped > 100 && wire > 100 && units > 100 && plain > 100 && uro > 5,
            "{looped} {wire} {units} {plain} {uro}"
        );
    }

    #[test]
    fn some_multi_mdl_chains_are_spread_with_at_most_8_kib_of_gaps_a_frame() {
        let o = GenOptions::plain(Mode::Free);
        let (mut spread, mut packed, mut wide) = (0, 0, 0);
        for seed in 1..200 {
            for a in &generate(seed, o).nic {
                let NicAction::Inject { len, layout, shape, .. } = a else { continue };
                let shaped = shape.iter().flat_map(|sh| sh.layouts.iter());
                for l in layout.iter().chain(shaped) {
                    let mdls = l.nb_layout().chain(*len as usize).mdls.len();
                    if l.spread == 0 {
                        packed += usize::from(mdls > 1);
                        continue;
                    }
                    assert!(mdls > 1, "seed {seed}: a one-MDL frame spread: {l:?}");
                    assert!((mdls - 1) * l.spread as usize <= 8192, "seed {seed}: {mdls} MDLs, {l:?}");
                    spread += 1;
                    wide += usize::from(l.spread >= 64);
                }
            }
        }
        assert!(spread > 100 && packed > spread && wide > 30, "{spread} spread, {packed} packed, {wide} wide");
    }
}
