//! The real rawnic.sys under coverage guidance: each input is a short
//! program of user-mode actions on `\\.\RawNic` (CreateFile,
//! DeviceIoControl with well-formed-then-damaged or raw requests,
//! ReadFile, WriteFile, cancels, CloseHandle, a UMEM attached and
//! scribbled on) and of frames and NDIS events on the adapters; and of
//! the steps of `stress`: requests from several threads at once, racing
//! closes and cancels; requests through a file reference after the
//! handle's cleanup; refused allocations. It runs in a
//! fresh ndisim simulation of the driver (free-running threads;
//! `DFUZZ_DET=<seed>` makes it deterministic, and slower). Every handle
//! is then closed, every request must complete, and the driver must
//! unload with the verifier's report clean: a violation, a leak, a request
//! that never completes, a bug check or a fault in the driver is a crash.
//!
//! ndisim's own code is instrumented like any other crate, but the
//! driver's machine code is not: what it did comes back as the calls it
//! made into ndisim, counted by site (where in the image each returns to,
//! and which export: `ndisim::count_call_sites`), and as what it
//! answered. So each answer (the request's kind, its IOCTL code's class,
//! the NTSTATUS, the length bucket of the information) is hashed into
//! libFuzzer's extra counters, and an input that makes the driver answer
//! something new counts as new coverage; so do new lines of the driver's
//! debug output and new stack depths of its handlers (`fold_report`).
//!
//! The image: `RAWNIC_TEST_DRIVER`, else the newer of the workspace's
//! `target/kernel/images/rawnic.sys` and `target/package/rawnic.sys`.

#![no_main]

#[path = "driver_ioctls/requests.rs"]
mod requests;
#[path = "driver_ioctls/stress.rs"]
mod stress;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use ndisim::{AdapterId, FileRef, Handle, Identity, InjectOpts, IoResult, IoToken, RestartSpec, Sim, UserRegion};
use rawnic_proto::ring::{RingLayout, RingSetup, TxDesc};
use rawnic_proto::*;
use requests::{code_class, code_of, damage, frame, request};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Most steps of a program, and handle slots.
const MAX_STEPS: usize = 16;
const SLOTS: usize = 3;
/// Most requests left in flight at once (the rest are waited for).
const MAX_PENDING: usize = 8;

const STATUS_CANCELLED: i32 = 0xC000_0120_u32 as i32;
const STATUS_PENDING: i32 = 0x103;

/// The adapter sets a program runs over: a loopback (sends come back as
/// receives), one that completes opens, closes and OIDs later, a NIC
/// that drops what it is sent, and two bindings at once.
const ADAPTERS: &[&[&str]] =
    &[&["loopback"], &["loopback@open=pending,close=pending,oid=pending"], &["null"], &["loopback", "null"]];

fuzz_target!(|data: &[u8]| run(data));

/// The driver image, found once.
fn driver() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        // A bug check or a fault in the driver then raises SIGABRT, which
        // libFuzzer takes for a crash and saves the input of, instead of
        // ndisim's `_exit`, which would end the run without a word.
        ndisim::abort_on_stop(true);
        // The driver's calls into ndisim, counted by site: feedback from
        // inside the image. `DFUZZ_SITES=0` leaves it out (to compare).
        if std::env::var_os("DFUZZ_SITES").is_none_or(|v| v != "0") {
            ndisim::count_call_sites(&SITES);
        }
        let image = match std::env::var_os("RAWNIC_TEST_DRIVER") {
            Some(p) => PathBuf::from(p),
            None => {
                // The newer of the image `cargo make driver` builds and the
                // package's copy.
                let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
                ["target/kernel/images/rawnic.sys", "target/package/rawnic.sys"]
                    .iter()
                    .map(|p| root.join(p))
                    .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
                    .max()
                    .map(|(_, p)| p)
                    .expect("no rawnic.sys: build it (`cargo make driver`) or set RAWNIC_TEST_DRIVER")
            }
        };
        if std::env::var_os("DFUZZ_SYMBOLS").is_some() {
            return image;
        }
        without_map(&image)
    })
}

