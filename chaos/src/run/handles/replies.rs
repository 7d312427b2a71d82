//! The checks of a handle thread's completed requests (`check_reply`):
//! none may end STATUS_PENDING, nor CANCELLED unless it was cancelled or
//! its handle closed. A read must carry at least one record, each an
//! intact frame whose TRUNCATED flag tells the truth, of a group its
//! handle joined and of a kind its filters take, a burst's frames in
//! order (`received.rs`, `joins.rs`); what it read is counted for the
//! end's accounts. An OID reply may not say the adapter read or wrote
//! more than its buffer, nor be aborted unless cancelled or torn down, and
//! a successful query's answer must be the miniport's (`oid_answers.rs`).
//! Events and binds-complete replies must parse; a ring wait is judged by
//! the rings (`rings::check_wait`).

use super::{Kind, rings};
use crate::frames;
use crate::run::{Ctx, from_ndis, joins, lock, oid_answers, received, set_answers};
use ndisim::{IoResult, IoToken};
use rawnic_proto::*;
use std::sync::atomic::Ordering;

/// Checks a completed request of token `t` (a successful query's answer
/// against the miniport's: `oid_answers.rs`).
pub(super) fn check_reply(c: &Ctx<'_>, k: Kind, t: &IoToken, r: &IoResult) {
    c.completions.fetch_add(1, Ordering::Relaxed);
    if r.status == ndis_sys::STATUS_PENDING {
        c.problem(format!("a {k:?} request completed with STATUS_PENDING"));
        return;
    }
    if let Kind::Oid { join: Some((_, seq)), .. } = k {
        joins::replied(c, t.file(), seq, r);
    }
    // A detach ends the rings' waits too.
    if let Kind::RingWait { flags, key, epoch } = k {
        rings::check_wait(c, flags, key, epoch, t, r);
        return;
    }
    // rawnic cancels a request only when asked to: IoCancelIrp, or the
    // cleanup of its handle. Checked after the completion, so a cancel or a
    // close that raced with it counts.
    if r.status == ndis_sys::STATUS_CANCELLED && !t.may_be_cancelled() {
        c.problem(format!(
            "a {k:?} request (IRP {:#x}) completed with STATUS_CANCELLED, but nobody cancelled it and its handle is open",
            t.irp()
        ));
        return;
    }
    if r.status != 0 {
        return;
    }
    match k {
        Kind::Read => match FrameRecords::new_checked(&r.data) {
            // rawnic completes a read only with a frame (its buffer holds at
            // least a record's header, so the first record fits, cut short
            // if need be) or with an error: a SUCCESS without one reads as
            // end of file to ReadFile's caller. A cancel racing the read does
            // not excuse it (the reply is then CANCELLED).
            Ok(recs) if recs.is_empty() => c.problem(format!(
                "read: a request (IRP {:#x}) completed with STATUS_SUCCESS and no frame{}",
                t.irp(),
                if t.may_be_cancelled() { " (it was being cancelled)" } else { "" }
            )),
            Ok(recs) => {
                *lock(&c.reads_by_file).entry(t.file()).or_default() += recs.len() as u64;
                let mut wire = 0u64;
                let mut injected = Vec::new();
                for (h, d) in recs.iter() {
                    if let Err(e) = frames::check(d, h.origlen as usize) {
                        c.problem(format!("read: {e}"));
                    }
                    received::check_cut(c, "read", d.len(), h.origlen, h.flags);
                    joins::check_group(c, "read", t.file(), d);
                    let rec = received::Rec {
                        flags: h.flags,
                        tci: h.tci,
                        segs: h.segs,
                        seg_size: h.seg_size,
                        ts: h.timestamp_ns,
                        origlen: h.origlen,
                    };
                    injected.extend(received::check(c, "read", t.file(), d, rec).map(|(b, s)| (b, s, rec.ts)));
                    wire += u64::from(from_ndis(h.flags));
                    c.frames_read.fetch_add(1, Ordering::Relaxed);
                }
                received::in_order(c, "read", &injected);
                *lock(&c.wire_by_file).entry(t.file()).or_default() += wire;
                let bytes: u64 = recs.iter().map(|(h, _)| u64::from(h.origlen)).sum();
                *lock(&c.bytes_by_file).entry(t.file()).or_default() += bytes;
            }
            Err(e) => c.problem(format!("read: {} bytes of malformed records: {e:?}", r.data.len())),
        },
        Kind::Event => match EventRecord::parse(&r.data) {
            Ok(e) => lock(&c.events_by_file).entry(t.file()).or_default().push(e),
            Err(e) => c.problem(format!("wait event: a malformed event: {e:?}")),
        },
        Kind::Oid { oid, query, epoch, join, limit } => match OidReplyHeader::parse(&r.data, query) {
            // A miniport may say it read or wrote more than it was given
            // (`oid-overstate`); the reply may not.
            Ok((h, _)) if h.bytes > limit => {
                c.problem(format!(
                    "oid: a reply says the adapter {} {} bytes of a {limit}-byte buffer (IRP {:#x})",
                    if query { "wrote" } else { "read" },
                    h.bytes,
                    t.irp()
                ));
            }
            // NDIS aborts a request only when asked to: by rawnic, for this
            // request's cancel or close, or for an unbind. One aborted
            // otherwise got a cancel meant for another request.
            Ok((h, _))
                if h.ndis_status == ndis_sys::NDIS_STATUS_REQUEST_ABORTED
                    && !t.may_be_cancelled()
                    && !c.torn_down_since(epoch) =>
            {
                c.problem(format!(
                    "oid: a request (IRP {:#x}) was aborted, but nobody cancelled it, its handle is open and no adapter unbound or changed power",
                    t.irp()
                ));
            }
            Ok((h, data)) => {
                if let Some((mask, seq)) = join.filter(|_| h.ndis_status == 0) {
                    joins::succeeded(c, t.file(), mask, seq);
                }
                // Only a success carries the miniport's answer: a buffer too
                // short for it is told BUFFER_TOO_SHORT or INVALID_LENGTH.
                if query && h.ndis_status == ndis_sys::NDIS_STATUS_SUCCESS {
                    oid_answers::check(c, oid, limit, t.file(), t.irp(), data);
                }
                if !query {
                    set_answers::check(c, oid, limit, &h, t.irp());
                }
            }
            Err(e) => c.problem(format!("oid: a malformed reply: {e:?}")),
        },
        Kind::Binds => {
            if let Err(e) = BindsCompleteReply::parse(&r.data) {
                c.problem(format!("wait binds: a malformed reply: {e:?}"));
            }
        }
        Kind::RingWait { .. } | Kind::LateWait | Kind::Other => {}
    }
}
