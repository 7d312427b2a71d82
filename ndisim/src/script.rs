//! The command line (`ndisim run`, `ndisim demo`) and the script format.
//!
//! A script has one command per line (`#` starts a comment). `ADAPTER` may
//! be left out when there is one adapter.
//!
//! ```text
//! pause [ADAPTER]
//! restart [ADAPTER] [mtu=N] [filters=NAME,NAME] [link=up|down]
//! unbind [ADAPTER]
//! bind [ADAPTER]                 bind and restart to Running
//! link [ADAPTER] up|down
//! power [ADAPTER] d0|d3
//! inject [ADAPTER] HEX|count=N [len=L] [resources] [nbls=N] [nbs=N]
//!        [rsc=SEGS[:DUPACKS]] [uro=SEGS:SIZE]   coalesced by the NIC
//! hold-sends|release-sends|hold-oids|release-oids [ADAPTER]
//! expect [ADAPTER] STATE         fail unless the binding is in STATE
//! sleep MS
//! ```

use crate::ndis::{BindingState, InjectOpts, RestartSpec};
use crate::sim::{AdapterId, Sim};
use rawnic_proto::hex::parse_hex;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage:
  ndisim run --driver FILE [--adapter SPEC]... [--listen SOCKET] [--script FILE]
             [--watchdog-ms N] [--image-base HEX] [--bind-during-registration] [--dbgprint]
             [--special-pool] [--low-resources PER_MILLE[:SEED]] [--deterministic SEED]
             [--stack-budget BYTES] [--ndis-version 6.MINOR] [--forbid-debug TEXT]...
  ndisim demo --driver FILE
  ndisim help

