//! The end's probe: frames every handle left open must get, and their
//! bytes counted exactly.
//!
//! The other receive oracles judge what a handle got: that it was allowed
//! to get it, intact, once, in order, and that nothing it got is lost. No
//! one of them sees a frame a handle should have got and never did, nor
//! bytes counted that were not delivered. Once the schedule is quiet (the
//! actors done, the adapters settled), each adapter that is bound and
//! Running, and indicates each frame once (not `reindicate=`), gets a few
//! frames of its own: to its address, broadcast and to another host's
//! address; untagged, with an 802.1Q tag inline and with an 802.1ad tag
//! inline; the schedule's EtherType mostly, one of IPv4; lengths from 60
//! to 1518 bytes; in one probe in three some of them looped back from
//! another protocol's send. They come in one indication, or one indication
//! each.
//!
//! Each handle left open on the adapter (`Ctx::survivors`), whose GET_STATS
//! tells it its filter whole (`FILTER_PENDING` clear) and whose capture
//! program is known, must count every frame its filters take as delivered
//! or as dropped for want of room: its packet filter as GET_STATS tells it
//! (the classes `logic::filter` gives each bit), its EtherTypes (the frame's
//! own, or the one behind a tag), whether it takes this host's sends (a
//! looped-back frame), its program (`programs::keeps`). Its
//! GET_STATS before and after: `rx_frames` and `rx_queue_drops` move by as
//! many frames together, `rx_bytes` by the lengths of the frames it counts
//! delivered (some of them, as many as it counts: a queue bounded in bytes
//! may drop a long frame and keep a shorter one after it). The binding
//! counts every frame NDIS indicated, and their bytes.

