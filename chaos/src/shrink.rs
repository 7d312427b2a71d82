//! Shrinking a failing schedule to a short action list.
//!
//! Delta debugging over each actor's list: remove chunks (halves, then
//! quarters, ... then single actions) and keep a removal when the smaller
//! schedule still fails the same way (a violated rule in common, or the
//! same kind of crash or hang). A deterministic schedule is tried once per
//! candidate; a free-running one up to `tries` times, since its failure may
//! need a lucky interleaving.

use crate::schedule::{Mode, Schedule};
use crate::supervise::Verdict;

/// Whether `v` fails "the same way" as `orig`.
pub fn same_failure(orig: &Verdict, v: &Verdict) -> bool {
    match (orig, v) {
        (Verdict::Failed(a), Verdict::Failed(b)) => {
            if !a.rules.is_empty() {
                a.rules.iter().any(|r| b.rules.contains(r))
            } else if !a.harness.is_empty() {
                !b.harness.is_empty()
            } else {
                !b.internal.is_empty()
            }
        }
        (Verdict::Crash { how: a, .. }, Verdict::Crash { how: b, .. }) => a == b,
        (Verdict::Hang { .. }, Verdict::Hang { .. }) => true,
        _ => false,
    }
}

/// Which list of a schedule.
#[derive(Debug, Clone, Copy)]
enum List {
    Pnp,
    Nic,
    Handles(usize),
    PnpMore(usize),
    NicMore(usize),
}

fn len_of(s: &Schedule, l: List) -> usize {
    match l {
        List::Pnp => s.pnp.len(),
        List::Nic => s.nic.len(),
        List::Handles(i) => s.handles[i].len(),
        List::PnpMore(i) => s.pnp_more[i].len(),
        List::NicMore(i) => s.nic_more[i].len(),
    }
}

fn without(s: &Schedule, l: List, from: usize, n: usize) -> Schedule {
    let mut c = s.clone();
    match l {
        List::Pnp => {
            c.pnp.drain(from..from + n);
        }
        List::Nic => {
            c.nic.drain(from..from + n);
        }
        List::Handles(i) => {
            c.handles[i].drain(from..from + n);
        }
        List::PnpMore(i) => {
            c.pnp_more[i].drain(from..from + n);
        }
        List::NicMore(i) => {
            c.nic_more[i].drain(from..from + n);
        }
    }
    c
}

/// Shrinks `s` (which failed with `orig`) with `run`, at most `budget`
/// runs. Returns the smallest failing schedule found and its verdict.
pub fn shrink(
    s: &Schedule,
    orig: &Verdict,
    budget: usize,
    tries: usize,
    run: &mut dyn FnMut(&Schedule) -> Verdict,
    progress: &mut dyn FnMut(&Schedule),
) -> (Schedule, Verdict) {
    let mut best = s.clone();
    let mut best_v = orig.clone();
    let mut runs = 0;
    let tries = if s.mode == Mode::Det { 1 } else { tries.max(1) };
    let mut fails = |cand: &Schedule, runs: &mut usize| -> Option<Verdict> {
        for _ in 0..tries {
            if *runs >= budget {
                return None;
            }
            *runs += 1;
            let v = run(cand);
            if same_failure(orig, &v) {
                return Some(v);
            }
        }
        None
    };
    let mut progressed = true;
    while progressed && runs < budget {
        progressed = false;
        let mut lists = vec![List::Pnp, List::Nic];
        lists.extend((0..best.handles.len()).map(List::Handles));
        lists.extend((0..best.pnp_more.len()).map(List::PnpMore));
        lists.extend((0..best.nic_more.len()).map(List::NicMore));
        for l in lists {
            let mut chunk = len_of(&best, l).max(1);
            while chunk >= 1 && runs < budget {
                let mut from = 0;
                while from < len_of(&best, l) && runs < budget {
                    let n = chunk.min(len_of(&best, l) - from);
                    let cand = without(&best, l, from, n);
                    if let Some(v) = fails(&cand, &mut runs) {
                        best = cand;
                        best_v = v;
                        progressed = true;
                        progress(&best);
                    } else {
                        from += n;
                    }
                }
                if chunk == 1 {
                    break;
                }
                chunk /= 2;
            }
        }
    }
    (best, best_v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Outcome;
    use crate::schedule::*;

    #[test]
    fn shrinks_to_the_actions_that_matter() {
        let o = crate::r#gen::GenOptions::plain(Mode::Det);
        let s = crate::r#gen::generate(11, o);
        // A fake failure: needs a pause of adapter 0 and a close anywhere.
        let pause = PnpAction::Pause { a: 0 };
        let mut s = s;
        s.pnp.push(pause.clone());
        s.handles[0].push(IoAction::Close { slot: 1 });
        let fail =
            Verdict::Failed(Outcome { rules: vec!["x".into()], violations: vec!["x".into()], ..Outcome::default() });
        let mut run = |c: &Schedule| {
            let has_pause = c.pnp.contains(&pause);
            let has_close = c.handles.iter().flatten().any(|a| matches!(a, IoAction::Close { .. }));
            if has_pause && has_close { fail.clone() } else { Verdict::Clean(Default::default()) }
        };
        let (small, v) = shrink(&s, &fail, 10_000, 1, &mut run, &mut |_| {});
        assert!(same_failure(&fail, &v));
        assert_eq!(small.pnp, vec![pause]);
        assert_eq!(small.nic.len(), 0);
        assert_eq!(small.handles.iter().map(Vec::len).sum::<usize>(), 1);
    }
}
