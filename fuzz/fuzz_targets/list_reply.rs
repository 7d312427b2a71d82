//! `ListReply::new_checked` and `BindingEntry::parse` on any bytes; the
//! entries it accepts re-encode to entries that parse the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::{BindingEntry, ListReply};

fuzz_target!(|data: &[u8]| {
    let _ = BindingEntry::parse(data);
    let Ok(l) = ListReply::new_checked(data) else { return };
    let mut n = 0;
    for e in l.entries() {
        let mut b = vec![0u8; e.wire_len()];
        if e.emit(&mut b).is_ok() {
            let (again, len) = BindingEntry::parse(&b).unwrap();
            assert_eq!(again, e);
            assert_eq!(len, b.len());
        } else {
            // Only names longer than the driver ever sends fail to emit.
            assert!(e.name.len() > rawnic_proto::MAX_NAME || e.description.len() > rawnic_proto::MAX_NAME);
        }
        n += 1;
    }
    assert_eq!(n, l.header.count);
});
