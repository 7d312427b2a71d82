use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// A program as `tcpdump -dd` prints it.
fn prog(insns: &[(u16, u8, u8, u32)]) -> Program {
    Program::new(insns.iter().map(|&(c, t, f, k)| Insn::new(c, t, f, k))).expect("a valid program")
}

fn refused(insns: &[(u16, u8, u8, u32)]) -> Refused {
    Program::new(insns.iter().map(|&(c, t, f, k)| Insn::new(c, t, f, k))).expect_err("refused")
}

/// `tcpdump -r any.pcap -dd arp` (Ethernet).
const ARP: &[(u16, u8, u8, u32)] = &[(0x28, 0, 0, 0xc), (0x15, 0, 1, 0x806), (0x6, 0, 0, 0x40000), (0x6, 0, 0, 0)];

/// `tcpdump -r any.pcap -dd "udp port 53"`: IPv6 and IPv4, the IPv4
/// header's length from `ldxb 4*([14]&0xf)`, fragments skipped.
const UDP_53: &[(u16, u8, u8, u32)] = &[
    (0x28, 0, 0, 0x0000000c),
    (0x15, 0, 6, 0x000086dd),
    (0x30, 0, 0, 0x00000014),
    (0x15, 0, 15, 0x00000011),
    (0x28, 0, 0, 0x00000036),
    (0x15, 12, 0, 0x00000035),
    (0x28, 0, 0, 0x00000038),
    (0x15, 10, 11, 0x00000035),
    (0x15, 0, 10, 0x00000800),
    (0x30, 0, 0, 0x00000017),
    (0x15, 0, 8, 0x00000011),
    (0x28, 0, 0, 0x00000014),
    (0x45, 6, 0, 0x00001fff),
    (0xb1, 0, 0, 0x0000000e),
    (0x48, 0, 0, 0x0000000e),
    (0x15, 2, 0, 0x00000035),
    (0x48, 0, 0, 0x00000010),
    (0x15, 0, 1, 0x00000035),
    (0x6, 0, 0, 0x0000ffff),
    (0x6, 0, 0, 0x00000000),
];

/// `tcpdump -r any.pcap -dd "vlan 5"`.
const VLAN_5: &[(u16, u8, u8, u32)] = &[
    (0x28, 0, 0, 0x0000000c),
    (0x15, 2, 0, 0x00008100),
    (0x15, 1, 0, 0x000088a8),
    (0x15, 0, 4, 0x00009100),
    (0x28, 0, 0, 0x0000000e),
    (0x54, 0, 0, 0x00000fff),
    (0x15, 0, 1, 0x00000005),
    (0x6, 0, 0, 0x0000ffff),
    (0x6, 0, 0, 0x00000000),
];

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 UDP datagram with an IP header of `ihl` words.
fn udp4(ihl: u8, sport: u16, dport: u16, frag: u16) -> Vec<u8> {
    let mut ip = vec![0u8; usize::from(ihl) * 4];
    ip[0] = 0x40 | ihl;
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[9] = 17;
    ip.extend_from_slice(&sport.to_be_bytes());
    ip.extend_from_slice(&dport.to_be_bytes());
    ip.extend_from_slice(&[0, 8, 0, 0]);
    eth(0x0800, &ip)
}

#[test]
fn tcpdumps_arp_takes_arp_only() {
    let p = prog(ARP);
    assert_eq!(p.run(&eth(0x0806, &[0; 28])[..]), 0x40000);
    assert_eq!(p.run(&eth(0x0800, &[0; 28])[..]), 0);
    // A runt: the EtherType's load runs past its end.
    assert_eq!(p.run(&[0u8; 13][..]), 0);
}

#[test]
fn tcpdumps_udp_port_53_follows_the_ip_header_length() {
    let p = prog(UDP_53);
    assert_eq!(p.run(&udp4(5, 1000, 53, 0)[..]), 0xffff);
    assert_eq!(p.run(&udp4(5, 53, 1000, 0)[..]), 0xffff);
    // Options in the IP header move the ports: the program follows.
    assert_eq!(p.run(&udp4(7, 1000, 53, 0)[..]), 0xffff);
    assert_eq!(p.run(&udp4(5, 1000, 54, 0)[..]), 0);
    // A later fragment carries no ports.
    assert_eq!(p.run(&udp4(5, 1000, 53, 0x0010)[..]), 0);
    // Cut short before the ports: not taken.
    let cut = udp4(5, 1000, 53, 0);
    assert_eq!(p.run(&cut[..36][..]), 0);
}

