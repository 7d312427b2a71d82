//! Building the kernel images: `rawnic.sys` and the verifier fixtures.
//!
//! They are the members of the `driver/` workspace, built for
//! `x86_64-pc-windows-msvc` with `-Zbuild-std` by a rustc that carries the
//! standard library sources, and linked as native drivers by lld-link (or,
//! on a Windows host without LLVM, MSVC's link.exe, which takes the same
//! flags).

use crate::discover::{Host, join, kept_vars};
use crate::toolchain::Toolchain;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "x86_64-pc-windows-msvc";

/// The linker flags of a native x64 kernel driver, as lld-link and MSVC's
/// link.exe both spell them.
///
/// `/SECTION` gives every section `P` (`IMAGE_SCN_MEM_NOT_PAGED`), so no code
/// or data is pageable, and marks `INIT` (where `DriverEntry` lives)
/// discardable.
pub const LINK_FLAGS: &[&str] = &[
    "/DRIVER",
    "/SUBSYSTEM:NATIVE",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/INTEGRITYCHECK",
    "/RELEASE",
    "/DYNAMICBASE",
    "/NXCOMPAT",
    "/OPT:REF",
    "/MAP",
    "/SECTION:.text,ERP",
    "/SECTION:.rdata,RP",
    "/SECTION:.data,RWP",
    "/SECTION:.pdata,RP",
    "/SECTION:INIT,ERD",
];

/// Where the kernel build writes.
pub fn target_dir(root: &Path) -> PathBuf {
    join(root, &["target", "kernel"])
}

/// Where the built images are collected: `rawnic.sys` and `fixtures/*.sys`.
pub fn images_dir(root: &Path) -> PathBuf {
    target_dir(root).join("images")
}

/// `s` as a TOML basic string (for `--config`; Windows paths have
/// backslashes).
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A `Command` with a clean environment: nothing of an outer cargo (build
/// script variables, jobserver, RUSTFLAGS) leaks into the nested build. What
/// the host's programs need stays (`discover::kept_vars`).
pub fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for key in kept_vars(Host::CURRENT) {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd
}

/// Builds every member of the `driver/` workspace and copies the images to
/// `images_dir`. Returns that directory.
///
/// `quiet_stdout` sends the child's stdout to stderr, as a build script must
/// (its stdout is read by cargo as instructions).
pub fn build(root: &Path, tc: &Toolchain, quiet_stdout: bool) -> Result<PathBuf, String> {
    let mut cmd = build_command(root, tc);
    if quiet_stdout {
        cmd.stdout(Stdio::from(std::io::stderr()));
    }
    let status = cmd.status().map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    if !status.success() {
        return Err(format!("the kernel build failed ({status}); see the compiler output above"));
    }
    collect(root)
}

/// The cargo command that builds every member of `root`'s `driver/`
/// workspace into `target_dir(root)` (then `collect` gathers the images).
pub fn build_command(root: &Path, tc: &Toolchain) -> Command {
    let driver_dir = root.join("driver");
    let mut rustflags: Vec<String> =
        LINK_FLAGS.iter().flat_map(|f| ["-C".to_string(), format!("link-arg={f}")]).collect();
    // The checkout's path is no part of the image (its code is kept from
    // depending on it by `stable`).
    rustflags.push(format!("--remap-path-prefix={}=/rawnic", root.display()));
    let rustflags_toml = format!("[{}]", rustflags.iter().map(|s| toml_string(s)).collect::<Vec<_>>().join(","));
    let mut cmd = clean_command(&tc.cargo);
    cmd.current_dir(&driver_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &tc.rustc)
        .args(["build", "--release", "--workspace", "--target", TARGET])
        .args(["-Zbuild-std=core,alloc,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem"])
        .arg("--target-dir")
        .arg(target_dir(root))
        .arg("--config")
        .arg(format!("target.{TARGET}.linker={}", toml_string(&tc.linker.path.to_string_lossy())))
        .arg("--config")
        .arg(format!("target.{TARGET}.rustflags={rustflags_toml}"));
    // Crate metadata that does not depend on where the checkout lies
    // (`stable`): this executable runs as rustc's wrapper.
    for (key, value) in crate::stable::wrapper_env(root).into_iter().flatten() {
        cmd.env(key, value);
    }
    cmd
}

/// Runs clippy over every member of the `driver/` workspace (the driver and
/// the fixtures) as it is built for the kernel: same target, same
/// `-Zbuild-std`, the workspace's lint levels. Any warning fails.
pub fn clippy(root: &Path, tc: &Toolchain) -> Result<(), String> {
    let clippy_driver = crate::toolchain::locate_clippy_driver(&tc.rustc)?;
    let mut cmd = clean_command(&tc.cargo);
    cmd.current_dir(root.join("driver"))
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &tc.rustc)
        .env("RUSTC_WORKSPACE_WRAPPER", &clippy_driver)
        .args(["check", "--release", "--workspace", "--target", TARGET, "--message-format=short"])
        .args(["-Zbuild-std=core,alloc,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem"])
        .arg("--target-dir")
        .arg(join(root, &["target", "kernel-clippy"]))
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped());
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    eprint!("{text}");
    // With --message-format=short every diagnostic is one line:
    // `path:line:col: warning: ...`. Cached results are replayed, so a
    // second run reports the same warnings.
    let findings = text.lines().filter(|l| l.contains(": warning: ") || l.contains(": error")).count();
    if !out.status.success() {
        return Err(format!("clippy failed on the kernel sources ({}); see above", out.status));
    }
    if findings > 0 {
        return Err(format!("clippy found {findings} problem(s) in the kernel sources; see above"));
    }
    eprintln!("clippy: the kernel sources are clean");
    Ok(())
}

