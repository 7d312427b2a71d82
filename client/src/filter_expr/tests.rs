//! The compiler's refusals: one sentence each, naming the word at fault
//! and where it is. (What the programs take is compared with libpcap in
//! `client/tests/filter_expr.rs`.)

use super::*;

fn err(expr: &str) -> String {
    compile_filter(expr).expect_err(expr)
}

#[test]
fn refusals_name_the_word_and_where_it_is() {
    let cases: &[(&str, &str)] = &[
        (
            "ip6 protochain 6",
            "'protochain' is not supported: it compiles to a loop (a jump back), which the driver refuses (at character 5 of the filter)",
        ),
        (
            "host example.com",
            "'example.com' is a name, and this compiler looks up none: give the address or number (at character 6 of the filter)",
        ),
        (
            "tcp port http",
            "'http' is a name, and this compiler looks up none: give the address or number (at character 10 of the filter)",
        ),
        (
            "mpls and ip",
            "'mpls' is not supported: it is an encapsulation this compiler does not handle (at character 1 of the filter)",
        ),
        (
            "ip broadcast",
            "'ip broadcast' is not supported: it needs the network's mask, which rawnic does not know (at character 1 of the filter)",
        ),
        (
            "inbound",
            "'inbound' is not supported: it needs metadata a frame does not carry (at character 1 of the filter)",
        ),
        ("udp port 70000", "port 70000 is greater than 65535 (at character 10 of the filter)"),
        ("vlan 4096", "VLAN 4096 is greater than the largest, 4095 (at character 1 of the filter)"),
        ("net 10.0.0.1/8", "10.0.0.1 has bits set outside its network's mask (at character 5 of the filter)"),
        ("ip[0:3] = 1", "a load of 3 bytes: the size must be 1, 2 or 4 (at character 1 of the filter)"),
        ("ip[9] / 0 = 1", "a division by 0 (at character 7 of the filter)"),
        ("len % ip[0] = 1", "a remainder by 0 (at character 5 of the filter)"),
        ("len / (1 - 1) = 1", "a division or remainder by an expression of 0 (at character 5 of the filter)"),
        ("ip[9] << 32 = 1", "a shift by 32: at most 31 (at character 7 of the filter)"),
        (
            "tcp and",
            "the expression ends where a primitive (host, port, tcp, ip[...] = N...) should follow (at character 8 of the filter)",
        ),
        ("(tcp", "the expression ends where ')' should follow (at character 5 of the filter)"),
        (
            "port 80 443",
            "'443' is not expected here; 'and', 'or' or the end should be here (at character 9 of the filter)",
        ),
        (
            "udp or 53",
            "the expression ends where a comparison (=, !=, <, <=, >, >=) should follow (at character 10 of the filter)",
        ),
        (
            "len > ",
            "the expression ends where a number, len or proto[offset] should follow (at character 7 of the filter)",
        ),
        (
            "10.0.0.1",
            "'10.0.0.1' needs a qualifier before it (host, net, ether host...) (at character 1 of the filter)",
        ),
        (
            "ether host 10.0.0.1",
            "'ether' takes a MAC address (ether host 02:00:00:00:00:01) (at character 12 of the filter)",
        ),
        (
            "host 02:00:00:00:00:01",
            "a MAC address needs 'ether' before it (ether host 02:00:00:00:00:01) (at character 6 of the filter)",
        ),
        ("tcp host 10.0.0.1", "'tcp' cannot qualify a host (at character 10 of the filter)"),
        ("ip port 80", "'ip port' means nothing: only tcp, udp and sctp have ports (at character 9 of the filter)"),
        ("ip6 host 10.0.0.1", "'ip6' cannot qualify an IPv4 address (at character 10 of the filter)"),
        ("host fe80::/10", "a prefix length is only for 'net' (at character 6 of the filter)"),
        ("host fe80:::1", "'fe80:::1' is not an IPv6 address (at character 6 of the filter)"),
        ("host 10.0.0.300", "'10.0.0.300' is not an IPv4 address (at character 6 of the filter)"),
        ("len > 99999999999", "'99999999999' is a number too big for 32 bits (at character 7 of the filter)"),
        ("tcp proto 6", "'tcp proto' means nothing (at character 11 of the filter)"),
        ("arp proto 6", "'arp proto': arp does not carry another protocol (at character 11 of the filter)"),
        (
            "src proto 6",
            "'proto' is not expected here; an address or number for 'host' should be here (at character 5 of the filter)",
        ),
        ("ether", "'ether' alone is not a test: say what of it (host, proto...) (at character 1 of the filter)"),
        ("len > 5 $", "'$' is not part of a filter expression (at character 9 of the filter)"),
        ("foo", "'foo' is not a keyword of a filter expression (at character 1 of the filter)"),
        (
            "ether proto 0x809b",
            "EtherType or SAP 0x809b (IPX, AppleTalk) is not supported: its 802.2 and SNAP encapsulations are not compiled (at character 13 of the filter)",
        ),
        // Characters, not bytes.
        ("len > 1 and «", "'«' is not part of a filter expression (at character 13 of the filter)"),
    ];
    for (expr, want) in cases {
        assert_eq!(&err(expr), want, "{expr}");
    }
}

