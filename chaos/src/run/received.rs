//! The received-frames oracle: what the NIC actor injects, frame by frame,
//! and what each handle may read of it.
//!
//! Every injected frame that carries a marker is registered, before the
//! indication, by its sequence number: its burst, its destination and the
//! 802.1Q info of the NBL it lies in (a burst's NBLs may differ in size
//! and info, `Shape`; each NET_BUFFER is a frame). A record a handle reads
//! (ReadFile or its rx ring) of such a frame must then carry its NBL's tag
//! (`frame_flags::VLAN` and the TCI, or no tag when the info was none or
//! 0), come to that handle once, in order among its burst's frames in one
//! read, and be one the handle's packet filter takes (by its destination).
//! Every record, injected or sent, must be of an EtherType the handle
//! listed (a frame without a whole header only to handles that listed
//! none). The bytes and lengths are `frames::check`'s; that nothing a
//! handle took is lost is the receive accounts' (`accounts.rs`); the
//! records of frames the handles sent, which the driver hands over
//! itself, are `local.rs`'s.

use super::{Ctx, lock};
use crate::frames;
use crate::schedule::*;
use ndisim::InjectOpts;
use rawnic_proto::{LocalSends, PacketFilter, filter as pf, frame_flags};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A file object, as `IoToken::file` names it.
type File = (usize, u64);

#[derive(Debug, Clone, Copy)]
struct Injected {
    burst: u32,
    dst: Dst,
    /// The NBL's 802.1Q info (0: none).
    tci: u16,
    /// Its adapter's miniport indicates a copy of an NBL's first frame
    /// again when the NBL comes back (`reindicate=`), without the NBL's
    /// info: the frame may come twice, the copy untagged and after later
    /// frames.
    echoed: bool,
    /// The NBL is NDIS's loopback of another protocol's send.
    loopback: bool,
    /// The tag the frame carries inline, after its addresses.
    inline: Option<InlineTag>,
    /// The NBL's coalescing as the record must carry it: `(segs,
    /// seg_size)` for a unit from the wire; None for a plain NBL, an RSC
    /// one that says it holds no segments, and a loopback (its coalescing
    /// slots hold send info).
    coalesced: Option<(u16, u16)>,
    /// The system time just before its burst was indicated, in the
    /// driver's clock's 100-ns steps: no record of it may be stamped
    /// earlier.
    at: u64,
}

/// Whether adapter `a` of `specs` re-indicates returned frames.
pub(super) fn reindicates(specs: &[String], a: usize) -> bool {
    adapter_spec(specs, a).is_some_and(|s| s.contains("reindicate="))
}

#[derive(Default)]
pub(super) struct Model {
    injected: Mutex<HashMap<u32, Injected>>,
    bursts: AtomicU32,
    /// Each burst's action, for a report.
    burst_acts: Mutex<Vec<String>>,
    /// Injected frames each file object got.
    seen: Mutex<HashMap<(File, u32), String>>,
    /// The EtherTypes each file object's OPEN listed.
    pub(super) types: Mutex<HashMap<File, Vec<u16>>>,
    /// Which of this host's sends each file object takes (its OPEN's
    /// `LocalSends`).
    pub(super) local: Mutex<HashMap<File, LocalSends>>,
    /// Each file object's snap length (its OPEN's; 0 keeps all): no
    /// record of it may hold more bytes.
    snaplens: Mutex<HashMap<File, u32>>,
    /// Records judged against a snap length (`check_snap`).
    pub(super) snapped: AtomicU64,
    /// Records of injected frames checked.
    pub(super) checked: AtomicU64,
    /// Frames indicated in shaped bursts.
    pub(super) shaped: AtomicU64,
    /// Records checked of looped-back frames and of coalesced units.
    pub(super) looped: AtomicU64,
    pub(super) coalesced: AtomicU64,
    /// Records checked of frames with a tag inline.
    pub(super) tagged_inline: AtomicU64,
    /// Records whose receive time was judged (`check_stamp`), and pairs
    /// of one burst's records in one read whose order of stamps was.
    pub(super) stamped: AtomicU64,
    pub(super) stamp_pairs: AtomicU64,
    /// The end's probe (`probe.rs`): handles judged, and the frames they
    /// had to count.
    pub(super) probe_handles: AtomicU64,
    pub(super) probed: AtomicU64,
    /// Send probes judged (`probe::send_probe`).
    pub(super) send_probes: AtomicU64,
    /// Probes whose adapter failed packet-filter sets as the probe's own
    /// handles opened (`probe.rs`).
    pub(super) failing_probes: AtomicU64,
    /// Probes whose adapter's filter was left wider than its handles'
    /// (`probe_handles::widen`).
    pub(super) widened: AtomicU64,
    /// Frames read back at the end from the queues of handles left open
    /// (`handles::read_queued`).
    pub(super) drained: AtomicU64,
    /// Frames the end's floods read back (`flood.rs`).
    pub(super) flooded: AtomicU64,
    /// The capture programs each file object set (`programs.rs`).
    pub(super) programs: super::programs::Sets,
}

