//! Every allocation of a driver's life, refused one at a time: the
//! systematic form of Driver Verifier's low-resources simulation (as
//! Linux's fail-nth). A scripted life of the real rawnic.sys (load, bind,
//! open, filters, OIDs, a receive program, sends, receives, rings, a pause,
//! low power and back, a restart with a new MTU, an unbind and a bind,
//! closes, unload) runs once with nothing refused, counting the
//! allocations that could fail (`Sim::allocations_counted`); then once
//! for each of them, with that one refused (`SimBuilder::fail_nth_allocation`),
//! including `IoCreateDevice`, `IoCreateSymbolicLink` and
//! `NdisRegisterProtocolDriver` in `DriverEntry`, which the random
//! simulation spares.
//!
//! In every run:
//! - a request fails only once the refused allocation came, and then with
//!   `STATUS_INSUFFICIENT_RESOURCES` (or a status that says what the
//!   refusal left: no binding of that name, the binding not running);
//! - a frame goes missing only once it came, and is then counted: as not
//!   accepted, as a drop of the driver's, or as kept out by the adapter
//!   (a packet filter owed, not yet set; a binding refused), never lost
//!   without a trace; a read refused leaves its frame queued for the next;
//! - once the refusal is over, the driver works: every adapter bound and
//!   running again, a frame each way between two fresh handles;
//! - the unload is clean: nothing leaked (pool, NBLs, MDLs, IRPs, locks),
//!   no rule broken; a `DriverEntry` that failed left nothing behind.
//!
//! The test thread drives the life one request at a time, so the nth
//! allocation of a run is almost always the same call, and a failure
//! replays with its `n`.

use ndisim::{AdapterId, BindingState, Handle, RestartSpec, Sim, StartError};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use std::time::Duration;

const RESOURCES: NtStatus = NtStatus::INSUFFICIENT_RESOURCES;

/// One run of the life, with allocation `n` refused (0: none).
struct Run {
    n: u64,
    sim: Sim,
    a: AdapterId,
    b: AdapterId,
    /// Requests that failed, with their status (for the report).
    failed: Vec<(&'static str, NtStatus)>,
    /// The adapters' missed frames (`adapter_rx_missed`) before the last
    /// send: a frame that does not come must be among those since.
    mark: Vec<(AdapterId, (u64, u64))>,
}

impl Run {
    /// Which run this is, and where its refused allocation was.
    fn ctx(&self) -> String {
        format!("n={} ({})", self.n, self.sim.nth_allocation().unwrap_or_else(|| "not yet".into()))
    }

    /// Whether the refused allocation has come (so a failure may follow).
    fn refused(&self) -> bool {
        self.sim.nth_allocation_failed()
    }

    /// Checks a request's status: success, or one of `allowed` once the
    /// refusal came. Returns whether it succeeded.
    fn check(&mut self, what: &'static str, st: i32, allowed: &[NtStatus]) -> bool {
        let st = status(st);
        if st == NtStatus::SUCCESS {
            return true;
        }
        assert!(self.refused(), "{}: {what} failed with {st:?} before any allocation was refused", self.ctx());
        assert!(allowed.contains(&st), "{}: {what} failed with {st:?}; allowed: {allowed:?}", self.ctx());
        self.failed.push((what, st));
        false
    }

    /// The control device, opened (the open's IRP may be refused).
    fn device(&mut self) -> Option<Handle> {
        match self.sim.open() {
            Ok(h) => Some(h),
            Err(st) => {
                self.check("open the device", st, &[RESOURCES]);
                None
            }
        }
    }

    /// A handle open on adapter `x`'s binding with the default filter.
    fn open(&mut self, x: AdapterId, what: &'static str) -> Option<Handle> {
        let h = self.device()?;
        let name = self.sim.adapter_ndis_name(x).unwrap();
        let req = open_request(&name, filter::DEFAULT, &[], 0, 0, 0);
        let r = h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN);
        // A bind that was refused leaves no binding of that name.
        if self.check(what, r.status, &[RESOURCES, NtStatus::OBJECT_NAME_NOT_FOUND]) {
            Some(h)
        } else {
            h.close();
            None
        }
    }

