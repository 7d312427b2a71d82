//! The package's PowerShell scripts (`scripts/windows/`). PowerShell cannot
//! run here, so this checks what can be checked without it: each script
//! parses (tree-sitter's PowerShell grammar) with nothing newer than
//! PowerShell 5.1, runs only the programs, options and cmdlets listed in
//! `scripts/windows/allowed-commands.txt`, names only files the package
//! has, and does the steps issue 11 asks of it.

use rawnic_tests::inf::Inf;
use rawnic_tests::ps::{self, Arg, Command};
use rawnic_tests::{package_dir, root};
use std::collections::BTreeMap;
use xtask::package::{FILES, SCRIPTS};

fn source(name: &str) -> String {
    std::fs::read_to_string(root().join("scripts/windows").join(name)).unwrap()
}

fn commands(name: &str) -> Vec<Command> {
    ps::commands(&source(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The runs of `program` in `name`, each as its arguments' text.
fn runs(name: &str, program: &str) -> Vec<Vec<String>> {
    commands(name)
        .into_iter()
        .filter(|c| c.name.eq_ignore_ascii_case(program))
        .map(|c| {
            c.args
                .into_iter()
                .map(|a| match a {
                    Arg::Parameter(t) | Arg::Word(t) | Arg::Number(t) | Arg::Operand(t) => t,
                })
                .collect()
        })
        .collect()
}

fn has_run(name: &str, program: &str, args: &[&str]) -> bool {
    runs(name, program).iter().any(|r| r.iter().map(String::as_str).eq(args.iter().copied()))
}

#[derive(Debug)]
enum Allowed {
    /// A program and the bare words (options, keywords) it may be given.
    Exe(Vec<String>),
    /// A cmdlet and the parameters it may be given.
    Cmdlet(Vec<String>),
}

fn allowed() -> BTreeMap<String, Allowed> {
    let mut out = BTreeMap::new();
    for line in source("allowed-commands.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (kind, name) = (words.next().unwrap(), words.next().expect("a command name").to_ascii_lowercase());
        let rest: Vec<String> = words.map(str::to_string).collect();
        let entry = match kind {
            "exe" => Allowed::Exe(rest),
            "cmdlet" => Allowed::Cmdlet(rest.iter().map(|p| p.to_ascii_lowercase()).collect()),
            _ => panic!("allowed-commands.txt: unknown kind in {line:?}"),
        };
        assert!(out.insert(name.clone(), entry).is_none(), "allowed-commands.txt lists {name} twice");
    }
    out
}

/// The file names in `text`: words ending in an extension the package
/// uses (`rawnic.sys`, `.\rawnicctl.exe`).
fn file_names(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .filter(|w| !w.starts_with('.'))
        .filter(|w| {
            [".sys", ".inf", ".cat", ".exe", ".cer", ".ps1"].iter().any(|e| w.to_ascii_lowercase().ends_with(e))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_scripts_parse_as_powershell_5_1() {
    for name in SCRIPTS {
        let text = source(name);
        assert!(text.starts_with("#Requires -Version 5.1"), "{name} does not start with #Requires -Version 5.1");
        // PowerShell 5.1 reads a file without a BOM in the ANSI code page.
        assert!(text.is_ascii(), "{name} has non-ASCII characters");
        let tree = ps::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kinds = ps::kinds(&tree);
        // && and || between pipelines are PowerShell 7.
        assert!(!kinds.contains(&"pipeline_chain_tail"), "{name} chains pipelines with && or ||");
        assert!(!text.contains("??"), "{name} uses ?? or ??= (PowerShell 7)");
        assert!(kinds.contains(&"trap_statement"), "{name} has no trap: an error would not stop it with a message");
        assert!(text.contains("$ErrorActionPreference = 'Stop'"), "{name} does not stop at the first error");
        assert!(text.contains("Set-StrictMode"), "{name} does not set strict mode");
    }
}

#[test]
fn the_scripts_run_only_listed_commands_and_options() {
    let allowed = allowed();
    for name in SCRIPTS {
        let own = ps::functions(&source(name)).unwrap();
        let mut used = 0;
        for c in commands(name) {
            let at = format!("{name}:{}: {}", c.line, c.name);
            if own.iter().any(|f| f.eq_ignore_ascii_case(&c.name)) {
                continue;
            }
            match allowed.get(&c.name.to_ascii_lowercase()) {
                None => panic!("{at} is not in allowed-commands.txt"),
                Some(Allowed::Cmdlet(params)) => {
                    for a in &c.args {
                        if let Arg::Parameter(p) = a {
                            assert!(params.contains(&p.to_ascii_lowercase()), "{at}: parameter {p} is not listed");
                        }
                    }
                }
                Some(Allowed::Exe(words)) => {
                    used += 1;
                    for a in &c.args {
                        if let Arg::Parameter(w) | Arg::Word(w) = a {
                            let listed = words.iter().any(|x| x.eq_ignore_ascii_case(w));
                            let packaged = file_names(w).first().is_some_and(|f| f == w && FILES.contains(&f.as_str()));
                            assert!(listed || packaged, "{at}: {w} is neither a listed option nor a package file");
                        }
                    }
                }
            }
        }
        assert!(used > 0, "{name} runs no program");
    }
}

#[test]
fn every_file_a_script_names_is_in_the_package() {
    let dir = package_dir();
    for name in SCRIPTS {
        assert!(FILES.contains(name), "{name} is not one of the package's files");
        let packaged = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name} in the package: {e}"));
        assert_eq!(packaged, source(name).as_bytes(), "the package's {name} is not scripts/windows/{name}");
        let text = source(name);
        let mut named: Vec<String> = ps::strings(&text).unwrap().iter().flat_map(|s| file_names(s)).collect();
        for c in commands(name) {
            named.extend(file_names(&c.name));
            for a in c.args {
                if let Arg::Word(w) = a {
                    named.extend(file_names(&w));
                }
            }
        }
        assert!(!named.is_empty(), "{name} names no file");
        for file in named {
            assert!(FILES.contains(&file.as_str()), "{name} names {file}, which the package does not have");
            assert!(dir.join(&file).is_file(), "{name} names {file}, missing from {}", dir.display());
        }
    }
}

/// The component ID that netcfg installs (`-i`) and uninstalls (`-u`).
fn component_id() -> String {
    let inf = Inf::parse(&std::fs::read_to_string(root().join("inf/rawnic.inf")).unwrap()).unwrap();
    let manufacturer = &inf.section("Manufacturer").unwrap()[0].values;
    let models = inf.section(&format!("{}.{}", manufacturer[0], manufacturer[1])).unwrap();
    models[0].values[1].clone()
}

#[test]
fn install_checks_trusts_stages_installs_waits_and_tests() {
    const S: &str = "Install-Rawnic.ps1";
    let text = source(S);
    assert!(text.contains("WindowsBuiltInRole]::Administrator"), "no administrator check");
    assert!(has_run(S, "bcdedit", &["/enum", "'{current}'"]), "test signing is not read with bcdedit");
    for told in ["bcdedit /set testsigning on", "reboot"] {
        assert!(text.contains(told), "the test-signing message does not say {told:?}");
    }
    let imports = runs(S, "Import-Certificate");
    assert_eq!(imports.len(), 1, "one Import-Certificate, in a loop over the stores");
    assert!(text.contains("foreach ($Store in 'Root', 'TrustedPublisher')"), "both stores");
    assert!(text.contains("\"Cert:\\LocalMachine\\$Store\""), "the machine's stores");
    assert!(has_run(S, "pnputil", &["/add-driver", "$Inf"]));
    let id = component_id();
    assert!(has_run(S, "netcfg", &["-l", "$Inf", "-c", "p", "-i", &id]), "netcfg -l rawnic.inf -c p -i {id}");
    assert!(text.contains("$Inf = Join-Path $PSScriptRoot 'rawnic.inf'"));
    assert!(text.contains("\\\\.\\RawNic"), "does not say it waits for \\\\.\\RawNic");
    assert!(has_run(S, ".\\rawnicctl.exe", &["selftest"]), "does not run rawnicctl selftest");
    // The order: trust, stage, install, wait, self-test.
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} not found"));
    let order = [
        "bcdedit /enum",
        "Import-Certificate",
        "pnputil /add-driver $Inf",
        "netcfg -l",
        "rawnicctl.exe version",
        ".\\rawnicctl.exe selftest",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "the steps are out of order: {order:?}");
}

#[test]
fn uninstall_removes_the_protocol_the_package_and_the_certificates() {
    const S: &str = "Uninstall-Rawnic.ps1";
    let text = source(S);
    assert!(has_run(S, "netcfg", &["-u", &component_id()]));
    assert!(has_run(S, "pnputil", &["/enum-drivers"]));
    assert!(has_run(S, "pnputil", &["/delete-driver", "$Oem", "/uninstall"]));
    assert!(
        text.contains("'rawnic.inf'") && text.contains("^oem\\d+\\.inf$"),
        "finds the staged oemNN.inf of rawnic.inf"
    );
    assert!(text.contains("foreach ($Store in 'Root', 'TrustedPublisher')"), "both stores");
    assert_eq!(runs(S, "Remove-Item").len(), 1, "removes the certificates");
}

#[test]
fn enable_verifier_asks_for_the_standard_settings_and_ndis_rules() {
    const S: &str = "Enable-Verifier.ps1";
    let verifier = runs(S, "verifier");
    let set =
        verifier.iter().find(|r| r.first().map(String::as_str) == Some("/ruleclasses")).expect("verifier /ruleclasses");
    let (classes, rest) = set[1..].split_at(set.iter().position(|a| a == "/driver").unwrap() - 1);
    // verifier /standard is rule classes 1 2 4 5 6 8 9 12 18; 22 is NDIS/WIFI verification.
    assert_eq!(classes, ["1", "2", "4", "5", "6", "8", "9", "12", "18", "22"]);
    assert_eq!(rest, ["/driver", "rawnic.sys"]);
    for query in ["/query", "/querysettings"] {
        assert!(verifier.iter().any(|r| r == &[query]), "no verifier {query}");
    }
    assert!(source(S).contains("Reboot"), "does not say a reboot is needed");
}

#[test]
fn the_allowed_list_is_used() {
    // Every program and cmdlet listed is run by some script: the list says
    // what the scripts do, not what they might.
    let all: Vec<Command> = SCRIPTS.iter().flat_map(|s| commands(s)).collect();
    for name in allowed().keys() {
        assert!(
            all.iter().any(|c| c.name.eq_ignore_ascii_case(name)),
            "allowed-commands.txt lists {name}, which no script runs"
        );
    }
}

#[test]
fn rawnicctl_has_the_commands_and_options_the_scripts_use() {
    // rawnicctl's own command line (clap) says what it takes.
    let cli = rawnicctl::cli::command();
    let mut used = 0;
    for name in SCRIPTS {
        for run in runs(name, ".\\rawnicctl.exe") {
            let command = &run[0];
            let sub =
                cli.find_subcommand(command).unwrap_or_else(|| panic!("{name}: rawnicctl has no command {command}"));
            for option in run.iter().filter_map(|a| a.strip_prefix("--")) {
                // Global options are declared on rawnicctl itself.
                let takes = sub.get_arguments().chain(cli.get_arguments()).any(|a| a.get_long() == Some(option));
                assert!(takes, "{name}: rawnicctl {command} has no option --{option}");
            }
            used += 1;
        }
    }
    assert!(used >= 3, "the install script runs rawnicctl version, wait and selftest");
}
