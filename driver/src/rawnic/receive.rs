//! The data path: frames NDIS indicated, handed to every handle whose
//! filters accept them, and send completions counted per handle.

use super::Rawnic;
use super::client::{AtomicCounters, ClientState, RxTally};
use super::rings::RxPlacer;
use crate::kernel::nbl::{CHUNK, Chunk, Drained, Indication, Judged, MappedFrame, ReceivedFrame, RecvFrame};
use crate::kernel::protocol::{Binding, NdisStatus};
use crate::kernel::time;
use alloc::sync::Arc;
use rawnic_logic::filter::{DestClass, classify, classify_header, ethertypes_on_wire, header_class_in};
use rawnic_logic::vlan::rx_tag;
use rawnic_proto::ring::RxDesc;
use rawnic_proto::{FrameHeader, frame_flags};

/// Frames at least this long are retained (not copied) when the handle has
/// no read waiting: the copy into the queue is saved. Never a frame NDIS
/// looped back from another protocol's send (`LOOPBACK`): that send's
/// completion waits for the NBL, and a retained frame would hold it until
/// a reader reads (`Chunk::retain` refuses them too). They are copied, and
/// the NBL goes back within the indication.
const RETAIN_MIN: u32 = 256;
/// Most retained frames one handle's queue holds. A handle that reaches it
/// has a reader that fell behind: its retained frames are copied into the
/// queue (their NBLs returned) and its frames are copied, not retained,
/// until its queue is empty again. (Retaining more would only move the
/// copy later, at the cost of a retention and a return per frame.)
const RETAIN_PER_CLIENT: usize = 16;

#[derive(Clone, Copy)]
struct Meta {
    len: u32,
    /// The EtherType, when the frame has a whole header (`ethertype`).
    outer: u16,
    inner: Option<u16>,
    class: DestClass,
    /// When the driver took the frame: nanoseconds after `base`
    /// (a u32, so the 32 frames' metadata stays small on the kernel
    /// stack; a chunk is walked in far less than 4 s).
    dt: u32,
    /// The record's flags (all in the low byte): `OUTBOUND | LOOPBACK`
    /// when NDIS looped it back from another protocol's send, `VLAN` and
    /// `TAGGED` for its tag, `COALESCED` when the NIC coalesced it (RSC,
    /// URO); `TRUNCATED` only when its header could not be read (no
    /// mapping under low resources), so it is not known who wants it
    /// (see `unread`), never passed on to a record (`record_flags`); nor
    /// `NO_TYPE`.
    flags: u8,
}

/// `Meta`'s own flag (a bit no record flag uses): the frame has no
/// EtherType, as it is too short for one (`Meta::ethertype`). Worked out
/// once, where the header is read.
const NO_TYPE: u16 = 0x80;
const _: () = {
    use frame_flags::*;
    assert!(NO_TYPE & (TRUNCATED | VLAN | OUTBOUND | LOOPBACK | TAGGED | COALESCED) == 0 && NO_TYPE <= 0xff);
};
const _: () = assert!(core::mem::size_of::<Meta>() == 16);

impl Meta {
    const EMPTY: Meta = Meta { len: 0, outer: 0, inner: None, class: DestClass::OtherHost, dt: 0, flags: 0 };

    /// The flags a record starts with: `TRUNCATED` is left to the copy
    /// (memory that could not be mapped for the header may be by then).
    #[inline(always)]
    fn record_flags(&self) -> u16 {
        u16::from(self.flags) & !(frame_flags::TRUNCATED | NO_TYPE)
    }

    /// The frame's EtherType; `None` when it has no whole header: a runt
    /// (`NO_TYPE`: shorter than 14 bytes, or 12 with its tag stripped
    /// (`VLAN`): on the wire, its addresses then TPID 0x8100), or one
    /// whose header could not be read (`TRUNCATED`). Such a frame matches
    /// no handle's EtherType list, not even 0x0000.
    #[inline(always)]
    fn ethertype(&self) -> Option<u16> {
        (u16::from(self.flags) & (frame_flags::TRUNCATED | NO_TYPE) == 0).then_some(self.outer)
    }
}

