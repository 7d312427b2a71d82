//! The device bridge: the driver's control device on a Unix socket that
//! speaks `rawnic_proto::bridge`. One connection is one file handle: its first
//! request must be CREATE (with the desired access); then READ, WRITE and
//! IOCTL requests become real IRPs, several may be outstanding, CANCEL
//! cancels one (`IoCancelIrp`), CLOSE (or a disconnect) closes the handle
//! (IRP_MJ_CLEANUP, then IRP_MJ_CLOSE). A peer with uid 0 opens as an
//! administrator (SYSTEM and Administrators in its token); any other as a
//! user.
//!
//! IOCTL_SHARED shares the peer's memory with the driver: every message is
//! read with `recvmsg`, so the descriptors a message carries (`SCM_RIGHTS`)
//! are known with it. An IOCTL_SHARED message with exactly one, a memfd of
//! exactly `out_len` bytes (whole pages) open for reading and writing,
//! becomes an IRP whose direct output buffer is that memory
//! (`UserRegion::from_fd`, which seals it against shrinking so the peer
//! cannot pull pages from under the mapping); anything else is completed
//! with STATUS_INVALID_PARAMETER, no IRP made. Descriptors on any other
//! request are refused the same way, and on CREATE, CANCEL or CLOSE (which
//! have no completion of their own) end the connection. Every descriptor
//! received is closed when its message is done with, unless its region
//! lives on in an IRP.

use crate::io::{self, Identity, IoResult, Request, UserRegion, Waiter};
use crate::kernel::{self, Kernel};
use crate::sim::Sim;
use ndis_sys::{METHOD_IN_DIRECT, METHOD_OUT_DIRECT, NTSTATUS, STATUS_INVALID_PARAMETER};
use rawnic_proto::bridge::{CompletionHeader, MAX_MESSAGE, RequestHeader, SHARED_PAGE, op};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A running bridge; stops accepting when dropped.
pub struct Bridge {
    path: std::path::PathBuf,
    listener_fd: i32,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        // Wake the accept loop: a connection, or, if the socket file is
        // gone, shutting the listening socket down.
        if UnixStream::connect(&self.path).is_err() {
            // SAFETY: shutdown on the listener's descriptor, which the
            // accept thread still owns (it is closed only when that thread
            // ends, after this wakes it).
            unsafe { libc::shutdown(self.listener_fd, libc::SHUT_RDWR) };
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED into a ucred of the right size.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

/// Serves the driver's control device of `sim` on the socket `path`.
pub fn serve(sim: &Sim, path: &Path) -> std::io::Result<Bridge> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    let listener_fd = l.as_raw_fd();
    let k = sim.kernel().clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let thread = std::thread::Builder::new().name("ndisim-bridge".into()).spawn(move || {
        for c in l.incoming() {
            if st.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            let Ok(c) = c else { continue };
            let k = k.clone();
            let _ = std::thread::Builder::new().name("ndisim-bridge-conn".into()).spawn(move || {
                let _e = kernel::enter(&k);
                connection(&k, c);
            });
        }
    })?;
    Ok(Bridge { path: path.to_path_buf(), listener_fd, stop, thread: Some(thread) })
}

fn send_completion(w: &mpsc::Sender<Vec<u8>>, tag: u64, r: &IoResult) {
    let h =
        CompletionHeader { tag, status: r.status, information: r.information as u64, data_len: r.data.len() as u32 };
    let mut buf = vec![0u8; CompletionHeader::LEN + r.data.len()];
    if h.emit(&mut buf).is_ok() {
        buf[CompletionHeader::LEN..].copy_from_slice(&r.data);
        let _ = w.send(buf);
    }
}

/// The descriptors that arrived with one message's bytes (closed when
/// dropped), and whether the kernel dropped some for want of room or this
/// side closed some over the limit.
#[derive(Default)]
struct Passed {
    fds: Vec<OwnedFd>,
    truncated: bool,
}

impl Passed {
    fn any(&self) -> bool {
        self.truncated || !self.fds.is_empty()
    }
}

/// The most descriptors kept from one message; a message with more is
/// refused (the rest are closed at once).
const MAX_FDS: usize = 4;

/// One `recvmsg` into `buf`, collecting descriptors into `passed`.
fn recv_some(s: &UnixStream, buf: &mut [u8], passed: &mut Passed) -> std::io::Result<usize> {
    // Room for MAX_FDS descriptors and then some, aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (which covers `buf`) and at `control`,
    // all live for the call; received descriptors are close-on-exec.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        passed.truncated = true;
    }
    // SAFETY: `msg` was filled by recvmsg; its control pointer is `control`.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: a header recvmsg wrote inside `control` (CMSG_FIRSTHDR and
        // CMSG_NXTHDR return only those).
        let h = unsafe { std::ptr::read_unaligned(c) };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: the length of a header with no data; no pointers.
            let empty = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (h.cmsg_len as usize).saturating_sub(empty) / std::mem::size_of::<libc::c_int>();
            // SAFETY: the data of the header `c`, inside `control`.
            let data = unsafe { libc::CMSG_DATA(c) }.cast::<libc::c_int>();
            for i in 0..count {
                // SAFETY: descriptor `i` of the `count` the header's length
                // covers, inside `control`, read unaligned.
                let raw = unsafe { std::ptr::read_unaligned(data.wrapping_add(i)) };
                // SAFETY: the kernel installed `raw` in this process for
                // this message; nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                if passed.fds.len() < MAX_FDS {
                    passed.fds.push(fd);
                } else {
                    passed.truncated = true;
                }
            }
        }
        // SAFETY: `c` is a header of `msg`'s control data.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    Ok(n as usize)
}

