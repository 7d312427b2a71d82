//! `rawnic-chaos`: explores seeded random schedules against the real
//! rawnic.sys in ndisim (`cargo make chaos -- --help`).

use clap::{Parser, Subcommand};
use rawnic_chaos::schedule::Mode;
use rawnic_chaos::shrink::shrink;
use rawnic_chaos::supervise::{Job, Workers, replay_cmd, run_all, run_file};
use rawnic_chaos::{GenOptions, Profile, RunConfig, Schedule, Verdict, generate, run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "rawnic-chaos",
    // A later --schedules (or any option) overrides an earlier one: `cargo
    // make coverage` gives defaults the user's own come after.
    args_override_self = true,
    about = "Runs seeded random PnP, I/O and low-memory schedules against the real rawnic.sys in ndisim",
    after_help = "Each failing seed is printed with a one-line replay command; --shrink cuts it down to a short action list saved as JSON (replay it with --replay FILE). Exit status: 0 all clean, 1 a schedule failed, 2 bad arguments."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Schedules to run (per mode).
    #[arg(long, default_value_t = 200)]
    schedules: u64,
    /// The first seed; schedule i uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// free (real threads), det (one seeded scheduler), or both.
    #[arg(long, default_value = "both", value_parser = ["free", "det", "both"])]
    mode: String,
    #[command(flatten)]
    gen_args: GenArgs,
    /// Worker processes at once (default: the CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// The driver image.
    #[arg(long, default_value = "target/package/rawnic.sys")]
    driver: PathBuf,
    /// Seconds a schedule may go without a step (an action begun or ended,
    /// a teardown stage) before it counts as a hang; five times this in
    /// all, however it moves. Both stretch by the machine's load per CPU
    /// when it is above 1.
    #[arg(long, default_value_t = 60)]
    limit: u64,
    /// Shrink each failing schedule and save it.
    #[arg(long)]
    shrink: bool,
    /// While shrinking, keep only schedules that break this rule (by
    /// default, any rule the original broke).
    #[arg(long, value_name = "RULE")]
    keep_rule: Option<String>,
    /// Where failing schedules and the summary go.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
    /// Runs one saved schedule (JSON) and prints what it found.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Explores one saved schedule (JSON) systematically: deterministic,
    /// under ndisim's bounded scheduler, with every single deviation from
    /// its default picks (a thread stopped at any one scheduling point
    /// while another runs), up to --budget runs (`systematic.rs`).
    #[arg(long, value_name = "FILE")]
    systematic: Option<PathBuf>,
    /// Explores the schedules the seeds make (--seed, --schedules, the
    /// generation options; deterministic) one after the other, each as
    /// --systematic explores a file, --budget runs each: a campaign of
    /// systematic exploration.
    #[arg(long, conflicts_with_all = ["systematic", "replay"])]
    systematic_seeds: bool,
    /// With --systematic: deviations per run at most (2: pairs too, drawn
    /// from the budget the single ones leave).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    deviations: u8,
    /// With --systematic: runs at most.
    #[arg(long, default_value_t = 2000)]
    budget: usize,
    /// Runs the schedules (one mode) in one worker under valgrind and writes
    /// which of the driver's source lines they ran to OUT/coverage.txt
    /// (slow: about 50 times a plain run).
    #[arg(long)]
    coverage: bool,
    /// Prints every schedule's result, not only failures.
    #[arg(long, short)]
    verbose: bool,
    /// Prints the schedules the seeds make (JSON, one per line, replayable
    /// with --replay) instead of running them.
    #[arg(long)]
    print: bool,
}

