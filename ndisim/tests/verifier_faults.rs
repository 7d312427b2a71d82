//! What `ndisim run` reports when the driver crashes rather than breaks a
//! rule: a bug check (a panic, a write lock taken under the thread's own
//! read hold, special pool's check of a block's slack at its free) or a
//! driver fault (a call into the discarded INIT section, an overrun or a
//! use after free under special pool, an allocation low resources failed
//! and the driver did not check), each from a deliberately wrong fixture
//! driver, with the exit code and the text that name it.

use ndisim::*;
use rawnic_tests::fixture;
use rawnic_tests::verifier::run_exe;

#[test]
fn rw_lock_write_under_own_read_is_a_deadlock() {
    let f = fixture("rwlock_misuse");
    let script = std::env::temp_dir().join(format!("ndisim-rw-promote-{}.txt", std::process::id()));
    std::fs::write(&script, "inject count=1\n").unwrap();
    let (code, text) =
        run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null", "--script", script.to_str().unwrap()]);
    let _ = std::fs::remove_file(&script);
    assert_eq!(code, EXIT_BUGCHECK, "{text}");
    assert!(text.contains("acquired for write by the thread that holds it for read"), "{text}");
}

fn run_cli(args: &[&str]) -> (i32, String) {
    run_exe(env!("CARGO_BIN_EXE_ndisim"), args)
}

#[test]
fn driver_panic_is_reported_as_a_bug_check() {
    let f = fixture("panic");
    let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null"]);
    assert_eq!(code, EXIT_BUGCHECK, "{text}");
    assert!(text.contains("STOP (KeBugCheckEx) 0x5241574E"), "{text}");
    assert!(text.contains("driver panic at") && text.contains("panic/src/main.rs"), "{text}");
    // The line and column of the fixture's `panic!`, read from its source.
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../driver/fixtures/panic/src/main.rs")).unwrap();
    let (line, col) = src
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("panic!(").map(|c| (i + 1, c + 1)))
        .expect("the fixture panics");
    assert!(
        text.contains(&format!("panic/src/main.rs:{line}:{col}")),
        "line {line} and column {col} of the panic: {text}"
    );
}

#[test]
fn calling_into_discarded_init_faults() {
    let f = fixture("init_call");
    let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null"]);
    assert_eq!(code, EXIT_DRIVER_FAULT, "{text}");
    assert!(text.contains("discarded INIT section"), "{text}");
}

#[test]
fn special_pool_faults_at_an_overrun_and_a_use_after_free() {
    for (name, what) in
        [("pool_overrun", "the guard page after a special-pool block"), ("pool_use_after_free", "use after free")]
    {
        let f = fixture(name);
        // Without special pool, nothing points at the guilty instruction:
        // the bug goes unseen, or the heap is corrupted (glibc may abort).
        let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null"]);
        assert!(code != EXIT_DRIVER_FAULT && !text.contains("DRIVER FAULT"), "{name} without special pool: {text}");
        let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null", "--special-pool"]);
        assert_eq!(code, EXIT_DRIVER_FAULT, "{name}: {text}");
        assert!(text.contains("DRIVER FAULT: access violation"), "{name}: {text}");
        // At the guilty instruction, named by the driver's own symbol.
        let func = if name == "pool_overrun" { "bind_overrun" } else { "bind_uaf" };
        assert!(text.contains(func), "{name}: the fault names {func}: {text}");
        assert!(text.contains(what), "{name}: {text}");
    }
}

#[test]
fn special_pool_checks_the_slack_before_the_guard_page_at_free() {
    let f = fixture("pool_slack");
    let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null", "--special-pool"]);
    assert_eq!(code, EXIT_BUGCHECK, "{text}");
    assert!(text.contains("STOP (KeBugCheckEx) 0x000000C1"), "{text}");
    assert!(text.contains("wrote 1 byte(s) past the end of a 100-byte block"), "{text}");
}

#[test]
fn low_resources_fails_allocations_a_driver_must_check() {
    let f = fixture("lowres_unchecked");
    let (code, text) = run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null"]);
    assert_eq!(code, 0, "without low resources: {text}");
    let (code, text) =
        run_cli(&["run", "--driver", f.to_str().unwrap(), "--adapter", "null", "--low-resources", "1000"]);
    assert_eq!(code, EXIT_DRIVER_FAULT, "{text}");
    assert!(text.contains("bind_unchecked") && text.contains("address 0x0"), "{text}");
}
