//! `selftest`: what a user runs on a test machine right after installing.
//! Each step prints PASS or FAIL with what it saw; the exit status says
//! whether all passed.

use crate::cli::SelftestArgs;
use crate::common::{Ctx, Fail, Res, format_duration, now_ns};
use crate::json;
use rawnic_client::oid::{OID_802_3_CURRENT_ADDRESS, OID_GEN_CURRENT_PACKET_FILTER, OID_GEN_LINK_SPEED, format_speed};
use rawnic_client::rawnic_proto::{self, LocalSends, PacketFilter, SendFrame, filter};
use rawnic_client::{Binding, BindingState, Device, Direction, Error, OpenOptions};
use std::time::{Duration, Instant};

/// IEEE 802 local experimental EtherType: nothing else on a LAN uses it.
const ETHERTYPE: u16 = 0x88B5;

struct Report<'c> {
    ctx: &'c Ctx,
    passed: u32,
    failed: u32,
}

impl Report<'_> {
    fn step(&mut self, name: &str, result: Result<String, String>) -> Res {
        let (pass, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        if pass {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        if self.ctx.global.json {
            return self.ctx.json(&json::Step { step: name, pass, detail: &detail });
        }
        self.ctx.out(format!("{}  {name}: {detail}", if pass { "PASS" } else { "FAIL" }))
    }
}

fn err(e: Error) -> String {
    rawnic_client::Report(&e).to_string()
}

/// A frame of the test: broadcast from `mac`, tagged with a run nonce and
/// its sequence number, so that stray frames are told apart.
fn test_frame(mac: [u8; 6], nonce: u64, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..22].copy_from_slice(&nonce.to_be_bytes());
    f[22..26].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[26..].iter_mut().enumerate() {
        *b = (seq as usize + i) as u8;
    }
    f
}

pub fn selftest(ctx: &Ctx, a: &SelftestArgs) -> Res {
    let mut r = Report { ctx, passed: 0, failed: 0 };
    let dev = ctx.device()?;
    r.step(
        "versions",
        dev.version().map_err(err).and_then(|v| {
            let (x, y, z) = v.driver;
            let text = format!("driver {x}.{y}.{z}, NDIS {}.{}, wire format {}", v.ndis.0, v.ndis.1, v.proto_version);
            if v.proto_version == rawnic_proto::PROTO_VERSION {
                Ok(text)
            } else {
                Err(format!(
                    "{text}, but rawnicctl speaks wire format {}: install matching versions",
                    rawnic_proto::PROTO_VERSION
                ))
            }
        }),
    )?;
    let list = match dev.list() {
        Ok(l) => l,
        Err(e) => {
            r.step("bindings", Err(err(e)))?;
            return finish(r);
        }
    };
    let chosen: Vec<Binding> = match &ctx.global.adapter {
        Some(_) => vec![ctx.adapter(&dev)?],
        None => list.clone(),
    };
    r.step(
        "bindings",
        if chosen.is_empty() {
            Err("rawnic is bound to no adapter: is an Ethernet adapter enabled, and did `netcfg -l rawnic.inf -c p -i RAWNIC` succeed?".into())
        } else if let Some(b) = chosen.iter().find(|b| b.state != BindingState::Running) {
            Err(format!("{} is {}, not running", label(b), b.state_name()))
        } else {
            Ok(format!("{} listed, the tested ones running: {}", list.len(), names(&chosen)))
        },
    )?;
    for b in &chosen {
        if b.state == BindingState::Running {
            adapter(&mut r, b, a)?;
        }
    }
    finish(r)
}

/// What a person calls the adapter: its alias, else its name.
fn label(b: &Binding) -> &str {
    b.alias.as_deref().unwrap_or(&b.name)
}

fn names(list: &[Binding]) -> String {
    list.iter().map(label).collect::<Vec<_>>().join(", ")
}

fn finish(r: Report<'_>) -> Res {
    let total = r.passed + r.failed;
    if r.ctx.global.json {
        r.ctx.json(&json::Summary { passed: r.passed, failed: r.failed })?;
    } else {
        r.ctx.out(format!("selftest: {} of {total} steps passed", r.passed))?;
    }
    if r.failed == 0 {
        Ok(())
    } else {
        Err(Fail::Error(format!("selftest failed: {} of {total} steps failed", r.failed)))
    }
}

