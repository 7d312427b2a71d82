//! The rarer things Windows allows that a schedule draws on top of its
//! actions, each from a random stream of its own (so a seed's other choices
//! stay what they were): runts, closes while other threads' requests are in
//! flight, `CancelIoEx` (alone, or racing a request), adapters bound only
//! after the handles began, opens, closes and OIDs completed inside the
//! call, miniports that fail sends and OIDs or cannot be opened, odd
//! status indications, and the PnP events besides pause, restart and
//! power.

use crate::Profile;
use crate::schedule::*;
use ndis_sys::*;
use ndisim::rng::Rng;

/// One receive burst in thirty is of runts, 1 to 25 bytes (a miniport
/// that passes them, or another protocol's short send looped back): shorter
/// than an Ethernet header, or than a schedule frame's marker.
pub(super) fn runts(r: &mut Rng, nic: &mut [NicAction]) {
    for act in nic.iter_mut() {
        if let NicAction::Inject { len, coalesce, layout, .. } = act {
            if coalesce.is_none() && r.chance(33) {
                *len = r.range(1, 25) as u16;
                *layout = None;
            }
        }
    }
}

/// A tenth of the closes come while other threads have requests in flight
/// on the handle (past the handle check): those reach the driver after its
/// cleanup, as Windows sends them.
pub(super) fn racing_closes(r: &mut Rng, handles: &mut [Vec<IoAction>], n: usize) {
    for act in handles.iter_mut().flatten() {
        let (slot, abandon) = match act {
            IoAction::Close { slot } => (*slot, false),
            IoAction::Abandon { slot } => (*slot, true),
            _ => continue,
        };
        if !r.chance(100) {
            continue;
        }
        let late = (0..r.range(1, 4))
            .map(|_| match r.below(11) {
                0 => Late::Read,
                1 => Late::WaitEvent,
                2 => Late::WaitBinds,
                3 => Late::Oid {
                    set: r.chance(500),
                    oid: *r.pick(&[
                        OID_GEN_CURRENT_PACKET_FILTER,
                        OID_GEN_MAXIMUM_FRAME_SIZE,
                        OID_802_3_CURRENT_ADDRESS,
                    ]),
                },
                4 => Late::Stats,
                5 => Late::Write { len: r.range(60, 1514) as u16 },
                6 => Late::SendBatch { frames: r.range(1, 8) as u16 },
                7 => Late::Open { a: r.below(n as u64) as usize },
                8 => Late::RingWait,
                9 => Late::RingKick,
                _ => Late::RingDetach,
            })
            .collect();
        *act = IoAction::CloseRacing { slot, abandon, late };
    }
}

/// Two in five of the cancels are `CancelIoEx` on the handle: on a shared
/// handle they reach the other threads' requests too, some still in the
/// driver's dispatch routine.
pub(super) fn cancel_ios(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        if let IoAction::CancelAll { slot } = act {
            if r.chance(400) {
                *act = IoAction::CancelIo { slot: *slot };
            } else if r.chance(300) {
                // A request racing its own cancel: without it, a cancel
                // landed inside a dispatch routine about once in 20
                // schedules.
                let request = match r.below(6) {
                    0 | 1 => Late::Read,
                    2 => Late::WaitEvent,
                    3 => Late::WaitBinds,
                    4 => Late::Oid { set: false, oid: OID_GEN_MAXIMUM_FRAME_SIZE },
                    _ => Late::RingWait,
                };
                *act = IoAction::RaceCancel { slot: *slot, request, first: false };
            }
        }
    }
}

/// Half the requests racing their cancel get it first: after the I/O
/// manager listed the IRP, before the driver's dispatch routine runs (a
/// stream of its own, so the rest of a seed's schedule is what it was).
/// The two threads of a race almost never land there (in 120 schedules
/// of every profile, no request the driver queues met a cancel before
/// its cancel routine was set).
/// A fifth of the cancels of every request of a slot that are left
/// become such a request too, of a kind the driver queues.
pub(super) fn cancels_first(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        match act {
            IoAction::RaceCancel { first, .. } => *first = r.chance(500),
            IoAction::CancelAll { slot } if r.chance(200) => {
                let request = match r.below(4) {
                    0 => Late::Read,
                    1 => Late::WaitEvent,
                    2 => Late::Oid { set: false, oid: OID_GEN_MAXIMUM_FRAME_SIZE },
                    _ => Late::RingWait,
                };
                *act = IoAction::RaceCancel { slot: *slot, request, first: true };
            }
            _ => {}
        }
    }
}