adapter specs: loopback, null, pair:A,B, tap:NAME, each optionally followed by
@key=value,... (name, mtu, mac, link, speed, completion=immediate|batch:N|
reorder:N|delay:MS|held, open|close|oid=sync|pending, oid=held, capture, rss,
vlan=on|off: 802.1Q insertion and stripping, advertised in MacOptions,
uro=on|off: UDP receive coalescing, which NDIS turns off when a protocol
older than NDIS 6.89 binds, pause-on-suspend=on|off: off, the miniport sets
NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND and NDIS neither pauses nor
restarts a 6.30 protocol's binding for a power change)

--ndis-version: the emulated Windows' highest NDIS version (default 6.89);
NdisRegisterProtocolDriver refuses newer ones with NDIS_STATUS_BAD_VERSION

--forbid-debug TEXT: a line of the driver's debug output that contains TEXT
is a violation (rule forbidden-debug-line); rawnic.sys's safety-net lines
contain \"rawnic: safety net: \", which the demo always forbids

run loads the driver, binds every adapter, runs the script, serves the
control device on SOCKET until SIGINT or SIGTERM (with --listen), then
unloads and prints the verifier report. Exit status: 0 clean, 1 violations,
2 usage or start error, 3 bug check, 4 driver fault.";

struct Args {
    driver: Option<PathBuf>,
    adapters: Vec<String>,
    listen: Option<PathBuf>,
    script: Option<PathBuf>,
    watchdog: Duration,
    image_base: Option<usize>,
    bind_during_registration: bool,
    dbgprint: bool,
    special_pool: bool,
    low_resources: Option<(u32, u64)>,
    deterministic: Option<u64>,
    stack_budget: usize,
    ndis_version: Option<(u8, u8)>,
    forbid_debug: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        driver: None,
        adapters: Vec::new(),
        listen: None,
        script: None,
        watchdog: Duration::from_secs(10),
        image_base: None,
        bind_during_registration: false,
        dbgprint: false,
        special_pool: false,
        low_resources: None,
        deterministic: None,
        stack_budget: crate::stack::DEFAULT_BUDGET,
        ndis_version: None,
        forbid_debug: Vec::new(),
    };
    let mut i = 0;
    let val = |i: &mut usize, name: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i).cloned().ok_or_else(|| format!("{name} needs a value"))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--driver" => a.driver = Some(val(&mut i, "--driver")?.into()),
            "--adapter" => a.adapters.push(val(&mut i, "--adapter")?),
            "--listen" => a.listen = Some(val(&mut i, "--listen")?.into()),
            "--script" => a.script = Some(val(&mut i, "--script")?.into()),
            "--watchdog-ms" => {
                let v = val(&mut i, "--watchdog-ms")?;
                a.watchdog = Duration::from_millis(v.parse().map_err(|_| format!("--watchdog-ms {v}: not a number"))?);
            }
            "--image-base" => {
                let v = val(&mut i, "--image-base")?;
                let h = v.trim_start_matches("0x");
                a.image_base =
                    Some(usize::from_str_radix(h, 16).map_err(|_| format!("--image-base {v}: not a hex address"))?);
            }
            "--bind-during-registration" => a.bind_during_registration = true,
            "--dbgprint" => a.dbgprint = true,
            "--special-pool" => a.special_pool = true,
            "--forbid-debug" => a.forbid_debug.push(val(&mut i, "--forbid-debug")?),
            "--low-resources" => {
                let v = val(&mut i, "--low-resources")?;
                let (p, seed) = v.split_once(':').unwrap_or((&v, "1"));
                let p: u32 = p
                    .parse()
                    .ok()
                    .filter(|&p| p <= 1000)
                    .ok_or_else(|| format!("--low-resources {v}: expected PER_MILLE[:SEED], 0 to 1000"))?;
                let seed: u64 = seed.parse().map_err(|_| format!("--low-resources {v}: the seed is not a number"))?;
                a.low_resources = Some((p, seed));
            }
            "--deterministic" => {
                let v = val(&mut i, "--deterministic")?;
                a.deterministic = Some(v.parse().map_err(|_| format!("--deterministic {v}: expected a seed"))?);
            }
            "--stack-budget" => {
                let v = val(&mut i, "--stack-budget")?;
                a.stack_budget = v
                    .parse()
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| format!("--stack-budget {v}: expected a number of bytes"))?;
            }
            "--ndis-version" => {
                let v = val(&mut i, "--ndis-version")?;
                let parsed = v.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                a.ndis_version = Some(parsed.ok_or_else(|| format!("--ndis-version {v}: expected 6.MINOR"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 1;
    }
    Ok(a)
}

fn build(a: &Args) -> Result<Sim, String> {
    let driver = a.driver.clone().ok_or("--driver FILE is required")?;
    if a.deterministic.is_some() && a.listen.is_some() {
        return Err("--deterministic cannot serve --listen: the bridge's peers are not the scheduler's threads".into());
    }
    let mut b = Sim::builder()
        .driver(driver)
        .watchdog(a.watchdog)
        .echo_dbgprint(a.dbgprint)
        .forbid_debug_lines(&a.forbid_debug.iter().map(String::as_str).collect::<Vec<_>>())
        .bind_during_registration(a.bind_during_registration)
        .special_pool(a.special_pool)
        .stack_budget(a.stack_budget);
    if let Some((p, seed)) = a.low_resources {
        b = b.low_resources(p, seed);
    }
    if let Some(seed) = a.deterministic {
        b = b.deterministic(seed);
    }
    if let Some(base) = a.image_base {
        b = b.image_base(base);
    }
    if let Some((major, minor)) = a.ndis_version {
        b = b.ndis_version(major, minor);
    }
    for s in &a.adapters {
        for spec in crate::adapter::AdapterSpec::parse(s)? {
            b = b.adapter_spec(spec);
        }
    }
    b.start().map_err(|e| e.to_string())
}

/// Runs the command line; returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            0
        }
        "run" => match parse(rest) {
            Ok(a) => run(a),
            Err(e) => {
                eprintln!("ndisim: {e}\n\n{USAGE}");
                2
            }
        },
        "demo" => match parse(rest) {
            Ok(a) => crate::demo::run(a.driver, a.dbgprint),
            Err(e) => {
                eprintln!("ndisim: {e}\n\n{USAGE}");
                2
            }
        },
        other => {
            eprintln!("ndisim: unknown command {other:?}\n\n{USAGE}");
            2
        }
    }
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn run(a: Args) -> i32 {
    // Blocked before any thread starts, so that only sigwait takes them.
    let set = if a.listen.is_some() { Some(block_signals()) } else { None };
    let sim = match build(&a) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ndisim: {e}");
            return 2;
        }
    };
    eprintln!(
        "ndisim: loaded {} at {:#x} (preferred {:#x})",
        a.driver.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        sim.image_base(),
        sim.preferred_base()
    );
    for (i, n) in sim.adapter_names().iter().enumerate() {
        eprintln!("ndisim: adapter {n}: {:?}", sim.binding_state(AdapterId(i)));
    }
    let mut failed = false;
    if let Some(p) = &a.script {
        match std::fs::read_to_string(p) {
            Ok(text) => {
                if let Err(e) = run_script(&sim, &text) {
                    eprintln!("ndisim: script: {e}");
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("ndisim: {}: {e}", p.display());
                failed = true;
            }
        }
    }
    if let (Some(path), Some(set)) = (&a.listen, set) {
        match crate::bridge::serve(&sim, path) {
            Ok(bridge) => {
                eprintln!("ndisim: serving the control device on {}", path.display());
                let mut sig = 0;
                // SAFETY: waiting for one of the blocked signals.
                unsafe { libc::sigwait(&set, &mut sig) };
                drop(bridge);
            }
            Err(e) => {
                eprintln!("ndisim: cannot listen on {}: {e}", path.display());
                failed = true;
            }
        }
    }
    let report = sim.unload();
    println!("{report}");
    if failed {
        2
    } else if report.is_clean() {
        0
    } else {
        1
    }
}

