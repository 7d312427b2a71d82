//! The rx side of a UMEM's rings: `RxRun`, a run of received frames
//! placed into the UMEM (one at a time, or a batch at a time).

use super::{EntryWords, RingState, RxDrop, SharedMem, ready, room};
use rawnic_proto::ring::RxDesc;

/// The rx side of a `RingState` for a run of received frames (one chunk of
/// an indication): its indices, the layout's figures and the counters it
/// moves, held here rather than behind the state's reference, so that
/// they stay in registers while the frames' bytes and descriptors go to
/// shared memory. Dropping it writes everything back to the state.
pub struct RxRun<'s, 'm, M: SharedMem + 'm> {
    pub(super) state: &'s mut RingState,
    pub(super) fill_entries: M::Entries<'m, 1>,
    pub(super) rx_entries: M::Entries<'m, { RxDesc::LEN / 8 }>,
    pub(super) frames: u64,
    pub(super) frame_size: u32,
    pub(super) frame_shift: u32,
    pub(super) frame_count: u64,
    pub(super) fill_cons: u32,
    pub(super) fill_avail: u32,
    /// The fill entry at `fill_cons` whenever `fill_avail` is not 0, read
    /// ahead to prefetch its frame. Taking the entry uses this value: an
    /// entry is read once before it is checked and used.
    pub(super) next_fill: u64,
    pub(super) rx_prod: u32,
    pub(super) rx_room: u32,
    pub(super) fill_empty: u64,
    pub(super) ring_full: u64,
    pub(super) fill_invalid: u64,
    pub(super) bad_index: u64,
}

impl<M: SharedMem> RxRun<'_, '_, M> {
    /// The frame size: the most one frame takes.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// `RingLayout::is_frame_start`, in one rotation and one compare: the
    /// offset from the first frame, rotated right by the frame shift, is
    /// the frame's index when the offset is a multiple of the frame size,
    /// and otherwise at least `2^(64 - shift)` (a bit below the shift went
    /// to the top), which is more than the frames there are (a `u32`
    /// count, and a shift under 32: `2^(64 - shift)` is over `2^32`).
    #[inline(always)]
    pub(super) fn is_frame_start(&self, addr: u64) -> bool {
        addr.wrapping_sub(self.frames).rotate_right(self.frame_shift) < self.frame_count
    }

    /// Places one received frame: takes a frame from the fill ring, lets
    /// `copy(offset, capacity)` write the frame's bytes there (it returns
    /// how many it wrote), and puts its descriptor on the rx ring (`desc`
    /// gives everything but the offset and length). Fill entries that are
    /// not a frame's first byte are skipped and counted. The rx producer
    /// index is published by `RingState::publish`. `Ok(true)` when fewer
    /// bytes than the frame's were placed (`TRUNCATED` is then set in the
    /// descriptor, whatever cut them: the caller, the frame size, or a copy
    /// that gave less).
    #[inline(always)]
    pub fn frame(
        &mut self,
        mem: &M,
        mut desc: RxDesc,
        copy: impl FnOnce(usize, usize) -> usize,
    ) -> Result<bool, RxDrop> {
        let addr = self.take(mem)?;
        let cap = self.frame_size as usize;
        let len = copy(addr as usize, cap).min(cap);
        desc.addr = addr;
        desc.len = len as u32;
        Ok(self.post(desc))
    }