#[test]
fn tcpdumps_vlan_5_reads_the_inline_tag() {
    let p = prog(VLAN_5);
    assert_eq!(p.run(&eth(0x8100, &[0x20, 0x05, 0x08, 0x00])[..]), 0xffff);
    assert_eq!(p.run(&eth(0x8100, &[0x20, 0x06, 0x08, 0x00])[..]), 0);
    assert_eq!(p.run(&eth(0x0800, &[0x20, 0x05, 0x08, 0x00])[..]), 0);
}

#[test]
fn every_alu_operation_and_operand() {
    // A = 100; X = 7; then A op= k or X, and return A.
    let run =
        |code: u16, k: u32| prog(&[(0x00, 0, 0, 100), (0x01, 0, 0, 7), (code, 0, 0, k), (0x16, 0, 0, 0)]).run(&[][..]);
    assert_eq!(run(0x04, 5), 105);
    assert_eq!(run(0x0c, 0), 107);
    assert_eq!(run(0x14, 5), 95);
    assert_eq!(run(0x1c, 0), 93);
    assert_eq!(run(0x24, 3), 300);
    assert_eq!(run(0x2c, 0), 700);
    assert_eq!(run(0x34, 3), 33);
    assert_eq!(run(0x3c, 0), 14);
    assert_eq!(run(0x94, 7), 2);
    assert_eq!(run(0x9c, 0), 2);
    assert_eq!(run(0x44, 1), 101);
    assert_eq!(run(0x4c, 0), 103);
    assert_eq!(run(0x54, 0x60), 0x60);
    assert_eq!(run(0x5c, 0), 4);
    assert_eq!(run(0xa4, 0xff), 100 ^ 0xff);
    assert_eq!(run(0xac, 0), 100 ^ 7);
    assert_eq!(run(0x64, 2), 400);
    assert_eq!(run(0x6c, 0), 12800);
    assert_eq!(run(0x74, 2), 25);
    assert_eq!(run(0x7c, 0), 0);
    assert_eq!(run(0x84, 0), 100u32.wrapping_neg());
    // Arithmetic wraps.
    assert_eq!(prog(&[(0x00, 0, 0, u32::MAX), (0x04, 0, 0, 2), (0x16, 0, 0, 0)]).run(&[][..]), 1);
}

#[test]
fn a_division_by_an_x_of_zero_or_a_wide_shift_ends_the_run_with_nothing() {
    for code in [0x3c, 0x9c] {
        // X is 0: the run ends, taking nothing, whatever comes after.
        let p = prog(&[(0x00, 0, 0, 100), (code, 0, 0, 0), (0x06, 0, 0, 1)]);
        assert_eq!(p.run(&[][..]), 0);
    }
    for code in [0x6c, 0x7c] {
        // X is 32: the result is 0.
        let p = prog(&[(0x00, 0, 0, 100), (0x01, 0, 0, 32), (code, 0, 0, 0), (0x16, 0, 0, 0)]);
        assert_eq!(p.run(&[][..]), 0);
    }
}

#[test]
fn loads_of_each_size_and_mode() {
    let f: Vec<u8> = (0u8..32).collect();
    let ret_a = (0x16, 0, 0, 0);
    assert_eq!(prog(&[(0x20, 0, 0, 4), ret_a]).run(&f[..]), 0x04050607);
    assert_eq!(prog(&[(0x28, 0, 0, 4), ret_a]).run(&f[..]), 0x0405);
    assert_eq!(prog(&[(0x30, 0, 0, 4), ret_a]).run(&f[..]), 4);
    // X + k.
    assert_eq!(prog(&[(0x01, 0, 0, 10), (0x40, 0, 0, 4), ret_a]).run(&f[..]), 0x0e0f1011);
    assert_eq!(prog(&[(0x01, 0, 0, 10), (0x48, 0, 0, 4), ret_a]).run(&f[..]), 0x0e0f);
    assert_eq!(prog(&[(0x01, 0, 0, 10), (0x50, 0, 0, 4), ret_a]).run(&f[..]), 0x0e);
    // The last whole word, and one byte past it.
    assert_eq!(prog(&[(0x20, 0, 0, 28), ret_a]).run(&f[..]), 0x1c1d1e1f);
    assert_eq!(prog(&[(0x20, 0, 0, 29), (0x06, 0, 0, 1)]).run(&f[..]), 0);
    // X + k overflows: not a wrap to the frame's start.
    assert_eq!(prog(&[(0x01, 0, 0, u32::MAX), (0x50, 0, 0, 2), (0x06, 0, 0, 1)]).run(&f[..]), 0);
    // BPF_LEN, into A and X.
    assert_eq!(prog(&[(0x80, 0, 0, 0), ret_a]).run(&f[..]), 32);
    assert_eq!(prog(&[(0x81, 0, 0, 0), (0x87, 0, 0, 0), ret_a]).run(&f[..]), 32);
    // 4 * (P[k] & 0xf) into X.
    assert_eq!(prog(&[(0xb1, 0, 0, 5), (0x87, 0, 0, 0), ret_a]).run(&f[..]), 20);
    assert_eq!(prog(&[(0xb1, 0, 0, 32), (0x06, 0, 0, 1)]).run(&f[..]), 0);
}

