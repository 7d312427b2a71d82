//! The ring messages and the UMEM layout against a reference written from
//! the documented layouts (`rawnic_proto::ring`'s module docs): any bytes,
//! well-formed ones, and well-formed ones with a few bytes changed give the
//! same fields or the same error; a layout keeps everything inside the UMEM
//! and in order; the offset checks agree with plain arithmetic.

use proptest::collection::vec;
use proptest::prelude::*;
use rawnic_proto::ring::*;
use rawnic_proto::{Error, PROTO_VERSION};

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// `RingSetup`, as its docs lay it out.
fn ref_setup(b: &[u8]) -> Result<RingSetup, Error> {
    if b.len() < 4 {
        return Err(Error::Truncated);
    }
    if le16(b, 0) != 5 {
        return Err(Error::Version);
    }
    if le16(b, 2) != 0 {
        return Err(Error::InvalidParameter);
    }
    if b.len() != 32 {
        return Err(Error::LengthMismatch);
    }
    if le32(b, 28) != 0 {
        return Err(Error::InvalidParameter);
    }
    let s = RingSetup {
        frame_size: le32(b, 4),
        frame_count: le32(b, 8),
        fill: le32(b, 12),
        rx: le32(b, 16),
        tx: le32(b, 20),
        completion: le32(b, 24),
    };
    let ring_ok = |n: u32| n.is_power_of_two() && (8..=32768).contains(&n);
    if !(s.frame_size == 2048 || s.frame_size == 4096)
        || s.frame_count == 0
        || ![s.fill, s.rx, s.tx, s.completion].into_iter().all(ring_ok)
    {
        return Err(Error::InvalidParameter);
    }
    // 128 control bytes; each ring 128 header bytes and its entries (8,
    // 32, 16, 8 bytes); the frames on the next page.
    let rings = 128
        + [(s.fill, 8u64), (s.rx, 32), (s.tx, 16), (s.completion, 8)]
            .iter()
            .map(|&(n, e)| 128 + n as u64 * e)
            .sum::<u64>();
    let total = rings.div_ceil(4096) * 4096 + s.frame_count as u64 * s.frame_size as u64;
    if total > 64 << 20 {
        return Err(Error::InvalidParameter);
    }
    Ok(s)
}

fn setup_bytes() -> impl Strategy<Value = Vec<u8>> {
    let ring = prop_oneof![Just(8u32), Just(64), Just(512), Just(32768), Just(4), Just(48), Just(65536)];
    (
        prop_oneof![Just(2048u32), Just(4096), Just(1024), Just(3000)],
        prop_oneof![Just(0u32), 1u32..5000, Just(32768), Just(16384), Just(u32::MAX)],
        ring.clone(),
        ring.clone(),
        ring.clone(),
        ring,
    )
        .prop_map(|(fs, n, a, b, c, d)| {
            let mut out = vec![0u8; RingSetup::LEN];
            RingSetup { frame_size: fs, frame_count: n, fill: a, rx: b, tx: c, completion: d }.emit(&mut out).unwrap();
            out
        })
}

fn mutated(v: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (v, vec((0usize..40, any::<u8>()), 0..3), 0usize..3).prop_map(|(mut b, flips, cut)| {
        for (i, x) in flips {
            if i < b.len() {
                b[i] ^= x;
            }
        }
        let keep = b.len().saturating_sub(cut);
        b.truncate(keep);
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn setups_parse_as_the_reference_says(b in prop_oneof![vec(any::<u8>(), 0..40), setup_bytes(), mutated(setup_bytes())]) {
        prop_assert_eq!(RingSetup::parse(&b), ref_setup(&b));
    }

    #[test]
    fn layouts_keep_everything_inside_and_in_order(
        b in setup_bytes(),
        addr in any::<u64>(),
        k in 0u64..40_000,
        off in prop::sample::select(vec![0u64, 1, 60, 1000, 2047, 2048, 4095]),
        len in 0u32..5000,
        edge in 0usize..3,
        near in any::<bool>(),
    ) {
        let Ok(s) = RingSetup::parse(&b) else { return Ok(()) };
        let l = RingLayout::new(&s).unwrap();
        let mut end = CONTROL_LEN;
        for a in [l.fill, l.rx, l.tx, l.completion] {
            prop_assert!(a.offset >= end);
            prop_assert_eq!(a.entry_at(a.size), a.entry_at(0));
            end = a.offset + RING_HEADER + a.size as usize * a.entry;
            prop_assert!(a.entry_at(a.size - 1) + a.entry <= end);
        }
        prop_assert!(end <= l.frames && l.frames % PAGE == 0);
        prop_assert_eq!(l.total, l.frames + (s.frame_count as usize * s.frame_size as usize));
        prop_assert!(l.total <= MAX_UMEM_BYTES);
        let (frames, fs) = (l.frames as u64, s.frame_size as u64);
        // Near the frames: a frame's start or a few bytes in, from one
        // frame before the first to one past the last.
        let addr = if near { (frames + (k % (s.frame_count as u64 + 2)) * fs + off).wrapping_sub(fs) } else { addr };
        // Lengths at the edges too: to the frame's end, and one past it.
        let to_end = (fs - addr.wrapping_sub(frames) % fs) as u32;
        let len = [len, to_end, to_end.wrapping_add(1)][edge];
        let start = addr >= frames && addr < l.total as u64 && (addr - frames) % fs == 0;
        prop_assert_eq!(l.is_frame_start(addr), start);
        let end = addr.checked_add(len as u64);
        let inside = addr >= frames
            && len > 0
            && end.is_some_and(|e| e <= l.total as u64 && (addr - frames) / fs == (e - 1 - frames) / fs);
        let d = TxDesc { addr, len, flags: 0 };
        prop_assert_eq!(l.check_tx(&d, 1518).is_ok(), (14..=1518).contains(&len) && inside);
        let flagged = TxDesc { flags: 1, ..d };
        prop_assert!(l.check_tx(&flagged, 1518).is_err());
    }

    #[test]
    fn waits_and_replies_round_trip(b in vec(any::<u8>(), 0..30), v in any::<u16>()) {
        let mut w = b.clone();
        if w.len() >= 2 {
            w[..2].copy_from_slice(&PROTO_VERSION.to_le_bytes());
        }
        let want = if w.len() < 4 {
            Err(Error::Truncated)
        } else if le16(&w, 0) != 5 {
            Err(Error::Version)
        } else if le16(&w, 2) & !3 != 0 || le16(&w, 2) == 0 {
            Err(Error::InvalidParameter)
        } else if w.len() != 8 {
            Err(Error::LengthMismatch)
        } else if le32(&w, 4) != 0 {
            Err(Error::InvalidParameter)
        } else {
            Ok(le16(&w, 2))
        };
        prop_assert_eq!(RingWaitRequest::parse(&w), want);
        let mut r = vec![0u8; RingReply::LEN];
        let rep = RingReply { ready: v, rx_producer: v as u32 * 3, completion_producer: 7, sent: v as u32, invalid: 1 };
        prop_assert_eq!(rep.emit(&mut r), Ok(RingReply::LEN));
        prop_assert_eq!(RingReply::parse(&r), Ok(rep));
        prop_assert_eq!(RingReply::parse(&r[..23]), Err(Error::Truncated));
    }
}
