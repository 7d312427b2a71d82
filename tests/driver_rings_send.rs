//! Zero-copy sends from rings (`rawnic_proto::ring`) of the real rawnic.sys
//! in ndisim: every frame a kick takes completes on the completion ring,
//! bad descriptors are refused and counted, other handles get the frames
//! as they went out, and a detach, a pause, a close or a kick that can
//! make no NBL waits for or gives back every frame NDIS has. The verifier
//! stays clean. (Receive, attach and detach: `driver_rings.rs`.)

use ndisim::{InjectOpts, Sim};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// `sim_with("null")` under the special pool, which catches a ring freed
/// while NDIS still has its sends.
fn special_pool_sim() -> (Sim, ndisim::AdapterId) {
    let sim = rawnic_tests::rawnic_builder().adapter("null").special_pool(true).start().unwrap();
    let a = sim.adapter_id("null0").unwrap();
    (sim, a)
}

/// Writes a frame into `u`'s frames `frames` and posts them on its tx
/// ring.
fn post_frames(u: &User, frames: std::ops::Range<u64>) {
    let f = frame(PEER, PEER, 0x88b5, 200, 3);
    for i in frames.clone() {
        u.m.write(u.frame(i) as usize, &f);
    }
    u.tx(&frames.map(|i| TxDesc { addr: u.frame(i), len: 200, flags: 0 }).collect::<Vec<_>>());
}

/// `post_frames`, then a kick; every one must be taken.
fn send_frames(h: &ndisim::Handle, u: &User, frames: std::ops::Range<u64>) {
    post_frames(u, frames.clone());
    assert_eq!(kick(h).1.unwrap().sent as usize, frames.count());
}

#[test]
fn zero_copy_sends_complete_every_frame_and_refuse_bad_descriptors() {
    let (sim, a) = sim_with("null");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(PEER, PEER, 0x88b5, 60 + 400 * i, 10 + i as u32)).collect();
    for (i, f) in frames.iter().enumerate() {
        u.m.write(u.frame(i as u64) as usize + 100, f);
    }
    // A tagged frame of MTU + 18 (SEND_BATCH and WriteFile take it, as
    // they copy it first): the NIC would read its tag in place, where the
    // user may have changed it after the check, so a kick refuses it.
    let mut tagged = frame(PEER, PEER, 0x8100, 1518, 20);
    tagged[14..18].copy_from_slice(&[0x00, 0x07, 0x88, 0xb5]);
    u.m.write(u.frame(5) as usize, &tagged);
    let good = |i: usize| TxDesc { addr: u.frame(i as u64) + 100, len: frames[i].len() as u32, flags: 0 };
    let bad = [
        TxDesc { addr: u.frame(4) + 2000, len: 60, flags: 0 },
        TxDesc { addr: u.frame(0), len: 13, flags: 0 },
        TxDesc { addr: u.frame(0), len: 1515, flags: 0 },
        TxDesc { addr: u.frame(70), len: 60, flags: 0 },
        TxDesc { addr: u.frame(0), len: 60, flags: 1 },
        TxDesc { addr: u.frame(5), len: 1518, flags: 0 },
    ];
    u.tx(&[good(0), bad[0], good(1), bad[1], bad[2], good(2), bad[3], bad[4], good(3), bad[5]]);
    let (s, reply) = kick(&h);
    assert_eq!(s, NtStatus::SUCCESS);
    let reply = reply.unwrap();
    assert_eq!((reply.sent, reply.invalid), (4, 6));
    assert_eq!(sim.sent_frames(a), 4);
    let wire: Vec<Vec<u8>> = sim.captured(a).into_iter().map(|f| f.data).collect();
    assert_eq!(wire, frames, "NDIS read the frames where the user wrote them");
    let mut comps = u.completions();
    assert_eq!(comps.len(), 10, "every descriptor comes back, sent or not");
    comps.sort();
    let mut want: Vec<u64> = (0..4).map(|i| good(i).addr).chain(bad.iter().map(|d| d.addr)).collect();
    want.sort();
    assert_eq!(comps, want);
    assert_eq!(u.counter(control::TX_FRAMES), 4);
    assert_eq!(u.counter(control::TX_INVALID), 6);
    assert_eq!(stats(&h).handle.tx_frames, 4);
    // An empty tx ring: a kick sends nothing.
    assert_eq!(kick(&h).1.unwrap().sent, 0);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// Zero-copy sends from a UMEM of 4 KiB frames (the other tests' are 2
