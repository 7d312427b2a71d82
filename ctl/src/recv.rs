//! `recv`: prints the frames the adapter receives, or writes them to a
//! pcapng file.

use crate::cli::RecvArgs;
use crate::common::{Ctx, Fail, Progress, Res, plural, utc};
use crate::json;
use rawnic_client::ether::{ethertype_and_payload, hexdump, summarize};
use rawnic_client::oid::{filter_names, hex};
use rawnic_client::pcapng::{EPB_INBOUND, EPB_OUTBOUND, Interface, PcapngWriter};
use rawnic_client::{Direction, FrameRef, MacAddr, NtStatus, OpenOptions};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

/// Where received frames go.
pub(crate) enum Sink {
    Print,
    Pcapng { w: PcapngWriter<BufWriter<Box<dyn Write>>>, name: String },
}

impl Sink {
    /// Prints or saves one frame.
    pub(crate) fn frame(&mut self, ctx: &Ctx, a: &RecvArgs, f: &FrameRef<'_>) -> Res {
        match self {
            Sink::Print if ctx.global.json => ctx.json(&frame_json(f)),
            Sink::Print => ctx.out(frame_text(f, a.hex)),
            Sink::Pcapng { w, name } => {
                let (wire, origlen) = f.wire_bytes();
                let dir = match f.direction() {
                    Direction::Inbound => EPB_INBOUND,
                    Direction::Outbound => EPB_OUTBOUND,
                };
                let comment = f.coalesced().map(|c| c.to_string());
                w.write_packet_opts(f.timestamp_ns(), origlen, &wire, Some(dir), comment.as_deref())
                    .map_err(|e| Fail::Error(format!("cannot write {name}: {e}")))
            }
        }
    }

    /// Whole blocks reach the file after every batch, so that it stays
    /// readable if rawnicctl is stopped.
    pub(crate) fn flush(&mut self) -> Res {
        if let Sink::Pcapng { w, name } = self {
            w.flush().map_err(|e| Fail::Error(format!("cannot write {name}: {e}")))?;
        }
        Ok(())
    }
}

fn frame_json(f: &FrameRef<'_>) -> json::Frame {
    let (wire, _) = f.wire_bytes();
    let (ty, _, _) = ethertype_and_payload(f.data).unwrap_or((0, &[], None));
    let mac = |r: std::ops::Range<usize>| f.data.get(r).map(|m| MacAddr(m.try_into().expect("6 bytes")).to_string());
    let tci = f.tci();
    json::Frame {
        ts_ns: f.timestamp_ns(),
        time: utc(f.timestamp_ns()),
        caplen: f.data.len(),
        origlen: f.origlen(),
        direction: f.direction().name(),
        loopback: f.is_loopback(),
        truncated: f.is_truncated(),
        vlan: tci.map(|t| t.vlan_id()),
        priority: tci.map(|t| t.priority()),
        coalesced: f.coalesced().is_some(),
        segments: f.coalesced().and_then(|c| c.segments),
        segment_size: f.coalesced().and_then(|c| c.segment_size),
        dst: mac(0..6),
        src: mac(6..12),
        ethertype: ty,
        summary: summarize(&wire),
        data: hex(f.data),
    }
}

fn frame_text(f: &FrameRef<'_>, with_hex: bool) -> String {
    let (wire, _) = f.wire_bytes();
    let cut =
        if f.is_truncated() { format!(" [captured {} of {} bytes]", f.data.len(), f.origlen()) } else { String::new() };
    let dir = match (f.direction(), f.is_loopback()) {
        (Direction::Inbound, _) => "in ",
        (Direction::Outbound, false) => "out",
        (Direction::Outbound, true) => "out (looped back)",
    };
    let coalesced = f.coalesced().map_or(String::new(), |c| format!(" [{c}]"));
    let mut s =
        format!("{}  {dir}  {} bytes  {}{cut}{coalesced}", utc(f.timestamp_ns()), f.origlen(), summarize(&wire));
    if with_hex {
        s.push('\n');
        s.push_str(hexdump(f.data).trim_end());
    }
    s
}

/// The capture program in file `path` (`-`: stdin), as `tcpdump -dd` or
/// `-ddd` prints it.
fn read_program(path: &str) -> Result<Vec<rawnic_client::BpfInsn>, Fail> {
    let text = if path == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
        .map_err(|e| Fail::Error(format!("cannot read the capture program {path}: {e}")))?;
    rawnic_client::parse_program(&text).map_err(|e| Fail::Error(format!("{path}: {e}")))
}

/// Filter expression `expr` compiled into a capture program; the error
/// names the word at fault.
fn compile_expr(expr: &str) -> Result<Vec<rawnic_client::BpfInsn>, Fail> {
    rawnic_client::compile_filter(expr).map_err(|e| Fail::Error(format!("the filter expression: {e}")))
}

