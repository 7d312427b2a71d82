//! The profiles: what a schedule concentrates on, and the PnP, NIC and
//! handle actions each one draws.

use super::*;

/// What a schedule concentrates on. A quarter of the seeds mix every kind
/// of action evenly; the others stress one way drivers break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Everything, evenly.
    Mixed,
    /// Threads send in loops while the binding pauses and restarts: a send
    /// must never reach NDIS outside Running.
    SendStorm,
    /// Large frames loop back to handles that rarely read (so the driver
    /// retains them) while the binding pauses and restarts, half the
    /// miniports have few receive buffers (and say when they run low), and
    /// the handles close and open again mid-storm.
    RetainStorm,
    /// Unbinds, binds and power changes with reads, event waits and OIDs
    /// pending, handles closed and abandoned: lifetimes.
    Teardown,
    /// OIDs that pend and get held, cancelled and outlived by unbinds.
    OidStorm,
    /// Handles that open with different packet filters, close and open
    /// again on several threads at once, while the binding pauses and
    /// restarts and the miniport holds OIDs, and end open: the adapter
    /// must end with the union of their filters (the packet-filter
    /// oracle). Named only (`--profile filter-storm`), never drawn, so
    /// every seed keeps the schedule it had.
    FilterStorm,
    /// Receive bursts of every shape (`shapes.rs`, nearly all of them
    /// shaped) to handles with different packet filters and EtherType
    /// lists that read them back, while the binding pauses, restarts and
    /// changes power: the received-frames oracle (`run/received.rs`).
    /// Named only, like `FilterStorm`.
    RxStorm,
    /// A scene (`scenes.rs`): the driver's own multicast set of the union
    /// and a handle's set after it, completed the last first. Named only.
    UnionRace,
    /// A scene (`scenes.rs`): a handle closed and one opened in D3 on a
    /// `pause-on-suspend=off` adapter, then D0 without a restart. Named
    /// only.
    D0NoRestart,
    /// A scene (`scenes.rs`): handles open, join, close and ask on one
    /// adapter with the driver's next pool allocations refused before
    /// each, so the packet-filter and multicast sets their changes make
    /// (and the retries of those not sent) run short of memory. Named
    /// only.
    FilterShortage,
    /// Every handle thread a ring user with a long program (`rings.rs`'s
    /// `storm`), their adapters flooded, pauses, restarts and other PnP
    /// events among the bursts: the ring receive path's full rx rings,
    /// fill entries that name no frame, cut frames and scribbled indices,
    /// and kicks that meet a pause. Named only.
    RingStorm,
    /// Scale (`crowd.rs`): 6 to 16 adapters (loopbacks, nulls and pairs),
    /// 5 to 10 handle threads that each open handles on several of them
    /// over their lives, mixed I/O, a PnP stream that pauses, restarts,
    /// rebinds or powers down every adapter, and receive bursts on every
    /// one. Named only.
    Crowd,
}

impl Profile {
    /// The profiles a seed draws from.
    pub const ALL: [Profile; 5] =
        [Profile::Mixed, Profile::SendStorm, Profile::RetainStorm, Profile::Teardown, Profile::OidStorm];
    /// The profiles `--profile` takes: the drawn ones, and those only named.
    pub const NAMED: [Profile; 12] = [
        Profile::Mixed,
        Profile::SendStorm,
        Profile::RetainStorm,
        Profile::Teardown,
        Profile::OidStorm,
        Profile::FilterStorm,
        Profile::RxStorm,
        Profile::UnionRace,
        Profile::D0NoRestart,
        Profile::FilterShortage,
        Profile::RingStorm,
        Profile::Crowd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Mixed => "mixed",
            Profile::SendStorm => "send-storm",
            Profile::RetainStorm => "retain-storm",
            Profile::Teardown => "teardown",
            Profile::OidStorm => "oid-storm",
            Profile::FilterStorm => "filter-storm",
            Profile::RxStorm => "rx-storm",
            Profile::UnionRace => "union-race",
            Profile::D0NoRestart => "d0-no-restart",
            Profile::FilterShortage => "filter-shortage",
            Profile::RingStorm => "ring-storm",
            Profile::Crowd => "crowd",
        }
    }

    /// Whether the whole schedule is a scene of `scenes.rs` (none of the
    /// other draws and passes apply).
    pub fn is_scene(self) -> bool {
        matches!(self, Profile::UnionRace | Profile::D0NoRestart | Profile::FilterShortage)
    }

    pub fn parse(s: &str) -> Option<Profile> {
        Profile::NAMED.into_iter().find(|p| p.name() == s)
    }
}

