//! The fixed-size messages on any bytes: what each accepts re-encodes to the
//! same bytes (apart from reserved ones the client does not check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_proto::*;

fn same<const N: usize>(data: &[u8], emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>, reserved: &[usize]) {
    let mut b = [0u8; N];
    assert_eq!(emit(&mut b).unwrap(), N);
    for i in 0..N {
        if !reserved.contains(&i) {
            assert_eq!(b[i], data[i], "byte {i}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if EmptyRequest::parse(data).is_ok() {
        same::<{ EmptyRequest::LEN }>(data, EmptyRequest::emit, &[]);
    }
    if let Ok(v) = StatsReply::parse(data) {
        same::<{ StatsReply::LEN }>(data, |b| v.emit(b), &[]);
    }
    if let Ok(v) = EventRecord::parse(data) {
        same::<{ EventRecord::LEN }>(data, |b| v.emit(b), &[]);
    }
    if let Ok(v) = VersionReply::parse(data) {
        same::<{ VersionReply::LEN }>(data, |b| v.emit(b), &[2, 3]);
    }
    if let Ok(v) = OpenReply::parse(data) {
        same::<{ OpenReply::LEN }>(data, |b| v.emit(b), &[18, 19, 20, 21, 22, 23]);
    }
    if let Ok(v) = SendReply::parse(data) {
        same::<{ SendReply::LEN }>(data, |b| v.emit(b), &[]);
    }
    if let Ok(v) = BindsCompleteReply::parse(data) {
        same::<{ BindsCompleteReply::LEN }>(data, |b| v.emit(b), &[]);
    }
});
