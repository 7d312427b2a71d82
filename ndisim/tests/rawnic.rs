//! The real rawnic.sys (built from the current sources by the root
//! package's build script) on every kind of virtual adapter. It must be
//! verifier-clean in every test.

use ndisim::*;
use rawnic_tests::drv::{self, finish, start};
use rawnic_tests::tap;
use std::time::Duration;

/// A handle on binding `idx` that receives every frame: NDIS indicates
/// only what the binding's packet filter accepts, and rawnic's filter is
/// the union of its open handles'.
fn receiver(s: &Sim, idx: usize) -> Handle {
    drv::open(s, idx, rawnic_proto::filter::PROMISCUOUS, &[]).0
}

/// `n` broadcast frames of 60 bytes and up, EtherType 0x88B5.
fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| drv::frame(drv::BROADCAST, drv::PEER, 0x88B5, 60 + i, i as u32)).collect()
}

#[test]
fn binds_every_adapter_kind_and_unloads_clean() {
    let s = start(&["loopback", "null", "pair:a,b", "loopback@open=pending,close=pending,oid=pending"]);
    assert_eq!(s.protocol_name().as_deref(), Some("RAWNIC"));
    assert!(s.binds_completed());
    for (i, n) in s.adapter_names().iter().enumerate() {
        assert_eq!(s.binding_state(AdapterId(i)), BindingState::Running, "{n}");
    }
    assert_ne!(s.image_base(), 0);
    finish(s);
}

#[test]
fn receives_in_every_shape() {
    let s = start(&["loopback"]);
    let a = AdapterId(0);
    let f = frames(16);
    let refs: Vec<&[u8]> = f.iter().map(|v| v.as_slice()).collect();
    // With no handle open, the binding's filter is 0: NDIS indicates nothing.
    assert_eq!(s.inject(a, &refs, &InjectOpts::default()).unwrap(), 0);
    let h = receiver(&s, 0);
    for o in [
        InjectOpts::default(),
        InjectOpts { nbls_per_indication: 4, ..Default::default() },
        InjectOpts { nbs_per_nbl: 3, nbls_per_indication: 2, ..Default::default() },
        InjectOpts { resources: true, nbls_per_indication: 4, ..Default::default() },
        InjectOpts { dispatch: false, ..Default::default() },
        InjectOpts { tci: Some(0x2005), ..Default::default() },
    ] {
        assert_eq!(s.inject(a, &refs, &o).unwrap(), 16, "{o:?}");
    }
    h.close();
    assert_eq!(s.outstanding(a).receives_retained, 0);
    finish(s);
}

#[test]
fn pause_restart_with_attributes_unbind_and_bind_again() {
    let s = start(&["null", "loopback"]);
    let a = AdapterId(0);
    let h = receiver(&s, 0);
    s.pause(a).unwrap();
    assert_eq!(s.binding_state(a), BindingState::Paused);
    // NDIS may indicate while Paused ("should return receive indications
    // immediately", Pausing a Binding): the driver gives them back at once.
    assert_eq!(s.inject(a, &[&frames(1)[0]], &InjectOpts::default()).unwrap(), 1, "receives while Paused");
    assert_eq!(s.outstanding(a).receives_retained, 0);
    let spec = RestartSpec {
        mtu: Some(9000),
        filter_modules: vec!["filter one".into(), "two".into()],
        general_revision: Some(1),
        extra_attributes: vec![(0x0001_0207, vec![0; 8])],
        ..Default::default()
    };
    s.restart(a, &spec).unwrap();
    assert_eq!(s.binding_state(a), BindingState::Running);
    s.unbind(a).unwrap();
    assert_eq!(s.binding_state(a), BindingState::Unbound);
    s.bind(a).unwrap();
    s.restart(a, &RestartSpec::default()).unwrap();
    s.unbind(AdapterId(1)).unwrap();
    h.close();
    finish(s);
}

