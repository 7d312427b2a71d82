//! Receive: the handler NDIS calls, and the `Indication` the logic walks.
//!
//! Every indication is counted while it runs (`Core::indicating`), in
//! every binding state, and a pause completes only when none runs: NDIS
//! may indicate while a binding is Pausing or Paused, and the NBLs of an
//! indication belong to the protocol until it returns them. Outside
//! Running, NBLs go back at once, untouched. In Running the logic walks the
//! frames a chunk at a time; whatever it does not retain goes back before
//! the handler returns.

use super::frame::sealed::Holder;
use super::frame::{FrameParts, ReceivedFrame};
use super::retain::RetainedFrame;
use super::{OwnReturns, ReturnChain, first_nb, nb_data_length, nb_fields, next_nbl, return_flags, tci_from_info};
use crate::kernel::protocol::{Binding, Protocol, binding_arc, irql_from_flag, registered_version};
use crate::kernel::sync::Irql;
use alloc::sync::Arc;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};
use ndis_sys::*;

mod mapped;
pub use mapped::{Drained, Judged, MAPPED_BATCH, MappedFrame};

/// Frames handed to the logic at a time.
pub const CHUNK: usize = 32;

/// Copies `len` bytes of a NET_BUFFER's data, from `offset`, into `dst`.
/// Returns the bytes copied.
///
/// # Safety
/// `nb` is a valid NET_BUFFER whose MDL chain describes at least its
/// `DataLength` bytes, owned by the caller for the call.
pub(super) unsafe fn copy_from_nb(nb: *const NET_BUFFER, offset: usize, dst: &mut [u8]) -> usize {
    // SAFETY: valid per the caller; `dst` is writable for its length and
    // does not overlap the frame's buffers.
    unsafe { copy_from_nb_raw(nb, offset, dst.as_mut_ptr(), dst.len()) }
}

/// `copy_from_nb` into `cap` bytes at `dst`, which may be memory another
/// party changes meanwhile (a UMEM): no reference to it is made.
///
/// # Safety
/// As `copy_from_nb`; and `dst` is valid for `cap` bytes of writes and does
/// not overlap the NET_BUFFER's memory.
#[inline(always)]
pub(super) unsafe fn copy_from_nb_raw(nb: *const NET_BUFFER, offset: usize, dst: *mut u8, cap: usize) -> usize {
    // SAFETY: valid per the caller.
    let total = nb_data_length(unsafe { &*nb }) as usize;
    if offset < total {
        // Most frames: the first MDL is mapped and holds all the bytes
        // wanted; one copy.
        let want = cap.min(total - offset);
        // SAFETY: valid per the caller.
        if let Some(src) = unsafe { mapped_run(nb, offset, want) } {
            // SAFETY: `want <= cap` bytes of the mapping (`mapped_run`) into
            // `dst` (the caller's), which does not overlap it.
            unsafe { ptr::copy_nonoverlapping(src, dst, want) };
            return want;
        }
    }
    // SAFETY: as for this function.
    unsafe { copy_from_nb_chain(nb, offset, dst, cap) }
}

/// Where `want` bytes of a NET_BUFFER's data from `offset` are mapped, when
/// its first MDL maps them all (what `NdisGetDataBuffer` finds without
/// copying); `None` otherwise.
///
/// # Safety
/// `nb` is a valid NET_BUFFER whose MDL chain describes its data, owned by
/// the caller for the call; the pointer returned is valid for `want` bytes
/// of reads for as long as that ownership lasts.
#[inline(always)]
unsafe fn mapped_run(nb: *const NET_BUFFER, offset: usize, want: usize) -> Option<*const u8> {
    // SAFETY: valid per the caller.
    let fields = nb_fields(unsafe { &*nb });
    let mdl = fields.CurrentMdl;
    if mdl.is_null() {
        return None;
    }
    // SAFETY: the NET_BUFFER's first MDL (caller).
    let m = unsafe { &*mdl };
    let from = fields.CurrentMdlOffset as usize + offset;
    let mapped = m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
    if !mapped || m.MappedSystemVa.is_null() || (m.ByteCount as usize).checked_sub(from).is_none_or(|n| n < want) {
        return None;
    }
    // SAFETY: a mapped MDL's `MappedSystemVa` covers its `ByteCount`
    // bytes, of which `[from, from + want)` is inside.
    Some(unsafe { m.MappedSystemVa.cast::<u8>().add(from) }.cast_const())
}

