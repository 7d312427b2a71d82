//! The device bridge's headers on any bytes: a request header that parses
//! re-encodes to exactly its bytes; a completion header to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::bridge::{CompletionHeader, RequestHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = RequestHeader::parse(data) {
        let mut b = [0u8; RequestHeader::LEN];
        h.emit(&mut b).unwrap();
        assert_eq!(&b[..], &data[..RequestHeader::LEN]);
    }
    if let Ok(h) = CompletionHeader::parse(data) {
        let mut b = [0u8; CompletionHeader::LEN];
        h.emit(&mut b).unwrap();
        assert_eq!(CompletionHeader::parse(&b).unwrap(), h);
    }
});