/// KiB; `TxRun::take` walks each size in its own copy, with its own
/// shift and mask): frames in the upper half of their frame and past
/// the first frames go out from where the user wrote them, one that
/// crosses 2 KiB inside its frame and one that ends with the last frame
/// are sent, and one that runs past its 4 KiB frame is refused.
#[test]
fn zero_copy_sends_from_4k_frames_read_where_the_user_wrote() {
    let (sim, a) = sim_with("null");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, RingSetup { frame_size: 4096, ..SETUP });
    assert_eq!(u.l.frame_size, 4096);
    // (frame, offset within it, length): the first frame low and high, a
    // frame's upper half, across its middle, one low, the last frame's
    // last bytes (`ZcFiller::fill`'s bound: the frame's end).
    let last = u64::from(SETUP.frame_count) - 1;
    let places =
        [(0u64, 0u64, 60usize), (0, 2100, 300), (1, 3000, 1000), (2, 2000, 200), (3, 100, 1514), (last, 4096 - 60, 60)];
    let frames: Vec<Vec<u8>> =
        places.iter().enumerate().map(|(i, &(_, _, len))| frame(PEER, PEER, 0x88b5, len, 70 + i as u32)).collect();
    for (&(f, within, _), bytes) in places.iter().zip(&frames) {
        u.m.write((u.frame(f) + within) as usize, bytes);
    }
    let good: Vec<TxDesc> = places
        .iter()
        .map(|&(f, within, len)| TxDesc { addr: u.frame(f) + within, len: len as u32, flags: 0 })
        .collect();
    // Across the end of its 4 KiB frame, and past the last frame.
    let bad =
        [TxDesc { addr: u.frame(4) + 4000, len: 200, flags: 0 }, TxDesc { addr: u.frame(last + 1), len: 60, flags: 0 }];
    let mut descs = good.clone();
    descs.insert(3, bad[0]);
    descs.push(bad[1]);
    u.tx(&descs);
    let (s, reply) = kick(&h);
    assert_eq!(s, NtStatus::SUCCESS);
    let reply = reply.unwrap();
    assert_eq!((reply.sent, reply.invalid), (good.len() as u32, 2));
    let wire: Vec<Vec<u8>> = sim.captured(a).into_iter().map(|f| f.data).collect();
    assert_eq!(wire.len(), frames.len());
    for (i, (got, &(f, within, _))) in wire.iter().zip(&places).enumerate() {
        assert!(got == &frames[i], "frame {i} (frame {f} + {within}): NDIS read it elsewhere");
    }
    let mut comps = u.completions();
    comps.sort();
    let mut want: Vec<u64> = descs.iter().map(|d| d.addr).collect();
    want.sort();
    assert_eq!(comps, want, "every descriptor comes back, sent or not");
    assert_eq!(u.counter(control::TX_FRAMES), good.len() as u64);
    assert_eq!(u.counter(control::TX_INVALID), 2);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn zero_copy_sends_reach_the_other_handles_as_they_went_out() {
    let (sim, a) = sim_with("null");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (reader, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let (ringed, _) = open(&sim, 0, filter::PROMISCUOUS, &[0x88b5]);
    let (quiet, _) = open_with(&sim, 0, filter::PROMISCUOUS, &[], LocalSends::None);
    let u = User::attach(&h, SETUP);
    let r = User::attach(&ringed, SETUP);
    r.fill((0..8).map(|i| r.frame(i)));
    let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(PEER, PEER, 0x88b5, 60 + 500 * i, 40 + i as u32)).collect();
    for (i, f) in frames.iter().enumerate() {
        u.m.write(u.frame(i as u64) as usize, f);
    }
    let arp = frame(PEER, PEER, 0x0806, 60, 50);
    u.m.write(u.frame(3) as usize, &arp);
    let descs: Vec<TxDesc> = (0..4)
        .map(|i| TxDesc { addr: u.frame(i), len: if i < 3 { frames[i as usize].len() } else { 60 } as u32, flags: 0 })
        .collect();
    u.tx(&descs);
    assert_eq!(kick(&h).1.unwrap().sent, 4);
    // A ReadFile reader gets all four, marked outbound, as they reached
    // the wire.
    let got = read(&reader, 1 << 16);
    let wire: Vec<Vec<u8>> = sim.captured(a).into_iter().map(|f| f.data).collect();
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), wire);
    assert!(got.iter().all(|(h, _)| h.flags & frame_flags::OUTBOUND != 0));
    // A handle with rings gets those its filter takes in its rx ring.
    let placed: Vec<Vec<u8>> = r
        .rx()
        .into_iter()
        .map(|(d, b)| {
            assert_eq!(d.flags & frame_flags::OUTBOUND, frame_flags::OUTBOUND);
            b
        })
        .collect();
    assert_eq!(placed, frames);
    // One that wants no local sends, and the sender, get none.
    assert_eq!(stats(&quiet).queued_frames, 0);
    assert_eq!(stats(&h).handle.rx_frames, 0);
    assert_eq!(u.completions().len(), 4);
    detach(&h, u);
    detach(&ringed, r);
    for x in [h, reader, ringed, quiet] {
        x.close();
    }
    finish(sim);
}

