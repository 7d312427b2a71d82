//! Running `xtask mutants`: the mirror the mutants are built in, the
//! builds, and the battery each image faces.
//!
//! The mutated file is never the working tree's own: the sources are
//! mirrored into `target/mutants/tree` (copied where they differ, so an
//! earlier run's mutant, left by a Ctrl-C, is undone at the next start),
//! and each mutant is written there, built there (its own kernel target
//! directory), and the original written back as soon as the build
//! returns, and by a guard's `Drop` on any error or panic. So neither a
//! build script of the workspace nor `target/kernel/images` ever sees a
//! mutant, and an interrupted run leaves the sources as they were.

use super::{
    Op, Options, Outcome, Record, Site, apply, explorer_failures, keep_lines, parse_args, pick, report, scan,
    test_executables,
};
use crate::kernel;
use crate::toolchain;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes the original text back when dropped.
struct Restore<'a> {
    path: &'a Path,
    original: &'a str,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Err(e) = fs::write(self.path, self.original) {
            eprintln!("mutants: cannot restore {}: {e}", self.path.display());
        }
    }
}

/// How one step of the battery ended.
enum Step {
    Passed,
    Failed,
    TimedOut,
}

/// Runs `cmd` with its output in `log`, for at most `limit`.
fn run_step(mut cmd: Command, log: &Path, limit: Duration) -> Result<Step, String> {
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::from(err));
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(if status.success() { Step::Passed } else { Step::Failed });
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Step::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The battery: the test executables (name, path), the explorer's
/// program and the arguments of each of its runs.
struct Battery {
    tests: Vec<(String, PathBuf)>,
    chaos: Option<PathBuf>,
    runs: Vec<Vec<String>>,
    limit: Duration,
}

impl Battery {
    /// Runs it against `image` (logs in `dir`, named after `id`); the first
    /// failing step ends it.
    fn run(&self, image: &Path, dir: &Path, id: &str) -> Outcome {
        for (name, exe) in &self.tests {
            let mut cmd = Command::new(exe);
            cmd.env("RAWNIC_TEST_DRIVER", image);
            let log = dir.join(format!("{id}-{name}.log"));
            eprintln!("mutants: {id}: test {name}");
            match run_step(cmd, &log, self.limit) {
                Ok(Step::Passed) => {}
                Ok(Step::Failed) => return Outcome::CaughtByTest { test: name.clone(), timeout: false },
                Ok(Step::TimedOut) => return Outcome::CaughtByTest { test: name.clone(), timeout: true },
                Err(e) => return Outcome::Error(e),
            }
        }
        for (k, args) in self.runs.iter().enumerate() {
            let Some(exe) = &self.chaos else { break };
            // The first run's files keep the names they always had.
            let name = if k == 0 { format!("{id}-chaos") } else { format!("{id}-chaos{}", k + 1) };
            let mut cmd = Command::new(exe);
            cmd.arg("--driver").arg(image).args(args);
            if !args.iter().any(|a| a == "--jobs") {
                cmd.args(["--jobs", "1"]);
            }
            if !args.iter().any(|a| a == "--out") {
                cmd.arg("--out").arg(dir.join(&name));
            }
            let log = dir.join(format!("{name}.log"));
            eprintln!("mutants: {id}: explorer {}", args.join(" "));
            match run_step(cmd, &log, self.limit) {
                Ok(Step::Passed) => {}
                Ok(Step::Failed) => {
                    let mut failed = explorer_failures(&fs::read_to_string(&log).unwrap_or_default());
                    if self.runs.len() > 1 {
                        failed = format!("`{}`: {failed}", args.join(" "));
                    }
                    return Outcome::CaughtByExplorer { failed };
                }
                // The explorer has its own hang detection (a schedule that
                // stops moving fails as a hang); one that runs past the
                // limit was slow (a loaded machine), which says nothing.
                Ok(Step::TimedOut) => {
                    return Outcome::Error(format!(
                        "the explorer ran past the time limit ({} s)",
                        self.limit.as_secs()
                    ));
                }
                Err(e) => return Outcome::Error(e),
            }
        }
        Outcome::Survived
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.tests.iter().map(|(n, _)| format!("`{n}`")).collect();
        for args in &self.runs {
            parts.push(format!("the explorer (`{}`)", args.join(" ")));
        }
        parts.join(", ")
    }
}

/// Builds the test binaries `names` once (from the unmutated sources),
/// copies them into `dir/bin` (so a later build of the same tests, by
/// hand while the run goes on, does not change the battery half-way) and
/// returns the copies' paths.
fn build_tests(root: &Path, dir: &Path, names: &[String]) -> Result<Vec<(String, PathBuf)>, String> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root).args(["test", "--no-run", "--message-format=json"]);
    for n in names {
        cmd.args(["--test", n]);
    }
    eprintln!("mutants: building the test binaries");
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo test --no-run failed ({})", out.status));
    }
    let found = test_executables(&String::from_utf8_lossy(&out.stdout));
    names
        .iter()
        .map(|n| {
            found
                .iter()
                .find(|(name, _)| name == n)
                .ok_or_else(|| format!("cargo built no test executable named {n}"))
                .and_then(|(_, exe)| {
                    let bin = dir.join("bin");
                    fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
                    let copy = bin.join(format!("{n}{}", std::env::consts::EXE_SUFFIX));
                    fs::copy(exe, &copy).map_err(|e| format!("{exe} to {}: {e}", copy.display()))?;
                    Ok((n.clone(), copy))
                })
        })
        .collect()
}

