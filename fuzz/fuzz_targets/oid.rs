//! `OidRequest::parse` and `OidReplyHeader::parse` on any bytes; what they
//! accept re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::{OidReplyHeader, OidRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = OidRequest::parse(data) {
        let mut b = vec![0u8; data.len()];
        r.emit(&mut b).unwrap();
        assert_eq!(b, data);
    }
    for query in [false, true] {
        if let Ok((h, d)) = OidReplyHeader::parse(data, query) {
            let mut b = vec![0u8; OidReplyHeader::LEN];
            h.emit(&mut b).unwrap();
            assert_eq!(&b[..], &data[..OidReplyHeader::LEN]);
            assert_eq!(d.len(), if query { h.bytes as usize } else { 0 });
        }
    }
});
