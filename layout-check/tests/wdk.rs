//! ndis-sys against the WDK's `ndis.h` (feature `wdk`, Windows with the WDK
//! only). The crate does not compile unless every check agrees or is in
//! `WDK_ALLOWED`; this reports the figures, and the allowances that are not
//! needed.
#![cfg(feature = "wdk")]

use layout_check::gaps::WDK_ALLOWED;
use layout_check::{compare, wdk};

#[test]
fn ndis_sys_matches_the_wdk_headers() {
    let out = compare(wdk::CHECKS, WDK_ALLOWED);
    assert!(out.failures.is_empty(), "{}", out.failures.join("\n"));
    eprintln!("compared {} structures, {} members, {} numbers with the WDK", out.types, out.members, out.checks);
    assert!(out.types >= 50, "only {} structures were compared", out.types);
}
