//! rawnic.sys on a TAP adapter in a private network namespace: the Linux
//! kernel is its peer. Frames cross both ways through the driver's real
//! IRP path. (Needs root, as CI has; it skips nothing.)

use proto::filter;
use rawnic_tests::drv::*;

const ETHERTYPE: u16 = 0x88b5;

/// A raw packet socket on `ifname`, with a receive timeout.
struct RawSocket(i32);

impl RawSocket {
    fn bind(ifname: &std::ffi::CStr) -> RawSocket {
        // SAFETY: plain socket calls with valid arguments.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: a NUL-terminated name.
        let idx = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
        assert!(idx > 0);
        // SAFETY: sockaddr_ll is plain data.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sa.sll_ifindex = idx as i32;
        // SAFETY: binding our socket to the interface.
        let r = unsafe {
            libc::bind(fd, (&sa as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
        };
        assert_eq!(r, 0);
        let tv = libc::timeval { tv_sec: 10, tv_usec: 0 };
        // SAFETY: setting a timeval option on our socket.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        assert_eq!(r, 0);
        RawSocket(fd)
    }

    fn send(&self, f: &[u8]) {
        // SAFETY: a valid buffer on our socket.
        let n = unsafe { libc::send(self.0, f.as_ptr().cast(), f.len(), 0) };
        assert_eq!(n as usize, f.len());
    }

    /// The next frame with `ethertype` (other traffic, like IPv6 neighbour
    /// discovery, is skipped); None after the timeout.
    fn recv(&self, ethertype: u16) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: receiving into our buffer.
            let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return None;
            }
            let f = &buf[..n as usize];
            if f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == ethertype {
                return Some(f.to_vec());
            }
        }
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: closing our socket.
        unsafe { libc::close(self.0) };
    }
}

#[test]
fn frames_cross_between_the_driver_and_the_linux_kernel_both_ways() {
    // The namespace is this thread's (and that of the threads it starts).
    // SAFETY: unshare affects only the calling thread.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "unshare(CLONE_NEWNET) needs root: {}", std::io::Error::last_os_error());
    let sim = start(&["tap:rawnic0@mac=02:00:00:00:00:01"]);
    let up = std::process::Command::new("ip").args(["link", "set", "rawnic0", "up"]).status().expect("ip (iproute2)");
    assert!(up.success());
    let sock = RawSocket::bind(c"rawnic0");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[ETHERTYPE]);

    // Driver to Linux: a SEND_BATCH reaches the kernel's side of the TAP.
    let out: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE, 60 + i, i as u32)).collect();
    assert_eq!(send(&h, &out).accepted, 3);
    for f in &out {
        assert_eq!(sock.recv(ETHERTYPE).as_ref(), Some(f), "the Linux side did not see the driver's frame");
    }

    // Linux to driver: a frame the kernel sends reaches a ReadFile.
    let back = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 0x77], ETHERTYPE, 100, 9);
    sock.send(&back);
    let t = h.read_async(4096).unwrap();
    let r = t.wait().expect("the frame from Linux reached the driver");
    let got = records(&r);
    assert_eq!(got[0].1, back);
    h.close();
    finish(sim);
}
