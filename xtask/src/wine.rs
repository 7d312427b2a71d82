//! `xtask wine`: the Windows client run, not only compiled. On Linux, Wine
//! runs what MinGW builds:
//!
//! - the client library's unit tests built for `x86_64-pc-windows-gnu`,
//!   among them the Windows backend's own (`client/src/windows/tests.rs`:
//!   `CreateFileW`, overlapped `ReadFile`/`WriteFile`/`DeviceIoControl`,
//!   `CancelIoEx` and the NTSTATUS recovery on a named pipe);
//! - the package's `rawnicctl.exe`: its help, a filter compiled as the Linux
//!   build compiles it, and what it says when there is no device.
//!
//! Wine 8.0 (Debian 12) lacks `bcryptprimitives.dll`, whose `ProcessPrng`
//! every Rust program imports: a small one is built from
//! `xtask/wine/bcryptprimitives.c` and put beside the programs in
//! `target/wine/bin` (never in the package). The Wine prefix is
//! `target/wine/prefix`, made on first use.

use crate::discover::{Host, join};
use crate::kernel::clean_command;
use crate::package::mingw_target_args;
use crate::toolchain::{self, Toolchain};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where Debian's `wine64` package puts the loader (it has no `/usr/bin`
/// entry without the `wine` package).
const DEBIAN_WINE64: &str = "/usr/lib/wine/wine64";

/// The filter `rawnicctl compile` is asked for on both builds.
const EXPRESSION: &str = "vlan 10 and udp port 53 or ip6 and tcp[tcpflags] & tcp-syn != 0";

fn locate_wine() -> Result<PathBuf, String> {
    let debian = PathBuf::from(DEBIAN_WINE64);
    if debian.is_file() {
        return Ok(debian);
    }
    toolchain::which("wine64").or_else(|| toolchain::which("wine")).ok_or_else(|| {
        format!(
            "wine64 was not found.\nInstall it with `cargo make setup`, or run:\n    {}",
            toolchain::install_command(&["wine64"])
        )
    })
}

/// Builds `bcryptprimitives.dll` into `dir`.
fn build_shim(root: &Path, dir: &Path) -> Result<PathBuf, String> {
    let gcc = toolchain::locate_mingw_gcc()?;
    let src = join(root, &["xtask", "wine"]);
    let out = dir.join("bcryptprimitives.dll");
    let status = Command::new(&gcc)
        .args(["-shared", "-O2", "-o"])
        .arg(&out)
        .arg(src.join("bcryptprimitives.c"))
        .arg(src.join("bcryptprimitives.def"))
        .arg("-ladvapi32")
        .status()
        .map_err(|e| format!("cannot run {}: {e}", gcc.display()))?;
    if !status.success() {
        return Err("building bcryptprimitives.dll failed".into());
    }
    Ok(out)
}

/// Builds the client library's unit tests for Windows (panics abort, each
/// test in a process of its own) and returns the test program.
fn build_client_tests(root: &Path, tc: &Toolchain) -> Result<PathBuf, String> {
    let target_dir = join(root, &["target", "windows-test"]);
    let mingw = mingw_target_args(tc, &join(root, &["target", "windows", "crt"]))?;
    let out = clean_command(&tc.cargo)
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &tc.rustc)
        .args(["test", "--no-run", "--release", "--locked", "-p", "rawnic-client", "--lib"])
        .arg("--message-format=json-render-diagnostics")
        .args(mingw)
        .args(["-Zbuild-std=std,panic_abort,test", "-Zpanic-abort-tests"])
        .args(["--config", "profile.release.panic=\"abort\""])
        .arg("--target-dir")
        .arg(&target_dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    if !out.status.success() {
        return Err(format!("the Windows build of the client's tests failed ({})", out.status));
    }
    test_executable(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "cargo named no test program for the client library".into())
}

/// The test program in cargo's JSON messages: the artifact of a test
/// profile with an executable (paths here are Linux paths: no escapes).
fn test_executable(json: &str) -> Option<PathBuf> {
    json.lines().filter(|l| l.contains("\"reason\":\"compiler-artifact\"") && l.contains("\"test\":true")).find_map(
        |l| {
            let (_, rest) = l.split_once("\"executable\":\"")?;
            let (path, _) = rest.split_once('"')?;
            Some(PathBuf::from(path))
        },
    )
}

/// Runs Windows programs under Wine, from `bin`, in a prefix of its own.
struct Wine {
    wine: PathBuf,
    prefix: PathBuf,
    bin: PathBuf,
}

