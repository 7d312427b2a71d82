//! `ndisim demo`: a short self-contained scenario with the real driver on a
//! loopback adapter, printed step by step, ending with the verifier report.

use crate::ndis::{InjectOpts, RestartSpec};
use crate::sim::Sim;
use std::path::PathBuf;

fn frame(i: u8) -> Vec<u8> {
    let mut f = vec![0xFF; 60];
    f[6..12].copy_from_slice(&[2, 0, 0x5e, 0, 0, 0x42]);
    f[12] = 0x88;
    f[13] = 0xB5;
    f[14] = i;
    f
}

/// Runs the demo; returns the exit status.
pub fn run(driver: Option<PathBuf>, dbgprint: bool) -> i32 {
    let Some(driver) = driver else {
        eprintln!("ndisim demo: --driver FILE is required");
        return 2;
    };
    let sim = match Sim::builder().driver(&driver).adapter("loopback").echo_dbgprint(dbgprint).start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ndisim demo: {e}");
            return 2;
        }
    };
    let a = crate::sim::AdapterId(0);
    println!("demo: loaded {} at {:#x}", driver.display(), sim.image_base());
    println!("demo: protocol {:?} registered; loop0 is {:?}", sim.protocol_name().unwrap_or_default(), sim.binding_state(a));
    let (devices, links) = sim.devices();
    println!("demo: devices {devices:?}, links {links:?}");
    let mut ok = true;
    if devices.is_empty() {
        println!("demo: the driver has no control device; device I/O is skipped");
    } else {
        match sim.open() {
            Ok(h) => {
                let mut req = [0u8; 4];
                let _ = proto::EmptyRequest::emit(&mut req);
                let r = h.ioctl(proto::IOCTL_RAWNIC_GET_VERSION, &req, proto::VersionReply::LEN);
                println!("demo: IOCTL_RAWNIC_GET_VERSION -> {:#010x}, {} bytes: {:?}", r.status as u32, r.data.len(), proto::VersionReply::parse(&r.data).ok());
                let r = h.ioctl(proto::IOCTL_RAWNIC_LIST_BINDINGS, &req, 4096);
                println!("demo: IOCTL_RAWNIC_LIST_BINDINGS -> {:#010x}, {} bytes", r.status as u32, r.data.len());
                h.close();
            }
            Err(st) => {
                println!("demo: opening \\\\.\\RawNic failed: {st:#010x}");
                ok = false;
            }
        }
    }
    let frames: Vec<Vec<u8>> = (0..8).map(frame).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let steps: Vec<(&str, Box<dyn Fn() -> Result<(), crate::SimError>>)> = vec![
        ("receive 8 frames (2 NBLs per indication)", Box::new(|| sim.inject(a, &refs, &InjectOpts { nbls_per_indication: 2, ..Default::default() }).map(|_| ()))),
        ("receive 8 frames with NDIS_RECEIVE_FLAGS_RESOURCES", Box::new(|| sim.inject(a, &refs, &InjectOpts { resources: true, nbs_per_nbl: 2, ..Default::default() }).map(|_| ()))),
        ("link down", Box::new(|| sim.link(a, false))),
        ("link up", Box::new(|| sim.link(a, true))),
        ("pause", Box::new(|| sim.pause(a))),
        ("restart with MTU 9000 and a filter module", Box::new(|| sim.restart(a, &RestartSpec { mtu: Some(9000), filter_modules: vec!["ndisim-filter".into()], ..Default::default() }))),
        ("unbind", Box::new(|| sim.unbind(a))),
        ("bind", Box::new(|| sim.bind(a))),
        ("restart", Box::new(|| sim.restart(a, &RestartSpec::default()))),
    ];
    for (what, f) in &steps {
        match f() {
            Ok(()) => println!("demo: {what}: ok (loop0 {:?})", sim.binding_state(a)),
            Err(e) => {
                println!("demo: {what}: {e}");
                ok = false;
            }
        }
    }
    drop(steps);
    let report = sim.unload();
    println!("{report}");
    if ok && report.is_clean() {
        0
    } else {
        1
    }
}
