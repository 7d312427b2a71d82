//! Rings of the real rawnic.sys in ndisim under attack: a user that
//! rewrites its fill entries and indices while frames flood in, fill
//! entries at the UMEM's edges and past 32 bits, a full batch ending at an
//! NBL's end, a detach, close or cancel during a flood, and a detach or
//! wait the driver must refuse. Nothing is
//! written outside the user's frames and the rx ring, and the counts add
//! up. (The rings' plain receive paths: `driver_rings.rs`.)

use ndisim::{InjectOpts, NbLayout};
use rawnic_proto::ring::*;
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The canary the hostile-user tests fill the UMEM with: a byte no frame
/// they inject starts with (every frame starts with the broadcast
/// address, 0xff).
const CANARY: u8 = 0xA5;

/// The UMEM's byte ranges a receive never writes: the control block past
/// its counters; each ring's header but its two indices (and the tx
/// ring's producer and the completion ring's consumer, the user's); the
/// tx and completion rings' entries, and the padding between the
/// completion ring and the first frame. (An rx descriptor written one
/// past the rx ring's end lands in the tx ring's header.)
fn quiet_ranges(l: &RingLayout) -> Vec<std::ops::Range<usize>> {
    let mut q = Vec::new();
    q.push(control::BAD_INDEX + 8..CONTROL_LEN);
    for r in [l.fill, l.rx] {
        q.extend([r.producer() + 4..r.consumer(), r.consumer() + 4..r.entry_at(0)]);
    }
    let tx_end = l.tx.entry_at(0) + l.tx.size as usize * TxDesc::LEN;
    q.extend([l.tx.producer()..l.tx.consumer(), l.tx.consumer() + 4..tx_end]);
    q.push(l.completion.producer() + 4..l.frames);
    q
}

/// Fills the `quiet_ranges` and every frame with `CANARY` (the frames
/// the user holds taken back from the watch first: the user writes them).
fn canaries(u: &User) {
    for i in 0..u64::from(u.l.frame_count) {
        u.watch.take(u.frame(i));
    }
    for r in quiet_ranges(&u.l).into_iter().chain(std::iter::once(u.l.frames..u.l.total)) {
        u.m.write(r.start, &vec![CANARY; r.len()]);
    }
}

/// Checks what a receive left in the UMEM against the rx descriptors the
/// user took (all of them since the canaries, in order) and the frames
/// injected (`frame_of(len)`: the frame of that length; no two frames
/// injected have one length):
/// the rings a receive never writes still hold the canary; a frame no
/// descriptor names was never written; a frame some descriptors name
/// holds the last one's frame (its first `len` bytes) and nothing past
/// the longest of them.
fn check_umem(u: &User, took: &[RxDesc], frame_of: impl Fn(u32) -> Vec<u8>) {
    let l = &u.l;
    for r in quiet_ranges(l) {
        let bytes = u.m.to_vec(r.start, r.len());
        let bad = bytes.iter().position(|&b| b != CANARY);
        assert_eq!(
            bad,
            None,
            "a receive wrote at {:#x}, outside the rx ring and the frames",
            r.start + bad.unwrap_or(0)
        );
    }
    let fs = l.frame_size as usize;
    for i in 0..u64::from(l.frame_count) {
        let at = u.frame(i);
        let slot = u.m.to_vec(at as usize, fs);
        let named: Vec<&RxDesc> = took.iter().filter(|d| d.addr == at).collect();
        let longest = named.iter().map(|d| d.len as usize).max().unwrap_or(0);
        let bad = slot[longest..].iter().position(|&b| b != CANARY);
        assert_eq!(
            bad,
            None,
            "frame {i}: byte {} written past the longest frame placed there",
            longest + bad.unwrap_or(0)
        );
        if let Some(last) = named.last() {
            let f = frame_of(last.origlen);
            assert_eq!(slot[..last.len as usize], f[..last.len as usize], "frame {i}: not the last frame placed there");
        }
    }
}

