//! PnP calls of a test on one adapter from several threads at once go one
//! after the other (`ndis::PnpGate`), as NDIS sends a miniport's PnP
//! events: the driver never gets a second event while it is in the
//! first, each call finds the state the one before it left (and is
//! refused for it, or goes), and the simulation unloads clean.

use ndisim::*;
use rawnic_tests::drv::{finish, open, start_with};

/// What one of the racing threads did.
fn act(sim: &Sim, a: AdapterId, which: usize) -> Result<(), SimError> {
    match which % 5 {
        0 | 1 => sim.pause(a),
        2 => sim.restart(a, &RestartSpec::default()),
        3 => sim.unbind(a),
        _ => sim.set_power(a, if which % 2 == 0 { 4 } else { 1 }),
    }
}

/// Three threads pause, restart, unbind or power one adapter at once, in
/// forty rounds, free-running and under the deterministic scheduler (its
/// threads those of `run_actors`): no verifier violation, and every
/// failure is a refusal for the state.
#[test]
fn pnp_calls_on_one_adapter_from_several_threads_go_one_at_a_time() {
    for round in 0..40usize {
        let sim = start_with(&["null"], |b| if round % 2 == 0 { b } else { b.deterministic(round as u64) });
        let a = AdapterId(0);
        let (h, _) = open(&sim, 0, rawnic_proto::filter::DEFAULT, &[]);
        let results = std::sync::Mutex::new(Vec::new());
        let (s, r) = (&sim, &results);
        let actors: Vec<Box<dyn FnOnce() + Send + '_>> = (0..3)
            .map(|i| {
                let f: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
                    // Not under the lock: a thread of the deterministic
                    // scheduler must not block on the host's locks.
                    let done = act(s, a, round * 3 + i);
                    r.lock().unwrap().push(done)
                });
                f
            })
            .collect();
        sim.run_actors(actors);
        for res in results.into_inner().unwrap() {
            assert!(matches!(res, Ok(()) | Err(SimError::State(_))), "round {round}: {res:?}");
        }
        let _ = sim.set_power(a, 1);
        let _ = sim.bind(a);
        let _ = sim.restart(a, &RestartSpec::default());
        h.close();
        finish(sim);
    }
}