impl Model {
    /// Whether the NIC actor indicated schedule frame `seq`.
    pub(super) fn was_injected(&self, seq: u32) -> bool {
        lock(&self.injected).contains_key(&seq)
    }

    /// File object `file` opened a binding listing `types`.
    pub(super) fn opened(&self, file: File, types: &[u16], local: LocalSends, snaplen: u32) {
        lock(&self.types).insert(file, types.to_vec());
        lock(&self.local).insert(file, local);
        lock(&self.snaplens).insert(file, snaplen);
    }
}

/// The NIC actor's receive burst: its frames built, registered and
/// indicated.
pub(super) fn inject(c: &Ctx<'_>, act: &NicAction) {
    let NicAction::Inject {
        a,
        count,
        len,
        resources,
        nbls,
        nbs,
        passive,
        tci,
        dst,
        loopback,
        coalesce,
        layout,
        shape,
        inline,
    } = act
    else {
        return;
    };
    // A tag inline only in frames with a header to put it in.
    let inline = inline.filter(|_| *len >= 12);
    let mac = c.mac(*a);
    // Runts (shorter than a schedule frame's header and marker) are cut
    // from one; they carry no marker to check.
    let seqs: Vec<u32> = (0..*count).map(|_| c.next_seq()).collect();
    // Each frame's destination: the burst's, or its shape's mix.
    let dst_of = |i: usize| shape.as_ref().and_then(|s| s.dsts.get(i % s.dsts.len().max(1)).copied()).unwrap_or(*dst);
    // And whether it is of another EtherType (not a schedule frame).
    let foreign =
        |i: usize| shape.as_ref().is_some_and(|s| s.foreign.get(i % s.foreign.len().max(1)).copied().unwrap_or(false));
    let frames: Vec<Vec<u8>> = seqs
        .iter()
        .enumerate()
        .map(|(i, &seq)| {
            let mut f = frames::build(dst_of(i), mac, seq, *len as usize);
            if foreign(i) {
                f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            }
            f.truncate((*len as usize).max(1));
            if let Some(t) = inline {
                frames::tag_inline(&mut f, t.tpid, t.tci);
            }
            f
        })
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    if shape.is_some() {
        c.rx.shaped.fetch_add(u64::from(*count), Ordering::Relaxed);
    }
    let shape = shape.clone().unwrap_or_default();
    let o = InjectOpts {
        resources: *resources,
        nbls_per_indication: (*nbls).max(1) as usize,
        nbs_per_nbl: (*nbs).max(1) as usize,
        nbl_sizes: shape.sizes.iter().map(|&n| usize::from(n.max(1))).collect(),
        dispatch: !*passive,
        // One DISPATCH_LEVEL burst in three comes with the flag clear
        // (drawn from the schedule, so seeds keep their actions).
        unflagged: !*passive && count % 3 == 0,
        tci: *tci,
        tcis: shape.tcis.clone(),
        loopback: *loopback,
        coalesce: coalesce.map(to_ndisim),
        layout: layout.map_or_else(ndisim::NbLayout::default, Layout::nb_layout),
        layouts: shape.layouts.iter().copied().map(Layout::nb_layout).collect(),
        loopbacks: shape.loopbacks.clone(),
        coalesces: shape.coalesces.iter().map(|c| c.map(to_ndisim)).collect(),
    };
    if usize::from(*len) >= frames::MARKED {
        let burst = {
            let mut acts = lock(&c.rx.burst_acts);
            acts.push(format!("{act:?} (frames {}..={})", seqs[0], seqs[seqs.len() - 1]));
            c.rx.bursts.fetch_add(1, Ordering::Relaxed)
        };
        let echoed = reindicates(&c.sched.adapters, *a);
        let at = c.sim.system_time_ns() / 100 * 100;
        let mut map = lock(&c.rx.injected);
        let mut i = 0;
        for (k, size) in o.nbl_groups(seqs.len()).into_iter().enumerate() {
            let tci = o.tci_of(k).unwrap_or(0);
            let loopback = o.loopback_of(k);
            let coalesced = match o.coalesce_of(k) {
                _ if loopback => None,
                Some(ndisim::Coalesce::Rsc { segs, .. }) if segs != 0 => Some((segs, 0)),
                Some(ndisim::Coalesce::Uro { segs, seg_size }) => Some((segs, seg_size)),
                _ => None,
            };
            for (j, &seq) in seqs[i..i + size].iter().enumerate() {
                if foreign(i + j) {
                    continue;
                }
                let dst = dst_of(i + j);
                map.insert(seq, Injected { burst, dst, tci, echoed, loopback, coalesced, inline, at });
            }
            i += size;
        }
    }
    c.sim_result("inject", c.sim.inject(c.adapters[*a], &refs, &o).map(|_| ()));
}