/// A small xorshift generator (the hostile user's choices, seeded).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Fill entries a hostile user posts: most name a frame, the others an
/// address no frame starts at (inside a frame, the UMEM's last byte and
/// its end, before the first frame, and addresses that only a check made
/// in 32 bits, or one that lost the top bits, would take for a frame).
fn hostile_entry(l: &RingLayout, r: &mut Rng) -> u64 {
    let (first, fs, count) = (l.frames as u64, u64::from(l.frame_size), u64::from(l.frame_count));
    let frame = |i: u64| first + i * fs;
    let k = r.below(count);
    match r.below(16) {
        0 => frame(k) + 1 + r.below(fs - 1),
        1 => l.total as u64 - 1,
        2 => l.total as u64,
        3 => first - 1 - r.below(first),
        4 => frame(k) + (1 << 32),
        5 => frame(k) | 1 << 63,
        // The frame index `k + 2^32`: `k` in 32 bits.
        6 => frame(k) + (fs << 32),
        7 => u64::MAX - r.below(2 * fs),
        _ => frame(k),
    }
}

/// What the hostile user saw: the rx descriptors it took, in order, and
/// what it found wrong with the indices the driver published.
struct Seen {
    took: Vec<RxDesc>,
    wrong: Vec<String>,
}

/// A user that rewrites its fill entries and indices in a tight loop until
/// `stop`, while taking every rx descriptor the driver publishes: fill
/// entries that name no frame, rewritten between the driver's reads;
/// fill producers too far ahead, behind, and in range over garbage
/// entries; rx consumers no ring allows (past the producer, or more than
/// the ring's size behind it), put back a moment later. The rx producer
/// must never run more than the ring's size ahead of what it took.
/// Each round of the attack adds one to `rounds`.
fn hostile_user(u: &User, stop: &AtomicBool, rounds: &AtomicU64, seed: u64) -> Seen {
    let (l, m) = (&u.l, &u.m);
    let mut r = Rng(seed | 1);
    let mut seen = Seen { took: Vec::new(), wrong: Vec::new() };
    let mut cons = m.load_u32(l.rx.consumer());
    loop {
        let last = stop.load(Ordering::Acquire);
        let prod = m.load_u32(l.rx.producer());
        let n = prod.wrapping_sub(cons);
        if n > l.rx.size {
            seen.wrong.push(format!("rx producer {prod} is {n} past the consumer {cons}"));
            cons = prod;
        }
        while cons != prod {
            let mut raw = [0u8; RxDesc::LEN];
            m.read(l.rx.entry_at(cons), &mut raw);
            seen.took.push(RxDesc::from_bytes(&raw));
            cons = cons.wrapping_add(1);
        }
        m.store_u32(l.rx.consumer(), cons);
        if last {
            return seen;
        }
        rounds.fetch_add(1, Ordering::Release);
        // Where the driver says it is on the fill ring (it may be further).
        let fc = m.load_u32(l.fill.consumer());
        let size = l.fill.size;
        match r.below(16) {
            0..=4 => {
                // Garbage among the entries, a producer in range.
                for _ in 0..1 + r.below(u64::from(size)) {
                    let at = fc.wrapping_add(r.below(u64::from(size)) as u32);
                    m.store_u64(l.fill.entry_at(at), hostile_entry(l, &mut r));
                }
                m.store_u32(l.fill.producer(), fc.wrapping_add(r.below(u64::from(size) + 1) as u32));
            }
            5 => {
                // A producer no ring allows: too far ahead, or behind.
                let p = match r.below(4) {
                    0 => fc.wrapping_add(size + 1 + r.below(1 << 20) as u32),
                    1 => fc.wrapping_sub(1 + r.below(1 << 20) as u32),
                    2 => fc ^ 0x8000_0000,
                    _ => r.next() as u32,
                };
                m.store_u32(l.fill.producer(), p);
            }
            6 => {
                // An rx consumer no ring allows (past anything published,
                // or more than a ring behind), for a moment.
                let g = if r.below(2) == 0 {
                    cons.wrapping_add(l.rx.size + 1 + r.below(1 << 30) as u32)
                } else {
                    cons.wrapping_sub(l.rx.size + 1 + r.below(1 << 30) as u32)
                };
                m.store_u32(l.rx.consumer(), g);
                for _ in 0..r.below(500) {
                    std::hint::spin_loop();
                }
                m.store_u32(l.rx.consumer(), cons);
            }
            7 | 8 => {
                // The entries the driver is about to read, flipped between
                // a frame and garbage as fast as the user can.
                let p = fc.wrapping_add(size);
                m.store_u32(l.fill.producer(), p);
                for k in 0..256u64 {
                    let at = fc.wrapping_add((k % u64::from(size)) as u32);
                    let v =
                        if k % 2 == 0 { u.frame(r.below(u64::from(l.frame_count))) } else { hostile_entry(l, &mut r) };
                    m.store_u64(l.fill.entry_at(at), v);
                }
            }
            _ => {
                // A full ring of good frames.
                for k in 0..size {
                    m.store_u64(l.fill.entry_at(fc.wrapping_add(k)), u.frame(r.below(u64::from(l.frame_count))));
                }
                m.store_u32(l.fill.producer(), fc.wrapping_add(size));
            }
        }
    }
}

