//! Sends a miniport fails (`send-fail=`: they come back, at once or with
//! the NBLs it sent, with NDIS_STATUS_FAILURE, _RESOURCES, _MEDIA_DISCONNECTED, _REQUEST_ABORTED,
//! _SEND_ABORTED or _RESET_IN_PROGRESS, and go nowhere): rawnic counts each
//! as an error, not as sent, on the handle and the binding, and holds
//! nothing.

use rawnic_proto::*;
use rawnic_tests::drv::*;

fn frames(n: usize) -> Vec<(Vec<u8>, Option<u16>)> {
    (0..n).map(|i| (frame(PEER, PEER, 0x88b5, 60 + i, i as u32), None)).collect()
}

#[test]
fn every_send_failed_is_an_error_and_none_reaches_the_wire() {
    let sim = start(&["null@send-fail=1000"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&frames(16)), SendReply::LEN);
    assert_eq!(r.status, 0);
    assert_eq!(SendReply::parse(&r.data).unwrap().accepted, 16, "all went to NDIS");
    assert!(sim.settle(a));
    assert!(sim.captured(a).is_empty());
    // Each failed frame is kept as the driver's NBL held it.
    let want: Vec<Vec<u8>> = frames(16).into_iter().map(|(f, _)| f).collect();
    let mut failed = sim.take_failed_sends(a);
    failed.sort_by_key(|f| f.len());
    assert_eq!(failed, want);
    let st = stats(&h);
    assert_eq!((st.handle.tx_frames, st.handle.tx_errors, st.handle.tx_in_flight), (0, 16, 0));
    assert_eq!((st.binding.tx_frames, st.binding.tx_errors), (0, 16));
    assert_eq!(sim.sends_failed(), 16);
    h.close();
    finish(sim);
}

