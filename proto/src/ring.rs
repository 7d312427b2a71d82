//! Rings: a UMEM of user memory shared with the driver, and four
//! single-producer, single-consumer rings in it (AF_XDP's design).
//!
//! A handle that has opened a binding attaches one UMEM with
//! `IOCTL_RAWNIC_RING_ATTACH` (`METHOD_OUT_DIRECT`): its input is a
//! `RingSetup`, its output buffer is the UMEM itself, exactly
//! `RingLayout::total` bytes. The I/O manager probes and locks the buffer
//! for the IRP, and the driver keeps that IRP pending for as long as the
//! UMEM is attached; it completes (STATUS_SUCCESS after a detach,
//! STATUS_CANCELLED when cancelled or the handle closes) only once no send
//! of the UMEM's frames is left with NDIS. Until then the pages stay locked.
//!
//! By the time the attach's dispatch returns (STATUS_PENDING), the driver
//! has set its own indices to 0 and, once nothing can fail the attach any
//! more, written the control block's magic and version: a request sent
//! after the attach on the same handle finds them, which is how a client
//! learns that the attach took (an attach refused after it was pended,
//! say because another attach on the handle won, leaves no magic).
//!
//! A tx descriptor's frame is at most the binding's MTU + 14 bytes, even
//! with an 802.1Q tag inline: the NIC reads the frame where the user wrote
//! it, and a tag the driver checked could be gone by then. A tagged frame
//! of MTU + 18 goes by SEND_BATCH, which copies it first.
//!
//! The UMEM, at offsets `RingLayout` computes:
//! - the control block (`control`), which only the driver writes: its
//!   counters;
//! - four rings, each a 128-byte header (`producer: u32` at 0, `consumer:
//!   u32` at 64, on separate cache lines) then `size` entries:
//!   - fill (user produces, driver consumes): `u64` offsets of free frames;
//!   - rx (driver produces, user consumes): `RxDesc`, a received frame;
//!   - tx (user produces, driver consumes): `TxDesc`, a frame to send;
//!   - completion (driver produces, user consumes): `u64` offsets of sent
//!     frames, in the order NDIS completed them;
//! - the frames: `frame_count` frames of `frame_size` bytes, page-aligned.
//!
//! Indices are free-running `u32`s; entry `i` lives at `i & (size - 1)`. The
//! driver keeps its own indices in its own memory and only publishes them;
//! what it reads from user memory (the other side's index, a descriptor) is
//! read once, validated, and never trusted past the ring size.
//!
//! Frame ownership: a frame offset posted on the fill ring, or in a tx
//! descriptor, belongs to the driver until it comes back on the rx ring or
//! the completion ring. Offsets on the fill ring must be a frame's first
//! byte; a tx descriptor's frame must lie inside one frame.

use crate::PROTO_VERSION;
use crate::status::Error;
use crate::wire::{Writer, u16_at, u32_at, u64_at};

/// Frame sizes a UMEM may have.
pub const FRAME_SIZES: [u32; 2] = [2048, 4096];
/// Smallest and largest ring (entries; a power of two).
pub const MIN_RING: u32 = 8;
pub const MAX_RING: u32 = 32 * 1024;
/// Largest UMEM one handle may attach.
pub const MAX_UMEM_BYTES: usize = 64 * 1024 * 1024;
/// Most UMEM bytes all the handles of one binding may have attached.
pub const MAX_UMEM_PER_BINDING: usize = 256 * 1024 * 1024;
/// A page: the frames start on one, and the UMEM's size is a multiple.
pub const PAGE: usize = 4096;
/// Bytes of a ring's header.
pub const RING_HEADER: usize = 128;
/// Offset of the consumer index in a ring's header.
pub const CONSUMER: usize = 64;
/// Bytes of the control block.
pub const CONTROL_LEN: usize = 128;
/// The control block's first word.
pub const RING_MAGIC: u32 = u32::from_le_bytes(*b"RNRG");

