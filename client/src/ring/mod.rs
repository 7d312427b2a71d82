//! Rings: zero-copy receive and send through a UMEM shared with the driver
//! (AF_XDP's design; the wire format is `rawnic_proto::ring`).
//!
//! ```no_run
//! use rawnic_client::ring::{RingConfig, Umem};
//! use rawnic_client::{Device, OpenOptions};
//!
//! # fn main() -> Result<(), rawnic_client::Error> {
//! let dev = Device::open_default()?;
//! let name = dev.list()?[0].name.clone();
//! dev.open_binding(&OpenOptions::new(&name))?;
//! let umem = Umem::attach(&dev, &RingConfig::default())?;
//! let (mut rx, mut tx) = umem.split()?;
//! let mut free = umem.alloc_many(512);
//! rx.fill(&mut free)?;                      // frames to receive into
//! let mut got = Vec::new();
//! if rx.wait(Some(std::time::Duration::from_secs(1)))? {
//!     rx.recv(&mut got, 64)?;
//! }
//! let mut again: Vec<_> = got.into_iter().map(|f| {
//!     println!("{} bytes", f.data().len());
//!     f.into_frame()
//! }).collect();
//! rx.fill(&mut again)?;                     // received frames go back
//! let mut out = umem.alloc_many(1);
//! out[0].write(&[0xff; 60]);
//! tx.send(&mut out)?;                       // the frame is the driver's now
//! tx.kick()?;
//! tx.wait(None)?;
//! let mut sent = Vec::new();
//! tx.complete(&mut sent, 64)?;              // and ours again
//! # Ok(()) }
//! ```
//!
//! The memory is page-aligned and shared: on Windows, `VirtualAlloc`'s
//! pages, which the I/O manager locks for `RING_ATTACH`; over ndisim's
//! bridge, a sealed memfd whose descriptor goes to ndisim with the request
//! (Linux only). The attach request stays pending for as long as the UMEM
//! is attached: dropping the [`Umem`] detaches it and waits for that
//! request to complete before the memory is freed (on Windows, memory
//! whose request never completes is leaked rather than freed).
//!
//! A frame is the user's while a [`UmemFrame`] (or an [`RxFrame`]) holds
//! it, and the driver's from the moment it is filled or sent until the rx
//! or completion ring returns it: the types make a frame unreachable from
//! user code while the driver may use it.

pub(crate) mod mem;
mod queue;
mod rings;
mod space;
#[cfg(all(test, target_os = "linux", feature = "fake"))]
mod tests;

pub use rawnic_proto::ring::RingCounters;
pub use rings::{Kick, RxFrame, RxRing, TxRing};
pub use space::UmemFrame;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::transport::{Pending, Request};
use mem::SharedMem;
use rawnic_proto::ring::{FRAME_SIZES, MAX_RING, MAX_UMEM_BYTES, MIN_RING, RING_MAGIC, RingLayout, RingSetup, control};
use rawnic_proto::{
    EmptyRequest, IOCTL_RAWNIC_GET_VERSION, IOCTL_RAWNIC_RING_ATTACH, IOCTL_RAWNIC_RING_DETACH, NtStatus, PROTO_VERSION,
};
use space::Space;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long dropping a UMEM waits for its attach request to complete
/// after the detach (the driver completes it once NDIS has given back
/// every send of its frames).
const DETACH_WAIT: Duration = Duration::from_secs(30);

/// A UMEM's shape: frames and ring sizes. [`Umem::attach`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    pub frame_count: u32,
    /// Entries of each ring: a power of two from 8 to 32768.
    pub fill: u32,
    pub rx: u32,
    pub tx: u32,
    pub completion: u32,
}

impl Default for RingConfig {
    /// 1024 frames of 2048 bytes, rings of 512.
    fn default() -> Self {
        RingConfig { frame_size: 2048, frame_count: 1024, fill: 512, rx: 512, tx: 512, completion: 512 }
    }
}

impl RingConfig {
    /// `frames` frames of 2048 bytes, every ring `ring` entries.
    pub fn new(frames: u32, ring: u32) -> Self {
        RingConfig { frame_size: 2048, frame_count: frames, fill: ring, rx: ring, tx: ring, completion: ring }
    }

