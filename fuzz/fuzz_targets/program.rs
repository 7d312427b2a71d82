//! A SET_PROGRAM request from any bytes (behind a 4-byte header), through
//! `ProgramRequest::new_checked` and `Program::new`; a program they take
//! runs on the rest of the bytes, as a frame whole and cut into two parts,
//! to an end (no panic), with the same result both ways; and on the frame
//! as one whose 802.1Q tag the NIC stripped, as the frame with that tag
//! inline answers (its cut less the tag's bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_logic::bpf::{Parts, Program};
use rawnic_proto::{PROTO_VERSION, ProgramRequest};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    // The first two bytes: how many of the rest are the program's
    // instructions (8 each); the rest after them is the frame.
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])) % 64;
    let rest = &data[2..];
    let prog_len = (8 * n).min(rest.len() / 8 * 8);
    let (insns, frame) = rest.split_at(prog_len);
    let mut req = Vec::with_capacity(8 + insns.len());
    req.extend_from_slice(&PROTO_VERSION.to_le_bytes());
    req.extend_from_slice(&[0, 0]);
    req.extend_from_slice(&((insns.len() / 8) as u32).to_le_bytes());
    req.extend_from_slice(insns);
    let r = ProgramRequest::new_checked(&req).expect("a well-formed request");
    let Ok(p) = Program::new(r.insns()) else { return };
    let whole = p.run(frame);
    let cut = frame.len() / 2;
    assert_eq!(p.run(&Parts(&[&frame[..cut], &frame[cut..]])), whole);
    let tci = u16::from_le_bytes([data[0], data[1]]) | 1;
    let macs = frame.len().min(12);
    let tag = [0x81, 0x00, (tci >> 8) as u8, tci as u8];
    let on_wire = p.run(&Parts(&[&frame[..macs], &tag, &frame[macs..]]));
    let want = match on_wire {
        0 | u32::MAX => on_wire,
        k if k as usize <= macs => k,
        k if k as usize <= macs + 4 => (macs as u32).max(1),
        k => k - 4,
    };
    assert_eq!(p.run_stripped(frame, tci), want);
});