fn adapter_arg<'a>(sim: &Sim, words: &'a [&'a str]) -> Result<(AdapterId, &'a [&'a str]), String> {
    if let Some(first) = words.first() {
        if let Some(id) = sim.adapter_id(first) {
            return Ok((id, &words[1..]));
        }
    }
    if sim.adapter_names().len() == 1 {
        Ok((AdapterId(0), words))
    } else {
        Err("name the adapter (there is more than one)".into())
    }
}

/// Runs a script against `sim`.
pub fn run_script(sim: &Sim, text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let err = |e: String| format!("line {}: {line}: {e}", n + 1);
        let (cmd, args) = (words[0], &words[1..]);
        match cmd {
            "sleep" => {
                let ms: u64 = args.first().and_then(|v| v.parse().ok()).ok_or_else(|| err("sleep MS".into()))?;
                std::thread::sleep(Duration::from_millis(ms));
            }
            _ => {
                let (a, rest) = adapter_arg(sim, args).map_err(err)?;
                let r = match cmd {
                    "pause" => sim.pause(a),
                    "unbind" => sim.unbind(a),
                    "bind" => sim.bind(a).and_then(|_| sim.restart(a, &RestartSpec::default())),
                    "restart" => {
                        let mut spec = RestartSpec::default();
                        for kv in rest {
                            match kv.split_once('=') {
                                Some(("mtu", v)) => spec.mtu = Some(v.parse().map_err(|_| err(format!("mtu={v}")))?),
                                Some(("filters", v)) => spec.filter_modules = v.split(',').map(String::from).collect(),
                                Some(("link", v)) => spec.link = Some(v == "up"),
                                _ => return Err(err(format!("unknown restart option {kv:?}"))),
                            }
                        }
                        sim.restart(a, &spec)
                    }
                    "link" => match rest.first() {
                        Some(&"up") => sim.link(a, true),
                        Some(&"down") => sim.link(a, false),
                        _ => return Err(err("link up|down".into())),
                    },
                    "power" => match rest.first() {
                        Some(&"d0") => sim.set_power(a, 1),
                        Some(&"d3") => sim.set_power(a, 4),
                        _ => return Err(err("power d0|d3".into())),
                    },
                    "hold-sends" => sim.hold_sends(a),
                    "release-sends" => sim.release_sends(a, None).map(|_| ()),
                    "hold-oids" => sim.hold_oids(a),
                    "release-oids" => sim.release_oids(a).map(|_| ()),
                    "expect" => {
                        let want = rest.first().ok_or_else(|| err("expect STATE".into()))?;
                        let got = sim.binding_state(a);
                        if !format!("{got:?}").eq_ignore_ascii_case(want) {
                            return Err(err(format!("the binding is {got:?}")));
                        }
                        Ok(())
                    }
                    "inject" => {
                        let mut o = InjectOpts::default();
                        let mut frames: Vec<Vec<u8>> = Vec::new();
                        let (mut count, mut len) = (1usize, 60usize);
                        let mut generated = false;
                        for w in rest {
                            match w.split_once('=') {
                                Some(("count", v)) => {
                                    count = v.parse().map_err(|_| err(format!("count={v}")))?;
                                    generated = true;
                                }
                                Some(("len", v)) => {
                                    len = v.parse().map_err(|_| err(format!("len={v}")))?;
                                    generated = true;
                                }
                                Some(("nbls", v)) => {
                                    o.nbls_per_indication = v.parse().map_err(|_| err(format!("nbls={v}")))?
                                }
                                Some(("nbs", v)) => o.nbs_per_nbl = v.parse().map_err(|_| err(format!("nbs={v}")))?,
                                Some((kind @ ("rsc" | "uro"), v)) => {
                                    o.coalesce = Some(crate::ndis::Coalesce::parse(kind, v).map_err(err)?)
                                }
                                // Per NBL, in turn: `loopbacks=1,0` marks
                                // every other NBL looped back.
                                Some(("loopbacks", v)) => {
                                    o.loopbacks = v
                                        .split(',')
                                        .map(|b| match b {
                                            "1" => Ok(true),
                                            "0" => Ok(false),
                                            _ => Err(err(format!("loopbacks={v}: expected 1s and 0s"))),
                                        })
                                        .collect::<Result<_, _>>()?
                                }
                                // Per NBL, in turn: `coalesces=rsc:4,-,uro:3:1200`.
                                Some(("coalesces", v)) => {
                                    o.coalesces = v
                                        .split(',')
                                        .map(|c| match c.split_once(':') {
                                            _ if c == "-" => Ok(None),
                                            Some((kind, v)) => {
                                                crate::ndis::Coalesce::parse(kind, v).map(Some).map_err(err)
                                            }
                                            None => Err(err(format!(
                                                "coalesces={v}: expected rsc:SEGS[:DUPACKS], uro:SEGS:SIZE or -"
                                            ))),
                                        })
                                        .collect::<Result<_, _>>()?
                                }
                                None if *w == "resources" => o.resources = true,
                                None if *w == "passive" => o.dispatch = false,
                                None if *w == "loopback" => o.loopback = true,
                                _ => frames.push(parse_hex(w).map_err(|e| err(format!("{w:?}: {e}")))?),
                            }
                        }
                        if generated || frames.is_empty() {
                            for i in 0..count {
                                let mut f = vec![0xFFu8; len.max(14)];
                                f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
                                f[12] = 0x88;
                                f[13] = 0xB5;
                                if f.len() > 14 {
                                    f[14] = i as u8;
                                }
                                frames.push(f);
                            }
                        }
                        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
                        sim.inject(a, &refs, &o).map(|_| ())
                    }
                    "settle" => {
                        sim.settle(a);
                        Ok(())
                    }
                    _ => return Err(err(format!("unknown command {cmd:?}"))),
                };
                let st = sim.binding_state(a);
                r.map_err(|e| err(format!("{e} (binding now {st:?})")))?;
                if st == BindingState::Unbound && cmd != "unbind" {
                    eprintln!("ndisim: note: adapter is unbound after {cmd}");
                }
            }
        }
    }
    Ok(())
}
