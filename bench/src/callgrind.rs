//! The instruction-count mode: the bench runs itself under
//! `valgrind --tool=callgrind`, collecting only inside
//! `rawnic_bench_measured` (one dump per measured region), and attributes
//! every instruction address to the rawnic.sys image or to the rest of the
//! process (ndisim, the harness, libc), and image addresses to the
//! driver's functions through the linker map.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The function whose calls are the measured regions.
pub const MARKER: &str = "rawnic_bench_measured";

/// Runs `f` as one measured region. Callgrind collects only while this
/// function is on the stack and dumps when it returns.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn rawnic_bench_measured(f: &mut dyn FnMut()) {
    f();
    std::hint::black_box(());
}

/// The driver's symbols, by RVA.
pub struct Symbols {
    syms: Vec<(usize, String)>,
}

/// A readable name for a map symbol: demangled, without the hash, and
/// without lld's decoration of weak definitions.
fn clean(name: &str) -> String {
    let name = match name.strip_prefix(".weak.") {
        Some(rest) => rest.split(".default").next().unwrap_or(rest),
        None => name,
    };
    format!("{:#}", rustc_demangle::demangle(name))
}

impl Symbols {
    pub fn load(map: &Path) -> Result<Symbols, String> {
        let text = std::fs::read_to_string(map).map_err(|e| format!("{}: {e}", map.display()))?;
        let mut syms: Vec<(usize, String)> =
            ndisim::pe::parse_map(&text).into_iter().map(|s| (s.rva, clean(&s.name))).collect();
        if syms.is_empty() {
            return Err(format!("{}: no symbols", map.display()));
        }
        syms.sort_by_key(|s| s.0);
        Ok(Symbols { syms })
    }

    /// The function containing `rva`.
    pub fn name(&self, rva: usize) -> &str {
        match self.syms.partition_point(|s| s.0 <= rva) {
            0 => "?",
            i => &self.syms[i - 1].1,
        }
    }
}

/// One callgrind dump: the self cost (Ir) of each instruction address.
#[derive(Default)]
pub struct Dump {
    pub part: u32,
    pub desc: String,
    pub total: u64,
    pub by_addr: HashMap<u64, u64>,
    /// Inclusive cost of calls, by (call site, callee's address).
    pub calls: HashMap<(u64, u64), u64>,
}

fn parse_pos(tok: &str, last: u64) -> Option<u64> {
    if tok == "*" {
        return Some(last);
    }
    let num = |t: &str| match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse::<u64>().ok(),
    };
    if let Some(r) = tok.strip_prefix('+') {
        return Some(last.wrapping_add(num(r)?));
    }
    if let Some(r) = tok.strip_prefix('-') {
        return Some(last.wrapping_sub(num(r)?));
    }
    num(tok)
}

/// Parses a dump written with `--dump-instr=yes --dump-line=no` (positions
/// are instruction addresses; one event, Ir).
pub fn parse_dump(text: &str) -> Result<Dump, String> {
    let mut d = Dump::default();
    let mut last = 0u64;
    // The callee of the call whose cost line comes next.
    let mut call_to: Option<u64> = None;
    let mut positions_ok = false;
    for line in text.lines() {
        let first = line.as_bytes().first().copied().unwrap_or(b'#');
        let is_cost = first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*';
        if !is_cost {
            if let Some(v) = line.strip_prefix("positions:") {
                if v.trim() != "instr" {
                    return Err(format!("positions are {:?}, not instr", v.trim()));
                }
                positions_ok = true;
            } else if let Some(v) = line.strip_prefix("events:") {
                if v.split_whitespace().next() != Some("Ir") {
                    return Err(format!("events are {:?}", v.trim()));
                }
            } else if let Some(v) = line.strip_prefix("part:") {
                d.part = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("desc:") {
                d.desc.push_str(v.trim());
                d.desc.push('\n');
            } else if let Some(v) = line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")) {
                d.total = d.total.max(v.trim().parse().unwrap_or(0));
            } else if let Some(v) = line.strip_prefix("calls=") {
                // The next cost line is the call's inclusive cost, at the
                // call site; the callee is the second field.
                call_to = Some(v.split_whitespace().nth(1).and_then(|t| parse_pos(t, 0)).unwrap_or(0));
            }
            continue;
        }
        let mut it = line.split_whitespace();
        let Some(pos) = it.next().and_then(|t| parse_pos(t, last)) else { continue };
        last = pos;
        let cost: u64 = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        if let Some(to) = call_to.take() {
            *d.calls.entry((pos, to)).or_insert(0) += cost;
            continue;
        }
        *d.by_addr.entry(pos).or_insert(0) += cost;
    }
    if !positions_ok {
        return Err("no `positions: instr` line (was --dump-instr=yes given?)".into());
    }
    Ok(d)
}

/// The cost of one region, split between the image and the rest.
pub struct RegionCost {
    pub total: u64,
    pub image: u64,
    /// Image cost by function, most expensive first.
    pub by_fn: Vec<(String, u64)>,
    /// Inclusive cost of calls from the image to the image, by (caller,
    /// callee) function.
    pub calls: HashMap<(String, String), u64>,
}

pub fn attribute(d: &Dump, base: u64, size: u64, syms: &Symbols) -> RegionCost {
    let mut image = 0;
    let mut by_fn: HashMap<String, u64> = HashMap::new();
    let mut counted = 0;
    for (&addr, &c) in &d.by_addr {
        counted += c;
        if addr >= base && addr < base + size {
            image += c;
            *by_fn.entry(syms.name((addr - base) as usize).to_string()).or_insert(0) += c;
        }
    }
    let mut by_fn: Vec<(String, u64)> = by_fn.into_iter().collect();
    by_fn.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let inside = |a: u64| a >= base && a < base + size;
    let mut calls: HashMap<(String, String), u64> = HashMap::new();
    for (&(from, to), &c) in &d.calls {
        if inside(from) && inside(to) {
            let key = (syms.name((from - base) as usize).to_string(), syms.name((to - base) as usize).to_string());
            *calls.entry(key).or_insert(0) += c;
        }
    }
    RegionCost { total: d.total.max(counted), image, by_fn, calls }
}

/// Runs this executable under callgrind with `args` (the inner mode) and
/// returns the dumps of the measured regions, in order.
pub fn run_under_valgrind(dir: &Path, args: &[String]) -> Result<Vec<Dump>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if e.file_name().to_string_lossy().starts_with("cg.out") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let out = dir.join("cg.out");
    let log = dir.join("valgrind.log");
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MARKER}"))
        .arg(format!("--dump-after={MARKER}"))
        .arg("--dump-instr=yes")
        .arg("--dump-line=no")
        .arg("--compress-pos=no")
        .arg("--compress-strings=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--log-file={}", log.display()))
        .arg(&exe)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run valgrind (apt-get install valgrind): {e}"))?;
    if !status.success() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(20).collect();
        return Err(format!(
            "valgrind exited with {status}; {}:\n{}",
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let mut dumps = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("cg.out") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).map_err(|x| format!("{name}: {x}"))?;
        let d = parse_dump(&text).map_err(|x| format!("{name}: {x}"))?;
        if d.desc.contains(MARKER) {
            dumps.push(d);
        }
    }
    dumps.sort_by_key(|d| d.part);
    Ok(dumps)
}

/// Where the callgrind files of a run go.
pub fn out_dir(root: &Path) -> PathBuf {
    root.join("target/bench/callgrind")
}
