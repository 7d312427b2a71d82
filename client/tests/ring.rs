//! The rings through the client library, over ndisim's device bridge,
//! against the real rawnic.sys: receive through the rx ring, zero-copy
//! sends whose frames the completion ring returns, detach and cancel
//! giving every frame back, and what the driver refuses.
#![cfg(target_os = "linux")]

use ndisim::{AdapterId, InjectOpts, Sim, bridge};
use rawnic_client::ring::{RingConfig, Umem, UmemFrame};
use rawnic_client::{Device, MacAddr, NtStatus, OpenOptions, Request, ether};
use rawnic_proto::ring::{RingWaitRequest, wait_flags};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ETHERTYPE: u16 = 0x88b5;

struct Bed {
    sim: Option<Sim>,
    bridge: Option<bridge::Bridge>,
    sock: PathBuf,
}

impl Bed {
    fn new(adapter: &str) -> Bed {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let sim = rawnic_tests::drv::start(&[adapter]);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sock = std::env::temp_dir().join(format!("rawnic-ring-{}-{n}.sock", std::process::id()));
        let bridge = bridge::serve(&sim, &sock).expect("the bridge listens");
        Bed { sim: Some(sim), bridge: Some(bridge), sock }
    }

    fn sim(&self) -> &Sim {
        self.sim.as_ref().unwrap()
    }

    fn device(&self) -> Device {
        Device::open(&format!("unix:{}", self.sock.display())).unwrap()
    }

    /// A device with binding 0 open for our EtherType.
    fn opened(&self) -> Device {
        let dev = self.device();
        let name = dev.list().unwrap()[0].name.clone();
        dev.open_binding(&OpenOptions::new(name).ethertype(ETHERTYPE)).unwrap();
        dev
    }

    /// Stops the bridge and checks the verifier saw nothing wrong.
    fn finish(mut self) {
        drop(self.bridge.take());
        let r = self.sim.take().unwrap().unload();
        assert!(r.is_clean(), "{r}");
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        drop(self.bridge.take());
        let _ = std::fs::remove_file(&self.sock);
    }
}

fn frame(i: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len - 14];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    ether::build_frame(MacAddr::BROADCAST, MacAddr([2, 0, 0, 0, 0, 0x0e]), ETHERTYPE, &payload)
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "never happened: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn frames_are_received_through_the_rx_ring_and_filled_again() {
    let bed = Bed::new("null");
    let dev = bed.opened();
    let umem = Umem::attach(&dev, &RingConfig::new(32, 16)).unwrap();
    assert_eq!(umem.counters().rx_frames, 0);
    let (mut rx, _tx) = umem.split().unwrap();
    let mut free = umem.alloc_many(32);
    assert_eq!(rx.fill(&mut free).unwrap(), 16);
    // 40 frames in batches the fill ring can take: each batch is received,
    // checked and given back.
    let mut next = 0u32;
    let mut got = Vec::new();
    for round in 0..4 {
        let sent: Vec<Vec<u8>> = (0..10).map(|i| frame(next + i, 60 + (i as usize) * 100)).collect();
        let refs: Vec<&[u8]> = sent.iter().map(|f| &f[..]).collect();
        bed.sim().inject(AdapterId(0), &refs, &InjectOpts::default()).unwrap();
        let mut batch = Vec::new();
        while batch.len() < 10 {
            assert!(rx.wait(Some(Duration::from_secs(10))).unwrap(), "round {round}: frames arrive");
            rx.recv(&mut batch, 64).unwrap();
        }
        assert_eq!(batch.len(), 10, "no more than was sent");
        for (f, want) in batch.iter().zip(&sent) {
            assert_eq!(f.data(), &want[..], "the frame's bytes, in the UMEM");
            assert_eq!(f.desc().origlen as usize, want.len());
            assert!(f.desc().timestamp_ns > 0);
            assert_eq!(f.as_frame_ref().direction(), rawnic_client::Direction::Inbound);
        }
        got.extend(batch.iter().map(|f| f.data().to_vec()));
        let mut back: Vec<UmemFrame<'_>> = batch.into_iter().map(|f| f.into_frame()).collect();
        assert_eq!(rx.fill(&mut back).unwrap(), 10);
        next += 10;
    }
    assert_eq!(got.len(), 40);
    let c = umem.counters();
    assert_eq!((c.rx_frames, c.rx_fill_empty, c.rx_ring_full, c.fill_invalid, c.bad_index), (40, 0, 0, 0, 0));
    // Frames of another EtherType do not reach the ring.
    let other = ether::build_frame(MacAddr::BROADCAST, MacAddr([2, 0, 0, 0, 0, 1]), 0x88b6, &[0; 46]);
    bed.sim().inject(AdapterId(0), &[&other], &InjectOpts::default()).unwrap();
    assert!(!rx.wait(Some(Duration::from_millis(200))).unwrap());
    for f in free {
        umem.free(f);
    }
    let d = umem.detach().unwrap();
    assert_eq!(d.status, NtStatus::SUCCESS);
    assert_eq!((d.fill, d.rx, d.missing), (16, 0, 0), "{d:?}");
    drop(dev);
    bed.finish();
}

