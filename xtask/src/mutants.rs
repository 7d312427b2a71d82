//! `xtask mutants`: mutation testing of the kernel driver's sources (the
//! driver's own, and the logic and wire-format crates compiled into it).
//!
//! A line-based scanner lists the places in a source file where one small
//! change (a mutation operator, [`Op`]) makes a different driver: an `if`
//! negated, `&&` and `||` swapped, a comparison moved by one, an increment
//! by 0, a `return`/`continue` guard deleted, and (with `--statements`) a
//! one-line call or assignment statement deleted. Lines that are comments,
//! tests, assertions, `unsafe` blocks, `use`, constants or log lines are
//! never mutated. The body of an `unsafe fn` or `unsafe impl` is: the
//! crate denies `unsafe_op_in_unsafe_fn`, so outside its own `unsafe { }`
//! blocks that body is safe code, and in the wrapper (`driver/src/kernel`)
//! that is where most of its rules are. [`pick`] chooses some of the sites by a seed, so a run is
//! reproducible; `run.rs` builds each mutant and runs a battery of tests
//! and the explorer against it.
//!
//! Everything here is pure (text in, text out) and unit-tested; the file
//! system, the builds and the child processes are in `run.rs`.

mod run;

pub use run::run;

/// A mutation operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `if COND {` becomes `if !(COND) {`.
    Negate,
    /// `a && b` becomes `a || b`.
    AndToOr,
    /// `a || b` becomes `a && b`.
    OrToAnd,
    /// `<` becomes `<=`.
    LtToLe,
    /// `<=` becomes `<`.
    LeToLt,
    /// `>` becomes `>=`.
    GtToGe,
    /// `>=` becomes `>`.
    GeToGt,
    /// `==` becomes `!=`.
    EqToNe,
    /// `!=` becomes `==`.
    NeToEq,
    /// `+= 1` becomes `+= 0`.
    IncByZero,
    /// A `return ...;` or `continue;` that ends an `if` body is deleted.
    DeleteGuard,
    /// A one-line call or assignment statement is deleted (only with
    /// `--statements`, so the sites a seed picks without it stay the same).
    DeleteStatement,
}

impl Op {
    /// A short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Op::Negate => "negate if",
            Op::AndToOr => "&& -> ||",
            Op::OrToAnd => "|| -> &&",
            Op::LtToLe => "< -> <=",
            Op::LeToLt => "<= -> <",
            Op::GtToGe => "> -> >=",
            Op::GeToGt => ">= -> >",
            Op::EqToNe => "== -> !=",
            Op::NeToEq => "!= -> ==",
            Op::IncByZero => "+= 1 -> += 0",
            Op::DeleteGuard => "delete guard",
            Op::DeleteStatement => "delete statement",
        }
    }
}

/// The binary operators: the text searched for (with a space each side, as
/// rustfmt writes them, which keeps generics, `->` and `=>` out) and its
/// replacement.
const BINARY: &[(Op, &str, &str)] = &[
    (Op::AndToOr, " && ", " || "),
    (Op::OrToAnd, " || ", " && "),
    (Op::LtToLe, " < ", " <= "),
    (Op::LeToLt, " <= ", " < "),
    (Op::GtToGe, " > ", " >= "),
    (Op::GeToGt, " >= ", " > "),
    (Op::EqToNe, " == ", " != "),
    (Op::NeToEq, " != ", " == "),
];

/// One place to mutate: a line of a file and what it becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The file, as given (relative to the workspace root).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    pub op: Op,
    /// The line as it is (without its line ending).
    pub original: String,
    /// The line as the mutant has it (empty for a deleted line).
    pub mutated: String,
}

/// What kind of block a `{` opened (`if` bodies have guards to delete;
/// nothing inside an `unsafe { }` block is mutated).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    If,
    Unsafe,
    Other,
}

