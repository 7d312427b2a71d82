//! The stack budget: a handler that goes deeper than the budget (a frame
//! asked of `__chkstk`, or leaves that call nothing) breaks stack-budget,
//! and a driver that overflows the kernel stack gets the double fault
//! Windows raises.

use ndisim::*;
use rawnic_tests::fixture;
use rawnic_tests::verifier::{inject_one, only, run_exe, start};

#[test]
fn stack_budget_a_frame_past_it() {
    // The receive handler calls a function with a 12 KiB array; its
    // prologue asks __chkstk for the frame, which notes the depth.
    let sim = start("stack_hog", &["null"]);
    inject_one(&sim);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::StackBudget);
    assert_eq!(r.violations.len(), 1, "once per handler: {r}");
    assert_eq!(r.violations[0].call, "ProtocolReceiveNetBufferLists", "{r}");
    assert!(r.violations[0].detail.contains("hog"), "the function is named: {r}");
    let d = r.stack.deepest().expect("a sample");
    assert_eq!(
        (d.handler.as_str(), d.innermost.as_str()),
        ("ProtocolReceiveNetBufferLists", "ProtocolReceiveNetBufferLists")
    );
    // The array and the fixture's few other bytes: ndisim's frames do not count.
    assert!((12 * 1024..12 * 1024 + 512).contains(&d.depth), "{}", r.stack);
    assert!(d.at.contains("hog"), "{}", r.stack);
    assert_eq!(r.stack.budget, DEFAULT_STACK_BUDGET);
    // Within a budget of 16 KiB the same driver is clean.
    let sim = Sim::builder().driver(fixture("stack_hog")).adapter("null").stack_budget(16 * 1024).start().unwrap();
    inject_one(&sim);
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
    assert!(r.stack.deepest().is_some_and(|d| d.depth > 12 * 1024), "{}", r.stack);
}

#[test]
fn stack_budget_a_leaf_past_it() {
    // Twelve 1 KiB frames that call nothing: no sample is that deep, the
    // stack's paint below the budget line is gone when the handler returns.
    let sim = start("stack_leaf", &["null"]);
    inject_one(&sim);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::StackBudget);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "ProtocolReceiveNetBufferLists", "{r}");
    assert!(r.stack.deepest().is_some_and(|d| d.depth < 4096), "{}", r.stack);
    assert!((12 * 1024..KERNEL_STACK).contains(&r.stack.high_water), "{}", r.stack);
}

#[test]
fn stack_overflow_is_a_double_fault() {
    let f = fixture("stack_overflow");
    let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap()]);
    assert_eq!(code, EXIT_BUGCHECK, "{text}");
    assert!(text.contains("STOP 0x0000007F (0x8, 0, 0, 0) UNEXPECTED_KERNEL_MODE_TRAP"), "{text}");
    assert!(text.contains("in DriverEntry") && text.contains("dive"), "the handler and the function: {text}");
}

#[test]
fn the_cli_checks_a_stack_budget() {
    let f = fixture("stack_hog");
    let script = std::env::temp_dir().join(format!("ndisim-stack-budget-{}.txt", std::process::id()));
    std::fs::write(&script, "inject count=1\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--driver", f.to_str().unwrap(), "--adapter", "null", "--script"];
        args.push(script.to_str().unwrap());
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let (code, text) = run(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("[stack-budget] in ProtocolReceiveNetBufferLists"), "{text}");
    let (code, text) = run(&["--stack-budget", "16384"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("budget 16384 bytes of a 24576-byte kernel stack"), "{text}");
    let (code, text) = run(&["--stack-budget", "lots"]);
    assert_eq!(code, 2, "{text}");
    let _ = std::fs::remove_file(&script);
}

fn run_cli(args: &[&str]) -> (i32, String) {
    run_exe(env!("CARGO_BIN_EXE_ndisim"), args)
}
