//! `xtask setup | driver | clippy | package | toolchain`: the steps behind the
//! cargo-make tasks.

use std::process::ExitCode;
use xtask::{kernel, package, toolchain, workspace_root};

const USAGE: &str = "usage: xtask <command>

commands:
  setup       install the Debian packages the build and tests need (as root),
              or print the apt-get command to run
  toolchain   print the tools the kernel build would use
  driver      build rawnic.sys and the verifier fixtures into target/kernel/images
  clippy      clippy over the kernel sources (driver and fixtures) and over the client
              library and rawnicctl, each as built for Windows
  package     build target/package: rawnic.sys, rawnic.inf, rawnic.cat, rawnicctl.exe
              (signed), rawnic-test.cer, the PowerShell scripts, SHA256SUMS";

fn run(cmd: &str) -> Result<(), String> {
    let root = workspace_root();
    match cmd {
        "setup" => toolchain::setup(),
        "toolchain" => {
            let tc = toolchain::locate()?;
            println!("rustc    {}", tc.rustc.display());
            println!("sysroot  {}", tc.sysroot.display());
            println!("cargo    {}", tc.cargo.display());
            println!("lld-link {}", tc.lld_link.display());
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
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