/// Offsets of the control block's fields (all written by the driver only).
pub mod control {
    /// `RING_MAGIC`.
    pub const MAGIC: usize = 0;
    /// `PROTO_VERSION`.
    pub const VERSION: usize = 4;
    /// Frames published on the rx ring.
    pub const RX_FRAMES: usize = 8;
    /// Frames dropped because the fill ring was empty.
    pub const RX_FILL_EMPTY: usize = 16;
    /// Frames dropped because the rx ring was full.
    pub const RX_RING_FULL: usize = 24;
    /// Fill entries refused (not a frame's first byte); the frame is lost
    /// to the driver, as the user asked for something impossible.
    pub const FILL_INVALID: usize = 32;
    /// Frames NDIS completed successfully.
    pub const TX_FRAMES: usize = 40;
    /// Tx descriptors refused (outside the UMEM, across a frame, too short
    /// or too long, reserved bits set); each is posted on the completion
    /// ring at once, unsent.
    pub const TX_INVALID: usize = 48;
    /// Frames NDIS completed with a failure.
    pub const TX_ERRORS: usize = 56;
    /// Times the driver found an index in user memory beyond the ring
    /// size (the ring was treated as empty or full).
    pub const BAD_INDEX: usize = 64;
}

/// The control block's counters, as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingCounters {
    /// Frames published on the rx ring.
    pub rx_frames: u64,
    /// Frames dropped because the fill ring was empty.
    pub rx_fill_empty: u64,
    /// Frames dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Fill entries refused (not a frame's first byte).
    pub fill_invalid: u64,
    /// Frames NDIS sent.
    pub tx_frames: u64,
    /// Tx descriptors refused (returned on the completion ring unsent).
    pub tx_invalid: u64,
    /// Frames NDIS failed to send.
    pub tx_errors: u64,
    /// Indices in the UMEM the driver found impossible.
    pub bad_index: u64,
}

impl RingCounters {
    /// The control-block offset of the first counter: they lie there one
    /// after the other, in `words`' order (checked at compile time), so
    /// that `values` can be written as one run of words.
    pub const FIRST: usize = control::RX_FRAMES;

    /// The counters' values in `words`' order, the order they lie in from
    /// `FIRST`.
    pub fn values(&self) -> [u64; 8] {
        self.words().map(|(_, v)| v)
    }

    /// Each counter with its offset in the control block.
    pub fn words(&self) -> [(usize, u64); 8] {
        [
            (control::RX_FRAMES, self.rx_frames),
            (control::RX_FILL_EMPTY, self.rx_fill_empty),
            (control::RX_RING_FULL, self.rx_ring_full),
            (control::FILL_INVALID, self.fill_invalid),
            (control::TX_FRAMES, self.tx_frames),
            (control::TX_INVALID, self.tx_invalid),
            (control::TX_ERRORS, self.tx_errors),
            (control::BAD_INDEX, self.bad_index),
        ]
    }

    /// The counters `load` reads at their control-block offsets.
    pub fn read(load: impl Fn(usize) -> u64) -> Self {
        RingCounters {
            rx_frames: load(control::RX_FRAMES),
            rx_fill_empty: load(control::RX_FILL_EMPTY),
            rx_ring_full: load(control::RX_RING_FULL),
            fill_invalid: load(control::FILL_INVALID),
            tx_frames: load(control::TX_FRAMES),
            tx_invalid: load(control::TX_INVALID),
            tx_errors: load(control::TX_ERRORS),
            bad_index: load(control::BAD_INDEX),
        }
    }
}

const _: () = {
    let offs = [
        control::RX_FRAMES,
        control::RX_FILL_EMPTY,
        control::RX_RING_FULL,
        control::FILL_INVALID,
        control::TX_FRAMES,
        control::TX_INVALID,
        control::TX_ERRORS,
        control::BAD_INDEX,
    ];
    let mut i = 0;
    while i < offs.len() {
        assert!(offs[i] == RingCounters::FIRST + 8 * i, "the counters lie one after the other");
        i += 1;
    }
};

/// `RingSetup` flags: none defined yet.
pub mod ring_flags {
    pub const ALL: u16 = 0;
}

