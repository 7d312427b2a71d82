//! Mutations: arbitrary bytes, and valid encodings with a few faults.

use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Byte(usize, u8),
    U16(usize, u16),
    U32(usize, u32),
    Truncate(usize),
    Extend(Vec<u8>),
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Byte(i, v)),
        (any::<usize>(), prop_oneof![Just(0u16), Just(1), Just(0xffff), any::<u16>()])
            .prop_map(|(i, v)| Mutation::U16(i, v)),
        (any::<usize>(), prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()])
            .prop_map(|(i, v)| Mutation::U32(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
    ]
}

pub(crate) fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let n = b.len();
    match m {
        Mutation::Byte(i, v) if n > 0 => b[i % n] = *v,
        // Fields sit at aligned offsets.
        Mutation::U16(i, v) if n >= 2 => {
            let o = (i % (n / 2)) * 2;
            b[o..o + 2].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::U32(i, v) if n >= 4 => {
            let o = (i % (n / 4)) * 4;
            b[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::Truncate(i) => b.truncate(i % (n + 1)),
        Mutation::Extend(x) => b.extend_from_slice(x),
        _ => {}
    }
}

/// Arbitrary bytes, a valid encoding, or a valid encoding with faults.
pub(crate) fn fuzzed(valid: impl Strategy<Value = Vec<u8>> + 'static) -> impl Strategy<Value = Vec<u8>> {
    let valid = valid.boxed();
    prop_oneof![
        1 => vec(any::<u8>(), 0..200),
        1 => valid.clone(),
        4 => (valid, vec(mutation(), 1..4)).prop_map(|(mut b, ms)| {
            for m in &ms {
                apply(&mut b, m);
            }
            b
        }),
    ]
}

pub(crate) fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}
