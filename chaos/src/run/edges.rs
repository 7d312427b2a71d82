//! The counts of the rarer things a schedule did, which a clean verdict
//! carries and the summary prints: a mode that tests nothing is told apart
//! from one that passes.

use serde::{Deserialize, Serialize};

/// Counts of the rarer things a schedule did that Windows allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edges {
    /// Requests that reached the driver after their handle's cleanup (one
    /// thread's request in flight as another closed the handle).
    pub late_requests: u64,
    /// Cancels of requests still in the driver's dispatch routine.
    pub early_cancels: u64,
    /// Receive indications to a binding NDIS was restarting.
    pub restarting_indications: u64,
    /// Indications a miniport made low on receive buffers.
    #[serde(default)]
    pub low_indications: u64,
    /// Status indications that reached a binding before its bind completed
    /// (`bind-status=`), and bound bindings whose link state was judged
    /// against their adapter's (`run/links.rs`).
    #[serde(default)]
    pub bind_statuses: u64,
    #[serde(default)]
    pub links_checked: u64,
    /// Waits for BindsComplete that pended (`late_binds` schedules).
    pub binds_waited: u64,
    /// Schedules on a Windows older than 11 24H2 (`Schedule::
    /// ndis_version`) where rawnic was found registered as NDIS 6.30.
    #[serde(default)]
    pub old_ndis: u64,
    /// OID requests the miniports failed (`oid-fail=`, `FailOids`).
    #[serde(default)]
    pub oids_failed: u64,
    /// Sends the miniports failed (`send-fail=`).
    #[serde(default)]
    pub sends_failed: u64,
    /// Bindings whose send accounts were checked at the end.
    #[serde(default)]
    pub accounts_checked: u64,
    /// Handles whose receive accounts were checked at the end.
    #[serde(default)]
    pub rx_accounts_checked: u64,
    /// Frames those handles' full queues dropped (counted apart from those
    /// delivered, which the check compares with what was read).
    #[serde(default)]
    pub rx_drops_checked: u64,
    /// Pause and restart events whose order was checked against the one
    /// before them on the same handle and binding.
    #[serde(default)]
    pub events_checked: u64,
    /// `FILTER_FAILED` events read and judged (`accounts::check_events`).
    #[serde(default)]
    pub filter_failed_told: u64,
    /// `NdisReEnumerateProtocolBindings` calls the driver made (after a
    /// bind it declined), and the binds they brought that succeeded.
    #[serde(default)]
    pub reenumerations: u64,
    #[serde(default)]
    pub rebinds: u64,
    /// Stalls made between two of the driver's instructions
    /// (`--preempt`).
    #[serde(default)]
    pub preemptions: u64,
    /// Stalls inside the handlers a schedule aimed at (`Schedule::slow`).
    #[serde(default)]
    pub slow_stalls: u64,
    /// Multicast lists joined (`gen/joins.rs`: sets that succeeded), and
    /// adapters' lists found to hold the NIC's group a handle left open
    /// had joined.
    #[serde(default)]
    pub joins: u64,
    #[serde(default)]
    pub groups_checked: u64,
    /// Adapters whose multicast list was found to be exactly the union of
    /// the lists of the handles open on them (`unions.rs`).
    #[serde(default)]
    pub unions_checked: u64,
    /// Adapters whose packet filter was found to be the union of what the
    /// handles open on them were told they get, before any request of the
    /// schedule's end (`owed.rs`).
    #[serde(default)]
    pub filters_checked: u64,
    /// Of those two, the adapters judged once a shortage of memory ended
    /// (the schedule ran with low resources and some allocation was
    /// refused): `unions::settle`, `owed::ask_owed`.
    #[serde(default)]
    pub unions_after_shortage: u64,
    #[serde(default)]
    pub filters_after_shortage: u64,
    /// Records of injected frames the received-frames oracle checked
    /// (`received.rs`), and how many of those frames lay in shaped bursts'
    /// indications (NBLs of several sizes, per-NBL 802.1Q info, MDL
    /// layouts: `Shape`).
    #[serde(default)]
    pub rx_checked: u64,
    #[serde(default)]
    pub shaped_frames: u64,
    /// Of the records checked, those of frames NDIS looped back and of
    /// coalesced units (`Shape::loopbacks`, `Shape::coalesces`, and whole
    /// bursts so marked).
    #[serde(default)]
    pub rx_looped: u64,
    #[serde(default)]
    pub rx_coalesced: u64,
    /// Of the records checked, those of frames with a tag inline
    /// (`gen/tags.rs`).
    #[serde(default)]
    pub rx_tagged_inline: u64,
    /// Records whose receive time was judged against their burst's
    /// indication, and pairs of a burst's records in one read whose
    /// stamps' order was (`received::check_stamp`, `in_order`).
    pub rx_stamped: u64,
    pub rx_stamp_pairs: u64,
    /// Records judged against their handle's snap length.
    pub rx_snapped: u64,
    /// The end's probe (`probe.rs`): handles judged, and the frames they
    /// had to count (delivered or dropped for want of room).
    #[serde(default)]
    pub probe_handles: u64,
    #[serde(default)]
    pub probe_frames: u64,
    /// Probes of a sole handle with rings whose adapter's filter was left
    /// wider than the handle's (a narrowing set the miniport still held).
    #[serde(default)]
    pub probe_widened: u64,
    /// Send probes judged: the end's probe frames sent by one of the
    /// probed handles (`probe::send_probe`).
    #[serde(default)]
    pub send_probes: u64,
    /// Probes whose adapter failed packet-filter sets as the probe's own
    /// handles opened (`probe.rs`).
    #[serde(default)]
    pub failing_probes: u64,
    /// Frames read back at the end from the queues of handles left open.
    #[serde(default)]
    pub queued_read_at_end: u64,
    /// Frames the end's floods read back from a queue that grew while it
    /// held retained frames (`flood.rs`).
    #[serde(default)]
    pub flooded: u64,
    /// Handles left open found told the filter they asked for, less only
    /// what their adapter does not allow (`accounts::check_granted`).
    #[serde(default)]
    pub filters_granted: u64,
    /// PnP events sent while a driver's OID call was stalled inside
    /// `NdisOidRequest` (`PnpAction::InOidCall`).
    #[serde(default)]
    pub in_oid_calls: u64,
    /// OPENs sent while an unbind of their adapter had begun
    /// (`IoAction::AwaitUnbind`), and those of them that succeeded.
    #[serde(default)]
    pub opens_in_unbinds: u64,
    #[serde(default)]
    pub opened_in_unbinds: u64,
    /// `NdisOidRequest` calls found stalled at their end, and cancel
    /// routines found stalled with the cancel spin lock held, as their
    /// spells ended (`NicAction::StallOidReturns`, `StallCancels`).
    #[serde(default)]
    pub late_returns: u64,
    #[serde(default)]
    pub slow_cancels: u64,
    /// Capture programs the driver took, and records the program oracle
    /// judged under one that drops or cuts (`programs.rs`).
    #[serde(default)]
    pub programs_set: u64,
    #[serde(default)]
    pub programs_judged: u64,
    /// Of those, records of random programs (`randprog.rs`) whose answer
    /// the explorer's own evaluator could tell from the record.
    #[serde(default)]
    pub random_judged: u64,
    /// Damaged requests (`IoAction::Mutated`) sent: SET_PROGRAMs, and
    /// RING_ATTACHes, WAITs, KICKs and DETACHes.
    #[serde(default)]
    pub damaged_programs: u64,
    #[serde(default)]
    pub damaged_ring_requests: u64,
    /// Damaged OPEN, SEND_BATCH, OID and header-only requests the driver
    /// had to refuse, judged for their status (`handles/requests.rs`).
    #[serde(default)]
    pub damaged_refusals: u64,
    /// Successful QUERY_OID replies whose answer was judged against the
    /// miniport's (`run/oid_answers.rs`).
    #[serde(default)]
    /// Pairs of one handle's GET_STATS replies, the second asked after
    /// the first came back, whose cumulative counters were compared
    /// (`handles::stats`).
    pub stats_compared: u64,
    /// Entries of LIST_BINDINGS replies judged (`handles::check_list`).
    pub list_entries: u64,
    /// RESTARTED events whose MTU was judged (`accounts::check_restart_mtu`).
    pub restart_mtus: u64,
    pub oid_answers_judged: u64,
    /// SET_OID replies judged against the sets the miniports answered
    /// (`set_answers::check`).
    pub sets_judged: u64,
    /// Frames handle threads sent that were judged as they reached an
    /// adapter's wire (`wire.rs`).
    #[serde(default)]
    pub wire_frames: u64,
    /// Frames said sent that were looked for on the wires and among the
    /// sends NDIS failed (`wire.rs`).
    #[serde(default)]
    pub wire_accepted: u64,
    /// Records of frames the handles sent that the driver handed to other
    /// handles, judged by where they came from (`local.rs`).
    #[serde(default)]
    pub local_records: u64,
    /// The ring receive path's rarer branches, as the rings' counters and
    /// descriptors told them (attaches whose model the user's garbage did
    /// not void): frames dropped for a full rx ring, fill entries that
    /// named no frame's first byte, indices out of bounds, and rx
    /// descriptors of cut frames.
    #[serde(default)]
    pub ring_full: u64,
    #[serde(default)]
    pub fill_invalid: u64,
    #[serde(default)]
    pub bad_index: u64,
    #[serde(default)]
    pub ring_cut: u64,
    /// The deepest the driver's frames went on a kernel stack below a
    /// handler's entry (ndisim's `StackReport`; the budget is 8 KiB), in
    /// bytes: summed runs keep the most, not a sum.
    #[serde(default)]
    pub stack_deepest: u64,
    /// Schedules with refused allocations (`Schedule::fail_nth`) whose
    /// first refusal landed in `DriverEntry` (which failed), before the
    /// actors ran (`DriverEntry` survived it, or the binds at the start),
    /// in the body (the actors, a late bind), or never (the run ended
    /// before the `n`th allocation, or the end checks ended the refusals).
    #[serde(default)]
    pub refused_in_entry: u64,
    #[serde(default)]
    pub refused_in_start: u64,
    #[serde(default)]
    pub refused_in_body: u64,
    #[serde(default)]
    pub refusals_unreached: u64,
    /// Schedules whose burst lasts into the teardown (`FailNth::lasting`),
    /// and those whose first refusal came after the first end check (in
    /// the end checks, the closes, the unbinds or the unload; none of the
    /// four above).
    #[serde(default)]
    pub lasting_bursts: u64,
    #[serde(default)]
    pub refused_in_teardown: u64,
    /// Allocations refused after the first end check (by lasting bursts;
    /// the unload's are not counted).
    #[serde(default)]
    pub refused_after_check: u64,
    /// Adapters whose pending queries were answered on arrival
    /// (`Schedule::answer_on_arrival`).
    #[serde(default)]
    pub answering_on_arrival: u64,
    /// Schedules run twice with different garbage (`Schedule::twin`), and
    /// the requests whose results the two runs compared.
    #[serde(default)]
    pub twins: u64,
    #[serde(default)]
    pub twin_outputs: u64,
    /// ndisim's knobs (`run/knobs.rs`): work items found waiting as the
    /// worker thread's holds ended, returns to D0 held before their
    /// set-power event, allocation spells aimed (and the allocations
    /// they stalled), and requests cancelled from threads nobody waits
    /// for.
    #[serde(default)]
    pub work_items_held: u64,
    #[serde(default)]
    pub d0_held: u64,
    #[serde(default)]
    pub allocation_spells: u64,
    #[serde(default)]
    pub allocations_stalled: u64,
    /// Allocation spells handle threads cast (`IoAction::StallAllocations`).
    #[serde(default)]
    pub timed_spells: u64,
    #[serde(default)]
    pub cancels_away: u64,
    /// Stalls aimed at a spin-lock acquire inside a handler
    /// (`PnpAction::StallLockAcquire`), and those made.
    #[serde(default)]
    pub lock_aims: u64,
    #[serde(default)]
    pub lock_stalls: u64,
    /// Stalls aimed at a call inside a handler (`PnpAction::StallCall`),
    /// and those made.
    #[serde(default)]
    pub call_aims: u64,
    #[serde(default)]
    pub call_stalls: u64,
    /// Schedules whose last cancel-routine stall aimed (of those) came,
    /// and the routines still stalled as the driver unloaded.
    #[serde(default)]
    pub cancel_stalls: u64,
    #[serde(default)]
    pub cancels_in_unload: u64,
}

