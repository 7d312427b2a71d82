//! Restarts that run short: of the driver's memory (ndisim's
//! `refuse_pool_allocations`), or of the miniport's (a packet-filter set it
//! answers `NDIS_STATUS_RESOURCES`). None of them leaves the binding Paused
//! (NDIS may never restart it again): the binding runs with what it has,
//! and what it owes is done once it can be.

use ndis_sys::OID_GEN_CURRENT_PACKET_FILTER;
use ndisim::{AdapterId, BindingState, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;

const PROMISC: PacketFilter = filter::DEFAULT.union(filter::PROMISCUOUS);
/// What the adapter is set to for it (promiscuous implies all multicast).
const PROMISC_SET: PacketFilter = PROMISC.union(filter::ALL_MULTICAST);

/// The adapter's packet filter (ndisim's miniport model).
fn adapter_filter(sim: &Sim, a: AdapterId) -> u32 {
    sim.adapter_filter(a).unwrap().1
}

/// Waits (at most the watchdog's time) until the adapter's packet filter
/// is `want`: a set from the binding's work item may still be on its way.
fn filter_becomes(sim: &Sim, a: AdapterId, want: PacketFilter) {
    let t0 = std::time::Instant::now();
    while adapter_filter(sim, a) != want.bits() {
        assert!(t0.elapsed().as_secs() < 30, "the adapter's filter is {:#x}, not {want:#x}", adapter_filter(sim, a));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// SEND_BATCH of one `len`-byte frame: its status.
fn send_status(h: &ndisim::Handle, len: usize) -> NtStatus {
    let f = frame(PEER, PEER, 0x88b5, len, 7);
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f, None)]), SendReply::LEN);
    if r.status == 0 {
        assert_eq!(SendReply::parse(&r.data).unwrap().accepted, 1);
    }
    status(r.status)
}

fn runs(sim: &Sim, a: AdapterId) {
    assert_eq!(sim.binding_state(a), BindingState::Running);
    assert_eq!(entry(sim, a.0).state, state::RUNNING);
}

/// A restart whose queries cannot be sent for want of memory (no attribute
/// told the link state or RSS) finishes as one whose queries the adapter
/// failed: the last known values stand and the binding runs. Before, it
/// failed, and the binding stayed Paused until NDIS restarted it again.
#[test]
fn a_restart_short_of_memory_for_its_queries_still_runs() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.pause(a).unwrap();
    sim.refuse_pool_allocations(1_000);
    let r = sim.restart(a, &RestartSpec { link: None, ..RestartSpec::default() });
    let refused = 1_000 - sim.refuse_pool_allocations(0);
    assert!(refused > 0, "the restart asked for memory");
    r.unwrap();
    runs(&sim, a);
    finish(sim);
}

/// A restart whose packet-filter set cannot be sent for want of memory
/// runs all the same; the filter is owed, and set at the next chance once
/// memory is back. Before, the restart failed (the binding stayed Paused).
#[test]
fn a_restart_short_of_memory_for_its_filter_runs_and_sets_it_later() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (_h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(adapter_filter(&sim, a), filter::DEFAULT.bits());
    sim.pause(a).unwrap();
    // A handle that opens while paused wants more.
    let (_p, reply) = open(&sim, 0, PROMISC, &[]);
    assert_eq!(reply.packet_filter, PROMISC);
    sim.refuse_pool_allocations(u64::MAX);
    let r = sim.restart(a, &RestartSpec::default());
    // (The binding's work item may try the owed set while memory is still
    // refused, or after: either way the next open sets it.)
    sim.refuse_pool_allocations(0);
    r.expect("the restart runs");
    runs(&sim, a);
    // The next open sets what the handles need.
    let (_q, _) = open(&sim, 0, filter::DEFAULT, &[]);
    filter_becomes(&sim, a, PROMISC_SET);
    finish(sim);
}

/// A miniport that answers the restart's packet-filter set with
/// NDIS_STATUS_RESOURCES (a passing shortage, not a refusal) does not fail
/// the restart: the filter is set again once the binding runs.
#[test]
fn a_restart_whose_filter_set_fails_for_a_while_runs_and_sets_it_again() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (_h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    sim.pause(a).unwrap();
    let (_p, _) = open(&sim, 0, PROMISC, &[]);
    sim.fail_oid_for_a_while(a, OID_GEN_CURRENT_PACKET_FILTER, 1);
    sim.restart(a, &RestartSpec::default()).expect("the restart runs");
    runs(&sim, a);
    filter_becomes(&sim, a, PROMISC_SET);
    assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE, "nothing was refused");
    finish(sim);
}

