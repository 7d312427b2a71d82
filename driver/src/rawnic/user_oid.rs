//! A handle's OID requests (QUERY_OID, SET_OID): checked (a set only of an
//! OID on the allow-list; a multicast list merged with the other handles'),
//! submitted to the binding, and finished when NDIS answers or the user
//! cancels.

use super::client::{Client, Mode, OidInFlight};
use super::control::fail;
use super::{OidTag, Rawnic};
use crate::kernel::alloc::{try_copy, try_zeroed};
use crate::kernel::device::{Armed, Dispatched, Irp, IrpId, PendingIrp};
use crate::kernel::oid::{OidKind, OidRequest as NdisOidRequest, Refusal, Submitted};
use crate::kernel::protocol::{NdisStatus, Protocol};
use alloc::sync::Arc;
use ndis_sys::*;
use rawnic_logic::multicast::MulticastList;
use rawnic_proto::*;

impl Rawnic {
    pub(super) fn oid(&self, file: &Arc<Client>, irp: Irp, kind: OidKind) -> Dispatched {
        let (binding, _) = match file.binding() {
            Ok(b) => b,
            Err(s) => return fail(irp, s),
        };
        let out_len = irp.output_len();
        if out_len < OidReplyHeader::LEN {
            return fail(irp, NtStatus::BUFFER_TOO_SMALL);
        }
        let data = match OidRequest::parse(irp.input()) {
            Ok(r) => match kind {
                OidKind::Set => {
                    if !OID_SET_ALLOW_LIST.contains(&r.oid) {
                        return fail(irp, NtStatus::ACCESS_DENIED);
                    }
                    try_copy(r.data).map(|d| (r.oid, d))
                }
                OidKind::Query => {
                    let room = (out_len - OidReplyHeader::LEN).min(MAX_OID_DATA as usize);
                    // A query's input goes in the buffer its answer comes
                    // back in: input that does not fit is refused, not cut.
                    if r.data.len() > room {
                        return fail(irp, NtStatus::BUFFER_TOO_SMALL);
                    }
                    try_zeroed(room).map(|mut buf| {
                        buf[..r.data.len()].copy_from_slice(r.data);
                        (r.oid, buf)
                    })
                }
            },
            Err(e) => return fail(irp, e.status()),
        };
        let Ok((oid, data)) = data else {
            return fail(irp, NtStatus::INSUFFICIENT_RESOURCES);
        };
        // A multicast list is the handle's own: the adapter gets the union.
        let multicast = if kind == OidKind::Set && oid == OID_802_3_MULTICAST_LIST {
            match MulticastList::parse(&data) {
                Some(l) => Some(l),
                None => return fail(irp, NtStatus::INVALID_PARAMETER),
            }
        } else {
            None
        };
        let (d, p) = irp.pend::<Rawnic>();
        let id = p.id();
        let mut st = file.state.lock();
        // Each holds pool (up to 64 KiB) until the miniport answers, and
        // the binding's completions look through the list.
        if st.oids.len() >= MAX_HANDLE_OIDS || st.oids.try_reserve(1).is_err() {
            drop(st);
            p.complete(NtStatus::INSUFFICIENT_RESOURCES, 0);
            return d;
        }
        let p = match p.arm_cancel() {
            Armed::Cancelled(p) => {
                drop(st);
                p.complete(NtStatus::CANCELLED, 0);
                return d;
            }
            Armed::Queued(p) => p,
        };
        // A request that reached the driver after its handle's cleanup is
        // cancelled as the cleanup cancelled the others.
        let closed = matches!(st.mode, Mode::Closed);
        let multicast_len = multicast.is_some().then_some(data.len() as u32);
        st.oids.push(OidInFlight { irp: id, oid: None, cancel_requested: closed, multicast_len });
        drop(st);
        let (data, tag) = match multicast {
            None => (data, OidTag::User { client: file.clone(), irp: p }),
            Some(list) => match self.multicast_commit(file, &binding, list) {
                Ok((union, old, generation)) => {
                    (union, OidTag::UserMulticast { client: file.clone(), irp: p, old, generation })
                }
                Err(status) => {
                    forget_oid(file, id);
                    p.complete(status, 0);
                    return d;
                }
            },
        };
        let client = file.clone();
        let sub = binding.request_oid(NdisOidRequest { kind, oid, data, tag }, |oid_id| {
            if let Some(o) = client.state.lock().oids.iter_mut().find(|o| o.irp == id) {
                o.oid = Some(oid_id);
            }
        });
        match sub {
            Submitted::Done(c) => self.oid_complete(&binding, c),
            Submitted::Pending(oid_id) => {
                // A cancel that came before the id was known.
                let cancel = file.state.lock().oids.iter().any(|o| o.irp == id && o.cancel_requested);
                if cancel {
                    binding.cancel_oid(oid_id);
                }
            }
            Submitted::Refused(why, tag) => {
                let irp = match tag {
                    OidTag::User { irp, .. } => irp,
                    OidTag::UserMulticast { irp, old, .. } => {
                        self.multicast_undo(file, &binding, old, false);
                        irp
                    }
                    _ => return d,
                };
                forget_oid(file, id);
                let status = match why {
                    Refusal::Closing => NtStatus::DEVICE_REMOVED,
                    Refusal::NoMemory => NtStatus::INSUFFICIENT_RESOURCES,
                };
                irp.complete(status, 0);
            }
        }
        d
    }
}

/// Forgets a user OID request (its entry in the handle's list); returns
/// the entry.
fn forget_oid(client: &Client, id: IrpId) -> Option<OidInFlight> {
    let mut st = client.state.lock();
    let pos = st.oids.iter().position(|o| o.irp == id);
    pos.map(|i| st.oids.swap_remove(i))
}

/// Finishes a user's OID request: the reply header, the data of a query,
/// or `STATUS_CANCELLED` if it was cancelled.
pub(super) fn finish_user_oid(
    client: &Client,
    mut irp: PendingIrp,
    kind: OidKind,
    status: NdisStatus,
    data: &[u8],
    bytes: u32,
    needed: u32,
) {
    let entry = forget_oid(client, irp.id());
    let cancelled = entry.as_ref().is_some_and(|e| e.cancel_requested);
    if cancelled && status == NdisStatus::REQUEST_ABORTED {
        irp.complete(NtStatus::CANCELLED, 0);
        return;
    }
    let out = irp.output();
    let data = if kind == OidKind::Query { &data[..data.len().min(out.len() - OidReplyHeader::LEN)] } else { &[][..] };
    // A multicast set's union held the whole of the handle's list when the
    // adapter took it, and at most what the adapter read otherwise.
    let bytes = match entry.and_then(|e| e.multicast_len) {
        Some(own) if status == NdisStatus::SUCCESS => own,
        Some(own) => bytes.min(own),
        None => bytes,
    };
    let h = OidReplyHeader {
        ndis_status: status.0,
        bytes: if kind == OidKind::Query { data.len() as u32 } else { bytes },
        bytes_needed: needed,
    };
    let n = match h.emit(out) {
        Ok(n) => n,
        Err(e) => {
            irp.complete(e.status(), 0);
            return;
        }
    };
    out[n..n + data.len()].copy_from_slice(data);
    irp.complete(NtStatus::SUCCESS, n + data.len())
}
