//! Generating a schedule from a seed.
//!
//! The mix leans towards what breaks drivers: pauses and restarts while
//! sends, receives and OIDs are in flight; unbinds with requests pending;
//! handles that close or die with reads and OIDs outstanding; completions
//! held, batched, reordered and delayed; receive bursts with and without
//! `NDIS_RECEIVE_FLAGS_RESOURCES`. Every hold is bounded in time, so a
//! schedule never waits on something only a later action would release.

use crate::schedule::*;
use ndis_sys::*;
use ndisim::rng::Rng;

mod crowd;
mod edges;
mod fail_nth;
mod joins;
mod knobs;
mod mutate;
mod open_unbind;
mod options;
mod parallel;
mod profile;
mod programs;
mod readers;
mod rings;
mod scenes;
mod shapes;
mod snaplens;
mod stalls;
mod swarm;
mod tags;
pub use edges::{BIND_STATUS_PER_MILLE, OLD_NDIS_PER_MILLE, POINTS_AFTER_PER_MILLE, TWIN_PER_MILLE};
use edges::{
    cancel_ios, cancelled_binds_waits, failing_filters, inline_completions, late_binds, long_batches, miniport_events,
    mtu_flaps, other_pnp_events, points_after, racing_closes, refusing_miniports, runts, small_queues, twin,
};
pub use fail_nth::{FAIL_NTH_EARLY, FAIL_NTH_SPAN, fail_nth, fail_nth_span};
pub use knobs::{KNOBS_PER_CENT, odds as knob_odds};
pub use mutate::apply as apply_edits;
pub use open_unbind::OPEN_UNBIND_PER_MILLE;
pub use options::GenOptions;
use parallel::{split_nic, split_pnp};
pub use profile::Profile;
use profile::{open_action, profile_schedule, reopen_while_retaining};
pub use programs::RANDOM_PROGRAMS_PER_MILLE;
pub use shapes::MIXED_BURSTS_PER_MILLE;
pub use snaplens::SNAPLENS_PER_MILLE;

/// The OIDs user requests use: answered, refused (not on the set allow
/// list), or unknown to the adapter.
const QUERY_OIDS: &[u32] = &[
    OID_GEN_LINK_SPEED,
    OID_GEN_VENDOR_DESCRIPTION,
    OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_STATISTICS,
    OID_GEN_LINK_STATE,
    OID_802_3_CURRENT_ADDRESS,
    OID_802_3_MULTICAST_LIST,
    OID_GEN_XMIT_OK,
    OID_GEN_SUPPORTED_LIST,
    0x00FF_FF01,
];
const SET_OIDS: &[u32] =
    &[OID_802_3_MULTICAST_LIST, OID_GEN_CURRENT_LOOKAHEAD, OID_GEN_LINK_PARAMETERS, OID_GEN_CURRENT_PACKET_FILTER];

/// Options of one adapter spec; `name` is given for single adapters (a
/// pair's names come from `pair:A,B`).
fn adapter_opts(r: &mut Rng, name: Option<&str>) -> String {
    let mut o: Vec<String> = name.map(|n| format!("name={n}")).into_iter().collect();
    if r.chance(300) {
        o.push(format!("oid={}", if r.chance(500) { "pending" } else { "sync" }));
    }
    if r.chance(250) {
        o.push("open=pending".into());
    }
    if r.chance(250) {
        o.push("close=pending".into());
    }
    if r.chance(200) {
        o.push("rss=on".into());
    }
    if r.chance(150) {
        o.push(format!("mtu={}", r.pick(&[68u32, 576, 1500, 4000, 9000])));
    }
    if r.chance(100) {
        o.push("link=down".into());
    }
    if r.chance(300) {
        o.push(format!("completion={}", r.pick(&["batch:4", "reorder:8", "delay:2", "batch:32"])));
    }
    if r.chance(150) {
        // Miniports that refuse promiscuous mode, all-multicast or both, or
        // do not offer them. Picked from sixteen in four runs of four
        // (index / 4 is the pick from the first four a seed made before
        // all-multicast alone was drawn): one in sixteen refuses only
        // all-multicast, in place of a quarter of the `filters=0xf` ones.
        const OPTS: [&str; 5] =
            ["refuse-filter=0x20", "refuse-filter=0x24", "filters=0xb", "filters=0xf", "refuse-filter=0x4"];
        let i = r.below(16) as usize;
        o.push(OPTS[if i == 15 { 4 } else { i / 4 }].to_string());
    }
    // Without 802.1Q the driver writes send tags into the frames.
    if r.chance(200) {
        o.push("vlan=off".into());
    }
    o.join(",")
}