/// While the binding runs: a packet-filter set the miniport answers with
/// NDIS_STATUS_RESOURCES is tried again from the binding's work item, so a
/// handle that opened gets its frames without waiting for the next open,
/// close or restart. Before, the adapter kept the old filter until then.
#[test]
fn a_filter_set_that_fails_for_a_while_is_tried_again() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (_h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    sim.fail_oid_for_a_while(a, OID_GEN_CURRENT_PACKET_FILTER, 2);
    let (p, reply) = open(&sim, 0, PROMISC, &[]);
    assert_eq!(reply.packet_filter, PROMISC);
    filter_becomes(&sim, a, PROMISC_SET);
    // And the handle gets another host's frame.
    let other = frame([0x02, 0, 0x5e, 0, 0, 0x77], PEER, 0x88b5, 60, 1);
    sim.inject(a, &[&other[..]], &ndisim::InjectOpts::default()).unwrap();
    assert_eq!(read(&p, 4096).len(), 1);
    finish(sim);
}

/// Shortages that come again and again: each packet-filter set the
/// miniport answers with NDIS_STATUS_RESOURCES for a while gets the work
/// item's retries anew (the count of tries in a row starts again at each
/// open and close), so none is left owed until the next request.
#[test]
fn each_shortage_of_a_filter_set_gets_its_own_retries() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (_h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let plain = adapter_filter(&sim, a);
    for round in 0..3 {
        sim.fail_oid_for_a_while(a, OID_GEN_CURRENT_PACKET_FILTER, 2);
        let (p, _) = open(&sim, 0, PROMISC, &[]);
        filter_becomes(&sim, a, PROMISC_SET);
        sim.fail_oid_for_a_while(a, OID_GEN_CURRENT_PACKET_FILTER, 2);
        p.close();
        filter_becomes(&sim, a, PacketFilter::from_bits_retain(plain));
        assert_eq!(sim.oids_failed(), 4 * (round + 1), "round {round}: each set failed twice first");
    }
    finish(sim);
}

/// A restart that lowers the MTU when no new send pool can be made: the
/// old pool's larger buffers serve the new MTU. Before, the restart failed.
#[test]
fn a_restart_that_lowers_the_mtu_short_of_memory_keeps_the_larger_buffers() {
    let sim = start(&["null@mtu=9000"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    assert_eq!(send_status(&h, 9014), NtStatus::SUCCESS);
    sim.pause(a).unwrap();
    sim.refuse_pool_allocations(u64::MAX);
    let r = sim.restart(a, &RestartSpec { mtu: Some(1500), ..RestartSpec::default() });
    sim.refuse_pool_allocations(0);
    r.expect("the restart runs");
    runs(&sim, a);
    assert_eq!(entry(&sim, 0).mtu, 1500);
    assert_eq!(send_status(&h, 1514), NtStatus::SUCCESS);
    assert_ne!(send_status(&h, 1515), NtStatus::SUCCESS, "frames follow the new MTU");
    finish(sim);
}

/// A restart that raises the MTU when no send pool for it can be made:
/// the binding runs with sends within the old MTU, and says so (the MTU
/// it lists is the old one); the next restart raises it.
#[test]
fn a_restart_that_raises_the_mtu_short_of_memory_runs_with_the_old_one() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    sim.pause(a).unwrap();
    sim.refuse_pool_allocations(u64::MAX);
    let r = sim.restart(a, &RestartSpec { mtu: Some(9000), ..RestartSpec::default() });
    sim.refuse_pool_allocations(0);
    r.expect("the restart runs");
    runs(&sim, a);
    assert_eq!(entry(&sim, 0).mtu, 1500, "sends stay within the old MTU");
    assert_eq!(send_status(&h, 1514), NtStatus::SUCCESS);
    assert_ne!(send_status(&h, 9014), NtStatus::SUCCESS);
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec { mtu: Some(9000), ..RestartSpec::default() }).unwrap();
    assert_eq!(entry(&sim, 0).mtu, 9000);
    assert_eq!(send_status(&h, 9014), NtStatus::SUCCESS);
    finish(sim);
}

