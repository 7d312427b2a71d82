//! A handle's capture program (`IOCTL_RAWNIC_SET_PROGRAM`): classic BPF,
//! checked once when it is set (`rawnic_logic::bpf`), then run on each
//! frame the handle's other filters take, received or sent from this host,
//! for its queue and its rings alike. A frame it returns 0 for is not
//! taken (and not counted: like a frame of an EtherType the handle does
//! not list); one it returns less than the frame's length for is cut
//! there, and marked `TRUNCATED`, as the snap length cuts. The program
//! sees a frame as it was on the wire: a tag the NIC stripped (or will
//! insert, for a send) is back after the MAC addresses, though the
//! record delivers the frame without it (`rawnic_logic::bpf::Tagged`).

use super::Rawnic;
use super::client::{Client, ClientState, Mode};
use super::control::fail;
use crate::kernel::device::{Dispatched, Irp};
use crate::kernel::nbl::{ReceivedFrame, RecvFrame};
use alloc::sync::Arc;
use core::cell::Cell;
use rawnic_logic::bpf::{Packet, Parts, Program, Why};
use rawnic_logic::budget::{Charge, QueueBudget};
use rawnic_proto::{MAX_PROGRAMS_POOL_BYTES, NtStatus, ProgramRequest};

/// The pool all handles' programs take together: a handle's program is
/// at most 4096 instructions, and this keeps many handles from taking the
/// system's non-paged pool with theirs.
static PROGRAMS_POOL: QueueBudget = QueueBudget::new(MAX_PROGRAMS_POOL_BYTES);

/// A handle's program, and its share of `PROGRAMS_POOL` (given back when
/// the program goes: replaced, removed, or at the handle's cleanup).
pub(crate) struct Installed {
    program: Program,
    _charge: Charge,
}

impl core::ops::Deref for Installed {
    type Target = Program;

    fn deref(&self) -> &Program {
        &self.program
    }
}

impl Rawnic {
    /// `IOCTL_RAWNIC_SET_PROGRAM`: the program is checked and copied
    /// before the handle's lock is taken; the old one is freed after. One
    /// that `PROGRAMS_POOL` cannot take, like one the pool's memory cannot,
    /// is refused with STATUS_INSUFFICIENT_RESOURCES.
    pub(super) fn set_program(&self, file: &Arc<Client>, irp: Irp) -> Dispatched {
        let program = match ProgramRequest::new_checked(irp.input()) {
            Err(e) => return fail(irp, e.status()),
            Ok(req) if req.is_empty() => None,
            Ok(req) => {
                let Some(charge) = PROGRAMS_POOL.charge(Program::bytes_for(req.len())) else {
                    return fail(irp, NtStatus::INSUFFICIENT_RESOURCES);
                };
                match Program::new(req.insns()) {
                    Ok(program) => Some(Installed { program, _charge: charge }),
                    Err(r) if r.why == Why::OutOfMemory => return fail(irp, NtStatus::INSUFFICIENT_RESOURCES),
                    Err(_) => return fail(irp, NtStatus::INVALID_PARAMETER),
                }
            }
        };
        let old = {
            let mut st = file.state.lock();
            if matches!(st.mode, Mode::Closed) { None } else { Some(core::mem::replace(&mut st.program, program)) }
        };
        match old {
            Some(_) => irp.complete(NtStatus::SUCCESS, 0),
            // Cleanup ran: the handle takes no more frames.
            None => fail(irp, NtStatus::INVALID_DEVICE_STATE),
        }
    }
}

/// How many bytes of received frame `f` the handle keeps by its program:
/// `Some(u32::MAX)` (all) when it has none, `Some(0)` when the program
/// does not take the frame, `None` when the program could not read it (a
/// load inside the frame whose memory could not be mapped, low
/// resources): the frame may be one it would have taken, and the handle
/// counts it as dropped, as it counts a frame whose header it cannot read.
#[inline(always)]
pub(super) fn keep(st: &ClientState, f: &RecvFrame<'_>) -> Option<u32> {
    match &st.program {
        None => Some(u32::MAX),
        Some(p) => run(p, f),
    }
}

/// The program on a received frame: on its bytes in place when its first
/// MDL maps it whole, else on its first `HEAD` bytes copied once, and a
/// load past them at a time (`None`: one of them could not be copied).
/// A tag the NIC stripped into the NBL's 802.1Q info is back in place
/// for the program (`Program::run_stripped`), as it was on the wire.
#[inline(never)]
fn run(p: &Program, f: &RecvFrame<'_>) -> Option<u32> {
    let stripped = f.tci();
    match f.in_place() {
        Some(b) => Some(p.run_stripped(b, stripped)),
        None => {
            let w = Walked::new(f);
            let n = p.run_stripped(&w, stripped);
            if w.unread.get() { None } else { Some(n) }
        }
    }
}

/// The snap length a frame is cut to: the handle's (0: all of it), or
/// what its program keeps (`keep`, not 0) if less.
#[inline(always)]
pub(super) fn snap_with(snaplen: u32, keep: u32) -> u32 {
    match snaplen {
        0 if keep == u32::MAX => 0,
        0 => keep,
        s => s.min(keep),
    }
}

/// `keep` for a frame given in parts (one sent from this host, its tag
/// written between them), one after another; `stripped`: the tag that
/// went in the NBL's 802.1Q info (0: none), for the adapter to insert,
/// which the program sees in place as a received frame's.
#[inline(always)]
pub(super) fn keep_parts(st: &ClientState, parts: &[&[u8]], stripped: u16) -> u32 {
    match &st.program {
        None => u32::MAX,
        Some(p) => p.run_stripped(&Parts(parts), stripped),
    }
}

/// Bytes of a frame in MDL chains copied before its program runs: the
/// headers most programs read (Ethernet, an 802.1Q tag, IPv6 and TCP), so
/// that their loads do not each walk the chain.
const HEAD: usize = 128;

/// A received frame whose first MDL does not map it whole: its first
/// `HEAD` bytes copied once, each load past them copied from its MDL
/// chain (a load past the frame's end ends the run taking nothing; one
/// inside it whose memory could not be mapped ends it too, marked
/// `unread`).
struct Walked<'f, F> {
    frame: &'f F,
    head: [u8; HEAD],
    /// How much of `head` the frame filled.
    have: usize,
    /// A load inside the frame could not be copied (its memory could not
    /// be mapped): the run's 0 is not the program's answer.
    unread: Cell<bool>,
}

impl<'f, F: ReceivedFrame> Walked<'f, F> {
    fn new(frame: &'f F) -> Self {
        let mut head = [0u8; HEAD];
        let have = frame.copy_to(0, &mut head);
        Walked { frame, head, have, unread: Cell::new(false) }
    }
}

impl<F: ReceivedFrame> Packet for Walked<'_, F> {
    fn wire_len(&self) -> u32 {
        self.frame.len() as u32
    }

    fn bytes<const N: usize>(&self, off: u32) -> Option<[u8; N]> {
        let off = off as usize;
        if let Some(b) = self.head[..self.have].get(off..).and_then(|h| h.first_chunk::<N>()) {
            return Some(*b);
        }
        let mut b = [0u8; N];
        if self.frame.copy_to(off, &mut b) == N {
            return Some(b);
        }
        // Past the frame's end, the program's answer; inside it, memory
        // that could not be mapped.
        if off.checked_add(N).is_some_and(|end| end <= self.frame.len()) {
            self.unread.set(true);
        }
        None
    }
}
