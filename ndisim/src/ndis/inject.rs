//! What a test asks of one receive indication (`Sim::inject`): how the
//! NBLs are grouped and flagged, and how each frame lies in its MDLs.

use super::Coalesce;

/// Options of a receive indication.
#[derive(Debug, Clone)]
pub struct InjectOpts {
    /// Indicate with `NDIS_RECEIVE_FLAGS_RESOURCES`: the driver may not keep
    /// the NBLs.
    pub resources: bool,
    /// NBLs per `ProtocolReceiveNetBufferLists` call.
    pub nbls_per_indication: usize,
    /// NET_BUFFERs (frames) per NBL.
    pub nbs_per_nbl: usize,
    /// When not empty, NBL `k` of the injection (counted across its
    /// indications) holds `nbl_sizes[k % len]` NET_BUFFERs instead of
    /// `nbs_per_nbl`: NBLs of one, of many, and of more than a receiver's
    /// walk takes at a time, in one indication. A 0 is refused: no NBL
    /// reaches a protocol without a NET_BUFFER.
    pub nbl_sizes: Vec<usize>,
    /// Indicate at DISPATCH_LEVEL (with the flag) or PASSIVE_LEVEL.
    pub dispatch: bool,
    /// With `dispatch`: at DISPATCH_LEVEL but with
    /// `NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL` clear. The flag is a hint ("If
    /// the current IRQL is unknown, ... the caller should clear this
    /// flag"): a clear flag means at most DISPATCH_LEVEL, not PASSIVE, and
    /// a driver that takes it for PASSIVE is caught here.
    pub unflagged: bool,
    /// 802.1Q TCI to put in each NBL's info.
    pub tci: Option<u16>,
    /// When not empty, NBL `k`'s 802.1Q info holds `tcis[k % len]` instead
    /// of `tci` (None: no info): the info of one NBL applies to its
    /// frames, and to none of the next NBL's.
    pub tcis: Vec<Option<u16>>,
    /// Mark the NBLs `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`: frames that NDIS
    /// loops back from a send (another protocol's, e.g. the host's TCP/IP
    /// stack, or the binding's own with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`).
    pub loopback: bool,
    /// When not empty, NBL `k` of the injection is marked
    /// `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET` when `loopbacks[k % len]`,
    /// instead of by `loopback`: one indication (one call of the receive
    /// handler) mixes frames NDIS looped back from a send with frames from
    /// the wire, as NDIS may chain them (nothing in the loopback or receive
    /// pages keeps them apart, and a filter below may merge its own
    /// indications into one chain).
    pub loopbacks: Vec<bool>,
    /// The NIC coalesced each frame (RSC or URO): the info goes in each
    /// NBL, which then holds one NET_BUFFER. A coalesced frame may be
    /// longer than the MTU, up to an IP datagram.
    pub coalesce: Option<Coalesce>,
    /// When not empty, NBL `k`'s coalescing is `coalesces[k % len]`
    /// (None: a plain NBL) instead of `coalesce`: coalesced units and
    /// segments that could not be coalesced in one indication ("a data
    /// indication ... may consist of one or more coalesced segments,
    /// separated by one or more individual segments that could not be
    /// coalesced", Indicating Coalesced Segments). Each NBL given a
    /// coalescing must hold one NET_BUFFER, or the injection is refused.
    pub coalesces: Vec<Option<Coalesce>>,
    /// How each frame lies in its NET_BUFFER's MDLs (default: all of it
    /// in one, at offset 0).
    pub layout: NbLayout,
    /// When not empty, frame `i` of the injection lies as
    /// `layouts[i % len]` instead of `layout`: the NET_BUFFERs of one NBL
    /// need not share a layout.
    pub layouts: Vec<NbLayout>,
}

impl InjectOpts {
    /// How frame `i` of the injection lies in its MDLs.
    pub fn layout_of(&self, i: usize) -> NbLayout {
        if self.layouts.is_empty() { self.layout } else { self.layouts[i % self.layouts.len()] }
    }

    /// The 802.1Q TCI in NBL `k`'s info.
    pub fn tci_of(&self, k: usize) -> Option<u16> {
        if self.tcis.is_empty() { self.tci } else { self.tcis[k % self.tcis.len()] }
    }

    /// Whether NBL `k` is marked `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`.
    pub fn loopback_of(&self, k: usize) -> bool {
        if self.loopbacks.is_empty() { self.loopback } else { self.loopbacks[k % self.loopbacks.len()] }
    }

    /// The coalescing info NBL `k` carries.
    pub fn coalesce_of(&self, k: usize) -> Option<Coalesce> {
        if self.coalesces.is_empty() { self.coalesce } else { self.coalesces[k % self.coalesces.len()] }
    }

