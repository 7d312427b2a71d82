//! rawnicctl's command line, declared with clap: the global options and
//! the commands (`Line`, what clap reads), then the checks clap cannot
//! express, which give each command its typed arguments (`Command`, what
//! runs). The arguments of the commands that need such checks are in their
//! own files; the value parsers are in `values`. Every mistake is a clap
//! error: printed with the command's usage, exit status 2.

mod oid;
mod plain;
mod recv;
mod ring;
mod send;
pub mod values;

use crate::json::{self, Shape};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;
use rawnic_client::ENV_DEVICE;
use std::ffi::OsString;
use std::fmt::Display;

pub use oid::OidArgs;
pub use plain::{ArpingArgs, SelftestArgs, WaitArgs, WatchArgs};
pub use recv::RecvArgs;
pub use send::{Data, Header, SendArgs};

const AFTER_LONG_HELP: &str = "\
JSON: with --json, a command prints JSON values, one per line; `rawnicctl help COMMAND` lists
the fields of each.

Completions: `rawnicctl completions bash` (or zsh, fish, powershell, elvish) prints a script
for the shell to load.

Exit status: 0 success, 1 failure, 2 bad arguments.";

/// The whole command line, as clap reads it.
#[derive(Debug, Parser)]
#[command(
    name = "rawnicctl",
    version,
    about = "Raw Ethernet access through the rawnic driver",
    after_long_help = AFTER_LONG_HELP
)]
struct Line {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<CommandLine>,
}

/// The options every command takes, before or after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The control device: \\.\RawNic (the default on Windows), or unix:SOCKET for ndisim's bridge
    #[arg(short, long, global = true, env = ENV_DEVICE, hide_env_values = true, value_name = "PATH|unix:SOCKET")]
    pub device: Option<String>,
    /// Whether `device` came from `RAWNIC_DEVICE` rather than `--device`.
    #[arg(skip)]
    pub device_from_env: bool,
    /// The adapter: its name, or its index in `rawnicctl list`
    #[arg(short, long, global = true, value_name = "NAME|INDEX", value_parser = values::adapter)]
    pub adapter: Option<String>,
    /// Machine-readable output: one JSON value per line (`rawnicctl help COMMAND` lists the fields)
    #[arg(long, global = true)]
    pub json: bool,
    /// Show progress and the live rate on stderr even when it is not a terminal
    #[arg(long, global = true)]
    pub progress: bool,
}

/// The commands, as clap reads them.
#[derive(Debug, Subcommand)]
enum CommandLine {
    /// List the adapters rawnic is bound to
    ///
    /// Lists every binding: its index (for --adapter), name, description, state, link, MTU, MAC
    /// address, packet filter and open handles.
    #[command(after_long_help = json::help(&[json::Binding::DOC]))]
    List,
    /// Show the driver's version and wire format
    ///
    /// Asks the driver for its version, its wire-format version and its batch limit.
    #[command(after_long_help = json::help(&[json::Version::DOC]))]
    Version,
    /// Wait until NDIS has finished binding the adapters
    ///
    /// Waits until NDIS reports that the bindings present at start-up are complete, and prints
    /// how many there are.
    #[command(after_long_help = json::help(&[json::Bindings::DOC]))]
    Wait(WaitArgs),
    /// Check an installation: versions, bindings, OIDs, a send and receive, counters
    ///
    /// Checks, on every adapter rawnic is bound to (or the one --adapter names): that the driver's
    /// wire format matches rawnicctl's, that the binding is running, that handles open, that OID
    /// queries answer, that N frames (EtherType 0x88b5, broadcast) sent on one handle arrive on a
    /// second one (no peer is needed: rawnic hands a handle's sends to the others), and that the
    /// counters agree. Prints PASS or FAIL for each step; the exit status is 1 if any failed.
    #[command(after_long_help = json::help(&[json::Step::DOC, json::Summary::DOC]))]
    Selftest(SelftestArgs),
    /// Send frames
    ///
    /// Sends a frame COUNT times. The frame is given in hex (spaces, ':' and '-' between bytes are
    /// ignored; several HEX arguments are joined) or read from a file. With --dst, --src or
    /// --ethertype, that data is the payload and rawnicctl builds the Ethernet header.
    #[command(after_long_help = json::help(&[json::Sent::DOC]))]
    Send(send::SendLine),
    /// Receive frames: print them, or write a pcapng file
    ///
    /// Opens the adapter and prints the frames it receives, or writes them to a pcapng file that
    /// Wireshark, tshark and `tcpdump -r` read. Stops after --count frames or --timeout seconds;
    /// with both, fewer than COUNT frames in time is a failure (exit status 1).
    #[command(after_long_help = json::help(&[json::Frame::DOC, json::Capture::DOC]))]
    Recv(recv::RecvLine),
    /// Compile a filter expression into a capture program, and print it
    ///
    /// Compiles a filter expression (pcap-filter(7), as tcpdump takes it: 'udp port 53') into the
    /// classic BPF program `recv --expr` has the driver run, and prints it as `tcpdump -ddd` does:
    /// the count, then `code jt jf k` per instruction (what `recv --program` reads). The words of
    /// the expression may be given as one argument or several. No device is opened.
    #[command(after_long_help = json::help(&[json::Program::DOC]))]
    Compile {
        /// The filter expression
        #[arg(value_name = "EXPR", required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Query or set an OID on the adapter
    ///
    /// OID is a name (OID_GEN_LINK_SPEED, or GEN_LINK_SPEED) or a number (0x00010107).
    Oid {
        #[command(subcommand)]
        command: oid::OidLine,
    },
    /// Show the handle's and the binding's counters
    ///
    /// Opens the adapter (receiving nothing) and prints the binding's counters and the new
    /// handle's own.
    #[command(after_long_help = json::help(&[json::Stats::DOC, json::Counters::DOC]))]
    Stats,
    /// Print link and binding events as they happen
    ///
    /// Prints events as the driver reports them: link up and down, pause, restart, unbind and
    /// bind. With --adapter, opens that adapter (receiving nothing) and shows only its events.
    #[command(after_long_help = json::help(&[json::Event::DOC]))]
    Watch(WatchArgs),
    /// Send ARP requests and time the replies
    ///
    /// Asks who has the IPv4 address TARGET, from --source and the adapter's MAC, waits for the
    /// matching reply and prints the replying MAC and the round-trip time; --count times. Fails
    /// (exit status 1) if no reply comes.
    #[command(after_long_help = json::help(&[json::Reply::DOC, json::NoReply::DOC]))]
    Arping(ArpingArgs),
    /// Print a shell's completion script for rawnicctl
    ///
    /// Prints the script that makes SHELL complete rawnicctl's commands, options and their
    /// values. For example, for bash: `rawnicctl completions bash > ~/.local/share/bash-completion/completions/rawnicctl`;
    /// for PowerShell: `rawnicctl completions powershell | Out-String | Invoke-Expression` in the profile.
    Completions {
        /// The shell
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

/// A command with its arguments checked: what rawnicctl runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// No command: rawnicctl's help.
    Help,
    List,
    Version,
    Wait(WaitArgs),
    Selftest(SelftestArgs),
    Send(SendArgs),
    Recv(RecvArgs),
    /// `compile`: the expression, its words joined by spaces.
    Compile(String),
    Oid(OidArgs),
    Stats,
    Watch(WatchArgs),
    Arping(ArpingArgs),
    Completions(Shell),
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::List => "list",
            Command::Version => "version",
            Command::Wait(_) => "wait",
            Command::Selftest(_) => "selftest",
            Command::Send(_) => "send",
            Command::Recv(_) => "recv",
            Command::Compile(_) => "compile",
            Command::Oid(_) => "oid",
            Command::Stats => "stats",
            Command::Watch(_) => "watch",
            Command::Arping(_) => "arping",
            Command::Completions(_) => "completions",
        }
    }
}

