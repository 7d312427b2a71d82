//! A truthful packet filter, against the real rawnic.sys in ndisim: when
//! the adapter does not support a filter bit, or refuses it when it is set
//! (promiscuous mode on many Wi-Fi miniports), a handle opens with what the
//! adapter allows and is told, or a strict open fails; the binding never
//! asks for the refused bit again, and lists it.

use ndisim::{Handle, RestartSpec, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;

const OTHER_HOST: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x77];

fn open_req(sim: &Sim, filter: PacketFilter, strict: bool) -> (Handle, IoOutcome) {
    let h = sim.open().unwrap();
    let name = entry(sim, 0).name;
    let req = open_request_full(&name, filter, &[], (0, 0, 0), LocalSends::Others, strict);
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
    let out = if r.status == 0 { Ok(OpenReply::parse(&r.data).unwrap()) } else { Err(status(r.status)) };
    (h, out)
}

type IoOutcome = Result<OpenReply, NtStatus>;

/// The next event queued on `h` (it must be there).
fn event(h: &Handle) -> EventRecord {
    let r = h.ioctl(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN);
    assert_eq!(r.status, 0, "{:?}", status(r.status));
    EventRecord::parse(&r.data).unwrap()
}

fn no_event(h: &Handle) {
    let t = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN).unwrap();
    assert!(t.try_result().is_none(), "an unexpected event");
    t.cancel();
    t.wait();
}

const PROMISC: PacketFilter = filter::DEFAULT.union(filter::PROMISCUOUS);
/// What promiscuous falls back to: this host's frames and all multicast.
const FALLBACK: PacketFilter = filter::DEFAULT.union(filter::ALL_MULTICAST);

#[test]
fn an_unsupported_filter_opens_with_what_the_adapter_allows_or_fails_strictly() {
    // The miniport does not offer promiscuous mode.
    let sim = start(&["null@filters=0xf"]);
    let a = sim.adapter_id("null0").unwrap();
    let e = entry(&sim, 0);
    assert_eq!((e.supported_filter, e.refused_filter), (PacketFilter::from_bits_retain(0xf), PacketFilter::NONE));
    let (strict, r) = open_req(&sim, PROMISC, true);
    assert_eq!(r.unwrap_err(), NtStatus::NOT_SUPPORTED, "a strict open fails");
    // The failed handle can still open (nothing of it was kept).
    let r2 = strict.ioctl(IOCTL_RAWNIC_OPEN, &open_request(&e.name, filter::DEFAULT, &[], 0, 0, 0), OpenReply::LEN);
    assert_eq!(r2.status, 0);
    let (h, r) = open_req(&sim, PROMISC, false);
    assert_eq!(r.unwrap().packet_filter, FALLBACK);
    let ev = event(&h);
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_REFUSED, FALLBACK, filter::PROMISCUOUS));
    let s = stats(&h);
    assert_eq!((s.requested_filter, s.effective_filter), (PROMISC, FALLBACK));
    // The adapter was never asked for what it does not support.
    assert_eq!(sim.adapter_filter(a).unwrap().1, FALLBACK.bits());
    // It indicates broadcasts, not another host's frames.
    let frames = [frame(OTHER_HOST, PEER, 0x88b5, 60, 1), frame(BROADCAST, PEER, 0x88b5, 60, 2)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    assert_eq!(sim.inject(a, &refs, &Default::default()).unwrap(), 1);
    let got = read(&h, 1 << 16);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, frames[1]);
    // Asking for what the adapter gives is no refusal.
    let (plain, r) = open_req(&sim, filter::DEFAULT, true);
    assert_eq!(r.unwrap().packet_filter, filter::DEFAULT);
    no_event(&plain);
    // A filter of nothing the adapter allows fails, strict or not.
    let sim2 = start(&["null@filters=0x9"]);
    let (_, r) = open_req(&sim2, filter::ALL_MULTICAST, false);
    assert_eq!(r.unwrap_err(), NtStatus::NOT_SUPPORTED);
    finish(sim2);
    drop((strict, h, plain));
    finish(sim);
}

