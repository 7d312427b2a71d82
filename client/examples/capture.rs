//! Captures frames from an adapter into a pcapng file.
//!
//!     cargo run -p rawnic-client --example capture -- ADAPTER FILE [COUNT]
//!
//! The device is `RAWNIC_DEVICE` (or `\\.\RawNic` on Windows).

use rawnic_client::pcapng::{Interface, PcapngWriter};
use rawnic_client::{Device, OpenOptions};
use std::io::BufWriter;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (adapter, file) = match (args.first(), args.get(1)) {
        (Some(a), Some(f)) => (a, f),
        _ => return Err("usage: capture ADAPTER FILE [COUNT]".into()),
    };
    let count: u64 = args.get(2).map(|c| c.parse()).transpose()?.unwrap_or(10);
    let dev = Device::open_default()?;
    dev.open_binding(&OpenOptions::new(adapter))?;
    let out = BufWriter::new(std::fs::File::create(file)?);
    let mut pcap = PcapngWriter::new(out, &Interface { name: Some(adapter), ..Interface::default() })?;
    while pcap.packets() < count {
        // A timeout keeps the loop responsive; a read that times out
        // returns no frames.
        for f in dev.read_records(1 << 20, Some(Duration::from_secs(1)))?.iter() {
            // Put back any 802.1Q tag the NIC stripped.
            let (wire, origlen) = f.wire_bytes();
            pcap.write_packet(f.timestamp_ns(), origlen, &wire)?;
        }
        pcap.flush()?;
    }
    println!("wrote {} frames to {file}", pcap.packets());
    Ok(())
}
