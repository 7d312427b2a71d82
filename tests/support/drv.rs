//! Driving the real rawnic.sys in ndisim from tests: start a simulation,
//! open the control device, speak `rawnic_proto` through real IRPs.

use ndisim::{Handle, IoResult, NbLayout, Sim};
use rawnic_proto::*;

/// A simulation of rawnic.sys over `adapters` (ndisim adapter specs).
pub fn start(adapters: &[&str]) -> Sim {
    start_with(adapters, |b| b)
}

/// `start`, with the builder adjusted by `more` (a longer watchdog, ...).
pub fn start_with(adapters: &[&str], more: impl FnOnce(ndisim::SimBuilder) -> ndisim::SimBuilder) -> Sim {
    let mut b = crate::rawnic_builder();
    for a in adapters {
        b = b.adapter(a);
    }
    more(b).start().unwrap_or_else(|e| panic!("ndisim could not start rawnic.sys: {e}"))
}

/// Unloads and asserts the verifier saw nothing wrong.
pub fn finish(sim: Sim) {
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}

/// One LIST_BINDINGS entry, owned.
#[derive(Debug, Clone)]
pub struct Entry {
    pub binding_id: u32,
    pub state: u8,
    pub link: u8,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub packet_filter: PacketFilter,
    pub open_handles: u32,
    pub supported_filter: PacketFilter,
    pub refused_filter: PacketFilter,
    pub name: String,
    pub description: String,
}

pub fn empty() -> Vec<u8> {
    let mut b = vec![0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).unwrap();
    b
}

/// The driver's bindings, in bind order.
pub fn list(h: &Handle) -> Vec<Entry> {
    let r = h.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty(), 64 * 1024);
    assert_eq!(r.status, 0, "LIST_BINDINGS: {:?}", NtStatus(r.status));
    let reply = ListReply::new_checked(&r.data).expect("a well-formed list");
    reply
        .entries()
        .map(|e| Entry {
            binding_id: e.binding_id,
            state: e.state,
            link: e.link,
            mtu: e.mtu,
            mac: e.mac,
            packet_filter: e.packet_filter,
            open_handles: e.open_handles,
            supported_filter: e.supported_filter,
            refused_filter: e.refused_filter,
            name: e.name.to_string(),
            description: e.description.to_string(),
        })
        .collect()
}

/// The driver's view of binding `idx` (bind order).
pub fn entry(sim: &Sim, idx: usize) -> Entry {
    let h = sim.open().expect("open the control device");
    let l = list(&h);
    h.close();
    l.get(idx).cloned().unwrap_or_else(|| panic!("no binding {idx} in {l:?}"))
}

pub fn open_request(name: &str, filter: PacketFilter, types: &[u16], frames: u32, bytes: u32, snaplen: u32) -> Vec<u8> {
    open_request_with(name, filter, types, frames, bytes, snaplen, LocalSends::Others)
}

/// As `open_request`, choosing which of this host's sends the handle sees.
pub fn open_request_with(
    name: &str,
    filter: PacketFilter,
    types: &[u16],
    frames: u32,
    bytes: u32,
    snaplen: u32,
    local_sends: LocalSends,
) -> Vec<u8> {
    open_request_full(name, filter, types, (frames, bytes, snaplen), local_sends, false)
}

/// As `open_request_with`; `strict` fails the open unless the adapter
/// gives the whole filter. `queue` is (frames, bytes, snaplen).
pub fn open_request_full(
    name: &str,
    filter: PacketFilter,
    types: &[u16],
    queue: (u32, u32, u32),
    local_sends: LocalSends,
    strict_filter: bool,
) -> Vec<u8> {
    let (frames, bytes, snaplen) = queue;
    let r = OpenRepr {
        name,
        ethertypes: types,
        packet_filter: filter,
        queue_frames: frames,
        queue_bytes: bytes,
        snaplen,
        local_sends,
        strict_filter,
    };
    let mut b = vec![0u8; r.wire_len()];
    r.emit(&mut b).unwrap();
    b
}

/// A handle open on binding `idx` with `filter` and EtherTypes `types`.
pub fn open(sim: &Sim, idx: usize, filter: PacketFilter, types: &[u16]) -> (Handle, OpenReply) {
    open_with(sim, idx, filter, types, LocalSends::Others)
}

