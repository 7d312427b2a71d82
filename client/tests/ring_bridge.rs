//! The device bridge's shared-memory op (`op::IOCTL_SHARED`), spoken by hand
//! to ndisim running the real rawnic.sys: what a peer may pass and what is
//! refused, and that no descriptor it sends outlives its use in ndisim.
//!
//! One test in this file, on purpose: ndisim runs in this process, so the
//! process's open descriptors are ndisim's too, and the leak check counts
//! them; another test running at the same time would open its own.
#![cfg(target_os = "linux")]

use ndisim::bridge;
use rawnic_proto::bridge::{CompletionHeader, GENERIC_READ, GENERIC_WRITE, RequestHeader, op};
use rawnic_proto::ring::{RingLayout, RingSetup};
use rawnic_proto::*;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One connection, spoken raw.
struct Raw {
    s: UnixStream,
    tag: u64,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = Raw { s, tag: 0 };
        let (_, st) = r.call(op::CREATE, GENERIC_READ | GENERIC_WRITE, 0, &[], &[]);
        assert_eq!(st, NtStatus::SUCCESS);
        r
    }

    /// Sends one message with `fds` as SCM_RIGHTS; returns its tag.
    fn send(&mut self, opc: u8, code: u32, out_len: u32, input: &[u8], fds: &[BorrowedFd<'_>]) -> u64 {
        self.tag += 1;
        let h = RequestHeader { op: opc, tag: self.tag, code, out_len, in_len: input.len() as u32 };
        let mut msg = vec![0u8; RequestHeader::LEN + input.len()];
        h.emit(&mut msg).unwrap();
        msg[RequestHeader::LEN..].copy_from_slice(input);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
        }
        let n = rustix::net::sendmsg(&self.s, &[IoSlice::new(&msg)], &mut control, SendFlags::NOSIGNAL).unwrap();
        self.s.write_all(&msg[n..]).unwrap();
        self.tag
    }

    /// The next completion: (tag, status, data).
    fn recv(&mut self) -> (u64, NtStatus, Vec<u8>) {
        let mut head = [0u8; CompletionHeader::LEN];
        self.s.read_exact(&mut head).unwrap();
        let h = CompletionHeader::parse(&head).unwrap();
        let mut data = vec![0u8; h.data_len as usize];
        self.s.read_exact(&mut data).unwrap();
        (h.tag, NtStatus(h.status), data)
    }

    fn call(&mut self, opc: u8, code: u32, out_len: u32, input: &[u8], fds: &[BorrowedFd<'_>]) -> (u64, NtStatus) {
        let t = self.send(opc, code, out_len, input, fds);
        let (tag, st, _) = self.recv();
        assert_eq!(tag, t, "completions come in order here");
        (tag, st)
    }

    fn version_works(&mut self) {
        let mut b = [0u8; EmptyRequest::LEN];
        EmptyRequest::emit(&mut b).unwrap();
        let t = self.send(op::IOCTL, IOCTL_RAWNIC_GET_VERSION, 64, &b, &[]);
        let (tag, st, data) = self.recv();
        assert_eq!((tag, st), (t, NtStatus::SUCCESS));
        assert_eq!(VersionReply::parse(&data).unwrap().proto_version, PROTO_VERSION);
    }
}

