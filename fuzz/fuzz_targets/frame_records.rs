//! `FrameRecords::new_checked` (ReadFile buffers) on any bytes; what it
//! accepts iterates to exactly its records, each re-encoding to its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::{FrameHeader, FrameRecords, frame_flags};

fuzz_target!(|data: &[u8]| {
    let _ = FrameHeader::parse(data);
    let Ok(r) = FrameRecords::new_checked(data) else { return };
    let mut n = 0;
    let mut off = 0;
    for (h, d) in r.iter() {
        assert_eq!(d.len(), h.caplen as usize);
        assert_eq!(h.caplen < h.origlen, h.flags & frame_flags::TRUNCATED != 0);
        assert!(h.flags & (frame_flags::TAGGED | frame_flags::VLAN) != 0 || h.tci == 0);
        assert!(h.flags & frame_flags::COALESCED != 0 || (h.segs, h.seg_size) == (0, 0));
        assert_eq!(&data[off..off + FrameHeader::LEN], &h.to_bytes()[..]);
        off = (off + FrameHeader::record_len(d.len())).min(data.len());
        n += 1;
    }
    assert_eq!(off, data.len());
    assert_eq!(n, r.len());
});
