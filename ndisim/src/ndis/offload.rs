//! Receive offloads as NDIS handles them for a protocol driver: which NDIS
//! versions the emulated Windows accepts at registration, URO (UDP receive
//! segment coalescing) turned off on an adapter when a protocol that does
//! not take URO frames binds to it, and the out-of-band info of a
//! coalesced receive (RSC, URO).
//!
//! From the documentation ("UDP Receive Segment Coalescing Offload (URO)",
//! section "Opt-out of URO in NDIS 6.89 and later"): NDIS turns URO off on
//! the miniport during binding when a protocol or filter that does not
//! support URO is present, so that components unfamiliar with URO never
//! see URO NBLs; a protocol of NDIS 6.89 or later supports it unless it
//! sets `NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED`, and the flag does
//! not exist before 6.89, so an older protocol is one that does not. RSC
//! has no such rule for protocols (only filter and MUX drivers of NDIS 6.20
//! or older turn it off), and ndisim has no filters.

use super::*;

/// The highest NDIS version the emulated Windows has unless the builder
/// says otherwise: NDIS 6.89, Windows 11 24H2.
pub const DEFAULT_NDIS_VERSION: (u8, u8) = (6, 89);

/// How the NIC coalesced the frames of a receive indication, written into
/// each NBL's info as a miniport does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// RSC (TCP): `NetBufferListInfo[TcpRecvSegCoalesceInfo]` is an
    /// `NDIS_RSC_NBL_INFO` with these counts. The documentation requires a
    /// non-zero `CoalescedSegCount` on a coalesced unit (0 means "not
    /// coalesced"), so `segs: 0` indicates a frame without RSC info
    /// whatever `dup_acks` says, as a miniport that breaks that rule would.
    Rsc { segs: u16, dup_acks: u16 },
    /// URO (UDP, NDIS 6.89): `NetBufferListInfo[UdpRecvSegCoalesceOffloadInfo]`
    /// is an `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`; `segs` may be 0
    /// (the adapter did not count) while `seg_size` is set. Refused on an
    /// adapter whose URO is off.
    Uro { segs: u16, seg_size: u16 },
}

impl Coalesce {
    /// The info slot and the pointer-sized value a miniport puts there.
    pub(crate) fn info(self) -> (usize, PVOID) {
        match self {
            Coalesce::Rsc { segs, dup_acks } => {
                let mut u = NDIS_RSC_NBL_INFO { Value: std::ptr::null_mut() };
                u.Info = NDIS_RSC_NBL_INFO_COUNTS { CoalescedSegCount: segs, DupAckCount: dup_acks };
                // SAFETY: every byte of the union was written (a null
                // pointer, then the counts over its low four bytes).
                (TcpRecvSegCoalesceInfo, unsafe { u.Value })
            }
            Coalesce::Uro { segs, seg_size } => {
                let mut u = NDIS_UDP_RSC_OFFLOAD_NBL_INFO_UNION { Value: std::ptr::null_mut() };
                u.Receive = NDIS_UDP_RSC_OFFLOAD_RECEIVE { SegCount: segs, SegSize: seg_size };
                let info = NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO { anon: u };
                // SAFETY: as above.
                (UdpRecvSegCoalesceOffloadInfo, unsafe { info.anon.Value })
            }
        }
    }

    /// Parses a script word's value: `rsc=SEGS[:DUPACKS]`, `uro=SEGS:SIZE`.
    pub fn parse(kind: &str, v: &str) -> Result<Coalesce, String> {
        let (a, b) = v.split_once(':').unwrap_or((v, "0"));
        let num = |s: &str| s.parse::<u16>().map_err(|_| format!("{kind}={v}: expected numbers up to 65535"));
        match kind {
            "rsc" => Ok(Coalesce::Rsc { segs: num(a)?, dup_acks: num(b)? }),
            "uro" => Ok(Coalesce::Uro { segs: num(a)?, seg_size: num(b)? }),
            _ => Err(format!("{kind}: not rsc or uro")),
        }
    }
}

/// Whether NDIS lets a protocol of these characteristics see URO NBLs: it
/// registered as NDIS 6.89 or later and did not opt out.
pub(crate) fn takes_uro(c: &NDIS_PROTOCOL_DRIVER_CHARACTERISTICS) -> bool {
    (c.MajorNdisVersion, c.MinorNdisVersion) >= (6, 89) && c.Flags & NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED == 0
}

/// The `Flags` a protocol of this NDIS version may pass.
pub(crate) fn allowed_flags(minor: u8) -> u32 {
    if minor >= 89 { NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED } else { 0 }
}

