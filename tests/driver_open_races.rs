//! An OPEN that an unbind, or its own handle's cleanup, lands in the
//! middle of. The OPEN's steps (control.rs's `open`: mark the handle
//! opening, find the binding, check under the binding's locks that it is
//! not closing, put the handle in its table, check that the handle is still
//! opening) are separated by spin-lock acquires and no allocation, so ndisim
//! stalls the OPEN at each of its acquires in turn
//! (`Sim::stall_lock_acquire`, under the deterministic scheduler: the
//! stall is virtual time, in which the other thread runs as far as it can)
//! while the other thread runs. Whatever the step, the OPEN either fails
//! with its exact status and leaves the handle reusable, or succeeds on a
//! binding whose unbind then takes the handle off it (the handle's
//! requests refused `STATUS_DEVICE_REMOVED`); the unbind completes, the
//! adapter binds again, a cleaned-up handle is on no binding, and the
//! simulation unloads clean.

use ndisim::{AdapterId, IoResult, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{MAX_NTH, Raced, each_acquire, racing};

/// The seeds each sweep runs under (the scheduler's picks between the two
/// threads before and after the stall).
const SEEDS: [u64; 3] = [0, 1, 2];

/// A simulation of one `null` adapter, the adapter, its binding's name and
/// an unopened handle.
fn setup(seed: u64) -> (Sim, AdapterId, String, ndisim::Handle) {
    let sim = start_with(&["null"], |b| b.deterministic(seed));
    let a = sim.adapter_id("null0").unwrap();
    let name = entry(&sim, 0).name;
    let h = sim.open().unwrap();
    (sim, a, name, h)
}

fn open_req(name: &str) -> Vec<u8> {
    open_request(name, PacketFilter::DIRECTED, &[], 0, 0, 0)
}

/// Runs `h`'s OPEN of `name`, stalled at its `nth` spin-lock acquire, on
/// one thread, and on another, once the OPEN stalled (or returned),
/// `racer` (`Raced::stalled_at_end`: the OPEN was still stalled when
/// `racer` returned).
fn open_racing<R: Send>(
    sim: &Sim,
    h: &ndisim::Handle,
    name: &str,
    nth: u64,
    racer: impl FnOnce() -> R + Send,
) -> Raced<IoResult, R> {
    let req = open_req(name);
    racing(sim, "IRP_MJ_DEVICE_CONTROL", nth, || h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN), racer)
}