/// Maps every MDL that holds bytes of a NET_BUFFER's data (as
/// `MmGetSystemAddressForMdlSafe` does), so that no later copy of it can
/// come up short; false when one could not be mapped (low resources).
///
/// # Safety
/// As `copy_from_nb`.
unsafe fn map_data(nb: *const NET_BUFFER) -> bool {
    // SAFETY: valid per the caller.
    let total = nb_data_length(unsafe { &*nb }) as usize;
    // SAFETY: as above.
    if unsafe { mapped_run(nb, 0, total) }.is_some() {
        return true;
    }
    // SAFETY: as above.
    unsafe { each_mapped_piece(nb, 0, total, |_, _| {}) == total }
}

/// `copy_from_nb_raw` across the MDL chain, mapping what is not mapped.
///
/// # Safety
/// As `copy_from_nb_raw`.
#[inline(never)]
unsafe fn copy_from_nb_chain(nb: *const NET_BUFFER, offset: usize, dst: *mut u8, cap: usize) -> usize {
    let mut done = 0;
    let copy = |src: *const u8, n: usize| {
        // SAFETY: `done + n <= cap`, inside `dst` (the caller's).
        let to = unsafe { dst.add(done) };
        // SAFETY: `n` mapped bytes at `src` (`each_mapped_piece`) into `dst`,
        // which the mapping does not overlap.
        unsafe { ptr::copy_nonoverlapping(src, to, n) };
        done += n;
    };
    // SAFETY: valid per the caller.
    unsafe { each_mapped_piece(nb, offset, cap, copy) }
}

/// Walks at most `want` bytes of a NET_BUFFER's data from `offset`,
/// across its MDL chain from `CurrentMdl`, mapping each MDL it needs (what
/// `MmGetSystemAddressForMdlSafe` does) and giving `f` each mapped piece
/// in order. Returns the bytes walked: fewer than asked at the data's end,
/// or where an MDL could not be mapped.
///
/// # Safety
/// As `copy_from_nb`; a piece given to `f` is valid for reads while the
/// caller owns the NET_BUFFER.
unsafe fn each_mapped_piece(
    nb: *const NET_BUFFER,
    offset: usize,
    want: usize,
    mut f: impl FnMut(*const u8, usize),
) -> usize {
    // SAFETY: valid per the caller.
    let nb = unsafe { &*nb };
    let total = nb_data_length(nb) as usize;
    if offset >= total {
        return 0;
    }
    let want = want.min(total - offset);
    let (mut mdl, mut skip) = (nb_fields(nb).CurrentMdl, nb_fields(nb).CurrentMdlOffset as usize + offset);
    let mut done = 0;
    while done < want && !mdl.is_null() {
        // SAFETY: `mdl` is in the NET_BUFFER's chain (caller).
        let m = unsafe { &*mdl };
        let (count, next) = (m.ByteCount as usize, m.Next);
        if skip >= count {
            skip -= count;
            mdl = next;
            continue;
        }
        // SAFETY: a valid MDL of the chain; mapping it is what
        // MmGetSystemAddressForMdlSafe does.
        let va = unsafe { super::system_address(mdl) };
        if va.is_null() {
            break;
        }
        let n = (count - skip).min(want - done);
        // SAFETY: the mapping covers `count` bytes and `skip < count`.
        f(unsafe { va.add(skip) }.cast_const(), n);
        done += n;
        skip = 0;
        mdl = next;
    }
    done
}