/// Does the `{` at `at` in `code` open an `unsafe` block (`unsafe {`, as
/// rustfmt writes it), rather than the body of an `unsafe fn` or `unsafe
/// impl`?
fn opens_unsafe_block(code: &str, at: usize) -> bool {
    let before = code[..at].trim_end();
    before.strip_suffix("unsafe").is_some_and(|b| !b.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// `line` with the contents of string and character literals blanked out
/// (same length, so a position in one is a position in the other) and a
/// trailing `//` comment cut off. Raw strings are not handled (the driver
/// has none on lines worth mutating).
pub fn code_part(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => break,
            b'"' => {
                out.push(b'"');
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    let n = if b[i] == b'\\' { 2 } else { 1 };
                    out.extend(std::iter::repeat_n(b' ', n.min(b.len() - i)));
                    i += n;
                }
                if i < b.len() {
                    out.push(b'"');
                }
                i += 1;
                continue;
            }
            b'\'' => {
                // A character literal ('x', '\n', '\''), not a lifetime.
                let len = if b.get(i + 1) == Some(&b'\\') {
                    b.get(i + 3..).and_then(|r| r.iter().position(|&c| c == b'\'')).map(|p| p + 4)
                } else if b.get(i + 2) == Some(&b'\'') {
                    Some(3)
                } else {
                    None
                };
                if let Some(len) = len.filter(|&l| i + l <= b.len()) {
                    out.push(b'\'');
                    out.extend(std::iter::repeat_n(b' ', len - 2));
                    out.push(b'\'');
                    i += len;
                    continue;
                }
                out.push(b'\'');
            }
            c => out.push(c),
        }
        i += 1;
    }
    // Only ASCII bytes were put in place of others, one for one, and
    // whole multi-byte characters are either copied or all replaced.
    String::from_utf8_lossy(&out).into_owned()
}

/// Is this line (trimmed) one never to mutate?
fn skipped_line(t: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "//",
        "#[",
        "#![",
        "assert!",
        "assert_eq!",
        "assert_ne!",
        "debug_assert",
        "use ",
        "pub use ",
        "const ",
        "pub const ",
        "pub(crate) const ",
        "pub(super) const ",
        "static ",
        "kprint!",
        "mod ",
        "pub mod ",
    ];
    t.is_empty() || PREFIXES.iter().any(|p| t.starts_with(p)) || t.contains("unsafe")
}

/// Does this trimmed line open an `if` body (or an `else` of one)?
fn opens_if(t: &str) -> bool {
    t.starts_with("if ") || t.starts_with("} else if ") || t.starts_with("} else {") || t.starts_with("else ")
}

/// The condition of a one-line `if COND {` (or `} else if COND {`), if the
/// line is one and the condition can be negated (no `let`).
fn if_condition(t: &str) -> Option<(&str, &str)> {
    let (head, rest) = if let Some(r) = t.strip_prefix("} else if ") {
        ("} else if ", r)
    } else if let Some(r) = t.strip_prefix("if ") {
        ("if ", r)
    } else {
        return None;
    };
    let cond = rest.strip_suffix(" {")?;
    if cond.starts_with("let ") || cond.contains(" let ") || cond.contains('{') || cond.is_empty() {
        return None;
    }
    Some((head, cond))
}

/// Is this trimmed line a guard to delete: `return ...;` or `continue;`?
fn is_guard(t: &str) -> bool {
    t == "continue;" || t == "return;" || (t.starts_with("return ") && t.ends_with(';'))
}

/// Is this code part of a line (trimmed) a whole statement to delete: a
/// call (`f(x);`, `a.b(c)?;`) or an assignment (`a.b = c;`, `*p += n;`),
/// all on this line (its brackets balanced, no block in it), and not a
/// binding, a jump, a `drop` (deleting that only holds a guard longer, a
/// hang rather than a wrong answer) or an expression's value? `prev` is
/// how the code line before it ended: the statement must start here.
fn is_statement(t: &str, prev: Option<u8>) -> bool {
    const NOT: &[&str] = &[
        "let ",
        "return",
        "break",
        "continue",
        "drop(",
        "core::mem::drop(",
        "mem::forget(",
        "core::mem::forget(",
        "if ",
        "match ",
        "while ",
        "for ",
        "loop ",
        "else",
        "}",
        "Ok(",
        "Err(",
        "Some(",
        "None",
        "_ =",
        "type ",
        "pub type ",
    ];
    if !t.ends_with(';') || !matches!(prev, Some(b';' | b'{' | b'}')) || NOT.iter().any(|p| t.starts_with(p)) {
        return false;
    }
    let count = |c: char| t.chars().filter(|&x| x == c).count();
    if count('(') != count(')') || count('[') != count(']') || t.contains(['{', '}']) {
        return false;
    }
    let call = t.ends_with(");") || t.ends_with(")?;");
    let assign = [" = ", " += ", " -= ", " |= ", " &= ", " ^= "].iter().any(|op| t.contains(op));
    call || assign
}

