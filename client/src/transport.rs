//! The raw request layer: submit a READ, WRITE or IOCTL with its input bytes
//! and an output size, get a [`Pending`] request, wait for its
//! [`Completion`] with an optional timeout (a timed-out request is
//! cancelled), or cancel it. Both backends — the Windows device and ndisim's
//! Unix-socket bridge — implement it, with the same bytes.

use crate::error::{Error, Result};
use rawnic_proto::NtStatus;
use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

/// How long a cancelled request gets to complete before it is abandoned
/// (on the bridge: its completion is discarded; on Windows: its memory is
/// leaked, because the driver may still write it). Both backends wait this
/// long after a timeout's cancel, so a `timeout` bounds a wait even when
/// the driver never completes the request.
pub(crate) const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// The instant `after` from now; `None` when that is beyond what an
/// [`Instant`] can hold (a wait then has, in effect, no limit).
pub(crate) fn deadline_after(after: Duration) -> Option<Instant> {
    Instant::now().checked_add(after)
}

/// What a request asks the driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// Opening the device (`IRP_MJ_CREATE`).
    Create,
    /// `ReadFile`: whole received-frame records.
    Read,
    /// `WriteFile`: one raw frame.
    Write,
    /// `DeviceIoControl` with this IOCTL code.
    Ioctl(u32),
}

impl Request {
    /// The request's short name: `READ`, `WRITE`, `CREATE`, or the IOCTL's
    /// name (`OPEN`, `SEND_BATCH`, ...).
    pub fn name(self) -> Cow<'static, str> {
        match self {
            Request::Create => "CREATE".into(),
            Request::Read => "READ".into(),
            Request::Write => "WRITE".into(),
            Request::Ioctl(code) => match rawnic_proto::IOCTLS.iter().find(|(c, _)| *c == code) {
                Some((_, name)) => Cow::Borrowed(name),
                None => format!("IOCTL {code:#010x}").into(),
            },
        }
    }

    /// What the request does, as the subject of a sentence.
    pub fn doing(self) -> Cow<'static, str> {
        use rawnic_proto::*;
        let s = match self {
            Request::Create => "opening the device",
            Request::Read => "reading frames",
            Request::Write => "writing a frame",
            Request::Ioctl(IOCTL_RAWNIC_GET_VERSION) => "asking the driver for its version",
            Request::Ioctl(IOCTL_RAWNIC_LIST_BINDINGS) => "listing the bindings",
            Request::Ioctl(IOCTL_RAWNIC_WAIT_BINDS_COMPLETE) => "waiting for NDIS to finish binding",
            Request::Ioctl(IOCTL_RAWNIC_OPEN) => "opening the binding",
            Request::Ioctl(IOCTL_RAWNIC_SEND_BATCH) => "sending frames",
            Request::Ioctl(IOCTL_RAWNIC_QUERY_OID) => "querying an OID",
            Request::Ioctl(IOCTL_RAWNIC_SET_OID) => "setting an OID",
            Request::Ioctl(IOCTL_RAWNIC_GET_STATS) => "reading the statistics",
            Request::Ioctl(IOCTL_RAWNIC_WAIT_EVENT) => "waiting for an event",
            Request::Ioctl(IOCTL_RAWNIC_RING_ATTACH) => "attaching the rings",
            Request::Ioctl(IOCTL_RAWNIC_RING_DETACH) => "detaching the rings",
            Request::Ioctl(IOCTL_RAWNIC_RING_WAIT) => "waiting on the rings",
            Request::Ioctl(IOCTL_RAWNIC_RING_KICK) => "sending from the tx ring",
            Request::Ioctl(code) => return format!("IOCTL {code:#010x}").into(),
        };
        s.into()
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a request ended: the NTSTATUS, the `Information` the driver set
/// (bytes written to the output, or bytes consumed by a write), and the
/// output bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub status: NtStatus,
    pub information: u64,
    pub data: Vec<u8>,
}

impl Completion {
    /// The completion if its status is `NT_SUCCESS`, else the error for it.
    pub fn success(self, request: Request) -> Result<Completion> {
        if self.status.is_success() { Ok(self) } else { Err(Error::from_status(request, self.status)) }
    }
}

/// A submitted request. [`wait`](Pending::wait) for its completion, or
/// [`cancel`](Pending::cancel) it. Dropping a request that has not completed
/// cancels it; on Windows the drop then waits for the cancellation, because
/// the driver may still write to its buffers until then — for at most 10
/// seconds, after which the buffers are leaked rather than freed.
///
/// A `Pending` is `Send` on every backend: it may be waited for on another
/// thread than the one that submitted it. On Windows, though, the system
/// cancels a request when the thread that submitted it exits (the device
/// handle has no completion port): submit from a thread that outlives the
/// request, or expect [`Error::Cancelled`](crate::Error::Cancelled) (the
/// bridge has no such tie).
pub struct Pending<'d> {
    pub(crate) request: Request,
    pub(crate) inner: crate::backend::Pending<'d>,
}

impl Pending<'_> {
    /// What the request is.
    pub fn request(&self) -> Request {
        self.request
    }

    /// Waits until the request completes and returns its completion,
    /// whatever its status. With a timeout, a request still pending then is
    /// cancelled: if the driver completes it as cancelled the result is
    /// [`Error::TimedOut`]; if it completed anyway (the race is lost by the
    /// cancel), its completion is returned, so no received data is lost.
    /// The driver gets 10 seconds to complete a cancelled request; if it
    /// does not, the result is [`Error::TimedOut`] too (the bridge then
    /// discards its completion; Windows leaks its buffers), so a timeout
    /// bounds the wait even when the driver never completes the request.
    pub fn wait(self, timeout: Option<Duration>) -> Result<Completion> {
        let request = self.request;
        self.inner.wait(request, timeout)
    }

    /// Asks the driver to cancel the request; [`wait`](Pending::wait) then
    /// returns its completion (usually `STATUS_CANCELLED`).
    pub fn cancel(&self) -> Result<()> {
        self.inner.cancel()
    }
}

/// Cancels every pending request of a device, from any thread. Obtained from
/// [`Device::canceller`](crate::Device::canceller). It does not keep the
/// device open: dropping the `Device` closes its handle (and with it the
/// handle's binding and receive queue) on both backends, and then
/// [`cancel_all`](Canceller::cancel_all) does nothing.
#[derive(Clone)]
pub struct Canceller {
    pub(crate) inner: crate::backend::Canceller,
}

impl Canceller {
    /// Cancels every request of the device that is pending now. Requests
    /// submitted later are not affected.
    pub fn cancel_all(&self) -> Result<()> {
        self.inner.cancel_all()
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Canceller")
    }
}

impl fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pending({})", self.request)
    }
}
