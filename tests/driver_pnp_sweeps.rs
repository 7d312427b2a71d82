//! Lock-acquire sweeps of handlers no earlier sweep stalled while a PnP
//! event lands in them (`Sim::stall_lock_acquire`, det seeds; the
//! SEND_BATCH and the RING_KICK also right after each of their calls,
//! `Sim::stall_call`). A READ
//! that copies retained frames while the binding
//! pauses; a SEND_BATCH and a WRITE while the binding pauses and goes to
//! D3 (an adapter that keeps its stack running through suspend); the
//! restart handler while frames arrive and handles send, open and close;
//! the open's completion while handles list, open, query and close.
//! Whatever the step: no send reaches a binding that is not Running or an
//! adapter in low power, nothing is retained before NDIS hears of the
//! restart, a pause completes with nothing outstanding, every request
//! ends with a status it may have, and the simulation unloads clean.

use ndisim::{InjectOpts, RestartSpec};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::{MAX_NTH, Stop, racing, racing_at, sweep};

const SEEDS: [u64; 2] = [0, 1];

/// More calls than a SEND_BATCH of 8 frames or a RING_KICK makes.
const AFTER_CALLS: u64 = 100;

fn long_frames(n: usize, base: u32) -> Vec<Vec<u8>> {
    (0..n).map(|i| frame(BROADCAST, PEER, 0x88b5, 600 + i, base + i as u32)).collect()
}

