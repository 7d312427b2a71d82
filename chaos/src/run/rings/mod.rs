//! Ring users: handles with a UMEM attached (`rawnic_proto::ring`), the
//! user's own model of what it gave the driver, and the oracles that judge
//! what comes back.
//!
//! The model, per attach: which frames the user holds (with the hash of
//! their bytes when they came back), which are on the fill ring and which
//! on the tx ring; the fill and tx entries in the order given; the indices
//! the user owns. It is judged on every poll and when the attach completes:
//! - an rx descriptor names a frame given on the fill ring and not back
//!   yet, `len` at most the frame and the wire length, and its bytes are
//!   the schedule frame that was sent or injected (`frames::check`);
//! - every tx descriptor the driver took comes back on the completion ring
//!   exactly once, with its own offset (refused ones too), and none that
//!   was never given;
//! - a frame handed back (rx or completion) is hashed, and hashed again
//!   before the user gives it again (and at the attach's end): the driver
//!   wrote a frame after handing it back if they differ;
//! - the control block's counters never decrease, and at the end they
//!   match what came back (unless the user wrote garbage over them):
//!   TX_INVALID counts every garbage tx descriptor that came back, and a
//!   good one only if a binding's MTU could be low enough to refuse it;
//! - the attach completes with STATUS_SUCCESS only after a detach,
//!   STATUS_CANCELLED only after its cancel or the handle's close, and
//!   only once every frame taken from the tx ring is on the completion
//!   ring; a spoiled attach is refused at once; a wait completes with
//!   SUCCESS only when something it waits for is ready, CANCELLED only
//!   when cancelled, detached or closed.
//!
//! A hostile user's garbage (`Scribble`) must give refusals and counters
//! only. Garbage the driver may believe (an index within the ring size, a
//! live descriptor) voids the model: the attach is *tainted*, and from then
//! on only the driver's safety is judged (the verifier, and that the attach
//! and waits still complete); a tainted user sends only descriptors the
//! driver must refuse, so NDIS never reads a frame the driver may write.
//!
//! The model is behind a mutex (threads share handles), never held while
//! calling into the simulation.

use super::{Ctx, lock};
use crate::frames;
use crate::schedule::*;
use ndisim::{Handle, IoResult, IoToken, UserRegion};
use rawnic_proto::ring::*;
use rawnic_proto::{
    EmptyRequest, IOCTL_RAWNIC_RING_ATTACH, IOCTL_RAWNIC_RING_DETACH, IOCTL_RAWNIC_RING_KICK, IOCTL_RAWNIC_RING_WAIT,
    NtStatus,
};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

mod ops;
pub(super) use ops::{check_wait, damaged_attach, damaged_detach, damaged_kick, damaged_wait_refused, ring_action};

/// The control block's counters.
const COUNTERS: [(usize, &str); 8] = [
    (control::RX_FRAMES, "RX_FRAMES"),
    (control::RX_FILL_EMPTY, "RX_FILL_EMPTY"),
    (control::RX_RING_FULL, "RX_RING_FULL"),
    (control::FILL_INVALID, "FILL_INVALID"),
    (control::TX_FRAMES, "TX_FRAMES"),
    (control::TX_INVALID, "TX_INVALID"),
    (control::TX_ERRORS, "TX_ERRORS"),
    (control::BAD_INDEX, "BAD_INDEX"),
];

/// A handle's ring users, by handle (the weak reference keeps the address
/// from being reused while the entry exists).
pub(super) type RingUsers = Mutex<Vec<(Weak<Handle>, Arc<Mutex<RingUser>>)>>;

/// Where a frame is, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The user holds it; its bytes hashed to `hash` when it came back by
    /// `how`.
    Mine {
        hash: u64,
        how: &'static str,
    },
    Fill,
    Tx,
}

/// A fill or tx entry given, in ring order.
#[derive(Debug)]
struct Entry {
    idx: u32,
    addr: u64,
    /// The frame it gives (`None`: garbage, which must be refused).
    frame: Option<usize>,
    /// A tx descriptor's length (0 for a fill entry).
    len: u32,
    /// The schedule frame a good tx descriptor sends.
    seq: Option<u32>,
    back: bool,
}

