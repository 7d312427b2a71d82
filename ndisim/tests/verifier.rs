//! Each verifier rule is proven by a deliberately wrong fixture driver that
//! breaks exactly that rule.

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

fn start(name: &str, adapters: &[&str]) -> Sim {
    let mut b = Sim::builder().driver(fixture(name)).watchdog(Duration::from_secs(5));
    for a in adapters {
        b = b.adapter(a);
    }
    b.start().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The report breaks `rule` and no other rule.
fn only(r: &Report, rule: Rule) {
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert_eq!(r.rules(), vec![rule], "expected exactly {rule}:\n{r}");
}

fn frame() -> Vec<u8> {
    let mut f = vec![0xFFu8; 60];
    f[12] = 0x88;
    f[13] = 0xB5;
    f
}

fn inject_one(sim: &Sim) {
    let f = frame();
    sim.inject(AdapterId(0), &[&f], &InjectOpts::default()).unwrap();
}

#[test]
fn send_not_running() {
    only(&start("send_paused", &["null"]).unload(), Rule::SendNotRunning);
}

#[test]
fn send_from_its_own_pause_handler() {
    // The binding is Pausing from the moment NDIS sends the pause; a send
    // made inside the pause handler is made knowing it. (The send still
    // goes down and completes; the fixture then completes its pause.)
    let sim = start("pause_send", &["null"]);
    sim.pause(AdapterId(0)).unwrap();
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Paused);
    let r = sim.unload();
    only(&r, Rule::SendNotRunning);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("own pause handler"), "{r}");
}

#[test]
fn a_pause_cannot_fail() {
    let sim = start("pause_fail", &["null"]);
    sim.pause(AdapterId(0)).unwrap();
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Paused);
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    assert!(r.violations[0].detail.contains("a pause cannot fail"), "{r}");
}

#[test]
fn receive_modified() {
    // The fixture writes into each frame it is indicated: caught when the
    // NBL comes back, returned by the driver or taken back by NDIS at the
    // end of an NDIS_RECEIVE_FLAGS_RESOURCES indication.
    let sim = start("recv_modify", &["null"]);
    inject_one(&sim);
    let f = frame();
    sim.inject(AdapterId(0), &[&f], &InjectOpts { resources: true, ..InjectOpts::default() }).unwrap();
    let r = sim.unload();
    only(&r, Rule::ReceiveModified);
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert_eq!(calls, ["NdisReturnNetBufferLists", "ProtocolReceiveNetBufferLists"], "{r}");
}

#[test]
fn send_source_handle() {
    let sim = start("bad_source", &["null"]);
    inject_one(&sim);
    only(&sim.unload(), Rule::SendSourceHandle);
}

#[test]
fn nbl_ownership_write_while_in_flight() {
    let sim = start("touch_inflight", &["null@completion=held"]);
    inject_one(&sim);
    assert_eq!(sim.held_sends(AdapterId(0)), 1);
    assert_eq!(sim.release_sends(AdapterId(0), None).unwrap(), 1);
    only(&sim.unload(), Rule::NblOwnership);
}

#[test]
fn pause_with_outstanding_receive() {
    let sim = start("pause_early", &["null"]);
    inject_one(&sim);
    assert_eq!(sim.outstanding(AdapterId(0)).receives_retained, 1);
    sim.pause(AdapterId(0)).unwrap();
    only(&sim.unload(), Rule::PauseOutstanding);
}

#[test]
fn pause_with_outstanding_send() {
    // Each received frame makes the fixture send one, which the adapter
    // holds; its pause completes at once all the same.
    let sim = start("pause_send_early", &["null@completion=held"]);
    inject_one(&sim);
    assert_eq!(sim.held_sends(AdapterId(0)), 1);
    sim.pause(AdapterId(0)).unwrap();
    assert_eq!(sim.release_sends(AdapterId(0), None).unwrap(), 1);
    only(&sim.unload(), Rule::PauseOutstanding);
}

