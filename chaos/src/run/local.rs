//! The local-sends oracle: the frames one handle sent that the driver
//! hands over itself to the binding's other handles (`OUTBOUND` without
//! `LOOPBACK`; rawnic does not ask NDIS for a loopback, `driver/src/
//! rawnic/local.rs`).
//!
//! The other receive oracles judge such a record's bytes, its EtherType,
//! its snap length, its multicast group and what a capture program made
//! of it, as for any record, but not where it came from. Here each record
//! of a schedule frame that says it is a send of this host must be of a
//! frame a handle thread sent (`wire::Sent`), and:
//!
//! - not one a SEND_BATCH's reply counted as not accepted (its caller
//!   sends it again: a capture would show it twice);
//! - come to a handle of the sender's adapter;
//! - come to a handle that takes this host's sends (`LocalSends::Others`
//!   or `All`), and to the sender itself only if it asked for its own
//!   (`All`);
//! - come to that handle once;
//! - be one the handle's packet filter takes, by its destination;
//! - say the 802.1Q tag its send asked for (`TAGGED` and the TCI, stripped
//!   or inline), or else the one the frame carried inline, and none when
//!   it had none.

use super::received::{Rec, filter_refusing};
use super::{Ctx, lock};
use rawnic_proto::{LocalSends, frame_flags};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file object, as `IoToken::file` names it.
type File = (usize, u64);

#[derive(Default)]
pub(super) struct Model {
    /// The (file object, frame) pairs delivered so far.
    seen: Mutex<HashSet<(File, u32)>>,
    /// Records judged (`Edges::local_records`).
    pub(super) judged: AtomicU64,
}

/// Judges a record that file object `file` got through `via` of schedule
/// frame `seq` (its bytes `data`), whose flags say a handle of this host
/// sent it.
pub(super) fn check(c: &Ctx<'_>, via: &str, file: File, data: &[u8], seq: u32, r: Rec) {
    let Some(by) = lock(&c.wire.by).get(&seq).copied() else {
        let what = if c.rx.was_injected(seq) { "the NIC indicated" } else { "nobody sent" };
        c.problem(format!(
            "{via}: a record says {what} frame {seq} was sent by a handle of this host (flags {:#x})",
            r.flags
        ));
        return;
    };
    c.local.judged.fetch_add(1, Ordering::Relaxed);
    if c.wire.was_refused(seq) {
        c.problem(format!(
            "{via}: frame {seq} was handed to a handle as sent, but its SEND_BATCH's reply counted it as not accepted (its caller sends it again)"
        ));
    }
    let adapters = lock(&c.adapter_by_file);
    let (here, there) = (adapters.get(&file).copied(), by.file.and_then(|f| adapters.get(&f).copied()));
    drop(adapters);
    if let (Some(a), Some(b)) = (here, there) {
        if a != b {
            c.problem(format!("{via}: frame {seq}, sent on {}, was handed to a handle of {}", c.names[b], c.names[a]));
        }
    }
    let own = by.file == Some(file);
    match lock(&c.rx.local).get(&file).copied() {
        Some(LocalSends::None) => c.problem(format!(
            "{via}: frame {seq}, a send of this host, reached a handle that takes none (LocalSends::None)"
        )),
        Some(LocalSends::Others) if own => c.problem(format!(
            "{via}: frame {seq} came back to the handle that sent it, which asked only for other handles' sends (LocalSends::Others)"
        )),
        _ => {}
    }
    if !lock(&c.local.seen).insert((file, seq)) {
        c.problem(format!("{via}: frame {seq}, sent once by a handle of this host, reached one handle twice"));
    }
    if let Some(f) = filter_refusing(c, file, by.dst) {
        c.problem(format!(
            "{via}: a handle whose filter is {:#x} got frame {seq}, sent by a handle of this host to {:?}",
            f.bits(),
            by.dst
        ));
    }
    // The tag its send asked for, or else the one the frame had inline
    // (an 802.1Q one; not known of a record cut before its TCI).
    let inline = match (data.get(12..14), data.get(14..16)) {
        (Some([0x81, 0x00]), Some(t)) => Some(Some(u16::from_be_bytes([t[0], t[1]]))),
        (Some([0x81, 0x00]), None) | (None, _) => None,
        _ => Some(None),
    };
    let tag = r.flags & frame_flags::TAGGED != 0;
    let want = by.tci.map(Some).or(inline).map(|t| t.map_or((false, 0), |t| (true, t)));
    if want.is_some_and(|w| (tag, r.tci) != w) {
        c.problem(format!(
            "{via}: frame {seq}, sent with 802.1Q TCI {:?}, was handed over with TAGGED {tag} and TCI {:#06x} ({} bytes)",
            by.tci,
            r.tci,
            data.len()
        ));
    }
}
