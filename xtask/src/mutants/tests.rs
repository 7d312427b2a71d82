use super::*;

fn ops(sites: &[Site]) -> Vec<(usize, Op)> {
    sites.iter().map(|s| (s.line, s.op)).collect()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn code_part_blanks_strings_and_cuts_comments() {
    assert_eq!(code_part(r#"f("a == b", x) // y < z"#), r#"f("      ", x) "#);
    assert_eq!(code_part(r#"g("\" < ") == 1"#), r#"g("     ") == 1"#);
    assert_eq!(code_part("c == '<' && d"), "c == ' ' && d");
    assert_eq!(code_part("c == '\\'' && d"), "c == '  ' && d");
    assert_eq!(code_part("fn f<'a>(x: &'a u8)"), "fn f<'a>(x: &'a u8)");
    assert_eq!(code_part("\"é\" == x").len(), "\"é\" == x".len());
}

#[test]
fn binary_operators_are_found_with_their_spaces_only() {
    let text = "fn f(v: Vec<u8>) -> bool {\n    a < b && c >= d || e == f && g != h\n}\n";
    let sites = scan("x.rs", text, false);
    assert_eq!(
        ops(&sites),
        vec![
            (2, Op::AndToOr),
            (2, Op::AndToOr),
            (2, Op::OrToAnd),
            (2, Op::LtToLe),
            (2, Op::GeToGt),
            (2, Op::EqToNe),
            (2, Op::NeToEq)
        ]
    );
    assert_eq!(sites[0].mutated, "    a < b || c >= d || e == f && g != h");
    assert_eq!(sites[1].mutated, "    a < b && c >= d || e == f || g != h");
    assert_eq!(sites[2].mutated, "    a < b && c >= d && e == f && g != h");
    assert_eq!(sites[3].mutated, "    a <= b && c >= d || e == f && g != h");
    assert_eq!(sites[4].mutated, "    a < b && c > d || e == f && g != h");
    assert_eq!(sites[5].mutated, "    a < b && c >= d || e != f && g != h");
    assert_eq!(sites[6].mutated, "    a < b && c >= d || e == f && g == h");
}

#[test]
fn an_if_is_negated_unless_it_binds() {
    let text = "fn f() {\n    if a.len() > 3 {\n    } else if b {\n    }\n    if let Some(x) = y {\n    }\n}\n";
    let sites = scan("x.rs", text, false);
    let negations: Vec<&Site> = sites.iter().filter(|s| s.op == Op::Negate).collect();
    assert_eq!(negations.len(), 2);
    assert_eq!(negations[0].mutated, "    if !(a.len() > 3) {");
    assert_eq!(negations[1].mutated, "    } else if !(b) {");
}

#[test]
fn let_chains_and_closures_keep_their_ands_and_bars() {
    let text = "fn f() {\n    if let Some(x) = y && x > 1 {\n    }\n    let g = v.iter().any(|| a);\n    run(move || b);\n    let h = a || b;\n}\n";
    let sites = scan("x.rs", text, false);
    assert_eq!(ops(&sites), vec![(2, Op::GtToGe), (6, Op::OrToAnd)]);
}

#[test]
fn increments_by_one_only() {
    let text = "fn f() {\n    n += 1;\n    m += 10;\n    k += 1u8;\n    j += 1 + x;\n}\n";
    let sites = scan("x.rs", text, false);
    assert_eq!(ops(&sites), vec![(2, Op::IncByZero), (5, Op::IncByZero)]);
    assert_eq!(sites[0].mutated, "    n += 0;");
    assert_eq!(sites[1].mutated, "    j += 0 + x;");
}

#[test]
fn guards_that_end_an_if_body_are_deleted() {
    let text = "\
fn f() -> bool {
    if a {
        log();
        return false;
    }
    for x in v {
        if x {
            continue;
        }
        match x {
            _ => {
                return true;
            }
        }
    }
    let Some(y) = z else {
        return false;
    };
    if b {
        return c;
        // done
    } else {
        return d;
    }
    true
}
";
    let sites = scan("x.rs", text, false);
    let guards: Vec<usize> = sites.iter().filter(|s| s.op == Op::DeleteGuard).map(|s| s.line).collect();
    assert_eq!(guards, vec![4, 8, 20, 23]);
}

#[test]
fn comments_tests_assertions_logs_and_unsafe_are_left_alone() {
    let text = "\
// a == b
/* c == d
   e < f */
use x::{a, b};
const N: usize = 1 + 1;
fn f() {
    // SAFETY: p < q
    let v = unsafe {
        *p == 1
    };
    let w = unsafe { *p != 2 }; // SAFETY: r
    assert!(a == b);
    debug_assert!(c < d);
    kprint!(LEVEL, \"{} == {}\", a, b);
    g(a == b);
}
#[cfg(test)]
mod tests {
    fn t() {
        if a == b {
        }
    }
}
fn h() {
    x >= y
}
";
    let sites = scan("x.rs", text, false);
    assert_eq!(ops(&sites), vec![(15, Op::EqToNe), (25, Op::GeToGt)]);
}

#[test]
fn the_bodies_of_unsafe_fns_and_impls_are_mutated_but_not_unsafe_blocks() {
    // The crate denies unsafe_op_in_unsafe_fn: an `unsafe fn`'s body is safe
    // code outside its own `unsafe { }` blocks. (The text's SAFETY lines
    // are for tests/safety_comments.rs, which reads every file.)
    let text = "\
unsafe extern \"win64\" fn handler(ctx: *mut u8) {
    // SAFETY: r
    let b = unsafe { arc(ctx) };
    if b.count == 0 {
        return;
    }
    // SAFETY: r
    let v = unsafe {
        if *ctx == 1 {
            return;
        }
        *ctx < 2
    };
    // SAFETY: r
    if !unsafe { queue(ctx) } {
        n += 1;
    }
}
// SAFETY: r
unsafe impl Holder for Frame {
    fn len(&self) -> usize {
        self.a && self.b
    }
}
fn f(
    p: *mut u8,
) -> bool {
    let n = 1;
    n > 2
}
";
    let sites = scan("x.rs", text, false);
    assert_eq!(
        ops(&sites),
        vec![
            (4, Op::Negate),
            (4, Op::EqToNe),
            (5, Op::DeleteGuard),
            (16, Op::IncByZero),
            (22, Op::AndToOr),
            (29, Op::GtToGe),
        ]
    );
    // `unsafe` as a word ends the block test, not as part of a name.
    assert!(opens_unsafe_block("let x = unsafe {", 15));
    assert!(!opens_unsafe_block("let x = not_unsafe {", 19));
    assert!(!opens_unsafe_block("unsafe fn f() {", 14));
}

#[test]
fn apply_replaces_one_line_and_keeps_the_rest() {
    let text = "a\r\nif x == y {\r\n    return;\r\n}\r\n";
    let sites = scan("x.rs", text, false);
    let eq = sites.iter().find(|s| s.op == Op::EqToNe).unwrap();
    assert_eq!(apply(text, eq).unwrap(), "a\r\nif x != y {\r\n    return;\r\n}\r\n");
    let del = sites.iter().find(|s| s.op == Op::DeleteGuard).unwrap();
    assert_eq!(apply(text, del).unwrap(), "a\r\nif x == y {\r\n\r\n}\r\n");
    let changed = "a\r\nif x <= y {\r\n";
    assert!(apply(changed, eq).is_err());
}

#[test]
fn pick_is_deterministic_distinct_and_bounded() {
    let a = pick(100, 10, 60400000);
    assert_eq!(a, pick(100, 10, 60400000));
    assert_eq!(a.len(), 10);
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert!(a.iter().all(|&i| i < 100));
    assert_ne!(a, pick(100, 10, 60400001));
    assert_eq!(pick(5, 10, 1), vec![0, 1, 2, 3, 4]);
    assert!(pick(0, 3, 1).is_empty());
}

#[test]
fn cargo_json_gives_the_test_executables() {
    let json = concat!(
        r#"{"reason":"compiler-artifact","package_id":"p","target":{"kind":["lib"],"crate_types":["lib"],"name":"support"},"executable":null}"#,
        "\n",
        r#"{"reason":"compiler-artifact","package_id":"p","target":{"kind":["test"],"crate_types":["bin"],"name":"capture","src_path":"/r/tests/capture.rs"},"profile":{"name":"x"},"executable":"/r/target/debug/deps/capture-0123456789abcdef"}"#,
        "\n",
        r#"{"reason":"build-finished","success":true}"#,
    );
    assert_eq!(
        test_executables(json),
        vec![("capture".to_string(), "/r/target/debug/deps/capture-0123456789abcdef".to_string())]
    );
}

#[test]
fn arguments() {
    let o = parse_args(&args(&[
        "--file",
        "driver/src/rawnic/filter.rs",
        "--file",
        "./driver/src/rawnic/multicast.rs",
        "--count",
        "12",
        "--seed",
        "60400000",
        "--test",
        "capture",
        "--test",
        "filter",
        "--chaos",
        "--schedules 30 --profile union-race",
        "--chaos",
        "--schedules 10 --profile teardown --preempt 10000",
        "--first",
        "61",
        "--no-baseline",
    ]))
    .unwrap();
    assert_eq!(o.files.len(), 2);
    assert_eq!((o.count, o.seed, o.first), (12, 60400000, 61));
    assert_eq!(o.tests, vec!["capture", "filter"]);
    assert_eq!(
        o.chaos,
        vec!["--schedules 30 --profile union-race", "--schedules 10 --profile teardown --preempt 10000"]
    );
    assert!(!o.baseline && !o.list);
    assert!(parse_args(&args(&["--file", "ndisim/src/lib.rs", "--test", "x"])).is_err());
    assert!(parse_args(&args(&["--file", "chaos/src/lib.rs", "--test", "x"])).is_err());
    // The crates compiled into the image: the logic and the wire format.
    assert!(parse_args(&args(&["--file", "logic/src/umem/rx.rs", "--test", "x"])).is_ok());
    assert!(parse_args(&args(&["--file", "./proto/src/ring.rs", "--test", "x"])).is_ok());
    assert!(parse_args(&args(&["--file", "driver/src/rawnic/filter.rs"])).is_err(), "no battery");
    assert!(parse_args(&args(&["--file", "driver/src/rawnic/filter.rs", "--list"])).is_ok());
    assert!(parse_args(&args(&["--count"])).is_err());
    assert!(parse_args(&args(&["--bogus"])).is_err());
}

#[test]
fn the_report_counts_and_escapes() {
    let site = |line, op, original: &str, mutated: &str| Site {
        file: "driver/src/rawnic/x.rs".to_string(),
        line,
        op,
        original: original.to_string(),
        mutated: mutated.to_string(),
    };
    let records = vec![
        Record { id: "M1".into(), site: site(3, Op::OrToAnd, "a || b", "a && b"), outcome: Outcome::Survived },
        Record {
            id: "M2".into(),
            site: site(4, Op::DeleteGuard, "    return;", ""),
            outcome: Outcome::CaughtByTest { test: "capture".into(), timeout: false },
        },
        Record { id: "M3".into(), site: site(5, Op::Negate, "if a {", "if !(a) {"), outcome: Outcome::NotBuilt },
        Record {
            id: "M4".into(),
            site: site(6, Op::LtToLe, "a < b", "a <= b"),
            outcome: Outcome::CaughtByExplorer { failed: "free 2/30, det 0/30".into() },
        },
    ];
    let r = report(&records, "run");
    assert!(r.contains("4 mutants, 3 built, 1 caught by a test, 1 caught only by the explorer, 1 survived, 0 errors."));
    assert!(r.contains("| M1 | driver/src/rawnic/x.rs:3 | \\|\\| -> && | `a \\|\\| b` | `a && b` | **survived** |"));
    assert!(r.contains("| M4 | driver/src/rawnic/x.rs:6 | < -> <= | `a < b` | `a <= b` | caught by the explorer (free 2/30, det 0/30) |"));
    assert!(
        r.contains("| M2 | driver/src/rawnic/x.rs:4 | delete guard | `return;` | (deleted) | caught by `capture` |")
    );
}

#[test]
fn the_explorers_summary_gives_its_failures() {
    let log = "seed 1\n\nmode  schedules  violations  hangs  crashes  failed\nfree         30           2      0        0       2\n\
               det          30           0      0        0       0\nclean schedules did: 3 requests\n";
    assert_eq!(explorer_failures(log), "free 2/30, det 0/30");
    assert_eq!(explorer_failures("nothing"), "");
}

#[test]
fn lines_keep_the_sites_of_their_ranges_only() {
    let text = "fn f() {\n    a == b;\n    c == d;\n    e == g;\n}\n";
    let mut sites = scan("x.rs", text, false);
    sites.extend(scan("y.rs", text, false));
    let o = parse_args(&args(&["--file", "x.rs", "--file", "./y.rs", "--list", "--lines", "./x.rs:3-4"]));
    assert!(o.is_err(), "x.rs is not compiled into the image");
    let o = parse_args(&args(&[
        "--file",
        "logic/src/x.rs",
        "--file",
        "logic/src/y.rs",
        "--list",
        "--lines",
        "./logic/src/x.rs:3-4",
        "--lines",
        "logic/src/x.rs:2",
    ]))
    .unwrap();
    assert_eq!(o.lines, vec![("logic/src/x.rs".to_string(), 3, 4), ("logic/src/x.rs".to_string(), 2, 2)]);
    let lines = vec![("x.rs".to_string(), 3, 4)];
    let kept = keep_lines(sites.clone(), &lines);
    let where_: Vec<(&str, usize)> = kept.iter().map(|s| (s.file.as_str(), s.line)).collect();
    assert_eq!(where_, vec![("x.rs", 3), ("x.rs", 4), ("y.rs", 2), ("y.rs", 3), ("y.rs", 4)]);
    assert_eq!(keep_lines(sites.clone(), &[]).len(), sites.len());
    for bad in ["x.rs", "x.rs:", "x.rs:4-3", "x.rs:0", ":2", "x.rs:a-b"] {
        assert!(parse_args(&args(&["--file", "logic/src/x.rs", "--list", "--lines", bad])).is_err(), "{bad}");
    }
    let other = parse_args(&args(&["--file", "logic/src/x.rs", "--list", "--lines", "logic/src/z.rs:1-2"]));
    assert!(other.is_err(), "a range of a file not mutated");
}

#[test]
fn statements_are_deleted_only_when_asked_and_only_whole() {
    let text = "\
fn f(&self) -> Result<u8, E> {
    let x = g(1);
    reset(file);
    self.count.fetch_add(1, Ordering::Relaxed);
    st.mode = Mode::Unopened;
    n += 2;
    drop(guard);
    call(
        a,
    );
    v[i] = h(w[j]);
    run(|| { x });
    h(x)?;
    type T = u8;
    let y = k(2)
        .m();
    z.push(y);
    Ok(x)
}
";
    let plain = scan("x.rs", text, false);
    assert!(plain.iter().all(|s| s.op != Op::DeleteStatement));
    let all = scan("x.rs", text, true);
    let deleted: Vec<usize> = all.iter().filter(|s| s.op == Op::DeleteStatement).map(|s| s.line).collect();
    // Not the binding (2), the drop (7), the call over lines (8-10), the
    // closure with a block (12), the type alias (14) or the statement's
    // second line (16).
    assert_eq!(deleted, vec![3, 4, 5, 6, 11, 13, 17]);
    // Without them, the same sites in the same order: a seed picks what it
    // picked before.
    let rest: Vec<Site> = all.into_iter().filter(|s| s.op != Op::DeleteStatement).collect();
    assert_eq!(rest, plain);
    let site = scan("x.rs", text, true).into_iter().find(|s| s.line == 3 && s.op == Op::DeleteStatement).unwrap();
    let mutated = apply(text, &site).unwrap();
    assert!(!mutated.contains("reset(file);") && mutated.lines().count() == text.lines().count());
    let o = parse_args(&args(&["--file", "driver/src/rawnic/control.rs", "--list", "--statements"])).unwrap();
    assert!(o.statements && !o.only_statements);
    let o = parse_args(&args(&["--file", "driver/src/rawnic/control.rs", "--list", "--only-statements"])).unwrap();
    assert!(o.statements && o.only_statements);
    let o = parse_args(&args(&["--file", "driver/src/rawnic/control.rs", "--test", "x", "--resume", "604"])).unwrap();
    assert_eq!(o.resume, 604);
}
