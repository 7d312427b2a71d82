//! rawnicctl, the built binary, against the real rawnic.sys in ndisim,
//! through ndisim's Unix-socket device bridge: every command on the real
//! IRP path, a pcapng capture that tcpdump reads back, and arping answered
//! by the Linux kernel over a TAP adapter in a private network namespace.
#![cfg(unix)]

mod common;

use common::*;
use ndisim::AdapterId;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn list_version_and_wait() {
    let bed = Bed::new("e2e", &["loopback@mac=02:00:00:00:00:0a", "null@mtu=9000"]);
    let v = json_lines(&bed.ok(&["list", "--json"]));
    let list = v[0].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["mac"], "02:00:00:00:00:0a");
    // The host's names for the interfaces: ndisim's command-line names.
    assert_eq!((list[0]["alias"].as_str(), list[1]["alias"].as_str()), (Some("loop0"), Some("null0")));
    let text_list = bed.ok(&["list"]);
    assert!(text_list.starts_with("0: loop0 (\\DEVICE\\{"), "{text_list}");
    assert_eq!(list[0]["state"], "running");
    assert_eq!(list[1]["mtu"], 9000);
    let out = bed.ok(&["version"]);
    assert!(
        out.contains(&format!("driver 0.1.0, wire format {}, NDIS 6.89", rawnic_client::rawnic_proto::PROTO_VERSION)),
        "{out}"
    );
    let out = bed.ok(&["wait", "-t", "5"]);
    assert!(out.contains('2'), "{out}");
    bed.finish();
}