/// A READ stalled at each of its acquires while it copies retained
/// frames out of the handle's queue, and the binding pauses (and a
/// RESOURCES indication comes): the pause completes with nothing
/// retained, and every frame is read once, whole.
#[test]
fn a_pause_landing_in_a_read_of_retained_frames() {
    let (_, furthest) = sweep(&SEEDS, "null@rx-buffers=32", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let before = long_frames(4, 0);
        for f in &before {
            sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        }
        let late = long_frames(1, 50);
        let r = racing(
            &sim,
            "IRP_MJ_READ",
            nth,
            || read(&h, 2 * 700),
            || {
                let p = sim.pause(a);
                let low = InjectOpts { resources: true, ..InjectOpts::default() };
                sim.inject(a, &[&late[0][..]], &low).unwrap();
                p
            },
        );
        r.racer.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert_eq!(sim.outstanding(a).receives_retained, 0, "{what}");
        let mut got: Vec<Vec<u8>> = r.first.into_iter().map(|(_, d)| d).collect();
        got.extend(queued(&h).into_iter().map(|(_, d)| d));
        assert_eq!(got, before, "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        h.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the read was stalled at {furthest} acquires at most");
}

/// A SEND_BATCH stalled at each acquire, and right after each of its calls
/// (each NBL chain handed to NDIS and completed inline by the `null`
/// miniport, its locks let go), while the binding pauses: no send reaches
/// it once the pause began, and the pause completes with none in flight.
#[test]
fn a_pause_landing_in_a_send_batch() {
    // (Fewer frames when stopped after calls: a frame makes several.)
    for (stop, n, max) in [(Stop::Acquire, 80, MAX_NTH), (Stop::AfterCall, 8, AFTER_CALLS)] {
        let (_, furthest) = sweep(&SEEDS, "null", max, |what, sim, a, nth| {
            let what = format!("{what}, {stop:?}");
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let frames: Vec<(Vec<u8>, Option<u16>)> =
                (0..n).map(|i| (frame(PEER, PEER, 0x88b5, 60 + i, i as u32), None)).collect();
            let r = racing_at(
                &sim,
                stop,
                "IRP_MJ_DEVICE_CONTROL",
                nth,
                || h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&frames), SendReply::LEN),
                || sim.pause(a),
            );
            r.racer.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
            let st = status(r.first.status);
            assert!(matches!(st, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: {st:?}");
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            let o = sim.outstanding(a);
            assert_eq!((o.sends_in_flight, o.receives_retained), (0, 0), "{what}");
            sim.restart(a, &RestartSpec::default()).unwrap();
            let _ = queued(&other);
            h.close();
            other.close();
            finish(sim);
            r.stalled
        });
        assert!(furthest >= 2, "the send batch was stopped at {furthest} points at most ({stop:?})");
        assert!(furthest < max, "the send batch has more points than the sweep reaches ({stop:?})");
    }
}

/// A WRITE stalled at each acquire while the adapter goes to D3 without a
/// pause (NO_PAUSE_ON_SUSPEND) and comes back: nothing reaches it in low
/// power.
#[test]
fn a_power_change_landing_in_a_write() {
    let (_, furthest) = sweep(&SEEDS, "null@pause-on-suspend=off", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let f = frame(PEER, PEER, 0x88b5, 100, 7);
        let r = racing(&sim, "IRP_MJ_WRITE", nth, || h.write(&f), || sim.set_power(a, ndis_sys::NetDeviceStateD3));
        r.racer.unwrap_or_else(|e| panic!("{what}: D3: {e:?}"));
        let st = status(r.first.status);
        assert!(matches!(st, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: {st:?}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.set_power(a, ndis_sys::NetDeviceStateD0).unwrap();
        assert_eq!(status(h.write(&f).status), NtStatus::SUCCESS, "{what}");
        h.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the write was stalled at {furthest} acquires at most");
}

/// The restart handler stalled at each acquire while long frames arrive
/// (which a Running binding would retain), a handle sends, another opens
/// and one closes: nothing is retained and nothing sent before NDIS hears
/// of the restart, and the frames reach the handle.
#[test]
fn receives_sends_and_opens_landing_in_a_restart() {
    let (_, furthest) = sweep(&SEEDS, "null", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let (gone, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
        sim.pause(a).unwrap();
        let big = long_frames(3, 100);
        let r = racing(
            &sim,
            "ProtocolNetPnPEvent",
            nth,
            || sim.restart(a, &RestartSpec::default()),
            || {
                let sent = status(h.write(&frame(PEER, PEER, 0x88b5, 80, 1)).status);
                for f in &big {
                    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
                }
                let early =
                    sim.binding_state(a) != ndisim::BindingState::Running && sim.outstanding(a).receives_retained != 0;
                gone.close();
                let (late, _) = open(&sim, 0, filter::DEFAULT, &[]);
                (sent, early, late)
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: the restart: {e:?}"));
        let (sent, early, late) = r.racer;
        assert!(matches!(sent, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: {sent:?}");
        assert!(!early, "{what}: a frame retained before NDIS heard of the restart");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        // Frames indicated before the restart's logic finished are
        // dropped; those after it come whole and in order.
        let got: Vec<Vec<u8>> = queued(&h).into_iter().map(|(_, d)| d).filter(|d| d.len() >= 600).collect();
        assert_eq!(got[..], big[big.len() - got.len()..], "{what}");
        h.close();
        late.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the restart was stalled at {furthest} acquires at most");
}

/// A SetPower to D3 (the stack kept running) stalled at each acquire while
/// long frames are retained and a reader reads, and sends go: nothing is
/// sent in low power, and a later pause completes with nothing retained.
#[test]
fn receives_reads_and_sends_landing_in_a_power_change() {
    let (_, furthest) = sweep(&SEEDS, "null@pause-on-suspend=off", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
        let before = long_frames(3, 200);
        for f in &before {
            sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        }
        let r = racing(
            &sim,
            "ProtocolNetPnPEvent",
            nth,
            || sim.set_power(a, ndis_sys::NetDeviceStateD3),
            || {
                let sent = status(h.write(&frame(PEER, PEER, 0x88b5, 80, 1)).status);
                let got = read(&h, 700);
                (sent, got)
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: D3: {e:?}"));
        let (sent, got) = r.racer;
        assert!(matches!(sent, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: {sent:?}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.set_power(a, ndis_sys::NetDeviceStateD0).unwrap();
        sim.pause(a).unwrap();
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert_eq!(sim.outstanding(a).receives_retained, 0, "{what}");
        let mut all: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
        all.extend(queued(&h).into_iter().map(|(_, d)| d));
        assert_eq!(all, before, "{what}");
        sim.restart(a, &RestartSpec::default()).unwrap();
        h.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the power event was stalled at {furthest} acquires at most");
}

/// The open's completion (a pending open, after an unbind) stalled at each
/// acquire while a handle lists the bindings, opens the one being bound,
/// queries an OID on it, sends and closes: every request ends with a
/// status it may have, nothing is sent before the restart, and the
/// binding runs afterwards.
#[test]
fn requests_landing_in_an_open_completion() {
    let (_, furthest) = sweep(&SEEDS, "null@open=pending,oid=pending", MAX_NTH, |what, sim, a, nth| {
        sim.pause(a).unwrap();
        sim.unbind(a).unwrap();
        let h = sim.open().unwrap();
        let r = racing(
            &sim,
            "ProtocolOpenAdapterCompleteEx",
            nth,
            || sim.bind(a),
            || {
                let names: Vec<String> = list(&h).into_iter().map(|e| e.name).collect();
                let Some(name) = names.first() else { return (None, None, None) };
                let o = h.ioctl(IOCTL_RAWNIC_OPEN, &open_request(name, filter::DEFAULT, &[], 0, 0, 0), OpenReply::LEN);
                let open = status(o.status);
                if open != NtStatus::SUCCESS {
                    return (Some(open), None, None);
                }
                let q = oid_query(&h, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, OidReplyHeader::LEN + 4).0;
                let w = status(h.write(&frame(PEER, PEER, 0x88b5, 80, 3)).status);
                (Some(open), Some(q.ndis_status), Some(w))
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: the bind: {e:?}"));
        let (open, q, w) = r.racer;
        if let Some(open) = open {
            assert!(matches!(open, NtStatus::SUCCESS | NtStatus::OBJECT_NAME_NOT_FOUND), "{what}: {open:?}");
        }
        if let Some(q) = q {
            assert_eq!(q, ndis_sys::NDIS_STATUS_SUCCESS, "{what}");
        }
        if let Some(w) = w {
            assert_eq!(w, NtStatus::DEVICE_NOT_READY, "{what}: a send before the restart");
        }
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        sim.restart(a, &RestartSpec::default()).unwrap();
        h.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the open's completion was stalled at {furthest} acquires at most");
}

/// A RING_KICK stalled at each acquire, and right after each of its calls,
/// while the binding pauses (and another handle reads what the kick loops
/// back): no frame reaches the binding once the pause began, every frame
/// posted comes back on the completion ring (sent, or unsent), and the
/// detach completes the attach.
#[test]
fn a_pause_landing_in_a_ring_kick() {
    use rawnic_tests::rings::{SETUP, User, detach, kick};
    for (stop, max) in [(Stop::Acquire, MAX_NTH), (Stop::AfterCall, AFTER_CALLS)] {
        let (_, furthest) = sweep(&SEEDS, "null", max, |what, sim, a, nth| {
            let what = format!("{what}, {stop:?}");
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            let (other, _) = open_with(&sim, 0, filter::DEFAULT, &[], LocalSends::Others);
            let u = User::attach(&h, SETUP);
            u.post_copies(&frame(BROADCAST, PEER, 0x88b5, 120, 5), 8);
            let r = racing_at(&sim, stop, "IRP_MJ_DEVICE_CONTROL", nth, || kick(&h), || sim.pause(a));
            r.racer.unwrap_or_else(|e| panic!("{what}: the pause: {e:?}"));
            let (st, _) = r.first;
            assert!(matches!(st, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: {st:?}");
            assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
            let o = sim.outstanding(a);
            assert_eq!((o.sends_in_flight, o.receives_retained), (0, 0), "{what}");
            // Frames refused before the chain was built stay on the tx
            // ring; the rest come back, one completion each.
            let back = u.completions().len();
            let all_or_none = back == 8 || (back == 0 && st == NtStatus::DEVICE_NOT_READY);
            assert!(all_or_none, "{what}: {back} completions ({st:?})");
            let _ = queued(&other);
            sim.restart(a, &RestartSpec::default()).unwrap();
            detach(&h, u);
            h.close();
            other.close();
            finish(sim);
            r.stalled
        });
        assert!(furthest >= 2, "the kick was stopped at {furthest} points at most ({stop:?})");
        assert!(furthest < max, "the kick has more points than the sweep reaches ({stop:?})");
    }
}

/// The close's completion (a pending close, at an unbind) stalled at each
/// acquire while a handle on the binding closes, a watcher lists and opens
/// the adapter: the OPEN fails as a request after the unbind does, the
/// unbind completes, and the adapter binds and runs again.
#[test]
fn requests_landing_in_a_close_completion() {
    let (_, furthest) = sweep(&SEEDS, "null@close=pending", MAX_NTH, |what, sim, a, nth| {
        let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
        let watcher = sim.open().unwrap();
        let name = list(&watcher)[0].name.clone();
        let r = racing(
            &sim,
            "ProtocolCloseAdapterCompleteEx",
            nth,
            || sim.unbind(a),
            || {
                h.close();
                let listed = list(&watcher).len();
                let o = watcher.ioctl(
                    IOCTL_RAWNIC_OPEN,
                    &open_request(&name, filter::DEFAULT, &[], 0, 0, 0),
                    OpenReply::LEN,
                );
                (listed, status(o.status))
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: the unbind: {e:?}"));
        let (listed, opened) = r.racer;
        assert!(listed <= 1, "{what}");
        assert_eq!(opened, NtStatus::OBJECT_NAME_NOT_FOUND, "{what}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        assert!(list(&watcher).is_empty(), "{what}: the binding is gone");
        sim.bind(a).unwrap();
        sim.restart(a, &RestartSpec::default()).unwrap();
        assert_eq!(status(watcher.write(&frame(PEER, PEER, 0x88b5, 80, 1)).status), NtStatus::INVALID_DEVICE_STATE);
        let (again, _) = open(&sim, 0, filter::DEFAULT, &[]);
        assert_eq!(status(again.write(&frame(PEER, PEER, 0x88b5, 80, 2)).status), NtStatus::SUCCESS, "{what}");
        again.close();
        watcher.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 2, "the close's completion was stalled at {furthest} acquires at most");
}

/// NetEventSetPower for D0 (an adapter that kept its stack running) stalled
/// at each acquire while a handle opens promiscuous, joins a group and
/// sends: nothing reaches the adapter before it is back in D0, and the
/// adapter ends with the handle's filter, and its group unless the set was
/// refused in low power (which gives the handle its old list back).
#[test]
fn requests_landing_in_a_return_to_d0() {
    const GROUP: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x47];
    let (_, furthest) = sweep(&SEEDS, "null@pause-on-suspend=off", MAX_NTH, |what, sim, a, nth| {
        sim.set_power(a, ndis_sys::NetDeviceStateD3).unwrap();
        let r = racing(
            &sim,
            "ProtocolNetPnPEvent",
            nth,
            || sim.set_power(a, ndis_sys::NetDeviceStateD0),
            || {
                let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
                let joined = set_multicast(&h, &[GROUP]);
                let sent = status(h.write(&frame(PEER, PEER, 0x88b5, 80, 1)).status);
                (h, joined, sent)
            },
        );
        r.first.unwrap_or_else(|e| panic!("{what}: D0: {e:?}"));
        let (h, joined, sent) = r.racer;
        // Refused in low power (the handle keeps its old list), or taken.
        assert_eq!(joined.0, NtStatus::SUCCESS, "{what}");
        let in_d0 = joined.1 == ndis_sys::NDIS_STATUS_SUCCESS;
        assert!(in_d0 || joined.1 == ndis_sys::NDIS_STATUS_LOW_POWER_STATE, "{what}: {:#x}", joined.1);
        assert!(matches!(sent, NtStatus::SUCCESS | NtStatus::DEVICE_NOT_READY), "{what}: {sent:?}");
        assert!(sim.violations().is_empty(), "{what}: {:?}", sim.violations());
        // A GET_STATS sets what the adapter still owes.
        let _ = stats(&h);
        let (f, groups) = adapter_has(&sim, a);
        assert_ne!(f & ndis_sys::NDIS_PACKET_TYPE_PROMISCUOUS, 0, "{what}: filter {f:#x}");
        assert_eq!(groups.contains(&GROUP), in_d0, "{what}: groups {groups:?}");
        h.close();
        finish(sim);
        r.stalled
    });
    assert!(furthest >= 3, "the power event was stalled at {furthest} acquires at most");
}
