//! rawnic.sys on a TAP adapter in a private network namespace: the Linux
//! kernel is its peer. Frames cross both ways through the driver's real
//! IRP path. (Needs root, as CI has; it skips nothing.)

use ndisim::AdapterId;
use proto::{filter, frame_flags};
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
    fn report_tags(&self) {
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
    fn recv_tagged(&self, ethertype: u16) -> Option<(Vec<u8>, Option<u16>)> {
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

/// `f` with an 802.1Q tag of `tci` after its MAC addresses.
fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    [&f[..12], &[0x81, 0x00], &tci.to_be_bytes()[..], &f[12..]].concat()
}

fn ip_link_up(name: &str) {
    let up = std::process::Command::new("ip").args(["link", "set", name, "up"]).status().expect("ip (iproute2)");
    assert!(up.success());
}

#[test]
fn tags_cross_the_tap_once_and_a_failed_write_is_counted() {
    // SAFETY: unshare affects only the calling thread.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "unshare(CLONE_NEWNET) needs root: {}", std::io::Error::last_os_error());
    let sim = start(&["tap:vlanon@mac=02:00:00:00:00:01", "tap:vlanoff@mac=02:00:00:00:00:02,vlan=off"]);
    let (h_on, _) = open(&sim, 0, filter::DEFAULT, &[ETHERTYPE]);
    let (h_off, _) = open(&sim, 1, filter::DEFAULT, &[ETHERTYPE]);
    let out = frame(BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE, 60, 1);

    // Until its link is up, a TAP device refuses writes (EIO): the adapter
    // counts a transmit error, and OID_GEN_XMIT_ERROR reports it.
    assert_eq!(send(&h_on, std::slice::from_ref(&out)).accepted, 1);
    assert_eq!(sim.transmit_errors(AdapterId(0)), 1);
    let (hdr, data) = oid_query(&h_on, ndis_sys::OID_GEN_XMIT_ERROR, 64);
    assert_eq!((hdr.ndis_status, data), (0, 1u64.to_le_bytes().to_vec()));
    ip_link_up("vlanon");
    ip_link_up("vlanoff");
    let (s_on, s_off) = (RawSocket::bind(c"vlanon"), RawSocket::bind(c"vlanoff"));
    s_on.report_tags();
    s_off.report_tags();

    for (h, s, vlan, mac) in [(&h_on, &s_on, true, 1), (&h_off, &s_off, false, 2)] {
        for tci in [0x2064, 0] {
            // Driver to Linux: the tag is on the wire once (the kernel
            // takes one off; a second would hide the EtherType), put there
            // by the adapter (vlan=on) or by the driver (vlan=off, or TCI
            // 0).
            let r = h.ioctl(proto::IOCTL_RAWNIC_SEND_BATCH, &batch(&[(out.clone(), Some(tci))]), 16);
            assert_eq!(r.status, 0, "vlan {vlan}, TCI {tci:#x}");
            assert_eq!(s.recv_tagged(ETHERTYPE), Some((out.clone(), Some(tci))), "vlan {vlan}, TCI {tci:#x}");

            // Linux to driver: a tag inline on the wire is stripped into the
            // NBL's info (vlan=on; NDIS cannot say TCI 0) or indicated
            // inline.
            let back = frame([2, 0, 0, 0, 0, mac], [2, 0, 0, 0, 0, 0x77], ETHERTYPE, 100, tci.into());
            s.send(&tagged(&back, tci));
            let r = h.read_async(4096).unwrap().wait().expect("the frame from Linux reached the driver");
            let got = records(&r);
            let want = match (vlan, tci) {
                (true, 0) => (0, 0, back.clone()),
                (true, t) => (frame_flags::TAGGED | frame_flags::VLAN, t, back.clone()),
                (false, t) => (frame_flags::TAGGED, t, tagged(&back, t)),
            };
            assert_eq!((got[0].0.flags, got[0].0.tci, got[0].1.clone()), want, "vlan {vlan}, TCI {tci:#x}");
        }
    }
    assert_eq!(sim.transmit_errors(AdapterId(0)) + sim.transmit_errors(AdapterId(1)), 1);
    assert_eq!(sim.tags_ignored(AdapterId(1)), 0);
    h_on.close();
    h_off.close();
    finish(sim);
}
