//! rawnicctl, the built binary, against the fake driver behind a bridge
//! socket (`rawnic_client::fake`). These check the command line, the
//! output formats and the exit statuses; the driver's own behaviour is
//! checked against the real rawnic.sys in ndisim.
#![cfg(unix)]

use rawnic_client::MacAddr;
use rawnic_client::ether::{Arp, build_frame};
use rawnic_client::fake::{FakeAdapter, FakeDriver, test_frame};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

fn fake() -> FakeDriver {
    FakeDriver::start(vec![FakeAdapter::new("eth-a", MAC_A), FakeAdapter::new("eth-b", MAC_B)]).unwrap()
}

fn cmd(fake: &FakeDriver, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rawnicctl"));
    c.arg("--device").arg(fake.device_path()).args(args).env_remove("RAWNIC_DEVICE");
    c
}

fn run(fake: &FakeDriver, args: &[&str]) -> Output {
    cmd(fake, args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and expects success; returns stdout.
fn ok(fake: &FakeDriver, args: &[&str]) -> String {
    let o = run(fake, args);
    assert!(o.status.success(), "{args:?} failed: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Runs and expects exit status `code`; returns stderr.
fn fails(fake: &FakeDriver, args: &[&str], code: i32) -> String {
    let o = run(fake, args);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}{}", stdout(&o), stderr(&o));
    stderr(&o)
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "never happened: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts rawnicctl and waits until it has a request pending at the fake
/// (a read or an event wait), so that what the test does next reaches it.
/// A `--timeout` keeps a broken test from hanging: the command then fails.
fn spawn_waiting(fake: &FakeDriver, args: &[&str]) -> Child {
    let child =
        cmd(fake, args).args(["--timeout", "20"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    eventually("rawnicctl waits", || fake.pending() > 0);
    child
}

#[test]
fn list_prints_text_and_json() {
    let fake = fake();
    let out = ok(&fake, &["list"]);
    assert!(out.starts_with("0: eth-a  \"fake adapter eth-a\"\n"), "{out}");
    assert!(
        out.contains(
            "   running, link up (1 Gbit/s, full duplex), mtu 1500, mac 02:00:00:00:00:0b, filter none, 0 open handles"
        ),
        "{out}"
    );
    let v = json_lines(&ok(&fake, &["list", "--json"]));
    assert_eq!(v.len(), 1);
    let list = v[0].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["name"], "eth-b");
    assert_eq!(list[1]["mac"], "02:00:00:00:00:0b");
    assert_eq!(list[1]["index"], 1);
    assert_eq!(list[1]["state"], "running");
    assert_eq!(list[1]["xmit_speed"], 1_000_000_000u64);
}

#[test]
fn the_device_comes_from_the_environment_too() {
    let fake = fake();
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl"))
        .arg("version")
        .env("RAWNIC_DEVICE", fake.device_path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "rawnicctl 0.1.0\ndriver 0.1.0, wire format {}, NDIS 6.89, at most 4096 frames per batch\n",
            rawnic_client::rawnic_proto::PROTO_VERSION
        )
    );
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).arg("list").env_remove("RAWNIC_DEVICE").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: no device given: pass --device unix:SOCKET or set RAWNIC_DEVICE"),
        "{}",
        stderr(&o)
    );
    // --device wins over RAWNIC_DEVICE; an empty RAWNIC_DEVICE is no device.
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl"))
        .args(["--device", fake.device_path().as_str(), "version"])
        .env("RAWNIC_DEVICE", "unix:/nonexistent/s")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).arg("list").env("RAWNIC_DEVICE", "").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: no device given"), "{}", stderr(&o));
}

#[test]
fn errors_are_sentences_with_the_right_exit_status() {
    let fake = fake();
    let e = fails(&fake, &["stats"], 2);
    assert_eq!(
        e,
        "error: which adapter? rawnic is bound to 2 adapters: give --adapter NAME or INDEX (see `rawnicctl list`)\n\n\
         Usage: rawnicctl stats [OPTIONS]\n\nFor more information, try '--help'.\n"
    );
    assert_eq!(
        fails(&fake, &["stats", "-a", "wlan0"], 1),
        "rawnicctl: no adapter is named \"wlan0\" (see `rawnicctl list`)\n"
    );
    assert_eq!(
        fails(&fake, &["stats", "-a", "7"], 1),
        "rawnicctl: there is no adapter 7: rawnic is bound to 2 adapters (0 to 1; see `rawnicctl list`)\n"
    );
    let e = fails(&fake, &["send", "-a", "0", "--count", "-3", "--ethertype", "arp"], 2);
    assert_eq!(
        e,
        "error: invalid value '-3' for '--count <N>': it must be a number of frames\n\nFor more information, try '--help'.\n"
    );
    // Did you mean: a mistyped command or option gets a suggestion.
    let e = fails(&fake, &["sned"], 2);
    assert!(
        e.starts_with("error: unrecognized subcommand 'sned'\n\n  tip: a similar subcommand exists: 'send'\n"),
        "{e}"
    );
    let e = fails(&fake, &["recv", "--promiscous"], 2);
    assert!(e.contains("tip: a similar argument exists: '--promiscuous'"), "{e}");
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl"))
        .args(["--device", "unix:/nonexistent/s", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("rawnicctl: cannot connect to the device bridge at /nonexistent/s (no such socket"),
        "{}",
        stderr(&o)
    );
    fake.deny_create(true);
    assert!(fails(&fake, &["list"], 1).starts_with("rawnicctl: opening the device failed: access denied"));
}

#[test]
fn a_list_the_driver_says_is_huge_is_refused_not_allocated() {
    let fake = fake();
    fake.claim_list_needs(u32::MAX);
    let e = fails(&fake, &["list"], 1);
    assert!(e.contains("the driver said the list needs 4294967295 bytes, more than the 16777216"), "{e}");
    // The next list is whole again.
    assert!(ok(&fake, &["list"]).contains("eth-a"));
}

#[test]
fn a_device_path_that_names_no_device_says_what_to_write() {
    let run = |device: Option<&str>, env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rawnicctl"));
        if let Some(d) = device {
            c.args(["--device", d]);
        }
        match env {
            Some(e) => c.env("RAWNIC_DEVICE", e),
            None => c.env_remove("RAWNIC_DEVICE"),
        };
        let o = c.arg("list").output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        stderr(&o)
    };
    let e = run(Some("RawNic"), None);
    assert!(
        e.contains("\"RawNic\" is not a device path") && e.contains("\\\\.\\RawNic") && e.contains("unix:RawNic"),
        "{e}"
    );
    let e = run(Some("\\\\.\\RawNic\\x"), None);
    assert!(e.contains("inside the device") && e.contains("write \\\\.\\RawNic"), "{e}");
    let e = run(None, Some("/tmp/rawnic.sock"));
    assert!(
        e.contains("RAWNIC_DEVICE: \"/tmp/rawnic.sock\" is not a device path") && e.contains("unix:/tmp/rawnic.sock"),
        "{e}"
    );
}

#[test]
fn send_hex_builds_and_repeats_frames() {
    let fake = fake();
    let frame = "ffffffffffff 02000000000a 88b5 68656c6c6f";
    let out = ok(&fake, &["send", "-a", "eth-a", frame]);
    assert!(out.starts_with("sent 1 frame (19 bytes) on eth-a in "), "{out}");
    let sent = fake.sent();
    assert_eq!(sent[0].data, build_frame(MacAddr::BROADCAST, MAC_A, 0x88b5, b"hello"));
    assert_eq!((sent[0].binding_id, sent[0].tci, sent[0].by_write), (1, None, false));

    // The header built from options: the source is the adapter's MAC.
    ok(
        &fake,
        &[
            "send",
            "-a",
            "1",
            "--dst",
            "02:00:00:00:00:99",
            "--ethertype",
            "ipv4",
            "--vlan",
            "5:3",
            "--count",
            "100",
            "--batch",
            "7",
            "00ff",
        ],
    );
    let sent = fake.sent();
    assert_eq!(sent.len(), 101);
    assert!(sent[1..].iter().all(|s| s.data == build_frame(MacAddr([2, 0, 0, 0, 0, 0x99]), MAC_B, 0x0800, &[0, 0xff])));
    assert!(sent[1..].iter().all(|s| s.tci == Some((3 << 13) | 5) && s.binding_id == 2));
    let batches = fake.log().iter().filter(|l| l.code == rawnic_client::rawnic_proto::IOCTL_RAWNIC_SEND_BATCH).count();
    assert_eq!(batches, 1 + 15, "100 frames in batches of 7");

    // WriteFile, paced, from a file, as JSON.
    let dir = std::env::temp_dir().join(format!("rawnicctl-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("frame.bin");
    std::fs::write(&file, build_frame(MAC_B, MAC_A, 0x88b6, &[1, 2, 3])).unwrap();
    let out = ok(
        &fake,
        &["send", "-a", "0", "--file", file.to_str().unwrap(), "--write", "--count", "5", "--rate", "1000", "--json"],
    );
    let v = json_lines(&out);
    assert_eq!(
        (v[0]["frames"].as_u64(), v[0]["bytes"].as_u64(), v[0]["adapter"].as_str()),
        (Some(5), Some(85), Some("eth-a"))
    );
    let sent = fake.sent();
    assert_eq!(sent.len(), 106);
    assert!(sent[101..].iter().all(|s| s.by_write && s.data.len() == 17));
    std::fs::remove_dir_all(&dir).unwrap();

    // Frames the adapter cannot take are refused before anything is sent.
    let e = fails(&fake, &["send", "-a", "0", "--ethertype", "arp", "--file", "/nonexistent/f"], 1);
    assert!(e.starts_with("rawnicctl: cannot read /nonexistent/f: "), "{e}");
    let big = "00".repeat(1515);
    assert_eq!(
        fails(&fake, &["send", "-a", "0", &big], 1),
        "rawnicctl: the frame is 1515 bytes; eth-a takes at most 1514 (an MTU of 1500 and the 14-byte header)\n"
    );
    assert_eq!(fake.sent().len(), 106);
}

#[test]
fn send_reports_what_went_out_before_a_failure() {
    let fake = fake();
    fake.plan_sends(&[3]);
    fake.fail_send(rawnic_client::NtStatus::DEVICE_NOT_READY);
    let e = fails(&fake, &["send", "-a", "0", "--ethertype", "arp", "--count", "10"], 1);
    assert_eq!(
        e,
        "rawnicctl: sending frames failed: the binding is not running (it is paused, restarting or closing) (STATUS_DEVICE_NOT_READY, 0xc00000a3) (after 3 frames had been sent)\n"
    );
    // Across the calls rawnicctl makes at a rate, the count adds up.
    fake.plan_sends(&[1, 1]);
    fake.fail_send(rawnic_client::NtStatus::DEVICE_REMOVED);
    let e = fails(
        &fake,
        &["send", "-a", "0", "--ethertype", "arp", "--count", "10", "--rate", "100000", "--batch", "1"],
        1,
    );
    assert!(e.ends_with("(STATUS_DEVICE_REMOVED, 0xc00002b6) (after 2 frames had been sent)\n"), "{e}");
}

#[test]
fn a_rate_too_high_to_pace_sends_everything_at_once() {
    // 1e300 frames a second: every frame is due at once, and the count of
    // frames due saturates instead of overflowing.
    let fake = fake();
    for args in [&["--batch", "4"][..], &["--write"][..]] {
        let before = fake.sent().len();
        let mut argv = vec!["send", "-a", "0", "--ethertype", "arp", "--count", "12", "--rate", "1e300"];
        argv.extend_from_slice(args);
        let out = ok(&fake, &argv);
        assert!(out.starts_with("sent 12 frames"), "{out}");
        assert_eq!(fake.sent().len(), before + 12);
    }
}

#[test]
fn recv_prints_frames_as_text_and_json() {
    let fake = fake();
    let child = spawn_waiting(&fake, &["recv", "-a", "eth-b", "--count", "2", "--hex"]);
    fake.inject(2, &test_frame(MAC_A, 0x88b5, b"one"), None);
    let arp = Arp::request(MAC_A, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)).to_frame(MAC_A);
    fake.inject(2, &arp, Some(7));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("Z  in   17 bytes  02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff ethertype 0x88b5"), "{out}");
    assert!(lines[1].starts_with("  0000  ff ff ff ff ff ff 02 00  00 00 00 0a 88 b5 6f 6e"), "{out}");
    assert!(
        out.contains(
            "  60 bytes  02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff vlan 7 prio 0 ARP who-has 10.0.0.1 tell 10.0.0.2"
        ),
        "{out}"
    );

    let child = spawn_waiting(
        &fake,
        &["recv", "-a", "0", "--count", "1", "--json", "--snaplen", "16", "--ethertype", "0x88b5"],
    );
    fake.inject(1, &test_frame(MAC_B, 0x0800, &[0; 46]), None); // not this EtherType
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[9; 46]), Some(0x2003));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1);
    let f = &v[0];
    assert_eq!(
        (f["caplen"].as_u64(), f["origlen"].as_u64(), f["truncated"].as_bool()),
        (Some(16), Some(60), Some(true))
    );
    assert_eq!((f["vlan"].as_u64(), f["priority"].as_u64(), f["ethertype"].as_u64()), (Some(3), Some(1), Some(0x88b5)));
    assert_eq!(f["src"], "02:00:00:00:00:0b");
    assert_eq!(f["data"], "ffffffffffff02000000000b88b50909");
    assert!(f["time"].as_str().unwrap().ends_with('Z'));
}