#[test]
fn nesting_past_the_scratch_memory_is_refused() {
    let mut e = String::from("len");
    for _ in 0..20 {
        e = format!("len + ({e})");
    }
    assert!(
        compile_filter(&format!("{e} = 1")).is_ok(),
        "a chain of + leans left, and needs no scratch word per level"
    );
    let mut e = String::from("ip[0]");
    for _ in 0..20 {
        e = format!("ip[0] - ({e} - ip[1])");
    }
    // Placed at the relation's operator.
    let e = format!("{e} = 1");
    assert_eq!(
        err(&e),
        format!(
            "the arithmetic is nested too deeply for the 16 words of scratch memory (at character {} of the filter)",
            e.len() - 2
        )
    );
}

#[test]
fn a_long_program_jumps_far_through_ja() {
    // Each `host` is ~20 instructions: the first test's jump to "take"
    // runs past 255 instructions.
    let hosts: Vec<String> = (1..=40).map(|i| format!("host 10.0.0.{i}")).collect();
    let insns = compile_filter(&hosts.join(" or ")).unwrap();
    assert!(insns.len() > 300);
    assert!(insns.iter().any(|i| i.code == 0x05), "a ja");
    let p = rawnic_logic::bpf::Program::new(insns.iter().copied()).expect("the driver's check takes it");
    // An IPv4 frame from 10.0.0.40 to 10.0.0.99, and one from 10.0.0.41.
    let frame = |src: u8| {
        let mut f = vec![0u8; 34];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[26..30].copy_from_slice(&[10, 0, 0, src]);
        f[30..34].copy_from_slice(&[10, 0, 0, 99]);
        f
    };
    assert_eq!(p.run(&frame(40)[..]), TAKE);
    assert_eq!(p.run(&frame(41)[..]), 0);
    assert_eq!(p.run(&frame(1)[..]), TAKE);
}

#[test]
fn too_long_a_program_is_refused() {
    let hosts: Vec<String> = (0..400).map(|i| format!("host 10.0.{}.{}", i / 256, i % 256)).collect();
    assert!(err(&hosts.join(" or ")).starts_with("the expression compiles to "));
}

#[test]
fn empty_takes_everything_and_ddd_reads_back() {
    assert_eq!(compile_filter("  ").unwrap(), vec![BpfInsn::new(0x06, 0, 0, TAKE)]);
    let arp = compile_filter("arp").unwrap();
    assert_eq!(format_ddd(&arp), "4\n40 0 0 12\n21 0 1 2054\n6 0 0 262144\n6 0 0 0\n");
    assert_eq!(crate::parse_program(&format_ddd(&arp)).unwrap(), arp);
}

#[test]
fn tests_an_earlier_one_decided_are_skipped() {
    // Jump threading: a repeated test, a constant relation, a test both
    // of whose jumps meet.
    assert_eq!(compile_filter("ip and ip").unwrap(), compile_filter("ip").unwrap());
    assert_eq!(compile_filter("17 >= 69 or arp").unwrap(), compile_filter("arp").unwrap());
    assert_eq!(compile_filter("ip or not ip").unwrap(), vec![BpfInsn::new(0x06, 0, 0, TAKE)]);
    // After `ldh [12]; jeq #0x800` held, `jeq #0x806` cannot: an ARP
    // test after an IPv4 one on the same path goes straight on.
    let p = compile_filter("net 10 or not icmp[44] > len").unwrap();
    assert!(!p.iter().any(|i| i.k == 0x0806), "{p:?}");
}

#[test]
fn long_and_deep_expressions_are_refused_not_overflowed() {
    // On a thread with a small stack: the longest expression read, as a
    // chain of `or`s, compiles (or is refused for its length in
    // instructions) without running out of stack.
    let long = std::iter::repeat_n("ip", MAX_LEN / 6).collect::<Vec<_>>().join(" or ");
    assert!(long.len() <= MAX_LEN);
    let deep = format!("{}ip{}", "(".repeat(5000), ")".repeat(5000));
    let nots = format!("{}ip", "not ".repeat(3000));
    let minus = format!("{}len = 1", "-".repeat(3000));
    let small =
        |f: Box<dyn FnOnce() + Send>| std::thread::Builder::new().stack_size(1 << 20).spawn(f).unwrap().join().unwrap();
    small(Box::new(move || assert_eq!(compile_filter(&long).unwrap(), compile_filter("ip").unwrap())));
    small(Box::new(move || {
        let e = err(&deep);
        assert!(e.starts_with("the expression nests deeper than 100 levels (at character 101"), "{e}")
    }));
    small(Box::new(move || assert!(err(&nots).starts_with("the expression nests deeper than 100 levels"))));
    small(Box::new(move || assert!(err(&minus).starts_with("the expression nests deeper than 100 levels"))));
    assert!(err(&"ip or ".repeat(3000)).starts_with("the filter expression is 18000 bytes long"));
}
