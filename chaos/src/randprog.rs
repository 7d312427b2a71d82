//! Random capture programs (`ProgramKind::Random`, `--random-programs`):
//! valid classic BPF that uses every instruction the driver's check
//! admits (`rawnic_logic::bpf::Program::new`): loads of 1, 2 and 4 bytes
//! at a constant and at X + k (some past the frame's end, which drops
//! it), the length, scratch memory, every ALU operation with a constant
//! and with X, `neg`, `tax`, `txa`, every jump, and returns that drop,
//! cut and take whole. A program is its seed: the run writes it again
//! from the seed (`program`), and the oracle evaluates it with its own
//! evaluator (`refbpf.rs`), not the driver's.
//!
//! Every answer is 0 or 14 bytes at least (a program never cuts a frame
//! below an Ethernet header, so the other oracles of what a handle gets
//! stand, as for the fixed programs): returns of a constant take one of
//! those, and `ret a` comes only behind `jgt #13` (else `ret #0` or
//! `ret #14`).
//!
//! With `refused`, one instruction of the program is spoiled so that the
//! check must refuse it: a shift by 32 or more, a division by the constant
//! 0, a scratch word of 16 or more, a jump past the end, an opcode outside
//! the set, an ancillary offset, or no return at the end.

use ndisim::rng::Rng;
use rawnic_proto::BpfInsn;

/// The opcodes the driver's check admits (ALU and jumps with K and X).
pub const OPCODES: &[u16] = &[
    0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x00, 0x80, 0x60, 0x01, 0x81, 0x61, 0xb1, 0x02, 0x03,
    0x84, // loads, stores, neg
    0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x94, 0xa4, // ALU with k
    0x0c, 0x1c, 0x2c, 0x3c, 0x4c, 0x5c, 0x6c, 0x7c, 0x9c, 0xac, // ALU with x
    0x05, 0x15, 0x25, 0x35, 0x45, 0x1d, 0x2d, 0x3d, 0x4d, // jumps
    0x06, 0x16, 0x07, 0x87, // returns, tax, txa
];

/// An offset to load at: mostly inside a frame's first 64 bytes (its
/// headers), some deeper, some past the end of any frame the explorer
/// sends (up to the highest offset the check admits).
fn offset(r: &mut Rng) -> u32 {
    match r.below(20) {
        0..=10 => r.below(64) as u32,
        // Across an 802.1Q tag the NIC stripped (bytes 12 to 15 as the
        // program sees them): a load of 2 or 4 bytes there reads the
        // MAC addresses, the tag and the frame's own bytes together.
        11..=13 => r.range(9, 16) as u32,
        14..=16 => r.range(64, 1600) as u32,
        17 => r.range(1500, 1530) as u32,
        18 => *r.pick(&[4000u32, 9100, 65_535, 1 << 20]),
        _ => 0xffdf_fff0 + r.below(16) as u32,
    }
}

/// A constant for ALU operations and comparisons.
fn constant(r: &mut Rng) -> u32 {
    match r.below(8) {
        0..=3 => r.below(256) as u32,
        4 => r.range(1, 0xffff) as u32,
        5 => *r.pick(&[0x8100u32, 0x88b5, 0x0800, 0x86dd, 60, 64, 1514, 1518]),
        6 => r.next_u64() as u32,
        _ => u32::MAX - r.below(4) as u32,
    }
}

/// What a `ret #k` takes: nothing, a cut of 14 bytes or more, or the
/// frame whole.
fn ret_k(r: &mut Rng) -> u32 {
    *r.pick(&[0u32, 0, 14, 15, 18, 26, 60, 61, 100, 200, 1000, 0xffff, u32::MAX, u32::MAX])
}

/// A jump's offset, fixed once the program's length is known: a draw
/// kept until then.
const PLACEHOLDER: u8 = 0;

