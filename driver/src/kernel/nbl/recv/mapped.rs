//! The one-pass drain of an indication a batch at a time
//! (`Indication::drain_mapped`): the frames of plain NBLs that their first
//! MDL maps whole are gathered and handed on together.

use super::super::{first_nb, nb_data_length, nb_fields, next_nbl, tci_from_info};
use super::{Coalesced, Indication, RecvFrame, coalesced_info, uro_registered};
use crate::kernel::protocol::Protocol;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};
use ndis_sys::*;

/// Frames `Indication::drain_mapped` gathers at most before it hands them
/// on.
pub const MAPPED_BATCH: usize = 32;

/// A received frame mapped in place (`Indication::drain_mapped`): its
/// bytes, valid during the indication.
///
/// # Invariants
/// `start` is not null, and `len` bytes from it are mapped and unchanged
/// for `'a`.
#[derive(Clone, Copy)]
pub struct MappedFrame<'a> {
    start: *const u8,
    /// A NET_BUFFER's `DataLength`.
    len: u32,
    _bytes: PhantomData<&'a [u8]>,
}

impl<'a> MappedFrame<'a> {
    /// Its length.
    #[inline(always)]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it has no bytes.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its bytes.
    #[inline(always)]
    pub fn bytes(&self) -> &'a [u8] {
        self.first(self.len)
    }

    /// Its first `n` bytes (all of them if it has fewer).
    #[inline(always)]
    pub fn first(&self, n: u32) -> &'a [u8] {
        // SAFETY: `n.min(len)` of the `len` bytes mapped for `'a`
        // (invariant).
        unsafe { core::slice::from_raw_parts(self.start, n.min(self.len) as usize) }
    }
}

/// What `Indication::drain_mapped` hands on.
pub enum Drained<'d, 'a> {
    /// Frames of plain NBLs mapped whole that the caller's test takes, in
    /// order.
    Mapped(&'d mut [MappedFrame<'a>]),
    /// A frame of a plain NBL mapped whole that the caller's test does not
    /// take and its judge hands on alone (`Judged::Alone`), after the
    /// frames gathered before it.
    Refused(MappedFrame<'a>),
    /// A frame of a plain NBL mapped whole that the caller's test does not
    /// take and its judge skips (`Judged::Skip`): only to be counted
    /// (frames gathered before it may be handed after it).
    Skipped(MappedFrame<'a>),
    /// Any other frame, with its NBL's coalescing.
    Other(&'d RecvFrame<'a>, Option<Coalesced>),
}

/// What becomes of a frame of a plain NBL mapped whole that the caller's
/// test (`Indication::drain_mapped`'s `take`) did not take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// It joins the batch after all.
    Batch,
    /// It is handed alone (`Drained::Refused`), after the batch so far.
    Alone,
    /// It is only counted (`Drained::Skipped`).
    Skip,
}

