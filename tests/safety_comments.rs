//! Every `unsafe` block, impl and function body in the project's own code
//! carries a `// SAFETY:` comment (the kernel image is built by a compiler
//! that has no clippy, so `clippy::undocumented_unsafe_blocks` cannot check
//! it), and the driver logic has no `unsafe` at all.

use rawnic_tests::root;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines with an `unsafe` block or impl (not `unsafe fn` declarations,
/// whose callers need the comment, nor `unsafe extern` blocks of
/// declarations), outside comments and strings.
fn unsafe_sites(text: &str) -> Vec<usize> {
    let mut v = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if code.contains('"') {
            continue;
        }
        let t = code.trim_start();
        if t.starts_with("unsafe extern")
            || t.starts_with("pub unsafe extern")
            || t.starts_with("pub(crate) unsafe extern")
        {
            continue;
        }
        if code.contains("unsafe {") || code.contains("unsafe impl") {
            v.push(i);
        }
    }
    v
}

#[test]
fn every_unsafe_has_a_safety_comment() {
    let mut files = Vec::new();
    for d in [
        "driver",
        "ndisim/src",
        "ndis-sys/src",
        "client/src",
        "ctl/src",
        "proto/src",
        "logic/src",
        "xtask/src",
        "tests",
    ] {
        let p = root().join(d);
        if p.exists() {
            rust_files(&p, &mut files);
        }
    }
    assert!(files.len() > 40, "found only {} files", files.len());
    let mut missing = Vec::new();
    let mut sites = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for i in unsafe_sites(&text) {
            sites += 1;
            // The comment is on the line, or in the comment lines (and
            // attribute or statement-opening lines) just above.
            let mut ok = lines[i].contains("SAFETY:");
            let mut j = i;
            while !ok && j > 0 && i - j < 12 {
                j -= 1;
                let l = lines[j].trim();
                if l.contains("SAFETY:") {
                    ok = true;
                } else if !(l.starts_with("//")
                    || l.starts_with("#[")
                    || l.ends_with('(')
                    || l.ends_with('{')
                    || l.ends_with(',')
                    || l.ends_with('=')
                    || l.ends_with("||"))
                {
                    break;
                }
            }
            if !ok {
                missing.push(format!("{}:{}: {}", f.strip_prefix(root()).unwrap().display(), i + 1, lines[i].trim()));
            }
        }
    }
    assert!(sites > 100, "found only {sites} unsafe sites");
    assert!(missing.is_empty(), "unsafe without a SAFETY comment:\n{}", missing.join("\n"));
}

#[test]
fn the_driver_logic_has_no_unsafe() {
    let mut files = Vec::new();
    rust_files(&root().join("driver/src/rawnic"), &mut files);
    rust_files(&root().join("logic/src"), &mut files);
    assert!(files.len() >= 8);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").replace("unsafe_code", "");
            assert!(!code.contains("unsafe"), "{}:{}: {line}", f.display(), i + 1);
        }
    }
    // And the compiler enforces it.
    let main = std::fs::read_to_string(root().join("driver/src/main.rs")).unwrap();
    assert!(main.contains("#[forbid(unsafe_code)]\nmod rawnic;"));
    let logic = std::fs::read_to_string(root().join("logic/src/lib.rs")).unwrap();
    assert!(logic.contains("#![forbid(unsafe_code)]"));
}