/// What the schedules a seed makes are like (the supervisor and its
/// workers share them: `supervise::worker_args` passes every one).
#[derive(clap::Args, Debug)]
struct GenArgs {
    /// Low-resources simulation: this many allocations in 1000 fail.
    #[arg(long, default_value_t = 0)]
    lowres: u32,
    /// Per mille of the schedules whose run refuses a burst of allocations
    /// (drawn from the seed): from the nth of the run, counted from before
    /// DriverEntry (one in eight within its first 40: DriverEntry, the
    /// first binds), 1, 4, 16 or 1000 in a row (`SimBuilder::
    /// fail_allocations_from`), the rest up to a span that fits the
    /// profile; a DriverEntry that fails under it must fail for want of
    /// memory and leave nothing behind. The first end check ends the
    /// refusals, except in one burst in eight, which lasts into the
    /// teardown (closes, unbinds, unload).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    fail_nth: u32,
    /// Special pool: each pool block on its own pages with a guard page.
    #[arg(long)]
    special_pool: bool,
    /// Every schedule stresses one thing (default: drawn per seed);
    /// union-race, d0-no-restart and filter-shortage are whole scenes (`gen/scenes.rs`);
    /// ring-storm makes every handle thread a ring user (`gen/rings.rs`);
    /// crowd binds 6 to 16 adapters and runs 5 to 10 handle threads that
    /// move from adapter to adapter (`gen/crowd.rs`).
    #[arg(long, value_parser = ["mixed", "send-storm", "retain-storm", "teardown", "oid-storm", "filter-storm", "rx-storm", "union-race", "d0-no-restart", "filter-shortage", "ring-storm", "crowd"])]
    profile: Option<String>,
    /// Free-running mode: this many calls in 1000 into ndisim first stall
    /// their thread for up to 200 µs, so narrow races open wider, and PnP
    /// events follow each other as promptly as NDIS may send them.
    #[arg(long, default_value_t = 0)]
    jitter: u32,
    /// Free-running mode: this many times a second, a thread inside a call
    /// into the driver is stalled for 5 to 300 µs if the signal finds it
    /// executing the driver's own instructions: races between two of the
    /// driver's instructions open, as when a CPU is held up.
    #[arg(long, default_value_t = 0)]
    preempt: u32,
    /// PnP and NIC actors each, 1 to 3: PnP events for different adapters
    /// come from several threads at once (as NDIS sends them for different
    /// miniports), and receives are indicated from several threads at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    parallel: u8,
    /// Per mille of the schedules whose handle threads also use rings (a
    /// UMEM attached, fills, zero-copy sends, waits, detaches, garbage in
    /// user memory); 0 gives every seed the schedule it had before rings,
    /// 1000 rings in every schedule.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(0..=1000))]
    rings: u32,
    /// Per cent of the det schedules whose scheduler picks by priorities
    /// (PCT: the highest-priority thread that can run runs, and 1 to 3
    /// times the running one drops below all), so one thread stays stopped
    /// at a point while others run whole operations; the rest pick
    /// uniformly at every scheduling point.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    pct: u32,
    /// Per cent of the schedules that are swarms: each leaves out a random
    /// half of the kinds of actions (sends, reads, OIDs, pauses, receive
    /// bursts, ...) and does more of the rest, so states that need one kind
    /// to stay away (a queue nobody reads, a binding nobody pauses) come up.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=100))]
    swarm: u32,
    /// Per mille of the adapters whose miniport indicates link changes and
    /// unknown statuses while a bind is in progress (`bind-status=1..6`;
    /// their bindings' link state is judged at the end).
    #[arg(long, default_value_t = rawnic_chaos::r#gen::BIND_STATUS_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    bind_status: u32,
    /// Per mille of the schedules whose emulated Windows is older than 11
    /// 24H2 (NDIS 6.30 to 6.88): rawnic registers as NDIS 6.30 there, NDIS
    /// turns URO off, and the driver walks frames as a 6.30 protocol.
    #[arg(long, default_value_t = rawnic_chaos::r#gen::OLD_NDIS_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    old_ndis: u32,
    /// Per mille of the receive bursts whose frames go to two to four
    /// destinations in turn (broadcast, the adapter's own, a group,
    /// another host), half of them with some frames of another EtherType,
    /// so one indication mixes frames a handle takes with frames it drops;
    /// and of the ring users' opens that list EtherTypes. 0 gives every
    /// seed the schedule it had before.
    #[arg(long, default_value_t = rawnic_chaos::r#gen::MIXED_BURSTS_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    mixed_bursts: u32,
    /// Per mille of the capture programs set (but the empty, the longest
    /// and the refused one) that are random valid ones (`randprog.rs`),
    /// one in ten of them spoiled so that the driver must refuse it:
    /// every instruction class and load width, judged by the explorer's
    /// own evaluator. 0 gives every seed the schedule it had before.
    #[arg(long, default_value_t = rawnic_chaos::r#gen::RANDOM_PROGRAMS_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    random_programs: u32,
    /// Per mille of the unbinds that one or two handle threads wait for,
    /// then open the adapter as it begins (`gen/open_unbind.rs`): the OPEN
    /// and the unbind start together. 0 gives every seed the schedule it
    /// had before.
    #[arg(long, default_value_t = rawnic_chaos::r#gen::OPEN_UNBIND_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    open_unbind: u32,
    /// Per mille of the schedules in which three in four of the adapters
    /// that indicate status during binds (`bind-status=`) answer a query
    /// that pends from their state when it arrives, and complete it later
    /// (ndisim's `answer_queries_on_arrival`; `oid=pending` added where
    /// no `oid=` is): a link indication made meanwhile is newer than the
    /// answer, and the link oracle judges what the driver keeps. 0 gives
    /// every seed the schedule it had before.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    answer_on_arrival: u32,
    /// Per mille of the det schedules run twice, the second time with
    /// other garbage in fresh pool, fresh NBLs' reserved words, context
    /// data and preallocated data, the unwritten output of buffered
    /// requests and the stack's paint
    /// (`SimBuilder::garbage`): the driver's callers must get the
    /// same statuses, lengths and bytes, and the interleaving must be the
    /// same, or memory the driver never wrote reached user mode or steered
    /// it. Its own draw: the schedules are the same whatever it is
    #[arg(long, default_value_t = rawnic_chaos::r#gen::TWIN_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    twin: u32,
    /// Per cent of their odds at which schedules draw ndisim's knobs
    /// (`gen/knobs.rs`): the system worker thread held, a return to D0
    /// held before its set-power event, pool allocations of one size
    /// stalled, requests cancelled from threads nobody waits for, a
    /// handler stalled before one of its spin locks, or at one of its
    /// calls, as a PnP event comes. 0 gives every seed the schedule it had
    /// before.
    #[arg(long, default_value_t = rawnic_chaos::r#gen::KNOBS_PER_CENT, value_parser = clap::value_parser!(u32).range(0..=1000))]
    knobs: u32,
    /// Per mille of the schedules in which every call into ndisim is a
    /// scheduling point after its body as well as at its entry: the
    /// deterministic scheduler may switch (and free-running jitter stall)
    /// between a call's return and the driver's next instruction, where a
    /// thread that has just completed an IRP, returned NBLs or let a lock
    /// go is overtaken. Its own draw: the schedules are the same whatever
    /// it is
    #[arg(long, default_value_t = rawnic_chaos::r#gen::POINTS_AFTER_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    points_after: u32,
    /// Per mille of the opens without a snap length (most of them) that
    /// get one: half from 14 to 200 bytes, half at or next to the
    /// lengths of the explorer's frames, where an off-by-one shows. 0
    /// gives every seed the schedule it had before
    #[arg(long, default_value_t = rawnic_chaos::r#gen::SNAPLENS_PER_MILLE, value_parser = clap::value_parser!(u32).range(0..=1000))]
    snaplens: u32,
}

