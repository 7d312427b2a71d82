//! Running many schedules in worker processes.
//!
//! A schedule can end the process that runs it: a bug check, a fault in
//! driver code, heap corruption, or a hang. So schedules run in worker
//! processes (`rawnic-chaos worker`), several at once, a batch of seeds per
//! worker; the supervisor reads each result as a line of JSON, and when a
//! worker dies or stops answering it records the seed it was running as a
//! crash or a hang, and starts a new worker for the rest of the batch.

use crate::run::Outcome;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a schedule ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "one verdict a schedule, moved a few times: boxing the outcome would only add a layer to every match"
)]
pub enum Verdict {
    /// Nothing wrong, and what the schedule did (a run that did nothing is
    /// clean too: callers check that the runs of a mode did real work).
    Clean(Activity),
    /// Verifier violations, internal errors or harness findings.
    Failed(Outcome),
    /// The worker died: exit status or signal, and the end of its stderr.
    Crash { how: String, stderr: String },
    /// No step for a whole time limit (or no result within five): how
    /// long it ran, how long since its last step, and the worker's thread
    /// stacks then (when gdb is there to take them).
    Hang {
        after: Duration,
        #[serde(default)]
        still: Duration,
        stacks: String,
    },
}

/// What a clean schedule did: enough to tell a mode that tests something
/// from one that silently does nothing (as low resources once did, when
/// every bind failed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Requests completed, frames read back intact by ReadFile.
    pub completions: u64,
    pub frames_read: u64,
    /// Rx descriptors and zero-copy completions taken from rings.
    pub ring_rx: u64,
    pub ring_tx: u64,
    /// Allocation failures the low-resources simulation injected.
    pub alloc_failures: u64,
    /// Allocations counted for `--fail-nth` (`Outcome::allocations`).
    #[serde(default)]
    pub allocations: u64,
    /// The rarer things Windows allows that it met.
    #[serde(default)]
    pub edges: crate::run::Edges,
}

impl Activity {
    pub fn of(o: &Outcome) -> Self {
        Activity {
            completions: o.completions,
            frames_read: o.frames_read,
            ring_rx: o.ring_rx,
            ring_tx: o.ring_tx,
            alloc_failures: o.alloc_failures,
            allocations: o.allocations,
            edges: o.edges,
        }
    }

    /// Adds what `v` did, if it is clean.
    pub fn add(&mut self, v: &Verdict) {
        if let Verdict::Clean(a) = v {
            *self += *a;
        }
    }

    /// The sum of the clean verdicts' activity.
    pub fn total<'a>(vs: impl IntoIterator<Item = &'a Verdict>) -> Activity {
        let mut t = Activity::default();
        for v in vs {
            t.add(v);
        }
        t
    }
}

impl std::ops::AddAssign for Activity {
    fn add_assign(&mut self, a: Activity) {
        self.completions += a.completions;
        self.frames_read += a.frames_read;
        self.ring_rx += a.ring_rx;
        self.ring_tx += a.ring_tx;
        self.alloc_failures += a.alloc_failures;
        self.allocations += a.allocations;
        self.edges += a.edges;
    }
}

impl Verdict {
    /// `Clean` or `Failed`, as `o` says.
    pub fn of(o: Outcome) -> Self {
        if o.failed() { Verdict::Failed(o) } else { Verdict::Clean(Activity::of(&o)) }
    }

    pub fn is_clean(&self) -> bool {
        matches!(self, Verdict::Clean(_))
    }

    /// A short name of the kind of failure, for grouping.
    pub fn class(&self) -> String {
        match self {
            Verdict::Clean(_) => "clean".into(),
            Verdict::Failed(o) => o.summary(),
            Verdict::Crash { how, .. } => format!("crash ({how})"),
            Verdict::Hang { .. } => "hang".into(),
        }
    }
}

/// What to run: a batch of seeds, each generated with `gen`.
#[derive(Debug, Clone)]
pub struct Job {
    pub seeds: Vec<u64>,
    pub opts: crate::GenOptions,
}

/// Where the worker binary and the driver are.
#[derive(Debug, Clone)]
pub struct Workers {
    pub exe: PathBuf,
    pub driver: PathBuf,
    /// Longest a schedule may go without a step (see `Watch`).
    pub limit: Duration,
    /// Stretch the limit by how oversubscribed the machine is (the load
    /// average per CPU, when above 1): a schedule's steps slow down with
    /// it. Off for tests of the limit itself.
    pub patient: bool,
    /// Processes at once.
    pub jobs: usize,
}

