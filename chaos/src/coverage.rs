//! Which source lines of rawnic.sys the explorer runs (`--coverage`).
//!
//! A mode of the explorer can run clean and still test little: low
//! resources once made every bind fail, and no schedule ever gave the
//! driver a frame in more than one MDL. Line coverage shows such blind
//! spots. The schedules run in one worker under `valgrind --tool=callgrind`
//! with the image at a fixed base; every image address that ran is mapped
//! to its innermost source line (inlined code counts where it was written)
//! through the image's PDB with `llvm-symbolizer`, and each line that has
//! machine code is executed or not. A line of a rare branch may share its
//! instructions with others, so a line reported as never run is a place to
//! look, not a proof.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the worker loads the image, so that addresses mean the same in
/// every schedule of the run.
pub const IMAGE_BASE: u64 = 0x1_4000_0000;
/// Addresses past the base that can be the image's.
const IMAGE_SPAN: u64 = 16 << 20;

/// Lines of one source file: executed or not.
#[derive(Debug, Default, Clone)]
pub struct FileLines {
    pub ran: Vec<u32>,
    pub never: Vec<u32>,
}

/// Line coverage of the driver's own sources (`driver/src`, `logic/src`).
#[derive(Debug, Default)]
pub struct Report {
    pub files: BTreeMap<String, FileLines>,
}

impl Report {
    pub fn totals(&self) -> (usize, usize) {
        self.files.values().fold((0, 0), |(r, n), f| (r + f.ran.len(), n + f.never.len()))
    }

    /// A summary per file, then each line never run with its text.
    pub fn render(&self, root: &Path) -> String {
        let (ran, never) = self.totals();
        let pct = |r: usize, n: usize| if r + n == 0 { 100.0 } else { 100.0 * r as f64 / (r + n) as f64 };
        let mut s =
            format!("{ran} of {} driver source lines with code ran ({:.1} %)\n\n", ran + never, pct(ran, never));
        for (f, l) in &self.files {
            s.push_str(&format!(
                "{:>6.1} %  {:>4} of {:>4}  {f}\n",
                pct(l.ran.len(), l.never.len()),
                l.ran.len(),
                l.ran.len() + l.never.len()
            ));
        }
        s.push_str("\nLines never run:\n");
        for (f, l) in &self.files {
            let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for &n in &l.never {
                let src = lines.get(n as usize - 1).map_or("", |t| t.trim());
                s.push_str(&format!("{f}:{n}: {src}\n"));
            }
        }
        s
    }
}

/// The first of `names` that runs.
fn tool(names: &[&str]) -> Result<String, String> {
    for n in names {
        if Command::new(n).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
            return Ok(n.to_string());
        }
    }
    Err(format!("none of {names:?} found (cargo make setup installs llvm-19 and valgrind)"))
}

/// Runs `worker_args` (a `worker` command line, with `--image-base`) of
/// `exe` under callgrind, and returns the image addresses that ran.
pub fn run_worker(exe: &Path, worker_args: &[String], dir: &Path) -> Result<HashSet<u64>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join("callgrind.out");
    let status = Command::new(tool(&["valgrind"])?)
        .arg("--tool=callgrind")
        .arg("--dump-instr=yes")
        .arg("--dump-line=no")
        .arg("--compress-pos=no")
        .arg("--compress-strings=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--log-file={}", dir.join("valgrind.log").display()))
        .arg(exe)
        .args(worker_args)
        .stdout(std::fs::File::create(dir.join("worker.out")).map_err(|e| e.to_string())?)
        .status()
        .map_err(|e| format!("valgrind: {e}"))?;
    if !status.success() {
        return Err(format!("the worker under valgrind ended with {status}; see {}", dir.display()));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(executed(&text))
}

/// Image addresses with a cost in a callgrind dump written with
/// `--dump-instr=yes --dump-line=no --compress-pos=no` (the lines after a
/// `calls=` line are call costs, not executions of the call site).
fn executed(text: &str) -> HashSet<u64> {
    let mut hit = HashSet::new();
    let mut last = 0u64;
    let mut call = false;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(pos) = it.next() else { continue };
        let num = |t: &str| t.strip_prefix("0x").map_or_else(|| t.parse().ok(), |h| u64::from_str_radix(h, 16).ok());
        let addr = match pos.as_bytes()[0] {
            b'+' => num(&pos[1..]).map(|d| last.wrapping_add(d)),
            b'-' => num(&pos[1..]).map(|d| last.wrapping_sub(d)),
            b'*' => Some(last),
            b'0'..=b'9' => num(pos),
            _ => {
                call |= pos.starts_with("calls=");
                continue;
            }
        };
        let Some(a) = addr else { continue };
        last = a;
        let cost: u64 = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        if std::mem::take(&mut call) {
            continue;
        }
        if cost > 0 && (IMAGE_BASE..IMAGE_BASE + IMAGE_SPAN).contains(&a) {
            hit.insert(a);
        }
    }
    hit
}

