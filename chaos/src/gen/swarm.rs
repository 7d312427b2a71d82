//! Swarm schedules (Groce et al., "Swarm Testing", ISSTA 2012): a schedule
//! that uses every kind of action spends a little of its length on each,
//! so the states that need one kind to stay away (a queue that fills
//! because nobody reads, a binding that runs for long because nobody
//! pauses it, OIDs held with no sends around them) are rare. A swarm
//! schedule leaves out a random half of the kinds of actions and fills
//! the length they had with more of the kinds it kept.

use super::Profile;
use crate::schedule::*;
use ndisim::rng::Rng;

/// A kind of action a swarm schedule may leave out. Creates, opens,
/// sleeps, binds of every adapter and uninstalls always stay: without
/// them nothing else happens, or the schedule's frame changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Sends,
    Reads,
    Waits,
    Oids,
    Queries,
    Cancels,
    Closes,
    Garbage,
    Rings,
    PauseRestart,
    Rebinds,
    Links,
    Power,
    OtherPnp,
    Receives,
    HeldSends,
    HeldOids,
    CompletionPolicies,
    MiniportEvents,
}

impl Feature {
    pub const ALL: [Feature; 19] = [
        Feature::Sends,
        Feature::Reads,
        Feature::Waits,
        Feature::Oids,
        Feature::Queries,
        Feature::Cancels,
        Feature::Closes,
        Feature::Garbage,
        Feature::Rings,
        Feature::PauseRestart,
        Feature::Rebinds,
        Feature::Links,
        Feature::Power,
        Feature::OtherPnp,
        Feature::Receives,
        Feature::HeldSends,
        Feature::HeldOids,
        Feature::CompletionPolicies,
        Feature::MiniportEvents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Sends => "sends",
            Feature::Reads => "reads",
            Feature::Waits => "waits",
            Feature::Oids => "oids",
            Feature::Queries => "queries",
            Feature::Cancels => "cancels",
            Feature::Closes => "closes",
            Feature::Garbage => "garbage",
            Feature::Rings => "rings",
            Feature::PauseRestart => "pause-restart",
            Feature::Rebinds => "rebinds",
            Feature::Links => "links",
            Feature::Power => "power",
            Feature::OtherPnp => "other-pnp",
            Feature::Receives => "receives",
            Feature::HeldSends => "held-sends",
            Feature::HeldOids => "held-oids",
            Feature::CompletionPolicies => "completion-policies",
            Feature::MiniportEvents => "miniport-events",
        }
    }

    fn of_io(a: &IoAction) -> Option<Feature> {
        Some(match a {
            IoAction::SendBatch { .. } | IoAction::Write { .. } => Feature::Sends,
            IoAction::Read { .. } | IoAction::ReadPending { .. } => Feature::Reads,
            IoAction::WaitEvent { .. } | IoAction::WaitBinds { .. } => Feature::Waits,
            IoAction::Oid { .. } => Feature::Oids,
            IoAction::Stats { .. } | IoAction::List { .. } | IoAction::Version { .. } => Feature::Queries,
            IoAction::CancelAll { .. } | IoAction::CancelIo { .. } | IoAction::RaceCancel { .. } => Feature::Cancels,
            IoAction::Close { .. } | IoAction::Abandon { .. } | IoAction::CloseRacing { .. } => Feature::Closes,
            IoAction::Garbage { .. } | IoAction::Mutated { .. } => Feature::Garbage,
            IoAction::Ring { .. } => Feature::Rings,
            IoAction::Program { .. } => Feature::Queries,
            IoAction::Create { .. }
            | IoAction::Open { .. }
            | IoAction::Sleep { .. }
            | IoAction::AwaitSpell { .. }
            | IoAction::AwaitUnbind { .. }
            | IoAction::CancelAway { .. }
            | IoAction::StallAllocations { .. }
            | IoAction::ShortOfMemory { .. } => return None,
        })
    }

    fn of_pnp(a: &PnpAction) -> Option<Feature> {
        Some(match a {
            PnpAction::Pause { .. } | PnpAction::Restart { .. } => Feature::PauseRestart,
            PnpAction::Unbind { .. } | PnpAction::Bind { .. } => Feature::Rebinds,
            PnpAction::Link { .. } => Feature::Links,
            PnpAction::Power { .. } | PnpAction::InOidCall { .. } => Feature::Power,
            PnpAction::Event { .. } => Feature::OtherPnp,
            // (Held returns to D0 are drawn after the swarm: `knobs.rs`.)
            PnpAction::Sleep { .. }
            | PnpAction::BindAll
            | PnpAction::Uninstall
            | PnpAction::HeldD0 { .. }
            | PnpAction::StallLockAcquire { .. }
            | PnpAction::StallCall { .. } => {
                return None;
            }
        })
    }

    fn of_nic(a: &NicAction) -> Option<Feature> {
        Some(match a {
            NicAction::Inject { .. } => Feature::Receives,
            NicAction::HoldSends { .. } => Feature::HeldSends,
            NicAction::HoldOids { .. } | NicAction::StallOidCalls { .. } => Feature::HeldOids,
            NicAction::Completion { .. } => Feature::CompletionPolicies,
            NicAction::Status { .. } | NicAction::FailOids { .. } => Feature::MiniportEvents,
            // (Late returns and slow cancel routines are drawn after the
            // swarm, on top of what it kept.)
            NicAction::Sleep { .. }
            | NicAction::StallOidReturns { .. }
            | NicAction::StallCancels { .. }
            | NicAction::HoldWorkItems { .. }
            | NicAction::StallAllocations { .. } => {
                return None;
            }
        })
    }
}