#[test]
fn a_filter_the_adapter_refuses_when_set_shrinks_every_handle_that_asked() {
    // The miniport advertises promiscuous mode but refuses to set it.
    let sim = start(&["null@refuse-filter=0x20"]);
    let a = sim.adapter_id("null0").unwrap();
    let (plain, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits());
    // Not known to be refused at the open: it succeeds as asked, then the
    // set fails and the handle is told.
    let (h, r) = open_req(&sim, PROMISC, true);
    assert_eq!(r.unwrap().packet_filter, PROMISC);
    let ev = event(&h);
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_REFUSED, FALLBACK, filter::PROMISCUOUS));
    let s = stats(&h);
    assert_eq!((s.requested_filter, s.effective_filter), (PROMISC, FALLBACK));
    // The binding set what it could, and lists the refusal.
    assert_eq!(sim.adapter_filter(a).unwrap().1, FALLBACK.bits());
    assert_eq!(entry(&sim, 0).refused_filter, filter::PROMISCUOUS);
    // The handle that did not ask for promiscuous mode lost nothing.
    no_event(&plain);
    // Now it is known: a strict open fails, a plain one is told at once.
    let (_, r) = open_req(&sim, PROMISC, true);
    assert_eq!(r.unwrap_err(), NtStatus::NOT_SUPPORTED);
    let (h2, r) = open_req(&sim, filter::PROMISCUOUS, false);
    assert_eq!(r.unwrap().packet_filter, filter::DIRECTED | filter::BROADCAST | filter::ALL_MULTICAST);
    assert_eq!(event(&h2).kind, event::FILTER_REFUSED);
    // Promiscuous is never asked for again: not by a restart either.
    let sets = |clear| {
        sim.oid_log(a, clear).into_iter().filter(|(_, oid)| *oid == ndis_sys::OID_GEN_CURRENT_PACKET_FILTER).count()
    };
    sets(true);
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    assert_eq!(sets(false), 1, "the restart sets the filter once");
    assert_eq!(sim.adapter_filter(a).unwrap().1, FALLBACK.bits());
    drop((plain, h, h2));
    finish(sim);
}

#[test]
fn a_refusal_during_a_restart_does_not_fail_the_restart() {
    let sim = start(&["null@refuse-filter=0x20"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.pause(a).unwrap();
    // Opened while paused: the restart is the first to set promiscuous.
    let (h, r) = open_req(&sim, PROMISC, false);
    assert_eq!(r.unwrap().packet_filter, PROMISC);
    sim.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running, "the restart succeeded");
    assert_eq!(sim.adapter_filter(a).unwrap().1, FALLBACK.bits());
    let kinds: Vec<(u16, PacketFilter)> = (0..2).map(|_| event(&h)).map(|e| (e.kind, e.refused)).collect();
    assert!(kinds.contains(&(event::FILTER_REFUSED, filter::PROMISCUOUS)), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.0 == event::RESTARTED), "{kinds:?}");
    drop(h);
    finish(sim);
}

