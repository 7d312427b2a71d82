//! OID requests of the real rawnic.sys's handles in ndisim, as the
//! lifecycle meets them: pending through an unbind, cancelled by the user,
//! by a close, racing the close, completed inside the call, ignored by a
//! miniport's cancel, at most 64 per handle, cancelled while the call is
//! still inside `NdisOidRequest` (before NDIS holds it), and in low power
//! (none reaches the adapter, and a set-power event waits for a call still
//! inside `NdisOidRequest`, a handle's or the binding's work item's). The
//! verifier stays clean.

use ndisim::{AdapterId, Handle, IoToken, RestartSpec, Sim};
use rawnic_proto::{
    IOCTL_RAWNIC_OPEN, IOCTL_RAWNIC_QUERY_OID, IOCTL_RAWNIC_SET_OID, NtStatus, OidReplyHeader, OpenReply, PacketFilter,
};
use rawnic_tests::drv::*;

/// Holds the adapter's OIDs and starts a user query of the link speed,
/// which therefore pends in the driver.
fn held_link_speed_query(sim: &Sim, a: AdapterId, h: &Handle) -> IoToken {
    sim.hold_oids(a).unwrap();
    link_speed_query(h)
}

/// Starts a user query of the link speed.
fn link_speed_query(h: &Handle) -> IoToken {
    let req = rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] };
    let mut input = vec![0u8; 16];
    req.emit(&mut input).unwrap();
    h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &input, 64).unwrap()
}

#[test]
fn an_oid_pending_during_unbind_is_cancelled_and_the_unbind_completes() {
    pending_during_unbind("null");
    // A miniport that aborts inside NdisCancelOidRequest.
    pending_during_unbind("null@oid=inline");
}

fn pending_during_unbind(adapter: &str) {
    let sim = start(&[adapter]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let pending = held_link_speed_query(&sim, a, &h);
    assert!(pending.try_result().is_none(), "the OID is held, so the request pends");
    assert_eq!(sim.outstanding(a).oids_pending, 1);
    sim.unbind(a).unwrap();
    let r = pending.wait().unwrap();
    assert_eq!(r.status, 0);
    let (hdr, _) = rawnic_proto::OidReplyHeader::parse(&r.data, true).unwrap();
    assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_REQUEST_ABORTED, "the driver cancelled it");
    assert_eq!(sim.outstanding(a).oids_pending, 0);
    h.close();
    finish(sim);
}

#[test]
fn a_user_can_cancel_a_pending_oid() {
    user_cancel("null");
    user_cancel("null@oid=inline");
}