/// Fills `buf` from the stream, collecting descriptors; `None` at the end
/// of the stream or on an error.
fn recv_full(s: &UnixStream, buf: &mut [u8], passed: &mut Passed) -> Option<()> {
    let mut got = 0;
    while got < buf.len() {
        match recv_some(s, &mut buf[got..], passed) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(())
}

/// The next message, with the descriptors that came with it. Messages are
/// read exactly (header, then body), so a read never takes bytes of the
/// next one, and a descriptor, which arrives with the first byte of the
/// message it was sent with, always belongs to the message being read.
fn read_msg(s: &UnixStream) -> Option<(RequestHeader, Vec<u8>, Passed)> {
    let mut passed = Passed::default();
    let mut head = [0u8; RequestHeader::LEN];
    recv_full(s, &mut head, &mut passed)?;
    let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    if !(RequestHeader::LEN..=MAX_MESSAGE).contains(&len) {
        return None;
    }
    let mut body = vec![0u8; len - RequestHeader::LEN];
    recv_full(s, &mut body, &mut passed)?;
    let mut all = head.to_vec();
    all.extend_from_slice(&body);
    let h = RequestHeader::parse(&all).ok()?;
    Some((h, body, passed))
}

/// The memory an IOCTL_SHARED message shares, or the status that refuses
/// it: exactly one descriptor, a memfd of exactly `out_len` bytes (whole
/// pages) open for reading and writing, with a direct-I/O IOCTL code.
fn shared_region(h: &RequestHeader, passed: Passed) -> Result<Arc<UserRegion>, NTSTATUS> {
    let Passed { mut fds, truncated } = passed;
    if truncated || fds.len() != 1 {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let fd = fds.pop().expect("one");
    let len = h.out_len as usize;
    if len == 0 || len % SHARED_PAGE != 0 || !matches!(h.code & 3, METHOD_IN_DIRECT | METHOD_OUT_DIRECT) {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a stat buffer; the descriptor is ours.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 != len as u64 {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: reads the descriptor's status flags; no pointers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE != libc::O_RDWR {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // Seals it against shrinking (refused for anything but a memfd that
    // allows it) and maps it.
    UserRegion::from_fd(fd, len).map_err(|_| STATUS_INVALID_PARAMETER)
}

/// A connection's requests in flight by tag: the IRP, and its waiter (which
/// tells it from a later IRP at the same address).
type InFlight = HashMap<u64, (usize, Arc<Waiter>)>;

fn connection(k: &Arc<Kernel>, s: UnixStream) {
    let who = if peer_uid(&s) == Some(0) { Identity::Admin } else { Identity::User };
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut ws = match s.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let writer = std::thread::spawn(move || {
        for m in rx {
            if ws.write_all(&m).is_err() {
                return;
            }
        }
    });
    // CREATE first.
    let file = match read_msg(&s) {
        Some((h, _, passed)) if h.op == op::CREATE && !passed.any() => {
            match io::create(k, rawnic_proto::USER_PATH, h.code, who) {
                Ok(f) => {
                    send_completion(&tx, h.tag, &IoResult { status: 0, information: 0, data: Vec::new() });
                    f
                }
                Err(st) => {
                    send_completion(&tx, h.tag, &IoResult { status: st, information: 0, data: Vec::new() });
                    drop(tx);
                    let _ = writer.join();
                    return;
                }
            }
        }
        _ => {
            drop(tx);
            let _ = writer.join();
            return;
        }
    };
    let pending: Arc<Mutex<InFlight>> = Arc::new(Mutex::new(HashMap::new()));
    let mut closed_by_request = false;
    while let Some((h, body, passed)) = read_msg(&s) {
        let invalid = IoResult { status: STATUS_INVALID_PARAMETER, information: 0, data: Vec::new() };
        if h.op != op::IOCTL_SHARED && passed.any() {
            drop(passed);
            if matches!(h.op, op::CANCEL | op::CLOSE) {
                // No completion to refuse it with: a broken peer.
                break;
            }
            send_completion(&tx, h.tag, &invalid);
            continue;
        }
        let req = match h.op {
            op::READ => Request::Read(h.out_len as usize),
            op::WRITE => Request::Write(&body),
            op::IOCTL => Request::Ioctl { code: h.code, input: &body, out_len: h.out_len as usize },
            op::IOCTL_SHARED => match shared_region(&h, passed) {
                Ok(region) => Request::IoctlRegion { code: h.code, input: &body, region, skip: 0 },
                Err(status) => {
                    send_completion(&tx, h.tag, &IoResult { status, ..invalid });
                    continue;
                }
            },
            op::CANCEL => {
                let irp = crate::verifier::lock(&pending).get(&h.tag).cloned();
                if let Some((irp, w)) = irp {
                    io::cancel_request(k, irp, &w);
                }
                continue;
            }
            op::ALIAS => {
                let name = String::from_utf8_lossy(&body);
                let alias = k.ndis.adapters().iter().find(|a| {
                    String::from_utf16_lossy(&a.ndis_name[..a.ndis_name.len() - 1]).eq_ignore_ascii_case(&name)
                });
                let r = match alias {
                    Some(a) => {
                        let data = a.name.as_bytes().to_vec();
                        IoResult { status: 0, information: data.len(), data }
                    }
                    None => {
                        IoResult { status: ndis_sys::STATUS_OBJECT_NAME_NOT_FOUND, information: 0, data: Vec::new() }
                    }
                };
                send_completion(&tx, h.tag, &r);
                continue;
            }
            op::CLOSE => {
                io::close(k, file, false);
                send_completion(&tx, h.tag, &IoResult { status: 0, information: 0, data: Vec::new() });
                closed_by_request = true;
                break;
            }
            _ => continue,
        };
        let tx2 = tx.clone();
        let pend = pending.clone();
        let tag = h.tag;
        let shared = h.op == op::IOCTL_SHARED;
        let w = Waiter::new(Some(Box::new(move |r: &IoResult| {
            crate::verifier::lock(&pend).remove(&tag);
            if shared {
                // The output is the shared memory itself: no data.
                send_completion(
                    &tx2,
                    tag,
                    &IoResult { status: r.status, information: r.information, data: Vec::new() },
                );
            } else {
                send_completion(&tx2, tag, r);
            }
        })));
        // Register before the IRP can complete.
        match io::request(k, file, req, w.clone(), false) {
            Ok((irp, _)) => {
                if w.try_result().is_none() {
                    crate::verifier::lock(&pending).insert(tag, (irp, w.clone()));
                    if w.try_result().is_some() {
                        crate::verifier::lock(&pending).remove(&tag);
                    }
                }
            }
            Err(st) => send_completion(&tx, tag, &IoResult { status: st, information: 0, data: Vec::new() }),
        }
    }
    if !closed_by_request {
        // The client went away: as when a process dies, its IRPs are
        // cancelled, then the handle is cleaned up and closed.
        io::close(k, file, true);
    }
    drop(tx);
    let _ = writer.join();
}

/// A minimal bridge client (for tests and tools).
pub struct Client {
    s: UnixStream,
    tag: u64,
}

impl Client {
    /// Connects and sends CREATE with `access`; Err(status) when refused.
    pub fn open(path: &Path, access: u32) -> std::io::Result<Result<Client, i32>> {
        let s = UnixStream::connect(path)?;
        let mut c = Client { s, tag: 0 };
        let t = c.send(op::CREATE, access, 0, &[])?;
        let (tag, st, _, _) = c.recv()?;
        assert_eq!(tag, t);
        Ok(if st == 0 { Ok(c) } else { Err(st) })
    }

    /// Sends a request; returns its tag.
    pub fn send(&mut self, opc: u8, code: u32, out_len: u32, input: &[u8]) -> std::io::Result<u64> {
        self.tag += 1;
        self.send_tagged(opc, self.tag, code, out_len, input)?;
        Ok(self.tag)
    }

    /// Sends a request with a chosen tag (CANCEL names the tag to cancel).
    pub fn send_tagged(&mut self, opc: u8, tag: u64, code: u32, out_len: u32, input: &[u8]) -> std::io::Result<u64> {
        let h = RequestHeader { op: opc, tag, code, out_len, in_len: input.len() as u32 };
        let mut buf = vec![0u8; RequestHeader::LEN + input.len()];
        h.emit(&mut buf).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        buf[RequestHeader::LEN..].copy_from_slice(input);
        self.s.write_all(&buf)?;
        Ok(tag)
    }

    /// The next completion: (tag, status, information, data).
    pub fn recv(&mut self) -> std::io::Result<(u64, i32, u64, Vec<u8>)> {
        let mut head = [0u8; CompletionHeader::LEN];
        self.s.read_exact(&mut head)?;
        let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len.saturating_sub(CompletionHeader::LEN)];
        self.s.read_exact(&mut body)?;
        let mut all = head.to_vec();
        all.extend_from_slice(&body);
        let h = CompletionHeader::parse(&all).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        Ok((h.tag, h.status, h.information, body))
    }
}
