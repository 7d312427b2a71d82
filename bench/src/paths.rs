//! The measured paths, driven through ndisim's I/O manager exactly as a
//! user-mode client would drive the driver: WriteFile, DeviceIoControl
//! (`IOCTL_RAWNIC_SEND_BATCH`), and ReadFile after receive indications;
//! and the rings (`rawnic_proto::ring`): a UMEM attached with
//! `IOCTL_RAWNIC_RING_ATTACH`, received frames taken from the rx ring,
//! zero-copy sends posted on the tx ring and kicked.

use ndisim::{AdapterId, Checksum, Handle, InjectOpts, IoToken, NblStats, PoolStats, Sim, UserRegion};
use rawnic_proto::ring::{RingLayout, RingReply, RingSetup, RxDesc, TxDesc};
use rawnic_proto::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One way of moving frames through the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// (a) one WriteFile per frame, NDISPROT style.
    Write,
    /// (b) `n` frames per `IOCTL_RAWNIC_SEND_BATCH`.
    Batch(usize),
    /// (c) frames indicated by the miniport, drained by ReadFile.
    Recv,
    /// (d) frames indicated by the miniport, copied by the driver into
    /// frames of the UMEM the fill ring gave, taken from the rx ring.
    RingRecv,
    /// (e) `n` frames of the UMEM per `IOCTL_RAWNIC_RING_KICK`, sent
    /// zero-copy, their completions taken from the completion ring.
    RingSend(usize),
}

impl Kind {
    pub fn label(&self) -> String {
        match self {
            Kind::Write => "(a) WriteFile per frame".into(),
            Kind::Batch(n) => format!("(b) SEND_BATCH N={n}"),
            Kind::Recv => "(c) receive + ReadFile".into(),
            Kind::RingRecv => "(d) ring receive".into(),
            Kind::RingSend(n) => format!("(e) ring send N={n} (zero-copy)"),
        }
    }

    pub fn short(&self) -> String {
        match self {
            Kind::Write => "write".into(),
            Kind::Batch(n) => format!("batch{n}"),
            Kind::Recv => "recv".into(),
            Kind::RingRecv => "ringrecv".into(),
            Kind::RingSend(n) => format!("ringsend{n}"),
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "write" => Some(Kind::Write),
            "recv" => Some(Kind::Recv),
            "ringrecv" => Some(Kind::RingRecv),
            _ => match s.strip_prefix("ringsend") {
                Some(n) => n.parse().ok().filter(|&n| n > 0 && n <= RING_SEND_MAX).map(Kind::RingSend),
                None => s.strip_prefix("batch")?.parse().ok().map(Kind::Batch),
            },
        }
    }
}

/// Every path, in report order.
pub fn all_kinds() -> Vec<Kind> {
    vec![
        Kind::Write,
        Kind::Batch(1),
        Kind::Batch(16),
        Kind::Batch(64),
        Kind::Batch(256),
        Kind::Recv,
        Kind::RingRecv,
        Kind::RingSend(64),
        Kind::RingSend(256),
    ]
}

/// The frame sizes measured.
pub const SIZES: [usize; 2] = [64, 1514];

/// Receive frames indicated per `ProtocolReceiveNetBufferLists` call (one
/// NBL with one NET_BUFFER each), as a NIC's DPC does.
pub const NBLS_PER_INDICATION: usize = 32;
/// Frames indicated before the reader drains them.
pub const RECV_ROUND: usize = 4096;
/// The reader's buffer.
pub const READ_BUFFER: usize = 1 << 20;
/// The UMEM's frame size (both ring paths).
pub const RING_FRAME: u32 = 2048;
/// Most frames per kick of (e): the driver's zero-copy NBLs per ring.
pub const RING_SEND_MAX: usize = 1024;

/// The UMEM of (d): one frame per frame of a receive round, all of them
/// on the fill ring before a round, and room on the rx ring for the round.
pub const RING_RECV_SETUP: RingSetup = RingSetup {
    frame_size: RING_FRAME,
    frame_count: RECV_ROUND as u32,
    fill: RECV_ROUND as u32,
    rx: RECV_ROUND as u32,
    tx: ring::MIN_RING,
    completion: ring::MIN_RING,
};

