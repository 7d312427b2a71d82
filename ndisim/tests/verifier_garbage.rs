//! Memory the driver never wrote, reaching user mode: no rule of one run
//! sees it (the bytes were written, from the uninitialized block), but two
//! deterministic runs of one seed with different garbage
//! (`SimBuilder::garbage`) give the caller different bytes
//! (`Sim::outputs`, `first_difference`).

use ndisim::*;
use rawnic_tests::fixture;
use std::time::Duration;

const CODE: u32 = 0x0012_0000;

/// What fixture `name` gave back to `requests` (IOCTL codes and output
/// lengths) from one handle, in a deterministic simulation with
/// `garbage`, and its report.
fn requests(name: &str, garbage: u8, requests: &[(u32, usize)]) -> (Vec<Output>, Report) {
    let sim = Sim::builder()
        .driver(fixture(name))
        .watchdog(Duration::from_secs(5))
        .deterministic(7)
        .garbage(garbage)
        .record_outputs(true)
        .start()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    for &(code, out) in requests {
        h.ioctl(code, &[], out);
    }
    h.close();
    let outputs = sim.outputs();
    (outputs, sim.unload())
}

/// The fixture's answers to three requests; its report is clean.
fn answers(name: &str, garbage: u8) -> Vec<Output> {
    let (outputs, r) = requests(name, garbage, &[(CODE, 64), (CODE, 32), (CODE, 8)]);
    assert!(r.violations.is_empty() && r.internal_errors.is_empty(), "{name}: {r}");
    outputs
}

#[test]
fn uninitialized_pool_copied_to_the_caller_differs_with_the_garbage() {
    let (a, b) = (answers("uninit_out", 0), answers("uninit_out", 0x5A));
    // CREATE, three IOCTLs, CLEANUP, CLOSE.
    assert_eq!(a.len(), 6, "{a:?}");
    assert_eq!(a[1].data.as_deref().map(|d| d[..24].to_vec()), Some(vec![0x11; 24]));
    assert_eq!(a[1].data.as_deref().map(|d| d[24..].to_vec()), Some(vec![0xC5; 8]), "fresh pool's usual byte");
    assert_eq!(b[1].data.as_deref().map(|d| d[24..].to_vec()), Some(vec![0xC5 ^ 0x5A; 8]));
    let d = first_difference(&a, &b).expect("the garbage shows");
    assert!(d.starts_with("request 1 completed") && d.contains("from offset 24"), "{d}");
    // The same garbage again: the same answers (the difference is the
    // garbage's, not the run's).
    assert_eq!(first_difference(&a, &answers("uninit_out", 0)), None);
    // The third request's buffer was too small: refused the same way.
    assert_eq!((a[3].status, a[3].len), (ndis_sys::STATUS_BUFFER_TOO_SMALL, 0));
}

#[test]
fn an_unwritten_stack_array_copied_to_the_caller_differs_with_the_garbage() {
    let run = |g: u8| {
        let (o, r) = requests("uninit_out", g, &[(CODE + 4, 32)]);
        assert!(r.violations.is_empty(), "{r}");
        assert_eq!((o[1].status, o[1].information), (0, 32));
        let data = o[1].data.clone().expect("kept");
        (o, data)
    };
    let ((a, da), (b, db)) = (run(0), run(0x5A));
    // The stack's paint, "DNASTACK" little-endian, xor'ed with the garbage.
    assert_eq!(&da[..8], b"DNASTACK", "{da:02x?}");
    assert_eq!(db[..8], b"DNASTACK".map(|c| c ^ 0x5A), "{db:02x?}");
    assert!(first_difference(&a, &b).expect("differs").contains("from offset 0"));
}

#[test]
fn unwritten_buffered_output_differs_with_the_garbage_too() {
    // irp_stale returns 64 bytes of which it wrote 4: rule irp-stale-output
    // sees the poison run in one run; the outputs differ from byte 4 too.
    let run = |g: u8| {
        let (o, r) = requests("irp_stale", g, &[(CODE, 64)]);
        assert_eq!(r.rules(), vec![Rule::IrpStaleOutput], "poison {g:#x} is still seen: {r}");
        o
    };
    let d = first_difference(&run(0), &run(0x5A)).expect("differs");
    assert!(d.contains("from offset 4"), "{d}");
}

#[test]
fn nothing_is_recorded_unless_asked() {
    let sim = Sim::builder().driver(fixture("uninit_out")).watchdog(Duration::from_secs(5)).start().unwrap();
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    h.ioctl(CODE, &[], 32);
    h.close();
    assert!(sim.outputs().is_empty());
    assert!(sim.unload().violations.is_empty());
}

/// What fixture `nbl_reserved` answers to `code` (64 bytes of output) on
/// a null adapter with `garbage`; its report is clean.
fn unwritten(code: u32, garbage: u8) -> IoResult {
    let sim = Sim::builder()
        .driver(fixture("nbl_reserved"))
        .adapter("null")
        .watchdog(Duration::from_secs(5))
        .garbage(garbage)
        .start()
        .unwrap();
    let h = sim.open_path("\\\\.\\Fixture", 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(code, &[], 64);
    h.close();
    let rep = sim.unload();
    assert!(rep.violations.is_empty() && rep.internal_errors.is_empty(), "{rep}");
    r
}

#[test]
fn a_fresh_nbl_s_protocol_words_hold_garbage_not_zeros() {
    // No page promises NDIS clears ProtocolReserved; a driver that reads
    // one of its words before writing it must not find a zero (which the
    // driver could take for "nothing here").
    for g in [0u8, 0x5A] {
        let r = unwritten(CODE, g);
        assert_eq!((r.status, r.information), (0, 64));
        assert_eq!(r.data, vec![0xC5 ^ g; 64], "garbage {g:#x}");
    }
}

#[test]
fn a_fresh_nbl_s_context_data_holds_garbage_not_zeros() {
    // NET_BUFFER_LIST_CONTEXT's data, backfill and used space alike
    // (ContextSize 32, ContextBackFill 16): no page promises NDIS clears
    // it.
    for g in [0u8, 0x5A] {
        let r = unwritten(CODE + 4, g);
        assert_eq!((r.status, r.information), (0, 48), "garbage {g:#x}");
        assert_eq!(r.data, vec![0xC5 ^ g; 48], "garbage {g:#x}");
    }
}

#[test]
fn the_data_of_a_pool_with_a_data_size_holds_garbage_not_zeros() {
    // The data buffer NDIS allocates with an NBL of a pool made with a
    // DataSize (64): no page promises NDIS clears it.
    for g in [0u8, 0x5A] {
        let r = unwritten(CODE + 8, g);
        assert_eq!((r.status, r.information), (0, 64), "garbage {g:#x}");
        assert_eq!(r.data, vec![0xC5 ^ g; 64], "garbage {g:#x}");
    }
}
