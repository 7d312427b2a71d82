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
    /// Mark the NBLs `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`: frames that NDIS
    /// loops back from a send (another protocol's, e.g. the host's TCP/IP
    /// stack, or the binding's own with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`).
    pub loopback: bool,
    /// The NIC coalesced each frame (RSC or URO): the info goes in each
    /// NBL, which then holds one NET_BUFFER. A coalesced frame may be
    /// longer than the MTU, up to an IP datagram.
    pub coalesce: Option<Coalesce>,
    /// How each frame lies in its NET_BUFFER's MDLs (default: all of it
    /// in one, at offset 0).
    pub layout: NbLayout,
}

/// How a received frame lies in its NET_BUFFER's MDL chain. NICs do not
/// all give one buffer per frame at offset 0: with header-data split the
/// headers are in one buffer and the payload in another, a NIC with small
/// receive buffers chains several, and a driver below may leave unused
/// data space before the frame (`DataOffset`). A protocol must follow
/// `CurrentMdl`, `CurrentMdlOffset` and the `Next` links.
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
    /// The first MDL ends after this many bytes of the frame (header-data
    /// split); 0: it holds as much as `chunk` allows.
    pub first: u16,
    /// The rest of the frame lies in MDLs of at most this many bytes; 0:
    /// in one.
    pub chunk: u16,
    /// The MDLs describe locked pages not mapped into system space yet (no
    /// `MDL_SOURCE_IS_NONPAGED_POOL`, no `MDL_MAPPED_TO_SYSTEM_VA`): the
    /// protocol maps them (`MmGetSystemAddressForMdlSafe`), which can fail
    /// under low resources.
    pub unmapped: bool,
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

    /// The byte ranges of a buffer holding a frame of `len` bytes after
    /// `headroom` that each MDL describes, in chain order.
    pub fn pieces(&self, len: usize) -> Vec<(usize, usize)> {
        let (h, chunk) = (self.headroom as usize, self.chunk as usize);
        let first = match (self.first as usize, chunk) {
            (0, 0) => len,
            (0, c) => c.min(len),
            (f, _) => f.min(len),
        };
        let mut out = if self.own_headroom() { vec![(0, h), (h, first)] } else { vec![(0, h + first)] };
        let mut at = h + first;
        let end = h + len;
        while at < end {
            let n = if chunk == 0 { end - at } else { chunk.min(end - at) };
            out.push((at, n));
            at += n;
        }
        out
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
            tci: None,
            loopback: false,
            coalesce: None,
            layout: NbLayout::default(),
        }
    }
}
