//! The driver's side of a UMEM's rings (`rawnic_proto::ring`): its own
//! indices, the checks on everything it reads from user memory, and the
//! counters it publishes.
//!
//! User memory is reached only through `SharedMem`, whose every access is a
//! copy (never a reference): the user may change any byte at any moment. The
//! driver's indices live here, in kernel memory, and are only *published*;
//! the user's indices are read once per refresh and believed only as far as
//! the ring size allows (an index further than that counts `BAD_INDEX` and
//! the ring is taken as empty or full). A descriptor is read once into a
//! local and checked before use.

pub use rawnic_proto::ring::RingCounters;
use rawnic_proto::ring::{RingArea, RingLayout, RxDesc, TxDesc, control};
use rawnic_proto::{PROTO_VERSION, ring::RING_MAGIC};

/// User memory as the driver reaches it. Offsets are in bytes from the
/// UMEM's start; an implementation may panic on one out of range (every
/// offset `RingState` passes is inside the layout by construction).
pub trait SharedMem {
    /// Reads a `u32` with acquire ordering (an index the user publishes).
    fn load_u32(&self, off: usize) -> u32;
    /// Writes a `u32` with release ordering (an index the driver publishes:
    /// everything written before it is visible first).
    fn store_u32(&self, off: usize, v: u32);
    /// Reads a `u64` (a descriptor word).
    fn load_u64(&self, off: usize) -> u64;
    /// Writes a `u64` (a counter, a descriptor word).
    fn store_u64(&self, off: usize, v: u64);
    /// Writes `N` consecutive `u64`s (a descriptor): as `store_u64` at
    /// `off`, `off + 8`, ..., which an implementation may check once.
    #[inline]
    fn store_words<const N: usize>(&self, off: usize, words: [u64; N]) {
        for (i, w) in words.into_iter().enumerate() {
            self.store_u64(off + 8 * i, w);
        }
    }
    /// Reads `N` consecutive `u64`s (a descriptor), as `load_u64` does.
    #[inline]
    fn load_words<const N: usize>(&self, off: usize) -> [u64; N] {
        core::array::from_fn(|i| self.load_u64(off + 8 * i))
    }
    /// Reads bytes.
    fn read(&self, off: usize, dst: &mut [u8]);
    /// Writes bytes.
    fn write(&self, off: usize, src: &[u8]);
    /// A hint that the bytes at `off` are about to be written (the next
    /// frame a run copies into): nothing is read or written, and an offset
    /// outside the memory is ignored.
    #[inline]
    fn prefetch_write(&self, off: usize) {
        let _ = off;
    }
}

/// Where a ring's entries are, for entries of `SIZE` bytes (the size
/// `RingLayout` gives that ring): `RingArea::entry_at` with a mask and a
/// constant size, its figures read once.
#[derive(Debug, Clone, Copy)]
struct Entries<const SIZE: usize> {
    first: usize,
    mask: u32,
}

impl<const SIZE: usize> Entries<SIZE> {
    fn of(ring: RingArea) -> Self {
        debug_assert_eq!(ring.entry, SIZE);
        Entries { first: ring.entry_at(0), mask: ring.size - 1 }
    }

    /// The offset of the entry for free-running index `i`.
    #[inline(always)]
    fn at(&self, i: u32) -> usize {
        self.first + (i & self.mask) as usize * SIZE
    }
}

/// Why a received frame was not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxDrop {
    /// The rx ring has no room.
    RingFull,
    /// The fill ring has no (valid) frame.
    FillEmpty,
}

/// What `tx_next` found on the tx ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxNext {
    /// A valid frame to send; its completion is reserved.
    Frame(TxDesc),
    /// A descriptor that failed its checks: it was posted on the
    /// completion ring unsent and counted (`TX_INVALID`).
    Invalid,
    /// Nothing more may be taken now (empty ring, or no completion room).
    Done,
}