/// The steps on one adapter: open, OIDs, a send received by a second
/// handle, and counters that agree.
fn adapter(r: &mut Report<'_>, b: &Binding, a: &SelftestArgs) -> Res {
    let open = |opts: &OpenOptions| -> Result<Device, String> {
        let d = r.ctx.device().map_err(|e| e.sentence())?;
        d.open_binding(opts).map_err(err)?;
        Ok(d)
    };
    // The sender takes no frames; the receiver takes the test's EtherType,
    // including other handles' sends (the driver hands them over: no peer
    // is needed).
    let tx = open(&OpenOptions::new(&b.name).send_only());
    let rx = open(
        &OpenOptions::new(&b.name)
            .ethertype(ETHERTYPE)
            .packet_filter(filter::BROADCAST)
            .local_sends(LocalSends::Others),
    );
    let (tx, rx) = match (tx, rx) {
        (Ok(tx), Ok(rx)) => {
            let info = tx.binding().map(|i| format!("mtu {}, mac {}", i.mtu, i.mac)).unwrap_or_default();
            r.step(&format!("{}: open", label(b)), Ok(format!("two handles, {info}")))?;
            (tx, rx)
        }
        (Err(e), _) | (_, Err(e)) => return r.step(&format!("{}: open", label(b)), Err(e)),
    };
    let oids = (|| -> Result<String, String> {
        let mac = tx.query_oid(OID_802_3_CURRENT_ADDRESS).map_err(err)?;
        if mac != b.mac.0 {
            return Err(format!("OID_802_3_CURRENT_ADDRESS is {mac:02x?}, the list says {}", b.mac));
        }
        let speed = tx.query_oid(OID_GEN_LINK_SPEED).map_err(err)?;
        let speed = speed.get(..4).map(|s| u64::from(u32::from_le_bytes(s.try_into().expect("4 bytes"))) * 100);
        let filter = tx.query_oid(OID_GEN_CURRENT_PACKET_FILTER).map_err(err)?;
        let filter = filter.get(..4).map_or(0, |s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
        let filter = PacketFilter::from_bits_retain(filter);
        if !filter.contains(filter::BROADCAST) {
            return Err(format!("the packet filter is {filter:#x}: the receiving handle asked for broadcast"));
        }
        Ok(format!(
            "current address {}, link speed {}, packet filter {filter:#x}",
            b.mac,
            speed.map_or("unknown".into(), format_speed)
        ))
    })();
    r.step(&format!("{}: OID queries", label(b)), oids)?;
    let nonce = now_ns();
    let frames: Vec<Vec<u8>> = (0..a.count).map(|i| test_frame(b.mac.0, nonce, i)).collect();
    let batch: Vec<SendFrame<'_>> = frames.iter().map(|f| SendFrame { data: f, tci: None }).collect();
    let sent = tx.send_batch(&batch).map_err(err);
    let got = sent.and_then(|s| {
        if s.frames != u64::from(a.count) {
            return Err(format!("the driver accepted {} of {} frames", s.frames, a.count));
        }
        receive(&rx, &frames, a.timeout)
    });
    r.step(&format!("{}: send {} frames, receive them on a second handle", label(b), a.count), got)?;
    let counters = (|| -> Result<String, String> {
        let deadline = Instant::now().checked_add(a.timeout).unwrap_or_else(Instant::now);
        // Sends are counted when NDIS completes them.
        loop {
            let (t, x) = (tx.stats().map_err(err)?, rx.stats().map_err(err)?);
            let n = u64::from(a.count);
            if t.handle.tx_frames == n && t.handle.tx_errors == 0 && x.handle.rx_frames == n {
                if t.binding.tx_frames < n {
                    return Err(format!(
                        "the binding counts {} frames sent, fewer than this test's {n}",
                        t.binding.tx_frames
                    ));
                }
                return Ok(format!(
                    "sender: {n} sent, 0 errors; receiver: {n} received, {} dropped; binding: {} sent in all",
                    x.handle.rx_queue_drops, t.binding.tx_frames
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "sender counts {} sent and {} errors, receiver {} received, after {}; expected {n}",
                    t.handle.tx_frames,
                    t.handle.tx_errors,
                    x.handle.rx_frames,
                    format_duration(a.timeout)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    r.step(&format!("{}: counters agree", label(b)), counters)
}

/// Reads until every frame of `want` arrived, each once, byte for byte and
/// marked outbound.
fn receive(rx: &Device, want: &[Vec<u8>], timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now().checked_add(timeout).unwrap_or_else(Instant::now);
    let mut got = 0usize;
    while got < want.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{got} of {} frames arrived within {}", want.len(), format_duration(timeout)));
        }
        let records = rx.read_records(1 << 20, Some(left)).map_err(err)?;
        for f in records.iter() {
            // Frames of other senders with this EtherType are not ours.
            if f.data.get(14..22) != want[0].get(14..22) {
                continue;
            }
            if got >= want.len() || f.data != want[got].as_slice() {
                return Err(format!("frame {got} arrived changed, out of order or twice"));
            }
            if f.direction() != Direction::Outbound {
                return Err(format!("frame {got} is not marked outbound"));
            }
            got += 1;
        }
    }
    Ok(format!("{got} frames back, in order, byte for byte, marked outbound"))
}