/// Maps every instruction of `image`'s code to its innermost source line
/// (the PDB is looked for in `pdb_dir`) and sorts the driver's lines into
/// run and never run. `root` is the repository, whose paths are shown
/// relative to it.
pub fn report(image: &Path, pdb_dir: &Path, hit: &HashSet<u64>, root: &Path) -> Result<Report, String> {
    let objdump = tool(&["llvm-objdump-19", "llvm-objdump"])?;
    let dis = Command::new(objdump)
        .args(["-d", "--no-show-raw-insn", "--section=.text"])
        .arg(image)
        .output()
        .map_err(|e| format!("llvm-objdump: {e}"))?;
    let dis = String::from_utf8_lossy(&dis.stdout);
    let addrs: Vec<u64> = dis
        .lines()
        .filter_map(|l| {
            let (a, rest) = l.trim_start().split_once(':')?;
            (a.len() >= 9 && !rest.is_empty()).then(|| u64::from_str_radix(a, 16).ok()).flatten()
        })
        .collect();
    let image = std::fs::canonicalize(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut child = Command::new(tool(&["llvm-symbolizer-19", "llvm-symbolizer"])?)
        .arg(format!("--obj={}", image.display()))
        .current_dir(pdb_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("llvm-symbolizer: {e}"))?;
    let input: String = addrs.iter().map(|a| format!("{a:#x}\n")).collect();
    let mut stdin = child.stdin.take().expect("piped");
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("llvm-symbolizer: {e}"))?;
    let _ = feeder.join();
    let text = String::from_utf8_lossy(&out.stdout);
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let prefix = format!("{}/", root.display());
    // (file, line) -> ran
    let mut lines: BTreeMap<(String, u32), bool> = BTreeMap::new();
    for (a, block) in addrs.iter().zip(text.split("\n\n")) {
        let Some(loc) = block.lines().nth(1) else { continue };
        let mut parts = loc.rsplitn(3, ':');
        let (_col, line, file) = (parts.next(), parts.next(), parts.next());
        let (Some(line), Some(file)) = (line.and_then(|l| l.parse::<u32>().ok()), file) else { continue };
        let Some(rel) = repo_relative(file, &prefix) else { continue };
        if !(rel.starts_with("driver/src/") || rel.starts_with("logic/src/")) || line == 0 {
            continue;
        }
        *lines.entry((rel.to_string(), line)).or_default() |= hit.contains(a);
    }
    if lines.is_empty() {
        return Err(format!(
            "no line of driver/src or logic/src found in {}: is its PDB in {}?",
            image.display(),
            pdb_dir.display()
        ));
    }
    let mut r = Report::default();
    for ((f, n), ran) in lines {
        let e = r.files.entry(f).or_default();
        if ran { e.ran.push(n) } else { e.never.push(n) }
    }
    Ok(r)
}

/// The image with its PDB beside it that the kernel build leaves, for an
/// image given as `target/package/rawnic.sys` (signed: the same code).
/// Where xtask's `--remap-path-prefix` puts the checkout in the image's
/// debug information (`xtask/src/kernel.rs`).
const REMAPPED_ROOT: &str = "/rawnic/";

/// A source path of the image's debug information relative to the
/// repository: xtask builds the image with the checkout's path remapped to
/// `/rawnic` (`--remap-path-prefix`); an image built without it names the
/// checkout (`prefix`, ending in `/`).
fn repo_relative<'a>(file: &'a str, prefix: &str) -> Option<&'a str> {
    file.strip_prefix(REMAPPED_ROOT).or_else(|| file.strip_prefix(prefix))
}

pub fn pdb_dir_for(root: &Path) -> PathBuf {
    root.join("target/kernel/x86_64-pc-windows-msvc/release")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sums_per_file_and_quotes_each_line_never_run() {
        let root = std::env::temp_dir().join(format!("rawnic-coverage-{}", std::process::id()));
        std::fs::create_dir_all(root.join("driver/src")).unwrap();
        std::fs::write(root.join("driver/src/x.rs"), "fn a() {}\n    let b = 1;\nfn c() {}\n").unwrap();
        let mut r = Report::default();
        r.files.insert("driver/src/x.rs".into(), FileLines { ran: vec![1, 3], never: vec![2] });
        r.files.insert("logic/src/y.rs".into(), FileLines { ran: vec![5], never: vec![] });
        assert_eq!(r.totals(), (3, 1));
        let text = r.render(&root);
        assert!(text.starts_with("3 of 4 driver source lines with code ran (75.0 %)"), "{text}");
        assert!(text.contains("  66.7 %     2 of    3  driver/src/x.rs"), "{text}");
        assert!(text.contains("\ndriver/src/x.rs:2: let b = 1;\n"), "{text}");
        assert!(!text.contains("y.rs:"), "{text}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn source_paths_are_taken_remapped_or_under_the_checkout() {
        assert_eq!(repo_relative("/rawnic/driver/src/main.rs", "/work/x/"), Some("driver/src/main.rs"));
        assert_eq!(repo_relative("/work/x/logic/src/ring.rs", "/work/x/"), Some("logic/src/ring.rs"));
        assert_eq!(repo_relative("/usr/lib/rustlib/src/rust/library/core/src/lib.rs", "/work/x/"), None);
    }

    #[test]
    fn executed_addresses_skip_call_costs_and_follow_relative_positions() {
        let dump = "positions: instr\nevents: Ir\nfn=f\n0x140001000 3\n+4 1\ncalls=1 0x140002000\n+2 50\n+1 0\n-20 2\n0x500 7\n";
        let hit = executed(dump);
        let mut v: Vec<u64> = hit.into_iter().collect();
        v.sort();
        // 0x140001006 is a call's cost line; 0x140001007 has no cost.
        assert_eq!(v, [0x1_4000_0FF3, 0x1_4000_1000, 0x1_4000_1004]);
    }
}
