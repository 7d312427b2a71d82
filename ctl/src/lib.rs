//! rawnicctl: the command-line control app for rawnic. `rawnicctl help`
//! lists the commands; every command has `--help`.
//!
//! The command line is `cli` (clap); each command is a module that runs it
//! on a `Device` and prints text, or JSON through the types of `json`.
#![forbid(unsafe_code)]

pub mod cli;

mod arping;
mod common;
mod info;
mod json;
mod recv;
mod ring;
mod selftest;
mod send;

use cli::{Command, Invocation};
use common::{Ctx, Fail};
use std::io::Write;
use std::process::ExitCode;

fn run(inv: Invocation, escapes: bool) -> Result<(), Fail> {
    let ctx = Ctx { global: inv.global, cmd: inv.command.name(), escapes };
    match &inv.command {
        Command::Help => cli::command().print_long_help().map_err(common::stdout_failed),
        Command::Completions(shell) => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), "rawnicctl", &mut script);
            ctx.write(&script)
        }
        Command::Version => info::version(&ctx),
        Command::List => info::list(&ctx),
        Command::Wait(a) => info::wait(&ctx, a.timeout),
        Command::Send(a) => send::send(&ctx, a),
        Command::Recv(a) => recv::recv(&ctx, a),
        Command::Compile(expr) => recv::compile(&ctx, expr),
        Command::Oid(a) => info::oid(&ctx, a),
        Command::Stats => info::stats(&ctx),
        Command::Watch(a) => info::watch(&ctx, a),
        Command::Arping(a) => arping::arping(&ctx, a),
        Command::Selftest(a) => selftest::selftest(&ctx, a),
    }
}

/// Runs rawnicctl on the process's arguments.
pub fn main() -> ExitCode {
    // On Windows, makes the console interpret the progress line's escape
    // sequences (and restores its mode when dropped, at the end of main).
    let escapes = rawnic_client::console::StderrEscapes::enable();
    let result = match cli::parse(std::env::args_os()) {
        Ok(inv) => run(inv, escapes.work()),
        // Help and --version too: clap prints them on stdout, exit status 0.
        Err(e) => Err(Fail::Usage(e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(e)) => {
            // Nothing more can be said if stdout or stderr is closed.
            let _ = e.print();
            let _ = std::io::stdout().flush();
            ExitCode::from(e.exit_code().clamp(0, 255) as u8)
        }
        Err(Fail::Error(msg)) => {
            eprintln!("rawnicctl: {msg}");
            ExitCode::FAILURE
        }
        Err(Fail::StdoutClosed) => ExitCode::SUCCESS,
    }
}
