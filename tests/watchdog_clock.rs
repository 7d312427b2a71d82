//! ndisim's watchdogs count the time the process could run, not wall time
//! (a loaded machine is not a hung driver). A process, or the virtual
//! machine under it, stopped for longer than a watchdog's time must not
//! trip it when it goes on: the first thread to look at the clock after
//! the stop may run before the heartbeat that takes the stop off it.
//! (Seen once in the explorer: a set-power pended beside a stalled OID
//! call and its completion both ran out at the same instant.)

use ndisim::Sim;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use std::time::Duration;

#[test]
fn a_pause_that_pends_across_a_process_stop_longer_than_the_watchdog_is_not_a_hang() {
    let sim = Sim::builder()
        .driver(rawnic_tests::rawnic_sys())
        .adapter("null@completion=held")
        .watchdog(Duration::from_secs(2))
        .start()
        .unwrap();
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(send(&h, &[frame([2; 6], [2; 6], 0x88b5, 60, 0)]).accepted, 1);
    let pid = std::process::id();
    std::thread::scope(|s| {
        // The pause pends until the send comes back.
        let pausing = s.spawn(|| sim.pause(a));
        while entry(&sim, 0).state != state::PAUSING {
            std::thread::yield_now();
        }
        // The whole process stops for 3 s, more than the watchdog's 2 s;
        // the send comes back as soon as it goes on.
        let mut stop = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -STOP {pid}; sleep 3; kill -CONT {pid}"))
            .spawn()
            .expect("sh");
        std::thread::sleep(Duration::from_millis(500));
        assert!(stop.wait().expect("the stop").success());
        sim.release_sends(a, None).unwrap();
        let r = pausing.join().unwrap();
        assert!(r.is_ok(), "the pause: {r:?}");
    });
    sim.restart(a, &Default::default()).unwrap();
    h.close();
    finish(sim);
}