/// What frame `f`'s first bytes and its NBL say about it: its `Meta` (but
/// the stamp, `dt` 0) and its TCI. `coalesced`: its NBL says the NIC
/// coalesced it.
#[inline(always)]
fn frame_meta(f: &RecvFrame<'_>, coalesced: bool, mac: &[u8; 6]) -> (Meta, u16) {
    let mut scratch = [0u8; 18];
    meta_of(f, f.head(&mut scratch), coalesced, mac)
}

/// `frame_meta` for a frame whose first MDL does not map it all (or that
/// came from a send on this host): out of the one-pass path's line.
#[cold]
#[inline(never)]
fn frame_meta_walked(f: &RecvFrame<'_>, coalesced: bool, mac: &[u8; 6]) -> (Meta, u16) {
    frame_meta(f, coalesced, mac)
}

/// `frame_meta`, with the frame's first bytes (up to 18) read already.
#[inline(always)]
fn meta_of(f: &RecvFrame<'_>, hdr: &[u8], coalesced: bool, mac: &[u8; 6]) -> (Meta, u16) {
    // Most frames: a whole header, no tag (from the NIC or inline), not
    // looped back, not coalesced. Their flags and TCI are 0, and only the
    // addresses and the EtherType are read (`meta_general` gives the same).
    if let (0, false, false) = (f.tci(), f.is_loopback(), coalesced) {
        if let Some(m) = meta_plain(hdr, f.len(), mac) {
            return (m, 0);
        }
    }
    meta_general(f.len(), f.tci(), f.is_loopback(), hdr, coalesced, mac)
}

/// `meta_of` for a frame with no tag from the NIC, not looped back and not
/// coalesced, when its header is whole and carries no tag: `None` for any
/// other.
#[inline(always)]
fn meta_plain(hdr: &[u8], len: usize, mac: &[u8; 6]) -> Option<Meta> {
    let class = plain_class(hdr, mac)?;
    let outer = u16::from_be_bytes([hdr[12], hdr[13]]);
    Some(Meta { len: len as u32, outer, inner: None, class, dt: 0, flags: 0 })
}

/// `meta_of` for any frame: its length, the tag the NIC stripped (`tci`),
/// whether NDIS looped it back, and its first bytes (up to 18).
#[inline(always)]
fn meta_general(len: usize, f_tci: u16, loopback: bool, hdr: &[u8], coalesced: bool, mac: &[u8; 6]) -> (Meta, u16) {
    // As on the wire: a tag the NIC stripped makes the EtherType 0x8100.
    let (outer, inner) = ethertypes_on_wire(hdr, f_tci);
    let outer = outer.unwrap_or(0);
    let (mut flags, tci) = rx_tag(f_tci, hdr);
    // A whole header is 14 bytes, 18 with a tag inline (the EtherType is
    // behind it): one read short of that (a mapping refused under low
    // resources) could not be read, and the frame cannot be classified.
    let tag_inline = f_tci == 0 && matches!(outer, rawnic_proto::TPID_8021Q | 0x88a8);
    if hdr.len() < len.min(if tag_inline { 18 } else { 14 }) {
        flags |= frame_flags::TRUNCATED;
    }
    // Too short for an EtherType (a whole header is 14 bytes; 12 when
    // the NIC stripped the tag, whose TPID was the EtherType on the wire).
    let whole = if flags & frame_flags::VLAN != 0 { 12 } else { 14 };
    if len < whole {
        flags |= NO_TYPE;
    }
    if loopback {
        flags |= frame_flags::OUTBOUND | frame_flags::LOOPBACK;
    }
    // A coalesced unit may be far longer than the MTU: like every frame,
    // it is delivered as NDIS gave it, whatever its length.
    if coalesced {
        flags |= frame_flags::COALESCED;
    }
    let meta = Meta {
        len: len as u32,
        outer,
        inner,
        class: classify(&hdr[..hdr.len().min(6)], mac),
        dt: 0,
        flags: u8::try_from(flags).unwrap_or(0),
    };
    (meta, tci)
}

/// Whether a handle's filters take a frame, which `m` describes (`dst`:
/// its destination address, read only for group frames of handles with a
/// multicast list to match).
#[inline(always)]
fn wants(st: &ClientState, m: &Meta, dst: impl FnOnce() -> [u8; 6]) -> bool {
    let loopback = u16::from(m.flags) & frame_flags::LOOPBACK != 0;
    st.filter.accepts(m.class, m.ethertype(), m.inner)
        && (!loopback || st.local_sends.wants(false))
        && st.takes_group(m.class, dst)
}