/// One received frame (a NET_BUFFER), valid during the indication.
#[derive(Clone, Copy)]
pub struct RecvFrame<'a> {
    nb: NonNull<NET_BUFFER>,
    len: u32,
    tci: u16,
    /// NDIS looped it back from a send (`NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`).
    loopback: bool,
    /// Index of its NBL in the indication's `open` table (frames of a
    /// chunk; a frame `Indication::drain_mapped` hands out is in no table,
    /// and nothing reads its index).
    nbl: u8,
    _ind: PhantomData<&'a ()>,
}

// SAFETY: a `RecvFrame` is part of the indication its lifetime ties it
// to, and every borrow of it ends before the indication returns its NBLs.
unsafe impl Holder for RecvFrame<'_> {
    fn parts(&self) -> FrameParts {
        FrameParts { nb: self.nb, len: self.len, tci: self.tci }
    }
}

impl ReceivedFrame for RecvFrame<'_> {}

impl<'a> RecvFrame<'a> {
    /// Whether NDIS looped the frame back from a send on this host (its
    /// NBL is marked `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`) rather than the
    /// NIC receiving it.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// The whole frame, read in place, when its first MDL maps all of it
    /// (what `NdisGetDataBuffer` finds without copying) and it did not come
    /// from a send on this host; `None` otherwise (then `head` and
    /// `ReceivedFrame::copy_to` walk and map its MDLs). The path that copies
    /// every frame checks this once per frame and reads both the header and
    /// the bytes to copy from it.
    #[inline(always)]
    pub fn in_place(&self) -> Option<&'a [u8]> {
        if self.loopback {
            // Another sender's buffer (even a UMEM frame a user still
            // writes): no reference to it is made (see `head`).
            return None;
        }
        let len = self.len as usize;
        // SAFETY: the frame's NET_BUFFER and its memory belong to the
        // indication `'a` is (rawnic's until it returns).
        let start = unsafe { mapped_run(self.nb.as_ptr(), 0, len) }?;
        // SAFETY: `len` mapped bytes (`mapped_run`) that stay mapped and
        // unchanged for the indication.
        Some(unsafe { core::slice::from_raw_parts(start, len) })
    }

    /// The frame's first `N` bytes (fewer if it is shorter): read in place
    /// when the first MDL holds them mapped (what `NdisGetDataBuffer`
    /// does), else copied into `scratch`.
    #[inline(always)]
    pub fn head<'s, const N: usize>(&self, scratch: &'s mut [u8; N]) -> &'s [u8]
    where
        'a: 's,
    {
        let want = N.min(self.len as usize);
        if !self.loopback {
            // SAFETY: the frame's NET_BUFFER and its memory belong to the
            // indication the caller is inside of (`'a`, which outlives `'s`).
            if let Some(start) = unsafe { mapped_run(self.nb.as_ptr(), 0, want) } {
                // SAFETY: `want` mapped bytes (`mapped_run`) that stay
                // mapped and unchanged for the indication.
                return unsafe { core::slice::from_raw_parts(start, want) };
            }
        }
        // A looped-back frame may be another sender's buffer, even a UMEM
        // frame of a zero-copy send that its user still writes: no
        // reference is made to it, its head is copied.
        self.head_copied(scratch)
    }

    /// `head`, copied.
    #[cold]
    #[inline(never)]
    fn head_copied<'s, const N: usize>(&self, scratch: &'s mut [u8; N]) -> &'s [u8] {
        let want = N.min(self.len as usize);
        let n = self.copy_to(0, &mut scratch[..want]);
        &scratch[..n]
    }
}

/// How the NIC coalesced a received frame, from its NBL's out-of-band
/// info: RSC (`TcpRecvSegCoalesceInfo`, an `NDIS_RSC_NBL_INFO` whose
/// `CoalescedSegCount` is not 0) or URO (`UdpRecvSegCoalesceOffloadInfo`,
/// an `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO` that is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coalesced {
    /// URO (UDP datagrams) rather than RSC (TCP segments).
    pub udp: bool,
    /// Segments coalesced (0: the adapter did not say, URO only).
    pub segs: u16,
    /// URO: each datagram's UDP payload size; RSC: 0.
    pub seg_size: u16,
}

