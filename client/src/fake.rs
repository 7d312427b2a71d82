//! A fake rawnic behind a device-bridge socket, for tests (feature `fake`,
//! Unix only). It speaks `proto::bridge` like ndisim and answers every IOCTL
//! with the interface's formats, parsed and emitted by `proto` — but the
//! "driver" is a small model, not rawnic.sys: the tests that matter for the
//! driver run the real one in ndisim. This one exists to test the client's
//! transport (tags, pending requests, cancel, close) and rawnicctl.
//!
//! Adapters are virtual: frames a handle sends are recorded
//! ([`FakeDriver::sent`]); frames reach handles through
//! [`FakeDriver::inject`], and an ARP responder can answer ARP requests
//! sent to an address ([`FakeDriver::answer_arp`]).

use crate::ether::{self, Arp, MacAddr};
use crate::oid;
use proto::bridge::{op, CompletionHeader, RequestHeader};
use proto::*;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
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
    pub supported_filters: u32,
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
    packet_filter: u32,
    requested_filter: u32,
    local_sends: LocalSends,
    snaplen: u32,
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

fn classify(adapter_mac: MacAddr, dst: &[u8]) -> u32 {
    if dst == [0xff; 6] {
        filter::BROADCAST
    } else if dst[0] & 1 != 0 {
        filter::MULTICAST | filter::ALL_MULTICAST
    } else if dst == adapter_mac.0 {
        filter::DIRECTED
    } else {
        0
    }
}

/// Hands `frame` to the handles of `binding_id` that take it: from the
/// wire (`sender` None), or sent by handle `sender` (as the driver does:
/// marked outbound, to the handles whose local-sends mode takes it).
fn deliver(st: &mut State, binding_id: u32, frame: &[u8], tci: Option<u16>, sender: Option<u64>) {
    if frame.len() < ETH_HEADER {
        return;
    }
    let Some(adapter) = st.adapters.iter_mut().find(|a| a.id == binding_id) else { return };
    if sender.is_none() {
        adapter.counters.rx_frames += 1;
        adapter.counters.rx_bytes += frame.len() as u64;
    }
    let class = classify(adapter.info.mac, &frame[0..6]);
    let ty = u16::from_be_bytes([frame[12], frame[13]]);
    // As the driver: a tagged frame's inner EtherType counts too.
    let inner =
        (matches!(ty, 0x8100 | 0x88a8) && frame.len() >= 18).then(|| u16::from_be_bytes([frame[16], frame[17]]));
    for (&hid, (conn, h)) in st.handles.iter_mut() {
        if h.binding != Some(binding_id) || h.packet_filter == 0 {
            continue;
        }
        if sender.is_some_and(|s| !h.local_sends.wants(s == hid)) {
            continue;
        }
        if h.packet_filter & filter::PROMISCUOUS == 0 && h.packet_filter & class == 0 {
            continue;
        }
        if !h.ethertypes.is_empty() && !h.ethertypes.contains(&ty) && !inner.is_some_and(|t| h.ethertypes.contains(&t))
        {
            continue;
        }
        if h.rx.len() >= h.queue_frames as usize {
            h.counters.rx_queue_drops += 1;
            continue;
        }
        let keep = if h.snaplen == 0 { frame.len() } else { frame.len().min(h.snaplen as usize) };
        let mut flags = 0;
        if keep < frame.len() {
            flags |= frame_flags::TRUNCATED;
            h.counters.rx_truncated += 1;
        }
        if sender.is_some() {
            flags |= frame_flags::OUTBOUND;
        }
        // As the driver: a stripped tag, else one inline (even TCI 0).
        let (tag_flags, tci) = match (tci.filter(|&t| t != 0), proto::inline_tci(frame)) {
            (Some(t), _) => (frame_flags::VLAN | frame_flags::TAGGED, t),
            (None, Some(t)) => (frame_flags::TAGGED, t),
            (None, None) => (0, 0),
        };
        flags |= tag_flags;
        let hdr = FrameHeader { caplen: keep as u32, origlen: frame.len() as u32, timestamp_ns: now_ns(), flags, tci };
        h.counters.rx_frames += 1;
        h.counters.rx_bytes += frame.len() as u64;
        h.rx.push_back((hdr, frame[..keep].to_vec()));
        pump_reads(conn, h);
    }
}

