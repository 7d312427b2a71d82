//! SEND_BATCH: frames to send.

use super::*;

/// Per-frame send flags.
pub mod send_flags {
    /// Send the frame with an 802.1Q tag (`tci`): the NIC inserts it when
    /// the adapter advertises 802.1Q (and the TCI is not 0, which NDIS
    /// cannot tell from no tag); otherwise the driver writes it into the
    /// frame after the MAC addresses.
    pub const TAG: u16 = 0x0001;
}

/// One frame of a send batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFrame<'a> {
    pub data: &'a [u8],
    /// 802.1Q TCI (`priority:3, dei:1, vlan:12`), when present.
    pub tci: Option<u16>,
}

impl SendFrame<'_> {
    pub const HEADER: usize = 8;

    pub fn wire_len(&self) -> usize {
        pad8(Self::HEADER + self.data.len()).unwrap_or(usize::MAX)
    }
}

/// Builds a `SEND_BATCH` input buffer.
pub struct SendBatchWriter<'a> {
    w: Writer<'a>,
    count: u32,
    count_at: usize,
}

impl<'a> SendBatchWriter<'a> {
    pub const HEADER: usize = 16;

    pub fn new(buf: &'a mut [u8]) -> Result<Self, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?;
        let count_at = w.position();
        w.u32(0)?.u64(0)?;
        Ok(SendBatchWriter { w, count: 0, count_at })
    }

    /// Appends a frame; fails (writing nothing more) when it does not fit.
    pub fn push(&mut self, f: &SendFrame<'_>) -> Result<(), Error> {
        if f.data.len() > u16::MAX as usize {
            return Err(Error::FrameLength);
        }
        if self.w.remaining() < f.wire_len() {
            return Err(Error::Truncated);
        }
        let (flags, tci) = match f.tci {
            Some(t) => (send_flags::TAG, t),
            None => (0, 0),
        };
        self.w.u16(f.data.len() as u16)?.u16(flags)?.u16(tci)?.u16(0)?;
        self.w.bytes(f.data)?.pad8()?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Writes the count and returns the buffer length to send.
    pub fn finish(self) -> usize {
        let len = self.w.position();
        let count = self.count;
        let at = self.count_at;
        let buf = self.w.into_inner();
        buf[at..at + 4].copy_from_slice(&count.to_le_bytes());
        len
    }

    /// A whole `SEND_BATCH` input holding `frames`, in order (`Err` for a
    /// frame longer than a record can say).
    #[cfg(feature = "alloc")]
    pub fn build(frames: &[SendFrame<'_>]) -> Result<alloc::vec::Vec<u8>, Error> {
        let size = frames.iter().try_fold(Self::HEADER, |n, f| n.checked_add(f.wire_len())).ok_or(Error::Overflow)?;
        let mut buf = alloc::vec![0u8; size];
        let mut w = SendBatchWriter::new(&mut buf)?;
        for f in frames {
            w.push(f)?;
        }
        let n = w.finish();
        buf.truncate(n);
        Ok(buf)
    }
}

/// A checked `IOCTL_RAWNIC_SEND_BATCH` input.
///
/// Layout: header (4), `count: u32`, 8 reserved bytes; then `count`
/// records of `len: u16, flags: u16, tci: u16, reserved: u16` and `len`
/// bytes of frame, padded to 8. The buffer must end with the last record.
/// A frame is 14 bytes to `max_frame`, or to `max_frame + 4` when it has no
/// `TAG` flag and carries an 802.1Q tag inline ([`max_send_len`]).
#[derive(Clone, Copy)]
pub struct SendBatch<'a> {
    buf: &'a [u8],
    count: u32,
}

impl<'a> SendBatch<'a> {
    /// Validates every record. `max_frame` is the binding's MTU + 14, the
    /// longest untagged frame.
    pub fn new_checked(buf: &'a [u8], max_frame: usize) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() < SendBatchWriter::HEADER {
            return Err(Error::Truncated);
        }
        let count = u32_at(buf, 4);
        if u64_at(buf, 8) != 0 {
            return Err(Error::InvalidParameter);
        }
        // The smallest record is 8 + 14 bytes padded to 24; a count whose
        // minimum size does not fit 32 bits overflows.
        let min = count.checked_mul(24).and_then(|v| v.checked_add(SendBatchWriter::HEADER as u32));
        if min.is_none() {
            return Err(Error::Overflow);
        }
        if count == 0 || count > MAX_BATCH {
            return Err(Error::InvalidParameter);
        }
        // One 8-byte load per record header; the checks, in this order,
        // are the record's whole validation.
        const TAG: u64 = (send_flags::TAG as u64) << 16;
        const RESERVED: u64 = ((!send_flags::TAG as u64 & 0xffff) << 16) | (0xffff << 48);
        let end = buf.len();
        let mut off = SendBatchWriter::HEADER;
        for _ in 0..count {
            let h = match buf.get(off..off + SendFrame::HEADER) {
                Some(h) => u64_at(h, 0),
                None => return Err(Error::LengthMismatch),
            };
            if h & RESERVED != 0 {
                return Err(Error::InvalidParameter);
            }
            if h & TAG != 0 && (h >> 32) & 0x0FFF == 0x0FFF {
                return Err(Error::InvalidParameter);
            }
            let len = (h & 0xffff) as usize;
            if len < ETH_HEADER || len > max_frame + VLAN_TAG {
                return Err(Error::FrameLength);
            }
            let data_end = off + SendFrame::HEADER + len;
            if data_end > end {
                return Err(Error::LengthMismatch);
            }
            // Longer than an untagged frame: only with its tag inline.
            if len > max_frame && (h & TAG != 0 || inline_tci(&buf[off + SendFrame::HEADER..data_end]).is_none()) {
                return Err(Error::FrameLength);
            }
            // The last record's padding may be omitted.
            off = ((data_end + 7) & !7).min(end);
        }
        if off != end {
            return Err(Error::LengthMismatch);
        }
        Ok(SendBatch { buf, count })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn frames(&self) -> SendFrames<'a> {
        SendFrames { buf: self.buf, off: SendBatchWriter::HEADER, left: self.count }
    }
}

