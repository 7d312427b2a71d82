//! rawnicctl's command line: the option tables (which the help is made
//! from), the parser, and the typed arguments of each command. Every
//! mistake gets a message that names the option and what it wants.

use rawnic_client::ether::{self, MacAddr, Tci};
use rawnic_client::oid::{self, OidInfo};
use rawnic_client::proto;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// One option.
#[derive(Debug, PartialEq, Eq)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's placeholder; `None` for a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn flag(long: &'static str, help: &'static str) -> Opt {
    Opt { long, short: None, value: None, help }
}

const fn val(long: &'static str, value: &'static str, help: &'static str) -> Opt {
    Opt { long, short: None, value: Some(value), help }
}

const fn short(o: Opt, c: char) -> Opt {
    Opt { short: Some(c), ..o }
}

/// One command.
#[derive(Debug, PartialEq, Eq)]
pub struct Cmd {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    pub about: &'static str,
    pub opts: &'static [Opt],
}

pub const GLOBAL: &[Opt] = &[
    short(
        val(
            "device",
            "PATH|unix:SOCKET",
            "the control device (default: $RAWNIC_DEVICE, else \\\\.\\RawNic on Windows)",
        ),
        'd',
    ),
    short(val("adapter", "NAME|INDEX", "the adapter: its name, or its index in `rawnicctl list`"), 'a'),
    flag("json", "machine-readable output: one JSON value per line"),
    flag("progress", "show progress and the live rate on stderr even when it is not a terminal"),
    short(flag("help", "show help"), 'h'),
    short(flag("version", "show rawnicctl's version"), 'V'),
];

const TIMEOUT: Opt = short(val("timeout", "SECS", "stop after SECS seconds (1.5, 500ms, 2m)"), 't');

pub const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "list",
        usage: "list",
        summary: "list the adapters rawnic is bound to",
        about: "Lists every binding: its index (for --adapter), name, description, state, link, MTU, MAC\naddress, packet filter and open handles.",
        opts: &[],
    },
    Cmd {
        name: "version",
        usage: "version",
        summary: "show the driver's version and wire format",
        about: "Asks the driver for its version, its wire-format version and its batch limit.",
        opts: &[],
    },
    Cmd {
        name: "wait",
        usage: "wait [--timeout SECS]",
        summary: "wait until NDIS has finished binding the adapters",
        about: "Waits until NDIS reports that the bindings present at start-up are complete, and prints\nhow many there are.",
        opts: &[short(val("timeout", "SECS", "give up after SECS seconds"), 't')],
    },
    Cmd {
        name: "selftest",
        usage: "selftest [--count N] [--timeout SECS]",
        summary: "check an installation: versions, bindings, OIDs, a send and receive, counters",
        about: "Checks, on every adapter rawnic is bound to (or the one --adapter names): that the driver's\nwire format matches rawnicctl's, that the binding is running, that handles open, that OID\nqueries answer, that N frames (EtherType 0x88b5, broadcast) sent on one handle arrive on\na second one (no peer is needed: rawnic hands a handle's sends to the others), and that\nthe counters agree. Prints PASS or FAIL for each step; the exit status is 1 if any failed.",
        opts: &[
            short(val("count", "N", "frames to send and receive per adapter (default 32)"), 'c'),
            short(val("timeout", "SECS", "how long to wait for them (default 10)"), 't'),
        ],
    },
    Cmd {
        name: "send",
        usage: "send [options] [HEX...]",
        summary: "send frames",
        about: "Sends a frame COUNT times. The frame is given in hex (spaces, ':' and '-' between bytes are\nignored; several HEX arguments are joined) or read from a file. With --dst, --src or\n--ethertype, that data is the payload and rawnicctl builds the Ethernet header.",
        opts: &[
            val("file", "PATH", "read the frame (or payload) from PATH, raw bytes"),
            val("dst", "MAC", "build the header: destination (default ff:ff:ff:ff:ff:ff)"),
            val("src", "MAC", "build the header: source (default the adapter's MAC)"),
            val("ethertype", "TYPE", "build the header: EtherType (default 0x88b5; or arp, ipv4, ipv6)"),
            val("vlan", "ID[:PRIO]", "send with an 802.1Q tag (VLAN 1-4094, priority 0-7), put in by the NIC or driver"),
            short(val("count", "N", "send the frame N times (default 1)"), 'c'),
            val("rate", "PPS", "send at most PPS frames per second (default: as fast as the driver takes them)"),
            val("batch", "N", "frames per SEND_BATCH request (default: the driver's maximum)"),
            flag("write", "send with WriteFile, one frame per call, instead of SEND_BATCH"),
        ],
    },
    Cmd {
        name: "recv",
        usage: "recv [options]",
        summary: "receive frames: print them, or write a pcapng file",
        about: "Opens the adapter and prints the frames it receives, or writes them to a pcapng file that\nWireshark, tshark and `tcpdump -r` read. Stops after --count frames or --timeout seconds;\nwith both, fewer than COUNT frames in time is a failure (exit status 1).",
        opts: &[
            short(val("count", "N", "stop after N frames"), 'c'),
            TIMEOUT,
            val("ethertype", "TYPE[,TYPE...]", "receive only these EtherTypes (repeatable; default all)"),
            flag("promiscuous", "receive every frame on the wire, not only those for this adapter"),
            val("filter", "BITS", "packet filter: directed,multicast,all-multicast,broadcast,promiscuous or a number"),
            flag(
                "strict-filter",
                "fail if the adapter refuses part of the packet filter (default: receive what it allows, and say so)",
            ),
            val("snaplen", "BYTES", "keep at most BYTES of each frame"),
            val(
                "local-sends",
                "WHICH",
                "frames sent from this host to receive: others (default: other handles' and other protocols'), all (also this handle's own), none",
            ),
            val("queue-frames", "N", "receive queue bound in frames (default: the driver's)"),
            val("queue-bytes", "BYTES", "receive queue bound in bytes (default: the driver's)"),
            short(val("pcapng", "FILE", "write the frames to FILE in pcapng format ('-' for stdout)"), 'w'),
            flag("hex", "print each frame's bytes"),
            val("buffer", "BYTES", "bytes per read (default 262144)"),
        ],
    },
    Cmd {
        name: "oid",
        usage: "oid get OID [--len BYTES] [--raw]\noid set OID (VALUE | --hex HEX | --u32 N | --u64 N)\noid names",
        summary: "query or set an OID on the adapter",
        about: "OID is a name (OID_GEN_LINK_SPEED, or GEN_LINK_SPEED) or a number (0x00010107). `get`\ndecodes common results (speeds, MACs, link state, strings). `set` takes a number for ULONG\nOIDs and comma-separated MACs for a multicast list; the driver allows only a few sets.\n`names` lists the OIDs rawnicctl knows.",
        opts: &[
            val("len", "BYTES", "get: room for BYTES of data (default: what the adapter needs)"),
            flag("raw", "get: print the data in hex, not decoded"),
            val("hex", "HEX", "set: the value's bytes"),
            val("u32", "N", "set: the value as a 32-bit number"),
            val("u64", "N", "set: the value as a 64-bit number"),
        ],
    },
    Cmd {
        name: "stats",
        usage: "stats",
        summary: "show the handle's and the binding's counters",
        about: "Opens the adapter (receiving nothing) and prints the binding's counters and the new\nhandle's own.",
        opts: &[],
    },
    Cmd {
        name: "watch",
        usage: "watch [--count N] [--timeout SECS]",
        summary: "print link and binding events as they happen",
        about: "Prints events as the driver reports them: link up and down, pause, restart, unbind and\nbind. With --adapter, opens that adapter (receiving nothing) and shows only its events.",
        opts: &[short(val("count", "N", "stop after N events"), 'c'), TIMEOUT],
    },
    Cmd {
        name: "arping",
        usage: "arping TARGET --source IP [options]",
        summary: "send ARP requests and time the replies",
        about: "Asks who has the IPv4 address TARGET, from --source and the adapter's MAC, waits for the\nmatching reply and prints the replying MAC and the round-trip time; --count times. Fails\n(exit status 1) if no reply comes.",
        opts: &[
            val("source", "IP", "the IPv4 address to ask from (required)"),
            short(val("count", "N", "send N requests (default 3)"), 'c'),
            short(val("timeout", "SECS", "wait SECS for each reply (default 1)"), 't'),
            short(val("interval", "SECS", "time between requests (default 1)"), 'i'),
            val("vlan", "ID[:PRIO]", "send with an 802.1Q tag"),
            val("src-mac", "MAC", "the MAC to ask from (default the adapter's)"),
        ],
    },
    Cmd {
        name: "help",
        usage: "help [COMMAND]",
        summary: "show help for rawnicctl or for a command",
        about: "Shows the list of commands, or one command's options.",
        opts: &[],
    },
];