/// `recv --program`: tcpdump's `-ddd` form of `arp` from a file; only ARP
/// arrives, cut by the program's return value where it is less.
#[test]
fn recv_runs_a_capture_program_from_a_file() {
    let fake = fake();
    let dir = std::env::temp_dir().join(format!("rawnicctl-cli-bpf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("arp.ddd");
    // `tcpdump -ddd arp`, returning 20 bytes instead of 262144.
    std::fs::write(&prog, "4\n40 0 0 12\n21 0 1 2054\n6 0 0 20\n6 0 0 0\n").unwrap();
    let child =
        spawn_waiting(&fake, &["recv", "-a", "0", "--count", "1", "--json", "--program", prog.to_str().unwrap()]);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[0; 46]), None);
    fake.inject(1, &test_frame(MAC_B, 0x0806, &[7; 46]), None);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0]["ethertype"].as_u64(), v[0]["caplen"].as_u64(), v[0]["origlen"].as_u64()),
        (Some(0x0806), Some(20), Some(60))
    );
    // `tcpdump -ddd 'vlan 5'`: the program sees a tag the NIC stripped
    // back in place, as it was on the wire.
    std::fs::write(
        &prog,
        "9\n40 0 0 12\n21 2 0 33024\n21 1 0 34984\n21 0 4 37120\n40 0 0 14\n84 0 0 4095\n21 0 1 5\n6 0 0 65535\n6 0 0 0\n",
    )
    .unwrap();
    let child =
        spawn_waiting(&fake, &["recv", "-a", "0", "--count", "1", "--json", "--program", prog.to_str().unwrap()]);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[1; 46]), None);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[2; 46]), Some(6));
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[3; 46]), Some(5));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1);
    assert_eq!((v[0]["vlan"].as_u64(), v[0]["caplen"].as_u64()), (Some(5), Some(60)));
    // Text that is no program: a sentence, and nothing opened.
    std::fs::write(&prog, "4\n40 0 0\n").unwrap();
    let o = run(&fake, &["recv", "-a", "0", "-t", "1", "--program", prog.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("instruction 0: expected 4 numbers"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `recv --expr`: a filter expression compiled by rawnicctl; the driver
/// runs the program. A tag the NIC stripped is back in place for `vlan`.
/// An expression that does not compile is one sentence, exit status 1,
/// and no device opened.
#[test]
fn recv_runs_a_filter_expression() {
    let fake = fake();
    let child = spawn_waiting(&fake, &["recv", "-a", "0", "--count", "1", "--json", "--expr", "arp and ether[14] = 7"]);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[7; 46]), None);
    fake.inject(1, &test_frame(MAC_B, 0x0806, &[6; 46]), None);
    fake.inject(1, &test_frame(MAC_B, 0x0806, &[7; 46]), None);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1);
    assert_eq!((v[0]["ethertype"].as_u64(), v[0]["caplen"].as_u64()), (Some(0x0806), Some(60)));
    assert!(v[0]["data"].as_str().unwrap().ends_with("0707"), "{}", v[0]["data"]);
    let child =
        spawn_waiting(&fake, &["recv", "-a", "0", "--count", "1", "--json", "--expr", "vlan 5 and ether proto 0x88b5"]);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[1; 46]), None);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[2; 46]), Some(6));
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[3; 46]), Some(5));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["vlan"].as_u64(), Some(5));
    // A bad expression: the sentence, before any device is opened (this
    // one does not exist).
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl"))
        .args(["--device", "unix:/nonexistent/rawnic.sock", "recv", "-a", "0", "--expr", "ip6 protochain 6"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "rawnicctl: the filter expression: 'protochain' is not supported: it compiles to a loop (a jump back), which the driver refuses (at character 5 of the filter)\n"
    );
    // With --program: a usage error.
    let o = run(&fake, &["recv", "-a", "0", "--expr", "arp", "--program", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

/// `compile` prints the program as `tcpdump -ddd`, which `recv --program`
/// reads back; the words may be separate arguments.
#[test]
fn compile_prints_the_program() {
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).args(["compile", "arp"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "4\n40 0 0 12\n21 0 1 2054\n6 0 0 262144\n6 0 0 0\n");
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).args(["compile", "udp", "port", "53"]).output().unwrap();
    let want = rawnic_client::compile_filter("udp port 53").unwrap();
    assert_eq!(rawnic_client::parse_program(&stdout(&o)).unwrap(), want);
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).args(["--json", "compile", "arp"]).output().unwrap();
    let v = json_lines(&stdout(&o));
    assert_eq!(v[0]["instructions"][1], serde_json::json!([21, 0, 1, 2054]));
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).args(["compile", "host", "example.com"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'example.com' is a name"), "{}", stderr(&o));
}

#[test]
fn a_reader_that_goes_away_ends_recv_quietly() {
    let fake = fake();
    let mut child = spawn_waiting(&fake, &["recv", "-a", "0"]);
    drop(child.stdout.take());
    fake.inject(1, &test_frame(MAC_B, 0x88b5, b"x"), None);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn recv_without_enough_frames_in_time_fails() {
    let fake = fake();
    let e = fails(&fake, &["recv", "-a", "0", "--count", "3", "--timeout", "50ms"], 1);
    assert_eq!(e, "rawnicctl: recv timed out after 50 ms with 0 of 3 frames\n");
    // Without --count, the timeout is how long to listen.
    let o = run(&fake, &["recv", "-a", "0", "--timeout", "0.05"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn recv_writes_pcapng_that_tcpdump_reads() {
    let fake = fake();
    let dir = std::env::temp_dir().join(format!("rawnicctl-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("capture.pcapng");
    let child =
        spawn_waiting(&fake, &["recv", "-a", "0", "--count", "4", "--pcapng", path.to_str().unwrap(), "--json"]);
    let arp = Arp::request(MAC_B, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)).to_frame(MAC_B);
    fake.inject(1, &arp, None);
    fake.inject(1, &arp, Some(42));
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[0xab; 100]), None);
    // A tag of TCI 0 inline: tagged, and written as it is (not tagged again).
    fake.inject(1, &rawnic_client::ether::insert_vlan_tag(&arp, 0), None);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!((v[0]["frames"].as_u64(), v[0]["bytes"].as_u64()), (Some(4), Some(60 + 60 + 114 + 64)));
    let t = Command::new("tcpdump").args(["-n", "-e", "-r"]).arg(&path).output();
    let t = match t {
        Ok(t) => t,
        Err(e) => panic!("tcpdump is needed to check pcapng files (`cargo make setup` installs it): {e}"),
    };
    assert!(t.status.success(), "tcpdump: {}", stderr(&t));
    let text = stdout(&t);
    // (tcpdump dumps unknown EtherTypes' payloads in indented lines.)
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(char::is_whitespace)).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].contains("02:00:00:00:00:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60"), "{text}");
    assert!(lines[0].contains("Request who-has 10.0.0.1 tell 10.0.0.2"), "{text}");
    // The tag the NIC stripped is back in the file.
    assert!(lines[1].contains("ethertype 802.1Q (0x8100), length 64: vlan 42"), "{text}");
    assert!(lines[1].contains("Request who-has 10.0.0.1 tell 10.0.0.2"), "{text}");
    assert!(lines[2].contains("ethertype Unknown (0x88b5), length 114"), "{text}");
    assert!(lines[3].contains("ethertype 802.1Q (0x8100), length 64: vlan 0, p 0, ethertype ARP"), "{text}");
    // A snap length and a stripped tag: the frame keeps its tag and the
    // file stays readable.
    let cut = dir.join("cut.pcapng");
    let child =
        spawn_waiting(&fake, &["recv", "-a", "0", "--count", "1", "--snaplen", "20", "-w", cut.to_str().unwrap()]);
    fake.inject(1, &arp, Some(42));
    assert!(child.wait_with_output().unwrap().status.success());
    let t = Command::new("tcpdump").args(["-n", "-e", "-r"]).arg(&cut).output().unwrap();
    assert!(t.status.success(), "tcpdump: {}", stderr(&t));
    assert!(stdout(&t).contains("ethertype 802.1Q (0x8100), length 64: vlan 42"), "{}", stdout(&t));
    // Nanosecond timestamps: tcpdump prints them with --nano.
    let t = Command::new("tcpdump").args(["-n", "--nano", "-r"]).arg(&path).output().unwrap();
    assert!(
        stdout(&t).lines().next().unwrap().split_whitespace().next().unwrap().split('.').nth(1).unwrap().len() == 9
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn oid_get_set_and_names() {
    let fake = fake();
    assert_eq!(
        ok(&fake, &["oid", "get", "OID_802_3_CURRENT_ADDRESS", "-a", "0"]),
        "OID_802_3_CURRENT_ADDRESS (0x01010102): 02:00:00:00:00:0a\n"
    );
    assert_eq!(ok(&fake, &["oid", "get", "gen_link_speed", "-a", "0"]), "OID_GEN_LINK_SPEED (0x00010107): 1 Gbit/s\n");
    assert_eq!(
        ok(&fake, &["oid", "get", "0x00010107", "-a", "0", "--raw"]),
        "OID_GEN_LINK_SPEED (0x00010107): 80969800\n"
    );
    let v = json_lines(&ok(&fake, &["oid", "get", "OID_GEN_MAXIMUM_FRAME_SIZE", "-a", "0", "--json"]));
    assert_eq!(
        (v[0]["value"].as_str(), v[0]["data"].as_str(), v[0]["bytes"].as_u64()),
        (Some("1500"), Some("dc050000"), Some(4))
    );
    assert_eq!(
        ok(&fake, &["oid", "set", "OID_GEN_CURRENT_LOOKAHEAD", "256", "-a", "0"]),
        "set OID_GEN_CURRENT_LOOKAHEAD (0x0001010f): the adapter took 4 of 4 bytes\n"
    );
    assert_eq!(
        ok(&fake, &["oid", "get", "OID_GEN_CURRENT_LOOKAHEAD", "-a", "0"]),
        "OID_GEN_CURRENT_LOOKAHEAD (0x0001010f): 256\n"
    );
    let e = fails(&fake, &["oid", "set", "OID_802_3_CURRENT_ADDRESS", "02:00:00:00:00:01", "-a", "0"], 1);
    assert!(e.starts_with("rawnicctl: setting an OID failed: access denied: only SYSTEM and Administrators may open rawnic, and OID sets are limited to an allow-list"), "{e}");
    let e = fails(&fake, &["oid", "get", "0x00020106", "-a", "0"], 1);
    assert_eq!(
        e,
        "rawnicctl: querying OID_GEN_STATISTICS (0x00020106) failed at the adapter: the adapter does not support this OID (NDIS_STATUS_INVALID_OID, 0xc0010017)\n"
    );
    let e = fails(&fake, &["oid", "get", "OID_GEN_VENDOR_DESCRIPTION", "-a", "0", "--len", "4"], 1);
    assert!(e.ends_with("the data buffer has the wrong length for this OID (NDIS_STATUS_BUFFER_TOO_SHORT, 0xc0010016) (it needs 19 bytes)\n"), "{e}");
    // `oid names` needs no device.
    let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl"))
        .args(["oid", "names"])
        .env_remove("RAWNIC_DEVICE")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("0x00010208  OID_GEN_LINK_PARAMETERS  (settable)\n"));
}

#[test]
fn stats_show_both_sets_of_counters() {
    let fake = fake();
    ok(&fake, &["send", "-a", "0", "--ethertype", "arp", "--count", "4", "00"]);
    let v = json_lines(&ok(&fake, &["stats", "-a", "0", "--json"]));
    assert_eq!(v[0]["binding"]["tx_frames"], 4);
    assert_eq!(v[0]["binding"]["tx_bytes"], 60);
    assert_eq!(v[0]["handle"]["tx_frames"], 0);
    assert_eq!(v[0]["adapter"], "eth-a");
    let out = ok(&fake, &["stats", "-a", "0"]);
    assert!(out.starts_with("eth-a: 0 frames (0 bytes) queued on this handle\n"), "{out}");
    assert!(out.contains("\n  tx_frames                           4                    0\n"), "{out}");
}

#[test]
fn watch_prints_events() {
    let fake = fake();
    let child = spawn_waiting(&fake, &["watch", "--count", "2", "--json"]);
    fake.raise_event(rawnic_client::rawnic_proto::event::LINK_DOWN, 2, 0, 0);
    fake.raise_event(rawnic_client::rawnic_proto::event::LINK_UP, 2, 10_000_000_000, 0);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0]["kind"].as_str(), v[0]["adapter"].as_str(), v[0]["seq"].as_u64()),
        (Some("link-down"), Some("eth-b"), Some(1))
    );
    assert_eq!((v[1]["kind"].as_str(), v[1]["speed"].as_u64()), (Some("link-up"), Some(10_000_000_000)));

    // With --adapter, other adapters' events are skipped.
    let child = spawn_waiting(&fake, &["watch", "-a", "eth-a", "--count", "1"]);
    fake.raise_event(rawnic_client::rawnic_proto::event::PAUSED, 2, 0, 0);
    fake.raise_event(rawnic_client::rawnic_proto::event::RESTARTED, 1, 0, 9000);
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("  restarted  binding 1 \"eth-a\", mtu 9000  seq "), "{out}");
    assert_eq!(
        fails(&fake, &["watch", "--count", "1", "--timeout", "10ms"], 1),
        "rawnicctl: watch timed out after 10 ms with 0 of 1 events\n"
    );
}