#[test]
fn a_full_fill_ring_drops_and_counts_and_the_rx_ring_keeps_what_it_took() {
    let bed = Bed::new("null");
    let dev = bed.opened();
    let umem = Umem::attach(&dev, &RingConfig::new(8, 8)).unwrap();
    let (mut rx, _tx) = umem.split().unwrap();
    let mut free = umem.alloc_many(4);
    rx.fill(&mut free).unwrap();
    let frames: Vec<Vec<u8>> = (0..6).map(|i| frame(i, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    bed.sim().inject(AdapterId(0), &refs, &InjectOpts::default()).unwrap();
    eventually("the driver counts the drops", || umem.counters().rx_fill_empty == 2);
    assert_eq!(umem.counters().rx_frames, 4);
    // Received and not taken: detach gives them back from the rx ring.
    let d = umem.detach().unwrap();
    assert_eq!((d.status, d.fill, d.rx, d.missing), (NtStatus::SUCCESS, 0, 4, 0), "{d:?}");
    drop(dev);
    bed.finish();
}

#[test]
fn sends_are_zero_copy_and_the_completion_ring_returns_every_frame() {
    let bed = Bed::new("null");
    bed.sim().set_capture(AdapterId(0), true);
    let dev = bed.opened();
    let umem = Umem::attach(&dev, &RingConfig::new(16, 8)).unwrap();
    let (_rx, mut tx) = umem.split().unwrap();
    let mut free = umem.alloc_many(16);
    // The adapter holds the sends: the frames stay the driver's (NDIS reads
    // them in the UMEM) until it completes them.
    let policy = bed.sim().completion_policy(AdapterId(0)).unwrap();
    bed.sim().hold_sends(AdapterId(0)).unwrap();
    let want: Vec<Vec<u8>> = (0..8).map(|i| frame(i, 64 + i as usize)).collect();
    let mut batch: Vec<UmemFrame<'_>> = free.drain(..8).collect();
    for (f, w) in batch.iter_mut().zip(&want) {
        f.write(w);
    }
    assert_eq!(tx.send(&mut batch).unwrap(), 8);
    let k = tx.kick().unwrap();
    assert_eq!((k.sent, k.invalid), (8, 0));
    eventually("NDIS holds the sends", || bed.sim().held_sends(AdapterId(0)) > 0);
    assert!(!tx.wait(Some(Duration::from_millis(100))).unwrap(), "no completion while NDIS holds them");
    assert_eq!((tx.in_flight(), umem.driver_frames()), (8, 8));
    bed.sim().set_completion(AdapterId(0), policy).unwrap();
    bed.sim().release_sends(AdapterId(0), None).unwrap();
    let mut back = Vec::new();
    while back.len() < 8 {
        assert!(tx.wait(Some(Duration::from_secs(10))).unwrap());
        tx.complete(&mut back, 64).unwrap();
    }
    assert_eq!((back.len(), tx.in_flight(), umem.driver_frames()), (8, 0, 0));
    let mut idx: Vec<u32> = back.iter().map(|f| f.index()).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..8).collect::<Vec<_>>(), "every frame came back, once");
    let wire: Vec<Vec<u8>> = bed.sim().captured(AdapterId(0)).into_iter().map(|f| f.wire()).collect();
    assert_eq!(wire, want);
    // Many more than the UMEM has frames: they cycle through the completion
    // ring.
    free.append(&mut back);
    let mut sent = 0;
    let mut done = 0;
    while done < 200 {
        let mut batch: Vec<UmemFrame<'_>> = free.drain(..free.len().min(200 - sent)).collect();
        for f in &mut batch {
            f.write(&frame(1000 + sent as u32, 60));
        }
        let posted = tx.send(&mut batch).unwrap();
        free.append(&mut batch);
        sent += posted;
        if posted > 0 {
            assert_eq!(tx.kick().unwrap().invalid, 0);
        }
        let before = free.len();
        tx.complete(&mut free, 64).unwrap();
        done += free.len() - before;
        if free.is_empty() {
            assert!(tx.wait(Some(Duration::from_secs(10))).unwrap());
        }
    }
    let c = umem.counters();
    assert_eq!((c.tx_frames, c.tx_invalid, c.tx_errors), (208, 0, 0));
    assert_eq!(bed.sim().captured(AdapterId(0)).len(), 208);
    for f in free {
        umem.free(f);
    }
    let d = umem.detach().unwrap();
    assert_eq!((d.status, d.tx, d.completion, d.missing), (NtStatus::SUCCESS, 0, 0, 0), "{d:?}");
    drop(dev);
    bed.finish();
}

