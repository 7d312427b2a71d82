//! `--profile crowd`: the scale the other profiles never reach. They bind
//! one to three adapters (or pairs) and run one to three handle threads;
//! a machine may bind many NICs and open many handles. A crowd has 6 to
//! 16 adapters (loopbacks, nulls and pairs, with the options
//! `adapter_opts` draws), 5 to 10 handle threads that each hold two
//! handles on different adapters and move them from adapter to adapter
//! over their lives, among mixed I/O as `Profile::Mixed` draws it, a PnP
//! stream that touches every adapter (a pause and restart, a rebind, a
//! trip to D3 and back, or any other event, for each, in a random order,
//! and more events anywhere), and receive bursts on every adapter. Named
//! only (never drawn: every seed keeps its schedule), and drawn from the
//! main stream after the profile (no other profile reaches this file).

use super::profile::{open_action, pause_restart, pause_restart_of, rebind};
use super::*;

/// The adapter specs of a crowd: 6 to 16 adapters, loopbacks, nulls and
/// pairs as `adapters` mixes them (a pair only where it fits).
pub(super) fn adapters(r: &mut Rng) -> Vec<String> {
    let want = r.range(6, 16) as usize;
    let mut v = Vec::new();
    let mut next = 0;
    while next < want {
        let mut kind = r.below(4);
        if kind == 3 && next + 2 > want {
            kind = 0;
        }
        push_adapter(r, kind, &mut next, &mut v);
    }
    v
}

/// A crowd's PnP, NIC and handle actions on its `n` adapters.
pub(super) fn schedule(r: &mut Rng, n: usize) -> (Vec<PnpAction>, Vec<NicAction>, Vec<Vec<IoAction>>) {
    let pnp = pnp(r, n);
    let nic = nic(r, n);
    let handles = (0..r.range(5, 10)).map(|_| thread(r, n)).collect();
    (pnp, nic, handles)
}

/// Every adapter gets one cycle (a pause and restart, a rebind, D3 and
/// back to D0, or any one event), and n/2 to 2n more cycles or events go
/// anywhere; the cycles come in a random order, each whole.
fn pnp(r: &mut Rng, n: usize) -> Vec<PnpAction> {
    let mut cycles: Vec<Vec<PnpAction>> = Vec::new();
    for a in 0..n {
        let mut c = Vec::new();
        match r.below(10) {
            0..=3 => pause_restart_of(r, a, &mut c),
            4 | 5 => rebind(a, &mut c),
            6 | 7 => {
                c.push(PnpAction::Power { a, d3: true });
                if r.chance(500) {
                    c.push(PnpAction::Sleep { ms: r.range(0, 5) as u32 });
                }
                c.push(PnpAction::Power { a, d3: false });
            }
            _ => c.push(pnp_action_of(r, a)),
        }
        cycles.push(c);
    }
    for _ in 0..r.range((n / 2) as u64, 2 * n as u64) {
        let mut c = Vec::new();
        if r.chance(400) {
            pause_restart(r, n, &mut c);
        } else {
            c.push(pnp_action(r, n));
        }
        cycles.push(c);
    }
    shuffle(r, &mut cycles);
    cycles.into_iter().flatten().collect()
}

/// `pnp_action` for adapter `a` (drawn again while it is a sleep).
fn pnp_action_of(r: &mut Rng, a: usize) -> PnpAction {
    let mut act = pnp_action(r, 1);
    while act.adapter().is_none() {
        act = pnp_action(r, 1);
    }
    match &mut act {
        PnpAction::Pause { a: x }
        | PnpAction::Restart { a: x, .. }
        | PnpAction::Unbind { a: x }
        | PnpAction::Bind { a: x }
        | PnpAction::Link { a: x, .. }
        | PnpAction::Power { a: x, .. }
        | PnpAction::InOidCall { a: x, .. }
        | PnpAction::HeldD0 { a: x, .. } => *x = a,
        PnpAction::Event { a: Some(x), .. } => *x = a,
        PnpAction::Event { a: None, .. }
        | PnpAction::BindAll
        | PnpAction::Sleep { .. }
        | PnpAction::Uninstall
        | PnpAction::StallLockAcquire { .. }
        | PnpAction::StallCall { .. } => {}
    }
    act
}

/// A burst on every adapter (one in twenty long), and n to 3n more
/// actions: bursts on any adapter three times in five, else any NIC
/// action; in a random order.
fn nic(r: &mut Rng, n: usize) -> Vec<NicAction> {
    let mut v = Vec::new();
    for a in 0..n {
        let long = r.chance(50);
        v.push(inject_action(r, a, long));
    }
    for _ in 0..r.range(n as u64, 3 * n as u64) {
        v.push(if r.chance(600) {
            let a = r.below(n as u64) as usize;
            let long = r.chance(50);
            inject_action(r, a, long)
        } else {
            nic_action(r, n)
        });
    }
    shuffle(r, &mut v);
    v
}