/// A fifth of the opens that took the default queue (4,096 frames, which
/// few schedules fill) ask for 1 to 32 frames instead, so full queues drop
/// frames on handles that live to the end and have their receive accounts
/// checked.
pub(super) fn small_queues(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        if let IoAction::Open { queue_frames, .. } = act {
            if *queue_frames == 0 && r.chance(200) {
                *queue_frames = r.range(1, 32) as u32;
            }
        }
    }
}

/// One batch in eight is of 65 to 300 frames: the driver sends a batch in
/// chunks of 64, each under one hold of the send gate, and a pause may
/// come between two (the main draws make at most 64, one chunk).
pub(super) fn long_batches(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        if let IoAction::SendBatch { frames, .. } = act {
            if r.chance(125) {
                *frames = r.range(65, 300) as u16;
            }
        }
    }
}

/// In about one schedule in seven the adapters are bound only once the
/// handles run, as at boot: the PnP actor's first action binds them all
/// (after a moment, sometimes), and some handle threads begin by waiting
/// for BindsComplete (the only time such a wait pends).
pub(super) fn late_binds(r: &mut Rng, pnp: &mut Vec<PnpAction>, handles: &mut [Vec<IoAction>]) -> bool {
    if !r.chance(140) {
        return false;
    }
    let mut first = vec![PnpAction::BindAll];
    if r.chance(500) {
        first.insert(0, PnpAction::Sleep { ms: r.range(1, 10) as u32 });
    }
    pnp.splice(0..0, first);
    for h in handles.iter_mut() {
        if r.chance(500) {
            let slot = r.below(SHARED_SLOTS as u64) as u8;
            h.splice(0..0, [IoAction::Create { slot }, IoAction::WaitBinds { slot, wait_ms: r.range(0, 10) as u32 }]);
        }
    }
    true
}

/// In half the late-binds schedules' threads that begin by waiting for
/// BindsComplete, the wait is followed by a second one cancelled before
/// its dispatch routine runs (`RaceCancel` with `first`): while the binds
/// are still to come the driver would queue it, and must find the cancel
/// as it sets the cancel routine. `cancels_first` draws the other kinds
/// of waits; this one pends only here.
pub(super) fn cancelled_binds_waits(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for h in handles.iter_mut() {
        if let [IoAction::Create { .. }, IoAction::WaitBinds { slot, .. }, ..] = h[..] {
            if r.chance(500) {
                h.insert(2, IoAction::RaceCancel { slot, request: Late::WaitBinds, first: true });
            }
        }
    }
}

/// A quarter of the good ring attaches are followed by a RING_WAIT
/// cancelled before its dispatch routine runs: the rings just attached
/// hold nothing, so the driver would queue the wait, and must find the
/// cancel as it sets the cancel routine (`cancels_first`'s ring waits
/// mostly find no rings, or frames waiting).
pub(super) fn cancelled_ring_waits(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for h in handles.iter_mut() {
        let mut i = 0;
        while i < h.len() {
            if let IoAction::Ring { slot, op: RingOp::Attach { damage: AttachDamage::None, .. } } = h[i] {
                if r.chance(250) {
                    h.insert(i + 1, IoAction::RaceCancel { slot, request: Late::RingWait, first: true });
                    i += 1;
                }
            }
            i += 1;
        }
    }
}

/// A third of the adapters whose opens, closes or OIDs pend complete them
/// inside the call instead (`open=inline`, `close=inline`, `oid=inline`):
/// the driver's completion runs on its own thread, nested in the
/// `NdisOpenAdapterEx`, `NdisCloseAdapterEx` or `NdisOidRequest` call,
/// where a lock held across the call deadlocks.
pub(super) fn inline_completions(r: &mut Rng, specs: &mut [String]) {
    for s in specs.iter_mut() {
        for key in ["open", "close", "oid"] {
            let pending = format!("{key}=pending");
            if s.contains(&pending) && r.chance(333) {
                *s = s.replace(&pending, &format!("{key}=inline"));
            }
        }
    }
}

