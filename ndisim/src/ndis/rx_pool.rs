//! The miniport's receive buffers: the slots (an NBL, its NET_BUFFERs and
//! their buffers) an indication takes and a return gives back, how many
//! the miniport has (`AdapterSpec::rx_buffers`) and when it is low (rule
//! retained-when-low), what is overwritten and checked when a slot goes
//! back, and how a slot is filled with frames.

use super::inject::Uniform;
use super::*;
use crate::kernel::Kernel;
use crate::nbl::{self, own};
use crate::verifier::{Checksum, Rule, lock};
use std::sync::atomic::Ordering;

impl Adapter {
    /// `n` receive slots (one lock for all), each checked unchanged since
    /// it was returned; appended to `out`.
    pub(super) fn take_slots(&self, k: &Kernel, n: usize, out: &mut Vec<usize>) {
        let first = out.len();
        let mode = k.verifier.checksum();
        {
            let mut free = lock(&self.recv_free);
            if mode == Checksum::Off {
                // The most recently returned first (warm in the caches).
                let have = free.len().min(n);
                let at = free.len() - have;
                out.extend(free.drain(at..));
            } else {
                // While checksumming, the oldest first, and only past a
                // quarantine: a write to a buffer given back has longer to
                // be seen, and a stale second return of an NBL is not
                // taken for the return of its next indication.
                let have = free.len().saturating_sub(QUARANTINE).min(n);
                out.extend(free.drain(..have));
            }
        }
        if mode != Checksum::Off {
            for &s in &out[first..] {
                // SAFETY: a free slot: NDIS owns it and nobody else touches it.
                unsafe { check_free(s as *mut RecvSlot, mode, "NdisReturnNetBufferLists") };
            }
        }
        while out.len() - first < n {
            let nbl = nbl::alloc_nbl(self.idx, false, true);
            let slot = Box::into_raw(Box::new(RecvSlot {
                nbl,
                nbs: Vec::new(),
                returned_sum: 0,
                indicated_sum: 0,
                indicated_mode: Checksum::Off,
                kept_at: AtomicU64::new(0),
            }));
            // SAFETY: fresh.
            unsafe { (*nbl::hdr(nbl)).slot = slot as usize };
            lock(&self.recv_all).push(slot as usize);
            out.push(slot as usize);
        }
    }

    /// Puts slots back (one lock for all), with their checksums. While the
    /// verifier checksums NBLs, the frames' bytes are overwritten first
    /// (0xDD), as a NIC's next frame overwrites a receive buffer NDIS got
    /// back: a driver that reads a frame after giving it back reads
    /// garbage, as it would on Windows, not the frame.
    pub(super) fn put_slots(&self, k: &Kernel, slots: &[usize]) {
        for &s in slots {
            // SAFETY: the slot is NDIS's again.
            unsafe { scribble(k, s as *mut RecvSlot) };
        }
        lock(&self.recv_free).extend_from_slice(slots);
        self.recv_out.fetch_sub(slots.len() as u64, Ordering::AcqRel);
    }

    /// Checks every free slot unchanged since it was given back (at an
    /// unbind and at unload: a write to an NBL given back late in a run
    /// would otherwise never meet a reuse).
    pub(crate) fn sweep_returned(&self, k: &Kernel, call: &str) {
        let mode = k.verifier.checksum();
        if mode == Checksum::Off {
            return;
        }
        for &s in lock(&self.recv_free).iter() {
            // SAFETY: a free slot: NDIS owns it and nobody else touches it.
            unsafe { check_free(s as *mut RecvSlot, mode, call) };
        }
    }

    /// Receive buffers out now: indicated and not yet back.
    pub(crate) fn receive_buffers_out(&self) -> u64 {
        self.recv_out.load(Ordering::Acquire)
    }

    /// Takes up to `need` of the miniport's receive buffers for one
    /// indication: how many it got (0: none free, the frames are dropped)
    /// and whether it is now low (fewer than a quarter of its buffers
    /// free: the indication carries `NDIS_RECEIVE_FLAGS_RESOURCES`). An
    /// adapter without `rx_buffers` always has enough.
    pub(super) fn reserve_rx(&self, need: usize) -> (usize, bool) {
        let total = u64::from(self.spec.rx_buffers);
        if total == 0 {
            self.recv_out.fetch_add(need as u64, Ordering::AcqRel);
            return (need, false);
        }
        let mut out = self.recv_out.load(Ordering::Acquire);
        loop {
            let got = (need as u64).min(total.saturating_sub(out));
            if got == 0 {
                return (0, false);
            }
            match self.recv_out.compare_exchange(out, out + got, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return (got as usize, total - (out + got) < (total / 4).max(1)),
                Err(now) => out = now,
            }
        }
    }