    fn setup(&self) -> RingSetup {
        RingSetup {
            frame_size: self.frame_size,
            frame_count: self.frame_count,
            fill: self.fill,
            rx: self.rx,
            tx: self.tx,
            completion: self.completion,
        }
    }

    /// The layout, or a sentence for the first rule the shape breaks.
    pub fn layout(&self) -> Result<RingLayout> {
        let bad = |s: String| Err(Error::InvalidArgument(s));
        if !FRAME_SIZES.contains(&self.frame_size) {
            return bad(format!("a frame of {} bytes is not one the driver takes (2048 or 4096)", self.frame_size));
        }
        if self.frame_count == 0 {
            return bad("a UMEM needs at least one frame".into());
        }
        for (name, n) in [("fill", self.fill), ("rx", self.rx), ("tx", self.tx), ("completion", self.completion)] {
            if !n.is_power_of_two() || !(MIN_RING..=MAX_RING).contains(&n) {
                return bad(format!(
                    "the {name} ring has {n} entries; a ring has a power of two from {MIN_RING} to {MAX_RING}"
                ));
            }
        }
        RingLayout::new(&self.setup()).or_else(|_| {
            bad(format!(
                "{} frames of {} bytes and their rings need more than the {} MiB a UMEM may have",
                self.frame_count,
                self.frame_size,
                MAX_UMEM_BYTES >> 20
            ))
        })
    }
}

/// Where the frames were when a UMEM was detached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detached {
    /// How the attach request completed: `SUCCESS` after a detach,
    /// `CANCELLED` when it was cancelled (or the handle closed), or why the
    /// attachment ended.
    pub status: NtStatus,
    /// Frames the driver had not taken from the fill ring.
    pub fill: usize,
    /// Frames received but not taken from the rx ring.
    pub rx: usize,
    /// Frames the driver had not taken from the tx ring.
    pub tx: usize,
    /// Frames sent but not taken from the completion ring.
    pub completion: usize,
    /// Frames the driver had that are on no ring: lost by the driver.
    pub missing: usize,
    /// The counters at the end.
    pub counters: RingCounters,
}

/// A UMEM attached to a handle's binding: the memory, its frames and its
/// four rings. Make one with [`attach`](Umem::attach) on a [`Device`] that
/// has opened a binding; take its rings with [`split`](Umem::split) and its
/// frames with [`alloc`](Umem::alloc). Dropping it detaches it.
pub struct Umem<'d> {
    dev: &'d Device,
    space: Space,
    /// The attach request, pending while the UMEM is attached.
    attach: Mutex<Option<Pending<'d>>>,
    split: AtomicBool,
}

impl std::fmt::Debug for Umem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Umem").field("layout", &self.space.layout).finish()
    }
}

impl<'d> Umem<'d> {
    /// Allocates the memory and attaches it (`RING_ATTACH`). The handle
    /// must have opened a binding and have no UMEM attached.
    ///
    /// On Windows the attach request is tied to the thread that makes it:
    /// if that thread exits, the system cancels the request and the UMEM
    /// is detached (as for any request; see [`Pending`]). Attach from a
    /// thread that outlives the UMEM.
    pub fn attach(dev: &'d Device, config: &RingConfig) -> Result<Umem<'d>> {
        let request = Request::Ioctl(IOCTL_RAWNIC_RING_ATTACH);
        let layout = config.layout()?;
        let mem = Arc::new(SharedMem::new(layout.total)?);
        let mut input = [0u8; RingSetup::LEN];
        config.setup().emit(&mut input).expect("sized");
        let pending = dev.submit_shared(request, &input, &mem)?;
        // The attach stays pending when it succeeds, so its completion
        // cannot say so. The driver writes the control block's magic when
        // it attaches; any request after this one reaches the driver after
        // the attach was dispatched (on Windows the dispatch routine runs
        // in DeviceIoControl; the bridge hands a connection's requests to
        // the driver in order), so once a version request has come back
        // the magic is there or the attach was refused.
        let mut probe = [0u8; EmptyRequest::LEN];
        EmptyRequest::emit(&mut probe).expect("4 bytes");
        let probed = dev.call(Request::Ioctl(IOCTL_RAWNIC_GET_VERSION), &probe, 64, None);
        let space = Space::new(mem, layout);
        let magic = space.u32_at(control::MAGIC).load(Ordering::Acquire);
        let version = space.u32_at(control::VERSION).load(Ordering::Acquire);
        if magic != RING_MAGIC {
            // Refused: its completion says why.
            return Err(match pending.wait(Some(Duration::from_secs(5))) {
                Ok(c) if !c.status.is_success() => Error::from_status(request, c.status),
                Ok(_) => space::broken("the attach completed at once, with success"),
                Err(e) => probed.err().unwrap_or(e),
            });
        }
        let umem = Umem { dev, space, attach: Mutex::new(Some(pending)), split: AtomicBool::new(false) };
        if version != u32::from(PROTO_VERSION) {
            return Err(space::broken(format!(
                "the control block says wire-format version {version}, not {PROTO_VERSION}"
            )));
        }
        Ok(umem)
    }

    /// Where everything is in the UMEM.
    pub fn layout(&self) -> &RingLayout {
        &self.space.layout
    }

    /// The device the UMEM is attached on.
    pub fn device(&self) -> &'d Device {
        self.dev
    }

