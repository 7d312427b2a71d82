//! The measured paths, driven through ndisim's I/O manager exactly as a
//! user-mode client would drive the driver: WriteFile, DeviceIoControl
//! (`IOCTL_RAWNIC_SEND_BATCH`), and ReadFile after receive indications.

use ndisim::{AdapterId, Checksum, Handle, InjectOpts, NblStats, PoolStats, Sim};
use rawnic_proto::*;
use std::path::Path;
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
}

impl Kind {
    pub fn label(&self) -> String {
        match self {
            Kind::Write => "(a) WriteFile per frame".into(),
            Kind::Batch(n) => format!("(b) SEND_BATCH N={n}"),
            Kind::Recv => "(c) receive + ReadFile".into(),
        }
    }

    pub fn short(&self) -> String {
        match self {
            Kind::Write => "write".into(),
            Kind::Batch(n) => format!("batch{n}"),
            Kind::Recv => "recv".into(),
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "write" => Some(Kind::Write),
            "recv" => Some(Kind::Recv),
            _ => s.strip_prefix("batch")?.parse().ok().map(Kind::Batch),
        }
    }
}

/// Every path, in report order.
pub fn all_kinds() -> Vec<Kind> {
    vec![Kind::Write, Kind::Batch(1), Kind::Batch(16), Kind::Batch(64), Kind::Batch(256), Kind::Recv]
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
    /// RECV_ROUND copies of the frame (receive path).
    recv_frames: Vec<Vec<u8>>,
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
    let size = SendBatchWriter::HEADER + n * ((SendFrame::HEADER + frame.len() + 7) & !7);
    let mut buf = vec![0u8; size];
    let mut w = SendBatchWriter::new(&mut buf).expect("header fits");
    for _ in 0..n {
        w.push(&SendFrame { data: frame, tci: None }).expect("sized for n frames");
    }
    let len = w.finish();
    buf.truncate(len);
    buf
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
            Kind::Write | Kind::Batch(_) => (PacketFilter::NONE, 0, 0),
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
            Kind::Recv => vec![frame.clone(); RECV_ROUND],
            _ => Vec::new(),
        };
        Ok(Rig { sim, adapter, handle: Some(h), kind, frame, batch, recv_frames })
    }

    /// Frames per unit of work (a WriteFile, a batch, a receive round).
    pub fn unit(&self) -> usize {
        match self.kind {
            Kind::Write => 1,
            Kind::Batch(n) => n,
            Kind::Recv => RECV_ROUND,
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
        if let Some(h) = self.handle.take() {
            h.close();
        }
        let r = self.sim.unload();
        let bad = (!r.is_clean()).then(|| r.to_string());
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
