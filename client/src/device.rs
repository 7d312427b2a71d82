//! [`Device`]: one handle of the rawnic control device, with a typed method
//! for every request.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ether::MacAddr;
use crate::frame::{Frame, Records};
pub use crate::open::{OpenInfo, OpenOptions, filter_refusal, stats_filter_note};
use crate::path::{DevicePath, ENV_DEVICE, default_path};
use crate::transport::{Canceller, Completion, Pending, Request};
use rawnic_proto::*;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// A binding, as `LIST_BINDINGS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Position in the list (what `--adapter INDEX` refers to).
    pub index: usize,
    pub id: u32,
    /// The adapter name that [`OpenOptions::new`] takes.
    pub name: String,
    /// The name a person knows the interface by ("Ethernet 2", from IP
    /// Helper on Windows; the name given on ndisim's command line), when
    /// the host has one.
    pub alias: Option<String>,
    pub description: String,
    pub state: BindingState,
    pub link: LinkState,
    /// `NDIS_MEDIA_DUPLEX_STATE`.
    pub duplex: Duplex,
    pub mtu: u32,
    /// Bits per second.
    pub xmit_speed: u64,
    pub rcv_speed: u64,
    pub mac: MacAddr,
    /// The binding's packet filter (the union of its handles' filters).
    pub packet_filter: PacketFilter,
    pub open_handles: u32,
    /// The packet filters the adapter supports.
    pub supported_filters: PacketFilter,
    /// Filter bits the adapter refused to set.
    pub refused_filters: PacketFilter,
}

impl Binding {
    fn from_entry(index: usize, e: &BindingEntry<'_>) -> Binding {
        Binding {
            index,
            id: e.binding_id,
            name: e.name.to_string(),
            alias: None,
            description: e.description.to_string(),
            state: e.binding_state(),
            link: e.link_state(),
            duplex: e.duplex_state(),
            mtu: e.mtu,
            xmit_speed: e.xmit_speed,
            rcv_speed: e.rcv_speed,
            mac: MacAddr(e.mac),
            packet_filter: e.packet_filter,
            open_handles: e.open_handles,
            supported_filters: e.supported_filter,
            refused_filters: e.refused_filter,
        }
    }

    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    pub fn link_name(&self) -> &'static str {
        self.link.name()
    }

    pub fn duplex_name(&self) -> &'static str {
        self.duplex.name()
    }
}

/// How [`Device::send_batch_with`] splits and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    /// Frames per `SEND_BATCH`; `None` is the driver's maximum.
    pub max_batch_frames: Option<u32>,
    /// Bytes per `SEND_BATCH` input (a batch holds at least one frame).
    pub max_batch_bytes: usize,
    /// How long the driver may accept nothing before the send fails.
    pub stall_timeout: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { max_batch_frames: None, max_batch_bytes: 1 << 20, stall_timeout: Duration::from_secs(5) }
    }
}

/// What a send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendSummary {
    /// Frames the driver accepted.
    pub frames: u64,
    /// Their bytes, as the driver counted them.
    pub bytes: u64,
    /// `SEND_BATCH` requests made.
    pub batches: u64,
    /// Requests whose batch was accepted only in part (the rest was sent
    /// again).
    pub partial: u64,
}

/// An OID reply: the adapter's `NDIS_STATUS` and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidReply {
    pub oid: u32,
    pub ndis_status: i32,
    /// Bytes written (query) or read (set).
    pub bytes: u32,
    /// Bytes the adapter needs, when the buffer was too short.
    pub bytes_needed: u32,
    /// The query's data.
    pub data: Vec<u8>,
}

impl OidReply {
    /// `true` when the adapter reported success.
    pub fn is_success(&self) -> bool {
        self.ndis_status >= 0
    }

    /// The reply if the adapter reported success, else [`Error::Ndis`].
    pub fn check(self, set: bool) -> Result<OidReply> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::Ndis { oid: self.oid, set, status: self.ndis_status, bytes_needed: self.bytes_needed })
        }
    }
}

/// The input of the requests without parameters: the 4-byte header.
fn empty_request() -> [u8; EmptyRequest::LEN] {
    let mut input = [0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut input).expect("4 bytes");
    input
}

const NDIS_STATUS_INVALID_LENGTH: i32 = 0xC001_0014u32 as i32;
const NDIS_STATUS_BUFFER_TOO_SHORT: i32 = 0xC001_0016u32 as i32;