/// The frame of `n` bytes the hostile-user tests inject: it starts with
/// the broadcast address (a runt is cut from a whole one), and its bytes
/// tell it from one of any other length.
fn frame_of_len(n: u32) -> Vec<u8> {
    let mut f = frame(BROADCAST, PEER, 0x88b5, n as usize, n);
    f.truncate(n as usize);
    f
}

/// `frame_of_len` for each of `lens`.
fn frames_by_len(lens: impl IntoIterator<Item = u32>) -> Vec<Vec<u8>> {
    lens.into_iter().map(frame_of_len).collect()
}

/// A hostile user rewrites its fill entries and its indices in a tight
/// loop (entries that name no frame, or that only a check made in 32 bits
/// would take, flipped between the driver's reads; producers and
/// consumers out of range) while a flood of frames of every length from 1
/// to MTU + 14 comes in, 64 NBLs an indication, in NBLs of one and of
/// several NET_BUFFERs, with MDLs of every shape. Whatever the user does,
/// the driver writes nothing outside the frames and the rx ring's
/// entries, writes a frame only where a descriptor says (whole, or cut at
/// the frame size and marked), never publishes more descriptors than the
/// user made room for, and its counts add up: each frame placed or
/// counted dropped, each fill entry consumed placed or counted invalid.
/// (Would catch: a fill entry checked and then read again for the copy or
/// the descriptor, an offset check made in 32 bits, a room or an
/// availability believed past the ring's size, a descriptor or fill walk
/// that runs past its ring's end, a copy longer than the frame size, a
/// miscount of the entries a batch consumed.)
#[test]
fn a_user_rewriting_its_rings_during_a_flood_gets_nothing_outside_its_frames() {
    let (sim, a) = sim_with("null@mtu=9000");
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let u = User::attach(&h, SETUP);
    canaries(&u);
    // Lengths strictly rising, so a descriptor's origlen names its frame
    // and the rx ring's order can be checked.
    const LONGEST: u32 = 9000 + 14;
    let frames = frames_by_len(1..=LONGEST);
    let layouts = [
        NbLayout::default(),
        NbLayout { headroom: 3, first: 14, chunk: 101, ..NbLayout::default() },
        NbLayout { headroom: 7, headroom_mdl: true, headroom_mdls: 2, current_offset: 5, ..NbLayout::default() },
        NbLayout { empty_mdls: true, tail: 9, spread: 3, chunk: 600, ..NbLayout::default() },
        NbLayout { unmapped: true, chunk: 1000, ..NbLayout::default() },
    ];
    let (stop, rounds) = (AtomicBool::new(false), AtomicU64::new(0));
    let seen = std::thread::scope(|s| {
        let user = s.spawn(|| hostile_user(&u, &stop, &rounds, 0x5eed_1234_abcd));
        for (k, part) in frames.chunks(97).enumerate() {
            // At least one round of the attack before each indication,
            // however the machine's load schedules the two threads.
            let before = rounds.load(Ordering::Acquire);
            while rounds.load(Ordering::Acquire) == before && !user.is_finished() {
                std::thread::yield_now();
            }
            let refs: Vec<&[u8]> = part.iter().map(|f| &f[..]).collect();
            let o = InjectOpts {
                nbls_per_indication: 64,
                nbl_sizes: vec![1, 1, 3, 1, 2],
                layout: layouts[k % layouts.len()],
                ..InjectOpts::default()
            };
            sim.inject(a, &refs, &o).unwrap();
        }
        stop.store(true, Ordering::Release);
        user.join().unwrap()
    });
    assert!(seen.wrong.is_empty(), "{:?}", &seen.wrong[..seen.wrong.len().min(5)]);
    let took = &seen.took;
    let c = |off| u.counter(off);
    let (placed, empty, full, invalid) =
        (c(control::RX_FRAMES), c(control::RX_FILL_EMPTY), c(control::RX_RING_FULL), c(control::FILL_INVALID));
    let n = rounds.load(Ordering::Acquire);
    eprintln!("{n} rounds of the attack: {placed} placed, {empty} + {full} dropped, {invalid} invalid");
    // (About 1,000 and 300 on a quiet machine; the rounds before each of
    // the 93 indications make sure of some of each, whatever the load.)
    assert!(placed > 50 && invalid > 10, "the flood went on under the attack: {placed} placed, {invalid} invalid");
    assert!(c(control::BAD_INDEX) > 0, "the user's impossible indices were seen");
    assert_eq!(took.len() as u64, placed, "every frame placed was published once");
    assert_eq!(u.m.load_u32(u.l.rx.producer()), placed as u32);
    assert_eq!(placed + empty + full, frames.len() as u64, "each frame placed or counted dropped");
    assert_eq!(
        u.m.load_u32(u.l.fill.consumer()),
        (placed + invalid) as u32,
        "each fill entry consumed was placed or counted invalid"
    );
    let st = stats(&h).handle;
    assert_eq!((st.rx_frames, st.rx_queue_drops), (placed, empty + full));
    let mut prev = 0;
    for d in took {
        assert!(u.l.is_frame_start(d.addr), "a descriptor at {:#x}, no frame's start", d.addr);
        assert!(d.origlen > prev, "origlen {} after {prev}: the rx ring out of order", d.origlen);
        prev = d.origlen;
        assert!((1..=LONGEST).contains(&d.origlen), "origlen {}: no frame injected", d.origlen);
        let cut = d.origlen > SETUP.frame_size;
        assert_eq!((d.len, d.flags & frame_flags::TRUNCATED != 0), (d.origlen.min(SETUP.frame_size), cut), "{d:?}");
    }
    check_umem(&u, took, frame_of_len);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// Fill entries at the UMEM's edges and past 32 bits, across the fill
/// ring's end, in one indication (the batch path: the first entry read
/// with the indices, the rest by the walk of the ring's memory, which
/// goes back to the ring's start), whose descriptors go across the rx
/// ring's end: only the entries that name a frame are taken (the last
/// frame, and one frame twice), each other one is counted invalid, the
/// frames go whole to where they say (the last to the UMEM's last byte),
/// and nothing else in the UMEM changes. (Would catch: an entry checked
/// in 32 bits, or after losing its top bits, taken for the frame it
/// names modulo 2^32; a bound off by one at the UMEM's end; the fill
/// walk or the descriptor writer not going back to its ring's start, or
/// going one entry past its end, into the next ring.)
#[test]
fn fill_entries_at_the_umem_s_edges_and_past_32_bits_are_skipped_across_the_rings_ends() {
    let (sim, a) = sim_with("null@mtu=9000");
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let u = User::attach(&h, SETUP);
    let l = u.l;
    let last = u64::from(SETUP.frame_count) - 1;
    // 30 frames first: both rings' indices 2 short of their ends.
    u.fill((0..30).map(|i| u.frame(i)));
    let warm = frames_by_len(60..90);
    sim.inject(a, &warm.iter().map(|f| &f[..]).collect::<Vec<_>>(), &InjectOpts::default()).unwrap();
    assert_eq!(u.rx().len(), 30);
    canaries(&u);
    let (first, fs) = (l.frames as u64, u64::from(SETUP.frame_size));
    let entries = [
        l.total as u64 - 1,
        u.frame(last) + 1,
        u.frame(last),
        l.total as u64,
        first - 1,
        first - fs,
        u.frame(3) + (1 << 32),
        u.frame(3) | 1 << 63,
        // Frame 3 + 2^32: frame 3 in 32 bits.
        u.frame(3) + (fs << 32),
        u64::MAX,
        u64::MAX - fs + 1,
        0,
        u.frame(5),
        u.frame(5) + fs / 2,
        u.frame(5),
    ];
    u.fill(entries);
    // Three frames of the frame size (the last one placed to the UMEM's
    // last byte), one cut at it, and one more than the fill ring has.
    let frames = frames_by_len([2048, 2047, 3000, 2046]);
    let o = InjectOpts { nbls_per_indication: 4, ..InjectOpts::default() };
    sim.inject(a, &frames.iter().map(|f| &f[..]).collect::<Vec<_>>(), &o).unwrap();
    let c = |off| u.counter(off);
    assert_eq!(c(control::RX_FRAMES), 30 + 3);
    assert_eq!(c(control::FILL_INVALID), 12);
    assert_eq!(c(control::RX_FILL_EMPTY), 1);
    assert_eq!(u.m.load_u32(l.fill.consumer()), 30 + entries.len() as u32);
    // (Taken by hand: `User::rx` reads each frame back, which the canary
    // check below does with what the UMEM holds.)
    let prod = u.m.load_u32(l.rx.producer());
    assert_eq!(prod, 33);
    let took: Vec<RxDesc> = (30..prod)
        .map(|i| {
            let mut raw = [0u8; RxDesc::LEN];
            u.m.read(l.rx.entry_at(i), &mut raw);
            RxDesc::from_bytes(&raw)
        })
        .collect();
    let got: Vec<(u64, u32, u32)> = took.iter().map(|d| (d.addr, d.len, d.origlen)).collect();
    assert_eq!(got, [(u.frame(last), 2048, 2048), (u.frame(5), 2047, 2047), (u.frame(5), 2048, 3000)]);
    assert_eq!(took[2].flags & frame_flags::TRUNCATED, frame_flags::TRUNCATED);
    u.m.store_u32(l.rx.consumer(), prod);
    check_umem(&u, &took, frame_of_len);
    detach(&h, u);
    h.close();
    finish(sim);
}

/// An indication of 64 NBLs into a ring's one-pass walk, whose batch
/// (32 frames) fills exactly at an NBL's end: the walk goes on with the
/// next NBL, whatever it is (plain, tagged, or of several NET_BUFFERs),
/// and every frame lands once, in order, with its NBL's tag. (The walk
/// once took a batch that filled at an NBL's end for a next NBL that is
/// not plain, and handed that NBL's frames one at a time: the same
/// frames, more slowly. Would catch: the NBL after a full batch skipped,
/// handed twice, or its tag lost, in either way of going on.)
#[test]
fn the_nbl_after_a_full_batch_is_walked_in_order_whatever_it_is() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let u = User::attach(&h, RingSetup { frame_count: 256, fill: 256, rx: 256, ..SETUP });
    // The 33rd NBL plain, tagged, or of three NET_BUFFERs (its first the
    // 33rd frame).
    for (round, (tci, sizes)) in
        [(None, vec![1]), (Some(0x2005), vec![1]), (None, [vec![1; 32], vec![3]].concat())].into_iter().enumerate()
    {
        u.fill((0..66).map(|i| u.frame(i)));
        let frames = frames_by_len(100..166);
        let mut tcis = vec![None; 64];
        tcis[32] = tci;
        let o = InjectOpts { nbls_per_indication: 64, nbl_sizes: sizes, tcis: tcis.clone(), ..InjectOpts::default() };
        sim.inject(a, &frames.iter().map(|f| &f[..]).collect::<Vec<_>>(), &o).unwrap();
        let got = u.rx();
        assert_eq!(got.len(), frames.len(), "round {round}: every frame once");
        for (i, (d, bytes)) in got.iter().enumerate() {
            assert_eq!(bytes, &frames[i], "round {round}: frame {i} in its place");
            let want = if i == 32 { tci } else { None };
            let tag = want.map_or((0, 0), |t| (frame_flags::VLAN | frame_flags::TAGGED, t));
            assert_eq!((d.flags & (frame_flags::VLAN | frame_flags::TAGGED), d.tci), tag, "round {round}: frame {i}");
        }
    }
    detach(&h, u);
    h.close();
    finish(sim);
}

