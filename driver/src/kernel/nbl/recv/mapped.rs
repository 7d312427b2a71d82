//! The one-pass drain of an indication a batch at a time
//! (`Indication::drain_mapped`): the frames of plain NBLs that their first
//! MDL maps whole are gathered and handed on together.

use super::super::{first_nb, nb_data_length, nb_fields, next_nbl, tci_from_info};
use super::{Coalesced, Indication, RecvFrame, coalesced_info, mapped_run, uro_registered};
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
    /// Frames of plain NBLs mapped whole, in order.
    Mapped(&'d mut [MappedFrame<'a>]),
    /// Any other frame, with its NBL's coalescing.
    Other(&'d RecvFrame<'a>, Option<Coalesced>),
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

/// Hands each frame of an NBL that is not plain to `f`, alone, as
/// `Indication::drain` would; returns how many.
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

/// Why `Walk::gather` stopped.
enum Stop {
    /// Every NBL was walked, or `max_frames` frames were handed.
    Done,
    /// The batch is full (the frame at `nb` is not gathered yet).
    Full,
    /// The NBL at `nbl` is not plain (none of its frames handed yet).
    OtherNbl,
    /// The frame at `nb` is not mapped whole (not handed yet).
    OtherNb,
}

/// Where `Indication::drain_mapped` is in the indication's NBLs.
///
/// # Invariants
/// `nbl` is null or an NBL of the indication (`'a`), and `nb` null (the
/// NBL not begun) or one of its NET_BUFFERs (those before it handed);
/// `last` is the last NBL finished, the `nbls`-th from the first.
struct Walk {
    nbl: *mut NET_BUFFER_LIST,
    nb: *mut NET_BUFFER,
    handed: usize,
    last: *mut NET_BUFFER_LIST,
    nbls: usize,
}

impl Walk {
    /// The NBL at `nbl` has had all its frames handed: on to the next.
    #[inline(always)]
    fn finish_nbl(&mut self) {
        // SAFETY: an NBL of the indication (invariant; the caller finishes
        // only one that is not null).
        let x = unsafe { &*self.nbl };
        self.last = self.nbl;
        self.nbls += 1;
        self.nbl = next_nbl(x);
        self.nb = ptr::null_mut();
    }

    /// `gather` over the NET_BUFFERs of the NBL at `nbl`, from `nb`, into
    /// `frames` from `k`: `Err` (`nb` set to where it stopped) when one
    /// must be handed otherwise or the batch is full.
    #[inline(always)]
    fn gather_nbs(
        &mut self,
        mut nb: *mut NET_BUFFER,
        frames: &mut [MaybeUninit<MappedFrame<'_>>; MAPPED_BATCH],
        k: &mut usize,
    ) -> Result<(), Stop> {
        while let Some(p) = NonNull::new(nb) {
            // SAFETY: a NET_BUFFER of an indicated NBL (invariant).
            let nb_ref = unsafe { p.as_ref() };
            let len = nb_data_length(nb_ref);
            // SAFETY: the frame's NET_BUFFER and its memory belong to the
            // indication (`'a`).
            let Some(start) = (unsafe { mapped_run(p.as_ptr(), 0, len as usize) }) else {
                self.nb = nb;
                return Err(Stop::OtherNb);
            };
            let Some(slot) = frames.get_mut(*k) else {
                self.nb = nb;
                return Err(Stop::Full);
            };
            // `len` mapped bytes (`mapped_run`: a mapped MDL's address, not
            // null, and an offset inside it) that stay mapped and unchanged
            // for the indication (`'a`, `frames`' lifetime:
            // `drain_mapped`'s).
            slot.write(MappedFrame { start, len, _bytes: PhantomData });
            *k += 1;
            nb = nb_fields(nb_ref).Next;
        }
        Ok(())
    }

    /// Gathers the frames of plain NBLs mapped whole into `frames` (from
    /// `n`) until one of them must be handed otherwise, the batch is full,
    /// or the walk is done (`max`: `drain_mapped`'s). No call: what it
    /// keeps stays in registers. Nested loops, an NBL's NET_BUFFERs inside
    /// the NBLs', each exit with its own `Stop`; the frames handed counted
    /// as the batch's entries are (`handed` moves with `n`).
    #[inline(always)]
    fn gather(
        &mut self,
        frames: &mut [MaybeUninit<MappedFrame<'_>>; MAPPED_BATCH],
        n: &mut usize,
        max: usize,
        uro: bool,
    ) -> Stop {
        let first = *n;
        let mut k = first;
        // `handed >= max` as `k >= limit`.
        let limit = max.saturating_sub(self.handed).saturating_add(first);
        let stop = 'walk: {
            // An NBL begun before (resuming): its other frames first.
            if !self.nb.is_null() {
                if let Err(stop) = self.gather_nbs(self.nb, frames, &mut k) {
                    break 'walk stop;
                }
                self.finish_nbl();
            }
            loop {
                // The next NBL, if the walk goes on.
                if k >= limit || self.nbl.is_null() {
                    break 'walk Stop::Done;
                }
                // SAFETY: an NBL of this indication (invariant).
                if !unsafe { plain(self.nbl, uro) } {
                    break 'walk Stop::OtherNbl;
                }
                // SAFETY: as above.
                let nb = first_nb(unsafe { &*self.nbl });
                if let Err(stop) = self.gather_nbs(nb, frames, &mut k) {
                    break 'walk stop;
                }
                self.finish_nbl();
            }
        };
        self.handed += k - first;
        *n = k;
        stop
    }
}

impl<'a, T: Protocol> Indication<'a, T> {
    /// `drain`, a batch at a time: the frames of plain NBLs (no 802.1Q
    /// info, not looped back, not coalesced) whose first MDL maps them
    /// whole are gathered, up to `MAPPED_BATCH`, and handed to `f` together
    /// (`Drained::Mapped`, entries `f` may reuse as it likes); any other
    /// frame is handed alone (`Drained::Other`), after the frames gathered
    /// before it. `f` sees every frame before this returns; the NBLs
    /// drained go on the indication's return chain together at the end
    /// (they go back to NDIS when the indication ends, as `drain`'s do).
    /// Returns as `drain` does.
    #[inline(always)]
    pub fn drain_mapped(&mut self, max_frames: usize, mut f: impl FnMut(Drained<'_, 'a>)) -> Option<bool> {
        if !self.is_fresh() {
            return None;
        }
        let uro = uro_registered();
        let mut frames = [const { MaybeUninit::<MappedFrame<'a>>::uninit() }; MAPPED_BATCH];
        let mut n = 0;
        let first = self.next_nbl;
        let mut w = Walk { nbl: first, nb: ptr::null_mut(), handed: 0, last: ptr::null_mut(), nbls: 0 };
        loop {
            let stop = w.gather(&mut frames, &mut n, max_frames, uro);
            if n != 0 && !matches!(stop, Stop::Done) {
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
        if !self.resources && w.nbls != 0 {
            // SAFETY: `first` reaches `last` by `Next` through the `nbls`
            // NBLs drained, indicated ones that are the protocol's, on no
            // other chain.
            unsafe { self.returns.push_run(first, w.last, w.nbls) };
        }
        Some(!w.nbl.is_null())
    }
}
