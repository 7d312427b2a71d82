//! Rings (`rawnic_proto::ring`) of the real rawnic.sys in ndisim: a UMEM
//! attached with a pending METHOD_OUT_DIRECT IOCTL, frames received into
//! it, and everything given back at detach, close, pause and unbind.
//! Garbage from user memory is refused and counted, never believed. The
//! verifier stays clean. (Zero-copy sends: `driver_rings_send.rs`; the
//! one-pass receive of a sole receiver: `driver_rings_one_pass.rs`.)

use ndisim::{InjectOpts, NbLayout, UserRegion};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;
use std::sync::Arc;

#[test]
fn frames_arrive_in_the_umem_where_the_fill_ring_says() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill([u.frame(7), u.frame(3) + 1, u.frame(9)]);
    let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, PEER, 0x88b5, 60 + 700 * i, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    let got = u.rx();
    assert_eq!(got.len(), 2, "two valid fill entries: two frames placed");
    assert_eq!((got[0].0.addr, got[1].0.addr), (u.frame(7), u.frame(9)));
    assert_eq!(got[0].1, frames[0]);
    assert_eq!(got[1].1, frames[1]);
    assert_eq!(got[1].0.origlen, 760);
    assert!(got[0].0.timestamp_ns > 1_700_000_000_000_000_000);
    assert_eq!(u.counter(control::FILL_INVALID), 1);
    assert_eq!(u.counter(control::RX_FILL_EMPTY), 1, "the third frame found the fill ring empty");
    assert_eq!(u.counter(control::RX_FRAMES), 2);
    let s = stats(&h);
    assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops), (2, 1));
    // Nothing went to the ReadFile queue.
    assert_eq!(s.queued_frames, 0);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// Frames in MDLs that are not mapped yet are mapped and placed whole;
/// when no mapping can be had, the descriptor says what was placed (0
/// bytes) and that the frame was cut, never zeros for its bytes.
#[test]
fn frames_in_unmapped_mdls_are_placed_whole_or_cut_honestly() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    let f = frame(BROADCAST, PEER, 0x88b5, 700, 1);
    let layout = NbLayout { headroom: 2, first: 14, chunk: 100, unmapped: true, ..NbLayout::default() };
    let o = InjectOpts { layout, ..InjectOpts::default() };
    sim.inject(a, &[&f], &o).unwrap();
    let got = u.rx();
    assert_eq!((got[0].0.len, got[0].0.flags & frame_flags::TRUNCATED), (700, 0));
    assert_eq!(got[0].1, f);
    sim.refuse_mappings(u64::MAX);
    sim.inject(a, &[&f], &o).unwrap();
    sim.refuse_mappings(0);
    let got = u.rx();
    assert_eq!((got[0].0.len, got[0].0.origlen), (0, 700));
    assert_eq!(got[0].0.flags & frame_flags::TRUNCATED, frame_flags::TRUNCATED);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn a_wait_pends_until_frames_arrive_and_long_frames_are_cut_to_the_frame() {
    let (sim, a) = sim_with("null@mtu=9000");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN).unwrap();
    assert!(t.try_result().is_none(), "nothing on the rx ring: the wait pends");
    let big = frame(BROADCAST, PEER, 0x88b5, 5000, 1);
    sim.inject(a, &[&big[..]], &InjectOpts::default()).unwrap();
    let r = t.wait().unwrap();
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    let reply = RingReply::parse(&r.data).unwrap();
    assert_eq!((reply.ready, reply.rx_producer), (wait_flags::RX, 1));
    let got = u.rx();
    assert_eq!((got[0].0.len, got[0].0.origlen), (2048, 5000));
    assert_ne!(got[0].0.flags & frame_flags::TRUNCATED, 0);
    assert_eq!(got[0].1, big[..2048]);
    // Consumed: a new wait pends; cancelling it completes it as cancelled.
    let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::ALL), RingReply::LEN).unwrap();
    assert!(t.try_result().is_none());
    t.cancel();
    assert_eq!(status(t.wait().unwrap().status), NtStatus::CANCELLED);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn closing_the_handle_or_cancelling_the_attach_gives_everything_back() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..8).map(|i| u.frame(i)));
    let f = frame(BROADCAST, PEER, 0x88b5, 100, 1);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    let wait = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::COMPLETION), RingReply::LEN).unwrap();
    u.attach.cancel();
    assert_eq!(status(u.attach.wait().unwrap().status), NtStatus::CANCELLED);
    assert_eq!(status(wait.wait().unwrap().status), NtStatus::CANCELLED, "a detach ends the waits");
    // The handle reads again through its queue.
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    assert_eq!(read(&h, 4096).len(), 1);
    let u = User::attach(&h, SETUP);
    h.close();
    assert_eq!(status(u.attach.wait().unwrap().status), NtStatus::CANCELLED);
    finish(sim);
}

