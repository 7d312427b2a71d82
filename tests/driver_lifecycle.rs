//! The binding lifecycle of the real rawnic.sys in ndisim: every arrow of
//! the state diagram, pause and restart as the specification asks, and
//! NBL ownership on both paths. The verifier must stay clean in each test.

use ndisim::{BindingState, CompletionPolicy, InjectOpts, RestartSpec};
use rawnic_proto::{IOCTL_RAWNIC_SEND_BATCH, NtStatus, SendReply, state};
use rawnic_tests::drv::*;
use std::thread;

fn arrows(sim: &ndisim::Sim) -> Vec<(String, String)> {
    transitions(sim).into_iter().map(|(a, b, _)| (a, b)).collect()
}

fn arrow(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn happy_path_walks_every_state_in_order() {
    let sim = start(&["loopback"]);
    let a = sim.adapter_id("loop0").unwrap();
    assert_eq!(sim.binding_state(a), BindingState::Running);
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    sim.pause(a).unwrap();
    assert_eq!(entry(&sim, 0).state, state::PAUSED);
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    sim.pause(a).unwrap();
    sim.unbind(a).unwrap();
    assert_eq!(sim.binding_state(a), BindingState::Unbound);
    let want = vec![
        arrow("Unbound", "Opening"),
        arrow("Opening", "Paused"),
        arrow("Paused", "Restarting"),
        arrow("Restarting", "Running"),
        arrow("Running", "Pausing"),
        arrow("Pausing", "Paused"),
        arrow("Paused", "Restarting"),
        arrow("Restarting", "Running"),
        arrow("Running", "Pausing"),
        arrow("Pausing", "Paused"),
        arrow("Paused", "Closing"),
        arrow("Closing", "Unbound"),
    ];
    assert_eq!(arrows(&sim), want);
    assert!(!sim.debug_output().iter().any(|l| l.contains("refused")), "an event was refused");
    finish(sim);
}

#[test]
fn a_binding_can_be_bound_again_after_an_unbind() {
    let sim = start(&["pair:a,b"]);
    let a = sim.adapter_id("a").unwrap();
    sim.unbind(a).unwrap();
    sim.bind(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    // The second binding works both ways across the wire.
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let (peer, _) = open(&sim, 1, rawnic_proto::filter::DEFAULT, &[]);
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    assert_eq!(send(&h, std::slice::from_ref(&f)).accepted, 1);
    assert_eq!(read(&peer, 4096)[0].1, f);
    assert_eq!(send(&peer, std::slice::from_ref(&f)).accepted, 1);
    assert_eq!(read(&h, 4096)[0].1, f);
    h.close();
    peer.close();
    finish(sim);
}

/// A bind while no NBL can be made (low resources) still binds: NDIS would
/// not retry a failed one. Sends say why they cannot go until NBLs can be
/// made, then go.
#[test]
fn a_bind_without_send_nbls_binds_and_sends_once_they_can_be_made() {
    let sim = start(&["pair:a,b"]);
    let a = sim.adapter_id("a").unwrap();
    sim.unbind(a).unwrap();
    sim.refuse_nbl_allocations(u64::MAX);
    sim.bind(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    // Bound again, it is listed after b.
    assert_eq!(entry(&sim, 1).name, sim.adapter_ndis_name(a).unwrap());
    assert_eq!(entry(&sim, 1).state, state::RUNNING);
    let (h, _) = open(&sim, 1, rawnic_proto::filter::DEFAULT, &[]);
    let (peer, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f.clone(), None)]), SendReply::LEN);
    assert_eq!(status(r.status), NtStatus::INSUFFICIENT_RESOURCES, "no NBL for the send");
    assert_eq!(h.write(&f).status as u32, NtStatus::INSUFFICIENT_RESOURCES.0 as u32);
    sim.refuse_nbl_allocations(0);
    assert_eq!(send(&h, std::slice::from_ref(&f)).accepted, 1);
    assert_eq!(read(&peer, 4096)[0].1, f, "only the frame sent once NBLs could be made");
    assert_eq!(stats(&h).handle.tx_frames, 1);
    h.close();
    peer.close();
    finish(sim);
}