/// Where `RingEdges` are counted while a schedule runs.
#[derive(Default)]
pub struct RingEdges {
    pub ring_full: std::sync::atomic::AtomicU64,
    pub fill_invalid: std::sync::atomic::AtomicU64,
    pub bad_index: std::sync::atomic::AtomicU64,
    pub cut: std::sync::atomic::AtomicU64,
}

impl std::ops::AddAssign for Edges {
    fn add_assign(&mut self, e: Edges) {
        self.late_requests += e.late_requests;
        self.early_cancels += e.early_cancels;
        self.slow_stalls += e.slow_stalls;
        self.restarting_indications += e.restarting_indications;
        self.low_indications += e.low_indications;
        self.bind_statuses += e.bind_statuses;
        self.links_checked += e.links_checked;
        self.binds_waited += e.binds_waited;
        self.old_ndis += e.old_ndis;
        self.oids_failed += e.oids_failed;
        self.sends_failed += e.sends_failed;
        self.accounts_checked += e.accounts_checked;
        self.rx_accounts_checked += e.rx_accounts_checked;
        self.rx_drops_checked += e.rx_drops_checked;
        self.events_checked += e.events_checked;
        self.filter_failed_told += e.filter_failed_told;
        self.reenumerations += e.reenumerations;
        self.rebinds += e.rebinds;
        self.preemptions += e.preemptions;
        self.joins += e.joins;
        self.groups_checked += e.groups_checked;
        self.unions_checked += e.unions_checked;
        self.filters_checked += e.filters_checked;
        self.unions_after_shortage += e.unions_after_shortage;
        self.filters_after_shortage += e.filters_after_shortage;
        self.rx_checked += e.rx_checked;
        self.shaped_frames += e.shaped_frames;
        self.rx_looped += e.rx_looped;
        self.rx_coalesced += e.rx_coalesced;
        self.rx_tagged_inline += e.rx_tagged_inline;
        self.rx_stamped += e.rx_stamped;
        self.rx_stamp_pairs += e.rx_stamp_pairs;
        self.rx_snapped += e.rx_snapped;
        self.probe_handles += e.probe_handles;
        self.probe_widened += e.probe_widened;
        self.send_probes += e.send_probes;
        self.failing_probes += e.failing_probes;
        self.probe_frames += e.probe_frames;
        self.queued_read_at_end += e.queued_read_at_end;
        self.flooded += e.flooded;
        self.filters_granted += e.filters_granted;
        self.in_oid_calls += e.in_oid_calls;
        self.opens_in_unbinds += e.opens_in_unbinds;
        self.opened_in_unbinds += e.opened_in_unbinds;
        self.late_returns += e.late_returns;
        self.slow_cancels += e.slow_cancels;
        self.programs_set += e.programs_set;
        self.programs_judged += e.programs_judged;
        self.random_judged += e.random_judged;
        self.damaged_programs += e.damaged_programs;
        self.damaged_ring_requests += e.damaged_ring_requests;
        self.damaged_refusals += e.damaged_refusals;
        self.oid_answers_judged += e.oid_answers_judged;
        self.sets_judged += e.sets_judged;
        self.wire_frames += e.wire_frames;
        self.wire_accepted += e.wire_accepted;
        self.local_records += e.local_records;
        self.stats_compared += e.stats_compared;
        self.list_entries += e.list_entries;
        self.restart_mtus += e.restart_mtus;
        self.ring_full += e.ring_full;
        self.fill_invalid += e.fill_invalid;
        self.bad_index += e.bad_index;
        self.ring_cut += e.ring_cut;
        self.stack_deepest = self.stack_deepest.max(e.stack_deepest);
        self.refused_in_entry += e.refused_in_entry;
        self.refused_in_start += e.refused_in_start;
        self.refused_in_body += e.refused_in_body;
        self.refusals_unreached += e.refusals_unreached;
        self.lasting_bursts += e.lasting_bursts;
        self.refused_in_teardown += e.refused_in_teardown;
        self.refused_after_check += e.refused_after_check;
        self.answering_on_arrival += e.answering_on_arrival;
        self.twins += e.twins;
        self.twin_outputs += e.twin_outputs;
        self.work_items_held += e.work_items_held;
        self.d0_held += e.d0_held;
        self.allocation_spells += e.allocation_spells;
        self.allocations_stalled += e.allocations_stalled;
        self.timed_spells += e.timed_spells;
        self.cancels_away += e.cancels_away;
        self.lock_aims += e.lock_aims;
        self.lock_stalls += e.lock_stalls;
        self.call_aims += e.call_aims;
        self.call_stalls += e.call_stalls;
        self.cancel_stalls += e.cancel_stalls;
        self.cancels_in_unload += e.cancels_in_unload;
    }
}
