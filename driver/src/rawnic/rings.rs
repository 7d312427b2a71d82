//! A handle's UMEM and rings (`rawnic_proto::ring`): attach, detach, the
//! wait, the kick that sends what the tx ring holds (zero-copy), receive
//! into the UMEM, and the completions of its sends.
//!
//! `SharedRings` is shared by the handle (`ClientState::rings`, until a
//! detach or the handle's cleanup) and by each of its sends with NDIS (a
//! strong count per NBL). A detach stops everything at once (no frame is
//! placed, no descriptor taken) and completes the attach IRP, which
//! unlocks the pages, only when every frame taken from the tx ring is back
//! on the completion ring: no NBL into the UMEM is left with NDIS.
//!
//! Lock order: the handle's lock, then the rings' lock. Sends reach NDIS
//! with neither held (a send may complete inline, which takes the rings'
//! lock).

use super::Rawnic;
use super::client::{AtomicCounters, Client, Completions, Mode, RxTally};
use crate::kernel::alloc::{try_arc, try_vec, try_zeroed};
use crate::kernel::device::{Armed, Dispatched, Irp, IrpId, PendingIrp};
use crate::kernel::nbl::{
    FrameGeometry, MappedFrame, RecvFrame, ZcAnchor, ZcDoneFrames, ZcFrames, ZcPool, ZcReturns, ZcRing,
};
use crate::kernel::protocol::Binding;
use crate::kernel::sync::{AtDispatch, SpinLock, SpinLockGuard};
use crate::kernel::time;
use crate::kernel::umem::Umem;
use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use rawnic_logic::umem::{RingState, RxRun, TxSide};
use rawnic_logic::vlan::TagPlacement;
use rawnic_proto::ring::{MAX_UMEM_PER_BINDING, RingLayout, RingReply, RingSetup, RingWaitRequest, RxDesc, wait_flags};
use rawnic_proto::{EmptyRequest, NtStatus};

/// Most zero-copy NBLs one ring has (its sends in flight at once).
const MAX_ZC_NBLS: u32 = 1024;

/// Most RING_WAITs pending on one ring: each publish of received frames or
/// completions (in the receive path, at DISPATCH_LEVEL) looks at every
/// one, and a reader needs one or two.
pub(super) const MAX_RING_WAITS: usize = 64;
/// Most descriptors one kick takes (then the kick replies; the user kicks
/// again).
const KICK_BUDGET: u32 = 4096;

/// What the rings' lock protects.
pub struct RingsInner {
    /// The UMEM, until the attach IRP completes.
    umem: Option<Umem>,
    state: RingState,
    /// Its NBLs and the frames' MDLs, until just before the attach IRP
    /// completes (the MDLs are partial MDLs of that IRP's).
    pool: Option<ZcPool>,
    waits: VecDeque<(PendingIrp, u16)>,
    /// A detach began: the attach IRP completes with this once drained.
    detaching: Option<NtStatus>,
    /// The handle's binding was unbound: nothing will be produced any
    /// more, so a wait fails at once (DEVICE_REMOVED). The rings stay
    /// attached until a detach or the close, so the user can still take
    /// what they hold.
    unbound: bool,
    /// The handle's binding (its budget of locked memory and its
    /// counters), until it is unbound: a binding is kept by nothing after
    /// its unbind, whose completion waits for the binding to be dropped.
    binding: Option<Arc<Binding<Rawnic>>>,
}

/// What a finished detach gives back, outside the lock.
struct Finished {
    umem: Umem,
    pool: Option<ZcPool>,
    status: NtStatus,
    /// Whose budget the UMEM leaves (none once unbound).
    binding: Option<Arc<Binding<Rawnic>>>,
}

