//! ndisim: runs the real, unmodified rawnic.sys in a Linux process.
fn main() {
    std::process::exit(ndisim::script::main(std::env::args().skip(1).collect()));
}