/// Iterator over the frames of a checked batch.
#[derive(Clone)]
pub struct SendFrames<'a> {
    buf: &'a [u8],
    off: usize,
    left: u32,
}

impl<'a> Iterator for SendFrames<'a> {
    type Item = SendFrame<'a>;

    #[inline]
    fn next(&mut self) -> Option<SendFrame<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let off = self.off;
        let h = u64_at(self.buf, off);
        let len = (h & 0xffff) as usize;
        let tci = (h & ((send_flags::TAG as u64) << 16) != 0).then_some((h >> 32) as u16);
        let start = off + SendFrame::HEADER;
        let data = &self.buf[start..start + len];
        self.off = ((start + len + 7) & !7).min(self.buf.len());
        Some(SendFrame { data, tci })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// `IOCTL_RAWNIC_SEND_BATCH` reply: how many frames, from the start of the
/// batch, NDIS accepted. Fewer than sent means the binding ran out of send
/// buffers, or paused (the driver sends a batch in chunks of 64 frames, and
/// a pause may come between two), or a restart shrank the MTU below a
/// frame's length; the caller sends the rest again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReply {
    pub accepted: u32,
    pub bytes: u64,
}

impl SendReply {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.accepted)?.u64(self.bytes)?;
        Ok(w.position())
    }

    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() != Self::LEN {
            return Err(Error::LengthMismatch);
        }
        Ok(SendReply { accepted: u32_at(buf, 4), bytes: u64_at(buf, 8) })
    }
}