fn user_cancel(adapter: &str) {
    let sim = start(&[adapter]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let pending = held_link_speed_query(&sim, a, &h);
    assert!(pending.cancel());
    assert_eq!(status(pending.wait().unwrap().status), NtStatus::CANCELLED);
    sim.release_oids(a).unwrap();
    h.close();
    finish(sim);
}

/// Every one of them, however many: once the handle is closed, a cancel
/// of their IRPs (CancelIo, or the thread's exit) has no binding to pass
/// on to. (The cleanup cancelled the first 16 only.)
#[test]
fn closing_a_handle_cancels_its_pending_oids() {
    close_cancels("null");
    close_cancels("null@oid=inline");
}

fn close_cancels(adapter: &str) {
    let sim = start(&[adapter]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let pending: Vec<IoToken> = (0..40).map(|_| held_link_speed_query(&sim, a, &h)).collect();
    assert!(pending.iter().all(|p| p.try_result().is_none()));
    assert_eq!(sim.outstanding(a).oids_pending, 40);
    // The cleanup asks NDIS to cancel them: they end with the OIDs still held.
    h.close();
    for (i, p) in pending.iter().enumerate() {
        let r = p.wait_for(std::time::Duration::from_secs(5)).unwrap_or_else(|| panic!("request {i} still pends"));
        assert_eq!(status(r.status), NtStatus::CANCELLED);
    }
    assert_eq!(sim.outstanding(a).oids_pending, 0, "NDIS has no request of the closed handle");
    sim.release_oids(a).unwrap();
    finish(sim);
}

/// At most `MAX_HANDLE_OIDS` pend on a handle (each holds pool until the
/// miniport answers): the next is refused at once, and the handle's
/// requests that pend complete as usual.
#[test]
fn a_handle_has_at_most_64_oids_pending() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let pending: Vec<IoToken> =
        (0..rawnic_proto::MAX_HANDLE_OIDS).map(|_| held_link_speed_query(&sim, a, &h)).collect();
    assert!(pending.iter().all(|p| p.try_result().is_none()));
    let over = held_link_speed_query(&sim, a, &h).wait().unwrap();
    assert_eq!(status(over.status), NtStatus::INSUFFICIENT_RESOURCES);
    assert_eq!(sim.outstanding(a).oids_pending, rawnic_proto::MAX_HANDLE_OIDS as u64);
    // Another handle is not limited by this one's.
    let (h2, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let other = held_link_speed_query(&sim, a, &h2);
    sim.release_oids(a).unwrap();
    for p in pending.iter().chain([&other]) {
        assert_eq!(p.wait().unwrap().status, 0);
    }
    // Room again.
    let again = held_link_speed_query(&sim, a, &h);
    sim.release_oids(a).unwrap();
    assert_eq!(again.wait().unwrap().status, 0);
    h.close();
    h2.close();
    finish(sim);
}

/// A user's cancel of a pending OID request racing the handle's close,
/// under the deterministic scheduler: the request ends cancelled with the
/// miniport still holding every OID. Before, a cancel that came after the
/// close marked the handle closed had nobody to pass it on to, yet marked
/// the request as cancelled, so the cleanup skipped it and it waited for
/// the miniport. (Found by reading; 1,000 seeds of this test did not reach
/// that window on the old image.)
#[test]
fn a_cancel_racing_the_close_is_not_lost() {
    for seed in 0..60u64 {
        let sim = rawnic_tests::rawnic_builder()
            .adapter("null")
            .deterministic(seed)
            .strategy(ndisim::Strategy::Priorities { depth: 1 + seed as u32 % 3, horizon: 1 << (3 + seed % 6) })
            .start()
            .unwrap();
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
        let pending = held_link_speed_query(&sim, a, &h);
        sim.run_actors(vec![
            Box::new(|| h.close_shared(false)),
            Box::new(|| {
                pending.cancel();
            }),
        ]);
        // (Virtual time: the miniport completes a cancelled request from a
        // DPC, which runs while the test sleeps.)
        let mut r = None;
        for _ in 0..100 {
            r = pending.try_result();
            if r.is_some() {
                break;
            }
            sim.sleep(std::time::Duration::from_millis(10));
        }
        let r = r.unwrap_or_else(|| panic!("seed {seed}: the request still pends"));
        assert_eq!(status(r.status), NtStatus::CANCELLED, "seed {seed}");
        assert_eq!(sim.outstanding(a).oids_pending, 0, "seed {seed}");
        sim.release_oids(a).unwrap();
        drop(h);
        finish(sim);
    }
}

/// A miniport may complete an OID inside its request handler: NDIS then
/// calls `ProtocolOidRequestComplete` before `NdisOidRequest` returns
/// `NDIS_STATUS_PENDING`, on the same thread. A driver holding a lock
/// across the call that its completion takes again would deadlock there
/// (ndisim reports the recursive acquisition). rawnic's restart queries,
/// packet-filter sets (with refusals) and users' OIDs all go through it.
#[test]
fn oids_completed_inside_ndis_oid_request_deadlock_nothing() {
    let sim = start(&["null@oid=inline,refuse-filter=0x20"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::PROMISCUOUS, &[]);
    let (hdr, data) = oid_query(&h, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 16 + 4);
    assert_eq!(hdr.ndis_status, 0);
    assert_eq!(data, 1500u32.to_le_bytes());
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec { mtu: Some(9000), ..Default::default() }).unwrap();
    assert_eq!(entry(&sim, 0).mtu, 9000);
    // The adapter refused promiscuous mode: the handle was told, and the
    // binding's filter is the fallback.
    assert!(!sim.adapter_filter(a).unwrap().1 & ndis_sys::NDIS_PACKET_TYPE_PROMISCUOUS != 0);
    h.close();
    sim.unbind(a).unwrap();
    finish(sim);
}

/// A miniport may ignore `NdisCancelOidRequest` (a cancel is a request):
/// the requests a user cancels, a close and an unbind then wait for their
/// completions in the miniport's own time, which come with its status,
/// and nothing is left behind.
#[test]
fn a_miniport_that_ignores_cancels_is_waited_for() {
    let sim = start(&["null@cancel-ignore=1000"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    // A user's cancel: the request completes as the miniport answers it.
    let t = held_link_speed_query(&sim, a, &h);
    t.cancel();
    sim.sleep(std::time::Duration::from_millis(20));
    assert!(t.try_result().is_none(), "the miniport ignored the cancel");
    sim.release_oids(a).unwrap();
    let r = t.wait().unwrap();
    assert_eq!(r.status, 0, "answered, not cancelled");
    // The close: its requests' cancels ignored too; the handle closes, the
    // requests complete when the miniport answers.
    let pending: Vec<IoToken> = (0..3).map(|_| held_link_speed_query(&sim, a, &h)).collect();
    h.close();
    sim.release_oids(a).unwrap();
    for p in &pending {
        assert!(p.wait().is_some());
    }
    // The unbind waits for the request it could not cancel.
    let (h2, _) = open(&sim, 0, rawnic_proto::PacketFilter::NONE, &[]);
    let held = held_link_speed_query(&sim, a, &h2);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            sim.release_oids(a).unwrap();
        });
        sim.unbind(a).unwrap();
    });
    assert!(held.wait().is_some());
    h2.close();
    finish(sim);
}

