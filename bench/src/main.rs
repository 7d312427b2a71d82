//! `cargo make bench`: the real rawnic.sys in ndisim on a `null` adapter
//! (sends complete at once, nothing comes back), measuring
//!
//! - (a) one WriteFile per frame (NDISPROT style),
//! - (b) N frames per `IOCTL_RAWNIC_SEND_BATCH`, N = 1, 16, 64, 256,
//! - (c) frames indicated by the miniport (`Sim::inject`), drained by
//!   ReadFile with a large buffer,
//! - (d) the same indications received into a UMEM's rings (RING_ATTACH):
//!   the user takes the rx ring and refills the fill ring,
//! - (e) zero-copy sends from the UMEM: N tx descriptors, one RING_KICK,
//!   N completions taken, N = 64, 256,
//!
//! for 64- and 1514-byte frames: frames per second, ns per frame, the ratio
//! to (a), and the pool and NBL figures of each run. `--callgrind` runs the
//! same paths under callgrind and reports the instructions executed inside
//! the rawnic.sys image per frame, apart from those of ndisim, with the
//! driver's three most expensive functions per path. `--quick` runs fewer
//! frames.

mod callgrind;
mod paths;

use paths::{Kind, Rig, SIZES, all_kinds};
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "usage: rawnic-bench [--quick] [--callgrind] [--driver FILE] [--map FILE]
                    [--frames N] [--reps N] [--only PATH,...] [--size 64|1514]

  (default)    wall time: frames/s, ns/frame, ratio to the per-frame path,
               pool and NBL figures per run
  --callgrind  instruction counts under valgrind's callgrind: inside the
               rawnic.sys image per frame, apart from ndisim; top (--top) driver
               functions per path
  --quick      fewer frames (all paths still measured)
  --top N      driver functions listed per path under --callgrind (default 3)
  --frames N   frames per measured window (default: per path)
  --reps N     measured windows per path, best one reported (default 3)
  --only       paths: write, batch1, batch16, batch64, batch256, recv,
               ringrecv, ringsend64, ringsend256 (ringsendN: N <= 1024)
  --driver     rawnic.sys (default: target/package/rawnic.sys)
  --map        its lld-link map (default: beside it, or target/kernel/images)";

/// Where the callgrind mode maps the image: its preferred base, so image
/// addresses are the map's addresses and runs are repeatable.
const FIXED_BASE: usize = 0x1_4000_0000;