#[test]
fn send_and_recv_through_loopback_with_a_pcapng_that_tcpdump_reads() {
    let bed = Bed::new("e2e", &["loopback"]);
    let dir = std::env::temp_dir().join(format!("rawnicctl-e2e-pcap-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("cap.pcapng");
    let recv = bed.spawn(&["recv", "-c", "20", "-t", "20", "--ethertype", "0x88b5", "-w", pcap.to_str().unwrap()]);
    bed.wait_handles(0, 1);
    bed.ok(&[
        "send",
        "--dst",
        "ff:ff:ff:ff:ff:ff",
        "--ethertype",
        "0x88b5",
        "-c",
        "20",
        "00112233445566778899aabbccddeeff",
    ]);
    // Frames of another EtherType do not reach the capture.
    bed.ok(&["send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b6", "-c", "5", "00"]);
    finish_child(recv);
    let o = Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump (cargo make setup installs it)");
    assert!(o.status.success(), "tcpdump could not read the pcapng: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let packets: Vec<&str> = out.lines().filter(|l| l.contains("ethertype")).collect();
    assert_eq!(packets.len(), 20, "{out}");
    assert!(
        packets.iter().all(|l| l.contains("ethertype Unknown (0x88b5)") && l.contains("> ff:ff:ff:ff:ff:ff")),
        "{out}"
    );
    assert!(out.contains("0011 2233 4455 6677 8899 aabb ccdd eeff"), "the payload: {out}");
    let _ = std::fs::remove_dir_all(&dir);
    bed.finish();
}

/// The direction of each frame reaches the pcapng file: on a pair, the
/// sender's side captures its frames as outbound (rawnic hands a handle's
/// sends to the binding's other handles), the peer's side as inbound.
/// tshark reads the `epb_flags` direction bits.
#[test]
fn pcapng_carries_the_direction_tshark_reads() {
    let bed = Bed::new("e2e", &["pair:a,b"]);
    let dir = std::env::temp_dir().join(format!("rawnicctl-e2e-dir-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out_pcap, in_pcap) = (dir.join("out.pcapng"), dir.join("in.pcapng"));
    let cap = |adapter: &str, p: &PathBuf| {
        bed.spawn(&["--adapter", adapter, "recv", "-c", "3", "-t", "20", "-w", p.to_str().unwrap()])
    };
    // Adapters named as the host names them.
    let (on_a, on_b) = (cap("a", &out_pcap), cap("B", &in_pcap));
    bed.wait_handles(0, 1);
    bed.wait_handles(1, 1);
    bed.ok(&["--adapter", "a", "send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", "-c", "3", "00"]);
    finish_child(on_a);
    finish_child(on_b);
    for (p, want) in [(&out_pcap, "2"), (&in_pcap, "1")] {
        let o = Command::new("tshark")
            .args(["-r"])
            .arg(p)
            .args(["-T", "fields", "-e", "frame.packet_flags_direction"])
            .output()
            .expect("tshark (cargo make setup installs it)");
        assert!(o.status.success(), "tshark could not read {}: {}", p.display(), text(&o.stderr));
        let dirs: Vec<String> = text(&o.stdout)
            .lines()
            .map(|l| l.trim().trim_start_matches("0x").trim_start_matches('0').to_string())
            .collect();
        assert_eq!(dirs, vec![want; 3], "{}: {:?}", p.display(), text(&o.stdout));
    }
    let _ = std::fs::remove_dir_all(&dir);
    bed.finish();
}

/// 802.1Q tags reach pcapng as they were on the wire, a tag of TCI 0
/// included: on a pair whose `a` inserts tags (802.1Q) and whose `b` does
/// not strip them, `a`'s capture of its own sends and `b`'s of what it
/// received both read back with tcpdump as the same tagged frames.
#[test]
fn pcapng_keeps_802_1q_tags_even_of_tci_0() {
    let bed = Bed::new("e2e", &["pair:a,b"]);
    let b = bed.sim().adapter_id("b").unwrap();
    bed.sim().set_vlan(b, false);
    bed.sim().pause(b).unwrap();
    bed.sim().restart(b, &Default::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("rawnicctl-e2e-vlan-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out_pcap, in_pcap) = (dir.join("out.pcapng"), dir.join("in.pcapng"));
    let cap = |adapter: &str, p: &PathBuf| {
        bed.spawn(&["--adapter", adapter, "recv", "-c", "3", "-t", "20", "-w", p.to_str().unwrap()])
    };
    let (on_a, on_b) = (cap("a", &out_pcap), cap("b", &in_pcap));
    bed.wait_handles(0, 1);
    bed.wait_handles(1, 1);
    let send = |args: &[&str]| {
        let mut v = vec!["--adapter", "a", "send", "--dst", "ff:ff:ff:ff:ff:ff"];
        v.extend_from_slice(args);
        bed.ok(&v);
    };
    // Tagged by a's NIC; by the driver, inline (TCI 0, which NDIS's info
    // cannot carry, given as the frame's own tag); untagged.
    send(&["--ethertype", "0x88b5", "--vlan", "100:5", "aa"]);
    send(&["--ethertype", "vlan", "000088b5bb"]);
    send(&["--ethertype", "0x88b5", "cc"]);
    finish_child(on_a);
    finish_child(on_b);
    for p in [&out_pcap, &in_pcap] {
        let o = Command::new("tcpdump")
            .args(["-nn", "-e", "-r"])
            .arg(p)
            .output()
            .expect("tcpdump (cargo make setup installs it)");
        assert!(o.status.success(), "tcpdump could not read {}: {}", p.display(), text(&o.stderr));
        let out = text(&o.stdout);
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("ethertype")).collect();
        assert_eq!(lines.len(), 3, "{}: {out}", p.display());
        let tagged = |tag: &str| format!("ethertype 802.1Q (0x8100), length 19: {tag}, ethertype Unknown (0x88b5)");
        assert!(lines[0].contains(&tagged("vlan 100, p 5")), "{}: {out}", p.display());
        assert!(lines[1].contains(&tagged("vlan 0, p 0")), "{}: {out}", p.display());
        assert!(lines[2].contains("ethertype Unknown (0x88b5), length 15"), "{}: {out}", p.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
    bed.finish();
}

/// `selftest`, as the install script runs it: every step passes on a
/// healthy installation, and a binding that is not running fails it with
/// exit status 1 and a sentence.
#[test]
fn selftest_passes_on_a_healthy_install_and_names_what_is_wrong() {
    let bed = Bed::new("e2e", &["pair:a,b", "null@oid=pending"]);
    let out = bed.ok(&["selftest", "-c", "16"]);
    let passes = out.lines().filter(|l| l.starts_with("PASS  ")).count();
    // versions, bindings, then open, OIDs, send/receive, counters on each
    // of the three adapters.
    assert_eq!(passes, 2 + 3 * 4, "{out}");
    assert!(out.contains("16 frames back, in order, byte for byte, marked outbound"), "{out}");
    assert!(out.ends_with("selftest: 14 of 14 steps passed\n"), "{out}");
    let v = json_lines(&bed.ok(&["--adapter", "0", "selftest", "--json"]));
    assert!(v[..v.len() - 1].iter().all(|s| s["pass"] == true), "{v:?}");
    assert_eq!(v.last().unwrap()["failed"], 0);
    // A paused binding: FAIL, exit status 1.
    bed.sim().pause(AdapterId(1)).unwrap();
    let o = bed.run(&["selftest"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("FAIL  bindings: b is paused, not running"), "{out}");
    assert!(text(&o.stderr).contains("selftest failed: 1 of "), "{}", text(&o.stderr));
    bed.sim().restart(AdapterId(1), &ndisim::RestartSpec::default()).unwrap();
    bed.finish();
}

#[test]
fn recv_prints_frames_and_stats_counts_them() {
    let bed = Bed::new("e2e", &["loopback"]);
    let recv = bed.spawn(&["recv", "-c", "3", "-t", "20", "--json"]);
    bed.wait_handles(0, 1);
    bed.ok(&["send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", "-c", "3", "--vlan", "7:5", "cafe"]);
    let o = finish_child(recv);
    let frames = json_lines(&text(&o.stdout));
    assert_eq!(frames.len(), 3);
    // Another handle's sends on the same adapter: outbound, with the tag
    // they were sent with.
    for f in &frames {
        assert_eq!((&f["direction"], &f["loopback"]), (&Value::from("out"), &Value::from(false)), "{f}");
        assert_eq!((&f["vlan"], &f["priority"]), (&Value::from(7), &Value::from(5)), "{f}");
    }
    let s = json_lines(&bed.ok(&["stats", "--json"]));
    assert_eq!(s[0]["binding"]["tx_frames"], 3);
    // NDIS indicated none of them: rawnic handed them over itself.
    assert_eq!(s[0]["binding"]["rx_frames"], 0);
    bed.finish();
}

/// A filter tcpdump compiles (for a capture file, with `-dd`), run by the
/// driver on each frame: only the frames it takes reach `recv`; a program
/// compiled for a live Linux capture is refused with a sentence that says
/// which instruction and why, before anything is opened.
#[test]
fn recv_runs_a_capture_program_tcpdump_compiled() {
    let bed = Bed::new("e2e", &["null"]);
    let dir = std::env::temp_dir().join(format!("rawnicctl-e2e-bpf-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    // An empty Ethernet capture file, for tcpdump to compile against.
    let empty = dir.join("empty.pcap");
    let mut hdr = Vec::new();
    for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        hdr.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&empty, hdr).unwrap();
    let compile = |expr: &str, flag: &str| {
        let o = Command::new("tcpdump").args(["-r", empty.to_str().unwrap(), flag, expr]).output().unwrap();
        assert!(o.status.success(), "tcpdump: {}", text(&o.stderr));
        let p = dir.join(format!("prog{}", unique()));
        std::fs::write(&p, &o.stdout).unwrap();
        p
    };
    let prog = compile("ether proto 0x88b5 and ether[14] = 0x11", "-dd");
    let recv = bed.spawn(&["recv", "-c", "3", "-t", "20", "--json", "--program", prog.to_str().unwrap()]);
    bed.wait_handles(0, 1);
    for payload in ["22", "11aa", "2211", "11bb", "11cc", "33"] {
        bed.ok(&["send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", payload]);
    }
    let o = finish_child(recv);
    let frames = json_lines(&text(&o.stdout));
    let firsts: Vec<&str> = frames.iter().map(|f| &f["data"].as_str().unwrap()[28..32]).collect();
    assert_eq!(firsts, ["11aa", "11bb", "11cc"], "{frames:?}");
    // `-ddd` works as well, from stdin, and cuts (`ret #20`).
    let cut = compile("ether proto 0x88b5", "-ddd");
    let text_prog = std::fs::read_to_string(&cut).unwrap().replace("65535", "20");
    let mut child = bed
        .cmd(&["recv", "-c", "1", "-t", "20", "--json", "--program", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text_prog.as_bytes()).unwrap();
    bed.wait_handles(0, 1);
    bed.ok(&["send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", &"ab".repeat(100)]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let f = &json_lines(&text(&o.stdout))[0];
    assert_eq!((&f["caplen"], &f["origlen"]), (&Value::from(20), &Value::from(114)), "{f}");
    // Linux's ancillary load (compiled for a live capture): refused by name.
    let linux = dir.join("linux.bpf");
    std::fs::write(&linux, "{ 0x30, 0, 0, 0xfffff030 },\n{ 0x6, 0, 0, 0x40000 },\n").unwrap();
    let o = bed.run(&["recv", "-c", "1", "-t", "1", "--program", linux.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("instruction 0") && e.contains("tcpdump -r FILE -dd"), "{e}");
    let o = bed.run(&["recv", "-c", "1", "-t", "1", "--program", dir.join("none").to_str().unwrap()]);
    assert!(text(&o.stderr).contains("cannot read the capture program"), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).ok();
    bed.finish();
}

/// `recv --expr`: rawnicctl compiles the expression, the driver runs it;
/// a `vlan` expression takes the frames sent with that tag (which the
/// driver puts back in place for the program).
#[test]
fn recv_runs_a_filter_expression_compiled_by_rawnicctl() {
    let bed = Bed::new("e2e", &["null"]);
    let recv = bed.spawn(&[
        "recv",
        "-c",
        "2",
        "-t",
        "20",
        "--json",
        "--expr",
        "vlan 7 and ether proto 0x88b5 and ether[18] = 0x11",
    ]);
    bed.wait_handles(0, 1);
    for (vlan, payload) in [("7:5", "22"), ("7:5", "11aa"), ("8", "11ff"), ("", "11ee"), ("7", "11bb")] {
        let mut args = vec!["send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5"];
        if !vlan.is_empty() {
            args.extend(["--vlan", vlan]);
        }
        args.push(payload);
        bed.ok(&args);
    }
    let o = finish_child(recv);
    let frames = json_lines(&text(&o.stdout));
    // Delivered without the tag (its TCI beside): the payload at 14.
    let firsts: Vec<&str> = frames.iter().map(|f| &f["data"].as_str().unwrap()[28..32]).collect();
    assert_eq!(firsts, ["11aa", "11bb"], "{frames:?}");
    assert!(frames.iter().all(|f| f["vlan"] == 7), "{frames:?}");
    bed.finish();
}

#[test]
fn oid_get_and_set_with_clear_refusals() {
    let bed = Bed::new("e2e", &["null@mac=02:00:00:00:00:07"]);
    let out = bed.ok(&["oid", "get", "OID_802_3_CURRENT_ADDRESS"]);
    assert!(out.contains("02:00:00:00:00:07"), "{out}");
    bed.ok(&["oid", "set", "OID_GEN_CURRENT_LOOKAHEAD", "--u32", "256"]);
    let out = bed.ok(&["oid", "get", "OID_GEN_CURRENT_LOOKAHEAD"]);
    assert!(out.contains("256"), "{out}");
    let o = bed.run(&["oid", "set", "OID_GEN_CURRENT_PACKET_FILTER", "--u32", "32"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("allow-list") && e.contains("STATUS_ACCESS_DENIED"), "{e}");
    bed.finish();
}

#[test]
fn watch_reports_link_and_binding_events() {
    let bed = Bed::new("e2e", &["null"]);
    let watch = bed.spawn(&["watch", "-a", "0", "-c", "4", "-t", "20", "--json"]);
    bed.wait_handles(0, 1);
    let a = AdapterId(0);
    bed.sim().link(a, false).unwrap();
    bed.sim().link(a, true).unwrap();
    bed.sim().pause(a).unwrap();
    bed.sim().restart(a, &Default::default()).unwrap();
    let o = finish_child(watch);
    let kinds: Vec<String> =
        json_lines(&text(&o.stdout)).iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["link-down", "link-up", "paused", "restarted"]);
    bed.finish();
}

#[test]
fn errors_from_the_driver_read_as_sentences() {
    let bed = Bed::new("e2e", &["null"]);
    bed.sim().pause(AdapterId(0)).unwrap();
    let o = bed.run(&["send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", "00"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("not running") && e.contains("STATUS_DEVICE_NOT_READY"), "{e}");
    bed.sim().restart(AdapterId(0), &Default::default()).unwrap();
    bed.finish();
}

/// `rawnicctl arping`: an ARP request built by rawnicctl, sent by rawnic.sys
/// through a TAP adapter, answered by the Linux kernel, received back
/// through the driver.
#[test]
fn arping_is_answered_by_the_linux_kernel_over_tap() {
    // A private network namespace for this thread (and the threads ndisim
    // starts from it); the socket file is in the shared filesystem.
    rawnic_tests::tap::private_netns();
    let bed = Bed::new("e2e", &["tap:rnarp0@mac=02:00:00:00:00:01"]);
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().expect("ip (iproute2)");
        assert!(st.success(), "ip {args:?}");
    };
    ip(&["addr", "add", "10.77.0.1/24", "dev", "rnarp0"]);
    ip(&["link", "set", "rnarp0", "up"]);
    // (/sys shows the original namespace; ask ip.)
    let link = Command::new("ip").args(["-o", "link", "show", "rnarp0"]).output().unwrap();
    let link = text(&link.stdout);
    let linux_mac =
        link.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).expect("the TAP's MAC").to_string();
    let out = bed.ok(&["arping", "10.77.0.1", "--source", "10.77.0.2", "-c", "3", "-t", "5"]);
    let replies: Vec<&str> = out.lines().filter(|l| l.contains("reply from 10.77.0.1")).collect();
    assert_eq!(replies.len(), 3, "{out}");
    assert!(replies.iter().all(|l| l.contains(&linux_mac)), "the reply names the kernel's MAC {linux_mac}: {out}");
    bed.finish();
}

#[test]
fn recv_explains_a_packet_filter_the_adapter_refuses() {
    // The miniport offers no promiscuous mode.
    let bed = Bed::new("e2e", &["null@filters=0xf"]);
    let o = bed.run(&["recv", "--promiscuous", "--strict-filter", "-t", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("the adapter does not give packet filter") && e.contains("promiscuous"), "{e}");
    let o = bed.run(&["recv", "--promiscuous", "-t", "1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(e.contains("the adapter refused promiscuous mode; you get frames for this host only"), "{e}");
    let out = bed.ok(&["list"]);
    assert!(out.contains("the adapter does not allow filter promiscuous"), "{out}");
    let v = json_lines(&bed.ok(&["list", "--json"]));
    assert_eq!(v[0][0]["supported_filters"], 0xf);
    bed.finish();
}

/// Frames the NIC coalesced (RSC, URO) reach rawnicctl whole, far past the
/// MTU: `recv` prints that the NIC coalesced them, with the counts, and
/// writes them to pcapng with a packet comment that says so, which tshark
/// reads (and tcpdump reads the file).
#[test]
fn coalesced_frames_reach_recv_and_pcapng_whole_with_their_counts() {
    use ndisim::{Coalesce, InjectOpts};
    let bed = Bed::new("e2e", &["null@uro=on"]);
    let dir = std::env::temp_dir().join(format!("rawnicctl-e2e-rsc-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("coalesced.pcapng");
    let pcap = bed.spawn(&["recv", "-c", "3", "-t", "20", "-w", p.to_str().unwrap()]);
    let printed = bed.spawn(&["recv", "-c", "3", "-t", "20"]);
    let json = bed.spawn(&["--json", "recv", "-c", "3", "-t", "20"]);
    bed.wait_handles(0, 3);
    let frame = |len: usize| {
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0x99, 0x88, 0xb5]);
        f.extend((0..len - 14).map(|i| i as u8));
        f
    };
    let (rsc, uro, plain) = (frame(20_000), frame(9_000), frame(60));
    for (f, c) in [
        (&rsc, Some(Coalesce::Rsc { segs: 12, dup_acks: 0 })),
        (&uro, Some(Coalesce::Uro { segs: 5, seg_size: 1472 })),
        (&plain, None),
    ] {
        bed.sim().inject(AdapterId(0), &[f], &InjectOpts { coalesce: c, ..InjectOpts::default() }).unwrap();
    }
    finish_child(pcap);
    let out = text(&finish_child(printed).stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains("20000 bytes") && lines[0].ends_with("[coalesced by the NIC: 12 segments]"), "{out}");
    assert!(lines[1].ends_with("[coalesced by the NIC: 5 segments of 1472 bytes]"), "{out}");
    assert!(!lines[2].contains("coalesced"), "{out}");
    let v = json_lines(&text(&finish_child(json).stdout));
    let got: Vec<(Value, Value, Value, Value)> = v
        .iter()
        .map(|f| (f["origlen"].clone(), f["coalesced"].clone(), f["segments"].clone(), f["segment_size"].clone()))
        .collect();
    let want: Vec<(Value, Value, Value, Value)> = vec![
        (20_000.into(), true.into(), 12.into(), Value::Null),
        (9_000.into(), true.into(), 5.into(), 1472.into()),
        (60.into(), false.into(), Value::Null, Value::Null),
    ];
    assert_eq!(got, want);
    let o = Command::new("tshark")
        .args(["-r"])
        .arg(&p)
        .args(["-T", "fields", "-E", "separator=|", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.comment"])
        .output()
        .expect("tshark (cargo make setup installs it)");
    assert!(o.status.success(), "tshark could not read {}: {}", p.display(), text(&o.stderr));
    let rows: Vec<String> = text(&o.stdout).lines().map(|l| l.trim_end().to_string()).collect();
    assert_eq!(
        rows,
        [
            "20000|20000|coalesced by the NIC: 12 segments",
            "9000|9000|coalesced by the NIC: 5 segments of 1472 bytes",
            "60|60|"
        ],
        "{}",
        text(&o.stdout)
    );
    let o = Command::new("tcpdump")
        .args(["-n", "-e", "-r"])
        .arg(&p)
        .output()
        .expect("tcpdump (cargo make setup installs it)");
    assert!(o.status.success(), "tcpdump could not read {}: {}", p.display(), text(&o.stderr));
    let out = text(&o.stdout);
    // One summary line per packet (hex dumps of the unknown EtherType
    // follow them).
    let packets: Vec<&str> = out.lines().filter(|l| l.contains("ethertype")).collect();
    assert_eq!(packets.len(), 3, "{out}");
    assert!(packets[0].contains("length 20000") && packets[1].contains("length 9000"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    bed.finish();
}