    /// A low-resources indication begins (`reserve_rx` said low): rule
    /// retained-when-low. Once the handler of an earlier one returned, the
    /// binding must have given back every NBL it kept before that one
    /// began: the miniport said it is running low, and an NBL a protocol
    /// sits on is a buffer the NIC cannot fill (on Windows, frames for
    /// every protocol on the adapter are dropped meanwhile). Only checked
    /// while no receive handler runs (a driver may give NBLs back at the
    /// end of whichever of its indications ends last). Returns this
    /// indication's number, for `low_returned`.
    ///
    /// A driver thread outside any handler may have taken such NBLs off
    /// its own list to give them back and not yet called
    /// `NdisReturnNetBufferLists` (a driver cannot hold its lock across
    /// the call: NDIS may indicate from inside it). In a deterministic
    /// simulation there is no scheduling point in that window (the export
    /// yields after taking the NBLs back), so the rule holds at once.
    /// Running free, the host may preempt that thread there for as long as
    /// it likes, so the NBLs the rule would name get `IN_TRANSIT` of the
    /// time the process can run to come back before they are reported.
    pub(super) fn low_begins(&self, k: &Kernel, b: &Binding) -> u64 {
        let done = self.low_done.load(Ordering::Acquire);
        if done != 0 && self.in_handler.load(Ordering::Acquire) == 0 && !self.low_reported.load(Ordering::Acquire) {
            // Kept before indication `done` began, and still kept.
            let kept = |s: usize| {
                let s = s as *const RecvSlot;
                // SAFETY: the adapter's slots live as long as it; their
                // NBL's owner word and `kept_at` are atomics.
                unsafe {
                    nbl::owner((*s).nbl).load(Ordering::Acquire) == own::INDICATED
                        && (*s).kept_at.load(Ordering::Acquire) < done
                }
            };
            let mut held: Vec<usize> = lock(&self.recv_all).iter().copied().filter(|&s| kept(s)).collect();
            if !held.is_empty() && k.sched_here().is_none() {
                k.wait_until(IN_TRANSIT, "NBLs kept before a low-resources indication", || {
                    held.retain(|&s| kept(s));
                    held.is_empty()
                });
                held.retain(|&s| kept(s));
            }
            if !held.is_empty() && !self.low_reported.swap(true, Ordering::AcqRel) {
                Violation::new(
                    Rule::RetainedWhenLow,
                    "ProtocolReceiveNetBufferLists",
                    format!(
                        "{} received NBL(s) still kept after the miniport indicated with NDIS_RECEIVE_FLAGS_RESOURCES (low on receive buffers: {} of {} out) and that handler returned; they were kept before it, and are buffers the NIC cannot fill",
                        held.len(),
                        self.recv_out.load(Ordering::Relaxed),
                        self.spec.rx_buffers
                    ),
                )
                .with_binding(b.name.clone())
                .report();
            }
        }
        self.low_begun.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// How long, of the time the process can run, NBLs rule retained-when-low
/// would name get to come back in a free-running simulation (`low_begins`).
const IN_TRANSIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Free receive slots not reused before this many more are free, while
/// the verifier checksums NBLs.
const QUARANTINE: usize = 32;

/// The call `check_free` names for a slot given back inside its own
/// indication, checked when that handler returns.
pub(super) const CALL_IN_HANDLER: &str = "ProtocolReceiveNetBufferLists";

/// A free slot must be as it was when it was given back (`scribble`);
/// reported once.
///
/// # Safety
/// `s` is a free slot no one else touches now.
pub(super) unsafe fn check_free(s: *mut RecvSlot, mode: Checksum, call: &str) {
    // SAFETY: per the caller; a slot's NBL header names the binding it was
    // last indicated to, which lives for the simulation.
    unsafe {
        if (*s).returned_sum == 0 {
            return;
        }
        let now = nbl::checksum((*s).nbl, mode);
        if now != (*s).returned_sum {
            let bp = (*nbl::hdr((*s).nbl)).binding.load(Ordering::Relaxed);
            let b = (bp != 0).then(|| &*(bp as *const Binding));
            let when = if call == CALL_IN_HANDLER { ", in the same receive handler" } else { "" };
            Violation::new(
                Rule::NblOwnership,
                call,
                format!("a received NBL (or its data) was changed after the driver gave it back to NDIS{when}"),
            )
            .with_binding(b.map(|b| b.name.clone()))
            .with_object((*s).nbl as usize)
            .report();
            (*s).returned_sum = now;
        }
    }
}

/// While the verifier checksums NBLs: overwrites a slot's frames (0xDD)
/// and its NBL's `Next`, as a miniport reusing the buffer would, and
/// takes the sum a later write is caught by (`take_slots`, and the
/// indication a slot given back inside its handler belongs to).
///
/// # Safety
/// `s` is a receive slot no one else touches now (NDIS's, or one the
/// driver is giving back).
#[inline]
pub(super) unsafe fn scribble(k: &Kernel, s: *mut RecvSlot) {
    let mode = k.verifier.checksum();
    // SAFETY: per the caller.
    unsafe {
        if mode == Checksum::Off {
            (*s).returned_sum = 0;
        } else {
            overwrite(s, mode);
        }
    }
}

/// `scribble` while checksumming.
///
/// # Safety
/// As `scribble`.
#[inline(never)]
unsafe fn overwrite(s: *mut RecvSlot, mode: Checksum) {
    // SAFETY: per the caller.
    unsafe {
        for nb in (*s).nbs.iter_mut() {
            nb.buf.fill(0xDD);
        }
        // (Not part of the sum: NDIS relinks it.)
        (*(*s).nbl).anon.anon.Next = 0xDDDD_DDDD_DDDD_DDD0usize as *mut NET_BUFFER_LIST;
        (*s).returned_sum = nbl::checksum((*s).nbl, mode);
    }
}

fn new_nb() -> RecvNb {
    // SAFETY: NET_BUFFER is plain data.
    let nb = Box::into_raw(Box::new(NbBox(unsafe { std::mem::zeroed() }))).cast::<NET_BUFFER>();
    let mut r = RecvNb {
        nb,
        buf: Vec::new(),
        mdl: std::ptr::null_mut(),
        built: MdlFields::default(),
        sig: 0,
        shaped: Vec::new(),
    };
    r.new_buffer(2048);
    r
}

impl RecvNb {
    /// A buffer of `len` bytes and a fresh MDL describing all of it (the
    /// old ones freed), whose fields are kept as built.
    fn new_buffer(&mut self, len: usize) {
        self.buf = vec![0u8; len];
        if !self.mdl.is_null() {
            // SAFETY: this slot's whole-buffer MDL: the buffer it
            // described is being replaced, and the NET_BUFFER is refilled
            // before anyone sees it again.
            unsafe { nbl::free_mdl(self.mdl) };
        }
        self.mdl = nbl::alloc_mdl(self.buf.as_ptr() as usize, len, true);
        assert!(!self.mdl.is_null(), "a receive buffer's MDL could not be allocated");
        // SAFETY: just built.
        (self.built, self.sig) = unsafe { (MdlFields::of(self.mdl), mdl_sig(self.mdl)) };
    }
}

/// The fields of an MDL a driver must not write in an MDL NDIS gave it
/// with a received NBL (all but `Next`, which ndisim sets at each fill, and
/// the PFNs, which only a checksum covers): its `Size`, `MdlFlags`,
/// `MappedSystemVa`, `StartVa`, `ByteCount` and `ByteOffset`.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct MdlFields {
    size: i16,
    flags: i16,
    mapped: usize,
    start: usize,
    count: u32,
    offset: u32,
}

impl MdlFields {
    /// `m`'s fields now.
    ///
    /// # Safety
    /// `m` is a valid MDL.
    unsafe fn of(m: *const MDL) -> Self {
        // SAFETY: per the caller.
        let m = unsafe { &*m };
        MdlFields {
            size: m.Size,
            flags: m.MdlFlags,
            mapped: m.MappedSystemVa as usize,
            start: m.StartVa as usize,
            count: m.ByteCount,
            offset: m.ByteOffset,
        }
    }