enum Line {
    Start(u64),
    /// The running schedule made a step (an action, a teardown stage).
    Alive,
    Result(u64, Box<Outcome>),
    Exit,
}

/// A schedule that takes this many limits in all is a hang even if it
/// still moves (a livelock of actions that each end).
const LIMITS_IN_ALL: u32 = 5;

/// The clock of a running schedule. It hangs when it makes no step for a
/// whole limit, or runs `LIMITS_IN_ALL` limits in all. An oversubscribed
/// machine slows every step of a schedule (a deterministic schedule's
/// hand-offs each wait for a CPU) but does not stop them; a deadlock
/// stops them. Neither the CPU time used (a deadlock uses none) nor the
/// time spent waiting for a CPU (not kept under every kernel) tells the
/// two apart as well. With `Workers::patient`, the limit also stretches
/// by the machine's load per CPU (in a run at load 15 to 35 on 2 CPUs
/// one det step took over a minute; replayed, the longest took 2.3 s).
#[derive(Debug, Clone, Copy)]
struct Watch {
    started: Instant,
    moved: Instant,
    patient: bool,
}

impl Watch {
    fn new(patient: bool) -> Self {
        let now = Instant::now();
        Watch { started: now, moved: now, patient }
    }

    /// How long until it counts as hung (at the machine's load now).
    fn left(&self, limit: Duration) -> Duration {
        let limit = if self.patient { limit.mul_f64(oversubscribed()) } else { limit };
        let still = limit.saturating_sub(self.moved.elapsed());
        let all = (limit * LIMITS_IN_ALL).saturating_sub(self.started.elapsed());
        still.min(all)
    }

    /// The hang found now: its times are taken at once, then `stacks` (gdb
    /// may take seconds to attach).
    fn hang(&self, stacks: impl FnOnce() -> String) -> Verdict {
        let (after, still) = (self.started.elapsed(), self.moved.elapsed());
        Verdict::Hang { after, still, stacks: stacks() }
    }
}

/// The 1-minute load average per CPU, at least 1 (1 where it cannot be
/// read).
fn oversubscribed() -> f64 {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse::<f64>().ok()))
        .unwrap_or(0.0);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (load / cpus).clamp(1.0, 64.0)
}

/// Reads a worker's lines onto `tx` until its stdout closes.
fn read_lines(stdout: impl Read, tx: mpsc::Sender<Line>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(s) = line.strip_prefix("START ") {
            let _ = tx.send(Line::Start(s.trim().parse().unwrap_or(0)));
        } else if line.starts_with("ALIVE") {
            let _ = tx.send(Line::Alive);
        } else if let Some(j) = line.strip_prefix("RESULT ") {
            if let Some((seed, o)) = j.split_once(' ') {
                if let (Ok(seed), Ok(o)) = (seed.parse(), serde_json::from_str::<Outcome>(o)) {
                    let _ = tx.send(Line::Result(seed, Box::new(o)));
                }
            }
        }
    }
    let _ = tx.send(Line::Exit);
}

/// The command line of a worker that runs `seeds` of `o` on `driver`.
pub fn worker_args(driver: &Path, o: &crate::GenOptions, seeds: &[u64]) -> Vec<String> {
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let mut a: Vec<String> = vec!["worker".into(), "--driver".into(), driver.display().to_string()];
    a.extend(["--mode", o.mode.name()].map(String::from));
    // Every generation option, so the worker's defaults do not matter.
    for (name, v) in [
        ("--lowres", o.lowres),
        ("--rings", o.rings),
        ("--jitter", o.jitter),
        ("--preempt", o.preempt),
        ("--parallel", u32::from(o.parallel)),
        ("--pct", o.pct),
        ("--swarm", o.swarm),
        ("--bind-status", o.bind_status),
        ("--old-ndis", o.old_ndis),
        ("--mixed-bursts", o.mixed_bursts),
        ("--random-programs", o.random_programs),
        ("--open-unbind", o.open_unbind),
        ("--fail-nth", o.fail_nth),
        ("--answer-on-arrival", o.answer_on_arrival),
        ("--twin", o.twin),
        ("--knobs", o.knobs),
        ("--points-after", o.points_after),
        ("--snaplens", o.snaplens),
    ] {
        a.extend([name.to_string(), v.to_string()]);
    }
    a.extend(["--seeds".into(), list.join(",")]);
    if o.special_pool {
        a.push("--special-pool".into());
    }
    if let Some(p) = o.profile {
        a.extend(["--profile".into(), p.name().to_string()]);
    }
    a
}

