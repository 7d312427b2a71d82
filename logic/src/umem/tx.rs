//! The tx side of a UMEM's rings: `TxRun`, a walk of the tx ring for a
//! kick's frames, and `CompRun`, a run of completions posted to the
//! completion ring.

use super::{EntryWords, RingState, SharedMem, TxNext, TxSend, TxSide};
use rawnic_proto::ring::{RingLayout, TxDesc};

/// A run of completions (`RingState::comp_run`): the completion ring's
/// index, the reserved count and the counts of frames sent and failed are
/// kept in the run while it lasts (as `TxRun` keeps the tx ring's), and go
/// back to the state when it ends.
pub struct CompRun<'s> {
    pub(super) state: &'s mut RingState,
    /// `RingState::comp_prod`, 64 bits.
    pub(super) prod: u64,
    pub(super) owed: u32,
    pub(super) sent: u64,
    pub(super) failed: u64,
}

impl CompRun<'_> {
    /// Posts the completion of a frame taken from the tx ring (`ok`:
    /// whether NDIS sent it). Its entry was reserved when it was taken.
    #[inline(always)]
    pub fn complete<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64, ok: bool) {
        self.post(side, addr, Some(ok));
    }

    /// Posts the completions of frames taken from the tx ring that came
    /// back with one status (`ok`: whether NDIS sent them): an entry for
    /// each offset of `addrs`, in order, counted once for all. Returns
    /// how many. Their entries were reserved when they were taken.
    #[inline(always)]
    pub fn complete_each<M: SharedMem>(
        &mut self,
        side: &TxSide<'_, M>,
        addrs: impl Iterator<Item = u64>,
        ok: bool,
    ) -> u32 {
        let mut k = 0u32;
        for addr in addrs {
            self.entry(side, addr);
            k = k.wrapping_add(1);
        }
        debug_assert!(self.owed >= k, "every completion was reserved");
        self.owed = self.owed.saturating_sub(k);
        if ok {
            self.sent += u64::from(k);
        } else {
            self.failed += u64::from(k);
        }
        k
    }

    /// Posts the completions of `k` frames taken from the tx ring that
    /// came back with one status (`ok`), as `complete_each` would, when
    /// their entries are already written: `start` is where the first was
    /// reserved (`TxRun::ahead`, counted in 64 bits), and `TxRun::take`
    /// wrote the `k` frames' offsets there and after, in order, as it took
    /// them one after another. That is still so exactly when nothing was
    /// posted since at or past `start`, that is when the completion
    /// ring's index, counted in 64 bits, is `start` (it only moves forward
    /// over entries it writes, and never comes back to where it was, as a
    /// 32-bit index would a lap later; a later take writes ahead only past
    /// every entry reserved before it, and the reservations keep all of
    /// them within one ring's length of the user's index, which is never
    /// past the published one: `tx_refresh`). Then
    /// they are counted and posted, and true is returned; otherwise
    /// nothing is done (false: post them with `complete_each`).
    #[inline(always)]
    pub fn complete_ahead(&mut self, start: u64, k: u32, ok: bool) -> bool {
        if self.prod != start || self.owed < k {
            return false;
        }
        self.prod = start.wrapping_add(u64::from(k));
        self.owed -= k;
        if ok {
            self.sent += u64::from(k);
        } else {
            // A branch on the status, not conditional moves of each count.
            unlikely();
            self.failed += u64::from(k);
        }
        true
    }

    /// The rings' layout (for `TxSide::new`).
    #[inline(always)]
    pub fn layout(&self) -> &RingLayout {
        &self.state.layout
    }

    /// Writes a completion entry (not counted: the caller counts it).
    #[inline(always)]
    fn entry<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64) {
        side.comp.store(self.prod as u32, [addr]);
        self.prod = self.prod.wrapping_add(1);
    }

    /// Posts a completion: of a frame NDIS sent or failed (`sent`), or of
    /// one that never went (`None`: counted by the caller, as invalid).
    #[inline(always)]
    pub(super) fn post<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64, sent: Option<bool>) {
        debug_assert!(self.owed > 0, "every completion was reserved");
        self.owed = self.owed.saturating_sub(1);
        self.entry(side, addr);
        match sent {
            Some(true) => self.sent += 1,
            Some(false) => self.failed += 1,
            None => {}
        }
    }
}

impl Drop for CompRun<'_> {
    fn drop(&mut self) {
        let s = &mut *self.state;
        if self.prod != s.comp_prod {
            s.comp_dirty = true;
        }
        (s.comp_prod, s.comp_owed) = (self.prod, self.owed);
        s.counters.tx_frames += self.sent;
        s.counters.tx_errors += self.failed;
    }
}

