//! The OID answers oracle: what a successful QUERY_OID reply says.
//!
//! rawnic matches NDIS's completions to user requests by request id; a
//! driver that handed one request's answer to another (two handles, or two
//! requests of one handle, asking for different OIDs at once) passes every
//! check of the reply's header. Here the data of each successful query
//! (`ndis_status` NDIS_STATUS_SUCCESS) is judged against what ndisim's
//! miniport answers for the OID asked:
//!
//! - the supported list, the vendor's description and the current MAC
//!   address never change while a schedule runs: the bytes must be
//!   exactly the miniport's (`Sim::oid_answer`);
//! - the others follow the adapter's state, so their shape is judged: the
//!   exact length ndisim answers with (an `NDIS_LINK_STATE` or
//!   `NDIS_STATISTICS_INFO` whole, with its header's Type, Revision and
//!   Size; 4 bytes of link speed, 0 or the adapter's speed in 100 bit/s;
//!   8 bytes of sent frames, or 4 into a 4-byte buffer, no more than the
//!   adapter sent so far; 4 bytes of packet filter with only bits the
//!   miniport may have taken; a multicast list of
//!   whole group addresses, at most ndisim's 32;
//!   and of the maximum frame size (asked by requests sent after their
//!   handle's cleanup or racing a cancel), 4 bytes of an MTU the adapter
//!   may have had (its spec's or one a restart of the schedule gave it);
//! - ndisim answers no other OID the explorer asks for (0x00FFFF01): a
//!   success for it is another request's answer.
//!
//! A miniport that overstates (`oid-overstate=on`) says it wrote more
//! than the buffer; the driver then passes the whole buffer, the answer
//! and the zeros behind it (a 4-byte answer then reads as a small count
//! of sent frames, or one with an odd first byte as a one-group list: the
//! oracle cannot tell those apart there). A handle is opened on one
//! adapter at most, so the adapter a reply came from is the one the
//! explorer saw its file object open on; where the OPEN's success is not recorded yet (a shared
//! handle's OPEN racing the query from another thread), the reply must be
//! what one of the schedule's adapters could answer.

use super::Ctx;
use crate::schedule::PnpAction;
use ndis_sys::*;
use std::sync::atomic::Ordering;

/// What the oracle knows of the miniport a reply came from.
#[derive(Debug, Clone, Default)]
pub struct Miniport {
    /// `Sim::oid_answer` for the OID asked (`None` for one whose answer
    /// follows the adapter's state).
    pub fixed: Option<Vec<u8>>,
    /// `oid-overstate=on`.
    pub overstates: bool,
    /// Its link speed in bits/s while the link is up.
    pub speed: u64,
    /// The packet filter bits it may have taken (its spec's supported
    /// filters and those the schedule's restarts of it give).
    pub filters: u32,
    /// The MTUs it may have had: its spec's, and those the schedule's
    /// restarts of it give (`RestartSpec::mtu`).
    pub mtus: Vec<u32>,
    /// Frames it sent so far (`Sim::sent_frames`, read after the reply:
    /// the count only grows, so no answer of OID_GEN_XMIT_OK is above it).
    pub sent: u64,
}

/// ndisim's `adapter::MAX_MULTICAST`: the longest list its miniport takes.
const MAX_MULTICAST: usize = 32;

/// Judges a successful query's answer `data` to `oid`, asked with a
/// `limit`-byte buffer, against each miniport it may have come from: `Ok`
/// if one of them answers that way.
pub fn judge(oid: u32, limit: u32, data: &[u8], from: &[Miniport]) -> Result<(), String> {
    let mut first = None;
    for m in from {
        match judge_one(oid, limit, data, m) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| "no adapter it may have come from".into()))
}

fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([d[o], d[o + 1]])
}

fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(d[o..o + 4].try_into().expect("4 bytes"))
}

fn u64_at(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().expect("8 bytes"))
}