/// The adapter specs of a schedule: 1 to 3 adapters or pairs, named `a0`,
/// `a1`, ... in the order ndisim numbers them (a crowd's are more:
/// `crowd::adapters`).
fn adapters(r: &mut Rng) -> Vec<String> {
    let mut v = Vec::new();
    let mut next = 0;
    for _ in 0..r.range(1, 3) {
        let kind = r.below(4);
        push_adapter(r, kind, &mut next, &mut v);
    }
    v
}

/// Adds an adapter spec of `kind` (0 or 1 a loopback, 2 a null, 3 a
/// pair), with drawn options, to `v`; `next` is the number of the next
/// adapter's name, moved past it.
fn push_adapter(r: &mut Rng, kind: u64, next: &mut usize, v: &mut Vec<String>) {
    match kind {
        0 | 1 => {
            v.push(format!("loopback@{}", adapter_opts(r, Some(&format!("a{next}")))));
            *next += 1;
        }
        2 => {
            v.push(format!("null@{}", adapter_opts(r, Some(&format!("a{next}")))));
            *next += 1;
        }
        _ => {
            let opts = adapter_opts(r, None);
            let spec = format!("pair:a{},a{}", next, *next + 1);
            v.push(if opts.is_empty() { spec } else { format!("{spec}@{opts}") });
            *next += 2;
        }
    }
}

/// How many adapters the specs make (a pair makes two).
pub fn adapter_count(specs: &[String]) -> usize {
    specs.iter().map(|s| if s.starts_with("pair:") { 2 } else { 1 }).sum()
}

fn dst(r: &mut Rng) -> Dst {
    match r.below(10) {
        0..=3 => Dst::Broadcast,
        4..=5 => Dst::Directed,
        6..=7 => Dst::Multicast,
        _ => Dst::Other,
    }
}

fn frame_len(r: &mut Rng) -> u16 {
    match r.below(7) {
        0 => 60,
        1 => r.range(60, 255) as u16,
        2 => r.range(256, 600) as u16,
        3 => 1514,
        4 => r.range(60, 1514) as u16,
        // Just past the largest frame of MTU 576 or 1500, but within the
        // send buffers of that MTU (rounded up): a frame checked against
        // a larger MTU that a restart then shrank still fits them.
        5 => *r.pick(&[591, 594, 640, 1515, 1518, 1530, 1536]),
        _ => 300,
    }
}

fn pnp_action(r: &mut Rng, n: usize) -> PnpAction {
    let a = r.below(n as u64) as usize;
    match r.below(100) {
        0..=29 => PnpAction::Pause { a },
        30..=59 => PnpAction::Restart {
            a,
            mtu: r.chance(300).then(|| *r.pick(&[68u32, 576, 1280, 1500, 1514, 4000, 9000])),
            link: r.chance(200).then(|| r.chance(600)),
            filters: (0..r.below(3)).map(|i| format!("filter{i}")).collect(),
            general_revision: if r.chance(200) { 1 } else { 2 },
            short_params: r.chance(300),
            supported: None,
        },
        60..=67 => PnpAction::Unbind { a },
        68..=75 => PnpAction::Bind { a },
        76..=85 => PnpAction::Link { a, up: r.chance(500) },
        86..=93 => PnpAction::Power { a, d3: r.chance(500) },
        _ => PnpAction::Sleep { ms: r.range(0, 20) as u32 },
    }
}