/// The UMEM of (e) with `n` frames per kick: `n` frames, each written once
/// before the run, and tx and completion rings of `n` entries (so `n`
/// zero-copy NBLs).
pub fn ring_send_setup(n: usize) -> RingSetup {
    let r = (n as u32).next_power_of_two().max(ring::MIN_RING);
    RingSetup {
        frame_size: RING_FRAME,
        frame_count: n as u32,
        fill: ring::MIN_RING,
        rx: ring::MIN_RING,
        tx: r,
        completion: r,
    }
}

/// The user's side of an attached UMEM, as an AF_XDP program keeps it: its
/// own indices cached, the driver's read from the rings.
pub struct RingUser {
    pub l: RingLayout,
    pub m: Arc<UserRegion>,
    attach: IoToken,
    /// The user's fill and tx producer indices, and its rx and completion
    /// consumer indices.
    fill_prod: u32,
    tx_prod: u32,
    rx_cons: u32,
    comp_cons: u32,
    /// (e): the tx descriptors of one kick, ready to copy onto the ring.
    tx_descs: Vec<[u8; TxDesc::LEN]>,
}

impl RingUser {
    fn attach(h: &Handle, setup: RingSetup) -> Result<RingUser, String> {
        let l = RingLayout::new(&setup).map_err(|e| format!("ring layout: {e:?}"))?;
        let m = UserRegion::new(l.total).map_err(|e| format!("UMEM: {e}"))?;
        let mut input = [0u8; RingSetup::LEN];
        setup.emit(&mut input).map_err(|e| format!("RingSetup: {e:?}"))?;
        let attach = h
            .ioctl_region_async(IOCTL_RAWNIC_RING_ATTACH, &input, m.clone())
            .map_err(|s| format!("RING_ATTACH: {s:?}"))?;
        if let Some(r) = attach.try_result() {
            return Err(format!("RING_ATTACH completed at once: {:?}", NtStatus(r.status)));
        }
        if m.load_u32(ring::control::MAGIC) != ring::RING_MAGIC {
            return Err("RING_ATTACH: no magic in the control block".into());
        }
        Ok(RingUser { l, m, attach, fill_prod: 0, tx_prod: 0, rx_cons: 0, comp_cons: 0, tx_descs: Vec::new() })
    }

    /// The offset of frame `i`.
    pub fn frame(&self, i: usize) -> u64 {
        (self.l.frames + i * self.l.frame_size as usize) as u64
    }

    /// Posts `addrs` on the fill ring.
    fn fill(&mut self, addrs: impl IntoIterator<Item = u64>) {
        for a in addrs {
            self.m.store_u64(self.l.fill.entry_at(self.fill_prod), a);
            self.fill_prod = self.fill_prod.wrapping_add(1);
        }
        self.m.store_u32(self.l.fill.producer(), self.fill_prod);
    }

    /// Takes every frame on the rx ring: reads its descriptor and the
    /// frame's first 8 bytes (the consumer looks at each frame, as (c)'s
    /// reader reads each record's header, next to its bytes), and gives the
    /// frame back on the fill ring. Returns the frames taken and the sum
    /// of the words read.
    fn rx_refill(&mut self) -> (usize, u64) {
        let prod = self.m.load_u32(self.l.rx.producer());
        let n = prod.wrapping_sub(self.rx_cons) as usize;
        let mut seen = 0u64;
        let mut raw = [0u8; RxDesc::LEN];
        for _ in 0..n {
            self.m.read(self.l.rx.entry_at(self.rx_cons), &mut raw);
            let d = RxDesc::from_bytes(&raw);
            seen = seen.wrapping_add(self.m.load_u64(d.addr as usize)).wrapping_add(u64::from(d.len));
            self.m.store_u64(self.l.fill.entry_at(self.fill_prod), d.addr);
            self.rx_cons = self.rx_cons.wrapping_add(1);
            self.fill_prod = self.fill_prod.wrapping_add(1);
        }
        self.m.store_u32(self.l.rx.consumer(), self.rx_cons);
        self.m.store_u32(self.l.fill.producer(), self.fill_prod);
        (n, seen)
    }

