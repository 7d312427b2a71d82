//! What the commands share: opening the device, choosing the adapter, the
//! failure type, output (text and JSON), times, and the progress line.

use crate::cli::{self, Global};
use clap::error::ErrorKind;
use rawnic_client::{Binding, Device, DevicePath, ENV_DEVICE, Error, Report};
use serde::Serialize;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Why a command failed: bad arguments (a clap error: exit status 2; help
/// and `--version` come this way too, with 0) or anything else (exit
/// status 1) — or it stopped because whoever read its output went away
/// (`rawnicctl recv | head`), which ends it quietly, like SIGPIPE.
#[derive(Debug)]
pub enum Fail {
    Usage(clap::Error),
    Error(String),
    StdoutClosed,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        match e {
            Error::NoDevice => Fail::Usage(cli::usage_error(&[], ErrorKind::MissingRequiredArgument, e)),
            e => Fail::Error(Report(&e).to_string()),
        }
    }
}

impl Fail {
    /// The failure as one sentence, for a report that goes on (selftest's
    /// steps): a usage error without clap's "error:" and usage lines.
    pub fn sentence(&self) -> String {
        match self {
            Fail::Usage(e) => {
                let text = e.to_string();
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
                first.trim().strip_prefix("error:").unwrap_or(first).trim().to_owned()
            }
            Fail::Error(s) => s.clone(),
            Fail::StdoutClosed => "stdout was closed".into(),
        }
    }
}

/// A duration for people: `250 ms`, `1.5 s`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// What a failed write to stdout means.
pub fn stdout_failed(e: std::io::Error) -> Fail {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => Fail::StdoutClosed,
        _ => Fail::Error(format!("cannot write to stdout: {e}")),
    }
}

pub type Res<T = ()> = Result<T, Fail>;

/// The command being run, with the global options.
pub struct Ctx {
    pub global: Global,
    pub cmd: &'static str,
    /// Whether escape sequences on stderr are interpreted (a Windows
    /// console needs them turned on; see `StderrEscapes`).
    pub escapes: bool,
}

impl Ctx {
    /// A usage error of this command, found as it ran.
    pub fn usage(&self, msg: impl Display) -> Fail {
        Fail::Usage(cli::usage_error(&[self.cmd], ErrorKind::InvalidValue, msg))
    }

    /// Opens `--device` (or `RAWNIC_DEVICE`), else the default device.
    pub fn device(&self) -> Res<Device> {
        let opened = match &self.global.device {
            Some(p) if self.global.device_from_env => {
                // Say where a path that is no device path came from.
                DevicePath::parse(p).map_err(|e| match e {
                    Error::InvalidArgument(m) => Error::InvalidArgument(format!("{ENV_DEVICE}: {m}")),
                    e => e,
                })?;
                Device::open(p)
            }
            Some(p) => Device::open(p),
            None => Device::open_default(),
        };
        opened.map_err(|e| match e {
            Error::NoDevice => Fail::Usage(cli::usage_error(&[self.cmd], ErrorKind::MissingRequiredArgument, e)),
            e => e.into(),
        })
    }

    /// The adapter `--adapter` names; without it, the only one there is.
    pub fn adapter(&self, dev: &Device) -> Res<Binding> {
        let list = dev.list()?;
        resolve_adapter(&list, self.global.adapter.as_deref()).map_err(|e| match e {
            Resolve::Ambiguous(m) => self.usage(m),
            Resolve::NotFound(m) => Fail::Error(m),
        })
    }

    /// Prints a line on stdout.
    pub fn out(&self, line: impl Display) -> Res {
        let mut o = std::io::stdout().lock();
        writeln!(o, "{line}").map_err(stdout_failed)
    }

    /// Prints a value as one line of JSON on stdout.
    pub fn json(&self, value: &impl Serialize) -> Res {
        let line = serde_json::to_string(value).map_err(|e| Fail::Error(format!("cannot write JSON: {e}")))?;
        self.out(line)
    }

