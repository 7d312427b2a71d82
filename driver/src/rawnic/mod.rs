//! The driver logic: what rawnic does with each NDIS event. No `unsafe`.

use crate::kernel::entry::Driver;
use crate::kernel::nbl::Indication;
use crate::kernel::oid::OidCompletion;
use crate::kernel::protocol::{
    BindParams, Binding, LinkState, NdisStatus, Protocol, RestartInfo, RestartToken, UnbindToken,
};
use crate::kernel::debug::LEVEL_INFO;
use crate::kprint;
use alloc::sync::Arc;

/// The driver's global state.
pub struct Rawnic {}

/// Per-binding state.
pub struct RawnicBinding {}

const fn parse_u8(s: &str) -> u8 {
    let b = s.as_bytes();
    let mut v: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    assert!(v < 256);
    v as u8
}

impl Driver for Rawnic {
    fn new() -> Self {
        Rawnic {}
    }

    const VERSION: (u8, u8) =
        (parse_u8(env!("CARGO_PKG_VERSION_MAJOR")), parse_u8(env!("CARGO_PKG_VERSION_MINOR")));
}

impl Protocol for Rawnic {
    type Binding = RawnicBinding;
    type OidTag = ();

    const NAME: &'static [u16] = crate::wstr!(proto::PROTOCOL_NAME);

    fn create_binding(&'static self, params: &BindParams) -> Result<RawnicBinding, NdisStatus> {
        kprint!(LEVEL_INFO, "binding to {} (MTU {})", params.adapter_name, params.mtu);
        Ok(RawnicBinding {})
    }

    fn open_complete(&'static self, b: &Arc<Binding<Self>>, result: Result<(), NdisStatus>) {
        kprint!(LEVEL_INFO, "open of {}: {:?}", b.params().adapter_name, result);
    }

    fn unbind(&'static self, _b: &Arc<Binding<Self>>, token: UnbindToken<Self>) {
        token.close();
    }

    fn closed(&'static self, _b: &Arc<Binding<Self>>) {}

    fn pausing(&'static self, _b: &Arc<Binding<Self>>) {}

    fn paused(&'static self, _b: &Arc<Binding<Self>>) {}

    fn restart(&'static self, _b: &Arc<Binding<Self>>, _info: RestartInfo, token: RestartToken<Self>) {
        token.complete(Ok(()));
    }

    fn restarted(&'static self, _b: &Arc<Binding<Self>>, _running: bool) {}

    fn binds_complete(&'static self) {}

    fn receive(&'static self, _b: &Binding<Self>, _ind: &mut Indication<'_, Self>) {}

    fn send_complete(&'static self, _b: &Binding<Self>, _done: &mut dyn Iterator<Item = (u32, u32, NdisStatus)>) {}

    fn oid_complete(&'static self, _b: &Arc<Binding<Self>>, _done: OidCompletion<()>) {}

    fn link_changed(&'static self, _b: &Binding<Self>, _link: LinkState) {}
}
