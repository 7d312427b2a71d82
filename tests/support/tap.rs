//! A Linux peer for ndisim's TAP adapters in tests: a network namespace of
//! the test thread's own, `ip link set NAME up`, and a raw packet socket on
//! the Linux side of a TAP device. (Needs root, as CI has.)

/// Moves the calling thread (and the threads it starts from now on) into a
/// network namespace of its own, so the TAP devices a test makes are
/// private to it.
pub fn private_netns() {
    // SAFETY: unshare affects only the calling thread.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "unshare(CLONE_NEWNET) needs root: {}", std::io::Error::last_os_error());
}

/// `ip link set NAME up`.
pub fn ip_link_up(name: &str) {
    let up = std::process::Command::new("ip").args(["link", "set", name, "up"]).status().expect("ip (iproute2)");
    assert!(up.success());
}

/// A raw packet socket on `ifname`, with a receive timeout.
pub struct RawSocket(i32);

impl RawSocket {
    pub fn bind(ifname: &std::ffi::CStr) -> RawSocket {
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

    pub fn send(&self, f: &[u8]) {
        // SAFETY: a valid buffer on our socket.
        let n = unsafe { libc::send(self.0, f.as_ptr().cast(), f.len(), 0) };
        assert_eq!(n as usize, f.len());
    }

    /// The next frame with `ethertype` (other traffic, like IPv6 neighbour
    /// discovery, is skipped); None after the timeout.
    pub fn recv(&self, ethertype: u16) -> Option<Vec<u8>> {
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

/// `PACKET_AUXDATA` (linux/if_packet.h): each received frame comes with a
/// `tpacket_auxdata` that carries the 802.1Q tag the kernel took off it.
const PACKET_AUXDATA: libc::c_int = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketAuxdata {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

impl RawSocket {
    /// Reports the tag of each received frame (the kernel strips 802.1Q
    /// tags before packet sockets see a frame).
    pub fn report_tags(&self) {
        let on: libc::c_int = 1;
        // SAFETY: setting an int option on our socket.
        let r = unsafe {
            libc::setsockopt(
                self.0,
                libc::SOL_PACKET,
                PACKET_AUXDATA,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        assert_eq!(r, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
    }

    /// The next frame whose EtherType (after the tag the kernel took off)
    /// is `ethertype`, and that tag's TCI; None after the timeout.
    pub fn recv_tagged(&self, ethertype: u16) -> Option<(Vec<u8>, Option<u16>)> {
        let mut buf = vec![0u8; 65536];
        let mut control = [0u64; 16];
        loop {
            let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            // SAFETY: msghdr is plain data.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            // SAFETY: the buffers `msg` points at are ours and live.
            let n = unsafe { libc::recvmsg(self.0, &mut msg, 0) };
            if n < 0 {
                return None;
            }
            let mut tag = None;
            // SAFETY: walking the control messages the kernel wrote into
            // `control`, within `msg_controllen`.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                        let aux = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<TpacketAuxdata>());
                        if aux.status & TP_STATUS_VLAN_VALID != 0 {
                            tag = Some(aux.vlan_tci);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            let f = &buf[..n as usize];
            if f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == ethertype {
                return Some((f.to_vec(), tag));
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
