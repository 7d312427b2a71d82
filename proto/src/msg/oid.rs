//! QUERY_OID and SET_OID.

use super::*;

/// The OIDs a handle may set; every other set is refused with
/// `STATUS_ACCESS_DENIED`. The packet filter is not among them: the driver
/// owns it (the union of the handles' filters). A multicast list is the
/// handle's own (at most `MAX_HANDLE_MULTICAST` group addresses, else
/// `STATUS_INVALID_PARAMETER`): the adapter is set to the union of the
/// binding's handles' lists, and a handle's addresses leave it when the
/// handle closes.
pub const OID_SET_ALLOW_LIST: &[u32] = &[
    0x0101_0103, // OID_802_3_MULTICAST_LIST
    0x0001_010F, // OID_GEN_CURRENT_LOOKAHEAD
    0x0001_0208, // OID_GEN_LINK_PARAMETERS
];

/// A checked OID request (`QUERY_OID` or `SET_OID` input).
///
/// Layout: header (4), `oid: u32`, `data_len: u32`, 4 reserved bytes, then
/// `data_len` bytes (the value for a set; usually empty for a query, whose
/// input, if any, goes in the buffer its answer comes back in, so it must
/// fit in the request's output room after the reply header, or the request
/// fails with STATUS_BUFFER_TOO_SMALL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidRequest<'a> {
    pub oid: u32,
    pub data: &'a [u8],
}

impl<'a> OidRequest<'a> {
    pub const FIXED: usize = 16;

    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        check_header(buf, 0)?;
        if buf.len() < Self::FIXED {
            return Err(Error::Truncated);
        }
        let oid = u32_at(buf, 4);
        let data_len = u32_at(buf, 8);
        if u32_at(buf, 12) != 0 {
            return Err(Error::InvalidParameter);
        }
        let total = data_len.checked_add(Self::FIXED as u32).ok_or(Error::Overflow)?;
        if data_len > MAX_OID_DATA {
            return Err(Error::InvalidParameter);
        }
        if buf.len() != total as usize {
            return Err(Error::LengthMismatch);
        }
        Ok(OidRequest { oid, data: &buf[Self::FIXED..] })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.u32(self.oid)?.u32(self.data.len() as u32)?.u32(0)?;
        w.bytes(self.data)?;
        Ok(w.position())
    }
}

/// The OID reply header; for a query, `bytes` of data follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidReplyHeader {
    /// The NDIS_STATUS the adapter answered with.
    pub ndis_status: i32,
    /// Bytes written (query) or read (set).
    pub bytes: u32,
    /// Bytes the adapter needs, when the buffer was too short.
    pub bytes_needed: u32,
}

impl OidReplyHeader {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(PROTO_VERSION)?.u16(0)?.i32(self.ndis_status)?.u32(self.bytes)?.u32(self.bytes_needed)?;
        Ok(w.position())
    }

    /// Parses a reply; returns the header and the data that follows.
    pub fn parse(buf: &[u8], is_query: bool) -> Result<(Self, &[u8]), Error> {
        check_header(buf, 0)?;
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        let h = OidReplyHeader { ndis_status: i32_at(buf, 4), bytes: u32_at(buf, 8), bytes_needed: u32_at(buf, 12) };
        let data_len = if is_query { h.bytes as usize } else { 0 };
        if buf.len() != Self::LEN + data_len {
            return Err(Error::LengthMismatch);
        }
        Ok((h, &buf[Self::LEN..]))
    }
}