/// Is the ` || ` at `at` in `code` the empty argument list of a closure
/// (`f(|| x)`, `move || x`, `= || x`) rather than an or?
fn closure_bars(code: &str, at: usize) -> bool {
    let before = code[..at].trim_end();
    before.is_empty() || before.ends_with(['(', ',', '=', '{']) || before.ends_with("move")
}

/// Every site of `text` (the file `file`), in line order, and within a
/// line in the order of the operators' positions; with `statements`, a
/// deleted statement too ([`Op::DeleteStatement`], last on its line).
pub fn scan(file: &str, text: &str, statements: bool) -> Vec<Site> {
    let lines: Vec<&str> = text.lines().collect();
    let mut sites = Vec::new();
    let mut stack: Vec<Block> = Vec::new();
    // Skip until the brace depth falls back to this (a `#[cfg(test)]`
    // item).
    let mut skip_to: Option<usize> = None;
    let mut pending_cfg_test = false;
    let mut pending_if = false;
    let mut in_block_comment = false;
    // How the last line of code ended (its last byte, comments cut).
    let mut prev_end: Option<u8> = None;
    for (n, raw) in lines.iter().enumerate() {
        let t = raw.trim();
        if in_block_comment {
            in_block_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with("/*") {
            in_block_comment = !t.contains("*/");
            continue;
        }
        let code = code_part(raw);
        let depth_before = stack.len();
        if t == "#[cfg(test)]" {
            pending_cfg_test = true;
        }
        let in_unsafe = stack.contains(&Block::Unsafe);
        let mutable = skip_to.is_none() && !in_unsafe && !pending_cfg_test && !skipped_line(t);
        if mutable {
            sites.extend(line_sites(file, n + 1, raw, &code, &stack, &lines[n + 1..]));
            if statements && !stack.is_empty() && is_statement(code.trim(), prev_end) {
                let original = raw.to_string();
                sites.push(Site {
                    file: file.to_string(),
                    line: n + 1,
                    op: Op::DeleteStatement,
                    original,
                    mutated: String::new(),
                });
            }
        }
        if let Some(&last) = code.trim_end().as_bytes().last() {
            prev_end = Some(last);
        }
        // Braces: what each `{` opens.
        let kind = if opens_if(t) || pending_if { Block::If } else { Block::Other };
        let starts_skip = skip_to.is_none() && pending_cfg_test && code.contains('{');
        for (at, c) in code.bytes().enumerate() {
            match c {
                b'{' if opens_unsafe_block(&code, at) => stack.push(Block::Unsafe),
                b'{' => stack.push(kind),
                b'}' => {
                    stack.pop();
                }
                _ => {}
            }
        }
        if t.starts_with("if ") && !code.contains('{') {
            pending_if = true;
        } else if code.contains('{') {
            pending_if = false;
        }
        if starts_skip {
            pending_cfg_test = false;
            if stack.len() > depth_before {
                skip_to = Some(depth_before);
            }
        } else if pending_cfg_test && code.trim_end().ends_with(';') {
            // `#[cfg(test)] mod tests;` or a one-line item.
            pending_cfg_test = false;
        }
        if skip_to.is_some_and(|d| stack.len() <= d) && !starts_skip {
            skip_to = None;
        }
    }
    sites
}

/// The sites of one line.
fn line_sites(file: &str, line: usize, raw: &str, code: &str, stack: &[Block], rest: &[&str]) -> Vec<Site> {
    let t = raw.trim();
    let indent = &raw[..raw.len() - raw.trim_start().len()];
    let site = |op, mutated: String| Site { file: file.to_string(), line, op, original: raw.to_string(), mutated };
    let mut out = Vec::new();
    if let Some((head, cond)) = if_condition(code.trim()) {
        // The condition from the raw line (the code part blanks strings).
        let start = raw.find(head).map(|p| p + head.len()).unwrap_or(0);
        let raw_cond = &raw[start..start + cond.len()];
        out.push(site(Op::Negate, format!("{indent}{head}!({raw_cond}) {{")));
    }
    // `&&` in a let chain (`if let P = x && c`) cannot become `||`.
    let conditional = t.starts_with("if ") || t.starts_with("} else if ") || t.starts_with("while ");
    let let_chain = conditional && (code.contains(" let ") || t.starts_with("if let ") || t.starts_with("while let "));
    for &(op, from, to) in BINARY {
        let mut from_pos = 0;
        while let Some(p) = code[from_pos..].find(from) {
            let at = from_pos + p;
            from_pos = at + 1;
            if op == Op::OrToAnd && closure_bars(code, at) {
                continue;
            }
            if matches!(op, Op::AndToOr | Op::OrToAnd) && let_chain {
                continue;
            }
            out.push(site(op, format!("{}{}{}", &raw[..at], to, &raw[at + from.len()..])));
        }
    }
    let mut from_pos = 0;
    while let Some(p) = code[from_pos..].find(" += 1") {
        let at = from_pos + p;
        from_pos = at + 1;
        let after = code.as_bytes().get(at + 5);
        if after.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.') {
            continue;
        }
        out.push(site(Op::IncByZero, format!("{} += 0{}", &raw[..at], &raw[at + 5..])));
    }
    if is_guard(code.trim()) && stack.last() == Some(&Block::If) {
        let next = rest.iter().map(|l| l.trim()).find(|l| !l.is_empty() && !l.starts_with("//"));
        if next.is_some_and(|l| l.starts_with('}')) {
            out.push(site(Op::DeleteGuard, String::new()));
        }
    }
    out
}