/// One handle of the rawnic control device. Every handle is its own
/// client: it opens at most one binding, has its own receive queue, event
/// queue and counters. A `Device` may be shared between threads; requests
/// from different threads run concurrently (one thread reading while
/// another sends or waits for events).
pub struct Device {
    backend: Backend,
    path: String,
    open: Mutex<Option<OpenInfo>>,
    version: OnceLock<VersionReply>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("path", &self.path).field("open", &self.binding()).finish()
    }
}

/// The default size of one read: room for many frames.
/// The most a list of bindings can need: thousands of adapters with long
/// names take a few MiB. A driver that asks for more has gone wrong, and
/// the client does not allocate what it asks.
const MAX_LIST_BYTES: usize = 16 << 20;

pub const DEFAULT_READ_SIZE: usize = 256 * 1024;

impl Device {
    /// Opens the device at `path`: `unix:SOCKET` (ndisim's bridge) or a
    /// Windows device path such as `\\.\RawNic`.
    pub fn open(path: &str) -> Result<Device> {
        let backend = match DevicePath::parse(path)? {
            #[cfg(any(unix, windows))]
            DevicePath::Bridge(p) => Backend::Bridge(crate::bridge::Bridge::connect(&p)?),
            #[cfg(not(any(unix, windows)))]
            DevicePath::Bridge(_) => {
                return Err(Error::Unsupported(format!("{path}: this system has no Unix-domain sockets")));
            }
            #[cfg(windows)]
            DevicePath::Native(p) => Backend::Native(crate::windows::WinDevice::open(&p)?),
            #[cfg(not(windows))]
            DevicePath::Native(p) => {
                return Err(Error::Unsupported(format!(
                    "\"{p}\" is a Windows device path; here rawnic is reached through ndisim's bridge: use unix:SOCKET"
                )));
            }
        };
        Ok(Device { backend, path: path.to_string(), open: Mutex::new(None), version: OnceLock::new() })
    }

