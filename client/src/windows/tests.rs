//! The Windows backend's system calls, run: a named pipe stands in for the
//! device (an overlapped handle that Windows' I/O manager queues reads,
//! writes and IOCTLs on), so `CreateFileW`, `ReadFile`, `WriteFile`,
//! `DeviceIoControl`, the per-request events, `WaitForSingleObject`,
//! `CancelIoEx` and the NTSTATUS recovery run for real. Here on Linux they
//! run under Wine (`cargo make wine`, see README); on Windows with
//! `cargo test -p rawnic-client`.

use super::*;
use crate::transport::Request;
use std::time::{Duration, Instant};
use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_MESSAGE, PIPE_TYPE_MESSAGE, PIPE_WAIT, SetNamedPipeHandleState,
};

/// The server end of a message-mode pipe (synchronous I/O: each test's
/// own thread blocks on it).
struct Server(Handle);

impl Server {
    /// A new pipe `\\.\pipe\rawnic-test-NAME-PID`, and the client's
    /// `WinDevice` on it (opened as the device is: overlapped).
    fn pair(name: &str) -> (Server, WinDevice) {
        let path = format!(r"\\.\pipe\rawnic-test-{name}-{}", std::process::id());
        let wide: Vec<u16> = OsStr::new(&path).encode_wide().chain(std::iter::once(0)).collect();
        // SAFETY: a NUL-terminated name; default security (null).
        let h = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_DUPLEX,
                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
                1,
                4096,
                4096,
                0,
                ptr::null(),
            )
        };
        assert_ne!(h, INVALID_HANDLE_VALUE, "CreateNamedPipeW: {}", io::Error::last_os_error());
        let server = Server(Handle(h));
        let dev = WinDevice::open(&path).expect("the pipe opens as a device");
        // SAFETY: the pipe's handle; no OVERLAPPED (synchronous). A client
        // that connected first makes it fail with ERROR_PIPE_CONNECTED.
        unsafe { ConnectNamedPipe(server.0.0, ptr::null_mut()) };
        (server, dev)
    }

    fn write(&self, data: &[u8]) {
        let mut n = 0u32;
        // SAFETY: `data` outlives the synchronous call; `n` is written.
        let ok = unsafe { WriteFile(self.0.0, data.as_ptr(), data.len() as u32, &mut n, ptr::null_mut()) };
        assert!(ok != 0 && n as usize == data.len(), "server write: {}", io::Error::last_os_error());
    }

    fn read(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut n = 0u32;
        // SAFETY: `buf` outlives the synchronous call; `n` is written.
        let ok = unsafe { ReadFile(self.0.0, buf.as_mut_ptr(), buf.len() as u32, &mut n, ptr::null_mut()) };
        assert!(ok != 0, "server read: {}", io::Error::last_os_error());
        buf.truncate(n as usize);
        buf
    }
}

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

#[test]
fn a_write_completes_with_its_length_and_its_bytes_arrive() {
    let (server, dev) = Server::pair("write");
    let c = dev.submit(Request::Write, b"hello, device", 0).unwrap().wait(Request::Write, WAIT).unwrap();
    assert_eq!((c.status, c.information), (NtStatus::SUCCESS, 13));
    assert_eq!(server.read(), b"hello, device");
}

#[test]
fn a_read_pends_until_data_comes_and_gets_exactly_it() {
    let (server, dev) = Server::pair("read");
    let pending = dev.submit(Request::Read, &[], 64).unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        server.write(b"abc");
        server
    });
    let t = Instant::now();
    let c = pending.wait(Request::Read, WAIT).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150), "it waited for the data");
    assert_eq!((c.status, c.information, c.data.as_slice()), (NtStatus::SUCCESS, 3, &b"abc"[..]));
    drop(writer.join());
}

#[test]
fn a_read_that_times_out_is_cancelled_and_takes_nothing() {
    let (server, dev) = Server::pair("timeout");
    let t = Instant::now();
    let r = dev.submit(Request::Read, &[], 64).unwrap().wait(Request::Read, Some(Duration::from_millis(300)));
    assert!(matches!(r, Err(Error::TimedOut { request: Request::Read, .. })), "{r:?}");
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(9));
    // Cancelled, not left queued: the next message goes to the next read.
    server.write(b"later");
    let c = dev.submit(Request::Read, &[], 64).unwrap().wait(Request::Read, WAIT).unwrap();
    assert_eq!(c.data, b"later");
}