/// One attached UMEM.
struct Att {
    /// Its handle's ring key (`Ctx::ring_key`).
    key: usize,
    m: Arc<UserRegion>,
    l: RingLayout,
    token: Arc<IoToken>,
    frames: Vec<Frame>,
    cursor: usize,
    fill: VecDeque<Entry>,
    fill_prod: u32,
    tx: VecDeque<Entry>,
    tx_prod: u32,
    rx_cons: u32,
    comp_cons: u32,
    /// The counters last seen, and the values the user wrote over them.
    last: [u64; 8],
    scribbled: Vec<(usize, u64)>,
    /// Garbage over the counters or the driver's indices: the counters at
    /// the end may not be the driver's.
    inexact: bool,
    tainted: Option<&'static str>,
    /// A user index holding far garbage until the next action.
    restore: Option<usize>,
    detach: bool,
    /// `RingUser::detaches` before the attach was sent.
    detaches: u64,
    /// Its handle's ring epoch before the attach was sent: a detach from
    /// any thread (another's on a shared handle, or one racing a close)
    /// moves it, whichever ring user that thread saw.
    epoch: u64,
    cancel: bool,
    rx: u64,
    comp: u64,
    fill_invalid: u64,
    /// Tx descriptors back on the completion ring: garbage (refused, each),
    /// and good ones longer than the shortest MTU a binding may have plus a
    /// header (`ALWAYS_SENDABLE`: a restart may have made them too long by
    /// their kick, and then they are refused too).
    tx_garbage_back: u64,
    tx_long_back: u64,
    /// The schedule frames of good descriptors no binding refuses that
    /// came back.
    tx_back: Vec<u32>,
    seq: u64,
}

/// The longest frame no binding refuses: the least MTU an adapter spec
/// may have (68) plus the Ethernet header.
const ALWAYS_SENDABLE: u32 = 68 + 14;

/// The attaches of one handle: the one in use, and those detached and not
/// yet completed.
#[derive(Default)]
pub(super) struct RingUser {
    active: Option<Att>,
    draining: Vec<Att>,
    /// Detaches sent on the handle (by any thread): one sent after an
    /// attach was may have ended it before the model knew of it.
    detaches: u64,
}