/// A set refused while a restart's set is on its way behind it: the set
/// that adds promiscuous mode is held by the miniport across a pause, and
/// the restart sends its own (still with promiscuous, not refused yet).
/// The first fails and bans the bit; the restart's fails the same way but
/// finds nothing new to blame. It is retried without the bit, and the
/// restart succeeds. Before, the restart failed on a healthy adapter.
#[test]
fn a_refused_set_from_before_a_pause_does_not_fail_the_restart() {
    let sim = start(&["null@refuse-filter=0x20"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.hold_oids(a).unwrap();
    let (h, r) = open_req(&sim, PROMISC, false);
    assert_eq!(r.unwrap().packet_filter, PROMISC);
    assert_eq!(sim.outstanding(a).oids_pending, 1, "the set that adds promiscuous mode is held");
    sim.pause(a).unwrap();
    std::thread::scope(|s| {
        let restart = s.spawn(|| sim.restart(a, &RestartSpec::default()));
        let t0 = std::time::Instant::now();
        while sim.outstanding(a).oids_pending < 2 {
            assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the restart sets the filter too");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        sim.release_oids(a).unwrap();
        restart.join().unwrap().unwrap();
    });
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running, "the restart succeeded");
    assert_eq!(sim.adapter_filter(a).unwrap().1, FALLBACK.bits());
    let kinds: Vec<(u16, PacketFilter)> = (0..3).map(|_| event(&h)).map(|e| (e.kind, e.refused)).collect();
    assert!(kinds.contains(&(event::FILTER_REFUSED, filter::PROMISCUOUS)), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.0 == event::RESTARTED), "{kinds:?}");
    drop(h);
    finish(sim);
}

/// Two packet-filter sets with promiscuous mode on their way around a
/// restart: the one from before the pause is refused (as the stack below
/// was then), the restart's, made before that refusal was known, succeeds
/// (the stack that came back with the restart takes the bit). Whichever
/// order they complete in, the adapter took promiscuous mode: the handle
/// that asked for it has it in the end, and the binding does not list it
/// as refused. Before, the first refusal was final: the restart's set put
/// promiscuous mode on the adapter, and the driver then took it off again
/// and kept it from the handle.
#[test]
fn a_refusal_that_a_set_made_before_it_was_known_contradicts_is_taken_back() {
    use ndis_sys::{NDIS_STATUS_NOT_SUPPORTED, OID_GEN_CURRENT_PACKET_FILTER};
    let want = (filter::DEFAULT | filter::PROMISCUOUS | filter::ALL_MULTICAST).bits();
    for refused_first in [true, false] {
        let sim = start(&["null"]);
        let a = sim.adapter_id("null0").unwrap();
        let (plain, _) = open(&sim, 0, filter::DEFAULT, &[]);
        sim.hold_oids(a).unwrap();
        let (h, r) = open_req(&sim, PROMISC, false);
        assert_eq!(r.unwrap().packet_filter, PROMISC);
        let filter_sets = || {
            sim.pending_oids(a)
                .into_iter()
                .filter(|o| o.oid == OID_GEN_CURRENT_PACKET_FILTER && o.data == want.to_le_bytes())
                .map(|o| o.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(filter_sets().len(), 1, "the set that adds promiscuous mode is held");
        sim.pause(a).unwrap();
        std::thread::scope(|s| {
            let restart = s.spawn(|| sim.restart(a, &RestartSpec::default()));
            let t0 = std::time::Instant::now();
            let sets = loop {
                let sets = filter_sets();
                if sets.len() == 2 {
                    break sets;
                }
                assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the restart sets the filter too");
                std::thread::sleep(std::time::Duration::from_millis(1));
            };
            let (before, restarts) = (sets[0], sets[1]);
            if refused_first {
                assert!(sim.complete_oid(a, before, Some(NDIS_STATUS_NOT_SUPPORTED)).unwrap());
                assert!(sim.complete_oid(a, restarts, None).unwrap());
            } else {
                assert!(sim.complete_oid(a, restarts, None).unwrap());
                assert!(sim.complete_oid(a, before, Some(NDIS_STATUS_NOT_SUPPORTED)).unwrap());
            }
            sim.release_oids(a).unwrap();
            restart.join().unwrap().unwrap();
        });
        let order = if refused_first { "refused first" } else { "refused last" };
        assert_eq!(sim.binding_state(a), ndisim::BindingState::Running, "{order}: the restart succeeded");
        // Once quiet (a set the driver asks for after these is answered at once).
        sim.sleep(std::time::Duration::from_millis(100));
        assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE, "{order}");
        assert_eq!(stats(&h).effective_filter, PROMISC, "{order}");
        assert_eq!(sim.adapter_filter(a).unwrap().1, want, "{order}");
        drop((plain, h));
        finish(sim);
    }
}

/// A handle that waits for events before it opens gets the open's
/// FILTER_REFUSED in that wait. Before, the event was queued without
/// serving the wait, which went on pending until some other event came.
#[test]
fn a_wait_pending_before_the_open_gets_its_filter_refused() {
    let sim = start(&["null@filters=0xf"]);
    let h = sim.open().unwrap();
    let wait = h.ioctl_async(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN).unwrap();
    assert!(wait.try_result().is_none());
    let name = entry(&sim, 0).name;
    let req = open_request_full(&name, PROMISC, &[], (0, 0, 0), LocalSends::Others, false);
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
    assert_eq!(r.status, 0);
    let r = wait.wait_for(std::time::Duration::from_secs(5)).expect("served by the open");
    assert_eq!(r.status, 0);
    let ev = EventRecord::parse(&r.data).unwrap();
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_REFUSED, FALLBACK, filter::PROMISCUOUS));
    no_event(&h);
    drop(h);
    finish(sim);
}

