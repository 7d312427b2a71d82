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
use rawnic_proto::ring::{RingLayout, RxDesc, TxDesc, control};
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
    /// `prefetch_write` for a run of frames: what it needs of the memory
    /// taken once (a hint may not be moved by the compiler, nor the loads
    /// around it).
    #[inline(always)]
    fn prefetcher(&self) -> impl Fn(usize) + '_ {
        move |off| self.prefetch_write(off)
    }
    /// A ring's entries: `count` (a power of two) of `W` words each from
    /// offset `first`, checked once here to lie inside the memory, so that
    /// reaching one after needs no check. `None` when they do not.
    fn entries<const W: usize>(&self, first: usize, count: u32) -> Option<Self::Entries<'_, W>>;
    /// What `entries` gives.
    type Entries<'a, const W: usize>: EntryWords<W> + Copy
    where
        Self: 'a;
}

/// A ring's entries, checked once (`SharedMem::entries`).
pub trait EntryWords<const W: usize> {
    /// The words of the entry for free-running index `i` (taken modulo the
    /// entry count), each read as `SharedMem::load_u64` reads.
    fn load(&self, i: u32) -> [u64; W];
    /// Writes the entry for `i`, as `SharedMem::store_u64` writes.
    fn store(&self, i: u32, words: [u64; W]);
    /// Hands `f` the words of the entries for `first`, `first + 1`, ...,
    /// `k` of them (at most the entry count), in order, each read as
    /// `load` reads it. An implementation may walk the ring's memory
    /// directly, a run up to its end and then one from its start, rather
    /// than work out each entry's place.
    #[inline(always)]
    fn for_each(&self, first: u32, k: u32, mut f: impl FnMut([u64; W])) {
        for at in 0..k {
            f(self.load(first.wrapping_add(at)));
        }
    }
    /// A writer of the entries for `first`, `first + 1`, ...: each call
    /// moves on to the next one, writing it (as `store` writes it) when
    /// given words, leaving it as it is when given `None`. An
    /// implementation may keep a pointer into the ring's memory, moved on
    /// by each call and back to the ring's start at its end.
    #[inline(always)]
    fn writer(&self, first: u32) -> impl FnMut(Option<[u64; W]>) + '_ {
        let mut i = first;
        move |words| {
            if let Some(words) = words {
                self.store(i, words);
            }
            i = i.wrapping_add(1);
        }
    }
}

/// Where `TxRun::take` hands each frame that passed its checks: `send`
/// is given the descriptor, its length, and where it lies (the frame's
/// index and the offset within it, not checked), and says whether it took
/// the frame. A closure is one; a kernel's view of its pool may be one
/// itself, so that it is inlined into each of `take`'s copies.
pub trait TxSend {
    fn send(&mut self, d: &TxDesc, len: usize, index: u64, within: u64) -> bool;
}

impl<F: FnMut(&TxDesc, usize, u64, u64) -> bool> TxSend for F {
    #[inline(always)]
    fn send(&mut self, d: &TxDesc, len: usize, index: u64, within: u64) -> bool {
        self(d, len, index, within)
    }
}

/// The tx and completion rings' entries, checked once (`RingState::
/// tx_side`) for a kick or a run of completions, and the memory they are
/// in.
pub struct TxSide<'m, M: SharedMem + 'm> {
    mem: &'m M,
    tx: M::Entries<'m, { TxDesc::LEN / 8 }>,
    comp: M::Entries<'m, 1>,
}