    /// Posts the prepared tx descriptors.
    fn tx_post(&mut self) {
        for d in &self.tx_descs {
            self.m.write(self.l.tx.entry_at(self.tx_prod), d);
            self.tx_prod = self.tx_prod.wrapping_add(1);
        }
        self.m.store_u32(self.l.tx.producer(), self.tx_prod);
    }

    /// Takes every entry on the completion ring; returns how many, and the
    /// sum of the offsets.
    fn completions(&mut self) -> (usize, u64) {
        let prod = self.m.load_u32(self.l.completion.producer());
        let n = prod.wrapping_sub(self.comp_cons) as usize;
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(self.m.load_u64(self.l.completion.entry_at(self.comp_cons)));
            self.comp_cons = self.comp_cons.wrapping_add(1);
        }
        self.m.store_u32(self.l.completion.consumer(), self.comp_cons);
        (n, sum)
    }

    /// Detaches; the attach IRP must complete with success.
    fn detach(self, h: &Handle) -> Result<(), String> {
        let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &empty_request(), 0);
        if r.status != 0 {
            return Err(format!("RING_DETACH: {:?}", NtStatus(r.status)));
        }
        match self.attach.wait_for(Duration::from_secs(10)) {
            Some(r) if r.status == 0 => Ok(()),
            Some(r) => Err(format!("the attach completed with {:?}", NtStatus(r.status))),
            None => Err("the attach did not complete after the detach".into()),
        }
    }
}

/// A simulation of rawnic.sys on one `null` adapter with a handle open
/// on it, ready to run one path.
pub struct Rig {
    pub sim: Sim,
    pub adapter: AdapterId,
    pub handle: Option<Handle>,
    kind: Kind,
    frame: Vec<u8>,
    /// The SEND_BATCH input (batch paths).
    batch: Vec<u8>,
    /// RECV_ROUND copies of the frame (receive paths).
    recv_frames: Vec<Vec<u8>>,
    /// The attached UMEM (ring paths).
    ring: Option<RingUser>,
    /// What the consumer of (d) read, kept so the reads are not optimized
    /// away.
    pub seen: u64,
}

/// An Ethernet frame of `len` bytes: broadcast, EtherType 0x88B5 (local
/// experimental), a counting payload.
pub fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0x00, 0x5e, 0x00, 0x00, 0x99]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    f
}

fn empty_request() -> Vec<u8> {
    let mut b = vec![0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).expect("an empty request fits");
    b
}

fn batch_input(frame: &[u8], n: usize) -> Vec<u8> {
    SendBatchWriter::build(&vec![SendFrame { data: frame, tci: None }; n]).expect("a frame a record can say")
}

