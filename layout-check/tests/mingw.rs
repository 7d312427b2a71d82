//! ndis-sys against mingw-w64's `ddk/ntddk.h` and `ntddndis.h`, as bindgen
//! reads them for x64 Windows: every structure both declare, by size,
//! alignment, and each member's offset and size. Only the differences in
//! `layout_check::gaps::MINGW_GAPS` are allowed, each with its reason; any other difference
//! fails, naming the structure and member.

use layout_check::gaps::MINGW_GAPS;
use layout_check::{compare, mingw};

#[test]
fn ndis_sys_matches_the_mingw_headers() {
    if let Some(why) = mingw::UNAVAILABLE {
        panic!("the mingw-w64 headers could not be read, so nothing was compared: {why}");
    }
    let out = compare(mingw::CHECKS, MINGW_GAPS);
    assert!(
        out.failures.is_empty(),
        "{} differences between ndis-sys and the mingw-w64 headers:\n{}",
        out.failures.len(),
        out.failures.join("\n")
    );
    eprintln!(
        "compared {} structures, {} members, {} numbers; {} known header gaps",
        out.types, out.members, out.checks, out.gaps_seen
    );
    assert!(out.types >= 25, "only {} structures were compared", out.types);
    assert!(out.members >= 300, "only {} members were compared", out.members);
}

#[test]
fn a_wrong_declaration_is_caught_and_named() {
    assert!(mingw::UNAVAILABLE.is_none(), "the mingw-w64 headers could not be read");
    let out = compare(mingw::WRONG_CHECKS, &[]);
    let want = [
        "sizeof(NDIS_OBJECT_HEADER): ndis-sys 0x6, header 0x4",
        "NDIS_OBJECT_HEADER.Revision at 0x4 in ndis-sys, 0x1 in the header",
        "LIST_ENTRY.Back: ndis-sys declares it, the header does not",
    ];
    for w in want {
        assert!(out.failures.iter().any(|f| f == w), "{w:?} is not among {:#?}", out.failures);
    }
    // The members the wrong declarations get right pass.
    assert!(!out.failures.iter().any(|f| f.contains("NDIS_OBJECT_HEADER.Type") || f.contains("Flink")));
    assert_eq!(out.failures.len(), want.len(), "{:#?}", out.failures);
}

#[test]
fn every_listed_gap_names_a_compared_number() {
    for g in MINGW_GAPS {
        assert!(!g.reason.is_empty());
        assert!(
            mingw::CHECKS.iter().any(|c| c.c_type == g.c_type && c.member == g.member && c.what == g.what),
            "gap {}.{} ({:?}) names nothing that is compared",
            g.c_type,
            g.member,
            g.what
        );
    }
}