fn to_ndisim(c: Coalesced) -> ndisim::Coalesce {
    match c {
        Coalesced::Rsc { segs } => ndisim::Coalesce::Rsc { segs, dup_acks: 0 },
        Coalesced::Uro { segs, size } => ndisim::Coalesce::Uro { segs, seg_size: size },
    }
}

/// What a record says of its frame besides the bytes: its flags, TCI
/// and coalescing counts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rec {
    pub flags: u16,
    pub tci: u16,
    pub segs: u16,
    pub seg_size: u16,
    /// When the driver took the frame (its stamp, ns since 1970).
    pub ts: u64,
    /// The frame's length.
    pub origlen: u32,
}

/// A record's `TRUNCATED` flag says exactly whether fewer bytes came than
/// were on the wire (`caplen < origlen`; the snap length, a capture
/// program, the read buffer or a UMEM frame cut it).
pub(super) fn check_cut(c: &Ctx<'_>, via: &str, caplen: usize, origlen: u32, flags: u16) {
    let cut = flags & frame_flags::TRUNCATED != 0;
    if cut != (caplen < origlen as usize) {
        c.problem(format!(
            "{via}: a record of {caplen} bytes of a {origlen}-byte frame {} TRUNCATED",
            if cut { "says" } else { "does not say" }
        ));
    }
}