fn nic_action(r: &mut Rng, n: usize) -> NicAction {
    let a = r.below(n as u64) as usize;
    match r.below(100) {
        0..=11 => NicAction::HoldSends { a, ms: r.range(1, 150) as u32, parts: r.range(1, 3) as u8 },
        12..=19 => NicAction::hold_oids(a, r.range(1, 150) as u32),
        x @ 20..=79 => inject_action(r, a, x < 24),
        80..=92 => NicAction::Completion {
            a,
            policy: match r.below(5) {
                0 => Policy::Immediate,
                1 => Policy::Batch(r.range(2, 64) as u16),
                2 => Policy::Reorder(r.range(2, 64) as u16),
                3 => Policy::Scatter,
                _ => Policy::Delay(r.range(1, 10) as u16),
            },
        },
        _ => NicAction::Sleep { ms: r.range(0, 20) as u32 },
    }
}

/// A receive burst on `a`. One burst in twenty is a `long` indication
/// (up to 96 frames in up to 96 NBLs, or NBLs of up to 8 NET_BUFFERs), as
/// a miniport's DPC makes at line rate: longer than the driver's 32-frame
/// walk, so an NBL spans two of its chunks.
fn inject_action(r: &mut Rng, a: usize, long: bool) -> NicAction {
    NicAction::Inject {
        a,
        count: if long { r.range(33, 96) } else { r.range(1, 48) } as u16,
        len: frame_len(r),
        resources: r.chance(250),
        nbls: if long { r.range(9, 96) } else { r.range(1, 8) } as u8,
        nbs: match (r.chance(300), long) {
            (false, _) => 1,
            (true, true) => r.range(3, 8) as u8,
            (true, false) => r.range(2, 4) as u8,
        },
        passive: r.chance(150),
        tci: r.chance(150).then(|| r.below(0x10000) as u16),
        dst: dst(r),
        loopback: r.chance(100),
        coalesce: None,
        layout: None,
        shape: None,
        inline: None,
    }
}

/// In about a third of the schedules with two or more handle threads,
/// each thread's use of the slot it uses most (its creates, opens,
/// requests, cancels and closes) goes to a shared slot instead, so those
/// threads create, use and close one file object at once; sometimes a
/// second slot goes to the second shared one.
/// (Half the crowds: `crowd.rs`.)
fn share(r: &mut Rng, handles: &mut [Vec<IoAction>], profile: Profile) {
    let odds = if profile == Profile::Crowd { 500 } else { 350 };
    if handles.len() < 2 || !r.chance(odds) {
        return;
    }
    for list in handles.iter_mut() {
        // The slot the thread uses most becomes the shared one.
        let mut count = [0usize; SHARED_SLOTS as usize];
        for a in list.iter() {
            if let Some(c) = a.slot().and_then(|x| count.get_mut(x as usize)) {
                *c += 1;
            }
        }
        let most = (0..count.len()).max_by_key(|&k| count[k]).unwrap_or(0);
        let mut map = [None; SHARED_SLOTS as usize];
        map[most] = Some(SHARED_SLOTS);
        if r.chance(300) {
            let k = r.below(SHARED_SLOTS as u64) as usize;
            if map[k].is_none() {
                map[k] = Some(SHARED_SLOTS + 1);
            }
        }
        for act in list.iter_mut() {
            if let Some(slot) = act.slot_mut() {
                if let Some(Some(to)) = map.get(*slot as usize) {
                    *slot = *to;
                }
            }
        }
    }
}

