//! The NET_BUFFER_LIST pool exports' parameter rules, each proven by a
//! deliberately wrong fixture driver (rule invalid-parameter).

use ndisim::*;
use rawnic_tests::verifier::start;

/// The report's violations, in order: `(call, part of the detail)`.
fn expect(r: &Report, want: &[(&str, &str)]) {
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    assert_eq!(r.rules(), vec![Rule::InvalidParameter], "{r}");
    assert_eq!(r.violations.len(), want.len(), "{r}");
    for (v, (call, detail)) in r.violations.iter().zip(want) {
        assert_eq!(v.call, *call, "{r}");
        assert!(v.detail.contains(detail), "expected {detail:?}:\n{r}");
    }
}

#[test]
fn nbl_pool_and_allocation_parameters() {
    // Each bad call is refused (NULL) and reported; nothing leaks.
    const ALLOC: &str = "NdisAllocateNetBufferAndNetBufferList";
    expect(
        &start("nbl_params", &[]).unload(),
        &[
            ("NdisAllocateNetBufferListPool", "ProtocolId 0x42"),
            (ALLOC, "DataSize 256"),
            (ALLOC, "ContextBackFill 8"),
            (ALLOC, "DataOffset is 14 and DataLength 0"),
            (ALLOC, "DataOffset is 0 and DataLength 60"),
        ],
    );
}

#[test]
fn a_sent_net_buffer_is_ndis_s_and_agrees_with_its_mdl_chain() {
    let sim = start("nb_misuse", &["null"]);
    let mut f = vec![0xFFu8; 60];
    (f[12], f[13]) = (0x88, 0xB5);
    sim.inject(AdapterId(0), &[&f], &InjectOpts::default()).unwrap();
    expect(
        &sim.unload(),
        &[
            ("NdisSendNetBufferLists", "point 4 bytes into the MDL chain, DataOffset 0"),
            ("NdisSendNetBufferLists", "not allocated by NDIS"),
        ],
    );
}

#[test]
fn a_protocol_sends_with_its_own_flags_on_the_default_port() {
    // A filter's SendFlags bit and a port nobody allocated: each reported,
    // and both frames still go out and complete (nothing leaks).
    let sim = start("send_params", &["null"]);
    let mut f = vec![0xFFu8; 60];
    (f[12], f[13]) = (0x88, 0xB5);
    sim.inject(AdapterId(0), &[&f], &InjectOpts::default()).unwrap();
    expect(&sim.unload(), &[("NdisSendNetBufferLists", "SendFlags 0x1"), ("NdisSendNetBufferLists", "PortNumber 1")]);
}
