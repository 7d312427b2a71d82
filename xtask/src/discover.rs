//! Where the build's tools are, as pure functions of the host, its
//! environment and a view of its file system.
//!
//! Nothing here runs a program or reads a disk by itself: the callers pass
//! an [`Env`] and closures that answer "is this a file", "what does this
//! file say" and "what is in this directory". `toolchain.rs` passes the real
//! ones; the tests pass maps, so the Windows rules (`PATHEXT`, rustup's
//! nightly, LLVM and Visual Studio installs, the Windows Kits) are checked on
//! Linux too.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The kind of system the tools run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// Linux (and other Unix systems): the build as CI runs it.
    Unix,
    Windows,
}

impl Host {
    /// The host this program runs on.
    pub const CURRENT: Host = if cfg!(windows) { Host::Windows } else { Host::Unix };

    /// The file name of the program `stem` (`cargo.exe` on Windows).
    pub fn exe(self, stem: &str) -> String {
        match self {
            Host::Unix => stem.to_string(),
            Host::Windows => format!("{stem}.exe"),
        }
    }

    fn is_separator(self, c: char) -> bool {
        c == '/' || (self == Host::Windows && c == '\\')
    }
}

/// Joins `parts` below `base`, one component each (never a `/` inside a
/// part, so the separators are the host's).
pub fn join(base: &Path, parts: &[&str]) -> PathBuf {
    let mut p = base.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

/// A snapshot of environment variables, read the way `host` reads them
/// (names are case-insensitive on Windows).
#[derive(Debug, Clone)]
pub struct Env {
    host: Host,
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// This process's environment.
    pub fn current() -> Env {
        Env { host: Host::CURRENT, vars: std::env::vars_os().collect() }
    }

    /// An environment of `host` with exactly `vars`.
    pub fn new<K: Into<OsString>, V: Into<OsString>>(host: Host, vars: impl IntoIterator<Item = (K, V)>) -> Env {
        Env { host, vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    pub fn host(&self) -> Host {
        self.host
    }

    /// The value of `name`, if it is set.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        let matches = |k: &OsString| match self.host {
            Host::Unix => k == name,
            Host::Windows => k.to_str().is_some_and(|k| k.eq_ignore_ascii_case(name)),
        };
        self.vars.iter().find(|(k, _)| matches(k)).map(|(_, v)| v.as_os_str())
    }

    /// The path `name` holds; `None` when it is unset or empty.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).filter(|v| !v.is_empty()).map(PathBuf::from)
    }

    /// The directories of `PATH`, in order.
    pub fn search_path(&self) -> Vec<PathBuf> {
        self.get("PATH").map(|v| split_paths(self.host, v)).unwrap_or_default()
    }

    /// The extensions a bare program name may take: `PATHEXT` on Windows
    /// (lowercased; `.COM;.EXE;.BAT;.CMD` when unset), none elsewhere.
    fn program_extensions(&self) -> Vec<String> {
        match self.host {
            Host::Unix => vec![String::new()],
            Host::Windows => {
                let list = self
                    .get("PATHEXT")
                    .map(|v| v.to_string_lossy().into_owned())
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| ".COM;.EXE;.BAT;.CMD".to_string());
                list.split(';').map(|e| e.trim().to_ascii_lowercase()).filter(|e| e.starts_with('.')).collect()
            }
        }
    }
}

/// Splits a `PATH`-style list as `host` does: `:` on Unix (an empty entry
/// is the current directory), `;` on Windows (double quotes group, and are
/// dropped).
pub fn split_paths(host: Host, value: &OsStr) -> Vec<PathBuf> {
    if host == Host::CURRENT {
        return std::env::split_paths(value).collect();
    }
    let text = value.to_string_lossy();
    match host {
        Host::Unix => text.split(':').map(PathBuf::from).collect(),
        Host::Windows => {
            let (mut out, mut current, mut quoted) = (Vec::new(), String::new(), false);
            for c in text.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ';' if !quoted => out.push(PathBuf::from(std::mem::take(&mut current))),
                    _ => current.push(c),
                }
            }
            out.push(PathBuf::from(current));
            out
        }
    }
}

