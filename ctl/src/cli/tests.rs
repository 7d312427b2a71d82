//! The command line: what each command takes, and what each mistake says.

use super::values::Hex;
use super::*;
use rawnic_client::ether::{MacAddr, Tci};
use rawnic_client::oid;
use rawnic_client::rawnic_proto;
use std::net::Ipv4Addr;
use std::time::Duration;

fn parsed(args: &[&str]) -> Result<Invocation, clap::Error> {
    parse(std::iter::once("rawnicctl").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Invocation {
    parsed(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn cmd(args: &[&str]) -> Command {
    ok(args).command
}

/// The kind of a refusal and its first line, without "error: ".
fn bad(args: &[&str]) -> (ErrorKind, String) {
    let e = parsed(args).expect_err(&format!("{args:?} should be refused"));
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    (e.kind(), first.strip_prefix("error: ").unwrap_or(first).to_string())
}

/// The first line of a refusal, without "error: ".
fn said(args: &[&str]) -> String {
    bad(args).1
}

#[test]
fn the_clap_definitions_are_consistent() {
    command().debug_assert();
}

#[test]
fn help_and_version() {
    assert_eq!(cmd(&[]), Command::Help);
    for args in [&["help"][..], &["--help"], &["-h"], &["help", "send"], &["send", "--help"], &["oid", "set", "-h"]] {
        assert_eq!(bad(args).0, ErrorKind::DisplayHelp, "{args:?}");
    }
    // Help wins over anything else wrong with the command.
    assert_eq!(bad(&["recv", "-h", "--count", "0"]).0, ErrorKind::DisplayHelp);
    for args in [&["--version"][..], &["-V"]] {
        let e = parsed(args).unwrap_err();
        assert_eq!((e.kind(), e.to_string()), (ErrorKind::DisplayVersion, "rawnicctl 0.1.0\n".into()));
    }
    assert_eq!(bad(&["help", "nope"]), (ErrorKind::InvalidSubcommand, "unrecognized subcommand 'nope'".into()));
}

#[test]
fn every_command_has_help_with_its_options_and_json_fields() {
    let mut root = command();
    root.build();
    let main = root.render_long_help().to_string();
    for sub in root.get_subcommands() {
        let about = sub.get_about().unwrap_or_else(|| panic!("{} has no summary", sub.get_name()));
        assert!(main.contains(&about.to_string()), "{}", sub.get_name());
    }
    let mut leaves: Vec<clap::Command> = Vec::new();
    for sub in root.get_subcommands() {
        match sub.get_name() {
            "help" => {}
            "oid" => leaves.extend(sub.get_subcommands().filter(|s| s.get_name() != "help").cloned()),
            _ => leaves.push(sub.clone()),
        }
    }
    for mut c in leaves {
        let name = c.get_name().to_string();
        let help = c.render_long_help().to_string();
        for a in c.get_arguments() {
            if let Some(long) = a.get_long() {
                assert!(help.contains(&format!("--{long}")), "{name} help lacks --{long}");
            }
        }
        if name != "completions" {
            assert!(help.contains("JSON output (--json), one value per line:"), "{name} says nothing of its JSON");
        }
    }
    let send = root.find_subcommand_mut("send").unwrap().render_long_help().to_string();
    assert!(send.contains("    seconds            how long it took"), "{send}");
}

#[test]
fn global_options_go_anywhere() {
    let i = ok(&["--device", "unix:/tmp/s", "list", "--json", "-a", "0", "--progress"]);
    assert_eq!(
        i.global,
        Global {
            device: Some("unix:/tmp/s".into()),
            device_from_env: false,
            adapter: Some("0".into()),
            json: true,
            progress: true
        }
    );
    assert_eq!(i.command, Command::List);
    let i = ok(&["list", "--device=unix:/x", "--adapter=eth0"]);
    assert_eq!((i.global.device.as_deref(), i.global.adapter.as_deref()), (Some("unix:/x"), Some("eth0")));
    assert_eq!(ok(&["-d", "\\\\.\\RawNic", "version"]).global.device.as_deref(), Some("\\\\.\\RawNic"));
    let i = ok(&["oid", "get", "GEN_LINK_SPEED", "--json", "-a", "eth1"]);
    assert_eq!((i.global.json, i.global.adapter.as_deref()), (true, Some("eth1")));
}

#[test]
fn general_mistakes() {
    assert_eq!(bad(&["frobnicate"]), (ErrorKind::InvalidSubcommand, "unrecognized subcommand 'frobnicate'".into()));
    assert_eq!(bad(&["--frob"]), (ErrorKind::UnknownArgument, "unexpected argument '--frob' found".into()));
    assert_eq!(bad(&["list", "--count", "3"]).1, "unexpected argument '--count' found");
    assert_eq!(bad(&["list", "extra"]).1, "unexpected argument 'extra' found");
    assert_eq!(
        bad(&["list", "--device"]),
        (ErrorKind::InvalidValue, "a value is required for '--device <PATH|unix:SOCKET>' but none was supplied".into())
    );
    assert_eq!(bad(&["list", "--json=yes"]).1, "unexpected value 'yes' for '--json' found; no more were expected");
    assert_eq!(bad(&["--device", "", "list"]).1, "--device needs a path, not an empty string");
    assert_eq!(
        said(&["list", "-a", ""]),
        "invalid value '' for '--adapter <NAME|INDEX>': it must be an adapter's name or its index in `rawnicctl list`"
    );
    // Did you mean: commands and options.
    let e = parsed(&["sned"]).unwrap_err().to_string();
    assert!(e.contains("tip: a similar subcommand exists: 'send'"), "{e}");
    let e = parsed(&["recv", "--cuont", "3"]).unwrap_err().to_string();
    assert!(e.contains("tip: a similar argument exists: '--count'"), "{e}");
    // A mistake found after clap: the sentence, the command's usage, the hint.
    let e = parsed(&["send"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    assert_eq!(
        e.to_string(),
        "error: nothing to send: give the frame in hex or with --file, or build one with --dst, --src or --ethertype\n\n\
         Usage: rawnicctl send [OPTIONS] [HEX]...\n\nFor more information, try '--help'.\n"
    );
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn list_version_stats_wait() {
    assert_eq!(cmd(&["list"]), Command::List);
    assert_eq!(cmd(&["version"]), Command::Version);
    assert_eq!(cmd(&["stats", "-a", "1"]), Command::Stats);
    assert_eq!(cmd(&["wait"]), Command::Wait(WaitArgs { timeout: None }));
    assert_eq!(cmd(&["wait", "-t", "1.5"]), Command::Wait(WaitArgs { timeout: Some(Duration::from_millis(1500)) }));
    assert_eq!(
        cmd(&["wait", "--timeout", "250ms"]),
        Command::Wait(WaitArgs { timeout: Some(Duration::from_millis(250)) })
    );
    assert_eq!(cmd(&["wait", "--timeout=2m"]), Command::Wait(WaitArgs { timeout: Some(Duration::from_secs(120)) }));
    assert_eq!(
        bad(&["wait", "--timeout", "soon"]),
        (
            ErrorKind::ValueValidation,
            "invalid value 'soon' for '--timeout <SECS>': it must be a time in seconds (like 1.5, 500ms or 2m)".into()
        )
    );
    assert_eq!(
        said(&["wait", "--timeout", "-1"]),
        "invalid value '-1' for '--timeout <SECS>': it must be a time in seconds (like 1.5, 500ms or 2m)"
    );
    assert_eq!(said(&["stats", "now"]), "unexpected argument 'now' found");
}

#[test]
fn completions() {
    assert_eq!(cmd(&["completions", "bash"]), Command::Completions(Shell::Bash));
    assert_eq!(cmd(&["completions", "powershell"]), Command::Completions(Shell::PowerShell));
    assert_eq!(cmd(&["completions", "zsh"]), Command::Completions(Shell::Zsh));
    assert_eq!(cmd(&["completions", "fish"]), Command::Completions(Shell::Fish));
    let (kind, first) = bad(&["completions", "tcsh"]);
    assert_eq!((kind, first.as_str()), (ErrorKind::InvalidValue, "invalid value 'tcsh' for '<SHELL>'"));
}

fn send(args: &[&str]) -> SendArgs {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    match cmd(&all) {
        Command::Send(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn send_args() {
    let s = send(&["ffffffffffff", "020000000001", "88b5", "--count", "10", "--rate", "100", "--vlan", "5:3"]);
    assert_eq!(s.data, Data::Hex([[0xff; 6].as_slice(), &[2, 0, 0, 0, 0, 1], &[0x88, 0xb5]].concat()));
    assert_eq!(
        (s.count, s.rate, s.vlan, s.header, s.write),
        (10, Some(100.0), Some(Tci::new(5, 3).unwrap()), None, false)
    );
    let s = send(&["--file", "f.bin", "--dst", "02:00:00:00:00:02", "-c", "3"]);
    assert_eq!(s.data, Data::File("f.bin".into()));
    assert_eq!(s.header, Some(Header { dst: "02:00:00:00:00:02".parse().unwrap(), src: None, ethertype: 0x88b5 }));
    let s = send(&["--ethertype", "arp", "--src", "02:00:00:00:00:09", "--batch", "64"]);
    assert_eq!(s.data, Data::None);
    assert_eq!(s.header.unwrap().ethertype, 0x0806);
    assert_eq!(s.header.unwrap().dst, MacAddr::BROADCAST);
    assert_eq!((s.batch, s.count), (Some(64), 1));
    assert!(send(&["ff:ff:ff:ff:ff:ff:02:00:00:00:00:01:08:00", "--write"]).write);
    // `--` ends the options.
    assert_eq!(send(&["--ethertype", "arp", "--", "00"]).data, Data::Hex(vec![0]));
}

#[test]
fn send_mistakes() {
    assert_eq!(
        said(&["send", "abc"]),
        "invalid value 'abc' for '[HEX]...': 3 hex digits is an odd number: every byte takes two"
    );
    assert_eq!(said(&["send", "0g"]), "invalid value '0g' for '[HEX]...': 'g' is not a hex digit");
    assert_eq!(
        bad(&["send", "0102"]),
        (
            ErrorKind::ValueValidation,
            "the frame is 2 bytes; an Ethernet frame has at least 14 (or build the header with --dst, --src or --ethertype)"
                .into()
        )
    );
    assert_eq!(
        bad(&["send", "00", "--file", "x"]),
        (ErrorKind::ArgumentConflict, "the argument '[HEX]...' cannot be used with '--file <PATH>'".into())
    );
    assert_eq!(
        said(&["send", "--dst", "nope"]),
        "invalid value 'nope' for '--dst <MAC>': it must be a MAC address like 02:00:00:00:00:01"
    );
    assert!(
        said(&["send", "--ethertype", "0x1ffff"])
            .starts_with("invalid value '0x1ffff' for '--ethertype <TYPE>': it must be an EtherType")
    );
    let e = |args: &[&str]| {
        let mut all = vec!["send", "--ethertype", "arp"];
        all.extend_from_slice(args);
        said(&all)
    };
    assert_eq!(e(&["--count", "0"]), "invalid value '0' for '--count <N>': it must be at least 1");
    assert_eq!(e(&["--count", "many"]), "invalid value 'many' for '--count <N>': it must be a number of frames");
    assert_eq!(e(&["--count", "-3"]), "invalid value '-3' for '--count <N>': it must be a number of frames");
    assert_eq!(
        e(&["--rate", "0"]),
        "invalid value '0' for '--rate <PPS>': it must be a number of frames per second, more than 0"
    );
    assert_eq!(
        e(&["--vlan", "4095"]),
        "invalid value '4095' for '--vlan <ID[:PRIO]>': VLAN ID 4095 is out of range: it must be 1 to 4094"
    );
    assert_eq!(
        e(&["--vlan", "1:9"]),
        "invalid value '1:9' for '--vlan <ID[:PRIO]>': priority 9 is out of range: it must be 0 to 7"
    );
    assert_eq!(e(&["--batch", "5000"]), "invalid value '5000' for '--batch <N>': it must be 1 to 4096");
    assert_eq!(e(&["--write", "--vlan", "3"]), "the argument '--write' cannot be used with '--vlan <ID[:PRIO]>'");
    assert_eq!(e(&["--write", "--batch", "3"]), "the argument '--write' cannot be used with '--batch <N>'");
    assert_eq!(e(&["--promiscuous"]), "unexpected argument '--promiscuous' found");
}

fn recv(args: &[&str]) -> RecvArgs {
    let mut all = vec!["recv"];
    all.extend_from_slice(args);
    match cmd(&all) {
        Command::Recv(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn recv_args() {
    assert_eq!(
        recv(&[]),
        RecvArgs {
            count: None,
            timeout: None,
            ethertypes: vec![],
            filter: rawnic_proto::filter::DEFAULT,
            snaplen: 0,
            program: None,
            expr: None,
            queue_frames: 0,
            queue_bytes: 0,
            local_sends: rawnic_proto::LocalSends::Others,
            strict_filter: false,
            pcapng: None,
            hex: false,
            buffer: rawnic_client::DEFAULT_READ_SIZE,
            ring: None,
        }
    );
    let r = recv(&[
        "-c",
        "5",
        "-t",
        "2",
        "--ethertype",
        "arp,0x88b5",
        "--ethertype",
        "ipv6",
        "--promiscuous",
        "--snaplen",
        "64",
        "--queue-frames",
        "100",
        "--queue-bytes",
        "131072",
        "-w",
        "out.pcapng",
        "--buffer",
        "4096",
        "--strict-filter",
        "--program",
        "arp.bpf",
    ]);
    assert_eq!((r.count, r.timeout), (Some(5), Some(Duration::from_secs(2))));
    assert_eq!(r.program.as_deref(), Some("arp.bpf"));
    assert_eq!(r.ethertypes, vec![0x0806, 0x88b5, 0x86dd]);
    assert_eq!(r.filter, rawnic_proto::filter::DEFAULT | rawnic_proto::filter::PROMISCUOUS);
    assert_eq!((r.snaplen, r.queue_frames, r.queue_bytes, r.buffer), (64, 100, 131072, 4096));
    assert_eq!((r.pcapng.as_deref(), r.strict_filter), (Some("out.pcapng"), true));
    let r = recv(&["--filter", "broadcast,directed", "--hex"]);
    assert_eq!((r.filter, r.hex), (rawnic_proto::filter::BROADCAST | rawnic_proto::filter::DIRECTED, true));
    for (v, want) in [
        ("all", rawnic_proto::LocalSends::All),
        ("none", rawnic_proto::LocalSends::None),
        ("others", rawnic_proto::LocalSends::Others),
    ] {
        assert_eq!(recv(&["--local-sends", v]).local_sends, want);
    }
    // A lone `-` is a value: stdout.
    assert_eq!(recv(&["--pcapng", "-"]).pcapng.as_deref(), Some("-"));
}

#[test]
fn ring_args() {
    use rawnic_client::ring::RingConfig;
    assert_eq!(recv(&["--ring"]).ring, Some(RingConfig::default()));
    assert_eq!(send(&["--ethertype", "arp", "--ring"]).ring, Some(RingConfig::default()));
    assert_eq!(send(&["--ethertype", "arp"]).ring, None);
    let r = recv(&["--ring", "--ring-frames", "64", "--ring-size", "32", "--frame-size", "4096"]).ring.unwrap();
    assert_eq!(r, RingConfig { frame_size: 4096, frame_count: 64, fill: 32, rx: 32, tx: 32, completion: 32 });
    let e = |args: &[&str]| said(&[&["recv"], args].concat());
    assert_eq!(
        e(&["--ring-size", "48", "--ring"]),
        "invalid value '48' for '--ring-size <N>': it must be a power of two from 8 to 32768"
    );
    assert_eq!(
        e(&["--ring", "--frame-size", "1500"]),
        "invalid value '1500' for '--frame-size <BYTES>': it must be 2048 or 4096"
    );
    assert_eq!(
        e(&["--ring", "--ring-frames", "0"]),
        "invalid value '0' for '--ring-frames <N>': it must be 1 to 32768"
    );
    assert!(
        e(&["--ring-frames", "64"]).contains("the following required arguments were not provided"),
        "{}",
        e(&["--ring-frames", "64"])
    );
    assert_eq!(e(&["--ring", "--buffer", "4096"]), "the argument '--ring' cannot be used with '--buffer <BYTES>'");
    // A UMEM larger than the driver takes.
    assert_eq!(
        e(&["--ring", "--ring-frames", "32768", "--frame-size", "4096"]),
        "32768 frames of 4096 bytes and their rings need more than the 64 MiB a UMEM may have"
    );
    let s = |args: &[&str]| said(&[&["send", "--ethertype", "arp"], args].concat());
    assert_eq!(s(&["--ring", "--write"]), "the argument '--ring' cannot be used with '--write'");
    assert_eq!(s(&["--ring", "--vlan", "3"]), "the argument '--ring' cannot be used with '--vlan <ID[:PRIO]>'");
    assert_eq!(s(&["--ring", "--batch", "3"]), "the argument '--ring' cannot be used with '--batch <N>'");
}

#[test]
fn recv_mistakes() {
    let e = |args: &[&str]| {
        let mut all = vec!["recv"];
        all.extend_from_slice(args);
        said(&all)
    };
    assert!(
        e(&["--ethertype", "arp,bogus"])
            .starts_with("invalid value 'bogus' for '--ethertype <TYPE[,TYPE...]>': it must be an EtherType")
    );
    assert_eq!(e(&["--filter", "none"]), "a packet filter of 0 receives nothing");
    assert_eq!(recv(&["--filter", "none", "--promiscuous"]).filter, rawnic_proto::filter::PROMISCUOUS);
    assert_eq!(e(&["--local-sends", "mine"]), "invalid value 'mine' for '--local-sends <WHICH>'");
    assert_eq!(
        e(&["--filter", "0x40"]),
        "invalid value '0x40' for '--filter <BITS>': packet filter 0x40 has bits the driver does not allow"
    );
    assert!(e(&["--filter", "everything"]).ends_with("it must be packet filter bits (directed, multicast, all-multicast, broadcast, promiscuous, comma-separated) or a number"));
    assert_eq!(
        e(&["--snaplen", "10"]),
        "invalid value '10' for '--snaplen <BYTES>': it must be at least 14 (an Ethernet header), or 0 for whole frames"
    );
    assert_eq!(
        e(&["--queue-bytes", "100"]),
        "invalid value '100' for '--queue-bytes <BYTES>': it must be 131072 to 268435456, or 0 for the driver's"
    );
    assert_eq!(
        e(&["--queue-frames", "2000000"]),
        "invalid value '2000000' for '--queue-frames <N>': it must be at most 1048576"
    );
    assert_eq!(e(&["--buffer", "10"]), "invalid value '10' for '--buffer <BYTES>': it must be 64 bytes to 16 MiB");
    assert_eq!(e(&["--hex", "--pcapng", "-"]), "--hex prints frames, which would mix with the pcapng data on stdout");
    assert_eq!(e(&["--count", "0"]), "invalid value '0' for '--count <N>': it must be at least 1");
    assert_eq!(e(&["--pcapng"]), "a value is required for '--pcapng <FILE>' but none was supplied");
    assert_eq!(e(&["now"]), "unexpected argument 'now' found");
    let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
    assert_eq!(e(&["--ethertype", &many.join(",")]), "at most 32 EtherTypes can be given");
}

#[test]
fn oid_args() {
    let o = |args: &[&str]| {
        let mut all = vec!["oid"];
        all.extend_from_slice(args);
        match cmd(&all) {
            Command::Oid(o) => o,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        o(&["get", "OID_GEN_LINK_SPEED"]),
        OidArgs::Get { oid: 0x0001_0107, info: oid::by_value(0x0001_0107), len: None, raw: false }
    );
    assert_eq!(
        o(&["get", "0x12345678", "--len", "64", "--raw"]),
        OidArgs::Get { oid: 0x1234_5678, info: None, len: Some(64), raw: true }
    );
    assert_eq!(o(&["set", "gen_current_lookahead", "256"]), OidArgs::Set { oid: 0x0001_010F, value: vec![0, 1, 0, 0] });
    assert_eq!(
        o(&["set", "OID_802_3_MULTICAST_LIST", "01:00:5e:00:00:01,01:00:5e:00:00:02"]),
        OidArgs::Set { oid: 0x0101_0103, value: vec![1, 0, 0x5e, 0, 0, 1, 1, 0, 0x5e, 0, 0, 2] }
    );
    assert_eq!(
        o(&["set", "OID_GEN_LINK_PARAMETERS", "--hex", "0102"]),
        OidArgs::Set { oid: 0x0001_0208, value: vec![1, 2] }
    );
    assert_eq!(
        o(&["set", "0x00010208", "--u64", "5"]),
        OidArgs::Set { oid: 0x0001_0208, value: 5u64.to_le_bytes().to_vec() }
    );
    assert_eq!(o(&["set", "GEN_LINK_SPEED", "--u32", "7"]), OidArgs::Set { oid: 0x0001_0107, value: vec![7, 0, 0, 0] });
    assert_eq!(o(&["names"]), OidArgs::Names);
    assert_eq!(Hex(vec![1]), values::hex("01").unwrap());
}

#[test]
fn oid_mistakes() {
    assert_eq!(bad(&["oid"]).0, ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
    assert_eq!(said(&["oid", "fetch"]), "unrecognized subcommand 'fetch'");
    assert_eq!(
        bad(&["oid", "get"]),
        (ErrorKind::MissingRequiredArgument, "the following required arguments were not provided:".into())
    );
    assert_eq!(
        said(&["oid", "get", "OID_FROB"]),
        "invalid value 'OID_FROB' for '<OID>': it must be an OID: a name from `rawnicctl oid names` or a number like 0x00010107"
    );
    assert_eq!(said(&["oid", "get", "GEN_LINK_SPEED", "x"]), "unexpected argument 'x' found");
    assert_eq!(said(&["oid", "get", "GEN_LINK_SPEED", "--hex", "00"]), "unexpected argument '--hex' found");
    assert_eq!(
        said(&["oid", "get", "GEN_LINK_SPEED", "--len", "70000"]),
        "invalid value '70000' for '--len <BYTES>': it must be at most 65536"
    );
    let e = parsed(&["oid", "set", "GEN_CURRENT_LOOKAHEAD"]).unwrap_err().to_string();
    assert!(
        e.contains("the following required arguments were not provided:\n  <VALUE|--hex <HEX>|--u32 <N>|--u64 <N>>"),
        "{e}"
    );
    assert!(
        e.contains("Usage: rawnicctl oid set [OPTIONS] <OID> <VALUE | --hex <HEX> | --u32 <N> | --u64 <N>>"),
        "{e}"
    );
    assert_eq!(
        bad(&["oid", "set", "GEN_CURRENT_LOOKAHEAD", "1", "--u32", "2"]),
        (ErrorKind::ArgumentConflict, "the argument '[VALUE]' cannot be used with '--u32 <N>'".into())
    );
    assert_eq!(
        said(&["oid", "set", "GEN_CURRENT_LOOKAHEAD", "lots"]),
        "the value for OID_GEN_CURRENT_LOOKAHEAD (0x0001010f): \"lots\" is not a number"
    );
    let e = parsed(&["oid", "set", "GEN_LINK_PARAMETERS", "1"]).unwrap_err().to_string();
    assert!(
        e.starts_with("error: the value for OID_GEN_LINK_PARAMETERS (0x00010208): this OID's value has no text form; give its bytes with --hex\n\nUsage: rawnicctl oid set "),
        "{e}"
    );
    assert_eq!(
        said(&["oid", "set", "GEN_LINK_SPEED", "--u32", "5000000000"]),
        "invalid value '5000000000' for '--u32 <N>': 5000000000 does not fit in 32 bits"
    );
    assert_eq!(
        said(&["oid", "set", "GEN_LINK_SPEED", "--hex", "f"]),
        "invalid value 'f' for '--hex <HEX>': 1 hex digits is an odd number: every byte takes two"
    );
    assert_eq!(
        said(&["oid", "set", "GEN_LINK_SPEED", "--len", "4", "--u32", "1"]),
        "unexpected argument '--len' found"
    );
    assert_eq!(said(&["oid", "names", "x"]), "unexpected argument 'x' found");
}

#[test]
fn watch_and_selftest() {
    assert_eq!(cmd(&["watch"]), Command::Watch(WatchArgs { count: None, timeout: None }));
    assert_eq!(
        cmd(&["watch", "-c", "2", "-t", "10"]),
        Command::Watch(WatchArgs { count: Some(2), timeout: Some(Duration::from_secs(10)) })
    );
    assert_eq!(said(&["watch", "--count", "x"]), "invalid value 'x' for '--count <N>': it must be a number of events");
    assert_eq!(said(&["watch", "--hex"]), "unexpected argument '--hex' found");
    assert_eq!(cmd(&["selftest"]), Command::Selftest(SelftestArgs { count: 32, timeout: Duration::from_secs(10) }));
    assert_eq!(
        cmd(&["selftest", "-c", "16", "-t", "1"]),
        Command::Selftest(SelftestArgs { count: 16, timeout: Duration::from_secs(1) })
    );
    assert_eq!(said(&["selftest", "-c", "0"]), "invalid value '0' for '--count <N>': it must be 1 to 4096");
}

#[test]
fn arping_args() {
    assert_eq!(
        cmd(&["arping", "10.0.0.1", "--source", "10.0.0.2"]),
        Command::Arping(ArpingArgs {
            target: Ipv4Addr::new(10, 0, 0, 1),
            source: Ipv4Addr::new(10, 0, 0, 2),
            count: 3,
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            vlan: None,
            src_mac: None,
        })
    );
    let Command::Arping(a) = cmd(&[
        "arping",
        "--source=192.168.1.2",
        "192.168.1.1",
        "-c",
        "1",
        "-t",
        "0.2",
        "-i",
        "0",
        "--vlan",
        "7",
        "--src-mac",
        "02:00:00:00:00:07",
    ]) else {
        panic!()
    };
    assert_eq!((a.count, a.timeout, a.interval), (1, Duration::from_millis(200), Duration::ZERO));
    assert_eq!((a.vlan, a.src_mac), (Some(Tci(7)), Some(MacAddr([2, 0, 0, 0, 0, 7]))));
    assert_eq!(bad(&["arping"]).0, ErrorKind::MissingRequiredArgument);
    let e = parsed(&["arping", "10.0.0.1"]).unwrap_err().to_string();
    assert!(e.contains("the following required arguments were not provided:\n  --source <IP>"), "{e}");
    assert_eq!(
        said(&["arping", "host", "--source", "10.0.0.2"]),
        "invalid value 'host' for '<TARGET>': it must be an IPv4 address like 10.0.0.1"
    );
    assert_eq!(
        said(&["arping", "10.0.0.1", "--source", "x"]),
        "invalid value 'x' for '--source <IP>': it must be an IPv4 address like 10.0.0.1"
    );
    assert_eq!(
        said(&["arping", "10.0.0.1", "10.0.0.3", "--source", "10.0.0.2"]),
        "unexpected argument '10.0.0.3' found"
    );
    assert_eq!(
        said(&["arping", "10.0.0.1", "--source", "10.0.0.2", "-t", "0"]),
        "invalid value '0' for '--timeout <SECS>': it must be more than 0"
    );
    assert_eq!(
        said(&["arping", "10.0.0.1", "--source", "10.0.0.2", "-c", "0"]),
        "invalid value '0' for '--count <N>': it must be at least 1"
    );
}

#[test]
fn a_usage_error_found_while_running_names_its_command() {
    let e = usage_error(&["stats"], ErrorKind::InvalidValue, "which adapter?");
    assert_eq!(
        e.to_string(),
        "error: which adapter?\n\nUsage: rawnicctl stats [OPTIONS]\n\nFor more information, try '--help'.\n"
    );
    assert_eq!(e.exit_code(), 2);
    let e = usage_error(&["oid", "get"], ErrorKind::InvalidValue, "x");
    assert!(e.to_string().contains("Usage: rawnicctl oid get [OPTIONS] <OID>"), "{e}");
}