/// One handle's UMEM and rings.
pub struct SharedRings {
    /// The attach IRP's id, which its cancel routine names.
    pub attach_id: IrpId,
    client: Weak<Client>,
    bytes: usize,
    inner: SpinLock<RingsInner>,
    /// Keeps this alive while NDIS has its zero-copy sends.
    anchor: ZcAnchor<SharedRings>,
    /// Where a kick copies its frames for the binding's other handles
    /// (`LOOP_BYTES`): the UMEM is never borrowed, and its user may reuse a
    /// frame as soon as its completion is posted.
    loop_buf: SpinLock<Vec<u8>>,
}

/// The bytes a kick copies its frames into, a run at a time, for the
/// binding's other handles (a UMEM frame is at most 4 KiB).
const LOOP_BYTES: usize = 64 * 1024;
/// Frames per run handed to the other handles at once.
const LOOP_RUN: usize = 32;

impl ZcRing for SharedRings {
    fn anchor(&self) -> &ZcAnchor<Self> {
        &self.anchor
    }
}

impl SharedRings {
    pub fn lock(&self) -> SpinLockGuard<'_, RingsInner> {
        self.inner.lock()
    }

    /// The lock, from a caller already at DISPATCH_LEVEL.
    pub fn lock_dpr<'a>(&'a self, at: AtDispatch<'a>) -> SpinLockGuard<'a, RingsInner> {
        self.inner.lock_dpr(at)
    }

    /// Stops the rings: waits fail, and the attach IRP completes with
    /// `status` as soon as nothing of the UMEM is with NDIS (now, or at the
    /// last completion).
    pub fn detach(&self, status: NtStatus) {
        let mut done = Completions::new();
        let finished = {
            let mut g = self.inner.lock();
            if g.detaching.is_none() {
                g.detaching = Some(status);
            }
            for (irp, _) in g.waits.drain(..) {
                done.push((irp, NtStatus::CANCELLED, 0));
            }
            self.take_finished(&mut g)
        };
        done.complete();
        self.finish(finished);
    }

    /// The handle's binding was unbound: pending waits fail with
    /// DEVICE_REMOVED, into `done`, and so does every later wait. Gives
    /// back the rings' reference to the binding, for the caller to drop
    /// once it holds no lock.
    #[must_use]
    pub fn unbound(&self, done: &mut Completions) -> Option<Arc<Binding<Rawnic>>> {
        let mut g = self.inner.lock();
        g.unbound = true;
        for (irp, _) in g.waits.drain(..) {
            done.push((irp, NtStatus::DEVICE_REMOVED, 0));
        }
        g.binding.take()
    }

    /// Takes the pending wait with this id.
    pub fn take_wait(&self, id: IrpId) -> Option<PendingIrp> {
        let mut g = self.inner.lock();
        let i = g.waits.iter().position(|(p, _)| p.id() == id)?;
        g.waits.remove(i).map(|(p, _)| p)
    }

    /// The UMEM to give back, if the rings are detaching and drained.
    fn take_finished(&self, g: &mut RingsInner) -> Option<Finished> {
        let status = g.detaching?;
        if g.state.tx_outstanding() != 0 || g.pool.as_ref().is_some_and(|p| p.out() != 0) {
            return None;
        }
        g.umem.take().map(|umem| Finished { umem, pool: g.pool.take(), status, binding: g.binding.clone() })
    }

    /// Completes the attach IRP (no lock held): the frames' MDLs go first,
    /// then the pages unlock.
    fn finish(&self, finished: Option<Finished>) {
        if let Some(f) = finished {
            let mut done = Completions::new();
            self.finish_into(f, &mut done);
            done.complete();
        }
    }

    /// As `finish`, the attach IRP put in `done` to complete later (its
    /// UMEM's bytes are given back to the binding's budget now: the pages
    /// stay locked a moment longer).
    fn finish_into(&self, finished: Finished, done: &mut Completions) {
        let Finished { umem, pool, status, binding } = finished;
        drop(pool);
        done.push((umem.into_irp(), status, 0));
        if let Some(b) = binding {
            b.umem_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }

    /// Publishes what was produced and hands waits what is ready, into
    /// `done`. (Inlined, with the waits out of its line: a kick and its
    /// completion each publish once, and a wait pends only while its rings
    /// have nothing.)
    #[inline(always)]
    fn publish(g: &mut RingsInner, done: &mut Completions) {
        let Some(umem) = g.umem.as_ref() else { return };
        let (rx, comp) = g.state.publish(umem);
        if (rx || comp) && !g.waits.is_empty() {
            Self::wake(g, done);
        }
    }

    /// Hands the pending waits what is ready, into `done`.
    #[inline(never)]
    fn wake(g: &mut RingsInner, done: &mut Completions) {
        let Some(umem) = g.umem.as_ref() else { return };
        let ready = g.state.ready_flags(umem);
        let (rx_producer, completion_producer) = g.state.producers();
        let mut i = 0;
        while i < g.waits.len() {
            if g.waits[i].1 & ready == 0 {
                i += 1;
                continue;
            }
            let (mut irp, _) = g.waits.remove(i).expect("index in range");
            let r = RingReply { ready, rx_producer, completion_producer, sent: 0, invalid: 0 };
            let out = reply_into(&r, irp.output());
            done.push((irp, out.0, out.1));
        }
    }
}