/// Looks a program up as the host's shell would: a name with a directory
/// in it as it is, else in each directory of `PATH`. On Windows a name
/// without an extension is tried with each of `PATHEXT`'s.
pub fn which(env: &Env, name: &str, is_file: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let host = env.host();
    let file_name = name.rsplit(|c| host.is_separator(c)).next().unwrap_or(name);
    let names: Vec<String> = if host == Host::Windows && file_name.contains('.') {
        vec![name.to_string()]
    } else {
        env.program_extensions().iter().map(|ext| format!("{name}{ext}")).collect()
    };
    if name.chars().any(|c| host.is_separator(c)) {
        return names.into_iter().map(PathBuf::from).find(|p| is_file(p));
    }
    env.search_path()
        .into_iter()
        // An empty entry is the current directory on Unix; Windows skips it.
        .filter(|dir| host == Host::Unix || !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)).collect::<Vec<_>>())
        .find(|p| is_file(p))
}

/// True when `sysroot` carries the standard library sources that
/// `-Zbuild-std` builds (rustup's `rust-src` component, Debian's
/// `rust-web-src`).
pub fn has_std_sources(sysroot: &Path, is_file: &dyn Fn(&Path) -> bool) -> bool {
    is_file(&join(sysroot, &["lib", "rustlib", "src", "rust", "library", "core", "Cargo.toml"]))
}

/// Where a rustc for the kernel build may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustcCandidate {
    /// A rustc program: the one on `PATH`, Debian's.
    Program(PathBuf),
    /// A rustup toolchain, asked with `rustup run <toolchain> rustc`.
    Rustup { rustup: PathBuf, toolchain: String },
}

/// The rustup toolchain that Windows builds look for when the default one
/// lacks the standard library sources.
pub const NIGHTLY: &str = "nightly";

/// The rustcs to try, in order, after the `RAWNIC_RUSTC` override: the
/// `rustc` on `PATH`, then Debian's `/usr/bin/rustc` on Unix, or rustup's
/// nightly toolchain on Windows.
pub fn rustc_candidates(env: &Env, is_file: &dyn Fn(&Path) -> bool) -> Vec<RustcCandidate> {
    let mut out = Vec::new();
    if let Some(p) = which(env, "rustc", is_file) {
        out.push(RustcCandidate::Program(p));
    }
    match env.host() {
        Host::Unix => out.push(RustcCandidate::Program(PathBuf::from("/usr/bin/rustc"))),
        Host::Windows => {
            if let Some(rustup) = which(env, "rustup", is_file) {
                out.push(RustcCandidate::Rustup { rustup, toolchain: NIGHTLY.to_string() });
            }
        }
    }
    out
}

/// A rustc and its sysroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRustc {
    pub rustc: PathBuf,
    pub sysroot: PathBuf,
}

/// The first candidate whose sysroot (`sysroot_of`, which runs
/// `--print sysroot`) has the standard library sources.
///
/// On Unix a program candidate is used as found (a rustup proxy stays a
/// proxy). A rustup toolchain, and on Windows any candidate, is used through
/// the `rustc` in its sysroot's `bin`, so the cargo and clippy-driver beside
/// it are the toolchain's own, not proxies that would pick another one.
pub fn choose_rustc(
    host: Host,
    candidates: &[RustcCandidate],
    sysroot_of: &mut dyn FnMut(&RustcCandidate) -> Option<PathBuf>,
    is_file: &dyn Fn(&Path) -> bool,
) -> Option<FoundRustc> {
    for candidate in candidates {
        let Some(sysroot) = sysroot_of(candidate) else { continue };
        if !has_std_sources(&sysroot, is_file) {
            continue;
        }
        let inner = join(&sysroot, &["bin", &host.exe("rustc")]);
        let rustc = match candidate {
            RustcCandidate::Program(p) if host == Host::Unix || !is_file(&inner) => p.clone(),
            _ if is_file(&inner) => inner,
            _ => continue,
        };
        return Some(FoundRustc { rustc, sysroot });
    }
    None
}

/// The program `stem` beside `rustc` (`cargo`, `clippy-driver`).
pub fn beside(host: Host, rustc: &Path, stem: &str) -> PathBuf {
    rustc.with_file_name(host.exe(stem))
}

/// Which linker links the kernel image. Both take the same flags
/// (`kernel::LINK_FLAGS`), and rustc treats both as MSVC-style linkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkerKind {
    /// LLVM's lld-link.
    LldLink,
    /// MSVC's link.exe.
    MsvcLink,
}