/// A packet-filter set the adapter keeps failing for a while: the
/// binding's work item tries it again four times, then leaves it owed
/// (a shortage that lasts is not retried in a loop); a LIST, like an open,
/// a close, a restart or a handle's GET_STATS, sets it again once the
/// adapter takes it. Before, an owed filter waited for the next change of
/// the handles' filters.
#[test]
fn a_filter_the_adapter_keeps_failing_is_owed_and_set_again() {
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let before = sim.oids_failed();
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, 100);
    let (h, r) = open_req(&sim, filter::DEFAULT, false);
    assert_eq!(r.unwrap().packet_filter, filter::DEFAULT);
    // The open's set and the work item's four.
    let t0 = std::time::Instant::now();
    while sim.oids_failed() - before < 5 {
        assert!(t0.elapsed().as_secs() < 30, "{} sets failed", sim.oids_failed() - before);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, 0);
    assert_eq!(sim.oids_failed() - before, 5, "no more than four tries from the work item");
    assert_eq!(sim.adapter_filter(a).unwrap().1, 0);
    list(&h);
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits());
    finish(sim);
}

/// An adapter that fails every packet-filter set, with nothing to blame:
/// the filter stays owed, and once no handle receives, a restart that sets
/// it again (to nothing) does not fail for it. (A restart failed by a set
/// of nothing would leave the binding Paused at every restart from then
/// on.)
#[test]
fn a_restart_is_not_failed_by_an_owed_filter_of_nothing() {
    let sim = rawnic_tests::drv::start(&["null@oid-fail=0x1010e"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open_req(&sim, filter::DEFAULT, false);
    h.close();
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).expect("the restart runs");
    assert_eq!(entry(&sim, 0).state, state::RUNNING);
    finish(sim);
}

/// A packet-filter set the adapter fails for a passing reason
/// (NDIS_STATUS_RESOURCES): the binding owes the filter and tries it again,
/// and meanwhile a handle's GET_STATS says what it gets (what the adapter's
/// filter of now takes of its own) with `FILTER_PENDING`, never the whole
/// filter it asked for; no event, since nothing is refused. Once a set
/// succeeds, the whole filter and no flag. Before, GET_STATS said the
/// handle had promiscuous mode while the adapter had this host's frames.
#[test]
fn a_filter_the_adapter_does_not_have_yet_is_reported_pending() {
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (first, _) = open_req(&sim, filter::DEFAULT, false);
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits());
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, u64::MAX);
    let (h, r) = open_req(&sim, PROMISC, false);
    assert_eq!(r.unwrap().packet_filter, PROMISC, "the open cannot know yet");
    let st = stats(&h);
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits(), "the adapter kept its filter");
    assert_eq!((st.requested_filter, st.effective_filter), (PROMISC, filter::DEFAULT));
    assert_eq!(st.flags, stats_flags::FILTER_PENDING);
    let note = rawnic_client::stats_filter_note(&st).expect("a sentence");
    assert!(note.contains("does not have packet filter") && note.contains("promiscuous"), "{note}");
    // The first handle lacks nothing: no flag.
    let st = stats(&first);
    assert_eq!((st.effective_filter, st.flags), (filter::DEFAULT, 0));
    no_event(&h);
    no_event(&first);
    // The shortage passes: a GET_STATS sets the owed filter. One of the
    // work item's retries, sent while the shortage lasted, may still be on
    // its way; a GET_STATS that finds it cannot send another set and says
    // pending, so ask until the retries are over.
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let st = loop {
        let st = stats(&h);
        if st.flags == 0 || std::time::Instant::now() > deadline {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let set = PacketFilter::from_bits_retain(sim.adapter_filter(a).unwrap().1);
    assert!(filter::covers(set).contains(PROMISC), "{set:?}");
    assert_eq!((st.effective_filter, st.flags), (PROMISC, 0));
    assert_eq!(rawnic_client::stats_filter_note(&st), None);
    no_event(&h);
    h.close();
    first.close();
    finish(sim);
}

/// A binding whose filter is owed after the work item gave up: `first`
/// opened with this host's frames, then a shortage of the filter OID
/// outlasted the open's set of `h`'s promiscuous filter and the work item's
/// four retries, and is over now. Returns (sim, adapter, first, h).
fn owed_after_retries() -> (Sim, ndisim::AdapterId, Handle, Handle) {
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (first, _) = open_req(&sim, filter::DEFAULT, false);
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, u64::MAX);
    let before = sim.oids_failed();
    let (h, _) = open_req(&sim, PROMISC, false);
    // The open's set fails, and the work item tries four more times and
    // gives up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sim.oids_failed() - before < 5 {
        assert!(std::time::Instant::now() < deadline, "{} sets failed", sim.oids_failed() - before);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(sim.oids_failed() - before, 5, "the work item gave up");
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, 0);
    (sim, a, first, h)
}

