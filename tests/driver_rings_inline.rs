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
