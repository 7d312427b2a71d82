//! The rings' indices near and across their wrap: a state (and the shared
//! memory's indices with it) started where a user that has been running
//! for a while finds them, at any base, rather than at 0 as an attach
//! leaves them. At 10 GbE line rate a ring's u32 index wraps in minutes.
//!
//! A run from a base is compared with the same run from 0 (`canon`): the
//! same results, counters and shared memory, each index less its base.

use super::*;
use proptest::prelude::*;

/// Where each ring's indices start: the fill, rx and tx rings' (the
/// driver's and the user's alike) and the completion ring's count,
/// `RingState::comp_prod` (64 bits: the shared producer index, and the
/// user's consumer, are its low 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Base {
    pub fill: u32,
    pub rx: u32,
    pub tx: u32,
    pub comp: u64,
}

impl Base {
    /// An attach's.
    pub const ZERO: Base = Base { fill: 0, rx: 0, tx: 0, comp: 0 };

    /// The fill ring's index `i` past the base (likewise `rx`, `tx`,
    /// `comp`).
    pub fn fill(&self, i: u32) -> u32 {
        self.fill.wrapping_add(i)
    }
    pub fn rx(&self, i: u32) -> u32 {
        self.rx.wrapping_add(i)
    }
    pub fn tx(&self, i: u32) -> u32 {
        self.tx.wrapping_add(i)
    }
    pub fn comp(&self, i: u32) -> u32 {
        (self.comp as u32).wrapping_add(i)
    }
}

/// Every ring a few entries before its index wraps (and the completion
/// count a few before 2^32), so that a run of a few frames crosses it.
const fn before_wrap(k: u32) -> Base {
    let k32 = 0u32.wrapping_sub(k);
    Base { fill: k32, rx: k32, tx: k32, comp: (1 << 32) - k as u64 }
}

/// The bases every unit test runs from: 0, each ring's index just before
/// (and at) its wrap, the completion count just before 2^32 and 2^33
/// (and past 2^32, its low 32 bits just before their wrap), and rings
/// each at a different place.
pub(super) const BASES: [Base; 8] = [
    Base::ZERO,
    before_wrap(1),
    before_wrap(3),
    before_wrap(8),
    Base { fill: 0, rx: 0, tx: 0, comp: (1 << 33) - 2 },
    Base { fill: u32::MAX - 5, rx: 0x8000_0000 - 2, tx: u32::MAX, comp: (3 << 32) - 5 },
    Base { fill: 7, rx: u32::MAX - 1, tx: u32::MAX - 6, comp: (1 << 32) + 3 },
    Base { fill: u32::MAX, rx: u32::MAX, tx: u32::MAX, comp: u64::MAX - 2 },
];

/// Runs `f` from each of `BASES`, saying from which when it fails.
pub(super) fn from_each_base(f: impl Fn(Base)) {
    /// Says, when its test fails, from which base.
    struct Say(Base);
    impl Drop for Say {
        fn drop(&mut self) {
            if std::thread::panicking() {
                std::eprintln!("(from {:?})", self.0);
            }
        }
    }
    for b in BASES {
        let _say = Say(b);
        f(b);
    }
}

/// Bases for the proptests: each ring's at 0, a little before its wrap, or
/// anywhere; the completion count at 0, a little before 2^32 or 2^33, or
/// anywhere past 2^32.
pub(super) fn base() -> impl Strategy<Value = Base> {
    // (A test's run moves an index by a ring's length or two at most: a
    // base at most 8 before the wrap is likely crossed.)
    let ring = || {
        prop_oneof![
            2 => Just(0u32),
            4 => (1u32..=8).prop_map(|k| 0u32.wrapping_sub(k)),
            2 => (9u32..=24).prop_map(|k| 0u32.wrapping_sub(k)),
            1 => any::<u32>(),
        ]
    };
    let comp = prop_oneof![
        2 => Just(0u64),
        3 => (1u64..=12).prop_map(|k| (1 << 32) - k),
        3 => (1u64..=12).prop_map(|k| (1 << 33) - k),
        1 => (1u64 << 32)..=u64::MAX,
    ];
    (ring(), ring(), ring(), comp).prop_map(|(fill, rx, tx, comp)| Base { fill, rx, tx, comp })
}

/// A fresh `RingState` for `l` whose indices start at `b`, as the driver's
/// would be after a while (nothing reserved, nothing outstanding).
pub(super) fn state_at(l: RingLayout, b: Base) -> RingState {
    let mut s = RingState::new(l);
    s.fill_cons = b.fill;
    s.rx_prod = b.rx;
    s.tx_cons = b.tx;
    s.comp_prod = b.comp;
    s
}

/// The user's indices at `b` (as it would have them, having consumed and
/// posted everything so far); nothing else of `m` is changed.
pub(super) fn user_at(l: &RingLayout, m: &Mem, b: Base) {
    m.store_u32(l.fill.producer(), b.fill);
    m.store_u32(l.rx.consumer(), b.rx);
    m.store_u32(l.tx.producer(), b.tx);
    m.store_u32(l.completion.consumer(), b.comp(0));
}

/// `attached`, from `b`: the user's indices and the driver's at `b`, the
/// driver's announced.
pub(super) fn attached_at(b: Base) -> (RingLayout, Mem, RingState) {
    let (l, m) = setup();
    user_at(&l, &m, b);
    let s = state_at(l, b);
    s.announce(&m);
    (l, m, s)
}

/// `m`'s bytes as a run from 0 would have left them, for one from `b`:
/// each ring's indices less its base, and its entries turned so that the
/// one for the index `base + j` is where the one for `j` is.
pub(super) fn canon(l: &RingLayout, m: &Mem, b: Base) -> Vec<u8> {
    let mut out = m.0.borrow().clone();
    for (r, base) in [(l.fill, b.fill), (l.rx, b.rx), (l.tx, b.tx), (l.completion, b.comp(0))] {
        for off in [r.producer(), r.consumer()] {
            let v = m.load_u32(off).wrapping_sub(base);
            out[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        for j in 0..r.size {
            let (to, from) = (r.entry_at(j), r.entry_at(base.wrapping_add(j)));
            out[to..to + r.entry].copy_from_slice(&m.0.borrow()[from..from + r.entry]);
        }
    }
    out
}

/// `canon` is what a run from 0 leaves: a check of the comparison itself.
#[test]
fn a_state_from_a_base_announces_and_canonicalizes_as_one_from_zero() {
    let (l, m0, s0) = attached();
    let zero = m0.0.borrow().clone();
    assert!(canon(&l, &m0, Base::ZERO) == zero);
    for b in BASES {
        let (_, m, s) = attached_at(b);
        assert_eq!(m.load_u32(l.completion.producer()), b.comp as u32);
        assert_eq!(s.producers(), (b.rx, b.comp as u32));
        assert_eq!(s.ready_flags(&m), s0.ready_flags(&m0));
        assert!(canon(&l, &m, b) == zero, "{b:?}");
    }
}