impl LinkerKind {
    /// The kind a linker path names: `link` / `link.exe` is MSVC's, anything
    /// else is taken for lld-link.
    pub fn of(path: &Path) -> LinkerKind {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let stem = stem.rsplit('\\').next().unwrap_or(stem);
        if stem.eq_ignore_ascii_case("link") { LinkerKind::MsvcLink } else { LinkerKind::LldLink }
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkerKind::LldLink => "lld-link",
            LinkerKind::MsvcLink => "link.exe (MSVC)",
        }
    }
}

/// The kernel image's linker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linker {
    pub path: PathBuf,
    pub kind: LinkerKind,
}

impl Linker {
    fn at(path: PathBuf) -> Linker {
        let kind = LinkerKind::of(&path);
        Linker { path, kind }
    }
}

/// The override of the linker's path (either kind).
pub const LINKER_ENV: &str = "RAWNIC_LLD_LINK";

/// The linker, found without running anything: `RAWNIC_LLD_LINK`, then
/// - Unix: `lld-link-19`, LLVM 19's `lld-link`, any `lld-link` on `PATH`;
/// - Windows: `lld-link` on `PATH`, LLVM's installer's
///   `%ProgramFiles%\LLVM\bin\lld-link.exe`, then MSVC's `link.exe` of a
///   Developer prompt or eWDK (`%VCToolsInstallDir%\bin\Hostx64\x64`).
///
/// `None` means: on Windows, ask vswhere next ([`msvc_link_in_vs`]).
pub fn find_linker(env: &Env, is_file: &dyn Fn(&Path) -> bool) -> Option<Linker> {
    if let Some(p) = env.path(LINKER_ENV) {
        return Some(Linker::at(p));
    }
    match env.host() {
        Host::Unix => ["lld-link-19", "/usr/lib/llvm-19/bin/lld-link", "lld-link"]
            .into_iter()
            .find_map(|name| which(env, name, is_file))
            .map(Linker::at),
        Host::Windows => {
            let lld = which(env, "lld-link", is_file).or_else(|| {
                let p = join(&env.path("ProgramFiles")?, &["LLVM", "bin", "lld-link.exe"]);
                is_file(&p).then_some(p)
            });
            if let Some(p) = lld {
                return Some(Linker { path: p, kind: LinkerKind::LldLink });
            }
            let link = msvc_link_in_tools(&env.path("VCToolsInstallDir")?);
            is_file(&link).then_some(Linker { path: link, kind: LinkerKind::MsvcLink })
        }
    }
}

/// MSVC's x64-hosted, x64-targeting `link.exe` in a `VC\Tools\MSVC\<version>`
/// directory.
pub fn msvc_link_in_tools(tools: &Path) -> PathBuf {
    join(tools, &["bin", "Hostx64", "x64", "link.exe"])
}

/// vswhere, which Visual Studio 2017 and later install at a fixed place.
pub fn vswhere(env: &Env, is_file: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let p = join(&env.path("ProgramFiles(x86)")?, &["Microsoft Visual Studio", "Installer", "vswhere.exe"]);
    is_file(&p).then_some(p)
}

/// vswhere's arguments: the installation folder of the newest Visual Studio
/// (Build Tools included) with the x64 C++ tools.
pub const VSWHERE_ARGS: &[&str] = &[
    "-latest",
    "-products",
    "*",
    "-requires",
    "Microsoft.VisualStudio.Component.VC.Tools.x86.x64",
    "-property",
    "installationPath",
];

/// `link.exe` in a Visual Studio installation (`installationPath`): the
/// default tools version its `Microsoft.VCToolsVersion.default.txt` names,
/// else the newest under `VC\Tools\MSVC`.
pub fn msvc_link_in_vs(
    install: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
    list_dir: &dyn Fn(&Path) -> Vec<String>,
    is_file: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let msvc = join(install, &["VC", "Tools", "MSVC"]);
    let default = read(&join(install, &["VC", "Auxiliary", "Build", "Microsoft.VCToolsVersion.default.txt"]))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    default
        .into_iter()
        .chain(newest_first(list_dir(&msvc)))
        .map(|v| msvc_link_in_tools(&msvc.join(v)))
        .find(|p| is_file(p))
}