/// Sends `n` frames (in batches the driver accepts) and returns how many
/// it accepted.
fn send_many(h: &ndisim::Handle, n: usize, len: usize) -> usize {
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(rawnic_proto::MAX_BATCH as usize);
        let frames: Vec<Vec<u8>> = (0..k).map(|i| frame(PEER, PEER, 0x88b5, len, (sent + i) as u32)).collect();
        let r = send(h, &frames);
        assert_eq!(r.accepted as usize, k, "the driver refused sends");
        sent += k;
    }
    sent
}

/// Pause with `n` sends in flight: the pause waits (the driver shows
/// Pausing) until every one of them came back, then completes.
fn pause_with_sends_in_flight(n: usize, release: impl FnOnce(&ndisim::Sim, ndisim::AdapterId)) {
    // 10,000 NBLs to check and free take a debug ndisim a few seconds on
    // an idle machine, and more than the default 10 s watchdog on one
    // running the whole suite beside other jobs (the unbind at unload
    // then came in "late, not lost"): the watchdog looks for hangs, and a
    // minute still finds one.
    let sim = start_with(&["null@completion=held"], |b| b.watchdog(std::time::Duration::from_secs(60)));
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    assert_eq!(send_many(&h, n, 60), n);
    assert_eq!(sim.outstanding(a).sends_in_flight, n as u64);
    thread::scope(|s| {
        let pausing = s.spawn(|| sim.pause(a));
        // The driver is Pausing and stays so while sends are out.
        let mut seen = false;
        for _ in 0..10_000 {
            if entry(&sim, 0).state == state::PAUSING {
                seen = true;
                break;
            }
            thread::yield_now();
        }
        assert!(seen, "the binding never showed Pausing");
        assert!(!pausing.is_finished(), "the pause completed with {n} sends in flight");
        // No new send may start now.
        let f = frame(PEER, PEER, 0x88b5, 60, 0);
        let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f, None)]), rawnic_proto::SendReply::LEN);
        assert_eq!(status(r.status), NtStatus::DEVICE_NOT_READY);
        release(&sim, a);
        pausing.join().unwrap().expect("the pause completed");
    });
    assert_eq!(sim.outstanding(a).sends_in_flight, 0);
    assert_eq!(entry(&sim, 0).state, state::PAUSED);
    let st = stats(&h);
    assert_eq!(st.handle.tx_frames, n as u64);
    assert_eq!(st.handle.tx_in_flight, 0);
    h.close();
    finish(sim);
}

#[test]
fn pause_with_one_send_in_flight() {
    pause_with_sends_in_flight(1, |sim, a| {
        assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    });
}

#[test]
fn pause_with_100_sends_in_flight_completed_in_batches() {
    pause_with_sends_in_flight(100, |sim, a| {
        // Batches of 7 (the last one short), each one chain.
        let mut left = 100;
        while left > 0 {
            left -= sim.release_sends(a, Some(7)).unwrap();
        }
    });
}

#[test]
fn pause_with_10000_sends_in_flight_completed_reordered() {
    pause_with_sends_in_flight(10_000, |sim, a| {
        sim.set_completion(a, CompletionPolicy::Reordered(64)).unwrap();
        let mut left = 10_000;
        while left > 0 {
            left -= sim.release_sends(a, Some(333)).unwrap();
        }
    });
}

#[test]
fn receives_are_retained_without_the_resources_flag_and_copied_with_it() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let big: Vec<Vec<u8>> = (0..4).map(|i| frame(BROADCAST, PEER, 0x88b5, 1000, i)).collect();
    let refs: Vec<&[u8]> = big.iter().map(|f| &f[..]).collect();
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    assert_eq!(retained(&sim, a, 4), 4, "frames of 1000 bytes with no read waiting are retained");
    let got = read(&h, 64 * 1024);
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), big);
    assert_eq!(retained(&sim, a, 0), 0, "reading gives the NBLs back");

    let opts = InjectOpts { resources: true, ..Default::default() };
    sim.inject(a, &refs, &opts).unwrap();
    assert_eq!(retained(&sim, a, 0), 0, "with NDIS_RECEIVE_FLAGS_RESOURCES nothing is kept");
    let got = read(&h, 64 * 1024);
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), big, "the copies are intact");
    h.close();
    finish(sim);
}

