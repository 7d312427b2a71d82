//! `recv`'s arguments: what clap reads, and the handle and output they
//! describe once checked.

use super::Mistake;
use super::ring::RingLine;
use super::values;
use clap::{Args, ValueEnum};
use rawnic_client::ring::RingConfig;
use rawnic_client::{PacketFilter, rawnic_proto};
use std::time::Duration;

/// `recv`, as clap reads it.
#[derive(Debug, Args)]
pub struct RecvLine {
    /// Stop after N frames
    #[arg(short, long, value_name = "N", allow_negative_numbers = true, value_parser = values::count("frames"))]
    count: Option<u64>,
    /// Stop after SECS seconds (1.5, 500ms, 2m)
    #[arg(short, long, value_name = "SECS", allow_negative_numbers = true, value_parser = values::duration)]
    timeout: Option<Duration>,
    /// Receive only these EtherTypes (numbers, or arp, ipv4, ipv6, vlan; repeatable; a tagged frame matches vlan and the EtherType inside its tag, whether the NIC stripped the tag or not) [default: all]
    #[arg(long, value_name = "TYPE[,TYPE...]", value_delimiter = ',', value_parser = values::ethertype)]
    ethertype: Vec<u16>,
    /// Receive every frame on the wire, not only those for this adapter
    #[arg(long)]
    promiscuous: bool,
    /// Packet filter: directed, multicast, all-multicast, broadcast, promiscuous (comma-separated)
    /// or a number [default: directed,multicast,broadcast]
    #[arg(long, value_name = "BITS", value_parser = values::filter)]
    filter: Option<PacketFilter>,
    /// Fail if the adapter refuses part of the packet filter [default: receive what it allows,
    /// and say so]
    #[arg(long)]
    strict_filter: bool,
    /// Keep at most BYTES of each frame [default: all of it]
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, value_parser = values::snaplen)]
    snaplen: Option<u32>,
    /// Run a capture program (classic BPF) on each frame: what `tcpdump -r FILE -dd EXPR` or
    /// `-ddd` prints for a filter, in PROGRAM ('-' for stdin). The driver runs it; frames it
    /// returns 0 for are not received, others are cut to what it returns
    #[arg(long, value_name = "PROGRAM")]
    program: Option<String>,
    /// Receive only the frames a filter expression matches: what tcpdump takes ('udp port 53',
    /// 'vlan and tcp[tcpflags] & tcp-syn != 0'), compiled here into a capture program for the
    /// driver (`rawnicctl compile EXPR` prints it). No names are looked up; protochain, mpls, llc,
    /// gateway and the protocols of other networks are refused
    #[arg(long, value_name = "EXPR", conflicts_with = "program")]
    expr: Option<String>,
    /// Which frames sent from this host to receive
    #[arg(long, value_name = "WHICH", value_enum, default_value_t = LocalSends::Others)]
    local_sends: LocalSends,
    /// Receive queue bound in frames [default: the driver's]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = values::queue_frames)]
    queue_frames: Option<u32>,
    /// Receive queue bound in bytes [default: the driver's]
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, value_parser = values::queue_bytes)]
    queue_bytes: Option<u32>,
    /// Write the frames to FILE in pcapng format ('-' for stdout)
    #[arg(short = 'w', long, value_name = "FILE")]
    pcapng: Option<String>,
    /// Print each frame's bytes
    #[arg(long)]
    hex: bool,
    /// Bytes per read [default: 262144]
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, value_parser = values::buffer,
          conflicts_with = "ring")]
    buffer: Option<usize>,
    #[command(flatten)]
    ring: RingLine,
}

/// `--local-sends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LocalSends {
    /// Other handles' sends and other protocols'
    Others,
    /// Also this handle's own
    All,
    /// None: only frames from the wire
    None,
}

impl From<LocalSends> for rawnic_proto::LocalSends {
    fn from(l: LocalSends) -> Self {
        match l {
            LocalSends::Others => rawnic_proto::LocalSends::Others,
            LocalSends::All => rawnic_proto::LocalSends::All,
            LocalSends::None => rawnic_proto::LocalSends::None,
        }
    }
}

/// `recv`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RecvArgs {
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
    pub ethertypes: Vec<u16>,
    pub filter: PacketFilter,
    /// 0: whole frames.
    pub snaplen: u32,
    /// `--program`: the file (or `-`) that holds a capture program.
    pub program: Option<String>,
    /// `--expr`: a filter expression to compile into a capture program.
    pub expr: Option<String>,
    /// 0: the driver's.
    pub queue_frames: u32,
    /// 0: the driver's.
    pub queue_bytes: u32,
    pub local_sends: rawnic_proto::LocalSends,
    pub strict_filter: bool,
    pub pcapng: Option<String>,
    pub hex: bool,
    pub buffer: usize,
    /// `--ring`: receive through a UMEM of this shape instead of reads.
    pub ring: Option<RingConfig>,
}

impl RecvLine {
    pub(super) fn check(self) -> Result<RecvArgs, Mistake> {
        if self.ethertype.len() > rawnic_proto::MAX_ETHERTYPES {
            return Err(Mistake::invalid(format!("at most {} EtherTypes can be given", rawnic_proto::MAX_ETHERTYPES)));
        }
        let mut filter = self.filter.unwrap_or(rawnic_proto::filter::DEFAULT);
        if self.promiscuous {
            filter |= rawnic_proto::filter::PROMISCUOUS;
        }
        if filter.is_empty() {
            return Err(Mistake::invalid("a packet filter of 0 receives nothing"));
        }
        if self.hex && self.pcapng.as_deref() == Some("-") {
            return Err(Mistake::invalid("--hex prints frames, which would mix with the pcapng data on stdout"));
        }
        Ok(RecvArgs {
            count: self.count,
            timeout: self.timeout,
            ethertypes: self.ethertype,
            filter,
            snaplen: self.snaplen.unwrap_or(0),
            program: self.program,
            expr: self.expr,
            queue_frames: self.queue_frames.unwrap_or(0),
            queue_bytes: self.queue_bytes.unwrap_or(0),
            local_sends: self.local_sends.into(),
            strict_filter: self.strict_filter,
            pcapng: self.pcapng,
            hex: self.hex,
            buffer: self.buffer.unwrap_or(rawnic_client::DEFAULT_READ_SIZE),
            ring: self.ring.check()?,
        })
    }
}
