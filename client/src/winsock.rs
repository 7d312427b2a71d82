//! A Unix-domain stream socket on Windows (Winsock `AF_UNIX`, Windows 10
//! 1803 and later), so that `unix:SOCKET` reaches ndisim's bridge from
//! Windows too. Just what the bridge uses: connect, read and write through
//! a shared reference, shutdown.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::sync::OnceLock;
use windows_sys::Win32::Networking::WinSock::{
    AF_UNIX, INVALID_SOCKET, SD_BOTH, SD_RECEIVE, SD_SEND, SOCK_STREAM, SOCKADDR, SOCKADDR_UN, SOCKET, SOCKET_ERROR,
    WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED, WSADATA, WSAEINTR, WSAGetLastError, WSASocketW, WSAStartup,
    closesocket, connect, recv, send, shutdown,
};

fn last_error() -> io::Error {
    // SAFETY: no arguments; reads the thread's last Winsock error.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// Winsock must be started once per process (it counts; never stopped).
fn startup() -> io::Result<()> {
    static STARTED: OnceLock<i32> = OnceLock::new();
    let r = *STARTED.get_or_init(|| {
        let mut data = WSADATA::default();
        // SAFETY: `data` is a valid out-parameter; version 2.2.
        unsafe { WSAStartup(0x0202, &mut data) }
    });
    match r {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

pub(crate) struct UnixStream(SOCKET);

impl UnixStream {
    pub(crate) fn connect(path: &Path) -> io::Result<UnixStream> {
        startup()?;
        let bytes = path
            .to_str()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the socket path is not valid Unicode"))?
            .as_bytes();
        let mut addr = SOCKADDR_UN { sun_family: AF_UNIX, ..Default::default() };
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the socket path is longer than 107 bytes"));
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as i8;
        }
        // As Rust's std creates its sockets: overlapped (what `socket()`
        // gives too; plain recv and send still block) and, unlike
        // `socket()`, not inherited by child processes, which would
        // otherwise keep the bridge connection open after it is closed
        // here. WSA_FLAG_NO_HANDLE_INHERIT needs Windows 7 SP1; AF_UNIX
        // needs Windows 10 1803 anyway.
        // SAFETY: socket creation; a null protocol info is allowed, and no
        // group is asked for.
        let s = unsafe {
            WSASocketW(
                i32::from(AF_UNIX),
                SOCK_STREAM,
                0,
                std::ptr::null(),
                0,
                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT,
            )
        };
        if s == INVALID_SOCKET {
            return Err(last_error());
        }
        let stream = UnixStream(s);
        // SAFETY: `addr` is a valid SOCKADDR_UN of the size given, alive for
        // the call; `s` is an open socket.
        let r = unsafe {
            connect(s, (&addr as *const SOCKADDR_UN).cast::<SOCKADDR>(), std::mem::size_of::<SOCKADDR_UN>() as i32)
        };
        if r == SOCKET_ERROR {
            return Err(last_error());
        }
        Ok(stream)
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => SD_RECEIVE,
            Shutdown::Write => SD_SEND,
            Shutdown::Both => SD_BOTH,
        };
        // SAFETY: the socket is open while `self` lives.
        if unsafe { shutdown(self.0, how) } == SOCKET_ERROR {
            return Err(last_error());
        }
        Ok(())
    }
}

impl Drop for UnixStream {
    fn drop(&mut self) {
        // SAFETY: the socket is owned and closed exactly once.
        unsafe { closesocket(self.0) };
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(i32::MAX as usize) as i32;
        loop {
            // SAFETY: `buf` is valid for writes of `len` bytes.
            let n = unsafe { recv(self.0, buf.as_mut_ptr(), len, 0) };
            if n != SOCKET_ERROR {
                return Ok(n as usize);
            }
            let e = last_error();
            if e.raw_os_error() != Some(WSAEINTR) {
                return Err(e);
            }
        }
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(i32::MAX as usize) as i32;
        // SAFETY: `buf` is valid for reads of `len` bytes.
        let n = unsafe { send(self.0, buf.as_ptr(), len, 0) };
        if n == SOCKET_ERROR {
            return Err(last_error());
        }
        Ok(n as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
