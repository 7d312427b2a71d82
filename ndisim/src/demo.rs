//! `ndisim demo`: the real driver on two adapters joined by a wire, driven through its
//! control device with real IRPs, step by step, ending with the verifier
//! report. Every step checks its result; the exit status says whether all
//! did.

mod rings;

use crate::ndis::RestartSpec;
use crate::sim::{Handle, Sim};
use rawnic_proto::*;
use std::path::PathBuf;

const ETHERTYPE: u16 = 0x88B5; // IEEE 802 local experimental

fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[2, 0, 0x5e, 0, 0, 0x42]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (seq as usize + i) as u8;
    }
    f
}

fn empty() -> [u8; 4] {
    let mut b = [0u8; 4];
    let _ = EmptyRequest::emit(&mut b);
    b
}

struct Demo {
    ok: bool,
}

impl Demo {
    fn step(&mut self, what: &str, r: Result<String, String>) {
        match r {
            Ok(s) => println!("demo: {what}: {s}"),
            Err(e) => {
                println!("demo: {what}: FAILED: {e}");
                self.ok = false;
            }
        }
    }
}

fn st(s: i32) -> String {
    format!("{:?}", NtStatus(s))
}

fn send_batch(h: &Handle, frames: &[Vec<u8>]) -> Result<SendReply, String> {
    let items: Vec<SendFrame<'_>> = frames.iter().map(|f| SendFrame { data: f, tci: None }).collect();
    let input = SendBatchWriter::build(&items).map_err(|e| format!("{e:?}"))?;
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &input, SendReply::LEN);
    if r.status != 0 {
        return Err(st(r.status));
    }
    SendReply::parse(&r.data).map_err(|e| format!("{e:?}"))
}

/// Reads until `want` frames arrived; returns their payloads.
fn read_frames(h: &Handle, want: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut got = Vec::new();
    while got.len() < want {
        let r = h.read(256 * 1024);
        if r.status != 0 {
            return Err(format!("ReadFile: {}", st(r.status)));
        }
        let recs = FrameRecords::new_checked(&r.data).map_err(|e| format!("bad records: {e:?}"))?;
        got.extend(recs.iter().map(|(_, d)| d.to_vec()));
    }
    Ok(got)
}

fn wait_event(h: &Handle) -> Result<EventRecord, String> {
    let r = h.ioctl(IOCTL_RAWNIC_WAIT_EVENT, &empty(), EventRecord::LEN);
    if r.status != 0 {
        return Err(st(r.status));
    }
    EventRecord::parse(&r.data).map_err(|e| format!("{e:?}"))
}

/// Opens `h` on binding `name` for EtherType 0x88b5.
fn open(h: &Handle, name: &str, local_sends: LocalSends) -> Result<OpenReply, String> {
    let r = OpenRepr {
        name,
        ethertypes: &[ETHERTYPE],
        packet_filter: filter::DEFAULT,
        queue_frames: 0,
        queue_bytes: 0,
        snaplen: 0,
        local_sends,
        strict_filter: false,
    };
    let mut buf = vec![0u8; r.wire_len()];
    r.emit(&mut buf).map_err(|e| format!("{e:?}"))?;
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &buf, OpenReply::LEN);
    OpenReply::parse(&r.data).map_err(|_| st(r.status))
}

/// Reads until `want` frames arrived; returns their headers' flags.
fn read_flags(h: &Handle, want: usize) -> Result<Vec<u16>, String> {
    let mut got = Vec::new();
    while got.len() < want {
        let r = h.read(256 * 1024);
        if r.status != 0 {
            return Err(format!("ReadFile: {}", st(r.status)));
        }
        let recs = FrameRecords::new_checked(&r.data).map_err(|e| format!("bad records: {e:?}"))?;
        got.extend(recs.iter().map(|(hdr, _)| hdr.flags));
    }
    Ok(got)
}

