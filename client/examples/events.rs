//! Prints the driver's events for a minute; a second thread stops the wait
//! early with a Canceller when stdin reaches its end.
//!
//!     cargo run -p rawnic-client --example events

use rawnic_client::Device;
use std::io::Read;
use std::time::Duration;

fn main() -> Result<(), rawnic_client::Error> {
    let dev = Device::open_default()?;
    let canceller = dev.canceller();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = canceller.cancel_all();
    });
    loop {
        match dev.wait_event(Some(Duration::from_secs(60))) {
            Ok(Some(ev)) => {
                println!("{} on binding {} (seq {}, {} lost)", ev.event_kind(), ev.binding_id, ev.seq, ev.lost)
            }
            Ok(None) => return Ok(()),
            Err(e) if e.is_cancelled() => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