#[test]
fn multi_nbl_and_multi_nb_indications_keep_frame_order() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let frames: Vec<Vec<u8>> =
        (0..90).map(|i| frame(BROADCAST, PEER, 0x88b5, 60 + (i as usize * 17) % 1400, i)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    for (resources, dispatch) in [(false, true), (true, true), (false, false)] {
        let opts = InjectOpts { resources, dispatch, nbls_per_indication: 7, nbs_per_nbl: 5, ..Default::default() };
        sim.inject(a, &refs, &opts).unwrap();
        let got = read(&h, 1 << 20);
        assert_eq!(got.len(), frames.len());
        for ((hdr, d), f) in got.iter().zip(&frames) {
            assert_eq!(d, f);
            assert_eq!(hdr.origlen as usize, f.len());
        }
        assert_eq!(retained(&sim, a, 0), 0);
    }
    h.close();
    finish(sim);
}

#[test]
fn retained_receives_are_returned_before_the_pause_completes() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let big: Vec<Vec<u8>> = (0..10).map(|i| frame(BROADCAST, PEER, 0x88b5, 1514, i)).collect();
    let refs: Vec<&[u8]> = big.iter().map(|f| &f[..]).collect();
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    assert!(sim.outstanding(a).receives_retained > 0);
    sim.pause(a).unwrap();
    assert_eq!(sim.outstanding(a).receives_retained, 0, "the pause completed with receives retained");
    // Nothing was lost: the frames were copied into the queue.
    let got = read(&h, 1 << 20);
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), big);
    // Frames indicated while paused are not the driver's: nothing queues.
    sim.restart(a, &RestartSpec::default()).unwrap();
    h.close();
    finish(sim);
}

#[test]
fn restart_with_a_changed_mtu_and_filter_modules() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, reply) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    assert_eq!(reply.mtu, 1500);
    let jumbo = frame(PEER, PEER, 0x88b5, 9000 + 14, 1);
    let r =
        h.ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(jumbo.clone(), None)]), rawnic_proto::SendReply::LEN);
    assert_eq!(status(r.status), NtStatus::INVALID_BUFFER_SIZE, "a 9014-byte frame is too long for MTU 1500");
    sim.pause(a).unwrap();
    let spec = RestartSpec {
        mtu: Some(9000),
        filter_modules: vec!["WFP Native MAC Layer LightWeight Filter".into(), "QoS Packet Scheduler".into()],
        ..Default::default()
    };
    sim.restart(a, &spec).unwrap();
    assert_eq!(entry(&sim, 0).mtu, 9000);
    let log = sim.debug_output().join("\n");
    assert!(
        log.contains("filter modules [\"WFP Native MAC Layer LightWeight Filter\", \"QoS Packet Scheduler\"]"),
        "{log}"
    );
    // The send pool was rebuilt: a jumbo frame goes out whole.
    sim.set_capture(a, true);
    assert_eq!(send(&h, std::slice::from_ref(&jumbo)).accepted, 1);
    assert!(sim.settle(a));
    assert_eq!(sim.captured(a).last().map(|f| f.data.clone()), Some(jumbo));
    let too_long = frame(PEER, PEER, 0x88b5, 9000 + 15, 2);
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(too_long, None)]), rawnic_proto::SendReply::LEN);
    assert_eq!(status(r.status), NtStatus::INVALID_BUFFER_SIZE);
    h.close();
    finish(sim);
}