#[test]
fn attach_refusals() {
    let (sim, _a) = sim_with("null");
    let h = sim.open().unwrap();
    let l = RingLayout::new(&SETUP).unwrap();
    let region = UserRegion::new(l.total).unwrap();
    let mut input = [0u8; RingSetup::LEN];
    SETUP.emit(&mut input).unwrap();
    let attach = |h: &ndisim::Handle, input: &[u8], m: &Arc<UserRegion>| {
        status(h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, input, m.clone()).unwrap().wait().unwrap().status)
    };
    assert_eq!(attach(&h, &input, &region), NtStatus::INVALID_DEVICE_STATE, "open a binding first");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let small = UserRegion::new(l.total - 4096).unwrap();
    assert_eq!(attach(&h, &input, &small), NtStatus::BUFFER_TOO_SMALL);
    let big = UserRegion::new(l.total + 4096).unwrap();
    assert_eq!(attach(&h, &input, &big), NtStatus::INFO_LENGTH_MISMATCH);
    let mut bad = input;
    bad[4] = 1; // frame size 2049
    assert_eq!(attach(&h, &bad, &region), NtStatus::INVALID_PARAMETER);
    assert_eq!(attach(&h, &input[..8], &region), NtStatus::INFO_LENGTH_MISMATCH);
    let mut ver = input;
    ver[0] ^= 0x40;
    assert_eq!(attach(&h, &ver, &region), NtStatus::REVISION_MISMATCH);
    // No system mapping to be had (low resources): refused, and nothing of
    // it kept (the next attach has the whole budget and the handle free).
    sim.refuse_mappings(1);
    assert_eq!(attach(&h, &input, &region), NtStatus::INSUFFICIENT_RESOURCES);
    assert_eq!(sim.refuse_mappings(0), 0, "the attach asked for its mapping");
    let u = User::attach(&h, SETUP);
    let other = UserRegion::new(l.total).unwrap();
    assert_eq!(attach(&h, &input, &other), NtStatus::INVALID_DEVICE_STATE, "one UMEM per handle");
    let r = h.ioctl(IOCTL_RAWNIC_RING_WAIT, &wait_request(0), RingReply::LEN);
    assert_eq!(status(r.status), NtStatus::INVALID_PARAMETER);
    detach(&h, u);
    let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::INVALID_DEVICE_STATE, "nothing attached");
    h.close();
    finish(sim);
}