/// A copy of `image` with no linker map beside it. ndisim parses the map
/// of every image it loads, for symbols, and under the fuzzer's
/// instrumentation that parse was most of a run's time; the copy is
/// named by its contents, so every process of a campaign shares one.
/// (`DFUZZ_SYMBOLS=1` loads the image itself: slower, with the driver's
/// symbols in ndisim's messages, for a crash being reproduced.)
fn without_map(image: &Path) -> PathBuf {
    let bytes = std::fs::read(image).unwrap_or_else(|e| panic!("read {}: {e}", image.display()));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let dir = std::env::temp_dir().join(format!("rawnic-dfuzz-{h:016x}"));
    let copy = dir.join("rawnic.sys");
    if !copy.is_file() {
        std::fs::create_dir_all(&dir).expect("a directory for the image's copy");
        // Written aside and renamed: another process may be loading it.
        let tmp = dir.join(format!("rawnic.sys.{}", std::process::id()));
        std::fs::write(&tmp, &bytes).expect("write the image's copy");
        std::fs::rename(&tmp, &copy).expect("rename the image's copy");
    }
    copy
}

// ---------------------------------------------------------------------------
// Coverage of the driver's answers
// ---------------------------------------------------------------------------

const COUNTERS_LEN: usize = 1 << 14;

/// libFuzzer's extra counters: it reads every byte of this section after
/// each run as it reads its edge counters.
#[used]
#[unsafe(link_section = "__libfuzzer_extra_counters")]
static mut COUNTERS: [u8; COUNTERS_LEN] = [0; COUNTERS_LEN];

/// The driver's calls into ndisim by site (`ndisim::count_call_sites`),
/// extra counters too.
#[used]
#[unsafe(link_section = "__libfuzzer_extra_counters")]
static SITES: [std::sync::atomic::AtomicU8; 1 << 12] = [const { std::sync::atomic::AtomicU8::new(0) }; 1 << 12];

/// Counts one outcome (any tuple of small numbers, hashed).
fn bump(parts: &[u64]) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &p in parts {
        h = (h ^ p).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    let i = (h as usize) % COUNTERS_LEN;
    // SAFETY: `i` is in bounds; only the thread that runs the fuzz target
    // touches the counters during a run (the simulation's threads never
    // call `bump`), and libFuzzer reads them only between runs. Volatile,
    // so the stores are not optimised away (nothing in Rust reads them).
    unsafe {
        let c = (&raw mut COUNTERS).cast::<u8>().add(i);
        c.write_volatile(c.read_volatile().saturating_add(1));
    }
}

/// The information length, in powers of two (0, 1, 2-3, 4-7, ...).
fn bucket(n: usize) -> u64 {
    u64::from(usize::BITS - n.leading_zeros())
}

/// What kind of request an answer came to (the first word of its hash).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ioctl(u32),
    Read,
    Write,
    Create,
}

impl Kind {
    fn word(self) -> u64 {
        match self {
            Kind::Ioctl(c) => u64::from(code_class(c)),
            Kind::Read => 1 << 40,
            Kind::Write => 2 << 40,
            Kind::Create => 3 << 40,
        }
    }
}

// ---------------------------------------------------------------------------
// The program
// ---------------------------------------------------------------------------

/// A request in flight.
struct Pending {
    token: IoToken,
    kind: Kind,
    /// Its file's ring detaches when it was sent (`Run::detaches`).
    detaches: u64,
}

/// A file object (`IoToken::file`).
type FileId = (usize, u64);

/// A UMEM attached (or tried) on a slot.
struct Ring {
    layout: Option<RingLayout>,
    region: Arc<UserRegion>,
}