/// The body's instructions (jumps with their draws in `k`, `jt`, `jf`
/// to be fixed), one to four at a time.
fn body(r: &mut Rng, out: &mut Vec<(BpfInsn, bool)>) {
    let ins = |c: u16, k: u32| (BpfInsn::new(c, PLACEHOLDER, PLACEHOLDER, k), false);
    let word = |r: &mut Rng| r.below(16) as u32;
    match r.below(24) {
        0..=2 => out.push(ins(*r.pick(&[0x20u16, 0x28, 0x30]), offset(r))),
        3 => {
            // X first: a constant, the IPv4 header's length, the length.
            let x = match r.below(3) {
                0 => ins(0x01, r.below(40) as u32),
                1 => ins(0xb1, offset(r)),
                _ => ins(0x81, 0),
            };
            out.push(x);
            out.push(ins(*r.pick(&[0x40u16, 0x48, 0x50]), if r.chance(700) { r.below(40) as u32 } else { offset(r) }));
        }
        4 => {
            // A load at the frame's end: len - k, through X; past it when
            // k is less than the width.
            out.push(ins(0x80, 0));
            out.push(ins(0x14, r.range(1, 6) as u32));
            out.push(ins(0x07, 0));
            out.push(ins(*r.pick(&[0x40u16, 0x48, 0x50]), 0));
        }
        5 => out.push(ins(0x00, constant(r))),
        6 => out.push(ins(0x80, 0)),
        7 => out.push(ins(*r.pick(&[0x60u16, 0x61]), word(r))),
        8 => out.push(ins(*r.pick(&[0x02u16, 0x03]), word(r))),
        9 => out.push(ins(*r.pick(&[0x01u16, 0x81]), constant(r))),
        10..=13 => {
            let op = *r.pick(&[0x00u16, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0]);
            let code = if r.chance(300) { 0x0c | op } else { 0x04 | op };
            let k = match op {
                _ if code & 0x08 != 0 => 0,
                0x30 | 0x90 => r.range(1, 300) as u32,
                0x60 | 0x70 => r.below(32) as u32,
                _ => constant(r),
            };
            out.push(ins(code, k));
        }
        14 => out.push(ins(*r.pick(&[0x84u16, 0x07, 0x87]), 0)),
        15 => out.push((BpfInsn::new(0x05, 0, 0, r.next_u64() as u32), true)),
        16..=21 => {
            let cond = *r.pick(&[0x10u16, 0x20, 0x30, 0x40]);
            let code = if r.chance(250) { 0x0d | cond } else { 0x05 | cond };
            let k = if code & 0x08 != 0 { 0 } else { constant(r) };
            out.push((BpfInsn::new(code, r.next_u64() as u8, r.next_u64() as u8, k), true));
        }
        _ => out.push(ins(0x06, ret_k(r))),
    }
}

/// The program of `seed` (`refused`: spoiled so that the check refuses
/// it).
pub fn program(seed: u32, refused: bool) -> Vec<BpfInsn> {
    let mut r = Rng::new(u64::from(seed) ^ 0x7261_6e64_7072_6f67);
    let mut v: Vec<(BpfInsn, bool)> = Vec::new();
    let blocks = r.range(1, 14);
    for _ in 0..blocks {
        body(&mut r, &mut v);
    }
    // The end: in half the programs `and #k` (so that the cut `ret a`
    // makes is inside most frames, and shows A's value), then jgt #13
    // (to ret a), else ret #0 or ret #14.
    let mut end = Vec::new();
    if r.chance(500) {
        end.push(BpfInsn::new(0x54, 0, 0, *r.pick(&[0x3fu32, 0x7f, 0xff])));
    }
    end.push(BpfInsn::new(0x25, 1, 0, 13));
    end.push(BpfInsn::new(0x06, 0, 0, *r.pick(&[0u32, 14])));
    end.push(BpfInsn::new(0x16, 0, 0, 0));
    let n = v.len() + end.len();
    for (at, (i, jump)) in v.iter_mut().enumerate() {
        if !*jump {
            continue;
        }
        // Forward, to any instruction after this one but the last
        // (`ret a`, which only `jgt #13` may reach): a jump that would
        // land there lands on that `jgt` instead, so that every answer is
        // 0 or 14 at least (the other landings as before, so that a seed
        // keeps its program where it could not cut below a header).
        let room = (n - at - 2) as u32;
        let guard = (n - 3 - at - 1) as u32;
        let fix = |d: u32| match d % (room.min(255) + 1) {
            d if d == room => guard,
            d => d,
        };
        if i.code == 0x05 {
            i.k = fix(i.k);
        } else {
            i.jt = fix(u32::from(i.jt)) as u8;
            i.jf = fix(u32::from(i.jf)) as u8;
        }
    }
    let mut p: Vec<BpfInsn> = v.into_iter().map(|(i, _)| i).collect();
    p.extend(end);
    if refused {
        spoil(&mut r, &mut p);
    }
    p
}