/// A shortage that outlasts the work item's retries: the filter stays owed
/// until something asks again. A read that waits for frames does: the
/// adapter gets the handle's filter, and the waiting read the frame it
/// lets through. Before, a capture that only read waited for another
/// handle's open or close, a restart, a listing or a GET_STATS.
#[test]
fn a_reader_waiting_for_frames_gets_the_filter_the_adapter_owes() {
    let (sim, a, first, h) = owed_after_retries();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DEFAULT.bits(), "nothing asked again yet");
    let read = h.read_async(4096).unwrap();
    let set = PacketFilter::from_bits_retain(sim.adapter_filter(a).unwrap().1);
    assert!(filter::covers(set).contains(PROMISC), "the read asked for the owed filter: {set:?}");
    let other = rawnic_tests::drv::frame(OTHER_HOST, [0x02, 0, 0, 0, 0, 0x42], 0x88b5, 60, 1);
    sim.inject(a, &[&other[..]], &ndisim::InjectOpts::default()).unwrap();
    let got = read.wait().expect("the read completes");
    assert_eq!(got.status, 0);
    assert!(got.data.len() > other.len(), "the read holds the frame");
    h.close();
    first.close();
    finish(sim);
}

/// An adapter that fails every packet-filter set with a status that blames
/// no bit (a device in trouble): each handle that misses frames for it is
/// told once, `FILTER_FAILED`, with what it gets meanwhile (what the
/// adapter's unchanged filter takes) and what it misses, and its GET_STATS
/// says the same; once a set succeeds it has its whole filter, and a later
/// failure is told again, to the handles it leaves short.
#[test]
fn a_filter_the_adapter_fails_blaming_no_bit_is_told_once_and_reported() {
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, true);
    // This host's frames and broadcasts.
    let db = filter::DIRECTED | filter::BROADCAST;
    let (h, r) = open_req(&sim, db, false);
    assert_eq!(r.unwrap().packet_filter, db, "the open cannot know yet");
    let ev = event(&h);
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_FAILED, PacketFilter::NONE, db));
    assert!(sim.filter_sets_failed(a) >= 1, "ndisim counts the failure the event follows");
    let st = stats(&h);
    assert_eq!((st.requested_filter, st.effective_filter), (db, PacketFilter::NONE));
    // The work item's retries, a listing's and GET_STATS's fail too, and
    // tell nothing more.
    let before = sim.oids_failed();
    list(&h);
    stats(&h);
    assert!(sim.oids_failed() > before, "the owed filter was tried again");
    no_event(&h);
    // The adapter takes it again. (A retry of the work item's may still be
    // in flight, failing, when the listing asks: the listing then leaves
    // the next set to that one's completion, which sends it a moment
    // later. So the filter is waited for, at most 10 s; the test failed
    // once under load when it looked at once.)
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, false);
    let t0 = std::time::Instant::now();
    loop {
        list(&h);
        if sim.adapter_filter(a).unwrap().1 == db.bits() || t0.elapsed().as_secs() >= 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(sim.adapter_filter(a).unwrap().1, db.bits());
    assert_eq!(stats(&h).effective_filter, db);
    no_event(&h);
    // A second handle adds the multicast list (not a bit adapters refuse):
    // the set fails again; the first handle misses nothing and hears
    // nothing, the second is told it gets the first's filter.
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, true);
    let (h2, _) = open_req(&sim, filter::DEFAULT, false);
    let ev = event(&h2);
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_FAILED, db, filter::MULTICAST));
    assert_eq!(stats(&h2).effective_filter, db);
    assert_eq!(stats(&h).effective_filter, db);
    no_event(&h);
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, false);
    // A shortage in the miniport (`NDIS_STATUS_RESOURCES`) is not such a
    // failure: nobody is told, and ndisim does not count it among them.
    let (failed, before) = (sim.filter_sets_failed(a), sim.oids_failed());
    sim.fail_oid_for_a_while(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, 1);
    h2.close();
    list(&h);
    assert!(sim.oids_failed() > before, "the set without the multicast list met the shortage");
    assert_eq!(sim.filter_sets_failed(a), failed);
    assert_eq!(sim.adapter_filter(a).unwrap().1, db.bits(), "and was set again");
    no_event(&h);
    h.close();
    finish(sim);
}