fn spawn(w: &Workers, job: &Job, seeds: &[u64]) -> std::io::Result<Child> {
    Command::new(&w.exe)
        .args(worker_args(&w.driver, &job.opts, seeds))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Every thread's stack of process `pid`, by gdb (empty without gdb).
pub(crate) fn stacks_of(pid: u32) -> String {
    let out = Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt 30"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("Thread") || (l.starts_with('#') && !l.contains(" in ?? ")))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) => String::new(),
    }
}

/// Resolves the `exe(+0xoffset) [0xaddress]` frames of a native backtrace
/// (ndisim's report of a host fault) to function and line, by addr2line
/// (the text stays as it is without it).
fn symbolize(exe: &Path, text: String) -> String {
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("rawnic-chaos");
    let offset = |l: &str| {
        let (module, rest) = l.split_once("(+0x")?;
        Path::new(module).file_name().filter(|m| *m == name)?;
        let (hex, _) = rest.split_once(')')?;
        usize::from_str_radix(hex, 16).ok()
    };
    let offsets: Vec<usize> = text.lines().filter_map(offset).collect();
    if offsets.is_empty() {
        return text;
    }
    let out = Command::new("addr2line")
        .arg("-f")
        .arg("-C")
        .arg("-i")
        .arg("-e")
        .arg(exe)
        .args(offsets.iter().map(|o| format!("{o:#x}")))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out else { return text };
    if !out.status.success() {
        return text;
    }
    let resolved = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = resolved.lines().collect();
    // -i may print several (function, place) pairs per address; keep them
    // all, after the raw frames.
    let pairs: Vec<String> = lines.chunks(2).map(|p| format!("    {}", p.join(" at "))).collect();
    format!("{text}\nresolved:\n{}", pairs.join("\n"))
}

fn how_it_ended(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(ndisim::EXIT_BUGCHECK), _) => "bug check".into(),
        (Some(ndisim::EXIT_DRIVER_FAULT), _) => "fault in driver code".into(),
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!(
            "signal {s}{}",
            match s {
                6 => " (SIGABRT: heap corruption?)",
                11 => " (SIGSEGV)",
                7 => " (SIGBUS)",
                _ => "",
            }
        ),
        _ => "unknown".into(),
    }
}

/// Runs one worker over `seeds` until it finishes or fails; returns the
/// verdicts it reached, in order (a crash or hang ends the list).
fn run_worker(w: &Workers, job: &Job, seeds: &[u64], on: &mut dyn FnMut(u64, &Verdict)) -> Vec<(u64, Verdict)> {
    let mut out = Vec::new();
    let mut child = match spawn(w, job, seeds) {
        Ok(c) => c,
        Err(e) => {
            let v = Verdict::Crash { how: format!("could not start {}: {e}", w.exe.display()), stderr: String::new() };
            on(seeds[0], &v);
            return vec![(seeds[0], v)];
        }
    };
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_tail = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    });
    let reader = std::thread::spawn(move || read_lines(stdout, tx));
    let mut current: Option<(u64, Watch)> = None;
    loop {
        let timeout = match current {
            Some((_, t)) => t.left(w.limit),
            None => w.limit,
        };
        match rx.recv_timeout(timeout) {
            Ok(Line::Start(s)) => current = Some((s, Watch::new(w.patient))),
            Ok(Line::Alive) => {
                if let Some((_, t)) = current.as_mut() {
                    t.moved = Instant::now();
                }
            }
            Ok(Line::Result(s, o)) => {
                current = None;
                let v = Verdict::of(*o);
                on(s, &v);
                out.push((s, v));
            }
            Ok(Line::Exit) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait();
                let tail = err_tail.join().unwrap_or_default();
                if let Some((s, _)) = current {
                    let how = st.map(how_it_ended).unwrap_or_else(|e| e.to_string());
                    let v = Verdict::Crash { how, stderr: symbolize(&w.exe, tail) };
                    on(s, &v);
                    out.push((s, v));
                }
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if current.is_some_and(|(_, t)| !t.left(w.limit).is_zero()) => {
                // The load grew since the wait began: more time.
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let v = current.map(|(s, t)| (s, t.hang(|| stacks_of(child.id()))));
                let _ = child.kill();
                let _ = child.wait();
                let _ = err_tail.join();
                if let Some((s, v)) = v {
                    on(s, &v);
                    out.push((s, v));
                }
                break;
            }
        }
    }
    let _ = reader.join();
    out
}

