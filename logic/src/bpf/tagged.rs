//! A program on a frame whose 802.1Q tag the NIC stripped: NDIS gives the
//! tag beside the frame (the NBL's 802.1Q info), and the program sees the
//! frame as it was on the wire, the tag back after the MAC addresses.
//! So a filter compiled for Ethernet (`vlan 10`, `ether[12:2] = 0x8100`)
//! means what it means on the wire and in the capture file the client
//! writes (which puts the tag back too), whichever side of the NIC the tag
//! was taken off on. The frame is delivered without the tag, as before;
//! the program's cut is mapped back onto it (`delivered_keep`).

use super::{Packet, Program};
use crate::vlan::tag_bytes;

/// Bytes before the tag: the two MAC addresses.
const MACS: u32 = 12;
/// Bytes of a tag: TPID and TCI.
const TAG: u32 = rawnic_proto::VLAN_TAG as u32;

/// Frame `frame` with tag `tag` written back after its MAC addresses (at
/// its end, for a frame shorter than them, as a send writes it).
pub struct Tagged<'p, P: ?Sized> {
    frame: &'p P,
    tag: [u8; 4],
    /// Where the tag goes: 12, or the frame's length if less.
    macs: u32,
}

impl<'p, P: Packet + ?Sized> Tagged<'p, P> {
    pub fn new(frame: &'p P, tci: u16) -> Self {
        Tagged { frame, tag: tag_bytes(tci), macs: frame.wire_len().min(MACS) }
    }

    /// The byte at `off` of the tagged frame.
    fn byte(&self, off: u32) -> Option<u8> {
        match off.checked_sub(self.macs) {
            None => self.frame.bytes::<1>(off).map(|[b]| b),
            Some(t) if t < TAG => Some(self.tag[t as usize]),
            Some(_) => self.frame.bytes::<1>(off - TAG).map(|[b]| b),
        }
    }

    /// Of the tagged frame's first `keep` bytes (a program's answer),
    /// those of the frame as delivered, without its tag: a cut inside the
    /// tag keeps the addresses; 0 (not taken) stays 0, and any other
    /// answer keeps a byte at least, so that it still takes the frame.
    pub fn delivered_keep(&self, keep: u32) -> u32 {
        match keep {
            0 | u32::MAX => keep,
            k if k <= self.macs => k,
            k if k <= self.macs + TAG => self.macs.max(1),
            k => k - TAG,
        }
    }
}

impl<P: Packet + ?Sized> Packet for Tagged<'_, P> {
    fn wire_len(&self) -> u32 {
        self.frame.wire_len().saturating_add(TAG)
    }

    #[inline]
    fn bytes<const N: usize>(&self, off: u32) -> Option<[u8; N]> {
        let end = off.checked_add(N as u32)?;
        if end <= self.macs {
            return self.frame.bytes(off);
        }
        if let Some(inner) = off.checked_sub(self.macs + TAG) {
            return self.frame.bytes(inner + self.macs);
        }
        // A load across the tag: a byte at a time.
        let mut b = [0u8; N];
        for (i, v) in (off..end).zip(b.iter_mut()) {
            *v = self.byte(i)?;
        }
        Some(b)
    }
}

impl Program {
    /// `run` on frame `p` whose 802.1Q tag `stripped` the NIC took out (0:
    /// it took none): the program sees the tag back in place (`Tagged`),
    /// and its answer counts the bytes of `p`, as delivered.
    pub fn run_stripped<P: Packet + ?Sized>(&self, p: &P, stripped: u16) -> u32 {
        if stripped == 0 {
            return self.run(p);
        }
        let t = Tagged::new(p, stripped);
        t.delivered_keep(self.run(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::Insn;
    use alloc::vec::Vec;

    fn program(insns: &[(u16, u8, u8, u32)]) -> Program {
        Program::new(insns.iter().map(|&(c, jt, jf, k)| Insn::new(c, jt, jf, k))).expect("valid")
    }

    /// A frame of `n` bytes, byte i = i.
    fn frame(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    /// The frame with the tag inline, as the wire had it.
    fn wire(f: &[u8], tci: u16) -> Vec<u8> {
        let m = f.len().min(12);
        [&f[..m], &tag_bytes(tci)[..], &f[m..]].concat()
    }

    #[test]
    fn every_load_sees_the_wire_frame() {
        for n in [0usize, 1, 11, 12, 13, 15, 16, 17, 20, 64] {
            let f = frame(n);
            let w = wire(&f, 0xa00a);
            let t = Tagged::new(&f[..], 0xa00a);
            assert_eq!(t.wire_len() as usize, w.len());
            for off in 0..n as u32 + 8 {
                assert_eq!(t.bytes::<1>(off), w.bytes::<1>(off), "{n} bytes, 1 at {off}");
                assert_eq!(t.bytes::<2>(off), w.bytes::<2>(off), "{n} bytes, 2 at {off}");
                assert_eq!(t.bytes::<4>(off), w.bytes::<4>(off), "{n} bytes, 4 at {off}");
            }
            assert_eq!(t.bytes::<4>(u32::MAX - 1), None);
        }
    }

    #[test]
    fn a_cut_counts_the_bytes_delivered() {
        let f = frame(60);
        let t = Tagged::new(&f[..], 5);
        let cases =
            [(0, 0), (1, 1), (12, 12), (13, 12), (16, 12), (17, 13), (64, 60), (1000, 996), (u32::MAX, u32::MAX)];
        for (keep, want) in cases {
            assert_eq!(t.delivered_keep(keep), want, "keep {keep}");
        }
        // A frame too short for its addresses: the tag at its end; a cut
        // inside the tag still takes it.
        let short = frame(0);
        assert_eq!(Tagged::new(&short[..], 5).delivered_keep(3), 1);
        // To the tag's last byte too.
        assert_eq!(Tagged::new(&short[..], 5).delivered_keep(4), 1);
        assert_eq!(Tagged::new(&short[..], 5).delivered_keep(5), 1);
    }

    #[test]
    fn a_vlan_filter_takes_a_frame_whose_tag_the_nic_stripped() {
        // tcpdump -dd 'vlan 10' (for a capture file), shortened: ldh [12];
        // jeq #0x8100; ldh [14]; and #0xfff; jeq #10; ret #262144; ret #0.
        let vlan10 = program(&[
            (0x28, 0, 0, 12),
            (0x15, 0, 4, 0x8100),
            (0x28, 0, 0, 14),
            (0x54, 0, 0, 0xfff),
            (0x15, 0, 1, 10),
            (0x06, 0, 0, 262144),
            (0x06, 0, 0, 0),
        ]);
        let mut f = frame(60);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(vlan10.run_stripped(&f[..], 0), 0, "untagged");
        assert_eq!(vlan10.run_stripped(&f[..], 0x200a), 262144 - 4, "VLAN 10, priority 1");
        assert_eq!(vlan10.run_stripped(&f[..], 11), 0, "VLAN 11");
        // The same frame with its tag inline: what the wire had.
        assert_eq!(vlan10.run_stripped(&wire(&f, 10)[..], 0), 262144);
        // A cut at 18 wire bytes (the addresses, the tag, the EtherType)
        // keeps 14 of the frame delivered.
        let cut = program(&[(0x06, 0, 0, 18)]);
        assert_eq!(cut.run_stripped(&f[..], 10), 14);
    }
}