fn io_action(r: &mut Rng, n: usize) -> IoAction {
    let slot = r.below(4) as u8;
    match r.below(100) {
        0..=7 => IoAction::Create { slot },
        8..=19 => {
            let filter = match r.below(6) {
                0 => 0,
                1 => rawnic_proto::filter::PROMISCUOUS.bits(),
                2 => rawnic_proto::filter::ALL.bits(),
                3 => rawnic_proto::filter::BROADCAST.bits(),
                _ => rawnic_proto::filter::DEFAULT.bits(),
            };
            let ethertypes = match r.below(4) {
                0 => vec![0x88B5],
                1 => vec![0x88B5, 0x0800],
                _ => Vec::new(),
            };
            IoAction::Open {
                slot,
                a: r.below(n as u64) as usize,
                filter,
                ethertypes,
                queue_frames: if r.chance(300) { r.range(1, 64) as u32 } else { 0 },
                queue_bytes: if r.chance(200) { rawnic_proto::MIN_QUEUE_BYTES } else { 0 },
                snaplen: if r.chance(150) { r.range(14, 200) as u32 } else { 0 },
                local_sends: if r.chance(300) { r.range(1, 2) as u8 } else { 0 },
                strict: r.chance(200),
            }
        }
        20..=34 => IoAction::SendBatch {
            slot,
            frames: r.range(1, 64) as u16,
            len: frame_len(r),
            tci: r.chance(150).then(|| r.below(0x10000) as u16),
            dst: dst(r),
            oversize: r.chance(30),
        },
        35..=41 => IoAction::Write { slot, len: frame_len(r), dst: dst(r) },
        42..=53 => IoAction::Read { slot, len: *r.pick(&[64u32, 2048, 16384, 65536]), wait_ms: r.range(0, 30) as u32 },
        54..=58 => IoAction::ReadPending { slot, len: *r.pick(&[2048u32, 65536]) },
        59..=63 => IoAction::WaitEvent { slot, wait_ms: r.range(0, 30) as u32 },
        64..=72 => {
            let set = r.chance(300);
            let oid = if set { *r.pick(SET_OIDS) } else { *r.pick(QUERY_OIDS) };
            IoAction::Oid {
                slot,
                set,
                oid,
                len: *r.pick(&[0u16, 4, 6, 12, 256, 1024]),
                wait_ms: r.range(0, 40) as u32,
                groups: None,
            }
        }
        73..=75 => IoAction::Stats { slot },
        76..=77 => IoAction::List { slot },
        78 => IoAction::Version { slot },
        79 => IoAction::WaitBinds { slot, wait_ms: r.range(0, 10) as u32 },
        80..=84 => IoAction::CancelAll { slot },
        85..=88 => IoAction::Close { slot },
        89..=91 => IoAction::Abandon { slot },
        92..=94 => {
            let code = if r.chance(500) {
                // A rawnic code with a wrong method or function.
                rawnic_proto::ctl_code(
                    rawnic_proto::FILE_DEVICE_RAWNIC,
                    0x800 + r.below(16) as u32,
                    r.below(4) as u32,
                    r.below(4) as u32,
                )
            } else {
                r.next_u64() as u32
            };
            let input = (0..r.below(64)).map(|_| r.next_u64() as u8).collect();
            IoAction::Garbage { slot, code, input, out_len: *r.pick(&[0u32, 3, 16, 4096]) }
        }
        _ => IoAction::Sleep { ms: r.range(0, 10) as u32 },
    }
}