/// `text` with `site`'s line replaced by its mutation (a deleted line
/// leaves an empty one, so the line numbers stay). Errors if the line is
/// not what the site says (the file changed since the scan).
pub fn apply(text: &str, site: &Site) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut found = false;
    for (n, piece) in text.split_inclusive('\n').enumerate() {
        if n + 1 == site.line {
            let body = piece.trim_end_matches(['\n', '\r']);
            if body != site.original {
                return Err(format!("{}:{}: the line is no longer {:?}", site.file, site.line, site.original));
            }
            out.push_str(&site.mutated);
            out.push_str(&piece[body.len()..]);
            found = true;
        } else {
            out.push_str(piece);
        }
    }
    if !found {
        return Err(format!("{}:{}: no such line", site.file, site.line));
    }
    Ok(out)
}

/// splitmix64: a small generator whose sequence depends only on the seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `count` distinct indices into `0..len` chosen by `seed` (all of them if
/// `count >= len`), in increasing order.
pub fn pick(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    let mut state = seed;
    let take = count.min(len);
    for i in 0..take {
        let j = i + (next(&mut state) % (len - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut chosen = idx[..take].to_vec();
    chosen.sort_unstable();
    chosen
}

/// What became of one mutant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The mutated source did not compile (not counted as caught).
    NotBuilt,
    /// A test binary failed (or ran past its time limit).
    CaughtByTest { test: String, timeout: bool },
    /// Every test passed; the explorer failed it (`failed`: its failing
    /// schedules per mode, from its summary, as `free 2/30, det 0/30`).
    /// (An explorer run past the time limit is an `Error`: it detects
    /// hangs itself, so running long only says the machine was slow.)
    CaughtByExplorer { failed: String },
    /// Everything in the battery passed.
    Survived,
    /// The battery could not run (a program would not start, say).
    Error(String),
}

/// One mutant's line in the report.
#[derive(Clone, Debug)]
pub struct Record {
    /// `M<k>`.
    pub id: String,
    pub site: Site,
    pub outcome: Outcome,
}

/// `s` inside a Markdown table cell as code: `|` escaped, backticks kept
/// out of the span's delimiters.
fn cell_code(s: &str) -> String {
    let s = s.trim().replace('|', "\\|");
    if s.is_empty() { "(deleted)".to_string() } else { format!("`{s}`") }
}

/// The report: `header` (what was run), the counts, then a table of every
/// mutant.
pub fn report(records: &[Record], header: &str) -> String {
    let count = |f: &dyn Fn(&Outcome) -> bool| records.iter().filter(|r| f(&r.outcome)).count();
    let built = records.len() - count(&|o| *o == Outcome::NotBuilt);
    let by_test = count(&|o| matches!(o, Outcome::CaughtByTest { .. }));
    let by_explorer = count(&|o| matches!(o, Outcome::CaughtByExplorer { .. }));
    let survived = count(&|o| *o == Outcome::Survived);
    let errors = count(&|o| matches!(o, Outcome::Error(_)));
    let mut s = String::from("# Mutants\n\n");
    s.push_str(&format!("{header}\n\n"));
    s.push_str(&format!(
        "{} mutants, {built} built, {by_test} caught by a test, {by_explorer} caught only by the explorer, \
         {survived} survived, {errors} errors.\n\n",
        records.len()
    ));
    s.push_str("| mutant | site | operator | original | mutated | outcome |\n");
    s.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for r in records {
        let outcome = match &r.outcome {
            Outcome::NotBuilt => "did not build".to_string(),
            Outcome::CaughtByTest { test, timeout: false } => format!("caught by `{test}`"),
            Outcome::CaughtByTest { test, timeout: true } => format!("caught by `{test}` (time limit)"),
            Outcome::CaughtByExplorer { failed } => format!("caught by the explorer ({failed})"),
            Outcome::Survived => "**survived**".to_string(),
            Outcome::Error(e) => format!("error: {}", e.replace('|', "\\|")),
        };
        s.push_str(&format!(
            "| {} | {}:{} | {} | {} | {} | {} |\n",
            r.id,
            r.site.file,
            r.site.line,
            r.site.op.name().replace('|', "\\|"),
            cell_code(&r.site.original),
            cell_code(&r.site.mutated),
            outcome
        ));
    }
    s
}

/// The explorer's failing schedules per mode, from the summary table it
/// prints (`mode  schedules  violations  hangs  crashes  failed`, then a
/// row per mode): `free 2/30, det 0/30`; empty if there is none.
pub fn explorer_failures(log: &str) -> String {
    let mut parts = Vec::new();
    for line in log.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() == 6
            && (cols[0] == "free" || cols[0] == "det")
            && cols[1..].iter().all(|c| c.parse::<u64>().is_ok())
        {
            parts.push(format!("{} {}/{}", cols[0], cols[5], cols[1]));
        }
    }
    parts.join(", ")
}

/// The test executables cargo built, from `cargo test --no-run
/// --message-format=json`: (target name, path) of each artifact of kind
/// `test` that has an executable.
pub fn test_executables(json_lines: &str) -> Vec<(String, String)> {
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)? + key.len();
        let end = line[at..].find('"')?;
        Some(line[at..at + end].to_string())
    };
    let mut out = Vec::new();
    for line in json_lines.lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"") || !line.contains("\"kind\":[\"test\"]") {
            continue;
        }
        let Some(target) = line.find("\"target\":{").map(|p| &line[p..]) else { continue };
        let (Some(name), Some(exe)) = (field(target, "\"name\":\""), field(line, "\"executable\":\"")) else {
            continue;
        };
        out.push((name, exe.replace("\\\\", "\\")));
    }
    out
}