/// From `NetEventSetPower` for a low-power state until the adapter is back
/// in D0, a protocol may issue no OID request ("Handling PnP Events and
/// Power Management Events in a Protocol Driver"): a user's query is
/// answered `NDIS_STATUS_LOW_POWER_STATE` by the driver itself, and the
/// packet filter a handle that opens meanwhile needs is set by the restart
/// back in D0 (NDIS's, when the binding was running before; else the next
/// one).
#[test]
fn no_oid_reaches_an_adapter_in_low_power() {
    for paused_first in [false, true] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        if paused_first {
            sim.pause(a).unwrap();
        }
        // D3.
        sim.set_power(a, 4).unwrap();
        let (hdr, _) = oid_query(&h, ndis_sys::OID_GEN_LINK_SPEED, 64);
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_LOW_POWER_STATE);
        let (rx, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::BROADCAST, &[]);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(sim.adapter_filter(a).unwrap().1, 0, "not set in low power");
        // D0.
        sim.set_power(a, 1).unwrap();
        let (hdr, _) = oid_query(&h, ndis_sys::OID_GEN_LINK_SPEED, 64);
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_SUCCESS);
        if paused_first {
            sim.restart(a, &RestartSpec::default()).unwrap();
        }
        assert_eq!(sim.adapter_filter(a).unwrap().1, 0x09, "set by the restart (paused first: {paused_first})");
        rx.close();
        h.close();
        finish(sim);
    }
}

/// What a test has inside `NdisOidRequest` when the adapter goes to low
/// power.
#[derive(Debug, Clone, Copy)]
enum InCall {
    /// A user's QUERY_OID.
    Query,
    /// A user's SET_OID of its multicast list.
    MulticastSet,
    /// The packet-filter set a handle's OPEN makes.
    FilterSet,
}

