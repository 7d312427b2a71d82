//! The `unix:SOCKET` backend: ndisim's device bridge (`rawnic_proto::bridge`),
//! over a Unix-domain socket (Winsock's `AF_UNIX` on Windows).
//!
//! One connection is one file handle. Requests carry a tag; a background
//! thread reads completions and hands each to the request with its tag, so
//! any number of requests (a pending READ, a pending WAIT_EVENT, sends) can
//! be outstanding at once from any number of threads. A request is
//! cancelled with a `CANCEL` message naming its tag; dropping the device
//! sends `CLOSE`.

use crate::error::{Error, Result};
use crate::transport::{CANCEL_GRACE, Completion, Request, deadline_after};
use rawnic_proto::NtStatus;
use rawnic_proto::bridge::{CompletionHeader, GENERIC_READ, GENERIC_WRITE, MAX_MESSAGE, RequestHeader, op};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A connected Unix-domain stream socket: std's on Unix, Winsock's
/// `AF_UNIX` on Windows. Shared by reference: one thread reads while others
/// write.
#[cfg(unix)]
type Stream = std::os::unix::net::UnixStream;
#[cfg(windows)]
type Stream = crate::winsock::UnixStream;

/// How long the bridge gets to answer `CREATE`.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing waits for the bridge to end the connection.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The largest input a request may carry.
pub const MAX_INPUT: usize = MAX_MESSAGE - RequestHeader::LEN;
/// The largest output a request may ask for.
pub const MAX_OUTPUT: usize = MAX_MESSAGE - CompletionHeader::LEN;

enum Slot {
    /// Submitted; `out_len` bounds the data its completion may carry.
    Waiting {
        out_len: u32,
    },
    Done(Completion),
    /// Its `Pending` was dropped or gave up: discard the completion.
    Abandoned,
}

#[derive(Default)]
struct State {
    slots: HashMap<u64, Slot>,
    /// Why the connection is unusable, once it is.
    dead: Option<String>,
    /// `CLOSE` was sent: completions for unknown tags are expected now.
    closing: bool,
    reader_done: bool,
}

struct Shared {
    path: PathBuf,
    stream: Arc<Stream>,
    /// Held while a message is written, so that messages never interleave.
    writer: Mutex<()>,
    state: Mutex<State>,
    cond: Condvar,
    next_tag: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Sends one message: header and input, under the writer lock so that
    /// messages from different threads never interleave.
    fn send(&self, header: &RequestHeader, input: &[u8]) -> Result<()> {
        let mut msg = vec![0u8; RequestHeader::LEN + input.len()];
        header.emit(&mut msg).map_err(|e| {
            Error::InvalidArgument(format!("a bridge request of {} bytes cannot be encoded ({e:?})", input.len()))
        })?;
        msg[RequestHeader::LEN..].copy_from_slice(input);
        let _writing = lock(&self.writer);
        (&*self.stream)
            .write_all(&msg)
            .map_err(|e| self.broken(format!("writing to the device bridge at {}", self.path.display()), e))
    }

    /// Sends one message with `fd` as its `SCM_RIGHTS` ancillary data (in
    /// the `sendmsg` that carries its first bytes, so that ndisim receives
    /// the descriptor with this message).
    #[cfg(target_os = "linux")]
    fn send_with_fd(&self, header: &RequestHeader, input: &[u8], fd: std::os::fd::BorrowedFd<'_>) -> Result<()> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let mut msg = vec![0u8; RequestHeader::LEN + input.len()];
        header.emit(&mut msg).map_err(|e| {
            Error::InvalidArgument(format!("a bridge request of {} bytes cannot be encoded ({e:?})", input.len()))
        })?;
        msg[RequestHeader::LEN..].copy_from_slice(input);
        let context = || format!("writing to the device bridge at {}", self.path.display());
        let _writing = lock(&self.writer);
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [fd];
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(Error::InvalidArgument("a descriptor does not fit its control message".into()));
        }
        let sent = loop {
            match rustix::net::sendmsg(&*self.stream, &[io::IoSlice::new(&msg)], &mut control, SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(self.broken(context(), e.into())),
                Ok(n) => break n,
            }
        };
        // A stream socket may take the bytes in parts; the descriptor went
        // with the first.
        (&*self.stream).write_all(&msg[sent..]).map_err(|e| self.broken(context(), e))
    }

    /// Marks the connection dead after an I/O error and returns the error.
    fn broken(&self, context: String, e: io::Error) -> Error {
        let mut st = self.state();
        if st.dead.is_none() {
            st.dead = Some(format!("{context}: {e}"));
        }
        self.cond.notify_all();
        Error::io(context, e)
    }

    fn send_cancel(&self, tag: u64) -> Result<()> {
        self.send(&RequestHeader { op: op::CANCEL, tag, code: 0, out_len: 0, in_len: 0 }, &[])
    }

    fn disconnected(&self, st: &State) -> Error {
        Error::Disconnected { reason: st.dead.clone().unwrap_or_else(|| "the connection is closed".into()) }
    }
}