    /// Places a batch of frames (`items`, at most `N` of them) in order,
    /// exactly as `frame` would one after another, for frames whose copy
    /// cannot come up short: `desc(item)` is a frame's descriptor but where
    /// and how much (its `len` is not read; called once for each frame
    /// placed, in order, just before its copy), `copy(item, offset, len)`
    /// copies exactly the first `len` bytes of it there (`len` is
    /// `desc(item).origlen.min(keep)`, the descriptor's, and at most the
    /// frame size), and `dropped(item, why)` hears of
    /// each frame that was not placed. Two passes, so that each keeps few
    /// values: the rx slots and fill entries are taken (each entry read
    /// once and checked, as `frame` takes them, and each frame's first line
    /// fetched), then each descriptor is written and its frame copied
    /// (nothing is published before `RingState::publish`). Returns the
    /// frames cut short (`TRUNCATED`).
    #[inline(always)]
    pub fn frames<T: Copy, const N: usize>(
        &mut self,
        mem: &M,
        items: &[T],
        keep: u32,
        desc: impl Fn(&T) -> RxDesc,
        mut copy: impl FnMut(&T, usize, u32),
        mut dropped: impl FnMut(&T, RxDrop),
    ) -> u32 {
        /// A frame that was not placed (no frame start is this: it lies
        /// past every UMEM's end).
        const NONE: u64 = u64::MAX;
        // A power of two: `take_run`'s modulo is a mask.
        const { assert!(N.is_power_of_two()) };
        let items = &items[..items.len().min(N)];
        let n = items.len();
        let mut addrs = [NONE; N];
        // The rx slots taken so far: their descriptors are written below,
        // from `first`.
        let first = self.rx_prod;
        let mut taken = 0u32;
        let mut i = 0;
        let mut all = true;
        while i < n {
            let k = self.take_run(mem, &mut addrs, i, n - i);
            taken = taken.wrapping_add(k as u32);
            i += k;
            if let Some(item) = items.get(i) {
                // The rx ring is full or the fill ring empty, as far as the
                // run knows: as `frame` does, the indices are read again
                // (the room with the slots taken counted, as if their
                // descriptors were written).
                self.rx_prod = first.wrapping_add(taken);
                match self.take(mem) {
                    Ok(addr) => {
                        addrs[i] = addr;
                        taken = taken.wrapping_add(1);
                    }
                    Err(why) => {
                        dropped(item, why);
                        all = false;
                    }
                }
                i += 1;
            }
        }
        let keep = keep.min(self.frame_size);
        // A descriptor is written below for each slot taken (set now: the
        // run is not needed again, and nothing of it stays live across
        // the loop's calls).
        self.rx_prod = first.wrapping_add(taken);
        // The descriptors go to the slots taken, `first` on, one after
        // another (a pointer into the ring, not a place worked out from
        // each index).
        let rx = self.rx_entries;
        let mut write = rx.writer(first);
        // (Counted for the check below only: gone from a release build.)
        let mut posted = 0u32;
        let mut cut = 0;
        let mut post = |item: &T, addr: u64| {
            let mut d = desc(item);
            d.addr = addr;
            d.len = d.origlen.min(keep);
            let short = d.len < d.origlen;
            if short {
                d.flags |= rawnic_proto::frame_flags::TRUNCATED;
            }
            cut += u32::from(short);
            write(Some(rx_words(&d)));
            posted = posted.wrapping_add(1);
            d.len
        };
        // (The usual batch, every frame placed, without a look for the
        // frames that were not.)
        if all {
            for (item, &addr) in items.iter().zip(&addrs) {
                // (Read once: the descriptor and the copy see the same.)
                let item = *item;
                let len = post(&item, addr);
                copy(&item, addr as usize, len);
            }
        } else {
            for (item, &addr) in items.iter().zip(&addrs) {
                if addr != NONE {
                    let item = *item;
                    let len = post(&item, addr);
                    copy(&item, addr as usize, len);
                }
            }
        }
        debug_assert_eq!(posted, taken, "a descriptor for each slot taken");
        cut
    }

    /// Takes rx slots and fill entries for up to `most` frames while the rx
    /// room and the fill entries last (as far as known: no index is read),
    /// as `take` does for each: their offsets, into `out` from `at` (`at +
    /// most <= N`); returns how many (fewer when entries were not a frame's
    /// first byte: those are skipped and counted). Each fill entry is read
    /// once (`next_fill` is the first) and checked.
    #[inline(always)]
    fn take_run<const N: usize>(&mut self, mem: &M, out: &mut [u64; N], at: usize, most: usize) -> usize {
        let fill = self.fill_entries;
        let (base, shift, count) = (self.frames, self.frame_shift, self.frame_count);
        let first = self.fill_cons;
        // This run looks at the entries `first..first + look`, all
        // available.
        let look = self.fill_avail.min(self.rx_room).min(most.min(N) as u32);
        if look == 0 {
            return 0;
        }
        let prefetch = mem.prefetcher();
        // Where the next frame start goes (`at` + those found).
        let mut o = at;
        let mut check = |addr: u64| {
            // `is_frame_start`.
            if addr.wrapping_sub(base).rotate_right(shift) < count {
                // (`o < N`: the modulo is only there to say so.)
                out[o % N] = addr;
                o += 1;
                // The frame is likely cold (the UMEM is larger than the
                // caches): its first line is fetched while the batch is
                // taken, before the copies.
                prefetch(addr as usize);
            }
        };
        // The first entry was read ahead (`next_fill`); each of the others
        // is read here, once, by a walk of the ring's memory.
        check(self.next_fill);
        fill.for_each(first.wrapping_add(1), look - 1, |[addr]| check(addr));
        let k = o - at;
        let cons = first.wrapping_add(look);
        self.fill_cons = cons;
        self.fill_avail -= look;
        if self.fill_avail != 0 {
            // Read ahead (`next_fill`'s invariant).
            [self.next_fill] = fill.load(cons);
        }
        self.rx_room -= k as u32;
        self.fill_invalid += u64::from(look - k as u32);
        k
    }

