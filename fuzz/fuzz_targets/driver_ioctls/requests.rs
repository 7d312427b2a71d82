//! The requests of `driver_ioctls`: IOCTL codes (mostly rawnic's own),
//! their inputs (mostly well-formed, built with `rawnic_proto`'s
//! emitters, as the explorer's damaged requests are, then damaged), and
//! frames.

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use rawnic_proto::ring::{RingWaitRequest, wait_flags};
use rawnic_proto::*;

/// rawnic's IOCTLs.
const CODES: &[u32] = &[
    IOCTL_RAWNIC_GET_VERSION,
    IOCTL_RAWNIC_LIST_BINDINGS,
    IOCTL_RAWNIC_WAIT_BINDS_COMPLETE,
    IOCTL_RAWNIC_OPEN,
    IOCTL_RAWNIC_SEND_BATCH,
    IOCTL_RAWNIC_QUERY_OID,
    IOCTL_RAWNIC_SET_OID,
    IOCTL_RAWNIC_GET_STATS,
    IOCTL_RAWNIC_WAIT_EVENT,
    IOCTL_RAWNIC_RING_ATTACH,
    IOCTL_RAWNIC_RING_DETACH,
    IOCTL_RAWNIC_RING_WAIT,
    IOCTL_RAWNIC_RING_KICK,
    IOCTL_RAWNIC_SET_PROGRAM,
];

/// OIDs worth asking (the explorer's, and a few more; one unknown).
const OIDS: &[u32] = &[
    0x0001_0101, // OID_GEN_SUPPORTED_LIST
    0x0001_0106, // OID_GEN_MAXIMUM_FRAME_SIZE
    0x0001_0107, // OID_GEN_LINK_SPEED
    0x0001_010D, // OID_GEN_VENDOR_DESCRIPTION
    0x0001_010E, // OID_GEN_CURRENT_PACKET_FILTER
    0x0001_010F, // OID_GEN_CURRENT_LOOKAHEAD
    0x0001_0207, // OID_GEN_LINK_STATE
    0x0001_0208, // OID_GEN_LINK_PARAMETERS
    0x0002_0101, // OID_GEN_XMIT_OK
    0x0002_0106, // OID_GEN_STATISTICS
    0x0101_0101, // OID_802_3_PERMANENT_ADDRESS
    0x0101_0102, // OID_802_3_CURRENT_ADDRESS
    0x0101_0103, // OID_802_3_MULTICAST_LIST
    0x00FF_FF01,
];

/// Values on the edges of length and count checks.
const BOUNDARIES: &[u32] =
    &[0, 1, 2, 7, 8, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFF8, 0xFFFF_FFFF];

/// An `EmptyRequest`.
pub fn empty() -> Vec<u8> {
    let mut b = vec![0u8; EmptyRequest::LEN];
    EmptyRequest::emit(&mut b).expect("room for an empty request");
    b
}

/// A code: rawnic's own mostly; else one of its device type with another
/// function, method or access, or any.
pub fn code_of(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=15)? {
        0..=12 => *u.choose(CODES)?,
        13 | 14 => {
            let function = u.int_in_range(0x7FEu32..=0x810)?;
            let method = u.int_in_range(0u32..=3)?;
            let access = u.int_in_range(0u32..=3)?;
            ctl_code(FILE_DEVICE_RAWNIC, function, method, access)
        }
        _ => u.arbitrary()?,
    })
}

/// The class of `code` an answer is counted under: rawnic's codes each
/// their own; another of its device type by method and access; any other
/// code one class. (By the code itself, each of the millions of codes that
/// all fail the same way would be new coverage, and fill the corpus.)
pub fn code_class(code: u32) -> u32 {
    if CODES.contains(&code) {
        code
    } else if code >> 16 == FILE_DEVICE_RAWNIC {
        FILE_DEVICE_RAWNIC << 16 | method_of(code) | access_of(code) << 2
    } else {
        0
    }
}