/// OIDs a miniport may fail: those rawnic sends on its own (the packet
/// filter, at a restart) and those users ask for.
const REFUSABLE: &[u32] = &[
    OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_LINK_STATE,
    OID_GEN_VENDOR_DESCRIPTION,
    OID_GEN_RECEIVE_SCALE_CAPABILITIES,
    OID_802_3_CURRENT_ADDRESS,
    OID_802_3_MULTICAST_LIST,
    OID_GEN_STATISTICS,
    OID_GEN_LINK_SPEED,
];

/// After about one NIC action in 30, a miniport fails one to three OIDs
/// for a while (a device in trouble, then well again); after about one in
/// 40, it indicates a status rawnic may not expect.
pub(super) fn miniport_events(r: &mut Rng, nic: &mut Vec<NicAction>, adapters: usize) {
    let mut out = Vec::with_capacity(nic.len() + nic.len() / 16);
    for act in nic.drain(..) {
        out.push(act);
        if r.chance(33) {
            let a = r.below(adapters.max(1) as u64) as usize;
            let oids = (0..r.range(1, 3)).map(|_| *r.pick(REFUSABLE)).collect();
            let ms = r.range(1, 60) as u32;
            // One in three is a shortage in the miniport, a few times.
            let busy = if r.chance(333) { r.range(1, 6) as u8 } else { 0 };
            out.push(NicAction::FailOids { a, oids, ms, busy });
        }
        if r.chance(25) {
            // A link state with a buffer too short, of garbage or too
            // long, or a code rawnic does not know.
            let code = *r.pick(&[
                NDIS_STATUS_LINK_STATE,
                NDIS_STATUS_LINK_STATE,
                NDIS_STATUS_MEDIA_CONNECT,
                NDIS_STATUS_MEDIA_DISCONNECT,
                NDIS_STATUS_INDICATION_REQUIRED,
                0x4001_7777,
            ]);
            let a = r.below(adapters.max(1) as u64) as usize;
            out.push(NicAction::Status { a, code, len: *r.pick(&[0u16, 8, 40, 400]), passive: r.chance(300) });
        }
    }
    *nic = out;
}

/// Windows in which a miniport fails every packet-filter set with
/// `NDIS_STATUS_FAILURE` (a device in trouble for 20 to 200 ms, then well
/// again), so a set blamed on no bit is told to the handles that miss
/// frames (`FILTER_FAILED`) and the filter owed is set once the device
/// recovers: one to three such windows in two filter storms in three,
/// one in a tenth of the other schedules. `miniport_events` fails the
/// filter too, but seldom while a set is on its way.
pub(super) fn failing_filters(r: &mut Rng, profile: Profile, nic: &mut Vec<NicAction>, adapters: usize) {
    let windows = match profile {
        Profile::FilterStorm if r.chance(667) => r.range(1, 3),
        Profile::FilterStorm => 0,
        _ if r.chance(100) => 1,
        _ => 0,
    };
    for _ in 0..windows {
        let a = r.below(adapters.max(1) as u64) as usize;
        let at = r.below(nic.len() as u64 + 1) as usize;
        let ms = r.range(20, 200) as u32;
        nic.insert(at, NicAction::FailOids { a, oids: vec![OID_GEN_CURRENT_PACKET_FILTER], ms, busy: 0 });
    }
}