    /// Writes bytes to stdout as they are.
    pub fn write(&self, bytes: &[u8]) -> Res {
        let mut o = std::io::stdout().lock();
        o.write_all(bytes).and_then(|_| o.flush()).map_err(stdout_failed)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Resolve {
    /// The choice is missing or ambiguous (a usage error).
    Ambiguous(String),
    NotFound(String),
}

/// `1 frame`, `2 frames`.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Finds an adapter by index, exact name, name ignoring case, alias
/// ("Ethernet 2", ignoring case), or unique description.
pub fn resolve_adapter(list: &[Binding], sel: Option<&str>) -> Result<Binding, Resolve> {
    let Some(sel) = sel else {
        return match list {
            [] => Err(Resolve::NotFound("rawnic is bound to no adapter (see `rawnicctl list`)".into())),
            [only] => Ok(only.clone()),
            _ => Err(Resolve::Ambiguous(format!(
                "which adapter? rawnic is bound to {}: give --adapter NAME or INDEX (see `rawnicctl list`)",
                plural(list.len() as u64, "adapter", "adapters")
            ))),
        };
    };
    if !sel.is_empty() && sel.bytes().all(|b| b.is_ascii_digit()) {
        let i: usize = sel.parse().map_err(|_| Resolve::NotFound(format!("there is no adapter {sel}")))?;
        return list.get(i).cloned().ok_or_else(|| {
            Resolve::NotFound(match list.len() {
                0 => format!("there is no adapter {i}: rawnic is bound to no adapter"),
                n => format!(
                    "there is no adapter {i}: rawnic is bound to {} (0 to {}; see `rawnicctl list`)",
                    plural(n as u64, "adapter", "adapters"),
                    n - 1
                ),
            })
        });
    }
    if let Some(b) = list.iter().find(|b| b.name == sel) {
        return Ok(b.clone());
    }
    let folded: Vec<&Binding> = list.iter().filter(|b| b.name.eq_ignore_ascii_case(sel)).collect();
    if let [b] = folded.as_slice() {
        return Ok((*b).clone());
    }
    let by_alias: Vec<&Binding> =
        list.iter().filter(|b| b.alias.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(sel))).collect();
    if let [b] = by_alias.as_slice() {
        return Ok((*b).clone());
    }
    let by_desc: Vec<&Binding> = list.iter().filter(|b| b.description.eq_ignore_ascii_case(sel)).collect();
    match by_desc.as_slice() {
        [b] => Ok((*b).clone()),
        [] => Err(Resolve::NotFound(format!("no adapter is named {sel:?} (see `rawnicctl list`)"))),
        many => Err(Resolve::Ambiguous(format!(
            "{} adapters are described as {sel:?}; give the name or the index instead",
            many.len()
        ))),
    }
}

/// `s` in double quotes, escaped as in JSON (adapter descriptions and
/// names in text output).
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string is always JSON")
}

/// Nanoseconds since the Unix epoch as an RFC 3339 UTC time with
/// nanoseconds: `2024-05-01T12:00:00.123456789Z`.
pub fn utc(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let nanos = ts_ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = rawnic_client::rawnic_proto::time::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// How many frames are due `elapsed` seconds after the start at `rate`
/// frames a second: frame i is due at i / rate, so frame 0 at once. A rate
/// too high to pace (or a run long enough) saturates rather than wrapping.
pub fn frames_due(elapsed: f64, rate: f64) -> u64 {
    // `as` saturates: NaN to 0, anything past u64::MAX to u64::MAX.
    ((elapsed * rate).floor() as u64).saturating_add(1)
}

/// `12.3 k`, `4.56 M`.
fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0} ")
    }
}

/// What redraws the progress line in place: `line` over the previous one,
/// `drawn` characters long. Without escape sequences (a Windows console
/// that refuses them) spaces cover what the new line does not.
fn redraw(line: &str, drawn: usize, escapes: bool) -> String {
    if escapes {
        format!("\r{line}\x1b[K")
    } else {
        format!("\r{line}{:pad$}", "", pad = drawn.saturating_sub(line.chars().count()))
    }
}

/// What clears a progress line `drawn` characters long.
fn clear(drawn: usize, escapes: bool) -> String {
    if escapes { "\r\x1b[K".into() } else { format!("\r{:drawn$}\r", "") }
}

/// A progress line on stderr: counts and the live rate, redrawn a few
/// times a second on a terminal (or once a second as lines, with
/// `--progress` when stderr is not one).
pub struct Progress {
    enabled: bool,
    tty: bool,
    escapes: bool,
    verb: &'static str,
    total: Option<u64>,
    last: Instant,
    last_frames: u64,
    last_bytes: u64,
    /// Characters of the line on the terminal now (0: none).
    drawn: usize,
}