/// A detach, a close of the handle or a cancel of the attach in the
/// middle of a flood (frames indicated on another thread all along, the
/// user keeping its fill ring stocked and its rx ring taken): the attach
/// completes, and from then on nothing in the UMEM changes, however many
/// frames come; the verifier stays clean (a system mapping used after
/// its pages were unlocked faults in ndisim). (Would catch: a receive
/// that places frames, or publishes, with rings it found on the handle
/// before the detach, after their attach completed.)
#[test]
fn a_detach_close_or_cancel_during_a_flood_leaves_the_umem_alone_after() {
    use std::sync::atomic::AtomicUsize;
    for how in ["detach", "close", "cancel"] {
        let (sim, a) = sim_with("null");
        let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
        let u = User::attach(&h, SETUP);
        let (l, m) = (u.l, &u.m);
        let frames = frames_by_len(60..124);
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        let o = InjectOpts { nbls_per_indication: 16, ..InjectOpts::default() };
        let (stop, rounds) = (AtomicBool::new(false), AtomicUsize::new(0));
        let mut h = Some(h);
        std::thread::scope(|s| {
            let nic = s.spawn(|| {
                while !stop.load(Ordering::Acquire) {
                    sim.inject(a, &refs, &o).unwrap();
                    rounds.fetch_add(1, Ordering::Release);
                }
            });
            // The user, until a few hundred frames came.
            let mut k = 0u64;
            while u.counter(control::RX_FRAMES) < 300 {
                let fc = m.load_u32(l.fill.consumer());
                for i in 0..l.fill.size {
                    m.store_u64(l.fill.entry_at(fc.wrapping_add(i)), u.frame(k % u64::from(l.frame_count)));
                    k += 1;
                }
                m.store_u32(l.fill.producer(), fc.wrapping_add(l.fill.size));
                m.store_u32(l.rx.consumer(), m.load_u32(l.rx.producer()));
            }
            let want = match how {
                "detach" => {
                    let r = h.as_ref().unwrap().ioctl(IOCTL_RAWNIC_RING_DETACH, &empty(), 0);
                    assert_eq!(status(r.status), NtStatus::SUCCESS);
                    NtStatus::SUCCESS
                }
                "close" => {
                    h.take().unwrap().close();
                    NtStatus::CANCELLED
                }
                _ => {
                    u.attach.cancel();
                    NtStatus::CANCELLED
                }
            };
            assert_eq!(status(u.attach.wait().unwrap().status), want, "{how}: the attach completes");
            let before = m.to_vec(0, l.total);
            let seen = rounds.load(Ordering::Acquire);
            while rounds.load(Ordering::Acquire) < seen + 3 {
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Release);
            nic.join().unwrap();
            assert!(m.to_vec(0, l.total) == before, "{how}: the UMEM changed after its attach completed");
        });
        if let Some(h) = h {
            h.close();
        }
        finish(sim);
    }
}

