//! Handlers that release or complete what a binding holds, stalled at each
//! of their spin-lock acquires (`Sim::stall_lock_acquire`, det seeds)
//! while another thread closes handles, indicates frames, changes the link
//! or pauses: the binding's work item (a restart's `NdisCompleteNetPnPEvent`
//! then the logic's `restarted`: filters, multicast; an unbind's
//! `NdisCloseAdapterEx` and the binding's release), the pause handler
//! (retained frames copied and given back), the send completion (a
//! ring's zero-copy frames back, its detach finished) and the OID
//! completion (a user query or multicast set, a packet filter set) that an
//! unbind's close waits for, a ring receive (the one-pass walk) that a
//! pause waits for, a link status indication an unbind overtakes, and a
//! restart to a new MTU (its send pool rebuilt) that sends and a ring's
//! close race, a NetEventSetPower for D3 that sends and OIDs race, and an
//! unbind that a ring's kick, wait and detach race. Whatever the step,
//! nothing is retained before NDIS hears of a restart, a pause completes
//! with nothing outstanding, a closed handle leaves no filter bit or group
//! on the adapter and no UMEM page locked under NDIS, the frames reach the
//! handles that stay, and the simulation unloads clean (no binding, IRP,
//! OID or NBL left, no lock freed while held).

use ndisim::{AdapterId, InjectOpts, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{self, MAX_NTH};
use std::time::Duration;

const SEEDS: [u64; 2] = [0, 1];
const GROUP: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x09];

/// Runs `stalled` on one thread with the work item stalled at its `nth`
/// acquire, and `racer` on another once it stalled (or `stalled`
/// returned). Whether it stalled.
fn racing<A: Send, R: Send>(
    sim: &Sim,
    nth: u64,
    stalled: impl FnOnce() -> A + Send,
    racer: impl FnOnce() -> R + Send,
) -> (A, R, bool) {
    racing_in(sim, "WorkerRoutine", nth, stalled, racer)
}

/// As `racing`, stalling `handler` (one of ndisim's `slow::HANDLERS`).
fn racing_in<A: Send, R: Send>(
    sim: &Sim,
    handler: &str,
    nth: u64,
    stalled: impl FnOnce() -> A + Send,
    racer: impl FnOnce() -> R + Send,
) -> (A, R, bool) {
    let r = races::racing(sim, handler, nth, stalled, racer);
    (r.first, r.racer, r.stalled)
}

/// `races::sweep` over `SEEDS`: the furthest acquire that stalled.
fn sweep(spec: &str, max_nth: u64, run: impl FnMut(&str, Sim, AdapterId, u64) -> bool) -> u64 {
    races::sweep(&SEEDS, spec, max_nth, run).1
}

/// Waits (virtual time) until `f` holds, at most a second.
fn eventually(sim: &Sim, f: impl Fn() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        sim.sleep(Duration::from_millis(5));
    }
    f()
}

#[test]
fn a_cleanup_and_receives_landing_in_a_restarts_work_item() {
    let stalled_at = sweep("null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (other, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
        assert_eq!(set_multicast(&other, &[GROUP]).0, NtStatus::SUCCESS, "{what}");
        sim.pause(a).unwrap();
        let big: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, PEER, 0x88b5, 700 + i, i as u32)).collect();
        let (restarted, retained_early, stalled) = racing(
            &sim,
            nth,
            || sim.restart(a, &RestartSpec::default()),
            || {
                other.close();
                for f in &big {
                    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
                }
                let early =
                    sim.binding_state(a) != ndisim::BindingState::Running && sim.outstanding(a).receives_retained != 0;
                sim.link(a, false).unwrap();
                sim.link(a, true).unwrap();
                early
            },
        );
        restarted.unwrap_or_else(|e| panic!("{what}: the restart: {e:?}"));
        if !stalled {
            return false;
        }
        assert!(!retained_early, "{what}: a frame retained before NDIS heard of the restart");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
        assert_eq!(got, big, "{what}");
        let clean = eventually(&sim, || {
            let (f, groups) = adapter_has(&sim, a);
            f & ndis_sys::NDIS_PACKET_TYPE_PROMISCUOUS == 0 && groups.is_empty()
        });
        assert!(clean, "{what}: the closed handle's filter or group stayed: {:?}", adapter_has(&sim, a));
        h.close();
        finish(sim);
        true
    });
    assert!(stalled_at >= 2, "the work item was stalled at {stalled_at} acquires at most");
}