/// An `NDIS_OBJECT_HEADER` at the start of `d`.
fn header(d: &[u8], revision: u8, size: u16) -> Result<(), String> {
    let (t, r, s) = (d[0], d[1], u16_at(d, 2));
    if (t, r, s) != (NDIS_OBJECT_TYPE_DEFAULT, revision, size) {
        return Err(format!(
            "its header is {{Type {t:#x}, Revision {r}, Size {s:#x}}}, not {{Type {NDIS_OBJECT_TYPE_DEFAULT:#x}, Revision {revision}, Size {size:#x}}}"
        ));
    }
    Ok(())
}

fn judge_one(oid: u32, limit: u32, data: &[u8], m: &Miniport) -> Result<(), String> {
    // The answer's length, as ndisim writes it.
    let n = match oid {
        OID_GEN_SUPPORTED_LIST | OID_GEN_VENDOR_DESCRIPTION | OID_802_3_CURRENT_ADDRESS => {
            m.fixed.as_ref().map(Vec::len).ok_or("the adapter's fixed answer is unknown")?
        }
        OID_GEN_LINK_SPEED | OID_GEN_CURRENT_PACKET_FILTER | OID_GEN_MAXIMUM_FRAME_SIZE => 4,
        // A 64-bit counter may be read into 4 bytes.
        OID_GEN_XMIT_OK => {
            if limit == 4 {
                4
            } else {
                8
            }
        }
        OID_GEN_STATISTICS => std::mem::size_of::<NDIS_STATISTICS_INFO>(),
        OID_GEN_LINK_STATE => std::mem::size_of::<NDIS_LINK_STATE>(),
        OID_802_3_MULTICAST_LIST => {
            // Whole group addresses, then (overstated) the buffer's zeros.
            let whole = data.chunks_exact(6).take_while(|a| a[0] & 1 == 1).count() * 6;
            if m.overstates { whole } else { data.len() }
        }
        _ => return Err("ndisim's miniport does not answer this OID".into()),
    };
    if m.overstates {
        if data.len() != limit as usize || n > data.len() {
            return Err(format!(
                "{} bytes, but an overstating miniport's {n}-byte answer comes back as the whole {limit}-byte buffer",
                data.len()
            ));
        }
        if data[n..].iter().any(|&b| b != 0) {
            return Err(format!("bytes behind the {n}-byte answer in an overstating miniport's buffer are not zero"));
        }
    } else if data.len() != n {
        return Err(format!("{} bytes, but ndisim's miniport answers with {n}", data.len()));
    }
    let d = &data[..n];
    match oid {
        OID_GEN_SUPPORTED_LIST | OID_GEN_VENDOR_DESCRIPTION | OID_802_3_CURRENT_ADDRESS
            if Some(d) != m.fixed.as_deref() =>
        {
            return Err(format!("{d:02x?}, not the miniport's {:02x?}", m.fixed.as_deref().unwrap_or_default()));
        }
        OID_GEN_XMIT_OK => {
            let v = if n == 4 { u64::from(u32_at(d, 0)) } else { u64_at(d, 0) };
            if v > m.sent {
                return Err(format!("{v} frames sent, more than the {} the adapter sent so far", m.sent));
            }
        }
        OID_GEN_LINK_SPEED => {
            let (v, speed) = (u32_at(d, 0), (m.speed / 100).min(u64::from(u32::MAX)) as u32);
            if v != 0 && v != speed {
                return Err(format!("a link speed of {v} (100 bit/s), not 0 nor the adapter's {speed}"));
            }
        }
        OID_GEN_MAXIMUM_FRAME_SIZE => {
            let v = u32_at(d, 0);
            if !m.mtus.contains(&v) {
                return Err(format!("a maximum frame size of {v}, not an MTU the adapter had ({:?})", m.mtus));
            }
        }
        OID_GEN_CURRENT_PACKET_FILTER => {
            let v = u32_at(d, 0);
            let allowed = m.filters;
            if v & !allowed != 0 {
                return Err(format!(
                    "a packet filter {v:#x} with bits the miniport never took (it takes {allowed:#x})"
                ));
            }
        }
        OID_GEN_STATISTICS => {
            header(d, NDIS_STATISTICS_INFO_REVISION_1, NDIS_SIZEOF_STATISTICS_INFO_REVISION_1)?;
            let supported = u32_at(d, 4);
            if supported != 0x3F_FFFF {
                return Err(format!("SupportedStatistics {supported:#x}, not ndisim's 0x3fffff"));
            }
        }
        OID_GEN_LINK_STATE => {
            header(d, NDIS_LINK_STATE_REVISION_1, NDIS_SIZEOF_LINK_STATE_REVISION_1)?;
            let (connect, duplex) = (u32_at(d, 4), u32_at(d, 8));
            let (xmit, rcv) = (u64_at(d, 16), u64_at(d, 24));
            let speed = if connect == MediaConnectStateConnected {
                m.speed
            } else if connect == MediaConnectStateDisconnected {
                0
            } else {
                return Err(format!("MediaConnectState {connect}, neither connected nor disconnected"));
            };
            if duplex != MediaDuplexStateFull || xmit != speed || rcv != speed {
                return Err(format!(
                    "MediaConnectState {connect}, MediaDuplexState {duplex}, speeds {xmit} and {rcv}: not ndisim's full duplex at {speed} bit/s"
                ));
            }
        }
        OID_802_3_MULTICAST_LIST => {
            if d.len() % 6 != 0 || d.len() / 6 > MAX_MULTICAST {
                return Err(format!(
                    "a multicast list of {} bytes (whole 6-byte addresses, at most {MAX_MULTICAST})",
                    d.len()
                ));
            }
            if let Some(a) = d.chunks_exact(6).find(|a| a[0] & 1 == 0) {
                return Err(format!("a multicast list with {a:02x?}, not a group address"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The MTUs adapter `i` (of spec `spec`) may have had, and the packet
/// filter bits it may have supported: its spec's, and those the
/// schedule's restarts of it give (`RestartSpec::mtu`, `supported`).
pub(super) fn had(c: &Ctx<'_>, i: usize, spec: &ndisim::AdapterSpec) -> (Vec<u32>, u32) {
    let (mut mtus, mut filters) = (vec![spec.mtu], spec.supported_filters);
    for act in c.sched.pnp.iter().chain(c.sched.pnp_more.iter().flatten()) {
        if let PnpAction::Restart { a, mtu, supported, .. } = act
            && *a == i
        {
            mtus.extend(*mtu);
            filters |= supported.unwrap_or(0);
        }
    }
    (mtus, filters)
}

/// Judges the answer `data` of a successful query of `oid` with a
/// `limit`-byte buffer, sent on `file`.
pub(super) fn check(c: &Ctx<'_>, oid: u32, limit: u32, file: (usize, u64), irp: usize, data: &[u8]) {
    let placed = super::lock(&c.adapter_by_file).get(&file).copied();
    let of = |i: usize| {
        let a = c.adapters[i];
        let spec = super::accounts::spec_of(c, i)?;
        let (mtus, filters) = had(c, i, &spec);
        Some(Miniport {
            fixed: c.sim.oid_answer(a, oid),
            overstates: spec.oid_overstate,
            speed: spec.speed,
            filters,
            mtus,
            sent: c.sim.sent_frames(a),
        })
    };
    // (An adapter whose spec the explorer cannot read leaves the answer
    // unjudged.)
    let from: Option<Vec<Miniport>> = match placed {
        Some(i) => of(i).map(|m| vec![m]),
        None => (0..c.adapters.len()).map(of).collect(),
    };
    let Some(from) = from else { return };
    c.oid_answers_judged.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = judge(oid, limit, data, &from) {
        c.problem(format!(
            "oid: a query of OID {oid:#x} (IRP {irp:#x}, a {limit}-byte buffer, adapter {}) succeeded with an answer that is not the miniport's: {e}",
            placed.map_or("unknown".to_string(), |i| i.to_string())
        ));
    }
}
