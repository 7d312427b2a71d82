//! Finding the tools that build a Windows kernel image on Linux.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the build needs, and what each is for.
pub const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "a rustc that build-std can use"),
    ("cargo-web", "the cargo that goes with it"),
    ("rust-web-src", "the standard library sources for -Zbuild-std"),
    ("lld-19", "lld-link, the PE/COFF linker"),
    ("llvm-19", "llvm-readobj-19 and friends, to inspect the image"),
    ("gcc-mingw-w64-x86-64", "the linker for rawnicctl.exe"),
    ("osslsigncode", "Authenticode signatures of rawnic.sys, rawnicctl.exe and rawnic.cat"),
    ("openssl", "makes the test code-signing certificate"),
];

/// Debian packages the tests and benchmarks use.
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "network namespaces and TAP devices for the TAP tests"),
    ("tcpdump", "reads back the pcapng files rawnicctl writes"),
    ("tshark", "reads the direction of each frame in rawnicctl's pcapng files"),
    ("valgrind", "instruction counts in `cargo make bench`"),
    ("rust-web-clippy", "clippy for the kernel image's sources (`cargo make lint`)"),
    ("libclang1-19", "libclang, which bindgen loads to read C headers (layout-check)"),
    ("libclang-common-19-dev", "clang's own headers (stddef.h, mm_malloc.h) for that libclang"),
    ("mingw-w64-x86-64-dev", "mingw-w64's ntifs.h and ntddndis.h, which layout-check reads"),
];

/// The tools one kernel or Windows build uses.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub rustc: PathBuf,
    pub cargo: PathBuf,
    pub sysroot: PathBuf,
    pub lld_link: PathBuf,
}