/// The schedule of `seed`.
pub fn generate(seed: u64, o: GenOptions) -> Schedule {
    let mut r = Rng::new(seed);
    let mut specs = adapters(&mut r);
    // Drawn even when it is given, so a seed's other choices stay the same.
    let drawn = *r.pick(&Profile::ALL);
    let profile = o.profile.unwrap_or(drawn);
    if profile.is_scene() {
        return scenes::schedule(seed, &mut r, o, profile);
    }
    match profile {
        // Retention needs frames that NDIS indicates: what one end of a
        // pair sends, the other receives (a protocol's own sends never come
        // back to it).
        // Half the time sends complete late, so pauses pend and NDIS
        // indicates receives while the binding is Pausing: nothing may be
        // retained then.
        Profile::RetainStorm => {
            let pairs = r.range(1, 2);
            specs = (0..pairs)
                .map(|i| {
                    let late = match r.below(4) {
                        0 => "@completion=delay:2",
                        1 => "@completion=batch:16",
                        _ => "",
                    };
                    format!("pair:a{},a{}{late}", 2 * i, 2 * i + 1)
                })
                .collect();
            // Half the pairs' miniports have few receive buffers: what is
            // retained is what they run low on, and a pause, a close or an
            // indication that says so must give it back (three rawnic bugs
            // lived there). Drawn from a stream of its own.
            let mut low = Rng::new(seed ^ 0x6C6F_7762_7566_7300);
            for s in specs.iter_mut() {
                if low.chance(500) {
                    let n = low.pick(&[8u32, 12, 16, 24]);
                    add_option(s, &format!("rx-buffers={n}"));
                }
            }
        }
        // Many adapters (`crowd.rs`).
        Profile::Crowd => specs = crowd::adapters(&mut r),
        // OIDs that pend.
        Profile::OidStorm => {
            for s in specs.iter_mut() {
                if !s.contains("oid=") {
                    add_option(s, "oid=pending");
                }
            }
        }
        _ => {}
    }
    let n = adapter_count(&specs);
    let (mut pnp, mut nic, mut handles) = profile_schedule(&mut r, profile, n);
    if profile == Profile::RetainStorm {
        reopen_while_retaining(&mut Rng::new(seed ^ 0x7265_6F70_656E_0000), &mut handles, n);
    }
    // Drawn last, so the rest of a seed's schedule is what it was before
    // uninstalls were drawn.
    if o.parallel <= 1 && r.chance(40) {
        pnp.push(PnpAction::Uninstall);
    }
    coalesce(&mut r, &mut specs, &mut nic);
    // A stream of its own: the same damage with or without --parallel.
    // The templates of the rings and programs from another (`mutate.rs`).
    let more = &mut Rng::new(seed ^ 0x6D75_7472_696E_6700);
    mutate::mutate(&mut Rng::new(seed ^ 0x6D75_7461_7465_0000), more, &mut handles, n);
    // Reads pointed where the frames are (`readers.rs`).
    readers::readers(&mut Rng::new(seed ^ 0x7265_6164_6572_7300), &mut handles);
    // Rings too, before the sharing (so rings are used on shared handles).
    let storm = profile == Profile::RingStorm;
    rings::rings(&mut Rng::new(seed ^ 0x7269_6E67_7300_0000), o.rings, storm, &mut handles, &mut nic, n);
    // And one for shared handles: the rest of the seed is what it was.
    share(&mut Rng::new(seed ^ 0x7368_6172_6564_0000), &mut handles, profile);
    // And one for how received frames lie in MDLs.
    layouts(&mut Rng::new(seed ^ 0x6D64_6C73_0000_0000), &mut nic);
    // And one for tags the driver must write into the frames it sends.
    inline_tags(&mut Rng::new(seed ^ 0x7461_6773_0000_0000), &mut specs, &mut handles);
    // And one for opens, closes and OIDs completed inside the call.
    inline_completions(&mut Rng::new(seed ^ 0x696E_6C69_6E65_0000), &mut specs);
    // And one for miniports that fail OIDs or opens.
    refusing_miniports(&mut Rng::new(seed ^ 0x7265_6675_7365_0000), &mut specs);
    miniport_events(&mut Rng::new(seed ^ 0x6661_696C_6F69_6400), &mut nic, n);
    // And one for the PnP events besides pause, restart and power.
    other_pnp_events(&mut Rng::new(seed ^ 0x706E_7065_7665_6E74), &mut pnp, n);
    // And one for runts.
    runts(&mut Rng::new(seed ^ 0x7275_6E74_7300_0000), &mut nic);
    // And one for closes while other threads' requests are in flight.
    racing_closes(&mut Rng::new(seed ^ 0x6C61_7465_7265_7173), &mut handles, n);
    // And one for CancelIoEx.
    cancel_ios(&mut Rng::new(seed ^ 0x6361_6E63_656C_696F), &mut handles);
    // And one for cancels that come before the dispatch routine.
    edges::cancels_first(&mut Rng::new(seed ^ 0x6669_7273_7463_616E), &mut handles);
    // And one for ring waits cancelled before their dispatch, on rings
    // just attached.
    edges::cancelled_ring_waits(&mut Rng::new(seed ^ 0x7277_6169_7400_0000), &mut handles);
    // And one for MTUs that shrink and grow at each restart.
    mtu_flaps(&mut Rng::new(seed ^ 0x6D74_7566_6C61_7073), &mut specs, &mut pnp);
    // And one for small receive queues.
    small_queues(&mut Rng::new(seed ^ 0x7175_6575_6573_0000), &mut handles);
    // And one for batches longer than one chunk.
    long_batches(&mut Rng::new(seed ^ 0x6C6F_6E67_6261_7400), &mut handles);
    // And one for handles that join multicast groups.
    joins::joins(&mut Rng::new(seed ^ 0x6A6F_696E_7300_0000), &mut handles);
    // Capture programs, from a stream of their own.
    programs::programs(&mut Rng::new(seed ^ 0x7072_6F67_7300_0000), &mut handles);
    // And one for the programs that load deep in the frame.
    programs::deep(&mut Rng::new(seed ^ 0x6465_6570_0000_0000), &mut handles);
    // And one for adapters bound only after the handles began.
    let late_binds = late_binds(&mut Rng::new(seed ^ 0x6C61_7465_0000_0000), &mut pnp, &mut handles);
    // And one for waits for those binds cancelled before their dispatch.
    if late_binds {
        cancelled_binds_waits(&mut Rng::new(seed ^ 0x6277_6169_7400_0000), &mut handles);
    }
    // And one for how the deterministic scheduler picks.
    let pct = pct(&mut Rng::new(seed ^ 0x7063_7400_0000_0000), o);
    // And one for PnP events as prompt as NDIS may send them.
    let prompt_pnp = o.mode == Mode::Det && Rng::new(seed ^ 0x7072_6F6D_7074_0000).chance(500);
    // And one for the shapes of receive bursts.
    let shapes = shapes::shapes(&mut Rng::new(seed ^ 0x7368_6170_6573_0000), profile, &mut nic);
    // And one for loopback and coalesced NBLs mixed into shaped bursts.
    shapes::mixes(&mut Rng::new(seed ^ 0x6D69_7865_7300_0000), &specs, &mut nic);
    // And one for MDL chains that are not one run of memory.
    shapes::spreads(&mut Rng::new(seed ^ 0x7370_7265_6164_0000), &mut nic);
    // And one for miniports that fail packet-filter sets for a while.
    failing_filters(&mut Rng::new(seed ^ 0x6661_696C_6669_6C74), profile, &mut nic, n);
    // And one for a filter storm's miniports that refuse all-multicast
    // alone (a promiscuous handle keeps promiscuous mode there).
    if profile == Profile::FilterStorm {
        refuse_all_multicast(&mut Rng::new(seed ^ 0x616C_6C6D_6300_0000), &mut specs);
    }
    // And one for adapters whose shared multicast list other protocols
    // mostly hold.
    full_multicast_lists(&mut Rng::new(seed ^ 0x6D63_6675_6C6C_0000), &mut specs);
    // And one for OID calls held inside NdisOidRequest while PnP events come.
    stalls::oid_stalls(
        &mut Rng::new(seed ^ 0x7374_616C_6C73_0000),
        profile,
        &mut specs,
        &mut pnp,
        &mut nic,
        &mut handles,
        n,
    );
    // And one for damaged requests of the rings and programs among the
    // ring users' actions (`mutate.rs`), after every pass over them that
    // draws for each action, before the swarm (which leaves them out with
    // the garbage, or refills its lists with them).
    mutate::ring_damage(&mut Rng::new(seed ^ 0x7269_6E67_646D_6700), &mut handles);
    // And one for OID calls that return late and slow cancel routines, and
    // one for the handles' requests that walk into them: before the swarm,
    // which may leave those out.
    let spells = stalls::late_returns(&mut Rng::new(seed ^ 0x6C61_7465_7265_7400), profile, n);
    stalls::walk_into(&mut Rng::new(seed ^ 0x7761_6C6B_696E_0000), &spells, &mut handles);
    // And one for the kinds of actions a swarm schedule leaves out.
    let swarm =
        swarm::swarm(&mut Rng::new(seed ^ 0x7377_6172_6D00_0000), o.swarm, profile, &mut pnp, &mut nic, &mut handles);
    // And one for handlers that stall, so others run into their middle.
    let slow = stalls::slow_handlers(&mut Rng::new(seed ^ 0x736C_6F77_0000_0000), profile);
    // And one for low memory that comes only after the first binds (half
    // the low-resources schedules; in the other half the binds at the
    // start fail too, about one in two under --lowres 50).
    let lowres_after_binds = o.lowres > 0 && Rng::new(seed ^ 0x6166_7465_7262_6E64).chance(500);
    // And one for status indications during binds.
    edges::bind_statuses(&mut Rng::new(seed ^ 0x6269_6E64_7374_6174), o.bind_status, &mut specs);
    // And one for those of them that answer pending queries on arrival.
    let answer_on_arrival =
        edges::answers_on_arrival(&mut Rng::new(seed ^ 0x6172_7269_7661_6C00), o.answer_on_arrival, &mut specs);
    // And one for restarts that change the filters the miniport supports,
    // and for miniports that overstate the bytes of their OID answers.
    edges::supported_filters(&mut Rng::new(seed ^ 0x7375_7070_6669_6C74), &mut pnp);
    edges::overstating_miniports(&mut Rng::new(seed ^ 0x6F76_6572_7374_6174), &mut specs);
    // And one for reads and writes of no bytes.
    edges::empty_io(&mut Rng::new(seed ^ 0x656D_7074_7969_6F00), &mut handles);
    // And one for sends shorter than Ethernet's 60 bytes.
    edges::short_sends(&mut Rng::new(seed ^ 0x7368_6F72_7473_6E64), &mut handles);
    // And one for tags in the frames' bytes.
    tags::inline_tags(seed, &mut nic, &mut handles);
    // And one for the NDIS version of the emulated Windows.
    let ndis_version = edges::older_ndis(&mut Rng::new(seed ^ 0x6E64_6973_7665_7200), o.old_ndis, &mut nic);
    // And one for the boot: binds and a user's open during the
    // registration, and the processors.
    let boot = edges::boot(&mut Rng::new(seed ^ 0x626F_6F74_0000_0000), late_binds);
    // OID calls that return late and slow cancel routines (drawn before
    // the swarm, placed here).
    stalls::place(&spells, &mut nic);
    // And one for miniports that cannot be opened the first time.
    edges::flaky_opens(&mut Rng::new(seed ^ 0x666C_616B_7900_0000), &mut specs);
    // And one for bursts whose frames go to several destinations (and
    // EtherTypes), and ring users' EtherType lists.
    shapes::mixed_bursts(&mut Rng::new(seed ^ 0x6D69_7864_7374_0000), o.mixed_bursts, &mut nic, &mut handles);
    programs::random(&mut Rng::new(seed ^ 0x7261_6E64_7072_6F67), o.random_programs, &mut handles);
    open_unbind::opens_into_unbinds(&mut Rng::new(seed ^ 0x6F70_656E_756E_6264), o.open_unbind, &pnp, &mut handles);
    snaplens::snaplens(&mut Rng::new(seed ^ 0x736E_6170_6C65_6E73), o.snaplens, &mut handles);
    // And one for ndisim's knobs: work items and returns to D0 held,
    // allocations stalled, cancels on threads nobody waits for.
    knobs::knobs(&mut Rng::new(seed ^ 0x6B6E_6F62_7300_0000), o.knobs, profile, &mut pnp, &mut nic, &mut handles, n);
    let (pnp_more, nic_more) = if o.parallel > 1 {
        (split_pnp(&mut pnp, o.parallel.min(3) as usize, n), split_nic(&mut nic, o.parallel.min(3) as usize))
    } else {
        (Vec::new(), Vec::new())
    };
    Schedule {
        seed,
        mode: o.mode,
        lowres: o.lowres,
        special_pool: o.special_pool,
        jitter: o.jitter,
        preempt: o.preempt,
        adapters: specs,
        pnp,
        nic,
        handles,
        pnp_more,
        nic_more,
        late_binds,
        lowres_after_binds,
        pct,
        bounded: None,
        prompt_pnp,
        ndis_version,
        binds_in_registration: boot.binds,
        open_in_registration: boot.open,
        cpus: boot.cpus,
        swarm,
        shapes,
        keep_open: false,
        slow,
        fail_nth: fail_nth(seed, o.fail_nth, profile),
        answer_on_arrival,
        twin: twin(seed, o),
        points_after: points_after(seed, o),
    }
}