impl<'m, M: SharedMem + 'm> TxSide<'m, M> {
    /// The tx and completion rings' entries of `layout` in `mem`, checked
    /// once (`RingState::tx_side`, for a caller that holds the state
    /// borrowed: a completion's run, which needs them only when it writes).
    pub fn new(layout: &RingLayout, mem: &'m M) -> Self {
        let l = layout;
        // The layout lies inside the UMEM (the attach checked its size).
        let inside = "the rings lie inside the UMEM";
        TxSide {
            mem,
            tx: mem.entries(l.tx.entry_at(0), l.tx.size).expect(inside),
            comp: mem.entries(l.completion.entry_at(0), l.completion.size).expect(inside),
        }
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
/// long as the user's consumer only moves forward and never past
/// `comp_prod` (a refresh that finds it past takes nothing): every frame
/// taken from the tx ring has its completion entry reserved (`comp_owed`)
/// until it is posted, so a completion never overwrites one the user has
/// not consumed, nor one written ahead and not yet published.
#[derive(Debug)]
pub struct RingState {
    layout: RingLayout,
    fill_cons: u32,
    rx_prod: u32,
    tx_cons: u32,
    /// The completion ring's producer index (its low 32 bits), counted in
    /// 64 bits: an NBL's entries written ahead are posted as they are only
    /// if the count is where their reservation was (`CompRun::
    /// complete_ahead`), which a 32-bit index would be again a lap of it
    /// later (an NBL the NIC held while 2^32 others were completed).
    comp_prod: u64,
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
    /// Whether anything was produced since the last `publish`.
    rx_dirty: bool,
    comp_dirty: bool,
    pub counters: RingCounters,
}

impl RingState {
    /// The driver's side of a freshly attached UMEM, its own indices at 0.
    /// Nothing is written into `mem` until `announce`: an attach that loses
    /// a race with another on the same handle, naming the same memory, must
    /// not reset the winner's indices.
    pub fn new(layout: RingLayout) -> Self {
        RingState {
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
            rx_dirty: false,
            comp_dirty: false,
            counters: RingCounters::default(),
        }
    }

    /// The attach took (nothing can fail it any more): the driver's indices
    /// (0) and counters are published, the user's are read as they are (the
    /// fill ring may be stocked before the attach); then the control
    /// block's version, and last its magic, which the user waits for.
    pub fn announce(&self, mem: &impl SharedMem) {
        let l = &self.layout;
        mem.store_u32(l.fill.consumer(), self.fill_cons);
        mem.store_u32(l.rx.producer(), self.rx_prod);
        mem.store_u32(l.tx.consumer(), self.tx_cons);
        mem.store_u32(l.completion.producer(), self.comp_prod as u32);
        self.publish_counters(mem);
        mem.store_u32(control::VERSION, u32::from(PROTO_VERSION));
        mem.store_u32(control::MAGIC, RING_MAGIC);
    }

    pub fn layout(&self) -> &RingLayout {
        &self.layout
    }

    /// Places one received frame (see `RxRun::frame`); for a run of frames
    /// take an `RxRun` once.
    pub fn rx_frame<M: SharedMem>(
        &mut self,
        mem: &M,
        desc: RxDesc,
        copy: impl FnOnce(usize, usize) -> usize,
    ) -> Result<bool, RxDrop> {
        self.rx_run(mem).frame(mem, desc, copy)
    }

    /// The rx side, for a run of received frames in `mem`: see `RxRun`.
    #[inline]
    pub fn rx_run<'m, M: SharedMem>(&mut self, mem: &'m M) -> RxRun<'_, 'm, M> {
        let l = self.layout;
        // The layout lies inside the UMEM (the attach checked its size).
        let inside = "the rings lie inside the UMEM";
        let fill_entries: M::Entries<'m, 1> = mem.entries(l.fill.entry_at(0), l.fill.size).expect(inside);
        // `next_fill`'s invariant, from the start.
        let next_fill = if self.fill_avail != 0 { fill_entries.load(self.fill_cons)[0] } else { 0 };
        RxRun {
            fill_entries,
            rx_entries: mem.entries(l.rx.entry_at(0), l.rx.size).expect(inside),
            frames: l.frames as u64,
            frame_size: l.frame_size,
            frame_shift: self.frame_shift,
            frame_count: u64::from(l.frame_count),
            fill_cons: self.fill_cons,
            fill_avail: self.fill_avail,
            next_fill,
            rx_prod: self.rx_prod,
            rx_room: self.rx_room,
            fill_empty: 0,
            ring_full: 0,
            fill_invalid: 0,
            bad_index: 0,
            state: self,
        }
    }

    /// The tx and completion rings' entries in `mem`, checked once.
    pub fn tx_side<'m, M: SharedMem>(&self, mem: &'m M) -> TxSide<'m, M> {
        TxSide::new(&self.layout, mem)
    }

    /// Rereads the tx producer and the completion consumer, and returns how
    /// many tx descriptors may be taken now (at most `budget`).
    pub fn tx_refresh<M: SharedMem>(&mut self, side: &TxSide<'_, M>, budget: u32) -> u32 {
        let mem = side.mem;
        let (l_tx, l_comp) = (self.layout.tx, self.layout.completion);
        let prod = mem.load_u32(l_tx.producer());
        self.tx_avail = ready(prod, self.tx_cons, l_tx.size, &mut self.counters.bad_index);
        let cons = mem.load_u32(l_comp.consumer());
        // A consumer index past the published entries is as impossible as
        // one too far behind: it would make room of entries reserved and
        // not published, which a kick writes ahead (`TxRun::take`), over
        // the entries an earlier kick wrote ahead and has not published.
        let comp_prod = self.comp_prod as u32;
        self.comp_room = if comp_prod.wrapping_sub(cons) > l_comp.size {
            self.counters.bad_index += 1;
            0
        } else {
            room(comp_prod.wrapping_add(self.comp_owed), cons, l_comp.size, &mut self.counters.bad_index)
        };
        self.tx_avail.min(self.comp_room).min(budget)
    }

    /// Takes the next tx descriptor (after `tx_refresh`), as
    /// `TxRun::next` does.
    pub fn tx_next<M: SharedMem>(&mut self, side: &TxSide<'_, M>, max_len: usize) -> TxNext {
        self.tx_run().next(side, max_len)
    }

    /// A walk of the tx ring (after `tx_refresh`), for a kick's frames.
    pub fn tx_run(&mut self) -> TxRun<'_> {
        let l = self.layout;
        TxRun {
            cons: self.tx_cons,
            avail: self.tx_avail,
            room: self.comp_room,
            owed: self.comp_owed,
            frames: l.frames as u64,
            // Worked out in 32 bits (the same value: a frame size is not
            // 0), so that an offset within a frame is known to fit them.
            frame_mask: u64::from(l.frame_size.wrapping_sub(1)),
            frame_shift: self.frame_shift,
            frame_count: u64::from(l.frame_count),
            state: self,
        }
    }

    /// Refuses a frame `tx_next` returned that fails a check only the
    /// caller can make (its length against the frame's own tag, say): it
    /// is completed unsent and counted as invalid.
    pub fn tx_refuse<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64) {
        self.counters.tx_invalid += 1;
        self.complete(side, addr, None);
    }

    /// Gives back a frame `tx_next` returned but that could not be sent
    /// after all: it is completed unsent, as a failed send.
    pub fn tx_unsent<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64) {
        self.complete(side, addr, Some(false));
    }

    /// Posts a sent frame's completion (`ok`: whether NDIS sent it), as
    /// `CompRun::complete` does.
    pub fn tx_complete<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64, ok: bool) {
        self.comp_run().complete(side, addr, ok);
    }

    /// A run of completions to post (a completion's frames of one ring).
    pub fn comp_run(&mut self) -> CompRun<'_> {
        CompRun { prod: self.comp_prod, owed: self.comp_owed, sent: 0, failed: 0, state: self }
    }

    fn complete<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64, sent: Option<bool>) {
        self.comp_run().post(side, addr, sent);
    }

    /// Frames taken from the tx ring and not completed yet.
    pub fn tx_outstanding(&self) -> u32 {
        self.comp_owed
    }

    /// Publishes the driver's counters, then its indices (each with
    /// release ordering, after the entries it covers and the counters): a
    /// user who sees a frame on the rx or completion ring finds it counted.
    /// Returns (rx, completion): which rings got new entries since the
    /// last publish.
    pub fn publish(&mut self, mem: &impl SharedMem) -> (bool, bool) {
        let l = self.layout;
        self.publish_counters(mem);
        mem.store_u32(l.fill.consumer(), self.fill_cons);
        mem.store_u32(l.tx.consumer(), self.tx_cons);
        mem.store_u32(l.rx.producer(), self.rx_prod);
        mem.store_u32(l.completion.producer(), self.comp_prod as u32);
        let out = (self.rx_dirty, self.comp_dirty);
        self.rx_dirty = false;
        self.comp_dirty = false;
        out
    }

    fn publish_counters(&self, mem: &impl SharedMem) {
        mem.store_words(RingCounters::FIRST, self.counters.values());
    }

    /// (rx producer, completion producer), as published.
    pub fn producers(&self) -> (u32, u32) {
        (self.rx_prod, self.comp_prod as u32)
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
        if mem.load_u32(l.completion.consumer()) != self.comp_prod as u32 {
            f |= wait_flags::COMPLETION;
        }
        f
    }
}

mod rx;
pub use rx::RxRun;
mod tx;
pub use tx::{CompRun, TxRun};

#[cfg(test)]
mod tests;
