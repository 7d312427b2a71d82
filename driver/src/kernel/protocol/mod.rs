//! The NDIS protocol-driver boundary.
//!
//! - this file: the `Protocol` trait the driver logic implements, and what
//!   NDIS tells it (bind parameters, link state, restart information);
//! - `binding`: `Binding<T>`, which owns one binding's state machine, its
//!   outstanding counts, its lifetime and the calls NDIS must see in order
//!   (its work item in `binding/deferred.rs`, its close in
//!   `binding/close.rs`);
//! - `registration`: registering and deregistering the protocol;
//! - `trampolines`: the `extern "win64"` handlers NDIS calls, which turn raw
//!   pointers into the types above.
//!
//! What the wrapper guarantees, whatever the logic does:
//! - a send reaches `NdisSendNetBufferLists` only while NDIS itself
//!   considers the binding Running: after `NdisCompleteNetPnPEvent` for its
//!   restart returned (the wrapper always pends a restart), and before the
//!   pause handler returns (sends hold the binding's gate, which the pause
//!   takes exclusively);
//! - no received NBL is retained once a pause has begun, and a pause
//!   completes only when no send is in flight, no received NBL is retained
//!   and no receive indication is running;
//! - nothing uses the binding handle after `NdisCloseAdapterEx`: the close
//!   is issued by the wrapper once the unbind began, every OID request came
//!   back and no OID call is running; later OID requests are refused;
//! - every NDIS handler holds a strong count of the binding while it runs,
//!   and NDIS's own count is given back only when the close completes.

mod binding;
mod complete_at_drop;
mod handshake;
mod registration;
mod trampolines;

pub use binding::{Binding, RestartToken, SendGateError, SendShape};
pub(crate) use binding::{DEFER_RETURNS, HeldOid, binding_arc};
pub(crate) use registration::protocol_handle;
pub use registration::{NDIS_VERSIONS, Registration, offer_declined_again, registered_version};
pub(crate) use trampolines::irql_from_flag;

use super::nbl::{Indication, ZcReturns, ZcRing};
use super::oid::OidCompletion;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ndis_sys::NDIS_STATUS;
use rawnic_proto::NtStatus;

/// An NDIS_STATUS: a type of its own, so that it is never mistaken for an
/// NTSTATUS (`rawnic_proto::NtStatus`, which IRPs and `DriverEntry` return) nor
/// for a plain integer. The raw value crosses only the `extern` handlers
/// NDIS calls and the NDIS calls themselves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NdisStatus(pub NDIS_STATUS);

impl NdisStatus {
    pub const SUCCESS: Self = Self(ndis_sys::NDIS_STATUS_SUCCESS);
    pub const PENDING: Self = Self(ndis_sys::NDIS_STATUS_PENDING);
    pub const FAILURE: Self = Self(ndis_sys::NDIS_STATUS_FAILURE);
    pub const RESOURCES: Self = Self(ndis_sys::NDIS_STATUS_RESOURCES);
    pub const UNSUPPORTED_MEDIA: Self = Self(ndis_sys::NDIS_STATUS_UNSUPPORTED_MEDIA);
    pub const REQUEST_ABORTED: Self = Self(ndis_sys::NDIS_STATUS_REQUEST_ABORTED);

    /// The NTSTATUS of the same value, for `DriverEntry`: NDIS_STATUS codes
    /// are in NTSTATUS format, the common ones equal to their STATUS_
    /// counterparts (NDIS_STATUS_RESOURCES is STATUS_INSUFFICIENT_RESOURCES).
    pub fn to_nt(self) -> NtStatus {
        NtStatus(self.0)
    }
}

impl core::fmt::Debug for NdisStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NDIS_STATUS {:#010x}", self.0 as u32)
    }
}

/// What the adapter told us at bind time.
#[derive(Debug)]
pub struct BindParams {
    pub adapter_name: String,
    pub medium: ndis_sys::NDIS_MEDIUM,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub max_xmit_speed: u64,
    pub xmit_speed: u64,
    pub rcv_speed: u64,
    pub connect_state: u32,
    pub duplex_state: u32,
    pub lookahead: u32,
    pub supported_packet_filters: u32,
    pub mac_options: u32,
    pub if_index: u32,
}

/// Link state, from bind parameters, restart attributes or a status
/// indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    pub connect_state: u32,
    pub duplex_state: u32,
    pub xmit_speed: u64,
    pub rcv_speed: u64,
}

/// `NDIS_RESTART_GENERAL_ATTRIBUTES`, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GeneralAttributes {
    pub mtu: u32,
    pub max_xmit_speed: u64,
    pub max_rcv_speed: u64,
    pub lookahead: u32,
    pub mac_options: u32,
    pub supported_packet_filters: u32,
    pub max_multicast_list: u32,
    pub has_rss_capabilities: bool,
    pub revision: u8,
}