impl Wine {
    fn run(&self, exe: &str, args: &[&str]) -> Result<Output, String> {
        Command::new(&self.wine)
            .arg(self.bin.join(exe))
            .args(args)
            .current_dir(&self.bin)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // No window is ever opened: no display is needed.
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.wine.display()))
    }

    /// Stops the prefix's wineserver (it lingers a few seconds otherwise).
    fn stop(&self) {
        let server = self.wine.with_file_name("wineserver");
        let server = if server.is_file() { server } else { PathBuf::from("wineserver") };
        let _ = Command::new(server).arg("-k").env("WINEPREFIX", &self.prefix).stderr(Stdio::null()).status();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

/// One check of `rawnicctl.exe`: `what` failed unless `ok`.
fn expect(ok: bool, what: &str, out: &Output) -> Result<(), String> {
    if ok {
        eprintln!("wine: rawnicctl.exe {what}: ok");
        return Ok(());
    }
    Err(format!(
        "rawnicctl.exe under Wine: {what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    ))
}

/// `rawnicctl.exe`'s checks: `host_ctl` is the Linux build, whose compiled
/// filter the Windows build must print byte for byte.
fn check_rawnicctl(w: &Wine, host_ctl: &Path) -> Result<usize, String> {
    let help = w.run("rawnicctl.exe", &["--help"])?;
    expect(
        help.status.success() && text(&help.stdout).contains("Usage: rawnicctl.exe"),
        "--help prints its usage",
        &help,
    )?;
    let linux = Command::new(host_ctl)
        .args(["compile", EXPRESSION])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", host_ctl.display()))?;
    if !linux.status.success() || linux.stdout.is_empty() {
        return Err(format!("the Linux rawnicctl could not compile the filter: {}", text(&linux.stderr)));
    }
    let win = w.run("rawnicctl.exe", &["compile", EXPRESSION])?;
    expect(
        win.status.success() && text(&win.stdout) == text(&linux.stdout),
        "compile prints the program the Linux build prints",
        &win,
    )?;
    let none = w.run("rawnicctl.exe", &["list"])?;
    expect(
        none.status.code() == Some(1)
            && text(&none.stderr).contains("cannot open \\\\.\\RawNic")
            && text(&none.stderr).contains("netcfg -l rawnic.inf -c p -i RAWNIC"),
        "list without the driver says how to install it (exit 1)",
        &none,
    )?;
    let bad = w.run("rawnicctl.exe", &["-d", "\\\\.\\RawNic\\sub", "list"])?;
    expect(
        bad.status.code() == Some(1) && text(&bad.stderr).contains("names something inside the device"),
        "a name below the device is refused before any call",
        &bad,
    )?;
    Ok(4)
}

/// Counts the passed tests in libtest's summary line.
fn passed(stdout: &str) -> Option<u32> {
    let line = stdout.lines().rev().find(|l| l.starts_with("test result: ok."))?;
    line.split_whitespace().nth(3)?.trim_end_matches(';').parse().ok()
}

/// The Linux `rawnicctl`, built (debug) with the cargo that runs xtask.
pub fn host_rawnicctl(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "-q", "--locked", "-p", "rawnicctl"])
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cargo.display()))?;
    if !status.success() {
        return Err("building the Linux rawnicctl failed".into());
    }
    Ok(join(root, &["target", "debug", "rawnicctl"]))
}

/// `xtask wine`.
pub fn run(root: &Path, tc: &Toolchain, host_ctl: &Path) -> Result<(), String> {
    if Host::CURRENT == Host::Windows {
        return Err("xtask wine runs the Windows client under Wine on Linux; \
                    on Windows run `cargo test -p rawnic-client` instead"
            .into());
    }
    let wine = locate_wine()?;
    let dir = join(root, &["target", "wine"]);
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    build_shim(root, &bin)?;
    let tests = build_client_tests(root, tc)?;
    let exe = crate::package::build_exe(root, tc, true)?;
    for (from, name) in [(&tests, "client-tests.exe"), (&exe, "rawnicctl.exe")] {
        fs::copy(from, bin.join(name)).map_err(|e| format!("{} -> {}: {e}", from.display(), bin.display()))?;
    }
    let w = Wine { wine, prefix: dir.join("prefix"), bin };
    let result = (|| {
        let mut out = w.run("client-tests.exe", &[])?;
        // Each test runs in a process of its own; under load Wine may fail
        // to start one ("Failed to spawn ... as child for test", Windows
        // error 1359): that is Wine's failure, not a test's, and the run is
        // made once more. A test that fails does not say that.
        if !out.status.success() && text(&out.stdout).contains(" as child for test: ") {
            eprintln!("wine: Wine could not start a test's process; the client's tests run again");
            out = w.run("client-tests.exe", &[])?;
        }
        let stdout = text(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "the client library's tests failed under Wine ({}):\n{stdout}{}",
                out.status,
                text(&out.stderr)
            ));
        }
        let n = passed(&stdout).ok_or_else(|| format!("no test summary in:\n{stdout}"))?;
        let windows = stdout.lines().filter(|l| l.starts_with("test windows::") && l.ends_with(" ok")).count();
        if windows == 0 {
            return Err(format!("none of the Windows backend's own tests ran:\n{stdout}"));
        }
        let checks = check_rawnicctl(&w, host_ctl)?;
        eprintln!(
            "wine: {n} client library tests passed as built for Windows ({windows} of them the \
             Windows backend's system calls); rawnicctl.exe: {checks} checks"
        );
        Ok(())
    })();
    w.stop();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_program_is_found_in_cargos_messages() {
        let json = concat!(
            "{\"reason\":\"compiler-artifact\",\"profile\":{\"test\":false},\"executable\":null}\n",
            "{\"reason\":\"compiler-artifact\",\"profile\":{\"opt_level\":\"3\",\"test\":true},",
            "\"executable\":\"/r/target/x/deps/rawnic_client-1.exe\",\"fresh\":true}\n",
            "{\"reason\":\"build-finished\",\"success\":true}\n"
        );
        assert_eq!(test_executable(json), Some(PathBuf::from("/r/target/x/deps/rawnic_client-1.exe")));
        assert_eq!(test_executable("{\"reason\":\"build-finished\"}"), None);
    }

    #[test]
    fn the_summary_counts_what_passed() {
        let out = "test a ... ok\n\ntest result: ok. 58 passed; 0 failed; 0 ignored; 0 measured\n";
        assert_eq!(passed(out), Some(58));
        assert_eq!(passed("test result: FAILED. 1 passed; 1 failed;"), None);
    }
}