struct Opts {
    quick: bool,
    callgrind: bool,
    inner: Option<PathBuf>,
    driver: PathBuf,
    map: Option<PathBuf>,
    frames: Option<usize>,
    reps: usize,
    kinds: Vec<Kind>,
    sizes: Vec<usize>,
    top: usize,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is in the workspace").to_path_buf()
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        quick: false,
        callgrind: false,
        inner: None,
        driver: std::env::var_os("RAWNIC_SYS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/package/rawnic.sys")),
        map: None,
        frames: None,
        reps: 3,
        kinds: all_kinds(),
        sizes: SIZES.to_vec(),
        top: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => o.quick = true,
            "--callgrind" => o.callgrind = true,
            "--inner-callgrind" => o.inner = Some(PathBuf::from(val(&a)?)),
            "--driver" => o.driver = PathBuf::from(val(&a)?),
            "--map" => o.map = Some(PathBuf::from(val(&a)?)),
            "--frames" => o.frames = Some(val(&a)?.parse().map_err(|_| "--frames: a number")?),
            "--reps" => o.reps = val(&a)?.parse::<usize>().map_err(|_| "--reps: a number")?.max(1),
            "--only" => {
                o.kinds = val(&a)?
                    .split(',')
                    .map(|s| Kind::parse(s.trim()).ok_or(format!("--only: unknown path {s:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--top" => o.top = val(&a)?.parse().map_err(|_| "--top: a number")?,
            "--size" => o.sizes = vec![val(&a)?.parse().map_err(|_| "--size: a number")?],
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // cargo-make passes an empty `${@}` through as nothing; ignore
            // a stray `--`.
            "--" | "" => {}
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if !o.driver.is_file() {
        return Err(format!("{} is missing: run `cargo make package` (or give --driver)", o.driver.display()));
    }
    Ok(o)
}

/// Frames per measured window of a wall-time run.
fn window(o: &Opts, k: Kind, size: usize) -> usize {
    if let Some(f) = o.frames {
        return f;
    }
    let base = match k {
        Kind::Write | Kind::Batch(1) => 500_000,
        Kind::Batch(_) | Kind::RingSend(_) => 4_000_000,
        Kind::Recv | Kind::RingRecv => 2_000_000,
    };
    let base = if size > 1000 { base / 2 } else { base };
    if o.quick { base / 10 } else { base }
}

/// Frames per measured region under callgrind (the counts are per frame;
/// more frames only dilute the per-call setup).
fn cg_window(o: &Opts) -> usize {
    o.frames.unwrap_or(if o.quick { 1024 } else { 8192 })
}

struct Wall {
    kind: Kind,
    size: usize,
    /// Frames of the best window.
    frames: usize,
    /// Best ns per frame.
    ns: f64,
    /// Pool allocations and frees during all measured windows.
    allocs: u64,
    frees: u64,
    window_frames: usize,
    peak_pool: usize,
    nbl_peak: u64,
    recv_held_peak: u64,
    findings: Option<String>,
}

fn run_wall(o: &Opts) -> Result<Vec<Wall>, String> {
    let mut out = Vec::new();
    for &size in &o.sizes {
        for &kind in &o.kinds {
            let mut rig = Rig::new(&o.driver, None, kind, size)?;
            let frames = window(o, kind, size);
            // Warm up: the send pool, the receive ring, the allocator.
            rig.run((frames / 10).max(rig.unit() * 8))?;
            let p0 = rig.pool();
            let mut best = f64::INFINITY;
            let mut done = 0;
            let mut total = 0;
            for _ in 0..o.reps {
                let t = Instant::now();
                let n = rig.run(frames)?;
                let ns = t.elapsed().as_nanos() as f64 / n as f64;
                total += n;
                if ns < best {
                    best = ns;
                    done = n;
                }
            }
            let p1 = rig.pool();
            let nbls = rig.nbls();
            let (report, findings) = rig.finish();
            let w = Wall {
                kind,
                size,
                frames: done,
                ns: best,
                allocs: p1.allocations - p0.allocations,
                frees: p1.frees - p0.frees,
                window_frames: total,
                peak_pool: report.pool.peak_bytes,
                nbl_peak: nbls.in_flight_peak,
                recv_held_peak: nbls.receives_held_peak,
                findings,
            };
            eprintln!("  {:>4} B {:<26} {:>9.1} ns/frame", size, kind.label(), w.ns);
            out.push(w);
        }
    }
    Ok(out)
}

/// What copying each frame's bytes twice costs alone, per frame: the
/// IOCTL's input into a system buffer (the I/O manager's copy) and each
/// frame from there into its own send buffer (the driver's), for batches of
/// 64 frames, with plain `copy_from_slice`. The floor under (b)'s time per
/// frame that no driver change removes.
fn copy_floor(size: usize) -> f64 {
    let rec = (8 + size + 7) & !7;
    let n = 64;
    let src = vec![0x5au8; 16 + n * rec];
    let mut sys = vec![0u8; src.len()];
    let slot = (size + 18 + 63) & !63;
    let mut slots = vec![0u8; n * slot];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let rounds = 2000;
        let t = Instant::now();
        for _ in 0..rounds {
            sys.copy_from_slice(std::hint::black_box(&src));
            for i in 0..n {
                let at = 16 + i * rec + 8;
                slots[i * slot..i * slot + size].copy_from_slice(&sys[at..at + size]);
            }
            std::hint::black_box(&mut slots);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / (rounds * n) as f64);
    }
    best
}

/// What copying each received frame's bytes once costs alone, per frame:
/// from a receive buffer (one per frame, 2 KiB apart, as a NIC's) into a
/// UMEM frame (2 KiB apart), for a round of `RECV_ROUND` frames, with plain
/// `copy_from_slice`. The floor under (d)'s time per frame: the one copy
/// the ring receive path makes.
fn ring_copy_floor(size: usize) -> f64 {
    let stride = paths::RING_FRAME as usize;
    let n = paths::RECV_ROUND;
    let mut src = vec![0x5au8; n * stride];
    for (i, c) in src.chunks_mut(stride).enumerate() {
        c[0] = i as u8;
    }
    let mut umem = vec![0u8; n * stride];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let rounds = 50;
        let t = Instant::now();
        for _ in 0..rounds {
            let src = std::hint::black_box(&src);
            for i in 0..n {
                umem[i * stride..i * stride + size].copy_from_slice(&src[i * stride..i * stride + size]);
            }
            std::hint::black_box(&mut umem);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / (rounds * n) as f64);
    }
    best
}

fn fmt_rate(fps: f64) -> String {
    if fps >= 1e6 { format!("{:.2} M", fps / 1e6) } else { format!("{:.0} k", fps / 1e3) }
}

fn print_wall(r: &[Wall]) {
    println!("### Wall time (best of the measured windows)\n");
    println!(
        "| path | frame | frames | ns/frame | frames/s | vs (a) | pool allocs in window (per frame) | peak pool bytes | peak send NBLs in flight | peak receive NBLs held |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for w in r {
        let base = r.iter().find(|x| x.size == w.size && x.kind == Kind::Write).map(|x| x.ns);
        let ratio = base.map_or("-".to_string(), |b| format!("{:.1}x", b / w.ns));
        println!(
            "| {} | {} B | {} | {:.1} | {} | {} | {} ({:.4}) | {} | {} | {} |",
            w.kind.label(),
            w.size,
            w.frames,
            w.ns,
            fmt_rate(1e9 / w.ns),
            ratio,
            w.allocs,
            w.allocs as f64 / w.window_frames as f64,
            w.peak_pool,
            w.nbl_peak,
            w.recv_held_peak,
        );
    }
    println!();
    for w in r {
        if w.allocs != w.frees {
            println!(
                "note: {} {} B: {} allocations but {} frees in the window",
                w.kind.label(),
                w.size,
                w.allocs,
                w.frees
            );
        }
        if let Some(f) = &w.findings {
            println!("VERIFIER FINDINGS in {} {} B:\n{f}", w.kind.label(), w.size);
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}, {date}", kernel.trim())
}

// ---------------------------------------------------------------------------
// Callgrind
// ---------------------------------------------------------------------------

/// Under valgrind: each path once, inside the marker; a manifest of the
/// regions for the outer process.
fn inner_callgrind(o: &Opts, dir: &Path) -> Result<(), String> {
    let mut manifest = String::new();
    let frames = cg_window(o);
    for &size in &o.sizes {
        for &kind in &o.kinds {
            let mut rig = Rig::new(&o.driver, Some(FIXED_BASE), kind, size)?;
            rig.run(rig.unit() * 8)?;
            let p0 = rig.pool();
            let mut result = Ok(0);
            callgrind::rawnic_bench_measured(&mut || result = rig.run(frames));
            let n = result?;
            let p1 = rig.pool();
            let (base, isize) = (rig.sim.image_base(), rig.sim.image_size());
            let (_, findings) = rig.finish();
            if let Some(f) = findings {
                return Err(format!("verifier findings in {} {size} B:\n{f}", kind.label()));
            }
            manifest.push_str(&format!(
                "{}\t{size}\t{n}\t{base:#x}\t{isize:#x}\t{}\n",
                kind.short(),
                p1.allocations - p0.allocations
            ));
        }
    }
    std::fs::write(dir.join("regions.tsv"), manifest).map_err(|e| e.to_string())
}

struct Cg {
    kind: Kind,
    size: usize,
    frames: usize,
    image: u64,
    outside: u64,
    completion: u64,
    copies: u64,
    /// Ring receive: the copy of each frame into the UMEM (the memcpy
    /// calls made where frames are placed: `into_rings`, the one-pass
    /// path inlined into `receive_net_buffer_lists`, or its batches
    /// (`RxPlacer::place_batch`); inclusive).
    frame_copy: u64,
    allocs: u64,
    top: Vec<(String, u64)>,
}

fn short_name(n: &str) -> String {
    n.replace("rawnic::", "")
}

fn run_callgrind(o: &Opts) -> Result<Vec<Cg>, String> {
    let map = o
        .map
        .clone()
        .or_else(|| Some(o.driver.with_extension("map")).filter(|p| p.is_file()))
        .unwrap_or_else(|| root().join("target/kernel/images/rawnic.map"));
    let syms = callgrind::Symbols::load(&map)?;
    let dir = callgrind::out_dir(&root());
    let mut args = vec![
        "--inner-callgrind".to_string(),
        dir.display().to_string(),
        "--driver".into(),
        o.driver.display().to_string(),
    ];
    if o.quick {
        args.push("--quick".into());
    }
    if let Some(f) = o.frames {
        args.extend(["--frames".into(), f.to_string()]);
    }
    args.extend(["--only".into(), o.kinds.iter().map(|k| k.short()).collect::<Vec<_>>().join(",")]);
    if o.sizes.len() == 1 {
        args.extend(["--size".into(), o.sizes[0].to_string()]);
    }
    eprintln!("running the paths under callgrind (files in {})", dir.display());
    let dumps = callgrind::run_under_valgrind(&dir, &args)?;
    let manifest = std::fs::read_to_string(dir.join("regions.tsv")).map_err(|e| format!("regions.tsv: {e}"))?;
    let rows: Vec<Vec<&str>> = manifest.lines().map(|l| l.split('\t').collect()).collect();
    if rows.len() != dumps.len() {
        return Err(format!("{} regions but {} callgrind dumps", rows.len(), dumps.len()));
    }
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0);
    let mut out = Vec::new();
    for (row, d) in rows.iter().zip(&dumps) {
        let kind = Kind::parse(row[0]).ok_or("bad manifest")?;
        let size: usize = row[1].parse().map_err(|_| "bad manifest")?;
        let frames: usize = row[2].parse().map_err(|_| "bad manifest")?;
        let c = callgrind::attribute(d, hex(row[3]), hex(row[4]), &syms);
        // The completion handler, and for zero-copy sends the rings' share
        // of it (frames onto the completion ring).
        let completion = c
            .by_fn
            .iter()
            .filter(|(n, _)| n.contains("send_net_buffer_lists_complete") || n.contains("ring_send_complete_inner"))
            .map(|x| x.1)
            .sum();
        let frame_copy = c
            .calls
            .iter()
            .filter(|((from, to), _)| {
                (from.contains("into_rings")
                    || from.contains("receive_net_buffer_lists")
                    || from.contains("place_batch"))
                    && to == "memcpy"
            })
            .map(|x| x.1)
            .sum();
        let copies =
            c.by_fn.iter().filter(|(n, _)| matches!(n.as_str(), "memcpy" | "memset" | "memmove")).map(|x| x.1).sum();
        out.push(Cg {
            kind,
            size,
            frames,
            image: c.image,
            outside: c.total - c.image,
            completion,
            copies,
            frame_copy,
            allocs: row[5].parse().unwrap_or(0),
            top: c.by_fn.into_iter().take(o.top).collect(),
        });
    }
    Ok(out)
}

fn print_callgrind(r: &[Cg]) {
    println!("### Instructions per frame (callgrind, Ir)\n");
    println!(
        "| path | frame | frames | driver (rawnic.sys) | of which send completion | of which memcpy/memset | outside the image (ndisim, harness) | pool allocs in region | top driver functions (Ir/frame) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for c in r {
        let f = c.frames as f64;
        let top: Vec<String> = c.top.iter().map(|(n, v)| format!("`{}` {:.0}", short_name(n), *v as f64 / f)).collect();
        let compl = if matches!(c.kind, Kind::Recv | Kind::RingRecv) {
            "-".to_string()
        } else {
            format!("{:.0}", c.completion as f64 / f)
        };
        println!(
            "| {} | {} B | {} | {:.0} | {} | {:.0} | {:.0} | {} | {} |",
            c.kind.label(),
            c.size,
            c.frames,
            c.image as f64 / f,
            compl,
            c.copies as f64 / f,
            c.outside as f64 / f,
            c.allocs,
            top.join("; ")
        );
    }
    println!();
    println!(
        "Callgrind counts each byte a `rep movsb`/`rep stosb` moves as one instruction: the driver's memcpy and memset are one such instruction each, so their column is about the bytes copied (plus a few per call), not their time.\n"
    );
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rawnic-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Some(dir) = &o.inner {
        if let Err(e) = inner_callgrind(&o, dir) {
            eprintln!("rawnic-bench (under callgrind): {e}");
            std::process::exit(1);
        }
        return;
    }
    println!("## rawnic bench: {}\n", if o.callgrind { "instruction counts" } else { "wall time" });
    println!("- driver: {}", o.driver.display());
    println!("- machine: {}", machine());
    println!(
        "- ndisim `null` adapter (sends complete at once inside NdisSendNetBufferLists), checksums off; receive: {} frames per round, {} NBLs of one frame per indication, ReadFile buffer {} KiB{}\n",
        paths::RECV_ROUND,
        paths::NBLS_PER_INDICATION,
        paths::READ_BUFFER / 1024,
        if o.quick { "; --quick" } else { "" }
    );
    println!(
        "- rings: {} B frames. (d): the same indications; a UMEM of {} frames, fill and rx rings of {}; before a round every frame is on the fill ring; after it the user takes each rx descriptor, reads the frame's first 8 bytes and posts the frame back on the fill ring (indices published once per round). (e): N frames written into the UMEM once, before the run; per kick the user posts N tx descriptors, issues one RING_KICK and takes the N completions\n",
        paths::RING_FRAME,
        paths::RECV_ROUND,
        paths::RECV_ROUND
    );
    let t = Instant::now();
    let res = if o.callgrind {
        run_callgrind(&o).map(|r| {
            print_callgrind(&r);
            targets_cg(&r);
        })
    } else {
        run_wall(&o).map(|r| {
            print_wall(&r);
            targets_wall(&r);
        })
    };
    if let Err(e) = res {
        eprintln!("rawnic-bench: {e}");
        std::process::exit(1);
    }
    eprintln!("done in {:.1} s", t.elapsed().as_secs_f64());
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn targets_wall(r: &[Wall]) {
    println!("### Targets (wall time and pool)\n");
    for &size in &SIZES {
        let get = |k: Kind| r.iter().find(|w| w.size == size && w.kind == k);
        if let (Some(a), Some(b)) = (get(Kind::Write), get(Kind::Batch(64))) {
            let x = a.ns / b.ns;
            let floor = copy_floor(size);
            println!(
                "- {size} B: batched send N=64 is {x:.1}x the per-frame path (target >= 10x): {} ({:.1} vs {:.1} ns per frame; copying each frame's bytes twice, as the I/O manager and the driver must, takes {floor:.1} ns alone)",
                verdict(x >= 10.0),
                b.ns,
                a.ns,
            );
        }
        for n in [1, 16, 64, 256] {
            if let Some(b) = get(Kind::Batch(n)) {
                if n == 64 || b.allocs != 0 {
                    println!(
                        "- {size} B: pool allocations in the steady state of SEND_BATCH N={n}: {} over {} frames: {}",
                        b.allocs,
                        b.window_frames,
                        verdict(b.allocs == 0)
                    );
                }
            }
        }
        if let Some(c) = get(Kind::Recv) {
            println!(
                "- {size} B: pool allocations while receiving: {} over {} frames: {}",
                c.allocs,
                c.window_frames,
                verdict(c.allocs == 0)
            );
        }
        if let (Some(c), Some(d)) = (get(Kind::Recv), get(Kind::RingRecv)) {
            let x = c.ns / d.ns;
            let want = if size <= 64 { 4.0 } else { 2.0 };
            println!(
                "- {size} B: ring receive is {x:.1}x receive + ReadFile (target >= {want:.0}x): {} ({:.1} vs {:.1} ns per frame; copying each frame's bytes once, as the driver must, takes {:.1} ns alone)",
                verdict(x >= want),
                d.ns,
                c.ns,
                ring_copy_floor(size),
            );
        }
        if let Some(d) = get(Kind::RingRecv) {
            println!(
                "- {size} B: pool allocations in the steady state of ring receive: {} over {} frames: {}",
                d.allocs,
                d.window_frames,
                verdict(d.allocs == 0)
            );
        }
        for n in [64, 256] {
            let Some(e) = get(Kind::RingSend(n)) else { continue };
            if let (Some(a), true) = (get(Kind::Write), size == 1514) {
                let x = a.ns / e.ns;
                println!(
                    "- {size} B: zero-copy ring send N={n} is {x:.1}x the per-frame path (target >= 25x): {} ({:.1} vs {:.1} ns per frame)",
                    verdict(x >= 25.0),
                    e.ns,
                    a.ns,
                );
            }
            println!(
                "- {size} B: pool allocations in the steady state of ring send N={n}: {} over {} frames: {}",
                e.allocs,
                e.window_frames,
                verdict(e.allocs == 0)
            );
        }
    }
    println!();
}

fn targets_cg(r: &[Cg]) {
    println!("### Targets (instructions)\n");
    if let Some(c) = r.iter().find(|c| c.size == 64 && c.kind == Kind::Batch(64)) {
        let per = c.image as f64 / c.frames as f64;
        let compl = c.completion as f64 / c.frames as f64;
        let copies = c.copies as f64 / c.frames as f64;
        println!(
            "- driver instructions per 64-byte frame, SEND_BATCH N=64 (IOCTL {:.0} + send completion {:.0}; {copies:.0} of them the 64-byte copy): {per:.0} (target <= 300): {}",
            per - compl,
            compl,
            verdict(per <= 300.0)
        );
    }
    for c in r.iter().filter(|c| c.kind == Kind::RingRecv) {
        let f = c.frames as f64;
        let per = (c.image - c.frame_copy) as f64 / f;
        println!(
            "- driver instructions per {}-byte frame, ring receive, without the frame's copy into the UMEM ({:.0} Ir: the memcpy calls of the receive path, one Ir per byte): {per:.0} (target <= 80): {} ({:.0} without any memcpy/memset)",
            c.size,
            c.frame_copy as f64 / f,
            verdict(per <= 80.0),
            (c.image - c.copies) as f64 / f,
        );
    }
    for c in r.iter().filter(|c| matches!(c.kind, Kind::RingSend(_))) {
        let f = c.frames as f64;
        let per = c.image as f64 / f;
        println!(
            "- driver instructions per {}-byte frame, {} (kick {:.0} + send completion {:.0}; {:.0} Ir of memcpy/memset): {per:.2} (target <= 60): {}",
            c.size,
            c.kind.label().trim_start_matches("(e) "),
            (c.image - c.completion) as f64 / f,
            c.completion as f64 / f,
            c.copies as f64 / f,
            verdict(per <= 60.0)
        );
    }
    for c in r.iter().filter(|c| matches!(c.kind, Kind::RingRecv | Kind::RingSend(_))) {
        println!(
            "- {} B: pool allocations in the measured region of {}: {} over {} frames: {}",
            c.size,
            c.kind.label(),
            c.allocs,
            c.frames,
            verdict(c.allocs == 0)
        );
    }
    println!();
}
