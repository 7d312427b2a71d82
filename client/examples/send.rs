//! Sends COUNT broadcast frames of the local experimental EtherType in
//! batches; the library splits them into the driver's batches and resends
//! what the driver could not take at once.
//!
//!     cargo run -p rawnic-client --example send -- ADAPTER [COUNT]

use rawnic_client::ether::{ETHERTYPE_EXPERIMENTAL, build_frame};
use rawnic_client::{Device, MacAddr, OpenOptions, SendFrame};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let adapter = args.first().ok_or("usage: send ADAPTER [COUNT]")?;
    let count: usize = args.get(1).map(|c| c.parse()).transpose()?.unwrap_or(1000);
    let dev = Device::open_default()?;
    let info = dev.open_binding(&OpenOptions::new(adapter).send_only())?;
    let frames: Vec<Vec<u8>> = (0..count as u32)
        .map(|i| build_frame(MacAddr::BROADCAST, info.mac, ETHERTYPE_EXPERIMENTAL, &i.to_be_bytes()))
        .collect();
    let batch: Vec<SendFrame<'_>> = frames.iter().map(|f| SendFrame { data: f, tci: None }).collect();
    let s = dev.send_batch(&batch)?;
    println!(
        "sent {} frames ({} bytes) in {} requests ({} only partly taken)",
        s.frames, s.bytes, s.batches, s.partial
    );
    let st = dev.stats()?;
    println!("binding: {} frames sent, {} in flight", st.binding.tx_frames, st.binding.tx_in_flight);
    Ok(())
}