/// Waits (at most 10 s) until `done()`.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !done() {
        assert!(t0.elapsed().as_secs() < 10, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `NetEventSetPower` for D3 while an OID call that passed the driver's
/// low-power check is still inside `NdisOidRequest` (ndisim stalls it on
/// entry, before NDIS looks at it): the driver pends the event until that
/// call has left, so the request reaches an adapter still in D0 and no
/// request reaches it once the event is complete (ndisim counts the
/// adapter in low power from that completion). A request that begins
/// while the event waits is answered `NDIS_STATUS_LOW_POWER_STATE` by the
/// driver without reaching NDIS. Back in D0 everything works, and the
/// unload finds nothing left behind.
#[test]
fn a_set_power_waits_for_the_oid_call_inside_ndis_oid_request() {
    let g1 = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    for what in [InCall::Query, InCall::MulticastSet, InCall::FilterSet] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
        let (other, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        // The handle whose OPEN sets the filter (BROADCAST is new to the
        // union), with its binding's name looked up beforehand.
        let opener = sim.open().unwrap();
        let name = list(&opener)[0].name.clone();
        let open_input = open_request(&name, PacketFilter::DIRECTED | PacketFilter::BROADCAST, &[], 0, 0, 0);
        let (oid, data): (_, &[u8]) = match what {
            InCall::Query => (ndis_sys::OID_GEN_LINK_SPEED, &[]),
            _ => (ndis_sys::OID_802_3_MULTICAST_LIST, &g1),
        };
        let mut input = vec![0u8; 16 + data.len()];
        rawnic_proto::OidRequest { oid, data }.emit(&mut input).unwrap();
        // The one request that reaches the adapter.
        let reached = match what {
            InCall::Query => (ndis_sys::NdisRequestQueryInformation, oid),
            InCall::MulticastSet => (ndis_sys::NdisRequestSetInformation, oid),
            InCall::FilterSet => (ndis_sys::NdisRequestSetInformation, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER),
        };
        sim.oid_log(a, true);

        sim.stall_oid_calls(a).unwrap();
        let logged = std::thread::scope(|s| {
            let call = s.spawn(|| match what {
                InCall::Query => h.ioctl(IOCTL_RAWNIC_QUERY_OID, &input, 64),
                InCall::MulticastSet => h.ioctl(IOCTL_RAWNIC_SET_OID, &input, 64),
                InCall::FilterSet => opener.ioctl(IOCTL_RAWNIC_OPEN, &open_input, OpenReply::LEN),
            });
            until("the OID call reaches NdisOidRequest", || sim.stalled_oid_calls(a) == 1);
            let power = s.spawn(|| sim.set_power(a, 4));
            until("the set-power handler returns", || !sim.pnp_pending(a).is_empty() || power.is_finished());
            assert_eq!(
                sim.pnp_pending(a),
                vec![ndis_sys::NetEventSetPower],
                "{what:?}: the set-power event waits while the OID call is inside NdisOidRequest"
            );
            // A request that begins now: the driver answers it.
            let (hdr, _) = oid_query(&other, ndis_sys::OID_GEN_LINK_SPEED, 64);
            assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_LOW_POWER_STATE, "{what:?}");
            assert_eq!(sim.stalled_oid_calls(a), 1, "{what:?}: the new request did not reach NDIS");
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!power.is_finished(), "{what:?}: the set-power event is still pending");
            assert_eq!(sim.pnp_pending(a), vec![ndis_sys::NetEventSetPower], "{what:?}");
            // The call leaves NdisOidRequest: the event completes.
            sim.release_oid_calls(a).unwrap();
            let r = call.join().unwrap();
            assert_eq!(r.status, 0, "{what:?}: {:?}", status(r.status));
            if !matches!(what, InCall::FilterSet) {
                let (hdr, _) = OidReplyHeader::parse(&r.data, !matches!(what, InCall::MulticastSet)).unwrap();
                assert_eq!(hdr.ndis_status, 0, "{what:?}: answered by the adapter, still in D0");
            }
            power.join().unwrap().unwrap();
            sim.oid_log(a, false)
        });
        assert_eq!(logged, vec![reached], "{what:?}");
        assert!(sim.pnp_pending(a).is_empty());
        // In low power: nothing more reaches the adapter.
        let (hdr, _) = oid_query(&other, ndis_sys::OID_GEN_LINK_SPEED, 64);
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_LOW_POWER_STATE, "{what:?}");
        assert_eq!(sim.oid_log(a, false), logged, "{what:?}: no OID request after the event completed");
        assert!(sim.violations().is_empty(), "{what:?}: {:?}", sim.violations());
        // Back in D0 (the restart first, as the binding was running).
        sim.set_power(a, 1).unwrap();
        let (hdr, _) = oid_query(&other, ndis_sys::OID_GEN_LINK_SPEED, 64);
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_SUCCESS, "{what:?}");
        match what {
            InCall::Query => {}
            InCall::MulticastSet => {
                let (_, d) = oid_query(&other, ndis_sys::OID_802_3_MULTICAST_LIST, 16 + 6 * 32);
                assert_eq!(d, g1, "{what:?}: the set went through");
            }
            InCall::FilterSet => assert_eq!(sim.adapter_filter(a).unwrap().1, 0x0b, "{what:?}"),
        }
        for x in [h, other, opener] {
            x.close();
        }
        finish(sim);
    }
}

