//! A restart that changes what sends must fit while sends are on their
//! way: an MTU that shrinks (whatever the interleaving, no frame longer
//! than the adapter's largest reaches NDIS, ndisim's rule send-oversize,
//! and every send either went or was refused), and 802.1Q turned off (no
//! tag is left in an NBL's info the adapter no longer reads); a pause
//! between the chunks of a SEND_BATCH.

use ndisim::{AdapterId, RestartSpec, Sim, Strategy};
use rawnic_proto::ring::TxDesc;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::{SETUP, User, detach, kick};
use std::sync::atomic::{AtomicU64, Ordering};

/// Seed `seed`'s simulation of one adapter under ndisim's deterministic
/// scheduler by priorities, its change points spread over the first 2^10
/// to 2^15 switches (past the start, which takes a few hundred).
fn pct_sim(seed: u64, adapter: &str) -> Sim {
    rawnic_tests::rawnic_builder()
        .adapter(adapter)
        .deterministic(seed)
        .strategy(Strategy::Priorities { depth: 4, horizon: 1 << (10 + seed % 6) })
        .start()
        .unwrap()
}

/// Five pauses and restarts of the adapter; `paused(i)` runs while it is
/// paused the `i`th time and says how it restarts.
fn pause_restart(sim: &Sim, paused: impl Fn(usize) -> RestartSpec) {
    for i in 0..5 {
        sim.pause(AdapterId(0)).unwrap();
        sim.restart(AdapterId(0), &paused(i)).unwrap();
    }
}

/// MTU 1500 at the even restarts, 9000 at the odd ones.
fn shrink_and_grow(i: usize) -> RestartSpec {
    RestartSpec { mtu: Some(if i % 2 == 0 { 1500 } else { 9000 }), ..RestartSpec::default() }
}

/// One thread sends 1530-byte frames, by WriteFile and by SEND_BATCH
/// (they fit MTU 9000, not MTU 1500, but they do fit the send buffers of
/// MTU 1500, which are rounded up), while another pauses the adapter and
/// restarts it with MTU 1500 and 9000 in turn, under ndisim's
/// deterministic scheduler by priorities: over the seeds, a thread is
/// stopped between a send's length check and its send while a pause and
/// a restart run. Before a send checked its frames against the MTU of the
/// moment it took its NBLs, rawnic sent such a frame in seeds 18, 25, 26
/// and 33 of these 40 (6 of the first 100).
#[test]
fn a_send_racing_a_restart_that_shrinks_the_mtu_is_never_oversize() {
    let big = frame(PEER, PEER, 0x88b5, 1530, 1);
    let small = frame(PEER, PEER, 0x88b5, 1514, 2);
    let (sent, refused) = (AtomicU64::new(0), AtomicU64::new(0));
    for seed in 0..40u64 {
        let sim = pct_sim(seed, "null@mtu=9000");
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let count = |ok: bool| if ok { &sent } else { &refused }.fetch_add(1, Ordering::Relaxed);
        sim.run_actors(vec![
            Box::new(|| {
                for _ in 0..40 {
                    count(h.write(&big).status == 0);
                    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(big.clone(), None)]), SendReply::LEN);
                    count(r.status == 0 && SendReply::parse(&r.data).is_ok_and(|s| s.accepted == 1));
                }
            }),
            Box::new(|| pause_restart(&sim, shrink_and_grow)),
        ]);
        // At MTU 1500 the largest frame goes, the 1530-byte one does not.
        assert_eq!(h.write(&small).status, 0, "seed {seed}");
        assert_eq!(NtStatus(h.write(&big).status), NtStatus::INVALID_BUFFER_SIZE, "seed {seed}");
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
    // Both outcomes happened: the races were run, not avoided.
    let (sent, refused) = (sent.into_inner(), refused.into_inner());
    assert!(sent > 0 && refused > 0, "{sent} sent, {refused} refused");
}

