//! Binds that fail, and what comes of them in the real rawnic.sys in
//! ndisim: a failed bind has freed its binding; NDIS never retries a bind
//! the protocol declined, so rawnic asks it to offer the adapter again
//! (`NdisReEnumerateProtocolBindings`) when a user lists the bindings or
//! opens a name it has none for, whether the open failed or the bind
//! never got as far as the open; under low resources every adapter NDIS
//! bound is listed. The verifier must stay clean in each test.

use ndisim::BindingState;
use rawnic_proto::NtStatus;
use rawnic_tests::drv::*;

/// A bind whose open fails, at once or pending, under the deterministic
/// scheduler: the bind fails only once the binding is freed (NDIS: a
/// protocol that fails a bind has freed what it allocated to establish
/// it). Before, the open completion that failed the bind still held the
/// binding, with its RW lock and work item (the explorer: det seeds 200047
/// and 200050).
#[test]
fn a_failed_bind_has_freed_its_binding() {
    for seed in 0..40u64 {
        let spec = if seed % 2 == 0 { "null@open=fail,open=pending" } else { "null@open=fail" };
        let sim = rawnic_tests::rawnic_builder()
            .adapter(spec)
            .adapter("null")
            .deterministic(seed)
            .strategy(ndisim::Strategy::Priorities { depth: 1 + seed as u32 % 3, horizon: 1 << (3 + seed % 6) })
            .start()
            .unwrap();
        assert_eq!(sim.open().map(|h| list(&h).len()).unwrap(), 1, "seed {seed}: the other adapter is bound");
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
}

/// A bind that failed for want of memory is not lost for good. NDIS never
/// retries a bind the protocol declined, so the adapter would stay unbound
/// until the next boot; rawnic asks NDIS to offer it again
/// (`NdisReEnumerateProtocolBindings`) when a user lists the bindings, and
/// NDIS then binds it.
#[test]
fn a_failed_bind_is_offered_again_when_a_user_lists() {
    let sim = rawnic_tests::rawnic_builder()
        .adapter("null@name=good")
        .adapter("null@name=late,open=fail-once")
        .start()
        .unwrap();
    let late = sim.adapter_id("late").unwrap();
    assert_eq!(sim.binding_state(late), BindingState::Unbound);
    assert!(!sim.reenumeration_owed(late).unwrap(), "nothing asked yet");
    let h = sim.open().unwrap();
    assert_eq!(list(&h).len(), 1);
    assert_eq!(sim.reenumerations(), 1, "the listing asked NDIS to offer the adapter again");
    assert!(sim.reenumeration_owed(late).unwrap());
    assert!(sim.serve_reenumeration(late).unwrap(), "bound this time");
    assert_eq!(sim.binding_state(late), BindingState::Running);
    let names: Vec<String> = list(&h).into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Nothing failed since: listings ask no more.
    assert_eq!(sim.reenumerations(), 1);
    // The late binding works like the other.
    let (l, _) = open(&sim, 1, rawnic_proto::filter::DEFAULT, &[]);
    let f = frame([0xFF; 6], PEER, 0x88b5, 60, 1);
    assert_eq!(send(&l, &[f]).accepted, 1);
    l.close();
    h.close();
    finish(sim);
}

/// The same through an OPEN of a name rawnic has no binding for: the
/// OPEN fails (the adapter is not bound yet) and asks for the offer; an
/// OPEN after NDIS bound it succeeds. An adapter whose bind never fails
/// is never offered again, and one NDIS does not owe a bind is not bound
/// by the offer.
#[test]
fn an_open_of_a_declined_adapter_asks_for_it_again() {
    let sim = rawnic_tests::rawnic_builder()
        .adapter("null@name=late,open=fail-once,open=pending")
        .adapter("null@name=good")
        .start()
        .unwrap();
    let (late, good) = (sim.adapter_id("late").unwrap(), sim.adapter_id("good").unwrap());
    let name = sim.adapter_ndis_name(late).unwrap();
    let h = sim.open().unwrap();
    let req = open_request(&name, rawnic_proto::filter::DEFAULT, &[], 0, 0, 0);
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_OPEN, &req, rawnic_proto::OpenReply::LEN);
    assert_eq!(status(r.status), NtStatus::OBJECT_NAME_NOT_FOUND);
    assert_eq!(sim.reenumerations(), 1);
    assert!(!sim.reenumeration_owed(good).unwrap(), "the bound adapter is not offered");
    assert!(!sim.serve_reenumeration(good).unwrap());
    assert!(sim.serve_reenumeration(late).unwrap());
    let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_OPEN, &req, rawnic_proto::OpenReply::LEN);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    // Served once: nothing more is owed.
    assert!(!sim.serve_reenumeration(late).unwrap());
    h.close();
    finish(sim);
}

