//! The real rawnic.sys (built from the current sources by the root
//! package's build script) on every kind of virtual adapter. It must be
//! verifier-clean in every test.

use ndisim::*;
use std::time::Duration;

fn sim(adapters: &[&str]) -> Sim {
    let mut b = Sim::builder().driver(rawnic_tests::rawnic_sys()).watchdog(Duration::from_secs(10));
    for a in adapters {
        b = b.adapter(a);
    }
    b.start().expect("rawnic.sys starts")
}

fn clean(s: Sim) {
    let r = s.unload();
    assert!(r.is_clean(), "{r}");
    assert!(r.leaked_pool.is_empty(), "{r}");
}

/// A handle on binding `idx` that receives every frame: NDIS indicates
/// only what the binding's packet filter accepts, and rawnic's filter is
/// the union of its open handles'.
fn receiver(s: &Sim, idx: usize) -> Handle {
    rawnic_tests::drv::open(s, idx, proto::filter::PROMISCUOUS, &[]).0
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = vec![0xFFu8; 60 + i];
            f[12] = 0x88;
            f[13] = 0xB5;
            f
        })
        .collect()
}

#[test]
fn binds_every_adapter_kind_and_unloads_clean() {
    let s = sim(&["loopback", "null", "pair:a,b", "loopback@open=pending,close=pending,oid=pending"]);
    assert_eq!(s.protocol_name().as_deref(), Some("RAWNIC"));
    assert!(s.binds_completed());
    for (i, n) in s.adapter_names().iter().enumerate() {
        assert_eq!(s.binding_state(AdapterId(i)), BindingState::Running, "{n}");
    }
    assert_ne!(s.image_base(), 0);
    clean(s);
}

#[test]
fn receives_in_every_shape() {
    let s = sim(&["loopback"]);
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
    clean(s);
}

#[test]
fn pause_restart_with_attributes_unbind_and_bind_again() {
    let s = sim(&["null", "loopback"]);
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
    clean(s);
}

#[test]
fn link_and_power_events() {
    let s = sim(&["loopback"]);
    let a = AdapterId(0);
    s.link(a, false).unwrap();
    assert!(!s.adapter_filter(a).unwrap().0);
    s.link(a, true).unwrap();
    s.pnp_log(a, true);
    s.set_power(a, 4).unwrap();
    assert_eq!(s.binding_state(a), BindingState::Paused);
    // Into D3: the set-power event, then a pause for low power.
    use ndis_sys::{NetEventPause, NetEventRestart, NetEventSetPower};
    assert_eq!(s.pnp_log(a, true), vec![(NetEventSetPower, 4), (NetEventPause, 2)]);
    s.set_power(a, 1).unwrap();
    assert_eq!(s.binding_state(a), BindingState::Running);
    // Back to D0: the restart first, then the set-power event.
    assert_eq!(s.pnp_log(a, true), vec![(NetEventRestart, 0), (NetEventSetPower, 1)]);
    clean(s);
}

#[test]
fn binds_during_registration() {
    // NDIS may bind as soon as the protocol registers.
    let s = Sim::builder()
        .driver(rawnic_tests::rawnic_sys())
        .adapter("null")
        .bind_during_registration(true)
        .start()
        .unwrap();
    assert_eq!(s.binding_state(AdapterId(0)), BindingState::Running);
    clean(s);
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
    let s = Sim::builder().driver(rawnic_tests::rawnic_sys()).image_base(0x5_4000_0000).start().unwrap();
    assert_eq!(s.image_base(), 0x5_4000_0000);
    assert_eq!(s.preferred_base(), 0x1_4000_0000);
    clean(s);
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
    // SAFETY: unshare affects only the calling thread's network namespace.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "unshare(CLONE_NEWNET) needs root: {}", std::io::Error::last_os_error());
    let s = sim(&["tap:ndisim0"]);
    let h = receiver(&s, 0);
    let st = std::process::Command::new("ip").args(["link", "set", "ndisim0", "up"]).status().expect("ip (iproute2)");
    assert!(st.success());
    // A raw packet socket on the Linux side of the TAP.
    // SAFETY: plain socket calls with valid arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32) };
    assert!(fd >= 0);
    // SAFETY: if_nametoindex with a NUL-terminated name.
    let idx = unsafe { libc::if_nametoindex(c"ndisim0".as_ptr()) };
    assert!(idx > 0);
    // SAFETY: sockaddr_ll is plain data.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sa.sll_ifindex = idx as i32;
    let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    // SAFETY: binding our socket to the interface.
    let r = unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_ll).cast(), len) };
    assert_eq!(r, 0);
    let mut f = [0xFFu8; 64];
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
    f[12] = 0x88;
    f[13] = 0xB5;
    // SAFETY: sending a valid buffer on our socket.
    let n = unsafe { libc::send(fd, f.as_ptr().cast(), f.len(), 0) };
    assert_eq!(n, 64);
    // Wait (bounded) until ndisim's TAP reader has indicated it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline && s.settle(AdapterId(0)) && s.received_frames(AdapterId(0)) == 0 {
        std::thread::yield_now();
    }
    assert!(s.received_frames(AdapterId(0)) >= 1, "the frame from Linux did not reach the driver");
    // SAFETY: closing our socket.
    unsafe { libc::close(fd) };
    h.close();
    clean(s);
}