/// The input of a request of `code` (well-formed, for a code rawnic
/// knows, one time in eight raw bytes) and the output its reply needs.
pub fn request(u: &mut Unstructured<'_>, code: u32, names: &[String]) -> Result<(Vec<u8>, usize)> {
    if u.ratio(1, 8)? {
        let n = u.int_in_range(0..=96)?.min(u.len());
        return Ok((u.bytes(n)?.to_vec(), usize::from(u.arbitrary::<u16>()?)));
    }
    Ok(match code {
        IOCTL_RAWNIC_OPEN => (open(u, names)?, OpenReply::LEN),
        IOCTL_RAWNIC_SEND_BATCH => (batch(u)?, SendReply::LEN),
        IOCTL_RAWNIC_QUERY_OID | IOCTL_RAWNIC_SET_OID => oid(u, code == IOCTL_RAWNIC_QUERY_OID)?,
        IOCTL_RAWNIC_SET_PROGRAM => (program(u)?, 0),
        IOCTL_RAWNIC_RING_WAIT => {
            let mut b = vec![0u8; RingWaitRequest::LEN];
            let flags = *u.choose(&[wait_flags::ALL, wait_flags::RX, wait_flags::COMPLETION])?;
            RingWaitRequest::emit(flags, &mut b).expect("room for a ring wait");
            (b, ring::RingReply::LEN)
        }
        IOCTL_RAWNIC_RING_KICK => (empty(), ring::RingReply::LEN),
        IOCTL_RAWNIC_GET_VERSION => (empty(), VersionReply::LEN),
        IOCTL_RAWNIC_GET_STATS => (empty(), StatsReply::LEN),
        IOCTL_RAWNIC_WAIT_EVENT => (empty(), EventRecord::LEN),
        IOCTL_RAWNIC_WAIT_BINDS_COMPLETE => (empty(), BindsCompleteReply::LEN),
        IOCTL_RAWNIC_RING_DETACH => (empty(), 0),
        _ => (empty(), 16 * 1024),
    })
}

fn open(u: &mut Unstructured<'_>, names: &[String]) -> Result<Vec<u8>> {
    let raw_name;
    let name = if !names.is_empty() && !u.ratio(1, 8)? {
        names[u.choose_index(names.len())?].as_str()
    } else {
        let n = u.int_in_range(0..=40)?.min(u.len());
        raw_name = String::from_utf8_lossy(u.bytes(n)?).into_owned();
        raw_name.as_str()
    };
    let n_types = u.int_in_range(0..=4)?;
    let mut types = Vec::with_capacity(n_types);
    for _ in 0..n_types {
        types.push(*u.choose(&[0x88B5u16, 0x0800, 0x86DD, 0x8100, 0x88A8, 0])?);
    }
    let filter = if u.ratio(1, 4)? { u.arbitrary()? } else { filter::PROMISCUOUS.bits() };
    let small = |u: &mut Unstructured<'_>| -> Result<u32> {
        Ok(if u.ratio(1, 2)? { 0 } else { *u.choose(&[1u32, 2, 14, 60, 64, 1514, 65536, u32::MAX])? })
    };
    let r = OpenRepr {
        name,
        ethertypes: &types,
        packet_filter: PacketFilter::from_bits_retain(filter),
        queue_frames: small(u)?,
        queue_bytes: small(u)?,
        snaplen: small(u)?,
        local_sends: *u.choose(&[LocalSends::Others, LocalSends::All, LocalSends::None])?,
        strict_filter: u.ratio(1, 4)?,
    };
    let mut b = vec![0u8; r.wire_len()];
    // A name too long for the format cannot be written: send it raw.
    if r.emit(&mut b).is_err() {
        return Ok(name.as_bytes().to_vec());
    }
    Ok(b)
}

fn batch(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = u.int_in_range(1..=4)?;
    let mut frames = Vec::with_capacity(n);
    for _ in 0..n {
        let tci = if u.ratio(1, 4)? { Some(*u.choose(&[1u16, 0x0FFF, 0x1000, 0xE001, 0])?) } else { None };
        frames.push((frame(u)?, tci));
    }
    let items: Vec<SendFrame<'_>> = frames.iter().map(|(f, tci)| SendFrame { data: f, tci: *tci }).collect();
    Ok(SendBatchWriter::build(&items).unwrap_or_default())
}

/// A QUERY_OID or SET_OID input and the output room of its reply.
fn oid(u: &mut Unstructured<'_>, query: bool) -> Result<(Vec<u8>, usize)> {
    let oid = if u.ratio(1, 8)? { u.arbitrary()? } else { *u.choose(OIDS)? };
    let len = usize::from(*u.choose(&[0u16, 4, 6, 8, 12, 64, 256])?);
    // A query's input is usually empty; when not, it goes in the buffer the
    // answer comes back in.
    let data: Vec<u8> = if query && !u.ratio(1, 4)? {
        Vec::new()
    } else if !query && oid == 0x0101_0103 {
        // Group addresses, as a multicast list wants.
        (0..len).map(|i| if i % 6 == 0 { 0x01 } else { (i / 6) as u8 }).collect()
    } else {
        let mut d = u.bytes(len.min(u.len()))?.to_vec();
        d.resize(len, 0);
        d
    };
    let mut b = vec![0u8; OidRequest::FIXED + data.len()];
    OidRequest { oid, data: &data }.emit(&mut b).expect("room for an OID request");
    Ok((b, OidReplyHeader::LEN + if query { len } else { 0 }))
}

