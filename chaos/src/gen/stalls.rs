//! OID calls held inside `NdisOidRequest` while PnP events arrive. A
//! driver must pend a set-power event for low power until its OID calls
//! have left `NdisOidRequest`, may not send new ones meanwhile, and must
//! survive a pause, an unbind or a close of a handle whose request is
//! still in the call. In a quarter of the schedules (half of the
//! `oid-storm` and `teardown` ones), one to three scenes: the NIC actor
//! stalls every call on an adapter for a while (`NicAction::StallOidCalls`),
//! the PnP actor waits for a call to be stalled and sends a power event,
//! a pause or an unbind (`PnpAction::InOidCall`), sometimes back to D0 a
//! little later, and the handle threads make OID requests and opens
//! there, and close some of them, at about the same point of their lists.

use super::Profile;
use crate::schedule::*;
use ndis_sys::*;
use ndisim::rng::Rng;

/// Which handlers stall (`Schedule::slow`), in a quarter of the schedules
/// (half the `ring-storm` and `teardown` ones): the pause and restart
/// handler, so a kick, an indication, a send or a close runs into its
/// middle; the dispatch routines, so a pause overtakes a kick, a send or
/// an open; the receive handler, so a pause or a low-resources indication
/// comes while it holds frames; the completions and the work item, so
/// PnP events and closes meet them half-way; or a few of them at once.
pub(super) fn slow_handlers(r: &mut Rng, profile: Profile) -> Option<Slow> {
    let odds = if matches!(profile, Profile::RingStorm | Profile::Teardown) { 500 } else { 250 };
    if !r.chance(odds) {
        return None;
    }
    const SETS: [&[&str]; 7] = [
        &["ProtocolNetPnPEvent"],
        &["ProtocolNetPnPEvent"],
        &["IRP_MJ_DEVICE_CONTROL", "IRP_MJ_WRITE", "IRP_MJ_READ"],
        &["ProtocolReceiveNetBufferLists"],
        &["ProtocolSendNetBufferListsComplete", "ProtocolOidRequestComplete", "WorkerRoutine"],
        &["IRP_MJ_CLEANUP", "IRP_MJ_CLOSE", "ProtocolUnbindAdapterEx", "ProtocolCloseAdapterCompleteEx"],
        &["ProtocolNetPnPEvent", "IRP_MJ_DEVICE_CONTROL", "ProtocolReceiveNetBufferLists"],
    ];
    let handlers = r.pick(&SETS).iter().map(|h| h.to_string()).collect();
    Some(Slow { handlers, per_mille: *r.pick(&[100u32, 250, 500, 1000]), max_us: *r.pick(&[200u32, 1000, 3000]) })
}

/// Inserts the scenes; returns how many.
pub(super) fn oid_stalls(
    r: &mut Rng,
    profile: Profile,
    specs: &mut [String],
    pnp: &mut Vec<PnpAction>,
    nic: &mut Vec<NicAction>,
    handles: &mut [Vec<IoAction>],
    n: usize,
) -> usize {
    let odds = if matches!(profile, Profile::OidStorm | Profile::Teardown) { 500 } else { 250 };
    if !r.chance(odds) {
        return 0;
    }
    let scenes = r.range(1, 3) as usize;
    let mut drawn = Vec::new();
    for _ in 0..scenes {
        let a = r.below(n as u64) as usize;
        let ms = r.range(10, 120) as u32;
        // Where in the lists, as a fraction of their lengths.
        let at = r.below(1000) as usize;
        let pos = |len: usize| len * at / 1000;
        let event = match r.below(8) {
            0..=3 => InCall::PowerDown,
            4 => InCall::PowerUp,
            5 | 6 => InCall::Pause,
            _ => InCall::Unbind,
        };
        let mut p = vec![PnpAction::InOidCall { a, wait_ms: ms, event }];
        if event == InCall::PowerDown && r.chance(500) {
            no_pause_on_suspend(specs, a);
        }
        match event {
            InCall::PowerDown if r.chance(600) => {
                p.push(PnpAction::Sleep { ms: r.range(0, 2 * ms as u64) as u32 });
                p.push(PnpAction::Power { a, d3: false });
            }
            InCall::Unbind if r.chance(700) => p.push(PnpAction::Bind { a }),
            _ => {}
        }
        let i = pos(pnp.len());
        pnp.splice(i..i, p);
        let j = pos(nic.len());
        nic.insert(j, NicAction::StallOidCalls { a, ms });
        drawn.push((a, at));
    }
    // The handles' part last, so the PnP and NIC parts do not depend on
    // the handle lists (which rings lengthen).
    for (a, at) in drawn {
        for list in handles.iter_mut() {
            if !r.chance(700) {
                continue;
            }
            let k = list.len() * at / 1000;
            let acts = requests(r, list, k, a);
            list.splice(k..k, acts);
        }
    }
    scenes
}

