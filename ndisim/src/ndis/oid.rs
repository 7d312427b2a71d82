//! OID requests: the adapter model's answers, `NdisOidRequest` and
//! `NdisCancelOidRequest`.

use super::*;
use crate::adapter::{self, Completion};
use crate::kernel::{self, DISPATCH_LEVEL, Kernel, call_driver, check_irql_max, irql};
use crate::verifier::{Rule, lock};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) enum Answer {
    Data(Vec<u8>),
    Set,
    Status(NDIS_STATUS),
}

pub(super) fn u32b(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The statistics the adapter model says it keeps (`SupportedStatistics`
/// of its restart attributes and of its OID_GEN_STATISTICS answers).
pub(crate) const SUPPORTED_STATISTICS: u32 = 0x3F_FFFF;

/// The `NDIS_STATISTICS_INFO` the adapter model answers
/// OID_GEN_STATISTICS with, before its counters are filled in (all zero):
/// the header (revision 1) and `SupportedStatistics`. Public so that tests
/// judging that answer build it from here, not from a copy.
pub fn statistics_info() -> NDIS_STATISTICS_INFO {
    // SAFETY: plain data.
    let mut s: NDIS_STATISTICS_INFO = unsafe { std::mem::zeroed() };
    s.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: NDIS_STATISTICS_INFO_REVISION_1,
        Size: NDIS_SIZEOF_STATISTICS_INFO_REVISION_1,
    };
    s.SupportedStatistics = SUPPORTED_STATISTICS;
    s
}

/// The adapter model's answer to a query of `oid` that stays what it is
/// while the simulation runs (`Sim::oid_answer`): the supported list, the
/// vendor's ID and description, and the MAC addresses (nothing changes
/// `Model::mac` once the adapter exists). `None` for every other OID.
pub(crate) fn static_answer(a: &Adapter, m: &Model, oid: u32) -> Option<Vec<u8>> {
    Some(match oid {
        OID_GEN_SUPPORTED_LIST => SUPPORTED_OIDS.iter().flat_map(|o| o.to_le_bytes()).collect(),
        OID_GEN_VENDOR_ID => vec![0x02, 0x00, 0x5e, 0x01],
        OID_GEN_VENDOR_DESCRIPTION => {
            let mut d = a.desc.clone().into_bytes();
            d.push(0);
            d
        }
        OID_802_3_PERMANENT_ADDRESS => m.permanent_mac.to_vec(),
        OID_802_3_CURRENT_ADDRESS => m.mac.to_vec(),
        _ => return None,
    })
}

/// The adapter model answers a query or set.
pub(super) fn answer(a: &Adapter, kind: NDIS_REQUEST_TYPE, oid: u32, input: &[u8]) -> Answer {
    if lock(&a.failing_oids).contains(&oid) {
        a.oids_failed.fetch_add(1, Ordering::Relaxed);
        return Answer::Status(NDIS_STATUS_FAILURE);
    }
    {
        let mut busy = lock(&a.busy_oids);
        if let Some(e) = busy.iter_mut().find(|e| e.0 == oid && e.1 > 0) {
            e.1 -= 1;
            a.oids_failed.fetch_add(1, Ordering::Relaxed);
            return Answer::Status(NDIS_STATUS_RESOURCES);
        }
    }
    let mut m = lock(&a.model);
    let speed100 = (m.speed / 100).min(u32::MAX as u64) as u32;
    let link_state = || {
        // SAFETY: plain data.
        let mut l: NDIS_LINK_STATE = unsafe { std::mem::zeroed() };
        l.Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NDIS_LINK_STATE_REVISION_1,
            Size: NDIS_SIZEOF_LINK_STATE_REVISION_1,
        };
        l.MediaConnectState = if m.link_up { MediaConnectStateConnected } else { MediaConnectStateDisconnected };
        l.MediaDuplexState = MediaDuplexStateFull;
        l.XmitLinkSpeed = if m.link_up { m.speed } else { 0 };
        l.RcvLinkSpeed = l.XmitLinkSpeed;
        l
    };
    let c = &a.counters;
    if kind == NdisRequestSetInformation {
        return match oid {
            OID_GEN_CURRENT_PACKET_FILTER => {
                let Some(v) = input.get(..4) else { return Answer::Status(NDIS_STATUS_INVALID_LENGTH) };
                let f = u32::from_le_bytes(v.try_into().unwrap());
                if f & !m.supported_filters != 0 || f & a.spec.refused_filters != 0 {
                    return Answer::Status(NDIS_STATUS_NOT_SUPPORTED);
                }
                m.packet_filter = f;
                Answer::Set
            }
            OID_GEN_CURRENT_LOOKAHEAD => {
                let Some(v) = input.get(..4) else { return Answer::Status(NDIS_STATUS_INVALID_LENGTH) };
                let l = u32::from_le_bytes(v.try_into().unwrap());
                if l > m.mtu {
                    return Answer::Status(NDIS_STATUS_INVALID_PARAMETER);
                }
                m.lookahead = l;
                Answer::Set
            }
            OID_802_3_MULTICAST_LIST => {
                if input.len() % 6 != 0 {
                    return Answer::Status(NDIS_STATUS_INVALID_LENGTH);
                }
                // The list is the adapter's, shared with the other
                // protocols bound to it (`multicast-held`).
                if input.len() / 6 + a.spec.multicast_held as usize > adapter::MAX_MULTICAST {
                    return Answer::Status(NDIS_STATUS_MULTICAST_FULL);
                }
                m.multicast = input.chunks(6).map(|c| c.try_into().unwrap()).collect();
                Answer::Set
            }
            _ => Answer::Status(NDIS_STATUS_NOT_SUPPORTED),
        };
    }
    if kind != NdisRequestQueryInformation && kind != NdisRequestQueryStatistics {
        return Answer::Status(NDIS_STATUS_NOT_SUPPORTED);
    }
    let as_bytes = |p: *const u8, n: usize| {
        // SAFETY: `p` points at a local plain-data value of `n` bytes.
        unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
    };
    if let Some(d) = static_answer(a, &m, oid) {
        return Answer::Data(d);
    }
    Answer::Data(match oid {
        OID_GEN_HARDWARE_STATUS => u32b(0),
        OID_GEN_MEDIA_SUPPORTED | OID_GEN_MEDIA_IN_USE => u32b(NdisMedium802_3),
        OID_GEN_MAXIMUM_LOOKAHEAD | OID_GEN_MAXIMUM_FRAME_SIZE => u32b(m.mtu),
        OID_GEN_CURRENT_LOOKAHEAD => u32b(m.lookahead),
        OID_GEN_MAXIMUM_TOTAL_SIZE => u32b(m.mtu + 14),
        OID_GEN_LINK_SPEED => u32b(if m.link_up { speed100 } else { 0 }),
        OID_GEN_TRANSMIT_BUFFER_SPACE | OID_GEN_RECEIVE_BUFFER_SPACE => u32b((m.mtu + 14) * 256),
        OID_GEN_CURRENT_PACKET_FILTER => u32b(m.packet_filter),
        OID_GEN_DRIVER_VERSION => vec![0x14, 0x06],
        OID_GEN_MAC_OPTIONS => u32b(a.mac_options()),
        OID_GEN_MEDIA_CONNECT_STATUS => u32b(if m.link_up { 0 } else { 1 }),
        OID_GEN_MAXIMUM_SEND_PACKETS => u32b(1),
        OID_GEN_VENDOR_DRIVER_VERSION => u32b(0x0001_0000),
        OID_GEN_PHYSICAL_MEDIUM => u32b(14),
        OID_GEN_RECEIVE_SCALE_CAPABILITIES => {
            if !a.spec.rss {
                return Answer::Status(NDIS_STATUS_NOT_SUPPORTED);
            }
            rss_caps().to_vec()
        }
        OID_GEN_MAX_LINK_SPEED => [m.speed.to_le_bytes(), m.speed.to_le_bytes()].concat(),
        OID_GEN_LINK_STATE => {
            let l = link_state();
            as_bytes((&l as *const NDIS_LINK_STATE).cast(), std::mem::size_of::<NDIS_LINK_STATE>())
        }
        OID_GEN_XMIT_OK => c.tx_frames.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_RCV_OK => c.rx_frames.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_XMIT_ERROR => c.tx_errors.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_RCV_ERROR => 0u64.to_le_bytes().to_vec(),
        OID_GEN_RCV_NO_BUFFER => c.rx_dropped.load(Ordering::Relaxed).to_le_bytes().to_vec(),
        OID_GEN_STATISTICS => {
            let mut s = statistics_info();
            s.ifHCInUcastPkts = c.rx_frames.load(Ordering::Relaxed);
            s.ifHCInOctets = c.rx_bytes.load(Ordering::Relaxed);
            s.ifHCOutUcastPkts = c.tx_frames.load(Ordering::Relaxed);
            s.ifHCOutOctets = c.tx_bytes.load(Ordering::Relaxed);
            s.ifInDiscards = c.rx_dropped.load(Ordering::Relaxed);
            s.ifOutErrors = c.tx_errors.load(Ordering::Relaxed);
            as_bytes((&s as *const NDIS_STATISTICS_INFO).cast(), std::mem::size_of::<NDIS_STATISTICS_INFO>())
        }
        OID_802_3_MULTICAST_LIST => m.multicast.concat(),
        OID_802_3_MAXIMUM_LIST_SIZE => u32b(adapter::MAX_MULTICAST as u32),
        _ => return Answer::Status(NDIS_STATUS_NOT_SUPPORTED),
    })
}