/// `IOCTL_RAWNIC_RING_ATTACH` input: the UMEM's shape.
///
/// Layout: header (4), `frame_size: u32`, `frame_count: u32`, `fill: u32`,
/// `rx: u32`, `tx: u32`, `completion: u32`, 4 zero bytes (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSetup {
    pub frame_size: u32,
    pub frame_count: u32,
    pub fill: u32,
    pub rx: u32,
    pub tx: u32,
    pub completion: u32,
}

impl RingSetup {
    pub const LEN: usize = 32;

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < 4 {
            return Err(Error::Truncated);
        }
        if u16_at(buf, 0) != PROTO_VERSION {
            return Err(Error::Version);
        }
        if u16_at(buf, 2) & !ring_flags::ALL != 0 {
            return Err(Error::InvalidParameter);
        }
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        if u32_at(buf, 28) != 0 {
            return Err(Error::InvalidParameter);
        }
        let s = RingSetup {
            frame_size: u32_at(buf, 4),
            frame_count: u32_at(buf, 8),
            fill: u32_at(buf, 12),
            rx: u32_at(buf, 16),
            tx: u32_at(buf, 20),
            completion: u32_at(buf, 24),
        };
        RingLayout::new(&s)?;
        Ok(s)
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?;
        w.u32(self.frame_size)?.u32(self.frame_count)?.u32(self.fill)?.u32(self.rx)?;
        w.u32(self.tx)?.u32(self.completion)?.u32(0)?;
        Ok(w.position())
    }
}

/// Where one ring lives in the UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingArea {
    /// Offset of its header.
    pub offset: usize,
    /// Entries (a power of two).
    pub size: u32,
    /// Bytes per entry.
    pub entry: usize,
}

impl RingArea {
    pub fn producer(&self) -> usize {
        self.offset
    }

    pub fn consumer(&self) -> usize {
        self.offset + CONSUMER
    }

    /// Offset of the entry for free-running index `i`.
    #[inline]
    pub fn entry_at(&self, i: u32) -> usize {
        self.offset + RING_HEADER + (i & (self.size - 1)) as usize * self.entry
    }

    fn end(&self) -> usize {
        self.offset + RING_HEADER + self.size as usize * self.entry
    }
}

/// The UMEM's layout for a setup: every offset, computed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    pub frame_size: u32,
    pub frame_count: u32,
    pub fill: RingArea,
    pub rx: RingArea,
    pub tx: RingArea,
    pub completion: RingArea,
    /// Offset of the first frame (a multiple of `PAGE`).
    pub frames: usize,
    /// The UMEM's size: the attach's output buffer must be exactly this.
    pub total: usize,
}

fn ring_size_ok(n: u32) -> bool {
    n.is_power_of_two() && (MIN_RING..=MAX_RING).contains(&n)
}

impl RingLayout {
    /// Checks a setup and lays it out: frame size one of `FRAME_SIZES`,
    /// every ring a power of two in `MIN_RING..=MAX_RING`, at least one
    /// frame, and the whole at most `MAX_UMEM_BYTES`.
    pub fn new(s: &RingSetup) -> Result<Self, Error> {
        if !FRAME_SIZES.contains(&s.frame_size)
            || s.frame_count == 0
            || ![s.fill, s.rx, s.tx, s.completion].into_iter().all(ring_size_ok)
        {
            return Err(Error::InvalidParameter);
        }
        let area = |offset: usize, size: u32, entry: usize| RingArea { offset, size, entry };
        let fill = area(CONTROL_LEN, s.fill, 8);
        let rx = area(fill.end(), s.rx, RxDesc::LEN);
        let tx = area(rx.end(), s.tx, TxDesc::LEN);
        let completion = area(tx.end(), s.completion, 8);
        let frames = completion.end().div_ceil(PAGE) * PAGE;
        let bytes = (s.frame_count as usize).checked_mul(s.frame_size as usize).ok_or(Error::Overflow)?;
        let total = frames.checked_add(bytes).ok_or(Error::Overflow)?;
        if total > MAX_UMEM_BYTES {
            return Err(Error::InvalidParameter);
        }
        Ok(RingLayout { frame_size: s.frame_size, frame_count: s.frame_count, fill, rx, tx, completion, frames, total })
    }