/// Completes pending reads while frames are queued.
fn pump_reads(conn: &Conn, h: &mut Handle) {
    while !h.rx.is_empty() {
        let Some((tag, out_len)) = h.reads.pop_front() else { return };
        let out = take_records(h, out_len as usize);
        conn.complete(tag, NtStatus::SUCCESS, out.len() as u64, &out);
    }
}

/// As many whole records as fit `room`; a first record that does not fit
/// is cut to fit.
fn take_records(h: &mut Handle, room: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((hdr, data)) = h.rx.front() {
        let len = FrameHeader::record_len(data.len());
        if out.len() + len > room {
            if out.is_empty() {
                let keep = room - FrameHeader::LEN;
                let hdr = FrameHeader { caplen: keep as u32, flags: hdr.flags | frame_flags::TRUNCATED, ..*hdr };
                out.extend_from_slice(&hdr.to_bytes());
                out.extend_from_slice(&data[..keep]);
                h.rx.pop_front();
            }
            break;
        }
        out.extend_from_slice(&hdr.to_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + len - FrameHeader::LEN - data.len(), 0);
        h.rx.pop_front();
    }
    out
}

fn pump_events(conn: &Conn, h: &mut Handle) {
    while !h.events.is_empty() {
        let Some(tag) = h.event_waits.pop_front() else { return };
        let ev = h.events.pop_front().expect("not empty");
        let mut b = [0u8; EventRecord::LEN];
        ev.emit(&mut b).expect("sized");
        conn.complete(tag, NtStatus::SUCCESS, b.len() as u64, &b);
    }
}

fn serve(shared: &Shared, stream: UnixStream) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (Ok(writer), Ok(keep)) = (stream.try_clone(), stream.try_clone()) else { return };
    let conn = Arc::new(Conn { writer: Mutex::new(writer) });
    lock(&shared.state).streams.push(keep);
    let mut stream = stream;
    loop {
        let mut hdr = [0u8; RequestHeader::LEN];
        if stream.read_exact(&mut hdr).is_err() {
            break;
        }
        let Ok(h) = RequestHeader::parse(&hdr) else { break };
        let mut input = vec![0u8; h.in_len as usize];
        if stream.read_exact(&mut input).is_err() {
            break;
        }
        let mut st = lock(&shared.state);
        st.log.push(Logged { conn: id, op: h.op, tag: h.tag, code: h.code, out_len: h.out_len });
        match h.op {
            op::CREATE => {
                if st.deny_create {
                    conn.complete(h.tag, NtStatus::ACCESS_DENIED, 0, &[]);
                    continue;
                }
                st.handles.insert(id, (Arc::clone(&conn), Handle::default()));
                conn.complete(h.tag, NtStatus::SUCCESS, 0, &[]);
            }
            // The fake host names no interface.
            op::ALIAS => conn.complete(h.tag, NtStatus::OBJECT_NAME_NOT_FOUND, 0, &[]),
            op::CLOSE => {
                if let Some((conn, h)) = st.handles.remove(&id) {
                    for tag in h
                        .reads
                        .iter()
                        .map(|r| r.0)
                        .chain(h.event_waits.iter().copied())
                        .chain(h.bind_waits.iter().copied())
                    {
                        conn.complete(tag, NtStatus::CANCELLED, 0, &[]);
                    }
                }
                st.closed += 1;
                break;
            }
            op::CANCEL => {
                if let Some((conn, hd)) = st.handles.get_mut(&id) {
                    let tag = h.tag;
                    let before = hd.reads.len() + hd.event_waits.len() + hd.bind_waits.len();
                    hd.reads.retain(|r| r.0 != tag);
                    hd.event_waits.retain(|t| *t != tag);
                    hd.bind_waits.retain(|t| *t != tag);
                    if hd.reads.len() + hd.event_waits.len() + hd.bind_waits.len() != before {
                        conn.complete(tag, NtStatus::CANCELLED, 0, &[]);
                    }
                }
            }
            op::READ | op::WRITE | op::IOCTL => {
                if !st.handles.contains_key(&id) {
                    conn.complete(h.tag, NtStatus::INVALID_DEVICE_STATE, 0, &[]);
                    continue;
                }
                request(&mut st, id, &h, &input);
            }
            _ => break,
        }
    }
    let _ = conn.writer.lock().map(|w| w.shutdown(Shutdown::Both));
}

