//! Systematic exploration (`--systematic FILE`): one schedule, run
//! deterministically under ndisim's bounded scheduler
//! (`Strategy::Bounded`), with every set of deviations from its default
//! picks within a bound instead of picks drawn at random.
//!
//! The default is fixed: the running thread goes on until it waits (or
//! has run 256 picks in a row), then the next thread in creation order.
//! A deviation hands the baton, at one switch, to another thread that
//! could run. The first run (no deviation) says how many alternatives each
//! switch had; the explorer then runs each of them, one deviation a run,
//! which covers every schedule where one thread stops at any one of its
//! scheduling points while another goes on: the shape of most races
//! (a send overtaken by a pause, a close inside a completion). With
//! `--deviations 2` the remaining budget goes to pairs: a first deviation,
//! and a second at a later switch of that run. When a bound's runs
//! outnumber the budget, they are drawn evenly (seeded by the schedule's
//! seed), and the report says the bound was sampled, not covered.
//!
//! Each run is a worker process, as the random explorer's; a failing run
//! is saved as a schedule with its deviations (`bounded`), which
//! `--replay` runs again the same way.

use crate::schedule::{Mode, Schedule};
use crate::supervise::{Verdict, Workers, run_file_points};
use ndisim::rng::Rng;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What to explore.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Deviations per run at most: 1 or 2.
    pub deviations: u8,
    /// Runs at most, the first one included.
    pub budget: usize,
}

/// One run's deviations: (switch, which other candidate).
pub type Script = Vec<(u64, u32)>;

/// What an exploration did.
#[derive(Debug, Default)]
pub struct Explored {
    /// Switches of the run without deviations, and those with an
    /// alternative.
    pub switches: usize,
    pub branching: usize,
    /// Runs with one deviation there are, and how many of them ran.
    pub single: u64,
    pub single_run: usize,
    /// Runs with two deviations that ran.
    pub pairs_run: usize,
    /// Runs in all, the clean ones, and the distinct interleavings they
    /// were (by the scheduler's trace: a deviation that only lets a
    /// waiting thread look at its wait again changes nothing).
    pub runs: usize,
    pub clean: usize,
    pub distinct: usize,
    /// Each failing run: its deviations, verdict and saved schedule.
    pub failures: Vec<(Script, Verdict, Option<PathBuf>)>,
}

impl Explored {
    /// Whether every run within one deviation ran.
    pub fn covered_single(&self) -> bool {
        self.single_run as u64 == self.single
    }

    pub fn render(&self) -> String {
        format!(
            "systematic: {} switches, {} with an alternative; {} of {} single-deviation runs{}, {} two-deviation runs; {} runs ({} distinct interleavings), {} clean, {} failed",
            self.switches,
            self.branching,
            self.single_run,
            self.single,
            if self.covered_single() { " (all)" } else { " (sampled)" },
            self.pairs_run,
            self.runs,
            self.distinct,
            self.clean,
            self.failures.len()
        )
    }
}

/// `base` as the systematic scheduler runs it with `script`.
pub fn bounded(base: &Schedule, script: Script) -> Schedule {
    let mut s = base.clone();
    s.mode = Mode::Det;
    s.pct = None;
    // A free-running schedule with jitter had PnP events as prompt as NDIS
    // sends them (the next may come while the work item that completed
    // the last still runs): so does its deterministic run.
    s.prompt_pnp |= base.mode == Mode::Free && base.jitter > 0;
    s.bounded = Some(script);
    s
}

/// Runs `s` in a worker from a file in `dir` named `name`; its verdict and
/// points. The file stays when the run fails.
fn run(w: &Workers, dir: &Path, name: &str, s: &Schedule) -> RunResult {
    let script = s.bounded.clone().unwrap_or_default();
    let p = dir.join(name);
    let written = serde_json::to_string_pretty(s).ok().and_then(|j| std::fs::write(&p, j).ok());
    if written.is_none() {
        let v = Verdict::Crash { how: format!("could not write {}", p.display()), stderr: String::new() };
        return RunResult { script, verdict: v, points: None, trace: None, saved: None };
    }
    let (verdict, points, trace) = run_file_points(w, &p);
    let saved = if verdict.is_clean() {
        let _ = std::fs::remove_file(&p);
        None
    } else {
        Some(p)
    };
    RunResult { script, verdict, points, trace, saved }
}

/// One run's deviations, verdict, points and trace, and its schedule file
/// when it failed.
struct RunResult {
    script: Script,
    verdict: Verdict,
    points: Option<Vec<u16>>,
    trace: Option<(u64, u64)>,
    saved: Option<PathBuf>,
}

impl Explored {
    /// Counts `r`; gives back its points when it was clean.
    fn add(&mut self, r: RunResult, traces: &mut std::collections::HashSet<(u64, u64)>) -> Option<Vec<u16>> {
        self.runs += 1;
        if let Some(t) = r.trace {
            traces.insert(t);
            self.distinct = traces.len();
        }
        if r.verdict.is_clean() {
            self.clean += 1;
            r.points
        } else {
            self.failures.push((r.script, r.verdict, r.saved));
            None
        }
    }
}

