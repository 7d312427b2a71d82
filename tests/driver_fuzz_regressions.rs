//! What the `driver_ioctls` fuzz target (fuzz/) found in the real
//! rawnic.sys, each as the smallest program of its that shows it.

use rawnic_proto::{IOCTL_RAWNIC_QUERY_OID, NtStatus, PacketFilter};
use rawnic_tests::drv::*;
use std::time::Duration;

/// A user query of OID_802_3_CURRENT_ADDRESS with an output buffer of 19
/// bytes, on an adapter that answers OIDs later from another thread
/// (`oid=pending`), cancelled at once (the cancel lands before, while or
/// after the miniport holds it, as the deterministic seed has it): it must
/// complete, CANCELLED or with the miniport's answer, in a deterministic
/// simulation too. The fuzz target (DFUZZ_DET=11) found it "never
/// completed": the fault was ndisim's, not the driver's. `IoToken::
/// wait_for` waited in real time on a thread the deterministic scheduler
/// does not run, so nothing of the simulation ran meanwhile, not even the
/// DPC that completes the pending OID (with or without the cancel); it now
/// waits in the simulation's virtual time.
#[test]
fn a_pending_oid_query_cancelled_by_its_user_completes() {
    for round in 0..20 {
        let sim = start_with(&["loopback@open=pending,close=pending,oid=pending"], |b| b.deterministic(11 + round));
        let (h, _) = open(&sim, 0, PacketFilter::PROMISCUOUS, &[]);
        // As the fuzz target sent it (DFUZZ_TRACE): version 5,
        // OID_802_3_CURRENT_ADDRESS, no data.
        let input = [5, 0, 0, 0, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let t = h.ioctl_async(IOCTL_RAWNIC_QUERY_OID, &input, 19).unwrap();
        t.cancel();
        let r = t.wait_for(Duration::from_secs(5));
        let r = r.unwrap_or_else(|| panic!("round {round}: the cancelled OID query never completed"));
        let st = status(r.status);
        assert!(
            matches!(
                st,
                NtStatus::SUCCESS | NtStatus::CANCELLED | NtStatus::BUFFER_TOO_SMALL | NtStatus::BUFFER_OVERFLOW
            ),
            "round {round}: {st:?}"
        );
        h.close();
        finish(sim);
    }
}