/// A mistake clap cannot see: its kind and the sentence that says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    pub kind: ErrorKind,
    pub msg: String,
}

impl Mistake {
    /// Something needed is missing.
    fn missing(msg: impl Into<String>) -> Self {
        Mistake { kind: ErrorKind::MissingRequiredArgument, msg: msg.into() }
    }

    /// A value, or values together, that cannot work.
    fn invalid(msg: impl Into<String>) -> Self {
        Mistake { kind: ErrorKind::ValueValidation, msg: msg.into() }
    }
}

impl CommandLine {
    /// The typed command, or the mistake and the command path it is in.
    fn check(self) -> Result<Command, (Vec<&'static str>, Mistake)> {
        Ok(match self {
            CommandLine::List => Command::List,
            CommandLine::Version => Command::Version,
            CommandLine::Wait(a) => Command::Wait(a),
            CommandLine::Selftest(a) => Command::Selftest(a),
            CommandLine::Send(a) => Command::Send(a.check().map_err(|m| (vec!["send"], m))?),
            CommandLine::Recv(a) => Command::Recv(a.check().map_err(|m| (vec!["recv"], m))?),
            CommandLine::Compile { words } => Command::Compile(words.join(" ")),
            CommandLine::Oid { command } => {
                let sub = command.name();
                Command::Oid(command.check().map_err(|m| (vec!["oid", sub], m))?)
            }
            CommandLine::Stats => Command::Stats,
            CommandLine::Watch(a) => Command::Watch(a),
            CommandLine::Arping(a) => Command::Arping(a),
            CommandLine::Completions { shell } => Command::Completions(shell),
        })
    }
}

/// What to run: the global options and the command.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub global: Global,
    pub command: Command,
}

/// rawnicctl's clap command: its options, commands, help and completions.
pub fn command() -> clap::Command {
    Line::command()
}

/// Reads the command line (the program's name first). `--help` and
/// `--version` come back as errors of their kind, which print to stdout
/// with exit status 0.
pub fn parse<I, T>(argv: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(argv)?;
    let line = Line::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    let mut global = line.global;
    global.device_from_env = matches.value_source("device") == Some(ValueSource::EnvVariable);
    if global.device.as_deref() == Some("") {
        if !global.device_from_env {
            return Err(cmd.error(ErrorKind::InvalidValue, "--device needs a path, not an empty string"));
        }
        // An empty RAWNIC_DEVICE names no device, as if it were not set.
        (global.device, global.device_from_env) = (None, false);
    }
    let command = match line.command {
        None => Command::Help,
        Some(c) => c.check().map_err(|(path, m)| usage_error(&path, m.kind, m.msg))?,
    };
    Ok(Invocation { global, command })
}

/// A usage error of the command at `path` (`["oid", "set"]`; empty for
/// rawnicctl itself): the sentence, then the command's usage.
pub fn usage_error(path: &[&str], kind: ErrorKind, msg: impl Display) -> clap::Error {
    let mut root = command();
    root.build();
    let mut cmd = &mut root;
    for name in path {
        cmd = cmd.find_subcommand_mut(name).expect("a command of rawnicctl");
    }
    cmd.error(kind, msg)
}

#[cfg(test)]
mod tests;