/// Whether the URO slot of a received NBL's info means URO: NDIS 6.84 and
/// later gave it that meaning on the receive path, and NDIS gives URO
/// frames only to protocols of 6.89 and later.
fn uro_registered() -> bool {
    registered_version().is_some_and(|(_, minor)| minor >= NDIS_MINOR_VERSION_689)
}

/// The coalescing an indicated NBL's info describes. `uro`:
/// `uro_registered()`, read once per indication.
///
/// # Safety
/// `nbl` is an NBL of an indication the caller is inside of.
unsafe fn coalesced_info(nbl: *const NET_BUFFER_LIST, uro: bool) -> Option<Coalesced> {
    // SAFETY: per the caller; reading two info slots.
    let (rsc, udp) = unsafe {
        let x = &*nbl;
        (x.NetBufferListInfo[TcpRecvSegCoalesceInfo], x.NetBufferListInfo[UdpRecvSegCoalesceOffloadInfo])
    };
    // SAFETY: both unions are a PVOID over two USHORTs: any bits are valid.
    let counts = unsafe { NDIS_RSC_NBL_INFO { Value: rsc }.Info };
    if counts.CoalescedSegCount != 0 {
        return Some(Coalesced { udp: false, segs: counts.CoalescedSegCount, seg_size: 0 });
    }
    if uro && !udp.is_null() {
        let info =
            NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO { anon: NDIS_UDP_RSC_OFFLOAD_NBL_INFO_UNION { Value: udp } };
        // SAFETY: as above.
        let r = unsafe { info.anon.Receive };
        return Some(Coalesced { udp: true, segs: r.SegCount, seg_size: r.SegSize });
    }
    None
}

/// An NBL of the indication whose frames are being handed out (16 bytes:
/// 32 of them live on the receive path's stack).
#[derive(Clone, Copy)]
struct OpenNbl {
    nbl: *mut NET_BUFFER_LIST,
    /// Its retention slot's generation, once a frame of it is retained.
    generation: u32,
    /// Its retention slot (`NO_SLOT`: none yet).
    slot: u16,
    /// All its frames have been handed out.
    finished: bool,
}

const NO_SLOT: u16 = u16::MAX;
const NO_NBL: OpenNbl = OpenNbl { nbl: ptr::null_mut(), generation: 0, slot: NO_SLOT, finished: false };

impl OpenNbl {
    fn slot(&self) -> Option<(u16, u32)> {
        (self.slot != NO_SLOT).then_some((self.slot, self.generation))
    }
}

/// A receive indication in Running, walked by the logic a chunk of frames
/// at a time.
///
/// Every NBL goes back to NDIS before the handler returns unless a frame of
/// it was retained; a retained NBL also holds an "indication" reference
/// until all its frames were handed out, so it cannot go back while the
/// walk still reads it.
pub struct Indication<'a, T: Protocol> {
    binding: &'a Arc<Binding<T>>,
    next_nbl: *mut NET_BUFFER_LIST,
    cur_nb: *mut NET_BUFFER,
    cur_tci: u16,
    cur_loopback: bool,
    cur: Option<u8>,
    /// The NBLs whose frames are being handed out: the first `n_open` are
    /// set (not initialized before, as `frames`).
    open: [MaybeUninit<OpenNbl>; CHUNK],
    n_open: usize,
    resources: bool,
    /// `resources`, and the binding retains NBLs of earlier indications.
    holding_when_low: bool,
    irql: Irql<'a>,
    returns: OwnReturns,
    /// The current chunk's frames: the first `n_frames` are set. (Not
    /// initialized before: a chunk's frames are written once, in place,
    /// not built and moved.)
    frames: [MaybeUninit<RecvFrame<'a>>; CHUNK],
    n_frames: usize,
}

impl<'a, T: Protocol> Indication<'a, T> {
    /// Whether NDIS asked for its NBLs back on return (low resources):
    /// then every frame must be copied.
    pub fn must_copy(&self) -> bool {
        self.resources
    }