/// One handle thread: handles on two of the two to four adapters it goes
/// round (slots 0 and 1), mixed I/O (`io_action`, whose opens go to any
/// adapter on any slot), and now and then one of the two closed (or
/// abandoned) and opened again on the next adapter of its round.
fn thread(r: &mut Rng, n: usize) -> Vec<IoAction> {
    let k = (r.range(2, 4) as usize).min(n);
    let mut round: Vec<usize> = Vec::new();
    while round.len() < k {
        let a = r.below(n as u64) as usize;
        if !round.contains(&a) {
            round.push(a);
        }
    }
    let open = |r: &mut Rng, slot: u8, a: usize| {
        let filter = match r.below(4) {
            0 => rawnic_proto::filter::PROMISCUOUS.bits(),
            1 => rawnic_proto::filter::BROADCAST.bits(),
            _ => rawnic_proto::filter::DEFAULT.bits(),
        };
        let mut o = open_action(r, slot, n, filter);
        if let IoAction::Open { a: to, .. } = &mut o {
            *to = a;
        }
        o
    };
    let mut v = vec![IoAction::Create { slot: 0 }, open(r, 0, round[0]), IoAction::Create { slot: 1 }];
    v.push(open(r, 1, round[1 % k]));
    let mut next = 2;
    for _ in 0..r.range(15, 50) {
        if r.chance(100) {
            let slot = r.below(2) as u8;
            v.push(if r.chance(200) { IoAction::Abandon { slot } } else { IoAction::Close { slot } });
            v.push(IoAction::Create { slot });
            v.push(open(r, slot, round[next % k]));
            next += 1;
        } else {
            v.push(io_action(r, n));
        }
    }
    v
}

/// Fisher-Yates, from `r`.
fn shuffle<T>(r: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crowd(mode: Mode, parallel: u8) -> GenOptions {
        GenOptions { profile: Some(Profile::Crowd), parallel, ..GenOptions::plain(mode) }
    }

    /// Named only: no seed draws it, so every seed keeps its schedule.
    #[test]
    fn a_crowd_is_only_named() {
        assert!(!Profile::ALL.contains(&Profile::Crowd));
        assert_eq!(Profile::parse("crowd"), Some(Profile::Crowd));
    }

    /// 6 to 16 adapters whose specs parse, 5 to 10 threads that each open
    /// handles on two adapters or more, a PnP event for every adapter, a
    /// burst on every adapter, and the actions of every adapter on one PnP
    /// actor under `--parallel 3`.
    #[test]
    fn a_crowd_binds_many_adapters_and_touches_every_one() {
        let (mut pairs, mut shared) = (0, 0);
        for seed in 0..60 {
            let s = generate(seed, crowd(Mode::Det, 1));
            let n = adapter_count(&s.adapters);
            assert!((6..=16).contains(&n), "seed {seed}: {n} adapters");
            let parsed: usize = s
                .adapters
                .iter()
                .map(|spec| ndisim::AdapterSpec::parse(spec).unwrap_or_else(|e| panic!("seed {seed}: {e}")).len())
                .sum();
            assert_eq!(parsed, n, "seed {seed}");
            pairs += s.adapters.iter().filter(|a| a.starts_with("pair:")).count();
            assert!((5..=10).contains(&s.handles.len()), "seed {seed}: {} threads", s.handles.len());
            for (t, list) in s.handles.iter().enumerate() {
                let mut on: Vec<usize> = list
                    .iter()
                    .filter_map(|x| if let IoAction::Open { a, .. } = x { Some(*a) } else { None })
                    .collect();
                on.sort_unstable();
                on.dedup();
                assert!(on.len() >= 2, "seed {seed}: thread {t} opens on {on:?}");
                assert!(on.iter().all(|&a| a < n), "seed {seed}");
            }
            shared += usize::from(s.handles.iter().flatten().any(|x| x.slot() == Some(SHARED_SLOTS)));
            let pnp: Vec<usize> = s.pnp.iter().filter_map(PnpAction::adapter).collect();
            let bursts: Vec<usize> = s
                .nic
                .iter()
                .filter_map(|x| if let NicAction::Inject { a, .. } = x { Some(*a) } else { None })
                .collect();
            for a in 0..n {
                // (A late bind's schedule begins with binding them all.)
                assert!(pnp.contains(&a), "seed {seed}: no PnP event for adapter {a}");
                // (A swarm may leave receives out; `plain` makes none.)
                assert!(bursts.contains(&a), "seed {seed}: no burst on adapter {a}");
            }
            // The same actions dealt to three PnP actors, each adapter's on
            // one of them.
            let p = generate(seed, crowd(Mode::Det, 3));
            for a in 0..n {
                let holders = std::iter::once(&p.pnp)
                    .chain(p.pnp_more.iter())
                    .filter(|l| l.iter().any(|x| x.adapter() == Some(a)))
                    .count();
                assert_eq!(holders, 1, "seed {seed}: adapter {a}");
            }
        }
        assert!(pairs > 20, "{pairs} pairs");
        assert!((10..50).contains(&shared), "{shared} of 60 crowds share handles");
    }
}
