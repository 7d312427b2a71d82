//! Lists the adapters rawnic is bound to.
//!
//!     RAWNIC_DEVICE=unix:/tmp/rawnic.sock cargo run -p rawnic-client --example list
//!
//! (On Windows the default device is `\\.\RawNic`.)

use rawnic_client::Device;
use rawnic_client::oid::format_speed;

fn main() -> Result<(), rawnic_client::Error> {
    let dev = Device::open_default()?;
    let v = dev.version()?;
    println!("driver {}.{}.{}, wire format {}", v.driver.0, v.driver.1, v.driver.2, v.proto_version);
    for b in dev.list()? {
        println!(
            "{}: {} ({}) {} link {} {} mtu {} mac {}",
            b.index,
            b.name,
            b.description,
            b.state_name(),
            b.link_name(),
            format_speed(b.xmit_speed),
            b.mtu,
            b.mac
        );
    }
    Ok(())
}
