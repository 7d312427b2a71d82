//! A status indication's `StatusBuffer` is exactly `StatusBufferSize`
//! bytes, lent for the `ProtocolStatusEx` call: the `status_overread`
//! fixture reads an `NDIS_LINK_STATE` (40 bytes) out of every
//! `NDIS_STATUS_LINK_STATE` indication without looking at the size, and
//! reads its last buffer again from an IOCTL. A fault ends the process (as
//! a bug check ends the machine), so each case runs in a child process.

use ndisim::*;
use rawnic_tests::fixture;

const FIXTURE: &str = "\\\\.\\Fixture";
const CODE_LATE: u32 = 0x0012_0000 | (0x880 << 2);
const LINK_STATE: i32 = ndis_sys::NDIS_STATUS_LINK_STATE;
/// `size_of::<NDIS_LINK_STATE>()`.
const FULL: usize = 40;

/// The scenario the tests below run in a child process
/// (`NDISIM_STATUS_CHILD`): a full-size link state, then one of
/// `short:N` bytes, or (`late`) the IOCTL that reads the kept buffer.
#[test]
fn status_child() {
    let Some(what) = std::env::var_os("NDISIM_STATUS_CHILD") else { return };
    let what = what.into_string().unwrap();
    let sim =
        Sim::builder().driver(fixture("status_overread")).adapter("null").start().unwrap_or_else(|e| panic!("{e}"));
    let a = AdapterId(0);
    sim.indicate_status(a, LINK_STATE, &[0x5a; FULL], true).unwrap();
    eprintln!("a full-size buffer was read");
    match what.split_once(':') {
        Some(("short", n)) => {
            let n: usize = n.parse().unwrap();
            sim.indicate_status(a, LINK_STATE, &vec![0x5a; n], false).unwrap();
        }
        _ => {
            let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
            assert_eq!(h.ioctl(CODE_LATE, &[], 0).status, 0);
            h.close();
        }
    }
    eprintln!("nothing happened");
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

/// Runs `status_child` alone in a child process with `what`: its exit
/// code and all it printed.
fn child(what: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "status_child", "--nocapture", "--test-threads=1"])
        .env("NDISIM_STATUS_CHILD", what)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

/// Short by a few bytes (within the 8-byte rounding of the heap copy that
/// hid it), by most of it, and by one byte: the first byte past the buffer
/// faults at the fixture's read, and the fault names the indication.
#[test]
fn a_read_past_a_short_status_buffer_faults() {
    for n in [36, 4, 39] {
        let (code, text) = child(&format!("short:{n}"));
        assert_eq!(code, Some(EXIT_DRIVER_FAULT), "{n} bytes: {text}");
        assert!(text.contains("a full-size buffer was read"), "{text}");
        assert!(
            text.contains("DRIVER FAULT: access violation") && text.contains("status_overread15status_overread"),
            "{text}"
        );
        assert!(
            text.contains(&format!("StatusBuffer of a status indication {LINK_STATE:#x}, StatusBufferSize {n}"))
                && text.contains("past StatusBufferSize"),
            "{n} bytes: {text}"
        );
        assert!(!text.contains("nothing happened"), "{text}");
    }
}

/// The buffer is the miniport's again once `ProtocolStatusEx` returned.
#[test]
fn a_status_buffer_read_after_the_call_faults() {
    let (code, text) = child("late");
    assert_eq!(code, Some(EXIT_DRIVER_FAULT), "{text}");
    assert!(text.contains("DRIVER FAULT: access violation") && text.contains("status_overread5ioctl"), "{text}");
    assert!(text.contains(&format!("StatusBufferSize {FULL}")) && text.contains("taken back"), "{text}");
    assert!(!text.contains("nothing happened"), "{text}");
}

/// A buffer the fixture reads within its size, at either IRQL: clean.
#[test]
fn a_read_within_the_status_buffer_is_clean() {
    let (code, text) = child(&format!("short:{}", FULL + 3));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("nothing happened"), "{text}");
}
