//! Capture programs (`IOCTL_RAWNIC_SET_PROGRAM`, classic BPF) in the real
//! rawnic.sys in ndisim: set before the OPEN, no frame reaches the handle
//! unfiltered; a frame the program returns 0 for is not taken, one it
//! returns less for is cut and marked; the same for the ReadFile queue,
//! the rings (alone on the binding, and beside another receiver), frames
//! in MDL chains and frames sent from this host. A program sees a frame
//! as it was on the wire, with a tag the NIC stripped (or will insert)
//! back after the MAC addresses. A program the driver
//! cannot run safely is refused with STATUS_INVALID_PARAMETER and leaves
//! the one before in place. The verifier stays clean.

use ndisim::{InjectOpts, NbLayout};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

/// `tcpdump -r any.pcap -dd arp`: the whole frame (0x40000) of ARP.
const ARP: [BpfInsn; 4] = [
    BpfInsn::new(0x28, 0, 0, 12),
    BpfInsn::new(0x15, 0, 1, 0x806),
    BpfInsn::new(0x6, 0, 0, 0x40000),
    BpfInsn::new(0x6, 0, 0, 0),
];

/// `tcpdump -r any.pcap -dd "udp port 53"`, which reads the IPv4 header's
/// length and the ports behind it.
const UDP_53: [BpfInsn; 20] = [
    BpfInsn::new(0x28, 0, 0, 0x0c),
    BpfInsn::new(0x15, 0, 6, 0x86dd),
    BpfInsn::new(0x30, 0, 0, 0x14),
    BpfInsn::new(0x15, 0, 15, 0x11),
    BpfInsn::new(0x28, 0, 0, 0x36),
    BpfInsn::new(0x15, 12, 0, 0x35),
    BpfInsn::new(0x28, 0, 0, 0x38),
    BpfInsn::new(0x15, 10, 11, 0x35),
    BpfInsn::new(0x15, 0, 10, 0x800),
    BpfInsn::new(0x30, 0, 0, 0x17),
    BpfInsn::new(0x15, 0, 8, 0x11),
    BpfInsn::new(0x28, 0, 0, 0x14),
    BpfInsn::new(0x45, 6, 0, 0x1fff),
    BpfInsn::new(0xb1, 0, 0, 0x0e),
    BpfInsn::new(0x48, 0, 0, 0x0e),
    BpfInsn::new(0x15, 2, 0, 0x35),
    BpfInsn::new(0x48, 0, 0, 0x10),
    BpfInsn::new(0x15, 0, 1, 0x35),
    BpfInsn::new(0x6, 0, 0, 0xffff),
    BpfInsn::new(0x6, 0, 0, 0),
];

/// Every frame, cut to its first 20 bytes.
const FIRST_20: [BpfInsn; 1] = [BpfInsn::new(0x6, 0, 0, 20)];

fn program_request(insns: &[BpfInsn]) -> Vec<u8> {
    let mut b = vec![0u8; ProgramRequest::wire_len(insns.len())];
    ProgramRequest::emit(insns, &mut b).unwrap();
    b
}

/// SET_PROGRAM's status.
fn set_program(h: &ndisim::Handle, insns: &[BpfInsn]) -> NtStatus {
    let r = h.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &program_request(insns), 0);
    assert_eq!(r.information, 0);
    status(r.status)
}

/// A handle with program `insns`, set before its OPEN.
fn open_programmed(sim: &ndisim::Sim, filter: PacketFilter, insns: &[BpfInsn]) -> ndisim::Handle {
    open_programmed_on(sim, 0, filter, insns)
}

/// `open_programmed` on binding `idx`.
fn open_programmed_on(sim: &ndisim::Sim, idx: usize, filter: PacketFilter, insns: &[BpfInsn]) -> ndisim::Handle {
    let h = sim.open().unwrap();
    assert_eq!(set_program(&h, insns), NtStatus::SUCCESS);
    let name = list(&h)[idx].name.clone();
    let r = h.ioctl(IOCTL_RAWNIC_OPEN, &open_request(&name, filter, &[], 0, 0, 0), OpenReply::LEN);
    assert_eq!(status(r.status), NtStatus::SUCCESS);
    h
}