/// The destination address of a frame mapped whole.
#[inline(always)]
fn dst_in(bytes: &[u8]) -> [u8; 6] {
    bytes.first_chunk::<6>().copied().unwrap_or([0; 6])
}

/// A frame a handle's filters do not take: when its header could not be
/// read, the handle may have wanted it, and counts it as dropped (unless
/// it is a loopback the handle does not take, which it is known to be).
#[inline(always)]
fn unread(st: &ClientState, m: &Meta, tally: &mut RxTally) {
    let flags = u16::from(m.flags);
    if flags & frame_flags::TRUNCATED != 0 && (flags & frame_flags::LOOPBACK == 0 || st.local_sends.wants(false)) {
        tally.frame(false, m.len, false);
    }
}

/// Frame `f`'s destination address (read again only for group frames of
/// handles with a multicast list to match).
#[cold]
#[inline(never)]
fn dst_of(f: &RecvFrame<'_>) -> [u8; 6] {
    let mut scratch = [0u8; 6];
    f.head(&mut scratch).try_into().unwrap_or([0; 6])
}

/// What the handle's capture program keeps of frame `f`, which `m`
/// describes (`None`: the handle does not take it). A frame the program
/// could not read is counted as dropped, as `unread` counts a frame whose
/// header could not be read.
#[inline(always)]
fn kept(st: &ClientState, m: &Meta, f: &RecvFrame<'_>, tally: &mut RxTally) -> Option<u32> {
    match super::program::keep(st, f) {
        Some(0) => None,
        Some(keep) => Some(keep),
        None => {
            tally.frame(false, m.len, false);
            None
        }
    }
}

/// Frame `i`'s record flags (but `TRUNCATED`), TCI and coalescing counts.
#[inline(always)]
fn tag_and_segs(chunk: &Chunk<'_, '_, Rawnic>, i: usize, m: &Meta) -> (u16, u16, u16, u16) {
    let flags = m.record_flags();
    if flags & (frame_flags::TAGGED | frame_flags::COALESCED) == 0 {
        // Most frames: nothing to read again.
        return (flags, 0, 0, 0);
    }
    tag_and_segs_again(chunk, i, m)
}

/// `tag_and_segs` for a frame with a tag or coalesced: what `Meta` does
/// not keep is read again.
#[cold]
#[inline(never)]
fn tag_and_segs_again(chunk: &Chunk<'_, '_, Rawnic>, i: usize, m: &Meta) -> (u16, u16, u16, u16) {
    // A tag stripped into the NBL's info, or one inline (even TCI 0): the
    // record says which, with the TCI.
    let flags = m.record_flags();
    // The TCI is read again (not kept in `Meta`, which stays 16 bytes on
    // the stack) for the few frames with a tag.
    let tci = if flags & frame_flags::TAGGED != 0 {
        let mut scratch = [0u8; 18];
        let frame = chunk.frames()[i];
        rx_tag(frame.tci(), frame.head(&mut scratch)).1
    } else {
        0
    };
    // Likewise the coalescing counts, for coalesced frames.
    let (segs, seg_size) = if flags & frame_flags::COALESCED != 0 {
        chunk.coalesced(i).map_or((0, 0), |c| (c.segs, c.seg_size))
    } else {
        (0, 0)
    };
    (flags, tci, segs, seg_size)
}

/// A record's header for frame `i` of a chunk, cut to `snaplen` (0 keeps
/// all).
fn record_header(chunk: &Chunk<'_, '_, Rawnic>, i: usize, m: &Meta, base: u64, snaplen: u32) -> FrameHeader {
    let caplen = if snaplen != 0 { m.len.min(snaplen) } else { m.len };
    let (mut flags, tci, segs, seg_size) = tag_and_segs(chunk, i, m);
    if caplen < m.len {
        flags |= frame_flags::TRUNCATED;
    }
    FrameHeader { caplen, origlen: m.len, timestamp_ns: base + m.dt as u64, flags, tci, segs, seg_size }
}