impl Rig {
    /// Loads the driver (at `image_base` if given), binds the `null`
    /// adapter and opens a handle on it for `kind` with `size`-byte frames.
    pub fn new(driver: &Path, image_base: Option<usize>, kind: Kind, size: usize) -> Result<Rig, String> {
        let build = |base: Option<usize>| {
            let mut b = Sim::builder()
                .driver(driver)
                .adapter("null")
                .checksum(Checksum::Off)
                .echo_dbgprint(false)
                .watchdog(Duration::from_secs(20));
            if let Some(base) = base {
                b = b.image_base(base);
            }
            b.start()
        };
        let sim = match build(image_base) {
            Ok(s) => s,
            // A fixed base only makes addresses repeatable; anywhere works.
            Err(_) if image_base.is_some() => build(None).map_err(|e| format!("ndisim: {e}"))?,
            Err(e) => return Err(format!("ndisim: {e}")),
        };
        let adapter = sim.adapter_id("null0").ok_or("no adapter null0")?;
        let h = sim.open().map_err(|s| format!("open \\\\.\\RawNic: {s:#x}"))?;
        let list = h.ioctl(IOCTL_RAWNIC_LIST_BINDINGS, &empty_request(), 64 * 1024);
        if list.status != 0 {
            return Err(format!("LIST_BINDINGS: {:?}", NtStatus(list.status)));
        }
        let name = ListReply::new_checked(&list.data)
            .map_err(|e| format!("LIST_BINDINGS reply: {e:?}"))?
            .entries()
            .next()
            .ok_or("no binding")?
            .name
            .to_string();
        let (filter, q_frames, q_bytes) = match kind {
            // Send-only handles: packet filter 0.
            Kind::Write | Kind::Batch(_) | Kind::RingSend(_) => (PacketFilter::NONE, 0, 0),
            // The queue stays empty: frames go to the rings.
            Kind::RingRecv => (filter::DEFAULT, 0, 0),
            Kind::Recv => {
                let rec = FrameHeader::record_len(size);
                (filter::DEFAULT, 2 * RECV_ROUND as u32, (2 * RECV_ROUND * rec).max(MIN_QUEUE_BYTES as usize) as u32)
            }
        };
        let req = OpenRepr {
            name: &name,
            ethertypes: &[],
            packet_filter: filter,
            queue_frames: q_frames,
            queue_bytes: q_bytes,
            snaplen: 0,
            local_sends: rawnic_proto::LocalSends::Others,
            strict_filter: false,
        };
        let mut open = vec![0u8; req.wire_len()];
        req.emit(&mut open).map_err(|e| format!("OPEN request: {e:?}"))?;
        let r = h.ioctl(IOCTL_RAWNIC_OPEN, &open, OpenReply::LEN);
        if r.status != 0 {
            return Err(format!("OPEN: {:?}", NtStatus(r.status)));
        }
        let frame = frame(size);
        let batch = match kind {
            Kind::Batch(n) => batch_input(&frame, n),
            _ => Vec::new(),
        };
        let recv_frames = match kind {
            Kind::Recv | Kind::RingRecv => vec![frame.clone(); RECV_ROUND],
            _ => Vec::new(),
        };
        let ring = match kind {
            Kind::RingRecv => {
                let mut u = RingUser::attach(&h, RING_RECV_SETUP)?;
                let addrs: Vec<u64> = (0..RECV_ROUND).map(|i| u.frame(i)).collect();
                u.fill(addrs);
                Some(u)
            }
            Kind::RingSend(n) => {
                let mut u = RingUser::attach(&h, ring_send_setup(n))?;
                // Each frame written once; every kick sends them all again.
                for i in 0..n {
                    u.m.write(u.frame(i) as usize, &frame);
                }
                u.tx_descs =
                    (0..n).map(|i| TxDesc { addr: u.frame(i), len: size as u32, flags: 0 }.to_bytes()).collect();
                Some(u)
            }
            _ => None,
        };
        Ok(Rig { sim, adapter, handle: Some(h), kind, frame, batch, recv_frames, ring, seen: 0 })
    }

    /// Frames per unit of work (a WriteFile, a batch, a receive round).
    pub fn unit(&self) -> usize {
        match self.kind {
            Kind::Write => 1,
            Kind::Batch(n) => n,
            Kind::Recv | Kind::RingRecv => RECV_ROUND,
            Kind::RingSend(n) => n,
        }
    }