fn arp_frame(seed: u32) -> Vec<u8> {
    frame(BROADCAST, PEER, 0x0806, 60, seed)
}

/// A broadcast IPv4 UDP datagram to `dport`, with `ihl` words of IP
/// header.
fn udp4(ihl: u8, dport: u16) -> Vec<u8> {
    let mut f = frame(BROADCAST, PEER, 0x0800, 14 + usize::from(ihl) * 4 + 8 + 20, 9);
    let ip = &mut f[14..];
    ip[0] = 0x40 | ihl;
    ip[6..8].copy_from_slice(&[0, 0]);
    ip[9] = 17;
    let udp = usize::from(ihl) * 4;
    ip[udp..udp + 2].copy_from_slice(&4000u16.to_be_bytes());
    ip[udp + 2..udp + 4].copy_from_slice(&dport.to_be_bytes());
    f
}

#[test]
fn a_program_set_before_the_open_filters_every_frame_and_cuts_what_it_says() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let arp = open_programmed(&sim, filter::DEFAULT, &ARP);
    let cut = open_programmed(&sim, filter::DEFAULT, &FIRST_20);
    let (plain, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let frames =
        [arp_frame(1), frame(BROADCAST, PEER, 0x0800, 300, 2), arp_frame(3), frame(BROADCAST, PEER, 0x88b5, 10, 4)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 4);
    let got = queued(&arp);
    assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), [frames[0].clone(), frames[2].clone()]);
    assert!(got.iter().all(|(h, _)| h.caplen == 60 && h.flags & frame_flags::TRUNCATED == 0));
    // Not taken is not dropped: the handle counts what it took.
    let s = stats(&arp);
    assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops, s.handle.rx_truncated), (2, 0, 0));
    // Cut to 20 bytes, marked, with the frame's own length; a runt shorter
    // than the cut is whole.
    let got = queued(&cut);
    assert_eq!(got.len(), 4);
    for ((h, d), f) in got.iter().zip(&frames) {
        let kept = f.len().min(20);
        assert_eq!((h.origlen as usize, h.caplen as usize, &d[..]), (f.len(), kept, &f[..kept]));
        assert_eq!(h.flags & frame_flags::TRUNCATED != 0, f.len() > 20);
    }
    assert_eq!(stats(&cut).handle.rx_truncated, 3);
    // A handle without a program gets them all.
    assert_eq!(queued(&plain).len(), 4);
    // Retained frames (256 bytes and more, no read waiting) are cut too.
    let big = frame(BROADCAST, PEER, 0x0800, 1000, 5);
    assert_eq!(sim.inject(a, &[&big], &InjectOpts::default()).unwrap(), 1);
    let got = queued(&cut);
    assert_eq!((got[0].0.caplen, got[0].0.origlen, &got[0].1[..]), (20, 1000, &big[..20]));
    assert!(queued(&arp).is_empty());
    drop((arp, cut, plain));
    finish(sim);
}

#[test]
fn a_program_reads_frames_laid_out_in_any_mdls() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let dns = open_programmed(&sim, filter::DEFAULT, &UDP_53);
    let frames = [udp4(5, 53), udp4(5, 54), udp4(7, 53), arp_frame(1)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let mut layouts = shaped_layouts().to_vec();
    layouts.push(NbLayout::default());
    for layout in layouts {
        // Under low resources too (the frames are copied, not retained).
        for resources in [false, true] {
            let o = InjectOpts { layout, resources, ..InjectOpts::default() };
            assert_eq!(sim.inject(a, &refs, &o).unwrap(), 4);
            let got: Vec<Vec<u8>> = queued(&dns).into_iter().map(|(_, d)| d).collect();
            assert_eq!(got, [frames[0].clone(), frames[2].clone()], "{layout:?}, resources {resources}");
        }
    }
    drop(dns);
    finish(sim);
}

