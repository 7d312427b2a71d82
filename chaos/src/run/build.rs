//! The simulation a schedule runs in: ndisim's builder, given the
//! schedule's mode, scheduler, low-resources, refused allocations
//! (`fail_nth`), special pool, jitter, preemption, slow handlers, the
//! emulated NDIS version and processors, what comes during the
//! registration, late binds and adapters.

use super::RunConfig;
use crate::schedule::{Mode, Schedule};
use ndisim::{Sim, SimBuilder};

/// What rawnic.sys's safety-net lines contain (`safety_net!` in
/// `driver/src/kernel/debug.rs`: a broken invariant the driver caught and
/// survived): forbidden in every schedule (rule `forbidden-debug-line`).
pub const SAFETY_NET: &str = rawnic_proto::SAFETY_NET_LINE;

/// The builder of `s`'s simulation; `Err` says what in `s` ndisim cannot
/// take.
pub(super) fn builder(s: &Schedule, cfg: &RunConfig) -> Result<SimBuilder, String> {
    let mut b = Sim::builder().driver(&cfg.driver).watchdog(cfg.watchdog).forbid_debug_lines(&[SAFETY_NET]);
    if s.mode == Mode::Det {
        b = b.deterministic(s.seed);
        if let Some(p) = s.pct {
            b = b.strategy(ndisim::Strategy::Priorities { depth: p.depth, horizon: p.horizon });
        }
        if let Some(script) = &s.bounded {
            b = b.deviations(script.iter().map(|&(at, pick)| ndisim::Deviation { at, pick }).collect());
        }
        b = b.prompt_pnp(s.prompt_pnp);
    }
    if s.lowres > 0 {
        b = b.low_resources(s.lowres, s.seed ^ 0x10_5E5).low_resources_after_binds(s.lowres_after_binds);
    }
    // (A burst aimed at the body is aimed as the actors start.)
    if let Some(f) = s.fail_nth.filter(|f| !f.in_body) {
        b = b.fail_allocations_from(f.n, f.count);
    }
    if s.special_pool {
        b = b.special_pool(true);
    }
    if s.points_after {
        b = b.points_after_exports(true);
    }
    // The calls a stall may be aimed at (`PnpAction::StallCall`).
    if s.pnp.iter().any(|a| matches!(a, crate::schedule::PnpAction::StallCall { .. })) {
        b = b.count_calls(true);
    }
    if let Some(base) = cfg.image_base {
        b = b.image_base(base as usize);
    }
    if s.jitter > 0 && s.mode == Mode::Free {
        b = b.jitter(s.jitter, s.seed ^ 0x0071_77E5);
    }
    if s.preempt > 0 && s.mode == Mode::Free {
        b = b.preempt(s.preempt, s.seed ^ 0x5052_4545);
    }
    if let Some(w) = &s.slow {
        let names: Vec<&str> = w.handlers.iter().map(String::as_str).collect();
        match ndisim::slow::Slow::new(&names, w.per_mille, w.max_us, s.seed ^ 0x736C_6F77) {
            Ok(slow) => b = b.slow_handlers(slow),
            Err(e) => return Err(format!("the schedule's slow handlers: {e}")),
        }
    }
    if let Some((major, minor)) = s.ndis_version {
        b = b.ndis_version(major, minor);
    }
    if let Some(n) = s.cpus {
        b = b.cpus(n.into());
    }
    b = b.bind_during_registration(s.binds_in_registration).open_during_registration(s.open_in_registration);
    if s.late_binds {
        b = b.defer_binds(true);
    }
    for spec in &s.adapters {
        b = b.adapter(spec);
    }
    Ok(b)
}

