//! Capture programs tcpdump compiles, run by `rawnic_logic::bpf` and by
//! libpcap's own interpreter (tcpdump filtering a capture file) on the
//! same frames: each frame is taken by both or by neither. The frames are
//! crafted headers (ARP, IPv4 with options and fragments, IPv6, TCP, UDP,
//! ICMP, 802.1Q and QinQ tags, LLC, runts) and those cut and changed at
//! random; the expressions cover what tcpdump compiles to (`ldxb 4*([k]&0xf)`,
//! indexed loads, scratch memory, each ALU operation, jumps of every kind).
//! Needs tcpdump (`cargo make setup` installs it); no network.

use rawnic_logic::bpf::{Parts, Program, Refused, Why};
use std::path::PathBuf;

#[path = "support/frames.rs"]
mod frames;
use frames::*;

#[test]
fn tcpdumps_filters_take_what_libpcap_takes() {
    let dir = std::env::temp_dir().join(format!("rawnic-bpf-tcpdump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, pcap_header()).unwrap();
    let mut rng = Rng(0x5950_0000_0000_0001);
    let frames = frames(&mut rng);
    let all = dir.join("frames.pcap");
    write_pcap(&all, &frames);
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let (mut runs, mut taken, mut stripped_runs) = (0usize, 0usize, 0usize);
    for expr in TCPDUMP_EXPRESSIONS {
        let insns = parse_dd(&String::from_utf8(tcpdump(&["-r", &s(&empty), "-dd", "--", expr])).unwrap());
        let p = Program::new(insns.iter().copied()).unwrap_or_else(|r| panic!("{expr}: refused: {r:?}"));
        let out = dir.join("taken.pcap");
        tcpdump(&["-r", &s(&all), "-w", &s(&out), "--", expr]);
        let theirs = read_stamps(&out);
        let ours: Vec<usize> = (0..frames.len()).filter(|&i| p.run(&frames[i][..]) != 0).collect();
        assert_eq!(ours, theirs, "{expr}: the frames taken (by index) differ from libpcap's");
        // The same frames in parts (as a frame sent from this host is
        // read): the same answers.
        for (i, f) in frames.iter().enumerate() {
            let cut = rng.below(f.len() + 1);
            let (a, b) = f.split_at(cut);
            let mid = rng.below(b.len() + 1);
            let (b, c) = b.split_at(mid);
            assert_eq!(p.run(&Parts(&[a, b, c])), p.run(&f[..]), "{expr}: frame {i} in parts at {cut}, +{mid}");
            // A frame with an 802.1Q tag, as it comes when the NIC strips
            // the tag into the NBL (which cannot carry TCI 0): taken as
            // libpcap takes the tagged frame, and cut as much but the tag.
            if let (Some([0x81, 0x00, t0, t1]), true) = (f.get(12..16).and_then(|t| t.first_chunk()), f.len() >= 16) {
                let tci = u16::from_be_bytes([*t0, *t1]);
                if tci != 0 {
                    let stripped = [&f[..12], &f[16..]].concat();
                    let on_wire = p.run(&f[..]);
                    let got = p.run_stripped(&stripped[..], tci);
                    assert_eq!(got != 0, theirs.contains(&i), "{expr}: frame {i} with its tag stripped");
                    let want = match on_wire {
                        0 | u32::MAX => on_wire,
                        k if k <= 16 => 12,
                        k => k - 4,
                    };
                    assert_eq!(got, want, "{expr}: frame {i} with its tag stripped, cut");
                    stripped_runs += 1;
                }
            }
        }
        runs += frames.len();
        taken += ours.len();
    }
    // `protochain` compiles to a loop (a jump back, `ja` by a negative
    // offset), which libpcap runs in user mode only: the kernels' checks
    // (BSD's `bpf_validate`, Linux's) refuse it, and so does this one.
    let insns = parse_dd(&String::from_utf8(tcpdump(&["-r", &s(&empty), "-dd", "ip6 protochain 6"])).unwrap());
    let back = insns.iter().position(|i| i.code == 0x05 && i.k > 0x8000_0000).expect("a jump back");
    assert_eq!(Program::new(insns.into_iter()).map(|_| ()), Err(Refused { at: back, why: Why::Jump }));
    // Both answers occur: the expressions are not all trivially refused.
    assert!(taken > runs / 20 && taken < runs / 2, "{taken} of {runs}");
    assert!(stripped_runs > runs / 50, "{stripped_runs} runs on frames with their tags stripped, of {runs}");
    std::fs::remove_dir_all(&dir).ok();
}
