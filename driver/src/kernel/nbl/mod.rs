//! NET_BUFFER_LIST ownership.
//!
//! - `send`: the binding's pool of send NBLs; a `SendBatch` exists only
//!   while sends may reach NDIS, and once `SendBatch::send` handed NBLs to
//!   NDIS nothing in rawnic can reach them until
//!   `ProtocolSendNetBufferListsComplete` gives them back, in any order and
//!   batching;
//! - `recv`: the receive handler walks what NDIS indicated a chunk of
//!   frames at a time (`Indication`), and returns every NBL it does not
//!   retain before it returns;
//! - `retain`: a `RetainedFrame` keeps its NBL until it drops; retaining is
//!   possible only in an indication without `NDIS_RECEIVE_FLAGS_RESOURCES`
//!   while the binding is Running, and a pause completes only when every
//!   retained NBL is back.
//!
//! - `zerocopy`: a ring's NBLs whose NET_BUFFERs (a frame each) point
//!   into its UMEM; sent with
//!   `Binding::send_zc` under the same rule as a `SendBatch`, and given back
//!   to the ring's logic at completion (`ZcReturns`).
//!
//! `RecvFrame` and `RetainedFrame` read their bytes through one trait,
//! `ReceivedFrame`.

mod frame;
mod frame_mdls;
mod recv;
mod retain;
mod send;
mod zerocopy;

pub use frame::ReceivedFrame;
pub(crate) use recv::receive_net_buffer_lists;
pub use recv::{CHUNK, Chunk, Coalesced, Drained, Indication, Judged, MAPPED_BATCH, MappedFrame, RecvFrame};
pub(crate) use retain::RetainTable;
pub use retain::RetainedFrame;
pub(crate) use send::send_net_buffer_lists_complete;
pub use send::{MAX_SEND_NBLS, SendBatch, SendError, SendPool};
pub use zerocopy::{
    FrameGeometry, ZC_FRAMES_PER_NBL, ZcAnchor, ZcChain, ZcDone, ZcDoneFrames, ZcFrame, ZcFrames, ZcPool, ZcReturner,
    ZcReturns, ZcRing, ZcRun,
};

use super::sync::Irql;
use core::ptr;
use ndis_sys::*;

/// Most received NBLs one binding may retain at a time.
pub const RETAIN_BUDGET: usize = 64;

/// `NDIS_NET_BUFFER_LIST_8021Q_INFO` from an 802.1Q TCI.
pub fn ieee8021q_info(tci: u16) -> usize {
    let priority = (tci >> 13) as usize;
    let cfi = ((tci >> 12) & 1) as usize;
    let vlan = (tci & 0x0FFF) as usize;
    priority | (cfi << 3) | (vlan << 4)
}

/// The TCI an `NDIS_NET_BUFFER_LIST_8021Q_INFO` describes.
pub fn tci_from_info(info: usize) -> u16 {
    let priority = (info & 7) as u16;
    let cfi = ((info >> 3) & 1) as u16;
    let vlan = ((info >> 4) & 0x0FFF) as u16;
    (priority << 13) | (cfi << 12) | vlan
}

// The linked members at the head of a NET_BUFFER_LIST and a NET_BUFFER, as
// the WDK's macros reach them. `ndis-sys` declares them inside the unions
// C has there: the fields a driver uses overlay an `SLIST_HEADER` that only
// NDIS's pools use, for NBLs and NET_BUFFERs that are free. Every member is
// plain integers and pointers, so reading one is defined; for any NBL or
// NET_BUFFER a driver is handed or allocates, the fields are the members in
// use. (Writing a union's field needs no `unsafe`.)

/// `NET_BUFFER_LIST_NEXT_NBL`.
#[inline(always)]
pub(crate) fn next_nbl(nbl: &NET_BUFFER_LIST) -> *mut NET_BUFFER_LIST {
    // SAFETY: plain data, and the member in use (above).
    unsafe { nbl.anon.anon.Next }
}

/// `NET_BUFFER_LIST_FIRST_NB`.
#[inline(always)]
pub(crate) fn first_nb(nbl: &NET_BUFFER_LIST) -> *mut NET_BUFFER {
    // SAFETY: plain data, and the member in use (above).
    unsafe { nbl.anon.anon.FirstNetBuffer }
}

