//! A fake rawnic behind a device-bridge socket, for tests (feature `fake`,
//! Unix only). It speaks `rawnic_proto::bridge` like ndisim and answers every IOCTL
//! with the interface's formats, parsed and emitted by `rawnic_proto` — but the
//! "driver" is a small model, not rawnic.sys: the tests that matter for the
//! driver run the real one in ndisim. This one exists to test the client's
//! transport (tags, pending requests, cancel, close) and rawnicctl.
//!
//! Adapters are virtual: frames a handle sends are recorded
//! ([`FakeDriver::sent`]); frames reach handles through
//! [`FakeDriver::inject`], and an ARP responder can answer ARP requests
//! sent to an address ([`FakeDriver::answer_arp`]).
//!
//! This module holds the fake's public face (`FakeDriver`, its adapters and
//! what it records) and its model of the driver's state; `serve` reads
//! each connection's requests, `ioctl` answers the IOCTLs, and `frames`
//! moves frames between handles and completes pending reads and event
//! waits.

mod frames;
mod ioctl;
mod serve;

use crate::ether::{self, MacAddr};
use frames::{deliver, pump_events};
use rawnic_proto::bridge::CompletionHeader;
use rawnic_proto::*;
use serve::serve;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Ipv4Addr, Shutdown};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

/// A virtual adapter of the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAdapter {
    pub name: String,
    pub description: String,
    pub mac: MacAddr,
    pub mtu: u32,
    pub link_up: bool,
    /// Bits per second.
    pub speed: u64,
    /// The packet filters the adapter supports (a handle asking for more
    /// gets less, or a strict open fails).
    pub supported_filters: PacketFilter,
}

impl FakeAdapter {
    pub fn new(name: &str, mac: MacAddr) -> Self {
        FakeAdapter {
            name: name.into(),
            description: format!("fake adapter {name}"),
            mac,
            mtu: 1500,
            link_up: true,
            speed: 1_000_000_000,
            supported_filters: filter::ALL,
        }
    }
}

/// One request the fake received, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    /// Which connection (1, 2, ... in accept order).
    pub conn: u64,
    pub op: u8,
    pub tag: u64,
    pub code: u32,
    pub out_len: u32,
}

/// A frame a handle sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub binding_id: u32,
    pub data: Vec<u8>,
    pub tci: Option<u16>,
    /// `true` for WriteFile, `false` for SEND_BATCH.
    pub by_write: bool,
}

struct Conn {
    writer: Mutex<UnixStream>,
}

impl Conn {
    fn complete(&self, tag: u64, status: NtStatus, information: u64, data: &[u8]) {
        let h = CompletionHeader { tag, status: status.0, information, data_len: data.len() as u32 };
        let mut msg = vec![0u8; CompletionHeader::LEN + data.len()];
        h.emit(&mut msg).expect("sized");
        msg[CompletionHeader::LEN..].copy_from_slice(data);
        // The client may be gone; then there is no one to tell.
        let _ = lock(&self.writer).write_all(&msg);
    }
}

#[derive(Default)]
struct Handle {
    binding: Option<u32>,
    ethertypes: Vec<u16>,
    packet_filter: PacketFilter,
    requested_filter: PacketFilter,
    local_sends: LocalSends,
    snaplen: u32,
    /// Its capture program (SET_PROGRAM), checked by the driver's rules.
    program: Option<rawnic_logic::bpf::Program>,
    queue_frames: u32,
    rx: VecDeque<(FrameHeader, Vec<u8>)>,
    events: VecDeque<EventRecord>,
    event_seq: u64,
    reads: VecDeque<(u64, u32)>,
    event_waits: VecDeque<u64>,
    bind_waits: VecDeque<u64>,
    counters: Counters,
}

struct Adapter {
    info: FakeAdapter,
    id: u32,
    counters: Counters,
    lookahead: u32,
    multicast: Vec<u8>,
}

#[derive(Default)]
struct State {
    adapters: Vec<Adapter>,
    handles: HashMap<u64, (Arc<Conn>, Handle)>,
    streams: Vec<UnixStream>,
    log: Vec<Logged>,
    sent: Vec<Sent>,
    /// Per SEND_BATCH, how many frames to accept at most, or the status to
    /// fail it with (then: accept all).
    send_plan: VecDeque<Result<u32, NtStatus>>,
    arp: Vec<(u32, Ipv4Addr, MacAddr)>,
    binds_complete: bool,
    deny_create: bool,
    max_batch: u32,
    closed: u64,
    /// The `needed` the next LIST_BINDINGS claims, with BUFFER_OVERFLOW,
    /// whatever the buffer (a driver gone wrong).
    list_claim: Option<u32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    next_conn: AtomicU64,
}

