//! The device bridge: the driver's control device on a Unix socket that
//! speaks `rawnic_proto::bridge`. One connection is one file handle: its first
//! request must be CREATE (with the desired access); then READ, WRITE and
//! IOCTL requests become real IRPs, several may be outstanding, CANCEL
//! cancels one (`IoCancelIrp`), CLOSE (or a disconnect) closes the handle
//! (IRP_MJ_CLEANUP, then IRP_MJ_CLOSE). A peer with uid 0 opens as an
//! administrator (SYSTEM and Administrators in its token); any other as a
//! user.

use crate::io::{self, Identity, IoResult, Request, Waiter};
use crate::kernel::{self, Kernel};
use crate::sim::Sim;
use rawnic_proto::bridge::{CompletionHeader, MAX_MESSAGE, RequestHeader, op};
use std::collections::HashMap;
use std::io::{Read, Write};
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

fn read_msg(s: &mut UnixStream) -> Option<(RequestHeader, Vec<u8>)> {
    let mut head = [0u8; RequestHeader::LEN];
    s.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    if !(RequestHeader::LEN..=MAX_MESSAGE).contains(&len) {
        return None;
    }
    let mut body = vec![0u8; len - RequestHeader::LEN];
    s.read_exact(&mut body).ok()?;
    let mut all = head.to_vec();
    all.extend_from_slice(&body);
    let h = RequestHeader::parse(&all).ok()?;
    Some((h, body))
}

/// A connection's requests in flight by tag: the IRP, and its waiter (which
/// tells it from a later IRP at the same address).
type InFlight = HashMap<u64, (usize, Arc<Waiter>)>;

fn connection(k: &Arc<Kernel>, mut s: UnixStream) {
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
    let file = match read_msg(&mut s) {
        Some((h, _)) if h.op == op::CREATE => match io::create(k, rawnic_proto::USER_PATH, h.code, who) {
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
        },
        _ => {
            drop(tx);
            let _ = writer.join();
            return;
        }
    };
    let pending: Arc<Mutex<InFlight>> = Arc::new(Mutex::new(HashMap::new()));
    let mut closed_by_request = false;
    while let Some((h, body)) = read_msg(&mut s) {
        let req = match h.op {
            op::READ => Request::Read(h.out_len as usize),
            op::WRITE => Request::Write(&body),
            op::IOCTL => Request::Ioctl { code: h.code, input: &body, out_len: h.out_len as usize },
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
        let w = Waiter::new(Some(Box::new(move |r: &IoResult| {
            crate::verifier::lock(&pend).remove(&tag);
            send_completion(&tx2, tag, r);
        })));
        // Register before the IRP can complete.
        match io::request(k, file, req, w.clone()) {
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
