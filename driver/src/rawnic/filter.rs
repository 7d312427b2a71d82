//! The adapter's packet filter: the union of the handles' filters, within
//! what the adapter allows; and the truth about it for each handle.
//!
//! An adapter may not support a bit a handle asks for (its
//! `SupportedPacketFilters` lack it), or may refuse it when the filter is
//! set (`NDIS_STATUS_NOT_SUPPORTED` for promiscuous mode is common on Wi-Fi).
//! Either way the bit is not allowed on the binding any more, each handle
//! gets what the adapter allows ([`rawnic_logic::filter::effective`]), and
//! a handle that lost bits is told with `event::FILTER_REFUSED`. An open
//! with `open_flags::STRICT_FILTER` fails instead, when the loss is known
//! at the open. The bit is never asked for again; but a set already on its
//! way with it (a restart's, made before the refusal was known) that
//! succeeds shows the adapter takes it, and it is allowed again.
//!
//! Only a refusal that says the adapter does not support the filter asked
//! for bans a bit (`SetFailure::Refused`), and only a bit it is known to
//! refuse: a refused set that added several refusable bits is followed by
//! a probe, a set without all but one of them (`Blame::Probe`), and a bit
//! the adapter takes is never banned. A set that failed for any other
//! reason bans nothing: the filter is owed, and set again later.

use super::binding::{BindingInfo, FilterSet};
use super::client::Completions;
use super::{OidTag, Rawnic};
use crate::kernel::alloc::try_vec;
use crate::kernel::debug::{LEVEL_ERROR, LEVEL_INFO};
use crate::kernel::oid::OidKind;
use crate::kernel::protocol::{Binding, NdisStatus};
use crate::kprint;
use alloc::sync::Arc;
use ndis_sys::{
    NDIS_STATUS_CLOSING, NDIS_STATUS_INVALID_DATA, NDIS_STATUS_LOW_POWER_STATE, NDIS_STATUS_MEDIA_DISCONNECTED,
    NDIS_STATUS_NOT_RECOGNIZED, NDIS_STATUS_NOT_SUPPORTED, NDIS_STATUS_PAUSED, NDIS_STATUS_REQUEST_ABORTED,
    NDIS_STATUS_RESET_IN_PROGRESS, NDIS_STATUS_RESOURCES, OID_GEN_CURRENT_PACKET_FILTER,
};
use rawnic_logic::filter::{Blame, REFUSABLE, blame, covers, gets, lost};
use rawnic_proto::{EventRecord, PacketFilter, event};

/// Work-item retries of an owed filter in a row (`filter_retry_later`).
const FILTER_RETRIES: u8 = 4;

/// What a failed packet-filter set says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetFailure {
    /// The adapter does not support the filter asked for: the refusable
    /// bits the set added are to blame (`blame`). NdisOidRequest's
    /// reference gives `NDIS_STATUS_NOT_SUPPORTED` and
    /// `NDIS_STATUS_NOT_RECOGNIZED` for an operation the driver below does
    /// not support (for this OID, whose set every miniport must support, it
    /// is the filter that is not), and `NDIS_STATUS_INVALID_DATA` for data
    /// in the request's buffer that is not valid for the OID (here the
    /// data is the filter's bits).
    Refused,
    /// The adapter could not take it now: for want of resources, during a
    /// reset (the reference says neither means a later request fails the
    /// same way), closing, paused, in low power, disconnected, or the
    /// request was aborted (by a reset or a cancel). Nothing is banned or
    /// told; the filter is owed, and set again later.
    Passing,
    /// Any other failure: `NDIS_STATUS_FAILURE` (the reference's
    /// non-specific default), `NDIS_STATUS_NOT_ACCEPTED` (the NIC failed a
    /// set it tried), a device in trouble, or a status about the request
    /// rather than the filter (`INVALID_OID`, `INVALID_LENGTH`). It says
    /// nothing about any bit: nothing is banned (a bit banned for it would
    /// be lost for the binding's life on an adapter that supports it); the
    /// filter is owed, and the handles that miss frames are told
    /// (`tell_filter_failed`).
    Failed,
}