/// Loads anywhere in a frame laid out in MDLs: across the end of the bytes
/// the driver copies once (the first 128), far past it, and past the
/// frame's end (not taken), never a wrong byte. The layouts come twice:
/// packed, and spread (a gap of a pattern before each MDL but the first,
/// as the buffers of a real chain need not follow each other), where a
/// copy that skips whole MDLs to reach its offset and then reads past the
/// MDL it stopped in finds the pattern (M120: the skip's `continue`
/// deleted; with packed MDLs it read the right bytes by luck).
#[test]
fn loads_reach_every_byte_of_a_frame_in_mdls_and_none_past_it() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let f = frame(BROADCAST, PEER, 0x88b5, 300, 7);
    let word = |at: usize| u32::from_be_bytes(f[at..at + 4].try_into().unwrap());
    // ld [at]; jeq #word(at) -> take, else not; for a word across the
    // copied head's end, one past it, and the frame's last.
    let word_at = |at: u32, k: u32| {
        [
            BpfInsn::new(0x20, 0, 0, at),
            BpfInsn::new(0x15, 0, 1, k),
            BpfInsn::new(0x6, 0, 0, u32::MAX),
            BpfInsn::new(0x6, 0, 0, 0),
        ]
    };
    // ldx #200; ldb [x + 99]: the last byte, through X.
    let last_by_x = [
        BpfInsn::new(0x01, 0, 0, 200),
        BpfInsn::new(0x50, 0, 0, 99),
        BpfInsn::new(0x15, 0, 1, u32::from(f[299])),
        BpfInsn::new(0x6, 0, 0, u32::MAX),
        BpfInsn::new(0x6, 0, 0, 0),
    ];
    let takers: Vec<ndisim::Handle> = [word_at(126, word(126)), word_at(129, word(129)), word_at(296, word(296))]
        .iter()
        .map(|p| open_programmed(&sim, filter::DEFAULT, p))
        .chain(std::iter::once(open_programmed(&sim, filter::DEFAULT, &last_by_x)))
        .collect();
    // Past the end: a word at 297, a byte at 300, and at 2^31.
    let none: Vec<ndisim::Handle> = [297u32, 0x7fff_ffff]
        .iter()
        .map(|&at| {
            open_programmed(&sim, filter::DEFAULT, &[BpfInsn::new(0x20, 0, 0, at), BpfInsn::new(0x6, 0, 0, u32::MAX)])
        })
        .chain(std::iter::once(open_programmed(
            &sim,
            filter::DEFAULT,
            &[BpfInsn::new(0x30, 0, 0, 300), BpfInsn::new(0x6, 0, 0, u32::MAX)],
        )))
        .collect();
    // A frame shorter than the copied head: a load past its end, inside
    // the head's room, takes nothing either.
    let short = frame(BROADCAST, PEER, 0x88b5, 60, 8);
    let past_short =
        open_programmed(&sim, filter::DEFAULT, &[BpfInsn::new(0x30, 0, 0, 64), BpfInsn::new(0x6, 0, 0, u32::MAX)]);
    let mut layouts = shaped_layouts().to_vec();
    layouts.extend(shaped_layouts().map(|l| NbLayout { spread: 16, ..l }));
    layouts.push(NbLayout::default());
    for layout in layouts {
        let o = InjectOpts { layout, ..InjectOpts::default() };
        assert_eq!(sim.inject(a, &[&f], &o).unwrap(), 1);
        for (i, h) in takers.iter().enumerate() {
            assert_eq!(queued(h).len(), 1, "taker {i}, {layout:?}");
        }
        for (i, h) in none.iter().enumerate() {
            assert!(queued(h).is_empty(), "loader {i} past the end, {layout:?}");
        }
        assert_eq!(queued(&past_short).len(), 1, "the long frame has a byte at 64, {layout:?}");
        assert_eq!(sim.inject(a, &[&short], &o).unwrap(), 1);
        assert!(queued(&past_short).is_empty(), "{layout:?}");
    }
    drop((takers, none, past_short));
    finish(sim);
}