#[test]
fn an_attach_whose_buffer_does_not_start_on_a_page_is_refused() {
    // The UMEM's layout puts its frames on pages, and the frames' MDLs are
    // cut from the attach MDL at the buffer's page-aligned start: a buffer
    // that begins inside a page (the right length, `skip` bytes into the
    // caller's memory) must be refused at once, not pended, whatever the
    // offset. Then a page-aligned attach on the same handle works.
    let (sim, _a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let l = RingLayout::new(&SETUP).unwrap();
    let mut input = [0u8; RingSetup::LEN];
    SETUP.emit(&mut input).unwrap();
    for skip in [8, 64, 2048] {
        let m = UserRegion::new(l.total + skip).unwrap();
        let t = h.ioctl_region_at_async(IOCTL_RAWNIC_RING_ATTACH, &input, m, skip).unwrap();
        let r = t
            .wait_for(std::time::Duration::from_secs(5))
            .unwrap_or_else(|| panic!("skip {skip}: an attach off a page was taken (it pends)"));
        assert_eq!(status(r.status), NtStatus::INVALID_PARAMETER, "skip {skip}");
    }
    let u = User::attach(&h, SETUP);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn garbage_in_user_memory_is_counted_not_believed() {
    let (sim, a) = sim_with("null");
    sim.set_capture(a, true);
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    // Indices far past the ring size, and every descriptor word garbage.
    u.m.store_u32(u.l.fill.producer(), 0x7fff_0000);
    u.m.store_u32(u.l.tx.producer(), 0xdead_beef);
    for i in 0..SETUP.tx {
        u.m.write(u.l.tx.entry_at(i), &[0xA5; TxDesc::LEN]);
    }
    let f = frame(BROADCAST, PEER, 0x88b5, 100, 1);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    assert_eq!(kick(&h).1.unwrap().sent, 0);
    assert_eq!(sim.sent_frames(a), 0);
    assert!(u.counter(control::BAD_INDEX) >= 2);
    assert_eq!(u.counter(control::RX_FRAMES), 0);
    // Sane again: garbage descriptors are refused one by one.
    u.m.store_u32(u.l.tx.producer(), 4);
    let r = kick(&h).1.unwrap();
    assert_eq!((r.sent, r.invalid), (0, 4));
    assert_eq!(u.completions().len(), 4);
    detach(&h, u);
    h.close();
    finish(sim);
}

#[test]
fn unbind_with_rings_attached_leaves_them_idle_until_close() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    sim.hold_sends(a).unwrap();
    let f = frame(PEER, PEER, 0x88b5, 64, 1);
    u.m.write(u.frame(0) as usize, &f);
    u.tx(&[TxDesc { addr: u.frame(0), len: 64, flags: 0 }]);
    assert_eq!(kick(&h).1.unwrap().sent, 1);
    // The unbind pauses first: the pause waits for the zero-copy send.
    std::thread::scope(|s| {
        let unbind = s.spawn(|| sim.unbind(a));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!unbind.is_finished(), "the pause waits for the send with NDIS");
        assert_eq!(sim.outstanding(a).sends_in_flight, 1);
        assert_eq!(sim.release_sends(a, None).unwrap(), 1);
        unbind.join().unwrap().unwrap();
    });
    assert_eq!(u.completions(), [u.frame(0)]);
    assert_eq!(kick(&h).0, NtStatus::DEVICE_REMOVED);
    assert!(u.attach.try_result().is_none(), "still attached: the handle holds it");
    // Nothing will be produced: a wait fails at once.
    let r = h.ioctl(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN);
    assert_eq!((status(r.status), r.information), (NtStatus::DEVICE_REMOVED, 0));
    h.close();
    assert_eq!(status(u.attach.wait().unwrap().status), NtStatus::CANCELLED);
    finish(sim);
}

/// A RING_WAIT pending when the binding is unbound completes with
/// DEVICE_REMOVED (nothing will fill the rings any more); before, it
/// waited until it was cancelled or the handle closed.
#[test]
fn an_unbind_fails_the_ring_waits_pending() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    let waits: Vec<_> = [wait_flags::RX, wait_flags::ALL]
        .into_iter()
        .map(|f| h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(f), RingReply::LEN).unwrap())
        .collect();
    assert!(waits.iter().all(|w| w.try_result().is_none()), "nothing is ready: they pend");
    sim.unbind(a).unwrap();
    for w in waits {
        let r = w.wait_for(std::time::Duration::from_secs(10)).expect("completed at the unbind");
        assert_eq!((status(r.status), r.information), (NtStatus::DEVICE_REMOVED, 0));
    }
    assert!(u.attach.try_result().is_none(), "still attached: the handle holds it");
    h.close();
    assert_eq!(status(u.attach.wait().unwrap().status), NtStatus::CANCELLED);
    finish(sim);
}