    /// Sends `f` from `from`; whether the driver accepted it.
    fn send(&mut self, from: &Handle, f: &[u8], what: &'static str) -> bool {
        self.mark_missed();
        let r = from.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&[(f.to_vec(), None)]), SendReply::LEN);
        if !self.check(what, r.status, &[RESOURCES, NtStatus::DEVICE_NOT_READY]) {
            return false;
        }
        let accepted = SendReply::parse(&r.data).unwrap().accepted;
        assert!(accepted == 1 || self.refused(), "{}: {what}: the driver accepted {accepted} of 1", self.ctx());
        accepted == 1
    }

    /// `req` sent until it is not refused for want of memory (its IRP
    /// refused, the user sends it again): its result.
    fn until_taken(&mut self, what: &'static str, req: impl Fn() -> ndisim::IoResult) -> ndisim::IoResult {
        loop {
            let r = req();
            if self.check(what, r.status, &[RESOURCES]) {
                return r;
            }
        }
    }

    fn mark_missed(&mut self) {
        self.mark = [self.a, self.b].into_iter().map(|x| (x, self.sim.adapter_rx_missed(x).unwrap())).collect();
    }

    /// Waits a while for `f` on `to` (sent and accepted); a frame that does
    /// not come must have been refused memory on its way, and counted.
    fn receive(&mut self, to: &Handle, at: AdapterId, f: &[u8], what: &'static str) {
        // (A frame the adapter's filter kept out, or that found no binding:
        // one owed a filter it could not be given, or one bound again.)
        let missed = self.mark.iter().find(|m| m.0 == at).expect("a send before").1;
        // A read refused for want of memory (its IRP, or its buffer's
        // mapping) leaves the frame queued: the user reads again.
        let r = loop {
            let t = match to.read_async(4096) {
                Ok(t) => t,
                Err(st) => {
                    self.check(what, st, &[RESOURCES]);
                    continue;
                }
            };
            let Some(r) = t.wait_for(Duration::from_secs(2)) else {
                t.cancel();
                let r = t.wait().unwrap();
                assert_eq!(status(r.status), NtStatus::CANCELLED);
                assert!(self.refused(), "{}: {what}: the frame never came, with no allocation refused", self.ctx());
                let r = self.until_taken("stats", || to.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN));
                let s = StatsReply::parse(&r.data).unwrap();
                let lost = s.handle.rx_queue_drops + s.binding.rx_queue_drops + s.binding.tx_errors;
                let (dropped, filtered) = self.sim.adapter_rx_missed(at).unwrap();
                let kept_out = dropped + filtered - missed.0 - missed.1;
                assert!(lost + kept_out > 0, "{}: {what}: the frame was lost and not counted", self.ctx());
                self.failed.push((what, NtStatus::CANCELLED));
                return;
            };
            if self.check(what, r.status, &[RESOURCES]) {
                break r;
            }
        };
        let recs = records(&r);
        assert_eq!(recs.len(), 1, "{}: {what}", self.ctx());
        assert_eq!(recs[0].1, f, "{}: {what}: the frame's bytes (failed so far: {:?})", self.ctx(), self.failed);
    }
}

/// Starts the simulation with allocation `n` refused. `None`: DriverEntry
/// failed (cleanly: checked here).
fn start(n: u64, count: u64) -> Option<Run> {
    let b = rawnic_tests::rawnic_builder().adapter("pair:a,b").fail_allocations_from(n, count);
    match b.start() {
        Ok(sim) => {
            let a = sim.adapter_id("a").unwrap();
            let b = sim.adapter_id("b").unwrap();
            Some(Run { n, sim, a, b, failed: Vec::new(), mark: Vec::new() })
        }
        Err(StartError::DriverEntry(st, report)) => {
            assert!(n > 0, "DriverEntry failed with nothing refused: {st:#x}");
            assert!(
                [RESOURCES.0, ndis_sys::NDIS_STATUS_RESOURCES].contains(&st),
                "n={n}: DriverEntry failed with {st:#x}, not for want of memory"
            );
            assert!(report.is_clean(), "n={n}: the failed DriverEntry: {report}");
            assert!(report.leaked_pool.is_empty(), "n={n}: the failed DriverEntry leaked {:?}", report.leaked_pool);
            None
        }
        Err(e) => panic!("n={n}: ndisim could not start rawnic.sys: {e}"),
    }
}

