//! rawnicctl, the program: all of it is in the library (src/lib.rs), whose
//! command line the package's tests also read.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    rawnicctl::main()
}