/// Two attaches racing on one handle (two threads of one process), under
/// the deterministic scheduler: one takes, the other is refused, and only
/// the UMEM of the one that took shows the magic (the client takes the
/// magic for success); the loser's UMEM is left as it was, not a byte
/// written. Before the magic waited for the attach to be committed, the
/// loser's UMEM showed it when it lost after its rings were set up (seeds
/// where both passed the first check); before the driver's indices waited
/// for it too, a loser naming the winner's memory reset the winner's
/// indices.
#[test]
fn only_the_attach_that_took_shows_the_magic() {
    // What one attach allocates from the pool: a loser that allocated too
    // got as far as setting up its rings.
    let lone = {
        let sim = rawnic_tests::rawnic_builder().adapter("null").start().unwrap();
        let (h, _) = open(&sim, 0, filter::DIRECTED, &[]);
        let before = sim.pool_stats().allocations;
        let u = User::attach(&h, SETUP);
        let n = sim.pool_stats().allocations - before;
        detach(&h, u);
        h.close();
        finish(sim);
        n
    };
    let mut both_far = 0;
    for seed in 0..40u64 {
        let sim = rawnic_tests::rawnic_builder().adapter("null").deterministic(seed).start().unwrap();
        let (h, _) = open(&sim, 0, filter::DIRECTED, &[]);
        let l = RingLayout::new(&SETUP).unwrap();
        let mut input = [0u8; RingSetup::LEN];
        SETUP.emit(&mut input).unwrap();
        let regions = [UserRegion::new(l.total).unwrap(), UserRegion::new(l.total).unwrap()];
        // Set up rings start the driver's indices at 0: a mark shows which
        // attach got that far.
        regions.iter().for_each(|m| m.store_u32(l.rx.producer(), 0xDEAD));
        let was = regions[0].to_vec(0, l.total);
        let before = sim.pool_stats().allocations;
        let tokens = std::sync::Mutex::new(Vec::new());
        sim.run_actors(
            regions
                .iter()
                .map(|m| {
                    let (h, input, tokens) = (&h, &input, &tokens);
                    Box::new(move || {
                        let t = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, input, m.clone()).unwrap();
                        tokens.lock().unwrap().push((t, m.clone()));
                    }) as Box<dyn FnOnce() + Send + '_>
                })
                .collect(),
        );
        let mut took = 0;
        for (t, m) in tokens.into_inner().unwrap() {
            let magic = m.load_u32(control::MAGIC) == RING_MAGIC;
            match t.try_result() {
                None => {
                    took += 1;
                    assert!(magic, "seed {seed}: the attach that took shows no magic");
                }
                Some(r) => {
                    assert!(!magic, "seed {seed}: a refused attach ({:?}) shows the magic", status(r.status));
                    assert_eq!(status(r.status), NtStatus::INVALID_DEVICE_STATE, "seed {seed}");
                    assert!(m.to_vec(0, l.total) == was, "seed {seed}: the refused attach wrote its UMEM");
                }
            }
        }
        assert_eq!(took, 1, "seed {seed}");
        both_far += usize::from(sim.pool_stats().allocations - before > lone);
        h.close();
        finish(sim);
    }
    assert!(both_far > 0, "no seed had both attaches set up their rings");
}