/// Entries the user says are ready on a ring the driver consumes, from the
/// driver's consumer index `cons`; a producer index further than the ring
/// size counts in `bad_index` and gives 0.
#[inline]
fn ready(prod: u32, cons: u32, size: u32, bad_index: &mut u64) -> u32 {
    let n = prod.wrapping_sub(cons);
    if n > size {
        *bad_index += 1;
        0
    } else {
        n
    }
}

/// Room on a ring the driver produces (`prod` is the driver's, plus what it
/// has reserved), from the user's consumer index; an impossible index counts
/// in `bad_index` and gives 0.
#[inline]
fn room(prod: u32, cons: u32, size: u32, bad_index: &mut u64) -> u32 {
    let used = prod.wrapping_sub(cons);
    if used > size {
        *bad_index += 1;
        0
    } else {
        size - used
    }
}

/// The driver's state of one UMEM's rings.
///
/// # Invariants
/// `comp_prod + comp_owed - (the user's completion consumer) <= size` as
/// long as the user's consumer only moves forward: every frame taken from
/// the tx ring has its completion entry reserved (`comp_owed`) until it is
/// posted, so a completion never overwrites one the user has not consumed.
#[derive(Debug)]
pub struct RingState {
    layout: RingLayout,
    fill_cons: u32,
    rx_prod: u32,
    tx_cons: u32,
    comp_prod: u32,
    /// Frames taken from the tx ring whose completion is not posted yet.
    comp_owed: u32,
    /// What the last refresh allowed: fill entries available, rx room, tx
    /// entries available, completion room (minus `comp_owed`).
    fill_avail: u32,
    rx_room: u32,
    tx_avail: u32,
    comp_room: u32,
    /// log2 of the frame size (a power of two), so that checking an offset
    /// takes a shift and a mask, not a division.
    frame_shift: u32,
    /// Each ring's entries.
    fill_entries: Entries<8>,
    rx_entries: Entries<{ RxDesc::LEN }>,
    tx_entries: Entries<{ TxDesc::LEN }>,
    comp_entries: Entries<8>,
    /// Whether anything was produced since the last `publish`.
    rx_dirty: bool,
    comp_dirty: bool,
    pub counters: RingCounters,
}

impl RingState {
    /// The driver's side of a freshly attached UMEM. Its own indices start
    /// at 0 and are published at once; the user's are read as they are (the
    /// fill ring may be stocked before the attach).
    pub fn new(layout: RingLayout, mem: &impl SharedMem) -> Self {
        let s = RingState {
            layout,
            fill_cons: 0,
            rx_prod: 0,
            tx_cons: 0,
            comp_prod: 0,
            comp_owed: 0,
            fill_avail: 0,
            rx_room: 0,
            tx_avail: 0,
            comp_room: 0,
            frame_shift: layout.frame_size.trailing_zeros(),
            fill_entries: Entries::of(layout.fill),
            rx_entries: Entries::of(layout.rx),
            tx_entries: Entries::of(layout.tx),
            comp_entries: Entries::of(layout.completion),
            rx_dirty: false,
            comp_dirty: false,
            counters: RingCounters::default(),
        };
        mem.store_u32(layout.fill.consumer(), 0);
        mem.store_u32(layout.rx.producer(), 0);
        mem.store_u32(layout.tx.consumer(), 0);
        mem.store_u32(layout.completion.producer(), 0);
        s.publish_counters(mem);
        mem.store_u32(control::VERSION, u32::from(PROTO_VERSION));
        mem.store_u32(control::MAGIC, RING_MAGIC);
        s
    }

    pub fn layout(&self) -> &RingLayout {
        &self.layout
    }

    /// Places one received frame (see `RxRun::frame`); for a run of frames
    /// take an `RxRun` once.
    pub fn rx_frame(
        &mut self,
        mem: &impl SharedMem,
        desc: RxDesc,
        copy: impl FnOnce(usize, usize) -> usize,
    ) -> Result<(), RxDrop> {
        self.rx_run().frame(mem, desc, copy)
    }

