//! Finding the tools that build a Windows kernel image: Debian's packages
//! on Linux (as CI builds), rustup, LLVM or MSVC and the Windows Kits on a
//! Windows host. The rules are in `discover.rs`; this applies them to the
//! real environment and file system.

use crate::discover::{self, Env, Host, Linker, LinkerKind, RustcCandidate};
use std::fs;
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
    ("gdb", "every thread's stack of a chaos schedule that hangs or whose watchdog gives up"),
    ("binutils", "addr2line, which names the frames of a host fault's backtrace"),
    ("rust-web-clippy", "clippy for the kernel image's sources (`cargo make lint`)"),
    ("libclang1-19", "libclang, which bindgen loads to read C headers (layout-check)"),
    ("libclang-common-19-dev", "clang's own headers (stddef.h, mm_malloc.h) for that libclang"),
    ("mingw-w64-x86-64-dev", "mingw-w64's ntifs.h and ntddndis.h, which layout-check reads"),
    ("wine64", "runs the client's tests built for Windows, and rawnicctl.exe (`cargo make wine`)"),
];

/// The tools one kernel or Windows build uses.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub rustc: PathBuf,
    pub cargo: PathBuf,
    pub sysroot: PathBuf,
    /// lld-link, or on Windows possibly MSVC's link.exe.
    pub linker: Linker,
}

fn is_file(path: &Path) -> bool {
    path.is_file()
}

