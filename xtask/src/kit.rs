//! The WDK's own package tools, which `package` runs on a Windows host where
//! it finds them (`discover::kit_tool`): infverif checks the INF against
//! Windows' driver rules, and inf2cat checks that the INF and the files it
//! names make a catalog. (signtool, where found, signs: `sign.rs`.) The
//! package keeps the catalog xtask makes, the same on every host; inf2cat's
//! is made in a scratch copy and only checked for. A tool that is not found
//! is said and skipped; one that fails fails the package.

use crate::discover::{Host, join};
use crate::sign::run;
use crate::toolchain;
use std::ffi::OsString;
use std::fs;
use std::path::Path;

/// The first Windows build whose driver rules infverif's `/w` enforces on
/// the INF: its `NTamd64.10.0...25319` models run the driver from the Driver
/// Store (DIRID 13), as isolation wants; the plain `NTamd64` ones, for older
/// Windows where netcfg does not allow that, copy it to `System32\drivers`.
pub const ISOLATED_FROM_BUILD: &str = "10.0.25319";

/// inf2cat's name for the Windows the catalog is for: the same as
/// `package::OS_NAME` (`_v100_X64`, Windows 10 and later, x64).
pub const INF2CAT_OS: &str = "10_X64";

/// `infverif /v /w /wbuild 10.0.25319 rawnic.inf`: verbose, Windows Driver
/// rules from that build on.
pub fn infverif_args(inf: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["/v", "/w", "/wbuild", ISOLATED_FROM_BUILD].map(OsString::from).to_vec();
    args.push(inf.into());
    args
}

/// `inf2cat /driver:<dir> /os:10_X64`.
pub fn inf2cat_args(dir: &Path) -> Vec<OsString> {
    let mut driver = OsString::from("/driver:");
    driver.push(dir);
    vec![driver, format!("/os:{INF2CAT_OS}").into()]
}

/// Runs the WDK's tools over the package in `dir` (its INF stamped and its
/// `rawnic.sys` signed), on a Windows host; does nothing elsewhere.
pub fn check_package(root: &Path, dir: &Path) -> Result<(), String> {
    if Host::CURRENT != Host::Windows {
        return Ok(());
    }
    match toolchain::locate_kit_tool("infverif") {
        Some(infverif) => {
            run(crate::kernel::clean_command(&infverif).args(infverif_args(&dir.join("rawnic.inf"))), "infverif")?;
            eprintln!("package: infverif accepts rawnic.inf");
        }
        None => eprintln!("package: infverif not found (install the WDK); rawnic.inf was not checked with it"),
    }
    match toolchain::locate_kit_tool("inf2cat") {
        Some(inf2cat) => {
            let scratch = join(root, &["target", "inf2cat"]);
            if scratch.exists() {
                fs::remove_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
            }
            fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
            for name in ["rawnic.inf", "rawnic.sys"] {
                fs::copy(dir.join(name), scratch.join(name)).map_err(|e| format!("{name}: {e}"))?;
            }
            run(crate::kernel::clean_command(&inf2cat).args(inf2cat_args(&scratch)), "inf2cat")?;
            if !scratch.join("rawnic.cat").is_file() {
                return Err(format!("inf2cat made no rawnic.cat in {}", scratch.display()));
            }
            eprintln!("package: inf2cat makes a catalog of rawnic.inf and rawnic.sys (kept in {})", scratch.display());
        }
        None => eprintln!("package: inf2cat not found (install the WDK); the package was not checked with it"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn infverif_enforces_isolation_from_the_build_the_inf_isolates_from() {
        assert_eq!(
            strings(infverif_args(Path::new("rawnic.inf"))),
            ["/v", "/w", "/wbuild", "10.0.25319", "rawnic.inf"]
        );
        let inf = std::fs::read_to_string(join(&crate::workspace_root(), &["inf", "rawnic.inf"])).unwrap();
        let build = ISOLATED_FROM_BUILD.rsplit('.').next().unwrap();
        assert!(
            inf.to_ascii_lowercase().contains(&format!("ntamd64.10.0...{build}")),
            "the INF has no models for {build}"
        );
    }

    #[test]
    fn inf2cat_makes_the_catalog_for_the_same_windows_as_ours() {
        assert_eq!(strings(inf2cat_args(Path::new("pkg"))), ["/driver:pkg", "/os:10_X64"]);
        assert_eq!(crate::package::OS_NAME, "_v100_X64", "inf2cat /os:10_X64 writes OS _v100_X64");
    }
}
