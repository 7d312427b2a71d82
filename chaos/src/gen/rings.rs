//! Ring actions (`rawnic_proto::ring`), drawn from a stream of their own
//! after everything else but the sharing of handles: `GenOptions::rings`
//! per mille of the seeds get them, and with `rings: 0` a seed's schedule
//! is exactly what it was before rings existed.
//!
//! Some handle threads become ring users: on the slot they use most, a
//! program of ring actions (an attach first, then fills, sends, kicks,
//! polls, waits, detaches, attaches again, cancels of the attach, garbage
//! a hostile user writes into its UMEM, closes and abandons with the rings
//! attached) is woven into the thread's own actions, in order. The NIC
//! actor gets extra receive bursts, so the rings have frames to take.
//!
//! `--profile ring-storm` (`storm`) makes every thread a ring user with a
//! long program and floods their adapters, with the odds moved to where
//! the ring receive path's rarer branches are: rx rings smaller than what
//! the fill ring offers (a full rx ring drops), fill entries that name no
//! frame's start, coalesced units longer than a UMEM frame and snap
//! lengths (cut frames), and indices scribbled while frames come.

use super::{dst, frame_len, open_action};
use crate::schedule::*;
use ndisim::rng::Rng;
use rawnic_proto::ring::wait_flags;

/// Adds ring actions to `per_mille` of the schedules (to all of them, and
/// more, when `storm`).
pub(super) fn rings(
    r: &mut Rng,
    per_mille: u32,
    storm: bool,
    handles: &mut [Vec<IoAction>],
    nic: &mut Vec<NicAction>,
    n: usize,
) {
    if !storm && (per_mille == 0 || !r.chance(per_mille)) {
        return;
    }
    // A light or a heavy program.
    let heavy = storm || r.chance(400);
    // The adapters the ring users open, where most extra frames go.
    let mut users = Vec::new();
    for (i, list) in handles.iter_mut().enumerate() {
        if i > 0 && !storm && !r.chance(600) {
            continue;
        }
        let slot = busiest_slot(list);
        let a = r.below(n as u64) as usize;
        users.push(a);
        let len = if heavy { r.range(40, 150) } else { r.range(8, 40) } as usize;
        // Its own handle first (a no-op where the thread has one there).
        let mut prog = vec![IoAction::Create { slot }, open_on(r, slot, a, storm), attach(r, true, storm)];
        prog.extend((1..len).flat_map(|_| ring_action(r, slot, a, storm)));
        let prog: Vec<IoAction> = prog
            .into_iter()
            .map(|a| match a {
                IoAction::Ring { op, .. } => IoAction::Ring { slot, op },
                a => a,
            })
            .collect();
        weave(r, list, prog);
    }
    // Frames for the fill rings.
    let bursts = if storm { r.range(40, 90) } else { r.range(4, if heavy { 40 } else { 16 }) };
    for _ in 0..bursts {
        let at = r.below(nic.len() as u64 + 1) as usize;
        // Now and then one long indication: more NBLs than the driver's
        // one-pass ring receive takes per hold of its locks (64), so a
        // close or a detach can come between two of its batches.
        let long = r.chance(100).then(|| r.range(65, 130));
        let inject = NicAction::Inject {
            a: if !users.is_empty() && r.chance(700) { *r.pick(&users) } else { r.below(n as u64) as usize },
            count: long.unwrap_or_else(|| r.range(1, 32)) as u16,
            len: frame_len(r),
            resources: r.chance(150),
            nbls: long.unwrap_or_else(|| r.range(1, 8)) as u8,
            nbs: if r.chance(300) { r.range(2, 4) as u8 } else { 1 },
            passive: r.chance(150),
            tci: r.chance(100).then(|| r.below(0x10000) as u16),
            dst: if r.chance(700) { Dst::Broadcast } else { dst(r) },
            loopback: r.chance(50),
            coalesce: None,
            layout: None,
            shape: None,
            inline: None,
        };
        let inject = if storm { storm_burst(r, inject) } else { inject };
        nic.insert(at, inject);
        // Spread over the schedule's length, so that ring users have frames
        // coming while they are attached.
        nic.insert(at, NicAction::Sleep { ms: if storm { r.range(0, 4) } else { r.range(1, 8) } as u32 });
    }
}