fn list_dir(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn read_text(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The sysroot a rustc reports (`--print sysroot`).
fn sysroot_of(candidate: &RustcCandidate) -> Option<PathBuf> {
    let mut cmd = match candidate {
        RustcCandidate::Program(rustc) => Command::new(rustc),
        RustcCandidate::Rustup { rustup, toolchain } => {
            let mut cmd = Command::new(rustup);
            cmd.args(["run", toolchain, "rustc"]);
            cmd
        }
    };
    let out = cmd.args(["--print", "sysroot"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Looks `name` up in `PATH` (with `PATHEXT` on Windows).
pub fn which(name: &str) -> Option<PathBuf> {
    discover::which(&Env::current(), name, &is_file)
}

/// How to install the rustup toolchain a Windows build uses.
const WINDOWS_RUST: &str =
    "rustup toolchain install nightly\n    rustup component add --toolchain nightly rust-src clippy";

/// A rustc whose sysroot carries the standard library sources: the
/// `RAWNIC_RUSTC` override first, then the `rustc` on `PATH`, then Debian's
/// `/usr/bin/rustc` (on Windows, rustup's nightly toolchain).
pub fn locate_rustc() -> Result<(PathBuf, PathBuf), String> {
    let env = Env::current();
    if let Some(rustc) = env.path("RAWNIC_RUSTC") {
        let sysroot = sysroot_of(&RustcCandidate::Program(rustc.clone()))
            .ok_or_else(|| format!("RAWNIC_RUSTC={} does not run", rustc.display()))?;
        if !discover::has_std_sources(&sysroot, &is_file) {
            return Err(format!(
                "RAWNIC_RUSTC={} has no standard library sources under {}",
                rustc.display(),
                discover::join(&sysroot, &["lib", "rustlib", "src"]).display()
            ));
        }
        return Ok((rustc, sysroot));
    }
    let candidates = discover::rustc_candidates(&env, &is_file);
    if let Some(found) = discover::choose_rustc(env.host(), &candidates, &mut sysroot_of, &is_file) {
        return Ok((found.rustc, found.sysroot));
    }
    Err(match env.host() {
        Host::Unix => missing_message(
            "no rustc with the standard library sources was found (checked RAWNIC_RUSTC, the rustc on PATH and /usr/bin/rustc)",
            &["rustc-web", "cargo-web", "rust-web-src"],
        ),
        Host::Windows => format!(
            "no rustc with the standard library sources was found (checked RAWNIC_RUSTC, the rustc on PATH and \
             rustup's nightly toolchain).\nInstall them with:\n    {WINDOWS_RUST}"
        ),
    })
}

/// The program `stem` beside `rustc`, or the override `var`.
fn locate_beside(rustc: &Path, stem: &str, var: &str, packages: &[&str], windows: &str) -> Result<PathBuf, String> {
    let env = Env::current();
    if let Some(over) = env.path(var) {
        return Ok(over);
    }
    let beside = discover::beside(env.host(), rustc, stem);
    if beside.is_file() {
        return Ok(beside);
    }
    let what = format!("no {stem} beside {} (set {var})", rustc.display());
    Err(match env.host() {
        Host::Unix => missing_message(&what, packages),
        Host::Windows => format!("{what}.\nInstall it with:\n    {windows}"),
    })
}

/// The cargo that goes with `rustc`: `RAWNIC_CARGO`, else the `cargo`
/// beside it.
pub fn locate_cargo(rustc: &Path) -> Result<PathBuf, String> {
    locate_beside(rustc, "cargo", "RAWNIC_CARGO", &["cargo-web"], WINDOWS_RUST)
}

/// The clippy-driver that goes with `rustc`: `RAWNIC_CLIPPY_DRIVER`, else the
/// `clippy-driver` beside it.
pub fn locate_clippy_driver(rustc: &Path) -> Result<PathBuf, String> {
    locate_beside(
        rustc,
        "clippy-driver",
        "RAWNIC_CLIPPY_DRIVER",
        &["rust-web-clippy"],
        "rustup component add --toolchain nightly clippy",
    )
}

/// The kernel image's linker: `RAWNIC_LLD_LINK`, else LLVM 19's lld-link,
/// else any on `PATH`; on Windows lld-link on `PATH` or in
/// `%ProgramFiles%\LLVM\bin`, else MSVC's link.exe (a Developer prompt's or
/// eWDK's, else the newest Visual Studio's that vswhere knows).
pub fn locate_linker() -> Result<Linker, String> {
    let env = Env::current();
    if let Some(linker) = discover::find_linker(&env, &is_file) {
        return Ok(linker);
    }
    match env.host() {
        Host::Unix => Err(missing_message("lld-link was not found", &["lld-19"])),
        Host::Windows => {
            if let Some(vswhere) = discover::vswhere(&env, &is_file) {
                let out = Command::new(&vswhere).args(discover::VSWHERE_ARGS).output();
                let installs = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
                for install in installs.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if let Some(path) = discover::msvc_link_in_vs(Path::new(install), &read_text, &list_dir, &is_file) {
                        return Ok(Linker { path, kind: LinkerKind::MsvcLink });
                    }
                }
            }
            Err(format!("no linker for the kernel image was found.\nInstall one of:\n    {WINDOWS_LINKER}"))
        }
    }
}

const WINDOWS_LINKER: &str = "LLVM (lld-link): winget install LLVM.LLVM (or set RAWNIC_LLD_LINK)\n    \
     the Visual Studio Build Tools with the C++ x64 tools (link.exe), or run from a Developer prompt or an eWDK";

/// Everything a kernel build needs.
pub fn locate() -> Result<Toolchain, String> {
    let (rustc, sysroot) = locate_rustc()?;
    let cargo = locate_cargo(&rustc)?;
    let linker = locate_linker()?;
    Ok(Toolchain { rustc, cargo, sysroot, linker })
}

/// The MinGW linker for `rawnicctl.exe`.
pub fn locate_mingw_gcc() -> Result<PathBuf, String> {
    which("x86_64-w64-mingw32-gcc")
        .ok_or_else(|| missing_message("x86_64-w64-mingw32-gcc was not found", &["gcc-mingw-w64-x86-64"]))
}

/// The openssl command line, which makes the test certificate (on Windows
/// also Git for Windows' own).
pub fn locate_openssl() -> Result<PathBuf, String> {
    discover::find_openssl(&Env::current(), &is_file).ok_or_else(|| match Host::CURRENT {
        Host::Unix => missing_message("openssl was not found", &["openssl"]),
        Host::Windows => "openssl was not found (it makes the test certificate).\nInstall Git for Windows \
             (winget install Git.Git), which has one, or put an openssl.exe on PATH"
            .to_string(),
    })
}

/// What signs the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignTool {
    /// osslsigncode (Debian's on Linux).
    Osslsigncode(PathBuf),
    /// The Windows SDK's or WDK's signtool, on a Windows host.
    Signtool(PathBuf),
}

/// The signing tool: on Windows the SDK's or WDK's signtool where found,
/// else osslsigncode (the only one on Linux).
pub fn locate_sign_tool() -> Result<SignTool, String> {
    if let Some(signtool) = locate_kit_tool("signtool") {
        return Ok(SignTool::Signtool(signtool));
    }
    match (Host::CURRENT, which("osslsigncode")) {
        (_, Some(p)) => Ok(SignTool::Osslsigncode(p)),
        (Host::Unix, None) => Err(missing_message("osslsigncode was not found", &["osslsigncode"])),
        (Host::Windows, None) => Err("neither signtool nor osslsigncode was found.\nInstall the Windows SDK \
             (its signing tools) or the WDK, or put osslsigncode.exe on PATH"
            .to_string()),
    }
}

/// A tool of the Windows SDK or WDK (`signtool`, `inf2cat`, `infverif`), on a
/// Windows host; `None` elsewhere.
pub fn locate_kit_tool(stem: &str) -> Option<PathBuf> {
    let env = Env::current();
    if env.host() != Host::Windows {
        return None;
    }
    discover::kit_tool(&env, stem, &list_dir, &is_file)
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
/// prints the command a person has to run and fails. On Windows, says what
/// is found and what to install.
pub fn setup() -> Result<(), String> {
    if Host::CURRENT == Host::Windows {
        return setup_windows();
    }
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

/// A Windows host: looks for each tool as the build does and says where it
/// is or how to install it; installs nothing. Fails when a tool that
/// `cargo make package` needs is missing.
fn setup_windows() -> Result<(), String> {
    let mut missing = Vec::new();
    let mut check = |what: &str, found: Result<String, String>| match found {
        Ok(at) => eprintln!("setup: {what}: {at}"),
        Err(how) => {
            eprintln!("setup: {what}: MISSING. {how}\n");
            missing.push(what.to_string());
        }
    };
    let shown = |p: &Path| p.display().to_string();
    let rustc = locate_rustc();
    check("rustc with rust-src", rustc.as_ref().map(|(r, _)| shown(r)).map_err(String::clone));
    if let Ok((rustc, _)) = &rustc {
        check("cargo", locate_cargo(rustc).map(|p| shown(&p)));
        check("clippy-driver (xtask clippy)", locate_clippy_driver(rustc).map(|p| shown(&p)));
    }
    check("kernel linker", locate_linker().map(|l| format!("{} ({})", l.path.display(), l.kind.name())));
    let tool = locate_sign_tool();
    check(
        "signing",
        tool.as_ref().map_err(String::clone).map(|t| match t {
            SignTool::Signtool(p) => format!("signtool {}", p.display()),
            SignTool::Osslsigncode(p) => format!("osslsigncode {}", p.display()),
        }),
    );
    // openssl makes the test certificate, and the PFX that signtool reads.
    let own_cert = std::env::var_os(crate::sign::CERT_ENV).is_some_and(|v| !v.is_empty());
    if !own_cert || matches!(tool, Ok(SignTool::Signtool(_))) {
        check("openssl", locate_openssl().map(|p| shown(&p)));
    }
    for (stem, use_) in [("infverif", "checks the INF"), ("inf2cat", "checks the package")] {
        match locate_kit_tool(stem) {
            Some(p) => eprintln!("setup: {stem}: {}", p.display()),
            None => eprintln!("setup: {stem}: not found (optional: with the WDK installed, packaging {use_} with it)"),
        }
    }
    eprintln!(
        "setup: rawnicctl.exe is built for the toolchain's own Windows target; for *-windows-msvc that needs the \
         Visual Studio Build Tools' C++ tools (or a Developer prompt or eWDK)"
    );
    if missing.is_empty() {
        eprintln!("setup: everything the Windows build needs is there");
        Ok(())
    } else {
        Err(format!("missing: {}. Install them as said above, then run `cargo make setup` again", missing.join(", ")))
    }
}