    /// Whether `addr` is a frame's first byte.
    #[inline]
    pub fn is_frame_start(&self, addr: u64) -> bool {
        let Some(rel) = (addr as usize).checked_sub(self.frames) else { return false };
        addr <= usize::MAX as u64
            && rel % self.frame_size as usize == 0
            && rel / (self.frame_size as usize) < self.frame_count as usize
    }

    /// Checks a tx descriptor: `len` bytes at `addr` inside one frame, at
    /// least an Ethernet header and at most `max_len`, no flags.
    pub fn check_tx(&self, d: &TxDesc, max_len: usize) -> Result<(), Error> {
        if d.flags != 0 {
            return Err(Error::InvalidParameter);
        }
        let len = d.len as usize;
        if !(crate::ETH_HEADER..=max_len).contains(&len) {
            return Err(Error::FrameLength);
        }
        let rel =
            usize::try_from(d.addr).ok().and_then(|a| a.checked_sub(self.frames)).ok_or(Error::InvalidParameter)?;
        let fs = self.frame_size as usize;
        if rel / fs >= self.frame_count as usize || rel % fs + len > fs {
            return Err(Error::InvalidParameter);
        }
        Ok(())
    }
}

/// An rx ring entry: a received frame in the UMEM.
///
/// Layout (32 bytes): `addr: u64`, `len: u32` (bytes in the frame),
/// `origlen: u32` (the frame's length on the wire), `timestamp_ns: u64`
/// (Unix time), `flags: u16` (`frame_flags`), `tci: u16`, `segs: u16`,
/// `seg_size: u16` (as in `FrameHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxDesc {
    pub addr: u64,
    pub len: u32,
    pub origlen: u32,
    pub timestamp_ns: u64,
    pub flags: u16,
    pub tci: u16,
    pub segs: u16,
    pub seg_size: u16,
}

impl RxDesc {
    pub const LEN: usize = 32;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.origlen.to_le_bytes());
        b[16..24].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[24..26].copy_from_slice(&self.flags.to_le_bytes());
        b[26..28].copy_from_slice(&self.tci.to_le_bytes());
        b[28..30].copy_from_slice(&self.segs.to_le_bytes());
        b[30..32].copy_from_slice(&self.seg_size.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; Self::LEN]) -> Self {
        RxDesc {
            addr: u64_at(b, 0),
            len: u32_at(b, 8),
            origlen: u32_at(b, 12),
            timestamp_ns: u64_at(b, 16),
            flags: u16_at(b, 24),
            tci: u16_at(b, 26),
            segs: u16_at(b, 28),
            seg_size: u16_at(b, 30),
        }
    }
}

/// A tx ring entry: a frame to send.
///
/// Layout (16 bytes): `addr: u64`, `len: u32`, `flags: u32` (must be 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxDesc {
    pub addr: u64,
    pub len: u32,
    pub flags: u32,
}

impl TxDesc {
    pub const LEN: usize = 16;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; Self::LEN]) -> Self {
        TxDesc { addr: u64_at(b, 0), len: u32_at(b, 8), flags: u32_at(b, 12) }
    }
}

/// `IOCTL_RAWNIC_RING_WAIT` flags: what to wait for. A ring takes at most
/// 64 waits pending at once; more complete at once with
/// `STATUS_INSUFFICIENT_RESOURCES`.
pub mod wait_flags {
    /// Frames on the rx ring.
    pub const RX: u16 = 0x0001;
    /// Entries on the completion ring.
    pub const COMPLETION: u16 = 0x0002;
    pub const ALL: u16 = RX | COMPLETION;
}

/// `IOCTL_RAWNIC_RING_WAIT` input: header (4; flags are `wait_flags`, at
/// least one), 4 zero bytes. It completes at once when what it waits for is
/// already there (the driver's producer index is past the consumer index
/// the user published), else when the driver next publishes it.
pub struct RingWaitRequest;

impl RingWaitRequest {
    pub const LEN: usize = 8;

    pub fn parse(buf: &[u8]) -> Result<u16, Error> {
        if buf.len() < 4 {
            return Err(Error::Truncated);
        }
        if u16_at(buf, 0) != PROTO_VERSION {
            return Err(Error::Version);
        }
        let flags = u16_at(buf, 2);
        if flags & !wait_flags::ALL != 0 || flags == 0 {
            return Err(Error::InvalidParameter);
        }
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        if u32_at(buf, 4) != 0 {
            return Err(Error::InvalidParameter);
        }
        Ok(flags)
    }