/// Copies `<crate>.exe` to `images/<crate>.sys` (fixtures under
/// `images/fixtures/`), with the linker map beside each.
pub fn collect(root: &Path) -> Result<PathBuf, String> {
    let out = target_dir(root).join(TARGET).join("release");
    let images = images_dir(root);
    let fixtures = images.join("fixtures");
    fs::create_dir_all(&fixtures).map_err(|e| e.to_string())?;
    let mut found_driver = false;
    for entry in fs::read_dir(&out).map_err(|e| format!("{}: {e}", out.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("exe") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let dest_dir = if stem == "rawnic" {
            found_driver = true;
            images.clone()
        } else if stem.starts_with("fixture_") {
            fixtures.clone()
        } else {
            continue;
        };
        let dest = dest_dir.join(format!("{stem}.sys"));
        copy_if_changed(&path, &dest)?;
        let map = out.join("deps").join(format!("{stem}.map"));
        if map.is_file() {
            copy_if_changed(&map, &dest.with_extension("map"))?;
        }
    }
    if !found_driver {
        return Err(format!("the kernel build produced no rawnic.exe in {}", out.display()));
    }
    Ok(images)
}

/// Copies a tree of sources (everything but `target` directories and
/// hidden ones) into `mirror`, each file only where it differs: the mirror
/// `xtask mutants` builds in, and `tests/reproducible.rs`'s checkout
/// elsewhere.
pub fn sync_mirror(from: &Path, mirror: &Path) -> Result<(), String> {
    fs::create_dir_all(mirror).map_err(|e| format!("{}: {e}", mirror.display()))?;
    for entry in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        let (src, dst) = (entry.path(), mirror.join(&*name));
        if kind.is_dir() {
            sync_mirror(&src, &dst)?;
        } else if kind.is_file() {
            copy_if_changed(&src, &dst)?;
        }
    }
    Ok(())
}

/// Copies unless the destination already has the same bytes, so that
/// timestamps (and cargo's rerun checks) stay still when nothing changed.
pub fn copy_if_changed(from: &Path, to: &Path) -> Result<(), String> {
    let new = fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
    write_if_changed(to, &new)
}

/// Writes `bytes` to `to` unless it already holds exactly them (so its
/// modification time only moves when it changes).
pub fn write_if_changed(to: &Path, bytes: &[u8]) -> Result<(), String> {
    if fs::read(to).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    fs::write(to, bytes).map_err(|e| format!("{}: {e}", to.display()))
}