/// A NET_BUFFER's linked fields: `NET_BUFFER_NEXT_NB`,
/// `NET_BUFFER_CURRENT_MDL`, `NET_BUFFER_CURRENT_MDL_OFFSET`, ...
#[inline(always)]
pub(crate) fn nb_fields(nb: &NET_BUFFER) -> &NET_BUFFER_FIELDS {
    // SAFETY: plain data, and the member in use (above).
    unsafe { &nb.anon.anon }
}

/// `NET_BUFFER_DATA_LENGTH`.
#[inline(always)]
pub(crate) fn nb_data_length(nb: &NET_BUFFER) -> u32 {
    // SAFETY: `DataLength` is the low half of the `stDataLength` it
    // overlays (x64 is little-endian), and NDIS keeps the length below 4 GiB.
    unsafe { nb_fields(nb).anon.DataLength }
}

/// The two ends of a chain of NBLs linked by their `Next`, built by
/// appending: NBLs to give back (`ReturnChain`), a kick's zero-copy NBLs
/// (`ZcChain`), a completed chain split in two (`send::split_mixed`).
///
/// # Invariants
/// `head` is null exactly when `tail` is; otherwise `head` reaches `tail`
/// by `Next`, every NBL on the way is the owner's, and `tail`'s `Next` is
/// null.
#[derive(Clone, Copy)]
pub(crate) struct NblLinks {
    head: *mut NET_BUFFER_LIST,
    tail: *mut NET_BUFFER_LIST,
}

impl NblLinks {
    pub(crate) const EMPTY: NblLinks = NblLinks { head: ptr::null_mut(), tail: ptr::null_mut() };

    /// The first NBL, or null.
    #[inline(always)]
    pub(crate) fn head(&self) -> *mut NET_BUFFER_LIST {
        self.head
    }

    /// The chain, taken: its first NBL (or null), and these links empty.
    #[inline(always)]
    pub(crate) fn take(&mut self) -> *mut NET_BUFFER_LIST {
        core::mem::replace(self, NblLinks::EMPTY).head
    }

    /// Puts `nbl` at the end, its `Next` cut.
    ///
    /// # Safety
    /// `nbl` is a valid NBL the owner of these links owns, on no chain
    /// (this one included).
    #[inline(always)]
    pub(crate) unsafe fn append(&mut self, nbl: *mut NET_BUFFER_LIST) {
        // SAFETY: a run of one NBL, as the caller promises it.
        unsafe { self.append_run(nbl, nbl) }
    }

    /// Puts the NBLs from `first` to `last`, linked by `Next`, at the end
    /// (`last`'s `Next` cut).
    ///
    /// # Safety
    /// `first` reaches `last` by `Next`, every NBL on the way is one the
    /// owner of these links owns, on no chain (this one included).
    #[inline(always)]
    pub(crate) unsafe fn append_run(&mut self, first: *mut NET_BUFFER_LIST, last: *mut NET_BUFFER_LIST) {
        // SAFETY: per the caller.
        let l = unsafe { &mut *last };
        l.anon.anon.Next = ptr::null_mut();
        if self.tail.is_null() {
            self.head = first;
        } else {
            // SAFETY: the chain's last NBL, the owner's (invariant).
            let tail = unsafe { &mut *self.tail };
            tail.anon.anon.Next = first;
        }
        self.tail = last;
    }
}

/// NBLs to give back to NDIS, chained.
pub struct ReturnChain {
    links: NblLinks,
    len: usize,
}

