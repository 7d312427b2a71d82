//! rawnicctl: the command-line control app for rawnic.

const HELP: &str = "rawnicctl: raw Ethernet access through the rawnic driver

usage: rawnicctl [--device PATH|unix:SOCKET] <command> [options]

commands:
  list       list the bindings
  help       print this help";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("help") | Some("-h") | Some("--help") => println!("{HELP}"),
        Some(other) => {
            eprintln!("rawnicctl: unknown command {other:?}; see `rawnicctl help`");
            std::process::exit(2);
        }
    }
}