    /// Opens [`default_path`]: `RAWNIC_DEVICE`, else `\\.\RawNic` on
    /// Windows.
    pub fn open_default() -> Result<Device> {
        let path = default_path().ok_or(Error::NoDevice)?;
        // Only RAWNIC_DEVICE can be refused here: say where the path came
        // from.
        DevicePath::parse(&path).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{ENV_DEVICE}: {m}")),
            e => e,
        })?;
        Device::open(&path)
    }

    /// The path the device was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The binding this handle opened, if any.
    pub fn binding(&self) -> Option<OpenInfo> {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Submits a raw request: the building block of every typed method.
    pub fn submit(&self, request: Request, input: &[u8], out_len: usize) -> Result<Pending<'_>> {
        Ok(Pending { request, inner: self.backend.submit(request, input, out_len)? })
    }

    /// Submits an IOCTL whose output buffer is `mem` itself (the UMEM of
    /// `RING_ATTACH`).
    pub(crate) fn submit_shared(
        &self,
        request: Request,
        input: &[u8],
        mem: &std::sync::Arc<crate::ring::mem::SharedMem>,
    ) -> Result<Pending<'_>> {
        Ok(Pending { request, inner: self.backend.submit_shared(request, input, mem)? })
    }

    /// Submits a request and waits for it; the completion is returned
    /// whatever its status.
    pub fn call(
        &self,
        request: Request,
        input: &[u8],
        out_len: usize,
        timeout: Option<Duration>,
    ) -> Result<Completion> {
        self.submit(request, input, out_len)?.wait(timeout)
    }

    /// A [`Canceller`] for this handle's pending requests.
    pub fn canceller(&self) -> Canceller {
        Canceller { inner: self.backend.canceller() }
    }

    /// An IOCTL with the empty request header as input, which must succeed.
    fn simple_ioctl(&self, code: u32, out_len: usize, timeout: Option<Duration>) -> Result<Completion> {
        self.call(Request::Ioctl(code), &empty_request(), out_len, timeout)?.success(Request::Ioctl(code))
    }

    /// `GET_VERSION`: the driver's and the wire format's versions. Fails
    /// with [`Error::Version`] when the driver speaks another wire format.
    pub fn version(&self) -> Result<VersionReply> {
        if let Some(v) = self.version.get() {
            return Ok(*v);
        }
        let c = self.simple_ioctl(IOCTL_RAWNIC_GET_VERSION, 64, None)?;
        let v = VersionReply::parse(&c.data).map_err(|e| {
            Error::bad_reply(Request::Ioctl(IOCTL_RAWNIC_GET_VERSION), e, format!("{} bytes", c.data.len()))
        })?;
        if v.proto_version != PROTO_VERSION {
            return Err(Error::Version { driver: v.proto_version });
        }
        Ok(*self.version.get_or_init(|| v))
    }

    /// `LIST_BINDINGS`: every binding, in the driver's order. The buffer
    /// grows to what the driver says it needs when the list does not fit.
    pub fn list(&self) -> Result<Vec<Binding>> {
        let request = Request::Ioctl(IOCTL_RAWNIC_LIST_BINDINGS);
        let mut size = 4096usize;
        let input = empty_request();
        // The list can grow between two calls; give up only if it keeps
        // growing.
        for _ in 0..8 {
            let c = self.call(request, &input, size, None)?;
            if c.status == NtStatus::BUFFER_OVERFLOW {
                let reply = parse_reply(request, &c.data, ListReply::new_checked)?;
                let needed = reply.header.needed as usize;
                if needed > MAX_LIST_BYTES {
                    return Err(Error::bad_reply(
                        request,
                        rawnic_proto::Error::LengthMismatch,
                        format!(
                            "the driver said the list needs {needed} bytes, more than the {MAX_LIST_BYTES} a list of bindings can take"
                        ),
                    ));
                }
                if needed <= size {
                    return Err(Error::bad_reply(
                        request,
                        rawnic_proto::Error::LengthMismatch,
                        format!("the driver said the list overflowed {size} bytes but needs only {needed}"),
                    ));
                }
                size = needed;
                continue;
            }
            let c = c.success(request)?;
            let reply = parse_reply(request, &c.data, ListReply::new_checked)?;
            let mut list: Vec<Binding> = reply.entries().enumerate().map(|(i, e)| Binding::from_entry(i, &e)).collect();
            for b in &mut list {
                b.alias = self.backend.alias(&b.name);
            }
            return Ok(list);
        }
        Err(Error::bad_reply(request, rawnic_proto::Error::LengthMismatch, "the list kept growing while it was read"))
    }

    /// `WAIT_BINDS_COMPLETE`: waits until NDIS has finished binding the
    /// adapters present at boot; returns the number of bindings.
    pub fn wait_binds_complete(&self, timeout: Option<Duration>) -> Result<u32> {
        let request = Request::Ioctl(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE);
        let c = self.simple_ioctl(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE, BindsCompleteReply::LEN, timeout)?;
        Ok(parse_reply(request, &c.data, BindsCompleteReply::parse)?.bindings)
    }

    /// `OPEN`: binds this handle to an adapter.
    pub fn open_binding(&self, opts: &OpenOptions) -> Result<OpenInfo> {
        let request = Request::Ioctl(IOCTL_RAWNIC_OPEN);
        let input = opts.encode()?;
        let c = self.call(request, &input, OpenReply::LEN, None)?.success(request)?;
        let r = parse_reply(request, &c.data, OpenReply::parse)?;
        let info = OpenInfo {
            binding_id: r.binding_id,
            mtu: r.mtu,
            mac: MacAddr(r.mac),
            requested_filter: opts.packet_filter,
            packet_filter: r.packet_filter,
        };
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = Some(info);
        Ok(info)
    }

    /// Checks a frame against the interface's rules, with a sentence naming
    /// it when it breaks one.
    fn check_frame(&self, index: usize, f: &SendFrame<'_>) -> Result<()> {
        let max = self.binding().map_or(u16::MAX as usize, |b| b.max_send_len(f.data, f.tci).min(u16::MAX as usize));
        let len = f.data.len();
        if len < ETH_HEADER || len > max {
            let tag =
                if rawnic_proto::inline_tci(f.data).is_some() && f.tci.is_none() { " and its 802.1Q tag" } else { "" };
            return Err(Error::InvalidArgument(format!(
                "frame {index} is {len} bytes long; a frame is {ETH_HEADER} to {max} bytes (the Ethernet header{tag} and at most the MTU)"
            )));
        }
        if let Some(t) = f.tci {
            if t & 0x0FFF == 0x0FFF {
                return Err(Error::InvalidArgument(format!("frame {index} has VLAN ID 4095, which is reserved")));
            }
        }
        Ok(())
    }

    /// `SEND_BATCH` with the default [`SendOptions`].
    pub fn send_batch(&self, frames: &[SendFrame<'_>]) -> Result<SendSummary> {
        self.send_batch_with(frames, &SendOptions::default())
    }

    /// Sends all of `frames`, in order: splits them into batches the driver
    /// takes, and when it accepts only the start of a batch (it ran out of
    /// send buffers) sends the rest again, waiting a little while it accepts
    /// nothing. Fails with [`Error::Send`] (saying how many frames went out)
    /// if a batch fails after others succeeded.
    pub fn send_batch_with(&self, frames: &[SendFrame<'_>], opts: &SendOptions) -> Result<SendSummary> {
        let request = Request::Ioctl(IOCTL_RAWNIC_SEND_BATCH);
        if frames.is_empty() {
            return Ok(SendSummary::default());
        }
        for (i, f) in frames.iter().enumerate() {
            self.check_frame(i, f)?;
        }
        let driver_max = self.version()?.max_batch.clamp(1, MAX_BATCH);
        let max_frames = opts.max_batch_frames.map_or(driver_max, |n| n.clamp(1, driver_max)) as usize;
        let mut sum = SendSummary::default();
        let mut next = 0usize;
        let mut stalled_since: Option<Instant> = None;
        let mut backoff = Duration::from_micros(200);
        let wrap = |sum: &SendSummary, e: Error| {
            if sum.frames > 0 { Error::Send { sent: sum.frames, source: Box::new(e) } } else { e }
        };
        while next < frames.len() {
            // The batch: as many frames as fit the limits, at least one.
            let mut size = SendBatchWriter::HEADER;
            let mut end = next;
            while end < frames.len() && end - next < max_frames {
                let len = frames[end].wire_len();
                if end > next && size + len > opts.max_batch_bytes {
                    break;
                }
                size += len;
                end += 1;
            }
            let mut buf = vec![0u8; size];
            let mut w = SendBatchWriter::new(&mut buf).expect("sized for the header");
            for f in &frames[next..end] {
                w.push(f).expect("sized for every frame");
            }
            let n = w.finish();
            debug_assert_eq!(n, size);
            let c = self
                .call(request, &buf, SendReply::LEN, None)
                .and_then(|c| c.success(request))
                .map_err(|e| wrap(&sum, e))?;
            let reply = parse_reply(request, &c.data, SendReply::parse).map_err(|e| wrap(&sum, e))?;
            let count = (end - next) as u32;
            if reply.accepted > count {
                return Err(wrap(
                    &sum,
                    Error::bad_reply(
                        request,
                        rawnic_proto::Error::InvalidParameter,
                        format!("the driver accepted {} frames of a batch of {count}", reply.accepted),
                    ),
                ));
            }
            sum.batches += 1;
            sum.frames += u64::from(reply.accepted);
            sum.bytes += reply.bytes;
            next += reply.accepted as usize;
            if reply.accepted < count {
                sum.partial += 1;
            }
            if reply.accepted == 0 {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= opts.stall_timeout {
                    return Err(wrap(&sum, Error::Status { request, status: NtStatus::INSUFFICIENT_RESOURCES }));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(20));
            } else {
                stalled_since = None;
                backoff = Duration::from_micros(200);
            }
        }
        Ok(sum)
    }

    /// `WriteFile`: sends one raw frame.
    pub fn write_frame(&self, frame: &[u8]) -> Result<()> {
        self.check_frame(0, &SendFrame { data: frame, tci: None })?;
        let c = self.call(Request::Write, frame, 0, None)?.success(Request::Write)?;
        if c.information != frame.len() as u64 {
            return Err(Error::bad_reply(
                Request::Write,
                rawnic_proto::Error::LengthMismatch,
                format!("the driver wrote {} of the frame's {} bytes", c.information, frame.len()),
            ));
        }
        Ok(())
    }

    /// `ReadFile` of up to `max_bytes`: the frames queued, as many whole
    /// records as fit. Waits for frames when none are queued; after
    /// `timeout`, returns no frames.
    pub fn read_records(&self, max_bytes: usize, timeout: Option<Duration>) -> Result<Records> {
        match self.call(Request::Read, &[], max_bytes, timeout) {
            Ok(c) => Records::parse(c.success(Request::Read)?.data),
            Err(e) if e.is_timeout() => Ok(Records::default()),
            Err(e) => Err(e),
        }
    }

    /// [`read_records`](Device::read_records) of [`DEFAULT_READ_SIZE`],
    /// as owned frames.
    pub fn read_frames(&self, timeout: Option<Duration>) -> Result<Vec<Frame>> {
        Ok(self.read_records(DEFAULT_READ_SIZE, timeout)?.iter().map(|f| f.to_owned()).collect())
    }

    fn oid_request(&self, set: bool, oid: u32, data: &[u8], capacity: usize) -> Result<OidReply> {
        let request = Request::Ioctl(if set { IOCTL_RAWNIC_SET_OID } else { IOCTL_RAWNIC_QUERY_OID });
        if data.len() > MAX_OID_DATA as usize {
            return Err(Error::InvalidArgument(format!(
                "{} bytes of OID data is more than the driver takes ({MAX_OID_DATA})",
                data.len()
            )));
        }
        let req = OidRequest { oid, data };
        let mut input = vec![0u8; OidRequest::FIXED + data.len()];
        req.emit(&mut input).expect("sized for the request");
        let c = self.call(request, &input, OidReplyHeader::LEN + capacity, None)?.success(request)?;
        let (h, payload) = parse_reply(request, &c.data, |b| OidReplyHeader::parse(b, !set))?;
        Ok(OidReply {
            oid,
            ndis_status: h.ndis_status,
            bytes: h.bytes,
            bytes_needed: h.bytes_needed,
            data: payload.to_vec(),
        })
    }

    /// `QUERY_OID` with room for `capacity` bytes of data; the adapter's
    /// status is in the reply.
    pub fn query_oid_raw(&self, oid: u32, capacity: usize) -> Result<OidReply> {
        self.oid_request(false, oid, &[], capacity)
    }

    /// Queries an OID on this handle's binding and returns its data. When
    /// the adapter says the buffer is too short, asks again with the size
    /// it needs. A failure status from the adapter is [`Error::Ndis`].
    pub fn query_oid(&self, oid: u32) -> Result<Vec<u8>> {
        let mut capacity = 1024usize;
        loop {
            let r = self.query_oid_raw(oid, capacity)?;
            let too_short =
                r.ndis_status == NDIS_STATUS_BUFFER_TOO_SHORT || r.ndis_status == NDIS_STATUS_INVALID_LENGTH;
            let needed = r.bytes_needed as usize;
            if too_short && needed > capacity && needed <= MAX_OID_DATA as usize {
                capacity = needed;
                continue;
            }
            return Ok(r.check(false)?.data);
        }
    }

    /// `SET_OID` (allow-listed OIDs only); the adapter's status is in the
    /// reply.
    pub fn set_oid_raw(&self, oid: u32, data: &[u8]) -> Result<OidReply> {
        self.oid_request(true, oid, data, 0)
    }

    /// Sets an OID; returns the bytes the adapter read. A failure status
    /// from the adapter is [`Error::Ndis`].
    pub fn set_oid(&self, oid: u32, data: &[u8]) -> Result<u32> {
        Ok(self.set_oid_raw(oid, data)?.check(true)?.bytes)
    }

    /// `GET_STATS`: this handle's and its binding's counters.
    pub fn stats(&self) -> Result<StatsReply> {
        let request = Request::Ioctl(IOCTL_RAWNIC_GET_STATS);
        let c = self.simple_ioctl(IOCTL_RAWNIC_GET_STATS, StatsReply::LEN, None)?;
        parse_reply(request, &c.data, StatsReply::parse)
    }

    /// `WAIT_EVENT`: the next event of this handle; `None` after `timeout`.
    pub fn wait_event(&self, timeout: Option<Duration>) -> Result<Option<EventRecord>> {
        let request = Request::Ioctl(IOCTL_RAWNIC_WAIT_EVENT);
        match self.simple_ioctl(IOCTL_RAWNIC_WAIT_EVENT, EventRecord::LEN, timeout) {
            Ok(c) => Ok(Some(parse_reply(request, &c.data, EventRecord::parse)?)),
            Err(e) if e.is_timeout() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Parses a reply; a reply of another wire-format version is
/// [`Error::Version`].
pub(crate) fn parse_reply<'a, T>(
    request: Request,
    data: &'a [u8],
    parse: impl FnOnce(&'a [u8]) -> Result<T, rawnic_proto::Error>,
) -> Result<T> {
    parse(data).map_err(|e| {
        if e == rawnic_proto::Error::Version && data.len() >= 2 {
            Error::Version { driver: u16::from_le_bytes([data[0], data[1]]) }
        } else {
            Error::bad_reply(request, e, format!("{} bytes", data.len()))
        }
    })
}
