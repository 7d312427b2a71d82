//! The same commit gives the same image wherever its checkout lies: the
//! kernel sources are copied to another directory and built there, and the
//! image must equal the build script's byte for byte, but for the fields a
//! link writes afresh each time (`support::pe::link_fields`).
//!
//! Before `xtask::stable`, cargo's crate metadata hashed the checkout's path
//! (the kernel workspace's path dependencies lie outside it), and two
//! checkouts of one commit gave images whose code differed in some 168 KB.
//!
//! Not harnessed: this executable is the copied build's rustc wrapper
//! (`xtask::stable`), so its `main` must look for that first.

use rawnic_tests::{images_dir, pe, root};
use std::fs;
use std::process::ExitCode;

/// What the kernel build reads: the driver workspace and its path
/// dependencies (`driver/Cargo.toml`).
const SOURCES: &[&str] = &["driver", "logic", "proto", "ndis-sys"];

fn main() -> ExitCode {
    if let Some(code) = xtask::stable::wrap_rustc_if_asked() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list` and nextest's discovery.
        println!("reproducible: test");
        return ExitCode::SUCCESS;
    }
    // A name filter (`cargo test NAME`) that this test does not match.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "reproducible".contains(f.as_str())) {
        return ExitCode::SUCCESS;
    }
    let root = root();
    // Another path, deeper by two parts and with another last name: its
    // length and every component differ from the checkout's.
    let other = root.join("target").join("reproducible").join("elsewhere");
    let _ = fs::remove_dir_all(&other);
    for dir in SOURCES {
        xtask::kernel::sync_mirror(&root.join(dir), &other.join(dir)).expect("a copy of the kernel sources");
    }
    let tc = xtask::toolchain::locate().expect("the kernel toolchain");
    let images = xtask::kernel::build(&other, &tc, true).expect("the kernel build in the copy");
    let here = fs::read(images_dir().join("rawnic.sys")).unwrap();
    let there = fs::read(images.join("rawnic.sys")).unwrap();
    assert_eq!(here.len(), there.len(), "the two images differ in length");
    let mut masked = (here.clone(), there.clone());
    let fields = pe::link_fields(&here);
    assert_eq!(fields, pe::link_fields(&there), "the two images' link fields lie apart");
    for r in &fields {
        masked.0[r.clone()].fill(0);
        masked.1[r.clone()].fill(0);
    }
    let differ = masked.0.iter().zip(&masked.1).filter(|(a, b)| a != b).count();
    let first = masked.0.iter().zip(&masked.1).position(|(a, b)| a != b);
    assert_eq!(
        differ,
        0,
        "rawnic.sys built in {} and in {} differs in {differ} bytes (the first at {first:?}) beyond the link's own fields",
        root.display(),
        other.display()
    );
    println!(
        "reproducible: rawnic.sys ({} bytes) is the same built in {} ({} link fields aside)",
        here.len(),
        other.display(),
        fields.len()
    );
    // 145 MB of build output: kept only when the test fails.
    let _ = fs::remove_dir_all(root.join("target").join("reproducible"));
    ExitCode::SUCCESS
}