#[test]
fn link_and_power_events() {
    // The pause for low power gives NDIS_PAUSE_LOW_POWER (2) as its reason
    // to a protocol of NDIS 6.30, and NDIS_PAUSE_NDIS_INTERNAL (1) to one
    // of 6.40 or later, for which the member is deprecated: rawnic as 6.89
    // is not told the pause is for low power.
    for (os, reason) in [((6, 89), 1), ((6, 30), 2)] {
        let s = drv::start_with(&["loopback"], |b| b.ndis_version(os.0, os.1));
        let a = AdapterId(0);
        s.link(a, false).unwrap();
        assert!(!s.adapter_filter(a).unwrap().0);
        s.link(a, true).unwrap();
        s.pnp_log(a, true);
        s.set_power(a, 4).unwrap();
        assert_eq!(s.binding_state(a), BindingState::Paused);
        // Into D3: the power query, the set-power event, then a pause for
        // low power.
        use ndis_sys::{NetEventPause, NetEventQueryPower, NetEventRestart, NetEventSetPower};
        assert_eq!(s.pnp_log(a, true), vec![(NetEventQueryPower, 4), (NetEventSetPower, 4), (NetEventPause, reason)]);
        s.set_power(a, 1).unwrap();
        assert_eq!(s.binding_state(a), BindingState::Running);
        // Back to D0: the restart first, then the set-power event.
        assert_eq!(s.pnp_log(a, true), vec![(NetEventRestart, 0), (NetEventSetPower, 1)]);
        finish(s);
    }
}

/// `hold_set_power_d0` stops a return to D0 between its restart, which
/// has completed (the binding runs), and its `NetEventSetPower` for D0,
/// until `release_set_power_d0`; released, the event is delivered and
/// the next return to D0 goes through unheld.
#[test]
fn a_return_to_d0_holds_its_set_power_event_until_released() {
    use ndis_sys::{NetEventRestart, NetEventSetPower};
    let s = start(&["null"]);
    let a = AdapterId(0);
    s.set_power(a, 4).unwrap();
    s.hold_set_power_d0(a).unwrap();
    s.pnp_log(a, true);
    std::thread::scope(|sc| {
        let up = sc.spawn(|| s.set_power(a, 1));
        let t0 = std::time::Instant::now();
        while s.held_set_power_d0(a) != 1 {
            assert!(t0.elapsed() < Duration::from_secs(10), "the set-power event was never held");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(s.binding_state(a), BindingState::Running);
        assert_eq!(s.pnp_log(a, false), vec![(NetEventRestart, 0)]);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!up.is_finished(), "the return to D0 waits for the release");
        assert_eq!(s.pnp_log(a, false), vec![(NetEventRestart, 0)]);
        s.release_set_power_d0(a).unwrap();
        up.join().unwrap().unwrap();
    });
    assert_eq!(s.held_set_power_d0(a), 0);
    assert_eq!(s.pnp_log(a, true), vec![(NetEventRestart, 0), (NetEventSetPower, 1)]);
    // Released: the next return to D0 is not held.
    s.set_power(a, 4).unwrap();
    s.pnp_log(a, true);
    s.set_power(a, 1).unwrap();
    assert_eq!(s.pnp_log(a, true), vec![(NetEventRestart, 0), (NetEventSetPower, 1)]);
    finish(s);
}

#[test]
fn binds_during_registration() {
    // NDIS may bind as soon as the protocol registers. With a miniport that
    // completes the open and the OID requests inside the calls, the whole
    // bind runs under DriverEntry's frame and the registration's: the
    // driver's share of the stack must stay within its budget there too
    // (the image of 8d97e43 went 8,456 bytes deep, its bind handler's frame
    // 1,944 bytes).
    for adapter in ["null", "null@open=inline,oid=inline"] {
        let s = rawnic_tests::rawnic_builder().adapter(adapter).bind_during_registration(true).start().unwrap();
        assert_eq!(s.binding_state(AdapterId(0)), BindingState::Running, "{adapter}");
        finish(s);
    }
}

#[test]
fn every_declared_import_is_emulated() {
    let table = ndisim::exports::table();
    for (dll, names) in ndis_sys::imports::ALL {
        for n in *names {
            assert!(ndisim::exports::resolve(&table, dll, n).is_some(), "{dll}!{n} is not emulated");
        }
    }
    for (dll, n) in ndis_sys::imports::VARIADIC {
        assert!(ndisim::exports::resolve(&table, dll, n).is_some(), "{dll}!{n} is not emulated");
    }
}

#[test]
fn forced_image_base_and_symbols() {
    let s = rawnic_tests::rawnic_builder().image_base(0x5_4000_0000).start().unwrap();
    assert_eq!(s.image_base(), 0x5_4000_0000);
    assert_eq!(s.preferred_base(), 0x1_4000_0000);
    finish(s);
}

