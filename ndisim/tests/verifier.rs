//! Each verifier rule is proven by a deliberately wrong fixture driver that
//! breaks exactly that rule. The rules on user memory (MDLs, locked pages
//! and their mappings, IRP buffers after completion, UMEM frames handed
//! back) are in `verifier_user_memory.rs`, the stack's in `verifier_stack.rs`,
//! those on IRPs and the control device in `verifier_irp.rs`; what a driver
//! that crashes gets (a bug check, a fault) is in `verifier_faults.rs`.

use ndisim::*;
use rawnic_tests::fixture;
use rawnic_tests::verifier::{frame, inject_one, only, start};
use std::time::Duration;

#[test]
fn send_not_running() {
    only(&start("send_paused", &["null"]).unload(), Rule::SendNotRunning);
}

/// An OID request from the pause that follows `NetEventSetPower` for D3:
/// the adapter is in low power (refused with `NDIS_STATUS_LOW_POWER_STATE`).
/// Back in D0, the restart's own request is clean.
#[test]
fn oid_in_low_power() {
    let sim = start("power_oid", &["null"]);
    sim.set_power(AdapterId(0), 4).unwrap();
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Paused);
    sim.set_power(AdapterId(0), 1).unwrap();
    assert_eq!(sim.binding_state(AdapterId(0)), BindingState::Running);
    let r = sim.unload();
    only(&r, Rule::LowPower);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "NdisOidRequest", "{r}");
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