fn reply_into(r: &RingReply, out: &mut [u8]) -> (NtStatus, usize) {
    match r.emit(out) {
        Ok(n) => (NtStatus::SUCCESS, n),
        Err(e) => (e.status(), 0),
    }
}

/// Where a chunk's received frames go: the UMEM and its rings' state, taken
/// from the rings once per chunk (the caller holds the handle's lock and
/// the rings' lock).
pub(super) struct RxPlacer<'a> {
    umem: &'a Umem,
    run: RxRun<'a, 'a, Umem>,
    /// The most of a frame that is kept: the frame size, or the handle's
    /// snap length if smaller.
    keep: u32,
}

impl<'a> RxPlacer<'a> {
    /// `None` while the rings detach (or are gone): nothing is placed.
    /// `snaplen`: the handle's (0 keeps all).
    #[inline(always)]
    pub(super) fn new(g: &'a mut RingsInner, snaplen: u32) -> Option<Self> {
        if g.detaching.is_some() {
            return None;
        }
        let umem = g.umem.as_ref()?;
        let run = g.state.rx_run(umem);
        let keep = if snaplen != 0 { snaplen.min(run.frame_size()) } else { run.frame_size() };
        Some(RxPlacer { umem, run, keep })
    }

    /// Places one received frame; `desc` says all but where and how much.
    /// Returns whether it was placed, and if so whether it was cut short
    /// (and so marked): by the snap length, the frame size, or a copy that
    /// gave less (memory that could not be mapped).
    /// `cut`: the most the handle's program keeps (`u32::MAX`: all).
    #[inline(always)]
    pub(super) fn place(&mut self, desc: RxDesc, frame: &RecvFrame<'_>, cut: u32) -> Option<bool> {
        let keep = desc.origlen.min(self.keep).min(cut);
        let umem = self.umem;
        self.run.frame(umem, desc, |off, cap| umem.write_frame(off, (keep as usize).min(cap), frame)).ok()
    }

    /// Places one received frame whose bytes are mapped in place
    /// (`RecvFrame::in_place`), as `place`.
    #[inline(always)]
    pub(super) fn place_in_place(&mut self, desc: RxDesc, bytes: &[u8]) -> Option<bool> {
        let kept = &bytes[..bytes.len().min(self.keep as usize)];
        let umem = self.umem;
        self.run.frame(umem, desc, |off, cap| umem.write_bytes(off, &kept[..kept.len().min(cap)])).ok()
    }