struct Run<'s> {
    s: &'s Sim,
    adapters: usize,
    /// The bindings' names, from LIST_BINDINGS (what OPEN wants).
    names: Vec<String>,
    slots: [Option<Handle>; SLOTS],
    rings: [Option<Ring>; SLOTS],
    pending: Vec<Pending>,
    /// References to files whose handles closed (`late`), kept until
    /// every request is done.
    refs: Vec<FileRef>,
    /// Per file, the events that may have detached its rings: a
    /// RING_DETACH sent, a RING_ATTACH cancelled (by its own cancel or a
    /// CancelIoEx of its handle) or ended (SUCCESS or CANCELLED). A RING_WAIT of rings that
    /// detach completes CANCELLED (`IOCTL_RAWNIC_RING_WAIT`): only one sent
    /// before such an event may.
    detaches: std::collections::HashMap<FileId, u64>,
    /// Step log, for the crash message.
    log: Vec<String>,
    /// `DFUZZ_TRACE`: each step also goes to stderr as it begins, with the
    /// time since this start (so a bug check's report follows the step
    /// that caused it).
    trace: Option<std::time::Instant>,
}

fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let set = ADAPTERS[usize::from(u.arbitrary::<u8>().unwrap_or(0)) % ADAPTERS.len()];
    // rawnic.sys's safety-net lines (a broken invariant it survived) are
    // failures, as in the tests and the explorer.
    let mut b = Sim::builder()
        .driver(driver())
        .watchdog(Duration::from_secs(5))
        .forbid_debug_lines(&[rawnic_proto::SAFETY_NET_LINE]);
    // Free-running threads by default: ndisim's deterministic scheduler
    // makes the same input run the same way, but about eight times slower
    // (each of the many switches of its baton is a futex handoff).
    if let Some(seed) = std::env::var("DFUZZ_DET").ok().and_then(|s| s.parse().ok()) {
        b = b.deterministic(seed);
    }
    for a in set {
        b = b.adapter(a);
    }
    let s = b.start().unwrap_or_else(|e| panic!("ndisim could not start rawnic.sys: {e}"));
    stress::SHORT.store(false, std::sync::atomic::Ordering::Relaxed);
    let names = list_names(&s);
    let mut r = Run {
        s: &s,
        adapters: set.len(),
        names,
        slots: Default::default(),
        rings: Default::default(),
        pending: Vec::new(),
        refs: Vec::new(),
        detaches: Default::default(),
        log: Vec::new(),
        trace: std::env::var_os("DFUZZ_TRACE").is_some().then(std::time::Instant::now),
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() || step(&mut r, &mut u).is_err() {
            break;
        }
    }
    r.finish();
    r.note("every handle closed, every request done".into());
    drop(r);
    // Taken before the unload: a clean unload after failed allocations,
    // or after requests that came after their file's cleanup, is a path
    // of its own.
    let failed = s.alloc_failures();
    let late = s.requests_after_cleanup();
    let report = s.unload();
    assert!(report.is_clean(), "the driver's unload report is not clean:\n{report}");
    fold_report(&report);
    bump(&[9 << 40, bucket(failed as usize), bucket(late as usize)]);
}

/// What the run's report tells of the paths the driver took, as coverage
/// too: its debug output (the bindings' state changes and the like,
/// digits dropped so that counts and addresses do not make every line
/// new), each handler's deepest stack sample (a depth stands for a chain
/// of driver calls down to an export), and its pool allocations.
fn fold_report(r: &ndisim::Report) {
    for line in &r.debug_output {
        let mut h: u64 = 0;
        for b in line.bytes().filter(|b| !b.is_ascii_digit()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        bump(&[6 << 40, h]);
    }
    for d in &r.stack.handlers {
        let name = d.handler.bytes().chain(d.innermost.bytes()).fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        bump(&[7 << 40, name, d.depth as u64]);
    }
    bump(&[8 << 40, bucket(r.pool.allocations as usize)]);
}

/// The bindings' names (a handle of its own, closed again).
fn list_names(s: &Sim) -> Vec<String> {
    let h = s.open().expect("open the control device");
    let r = h.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &requests::empty(), 64 * 1024);
    assert_eq!(r.status, 0, "LIST_BINDINGS at start: {:?}", NtStatus(r.status));
    let names =
        ListReply::new_checked(&r.data).expect("a well-formed list").entries().map(|e| e.name.to_string()).collect();
    h.close();
    names
}

type Res = libfuzzer_sys::arbitrary::Result<()>;