fn hash(m: &UserRegion, off: usize, len: usize) -> u64 {
    m.to_vec(off, len).iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Whether entry `idx` is before the consumer index `cons`.
fn consumed(idx: u32, cons: u32) -> bool {
    (1..0x8000_0000).contains(&cons.wrapping_sub(idx))
}

impl Att {
    fn new(key: usize, m: Arc<UserRegion>, l: RingLayout, token: IoToken, (detaches, epoch): (u64, u64)) -> Att {
        let zero = hash(&m, l.frames, l.frame_size as usize);
        Att {
            key,
            frames: vec![Frame::Mine { hash: zero, how: "never given" }; l.frame_count as usize],
            m,
            l,
            token: Arc::new(token),
            cursor: 0,
            fill: VecDeque::new(),
            fill_prod: 0,
            tx: VecDeque::new(),
            tx_prod: 0,
            rx_cons: 0,
            comp_cons: 0,
            last: [0; 8],
            scribbled: Vec::new(),
            inexact: false,
            tainted: None,
            restore: None,
            detach: false,
            detaches,
            epoch,
            cancel: false,
            rx: 0,
            comp: 0,
            fill_invalid: 0,
            tx_garbage_back: 0,
            tx_long_back: 0,
            tx_back: Vec::new(),
            seq: 0,
        }
    }

    fn fs(&self) -> usize {
        self.l.frame_size as usize
    }

    fn frame_addr(&self, i: usize) -> u64 {
        (self.l.frames + i * self.fs()) as u64
    }

    fn frame_of(&self, addr: u64) -> Option<usize> {
        let rel = (addr as usize).checked_sub(self.l.frames)?;
        (rel / self.fs() < self.frames.len()).then_some(rel / self.fs())
    }

    /// Puts back the user index that holds far garbage.
    fn restore_now(&mut self) {
        if let Some(off) = self.restore.take() {
            let v = if off == self.l.fill.producer() {
                self.fill_prod
            } else if off == self.l.tx.producer() {
                self.tx_prod
            } else if off == self.l.rx.consumer() {
                self.rx_cons
            } else {
                self.comp_cons
            };
            self.m.store_u32(off, v);
        }
    }

    /// Tx frames with the driver, or tx entries it has not taken.
    fn tx_outstanding(&self) -> bool {
        self.tx.iter().any(|e| !e.back)
    }

    /// A frame the user holds, to give; its bytes must not have changed
    /// since it came back.
    fn take_mine(&mut self, c: &Ctx<'_>) -> Option<usize> {
        let n = self.frames.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if let Frame::Mine { hash: h, how } = self.frames[i] {
                self.cursor = i + 1;
                if self.tainted.is_none() && hash(&self.m, self.frame_addr(i) as usize, self.fs()) != h {
                    c.problem(format!(
                        "rings: frame {i} (offset {:#x}) was written after the driver handed it back ({how})",
                        self.frame_addr(i)
                    ));
                }
                return Some(i);
            }
        }
        None
    }

    /// A fill offset that is not a frame's first byte: inside a frame,
    /// before the frames (the rings), past them, or where a frame would
    /// start if the UMEM had more of them (aligned as a frame is, so only a
    /// bound on the frame's index refuses it).
    fn bad_fill(&mut self) -> u64 {
        self.seq += 1;
        let s = self.seq;
        match s % 6 {
            0 => self.frame_addr((s as usize / 6) % self.frames.len()) + 1 + (s % (self.fs() as u64 - 1)),
            1 => (s * 8) % self.l.frames as u64,
            2 => self.frame_addr(self.frames.len()) + 1 + s % 4095,
            3 => self.frame_addr(self.frames.len() + (s as usize / 6) % 3),
            4 => self.frame_addr(self.frames.len() << (1 + (s / 6) % 20)),
            _ => u64::MAX - s,
        }
    }

    /// A tx descriptor the driver must refuse; inside the frames its offset
    /// is odd (the user's own are even), so its completion is its own.
    fn bad_tx(&mut self, value: u64) -> TxDesc {
        self.seq += 1;
        let s = self.seq.wrapping_add(value);
        let fs = self.fs() as u64;
        let odd_in = |a: &Att, s: u64| a.frame_addr((s as usize >> 3) % a.frames.len()) + (2 * (s % (fs / 2)) + 1);
        let d = match s % 6 {
            0 => TxDesc { addr: (s * 16) % self.l.frames as u64, len: 60, flags: 0 },
            1 => TxDesc { addr: self.frame_addr(self.frames.len()) + s % 4096, len: 60, flags: 0 },
            2 => TxDesc { addr: odd_in(self, s), len: 60, flags: 1 + (s >> 8) as u32 },
            3 => TxDesc { addr: odd_in(self, s), len: (s % 14) as u32, flags: 0 },
            4 => TxDesc {
                addr: self.frame_addr((s as usize >> 3) % self.frames.len()) + fs - 1 - 2 * (s % 8),
                len: 60,
                flags: 0,
            },
            _ => TxDesc { addr: s.rotate_left(23), len: (s >> 40) as u32, flags: (s >> 7) as u32 },
        };
        let mut d = d;
        if self.frame_of(d.addr).is_some() {
            d.addr |= 1;
        }
        if self.l.check_tx(&d, 65535).is_ok() {
            d.flags |= 1;
        }
        d
    }

    /// Counters never decrease (but for the user's own garbage).
    fn check_counters(&mut self, c: &Ctx<'_>) {
        for (k, (off, name)) in COUNTERS.iter().enumerate() {
            let v = self.m.load_u64(*off);
            if self.scribbled.contains(&(*off, v)) {
                continue;
            }
            if v < self.last[k] {
                c.problem(format!("rings: control counter {name} went down from {} to {v}", self.last[k]));
            } else if !self.inexact && self.tainted.is_none() {
                // What the schedule reached: drops of a full rx ring, fill
                // entries that name no frame, indices out of bounds.
                let reached = match *off {
                    control::RX_RING_FULL => Some(&c.ring_edges.ring_full),
                    control::FILL_INVALID => Some(&c.ring_edges.fill_invalid),
                    control::BAD_INDEX => Some(&c.ring_edges.bad_index),
                    _ => None,
                };
                if let Some(n) = reached {
                    n.fetch_add(v - self.last[k], Ordering::Relaxed);
                }
            }
            self.last[k] = v;
        }
    }

    /// Takes what the rx and completion rings hold, and checks it.
    fn drain(&mut self, c: &Ctx<'_>) {
        let ok = self.tainted.is_none();
        let l = self.l;
        let p = self.m.load_u32(l.rx.producer());
        let n = p.wrapping_sub(self.rx_cons);
        if n > l.rx.size {
            if ok {
                c.problem(format!("rings: the rx producer {p} is {n} entries past the consumer {}", self.rx_cons));
            }
            self.rx_cons = p;
        }
        let taken = self.rx;
        let (mut wire, mut bytes) = (0u64, 0u64);
        while self.rx_cons != p {
            let mut raw = [0u8; RxDesc::LEN];
            self.m.read(l.rx.entry_at(self.rx_cons), &mut raw);
            self.rx_cons = self.rx_cons.wrapping_add(1);
            self.rx += 1;
            c.ring_rx.fetch_add(1, Ordering::Relaxed);
            if ok {
                let d = RxDesc::from_bytes(&raw);
                wire += u64::from(super::from_ndis(d.flags));
                bytes += u64::from(d.origlen);
                if d.flags & rawnic_proto::frame_flags::TRUNCATED != 0 {
                    c.ring_edges.cut.fetch_add(1, Ordering::Relaxed);
                }
                self.check_rx(c, d);
            }
        }
        if ok && self.rx != taken {
            // Frames the handle has now: its GET_STATS must count them.
            *lock(&c.ring_rx_by_file).entry(self.token.file()).or_default() += self.rx - taken;
            *lock(&c.wire_by_file).entry(self.token.file()).or_default() += wire;
            *lock(&c.bytes_by_file).entry(self.token.file()).or_default() += bytes;
        }
        self.m.store_u32(l.rx.consumer(), self.rx_cons);
        let p = self.m.load_u32(l.completion.producer());
        let n = p.wrapping_sub(self.comp_cons);
        if n > l.completion.size {
            if ok {
                c.problem(format!(
                    "rings: the completion producer {p} is {n} entries past the consumer {}",
                    self.comp_cons
                ));
            }
            self.comp_cons = p;
        }
        while self.comp_cons != p {
            let v = self.m.load_u64(l.completion.entry_at(self.comp_cons));
            self.comp_cons = self.comp_cons.wrapping_add(1);
            self.comp += 1;
            c.ring_tx.fetch_add(1, Ordering::Relaxed);
            if ok {
                self.check_completion(c, v);
            }
        }
        self.m.store_u32(l.completion.consumer(), self.comp_cons);
        self.check_counters(c);
        // The counters were published before the producers the user just
        // read: every entry it took is counted.
        if ok && !self.inexact {
            let at = |off| self.m.load_u64(off);
            let (rx, tx) =
                (at(control::RX_FRAMES), at(control::TX_FRAMES) + at(control::TX_INVALID) + at(control::TX_ERRORS));
            if rx < self.rx || tx < self.comp {
                c.problem(format!(
                    "rings: the user took {} rx descriptors and {} completions, but the counters say {rx} rx frames and {tx} completions",
                    self.rx, self.comp
                ));
            }
        }
        // What is back (and refused fill offsets the driver took) leaves
        // the logs.
        let f = self.m.load_u32(l.fill.consumer());
        while let Some(e) = self.fill.front() {
            if e.back {
            } else if e.frame.is_none() && consumed(e.idx, f) {
                self.fill_invalid += 1;
            } else {
                break;
            }
            self.fill.pop_front();
        }
        while self.tx.front().is_some_and(|e| e.back) {
            self.tx.pop_front();
        }
    }

    fn check_rx(&mut self, c: &Ctx<'_>, d: RxDesc) {
        let Some(i) = self.frame_of(d.addr).filter(|_| self.l.is_frame_start(d.addr)) else {
            c.problem(format!("rings: an rx descriptor names offset {:#x}, not a frame's first byte", d.addr));
            return;
        };
        match self.fill.iter_mut().find(|e| e.frame == Some(i) && !e.back) {
            Some(e) if self.frames[i] == Frame::Fill => e.back = true,
            _ => {
                c.problem(format!(
                    "rings: an rx descriptor names frame {i} (offset {:#x}), which the user holds ({:?}), not one on the fill ring",
                    d.addr, self.frames[i]
                ));
                return;
            }
        }
        if d.len as usize > self.fs() || d.len > d.origlen {
            c.problem(format!(
                "rings: an rx descriptor of {} bytes (wire length {}) in a {}-byte frame",
                d.len,
                d.origlen,
                self.fs()
            ));
        } else {
            let f = self.m.to_vec(d.addr as usize, d.len as usize);
            if let Err(e) = frames::check(&f, d.origlen as usize) {
                c.problem(format!("rings: rx frame at {:#x}: {e}", d.addr));
            }
            super::received::check_cut(c, "rings: rx", f.len(), d.origlen, d.flags);
            // The multicast oracle, as for reads.
            super::joins::check_group(c, "rings: rx", self.token.file(), &f);
            let rec = super::received::Rec {
                flags: d.flags,
                tci: d.tci,
                segs: d.segs,
                seg_size: d.seg_size,
                ts: d.timestamp_ns,
                origlen: d.origlen,
            };
            super::received::check(c, "rings: rx", self.token.file(), &f, rec);
        }
        self.frames[i] = Frame::Mine { hash: hash(&self.m, d.addr as usize, self.fs()), how: "rx" };
    }

    fn check_completion(&mut self, c: &Ctx<'_>, v: u64) {
        let Some(e) = self.tx.iter_mut().find(|e| e.addr == v && !e.back) else {
            c.problem(format!(
                "rings: the completion ring gives back offset {v:#x}, which no tx descriptor left out there"
            ));
            return;
        };
        e.back = true;
        let (frame, len, seq) = (e.frame, e.len, e.seq);
        match frame {
            None => self.tx_garbage_back += 1,
            Some(_) if len > ALWAYS_SENDABLE => self.tx_long_back += 1,
            // No binding refuses it: back means sent (on a wire, or failed
            // by NDIS), or stopped unsent and counted an error (`wire.rs`).
            Some(_) => self.tx_back.extend(seq),
        }
        if let Some(i) = e.frame {
            self.frames[i] =
                Frame::Mine { hash: hash(&self.m, self.frame_addr(i) as usize, self.fs()), how: "completion" };
        }
    }

    /// The attach completed with `r`: the last checks.
    fn finish(mut self, c: &Ctx<'_>, r: &IoResult, detaches: u64) {
        let moved = c.ring_epoch[self.key].fetch_add(1, Ordering::AcqRel) != self.epoch;
        let st = NtStatus(r.status);
        if r.status == ndis_sys::STATUS_PENDING {
            c.problem("rings: the attach completed with STATUS_PENDING".into());
        } else if st == NtStatus::SUCCESS && !self.detach && detaches == self.detaches && !moved {
            c.problem("rings: the attach completed with STATUS_SUCCESS, but nobody detached".into());
        } else if st == NtStatus::CANCELLED && !self.cancel && !self.token.may_be_cancelled() {
            c.problem(
                "rings: the attach completed with STATUS_CANCELLED, but nobody cancelled it and its handle is open"
                    .into(),
            );
        }
        self.restore_now();
        if self.tainted.is_some() {
            return;
        }
        self.drain(c);
        let (f, t) = (self.m.load_u32(self.l.fill.consumer()), self.m.load_u32(self.l.tx.consumer()));
        for e in &self.fill {
            match e.frame {
                Some(i) if consumed(e.idx, f) && !e.back => c.problem(format!(
                    "rings: the driver took frame {i} (offset {:#x}) from the fill ring and the attach completed without it on the rx ring",
                    e.addr
                )),
                None if consumed(e.idx, f) => self.fill_invalid += 1,
                _ => {}
            }
        }
        for e in self.tx.iter().filter(|e| consumed(e.idx, t) && !e.back) {
            c.problem(format!(
                "rings: the attach completed ({st:?}) before the tx descriptor of offset {:#x} came back on the completion ring",
                e.addr
            ));
        }
        if !self.inexact {
            let at = |off| self.m.load_u64(off);
            let tx = at(control::TX_FRAMES) + at(control::TX_INVALID) + at(control::TX_ERRORS);
            let got = (at(control::RX_FRAMES), tx, at(control::FILL_INVALID));
            if got != (self.rx, self.comp, self.fill_invalid) {
                c.problem(format!(
                    "rings: at the end the counters say {got:?} (rx frames, tx completions, refused fill offsets) but the rings gave {:?}",
                    (self.rx, self.comp, self.fill_invalid)
                ));
            }
            // What came back is judged against the wires at the end.
            c.wire.ring_back(std::mem::take(&mut self.tx_back), at(control::TX_ERRORS));
            // Every garbage descriptor back was refused, and a good one
            // only for its length (over the MTU of its kick's moment).
            let refused = at(control::TX_INVALID);
            let (least, most) = (self.tx_garbage_back, self.tx_garbage_back + self.tx_long_back);
            if self.tainted.is_none() && !(least..=most).contains(&refused) {
                c.problem(format!(
                    "rings: at the end TX_INVALID says {refused} descriptors were refused, but {least} garbage ones came back and {} good ones that a lower MTU could refuse",
                    self.tx_long_back
                ));
            }
        }
        // Nothing handed back was written after.
        for i in 0..self.frames.len() {
            if let Frame::Mine { hash: h, how } = self.frames[i] {
                if hash(&self.m, self.frame_addr(i) as usize, self.fs()) != h {
                    c.problem(format!(
                        "rings: frame {i} (offset {:#x}) was written after the driver handed it back ({how}), found at the attach's end",
                        self.frame_addr(i)
                    ));
                }
            }
        }
    }
}