/// From NDIS 6.30, a miniport that sets
/// `NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND` keeps the stack running
/// through a power change when every protocol is of 6.30 or later
/// (OID_PNP_SET_POWER): the binding is neither paused after
/// `NetEventSetPower` for D3 nor restarted before the one for D0. What the
/// driver could not set meanwhile, the multicast union after a handle's
/// close and the packet filter of a handle that opened, is set once the
/// adapter is back in D0, not left for a restart that does not come; a
/// read that was waiting then gets its broadcast frame.
#[test]
fn what_low_power_refused_is_set_at_d0_without_a_restart() {
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let sim = start(&["null@pause-on-suspend=off"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h1, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
    let (h2, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
    assert_eq!(set_multicast(&h1, &[g(1)]), (NtStatus::SUCCESS, 0));
    assert_eq!(set_multicast(&h2, &[g(2)]), (NtStatus::SUCCESS, 0));
    assert_eq!(adapter_has(&sim, a), (0x03, vec![g(1), g(2)]));
    // D3: the binding stays Running.
    sim.set_power(a, 4).unwrap();
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    assert!(!sim.pnp_log(a, false).iter().any(|&(ev, _)| ev == ndis_sys::NetEventPause));
    // The close's union and the new handle's filter wait (a read that
    // waits asks for the filter again: still in low power).
    h2.close();
    let (rx, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::BROADCAST, &[]);
    let read = rx.read_async(4096).unwrap();
    // (Until the binding's work item has given up on the filter: it tries
    // an owed one again a few times in a row.)
    let failed = || sim.debug_output().iter().filter(|l| l.contains("setting packet filter 0xb failed")).count();
    let mut seen = failed();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = failed();
        if now == seen {
            break;
        }
        seen = now;
    }
    assert!(seen > 0, "the filter was refused in low power");
    assert_eq!(adapter_has(&sim, a), (0x03, vec![g(1), g(2)]), "nothing reaches the adapter in low power");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    // D0, with no restart: both are set.
    sim.set_power(a, 1).unwrap();
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    let want = (0x0b, vec![g(1)]);
    let t0 = std::time::Instant::now();
    while adapter_has(&sim, a) != want && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(adapter_has(&sim, a), want, "the filter and the union, set again in D0");
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 7);
    sim.inject(a, &[&f[..]], &ndisim::InjectOpts::default()).unwrap();
    let r = read.wait_for(std::time::Duration::from_secs(10)).expect("the read gets the broadcast frame");
    assert_eq!(records(&r).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![f]);
    for h in [h1, rx] {
        h.close();
    }
    finish(sim);
}

/// Who cancels a user's request while its call is still inside
/// `NdisOidRequest`.
#[derive(Debug, Clone, Copy)]
enum CancelBy {
    /// The user (`CancelIoEx` on the handle).
    User,
    /// The handle's close (its cleanup cancels the handle's requests).
    Close,
    /// The unbind (it cancels every request on the binding).
    Unbind,
}

/// A cancel that comes while the driver's call is still inside
/// `NdisOidRequest` (ndisim stalls it on entry, before NDIS holds the
/// request, so the `NdisCancelOidRequest` the cancel makes finds nothing)
/// is not lost: once the call returns `NDIS_STATUS_PENDING` the driver
/// asks again. The adapter holds every request, so only that second
/// cancel ends this one: the user's and the close's IRP completes
/// cancelled, and the unbind (whose close waits for the request) completes
/// with the adapter still holding the rest, the request aborted.
#[test]
fn a_cancel_while_the_call_is_inside_ndis_oid_request_is_not_lost() {
    for by in [CancelBy::User, CancelBy::Close, CancelBy::Unbind] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let mut input = vec![0u8; 16];
        rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
        sim.hold_oids(a).unwrap();
        sim.stall_oid_calls(a).unwrap();
        std::thread::scope(|s| {
            let call = s.spawn(|| h.ioctl(IOCTL_RAWNIC_QUERY_OID, &input, 64));
            until("the OID call reaches NdisOidRequest", || sim.stalled_oid_calls(a) == 1);
            let unbind = match by {
                CancelBy::User => {
                    assert_eq!(h.cancel_io(), 1, "the request has its cancel routine");
                    None
                }
                CancelBy::Close => {
                    h.close_shared(false);
                    None
                }
                CancelBy::Unbind => Some(s.spawn(|| sim.unbind(a))),
            };
            if unbind.is_some() {
                until("the unbind handler runs", || transitions(&sim).iter().any(|(_, _, ev)| ev == "Unbind"));
            }
            // The cancel has come (and found nothing NDIS holds).
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(sim.stalled_oid_calls(a), 1, "{by:?}: the call is still inside NdisOidRequest");
            sim.release_oid_calls(a).unwrap();
            let t0 = std::time::Instant::now();
            while !call.is_finished() {
                assert!(t0.elapsed().as_secs() < 10, "{by:?}: the request still pends: its cancel was lost");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let r = call.join().unwrap();
            match by {
                CancelBy::User | CancelBy::Close => {
                    assert_eq!(status(r.status), NtStatus::CANCELLED, "{by:?}");
                }
                CancelBy::Unbind => {
                    assert_eq!(r.status, 0, "{by:?}: {:?}", status(r.status));
                    let (hdr, _) = OidReplyHeader::parse(&r.data, true).unwrap();
                    assert_eq!(
                        hdr.ndis_status,
                        ndis_sys::NDIS_STATUS_REQUEST_ABORTED,
                        "{by:?}: the driver cancelled it"
                    );
                }
            }
            if let Some(u) = unbind {
                u.join().unwrap().unwrap();
            }
        });
        assert_eq!(sim.outstanding(a).oids_pending, 0, "{by:?}");
        assert!(sim.violations().is_empty(), "{by:?}: {:?}", sim.violations());
        sim.release_oids(a).unwrap();
        h.close();
        finish(sim);
    }
}

/// The pool a held user query of the link speed keeps besides its answer
/// buffer of `room` bytes: its request block, the one allocation a query
/// makes after the handle listed it and before its id is known (the
/// handle's list has room: an earlier query grew it). Leaves the adapter
/// holding OIDs.
fn request_block_size(sim: &Sim, a: AdapterId, h: &Handle) -> usize {
    sim.hold_oids(a).unwrap();
    let first = link_speed_query(h);
    let room = 777;
    let mut input = vec![0u8; 16];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
    let before = sim.pool_stats().bytes;
    let second = h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &input, 16 + room).unwrap();
    let held = sim.pool_stats().bytes - before;
    sim.release_oids(a).unwrap();
    for t in [first, second] {
        assert_eq!(t.wait().unwrap().status, 0);
    }
    sim.hold_oids(a).unwrap();
    assert!(held > room && held - room < 4096, "a held query keeps {held} bytes");
    held - room
}