/// At bind: URO stays on for the adapter only if it has it and the
/// protocol binding takes URO frames; NDIS turns it off otherwise.
pub(crate) fn uro_at_bind(a: &Adapter, proto: &Protocol) {
    let on = a.spec.uro && takes_uro(&proto.chars);
    if a.spec.uro && !on {
        a.counters.uro_turned_off.fetch_add(1, Ordering::Relaxed);
    }
    a.uro.store(on, Ordering::Release);
}

/// Checks a coalesced indication as NDIS and a miniport would make it,
/// before the frames are grouped: URO only where the adapter's URO is on,
/// and an injection whose every NBL is coalesced (`coalesce`) asks for
/// NBLs of one NET_BUFFER.
pub(crate) fn check_coalesce(a: &Adapter, o: &InjectOpts) -> Result<(), SimError> {
    let any_uro =
        o.coalesce.into_iter().chain(o.coalesces.iter().copied().flatten()).any(|c| matches!(c, Coalesce::Uro { .. }));
    if o.coalesces.is_empty() && o.coalesce.is_some() && (o.nbs_per_nbl > 1 || o.nbl_sizes.iter().any(|&n| n > 1)) {
        return Err(SimError::Other("a coalesced unit is indicated as one NET_BUFFER per NBL".into()));
    }
    if any_uro && !a.uro.load(Ordering::Acquire) {
        let why = if a.spec.uro {
            "NDIS turned it off when a protocol that does not take URO frames bound"
        } else {
            "the adapter does not have it (uro=on)"
        };
        return Err(SimError::State(format!("URO is off on adapter {}: {why}", a.name)));
    }
    Ok(())
}

/// Checks each NBL of an injection once grouped (`groups[k]`: NBL `k`'s
/// NET_BUFFERs): an NBL that carries coalescing info holds one NET_BUFFER,
/// the coalesced unit ("An SCU must ... look like a normal TCP segment that
/// is received over the wire"), whatever the NBLs around it are.
pub(crate) fn check_coalesced_groups(o: &InjectOpts, groups: &[usize]) -> Result<(), SimError> {
    match groups.iter().enumerate().find(|&(k, &n)| n > 1 && o.coalesce_of(k).is_some()) {
        Some((k, n)) => Err(SimError::Other(format!(
            "NBL {k} is coalesced but would hold {n} NET_BUFFERs: a coalesced unit is indicated as one NET_BUFFER per NBL"
        ))),
        None => Ok(()),
    }
}

/// The emulated NDIS's highest version, and the versions it refused.
pub(crate) struct Versions {
    pub max: Mutex<(u8, u8)>,
    pub refused: Mutex<Vec<(u8, u8)>>,
}

impl Versions {
    pub(crate) fn new() -> Self {
        Versions { max: Mutex::new(DEFAULT_NDIS_VERSION), refused: Mutex::new(Vec::new()) }
    }

    /// Whether NDIS accepts a protocol of this version; a refusal is
    /// recorded. (`NDIS_STATUS_BAD_VERSION` is NDIS's answer, not a
    /// mistake of the driver, which may try an older version.)
    pub(crate) fn accepts(&self, major: u8, minor: u8) -> bool {
        if (major, minor) <= *lock(&self.max) {
            return true;
        }
        lock(&self.refused).push((major, minor));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_info_values_are_the_documented_unions() {
        let (slot, v) = Coalesce::Rsc { segs: 5, dup_acks: 2 }.info();
        assert_eq!((slot, v as usize), (22, 0x0002_0005));
        let (slot, v) = Coalesce::Uro { segs: 3, seg_size: 1200 }.info();
        assert_eq!((slot, v as usize), (17, (1200 << 16) | 3));
        assert_eq!(Coalesce::parse("rsc", "4").unwrap(), Coalesce::Rsc { segs: 4, dup_acks: 0 });
        assert_eq!(Coalesce::parse("uro", "0:1400").unwrap(), Coalesce::Uro { segs: 0, seg_size: 1400 });
        assert!(Coalesce::parse("uro", "70000:1").is_err());
    }

    #[test]
    fn uro_is_for_protocols_of_6_89_that_did_not_opt_out() {
        // SAFETY: plain data; the fields that matter are set below.
        let mut c: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS = unsafe { std::mem::zeroed() };
        c.MajorNdisVersion = 6;
        for (minor, flags, want) in [(30, 0, false), (88, 0, false), (89, 0, true), (89, 8, false)] {
            c.MinorNdisVersion = minor;
            c.Flags = flags;
            assert_eq!(takes_uro(&c), want, "6.{minor} flags {flags}");
        }
        let v = Versions::new();
        *lock(&v.max) = (6, 30);
        assert!(v.accepts(6, 30) && v.accepts(6, 20) && !v.accepts(6, 89));
        assert_eq!(*lock(&v.refused), [(6, 89)]);
    }
}