#[cfg(test)]
mod send_batch_tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn batch(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
        let items: Vec<SendFrame<'_>> = frames.iter().map(|(f, tci)| SendFrame { data: f, tci: *tci }).collect();
        SendBatchWriter::build(&items).unwrap()
    }

    #[test]
    fn the_builder_refuses_a_frame_no_record_can_say() {
        let big = vec![0u8; 65_536];
        assert_eq!(SendBatchWriter::build(&[SendFrame { data: &big, tci: None }]), Err(Error::FrameLength));
        assert_eq!(SendBatchWriter::build(&[]).map(|b| b.len()), Ok(SendBatchWriter::HEADER));
    }

    #[test]
    fn frames_come_back_as_written() {
        let a: Vec<u8> = (0..60).collect();
        let b: Vec<u8> = (0..1514).map(|i| i as u8).collect();
        let c: Vec<u8> = (0..17).collect();
        let buf = batch(&[(a.clone(), None), (b.clone(), Some(0xe005)), (c.clone(), None)]);
        let sb = SendBatch::new_checked(&buf, 1514).unwrap();
        assert_eq!(sb.count(), 3);
        let got: Vec<(Vec<u8>, Option<u16>)> = sb.frames().map(|f| (f.data.to_vec(), f.tci)).collect();
        assert_eq!(got, vec![(a, None), (b, Some(0xe005)), (c.clone(), None)]);
        // The last record's padding may be left out.
        let short = &buf[..buf.len() - 7];
        let sb = SendBatch::new_checked(short, 1514).unwrap();
        assert_eq!(sb.frames().last().unwrap().data, &c[..]);
    }

    #[test]
    fn every_malformed_batch_is_refused_with_its_error() {
        let f: Vec<u8> = vec![1; 60];
        let good = batch(&[(f.clone(), None), (f.clone(), Some(5))]);
        let check = |b: &[u8]| SendBatch::new_checked(b, 1514).err();
        assert_eq!(check(&good), None);
        assert_eq!(check(&good[..8]), Some(Error::Truncated));
        let mut v = good.clone();
        v[0] = PROTO_VERSION as u8 + 1;
        assert_eq!(check(&v), Some(Error::Version));
        let mut v = good.clone();
        v[8] = 1;
        assert_eq!(check(&v), Some(Error::InvalidParameter), "reserved header bytes");
        let mut v = good.clone();
        v[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(check(&v), Some(Error::Overflow));
        let mut v = good.clone();
        v[4..8].copy_from_slice(&(MAX_BATCH + 1).to_le_bytes());
        assert_eq!(check(&v), Some(Error::InvalidParameter));
        let mut v = good.clone();
        v[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(check(&v), Some(Error::InvalidParameter), "an empty batch");
        let mut v = good.clone();
        v[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(check(&v), Some(Error::LengthMismatch), "a count past the buffer");
        let mut v = good.clone();
        v.extend_from_slice(&[0; 8]);
        assert_eq!(check(&v), Some(Error::LengthMismatch), "bytes after the last frame");
        assert_eq!(check(&good[..good.len() - 8]), Some(Error::LengthMismatch), "a frame cut short");
        for (at, what) in [(18, "unknown flag"), (22, "reserved record bytes")] {
            let mut v = good.clone();
            v[at] = 0x10;
            assert_eq!(check(&v), Some(Error::InvalidParameter), "{what}");
        }
        assert_eq!(check(&batch(&[(f[..13].to_vec(), None)])), Some(Error::FrameLength));
        assert_eq!(check(&batch(&[(vec![0; 1515], None)])), Some(Error::FrameLength));
        assert_eq!(check(&batch(&[(f.clone(), Some(0x0fff))])), Some(Error::InvalidParameter), "VLAN 4095");
        assert_eq!(
            check(&batch(&[(f.clone(), Some(0xffff))])),
            Some(Error::InvalidParameter),
            "VLAN 4095 with priority"
        );
        assert_eq!(check(&batch(&[(f.clone(), Some(0x0ffe))])), None, "VLAN 4094");
    }
}
