//! Builds the real kernel images from the current sources before the
//! integration tests compile, so that the tests never run on a stale or
//! checked-in binary: `rawnic.sys` (signed), the INF, the catalog, the test
//! certificate and the Windows scripts into `target/package/`, the
//! verifier fixtures into `target/kernel/images/fixtures/`.

use std::path::Path;

fn main() -> std::process::ExitCode {
    // The kernel build runs this script's executable as its rustc wrapper
    // (`xtask::stable`).
    if let Some(code) = xtask::stable::wrap_rustc_if_asked() {
        return code;
    }
    let root = xtask::workspace_root();
    for dir in ["driver", "ndis-sys/src", "proto/src", "logic/src", "inf", "scripts/windows"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for file in
        ["driver/Cargo.toml", "driver/Cargo.lock", "ndis-sys/Cargo.toml", "proto/Cargo.toml", "logic/Cargo.toml"]
    {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    for var in
        ["RAWNIC_RUSTC", "RAWNIC_CARGO", "RAWNIC_LLD_LINK", "SOURCE_DATE_EPOCH"].iter().chain(xtask::sign::ENV_VARS)
    {
        println!("cargo:rerun-if-env-changed={var}");
    }
    match xtask::package::package(Path::new(&root), xtask::package::Parts::Kernel, true) {
        Ok(dir) => {
            println!("cargo:rustc-env=RAWNIC_PACKAGE_DIR={}", dir.display());
            let images = xtask::kernel::images_dir(&root);
            println!("cargo:rustc-env=RAWNIC_IMAGES_DIR={}", images.display());
            println!("cargo:rustc-env=RAWNIC_FIXTURES_DIR={}", images.join("fixtures").display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot build the kernel images: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