/// An open bridge connection: one file handle of the driver's device.
pub(crate) struct Bridge {
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    created: bool,
}

impl Bridge {
    /// Connects to the bridge at `path` and opens the device (`CREATE` with
    /// read and write access).
    pub(crate) fn connect(path: &Path) -> Result<Bridge> {
        let context = || format!("cannot connect to the device bridge at {}", path.display());
        let stream = Stream::connect(path).map_err(|e| {
            let hint = match e.kind() {
                io::ErrorKind::NotFound => " (no such socket: is `ndisim run --listen` running?)",
                io::ErrorKind::ConnectionRefused => " (nothing is listening there: is ndisim running?)",
                _ => "",
            };
            Error::io(format!("{}{hint}", context()), e)
        })?;
        let stream = Arc::new(stream);
        let reader_stream = Arc::clone(&stream);
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            stream,
            writer: Mutex::new(()),
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            next_tag: AtomicU64::new(1),
        });
        let reader_shared = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("rawnic-bridge".into())
            .spawn(move || reader_loop(&reader_shared, reader_stream))
            .map_err(|e| Error::io("cannot start the bridge reader thread", e))?;
        let mut bridge = Bridge { shared, reader: Some(reader), created: false };
        let c = bridge.submit(Request::Create, &[], 0)?.wait(Request::Create, Some(CREATE_TIMEOUT))?;
        if !c.status.is_success() {
            return Err(Error::from_status(Request::Create, c.status));
        }
        bridge.created = true;
        Ok(bridge)
    }

    pub(crate) fn submit(&self, request: Request, input: &[u8], out_len: usize) -> Result<BridgePending<'_>> {
        let (opcode, code) = match request {
            Request::Create => (op::CREATE, GENERIC_READ | GENERIC_WRITE),
            Request::Read => (op::READ, 0),
            Request::Write => (op::WRITE, 0),
            Request::Ioctl(code) => (op::IOCTL, code),
        };
        self.submit_op(opcode, code, request, input, out_len)
    }

    /// The interface alias the bridge's host gives the adapter `name`
    /// (`op::ALIAS`); `None` when it has none or does not answer.
    pub(crate) fn alias(&self, name: &str) -> Option<String> {
        // Errors are reported against a request; this one is not an IRP.
        let as_request = Request::Ioctl(0);
        let c = self.submit_op(op::ALIAS, 0, as_request, name.as_bytes(), 1024).ok()?;
        let c = c.wait(as_request, Some(Duration::from_secs(5))).ok()?;
        (c.status == NtStatus::SUCCESS).then(|| String::from_utf8(c.data).ok()).flatten().filter(|a| !a.is_empty())
    }

    /// An IOCTL whose output buffer is `mem` (`op::IOCTL_SHARED`): the
    /// memfd travels with the message, and ndisim maps the same pages for
    /// the IRP's MDL. The completion carries no data.
    #[cfg(target_os = "linux")]
    pub(crate) fn submit_shared(
        &self,
        request: Request,
        input: &[u8],
        mem: &crate::ring::mem::SharedMem,
    ) -> Result<BridgePending<'_>> {
        let Request::Ioctl(code) = request else {
            return Err(Error::InvalidArgument(format!("{} cannot take shared memory", request.doing())));
        };
        if mem.len() > MAX_MESSAGE {
            return Err(Error::InvalidArgument(format!(
                "{} shares {} bytes; the device bridge maps at most {MAX_MESSAGE}",
                request.doing(),
                mem.len()
            )));
        }
        let fd = mem.fd();
        self.submit_with(request, input, 0, |shared, tag| {
            let header = RequestHeader {
                op: op::IOCTL_SHARED,
                tag,
                code,
                out_len: mem.len() as u32,
                in_len: input.len() as u32,
            };
            shared.send_with_fd(&header, input, fd)
        })
    }

    fn submit_op(
        &self,
        opcode: u8,
        code: u32,
        request: Request,
        input: &[u8],
        out_len: usize,
    ) -> Result<BridgePending<'_>> {
        self.submit_with(request, input, out_len, |shared, tag| {
            let header = RequestHeader { op: opcode, tag, code, out_len: out_len as u32, in_len: input.len() as u32 };
            shared.send(&header, input)
        })
    }

    /// Checks the sizes, registers a slot for a new tag whose completion
    /// may carry `out_len` bytes, and sends the request with `send`.
    fn submit_with(
        &self,
        request: Request,
        input: &[u8],
        out_len: usize,
        send: impl FnOnce(&Shared, u64) -> Result<()>,
    ) -> Result<BridgePending<'_>> {
        if input.len() > MAX_INPUT {
            return Err(Error::InvalidArgument(format!(
                "{} carries {} bytes of input; the device bridge takes at most {MAX_INPUT}",
                request.doing(),
                input.len()
            )));
        }
        if out_len > MAX_OUTPUT {
            return Err(Error::InvalidArgument(format!(
                "{} asks for {out_len} bytes of output; the device bridge returns at most {MAX_OUTPUT}",
                request.doing()
            )));
        }
        let shared = &self.shared;
        let tag = shared.next_tag.fetch_add(1, Ordering::Relaxed);
        {
            // Registered before it is sent, so that the completion always
            // finds its slot.
            let mut st = shared.state();
            if st.dead.is_some() || st.closing {
                return Err(shared.disconnected(&st));
            }
            st.slots.insert(tag, Slot::Waiting { out_len: out_len as u32 });
        }
        if let Err(e) = send(shared, tag) {
            shared.state().slots.remove(&tag);
            return Err(e);
        }
        Ok(BridgePending { shared, tag, finished: false, cancelled: Cell::new(false) })
    }

    pub(crate) fn canceller(&self) -> BridgeCanceller {
        BridgeCanceller { shared: Arc::clone(&self.shared) }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let shared = &self.shared;
        let tag = shared.next_tag.fetch_add(1, Ordering::Relaxed);
        shared.state().closing = true;
        if self.created {
            // The connection may already be broken; then there is nothing
            // left to close.
            let _ = shared.send(&RequestHeader { op: op::CLOSE, tag, code: 0, out_len: 0, in_len: 0 }, &[]);
        }
        let _ = shared.stream.shutdown(Shutdown::Write);
        // The bridge completes what CLOSE cancelled and ends the connection;
        // wait for that (bounded), then make sure the reader stops.
        let deadline = deadline_after(CLOSE_GRACE);
        let mut st = shared.state();
        while !st.reader_done {
            let now = Instant::now();
            st = match deadline {
                Some(d) if now >= d => break,
                Some(d) => shared.cond.wait_timeout(st, d - now).unwrap_or_else(PoisonError::into_inner).0,
                None => shared.cond.wait(st).unwrap_or_else(PoisonError::into_inner),
            };
        }
        let done = st.reader_done;
        drop(st);
        let _ = shared.stream.shutdown(Shutdown::Both);
        if let Some(r) = self.reader.take() {
            // On Unix, shutting the socket down ends a blocked read; Winsock
            // may leave it blocked, so there a reader of a bridge that never
            // hung up is left behind rather than waited for.
            if done || cfg!(unix) {
                let _ = r.join();
            }
        }
    }
}