/// A frame whose bytes a program cannot read (its MDLs cannot be mapped,
/// low resources) may be one it would have taken: the handle counts it as
/// dropped, in its queue and in its rings, as it counts a frame whose
/// header cannot be read. Before, it was not taken and counted nowhere:
/// under a program, such frames vanished without a trace, where a handle
/// without one records them cut to what could be read.
#[test]
fn a_frame_the_program_cannot_read_is_counted_as_dropped() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let q = open_programmed(&sim, filter::PROMISCUOUS, &ARP);
    let r = open_programmed(&sim, filter::PROMISCUOUS, &ARP);
    let u = User::attach(&r, SETUP);
    u.fill((0..16).map(|i| u.frame(i)));
    let frames = [arp_frame(1), udp4(5, 53)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    for layout in [
        NbLayout { unmapped: true, ..NbLayout::default() },
        NbLayout { headroom: 2, first: 14, chunk: 64, unmapped: true, ..NbLayout::default() },
    ] {
        sim.refuse_mappings(u64::MAX);
        assert_eq!(sim.inject(a, &refs, &InjectOpts { layout, ..InjectOpts::default() }).unwrap(), 2);
        sim.refuse_mappings(0);
        assert!(queued(&q).is_empty(), "{layout:?}");
        assert!(u.rx().is_empty(), "{layout:?}");
        // Mapped, the same frames: the ARP one taken, the other not, and
        // neither counted as dropped.
        assert_eq!(sim.inject(a, &refs, &InjectOpts { layout, ..InjectOpts::default() }).unwrap(), 2);
        assert_eq!(queued(&q).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), [frames[0].clone()], "{layout:?}");
        assert_eq!(u.rx().into_iter().map(|(_, d)| d).collect::<Vec<_>>(), [frames[0].clone()], "{layout:?}");
    }
    for h in [&q, &r] {
        let s = stats(h);
        assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops), (2, 4), "{h:?}: both unread frames counted");
    }
    detach(&r, u);
    drop((q, r));
    finish(sim);
}

#[test]
fn a_program_filters_what_reaches_the_rings_alone_or_beside_another_receiver() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let h = open_programmed(&sim, filter::DEFAULT, &ARP);
    let u = User::attach(&h, SETUP);
    u.fill((0..16).map(|i| u.frame(i)));
    let frames = [arp_frame(1), udp4(5, 53), arp_frame(2), udp4(5, 54)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    // Alone (a handle with a program has its frames walked a chunk at a
    // time, not in the one pass).
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 4);
    let got: Vec<Vec<u8>> = u.rx().into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, [frames[0].clone(), frames[2].clone()]);
    // Beside another receiver: the chunk path.
    let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 4);
    let got: Vec<Vec<u8>> = u.rx().into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, [frames[0].clone(), frames[2].clone()]);
    assert_eq!(queued(&other).len(), 4);
    // And what the other handle sends from this host.
    assert_eq!(send(&other, &[udp4(5, 53), arp_frame(3)]).accepted, 2);
    let got: Vec<Vec<u8>> = u.rx().into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, [arp_frame(3)]);
    // A cut in the rings.
    assert_eq!(set_program(&h, &FIRST_20), NtStatus::SUCCESS);
    assert_eq!(sim.inject(a, &refs[..1], &InjectOpts::default()).unwrap(), 1);
    let got = u.rx();
    assert_eq!((got[0].0.len, got[0].0.origlen, &got[0].1[..]), (20, 60, &frames[0][..20]));
    assert_ne!(got[0].0.flags & frame_flags::TRUNCATED, 0);
    assert_eq!(u.counter(ring::control::RX_FRAMES), 6);
    detach(&h, u);
    drop((h, other));
    finish(sim);
}

/// `tcpdump -r any.pcap -dd "vlan 5"`.
const VLAN_5: [BpfInsn; 9] = [
    BpfInsn::new(0x28, 0, 0, 0x0c),
    BpfInsn::new(0x15, 2, 0, 0x8100),
    BpfInsn::new(0x15, 1, 0, 0x88a8),
    BpfInsn::new(0x15, 0, 4, 0x9100),
    BpfInsn::new(0x28, 0, 0, 0x0e),
    BpfInsn::new(0x54, 0, 0, 0x0fff),
    BpfInsn::new(0x15, 0, 1, 5),
    BpfInsn::new(0x6, 0, 0, 0xffff),
    BpfInsn::new(0x6, 0, 0, 0),
];