/// Adapter `a`'s miniport keeps its bindings running through power
/// changes (`pause-on-suspend=off`: NDIS 6.30's NO_PAUSE_ON_SUSPEND), so
/// D0 comes without a restart: what low power refused must be set then.
fn no_pause_on_suspend(specs: &mut [String], a: usize) {
    let mut at = 0;
    for s in specs.iter_mut() {
        at += if s.starts_with("pair:") { 2 } else { 1 };
        if a < at {
            if !s.contains("pause-on-suspend=") {
                super::add_option(s, "pause-on-suspend=off");
            }
            return;
        }
    }
}

/// What a handle thread does at point `k` of its `list`: an OID request
/// on the handle it opened last (or a new one on `a`), an open of a spare
/// handle on `a` (its packet-filter set is the driver's own OID call), and
/// sometimes a close of one of them while its request may be in the call.
pub(super) fn requests(r: &mut Rng, list: &[IoAction], k: usize, a: usize) -> Vec<IoAction> {
    let mut out = Vec::new();
    let slot = match last_open(list, k) {
        Some(s) => s,
        None => {
            out.push(IoAction::Create { slot: 0 });
            out.push(super::profile::open_action(r, 0, a + 1, rawnic_proto::filter::DEFAULT.bits()));
            if let Some(IoAction::Open { a: to, .. }) = out.last_mut() {
                *to = a;
            }
            0
        }
    };
    let set = r.chance(400);
    out.push(IoAction::Oid {
        slot,
        set,
        oid: if set { OID_802_3_MULTICAST_LIST } else { *r.pick(&[OID_GEN_LINK_SPEED, OID_GEN_STATISTICS]) },
        len: if set { 0 } else { 256 },
        wait_ms: r.range(0, 2 * 120) as u32,
        groups: set.then(|| r.below(256) as u8),
    });
    if r.chance(600) {
        let spare = 3;
        let filter = *r.pick(&[
            rawnic_proto::filter::DEFAULT.bits(),
            rawnic_proto::filter::BROADCAST.bits(),
            rawnic_proto::filter::PROMISCUOUS.bits() | rawnic_proto::filter::BROADCAST.bits(),
        ]);
        out.push(IoAction::Create { slot: spare });
        let mut open = super::profile::open_action(r, spare, a + 1, filter);
        if let IoAction::Open { a: to, .. } = &mut open {
            *to = a;
        }
        out.push(open);
        if r.chance(300) {
            out.push(IoAction::Close { slot: spare });
        }
    }
    if r.chance(250) {
        out.push(if r.chance(500) { IoAction::Close { slot } } else { IoAction::Abandon { slot } });
    }
    out
}

/// Late returns and slow cancel routines, from a stream of their own: in
/// one schedule in five (two in five of the `oid-storm` and `teardown`
/// ones) one to four spells of 20 to 200 ms where every `NdisOidRequest`
/// call on an adapter stalls at its end, after NDIS answered it
/// (`NicAction::StallOidReturns`: a close or an unbind must wait for the
/// call to leave, not only for its request); in one in five one to three
/// spells of 20 to 150 ms where every cancel routine stalls with the
/// cancel spin lock held (`NicAction::StallCancels`: a completion on
/// another thread must not complete an IRP whose cancel routine still
/// runs).
///
/// Drawn before the swarm (so it leaves out what the handles do for them,
/// `walk_into`) and placed on the NIC's list last (`place`): a spell lies
/// where `below(nic.len() + 1)` of its draw puts it then, as when the
/// spells were drawn and placed last in one go.
pub(super) struct Spell {
    /// The adapter whose OID calls return late; `None`: cancel routines.
    a: Option<usize>,
    /// The draw that places it on the NIC's list (and, as a fraction of
    /// 2^64, on the handles').
    at: u64,
    ms: u32,
}

pub(super) fn late_returns(r: &mut Rng, profile: Profile, n: usize) -> Vec<Spell> {
    let mut spells = Vec::new();
    let odds = if matches!(profile, Profile::OidStorm | Profile::Teardown) { 400 } else { 200 };
    if r.chance(odds) {
        for _ in 0..r.range(1, 4) {
            let a = r.below(n as u64) as usize;
            let at = r.next_u64();
            spells.push(Spell { a: Some(a), at, ms: r.range(20, 200) as u32 });
        }
    }
    if r.chance(200) {
        for _ in 0..r.range(1, 3) {
            let at = r.next_u64();
            spells.push(Spell { a: None, at, ms: r.range(20, 150) as u32 });
        }
    }
    spells
}