/// A set that fails blaming no bit, then one that fails for a passing
/// reason (the device well again but short of memory, or gone to low
/// power with its bindings running): GET_STATS says what the last set met,
/// so `FILTER_PENDING` (tried again), as the flag's contract says of the
/// driver's last set. Nothing more is told; a set that succeeds ends both,
/// and a later failure that blames no bit is told again. Before, a failure
/// that blamed no bit stuck until a set succeeded: a handle on a device
/// in low power was told its filter had failed, not that it was pending
/// (found by the explorer's failing-filter windows, a filter storm's
/// adapter that kept running through a power-down).
#[test]
fn a_passing_failure_after_one_that_blames_no_bit_is_reported_pending() {
    const PF: u32 = ndis_sys::OID_GEN_CURRENT_PACKET_FILTER;
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    sim.fail_oid(a, PF, true);
    let db = filter::DIRECTED | filter::BROADCAST;
    let (h, _) = open_req(&sim, db, false);
    assert_eq!(event(&h).kind, event::FILTER_FAILED);
    assert_eq!((stats(&h).effective_filter, stats(&h).flags), (PacketFilter::NONE, 0));
    // Well again, but short of memory: the next sets fail with
    // NDIS_STATUS_RESOURCES.
    sim.fail_oid(a, PF, false);
    sim.fail_oid_for_a_while(a, PF, u64::MAX);
    // (A retry of the work item's may be on its way, sent before: each
    // GET_STATS that finds none tries the owed filter.)
    let until = |flags: u16| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let st = stats(&h);
            if st.flags == flags || std::time::Instant::now() > deadline {
                break st;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    let before = sim.oids_failed();
    let st = until(stats_flags::FILTER_PENDING);
    assert!(sim.oids_failed() > before, "GET_STATS tried the owed filter");
    assert_eq!((st.effective_filter, st.flags), (PacketFilter::NONE, stats_flags::FILTER_PENDING));
    no_event(&h);
    // The shortage passes: the filter is set, no flag.
    sim.fail_oid_for_a_while(a, PF, 0);
    let st = until(0);
    assert_eq!((st.effective_filter, st.flags), (db, 0));
    assert_eq!(sim.adapter_filter(a).unwrap().1, db.bits());
    no_event(&h);
    // A later failure that blames no bit is told again.
    sim.fail_oid(a, PF, true);
    let (h2, _) = open_req(&sim, filter::DEFAULT, false);
    let ev = event(&h2);
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_FAILED, db, filter::MULTICAST));
    sim.fail_oid(a, PF, false);
    h2.close();
    h.close();
    finish(sim);
}

/// The same for a ring: a RING_WAIT for received frames that pends asks for
/// the filter the adapter owes, and completes with the frame it lets
/// through. A wait for send completions alone does not ask (it waits for
/// no frame). Before, a capture over a ring waited, as a read did.
#[test]
fn a_ring_waiting_for_frames_gets_the_filter_the_adapter_owes() {
    use rawnic_proto::ring::*;
    use rawnic_tests::rings::{SETUP, User, detach, wait_request};
    let (sim, a, first, h) = owed_after_retries();
    let u = User::attach(&h, SETUP);
    u.fill([u.frame(0)]);
    let adapter = || PacketFilter::from_bits_retain(sim.adapter_filter(a).unwrap().1);
    let w = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::COMPLETION), RingReply::LEN).unwrap();
    assert!(w.try_result().is_none(), "no completion: it pends");
    assert_eq!(adapter(), filter::DEFAULT, "nothing asked again yet");
    w.cancel();
    assert_eq!(status(w.wait().unwrap().status), NtStatus::CANCELLED);
    let w = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN).unwrap();
    assert!(w.try_result().is_none(), "no frame: it pends");
    assert!(filter::covers(adapter()).contains(PROMISC), "the wait asked for the owed filter: {:?}", adapter());
    let other = rawnic_tests::drv::frame(OTHER_HOST, [0x02, 0, 0, 0, 0, 0x42], 0x88b5, 60, 1);
    assert_eq!(sim.inject(a, &[&other[..]], &ndisim::InjectOpts::default()).unwrap(), 1);
    let r = w.wait_for(std::time::Duration::from_secs(10)).expect("the wait completes");
    assert_eq!(r.status, 0);
    assert_ne!(RingReply::parse(&r.data).unwrap().ready & wait_flags::RX, 0);
    let got = u.rx();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, other);
    detach(&h, u);
    h.close();
    first.close();
    finish(sim);
}