/// Marks the path that calls it as rarely taken (a cold call the
/// compiler weighs the branch by).
#[cold]
#[inline(never)]
fn unlikely() {}

/// A walk of the tx ring (`RingState::tx_run`): the indices it moves
/// and the layout it checks against are kept in the run while it lasts,
/// not read from and written to the state for each frame (the caller
/// writes into NBLs between frames, which the compiler cannot tell apart
/// from the state), and go back to the state when it ends.
pub struct TxRun<'s> {
    pub(super) state: &'s mut RingState,
    pub(super) cons: u32,
    pub(super) avail: u32,
    pub(super) room: u32,
    pub(super) owed: u32,
    pub(super) frames: u64,
    pub(super) frame_mask: u64,
    pub(super) frame_shift: u32,
    pub(super) frame_count: u64,
}

impl TxRun<'_> {
    /// Takes the next tx descriptor: reads it once and checks it against
    /// the layout and `max_len` (the binding's largest frame). A valid one
    /// has its completion reserved; an invalid one is completed at once,
    /// unsent, and counted. (Inlined: it runs once per frame of a kick,
    /// which LLVM otherwise calls out of line when the kick grows.)
    #[inline(always)]
    pub fn next<M: SharedMem>(&mut self, side: &TxSide<'_, M>, max_len: usize) -> TxNext {
        if self.avail == 0 || self.room == 0 {
            return TxNext::Done;
        }
        // Read once, as two words (`TxDesc::to_bytes`'s layout).
        let [addr, w] = side.tx.load(self.cons);
        let d = TxDesc { addr, len: w as u32, flags: (w >> 32) as u32 };
        self.cons = self.cons.wrapping_add(1);
        self.avail -= 1;
        self.room -= 1;
        self.owed += 1;
        if self.ok(&d, max_len) {
            TxNext::Frame(d)
        } else {
            self.refuse(side, d.addr);
            TxNext::Invalid
        }
    }

    /// Takes up to `n` tx descriptors at once (fewer when the ring holds
    /// fewer, or the completion ring has room for fewer), for a kick:
    /// their completions are reserved together. Each is read once; one
    /// whose flags or length fail their checks is completed at once,
    /// unsent, and counted (`TX_INVALID`); each other goes to `send`,
    /// with its length (`d.len`, as a `usize`) and where it lies
    /// (`place`'s frame index and offset within, not checked here).
    /// `send` checks that those bytes lie within one frame of the UMEM,
    /// as it must before it trusts the figures, and returns
    /// false when they do not (or when it refuses the frame for a reason
    /// of its own): that frame is then completed unsent and counted
    /// invalid, as `refuse` does. So a frame goes to the NIC exactly when
    /// `next`'s checks pass and `send` takes it; the check of where it
    /// lies is made once, by the caller that relies on it. Returns (the
    /// descriptors taken, the invalid ones among them).
    ///
    /// Each frame `send` takes has its completion entry written ahead:
    /// its offset, at the entry reserved for it (the `i`-th descriptor
    /// taken, at `ahead() + i` as it was before the call: past every entry
    /// posted so far, as each refusal before it posts at most one), not
    /// published (the user takes no entry past the published index).
    /// When no descriptor of the call was invalid, each frame's entry is
    /// the one after the previous frame's, so that frames completed in
    /// the order they were taken are posted without writing them again
    /// (`CompRun::complete_ahead`).
    ///
    /// The walk is made in one of three copies, chosen once per call: for
    /// 2 KiB frames and for 4 KiB ones (`FRAME_SIZES`), with the frame's
    /// shift and mask as constants, and for any other size (none today)
    /// with the run's.
    #[inline(always)]
    pub fn take<M: SharedMem>(
        &mut self,
        side: &TxSide<'_, M>,
        n: u32,
        max_len: usize,
        send: impl FnMut(&TxDesc, usize, u64, u64) -> bool,
    ) -> (u32, u32) {
        self.take_with(side, n, max_len, send)
    }

    /// `take`, with `send` any `TxSend`.
    #[inline(always)]
    pub fn take_with<M: SharedMem>(
        &mut self,
        side: &TxSide<'_, M>,
        n: u32,
        max_len: usize,
        send: impl TxSend,
    ) -> (u32, u32) {
        match self.frame_mask {
            0x7ff => self.take_in::<M, 11>(side, n, max_len, send),
            0xfff => self.take_in::<M, 12>(side, n, max_len, send),
            _ => self.take_in::<M, 0>(side, n, max_len, send),
        }
    }

    /// `take`, for frames of `1 << SHIFT` bytes (the run's size when
    /// `SHIFT` is 0).
    #[inline(always)]
    fn take_in<M: SharedMem, const SHIFT: u32>(
        &mut self,
        side: &TxSide<'_, M>,
        n: u32,
        max_len: usize,
        mut send: impl TxSend,
    ) -> (u32, u32) {
        // The frame's shift and mask: constants in the copies for the
        // sizes a layout allows (the same values as the run's).
        let (shift, mask) = if SHIFT != 0 { (SHIFT, (1u64 << SHIFT) - 1) } else { (self.frame_shift, self.frame_mask) };
        let k = n.min(self.avail).min(self.room);
        let mut ahead = side.comp.writer(self.ahead() as u32);
        self.avail -= k;
        self.room -= k;
        self.owed += k;
        let first = self.cons;
        let end = first.wrapping_add(k);
        self.cons = end;
        // A descriptor's second word is its length with its flags above
        // it (`TxDesc::to_bytes`), so one compare checks both: the word
        // lies in `ETH_HEADER..=max_len` exactly when no flag is set and
        // the length does (a flag makes the word huge, a length below a
        // header wraps around).
        let Some(span) = max_len.checked_sub(rawnic_proto::ETH_HEADER) else {
            // No length is valid (a caller's bound below a header).
            for at in 0..k {
                let addr = side.tx.load(first.wrapping_add(at))[0];
                self.refuse(side, addr);
            }
            return (k, k);
        };
        let mut invalid = 0u32;
        // Each read once, as two words.
        side.tx.for_each(first, k, |[addr, w]| {
            let d = TxDesc { addr, len: w as u32, flags: (w >> 32) as u32 };
            let rel = d.addr.wrapping_sub(self.frames);
            // `place`'s figures.
            let (index, within) = (rel >> shift, rel & mask);
            let valid = w.wrapping_sub(rawnic_proto::ETH_HEADER as u64) <= span as u64;
            // When valid, the word is the length (no flag is set): no
            // conversion of `d.len`.
            let sent = valid && send.send(&d, w as usize, index, within);
            if !sent {
                self.refuse(side, d.addr);
                invalid += 1;
            }
            // A refused one's entry is posted where the index is, at or
            // before this one's: left as it is.
            ahead(sent.then_some([addr]));
        });
        (k, invalid)
    }

    /// The completion entry the next descriptor taken reserves (its
    /// index, counted in 64 bits: `RingState::comp_prod`): past every one
    /// reserved before (posted or not).
    #[inline(always)]
    pub fn ahead(&self) -> u64 {
        self.state.comp_prod.wrapping_add(u64::from(self.owed))
    }

    /// Where a frame `next` returned lies: (its frame's index, its offset
    /// within that frame). The same figures `next`'s check computed (the
    /// compiler computes them once); the caller checks them against what
    /// it knows before it trusts them.
    #[inline(always)]
    pub fn place(&self, d: &TxDesc) -> (u64, u64) {
        let rel = d.addr.wrapping_sub(self.frames);
        (rel >> self.frame_shift, rel & self.frame_mask)
    }

    /// `RingLayout::check_tx`, with a shift and a mask.
    #[inline(always)]
    pub(super) fn ok(&self, d: &TxDesc, max_len: usize) -> bool {
        let rel = d.addr.wrapping_sub(self.frames);
        d.flags == 0
            && (rawnic_proto::ETH_HEADER..=max_len).contains(&(d.len as usize))
            && rel >> self.frame_shift < self.frame_count
            && (rel & self.frame_mask) + u64::from(d.len) <= self.frame_mask + 1
    }

    /// `RingState::tx_refuse` for a frame this run took.
    #[inline(always)]
    pub fn refuse<M: SharedMem>(&mut self, side: &TxSide<'_, M>, addr: u64) {
        // The run's own fields stay out of the call (so they can live in
        // registers): only the state is handed over.
        self.owed = refuse_in_run(self.state, self.owed, side, addr);
    }
}

/// `TxRun::refuse`, out of the kick's line: `owed` is the run's count of
/// reserved completions, and the new count is returned.
#[cold]
#[inline(never)]
fn refuse_in_run<M: SharedMem>(state: &mut RingState, owed: u32, side: &TxSide<'_, M>, addr: u64) -> u32 {
    state.comp_owed = owed;
    state.tx_refuse(side, addr);
    state.comp_owed
}

impl Drop for TxRun<'_> {
    fn drop(&mut self) {
        let s = &mut *self.state;
        (s.tx_cons, s.tx_avail, s.comp_room, s.comp_owed) = (self.cons, self.avail, self.room, self.owed);
    }
}
