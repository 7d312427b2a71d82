//! The arguments of the commands that clap checks whole: `wait`, `watch`,
//! `selftest` and `arping`. What clap reads is what they run with.

use super::values;
use clap::Args;
use rawnic_client::{MacAddr, Tci};
use std::net::Ipv4Addr;
use std::time::Duration;

/// `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct WaitArgs {
    /// Give up after SECS seconds (1.5, 500ms, 2m) [default: wait as long as it takes]
    #[arg(short, long, value_name = "SECS", allow_negative_numbers = true, value_parser = values::duration)]
    pub timeout: Option<Duration>,
}

/// `watch`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct WatchArgs {
    /// Stop after N events
    #[arg(short, long, value_name = "N", allow_negative_numbers = true, value_parser = values::count("events"))]
    pub count: Option<u64>,
    /// Stop after SECS seconds (1.5, 500ms, 2m)
    #[arg(short, long, value_name = "SECS", allow_negative_numbers = true, value_parser = values::duration)]
    pub timeout: Option<Duration>,
}

/// `selftest`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SelftestArgs {
    /// Frames to send and receive per adapter
    #[arg(short, long, value_name = "N", default_value = "32", allow_negative_numbers = true,
          value_parser = values::batch)]
    pub count: u32,
    /// How long to wait for them, in seconds (1.5, 500ms, 2m)
    #[arg(short, long, value_name = "SECS", default_value = "10", allow_negative_numbers = true,
          value_parser = values::duration)]
    pub timeout: Duration,
}

/// `arping`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ArpingArgs {
    /// The IPv4 address to ask for
    #[arg(value_name = "TARGET", value_parser = values::ipv4)]
    pub target: Ipv4Addr,
    /// The IPv4 address to ask from
    #[arg(long, value_name = "IP", value_parser = values::ipv4)]
    pub source: Ipv4Addr,
    /// Send N requests
    #[arg(short, long, value_name = "N", default_value = "3", allow_negative_numbers = true,
          value_parser = values::count("requests"))]
    pub count: u64,
    /// Wait SECS seconds for each reply (1.5, 500ms, 2m)
    #[arg(short, long, value_name = "SECS", default_value = "1", allow_negative_numbers = true,
          value_parser = values::positive_duration)]
    pub timeout: Duration,
    /// Time between requests, in seconds
    #[arg(short, long, value_name = "SECS", default_value = "1", allow_negative_numbers = true,
          value_parser = values::duration)]
    pub interval: Duration,
    /// Send with an 802.1Q tag (VLAN 1-4094, priority 0-7)
    #[arg(long, value_name = "ID[:PRIO]", value_parser = values::vlan)]
    pub vlan: Option<Tci>,
    /// The MAC to ask from [default: the adapter's]
    #[arg(long, value_name = "MAC", value_parser = values::mac)]
    pub src_mac: Option<MacAddr>,
}