/// The first `n` of `frames` (at most all), which were written.
///
/// # Safety
/// `frames[..n]` were all written.
#[inline(always)]
unsafe fn written<'f, 'a>(frames: &'f mut [MaybeUninit<MappedFrame<'a>>], n: usize) -> &'f mut [MappedFrame<'a>] {
    let n = n.min(frames.len());
    // SAFETY: the first `n` entries were written (caller); `MaybeUninit<T>`
    // has `T`'s layout.
    unsafe { core::slice::from_raw_parts_mut(frames.as_mut_ptr().cast::<MappedFrame<'a>>(), n) }
}

/// Whether an indicated NBL is plain: no 802.1Q info, not looped back, not
/// coalesced (`coalesced_info`). `uro`: `uro_registered()`.
///
/// # Safety
/// `nbl` is an NBL of an indication the caller is inside of.
#[inline(always)]
unsafe fn plain(nbl: *const NET_BUFFER_LIST, uro: bool) -> bool {
    // SAFETY: per the caller; reading its info and flags.
    let x = unsafe { &*nbl };
    x.NetBufferListInfo[Ieee8021QNetBufferListInfo].is_null()
        && x.NblFlags & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET == 0
        // SAFETY: as above.
        && unsafe { coalesced_info(nbl, uro) }.is_none()
}

/// Hands each frame of an NBL that is not plain to `f`, alone
/// (`Drained::Other`); returns how many.
///
/// # Safety
/// `nbl` is an NBL of the indication `'a` is, which the caller is inside of.
#[cold]
#[inline(never)]
unsafe fn each_other<'a, F: FnMut(Drained<'_, 'a>)>(nbl: *mut NET_BUFFER_LIST, uro: bool, f: &mut F) -> usize {
    // SAFETY: per the caller.
    let x = unsafe { &*nbl };
    let info = x.NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize;
    let tci = if info == 0 { 0 } else { tci_from_info(info) };
    let loopback = x.NblFlags & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET != 0;
    // Frames NDIS looped back from a send carry send info in the
    // coalescing slots, never coalescing.
    // SAFETY: per the caller.
    let coalesced = if loopback { None } else { unsafe { coalesced_info(nbl, uro) } };
    let mut handed = 0;
    let mut nb = first_nb(x);
    while let Some(p) = NonNull::new(nb) {
        // SAFETY: a NET_BUFFER of an indicated NBL.
        let nb_ref = unsafe { p.as_ref() };
        let frame = RecvFrame { nb: p, len: nb_data_length(nb_ref), tci, loopback, nbl: 0, _ind: PhantomData };
        nb = nb_fields(nb_ref).Next;
        f(Drained::Other(&frame, coalesced));
        handed += 1;
    }
    handed
}

/// Hands a frame of a plain NBL that its first MDL does not map whole to
/// `f`, alone.
#[cold]
#[inline(never)]
fn other_frame<'a, F: FnMut(Drained<'_, 'a>)>(nb: NonNull<NET_BUFFER>, len: u32, f: &mut F) {
    let frame = RecvFrame { nb, len, tci: 0, loopback: false, nbl: 0, _ind: PhantomData };
    f(Drained::Other(&frame, None));
}

/// The frame of `nb` if its first MDL maps it whole (the same answer each
/// time it is asked during the indication).
///
/// # Safety
/// `nb` is a NET_BUFFER of the indication `'a` is, which the caller is
/// inside of.
#[inline(always)]
unsafe fn mapped_frame<'a>(nb: NonNull<NET_BUFFER>) -> Option<MappedFrame<'a>> {
    // SAFETY: per the caller.
    let fields = nb_fields(unsafe { nb.as_ref() });
    // SAFETY: as above.
    let len = nb_data_length(unsafe { nb.as_ref() });
    // `mapped_run(nb, 0, len)`, with the bytes' end worked out in 64 bits
    // (two 32-bit figures: no overflow), one compare against the MDL's.
    let mdl = fields.CurrentMdl;
    if mdl.is_null() {
        return None;
    }
    // SAFETY: the NET_BUFFER's first MDL (caller).
    let m = unsafe { &*mdl };
    let mapped = m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
    let from = fields.CurrentMdlOffset;
    if !mapped || m.MappedSystemVa.is_null() || u64::from(from) + u64::from(len) > u64::from(m.ByteCount) {
        return None;
    }
    // SAFETY: a mapped MDL's `MappedSystemVa` covers its `ByteCount`
    // bytes, of which `[from, from + len)` is inside.
    let start = unsafe { m.MappedSystemVa.cast::<u8>().add(from as usize) }.cast_const();
    // `len` mapped bytes (a mapped MDL's address, not null, and an offset
    // inside it) that stay mapped and unchanged for the indication (`'a`).
    Some(MappedFrame { start, len, _bytes: PhantomData })
}

