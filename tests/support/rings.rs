//! The user's side of rawnic's rings in the tests: a UMEM attached on a
//! handle, its fill, rx, tx and completion rings, kicks and detaches.

use crate::drv::{empty, status};
use ndisim::{Handback, IoToken, RingWatch, UserRegion};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use std::sync::Arc;

/// A small UMEM: 64 frames of 2 KiB, rings of 32.
pub const SETUP: RingSetup = RingSetup { frame_size: 2048, frame_count: 64, fill: 32, rx: 32, tx: 32, completion: 32 };

/// The user's side of an attached UMEM. Every frame the driver hands back
/// is watched (rule umem-after-handback) until the user gives it again.
pub struct User {
    pub l: RingLayout,
    pub m: Arc<UserRegion>,
    pub attach: IoToken,
    pub watch: RingWatch,
}

impl User {
    pub fn attach(h: &ndisim::Handle, setup: RingSetup) -> User {
        let l = RingLayout::new(&setup).unwrap();
        let m = UserRegion::new(l.total).unwrap();
        let watch = RingWatch::for_handle(h, m.clone(), l);
        let mut input = [0u8; RingSetup::LEN];
        setup.emit(&mut input).unwrap();
        let attach = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone()).unwrap();
        assert!(attach.try_result().is_none(), "the attach stays pending while attached");
        assert_eq!(m.load_u32(control::MAGIC), RING_MAGIC);
        User { l, m, attach, watch }
    }

    pub fn frame(&self, i: u64) -> u64 {
        self.l.frames as u64 + i * self.l.frame_size as u64
    }

    pub fn fill(&self, frames: impl IntoIterator<Item = u64>) {
        let mut p = self.m.load_u32(self.l.fill.producer());
        for a in frames {
            self.watch.reclaim(a);
            self.m.store_u64(self.l.fill.entry_at(p), a);
            p = p.wrapping_add(1);
        }
        self.m.store_u32(self.l.fill.producer(), p);
    }

    /// Takes every rx descriptor published, with its frame's bytes.
    pub fn rx(&self) -> Vec<(RxDesc, Vec<u8>)> {
        let prod = self.m.load_u32(self.l.rx.producer());
        let mut c = self.m.load_u32(self.l.rx.consumer());
        let mut out = Vec::new();
        while c != prod {
            let mut raw = [0u8; RxDesc::LEN];
            self.m.read(self.l.rx.entry_at(c), &mut raw);
            let d = RxDesc::from_bytes(&raw);
            self.watch.handed_back(d.addr, Handback::Rx);
            out.push((d, self.m.to_vec(d.addr as usize, d.len as usize)));
            c = c.wrapping_add(1);
        }
        self.m.store_u32(self.l.rx.consumer(), c);
        out
    }

    pub fn tx(&self, descs: &[TxDesc]) {
        let mut p = self.m.load_u32(self.l.tx.producer());
        for d in descs {
            self.watch.reclaim(d.addr);
            self.m.write(self.l.tx.entry_at(p), &d.to_bytes());
            p = p.wrapping_add(1);
        }
        self.m.store_u32(self.l.tx.producer(), p);
    }

    pub fn completions(&self) -> Vec<u64> {
        let prod = self.m.load_u32(self.l.completion.producer());
        let mut c = self.m.load_u32(self.l.completion.consumer());
        let mut out = Vec::new();
        while c != prod {
            let a = self.m.load_u64(self.l.completion.entry_at(c));
            self.watch.handed_back(a, Handback::Completion);
            out.push(a);
            c = c.wrapping_add(1);
        }
        self.m.store_u32(self.l.completion.consumer(), c);
        out
    }

    pub fn counter(&self, off: usize) -> u64 {
        self.m.load_u64(off)
    }
}

/// A RING_WAIT's input: wait for `flags` (`wait_flags`).
pub fn wait_request(flags: u16) -> Vec<u8> {
    let mut b = vec![0u8; RingWaitRequest::LEN];
    RingWaitRequest::emit(flags, &mut b).unwrap();
    b
}

pub fn kick(h: &ndisim::Handle) -> (NtStatus, Option<RingReply>) {
    let r = h.ioctl(IOCTL_RAWNIC_RING_KICK, &empty(), RingReply::LEN);
    (status(r.status), RingReply::parse(&r.data).ok())
}

/// Detaches the UMEM; the attach completes.
pub fn detach(h: &ndisim::Handle, u: User) {
    let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    let done = u.attach.wait().unwrap();
    assert_eq!(status(done.status), NtStatus::SUCCESS, "the attach completes at detach");
}

/// A simulator with one adapter `adapter` (named `null0`), and its id.
pub fn sim_with(adapter: &str) -> (ndisim::Sim, ndisim::AdapterId) {
    let sim = crate::drv::start(&[adapter]);
    let a = sim.adapter_id("null0").unwrap();
    (sim, a)
}

impl User {
    /// Writes `n` copies of `f` into the first `n` frames and posts them
    /// on the tx ring.
    pub fn post_copies(&self, f: &[u8], n: u64) {
        for i in 0..n {
            self.m.write(self.frame(i) as usize, f);
        }
        self.tx(&(0..n).map(|i| TxDesc { addr: self.frame(i), len: f.len() as u32, flags: 0 }).collect::<Vec<_>>());
    }
}

/// A kick on one thread racing `then` on another, under the deterministic
/// scheduler: `then` comes after `steps` scheduling points of its own, so
/// over the seeds it falls before, inside and after the kick. Returns the
/// kick's status and reply.
pub fn kick_racing(
    sim: &ndisim::Sim,
    h: &ndisim::Handle,
    steps: u64,
    then: impl FnOnce() + Send,
) -> (NtStatus, Option<RingReply>) {
    let out = std::sync::Mutex::new(None);
    sim.run_actors(vec![
        Box::new(|| *out.lock().unwrap() = Some(kick(h))),
        Box::new(|| {
            for _ in 0..steps {
                sim.step();
            }
            then()
        }),
    ]);
    out.into_inner().unwrap().expect("the kick returned")
}
