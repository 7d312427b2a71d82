//! The package's bookkeeping: versions agree, SHA256SUMS is right.

use rawnic_tests::{package_dir, root};

#[test]
fn driver_version_is_the_workspace_version() {
    let v = xtask_driver_version();
    assert_eq!(v, env!("CARGO_PKG_VERSION"), "driver/Cargo.toml and the workspace disagree");
}

fn xtask_driver_version() -> String {
    let text = std::fs::read_to_string(root().join("driver/Cargo.toml")).unwrap();
    let mut in_package = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
        } else if in_package && t.starts_with("version") {
            return t.split('"').nth(1).unwrap().to_string();
        }
    }
    panic!("no version in driver/Cargo.toml")
}

#[test]
fn sha256sums_match_the_files() {
    use sha2::{Digest, Sha256};
    let dir = package_dir();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut names = Vec::new();
    for line in sums.lines() {
        let (hex, name) = line.split_once("  ").expect("sha256sum format");
        let data = std::fs::read(dir.join(name)).unwrap();
        let digest: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, digest, "{name}");
        names.push(name.to_string());
    }
    for required in ["rawnic.inf", "rawnic.sys"] {
        assert!(names.iter().any(|n| n == required), "SHA256SUMS lacks {required}");
    }
}