/// `Walk::gather` over the NET_BUFFERs of an NBL from `nb` (and those
/// after it), into `slots`: null when all were gathered, else the first
/// that must be handed otherwise or found the batch full.
///
/// # Safety
/// `nb` is null or a NET_BUFFER of an NBL of the indication `'a` is, which
/// the caller is inside of.
#[inline(always)]
unsafe fn gather_nbs<'a>(
    mut nb: *mut NET_BUFFER,
    slots: &mut Slots<'_, 'a>,
    take: &impl Fn(&MappedFrame<'a>) -> bool,
) -> *mut NET_BUFFER {
    while let Some(p) = NonNull::new(nb) {
        // SAFETY: a NET_BUFFER of an indicated NBL (caller), whose memory
        // stays mapped for the indication (`'a`).
        let frame = unsafe { mapped_frame(p) };
        match frame.filter(take) {
            Some(frame) if slots.push(frame) => {}
            _ => return nb,
        }
        // SAFETY: as above.
        nb = nb_fields(unsafe { p.as_ref() }).Next;
    }
    ptr::null_mut()
}

/// `gather_nbs` over an NBL's NET_BUFFERs from its first, `nb`, for a
/// caller that found an entry left in `slots` (`below_limit`): the first
/// frame is written without a look at the batch's end.
///
/// # Safety
/// As `gather_nbs`; and `slots.below_limit()` is true.
#[inline(always)]
unsafe fn gather_nbl<'a>(
    nb: *mut NET_BUFFER,
    slots: &mut Slots<'_, 'a>,
    take: &impl Fn(&MappedFrame<'a>) -> bool,
) -> *mut NET_BUFFER {
    let Some(p) = NonNull::new(nb) else { return nb };
    // SAFETY: a NET_BUFFER of an indicated NBL (caller), whose memory stays
    // mapped for the indication (`'a`).
    let frame = unsafe { mapped_frame(p) };
    let Some(frame) = frame.filter(take) else { return nb };
    // SAFETY: an entry is left (caller: below the walk's limit, itself at
    // most the array's size).
    unsafe { slots.push_with_room(frame) };
    // SAFETY: as above.
    let next = nb_fields(unsafe { p.as_ref() }).Next;
    // SAFETY: the next NET_BUFFER of the same NBL, or null.
    unsafe { gather_nbs(next, slots, take) }
}

/// Why `Walk::gather` stopped.
enum Stop {
    /// Every NBL was walked, or `max_frames` frames were handed.
    Done,
    /// The batch is full (the frame at `nb` is not gathered yet, or with
    /// `nb` null the NBL at `nbl`, not looked at yet).
    Full,
    /// The NBL at `nbl` is not plain (none of its frames handed yet).
    OtherNbl,
    /// The frame at `nb` is not mapped whole (not handed yet).
    OtherNb,
    /// The frame at `nb` is mapped whole, but the caller's test does not
    /// take it (not handed yet).
    Refused,
}

/// Where `Walk::gather` puts the frames it takes: the byte offset of the
/// next entry, moved on by each (no slot's place worked out from an
/// index), compared with the batch's end and the walk's limit.
///
/// # Invariants
/// `start` is the batch's first entry, of the array borrowed for `'f`;
/// `next` is at most the array's size in bytes, a multiple of an entry's,
/// and the entries before it were written.
struct Slots<'f, 'a> {
    start: *mut MappedFrame<'a>,
    next: usize,
    /// The offset of the entry at the walk's limit (at most the array's
    /// size): no NBL is begun there (`below_limit`).
    limit: usize,
    _frames: PhantomData<&'f mut [MaybeUninit<MappedFrame<'a>>; MAPPED_BATCH]>,
}

impl<'f, 'a> Slots<'f, 'a> {
    /// An entry's size.
    const ENTRY: usize = core::mem::size_of::<MappedFrame<'a>>();
    /// The array's size.
    const END: usize = MAPPED_BATCH * Self::ENTRY;

