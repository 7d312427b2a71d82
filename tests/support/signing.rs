//! Running osslsigncode on the package, and a scratch directory for files
//! the tests change.

use std::path::{Path, PathBuf};
use std::process::Command;

/// osslsigncode, or a panic that says how to install it.
pub fn osslsigncode() -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("osslsigncode")).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!("osslsigncode was not found: install it with `cargo make setup` (Debian package osslsigncode)")
    })
}

/// Runs `osslsigncode verify` with `args`; returns whether it succeeded and
/// everything it printed.
pub fn verify(args: &[&Path]) -> (bool, String) {
    let out = Command::new(osslsigncode()).arg("verify").args(args).output().expect("osslsigncode runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// PEM text of a DER certificate (what osslsigncode's -CAfile reads).
pub fn pem_certificate(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A fresh directory under `target/` for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = crate::root().join("target/test-scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