/// Runs `job`'s seeds on `w.jobs` workers; `on` hears of each verdict as it
/// comes. Returns every seed's verdict.
pub fn run_all(w: &Workers, job: &Job, on: &(dyn Fn(u64, &Verdict) + Sync)) -> Vec<(u64, Verdict)> {
    let batch = 16;
    let chunks: Vec<Vec<u64>> = job.seeds.chunks(batch).map(<[u64]>::to_vec).collect();
    let next = std::sync::Mutex::new(chunks.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..w.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(mut seeds) = next.lock().unwrap_or_else(|e| e.into_inner()).next() else { break };
                    while !seeds.is_empty() {
                        let mut f = |s: u64, v: &Verdict| on(s, v);
                        let done = run_worker(w, job, &seeds, &mut f);
                        let n = done.len();
                        let stopped =
                            done.last().is_some_and(|(_, v)| matches!(v, Verdict::Crash { .. } | Verdict::Hang { .. }));
                        results.lock().unwrap_or_else(|e| e.into_inner()).extend(done);
                        if n == 0 && !stopped {
                            // The worker died before it started anything.
                            let v = Verdict::Crash {
                                how: "the worker exited before its first schedule".into(),
                                stderr: String::new(),
                            };
                            on(seeds[0], &v);
                            results.lock().unwrap_or_else(|e| e.into_inner()).push((seeds[0], v));
                            seeds.remove(0);
                            continue;
                        }
                        seeds.drain(..n.min(seeds.len()));
                    }
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_else(|e| e.into_inner());
    r.sort_by_key(|(s, _)| *s);
    r
}

/// Runs one schedule file in a worker; the verdict.
pub fn run_file(w: &Workers, file: &Path) -> Verdict {
    run_file_points(w, file).0
}

/// Runs one schedule file in a worker; the verdict, and what its
/// deterministic scheduler did: the points of the systematic one
/// (`Schedule::bounded`) when it had one, and the trace (hash, switches).
pub fn run_file_points(w: &Workers, file: &Path) -> (Verdict, Option<Vec<u16>>, Option<(u64, u64)>) {
    let mut c = Command::new(&w.exe);
    c.arg("worker").arg("--driver").arg(&w.driver).arg("--schedule").arg(file);
    let mut child = match c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return (Verdict::Crash { how: e.to_string(), stderr: String::new() }, None, None),
    };
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_tail = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_lines(stdout, tx));
    let mut t = Watch::new(w.patient);
    loop {
        match rx.recv_timeout(t.left(w.limit)) {
            Ok(Line::Start(_)) => t = Watch::new(w.patient),
            Ok(Line::Alive) => t.moved = Instant::now(),
            Ok(Line::Result(_, mut o)) => {
                let _ = child.wait();
                let _ = err_tail.join();
                let (points, trace) = (o.points.take(), o.trace);
                return (Verdict::of(*o), points, trace);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !t.left(w.limit).is_zero() => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let v = t.hang(|| stacks_of(child.id()));
                let _ = child.kill();
                let _ = child.wait();
                return (v, None, None);
            }
            Ok(Line::Exit) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait();
                let tail = err_tail.join().unwrap_or_default();
                return (
                    Verdict::Crash {
                        how: st.map(how_it_ended).unwrap_or_else(|e| e.to_string()),
                        stderr: symbolize(&w.exe, tail),
                    },
                    None,
                    None,
                );
            }
        }
    }
}

