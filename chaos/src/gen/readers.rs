//! Reads where the frames are.
//!
//! The main draws pick a read's slot at random, so most reads went to a
//! slot with no handle, or one not open on an adapter: in 100 det and 100
//! free schedules (rings 250, swarm 30), 13 and 18 read back any frame at
//! all, and under `--lowres 50` one seed in 40 did. The receive path, its
//! queue and its oracles (frame contents, multicast groups, receive
//! accounts) then ran in few schedules. So, from a stream of its own (a
//! seed's other choices stay what they were), this pass points most reads
//! of a handle thread at the slot it last opened with a filter, leaves a
//! read pending after some of those opens (a reader waiting when the
//! frames come, as a capture loop is), and adds a read now and then after
//! other actions.

use crate::schedule::IoAction;
use ndisim::rng::Rng;

/// Per mille of a thread's reads pointed at its last opened slot.
const RETARGET: u32 = 700;
/// Per mille of the opens followed by a pending read.
const PENDING_AFTER_OPEN: u32 = 400;
/// Per mille of the other actions followed by a read of the opened slot.
const READ_AFTER: u32 = 60;

pub(super) fn readers(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    for list in handles.iter_mut() {
        let mut opened: Option<u8> = None;
        let mut out = Vec::with_capacity(list.len() + list.len() / 8);
        for mut act in list.drain(..) {
            let mut after = None;
            match &mut act {
                IoAction::Open { slot, filter, .. } => {
                    opened = (*filter != 0).then_some(*slot).or(opened.filter(|o| o != slot));
                    if *filter != 0 && r.chance(PENDING_AFTER_OPEN) {
                        after = Some(IoAction::ReadPending { slot: *slot, len: *r.pick(&[2048u32, 16384, 65536]) });
                    }
                }
                IoAction::Create { slot } | IoAction::Close { slot } | IoAction::Abandon { slot }
                    if opened == Some(*slot) =>
                {
                    opened = None;
                }
                IoAction::Read { slot, .. } | IoAction::ReadPending { slot, .. } => {
                    if let Some(o) = opened.filter(|_| r.chance(RETARGET)) {
                        *slot = o;
                    }
                }
                _ => {
                    if let Some(o) = opened.filter(|_| r.chance(READ_AFTER)) {
                        let len = *r.pick(&[2048u32, 65536]);
                        after = Some(IoAction::Read { slot: o, len, wait_ms: r.range(1, 20) as u32 });
                    }
                }
            }
            out.push(act);
            out.extend(after);
        }
        *list = out;
    }
}