/// NDIS may pass the restart parameters with the revision 1 size (0x34,
/// no tail padding): the attributes are read all the same. A buffer
/// shorter than revision 1 is malformed: it is logged and ignored, the
/// restart still succeeds, and what it would have said is queried.
#[test]
fn restart_parameters_of_the_revision_1_size_and_shorter() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.pause(a).unwrap();
    let spec = RestartSpec {
        mtu: Some(4000),
        params_length: Some(0x34),
        filter_modules: vec!["QoS Packet Scheduler".into()],
        ..Default::default()
    };
    sim.restart(a, &spec).unwrap();
    assert_eq!(entry(&sim, 0).mtu, 4000, "the general attributes of a 0x34-byte buffer are read");
    let log = sim.debug_output().join("\n");
    assert!(log.contains("filter modules [\"QoS Packet Scheduler\"]"), "{log}");
    assert!(!log.contains("malformed restart parameters"), "{log}");
    sim.pause(a).unwrap();
    sim.oid_log(a, true);
    let spec = RestartSpec { mtu: Some(6000), params_length: Some(0x33), ..Default::default() };
    sim.restart(a, &spec).unwrap();
    let log = sim.debug_output().join("\n");
    assert!(log.contains("malformed restart parameters"), "{log}");
    assert_eq!(entry(&sim, 0).mtu, 4000, "nothing is read from a short buffer");
    assert!(sim.oid_log(a, true).contains(&(ndis_sys::NdisRequestQueryInformation, ndis_sys::OID_GEN_LINK_STATE)));
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    finish(sim);
}

#[test]
fn unbind_fails_pending_reads_with_device_removed() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    let reads: Vec<_> = (0..3).map(|_| h.read_async(4096).unwrap()).collect();
    for r in &reads {
        assert!(r.try_result().is_none(), "a read with nothing queued pends");
    }
    sim.unbind(a).unwrap();
    for r in reads {
        assert_eq!(status(r.wait().unwrap().status), NtStatus::DEVICE_REMOVED);
    }
    // The handle is orphaned: new requests say why.
    assert_eq!(status(h.read(4096).status), NtStatus::DEVICE_REMOVED);
    let f = frame(PEER, PEER, 0x88b5, 60, 0);
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f, None)]), rawnic_proto::SendReply::LEN);
    assert_eq!(status(r.status), NtStatus::DEVICE_REMOVED);
    h.close();
    finish(sim);
}

