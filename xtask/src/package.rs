//! The release package, `target/package/`: `rawnic.sys`, `rawnic.inf`,
//! `rawnic.cat`, `rawnicctl.exe`, `rawnic-test.cer`, the Windows scripts and
//! `SHA256SUMS`.
//!
//! `rawnic.sys` and `rawnicctl.exe` carry Authenticode signatures (SHA-256)
//! and `rawnic.cat` is a signed catalog of `rawnic.sys` and `rawnic.inf`,
//! all made with osslsigncode (see `sign.rs` and `catalog.rs`).

use crate::catalog::{self, CatalogInfo, Member, MemberKind};
use crate::discover::{Host, join};
use crate::kernel::{self, clean_command, copy_if_changed, toml_string, write_if_changed};
use crate::sign::{self, Signer};
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
    join(root, &["target", "package"])
}

/// The `version` of the `[package]` in `driver/Cargo.toml`.
pub fn driver_version(root: &Path) -> Result<String, String> {
    let path = join(root, &["driver", "Cargo.toml"]);
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
pub(crate) fn build_crt_objects(tc: &Toolchain, dir: &Path) -> Result<PathBuf, String> {
    let src = join(&tc.sysroot, &["lib", "rustlib", "src", "rust", "library", "rtstartup"]);
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

/// The arguments that build for `EXE_TARGET` with MinGW's gcc as the
/// linker and the startup objects built into `crt_dir`.
pub(crate) fn mingw_target_args(tc: &Toolchain, crt_dir: &Path) -> Result<Vec<String>, String> {
    let gcc = toolchain::locate_mingw_gcc()?;
    let crt = build_crt_objects(tc, crt_dir)?;
    Ok(vec![
        "--target".into(),
        EXE_TARGET.into(),
        "--config".into(),
        format!("target.{EXE_TARGET}.linker={}", toml_string(&gcc.to_string_lossy())),
        "--config".into(),
        format!("target.{EXE_TARGET}.rustflags=[\"-L\", {}]", toml_string(&crt.to_string_lossy())),
    ])
}

/// Where the Windows programs are built.
fn windows_target_dir(root: &Path) -> PathBuf {
    join(root, &["target", "windows"])
}

/// Builds the programs of `packages` for Windows and returns the directory
/// they are in: on Linux for `x86_64-pc-windows-gnu` with MinGW's linker,
/// with a standard library that `-Zbuild-std` builds from the sources (no
/// prebuilt one is needed); on a Windows host for the toolchain's own
/// target, whose standard library it has.
pub fn build_windows_programs(
    root: &Path,
    tc: &Toolchain,
    packages: &[&str],
    quiet_stdout: bool,
) -> Result<PathBuf, String> {
    let target_dir = windows_target_dir(root);
    let mut cmd = clean_command(&tc.cargo);
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &tc.rustc)
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .args(["build", "--release"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    cmd.arg("--target-dir").arg(&target_dir);
    let out = if Host::CURRENT == Host::Windows {
        target_dir.join("release")
    } else {
        cmd.args(mingw_target_args(tc, &target_dir.join("crt"))?).arg("-Zbuild-std=std,panic_abort");
        join(&target_dir, &[EXE_TARGET, "release"])
    };
    if quiet_stdout {
        cmd.stdout(Stdio::from(std::io::stderr()));
    }
    let status = cmd.status().map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    if !status.success() {
        return Err(format!("the Windows build of {} failed ({status})", packages.join(", ")));
    }
    Ok(out)
}

/// Builds `rawnicctl.exe` for Windows (MinGW on Linux) and returns its path.
pub fn build_exe(root: &Path, tc: &Toolchain, quiet_stdout: bool) -> Result<PathBuf, String> {
    Ok(build_windows_programs(root, tc, &["rawnicctl"], quiet_stdout)?.join("rawnicctl.exe"))
}

/// The crates linted as built for Windows, by [`clippy_exe`]: each
/// selection is one `cargo check`. The client library and rawnicctl, then
/// the library's tests (its Windows code's fake-driven unit tests build
/// there too); xtask, with its tests, so that its Windows paths (tool
/// discovery, signtool, the WDK's tools) compile.
pub const WINDOWS_LINT: &[&[&str]] = &[
    &["-p", "rawnic-client", "-p", "rawnicctl", "--lib", "--bins"],
    &["-p", "rawnic-client", "--lib", "--tests"],
    &["-p", "xtask", "--lib", "--bins", "--tests"],
];

/// Runs clippy over the client library, rawnicctl and xtask as they are
/// built for Windows (the target and `-Zbuild-std` of `rawnicctl.exe`; on a
/// Windows host, its own target), so that the Windows code, which no test
/// here runs, is linted as strictly as the rest: warnings are errors. Only
/// checks; nothing is linked.
pub fn clippy_exe(root: &Path, tc: &Toolchain) -> Result<(), String> {
    let clippy_driver = toolchain::locate_clippy_driver(&tc.rustc)?;
    let target_dir = join(root, &["target", "windows-clippy"]);
    for selection in WINDOWS_LINT {
        let mut cmd = clean_command(&tc.cargo);
        cmd.current_dir(root)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTC", &tc.rustc)
            .env("RUSTC_WORKSPACE_WRAPPER", &clippy_driver)
            // clippy-driver's own way of taking `-D warnings`.
            .env("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__")
            .args(["check", "--message-format=short"]);
        if Host::CURRENT != Host::Windows {
            cmd.args(["--target", EXE_TARGET, "-Zbuild-std=std,panic_abort"]);
        }
        cmd.args(*selection).arg("--target-dir").arg(&target_dir).stdout(Stdio::from(std::io::stderr()));
        let status = cmd.status().map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
        if !status.success() {
            return Err(format!("clippy failed on {} as built for Windows ({status}); see above", selection.join(" ")));
        }
    }
    eprintln!("clippy: the Windows client and xtask are clean");
    Ok(())
}

/// Writes the INF with `DriverVer` stamped from the driver's version and
/// the build date.
pub fn stamp_inf(root: &Path, dest: &Path) -> Result<(), String> {
    let src = join(root, &["inf", "rawnic.inf"]);
    let text = fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let ver = stamp::driver_ver(&driver_version(root)?, stamp::build_date())?;
    let stamped = stamp::stamp_inf(&text, &ver)?;
    if fs::read_to_string(dest).ok().as_deref() != Some(stamped.as_str()) {
        fs::write(dest, stamped).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    Ok(())
}

/// The PowerShell scripts from `scripts/windows/` that the package carries.
pub const SCRIPTS: &[&str] = &["Install-Rawnic.ps1", "Uninstall-Rawnic.ps1", "Enable-Verifier.ps1"];

/// Every file of a complete package signed with the test certificate
/// (`SHA256SUMS` lists all of them but itself).
pub const FILES: &[&str] = &[
    "rawnic.sys",
    "rawnic.inf",
    "rawnic.cat",
    "rawnicctl.exe",
    sign::TEST_CER,
    "Install-Rawnic.ps1",
    "Uninstall-Rawnic.ps1",
    "Enable-Verifier.ps1",
    "SHA256SUMS",
];

/// `OSAttr` of the catalog: Windows 10 and later (NT platform 2, version
/// 10.0), what inf2cat writes for `/os:10_X64`.
pub const OS_ATTR: &str = "2:10.0";
/// `OS` of the catalog: inf2cat's name for the same target.
pub const OS_NAME: &str = "_v100_X64";

/// The hardware (for a NetTrans INF: component) IDs of the INF's models,
/// lowercased and in order, as inf2cat lists them in `HWID1`, `HWID2`, ...
/// The models sections are the ones `[Manufacturer]` names, each with the
/// decorations it lists (`Rawnic, NTamd64` names `[Rawnic]` and
/// `[Rawnic.NTamd64]`).
pub fn inf_model_ids(inf: &str) -> Vec<String> {
    // Join continued lines and drop comments (a ';' outside quotes).
    let mut lines = Vec::new();
    let mut pending = String::new();
    for raw in inf.lines() {
        let mut line = String::new();
        let mut quoted = false;
        for c in raw.chars() {
            match c {
                '"' => quoted = !quoted,
                ';' if !quoted => break,
                _ => {}
            }
            line.push(c);
        }
        let t = line.trim_end();
        if let Some(head) = t.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(t);
        lines.push(std::mem::take(&mut pending));
    }
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            sections.push((name.trim().to_ascii_lowercase(), Vec::new()));
        } else if !t.is_empty() {
            if let Some((_, body)) = sections.last_mut() {
                body.push(t.to_string());
            }
        }
    }
    let section = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice()).unwrap_or(&[]);
    let mut models = Vec::new();
    for entry in section("manufacturer") {
        let Some((_, value)) = entry.split_once('=') else { continue };
        let mut parts = value.split(',').map(|p| p.trim().to_ascii_lowercase());
        let Some(base) = parts.next() else { continue };
        models.push(base.clone());
        models.extend(parts.filter(|p| !p.is_empty()).map(|d| format!("{base}.{d}")));
    }
    let mut ids: Vec<String> = Vec::new();
    for model in models {
        for entry in section(&model) {
            let Some((_, value)) = entry.split_once('=') else { continue };
            for id in value.split(',').skip(1).map(|p| p.trim().trim_matches('"').to_ascii_lowercase()) {
                if !id.is_empty() && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// Writes the signed catalog of `rawnic.sys` and `rawnic.inf` in `dir` to
/// `dir/rawnic.cat`.
fn make_catalog(root: &Path, dir: &Path, signer: &Signer) -> Result<(), String> {
    let read = |name: &str| fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()));
    let inf = read("rawnic.inf")?;
    let members = [
        Member::new("rawnic.sys", MemberKind::Pe, &read("rawnic.sys")?)?,
        Member::new("rawnic.inf", MemberKind::Flat, &inf)?,
    ];
    let info = CatalogInfo {
        os_attr: OS_ATTR.into(),
        os: OS_NAME.into(),
        hwids: inf_model_ids(&String::from_utf8_lossy(&inf)),
        this_update: stamp::build_day_start().max(0) as u64,
    };
    let unsigned = catalog::unsigned_catalog(&members, &info)?;
    sign::sign(root, signer, "rawnic.cat", &unsigned, &dir.join("rawnic.cat"))
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
        let hex = sign::hex(&Sha256::digest(&bytes));
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
    let signer = sign::signer(root)?;
    let image = images.join("rawnic.sys");
    let image = fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    sign::sign(root, &signer, "rawnic.sys", &image, &dir.join("rawnic.sys"))?;
    stamp_inf(root, &dir.join("rawnic.inf"))?;
    make_catalog(root, &dir, &signer)?;
    // On a Windows host, the WDK's infverif and inf2cat where found.
    crate::kit::check_package(root, &dir)?;
    match &signer.test_cer {
        Some(cer) => copy_if_changed(cer, &dir.join(sign::TEST_CER))?,
        // Signed with a real certificate: there is no test certificate to trust.
        None => match fs::remove_file(dir.join(sign::TEST_CER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("removing {}: {e}", sign::TEST_CER));
            }
            _ => {}
        },
    }
    for script in SCRIPTS {
        copy_if_changed(&join(root, &["scripts", "windows", script]), &dir.join(script))?;
    }
    if parts == Parts::All {
        let exe = build_exe(root, &tc, quiet_stdout)?;
        let exe = fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
        sign::sign(root, &signer, "rawnicctl.exe", &exe, &dir.join("rawnicctl.exe"))?;
    }
    let sums = sha256sums(&dir)?;
    write_if_changed(&dir.join("SHA256SUMS"), sums.as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_follow_the_manufacturer_section() {
        let inf = "[Version]\nSignature=\"$WINDOWS NT$\"\n\
                   [Manufacturer]\n%M% = Acme, NTamd64, NTarm64 ; comment\n\
                   [Acme.NTamd64]\n%A% = Install, ACME_A ; not, ids\n%B% = Install, \\\n    Root\\Acme_B, acme_a\n\
                   [Acme.NTarm64]\n%C% = Install, ACME_C\n\
                   [Other]\n%D% = Install, NOT_A_MODEL\n";
        assert_eq!(inf_model_ids(inf), ["acme_a", "root\\acme_b", "acme_c"]);
    }

    #[test]
    fn xtask_and_its_tests_are_linted_as_built_for_windows() {
        let xtask = WINDOWS_LINT.iter().find(|s| s.windows(2).any(|w| w == ["-p", "xtask"])).expect("xtask is linted");
        for part in ["--lib", "--bins", "--tests"] {
            assert!(xtask.contains(&part), "xtask's Windows lint lacks {part}");
        }
    }

    #[test]
    fn the_rawnic_inf_has_its_component_id() {
        let inf = fs::read_to_string(join(&crate::workspace_root(), &["inf", "rawnic.inf"])).unwrap();
        assert!(inf_model_ids(&inf).contains(&"rawnic".to_string()));
    }
}