#[test]
fn detach_waits_for_sends_ndis_holds_and_gives_every_frame_back() {
    let bed = Bed::new("null");
    let dev = bed.opened();
    let umem = Umem::attach(&dev, &RingConfig::new(16, 8)).unwrap();
    let (mut rx, mut tx) = umem.split().unwrap();
    let mut free = umem.alloc_many(16);
    let mut fill: Vec<_> = free.drain(..6).collect();
    rx.fill(&mut fill).unwrap();
    let mut out: Vec<_> = free.drain(..5).collect();
    for f in &mut out {
        f.write(&frame(7, 60));
    }
    bed.sim().hold_sends(AdapterId(0)).unwrap();
    tx.send(&mut out).unwrap();
    tx.kick().unwrap();
    eventually("NDIS holds the sends", || bed.sim().held_sends(AdapterId(0)) > 0);
    for f in free {
        umem.free(f);
    }
    let released = std::thread::scope(|s| {
        let detach = s.spawn(move || umem.detach());
        std::thread::sleep(Duration::from_millis(300));
        assert!(!detach.is_finished(), "the attach request waits for NDIS to give the sends back");
        bed.sim().release_sends(AdapterId(0), None).unwrap();
        detach.join().unwrap().unwrap()
    });
    assert_eq!(released.status, NtStatus::SUCCESS);
    assert_eq!((released.fill, released.completion, released.missing), (6, 5, 0), "{released:?}");
    drop(dev);
    bed.finish();
}

#[test]
fn cancelling_the_attach_ends_it_and_gives_every_frame_back() {
    let bed = Bed::new("null");
    let dev = bed.opened();
    let umem = Umem::attach(&dev, &RingConfig::new(16, 8)).unwrap();
    let (mut rx, _tx) = umem.split().unwrap();
    let mut free = umem.alloc_many(16);
    rx.fill(&mut free).unwrap();
    bed.sim().inject(AdapterId(0), &[&frame(1, 60)], &InjectOpts::default()).unwrap();
    assert!(rx.wait(Some(Duration::from_secs(10))).unwrap());
    for f in free {
        umem.free(f);
    }
    // As when the process's I/O is cancelled (CancelIoEx on Windows).
    dev.canceller().cancel_all().unwrap();
    let d = umem.detach().unwrap();
    assert_eq!(d.status, NtStatus::CANCELLED);
    assert_eq!((d.fill, d.rx, d.missing), (7, 1, 0), "{d:?}");
    // The handle can attach again.
    let again = Umem::attach(&dev, &RingConfig::new(8, 8)).unwrap();
    assert_eq!(again.detach().unwrap().status, NtStatus::SUCCESS);
    drop(dev);
    bed.finish();
}

#[test]
fn what_the_driver_refuses() {
    let bed = Bed::new("null");
    let status = |e: rawnic_client::Error| e.status();
    // No binding open.
    let dev = bed.device();
    assert_eq!(status(Umem::attach(&dev, &RingConfig::new(8, 8)).unwrap_err()), Some(NtStatus::INVALID_DEVICE_STATE));
    let name = dev.list().unwrap()[0].name.clone();
    dev.open_binding(&OpenOptions::new(name).ethertype(ETHERTYPE)).unwrap();
    // Ring requests without a UMEM.
    let wait = |flags: u16| {
        let mut b = [0u8; RingWaitRequest::LEN];
        RingWaitRequest::emit(flags, &mut b).unwrap();
        dev.call(Request::Ioctl(rawnic_proto::IOCTL_RAWNIC_RING_WAIT), &b, 24, Some(Duration::from_secs(5))).unwrap()
    };
    assert_eq!(wait(wait_flags::RX).status, NtStatus::INVALID_DEVICE_STATE);
    let umem = Umem::attach(&dev, &RingConfig::new(16, 8)).unwrap();
    // A second UMEM on the handle.
    assert_eq!(status(Umem::attach(&dev, &RingConfig::new(8, 8)).unwrap_err()), Some(NtStatus::INVALID_DEVICE_STATE));
    // Wait flags the wire does not define.
    assert_eq!(wait(0).status, NtStatus::INVALID_PARAMETER);
    assert_eq!(wait(4).status, NtStatus::INVALID_PARAMETER);
    // Tx descriptors the driver must refuse come back unsent, counted.
    let (_rx, mut tx) = umem.split().unwrap();
    let mut f: Vec<_> = umem.alloc_many(4);
    for x in &mut f {
        x.write(&frame(0, 60));
    }
    assert!(tx.send_raw(f.pop().unwrap(), 0, 13, 0).unwrap().is_none(), "shorter than a header");
    assert!(tx.send_raw(f.pop().unwrap(), 2000, 60, 0).unwrap().is_none(), "across the frame's end");
    assert!(tx.send_raw(f.pop().unwrap(), 0, 60, 1).unwrap().is_none(), "flags");
    assert!(tx.send_raw(f.pop().unwrap(), 0, 1600, 0).unwrap().is_none(), "longer than the MTU allows");
    let k = tx.kick().unwrap();
    assert_eq!((k.sent, k.invalid), (0, 4));
    let mut back = Vec::new();
    while back.len() < 4 {
        assert!(tx.wait(Some(Duration::from_secs(10))).unwrap());
        tx.complete(&mut back, 8).unwrap();
    }
    let c = umem.counters();
    assert_eq!((c.tx_invalid, c.tx_frames), (4, 0));
    assert_eq!(bed.sim().sent_frames(AdapterId(0)), 0);
    for x in back {
        umem.free(x);
    }
    assert_eq!(umem.detach().unwrap().missing, 0);
    drop(dev);
    bed.finish();
}