/// The fake, listening on a socket in the temporary directory until it is
/// dropped.
pub struct FakeDriver {
    shared: Arc<Shared>,
    path: PathBuf,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FakeDriver({})", self.path.display())
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

static INSTANCE: AtomicU64 = AtomicU64::new(0);

impl FakeDriver {
    /// Starts a fake with these adapters (binding IDs 1, 2, ...), binds
    /// complete.
    pub fn start(adapters: Vec<FakeAdapter>) -> io::Result<FakeDriver> {
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rawnic-fake-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        let state = State {
            adapters: adapters
                .into_iter()
                .enumerate()
                .map(|(i, info)| Adapter {
                    info,
                    id: i as u32 + 1,
                    counters: Counters::default(),
                    lookahead: 128,
                    multicast: Vec::new(),
                })
                .collect(),
            binds_complete: true,
            max_batch: MAX_BATCH,
            ..State::default()
        };
        let shared =
            Arc::new(Shared { state: Mutex::new(state), stop: AtomicBool::new(false), next_conn: AtomicU64::new(1) });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new().name("fake-accept".into()).spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s2 = Arc::clone(&s);
                let _ = std::thread::Builder::new().name("fake-conn".into()).spawn(move || serve(&s2, stream));
            }
        })?;
        Ok(FakeDriver { shared, path, acceptor: Some(acceptor) })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// `unix:PATH`, what `Device::open` and `--device` take.
    pub fn device_path(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Every request received so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    /// Every frame sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.state().sent.clone()
    }

    /// Handles closed (CLOSE received) so far.
    pub fn closed(&self) -> u64 {
        self.state().closed
    }

    /// Reads, event waits and bind waits pending now, over all handles.
    pub fn pending(&self) -> usize {
        self.state().handles.values().map(|(_, h)| h.reads.len() + h.event_waits.len() + h.bind_waits.len()).sum()
    }

    /// The next SEND_BATCH requests accept at most these many frames each.
    pub fn plan_sends(&self, caps: &[u32]) {
        self.state().send_plan.extend(caps.iter().map(|c| Ok(*c)));
    }

    /// The next SEND_BATCH (after those planned) fails with `status`.
    pub fn fail_send(&self, status: NtStatus) {
        self.state().send_plan.push_back(Err(status));
    }

    /// The `max_batch` GET_VERSION reports.
    pub fn set_max_batch(&self, n: u32) {
        self.state().max_batch = n;
    }

    /// The next LIST_BINDINGS replies BUFFER_OVERFLOW, claiming the list
    /// needs `needed` bytes.
    pub fn claim_list_needs(&self, needed: u32) {
        self.state().list_claim = Some(needed);
    }

    /// Refuses CREATE with STATUS_ACCESS_DENIED.
    pub fn deny_create(&self, deny: bool) {
        self.state().deny_create = deny;
    }

    /// Makes WAIT_BINDS_COMPLETE pend until [`complete_binds`](Self::complete_binds).
    pub fn hold_binds(&self) {
        self.state().binds_complete = false;
    }

    pub fn complete_binds(&self) {
        let mut st = self.state();
        st.binds_complete = true;
        let n = st.adapters.len() as u32;
        for (conn, h) in st.handles.values_mut() {
            while let Some(tag) = h.bind_waits.pop_front() {
                let mut b = [0u8; BindsCompleteReply::LEN];
                BindsCompleteReply { bindings: n }.emit(&mut b).expect("sized");
                conn.complete(tag, NtStatus::SUCCESS, b.len() as u64, &b);
            }
        }
    }

    /// Answers ARP requests for `ip` sent on binding `binding_id`, from `mac`.
    pub fn answer_arp(&self, binding_id: u32, ip: Ipv4Addr, mac: MacAddr) {
        self.state().arp.push((binding_id, ip, mac));
    }

    /// Delivers a received frame on binding `binding_id` to the handles
    /// whose filters take it. `tci` is a tag the "NIC" stripped (as NDIS
    /// says it: `Some(0)` is no tag); a tag inline in `frame` is reported
    /// too, as the driver does.
    pub fn inject(&self, binding_id: u32, frame: &[u8], tci: Option<u16>) {
        deliver(&mut self.state(), binding_id, frame, tci, None);
    }

    /// Queues an event for every handle (`seq` is filled in per handle).
    pub fn raise_event(&self, kind: u16, binding_id: u32, speed: u64, mtu: u32) {
        let mut st = self.state();
        for (conn, h) in st.handles.values_mut() {
            h.event_seq += 1;
            let ev = EventRecord { kind, binding_id, seq: h.event_seq, speed, mtu, ..EventRecord::default() };
            h.events.push_back(ev);
            pump_events(conn, h);
        }
    }
}

impl Drop for FakeDriver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor.
        let _ = UnixStream::connect(&self.path);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for s in self.state().streams.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A frame for tests: broadcast from `src` with EtherType `ty` and payload.
pub fn test_frame(src: MacAddr, ty: u16, payload: &[u8]) -> Vec<u8> {
    ether::build_frame(MacAddr::BROADCAST, src, ty, payload)
}
