//! The SET_OID oracle: what a reply to a set the driver passes through
//! says the adapter did.
//!
//! rawnic passes a handle's set of `OID_GEN_CURRENT_LOOKAHEAD` or
//! `OID_GEN_LINK_PARAMETERS` to NDIS as it came and tells the user what the
//! miniport answered: its status, the bytes it read (never more than the
//! value held) and the bytes it needed. The checks of the reply's header
//! alone pass a driver that sends another value (cut, shifted, another
//! request's), that answers for the miniport, or that reports another
//! request's counts. Here each reply (but an abort, judged with the
//! cancels, and the low-power refusal, which is the driver's own) must be
//! one of the sets ndisim's miniports answered (`Sim::count_set_answers`):
//! the same OID and value, status, `BytesRead` (cut to the value's length)
//! and `BytesNeeded`, each answer claimed by one reply at most. The
//! explorer's values are `handles::set_value` of the OID and length; an
//! answer is logged before its completion reaches the driver, so it is
//! there when the reply is. A multicast list is not passed through (the
//! adapter gets the union of the handles' lists: `joins.rs`, `unions.rs`).

use super::{Ctx, lock};
use ndis_sys::*;
use rawnic_proto::OidReplyHeader;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A reply as a key: OID, value length, status, bytes read, bytes needed.
type Key = (u32, u32, i32, u32, u32);

/// The answers replies have claimed so far, and how many were judged.
#[derive(Default)]
pub(super) struct Claims {
    claimed: Mutex<HashMap<Key, usize>>,
    /// `Edges::sets_judged`.
    pub(super) judged: AtomicU64,
}

/// Judges the reply `h` to a set of `oid` with the explorer's `len`-byte
/// value (IRP `irp`).
pub(super) fn check(c: &Ctx<'_>, oid: u32, len: u32, h: &OidReplyHeader, irp: usize) {
    if oid == OID_802_3_MULTICAST_LIST
        || matches!(h.ndis_status, NDIS_STATUS_REQUEST_ABORTED | NDIS_STATUS_LOW_POWER_STATE)
    {
        return;
    }
    let value = super::handles::set_value(oid, len as usize);
    let key = (oid, len, h.ndis_status, h.bytes, h.bytes_needed);
    let answered: usize = c
        .adapters
        .iter()
        .map(|&a| {
            c.sim.count_set_answers(a, |e| {
                (e.oid, e.status, e.bytes_read.min(len), e.bytes_needed)
                    == (oid, h.ndis_status, h.bytes, h.bytes_needed)
                    && e.data == value
            })
        })
        .sum();
    let mut claimed = lock(&c.sets.claimed);
    let n = claimed.entry(key).or_default();
    if *n >= answered {
        let more = if *n == 0 { "such a set" } else { "one more such set" };
        drop(claimed);
        c.problem(format!(
            "oid: a set of OID {oid:#x} with a {len}-byte value (IRP {irp:#x}) came back as NDIS status {:#x}, {} bytes read, {} needed, but no miniport answered {} that way ({answered} did)",
            h.ndis_status as u32,
            h.bytes,
            h.bytes_needed,
            more,
        ));
        return;
    }
    *n += 1;
    c.sets.judged.fetch_add(1, Ordering::Relaxed);
}