/// A program reads a frame sent from this host as it goes on the wire:
/// with the 802.1Q tag the send asked for, whether the driver wrote it
/// into the frame (an adapter without VLAN offload: the record has it
/// inline) or the NIC inserts it from the NBL's info (the record has it in
/// its TCI, with `VLAN`, and the frame without it).
#[test]
fn sends_from_this_host_meet_the_program_as_they_go_on_the_wire() {
    let sim = start(&["null@name=on", "null@name=off,vlan=off"]);
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    // Tagged by the send (TCI 5, then 6), and untagged.
    let frames = [(f.clone(), Some(5u16)), (f.clone(), Some(6)), (f.clone(), None)];
    for (idx, inline) in [(0, false), (1, true)] {
        let (tx, _) = open(&sim, idx, filter::DEFAULT, &[]);
        let rx = open_programmed_on(&sim, idx, filter::DEFAULT, &VLAN_5);
        let r = tx.ioctl(IOCTL_RAWNIC_SEND_BATCH, &batch(&frames), SendReply::LEN);
        assert_eq!(status(r.status), NtStatus::SUCCESS);
        let got = queued(&rx);
        assert_eq!(got.len(), 1, "{got:?}");
        let (h, d) = &got[0];
        assert_eq!((h.tci, h.flags & frame_flags::TAGGED), (5, frame_flags::TAGGED));
        if inline {
            assert_eq!((d.len(), h.flags & frame_flags::VLAN), (64, 0));
        } else {
            assert_eq!((&d[..], h.flags & frame_flags::VLAN), (&f[..], frame_flags::VLAN));
        }
        drop((tx, rx));
    }
    finish(sim);
}

/// A received frame whose tag the NIC stripped into the NBL's 802.1Q info
/// meets the program with its tag back in place, as it was on the wire
/// (and as the capture file the client writes has it): `vlan 5` takes it
/// (and not a frame of VLAN 6, nor an untagged one), in the queue and in
/// the rings, in any MDL layout. The frame is delivered as before,
/// without its tag (the record's TCI and `VLAN` say it), and a cut counts
/// the tag's bytes where the program saw them: 20 bytes of the wire's
/// frame are 16 of the frame delivered.
#[test]
fn a_program_sees_a_tag_the_nic_stripped_back_in_place() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let vlan = open_programmed(&sim, filter::DEFAULT, &VLAN_5);
    let cut = open_programmed(&sim, filter::DEFAULT, &FIRST_20);
    let f = frame(BROADCAST, PEER, 0x0800, 100, 7);
    let mut layouts = shaped_layouts().to_vec();
    layouts.push(NbLayout::default());
    for layout in layouts {
        for resources in [false, true] {
            for (tci, taken) in [(Some(5u16), true), (Some(0x2005), true), (Some(6), false), (None, false)] {
                let o = InjectOpts { layout, resources, tci, ..InjectOpts::default() };
                assert_eq!(sim.inject(a, &[&f], &o).unwrap(), 1);
                let got = queued(&vlan);
                let want = if taken { 1 } else { 0 };
                assert_eq!(got.len(), want, "{layout:?}, resources {resources}, TCI {tci:?}: {got:?}");
                if let Some((h, d)) = got.first() {
                    assert_eq!((h.tci, h.flags & frame_flags::VLAN, &d[..]), (tci.unwrap(), frame_flags::VLAN, &f[..]));
                }
                let got = queued(&cut);
                let kept = if tci.is_some() { 16 } else { 20 };
                assert_eq!((got[0].0.caplen as usize, got[0].0.origlen, &got[0].1[..]), (kept, 100, &f[..kept]));
                assert_ne!(got[0].0.flags & frame_flags::TRUNCATED, 0);
            }
        }
    }
    // In the rings, alone on the binding and beside another receiver.
    drop(cut);
    let u = User::attach(&vlan, SETUP);
    u.fill((0..16).map(|i| u.frame(i)));
    for beside in [false, true] {
        let other = beside.then(|| open(&sim, 0, filter::DEFAULT, &[]).0);
        for tci in [Some(5u16), Some(6), None] {
            let o = InjectOpts { tci, ..InjectOpts::default() };
            assert_eq!(sim.inject(a, &[&f], &o).unwrap(), 1);
        }
        let got = u.rx();
        assert_eq!(got.len(), 1, "beside another receiver {beside}");
        assert_eq!((got[0].0.tci, &got[0].1[..]), (5, &f[..]));
        drop(other);
    }
    detach(&vlan, u);
    drop(vlan);
    finish(sim);
}

