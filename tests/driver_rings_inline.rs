//! Zero-copy send completions that NDIS makes inside a sender's
//! `NdisSendNetBufferLists`, under the sender's hold of the binding's send
//! gate (an NDIS RW lock): the IRPs they make ready (ring waits, a drained
//! ring's attach) complete once the gate is let go, never under it
//! (irp-complete-under-lock counts NDIS RW locks).

use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// A kick whose sends the adapter completes at once, inside the send call:
/// the completion-ring wait they satisfy completes after the call.
#[test]
fn a_wait_satisfied_inside_the_send_call_completes_after_it() {
    let sim = start(&["null"]);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 60, 1);
    u.m.write(u.frame(0) as usize, &f);
    let wait = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::COMPLETION), RingReply::LEN).unwrap();
    assert!(wait.try_result().is_none());
    u.tx(&[TxDesc { addr: u.frame(0), len: 60, flags: 0 }]);
    let (s, reply) = kick(&h);
    assert_eq!((s, reply.unwrap().sent), (NtStatus::SUCCESS, 1));
    let r = wait.wait().unwrap();
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    assert_ne!(RingReply::parse(&r.data).unwrap().ready & wait_flags::COMPLETION, 0);
    assert_eq!(u.completions(), [u.frame(0)]);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A ring detaching with a send still out is drained by a completion that
/// another handle's send brings (the adapter completes sends two at a
/// time, inside the send that makes the pair): its attach IRP completes
/// after that send call, not under the other handle's hold of the gate.
#[test]
fn a_ring_drained_inside_another_send_call_completes_its_attach_after_it() {
    let sim = start(&["null@completion=batch:2"]);
    let (a, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (b, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&a, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 60, 2);
    u.m.write(u.frame(0) as usize, &f);
    u.tx(&[TxDesc { addr: u.frame(0), len: 60, flags: 0 }]);
    let (s, reply) = kick(&a);
    assert_eq!((s, reply.unwrap().sent), (NtStatus::SUCCESS, 1));
    // The adapter holds the send (half a batch): the detach waits for it.
    let r = a.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    assert!(u.attach.try_result().is_none(), "the attach waits for the send NDIS still has");
    // The other handle's send completes the batch inside its send call.
    assert_eq!(send(&b, std::slice::from_ref(&f)).accepted, 1);
    let done = u.attach.wait().unwrap();
    assert_eq!(status(done.status), NtStatus::SUCCESS, "the attach completes once drained");
    b.close();
    a.close();
    finish(sim);
}

/// A send completion on another thread that makes a ring wait ready while
/// a sender holds the binding's send gate (stalled inside its
/// `NdisSendNetBufferLists`), itself stalled at each of its spin-lock
/// acquires in turn while the sender lets go of the gate: whichever side
/// looks last completes the wait. At the acquire between the completion's
/// look at the gate's holders (one) and its hand-over of the wait, the
/// sender lets go seeing nothing handed over yet; the completion must then
/// see the gate free after its hand-over and complete the wait itself, or
/// the wait stays pending until some later send lets go of the gate.
#[test]
fn a_wait_made_ready_as_the_sender_lets_go_of_the_gate_is_completed() {
    use rawnic_tests::races::{MAX_NTH, STALL, each_acquire};
    use std::time::Duration;
    let runs = each_acquire(&[0, 1], MAX_NTH, |seed, nth| {
        let what = format!("seed {seed}, acquire {nth}");
        let sim = start_with(&["null"], |b| b.deterministic(seed));
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let (other, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let u = User::attach(&h, SETUP);
        let f = frame(PEER, PEER, 0x88b5, 60, 3);
        u.m.write(u.frame(0) as usize, &f);
        u.tx(&[TxDesc { addr: u.frame(0), len: 60, flags: 0 }]);
        sim.hold_sends(a).unwrap();
        let (s, reply) = kick(&h);
        assert_eq!((s, reply.unwrap().sent), (NtStatus::SUCCESS, 1), "{what}");
        let wait =
            h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::COMPLETION), RingReply::LEN).unwrap();
        assert!(wait.try_result().is_none(), "{what}: nothing completed yet");
        sim.stall_send_calls(a).unwrap();
        sim.stall_lock_acquire("ProtocolSendNetBufferListsComplete", nth, STALL).unwrap();
        let write = std::sync::Mutex::new(None);
        sim.run_actors(vec![
            // The sender: in its call, under the gate, until released.
            Box::new(|| *write.lock().unwrap() = Some(other.write_async(&f).unwrap())),
            // The completion of the kicked frame, on a thread of its own.
            Box::new(|| {
                while sim.stalled_send_calls(a) == 0 {
                    sim.step();
                }
                assert_eq!(sim.release_sends(a, Some(1)).unwrap(), 1);
            }),
            // Lets the sender go once the completion stalled (or is done).
            Box::new(|| {
                while sim.stalled_send_calls(a) == 0 {
                    sim.step();
                }
                while sim.lock_acquire_stalls().2 == 0 && wait.try_result().is_none() && sim.held_sends(a) == 1 {
                    sim.step();
                }
                sim.release_send_calls(a).unwrap();
            }),
        ]);
        let stalled = sim.lock_acquire_stalls().1 == 1;
        // No send lets go of the gate from here: the wait is done already.
        sim.sleep(Duration::from_millis(5));
        let r =
            wait.try_result().unwrap_or_else(|| panic!("{what}: the ring wait its completion made ready still pends"));
        assert_eq!(status(r.status), NtStatus::SUCCESS, "{what}");
        assert_eq!(u.completions(), [u.frame(0)], "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.release_sends(a, None).unwrap();
        let w = write.into_inner().unwrap().expect("the write was made").wait().expect("the write ends");
        assert_eq!(status(w.status), NtStatus::SUCCESS, "{what}");
        detach(&h, u);
        other.close();
        h.close();
        finish(sim);
        stalled
    });
    eprintln!("{runs} stalled completions");
    assert!(runs > 0);
}