#[test]
fn retained_while_paused() {
    // The same fixture keeps an NBL NDIS indicated while the binding was
    // paused; the pause itself completed with nothing outstanding.
    let sim = start("pause_early", &["null"]);
    sim.pause(AdapterId(0)).unwrap();
    inject_one(&sim);
    assert_eq!(sim.outstanding(AdapterId(0)).receives_retained, 1);
    only(&sim.unload(), Rule::RetainedWhilePaused);
}

/// What a bind allocated is freed when its unbind completes: the fixture
/// completes the unbind from its close completion and frees its NBL pool
/// after.
#[test]
fn unbind_completed_before_its_resources_are_freed() {
    let sim = start("unbind_early", &["null@close=pending"]);
    let r = sim.unload();
    only(&r, Rule::ResourceLeak);
    assert!(r.to_string().contains("the unbind completed with 1 allocated for the binding"), "{r}");
}

#[test]
fn close_with_outstanding_oid() {
    let sim = start("close_outstanding", &["null@oid=held"]);
    assert_eq!(sim.outstanding(AdapterId(0)).oids_pending, 1);
    only(&sim.unload(), Rule::CloseOutstanding);
}

#[test]
fn oid_submitted_twice() {
    let sim = start("oid_twice", &["null@oid=held"]);
    assert_eq!(sim.release_oids(AdapterId(0)).unwrap(), 1);
    only(&sim.unload(), Rule::OidDoubleComplete);
}

#[test]
fn nbl_leak() {
    only(&start("leak_nbl", &["null"]).unload(), Rule::NblLeak);
}

#[test]
fn spinlock_release_without_acquire() {
    let sim = start("spin_release", &["null"]);
    inject_one(&sim);
    only(&sim.unload(), Rule::SpinLockImbalance);
}

#[test]
fn irql_passive_function_at_dispatch() {
    let sim = start("irql", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::Irql);
    assert!(r.violations[0].call.contains("RtlCreateSecurityDescriptor"), "{r}");
}

#[test]
fn pool_leak() {
    let r = start("pool_leak", &[]).unload();
    only(&r, Rule::PoolLeak);
    assert_eq!(r.leaked_pool.len(), 1);
    assert_eq!(r.leaked_pool[0].size, 100);
}

#[test]
fn pool_double_free() {
    only(&start("pool_double_free", &[]).unload(), Rule::PoolDoubleFree);
}

#[test]
fn pool_tag_mismatch() {
    only(&start("pool_tag", &[]).unload(), Rule::PoolTagMismatch);
}

#[test]
fn unexpected_completion() {
    let sim = start("complete_unexpected", &["null"]);
    sim.pause(AdapterId(0)).unwrap();
    only(&sim.unload(), Rule::UnexpectedCompletion);
}

#[test]
fn watchdog_on_a_pause_that_does_not_complete() {
    let sim = Sim::builder()
        .driver(fixture("pause_hang"))
        .adapter("null")
        .watchdog(Duration::from_millis(300))
        .start()
        .unwrap();
    assert!(matches!(sim.pause(AdapterId(0)), Err(SimError::Watchdog(_))));
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Pausing);
    let r = sim.unload();
    only(&r, Rule::Watchdog);
    // The fixture completes the pause at unload: the report says it came
    // late rather than never.
    assert!(r.violations.iter().any(|v| v.detail.contains("late, not lost")), "{r}");
}

#[test]
fn invalid_parameter() {
    only(&start("bad_pool_params", &[]).unload(), Rule::InvalidParameter);
}

#[test]
fn irp_double_complete() {
    let sim = start("irp_double", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(0x0012_0000, &[], 0).status, 0);
    h.close();
    only(&sim.unload(), Rule::IrpDoubleComplete);
}