/// What a restart notification carried.
#[derive(Debug, Default)]
pub struct RestartInfo {
    /// The underlying filter modules, top first.
    pub filter_modules: Vec<String>,
    /// From the `OID_GEN_MINIPORT_RESTART_ATTRIBUTES` element, if any.
    pub general: Option<GeneralAttributes>,
    /// From an `OID_GEN_LINK_STATE` element, if any.
    pub link: Option<LinkState>,
    /// Attribute elements whose OID rawnic does not use.
    pub unknown_attributes: u32,
    /// The parameters or an element were malformed (a wrong header, lengths
    /// out of range); what was well-formed is still given.
    pub malformed: bool,
    /// Memory ran out while copying the filter module names (which are
    /// then left out; nothing but the log needs them).
    pub no_memory: bool,
}

/// The driver logic, as NDIS sees it. Every method runs in the context the
/// NDIS documentation gives for the matching handler. `&self` is valid for
/// the call: the wrapper passes the protocol object that the registration
/// owns, and NDIS calls nothing once the registration is gone.
pub trait Protocol: Sync + Sized + 'static {
    /// Per-binding state the logic keeps.
    type Binding: Send + Sync + 'static;
    /// Identifies the owner of an OID request, for its completion.
    type OidTag: Send + 'static;
    /// A UMEM's ring, which its zero-copy NBLs name until they complete.
    type Ring: ZcRing;

    /// The protocol name, NUL-terminated UTF-16 (`wstr!`).
    const NAME: &'static [u16];

    /// `ProtocolBindAdapterEx`, before the adapter is opened: allocate the
    /// binding's logic state. An error fails the bind.
    fn create_binding(&self, params: &BindParams) -> Result<Self::Binding, NdisStatus>;
    /// The open finished; the binding is Paused (`Ok`) or gone (`Err`).
    fn open_complete(&self, b: &Arc<Binding<Self>>, result: Result<(), NdisStatus>);
    /// `ProtocolUnbindAdapterEx`: the binding is Closing. Fail user I/O. The
    /// wrapper then cancels the OID requests still pending and closes the
    /// adapter once they are back.
    fn unbind(&self, b: &Arc<Binding<Self>>);
    /// The adapter closed; the binding is Unbound and NDIS forgets it.
    fn closed(&self, b: &Arc<Binding<Self>>);
    /// A pause began (Pausing): give back retained receives. The wrapper
    /// completes the pause when the last send and receive are back.
    fn pausing(&self, b: &Arc<Binding<Self>>);
    /// Give back every retained receive now: an indication outside Running
    /// (which the logic does not see) says the miniport is low on receive
    /// buffers. The NBLs go back as that indication ends.
    fn give_back_retained(&self, b: &Arc<Binding<Self>>);
    /// The pause completed (Paused). Runs at PASSIVE_LEVEL with no lock
    /// held (in the pause handler, or in the binding's work item).
    fn paused(&self, b: &Arc<Binding<Self>>);
    /// A restart began (Restarting). Finish it with `token.complete`, now or
    /// later, without holding any lock `restarted` takes.
    fn restart(&self, b: &Arc<Binding<Self>>, info: RestartInfo, token: RestartToken<Self>);
    /// The restart finished: Running (`true`: sends may start now, unless a
    /// pause has begun since) or back to Paused. Runs at PASSIVE_LEVEL with
    /// no lock held, in the binding's work item, after NDIS was told; a
    /// pause that begins meanwhile completes (and `paused` runs) after it.
    fn restarted(&self, b: &Arc<Binding<Self>>, running: bool);
    /// Work the logic asked for with `Binding::defer_work`: runs at
    /// PASSIVE_LEVEL with no lock held, in the binding's work item, on a
    /// stack of its own (not inside the completion that asked).
    fn deferred_work(&self, _b: &Arc<Binding<Self>>) {}
    /// `NetEventSetPower` (a `NET_DEVICE_POWER_STATE`), after the wrapper
    /// stopped sends and OID requests for a low-power state (they fail
    /// until the restart or the `NetEventSetPower` for D0 that follows).
    /// PASSIVE_LEVEL, no lock held.
    fn set_power(&self, _b: &Arc<Binding<Self>>, _device_state: u32) {}
    /// `NetEventBindsComplete`.
    fn binds_complete(&self);
    /// Frames NDIS indicated while Running.
    fn receive(&self, b: &Arc<Binding<Self>>, ind: &mut Indication<'_, Self>);
    /// Sends came back; `done` yields (tag, bytes, status) per frame.
    fn send_complete(&self, b: &Binding<Self>, done: &mut dyn Iterator<Item = (u64, u32, NdisStatus)>);
    /// An OID request finished.
    /// Zero-copy sends back from NDIS, in completion order.
    fn ring_send_complete(&self, b: &Binding<Self>, done: ZcReturns<Self::Ring>);
    fn oid_complete(&self, b: &Arc<Binding<Self>>, done: OidCompletion<Self::OidTag>);
    /// `ProtocolStatusEx`: a link change (the others are ignored).
    fn link_changed(&self, b: &Binding<Self>, link: LinkState);
    /// `ProtocolUninstall`.
    fn uninstall(&self) {}
}