/// A capture program: a few instructions from a useful set, or any.
fn program(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    const KNOWN: &[(u16, u32)] = &[
        (0x06, u32::MAX), // ret #all
        (0x06, 0),        // ret #0
        (0x06, 14),       // ret #14
        (0x80, 0),        // ld #len
        (0x28, 12),       // ldh [12]
        (0x30, 0),        // ldb [0]
        (0x20, 1500),     // ld [1500]
        (0x50, 0),        // ldb [x+0]
        (0xb1, 14),       // ldxb 4*([14]&0xf)
        (0x01, 13),       // ldx #13
        (0x02, 3),        // st M[3]
        (0x60, 3),        // ld M[3]
        (0x15, 0x0800),   // jeq #0x800
        (0x35, 14),       // jge #14
        (0x45, 1),        // jset #1
        (0x05, 0),        // ja +0
        (0x04, 1),        // add #1
        (0x34, 0),        // div #0
        (0x1c, 0),        // sub x
    ];
    let n = if u.ratio(1, 16)? { MAX_PROGRAM_INSNS + u.int_in_range(0..=1)? } else { u.int_in_range(0..=8)? };
    let mut insns = Vec::with_capacity(n);
    for _ in 0..n {
        let i = if u.ratio(1, 4)? {
            BpfInsn::new(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?, u.arbitrary()?)
        } else {
            let (code, k) = *u.choose(KNOWN)?;
            BpfInsn::new(code, u.int_in_range(0..=3)?, u.int_in_range(0..=3)?, k)
        };
        insns.push(i);
    }
    let mut b = vec![0u8; ProgramRequest::wire_len(insns.len())];
    // Too many instructions for the format: what fits.
    let n = ProgramRequest::emit(&insns, &mut b).unwrap_or(b.len());
    b.truncate(n);
    Ok(b)
}

/// An Ethernet frame: broadcast, ours or any, of a length on the edges.
pub fn frame(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let len = match u.int_in_range(0..=7)? {
        0 => u.int_in_range(0..=14)?,
        1 => *u.choose(&[1500usize, 1514, 1518, 1522, 9000, 9014, 65536])?,
        _ => u.int_in_range(14..=200)?,
    };
    let mut f = vec![0u8; len];
    if len >= 14 {
        let dst: [u8; 6] = *u.choose(&[[0xFF; 6], [0x01, 0, 0x5e, 0, 0, 1], [0x02, 0, 0x5e, 0, 0, 0x99]])?;
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[0x02, 0, 0x5e, 0, 0, 0x42]);
        let et: u16 = *u.choose(&[0x88B5u16, 0x0800, 0x86DD, 0x8100, 0x88A8, 0x0600, 0x05DC])?;
        f[12..14].copy_from_slice(&et.to_be_bytes());
        if et == 0x8100 && len >= 18 {
            f[14..16].copy_from_slice(&u.arbitrary::<u16>()?.to_be_bytes());
            f[16..18].copy_from_slice(&0x88B5u16.to_be_bytes());
        }
    }
    // A few bytes of the input at the frame's end (not more: they are
    // taken from the rest of the program).
    let n = usize::from(u.int_in_range(0u8..=16)?).min(len.saturating_sub(18)).min(u.len());
    let tail = u.bytes(n)?;
    f[len - n..].copy_from_slice(tail);
    Ok(f)
}

/// Damages `b` (none to three edits): a bit flipped, a word stomped with a
/// boundary value, cut short, grown.
pub fn damage(u: &mut Unstructured<'_>, b: &mut Vec<u8>) -> Result<()> {
    let n = match u.int_in_range(0..=7)? {
        0..=3 => 0,
        4 | 5 => 1,
        6 => 2,
        _ => 3,
    };
    for _ in 0..n {
        let len = b.len();
        match u.int_in_range(0..=9)? {
            0..=3 if len > 0 => b[u.choose_index(len)?] ^= 1 << u.int_in_range(0..=7)?,
            4..=6 if len >= 4 => {
                let at = (u.choose_index(len - 3)?) & !3;
                b[at..at + 4].copy_from_slice(&u.choose(BOUNDARIES)?.to_le_bytes());
            }
            7 | 8 => b.truncate(u.int_in_range(0..=len)?),
            _ => {
                let by = u.int_in_range(1..=64)?;
                b.resize(len + by, *u.choose(&[0u8, 0xFF, 0x41])?);
            }
        }
    }
    Ok(())
}