/// A chunk's frames that a handle with rings accepts, copied into its UMEM
/// (the handle's lock is held), and counted (`counters`: the handle's and
/// the binding's) before they are published. Kept out of `receive`, whose
/// frame is on the receive path's kernel stack budget.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn into_rings(
    r: &super::rings::SharedRings,
    st: &super::client::ClientState,
    chunk: &Chunk<'_, '_, Rawnic>,
    meta: &[Meta],
    base: u64,
    tally: &mut RxTally,
    counters: (&AtomicCounters, &AtomicCounters),
    done: &mut super::client::Completions,
    at: crate::kernel::sync::AtDispatch<'_>,
) {
    let mut g = r.lock_dpr(at);
    let mut placer = super::rings::RxPlacer::new(&mut g, st.snaplen);
    let frames = chunk.frames();
    for (i, m) in meta.iter().enumerate() {
        if !wants(st, m, || dst_of(&frames[i])) {
            unread(st, m, tally);
            continue;
        }
        let Some(keep) = kept(st, m, &frames[i], tally) else { continue };
        let placed = placer.as_mut().and_then(|p| {
            let (flags, tci, segs, seg_size) = tag_and_segs(chunk, i, m);
            let desc = RxDesc {
                addr: 0,
                len: 0,
                origlen: m.len,
                timestamp_ns: base + m.dt as u64,
                flags,
                tci,
                segs,
                seg_size,
            };
            p.place(desc, &frames[i], keep)
        });
        tally.frame(placed.is_some(), m.len, placed == Some(true));
    }
    drop(placer);
    tally.credit(counters.0, counters.1);
    super::rings::placed(&mut g, done);
}

/// What the one-pass path counts as it goes: the handle's tally, and the
/// frames and bytes the binding received.
struct SoleSums<'a> {
    tally: &'a mut RxTally,
    frames: &'a mut u64,
    bytes: &'a mut u64,
}

/// A frame of the one-pass path (`into_sole_rings`) that `sole_batch` does
/// not take: classified, stamped and copied into the UMEM by `placer`. Out
/// of the NBL walk's line.
#[inline(never)]
fn sole_other(
    b: &Binding<Rawnic>,
    st: &ClientState,
    f: &RecvFrame<'_>,
    coalesced: Option<crate::kernel::nbl::Coalesced>,
    placer: &mut RxPlacer<'_>,
    sums: &mut SoleSums<'_>,
) {
    // One look at the frame's first MDL serves its header and its copy,
    // when it maps the whole frame (most do).
    let whole = f.in_place();
    let (m, tci) = match whole {
        Some(bytes) => meta_of(f, &bytes[..bytes.len().min(18)], coalesced.is_some(), &b.mac),
        None => frame_meta_walked(f, coalesced.is_some(), &b.mac),
    };
    *sums.frames += 1;
    *sums.bytes += u64::from(m.len);
    if !wants(st, &m, || dst_of(f)) {
        unread(st, &m, sums.tally);
        return;
    }
    let (segs, seg_size) = coalesced.map_or((0, 0), |c| (c.segs, c.seg_size));
    let desc = RxDesc {
        addr: 0,
        len: 0,
        origlen: m.len,
        // Stamped as the driver takes it (see `receive`).
        timestamp_ns: time::unix_ns(),
        flags: m.record_flags(),
        tci,
        segs,
        seg_size,
    };
    let placed = match whole {
        Some(bytes) => placer.place_in_place(desc, bytes),
        None => placer.place(desc, f, u32::MAX),
    };
    sums.tally.frame(placed.is_some(), m.len, placed == Some(true));
}