impl GenArgs {
    /// The generator's options in `mode`.
    fn options(&self, mode: Mode) -> GenOptions {
        GenOptions {
            mode,
            lowres: self.lowres,
            special_pool: self.special_pool,
            profile: self.profile.as_deref().and_then(Profile::parse),
            jitter: self.jitter,
            preempt: self.preempt,
            parallel: self.parallel,
            rings: self.rings,
            pct: self.pct,
            swarm: self.swarm,
            bind_status: self.bind_status,
            old_ndis: self.old_ndis,
            mixed_bursts: self.mixed_bursts,
            random_programs: self.random_programs,
            open_unbind: self.open_unbind,
            fail_nth: self.fail_nth,
            answer_on_arrival: self.answer_on_arrival,
            twin: self.twin,
            knobs: self.knobs,
            points_after: self.points_after,
            snaplens: self.snaplens,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs schedules in this process and prints a result line for each
    /// (used by the supervisor).
    Worker {
        #[arg(long)]
        driver: PathBuf,
        #[arg(long, default_value = "free")]
        mode: String,
        #[command(flatten)]
        gen_args: GenArgs,
        /// Comma-separated seeds.
        #[arg(long)]
        seeds: Option<String>,
        /// A saved schedule instead of seeds.
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// Load the image at this address (hexadecimal), for --coverage.
        #[arg(long, hide = true)]
        image_base: Option<String>,
    },
}

fn worker(driver: &Path, o: GenOptions, seeds: Option<String>, file: Option<PathBuf>, base: Option<u64>) -> ExitCode {
    let cfg = RunConfig { image_base: base, ..RunConfig::new(driver) };
    let schedules: Vec<Schedule> = if let Some(f) = file {
        match std::fs::read_to_string(&f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(s) => vec![s],
            Err(e) => {
                eprintln!("rawnic-chaos: {}: {e}", f.display());
                return ExitCode::from(2);
            }
        }
    } else {
        let list = seeds.unwrap_or_default();
        let mut v = Vec::new();
        for s in list.split(',').filter(|s| !s.is_empty()) {
            match s.parse::<u64>() {
                Ok(seed) => v.push(generate(seed, o)),
                Err(_) => {
                    eprintln!("rawnic-chaos: {s:?} is not a seed");
                    return ExitCode::from(2);
                }
            }
        }
        v
    };
    let out = std::io::stdout();
    // Tells the supervisor the running schedule still moves.
    std::thread::spawn(|| {
        let mut seen = 0;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let now = rawnic_chaos::run::PROGRESS.load(std::sync::atomic::Ordering::Relaxed);
            if now != seen {
                seen = now;
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "ALIVE");
                let _ = o.flush();
            }
        }
    });
    for s in schedules {
        {
            let mut o = out.lock();
            let _ = writeln!(o, "START {}", s.seed);
            let _ = o.flush();
        }
        let r = run(&s, &cfg);
        let mut o = out.lock();
        let _ = writeln!(o, "RESULT {} {}", s.seed, serde_json::to_string(&r).unwrap_or_default());
        let _ = o.flush();
    }
    ExitCode::SUCCESS
}

