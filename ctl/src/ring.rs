//! `recv --ring` and `send --ring`: receiving and sending through a UMEM
//! shared with the driver (zero-copy rings) instead of reads and
//! `SEND_BATCH`. The output is the same as without `--ring`.

use crate::cli::{RecvArgs, SendArgs};
use crate::common::{Ctx, Fail, Progress, Res, plural};
use crate::recv::Sink;
use rawnic_client::ring::{Kick, RingConfig, RingCounters, Umem, UmemFrame};
use rawnic_client::{Device, Error, NtStatus, Report};
use std::time::{Duration, Instant};

/// How long a send may see no completion before it fails.
const STALL: Duration = Duration::from_secs(5);

/// Attaches a UMEM of `config`'s shape, saying in a sentence why not.
fn attach<'d>(dev: &'d Device, config: &RingConfig) -> Res<Umem<'d>> {
    Umem::attach(dev, config).map_err(|e| match e.status() {
        Some(NtStatus::NOT_SUPPORTED | NtStatus::INVALID_DEVICE_REQUEST) => {
            Fail::Error(format!("--ring: this driver has no rings ({})", Report(&e)))
        }
        _ => Fail::Error(format!("--ring: {}", Report(&e))),
    })
}

fn ring_error(e: Error) -> Fail {
    Fail::Error(format!("--ring: {}", Report(&e)))
}

/// Detaches, and warns about frames the driver dropped or failed to send.
fn finish(umem: Umem<'_>) -> Res<RingCounters> {
    let d = umem.detach().map_err(ring_error)?;
    if d.missing > 0 {
        return Err(Fail::Error(format!(
            "--ring: the driver kept {} when the rings were detached",
            plural(d.missing as u64, "frame", "frames")
        )));
    }
    let c = d.counters;
    let dropped = c.rx_fill_empty + c.rx_ring_full;
    if dropped > 0 {
        eprintln!(
            "rawnicctl: the rings dropped {} ({} with no free frame on the fill ring, {} with the rx ring full)",
            plural(dropped, "frame", "frames"),
            c.rx_fill_empty,
            c.rx_ring_full
        );
    }
    Ok(c)
}

/// `recv --ring`: every frame goes back to the fill ring once it is
/// printed or saved. Returns the frames and bytes received.
pub fn recv(
    ctx: &Ctx,
    a: &RecvArgs,
    dev: &Device,
    config: &RingConfig,
    sink: &mut Sink,
    progress: &mut Progress,
    deadline: Option<Instant>,
) -> Res<(u64, u64)> {
    let umem = attach(dev, config)?;
    let (got, bytes) = {
        let (mut rx, _tx) = umem.split().map_err(ring_error)?;
        let mut free = umem.alloc_many(config.frame_count as usize);
        rx.fill(&mut free).map_err(ring_error)?;
        let (mut got, mut bytes) = (0u64, 0u64);
        let mut batch = Vec::new();
        while a.count.is_none_or(|c| got < c) {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) || !rx.wait(left).map_err(ring_error)? {
                break;
            }
            rx.recv(&mut batch, config.rx as usize).map_err(ring_error)?;
            for f in batch.drain(..) {
                if a.count.is_none_or(|c| got < c) {
                    got += 1;
                    bytes += u64::from(f.desc().origlen);
                    sink.frame(ctx, a, &f.as_frame_ref())?;
                }
                free.push(f.into_frame());
            }
            sink.flush()?;
            rx.fill(&mut free).map_err(ring_error)?;
            progress.update(got, bytes);
        }
        for f in free {
            umem.free(f);
        }
        (got, bytes)
    };
    finish(umem)?;
    Ok((got, bytes))
}