/// Version-named directories (`10.0.22621.0`, `14.38.33130`), newest first;
/// names that are not dotted numbers are left out.
pub fn newest_first(names: Vec<String>) -> Vec<String> {
    let mut versions: Vec<(Vec<u64>, String)> = names
        .into_iter()
        .filter_map(|n| {
            let parts: Option<Vec<u64>> = n.split('.').map(|p| p.parse().ok()).collect();
            parts.filter(|p| p.len() > 1).map(|p| (p, n))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, n)| n).collect()
}

/// A tool of the Windows SDK or WDK (`signtool`, `inf2cat`, `infverif`):
/// on `PATH` (a Developer prompt or eWDK puts the kit's `bin` there), else
/// in the kit that `WDKContentRoot` (eWDK), `WindowsSdkDir` or the default
/// `%ProgramFiles(x86)%\Windows Kits\10` names, newest version first, under
/// `bin\<version>\{x64,x86}` (signtool, inf2cat) or
/// `Tools\<version>\{x64,x86}` (infverif in newer WDKs), then the
/// unversioned `bin\{x64,x86}` of older kits.
pub fn kit_tool(
    env: &Env,
    stem: &str,
    list_dir: &dyn Fn(&Path) -> Vec<String>,
    is_file: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if let Some(p) = which(env, stem, is_file) {
        return Some(p);
    }
    let exe = Host::Windows.exe(stem);
    let mut roots: Vec<PathBuf> = ["WDKContentRoot", "WindowsSdkDir"].iter().filter_map(|v| env.path(v)).collect();
    if let Some(pf) = env.path("ProgramFiles(x86)") {
        roots.push(join(&pf, &["Windows Kits", "10"]));
    }
    roots.dedup();
    let mut candidates = Vec::new();
    for root in &roots {
        for sub in ["bin", "Tools"] {
            for version in newest_first(list_dir(&root.join(sub))) {
                for arch in ["x64", "x86"] {
                    candidates.push(join(root, &[sub, &version, arch, &exe]));
                }
            }
        }
        for arch in ["x64", "x86"] {
            candidates.push(join(root, &["bin", arch, &exe]));
        }
    }
    candidates.into_iter().find(|p| is_file(p))
}

/// openssl: on `PATH`, else (Windows) the one Git for Windows installs, or
/// the Win64 OpenSSL installer's.
pub fn find_openssl(env: &Env, is_file: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    if let Some(p) = which(env, "openssl", is_file) {
        return Some(p);
    }
    if env.host() != Host::Windows {
        return None;
    }
    let pf = env.path("ProgramFiles")?;
    [join(&pf, &["Git", "usr", "bin", "openssl.exe"]), join(&pf, &["OpenSSL-Win64", "bin", "openssl.exe"])]
        .into_iter()
        .find(|p| is_file(p))
}