    /// The slots of `frames`, the first `first` of them written already,
    /// with the walk's limit at entry `limit`.
    #[inline(always)]
    fn new(frames: &'f mut [MaybeUninit<MappedFrame<'a>>; MAPPED_BATCH], first: usize, limit: usize) -> Self {
        // `MaybeUninit<T>` has `T`'s layout.
        let start = frames.as_mut_ptr().cast::<MappedFrame<'a>>();
        let next = first.min(MAPPED_BATCH) * Self::ENTRY;
        Slots { start, next, limit: limit.min(MAPPED_BATCH) * Self::ENTRY, _frames: PhantomData }
    }

    /// Writes `frame` into the next entry: `false` when none is left.
    #[inline(always)]
    fn push(&mut self, frame: MappedFrame<'a>) -> bool {
        if self.next == Self::END {
            return false;
        }
        // SAFETY: `next < END`, a multiple of an entry's size: an entry of
        // the array, borrowed (invariant).
        let slot = unsafe { self.start.byte_add(self.next) };
        // SAFETY: as above: the entry is the array's, and writable.
        unsafe { slot.write(frame) };
        self.next += Self::ENTRY;
        true
    }

    /// `push`, for a caller that knows an entry is left: `below_limit`
    /// said so, and nothing was written since.
    ///
    /// # Safety
    /// `next` is below the array's size (`below_limit` is true).
    #[inline(always)]
    unsafe fn push_with_room(&mut self, frame: MappedFrame<'a>) {
        debug_assert!(self.next < Self::END, "an entry is left");
        // SAFETY: `next < END` (caller), a multiple of an entry's size: an
        // entry of the array, borrowed (invariant).
        let slot = unsafe { self.start.byte_add(self.next) };
        // SAFETY: as above: the entry is the array's, and writable.
        unsafe { slot.write(frame) };
        self.next += Self::ENTRY;
    }

    /// Whether fewer entries than the walk's limit are written.
    #[inline(always)]
    fn below_limit(&self) -> bool {
        self.next < self.limit
    }

    /// How many entries are written.
    #[inline(always)]
    fn count(&self) -> usize {
        self.next / Self::ENTRY
    }
}

/// Where `Indication::drain_mapped` is in the indication's NBLs.
///
/// # Invariants
/// `nbl` is null or an NBL of the indication (`'a`), and `nb` null (the
/// NBL not begun) or one of its NET_BUFFERs (those before it handed);
/// `last` is the last NBL finished (null: none yet).
struct Walk {
    nbl: *mut NET_BUFFER_LIST,
    nb: *mut NET_BUFFER,
    handed: usize,
    last: *mut NET_BUFFER_LIST,
}

impl Walk {
    /// The NBL at `nbl` has had all its frames handed: on to the next.
    #[inline(always)]
    fn finish_nbl(&mut self) {
        // SAFETY: an NBL of the indication (invariant; the caller finishes
        // only one that is not null).
        let x = unsafe { &*self.nbl };
        self.last = self.nbl;
        self.nbl = next_nbl(x);
        self.nb = ptr::null_mut();
    }

    /// `URO`: `uro_registered()` (the walk made once for each answer).
    /// Gathers the frames of plain NBLs mapped whole that `take` takes into
    /// `frames` (from `n`) until one of them must be handed otherwise, the
    /// batch is full, or the walk is done (`max`: `drain_mapped`'s), and
    /// says which. No call, and the walk's place in locals while it goes
    /// (written back at the end): what it keeps stays in registers.
    /// Nested loops, an NBL's NET_BUFFERs inside the NBLs'; the frames
    /// handed counted as the batch's entries are (`handed` moves with
    /// `n`). Why it stopped is worked out once it has (`stopped`), not as
    /// it goes.
    #[inline(always)]
    fn gather<'a, const URO: bool>(
        &mut self,
        frames: &mut [MaybeUninit<MappedFrame<'a>>; MAPPED_BATCH],
        n: &mut usize,
        max: usize,
        take: &impl Fn(&MappedFrame<'a>) -> bool,
    ) -> Stop {
        let first = *n;
        // `handed >= max` as `k >= limit`.
        let limit = max.saturating_sub(self.handed).saturating_add(first);
        let mut slots = Slots::new(frames, first, limit);
        let (mut nbl, mut last) = (self.nbl, self.last);
        let mut nb = self.nb;
        'walk: {
            // An NBL begun before (resuming): its other frames first.
            if !nb.is_null() {
                // SAFETY: a NET_BUFFER of an NBL of the indication, or
                // null (invariant).
                nb = unsafe { gather_nbs(nb, &mut slots, take) };
                if !nb.is_null() {
                    break 'walk;
                }
                // SAFETY: an NBL of the indication (invariant), begun.
                (last, nbl) = (nbl, next_nbl(unsafe { &*nbl }));
            }
            // The next NBL, while the walk goes on and it is plain.
            // SAFETY: an NBL of this indication (invariant).
            while slots.below_limit() && !nbl.is_null() && unsafe { plain(nbl, URO) } {
                // SAFETY: as above.
                let nb0 = first_nb(unsafe { &*nbl });
                // SAFETY: the first NET_BUFFER of an NBL of the indication,
                // or null; below the walk's limit (the loop's test).
                nb = unsafe { gather_nbl(nb0, &mut slots, take) };
                if !nb.is_null() {
                    break 'walk;
                }
                // SAFETY: as above.
                (last, nbl) = (nbl, next_nbl(unsafe { &*nbl }));
            }
        }
        (self.nbl, self.nb, self.last) = (nbl, nb, last);
        let k = slots.count();
        self.handed += k - first;
        *n = k;
        self.stopped(k, limit)
    }