    /// Places a batch of frames mapped in place (`RecvFrame::in_place`)
    /// whose records have no flags, tag or coalescing counts, in order, as
    /// `place_in_place` would one after another, and counts them in
    /// `tally` (at most `BATCH` frames). Returns their bytes, placed or not.
    #[inline(never)]
    pub(super) fn place_batch(&mut self, frames: &[MappedFrame<'_>], tally: &mut RxTally) -> u64 {
        debug_assert!(frames.len() <= BATCH);
        // What `frames` keeps of each (the same figure: the copies are
        // checked against it once each, in one compare).
        let keep = self.keep.min(self.run.frame_size());
        let to = self.umem.writer().capped(keep as usize);
        let (mut drops, mut dropped_bytes, mut placed_bytes) = (0u64, 0u64, 0u64);
        let desc = |f: &MappedFrame<'_>| RxDesc {
            addr: 0,
            len: 0,
            origlen: f.len(),
            // Stamped as the driver takes it (see `receive`), as its
            // descriptor is written.
            timestamp_ns: time::unix_ns(),
            flags: 0,
            tci: 0,
            segs: 0,
            seg_size: 0,
        };
        let copy = |f: &MappedFrame<'_>, off: usize, len: u32| {
            placed_bytes += u64::from(f.len());
            to.write_bytes(off, f.first(len));
        };
        let dropped = |f: &MappedFrame<'_>, _| {
            drops += 1;
            dropped_bytes += u64::from(f.len());
        };
        let cut = self.run.frames::<_, BATCH>(self.umem, frames, keep, desc, copy, dropped);
        let placed = frames.len().min(BATCH) as u64 - drops;
        tally.frames(placed, placed_bytes, u64::from(cut), drops);
        placed_bytes + dropped_bytes
    }

    /// Places one frame given as bytes (a frame sent from this host), as
    /// `place`: `parts` one after another are the frame.
    pub(super) fn place_parts(&mut self, desc: RxDesc, parts: &[&[u8]], cut: u32) -> Option<bool> {
        let keep = desc.origlen.min(self.keep).min(cut);
        let umem = self.umem;
        self.run.frame(umem, desc, |off, cap| umem.write_parts(off, (keep as usize).min(cap), parts)).ok()
    }
}

/// Frames placed at once by `RxPlacer::place_batch`.
const BATCH: usize = crate::kernel::nbl::MAPPED_BATCH;

/// After a chunk: publishes the rx ring and wakes waits.
#[inline(never)]
pub(super) fn placed(g: &mut RingsInner, done: &mut Completions) {
    SharedRings::publish(g, done);
}

