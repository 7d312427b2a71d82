//! Helpers shared by the integration tests in `tests/`.

pub mod catalog;
pub mod drv;
pub mod inf;
pub mod pe;
pub mod ps;
pub mod races;
pub mod rings;
pub mod signing;
pub mod tap;
pub mod verifier;

use std::path::PathBuf;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The package directory that the build script refreshed for this run.
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("RAWNIC_PACKAGE_DIR"))
}

/// Where the build script put the kernel images and their linker maps.
pub fn images_dir() -> PathBuf {
    PathBuf::from(env!("RAWNIC_IMAGES_DIR"))
}

/// Where the build script put the verifier fixtures.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("RAWNIC_FIXTURES_DIR"))
}

/// The verifier fixture `fixture_NAME.sys`, built by the build script.
pub fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(format!("fixture_{name}.sys"));
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// `target/package/rawnic.sys`, built from the current sources by this
/// package's build script; or the image `RAWNIC_TEST_DRIVER` names, to run
/// the tests against another build (a mutant: does a test fail when the
/// behaviour it checks breaks?).
pub fn rawnic_sys() -> PathBuf {
    if let Some(p) = std::env::var_os("RAWNIC_TEST_DRIVER") {
        return PathBuf::from(p);
    }
    let p = package_dir().join("rawnic.sys");
    assert!(p.is_file(), "{} is missing: the build script should have built it", p.display());
    p
}

/// What rawnic.sys's safety-net lines start with (`safety_net!` in
/// `driver/src/kernel/debug.rs`): a broken invariant it caught and
/// survived. Every simulation of it in the tests forbids them.
pub const SAFETY_NET: &str = rawnic_proto::SAFETY_NET_LINE;

/// A simulation builder for [`rawnic_sys`], its safety-net lines
/// forbidden (rule `forbidden-debug-line`): how every test starts it.
pub fn rawnic_builder() -> ndisim::SimBuilder {
    ndisim::Sim::builder().driver(rawnic_sys()).forbid_debug_lines(&[SAFETY_NET])
}