/// Checks a record file object `file` got through `via`: `data` its
/// bytes (cut to the snap length), `r` what the record says of it.
/// Returns the frame's burst and sequence number when it is an injected
/// one whose adapter does not indicate it again, for `in_order`.
pub(super) fn check(c: &Ctx<'_>, via: &str, file: File, data: &[u8], r: Rec) -> Option<(u32, u32)> {
    let Rec { flags, tci, .. } = r;
    check_snap(c, via, file, data.len());
    if let Some(types) = lock(&c.rx.types).get(&file).filter(|t| !t.is_empty()) {
        // The EtherType, and the inner one behind an 802.1Q or 802.1ad
        // tag; a frame shorter than a header has none.
        let at = |i: usize| data.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let outer = at(12);
        let tagged = outer.is_some_and(|t| matches!(t, 0x8100 | 0x88a8));
        let inner = if tagged { at(16) } else { None };
        // A tag the NIC stripped (`VLAN`): the EtherType is 0x8100 as on
        // the wire, and the frame's own is the inner one; a record cut
        // before it (a capture program's cut inside the tag keeps 12
        // bytes) has an inner one not known; a runt of 12 or 13 bytes
        // (16 or 17 on the wire) has none inside, and a shorter one none
        // at all.
        let stripped = flags & frame_flags::VLAN != 0;
        let cut = flags & frame_flags::TRUNCATED != 0;
        let (outer, inner, tagged) = match (stripped, outer) {
            (false, _) => (outer, inner, tagged),
            (true, Some(own)) => (Some(0x8100), Some(own), false),
            (true, None) if cut => (Some(0x8100), None, true),
            (true, None) if data.len() >= 12 => (Some(0x8100), None, false),
            (true, None) => (None, None, false),
        };
        // (A tagged frame cut before its inner EtherType is not judged.)
        // Nor one a damaged capture program cut before its EtherType.
        let unknown = (tagged && inner.is_none()) || (outer.is_none() && super::programs::damaged(c, file));
        if !unknown && !outer.is_some_and(|t| types.contains(&t)) && !inner.is_some_and(|t| types.contains(&t)) {
            c.problem(format!(
                "{via}: a handle that listed EtherTypes {types:04x?} got a {}-byte frame of EtherType {outer:04x?} (inner {inner:04x?})",
                data.len()
            ));
        }
    }
    super::programs::check_record(c, via, file, data, r.ts, flags, (tci, r.origlen));
    let seq = frames::seq_behind(data, &[frames::TPID_8021Q, frames::TPID_8021AD])?;
    if !super::from_ndis(flags) {
        // A send of one of this host's handles, handed over by the driver.
        super::local::check(c, via, file, data, seq, r);
        return None;
    }
    let inj = lock(&c.rx.injected).get(&seq).copied()?;
    c.rx.checked.fetch_add(1, Ordering::Relaxed);
    c.rx.tagged_inline.fetch_add(u64::from(inj.inline.is_some()), Ordering::Relaxed);
    // The record's tag: the NBL's info when it has one, else an 802.1Q
    // tag inline (TCI 0 too); an 802.1ad tag is no 802.1Q tag. A copy
    // indicated again has no info: only its inline tag, if any.
    let inline = match inj.inline {
        Some(t) if t.tpid == frames::TPID_8021Q => (frame_flags::TAGGED, t.tci),
        _ => (0, 0),
    };
    let want = if inj.tci != 0 { (frame_flags::VLAN | frame_flags::TAGGED, inj.tci) } else { inline };
    let got = (flags & (frame_flags::VLAN | frame_flags::TAGGED), tci);
    // A frame whose header could not be read whole (a mapping refused under
    // low resources) goes, unclassified, only to handles that list no
    // EtherType, and its record has no tag the driver could not see
    // (`tests/driver_receive.rs`).
    let unread = got == (0, 0)
        && inj.tci == 0
        && c.sim.alloc_failures() > 0
        && lock(&c.rx.types).get(&file).is_none_or(|t| t.is_empty());
    if got != want && !(inj.echoed && got == inline) && !unread {
        c.problem(format!(
            "{via}: injected frame {seq}'s record has tag flags {:#x} and TCI {:#06x}; its NBL's 802.1Q info says {:#x} and {:#06x}",
            got.0, got.1, want.0, want.1
        ));
    }
    check_origin(c, via, file, seq, &inj, r);
    check_stamp(c, via, seq, &inj, r.ts);
    let again = lock(&c.rx.seen).insert((file, seq), via.to_string());
    if let Some(first) = again.filter(|_| !inj.echoed) {
        let act = lock(&c.rx.burst_acts).get(inj.burst as usize).cloned().unwrap_or_default();
        c.problem(format!(
            "{via}: injected frame {seq} reached one handle twice (first through {first}); its burst: {act}"
        ));
    }
    if let Some(f) = filter_refusing(c, file, inj.dst) {
        c.problem(format!(
            "{via}: a handle whose filter is {:#x} got injected frame {seq}, sent to {:?}",
            f.bits(),
            inj.dst
        ));
    }
    (!inj.echoed).then_some((inj.burst, seq))
}

/// The packet filter file object `file` opened with, when it does not take
/// a frame sent to `dst` (`filter_takes`).
pub(super) fn filter_refusing(c: &Ctx<'_>, file: File, dst: Dst) -> Option<PacketFilter> {
    let f = lock(&c.filter_by_file).get(&file).copied().map(PacketFilter::from_bits_retain)?;
    (!filter_takes(f, dst)).then_some(f)
}

/// No record of a handle holds more bytes than its snap length (a
/// capture program may keep fewer, never more).
fn check_snap(c: &Ctx<'_>, via: &str, file: File, caplen: usize) {
    let Some(snap) = lock(&c.rx.snaplens).get(&file).copied().filter(|&s| s != 0) else { return };
    c.rx.snapped.fetch_add(1, Ordering::Relaxed);
    if caplen > snap as usize {
        c.problem(format!("{via}: a record of {caplen} bytes on a handle whose snap length is {snap}"));
    }
}

/// A record's receive time lies between its burst's indication and now
/// (the record is checked once it reached the user): a stamp from before
/// the frame came, or from the future, is a stale or wrong clock read.
fn check_stamp(c: &Ctx<'_>, via: &str, seq: u32, inj: &Injected, ts: u64) {
    let now = c.sim.system_time_ns();
    c.rx.stamped.fetch_add(1, Ordering::Relaxed);
    if ts < inj.at || ts > now {
        c.problem(format!(
            "{via}: injected frame {seq}'s record is stamped {ts} ns, outside its burst's indication at {} ns and now, {now} ns",
            inj.at
        ));
    }
}