/// Spoils one instruction of `p` (or its end) so that the check refuses
/// it.
fn spoil(r: &mut Rng, p: &mut [BpfInsn]) {
    let n = p.len();
    let at = r.below(n as u64 - 1) as usize;
    p[at] = match r.below(7) {
        0 => BpfInsn::new(*r.pick(&[0x64u16, 0x74]), 0, 0, r.range(32, 300) as u32),
        1 => BpfInsn::new(*r.pick(&[0x34u16, 0x94]), 0, 0, 0),
        2 => BpfInsn::new(*r.pick(&[0x60u16, 0x61, 0x02, 0x03]), 0, 0, r.range(16, 1000) as u32),
        3 => BpfInsn::new(0x05, 0, 0, (n - at - 1) as u32 + r.below(4) as u32),
        4 => BpfInsn::new(*r.pick(&[0x08u16, 0x17, 0x85, 0xd4, 0x55, 0xff]), 0, 0, 0),
        5 => BpfInsn::new(*r.pick(&[0x20u16, 0x30, 0x50, 0xb1]), 0, 0, 0xffe0_0000 + r.below(0x1000) as u32),
        _ => {
            // The last instruction (`ret a`) becomes `txa`.
            p[n - 1] = BpfInsn::new(0x87, 0, 0, 0);
            return;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_program_passes_the_check_and_every_opcode_appears() {
        let mut seen = BTreeSet::new();
        for seed in 0..4000u32 {
            let p = program(seed, false);
            assert!(p.len() <= 60, "seed {seed}: {} instructions", p.len());
            if let Err(e) = rawnic_logic::bpf::Program::new(p.iter().copied()) {
                panic!("seed {seed}: {e:?} in {p:?}");
            }
            seen.extend(p.iter().map(|i| i.code));
        }
        let want: BTreeSet<u16> = OPCODES.iter().copied().collect();
        assert_eq!(seen, want, "missing: {:x?}", want.difference(&seen).collect::<Vec<_>>());
    }

    /// Every answer is 0 or 14 bytes at least, on frames of every length
    /// (the explorer's own evaluator); seed 153003003's ring-storm found
    /// programs whose body jumped straight to `ret a`, past its guard, and
    /// cut frames to 2 bytes.
    #[test]
    fn no_program_cuts_a_frame_below_an_ethernet_header() {
        use crate::refbpf::{Verdict, View, eval};
        for seed in 0..4000u32 {
            let p = program(seed, false);
            for len in [1u32, 2, 13, 14, 15, 60, 64, 200, 1514] {
                let known: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(29) ^ (seed as u8)).collect();
                if let Verdict::Keep(k) = eval(&p, &View { known, len }) {
                    assert!(k == 0 || k >= 14, "seed {seed}, a {len}-byte frame: cut to {k} by {p:?}");
                }
            }
        }
    }

    #[test]
    fn every_spoiled_program_is_refused_for_each_reason() {
        use rawnic_logic::bpf::Why;
        let mut why = BTreeSet::new();
        for seed in 0..2000u32 {
            let p = program(seed, true);
            match rawnic_logic::bpf::Program::new(p.iter().copied()) {
                Ok(_) => panic!("seed {seed}: {p:?} taken"),
                Err(e) => why.insert(format!("{:?}", e.why)),
            };
        }
        for w in [Why::Shift, Why::DivideByZero, Why::Memory, Why::Jump, Why::Opcode, Why::Ancillary, Why::NoReturn] {
            assert!(why.contains(&format!("{w:?}")), "{w:?} never: {why:?}");
        }
    }
}
