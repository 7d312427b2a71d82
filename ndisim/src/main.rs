fn main() {
    eprintln!("ndisim: not built yet");
    std::process::exit(2);
}
