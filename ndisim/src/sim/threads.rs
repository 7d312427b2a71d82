//! The simulation's threads of its own: each adapter's receive thread
//! (frames from the wire and NDIS's loopback), a TAP adapter's reader, and
//! stopping them all.

use crate::adapter::Frame;
use crate::kernel::Kernel;
use crate::ndis::{self, InjectOpts};
use crate::verifier::lock;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) fn rx_thread(k: &Arc<Kernel>, idx: usize) {
    let a = k.ndis.adapter(idx).clone();
    loop {
        if k.sched_here().is_some() {
            // Deterministic: wait (letting others run) for a frame or the
            // stop, then take it as below.
            k.wait_forever(
                "frames to indicate",
                || a.rx.stop.load(Ordering::Acquire) || !lock(&a.rx.q).is_empty(),
                || {},
            );
        }
        let f = {
            let mut q = lock(&a.rx.q);
            loop {
                if let Some(f) = q.pop_front() {
                    *lock(&a.rx.busy) += 1;
                    break Some(f);
                }
                if a.rx.stop.load(Ordering::Acquire) {
                    break None;
                }
                q = a.rx.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some((f, loopback)) = f else { return };
        // What came off the wire (or back from the adapter's own send), as
        // this adapter indicates it.
        let f = f.received(a.vlan());
        let o = InjectOpts { tci: f.tci, loopback, ..InjectOpts::default() };
        let _ = ndis::indicate(k, &a, &[&f.data], &o);
        let mut b = lock(&a.rx.busy);
        *b -= 1;
        a.rx.idle.notify_all();
    }
}

pub(super) fn tap_thread(k: &Arc<Kernel>, idx: usize) {
    let a = k.ndis.adapter(idx).clone();
    let Some(t) = &a.tap else { return };
    let mut buf = vec![0u8; 65536];
    while !a.rx.stop.load(Ordering::Acquire) {
        if let Some(n) = t.read(&mut buf, 50) {
            a.rx.push(Frame { data: buf[..n].to_vec(), tci: None });
        }
    }
}

pub(super) fn stop_threads(k: &Arc<Kernel>) {
    if let Some(p) = &k.preempt {
        p.stop();
    }
    k.dpc.stop();
    k.io.workers.stop();
    for a in k.ndis.adapters() {
        a.rx.stop.store(true, Ordering::Release);
        a.rx.cv.notify_all();
    }
    let hs: Vec<_> = lock(&k.threads).drain(..).collect();
    if let Some(s) = k.sched_here() {
        // Let them run to their end before joining them.
        let tids: Vec<u32> = hs.iter().map(|(_, t)| *t).collect();
        k.wait_forever("the simulation's threads to stop", || tids.iter().all(|&t| s.is_finished(t)), || {});
    }
    for (h, _) in hs {
        let _ = h.join();
    }
}