    /// Whether the miniport is low on receive buffers (this indication
    /// carries NDIS_RECEIVE_FLAGS_RESOURCES) while the binding retains
    /// NBLs of earlier ones: buffers the NIC cannot fill until they are
    /// back. The logic then copies every retained frame and lets it go
    /// (they go back to NDIS when this indication ends).
    pub fn miniport_low_while_retaining(&self) -> bool {
        self.holding_when_low
    }

    pub fn irql(&self) -> Irql<'a> {
        self.irql
    }

    /// Open NBL `i` (one of the first `n_open`).
    fn open_ref(&self, i: usize) -> &OpenNbl {
        assert!(i < self.n_open.min(CHUNK), "NBL {i} is not open");
        // SAFETY: the first `n_open` entries are written before `n_open`
        // counts them (`next_chunk`, `end_chunk`).
        unsafe { self.open[i].assume_init_ref() }
    }

    /// `open_ref`, to change.
    fn open_mut(&mut self, i: usize) -> &mut OpenNbl {
        assert!(i < self.n_open.min(CHUNK), "NBL {i} is not open");
        // SAFETY: as in `open_ref`.
        unsafe { self.open[i].assume_init_mut() }
    }

    /// The next frames (up to `CHUNK`), or `None` when all were handed out.
    pub fn next_chunk(&mut self) -> Option<Chunk<'_, 'a, T>> {
        let mut n = 0;
        self.n_frames = 0;
        loop {
            if self.cur_nb.is_null() {
                if let Some(i) = self.cur.take() {
                    self.open_mut(i as usize).finished = true;
                }
                if self.next_nbl.is_null() || self.n_open == CHUNK {
                    break;
                }
                let nbl = self.next_nbl;
                // SAFETY: indicated NBLs, owned for the duration of the call.
                // A RESOURCES chain goes back to NDIS as it came (same NBLs,
                // order and links), so only NBLs we return ourselves are
                // unlinked (by `ReturnChain::push`).
                let x = unsafe { &*nbl };
                let (next, first_nb, info, nbl_flags) =
                    (next_nbl(x), first_nb(x), x.NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize, x.NblFlags);
                self.next_nbl = next;
                self.open[self.n_open].write(OpenNbl { nbl, ..NO_NBL });
                self.cur = Some(self.n_open as u8);
                self.n_open += 1;
                self.cur_nb = first_nb;
                self.cur_tci = tci_from_info(info);
                self.cur_loopback = nbl_flags & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET != 0;
                continue;
            }
            if n == CHUNK {
                break;
            }
            let nb = self.cur_nb;
            // SAFETY: a NET_BUFFER of an indicated NBL.
            let nb_ref = unsafe { &*nb };
            let (len, next) = (nb_data_length(nb_ref), nb_fields(nb_ref).Next);
            self.frames[n].write(RecvFrame {
                // SAFETY: checked non-null above.
                nb: unsafe { NonNull::new_unchecked(nb) },
                len,
                tci: self.cur_tci,
                loopback: self.cur_loopback,
                nbl: self.cur.expect("an NBL is open"),
                _ind: PhantomData,
            });
            n += 1;
            self.cur_nb = next;
        }
        if n == 0 {
            self.end_chunk();
            return None;
        }
        self.n_frames = n;
        Some(Chunk { ind: self })
    }

    /// Every frame was handed out (by `drain_mapped`, or chunks that all
    /// ended).
    pub fn walked(&self) -> bool {
        self.next_nbl.is_null() && self.is_fresh()
    }

    /// No chunk walk is under way (none began, or only `drain_mapped`
    /// ran): no NBL is open. (`cur` and `cur_nb` then name nothing: an
    /// NBL is opened with them set, and a chunk that ends keeps open the
    /// NBL they name unless it is finished, which it is once `cur_nb` is
    /// null and `cur` taken, `next_chunk`.)
    pub fn is_fresh(&self) -> bool {
        debug_assert!(self.n_open != 0 || (self.cur_nb.is_null() && self.cur.is_none()), "no NBL open, none current");
        self.n_open == 0
    }

    /// Settles the NBLs whose frames are all handed out: back to NDIS, or
    /// (retained) their indication reference dropped.
    fn end_chunk(&mut self) {
        let mut keep = NO_NBL;
        for i in 0..self.n_open {
            let o = *self.open_ref(i);
            if !o.finished {
                keep = o;
                continue;
            }
            match o.slot() {
                // NDIS takes a RESOURCES chain back, untouched, on return.
                None if self.resources => {}
                // SAFETY: an NBL of this indication (open entries name
                // only its own), finished, not retained (no slot), and
                // put on the chain once: its entry leaves the open ones.
                None => unsafe { self.returns.push(o.nbl) },
                Some((s, generation)) => super::retain::release_slot(self.binding, s, generation),
            }
        }
        // Entries at and past `n_open` are never read: no need to clear them.
        if keep.nbl.is_null() {
            self.n_open = 0;
            self.cur = None;
        } else {
            self.open[0].write(keep);
            self.n_open = 1;
            self.cur = Some(0);
        }
    }
}