/// Binds `a` again and restarts it: a new handle opens on it, and only it
/// is on the binding.
fn binds_again(sim: &Sim, a: AdapterId, what: &str) {
    sim.bind(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    let (n, _) = open(sim, 0, PacketFilter::DIRECTED, &[]);
    assert_eq!(list(&n)[0].open_handles, 1, "{what}: the new handle alone");
    n.close();
}

/// An unbind landing at each step of an OPEN: before it found the binding
/// (the OPEN fails `STATUS_OBJECT_NAME_NOT_FOUND`; the unbind does not
/// wait for it), after it found the binding and before a check that the
/// binding is not closing (`find_binding`'s, or the OPEN's own under the
/// binding's table: the same failure, and the unbind completes once the
/// OPEN let go of the binding), or after the OPEN's check (the OPEN
/// succeeds, its handle in the table, and the unbind takes the handle off
/// the binding: its requests are refused `STATUS_DEVICE_REMOVED`). A
/// failed OPEN leaves the handle reusable: the same handle opens once the
/// adapter binds again. Without the OPEN's check (`info.closing`) an OPEN
/// that found the binding before the unbind took the handles off it puts
/// its handle in the emptied table of a closed binding, and the unbind
/// waits for it for ever; without its `reset` the failed handle stays
/// opening, and no OPEN of it succeeds again.
#[test]
fn an_unbind_landing_in_an_open_fails_it_or_orphans_the_handle() {
    // (unbind before the lookup, between the lookup and the check, after)
    let mut landed = [0u32; 3];
    let mut runs = 0;
    // Running, the unbind's pause waits for the binding's table while the
    // OPEN holds it; paused already, the unbind goes straight to marking the
    // binding closing and taking the handles off, and so lands inside that
    // hold too.
    for paused in [false, true] {
        runs += each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
            let what = format!("seed {seed}, paused {paused}, acquire {nth}");
            let (sim, a, name, h) = setup(seed);
            if paused {
                sim.pause(a).unwrap();
            }
            let Raced { first: r, racer: unbound, stalled, stalled_at_end: held, .. } =
                open_racing(&sim, &h, &name, nth, || sim.unbind(a));
            unbound.unwrap_or_else(|e| panic!("{what}: the unbind failed: {e}"));
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            if !stalled {
                // The OPEN made fewer acquires: it ran whole, then the unbind.
                assert_eq!(status(r.status), NtStatus::SUCCESS, "{what}");
                h.close();
                finish(sim);
                return false;
            }
            match status(r.status) {
                NtStatus::OBJECT_NAME_NOT_FOUND => {
                    // Still stalled as the unbind completed: the OPEN did
                    // not hold the binding yet.
                    landed[usize::from(!held)] += 1;
                    assert!(list(&h).is_empty(), "{what}: the binding is gone");
                    binds_again(&sim, a, &what);
                    // The same handle opens now.
                    let again = h.ioctl(IOCTL_RAWNIC_OPEN, &open_req(&name), OpenReply::LEN);
                    assert_eq!(status(again.status), NtStatus::SUCCESS, "{what}: the handle is reusable");
                    assert_eq!(list(&h)[0].open_handles, 1, "{what}");
                }
                NtStatus::SUCCESS => {
                    landed[2] += 1;
                    assert!(!held, "{what}: the unbind completed only once the OPEN was done with the binding");
                    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x88b5, 60, 1);
                    assert_eq!(status(h.write(&f).status), NtStatus::DEVICE_REMOVED, "{what}: orphaned");
                    assert_eq!(status(h.read(2048).status), NtStatus::DEVICE_REMOVED, "{what}: orphaned");
                    assert!(list(&h).is_empty(), "{what}: the binding is gone");
                    binds_again(&sim, a, &what);
                    // The orphaned handle stays off the new binding.
                    let again = h.ioctl(IOCTL_RAWNIC_OPEN, &open_req(&name), OpenReply::LEN);
                    assert_eq!(status(again.status), NtStatus::INVALID_DEVICE_STATE, "{what}");
                    assert_eq!(list(&h)[0].open_handles, 0, "{what}");
                }
                s => panic!("{what}: the OPEN ended {s:?}"),
            }
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            h.close();
            finish(sim);
            true
        });
    }
    eprintln!("{runs} stalled OPENs: (before the lookup, between it and the check, after): {landed:?}");
    assert!(landed.iter().all(|&n| n > 0), "every window landed over the sweep: {landed:?}");
}

/// The handle's own cleanup (another thread's CloseHandle) landing at each
/// step of its OPEN: the OPEN fails `STATUS_INVALID_DEVICE_STATE` (it
/// found the handle closed, at its start or at its recheck after putting
/// the handle in the binding's table, which it takes it out of again), or
/// succeeded before and the cleanup took the handle off the binding.
/// Either way the binding has no handle, and the adapter's packet filter
/// is back to none. Without the recheck, an OPEN the cleanup overtook left
/// a closed handle in the table for good: its filter on the adapter, its
/// queue filling until the unbind.
#[test]
fn a_cleanup_landing_in_an_open_leaves_the_handle_on_no_binding() {
    // (refused, opened before the cleanup)
    let mut landed = [0u32; 2];
    let runs = each_acquire(&SEEDS, MAX_NTH, |seed, nth| {
        let what = format!("seed {seed}, acquire {nth}");
        let (sim, a, name, h) = setup(seed);
        let Raced { first: r, stalled, .. } = open_racing(&sim, &h, &name, nth, || h.close_shared(false));
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        match status(r.status) {
            NtStatus::INVALID_DEVICE_STATE => landed[0] += 1,
            NtStatus::SUCCESS => landed[1] += 1,
            s => panic!("{what}: the OPEN ended {s:?}"),
        }
        let watcher = sim.open().unwrap();
        assert_eq!(list(&watcher)[0].open_handles, 0, "{what}: the closed handle is on no binding");
        assert_eq!(adapter_has(&sim, a).0, 0, "{what}: no packet filter is left on the adapter");
        // The adapter unbinds and binds again.
        sim.unbind(a).unwrap();
        binds_again(&sim, a, &what);
        watcher.close();
        drop(h);
        finish(sim);
        stalled
    });
    eprintln!("{runs} stalled OPENs: (refused, opened first): {landed:?}");
    assert!(landed.iter().all(|&n| n > 0), "both outcomes over the sweep: {landed:?}");
}