    /// The rx side, for a run of received frames: see `RxRun`.
    #[inline]
    pub fn rx_run(&mut self) -> RxRun<'_> {
        let l = self.layout;
        RxRun {
            fill: l.fill,
            rx: l.rx,
            fill_entries: self.fill_entries,
            rx_entries: self.rx_entries,
            frames: l.frames as u64,
            frame_size: l.frame_size,
            frame_shift: self.frame_shift,
            frame_count: u64::from(l.frame_count),
            fill_cons: self.fill_cons,
            fill_avail: self.fill_avail,
            next_fill: None,
            rx_prod: self.rx_prod,
            rx_room: self.rx_room,
            placed: 0,
            fill_empty: 0,
            ring_full: 0,
            fill_invalid: 0,
            bad_index: 0,
            state: self,
        }
    }

    /// Rereads the tx producer and the completion consumer, and returns how
    /// many tx descriptors may be taken now (at most `budget`).
    pub fn tx_refresh(&mut self, mem: &impl SharedMem, budget: u32) -> u32 {
        let (l_tx, l_comp) = (self.layout.tx, self.layout.completion);
        let prod = mem.load_u32(l_tx.producer());
        self.tx_avail = ready(prod, self.tx_cons, l_tx.size, &mut self.counters.bad_index);
        let cons = mem.load_u32(l_comp.consumer());
        self.comp_room =
            room(self.comp_prod.wrapping_add(self.comp_owed), cons, l_comp.size, &mut self.counters.bad_index);
        self.tx_avail.min(self.comp_room).min(budget)
    }

    /// Takes the next tx descriptor (after `tx_refresh`): reads it once and
    /// checks it against the layout and `max_len` (the binding's largest
    /// frame). A valid one has its completion reserved; an invalid one is
    /// completed at once, unsent.
    pub fn tx_next(&mut self, mem: &impl SharedMem, max_len: usize) -> TxNext {
        if self.tx_avail == 0 || self.comp_room == 0 {
            return TxNext::Done;
        }
        // Read once, as two words (`TxDesc::to_bytes`'s layout).
        let [addr, w] = mem.load_words(self.tx_entries.at(self.tx_cons));
        let d = TxDesc { addr, len: w as u32, flags: (w >> 32) as u32 };
        self.tx_cons = self.tx_cons.wrapping_add(1);
        self.tx_avail -= 1;
        self.comp_room -= 1;
        self.comp_owed += 1;
        if self.tx_ok(&d, max_len) {
            TxNext::Frame(d)
        } else {
            self.counters.tx_invalid += 1;
            self.complete(mem, d.addr, None);
            TxNext::Invalid
        }
    }

    /// `RingLayout::check_tx`, with a shift and a mask.
    #[inline]
    fn tx_ok(&self, d: &TxDesc, max_len: usize) -> bool {
        let fs = u64::from(self.layout.frame_size);
        let rel = d.addr.wrapping_sub(self.layout.frames as u64);
        d.flags == 0
            && (rawnic_proto::ETH_HEADER..=max_len).contains(&(d.len as usize))
            && rel >> self.frame_shift < u64::from(self.layout.frame_count)
            && (rel & (fs - 1)) + u64::from(d.len) <= fs
    }

    /// Refuses a frame `tx_next` returned that fails a check only the
    /// caller can make (its length against the frame's own tag, say): it
    /// is completed unsent and counted as invalid.
    pub fn tx_refuse(&mut self, mem: &impl SharedMem, addr: u64) {
        self.counters.tx_invalid += 1;
        self.complete(mem, addr, None);
    }

    /// Gives back a frame `tx_next` returned but that could not be sent
    /// after all: it is completed unsent, as a failed send.
    pub fn tx_unsent(&mut self, mem: &impl SharedMem, addr: u64) {
        self.complete(mem, addr, Some(false));
    }

    /// Posts a sent frame's completion (`ok`: whether NDIS sent it).
    pub fn tx_complete(&mut self, mem: &impl SharedMem, addr: u64, ok: bool) {
        self.complete(mem, addr, Some(ok));
    }

    fn complete(&mut self, mem: &impl SharedMem, addr: u64, sent: Option<bool>) {
        debug_assert!(self.comp_owed > 0, "every completion was reserved");
        self.comp_owed = self.comp_owed.saturating_sub(1);
        mem.store_u64(self.comp_entries.at(self.comp_prod), addr);
        self.comp_prod = self.comp_prod.wrapping_add(1);
        self.comp_dirty = true;
        match sent {
            Some(true) => self.counters.tx_frames += 1,
            Some(false) => self.counters.tx_errors += 1,
            None => {}
        }
    }

    /// Frames taken from the tx ring and not completed yet.
    pub fn tx_outstanding(&self) -> u32 {
        self.comp_owed
    }

    /// Publishes the driver's indices (each with release ordering, after
    /// the entries it covers) and counters. Returns (rx, completion): which
    /// rings got new entries since the last publish.
    pub fn publish(&mut self, mem: &impl SharedMem) -> (bool, bool) {
        let l = self.layout;
        mem.store_u32(l.fill.consumer(), self.fill_cons);
        mem.store_u32(l.tx.consumer(), self.tx_cons);
        mem.store_u32(l.rx.producer(), self.rx_prod);
        mem.store_u32(l.completion.producer(), self.comp_prod);
        self.publish_counters(mem);
        let out = (self.rx_dirty, self.comp_dirty);
        self.rx_dirty = false;
        self.comp_dirty = false;
        out
    }

    fn publish_counters(&self, mem: &impl SharedMem) {
        for (off, v) in self.counters.words() {
            mem.store_u64(off, v);
        }
    }

    /// (rx producer, completion producer), as published.
    pub fn producers(&self) -> (u32, u32) {
        (self.rx_prod, self.comp_prod)
    }

    /// Which of `wait_flags` hold: entries the user has not consumed on the
    /// rx or completion ring (by the consumer indices it published; a
    /// garbage index only makes a wait return early).
    pub fn ready_flags(&self, mem: &impl SharedMem) -> u16 {
        use rawnic_proto::ring::wait_flags;
        let l = self.layout;
        let mut f = 0;
        if mem.load_u32(l.rx.consumer()) != self.rx_prod {
            f |= wait_flags::RX;
        }
        if mem.load_u32(l.completion.consumer()) != self.comp_prod {
            f |= wait_flags::COMPLETION;
        }
        f
    }
}