/// What a miniport with `AdapterSpec::oid_overstate` claims beyond the
/// request's buffer.
const OVERSTATED: u32 = 64;

fn overstated(a: &Adapter) -> u32 {
    if a.spec.oid_overstate { OVERSTATED } else { 0 }
}

/// Fills in the request's result fields; returns the status.
///
/// # Safety
/// `req` is a valid request NDIS owns.
pub(super) unsafe fn apply_answer(a: &Adapter, req: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
    // SAFETY: per the caller.
    unsafe { apply_answer_from(a, req, None) }
}

/// `apply_answer`, a query answered with `early` where the adapter made
/// its answer when the request arrived (`Sim::answer_queries_on_arrival`).
///
/// # Safety
/// As `apply_answer`.
pub(super) unsafe fn apply_answer_from(a: &Adapter, req: *mut NDIS_OID_REQUEST, early: Option<Answer>) -> NDIS_STATUS {
    // SAFETY: per the caller.
    unsafe {
        let r = &mut *req;
        let kind = r.RequestType;
        match kind {
            NdisRequestSetInformation => {
                let s = &mut r.DATA.SET_INFORMATION;
                let input = if s.InformationBuffer.is_null() {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(s.InformationBuffer.cast::<u8>(), s.InformationBufferLength as usize)
                };
                let status = match answer(a, kind, s.Oid, input) {
                    Answer::Set => {
                        s.BytesRead = s.InformationBufferLength + overstated(a);
                        NDIS_STATUS_SUCCESS
                    }
                    Answer::Status(st) => st,
                    Answer::Data(_) => NDIS_STATUS_NOT_SUPPORTED,
                };
                lock(&a.set_answers).push(SetAnswer {
                    oid: s.Oid,
                    data: input.to_vec(),
                    status,
                    bytes_read: s.BytesRead,
                    bytes_needed: s.BytesNeeded,
                });
                if s.Oid == OID_802_3_MULTICAST_LIST && status != NDIS_STATUS_SUCCESS {
                    a.multicast_sets_failed.fetch_add(1, Ordering::Relaxed);
                }
                if s.Oid == OID_GEN_CURRENT_PACKET_FILTER
                    && !matches!(status, NDIS_STATUS_SUCCESS | NDIS_STATUS_RESOURCES)
                {
                    a.filter_sets_failed.fetch_add(1, Ordering::Relaxed);
                }
                status
            }
            NdisRequestQueryInformation | NdisRequestQueryStatistics => {
                let q = &mut r.DATA.QUERY_INFORMATION;
                match early.unwrap_or_else(|| answer(a, kind, q.Oid, &[])) {
                    Answer::Data(d) => {
                        // 64-bit counters may be read into 4 bytes.
                        let small_counter = matches!(
                            q.Oid,
                            OID_GEN_XMIT_OK
                                | OID_GEN_RCV_OK
                                | OID_GEN_XMIT_ERROR
                                | OID_GEN_RCV_ERROR
                                | OID_GEN_RCV_NO_BUFFER
                        ) && q.InformationBufferLength == 4;
                        let n = if small_counter { 4 } else { d.len() };
                        if (q.InformationBufferLength as usize) < n || (n > 0 && q.InformationBuffer.is_null()) {
                            q.BytesNeeded = d.len() as u32;
                            q.BytesWritten = 0;
                            return NDIS_STATUS_BUFFER_TOO_SHORT;
                        }
                        std::ptr::copy_nonoverlapping(d.as_ptr(), q.InformationBuffer.cast::<u8>(), n);
                        q.BytesWritten =
                            if a.spec.oid_overstate { q.InformationBufferLength + OVERSTATED } else { n as u32 };
                        q.BytesNeeded = 0;
                        NDIS_STATUS_SUCCESS
                    }
                    Answer::Status(st) => st,
                    Answer::Set => NDIS_STATUS_NOT_SUPPORTED,
                }
            }
            _ => NDIS_STATUS_NOT_SUPPORTED,
        }
    }
}