/// A restart's general attributes say which packet filters the adapter
/// supports from then on: the stack below may change while the binding is
/// paused (a filter module inserted or removed). The binding follows them
/// both ways: it lists what the adapter now supports, a handle may open
/// (even strictly) with a bit the adapter gained, and a handle that has a
/// bit the adapter lost is told (`FILTER_REFUSED`, in `restarted`'s
/// reconciliation) and the adapter is not asked for it. Before ndisim
/// could change the supported filters at a restart, nothing tested this:
/// the restart's `supported_packet_filters != 0` test inverted (M152,
/// every restart's filters ignored) survived the restart, link and filter
/// tests and 36 explorer schedules.
#[test]
fn the_supported_filters_a_restart_brings_are_followed() {
    // The miniport does not offer promiscuous mode at the bind.
    let sim = start(&["null@filters=0xf"]);
    let a = sim.adapter_id("null0").unwrap();
    let (plain, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(entry(&sim, 0).supported_filter, PacketFilter::from_bits_retain(0xf));
    sim.pause(a).unwrap();
    let more = RestartSpec { supported_filters: Some(0xf | filter::PROMISCUOUS.bits()), ..Default::default() };
    sim.restart(a, &more).unwrap();
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running);
    assert_eq!(entry(&sim, 0).supported_filter, PacketFilter::from_bits_retain(0xf) | filter::PROMISCUOUS);
    // Promiscuous mode is there now: a strict open gets it.
    let (h, r) = open_req(&sim, PROMISC, true);
    assert_eq!(r.expect("the adapter supports promiscuous mode since the restart").packet_filter, PROMISC);
    // (Promiscuous implies all multicast on the adapter.)
    assert_eq!(sim.adapter_filter(a).unwrap().1, (PROMISC | filter::ALL_MULTICAST).bits());
    no_event(&h);
    // And gone again at the next restart: the handle that has it is told,
    // and the adapter is set what it supports.
    sim.pause(a).unwrap();
    assert_eq!(event(&h).kind, event::PAUSED);
    sim.restart(a, &RestartSpec { supported_filters: Some(0xf), ..Default::default() }).unwrap();
    assert_eq!(sim.binding_state(a), ndisim::BindingState::Running, "the restart succeeded");
    assert_eq!(entry(&sim, 0).supported_filter, PacketFilter::from_bits_retain(0xf));
    assert_eq!(event(&h).kind, event::RESTARTED);
    let ev = event(&h);
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_REFUSED, FALLBACK, filter::PROMISCUOUS));
    let s = stats(&h);
    assert_eq!((s.requested_filter, s.effective_filter), (PROMISC, FALLBACK));
    assert_eq!(sim.adapter_filter(a).unwrap().1, FALLBACK.bits());
    // No bit was refused by the adapter: nothing is banned, and the
    // handle that asked for this host's frames lost nothing.
    assert_eq!(entry(&sim, 0).refused_filter, PacketFilter::NONE);
    let kinds: Vec<u16> = (0..4).map(|_| event(&plain).kind).collect();
    assert_eq!(kinds, [event::PAUSED, event::RESTARTED, event::PAUSED, event::RESTARTED]);
    no_event(&plain);
    drop((plain, h));
    finish(sim);
}