fn request(st: &mut State, id: u64, h: &RequestHeader, input: &[u8]) {
    let (conn, _) = st.handles.get(&id).expect("checked");
    let conn = Arc::clone(conn);
    let out_len = h.out_len as usize;
    let reply = |status: NtStatus, data: &[u8]| {
        if data.len() > out_len {
            conn.complete(h.tag, NtStatus::BUFFER_TOO_SMALL, 0, &[]);
        } else {
            conn.complete(h.tag, status, data.len() as u64, data);
        }
    };
    let fail = |status: NtStatus| conn.complete(h.tag, status, 0, &[]);
    match h.op {
        op::READ => {
            let (_, hd) = st.handles.get_mut(&id).expect("checked");
            if hd.binding.is_none() {
                return fail(NtStatus::INVALID_DEVICE_STATE);
            }
            if out_len < FrameHeader::LEN + ETH_HEADER {
                return fail(NtStatus::BUFFER_TOO_SMALL);
            }
            hd.reads.push_back((h.tag, h.out_len));
            pump_reads(&conn, hd);
        }
        op::WRITE => {
            let Some(binding) = st.handles[&id].1.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            let mtu = st.adapters.iter().find(|a| a.id == binding).map_or(1500, |a| a.info.mtu) as usize;
            if input.len() < ETH_HEADER || input.len() > proto::max_send_len(mtu + ETH_HEADER, input, None) {
                return fail(NtStatus::INVALID_BUFFER_SIZE);
            }
            transmit(st, id, binding, input, None, true);
            conn.complete(h.tag, NtStatus::SUCCESS, input.len() as u64, &[]);
        }
        _ => ioctl(st, id, h, input, &reply, &fail),
    }
}

fn transmit(st: &mut State, id: u64, binding: u32, data: &[u8], tci: Option<u16>, by_write: bool) {
    st.sent.push(Sent { binding_id: binding, data: data.to_vec(), tci, by_write });
    // As the driver: a tag of TCI 0, which NDIS's info cannot carry, goes
    // into the frame.
    match tci {
        Some(0) => deliver(st, binding, &crate::ether::insert_vlan_tag(data, 0), None, Some(id)),
        _ => deliver(st, binding, data, tci, Some(id)),
    }
    if let Some((_, hd)) = st.handles.get_mut(&id) {
        hd.counters.tx_frames += 1;
        hd.counters.tx_bytes += data.len() as u64;
    }
    if let Some(a) = st.adapters.iter_mut().find(|a| a.id == binding) {
        a.counters.tx_frames += 1;
        a.counters.tx_bytes += data.len() as u64;
    }
    // The ARP responders answer requests for their addresses.
    if let Some(req) = Arp::from_frame(data).filter(|a| a.op == Arp::REQUEST) {
        let answer = st.arp.iter().find(|(b, ip, _)| *b == binding && *ip == req.target_ip).copied();
        if let Some((_, ip, mac)) = answer {
            let reply = Arp {
                op: Arp::REPLY,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: req.sender_mac,
                target_ip: req.sender_ip,
            };
            let frame = reply.to_frame(mac);
            deliver(st, binding, &frame, tci, None);
        }
    }
}