/// After about one PnP action in 15, another event NDIS sends: remove
/// queries, reconfigure, bind lists, capabilities, ports, a power query;
/// reconfigure and bind lists also to the protocol (binding context NULL).
pub(super) fn other_pnp_events(r: &mut Rng, pnp: &mut Vec<PnpAction>, adapters: usize) {
    let mut out = Vec::with_capacity(pnp.len() + pnp.len() / 8);
    for act in pnp.drain(..) {
        // An uninstall stays last.
        let more = act != PnpAction::Uninstall && r.chance(66);
        out.push(act);
        if !more {
            continue;
        }
        let code = *r.pick(ndisim::OTHER_PNP_EVENTS);
        let global = (code == NetEventReconfigure || code == NetEventBindList) && r.chance(500);
        let a = (!global).then(|| r.below(adapters.max(1) as u64) as usize);
        out.push(PnpAction::Event { a, code, len: *r.pick(&[0u16, 4, 16, 64]) });
    }
    *pnp = out;
}

/// One adapter in eight fails one to three OIDs with
/// `NDIS_STATUS_FAILURE`, one in eight fails sends (1, 10 or 50 in 100,
/// with failure statuses, and those racing a pause with
/// `NDIS_STATUS_PAUSED`), one in eight indicates a frame from inside
/// `NdisReturnNetBufferLists` after 1, 5 or 10 in 10 returns, one in ten
/// ignores half or all of the OID cancels (a close and an unbind then wait
/// for the answers), one in five has few receive buffers (8 to 24: it
/// drops frames when they are out, and says it is low), one in eight
/// keeps its bindings running through a power change (no pause on
/// suspend, no restart at D0), and one in thirty cannot be opened at all.
pub(super) fn refusing_miniports(r: &mut Rng, specs: &mut [String]) {
    for s in specs.iter_mut() {
        let has_buffers = s.contains("rx-buffers=");
        let mut add = |opt: String| super::add_option(s, &opt);
        if r.chance(125) {
            let oids: Vec<String> = (0..r.range(1, 3)).map(|_| format!("{:#x}", r.pick(REFUSABLE))).collect();
            add(format!("oid-fail={}", oids.join("+")));
        }
        if r.chance(33) {
            add("open=fail".into());
        }
        if r.chance(125) {
            add(format!("send-fail={}", r.pick(&[10u32, 100, 500])));
        }
        if r.chance(125) {
            add(format!("reindicate={}", r.pick(&[100u32, 500, 1000])));
        }
        if r.chance(100) {
            add(format!("cancel-ignore={}", r.pick(&[500u32, 1000])));
        }
        if r.chance(200) {
            let n = r.pick(&[8u32, 12, 16, 24]);
            // (A retain storm may have drawn its own.)
            if !has_buffers {
                add(format!("rx-buffers={n}"));
            }
        }
        // NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND: the binding stays
        // Running through a power change, with no restart at D0.
        if r.chance(125) {
            add("pause-on-suspend=off".into());
        }
    }
}

/// In one schedule in six every adapter starts at MTU 9000 and its
/// restarts take it to 1500 and back in turn, so sends checked against
/// one MTU meet a restart to the other (a frame of 1515 to 1536 bytes fits
/// MTU 9000 and the rounded send buffers of MTU 1500, not MTU 1500 itself).
pub(super) fn mtu_flaps(r: &mut Rng, specs: &mut [String], pnp: &mut [PnpAction]) {
    if !r.chance(166) {
        return;
    }
    for s in specs.iter_mut() {
        super::add_option(s, "mtu=9000");
    }
    let mut shrink = std::collections::HashMap::new();
    for act in pnp.iter_mut() {
        if let PnpAction::Restart { a, mtu, .. } = act {
            let next = shrink.entry(*a).or_insert(true);
            *mtu = Some(if *next { 1500 } else { 9000 });
            *next = !*next;
        }
    }
}

/// Per mille of the adapter specs that get `bind-status=1..6` unless
/// `--bind-status` says otherwise.
pub const BIND_STATUS_PER_MILLE: u32 = 333;

/// `per_mille` of the adapter specs get `bind-status=1..6`:
/// their miniport indicates link changes, and a status code no protocol
/// knows with garbage, to each binding from its open's success, racing
/// the bind (the adapter's link state flips with each change, and the
/// driver must end up knowing it: `run/links.rs`). Drawn from a stream of
/// its own, last, so a seed's other choices stay what they were.
pub(super) fn bind_statuses(r: &mut Rng, per_mille: u32, specs: &mut [String]) {
    for s in specs.iter_mut() {
        if r.chance(per_mille) {
            let n = r.range(1, 6);
            s.push(if s.contains('@') { ',' } else { '@' });
            s.push_str(&format!("bind-status={n}"));
        }
    }
}