pub fn find_cmd(name: &str) -> Option<&'static Cmd> {
    COMMANDS.iter().find(|c| c.name == name)
}

fn opt_line(out: &mut String, o: &Opt) {
    let s = match o.short {
        Some(c) => format!("-{c}, "),
        None => "    ".into(),
    };
    let mut left = format!("  {s}--{}", o.long);
    if let Some(v) = o.value {
        left.push(' ');
        left.push_str(v);
    }
    if left.len() < 32 {
        let _ = writeln!(out, "{left:<32} {}", o.help);
    } else {
        let _ = writeln!(out, "{left}\n{:<32} {}", "", o.help);
    }
}

/// `rawnicctl help`.
pub fn main_help() -> String {
    let mut out = format!(
        "rawnicctl {}: raw Ethernet access through the rawnic driver\n\nusage: rawnicctl [global options] <command> [options] [arguments]\n\ncommands:\n",
        env!("CARGO_PKG_VERSION")
    );
    for c in COMMANDS {
        let _ = writeln!(out, "  {:<9} {}", c.name, c.summary);
    }
    out.push_str("\nglobal options (before or after the command):\n");
    for o in GLOBAL {
        opt_line(&mut out, o);
    }
    out.push_str(
        "\n`rawnicctl help COMMAND` or `rawnicctl COMMAND --help` shows a command's options.\nExit status: 0 success, 1 failure, 2 bad arguments.",
    );
    out
}

/// `rawnicctl help COMMAND`.
pub fn cmd_help(c: &Cmd) -> String {
    let mut out = format!("rawnicctl {}: {}\n\n", c.name, c.summary);
    for (i, line) in c.usage.lines().enumerate() {
        let _ = writeln!(out, "{}rawnicctl {line}", if i == 0 { "usage: " } else { "       " });
    }
    let _ = writeln!(out, "\n{}", c.about);
    if !c.opts.is_empty() {
        out.push_str("\noptions:\n");
        for o in c.opts {
            opt_line(&mut out, o);
        }
    }
    out.push_str("\nglobal options: --device, --adapter, --json, --progress (see `rawnicctl help`)");
    out
}

/// A mistake on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The command it concerns, for the help hint.
    pub cmd: Option<&'static str>,
    pub msg: String,
}

impl Usage {
    fn new(cmd: Option<&'static str>, msg: impl Into<String>) -> Self {
        Usage { cmd, msg: msg.into() }
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cmd {
            Some(c) => write!(f, "rawnicctl {c}: {}\n(see `rawnicctl help {c}`)", self.msg),
            None => write!(f, "rawnicctl: {}\n(see `rawnicctl help`)", self.msg),
        }
    }
}

/// Options every command takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Global {
    pub device: Option<String>,
    pub adapter: Option<String>,
    pub json: bool,
    pub progress: bool,
}