pub(super) fn open_action(r: &mut Rng, slot: u8, n: usize, filter: u32) -> IoAction {
    plain_open(slot, r.below(n as u64) as usize, filter)
}

/// An OPEN of adapter `a` with `filter` and nothing else asked for (no
/// EtherTypes, default queue, whole frames, strict off).
pub(super) fn plain_open(slot: u8, a: usize, filter: u32) -> IoAction {
    IoAction::Open {
        slot,
        a,
        filter,
        ethertypes: Vec::new(),
        queue_frames: 0,
        queue_bytes: 0,
        snaplen: 0,
        local_sends: 0,
        strict: false,
    }
}

/// Unbind, bind again, and restart to Running.
pub(super) fn rebind(a: usize, out: &mut Vec<PnpAction>) {
    out.push(PnpAction::Unbind { a });
    out.push(PnpAction::Bind { a });
    out.push(PnpAction::Restart {
        a,
        mtu: None,
        link: None,
        filters: Vec::new(),
        general_revision: 2,
        short_params: false,
        supported: None,
    });
}

/// A PnP cycle that keeps the binding moving: pause, then restart.
pub(super) fn pause_restart(r: &mut Rng, n: usize, out: &mut Vec<PnpAction>) {
    let a = r.below(n as u64) as usize;
    pause_restart_of(r, a, out);
}

/// `pause_restart` of adapter `a`.
pub(super) fn pause_restart_of(r: &mut Rng, a: usize, out: &mut Vec<PnpAction>) {
    out.push(PnpAction::Pause { a });
    if r.chance(300) {
        out.push(PnpAction::Sleep { ms: r.range(0, 3) as u32 });
    }
    out.push(PnpAction::Restart {
        a,
        mtu: r.chance(250).then(|| *r.pick(&[576u32, 1500, 9000])),
        link: None,
        filters: Vec::new(),
        general_revision: 2,
        short_params: r.chance(200),
        supported: None,
    });
}