impl SetFailure {
    fn of(status: NdisStatus) -> Self {
        match status.0 {
            NDIS_STATUS_NOT_SUPPORTED | NDIS_STATUS_NOT_RECOGNIZED | NDIS_STATUS_INVALID_DATA => SetFailure::Refused,
            NDIS_STATUS_RESOURCES
            | NDIS_STATUS_CLOSING
            | NDIS_STATUS_REQUEST_ABORTED
            | NDIS_STATUS_RESET_IN_PROGRESS
            | NDIS_STATUS_MEDIA_DISCONNECTED
            | NDIS_STATUS_PAUSED
            | NDIS_STATUS_LOW_POWER_STATE => SetFailure::Passing,
            _ => SetFailure::Failed,
        }
    }
}

/// The set to send for `wanted`, the union the handles need: with a probe
/// waiting (`BindingInfo::filter_probe`, which it takes), without the
/// probe's bits, if `wanted` still adds every refusable bit of the refused
/// set the probe follows (else it would not tell which one was refused).
fn next_set(info: &mut BindingInfo, wanted: PacketFilter, restart: bool) -> FilterSet {
    let (added, drop) = core::mem::take(&mut info.filter_probe);
    let probe = if !drop.is_empty() && wanted.contains(added) && !info.packet_filter.intersects(added) {
        drop
    } else {
        PacketFilter::NONE
    };
    FilterSet { value: wanted - probe, restart, probe }
}

/// What the adapter's filter takes in for the handles of `b`: every bit,
/// unless it owes them their filter (a set failed, or could not be sent,
/// and none succeeded since); then what the filter it has covers. A
/// handle gets its own filter within this (GET_STATS's effective filter),
/// from the wire or from this host's sends (`local.rs`). The second value:
/// the filter is owed for a passing reason (tried again).
pub(super) fn granted(b: &Binding<Rawnic>) -> (PacketFilter, bool) {
    let info = b.info.lock();
    if info.filter_owed { (covers(info.packet_filter), !info.filter_failing) } else { (PacketFilter::ALL, false) }
}

impl Rawnic {
    /// The filter the handles need now, within what the adapter allows.
    pub(super) fn wanted_filter(b: &Binding<Rawnic>) -> PacketFilter {
        let table = b.clients.lock();
        let allowed = b.info.lock().allowed_filters();
        b.wanted_filter(&table, allowed)
    }

    /// Sends the set of `wanted` (the caller marked it in flight); false
    /// when it could not be sent (then it is no longer in flight).
    ///
    /// NDIS may complete a set inside `NdisOidRequest`, and that completion
    /// may ask for the next set (the adapter refused bits, or the handles
    /// changed meanwhile). Sent from inside the completion, each such set
    /// would add a level of frames to the kernel stack (about 1.8 KiB
    /// each). So one loop per binding sends them: a set asked for while a
    /// thread is in the loop is left in `filter_next` for it, and counts as
    /// on its way.
    fn send_filter(&self, b: &Arc<Binding<Rawnic>>, set: FilterSet) -> bool {
        {
            let mut info = b.info.lock();
            if info.filter_sending {
                // One set is in flight at a time; a restart's step is kept
                // if a set asked for meanwhile replaces the one waiting.
                let carried = info.filter_next.is_some_and(|s| s.restart);
                info.filter_next = Some(FilterSet { restart: set.restart || carried, ..set });
                return true;
            }
            info.filter_sending = true;
        }
        let first = self.send_filter_once(b, set);
        loop {
            let next = {
                let mut info = b.info.lock();
                let next = info.filter_next.take();
                if next.is_none() {
                    info.filter_sending = false;
                }
                next
            };
            let Some(set) = next else { return first };
            if !self.send_filter_once(b, set) && set.restart {
                // The restart step this set carried ends here; the filter
                // is owed, and set once the binding runs.
                self.restart_step(b);
            }
        }
    }

