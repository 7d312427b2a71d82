//! One ring's indices from the user's side: the producer of the fill and tx
//! rings, the consumer of the rx and completion rings.
//!
//! Indices are free-running `u32`s. The user keeps its own index here and
//! only publishes it (a Release store, after the entries it covers were
//! written or read); it reads the driver's with an Acquire load, and never
//! trusts it past the ring's size: an index that would make the ring hold
//! more than it can is an error.

use super::space::{Space, broken};
use crate::error::Result;
use rawnic_proto::ring::RingArea;
use std::sync::atomic::Ordering;

/// The side of a ring the user produces.
pub(crate) struct Producer {
    area: RingArea,
    /// The next entry to write (published up to here).
    prod: u32,
    name: &'static str,
}

impl Producer {
    pub(crate) fn new(area: RingArea, name: &'static str) -> Producer {
        Producer { area, prod: 0, name }
    }

    /// Entries the ring can take now.
    pub(crate) fn free(&self, space: &Space) -> Result<u32> {
        let cons = space.u32_at(self.area.consumer()).load(Ordering::Acquire);
        let used = self.prod.wrapping_sub(cons);
        if used > self.area.size {
            return Err(broken(format!(
                "the {} ring's consumer index {cons} is not among the {} entries before its producer index {}",
                self.name, self.area.size, self.prod
            )));
        }
        Ok(self.area.size - used)
    }

    /// Writes entry `i` past the published ones (not yet published).
    pub(crate) fn put<const N: usize>(&self, space: &Space, i: u32, bytes: [u8; N]) {
        debug_assert_eq!(N, self.area.entry);
        space.write(self.area.entry_at(self.prod.wrapping_add(i)), bytes);
    }

    /// Publishes `n` entries written with `put`.
    pub(crate) fn publish(&mut self, space: &Space, n: u32) {
        self.prod = self.prod.wrapping_add(n);
        space.u32_at(self.area.producer()).store(self.prod, Ordering::Release);
    }

    /// The published index.
    pub(crate) fn index(&self) -> u32 {
        self.prod
    }
}

/// The side of a ring the user consumes.
pub(crate) struct Consumer {
    area: RingArea,
    /// The next entry to read (published up to here).
    cons: u32,
    name: &'static str,
}

impl Consumer {
    pub(crate) fn new(area: RingArea, name: &'static str) -> Consumer {
        Consumer { area, cons: 0, name }
    }

    /// Entries the driver has published that the user has not read.
    pub(crate) fn ready(&self, space: &Space) -> Result<u32> {
        let prod = space.u32_at(self.area.producer()).load(Ordering::Acquire);
        self.ready_at(prod)
    }

    /// As `ready`, had the driver published `prod`.
    pub(crate) fn ready_at(&self, prod: u32) -> Result<u32> {
        let n = prod.wrapping_sub(self.cons);
        if n > self.area.size {
            return Err(broken(format!(
                "the {} ring's producer index {prod} is {n} entries past its consumer index {} (the ring holds {})",
                self.name, self.cons, self.area.size
            )));
        }
        Ok(n)
    }

    /// Entry `i` past the consumed ones.
    pub(crate) fn get<const N: usize>(&self, space: &Space, i: u32) -> [u8; N] {
        debug_assert_eq!(N, self.area.entry);
        space.read(self.area.entry_at(self.cons.wrapping_add(i)))
    }

    /// Gives `n` read entries back to the driver.
    pub(crate) fn release(&mut self, space: &Space, n: u32) {
        self.cons = self.cons.wrapping_add(n);
        space.u32_at(self.area.consumer()).store(self.cons, Ordering::Release);
    }

    /// The published index.
    pub(crate) fn index(&self) -> u32 {
        self.cons
    }
}

/// Distance checks as pure functions, for the tests.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::mem::SharedMem;
    use rawnic_proto::ring::{RingLayout, RingSetup};
    use std::sync::Arc;

    fn space() -> Space {
        let l = RingLayout::new(&RingSetup { frame_size: 2048, frame_count: 16, fill: 8, rx: 8, tx: 8, completion: 8 })
            .unwrap();
        Space::new(Arc::new(SharedMem::new(l.total).unwrap()), l)
    }

    #[test]
    fn a_producer_fills_the_ring_and_no_further() {
        let s = space();
        let mut p = Producer::new(s.layout.fill, "fill");
        assert_eq!(p.free(&s).unwrap(), 8);
        for i in 0..8 {
            p.put(&s, i, (100 + u64::from(i)).to_le_bytes());
        }
        p.publish(&s, 8);
        assert_eq!(p.free(&s).unwrap(), 0);
        assert_eq!(s.u32_at(s.layout.fill.producer()).load(Ordering::Relaxed), 8);
        // The entries are where the layout says.
        assert_eq!(s.read::<8>(s.layout.fill.entry_at(3)), 103u64.to_le_bytes());
        // The driver consumed 5.
        s.u32_at(s.layout.fill.consumer()).store(5, Ordering::Relaxed);
        assert_eq!(p.free(&s).unwrap(), 5);
        // A consumer index past the producer's is the driver's fault.
        s.u32_at(s.layout.fill.consumer()).store(9, Ordering::Relaxed);
        assert!(p.free(&s).unwrap_err().to_string().contains("fill ring's consumer index 9"));
    }

    #[test]
    fn indices_run_free_across_the_u32_wrap() {
        let s = space();
        let mut c = Consumer::new(s.layout.rx, "rx");
        c.cons = u32::MAX - 2;
        s.u32_at(s.layout.rx.producer()).store(2, Ordering::Relaxed);
        assert_eq!(c.ready(&s).unwrap(), 5);
        c.release(&s, 5);
        assert_eq!(c.index(), 2);
        assert_eq!(s.u32_at(s.layout.rx.consumer()).load(Ordering::Relaxed), 2);
        assert_eq!(c.ready(&s).unwrap(), 0);
        // More than the ring holds.
        assert!(c.ready_at(11).is_err());
        assert_eq!(c.ready_at(10).unwrap(), 8);
    }
}
