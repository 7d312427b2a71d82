//! A ring attach short of memory: each of the pools a ring's zero-copy
//! sends need (an NBL pool, then a NET_BUFFER pool) refused in turn
//! (ndisim's `refuse_ndis_pools_after`), and each of the attach's own pool
//! allocations refused in turn. Each refusal fails the attach with
//! STATUS_INSUFFICIENT_RESOURCES, at once: whatever it had made is freed
//! (the NBL pool made before the NET_BUFFER pool was refused too, else
//! the unload reports it), nothing is written into the UMEM, the handle
//! keeps no rings, and the next attach works and sends. And the
//! binding's budget of locked UMEM, taken to the byte, and given back by
//! an attach that fails.

use ndisim::{Sim, UserRegion};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;
use std::sync::Arc;

/// RING_ATTACH of `SETUP` with `m`: its status once completed (`None`
/// while it pends: attached).
fn attach(h: &ndisim::Handle, m: &Arc<UserRegion>) -> Option<NtStatus> {
    let mut input = [0u8; RingSetup::LEN];
    SETUP.emit(&mut input).unwrap();
    let t = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone()).unwrap();
    t.try_result().map(|r| status(r.status))
}

/// The driver's live pool blocks.
fn pool_blocks(sim: &Sim) -> u64 {
    let s = sim.pool_stats();
    s.allocations - s.frees
}

/// One frame sent zero-copy from a new attach on `h`, then detached.
fn attach_and_send(sim: &Sim, a: ndisim::AdapterId, h: &ndisim::Handle) {
    let u = User::attach(h, SETUP);
    let f = frame(PEER, PEER, 0x88b5, 200, 3);
    u.m.write(u.frame(0) as usize, &f);
    let sent = sim.sent_frames(a);
    u.tx(&[TxDesc { addr: u.frame(0), len: 200, flags: 0 }]);
    let (s, reply) = kick(h);
    assert_eq!(s, NtStatus::SUCCESS);
    assert_eq!(reply.unwrap().sent, 1);
    sends_back(sim, a);
    assert_eq!(sim.sent_frames(a), sent + 1);
    assert_eq!(u.completions(), [u.frame(0)]);
    detach(h, u);
}

#[test]
fn an_attach_whose_ndis_pools_are_refused_fails_and_leaves_nothing() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let l = RingLayout::new(&SETUP).unwrap();
    // (One attach first: what the first one makes once and keeps.)
    attach_and_send(&sim, a, &h);
    for (skip, what) in [(0, "the NBL pool"), (1, "the NET_BUFFER pool (the NBL pool made)")] {
        let m = UserRegion::new(l.total).unwrap();
        let blocks = pool_blocks(&sim);
        sim.refuse_ndis_pools_after(skip, 1);
        assert_eq!(attach(&h, &m), Some(NtStatus::INSUFFICIENT_RESOURCES), "{what} refused");
        assert_eq!(sim.ndis_pools_to_refuse(), (0, 0), "{what} was asked for");
        assert_eq!(pool_blocks(&sim), blocks, "{what}: pool left");
        assert_eq!(m.load_u32(control::MAGIC), 0, "{what}: nothing written into the UMEM");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        attach_and_send(&sim, a, &h);
    }
    h.close();
    finish(sim);
}

/// Each pool allocation of an attach refused in turn (its frames' MDLs,
/// the pool's lists, the rings' state, its waits and loop buffer) until
/// one goes: every refusal fails it at once, leaves no pool and no rings.
#[test]
fn each_pool_allocation_of_an_attach_refused_in_turn_fails_it_cleanly() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let l = RingLayout::new(&SETUP).unwrap();
    attach_and_send(&sim, a, &h);
    let mut skip = 0;
    loop {
        let m = UserRegion::new(l.total).unwrap();
        let blocks = pool_blocks(&sim);
        let before = sim.alloc_failures();
        sim.short_of_pool(skip, 1);
        let got = attach(&h, &m);
        sim.short_of_pool(0, 0);
        if sim.alloc_failures() == before {
            assert_eq!(got, None, "allocation {skip}: nothing refused, and it attached");
            break;
        }
        assert_eq!(got, Some(NtStatus::INSUFFICIENT_RESOURCES), "allocation {skip} refused");
        assert_eq!(pool_blocks(&sim), blocks, "allocation {skip}: pool left");
        assert_eq!(m.load_u32(control::MAGIC), 0, "allocation {skip}: nothing written into the UMEM");
        skip += 1;
    }
    assert!(skip >= 4, "the attach made {skip} allocations");
    // The last attach took: detach it, and a new one sends.
    let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    attach_and_send(&sim, a, &h);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    h.close();
    finish(sim);
}

