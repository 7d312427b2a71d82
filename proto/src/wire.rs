//! Little-endian field access. Reads of a checked view index within bounds
//! that `new_checked` proved; writes go through `Writer`, which refuses to
//! run past its buffer.

use crate::status::Error;

/// `u16` at `off`; the caller has checked `off + 2 <= buf.len()`.
#[inline]
pub fn u16_at(buf: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([buf[off], buf[off + 1]])
}

/// `u32` at `off`.
#[inline]
pub fn u32_at(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// `i32` at `off`.
#[inline]
pub fn i32_at(buf: &[u8], off: usize) -> i32 {
    u32_at(buf, off) as i32
}

/// `u64` at `off`.
#[inline]
pub fn u64_at(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}

/// Rounds up to a multiple of 8, or `None` on overflow.
#[inline]
pub fn pad8(n: usize) -> Option<usize> {
    n.checked_add(7).map(|v| v & !7)
}

/// Writes fields in order into a buffer, failing instead of running past it.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> &'a mut [u8] {
        self.buf
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, b: &[u8]) -> Result<&mut Self, Error> {
        let end = self.pos.checked_add(b.len()).ok_or(Error::Overflow)?;
        if end > self.buf.len() {
            return Err(Error::Truncated);
        }
        self.buf[self.pos..end].copy_from_slice(b);
        self.pos = end;
        Ok(self)
    }

    pub fn u8(&mut self, v: u8) -> Result<&mut Self, Error> {
        self.bytes(&[v])
    }

    pub fn u16(&mut self, v: u16) -> Result<&mut Self, Error> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u32(&mut self, v: u32) -> Result<&mut Self, Error> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn i32(&mut self, v: i32) -> Result<&mut Self, Error> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> Result<&mut Self, Error> {
        self.bytes(&v.to_le_bytes())
    }

    /// Zero bytes up to the next multiple of 8.
    pub fn pad8(&mut self) -> Result<&mut Self, Error> {
        let target = pad8(self.pos).ok_or(Error::Overflow)?;
        while self.pos < target {
            self.u8(0)?;
        }
        Ok(self)
    }

    /// Zero bytes up to absolute position `to`.
    pub fn zeros_to(&mut self, to: usize) -> Result<&mut Self, Error> {
        while self.pos < to {
            self.u8(0)?;
        }
        Ok(self)
    }
}
