//! `--ring` and its shape, shared by `recv` and `send`: a UMEM of memory
//! shared with the driver instead of reads or `SEND_BATCH`.

use super::Mistake;
use super::values;
use clap::Args;
use rawnic_client::ring::RingConfig;

/// `--ring`, as clap reads it.
#[derive(Debug, Args)]
pub struct RingLine {
    /// Use zero-copy rings: a UMEM of memory shared with the driver (RING_ATTACH)
    #[arg(long)]
    ring: bool,
    /// With --ring: frames in the UMEM [default: 1024]
    #[arg(long, value_name = "N", requires = "ring", value_parser = values::ring_frames)]
    ring_frames: Option<u32>,
    /// With --ring: entries of each ring, a power of two from 8 to 32768 [default: 512]
    #[arg(long, value_name = "N", requires = "ring", value_parser = values::ring_entries)]
    ring_size: Option<u32>,
    /// With --ring: bytes per frame, 2048 or 4096 [default: 2048]
    #[arg(long, value_name = "BYTES", requires = "ring", value_parser = values::frame_size)]
    frame_size: Option<u32>,
}

impl RingLine {
    /// The UMEM's shape, when `--ring` was given.
    pub(super) fn check(self) -> Result<Option<RingConfig>, Mistake> {
        if !self.ring {
            return Ok(None);
        }
        let d = RingConfig::default();
        let size = self.ring_size.unwrap_or(d.fill);
        let c = RingConfig {
            frame_size: self.frame_size.unwrap_or(d.frame_size),
            frame_count: self.ring_frames.unwrap_or(d.frame_count),
            fill: size,
            rx: size,
            tx: size,
            completion: size,
        };
        c.layout().map_err(|e| Mistake::invalid(e.to_string()))?;
        Ok(Some(c))
    }
}