/// A `DriverEntry` that failed under a schedule's refused allocations
/// (`Schedule::fail_nth`): clean iff it failed for want of memory
/// (`STATUS_INSUFFICIENT_RESOURCES` or `NDIS_STATUS_RESOURCES`) and left
/// nothing behind, as `tests/driver_fail_nth.rs` asks.
pub(super) fn failed_entry(st: i32, report: &ndisim::Report) -> super::Outcome {
    let mut harness = Vec::new();
    if ![rawnic_proto::NtStatus::INSUFFICIENT_RESOURCES.0, ndis_sys::NDIS_STATUS_RESOURCES].contains(&st) {
        harness.push(format!(
            "DriverEntry failed with {:#010x} under refused allocations, not for want of memory",
            st as u32
        ));
    }
    if !report.leaked_pool.is_empty() {
        harness.push(format!("the failed DriverEntry left pool blocks behind: {:?}", report.leaked_pool));
    }
    let (violations, rules, internal) = findings(report);
    super::Outcome {
        violations,
        rules,
        internal,
        harness,
        edges: super::Edges { refused_in_entry: 1, ..super::Edges::default() },
        ..super::Outcome::default()
    }
}

/// What a verifier report found: its violations, the rules they broke
/// (sorted) and ndisim's internal errors.
pub(super) fn findings(report: &ndisim::Report) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut rules: Vec<String> = report.rules().iter().map(|r| r.name().to_string()).collect();
    rules.sort();
    (report.violations.iter().map(|v| v.to_string()).collect(), rules, report.internal_errors.clone())
}

/// On an emulated Windows whose NDIS is `v`, rawnic must have registered
/// as NDIS 6.89 if NDIS takes it, else as 6.30 (`driver_offload`'s test
/// says why). Whether it did so as 6.30.
pub(super) fn older_ndis(c: &super::Ctx<'_>, v: (u8, u8)) -> bool {
    let want = if v >= (6, 89) { (6, 89) } else { (6, 30) };
    let got = c.sim.protocol_ndis_version();
    if got != Some(want) {
        c.problem(format!("on NDIS {}.{} rawnic registered as {got:?}, not {}.{}", v.0, v.1, want.0, want.1));
    }
    got == Some((6, 30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::r#gen::{GenOptions, generate};
    use crate::schedule::FailNth;

    /// A schedule's burst of refused allocations reaches the builder (its
    /// `Debug` is the only view of its fields), and one without none.
    #[test]
    fn the_refused_allocations_reach_the_builder() {
        let cfg = RunConfig::new("rawnic.sys");
        let o = GenOptions { fail_nth: 1000, ..GenOptions::plain(Mode::Det) };
        for seed in 170_000_000..170_000_020 {
            let s = generate(seed, o);
            let f = s.fail_nth.expect("every schedule gets a burst at 1000 per mille");
            let b = format!("{:?}", builder(&s, &cfg).unwrap());
            // (One aimed at the body is armed as the actors start.)
            let (n, count) = if f.in_body { (0, 0) } else { (f.n, f.count) };
            assert!(b.contains(&format!("fail_allocations: ({n}, {count})")), "seed {seed}: {b}");
            let none = Schedule { fail_nth: None, ..s.clone() };
            assert!(format!("{:?}", builder(&none, &cfg).unwrap()).contains("fail_allocations: (0, 0)"));
        }
        let s =
            Schedule { fail_nth: Some(FailNth { n: 7, count: 16, lasting: false, in_body: false }), ..generate(1, o) };
        assert!(format!("{:?}", builder(&s, &cfg).unwrap()).contains("fail_allocations: (7, 16)"));
    }

    /// A `DriverEntry` failed under refused allocations is clean only for
    /// want of memory (and with a clean report).
    #[test]
    fn a_driver_entry_failed_for_memory_is_clean_and_any_other_is_not() {
        let clean = ndisim::Report::default();
        let o = super::failed_entry(0xC000_009A_u32 as i32, &clean);
        assert!(!o.failed(), "{}", o.summary());
        assert_eq!(o.edges.refused_in_entry, 1);
        let o = super::failed_entry(0xC000_0001_u32 as i32, &clean);
        assert!(o.failed() && o.harness[0].contains("0xc0000001"), "{}", o.summary());
        let broken = ndisim::Report { internal_errors: vec!["x".into()], ..ndisim::Report::default() };
        assert!(super::failed_entry(0xC000_009A_u32 as i32, &broken).failed());
    }
}