#[test]
fn a_detach_waits_for_sends_with_ndis_and_a_pause_waits_for_them_too() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 200, 3);
    u.m.write(u.frame(1) as usize, &f);
    sim.hold_sends(a).unwrap();
    u.tx(&[TxDesc { addr: u.frame(1), len: 200, flags: 0 }]);
    assert_eq!(kick(&h).1.unwrap().sent, 1);
    assert_eq!(sim.outstanding(a).sends_in_flight, 1);
    // Detached with a send still with NDIS: the attach stays pending (the
    // pages stay locked) until it comes back.
    let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    assert!(u.attach.try_result().is_none(), "a send of the UMEM is still with NDIS");
    assert_eq!(kick(&h).0, NtStatus::INVALID_DEVICE_STATE, "no rings after a detach");
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    let done = u.attach.wait().unwrap();
    assert_eq!(status(done.status), NtStatus::SUCCESS);
    assert_eq!(u.completions(), [u.frame(1)], "the completion was posted before the pages unlocked");
    // A second attach on the same handle works after the first is gone.
    let u2 = User::attach(&h, SETUP);
    detach(&h, u2);
    h.close();
    finish(sim);
}

/// A detach takes the rings off the handle at once, even while it waits
/// for a zero-copy send NDIS still has (their user is done with them, and
/// may unmap the UMEM as soon as the attach completes): frames that come
/// meanwhile to the handle, its binding's one receiver, go to its queue
/// for ReadFile as a handle's without rings do, each counted delivered;
/// none is written into the UMEM or published on its rx ring.
#[test]
fn frames_that_come_while_a_detach_waits_for_a_send_go_to_the_queue_not_the_umem() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..16).map(|i| u.frame(i)));
    sim.hold_sends(a).unwrap();
    send_frames(&h, &u, 20..21);
    let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    assert!(u.attach.try_result().is_none(), "a send of the UMEM is still with NDIS");
    let before = stats(&h);
    let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(BROADCAST, PEER, 0x88b5, 100 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 4);
    let s = stats(&h);
    let moved = |f: fn(&StatsReply) -> u64| f(&s) - f(&before);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!((moved(|s| s.handle.rx_frames), moved(|s| s.handle.rx_queue_drops)), (4, 0));
    assert_eq!((moved(|s| s.handle.rx_bytes), moved(|s| s.binding.rx_bytes)), (bytes, bytes));
    assert_eq!(s.queued_frames, 4);
    assert_eq!(u.counter(control::RX_FRAMES), 0, "the rings counted nothing");
    assert_eq!(u.m.load_u32(u.l.rx.producer()), 0, "nothing published on the rx ring");
    let got = read(&h, 1 << 16);
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), frames, "read in order");
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    let done = u.attach.wait().unwrap();
    assert_eq!(status(done.status), NtStatus::SUCCESS);
    assert_eq!(u.completions(), [u.frame(20)]);
    h.close();
    finish(sim);
}