/// Adds `opt` to an adapter spec: after its first option's `@`, or a `,`.
/// A quarter of the adapters whose packet filters are not drawn yet
/// refuse `NDIS_PACKET_TYPE_ALL_MULTICAST` alone (`refuse-filter=0x4`).
fn refuse_all_multicast(r: &mut Rng, specs: &mut [String]) {
    for s in specs.iter_mut() {
        if r.chance(250) && !s.contains("filter") {
            add_option(s, "refuse-filter=0x4");
        }
    }
}

/// One adapter in ten has its multicast list, shared by every protocol
/// bound to it, all but one to three entries held by other protocols
/// (`multicast-held=29..31`): a handle's set that takes the union past
/// that fails with `NDIS_STATUS_MULTICAST_FULL` (the handle keeps its old
/// list, and the adapter is set to the union without it), though far
/// shorter than `OID_802_3_MAXIMUM_LIST_SIZE`.
fn full_multicast_lists(r: &mut Rng, specs: &mut [String]) {
    for s in specs.iter_mut() {
        if r.chance(100) {
            add_option(s, &format!("multicast-held={}", r.range(29, 31)));
        }
    }
}

fn add_option(spec: &mut String, opt: &str) {
    spec.push(if spec.contains('@') { ',' } else { '@' });
    spec.push_str(opt);
}