fn step(r: &mut Run<'_>, u: &mut Unstructured<'_>) -> Res {
    let op = u.arbitrary::<u8>()?;
    let slot = usize::from(op >> 4) % SLOTS;
    match op & 0x0F {
        0 | 1 => r.create(u, slot),
        2..=6 => r.ioctl(u, slot),
        7 => r.read(u, slot),
        8 => r.write(u, slot),
        9 => r.cancel(u, slot),
        10 => r.close(u, slot),
        11 => r.inject(u),
        12 => r.attach(u, slot),
        13 => r.poke(u, slot),
        // The sleep's high nibble was unused (it takes no slot): most of
        // it now selects the steps that came later, so the programs
        // written before (the seeds: high nibble 0) read as they did.
        14 if op >> 4 >= 12 => r.late(u, slot),
        14 if op >> 4 >= 9 => r.short(u),
        14 if op >> 4 >= 4 => r.race(u),
        14 => {
            // Real time (the threads run free): short, it is most of a
            // run's time otherwise.
            let ms = *u.choose(&[0u64, 1, 2, 5, 20])?;
            r.note(format!("sleep {ms} ms"));
            r.s.sleep(Duration::from_millis(ms));
            r.reap();
            Ok(())
        }
        _ => r.pnp(u),
    }
}