/// `xtask mutants`'s options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub files: Vec<String>,
    pub count: usize,
    pub seed: u64,
    pub tests: Vec<String>,
    /// The explorer's runs, in order: each one's arguments (besides
    /// `--driver`, `--jobs`, `--out`), so one battery can run several
    /// profiles.
    pub chaos: Vec<String>,
    /// The first mutant's number (`M<first>`).
    pub first: usize,
    /// Where the images, logs and report go (relative to the root).
    pub out: String,
    /// Seconds each test binary or explorer run may take.
    pub timeout: u64,
    /// Only list the sites and the ones picked.
    pub list: bool,
    /// Run the battery against the unmutated build first.
    pub baseline: bool,
    /// `--lines FILE:FROM-TO`: only the sites of those lines of that file
    /// (inclusive; a file named in none keeps all its sites).
    pub lines: Vec<(String, usize, usize)>,
    /// `--statements`: deleted statements are sites too.
    pub statements: bool,
    /// `--only-statements`: they are the only sites.
    pub only_statements: bool,
    /// `--resume K`: the picked mutants before `M<K>` are not run (a run
    /// that stopped, resumed with the same arguments).
    pub resume: usize,
}

/// `path` as `--file` and a site's file are compared: forward slashes, no
/// leading `./`.
fn normalize(path: &str) -> String {
    path.replace('\\', "/").trim_start_matches("./").to_string()
}

