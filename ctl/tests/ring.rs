//! `rawnicctl recv --ring` and `send --ring`, the built binary, against the
//! real rawnic.sys in ndisim through its device bridge: the same outputs as
//! reads and SEND_BATCH, a pcapng that tcpdump reads, and every frame sent.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use ndisim::AdapterId;
use serde_json::Value;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Sends `args` again and again until every receiver has exited: a
/// receiver attaches its UMEM after it opens the binding, and frames before
/// that go to its read queue instead.
fn send_until_done(bed: &Bed, args: &[&str], receivers: &mut [Child]) {
    let start = Instant::now();
    while receivers.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        assert!(start.elapsed() < Duration::from_secs(30), "the receivers never finished");
        bed.ok(args);
        std::thread::sleep(Duration::from_millis(50));
    }
}

const SEND: &[&str] =
    &["--adapter", "a", "send", "--ring", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", "-c", "5"];

#[test]
fn ring_receive_and_send_write_a_pcapng_that_tcpdump_reads() {
    let bed = Bed::new("ring", &["pair:a,b"]);
    let dir = std::env::temp_dir().join(format!("rawnicctl-ring-pcap-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("cap.pcapng");
    let recv = bed.spawn(&[
        "--adapter",
        "b",
        "recv",
        "--ring",
        "-c",
        "20",
        "-t",
        "30",
        "--ethertype",
        "0x88b5",
        "-w",
        pcap.to_str().unwrap(),
    ]);
    bed.wait_handles(1, 1);
    let mut rs = [recv];
    send_until_done(&bed, &[SEND, &["00112233445566778899aabbccddeeff"]].concat(), &mut rs);
    let [recv] = rs;
    let o = finish_child(recv);
    assert!(text(&o.stderr).contains("wrote 20 frames"), "{}", text(&o.stderr));
    let o = Command::new("tcpdump").args(["-nn", "-e", "-r"]).arg(&pcap).output().expect("tcpdump");
    assert!(o.status.success(), "tcpdump could not read the pcapng: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let packets: Vec<&str> = out.lines().filter(|l| l.contains("ethertype")).collect();
    assert_eq!(packets.len(), 20, "{out}");
    assert!(packets.iter().all(|l| l.contains("ethertype Unknown (0x88b5)")), "{out}");
    assert!(out.contains("0011 2233 4455 6677 8899 aabb ccdd eeff"), "the payload: {out}");
    let _ = std::fs::remove_dir_all(&dir);
    bed.finish();
}

#[test]
fn recv_ring_prints_what_a_read_prints() {
    let bed = Bed::new("ring", &["pair:a,b"]);
    let common = ["--adapter", "b", "recv", "-c", "4", "-t", "30", "--ethertype", "0x88b5", "--json"];
    let read = bed.spawn(&common);
    let ring = bed.spawn(&[&common[..], &["--ring"]].concat());
    bed.wait_handles(1, 2);
    let mut rs = [read, ring];
    // Sent with SEND_BATCH and a tag, so the records carry one.
    let send = ["--adapter", "a", "send", "--dst", "ff:ff:ff:ff:ff:ff", "--ethertype", "0x88b5", "--vlan", "7:5"];
    send_until_done(&bed, &[&send[..], &["-c", "5", "cafe"]].concat(), &mut rs);
    let [read, ring] = rs;
    let strip = |o: Output| -> Vec<Value> {
        json_lines(&text(&o.stdout))
            .into_iter()
            .map(|mut v| {
                let m = v.as_object_mut().unwrap();
                m.remove("ts_ns");
                m.remove("time");
                v
            })
            .collect()
    };
    let (read, ring) = (strip(finish_child(read)), strip(finish_child(ring)));
    assert_eq!(ring.len(), 4);
    assert_eq!(ring, read);
    assert_eq!(ring[0]["direction"], "in");
    assert_eq!(ring[0]["data"].as_str().map(|d| d.ends_with("cafe")), Some(true), "{}", ring[0]);
    bed.finish();
}

#[test]
fn send_ring_sends_every_frame_and_reports_as_send_does() {
    let bed = Bed::new("ring", &["null"]);
    bed.sim().set_capture(AdapterId(0), true);
    let out = bed.ok(&[
        "send",
        "--ring",
        "--ring-frames",
        "64",
        "--ring-size",
        "16",
        "--dst",
        "02:00:00:00:00:09",
        "--ethertype",
        "0x88b5",
        "-c",
        "1000",
        "0102030405",
    ]);
    assert!(out.starts_with("sent 1000 frames (19000 bytes) on "), "{out}");
    let captured = bed.sim().captured(AdapterId(0));
    assert_eq!(captured.len(), 1000);
    assert!(captured.iter().all(|f| f.wire().len() == 19 && f.wire().ends_with(&[1, 2, 3, 4, 5])));
    let v =
        json_lines(&bed.ok(&["send", "--ring", "--ethertype", "0x88b5", "-c", "30", "--rate", "300", "--json", "00"]));
    assert_eq!((&v[0]["frames"], &v[0]["bytes"]), (&30.into(), &(30 * 15).into()));
    assert!(v[0]["seconds"].as_f64().unwrap() >= 0.09, "paced: {}", v[0]);
    assert_eq!(bed.sim().captured(AdapterId(0)).len(), 1030);
    // A rate too high to pace: every frame is due at once.
    let out = bed.ok(&["send", "--ring", "--ethertype", "0x88b5", "-c", "20", "--rate", "1e300", "00"]);
    assert!(out.starts_with("sent 20 frames"), "{out}");
    assert_eq!(bed.sim().captured(AdapterId(0)).len(), 1050);
    // No NBL to be had for the first kicks (low memory): the frames wait on
    // the tx ring, and go once NBLs can be made again.
    bed.sim().refuse_nbl_allocations(3);
    let out = bed.ok(&["send", "--ring", "--ethertype", "0x88b5", "-c", "50", "00"]);
    assert!(out.starts_with("sent 50 frames"), "{out}");
    assert_eq!(bed.sim().refuse_nbl_allocations(0), 0, "the refusals were met");
    assert_eq!(bed.sim().captured(AdapterId(0)).len(), 1100);
    bed.finish();
}