/// The same race for zero-copy sends: one thread posts 1530-byte frames on
/// the tx ring and kicks, while another pauses and restarts the adapter
/// with MTU 1500 and 9000 in turn. A kick checks its frames against the
/// MTU it reads; a frame a restart made too long since is given back
/// unsent (on the completion ring), never sent. Its window is narrower
/// than a WriteFile's: before the fix, seed 45 of these 50 sent such a
/// frame (1 of 300).
#[test]
fn a_kick_racing_a_restart_that_shrinks_the_mtu_is_never_oversize() {
    let f = frame(PEER, PEER, 0x88b5, 1530, 3);
    let (mut sent, mut back) = (0u64, 0u64);
    for seed in 0..50u64 {
        let sim = pct_sim(seed, "null@mtu=9000");
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let u = User::attach(&h, SETUP);
        for i in 0..4 {
            u.m.write(u.frame(i) as usize, &f);
        }
        let kicks = AtomicU64::new(0);
        sim.run_actors(vec![
            Box::new(|| {
                for _ in 0..20 {
                    let done = u.completions();
                    u.tx(&done.iter().map(|&addr| TxDesc { addr, len: 1530, flags: 0 }).collect::<Vec<_>>());
                    if kicks.fetch_add(1, Ordering::Relaxed) == 0 {
                        u.tx(&(0..4).map(|i| TxDesc { addr: u.frame(i), len: 1530, flags: 0 }).collect::<Vec<_>>());
                    }
                    kick(&h);
                }
            }),
            Box::new(|| pause_restart(&sim, shrink_and_grow)),
        ]);
        sent += sim.sent_frames(AdapterId(0));
        back += u.completions().len() as u64;
        detach(&h, u);
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
    assert!(sent > 0 && back > 0, "{sent} frames sent, {back} given back at the end");
}

/// The same race for where a send's 802.1Q tag goes: in the NBL's info
/// while the adapter advertises 802.1Q, else in the frame. One thread sends
/// tagged frames while another pauses the adapter, turns its 802.1Q off or
/// on, and restarts it: a batch checked before a restart that turned it off
/// must not leave its tags in an info the adapter now ignores (the frames
/// would go out untagged). Before a batch placed its tags by the MAC
/// options of the moment it took its NBLs, seeds 44, 98 and 196 of the
/// first 200 did (44 of these 50).
#[test]
fn a_tagged_send_racing_a_restart_that_turns_8021q_off_keeps_its_tag() {
    let f = frame(PEER, PEER, 0x88b5, 60, 4);
    for seed in 0..50u64 {
        let sim = pct_sim(seed, "null");
        let a = AdapterId(0);
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        sim.run_actors(vec![
            Box::new(|| {
                for _ in 0..40 {
                    h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f.clone(), Some(5))]), SendReply::LEN);
                }
            }),
            Box::new(|| {
                pause_restart(&sim, |i| {
                    sim.set_vlan(a, i % 2 == 1);
                    RestartSpec::default()
                })
            }),
        ]);
        assert_eq!(sim.tags_ignored(a), 0, "seed {seed}: tags left in the info of an adapter without 802.1Q");
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
}

/// A SEND_BATCH goes to NDIS in chunks of 64 frames, each copied and sent
/// under one hold of the send gate, so a pause need not wait for a whole
/// batch (a batch of 4,096 jumbo frames held it for milliseconds at
/// DISPATCH_LEVEL). One thread sends batches of 256 frames while another
/// pauses and restarts the adapter, under the deterministic scheduler:
/// over the seeds, some batches end at a chunk's edge (30 of 360 end at
/// 64, 128 or 192 accepted; with the image before, none: a batch went
/// whole or not at all), and the wire has every accepted frame and no
/// other.
#[test]
fn a_pause_can_come_between_the_chunks_of_a_batch() {
    let frames: Vec<(Vec<u8>, Option<u16>)> = (0..256).map(|i| (frame(PEER, PEER, 0x88b5, 200, i), None)).collect();
    let input = batch(&frames);
    let mut partial = 0;
    for seed in 0..30u64 {
        let sim = rawnic_tests::rawnic_builder().adapter("null").deterministic(seed).start().unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let accepted = AtomicU64::new(0);
        sim.run_actors(vec![
            Box::new(|| {
                for _ in 0..12 {
                    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &input, SendReply::LEN);
                    if r.status != 0 {
                        assert_eq!(NtStatus(r.status), NtStatus::DEVICE_NOT_READY, "seed {seed}");
                        continue;
                    }
                    let n = SendReply::parse(&r.data).unwrap().accepted;
                    assert!(n > 0 && n % 64 == 0, "seed {seed}: {n} accepted");
                    if n < 256 {
                        partial += 1;
                    }
                    accepted.fetch_add(n as u64, Ordering::Relaxed);
                }
            }),
            Box::new(|| pause_restart(&sim, |_| RestartSpec::default())),
        ]);
        assert!(sim.settle(AdapterId(0)));
        assert_eq!(sim.sent_frames(AdapterId(0)), accepted.into_inner(), "seed {seed}");
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
    assert!(partial > 0, "no batch ended between two chunks");
}