/// `compile`: prints the program for `expr` as `tcpdump -ddd` does.
pub fn compile(ctx: &Ctx, expr: &str) -> Res {
    let insns = compile_expr(expr)?;
    if ctx.global.json {
        let instructions = insns.iter().map(|i| [u32::from(i.code), u32::from(i.jt), u32::from(i.jf), i.k]).collect();
        return ctx.json(&json::Program { expression: expr, instructions });
    }
    ctx.out(rawnic_client::format_ddd(&insns).trim_end())
}

pub fn recv(ctx: &Ctx, a: &RecvArgs) -> Res {
    // Before the device: a filter that does not compile opens nothing.
    let compiled = a.expr.as_deref().map(compile_expr).transpose()?;
    let dev = ctx.device()?;
    let b = ctx.adapter(&dev)?;
    let opts = OpenOptions::new(&b.name)
        .ethertypes(&a.ethertypes)
        .packet_filter(a.filter)
        .snaplen(a.snaplen)
        .queue_frames(a.queue_frames)
        .queue_bytes(a.queue_bytes)
        .local_sends(a.local_sends)
        .strict_filter(a.strict_filter);
    // Before the open: no frame reaches the handle unfiltered.
    if let Some(path) = &a.program {
        dev.set_program(&read_program(path)?)?;
    }
    if let Some(insns) = &compiled {
        dev.set_program(insns)?;
    }
    let opened = dev.open_binding(&opts).map_err(|e| match e.status() {
        Some(NtStatus::NOT_SUPPORTED) => Fail::Error(format!(
            "{}: the adapter does not give packet filter {} (--strict-filter); without it you get what the adapter allows",
            b.name,
            filter_names(a.filter)
        )),
        _ => e.into(),
    })?;
    if let Some(why) = opened.refusal() {
        // On stderr, so it mixes with neither printed frames nor pcapng.
        eprintln!("rawnicctl: {}: {why}", b.name);
    }
    let mut sink = match &a.pcapng {
        None => Sink::Print,
        Some(path) => {
            let (out, name): (Box<dyn Write>, String) = if path == "-" {
                (Box::new(std::io::stdout()), "stdout".into())
            } else {
                let f = File::create(path).map_err(|e| Fail::Error(format!("cannot create {path}: {e}")))?;
                (Box::new(f), path.clone())
            };
            // A frame cut to the snap length grows by the 802.1Q tag put
            // back into it; readers refuse packets longer than the
            // interface's snap length.
            let snaplen = if a.snaplen == 0 { 0 } else { a.snaplen.saturating_add(4) };
            let iface = Interface { name: Some(&b.name), description: Some(&b.description), snaplen };
            let w = PcapngWriter::new(BufWriter::new(out), &iface)
                .and_then(|mut w| w.flush().map(|_| w))
                .map_err(|e| Fail::Error(format!("cannot write {name}: {e}")))?;
            Sink::Pcapng { w, name }
        }
    };
    let mut progress = Progress::new(ctx, "received", a.count);
    // A timeout too long for an Instant is no limit.
    let deadline = a.timeout.and_then(|t| Instant::now().checked_add(t));
    let (mut got, mut bytes) = (0u64, 0u64);
    if let Some(config) = &a.ring {
        (got, bytes) = crate::ring::recv(ctx, a, &dev, config, &mut sink, &mut progress, deadline)?;
    }
    'reading: while a.ring.is_none() && a.count.is_none_or(|c| got < c) {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            break;
        }
        let records = dev.read_records(a.buffer, left)?;
        for f in records.iter() {
            if a.count.is_some_and(|c| got >= c) {
                break 'reading;
            }
            got += 1;
            bytes += u64::from(f.origlen());
            sink.frame(ctx, a, &f)?;
        }
        sink.flush()?;
        progress.update(got, bytes);
    }
    progress.finish();
    if let Sink::Pcapng { w, name } = sink {
        let n = w.packets();
        w.into_inner().map_err(|e| Fail::Error(format!("cannot write {name}: {e}")))?;
        if ctx.global.json && name != "stdout" {
            ctx.json(&json::Capture { frames: n, bytes, file: &name })?;
        } else {
            eprintln!("rawnicctl: wrote {} ({bytes} bytes) to {name}", plural(n, "frame", "frames"));
        }
    }
    match a.count {
        Some(c) if got < c => Err(Fail::Error(format!(
            "recv timed out after {} with {got} of {c} frames",
            rawnic_client::format_duration(a.timeout.unwrap_or_default())
        ))),
        _ => Ok(()),
    }
}
