//! NET_BUFFER pools and NBLs without preallocated NET_BUFFERs: a send of
//! several NET_BUFFERs per NBL, and each rule of the five exports
//! (`NdisAllocateNetBufferList`, `NdisAllocateNetBufferPool`,
//! `NdisAllocateNetBuffer`, `NdisFreeNetBuffer`, `NdisFreeNetBufferPool`),
//! proven by the fixture `nb_chain`.

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

const FIXTURE: &str = "\\\\.\\Fixture";

/// `CTL_CODE(0x12, function, METHOD_BUFFERED, FILE_ANY_ACCESS)`.
const fn code(function: u32) -> u32 {
    0x0012_0000 | (function << 2)
}
const CODE_SEND: u32 = code(0x910);
const CODE_COUNT: u32 = code(0x911);
const CODE_DATA: u32 = code(0x912);
const CODE_DOUBLE_FREE: u32 = code(0x913);
const CODE_FREE_SENT: u32 = code(0x914);
const CODE_SEND_FREED: u32 = code(0x915);
const CODE_KEEP: u32 = code(0x916);
const CODE_KEEP_POOL: u32 = code(0x917);
const CODE_PARAMS: u32 = code(0x918);

const A: AdapterId = AdapterId(0);

fn start(adapter: &str) -> Sim {
    Sim::builder().driver(fixture("nb_chain")).adapter(adapter).watchdog(Duration::from_secs(5)).start().unwrap()
}

/// Runs `code` (input `input`) on a fresh handle; the output.
fn run(sim: &Sim, code: u32, input: &[u8], out: usize) -> Vec<u8> {
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(code, input, out);
    assert_eq!(r.status, 0, "IOCTL {code:#x}");
    h.close();
    r.data
}

/// (NBLs completed, NET_BUFFERs freed) so far.
fn counts(sim: &Sim) -> (u32, u32) {
    let d = run(sim, CODE_COUNT, &[], 8);
    (u32::from_le_bytes(d[0..4].try_into().unwrap()), u32::from_le_bytes(d[4..8].try_into().unwrap()))
}

/// The 60-byte frame the fixture sends as NET_BUFFER `index`.
fn frame(index: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..60).map(|i| if i < 6 { 0xFF } else { i as u8 }).collect();
    f[12..15].copy_from_slice(&[0x88, 0xB5, index]);
    f
}

/// The report's violations, in order: `(rule, call, part of the detail)`.
fn expect(r: &Report, want: &[(Rule, &str, &str)]) {
    assert!(r.internal_errors.is_empty(), "internal errors: {r}");
    let seen: Vec<(Rule, &str, &str)> =
        r.violations.iter().map(|v| (v.rule, v.call.as_str(), v.detail.as_str())).collect();
    assert_eq!(seen.len(), want.len(), "{r}");
    for ((rule, call, detail), (want_rule, want_call, want_detail)) in seen.iter().zip(want) {
        assert!(
            rule == want_rule && call == want_call && detail.contains(want_detail),
            "expected {want_rule} in {want_call}: {want_detail}\n{r}"
        );
    }
}

#[test]
fn an_nbl_of_three_net_buffers_goes_out_as_three_frames_and_comes_back_once() {
    for completion in ["immediate", "held", "batch:2", "scatter", "delay:2"] {
        let sim = start(&format!("loopback@completion={completion},capture=on"));
        run(&sim, CODE_SEND, &[], 0);
        if completion == "held" {
            assert_eq!(counts(&sim), (0, 0), "held: NDIS still has the NBL");
            sim.release_sends(A, None).unwrap();
        }
        if completion == "batch:2" {
            // A second send fills the batch.
            run(&sim, CODE_SEND, &[], 0);
        }
        let sends = if completion == "batch:2" { 2 } else { 1 };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while counts(&sim) != (sends, 3 * sends) {
            assert!(std::time::Instant::now() < deadline, "{completion}: {:?}", counts(&sim));
            std::thread::sleep(Duration::from_millis(2));
        }
        let got: Vec<Vec<u8>> = sim.captured(A).into_iter().map(|f| f.data).collect();
        let want: Vec<Vec<u8>> = (0..sends).flat_map(|_| (0..3).map(frame)).collect();
        assert_eq!(got, want, "{completion}: each NET_BUFFER its own frame, in order");
        assert_eq!(sim.sent_frames(A), 3 * u64::from(sends), "{completion}");
        let r = sim.unload();
        assert!(r.is_clean(), "{completion}: {r}");
    }
}

