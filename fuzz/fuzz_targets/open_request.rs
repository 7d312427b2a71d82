//! `OpenRequest::new_checked` on any bytes; what it accepts re-encodes to a
//! request that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::{OpenRepr, OpenRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = OpenRequest::new_checked(data) else { return };
    let ethertypes: Vec<u16> = r.ethertypes().collect();
    let repr = OpenRepr {
        name: r.name(),
        ethertypes: &ethertypes,
        packet_filter: r.packet_filter(),
        queue_frames: r.queue_frames(),
        queue_bytes: r.queue_bytes(),
        snaplen: r.snaplen(),
        local_sends: r.local_sends(),
        strict_filter: r.strict_filter(),
    };
    assert_eq!(repr.wire_len(), data.len());
    let mut b = vec![0u8; repr.wire_len()];
    repr.emit(&mut b).unwrap();
    let again = OpenRequest::new_checked(&b).unwrap();
    assert_eq!(again.name(), r.name());
    assert!(again.ethertypes().eq(r.ethertypes()));
    assert_eq!(
        (again.packet_filter(), again.queue_frames(), again.queue_bytes(), again.snaplen()),
        (r.packet_filter(), r.queue_frames(), r.queue_bytes(), r.snaplen())
    );
});
