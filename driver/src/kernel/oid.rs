//! OID requests: `NdisOidRequest`, completed synchronously or through
//! `ProtocolOidRequestComplete`, and cancellable with
//! `NdisCancelOidRequest`.
//!
//! The binding keeps the id of every request NDIS holds and counts the OID
//! calls running, so that no OID call uses the binding handle after
//! `NdisCloseAdapterEx`: once the unbind began a new request is refused,
//! the pending ones are cancelled, and the close waits for all of them.

use super::alloc::try_box_or_back;
use super::protocol::{Binding, HeldOid, NdisStatus, Protocol, binding_arc, registered_version};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr;
use ndis_sys::*;

/// Query or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidKind {
    Query,
    Set,
}

/// A request to build. `data` is the value to set, or for a query the
/// buffer NDIS writes into (its size is the size asked for).
pub struct OidRequest<Tag> {
    pub kind: OidKind,
    pub oid: u32,
    pub data: Vec<u8>,
    pub tag: Tag,
}

/// A finished request.
#[derive(Debug)]
pub struct OidCompletion<Tag> {
    pub id: OidId,
    pub tag: Tag,
    pub kind: OidKind,
    pub oid: u32,
    pub status: NdisStatus,
    /// For a query, the bytes written; for a set, the value that was set.
    pub data: Vec<u8>,
    /// Bytes written (query) or read (set), at most the buffer's length.
    pub bytes: u32,
    pub bytes_needed: u32,
}

/// An in-flight request's identity, for `cancel_oid`: its `RequestId`,
/// never reused while the binding lives (not its address, which a later
/// request may get once this one is freed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidId(usize);

/// Why a request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The binding is unbinding: its handle is about to close.
    Closing,
    /// Memory ran out.
    NoMemory,
}

/// What `submit` did.
pub enum Submitted<Tag> {
    /// NDIS finished it at once.
    Done(OidCompletion<Tag>),
    /// NDIS will call `ProtocolOidRequestComplete`.
    Pending(OidId),
    /// Not sent; the tag comes back.
    Refused(Refusal, Tag),
}

/// What NDIS holds while a request is pending. `req` is first, so the
/// `NDIS_OID_REQUEST` pointer NDIS hands back is the block's.
#[repr(C)]
struct OidBlock<Tag> {
    req: NDIS_OID_REQUEST,
    buf: Vec<u8>,
    kind: OidKind,
    tag: Tag,
}

#[allow(clippy::boxed_local)]
fn finish<Tag>(block: Box<OidBlock<Tag>>, status: NdisStatus) -> OidCompletion<Tag> {
    let OidBlock { req, mut buf, kind, tag } = *block;
    let id = OidId(req.RequestId as usize);
    // The union member matching `kind` is the one that was filled.
    let (bytes, needed) = match kind {
        OidKind::Query => {
            // SAFETY: a query's request was filled as QUERY_INFORMATION.
            let q = unsafe { &req.DATA.QUERY_INFORMATION };
            (q.BytesWritten, q.BytesNeeded)
        }
        OidKind::Set => {
            // SAFETY: a set's request was filled as SET_INFORMATION.
            let s = unsafe { &req.DATA.SET_INFORMATION };
            (s.BytesRead, s.BytesNeeded)
        }
    };
    // A miniport's count is passed on by NDIS as it is: never more than the
    // buffer held, whatever it says.
    let bytes = bytes.min(buf.len() as u32);
    if kind == OidKind::Query {
        let n = if status == NdisStatus::SUCCESS { bytes as usize } else { 0 };
        buf.truncate(n);
    }
    // SAFETY: `Oid` is the first member of both QUERY_INFORMATION and
    // SET_INFORMATION, at the same offset, and was filled for either kind.
    let oid = unsafe { req.DATA.QUERY_INFORMATION.Oid };
    OidCompletion { id, tag, kind, oid, status, data: buf, bytes, bytes_needed: needed }
}

/// The `NDIS_OID_REQUEST` revision (and size) of the NDIS version rawnic
/// registered with: NDIS fails a driver's structure of an older revision
/// than its registered version has ("Version Information Requirements for
/// NDIS"), and revision 2 is NDIS 6.50's; a 6.30 registration passes
/// revision 1, which an NDIS 6.30 knows. Revision 2's `SwitchId`, `VPortId`
/// and `Flags` stay 0: the request is for the adapter itself.
fn request_revision(registered: Option<(u8, u8)>) -> (u8, u16) {
    match registered {
        Some((_, minor)) if minor >= NDIS_MINOR_VERSION_650 => {
            (NDIS_OID_REQUEST_REVISION_2, NDIS_SIZEOF_OID_REQUEST_REVISION_2)
        }
        _ => (NDIS_OID_REQUEST_REVISION_1, NDIS_SIZEOF_OID_REQUEST_REVISION_1),
    }
}

