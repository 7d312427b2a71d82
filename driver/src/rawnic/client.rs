//! One open handle of the control device.

use crate::kernel::device::{Armed, IrpList, PendingIrp};
use crate::kernel::nbl::{ReceivedFrame, RetainedFrame};
use crate::kernel::oid::OidId;
use crate::kernel::protocol::Binding;
use crate::kernel::sync::SpinLock;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use rawnic_logic::events::EventQueue;
use rawnic_logic::filter::DestClass;
use rawnic_logic::filter::RxFilter;
use rawnic_logic::multicast::MulticastList;
use rawnic_logic::ring::{FrameSource, RxRing};
use rawnic_proto::{Counters, EventRecord, LocalSends, NtStatus, PacketFilter};

use super::Rawnic;

/// A handle's binding and its rings, if any (`Client::binding_and_rings`).
pub type BindingAndRings = (Arc<Binding<Rawnic>>, Option<Arc<super::rings::SharedRings>>);

impl FrameSource for RetainedFrame {
    fn frame_len(&self) -> usize {
        self.len()
    }

    fn copy_frame(&self, offset: usize, dst: &mut [u8]) -> usize {
        self.copy_to(offset, dst)
    }
}

/// Counters a handle keeps without a lock.
#[derive(Default)]
pub struct AtomicCounters {
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub rx_queue_drops: AtomicU64,
    pub rx_truncated: AtomicU64,
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub tx_errors: AtomicU64,
    pub tx_in_flight: AtomicU64,
}

impl AtomicCounters {
    /// The counters of now. Frames in flight are read first (acquiring
    /// what `sends_done` released), so a send completing meanwhile is
    /// counted in flight, as sent or failed, or both for a moment, but
    /// never in none: the three never add up to less than the frames
    /// handed over.
    pub fn snapshot(&self) -> Counters {
        let tx_in_flight = self.tx_in_flight.load(Ordering::Acquire);
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counters {
            rx_frames: g(&self.rx_frames),
            rx_bytes: g(&self.rx_bytes),
            rx_queue_drops: g(&self.rx_queue_drops),
            rx_truncated: g(&self.rx_truncated),
            tx_frames: g(&self.tx_frames),
            tx_bytes: g(&self.tx_bytes),
            tx_errors: g(&self.tx_errors),
            tx_in_flight,
        }
    }

    /// Sends back from NDIS (or never sent): `ok` frames of `bytes` sent,
    /// `bad` failed. They leave the frames in flight last (see
    /// `snapshot`).
    #[inline]
    pub fn sends_done(&self, ok: u64, bytes: u64, bad: u64) {
        if ok != 0 {
            Self::add(&self.tx_frames, ok);
            Self::add(&self.tx_bytes, bytes);
        }
        if bad != 0 {
            Self::add(&self.tx_errors, bad);
        }
        self.tx_in_flight.fetch_sub(ok + bad, Ordering::Release);
    }

    #[inline]
    pub fn add(a: &AtomicU64, v: u64) {
        a.fetch_add(v, Ordering::Relaxed);
    }
}

/// Where a handle stands.
pub enum Mode {
    /// Not bound to an adapter yet (it sees every binding's events).
    Unopened,
    /// An OPEN is being processed.
    Opening,
    /// Bound to one binding; `slot` is its place in the binding's table.
    Open { binding: Arc<Binding<Rawnic>>, slot: u64 },
    /// Its binding was unbound.
    Orphaned,
    /// Cleanup ran.
    Closed,
}

/// A user OID request in flight: its IRP travels with the NDIS request.
pub struct OidInFlight {
    pub irp: crate::kernel::device::IrpId,
    pub oid: Option<OidId>,
    pub cancel_requested: bool,
    /// A multicast list set: the length of the handle's own value. NDIS
    /// reads the union sent in its place, other handles' groups too, so
    /// the reply counts this instead.
    pub multicast_len: Option<u32>,
}

/// What the handle's lock protects.
pub struct ClientState {
    pub mode: Mode,
    pub filter: RxFilter,
    /// Which frames sent from this host the handle receives.
    pub local_sends: LocalSends,
    pub snaplen: u32,
    pub ring: RxRing<RetainedFrame>,
    /// The reader fell `RETAIN_PER_CLIENT` retained frames behind: frames
    /// are copied, not retained, until the queue is empty again.
    pub behind: bool,
    pub reads: VecDeque<PendingIrp>,
    pub events: EventQueue,
    pub event_waits: VecDeque<PendingIrp>,
    pub oids: Vec<OidInFlight>,
    /// The attached UMEM and its rings (until a detach or cleanup).
    pub rings: Option<Arc<super::rings::SharedRings>>,
    /// Its multicast addresses (SET_OID; `multicast.rs`).
    pub multicast: MulticastList,
    /// A set of its list is on its way (one at a time: a second fails
    /// STATUS_DEVICE_BUSY, so a failed set can give back the list before).
    pub multicast_pending: bool,
    /// It was told (`event::FILTER_FAILED`) that the adapter failed to take
    /// the packet filter; told once until a set succeeds.
    pub filter_failed_told: bool,
    /// Its capture program (SET_PROGRAM; `program.rs`), if it set one.
    pub program: Option<super::program::Installed>,
}

