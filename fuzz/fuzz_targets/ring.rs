//! The ring messages and the UMEM layout on any bytes: what each parser
//! accepts re-encodes to the same bytes (apart from reserved ones), and a
//! layout it accepts keeps every ring and the frames inside the UMEM, apart
//! and in order, with the offset checks agreeing with plain arithmetic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::ring::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = RingSetup::parse(data) {
        let mut b = [0u8; RingSetup::LEN];
        assert_eq!(s.emit(&mut b), Ok(RingSetup::LEN));
        assert_eq!(&b[..], data);
        let l = RingLayout::new(&s).expect("parse checked it");
        let areas = [l.fill, l.rx, l.tx, l.completion];
        let mut end = CONTROL_LEN;
        for a in areas {
            assert!(a.offset >= end && a.size.is_power_of_two());
            end = a.offset + RING_HEADER + a.size as usize * a.entry;
        }
        assert!(end <= l.frames && l.frames.is_multiple_of(PAGE));
        assert_eq!(l.total, l.frames + (s.frame_count * s.frame_size) as usize);
        assert!(l.total <= MAX_UMEM_BYTES);
        if data.len() >= 12 {
            let addr = u64::from_le_bytes(data[4..12].try_into().unwrap()) % (l.total as u64 + 8192);
            let fs = s.frame_size as u64;
            let naive = addr >= l.frames as u64 && (addr - l.frames as u64).is_multiple_of(fs) && addr < l.total as u64;
            assert_eq!(l.is_frame_start(addr), naive);
            let len = u32::from_le_bytes(data[8..12].try_into().unwrap()) % 5000;
            let d = TxDesc { addr, len, flags: 0 };
            let (frames, end) = (l.frames as u64, addr + len as u64);
            // The first and last byte in one frame, inside the frames.
            let inside =
                addr >= frames && len > 0 && end <= l.total as u64 && (addr - frames) / fs == (end - 1 - frames) / fs;
            let naive = (14..=1518).contains(&(len as usize)) && inside;
            assert_eq!(l.check_tx(&d, 1518).is_ok(), naive, "{d:?}");
        }
    }
    if let Ok(flags) = RingWaitRequest::parse(data) {
        let mut b = [0u8; RingWaitRequest::LEN];
        assert_eq!(RingWaitRequest::emit(flags, &mut b), Ok(RingWaitRequest::LEN));
        assert_eq!(&b[..], data);
    }
    if let Ok(r) = RingReply::parse(data) {
        let mut b = [0u8; RingReply::LEN];
        assert_eq!(r.emit(&mut b), Ok(RingReply::LEN));
        assert_eq!(&b[..20], &data[..20]);
    }
    if let Ok(raw) = <[u8; RxDesc::LEN]>::try_from(&data[..data.len().min(RxDesc::LEN)]) {
        assert_eq!(RxDesc::from_bytes(&raw).to_bytes(), raw);
    }
    if let Ok(raw) = <[u8; TxDesc::LEN]>::try_from(&data[..data.len().min(TxDesc::LEN)]) {
        assert_eq!(TxDesc::from_bytes(&raw).to_bytes(), raw);
    }
});
