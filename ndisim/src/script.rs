//! The command line (filled in below).

/// Runs the command line; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("ndisim: the command line is not built yet");
    2
}