pub(crate) unsafe extern "win64" fn NdisOidRequest(h: NDIS_HANDLE, req: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
    const CALL: &str = "NdisOidRequest";
    export(CALL, NDIS_STATUS_FAILURE, |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(in_call) = k.ndis.binding(h, CALL, false) else { return NDIS_STATUS_INVALID_PARAMETER };
        let b = in_call.get();
        // Dropped before `in_call`: the call is still counted as in it.
        let _on_return = StallOnReturn(k, k.ndis.adapter(b.adapter));
        stall_oid_call(k, k.ndis.adapter(b.adapter));
        if !b.open_done.load(Ordering::Acquire) {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "an OID request on a binding whose open has not completed (NdisOpenAdapterEx pended; ProtocolOpenAdapterCompleteEx has not been called)",
            )
            .with_binding(b.name.clone())
            .report();
            return NDIS_STATUS_ADAPTER_NOT_READY;
        }
        if req.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null OidRequest").with_binding(b.name.clone()).report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        if lock(&k.ndis.oids).iter().any(|p| p.req == req as usize) {
            Violation::new(
                Rule::OidDoubleComplete,
                CALL,
                "submitted an NDIS_OID_REQUEST that NDIS still owns from an earlier NdisOidRequest; NDIS would complete it twice",
            )
            .with_binding(b.name.clone())
            .with_object(req as usize)
            .report();
            return NDIS_STATUS_FAILURE;
        }
        // SAFETY: the driver's request.
        let r = unsafe { &mut *req };
        // The revision that goes with the protocol's registered version
        // (`versions`), and only then the members it has.
        if let Some(why) = oid_request_header_wrong(&r.Header, b.proto.chars.MinorNdisVersion) {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "bad NDIS_OID_REQUEST header {{Type {:#x}, Revision {}, Size {:#x}}}: {why}",
                    r.Header.Type, r.Header.Revision, r.Header.Size
                ),
            )
            .with_binding(b.name.clone())
            .with_object(req as usize)
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // Revision 2's members: ndisim's miniports have no NIC switch, so
        // no VPort a request could be for (as no port, below).
        if r.Header.Revision >= NDIS_OID_REQUEST_REVISION_2
            && (r.Flags & NDIS_OID_REQUEST_FLAGS_VPORT_ID_VALID != 0 || r.SwitchId != 0)
        {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "NDIS_OID_REQUEST SwitchId {} VPortId {} Flags {:#x}: the miniport has no NIC switch and no VPort \
                     (a protocol's request to the adapter itself has SwitchId 0 and Flags without \
                     NDIS_OID_REQUEST_FLAGS_VPORT_ID_VALID)",
                    r.SwitchId, r.VPortId, r.Flags
                ),
            )
            .with_binding(b.name.clone())
            .with_object(req as usize)
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // ndisim's miniports allocate no ports: only the default one (0)
        // is, and NDIS fails a request to a port the miniport did not
        // allocate, as it does a send (`NdisSendNetBufferLists`).
        if r.PortNumber != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "NDIS_OID_REQUEST.PortNumber {}: the miniport allocated no such port (a protocol without ports \
                     sends its requests to 0)",
                    r.PortNumber
                ),
            )
            .with_binding(b.name.clone())
            .with_object(req as usize)
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        let a = k.ndis.adapter(b.adapter).clone();
        // SAFETY: the query and set members share the OID, buffer and
        // length fields (checked in ndis-sys's layout tests).
        let (oid, buf, len) = unsafe {
            (
                r.DATA.QUERY_INFORMATION.Oid,
                r.DATA.QUERY_INFORMATION.InformationBuffer,
                r.DATA.QUERY_INFORMATION.InformationBufferLength,
            )
        };
        if buf.is_null() && len != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("OID {oid:#x}: a NULL InformationBuffer with InformationBufferLength {len}"),
            )
            .with_binding(b.name.clone())
            .with_object(req as usize)
            .report();
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // "Both buffers must be allocated from nonpaged pool because the
        // underlying driver runs at raised IRQL while processing the
        // request": pool the driver allocated as paged is caught here (a
        // fault at DISPATCH_LEVEL on Windows, when the page is out).
        let paged = |at: usize, n: usize| n != 0 && k.pool.containing(at, n).is_some_and(|blk| blk.pool_type & 1 == 1);
        for (what, at, n) in [
            ("NDIS_OID_REQUEST", req as usize, std::mem::size_of::<NDIS_OID_REQUEST>()),
            ("InformationBuffer", buf as usize, len as usize),
        ] {
            if paged(at, n) {
                Violation::new(
                    Rule::InvalidParameter,
                    CALL,
                    format!(
                        "OID {oid:#x}: the {what} is in paged pool; NDIS and the miniport use it at DISPATCH_LEVEL"
                    ),
                )
                .with_binding(b.name.clone())
                .with_object(at)
                .report();
            }
        }
        if !lock(&a.model).powered {
            Violation::new(
                Rule::LowPower,
                CALL,
                format!(
                    "OID {oid:#x} requested while the adapter is in a low-power state (after NetEventSetPower for D1-D3, before D0); NDIS fails it with NDIS_STATUS_LOW_POWER_STATE"
                ),
            )
            .with_binding(b.name.clone())
            .with_object(req as usize)
            .report();
            return NDIS_STATUS_LOW_POWER_STATE;
        }
        lock(&a.oid_log).push((r.RequestType, oid, len, buf.is_null()));
        // NDIS's and the miniport's areas of the request are theirs from
        // here on: whatever they put there (a driver that kept its own
        // context in them, not in `SourceReserved`, reads this back).
        r.NdisReserved = [0xBAD0_0D15_0000_0000usize as PVOID; 16];
        r.MiniportReserved = [0xBAD0_0D15_0000_0001usize as PVOID; 2];
        // The open binding: the adapter's once bound, else (during the bind,
        // after the open completed: NDIS allows requests there too, and
        // they may pend) NDIS's list of open bindings.
        let bound = lock(&a.binding).clone().filter(|x| std::ptr::eq(Arc::as_ptr(x), b));
        let bind = bound.or_else(|| lock(&k.ndis.bindings).iter().find(|x| std::ptr::eq(Arc::as_ptr(x), b)).cloned());
        // Whether the OIDs are held is read under the pending list's lock,
        // which `release_oids` holds while it lets go: a request is either
        // on the list when a release collects it, or sees the hold gone.
        // (Read outside it, a request could find the hold on, be listed
        // just after a release took its list, and pend for ever: the
        // chaos explorer's free seed 11004739, a restart that never
        // finished.)
        let mut pending = lock(&k.ndis.oids);
        let hold = a.oid_hold.load(Ordering::Acquire);
        let bind = match bind {
            Some(bind) if a.spec.oid != Completion::Sync || hold => bind,
            _ => {
                drop(pending);
                // Answered now.
                // SAFETY: as above.
                return unsafe { apply_answer(&a, req) };
            }
        };
        // Pending: the miniport reads a set's value and writes a query's
        // answer (and BytesRead, BytesWritten, BytesNeeded) when it
        // completes the request, not now, so a driver that reads the
        // answer on NDIS_STATUS_PENDING, or frees or reuses the buffer
        // before the completion, is caught (`finish_oid`).
        b.oids.fetch_add(1, Ordering::AcqRel);
        let seq = NEXT_OID_SEQ.fetch_add(1, Ordering::Relaxed);
        // A miniport that answers a query from its state when the request
        // arrives, and completes it later: the answer may be older than an
        // indication made meanwhile (written into the buffer only at the
        // completion all the same).
        let early = (a.oid_answer_on_arrival.load(Ordering::Acquire)
            && matches!(r.RequestType, NdisRequestQueryInformation | NdisRequestQueryStatistics))
        .then(|| {
            // SAFETY: a query's union member, valid (checked above).
            let oid = unsafe { r.DATA.QUERY_INFORMATION.Oid };
            answer(&a, r.RequestType, oid, &[])
        });
        pending.push(PendingOid {
            early,
            req: req as usize,
            seq,
            request_id: r.RequestId as usize,
            binding: bind,
            // SAFETY: the driver's request, valid (checked above).
            fields: unsafe { request_fields(req) },
        });
        drop(pending);
        if !hold && a.spec.oid == Completion::Inline {
            finish_oid(k, (req as usize, seq), None);
        } else if !hold {
            let rq = (req as usize, seq);
            k.dpc.push(Duration::ZERO, DISPATCH_LEVEL, move || {
                if let Some(k) = kernel::kernel() {
                    finish_oid(k, rq, None);
                }
            });
        }
        NDIS_STATUS_PENDING
    })
}