impl Progress {
    pub fn new(ctx: &Ctx, verb: &'static str, total: Option<u64>) -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            enabled: tty || ctx.global.progress,
            tty,
            escapes: ctx.escapes,
            verb,
            total,
            last: Instant::now(),
            last_frames: 0,
            last_bytes: 0,
            drawn: 0,
        }
    }

    /// Reports the totals so far; draws when enough time has passed.
    pub fn update(&mut self, frames: u64, bytes: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let dt = now - self.last;
        if dt < if self.tty { Duration::from_millis(250) } else { Duration::from_secs(1) } {
            return;
        }
        let secs = dt.as_secs_f64();
        let pps = (frames - self.last_frames) as f64 / secs;
        let bps = (bytes - self.last_bytes) as f64 * 8.0 / secs;
        let count = match self.total {
            Some(t) => format!("{frames}/{t}"),
            None => frames.to_string(),
        };
        let line = format!("{} {count} frames, {}frames/s, {}bit/s", self.verb, si(pps), si(bps));
        let mut e = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the work.
        let _ = if self.tty { write!(e, "{}", redraw(&line, self.drawn, self.escapes)) } else { writeln!(e, "{line}") };
        let _ = e.flush();
        if self.tty {
            self.drawn = line.chars().count();
        }
        self.last = now;
        self.last_frames = frames;
        self.last_bytes = bytes;
    }

    /// Clears the line on a terminal.
    pub fn finish(&mut self) {
        if self.tty && self.drawn > 0 {
            let _ = write!(std::io::stderr(), "{}", clear(self.drawn, self.escapes));
            self.drawn = 0;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rawnic_client::MacAddr;

    /// A Running binding with link up, for tests.
    pub(crate) fn binding(index: usize, name: &str, desc: &str) -> Binding {
        Binding {
            index,
            id: index as u32 + 1,
            name: name.into(),
            alias: None,
            description: desc.into(),
            state: rawnic_client::BindingState::Running,
            link: rawnic_client::LinkState::Up,
            duplex: rawnic_client::Duplex::Full,
            mtu: 1500,
            xmit_speed: 0,
            rcv_speed: 0,
            mac: MacAddr::ZERO,
            packet_filter: rawnic_client::PacketFilter::NONE,
            open_handles: 0,
            supported_filters: rawnic_client::PacketFilter::NONE,
            refused_filters: rawnic_client::PacketFilter::NONE,
        }
    }

    #[test]
    fn adapters_resolve_by_index_name_and_description() {
        let mut list = vec![
            binding(0, "\\DEVICE\\{AAA}", "Intel NIC"),
            binding(1, "eth1", "Virtual"),
            binding(2, "eth2", "Virtual"),
        ];
        list[0].alias = Some("Ethernet 2".into());
        assert_eq!(resolve_adapter(&list, Some("ethernet 2")).unwrap().index, 0);
        assert_eq!(resolve_adapter(&list, Some("1")).unwrap().name, "eth1");
        assert_eq!(resolve_adapter(&list, Some("\\DEVICE\\{AAA}")).unwrap().index, 0);
        assert_eq!(resolve_adapter(&list, Some("\\device\\{aaa}")).unwrap().index, 0);
        assert_eq!(resolve_adapter(&list, Some("intel nic")).unwrap().index, 0);
        assert_eq!(
            resolve_adapter(&list, Some("3")),
            Err(Resolve::NotFound(
                "there is no adapter 3: rawnic is bound to 3 adapters (0 to 2; see `rawnicctl list`)".into()
            ))
        );
        assert_eq!(
            resolve_adapter(&list, Some("wlan0")),
            Err(Resolve::NotFound("no adapter is named \"wlan0\" (see `rawnicctl list`)".into()))
        );
        assert_eq!(
            resolve_adapter(&list, Some("virtual")),
            Err(Resolve::Ambiguous(
                "2 adapters are described as \"virtual\"; give the name or the index instead".into()
            ))
        );
        assert_eq!(
            resolve_adapter(&list, None),
            Err(Resolve::Ambiguous(
                "which adapter? rawnic is bound to 3 adapters: give --adapter NAME or INDEX (see `rawnicctl list`)"
                    .into()
            ))
        );
        assert_eq!(resolve_adapter(&list[..1], None).unwrap().index, 0);
        assert_eq!(
            resolve_adapter(&[], None),
            Err(Resolve::NotFound("rawnic is bound to no adapter (see `rawnicctl list`)".into()))
        );
        assert_eq!(
            resolve_adapter(&[], Some("0")),
            Err(Resolve::NotFound("there is no adapter 0: rawnic is bound to no adapter".into()))
        );
    }

    #[test]
    fn the_progress_line_is_redrawn_with_or_without_escapes() {
        assert_eq!(redraw("sent 10 frames", 0, true), "\rsent 10 frames\x1b[K");
        assert_eq!(clear(14, true), "\r\x1b[K");
        // Without escape sequences, spaces cover the longer line before.
        assert_eq!(redraw("sent 9", 0, false), "\rsent 9");
        assert_eq!(redraw("sent 9", 10, false), "\rsent 9    ");
        assert_eq!(redraw("sent 10 frames", 6, false), "\rsent 10 frames");
        assert_eq!(redraw("µs 1", 6, false), "\rµs 1  ");
        assert_eq!(clear(4, false), "\r    \r");
        assert!(!redraw("x", 5, false).contains('\x1b') && !clear(5, false).contains('\x1b'));
    }

    #[test]
    fn quotes_and_times() {
        assert_eq!(quoted("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(utc(1_709_251_199_123_456_789), "2024-02-29T23:59:59.123456789Z");
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(utc(4_102_444_800_000_000_000), "2100-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn frames_due_at_a_rate() {
        assert_eq!(frames_due(0.0, 10.0), 1);
        assert_eq!(frames_due(0.25, 10.0), 3);
        assert_eq!(frames_due(1.0, 0.5), 1);
        assert_eq!(frames_due(0.0, 1e300), 1);
        assert_eq!(frames_due(1e-9, 1e300), u64::MAX);
        assert_eq!(frames_due(f64::MAX, f64::MAX), u64::MAX);
    }

    #[test]
    fn failures_read_as_one_sentence() {
        let usage = Fail::from(Error::NoDevice).sentence();
        assert!(!usage.is_empty() && !usage.contains('\n') && !usage.starts_with("error"), "{usage}");
        assert!(!usage.contains("NoDevice"), "{usage}");
        assert_eq!(Fail::Error("the device is gone".into()).sentence(), "the device is gone");
        assert_eq!(Fail::StdoutClosed.sentence(), "stdout was closed");
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_secs(5)), "5 s");
    }
}
