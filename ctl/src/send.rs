//! `send`: a frame, COUNT times, in batches or one WriteFile each, paced to
//! a rate if asked.

use crate::cli::{Data, SendArgs};
use crate::common::{Ctx, Fail, Progress, Res, plural};
use crate::json;
use rawnic_client::ether::build_frame;
use rawnic_client::{Error, OpenOptions, Report, SendFrame, SendOptions, rawnic_proto};
use std::time::{Duration, Instant};

/// Frames handed to one `send_batch_with` call when no rate limits them
/// (it splits them into the driver's batches).
const CHUNK: u64 = 65_536;

/// The error for a failure after `before` frames went out in earlier
/// calls.
fn failed_after(before: u64, e: Error) -> Fail {
    match e {
        Error::Send { sent, source } => {
            Fail::Error(format!("{} (after {} frames had been sent)", Report(&*source), before + sent))
        }
        e if before > 0 => Fail::Error(format!("{} (after {before} frames had been sent)", Report(&e))),
        e => e.into(),
    }
}

pub fn send(ctx: &Ctx, a: &SendArgs) -> Res {
    let data = match &a.data {
        Data::Hex(h) => h.clone(),
        Data::File(p) => std::fs::read(p).map_err(|e| Fail::Error(format!("cannot read {}: {e}", p.display())))?,
        Data::None => Vec::new(),
    };
    let dev = ctx.device()?;
    let b = ctx.adapter(&dev)?;
    let info = dev.open_binding(&OpenOptions::new(&b.name).send_only())?;
    let frame = match a.header {
        Some(h) => build_frame(h.dst, h.src.unwrap_or(info.mac), h.ethertype, &data),
        None => data,
    };
    if frame.len() < rawnic_proto::ETH_HEADER {
        return Err(ctx.usage(format!(
            "the frame is {} bytes; an Ethernet frame has at least {} (or build the header with --dst, --src or --ethertype)",
            frame.len(),
            rawnic_proto::ETH_HEADER
        )));
    }
    let max = info.max_send_len(&frame, a.vlan.map(|t| t.0));
    if frame.len() > max {
        let tag = if max > info.max_frame() {
            ", the 14-byte header and the 4-byte 802.1Q tag"
        } else {
            " and the 14-byte header"
        };
        return Err(Fail::Error(format!(
            "the frame is {} bytes; {} takes at most {max} (an MTU of {}{tag})",
            frame.len(),
            b.name,
            info.mtu
        )));
    }
    let per_call = match a.batch {
        Some(n) => u64::from(n),
        None => u64::from(dev.version()?.max_batch.clamp(1, rawnic_proto::MAX_BATCH)),
    };
    let opts = SendOptions { max_batch_frames: a.batch, ..SendOptions::default() };
    let tci = a.vlan.map(|t| t.0);
    let mut progress = Progress::new(ctx, "sent", Some(a.count));
    let start = Instant::now();
    let (mut sent, mut bytes) = (0u64, 0u64);
    if let Some(config) = &a.ring {
        (sent, bytes) = crate::ring::send(a, &dev, config, &frame, &mut progress, start)?;
    }
    while sent < a.count {
        let left = a.count - sent;
        let n = match a.rate {
            None if a.write => 1,
            None => left.min(CHUNK),
            Some(rate) => {
                // Frame i is due at start + i / rate.
                let due = crate::common::frames_due(start.elapsed().as_secs_f64(), rate);
                if due <= sent {
                    let at = Duration::try_from_secs_f64(sent as f64 / rate).ok().and_then(|d| start.checked_add(d));
                    // Due beyond what an Instant holds (a tiny rate): never.
                    std::thread::sleep(at.map_or(Duration::MAX, |at| at.saturating_duration_since(Instant::now())));
                    continue;
                }
                (due - sent).min(left).min(if a.write { 1 } else { per_call })
            }
        };
        if a.write {
            dev.write_frame(&frame).map_err(|e| failed_after(sent, e))?;
            sent += 1;
            bytes += frame.len() as u64;
        } else {
            let frames = vec![SendFrame { data: &frame, tci }; n as usize];
            let s = dev.send_batch_with(&frames, &opts).map_err(|e| failed_after(sent, e))?;
            sent += s.frames;
            bytes += s.bytes;
        }
        progress.update(sent, bytes);
    }
    progress.finish();
    let secs = start.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
    if ctx.global.json {
        return ctx.json(&json::Sent {
            adapter: &b.name,
            frames: sent,
            bytes,
            seconds: json::rounded(secs, 6),
            rate: json::rounded(rate, 1),
        });
    }
    ctx.out(format!(
        "sent {} ({bytes} bytes) on {} in {secs:.3} s ({rate:.0} frames/s)",
        plural(sent, "frame", "frames"),
        b.name
    ))
}