/// `Sim::stall_oid_calls`: the call waits here, inside `NdisOidRequest`
/// and before NDIS looks at the request (as one whose thread NDIS, a
/// filter driver or the miniport keeps a while before it gets to it),
/// until `Sim::release_oid_calls`, at most the watchdog's time.
fn stall_oid_call(k: &Kernel, a: &Adapter) {
    stall_while(k, &a.oid_stall, &a.oid_stalled, "an NdisOidRequest call the test stalled");
}

/// `Sim::stall_oid_returns`: the call waits at its end, whatever it
/// answers, until `Sim::release_oid_returns` (at most the watchdog's time):
/// a thread still inside `NdisOidRequest` after its request completed in
/// the call (as NDIS or a filter driver takes a while to return).
struct StallOnReturn<'k>(&'k Kernel, &'k Adapter);

impl Drop for StallOnReturn<'_> {
    fn drop(&mut self) {
        let (k, a) = (self.0, self.1);
        stall_while(k, &a.oid_stall_return, &a.oid_stalled_return, "an NdisOidRequest return the test stalled");
    }
}

/// What of a request must not change while it pends: header, type, OID,
/// buffer and its length, RequestId (a cancel names the request by it),
/// PortNumber and Timeout.
pub(super) type RequestFields = (u8, u8, u16, u32, u32, usize, u32, usize, u32, u32);