/// An orphaned handle's RING_WAIT and RING_DETACH say its binding is gone
/// (DEVICE_REMOVED), as its other requests do, whether it never attached
/// rings or detached them before the unbind; one still holding rings
/// detaches them (the UMEM goes back to its user), and is then one with
/// none. A request that does not parse, or a wait with too short an
/// output, is refused for that first. A handle never opened still hears
/// INVALID_DEVICE_STATE.
#[test]
fn an_orphaned_handle_s_ring_requests_say_its_binding_is_gone() {
    use rawnic_proto::ring::{RingReply, RingWaitRequest, wait_flags};
    use rawnic_proto::{EmptyRequest, IOCTL_RAWNIC_RING_DETACH, IOCTL_RAWNIC_RING_WAIT, filter};
    use rawnic_tests::rings::{SETUP, User, detach, wait_request};
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (never, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (detached, _) = open(&sim, 0, filter::DEFAULT, &[]);
    detach(&detached, User::attach(&detached, SETUP));
    let (holding, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&holding, SETUP);
    let unopened = sim.open().unwrap();
    sim.unbind(a).unwrap();
    let wait = |h: &ndisim::Handle, input: &[u8], out: usize| {
        let r = h.ioctl(IOCTL_RAWNIC_RING_WAIT, input, out);
        (status(r.status), r.information)
    };
    let detach_status = |h: &ndisim::Handle, input: &[u8]| status(h.ioctl(IOCTL_RAWNIC_RING_DETACH, input, 0).status);
    let rx = wait_request(wait_flags::RX);
    let mut bad_detach = empty();
    bad_detach.push(0);
    let bad_detach_status = EmptyRequest::parse(&bad_detach).unwrap_err().status();
    let bad_wait_status = RingWaitRequest::parse(&wait_request(0)).unwrap_err().status();
    // The one with rings: its waits fail (nothing will come), its detach
    // succeeds and ends the attach.
    assert_eq!(wait(&holding, &rx, RingReply::LEN), (NtStatus::DEVICE_REMOVED, 0), "rings held");
    detach(&holding, u);
    for (h, what) in
        [(&never, "never attached"), (&detached, "detached before the unbind"), (&holding, "detached after")]
    {
        assert_eq!(wait(h, &rx, RingReply::LEN), (NtStatus::DEVICE_REMOVED, 0), "RING_WAIT, {what}");
        assert_eq!(detach_status(h, &empty()), NtStatus::DEVICE_REMOVED, "RING_DETACH, {what}");
        // The checks before the handle's state come first.
        assert_eq!(wait(h, &wait_request(0), RingReply::LEN), (bad_wait_status, 0), "bad RING_WAIT, {what}");
        assert_eq!(wait(h, &rx, RingReply::LEN - 1), (NtStatus::BUFFER_TOO_SMALL, 0), "short RING_WAIT, {what}");
        assert_eq!(detach_status(h, &bad_detach), bad_detach_status, "bad RING_DETACH, {what}");
    }
    assert_eq!(wait(&unopened, &rx, RingReply::LEN), (NtStatus::INVALID_DEVICE_STATE, 0), "never opened");
    assert_eq!(detach_status(&unopened, &empty()), NtStatus::INVALID_DEVICE_STATE, "never opened");
    for h in [never, detached, holding, unopened] {
        h.close();
    }
    finish(sim);
}

#[test]
fn a_failed_open_returns_the_binding_to_unbound() {
    failed_open("open=fail");
}

#[test]
fn a_failed_pending_open_returns_the_binding_to_unbound() {
    failed_open("open=fail,open=pending");
}

fn failed_open(how: &str) {
    let sim = rawnic_tests::rawnic_builder()
        .adapter("null@name=good,open=pending")
        .adapter(&format!("null@name=bad,{how}"))
        .start();
    let sim = match sim {
        Ok(s) => s,
        Err(e) => panic!("start: {e}"),
    };
    let bad = sim.adapter_id("bad").unwrap();
    assert_eq!(sim.binding_state(bad), BindingState::Unbound);
    let states: Vec<(String, String)> = arrows(&sim);
    assert!(states.contains(&arrow("Opening", "Unbound")), "{states:?}");
    // Only the good adapter is bound, and it works.
    let h = sim.open().unwrap();
    assert_eq!(list(&h).len(), 1);
    h.close();
    finish(sim);
}

/// A restart whose packet-filter set the miniport fails (NDIS_STATUS_FAILURE:
/// no bit to blame, nothing passing) still succeeds: ProtocolNetPnPEvent's
/// page has a protocol driver always succeed NetEventRestart. The filter is
/// owed and set again once the adapter takes it. Before, the restart failed
/// and the binding stayed Paused until NDIS restarted it again (ndisim's
/// check of a PnP event's status; chaos seed 69000022 of profile mixed).
#[test]
fn a_restart_whose_filter_set_fails_still_runs() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    // A handle that receives makes the restart set the packet filter.
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    sim.pause(a).unwrap();
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, true);
    sim.restart(a, &RestartSpec::default()).expect("the restart succeeds");
    assert_eq!(sim.binding_state(a), BindingState::Running);
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    assert_eq!(arrows(&sim).last(), Some(&arrow("Restarting", "Running")));
    // Sends go.
    let f = frame(PEER, PEER, 0x88b5, 60, 0);
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f, None)]), rawnic_proto::SendReply::LEN);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    // Once the adapter takes sets again, the owed filter is set (at the
    // latest by the next restart).
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, false);
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_ne!(sim.adapter_filter(a).unwrap().1, 0, "the owed filter was set");
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    h.close();
    finish(sim);
}