use super::{Ctx, lock};
use crate::frames::{self, TPID_8021AD, TPID_8021Q};
use crate::schedule::{Dst, ProgramKind, adapter_spec};
use ndis_sys::OID_GEN_CURRENT_PACKET_FILTER;
use ndisim::rng::Rng;
use ndisim::{Handle, InjectOpts};
use rawnic_proto::{
    IOCTL_RAWNIC_GET_STATS, IOCTL_RAWNIC_SEND_BATCH, LocalSends, PacketFilter, SendReply, StatsReply, stats_flags,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A probe frame: its bytes as on the wire, what it is sent to, its
/// coalescing (a unit longer than a UMEM frame, which a ring handle gets
/// cut to the frame's last byte), and whether NDIS loops it back from
/// another protocol's send (only handles that take this host's sends take
/// it).
struct Probe {
    wire: Vec<u8>,
    dst: Dst,
    coalesce: Option<ndisim::Coalesce>,
    loopback: bool,
}

/// A handle probed: its GET_STATS before, its EtherTypes and program,
/// whether it takes this host's sends, and with rings the rx descriptors
/// its user had taken.
struct Probed {
    h: Arc<Handle>,
    before: StatsReply,
    types: Vec<u16>,
    program: Option<ProgramKind>,
    /// Which of this host's sends it takes, and whether it takes the
    /// frames judged now that are (NDIS's loopbacks, or the send probe's).
    sends: LocalSends,
    local: bool,
    ring: Option<u64>,
}

/// Adapters flooded (`flood.rs`) in one schedule at most (the other
/// profiles' schedules, of at most six adapters, seldom reach four).
const MAX_FLOODS: usize = 3;

/// Probes every adapter it can.
pub(super) fn check(c: &Ctx<'_>) {
    // What the probe's rings do is not the schedule's: the run's ring
    // counters stay the schedule's own (a crafted schedule's exact counts).
    let counters = [&c.ring_attaches, &c.ring_rx, &c.ring_tx, &c.completions];
    let before = counters.map(|n| n.load(Ordering::Relaxed));
    probe_adapters(c);
    for (n, b) in counters.iter().zip(before) {
        n.store(b, Ordering::Relaxed);
    }
}

fn probe_adapters(c: &Ctx<'_>) {
    let mut r = Rng::new(c.sched.seed ^ 0x7072_6F62_6500_0000);
    let survivors: Vec<Arc<Handle>> = lock(&c.survivors).clone();
    let mut floods = 0;
    for (i, &a) in c.adapters.iter().enumerate() {
        if c.sim.binding_state(a) != ndisim::BindingState::Running || super::received::reindicates(&c.sched.adapters, i)
        {
            continue;
        }
        // One adapter in three is flooded first (`flood.rs`), from a stream
        // of its own: the probe's draws stay what they are whatever the
        // flood draws.
        // At most `MAX_FLOODS` a schedule: a crowd's (`gen/crowd.rs`) 6 to
        // 16 adapters gave five floods and more, most of a det schedule's
        // time, and the tenth finds nothing the third did not.
        let mut fr = Rng::new(c.sched.seed ^ 0x666C_6F6F_6400_0000 ^ i as u64);
        if fr.chance(333) && floods < MAX_FLOODS {
            floods += 1;
            super::flood::flood(c, i, a, &mut fr);
        }
        let on_it: Vec<&Arc<Handle>> = survivors
            .iter()
            .filter(|h| h.file().and_then(|f| lock(&c.adapter_by_file).get(&f).copied()) == Some(i))
            .collect();
        // And handles of the probe's own, some with rings; where none is
        // left open, in two probes in five one alone with rings (a sole
        // handle with rings has a receive path of its own, in batches).
        let sole = on_it.is_empty() && r.chance(400);
        let mut probed: Vec<Probed> = on_it.into_iter().filter_map(|h| probe_of(c, h)).collect();
        let mut fresh: Vec<Arc<Handle>> = if sole {
            super::probe_handles::open(c, i, &mut r, true).into_iter().collect()
        } else {
            (0..r.range(1, 3)).filter_map(|_| super::probe_handles::open(c, i, &mut r, false)).collect()
        };
        // In one probe in six, from a stream of its own, the adapter then
        // fails packet-filter sets, blaming no bit (a device in trouble),
        // and one more handle of the probe's opens, promiscuous: it gets
        // what the adapter's filter of now lets in (this host's frames and
        // broadcasts, where the others' filters put them there), and is
        // told so by GET_STATS (and FILTER_FAILED), by which it is judged.
        let failing = !sole
            && Rng::new(c.sched.seed ^ 0x6661_696C_7300_0000 ^ i as u64).chance(167)
            && !c.sim.failing_oids(a).contains(&OID_GEN_CURRENT_PACKET_FILTER);
        if failing {
            c.sim.fail_oid(a, OID_GEN_CURRENT_PACKET_FILTER, true);
            c.rx.failing_probes.fetch_add(1, Ordering::Relaxed);
            fresh.extend(super::probe_handles::open_promiscuous(c, i));
        }
        probed.extend(fresh.iter().filter_map(|h| probe_of(c, h)));
        if probed.is_empty() {
            if failing {
                c.sim.fail_oid(a, OID_GEN_CURRENT_PACKET_FILTER, false);
            }
            super::probe_handles::close_all(c, fresh);
            continue;
        }
        // In seven sole probes in ten, from a stream of its own, the adapter's
        // filter is left wider than the handle's: frames of classes it does
        // not take reach its batch walk.
        let widened = sole
            && !fresh.is_empty()
            && Rng::new(c.sched.seed ^ 0x7769_6465_6E00_0000 ^ i as u64).chance(700)
            && super::probe_handles::widen(c, i, a);
        let mut probes = draw(&mut r, c.mac(i), sole);
        // In one probe in three, from a stream of its own, some frames are
        // looped back from another protocol's send: a handle that does
        // not take this host's sends refuses them, on every receive path
        // (for a sole handle with rings, its batch walk's frames of NBLs
        // that are not plain).
        let mut lr = Rng::new(c.sched.seed ^ 0x6C6F_6F70_6261_636B ^ i as u64);
        if lr.chance(333) {
            for p in probes.iter_mut().filter(|p| p.coalesce.is_none()) {
                p.loopback = lr.chance(300);
            }
        }
        // Before the frames: what the adapter's filter lets through, as
        // NDIS indicates (one indication holds the first of those that
        // found receive buffers).
        let passing: Vec<&Probe> = probes.iter().filter(|p| c.sim.adapter_takes(a, &p.wire)).collect();
        let together = r.chance(650);
        // Plain frames in one indication (a coalesced unit alone after
        // them: NDIS has no NBL of several units), or each alone; those
        // that found no receive buffer are not indicated.
        let got: Vec<&Probe> = if together {
            let (plain, units): (Vec<&Probe>, Vec<&Probe>) = passing.iter().partition(|p| p.coalesce.is_none());
            let refs: Vec<&[u8]> = plain.iter().map(|p| &p.wire[..]).collect();
            let o = InjectOpts {
                nbls_per_indication: refs.len().max(1),
                loopbacks: plain.iter().map(|p| p.loopback).collect(),
                ..InjectOpts::default()
            };
            let n = if refs.is_empty() { 0 } else { c.sim.inject(a, &refs, &o).unwrap_or(0) };
            let mut got = plain[..n.min(plain.len())].to_vec();
            got.extend(units.into_iter().filter(|p| inject_alone(c, a, p)));
            got
        } else {
            passing.iter().copied().filter(|p| inject_alone(c, a, p)).collect()
        };
        if widened {
            super::probe_handles::narrow(c, a);
        }
        if c.sim.binding_state(a) == ndisim::BindingState::Running {
            let how = if together { "in one indication" } else { "one indication each" };
            let judged = judge(c, i, &mut probed, &got, how, true);
            if widened && judged {
                c.rx.widened.fetch_add(1, Ordering::Relaxed);
            }
            // In one probe in three, from a stream of its own, the frames
            // are sent too, by one of the handles: on a null adapter, or a
            // pair's (whose partner has them; not a loopback adapter, whose
            // miniport gives them back).
            let mut sr = Rng::new(c.sched.seed ^ 0x7365_6E64_7300_0000 ^ i as u64);
            let away = adapter_spec(&c.sched.adapters, i).is_some_and(|s| !s.starts_with("loopback"));
            if away && sr.chance(333) {
                send_probe(c, i, &mut probed, &probes, &mut sr);
            }
        }
        if failing {
            c.sim.fail_oid(a, OID_GEN_CURRENT_PACKET_FILTER, false);
        }
        super::probe_handles::close_all(c, fresh);
    }
}

/// Indicates probe frame `p` alone on adapter `a`: whether NDIS did.
fn inject_alone(c: &Ctx<'_>, a: ndisim::AdapterId, p: &Probe) -> bool {
    let o = InjectOpts { coalesce: p.coalesce, loopback: p.loopback, ..InjectOpts::default() };
    c.sim.inject(a, &[&p.wire[..]], &o).unwrap_or(0) == 1
}

/// A handle's state before the probe, when it can be judged.
fn probe_of(c: &Ctx<'_>, h: &Arc<Handle>) -> Option<Probed> {
    let file = h.file()?;
    let types = lock(&c.rx.types).get(&file).cloned()?;
    let program = super::programs::in_force(c, file, c.sim.system_time_ns())?;
    let sends = lock(&c.rx.local).get(&file).copied()?;
    // What its ring user took so far (and the rings emptied first).
    let ring = super::rings::rx_taken(c, h);
    let before = stats(h)?;
    (before.flags & stats_flags::FILTER_PENDING == 0).then(|| Probed {
        h: h.clone(),
        before,
        types,
        program,
        sends,
        local: sends.wants(false),
        ring,
    })
}

/// The send probe: one of the probed handles sends the probe's plain
/// frames (SEND_BATCH, shortest first, so that as many as the MTU allows
/// go), and the driver hands them to the adapter's handles itself (a null
/// adapter or a pair's gives nothing back to it): each probed handle must count those its
/// filters take as delivered or dropped, if it takes this host's sends
/// (`LocalSends::Others` or `All`), and the sender its own only if it asked
/// for them (`All`). The binding counts none of them received.
fn send_probe(c: &Ctx<'_>, i: usize, probed: &mut [Probed], probes: &[Probe], r: &mut Rng) {
    let k = r.below(probed.len() as u64) as usize;
    for (j, p) in probed.iter_mut().enumerate() {
        // Its counts now, and its filter whole.
        match stats(&p.h).filter(|s| s.flags & stats_flags::FILTER_PENDING == 0) {
            Some(s) => p.before = s,
            None => return,
        }
        p.ring = super::rings::rx_taken(c, &p.h);
        p.local = p.sends.wants(j == k);
    }
    let mut frames: Vec<&Probe> = probes.iter().filter(|p| p.coalesce.is_none()).collect();
    frames.sort_by_key(|p| p.wire.len());
    let h = probed[k].h.clone();
    let file = h.file();
    for p in &frames {
        c.wire.frames(file, p.dst, [(&p.wire[..], None)]);
    }
    let batch: Vec<(Vec<u8>, Option<u16>)> = frames.iter().map(|p| (p.wire.clone(), None)).collect();
    let res = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &super::handles::send_batch_input(&batch), SendReply::LEN);
    let n = match SendReply::parse(&res.data) {
        Ok(rep) if res.status == 0 && rep.accepted as usize <= frames.len() => rep.accepted as usize,
        _ if res.status == 0 => {
            c.problem(format!("probe of {}: a SEND_BATCH reply malformed or past its frames", c.names[i]));
            return;
        }
        _ => 0,
    };
    c.sent(file, n as u64);
    // What a pair's partner indicates of them arrives first.
    for &a in &c.adapters {
        c.sim.settle(a);
    }
    let (sent, left) = frames.split_at(n);
    c.wire.accepted(sent.iter().map(|p| &p.wire[..]));
    c.wire.refused(left.iter().map(|p| &p.wire[..]));
    let how = format!("sent by handle {h:?} ({:?})", probed[k].sends);
    // (Every frame is this host's send here.)
    let ours: Vec<Probe> = sent.iter().map(|p| Probe { wire: p.wire.clone(), loopback: true, ..**p }).collect();
    if judge(c, i, probed, &ours.iter().collect::<Vec<_>>(), &how, false) {
        c.rx.send_probes.fetch_add(1, Ordering::Relaxed);
    }
}