/// Builds the explorer (release), copies it into `dir/bin` (as the test
/// binaries are, for the same reason) and returns the copy's path.
fn build_chaos(root: &Path, dir: &Path) -> Result<PathBuf, String> {
    eprintln!("mutants: building the explorer");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "-q", "-p", "rawnic-chaos"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p rawnic-chaos failed ({status})"));
    }
    let name = format!("rawnic-chaos{}", std::env::consts::EXE_SUFFIX);
    let exe = root.join("target").join("release").join(&name);
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let copy = bin.join(&name);
    fs::copy(&exe, &copy).map_err(|e| format!("{} to {}: {e}", exe.display(), copy.display()))?;
    Ok(copy)
}

/// Builds the mirror's driver (its compiler output in `log`) and copies the
/// image to `dest`; false if it does not compile.
fn build_image(mirror: &Path, tc: &toolchain::Toolchain, log: &Path, dest: &Path) -> Result<bool, String> {
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = kernel::build_command(mirror, tc);
    cmd.stdout(Stdio::from(file)).stderr(Stdio::from(err));
    let status = cmd.status().map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    if !status.success() {
        return Ok(false);
    }
    let images = kernel::collect(mirror)?;
    fs::copy(images.join("rawnic.sys"), dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(true)
}

/// Lists the sites of `files` (relative to `root`), in the order given.
fn scan_files(root: &Path, files: &[String], statements: bool) -> Result<Vec<Site>, String> {
    let mut sites = Vec::new();
    for f in files {
        let rel = f.replace('\\', "/").trim_start_matches("./").to_string();
        let text = fs::read_to_string(root.join(&rel)).map_err(|e| format!("{rel}: {e}"))?;
        sites.extend(scan(&rel, &text, statements));
    }
    Ok(sites)
}

/// `xtask mutants ARGS`.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let o: Options = parse_args(args)?;
    let mut sites = keep_lines(scan_files(root, &o.files, o.statements)?, &o.lines);
    if o.only_statements {
        sites.retain(|s| s.op == Op::DeleteStatement);
    }
    let chosen = pick(sites.len(), o.count, o.seed);
    if o.list {
        for (i, s) in sites.iter().enumerate() {
            let mark = if chosen.contains(&i) { "*" } else { " " };
            println!("{mark} {}:{} [{}] {}  =>  {}", s.file, s.line, s.op.name(), s.original.trim(), s.mutated.trim());
        }
        println!("{} sites, {} picked by seed {}", sites.len(), chosen.len(), o.seed);
        return Ok(());
    }
    let out = root.join(&o.out);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let battery = Battery {
        tests: build_tests(root, &out, &o.tests)?,
        chaos: if o.chaos.is_empty() { None } else { Some(build_chaos(root, &out)?) },
        runs: o.chaos.iter().map(|a| a.split_whitespace().map(str::to_string).collect()).collect(),
        limit: Duration::from_secs(o.timeout),
    };
    let tc = toolchain::locate()?;
    let mirror = root.join("target").join("mutants").join("tree");
    eprintln!("mutants: mirroring the sources into {}", mirror.display());
    kernel::sync_mirror(root, &mirror)?;
    if o.baseline {
        let base = out.join("base.sys");
        if !build_image(&mirror, &tc, &out.join("base-build.log"), &base)? {
            return Err(format!("the unmutated driver does not build; see {}", out.join("base-build.log").display()));
        }
        let outcome = battery.run(&base, &out, "base");
        if outcome != Outcome::Survived {
            return Err(format!(
                "the battery does not pass on the unmutated image: {outcome:?} (logs in {})",
                out.display()
            ));
        }
        eprintln!("mutants: the battery passes on the unmutated image");
    }
    let lines: Vec<String> = o.lines.iter().map(|(f, a, b)| format!("{f}:{a}-{b}")).collect();
    let header = format!(
        "Files: {}{}; seed {}, {} of {} sites. Battery: {}.",
        o.files.join(", "),
        if lines.is_empty() { String::new() } else { format!(" (lines {})", lines.join(", ")) },
        o.seed,
        chosen.len(),
        sites.len(),
        battery.describe()
    );
    let mut records = Vec::new();
    for (k, &i) in chosen.iter().enumerate() {
        if o.first + k < o.resume {
            continue;
        }
        let site = &sites[i];
        let id = format!("M{}", o.first + k);
        eprintln!("mutants: {id}: {}:{} [{}]", site.file, site.line, site.op.name());
        let path = mirror.join(&site.file);
        let original = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mutated = apply(&original, site)?;
        let image = out.join(format!("{id}.sys"));
        let built = {
            let _restore = Restore { path: &path, original: &original };
            fs::write(&path, mutated).map_err(|e| format!("{}: {e}", path.display()))?;
            build_image(&mirror, &tc, &out.join(format!("{id}-build.log")), &image)
        }?;
        let outcome = if built { battery.run(&image, &out, &id) } else { Outcome::NotBuilt };
        eprintln!("mutants: {id}: {outcome:?}");
        records.push(Record { id, site: site.clone(), outcome });
        let text = report(&records, &header);
        fs::write(out.join("report.md"), text).map_err(|e| e.to_string())?;
    }
    println!("{}", out.join("report.md").display());
    Ok(())
}