pub(super) fn profile_schedule(
    r: &mut Rng,
    p: Profile,
    n: usize,
) -> (Vec<PnpAction>, Vec<NicAction>, Vec<Vec<IoAction>>) {
    let threads = r.range(1, 3);
    match p {
        Profile::Mixed => {
            let pnp = (0..r.range(4, 40)).map(|_| pnp_action(r, n)).collect();
            let nic = (0..r.range(4, 40)).map(|_| nic_action(r, n)).collect();
            let handles = (0..threads)
                .map(|_| {
                    // Each thread starts with a handle open on some adapter,
                    // so most of its requests reach a binding.
                    let mut v =
                        vec![IoAction::Create { slot: 0 }, open_action(r, 0, n, rawnic_proto::filter::DEFAULT.bits())];
                    for _ in 0..r.range(8, 60) {
                        v.push(io_action(r, n));
                    }
                    v
                })
                .collect();
            (pnp, nic, handles)
        }
        Profile::SendStorm => {
            let pnp = pauses_among(r, n, (10, 40), 850);
            let nic = (0..r.range(4, 20))
                .map(|_| match r.below(3) {
                    0 => NicAction::Completion {
                        a: r.below(n as u64) as usize,
                        policy: *r.pick(&[
                            Policy::Immediate,
                            Policy::Batch(8),
                            Policy::Reorder(16),
                            Policy::Delay(1),
                            Policy::Scatter,
                        ]),
                    },
                    1 => NicAction::HoldSends {
                        a: r.below(n as u64) as usize,
                        ms: r.range(1, 40) as u32,
                        parts: r.range(1, 3) as u8,
                    },
                    _ => NicAction::Sleep { ms: r.range(1, 5) as u32 },
                })
                .collect();
            let handles = (0..threads)
                .map(|_| {
                    let filter = if r.chance(500) { 0 } else { rawnic_proto::filter::DEFAULT.bits() };
                    let mut v = vec![IoAction::Create { slot: 0 }, open_action(r, 0, n, filter)];
                    for _ in 0..r.range(40, 120) {
                        v.push(if r.chance(750) {
                            IoAction::SendBatch {
                                slot: 0,
                                frames: r.range(1, 64) as u16,
                                len: frame_len(r),
                                tci: None,
                                dst: dst(r),
                                oversize: false,
                            }
                        } else {
                            IoAction::Write { slot: 0, len: frame_len(r), dst: dst(r) }
                        });
                    }
                    v
                })
                .collect();
            (pnp, nic, handles)
        }
        Profile::RetainStorm => {
            let mut pnp = Vec::new();
            for _ in 0..r.range(10, 40) {
                pause_restart(r, n, &mut pnp);
            }
            // Receive bursts, and send completions held for a while: a
            // pause then pends for that long while the other end's frames
            // keep arriving (nothing may be retained meanwhile).
            let nic = (0..r.range(10, 30))
                .map(|_| {
                    if r.chance(300) {
                        return NicAction::HoldSends {
                            a: r.below(n as u64) as usize,
                            ms: r.range(5, 40) as u32,
                            parts: r.range(1, 3) as u8,
                        };
                    }
                    NicAction::Inject {
                        a: r.below(n as u64) as usize,
                        count: r.range(1, 64) as u16,
                        len: r.range(256, 1514) as u16,
                        resources: r.chance(100),
                        nbls: r.range(1, 8) as u8,
                        nbs: if r.chance(300) { r.range(2, 4) as u8 } else { 1 },
                        passive: false,
                        tci: None,
                        dst: Dst::Broadcast,
                        loopback: false,
                        coalesce: None,
                        layout: None,
                        shape: None,
                        inline: None,
                    }
                })
                .collect();
            let handles = (0..threads)
                .map(|_| {
                    let mut v =
                        vec![IoAction::Create { slot: 0 }, open_action(r, 0, n, rawnic_proto::filter::DEFAULT.bits())];
                    for _ in 0..r.range(30, 100) {
                        v.push(match r.below(10) {
                            0..=6 => IoAction::SendBatch {
                                slot: 0,
                                frames: r.range(1, 32) as u16,
                                len: r.range(300, 1514) as u16,
                                tci: None,
                                dst: Dst::Broadcast,
                                oversize: false,
                            },
                            7 => IoAction::Read { slot: 0, len: 65536, wait_ms: 0 },
                            8 => IoAction::Sleep { ms: r.range(0, 3) as u32 },
                            _ => IoAction::Stats { slot: 0 },
                        });
                    }
                    v
                })
                .collect();
            (pnp, nic, handles)
        }
        Profile::Teardown => {
            let mut pnp = Vec::new();
            for _ in 0..r.range(8, 30) {
                let a = r.below(n as u64) as usize;
                match r.below(6) {
                    0 | 1 => rebind(a, &mut pnp),
                    2 => pnp.push(PnpAction::Power { a, d3: r.chance(500) }),
                    _ => pause_restart(r, n, &mut pnp),
                }
            }
            let nic = (0..r.range(4, 20)).map(|_| nic_action(r, n)).collect();
            let handles = (0..threads)
                .map(|_| {
                    let mut v = Vec::new();
                    for _ in 0..r.range(20, 60) {
                        let slot = r.below(4) as u8;
                        v.push(match r.below(12) {
                            0 => IoAction::Create { slot },
                            1 | 2 => {
                                let filter = if r.chance(300) {
                                    rawnic_proto::filter::PROMISCUOUS.bits()
                                } else {
                                    rawnic_proto::filter::DEFAULT.bits()
                                };
                                open_action(r, slot, n, filter)
                            }
                            3 => IoAction::ReadPending { slot, len: 65536 },
                            4 => IoAction::WaitEvent { slot, wait_ms: r.range(0, 20) as u32 },
                            5 => IoAction::Oid {
                                slot,
                                set: false,
                                oid: *r.pick(QUERY_OIDS),
                                len: 256,
                                wait_ms: r.range(0, 20) as u32,
                                groups: None,
                            },
                            6 => IoAction::Close { slot },
                            7 => IoAction::Abandon { slot },
                            8 => IoAction::CancelAll { slot },
                            9 => IoAction::SendBatch {
                                slot,
                                frames: r.range(1, 16) as u16,
                                len: frame_len(r),
                                tci: None,
                                dst: dst(r),
                                oversize: false,
                            },
                            10 => IoAction::Read { slot, len: 2048, wait_ms: r.range(0, 10) as u32 },
                            _ => IoAction::Sleep { ms: r.range(0, 5) as u32 },
                        });
                    }
                    v
                })
                .collect();
            (pnp, nic, handles)
        }
        Profile::OidStorm => {
            let mut pnp = Vec::new();
            for _ in 0..r.range(6, 24) {
                let a = r.below(n as u64) as usize;
                match r.below(4) {
                    0 => rebind(a, &mut pnp),
                    _ => pause_restart(r, n, &mut pnp),
                }
            }
            let nic = (0..r.range(6, 24))
                .map(|_| match r.below(3) {
                    0 | 1 => NicAction::hold_oids(r.below(n as u64) as usize, r.range(1, 80) as u32),
                    _ => NicAction::Sleep { ms: r.range(1, 10) as u32 },
                })
                .collect();
            let handles = (0..threads)
                .map(|_| {
                    let mut v =
                        vec![IoAction::Create { slot: 0 }, open_action(r, 0, n, rawnic_proto::filter::DEFAULT.bits())];
                    for _ in 0..r.range(20, 80) {
                        let slot = r.below(2) as u8;
                        v.push(match r.below(10) {
                            0..=4 => {
                                let set = r.chance(300);
                                let oid = if set { *r.pick(SET_OIDS) } else { *r.pick(QUERY_OIDS) };
                                IoAction::Oid {
                                    slot,
                                    set,
                                    oid,
                                    len: *r.pick(&[0u16, 4, 6, 256]),
                                    wait_ms: r.range(0, 30) as u32,
                                    groups: None,
                                }
                            }
                            5 => IoAction::CancelAll { slot },
                            6 => IoAction::Create { slot },
                            7 => open_action(r, slot, n, rawnic_proto::filter::DEFAULT.bits()),
                            8 => IoAction::Close { slot },
                            _ => IoAction::Abandon { slot },
                        });
                    }
                    v
                })
                .collect();
            (pnp, nic, handles)
        }
        Profile::FilterStorm => {
            let mut pnp = Vec::new();
            for _ in 0..r.range(0, 4) {
                pause_restart(r, n, &mut pnp);
            }
            let nic = (0..r.range(0, 8))
                .map(|_| match r.below(3) {
                    0 => NicAction::hold_oids(r.below(n as u64) as usize, r.range(1, 10) as u32),
                    _ => NicAction::Sleep { ms: r.range(0, 3) as u32 },
                })
                .collect();
            (pnp, nic, filter_storm_handles(r, n))
        }
        Profile::RxStorm => rx_storm(r, n, threads),
        Profile::RingStorm => ring_storm(r, n, threads),
        // (`threads` drawn and not used: its own count, 5 to 10.)
        Profile::Crowd => super::crowd::schedule(r, n),
        // Made whole by `scenes::schedule`.
        Profile::UnionRace | Profile::D0NoRestart | Profile::FilterShortage => (Vec::new(), Vec::new(), Vec::new()),
    }
}