    /// One packet-filter set, as `send_filter` describes.
    fn send_filter_once(&self, b: &Arc<Binding<Rawnic>>, set: FilterSet) -> bool {
        let sent = match try_vec(4) {
            Ok(mut v) => {
                v.extend_from_slice(&set.value.bits().to_le_bytes());
                self.internal_oid(b, OidKind::Set, OID_GEN_CURRENT_PACKET_FILTER, v, OidTag::PacketFilter(set))
            }
            Err(_) => false,
        };
        if !sent {
            {
                let mut info = b.info.lock();
                info.filter_in_flight = false;
                info.filter_owed = true;
                // (A passing reason: tried again.)
                info.filter_failing = false;
            }
            kprint!(LEVEL_ERROR, "{}: packet filter {:#x} not sent; it is owed", b.name, set.value);
            if !set.restart {
                // (A restart's is set when the binding runs.)
                self.filter_retry_later(b);
            }
        }
        sent
    }

    /// An owed filter is set again from the binding's work item, at most
    /// `FILTER_RETRIES` times in a row (a shortage that lasts is not
    /// retried in a loop); an open or a close of a handle that receives, a
    /// restart, a LIST, a handle's GET_STATS, or a read or RING_WAIT that
    /// waits for frames tries again.
    fn filter_retry_later(&self, b: &Arc<Binding<Rawnic>>) {
        let queue = {
            let mut info = b.info.lock();
            if info.closing || info.filter_retries >= FILTER_RETRIES {
                false
            } else {
                info.filter_retries += 1;
                info.filter_later = true;
                true
            }
        };
        if queue {
            b.defer_work();
        }
    }

    /// For a request of a handle open on `b` (PASSIVE_LEVEL): a filter the
    /// adapter owes is set again, whatever the work item's count, and so
    /// is a multicast union it may not have (a set of it that failed, or
    /// could not be made or sent for want of memory, is otherwise tried
    /// again only at the next change, restart or return to D0).
    pub(super) fn set_owed(&self, b: &Arc<Binding<Rawnic>>) {
        if b.info.lock().filter_owed {
            self.update_packet_filter(b);
        }
        self.multicast_if_stale(b);
    }

    /// `set_owed` for every binding (for a listing), one binding at a time
    /// outside the list's lock.
    pub(super) fn set_all_owed(&self) {
        let mut i = 0;
        loop {
            let b = {
                let list = self.bindings.lock();
                let Some(b) = list.get(i) else { return };
                b.clone()
            };
            self.set_owed(&b);
            i += 1;
        }
    }

    /// In the binding's work item: an owed filter is set again.
    pub(super) fn filter_deferred(&self, b: &Arc<Binding<Rawnic>>) {
        if core::mem::take(&mut b.info.lock().filter_later) {
            self.set_packet_filter(b);
        }
    }

    /// Sets the adapter's packet filter to what the handles need, if it
    /// changed (or is owed) and the binding runs (a restart sets it too).
    /// For an open, a close or a restart: an owed filter that the work
    /// item gave up on is tried again.
    pub(super) fn update_packet_filter(&self, b: &Arc<Binding<Rawnic>>) {
        b.info.lock().filter_retries = 0;
        self.set_packet_filter(b);
    }

    /// `update_packet_filter`, but for the work item's retries.
    ///
    /// The union is taken under the client table's lock, and the set
    /// marked in flight before that lock goes: a handle that opens or
    /// closes after it finds the set in flight and leaves the next one
    /// owed to its completion (`filter_dirty`). Taken before the lock, a
    /// union could miss a handle whose own set was sent and completed
    /// meanwhile, and then go out after it: the adapter lost that handle's
    /// bits, with nothing owed.
    fn set_packet_filter(&self, b: &Arc<Binding<Rawnic>>) {
        let send = {
            // Lock order: the client table, the binding's info.
            let table = b.clients.lock();
            let mut info = b.info.lock();
            if info.closing
                || info.restart.is_some()
                || !matches!(b.state(), rawnic_logic::state::BindingState::Running)
            {
                None
            } else if info.filter_in_flight {
                info.filter_dirty = true;
                None
            } else {
                let wanted = b.wanted_filter(&table, info.allowed_filters());
                let set = next_set(&mut info, wanted, false);
                if info.packet_filter != set.value || info.filter_owed {
                    info.filter_in_flight = true;
                    Some(set)
                } else {
                    None
                }
            }
        };
        if let Some(set) = send {
            self.send_filter(b, set);
        }
    }