    /// How many NET_BUFFERs NBL `k` holds (0 only if the test asked for it).
    pub fn nbs_of(&self, k: usize) -> usize {
        if self.nbl_sizes.is_empty() { self.nbs_per_nbl.max(1) } else { self.nbl_sizes[k % self.nbl_sizes.len()] }
    }

    /// Whether any NBL of the injection carries coalescing info.
    pub(crate) fn coalescing(&self) -> bool {
        self.coalesce.is_some() || !self.coalesces.is_empty()
    }

    /// What holds for every NBL and frame of the injection, so the
    /// indication need not ask per NBL or per frame.
    pub(crate) fn uniform(&self) -> Uniform {
        Uniform {
            plain: self.tcis.is_empty()
                && self.tci.is_none()
                && self.loopbacks.is_empty()
                && !self.loopback
                && !self.coalescing(),
            whole: self.layouts.is_empty() && self.layout.is_whole(),
        }
    }

    /// `frames` frames grouped into NBLs: each NBL's size, in order (the
    /// last may hold fewer than asked).
    pub fn nbl_groups(&self, frames: usize) -> Vec<usize> {
        if self.nbl_sizes.is_empty() {
            // Every NBL of the same size, the last holding what is left.
            let n = self.nbs_per_nbl.max(1);
            let mut out = vec![n; frames / n];
            if frames % n != 0 {
                out.push(frames % n);
            }
            return out;
        }
        let mut out = Vec::new();
        let mut left = frames;
        while left > 0 {
            // (`indicate` refuses a size of 0 before grouping.)
            let n = self.nbs_of(out.len()).clamp(1, left);
            out.push(n);
            left -= n;
        }
        out
    }
}

/// What `InjectOpts::uniform` found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uniform {
    /// No NBL carries 802.1Q or coalescing info, and none is marked looped
    /// back.
    pub plain: bool,
    /// Every frame lies whole in one MDL, at offset 0 (`NbLayout::is_whole`).
    pub whole: bool,
}

/// How a received frame lies in its NET_BUFFER's MDL chain. NICs do not
/// all give one buffer per frame at offset 0: with header-data split the
/// headers are in one buffer and the payload in another, a NIC with small
/// receive buffers chains several, and a driver below may leave unused
/// data space before the frame (`DataOffset`), in MDLs of its own or not.
/// A protocol must follow `CurrentMdl`, `CurrentMdlOffset` and the `Next`
/// links, and read no further than `DataLength`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NbLayout {
    /// Unused bytes before the frame in its first MDL (`DataOffset` and
    /// `CurrentMdlOffset`).
    pub headroom: u16,
    /// The headroom is an MDL of its own, before the frame's first: the
    /// chain starts there (`MdlChain`) but the data in the next one
    /// (`CurrentMdl`, at `CurrentMdlOffset` 0), as a driver below leaves a
    /// NET_BUFFER it advanced past a whole MDL (`NdisAdvanceNetBufferDataStart`).
    pub headroom_mdl: bool,
    /// With `headroom_mdl`: the headroom before the frame's first MDL is
    /// cut into this many MDLs (0 and 1: one), so the data starts deep in
    /// the chain.
    pub headroom_mdls: u8,
    /// With `headroom_mdl`: this many bytes of the headroom stay in the
    /// frame's first MDL, before the frame: `CurrentMdl` is not the chain's
    /// first MDL and `CurrentMdlOffset` is not 0 (NdisAllocateNetBuffer's
    /// remarks: "CurrentMdl starts at the third MDL ... CurrentMdlOffset is
    /// Z'").
    pub current_offset: u16,
    /// The first MDL ends after this many bytes of the frame (header-data
    /// split); 0: it holds as much as `chunk` allows.
    pub first: u16,
    /// The rest of the frame lies in MDLs of at most this many bytes; 0:
    /// in one.
    pub chunk: u16,
    /// A zero-length MDL (`ByteCount` 0) before each MDL of the chain and
    /// one after the last. Where the frame starts at an MDL's first byte,
    /// `CurrentMdl` is the zero-length MDL before it (`CurrentMdlOffset` 0
    /// is within it: its end, where the data starts).
    pub empty_mdls: bool,
    /// The frame's last MDL goes on this many bytes past the frame: the
    /// buffer is longer than the data, and `DataLength` ends inside it.
    pub tail: u16,
    /// The MDLs describe locked pages not mapped into system space yet (no
    /// `MDL_SOURCE_IS_NONPAGED_POOL`, no `MDL_MAPPED_TO_SYSTEM_VA`): the
    /// protocol maps them (`MmGetSystemAddressForMdlSafe`), which can fail
    /// under low resources.
    pub unmapped: bool,
    /// Each MDL of the chain after the first lies this many bytes past the
    /// end of the one before it in the buffer, the gap filled with a
    /// pattern (0xE7): the MDLs' memory is not one run, as the buffers of a
    /// real chain need not be, so a read that goes on past an MDL's end
    /// finds the pattern, not the next MDL's bytes. 0: one run.
    pub spread: u16,
}