/// For `o.pct` per cent of deterministic schedules, PCT: 1 to 3 priority
/// changes, within the first 2^10 to 2^17 switches (a schedule makes about
/// 10,000 to 130,000).
fn pct(r: &mut Rng, o: GenOptions) -> Option<Pct> {
    (o.mode == Mode::Det && r.below(100) < u64::from(o.pct))
        .then(|| Pct { depth: r.range(2, 4) as u32, horizon: 1 << r.range(10, 17) })
}

/// More adapters without 802.1Q (the driver writes a send's tag into the
/// frame, and into the copies it delivers to its own handles) and more
/// tagged batches: with the main draws alone, 80 schedules sent no tag
/// inline at all.
fn inline_tags(r: &mut Rng, specs: &mut [String], handles: &mut [Vec<IoAction>]) {
    for s in specs.iter_mut() {
        if !s.contains("vlan=") && r.chance(200) {
            add_option(s, "vlan=off");
        }
    }
    for act in handles.iter_mut().flatten() {
        if let IoAction::SendBatch { tci, .. } = act {
            if tci.is_none() && r.chance(150) {
                *tci = Some(r.below(0x10000) as u16);
            }
        }
    }
}

/// How a fifth of the receive bursts lie in MDLs, as NICs with header-data
/// split or small receive buffers, or a driver below leaving headroom, give
/// frames: each frame then spans several MDLs, or starts past its first
/// MDL's start (chains of at most a few hundred MDLs).
fn layouts(r: &mut Rng, nic: &mut [NicAction]) {
    for act in nic.iter_mut() {
        if let NicAction::Inject { layout, len, .. } = act {
            if !r.chance(200) {
                continue;
            }
            let mut l = Layout {
                headroom: *r.pick(&[0u16, 0, 2, 64, 200]),
                first: *r.pick(&[0u16, 1, 6, 13, 14, 18, 54]),
                chunk: *r.pick(&[0u16, 0, 16, 64, 256, 1024]),
                unmapped: r.chance(300),
                headroom_mdl: r.chance(300),
                ..Layout::default()
            };
            // A few hundred MDLs a frame at most (a coalesced unit may be
            // 64 KiB).
            while len.checked_div(l.chunk).is_some_and(|n| n > 300) {
                l.chunk *= 4;
            }
            *layout = Some(l);
        }
    }
}

/// Receive offloads, drawn after everything else (so a seed's other
/// choices stay what they were): some adapters coalesce UDP (`uro=on`), and
/// some receive bursts are units the NIC coalesced, up to 64 KiB, with RSC
/// or URO info (URO ones are refused on adapters without URO).
fn coalesce(r: &mut Rng, specs: &mut [String], nic: &mut [NicAction]) {
    for s in specs.iter_mut() {
        if r.chance(150) {
            add_option(s, "uro=on");
        }
    }
    for act in nic.iter_mut() {
        if let NicAction::Inject { len, nbs, coalesce, count, .. } = act {
            if !r.chance(100) {
                continue;
            }
            *len = match r.below(3) {
                0 => r.range(60, 1514),
                1 => r.range(1515, 9014),
                _ => r.range(9015, 65535),
            } as u16;
            *nbs = 1;
            *count = (*count).min(16);
            let segs = if r.chance(100) { 0 } else { r.range(2, 45) as u16 };
            *coalesce = Some(if r.chance(500) {
                Coalesced::Rsc { segs }
            } else {
                Coalesced::Uro { segs, size: r.range(64, 1472) as u16 }
            });
        }
    }
}

#[cfg(test)]
mod tests;
