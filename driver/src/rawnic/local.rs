//! Frames sent from this host, handed to the binding's handles.
//!
//! NDIS loops a protocol's sends back to the other protocols bound to the
//! adapter whose packet filters accept them, never to the protocol that
//! sent them (unless it asks, with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`).
//! rawnic's handles share one binding, so NDIS cannot do it for them:
//! rawnic gives each handle's sends to the handles whose local-sends mode
//! and filters accept them (their effective filters, as for frames from
//! the wire: `filter::granted`), as a capture tool expects, marked
//! `frame_flags::OUTBOUND` (in their rx rings, for handles with rings).
//! rawnic does not ask NDIS for the loopback, so no frame is delivered
//! twice.

use super::Rawnic;
use super::client::{AtomicCounters, ClientState, Completions, Mode, RxTally};
use super::rings::RxPlacer;
use crate::kernel::protocol::Binding;
use crate::kernel::sync::AtDispatch;
use crate::kernel::time;
use rawnic_logic::filter::{classify, ethertypes_on_wire};
use rawnic_logic::vlan::{TagPlacement, copy_tagged, rx_tag, tag_bytes};
use rawnic_proto::ring::RxDesc;
use rawnic_proto::{FrameHeader, PacketFilter, frame_flags};

/// Whether any handle of `b` receives (a hint: `deliver` looks again).
pub(super) fn anyone_listens(b: &Binding<Rawnic>) -> bool {
    b.listeners.load(core::sync::atomic::Ordering::Acquire) != 0
}

/// Hands `frames`, just sent by handle `sender` on `b` (each with its
/// 802.1Q tag where the send put it), to every open handle that takes
/// them. Each is recorded as it went out: a tag the adapter inserts from
/// the NBL's info is reported as stripped (`VLAN`), one the driver wrote
/// into the frame is in the data.
pub(super) fn deliver<'f, I>(b: &Binding<Rawnic>, sender: u32, frames: I)
where
    I: Iterator<Item = (&'f [u8], TagPlacement)> + Clone,
{
    let mut done = Completions::new();
    deliver_into(b, sender, frames, &mut done);
    done.complete();
}

/// `deliver`, leaving the reads and ring waits it satisfies in `done`, for
/// the caller to complete once it holds no lock.
pub(super) fn deliver_into<'f, I>(b: &Binding<Rawnic>, sender: u32, frames: I, done: &mut Completions)
where
    I: Iterator<Item = (&'f [u8], TagPlacement)> + Clone,
{
    let table = b.clients.lock();
    // Most bindings have no handle that receives: nothing to do.
    if table.receivers == 0 {
        return;
    }
    // A handle gets this host's sends as it gets frames from the wire:
    // within what the adapter's filter takes in while it owes the handles
    // theirs (GET_STATS's effective filter). (The binding's info lock
    // inside its clients lock, as `Rawnic::wanted_filter` takes them.)
    let has = super::filter::granted(b).0;
    let ts = time::unix_ns();
    for c in table.iter() {
        let mut st = c.state.lock_dpr(table.at_dispatch());
        if st.filter.receives_nothing()
            || !st.local_sends.wants(c.id == sender)
            || !matches!(st.mode, Mode::Open { .. })
        {
            continue;
        }
        deliver_to(b, &c.counters, &mut st, frames.clone(), (ts, has), table.at_dispatch(), done);
    }
}

/// `deliver_into` for one handle that takes local sends (its lock held):
/// the frames it accepts go to its rings or its queue, counted in
/// `counters` (the handle's) and the binding's before a reader can have
/// them, and the reads and ring waits they satisfy into `done`. Out of
/// line, so a send with no such handle (the usual case) pays only the
/// checks.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn deliver_to<'f, I>(
    b: &Binding<Rawnic>,
    counters: &AtomicCounters,
    st: &mut ClientState,
    frames: I,
    (ts, has): (u64, PacketFilter),
    at: AtDispatch<'_>,
    done: &mut Completions,
) where
    I: Iterator<Item = (&'f [u8], TagPlacement)>,
{
    let mut tally = RxTally::default();
    // A handle with rings gets them there, as it gets what it receives.
    let rings = st.rings.clone();
    let mut rg = rings.as_ref().map(|r| r.lock_dpr(at));
    let mut placer = rg.as_mut().map(|g| RxPlacer::new(g, st.snaplen));
    for (data, tag) in frames {
        let (stripped, inline) = match tag {
            TagPlacement::Info(t) => (t, None),
            TagPlacement::Inline(t) => (0, Some(t)),
            TagPlacement::None => (0, None),
        };
        let mut head = [0u8; 18];
        let n = copy_tagged(data, inline, &mut head);
        let head = &head[..n];
        // As it goes on the wire: a tag the NIC will insert too.
        let (outer, inner) = ethertypes_on_wire(head, stripped);
        let class = classify(head, &b.mac);
        if !st.filter.accepts(class, outer, inner) || !st.filter.accepts_class_within(class, has) {
            continue;
        }
        if !st.takes_group(class, || head.get(..6).and_then(|d| d.try_into().ok()).unwrap_or([0; 6])) {
            continue;
        }
        // The frame as it went out: with its tag inline where the send
        // wrote it (as `copy_tagged` writes it).
        let tag_inline = inline.map(tag_bytes);
        let macs = data.len().min(12);
        let whole: &[&[u8]] = match &tag_inline {
            Some(t) => &[&data[..macs], t, &data[macs..]],
            None => &[data],
        };
        let keep = super::program::keep_parts(st, whole, stripped);
        if keep == 0 {
            continue;
        }
        let (tag_flags, tci) = rx_tag(stripped, head);
        let len = (data.len() + tag.added_len()) as u32;
        let flags = frame_flags::OUTBOUND | tag_flags;
        if let Some(placer) = &mut placer {
            // Rings (none placed while they detach).
            let placed = placer.as_mut().and_then(|p| {
                let desc = RxDesc { addr: 0, len: 0, origlen: len, timestamp_ns: ts, flags, tci, segs: 0, seg_size: 0 };
                p.place_parts(desc, whole, keep)
            });
            tally.frame(placed.is_some(), len, placed == Some(true));
            continue;
        }
        let snaplen = super::program::snap_with(st.snaplen, keep);
        let caplen = if snaplen != 0 { len.min(snaplen) } else { len };
        let flags = if caplen < len { flags | frame_flags::TRUNCATED } else { flags };
        let hdr = FrameHeader { caplen, origlen: len, timestamp_ns: ts, flags, tci, segs: 0, seg_size: 0 };
        let pushed = st.ring.push_with(&hdr, |d| copy_tagged(data, inline, d));
        tally.frame(pushed.is_ok(), len, pushed.unwrap_or(false));
    }
    drop(placer);
    tally.credit(counters, &b.counters);
    if let Some(g) = &mut rg {
        super::rings::placed(g, done);
    }
    drop(rg);
    st.serve_reads(done);
}
