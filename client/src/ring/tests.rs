//! The rings' user side against a driver played by the test: it writes the
//! UMEM as the driver would (and as a broken driver might), and checks
//! what the user side published.

use super::mem::SharedMem;
use super::rings::{RxRing, TxRing};
use super::space::Space;
use super::{RingConfig, UmemFrame};
use crate::Device;
use crate::fake::{FakeAdapter, FakeDriver};
use rawnic_proto::ring::{RingArea, RxDesc, TxDesc};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn space(frames: u32, ring: u32) -> Space {
    let l = RingConfig::new(frames, ring).layout().unwrap();
    Space::new(Arc::new(SharedMem::new(l.total).unwrap()), l)
}

fn device() -> (FakeDriver, Device) {
    let fake = FakeDriver::start(vec![FakeAdapter::new("eth", crate::MacAddr([2, 0, 0, 0, 0, 1]))]).unwrap();
    let dev = Device::open(&fake.device_path()).unwrap();
    (fake, dev)
}

/// The driver's side of one ring: its own index, published as it goes.
struct Driver<'s> {
    s: &'s Space,
    area: RingArea,
    at: u32,
}

impl<'s> Driver<'s> {
    fn new(s: &'s Space, area: RingArea) -> Self {
        Driver { s, area, at: 0 }
    }

    /// Consumes every entry the user published; their first 8 bytes
    /// (`addr`), or the whole entry.
    fn consume<const N: usize>(&mut self) -> Vec<[u8; N]> {
        let prod = self.s.u32_at(self.area.producer()).load(Ordering::Acquire);
        let mut out = Vec::new();
        while self.at != prod {
            out.push(self.s.read::<N>(self.area.entry_at(self.at)));
            self.at = self.at.wrapping_add(1);
        }
        self.s.u32_at(self.area.consumer()).store(self.at, Ordering::Release);
        out
    }

    /// Produces `entries`.
    fn produce<const N: usize>(&mut self, entries: &[[u8; N]]) {
        for e in entries {
            self.s.write(self.area.entry_at(self.at), *e);
            self.at = self.at.wrapping_add(1);
        }
        self.s.u32_at(self.area.producer()).store(self.at, Ordering::Release);
    }
}

fn rx_desc(addr: u64, len: u32) -> [u8; RxDesc::LEN] {
    RxDesc { addr, len, origlen: len + 4, timestamp_ns: 7, ..RxDesc::default() }.to_bytes()
}

#[test]
fn received_frames_come_back_as_tokens_with_their_records() {
    let (_fake, dev) = device();
    let s = space(16, 8);
    let mut rx = RxRing::new(&s, &dev);
    let mut frames: Vec<UmemFrame<'_>> = std::iter::from_fn(|| s.alloc()).collect();
    assert_eq!(frames.len(), 16);
    // The fill ring takes 8; the rest stay the user's.
    assert_eq!(rx.fill(&mut frames).unwrap(), 8);
    assert_eq!((frames.len(), s.drivers_count(), rx.fill_free().unwrap()), (8, 8, 0));
    let mut fill = Driver::new(&s, s.layout.fill);
    let posted: Vec<u64> = fill.consume::<8>().into_iter().map(u64::from_le_bytes).collect();
    assert_eq!(posted.len(), 8);
    assert!(posted.iter().all(|&a| s.layout.is_frame_start(a)), "{posted:?}");
    assert_eq!(rx.fill_free().unwrap(), 8);
    // The driver receives into two of them; one at an offset in its frame.
    for (i, &a) in posted[..2].iter().enumerate() {
        let base = s.frame_of(a).unwrap().0;
        let mut f = s.take_back(base).unwrap();
        f.buf_mut()[i * 64..i * 64 + 3].copy_from_slice(&[i as u8; 3]);
        let _ = s.give(f);
    }
    let mut rxd = Driver::new(&s, s.layout.rx);
    rxd.produce(&[rx_desc(posted[0], 3), rx_desc(posted[1] + 64, 3)]);
    assert_eq!(rx.ready().unwrap(), 2);
    let mut got = Vec::new();
    assert_eq!(rx.recv(&mut got, 1).unwrap(), 1, "at most max");
    assert_eq!(rx.recv(&mut got, 10).unwrap(), 1);
    assert_eq!(got[0].data(), &[0, 0, 0]);
    assert_eq!(got[1].data(), &[1, 1, 1]);
    let r = got[1].as_frame_ref();
    assert_eq!((r.origlen(), r.timestamp_ns(), r.data.len()), (7, 7, 3));
    assert_eq!(s.u32_at(s.layout.rx.consumer()).load(Ordering::Relaxed), 2, "published");
    assert_eq!(s.drivers_count(), 6);
    // Received frames go back to the fill ring.
    let mut again: Vec<_> = got.into_iter().map(|f| f.into_frame()).collect();
    assert_eq!(rx.fill(&mut again).unwrap(), 2);
    assert_eq!(s.drivers_count(), 8);
    for f in frames {
        s.free(f);
    }
}