/// `RequestFields` of `req`.
///
/// # Safety
/// `req` is a valid request.
pub(super) unsafe fn request_fields(req: *mut NDIS_OID_REQUEST) -> RequestFields {
    // SAFETY: per the caller; the query and set members share the OID,
    // buffer and length fields.
    unsafe {
        let r = &*req;
        let q = &r.DATA.QUERY_INFORMATION;
        (
            r.Header.Type,
            r.Header.Revision,
            r.Header.Size,
            r.RequestType,
            q.Oid,
            q.InformationBuffer as usize,
            q.InformationBufferLength,
            r.RequestId as usize,
            r.PortNumber,
            r.Timeout,
        )
    }
}

/// Numbers OID submissions (`PendingOid::seq`).
static NEXT_OID_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Completes a pending OID request (with its status, or `status`), if that
/// submission (address and sequence number) is still pending.
pub(super) fn finish_oid(k: &Kernel, (req, seq): (usize, u64), status: Option<NDIS_STATUS>) -> bool {
    let p = {
        let mut l = lock(&k.ndis.oids);
        let Some(i) = l.iter().position(|p| p.req == req && p.seq == seq) else { return false };
        l.remove(i)
    };
    // The request is NDIS's while it pends: its header, type, OID and
    // buffer are what it was given.
    // SAFETY: pending until the completion below, so valid.
    if unsafe { request_fields(req as *mut NDIS_OID_REQUEST) } != p.fields {
        Violation::new(
            Rule::InvalidParameter,
            "NdisOidRequest",
            "the NDIS_OID_REQUEST (its header, type, OID, buffer, RequestId, PortNumber or Timeout) was changed while it was pending",
        )
        .with_binding(p.binding.name.clone())
        .with_object(req)
        .report();
    }
    let st = match status {
        Some(s) => s,
        None => {
            let a = k.ndis.adapter(p.binding.adapter).clone();
            // SAFETY: the request is pending (listed), so it is NDIS's
            // and valid until the completion below.
            unsafe { apply_answer_from(&a, req as *mut NDIS_OID_REQUEST, p.early) }
        }
    };
    p.binding.oids.fetch_sub(1, Ordering::AcqRel);
    let handler = p.binding.proto.chars.OidRequestCompleteHandler.expect("validated");
    let ctx = p.binding.ctx;
    let _call = p.binding.enter_call(true);
    // At the IRQL of whoever completes it ("IRQL <= DISPATCH_LEVEL"): a
    // miniport's DPC, or a thread at PASSIVE_LEVEL (a completion inside
    // the request's own call, or one a test releases), where a handler
    // that assumes DISPATCH_LEVEL (NdisDprAcquireSpinLock) is caught.
    let level = irql();
    kernel::at_irql(level, || {
        call_driver("ProtocolOidRequestComplete", level, || {
            // SAFETY: the driver's handler with its binding context and the
            // request it submitted.
            unsafe { handler(ctx as NDIS_HANDLE, req as *mut NDIS_OID_REQUEST, st) }
        })
    });
    true
}