    /// Takes an rx slot and a frame from the fill ring for a received
    /// frame: its offset. Fill entries that are not a frame's first byte
    /// are skipped and counted.
    #[inline(always)]
    fn take(&mut self, mem: &M) -> Result<u64, RxDrop> {
        if self.rx_room == 0 {
            // (The layout read from the state: the run keeps no copy of
            // what only this look at the indices needs.)
            let rx = self.state.layout.rx;
            let cons = mem.load_u32(rx.consumer());
            self.rx_room = room(self.rx_prod, cons, rx.size, &mut self.bad_index);
            if self.rx_room == 0 {
                self.ring_full += 1;
                return Err(RxDrop::RingFull);
            }
        }
        let addr = loop {
            if self.fill_avail == 0 {
                let fill = self.state.layout.fill;
                let prod = mem.load_u32(fill.producer());
                self.fill_avail = ready(prod, self.fill_cons, fill.size, &mut self.bad_index);
                if self.fill_avail == 0 {
                    self.fill_empty += 1;
                    return Err(RxDrop::FillEmpty);
                }
                [self.next_fill] = self.fill_entries.load(self.fill_cons);
            }
            let addr = self.next_fill;
            self.fill_cons = self.fill_cons.wrapping_add(1);
            self.fill_avail -= 1;
            if self.fill_avail != 0 {
                // Read ahead (`next_fill`'s invariant).
                [self.next_fill] = self.fill_entries.load(self.fill_cons);
            }
            if self.is_frame_start(addr) {
                break addr;
            }
            self.fill_invalid += 1;
        };
        if self.fill_avail != 0 {
            // The next frame is likely cold (the UMEM is larger than the
            // caches): its first line is fetched while this frame is copied
            // (a hint: nothing is believed before the entry is checked,
            // when it is taken).
            mem.prefetch_write(self.next_fill as usize);
        }
        self.rx_room -= 1;
        Ok(addr)
    }

    /// Writes a placed frame's descriptor (its slot was taken by `take`):
    /// `TRUNCATED` when fewer bytes than the frame's were placed, which
    /// this returns.
    #[inline(always)]
    fn post(&mut self, mut desc: RxDesc) -> bool {
        let cut = desc.len < desc.origlen;
        if cut {
            desc.flags |= rawnic_proto::frame_flags::TRUNCATED;
        }
        self.rx_entries.store(self.rx_prod, rx_words(&desc));
        self.rx_prod = self.rx_prod.wrapping_add(1);
        cut
    }
}

/// An rx descriptor's four words, as `RxDesc::to_bytes` lays them out.
#[inline(always)]
fn rx_words(d: &RxDesc) -> [u64; RxDesc::LEN / 8] {
    [
        d.addr,
        u64::from(d.len) | (u64::from(d.origlen) << 32),
        d.timestamp_ns,
        u64::from(d.flags) | (u64::from(d.tci) << 16) | (u64::from(d.segs) << 32) | (u64::from(d.seg_size) << 48),
    ]
}

impl<M: SharedMem> Drop for RxRun<'_, '_, M> {
    fn drop(&mut self) {
        let s = &mut *self.state;
        // Frames placed: how far the run moved the rx producer (the state
        // keeps its index from before the run until now).
        let placed = self.rx_prod.wrapping_sub(s.rx_prod);
        s.fill_cons = self.fill_cons;
        s.fill_avail = self.fill_avail;
        s.rx_prod = self.rx_prod;
        s.rx_room = self.rx_room;
        s.rx_dirty |= placed != 0;
        let c = &mut s.counters;
        c.rx_frames += u64::from(placed);
        c.rx_fill_empty += self.fill_empty;
        c.rx_ring_full += self.ring_full;
        c.fill_invalid += self.fill_invalid;
        c.bad_index += self.bad_index;
    }
}