#[test]
fn status_and_closes_landing_in_an_unbinds_work_item() {
    let stalled_at = sweep("null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (other, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
        let watcher = sim.open().unwrap();
        let (unbound, listed, stalled) = racing(
            &sim,
            nth,
            || sim.unbind(a),
            || {
                sim.link(a, false).unwrap();
                other.close();
                let listed = list(&watcher).len();
                h.close();
                listed
            },
        );
        unbound.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
        if !stalled {
            return false;
        }
        assert!(listed <= 1, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert!(list(&watcher).is_empty(), "{what}: the binding is gone");
        watcher.close();
        sim.bind(a).unwrap();
        sim.restart(a, &RestartSpec::default()).unwrap();
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        h.close();
        finish(sim);
        true
    });
    assert!(stalled_at >= 2, "the work item was stalled at {stalled_at} acquires at most");
}

/// The pause handler stalled at each of its spin-lock acquires (the gate
/// and the binding's lock, the handles' retained frames copied, the
/// returns, the wait) while frames are indicated (long ones that would be
/// retained, then a RESOURCES indication), a handle holding retained frames
/// closes and another reads: the pause completes with no send and no
/// received NBL outstanding (ndisim's pause-outstanding check), and the
/// frames retained before it began are read intact afterwards.
#[test]
fn receives_and_a_close_landing_in_a_pause() {
    let stalled_at = sweep("null@rx-buffers=32", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let reader = sim.open().unwrap();
        let name = list(&reader)[0].name.clone();
        let r = reader.ioctl(IOCTL_RAWNIC_OPEN, &open_request(&name, filter::DEFAULT, &[], 0, 0, 0), OpenReply::LEN);
        assert_eq!(status(r.status), NtStatus::SUCCESS, "{what}");
        let before: Vec<Vec<u8>> = (0..4).map(|i| frame(BROADCAST, PEER, 0x88b5, 600 + i, i as u32)).collect();
        for f in &before {
            sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        }
        let during: Vec<Vec<u8>> = (0..2).map(|i| frame(BROADCAST, PEER, 0x88b5, 900 + i, 10 + i as u32)).collect();
        let (paused, read_meanwhile, stalled) = racing_in(
            &sim,
            "ProtocolNetPnPEvent",
            nth,
            || sim.pause(a),
            || {
                sim.inject(a, &[&during[0][..]], &InjectOpts::default()).unwrap();
                let low = InjectOpts { resources: true, ..InjectOpts::default() };
                sim.inject(a, &[&during[1][..]], &low).unwrap();
                other.close();
                read(&reader, 1 << 20).len()
            },
        );
        paused.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
        if !stalled {
            return false;
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert_eq!(sim.outstanding(a).receives_retained, 0, "{what}");
        assert!(read_meanwhile >= before.len(), "{what}: the reader read {read_meanwhile}");
        let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
        assert_eq!(got[..before.len()], before[..], "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        h.close();
        reader.close();
        finish(sim);
        true
    });
    assert!(stalled_at >= 4, "the pause handler was stalled at {stalled_at} acquires at most");
}

/// The send completion stalled at each of its spin-lock acquires while it
/// hands back a handle's zero-copy frames (and another handle's copied
/// one), and meanwhile both handles close (the ring's detach waits for its
/// frames) and the binding pauses: the attach IRP completes, cancelled,
/// only once every frame is back (ndisim's mapping-after-unlock check), the
/// pause completes with nothing outstanding, and the simulation unloads
/// clean.
#[test]
fn a_close_and_a_pause_landing_in_a_zero_copy_completion() {
    use rawnic_proto::ring::TxDesc;
    use rawnic_tests::rings::{SETUP, User, kick};
    let stalled_at = sweep("null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let u = User::attach(&h, SETUP);
        sim.hold_sends(a).unwrap();
        for i in 0..3u64 {
            let f = frame(PEER, PEER, 0x88b5, 60 + i as usize, i as u32);
            u.m.write(u.frame(i) as usize, &f);
            u.tx(&[TxDesc { addr: u.frame(i), len: f.len() as u32, flags: 0 }]);
        }
        assert_eq!(kick(&h).0, NtStatus::SUCCESS, "{what}");
        assert_eq!(status(other.write(&frame(PEER, PEER, 0x88b5, 70, 9)).status), NtStatus::SUCCESS, "{what}");
        let held = sim.held_sends(a);
        let (released, paused, stalled) = racing_in(
            &sim,
            "ProtocolSendNetBufferListsComplete",
            nth,
            || sim.release_sends(a, None),
            || {
                h.close();
                other.close();
                sim.pause(a)
            },
        );
        assert_eq!(released.unwrap(), held, "{what}");
        paused.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
        if !stalled {
            return false;
        }
        let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
        assert_eq!(status(done.status), NtStatus::CANCELLED, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        let o = sim.outstanding(a);
        assert_eq!((o.sends_in_flight, o.receives_retained), (0, 0), "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        drop(u);
        finish(sim);
        true
    });
    assert!(stalled_at >= 4, "the completion was stalled at {stalled_at} acquires at most");
}

/// An OID completion (a user query, a user multicast set, the packet
/// filter a promiscuous open sets) stalled at each of its spin-lock
/// acquires while the adapter is unbound and the handle closes: the close
/// of the adapter waits for the completion (no OID call on a closed
/// binding handle), the user's request ends with its answer or as the
/// unbind failed it, and the simulation unloads clean.
#[test]
fn an_unbind_and_a_close_landing_in_an_oid_completion() {
    let mut stalled_at = 0;
    for kind in 0..3 {
        stalled_at = stalled_at.max(sweep("null@oid=pending", MAX_NTH, |what, sim, a, nth| {
            let what = format!("kind {kind}, {what}");
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let name = list(&h)[0].name.clone();
            let other = sim.open().unwrap();
            let (third, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (request, unbound, stalled) = racing_in(
                &sim,
                "ProtocolOidRequestComplete",
                nth,
                || match kind {
                    0 => {
                        let mut q = vec![0u8; 16];
                        OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut q).unwrap();
                        status(h.ioctl(IOCTL_RAWNIC_QUERY_OID, &q, 64).status)
                    }
                    1 => set_multicast(&h, &[GROUP]).0,
                    _ => {
                        let req = open_request(&name, filter::PROMISCUOUS, &[], 0, 0, 0);
                        status(other.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN).status)
                    }
                },
                || {
                    let r = sim.unbind(a);
                    third.close();
                    r
                },
            );
            unbound.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
            if !stalled {
                return false;
            }
            let ok = [NtStatus::SUCCESS, NtStatus::CANCELLED, NtStatus::DEVICE_REMOVED];
            assert!(ok.contains(&request), "{what}: the request ended {request:?}");
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            h.close();
            other.close();
            finish(sim);
            true
        }));
    }
    assert!(stalled_at >= 2, "the completion was stalled at {stalled_at} acquires at most");
}

/// A receive indication for a handle with rings, its binding's only
/// receiver (the one-pass walk, the handle's and the rings' locks held a
/// batch at a time), stalled at each of its spin-lock acquires while the
/// handle closes (its rings detach) and the binding pauses: the pause
/// waits for the indication, the attach IRP completes cancelled with no
/// UMEM page mapped after (ndisim's mapping-after-unlock and
/// umem-after-handback checks), and the simulation unloads clean.
#[test]
fn a_close_and_a_pause_landing_in_a_ring_receive() {
    use rawnic_tests::rings::{SETUP, User};
    let stalled_at = sweep("null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let u = User::attach(&h, SETUP);
        u.fill((0..32).map(|i| u.frame(i)));
        let frames: Vec<Vec<u8>> = (0..70).map(|i| frame(BROADCAST, PEER, 0x88b5, 60 + i, i as u32)).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        let opts = InjectOpts { nbls_per_indication: 70, ..InjectOpts::default() };
        let (injected, paused, stalled) = racing_in(
            &sim,
            "ProtocolReceiveNetBufferLists",
            nth,
            || sim.inject(a, &refs, &opts),
            || {
                h.close();
                sim.pause(a)
            },
        );
        injected.unwrap_or_else(|e| panic!("{what}: the indication: {e:?}"));
        paused.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
        if !stalled {
            return false;
        }
        let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
        assert_eq!(status(done.status), NtStatus::CANCELLED, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert_eq!(sim.outstanding(a).receives_retained, 0, "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        drop(u);
        finish(sim);
        true
    });
    assert!(stalled_at >= 2, "the indication was stalled at {stalled_at} acquires at most");
}

/// A link status indication stalled at each of its spin-lock acquires
/// (the binding's link lock, its info, the handles' event queues) while the
/// adapter unbinds: the handle's last event is UNBOUND (the link change,
/// if it is told at all, comes before it), the unbind
/// completes once the indication returned, and the simulation unloads
/// clean.
#[test]
fn an_unbind_landing_in_a_status_indication() {
    let stalled_at = sweep("null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (linked, unbound, stalled) =
            racing_in(&sim, "ProtocolStatusEx", nth, || sim.link(a, false), || sim.unbind(a));
        linked.unwrap_or_else(|e| panic!("{what}: the link change: {e:?}"));
        unbound.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
        if !stalled {
            return false;
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        let mut kinds = Vec::new();
        loop {
            let r = h.ioctl(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN);
            let Ok(e) = EventRecord::parse(&r.data) else { break };
            if status(r.status) != NtStatus::SUCCESS {
                break;
            }
            kinds.push(e.kind);
            if e.kind == event::UNBOUND {
                break;
            }
        }
        assert_eq!(kinds.last(), Some(&event::UNBOUND), "{what}: {kinds:?}");
        h.close();
        finish(sim);
        true
    });
    assert!(stalled_at >= 2, "the indication was stalled at {stalled_at} acquires at most");
}

/// The restart handler stalled at each of its spin-lock acquires while it
/// moves the binding to a larger MTU (the send pool rebuilt while Paused)
/// and, meanwhile, a handle with rings kicks a frame and closes, another
/// writes, and frames arrive: no send reaches NDIS before the restart is
/// complete (ndisim's send-not-running check), the old pool goes with no
/// NBL of it out, the rings' attach IRP completes, and once running a
/// frame of the new MTU goes.
#[test]
fn sends_and_a_close_landing_in_a_restart_to_a_new_mtu() {
    use rawnic_proto::ring::TxDesc;
    use rawnic_tests::rings::{SETUP, User, kick};
    let stalled_at = sweep("null", 2 * MAX_NTH, |what, sim, a, nth| {
        let (ring, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let u = User::attach(&ring, SETUP);
        let f = frame(PEER, PEER, 0x88b5, 100, 1);
        u.m.write(u.frame(0) as usize, &f);
        u.tx(&[TxDesc { addr: u.frame(0), len: f.len() as u32, flags: 0 }]);
        sim.pause(a).unwrap();
        let spec = RestartSpec { mtu: Some(4000), ..RestartSpec::default() };
        let (restarted, wrote, stalled) = racing_in(
            &sim,
            "ProtocolNetPnPEvent",
            nth,
            || sim.restart(a, &spec),
            || {
                let kicked = kick(&ring).0;
                let ok = [NtStatus::SUCCESS, NtStatus::DEVICE_NOT_READY];
                assert!(ok.contains(&kicked), "{what}: the kick ended {kicked:?}");
                ring.close();
                sim.inject(a, &[&frame(BROADCAST, PEER, 0x88b5, 800, 2)[..]], &InjectOpts::default()).unwrap();
                status(h.write(&frame(PEER, PEER, 0x88b5, 1400, 3)).status)
            },
        );
        restarted.unwrap_or_else(|e| panic!("{what}: the restart: {e:?}"));
        if !stalled {
            return false;
        }
        assert!([NtStatus::SUCCESS, NtStatus::DEVICE_NOT_READY].contains(&wrote), "{what}: the write ended {wrote:?}");
        let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
        assert_eq!(status(done.status), NtStatus::CANCELLED, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        let big = frame(PEER, PEER, 0x88b5, 4000, 4);
        assert_eq!(status(h.write(&big).status), NtStatus::SUCCESS, "{what}: a frame of the new MTU");
        drop(u);
        h.close();
        finish(sim);
        true
    });
    assert!(stalled_at >= 4, "the restart handler was stalled at {stalled_at} acquires at most");
}

/// NetEventSetPower for D3 on a miniport that stays Running through it
/// (`pause-on-suspend=off`), its handler stalled at each of its spin-lock
/// acquires while a handle writes, kicks a ring frame and queries an OID,
/// with a set of the packet filter on its way: whatever the step, no send
/// and no OID request reaches the adapter once the handler returned
/// (ndisim's low-power rule), every request ends, and back in D0 a send
/// goes.
#[test]
fn sends_and_oids_landing_in_a_set_power_to_d3() {
    use rawnic_proto::ring::TxDesc;
    use rawnic_tests::rings::{SETUP, User, kick};
    let stalled_at = sweep("null@pause-on-suspend=off", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let u = User::attach(&h, SETUP);
        let f = frame(PEER, PEER, 0x88b5, 100, 1);
        u.m.write(u.frame(0) as usize, &f);
        u.tx(&[TxDesc { addr: u.frame(0), len: f.len() as u32, flags: 0 }]);
        let (powered, (wrote, kicked, queried), stalled) = racing_in(
            &sim,
            "ProtocolNetPnPEvent",
            nth,
            || sim.set_power(a, 4),
            || {
                let wrote = status(h.write(&frame(PEER, PEER, 0x88b5, 60, 2)).status);
                let kicked = kick(&h).0;
                let mut q = vec![0u8; 16];
                OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut q).unwrap();
                let queried = status(h.ioctl(IOCTL_RAWNIC_QUERY_OID, &q, 64).status);
                (wrote, kicked, queried)
            },
        );
        powered.unwrap_or_else(|e| panic!("{what}: the set power: {e:?}"));
        if !stalled {
            return false;
        }
        let ok = [NtStatus::SUCCESS, NtStatus::DEVICE_NOT_READY];
        assert!(ok.contains(&wrote) && ok.contains(&kicked), "{what}: {wrote:?} {kicked:?}");
        assert_eq!(queried, NtStatus::SUCCESS, "{what}: the query is answered (by the adapter or as in low power)");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.set_power(a, 1).unwrap();
        assert_eq!(status(h.write(&frame(PEER, PEER, 0x88b5, 60, 3)).status), NtStatus::SUCCESS, "{what}");
        detach_and_close(h, u);
        finish(sim);
        true
    });
    assert!(stalled_at >= 2, "the set-power handler was stalled at {stalled_at} acquires at most");
}

fn detach_and_close(h: ndisim::Handle, u: rawnic_tests::rings::User) {
    rawnic_tests::rings::detach(&h, u);
    h.close();
}

/// The unbind handler stalled at each of its spin-lock acquires (the
/// binding's link lock and info, the client table, each handle, its rings)
/// while a handle with rings kicks a frame, waits on its rings and
/// detaches them: the kick sends nothing (the binding is Paused), the wait
/// ends (nothing will be produced), the detach completes the attach IRP,
/// the unbind completes with no binding left, and the simulation unloads
/// clean.
#[test]
fn ring_requests_landing_in_an_unbind() {
    use rawnic_proto::ring::{RingReply, TxDesc, wait_flags};
    use rawnic_tests::rings::{SETUP, User, kick, wait_request};
    let stalled_at = sweep("null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let u = User::attach(&h, SETUP);
        let f = frame(PEER, PEER, 0x88b5, 100, 1);
        u.m.write(u.frame(0) as usize, &f);
        u.tx(&[TxDesc { addr: u.frame(0), len: f.len() as u32, flags: 0 }]);
        let (unbound, (kicked, waited, detached), stalled) = racing_in(
            &sim,
            "ProtocolUnbindAdapterEx",
            nth,
            || sim.unbind(a),
            || {
                let kicked = kick(&h).0;
                let t = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN);
                let detached = status(h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0).status);
                let waited = t.unwrap().wait().map(|r| status(r.status));
                (kicked, waited, detached)
            },
        );
        unbound.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
        if !stalled {
            return false;
        }
        let refused = [NtStatus::DEVICE_NOT_READY, NtStatus::DEVICE_REMOVED];
        assert!(refused.contains(&kicked), "{what}: the kick ended {kicked:?}");
        assert!(waited.is_some(), "{what}: the wait never ended");
        assert_eq!(detached, NtStatus::SUCCESS, "{what}");
        let done = u.attach.wait().unwrap_or_else(|| panic!("{what}: the attach never ended"));
        assert_eq!(status(done.status), NtStatus::SUCCESS, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        drop(u);
        h.close();
        finish(sim);
        true
    });
    assert!(stalled_at >= 4, "the unbind handler was stalled at {stalled_at} acquires at most");
}