impl super::Ndis {
    /// Pending OID requests (NDIS's until their completion handler is
    /// called) whose structure begins in `lo..hi`.
    pub(crate) fn oids_in(&self, lo: usize, hi: usize) -> Vec<usize> {
        lock(&self.oids).iter().map(|p| p.req).filter(|r| (lo..hi).contains(r)).collect()
    }

    /// The InformationBuffers of pending OID requests (the miniport reads
    /// a set's value, and writes a query's answer, until the completion)
    /// that overlap `lo..hi`, of requests outside it (one inside is
    /// `oids_in`'s): their start and the OID.
    pub(crate) fn oid_buffers_in(&self, lo: usize, hi: usize) -> Vec<(usize, u32)> {
        lock(&self.oids)
            .iter()
            .filter(|p| {
                let (buf, len) = (p.fields.5, p.fields.6 as usize);
                len != 0 && buf < hi && lo < buf.saturating_add(len) && !(lo..hi).contains(&p.req)
            })
            .map(|p| (p.fields.5, p.fields.4))
            .collect()
    }
}

/// Completes held OID requests of `a`.
pub(crate) fn release_oids(k: &Kernel, a: &Adapter) -> usize {
    let reqs: Vec<(usize, u64)> = {
        let pending = lock(&k.ndis.oids);
        a.oid_hold.store(false, Ordering::Release);
        pending.iter().filter(|p| p.binding.adapter == a.idx).map(|p| (p.req, p.seq)).collect()
    };
    let mut n = 0;
    for r in reqs {
        if finish_oid(k, r, None) {
            n += 1;
        }
    }
    n
}

