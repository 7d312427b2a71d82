//! Sends when the driver's memory runs short: the send pool rebuilt at a
//! restart that changes the MTU with each of its allocations refused in
//! turn (and its NBL pool refused; one that keeps the MTU keeps the
//! pool and asks for none), and sends that find the pool empty,
//! every NBL with the miniport, and no memory to grow it. A send is sent
//! or refused with STATUS_INSUFFICIENT_RESOURCES (a batch says how many
//! went), nothing too long for the MTU the binding lists goes out, nothing
//! leaks, and once memory is back sends work at the new MTU.

use ndisim::{AdapterId, BindingState, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;

/// SEND_BATCH of `n` frames of `len` bytes: the IRP's status and how many
/// were accepted.
fn send_n(h: &ndisim::Handle, n: usize, len: usize) -> (NtStatus, u32) {
    let frames: Vec<(Vec<u8>, Option<u16>)> =
        (0..n).map(|i| (frame(PEER, PEER, 0x88b5, len, i as u32), None)).collect();
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&frames), SendReply::LEN);
    let accepted = if r.status == 0 { SendReply::parse(&r.data).unwrap().accepted } else { 0 };
    (status(r.status), accepted)
}

fn restart_to(sim: &Sim, a: AdapterId, mtu: u32) {
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec { mtu: Some(mtu), ..RestartSpec::default() }).expect("the restart runs");
    assert_eq!(sim.binding_state(a), BindingState::Running);
}

/// How a restart's memory runs short.
#[derive(Debug, Clone, Copy)]
enum Short {
    /// The `n`th pool allocation from the restart on is refused.
    Pool(u64),
    /// The NBL pool for the new send pool is refused.
    NblPool,
}

/// A restart from `from` to `to` with `short`: the binding runs, lists
/// the new MTU or (memory was short for a pool of larger buffers) the
/// old one, sends a frame of the MTU it lists and refuses one longer than
/// that; whether the shortage refused anything.
fn short_restart(sim: &Sim, a: AdapterId, h: &ndisim::Handle, from: u32, to: u32, short: Short) -> bool {
    restart_to(sim, a, from);
    assert_eq!(entry(sim, 0).mtu, from);
    sim.pause(a).unwrap();
    let before = sim.alloc_failures();
    match short {
        Short::Pool(skip) => sim.short_of_pool(skip, 1),
        Short::NblPool => sim.refuse_ndis_pools_after(0, 1),
    }
    let r = sim.restart(a, &RestartSpec { mtu: Some(to), ..RestartSpec::default() });
    let hit = match short {
        Short::Pool(_) => {
            sim.short_of_pool(0, 0);
            sim.alloc_failures() > before
        }
        Short::NblPool => {
            let left = sim.ndis_pools_to_refuse();
            sim.refuse_ndis_pools_after(0, 0);
            left == (0, 0)
        }
    };
    r.unwrap_or_else(|e| panic!("{from} -> {to}, {short:?}: the restart runs: {e:?}"));
    assert_eq!(sim.binding_state(a), BindingState::Running);
    let listed = entry(sim, 0).mtu;
    match short {
        // No pool of the new size could be made: the old one's buffers
        // are too small for a higher MTU, which waits for the next restart;
        // they serve a lower one.
        Short::NblPool if to > from => assert_eq!(listed, from, "{from} -> {to}, {short:?}"),
        // The pool (its list of chunks refused: as above), or a pool whose
        // first chunk is short or missing (the first send grows it).
        Short::Pool(_) if hit && to > from => {
            assert!(listed == to || listed == from, "{from} -> {to}, {short:?}: lists {listed}")
        }
        _ => assert_eq!(listed, to, "{from} -> {to}, {short:?}"),
    }
    let (s, n) = send_n(h, 1, listed as usize + 14);
    assert_eq!((s, n), (NtStatus::SUCCESS, 1), "{from} -> {to}, {short:?}: a frame of the MTU listed ({listed})");
    if listed < 9000 {
        let (s, _) = send_n(h, 1, listed as usize + 15);
        assert_ne!(s, NtStatus::SUCCESS, "{from} -> {to}, {short:?}: longer than the MTU listed ({listed})");
    }
    hit
}

/// Each pool allocation of a restart that raises, then lowers, the MTU
/// refused in turn (the new send pool's list of chunks, its first chunk's
/// buffers and lists: a pool with no NBL yet, which the first send grows),
/// and the new pool's NBL pool refused: every restart runs and sends; the
/// next restart without a shortage brings the MTU asked for.
#[test]
fn a_restart_that_changes_the_mtu_with_each_allocation_refused_runs_and_sends() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    for (from, to) in [(1500, 9000), (9000, 1500)] {
        let mut skip = 0;
        let mut kept = 0;
        while short_restart(&sim, a, &h, from, to, Short::Pool(skip)) {
            kept += (entry(&sim, 0).mtu == from) as u64;
            skip += 1;
            assert!(skip < 100, "{from} -> {to}: too many allocations");
        }
        assert!(skip >= 2, "{from} -> {to}: the restart made {skip} allocations");
        if to > from {
            // Some refusal left no pool (the MTU stays), some a pool with
            // no NBL or a short chunk (the new MTU).
            assert!(kept >= 1 && kept < skip, "{from} -> {to}: {kept} of {skip} kept the old MTU");
        }
        assert!(short_restart(&sim, a, &h, from, to, Short::NblPool), "{from} -> {to}: the NBL pool was asked for");
        // Memory back: the MTU asked for, and its frames go.
        restart_to(&sim, a, to);
        assert_eq!(entry(&sim, 0).mtu, to);
        assert_eq!(send_n(&h, 4, to as usize + 14), (NtStatus::SUCCESS, 4));
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    sends_back(&sim, a);
    let st = stats(&h);
    assert_eq!((st.handle.tx_in_flight, st.handle.tx_errors), (0, 0));
    h.close();
    finish(sim);
}