/// `send --ring`: `frame` written into UMEM frames, posted on the tx ring
/// and sent by a kick, paced to `--rate`; each frame is reused once the
/// completion ring gives it back. Returns the frames and bytes sent.
pub fn send(
    a: &SendArgs,
    dev: &Device,
    config: &RingConfig,
    frame: &[u8],
    progress: &mut Progress,
    start: Instant,
) -> Res<(u64, u64)> {
    let umem = attach(dev, config)?;
    let sent = {
        let (_rx, mut tx) = umem.split().map_err(ring_error)?;
        if frame.len() > config.frame_size as usize {
            return Err(Fail::Error(format!(
                "the frame is {} bytes; a UMEM frame holds {} (--frame-size)",
                frame.len(),
                config.frame_size
            )));
        }
        let mut free = umem.alloc_many(config.frame_count as usize);
        let mut batch: Vec<UmemFrame<'_>> = Vec::new();
        let (mut sent, mut unsent) = (0u64, 0u64);
        let mut stalled: Option<Instant> = None;
        while sent < a.count {
            // Frames due by now (all of them without --rate).
            let target = match a.rate {
                None => a.count,
                Some(rate) => crate::common::frames_due(start.elapsed().as_secs_f64(), rate).min(a.count),
            };
            let queued = sent + unsent;
            if let Some(rate) = a.rate.filter(|_| target <= queued && unsent == 0 && tx.in_flight() == 0) {
                let at = Duration::try_from_secs_f64(queued as f64 / rate).ok().and_then(|d| start.checked_add(d));
                // Due beyond what an Instant holds (a tiny rate): never.
                std::thread::sleep(at.map_or(Duration::MAX, |at| at.saturating_duration_since(Instant::now())));
                continue;
            }
            let n = (target.saturating_sub(queued).min(free.len() as u64) as usize).min(config.tx as usize);
            for mut f in free.drain(free.len() - n..) {
                f.write(frame);
                batch.push(f);
            }
            let posted = tx.send(&mut batch).map_err(ring_error)?;
            // What the ring did not take waits for the next round.
            free.append(&mut batch);
            unsent += posted as u64;
            if unsent > 0 {
                let k = match tx.kick() {
                    Ok(k) => k,
                    // The driver could make no NBL for them (low memory):
                    // they stay on the tx ring for the next round, which
                    // the stall timeout below bounds.
                    Err(Error::Status { status: NtStatus::INSUFFICIENT_RESOURCES, .. }) => Kick::default(),
                    Err(e) => return Err(ring_error(e)),
                };
                if k.invalid > 0 {
                    return Err(Fail::Error(format!(
                        "--ring: the driver refused {} of the tx ring",
                        plural(u64::from(k.invalid), "frame", "frames")
                    )));
                }
                sent += u64::from(k.sent);
                unsent = unsent.saturating_sub(u64::from(k.sent));
            }
            let before = free.len();
            tx.complete(&mut free, usize::MAX).map_err(ring_error)?;
            if posted == 0 && free.len() == before {
                // Nothing moved: every frame is with the driver, or the
                // ring is full. Wait for a completion, not forever.
                let since = *stalled.get_or_insert_with(Instant::now);
                if since.elapsed() >= STALL {
                    return Err(Fail::Error(format!(
                        "--ring: no send completed within {} (after {} had been sent)",
                        rawnic_client::format_duration(STALL),
                        plural(sent, "frame", "frames")
                    )));
                }
                tx.wait(Some(Duration::from_millis(100))).map_err(ring_error)?;
            } else {
                stalled = None;
            }
            progress.update(sent, sent * frame.len() as u64);
        }
        // Every frame back before the UMEM goes.
        let until = Instant::now() + STALL;
        while tx.in_flight() > 0 && Instant::now() < until {
            tx.wait(Some(Duration::from_millis(100))).map_err(ring_error)?;
            tx.complete(&mut free, usize::MAX).map_err(ring_error)?;
        }
        for f in free {
            umem.free(f);
        }
        sent
    };
    let c = finish(umem)?;
    if c.tx_errors > 0 {
        return Err(Fail::Error(format!(
            "--ring: the adapter failed to send {} of {sent}",
            plural(c.tx_errors, "frame", "frames")
        )));
    }
    Ok((sent, sent * frame.len() as u64))
}
