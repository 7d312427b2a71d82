//! The same image from any checkout: crate metadata that does not depend
//! on where the sources lie.
//!
//! Cargo gives every crate a `-C metadata` hash, which goes into every
//! symbol's hash and so steers LLVM's choices (the order functions are
//! laid out and inlined in). For a path dependency outside the workspace's
//! root (the kernel workspace is `driver/`; `logic`, `proto` and
//! `ndis-sys` lie beside it) cargo hashes the absolute path, so the same
//! commit built in two checkouts gave images whose code differed (some
//! 168 KB of `.text`, and a couple of instructions a frame in the
//! benchmarks).
//!
//! The kernel build runs rustc through a wrapper (this program itself:
//! `RUSTC_WRAPPER` is the running executable with [`WRAPPER_VAR`] set to
//! the checkout's root) that replaces cargo's `-C metadata` with a hash of
//! the rest of the command line, with the checkout's root written as
//! `/rawnic`, the hashes in dependencies' file names left out, and the
//! linker's path left out. Everything that made cargo's hash differ between
//! two builds of the same sources is still in it (crate name, source file,
//! edition, cfgs and features, codegen options, dependencies by name) but
//! the checkout's place. With `--remap-path-prefix` (the panic locations),
//! two checkouts of a commit give images with the same bytes but for the
//! three fields a link writes afresh each time: the header's time stamp, its
//! checksum, and the debug directory's time stamps and PDB id (the PDB
//! records the build's paths and a temporary file of rustc's):
//! `tests/reproducible.rs`.

use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::process::{Command, ExitCode};

/// Set (to the checkout's root) in the kernel build's environment, where
/// `RUSTC_WRAPPER` is the running executable: the executable then runs as
/// the wrapper ([`wrap_rustc_if_asked`]).
pub const WRAPPER_VAR: &str = "RAWNIC_STABLE_METADATA_ROOT";

/// What the checkout's root is written as in the hashed command line (as in
/// `--remap-path-prefix`).
const ROOT_AS: &str = "/rawnic";

/// The environment that makes this executable the kernel build's rustc
/// wrapper for the checkout at `root`: (`RUSTC_WRAPPER`, the executable),
/// (`WRAPPER_VAR`, root). `None` when the executable cannot be found (the
/// build then goes without, as before).
pub fn wrapper_env(root: &std::path::Path) -> Option<[(&'static str, OsString); 2]> {
    let exe = std::env::current_exe().ok()?;
    Some([("RUSTC_WRAPPER", exe.into_os_string()), (WRAPPER_VAR, root.as_os_str().to_owned())])
}

/// If cargo started this process as the kernel build's rustc wrapper
/// (`WRAPPER_VAR` set, and the first argument the compiler), runs the
/// compiler with stable metadata and returns its exit code; otherwise
/// `None`, and the caller goes on as itself. Called first thing by xtask's
/// `main` and by the root build script (either may be the wrapper).
pub fn wrap_rustc_if_asked() -> Option<ExitCode> {
    let root = std::env::var(WRAPPER_VAR).ok()?;
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    let args: Vec<OsString> = args.collect();
    let args = with_stable_metadata(&args, &root);
    let code = match Command::new(&rustc).args(&args).status() {
        Ok(s) => s.code().unwrap_or(101),
        Err(e) => {
            eprintln!("error: cannot run {}: {e}", rustc.to_string_lossy());
            101
        }
    };
    Some(ExitCode::from(u8::try_from(code).unwrap_or(101)))
}

/// `args` (rustc's, without the program) with the value of `-C metadata`
/// replaced by [`stable_metadata`]'s; unchanged when there is none (version
/// queries, `--print`).
pub fn with_stable_metadata(args: &[OsString], root: &str) -> Vec<OsString> {
    let Some(i) = metadata_index(args) else { return args.to_vec() };
    let stable = stable_metadata(args, root);
    let mut out = args.to_vec();
    out[i] = if out[i].to_string_lossy().starts_with("-C") {
        OsString::from(format!("-Cmetadata={stable}"))
    } else {
        OsString::from(format!("metadata={stable}"))
    };
    out
}

/// Where the metadata's value is: the argument after a lone `-C`, or one
/// `-Cmetadata=...`.
fn metadata_index(args: &[OsString]) -> Option<usize> {
    args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_string_lossy();
        if a.starts_with("-Cmetadata=") {
            return Some(i);
        }
        (a.starts_with("metadata=") && i > 0 && args[i - 1] == "-C").then_some(i)
    })
}