#[test]
fn a_user_changing_a_frame_while_ndis_sends_it_is_not_the_drivers_fault() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 300, 4);
    u.m.write(u.frame(2) as usize, &f);
    sim.hold_sends(a).unwrap();
    u.tx(&[TxDesc { addr: u.frame(2), len: 300, flags: 0 }]);
    assert_eq!(kick(&h).1.unwrap().sent, 1);
    // The user owns the memory; Windows lets it write a frame NDIS is
    // sending (the wire gets whatever is there). Only the driver's writes
    // are the driver's fault.
    u.m.write(u.frame(2) as usize + 20, &[0xEE; 100]);
    assert_eq!(sim.release_sends(a, None).unwrap(), 1);
    assert_eq!(u.completions(), [u.frame(2)]);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn rings_outlive_their_handle_while_ndis_has_their_sends() {
    // A zero-copy NBL names its ring without a count of its own: the ring's
    // anchor keeps it while NDIS has any of its sends. With the handle
    // closed (its rings detached and dropped by it), the completions,
    // coming back in two parts, must still find the ring; the special pool
    // catches a ring freed too early. Closed by the user, or by a process
    // that exits: its requests are cancelled first (the attach's cancel is
    // the detach, and a wait on the rings ends), then the handle closes.
    for dies in [false, true] {
        let (sim, a) = special_pool_sim();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let u = User::attach(&h, SETUP);
        sim.hold_sends(a).unwrap();
        // Three kicks: three NBLs (a kick's frames share NBLs).
        for i in 0..3 {
            send_frames(&h, &u, i..i + 1);
        }
        let wait =
            h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::COMPLETION), RingReply::LEN).unwrap();
        assert!(wait.try_result().is_none(), "no completion yet: the wait pends");
        if dies {
            h.abandon();
        } else {
            h.close();
        }
        assert_eq!(status(wait.wait().unwrap().status), NtStatus::CANCELLED, "dies: {dies}");
        assert!(u.attach.try_result().is_none(), "dies: {dies}: the UMEM stays locked while NDIS has its frames");
        assert_eq!(sim.release_sends(a, Some(1)).unwrap(), 1);
        assert!(u.attach.try_result().is_none(), "dies: {dies}: two frames still with NDIS");
        assert_eq!(sim.release_sends(a, None).unwrap(), 2);
        assert_eq!(status(u.attach.wait().unwrap().status), NtStatus::CANCELLED, "dies: {dies}");
        assert_eq!(u.completions(), [u.frame(0), u.frame(1), u.frame(2)], "dies: {dies}");
        finish(sim);
    }
}