/// The pattern between spread MDLs (`NbLayout::spread`).
pub const SPREAD_FILL: u8 = 0xE7;

/// A NET_BUFFER's MDL chain as `NbLayout::chain` lays it out over a
/// buffer that holds the headroom, the frame, then the tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainShape {
    /// Each MDL's byte range in the buffer, `(offset, length)`, in chain
    /// order.
    pub mdls: Vec<(usize, usize)>,
    /// `CurrentMdl`: an index into `mdls`.
    pub current: usize,
    /// `CurrentMdlOffset`.
    pub current_offset: usize,
}

impl NbLayout {
    /// One MDL, the frame at its start.
    pub fn is_whole(&self) -> bool {
        *self == NbLayout::default()
    }

    /// Whether the headroom is an MDL of its own (`headroom_mdl`, and there
    /// is headroom).
    pub fn own_headroom(&self) -> bool {
        self.headroom_mdl && self.headroom != 0
    }

    /// Bytes of buffer a frame of `len` bytes takes: headroom, frame, tail,
    /// and the gaps between spread MDLs.
    pub fn buffer_len(&self, len: usize) -> usize {
        let packed = self.headroom as usize + len + self.tail as usize;
        if self.spread == 0 {
            return packed;
        }
        packed + self.spread as usize * self.chain(len).mdls.len().saturating_sub(1)
    }

    /// The byte ranges of a buffer holding a frame of `len` bytes after
    /// `headroom` that each MDL describes, in chain order (zero-length
    /// MDLs included).
    pub fn pieces(&self, len: usize) -> Vec<(usize, usize)> {
        self.chain(len).mdls
    }

    /// The MDL chain of a frame of `len` bytes, and where its data starts.
    pub fn chain(&self, len: usize) -> ChainShape {
        let mut c = self.packed_chain(len);
        // MDL `i` moves `i * spread` bytes on: a gap before each but the
        // first.
        for (i, m) in c.mdls.iter_mut().enumerate() {
            m.0 += i * self.spread as usize;
        }
        c
    }

    /// `chain` with the MDLs one after the other in the buffer: offsets
    /// into headroom, frame and tail as one run.
    fn packed_chain(&self, len: usize) -> ChainShape {
        let (h, chunk) = (self.headroom as usize, self.chunk as usize);
        let first = match (self.first as usize, chunk) {
            (0, 0) => len,
            (0, c) => c.min(len),
            (f, _) => f.min(len),
        };
        let mut mdls = Vec::new();
        let offset_in_first = if self.own_headroom() {
            // The headroom before the frame's first MDL, in MDLs of their
            // own (none empty: fewer when there are fewer bytes).
            let inside = (self.current_offset as usize).min(h);
            let before = h - inside;
            let parts = (self.headroom_mdls.max(1) as usize).min(before.max(1));
            let mut at = 0;
            for i in 0..parts {
                let n = if i + 1 == parts { before - at } else { before / parts };
                if n != 0 {
                    mdls.push((at, n));
                }
                at += n;
            }
            mdls.push((before, inside + first));
            inside
        } else {
            mdls.push((0, h + first));
            h
        };
        let mut current = mdls.len() - 1;
        let mut at = h + first;
        let end = h + len;
        while at < end {
            let n = if chunk == 0 { end - at } else { chunk.min(end - at) };
            mdls.push((at, n));
            at += n;
        }
        if let Some(last) = mdls.last_mut() {
            last.1 += self.tail as usize;
        }
        if !self.empty_mdls {
            return ChainShape { mdls, current, current_offset: offset_in_first };
        }
        // Each MDL `i` becomes `2 * i + 1`, after its empty one. Where the
        // data starts at an MDL's first byte, `CurrentMdl` is the empty MDL
        // before it.
        let mut spaced = Vec::with_capacity(mdls.len() * 2 + 1);
        for &(at, n) in &mdls {
            spaced.push((at, 0));
            spaced.push((at, n));
        }
        let end = mdls.last().map_or(0, |&(at, n)| at + n);
        spaced.push((end, 0));
        current = if offset_in_first == 0 { 2 * current } else { 2 * current + 1 };
        ChainShape { mdls: spaced, current, current_offset: offset_in_first }
    }
}