#[test]
fn unresolved_imports_are_a_load_error_naming_each() {
    let p = std::env::temp_dir().join(format!("ndisim-bad-{}.sys", std::process::id()));
    let mut img = std::fs::read(rawnic_tests::rawnic_sys()).unwrap();
    // Rename two imports in the name table.
    for (from, to) in
        [(&b"NdisAllocateMdl"[..], &b"NdisAllocateMdX"[..]), (&b"ExFreePoolWithTag"[..], &b"ExFreePoolWithTaX"[..])]
    {
        let i = img.windows(from.len()).position(|w| w == from).unwrap();
        img[i..i + to.len()].copy_from_slice(to);
    }
    std::fs::write(&p, &img).unwrap();
    let e = Sim::builder().driver(&p).start().unwrap_err();
    let _ = std::fs::remove_file(&p);
    let t = e.to_string();
    assert!(t.contains("ndis.sys!NdisAllocateMdX") && t.contains("ntoskrnl.exe!ExFreePoolWithTaX"), "{t}");
}

#[test]
fn cli_demo_is_clean() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndisim"))
        .args(["demo", "--driver", rawnic_tests::rawnic_sys().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("result: CLEAN"), "{text}");
    for step in [
        "ReadFile drains them: 1024 frames back, in order",
        "200 frames sent zero-copy in one kick (0 refused), received in b's UMEM byte for byte (0 in its read queue)",
        "the read completed with STATUS_DEVICE_REMOVED",
        "all steps passed",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
}

#[test]
fn cli_script_runs_and_reports() {
    let p = std::env::temp_dir().join(format!("ndisim-script-{}.txt", std::process::id()));
    std::fs::write(&p, "# a script\npause loop0\nrestart loop0 mtu=4000 filters=a,b link=up\ninject loop0 count=4 nbls=2\nlink loop0 down\nlink loop0 up\nunbind loop0\nbind loop0\nexpect loop0 running\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndisim"))
        .args([
            "run",
            "--driver",
            rawnic_tests::rawnic_sys().to_str().unwrap(),
            "--adapter",
            "loopback",
            "--script",
            p.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&p);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("result: CLEAN"));
}

/// A TAP adapter in a private network namespace: what rawnic's binding
/// gets from the Linux side arrives as receive indications.
#[test]
fn tap_adapter_in_a_private_namespace() {
    // Namespaces are per thread: this test's thread gets its own.
    tap::private_netns();
    let s = start(&["tap:ndisim0"]);
    let h = receiver(&s, 0);
    tap::ip_link_up("ndisim0");
    // A raw packet socket on the Linux side of the TAP.
    let sock = tap::RawSocket::bind(c"ndisim0");
    sock.send(&drv::frame(drv::BROADCAST, [2, 0, 0, 0, 0, 7], 0x88B5, 64, 0));
    // Wait (bounded) until ndisim's TAP reader has indicated it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline && s.settle(AdapterId(0)) && s.received_frames(AdapterId(0)) == 0 {
        std::thread::yield_now();
    }
    assert!(s.received_frames(AdapterId(0)) >= 1, "the frame from Linux did not reach the driver");
    drop(sock);
    h.close();
    finish(s);
}

/// `short_of_pool` refuses the driver's pool allocations after those it
/// lets through, with or without a low-resources simulation, counts them
/// among `alloc_failures`, and `end_low_resources` ends what is left.
#[test]
fn a_shortage_aimed_at_the_next_pool_allocations() {
    let s = rawnic_tests::rawnic_builder().adapter("null").start().unwrap();
    assert_eq!(s.alloc_failures(), 0);
    // Let through more than any open makes: nothing is refused.
    s.short_of_pool(u64::MAX, 1000);
    for _ in 0..4 {
        s.open().expect("nothing refused yet").close();
    }
    assert_eq!(s.alloc_failures(), 0);
    s.short_of_pool(0, 1000);
    assert!(s.open().is_err(), "the handle's memory is refused");
    let refused = s.alloc_failures();
    assert!(refused > 0);
    s.end_low_resources();
    for _ in 0..4 {
        s.open().expect("the shortage ended").close();
    }
    assert_eq!(s.alloc_failures(), refused, "nothing refused once ended");
    let r = s.unload();
    assert!(r.internal_errors.is_empty(), "{r}");
}