/// Whether a handle told packet filter `f` may get a frame sent to `dst`
/// (for a multicast one, see also its groups: `joins.rs`).
pub(super) fn filter_takes(f: PacketFilter, dst: Dst) -> bool {
    f.contains(pf::PROMISCUOUS)
        || match dst {
            Dst::Broadcast => f.contains(pf::BROADCAST),
            Dst::Directed => f.contains(pf::DIRECTED),
            Dst::Multicast => f.intersects(pf::MULTICAST | pf::ALL_MULTICAST),
            Dst::Other => false,
        }
}

/// An injected frame's record says where it came from and how it was
/// coalesced as its NBL did: a loopback `OUTBOUND | LOOPBACK`, and only to
/// handles that take this host's sends; a frame from the wire neither; a
/// coalesced unit `COALESCED` with its NBL's counts, a plain frame neither
/// (a copy a miniport indicates again, without the NBL's info, is plain).
fn check_origin(c: &Ctx<'_>, via: &str, file: File, seq: u32, inj: &Injected, r: Rec) {
    use frame_flags::{COALESCED, LOOPBACK, OUTBOUND};
    let origin = r.flags & (OUTBOUND | LOOPBACK);
    let want = if inj.loopback { OUTBOUND | LOOPBACK } else { 0 };
    let echo = inj.echoed && origin == 0;
    if origin != want && !echo {
        c.problem(format!(
            "{via}: injected frame {seq}'s record has origin flags {origin:#x}; its NBL (loopback: {}) says {want:#x}",
            inj.loopback
        ));
    }
    if inj.loopback && lock(&c.rx.local).get(&file) == Some(&LocalSends::None) {
        c.problem(format!(
            "{via}: looped-back frame {seq} reached a handle that does not take this host's sends (LocalSends::None)"
        ));
    }
    c.rx.looped.fetch_add(u64::from(inj.loopback), Ordering::Relaxed);
    c.rx.coalesced.fetch_add(u64::from(inj.coalesced.is_some()), Ordering::Relaxed);
    let got = (r.flags & COALESCED != 0).then_some((r.segs, r.seg_size));
    let plain = got.is_none() && (r.segs, r.seg_size) == (0, 0);
    if got != inj.coalesced && !(inj.echoed && plain) {
        c.problem(format!(
            "{via}: injected frame {seq}'s record has COALESCED {:?} (segs {}, seg_size {}); its NBL says {:?} (loopback: {})",
            got.is_some(),
            r.segs,
            r.seg_size,
            inj.coalesced,
            inj.loopback
        ));
    }
}

/// The injected frames of one read, in the order it gave them: a burst's
/// frames come in the order they were indicated.
pub(super) fn in_order(c: &Ctx<'_>, via: &str, frames: &[(u32, u32, u64)]) {
    let mut last: HashMap<u32, (u32, u64)> = HashMap::new();
    for &(burst, seq, ts) in frames {
        let Some((prev, prev_ts)) = last.insert(burst, (seq, ts)) else { continue };
        if prev >= seq {
            c.problem(format!("{via}: injected frame {seq} came after frame {prev} of its burst in one read"));
        } else {
            // One thread indicated the burst, frame after frame: their
            // receive times cannot go back.
            c.rx.stamp_pairs.fetch_add(1, Ordering::Relaxed);
            if ts < prev_ts {
                c.problem(format!(
                    "{via}: injected frame {seq} is stamped {ts} ns, before frame {prev} of its burst ({prev_ts} ns), indicated before it"
                ));
            }
        }
    }
}

/// rawnic copies every frame NDIS looped back from a send and never keeps
/// its NBL past the receive handler: the sender's send completion (another
/// protocol's, or a zero-copy send's UMEM frame) waits until it is back.
/// ndisim counts the looped-back NBLs a driver kept, per adapter.
pub(super) fn check_loopbacks_copied(c: &Ctx<'_>) {
    for (i, &a) in c.adapters.iter().enumerate() {
        let kept = c.sim.loopbacks_kept(a);
        if kept != 0 {
            c.problem(format!(
                "{}: rawnic kept {kept} NBLs NDIS looped back from a send past its receive handler (they must be copied: the sender's completion waits for them)",
                c.names[i]
            ));
        }
    }
}