impl ReturnChain {
    pub(crate) const fn new() -> Self {
        ReturnChain { links: NblLinks::EMPTY, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Puts `nbl` at the end (its `Next` cut).
    ///
    /// # Safety
    /// `nbl` is an indicated NBL this binding owns (retained, not yet
    /// given back) and no longer reads, on no other chain (this one
    /// included).
    pub(crate) unsafe fn push(&mut self, nbl: *mut NET_BUFFER_LIST) {
        // SAFETY: per the caller.
        unsafe { self.links.append(nbl) };
        self.len += 1;
    }

    /// `NdisReturnNetBufferLists`.
    pub(crate) fn return_to(self, binding_handle: NDIS_HANDLE, irql: Irql<'_>) {
        let head = self.links.head();
        if head.is_null() {
            return;
        }
        // SAFETY: the chain holds indicated NBLs we own and no longer use.
        unsafe { NdisReturnNetBufferLists(binding_handle, head, return_flags(irql)) };
    }
}

/// An indication's own NBLs to give back, chained: a `ReturnChain` with
/// no count (nothing asks an indication how many it gives back, and its
/// walk keeps one value fewer).
pub struct OwnReturns {
    links: NblLinks,
}

impl OwnReturns {
    pub(crate) const fn new() -> Self {
        OwnReturns { links: NblLinks::EMPTY }
    }

    /// Puts `nbl` at the end (its `Next` cut).
    ///
    /// # Safety
    /// `nbl` is one of this indication's NBLs, all its frames handed out,
    /// on no other chain (this one included).
    pub(crate) unsafe fn push(&mut self, nbl: *mut NET_BUFFER_LIST) {
        // SAFETY: per the caller.
        unsafe { self.links.append(nbl) };
    }

    /// Puts the NBLs from `first` to `last`, linked by `Next`, at the end
    /// (`last`'s `Next` cut).
    ///
    /// # Safety
    /// `first` reaches `last` by `Next`, through indicated NBLs we own, on
    /// no other chain (this one included).
    #[inline(always)]
    pub(crate) unsafe fn push_run(&mut self, first: *mut NET_BUFFER_LIST, last: *mut NET_BUFFER_LIST) {
        // SAFETY: per the caller.
        unsafe { self.links.append_run(first, last) };
    }

    /// `NdisReturnNetBufferLists`.
    pub(crate) fn return_to(self, binding_handle: NDIS_HANDLE, irql: Irql<'_>) {
        let head = self.links.head();
        if head.is_null() {
            return;
        }
        // SAFETY: the chain holds indicated NBLs we own and no longer use.
        unsafe { NdisReturnNetBufferLists(binding_handle, head, return_flags(irql)) };
    }
}

/// `NdisReturnNetBufferLists`'s flags for the known IRQL.
pub(crate) fn return_flags(irql: Irql<'_>) -> u32 {
    match irql {
        Irql::Dispatch(_) => NDIS_RETURN_FLAGS_DISPATCH_LEVEL,
        Irql::AtMostDispatch => 0,
    }
}

/// A pool of NBLs, each with one NET_BUFFER when `with_nb` (else none:
/// `NdisAllocateNetBufferList`), tagged as rawnic's pool memory; `None`
/// when NDIS cannot make one.
///
/// # Safety
/// `protocol_handle` is the protocol's registration handle.
pub(crate) unsafe fn nbl_pool(protocol_handle: NDIS_HANDLE, with_nb: bool) -> Option<NDIS_HANDLE> {
    let mut params = NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        },
        ProtocolId: NDIS_PROTOCOL_ID_DEFAULT,
        fAllocateNetBuffer: with_nb as BOOLEAN,
        ContextSize: 0,
        PoolTag: crate::kernel::alloc::POOL_TAG,
        DataSize: 0,
    };
    // SAFETY: the parameters are initialised; the handle is the protocol's
    // (caller).
    let pool = unsafe { NdisAllocateNetBufferListPool(protocol_handle, &mut params) };
    (!pool.is_null()).then_some(pool)
}

/// A pool of NET_BUFFERs without data (`NdisAllocateNetBuffer`), tagged
/// as rawnic's pool memory; `None` when NDIS cannot make one.
///
/// # Safety
/// `protocol_handle` is the protocol's registration handle.
pub(crate) unsafe fn nb_pool(protocol_handle: NDIS_HANDLE) -> Option<NDIS_HANDLE> {
    let mut params = NET_BUFFER_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NET_BUFFER_POOL_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1,
        },
        PoolTag: crate::kernel::alloc::POOL_TAG,
        DataSize: 0,
    };
    // SAFETY: the parameters are initialised; the handle is the protocol's
    // (caller).
    let pool = unsafe { NdisAllocateNetBufferPool(protocol_handle, &mut params) };
    (!pool.is_null()).then_some(pool)
}

/// `MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute)`.
///
/// # Safety
/// `mdl` is a valid MDL of locked or non-paged memory.
pub(crate) unsafe fn system_address(mdl: *mut MDL) -> *mut u8 {
    // SAFETY: valid per the caller.
    let m = unsafe { &*mdl };
    if m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        m.MappedSystemVa.cast()
    } else {
        // SAFETY: maps the locked pages; returns null on failure.
        unsafe {
            MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, ptr::null_mut(), 0, NormalPagePriorityNoExecute)
                .cast()
        }
    }
}
