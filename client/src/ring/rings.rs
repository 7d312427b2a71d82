//! [`RxRing`] (the fill and rx rings) and [`TxRing`] (the tx and
//! completion rings): the user's side of each, with frame ownership in the
//! types.

use super::queue::{Consumer, Producer};
use super::space::{Space, UmemFrame, broken};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::frame::FrameRef;
use crate::transport::Request;
use rawnic_proto::ring::{RingReply, RingWaitRequest, RxDesc, TxDesc, wait_flags};
use rawnic_proto::{EmptyRequest, FrameHeader, IOCTL_RAWNIC_RING_KICK, IOCTL_RAWNIC_RING_WAIT};
use std::fmt;
use std::time::Duration;

/// A received frame: the frame (the user's until it is filled again or
/// freed) and the driver's record of it.
pub struct RxFrame<'u> {
    frame: UmemFrame<'u>,
    desc: RxDesc,
    /// Where in the frame the data starts.
    start: usize,
}

impl fmt::Debug for RxFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxFrame").field("frame", &self.frame.index()).field("desc", &self.desc).finish()
    }
}

impl<'u> RxFrame<'u> {
    /// What the driver recorded: length on the wire, time, flags, tag.
    pub fn desc(&self) -> &RxDesc {
        &self.desc
    }

    /// The received bytes, in the UMEM (no copy).
    pub fn data(&self) -> &[u8] {
        &self.frame.buf()[self.start..self.start + self.desc.len as usize]
    }

    /// The record as a read's frame header.
    pub fn header(&self) -> FrameHeader {
        let d = &self.desc;
        FrameHeader {
            caplen: d.len,
            origlen: d.origlen,
            timestamp_ns: d.timestamp_ns,
            flags: d.flags,
            tci: d.tci,
            segs: d.segs,
            seg_size: d.seg_size,
        }
    }

    /// The frame as a read returns it, for what prints and saves frames.
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef { header: self.header(), data: self.data() }
    }

    /// The frame, to fill again, send from, or free.
    pub fn into_frame(self) -> UmemFrame<'u> {
        self.frame
    }
}

/// `RING_WAIT` for `flags`; `None` when `timeout` passed first.
fn wait(dev: &Device, flags: u16, timeout: Option<Duration>) -> Result<Option<RingReply>> {
    let request = Request::Ioctl(IOCTL_RAWNIC_RING_WAIT);
    let mut input = [0u8; RingWaitRequest::LEN];
    RingWaitRequest::emit(flags, &mut input).expect("sized");
    match dev.call(request, &input, RingReply::LEN, timeout) {
        Ok(c) => {
            let c = c.success(request)?;
            Ok(Some(crate::device::parse_reply(request, &c.data, RingReply::parse)?))
        }
        Err(e) if e.is_timeout() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The fill ring (frames to receive into) and the rx ring (frames
/// received), from [`Umem::split`](super::Umem::split). One thread uses it
/// at a time; it may be moved to another.
pub struct RxRing<'u> {
    space: &'u Space,
    dev: &'u Device,
    fill: Producer,
    rx: Consumer,
}

impl fmt::Debug for RxRing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxRing").field("fill", &self.fill.index()).field("rx", &self.rx.index()).finish()
    }
}

impl<'u> RxRing<'u> {
    pub(crate) fn new(space: &'u Space, dev: &'u Device) -> Self {
        RxRing { space, dev, fill: Producer::new(space.layout.fill, "fill"), rx: Consumer::new(space.layout.rx, "rx") }
    }

    /// Gives frames from the front of `frames` to the driver to receive
    /// into, as many as the fill ring takes now; returns how many. The rest
    /// stay in `frames`.
    pub fn fill(&mut self, frames: &mut Vec<UmemFrame<'u>>) -> Result<usize> {
        let n = (self.fill.free(self.space)? as usize).min(frames.len());
        for (i, f) in frames.drain(..n).enumerate() {
            let off = self.space.give(f);
            self.fill.put(self.space, i as u32, off.to_le_bytes());
        }
        self.fill.publish(self.space, n as u32);
        Ok(n)
    }