fn link_state_bytes(up: bool) -> Vec<u8> {
    let mut v = vec![0u8; std::mem::size_of::<ndis_sys::NDIS_LINK_STATE>()];
    v[0] = ndis_sys::NDIS_OBJECT_TYPE_DEFAULT;
    v[1] = ndis_sys::NDIS_LINK_STATE_REVISION_1;
    v[2..4].copy_from_slice(&ndis_sys::NDIS_SIZEOF_LINK_STATE_REVISION_1.to_le_bytes());
    let state = if up { ndis_sys::MediaConnectStateConnected } else { ndis_sys::MediaConnectStateDisconnected };
    v[4..8].copy_from_slice(&state.to_le_bytes());
    v[8..12].copy_from_slice(&ndis_sys::MediaDuplexStateFull.to_le_bytes());
    v[16..24].copy_from_slice(&1_000_000_000u64.to_le_bytes());
    v[24..32].copy_from_slice(&1_000_000_000u64.to_le_bytes());
    v
}

/// The restart reads NDIS_PROTOCOL_RESTART_PARAMETERS instead of asking:
/// it queries by OID only what the attributes lack.
#[test]
fn restart_queries_only_what_the_attributes_do_not_give() {
    use ndis_sys::{NdisRequestQueryInformation as QUERY, OID_GEN_LINK_STATE, OID_GEN_RECEIVE_SCALE_CAPABILITIES};
    for rss in [false, true] {
        let sim = start(&[if rss { "null@rss=on" } else { "null@rss=off" }]);
        let a = sim.adapter_id("null0").unwrap();
        sim.pause(a).unwrap();
        // Attributes without a link state element: the link is queried.
        sim.oid_log(a, true);
        sim.restart(a, &RestartSpec::default()).unwrap();
        let log = sim.oid_log(a, true);
        let queried = |oid: u32| log.contains(&(QUERY, oid));
        assert!(queried(OID_GEN_LINK_STATE), "{log:x?}");
        assert_eq!(
            queried(OID_GEN_RECEIVE_SCALE_CAPABILITIES),
            !rss,
            "RSS capabilities are queried only when the attributes lack them: {log:x?}"
        );
        // Everything else came from the general attributes (MTU, speeds,
        // lookahead, MAC options, packet filters).
        assert!(
            log.iter().all(|(_, oid)| [OID_GEN_LINK_STATE, OID_GEN_RECEIVE_SCALE_CAPABILITIES].contains(oid)),
            "{log:x?}"
        );
        // With a link-state element too, nothing is queried but RSS.
        sim.pause(a).unwrap();
        let spec =
            RestartSpec { extra_attributes: vec![(OID_GEN_LINK_STATE, link_state_bytes(true))], ..Default::default() };
        sim.restart(a, &spec).unwrap();
        let log = sim.oid_log(a, true);
        assert!(!log.contains(&(QUERY, OID_GEN_LINK_STATE)), "{log:x?}");
        finish(sim);
    }
}

/// ProtocolReceiveNetBufferLists runs on several processors at once; the
/// queues stay consistent (no frame lost, duplicated or torn).
#[test]
fn concurrent_receive_indications() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let h = sim.open().unwrap();
    let name = list(&h)[0].name.clone();
    let r = h.ioctl(
        rawnic_proto::IOCTL_RAWNIC_OPEN,
        &open_request(&name, rawnic_proto::filter::DEFAULT, &[], 100_000, 64 << 20, 0),
        24,
    );
    assert_eq!(r.status, 0);
    const PER: u32 = 2000;
    thread::scope(|s| {
        for t in 0..4u32 {
            let sim = &sim;
            s.spawn(move || {
                for i in 0..PER / 10 {
                    let frames: Vec<Vec<u8>> = (0..10)
                        .map(|j| {
                            let seq = t * PER + i * 10 + j;
                            let mut f = frame(BROADCAST, PEER, 0x88b5, 60 + (seq as usize % 1400), seq);
                            f[14..18].copy_from_slice(&seq.to_be_bytes());
                            f
                        })
                        .collect();
                    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                    let opts = InjectOpts { nbls_per_indication: 3, nbs_per_nbl: 2, ..Default::default() };
                    sim.inject(a, &refs, &opts).unwrap();
                }
            });
        }
    });
    let mut seen = vec![false; 4 * PER as usize];
    let mut n = 0;
    while n < seen.len() {
        for (_, d) in read(&h, 1 << 20) {
            let seq = u32::from_be_bytes([d[14], d[15], d[16], d[17]]) as usize;
            let want = {
                let mut f = frame(BROADCAST, PEER, 0x88b5, 60 + (seq % 1400), seq as u32);
                f[14..18].copy_from_slice(&(seq as u32).to_be_bytes());
                f
            };
            assert_eq!(d, want, "frame {seq} is torn");
            assert!(!seen[seq], "frame {seq} twice");
            seen[seq] = true;
            n += 1;
        }
    }
    assert_eq!(retained(&sim, a, 0), 0);
    h.close();
    finish(sim);
}