    /// Writes these fields back into `m`.
    ///
    /// # Safety
    /// `m` is a valid MDL no one else touches now.
    unsafe fn restore(self, m: *mut MDL) {
        // SAFETY: per the caller.
        let m = unsafe { &mut *m };
        m.Size = self.size;
        m.MdlFlags = self.flags;
        m.MappedSystemVa = self.mapped as PVOID;
        m.StartVa = self.start as PVOID;
        m.ByteCount = self.count;
        m.ByteOffset = self.offset;
    }
}

/// Without checksums (which cover every MDL of a received NBL): each of
/// the slot's whole-buffer MDLs must come back as ndisim built it. Those
/// MDLs are reused from frame to frame with only their `Next` reset, so a
/// driver's write to one would also describe the next frames wrongly. One
/// not in the NBL's chain this time (fewer frames, or another layout) is
/// out of the driver's reach and unchanged. A changed one is reported
/// (receive-modified) and put back as built.
///
/// # Safety
/// `s` is a slot of an NBL NDIS indicated and takes back now.
#[inline(always)]
pub(super) unsafe fn check_mdls(s: *mut RecvSlot, call: &str, b: &Binding) {
    // SAFETY: per the caller; an indicated slot has a NET_BUFFER at
    // least. The first is checked inline (most NBLs have one, and a loop
    // over one cost a third of the check), the others, and whatever is
    // found, out of line.
    unsafe {
        let nbs = &(*s).nbs;
        debug_assert!(!nbs.is_empty());
        let r = &*nbs.as_ptr();
        if (mdl_sig(r.mdl) ^ r.sig) | (nbs.len() as u64 - 1) != 0 {
            check_all_mdls(s, call, b);
        }
    }
}

/// `check_mdls` past its first NET_BUFFER, or when it found that one's MDL
/// changed.
///
/// # Safety
/// As `check_mdls`.
#[inline(never)]
unsafe fn check_all_mdls(s: *mut RecvSlot, call: &str, b: &Binding) {
    // SAFETY: per the caller.
    let nbs = unsafe { &(*s).nbs };
    for r in nbs {
        // SAFETY: the slot's MDL, NDIS's again.
        if unsafe { mdl_sig(r.mdl) } != r.sig {
            // SAFETY: as above.
            unsafe { mdl_changed(s, r, call, &b.name) };
        }
    }
}

/// A word that changes when any of the `MdlFields` of `m` does (in the
/// receive benchmark, a compare of each field in a loop over the slot's
/// NET_BUFFERs cost 31 instructions a frame; this word, with the first
/// NET_BUFFER's inline, 9 to 11). The MDL's words are read
/// whole: `Size` and `MdlFlags` with the two reserved halfwords after
/// them, `ByteCount` with `ByteOffset`; `StartVa` is rotated, so that a
/// driver that moves both it and `MappedSystemVa` by the same pages does
/// not cancel out.
///
/// # Safety
/// `m` is a valid MDL.
#[inline(always)]
unsafe fn mdl_sig(m: *const MDL) -> u64 {
    const _: () = assert!(
        std::mem::offset_of!(MDL, Size) == 8
            && std::mem::offset_of!(MDL, MdlFlags) == 10
            && std::mem::offset_of!(MDL, MappedSystemVa) == 24
            && std::mem::offset_of!(MDL, StartVa) == 32
            && std::mem::offset_of!(MDL, ByteCount) == 40
            && std::mem::offset_of!(MDL, ByteOffset) == 44
    );
    let w = m.cast::<u64>();
    // SAFETY: per the caller: an MDL is 48 bytes, 8-aligned.
    unsafe { w.add(1).read() ^ w.add(3).read() ^ w.add(4).read().rotate_left(32) ^ w.add(5).read().rotate_left(16) }
}

/// Puts each of the slot's whole-buffer MDLs back as built (a sum found
/// the NBL changed: the MDLs may be among what changed).
///
/// # Safety
/// As `check_mdls`.
#[cold]
pub(super) unsafe fn restore_mdls(s: *mut RecvSlot) {
    // SAFETY: per the caller.
    for r in unsafe { (*s).nbs.iter() } {
        // SAFETY: the slot's MDL, NDIS's again.
        unsafe { r.built.restore(r.mdl) };
    }
}

/// `check_mdls` found `r`'s MDL changed.
///
/// # Safety
/// As `check_mdls`; `r` is one of the slot's.
#[cold]
#[inline(never)]
unsafe fn mdl_changed(s: *mut RecvSlot, r: &RecvNb, call: &str, binding: &str) {
    // SAFETY: per the caller.
    let now = unsafe { MdlFields::of(r.mdl) };
    let b = r.built;
    let mut what = Vec::new();
    for (name, was, is) in [
        ("Size", u64::from(b.size as u16), u64::from(now.size as u16)),
        ("MdlFlags", u64::from(b.flags as u16), u64::from(now.flags as u16)),
        ("MappedSystemVa", b.mapped as u64, now.mapped as u64),
        ("StartVa", b.start as u64, now.start as u64),
        ("ByteCount", u64::from(b.count), u64::from(now.count)),
        ("ByteOffset", u64::from(b.offset), u64::from(now.offset)),
    ] {
        if was != is {
            what.push(format!("{name} {was:#x} -> {is:#x}"));
        }
    }
    Violation::new(
        Rule::ReceiveModified,
        call,
        format!(
            "a received NBL came back with an MDL of its NET_BUFFER changed ({}): the driver has read-only access to what NDIS indicates",
            what.join(", ")
        ),
    )
    .with_binding(binding.to_string())
    // SAFETY: per the caller.
    .with_object(unsafe { (*s).nbl } as usize)
    .report();
    // SAFETY: per the caller: NDIS's again, and reused for the next frames.
    unsafe { b.restore(r.mdl) };
}

/// Fills `slot` with `frames` and links its NBs: NBL `nbl` of the
/// injection, whose first frame is the injection's frame `first`; `u` is
/// the injection's `InjectOpts::uniform`.
///
/// # Safety
/// The slot is ours (taken from the free list).
pub(super) unsafe fn fill_slot(
    a: &Adapter,
    s: *mut RecvSlot,
    frames: &[&[u8]],
    o: &InjectOpts,
    first: usize,
    nbl: usize,
    u: Uniform,
) {
    // SAFETY: per the caller.
    let s = unsafe { &mut *s };
    while s.nbs.len() < frames.len() {
        s.nbs.push(new_nb());
    }
    let n = s.nbl;
    // SAFETY: ours; reset what the driver may have seen last time.
    unsafe {
        let keep_pool = (*n).NdisPoolHandle;
        std::ptr::write_bytes(n.cast::<u8>(), 0, nbl::NBL_SIZE);
        (*n).NdisPoolHandle = keep_pool;
        (*n).SourceHandle = a as *const Adapter as NDIS_HANDLE;
        // NDIS's and the miniport's own words (on Windows the miniport
        // finds its receive descriptor through `MiniportReserved` at the
        // return): a pattern, checked unchanged when the NBL comes back.
        (*n).NdisReserved = reserved_pattern(n as usize, 0x4E44);
        (*n).MiniportReserved = reserved_pattern(n as usize, 0x4D50);
        if !u.plain {
            if let Some(t) = o.tci_of(nbl) {
                let info = ((t >> 13) & 7) as usize | ((((t >> 12) & 1) as usize) << 3) | (((t & 0xFFF) as usize) << 4);
                (*n).NetBufferListInfo[Ieee8021QNetBufferListInfo] = info as PVOID;
            }
            if let Some(c) = o.coalesce_of(nbl) {
                let (slot, value) = c.info();
                (*n).NetBufferListInfo[slot] = value;
            }
        }
        for (i, f) in frames.iter().enumerate() {
            let r = &mut s.nbs[i];
            if u.whole {
                // The frame alone in the buffer's one MDL (what the
                // general path below does for `NbLayout::default()`).
                if r.buf.len() < f.len() {
                    r.new_buffer(f.len().next_power_of_two());
                }
                free_shaped(r);
                r.buf[..f.len()].copy_from_slice(f);
                let nb = r.nb;
                std::ptr::write_bytes(nb, 0, 1);
                (*r.mdl).Next = std::ptr::null_mut();
                let d = &mut (*nb).anon.anon;
                d.MdlChain = r.mdl;
                d.CurrentMdl = r.mdl;
                d.anon.DataLength = f.len() as u32;
                debug_assert_eq!(nbl::nb_layout_error(nb), None);
                stamp_nb(nb, keep_pool);
            } else {
                let layout = o.layout_of(first + i);
                fill_nb(r, f, layout, keep_pool);
            }
            // Linked to the next frame's (filled next); the last one's
            // `Next` stays null from the zeroing.
            if i + 1 < frames.len() {
                (*s.nbs[i].nb).anon.anon.Next = s.nbs[i + 1].nb;
            }
        }
        (*n).anon.anon.FirstNetBuffer = s.nbs[0].nb;
    }
}

/// Frees the MDLs of a NET_BUFFER's last chain that was not its buffer's
/// one MDL.
///
/// # Safety
/// `r` is a slot's NET_BUFFER being filled: nothing uses those MDLs.
#[inline]
unsafe fn free_shaped(r: &mut RecvNb) {
    if !r.shaped.is_empty() {
        for m in r.shaped.drain(..) {
            // SAFETY: per the caller; ndisim allocated them for this slot.
            unsafe { nbl::free_mdl(m) };
        }
    }
}

/// NDIS's and the miniport's words of a received NET_BUFFER: the pool it
/// came from and patterns checked unchanged when it comes back.
///
/// # Safety
/// `nb` is a receive slot's NET_BUFFER being filled.
#[inline]
unsafe fn stamp_nb(nb: *mut NET_BUFFER, pool: NDIS_HANDLE) {
    // SAFETY: per the caller.
    unsafe {
        (*nb).NdisPoolHandle = pool;
        (*nb).NdisReserved = reserved_pattern(nb as usize, 0x4E42);
        let [m0, m1] = reserved_pattern(nb as usize, 0x4D42);
        (*nb).MiniportReserved = [m0, m1, m1, m0];
    }
}

/// Lays frame `f` out in `r`'s buffer and MDLs as `layout` says, and
/// fills its NET_BUFFER (but its `Next`).
///
/// # Safety
/// `r` is a slot's NET_BUFFER being filled.
unsafe fn fill_nb(r: &mut RecvNb, f: &[u8], layout: NbLayout, keep_pool: NDIS_HANDLE) {
    let h = layout.headroom as usize;
    let need = layout.buffer_len(f.len());
    // SAFETY: per the caller.
    unsafe {
        if r.buf.len() < need {
            r.new_buffer(need.next_power_of_two());
        }
        free_shaped(r);
        // What lies before and after the frame is not the frame's: a
        // pattern.
        let tail = layout.tail as usize;
        let packed = h + f.len() + tail;
        if h != 0 {
            r.buf[..h].fill(0xA5);
        }
        r.buf[h..h + f.len()].copy_from_slice(f);
        if tail != 0 {
            r.buf[h + f.len()..packed].fill(0x5A);
        }
        if layout.spread != 0 {
            // Each MDL's bytes where the spread chain puts them, the
            // gaps between them a pattern of their own.
            let run = r.buf[..packed].to_vec();
            r.buf[..need].fill(super::inject::SPREAD_FILL);
            for (i, &(at, n)) in layout.chain(f.len()).mdls.iter().enumerate() {
                let from = at - i * layout.spread as usize;
                r.buf[at..at + n].copy_from_slice(&run[from..from + n]);
            }
        }
        let nb = r.nb;
        std::ptr::write_bytes(nb, 0, 1);
        let d = &mut (*nb).anon.anon;
        if layout.is_whole() {
            (*r.mdl).Next = std::ptr::null_mut();
            d.MdlChain = r.mdl;
            d.CurrentMdl = r.mdl;
            d.CurrentMdlOffset = 0;
        } else {
            let base = r.buf.as_ptr() as usize;
            let shape = layout.chain(f.len());
            for &(at, n) in &shape.mdls {
                let m = nbl::alloc_mdl(base + at, n, !layout.unmapped);
                if let Some(&last) = r.shaped.last() {
                    (*last).Next = m;
                }
                r.shaped.push(m);
            }
            d.MdlChain = r.shaped[0];
            d.CurrentMdl = r.shaped[shape.current];
            d.CurrentMdlOffset = shape.current_offset as u32;
        }
        d.anon.DataLength = f.len() as u32;
        d.DataOffset = h as u32;
        debug_assert_eq!(nbl::nb_layout_error(nb), None, "{layout:?}");
        stamp_nb(nb, keep_pool);
    }
}

/// The pattern NDIS (`tag` "ND..") or the miniport ("MP..") leaves in
/// its reserved words of a received NBL or NET_BUFFER at `at`.
fn reserved_pattern(at: usize, tag: u16) -> [PVOID; 2] {
    let w = (u64::from(tag) << 48) ^ (at as u64).rotate_left(17);
    [w as PVOID, (!w) as PVOID]
}
