//! The demo's rings step: `b` receives through its rx ring what `a` sends
//! zero-copy from its UMEM (`rawnic_proto::ring`), each frame checked byte
//! for byte, every sent frame back on `a`'s completion ring, both UMEMs
//! detached. `RingWatch` plays the user's side of frame ownership.

use crate::io::UserRegion;
use crate::ringwatch::{Handback, RingWatch};
use crate::sim::{Handle, IoToken};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SETUP: RingSetup = RingSetup { frame_size: 2048, frame_count: 512, fill: 256, rx: 256, tx: 256, completion: 256 };

/// One handle's UMEM, as its user sees it.
struct Umem {
    l: RingLayout,
    m: Arc<UserRegion>,
    watch: RingWatch,
    attach: IoToken,
}

impl Umem {
    fn attach(h: &Handle) -> Result<Umem, String> {
        let l = RingLayout::new(&SETUP).map_err(|e| format!("{e:?}"))?;
        let m = UserRegion::new(l.total).map_err(|e| e.to_string())?;
        let mut input = [0u8; RingSetup::LEN];
        SETUP.emit(&mut input).map_err(|e| format!("{e:?}"))?;
        let attach = h
            .ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone())
            .map_err(|s| format!("RING_ATTACH: {:?}", NtStatus(s)))?;
        if let Some(r) = attach.try_result() {
            return Err(format!("RING_ATTACH completed at once: {:?}", NtStatus(r.status)));
        }
        let watch = RingWatch::for_handle(h, m.clone(), l);
        Ok(Umem { l, m, watch, attach })
    }

    fn frame(&self, i: usize) -> u64 {
        (self.l.frames + i * self.l.frame_size as usize) as u64
    }

    fn push(&self, ring: &RingArea, entries: impl IntoIterator<Item = [u8; 16]>, len: usize) {
        let mut p = self.m.load_u32(ring.producer());
        for e in entries {
            self.m.write(ring.entry_at(p), &e[..len]);
            p = p.wrapping_add(1);
        }
        self.m.store_u32(ring.producer(), p);
    }

    fn fill(&self, frames: impl IntoIterator<Item = u64>) {
        let entries: Vec<[u8; 16]> = frames
            .into_iter()
            .map(|a| {
                let _ = self.watch.reclaim(a);
                let mut e = [0u8; 16];
                e[..8].copy_from_slice(&a.to_le_bytes());
                e
            })
            .collect();
        self.push(&self.l.fill, entries, 8);
    }

    /// Consumes the entries of a ring the driver produces.
    fn take<T>(&self, ring: &RingArea, mut read: impl FnMut(usize) -> T) -> Vec<T> {
        let prod = self.m.load_u32(ring.producer());
        let mut c = self.m.load_u32(ring.consumer());
        let mut out = Vec::new();
        while c != prod {
            out.push(read(ring.entry_at(c)));
            c = c.wrapping_add(1);
        }
        self.m.store_u32(ring.consumer(), c);
        out
    }

    fn detach(self, h: &Handle) -> Result<(), String> {
        let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &super::empty(), 0);
        if r.status != 0 {
            return Err(format!("RING_DETACH: {:?}", NtStatus(r.status)));
        }
        let done = self.attach.wait().ok_or("the attach never completed")?;
        if done.status != 0 {
            return Err(format!("the attach completed with {:?}", NtStatus(done.status)));
        }
        match self.watch.check_all().first() {
            Some(v) => Err(v.to_string()),
            None => Ok(()),
        }
    }
}

/// `tx` sends `frames` zero-copy from its UMEM; `rx` receives them in its.
pub(super) fn run(tx: &Handle, rx: &Handle, frames: &[Vec<u8>]) -> Result<String, String> {
    let (utx, urx) = (Umem::attach(tx)?, Umem::attach(rx)?);
    urx.fill((0..SETUP.fill as usize).map(|i| urx.frame(i)));
    let descs: Vec<[u8; 16]> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let addr = utx.frame(i);
            utx.m.write(addr as usize, f);
            TxDesc { addr, len: f.len() as u32, flags: 0 }.to_bytes()
        })
        .collect();
    utx.push(&utx.l.tx, descs, TxDesc::LEN);
    let r = tx.ioctl(IOCTL_RAWNIC_RING_KICK, &super::empty(), RingReply::LEN);
    let kick = RingReply::parse(&r.data).map_err(|_| format!("RING_KICK: {:?}", NtStatus(r.status)))?;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < frames.len() && Instant::now() < deadline {
        let mut wait = [0u8; RingWaitRequest::LEN];
        RingWaitRequest::emit(wait_flags::RX, &mut wait).map_err(|e| format!("{e:?}"))?;
        let t = rx.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait, RingReply::LEN).map_err(|s| format!("{s:#x}"))?;
        if t.wait_for(Duration::from_secs(2)).is_none() {
            t.cancel();
            let _ = t.wait();
        }
        let descs = urx.take(&urx.l.rx, |off| {
            let mut raw = [0u8; RxDesc::LEN];
            urx.m.read(off, &mut raw);
            RxDesc::from_bytes(&raw)
        });
        for d in &descs {
            got.push(urx.m.to_vec(d.addr as usize, d.len as usize));
            urx.watch.handed_back(d.addr, Handback::Rx);
        }
        urx.fill(descs.iter().map(|d| d.addr));
    }
    let completed = utx.take(&utx.l.completion, |off| utx.m.load_u64(off));
    for a in &completed {
        utx.watch.handed_back(*a, Handback::Completion);
    }
    if got != frames {
        return Err(format!("{} of {} frames received, or they differ", got.len(), frames.len()));
    }
    if completed.len() != frames.len() {
        return Err(format!("{} of {} sends completed", completed.len(), frames.len()));
    }
    let copies = rx.ioctl(IOCTL_RAWNIC_GET_STATS, &super::empty(), StatsReply::LEN);
    let queued = StatsReply::parse(&copies.data).map(|s| s.queued_frames).unwrap_or(u32::MAX);
    utx.detach(tx)?;
    urx.detach(rx)?;
    Ok(format!(
        "{} frames sent zero-copy in one kick ({} refused), received in b's UMEM byte for byte ({} in its read queue), \
         every frame back on the completion ring; both UMEMs detached",
        kick.sent, kick.invalid, queued
    ))
}