#[test]
fn arping_times_the_reply() {
    let fake = fake();
    let them = MacAddr([2, 0, 0, 0, 0, 0x77]);
    fake.answer_arp(1, Ipv4Addr::new(10, 0, 0, 1), them);
    let out = ok(&fake, &["arping", "10.0.0.1", "--source", "10.0.0.2", "-a", "0", "--count", "2", "--interval", "0"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ARPING 10.0.0.1 from 10.0.0.2 02:00:00:00:00:0a on eth-a");
    assert!(lines[1].starts_with("reply from 10.0.0.1 [02:00:00:00:00:77]  seq=0  time="), "{out}");
    assert!(lines[2].starts_with("reply from 10.0.0.1 [02:00:00:00:00:77]  seq=1  time="), "{out}");
    assert!(lines[3].starts_with("2 requests sent, 2 replies received, round trip min/avg/max "), "{out}");
    // What went out is an ARP request from the adapter's MAC.
    let req = Arp::from_frame(&fake.sent()[0].data).unwrap();
    assert_eq!(req, Arp::request(MAC_A, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)));
    // Over a VLAN, as JSON.
    let v = json_lines(&ok(
        &fake,
        &["arping", "10.0.0.1", "--source", "10.0.0.2", "-a", "0", "-c", "1", "--vlan", "9", "--json"],
    ));
    assert_eq!((v[0]["mac"].as_str(), v[0]["seq"].as_u64()), (Some("02:00:00:00:00:77"), Some(0)));
    assert!(v[0]["rtt_ms"].as_f64().is_some());
    assert_eq!(fake.sent().last().unwrap().tci, Some(9));
    // Nobody answers for 10.0.0.9.
    let o = run(&fake, &["arping", "10.0.0.9", "--source", "10.0.0.2", "-a", "0", "-c", "1", "-t", "20ms"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no reply from 10.0.0.9  seq=0  (waited 20 ms)"), "{}", stdout(&o));
    assert_eq!(stderr(&o), "rawnicctl: no reply from 10.0.0.9 to 1 request\n");
}

#[test]
fn wait_reports_the_bindings() {
    let fake = fake();
    assert_eq!(ok(&fake, &["wait"]), "binds are complete: 2 bindings\n");
    fake.hold_binds();
    let e = fails(&fake, &["wait", "--timeout", "10ms"], 1);
    assert_eq!(e, "rawnicctl: waiting for NDIS to finish binding did not finish within 10 ms and was cancelled\n");
}

#[test]
fn help_and_version_go_to_stdout_with_exit_status_0() {
    let bare = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_rawnicctl")).args(args).output().unwrap();
    let o = bare(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let help = stdout(&o);
    assert!(
        help.starts_with("Raw Ethernet access through the rawnic driver\n\nUsage: rawnicctl [OPTIONS] [COMMAND]"),
        "{help}"
    );
    assert!(help.contains("Exit status: 0 success, 1 failure, 2 bad arguments."), "{help}");
    assert_eq!(stdout(&bare(&["help"])), help);
    let o = bare(&["help", "list"]);
    assert!(o.status.success());
    assert!(
        stdout(&o)
            .contains("JSON output (--json), one value per line:\n  one array with an object per adapter:\n    index ")
    );
    let o = bare(&["--version"]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "rawnicctl 0.1.0\n".into()));
}

#[test]
fn completions_for_each_shell() {
    let script = |shell: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_rawnicctl")).args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        stdout(&o)
    };
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let s = script(shell);
        for word in ["rawnicctl", "selftest", "arping", "local-sends", "adapter"] {
            assert!(s.contains(word), "the {shell} script lacks {word}");
        }
    }
    // bash reads the script without an error.
    let dir = std::env::temp_dir().join(format!("rawnicctl-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rawnicctl.bash");
    std::fs::write(&file, script("bash")).unwrap();
    let o = Command::new("bash").arg("-n").arg(&file).output().expect("bash");
    assert!(o.status.success(), "bash -n: {}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        fails(&fake(), &["completions", "tcsh"], 2).lines().next(),
        Some("error: invalid value 'tcsh' for '<SHELL>'")
    );
}

/// The fake has no rings: `--ring` says so in a sentence, exit status 1,
/// and nothing is sent or printed.
#[cfg(target_os = "linux")]
#[test]
fn ring_commands_explain_a_driver_without_rings() {
    let fake = fake();
    for args in [
        &["--adapter", "eth-a", "recv", "--ring", "-t", "1"][..],
        &["--adapter", "eth-a", "send", "--ring", "--ethertype", "0x88b5", "00"][..],
    ] {
        let e = fails(&fake, args, 1);
        assert_eq!(
            e,
            "rawnicctl: --ring: this driver has no rings (attaching the rings failed: not supported (STATUS_NOT_SUPPORTED, 0xc00000bb))\n",
            "{args:?}"
        );
    }
    assert!(fake.sent().is_empty());
}