/// One handle.
pub struct Client {
    pub id: u32,
    pub state: SpinLock<ClientState>,
    pub counters: AtomicCounters,
}

/// IRPs to complete once the locks are released, in the order they were
/// given. Threaded through the IRPs themselves (`IrpList`), so adding one
/// never allocates: none is completed under a lock for want of memory.
#[derive(Default)]
pub struct Completions {
    list: IrpList,
}

impl Completions {
    pub const fn new() -> Self {
        Completions { list: IrpList::new() }
    }

    pub fn push(&mut self, item: (PendingIrp, NtStatus, usize)) {
        let (irp, status, info) = item;
        self.list.push(irp, status, info);
    }

    /// Completes them once no send holds `b`'s gate (for what a send
    /// completion made ready: NDIS may run it inside a sender's call).
    #[inline(always)]
    pub fn complete_outside_sends(self, b: &Binding<Rawnic>) {
        if !self.list.is_empty() {
            b.complete_outside_sends(self.list);
        }
    }

    /// Completes them all (call with no lock held). Inline, so that the
    /// usual case (nothing to complete) costs a test.
    #[inline(always)]
    pub fn complete(mut self) {
        if !self.list.is_empty() {
            self.list.complete_all();
        }
    }
}

impl Client {
    /// A new handle; `None` without the memory for its event queue (made
    /// whole now, so that no event is ever lost for want of memory).
    pub fn new(id: u32) -> Option<Self> {
        let events = EventQueue::try_with_capacity()?;
        Some(Client {
            id,
            state: SpinLock::new(ClientState {
                mode: Mode::Unopened,
                filter: RxFilter::new(PacketFilter::NONE, []),
                local_sends: LocalSends::Others,
                snaplen: 0,
                ring: RxRing::new(0, 0),
                behind: false,
                reads: VecDeque::new(),
                events,
                event_waits: VecDeque::new(),
                oids: Vec::new(),
                rings: None,
                multicast: MulticastList::EMPTY,
                multicast_pending: false,
                filter_failed_told: false,
                program: None,
            }),
            counters: AtomicCounters::default(),
        })
    }

    /// The binding this handle is open on.
    pub fn binding(&self) -> Result<(Arc<Binding<Rawnic>>, u64), NtStatus> {
        let st = self.state.lock();
        st.open_binding().map(|(b, slot)| (b.clone(), slot))
    }

    /// The binding this handle is open on, and its rings if it has any,
    /// under one hold of the handle's lock (a kick's).
    pub fn binding_and_rings(&self) -> Result<BindingAndRings, NtStatus> {
        let st = self.state.lock();
        st.open_binding().map(|(b, _)| (b.clone(), st.rings.clone()))
    }

    /// Whether this handle watches events of `binding_id`.
    pub fn watches(&self, st: &ClientState, binding_id: u32) -> bool {
        match &st.mode {
            Mode::Unopened | Mode::Opening => true,
            Mode::Open { binding, .. } => binding.id == binding_id,
            Mode::Orphaned | Mode::Closed => false,
        }
    }
}

impl ClientState {
    /// The binding the handle is open on, and its slot; or why it is not.
    fn open_binding(&self) -> Result<(&Arc<Binding<Rawnic>>, u64), NtStatus> {
        match &self.mode {
            Mode::Open { binding, slot } => Ok((binding, *slot)),
            Mode::Orphaned => Err(NtStatus::DEVICE_REMOVED),
            Mode::Closed => Err(NtStatus::INVALID_DEVICE_STATE),
            Mode::Unopened | Mode::Opening => Err(NtStatus::INVALID_DEVICE_STATE),
        }
    }

    /// Why a RING_WAIT or RING_DETACH finds no rings on the handle: its
    /// binding is gone (DEVICE_REMOVED, as every request of an orphaned
    /// handle hears, whether or not it ever attached rings), or it is in
    /// the wrong state (never opened, closed, or open without rings).
    pub fn no_rings(&self) -> NtStatus {
        self.open_binding().err().unwrap_or(NtStatus::INVALID_DEVICE_STATE)
    }

    /// Whether the handle's multicast list lets a frame of destination
    /// class `class` through: all do but a group frame of a handle whose
    /// filter has MULTICAST alone, whose destination (`dst`, read only
    /// then) must be on its list.
    #[inline(always)]
    pub fn takes_group(&self, class: DestClass, dst: impl FnOnce() -> [u8; 6]) -> bool {
        class != DestClass::Multicast || !self.filter.multicast_listed() || self.multicast.contains(&dst())
    }