/// The scripted life, each step checked as the module says.
fn life(run: &mut Run) {
    let (a, b) = (run.a, run.b);
    if let Some(h) = run.device() {
        let r = h.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty(), 64 * 1024);
        run.check("list", r.status, &[RESOURCES]);
        h.close();
    }
    let ha = run.open(a, "open a");
    let hb = run.open(b, "open b");
    if let (Some(ha), Some(hb)) = (&ha, &hb) {
        // A frame each way, by SEND_BATCH and by WriteFile.
        let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
        if run.send(ha, &f, "send a->b") {
            run.receive(hb, b, &f, "receive at b");
        }
        let g = frame(BROADCAST, PEER, 0x88b5, 200, 2);
        run.mark_missed();
        let w = hb.write(&g);
        if run.check("write b->a", w.status, &[RESOURCES, NtStatus::DEVICE_NOT_READY]) {
            run.receive(ha, a, &g, "receive at a");
        }
        // An OID query and a multicast list (a filter change with it).
        let mut input = vec![0u8; 16];
        OidRequest { oid: ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, data: &[] }.emit(&mut input).unwrap();
        let r = ha.ioctl(IOCTL_RAWNIC_QUERY_OID, &input, 64);
        run.check("query an OID", r.status, &[RESOURCES]);
        // (On b, which keeps its binding to the end: what a refusal here
        // leaves behind shows in `afterwards`.)
        let r = hb.ioctl(IOCTL_RAWNIC_SET_OID, &multicast_input(&[[0x01, 0x00, 0x5e, 0, 0, 1]]), 64);
        run.check("set a multicast list", r.status, &[RESOURCES]);
        let r = ha.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN);
        run.check("stats", r.status, &[RESOURCES]);
        // A receive program on b that takes every frame whole.
        let insns = [BpfInsn::new(0x6, 0, 0, 0xffff)];
        let mut p = vec![0u8; ProgramRequest::wire_len(insns.len())];
        ProgramRequest::emit(&insns, &mut p).unwrap();
        let r = hb.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &p, 0);
        run.check("set a program", r.status, &[RESOURCES]);
    }
    // Rings on b: a frame in from a, a frame out to a.
    if let (Some(ha), Some(hb)) = (&ha, &hb) {
        rings(run, ha, hb);
    }
    // (Frames still on the wire arrive before the bindings change.)
    run.sim.settle(a);
    run.sim.settle(b);
    // A pause and a restart of a, then an unbind and a bind, with the
    // handles open.
    if run.sim.binding_state(a) == BindingState::Running {
        run.sim.pause(a).unwrap();
        run.sim.restart(a, &RestartSpec::default()).unwrap();
    }
    if let Some(ha) = &ha {
        let f = frame(BROADCAST, PEER, 0x88b5, 60, 3);
        run.send(ha, &f, "send after the restart");
    }
    // b to low power (D3) and back, then a restart of b that changes its
    // MTU, a frame from b's handle after each.
    if run.sim.binding_state(b) == BindingState::Running {
        run.sim.set_power(b, ndis_sys::NetDeviceStateD3).unwrap();
        run.sim.set_power(b, ndis_sys::NetDeviceStateD0).unwrap();
        if let Some(hb) = &hb {
            let f = frame(BROADCAST, PEER, 0x88b5, 70, 6);
            run.send(hb, &f, "send after D0");
        }
        run.sim.pause(b).unwrap();
        run.sim.restart(b, &RestartSpec { mtu: Some(1400), ..RestartSpec::default() }).unwrap();
        if let Some(hb) = &hb {
            let f = frame(BROADCAST, PEER, 0x88b5, 1414, 7);
            run.send(hb, &f, "send after the MTU changed");
        }
        run.sim.settle(a);
    }
    if run.sim.binding_state(a) != BindingState::Unbound {
        run.sim.unbind(a).unwrap();
    }
    if let Err(e) = run.sim.bind(a) {
        // The driver declined the bind (NDIS offers it again after a
        // listing: `afterwards`).
        assert!(run.refused(), "{}: the bind failed: {e:?}", run.ctx());
        run.failed.push(("bind a again", RESOURCES));
    }
    if run.sim.binding_state(a) == BindingState::Paused {
        run.sim.restart(a, &RestartSpec::default()).unwrap();
    }
    if let Some(ha) = ha {
        // Orphaned by the unbind.
        let r = ha.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN);
        if status(r.status) != RESOURCES || !run.refused() {
            assert_eq!(status(r.status), NtStatus::DEVICE_REMOVED, "{}: a handle the unbind orphaned", run.ctx());
        }
        ha.close();
    }
    if let Some(hb) = hb {
        hb.close();
    }
}

