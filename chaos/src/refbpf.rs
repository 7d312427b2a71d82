//! The explorer's own evaluator of classic BPF, the oracle of the random
//! capture programs (`randprog.rs`): written from `bpf(4)`'s semantics,
//! not from the driver's interpreter (`rawnic_logic::bpf`), so that a
//! fault in the one is not in the other. It runs on what a record shows
//! of a frame: a prefix of its bytes as on the wire and its length. A
//! load past the length ends the run taking nothing (as does a division
//! by an X of 0); a load past the prefix but inside the frame cannot be
//! known, and neither can the answer (`Verdict::Unknown`).
//!
//! `on_record` gives the frame as the driver's program saw it: a tag the
//! NIC stripped (the record's `VLAN` flag and TCI) back after the MAC
//! addresses; `delivered` maps the answer back onto the record's bytes.

use rawnic_proto::BpfInsn;

/// The frame a program runs on: its first bytes, and its length.
pub struct View {
    pub known: Vec<u8>,
    pub len: u32,
}

/// A program's answer on a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Bytes to keep (0: the frame is not taken).
    Keep(u32),
    /// A load read past the bytes known.
    Unknown,
}

/// Of a frame of `len` bytes, the `w` bytes at `off` big-endian: `Ok(None)`
/// past its end, `Err` past what is known.
fn load(v: &View, off: u64, w: u64) -> Result<Option<u32>, ()> {
    if off + w > u64::from(v.len) {
        return Ok(None);
    }
    if off + w > v.known.len() as u64 {
        return Err(());
    }
    Ok(Some(v.known[off as usize..(off + w) as usize].iter().fold(0u32, |a, &b| (a << 8) | u32::from(b))))
}