/// Frames of the one-pass path mapped whole from plain NBLs
/// (`Indication::drain_mapped`) that the handle takes on their class alone
/// (`takes_on_class`: most frames, with nothing in their records but their
/// lengths and stamps), in order: placed together
/// (`RxPlacer::place_batch`, which stamps them, out of the NBL walk's
/// line).
#[inline(always)]
fn sole_batch(frames: &[MappedFrame<'_>], placer: &mut RxPlacer<'_>, sums: &mut SoleSums<'_>) {
    *sums.frames += frames.len() as u64;
    *sums.bytes += placer.place_batch(frames, sums.tally);
}

/// Every destination class (bit `class as u8` each).
const ALL_CLASSES: u8 = {
    use DestClass::*;
    (1 << Directed as u8) | (1 << Broadcast as u8) | (1 << Multicast as u8) | (1 << OtherHost as u8)
};

/// `sole_batch` for a handle that takes some frames only with a look at
/// more than their class (`RxFilter::taken_whole_by_class` false): the
/// frames (each with a whole untagged header) are classified, those the
/// handle wants kept, in order, and placed together. Out of the NBL walk's
/// line: called once per batch.
#[inline(never)]
fn sole_batch_filtered(
    b: &Binding<Rawnic>,
    st: &ClientState,
    frames: &mut [MappedFrame<'_>],
    placer: &mut RxPlacer<'_>,
    sums: &mut SoleSums<'_>,
) {
    *sums.frames += frames.len() as u64;
    let mut bytes_seen = 0u64;
    // Frames kept so far: `frames[..kept]` (each is read before it is
    // written over).
    let mut kept = 0;
    let taken = st.filter.taken_by_class();
    for i in 0..frames.len() {
        let frame = frames[i];
        let bytes = frame.bytes();
        bytes_seen += u64::from(frame.len());
        let Some(m) = meta_plain(bytes, bytes.len(), &b.mac) else {
            // (Not seen: the walk gathers only frames with a whole
            // untagged header.)
            placer.place_batch(&frames[..kept], sums.tally);
            kept = 0;
            sole_mapped_other(b, st, bytes, placer, sums.tally);
            continue;
        };
        // `wants`, for a frame whose flags are 0 (and `unread` does nothing
        // for it).
        if taken & (1 << m.class as u8) == 0
            && !(st.filter.accepts(m.class, Some(m.outer), None) && st.takes_group(m.class, || dst_in(bytes)))
        {
            continue;
        }
        // Moved down only after a frame that was not kept.
        if kept != i {
            if let Some(slot) = frames.get_mut(kept) {
                *slot = frame;
            }
        }
        kept += 1;
    }
    *sums.bytes += bytes_seen;
    placer.place_batch(&frames[..kept], sums.tally);
}

/// Whether a handle whose `RxFilter::taken_by_class` is `taken` takes a
/// frame on its class alone: one with a whole untagged header
/// (`meta_plain`) whose destination class is in `taken` (its flags are 0:
/// `wants` then takes it whatever else it is).
#[inline(always)]
fn takes_on_class(bytes: &[u8], taken: u8, mac: &[u8; 6]) -> bool {
    // `plain_class(bytes, mac)` in `taken`, without the class as a value.
    untagged_header(bytes).is_some_and(|h| header_class_in(h, mac, taken))
}

/// `meta_plain`'s class: `None` for a frame without a whole untagged
/// header.
#[inline(always)]
fn plain_class(hdr: &[u8], mac: &[u8; 6]) -> Option<DestClass> {
    untagged_header(hdr).map(|h| classify_header(h, mac))
}

/// A frame's whole header when it carries no tag inline (`plain_class`).
#[inline(always)]
fn untagged_header(hdr: &[u8]) -> Option<&[u8; 14]> {
    let h = hdr.first_chunk::<14>()?;
    // The EtherType as on the wire, compared before it is swapped.
    let wire = u16::from_ne_bytes([h[12], h[13]]);
    if wire == u16::from_ne_bytes([0x81, 0x00]) || wire == u16::from_ne_bytes([0x88, 0xa8]) {
        return None;
    }
    Some(h)
}

/// What becomes of a frame of the one-pass path mapped whole from a plain
/// NBL that the handle does not take on its class alone (`takes_on_class`):
/// with a whole untagged header, it joins the batch if the handle wants it
/// (`wants`, for a frame whose flags are 0: `unread` does nothing for it)
/// and is only counted if not; any other (a runt, a tag inline) goes
/// alone (`sole_refused`). Out of the NBL walk's loop.
#[inline(never)]
fn judged(b: &Binding<Rawnic>, st: &ClientState, bytes: &[u8]) -> Judged {
    let Some(m) = meta_plain(bytes, bytes.len(), &b.mac) else { return Judged::Alone };
    // Its class alone does not make it taken (`takes_on_class`).
    if st.filter.accepts(m.class, Some(m.outer), None) && st.takes_group(m.class, || dst_in(bytes)) {
        Judged::Batch
    } else {
        Judged::Skip
    }
}

/// A frame of the one-pass path mapped whole from a plain NBL that the
/// handle does not take on its class alone (`takes_on_class`) and that
/// goes alone (`judged`): classified, and placed (alone, after those
/// before it) if the handle wants it.
#[inline(never)]
fn sole_refused(
    b: &Binding<Rawnic>,
    st: &ClientState,
    frame: MappedFrame<'_>,
    placer: &mut RxPlacer<'_>,
    sums: &mut SoleSums<'_>,
) {
    let bytes = frame.bytes();
    let Some(m) = meta_plain(bytes, bytes.len(), &b.mac) else {
        *sums.frames += 1;
        *sums.bytes += u64::from(frame.len());
        sole_mapped_other(b, st, bytes, placer, sums.tally);
        return;
    };
    // `wants`, for a frame whose flags are 0 (and `unread` does nothing for
    // it), whose class alone does not make it taken.
    if st.filter.accepts(m.class, Some(m.outer), None) && st.takes_group(m.class, || dst_in(bytes)) {
        sole_batch(&[frame], placer, sums);
    } else {
        *sums.frames += 1;
        *sums.bytes += u64::from(frame.len());
    }
}

/// A frame of `sole_batch` without a whole untagged header (a runt, or a
/// tag inline): classified, and if the handle wants it stamped and placed.
#[cold]
#[inline(never)]
fn sole_mapped_other(
    b: &Binding<Rawnic>,
    st: &ClientState,
    bytes: &[u8],
    placer: &mut RxPlacer<'_>,
    tally: &mut RxTally,
) {
    let (m, tci) = meta_general(bytes.len(), 0, false, &bytes[..bytes.len().min(18)], false, &b.mac);
    if !wants(st, &m, || dst_in(bytes)) {
        unread(st, &m, tally);
        return;
    }
    // Stamped as the driver takes it (see `receive`).
    let timestamp_ns = time::unix_ns();
    let desc =
        RxDesc { addr: 0, len: 0, origlen: m.len, timestamp_ns, flags: m.record_flags(), tci, segs: 0, seg_size: 0 };
    let placed = placer.place_in_place(desc, bytes);
    tally.frame(placed.is_some(), m.len, placed == Some(true));
}

/// Frames drained per hold of a handle's and its rings' locks: what another
/// CPU waiting for either may spin through (about 6 us at 100 ns a frame).
/// Counted in frames, not NBLs: an NBL may carry several NET_BUFFERs (the
/// hold ends after the NBL that reaches the count).
const DRAIN_BATCH: usize = 64;

/// An indication whose one receiving handle has rings (`ClientTable::
/// sole_receiver`): each frame is classified, stamped and copied into the
/// UMEM in one pass over the NBLs, a batch of frames mapped whole at a time
/// (`Indication::drain_mapped`: `sole_batch`, any other frame alone), each
/// NBL going back once its frames are copied, with the handle's and the
/// rings' locks held for about `DRAIN_BATCH` frames at a time. Gives the waits to
/// complete once the locks are released, when it drained anything. It stops when the
/// handle is not open, has no rings (or rings that detach) or has a capture program (at the start, or between batches
/// if a close or a detach came meanwhile): the rest is walked a chunk at a
/// time.
fn into_sole_rings(
    b: &Arc<Binding<Rawnic>>,
    c: &super::client::Client,
    ind: &mut Indication<'_, Rawnic>,
    at: crate::kernel::sync::AtDispatch<'_>,
) -> Option<super::client::Completions> {
    // Waits the frames make ready (one, usually: a handle's reader).
    let mut done = None;
    loop {
        if !ind.is_fresh() {
            return done;
        }
        let mut guard = c.state.lock_dpr(at);
        let st = &mut *guard;
        // A handle with a capture program has its frames walked a chunk at
        // a time (`into_rings` runs it): the one pass stays free of it.
        if st.filter.receives_nothing() || !matches!(st.mode, super::client::Mode::Open { .. }) || st.program.is_some()
        {
            return done;
        }
        // (Borrowed, not cloned: the handle's lock, held, keeps them.)
        let Some(r) = st.rings.as_deref() else { return done };
        let mut tally = RxTally::default();
        let (mut frames, mut bytes) = (0u64, 0u64);
        let more = {
            let mut g = r.lock_dpr(at);
            let st = &*st;
            let mut sums = SoleSums { tally: &mut tally, frames: &mut frames, bytes: &mut bytes };
            // The placer (none while the rings detach: every frame is then
            // dropped) is a plain local on the path that places, not an
            // `Option` looked at per frame.
            let more = match super::rings::RxPlacer::new(&mut g, st.snaplen) {
                Some(mut placer) => {
                    // The classes the handle takes whatever else a frame is
                    // (most frames' one test, in the NBL walk; a frame of
                    // another class is judged alone). A handle that takes
                    // frames only with a look at more (its EtherType list,
                    // the multicast groups it joined) has every frame with
                    // a whole untagged header gathered, and each batch
                    // filtered (`sole_batch_filtered`).
                    let taken = st.filter.taken_by_class();
                    let filtered = !st.filter.taken_whole_by_class() && (taken == 0 || !st.multicast.is_empty());
                    let taken = if filtered { ALL_CLASSES } else { taken };
                    let mac = &b.mac;
                    let take = move |f: &MappedFrame<'_>| takes_on_class(f.bytes(), taken, mac);
                    let judge = |f: &MappedFrame<'_>| judged(b, st, f.bytes());
                    ind.drain_mapped(DRAIN_BATCH, take, judge, |d| match d {
                        Drained::Mapped(frames) if filtered => {
                            sole_batch_filtered(b, st, frames, &mut placer, &mut sums)
                        }
                        Drained::Mapped(frames) => sole_batch(frames, &mut placer, &mut sums),
                        Drained::Refused(frame) => sole_refused(b, st, frame, &mut placer, &mut sums),
                        Drained::Skipped(frame) => {
                            *sums.frames += 1;
                            *sums.bytes += u64::from(frame.len());
                        }
                        Drained::Other(f, coalesced) => sole_other(b, st, f, coalesced, &mut placer, &mut sums),
                    })
                }
                // The rings detach (never seen: a detach takes them off the
                // handle first, under its lock, which this holds): the rest
                // is walked a chunk at a time.
                None => return done,
            };
            // Counted before they are published: a user who finds the
            // frames on the rx ring and then asks for the statistics finds
            // them counted.
            tally.credit(&c.counters, &b.counters);
            AtomicCounters::add(&b.counters.rx_frames, frames);
            AtomicCounters::add(&b.counters.rx_bytes, bytes);
            super::rings::placed(&mut g, done.get_or_insert_with(super::client::Completions::new));
            more
        };
        drop(guard);
        if more != Some(true) {
            return done;
        }
    }
}

/// Walks an indication: classifies each frame once, then hands it to each
/// open handle whose filters accept it.
pub(super) fn receive(b: &Arc<Binding<Rawnic>>, ind: &mut Indication<'_, Rawnic>) {
    let table = b.clients.lock_at(ind.irql());
    if ind.miniport_low_while_retaining() {
        // The NIC is short of receive buffers and some are ours: each
        // handle copies its retained frames into their queue slots, and
        // their NBLs go back as this indication ends (a rare, cold path).
        super::binding::ClientTable::materialize_retained(&table);
    }
    let rings_done = table.sole_receiver().and_then(|c| into_sole_rings(b, c, ind, table.at_dispatch()));
    if ind.walked() {
        drop(table);
        if let Some(done) = rings_done {
            done.complete();
        }
        return;
    }
    let mut done = super::client::Completions::new();
    while let Some(mut chunk) = ind.next_chunk() {
        let base = time::unix_ns();
        let n = chunk.frames().len();
        let mut meta = [Meta::EMPTY; CHUNK];
        let mut bytes = 0u64;
        for (i, (m, f)) in meta.iter_mut().zip(chunk.frames()).enumerate() {
            *m = Meta {
                // Each frame is stamped as the driver takes it from the
                // indication, with the precise system time (no anchor
                // taken at load to drift from).
                dt: time::unix_ns().saturating_sub(base).min(u32::MAX as u64) as u32,
                ..frame_meta(f, chunk.coalesced(i).is_some(), &b.mac).0
            };
            bytes += f.len() as u64;
        }
        // The binding's count, before any handle can have these frames
        // (a chunk at a time: a ring's producer moves per chunk, and a
        // reader may take a chunk's frames while the next is walked).
        AtomicCounters::add(&b.counters.rx_frames, n as u64);
        AtomicCounters::add(&b.counters.rx_bytes, bytes);
        if table.receivers == 0 {
            continue;
        }
        for c in table.iter() {
            let mut guard = c.state.lock_dpr(table.at_dispatch());
            let st = &mut *guard;
            // A handle being cleaned up (still listed for a moment) gets
            // nothing.
            if st.filter.receives_nothing() || !matches!(st.mode, super::client::Mode::Open { .. }) {
                continue;
            }
            let mut tally = RxTally::default();
            // A handle with rings gets its frames there, not in its queue.
            if let Some(r) = st.rings.clone() {
                let counters = (&c.counters, &b.counters);
                into_rings(&r, st, &chunk, &meta[..n], base, &mut tally, counters, &mut done, table.at_dispatch());
                drop(guard);
                continue;
            }
            for (i, m) in meta.iter().enumerate().take(n) {
                let frame = chunk.frames()[i];
                if !wants(st, m, || dst_of(&frame)) {
                    unread(st, m, &mut tally);
                    continue;
                }
                let Some(keep) = kept(st, m, &frame, &mut tally) else { continue };
                let hdr = record_header(&chunk, i, m, base, super::program::snap_with(st.snaplen, keep));
                let flags = hdr.flags;
                let mut queued = None;
                if st.behind && st.ring.is_empty() {
                    st.behind = false;
                }
                let looped = u16::from(m.flags) & frame_flags::LOOPBACK != 0;
                if m.len >= RETAIN_MIN && !looped && !st.behind && st.reads.is_empty() && !chunk.must_copy() {
                    if st.ring.pending_count() >= RETAIN_PER_CLIENT {
                        st.ring.materialize_all();
                        st.behind = true;
                    } else if let Some(r) = chunk.retain(i) {
                        queued = Some(st.ring.push_pending(&hdr, r).is_ok());
                    }
                }
                let (ok, cut) = match queued {
                    Some(ok) => (ok, flags & frame_flags::TRUNCATED != 0),
                    None => match st.ring.push_with(&hdr, |d| frame.copy_to(0, d)) {
                        Ok(cut) => (true, cut),
                        Err(_) => (false, false),
                    },
                };
                tally.frame(ok, m.len, cut);
            }
            // Counted before a reader can have them (under the handle's
            // lock): a read that returns frames, and the statistics asked
            // for after it, agree.
            tally.credit(&c.counters, &b.counters);
            st.serve_reads(&mut done);
            drop(guard);
        }
    }
    drop(table);
    if let Some(d) = rings_done {
        d.complete();
    }
    done.complete();
}

/// Counts completed sends against their handles and the binding.
pub(super) fn send_complete(b: &Binding<Rawnic>, done: &mut dyn Iterator<Item = (u64, u32, NdisStatus)>) {
    /// Completions counted together: consecutive ones of one handle (a
    /// batch comes back as a run of NBLs with the same tag), or all.
    #[derive(Default, Clone, Copy)]
    struct Tally {
        ok: u64,
        bytes: u64,
        bad: u64,
    }
    impl Tally {
        fn add_to(&self, k: &AtomicCounters) {
            k.sends_done(self.ok, self.bytes, self.bad);
        }
    }
    let table = b.clients.lock();
    let mut all = Tally::default();
    let mut run = Tally::default();
    let mut run_tag = 0;
    let flush = |run: &mut Tally, tag: u64, all: &mut Tally| {
        if let Some(c) = table.by_tag(tag) {
            run.add_to(&c.counters);
        }
        all.ok += run.ok;
        all.bytes += run.bytes;
        all.bad += run.bad;
        *run = Tally::default();
    };
    for (tag, bytes, status) in done {
        if tag != run_tag {
            if run.ok + run.bad != 0 {
                flush(&mut run, run_tag, &mut all);
            }
            run_tag = tag;
        }
        if status == NdisStatus::SUCCESS {
            run.ok += 1;
            run.bytes += bytes as u64;
        } else {
            run.bad += 1;
        }
    }
    if run.ok + run.bad != 0 {
        flush(&mut run, run_tag, &mut all);
    }
    drop(table);
    all.add_to(&b.counters);
}