    /// During a restart: sets the filter again (the stack below may have
    /// changed while paused). Returns whether a set is on its way (it
    /// completes one restart step); `None` when none is needed.
    pub(super) fn restart_filter(&self, b: &Arc<Binding<Rawnic>>) -> Option<bool> {
        // The union and the mark in flight under the table's lock, as in
        // `set_packet_filter`.
        let set = {
            let table = b.clients.lock();
            let mut info = b.info.lock();
            let wanted = b.wanted_filter(&table, info.allowed_filters());
            if wanted.is_empty() && info.packet_filter.is_empty() && !info.filter_owed {
                return None;
            }
            info.filter_in_flight = true;
            next_set(&mut info, wanted, true)
        };
        Some(self.send_filter(b, set))
    }

    /// A packet-filter set completed.
    pub(super) fn filter_set_done(&self, b: &Arc<Binding<Rawnic>>, set: FilterSet, status: NdisStatus) {
        let FilterSet { value, restart, probe } = set;
        let ok = status == NdisStatus::SUCCESS;
        let failure = (!ok).then(|| SetFailure::of(status));
        // A failure that says nothing about the filter (resources, a
        // reset): the filter is owed, and set again later.
        let passing = failure == Some(SetFailure::Passing);
        let (again, refused, retry, failing, recovered, regained) = {
            let mut info = b.info.lock();
            info.filter_in_flight = false;
            // Bits of this set already known to be refused (two sets may be
            // in flight, one from before a pause and a restart's): whatever
            // it failed for, it is retried without them, and nothing else
            // is put down to it (it may have failed for them).
            let known = value & info.refused_filters;
            let mut refused = PacketFilter::NONE;
            let mut probing = false;
            if ok {
                // A probe taken: the adapter refused the bits it left out
                // (it took the rest), unless a set that carried them was
                // taken meanwhile.
                refused = probe & !info.packet_filter & !info.refused_filters;
            } else if failure == Some(SetFailure::Refused) && known.is_empty() {
                match blame(value, info.packet_filter) {
                    Blame::Nothing => {}
                    Blame::Bits(bits) => refused = bits,
                    Blame::Probe { drop } => {
                        info.filter_probe = (value & !info.packet_filter & REFUSABLE, drop);
                        probing = true;
                    }
                }
            }
            let recovered = ok && core::mem::take(&mut info.filter_failure_told);
            // Bits a set took that an earlier refusal was put down to: the
            // adapter takes them after all (two sets may be in flight
            // around a restart: the one from before the pause refused, the
            // restart's, made before that was known, set once the stack
            // below came back). They are allowed again.
            let regained = if ok { value & info.refused_filters } else { PacketFilter::NONE };
            if ok {
                info.packet_filter = value;
                info.refused_filters &= !value;
                info.filter_owed = false;
                info.filter_failing = false;
                info.filter_retries = 0;
            }
            info.refused_filters |= refused;
            // A failed set that carried bits known to be refused (now, or
            // by an earlier set's failure), or that a probe follows, is
            // sent again at once.
            let retry = !ok && (!known.is_empty() || !refused.is_empty() || probing);
            // Any other failure leaves the filter owed: a passing one, or
            // one no bit can be blamed for (a device in trouble for a
            // while).
            if !ok && !retry {
                info.filter_owed = true;
            }
            // A failure no bit can be blamed for (and not one a set
            // without the refused bits, or a probe, follows): the handles
            // are told what they get.
            let failing = !ok && !retry && !passing;
            if !ok && !retry {
                // What the last failure met is what GET_STATS says: a
                // passing one after this is tried again (`FILTER_PENDING`).
                info.filter_failing = failing;
            }
            info.filter_failure_told |= failing;
            (core::mem::take(&mut info.filter_dirty), refused, retry, failing, recovered, regained)
        };
        if !regained.is_empty() {
            // The handles that lost them get them back (`reconcile_filters`
            // widens them, silently: no event says a bit came back).
            kprint!(LEVEL_INFO, "{}: the adapter took filter bits {regained:#x} it had refused", b.name);
            self.reconcile_filters(b);
        }
        if !refused.is_empty() {
            // The adapter will not take these bits: the handles get what
            // it allows (and a failed set is sent again without them).
            kprint!(LEVEL_INFO, "{}: the adapter refused filter bits {refused:#x}", b.name);
            self.reconcile_filters(b);
        }
        // A set that went out before a change of the handles' filters
        // that another set carried, and completed after it (two may be in
        // flight: one from before a pause and a restart's), leaves the
        // adapter with an old union: the one of now is set.
        let again = again || (ok && Self::wanted_filter(b) != value);
        if failing {
            self.tell_filter_failed(b);
        } else if recovered {
            self.filter_no_longer_failing(b);
        }
        if !ok {
            kprint!(LEVEL_ERROR, "{}: setting packet filter {value:#x} failed: {:#x}", b.name, status.0);
        }
        if retry {
            if restart {
                // The retry carries this restart step.
                // (One not sent is owed: the step ends all the same.)
                if self.restart_filter(b) != Some(true) {
                    self.restart_step(b);
                }
            } else {
                self.set_packet_filter(b);
            }
            return;
        }
        if restart {
            // No failure of the set fails the restart: ProtocolNetPnPEvent's
            // page has a protocol driver always succeed NetEventRestart
            // (and a failed one would leave the binding Paused until NDIS
            // restarts it again, which it may never do). The filter is
            // owed and set again once the binding runs (`restarted`); a
            // failure no bit can be blamed for was told to the handles
            // (FILTER_FAILED) above. Before, such a failure failed the
            // restart: ndisim's pnp-status check, chaos seed 69000022.
            self.restart_step(b);
        } else if !ok {
            self.filter_retry_later(b);
        }
        // (Not `update_packet_filter`, which starts the work item's count
        // again: a set that keeps failing while another is asked for
        // would be retried for ever.)
        if again {
            self.set_packet_filter(b);
        }
    }