/// Runs `p` (a program the driver's check takes) on `v`.
pub fn eval(p: &[BpfInsn], v: &View) -> Verdict {
    let (mut a, mut x) = (0u32, 0u32);
    let mut m = [0u32; 16];
    let mut pc = 0usize;
    // Every jump goes forward: at most as many steps as instructions.
    for _ in 0..p.len() {
        let Some(&BpfInsn { code, jt, jf, k }) = p.get(pc) else { break };
        pc += 1;
        let width = match code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        let loaded = match code {
            0x20 | 0x28 | 0x30 => Some(load(v, u64::from(k), width)),
            0x40 | 0x48 | 0x50 => Some(load(v, u64::from(x) + u64::from(k), width)),
            0xb1 => Some(load(v, u64::from(k), 1)),
            _ => None,
        };
        match loaded {
            Some(Err(())) => return Verdict::Unknown,
            Some(Ok(None)) => return Verdict::Keep(0),
            Some(Ok(Some(val))) if code == 0xb1 => x = (val & 0x0f) << 2,
            Some(Ok(Some(val))) => a = val,
            None => {}
        }
        let operand = if code & 0x08 != 0 { x } else { k };
        match code & 0x07 {
            // Loads and stores (the frame's done above).
            0x00..=0x03 => {
                let word = (k & 0x0f) as usize;
                match code {
                    0x00 => a = k,
                    0x80 => a = v.len,
                    0x60 => a = m[word],
                    0x01 => x = k,
                    0x81 => x = v.len,
                    0x61 => x = m[word],
                    0x02 => m[word] = a,
                    0x03 => m[word] = x,
                    _ => {}
                }
            }
            0x04 => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 | 0x90 if operand == 0 => return Verdict::Keep(0),
                    0x30 => a / operand,
                    0x90 => a % operand,
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 if operand >= 32 => 0,
                    0x60 => a << operand,
                    0x70 if operand >= 32 => 0,
                    0x70 => a >> operand,
                    0x80 => 0u32.wrapping_sub(a),
                    _ => a ^ operand,
                }
            }
            0x05 => {
                let skip = match code & 0xf0 {
                    0x00 => k as usize,
                    0x10 if a == operand => usize::from(jt),
                    0x20 if a > operand => usize::from(jt),
                    0x30 if a >= operand => usize::from(jt),
                    0x40 if a & operand != 0 => usize::from(jt),
                    _ => usize::from(jf),
                };
                pc += skip;
            }
            0x06 => return Verdict::Keep(if code & 0x10 != 0 { a } else { k }),
            _ => {
                if code & 0x80 != 0 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    Verdict::Keep(0)
}

/// The bytes of a tag of `tci` as on the wire (TPID 0x8100).
fn tag(tci: u16) -> [u8; 4] {
    let t = tci.to_be_bytes();
    [0x81, 0x00, t[0], t[1]]
}

/// The frame a record of `data` (of a frame of `origlen` bytes) shows, as
/// the driver's program saw it: with the tag the NIC stripped (`tci`,
/// when `stripped`) back after the MAC addresses (or at the end of a
/// frame shorter than them).
pub fn on_record(data: &[u8], origlen: u32, stripped: Option<u16>) -> View {
    let Some(tci) = stripped else { return View { known: data.to_vec(), len: origlen } };
    let macs = origlen.min(12) as usize;
    let mut known = data[..data.len().min(macs)].to_vec();
    if data.len() >= macs {
        known.extend_from_slice(&tag(tci));
        known.extend_from_slice(&data[macs..]);
    }
    View { known, len: origlen + 4 }
}

/// Of an answer `keep` on a frame of `origlen` bytes whose stripped tag
/// the program saw in place, the bytes of the frame as delivered: a cut
/// inside the tag keeps the addresses (a byte at least).
pub fn delivered(keep: u32, origlen: u32, stripped: bool) -> u32 {
    let macs = origlen.min(12);
    match keep {
        _ if !stripped => keep,
        0 | u32::MAX => keep,
        k if k <= macs => k,
        k if k <= macs + 4 => macs.max(1),
        k => k - 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndisim::rng::Rng;

    /// The evaluator and the driver's interpreter give the same answer on
    /// the random programs, on frames whole (with and without a stripped
    /// tag), and the evaluator says nothing wrong on a prefix.
    #[test]
    fn agrees_with_the_drivers_interpreter() {
        let mut r = Rng::new(7);
        let (mut taken, mut dropped, mut cut, mut unknown) = (0, 0, 0, 0);
        for seed in 0..3000u32 {
            let insns = crate::randprog::program(seed, false);
            let p = rawnic_logic::bpf::Program::new(insns.iter().copied()).expect("valid");
            for _ in 0..4 {
                let len = *r.pick(&[0usize, 5, 12, 14, 17, 60, 64, 100, 1514, 1518]);
                let mut f: Vec<u8> = (0..len).map(|_| r.next_u64() as u8).collect();
                if len >= 14 && r.chance(300) {
                    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
                }
                let tci = if r.chance(300) { Some(r.range(1, 0xffff) as u16) } else { None };
                let want = p.run_stripped(&f[..], tci.unwrap_or(0));
                let v = on_record(&f, len as u32, tci);
                let Verdict::Keep(got) = eval(&insns, &v) else { panic!("seed {seed}: unknown on a whole frame") };
                assert_eq!(delivered(got, len as u32, tci.is_some()), want, "seed {seed}, {len} bytes, tag {tci:?}");
                match want {
                    0 => dropped += 1,
                    w if w < len as u32 => cut += 1,
                    _ => taken += 1,
                }
                // A prefix: the same answer, or unknown.
                let pre = on_record(&f[..len / 2], len as u32, tci);
                match eval(&insns, &pre) {
                    Verdict::Keep(k) => assert_eq!(k, got, "seed {seed}: a prefix"),
                    Verdict::Unknown => unknown += 1,
                }
            }
        }
        assert!(taken > 1000 && dropped > 1000 && cut > 300 && unknown > 100, "{taken} {dropped} {cut} {unknown}");
    }
}