/// For `per_mille` of the schedules (0: every seed's schedule is what it
/// was before), three in four of the adapters whose miniport indicates
/// status during binds (`bind-status=`) answer a query that pends from
/// their state when it arrives and complete it later, as a real miniport
/// may (`Schedule::answer_on_arrival`): a link indication made meanwhile
/// is newer than the answer the driver gets, and must win
/// (`run/links.rs`). Those whose OIDs are not made to pend or complete
/// at once (`oid=`) get `oid=pending`, so their queries do pend. Drawn
/// from a stream of its own, last; returns the adapters' indices.
pub(super) fn answers_on_arrival(r: &mut Rng, per_mille: u32, specs: &mut [String]) -> Vec<usize> {
    let mut on = Vec::new();
    if per_mille == 0 || !r.chance(per_mille) {
        return on;
    }
    let mut a = 0;
    for s in specs.iter_mut() {
        let n = if s.starts_with("pair:") { 2 } else { 1 };
        if s.contains("bind-status=") && r.chance(750) {
            if !s.contains("oid=") {
                s.push_str(",oid=pending");
            }
            on.extend(a..a + n);
        }
        a += n;
    }
    on
}

/// What a restart may say the miniport supports from then on: all that
/// ndisim models again, or less (a filter module below that cannot do
/// promiscuous or all-multicast mode, or a NIC that lost its multicast
/// filter).
pub(super) const SUPPORTED_AFTER_RESTART: [u32; 4] = [0x2f, 0x0f, 0x0b, 0x2b];

/// About one restart in eight changes the packet filters the miniport
/// supports (`RestartSpec::supported_filters`): the driver must take in
/// the new set, narrow what it asks of the adapter, and widen it again,
/// and its handles must be told what they get (`run/accounts.rs` judges
/// against the adapter's filters of the moment). Drawn from a stream of
/// its own, last.
pub(super) fn supported_filters(r: &mut Rng, pnp: &mut [PnpAction]) {
    for act in pnp.iter_mut() {
        if let PnpAction::Restart { supported, .. } = act {
            if r.chance(125) {
                *supported = Some(*r.pick(&SUPPORTED_AFTER_RESTART));
            }
        }
    }
}

/// About one adapter in ten has a miniport that overstates its OID
/// answers (`oid-overstate=on`: 64 bytes more read or written than the
/// request's buffer holds); each reply must still say no more than the
/// buffer (`run/handles/replies.rs`). Drawn from a stream of its own, last.
pub(super) fn overstating_miniports(r: &mut Rng, specs: &mut [String]) {
    for s in specs.iter_mut() {
        if r.chance(100) {
            super::add_option(s, "oid-overstate=on");
        }
    }
}

/// About one read and one write in fifty ask for no bytes at all: the I/O
/// manager gives such a request no MDL, and the driver must refuse it
/// without looking for one (a mutant that read the missing MDL's byte
/// count passed every schedule before). Drawn from a stream of its own,
/// last.
pub(super) fn empty_io(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        match act {
            IoAction::Read { len, .. } if r.chance(20) => *len = 0,
            IoAction::Write { len, .. } if r.chance(20) => *len = 0,
            _ => {}
        }
    }
}

/// One send in sixteen (a write, or a batch's frames) is shorter than
/// Ethernet's 60 bytes (26 to 59: the smallest a schedule frame's header
/// and marker fit in): a protocol may send one, and the NIC pads it on the
/// wire. A driver that pads it itself, out of a buffer it did not clear,
/// sends whatever that buffer held (the Etherleak of old NIC drivers); a
/// twin run (`Schedule::twin`) sees that on the receiving side.
pub(super) fn short_sends(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for act in handles.iter_mut().flatten() {
        match act {
            IoAction::Write { len, .. } | IoAction::SendBatch { len, .. } if *len > 0 && r.chance(62) => {
                *len = r.range(26, 59) as u16;
            }
            _ => {}
        }
    }
}