    pub fn emit(flags: u16, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(flags)?.u32(0)?;
        Ok(w.position())
    }
}

/// `IOCTL_RAWNIC_RING_WAIT` and `IOCTL_RAWNIC_RING_KICK` reply: the
/// driver's producer indices, and what a kick did.
///
/// Layout (24 bytes): `version: u16`, `ready: u16` (`wait_flags` that hold),
/// `rx_producer: u32`, `completion_producer: u32`, `sent: u32` (frames a
/// kick gave NDIS), `invalid: u32` (descriptors a kick refused), 4 zero
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingReply {
    pub ready: u16,
    pub rx_producer: u32,
    pub completion_producer: u32,
    pub sent: u32,
    pub invalid: u32,
}

impl RingReply {
    pub const LEN: usize = 24;

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        if u16_at(buf, 0) != PROTO_VERSION {
            return Err(Error::Version);
        }
        Ok(RingReply {
            ready: u16_at(buf, 2),
            rx_producer: u32_at(buf, 4),
            completion_producer: u32_at(buf, 8),
            sent: u32_at(buf, 12),
            invalid: u32_at(buf, 16),
        })
    }

    /// Writes the reply into the first `LEN` bytes of `buf` (a kick's, a
    /// wait's): the buffer's length is checked once, then the fields go
    /// into a fixed-size array (no check per field).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let Some(out) = buf.first_chunk_mut::<{ Self::LEN }>() else { return Err(Error::Truncated) };
        let mut w = Writer::new(out);
        w.u16(PROTO_VERSION)?.u16(self.ready)?.u32(self.rx_producer)?.u32(self.completion_producer)?;
        w.u32(self.sent)?.u32(self.invalid)?.u32(0)?;
        Ok(w.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> RingSetup {
        RingSetup { frame_size: 2048, frame_count: 64, fill: 64, rx: 64, tx: 64, completion: 64 }
    }

    #[test]
    fn layout_is_packed_in_order_and_page_aligned() {
        let l = RingLayout::new(&setup()).unwrap();
        assert_eq!(l.fill.offset, CONTROL_LEN);
        assert_eq!(l.rx.offset, CONTROL_LEN + RING_HEADER + 64 * 8);
        assert_eq!(l.tx.offset, l.rx.offset + RING_HEADER + 64 * 32);
        assert_eq!(l.completion.offset, l.tx.offset + RING_HEADER + 64 * 16);
        assert_eq!(l.frames % PAGE, 0);
        assert!(l.frames >= l.completion.offset + RING_HEADER + 64 * 8);
        assert_eq!(l.total, l.frames + 64 * 2048);
        assert_eq!(l.rx.entry_at(65), l.rx.entry_at(1));
        assert_eq!(l.rx.consumer(), l.rx.offset + 64);
    }

    #[test]
    fn setup_round_trips_and_refuses_bad_shapes() {
        let mut b = [0u8; RingSetup::LEN];
        assert_eq!(setup().emit(&mut b), Ok(RingSetup::LEN));
        assert_eq!(RingSetup::parse(&b), Ok(setup()));
        let bad = |f: &dyn Fn(&mut RingSetup)| {
            let mut s = setup();
            f(&mut s);
            let mut b = [0u8; RingSetup::LEN];
            s.emit(&mut b).unwrap();
            RingSetup::parse(&b)
        };
        assert_eq!(bad(&|s| s.frame_size = 1024), Err(Error::InvalidParameter));
        assert_eq!(bad(&|s| s.frame_count = 0), Err(Error::InvalidParameter));
        assert_eq!(bad(&|s| s.rx = 48), Err(Error::InvalidParameter));
        assert_eq!(bad(&|s| s.tx = 4), Err(Error::InvalidParameter));
        assert_eq!(bad(&|s| s.completion = 65536), Err(Error::InvalidParameter));
        assert_eq!(bad(&|s| s.frame_count = 40_000), Err(Error::InvalidParameter));
        assert_eq!(bad(&|s| s.frame_count = u32::MAX), Err(Error::InvalidParameter));
        assert_eq!(RingSetup::parse(&b[..31]), Err(Error::LengthMismatch));
        let mut v = b;
        v[0] ^= 1;
        assert_eq!(RingSetup::parse(&v), Err(Error::Version));
        let mut f = b;
        f[2] = 1;
        assert_eq!(RingSetup::parse(&f), Err(Error::InvalidParameter));
        let mut r = b;
        r[31] = 1;
        assert_eq!(RingSetup::parse(&r), Err(Error::InvalidParameter));
    }

    #[test]
    fn frame_starts_and_tx_descriptors_are_checked() {
        let l = RingLayout::new(&setup()).unwrap();
        let f = l.frames as u64;
        assert!(l.is_frame_start(f));
        assert!(l.is_frame_start(f + 63 * 2048));
        assert!(!l.is_frame_start(f + 64 * 2048));
        assert!(!l.is_frame_start(f + 1));
        assert!(!l.is_frame_start(f - 2048));
        assert!(!l.is_frame_start(u64::MAX));
        let d = |addr: u64, len: u32| TxDesc { addr, len, flags: 0 };
        assert_eq!(l.check_tx(&d(f, 60), 1518), Ok(()));
        assert_eq!(l.check_tx(&d(f + 2048 - 60, 60), 1518), Ok(()));
        assert_eq!(l.check_tx(&d(f + 2048 - 59, 60), 1518), Err(Error::InvalidParameter));
        assert_eq!(l.check_tx(&d(f, 13), 1518), Err(Error::FrameLength));
        assert_eq!(l.check_tx(&d(f, 1519), 1518), Err(Error::FrameLength));
        assert_eq!(l.check_tx(&d(f - 1, 60), 1518), Err(Error::InvalidParameter));
        assert_eq!(l.check_tx(&d(f + 64 * 2048, 60), 1518), Err(Error::InvalidParameter));
        assert_eq!(l.check_tx(&d(u64::MAX, 60), 1518), Err(Error::InvalidParameter));
        assert_eq!(l.check_tx(&TxDesc { addr: f, len: 60, flags: 1 }, 1518), Err(Error::InvalidParameter));
    }

    #[test]
    fn counters_read_back_what_their_words_say() {
        let c = RingCounters {
            rx_frames: 1,
            rx_fill_empty: 2,
            rx_ring_full: 3,
            fill_invalid: 4,
            tx_frames: 5,
            tx_invalid: 6,
            tx_errors: 7,
            bad_index: 8,
        };
        let mut block = [0u64; CONTROL_LEN / 8];
        for (off, v) in c.words() {
            assert_eq!(block[off / 8], 0, "two counters at {off}");
            block[off / 8] = v;
        }
        assert_eq!(RingCounters::read(|off| block[off / 8]), c);
    }

    #[test]
    fn descriptors_round_trip() {
        let r = RxDesc { addr: 1, len: 2, origlen: 3, timestamp_ns: 4, flags: 5, tci: 6, segs: 7, seg_size: 8 };
        assert_eq!(RxDesc::from_bytes(&r.to_bytes()), r);
        let t = TxDesc { addr: 9, len: 10, flags: 11 };
        assert_eq!(TxDesc::from_bytes(&t.to_bytes()), t);
        let rep = RingReply { ready: 3, rx_producer: 4, completion_producer: 5, sent: 6, invalid: 7 };
        let mut b = [0xAAu8; RingReply::LEN];
        assert_eq!(rep.emit(&mut b), Ok(RingReply::LEN));
        assert_eq!(RingReply::parse(&b), Ok(rep));
        let mut w = [0u8; RingWaitRequest::LEN];
        RingWaitRequest::emit(wait_flags::RX, &mut w).unwrap();
        assert_eq!(RingWaitRequest::parse(&w), Ok(wait_flags::RX));
        RingWaitRequest::emit(0, &mut w).unwrap();
        assert_eq!(RingWaitRequest::parse(&w), Err(Error::InvalidParameter));
    }
}