    /// Room on the fill ring now.
    pub fn fill_free(&self) -> Result<usize> {
        Ok(self.fill.free(self.space)? as usize)
    }

    /// Frames received and not yet taken.
    pub fn ready(&self) -> Result<usize> {
        Ok(self.rx.ready(self.space)? as usize)
    }

    /// Takes up to `max` received frames without waiting, appending them
    /// to `out`; returns how many. A descriptor that names no frame the
    /// driver had is an error (the frames before it are in `out`).
    pub fn recv(&mut self, out: &mut Vec<RxFrame<'u>>, max: usize) -> Result<usize> {
        let n = (self.rx.ready(self.space)? as usize).min(max) as u32;
        let (mut taken, mut result) = (0, Ok(n as usize));
        while taken < n {
            let desc = RxDesc::from_bytes(&self.rx.get(self.space, taken));
            // A broken descriptor is consumed with the error, so the ring
            // goes on after it.
            taken += 1;
            match self.check(&desc) {
                Ok(f) => out.push(f),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.rx.release(self.space, taken);
        result
    }

    fn check(&self, desc: &RxDesc) -> Result<RxFrame<'u>> {
        let fs = self.space.layout.frame_size as usize;
        let (idx, start) = self
            .space
            .frame_of(desc.addr)
            .ok_or_else(|| broken(format!("an rx descriptor names offset {:#x}, outside the frames", desc.addr)))?;
        if start + desc.len as usize > fs {
            return Err(broken(format!(
                "an rx descriptor of {} bytes at offset {:#x} runs past the end of frame {idx}",
                desc.len, desc.addr
            )));
        }
        let frame = self.space.take_back(idx)?;
        Ok(RxFrame { frame, desc: *desc, start })
    }

    /// Waits (`RING_WAIT`) until frames are received; `false` when
    /// `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.ready()? > 0 {
            return Ok(true);
        }
        Ok(wait(self.dev, wait_flags::RX, timeout)?.is_some())
    }
}

/// What `RING_KICK` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kick {
    /// Frames the driver gave NDIS.
    pub sent: u32,
    /// Descriptors it refused (they come back on the completion ring).
    pub invalid: u32,
}

/// The tx ring (frames to send) and the completion ring (frames sent),
/// from [`Umem::split`](super::Umem::split). Sends are zero-copy: NDIS
/// reads the frames in the UMEM, which is why a frame is the driver's until
/// the completion ring gives it back.
pub struct TxRing<'u> {
    space: &'u Space,
    dev: &'u Device,
    tx: Producer,
    completion: Consumer,
}

impl fmt::Debug for TxRing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxRing").field("tx", &self.tx.index()).field("completion", &self.completion.index()).finish()
    }
}

impl<'u> TxRing<'u> {
    pub(crate) fn new(space: &'u Space, dev: &'u Device) -> Self {
        TxRing {
            space,
            dev,
            tx: Producer::new(space.layout.tx, "tx"),
            completion: Consumer::new(space.layout.completion, "completion"),
        }
    }

