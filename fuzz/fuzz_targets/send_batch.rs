//! `SendBatch::new_checked` on any bytes (the first two choose the maximum
//! frame length); what it accepts re-encodes to the same frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::{SendBatch, SendBatchWriter, SendFrame, max_send_len};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max_frame = u16::from_le_bytes([data[0], data[1]]) as usize;
    let buf = &data[2..];
    let Ok(batch) = SendBatch::new_checked(buf, max_frame) else { return };
    let frames: Vec<SendFrame<'_>> = batch.frames().collect();
    assert_eq!(frames.len(), batch.count() as usize);
    for f in &frames {
        assert!(f.data.len() >= 14 && f.data.len() <= max_send_len(max_frame, f.data, f.tci));
    }
    let size = SendBatchWriter::HEADER + frames.iter().map(|f| f.wire_len()).sum::<usize>();
    // Only the last record's padding may be missing.
    assert!(size >= buf.len() && size - buf.len() < 8);
    let mut b = vec![0u8; size];
    let mut w = SendBatchWriter::new(&mut b).unwrap();
    for f in &frames {
        w.push(f).unwrap();
    }
    w.finish();
    let again = SendBatch::new_checked(&b, max_frame).unwrap();
    assert!(again.frames().eq(frames.iter().copied()));
});
