//! What a test sees of the receive offloads: the NDIS version the protocol
//! registered with, the versions NDIS refused, and whether an adapter's URO
//! is on.

use super::{AdapterId, Sim};
use crate::verifier::lock;
use std::sync::atomic::Ordering;

impl Sim {
    /// The NDIS version (major, minor) the protocol registered with, while
    /// it is registered.
    pub fn protocol_ndis_version(&self) -> Option<(u8, u8)> {
        self.k.ndis.protocol().map(|p| (p.chars.MajorNdisVersion, p.chars.MinorNdisVersion))
    }

    /// The `Flags` of the registered protocol's characteristics.
    pub fn protocol_flags(&self) -> Option<u32> {
        self.k.ndis.protocol().map(|p| p.chars.Flags)
    }

    /// The versions `NdisRegisterProtocolDriver` refused as newer than the
    /// emulated Windows' (`SimBuilder::ndis_version`), in order.
    pub fn refused_ndis_versions(&self) -> Vec<(u8, u8)> {
        lock(&self.k.ndis.versions.refused).clone()
    }

    /// Whether URO is on for the adapter now: it has it (`uro=on`) and NDIS
    /// did not turn it off when the protocol bound.
    pub fn uro_enabled(&self, a: AdapterId) -> bool {
        self.adapter(a).is_ok_and(|a| a.uro.load(Ordering::Acquire))
    }

    /// How many binds turned the adapter's URO off.
    pub fn uro_turned_off(&self, a: AdapterId) -> u64 {
        self.adapter(a).map_or(0, |a| a.counters.uro_turned_off.load(Ordering::Relaxed))
    }
}