/// The command that runs seed `seed` of options `o` again.
pub fn replay_cmd(seed: u64, o: crate::GenOptions) -> String {
    let mut c = format!("cargo make chaos -- --seed {seed} --schedules 1 --mode {}", o.mode.name());
    if o.lowres > 0 {
        c.push_str(&format!(" --lowres {}", o.lowres));
    }
    if o.fail_nth > 0 {
        c.push_str(&format!(" --fail-nth {}", o.fail_nth));
    }
    if o.answer_on_arrival > 0 {
        c.push_str(&format!(" --answer-on-arrival {}", o.answer_on_arrival));
    }
    if o.special_pool {
        c.push_str(" --special-pool");
    }
    if let Some(p) = o.profile {
        c.push_str(&format!(" --profile {}", p.name()));
    }
    if o.jitter > 0 {
        c.push_str(&format!(" --jitter {}", o.jitter));
    }
    if o.preempt > 0 {
        c.push_str(&format!(" --preempt {}", o.preempt));
    }
    if o.parallel > 1 {
        c.push_str(&format!(" --parallel {}", o.parallel));
    }
    c.push_str(&format!(" --rings {}", o.rings));
    if o.mode == crate::schedule::Mode::Det {
        c.push_str(&format!(" --pct {}", o.pct));
    }
    c.push_str(&format!(" --swarm {}", o.swarm));
    if o.bind_status != crate::r#gen::BIND_STATUS_PER_MILLE {
        c.push_str(&format!(" --bind-status {}", o.bind_status));
    }
    if o.old_ndis != crate::r#gen::OLD_NDIS_PER_MILLE {
        c.push_str(&format!(" --old-ndis {}", o.old_ndis));
    }
    if o.mixed_bursts != crate::r#gen::MIXED_BURSTS_PER_MILLE {
        c.push_str(&format!(" --mixed-bursts {}", o.mixed_bursts));
    }
    if o.random_programs != crate::r#gen::RANDOM_PROGRAMS_PER_MILLE {
        c.push_str(&format!(" --random-programs {}", o.random_programs));
    }
    if o.open_unbind != crate::r#gen::OPEN_UNBIND_PER_MILLE {
        c.push_str(&format!(" --open-unbind {}", o.open_unbind));
    }
    if o.mode == crate::schedule::Mode::Det && o.twin != crate::r#gen::TWIN_PER_MILLE {
        c.push_str(&format!(" --twin {}", o.twin));
    }
    if o.knobs != crate::r#gen::KNOBS_PER_CENT {
        c.push_str(&format!(" --knobs {}", o.knobs));
    }
    if o.points_after != crate::r#gen::POINTS_AFTER_PER_MILLE {
        c.push_str(&format!(" --points-after {}", o.points_after));
    }
    if o.snaplens != crate::r#gen::SNAPLENS_PER_MILLE {
        c.push_str(&format!(" --snaplens {}", o.snaplens));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::symbolize;
    use std::path::Path;

    /// Seed `seed` of `o` goes to workers and into its replay command
    /// with `option value`; `quiet` (another value of that option) goes
    /// without it in the replay command.
    fn carried(o: crate::GenOptions, seed: u64, option: &str, value: &str, quiet: crate::GenOptions) {
        let a = super::worker_args(Path::new("rawnic.sys"), &o, &[seed]);
        assert!(a.windows(2).any(|w| w[0] == option && w[1] == value), "{a:?}");
        assert!(super::replay_cmd(seed, o).contains(&format!(" {option} {value}")));
        assert!(!super::replay_cmd(seed, quiet).contains(option));
    }

    fn det() -> crate::GenOptions {
        crate::GenOptions::plain(crate::schedule::Mode::Det)
    }

    #[test]
    fn workers_and_replays_get_the_refused_allocations() {
        let o = crate::GenOptions { fail_nth: 125, ..det() };
        carried(o, 170_000_000, "--fail-nth", "125", crate::GenOptions { fail_nth: 0, ..o });
    }

    #[test]
    fn workers_and_replays_get_the_twins() {
        let o = crate::GenOptions { twin: 1000, ..det() };
        // The default goes without saying, and free schedules have none.
        carried(o, 191_000_000, "--twin", "1000", crate::GenOptions { twin: crate::r#gen::TWIN_PER_MILLE, ..o });
        let free = crate::GenOptions { mode: crate::schedule::Mode::Free, ..o };
        assert!(!super::replay_cmd(191_000_000, free).contains("--twin"));
    }

    #[test]
    fn workers_and_replays_get_the_knobs() {
        let o = crate::GenOptions { knobs: 250, ..det() };
        carried(o, 190_000_000, "--knobs", "250", crate::GenOptions { knobs: crate::r#gen::KNOBS_PER_CENT, ..o });
    }

    #[test]
    fn workers_and_replays_get_the_points_after_exports() {
        let o = crate::GenOptions { points_after: 1000, ..det() };
        let quiet = crate::GenOptions { points_after: crate::r#gen::POINTS_AFTER_PER_MILLE, ..o };
        carried(o, 181_000_000, "--points-after", "1000", quiet);
    }

    #[test]
    fn frames_of_other_modules_stay_as_they_are() {
        let text = "*** ndisim: HOST FAULT\n/lib/x86_64-linux-gnu/libc.so.6(+0x3c050)[0x7f404f218050]".to_string();
        assert_eq!(symbolize(Path::new("/x/rawnic-chaos"), text.clone()), text);
    }

    #[test]
    fn frames_of_the_worker_are_resolved() {
        // This test binary stands in for the worker; any offset inside it
        // resolves to some function (addr2line prints ?? for none).
        let exe = std::env::current_exe().expect("test binary");
        let text = format!("{}(+0x1000)[0x55d0]", exe.display());
        let out = symbolize(&exe, text.clone());
        if std::process::Command::new("addr2line").arg("--version").output().is_ok() {
            assert!(out.starts_with(&text) && out.contains("\nresolved:\n    "), "{out}");
        } else {
            assert_eq!(out, text);
        }
    }
}