/// Up to `CHUNK` frames of an indication (`Indication::frames`).
pub struct Chunk<'i, 'a, T: Protocol> {
    ind: &'i mut Indication<'a, T>,
}

impl<'a, T: Protocol> Chunk<'_, 'a, T> {
    pub fn frames(&self) -> &[RecvFrame<'a>] {
        let n = self.ind.n_frames.min(CHUNK);
        // SAFETY: `next_chunk` wrote the first `n_frames` entries before
        // making this chunk, and nothing changes them while it lives (it
        // borrows the indication mutably); `MaybeUninit<T>` has `T`'s
        // layout.
        unsafe { core::slice::from_raw_parts(self.ind.frames.as_ptr().cast::<RecvFrame<'a>>(), n) }
    }

    pub fn must_copy(&self) -> bool {
        self.ind.resources
    }

    /// Whether the NIC coalesced frame `i` of this chunk (RSC or URO), as
    /// its NBL's info says. Frames NDIS looped back from a send carry send
    /// info in those slots, never coalescing.
    pub fn coalesced(&self, i: usize) -> Option<Coalesced> {
        let f = self.frames().get(i)?;
        if f.loopback {
            return None;
        }
        let uro = uro_registered();
        // SAFETY: the frame's NBL is part of the indication this chunk
        // walks.
        unsafe { coalesced_info(self.ind.open_ref(f.nbl as usize).nbl, uro) }
    }

    /// Keeps frame `i` of this chunk after the indication returns. `None`
    /// when NDIS asked for its resources back, the frame was looped back
    /// from a send, the binding is no longer Running (a pause began) or its
    /// retention budget is used up: then copy it.
    ///
    /// A looped-back NBL (`NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`) is never
    /// kept: it is (or holds the buffers of) another protocol's send, which
    /// NDIS completes to that protocol only once the loopback is back, so
    /// keeping it would hold the sender's completion, and its buffers, until
    /// a rawnic reader reads (or for ever, if none does); and its bytes are
    /// the sender's, which a retained frame would copy only then.
    pub fn retain(&mut self, i: usize) -> Option<RetainedFrame> {
        let f = *self.frames().get(i)?;
        if self.ind.resources || f.loopback {
            return None;
        }
        // A retained frame is copied later, at a read: every byte of it must
        // be mapped now, or it is copied now (and cut, honestly, to what
        // could be read).
        // SAFETY: a NET_BUFFER of this indication, which the caller is in.
        if !unsafe { map_data(f.nb.as_ptr()) } {
            return None;
        }
        let b = self.ind.binding;
        let irql = self.ind.irql;
        let open = self.ind.open_mut(f.nbl as usize);
        let slot = super::retain::retain_slot(b, open.nbl, open.slot(), irql)?;
        (open.slot, open.generation) = slot;
        Some(RetainedFrame::new(b.clone(), slot, f.nb, f.len, f.tci))
    }
}

impl<T: Protocol> Drop for Chunk<'_, '_, T> {
    fn drop(&mut self) {
        self.ind.end_chunk();
    }
}

/// An indication ends: its own NBLs (`own`) go back first, then it stops
/// counting; the last one to end returns the retained NBLs released
/// meanwhile; a pause waiting for it completes.
fn end_indication<T: Protocol>(b: &Binding<T>, own: OwnReturns, irql: Irql<'_>) {
    own.return_to(b.ndis_handle(), irql);
    // Frames released meanwhile go back too, whether or not another
    // indication still runs: with indications on several CPUs that always
    // overlap, waiting for the last one to end would keep them from the
    // miniport for as long as the traffic lasts.
    let (deferred, ready) = {
        let mut c = b.core.lock_at(irql);
        c.indicating -= 1;
        let deferred = core::mem::replace(&mut c.deferred_returns, ReturnChain::new());
        // None released meanwhile (most indications): whether a pause can
        // complete is known now, without taking the lock again.
        let ready = if deferred.len() == 0 { b.pause_ready(&mut c) } else { None };
        (deferred, ready)
    };
    let ready = if deferred.len() == 0 {
        ready
    } else {
        let released = deferred.len() as u64;
        deferred.return_to(b.ndis_handle(), irql);
        let mut c = b.core.lock_at(irql);
        c.retained -= released;
        b.pause_ready(&mut c)
    };
    if let Some(n) = ready {
        b.finish_pause(n);
    }
}

/// `ProtocolReceiveNetBufferLists`.
pub(crate) unsafe extern "win64" fn receive_net_buffer_lists<T: Protocol>(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    // NumberOfNetBufferLists counts NBLs, not frames (an NBL may hold
    // several NET_BUFFERs): the walk follows the chain's `Next` links and
    // each NBL's NET_BUFFERs, and counts frames as it goes.
    _nbl_count: u32,
    flags: u32,
) {
    // SAFETY: NDIS passes our binding context and holds its count (it does
    // not indicate after the close).
    let b = unsafe { binding_arc::<T>(ctx) };
    let irql = irql_from_flag(flags, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL);
    let resources = flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0;
    let (running, holding) = {
        let mut c = b.core.lock_at(irql);
        c.indicating += 1;
        (c.sm.is_running(), c.retain.in_use())
    };
    if !running {
        // Pausing, Paused (NDIS may indicate then) or NDIS misbehaving: give
        // everything back at once, untouched. A miniport low on receive
        // buffers gets back what is still retained too (a pause's own
        // release may not have run yet).
        if resources && holding {
            b.proto().give_back_retained(&b);
        }
        if !resources {
            // SAFETY: the indicated NBLs, untouched, returned whole.
            unsafe { NdisReturnNetBufferLists(b.ndis_handle(), nbls, return_flags(irql)) };
        }
        end_indication(&b, OwnReturns::new(), irql);
        return;
    }
    let mut ind = Indication {
        binding: &b,
        next_nbl: nbls,
        cur_nb: ptr::null_mut(),
        cur_tci: 0,
        cur_loopback: false,
        cur: None,
        open: [const { MaybeUninit::uninit() }; CHUNK],
        n_open: 0,
        resources,
        holding_when_low: resources && holding,
        irql,
        returns: OwnReturns::new(),
        frames: [const { MaybeUninit::uninit() }; CHUNK],
        n_frames: 0,
    };
    b.proto().receive(&b, &mut ind);
    // Frames the logic did not walk: their NBLs go back too (none when it
    // walked them all, as the one-pass drain does).
    if !ind.walked() {
        while ind.next_chunk().is_some() {}
    }
    // With NDIS_RECEIVE_FLAGS_RESOURCES nothing was pushed: NDIS takes the
    // chain back when the handler returns.
    let own = core::mem::replace(&mut ind.returns, OwnReturns::new());
    end_indication(&b, own, irql);
}