/// `FILE:FROM-TO` (or `FILE:LINE`) of `--lines`.
fn parse_lines(v: &str) -> Result<(String, usize, usize), String> {
    let bad = || format!("--lines {v}: want FILE:FROM-TO or FILE:LINE");
    let (file, range) = v.rsplit_once(':').ok_or_else(bad)?;
    let (from, to) = range.split_once('-').unwrap_or((range, range));
    let (from, to) = (from.parse::<usize>().map_err(|_| bad())?, to.parse::<usize>().map_err(|_| bad())?);
    if file.is_empty() || from == 0 || to < from {
        return Err(bad());
    }
    Ok((normalize(file), from, to))
}

/// The sites `lines` (`Options::lines`) keeps.
pub fn keep_lines(sites: Vec<Site>, lines: &[(String, usize, usize)]) -> Vec<Site> {
    sites
        .into_iter()
        .filter(|s| {
            let mut ranges = lines.iter().filter(|(f, _, _)| *f == normalize(&s.file)).peekable();
            ranges.peek().is_none() || ranges.any(|&(_, from, to)| (from..=to).contains(&s.line))
        })
        .collect()
}

pub const USAGE: &str = "xtask mutants --file PATH [--file PATH...] [--count N] [--seed S]
       [--test NAME...] [--chaos \"ARGS\"...] [--first K] [--out DIR] [--timeout SECS]
       [--lines FILE:FROM-TO...] [--statements | --only-statements] [--resume K] [--no-baseline] [--list]";

/// The source folders compiled into the kernel image: the driver's, and
/// the logic and wire-format crates it is built with (each mutant is built
/// as an image, so nothing else would change what the battery runs).
const MUTABLE: [&str; 3] = ["driver/src/", "logic/src/", "proto/src/"];

/// Parses `xtask mutants`'s arguments.
pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        files: Vec::new(),
        count: 10,
        seed: 1,
        tests: Vec::new(),
        chaos: Vec::new(),
        first: 1,
        out: "target/mutants".to_string(),
        timeout: 900,
        list: false,
        baseline: true,
        lines: Vec::new(),
        statements: false,
        only_statements: false,
        resume: 0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value\n\nusage: {USAGE}"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--file" => o.files.push(value()?),
            "--count" => o.count = number(value()?)? as usize,
            "--seed" => o.seed = number(value()?)?,
            "--test" => o.tests.push(value()?),
            "--chaos" => o.chaos.push(value()?),
            "--first" => o.first = number(value()?)? as usize,
            "--out" => o.out = value()?,
            "--timeout" => o.timeout = number(value()?)?,
            "--list" => o.list = true,
            "--no-baseline" => o.baseline = false,
            "--statements" => o.statements = true,
            "--only-statements" => (o.statements, o.only_statements) = (true, true),
            "--resume" => o.resume = number(value()?)? as usize,
            "--lines" => o.lines.push(parse_lines(&value()?)?),
            other => return Err(format!("unknown argument {other:?}\n\nusage: {USAGE}")),
        }
    }
    if o.files.is_empty() {
        return Err(format!("no --file given\n\nusage: {USAGE}"));
    }
    for f in &o.files {
        let norm = f.replace('\\', "/");
        let norm = norm.trim_start_matches("./");
        if !MUTABLE.iter().any(|dir| norm.starts_with(dir)) || !norm.ends_with(".rs") {
            return Err(format!(
                "{f}: only the sources compiled into the driver's image ({}**.rs) are mutated",
                MUTABLE.join("**.rs, ")
            ));
        }
    }
    if let Some((f, _, _)) = o.lines.iter().find(|(f, _, _)| !o.files.iter().any(|g| normalize(g) == *f)) {
        return Err(format!("--lines {f}: not a --file"));
    }
    if !o.list && o.tests.is_empty() && o.chaos.is_empty() {
        return Err("no battery: give --test NAME and/or --chaos \"ARGS\"".to_string());
    }
    Ok(o)
}

#[cfg(test)]
mod tests;