#[test]
fn completions_of_two_rings_interleaved_in_one_chain_each_find_their_ring() {
    // NDIS gives back one chain holding A's sends, then B's, then A's
    // again (an NBL per kick, the first two of two frames each): each run
    // goes to its own ring, and A's anchor keeps A (its handle closed
    // meanwhile) until the last of its runs.
    let (sim, a) = special_pool_sim();
    let (ha, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (hb, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (ua, ub) = (User::attach(&ha, SETUP), User::attach(&hb, SETUP));
    sim.hold_sends(a).unwrap();
    send_frames(&ha, &ua, 0..2);
    send_frames(&hb, &ub, 0..2);
    send_frames(&ha, &ua, 2..3);
    assert_eq!(sim.outstanding(a).sends_in_flight, 3, "one NBL per kick");
    ha.close();
    assert!(ua.attach.try_result().is_none(), "three of A's frames are with NDIS");
    assert_eq!(sim.release_sends(a, None).unwrap(), 3);
    assert_eq!(status(ua.attach.wait().unwrap().status), NtStatus::CANCELLED);
    assert_eq!(ua.completions(), [ua.frame(0), ua.frame(1), ua.frame(2)]);
    assert_eq!(ub.completions(), [ub.frame(0), ub.frame(1)]);
    detach(&hb, ub);
    hb.close();
    finish(sim);
}

/// NDIS may give back in one chain NBLs of the send pool (a SEND_BATCH's
/// copies) and zero-copy ones (a ring's kick) mixed: the driver splits the
/// chain by kind (`split_mixed`), each in its order. Here one chain holds a
/// copy send, two of a ring's kicks and a copy send between them: every
/// frame of the kicks comes back on the completion ring, the copies are
/// counted sent, the pool's NBLs go back to the pool (the next sends find
/// them), and the verifier is clean. The explorer never makes such a chain
/// (coverage, branch cov10): no schedule holds a ring's and a copy send's
/// completions on one adapter at once.
#[test]
fn a_completed_chain_mixing_copies_and_zero_copy_sends_is_split_by_kind() {
    let (sim, a) = special_pool_sim();
    let (hc, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (hr, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&hr, SETUP);
    sim.hold_sends(a).unwrap();
    let f = frame(PEER, PEER, 0x88b5, 120, 7);
    assert_eq!(send(&hc, &[f.clone(), f.clone()]).accepted, 2);
    send_frames(&hr, &u, 0..2);
    assert_eq!(send(&hc, std::slice::from_ref(&f)).accepted, 1);
    send_frames(&hr, &u, 2..5);
    assert_eq!(send(&hc, &[f.clone(), f.clone(), f.clone()]).accepted, 3);
    let held = sim.outstanding(a).sends_in_flight;
    assert_eq!(held, 2 + 1 + 1 + 1 + 3, "an NBL per copy, one per kick");
    assert!(u.completions().is_empty(), "nothing back yet");
    // One chain, the kinds mixed.
    assert_eq!(sim.release_sends(a, None).unwrap() as u64, held);
    assert_eq!(u.completions(), (0..5).map(|i| u.frame(i)).collect::<Vec<_>>(), "the ring's frames, in order");
    assert_eq!(u.counter(control::TX_FRAMES), 5);
    let st = stats(&hc);
    assert_eq!((st.handle.tx_frames, st.handle.tx_in_flight, st.handle.tx_errors), (6, 0, 0));
    assert_eq!(stats(&hr).handle.tx_in_flight, 0);
    assert_eq!(sim.outstanding(a).sends_in_flight, 0);
    assert_eq!(sim.sent_frames(a), 11);
    // The pool and the ring go on: both kinds again, completed at once.
    sim.set_completion(a, ndisim::CompletionPolicy::Immediate).unwrap();
    assert_eq!(send(&hc, &[f.clone(), f]).accepted, 2);
    send_frames(&hr, &u, 5..7);
    assert_eq!(u.completions().len(), 2);
    assert_eq!(sim.sent_frames(a), 15);
    detach(&hr, u);
    hr.close();
    hc.close();
    finish(sim);
}

/// Zero-copy NBLs are made as kicks first need them: a kick that can make
/// none leaves the tx ring as it was and says so, the next kick sends the
/// frames, and the NBLs made are reused (a kick while none can be made
/// still sends).
#[test]
fn a_kick_that_can_make_no_nbl_leaves_the_tx_ring_and_says_so() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    post_frames(&u, 0..6);
    sim.refuse_nbl_allocations(u64::MAX);
    let (s, reply) = kick(&h);
    assert_eq!((s, reply), (NtStatus::INSUFFICIENT_RESOURCES, None));
    assert_eq!(u.m.load_u32(u.l.tx.consumer()), 0, "no descriptor taken");
    assert!(u.completions().is_empty(), "nothing completed: the frames wait on the tx ring");
    assert_eq!(sim.sent_frames(a), 0);
    assert_eq!(u.counter(control::TX_INVALID), 0);
    sim.refuse_nbl_allocations(0);
    assert_eq!(kick(&h).1.unwrap().sent, 6, "the same frames, now");
    let mut comps = u.completions();
    comps.sort();
    assert_eq!(comps, (0..6).map(|i| u.frame(i)).collect::<Vec<_>>());
    // The six NBLs are ours again: no allocation is needed for six more.
    sim.refuse_nbl_allocations(u64::MAX);
    send_frames(&h, &u, 6..12);
    assert_eq!(u.completions().len(), 6);
    assert_eq!(sim.sent_frames(a), 12);
    assert_eq!(sim.refuse_nbl_allocations(0), u64::MAX, "no NBL was asked for");
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A ring's zero-copy NBLs are made as kicks need them, not up to its bound
/// at once: a first kick of six frames asks NDIS for six NET_BUFFERs and
/// one NBL (six frames share an NBL), and nothing more; a second one of
/// six reuses them.
#[test]
fn a_kick_makes_the_nbls_it_needs_and_no_more() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    // Seven allocations go through; any after them is refused (and counted).
    sim.refuse_nbl_allocations_after(7, u64::MAX);
    send_frames(&h, &u, 0..6);
    send_frames(&h, &u, 6..12);
    assert_eq!(u.completions().len(), 12);
    assert_eq!(sim.sent_frames(a), 12);
    assert_eq!(sim.refuse_nbl_allocations(0), u64::MAX, "an allocation past the six NET_BUFFERs and one NBL");
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A kick and a pause on two threads under the deterministic scheduler.
/// Over the seeds the pause comes before the kick's check (the kick is
/// refused and its frames stay on the tx ring), after its send (the pause
/// waits for the frames), or between the two: then the chain the kick made
/// is taken apart unsent, and every frame comes back on the completion ring
/// with none on the wire. Whatever the order, every frame is accounted for,
/// and the verifier (send-not-running) is clean.
#[test]
fn a_kick_racing_a_pause_sends_or_gives_back_every_frame() {
    let mut orders = [0u32; 3];
    for seed in 0..150u64 {
        let sim = rawnic_tests::rawnic_builder().adapter("null").deterministic(seed).start().unwrap();
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let u = User::attach(&h, SETUP);
        u.post_copies(&frame(PEER, PEER, 0x88b5, 200, 3), 4);
        // A few scheduling points first, so the pause also comes late.
        let (st, reply) = kick_racing(&sim, &h, seed % 64, || sim.pause(a).unwrap());
        let comps = u.completions();
        match st {
            NtStatus::SUCCESS => {
                assert_eq!(reply.unwrap().sent, 4, "seed {seed}");
                assert_eq!((comps.len(), sim.sent_frames(a)), (4, 4), "seed {seed}: the pause waited for them");
                orders[0] += 1;
            }
            NtStatus::DEVICE_NOT_READY if comps.is_empty() => {
                // Refused at its check: the frames wait on the tx ring.
                assert_eq!(sim.sent_frames(a), 0, "seed {seed}");
                sim.restart(a, &ndisim::RestartSpec::default()).unwrap();
                assert_eq!(kick(&h).1.unwrap().sent, 4, "seed {seed}: sent once the binding runs again");
                assert_eq!(u.completions().len(), 4, "seed {seed}");
                orders[1] += 1;
            }
            NtStatus::DEVICE_NOT_READY => {
                // Taken off the tx ring, then the pause: given back unsent.
                assert_eq!((comps.len(), sim.sent_frames(a)), (4, 0), "seed {seed}");
                assert_eq!(u.counter(control::TX_FRAMES), 0, "seed {seed}");
                orders[2] += 1;
            }
            s => panic!("seed {seed}: the kick completed with {s:?}"),
        }
        detach(&h, u);
        h.close();
        finish(sim);
    }
    assert!(orders.iter().all(|&n| n > 0), "every order met over the seeds (sent, refused, given back): {orders:?}");
}

/// A kick whose input is not an empty request, or whose output cannot take
/// the reply, is refused before the tx ring is looked at: nothing of it
/// goes out, and the next proper kick sends it all. Found by `xtask
/// mutants` (M88, M89: either check deleted, such a kick sent the ring's
/// frames, and with the short buffer the user was told it failed).
#[test]
fn a_kick_with_a_bad_request_or_a_short_reply_buffer_sends_nothing() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let u = User::attach(&h, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 200, 3);
    for i in 0..2 {
        u.m.write(u.frame(i) as usize, &f);
    }
    u.tx(&[TxDesc { addr: u.frame(0), len: 200, flags: 0 }, TxDesc { addr: u.frame(1), len: 200, flags: 0 }]);
    let mut long = empty();
    long.extend_from_slice(&[0; 4]);
    let mut old = empty();
    old[0] ^= 0x40;
    for (input, out, want) in [
        (long, RingReply::LEN, NtStatus::INFO_LENGTH_MISMATCH),
        (old, RingReply::LEN, NtStatus::REVISION_MISMATCH),
        (empty(), RingReply::LEN - 1, NtStatus::BUFFER_TOO_SMALL),
    ] {
        let r = h.ioctl(IOCTL_RAWNIC_RING_KICK, &input, out);
        assert_eq!(status(r.status), want, "input {input:02x?}, {out}-byte output");
        assert_eq!(sim.sent_frames(a), 0, "a refused kick sends nothing");
        assert!(u.completions().is_empty());
    }
    assert_eq!(kick(&h).1.unwrap().sent, 2);
    assert_eq!(sim.sent_frames(a), 2);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A kick of more frames than the driver copies out for the binding's other
/// handles at once (its runs of 32, in a 64 KiB buffer): 40 short frames
/// (more than a run) then 24 of 4000 bytes (more than the buffer) reach a
/// ReadFile reader all, whole and in the order they went out.
#[test]
fn a_kick_longer_than_a_local_run_reaches_the_other_handles_whole() {
    let (sim, a) = sim_with("null@mtu=9000");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    let (reader, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let setup = RingSetup { frame_size: 4096, frame_count: 64, fill: 32, rx: 32, tx: 64, completion: 64 };
    let u = User::attach(&h, setup);
    let frames: Vec<Vec<u8>> =
        (0..64u32).map(|i| frame(PEER, PEER, 0x88b5, if i < 40 { 60 + 3 * i as usize } else { 4000 }, i)).collect();
    for (i, f) in frames.iter().enumerate() {
        u.m.write(u.frame(i as u64) as usize, f);
    }
    let descs: Vec<TxDesc> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| TxDesc { addr: u.frame(i as u64), len: f.len() as u32, flags: 0 })
        .collect();
    u.tx(&descs);
    assert_eq!(kick(&h).1.unwrap().sent, 64);
    let wire: Vec<Vec<u8>> = sim.captured(a).into_iter().map(|f| f.data).collect();
    assert_eq!(wire, frames, "all went out, in order");
    let mut got = Vec::new();
    while got.len() < frames.len() {
        got.extend(read(&reader, 1 << 20).into_iter().map(|(_, d)| d));
    }
    assert_eq!(got, frames, "the reader got every frame, whole and in order");
    assert_eq!(u.completions().len(), 64);
    detach(&h, u);
    for x in [h, reader] {
        x.close();
    }
    finish(sim);
}
