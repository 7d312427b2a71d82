//! A test's misuse of ndisim's API gets a clear answer, not a driver
//! blamed for what the test did.

use ndisim::*;
use rawnic_tests::drv::{finish, start_with};

/// A thread the deterministic scheduler does not run (a plain
/// `std::thread`, not one of `Sim::run_actors`) is refused at once with
/// a sentence saying so: its waits would be in real time, for threads
/// that move only when the scheduler lets them, and the driver would be
/// blamed for a pause that seemed never to end. The simulation is
/// untouched and unloads clean.
#[test]
fn a_thread_the_deterministic_scheduler_does_not_run_is_refused() {
    let sim = start_with(&["null"], |b| b.deterministic(3));
    let a = AdapterId(0);
    let h = sim.open().unwrap();
    let (paused, ioctl) = std::thread::scope(|s| {
        let p = s.spawn(|| sim.pause(a)).join();
        let i = s.spawn(|| h.ioctl(rawnic_proto::IOCTL_RAWNIC_GET_VERSION, &[], 64)).join();
        (p, i)
    });
    for (what, r) in [("Sim::pause", paused.err()), ("Handle::ioctl", ioctl.err())] {
        let msg = r.map(|e| {
            e.downcast_ref::<&str>()
                .map(|m| m.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        });
        assert!(
            msg.as_deref().is_some_and(|m| m.contains("a thread the deterministic scheduler does not run")),
            "{what}: {msg:?}"
        );
    }
    assert_eq!(sim.binding_state(a), BindingState::Running);
    sim.pause(a).unwrap();
    h.close();
    finish(sim);
}

/// The same calls from threads of `Sim::run_actors` are the scheduler's,
/// and go.
#[test]
fn the_threads_of_run_actors_may_call() {
    let sim = start_with(&["null"], |b| b.deterministic(3));
    let a = AdapterId(0);
    let h = sim.open().unwrap();
    let (s, hr) = (&sim, &h);
    sim.run_actors(vec![
        Box::new(move || s.pause(a).unwrap()),
        Box::new(move || assert_eq!(hr.ioctl(rawnic_proto::IOCTL_RAWNIC_GET_VERSION, &[], 64).status, 0)),
    ]);
    assert_eq!(sim.binding_state(a), BindingState::Paused);
    h.close();
    finish(sim);
}