#[test]
fn some_sends_failed_some_sent_and_the_counts_add_up() {
    let sim = start(&["null@send-fail=500"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    for chunk in frames(200).chunks(25) {
        assert_eq!(h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(chunk), SendReply::LEN).status, 0);
    }
    let w = frame(PEER, PEER, 0x88b5, 60, 999);
    for _ in 0..40 {
        h.write(&w);
    }
    assert!(sim.settle(a));
    let wire = sim.captured(a).len() as u64;
    let st = stats(&h);
    assert_eq!(st.handle.tx_frames, wire, "sent is what reached the wire");
    assert_eq!(sim.take_failed_sends(a).len() as u64, sim.sends_failed(), "failed is what came back failed");
    assert_eq!(st.handle.tx_errors, sim.sends_failed());
    assert_eq!(st.handle.tx_frames + st.handle.tx_errors, 240);
    assert!((60..180).contains(&wire), "{wire} of 240 sent at 50 % failures");
    h.close();
    finish(sim);
}

/// Send NBLs an allocation failure could not make are made later: a pool
/// that grew during a shortage, a few NBLs at a time, fills those chunks
/// before it adds another. Before, each such growth kept its short chunk
/// (each chunk still holding its whole buffer) and the pool's bound of 64
/// chunks was reached at the 63rd shortage: 445 sends in flight at most,
/// for the binding's life, where 16,384 fit.
#[test]
fn a_send_pool_grown_in_a_shortage_fills_up_once_memory_is_back() {
    let sim = start(&["null@completion=held"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let in_flight = |n: usize| frames(n).into_iter().map(|(f, _)| f).collect::<Vec<_>>();
    // The pool's first chunk, all in flight.
    let mut held = send(&h, &in_flight(256)).accepted as usize;
    assert_eq!(held, 256);
    // 64 shortages, each letting three NBLs through, with every send held.
    for i in 0..64 {
        sim.refuse_nbl_allocations_after(3, 1);
        let n = send(&h, &in_flight(3)).accepted as usize;
        assert_eq!(n, 3, "shortage {i}");
        held += n;
    }
    sim.refuse_nbl_allocations(0);
    // Memory is back: 1,024 more go out at once.
    let more = send(&h, &in_flight(1024)).accepted as usize;
    assert_eq!(more, 1024, "the pool grows past what the shortages left");
    assert_eq!(sim.release_sends(a, None).unwrap(), held + more);
    h.close();
    finish(sim);
}

/// The send pool's bound is 16,384 NBLs (64 chunks of 256): a miniport
/// that holds every send gets that many at once, and a send past them is
/// refused for want of resources, not queued or sent. (Freeing 16,384
/// NBLs and their MDLs at the unbind takes ndisim seconds on a loaded
/// machine: the watchdog waits a minute.)
#[test]
fn a_miniport_holding_every_send_gets_sixteen_thousand_and_no_more() {
    let sim = start_with(&["null@completion=held"], |b| b.watchdog(std::time::Duration::from_secs(60)));
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let batch_of: Vec<Vec<u8>> = frames(1024).into_iter().map(|(f, _)| f).collect();
    let mut held = 0;
    for _ in 0..16 {
        held += send(&h, &batch_of).accepted as usize;
    }
    assert_eq!(held, 16384, "the pool grows to its bound");
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&frames(1)), SendReply::LEN);
    assert_eq!(NtStatus(r.status), NtStatus::INSUFFICIENT_RESOURCES, "and no further");
    assert_eq!(stats(&h).handle.tx_in_flight, 16384);
    assert_eq!(sim.release_sends(a, None).unwrap(), 16384);
    assert!(sim.settle(a));
    assert_eq!(stats(&h).handle.tx_frames, 16384);
    h.close();
    finish(sim);
}

/// A miniport (or NDIS) may give one send's NBLs back in pieces, in any
/// order, some inside `NdisSendNetBufferLists` and some later from a DPC
/// on another CPU, with NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL clear at
/// DISPATCH_LEVEL (`completion=scatter`): every frame is counted once, as
/// sent, across a pause and a restart, and nothing is held.
#[test]
fn sends_completed_in_pieces_out_of_order_and_unflagged_are_each_counted_once() {
    let sim = start(&["null@completion=scatter"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let w = frame(PEER, PEER, 0x88b5, 60, 999);
    for round in 0..2 {
        for chunk in frames(256).chunks(64) {
            let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(chunk), SendReply::LEN);
            assert_eq!(r.status, 0);
            assert_eq!(SendReply::parse(&r.data).unwrap().accepted, 64);
        }
        for _ in 0..32 {
            h.write(&w);
        }
        if round == 0 {
            sim.pause(a).unwrap();
            assert_eq!(stats(&h).handle.tx_in_flight, 0, "the pause waited for every piece");
            sim.restart(a, &ndisim::RestartSpec::default()).unwrap();
        }
    }
    sends_back(&sim, a);
    assert!(sim.settle(a));
    let st = stats(&h);
    assert_eq!((st.handle.tx_frames, st.handle.tx_errors, st.handle.tx_in_flight), (576, 0, 0));
    assert_eq!(st.binding.tx_frames, 576);
    assert_eq!(sim.captured(a).len(), 576);
    h.close();
    finish(sim);
}

/// A miniport completes the NBLs it failed with those it sent, in one
/// chain, each with its own status (`send-fail` marks them; for one send
/// in two they come back with the rest, by whichever completion policy):
/// rawnic reads each NBL's status, not the first's, so the sent frames
/// are the wire's and the errors NDIS's failures, under every policy.
#[test]
fn failed_and_sent_nbls_completed_in_one_chain_are_each_counted_by_their_own_status() {
    for policy in ["immediate", "scatter", "batch:8", "reorder:8", "delay:1"] {
        let sim = start(&[&format!("null@send-fail=300,completion={policy}")]);
        let a = sim.adapter_id("null0").unwrap();
        sim.set_capture(a, true);
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        for chunk in frames(320).chunks(32) {
            let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(chunk), SendReply::LEN);
            assert_eq!(r.status, 0, "{policy}");
            assert_eq!(SendReply::parse(&r.data).unwrap().accepted, 32, "{policy}");
        }
        sends_back(&sim, a);
        assert!(sim.settle(a), "{policy}");
        let wire = sim.captured(a).len() as u64;
        let st = stats(&h);
        assert_eq!(st.handle.tx_in_flight, 0, "{policy}");
        assert_eq!(st.handle.tx_frames, wire, "{policy}: sent is what reached the wire");
        assert_eq!(st.handle.tx_errors, sim.sends_failed(), "{policy}");
        assert_eq!((st.binding.tx_frames, st.binding.tx_errors), (wire, sim.sends_failed()), "{policy}");
        assert_eq!(wire + sim.sends_failed(), 320, "{policy}");
        assert!((160..290).contains(&wire), "{policy}: {wire} of 320 sent at 30 % failures");
        h.close();
        finish(sim);
    }
}

/// A send's completion counts for the handle that sent it and for no
/// later handle in its slot of the binding's table: one held by the
/// miniport while its handle closes and 65,534 others open and close
/// there (a 16-bit generation would have come round to the first's) is
/// not the next handle's, whose counters stay at nothing sent and nothing
/// in flight.
#[test]
fn a_late_completion_is_never_counted_for_a_later_handle() {
    let sim = start(&["null@completion=held"]);
    let a = sim.adapter_id("null0").unwrap();
    let (first, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let name = list(&first)[0].name.clone();
    assert_eq!(send(&first, &[frames(1).remove(0).0]).accepted, 1);
    first.close();
    let request = open_request(&name, PacketFilter::NONE, &[], 0, 0, 0);
    for i in 0..65_534 {
        let h = sim.open().unwrap();
        let r = h.ioctl(IOCTL_RAWNIC_OPEN, &request, OpenReply::LEN);
        assert_eq!(r.status, 0, "open {i}");
        h.close();
    }
    let (last, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    assert!(sim.settle(a));
    let s = stats(&last);
    assert_eq!((s.handle.tx_frames, s.handle.tx_in_flight, s.handle.tx_errors), (0, 0, 0));
    assert_eq!((s.binding.tx_frames, s.binding.tx_in_flight), (1, 0));
    last.close();
    finish(sim);
}
