//! The accounts, checked when a schedule ends.
//!
//! Sends: whatever happened, every frame rawnic counts as sent on a binding
//! is one NDIS gave back with NDIS_STATUS_SUCCESS, and each that NDIS
//! failed is among the errors rawnic counts (which also hold frames it
//! never gave NDIS, such as a zero-copy chain a pause stopped).
//!
//! Receives: no frame a handle took is lost. Every frame rawnic counts as
//! delivered to an open handle's queue was read back through it or is
//! still queued, whatever reads were cancelled, cut short, raced by pauses
//! or served from retained NBLs on the way.

use super::{Ctx, close, lock};
use ndisim::Handle;
use rawnic_proto::*;
use std::time::Duration;

/// Checks every bound adapter's binding through a handle opened for it;
/// returns how many were checked (a handle that cannot be opened, as under
/// low resources, skips its binding).
pub(super) fn check(c: &Ctx<'_>) -> u64 {
    let mut checked = 0;
    for (i, &a) in c.adapters.iter().enumerate() {
        // What NDIS still has (late completions) comes back first.
        let mut waited = Duration::ZERO;
        let idle = loop {
            match c.sim.binding_sends(a) {
                None => break false,
                Some((_, _, 0)) => break true,
                Some(_) if waited >= c.watchdog => break false,
                Some(_) => {
                    c.sim.sleep(Duration::from_millis(5));
                    waited += Duration::from_millis(5);
                }
            }
        };
        if !idle {
            continue;
        }
        let Some(stats) = binding_stats(c, i) else { continue };
        let Some((ok, failed, _)) = c.sim.binding_sends(a) else { continue };
        let s = stats.binding;
        if s.tx_frames != ok || s.tx_errors < failed || s.tx_in_flight != 0 {
            c.problem(format!(
                "send accounts of {}: rawnic counts {} sent, {} errors, {} in flight; NDIS gave back {ok} frames sent and {failed} failed, and holds none",
                c.names[i], s.tx_frames, s.tx_errors, s.tx_in_flight
            ));
        }
        checked += 1;
    }
    checked
}

/// Checks the handles left open (`Ctx::survivors`) once nothing moves any
/// more, and closes them; returns how many were checked (a handle that is
/// not open on a binding, as after an unbind, has no accounts to check),
/// and the frames their full queues dropped.
pub(super) fn check_receives(c: &Ctx<'_>) -> (u64, u64) {
    // Frames a pair or a loopback adapter still carries arrive first.
    for &a in &c.adapters {
        c.sim.settle(a);
    }
    let (mut checked, mut drops) = (0, 0);
    for h in std::mem::take(&mut *lock(&c.survivors)) {
        let file = h.file();
        let stats = h.ioctl(IOCTL_RAWNIC_GET_STATS, &super::handles::empty(), StatsReply::LEN);
        if let (Some(file), 0, Ok(s)) = (file, stats.status, StatsReply::parse(&stats.data)) {
            let read = lock(&c.reads_by_file).get(&file).copied().unwrap_or(0);
            if s.handle.rx_frames != read + u64::from(s.queued_frames) {
                c.problem(format!(
                    "receive accounts of handle {h:?}: rawnic counts {} frames delivered to it, but {read} were read back and {} are queued",
                    s.handle.rx_frames, s.queued_frames
                ));
            }
            checked += 1;
            drops += s.handle.rx_queue_drops;
        }
        close(h, false);
    }
    (checked, drops)
}

/// The binding counters of adapter `i`, through a new handle.
fn binding_stats(c: &Ctx<'_>, i: usize) -> Option<StatsReply> {
    let h: Handle = c.sim.open().ok()?;
    let open = OpenRepr {
        name: &c.names[i],
        ethertypes: &[],
        packet_filter: PacketFilter::NONE,
        queue_frames: 0,
        queue_bytes: 0,
        snaplen: 0,
        local_sends: LocalSends::None,
        strict_filter: false,
    };
    let mut input = vec![0u8; open.wire_len()];
    open.emit(&mut input).ok()?;
    let empty = super::handles::empty();
    let stats = (h.ioctl(IOCTL_RAWNIC_OPEN, &input, OpenReply::LEN).status == 0)
        .then(|| h.ioctl(IOCTL_RAWNIC_GET_STATS, &empty, StatsReply::LEN))
        .filter(|r| r.status == 0)
        .and_then(|r| StatsReply::parse(&r.data).ok());
    h.close();
    stats
}