fn memfd(len: u64, seal: bool) -> OwnedFd {
    let fd = rustix::fs::memfd_create("ring-bridge-test", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    if seal {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SEAL).unwrap();
    }
    fd
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn setup() -> (Vec<u8>, RingLayout) {
    let s = RingSetup { frame_size: 2048, frame_count: 16, fill: 8, rx: 8, tx: 8, completion: 8 };
    let mut b = vec![0u8; RingSetup::LEN];
    s.emit(&mut b).unwrap();
    (b, RingLayout::new(&s).unwrap())
}

#[test]
fn shared_memory_is_passed_only_as_the_bridge_says_and_no_descriptor_leaks() {
    let sim = rawnic_tests::drv::start(&["null"]);
    let sock = std::env::temp_dir().join(format!("rawnic-ring-bridge-{}.sock", std::process::id()));
    let br = bridge::serve(&sim, &sock).unwrap();
    let mut c = Raw::open(&sock);
    let (input, layout) = setup();
    let len = layout.total as u32;
    let good = memfd(layout.total as u64, false);
    let before = open_fds();
    let bad = NtStatus::INVALID_PARAMETER;
    let shared = |c: &mut Raw, code: u32, out_len: u32, fds: &[BorrowedFd<'_>]| {
        c.call(op::IOCTL_SHARED, code, out_len, &input, fds).1
    };
    // No descriptor, two, or one that is no memfd of that size.
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[]), bad);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[good.as_fd(), good.as_fd()]), bad);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len - 4096, &[good.as_fd()]), bad);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len + 4096, &[good.as_fd()]), bad);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, 0, &[good.as_fd()]), bad);
    let odd = memfd(layout.total as u64 + 100, false);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len + 100, &[odd.as_fd()]), bad, "not whole pages");
    let (pipe_r, _pipe_w) = rustix::pipe::pipe().unwrap();
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[pipe_r.as_fd()]), bad, "a pipe");
    let sealed = memfd(layout.total as u64, true);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[sealed.as_fd()]), bad, "cannot be sealed");
    let file = tempfile_of(layout.total as u64);
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[file.as_fd()]), bad, "a plain file");
    let ro = rustix::fs::open(
        format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&good)),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[ro.as_fd()]), bad, "read-only");
    // A buffered IOCTL cannot take memory.
    assert_eq!(shared(&mut c, IOCTL_RAWNIC_GET_VERSION, len, &[good.as_fd()]), bad);
    // Descriptors on any other request are refused too.
    let mut b = [0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).unwrap();
    assert_eq!(c.call(op::IOCTL, IOCTL_RAWNIC_GET_VERSION, 64, &b, &[good.as_fd()]).1, bad);
    assert_eq!(c.call(op::READ, 0, 4096, &[], &[good.as_fd()]).1, bad);
    // The connection still works.
    c.version_works();
    // A good one reaches the driver, which refuses an attach on a handle
    // with no binding open; then it is retired and lets go of the memory.
    let st = shared(&mut c, IOCTL_RAWNIC_RING_ATTACH, len, &[good.as_fd()]);
    assert!(st.is_error() && st != bad, "{st:?}");
    drop((ro, pipe_r, _pipe_w, sealed, odd, file));
    // Every descriptor ndisim received has been closed (the refused ones at
    // once, the good one when its IRP was retired).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(open_fds(), before, "descriptors left open in ndisim");
    // An attach on an opened handle stays pending, the driver writing the
    // memory the peer shares; when the peer goes away (its process died),
    // ndisim closes the handle, the attach completes and the memory and its
    // descriptor are let go.
    let mut d = Raw::open(&sock);
    let name = rawnic_tests::drv::entry(&sim, 0).name;
    let open = rawnic_tests::drv::open_request(&name, filter::DEFAULT, &[], 0, 0, 0);
    assert_eq!(d.call(op::IOCTL, IOCTL_RAWNIC_OPEN, OpenReply::LEN as u32, &open, &[]).1, NtStatus::SUCCESS);
    let umem = memfd(layout.total as u64, false);
    d.send(op::IOCTL_SHARED, IOCTL_RAWNIC_RING_ATTACH, len, &input, &[umem.as_fd()]);
    // A later request's completion: the attach was dispatched and pends.
    d.version_works();
    let mut magic = [0u8; 4];
    rustix::io::pread(&umem, &mut magic, 0).unwrap();
    assert_eq!(u32::from_le_bytes(magic), rawnic_proto::ring::RING_MAGIC, "the driver wrote the shared memory");
    assert!(open_fds() > before);
    drop((d, umem));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(open_fds(), before, "the closed handle's attach let go of its memory");
    // A descriptor on CANCEL (no completion to refuse it with) ends the
    // connection.
    c.send(op::CANCEL, 0, 0, &[], &[good.as_fd()]);
    let mut rest = Vec::new();
    assert_eq!(c.s.read_to_end(&mut rest).unwrap(), 0, "the bridge hung up");
    drop(c);
    drop(br);
    rawnic_tests::drv::finish(sim);
}

/// A regular file of `len` bytes, unlinked.
fn tempfile_of(len: u64) -> OwnedFd {
    let p = std::env::temp_dir().join(format!("rawnic-ring-bridge-{}.bin", std::process::id()));
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
    f.set_len(len).unwrap();
    std::fs::remove_file(&p).unwrap();
    f.into()
}
