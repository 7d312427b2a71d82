//! rawnic's client library: raw Ethernet access through the rawnic driver's
//! control device, with the same API over the Windows device (`\\.\RawNic`)
//! and over ndisim's Unix-socket device bridge (`unix:SOCKET`).
//!
//! ```no_run
//! use rawnic_client::{Device, OpenOptions, SendFrame};
//!
//! # fn main() -> Result<(), rawnic_client::Error> {
//! let dev = Device::open_default()?;            // RAWNIC_DEVICE, or \\.\RawNic on Windows
//! let adapters = dev.list()?;
//! let info = dev.open_binding(&OpenOptions::new(&adapters[0].name).ethertype(0x88b5))?;
//! let frame = rawnic_client::ether::build_frame(
//!     rawnic_client::MacAddr::BROADCAST, info.mac, 0x88b5, b"hello");
//! dev.send_batch(&[SendFrame { data: &frame, tci: None }])?;
//! for f in dev.read_frames(Some(std::time::Duration::from_secs(1)))? {
//!     println!("{} bytes: {}", f.data.len(), rawnic_client::ether::summarize(&f.data));
//! }
//! # Ok(()) }
//! ```
//!
//! Every request can also be submitted raw ([`Device::submit`]) and waited
//! for with a timeout, or cancelled; pending requests of a handle can be
//! cancelled from another thread with a [`Canceller`]. Errors are
//! [`Error`]s whose messages are sentences: NTSTATUS values are explained
//! with the interface's own descriptions.

#[cfg(any(windows, test))]
mod alias;
mod backend;
#[cfg(any(unix, windows))]
mod bridge;
pub mod console;
mod device;
mod error;
pub mod ether;
#[cfg(all(unix, feature = "fake"))]
pub mod fake;
mod filter_expr;
mod frame;
pub mod oid;
mod open;
mod overlapped;
mod path;
pub mod pcapng;
mod program;
pub mod ring;
mod transport;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
mod winsock;

pub use device::{
    Binding, DEFAULT_READ_SIZE, Device, OidReply, OpenInfo, OpenOptions, SendOptions, SendSummary, filter_refusal,
    stats_filter_note,
};
pub use error::{Error, Report, Result, format_duration};
pub use ether::{MacAddr, MacAddrError, Tci, TciError};
pub use filter_expr::{TAKE as FILTER_TAKE, compile_filter, format_ddd};
pub use frame::{Coalesced, Direction, Frame, FrameRef, Records};
pub use path::{DevicePath, ENV_DEVICE, default_path};
pub use program::{parse_program, program_refusal};
pub use transport::{Canceller, Completion, Pending, Request};

/// The shared wire-format crate.
pub use rawnic_proto;
pub use rawnic_proto::BpfInsn;
pub use rawnic_proto::{
    BindingState, Counters, Duplex, EventKind, EventRecord, FrameHeader, LinkState, LocalSends, NtStatus, PacketFilter,
    SendFrame, StatsReply, VersionReply, filter, frame_flags,
};
