//! `Sim::stall_call`: a thread stopped right after a call it makes, before
//! its next instruction. The deterministic scheduler switches only at an
//! export's entry, so a driver that touches what it just handed over, with
//! no call in between, is never caught there by any seed; the stall opens
//! that window. Proven by the fixture `complete_then_touch`, which counts
//! in another handle's context right after completing that handle's
//! request (the completion lets the handle close, and its close frees the
//! context): under special pool the touch faults, but only with the stall,
//! or for some seeds once every export is a scheduling point after its
//! body too (`SimBuilder::points_after_exports`).

use ndisim::*;
use rawnic_tests::fixture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const FIXTURE: &str = "\\\\.\\Fixture";
const PEND: u32 = 0x0012_0000;
/// Completes the pended IOCTL, then counts in its context (the bug).
const COMPLETE_THEN_TOUCH: u32 = 0x0012_0000 | (1 << 2);
/// Counts first, then completes (clean).
const TOUCH_THEN_COMPLETE: u32 = 0x0012_0000 | (2 << 2);

/// The scenario, in a child process (a fault ends it): det seed `seed`,
/// special pool; handle A pends an IOCTL and closes as soon as it
/// completes, while handle B completes it with `code`; with a stall after
/// the first `IofCompleteRequest` inside the IOCTL dispatch when `stall`.
#[test]
fn call_stall_child() {
    let Some(args) = std::env::var_os("NDISIM_CALL_STALL_CHILD") else { return };
    let args: Vec<u64> = args.to_str().unwrap().split(',').map(|a| a.parse().unwrap()).collect();
    let (seed, code, stall, after, pct) = (args[0], args[1] as u32, args[2] == 1, args[3] == 1, args[4] == 1);
    let sim = Sim::builder()
        .driver(fixture("complete_then_touch"))
        .deterministic(seed)
        .points_after_exports(after)
        .strategy(if pct { Strategy::Priorities { depth: 2, horizon: 64 } } else { Strategy::Uniform })
        .special_pool(true)
        .watchdog(Duration::from_secs(5))
        .start()
        .unwrap();
    let a = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let b = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    if stall {
        sim.stall_call("IRP_MJ_DEVICE_CONTROL", Some("IofCompleteRequest"), 1, true, Duration::from_millis(50))
            .unwrap();
    }
    let pended = AtomicBool::new(false);
    sim.run_actors(vec![
        Box::new(|| {
            let t = a.ioctl_async(PEND, &[], 0).unwrap();
            pended.store(true, Ordering::Release);
            assert_eq!(t.wait().expect("completed").status, 0);
            a.close();
        }),
        Box::new(|| {
            while !pended.load(Ordering::Acquire) {
                sim.step();
            }
            assert_eq!(b.ioctl(code, &[], 0).status, 0);
        }),
    ]);
    eprintln!("the driver counted in a closed handle's context and nothing happened ({} stalls)", sim.call_stalls().1);
    b.close();
    assert!(sim.unload().is_clean());
}

/// Runs `call_stall_child` in a child process: its exit code and all it
/// printed.
fn child(seed: u64, code: u32, stall: bool) -> (Option<i32>, String) {
    child_with(seed, code, stall, false, false)
}

/// `child`, with every export a scheduling point after its body too when
/// `after` (`SimBuilder::points_after_exports`), and the scheduler
/// picking by priorities (PCT, one priority drop in the first 64
/// switches) when `pct`.
fn child_with(seed: u64, code: u32, stall: bool, after: bool, pct: bool) -> (Option<i32>, String) {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "call_stall_child", "--nocapture", "--test-threads=1"]);
    let flags = [stall, after, pct].map(|f| u8::from(f).to_string()).join(",");
    c.env("NDISIM_CALL_STALL_CHILD", format!("{seed},{code},{flags}"));
    let out = c.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

#[test]
fn a_touch_right_after_a_completion_is_caught_only_with_a_stall_after_the_call() {
    // No seed opens the window by itself: the handle's owner runs only
    // once the driver's thread reaches its next export.
    for seed in 0..6 {
        let (code, text) = child(seed, COMPLETE_THEN_TOUCH, false);
        assert_eq!(code, Some(0), "seed {seed}: {text}");
        assert!(text.contains("nothing happened (0 stalls)"), "seed {seed}: {text}");
    }
    // The stall after the completion lets the owner close the handle and
    // its context be freed first: the touch faults at the guilty
    // instruction.
    for seed in 0..3 {
        let (code, text) = child(seed, COMPLETE_THEN_TOUCH, true);
        assert_eq!(code, Some(EXIT_DRIVER_FAULT), "seed {seed}: {text}");
        assert!(text.contains("DRIVER FAULT: access violation"), "seed {seed}: {text}");
        assert!(text.contains("complete_then_touch"), "seed {seed}: {text}");
        assert!(!text.contains("nothing happened"), "seed {seed}: {text}");
    }
    // Counting before the completion is clean, stalled or not.
    for stall in [false, true] {
        let (code, text) = child(0, TOUCH_THEN_COMPLETE, stall);
        assert_eq!(code, Some(0), "stall {stall}: {text}");
        let stalls = if stall { "(1 stalls)" } else { "(0 stalls)" };
        assert!(text.contains(stalls), "stall {stall}: {text}");
    }
}

#[test]
fn scheduling_points_after_exports_let_some_seeds_open_the_window() {
    // Without them no seed of either strategy runs the handle's owner
    // between the completion and the touch; with them, a priority drop
    // right after the completion does (about half the seeds), and the
    // clean order stays clean.
    let faults = |after: bool, pct: bool| -> Vec<u64> {
        (0..16)
            .filter(|&seed| child_with(seed, COMPLETE_THEN_TOUCH, false, after, pct).0 == Some(EXIT_DRIVER_FAULT))
            .collect()
    };
    assert_eq!(faults(false, true), [0u64; 0], "PCT without points after exports");
    let with = faults(true, true);
    assert!(with.len() >= 3 && with.len() < 16, "faulting seeds: {with:?}");
    for seed in 0..4 {
        let (code, text) = child_with(seed, TOUCH_THEN_COMPLETE, false, true, true);
        assert_eq!(code, Some(0), "seed {seed}: {text}");
    }
}