/// ProtocolUninstall: no handle opens a binding afterwards; the bindings
/// keep working until NDIS unbinds them, and everything unloads clean.
#[test]
fn uninstall_refuses_new_opens_and_unbinds_cleanly() {
    let sim = start(&["loopback"]);
    let a = sim.adapter_id("loop0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
    sim.uninstall().unwrap();
    let h2 = sim.open().unwrap();
    let name = list(&h2)[0].name.clone();
    let r = h2.ioctl(
        rawnic_proto::IOCTL_RAWNIC_OPEN,
        &open_request(&name, rawnic_proto::filter::DIRECTED, &[], 0, 0, 0),
        rawnic_proto::OpenReply::LEN,
    );
    assert_eq!(status(r.status), NtStatus::DEVICE_REMOVED);
    // The open handle still works until the unbind (it receives what it
    // sends only when it asked for its own sends; this one did not).
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    assert_eq!(send(&h, std::slice::from_ref(&f)).accepted, 1);
    assert_eq!(sim.outstanding(a).sends_in_flight, 0);
    assert_eq!(stats(&h).handle.tx_frames, 1);
    sim.unbind(a).unwrap();
    assert!(sim.debug_output().iter().any(|l| l.contains("uninstalling")));
    h.close();
    h2.close();
    finish(sim);
}

/// Opens and closes that the miniport completes inside the call: NDIS
/// calls `ProtocolOpenAdapterCompleteEx` and `ProtocolCloseAdapterCompleteEx`
/// before `NdisOpenAdapterEx` and `NdisCloseAdapterEx` return
/// `NDIS_STATUS_PENDING`, on the same thread. The bind, the unbind and a
/// failed open all finish once, with nothing held.
#[test]
fn opens_and_closes_completed_inside_the_call_finish_once() {
    let sim = rawnic_tests::rawnic_builder()
        .adapter("null@name=good,open=inline,close=inline,oid=inline")
        .adapter("null@name=bad,open=fail,open=inline")
        .start()
        .unwrap();
    let good = sim.adapter_id("good").unwrap();
    let bad = sim.adapter_id("bad").unwrap();
    assert_eq!(sim.binding_state(good), BindingState::Running);
    assert_eq!(sim.binding_state(bad), BindingState::Unbound);
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::DIRECTED, &[]);
    h.close();
    sim.pause(good).unwrap();
    sim.unbind(good).unwrap();
    assert_eq!(sim.binding_state(good), BindingState::Unbound);
    sim.bind(good).unwrap();
    sim.restart(good, &RestartSpec::default()).unwrap();
    assert_eq!(sim.binding_state(good), BindingState::Running);
    assert!(sim.bind(bad).is_err() || sim.binding_state(bad) == BindingState::Unbound);
    finish(sim);
}