    /// Puts frames from the front of `frames` on the tx ring, each
    /// [`len`](UmemFrame::len) bytes from its start, as many as the ring
    /// takes now; returns how many. Nothing is sent before
    /// [`kick`](Self::kick). A frame shorter than an Ethernet header or
    /// longer than the binding sends is refused before any is posted.
    pub fn send(&mut self, frames: &mut Vec<UmemFrame<'u>>) -> Result<usize> {
        let max_frame = self.dev.binding().map_or(usize::MAX, |b| b.max_frame());
        for (i, f) in frames.iter().enumerate() {
            let max = rawnic_proto::max_send_len(max_frame, f.data(), None).min(f.capacity());
            if !(rawnic_proto::ETH_HEADER..=max).contains(&f.len()) {
                return Err(Error::InvalidArgument(format!(
                    "frame {i} to send is {} bytes long; a frame is {} to {max} bytes",
                    f.len(),
                    rawnic_proto::ETH_HEADER
                )));
            }
        }
        let n = (self.tx.free(self.space)? as usize).min(frames.len());
        for (i, f) in frames.drain(..n).enumerate() {
            let len = f.len() as u32;
            let addr = self.space.give(f);
            self.tx.put(self.space, i as u32, TxDesc { addr, len, flags: 0 }.to_bytes());
        }
        self.tx.publish(self.space, n as u32);
        Ok(n)
    }

    /// Puts one descriptor on the tx ring as given, unchecked: `len` bytes
    /// at `offset` into `frame`, with `flags`. The driver checks it; one it
    /// refuses comes back on the completion ring unsent and counts in
    /// [`RingCounters::tx_invalid`](super::RingCounters::tx_invalid).
    /// Gives the frame back when the ring is full.
    pub fn send_raw(
        &mut self,
        frame: UmemFrame<'u>,
        offset: u32,
        len: u32,
        flags: u32,
    ) -> Result<Option<UmemFrame<'u>>> {
        if offset as usize >= frame.capacity() {
            return Err(Error::InvalidArgument(format!(
                "offset {offset} is outside a frame of {} bytes",
                frame.capacity()
            )));
        }
        if self.tx.free(self.space)? == 0 {
            return Ok(Some(frame));
        }
        let addr = self.space.give(frame) + u64::from(offset);
        self.tx.put(self.space, 0, TxDesc { addr, len, flags }.to_bytes());
        self.tx.publish(self.space, 1);
        Ok(None)
    }

    /// Room on the tx ring now.
    pub fn free(&self) -> Result<usize> {
        Ok(self.tx.free(self.space)? as usize)
    }

    /// `RING_KICK`: the driver sends what the tx ring holds.
    pub fn kick(&mut self) -> Result<Kick> {
        let r = kick(self.dev)?;
        Ok(Kick { sent: r.sent, invalid: r.invalid })
    }

    /// Takes back up to `max` frames from the completion ring, appending
    /// them to `out`; returns how many.
    pub fn complete(&mut self, out: &mut Vec<UmemFrame<'u>>, max: usize) -> Result<usize> {
        let n = (self.completion.ready(self.space)? as usize).min(max) as u32;
        let (mut taken, mut result) = (0, Ok(n as usize));
        while taken < n {
            let addr = u64::from_le_bytes(self.completion.get(self.space, taken));
            // A broken entry is consumed with the error.
            taken += 1;
            let frame = self
                .space
                .frame_of(addr)
                .ok_or_else(|| broken(format!("a completion names offset {addr:#x}, outside the frames")));
            match frame.and_then(|(idx, _)| self.space.take_back(idx)) {
                Ok(f) => out.push(f),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.completion.release(self.space, taken);
        result
    }

    /// Waits (`RING_WAIT`) until the completion ring has entries; `false`
    /// when `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.completion.ready(self.space)? > 0 {
            return Ok(true);
        }
        Ok(wait(self.dev, wait_flags::COMPLETION, timeout)?.is_some())
    }

    /// Frames posted on the tx ring that have not come back yet.
    pub fn in_flight(&self) -> u32 {
        self.tx.index().wrapping_sub(self.completion.index())
    }
}

/// `RING_KICK`, whose reply also says whether a UMEM is attached.
pub(crate) fn kick(dev: &Device) -> Result<RingReply> {
    let request = Request::Ioctl(IOCTL_RAWNIC_RING_KICK);
    let mut input = [0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut input).expect("4 bytes");
    let c = dev.call(request, &input, RingReply::LEN, None)?.success(request)?;
    crate::device::parse_reply(request, &c.data, RingReply::parse)
}