    /// Moves at least `frames` frames (whole units); returns how many.
    pub fn run(&mut self, frames: usize) -> Result<usize, String> {
        let unit = self.unit();
        let units = frames.div_ceil(unit).max(1);
        let h = self.handle.as_ref().expect("open until finish");
        match self.kind {
            Kind::Write => {
                for _ in 0..units {
                    let r = h.write(&self.frame);
                    if r.status != 0 || r.information != self.frame.len() {
                        return Err(format!("WriteFile: {:?} ({} bytes)", NtStatus(r.status), r.information));
                    }
                }
            }
            Kind::Batch(n) => {
                for _ in 0..units {
                    let r = h.ioctl(IOCTL_RAWNIC_SEND_BATCH, &self.batch, SendReply::LEN);
                    if r.status != 0 {
                        return Err(format!("SEND_BATCH: {:?}", NtStatus(r.status)));
                    }
                    let reply = SendReply::parse(&r.data).map_err(|e| format!("SEND_BATCH reply: {e:?}"))?;
                    if reply.accepted as usize != n {
                        return Err(format!("SEND_BATCH accepted {} of {n}", reply.accepted));
                    }
                }
            }
            Kind::Recv => {
                let refs: Vec<&[u8]> = self.recv_frames.iter().map(|f| &f[..]).collect();
                let opts = InjectOpts { nbls_per_indication: NBLS_PER_INDICATION, ..InjectOpts::default() };
                for _ in 0..units {
                    let n = self.sim.inject(self.adapter, &refs, &opts).map_err(|e| format!("inject: {e}"))?;
                    if n != RECV_ROUND {
                        return Err(format!("indicated {n} of {RECV_ROUND}"));
                    }
                    let mut got = 0;
                    while got < RECV_ROUND {
                        let r = h.read(READ_BUFFER);
                        if r.status != 0 {
                            return Err(format!("ReadFile: {:?}", NtStatus(r.status)));
                        }
                        got += count_records(&r.data[..r.information]);
                    }
                    if got != RECV_ROUND {
                        return Err(format!("read {got} frames of {RECV_ROUND}"));
                    }
                }
            }
            Kind::RingRecv => {
                let u = self.ring.as_mut().expect("attached in new");
                let refs: Vec<&[u8]> = self.recv_frames.iter().map(|f| &f[..]).collect();
                let opts = InjectOpts { nbls_per_indication: NBLS_PER_INDICATION, ..InjectOpts::default() };
                for _ in 0..units {
                    let n = self.sim.inject(self.adapter, &refs, &opts).map_err(|e| format!("inject: {e}"))?;
                    if n != RECV_ROUND {
                        return Err(format!("indicated {n} of {RECV_ROUND}"));
                    }
                    let (got, seen) = u.rx_refill();
                    if got != RECV_ROUND {
                        return Err(format!(
                            "{got} frames of {RECV_ROUND} on the rx ring (fill ring empty {}, rx ring full {})",
                            u.m.load_u64(ring::control::RX_FILL_EMPTY),
                            u.m.load_u64(ring::control::RX_RING_FULL)
                        ));
                    }
                    self.seen = self.seen.wrapping_add(seen);
                }
            }
            Kind::RingSend(n) => {
                let u = self.ring.as_mut().expect("attached in new");
                let kick = empty_request();
                for _ in 0..units {
                    u.tx_post();
                    let r = h.ioctl(IOCTL_RAWNIC_RING_KICK, &kick, RingReply::LEN);
                    if r.status != 0 {
                        return Err(format!("RING_KICK: {:?}", NtStatus(r.status)));
                    }
                    let reply = RingReply::parse(&r.data).map_err(|e| format!("RING_KICK reply: {e:?}"))?;
                    if reply.sent as usize != n {
                        return Err(format!("RING_KICK sent {} of {n} ({} invalid)", reply.sent, reply.invalid));
                    }
                    // The `null` adapter completes inside the send: every
                    // frame is back by the kick's reply.
                    let (got, sum) = u.completions();
                    if got != n {
                        return Err(format!("{got} completions of {n}"));
                    }
                    self.seen = self.seen.wrapping_add(sum);
                }
            }
        }
        Ok(units * unit)
    }

    pub fn pool(&self) -> PoolStats {
        self.sim.pool_stats()
    }

    pub fn nbls(&self) -> NblStats {
        self.sim.nbl_stats()
    }

    /// Closes the handle and unloads; returns the report's findings, if any.
    pub fn finish(mut self) -> (ndisim::Report, Option<String>) {
        let mut detach = None;
        if let Some(h) = self.handle.take() {
            if let Some(u) = self.ring.take() {
                detach = u.detach(&h).err();
            }
            h.close();
        }
        let r = self.sim.unload();
        let bad = match ((!r.is_clean()).then(|| r.to_string()), detach) {
            (None, None) => None,
            (a, b) => Some([a, b].into_iter().flatten().collect::<Vec<_>>().join("\n")),
        };
        (r, bad)
    }
}

/// Frame records in a ReadFile buffer.
fn count_records(buf: &[u8]) -> usize {
    let mut off = 0;
    let mut n = 0;
    while off + FrameHeader::LEN <= buf.len() {
        let caplen = u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        off += FrameHeader::record_len(caplen);
        n += 1;
    }
    n
}
