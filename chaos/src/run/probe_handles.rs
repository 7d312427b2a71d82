//! The probe's own handles (`probe.rs`): opened on an adapter just before
//! its probe frames, each with a filter, EtherTypes, queue bounds and snap
//! length drawn, some with a capture program, half with rings (a UMEM of
//! 2 or 4 KiB frames, rx rings of 8 to 32 entries, up to 32 frames on the
//! fill ring: full rings and empty fill rings drop frames). Closed once
//! judged. And the adapter's filter left wider than its handles' while the
//! frames come (`widen`, `narrow`).

use super::{Ctx, close, rings};
use crate::schedule::{AttachDamage, ProgramKind, RingOp};
use ndisim::rng::Rng;
use ndisim::{AdapterId, Handle};
use rawnic_proto::{IOCTL_RAWNIC_OPEN, LocalSends, MIN_QUEUE_BYTES, OpenReply, OpenRepr, PacketFilter, filter as pf};
use std::sync::Arc;
use std::time::Duration;

/// Opens a handle of the probe's on adapter `i` (with rings if `rings`, else
/// in half the calls); `None` when it cannot be opened (no binding, low
/// resources).
pub(super) fn open(c: &Ctx<'_>, i: usize, r: &mut Rng, rings: bool) -> Option<Arc<Handle>> {
    let h = Arc::new(c.sim.open().ok()?);
    const FILTERS: [PacketFilter; 6] = [
        pf::DIRECTED.union(pf::BROADCAST),
        pf::PROMISCUOUS,
        pf::BROADCAST,
        pf::DIRECTED,
        pf::DIRECTED.union(pf::BROADCAST).union(pf::PROMISCUOUS),
        PacketFilter::NONE,
    ];
    // (A sole handle with rings takes something.)
    let filter = FILTERS[r.below(if rings { 5 } else { 6 }) as usize];
    const TYPES: [&[u16]; 8] =
        [&[], &[], &[0x88b5], &[0x88a8], &[0x8100], &[0x0800], &[0x88b5, 0x0800], &[0x0800, 0x88a8]];
    // A sole handle with rings mostly takes every EtherType.
    let types = if rings && r.chance(600) { &[][..] } else { TYPES[r.below(TYPES.len() as u64) as usize] };
    let open = OpenRepr {
        name: &c.names[i],
        ethertypes: types,
        packet_filter: filter,
        queue_frames: if r.chance(300) { r.range(1, 6) as u32 } else { 0 },
        queue_bytes: if r.chance(150) { MIN_QUEUE_BYTES } else { 0 },
        snaplen: if r.chance(200) { r.range(14, 200) as u32 } else { 0 },
        local_sends: LocalSends::None,
        strict_filter: false,
    };
    let h = opened(h, &open)?;
    if let Some(file) = h.file() {
        c.rx.opened(file, types, LocalSends::None, open.snaplen);
    }
    if r.chance(250) {
        let kind = match r.below(5) {
            0 => ProgramKind::TakeAll,
            1 => ProgramKind::Cut { bytes: r.range(14, 200) as u16 },
            2 => ProgramKind::DropOdd,
            3 => ProgramKind::DeepOdd { at: r.range(128, 700) as u16 },
            _ => ProgramKind::Clear,
        };
        super::programs::set(c, &h, kind);
    }
    if rings || r.chance(500) {
        let mac = c.mac(i);
        let attach = RingOp::Attach {
            frame_size: *r.pick(&[2048, 4096]),
            // Few UMEM frames too: the probe's then take the last.
            frames: *r.pick(&[1, 4, 8, 32]),
            fill: *r.pick(&[8, 16, 32]),
            rx: *r.pick(&[8, 16, 32]),
            tx: 8,
            completion: 8,
            damage: AttachDamage::None,
        };
        rings::ring_action(c, &h, false, mac, &attach);
        // Fewer frames than the probe's, or room for all.
        let frames = if r.chance(600) { r.range(0, 8) } else { 32 } as u16;
        let fill = RingOp::Fill { frames, invalid: 0 };
        rings::ring_action(c, &h, false, mac, &fill);
    }
    Some(h)
}

/// Opens a plain promiscuous handle of the probe's on adapter `i` (every
/// EtherType, no program, no rings, no local sends); `None` when it cannot
/// be opened.
pub(super) fn open_promiscuous(c: &Ctx<'_>, i: usize) -> Option<Arc<Handle>> {
    let h = opened(Arc::new(c.sim.open().ok()?), &plain(&c.names[i], pf::PROMISCUOUS))?;
    if let Some(file) = h.file() {
        c.rx.opened(file, &[], LocalSends::None, 0);
    }
    Some(h)
}

/// An OPEN of adapter `name` with packet filter `filter` and nothing else:
/// every EtherType, the default queue, no snap length, no local sends.
pub(super) fn plain(name: &str, filter: PacketFilter) -> OpenRepr<'_> {
    OpenRepr {
        name,
        ethertypes: &[],
        packet_filter: filter,
        queue_frames: 0,
        queue_bytes: 0,
        snaplen: 0,
        local_sends: LocalSends::None,
        strict_filter: false,
    }
}

/// `h` opened as `open` says; `None` (and `h` closed) when the OPEN failed.
pub(super) fn opened(h: Arc<Handle>, open: &OpenRepr<'_>) -> Option<Arc<Handle>> {
    let mut input = vec![0u8; open.wire_len()];
    open.emit(&mut input).ok()?;
    if h.ioctl(IOCTL_RAWNIC_OPEN, &input, OpenReply::LEN).status != 0 {
        close(h, false);
        return None;
    }
    Some(h)
}

/// Closes the probe's handles; each attach must complete.
pub(super) fn close_all(c: &Ctx<'_>, handles: Vec<Arc<Handle>>) {
    for h in handles {
        let user = rings::release(c, &h);
        close(h, false);
        rings::finish(c, user.into_iter().collect());
    }
}

/// Whether adapter `a`'s packet filter is promiscuous now.
fn promiscuous(c: &Ctx<'_>, a: AdapterId) -> bool {
    c.sim.adapter_filter(a).is_some_and(|(_, f, _)| f & pf::PROMISCUOUS.bits() != 0)
}

/// Leaves adapter `i`'s (NDIS's `a`) packet filter wider than its handles
/// ask for, as a miniport slow to complete a set does: a promiscuous handle
/// of the probe's is opened (its filter set done) and closed while the
/// miniport holds OID requests, so the set that narrows the filter is
/// still pending as the probe's frames come. Whether it was left wider
/// (then `narrow` must follow); not where the adapter will not be
/// promiscuous.
pub(super) fn widen(c: &Ctx<'_>, i: usize, a: AdapterId) -> bool {
    let Ok(h) = c.sim.open() else { return false };
    let Some(h) = opened(Arc::new(h), &plain(&c.names[i], pf::PROMISCUOUS)) else { return false };
    // Its set is done at once, or soon.
    let wide = c.wait_until(SETTLE, || promiscuous(c, a)) && c.sim.hold_oids(a).is_ok();
    close(h, false);
    wide
}

/// After `widen`: the miniport completes the narrowing set, and the probe
/// waits until it has (its handles' filters whole again).
pub(super) fn narrow(c: &Ctx<'_>, a: AdapterId) {
    let _ = c.sim.release_oids(a);
    c.wait_until(SETTLE, || c.sim.pending_oids(a).is_empty());
}

/// How long `widen` and `narrow` wait for a set, in the simulation's time.
const SETTLE: Duration = Duration::from_millis(500);
