//! `xtask setup | driver | clippy | package | toolchain | exe | wine | mutants`: the steps
//! behind the cargo-make tasks.

use std::process::ExitCode;
use xtask::discover::LinkerKind;
use xtask::{kernel, mutants, package, toolchain, wine, workspace_root};

const USAGE: &str = "usage: xtask <command>

commands:
  setup       install the Debian packages the build and tests need (as root),
              or print the apt-get command to run; on Windows, say which tools
              are found and how to install the others
  toolchain   print the tools the kernel build would use
  driver      build rawnic.sys and the verifier fixtures into target/kernel/images
  clippy      clippy over the kernel sources (driver and fixtures) and over the client
              library, rawnicctl and xtask, each as built for Windows
  package     build target/package: rawnic.sys, rawnic.inf, rawnic.cat, rawnicctl.exe
              (signed), rawnic-test.cer, the PowerShell scripts, SHA256SUMS
  exe [PACKAGE...]
              build the packages' programs for Windows as rawnicctl.exe is built
              (default rawnicctl; on Linux x86_64-pc-windows-gnu with MinGW), into
              target/windows
  wine        on Linux: run the client library's tests, built for Windows, and
              rawnicctl.exe under Wine (target/wine)
  mutants --file PATH [--file PATH...] [--count N] [--seed S] [--test NAME...]
          [--chaos \"ARGS\"...] [--first K] [--out DIR] [--timeout SECS] [--no-baseline] [--list]
              mutation testing: list the mutation sites of the driver's source files,
              pick N by the seed, build each mutant (in a mirror of the sources,
              target/mutants/tree) to OUT/M<k>.sys and run the battery against it:
              each --test binary (RAWNIC_TEST_DRIVER), then the explorer with each ARGS;
              writes OUT/report.md (default OUT: target/mutants)";

fn run(cmd: &str, args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    match cmd {
        "setup" => toolchain::setup(),
        "toolchain" => {
            let tc = toolchain::locate()?;
            println!("rustc    {}", tc.rustc.display());
            println!("sysroot  {}", tc.sysroot.display());
            println!("cargo    {}", tc.cargo.display());
            let label = match tc.linker.kind {
                LinkerKind::LldLink => "lld-link",
                LinkerKind::MsvcLink => "link.exe",
            };
            println!("{label} {}", tc.linker.path.display());
            Ok(())
        }
        "driver" => {
            let tc = toolchain::locate()?;
            let images = kernel::build(&root, &tc, false)?;
            println!("{}", images.join("rawnic.sys").display());
            Ok(())
        }
        "clippy" => {
            let tc = toolchain::locate()?;
            kernel::clippy(&root, &tc)?;
            package::clippy_exe(&root, &tc)
        }
        "package" => {
            let dir = package::package(&root, package::Parts::All, false)?;
            print!("{}", package::sha256sums(&dir)?);
            println!("package: {}", dir.display());
            Ok(())
        }
        "exe" => {
            let tc = toolchain::locate()?;
            let mut packages: Vec<&str> = args.iter().map(String::as_str).collect();
            if packages.is_empty() {
                packages.push("rawnicctl");
            }
            let dir = package::build_windows_programs(&root, &tc, &packages, false)?;
            println!("{}", dir.display());
            Ok(())
        }
        "wine" => {
            let tc = toolchain::locate()?;
            let ctl = wine::host_rawnicctl(&root)?;
            wine::run(&root, &tc, &ctl)
        }
        "mutants" => mutants::run(&root, args),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    // The kernel build runs this program as its rustc wrapper (`stable`).
    if let Some(code) = xtask::stable::wrap_rustc_if_asked() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(cmd, &args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