/// What the frame of `send` is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Hex(Vec<u8>),
    File(PathBuf),
    None,
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub dst: MacAddr,
    /// `None`: the adapter's MAC.
    pub src: Option<MacAddr>,
    pub ethertype: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecvArgs {
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
    pub ethertypes: Vec<u16>,
    pub filter: u32,
    pub snaplen: u32,
    pub queue_frames: u32,
    pub queue_bytes: u32,
    pub local_sends: proto::LocalSends,
    pub strict_filter: bool,
    pub pcapng: Option<String>,
    pub hex: bool,
    pub buffer: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OidArgs {
    Get { oid: u32, info: Option<&'static OidInfo>, len: Option<usize>, raw: bool },
    Set { oid: u32, value: Vec<u8> },
    Names,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchArgs {
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArpingArgs {
    pub target: Ipv4Addr,
    pub source: Ipv4Addr,
    pub count: u64,
    pub timeout: Duration,
    pub interval: Duration,
    pub vlan: Option<Tci>,
    pub src_mac: Option<MacAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Help for rawnicctl (`None`) or a command.
    Help(Option<&'static Cmd>),
    /// `--version`: rawnicctl's own version, no device needed.
    ClientVersion,
    Version,
    List,
    Wait {
        timeout: Option<Duration>,
    },
    Send(SendArgs),
    Recv(RecvArgs),
    Oid(OidArgs),
    Stats,
    Watch(WatchArgs),
    Arping(ArpingArgs),
    Selftest(crate::selftest::SelftestArgs),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    pub global: Global,
    pub command: Command,
}

/// The options and arguments given to one command, before typing.
struct Given {
    cmd: &'static Cmd,
    opts: Vec<(&'static Opt, Option<String>)>,
    args: Vec<String>,
}

impl Given {
    fn err(&self, msg: impl Into<String>) -> Usage {
        Usage::new(Some(self.cmd.name), msg)
    }

    /// The last value of option `long` (a later one wins).
    fn value(&self, long: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(o, _)| o.long == long).and_then(|(_, v)| v.as_deref())
    }

    fn values<'a>(&'a self, long: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.opts.iter().filter(move |(o, _)| o.long == long).filter_map(|(_, v)| v.as_deref())
    }

    fn flag(&self, long: &str) -> bool {
        self.opts.iter().any(|(o, _)| o.long == long)
    }

    fn parse<T>(&self, long: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Usage> {
        match self.value(long) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| self.err(format!("--{long} needs {what}, not {v:?}"))),
        }
    }

    fn count(&self, long: &str, what: &str) -> Result<Option<u64>, Usage> {
        let n = self.parse(long, what, oid::parse_u64)?;
        if n == Some(0) {
            return Err(self.err(format!("--{long} must be at least 1")));
        }
        Ok(n)
    }

    fn u32(&self, long: &str, what: &str) -> Result<Option<u32>, Usage> {
        self.parse(long, what, |v| oid::parse_u64(v).and_then(|n| u32::try_from(n).ok()))
    }

    fn mac(&self, long: &str) -> Result<Option<MacAddr>, Usage> {
        self.parse(long, "a MAC address like 02:00:00:00:00:01", |v| v.parse().ok())
    }

    /// An 802.1Q tag: `ID` or `ID:PRIO`.
    fn tci(&self, long: &str) -> Result<Option<Tci>, Usage> {
        self.value(long).map(|v| v.parse::<Tci>().map_err(|e| self.err(format!("--{long}: {e}")))).transpose()
    }

    fn duration(&self, long: &str) -> Result<Option<Duration>, Usage> {
        self.parse(long, "a time in seconds (like 1.5, 500ms or 2m)", parse_duration)
    }

    fn no_args(&self) -> Result<(), Usage> {
        match self.args.first() {
            None => Ok(()),
            Some(a) => Err(self.err(format!("unexpected argument {a:?}"))),
        }
    }
}

/// `1.5`, `2s`, `500ms`, `2m`: a non-negative, finite time.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    let secs = v * scale;
    (0.0..1e9).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

/// An EtherType: a number (`0x88b5`, decimal) or `arp`, `ipv4`/`ip`,
/// `ipv6`, `vlan`.
pub fn parse_ethertype(text: &str) -> Option<u16> {
    match text.trim().to_ascii_lowercase().as_str() {
        "arp" => Some(ether::ETHERTYPE_ARP),
        "ip" | "ipv4" => Some(ether::ETHERTYPE_IPV4),
        "ipv6" => Some(ether::ETHERTYPE_IPV6),
        "vlan" => Some(ether::ETHERTYPE_VLAN),
        t => oid::parse_u64(t).and_then(|n| u16::try_from(n).ok()),
    }
}

/// A packet filter: comma-separated names, or a number.
pub fn parse_filter(text: &str) -> Option<u32> {
    use proto::filter::*;
    if let Some(n) = oid::parse_u64(text) {
        return u32::try_from(n).ok();
    }
    let mut bits = 0;
    for part in text.split(',').map(str::trim) {
        bits |= match part {
            "directed" => DIRECTED,
            "multicast" => MULTICAST,
            "all-multicast" => ALL_MULTICAST,
            "broadcast" => BROADCAST,
            "promiscuous" => PROMISCUOUS,
            "none" => 0,
            _ => return None,
        };
    }
    Some(bits)
}

fn lookup_opt(opts: &'static [Opt], long: Option<&str>, short: Option<char>) -> Option<&'static Opt> {
    opts.iter().find(|o| match (long, short) {
        (Some(l), _) => o.long == l,
        (None, Some(c)) => o.short == Some(c),
        _ => false,
    })
}

/// Parses the arguments after the program name.
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<Cli, Usage> {
    let mut global = Global::default();
    let mut cmd: Option<&'static Cmd> = None;
    let mut opts: Vec<(&'static Opt, Option<String>)> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut help = false;
    let mut version = false;
    let mut only_args = false;
    let mut it = argv.iter().map(AsRef::as_ref);
    while let Some(a) = it.next() {
        let cmd_name = cmd.map(|c| c.name);
        if only_args || a == "-" || !a.starts_with('-') {
            if cmd.is_none() {
                cmd = Some(find_cmd(a).ok_or_else(|| Usage::new(None, format!("unknown command {a:?}")))?);
            } else {
                args.push(a.to_string());
            }
            continue;
        }
        if a == "--" {
            only_args = true;
            continue;
        }
        let (long, short_c, inline) = if let Some(rest) = a.strip_prefix("--") {
            match rest.split_once('=') {
                Some((n, v)) => (Some(n), None, Some(v.to_string())),
                None => (Some(rest), None, None),
            }
        } else {
            let mut chars = a[1..].chars();
            let c = chars.next().expect("longer than '-'");
            let rest: String = chars.collect();
            (None, Some(c), (!rest.is_empty()).then_some(rest))
        };
        let shown = || match (long, short_c) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(c)) => format!("-{c}"),
            _ => a.to_string(),
        };
        let spec = cmd
            .and_then(|c| lookup_opt(c.opts, long, short_c))
            .or_else(|| lookup_opt(GLOBAL, long, short_c))
            .ok_or_else(|| match cmd {
                Some(c) => Usage::new(Some(c.name), format!("unknown option {} for `{}`", shown(), c.name)),
                None => Usage::new(None, format!("unknown option {}", shown())),
            })?;
        let value = match spec.value {
            Some(placeholder) => match inline {
                Some(v) => Some(v),
                None => Some(
                    it.next()
                        .ok_or_else(|| Usage::new(cmd_name, format!("--{} needs a value ({placeholder})", spec.long)))?
                        .to_string(),
                ),
            },
            None => {
                if inline.is_some() {
                    return Err(Usage::new(cmd_name, format!("--{} takes no value", spec.long)));
                }
                None
            }
        };
        match spec.long {
            "device" => global.device = value,
            "adapter" => global.adapter = value,
            "json" => global.json = true,
            "progress" => global.progress = true,
            "help" => help = true,
            "version" => version = true,
            _ => opts.push((spec, value)),
        }
    }
    if let Some(d) = &global.device {
        if d.is_empty() {
            return Err(Usage::new(cmd.map(|c| c.name), "--device needs a path, not an empty string"));
        }
    }
    if let Some(a) = &global.adapter {
        if a.is_empty() {
            return Err(Usage::new(cmd.map(|c| c.name), "--adapter needs a name or an index, not an empty string"));
        }
    }
    if help {
        return Ok(Cli { global, command: Command::Help(cmd.filter(|c| c.name != "help")) });
    }
    if version {
        return Ok(Cli { global, command: Command::ClientVersion });
    }
    let Some(cmd) = cmd else {
        return Ok(Cli { global, command: Command::Help(None) });
    };
    let g = Given { cmd, opts, args };
    let command = match cmd.name {
        "help" => match g.args.as_slice() {
            [] => Command::Help(None),
            [c] => Command::Help(Some(find_cmd(c).ok_or_else(|| g.err(format!("unknown command {c:?}")))?)),
            [_, extra, ..] => return Err(g.err(format!("unexpected argument {extra:?}"))),
        },
        "list" => g.no_args().map(|_| Command::List)?,
        "version" => g.no_args().map(|_| Command::Version)?,
        "stats" => g.no_args().map(|_| Command::Stats)?,
        "wait" => {
            g.no_args()?;
            Command::Wait { timeout: g.duration("timeout")? }
        }
        "send" => Command::Send(send_args(&g)?),
        "selftest" => {
            g.no_args()?;
            let count = g.count("count", "a number of frames")?.unwrap_or(32);
            if !(1..=u64::from(proto::MAX_BATCH)).contains(&count) {
                return Err(g.err(format!("--count must be 1 to {}", proto::MAX_BATCH)));
            }
            let timeout = g.duration("timeout")?.unwrap_or(Duration::from_secs(10));
            Command::Selftest(crate::selftest::SelftestArgs { count: count as u32, timeout })
        }
        "recv" => Command::Recv(recv_args(&g)?),
        "oid" => Command::Oid(oid_args(&g)?),
        "watch" => {
            g.no_args()?;
            Command::Watch(WatchArgs {
                count: g.count("count", "a number of events")?,
                timeout: g.duration("timeout")?,
            })
        }
        "arping" => Command::Arping(arping_args(&g)?),
        other => unreachable!("command {other} has no parser"),
    };
    Ok(Cli { global, command })
}

fn send_args(g: &Given) -> Result<SendArgs, Usage> {
    let hex = if g.args.is_empty() {
        None
    } else {
        Some(ether::parse_hex(&g.args.join(" ")).map_err(|e| g.err(format!("the frame is not valid hex: {e}")))?)
    };
    let file = g.value("file").map(PathBuf::from);
    let data = match (hex, file) {
        (Some(_), Some(_)) => return Err(g.err("give the frame either in hex or with --file, not both")),
        (Some(h), None) => Data::Hex(h),
        (None, Some(f)) => Data::File(f),
        (None, None) => Data::None,
    };
    let dst = g.mac("dst")?;
    let src = g.mac("src")?;
    let ethertype = g.parse("ethertype", "an EtherType (0x88b5, arp, ipv4, ipv6)", parse_ethertype)?;
    let header = (dst.is_some() || src.is_some() || ethertype.is_some()).then(|| Header {
        dst: dst.unwrap_or(MacAddr::BROADCAST),
        src,
        ethertype: ethertype.unwrap_or(ether::ETHERTYPE_EXPERIMENTAL),
    });
    match (&data, header) {
        (Data::None, None) => {
            return Err(g.err("nothing to send: give the frame in hex or with --file, or build one with --dst, --src or --ethertype"))
        }
        (Data::Hex(h), None) if h.len() < proto::ETH_HEADER => {
            return Err(g.err(format!(
                "the frame is {} bytes; an Ethernet frame has at least {} (or build the header with --dst, --src or --ethertype)",
                h.len(),
                proto::ETH_HEADER
            )))
        }
        _ => {}
    }
    let vlan = g.tci("vlan")?;
    let rate = g.parse("rate", "a number of frames per second", |v| {
        v.trim().parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0)
    })?;
    let batch = g.u32("batch", "a number of frames")?;
    if let Some(b) = batch {
        if b == 0 || b > proto::MAX_BATCH {
            return Err(g.err(format!("--batch must be 1 to {}", proto::MAX_BATCH)));
        }
    }
    let write = g.flag("write");
    if write && (vlan.is_some() || batch.is_some()) {
        return Err(g.err("--write sends plain frames one at a time: it takes neither --vlan nor --batch"));
    }
    Ok(SendArgs { data, header, vlan, count: g.count("count", "a number of frames")?.unwrap_or(1), rate, batch, write })
}

fn recv_args(g: &Given) -> Result<RecvArgs, Usage> {
    g.no_args()?;
    let mut ethertypes = Vec::new();
    for v in g.values("ethertype") {
        for part in v.split(',') {
            ethertypes.push(parse_ethertype(part).ok_or_else(|| {
                g.err(format!("--ethertype needs EtherTypes (0x88b5, arp, ipv4, ipv6), not {part:?}"))
            })?);
        }
    }
    if ethertypes.len() > proto::MAX_ETHERTYPES {
        return Err(g.err(format!("at most {} EtherTypes can be given", proto::MAX_ETHERTYPES)));
    }
    let mut filter = g
        .parse(
            "filter",
            "packet filter bits (directed,multicast,all-multicast,broadcast,promiscuous) or a number",
            parse_filter,
        )?
        .unwrap_or(proto::filter::DEFAULT);
    if g.flag("promiscuous") {
        filter |= proto::filter::PROMISCUOUS;
    }
    if filter == 0 {
        return Err(g.err("a packet filter of 0 receives nothing"));
    }
    if filter & !proto::filter::ALL != 0 {
        return Err(g.err(format!("packet filter {filter:#x} has bits the driver does not allow")));
    }
    let snaplen = g.u32("snaplen", "a number of bytes")?.unwrap_or(0);
    if snaplen != 0 && (snaplen as usize) < proto::ETH_HEADER {
        return Err(g.err(format!("--snaplen must be at least {} (an Ethernet header)", proto::ETH_HEADER)));
    }
    let queue_frames = g.u32("queue-frames", "a number of frames")?.unwrap_or(0);
    if queue_frames > proto::MAX_QUEUE_FRAMES {
        return Err(g.err(format!("--queue-frames must be at most {}", proto::MAX_QUEUE_FRAMES)));
    }
    let queue_bytes = g.u32("queue-bytes", "a number of bytes")?.unwrap_or(0);
    if queue_bytes != 0 && !(proto::MIN_QUEUE_BYTES..=proto::MAX_QUEUE_BYTES).contains(&queue_bytes) {
        return Err(g.err(format!("--queue-bytes must be {} to {}", proto::MIN_QUEUE_BYTES, proto::MAX_QUEUE_BYTES)));
    }
    let buffer = g.u32("buffer", "a number of bytes")?.map_or(rawnic_client::DEFAULT_READ_SIZE, |b| b as usize);
    if !(64..=16 << 20).contains(&buffer) {
        return Err(g.err("--buffer must be 64 bytes to 16 MiB"));
    }
    let local_sends = match g.value("local-sends") {
        None | Some("others") => proto::LocalSends::Others,
        Some("all") => proto::LocalSends::All,
        Some("none") => proto::LocalSends::None,
        Some(v) => {
            return Err(g.err(format!(
                "--local-sends {v:?}: say others (other handles' and other protocols' sends), all (also this handle's own) or none"
            )));
        }
    };
    let pcapng = g.value("pcapng").map(str::to_string);
    let hex = g.flag("hex");
    if hex && pcapng.as_deref() == Some("-") {
        return Err(g.err("--hex prints frames, which would mix with the pcapng data on stdout"));
    }
    Ok(RecvArgs {
        count: g.count("count", "a number of frames")?,
        timeout: g.duration("timeout")?,
        ethertypes,
        filter,
        snaplen,
        queue_frames,
        queue_bytes,
        local_sends,
        strict_filter: g.flag("strict-filter"),
        pcapng,
        hex,
        buffer,
    })
}

fn oid_for(g: &Given, text: Option<&String>) -> Result<(u32, Option<&'static OidInfo>), Usage> {
    let text =
        text.ok_or_else(|| g.err("which OID? give a name like OID_GEN_LINK_SPEED or a number like 0x00010107"))?;
    oid::lookup(text).ok_or_else(|| {
        g.err(format!("unknown OID {text:?}: give a name from `rawnicctl oid names` or a number like 0x00010107"))
    })
}

fn oid_args(g: &Given) -> Result<OidArgs, Usage> {
    let set_opts = ["hex", "u32", "u64"];
    let sub = g.args.first().map(String::as_str);
    match sub {
        Some("get") => {
            if let Some(o) = set_opts.iter().find(|o| g.value(o).is_some()) {
                return Err(g.err(format!("--{o} is for `oid set`")));
            }
            let (oid, info) = oid_for(g, g.args.get(1))?;
            if let Some(extra) = g.args.get(2) {
                return Err(g.err(format!("unexpected argument {extra:?}")));
            }
            let len = g.u32("len", "a number of bytes")?.map(|n| n as usize);
            if len.is_some_and(|n| n > proto::MAX_OID_DATA as usize) {
                return Err(g.err(format!("--len must be at most {}", proto::MAX_OID_DATA)));
            }
            Ok(OidArgs::Get { oid, info, len, raw: g.flag("raw") })
        }
        Some("set") => {
            if g.value("len").is_some() || g.flag("raw") {
                return Err(g.err("--len and --raw are for `oid get`"));
            }
            let (oid, info) = oid_for(g, g.args.get(1))?;
            let text = g.args.get(2);
            if let Some(extra) = g.args.get(3) {
                return Err(g.err(format!("unexpected argument {extra:?}")));
            }
            let given: Vec<&str> = set_opts.iter().copied().filter(|o| g.value(o).is_some()).collect();
            let value = match (text, given.as_slice()) {
                (Some(_), [o, ..]) | (None, [_, o, ..]) => {
                    return Err(
                        g.err(format!("give the value once: as VALUE, --hex, --u32 or --u64 (--{o} is one too many)"))
                    )
                }
                (None, []) => return Err(g.err("what value? give VALUE, --hex HEX, --u32 N or --u64 N")),
                (None, ["hex"]) => {
                    ether::parse_hex(g.value("hex").expect("given")).map_err(|e| g.err(format!("--hex: {e}")))?
                }
                (None, [o]) => {
                    let kind = if *o == "u32" { oid::Kind::U32 } else { oid::Kind::U64 };
                    oid::encode(kind, g.value(o).expect("given")).map_err(|e| g.err(format!("--{o}: {e}")))?
                }
                (Some(t), []) => {
                    let kind = info.map_or(oid::Kind::Bytes, |i| i.kind);
                    oid::encode(kind, t).map_err(|e| g.err(format!("the value for {}: {e}", oid::display_oid(oid))))?
                }
            };
            Ok(OidArgs::Set { oid, value })
        }
        Some("names") => {
            if let Some(extra) = g.args.get(1) {
                return Err(g.err(format!("unexpected argument {extra:?}")));
            }
            Ok(OidArgs::Names)
        }
        Some(other) => Err(g.err(format!("unknown oid command {other:?}: use get, set or names"))),
        None => Err(g.err("use `oid get OID`, `oid set OID VALUE` or `oid names`")),
    }
}

fn arping_args(g: &Given) -> Result<ArpingArgs, Usage> {
    let target = match g.args.as_slice() {
        [] => {
            return Err(g.err("which address? give the target IPv4 address, like `arping 10.0.0.1 --source 10.0.0.2`"))
        }
        [t] => t.parse::<Ipv4Addr>().map_err(|_| g.err(format!("{t:?} is not an IPv4 address")))?,
        [_, extra, ..] => return Err(g.err(format!("unexpected argument {extra:?}"))),
    };
    let source = g
        .parse("source", "an IPv4 address", |v| v.parse::<Ipv4Addr>().ok())?
        .ok_or_else(|| g.err("--source IP is required: the address the request comes from"))?;
    let vlan = g.tci("vlan")?;
    let timeout = g.duration("timeout")?.unwrap_or(Duration::from_secs(1));
    if timeout.is_zero() {
        return Err(g.err("--timeout must be more than 0"));
    }
    Ok(ArpingArgs {
        target,
        source,
        count: g.count("count", "a number of requests")?.unwrap_or(3),
        timeout,
        interval: g.duration("interval")?.unwrap_or(Duration::from_secs(1)),
        vlan,
        src_mac: g.mac("src-mac")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> Cli {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// The message of a usage error, and the command it names.
    fn bad(args: &[&str]) -> (Option<&'static str>, String) {
        let e = parse(args).expect_err(&format!("{args:?} should be refused"));
        (e.cmd, e.msg)
    }

    #[test]
    fn help_and_version() {
        assert_eq!(ok(&[]).command, Command::Help(None));
        assert_eq!(ok(&["help"]).command, Command::Help(None));
        assert_eq!(ok(&["--help"]).command, Command::Help(None));
        assert_eq!(ok(&["-h"]).command, Command::Help(None));
        assert_eq!(ok(&["help", "send"]).command, Command::Help(find_cmd("send")));
        assert_eq!(ok(&["send", "--help"]).command, Command::Help(find_cmd("send")));
        // Help wins over anything else wrong with the command.
        assert_eq!(ok(&["recv", "-h", "--count", "5"]).command, Command::Help(find_cmd("recv")));
        assert_eq!(ok(&["--version"]).command, Command::ClientVersion);
        assert_eq!(ok(&["-V"]).command, Command::ClientVersion);
        assert_eq!(bad(&["help", "nope"]), (Some("help"), "unknown command \"nope\"".into()));
        assert_eq!(bad(&["help", "send", "recv"]), (Some("help"), "unexpected argument \"recv\"".into()));
        // Every command has help that shows its options.
        for c in COMMANDS {
            let h = cmd_help(c);
            for o in c.opts {
                assert!(h.contains(&format!("--{}", o.long)), "{} help lacks --{}", c.name, o.long);
            }
            assert!(main_help().contains(c.summary));
        }
    }

    #[test]
    fn global_options_go_anywhere() {
        let c = ok(&["--device", "unix:/tmp/s", "list", "--json", "-a", "0", "--progress"]);
        assert_eq!(
            c.global,
            Global { device: Some("unix:/tmp/s".into()), adapter: Some("0".into()), json: true, progress: true }
        );
        assert_eq!(c.command, Command::List);
        let c = ok(&["list", "--device=unix:/x", "--adapter=eth0"]);
        assert_eq!((c.global.device.as_deref(), c.global.adapter.as_deref()), (Some("unix:/x"), Some("eth0")));
        assert_eq!(ok(&["-d", "\\\\.\\RawNic", "version"]).global.device.as_deref(), Some("\\\\.\\RawNic"));
    }

    #[test]
    fn general_mistakes() {
        assert_eq!(bad(&["frobnicate"]), (None, "unknown command \"frobnicate\"".into()));
        assert_eq!(bad(&["--frob"]), (None, "unknown option --frob".into()));
        assert_eq!(bad(&["list", "--count", "3"]), (Some("list"), "unknown option --count for `list`".into()));
        assert_eq!(bad(&["list", "extra"]), (Some("list"), "unexpected argument \"extra\"".into()));
        assert_eq!(bad(&["list", "--device"]), (Some("list"), "--device needs a value (PATH|unix:SOCKET)".into()));
        assert_eq!(bad(&["list", "--json=yes"]), (Some("list"), "--json takes no value".into()));
        assert_eq!(bad(&["--device", "", "list"]), (Some("list"), "--device needs a path, not an empty string".into()));
        assert_eq!(bad(&["list", "-a", ""]).1, "--adapter needs a name or an index, not an empty string");
        let e = parse(&["list", "-z"]).unwrap_err();
        assert_eq!(e.to_string(), "rawnicctl list: unknown option -z for `list`\n(see `rawnicctl help list`)");
        let e = parse(&["nope"]).unwrap_err();
        assert_eq!(e.to_string(), "rawnicctl: unknown command \"nope\"\n(see `rawnicctl help`)");
    }

    #[test]
    fn list_version_stats_wait() {
        assert_eq!(ok(&["list"]).command, Command::List);
        assert_eq!(ok(&["version"]).command, Command::Version);
        assert_eq!(ok(&["stats", "-a", "1"]).command, Command::Stats);
        assert_eq!(ok(&["wait"]).command, Command::Wait { timeout: None });
        assert_eq!(ok(&["wait", "-t", "1.5"]).command, Command::Wait { timeout: Some(Duration::from_millis(1500)) });
        assert_eq!(
            ok(&["wait", "--timeout", "250ms"]).command,
            Command::Wait { timeout: Some(Duration::from_millis(250)) }
        );
        assert_eq!(ok(&["wait", "--timeout=2m"]).command, Command::Wait { timeout: Some(Duration::from_secs(120)) });
        assert_eq!(
            bad(&["wait", "--timeout", "soon"]),
            (Some("wait"), "--timeout needs a time in seconds (like 1.5, 500ms or 2m), not \"soon\"".into())
        );
        assert_eq!(
            bad(&["wait", "--timeout", "-1"]).1,
            "--timeout needs a time in seconds (like 1.5, 500ms or 2m), not \"-1\""
        );
        assert_eq!(bad(&["stats", "now"]).1, "unexpected argument \"now\"");
    }

    #[test]
    fn send() {
        let c =
            ok(&["send", "ffffffffffff", "020000000001", "88b5", "--count", "10", "--rate", "100", "--vlan", "5:3"]);
        let Command::Send(s) = c.command else { panic!() };
        assert_eq!(s.data, Data::Hex([[0xff; 6].as_slice(), &[2, 0, 0, 0, 0, 1], &[0x88, 0xb5]].concat()));
        assert_eq!(
            (s.count, s.rate, s.vlan, s.header, s.write),
            (10, Some(100.0), Some(Tci::new(5, 3).unwrap()), None, false)
        );
        let Command::Send(s) = ok(&["send", "--file", "f.bin", "--dst", "02:00:00:00:00:02", "-c", "3"]).command else {
            panic!()
        };
        assert_eq!(s.data, Data::File("f.bin".into()));
        assert_eq!(s.header, Some(Header { dst: "02:00:00:00:00:02".parse().unwrap(), src: None, ethertype: 0x88b5 }));
        let Command::Send(s) =
            ok(&["send", "--ethertype", "arp", "--src", "02:00:00:00:00:09", "--batch", "64"]).command
        else {
            panic!()
        };
        assert_eq!(s.data, Data::None);
        assert_eq!(s.header.unwrap().ethertype, 0x0806);
        assert_eq!(s.header.unwrap().dst, MacAddr::BROADCAST);
        assert_eq!((s.batch, s.count), (Some(64), 1));
        let Command::Send(s) = ok(&["send", "ff:ff:ff:ff:ff:ff:02:00:00:00:00:01:08:00", "--write"]).command else {
            panic!()
        };
        assert!(s.write);
    }

    #[test]
    fn send_mistakes() {
        let e = |args: &[&str]| bad(args).1;
        assert_eq!(
            e(&["send"]),
            "nothing to send: give the frame in hex or with --file, or build one with --dst, --src or --ethertype"
        );
        assert_eq!(
            e(&["send", "abc"]),
            "the frame is not valid hex: 3 hex digits is an odd number: every byte takes two"
        );
        assert_eq!(e(&["send", "0g"]), "the frame is not valid hex: 'g' is not a hex digit");
        assert_eq!(
            e(&["send", "0102"]),
            "the frame is 2 bytes; an Ethernet frame has at least 14 (or build the header with --dst, --src or --ethertype)"
        );
        assert_eq!(e(&["send", "00", "--file", "x"]), "give the frame either in hex or with --file, not both");
        assert_eq!(e(&["send", "--dst", "nope"]), "--dst needs a MAC address like 02:00:00:00:00:01, not \"nope\"");
        assert_eq!(
            e(&["send", "--ethertype", "0x1ffff"]),
            "--ethertype needs an EtherType (0x88b5, arp, ipv4, ipv6), not \"0x1ffff\""
        );
        assert_eq!(e(&["send", "--ethertype", "arp", "--count", "0"]), "--count must be at least 1");
        assert_eq!(
            e(&["send", "--ethertype", "arp", "--count", "many"]),
            "--count needs a number of frames, not \"many\""
        );
        assert_eq!(
            e(&["send", "--ethertype", "arp", "--rate", "0"]),
            "--rate needs a number of frames per second, not \"0\""
        );
        assert_eq!(
            e(&["send", "--ethertype", "arp", "--vlan", "4095"]),
            "--vlan: VLAN ID 4095 is out of range: it must be 1 to 4094"
        );
        assert_eq!(
            e(&["send", "--ethertype", "arp", "--vlan", "1:9"]),
            "--vlan: priority 9 is out of range: it must be 0 to 7"
        );
        assert_eq!(e(&["send", "--ethertype", "arp", "--batch", "5000"]), "--batch must be 1 to 4096");
        assert_eq!(
            e(&["send", "--ethertype", "arp", "--write", "--vlan", "3"]),
            "--write sends plain frames one at a time: it takes neither --vlan nor --batch"
        );
        assert_eq!(e(&["send", "--ethertype", "arp", "--promiscuous"]), "unknown option --promiscuous for `send`");
    }

    #[test]
    fn recv() {
        let Command::Recv(r) = ok(&["recv"]).command else { panic!() };
        assert_eq!(
            r,
            RecvArgs {
                count: None,
                timeout: None,
                ethertypes: vec![],
                filter: proto::filter::DEFAULT,
                snaplen: 0,
                queue_frames: 0,
                queue_bytes: 0,
                local_sends: proto::LocalSends::Others,
                strict_filter: false,
                pcapng: None,
                hex: false,
                buffer: rawnic_client::DEFAULT_READ_SIZE,
            }
        );
        let Command::Recv(r) = ok(&[
            "recv",
            "-c",
            "5",
            "-t",
            "2",
            "--ethertype",
            "arp,0x88b5",
            "--ethertype",
            "ipv6",
            "--promiscuous",
            "--snaplen",
            "64",
            "--queue-frames",
            "100",
            "--queue-bytes",
            "65536",
            "-w",
            "out.pcapng",
            "--buffer",
            "4096",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!((r.count, r.timeout), (Some(5), Some(Duration::from_secs(2))));
        assert_eq!(r.ethertypes, vec![0x0806, 0x88b5, 0x86dd]);
        assert_eq!(r.filter, proto::filter::DEFAULT | proto::filter::PROMISCUOUS);
        assert_eq!((r.snaplen, r.queue_frames, r.queue_bytes, r.buffer), (64, 100, 65536, 4096));
        assert_eq!(r.pcapng.as_deref(), Some("out.pcapng"));
        let Command::Recv(r) = ok(&["recv", "--filter", "broadcast,directed", "--hex"]).command else { panic!() };
        assert_eq!((r.filter, r.hex), (proto::filter::BROADCAST | proto::filter::DIRECTED, true));
        for (v, want) in
            [("all", proto::LocalSends::All), ("none", proto::LocalSends::None), ("others", proto::LocalSends::Others)]
        {
            let Command::Recv(r) = ok(&["recv", "--local-sends", v]).command else { panic!() };
            assert_eq!(r.local_sends, want);
        }
    }

    #[test]
    fn recv_mistakes() {
        let e = |args: &[&str]| bad(args).1;
        assert_eq!(
            e(&["recv", "--ethertype", "arp,bogus"]),
            "--ethertype needs EtherTypes (0x88b5, arp, ipv4, ipv6), not \"bogus\""
        );
        assert_eq!(e(&["recv", "--filter", "none"]), "a packet filter of 0 receives nothing");
        assert_eq!(
            e(&["recv", "--local-sends", "mine"]),
            "--local-sends \"mine\": say others (other handles' and other protocols' sends), all (also this handle's own) or none"
        );
        assert_eq!(e(&["recv", "--filter", "0x40"]), "packet filter 0x40 has bits the driver does not allow");
        assert!(e(&["recv", "--filter", "everything"]).starts_with("--filter needs packet filter bits"));
        assert_eq!(e(&["recv", "--snaplen", "10"]), "--snaplen must be at least 14 (an Ethernet header)");
        assert_eq!(e(&["recv", "--queue-bytes", "100"]), "--queue-bytes must be 65536 to 268435456");
        assert_eq!(e(&["recv", "--queue-frames", "2000000"]), "--queue-frames must be at most 1048576");
        assert_eq!(e(&["recv", "--buffer", "10"]), "--buffer must be 64 bytes to 16 MiB");
        assert_eq!(
            e(&["recv", "--hex", "--pcapng", "-"]),
            "--hex prints frames, which would mix with the pcapng data on stdout"
        );
        assert_eq!(e(&["recv", "--count", "0"]), "--count must be at least 1");
        assert_eq!(e(&["recv", "--pcapng"]), "--pcapng needs a value (FILE)");
        assert_eq!(e(&["recv", "now"]), "unexpected argument \"now\"");
        let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
        assert_eq!(e(&["recv", "--ethertype", &many.join(",")]), "at most 32 EtherTypes can be given");
    }

    #[test]
    fn oid() {
        let Command::Oid(o) = ok(&["oid", "get", "OID_GEN_LINK_SPEED"]).command else { panic!() };
        assert_eq!(o, OidArgs::Get { oid: 0x0001_0107, info: oid::by_value(0x0001_0107), len: None, raw: false });
        let Command::Oid(o) = ok(&["oid", "get", "0x12345678", "--len", "64", "--raw"]).command else { panic!() };
        assert_eq!(o, OidArgs::Get { oid: 0x1234_5678, info: None, len: Some(64), raw: true });
        let Command::Oid(o) = ok(&["oid", "set", "gen_current_lookahead", "256"]).command else { panic!() };
        assert_eq!(o, OidArgs::Set { oid: 0x0001_010F, value: vec![0, 1, 0, 0] });
        let Command::Oid(o) =
            ok(&["oid", "set", "OID_802_3_MULTICAST_LIST", "01:00:5e:00:00:01,01:00:5e:00:00:02"]).command
        else {
            panic!()
        };
        assert_eq!(o, OidArgs::Set { oid: 0x0101_0103, value: vec![1, 0, 0x5e, 0, 0, 1, 1, 0, 0x5e, 0, 0, 2] });
        let Command::Oid(o) = ok(&["oid", "set", "OID_GEN_LINK_PARAMETERS", "--hex", "0102"]).command else { panic!() };
        assert_eq!(o, OidArgs::Set { oid: 0x0001_0208, value: vec![1, 2] });
        let Command::Oid(o) = ok(&["oid", "set", "0x00010208", "--u64", "5"]).command else { panic!() };
        assert_eq!(o, OidArgs::Set { oid: 0x0001_0208, value: 5u64.to_le_bytes().to_vec() });
        assert_eq!(ok(&["oid", "names"]).command, Command::Oid(OidArgs::Names));
    }

    #[test]
    fn oid_mistakes() {
        let e = |args: &[&str]| bad(args).1;
        assert_eq!(e(&["oid"]), "use `oid get OID`, `oid set OID VALUE` or `oid names`");
        assert_eq!(e(&["oid", "fetch"]), "unknown oid command \"fetch\": use get, set or names");
        assert_eq!(e(&["oid", "get"]), "which OID? give a name like OID_GEN_LINK_SPEED or a number like 0x00010107");
        assert_eq!(
            e(&["oid", "get", "OID_FROB"]),
            "unknown OID \"OID_FROB\": give a name from `rawnicctl oid names` or a number like 0x00010107"
        );
        assert_eq!(e(&["oid", "get", "GEN_LINK_SPEED", "x"]), "unexpected argument \"x\"");
        assert_eq!(e(&["oid", "get", "GEN_LINK_SPEED", "--hex", "00"]), "--hex is for `oid set`");
        assert_eq!(e(&["oid", "get", "GEN_LINK_SPEED", "--len", "70000"]), "--len must be at most 65536");
        assert_eq!(
            e(&["oid", "set", "GEN_CURRENT_LOOKAHEAD"]),
            "what value? give VALUE, --hex HEX, --u32 N or --u64 N"
        );
        assert_eq!(
            e(&["oid", "set", "GEN_CURRENT_LOOKAHEAD", "1", "--u32", "2"]),
            "give the value once: as VALUE, --hex, --u32 or --u64 (--u32 is one too many)"
        );
        assert_eq!(
            e(&["oid", "set", "GEN_CURRENT_LOOKAHEAD", "lots"]),
            "the value for OID_GEN_CURRENT_LOOKAHEAD (0x0001010f): \"lots\" is not a number"
        );
        assert_eq!(
            e(&["oid", "set", "GEN_LINK_PARAMETERS", "1"]),
            "the value for OID_GEN_LINK_PARAMETERS (0x00010208): this OID's value has no text form; give its bytes with --hex"
        );
        assert_eq!(
            e(&["oid", "set", "GEN_LINK_SPEED", "--u32", "5000000000"]),
            "--u32: 5000000000 does not fit in 32 bits"
        );
        assert_eq!(
            e(&["oid", "set", "GEN_LINK_SPEED", "--hex", "f"]),
            "--hex: 1 hex digits is an odd number: every byte takes two"
        );
        assert_eq!(
            e(&["oid", "set", "GEN_LINK_SPEED", "--len", "4", "--u32", "1"]),
            "--len and --raw are for `oid get`"
        );
        assert_eq!(e(&["oid", "names", "x"]), "unexpected argument \"x\"");
    }

    #[test]
    fn watch() {
        assert_eq!(ok(&["watch"]).command, Command::Watch(WatchArgs { count: None, timeout: None }));
        assert_eq!(
            ok(&["watch", "-c", "2", "-t", "10"]).command,
            Command::Watch(WatchArgs { count: Some(2), timeout: Some(Duration::from_secs(10)) })
        );
        assert_eq!(bad(&["watch", "--count", "x"]).1, "--count needs a number of events, not \"x\"");
        assert_eq!(bad(&["watch", "--hex"]).1, "unknown option --hex for `watch`");
    }

    #[test]
    fn arping() {
        let Command::Arping(a) = ok(&["arping", "10.0.0.1", "--source", "10.0.0.2"]).command else { panic!() };
        assert_eq!(
            a,
            ArpingArgs {
                target: Ipv4Addr::new(10, 0, 0, 1),
                source: Ipv4Addr::new(10, 0, 0, 2),
                count: 3,
                timeout: Duration::from_secs(1),
                interval: Duration::from_secs(1),
                vlan: None,
                src_mac: None,
            }
        );
        let Command::Arping(a) = ok(&[
            "arping",
            "--source=192.168.1.2",
            "192.168.1.1",
            "-c",
            "1",
            "-t",
            "0.2",
            "-i",
            "0",
            "--vlan",
            "7",
            "--src-mac",
            "02:00:00:00:00:07",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!((a.count, a.timeout, a.interval), (1, Duration::from_millis(200), Duration::ZERO));
        assert_eq!((a.vlan, a.src_mac), (Some(Tci(7)), Some(MacAddr([2, 0, 0, 0, 0, 7]))));
        let e = |args: &[&str]| bad(args).1;
        assert_eq!(
            e(&["arping"]),
            "which address? give the target IPv4 address, like `arping 10.0.0.1 --source 10.0.0.2`"
        );
        assert_eq!(e(&["arping", "10.0.0.1"]), "--source IP is required: the address the request comes from");
        assert_eq!(e(&["arping", "host", "--source", "10.0.0.2"]), "\"host\" is not an IPv4 address");
        assert_eq!(e(&["arping", "10.0.0.1", "--source", "x"]), "--source needs an IPv4 address, not \"x\"");
        assert_eq!(e(&["arping", "10.0.0.1", "10.0.0.3", "--source", "10.0.0.2"]), "unexpected argument \"10.0.0.3\"");
        assert_eq!(e(&["arping", "10.0.0.1", "--source", "10.0.0.2", "-t", "0"]), "--timeout must be more than 0");
        assert_eq!(e(&["arping", "10.0.0.1", "--source", "10.0.0.2", "-c", "0"]), "--count must be at least 1");
    }

    #[test]
    fn hyphen_arguments_after_double_dash() {
        // `--` ends the options; a lone `-` is an argument.
        let Command::Send(s) = ok(&["send", "--ethertype", "arp", "--", "00"]).command else { panic!() };
        assert_eq!(s.data, Data::Hex(vec![0]));
        let Command::Recv(r) = ok(&["recv", "--pcapng", "-"]).command else { panic!() };
        assert_eq!(r.pcapng.as_deref(), Some("-"));
    }
}