#[test]
fn the_other_pnp_events_are_answered_and_change_nothing() {
    // Remove queries, reconfigure, bind lists, capabilities, ports and a
    // power query, to the binding and (reconfigure, bind list: binding
    // context NULL) to the protocol, with no buffer, a short one and a
    // garbage one: each answered NDIS_STATUS_SUCCESS, the binding still
    // Running and sending.
    let sim = start(&["loopback"]);
    let a = sim.adapter_id("loop0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let garbage: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
    for &code in ndisim::OTHER_PNP_EVENTS {
        for buf in [&[][..], &[3, 0, 0, 0][..], &garbage[..]] {
            assert_eq!(sim.pnp_event(Some(a), code, buf).unwrap(), 0, "event {code}, {} bytes", buf.len());
        }
    }
    for code in [ndis_sys::NetEventReconfigure, ndis_sys::NetEventBindList] {
        assert_eq!(sim.pnp_event(None, code, &garbage).unwrap(), 0, "protocol event {code}");
    }
    assert!(sim.pnp_event(Some(a), ndis_sys::NetEventPause, &[]).is_err(), "a pause has its own call");
    assert_eq!(sim.binding_state(a), BindingState::Running);
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    assert_eq!(send(&h, &[frame(PEER, PEER, 0x88b5, 60, 1)]).accepted, 1);
    h.close();
    finish(sim);
}

#[test]
fn status_indications_of_any_code_and_buffer_are_survived() {
    // What a miniport may indicate: codes rawnic does not know, and a link
    // state with no buffer, a short one, garbage, or a long one; at
    // DISPATCH_LEVEL and PASSIVE_LEVEL, Running and Paused. A good one
    // after them still moves the link.
    use ndis_sys::{NDIS_LINK_STATE, NDIS_STATUS_LINK_STATE};
    let sim = start(&["loopback"]);
    let a = sim.adapter_id("loop0").unwrap();
    let size = std::mem::size_of::<NDIS_LINK_STATE>();
    let garbage: Vec<u8> = (0..2 * size).map(|i| (i as u8).wrapping_mul(73) ^ 0x5C).collect();
    let codes = [
        NDIS_STATUS_LINK_STATE,
        ndis_sys::NDIS_STATUS_MEDIA_CONNECT,
        ndis_sys::NDIS_STATUS_MEDIA_DISCONNECT,
        ndis_sys::NDIS_STATUS_INDICATION_REQUIRED,
        0x4001_7777,
    ];
    for paused in [false, true] {
        if paused {
            sim.pause(a).unwrap();
        }
        for code in codes {
            for len in [0, 8, size, 2 * size] {
                for passive in [false, true] {
                    sim.indicate_status(a, code, &garbage[..len], passive).unwrap();
                }
            }
        }
    }
    sim.restart(a, &RestartSpec::default()).unwrap();
    sim.link(a, false).unwrap();
    assert_eq!(entry(&sim, 0).link, rawnic_proto::link::DOWN);
    sim.link(a, true).unwrap();
    assert_eq!(entry(&sim, 0).link, rawnic_proto::link::UP);
    finish(sim);
}

/// The unload, under the deterministic scheduler, with adapters whose
/// close pends or completes at once: every binding's read/write lock, NBL
/// pool and work item are freed before its unbind completes, so before
/// `NdisDeregisterProtocolDriver` returns. Before, the work item or the
/// close completion that completed an unbind still held the binding, and
/// freed them after (NDIS says a protocol has released what it allocated
/// for a binding when it completes the unbind), while `DriverUnload` went
/// on to free the protocol's state. (ndisim checks every unbind's
/// completion the same way, so each test that unbinds holds the driver to
/// it.)
#[test]
fn no_binding_outlives_the_deregistration() {
    for seed in 0..40u64 {
        let sim = rawnic_tests::rawnic_builder()
            .adapter("null")
            .adapter("null@close=pending")
            .deterministic(seed)
            .strategy(ndisim::Strategy::Priorities { depth: 1 + seed as u32 % 3, horizon: 1 << (3 + seed % 6) })
            .start()
            .unwrap();
        let (h, _) = open(&sim, 1, rawnic_proto::filter::DEFAULT, &[]);
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
}
