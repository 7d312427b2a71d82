//! What the generator may vary (`GenOptions`): each option beyond the
//! mode draws from a stream of its own, so 0 gives every seed the
//! schedule it had before that option.

use super::{Profile, edges};
use crate::schedule::Mode;

/// What the generator may vary.
#[derive(Debug, Clone, Copy)]
pub struct GenOptions {
    pub mode: Mode,
    /// Low-resources per mille (0: off).
    pub lowres: u32,
    pub special_pool: bool,
    /// Every schedule stresses this (default: drawn from the seed).
    pub profile: Option<Profile>,
    /// Free-running jitter, per mille of calls into ndisim.
    pub jitter: u32,
    /// Free-running preemptions inside the driver, a second.
    pub preempt: u32,
    /// PnP and NIC actors each (1 to 3): the schedule's PnP actions split
    /// among threads by adapter, its NIC actions round robin.
    pub parallel: u8,
    /// Per mille of the schedules whose handle threads also use rings
    /// (`rings.rs`; 0: every seed's schedule is what it was before rings).
    pub rings: u32,
    /// Per cent of the deterministic schedules whose scheduler picks by
    /// priorities (PCT) instead of uniformly (0: every seed's schedule is
    /// what it was before).
    pub pct: u32,
    /// Per cent of the schedules that leave out a random half of the kinds
    /// of actions (`swarm.rs`; 0: every seed's schedule is what it was
    /// before).
    pub swarm: u32,
    /// Per mille of the adapter specs that get `bind-status=1..6`
    /// (`edges::bind_statuses`; 0: every seed's adapters are what they
    /// were before, `BIND_STATUS_PER_MILLE` the default).
    pub bind_status: u32,
    /// Per mille of the schedules whose emulated Windows is older than 11
    /// 24H2 (`edges::older_ndis`; 0: every seed's schedule is what it was
    /// before, `OLD_NDIS_PER_MILLE` the default).
    pub old_ndis: u32,
    /// Per mille of the receive bursts whose frames go to two to four
    /// destinations (and EtherTypes) in turn, and of the ring users' opens
    /// that list EtherTypes (`shapes::mixed_bursts`; 0: every seed's
    /// schedule is what it was before, `MIXED_BURSTS_PER_MILLE` the default).
    pub mixed_bursts: u32,
    /// Per mille of the programs set that are random (`programs::random`;
    /// 0: every seed's schedule is what it was before).
    pub random_programs: u32,
    /// Per mille of the unbinds an OPEN races (`open_unbind`; 0: every
    /// seed's schedule is what it was before).
    pub open_unbind: u32,
    /// Per mille of the schedules that get a burst of refused allocations
    /// (`fail_nth`; 0: every seed's schedule is what it was before).
    pub fail_nth: u32,
    /// Per mille of the schedules whose adapters that indicate status
    /// during binds answer pending queries on arrival
    /// (`edges::answers_on_arrival`; 0: every seed's schedule is what it
    /// was before).
    pub answer_on_arrival: u32,
    /// Per mille of the deterministic schedules run twice, with other
    /// garbage the second time (`Schedule::twin`; its own draw, so no
    /// other part of a seed's schedule changes with it).
    pub twin: u32,
    /// Per cent of `knobs::odds` at which schedules draw ndisim's knobs
    /// (`knobs.rs`: work items and returns to D0 held, allocations
    /// stalled, cancels on threads nobody waits for; 0: every seed's
    /// schedule is what it was before, `KNOBS_PER_CENT` the default).
    pub knobs: u32,
    /// Per mille of the schedules in which every export is a scheduling
    /// point after its body too (`Schedule::points_after`; its own draw,
    /// so no other part of a seed's schedule changes with it).
    pub points_after: u32,
    /// Per mille of the opens without a snap length that get one
    /// (`snaplens.rs`; 0: every seed's schedule is what it was before,
    /// `SNAPLENS_PER_MILLE` the default).
    pub snaplens: u32,
}

impl GenOptions {
    /// `mode` with nothing added: no low resources, special pool, profile,
    /// jitter, rings, PCT or swarm, one actor of each kind.
    pub fn plain(mode: Mode) -> GenOptions {
        GenOptions {
            mode,
            lowres: 0,
            special_pool: false,
            profile: None,
            jitter: 0,
            preempt: 0,
            parallel: 1,
            rings: 0,
            pct: 0,
            swarm: 0,
            bind_status: edges::BIND_STATUS_PER_MILLE,
            old_ndis: 0,
            mixed_bursts: 0,
            random_programs: 0,
            open_unbind: 0,
            fail_nth: 0,
            answer_on_arrival: 0,
            twin: 0,
            knobs: 0,
            points_after: 0,
            snaplens: 0,
        }
    }
}