/// The rx side of a `RingState` for a run of received frames (one chunk of
/// an indication): its indices, the layout's figures and the counters it
/// moves, held here rather than behind the state's reference, so that
/// they stay in registers while the frames' bytes and descriptors go to
/// shared memory. Dropping it writes everything back to the state.
pub struct RxRun<'s> {
    state: &'s mut RingState,
    fill: RingArea,
    rx: RingArea,
    fill_entries: Entries<8>,
    rx_entries: Entries<{ RxDesc::LEN }>,
    frames: u64,
    frame_size: u32,
    frame_shift: u32,
    frame_count: u64,
    fill_cons: u32,
    fill_avail: u32,
    /// The fill entry at `fill_cons`, read ahead to prefetch its frame
    /// (`None` when not read). Taking the entry uses this value: an entry
    /// is read once.
    next_fill: Option<u64>,
    rx_prod: u32,
    rx_room: u32,
    placed: u64,
    fill_empty: u64,
    ring_full: u64,
    fill_invalid: u64,
    bad_index: u64,
}

impl RxRun<'_> {
    /// The frame size: the most one frame takes.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// `RingLayout::is_frame_start`, with a shift and a mask.
    #[inline]
    fn is_frame_start(&self, addr: u64) -> bool {
        let rel = addr.wrapping_sub(self.frames);
        rel & (u64::from(self.frame_size) - 1) == 0 && rel >> self.frame_shift < self.frame_count
    }

    /// Places one received frame: takes a frame from the fill ring, lets
    /// `copy(offset, capacity)` write the frame's bytes there (it returns
    /// how many it wrote), and puts its descriptor on the rx ring (`desc`
    /// gives everything but the offset and length). Fill entries that are
    /// not a frame's first byte are skipped and counted. The rx producer
    /// index is published by `RingState::publish`.
    #[inline(always)]
    pub fn frame(
        &mut self,
        mem: &impl SharedMem,
        mut desc: RxDesc,
        copy: impl FnOnce(usize, usize) -> usize,
    ) -> Result<(), RxDrop> {
        if self.rx_room == 0 {
            let cons = mem.load_u32(self.rx.consumer());
            self.rx_room = room(self.rx_prod, cons, self.rx.size, &mut self.bad_index);
            if self.rx_room == 0 {
                self.ring_full += 1;
                return Err(RxDrop::RingFull);
            }
        }
        let addr = loop {
            if self.fill_avail == 0 {
                let prod = mem.load_u32(self.fill.producer());
                self.fill_avail = ready(prod, self.fill_cons, self.fill.size, &mut self.bad_index);
                if self.fill_avail == 0 {
                    self.fill_empty += 1;
                    return Err(RxDrop::FillEmpty);
                }
            }
            let addr = match self.next_fill.take() {
                Some(a) => a,
                None => mem.load_u64(self.fill_entries.at(self.fill_cons)),
            };
            self.fill_cons = self.fill_cons.wrapping_add(1);
            self.fill_avail -= 1;
            if self.is_frame_start(addr) {
                break addr;
            }
            self.fill_invalid += 1;
        };
        if self.fill_avail != 0 {
            // The next frame is likely cold (the UMEM is larger than the
            // caches): its entry is read now, and its first line fetched
            // while this frame is copied (a hint: nothing is believed
            // before the entry is checked, when it is taken).
            let next = mem.load_u64(self.fill_entries.at(self.fill_cons));
            self.next_fill = Some(next);
            mem.prefetch_write(next as usize);
        }
        let cap = self.frame_size as usize;
        let len = copy(addr as usize, cap).min(cap);
        desc.addr = addr;
        desc.len = len as u32;
        // Four words, as `RxDesc::to_bytes` lays them out.
        mem.store_words(
            self.rx_entries.at(self.rx_prod),
            [
                desc.addr,
                u64::from(desc.len) | u64::from(desc.origlen) << 32,
                desc.timestamp_ns,
                u64::from(desc.flags)
                    | u64::from(desc.tci) << 16
                    | u64::from(desc.segs) << 32
                    | u64::from(desc.seg_size) << 48,
            ],
        );
        self.rx_prod = self.rx_prod.wrapping_add(1);
        self.rx_room -= 1;
        self.placed += 1;
        Ok(())
    }
}