/// Puts the spells on the NIC's list, in the order they were drawn.
pub(super) fn place(spells: &[Spell], nic: &mut Vec<NicAction>) {
    for s in spells {
        // `Rng::below(nic.len() + 1)` of the draw `at`.
        let at = ((s.at as u128 * (nic.len() as u128 + 1)) >> 64) as usize;
        nic.insert(
            at,
            match s.a {
                Some(a) => NicAction::StallOidReturns { a, ms: s.ms },
                None => NicAction::StallCancels { ms: s.ms },
            },
        );
    }
}

/// A spell is only as good as the calls it catches: most handle threads
/// (seven in ten each) get, at about the same point of their lists as the
/// spell's on the NIC's, a wait (bounded) for a spell to be on, then what
/// walks into it: the OID requests, opens and closes of `requests` for a
/// late return; for a slow cancel, requests
/// left pending on the handle the thread opened last, then cancelled (the
/// thread's own `IoCancelIrp`, a `CancelIoEx`, or a close), while frames
/// may complete them.
pub(super) fn walk_into(r: &mut Rng, spells: &[Spell], handles: &mut [Vec<IoAction>]) {
    for s in spells {
        let per_mille = ((s.at as u128 * 1000) >> 64) as usize;
        for list in handles.iter_mut() {
            if !r.chance(700) {
                continue;
            }
            let k = list.len() * per_mille / 1000;
            let mut acts = vec![IoAction::AwaitSpell { wait_ms: r.range(50, 400) as u32 }];
            acts.extend(match s.a {
                Some(a) => requests(r, list, k, a),
                None => cancelled(r, list, k),
            });
            list.splice(k..k, acts);
        }
    }
}

/// The slot a thread's `list` opened last before point `k`.
pub(super) fn last_open(list: &[IoAction], k: usize) -> Option<u8> {
    list[..k].iter().rev().find_map(|x| match x {
        IoAction::Open { slot, .. } => Some(*slot),
        _ => None,
    })
}

/// Requests left pending on the handle a thread opened last before point
/// `k` of its `list`, then cancelled (nothing where it opened none).
fn cancelled(r: &mut Rng, list: &[IoAction], k: usize) -> Vec<IoAction> {
    let Some(slot) = last_open(list, k) else { return Vec::new() };
    let mut out: Vec<IoAction> =
        (0..r.range(1, 4)).map(|_| IoAction::ReadPending { slot, len: *r.pick(&[64u32, 2048, 65536]) }).collect();
    if r.chance(500) {
        out.push(IoAction::WaitEvent { slot, wait_ms: r.range(0, 30) as u32 });
    }
    out.push(match r.below(10) {
        0..=5 => IoAction::CancelAll { slot },
        6..=8 => IoAction::CancelIo { slot },
        _ => IoAction::Close { slot },
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, generate};
    use crate::schedule::*;

    #[test]
    fn some_schedules_stall_oid_returns_and_cancel_routines() {
        let (mut returns, mut cancels, mut spelled, mut awaited) = (0, 0, 0, 0);
        for seed in 1..300 {
            let s = generate(seed, GenOptions::plain(Mode::Det));
            let spells = s
                .nic
                .iter()
                .filter(|a| matches!(a, NicAction::StallOidReturns { .. } | NicAction::StallCancels { .. }));
            let waits = s.handles.iter().flatten().filter(|a| matches!(a, IoAction::AwaitSpell { .. })).count();
            spelled += usize::from(spells.count() > 0);
            awaited += usize::from(waits > 0);
            for a in &s.nic {
                match a {
                    NicAction::StallOidReturns { ms, .. } => {
                        assert!((20..=200).contains(ms), "seed {seed}: {ms} ms");
                        returns += 1;
                    }
                    NicAction::StallCancels { .. } => cancels += 1,
                    _ => {}
                }
            }
        }
        assert!(returns > 40 && cancels > 30, "{returns} {cancels}");
        // Handle threads wait for the spells (each thread seven times in
        // ten), and only where there are spells.
        assert!(awaited <= spelled && awaited * 10 > spelled * 8, "{awaited} of {spelled}");
    }

    #[test]
    fn some_schedules_stall_oid_calls_while_pnp_events_come() {
        let mut with = 0;
        for seed in 1..200 {
            let s = generate(seed, GenOptions::plain(Mode::Det));
            let stalls = s.nic.iter().filter(|a| matches!(a, NicAction::StallOidCalls { .. })).count();
            let events = s.pnp.iter().filter(|a| matches!(a, PnpAction::InOidCall { .. })).count();
            // A swarm may thin either list; without one they pair up.
            assert_eq!(stalls, events, "seed {seed}");
            with += usize::from(stalls > 0);
        }
        assert!((25..90).contains(&with), "{with} of 199");
    }
}
