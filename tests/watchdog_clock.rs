//! ndisim's watchdogs, and the harness's waits for IRPs, count the time
//! the process could run, not wall time (a loaded machine is not a hung
//! driver). A process, or the virtual machine under it, stopped for longer
//! than a watchdog's time must not trip them when it goes on: the first
//! thread to look at the clock after the stop may run before the heartbeat
//! that takes the stop off it. (Seen once in the explorer: a set-power
//! pended beside a stalled OID call, and the stalled call, both ran out at
//! the same instant.)

use ndisim::{InjectOpts, Sim};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use std::time::Duration;

/// Stops this whole process for 3 s from a child shell: longer than the
/// 2 s watchdog of `sim()`. Returns once the stop began (a moment after
/// the call).
fn stop_the_process_for_3_s() -> std::process::Child {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -STOP {}; sleep 3; kill -CONT {}", std::process::id(), std::process::id()))
        .spawn()
        .expect("sh")
}

fn sim(adapter: &str) -> Sim {
    rawnic_tests::rawnic_builder().adapter(adapter).watchdog(Duration::from_secs(2)).start().unwrap()
}

#[test]
fn a_pause_that_pends_across_a_process_stop_longer_than_the_watchdog_is_not_a_hang() {
    let sim = sim("null@completion=held");
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(send(&h, &[frame([2; 6], [2; 6], 0x88b5, 60, 0)]).accepted, 1);
    std::thread::scope(|s| {
        // The pause pends until the send comes back.
        let pausing = s.spawn(|| sim.pause(a));
        while entry(&sim, 0).state != state::PAUSING {
            std::thread::yield_now();
        }
        // The whole process stops for 3 s, more than the watchdog's 2 s;
        // the send comes back as soon as it goes on.
        let mut stop = stop_the_process_for_3_s();
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

#[test]
fn a_read_pending_across_a_process_stop_longer_than_the_watchdog_still_completes() {
    let sim = sim("null");
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let read = h.read_async(4096).unwrap();
    let f = frame(BROADCAST, [2; 6], 0x88b5, 60, 1);
    std::thread::scope(|s| {
        // The harness waits for the read, at most the watchdog's time.
        let reader = s.spawn(|| read.wait());
        std::thread::sleep(Duration::from_millis(100));
        let mut stop = stop_the_process_for_3_s();
        std::thread::sleep(Duration::from_millis(500));
        assert!(stop.wait().expect("the stop").success());
        // The frame comes as soon as the process goes on.
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
        let r = reader.join().unwrap().expect("the read completed, not given up on");
        assert_eq!(records(&r)[0].1, f);
    });
    h.close();
    finish(sim);
}