#[test]
fn a_read_dropped_while_pending_is_cancelled_and_takes_nothing() {
    let (server, dev) = Server::pair("drop");
    let pending = dev.submit(Request::Read, &[], 64).unwrap();
    drop(pending);
    server.write(b"kept");
    let c = dev.submit(Request::Read, &[], 64).unwrap().wait(Request::Read, WAIT).unwrap();
    assert_eq!(c.data, b"kept");
}

#[test]
fn a_message_longer_than_the_buffer_is_a_buffer_overflow_with_what_fit() {
    let (server, dev) = Server::pair("overflow");
    // A pipe's client end reads in byte mode until told otherwise.
    let mode = PIPE_READMODE_MESSAGE;
    // SAFETY: the open handle; `mode` outlives the call; the other two
    // are left as they are (null).
    let ok = unsafe { SetNamedPipeHandleState(dev.handle.0, &mode, ptr::null(), ptr::null()) };
    assert!(ok != 0, "SetNamedPipeHandleState: {}", io::Error::last_os_error());
    server.write(b"0123456789");
    // Completed during the call with a warning: ReadFile says
    // ERROR_MORE_DATA, and the status block and the buffer are written.
    let c = dev.submit(Request::Read, &[], 4).unwrap().wait(Request::Read, WAIT).unwrap();
    assert_eq!((c.status, c.information, c.data.as_slice()), (NtStatus::BUFFER_OVERFLOW, 4, &b"0123"[..]));
    assert!(c.success(Request::Read).is_err(), "a warning is no success");
}

#[test]
fn cancel_all_ends_a_read_that_waits_without_a_timeout() {
    let (_server, dev) = Server::pair("cancel");
    let canceller = dev.canceller();
    let pending = dev.submit(Request::Read, &[], 64).unwrap();
    let status = std::thread::scope(|s| {
        let waiter = s.spawn(move || pending.wait(Request::Read, None).map(|c| c.status));
        std::thread::sleep(Duration::from_millis(200));
        canceller.cancel_all().unwrap();
        waiter.join().unwrap().unwrap()
    });
    assert_eq!(status, NtStatus::CANCELLED);
    // Nothing pending any more: cancelling again is not an error.
    canceller.cancel_all().unwrap();
}

#[test]
fn an_ioctl_the_device_does_not_take_fails_and_is_never_a_success() {
    let (_server, dev) = Server::pair("ioctl");
    let code = rawnic_proto::ioctl::IOCTL_RAWNIC_GET_VERSION;
    let r = dev.submit(Request::Ioctl(code), &[], 64).and_then(|p| p.wait(Request::Ioctl(code), WAIT));
    match r {
        Ok(c) => assert!(!c.status.is_success(), "a pipe has no rawnic IOCTL, yet {:?}", c.status),
        Err(Error::Win32 { call, .. }) => assert_eq!(call, "DeviceIoControl"),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[test]
fn a_device_that_does_not_exist_is_explained() {
    let e = WinDevice::open(r"\\.\RawNicNoSuchDevice").err().expect("no such device");
    let text = e.to_string();
    assert!(text.contains("no device has that name"), "{text}");
    let e = WinDevice::open(r"\\.\RawNic").err().expect("rawnic is not installed here");
    assert!(e.to_string().contains("netcfg -l rawnic.inf -c p -i RAWNIC"), "{e}");
}

#[test]
fn ring_memory_is_whole_zeroed_pages_given_back_when_dropped() {
    use crate::ring::mem::SharedMem;
    use windows_sys::Win32::System::Memory::{MEM_FREE, MEMORY_BASIC_INFORMATION, VirtualQuery};
    let page = rawnic_proto::ring::PAGE;
    let m = SharedMem::new(16 * page).unwrap();
    let p = m.as_ptr();
    assert_eq!((p as usize % page, m.len()), (0, 16 * page));
    // SAFETY: `m`'s 16 pages, committed and ours while `m` lives.
    let bytes = unsafe { std::slice::from_raw_parts_mut(p, m.len()) };
    assert!(bytes.iter().all(|&b| b == 0), "committed pages are zeroed");
    bytes[0] = 1;
    bytes[16 * page - 1] = 2;
    drop(m);
    let mut info = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: a query of an address, into `info` (its size given).
    let n = unsafe { VirtualQuery(p.cast(), &mut info, size_of::<MEMORY_BASIC_INFORMATION>()) };
    assert_ne!(n, 0, "VirtualQuery: {}", io::Error::last_os_error());
    assert_eq!(info.State, MEM_FREE, "released at the drop");
    for bad in [0, page - 1, page + 1] {
        let e = SharedMem::new(bad).expect_err("not whole pages");
        assert!(e.to_string().contains("not a whole number of pages"), "{e}");
    }
}