/// Under low resources, every adapter NDIS has bound is one rawnic lists
/// (and so one a handle can open): the binding's place in the list is
/// made at the bind's start, so that the open's completion, after which
/// NDIS has the adapter open, needs no memory. Before, a list that could
/// not grow there left the binding open and unlisted until its unbind.
#[test]
fn under_low_resources_every_bound_adapter_is_listed() {
    let mut bound_total = 0;
    for seed in 0..60u64 {
        let sim = rawnic_tests::rawnic_builder()
            .adapter("null")
            .adapter("null")
            .adapter("null")
            .adapter("null")
            .low_resources(80, seed)
            .start()
            .unwrap();
        let ids: Vec<_> = (0..4).map(|i| sim.adapter_id(&format!("null{i}")).unwrap()).collect();
        let bound = ids.iter().filter(|&&a| sim.binding_state(a) != BindingState::Unbound).count();
        bound_total += bound;
        // The request that lists may itself be refused memory: retried.
        let listed = (0..200)
            .find_map(|_| {
                let h = sim.open().ok()?;
                let r = h.ioctl(rawnic_proto::IOCTL_RAWNIC_LIST_BINDINGS, &empty(), 64 * 1024);
                h.close();
                (r.status == 0).then(|| u32::from_le_bytes(r.data[4..8].try_into().unwrap()) as usize)
            })
            .expect("a listing got through");
        assert_eq!(listed, bound, "seed {seed}: NDIS bound {bound} adapters, rawnic lists {listed}");
        let r = sim.unload();
        assert!(r.is_clean(), "seed {seed}: {r}");
    }
    assert!(bound_total > 20, "binds got through often enough to mean something: {bound_total}");
}

/// A bind that fails before it opens the adapter (no memory for the
/// binding itself, so `ProtocolBindAdapterEx` returns the failure at
/// once) is declined as surely as one whose open failed: a user's listing
/// asks NDIS to offer the adapter again, and NDIS binds it.
#[test]
fn a_bind_refused_memory_before_its_open_is_offered_again() {
    let sim = rawnic_tests::rawnic_builder().adapter("null@name=good").adapter("null@name=late").start().unwrap();
    let late = sim.adapter_id("late").unwrap();
    sim.unbind(late).unwrap();
    // The bind's first allocation is the binding's: refused.
    sim.refuse_pool_allocations(1);
    let _ = sim.bind(late);
    assert_eq!(sim.refuse_pool_allocations(0), 0, "the bind asked for memory");
    assert_eq!(sim.binding_state(late), BindingState::Unbound);
    assert_eq!(sim.reenumerations(), 0);
    let h = sim.open().unwrap();
    assert_eq!(list(&h).len(), 1);
    assert_eq!(sim.reenumerations(), 1, "the listing asked NDIS to offer the adapter again");
    assert!(sim.serve_reenumeration(late).unwrap(), "bound this time");
    assert_eq!(sim.binding_state(late), BindingState::Running);
    assert_eq!(list(&h).len(), 2);
    h.close();
    finish(sim);
}