/// A ring storm's burst: one in five a few coalesced units, most longer
/// than a 2 KiB UMEM frame (so the frame is cut), and more frames per
/// indication than a small rx ring has room for.
fn storm_burst(r: &mut Rng, inject: NicAction) -> NicAction {
    let NicAction::Inject { a, resources, passive, tci, dst, loopback, .. } = inject else { return inject };
    let (count, len, nbs, coalesce) = if r.chance(200) {
        let segs = r.range(2, 45) as u16;
        (r.range(1, 6) as u16, r.range(1515, 16000) as u16, 1, Some(Coalesced::Rsc { segs }))
    } else {
        (r.range(8, 64) as u16, frame_len(r), if r.chance(200) { r.range(2, 4) as u8 } else { 1 }, None)
    };
    NicAction::Inject {
        a,
        count,
        len,
        resources,
        nbls: r.range(1, 16) as u8,
        nbs,
        passive,
        tci,
        dst,
        loopback,
        coalesce,
        layout: None,
        shape: None,
        inline: None,
    }
}

/// The slot a thread's actions name most (its handle), 0 if none.
fn busiest_slot(list: &[IoAction]) -> u8 {
    let mut count = [0usize; SHARED_SLOTS as usize];
    for a in list {
        if let Some(c) = a.slot().and_then(|x| count.get_mut(x as usize)) {
            *c += 1;
        }
    }
    (0..count.len()).max_by_key(|&k| (count[k], usize::MAX - k)).unwrap_or(0) as u8
}

/// Weaves `prog` into `list`, keeping both orders; the program starts
/// after the thread's first open, if it has one.
fn weave(r: &mut Rng, list: &mut Vec<IoAction>, prog: Vec<IoAction>) {
    let start = list.iter().position(|a| matches!(a, IoAction::Open { .. })).map_or(0, |p| p + 1);
    let mut at: Vec<usize> = prog.iter().map(|_| r.range(start as u64, list.len() as u64) as usize).collect();
    at.sort_unstable();
    let old = std::mem::take(list);
    let mut prog = prog.into_iter().zip(at).peekable();
    for (i, a) in old.into_iter().enumerate() {
        while let Some((p, _)) = prog.next_if(|(_, pos)| *pos <= i) {
            list.push(p);
        }
        list.push(a);
    }
    list.extend(prog.map(|(p, _)| p));
}

/// An open of adapter `a` that takes this host's frames (sometimes all, or
/// cut short by a snap length).
fn open_on(r: &mut Rng, slot: u8, a: usize, storm: bool) -> IoAction {
    let filter = if r.chance(150) { rawnic_proto::filter::PROMISCUOUS } else { rawnic_proto::filter::DEFAULT };
    let mut o = open_action(r, slot, a + 1, filter.bits());
    if let IoAction::Open { a: to, snaplen, .. } = &mut o {
        *to = a;
        *snaplen = if r.chance(if storm { 300 } else { 100 }) { r.range(14, 200) as u32 } else { 0 };
    }
    o
}

fn ring(op: RingOp) -> IoAction {
    IoAction::Ring { slot: 0, op }
}

fn ring_size(r: &mut Rng) -> u32 {
    match r.below(20) {
        0 => rawnic_proto::ring::MAX_RING,
        1 => 4096,
        _ => *r.pick(&[8u32, 16, 32, 64, 128, 256]),
    }
}

/// A storm's rx ring: half the time 8 or 16 entries, fewer than the fill
/// ring's, so a burst fills it.
fn storm_rx_size(r: &mut Rng, storm: bool) -> u32 {
    if storm && r.chance(500) { *r.pick(&[8u32, 16]) } else { ring_size(r) }
}

/// An attach: mostly of a shape the driver takes; sometimes spoiled.
fn attach(r: &mut Rng, valid: bool, storm: bool) -> IoAction {
    let damage = if valid || r.chance(700) {
        AttachDamage::None
    } else if r.chance(600) {
        AttachDamage::Setup(match r.below(10) {
            0..=3 => Edit::Flip { at: r.below(32) as u32, xor: 1 << r.below(8) },
            4..=7 => Edit::Stomp {
                at: 4 * r.range(1, 7) as u32,
                value: *r.pick(&[0u32, 1, 7, 48, 1024, 2049, 0x1_0000, 0x10_0000, 0xFFFF_FFFF]),
            },
            8 => Edit::Truncate { to: r.below(32) as u32 },
            _ => Edit::Extend { by: r.range(1, 8) as u16, fill: 0 },
        })
    } else {
        AttachDamage::Region(*r.pick(&[-3i8, -1, 1, 2]))
    };
    ring(RingOp::Attach {
        frame_size: *r.pick(&rawnic_proto::ring::FRAME_SIZES),
        frames: if r.chance(100) { r.range(1, 7) as u32 } else { r.range(8, 256) as u32 },
        fill: ring_size(r),
        rx: storm_rx_size(r, storm),
        tx: ring_size(r),
        completion: ring_size(r),
        damage,
    })
}

