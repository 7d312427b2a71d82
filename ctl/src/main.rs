//! rawnicctl: the command-line control app for rawnic. `rawnicctl help`
//! lists the commands; every command has `--help`.
#![forbid(unsafe_code)]

mod args;
mod arping;
mod common;
mod info;
mod recv;
mod selftest;
mod send;

use args::Command;
use common::{Ctx, Fail};
use std::process::ExitCode;

fn run(cli: args::Cli, escapes: bool) -> Result<(), Fail> {
    let name = match &cli.command {
        Command::Help(_) | Command::ClientVersion => "",
        Command::Version => "version",
        Command::List => "list",
        Command::Wait { .. } => "wait",
        Command::Send(_) => "send",
        Command::Recv(_) => "recv",
        Command::Oid(_) => "oid",
        Command::Stats => "stats",
        Command::Watch(_) => "watch",
        Command::Arping(_) => "arping",
        Command::Selftest(_) => "selftest",
    };
    let ctx = Ctx { global: cli.global, cmd: name, escapes };
    match &cli.command {
        Command::Help(None) => ctx.out(args::main_help()),
        Command::Help(Some(c)) => ctx.out(args::cmd_help(c)),
        Command::ClientVersion => ctx.out(format!("rawnicctl {}", env!("CARGO_PKG_VERSION"))),
        Command::Version => info::version(&ctx),
        Command::List => info::list(&ctx),
        Command::Wait { timeout } => info::wait(&ctx, *timeout),
        Command::Send(a) => send::send(&ctx, a),
        Command::Recv(a) => recv::recv(&ctx, a),
        Command::Oid(a) => info::oid(&ctx, a),
        Command::Stats => info::stats(&ctx),
        Command::Watch(a) => info::watch(&ctx, a),
        Command::Arping(a) => arping::arping(&ctx, a),
        Command::Selftest(a) => selftest::selftest(&ctx, a),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // On Windows, makes the console interpret the progress line's escape
    // sequences (and restores its mode when dropped, at the end of main).
    let escapes = rawnic_client::console::StderrEscapes::enable();
    let result = args::parse(&argv).map_err(Fail::Usage).and_then(|cli| run(cli, escapes.work()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(u)) => {
            eprintln!("{u}");
            ExitCode::from(2)
        }
        Err(Fail::Error(msg)) => {
            eprintln!("rawnicctl: {msg}");
            ExitCode::FAILURE
        }
        Err(Fail::StdoutClosed) => ExitCode::SUCCESS,
    }
}