/// A set the adapter's miniport answered (`Sim::count_set_answers`): the
/// OID, the value it read, its status and what it wrote in the request's
/// BytesRead and BytesNeeded (a success reads the whole value, or claims
/// more with `AdapterSpec::oid_overstate`; a failure leaves both as the
/// driver filled them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAnswer {
    pub oid: u32,
    pub data: Vec<u8>,
    pub status: NDIS_STATUS,
    pub bytes_read: u32,
    pub bytes_needed: u32,
}

/// An OID request pending at an adapter, as a test sees it
/// (`Sim::pending_oids`): which submission, its request type and OID, and
/// a set's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOid {
    pub seq: u64,
    pub kind: NDIS_REQUEST_TYPE,
    pub oid: u32,
    pub data: Vec<u8>,
}

/// The OID requests pending at `a`, in the order they were made.
pub(crate) fn pending_oids(k: &Kernel, a: &Adapter) -> Vec<HeldOid> {
    // Under the list's lock: a listed request is NDIS's (its completion
    // takes it off the list first), so its buffer is the driver's to keep.
    let l = lock(&k.ndis.oids);
    l.iter()
        .filter(|p| p.binding.adapter == a.idx)
        .map(|p| {
            let (kind, oid, buf, len) = (p.fields.3, p.fields.4, p.fields.5, p.fields.6 as usize);
            let data = if kind == NdisRequestSetInformation && buf != 0 && len != 0 {
                // SAFETY: pending (listed, under the lock), so the set's
                // InformationBuffer of `len` bytes is valid.
                unsafe { std::slice::from_raw_parts(buf as *const u8, len) }.to_vec()
            } else {
                Vec::new()
            };
            HeldOid { seq: p.seq, kind, oid, data }
        })
        .collect()
}

