//! Serves the test fake of rawnic (not the real driver) on a socket, to try
//! rawnicctl or the examples without ndisim: two adapters, a frame on each
//! every second, an ARP responder for 10.0.0.1 on the first, and a link
//! flap every ten seconds.
//!
//!     cargo run -p rawnic-client --features fake --example fake_bridge
//!     RAWNIC_DEVICE=unix:... rawnicctl list

#[cfg(not(unix))]
fn main() {
    eprintln!("the fake bridge serves a Unix-domain socket; it runs on Unix only");
    std::process::exit(1);
}

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    use rawnic_client::MacAddr;
    use rawnic_client::fake::{FakeAdapter, FakeDriver, test_frame};
    use rawnic_client::rawnic_proto::event;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    let a = MacAddr([2, 0, 0, 0, 0, 1]);
    let b = MacAddr([2, 0, 0, 0, 0, 2]);
    let fake = FakeDriver::start(vec![FakeAdapter::new("fake0", a), FakeAdapter::new("fake1", b)])?;
    fake.answer_arp(1, Ipv4Addr::new(10, 0, 0, 1), MacAddr([2, 0, 0, 0, 0, 0x99]));
    println!("RAWNIC_DEVICE={}", fake.device_path());
    for i in 0u32.. {
        std::thread::sleep(Duration::from_secs(1));
        fake.inject(1, &test_frame(b, 0x88b5, &i.to_be_bytes()), None);
        fake.inject(2, &test_frame(a, 0x88b5, &i.to_be_bytes()), Some(5));
        if i % 10 == 9 {
            fake.raise_event(event::LINK_DOWN, 1, 0, 0);
            fake.raise_event(event::LINK_UP, 1, 1_000_000_000, 0);
        }
    }
    Ok(())
}
