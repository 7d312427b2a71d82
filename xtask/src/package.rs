//! The release package: `target/package/` with `rawnic.sys`, `rawnic.inf`,
//! `rawnicctl.exe` and `SHA256SUMS`.

use crate::kernel::{self, clean_command, copy_if_changed};
use crate::stamp;
use crate::toolchain::{self, Toolchain};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The Windows target of `rawnicctl.exe`.
pub const EXE_TARGET: &str = "x86_64-pc-windows-gnu";

/// Which parts to (re)build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// `rawnic.sys` and the INF (what the tests need; used by build.rs).
    Kernel,
    /// Everything, `rawnicctl.exe` included.
    All,
}

pub fn package_dir(root: &Path) -> PathBuf {
    root.join("target/package")
}

/// The `version` of the `[package]` in `driver/Cargo.toml`.
pub fn driver_version(root: &Path) -> Result<String, String> {
    let path = root.join("driver/Cargo.toml");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut in_package = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
        } else if in_package {
            if let Some(rest) = t.strip_prefix("version") {
                let v = rest.trim_start().trim_start_matches('=').trim().trim_matches('"');
                return Ok(v.to_string());
            }
        }
    }
    Err(format!("{} has no [package] version", path.display()))
}

/// Builds the windows-gnu startup objects (`rsbegin.o`, `rsend.o`) from
/// the standard library sources: rustc links them into every windows-gnu
/// image, and build-std does not build them. Returns their directory.
fn build_crt_objects(tc: &Toolchain, dir: &Path) -> Result<PathBuf, String> {
    let src = tc.sysroot.join("lib/rustlib/src/rust/library/rtstartup");
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for name in ["rsbegin", "rsend"] {
        let out = dir.join(format!("{name}.o"));
        let input = src.join(format!("{name}.rs"));
        let fresh =
            match (fs::metadata(&out).and_then(|m| m.modified()), fs::metadata(&input).and_then(|m| m.modified())) {
                (Ok(o), Ok(i)) => o >= i,
                _ => false,
            };
        if fresh {
            continue;
        }
        let status = clean_command(&tc.rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "--target",
                EXE_TARGET,
                "--crate-type=lib",
                "--emit=obj",
                "-C",
                "panic=abort",
                "-C",
                "opt-level=3",
                "-o",
            ])
            .arg(&out)
            .arg(&input)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", tc.rustc.display()))?;
        if !status.success() {
            return Err(format!("building {name}.o from {} failed", input.display()));
        }
    }
    Ok(dir.to_path_buf())
}

/// Builds `rawnicctl.exe` for Windows with MinGW and returns its path.
pub fn build_exe(root: &Path, tc: &Toolchain, quiet_stdout: bool) -> Result<PathBuf, String> {
    let gcc = toolchain::locate_mingw_gcc()?;
    let target_dir = root.join("target/windows");
    let crt = build_crt_objects(tc, &target_dir.join("crt"))?;
    let mut cmd = clean_command(&tc.cargo);
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &tc.rustc)
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .args(["build", "--release", "-p", "rawnicctl", "--target", EXE_TARGET])
        .arg("-Zbuild-std=std,panic_abort")
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--config")
        .arg(format!("target.{EXE_TARGET}.linker=\"{}\"", gcc.display()))
        .arg("--config")
        .arg(format!("target.{EXE_TARGET}.rustflags=[\"-L\", \"{}\"]", crt.display()));
    if quiet_stdout {
        cmd.stdout(Stdio::from(std::io::stderr()));
    }
    let status = cmd.status().map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    if !status.success() {
        return Err(format!("the rawnicctl.exe build failed ({status})"));
    }
    Ok(target_dir.join(EXE_TARGET).join("release/rawnicctl.exe"))
}

/// Writes the INF with `DriverVer` stamped from the driver's version and
/// the build date.
pub fn stamp_inf(root: &Path, dest: &Path) -> Result<(), String> {
    let src = root.join("inf/rawnic.inf");
    let text = fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let ver = stamp::driver_ver(&driver_version(root)?, stamp::build_date())?;
    let stamped = stamp::stamp_inf(&text, &ver)?;
    if fs::read_to_string(dest).ok().as_deref() != Some(stamped.as_str()) {
        fs::write(dest, stamped).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    Ok(())
}

/// `sha256sum`-format lines for the package files present, sorted by name.
pub fn sha256sums(dir: &Path) -> Result<String, String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let bytes = fs::read(dir.join(&name)).map_err(|e| e.to_string())?;
        let digest = Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{hex}  {name}\n"));
    }
    Ok(out)
}

/// Builds what `parts` asks for and assembles `target/package/`.
pub fn package(root: &Path, parts: Parts, quiet_stdout: bool) -> Result<PathBuf, String> {
    let tc = toolchain::locate()?;
    let images = kernel::build(root, &tc, quiet_stdout)?;
    let dir = package_dir(root);
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    copy_if_changed(&images.join("rawnic.sys"), &dir.join("rawnic.sys"))?;
    stamp_inf(root, &dir.join("rawnic.inf"))?;
    if parts == Parts::All {
        let exe = build_exe(root, &tc, quiet_stdout)?;
        copy_if_changed(&exe, &dir.join("rawnicctl.exe"))?;
    }
    let sums = sha256sums(&dir)?;
    if fs::read_to_string(dir.join("SHA256SUMS")).ok().as_deref() != Some(sums.as_str()) {
        fs::write(dir.join("SHA256SUMS"), sums).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}