/// A detach whose input is not an empty request, and a wait whose output
/// cannot take the reply, are refused at once: the detach leaves the rings
/// attached (the attach pends, frames arrive), and the wait does not pend
/// while nothing is ready. The proper requests then work.
#[test]
fn a_detach_with_a_bad_request_or_a_wait_with_a_short_reply_buffer_is_refused() {
    let (sim, a) = sim_with("null");
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = User::attach(&h, SETUP);
    let mut long = empty();
    long.extend_from_slice(&[0; 4]);
    let mut old = empty();
    old[0] ^= 0x40;
    for (input, want) in [(long, NtStatus::INFO_LENGTH_MISMATCH), (old, NtStatus::REVISION_MISMATCH)] {
        let r = h.ioctl(IOCTL_RAWNIC_RING_DETACH, &input, 0);
        assert_eq!(status(r.status), want, "detach input {input:02x?}");
        assert!(u.attach.try_result().is_none(), "a refused detach leaves the rings attached");
    }
    let short = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN - 1).unwrap();
    let r = short.try_result().expect("a wait with a short reply buffer is refused at once");
    assert_eq!(status(r.status), NtStatus::BUFFER_TOO_SMALL);
    let wait = h.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &wait_request(wait_flags::RX), RingReply::LEN).unwrap();
    assert!(wait.try_result().is_none(), "nothing ready: a proper wait pends");
    u.fill([u.frame(0)]);
    sim.inject(a, &[&frame(BROADCAST, PEER, 0x88b5, 60, 1)], &InjectOpts::default()).unwrap();
    assert_eq!(status(wait.wait().unwrap().status), NtStatus::SUCCESS);
    assert_eq!(u.rx().len(), 1, "the rings stayed attached");
    detach(&h, u);
    h.close();
    finish(sim);
}