/// What a profile is about: a swarm schedule keeps these.
fn core(p: Profile) -> &'static [Feature] {
    match p {
        Profile::Mixed => &[],
        Profile::SendStorm => &[Feature::Sends, Feature::PauseRestart],
        // The frames retained are what the pair's other end sends.
        Profile::RetainStorm => &[Feature::Sends, Feature::PauseRestart],
        Profile::Teardown => &[Feature::Rebinds],
        Profile::OidStorm => &[Feature::Oids],
        Profile::FilterStorm => &[Feature::Closes, Feature::PauseRestart],
        Profile::RxStorm => &[Feature::Receives, Feature::Reads],
        Profile::RingStorm => &[Feature::Rings, Feature::Receives, Feature::PauseRestart],
        // Threads go from adapter to adapter by closing and opening again.
        Profile::Crowd => &[Feature::Closes, Feature::Receives, Feature::PauseRestart],
        // Never swarmed (`scenes.rs`).
        Profile::UnionRace | Profile::D0NoRestart | Profile::FilterShortage => &[],
    }
}

/// For `per_cent` of the schedules, leaves out each kind of action with
/// even odds (but those `profile` is about), and refills each list to its
/// length with copies of the actions of the kinds it kept (placed at
/// random). Returns the kinds left out, by name (empty: not a swarm
/// schedule).
pub(super) fn swarm(
    r: &mut Rng,
    per_cent: u32,
    profile: Profile,
    pnp: &mut Vec<PnpAction>,
    nic: &mut Vec<NicAction>,
    handles: &mut [Vec<IoAction>],
) -> Vec<String> {
    if r.below(100) >= u64::from(per_cent) {
        return Vec::new();
    }
    let out: Vec<Feature> = Feature::ALL.into_iter().filter(|f| r.chance(500) && !core(profile).contains(f)).collect();
    let kept = |f: Option<Feature>| f.is_none_or(|f| !out.contains(&f));
    thin(r, pnp, |a| kept(Feature::of_pnp(a)), |a| Feature::of_pnp(a).is_some());
    thin(r, nic, |a| kept(Feature::of_nic(a)), |a| Feature::of_nic(a).is_some());
    for list in handles.iter_mut() {
        thin(r, list, |a| kept(Feature::of_io(a)), |a| Feature::of_io(a).is_some());
    }
    out.iter().map(|f| f.name().to_string()).collect()
}

/// Keeps the actions `keep` takes, then inserts copies of kept actions
/// that `counts` (the swarm's kinds, not the sleeps and set-up ones) until
/// the list is as long as it was.
fn thin<T: Clone>(r: &mut Rng, list: &mut Vec<T>, keep: impl Fn(&T) -> bool, counts: impl Fn(&T) -> bool) {
    let len = list.len();
    list.retain(&keep);
    let donors: Vec<T> = list.iter().filter(|a| counts(a)).cloned().collect();
    if donors.is_empty() {
        return;
    }
    while list.len() < len {
        let a = r.pick(&donors).clone();
        let at = r.below(list.len() as u64 + 1) as usize;
        list.insert(at, a);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, generate};
    use super::*;

    fn opts(swarm: u32) -> GenOptions {
        GenOptions { swarm, rings: 250, ..GenOptions::plain(Mode::Free) }
    }

    #[test]
    fn a_swarm_schedule_has_none_of_the_kinds_it_leaves_out_and_keeps_its_length() {
        let mut swarms = 0;
        for seed in 1..200 {
            let plain = generate(seed, opts(0));
            let s = generate(seed, opts(100));
            assert!(plain.swarm.is_empty());
            if s.swarm.is_empty() {
                // Even odds for each of 19 kinds: all kept is about 2e-6.
                continue;
            }
            swarms += 1;
            let out = |f: Option<Feature>| f.is_some_and(|f| s.swarm.iter().any(|n| n == f.name()));
            assert!(!s.pnp.iter().any(|a| out(Feature::of_pnp(a))), "seed {seed}");
            assert!(!s.nic.iter().any(|a| out(Feature::of_nic(a))), "seed {seed}");
            assert!(!s.handles.iter().flatten().any(|a| out(Feature::of_io(a))), "seed {seed}");
            // Refilled, unless a list kept nothing but sleeps and set-up.
            for (a, b) in plain.handles.iter().zip(&s.handles) {
                assert!(b.len() == a.len() || b.iter().all(|x| Feature::of_io(x).is_none()), "seed {seed}");
            }
            // The adapters and the rest of the frame are the seed's.
            assert_eq!(plain.adapters, s.adapters);
            assert_eq!(plain.pct, s.pct);
        }
        assert!(swarms > 190, "{swarms} swarm schedules of 199");
    }

    #[test]
    fn swarm_schedules_differ_in_what_they_leave_out() {
        let left: std::collections::BTreeSet<Vec<String>> =
            (1..50).map(|seed| generate(seed, opts(100)).swarm).collect();
        assert!(left.len() > 40, "{} different sets in 49 schedules", left.len());
        // Every kind is left out by some schedule, and kept by some.
        for f in Feature::ALL {
            let n = (1..50).filter(|&seed| generate(seed, opts(100)).swarm.iter().any(|x| x == f.name())).count();
            assert!((5..45).contains(&n), "{} left out in {n} of 49", f.name());
        }
    }

    #[test]
    fn half_the_schedules_are_swarms_at_fifty_per_cent() {
        let n = (1..401).filter(|&seed| !generate(seed, opts(50)).swarm.is_empty()).count();
        assert!((150..250).contains(&n), "{n} of 400");
    }
}