/// One step of a ring user's program (a close or abandon comes with a new
/// handle opened after it).
fn ring_action(r: &mut Rng, slot: u8, a: usize, storm: bool) -> Vec<IoAction> {
    let one = match r.below(100) {
        0..=17 => ring(RingOp::Fill {
            frames: r.range(1, 32) as u16,
            invalid: if r.chance(if storm { 250 } else { 100 }) { r.range(1, 3) as u8 } else { 0 },
        }),
        18..=37 => ring(RingOp::Tx {
            // Sometimes more than a zero-copy NBL carries (32 frames).
            frames: if r.chance(150) { r.range(16, 100) } else { r.range(1, 16) } as u16,
            len: frame_len(r),
            dst: dst(r),
            garbage: if r.chance(150) { r.range(1, 4) as u8 } else { 0 },
            kick: r.chance(900),
        }),
        38..=40 => ring(RingOp::Kick),
        41..=52 => ring(RingOp::Poll),
        53..=60 => ring(RingOp::Wait {
            flags: match r.below(20) {
                0 => 0,
                1 => 4,
                _ => *r.pick(&[wait_flags::RX, wait_flags::COMPLETION, wait_flags::ALL]),
            },
            wait_ms: r.chance(800).then(|| r.range(0, 30) as u32),
        }),
        61..=63 => ring(RingOp::Detach),
        64..=65 => ring(RingOp::CancelAttach),
        66..=71 if r.chance(500) => {
            return vec![IoAction::Create { slot }, open_on(r, slot, a, storm), attach(r, false, storm)];
        }
        66..=71 => attach(r, false, storm),
        72..=80 => ring(RingOp::Scribble {
            at: match r.below(100) {
                0..=29 => Scribble::Control,
                30..=49 => Scribble::DriverIndex,
                50..=79 => Scribble::FarIndex,
                80..=87 => Scribble::NearIndex,
                _ => Scribble::Descriptor,
            },
            value: r.next_u64(),
        }),
        81..=83 => {
            let close = if r.chance(500) { IoAction::Close { slot } } else { IoAction::Abandon { slot } };
            return vec![close, IoAction::Create { slot }, open_on(r, slot, a, storm), attach(r, true, storm)];
        }
        84..=85 => IoAction::CancelAll { slot },
        _ => IoAction::Sleep { ms: r.range(0, 8) as u32 },
    };
    vec![one]
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn opts(rings: u32) -> GenOptions {
        GenOptions { rings, ..GenOptions::plain(Mode::Free) }
    }

    #[test]
    fn without_rings_a_seed_s_schedule_is_what_it_was_and_with_them_only_rings_are_added() {
        let (mut with, mut ops) = (0, 0);
        for seed in 0..200 {
            let (a, b) = (generate(seed, opts(0)), generate(seed, opts(1000)));
            assert!(a.handles.iter().flatten().all(|x| !matches!(x, IoAction::Ring { .. })));
            let n = b.handles.iter().flatten().filter(|x| matches!(x, IoAction::Ring { .. })).count();
            ops += n;
            with += usize::from(n > 0);
            assert_eq!(a.pnp, b.pnp, "seed {seed}");
            assert!(b.nic.len() > a.nic.len());
            // Every ring user's program starts with an attach, after a
            // create and an open of its slot.
            for l in &b.handles {
                if let Some(p) = l.iter().position(|x| matches!(x, IoAction::Ring { .. })) {
                    let IoAction::Ring { slot, op } = &l[p] else { unreachable!() };
                    assert!(matches!(op, RingOp::Attach { damage: AttachDamage::None, .. }), "seed {seed}: {op:?}");
                    assert!(l[..p].contains(&IoAction::Create { slot: *slot }), "seed {seed}");
                    assert!(
                        l[..p].iter().any(|x| matches!(x, IoAction::Open { slot: s, .. } if s == slot)),
                        "seed {seed}"
                    );
                }
            }
        }
        assert_eq!(with, 200);
        assert!(ops > 200 * 20, "{ops}");
        let some = (0..400)
            .filter(|&s| generate(s, opts(250)).handles.iter().flatten().any(|x| matches!(x, IoAction::Ring { .. })))
            .count();
        assert!((50..150).contains(&some), "{some} of 400");
    }
}