/// A hash (16 hex digits, as cargo writes its own) of `args` as they would
/// be in a checkout at `/rawnic`: every codegen option but the metadata,
/// the extra file name and the linker, each argument with `root` written as
/// `/rawnic` and with the hashes cargo puts in dependencies' file names
/// taken out.
pub fn stable_metadata(args: &[OsString], root: &str) -> String {
    let mut h = Sha256::new();
    let mut skip_next = false;
    for (i, a) in args.iter().enumerate() {
        if skip_next {
            skip_next = false;
            continue;
        }
        let a = a.to_string_lossy();
        let value = if a == "-C" { args.get(i + 1).map(|v| v.to_string_lossy()) } else { None };
        let option = value.as_deref().unwrap_or(a.strip_prefix("-C").unwrap_or(&a));
        if ["metadata=", "extra-filename=", "linker="].iter().any(|p| option.starts_with(p)) {
            skip_next = value.is_some();
            continue;
        }
        let normal = without_file_hashes(&a.replace(root, ROOT_AS));
        h.update((normal.len() as u64).to_le_bytes());
        h.update(normal.as_bytes());
    }
    let digest = h.finalize();
    format!("{:016x}", u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 8 bytes")))
}

/// `s` without cargo's `-<16 hex digits>` before a `.rlib`, `.rmeta`,
/// `.so`, `.dll` or `.d` (the hash in a dependency's file name, which
/// depends on where the checkout lies).
fn without_file_hashes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let hashed = b[i] == b'-'
            && b.len() >= i + 18
            && b[i + 1..i + 17].iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            && b[i + 17] == b'.'
            && [".rlib", ".rmeta", ".so", ".dll", ".d"].iter().any(|e| s[i + 17..].starts_with(e));
        if hashed {
            i += 17;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn args(root: &str, meta: &str, dep_hash: &str) -> Vec<OsString> {
        os(&[
            "--crate-name",
            "rawnic_logic",
            "--edition=2024",
            &format!("{root}/logic/src/lib.rs"),
            "-C",
            "opt-level=3",
            "-C",
            &format!("metadata={meta}"),
            "-C",
            &format!("extra-filename=-{meta}"),
            "--out-dir",
            &format!("{root}/target/kernel/x86_64-pc-windows-msvc/release/deps"),
            "-C",
            "linker=/usr/bin/lld-link-19",
            "--extern",
            &format!(
                "rawnic_proto={root}/target/kernel/x86_64-pc-windows-msvc/release/deps/librawnic_proto-{dep_hash}.rmeta"
            ),
            &format!("--remap-path-prefix={root}=/rawnic"),
        ])
    }

    #[test]
    fn two_checkouts_get_one_metadata() {
        let a = args("/work/main", "b05200435ab2c6c7", "22a875493d89a8a9");
        let b = args("/home/me/src/rawnic", "06dc4a97a6530a1a", "95924a33c1709524");
        let ma = with_stable_metadata(&a, "/work/main");
        let mb = with_stable_metadata(&b, "/home/me/src/rawnic");
        assert_eq!(ma[7], mb[7]);
        assert_ne!(ma[7], a[7]);
        assert!(ma[7].to_string_lossy().starts_with("metadata="));
        // Only the metadata changed.
        for (i, (x, y)) in a.iter().zip(&ma).enumerate() {
            assert!(i == 7 || x == y, "argument {i} changed");
        }
    }

    #[test]
    fn what_cargo_hashes_still_counts() {
        let root = "/work/main";
        let base = stable_metadata(&args(root, "b05200435ab2c6c7", "22a875493d89a8a9"), root);
        let mut other = args(root, "b05200435ab2c6c7", "22a875493d89a8a9");
        other[5] = OsString::from("opt-level=2");
        assert_ne!(stable_metadata(&other, root), base);
        let mut renamed = args(root, "b05200435ab2c6c7", "22a875493d89a8a9");
        renamed[1] = OsString::from("rawnic_proto");
        assert_ne!(stable_metadata(&renamed, root), base);
        assert_eq!(base.len(), 16);
    }

    #[test]
    fn queries_pass_untouched() {
        let v = os(&["-vV"]);
        assert_eq!(with_stable_metadata(&v, "/work/main"), v);
        let joined = os(&["--crate-name", "x", "-Cmetadata=0123456789abcdef"]);
        let out = with_stable_metadata(&joined, "/r");
        assert!(out[2].to_string_lossy().starts_with("-Cmetadata="));
        assert_ne!(out[2], joined[2]);
    }

    #[test]
    fn file_hashes_go() {
        assert_eq!(without_file_hashes("/t/libcore-d2a46f546289b0bd.rmeta"), "/t/libcore.rmeta");
        assert_eq!(without_file_hashes("a-d2a46f546289b0bd.rlib,b"), "a.rlib,b");
        // Not a cargo hash: kept.
        assert_eq!(without_file_hashes("x-D2A46F546289B0BD.rlib"), "x-D2A46F546289B0BD.rlib");
        assert_eq!(without_file_hashes("x-d2a46f546289b0bd.txt"), "x-d2a46f546289b0bd.txt");
        assert_eq!(without_file_hashes("é-ü"), "é-ü");
    }
}
