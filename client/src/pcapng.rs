//! A pcapng writer: one section header, one Ethernet interface with
//! nanosecond timestamps, and an enhanced packet block per frame. Wireshark,
//! tshark and `tcpdump -r` read what it writes.

use std::io::{self, Write};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// The interface block's comment: where the timestamps come from and how
/// precise they are.
pub const TIMESTAMP_SOURCE: &str = "timestamps: the Windows system time (KeQuerySystemTimePrecise) read by rawnic.sys \
     for each frame as it takes the frame from NDIS (or from a local send); 100 ns resolution, written as \
     nanoseconds since 1970-01-01 UTC; follows wall-clock adjustments";
/// `epb_flags`: bits 0-1 are the direction (1 inbound, 2 outbound).
const EPB_FLAGS: u16 = 2;

/// `epb_flags` direction: the packet came in from the wire.
pub const EPB_INBOUND: u32 = 1;
/// `epb_flags` direction: the packet was sent from this host.
pub const EPB_OUTBOUND: u32 = 2;

/// The capture interface described in the file.
#[derive(Debug, Clone, Default)]
pub struct Interface<'a> {
    /// `if_name`: the adapter's name.
    pub name: Option<&'a str>,
    /// `if_description`.
    pub description: Option<&'a str>,
    /// The snap length; 0 means none. Readers refuse packets longer than
    /// it: frames whose stripped 802.1Q tag is put back
    /// ([`FrameRef::wire_bytes`](crate::FrameRef::wire_bytes)) need 4 bytes
    /// more than the driver's snap length.
    pub snaplen: u32,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends an option (code, length, value padded to 4 bytes).
fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) -> io::Result<()> {
    let len = u16::try_from(value.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a pcapng option value is longer than 65535 bytes"))?;
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(pad4(buf.len()), 0);
    Ok(())
}

/// Frames a block body: type, total length, body, total length.
fn block(block_type: u32, body: &[u8]) -> io::Result<Vec<u8>> {
    debug_assert_eq!(body.len() % 4, 0);
    let total = u32::try_from(12 + body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a pcapng block is larger than 4 GiB"))?;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&block_type.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    Ok(b)
}

/// Writes a pcapng stream to `W`.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    packets: u64,
    scratch: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and the interface description.
    pub fn new(mut out: W, iface: &Interface<'_>) -> io::Result<Self> {
        let mut body = Vec::new();
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        option(&mut body, SHB_USERAPPL, concat!("rawnic ", env!("CARGO_PKG_VERSION")).as_bytes())?;
        option(&mut body, OPT_END, &[])?;
        out.write_all(&block(SHB, &body)?)?;

        let mut body = Vec::new();
        body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&iface.snaplen.to_le_bytes());
        if let Some(n) = iface.name {
            option(&mut body, IF_NAME, n.as_bytes())?;
        }
        if let Some(d) = iface.description {
            option(&mut body, IF_DESCRIPTION, d.as_bytes())?;
        }
        option(&mut body, IF_TSRESOL, &[9])?; // 10^-9 s
        option(&mut body, IF_TSOFFSET, &0i64.to_le_bytes())?; // already since 1970
        option(&mut body, OPT_COMMENT, TIMESTAMP_SOURCE.as_bytes())?;
        option(&mut body, OPT_END, &[])?;
        out.write_all(&block(IDB, &body)?)?;
        Ok(PcapngWriter { out, packets: 0, scratch: Vec::new() })
    }

    /// Writes one packet: `data` as captured, `origlen` its length on the
    /// wire, `timestamp_ns` nanoseconds since the Unix epoch.
    pub fn write_packet(&mut self, timestamp_ns: u64, origlen: u32, data: &[u8]) -> io::Result<()> {
        self.write_packet_flags(timestamp_ns, origlen, data, None)
    }

    /// As [`write_packet`](Self::write_packet), with the packet's
    /// `epb_flags` ([`EPB_INBOUND`] or [`EPB_OUTBOUND`], which Wireshark
    /// shows as the direction).
    pub fn write_packet_flags(
        &mut self,
        timestamp_ns: u64,
        origlen: u32,
        data: &[u8],
        epb_flags: Option<u32>,
    ) -> io::Result<()> {
        self.write_packet_opts(timestamp_ns, origlen, data, epb_flags, None)
    }

    /// As [`write_packet_flags`](Self::write_packet_flags), with an
    /// `opt_comment` on the packet (Wireshark shows it as the packet
    /// comment; rawnicctl says there that the NIC coalesced the frame).
    pub fn write_packet_opts(
        &mut self,
        timestamp_ns: u64,
        origlen: u32,
        data: &[u8],
        epb_flags: Option<u32>,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let caplen = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a packet is larger than 4 GiB"))?;
        let body = &mut self.scratch;
        body.clear();
        body.extend_from_slice(&0u32.to_le_bytes()); // interface 0
        body.extend_from_slice(&((timestamp_ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(timestamp_ns as u32).to_le_bytes());
        body.extend_from_slice(&caplen.to_le_bytes());
        body.extend_from_slice(&origlen.max(caplen).to_le_bytes());
        body.extend_from_slice(data);
        body.resize(pad4(body.len()), 0);
        if let Some(f) = epb_flags {
            option(body, EPB_FLAGS, &f.to_le_bytes())?;
        }
        if let Some(c) = comment {
            option(body, OPT_COMMENT, c.as_bytes())?;
        }
        if epb_flags.is_some() || comment.is_some() {
            option(body, OPT_END, &[])?;
        }
        let b = block(EPB, body)?;
        self.out.write_all(&b)?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    fn u16at(b: &[u8], o: usize) -> u16 {
        u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
    }

    /// Splits a stream into (type, body) blocks, checking both lengths.
    fn blocks(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let ty = u32at(b, 0);
            let len = u32at(b, 4) as usize;
            assert_eq!(len % 4, 0, "block length is a multiple of 4");
            assert_eq!(u32at(b, len - 4) as usize, len, "trailing length matches");
            out.push((ty, b[8..len - 4].to_vec()));
            b = &b[len..];
        }
        out
    }

    /// Options as (code, value) until opt_endofopt, which must be there.
    fn options(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let code = u16at(b, 0);
            let len = u16at(b, 2) as usize;
            if code == 0 {
                assert_eq!(len, 0);
                assert_eq!(b.len(), 4, "nothing after opt_endofopt");
                return out;
            }
            out.push((code, b[4..4 + len].to_vec()));
            b = &b[4 + pad4(len)..];
        }
    }

    #[test]
    fn writes_section_interface_and_packets() {
        let iface = Interface { name: Some("\\DEVICE\\{1234}"), description: Some("virtual"), snaplen: 0 };
        let mut w = PcapngWriter::new(Vec::new(), &iface).unwrap();
        let frame: Vec<u8> = (0..61u8).collect();
        let ts = 1_700_000_000_123_456_789u64;
        w.write_packet(ts, 61, &frame).unwrap();
        w.write_packet(ts + 1, 1514, &frame[..16]).unwrap();
        assert_eq!(w.packets(), 2);
        let bytes = w.into_inner().unwrap();
        let bl = blocks(&bytes);
        assert_eq!(bl.len(), 4);

        let (ty, shb) = &bl[0];
        assert_eq!(*ty, 0x0A0D_0D0A);
        assert_eq!(u32at(shb, 0), 0x1A2B_3C4D);
        assert_eq!((u16at(shb, 4), u16at(shb, 6)), (1, 0));
        assert_eq!(&shb[8..16], &[0xff; 8]);
        let opts = options(&shb[16..]);
        assert!(opts[0].1.starts_with(b"rawnic "));

        let (ty, idb) = &bl[1];
        assert_eq!(*ty, 1);
        assert_eq!(u16at(idb, 0), 1, "LINKTYPE_ETHERNET");
        assert_eq!(u32at(idb, 4), 0, "no snap length");
        let opts = options(&idb[8..]);
        assert_eq!(opts[0], (2, b"\\DEVICE\\{1234}".to_vec()));
        assert_eq!(opts[1], (3, b"virtual".to_vec()));
        assert_eq!(opts[2], (9, vec![9]), "nanosecond timestamps");
        assert_eq!(opts[3], (14, vec![0; 8]), "no offset: seconds since 1970");
        assert_eq!(opts[4].0, 1);
        assert!(String::from_utf8_lossy(&opts[4].1).contains("KeQuerySystemTimePrecise"));

        let (ty, epb) = &bl[2];
        assert_eq!(*ty, 6);
        assert_eq!(u32at(epb, 0), 0, "interface 0");
        let t = (u64::from(u32at(epb, 4)) << 32) | u64::from(u32at(epb, 8));
        assert_eq!(t, ts);
        assert_eq!((u32at(epb, 12), u32at(epb, 16)), (61, 61));
        assert_eq!(&epb[20..81], &frame[..]);
        assert_eq!(epb.len(), 20 + 64, "data padded to 4 bytes, no options");
        assert!(epb[81..].iter().all(|&b| b == 0));

        let (_, epb) = &bl[3];
        assert_eq!((u32at(epb, 12), u32at(epb, 16)), (16, 1514), "caplen and origlen");
    }

    #[test]
    fn packets_carry_their_direction_in_epb_flags() {
        let mut w = PcapngWriter::new(Vec::new(), &Interface::default()).unwrap();
        let frame: Vec<u8> = (0..60u8).collect();
        w.write_packet_flags(1, 60, &frame, Some(EPB_OUTBOUND)).unwrap();
        w.write_packet_flags(2, 60, &frame, Some(EPB_INBOUND)).unwrap();
        let bytes = w.into_inner().unwrap();
        let bl = blocks(&bytes);
        for (i, want) in [(2, EPB_OUTBOUND), (3, EPB_INBOUND)] {
            let (_, epb) = &bl[i];
            assert_eq!(&epb[20..80], &frame[..]);
            assert_eq!(options(&epb[80..]), vec![(2, want.to_le_bytes().to_vec())]);
        }
    }

    #[test]
    fn a_packet_comment_follows_the_flags() {
        let mut w = PcapngWriter::new(Vec::new(), &Interface::default()).unwrap();
        let frame: Vec<u8> = (0..60u8).collect();
        w.write_packet_opts(1, 60, &frame, Some(EPB_INBOUND), Some("coalesced by the NIC: 3 segments")).unwrap();
        w.write_packet_opts(2, 60, &frame, None, Some("abc")).unwrap();
        let bytes = w.into_inner().unwrap();
        let bl = blocks(&bytes);
        assert_eq!(
            options(&bl[2].1[80..]),
            vec![(2, EPB_INBOUND.to_le_bytes().to_vec()), (1, b"coalesced by the NIC: 3 segments".to_vec())]
        );
        assert_eq!(options(&bl[3].1[80..]), vec![(1, b"abc".to_vec())]);
    }
}