#[test]
fn each_net_buffer_of_a_looped_back_nbl_comes_back_as_a_frame() {
    let sim = start("loopback@capture=on");
    let before = sim.received_frames(A);
    run(&sim, CODE_SEND, &[1], 0);
    assert!(sim.settle(A));
    assert_eq!(sim.received_frames(A) - before, 3, "three frames looped back");
    assert_eq!(counts(&sim), (1, 3));
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

#[test]
fn an_nbl_from_a_pool_with_a_data_size_comes_with_its_data() {
    let sim = start("loopback@capture=on");
    let out = run(&sim, CODE_DATA, &[], 4);
    assert_eq!(u32::from_le_bytes(out[..4].try_into().unwrap()), 128, "a NET_BUFFER, an MDL and DataSize bytes");
    let captured = sim.captured(A);
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].data.len(), 128);
    assert_eq!(&captured[0].data[12..14], &[0x88, 0xB5]);
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

#[test]
fn each_misuse_of_the_calls_is_refused_and_reported() {
    let sim = start("loopback");
    run(&sim, CODE_PARAMS, &[], 0);
    const POOL: &str = "NdisAllocateNetBufferPool";
    const NB: &str = "NdisAllocateNetBuffer";
    const FREE: &str = "NdisFreeNetBuffer";
    const FREE_POOL: &str = "NdisFreeNetBufferPool";
    let bad = Rule::InvalidParameter;
    expect(
        &sim.unload(),
        &[
            (bad, POOL, "bad header {Type 0x80, Revision 2"),
            (bad, POOL, "PoolTag is zero"),
            (bad, POOL, "NdisHandle is not the protocol's registration handle"),
            (bad, NB, "DataSize 256"),
            (bad, NB, "DataOffset is 14 and DataLength 0"),
            (bad, NB, "DataOffset 10 + DataLength 60 exceed the MDL chain's 64 bytes"),
            (bad, "NdisAllocateNetBufferList", "ContextSize 8"),
            (bad, FREE, "came with its NBL"),
            (bad, FREE, "not a NET_BUFFER from NdisAllocateNetBuffer"),
            (bad, FREE_POOL, "freed already"),
            (bad, FREE_POOL, "not a NET_BUFFER pool handle"),
        ],
    );
}

#[test]
fn a_net_buffer_freed_twice_breaks_nbl_ownership() {
    let sim = start("loopback");
    run(&sim, CODE_DOUBLE_FREE, &[], 0);
    expect(&sim.unload(), &[(Rule::NblOwnership, "NdisFreeNetBuffer", "already free (double free)")]);
}

#[test]
fn a_net_buffer_freed_while_ndis_has_its_nbl_breaks_nbl_ownership_and_is_kept() {
    let sim = start("loopback@completion=held,capture=on");
    run(&sim, CODE_FREE_SENT, &[], 0);
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].rule, v[0].call.as_str()), (Rule::NblOwnership, "NdisFreeNetBuffer"));
    assert!(v[0].detail.contains("chained on a sent NBL that NDIS still owns"), "{}", v[0].detail);
    // Kept: the frames went out whole, and the completion frees it.
    sim.release_sends(A, None).unwrap();
    assert_eq!(counts(&sim), (1, 2));
    let got: Vec<Vec<u8>> = sim.captured(A).into_iter().map(|f| f.data).collect();
    assert_eq!(got, vec![frame(0), frame(1)]);
    let r = sim.unload();
    assert_eq!(r.violations.len(), 1, "nothing more: {r}");
}

#[test]
fn a_freed_net_buffer_sent_again_is_no_net_buffer_of_ndis() {
    let sim = start("loopback");
    run(&sim, CODE_SEND_FREED, &[], 0);
    expect(&sim.unload(), &[(Rule::InvalidParameter, "NdisSendNetBufferLists", "was not allocated by NDIS")]);
}

#[test]
fn a_net_buffer_pool_freed_with_a_net_buffer_allocated_leaks_it() {
    let sim = start("loopback");
    run(&sim, CODE_KEEP, &[], 0);
    expect(&sim.unload(), &[(Rule::NblLeak, "NdisFreeNetBufferPool", "freed with 1 NET_BUFFER(s) still allocated")]);
}

#[test]
fn a_net_buffer_pool_the_bind_made_must_be_gone_when_the_unbind_completes() {
    let sim = start("loopback");
    run(&sim, CODE_KEEP_POOL, &[], 0);
    sim.unbind(A).unwrap();
    let r = sim.unload();
    assert!(r.internal_errors.is_empty(), "{r}");
    assert_eq!(r.rules(), vec![Rule::ResourceLeak], "{r}");
    let details: Vec<&str> = r.violations.iter().map(|v| v.detail.as_str()).collect();
    assert!(details[0].contains("(a NET_BUFFER pool)"), "at the unbind: {r}");
    assert!(details.iter().any(|d| d.contains("1 NET_BUFFER pool(s)")), "at the deregistration: {r}");
    assert!(details.iter().any(|d| d.contains("NET_BUFFER pool (tag Fixt) was never freed")), "at unload: {r}");
}