/// `Profile::RxStorm`: bursts (a few PnP and miniport actions among them)
/// to handles that read, with filters and EtherType lists of their own,
/// and close and open again now and then.
fn rx_storm(r: &mut Rng, n: usize, threads: u64) -> (Vec<PnpAction>, Vec<NicAction>, Vec<Vec<IoAction>>) {
    let pnp = pauses_among(r, n, (2, 16), 600);
    let nic = bursts_among(r, n, (20, 60), 800);
    let open = |r: &mut Rng| {
        let filter = some_filter(r);
        let mut o = open_action(r, 0, n, filter);
        if let IoAction::Open { ethertypes, snaplen, .. } = &mut o {
            // 0x8100: 802.1Q tagged frames, whether the NIC stripped the
            // tag (the NBL's info) or it is inline.
            *ethertypes = match r.below(5) {
                0 => vec![0x88B5],
                1 => vec![0x0800],
                2 => vec![0x8100],
                _ => Vec::new(),
            };
            *snaplen = if r.chance(150) { r.range(14, 200) as u32 } else { 0 };
        }
        o
    };
    let handles = (0..threads)
        .map(|_| {
            let mut v = vec![IoAction::Create { slot: 0 }, open(r)];
            for _ in 0..r.range(30, 100) {
                match r.below(20) {
                    0..=11 => v.push(IoAction::Read {
                        slot: 0,
                        len: *r.pick(&[2048u32, 65536]),
                        wait_ms: r.range(0, 20) as u32,
                    }),
                    12 | 13 => v.push(IoAction::ReadPending { slot: 0, len: 65536 }),
                    14 => v.push(IoAction::Stats { slot: 0 }),
                    15 => {
                        v.push(IoAction::Close { slot: 0 });
                        v.push(IoAction::Create { slot: 0 });
                        v.push(open(r));
                    }
                    _ => v.push(IoAction::Sleep { ms: r.range(0, 5) as u32 }),
                }
            }
            v
        })
        .collect();
    (pnp, nic, handles)
}