    /// The adapter failed to take the filter, blaming no bit: each handle
    /// that receives and misses frames for it (its filter is not within the
    /// adapter's, unchanged) is told once, `event::FILTER_FAILED`, with
    /// what it gets meanwhile and what it misses.
    fn tell_filter_failed(&self, b: &Binding<Rawnic>) {
        let mut done = Completions::new();
        {
            // Lock order: the client table, the binding's info, a handle.
            let table = b.clients.lock();
            let has = b.info.lock().packet_filter;
            for c in table.iter() {
                let mut st = c.state.lock_dpr(table.at_dispatch());
                if st.filter.receives_nothing() || st.filter_failed_told {
                    continue;
                }
                let wants = st.filter.packet_filter();
                let misses = lost(wants, has);
                if misses.is_empty() {
                    continue;
                }
                st.filter_failed_told = true;
                let ev = EventRecord {
                    kind: event::FILTER_FAILED,
                    binding_id: b.id,
                    filter: gets(wants, covers(has)),
                    refused: misses,
                    ..EventRecord::default()
                };
                st.events.push_record(ev);
                st.serve_event_waits(&mut done);
            }
        }
        done.complete();
    }

    /// A set succeeded after failures `tell_filter_failed` told of: a later
    /// failure is told again.
    fn filter_no_longer_failing(&self, b: &Binding<Rawnic>) {
        let table = b.clients.lock();
        for c in table.iter() {
            c.state.lock_dpr(table.at_dispatch()).filter_failed_told = false;
        }
    }

    /// Brings each handle's filter in line with what the adapter allows
    /// now; a handle that lost bits gets `event::FILTER_REFUSED`.
    pub(super) fn reconcile_filters(&self, b: &Binding<Rawnic>) {
        let mut done = Completions::new();
        {
            // Lock order: the client table, the binding's info, a handle.
            let table = b.clients.lock();
            let allowed = b.info.lock().allowed_filters();
            for c in table.iter() {
                let mut st = c.state.lock_dpr(table.at_dispatch());
                if st.filter.receives_nothing() {
                    continue;
                }
                let lost = st.filter.restrict(allowed);
                if !lost.is_empty() {
                    let ev = EventRecord {
                        kind: event::FILTER_REFUSED,
                        binding_id: b.id,
                        filter: st.filter.packet_filter(),
                        refused: lost,
                        ..EventRecord::default()
                    };
                    st.events.push_record(ev);
                    st.serve_event_waits(&mut done);
                }
            }
        }
        done.complete();
    }
}