fn sysroot_of(rustc: &Path) -> Option<PathBuf> {
    let out = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn has_std_sources(sysroot: &Path) -> bool {
    sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml").is_file()
}

/// Looks `name` up in `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    env::var_os("PATH").and_then(|paths| env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// A rustc whose sysroot carries the standard library sources: the
/// `RAWNIC_RUSTC` override first, then the `rustc` on `PATH`, then Debian's
/// `/usr/bin/rustc`.
pub fn locate_rustc() -> Result<(PathBuf, PathBuf), String> {
    if let Some(over) = env::var_os("RAWNIC_RUSTC") {
        let rustc = PathBuf::from(over);
        let sysroot = sysroot_of(&rustc).ok_or_else(|| format!("RAWNIC_RUSTC={} does not run", rustc.display()))?;
        if !has_std_sources(&sysroot) {
            return Err(format!(
                "RAWNIC_RUSTC={} has no standard library sources under {}/lib/rustlib/src",
                rustc.display(),
                sysroot.display()
            ));
        }
        return Ok((rustc, sysroot));
    }
    let mut candidates = Vec::new();
    if let Some(p) = which("rustc") {
        candidates.push(p);
    }
    candidates.push(PathBuf::from("/usr/bin/rustc"));
    for rustc in candidates {
        if let Some(sysroot) = sysroot_of(&rustc) {
            if has_std_sources(&sysroot) {
                return Ok((rustc, sysroot));
            }
        }
    }
    Err(missing_message(
        "no rustc with the standard library sources was found (checked RAWNIC_RUSTC, the rustc on PATH and /usr/bin/rustc)",
        &["rustc-web", "cargo-web", "rust-web-src"],
    ))
}

/// The cargo that goes with `rustc`: `RAWNIC_CARGO`, else the `cargo`
/// beside it.
pub fn locate_cargo(rustc: &Path) -> Result<PathBuf, String> {
    if let Some(over) = env::var_os("RAWNIC_CARGO") {
        return Ok(PathBuf::from(over));
    }
    let beside = rustc.with_file_name("cargo");
    if beside.is_file() {
        return Ok(beside);
    }
    Err(missing_message(&format!("no cargo beside {} (set RAWNIC_CARGO)", rustc.display()), &["cargo-web"]))
}

/// The clippy-driver that goes with `rustc`: `RAWNIC_CLIPPY_DRIVER`, else the
/// `clippy-driver` beside it.
pub fn locate_clippy_driver(rustc: &Path) -> Result<PathBuf, String> {
    if let Some(over) = env::var_os("RAWNIC_CLIPPY_DRIVER") {
        return Ok(PathBuf::from(over));
    }
    let beside = rustc.with_file_name("clippy-driver");
    if beside.is_file() {
        return Ok(beside);
    }
    Err(missing_message(
        &format!("no clippy-driver beside {} (set RAWNIC_CLIPPY_DRIVER)", rustc.display()),
        &["rust-web-clippy"],
    ))
}

/// `lld-link`: `RAWNIC_LLD_LINK`, else LLVM 19's, else any on `PATH`.
pub fn locate_lld_link() -> Result<PathBuf, String> {
    if let Some(over) = env::var_os("RAWNIC_LLD_LINK") {
        return Ok(PathBuf::from(over));
    }
    for name in ["lld-link-19", "/usr/lib/llvm-19/bin/lld-link", "lld-link"] {
        if let Some(p) = which(name) {
            return Ok(p);
        }
    }
    Err(missing_message("lld-link was not found", &["lld-19"]))
}

/// Everything a kernel build needs.
pub fn locate() -> Result<Toolchain, String> {
    let (rustc, sysroot) = locate_rustc()?;
    let cargo = locate_cargo(&rustc)?;
    let lld_link = locate_lld_link()?;
    Ok(Toolchain { rustc, cargo, sysroot, lld_link })
}

/// The MinGW linker for `rawnicctl.exe`.
pub fn locate_mingw_gcc() -> Result<PathBuf, String> {
    which("x86_64-w64-mingw32-gcc")
        .ok_or_else(|| missing_message("x86_64-w64-mingw32-gcc was not found", &["gcc-mingw-w64-x86-64"]))
}

/// osslsigncode, which signs the package (Authenticode, SHA-256).
pub fn locate_osslsigncode() -> Result<PathBuf, String> {
    which("osslsigncode").ok_or_else(|| missing_message("osslsigncode was not found", &["osslsigncode"]))
}

/// The openssl command line, which makes the test certificate.
pub fn locate_openssl() -> Result<PathBuf, String> {
    which("openssl").ok_or_else(|| missing_message("openssl was not found", &["openssl"]))
}

/// The command a person runs to install `packages`.
pub fn install_command(packages: &[&str]) -> String {
    format!("sudo apt-get install -y --no-install-recommends {}", packages.join(" "))
}

fn missing_message(what: &str, packages: &[&str]) -> String {
    format!("{what}.\nInstall it with `cargo make setup`, or run:\n    {}", install_command(packages))
}

/// True when dpkg reports `package` installed.
pub fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Installs the missing packages with apt-get when running as root; else
/// prints the command a person has to run and fails.
pub fn setup() -> Result<(), String> {
    let wanted: Vec<&str> = BUILD_PACKAGES.iter().chain(TEST_PACKAGES).map(|(p, _)| *p).collect();
    let missing: Vec<&str> = wanted.iter().copied().filter(|p| !is_installed(p)).collect();
    if missing.is_empty() {
        eprintln!("setup: all {} packages are installed", wanted.len());
        return Ok(());
    }
    eprintln!("setup: missing {}", missing.join(", "));
    if !is_root() || which("apt-get").is_none() {
        return Err(format!(
            "setup cannot install packages here (not root, or no apt-get). Run:\n    {}",
            install_command(&missing)
        ));
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(missing.iter().copied());
    // Try with the package lists as they are; if that fails, refresh them
    // and try again.
    let installed = apt(&install) || (apt(&["update"]) && apt(&install));
    if !installed {
        return Err(format!("apt-get could not install them. Run:\n    {}", install_command(&missing)));
    }
    let still: Vec<&str> = missing.into_iter().filter(|p| !is_installed(p)).collect();
    if !still.is_empty() {
        return Err(format!(
            "still missing after apt-get: {}. Run:\n    {}",
            still.join(", "),
            install_command(&still)
        ));
    }
    Ok(())
}