/// A handle open on binding `idx` with `filter`, its queue bounded at
/// `bytes` bytes.
pub fn open_bounded(sim: &Sim, idx: usize, filter: PacketFilter, bytes: u32) -> Handle {
    let h = sim.open().unwrap();
    let name = list(&h)[idx].name.clone();
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &open_request(&name, filter, &[], 0, bytes, 0), OpenReply::LEN);
    assert_eq!(r.status, 0, "OPEN: {:?}", status(r.status));
    h
}

/// As `open`, choosing which of this host's sends the handle receives.
pub fn open_with(sim: &Sim, idx: usize, filter: PacketFilter, types: &[u16], local: LocalSends) -> (Handle, OpenReply) {
    let h = sim.open().expect("open the control device");
    let name = list(&h)[idx].name.clone();
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &open_request_with(&name, filter, types, 0, 0, 0, local), OpenReply::LEN);
    assert_eq!(r.status, 0, "OPEN: {:?}", NtStatus(r.status));
    let reply = OpenReply::parse(&r.data).expect("a well-formed open reply");
    (h, reply)
}

/// An Ethernet frame of `len` bytes.
pub fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, len: usize, seed: u32) -> Vec<u8> {
    let mut f = vec![0u8; len.max(14)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = (seed as usize * 131 + i * 7) as u8;
    }
    f
}

pub const BROADCAST: [u8; 6] = [0xff; 6];
pub const PEER: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x99];

/// A SEND_BATCH input for `frames`, each with an optional TCI.
pub fn batch(frames: &[(Vec<u8>, Option<u16>)]) -> Vec<u8> {
    let items: Vec<SendFrame<'_>> = frames.iter().map(|(f, tci)| SendFrame { data: f, tci: *tci }).collect();
    SendBatchWriter::build(&items).unwrap()
}

/// Sends `frames` in one SEND_BATCH; returns the reply.
pub fn send(h: &Handle, frames: &[Vec<u8>]) -> SendReply {
    let items: Vec<(Vec<u8>, Option<u16>)> = frames.iter().map(|f| (f.clone(), None)).collect();
    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&items), SendReply::LEN);
    assert_eq!(r.status, 0, "SEND_BATCH: {:?}", NtStatus(r.status));
    SendReply::parse(&r.data).unwrap()
}

/// Parses a ReadFile result into records.
pub fn records(r: &IoResult) -> Vec<(FrameHeader, Vec<u8>)> {
    assert_eq!(r.status, 0, "read: {:?}", NtStatus(r.status));
    assert_eq!(r.data.len(), r.information);
    let recs = FrameRecords::new_checked(&r.data).expect("well-formed frame records");
    recs.iter().map(|(h, d)| (h, d.to_vec())).collect()
}

/// Reads whatever is queued (the queue must not be empty).
pub fn read(h: &Handle, len: usize) -> Vec<(FrameHeader, Vec<u8>)> {
    records(&h.read(len))
}

/// The frames queued on `h` now, without waiting (none when its queue is
/// empty).
pub fn queued(h: &Handle) -> Vec<(FrameHeader, Vec<u8>)> {
    if stats(h).queued_frames == 0 {
        return Vec::new();
    }
    read(h, 1 << 20)
}

/// QUERY_OID with an output buffer of `out` bytes: the reply header and
/// the data.
pub fn oid_query(h: &Handle, oid: u32, out: usize) -> (OidReplyHeader, Vec<u8>) {
    let mut input = vec![0u8; 16];
    OidRequest { oid, data: &[] }.emit(&mut input).unwrap();
    let r = h.ioctl(IOCTL_RAWNIC_QUERY_OID, &input, out);
    assert_eq!(r.status, 0, "QUERY_OID {oid:#x}: {:?}", status(r.status));
    let (hdr, data) = OidReplyHeader::parse(&r.data, true).unwrap();
    (hdr, data.to_vec())
}

/// Injects numbered frames (broadcast, EtherType 0x88b5, from `PEER`) of
/// `lens` bytes each on `a`, 64 at a time in indications of 8 NBLs,
/// numbered on from `seq`: the frames, in order.
pub fn inject_numbered(
    sim: &Sim,
    a: ndisim::AdapterId,
    lens: impl IntoIterator<Item = usize>,
    seq: &mut u32,
) -> Vec<Vec<u8>> {
    let fs: Vec<Vec<u8>> = lens
        .into_iter()
        .map(|len| {
            *seq += 1;
            frame(BROADCAST, PEER, 0x88b5, len, *seq)
        })
        .collect();
    for c in fs.chunks(64) {
        let refs: Vec<&[u8]> = c.iter().map(|f| &f[..]).collect();
        sim.inject(a, &refs, &ndisim::InjectOpts { nbls_per_indication: 8, ..ndisim::InjectOpts::default() }).unwrap();
    }
    fs
}