/// Every single deviation `points` allows, in order.
fn singles(points: &[u16]) -> Vec<(u64, u32)> {
    points.iter().enumerate().flat_map(|(at, &n)| (0..u32::from(n)).map(move |k| (at as u64, k))).collect()
}

/// `n` of `all`, evenly spread from a seeded offset (all of them when
/// they fit).
fn spread<T: Copy>(all: &[T], n: usize, seed: u64) -> Vec<T> {
    if all.len() <= n {
        return all.to_vec();
    }
    let off = Rng::new(seed).below(all.len() as u64) as usize;
    (0..n).map(|i| all[(off + i * all.len() / n) % all.len()]).collect()
}

/// Explores `base` as `plan` says, with `w.jobs` runs at once; files in
/// `out`. `progress` hears each finished run's number.
pub fn explore(w: &Workers, base: &Schedule, plan: Plan, out: &Path, progress: &(dyn Fn(usize) + Sync)) -> Explored {
    let _ = std::fs::create_dir_all(out);
    let mut ex = Explored::default();
    let mut traces = std::collections::HashSet::new();
    let first = run(w, out, "base.json", &bounded(base, Vec::new()));
    let Some(points0) = ex.add(first, &mut traces) else { return ex };
    ex.switches = points0.len();
    ex.branching = points0.iter().filter(|&&n| n > 0).count();
    let all = singles(&points0);
    ex.single = all.len() as u64;
    let left = plan.budget.saturating_sub(1);
    // With pairs to run as well, singles take at most half the budget
    // unless they all fit.
    let n1 = if plan.deviations >= 2 && all.len() > left { left / 2 } else { left.min(all.len()) };
    let firsts = spread(&all, n1, base.seed);
    let results = run_batch(w, base, out, firsts.iter().map(|&d| vec![d]).collect(), progress, 1);
    ex.single_run = results.len();
    let mut second_pool: Vec<((u64, u32), Vec<u16>)> = Vec::new();
    for r in results {
        let first = r.script[0];
        if let Some(p) = ex.add(r, &mut traces) {
            second_pool.push((first, p));
        }
    }
    if plan.deviations >= 2 {
        let left = plan.budget.saturating_sub(ex.runs);
        let mut r = Rng::new(base.seed ^ 0x7061_6972_7300_0000);
        let mut pairs = Vec::new();
        for _ in 0..left {
            if second_pool.is_empty() {
                break;
            }
            let (first, points) = &second_pool[r.below(second_pool.len() as u64) as usize];
            let later: Vec<(u64, u32)> = singles(points).into_iter().filter(|&(at, _)| at > first.0).collect();
            if let Some(&second) = later.get(r.below(later.len().max(1) as u64) as usize) {
                pairs.push(vec![*first, second]);
            }
        }
        pairs.sort();
        pairs.dedup();
        let start = ex.runs;
        let results = run_batch(w, base, out, pairs, &|i| progress(start + i), 2);
        ex.pairs_run = results.len();
        for r in results {
            ex.add(r, &mut traces);
        }
    }
    ex
}

/// Runs every script, `w.jobs` at once.
fn run_batch(
    w: &Workers,
    base: &Schedule,
    out: &Path,
    scripts: Vec<Script>,
    progress: &(dyn Fn(usize) + Sync),
    bound: u8,
) -> Vec<RunResult> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(scripts.len()));
    std::thread::scope(|sc| {
        for _ in 0..w.jobs.max(1) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(script) = scripts.get(i) else { break };
                    let name = format!(
                        "dev{bound}-{}.json",
                        script.iter().map(|(a, k)| format!("{a}.{k}")).collect::<Vec<_>>().join("-")
                    );
                    let r = run(w, out, &name, &bounded(base, script.clone()));
                    results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_else(|e| e.into_inner());
    r.sort_by(|a, b| a.script.cmp(&b.script));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singles_list_every_alternative_of_every_switch() {
        assert_eq!(singles(&[0, 2, 0, 1]), vec![(1, 0), (1, 1), (3, 0)]);
        assert!(singles(&[0, 0]).is_empty());
    }

    #[test]
    fn spread_takes_all_that_fit_and_else_distinct_evenly_spaced_ones() {
        let all: Vec<u32> = (0..10).collect();
        assert_eq!(spread(&all, 20, 1), all);
        let some = spread(&all, 5, 7);
        let mut d = some.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 5, "{some:?}");
    }

    #[test]
    fn a_bounded_schedule_is_deterministic_and_keeps_its_actions() {
        let base = crate::r#gen::generate(5, crate::GenOptions::plain(Mode::Free));
        let b = bounded(&base, vec![(3, 1)]);
        assert_eq!(b.mode, Mode::Det);
        assert_eq!(b.pct, None);
        assert_eq!(b.bounded, Some(vec![(3, 1)]));
        assert_eq!(b.len(), base.len());
        // It goes through JSON as it is (a saved failure replays).
        let j = serde_json::to_string(&b).expect("json");
        let back: Schedule = serde_json::from_str(&j).expect("parse");
        assert_eq!(back.bounded, b.bounded);
    }
}