/// `Profile::RingStorm`'s own actions: PnP events (pauses and restarts
/// most), a few miniport actions and bursts, and one to three handle
/// threads that only create a handle and now and then ask for its
/// statistics; `rings.rs` weaves their ring programs in and adds the
/// flood.
fn ring_storm(r: &mut Rng, n: usize, threads: u64) -> (Vec<PnpAction>, Vec<NicAction>, Vec<Vec<IoAction>>) {
    let pnp = pauses_among(r, n, (2, 14), 650);
    let nic = bursts_among(r, n, (2, 12), 400);
    let handles = (0..threads)
        .map(|_| {
            let mut v = vec![IoAction::Create { slot: 0 }];
            for _ in 0..r.range(0, 6) {
                v.push(if r.chance(500) {
                    IoAction::Stats { slot: 0 }
                } else {
                    IoAction::Sleep { ms: r.range(0, 4) as u32 }
                });
            }
            v
        })
        .collect();
    (pnp, nic, handles)
}

/// NIC actions, as many as `count` draws (`Rng::range`): each a receive
/// burst on any adapter `bursts` times in 1000, else any action.
fn bursts_among(r: &mut Rng, n: usize, count: (u64, u64), bursts: u32) -> Vec<NicAction> {
    (0..r.range(count.0, count.1))
        .map(|_| {
            if r.chance(bursts) {
                let a = r.below(n as u64) as usize;
                inject_action(r, a, false)
            } else {
                nic_action(r, n)
            }
        })
        .collect()
}

/// A packet filter of one to three of the bits a handle may ask for.
fn some_filter(r: &mut Rng) -> u32 {
    use rawnic_proto::filter as pf;
    let bits = [pf::DIRECTED, pf::MULTICAST, pf::ALL_MULTICAST, pf::BROADCAST, pf::PROMISCUOUS];
    (0..r.range(1, 3)).fold(0, |f, _| f | r.pick(&bits).bits())
}

/// `Profile::FilterStorm`'s handle threads: two to four, each opening and
/// closing a handle with a filter of its own a few times, and ending with
/// it open. (Those that end last change the filter at about the same time:
/// a set of an older union must not be the one the adapter keeps.)
fn filter_storm_handles(r: &mut Rng, n: usize) -> Vec<Vec<IoAction>> {
    (0..r.range(2, 4))
        .map(|_| {
            let mut v = vec![IoAction::Create { slot: 0 }];
            for _ in 0..r.range(2, 12) {
                let f = some_filter(r);
                v.push(open_action(r, 0, n, f));
                if r.chance(300) {
                    v.push(IoAction::Sleep { ms: r.range(0, 2) as u32 });
                }
                v.push(if r.chance(200) { IoAction::Abandon { slot: 0 } } else { IoAction::Close { slot: 0 } });
                v.push(IoAction::Create { slot: 0 });
            }
            let f = some_filter(r);
            v.push(open_action(r, 0, n, f));
            v
        })
        .collect()
}

/// A retain storm's handles close (or their process dies) and open again
/// one to three times each, mid-storm: a closing handle's retained frames
/// must go back with it, whatever indication comes meanwhile.
pub(super) fn reopen_while_retaining(r: &mut Rng, handles: &mut [Vec<IoAction>], n: usize) {
    for h in handles.iter_mut() {
        for _ in 0..r.range(1, 3) {
            if h.len() < 3 {
                break;
            }
            let at = r.range(2, h.len() as u64 - 1) as usize;
            let close = if r.chance(250) { IoAction::Abandon { slot: 0 } } else { IoAction::Close { slot: 0 } };
            let open = open_action(r, 0, n, rawnic_proto::filter::DEFAULT.bits());
            h.splice(at..at, [close, IoAction::Create { slot: 0 }, open]);
        }
    }
}

/// PnP actions, as many as `count` draws (`Rng::range`): each a pause and
/// a restart (`pause_restart`) `pauses` times in 1000, else any action.
fn pauses_among(r: &mut Rng, n: usize, count: (u64, u64), pauses: u32) -> Vec<PnpAction> {
    let mut pnp = Vec::new();
    for _ in 0..r.range(count.0, count.1) {
        if r.chance(pauses) {
            pause_restart(r, n, &mut pnp);
        } else {
            pnp.push(pnp_action(r, n));
        }
    }
    pnp
}