    /// Hands queued frames to pending reads, into `done`.
    pub fn serve_reads(&mut self, done: &mut Completions) {
        while !self.ring.is_empty() {
            let Some(mut irp) = self.reads.pop_front() else { break };
            // Mapped now. A read that cannot be mapped fails, and the frames
            // go to the next read that can be (stopping at the first
            // failure would leave them queued beside waiting reads until
            // the next frame comes, perhaps never).
            let out = match irp.read_buffer() {
                Ok(b) => self.ring.read_into(b),
                Err(s) => {
                    done.push((irp, s, 0));
                    continue;
                }
            };
            done.push((irp, NtStatus::SUCCESS, out.bytes));
        }
    }

    /// Queues an event and hands it to a waiting request, into `done`.
    pub fn post_event(&mut self, kind: u16, binding_id: u32, speed: u64, mtu: u32, done: &mut Completions) {
        self.events.push(kind, binding_id, speed, mtu);
        self.serve_event_waits(done);
    }

    pub fn serve_event_waits(&mut self, done: &mut Completions) {
        while !self.events.is_empty() {
            let Some(mut irp) = self.event_waits.pop_front() else { break };
            let ev = self.events.pop().expect("not empty");
            let n = emit_event(&ev, irp.output());
            done.push((irp, n.0, n.1));
        }
    }

    /// Fails every pending read and event wait with `status` (events first
    /// go to the waits), into `done`.
    pub fn fail_pending(&mut self, status: NtStatus, done: &mut Completions) {
        self.serve_event_waits(done);
        for irp in self.reads.drain(..).chain(self.event_waits.drain(..)) {
            done.push((irp, status, 0));
        }
    }

    /// Takes the pending read or event wait with this id.
    pub fn take_pending(&mut self, id: crate::kernel::device::IrpId) -> Option<PendingIrp> {
        for q in [&mut self.reads, &mut self.event_waits] {
            if let Some(i) = q.iter().position(|p| p.id() == id) {
                return q.remove(i);
            }
        }
        None
    }
}

/// Writes an event reply; returns (status, bytes).
pub fn emit_event(ev: &EventRecord, out: &mut [u8]) -> (NtStatus, usize) {
    match ev.emit(out) {
        Ok(n) => (NtStatus::SUCCESS, n),
        Err(e) => (e.status(), 0),
    }
}

/// Queues `irp` (cancel-safe) in `queue` while the handle's lock is held;
/// an IRP cancelled before it could be queued is completed into `done`, and
/// one that finds no room (`max` already queued, or memory ran out) fails
/// with `STATUS_INSUFFICIENT_RESOURCES`.
pub fn enqueue(queue: &mut VecDeque<PendingIrp>, max: usize, irp: PendingIrp, done: &mut Completions) {
    if queue.len() >= max || queue.try_reserve(1).is_err() {
        done.push((irp, NtStatus::INSUFFICIENT_RESOURCES, 0));
        return;
    }
    match irp.arm_cancel() {
        Armed::Queued(p) => queue.push_back(p),
        Armed::Cancelled(p) => done.push((p, NtStatus::CANCELLED, 0)),
    }
}

/// What one walk of frames queued on one handle: counted locally while the
/// handle's lock is held, added to its counters and the binding's after.
#[derive(Default)]
pub struct RxTally {
    frames: u64,
    bytes: u64,
    drops: u64,
    cut: u64,
}

impl RxTally {
    /// One frame of `len` bytes, queued (`queued`) or dropped, cut short by
    /// the snap length or not.
    pub fn frame(&mut self, queued: bool, len: u32, truncated: bool) {
        if queued {
            self.frames += 1;
            self.bytes += len as u64;
            self.cut += truncated as u64;
        } else {
            self.drops += 1;
        }
    }

    /// `placed` frames of `bytes` bytes in all queued, `cut` of them cut
    /// short, and `drops` dropped: as many calls of `frame`.
    #[inline(always)]
    pub fn frames(&mut self, placed: u64, bytes: u64, cut: u64, drops: u64) {
        self.frames += placed;
        self.bytes += bytes;
        self.cut += cut;
        self.drops += drops;
    }

    /// Adds the tally to the handle's counters, and its drops and cuts to
    /// the binding's.
    pub fn credit(&self, handle: &AtomicCounters, binding: &AtomicCounters) {
        AtomicCounters::add(&handle.rx_frames, self.frames);
        AtomicCounters::add(&handle.rx_bytes, self.bytes);
        // Most tallies have no drops and no cuts: then no atomic operation
        // adds their zeros.
        if self.drops | self.cut != 0 {
            AtomicCounters::add(&handle.rx_queue_drops, self.drops);
            AtomicCounters::add(&handle.rx_truncated, self.cut);
            AtomicCounters::add(&binding.rx_queue_drops, self.drops);
            AtomicCounters::add(&binding.rx_truncated, self.cut);
        }
    }
}