/// How many schedules in 1000 run on an older Windows than 11 24H2 unless
/// `--old-ndis` says otherwise.
pub const OLD_NDIS_PER_MILLE: u32 = 250;

/// The NDIS versions of the Windows releases before 11 24H2 (6.89): 8,
/// 8.1, 10 from 1507 to 2004, Server 2022, 11 21H2 to 23H2.
const OLDER_NDIS: [(u8, u8); 15] = [
    (6, 30),
    (6, 40),
    (6, 50),
    (6, 51),
    (6, 60),
    (6, 70),
    (6, 80),
    (6, 81),
    (6, 82),
    (6, 83),
    (6, 84),
    (6, 85),
    (6, 86),
    (6, 87),
    (6, 88),
];

/// `per_mille` of the schedules run on a Windows older than 11 24H2: NDIS
/// refuses rawnic's 6.89 registration and rawnic registers as 6.30, a
/// protocol that does not take URO frames, so NDIS turns URO off on every
/// adapter as it binds, and each frame is walked as a 6.30 protocol's
/// (`uro_registered()` false, the path Windows 10 and 11 before 24H2
/// take). A miniport there indicates no URO unit: the schedule's become RSC
/// units of as many segments. Drawn from a stream of its own, last.
pub(super) fn older_ndis(r: &mut Rng, per_mille: u32, nic: &mut [NicAction]) -> Option<(u8, u8)> {
    if !r.chance(per_mille) {
        return None;
    }
    let version = *r.pick(&OLDER_NDIS);
    let rsc = |c: &mut Coalesced| {
        if let Coalesced::Uro { segs, .. } = *c {
            *c = Coalesced::Rsc { segs };
        }
    };
    for act in nic.iter_mut() {
        if let NicAction::Inject { coalesce, shape, .. } = act {
            coalesce.iter_mut().for_each(rsc);
            if let Some(sh) = shape {
                sh.coalesces.iter_mut().flatten().for_each(rsc);
            }
        }
    }
    Some(version)
}

/// What `boot` draws: the `Schedule` fields of the same names.
pub(super) struct Boot {
    pub binds: bool,
    pub open: bool,
    pub cpus: Option<u8>,
}

/// The boot of one schedule in six or so: NDIS binds the adapters from
/// inside `NdisRegisterProtocolDriver` (one in eight where they are not
/// bound late), a user opens the device while `DriverEntry` registers (one
/// in eight), and one in five runs on 3 or 4 emulated processors, so more
/// of the driver's DPC-level completions and work items run at once.
/// Drawn from a stream of its own, last.
pub(super) fn boot(r: &mut Rng, late_binds: bool) -> Boot {
    let binds = r.chance(125) && !late_binds;
    let open = r.chance(125);
    let cpus = r.chance(200).then(|| r.range(3, 4) as u8);
    Boot { binds, open, cpus }
}

/// One adapter in twelve that can be opened cannot the first time
/// (`open=fail-once`: `NDIS_STATUS_RESOURCES`, as a miniport short of
/// memory at boot): the bind fails, and the adapter is bound again only if
/// the driver asks NDIS to offer it again. Drawn from a stream of its own,
/// last.
pub(super) fn flaky_opens(r: &mut Rng, specs: &mut [String]) {
    for s in specs.iter_mut() {
        if r.chance(80) && !s.contains("open=fail") {
            super::add_option(s, "open=fail-once");
        }
    }
}

/// `--twin`'s default: one deterministic schedule in eight runs twice
/// (`Schedule::twin`).
pub const TWIN_PER_MILLE: u32 = 125;

/// Whether a deterministic schedule of `seed` runs twice, with other
/// garbage the second time (`Schedule::twin`), `o.twin` in 1000: a draw of
/// its own, so nothing else in the seed's schedule changes with it.
pub(super) fn twin(seed: u64, o: super::GenOptions) -> bool {
    o.mode == Mode::Det && o.twin > 0 && Rng::new(seed ^ 0x7477_696E_0000_0000).chance(o.twin)
}

/// `--points-after`'s default: a quarter of the schedules.
pub const POINTS_AFTER_PER_MILLE: u32 = 250;