impl Rawnic {
    /// `IOCTL_RAWNIC_RING_ATTACH`.
    pub(super) fn ring_attach(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        let setup = match RingSetup::parse(irp.input()) {
            Ok(s) => s,
            Err(e) => return irp.complete(e.status(), 0),
        };
        let layout = RingLayout::new(&setup).expect("parse checked the layout");
        let (binding, _) = match file.binding() {
            Ok(b) => b,
            Err(s) => return irp.complete(s, 0),
        };
        if file.state.lock().rings.is_some() {
            return irp.complete(NtStatus::INVALID_DEVICE_STATE, 0);
        }
        // The binding's budget of locked memory.
        let budget = &binding.umem_bytes;
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_add(layout.total).filter(|&t| t <= MAX_UMEM_PER_BINDING)
            })
            .is_err()
        {
            return irp.complete(NtStatus::INSUFFICIENT_RESOURCES, 0);
        }
        let (dispatched, umem) = match Umem::attach::<Rawnic>(irp, layout.total) {
            Ok(x) => x,
            Err((irp, s)) => {
                budget.fetch_sub(layout.total, Ordering::Relaxed);
                return irp.complete(s, 0);
            }
        };
        // From here the IRP is pending: every failure completes it.
        let fail = |umem: Umem, s: NtStatus| {
            umem.finish(s);
            budget.fetch_sub(layout.total, Ordering::Relaxed);
        };
        let zc = setup.tx.min(setup.completion).min(MAX_ZC_NBLS) as usize;
        let geometry = FrameGeometry {
            offset: layout.frames,
            size: layout.frame_size as usize,
            count: layout.frame_count as usize,
        };
        let (pool, waits, loop_buf) = match (ZcPool::new(&umem, zc, geometry), try_vec(4), try_zeroed(LOOP_BYTES)) {
            (Ok(p), Ok(w), Ok(l)) => (Some(p), VecDeque::from(w), l),
            made => {
                // A pool made is freed before the IRP completes.
                drop(made);
                fail(umem, NtStatus::INSUFFICIENT_RESOURCES);
                return dispatched;
            }
        };
        let state = RingState::new(layout);
        let attach_id = umem.id();
        let inner = RingsInner {
            umem: None,
            state,
            pool,
            waits,
            detaching: None,
            unbound: false,
            binding: Some(binding.clone()),
        };
        let rings = match try_arc(SharedRings {
            attach_id,
            client: Arc::downgrade(file),
            bytes: layout.total,
            inner: SpinLock::new(inner),
            anchor: ZcAnchor::new(),
            loop_buf: SpinLock::new(loop_buf),
        }) {
            Ok(r) => r,
            Err(_) => {
                fail(umem, NtStatus::INSUFFICIENT_RESOURCES);
                return dispatched;
            }
        };
        // The frames' MDLs are partial MDLs of the attach IRP's: they go
        // before it completes.
        let give_up = |rings: Arc<SharedRings>, umem: Umem, s: NtStatus| {
            let pool = rings.lock().pool.take();
            drop(pool);
            fail(umem, s);
        };
        let mut st = file.state.lock();
        let refused = match st.mode {
            Mode::Open { .. } if st.rings.is_none() => None,
            // The unbind took the handle's binding meanwhile: refused as a
            // request that comes after it is (`Client::binding`).
            Mode::Orphaned => Some(NtStatus::DEVICE_REMOVED),
            // Another attach won, or the handle closed.
            _ => Some(NtStatus::INVALID_DEVICE_STATE),
        };
        if let Some(s) = refused {
            drop(st);
            give_up(rings, umem, s);
            return dispatched;
        }
        // Armed with the handle's lock held and put where `cancel` looks
        // before it is released.
        match umem.arm_cancel() {
            Ok(umem) => {
                {
                    let mut g = rings.lock();
                    // Only now does the user see the attach took: on any
                    // failure before, the magic was never written (a losing
                    // attach racing another on the handle must not look
                    // attached).
                    g.state.announce(&umem);
                    g.umem = Some(umem);
                }
                st.rings = Some(rings);
            }
            Err(umem) => {
                drop(st);
                give_up(rings, umem, NtStatus::CANCELLED);
            }
        }
        dispatched
    }

    /// `IOCTL_RAWNIC_RING_DETACH`.
    pub(super) fn ring_detach(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return irp.complete(e.status(), 0);
        }
        // An orphaned handle's rings stay until a detach or the close, so
        // this one still detaches them; with none, it hears why.
        let rings = {
            let mut st = file.state.lock();
            st.rings.take().ok_or_else(|| st.no_rings())
        };
        match rings {
            Ok(r) => {
                r.detach(NtStatus::SUCCESS);
                irp.complete(NtStatus::SUCCESS, 0)
            }
            Err(s) => irp.complete(s, 0),
        }
    }

    /// `IOCTL_RAWNIC_RING_WAIT`.
    pub(super) fn ring_wait(&self, file: &Arc<Client>, mut irp: Irp) -> Dispatched {
        let flags = match RingWaitRequest::parse(irp.input()) {
            Ok(f) => f,
            Err(e) => return irp.complete(e.status(), 0),
        };
        if irp.output_len() < RingReply::LEN {
            return irp.complete(NtStatus::BUFFER_TOO_SMALL, 0);
        }
        // The handle's lock goes with this block, before any completion.
        let rings = {
            let st = file.state.lock();
            st.rings.clone().ok_or_else(|| st.no_rings())
        };
        let rings = match rings {
            Ok(r) => r,
            Err(s) => return irp.complete(s, 0),
        };
        // No IRP completes under the rings' lock (a completion may run
        // other drivers' completion routines): each early return lets go
        // of it first.
        let mut g = rings.lock();
        let Some(umem) = g.umem.as_ref() else {
            drop(g);
            return irp.complete(NtStatus::INVALID_DEVICE_STATE, 0);
        };
        let ready = g.state.ready_flags(umem);
        if g.detaching.is_some() {
            drop(g);
            return irp.complete(NtStatus::CANCELLED, 0);
        }
        if ready & flags != 0 {
            let (rx_producer, completion_producer) = g.state.producers();
            drop(g);
            let r = RingReply { ready, rx_producer, completion_producer, sent: 0, invalid: 0 };
            let (s, n) = reply_into(&r, irp.output());
            return irp.complete(s, n);
        }
        if g.unbound {
            // Nothing will come: the binding is gone.
            drop(g);
            return irp.complete(NtStatus::DEVICE_REMOVED, 0);
        }
        if g.waits.len() >= MAX_RING_WAITS || g.waits.try_reserve(1).is_err() {
            drop(g);
            return irp.complete(NtStatus::INSUFFICIENT_RESOURCES, 0);
        }
        let (d, p) = irp.pend::<Rawnic>();
        let waits = match p.arm_cancel() {
            Armed::Queued(p) => {
                g.waits.push_back((p, flags));
                drop(g);
                true
            }
            Armed::Cancelled(p) => {
                drop(g);
                p.complete(NtStatus::CANCELLED, 0);
                false
            }
        };
        // A ring waiting for frames asks for a packet filter the adapter
        // owes, as a waiting read does (the work item may have given up on
        // a shortage that outlasted its retries). It pends for frames only
        // while the rx ring has none, so this is tried at most once per
        // batch of frames the ring gets.
        if waits && flags & wait_flags::RX != 0 {
            if let Ok((binding, _)) = file.binding() {
                self.set_owed(&binding);
            }
        }
        d
    }

    /// `IOCTL_RAWNIC_RING_KICK`: sends what the tx ring holds.
    pub(super) fn ring_kick(&self, file: &Arc<Client>, mut irp: Irp) -> Dispatched {
        if let Err(e) = EmptyRequest::parse(irp.input()) {
            return irp.complete(e.status(), 0);
        }
        if irp.output_len() < RingReply::LEN {
            return irp.complete(NtStatus::BUFFER_TOO_SMALL, 0);
        }
        let (binding, rings) = match file.binding_and_rings() {
            Ok((b, Some(r))) => (b, r),
            Ok((_, None)) => return irp.complete(NtStatus::INVALID_DEVICE_STATE, 0),
            Err(s) => return irp.complete(s, 0),
        };
        // Checked against the send shape of now; `send_zc` gives the chain
        // back unsent if a restart changed it before the send.
        // MTU + 14, tag or not: the NIC reads the frame in place, from
        // memory its user may change at any moment, so a tag checked here
        // (which would allow 4 bytes more) may be gone when it does. Larger
        // tagged frames go by SEND_BATCH, which copies them first.
        let Some(shape) = binding.send_shape_if_sending() else {
            return irp.complete(NtStatus::DEVICE_NOT_READY, 0);
        };
        let max_frame = shape.max_frame;
        // Waits the kick makes ready (rarely more than one).
        let mut done = Completions::new();
        let mut invalid = 0u32;
        // The IRP completes after the rings' lock is let go (the block's
        // end), whatever the outcome.
        let chain = 'locked: {
            let mut g = rings.lock();
            let g = &mut *g;
            let Some(umem) = g.umem.as_ref() else {
                break 'locked Err(NtStatus::INVALID_DEVICE_STATE);
            };
            if g.detaching.is_some() {
                break 'locked Err(NtStatus::INVALID_DEVICE_STATE);
            }
            let Some(pool) = g.pool.as_mut() else {
                break 'locked Err(NtStatus::INVALID_DEVICE_STATE);
            };
            let side = g.state.tx_side(umem);
            let want = g.state.tx_refresh(&side, (pool.room() as u32).min(KICK_BUDGET));
            // NBLs and NET_BUFFERs never made yet are made now (until the
            // ring's bound).
            let n = pool.ready(want as usize) as u32;
            if n == 0 && want != 0 {
                // None free, none could be made: the frames stay on the tx
                // ring, and the caller learns why nothing went.
                break 'locked Err(NtStatus::INSUFFICIENT_RESOURCES);
            }
            let mut run = g.state.tx_run();
            // The filler is finished where it is, and dropped there (no
            // copy of it made to be consumed).
            let chain = {
                let mut filler = pool.filler(&rings, run.ahead());
                // The filler checks where each frame lies (`fill`'s false:
                // not within one frame), the one check of it
                // (`TxRun::take`).
                invalid = run.take_with(&side, n, max_frame, &mut filler).1;
                drop(run);
                if invalid != 0 {
                    // The frames' entries written ahead are not one after
                    // another: their completions write them again.
                    filler.not_in_order();
                }
                filler.finish()
            };
            SharedRings::publish(g, &mut done);
            Ok(chain)
        };
        let chain = match chain {
            Ok(c) => c,
            Err(s) => {
                drop(done);
                return irp.complete(s, 0);
            }
        };
        let taken = chain.len() as u64;
        // The rings' handle is this one (`rings.client`; rings are only
        // ever its own), which the completions credit.
        file.counters.tx_in_flight.fetch_add(taken, Ordering::Relaxed);
        binding.counters.tx_in_flight.fetch_add(taken, Ordering::Relaxed);
        // The binding's other handles get the frames as they go (and this
        // one too, if it asked), read before NDIS can hand any back.
        // The reads and waits they satisfy complete after, with no lock
        // held (`sending` runs under the send gate).
        let sender = file.id;
        let mut looped = Completions::new();
        let sending = |frames: ZcFrames<'_>| loop_back(&binding, sender, &rings, frames, &mut looped);
        let (status, sent) = match binding.send_zc(chain, max_frame, sending) {
            Ok(n) => (NtStatus::SUCCESS, n as u32),
            Err(chain) => {
                // A pause began meanwhile (and maybe a restart changed the
                // MTU the frames were checked against): the frames complete
                // unsent.
                self.ring_send_complete_inner(&binding, chain.unsent(), true);
                (NtStatus::DEVICE_NOT_READY, 0)
            }
        };
        done.complete();
        looped.complete();
        if !status.is_success() {
            return irp.complete(status, 0);
        }
        let (rx_producer, completion_producer) = rings.lock().state.producers();
        let r = RingReply { ready: 0, rx_producer, completion_producer, sent, invalid };
        let (s, n) = reply_into(&r, irp.output());
        irp.complete(s, n)
    }

    /// Zero-copy sends back (from NDIS, or never sent when `unsent`): each
    /// frame goes on its ring's completion ring, each NBL back to its pool.
    pub(super) fn ring_send_complete_inner(&self, b: &Binding<Rawnic>, done: ZcReturns<SharedRings>, unsent: bool) {
        // Waits the completions make ready (rarely more than one), and the
        // attach IRPs of rings these returns drained: completed once no
        // lock is held, nor the send gate (NDIS may complete inside a
        // sender's call).
        let mut irps = Completions::new();
        // Consecutive frames of one ring are handled under one lock.
        done.for_each_run(|rings, run| {
            let mut tally = TxTally::default();
            // The handle, taken before the lock (and let go after it: its
            // last count may go with it), so that its frames are counted
            // before the user can find them on the completion ring.
            let client = rings.client.upgrade();
            let finished = {
                let mut g = rings.lock();
                let g = &mut *g;
                let umem = g.umem.as_ref();
                // The rings' entries, checked only when a completion is
                // written (not when the kick wrote it ahead).
                let mut side = None;
                let mut comp = g.state.comp_run();
                let mut pool = g.pool.as_mut().map(|p| p.returner());
                for d in run {
                    let sent = d.ok && !unsent;
                    let post = |frames: &mut ZcDoneFrames<'_>| {
                        if let Some(umem) = umem {
                            // Entries the kick wrote ahead are posted as
                            // they are, if still in place; else written.
                            let ahead = frames.ahead().is_some_and(|(at, k)| comp.complete_ahead(at, k, sent));
                            if !ahead {
                                let side = side.get_or_insert_with(|| TxSide::new(comp.layout(), umem));
                                comp.complete_each(side, frames, sent);
                            }
                        }
                    };
                    let (k, bytes) = match pool.as_mut() {
                        Some(p) => p.put(d, post),
                        None => d.leak(post),
                    };
                    tally.count(sent, k as u64, bytes);
                }
                drop((comp, pool));
                if let Some(b) = &g.binding {
                    tally.credit_to(&b.counters);
                }
                if let Some(c) = &client {
                    tally.credit_to(&c.counters);
                }
                SharedRings::publish(g, &mut irps);
                rings.take_finished(g)
            };
            drop(client);
            if let Some(f) = finished {
                rings.finish_into(f, &mut irps);
            }
        });
        irps.complete_outside_sends(b);
    }
}