/// ProtocolNetPnPEvent's page: NDIS_STATUS_NOT_SUPPORTED is never an
/// answer from an NDIS 6 protocol, and only a remove query and a port
/// activation may fail. The fixture answers a reconfigure NOT_SUPPORTED
/// and fails the capabilities event (one violation each), and fails a
/// remove query and a port activation (clean).
#[test]
fn pnp_events_a_protocol_must_succeed() {
    let sim = start("pnp_status", &["null"]);
    let a = Some(AdapterId(0));
    assert_eq!(sim.pnp_event(a, ndis_sys::NetEventQueryRemoveDevice, &[]).unwrap(), ndis_sys::NDIS_STATUS_FAILURE);
    assert_eq!(sim.pnp_event(a, ndis_sys::NetEventPortActivation, &[]).unwrap(), ndis_sys::NDIS_STATUS_FAILURE);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(sim.pnp_event(a, ndis_sys::NetEventReconfigure, &[]).unwrap(), ndis_sys::NDIS_STATUS_NOT_SUPPORTED);
    assert_eq!(sim.pnp_event(a, ndis_sys::NetEventPnPCapabilities, &[]).unwrap(), ndis_sys::NDIS_STATUS_FAILURE);
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 2, "{r}");
    assert!(
        r.violations[0].detail.contains("NetEventReconfigure") && r.violations[0].detail.contains("NOT_SUPPORTED"),
        "{r}"
    );
    assert!(r.violations[1].detail.contains("NetEventPnPCapabilities"), "{r}");
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
fn receive_modified_mdl_with_or_without_checksums() {
    // The fixture sets the ByteCount of each received frame's MDL to the
    // frame's length. The sums cover it; without them, the MDLs ndisim
    // reuses from frame to frame are compared with how it built them, and
    // put back: each return is reported once, either way.
    for checksum in [Checksum::Off, Checksum::Headers] {
        let sim = Sim::builder()
            .driver(fixture("recv_mdl"))
            .adapter("null")
            .watchdog(Duration::from_secs(5))
            .checksum(checksum)
            .start()
            .unwrap();
        inject_one(&sim);
        inject_one(&sim);
        let f = frame();
        sim.inject(AdapterId(0), &[&f], &InjectOpts { resources: true, ..InjectOpts::default() }).unwrap();
        let r = sim.unload();
        only(&r, Rule::ReceiveModified);
        let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
        assert_eq!(
            calls,
            ["NdisReturnNetBufferLists", "NdisReturnNetBufferLists", "ProtocolReceiveNetBufferLists"],
            "{checksum:?}: {r}"
        );
        if checksum == Checksum::Off {
            // From the buffer's 2048 bytes to the frame's 60, each time.
            assert!(r.violations.iter().all(|v| v.detail.contains("ByteCount 0x800 -> 0x3c")), "{r}");
        }
    }
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
fn oid_buffer_in_paged_pool() {
    let sim = start("oid_paged", &["null@oid=held"]);
    assert_eq!(sim.release_oids(AdapterId(0)).unwrap(), 1);
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    assert!(r.violations[0].detail.contains("InformationBuffer is in paged pool"), "{r}");
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
fn spinlock_released_by_the_other_pair() {
    let sim = start("spin_pair", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::SpinLockImbalance);
    assert_eq!(r.violations.len(), 2, "{r}");
    assert!(r.violations[0].detail.contains("NdisAcquireSpinLock took"), "{r}");
    assert!(r.violations[1].detail.contains("NdisDprAcquireSpinLock took"), "{r}");
}

#[test]
fn spinlock_copy_is_not_initialised() {
    let sim = start("spin_copied", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    assert!(r.violations[0].detail.contains("did not initialise at this address"), "{r}");
}

/// NdisFreeSpinLock of a lock NdisAllocateSpinLock never initialised. The
/// fixture does nothing else wrong: one violation, at the free.
#[test]
fn spinlock_freed_without_being_initialised() {
    let sim = start("spin_free_uninit", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "NdisFreeSpinLock", "{r}");
    assert!(r.violations[0].detail.contains("did not initialise at this address"), "{r}");
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
fn rw_lock_state_must_be_the_acquires_own() {
    let sim = start("rwlock_misuse", &[]);
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    // Nested reads and a write, each with its own LOCK_STATE_EX: clean.
    assert_eq!(h.ioctl(0x0022_2004, &[], 0).status, 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    // Released with a copy of the state the acquire filled.
    assert_eq!(h.ioctl(0x0012_0000, &[], 0).status, 0);
    // One state given to a second hold while the first is held (last: the
    // second hold overwrites the IRQL the first must return to, so the
    // releases go wrong after it).
    assert_eq!(h.ioctl(0x0012_0004, &[], 0).status, 0);
    h.close();
    let r = sim.unload();
    let rules: Vec<Rule> = r.violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules[..2], [Rule::SpinLockImbalance, Rule::InvalidParameter], "{r}");
    assert!(r.violations[0].detail.contains("not the one its acquire filled"), "{r}");
    assert!(r.violations[1].detail.contains("each acquire needs its own"), "{r}");
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

#[test]
fn a_work_item_still_queued_at_driver_unload_is_the_drivers_to_wait_for() {
    // Windows calls DriverUnload once no file object is left, whatever
    // work items are still queued (their reference on the device keeps the
    // image, not the driver's state): ndisim does not run them first. The
    // fixture frees its second item, queued behind a first that runs for up
    // to 300 ms on the one worker thread, without waiting for it.
    let sim = Sim::builder().driver(fixture("workitem_unload")).watchdog(Duration::from_secs(5)).cpus(1).start();
    let r = sim.unwrap_or_else(|e| panic!("workitem_unload: {e}")).unload();
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert!(
        r.violations.iter().any(|v| v.rule == Rule::WorkItemMisuse && v.detail.contains("still queued")),
        "the free of the queued item is seen:\n{r}"
    );
    // The refused free leaves the item allocated: a leak, and nothing else.
    assert!(r.rules().iter().all(|&x| x == Rule::WorkItemMisuse || x == Rule::ResourceLeak), "{r}");
}

#[test]
fn no_execute_pool_and_mapping() {
    let sim = start("no_execute", &["null"]);
    // Locked pages not mapped yet: a kernel mapping of them is the
    // driver's to make (one of non-paged pool, the default, is already
    // mapped and may not be mapped again: invalid-parameter).
    let f = frame();
    let layout = NbLayout { unmapped: true, ..NbLayout::default() };
    sim.inject(AdapterId(0), &[&f], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
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
        Rule::OidDoubleComplete,
        Rule::SpinLockImbalance,
        Rule::Irql,
        Rule::PoolLeak,
        Rule::PoolDoubleFree,
        Rule::PoolTagMismatch,
        Rule::ResourceLeak,
        Rule::UnexpectedCompletion,
        Rule::Watchdog,
        Rule::WorkItemMisuse,
        Rule::InvalidParameter,
        Rule::NoExecute,
        Rule::ResourcesChain,
        Rule::RetainedWhenLow,
        Rule::ReceiveModified,
        Rule::LockOrder,
        // tests/verifier_irp.rs
        Rule::IrpDoubleComplete,
        Rule::IrpNotCompleted,
        Rule::IrpPendingMismatch,
        Rule::IrpCancelRoutineSet,
        Rule::IrpInformationOverflow,
        Rule::IrpStaleOutput,
        Rule::IrpCompleteUnderLock,
        Rule::IrpWriteModified,
        Rule::InsecureDevice,
        // tests/verifier_stack.rs
        Rule::StackBudget,
        // tests/verifier_user_memory.rs
        Rule::MappingAfterUnlock,
        Rule::MdlLeak,
        Rule::PagesLockedAtClose,
        Rule::UmemAfterHandback,
        // tests/freed.rs
        Rule::FreedInUse,
        Rule::PnpContext,
        Rule::LowPower,
        // tests/verifier_races.rs
        Rule::IrpCompleteInCancel,
        Rule::CloseDuringCall,
        // tests/verifier_debug.rs
        Rule::ForbiddenDebugLine,
    ];
    for r in Rule::ALL {
        assert!(covered.contains(r), "rule {r} has no fixture test");
    }
}

#[test]
fn reenumeration_from_a_bind_or_a_bindings_pnp_event() {
    // The fixture asks for a re-enumeration in its bind handler, in its
    // binding's pause (both forbidden), and at BindsComplete, which comes
    // with a NULL binding context (allowed, and counted).
    let sim = start("reenum_context", &["null"]);
    assert_eq!(sim.reenumerations(), 1, "only the call at BindsComplete goes through");
    sim.pause(AdapterId(0)).unwrap();
    let r = sim.unload();
    only(&r, Rule::PnpContext);
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert_eq!(calls, ["NdisReEnumerateProtocolBindings"; 2], "{r}");
}

#[test]
fn retained_when_low() {
    // Eight receive buffers: an indication that leaves fewer than two free
    // carries NDIS_RECEIVE_FLAGS_RESOURCES. The fixture keeps every other
    // NBL until its binding pauses.
    let sim = start("hold_rx", &["null@rx-buffers=8"]);
    for _ in 0..6 {
        inject_one(&sim);
    }
    assert_eq!(sim.receive_buffers(AdapterId(0)), (6, 0));
    // Low: told once, with nothing to blame yet.
    inject_one(&sim);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    // Told again, still holding the six it kept before it was first told.
    inject_one(&sim);
    // Three frames in one indication of three NBLs find two buffers: the
    // third is dropped.
    let f = frame();
    sim.inject(AdapterId(0), &[&f, &f, &f], &InjectOpts { nbls_per_indication: 3, ..InjectOpts::default() }).unwrap();
    assert_eq!(sim.receive_buffers(AdapterId(0)), (6, 1));
    // The pause gives them back: a pool of eight free again.
    sim.pause(AdapterId(0)).unwrap();
    assert_eq!(sim.receive_buffers(AdapterId(0)).0, 0);
    let r = sim.unload();
    only(&r, Rule::RetainedWhenLow);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("6 received NBL(s) still kept"), "{r}");
}

#[test]
fn nbls_on_their_way_back_are_not_blamed_running_free() {
    // As in `retained_when_low`: six kept, then a low indication.
    let sim = start("hold_rx", &["null@rx-buffers=8"]);
    for _ in 0..7 {
        inject_one(&sim);
    }
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    std::thread::scope(|s| {
        // The fixture takes the six off its list, then spins for 300 ms
        // before giving them back (a thread preempted between its lock and
        // NdisReturnNetBufferLists) ...
        let late = s.spawn(|| h.ioctl(0x0012_0000, &[], 0).status);
        // ... while the miniport, still low, indicates again: the six are
        // still out when it begins, and back within ndisim's wait.
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(sim.receive_buffers(AdapterId(0)).0, 6, "the six are still out");
        inject_one(&sim);
        assert_eq!(late.join().unwrap(), 0);
    });
    assert_eq!(sim.receive_buffers(AdapterId(0)).0, 0);
    h.close();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

#[test]
fn a_received_nbl_written_after_its_return_inside_the_handler() {
    // The buffer is the miniport's again as soon as the return is made, not
    // when the handler returns: the write is caught there.
    let sim = start("return_touch", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    only(&r, Rule::NblOwnership);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].detail.contains("in the same receive handler"), "{r}");
}

#[test]
fn a_received_nbls_miniport_words_and_unsupported_return_flags() {
    let sim = start("recv_reserved", &["null"]);
    inject_one(&sim);
    let r = sim.unload();
    assert!(r.internal_errors.is_empty(), "{r}");
    assert_eq!(r.rules(), vec![Rule::InvalidParameter, Rule::ReceiveModified], "{r}");
    assert!(
        r.violations.iter().any(|v| v.detail.contains("only NDIS_RETURN_FLAGS_DISPATCH_LEVEL is supported")),
        "{r}"
    );
}

#[test]
fn a_pool_freed_while_ndis_holds_one_of_its_nbls() {
    let sim = start("free_pool_inflight", &["null@completion=held"]);
    inject_one(&sim);
    let v = sim.violations();
    assert_eq!((v[0].rule, v[0].call.as_str()), (Rule::NblLeak, "NdisFreeNetBufferListPool"), "{v:?}");
    assert!(v[0].detail.contains("1 NBL(s) still allocated, 1 of them sent and not completed"), "{v:?}");
    let _ = sim.release_sends(AdapterId(0), None);
    let r = sim.unload();
    assert!(r.rules().contains(&Rule::NblLeak), "{r}");
}

#[test]
fn an_mdl_of_a_sent_nbl_freed_before_its_completion() {
    let sim = start("free_mdl_inflight", &["null@completion=held"]);
    inject_one(&sim);
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].rule, v[0].call.as_str()), (Rule::NblOwnership, "NdisFreeMdl"));
    // The MDL was kept: the completion frees it, the NBL and the buffer.
    assert_eq!(sim.release_sends(AdapterId(0), None).unwrap(), 1);
    let r = sim.unload();
    only(&r, Rule::NblOwnership);
    assert_eq!(r.violations.len(), 1, "{r}");
}