/// A cancel that comes while the request is listed on its handle but its
/// id is not known yet (ndisim stalls the allocation of its request block,
/// before `request_oid` registers it): the cancel routine (or the close's
/// cleanup) finds no id to pass on, marks it, and the sender cancels it
/// once NDIS holds it. The adapter holds every request, so only that
/// cancel ends this one: the IRP completes cancelled, nothing pends.
#[test]
fn a_cancel_before_the_requests_id_is_known_is_passed_on_by_its_sender() {
    for adapter in ["null", "null@oid=inline"] {
        for by in [CancelBy::User, CancelBy::Close] {
            let sim = start(&[adapter]);
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
            let block = request_block_size(&sim, a, &h);
            let mut input = vec![0u8; 16];
            rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
            sim.stall_pool_allocations_of(block);
            std::thread::scope(|s| {
                let call = s.spawn(|| h.ioctl(IOCTL_RAWNIC_QUERY_OID, &input, 64));
                until("the request is inside its block's allocation", || sim.stalled_pool_allocations() == 1);
                match by {
                    CancelBy::User => assert_eq!(h.cancel_io(), 1, "the request has its cancel routine"),
                    CancelBy::Close => h.close_shared(false),
                    CancelBy::Unbind => unreachable!(),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                assert_eq!(sim.stalled_pool_allocations(), 1, "{adapter} {by:?}: still inside the allocation");
                sim.release_pool_allocations();
                let t0 = std::time::Instant::now();
                while !call.is_finished() {
                    if t0.elapsed().as_secs() >= 5 {
                        sim.release_oids(a).unwrap();
                        panic!("{adapter} {by:?}: the request still pends: its cancel was lost");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let r = call.join().unwrap();
                assert_eq!(status(r.status), NtStatus::CANCELLED, "{adapter} {by:?}");
            });
            assert_eq!(sim.outstanding(a).oids_pending, 0, "{adapter} {by:?}");
            assert!(sim.violations().is_empty(), "{adapter} {by:?}: {:?}", sim.violations());
            sim.release_oids(a).unwrap();
            h.close();
            finish(sim);
        }
    }
}

/// `NetEventSetPower` for D3 while the OID call inside `NdisOidRequest` is
/// the binding's own work item's (the multicast union it sets again after
/// a user's set failed): the event waits for that call, and its
/// completion, which the call's end hands to the work item, is made by
/// that same work item when the call returns (a work item runs one run at
/// a time, so the run must look for work that came while it ran). Back in
/// D0 nothing is left behind.
#[test]
fn a_set_power_waits_for_the_work_items_oid_call_and_that_run_completes_it() {
    let g1 = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    for adapter in ["null", "null@pause-on-suspend=off"] {
        let sim = start(&[adapter]);
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
        sim.hold_oids(a).unwrap();
        let mut input = vec![0u8; 16 + 6];
        rawnic_proto::OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &g1 }.emit(&mut input).unwrap();
        let set = h.ioctl_async(IOCTL_RAWNIC_SET_OID, &input, 64).unwrap();
        until("the user's set reaches the adapter", || !sim.pending_oids(a).is_empty());
        let held = sim.pending_oids(a);
        assert_eq!(held.len(), 1, "{adapter}: {:?}", held.iter().map(|o| o.oid).collect::<Vec<_>>());
        // The calls stall from now on; the adapter fails the user's set
        // (a shortage): the handle gets its old list back and the work item
        // sets the union again, its call stalled inside NdisOidRequest.
        sim.stall_oid_calls(a).unwrap();
        assert!(sim.complete_oid(a, held[0].seq, Some(ndis_sys::NDIS_STATUS_RESOURCES)).unwrap());
        let r = set.wait().unwrap();
        assert_eq!(r.status, 0, "{adapter}");
        let (hdr, _) = OidReplyHeader::parse(&r.data, false).unwrap();
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_RESOURCES, "{adapter}");
        until("the work item's set reaches NdisOidRequest", || sim.stalled_oid_calls(a) == 1);
        std::thread::scope(|s| {
            let power = s.spawn(|| sim.set_power(a, 4));
            until("the set-power handler returns", || !sim.pnp_pending(a).is_empty() || power.is_finished());
            assert_eq!(
                sim.pnp_pending(a),
                vec![ndis_sys::NetEventSetPower],
                "{adapter}: the set-power event waits for the work item's call"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!power.is_finished(), "{adapter}: the set-power event is still pending");
            sim.release_oid_calls(a).unwrap();
            let t0 = std::time::Instant::now();
            while !power.is_finished() {
                assert!(t0.elapsed().as_secs() < 10, "{adapter}: the set-power event was never completed");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            power.join().unwrap().unwrap();
        });
        assert!(sim.pnp_pending(a).is_empty(), "{adapter}");
        // The work item's set is the one request the adapter holds.
        let held = sim.pending_oids(a);
        assert_eq!(held.iter().map(|o| o.oid).collect::<Vec<_>>(), [ndis_sys::OID_802_3_MULTICAST_LIST], "{adapter}");
        sim.release_oids(a).unwrap();
        assert!(sim.violations().is_empty(), "{adapter}: {:?}", sim.violations());
        sim.set_power(a, 1).unwrap();
        let (hdr, _) = oid_query(&h, ndis_sys::OID_GEN_LINK_SPEED, 64);
        assert_eq!(hdr.ndis_status, ndis_sys::NDIS_STATUS_SUCCESS, "{adapter}");
        h.close();
        finish(sim);
    }
}

/// A user's OID request that comes while an unbind waits for a request
/// whose cancel the miniport ignores is refused at once,
/// STATUS_DEVICE_REMOVED, a query and a multicast set alike (the handle
/// no longer has a binding to send them on): nothing of it reaches NDIS,
/// and nothing is left pending, so the unbind and the close complete, the
/// handle's requests all end, and the verifier stays clean. (Would catch:
/// a request sent to a binding that is closing; a refused request left on
/// the handle's list, so its close waits for it; its IRP never completed.
/// The narrower race, a request that found the binding and reaches
/// `request_oid` after the close began, is refused there the same way
/// (`Refusal::Closing`); only the explorer's schedules reach it.)
#[test]
fn a_user_oid_while_an_unbind_waits_is_refused_as_device_removed() {
    let g = |i: u8| [0x01, 0x00, 0x5e, 0x00, 0x00, i];
    let sim = start(&["null@cancel-ignore=1000"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::DIRECTED | PacketFilter::MULTICAST, &[]);
    assert_eq!(set_multicast(&h, &[g(1)]), (NtStatus::SUCCESS, 0));
    let held = held_link_speed_query(&sim, a, &h);
    let before = sim.oid_log(a, false).len();
    let mut reached = Vec::new();
    std::thread::scope(|s| {
        let unbind = s.spawn(|| sim.unbind(a));
        // Queries until one is refused: the unbind's close has begun.
        // Those before it reach NDIS, which holds them.
        let refused = loop {
            assert!(reached.len() < 40, "no query refused while the unbind waits");
            let t = link_speed_query(&h);
            match t.wait_for(std::time::Duration::from_millis(20)) {
                Some(r) => break r,
                None => reached.push(t),
            }
        };
        assert_eq!(status(refused.status), NtStatus::DEVICE_REMOVED);
        assert_eq!(set_multicast(&h, &[g(1), g(2)]).0, NtStatus::DEVICE_REMOVED);
        // Nothing refused reached NDIS: only the queries held before.
        let log = sim.oid_log(a, false);
        assert_eq!(log.len() - before, reached.len(), "{log:?}");
        assert!(!log[before..].iter().any(|&(_, oid)| oid == ndis_sys::OID_802_3_MULTICAST_LIST), "{log:?}");
        assert!(!unbind.is_finished(), "the unbind waits for the held requests");
        sim.release_oids(a).unwrap();
        unbind.join().unwrap().unwrap();
    });
    for t in reached.iter().chain([&held]) {
        assert!(t.wait().is_some(), "every request the miniport held ends");
    }
    assert_eq!(sim.outstanding(a).oids_pending, 0);
    h.close();
    finish(sim);
}