/// Hands a kick's frames, about to go, to the binding's handles that take
/// local sends: copied out of the UMEM a run at a time (at
/// DISPATCH_LEVEL, before NDIS can hand any back to the user).
fn loop_back(b: &Binding<Rawnic>, sender: u32, rings: &SharedRings, frames: ZcFrames<'_>, done: &mut Completions) {
    if !super::local::anyone_listens(b) {
        return;
    }
    let mut buf = rings.loop_buf.lock();
    let mut spans = [(0usize, 0usize); LOOP_RUN];
    let (mut used, mut k) = (0, 0);
    let mut hand_over = |buf: &[u8], spans: &[(usize, usize)]| {
        let frames = spans.iter().map(|&(o, n)| (&buf[o..o + n], TagPlacement::None));
        super::local::deliver_into(b, sender, frames, done);
    };
    for f in frames {
        if k == LOOP_RUN || used + f.len() > buf.len() {
            hand_over(&buf, &spans[..k]);
            (used, k) = (0, 0);
        }
        let n = f.copy_to(&mut buf[used..]);
        spans[k] = (used, n);
        (used, k) = (used + n, k + 1);
    }
    if k != 0 {
        hand_over(&buf, &spans[..k]);
    }
}

/// Completed zero-copy sends of one ring, counted and credited under its
/// lock, before the completions are published.
#[derive(Default)]
struct TxTally {
    ok: u64,
    bytes: u64,
    bad: u64,
}

impl TxTally {
    /// Counts `k` frames of `bytes` bytes in all, sent or not.
    #[inline(always)]
    fn count(&mut self, sent: bool, k: u64, bytes: u64) {
        if sent {
            self.ok += k;
            self.bytes += bytes;
        } else {
            self.count_unsent(k);
        }
    }

    /// Counts `k` frames not sent (out of line: a branch on the status,
    /// not conditional moves for each count).
    #[cold]
    #[inline(never)]
    fn count_unsent(&mut self, k: u64) {
        self.bad += k;
    }

    /// Adds the tally to `k`.
    fn credit_to(&self, k: &AtomicCounters) {
        k.sends_done(self.ok, self.bytes, self.bad);
    }
}