#[test]
fn scratch_memory_starts_zero_and_keeps_what_is_stored() {
    let ret_a = (0x16, 0, 0, 0);
    assert_eq!(prog(&[(0x60, 0, 0, 15), ret_a]).run(&[][..]), 0);
    let p = prog(&[
        (0x00, 0, 0, 9),
        (0x02, 0, 0, 3),
        (0x01, 0, 0, 4),
        (0x03, 0, 0, 15),
        (0x60, 0, 0, 3),
        (0x61, 0, 0, 15),
        (0x0c, 0, 0, 0),
        ret_a,
    ]);
    assert_eq!(p.run(&[][..]), 13);
}

#[test]
fn conditional_jumps_take_the_true_or_the_false_branch() {
    // A = 5; if A cond operand goto ret 1 else ret 2.
    let run = |code: u16, k: u32| {
        prog(&[(0x00, 0, 0, 5), (0x01, 0, 0, 5), (code, 0, 1, k), (0x06, 0, 0, 1), (0x06, 0, 0, 2)]).run(&[][..])
    };
    assert_eq!((run(0x15, 5), run(0x15, 4)), (1, 2));
    assert_eq!((run(0x25, 4), run(0x25, 5)), (1, 2));
    assert_eq!((run(0x35, 5), run(0x35, 6)), (1, 2));
    assert_eq!((run(0x45, 4), run(0x45, 2)), (1, 2));
    // Against X (5).
    assert_eq!(run(0x1d, 0), 1);
    assert_eq!(run(0x2d, 0), 2);
    assert_eq!(run(0x3d, 0), 1);
    assert_eq!(run(0x4d, 0), 1);
    // JA.
    assert_eq!(prog(&[(0x05, 0, 0, 1), (0x06, 0, 0, 1), (0x06, 0, 0, 2)]).run(&[][..]), 2);
}

#[test]
fn the_check_refuses_each_broken_rule_where_it_is_broken() {
    assert_eq!(refused(&[]), Refused { at: 0, why: Why::Length });
    let long = vec![(0x06, 0, 0, 0); MAX_INSNS + 1];
    assert_eq!(refused(&long).why, Why::Length);
    assert!(Program::new(long[..MAX_INSNS].iter().map(|&(c, t, f, k)| Insn::new(c, t, f, k))).is_ok());
    // Jumps: JA past the end, a true or false branch past the end.
    assert_eq!(refused(&[(0x05, 0, 0, 1), (0x06, 0, 0, 0)]), Refused { at: 0, why: Why::Jump });
    assert_eq!(refused(&[(0x05, 0, 0, u32::MAX), (0x06, 0, 0, 0)]).why, Why::Jump);
    assert_eq!(refused(&[(0x15, 1, 0, 0), (0x06, 0, 0, 0)]), Refused { at: 0, why: Why::Jump });
    assert_eq!(refused(&[(0x15, 0, 1, 0), (0x06, 0, 0, 0)]), Refused { at: 0, why: Why::Jump });
    // Memory.
    for code in [0x60, 0x61, 0x02, 0x03] {
        assert_eq!(refused(&[(code, 0, 0, 16), (0x06, 0, 0, 0)]), Refused { at: 0, why: Why::Memory });
    }
    assert_eq!(refused(&[(0x34, 0, 0, 0), (0x06, 0, 0, 0)]).why, Why::DivideByZero);
    assert_eq!(refused(&[(0x94, 0, 0, 0), (0x06, 0, 0, 0)]).why, Why::DivideByZero);
    assert_eq!(refused(&[(0x64, 0, 0, 32), (0x06, 0, 0, 0)]).why, Why::Shift);
    assert_eq!(refused(&[(0x74, 0, 0, 32), (0x06, 0, 0, 0)]).why, Why::Shift);
    assert!(Program::new([Insn::new(0x74, 0, 0, 31), Insn::new(0x06, 0, 0, 0)].into_iter()).is_ok());
    assert_eq!(refused(&[(0x00, 0, 0, 0)]), Refused { at: 0, why: Why::NoReturn });
    assert_eq!(refused(&[(0x06, 0, 0, 0), (0x87, 0, 0, 0)]), Refused { at: 1, why: Why::NoReturn });
    assert_eq!(refused(&[(0x06, 0, 0, 0), (0xff, 0, 0, 0)]), Refused { at: 1, why: Why::Opcode });
    // Linux's ancillary loads (`SKF_AD_OFF` and below) are not classic BPF.
    assert_eq!(refused(&[(0x30, 0, 0, 0xfffff030), (0x06, 0, 0, 0)]), Refused { at: 0, why: Why::Ancillary });
    assert_eq!(refused(&[(0x20, 0, 0, 0xffe00000), (0x06, 0, 0, 0)]).why, Why::Ancillary);
    assert_eq!(refused(&[(0x50, 0, 0, 0xfff00000), (0x06, 0, 0, 0)]).why, Why::Ancillary);
}