/// SET_OID input of `OID_802_3_MULTICAST_LIST` with `groups`.
pub fn multicast_input(groups: &[[u8; 6]]) -> Vec<u8> {
    let value = groups.concat();
    let mut input = vec![0u8; 16 + value.len()];
    OidRequest { oid: ndis_sys::OID_802_3_MULTICAST_LIST, data: &value }.emit(&mut input).unwrap();
    input
}

/// SET_OID of `OID_802_3_MULTICAST_LIST` with `groups`: the IRP's status
/// and the NDIS status in the reply.
pub fn set_multicast(h: &Handle, groups: &[[u8; 6]]) -> (NtStatus, i32) {
    let r = h.ioctl(IOCTL_RAWNIC_SET_OID, &multicast_input(groups), 64);
    (status(r.status), OidReplyHeader::parse(&r.data, false).map_or(0, |(hdr, _)| hdr.ndis_status))
}

/// The adapter's packet filter and multicast list (sorted), as ndisim's
/// model has them.
pub fn adapter_has(sim: &Sim, a: ndisim::AdapterId) -> (u32, Vec<[u8; 6]>) {
    let (_, filter, mut groups) = sim.adapter_filter(a).unwrap();
    groups.sort();
    (filter, groups)
}

pub fn stats(h: &Handle) -> StatsReply {
    let r = h.ioctl(IOCTL_RAWNIC_GET_STATS, &empty(), StatsReply::LEN);
    assert_eq!(r.status, 0, "GET_STATS: {:?}", NtStatus(r.status));
    StatsReply::parse(&r.data).unwrap()
}

/// Binding state changes the driver logged: (from, to, event).
pub fn transitions(sim: &Sim) -> Vec<(String, String, String)> {
    sim.debug_output()
        .iter()
        .filter_map(|l| {
            let rest = l.split(": state ").nth(1)?;
            let (from, rest) = rest.split_once(" -> ")?;
            let (to, ev) = rest.split_once(" (")?;
            Some((from.to_string(), to.to_string(), ev.trim_end().trim_end_matches(')').to_string()))
        })
        .collect()
}

pub fn status(s: i32) -> NtStatus {
    NtStatus(s)
}

/// Ways a NIC may lay a received frame out in MDLs, besides all of it in
/// one at offset 0: headroom before it (in its first MDL, or an MDL of its
/// own), header-data split, chains of small buffers, a split inside the
/// addresses or the tag.
pub fn shaped_layouts() -> [NbLayout; 6] {
    let d = NbLayout::default;
    [
        NbLayout { headroom: 64, ..d() },
        NbLayout { first: 14, ..d() },
        NbLayout { first: 6, chunk: 7, ..d() },
        NbLayout { headroom: 3, first: 1, chunk: 64, ..d() },
        NbLayout { chunk: 16, ..d() },
        NbLayout { headroom: 40, headroom_mdl: true, first: 14, ..d() },
    ]
}

/// Waits (at most 30 s) until the driver has heard every send completion
/// of adapter `a`'s binding: a pair adapter may deliver a frame to its
/// peer before it hands the send back to its sender.
pub fn sends_back(sim: &Sim, a: ndisim::AdapterId) {
    let t0 = std::time::Instant::now();
    while sim.binding_sends(a).is_some_and(|(_, _, n)| n != 0) {
        assert!(t0.elapsed().as_secs() < 30, "sends still in flight on {a:?}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The receive NBLs adapter `a`'s binding holds, once it has given back
/// what it owes: waits (at most 10 s) until they are `want`. A read or a
/// close that drops retained frames returns their NBLs itself or through
/// the binding's work item, whichever comes first, so its IRP may complete
/// a moment before the NBLs are back with NDIS (legal: a protocol returns
/// them when it is done, on any thread).
pub fn retained(sim: &Sim, a: ndisim::AdapterId, want: u64) -> u64 {
    let t0 = std::time::Instant::now();
    loop {
        let n = sim.outstanding(a).receives_retained;
        if n == want || t0.elapsed().as_secs() >= 10 {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