#[test]
fn a_driver_that_breaks_the_rx_rules_is_an_error_not_a_second_handle() {
    let (_fake, dev) = device();
    let s = space(16, 8);
    let mut rx = RxRing::new(&s, &dev);
    let mut frames: Vec<_> = std::iter::from_fn(|| s.alloc()).take(2).collect();
    rx.fill(&mut frames).unwrap();
    let f0 = s.frame_offset(0);
    let mut rxd = Driver::new(&s, s.layout.rx);
    let mut got = Vec::new();
    // A frame the driver does not have (frame 5 is in the pool).
    rxd.produce(&[rx_desc(s.frame_offset(5), 60)]);
    let e = rx.recv(&mut got, 8).unwrap_err();
    assert!(e.to_string().contains("returned frame 5, which it did not have"), "{e}");
    // Past the end of its frame.
    rxd.produce(&[rx_desc(f0 + 2000, 60)]);
    assert!(rx.recv(&mut got, 8).unwrap_err().to_string().contains("runs past the end of frame 0"));
    // Outside the frames.
    rxd.produce(&[rx_desc(0, 60)]);
    assert!(rx.recv(&mut got, 8).unwrap_err().to_string().contains("outside the frames"));
    // A good one, then the same frame again.
    rxd.produce(&[rx_desc(f0, 60), rx_desc(f0, 60)]);
    let e = rx.recv(&mut got, 8).unwrap_err();
    assert_eq!(got.len(), 1, "the frame before the bad descriptor is delivered");
    assert!(e.to_string().contains("returned frame 0, which it did not have"), "{e}");
    // An index beyond the ring.
    s.u32_at(s.layout.rx.producer()).store(1000, Ordering::Release);
    assert!(rx.ready().unwrap_err().to_string().contains("rx ring's producer index 1000"));
    for f in got {
        s.free(f.into_frame());
    }
}