/// Every send NBL with the miniport (it holds completions) and the pool
/// cannot grow (its chunk's memory refused, or its NBLs): a send is
/// refused INSUFFICIENT_RESOURCES at once (`begin_send` takes no NBL); a
/// batch that finds a few back takes those and says so; once memory is
/// back the pool grows, and every frame accepted is sent once.
#[test]
fn sends_with_every_nbl_out_and_no_memory_are_refused_then_go() {
    for refuse in ["pool", "nbls"] {
        let sim = start(&["null@completion=held"]);
        let a = sim.adapter_id("null0").unwrap();
        sim.set_capture(a, true);
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        // The pool's first chunk, all of it with the miniport.
        assert_eq!(send_n(&h, 256, 60), (NtStatus::SUCCESS, 256), "{refuse}");
        match refuse {
            "pool" => sim.refuse_pool_allocations(u64::MAX),
            _ => sim.refuse_nbl_allocations(u64::MAX),
        };
        assert_eq!(send_n(&h, 1, 60), (NtStatus::INSUFFICIENT_RESOURCES, 0), "{refuse}");
        assert_eq!(send_n(&h, 64, 60), (NtStatus::INSUFFICIENT_RESOURCES, 0), "{refuse}");
        let w = h.write(&frame(PEER, PEER, 0x88b5, 60, 1));
        assert_eq!(status(w.status), NtStatus::INSUFFICIENT_RESOURCES, "{refuse}: a WRITE too");
        // Five come back: a batch of ten takes them.
        assert_eq!(sim.release_sends(a, Some(5)).unwrap(), 5);
        assert_eq!(send_n(&h, 10, 60), (NtStatus::SUCCESS, 5), "{refuse}: the five free NBLs");
        assert_eq!(send_n(&h, 1, 60), (NtStatus::INSUFFICIENT_RESOURCES, 0), "{refuse}");
        let st = stats(&h);
        assert_eq!((st.handle.tx_in_flight, st.handle.tx_frames, st.handle.tx_errors), (256, 5, 0), "{refuse}");
        match refuse {
            "pool" => assert!(sim.refuse_pool_allocations(0) < u64::MAX, "{refuse}: the pool tried to grow"),
            _ => assert!(sim.refuse_nbl_allocations(0) < u64::MAX, "{refuse}: the pool tried to grow"),
        };
        // Memory is back: the pool grows.
        assert_eq!(send_n(&h, 300, 60), (NtStatus::SUCCESS, 300), "{refuse}");
        assert_eq!(sim.release_sends(a, None).unwrap(), 556, "{refuse}");
        sends_back(&sim, a);
        let st = stats(&h);
        assert_eq!((st.handle.tx_in_flight, st.handle.tx_frames, st.handle.tx_errors), (0, 561, 0), "{refuse}");
        assert_eq!(sim.captured(a).len(), 561, "{refuse}");
        assert!(sim.violations().is_empty(), "{refuse}: {:?}", sim.violations());
        h.close();
        finish(sim);
    }
}

/// A restart whose MTU needs buffers of the size the send pool has keeps
/// the pool (it is rebuilt only for another size): no NBL pool is asked
/// for (one would be refused), and sends of that MTU go. A pool grown to
/// thousands of NBLs is not thrown away at every pause.
#[test]
fn a_restart_that_keeps_the_mtu_keeps_the_send_pool() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
    for mtu in [1500, 9000, 9000, 1500, 1500] {
        let changes = entry(&sim, 0).mtu != mtu;
        sim.refuse_ndis_pools_after(0, 1);
        restart_to(&sim, a, mtu);
        let left = sim.ndis_pools_to_refuse();
        sim.refuse_ndis_pools_after(0, 0);
        if changes {
            // (Raising it with the NBL pool refused keeps the old MTU.)
            assert_eq!(left, (0, 0), "-> {mtu}: a pool of another size was asked for");
            restart_to(&sim, a, mtu);
        } else {
            assert_eq!(left, (0, 1), "-> {mtu} again: the send pool was made again");
        }
        assert_eq!(entry(&sim, 0).mtu, mtu);
        assert_eq!(send_n(&h, 4, mtu as usize + 14), (NtStatus::SUCCESS, 4), "-> {mtu}");
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    sends_back(&sim, a);
    h.close();
    finish(sim);
}