impl Run<'_> {
    fn note(&mut self, line: String) {
        if let Some(t0) = self.trace {
            eprintln!("{:>10.3?} {line}", t0.elapsed());
        }
        self.log.push(line);
    }

    /// The handle of `slot`, opened first if it is not.
    fn handle(&mut self, slot: usize) -> Option<&Handle> {
        if self.slots[slot].is_none() {
            match self.s.open() {
                Ok(h) => self.slots[slot] = Some(h),
                // Under a shortage the create may fail: an answer too,
                // counted as a create step's (the step then has no handle).
                Err(status) => {
                    bump(&[Kind::Create.word(), 0xC000_0000, status as u32 as u64]);
                    note_outcome(Kind::Create, status);
                }
            }
        }
        self.slots[slot].as_ref()
    }

    fn create(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let access = *u.choose(&[0xC000_0000u32, 0x8000_0000, 0x4000_0000, 0, 0x0012_0089])?;
        let who = if u.ratio(1, 4)? { Identity::User } else { Identity::Admin };
        self.note(format!("create slot {slot} access {access:#x} {who:?}"));
        let res = self.s.open_path(USER_PATH, access, who);
        let status = res.as_ref().err().copied().unwrap_or(0);
        bump(&[Kind::Create.word(), u64::from(access), status as u32 as u64]);
        note_outcome(Kind::Create, status);
        if let Ok(h) = res {
            // A handle opened over another: the old one closes first.
            if let Some(old) = self.slots[slot].replace(h) {
                old.close();
            }
        }
        Ok(())
    }

    fn ioctl(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let code = code_of(u)?;
        let (mut input, right) = request(u, code, &self.names)?;
        damage(u, &mut input)?;
        let out = match u.int_in_range(0..=5)? {
            0..=2 => right,
            3 => right.saturating_sub(1),
            4 => *u.choose(&[0usize, 4, 16, 65536])?,
            _ => usize::from(u.arbitrary::<u16>()?),
        };
        self.note(format!("ioctl slot {slot} {code:#x} in {} out {out}", input.len()));
        if self.trace.is_some() {
            // The bytes too, for a regression test to send the same.
            eprintln!("{:>10} input {}", "", input.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        let Some(h) = self.handle(slot) else { return Ok(()) };
        let file = h.file();
        if code_class(code) == IOCTL_RAWNIC_RING_DETACH {
            // Counted before it is sent: it may act before it answers.
            if let Some(f) = file {
                *self.detaches.entry(f).or_default() += 1;
            }
        }
        let h = self.slots[slot].as_ref().expect("opened above");
        let t = h.ioctl_async(code, &input, out);
        self.submitted(t, Kind::Ioctl(code));
        Ok(())
    }

    fn read(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let len = *u.choose(&[0usize, 1, 20, 64, 1514, 65536])?;
        self.note(format!("read slot {slot} {len}"));
        let Some(h) = self.handle(slot) else { return Ok(()) };
        let t = h.read_async(len);
        self.submitted(t, Kind::Read);
        Ok(())
    }

    fn write(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let mut f = frame(u)?;
        damage(u, &mut f)?;
        self.note(format!("write slot {slot} {} bytes", f.len()));
        let Some(h) = self.handle(slot) else { return Ok(()) };
        let t = h.write_async(&f);
        self.submitted(t, Kind::Write);
        Ok(())
    }

    /// A request sent: its answer counted if it came at once, else kept in
    /// flight (the oldest waited for when too many are).
    fn submitted(&mut self, t: Result<IoToken, i32>, kind: Kind) {
        match t {
            Err(status) => {
                bump(&[kind.word(), 0xE, status as u32 as u64]);
                note_outcome(kind, status);
            }
            Ok(token) => {
                let detaches = self.detaches_of(token.file());
                let p = Pending { token, kind, detaches };
                // Let the simulation's threads run a little (virtual time):
                // a request the driver completes from a worker is done.
                if let Some(res) = p.token.wait_for(Duration::from_millis(1)) {
                    self.answer(&p, &res);
                } else {
                    if self.pending.len() >= MAX_PENDING {
                        let old = self.pending.remove(0);
                        self.cancelling(&old);
                        old.token.cancel();
                        self.settle(old);
                    }
                    self.pending.push(p);
                }
            }
        }
    }

    /// The ring detaches of `file` so far (`detaches`).
    fn detaches_of(&self, file: FileId) -> u64 {
        self.detaches.get(&file).copied().unwrap_or(0)
    }

    /// `p` is about to be cancelled: an attach's cancel detaches its rings.
    fn cancelling(&mut self, p: &Pending) {
        if matches!(p.kind, Kind::Ioctl(c) if code_class(c) == IOCTL_RAWNIC_RING_ATTACH) {
            *self.detaches.entry(p.token.file()).or_default() += 1;
        }
    }

    /// Checks and counts `p`'s answer (`answered`), after noting an
    /// attach's end (its rings are gone): SUCCESS after a detach,
    /// CANCELLED after a cancel or close; any other status refused the
    /// attach and left the file's rings, if any, as they were.
    fn answer(&mut self, p: &Pending, res: &IoResult) {
        let ended = matches!(res.status, 0 | STATUS_CANCELLED);
        if ended && matches!(p.kind, Kind::Ioctl(c) if code_class(c) == IOCTL_RAWNIC_RING_ATTACH) {
            *self.detaches.entry(p.token.file()).or_default() += 1;
        }
        let detached = self.detaches_of(p.token.file()) != p.detaches;
        answered(p, res, detached, &self.log);
    }

    /// Waits for `p` (at most the watchdog time).
    fn settle(&mut self, p: Pending) {
        match p.token.wait() {
            Some(res) => self.answer(&p, &res),
            None => panic!("{:?} never completed (cancelled: {})\n{}", p.kind, p.token.was_cancelled(), self.trail()),
        }
    }

    /// Counts the requests that completed since.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            if let Some(res) = self.pending[i].token.try_result() {
                let p = self.pending.remove(i);
                self.answer(&p, &res);
            } else {
                i += 1;
            }
        }
    }

    fn cancel(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        if u.ratio(1, 4)? {
            self.note(format!("cancel_io slot {slot}"));
            if let Some(h) = &self.slots[slot] {
                // It cancels an attach of the handle's too.
                if let Some(f) = h.file() {
                    *self.detaches.entry(f).or_default() += 1;
                }
                bump(&[4 << 40, h.cancel_io() as u64]);
            }
        } else if !self.pending.is_empty() {
            let i = u.choose_index(self.pending.len())?;
            self.note(format!("cancel pending {i} ({:?})", self.pending[i].kind));
            let p = self.pending.remove(i);
            self.cancelling(&p);
            bump(&[5 << 40, p.kind.word(), u64::from(p.token.cancel())]);
            self.settle(p);
        }
        self.reap();
        Ok(())
    }

    fn close(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let abandon = u.ratio(1, 3)?;
        self.note(format!("close slot {slot} abandon {abandon}"));
        if let Some(h) = self.slots[slot].take() {
            if abandon { h.abandon() } else { h.close() }
        }
        self.rings[slot] = None;
        self.reap();
        Ok(())
    }

    fn inject(&mut self, u: &mut Unstructured<'_>) -> Res {
        let a = AdapterId(u.choose_index(self.adapters)?);
        let n = u.int_in_range(1..=6)?;
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            frames.push(frame(u)?);
        }
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let opts = InjectOpts {
            resources: u.ratio(1, 4)?,
            nbls_per_indication: u.int_in_range(1..=4)?,
            nbs_per_nbl: u.int_in_range(1..=3)?,
            dispatch: !u.ratio(1, 4)?,
            tci: if u.ratio(1, 4)? { Some(u.arbitrary()?) } else { None },
            ..Default::default()
        };
        self.note(format!("inject {} frames on {a:?} {opts:?}", refs.len()));
        // An adapter that is not running refuses: nothing to check.
        let _ = self.s.inject(a, &refs, &opts);
        self.reap();
        Ok(())
    }

    /// RING_ATTACH with a UMEM: a sane setup (sometimes damaged) and a
    /// region of its size (sometimes not).
    fn attach(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let ring = |u: &mut Unstructured<'_>| -> libfuzzer_sys::arbitrary::Result<u32> {
            Ok(*u.choose(&[ring::MIN_RING, 16, 64, 256])?)
        };
        let setup = RingSetup {
            frame_size: *u.choose(&ring::FRAME_SIZES)?,
            frame_count: u.int_in_range(1..=64)?,
            fill: ring(u)?,
            rx: ring(u)?,
            tx: ring(u)?,
            completion: ring(u)?,
        };
        let mut input = vec![0u8; RingSetup::LEN];
        setup.emit(&mut input).expect("room for a ring setup");
        damage(u, &mut input)?;
        let layout = RingLayout::new(&setup).ok();
        let right = layout.map_or(ring::PAGE, |l| l.total);
        let len = match u.int_in_range(0..=7)? {
            0 => right + ring::PAGE,
            1 => right.saturating_sub(ring::PAGE).max(ring::PAGE),
            _ => right,
        };
        let skip = if u.ratio(1, 8)? { *u.choose(&[1usize, 8, ring::PAGE])? } else { 0 };
        self.note(format!("attach slot {slot} {setup:?} in {} umem {len} skip {skip}", input.len()));
        let Ok(region) = UserRegion::new(len) else { return Ok(()) };
        let Some(h) = self.handle(slot) else { return Ok(()) };
        let t = h.ioctl_region_at_async(IOCTL_RAWNIC_RING_ATTACH, &input, region.clone(), skip);
        self.rings[slot] = Some(Ring { layout, region });
        self.submitted(t, Kind::Ioctl(IOCTL_RAWNIC_RING_ATTACH));
        Ok(())
    }

    /// Writes the UMEM as its user may: an index, a descriptor, any word.
    fn poke(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let Some((layout, m)) = self.rings[slot].as_ref().map(|r| (r.layout, r.region.clone())) else {
            return Ok(());
        };
        let what = u.int_in_range(0..=6)?;
        let v: u32 = if u.ratio(1, 2)? { u.int_in_range(0..=16)? } else { u.arbitrary()? };
        self.note(format!("poke slot {slot} field {what} value {v:#x}"));
        match (layout, what) {
            (Some(l), 0) => m.store_u32(l.fill.producer(), v),
            (Some(l), 1) => m.store_u32(l.tx.producer(), v),
            (Some(l), 2) => m.store_u32(l.rx.consumer(), v),
            (Some(l), 3) => m.store_u32(l.completion.consumer(), v),
            (Some(l), 4) => {
                // A fill entry: a frame's offset, or any.
                let addr = if u.ratio(3, 4)? {
                    (l.frames + (v % l.frame_count.max(1)) as usize * l.frame_size as usize) as u64
                } else {
                    u.arbitrary()?
                };
                let i = u.arbitrary()?;
                m.store_u64(l.fill.entry_at(i), addr);
            }
            (Some(l), 5) => {
                let d = TxDesc {
                    addr: (l.frames + (v % l.frame_count.max(1)) as usize * l.frame_size as usize) as u64
                        + u64::from(u.int_in_range(0u8..=2)?) * 2,
                    len: *u.choose(&[0u32, 14, 60, 1514, 2048, 4097])?,
                    flags: if u.ratio(1, 8)? { 1 } else { 0 },
                };
                let i = u.arbitrary()?;
                m.write(l.tx.entry_at(i), &d.to_bytes());
            }
            _ => {
                let off = (u.arbitrary::<u32>()? as usize % m.len()) & !3;
                m.store_u32(off, v);
            }
        }
        Ok(())
    }

    /// An NDIS event on an adapter: link down and up, or a pause and a
    /// restart.
    fn pnp(&mut self, u: &mut Unstructured<'_>) -> Res {
        let a = AdapterId(u.choose_index(self.adapters)?);
        let kind = u.int_in_range(0..=2)?;
        self.note(format!("pnp {kind} on {a:?}"));
        // Refused when the binding is not in a state for it: nothing to check.
        let _ = match kind {
            0 => self.s.link(a, false),
            1 => self.s.link(a, true),
            _ => self.s.pause(a).and_then(|()| self.s.restart(a, &RestartSpec::default())),
        };
        self.reap();
        Ok(())
    }

    /// Closes every handle and waits for every request: all must complete.
    fn finish(&mut self) {
        self.plenty();
        for slot in 0..SLOTS {
            if let Some(h) = self.slots[slot].take() {
                h.close();
            }
        }
        for p in std::mem::take(&mut self.pending) {
            self.settle(p);
        }
        // Their files' IRP_MJ_CLOSE, now that no request holds them.
        self.refs.clear();
        self.rings = Default::default();
    }

    fn trail(&self) -> String {
        self.log.iter().enumerate().map(|(i, l)| format!("  {i}: {l}\n")).collect()
    }
}