/// `end_low_resources` stops the failures a low-resources simulation
/// injects, and `resume_low_resources` starts them again: at 1000 per
/// mille no handle can even be made (its IRP is refused), once ended every
/// one can.
#[test]
fn a_shortage_ends_and_resumes() {
    let s = rawnic_tests::rawnic_builder().adapter("null").low_resources(1000, 7).start().unwrap();
    assert!(s.open().is_err(), "every allocation is refused");
    let refused = s.alloc_failures();
    assert!(refused > 0);
    s.end_low_resources();
    for _ in 0..8 {
        let h = s.open().expect("no shortage any more");
        h.close();
    }
    assert_eq!(s.alloc_failures(), refused, "nothing refused once ended");
    s.resume_low_resources();
    assert!(s.open().is_err(), "refused again");
    assert!(s.alloc_failures() > refused);
    s.end_low_resources();
    let r = s.unload();
    assert!(r.internal_errors.is_empty(), "{r}");
}

/// `stall_pool_allocations_of(n)` stalls the driver's allocations of `n`
/// bytes (here a user's OID query, whose answer buffer is sized by its
/// output buffer) until released, while the driver's other allocations
/// (another handle's) go on; released, the stalled call finishes.
#[test]
fn a_pool_allocation_of_the_size_aimed_at_stalls_until_released() {
    let s = start(&["null"]);
    let h = receiver(&s, 0);
    let other = receiver(&s, 0);
    let mut input = vec![0u8; 16];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
    // The query's buffer: its output buffer less the reply's header.
    s.stall_pool_allocations_of(1234);
    std::thread::scope(|sc| {
        let q = sc.spawn(|| h.ioctl(rawnic_proto::IOCTL_RAWNIC_QUERY_OID, &input, 1234 + 16));
        let t0 = std::time::Instant::now();
        while s.stalled_pool_allocations() != 1 {
            assert!(t0.elapsed() < Duration::from_secs(10), "the allocation never stalled");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Others allocate meanwhile.
        assert_eq!(drv::stats(&other).handle.rx_frames, 0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!q.is_finished(), "the query waits inside its allocation");
        assert_eq!(s.stalled_pool_allocations(), 1);
        s.release_pool_allocations();
        let r = q.join().unwrap();
        assert_eq!(r.status, 0);
    });
    assert_eq!(s.stalled_pool_allocations(), 0);
    h.close();
    other.close();
    finish(s);
}

/// `stall_pool_allocations_for(n, d)` ends by itself: the thread that
/// cast it goes into the driver and waits there out what is left of `d`,
/// then its call finishes; an allocation after the spell's end is not
/// stalled.
#[test]
fn a_timed_pool_allocation_spell_ends_by_itself() {
    let s = start(&["null"]);
    let h = receiver(&s, 0);
    let mut input = vec![0u8; 16];
    rawnic_proto::OidRequest { oid: ndis_sys::OID_GEN_LINK_SPEED, data: &[] }.emit(&mut input).unwrap();
    let before = s.pool_allocations_stalled();
    let t0 = std::time::Instant::now();
    s.stall_pool_allocations_for(1234, Duration::from_millis(150));
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_QUERY_OID, &input, 1234 + 16);
    assert_eq!(r.status, 0);
    assert!(t0.elapsed() >= Duration::from_millis(150), "the query waited the spell out");
    assert_eq!(s.pool_allocations_stalled(), before + 1);
    assert_eq!(s.stalled_pool_allocations(), 0);
    // The spell is over: the same size goes through at once.
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_QUERY_OID, &input, 1234 + 16);
    assert_eq!(r.status, 0);
    assert_eq!(s.pool_allocations_stalled(), before + 1);
    s.release_pool_allocations();
    h.close();
    finish(s);
}

/// `refuse_ndis_pools_after(skip, n)` lets `skip` NBL and NET_BUFFER pool
/// allocations through and refuses the `n` after them: a bind whose send
/// pool's NBL pool is refused is declined (and nothing of it leaks), and
/// one let through binds.
#[test]
fn ndis_pools_are_refused_after_those_let_through() {
    let s = start(&["null"]);
    let a = AdapterId(0);
    s.unbind(a).unwrap();
    s.refuse_ndis_pools_after(0, 1);
    let _ = s.bind(a);
    assert_eq!(s.binding_state(a), BindingState::Unbound, "the bind was declined");
    assert_eq!(s.ndis_pools_to_refuse(), (0, 0), "its pool was refused");
    s.refuse_ndis_pools_after(1000, 1);
    s.bind(a).unwrap();
    s.restart(a, &RestartSpec::default()).unwrap();
    assert_eq!(s.binding_state(a), BindingState::Running);
    assert_eq!(s.ndis_pools_to_refuse().1, 1, "none refused");
    s.refuse_ndis_pools_after(0, 0);
    finish(s);
}