/// Completes `a`'s pending request `seq` (`HeldOid::seq`) alone: as the
/// adapter answers it now (`fail` `None`), or failed with `fail`, the
/// adapter's state unchanged (counted as the adapter's own failures are).
/// False when no such request is pending.
pub(crate) fn complete_oid(k: &Kernel, a: &Adapter, seq: u64, fail: Option<NDIS_STATUS>) -> bool {
    let found = lock(&k.ndis.oids)
        .iter()
        .find(|p| p.seq == seq && p.binding.adapter == a.idx)
        .map(|p| (p.req, p.fields.3, p.fields.4));
    let Some((req, kind, oid)) = found else { return false };
    let fail = fail.filter(|&s| s != NDIS_STATUS_SUCCESS);
    let done = finish_oid(k, (req, seq), fail);
    if done && fail.is_some() {
        a.oids_failed.fetch_add(1, Ordering::Relaxed);
        if kind == NdisRequestSetInformation && oid == OID_802_3_MULTICAST_LIST {
            a.multicast_sets_failed.fetch_add(1, Ordering::Relaxed);
        }
        if kind == NdisRequestSetInformation
            && oid == OID_GEN_CURRENT_PACKET_FILTER
            && fail != Some(NDIS_STATUS_RESOURCES)
        {
            a.filter_sets_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    done
}

pub(crate) unsafe extern "win64" fn NdisCancelOidRequest(h: NDIS_HANDLE, request_id: PVOID) {
    const CALL: &str = "NdisCancelOidRequest";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(in_call) = k.ndis.binding(h, CALL, false) else { return };
        let b = in_call.get();
        // A RequestId names every pending request that carries it (the
        // reference speaks of the structures being cancelled), not only the
        // first.
        let reqs: Vec<(usize, u64)> = lock(&k.ndis.oids)
            .iter()
            .filter(|p| p.request_id == request_id as usize && std::ptr::eq(Arc::as_ptr(&p.binding), b))
            .map(|p| (p.req, p.seq))
            .collect();
        let adapter = k.ndis.adapters().get(b.adapter).cloned();
        for rq in reqs {
            // A miniport may ignore the cancel (`cancel-ignore`): the
            // request completes as it would have.
            if let Some(a) = &adapter {
                if a.spec.cancel_ignore != 0 && a.draw(&a.cancel_draws, a.spec.cancel_ignore, 0x4341_4E43).is_some() {
                    continue;
                }
            }
            // A miniport that completes inline (`oid=inline`) aborts it
            // inside this call, at the caller's IRQL: a driver holding a
            // lock across the cancel that its completion handler takes, or
            // touching the request after the cancel returns, is caught.
            if adapter.as_ref().is_some_and(|a| a.spec.oid == Completion::Inline) {
                finish_oid(k, rq, Some(NDIS_STATUS_REQUEST_ABORTED));
                continue;
            }
            // Else the miniport aborts it and completes it from its own
            // context.
            k.dpc.push(Duration::ZERO, DISPATCH_LEVEL, move || {
                if let Some(k) = kernel::kernel() {
                    finish_oid(k, rq, Some(NDIS_STATUS_REQUEST_ABORTED));
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `static_answer` (`Sim::oid_answer`) is what the miniport answers a
    /// query with, for the OIDs it covers, and covers none whose answer
    /// follows the adapter's state.
    #[test]
    fn static_answers_are_the_miniport_s() {
        let spec = adapter::AdapterSpec::parse("null@name=eth0,mac=02:00:5e:10:00:07").expect("a spec").remove(0);
        let a = Adapter::new(0, "eth0".into(), spec, None);
        for oid in [OID_GEN_SUPPORTED_LIST, OID_GEN_VENDOR_ID, OID_GEN_VENDOR_DESCRIPTION, OID_802_3_CURRENT_ADDRESS] {
            let m = lock(&a.model).clone();
            let s = static_answer(&a, &m, oid).expect("a static answer");
            match answer(&a, NdisRequestQueryInformation, oid, &[]) {
                Answer::Data(d) => assert_eq!(d, s, "OID {oid:#x}"),
                _ => panic!("OID {oid:#x}: no data"),
            }
        }
        let m = lock(&a.model).clone();
        assert_eq!(static_answer(&a, &m, OID_802_3_CURRENT_ADDRESS), Some(vec![0x02, 0x00, 0x5e, 0x10, 0x00, 0x07]));
        for oid in [OID_GEN_LINK_SPEED, OID_GEN_LINK_STATE, OID_GEN_XMIT_OK, OID_802_3_MULTICAST_LIST, 0x00FF_FF01] {
            assert_eq!(static_answer(&a, &m, oid), None, "OID {oid:#x}");
        }
    }
}