    /// The fill and rx rings, and the tx and completion rings; once.
    pub fn split(&self) -> Result<(RxRing<'_>, TxRing<'_>)> {
        if self.split.swap(true, Ordering::AcqRel) {
            return Err(Error::InvalidArgument("the UMEM's rings were taken already".into()));
        }
        Ok((RxRing::new(&self.space, self.dev), TxRing::new(&self.space, self.dev)))
    }

    /// A frame the user owns and no token holds, if any is left.
    pub fn alloc(&self) -> Option<UmemFrame<'_>> {
        self.space.alloc()
    }

    /// Up to `n` frames.
    pub fn alloc_many(&self, n: usize) -> Vec<UmemFrame<'_>> {
        std::iter::from_fn(|| self.alloc()).take(n).collect()
    }

    /// Gives a frame back for [`alloc`](Self::alloc) to hand out again.
    pub fn free(&self, frame: UmemFrame<'_>) {
        self.space.free(frame)
    }

    /// Frames [`alloc`](Self::alloc) can hand out now.
    pub fn free_frames(&self) -> usize {
        self.space.pooled()
    }

    /// Frames the driver has now (on the fill or tx ring, being received
    /// into or sent, or on the rx or completion ring not yet taken).
    pub fn driver_frames(&self) -> usize {
        self.space.drivers_count()
    }

    /// The control block's counters.
    pub fn counters(&self) -> RingCounters {
        RingCounters::read(|off| self.space.u64_at(off).load(Ordering::Relaxed))
    }

    /// Detaches (`RING_DETACH`), waits for the attach request to complete,
    /// and takes back every frame the rings still hold: where they were is
    /// in the result. A UMEM whose attachment ended already (cancelled,
    /// its handle's binding removed) is only collected.
    pub fn detach(mut self) -> Result<Detached> {
        self.end()
    }

    fn end(&mut self) -> Result<Detached> {
        let Some(pending) = self.attach.get_mut().unwrap_or_else(PoisonError::into_inner).take() else {
            return Err(Error::InvalidArgument("the UMEM is detached already".into()));
        };
        let request = Request::Ioctl(IOCTL_RAWNIC_RING_DETACH);
        let mut input = [0u8; EmptyRequest::LEN];
        EmptyRequest::emit(&mut input).expect("4 bytes");
        // Refused when the attachment ended already; the attach request's
        // status says how.
        let detach = self.dev.call(request, &input, 0, Some(DETACH_WAIT));
        let c = pending.wait(Some(DETACH_WAIT))?;
        if let Err(e) = detach.and_then(|d| d.success(request)) {
            if c.status == NtStatus::SUCCESS {
                return Err(e);
            }
        }
        // The driver is done with the memory: what the rings hold is the
        // user's again.
        let r = self.space.reclaim();
        Ok(Detached {
            status: c.status,
            fill: r[0],
            rx: r[1],
            tx: r[2],
            completion: r[3],
            missing: r[4],
            counters: self.counters(),
        })
    }
}

impl Drop for Umem<'_> {
    fn drop(&mut self) {
        // The memory is freed only once the attach request is over: `end`
        // waits for it, and a request that does not complete keeps (on
        // Windows, leaks) its reference to the memory.
        let _ = self.end();
    }
}