/// This host's sends reach a handle as frames from the wire do: within
/// what the adapter's filter takes in while it owes the handle its own
/// (GET_STATS's effective filter). A handle whose broadcast bit the adapter
/// failed to set gets no other handle's broadcast sends, but its directed
/// ones; once the adapter takes its filter, the broadcasts too. Before,
/// the driver handed them over by the handle's own filter alone, and the
/// handle counted frames its GET_STATS said it could not get (found by the
/// explorer's send probe, seed 217400046).
#[test]
fn this_hosts_sends_reach_a_handle_within_the_filter_it_gets() {
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let mac = sim.adapter_mac(a).unwrap();
    // The sender takes this host's frames only: the adapter's filter.
    let (tx, _) = open_req(&sim, filter::DIRECTED, false);
    assert_eq!(sim.adapter_filter(a).unwrap().1, filter::DIRECTED.bits());
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, true);
    let db = filter::DIRECTED | filter::BROADCAST;
    let (rx, _) = open_req(&sim, db, false);
    assert_eq!(event(&rx).kind, event::FILTER_FAILED);
    assert_eq!(stats(&rx).effective_filter, filter::DIRECTED);
    let own = frame(mac, PEER, 0x88b5, 60, 1);
    let all = frame(BROADCAST, PEER, 0x88b5, 61, 2);
    assert_eq!(send(&tx, &[all.clone(), own.clone()]).accepted, 2);
    let got = queued(&rx);
    assert_eq!(got.len(), 1, "only the directed frame: {got:?}");
    assert_eq!((got[0].1.as_slice(), got[0].0.flags & frame_flags::OUTBOUND), (own.as_slice(), frame_flags::OUTBOUND));
    let st = stats(&rx).handle;
    assert_eq!((st.rx_frames, st.rx_queue_drops), (1, 0));
    // The adapter takes the filter again (a retry may still be failing in
    // flight: waited for, at most 10 s).
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, false);
    let t0 = std::time::Instant::now();
    while sim.adapter_filter(a).unwrap().1 != db.bits() && t0.elapsed().as_secs() < 10 {
        list(&rx);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(stats(&rx).effective_filter, db);
    assert_eq!(send(&tx, std::slice::from_ref(&all)).accepted, 1);
    let got = queued(&rx);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, all);
    // The sender got none of its own (`LocalSends::Others`, and not its
    // filter's classes but the directed one).
    assert!(queued(&tx).is_empty());
    tx.close();
    rx.close();
    finish(sim);
}

/// A promiscuous handle whose set the adapter fails, blaming no bit, while
/// the adapter has this host's frames and broadcasts: it gets those (its
/// own filter takes whatever comes in), and FILTER_FAILED and GET_STATS
/// say so, and this host's sends reach it alike, but not one to another
/// host. Before, both said it got nothing (the handle's filter ANDed with
/// the adapter's) while broadcasts from the wire reached it.
#[test]
fn a_promiscuous_handle_behind_a_failed_set_is_told_what_comes_in() {
    let sim = rawnic_tests::drv::start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let mac = sim.adapter_mac(a).unwrap();
    let db = filter::DIRECTED | filter::BROADCAST;
    let (tx, _) = open_req(&sim, db, false);
    sim.fail_oid(a, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, true);
    let (rx, _) = open_req(&sim, filter::PROMISCUOUS, false);
    let ev = event(&rx);
    let misses = filter::MULTICAST | filter::ALL_MULTICAST | filter::PROMISCUOUS;
    assert_eq!((ev.kind, ev.filter, ev.refused), (event::FILTER_FAILED, db, misses));
    let st = stats(&rx);
    assert_eq!((st.requested_filter, st.effective_filter, st.flags), (filter::PROMISCUOUS, db, 0));
    // From the wire: what the adapter lets in.
    let mut seq = 0;
    inject_numbered(&sim, a, [60, 61], &mut seq);
    assert_eq!(queued(&rx).len(), 2);
    // From this host: the same classes.
    let frames = [
        frame(BROADCAST, PEER, 0x88b5, 60, 1),
        frame(mac, PEER, 0x88b5, 60, 2),
        frame(OTHER_HOST, PEER, 0x88b5, 60, 3),
    ];
    assert_eq!(send(&tx, &frames).accepted, 3);
    let got: Vec<Vec<u8>> = queued(&rx).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, frames[..2].to_vec());
    tx.close();
    rx.close();
    finish(sim);
}