#[test]
fn exactly_the_classic_opcodes_pass_the_check() {
    let valid: &[u16] = &[
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0c, 0x14, 0x15, 0x16, 0x1c, 0x1d, 0x20, 0x24, 0x25, 0x28,
        0x2c, 0x2d, 0x30, 0x34, 0x35, 0x3c, 0x3d, 0x40, 0x44, 0x45, 0x48, 0x4c, 0x4d, 0x50, 0x54, 0x5c, 0x60, 0x61,
        0x64, 0x6c, 0x74, 0x7c, 0x80, 0x81, 0x84, 0x87, 0x94, 0x9c, 0xa4, 0xac, 0xb1,
    ];
    for code in 0..=u16::MAX {
        // k 1 and jumps to the next instruction, with two returns after,
        // satisfy every other rule.
        let p =
            Program::new([Insn::new(code, 0, 0, 1), Insn::new(0x06, 0, 0, 0), Insn::new(0x06, 0, 0, 0)].into_iter());
        assert_eq!(p.is_ok(), valid.contains(&code), "opcode {code:#x}: {p:?}");
    }
}

#[test]
fn parts_read_across_their_seams() {
    let p = Parts(&[&[1, 2, 3], &[], &[4, 5], &[6]]);
    assert_eq!(p.wire_len(), 6);
    assert_eq!(p.bytes::<4>(1), Some([2, 3, 4, 5]));
    assert_eq!(p.bytes::<2>(4), Some([5, 6]));
    assert_eq!(p.bytes::<1>(5), Some([6]));
    assert_eq!(p.bytes::<2>(5), None);
    assert_eq!(p.bytes::<1>(6), None);
    assert_eq!(p.bytes::<4>(u32::MAX), None);
    // A program reads them as one frame.
    assert_eq!(prog(ARP).run(&Parts(&[&eth(0x0806, &[])[..13], &[0x06]])), 0x40000);
}

/// An iterator that says it holds more than it gives.
struct Liar(usize);

impl Iterator for Liar {
    type Item = Insn;
    fn next(&mut self) -> Option<Insn> {
        (self.0 > 0).then(|| {
            self.0 -= 1;
            Insn::new(0x06, 0, 0, 0)
        })
    }
}

impl ExactSizeIterator for Liar {
    fn len(&self) -> usize {
        self.0 + 5
    }
}

#[test]
fn an_iterator_shorter_than_it_says_is_refused() {
    assert_eq!(Program::new(Liar(2)).unwrap_err().why, Why::Length);
}

proptest::proptest! {
    /// Any checked program, on any frame, ends within its length and
    /// neither panics nor reads past the frame.
    #[test]
    fn any_checked_program_runs_to_an_end(
        insns in proptest::collection::vec((0u16..0xc0, 0u8..8, 0u8..8, proptest::prop_oneof![0u32..64, proptest::num::u32::ANY]), 1..40),
        frame in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
    ) {
        let mut insns: Vec<Insn> = insns.into_iter().map(|(c, t, f, k)| Insn::new(c, t, f, k)).collect();
        insns.push(Insn::new(0x16, 0, 0, 0));
        if let Ok(p) = Program::new(insns.iter().copied()) {
            let _ = p.run(&frame[..]);
        }
    }
}