fn ioctl(
    st: &mut State,
    id: u64,
    h: &RequestHeader,
    input: &[u8],
    reply: &dyn Fn(NtStatus, &[u8]),
    fail: &dyn Fn(NtStatus),
) {
    let empty = || EmptyRequest::parse(input).map_err(NtStatus::from);
    match h.code {
        IOCTL_RAWNIC_GET_VERSION => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let mut b = [0u8; VersionReply::LEN];
            VersionReply { proto_version: PROTO_VERSION, driver: (0, 1, 0), ndis: (6, 30), max_batch: st.max_batch }
                .emit(&mut b)
                .expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_LIST_BINDINGS => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let open: Vec<u32> = st.handles.values().filter_map(|(_, h)| h.binding).collect();
            let entries: Vec<Vec<u8>> = st
                .adapters
                .iter()
                .map(|a| {
                    let e = BindingEntry {
                        binding_id: a.id,
                        state: state::RUNNING,
                        link: if a.info.link_up { link::UP } else { link::DOWN },
                        duplex: 2,
                        mtu: a.info.mtu,
                        xmit_speed: a.info.speed,
                        rcv_speed: a.info.speed,
                        mac: a.info.mac.0,
                        packet_filter: st
                            .handles
                            .values()
                            .filter(|(_, h)| h.binding == Some(a.id))
                            .fold(0, |f, (_, h)| f | h.packet_filter),
                        open_handles: open.iter().filter(|b| **b == a.id).count() as u32,
                        supported_filter: a.info.supported_filters,
                        refused_filter: 0,
                        name: &a.info.name,
                        description: &a.info.description,
                    };
                    let mut b = vec![0u8; e.wire_len()];
                    e.emit(&mut b).expect("sized");
                    b
                })
                .collect();
            let needed = ListHeader::LEN + entries.iter().map(Vec::len).sum::<usize>();
            let mut out = vec![0u8; ListHeader::LEN];
            let mut count = 0;
            for e in &entries {
                if out.len() + e.len() > h.out_len as usize {
                    break;
                }
                out.extend_from_slice(e);
                count += 1;
            }
            if h.out_len as usize >= ListHeader::LEN {
                ListHeader { count, needed: needed as u32 }.emit(&mut out).expect("sized");
            }
            let status = if count as usize == entries.len() { NtStatus::SUCCESS } else { NtStatus::BUFFER_OVERFLOW };
            reply(status, &out);
        }
        IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => {
            if let Err(s) = empty() {
                return fail(s);
            }
            if st.binds_complete {
                let mut b = [0u8; BindsCompleteReply::LEN];
                BindsCompleteReply { bindings: st.adapters.len() as u32 }.emit(&mut b).expect("sized");
                reply(NtStatus::SUCCESS, &b);
            } else {
                st.handles.get_mut(&id).expect("open").1.bind_waits.push_back(h.tag);
            }
        }
        IOCTL_RAWNIC_OPEN => {
            let req = match OpenRequest::new_checked(input) {
                Ok(r) => r,
                Err(e) => return fail(e.status()),
            };
            let Some(a) = st.adapters.iter().find(|a| a.info.name == req.name()) else {
                return fail(NtStatus::OBJECT_NAME_NOT_FOUND);
            };
            let (binding, mtu, mac) = (a.id, a.info.mtu, a.info.mac);
            let requested = req.packet_filter();
            let effective = filter::effective(requested, a.info.supported_filters);
            let lost = filter::lost(requested, effective);
            let hd = &mut st.handles.get_mut(&id).expect("open").1;
            if hd.binding.is_some() {
                return fail(NtStatus::INVALID_DEVICE_STATE);
            }
            if requested != 0 && (effective == 0 || (req.strict_filter() && lost != 0)) {
                return fail(NtStatus::NOT_SUPPORTED);
            }
            if lost != 0 {
                hd.event_seq += 1;
                hd.events.push_back(EventRecord {
                    kind: event::FILTER_REFUSED,
                    binding_id: binding,
                    seq: hd.event_seq,
                    filter: effective,
                    refused: lost,
                    ..EventRecord::default()
                });
            }
            hd.binding = Some(binding);
            hd.ethertypes = req.ethertypes().collect();
            hd.packet_filter = effective;
            hd.requested_filter = requested;
            hd.local_sends = req.local_sends();
            hd.snaplen = req.snaplen();
            hd.queue_frames = req.queue_frames();
            let mut b = [0u8; OpenReply::LEN];
            OpenReply { binding_id: binding, mtu, mac: mac.0, packet_filter: effective }.emit(&mut b).expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_SEND_BATCH => {
            let Some(binding) = st.handles[&id].1.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            let mtu = st.adapters.iter().find(|a| a.id == binding).map_or(1500, |a| a.info.mtu) as usize;
            let batch = match SendBatch::new_checked(input, mtu + ETH_HEADER) {
                Ok(b) => b,
                Err(e) => return fail(e.status()),
            };
            let cap = match st.send_plan.pop_front() {
                None => u32::MAX,
                Some(Ok(cap)) => cap,
                Some(Err(status)) => return fail(status),
            };
            let mut accepted = 0u32;
            let mut bytes = 0u64;
            for f in batch.frames().take(cap as usize) {
                transmit(st, id, binding, f.data, f.tci, false);
                accepted += 1;
                bytes += f.data.len() as u64;
            }
            let mut b = [0u8; SendReply::LEN];
            SendReply { accepted, bytes }.emit(&mut b).expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_QUERY_OID | IOCTL_RAWNIC_SET_OID => {
            let set = h.code == IOCTL_RAWNIC_SET_OID;
            let req = match OidRequest::parse(input) {
                Ok(r) => r,
                Err(e) => return fail(e.status()),
            };
            let Some(binding) = st.handles[&id].1.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            if set && !OID_SET_ALLOW_LIST.contains(&req.oid) {
                return fail(NtStatus::ACCESS_DENIED);
            }
            let capacity = (h.out_len as usize).saturating_sub(OidReplyHeader::LEN);
            let a = st.adapters.iter_mut().find(|a| a.id == binding).expect("bound");
            let result: Result<Vec<u8>, i32> = if set {
                match req.oid {
                    oid::OID_GEN_CURRENT_LOOKAHEAD if req.data.len() == 4 => {
                        a.lookahead = u32::from_le_bytes(req.data.try_into().expect("4"));
                        Ok(Vec::new())
                    }
                    oid::OID_802_3_MULTICAST_LIST if req.data.len() % 6 == 0 => {
                        a.multicast = req.data.to_vec();
                        Ok(Vec::new())
                    }
                    oid::OID_GEN_CURRENT_LOOKAHEAD | oid::OID_802_3_MULTICAST_LIST => Err(0xC001_0014u32 as i32),
                    _ => Err(0xC001_0017u32 as i32),
                }
            } else {
                match req.oid {
                    oid::OID_802_3_CURRENT_ADDRESS | oid::OID_802_3_PERMANENT_ADDRESS => Ok(a.info.mac.0.to_vec()),
                    oid::OID_GEN_LINK_SPEED => Ok(((a.info.speed / 100) as u32).to_le_bytes().to_vec()),
                    oid::OID_GEN_MAXIMUM_FRAME_SIZE => Ok(a.info.mtu.to_le_bytes().to_vec()),
                    oid::OID_GEN_CURRENT_LOOKAHEAD => Ok(a.lookahead.to_le_bytes().to_vec()),
                    oid::OID_GEN_MEDIA_CONNECT_STATUS => Ok(u32::from(!a.info.link_up).to_le_bytes().to_vec()),
                    oid::OID_GEN_VENDOR_DESCRIPTION => Ok([a.info.description.as_bytes(), &[0]].concat()),
                    oid::OID_802_3_MULTICAST_LIST => Ok(a.multicast.clone()),
                    oid::OID_GEN_SUPPORTED_LIST => Ok(oid::NAMED.iter().flat_map(|i| i.oid.to_le_bytes()).collect()),
                    _ => Err(0xC001_0017u32 as i32),
                }
            };
            let mut out = vec![0u8; OidReplyHeader::LEN];
            let header = match result {
                Ok(data) if !set && data.len() > capacity => {
                    OidReplyHeader { ndis_status: 0xC001_0016u32 as i32, bytes: 0, bytes_needed: data.len() as u32 }
                }
                Ok(data) => {
                    let bytes = if set { req.data.len() } else { data.len() };
                    out.extend_from_slice(&data);
                    OidReplyHeader { ndis_status: 0, bytes: bytes as u32, bytes_needed: 0 }
                }
                Err(status) => OidReplyHeader { ndis_status: status, bytes: 0, bytes_needed: 0 },
            };
            header.emit(&mut out).expect("sized");
            reply(NtStatus::SUCCESS, &out);
        }
        IOCTL_RAWNIC_GET_STATS => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let hd = &st.handles[&id].1;
            let Some(binding) = hd.binding else { return fail(NtStatus::INVALID_DEVICE_STATE) };
            let a = st.adapters.iter().find(|a| a.id == binding).expect("bound");
            let s = StatsReply {
                queued_frames: hd.rx.len() as u32,
                queued_bytes: hd.rx.iter().map(|(_, d)| d.len() as u64).sum(),
                requested_filter: hd.requested_filter,
                effective_filter: hd.packet_filter,
                handle: hd.counters,
                binding: a.counters,
            };
            let mut b = [0u8; StatsReply::LEN];
            s.emit(&mut b).expect("sized");
            reply(NtStatus::SUCCESS, &b);
        }
        IOCTL_RAWNIC_WAIT_EVENT => {
            if let Err(s) = empty() {
                return fail(s);
            }
            let (conn, hd) = st.handles.get_mut(&id).expect("open");
            hd.event_waits.push_back(h.tag);
            pump_events(conn, hd);
        }
        _ => fail(NtStatus::INVALID_DEVICE_REQUEST),
    }
}

/// A frame for tests: broadcast from `src` with EtherType `ty` and payload.
pub fn test_frame(src: MacAddr, ty: u16, payload: &[u8]) -> Vec<u8> {
    ether::build_frame(MacAddr::BROADCAST, src, ty, payload)
}