/// Reads completions until the connection ends, handing each to its slot.
fn reader_loop(shared: &Shared, stream: Arc<Stream>) {
    let mut stream = &*stream;
    let reason = loop {
        let mut hdr = [0u8; CompletionHeader::LEN];
        match read_full(&mut stream, &mut hdr) {
            Ok(true) => {}
            Ok(false) => break "the bridge closed the connection".to_string(),
            Err(e) => break format!("reading from {}: {e}", shared.path.display()),
        }
        let h = match CompletionHeader::parse(&hdr) {
            Ok(h) => h,
            Err(e) => break format!("the bridge sent a malformed completion header ({e:?})"),
        };
        let mut data = vec![0u8; h.data_len as usize];
        if let Err(e) = stream.read_exact(&mut data) {
            break format!("reading a completion's data from {}: {e}", shared.path.display());
        }
        let mut st = shared.state();
        let closing = st.closing;
        match st.slots.get_mut(&h.tag) {
            Some(slot @ Slot::Waiting { .. }) => {
                let Slot::Waiting { out_len } = *slot else { unreachable!() };
                if h.data_len > out_len {
                    break format!(
                        "the bridge returned {} bytes for request {} whose output buffer holds {out_len}",
                        h.data_len, h.tag
                    );
                }
                // As on Windows, the output is the first `information`
                // bytes the driver wrote.
                if (data.len() as u64) > h.information {
                    data.truncate(h.information as usize);
                }
                *slot = Slot::Done(Completion { status: NtStatus(h.status), information: h.information, data });
                shared.cond.notify_all();
            }
            Some(Slot::Abandoned) => {
                st.slots.remove(&h.tag);
            }
            Some(Slot::Done(_)) => break format!("the bridge completed request {} twice", h.tag),
            None if closing => {}
            None => break format!("the bridge completed request {}, which is not outstanding", h.tag),
        }
    };
    let mut st = shared.state();
    if st.dead.is_none() {
        st.dead = Some(reason);
    }
    st.reader_done = true;
    shared.cond.notify_all();
}