impl Drop for RxRun<'_> {
    fn drop(&mut self) {
        let s = &mut *self.state;
        s.fill_cons = self.fill_cons;
        s.fill_avail = self.fill_avail;
        s.rx_prod = self.rx_prod;
        s.rx_room = self.rx_room;
        s.rx_dirty |= self.placed != 0;
        let c = &mut s.counters;
        c.rx_frames += self.placed;
        c.rx_fill_empty += self.fill_empty;
        c.rx_ring_full += self.ring_full;
        c.fill_invalid += self.fill_invalid;
        c.bad_index += self.bad_index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use rawnic_proto::ring::{RingSetup, wait_flags};
    use std::vec;
    use std::vec::Vec;

    struct Mem(RefCell<Vec<u8>>);

    impl SharedMem for Mem {
        fn load_u32(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
        }
        fn store_u32(&self, off: usize, v: u32) {
            self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        fn load_u64(&self, off: usize) -> u64 {
            u64::from_le_bytes(self.0.borrow()[off..off + 8].try_into().unwrap())
        }
        fn store_u64(&self, off: usize, v: u64) {
            self.0.borrow_mut()[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        fn read(&self, off: usize, dst: &mut [u8]) {
            dst.copy_from_slice(&self.0.borrow()[off..off + dst.len()]);
        }
        fn write(&self, off: usize, src: &[u8]) {
            self.0.borrow_mut()[off..off + src.len()].copy_from_slice(src);
        }
    }

    fn setup() -> (RingLayout, Mem) {
        let s = RingSetup { frame_size: 2048, frame_count: 16, fill: 8, rx: 8, tx: 8, completion: 8 };
        let l = RingLayout::new(&s).unwrap();
        (l, Mem(RefCell::new(vec![0xEE; l.total])))
    }

    fn frame(l: &RingLayout, i: u64) -> u64 {
        l.frames as u64 + i * 2048
    }

    /// The user posts `addrs` on the fill ring.
    fn fill(l: &RingLayout, m: &Mem, addrs: &[u64]) {
        let mut p = m.load_u32(l.fill.producer());
        for a in addrs {
            m.store_u64(l.fill.entry_at(p), *a);
            p = p.wrapping_add(1);
        }
        m.store_u32(l.fill.producer(), p);
    }

    fn tx(l: &RingLayout, m: &Mem, descs: &[TxDesc]) {
        let mut p = m.load_u32(l.tx.producer());
        for d in descs {
            m.write(l.tx.entry_at(p), &d.to_bytes());
            p = p.wrapping_add(1);
        }
        m.store_u32(l.tx.producer(), p);
    }

    proptest::proptest! {
        /// One `RxRun` over many frames (which keeps the room and the fill
        /// entries it read between frames) leaves the state, the counters
        /// and the shared memory exactly as one `rx_frame` per frame does,
        /// whatever the user posted (garbage fill entries, a producer index
        /// out of range, a consumer that lags). What a run writes back is
        /// pinned by the tests of `rx_frame` below.
        #[test]
        fn a_run_of_frames_is_the_frames_one_by_one(
            entries in proptest::collection::vec(0u64..40, 0..24),
            garbage_prod in proptest::bool::ANY,
            rx_cons in 0u32..12,
            frames in 0usize..20,
        ) {
            let (l, _) = setup();
            let mk = || {
                let m = Mem(RefCell::new(vec![0xEE; l.total]));
                let st = RingState::new(l, &m);
                // Entries: frame starts, and (odd values) addresses inside frames.
                let addrs: Vec<u64> = entries.iter().map(|&e| frame(&l, e / 2) + (e % 2) * 7).collect();
                fill(&l, &m, &addrs[..addrs.len().min(8)]);
                if garbage_prod {
                    m.store_u32(l.fill.producer(), 1000);
                }
                m.store_u32(l.rx.consumer(), rx_cons);
                (st, m)
            };
            let desc = |i: usize| RxDesc { origlen: 60 + i as u32, timestamp_ns: i as u64, flags: 1, ..RxDesc::default() };
            let (mut one, m1) = mk();
            let r1: Vec<_> = (0..frames).map(|i| one.rx_frame(&m1, desc(i), |_, _| 60)).collect();
            one.publish(&m1);
            let (mut run, m2) = mk();
            let r2: Vec<_> = {
                let mut r = run.rx_run();
                (0..frames).map(|i| r.frame(&m2, desc(i), |_, _| 60)).collect()
            };
            run.publish(&m2);
            proptest::prop_assert_eq!(r1, r2);
            proptest::prop_assert_eq!(one.counters, run.counters);
            let (b1, b2) = (m1.0.borrow().clone(), m2.0.borrow().clone());
            proptest::prop_assert!(b1 == b2, "the shared memory differs");
        }
    }

    proptest::proptest! {
        /// The shift-and-mask checks agree with the layout's reference ones.
        #[test]
        fn fast_checks_agree_with_the_layout(
            big in proptest::bool::ANY,
            count in 1u32..300,
            k in 0u64..320,
            off in proptest::sample::select(std::vec![0u64, 0, 0, 1, 60, 2047, 2048, 4095]),
            addr in proptest::num::u64::ANY,
            near in proptest::bool::ANY,
            len in 0u32..5000,
            edge in 0usize..4,
            flags in proptest::sample::select(std::vec![0u32, 0, 0, 1, 0x8000_0000]),
        ) {
            let s = RingSetup { frame_size: if big { 4096 } else { 2048 }, frame_count: count, fill: 8, rx: 8, tx: 8, completion: 8 };
            let l = RingLayout::new(&s).unwrap();
            let m = Mem(RefCell::new(vec![0; l.total]));
            let mut st = RingState::new(l, &m);
            let a = if near { (l.frames as u64 + k * u64::from(s.frame_size) + off).wrapping_sub(u64::from(big)) } else { addr };
            proptest::prop_assert_eq!(st.rx_run().is_frame_start(a), l.is_frame_start(a));
            // Lengths at the edges: to the frame's end, one past it.
            let to_end = (u64::from(s.frame_size) - (off % u64::from(s.frame_size))) as u32;
            let len = [len, to_end, to_end + 1, 14][edge];
            let d = TxDesc { addr: a, len, flags };
            for max in [1518, 4096] {
                proptest::prop_assert_eq!(st.tx_ok(&d, max), l.check_tx(&d, max).is_ok());
            }
        }
    }

    #[test]
    fn attach_publishes_zero_indices_and_the_magic() {
        let (l, m) = setup();
        let _s = RingState::new(l, &m);
        assert_eq!(m.load_u32(control::MAGIC), RING_MAGIC);
        assert_eq!(m.load_u32(l.rx.producer()), 0);
        assert_eq!(m.load_u64(control::RX_FRAMES), 0);
    }

    #[test]
    fn frames_go_where_the_fill_ring_says_and_drops_are_counted() {
        let (l, m) = setup();
        for off in [l.fill.producer(), l.rx.consumer(), l.tx.producer(), l.completion.consumer()] {
            m.store_u32(off, 0);
        }
        let mut s = RingState::new(l, &m);
        assert_eq!(s.rx_frame(&m, RxDesc::default(), |_, _| 60), Err(RxDrop::FillEmpty));
        // A bad entry (not a frame start) is skipped.
        fill(&l, &m, &[frame(&l, 3) + 1, frame(&l, 3), frame(&l, 5)]);
        let mut seen = Vec::new();
        for n in [60usize, 4000] {
            let d = RxDesc { origlen: n as u32, flags: 7, ..Default::default() };
            s.rx_frame(&m, d, |off, cap| {
                seen.push((off, cap));
                n.min(cap)
            })
            .unwrap();
        }
        assert_eq!(seen, [(frame(&l, 3) as usize, 2048), (frame(&l, 5) as usize, 2048)]);
        assert_eq!(s.counters.fill_invalid, 1);
        assert_eq!(s.publish(&m), (true, false));
        assert_eq!(m.load_u32(l.rx.producer()), 2);
        assert_eq!(m.load_u32(l.fill.consumer()), 3);
        let mut raw = [0u8; RxDesc::LEN];
        m.read(l.rx.entry_at(1), &mut raw);
        let d = RxDesc::from_bytes(&raw);
        assert_eq!((d.addr, d.len, d.origlen, d.flags), (frame(&l, 5), 2048, 4000, 7));
        assert_eq!(m.load_u64(control::FILL_INVALID), 1);
        assert_eq!(m.load_u64(control::RX_FRAMES), 2);
        assert_eq!(s.ready_flags(&m), wait_flags::RX);
        // Fill 8 more: the rx ring (8) takes 6 more, then is full.
        fill(&l, &m, &(0..8).map(|i| frame(&l, i)).collect::<Vec<_>>());
        let mut placed = 0;
        while s.rx_frame(&m, RxDesc::default(), |_, _| 60).is_ok() {
            placed += 1;
        }
        assert_eq!(placed, 6);
        assert_eq!(s.counters.rx_ring_full, 1);
        // The user consumes 4: 4 more fit.
        m.store_u32(l.rx.consumer(), 4);
        assert!(s.rx_frame(&m, RxDesc::default(), |_, _| 60).is_ok());
    }

    #[test]
    fn garbage_indices_are_not_believed() {
        let (l, m) = setup();
        for off in [l.fill.producer(), l.rx.consumer(), l.tx.producer(), l.completion.consumer()] {
            m.store_u32(off, 0);
        }
        let mut s = RingState::new(l, &m);
        m.store_u32(l.fill.producer(), 1000);
        assert_eq!(s.rx_frame(&m, RxDesc::default(), |_, _| 60), Err(RxDrop::FillEmpty));
        assert_eq!(s.counters.bad_index, 1);
        m.store_u32(l.fill.producer(), 1);
        m.store_u64(l.fill.entry_at(0), frame(&l, 0));
        // Room already seen stays good (the user's index only moves
        // forward); a fresh look at a garbage consumer finds none.
        m.store_u32(l.rx.consumer(), 0x8000_0000);
        let mut fresh = RingState::new(l, &m);
        assert_eq!(fresh.rx_frame(&m, RxDesc::default(), |_, _| 60), Err(RxDrop::RingFull));
        assert_eq!(fresh.counters.bad_index, 1);
        m.store_u32(l.tx.producer(), u32::MAX);
        assert_eq!(s.tx_refresh(&m, 64), 0);
        m.store_u32(l.tx.producer(), 0);
        m.store_u32(l.completion.consumer(), 77);
        assert_eq!(s.tx_refresh(&m, 64), 0);
        assert_eq!(s.counters.bad_index, 3);
    }

    #[test]
    fn tx_takes_valid_frames_completes_bad_ones_and_reserves_completions() {
        let (l, m) = setup();
        for off in [l.fill.producer(), l.rx.consumer(), l.tx.producer(), l.completion.consumer()] {
            m.store_u32(off, 0);
        }
        let mut s = RingState::new(l, &m);
        let good = |i| TxDesc { addr: frame(&l, i), len: 60, flags: 0 };
        let bad = TxDesc { addr: frame(&l, 1) + 2000, len: 60, flags: 0 };
        tx(&l, &m, &[good(0), bad, good(2)]);
        assert_eq!(s.tx_refresh(&m, 64), 3);
        assert_eq!(s.tx_next(&m, 1518), TxNext::Frame(good(0)));
        assert_eq!(s.tx_next(&m, 1518), TxNext::Invalid);
        assert_eq!(s.tx_next(&m, 1518), TxNext::Frame(good(2)));
        assert_eq!(s.tx_next(&m, 1518), TxNext::Done);
        assert_eq!(s.tx_outstanding(), 2);
        // Completions in any order.
        s.tx_complete(&m, frame(&l, 2), true);
        s.tx_complete(&m, frame(&l, 0), false);
        assert_eq!(s.publish(&m), (false, true));
        let comp: Vec<u64> = (0..3).map(|i| m.load_u64(l.completion.entry_at(i))).collect();
        assert_eq!(comp, [bad.addr, frame(&l, 2), frame(&l, 0)]);
        assert_eq!(m.load_u32(l.tx.consumer()), 3);
        assert_eq!((s.counters.tx_frames, s.counters.tx_errors, s.counters.tx_invalid), (1, 1, 1));
        // The completion ring (8) bounds what is taken: with 3 unconsumed
        // completions and 2 frames in flight, 3 more may go.
        tx(&l, &m, &[good(3), good(4)]);
        assert_eq!(s.tx_refresh(&m, 64), 2);
        s.tx_next(&m, 1518);
        s.tx_next(&m, 1518);
        tx(&l, &m, &[good(5), good(6), good(7), good(8), good(9)]);
        assert_eq!(s.tx_refresh(&m, 64), 3);
        assert_eq!(s.tx_refresh(&m, 2), 2);
        // The user consumes the three completions: room for all five.
        m.store_u32(l.completion.consumer(), 3);
        assert_eq!(s.tx_refresh(&m, 64), 5);
    }
}