impl<T: Protocol> Binding<T> {
    /// Sends an OID request on this binding; `register` learns its id
    /// before NDIS sees it, so a completion on another processor always
    /// finds it.
    pub fn request_oid(&self, r: OidRequest<T::OidTag>, register: impl FnOnce(OidId)) -> Submitted<T::OidTag> {
        // SAFETY: NDIS_OID_REQUEST is plain data; all-zero is its documented
        // initial state before the header and fields are set.
        let mut req: NDIS_OID_REQUEST = unsafe { core::mem::zeroed() };
        let (revision, size) = request_revision(registered_version());
        req.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_OID_REQUEST, Revision: revision, Size: size };
        req.RequestType = match r.kind {
            OidKind::Query => NdisRequestQueryInformation,
            OidKind::Set => NdisRequestSetInformation,
        };
        req.Timeout = 0;
        let mut block = match try_box_or_back(OidBlock { req, buf: r.data, kind: r.kind, tag: r.tag }) {
            Ok(b) => b,
            Err(b) => return Submitted::Refused(Refusal::NoMemory, b.tag),
        };
        // A zero-length buffer is passed as NULL.
        let info = if block.buf.is_empty() { ptr::null_mut() } else { block.buf.as_mut_ptr() };
        let len = block.buf.len() as u32;
        match r.kind {
            OidKind::Query => {
                block.req.DATA.QUERY_INFORMATION = NDIS_OID_QUERY {
                    Oid: r.oid,
                    InformationBuffer: info.cast(),
                    InformationBufferLength: len,
                    BytesWritten: 0,
                    BytesNeeded: 0,
                };
            }
            OidKind::Set => {
                block.req.DATA.SET_INFORMATION = NDIS_OID_SET {
                    Oid: r.oid,
                    InformationBuffer: info.cast(),
                    InformationBufferLength: len,
                    BytesRead: 0,
                    BytesNeeded: 0,
                };
            }
        }
        let id = {
            let mut c = self.core.lock();
            if c.closing {
                Err(Some(Refusal::Closing))
            } else if c.low_power {
                // The adapter is in a low-power state.
                Err(None)
            } else if c.oids.try_reserve(1).is_err() {
                Err(Some(Refusal::NoMemory))
            } else {
                let id = c.next_oid_id;
                c.next_oid_id = c.next_oid_id.wrapping_add(1).max(1);
                block.req.RequestId = id as PVOID;
                let req = ptr::addr_of!(block.req) as usize;
                c.oids.push(HeldOid { req, id, cancelled: false });
                c.handle_calls += 1;
                Ok(id)
            }
        };
        let id = match id {
            Ok(id) => id,
            // No request reaches an adapter in low power: it fails as NDIS
            // would fail it, and its sender handles that as any failure.
            Err(None) => return Submitted::Done(finish(block, NdisStatus(NDIS_STATUS_LOW_POWER_STATE))),
            Err(Some(why)) => return Submitted::Refused(why, block.tag),
        };
        let raw = Box::into_raw(block);
        register(OidId(id));
        // SAFETY: `raw` is the live block leaked above.
        let req = unsafe { ptr::addr_of_mut!((*raw).req) };
        // SAFETY: the binding is open (the close waits for `handle_calls`);
        // the request and its buffer stay valid until completion: the block
        // is leaked to NDIS here and reclaimed either just below (not
        // pending) or in `oid_request_complete`.
        let status = unsafe { NdisOidRequest(self.ndis_handle(), req) };
        let out = if status == NDIS_STATUS_PENDING {
            // A cancel that came while NDIS was taking the request (the
            // unbind's, or the user's) may have found nothing to cancel:
            // ask again now that NDIS holds it (one it completed meanwhile
            // is off the list).
            if self.core.lock().oids.iter().any(|e| e.id == id && e.cancelled) {
                // SAFETY: the binding is open (this call is counted in
                // `handle_calls`); NDIS ignores an id it does not hold.
                unsafe { NdisCancelOidRequest(self.ndis_handle(), id as PVOID) };
            }
            Submitted::Pending(OidId(id))
        } else {
            self.core.lock().oids.retain(|e| e.id != id);
            // SAFETY: not pending: NDIS is done with the block.
            Submitted::Done(finish(unsafe { Box::from_raw(raw) }, NdisStatus(status)))
        };
        self.end_handle_call();
        out
    }

    /// Asks NDIS to cancel a pending request; its completion still comes
    /// (with `NDIS_STATUS_REQUEST_ABORTED` if it was cancelled). A request
    /// NDIS no longer holds is left alone.
    pub fn cancel_oid(&self, id: OidId) {
        {
            let mut c = self.core.lock();
            let Some(e) = c.oids.iter_mut().find(|e| e.id == id.0) else { return };
            e.cancelled = true;
            c.handle_calls += 1;
        }
        // SAFETY: NDIS holds the request, so the binding is open (the close
        // waits for it and for `handle_calls`).
        unsafe { NdisCancelOidRequest(self.ndis_handle(), id.0 as PVOID) };
        self.end_handle_call();
    }
}

/// `ProtocolOidRequestComplete`.
pub(crate) unsafe extern "win64" fn oid_request_complete<T: Protocol>(
    ctx: NDIS_HANDLE,
    req: *mut NDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    // SAFETY: NDIS passes our binding context and holds its count (the close
    // waits for every OID request).
    let b = unsafe { binding_arc::<T>(ctx) };
    let addr = req as usize;
    {
        // Off the list and counted as a call in one step: the close waits
        // until the protocol has heard of it, not only until NDIS gave it
        // back.
        let mut c = b.core.lock();
        c.oids.retain(|e| e.req != addr);
        c.handle_calls += 1;
    }
    // SAFETY: every request rawnic sends is the first field of an
    // `OidBlock<T::OidTag>` leaked in `request_oid`; NDIS gives it back once.
    let block = unsafe { Box::from_raw(req.cast::<OidBlock<T::OidTag>>()) };
    b.proto().oid_complete(&b, finish(block, NdisStatus(status)));
    // The close may have been waiting for this one.
    b.end_handle_call();
}