/// RING_ATTACH of `setup` with `m`, as `attach`.
fn attach_setup(h: &ndisim::Handle, setup: RingSetup, m: &Arc<UserRegion>) -> Option<NtStatus> {
    let mut input = [0u8; RingSetup::LEN];
    setup.emit(&mut input).unwrap();
    let t = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone()).unwrap();
    t.try_result().map(|r| status(r.status))
}

/// The setup of the largest UMEM a handle may attach: 4 KiB frames, as
/// many as make `MAX_UMEM_BYTES` with the rings.
fn largest_setup() -> RingSetup {
    let one = RingSetup { frame_size: 4096, frame_count: 1, ..SETUP };
    let frames_at = RingLayout::new(&one).unwrap().frames;
    RingSetup { frame_count: ((MAX_UMEM_BYTES - frames_at) / 4096) as u32, ..one }
}

/// A binding's budget of locked UMEM (`MAX_UMEM_PER_BINDING`) is taken to
/// the byte: four handles of one binding each attach a UMEM of
/// `MAX_UMEM_BYTES`, the whole budget, and a fifth handle's attach is
/// refused for memory. A second attach on an attached handle is refused
/// as INVALID_DEVICE_STATE (one UMEM per handle), never for the budget it
/// would exceed. A detach gives its bytes back to the next attach.
#[test]
fn a_binding_s_umem_budget_is_taken_to_the_byte() {
    let (sim, _a) = sim_with("null");
    let setup = largest_setup();
    let l = RingLayout::new(&setup).unwrap();
    assert_eq!(l.total, MAX_UMEM_BYTES);
    assert_eq!(MAX_UMEM_PER_BINDING, 4 * MAX_UMEM_BYTES);
    let handles: Vec<_> = (0..5).map(|_| open(&sim, 0, filter::DEFAULT, &[]).0).collect();
    for (i, h) in handles[..4].iter().enumerate() {
        let m = UserRegion::new(l.total).unwrap();
        assert_eq!(attach_setup(h, setup, &m), None, "handle {i} attaches within the budget");
    }
    let m = UserRegion::new(l.total).unwrap();
    assert_eq!(attach_setup(&handles[4], setup, &m), Some(NtStatus::INSUFFICIENT_RESOURCES), "past the budget");
    let again = attach_setup(&handles[0], setup, &m);
    assert_eq!(again, Some(NtStatus::INVALID_DEVICE_STATE), "one UMEM per handle, whatever the budget");
    let r = handles[3].ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    assert_eq!(attach_setup(&handles[4], setup, &m), None, "a detach gives its bytes back");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    for h in handles {
        h.close();
    }
    finish(sim);
}

/// An attach that fails for want of memory gives its bytes back to the
/// binding's budget, whether its UMEM could not be mapped or, mapped, its
/// zero-copy NBL pool could not be made: after two of each, of the
/// largest UMEM, four handles still attach the whole budget. (Had a
/// failure after the mapping kept its share, M739, a binding short of
/// memory a few times would refuse every large attach after.)
#[test]
fn an_attach_short_of_memory_gives_its_bytes_back() {
    let (sim, _a) = sim_with("null");
    let setup = largest_setup();
    let l = RingLayout::new(&setup).unwrap();
    let handles: Vec<_> = (0..4).map(|_| open(&sim, 0, filter::DEFAULT, &[]).0).collect();
    for i in 0..4 {
        let m = UserRegion::new(l.total).unwrap();
        let got = if i % 2 == 0 {
            sim.refuse_mappings(1);
            let got = attach_setup(&handles[0], setup, &m);
            assert_eq!(sim.refuse_mappings(0), 0, "try {i}: the attach asked for a mapping");
            got
        } else {
            sim.refuse_ndis_pools_after(0, 1);
            let got = attach_setup(&handles[0], setup, &m);
            assert_eq!(sim.ndis_pools_to_refuse(), (0, 0), "try {i}: the attach asked for an NBL pool");
            got
        };
        assert_eq!(got, Some(NtStatus::INSUFFICIENT_RESOURCES), "try {i}: no attach");
    }
    for (i, h) in handles.iter().enumerate() {
        let m = UserRegion::new(l.total).unwrap();
        assert_eq!(attach_setup(h, setup, &m), None, "handle {i} attaches within the budget");
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    for h in handles {
        h.close();
    }
    finish(sim);
}