#[test]
fn irp_not_completed() {
    let sim = start("irp_never", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let t = h.ioctl_async(0x0012_0000, &[], 0).unwrap();
    assert!(t.try_result().is_none());
    assert!(!t.cancel(), "the fixture sets no cancel routine");
    h.close();
    only(&sim.unload(), Rule::IrpNotCompleted);
}

#[test]
fn irp_pending_without_mark() {
    let sim = start("irp_unmarked", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    h.ioctl(0x0012_0000, &[], 0);
    h.close();
    only(&sim.unload(), Rule::IrpPendingMismatch);
}

#[test]
fn irp_cancel_routine_left_set() {
    let sim = start("irp_cancel_set", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    h.ioctl(0x0012_0000, &[], 0);
    h.close();
    only(&sim.unload(), Rule::IrpCancelRoutineSet);
}

#[test]
fn irp_information_overflow() {
    let sim = start("irp_overflow", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(0x0012_0000, &[1, 2, 3], 8);
    assert_eq!(r.data.len(), 8, "the I/O manager copies no more than the buffer");
    h.close();
    only(&sim.unload(), Rule::IrpInformationOverflow);
}

#[test]
fn irp_stale_output() {
    let sim = start("irp_stale", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(0x0012_0000, &[], 64);
    assert_eq!(r.information, 64);
    h.close();
    only(&sim.unload(), Rule::IrpStaleOutput);
}

#[test]
fn device_without_dacl_is_world_accessible() {
    let sim = start("no_dacl", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::User).expect("no DACL: anyone opens it");
    h.close();
    only(&sim.unload(), Rule::InsecureDevice);
}

#[test]
fn device_with_dacl_refuses_users() {
    // The same control device with the SYSTEM + Administrators DACL.
    let sim = start("irp_double", &[]);
    assert_eq!(sim.device_access("\\Device\\Fixture", Identity::User, 0xC000_0000), Some(false));
    assert_eq!(sim.device_access("\\Device\\Fixture", Identity::Admin, 0xC000_0000), Some(true));
    let e = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::User).unwrap_err();
    assert_eq!(e as u32, 0xC000_0022, "STATUS_ACCESS_DENIED");
    assert!(sim.unload().is_clean());
}

#[test]
fn resource_leak() {
    only(&start("leak_device", &[]).unload(), Rule::ResourceLeak);
}

#[test]
fn workitem_queued_twice() {
    // One system worker thread: the fixture keeps it busy so that its
    // second item is still queued when it queues that item again. With two
    // (the default), the second thread could run the item first, and the
    // second queueing would be legal (it failed so, now and then).
    let sim = Sim::builder().driver(fixture("workitem_twice")).watchdog(Duration::from_secs(5)).cpus(1).start();
    only(&sim.unwrap_or_else(|e| panic!("workitem_twice: {e}")).unload(), Rule::WorkItemMisuse);
}

fn run_cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndisim")).args(args).output().expect("run ndisim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
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

#[test]
fn no_execute_pool_and_mapping() {
    let sim = start("no_execute", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::NoExecute);
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert!(calls.contains(&"ExAllocatePoolWithTag") && calls.contains(&"MmMapLockedPagesSpecifyCache"), "{r}");
}

#[test]
fn resources_chain_cut() {
    let sim = start("resources_chain", &["null"]);
    let f = frame();
    let o = InjectOpts { resources: true, nbls_per_indication: 3, ..InjectOpts::default() };
    sim.inject(AdapterId(0), &[&f, &f, &f], &o).unwrap();
    // Without the flag the same fixture is correct.
    sim.inject(AdapterId(0), &[&f, &f, &f], &InjectOpts { nbls_per_indication: 3, ..InjectOpts::default() }).unwrap();
    let r = sim.unload();
    only(&r, Rule::ResourcesChain);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("ends early at position 1"), "{r}");
}

#[test]
fn lock_order_inversion_without_a_deadlock() {
    let sim = start("lock_order", &["null"]);
    inject_one(&sim);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::LockOrder);
    // Reported once, when the second order first closed the cycle.
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("deadlock"), "{r}");
}

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

// --- User memory and MDLs -------------------------------------------------------

const FIXTURE: &str = "\\\\.\\Fixture";
const CODE_MAP: u32 = 0x0012_0000 | (0x900 << 2) | 2;
const CODE_TOUCH: u32 = 0x0012_0000 | (0x901 << 2);
const CODE_SEND: u32 = 0x0012_0000 | (0x902 << 2) | 2;
const CODE_GOOD: u32 = 0x0012_0000 | (0x903 << 2) | 2;

#[test]
fn mdl_leak() {
    let sim = start("mdl_leak", &[]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(0x0012_0000, &[1, 2, 3, 4], 0).status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::MdlLeak);
    assert!(r.violations.iter().any(|v| v.detail.contains("IoFreeMdl")), "{r}");
}

#[test]
fn pages_locked_at_close() {
    let sim = start("pages_locked", &[]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(3 * 4096).unwrap();
    let t = h.ioctl_region_async(CODE_MAP, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::PagesLockedAtClose);
    // When the handle closed, and when the MDL was freed still locked.
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert_eq!(calls, ["IRP_MJ_CLOSE", "IoFreeMdl"], "{r}");
    assert!(r.violations[0].detail.contains(&format!("region #{}", region.id())), "{r}");
}

#[test]
fn mapping_after_unlock_with_ndis() {
    // The fixture sends a frame out of the IRP's buffer and completes the
    // IRP; while the adapter holds the send, the pages are unlocked.
    let sim = start("mapping_after_unlock", &["loopback@completion=held"]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(4096).unwrap();
    region.write(0, &[0xFF; 60]);
    let t = h.ioctl_region_async(CODE_SEND, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    assert_eq!(sim.release_sends(AdapterId(0), None).unwrap(), 1);
    h.close();
    let r = sim.unload();
    only(&r, Rule::MappingAfterUnlock);
    // At the unlock (the IRP's completion), and when NDIS gave it back.
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert_eq!(calls, ["IofCompleteRequest", "NdisSendNetBufferLists"], "{r}");
}

#[test]
fn user_memory_done_right_is_clean() {
    // The same fixture's correct path: its own MDL probed, locked, mapped,
    // unmapped, unlocked and freed; a partial MDL sharing the IRP's
    // mapping, sent, and the IRP completed when the send is back. The
    // mapping is not the user address, and writes through it are the
    // user's bytes.
    for completion in ["immediate", "held", "delay:5"] {
        let sim = start("mapping_after_unlock", &[&format!("loopback@completion={completion},capture=on")]);
        let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
        let region = UserRegion::new(2 * 4096).unwrap();
        let frame: Vec<u8> = (0..60).map(|i| if i < 6 { 0xFF } else { i as u8 }).collect();
        region.write(0, &frame);
        let t = h.ioctl_region_async(CODE_GOOD, &[], region.clone()).unwrap();
        if completion == "held" {
            assert!(t.wait_for(Duration::from_millis(50)).is_none(), "pending until the send is back");
            sim.release_sends(AdapterId(0), None).unwrap();
        }
        assert_eq!(t.wait().expect("completed").status, 0);
        let mut want = frame.clone();
        want[1] = 0xB2;
        assert_eq!(region.to_vec(0, 60), want, "written through the driver's own mapping");
        assert_eq!(sim.captured(AdapterId(0))[0].data, want);
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "{completion}: {r}");
    }
}

#[test]
fn mdl_misuse_is_an_invalid_parameter() {
    let sim = start("mdl_misuse", &[]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(2 * 4096).unwrap();
    assert_eq!(h.ioctl_region_async(CODE_MAP, &[], region).unwrap().wait().expect("completed").status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    let seen: Vec<(&str, &str)> = r.violations.iter().map(|v| (v.call.as_str(), v.detail.as_str())).collect();
    assert_eq!(seen.len(), 4, "{r}");
    assert!(seen[0].0 == "IoBuildPartialMdl" && seen[0].1.contains("not inside the source"), "{r}");
    assert!(seen[1].0 == "IoBuildPartialMdl" && seen[1].1.contains("allocated for 1 page(s)"), "{r}");
    assert!(seen[2].0 == "IoFreeMdl" && seen[2].1.contains("already freed"), "{r}");
    assert!(seen[3].0 == "MmProbeAndLockPages" && seen[3].1.contains("cannot have"), "{r}");
}

/// The scenario `mapping_after_unlock_faults` runs in a child process:
/// the driver maps the IRP's buffer, the IRP completes, and the driver
/// reads through its old mapping.
#[test]
fn mapping_after_unlock_child() {
    if std::env::var_os("NDISIM_MAPPING_CHILD").is_none() {
        return;
    }
    let sim = start("mapping_after_unlock", &["null"]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(4096).unwrap();
    let t = h.ioctl_region_async(CODE_MAP, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    assert_eq!(region.to_vec(0, 1), [0xA1], "the driver wrote through its mapping");
    eprintln!("region #{} mapped and completed", region.id());
    h.ioctl(CODE_TOUCH, &[], 0);
    eprintln!("the driver read a revoked mapping and nothing happened");
}

#[test]
fn mapping_after_unlock_faults() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mapping_after_unlock_child", "--nocapture", "--test-threads=1"])
        .env("NDISIM_MAPPING_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_DRIVER_FAULT), "{text}");
    assert!(text.contains("mapped and completed"), "{text}");
    assert!(text.contains("DRIVER FAULT: access violation") && text.contains("mapping_after_unlock5ioctl"), "{text}");
    assert!(
        text.contains("rule mapping-after-unlock") && text.contains("revoked when its pages were unlocked"),
        "{text}"
    );
    assert!(!text.contains("nothing happened"), "{text}");
}

/// The scenario `irp_touched_after_completion_faults` runs in a child
/// process: `irp_touch` completes an IOCTL, then touches it (function 0:
/// its system buffer, 1: the IRP), under special pool or not.
#[test]
fn irp_touch_child() {
    let Some(func) = std::env::var_os("NDISIM_IRP_TOUCH_CHILD") else { return };
    let func: u32 = func.to_str().unwrap().parse().unwrap();
    let special = std::env::var_os("NDISIM_IRP_TOUCH_SPECIAL").is_some();
    let sim = Sim::builder().driver(fixture("irp_touch")).special_pool(special).start().unwrap();
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(0x0012_0000 | (func << 2), &[], 16);
    // (Without special pool the caller's bytes may even show the late
    // write: the buffer moved to the caller at the completion.)
    assert_eq!((r.status, r.data.len()), (0, 4));
    eprintln!("the driver touched a completed IRP and nothing happened");
    h.close();
    assert!(sim.unload().is_clean());
}

fn irp_touch(func: u32, special: bool) -> (Option<i32>, String) {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "irp_touch_child", "--nocapture", "--test-threads=1"]);
    c.env("NDISIM_IRP_TOUCH_CHILD", func.to_string());
    if special {
        c.env("NDISIM_IRP_TOUCH_SPECIAL", "1");
    }
    let out = c.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

#[test]
fn irp_touched_after_completion_faults_under_special_pool() {
    for (func, what) in
        [(0, "the system buffer of IRP_MJ_DEVICE_CONTROL IRP"), (1, "the IRP itself of IRP_MJ_DEVICE_CONTROL IRP")]
    {
        let (code, text) = irp_touch(func, true);
        assert_eq!(code, Some(EXIT_DRIVER_FAULT), "function {func}: {text}");
        assert!(text.contains("DRIVER FAULT: access violation") && text.contains("irp_touch5ioctl"), "{text}");
        assert!(text.contains(what) && text.contains("revoked when the IRP was completed"), "{text}");
        assert!(!text.contains("nothing happened"), "{text}");
        // Without special pool the touch goes unseen (the memory is the
        // caller's or the next request's by then).
        let (code, text) = irp_touch(func, false);
        assert_eq!(code, Some(0), "function {func} without special pool: {text}");
        assert!(text.contains("nothing happened"), "{text}");
    }
    // Function 2 touches nothing after the completion: clean either way.
    for special in [true, false] {
        let (code, text) = irp_touch(2, special);
        assert_eq!(code, Some(0), "{text}");
    }
}

// --- UMEM frames handed back ----------------------------------------------------

const UMEM_ATTACH: u32 = 0x0012_0000 | (0x910 << 2) | 2;
const UMEM_AGAIN: u32 = 0x0012_0000 | (0x911 << 2);
const UMEM_TOUCH: u32 = 0x0012_0000 | (0x912 << 2);
const UMEM_DETACH: u32 = 0x0012_0000 | (0x913 << 2);

/// The user of `umem_touch`'s rings, watched.
struct UmemUser {
    h: Handle,
    l: rawnic_proto::ring::RingLayout,
    m: std::sync::Arc<UserRegion>,
    watch: RingWatch,
    attach: IoToken,
}

impl UmemUser {
    /// Puts frame `i` on the fill ring, then attaches (the fixture takes
    /// it and hands it back on the rx ring at once).
    fn attach(sim: &Sim, i: u64) -> UmemUser {
        use rawnic_proto::ring::{RingLayout, RingSetup};
        let s = RingSetup { frame_size: 2048, frame_count: 8, fill: 8, rx: 8, tx: 8, completion: 8 };
        let l = RingLayout::new(&s).unwrap();
        let m = UserRegion::new(l.total).unwrap();
        let watch = RingWatch::new(sim, m.clone(), l);
        let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
        let mut input = [0u8; RingSetup::LEN];
        s.emit(&mut input).unwrap();
        let f = l.frames as u64 + i * l.frame_size as u64;
        watch.reclaim(f);
        m.store_u64(l.fill.entry_at(0), f);
        m.store_u32(l.fill.producer(), 1);
        let attach = h.ioctl_region_async(UMEM_ATTACH, &input, m.clone()).unwrap();
        assert!(attach.try_result().is_none(), "the attach stays pending");
        UmemUser { h, l, m, watch, attach }
    }

    fn frame(&self, i: u64) -> u64 {
        self.l.frames as u64 + i * self.l.frame_size as u64
    }

    fn fill(&self, i: u64) {
        let p = self.m.load_u32(self.l.fill.producer());
        self.watch.reclaim(self.frame(i));
        self.m.store_u64(self.l.fill.entry_at(p), self.frame(i));
        self.m.store_u32(self.l.fill.producer(), p + 1);
    }

    /// Consumes the rx ring: the frames' offsets.
    fn rx(&self) -> Vec<u64> {
        let prod = self.m.load_u32(self.l.rx.producer());
        let mut c = self.m.load_u32(self.l.rx.consumer());
        let mut out = Vec::new();
        while c != prod {
            let addr = self.m.load_u64(self.l.rx.entry_at(c));
            self.watch.handed_back(addr, Handback::Rx);
            out.push(addr);
            c += 1;
        }
        self.m.store_u32(self.l.rx.consumer(), c);
        out
    }

    fn detach(self) -> (Handle, RingWatch) {
        assert_eq!(self.h.ioctl(UMEM_DETACH, &[], 0).status, 0);
        assert_eq!(self.attach.wait().expect("completed").status, 0);
        (self.h, self.watch)
    }
}

#[test]
fn umem_after_handback_seen_when_the_frame_is_given_again() {
    let sim = start("umem_touch", &[]);
    let u = UmemUser::attach(&sim, 3);
    assert_eq!(u.rx(), [u.frame(3)]);
    assert_eq!(u.m.to_vec(u.frame(3) as usize, 6), [0xFF; 6], "the driver's frame");
    assert!(u.watch.check_all().is_empty(), "handed back and untouched");
    assert_eq!(u.h.ioctl(UMEM_TOUCH, &[], 0).status, 0);
    let v = u.watch.reclaim(u.frame(3)).expect("the late write, seen at the reclaim");
    assert_eq!(v.object, Some(u.m.as_ptr() as usize + u.frame(3) as usize));
    let want = format!("frame 3 (offset {:#x}) of user region #{}", u.frame(3), u.m.id());
    let (h, watch) = u.detach();
    h.close();
    let r = sim.unload();
    drop(watch);
    only(&r, Rule::UmemAfterHandback);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "reclaim");
    assert!(r.violations[0].detail.contains(&want), "{r}");
    assert!(r.violations[0].detail.contains("rx ring"), "{r}");
}

#[test]
fn umem_after_handback_seen_at_unload() {
    // Written after it was handed back and never given again: the unload
    // checks the frames the user holds.
    let sim = start("umem_touch", &[]);
    let u = UmemUser::attach(&sim, 6);
    assert_eq!(u.rx(), [u.frame(6)]);
    assert!(sim.violations().is_empty());
    assert_eq!(u.h.ioctl(UMEM_TOUCH, &[], 0).status, 0);
    let seen = sim.violations();
    assert_eq!(seen.len(), 1, "Sim::violations checks the watched frames: {seen:?}");
    let (h, watch) = u.detach();
    h.close();
    let r = sim.unload();
    drop(watch);
    only(&r, Rule::UmemAfterHandback);
    assert_eq!(r.violations.len(), 1, "one write, reported once: {r}");
    assert!(r.violations[0].detail.contains("frame 6 "), "{r}");
}

#[test]
fn umem_frames_given_again_before_the_driver_writes_them_are_clean() {
    // The fixture's correct path: the frame goes back on the fill ring
    // before the driver receives into it again.
    let sim = start("umem_touch", &[]);
    let u = UmemUser::attach(&sim, 2);
    assert_eq!(u.rx(), [u.frame(2)]);
    u.fill(2);
    assert_eq!(u.h.ioctl(UMEM_AGAIN, &[], 0).status, 0);
    assert_eq!(u.rx(), [u.frame(2)]);
    assert_eq!(u.watch.watched(), 1);
    assert_eq!(u.h.ioctl(UMEM_AGAIN, &[], 0).status as u32, 0xC000_0184, "the fill ring is empty");
    let (h, watch) = u.detach();
    h.close();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
    assert!(watch.check_all().is_empty());
}

#[test]
fn every_rule_has_a_test() {
    // The tests above, by rule; a new rule needs a fixture and a test.
    let covered = [
        Rule::SendNotRunning,
        Rule::SendSourceHandle,
        // tests/oversize.rs
        Rule::SendOversize,
        Rule::NblOwnership,
        Rule::PauseOutstanding,
        Rule::RetainedWhilePaused,
        Rule::CloseOutstanding,
        Rule::NblLeak,
        Rule::IrpDoubleComplete,
        Rule::IrpNotCompleted,
        Rule::IrpPendingMismatch,
        Rule::IrpCancelRoutineSet,
        Rule::IrpInformationOverflow,
        Rule::IrpStaleOutput,
        Rule::OidDoubleComplete,
        Rule::SpinLockImbalance,
        Rule::Irql,
        Rule::PoolLeak,
        Rule::PoolDoubleFree,
        Rule::PoolTagMismatch,
        Rule::ResourceLeak,
        Rule::UnexpectedCompletion,
        Rule::Watchdog,
        Rule::InsecureDevice,
        Rule::WorkItemMisuse,
        Rule::InvalidParameter,
        Rule::NoExecute,
        Rule::ResourcesChain,
        Rule::ReceiveModified,
        Rule::LockOrder,
        Rule::StackBudget,
        Rule::MappingAfterUnlock,
        Rule::MdlLeak,
        Rule::PagesLockedAtClose,
        Rule::UmemAfterHandback,
        // tests/freed.rs
        Rule::FreedInUse,
    ];
    for r in Rule::ALL {
        assert!(covered.contains(r), "rule {r} has no fixture test");
    }
}