/// Whether every export is a scheduling point after its body too in the
/// schedule of `seed` (`Schedule::points_after`), `o.points_after` in
/// 1000: a draw of its own.
pub(super) fn points_after(seed: u64, o: super::GenOptions) -> bool {
    o.points_after > 0 && Rng::new(seed ^ 0x6166_7465_7273_0000).chance(o.points_after)
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, generate};
    use crate::schedule::*;

    fn det() -> GenOptions {
        GenOptions { pct: 50, ..GenOptions::plain(Mode::Det) }
    }

    #[test]
    fn miniports_fail_oids_and_opens_other_pnp_events_come_and_pnp_comes_promptly_in_some_schedules() {
        let all: Vec<Schedule> = (0..400).map(|seed| generate(seed, det())).collect();
        let specs = || all.iter().flat_map(|s| s.adapters.iter());
        let failing = specs().filter(|a| a.contains("oid-fail=0x")).count();
        // (Not `open=fail-once`, an adapter opened the second time.)
        let unopenable = specs().filter(|a| a.split([',', '@']).any(|o| o == "open=fail")).count();
        let failing_sends = specs().filter(|a| a.contains("send-fail=")).count();
        assert!((40..200).contains(&failing_sends), "{failing_sends} adapters fail sends");
        let transient = all.iter().flat_map(|s| &s.nic).filter(|n| matches!(n, NicAction::FailOids { .. })).count();
        let busy =
            all.iter().flat_map(|s| &s.nic).filter(|n| matches!(n, NicAction::FailOids { busy: 1.., .. })).count();
        assert!(busy * 5 >= transient && busy * 2 <= transient, "{busy} of {transient} are shortages");
        let statuses = all.iter().flat_map(|s| &s.nic).filter(|n| matches!(n, NicAction::Status { .. })).count();
        assert!(statuses >= 50, "{statuses} odd status indications");
        let prompt = all.iter().filter(|s| s.prompt_pnp).count();
        let events: Vec<&PnpAction> = all
            .iter()
            .flat_map(|s| s.pnp.iter().chain(s.pnp_more.iter().flatten()))
            .filter(|p| matches!(p, PnpAction::Event { .. }))
            .collect();
        assert!(events.len() >= 100, "{} other PnP events", events.len());
        assert!(events.iter().any(|p| matches!(p, PnpAction::Event { a: None, .. })), "none to the protocol");
        let pct = all.iter().filter(|s| s.pct.is_some()).count();
        assert!((40..200).contains(&failing), "{failing} adapters fail OIDs");
        assert!((5..60).contains(&unopenable), "{unopenable} adapters cannot be opened");
        assert!(transient >= 100, "{transient} transient OID failures");
        assert!((150..250).contains(&prompt), "{prompt} schedules with prompt PnP");
        assert!((150..250).contains(&pct), "{pct} schedules by priorities");
        // Free-running schedules get prompt PnP only with jitter, and PCT never.
        let free = generate(3, GenOptions { mode: Mode::Free, ..det() });
        assert!(!free.prompt_pnp && free.pct.is_none());
    }

    #[test]
    fn in_some_schedules_every_restart_flips_the_mtu_between_9000_and_1500() {
        let flapping: Vec<Schedule> = (0..300)
            .map(|seed| generate(seed, det()))
            .filter(|s| {
                s.adapters.iter().all(|a| a.split(",bind-status=").next().is_some_and(|a| a.ends_with("mtu=9000")))
            })
            .collect();
        assert!((25..80).contains(&flapping.len()), "{} of 300", flapping.len());
        for s in &flapping {
            let mut last = std::collections::HashMap::new();
            for p in s.pnp.iter().chain(s.pnp_more.iter().flatten()) {
                if let PnpAction::Restart { a, mtu, .. } = p {
                    let m = mtu.expect("every restart sets the MTU");
                    assert!(m == 1500 || m == 9000, "seed {}: MTU {m}", s.seed);
                    assert_ne!(last.insert(*a, m), Some(m), "seed {}: two restarts to {m} in a row", s.seed);
                }
            }
        }
    }
}