impl Default for InjectOpts {
    fn default() -> Self {
        InjectOpts {
            resources: false,
            nbls_per_indication: 1,
            nbs_per_nbl: 1,
            dispatch: true,
            unflagged: false,
            nbl_sizes: Vec::new(),
            tci: None,
            tcis: Vec::new(),
            loopback: false,
            loopbacks: Vec::new(),
            coalesce: None,
            coalesces: Vec::new(),
            layout: NbLayout::default(),
            layouts: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(l: NbLayout, len: usize) -> (Vec<(usize, usize)>, usize, usize) {
        let c = l.chain(len);
        (c.mdls, c.current, c.current_offset)
    }

    #[test]
    fn spread_chains_leave_a_gap_before_each_mdl_but_the_first() {
        let l = NbLayout { headroom: 4, first: 14, chunk: 20, spread: 8, ..NbLayout::default() };
        assert_eq!(shape(l, 60), (vec![(0, 18), (26, 20), (54, 20), (82, 6)], 0, 4));
        assert_eq!(l.buffer_len(60), 64 + 3 * 8);
        let whole = NbLayout { spread: 8, ..NbLayout::default() };
        assert_eq!((shape(whole, 60), whole.buffer_len(60)), ((vec![(0, 60)], 0, 0), 60));
    }

    #[test]
    fn chains_put_the_data_where_the_layout_says() {
        let d = NbLayout::default;
        assert_eq!(shape(d(), 60), (vec![(0, 60)], 0, 0));
        assert_eq!(
            shape(NbLayout { headroom: 4, first: 14, chunk: 20, ..d() }, 60),
            (vec![(0, 18), (18, 20), (38, 20), (58, 6)], 0, 4)
        );
        // Headroom in three MDLs of its own, 10 bytes of it in the data's
        // first MDL: `CurrentMdl` is the fourth, 10 bytes in.
        let deep =
            NbLayout { headroom: 100, headroom_mdl: true, headroom_mdls: 3, current_offset: 10, first: 14, ..d() };
        assert_eq!(shape(deep, 60), (vec![(0, 30), (30, 30), (60, 30), (90, 24), (114, 46)], 3, 10));
        // Zero-length MDLs around each: `CurrentMdl` is the empty one
        // before the data when the data starts at an MDL's first byte.
        let empty = NbLayout { headroom: 8, headroom_mdl: true, empty_mdls: true, first: 14, tail: 5, ..d() };
        assert_eq!(shape(empty, 20), (vec![(0, 0), (0, 8), (8, 0), (8, 14), (22, 0), (22, 11), (33, 0)], 2, 0));
        let inside = NbLayout { headroom: 3, empty_mdls: true, ..d() };
        assert_eq!(shape(inside, 20), (vec![(0, 0), (0, 23), (23, 0)], 1, 3));
        assert_eq!(empty.buffer_len(20), 33);
    }

    #[test]
    fn nbls_are_grouped_by_their_sizes() {
        let o = InjectOpts { nbl_sizes: vec![1, 3], ..InjectOpts::default() };
        assert_eq!(o.nbl_groups(9), [1, 3, 1, 3, 1]);
        let o = InjectOpts { nbs_per_nbl: 4, ..InjectOpts::default() };
        assert_eq!(o.nbl_groups(9), [4, 4, 1]);
        let o = InjectOpts { tcis: vec![None, Some(5)], layouts: vec![NbLayout::default()], ..InjectOpts::default() };
        assert_eq!((o.tci_of(2), o.tci_of(3), o.layout_of(7)), (None, Some(5), NbLayout::default()));
    }

    #[test]
    fn loopback_and_coalescing_go_by_nbl_when_given_per_nbl() {
        let rsc = Coalesce::Rsc { segs: 4, dup_acks: 0 };
        let o = InjectOpts { loopback: true, coalesce: Some(rsc), ..InjectOpts::default() };
        assert!((0..3).all(|k| o.loopback_of(k) && o.coalesce_of(k) == Some(rsc)));
        let o =
            InjectOpts { loopback: true, loopbacks: vec![false, true, true], coalesces: vec![None, Some(rsc)], ..o };
        let by_nbl: Vec<(bool, Option<Coalesce>)> = (0..4).map(|k| (o.loopback_of(k), o.coalesce_of(k))).collect();
        assert_eq!(by_nbl, [(false, None), (true, Some(rsc)), (true, None), (false, Some(rsc))]);
        // An NBL with coalescing info holds one NET_BUFFER; the plain ones
        // around it may hold more.
        let o = InjectOpts { nbl_sizes: vec![3, 1], coalesces: vec![None, Some(rsc)], ..InjectOpts::default() };
        assert!(crate::ndis::check_coalesced_groups(&o, &o.nbl_groups(9)).is_ok());
        let o = InjectOpts { nbl_sizes: vec![1, 3], ..o };
        assert!(crate::ndis::check_coalesced_groups(&o, &o.nbl_groups(9)).is_err());
    }
}