/// The ring user of handle `h`.
fn user_of(c: &Ctx<'_>, h: &Arc<Handle>) -> Arc<Mutex<RingUser>> {
    let mut v = lock(&c.rings);
    if let Some((_, u)) = v.iter().find(|(w, _)| is(w, h)) {
        return u.clone();
    }
    let u = Arc::new(Mutex::new(RingUser::default()));
    v.push((Arc::downgrade(h), u.clone()));
    u
}

/// `CancelIoEx` on handle `h`: its rings' attach is one of the requests
/// cancelled, so the rings detach (as `RingOp::CancelAttach`), and their
/// waits end.
pub(super) fn cancel_io(c: &Ctx<'_>, h: &Arc<Handle>) {
    let user = user_of(c, h);
    if let Some(a) = lock(&user).active.as_mut() {
        a.cancel = true;
    }
    c.ring_event(Ctx::ring_key(h), || h.cancel_io());
    let mut g = lock(&user);
    if let Some(a) = g.active.take() {
        g.draining.push(a);
    }
}

/// The ring user of a handle about to close, to finish after.
pub(super) fn release(c: &Ctx<'_>, h: &Arc<Handle>) -> Option<Arc<Mutex<RingUser>>> {
    let mut v = lock(&c.rings);
    let i = v.iter().position(|(w, _)| is(w, h))?;
    Some(v.swap_remove(i).1)
}