/// With `DFUZZ_OUTCOMES` set, prints each distinct (request, NTSTATUS)
/// the first time this process sees it, as `outcome <request> <status>`:
/// run over a corpus (`-runs=0`), what the driver was made to answer.
fn note_outcome(kind: Kind, status: i32) {
    type Seen = Mutex<HashSet<(u64, i32)>>;
    static SEEN: OnceLock<Option<Seen>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| std::env::var_os("DFUZZ_OUTCOMES").map(|_| Mutex::new(HashSet::new())));
    if let Some(seen) = seen
        && seen.lock().unwrap_or_else(|e| e.into_inner()).insert((kind.word(), status))
    {
        let kind = match kind {
            Kind::Ioctl(c) => format!("Ioctl({:#010x})", code_class(c)),
            k => format!("{k:?}"),
        };
        eprintln!("outcome {kind} {:#010x}", status as u32);
    }
}

/// Counts an answer, and checks it: a request nobody cancelled (and
/// whose handle did not close) is not completed with STATUS_CANCELLED,
/// but a RING_WAIT of rings that may have detached since it was sent
/// (`detached`).
fn answered(p: &Pending, res: &IoResult, detached: bool, log: &[String]) {
    bump(&[p.kind.word(), res.status as u32 as u64, bucket(res.information)]);
    if stress::SHORT.load(std::sync::atomic::Ordering::Relaxed) {
        bump(&[10 << 40, p.kind.word(), res.status as u32 as u64]);
    }
    note_outcome(p.kind, res.status);
    let ring_wait = matches!(p.kind, Kind::Ioctl(c) if code_class(c) == IOCTL_RAWNIC_RING_WAIT);
    if res.status == STATUS_CANCELLED && !p.token.may_be_cancelled() && !(ring_wait && detached) {
        panic!("{:?} completed with STATUS_CANCELLED though nothing cancelled it\n{}", p.kind, log.join("\n"));
    }
    assert_ne!(res.status, STATUS_PENDING, "{:?} completed with STATUS_PENDING", p.kind);
}