/// A restart's packet-filter set queued behind a set another thread is
/// still sending (a handle's OPEN, its thread held inside
/// `NdisOidRequest` by ndisim's `stall_oid_calls` across the pause and
/// the restart), which then cannot be sent for want of memory (its 4-byte
/// buffer refused): the restart step it carried ends there, the restart
/// completes and the binding runs, and the filter it owes is set once the
/// binding runs. The restart's attributes give the link state and RSS, so
/// the set is its only step. For `xtask mutants`' M667 (`send_filter`'s
/// loop without `self.restart_step(b)`): the restart never completed
/// (NetEventRestart pending until ndisim's watchdog, the binding never
/// Running).
#[test]
fn a_restart_whose_queued_filter_set_cannot_be_sent_still_runs() {
    use ndis_sys::{NetEventRestart, OID_GEN_LINK_STATE};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    // Polls `cond` (what another thread brings about), at most 30 s.
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(30), "{what} never happened");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let sim = start(&["null@rss=on"]);
    let a = sim.adapter_id("null0").unwrap();
    let (_h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(adapter_filter(&sim, a), filter::DEFAULT.bits());
    // The handle's OPEN, its filter set held inside NdisOidRequest.
    let p = sim.open().unwrap();
    let name = list(&p)[0].name.clone();
    let request = open_request(&name, PROMISC, &[], 0, 0, 0);
    sim.stall_oid_calls(a).unwrap();
    let link = {
        let mut v = vec![0u8; std::mem::size_of::<ndis_sys::NDIS_LINK_STATE>()];
        v[0] = ndis_sys::NDIS_OBJECT_TYPE_DEFAULT;
        v[1] = ndis_sys::NDIS_LINK_STATE_REVISION_1;
        v[2..4].copy_from_slice(&ndis_sys::NDIS_SIZEOF_LINK_STATE_REVISION_1.to_le_bytes());
        v[4..8].copy_from_slice(&ndis_sys::MediaConnectStateConnected.to_le_bytes());
        v[8..12].copy_from_slice(&ndis_sys::MediaDuplexStateFull.to_le_bytes());
        v
    };
    let spec = RestartSpec { extra_attributes: vec![(OID_GEN_LINK_STATE, link)], ..RestartSpec::default() };
    let (restarted, refused) = std::thread::scope(|s| {
        let opening = s.spawn(|| p.ioctl(IOCTL_RAWNIC_OPEN, &request, OpenReply::LEN));
        wait("the OPEN's filter set stalling", &|| sim.stalled_oid_calls(a) == 1);
        sim.pause(a).unwrap();
        // The restart: its set waits for the OPEN's (`filter_next`), and
        // the handler pends.
        let (tx, rx) = mpsc::channel();
        let (sim, spec) = (&sim, &spec);
        s.spawn(move || tx.send(sim.restart(a, spec)).unwrap());
        wait("the restart pending", &|| sim.pnp_pending(a) == vec![NetEventRestart]);
        assert_eq!(sim.stalled_oid_calls(a), 1, "the restart sent nothing itself");
        // The OPEN's set goes; the restart's, next, finds no memory.
        sim.refuse_pool_allocations(1);
        sim.release_oid_calls(a).unwrap();
        // A hang detector only: on main the restart is done as soon as the
        // OPEN's thread is out of its set.
        let restarted = rx.recv_timeout(Duration::from_secs(5));
        let refused = 1 - sim.refuse_pool_allocations(0);
        assert_eq!(opening.join().unwrap().status, 0, "the OPEN");
        if restarted.is_err() {
            panic!(
                "the restart never completed (NetEventRestart pending: {:?}, binding {:?})",
                sim.pnp_pending(a),
                sim.binding_state(a)
            );
        }
        (restarted.unwrap(), refused)
    });
    restarted.expect("the restart runs");
    assert_eq!(refused, 1, "the restart's set was refused its memory");
    assert!(
        sim.debug_output().iter().any(|l| l.contains("not sent; it is owed")),
        "the restart's set could not be sent: {:#?}",
        sim.debug_output()
    );
    runs(&sim, a);
    // Owed, and set once the binding runs.
    filter_becomes(&sim, a, PROMISC_SET);
    finish(sim);
}