#[test]
fn a_program_the_driver_cannot_run_safely_is_refused_and_the_one_before_stays() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let h = open_programmed(&sim, filter::DEFAULT, &ARP);
    let ret = BpfInsn::new(0x6, 0, 0, 0xffff);
    let bad: [&[BpfInsn]; 7] = [
        // A jump past the end.
        &[BpfInsn::new(0x15, 0, 1, 0), ret],
        // Scratch memory 16.
        &[BpfInsn::new(0x60, 0, 0, 16), ret],
        // A division by the constant 0.
        &[BpfInsn::new(0x34, 0, 0, 0), ret],
        // No return at the end.
        &[ret, BpfInsn::new(0x00, 0, 0, 0)],
        // An opcode that is none.
        &[BpfInsn::new(0xff, 0, 0, 0), ret],
        // Linux's ancillary load.
        &[BpfInsn::new(0x30, 0, 0, 0xfffff030), ret],
        // A shift by 32.
        &[BpfInsn::new(0x64, 0, 0, 32), ret],
    ];
    for insns in bad {
        assert_eq!(set_program(&h, insns), NtStatus::INVALID_PARAMETER, "{insns:?}");
    }
    // Wire-format errors.
    let mut wrong = program_request(&ARP);
    wrong.pop();
    let r = h.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &wrong, 0);
    assert_eq!(status(r.status), NtStatus::INFO_LENGTH_MISMATCH);
    let mut many = program_request(&[]);
    many[4..8].copy_from_slice(&4097u32.to_le_bytes());
    many.resize(ProgramRequest::wire_len(4097), 0);
    let r = h.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &many, 0);
    assert_eq!(status(r.status), NtStatus::INVALID_PARAMETER);
    let r = h.ioctl(IOCTL_RAWNIC_SET_PROGRAM, &[0u8; 3], 0);
    assert_eq!(status(r.status), NtStatus::BUFFER_TOO_SMALL);
    // No memory for the program: refused, the one before stays.
    sim.refuse_pool_allocations(1_000);
    assert_eq!(set_program(&h, &UDP_53), NtStatus::INSUFFICIENT_RESOURCES);
    sim.refuse_pool_allocations(0);
    // The longest program is taken.
    let mut longest = vec![BpfInsn::new(0x05, 0, 0, 0); rawnic_proto::MAX_PROGRAM_INSNS - 1];
    longest.push(BpfInsn::new(0x6, 0, 0, 0));
    // (Set on another handle: this one keeps ARP.)
    let other = sim.open().unwrap();
    assert_eq!(set_program(&other, &longest), NtStatus::SUCCESS);
    drop(other);
    let frames = [arp_frame(1), udp4(5, 53)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 2);
    assert_eq!(queued(&h).len(), 1, "ARP still filters");
    // No instructions: the program goes, every frame comes.
    assert_eq!(set_program(&h, &[]), NtStatus::SUCCESS);
    assert_eq!(sim.inject(a, &refs, &InjectOpts::default()).unwrap(), 2);
    assert_eq!(queued(&h).len(), 2);
    drop(h);
    finish(sim);
}