/// `--coverage`: the schedules of each mode in one worker under callgrind,
/// then the driver's source lines they ran (`coverage`).
fn coverage(
    exe: &Path,
    driver: &Path,
    out: &Path,
    modes: &[Mode],
    first: u64,
    n: u64,
    gen_options: impl Fn(Mode) -> GenOptions,
) -> ExitCode {
    use rawnic_chaos::coverage;
    let seeds: Vec<u64> = (first..first.saturating_add(n)).collect();
    let mut hit = std::collections::HashSet::new();
    for &mode in modes {
        let mut args = rawnic_chaos::supervise::worker_args(driver, &gen_options(mode), &seeds);
        args.extend(["--image-base".to_string(), format!("{:#x}", coverage::IMAGE_BASE)]);
        eprintln!("rawnic-chaos: {n} {} schedules under valgrind (slow)", mode.name());
        match coverage::run_worker(exe, &args, &out.join("coverage").join(mode.name())) {
            Ok(h) => hit.extend(h),
            Err(e) => {
                eprintln!("rawnic-chaos: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let root = std::env::current_dir().unwrap_or_default();
    let r = match coverage::report(driver, &coverage::pdb_dir_for(&root), &hit, &root) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rawnic-chaos: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = r.render(&root);
    let file = out.join("coverage.txt");
    if let Err(e) = std::fs::create_dir_all(out).and_then(|_| std::fs::write(&file, &text)) {
        eprintln!("rawnic-chaos: {}: {e}", file.display());
        return ExitCode::FAILURE;
    }
    let summary: Vec<&str> = text.lines().take_while(|l| !l.starts_with("Lines never run")).collect();
    println!(
        "{}
the lines never run: {}",
        summary.join("\n"),
        file.display()
    );
    ExitCode::SUCCESS
}

fn save(dir: &Path, name: &str, s: &Schedule) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(s).ok()?).ok()?;
    Some(p)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rawnic-chaos"));
    if let Some(Cmd::Worker { driver, mode, gen_args, seeds, schedule, image_base }) = cli.cmd {
        let base = image_base.map(|b| u64::from_str_radix(b.trim_start_matches("0x"), 16));
        let Ok(base) = base.transpose() else {
            eprintln!("rawnic-chaos: --image-base is a hexadecimal address");
            return ExitCode::from(2);
        };
        let Some(mode) = Mode::parse(&mode) else {
            eprintln!("rawnic-chaos: --mode is free or det");
            return ExitCode::from(2);
        };
        return worker(&driver, gen_args.options(mode), seeds, schedule, base);
    }
    let gen_options = |mode| cli.gen_args.options(mode);
    let modes: Vec<Mode> = match cli.mode.as_str() {
        "free" => vec![Mode::Free],
        "det" => vec![Mode::Det],
        _ => vec![Mode::Free, Mode::Det],
    };
    if cli.print {
        for &mode in &modes {
            for seed in cli.seed..cli.seed.saturating_add(cli.schedules) {
                match serde_json::to_string(&rawnic_chaos::generate(seed, gen_options(mode))) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("rawnic-chaos: seed {seed}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    if !cli.driver.is_file() {
        eprintln!(
            "rawnic-chaos: {} is not a file: build the package first (cargo make package) or give --driver",
            cli.driver.display()
        );
        return ExitCode::from(2);
    }
    let workers = Workers {
        exe,
        driver: cli.driver.clone(),
        limit: Duration::from_secs(cli.limit),
        jobs: cli.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        patient: true,
    };
    if cli.coverage {
        return coverage(&workers.exe, &cli.driver, &cli.out, &modes, cli.seed, cli.schedules, gen_options);
    }
    let plan = rawnic_chaos::systematic::Plan { deviations: cli.deviations, budget: cli.budget };
    if let Some(file) = &cli.systematic {
        return systematic(&workers, file, &cli.out, plan);
    }
    if cli.systematic_seeds {
        let seeds = cli.seed..cli.seed.saturating_add(cli.schedules);
        return systematic_seeds(&workers, seeds, gen_options(Mode::Det), &cli.out, plan);
    }
    if let Some(file) = &cli.replay {
        let v = run_file(&workers, file);
        match &v {
            Verdict::Clean(_) => println!("{}: clean", file.display()),
            v => println!("{}: {}\n{}", file.display(), v.class(), details(v)),
        }
        return if v.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    }
    let started = Instant::now();
    let mut failures: Vec<(u64, Mode, Verdict)> = Vec::new();
    let mut totals = Totals::default();
    for &mode in &modes {
        let job = Job { seeds: (cli.seed..cli.seed.saturating_add(cli.schedules)).collect(), opts: gen_options(mode) };
        let done = AtomicU64::new(0);
        let print = Mutex::new(());
        let verbose = cli.verbose;
        let results = run_all(&workers, &job, &|seed, v| {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            let _g = print.lock();
            if !v.is_clean() {
                println!("FAIL seed {seed} ({}): {}", mode.name(), v.class());
                println!("  replay: {}", replay_cmd(seed, gen_options(mode)));
            } else if verbose {
                println!("ok   seed {seed} ({})", mode.name());
            }
            if n % 50 == 0 {
                eprintln!("rawnic-chaos: {n} {} schedules done", mode.name());
            }
        });
        for (seed, v) in results {
            totals.add(mode, &v);
            if !v.is_clean() {
                failures.push((seed, mode, v));
            }
        }
    }
    let elapsed = started.elapsed();
    for (seed, mode, v) in &failures {
        println!("\n=== seed {seed} ({}): {}", mode.name(), v.class());
        println!("{}", details(v));
        let s = generate(*seed, gen_options(*mode));
        let name = format!("seed-{seed}-{}.json", mode.name());
        if let Some(p) = save(&cli.out.join("failures"), &name, &s) {
            println!("  schedule: {} ({} actions)", p.display(), s.len());
        }
        if cli.shrink {
            let dir = cli.out.join("shrunk");
            let tmp = cli.out.join("shrink-candidate.json");
            let mut run_one = |c: &Schedule| {
                let _ = save(&cli.out, "shrink-candidate.json", c);
                run_file(&workers, &tmp)
            };
            let target = match (&cli.keep_rule, v) {
                (Some(rule), Verdict::Failed(o)) => {
                    Verdict::Failed(rawnic_chaos::Outcome { rules: vec![rule.clone()], ..o.clone() })
                }
                _ => v.clone(),
            };
            if cli.keep_rule.as_ref().is_some_and(|r| !matches!(v, Verdict::Failed(o) if o.rules.contains(r))) {
                println!("  not shrunk: it did not break {}", cli.keep_rule.as_deref().unwrap_or(""));
                continue;
            }
            let (small, sv) = shrink(&s, &target, 300, 3, &mut run_one, &mut |b| {
                eprintln!("rawnic-chaos: seed {seed}: shrunk to {} actions", b.len())
            });
            if let Some(p) = save(&dir, &name, &small) {
                println!("  shrunk to {} actions: {} ({})", small.len(), p.display(), sv.class());
                println!("  replay: cargo make chaos -- --replay {}", p.display());
                print!("{}", small.describe());
            }
        }
    }
    println!("\n{}", totals.render(elapsed));
    let _ = std::fs::create_dir_all(&cli.out);
    let _ = std::fs::write(cli.out.join("summary.txt"), totals.render(elapsed));
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `--systematic FILE`: every run within the bound, then the failures.
fn systematic(workers: &Workers, file: &Path, out: &Path, plan: rawnic_chaos::systematic::Plan) -> ExitCode {
    let base: Schedule = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|j| serde_json::from_str(&j).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rawnic-chaos: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let dir = out.join("systematic");
    let ex = rawnic_chaos::systematic::explore(workers, &base, plan, &dir, &|n| {
        if n % 100 == 0 {
            eprintln!("rawnic-chaos: {n} systematic runs done");
        }
    });
    print_failures(&ex, "");
    let line = format!("{} in {:.1} s", ex.render(), started.elapsed().as_secs_f64());
    println!("\n{line}");
    let _ = std::fs::write(dir.join("summary.txt"), format!("{line}\n"));
    if ex.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `--systematic-seeds`: each seed's schedule (det) explored in turn, its
/// runs' failures saved under OUT/systematic-SEED; a line per seed, and
/// the totals.
fn systematic_seeds(
    workers: &Workers,
    seeds: std::ops::Range<u64>,
    o: GenOptions,
    out: &Path,
    plan: rawnic_chaos::systematic::Plan,
) -> ExitCode {
    let started = Instant::now();
    let (mut runs, mut failed, mut failing_seeds) = (0usize, 0usize, Vec::new());
    for seed in seeds.clone() {
        let base = generate(seed, o);
        let dir = out.join(format!("systematic-{seed}"));
        let ex = rawnic_chaos::systematic::explore(workers, &base, plan, &dir, &|_| {});
        print_failures(&ex, &format!("seed {seed}, "));
        println!("seed {seed}: {}", ex.render());
        runs += ex.runs;
        failed += ex.failures.len();
        if !ex.failures.is_empty() {
            failing_seeds.push(seed);
        }
    }
    let line = format!(
        "systematic seeds {}..{}: {runs} runs, {failed} failed (seeds {failing_seeds:?}) in {:.1} s",
        seeds.start,
        seeds.end,
        started.elapsed().as_secs_f64()
    );
    println!("\n{line}");
    let _ = std::fs::create_dir_all(out);
    let _ = std::fs::write(out.join("summary.txt"), format!("{line}\n"));
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// A systematic exploration's failing runs, each with its deviations, its
/// findings and its replay command.
fn print_failures(ex: &rawnic_chaos::systematic::Explored, what: &str) {
    for (script, v, saved) in &ex.failures {
        println!("\n=== {what}deviations {script:?}: {}", v.class());
        println!("{}", details(v));
        if let Some(p) = saved {
            println!("  replay: cargo make chaos -- --replay {}", p.display());
        }
    }
}

fn details(v: &Verdict) -> String {
    match v {
        Verdict::Clean(_) => String::new(),
        Verdict::Failed(o) => {
            let mut s = String::new();
            for x in o.violations.iter().take(12) {
                s.push_str(&format!("  violation: {x}\n"));
            }
            for x in o.internal.iter().take(5) {
                s.push_str(&format!("  ndisim internal error: {x}\n"));
            }
            for x in o.harness.iter().take(5) {
                s.push_str(&format!("  harness: {x}\n"));
            }
            if let Some(st) = o.stacks.as_deref().filter(|t| !t.is_empty()) {
                s.push_str("  every thread when the first watchdog gave up:\n");
                for l in st.lines().take(400) {
                    s.push_str(&format!("  | {l}\n"));
                }
            }
            if let Some(e) = &o.start_error {
                s.push_str(&format!("  start: {e}\n"));
            }
            s
        }
        Verdict::Crash { how, stderr } => {
            format!("  {how}\n{}", stderr.lines().map(|l| format!("  | {l}\n")).collect::<String>())
        }
        Verdict::Hang { after, still, stacks } => {
            format!(
                "  no result after {:.1} s, the last {:.1} s without a step\n{}",
                after.as_secs_f64(),
                still.as_secs_f64(),
                stacks.lines().map(|l| format!("  | {l}\n")).collect::<String>()
            )
        }
    }
}

#[derive(Default)]
struct Totals {
    rows: Vec<(Mode, [u64; 5])>,
    /// What the clean schedules did, all modes together.
    clean: rawnic_chaos::supervise::Activity,
}

impl Totals {
    fn add(&mut self, mode: Mode, v: &Verdict) {
        let i = match self.rows.iter().position(|(m, _)| *m == mode) {
            Some(i) => i,
            None => {
                self.rows.push((mode, [0; 5]));
                self.rows.len() - 1
            }
        };
        let r = &mut self.rows[i].1;
        r[0] += 1;
        match v {
            Verdict::Clean(_) => self.clean.add(v),
            Verdict::Failed(_) => r[1] += 1,
            Verdict::Hang { .. } => r[2] += 1,
            Verdict::Crash { .. } => r[3] += 1,
        }
        if !v.is_clean() {
            r[4] += 1;
        }
    }

    fn render(&self, elapsed: Duration) -> String {
        let mut s = String::from("mode  schedules  violations  hangs  crashes  failed\n");
        for (m, r) in &self.rows {
            s.push_str(&format!("{:<5} {:>9}  {:>10}  {:>5}  {:>7}  {:>6}\n", m.name(), r[0], r[1], r[2], r[3], r[4]));
        }
        let a = self.clean;
        s.push_str(&format!(
            "clean schedules did: {} requests completed, {} frames read back, {} ring rx descriptors, {} zero-copy completions, {} allocation failures injected, {} requests after their handle's cleanup, {} cancels in dispatch, {} waits for BindsComplete, {} schedules on NDIS 6.30 to 6.88, {} indications while restarting, {} by miniports low on receive buffers, {} status indications during binds and {} bindings' link states judged, {} OIDs and {} sends failed by miniports, {} bindings' send accounts and {} handles' receive accounts ({} frames dropped by full queues) and {} pause and restart events' order checked, {} FILTER_FAILED events judged, {} re-enumerations asked for and {} binds they brought, {} stalls inside the driver's code and {} inside the handlers schedules slowed, {} multicast lists joined and {} adapters' lists checked for a group and {} as the union of their handles', {} adapters' packet filters checked as the union of their handles' before the end's requests ({} lists and {} filters of those once a shortage ended), {} records of injected frames checked ({} frames indicated in shaped bursts; {} records of looped-back frames, {} of coalesced units, {} of frames tagged inline; {} receive times judged against their burst's indication and {} pairs' order; {} records judged against their handle's snap length), {} handles probed at the end for {} frames they must count ({} probes of a sole ring handle behind a wider adapter filter; {} probes whose frames a handle sent too; {} whose adapter failed filter sets as the probe's handles opened), {} frames left queued read back at the end, {} frames of floods read back, {} handles told the filter they asked for less only what the adapter does not allow, {} PnP events while an OID call was inside NdisOidRequest, {} OPENs sent as their adapter's unbind began ({} of them opened), {} OID calls held at their end and {} cancel routines held with the cancel spin lock, {} capture programs set and {} records judged by the ones that drop or cut ({} by a random one's answer), {} damaged SET_PROGRAMs and {} damaged ring requests sent, {} damaged requests of the other kinds refused as their flaws call for, {} OID answers judged by content and {} SET_OID replies against the sets the miniports answered, {} sent frames judged as they reached a wire ({} said sent looked for there or among the failed) and {} records of them other handles got judged by where they came from, {} pairs of GET_STATS replies whose counters' order was judged, {} LIST_BINDINGS entries judged ({} restart events' MTUs), {} frames a full rx ring dropped, {} fill entries that named no frame, {} ring indices out of bounds and {} cut frames on rx rings; the driver's frames went at most {} bytes deep on a kernel stack\n",
            a.completions, a.frames_read, a.ring_rx, a.ring_tx, a.alloc_failures, a.edges.late_requests, a.edges.early_cancels, a.edges.binds_waited, a.edges.old_ndis, a.edges.restarting_indications, a.edges.low_indications, a.edges.bind_statuses, a.edges.links_checked, a.edges.oids_failed, a.edges.sends_failed, a.edges.accounts_checked, a.edges.rx_accounts_checked, a.edges.rx_drops_checked, a.edges.events_checked, a.edges.filter_failed_told, a.edges.reenumerations, a.edges.rebinds, a.edges.preemptions, a.edges.slow_stalls, a.edges.joins, a.edges.groups_checked, a.edges.unions_checked, a.edges.filters_checked, a.edges.unions_after_shortage, a.edges.filters_after_shortage, a.edges.rx_checked, a.edges.shaped_frames, a.edges.rx_looped, a.edges.rx_coalesced, a.edges.rx_tagged_inline, a.edges.rx_stamped, a.edges.rx_stamp_pairs, a.edges.rx_snapped, a.edges.probe_handles, a.edges.probe_frames, a.edges.probe_widened, a.edges.send_probes, a.edges.failing_probes, a.edges.queued_read_at_end, a.edges.flooded, a.edges.filters_granted, a.edges.in_oid_calls, a.edges.opens_in_unbinds, a.edges.opened_in_unbinds, a.edges.late_returns, a.edges.slow_cancels, a.edges.programs_set, a.edges.programs_judged, a.edges.random_judged, a.edges.damaged_programs, a.edges.damaged_ring_requests, a.edges.damaged_refusals, a.edges.oid_answers_judged, a.edges.sets_judged, a.edges.wire_frames, a.edges.wire_accepted, a.edges.local_records, a.edges.stats_compared, a.edges.list_entries, a.edges.restart_mtus, a.edges.ring_full, a.edges.fill_invalid, a.edges.bad_index, a.edges.ring_cut, a.edges.stack_deepest
        ));
        let e = a.edges;
        let drawn =
            e.refused_in_entry + e.refused_in_start + e.refused_in_body + e.refused_in_teardown + e.refusals_unreached;
        if drawn > 0 {
            s.push_str(&format!(
                "refused allocations (--fail-nth) in {drawn} clean schedules: the first in DriverEntry (which failed cleanly) in {}, before the actors ran (DriverEntry or the first binds) in {}, in the schedule's body in {}, in the teardown (after the first end check) in {}, never reached in {}; {} allocations counted in all; {} bursts lasting into the teardown, which refused {} allocations after the first end check (and before the unload)\n",
                e.refused_in_entry, e.refused_in_start, e.refused_in_body, e.refused_in_teardown, e.refusals_unreached, a.allocations, e.lasting_bursts, e.refused_after_check
            ));
        }
        if e.twins > 0 {
            s.push_str(&format!(
                "{} det schedules run twice with other garbage in memory the driver never wrote (--twin): {} requests' results compared, the same\n",
                e.twins, e.twin_outputs
            ));
        }
        if e.answering_on_arrival > 0 {
            s.push_str(&format!(
                "{} adapters answered pending queries on arrival (--answer-on-arrival); {} bindings' link states judged in all\n",
                e.answering_on_arrival, e.links_checked
            ));
        }
        if e.work_items_held + e.d0_held + e.allocation_spells + e.cancels_away + e.lock_aims + e.call_aims > 0 {
            s.push_str(&format!(
                "ndisim's knobs: {} work items found held as the worker thread's holds ended, {} returns to D0 held before their set-power event, {} allocation spells ({} cast by handle threads before their own requests) that stalled {} allocations, {} requests cancelled from threads nobody waits for (in {} schedules the last cancel routine aimed at stalled; {} routines still stalled as the driver unloaded), {} stalls aimed at a handler's spin-lock acquire ({} made), {} at a call inside a handler ({} made)\n",
                e.work_items_held, e.d0_held, e.allocation_spells, e.timed_spells, e.allocations_stalled, e.cancels_away, e.cancel_stalls, e.cancels_in_unload, e.lock_aims, e.lock_stalls, e.call_aims, e.call_stalls
            ));
        }
        s.push_str(&format!("in {:.1} s\n", elapsed.as_secs_f64()));
        s
    }
}