#[test]
fn sent_frames_are_the_drivers_until_their_completion() {
    let (_fake, dev) = device();
    let s = space(16, 8);
    let mut tx = TxRing::new(&s, &dev);
    let mut frames: Vec<_> = std::iter::from_fn(|| s.alloc()).take(10).collect();
    for (i, f) in frames.iter_mut().enumerate() {
        f.write(&vec![i as u8; 60 + i]);
    }
    // Too short: refused before anything is posted.
    let mut short = vec![s.alloc().unwrap()];
    short[0].write(&[0; 13]);
    assert!(tx.send(&mut short).unwrap_err().to_string().contains("is 13 bytes long"));
    assert_eq!(short.len(), 1);
    s.free(short.pop().unwrap());
    assert_eq!(tx.send(&mut frames).unwrap(), 8, "the ring holds 8");
    assert_eq!((frames.len(), tx.in_flight(), s.drivers_count()), (2, 8, 8));
    let mut txd = Driver::new(&s, s.layout.tx);
    let descs: Vec<TxDesc> = txd.consume::<16>().iter().map(TxDesc::from_bytes).collect();
    assert_eq!(descs.len(), 8);
    for (i, d) in descs.iter().enumerate() {
        assert_eq!((d.addr, d.len, d.flags), (s.frame_offset(i as u32), 60 + i as u32, 0));
        assert_eq!(s.layout.check_tx(d, 1514), Ok(()));
    }
    // The completion ring returns them in the order NDIS completed them.
    let mut comp = Driver::new(&s, s.layout.completion);
    comp.produce(&[descs[3].addr.to_le_bytes(), descs[0].addr.to_le_bytes()]);
    let mut back = Vec::new();
    assert_eq!(tx.complete(&mut back, 8).unwrap(), 2);
    assert_eq!(back.iter().map(|f| f.index()).collect::<Vec<_>>(), vec![3, 0]);
    assert_eq!(tx.in_flight(), 6);
    // A completion of a frame the user has back is an error.
    comp.produce(&[descs[3].addr.to_le_bytes()]);
    assert!(tx.complete(&mut back, 8).unwrap_err().to_string().contains("frame 3, which it did not have"));
    // send_raw posts what it is given (the driver checks it).
    let f = back.pop().unwrap();
    assert!(tx.send_raw(f, 2048, 60, 0).is_err(), "an offset outside the frame");
    for f in back.into_iter().chain(frames) {
        s.free(f);
    }
}

#[test]
fn reclaim_takes_back_what_the_rings_hold_and_counts_what_is_lost() {
    let (_fake, dev) = device();
    let s = space(32, 8);
    let (mut rx, mut tx) = (RxRing::new(&s, &dev), TxRing::new(&s, &dev));
    let mut f: Vec<_> = std::iter::from_fn(|| s.alloc()).take(20).collect();
    rx.fill(&mut f).unwrap();
    for x in f.iter_mut() {
        x.write(&[0; 60]);
    }
    tx.send(&mut f).unwrap();
    assert_eq!(f.len(), 4);
    // The driver takes 3 fill entries (receives into 2, publishes them;
    // keeps 1) and 5 tx entries (completes 2, keeps 3).
    let mut fill = Driver::new(&s, s.layout.fill);
    let mut taken = fill.consume::<8>();
    taken.truncate(3);
    // Not all: put the consumer back at 3.
    s.u32_at(s.layout.fill.consumer()).store(3, Ordering::Release);
    Driver::new(&s, s.layout.rx)
        .produce(&[rx_desc(u64::from_le_bytes(taken[0]), 60), rx_desc(u64::from_le_bytes(taken[1]), 60)]);
    s.u32_at(s.layout.tx.consumer()).store(5, Ordering::Release);
    Driver::new(&s, s.layout.completion).produce(&[s.frame_offset(8).to_le_bytes(), s.frame_offset(9).to_le_bytes()]);
    let [fill_n, rx_n, tx_n, comp_n, missing] = s.reclaim();
    assert_eq!((fill_n, rx_n, tx_n, comp_n, missing), (5, 2, 3, 2, 1 + 3));
    assert_eq!(s.drivers_count(), 0);
    assert_eq!(s.pooled(), 32 - 4);
    for x in f {
        s.free(x);
    }
}

#[test]
fn ring_shapes_are_checked_with_sentences() {
    let e = |c: RingConfig| c.layout().unwrap_err().to_string();
    assert_eq!(
        e(RingConfig { frame_size: 1500, ..RingConfig::default() }),
        "a frame of 1500 bytes is not one the driver takes (2048 or 4096)"
    );
    assert_eq!(
        e(RingConfig { rx: 48, ..RingConfig::default() }),
        "the rx ring has 48 entries; a ring has a power of two from 8 to 32768"
    );
    assert_eq!(e(RingConfig { frame_count: 0, ..RingConfig::default() }), "a UMEM needs at least one frame");
    assert!(e(RingConfig { frame_count: 40_000, ..RingConfig::default() }).contains("more than the 64 MiB"));
    let l = RingConfig::default().layout().unwrap();
    assert_eq!(l.total, l.frames + 1024 * 2048);
}
