//! Handles that join multicast groups.
//!
//! The main draws set OID_802_3_MULTICAST_LIST rarely, and with made-up
//! groups no frame is ever sent to: in 40 free schedules (rings 500) no
//! handle ever had a group on its list, and the driver's union of the
//! handles' lists, its sets of it and the receive path's test of a frame's
//! group never ran. So, from a stream of its own, this pass has some of
//! the handles opened with MULTICAST join groups (the one the NIC's
//! multicast frames go to among them, most of the time), change them
//! later, or leave them all; the runner tracks which handle may get which
//! group, and what the adapter's list must hold once the schedule is quiet.

use crate::schedule::IoAction;
use ndisim::rng::Rng;

/// Per mille of the opens with MULTICAST followed by a join.
const JOIN_AFTER_OPEN: u32 = 500;
/// Per mille of the other actions of a joined handle's thread followed by
/// a new list for it (other groups, or none).
const REJOIN: u32 = 30;

/// A list of groups: bit 0 (the NIC's group) seven times in ten.
fn draw(r: &mut Rng) -> u8 {
    let others = (r.below(16) as u8) << 1;
    if r.chance(700) { others | 1 } else { others }
}

pub(super) fn joins(r: &mut Rng, handles: &mut [Vec<IoAction>]) {
    let multicast = rawnic_proto::filter::MULTICAST.bits();
    for list in handles.iter_mut() {
        let mut joined: Option<u8> = None;
        let mut out = Vec::with_capacity(list.len() + list.len() / 16);
        for act in list.drain(..) {
            let mut after = None;
            match &act {
                IoAction::Open { slot, filter, .. } => {
                    joined = joined.filter(|j| j != slot);
                    if filter & multicast != 0 && r.chance(JOIN_AFTER_OPEN) {
                        joined = Some(*slot);
                        let groups = draw(r);
                        after = Some(join(r, *slot, groups));
                    }
                }
                IoAction::Create { slot } | IoAction::Close { slot } | IoAction::Abandon { slot }
                    if joined == Some(*slot) =>
                {
                    joined = None;
                }
                _ => {
                    if let Some(j) = joined.filter(|_| r.chance(REJOIN)) {
                        let groups = if r.chance(300) { 0 } else { draw(r) };
                        after = Some(join(r, j, groups));
                    }
                }
            }
            out.push(act);
            out.extend(after);
        }
        *list = out;
    }
}

fn join(r: &mut Rng, slot: u8, groups: u8) -> IoAction {
    IoAction::Oid {
        slot,
        set: true,
        oid: ndis_sys::OID_802_3_MULTICAST_LIST,
        len: 0,
        wait_ms: r.range(0, 40) as u32,
        groups: Some(groups),
    }
}
