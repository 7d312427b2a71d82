//! User memory (`UserRegion`) as the direct output buffer of an IOCTL, and
//! the MDL rules that come with it. The fixtures' rules are proven in
//! `verifier_user_memory.rs`; here the I/O manager's side, with rawnic.sys.

use ndisim::*;
use rawnic_proto::ioctl::{IOCTL_RAWNIC_GET_VERSION, IOCTL_RAWNIC_RING_ATTACH};
use rawnic_tests::drv::{finish, start};

#[test]
fn a_region_request_is_direct_only_and_copies_nothing_back() {
    let s = start(&["loopback"]);
    let h = s.open().unwrap();
    let r = UserRegion::new(64 * 1024).unwrap();
    r.write(0, b"user bytes");
    // A buffered code cannot take live memory.
    assert_eq!(
        h.ioctl_region_async(IOCTL_RAWNIC_GET_VERSION, &[], r.clone()).unwrap_err(),
        ndis_sys::STATUS_INVALID_PARAMETER
    );
    // An attach without a binding opened is refused, whatever the driver's
    // reason; the region is still the caller's and unchanged.
    let t = h.ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &[0u8; 8], r.clone()).unwrap();
    let res = t.wait().expect("completed");
    assert!(res.status < 0, "{res:?}");
    assert!(res.data.is_empty());
    assert_eq!(r.to_vec(0, 10), b"user bytes");
    drop(t);
    // The IRP let go of the region when it was retired.
    assert_eq!(std::sync::Arc::strong_count(&r), 1);
    h.close();
    finish(s);
}