/// All handles' programs together take at most `MAX_PROGRAMS_POOL_BYTES`:
/// past it a program is refused with STATUS_INSUFFICIENT_RESOURCES (and
/// the one before stays), and what a program took comes back when it is
/// replaced by a shorter one, removed, or closed with its handle.
#[test]
fn all_handles_programs_together_are_bounded() {
    let sim = start(&["null"]);
    let longest: Vec<BpfInsn> = (0..MAX_PROGRAM_INSNS)
        .map(
            |i| if i + 1 < MAX_PROGRAM_INSNS { BpfInsn::new(0x05, 0, 0, 0) } else { BpfInsn::new(0x6, 0, 0, u32::MAX) },
        )
        .collect();
    let each = rawnic_logic::bpf::Program::bytes_for(MAX_PROGRAM_INSNS);
    let fit = MAX_PROGRAMS_POOL_BYTES / each;
    assert!((16..10_000).contains(&fit), "{fit} programs of {each} bytes");
    let handles: Vec<ndisim::Handle> = (0..fit).map(|_| open_programmed(&sim, filter::DEFAULT, &longest)).collect();
    // One more is refused, on a new handle and on one with a program (a
    // program replacing another needs room for both while it is swapped
    // in).
    let extra = sim.open().unwrap();
    assert_eq!(set_program(&extra, &longest), NtStatus::INSUFFICIENT_RESOURCES);
    assert_eq!(set_program(&handles[0], &longest), NtStatus::INSUFFICIENT_RESOURCES);
    // Removing one gives its share back: handle 0's program can be
    // replaced by a shorter one, which filters.
    assert_eq!(set_program(&handles[1], &[]), NtStatus::SUCCESS);
    assert_eq!(set_program(&handles[0], &ARP), NtStatus::SUCCESS);
    let a = sim.adapter_id("null0").unwrap();
    assert_eq!(sim.inject(a, &[&arp_frame(1), &udp4(5, 53)], &InjectOpts::default()).unwrap(), 2);
    assert_eq!(queued(&handles[0]).len(), 1);
    // Two of the longest gave their shares back (handles 1 and 0), less
    // ARP's: room for one more of the longest, not two.
    assert_eq!(set_program(&extra, &longest), NtStatus::SUCCESS);
    let third = sim.open().unwrap();
    assert_eq!(set_program(&third, &longest), NtStatus::INSUFFICIENT_RESOURCES);
    // Closing a handle gives its program's share back.
    let mut handles = handles;
    drop(handles.remove(2));
    assert_eq!(set_program(&third, &longest), NtStatus::SUCCESS);
    assert_eq!(set_program(&handles[1], &longest), NtStatus::INSUFFICIENT_RESOURCES);
    // Closing them all gives the whole pool back: as many fit again.
    drop((handles, extra, third));
    let again: Vec<ndisim::Handle> = (0..fit).map(|_| open_programmed(&sim, filter::DEFAULT, &longest)).collect();
    drop(again);
    finish(sim);
}

/// A handle's program goes at its IRP_MJ_CLEANUP (CloseHandle), as its
/// queue and rings do, not at IRP_MJ_CLOSE, which waits for every
/// reference to the file object (a request still in flight, a component
/// that referenced it): the pool has its share back at once, and a
/// SET_PROGRAM that comes after the cleanup (through such a reference) is
/// refused and takes nothing.
#[test]
fn a_closed_handles_program_gives_its_share_back_at_cleanup() {
    let sim = start(&["null"]);
    let longest: Vec<BpfInsn> = (0..MAX_PROGRAM_INSNS)
        .map(
            |i| if i + 1 < MAX_PROGRAM_INSNS { BpfInsn::new(0x05, 0, 0, 0) } else { BpfInsn::new(0x6, 0, 0, u32::MAX) },
        )
        .collect();
    let fit = MAX_PROGRAMS_POOL_BYTES / rawnic_logic::bpf::Program::bytes_for(MAX_PROGRAM_INSNS);
    let mut handles: Vec<ndisim::Handle> = (0..fit).map(|_| open_programmed(&sim, filter::DEFAULT, &longest)).collect();
    let extra = sim.open().unwrap();
    assert_eq!(set_program(&extra, &longest), NtStatus::INSUFFICIENT_RESOURCES, "the pool is full");
    // Handle 0 is closed while a reference to its file is held: its
    // cleanup runs, its close waits.
    let closed = handles.remove(0);
    let late = closed.reference().expect("the handle is open");
    closed.close();
    assert_eq!(set_program(&extra, &longest), NtStatus::SUCCESS, "handle 0's program went with its cleanup");
    let third = sim.open().unwrap();
    assert_eq!(set_program(&third, &longest), NtStatus::INSUFFICIENT_RESOURCES, "full again");
    // Room for one more: a program set through the reference after the
    // cleanup is refused, and leaves the room.
    drop(handles.remove(0));
    let t = late.ioctl_async(IOCTL_RAWNIC_SET_PROGRAM, &program_request(&longest), 0).unwrap();
    assert_eq!(status(t.wait().expect("completed").status), NtStatus::INVALID_DEVICE_STATE);
    assert_eq!(set_program(&third, &longest), NtStatus::SUCCESS);
    drop(late);
    drop((handles, extra, third));
    finish(sim);
}