    /// Why `gather` stopped, `k` frames in the batch (`limit`: `gather`'s).
    #[inline(always)]
    fn stopped(&self, k: usize, limit: usize) -> Stop {
        match NonNull::new(self.nb) {
            // Between NBLs: the walk is done, the batch is full (its
            // end, not the walk's limit, stopped the walk: the next NBL
            // is looked at when it goes on), or the next NBL is not plain.
            None if k >= limit || self.nbl.is_null() => Stop::Done,
            None if k >= MAPPED_BATCH => Stop::Full,
            None => Stop::OtherNbl,
            // SAFETY: a NET_BUFFER of an indicated NBL (invariant).
            Some(p) if unsafe { mapped_frame(p) }.is_none() => Stop::OtherNb,
            Some(_) if k >= MAPPED_BATCH => Stop::Full,
            Some(_) => Stop::Refused,
        }
    }
}

impl<'a, T: Protocol> Indication<'a, T> {
    /// Hands the frames of the next NBLs to `f`, in order, with their
    /// NBL's coalescing, until `max_frames` frames were handed (the NBL
    /// that reaches the count is finished: an NBL of several NET_BUFFERs
    /// may take it past). Nothing can be retained: `f` copies what it
    /// keeps. One pass over the NBLs, no chunk and no table: the path of a
    /// receiver that copies every frame (a UMEM). Only an indication with
    /// no chunk walk under way (`is_fresh`) can be drained: otherwise
    /// nothing happens and this returns `None` (walk the rest a chunk at a
    /// time); else whether NBLs are left. A walk may follow a drain.
    ///
    /// A batch at a time: the frames of plain NBLs (no 802.1Q
    /// info, not looped back, not coalesced) whose first MDL maps them
    /// whole and that `take` takes (the walk's own test: most frames) are
    /// gathered, up to `MAPPED_BATCH`, and handed to `f` together
    /// (`Drained::Mapped`, entries `f` may reuse as it likes); such a frame
    /// that `take` does not take is judged (`judge`, out of the walk's
    /// loop): it joins the batch, is handed alone after the frames gathered
    /// before it (`Drained::Refused`), or is only counted
    /// (`Drained::Skipped`); any other frame is handed alone
    /// (`Drained::Other`), after the frames gathered before it. `f` sees every frame before this returns; the NBLs
    /// drained go on the indication's return chain together at the end
    /// (they go back to NDIS when the indication ends; a RESOURCES chain
    /// goes back whole when the handler returns).
    #[inline(always)]
    pub fn drain_mapped(
        &mut self,
        max_frames: usize,
        take: impl Fn(&MappedFrame<'a>) -> bool,
        judge: impl Fn(&MappedFrame<'a>) -> Judged,
        f: impl FnMut(Drained<'_, 'a>),
    ) -> Option<bool> {
        if !self.is_fresh() {
            return None;
        }
        // The walk without a look at `uro_registered()` per NBL.
        if uro_registered() {
            self.drain_mapped_as::<true>(max_frames, take, judge, f)
        } else {
            self.drain_mapped_as::<false>(max_frames, take, judge, f)
        }
    }

    /// `drain_mapped` for a fresh indication, `URO` being
    /// `uro_registered()`.
    #[inline(always)]
    fn drain_mapped_as<const URO: bool>(
        &mut self,
        max_frames: usize,
        take: impl Fn(&MappedFrame<'a>) -> bool,
        judge: impl Fn(&MappedFrame<'a>) -> Judged,
        mut f: impl FnMut(Drained<'_, 'a>),
    ) -> Option<bool> {
        let uro = URO;
        let mut frames = [const { MaybeUninit::<MappedFrame<'a>>::uninit() }; MAPPED_BATCH];
        let mut n = 0;
        let first = self.next_nbl;
        let mut w = Walk { nbl: first, nb: ptr::null_mut(), handed: 0, last: ptr::null_mut() };
        loop {
            let stop = w.gather::<URO>(&mut frames, &mut n, max_frames, &take);
            // (A frame `take` refused may join the batch, or need no flush.)
            if n != 0 && !matches!(stop, Stop::Done | Stop::Refused) {
                // SAFETY: `frames[..n]` were written.
                f(Drained::Mapped(unsafe { written(&mut frames, n) }));
                n = 0;
            }
            match stop {
                Stop::Done => break,
                Stop::Full => {}
                Stop::OtherNbl => {
                    // SAFETY: an NBL of this indication, not null (`gather`).
                    w.handed += unsafe { each_other(w.nbl, uro, &mut f) };
                    w.finish_nbl();
                }
                Stop::Refused => {
                    let Some(p) = NonNull::new(w.nb) else { break };
                    // SAFETY: a NET_BUFFER of an indicated NBL (`Walk`),
                    // mapped whole (`gather`).
                    let frame = unsafe { mapped_frame(p) };
                    // (Not mapped: not seen, as the frame was just found
                    // mapped; then it goes alone.)
                    let judged = frame.as_ref().map_or(Judged::Alone, &judge);
                    let full = n >= MAPPED_BATCH;
                    if n != 0 && (judged == Judged::Alone || (judged == Judged::Batch && full)) {
                        // SAFETY: `frames[..n]` were written.
                        f(Drained::Mapped(unsafe { written(&mut frames, n) }));
                        n = 0;
                    }
                    match (frame, judged) {
                        (Some(frame), Judged::Batch) => match frames.get_mut(n) {
                            Some(slot) => {
                                slot.write(frame);
                                n += 1;
                            }
                            // (Not seen: the batch was handed if full.)
                            None => f(Drained::Refused(frame)),
                        },
                        (Some(frame), Judged::Alone) => f(Drained::Refused(frame)),
                        (Some(frame), Judged::Skip) => f(Drained::Skipped(frame)),
                        // SAFETY: as above.
                        (None, _) => other_frame(p, nb_data_length(unsafe { p.as_ref() }), &mut f),
                    }
                    w.handed += 1;
                    // SAFETY: as above.
                    w.nb = nb_fields(unsafe { p.as_ref() }).Next;
                    if w.nb.is_null() {
                        w.finish_nbl();
                    }
                }
                Stop::OtherNb => {
                    let Some(p) = NonNull::new(w.nb) else { break };
                    // SAFETY: a NET_BUFFER of an indicated NBL (`Walk`).
                    let nb_ref = unsafe { p.as_ref() };
                    other_frame(p, nb_data_length(nb_ref), &mut f);
                    w.handed += 1;
                    w.nb = nb_fields(nb_ref).Next;
                    if w.nb.is_null() {
                        w.finish_nbl();
                    }
                }
            }
        }
        if n != 0 {
            // SAFETY: `frames[..n]` were written.
            f(Drained::Mapped(unsafe { written(&mut frames, n) }));
        }
        self.next_nbl = w.nbl;
        // All their frames were seen: back they go (a RESOURCES chain goes
        // back whole when the handler returns). They are still linked as
        // indicated, `first` to `last`.
        if !self.resources && !w.last.is_null() {
            // SAFETY: `first` reaches `last` by `Next` through the
            // NBLs drained, indicated ones that are the protocol's, on no
            // other chain.
            unsafe { self.returns.push_run(first, w.last) };
        }
        Some(!w.nbl.is_null())
    }
}
