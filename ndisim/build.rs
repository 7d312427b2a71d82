//! Notes whether ndisim is built with AddressSanitizer (`cargo make
//! chaos-asan`), whose larger frames change what ndisim's own code leaves
//! on the driver's kernel stack (`stack::DEFAULT_BUDGET`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ndisim_asan)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.split('\x1f').any(|f| f.ends_with("sanitizer=address")) {
        println!("cargo::rustc-cfg=ndisim_asan");
    }
}