/// A ring takes at most 64 pending RING_WAITs (each publish of frames or
/// completions looks at every one, at DISPATCH_LEVEL): the 65th is refused
/// at once, and the ring works on.
#[test]
fn a_ring_takes_64_pending_waits_at_most() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let u = User::attach(&h, SETUP);
    let wait = || h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN).unwrap();
    let waits: Vec<_> = (0..64).map(|_| wait()).collect();
    assert!(waits.iter().all(|t| t.try_result().is_none()), "64 waits pend");
    let extra = wait();
    assert_eq!(status(extra.try_result().expect("refused at once").status), NtStatus::INSUFFICIENT_RESOURCES);
    // A frame wakes them all.
    u.fill([u.frame(0)]);
    sim.inject(a, &[&frame(BROADCAST, PEER, 0x88b5, 60, 1)], &InjectOpts::default()).unwrap();
    for t in &waits {
        assert_eq!(status(t.wait().unwrap().status), NtStatus::SUCCESS);
    }
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A full rx ring drops: an rx ring of 8 with 16 frames on the fill ring
/// takes 8 of 12 frames and counts 4 in RX_RING_FULL, its producer never
/// more than the ring's size ahead of the user's consumer, and the
/// entries it published are the first 8 frames, whole (a ring whose room
/// was not counted down would write over them). Once the user takes
/// them, the next frames go in again.
#[test]
fn a_full_rx_ring_drops_and_keeps_what_it_holds() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, RingSetup { rx: 8, ..SETUP });
    u.fill((0..16).map(|i| u.frame(i)));
    let frames: Vec<Vec<u8>> = (0..12).map(|i| frame(BROADCAST, PEER, 0x88b5, 100 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    let prod = u.m.load_u32(u.l.rx.producer());
    assert_eq!(prod, 8, "the producer stops at the ring's size");
    assert_eq!(u.counter(control::RX_RING_FULL), 4);
    assert_eq!(u.counter(control::RX_FRAMES), 8);
    // The handle counts the frames placed and their bytes, and the ones
    // the full ring dropped as drops, not bytes received.
    let s = stats(&h).handle;
    assert_eq!((s.rx_frames, s.rx_bytes, s.rx_queue_drops), (8, (100..108).sum(), 4));
    let got = u.rx();
    assert_eq!(got.len(), 8);
    for (i, (d, bytes)) in got.iter().enumerate() {
        assert_eq!((d.addr, d.origlen), (u.frame(i as u64), 100 + i as u32), "entry {i}");
        assert_eq!(bytes, &frames[i], "entry {i}'s frame");
    }
    sim.inject(a, &refs[..2], &InjectOpts::default()).unwrap();
    let got = u.rx();
    assert_eq!(got.iter().map(|(d, _)| d.addr).collect::<Vec<_>>(), vec![u.frame(8), u.frame(9)]);
    assert_eq!(u.counter(control::RX_RING_FULL), 4);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// The UMEM's last frame takes a whole frame: a long frame cut to the
/// frame size there ends on the UMEM's last byte, inside it (a bound
/// that took the end itself for outside would stop the driver).
#[test]
fn the_umem_s_last_frame_takes_a_frame_to_its_last_byte() {
    let (sim, a) = sim_with("null@mtu=9000");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    let last = u64::from(SETUP.frame_count) - 1;
    assert_eq!(u.frame(last) as usize + SETUP.frame_size as usize, u.l.total, "the frames end the UMEM");
    u.fill([u.frame(last - 1), u.frame(last)]);
    let big = [frame(BROADCAST, PEER, 0x88b5, 5000, 1), frame(BROADCAST, PEER, 0x88b5, 2048, 2)];
    sim.inject(a, &[&big[0][..], &big[1][..]], &InjectOpts::default()).unwrap();
    let got = u.rx();
    assert_eq!(got.len(), 2);
    for ((d, bytes), (f, at)) in got.iter().zip(big.iter().zip([last - 1, last])) {
        assert_eq!((d.addr, d.len, d.origlen), (u.frame(at), 2048, f.len() as u32));
        assert_eq!(bytes[..], f[..2048]);
    }
    detach(&h, u);
    h.close();
    finish(sim);
}

/// Frames arriving on the rx ring complete only the waits that asked for
/// the rx ring: a wait for completions alone stays pending, whether it is
/// the only wait or waits for the rx ring are queued after it, and
/// completes once a send comes back.
#[test]
fn frames_on_the_rx_ring_complete_only_the_waits_for_them() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..8).map(|i| u.frame(i)));
    let wait = |flags| h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(flags), RingReply::LEN).unwrap();
    let f = frame(BROADCAST, PEER, 0x88b5, 100, 1);
    // The only wait, and not for the rx ring.
    let comp = wait(wait_flags::COMPLETION);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    assert!(comp.try_result().is_none(), "a frame received completes no wait for completions");
    assert_eq!(u.rx().len(), 1);
    // Two for completions, then one for the rx ring.
    let comp2 = wait(wait_flags::COMPLETION);
    let rx = wait(wait_flags::RX);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    let r = rx.wait_for(std::time::Duration::from_secs(10)).expect("the rx wait completes");
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    let reply = RingReply::parse(&r.data).unwrap();
    assert_eq!((reply.ready, reply.rx_producer), (wait_flags::RX, 2));
    assert!(comp.try_result().is_none() && comp2.try_result().is_none(), "the completion waits still pend");
    assert_eq!(u.rx().len(), 1);
    // A send's completion completes both.
    let g = frame(PEER, PEER, 0x88b5, 60, 2);
    u.m.write(u.frame(20) as usize, &g);
    u.tx(&[TxDesc { addr: u.frame(20), len: g.len() as u32, flags: 0 }]);
    assert_eq!(kick(&h).1.unwrap().sent, 1);
    for w in [comp, comp2] {
        let r = w.wait_for(std::time::Duration::from_secs(10)).expect("the completion wait completes");
        assert_eq!(status(r.status), NtStatus::SUCCESS);
        assert_eq!(RingReply::parse(&r.data).unwrap().ready & wait_flags::COMPLETION, wait_flags::COMPLETION);
    }
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A second attach on a handle with rings is refused before it touches
/// the memory it names, even the attached UMEM itself: the rings' indices
/// and counters there stay as they were, and the rings work on.
#[test]
fn a_second_attach_leaves_the_attached_umem_alone() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..8).map(|i| u.frame(i)));
    let f = frame(BROADCAST, PEER, 0x88b5, 100, 1);
    sim.inject(a, &[&f[..], &f[..]], &InjectOpts::default()).unwrap();
    let mut input = [0u8; RingSetup::LEN];
    SETUP.emit(&mut input).unwrap();
    let r = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, u.m.clone()).unwrap().wait().unwrap();
    assert_eq!(status(r.status), NtStatus::INVALID_DEVICE_STATE, "one UMEM per handle");
    assert_eq!(u.m.load_u32(u.l.rx.producer()), 2, "the rx ring's producer index untouched");
    assert_eq!(u.m.load_u32(u.l.fill.consumer()), 2, "the fill ring's consumer index untouched");
    assert_eq!(u.counter(control::RX_FRAMES), 2, "the counters untouched");
    assert_eq!(u.rx().len(), 2);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    let got = u.rx();
    assert_eq!((got.len(), got[0].0.addr), (1, u.frame(2)), "the rings work on");
    assert_eq!(u.counter(control::RX_FRAMES), 3);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A RING_WAIT whose reply cannot fit is refused at once, also when
/// nothing is ready (it would otherwise pend, to fail when it is ready),
/// and leaves nothing pending.
#[test]
fn a_wait_with_a_short_reply_buffer_is_refused_at_once() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::ALL), RingReply::LEN - 1).unwrap();
    let r = t.try_result().expect("refused at once, not pending");
    assert_eq!((status(r.status), r.information), (NtStatus::BUFFER_TOO_SMALL, 0));
    // The ring works on: a frame completes a proper wait.
    let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN).unwrap();
    sim.inject(a, &[&frame(BROADCAST, PEER, 0x88b5, 100, 1)[..]], &InjectOpts::default()).unwrap();
    assert_eq!(status(t.wait().unwrap().status), NtStatus::SUCCESS);
    detach(&h, u);
    h.close();
    finish(sim);
}