/// Fills `buf`; `Ok(false)` on a clean end of stream before the first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection ended inside a message")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A request outstanding on the bridge.
pub(crate) struct BridgePending<'d> {
    shared: &'d Shared,
    tag: u64,
    finished: bool,
    /// A CANCEL was sent for it (once is enough).
    cancelled: Cell<bool>,
}

enum Waited {
    Done(Completion),
    Expired,
}

impl BridgePending<'_> {
    /// Waits for the completion until `deadline`.
    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<Waited> {
        let shared = self.shared;
        let mut st = shared.state();
        loop {
            if let Some(Slot::Done(_)) = st.slots.get(&self.tag) {
                let Some(Slot::Done(c)) = st.slots.remove(&self.tag) else { unreachable!() };
                self.finished = true;
                return Ok(Waited::Done(c));
            }
            if st.dead.is_some() {
                st.slots.remove(&self.tag);
                self.finished = true;
                return Err(shared.disconnected(&st));
            }
            match deadline {
                None => st = shared.cond.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(Waited::Expired);
                    }
                    st = shared.cond.wait_timeout(st, d - now).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
    }

    pub(crate) fn wait(mut self, request: Request, timeout: Option<Duration>) -> Result<Completion> {
        let deadline = timeout.and_then(deadline_after);
        if let Waited::Done(c) = self.wait_until(deadline)? {
            return Ok(c);
        }
        let after = timeout.unwrap_or_default();
        self.cancel()?;
        match self.wait_until(deadline_after(CANCEL_GRACE))? {
            Waited::Done(c) if c.status == NtStatus::CANCELLED => Err(Error::TimedOut { request, after }),
            // It completed before the cancel reached it.
            Waited::Done(c) => Ok(c),
            // The cancel was sent; its completion, if it ever comes, is
            // discarded (Drop marks the slot abandoned).
            Waited::Expired => Err(Error::TimedOut { request, after }),
        }
    }

    pub(crate) fn cancel(&self) -> Result<()> {
        if self.cancelled.replace(true) {
            return Ok(());
        }
        self.shared.send_cancel(self.tag)
    }
}

impl Drop for BridgePending<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut st = self.shared.state();
        match st.slots.get_mut(&self.tag) {
            Some(Slot::Done(_)) | None => {
                st.slots.remove(&self.tag);
            }
            Some(slot) => {
                *slot = Slot::Abandoned;
                drop(st);
                // A broken connection has nothing left to cancel.
                let _ = self.cancel();
            }
        }
    }
}

/// Cancels a bridge connection's pending requests from any thread.
#[derive(Clone)]
pub(crate) struct BridgeCanceller {
    shared: Arc<Shared>,
}

impl BridgeCanceller {
    pub(crate) fn cancel_all(&self) -> Result<()> {
        let tags: Vec<u64> = {
            let st = self.shared.state();
            if st.closing {
                return Ok(());
            }
            if st.dead.is_some() {
                return Err(self.shared.disconnected(&st));
            }
            st.slots.iter().filter(|(_, s)| matches!(s, Slot::Waiting { .. })).map(|(t, _)| *t).collect()
        };
        for tag in tags {
            self.shared.send_cancel(tag)?;
        }
        Ok(())
    }
}