/// Runs the demo; returns the exit status.
pub fn run(driver: Option<PathBuf>, dbgprint: bool) -> i32 {
    let Some(driver) = driver else {
        eprintln!("ndisim demo: --driver FILE is required");
        return 2;
    };
    // Two adapters joined by a wire: what one sends, the other receives.
    // rawnic.sys's safety-net lines (a broken invariant it caught and
    // survived) make the demo fail, as they make every test fail.
    let sim = match Sim::builder()
        .driver(&driver)
        .adapter("pair:a,b")
        .echo_dbgprint(dbgprint)
        .forbid_debug_lines(&[rawnic_proto::SAFETY_NET_LINE])
        .start()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ndisim demo: {e}");
            return 2;
        }
    };
    let (a, b) = (crate::sim::AdapterId(0), crate::sim::AdapterId(1));
    let mut d = Demo { ok: true };
    println!(
        "demo: loaded {} at {:#x}; protocol {:?}; a is {:?}, b is {:?} (a and b share a wire)",
        driver.display(),
        sim.image_base(),
        sim.protocol_name().unwrap_or_default(),
        sim.binding_state(a),
        sim.binding_state(b)
    );
    let (tx, rx, cap) = match (sim.open(), sim.open(), sim.open()) {
        (Ok(tx), Ok(rx), Ok(cap)) => (tx, rx, cap),
        (Err(s), _, _) | (_, Err(s), _) | (_, _, Err(s)) => {
            println!("demo: opening \\\\.\\RawNic failed: {}", st(s));
            let _ = sim.unload();
            return 1;
        }
    };
    d.step("GET_VERSION", {
        let r = tx.ioctl(IOCTL_RAWNIC_GET_VERSION, &[], VersionReply::LEN);
        VersionReply::parse(&r.data)
            .map(|v| {
                format!(
                    "driver {}.{}.{}, NDIS {}.{}, wire format {}, up to {} frames per batch",
                    v.driver.0, v.driver.1, v.driver.2, v.ndis.0, v.ndis.1, v.proto_version, v.max_batch
                )
            })
            .map_err(|_| st(r.status))
    });
    let mut names = Vec::new();
    d.step("LIST_BINDINGS", {
        let r = tx.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty(), 64 * 1024);
        match ListReply::new_checked(&r.data) {
            Ok(l) => {
                let lines: Vec<String> = l
                    .entries()
                    .map(|e| {
                        names.push(e.name.to_string());
                        format!(
                            "{} \"{}\" mac {:02x?} mtu {} link {} {}",
                            e.name,
                            e.description,
                            e.mac,
                            e.mtu,
                            link::name(e.link),
                            state::name(e.state)
                        )
                    })
                    .collect();
                Ok(lines.join("; "))
            }
            Err(e) => Err(format!("{}: {e:?}", st(r.status))),
        }
    });
    let (name_a, name_b) = (names.first().cloned().unwrap_or_default(), names.get(1).cloned().unwrap_or_default());
    d.step("OPEN a to send, b to receive, and a second handle on a to capture (directed, multicast, broadcast; EtherType 0x88b5)", {
        open(&tx, &name_a, LocalSends::Others)
            .and_then(|o| open(&rx, &name_b, LocalSends::Others).map(|p| (o, p)))
            .and_then(|(o, p)| open(&cap, &name_a, LocalSends::Others).map(|_| (o, p)))
            .map(|(o, p)| format!("bindings {} and {}, mtu {}", o.binding_id, p.binding_id, o.mtu))
    });
    let frames: Vec<Vec<u8>> = (0..1024).map(|i| frame(i, 64 + (i as usize % 1450))).collect();
    d.step("SEND_BATCH 1024 frames on a, in batches of 64", {
        let mut sent = 0;
        let mut err = None;
        for chunk in frames.chunks(64) {
            match send_batch(&tx, chunk) {
                Ok(r) => sent += r.accepted as usize,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            Some(e) => Err(e),
            None if sent == frames.len() => Ok(format!("{sent} accepted")),
            None => Err(format!("only {sent} accepted")),
        }
    });
    d.step("ReadFile drains them", {
        read_frames(&rx, frames.len()).and_then(|got| {
            if got == frames {
                Ok(format!("{} frames back, in order, byte for byte, on b", got.len()))
            } else {
                Err("the frames differ".into())
            }
        })
    });
    d.step("the capture handle on a saw them too", {
        read_flags(&cap, frames.len()).and_then(|flags| {
            if flags.iter().all(|f| f & frame_flags::OUTBOUND != 0) {
                Ok(format!("{} frames, each marked outbound (sent from this host)", flags.len()))
            } else {
                Err("a frame is not marked outbound".into())
            }
        })
    });
    d.step("WriteFile one frame (the NDISPROT way)", {
        let f = frame(5000, 100);
        let r = tx.write(&f);
        if r.status != 0 {
            Err(st(r.status))
        } else {
            read_frames(&rx, 1).and_then(|got| {
                if got == [f] { Ok("sent on a and received on b".into()) } else { Err("mismatch".into()) }
            })
        }
    });
    d.step("GET_STATS", {
        let r = rx.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN);
        StatsReply::parse(&r.data)
            .map(|s| {
                format!(
                    "handle on b: {} received, {} dropped; binding b: {} indicated",
                    s.handle.rx_frames, s.handle.rx_queue_drops, s.binding.rx_frames
                )
            })
            .map_err(|_| st(r.status))
    });
    d.step("rings: b receives into its UMEM what a sends zero-copy from its own", {
        let frames: Vec<Vec<u8>> = (0..200).map(|i| frame(7000 + i, 64 + (i as usize * 7) % 1450)).collect();
        rings::run(&tx, &rx, &frames)
    });
    d.step("pause, restart with MTU 9000 and a filter module", {
        let spec = RestartSpec { mtu: Some(9000), filter_modules: vec!["ndisim-filter".into()], ..Default::default() };
        sim.pause(a)
            .and_then(|_| sim.restart(a, &spec))
            .and_then(|_| sim.pause(b))
            .and_then(|_| sim.restart(b, &spec))
            .map_err(|e| e.to_string())
            .and_then(|_| {
                let e1 = wait_event(&tx)?;
                let e2 = wait_event(&tx)?;
                Ok(format!("events {} then {} (mtu {})", event::name(e1.kind), event::name(e2.kind), e2.mtu))
            })
    });
    d.step("a 9014-byte frame after the restart", {
        let f = frame(6000, 9014);
        send_batch(&tx, std::slice::from_ref(&f))
            .and_then(|_| read_frames(&rx, 1))
            .and_then(|got| if got == [f] { Ok("received whole".into()) } else { Err("mismatch".into()) })
    });
    d.step("unbind with a read pending", {
        match rx.read_async(4096) {
            Ok(t) => sim.unbind(b).map_err(|e| e.to_string()).and_then(|_| {
                let r = t.wait().ok_or("the read never completed")?;
                Ok(format!("the read completed with {}", st(r.status)))
            }),
            Err(s) => Err(st(s)),
        }
    });
    tx.close();
    rx.close();
    cap.close();
    let report = sim.unload();
    println!("{report}");
    if d.ok && report.is_clean() {
        println!("demo: all steps passed and the verifier is clean");
        0
    } else {
        1
    }
}
