//! `send`'s arguments: what clap reads, and the frame they describe once
//! checked.

use super::Mistake;
use super::ring::RingLine;
use super::values::{self, Hex};
use clap::Args;
use rawnic_client::ether::{self, MacAddr, Tci};
use rawnic_client::rawnic_proto;
use rawnic_client::ring::RingConfig;
use std::path::PathBuf;

/// `send`, as clap reads it.
#[derive(Debug, Args)]
pub struct SendLine {
    /// The frame, or with --dst, --src or --ethertype its payload, in hex
    #[arg(value_name = "HEX", value_parser = values::hex, conflicts_with = "file")]
    hex: Vec<Hex>,
    /// Read the frame (or payload) from PATH, raw bytes
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Build the header: destination [default: ff:ff:ff:ff:ff:ff]
    #[arg(long, value_name = "MAC", value_parser = values::mac)]
    dst: Option<MacAddr>,
    /// Build the header: source [default: the adapter's MAC]
    #[arg(long, value_name = "MAC", value_parser = values::mac)]
    src: Option<MacAddr>,
    /// Build the header: EtherType, a number or arp, ipv4, ipv6, vlan [default: 0x88b5]
    #[arg(long, value_name = "TYPE", value_parser = values::ethertype)]
    ethertype: Option<u16>,
    /// Send with an 802.1Q tag (VLAN 1-4094, priority 0-7), put in by the NIC or the driver
    #[arg(long, value_name = "ID[:PRIO]", value_parser = values::vlan, conflicts_with = "ring")]
    vlan: Option<Tci>,
    /// Send the frame N times
    #[arg(short, long, value_name = "N", default_value = "1", allow_negative_numbers = true,
          value_parser = values::count("frames"))]
    count: u64,
    /// Send at most PPS frames per second [default: as fast as the driver takes them]
    #[arg(long, value_name = "PPS", allow_negative_numbers = true, value_parser = values::rate)]
    rate: Option<f64>,
    /// Frames per SEND_BATCH request [default: the driver's maximum]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = values::batch,
          conflicts_with = "ring")]
    batch: Option<u32>,
    /// Send with WriteFile, one plain frame per call, instead of SEND_BATCH (so without --vlan
    /// or --batch)
    #[arg(long, conflicts_with_all = ["vlan", "batch", "ring"])]
    write: bool,
    #[command(flatten)]
    ring: RingLine,
}

/// What the frame of `send` is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Hex(Vec<u8>),
    File(PathBuf),
    None,
}

/// The Ethernet header rawnicctl builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub dst: MacAddr,
    /// `None`: the adapter's MAC.
    pub src: Option<MacAddr>,
    pub ethertype: u16,
}

/// `send`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SendArgs {
    pub data: Data,
    /// Build the header: `Some` when --dst, --src or --ethertype was given.
    pub header: Option<Header>,
    pub vlan: Option<Tci>,
    pub count: u64,
    pub rate: Option<f64>,
    pub batch: Option<u32>,
    pub write: bool,
    /// `--ring`: send zero-copy from a UMEM of this shape instead of
    /// SEND_BATCH.
    pub ring: Option<RingConfig>,
}

impl SendLine {
    pub(super) fn check(self) -> Result<SendArgs, Mistake> {
        let data = match self.file {
            Some(f) => Data::File(f),
            None if self.hex.is_empty() => Data::None,
            None => Data::Hex(self.hex.into_iter().flat_map(|h| h.0).collect()),
        };
        let header = (self.dst.is_some() || self.src.is_some() || self.ethertype.is_some()).then(|| Header {
            dst: self.dst.unwrap_or(MacAddr::BROADCAST),
            src: self.src,
            ethertype: self.ethertype.unwrap_or(ether::ETHERTYPE_EXPERIMENTAL),
        });
        match (&data, header) {
            (Data::None, None) => {
                return Err(Mistake::missing(
                    "nothing to send: give the frame in hex or with --file, or build one with --dst, --src or --ethertype",
                ));
            }
            (Data::Hex(h), None) if h.len() < rawnic_proto::ETH_HEADER => {
                return Err(Mistake::invalid(format!(
                    "the frame is {} bytes; an Ethernet frame has at least {} (or build the header with --dst, --src or --ethertype)",
                    h.len(),
                    rawnic_proto::ETH_HEADER
                )));
            }
            _ => {}
        }
        Ok(SendArgs {
            data,
            header,
            vlan: self.vlan,
            count: self.count,
            rate: self.rate,
            batch: self.batch,
            write: self.write,
            ring: self.ring.check()?,
        })
    }
}