/// The variables a nested build keeps; every other one is cleared, so
/// nothing of an outer cargo leaks into it. Windows programs also need the
/// system's own variables, and MSVC's linker the ones a Developer prompt or
/// eWDK sets.
pub fn kept_vars(host: Host) -> Vec<&'static str> {
    let mut keep =
        vec!["PATH", "HOME", "CARGO_HOME", "TMPDIR", "LANG", "TERM", "SOURCE_DATE_EPOCH", "CARGO_NET_OFFLINE"];
    if host == Host::Windows {
        keep.extend([
            "SystemRoot",
            "SystemDrive",
            "windir",
            "ComSpec",
            "PATHEXT",
            "TEMP",
            "TMP",
            "USERPROFILE",
            "APPDATA",
            "LOCALAPPDATA",
            "ProgramData",
            "ProgramFiles",
            "ProgramFiles(x86)",
            "ProgramW6432",
            "CommonProgramFiles",
            "CommonProgramFiles(x86)",
            "NUMBER_OF_PROCESSORS",
            "PROCESSOR_ARCHITECTURE",
            "RUSTUP_HOME",
            "LIB",
            "LIBPATH",
            "INCLUDE",
            "VSINSTALLDIR",
            "VCINSTALLDIR",
            "VCToolsInstallDir",
            "VCToolsVersion",
            "VisualStudioVersion",
            "WindowsSdkDir",
            "WindowsSDKVersion",
            "WindowsSdkBinPath",
            "WindowsSdkVerBinPath",
            "UniversalCRTSdkDir",
            "UCRTVersion",
            "WDKContentRoot",
        ]);
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A file system of the given files (paths compared as strings, so
    /// Windows paths work on Linux).
    fn files(list: &[PathBuf]) -> impl Fn(&Path) -> bool + use<> {
        let set: BTreeSet<PathBuf> = list.iter().cloned().collect();
        move |p: &Path| set.contains(p)
    }

    fn p(parts: &[&str]) -> PathBuf {
        join(Path::new(parts[0]), &parts[1..])
    }

    fn win(vars: &[(&str, &str)]) -> Env {
        Env::new(Host::Windows, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn unix(vars: &[(&str, &str)]) -> Env {
        Env::new(Host::Unix, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn windows_names_are_case_insensitive_and_unix_names_are_not() {
        assert_eq!(win(&[("Path", "x")]).get("PATH"), Some(OsStr::new("x")));
        assert_eq!(unix(&[("Path", "x")]).get("PATH"), None);
        assert_eq!(win(&[("RAWNIC_LLD_LINK", "")]).path(LINKER_ENV), None);
    }

    #[test]
    fn path_lists_split_as_each_host_splits_them() {
        let w = split_paths(Host::Windows, OsStr::new(r#"C:\a;"C:\b;c";;D:\d"#));
        assert_eq!(w, [PathBuf::from(r"C:\a"), PathBuf::from(r"C:\b;c"), PathBuf::new(), PathBuf::from(r"D:\d")]);
        let u = split_paths(Host::Unix, OsStr::new("/a::/b"));
        assert_eq!(u, [PathBuf::from("/a"), PathBuf::new(), PathBuf::from("/b")]);
    }

    #[test]
    fn which_honours_pathext_on_windows() {
        let env = win(&[("PATH", r"C:\one;C:\two"), ("PATHEXT", ".COM;.EXE;.CMD")]);
        let fs = files(&[p(&[r"C:\two", "tool.cmd"]), p(&[r"C:\two", "tool.exe"]), p(&[r"C:\one", "other.exe"])]);
        // .EXE comes before .CMD in PATHEXT.
        assert_eq!(which(&env, "tool", &fs), Some(p(&[r"C:\two", "tool.exe"])));
        assert_eq!(which(&env, "other", &fs), Some(p(&[r"C:\one", "other.exe"])));
        // A name with an extension is taken as it is.
        assert_eq!(which(&env, "tool.cmd", &fs), Some(p(&[r"C:\two", "tool.cmd"])));
        assert_eq!(which(&env, "other.com", &fs), None);
        // A path is not searched for, but still takes an extension.
        let direct = files(&[PathBuf::from(r"C:\x\y.exe")]);
        assert_eq!(which(&env, r"C:\x\y", &direct), Some(PathBuf::from(r"C:\x\y.exe")));
        // Without PATHEXT, Windows' default list.
        let bare = win(&[("PATH", r"C:\two")]);
        assert_eq!(which(&bare, "tool", &fs), Some(p(&[r"C:\two", "tool.exe"])));
    }

    #[test]
    fn which_on_unix_takes_names_as_they_are() {
        let env = unix(&[("PATH", "/usr/local/bin:/usr/bin"), ("PATHEXT", ".EXE")]);
        let fs = files(&[PathBuf::from("/usr/bin/rustc"), PathBuf::from("/usr/bin/cargo.exe")]);
        assert_eq!(which(&env, "rustc", &fs), Some(PathBuf::from("/usr/bin/rustc")));
        assert_eq!(which(&env, "cargo", &fs), None);
        assert_eq!(which(&env, "/usr/bin/rustc", &fs), Some(PathBuf::from("/usr/bin/rustc")));
        assert_eq!(which(&env, "bin/rustc", &fs), None);
    }

    fn sysroot_with_sources(root: &str) -> PathBuf {
        p(&[root, "lib", "rustlib", "src", "rust", "library", "core", "Cargo.toml"])
    }

    #[test]
    fn unix_rustc_is_the_one_on_path_with_sources_else_debians() {
        let env = unix(&[("PATH", "/home/u/.cargo/bin:/usr/bin")]);
        let fs = files(&[
            PathBuf::from("/home/u/.cargo/bin/rustc"),
            PathBuf::from("/usr/bin/rustc"),
            sysroot_with_sources("/usr"),
        ]);
        let candidates = rustc_candidates(&env, &fs);
        assert_eq!(
            candidates,
            [
                RustcCandidate::Program(PathBuf::from("/home/u/.cargo/bin/rustc")),
                RustcCandidate::Program(PathBuf::from("/usr/bin/rustc")),
            ]
        );
        // rustup's stable has no sources; Debian's has.
        let mut sysroot_of = |c: &RustcCandidate| match c {
            RustcCandidate::Program(p) if p.starts_with("/home") => Some(PathBuf::from("/home/u/.rustup/stable")),
            RustcCandidate::Program(_) => Some(PathBuf::from("/usr")),
            RustcCandidate::Rustup { .. } => panic!("no rustup on Unix"),
        };
        let found = choose_rustc(Host::Unix, &candidates, &mut sysroot_of, &fs).unwrap();
        assert_eq!(found, FoundRustc { rustc: PathBuf::from("/usr/bin/rustc"), sysroot: PathBuf::from("/usr") });
        // A rustup proxy whose toolchain has the sources is used as it is.
        let fs = files(&[PathBuf::from("/home/u/.cargo/bin/rustc"), sysroot_with_sources("/home/u/.rustup/stable")]);
        let found = choose_rustc(Host::Unix, &candidates, &mut sysroot_of, &fs).unwrap();
        assert_eq!(found.rustc, PathBuf::from("/home/u/.cargo/bin/rustc"));
    }

    #[test]
    fn windows_rustc_falls_back_to_rustups_nightly_with_rust_src() {
        let cargo_bin = r"C:\Users\u\.cargo\bin";
        let stable = r"C:\Users\u\.rustup\toolchains\stable-x86_64-pc-windows-msvc";
        let nightly = r"C:\Users\u\.rustup\toolchains\nightly-x86_64-pc-windows-msvc";
        let env = win(&[("PATH", cargo_bin), ("PATHEXT", ".EXE")]);
        let fs = files(&[
            p(&[cargo_bin, "rustc.exe"]),
            p(&[cargo_bin, "rustup.exe"]),
            p(&[stable, "bin", "rustc.exe"]),
            p(&[nightly, "bin", "rustc.exe"]),
            sysroot_with_sources(nightly),
        ]);
        let candidates = rustc_candidates(&env, &fs);
        assert_eq!(
            candidates,
            [
                RustcCandidate::Program(p(&[cargo_bin, "rustc.exe"])),
                RustcCandidate::Rustup { rustup: p(&[cargo_bin, "rustup.exe"]), toolchain: "nightly".into() },
            ]
        );
        let mut sysroot_of = |c: &RustcCandidate| match c {
            RustcCandidate::Program(_) => Some(PathBuf::from(stable)),
            RustcCandidate::Rustup { toolchain, .. } if toolchain == "nightly" => Some(PathBuf::from(nightly)),
            RustcCandidate::Rustup { .. } => None,
        };
        let found = choose_rustc(Host::Windows, &candidates, &mut sysroot_of, &fs).unwrap();
        assert_eq!(found, FoundRustc { rustc: p(&[nightly, "bin", "rustc.exe"]), sysroot: PathBuf::from(nightly) });
        assert_eq!(beside(Host::Windows, &found.rustc, "cargo"), p(&[nightly, "bin", "cargo.exe"]));
        // With rust-src on the default toolchain, its own rustc.exe (not the proxy).
        let fs = files(&[p(&[stable, "bin", "rustc.exe"]), sysroot_with_sources(stable)]);
        let found = choose_rustc(Host::Windows, &candidates, &mut sysroot_of, &fs).unwrap();
        assert_eq!(found.rustc, p(&[stable, "bin", "rustc.exe"]));
        // No sources anywhere: nothing.
        let fs = files(&[p(&[stable, "bin", "rustc.exe"]), p(&[nightly, "bin", "rustc.exe"])]);
        assert_eq!(choose_rustc(Host::Windows, &candidates, &mut sysroot_of, &fs), None);
    }

    #[test]
    fn unix_linker_order_is_unchanged() {
        let env = unix(&[("PATH", "/usr/bin")]);
        let fs = files(&[PathBuf::from("/usr/bin/lld-link"), PathBuf::from("/usr/lib/llvm-19/bin/lld-link")]);
        let l = find_linker(&env, &fs).unwrap();
        assert_eq!(l, Linker { path: PathBuf::from("/usr/lib/llvm-19/bin/lld-link"), kind: LinkerKind::LldLink });
        let fs = files(&[PathBuf::from("/usr/bin/lld-link-19"), PathBuf::from("/usr/lib/llvm-19/bin/lld-link")]);
        assert_eq!(find_linker(&env, &fs).unwrap().path, PathBuf::from("/usr/bin/lld-link-19"));
        let over = unix(&[("PATH", "/usr/bin"), (LINKER_ENV, "/opt/x/lld-link")]);
        assert_eq!(find_linker(&over, &fs).unwrap().path, PathBuf::from("/opt/x/lld-link"));
        assert_eq!(find_linker(&env, &files(&[])), None);
    }

    #[test]
    fn windows_linker_prefers_lld_link_then_msvc_link() {
        let llvm = p(&[r"C:\Program Files", "LLVM", "bin", "lld-link.exe"]);
        let tools = r"C:\BuildTools\VC\Tools\MSVC\14.38.33130";
        let link = p(&[tools, "bin", "Hostx64", "x64", "link.exe"]);
        let on_path = p(&[r"C:\llvm\bin", "lld-link.exe"]);
        let env = win(&[("PATH", r"C:\llvm\bin"), ("ProgramFiles", r"C:\Program Files"), ("VCToolsInstallDir", tools)]);
        let all = files(&[on_path.clone(), llvm.clone(), link.clone()]);
        assert_eq!(find_linker(&env, &all), Some(Linker { path: on_path, kind: LinkerKind::LldLink }));
        let fs = files(&[llvm.clone(), link.clone()]);
        assert_eq!(find_linker(&env, &fs), Some(Linker { path: llvm, kind: LinkerKind::LldLink }));
        let fs = files(std::slice::from_ref(&link));
        assert_eq!(find_linker(&env, &fs), Some(Linker { path: link.clone(), kind: LinkerKind::MsvcLink }));
        // The override names either kind.
        let over = win(&[("rawnic_lld_link", r"D:\VS\link.exe")]);
        assert_eq!(find_linker(&over, &fs).unwrap().kind, LinkerKind::MsvcLink);
        // Nothing: vswhere is asked next.
        assert_eq!(find_linker(&win(&[("PATH", r"C:\llvm\bin")]), &fs), None);
    }

    #[test]
    fn visual_studio_link_comes_from_the_default_tools_version_else_the_newest() {
        let vs = Path::new(r"C:\Program Files\Microsoft Visual Studio\2022\BuildTools");
        let msvc = join(vs, &["VC", "Tools", "MSVC"]);
        let link = |v: &str| join(&msvc, &[v, "bin", "Hostx64", "x64", "link.exe"]);
        let default_txt = join(vs, &["VC", "Auxiliary", "Build", "Microsoft.VCToolsVersion.default.txt"]);
        let fs = files(&[link("14.29.30133"), link("14.38.33130"), link("14.4.1")]);
        let list = |d: &Path| {
            assert_eq!(d, msvc.as_path());
            vec!["14.29.30133".to_string(), "14.38.33130".to_string(), "14.4.1".to_string(), "notes".to_string()]
        };
        let read = |f: &Path| (f == default_txt).then(|| "14.29.30133\r\n".to_string());
        assert_eq!(msvc_link_in_vs(vs, &read, &list, &fs), Some(link("14.29.30133")));
        assert_eq!(msvc_link_in_vs(vs, &|_| None, &list, &fs), Some(link("14.38.33130")));
        assert_eq!(msvc_link_in_vs(vs, &|_| None, &list, &files(&[])), None);
        let env = win(&[("ProgramFiles(x86)", r"C:\Program Files (x86)")]);
        let vswhere_exe = p(&[r"C:\Program Files (x86)", "Microsoft Visual Studio", "Installer", "vswhere.exe"]);
        assert_eq!(vswhere(&env, &files(std::slice::from_ref(&vswhere_exe))), Some(vswhere_exe));
    }

    #[test]
    fn versions_sort_numerically() {
        let names = ["10.0.19041.0", "10.0.22621.0", "10.0.9.0", "wdf", "x64"].map(String::from).to_vec();
        assert_eq!(newest_first(names), ["10.0.22621.0", "10.0.19041.0", "10.0.9.0"]);
    }

    #[test]
    fn kit_tools_come_from_path_or_the_newest_kit() {
        let kits = &p(&[r"C:\Program Files (x86)", "Windows Kits", "10"]);
        let dirs: BTreeMap<PathBuf, Vec<String>> = [
            (kits.join("bin"), vec!["10.0.19041.0".to_string(), "10.0.22621.0".to_string(), "x64".to_string()]),
            (kits.join("Tools"), vec!["10.0.22621.0".to_string()]),
        ]
        .into_iter()
        .collect();
        let list = |d: &Path| dirs.get(d).cloned().unwrap_or_default();
        let fs = files(&[
            join(kits, &["bin", "10.0.19041.0", "x64", "signtool.exe"]),
            join(kits, &["bin", "10.0.22621.0", "x64", "signtool.exe"]),
            join(kits, &["bin", "10.0.22621.0", "x86", "inf2cat.exe"]),
            join(kits, &["Tools", "10.0.22621.0", "x64", "infverif.exe"]),
            join(kits, &["bin", "x64", "old.exe"]),
        ]);
        let env = win(&[("ProgramFiles(x86)", r"C:\Program Files (x86)")]);
        let tool = |stem: &str| kit_tool(&env, stem, &list, &fs);
        assert_eq!(tool("signtool"), Some(join(kits, &["bin", "10.0.22621.0", "x64", "signtool.exe"])));
        assert_eq!(tool("inf2cat"), Some(join(kits, &["bin", "10.0.22621.0", "x86", "inf2cat.exe"])));
        assert_eq!(tool("infverif"), Some(join(kits, &["Tools", "10.0.22621.0", "x64", "infverif.exe"])));
        assert_eq!(tool("old"), Some(join(kits, &["bin", "x64", "old.exe"])));
        assert_eq!(tool("stampinf"), None);
        // An eWDK's root comes first; PATH before any kit.
        let ewdk = Path::new(r"D:\Program Files\Windows Kits\10");
        let env = win(&[("WDKContentRoot", r"D:\Program Files\Windows Kits\10"), ("PATH", r"E:\sdk")]);
        let fs = files(&[join(ewdk, &["bin", "x64", "signtool.exe"]), p(&[r"E:\sdk", "infverif.exe"])]);
        assert_eq!(kit_tool(&env, "signtool", &list, &fs), Some(join(ewdk, &["bin", "x64", "signtool.exe"])));
        assert_eq!(kit_tool(&env, "infverif", &list, &fs), Some(p(&[r"E:\sdk", "infverif.exe"])));
    }

    #[test]
    fn openssl_on_windows_may_be_git_for_windows_own() {
        let git = p(&[r"C:\Program Files", "Git", "usr", "bin", "openssl.exe"]);
        let env = win(&[("ProgramFiles", r"C:\Program Files")]);
        assert_eq!(find_openssl(&env, &files(std::slice::from_ref(&git))), Some(git.clone()));
        assert_eq!(find_openssl(&unix(&[("ProgramFiles", r"C:\Program Files")]), &files(&[git])), None);
    }

    #[test]
    fn nested_builds_keep_what_windows_needs() {
        let unix_vars = kept_vars(Host::Unix);
        assert_eq!(
            unix_vars,
            ["PATH", "HOME", "CARGO_HOME", "TMPDIR", "LANG", "TERM", "SOURCE_DATE_EPOCH", "CARGO_NET_OFFLINE"]
        );
        let windows_vars = kept_vars(Host::Windows);
        for v in ["SystemRoot", "TEMP", "USERPROFILE", "LIB", "VCToolsInstallDir", "WDKContentRoot"] {
            assert!(windows_vars.contains(&v), "{v}");
        }
        assert!(unix_vars.iter().all(|v| windows_vars.contains(v)));
    }

    #[test]
    fn exe_names_and_linker_kinds() {
        assert_eq!(Host::Windows.exe("cargo"), "cargo.exe");
        assert_eq!(Host::Unix.exe("cargo"), "cargo");
        assert_eq!(LinkerKind::of(Path::new("/usr/bin/lld-link-19")), LinkerKind::LldLink);
        assert_eq!(LinkerKind::of(Path::new(r"C:\VC\bin\Hostx64\x64\LINK.EXE")), LinkerKind::MsvcLink);
        assert_eq!(LinkerKind::of(Path::new(r"C:\LLVM\bin\lld-link.exe")), LinkerKind::LldLink);
    }
}