/// A handle's GET_STATS; `None` when it fails.
pub(super) fn stats(h: &Handle) -> Option<StatsReply> {
    let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &super::handles::empty(), StatsReply::LEN);
    if r.status != 0 {
        return None;
    }
    StatsReply::parse(&r.data).ok()
}

/// The probe's frames: each destination, each tag, lengths drawn; for a
/// `sole` handle with rings, a long frame first, mostly plain.
fn draw(r: &mut Rng, mac: [u8; 6], sole: bool) -> Vec<Probe> {
    let mut v = Vec::new();
    for dst in [Dst::Directed, Dst::Broadcast, Dst::Other] {
        for tag in [None, Some(TPID_8021Q), Some(TPID_8021AD)] {
            let len = if r.chance(200) { 1514 } else { r.range(60, 1514) as usize };
            let mut wire = frames::build(dst, mac, 0x7000_0000 | r.below(0x0fff_ffff) as u32, len);
            if let Some(tpid) = tag {
                frames::tag_inline(&mut wire, tpid, r.range(0, 0xffff) as u16);
            }
            v.push(Probe { wire, dst, coalesce: None, loopback: false });
        }
    }
    // One of another EtherType (IPv4), broadcast.
    let mut ip = frames::build(Dst::Broadcast, mac, 0, r.range(60, 600) as usize);
    ip[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    v.push(Probe { wire: ip, dst: Dst::Broadcast, coalesce: None, loopback: false });
    // And in half the probes a frame longer than a 2 KiB UMEM frame: a
    // coalesced unit, or a plain frame (a jumbo frame, which the batch
    // receive takes too).
    if sole || r.chance(500) {
        let len = r.range(2048, 4200) as usize;
        let wire = frames::build(Dst::Directed, mac, 0x7000_0000 | r.below(0x0fff_ffff) as u32, len);
        let coalesce = r
            .chance(if sole { 300 } else { 500 })
            .then(|| ndisim::Coalesce::Rsc { segs: r.range(2, 4) as u16, dup_acks: 0 });
        v.push(Probe { wire, dst: Dst::Directed, coalesce, loopback: false });
    }
    // In an order of their own; the long one first in half the probes
    // (into a UMEM of one frame, `probe_handles`: its last byte).
    for k in (1..v.len()).rev() {
        v.swap(k, r.below(k as u64 + 1) as usize);
    }
    if let Some(k) = v.iter().position(|p| p.wire.len() > 2048).filter(|_| sole || r.chance(500)) {
        v.swap(0, k);
    }
    v
}

/// Whether a handle told packet filter `f`, listing `types`, with capture
/// program `program`, taking this host's sends or not (`local`), takes
/// frame `p`.
fn takes(f: PacketFilter, types: &[u16], program: Option<ProgramKind>, local: bool, p: &Probe) -> bool {
    // (No probe frame is multicast.)
    let class = super::received::filter_takes(f, p.dst);
    let at = |i: usize| p.wire.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let outer = at(12);
    let inner = if outer.is_some_and(|t| t == TPID_8021Q || t == TPID_8021AD) { at(16) } else { None };
    let typed =
        types.is_empty() || outer.is_some_and(|t| types.contains(&t)) || inner.is_some_and(|t| types.contains(&t));
    class && typed && (local || !p.loopback) && super::programs::keeps(program, &p.wire)
}

/// Judges each probed handle against the frames NDIS indicated (`got`):
/// whether any could be.
fn judge(c: &Ctx<'_>, i: usize, probed: &mut [Probed], got: &[&Probe], how: &str, indicated: bool) -> bool {
    let mut frames_judged = 0;
    let mut judged = false;
    // What the binding counts received: what NDIS indicated (a send the
    // driver hands to its handles is none).
    let (bound_frames, wire_bytes) =
        if indicated { (got.len() as u64, got.iter().map(|p| p.wire.len() as u64).sum()) } else { (0, 0) };
    for (k, p) in probed.iter_mut().enumerate() {
        let Some(after) = stats(&p.h) else { continue };
        // The filter it is told must be the one it was told before (a set
        // the first GET_STATS asked for may have come meanwhile).
        if after.effective_filter != p.before.effective_filter || after.flags & stats_flags::FILTER_PENDING != 0 {
            continue;
        }
        let want: Vec<u64> = got
            .iter()
            .filter(|q| takes(after.effective_filter, &p.types, p.program, p.local, q))
            .map(|q| q.wire.len() as u64)
            .collect();
        frames_judged += want.len() as u64;
        judged = true;
        c.rx.probe_handles.fetch_add(1, Ordering::Relaxed);
        let (b, a) = (p.before.handle, after.handle);
        let (frames, drops, bytes) =
            (a.rx_frames - b.rx_frames, a.rx_queue_drops - b.rx_queue_drops, a.rx_bytes - b.rx_bytes);
        let told = |what: &str| {
            format!(
                "probe of {} ({} frames {how}): handle {:?} (filter {:#x}, EtherTypes {:04x?}, program {:?}) {what}; of the {} frames of {:?} bytes it takes, it counts {frames} delivered ({bytes} bytes) and {drops} dropped",
                c.names[i],
                got.len(),
                p.h,
                after.effective_filter.bits(),
                p.types,
                p.program,
                want.len(),
                want,
            )
        };
        if frames + drops != want.len() as u64 {
            c.problem(told("lost or gained frames"));
        } else if !some_sum(&want, frames as usize, bytes) {
            c.problem(told("counts bytes that are no frames' it kept"));
        }
        // With rings: each frame it counts delivered is an rx descriptor.
        if let (Some(had), Some(now)) = (p.ring, super::rings::rx_taken(c, &p.h)) {
            if now - had != frames {
                c.problem(told(&format!("found {} rx descriptors on its ring", now - had)));
            }
        }
        if k == 0 {
            let (b, a) = (p.before.binding, after.binding);
            if a.rx_frames - b.rx_frames != bound_frames || a.rx_bytes - b.rx_bytes != wire_bytes {
                c.problem(format!(
                    "probe of {} ({} frames {how}, {wire_bytes} bytes indicated): the binding counts {} frames and {} bytes received",
                    c.names[i],
                    got.len(),
                    a.rx_frames - b.rx_frames,
                    a.rx_bytes - b.rx_bytes
                ));
            }
        }
    }
    c.rx.probed.fetch_add(frames_judged, Ordering::Relaxed);
    judged
}

/// Whether `n` of `lens` sum to `sum`.
fn some_sum(lens: &[u64], n: usize, sum: u64) -> bool {
    match (lens.split_first(), n) {
        (_, 0) => sum == 0,
        (None, _) => false,
        (Some((&l, rest)), n) => (l <= sum && some_sum(rest, n - 1, sum - l)) || some_sum(rest, n, sum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawnic_proto::filter as pf;

    #[test]
    fn sums_of_some_lengths() {
        assert!(some_sum(&[60, 100, 1514], 2, 160));
        assert!(some_sum(&[60, 100, 1514], 2, 1574));
        assert!(!some_sum(&[60, 100, 1514], 2, 60));
        assert!(some_sum(&[], 0, 0));
        assert!(!some_sum(&[60], 0, 60));
        assert!(some_sum(&[60, 60, 60], 3, 180));
    }

    #[test]
    fn a_handle_takes_by_class_type_and_program() {
        let mac = [2, 0, 0, 0, 0, 1];
        let mut probes = draw(&mut Rng::new(5), mac, false);
        probes.sort_by_key(|p| (p.dst as u8, p.wire[12], p.wire.len()));
        let n = |f: PacketFilter, types: &[u16], program| {
            probes.iter().filter(|p| takes(f, types, program, false, p)).count()
        };
        let unit = usize::from(probes.iter().any(|p| p.wire.len() > 2048));
        assert_eq!(n(pf::PROMISCUOUS, &[], None), 10 + unit);
        assert_eq!(n(pf::BROADCAST, &[], None), 4);
        assert_eq!(n(pf::DIRECTED, &[], None), 3 + unit);
        assert_eq!(n(pf::DIRECTED | pf::BROADCAST, &[0x88b5], None), 6 + unit, "behind both tags");
        assert_eq!(n(pf::PROMISCUOUS, &[0x88a8], None), 3);
        assert_eq!(n(pf::PROMISCUOUS, &[0x8100], None), 3);
        assert_eq!(n(pf::BROADCAST, &[0x0800], None), 1);
        assert_eq!(n(pf::PROMISCUOUS, &[], Some(ProgramKind::Refused)), 0);
        // Frames looped back from another protocol's send: only for a
        // handle that takes this host's sends.
        let looped: Vec<Probe> =
            probes.iter().map(|p| Probe { wire: p.wire.clone(), loopback: p.dst == Dst::Broadcast, ..*p }).collect();
        let n = |local| looped.iter().filter(|p| takes(pf::BROADCAST, &[], None, local, p)).count();
        assert_eq!((n(false), n(true)), (0, 4));
    }
}
