//! Tags in the frames' bytes. One receive burst in ten carries a tag
//! inline, after the addresses: an 802.1Q tag a NIC without VLAN offload
//! leaves in the frame, or an 802.1ad (0x88a8) service tag, which no NIC
//! strips. The frame's own EtherType is the one behind the tag, which a
//! handle listing it must get (`run/probe.rs` checks that such a frame is
//! not lost) and a handle listing only the tag's may get. One EtherType
//! list in eight names 0x88a8 too.

use crate::frames::{TPID_8021AD, TPID_8021Q};
use crate::schedule::*;
use ndisim::rng::Rng;

pub(super) fn inline_tags(seed: u64, nic: &mut [NicAction], handles: &mut [Vec<IoAction>]) {
    // A stream each: the handles' lists stay what they are whatever the
    // NIC's actions are (`parallel` splits those).
    let r = &mut Rng::new(seed ^ 0x696E_6C69_6E65_7467);
    for act in nic.iter_mut() {
        // Not on a coalesced unit (its headers are the coalescing's) nor on
        // another protocol's send looped back.
        if let NicAction::Inject { coalesce: None, loopback: false, inline, .. } = act {
            if r.chance(100) {
                let tpid = if r.chance(500) { TPID_8021AD } else { TPID_8021Q };
                // TCI 0 too: a priority tag, still a tag inline.
                let tci = if r.chance(200) { 0 } else { r.range(1, 0xffff) as u16 };
                *inline = Some(InlineTag { tpid, tci });
            }
        }
    }
    let r = &mut Rng::new(seed ^ 0x7479_7065_7338_6164);
    for act in handles.iter_mut().flatten() {
        if let IoAction::Open { ethertypes, .. } = act {
            if !ethertypes.is_empty() && ethertypes.len() < rawnic_proto::MAX_ETHERTYPES && r.chance(125) {
                ethertypes.push(TPID_8021AD);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GenOptions, generate};
    use crate::schedule::*;

    #[test]
    fn some_bursts_carry_tags_inline_and_some_lists_name_the_service_tag() {
        let all: Vec<Schedule> = (0..300).map(|seed| generate(seed, GenOptions::plain(Mode::Free))).collect();
        let injects = || all.iter().flat_map(|s| s.nic.iter().chain(s.nic_more.iter().flatten()));
        let bursts = injects().filter(|a| matches!(a, NicAction::Inject { .. })).count();
        let tag = |tpid: u16| {
            injects().filter(|a| matches!(a, NicAction::Inject { inline: Some(t), .. } if t.tpid == tpid)).count()
        };
        let (q, ad) = (tag(0x8100), tag(0x88a8));
        assert!(q * 30 > bursts && ad * 40 > bursts && q + ad < bursts / 5, "{q} and {ad} of {bursts}");
        let coalesced_tagged =
            injects().filter(|a| matches!(a, NicAction::Inject { inline: Some(_), coalesce: Some(_), .. })).count();
        assert_eq!(coalesced_tagged, 0);
        let listed = all
            .iter()
            .flat_map(|s| s.handles.iter().flatten())
            .filter(|a| matches!(a, IoAction::Open { ethertypes, .. } if ethertypes.contains(&0x88a8)))
            .count();
        assert!(listed > 10, "{listed} lists name 0x88a8");
    }
}