/// Ring receive and zero-copy send on `hb`, `ha` the peer.
fn rings(run: &mut Run, ha: &Handle, hb: &Handle) {
    let setup = rawnic_tests::rings::SETUP;
    let l = RingLayout::new(&setup).unwrap();
    let m = ndisim::UserRegion::new(l.total).unwrap();
    let mut input = [0u8; RingSetup::LEN];
    setup.emit(&mut input).unwrap();
    let attach = match hb.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone()) {
        Ok(t) => t,
        Err(st) => {
            run.check("attach rings (its IRP)", st, &[RESOURCES]);
            return;
        }
    };
    if let Some(r) = attach.try_result() {
        run.check("attach rings", r.status, &[RESOURCES]);
        return;
    }
    let frame_at = |i: u64| l.frames as u64 + i * l.frame_size as u64;
    // Fill entries for frames 0..8.
    for i in 0..8u32 {
        m.store_u64(l.fill.entry_at(i), frame_at(i as u64));
    }
    m.store_u32(l.fill.producer(), 8);
    let f = frame(BROADCAST, PEER, 0x88b5, 90, 4);
    if run.send(ha, &f, "send a->b rings") {
        let mut got = None;
        for _ in 0..200 {
            if m.load_u32(l.rx.producer()) != 0 {
                let mut raw = [0u8; RxDesc::LEN];
                m.read(l.rx.entry_at(0), &mut raw);
                got = Some(RxDesc::from_bytes(&raw));
                break;
            }
            run.sim.sleep(Duration::from_millis(10));
        }
        match got {
            Some(d) => assert_eq!(m.to_vec(d.addr as usize, d.len as usize), f, "{}: the ring's frame", run.ctx()),
            None => {
                assert!(run.refused(), "{}: no frame on the rx ring, with no allocation refused", run.ctx());
                run.failed.push(("receive on the rx ring", NtStatus::CANCELLED));
            }
        }
    }
    // A zero-copy send of one frame from frame 10.
    let g = frame(BROADCAST, PEER, 0x88b5, 120, 5);
    m.write(frame_at(10) as usize, &g);
    m.write(l.tx.entry_at(0), &TxDesc { addr: frame_at(10), len: g.len() as u32, flags: 0 }.to_bytes());
    m.store_u32(l.tx.producer(), 1);
    run.mark_missed();
    let r = hb.ioctl(IOCTL_RAWNIC_RING_KICK, &empty(), RingReply::LEN);
    if run.check("kick", r.status, &[RESOURCES, NtStatus::DEVICE_NOT_READY]) {
        run.receive(ha, run.a, &g, "receive a zero-copy send");
        // Its completion comes back on the completion ring.
        let mut back = false;
        for _ in 0..200 {
            if m.load_u32(l.completion.producer()) == 1 {
                back = true;
                break;
            }
            run.sim.sleep(Duration::from_millis(10));
        }
        assert!(back, "{}: the zero-copy send never completed", run.ctx());
        assert_eq!(m.load_u64(l.completion.entry_at(0)), frame_at(10), "{}", run.ctx());
    }
    run.until_taken("detach", || hb.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0));
    let done = attach.wait().unwrap();
    assert_eq!(status(done.status), NtStatus::SUCCESS, "{}: the attach completes at detach", run.ctx());
}