/// Whether handle `h` ever used rings (its ring user is not released yet).
pub(super) fn has_user(c: &Ctx<'_>, h: &Arc<Handle>) -> bool {
    lock(&c.rings).iter().any(|(w, _)| is(w, h))
}

/// Whether a ring user's handle is `h`.
fn is(w: &Weak<Handle>, h: &Arc<Handle>) -> bool {
    std::ptr::eq(w.as_ptr(), Arc::as_ptr(h))
}

/// The rx descriptors handle `h`'s ring user has taken off its rx ring,
/// once it took what the ring holds now (`None`: no attach in use, or one
/// whose model garbage voided).
pub(super) fn rx_taken(c: &Ctx<'_>, h: &Arc<Handle>) -> Option<u64> {
    let user = lock(&c.rings).iter().find(|(w, _)| is(w, h)).map(|(_, u)| u.clone())?;
    let mut g = lock(&user);
    let a = g.active.as_mut().filter(|a| a.tainted.is_none() && !a.detach && !a.cancel)?;
    a.drain(c);
    Some(a.rx)
}

/// Every ring user left (at the end of the run).
pub(super) fn release_all(c: &Ctx<'_>) -> Vec<Arc<Mutex<RingUser>>> {
    lock(&c.rings).drain(..).map(|(_, u)| u).collect()
}

/// Ring users whose handles closed: each attach must complete.
pub(super) fn finish(c: &Ctx<'_>, users: Vec<Arc<Mutex<RingUser>>>) {
    for u in users {
        let (atts, detaches) = {
            let mut g = lock(&u);
            let mut v = std::mem::take(&mut g.draining);
            v.extend(g.active.take());
            (v, g.detaches)
        };
        for a in atts {
            match a.token.wait_for(c.watchdog) {
                Some(r) => a.finish(c, &r, detaches),
                None => {
                    c.problem(format!(
                        "rings: an attach (IRP {:#x}) never completed after its handle closed",
                        a.token.irp()
                    ));
                    c.take_stacks();
                }
            }
        }
    }
}

/// Finishes the attaches that completed.
fn reap(c: &Ctx<'_>, g: &mut RingUser) {
    let mut i = 0;
    while i < g.draining.len() {
        if let Some(r) = g.draining[i].token.try_result() {
            let d = g.detaches;
            g.draining.swap_remove(i).finish(c, &r, d);
        } else {
            i += 1;
        }
    }
    if let Some(r) = g.active.as_ref().and_then(|a| a.token.try_result()) {
        let d = g.detaches;
        g.active.take().expect("there").finish(c, &r, d);
    }
}