/// After the life: every adapter bound and running again (a declined bind
/// is offered again, as NDIS does after `NdisReEnumerateProtocolBindings`),
/// and a frame goes each way between fresh handles.
fn afterwards(run: &mut Run) {
    let n = run.ctx();
    run.sim.settle(run.a);
    run.sim.settle(run.b);
    // A listing asks NDIS to offer a declined bind again.
    let h = run.sim.open().unwrap();
    let _ = list(&h);
    h.close();
    for x in [run.a, run.b] {
        match run.sim.binding_state(x) {
            BindingState::Running => {}
            BindingState::Unbound => {
                assert!(run.sim.reenumeration_owed(x).unwrap(), "n={n}: a declined bind is offered again");
                assert!(run.sim.serve_reenumeration(x).unwrap(), "n={n}: bound when offered again");
            }
            BindingState::Paused => run.sim.restart(x, &RestartSpec::default()).unwrap(),
            s => panic!("n={n}: a binding left {s:?}"),
        }
        assert_eq!(run.sim.binding_state(x), BindingState::Running, "n={n}");
    }
    let failed = run.failed.len();
    let ha = run.open(run.a, "open a afterwards").unwrap_or_else(|| panic!("{n}: OPEN after the refusal"));
    let hb = run.open(run.b, "open b afterwards").unwrap_or_else(|| panic!("{n}: OPEN after the refusal"));
    let f = frame(BROADCAST, PEER, 0x88b5, 64, 9);
    assert!(run.send(&ha, &f, "send a->b afterwards"));
    run.receive(&hb, run.b, &f, "receive at b afterwards");
    assert!(run.send(&hb, &f, "send b->a afterwards"));
    run.receive(&ha, run.a, &f, "receive at a afterwards");
    assert_eq!(run.failed.len(), failed, "n={n}: after the refusal: {:?}", &run.failed[failed..]);
    // A multicast list on b reaches the adapter, with whatever b's first
    // handle set before (a set that could not be sent is not left in
    // flight for ever).
    let group = [0x01, 0x00, 0x5e, 0, 0, 2];
    let r = hb.ioctl(IOCTL_RAWNIC_SET_OID, &multicast_input(&[group]), 64);
    assert_eq!(status(r.status), NtStatus::SUCCESS, "{n}: a multicast set afterwards");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let groups_become = |ok: &dyn Fn(&[[u8; 6]]) -> bool, what: &str| {
        while !ok(&adapter_has(&run.sim, run.b).1) {
            assert!(std::time::Instant::now() < deadline, "{n}: {what}: {:?}", adapter_has(&run.sim, run.b));
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    groups_become(&|g| g.contains(&group), "the adapter never got the group");
    ha.close();
    hb.close();
    // Closed, b's handles leave the adapter none of their groups (the
    // driver's own set of the union is not stuck behind one it could not
    // send).
    groups_become(&|g| g.is_empty(), "the adapter kept groups");
}

/// One run: the life, then (once the refusal came) the check that the
/// driver recovered, then the unload. Returns the allocations counted and
/// whether the refused one came.
fn one(n: u64, count: u64) -> (u64, bool) {
    let Some(mut run) = start(n, count) else {
        return (n, true);
    };
    life(&mut run);
    let came = run.refused();
    if std::env::var_os("RAWNIC_FAIL_NTH").is_some() {
        // A replay says what the refusal met.
        eprintln!("{}: failed {:?}", run.ctx(), run.failed);
    }
    // (What is left of a burst ends here.)
    run.sim.end_allocation_refusals();
    if came || n == 0 {
        afterwards(&mut run);
    }
    let counted = run.sim.allocations_counted();
    assert!(n == 0 || !came || n <= counted, "n={n}");
    if n == 0 {
        assert!(run.failed.is_empty(), "nothing refused, yet {:?}", run.failed);
    }
    let r = run.sim.unload();
    assert!(r.is_clean(), "n={n} (failed: {:?}): {r}", run.failed);
    assert!(r.leaked_pool.is_empty(), "n={n}: leaked {:?}", r.leaked_pool);
    (counted, came)
}

/// RAWNIC_FAIL_BURST=k: a replay's refusals come k in a row.
fn burst() -> u64 {
    std::env::var("RAWNIC_FAIL_BURST").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

#[test]
fn every_allocation_of_a_life_refused_in_turn() {
    // A replay: RAWNIC_FAIL_NTH=n runs that one, =a..b those.
    if let Ok(v) = std::env::var("RAWNIC_FAIL_NTH") {
        let (a, b) = v.split_once("..").unwrap_or((&v, &v));
        for n in a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap() {
            let (counted, came) = one(n, burst());
            eprintln!("n={n}: {counted} allocations counted; the refusal came: {came}");
        }
        return;
    }
    let (total, _) = one(0, 1);
    assert!(total > 50, "a life counts its allocations: {total}");
    let mut came = 0;
    // A few past the life's count: the unload's own allocations.
    for n in 1..=total + 8 {
        if one(n, 1).1 {
            came += 1;
        }
    }
    eprintln!("{total} allocations in a life; {came} of {} refusals came", total + 8);
    assert!(came >= total * 9 / 10, "{came} of {total} refusals came");
}

/// A shortage that lasts: 16 allocations in a row refused, from every
/// seventh of the life, so the retries inside it (an owed filter's work
/// item, the user's reads and detaches) are refused too, and what gives up
/// on them must still leave the driver whole once memory comes back.
#[test]
fn bursts_of_sixteen_refusals_through_a_life() {
    let (total, _) = one(0, 1);
    let mut came = 0;
    let mut runs = 0;
    for n in (1..=total).step_by(7) {
        runs += 1;
        if one(n, 16).1 {
            came += 1;
        }
    }
    eprintln!("{total} allocations in a life; {came} of {runs} bursts came");
    assert!(came >= runs * 9 / 10, "{came} of {runs} bursts came");
}
