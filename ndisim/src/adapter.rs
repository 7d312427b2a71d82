//! Virtual adapters: the miniports below NDIS. `loopback` (no peer on its
//! wire: frames come back only as NDIS loops them back, which it does for
//! a protocol's own sends only with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`),
//! `pair:A,B` (a wire between two adapters), `null` (as `loopback`, but
//! frames are not copied unless captured: the benchmarks' adapter) and
//! `tap:NAME` (a Linux TAP device). Each has a model that answers OIDs, a
//! send-completion policy and a receive pool. On every kind, NDIS
//! indicates to the binding only what its packet filter accepts.

use crate::verifier::lock;
use ndis_sys::*;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What kind of virtual adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterKind {
    Loopback,
    /// One end of a pair; the name of the other end.
    Pair(String),
    Null,
    /// A Linux TAP device with this interface name.
    Tap(String),
}

/// How the virtual miniport completes sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionPolicy {
    /// Each send completes inside `NdisSendNetBufferLists`.
    Immediate,
    /// Completions are collected across sends and given back N NBLs at a
    /// time, as one chain (and whatever is left when a pause starts).
    Batched(usize),
    /// As `Batched`, but each batch comes back in reverse order.
    Reordered(usize),
    /// Each send completes this long after it was sent, from a DPC.
    Delayed(Duration),
    /// Each send's NBLs are shuffled and cut into one to three groups, each
    /// completed inside `NdisSendNetBufferLists` or from a DPC on any CPU
    /// within 0 to 2 ms (so one send's NBLs come back in pieces, out of
    /// order, some before the send call returns and some after, on another
    /// CPU); a completion at DISPATCH_LEVEL carries
    /// `NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL` only half the time (the
    /// flag is a hint: clear means at most DISPATCH_LEVEL). Drawn from the
    /// adapter's own count, so deterministic runs replay.
    Scatter,
    /// Sends are held until the test releases them.
    Held,
}

/// How an adapter answers `NdisOpenAdapterEx`, `NdisCloseAdapterEx` and
/// `NdisOidRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// At once, with the final status.
    Sync,
    /// `NDIS_STATUS_PENDING`, then the completion handler from another
    /// thread.
    Pending,
    /// `NDIS_STATUS_PENDING`, with the completion handler called first, on
    /// the caller's thread, inside the request call (a miniport that
    /// completes inside its handler): a driver that holds a lock across
    /// the call and takes it again in its completion deadlocks
    /// (`oid=inline`, `open=inline`, `close=inline`).
    Inline,
}

/// A virtual adapter's description: `KIND[:ARGS][@key=value,...]`, e.g.
/// `loopback`, `null@mtu=9000`, `pair:a,b@completion=batch:8`,
/// `tap:ndis0@open=pending`. Keys: `name`, `mtu`, `mac`
/// (`02:00:00:00:00:01`), `link` (`up`/`down`), `speed` (bits/s),
/// `completion` (`immediate`, `batch:N`, `reorder:N`, `delay:MS`,
/// `scatter`, `held`),
/// `open`, `close`, `oid` (`sync`/`pending`; `open=fail` fails the open,
/// `oid=held` holds OIDs, `inline` completes inside the call before it
/// returns PENDING), `oid-fail` (OIDs that fail, `0x1010e+…`),
/// `filters` (the packet filters advertised, `0x2f`), `refuse-filter`
/// (advertised bits a set refuses, `0x20`), `capture` (`on`/`off`), `rss`
/// (`on`/`off`), `send-fail` (sends failed, per mille), `reindicate`
/// (returns after which the miniport indicates a frame from inside
/// `NdisReturnNetBufferLists`, per mille), `vlan` (`on`/`off`: whether the adapter advertises
/// `NDIS_MAC_OPTION_8021Q_VLAN` and `NDIS_MAC_OPTION_8021P_PRIORITY`, i.e.
/// 802.1Q tag insertion and stripping; on by default), `uro` (`on`/`off`:
/// the NIC does UDP receive segment coalescing, which NDIS turns off when
/// a protocol that does not take URO frames binds; off by default),
/// `pause-on-suspend` (`on`/`off`: off, the miniport asks NDIS not to
/// pause the stack for a power change; on by default),
/// `rx-buffers` (the miniport's receive buffers, 4 to 65536; unbounded by
/// default: see `AdapterSpec::rx_buffers`), `multicast-held` (entries of
/// the shared multicast list other protocols hold: see
/// `AdapterSpec::multicast_held`), `bind-status` (status indications to a
/// binding between its open and its bind's completion, 1 to 16: see
/// `AdapterSpec::bind_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSpec {
    pub kind: AdapterKind,
    pub name: Option<String>,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
    pub link_up: bool,
    pub speed: u64,
    pub completion: CompletionPolicy,
    pub open: Completion,
    pub close: Completion,
    pub oid: Completion,
    pub capture: bool,
    pub rss: bool,
    /// The adapter does 802.1Q in hardware (`vlan=on`, the default): it
    /// advertises the 802.1Q MAC options, inserts the tag of a send NBL's
    /// `Ieee8021QNetBufferListInfo` on the wire and strips a received tag
    /// into that info. With `vlan=off` it ignores the info (the frame goes
    /// out untagged) and indicates received tags inline.
    pub vlan: bool,
    /// The NIC does URO (`uro=on`): it may indicate coalesced UDP frames
    /// (`InjectOpts::coalesce`) while NDIS leaves URO on.
    pub uro: bool,
    /// The miniport sets `NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND`
    /// (`pause-on-suspend=off`; on by default): from NDIS 6.30, with every
    /// protocol bound at 6.30 or later, NDIS neither pauses the binding
    /// after `NetEventSetPower` for a low-power state nor restarts it
    /// before the one for D0 (OID_PNP_SET_POWER): a Running binding stays
    /// Running through the low-power state.
    pub no_pause_on_suspend: bool,
    /// OID requests pend until the test releases them (`oid=held`).
    pub hold_oids: bool,
    /// `NdisOpenAdapterEx` fails (`open=fail`).
    pub open_fails: bool,
    /// The first `NdisOpenAdapterEx` fails with `NDIS_STATUS_RESOURCES`,
    /// later ones succeed (`open=fail-once`: a miniport short of memory
    /// at boot).
    pub open_fails_once: bool,
    /// OIDs answered with `NDIS_STATUS_FAILURE` (`oid-fail=OID+OID…`).
    pub failing_oids: Vec<u32>,
    /// Sends, per mille, the miniport fails (`send-fail=N`): they go
    /// nowhere and come back with a failure status, at once or in the
    /// completion of the send's other NBLs (each NBL with its own status);
    /// and a send racing a pause comes back with `NDIS_STATUS_PAUSED`.
    pub send_fail: u32,
    /// Returns, per mille, after which the miniport indicates a frame at
    /// once, from inside `NdisReturnNetBufferLists` (`reindicate=N`): a
    /// miniport that had a frame waiting for a receive buffer indicates it
    /// when one comes back. A protocol that returns NBLs while holding a
    /// lock its receive handler takes deadlocks.
    pub reindicate: u32,
    /// Cancels, per mille, the miniport ignores (`cancel-ignore=N`):
    /// `NdisCancelOidRequest` is a request, and such a request completes
    /// as it would have, in its own time and with its own status.
    pub cancel_ignore: u32,
    /// The packet filters the miniport advertises (`filters=0x…`).
    pub supported_filters: u32,
    /// Filter bits it advertises but refuses to set, with
    /// `NDIS_STATUS_NOT_SUPPORTED`, as many Wi-Fi miniports do with
    /// promiscuous mode (`refuse-filter=0x…`).
    pub refused_filters: u32,
    /// Receive buffers the miniport has (`rx-buffers=N`; 0, the default:
    /// as many as it needs). With N, an NBL a protocol keeps is a buffer
    /// the NIC cannot fill: a frame that finds none free is dropped
    /// (counted as `OID_GEN_RCV_NO_BUFFER`), and an indication that leaves
    /// fewer than a quarter of them free carries
    /// `NDIS_RECEIVE_FLAGS_RESOURCES`, as a miniport "running low on
    /// receive resources" sets it (Receiving Network Data). Rule
    /// retained-when-low then holds the protocol to giving back what it
    /// kept before it was told.
    pub rx_buffers: u32,
    /// Entries of the adapter's multicast list that other protocols hold
    /// (`multicast-held=N`, 0 to `MAX_MULTICAST`; 0 by default): the list
    /// is shared by every protocol bound to the adapter, so a set of a
    /// list longer than what is left fails with
    /// `NDIS_STATUS_MULTICAST_FULL`, "even if the number of elements in
    /// the list is less than" `OID_802_3_MAXIMUM_LIST_SIZE` (that OID's
    /// page).
    pub multicast_held: u32,
    /// Status indications the miniport makes to each binding once its
    /// open succeeded, racing its bind (`bind-status=N`, 0 to 16; 0 by
    /// default): from a deferred-work thread, a short while apart, each a
    /// change of the link state (the adapter's, which a binding must end
    /// up knowing) but every third, a status code no protocol knows with
    /// a buffer of garbage. On Windows the open is on the miniport's open
    /// list from `NdisOpenAdapterEx`'s success (or its
    /// `ProtocolOpenAdapterCompleteEx`), and the binding Paused: status
    /// indications may come before the bind handler returns or calls
    /// `NdisCompleteBindAdapterEx`.
    pub bind_status: u32,
    /// The miniport overstates what it did (`oid-overstate=on`): a
    /// successful set says it read, and a successful query that it wrote,
    /// 64 bytes more than the request's buffer holds. NDIS passes a
    /// miniport's `BytesRead` and `BytesWritten` on as they are; a
    /// protocol that believes them reads past the buffer or reports
    /// bytes that never were.
    pub oid_overstate: bool,
}

impl AdapterSpec {
    pub fn new(kind: AdapterKind) -> Self {
        let capture = kind != AdapterKind::Null;
        AdapterSpec {
            kind,
            name: None,
            mtu: 1500,
            mac: None,
            link_up: true,
            speed: 10_000_000_000,
            completion: CompletionPolicy::Immediate,
            open: Completion::Sync,
            close: Completion::Sync,
            oid: Completion::Sync,
            capture,
            rss: false,
            vlan: true,
            uro: false,
            no_pause_on_suspend: false,
            hold_oids: false,
            open_fails: false,
            open_fails_once: false,
            failing_oids: Vec::new(),
            send_fail: 0,
            reindicate: 0,
            cancel_ignore: 0,
            supported_filters: SUPPORTED_FILTERS,
            refused_filters: 0,
            rx_buffers: 0,
            multicast_held: 0,
            bind_status: 0,
            oid_overstate: false,
        }
    }

    /// Parses one `--adapter` argument. A `pair:A,B` gives two specs.
    pub fn parse(s: &str) -> Result<Vec<AdapterSpec>, String> {
        let (kind, opts) = match s.split_once('@') {
            Some((k, o)) => (k, Some(o)),
            None => (s, None),
        };
        let (kname, args) = match kind.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (kind, None),
        };
        let mut specs = match (kname, args) {
            ("loopback", None) => vec![AdapterSpec::new(AdapterKind::Loopback)],
            ("null", None) => vec![AdapterSpec::new(AdapterKind::Null)],
            ("tap", Some(n)) if valid_ifname(n) => {
                let mut a = AdapterSpec::new(AdapterKind::Tap(n.into()));
                a.name = Some(n.into());
                vec![a]
            }
            ("tap", _) => {
                return Err(format!("{s:?}: tap needs an interface name of 1 to 15 of [A-Za-z0-9_-]: tap:NAME"));
            }
            ("pair", Some(a)) => {
                let Some((x, y)) = a.split_once(',') else {
                    return Err(format!("{s:?}: a pair needs two names: pair:A,B"));
                };
                if x.is_empty() || y.is_empty() || x == y {
                    return Err(format!("{s:?}: a pair needs two different, non-empty names"));
                }
                let mut ax = AdapterSpec::new(AdapterKind::Pair(y.into()));
                ax.name = Some(x.into());
                let mut ay = AdapterSpec::new(AdapterKind::Pair(x.into()));
                ay.name = Some(y.into());
                vec![ax, ay]
            }
            (k, _) => {
                return Err(format!(
                    "{s:?}: unknown adapter kind {k:?} (loopback, null, pair:A,B, tap:NAME, each optionally followed by @key=value,...)"
                ));
            }
        };
        if let Some(opts) = opts {
            for kv in opts.split(',').filter(|kv| !kv.is_empty()) {
                let Some((key, v)) = kv.split_once('=') else {
                    return Err(format!("{s:?}: option {kv:?} is not key=value"));
                };
                for spec in &mut specs {
                    spec.set(key, v).map_err(|e| format!("{s:?}: {e}"))?;
                }
            }
        }
        Ok(specs)
    }

    /// Sets one option.
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        let onoff = |v: &str| match v {
            "on" | "true" | "1" => Ok(true),
            "off" | "false" | "0" => Ok(false),
            _ => Err(format!("{key}={v}: expected on or off")),
        };
        let completion = |v: &str| match v {
            "sync" => Ok(Completion::Sync),
            "pending" => Ok(Completion::Pending),
            "inline" => Ok(Completion::Inline),
            _ => Err(format!("{key}={v}: expected sync, pending or inline")),
        };
        match key {
            "name" if !v.is_empty() => self.name = Some(v.into()),
            "mtu" => {
                let m: u32 = v.parse().map_err(|_| format!("mtu={v}: not a number"))?;
                if !(68..=65_000).contains(&m) {
                    return Err(format!("mtu={v}: out of range 68..=65000"));
                }
                self.mtu = m;
            }
            "mac" => self.mac = Some(parse_mac(v).ok_or_else(|| format!("mac={v}: expected xx:xx:xx:xx:xx:xx"))?),
            "link" => {
                self.link_up = match v {
                    "up" => true,
                    "down" => false,
                    _ => return Err(format!("link={v}: expected up or down")),
                }
            }
            "speed" => self.speed = v.parse().map_err(|_| format!("speed={v}: not a number of bits/s"))?,
            "send-fail" => self.send_fail = per_mille(key, v, "sends")?,
            "reindicate" => self.reindicate = per_mille(key, v, "returns")?,
            "cancel-ignore" => self.cancel_ignore = per_mille(key, v, "OID cancels")?,
            "completion" => self.completion = parse_policy(v)?,
            "open" if v == "fail" => self.open_fails = true,
            "open" if v == "fail-once" => self.open_fails_once = true,
            "open" => self.open = completion(v)?,
            "oid-fail" => {
                for o in v.split('+') {
                    let n =
                        o.strip_prefix("0x").map_or_else(|| o.parse::<u32>().ok(), |h| u32::from_str_radix(h, 16).ok());
                    self.failing_oids
                        .push(n.ok_or_else(|| format!("oid-fail={v}: expected OIDs like 0x1010e+0x10107"))?);
                }
            }
            "close" => self.close = completion(v)?,
            "oid" if v == "held" => {
                self.oid = Completion::Pending;
                self.hold_oids = true;
            }
            "oid" => self.oid = completion(v)?,
            "filters" | "refuse-filter" => {
                let n = v.strip_prefix("0x").and_then(|h| u32::from_str_radix(h, 16).ok());
                let n = n.ok_or_else(|| format!("{key}={v}: expected NDIS_PACKET_TYPE_* bits like 0x2f"))?;
                if n & !SUPPORTED_FILTERS != 0 {
                    return Err(format!("{key}={v}: bits outside {SUPPORTED_FILTERS:#x}, the filters ndisim models"));
                }
                if key == "filters" {
                    self.supported_filters = n;
                } else {
                    self.refused_filters = n;
                }
            }
            "oid-overstate" => self.oid_overstate = onoff(v)?,
            "capture" => self.capture = onoff(v)?,
            "rss" => self.rss = onoff(v)?,
            "vlan" => self.vlan = onoff(v)?,
            "uro" => self.uro = onoff(v)?,
            "pause-on-suspend" => self.no_pause_on_suspend = !onoff(v)?,
            "rx-buffers" => {
                self.rx_buffers = v
                    .parse()
                    .ok()
                    .filter(|n| (4..=65_536).contains(n))
                    .ok_or_else(|| format!("rx-buffers={v}: expected a count of receive buffers, 4 to 65536"))?;
            }
            "multicast-held" => {
                self.multicast_held = v.parse().ok().filter(|&n| n <= MAX_MULTICAST as u32).ok_or_else(|| {
                    format!("multicast-held={v}: expected the entries other protocols hold, 0 to {MAX_MULTICAST}")
                })?;
            }
            "bind-status" => {
                self.bind_status = v.parse().ok().filter(|&n| n <= 16).ok_or_else(|| {
                    format!("bind-status={v}: expected the status indications made during a bind, 0 to 16")
                })?;
            }
            _ => return Err(format!("unknown option {key:?}")),
        }
        Ok(())
    }

    /// The `MacOptions` the adapter advertises when it starts.
    pub fn mac_options(&self) -> u32 {
        mac_options(self.vlan)
    }
}

/// The `MacOptions` of an adapter that does 802.1Q in hardware (`vlan`) or
/// not: it advertises them in the bind parameters, the restart attributes
/// and `OID_GEN_MAC_OPTIONS`.
pub fn mac_options(vlan: bool) -> u32 {
    if vlan { NDIS_MAC_OPTION_8021Q_VLAN | NDIS_MAC_OPTION_8021P_PRIORITY } else { 0 }
}

fn valid_ifname(n: &str) -> bool {
    !n.is_empty() && n.len() < 16 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses `xx:xx:xx:xx:xx:xx`.
pub fn parse_mac(v: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// `key=v`: a count per mille of `what`, 0 to 1000.
fn per_mille(key: &str, v: &str, what: &str) -> Result<u32, String> {
    v.parse().ok().filter(|&n| n <= 1000).ok_or_else(|| format!("{key}={v}: expected {what} per mille, 0 to 1000"))
}

/// Parses a completion policy: `immediate`, `batch:N`, `reorder:N`,
/// `delay:MS`, `scatter`, `held`.
pub fn parse_policy(v: &str) -> Result<CompletionPolicy, String> {
    let num = |s: &str| {
        s.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| format!("completion={v}: expected a positive number"))
    };
    Ok(match v.split_once(':') {
        None if v == "immediate" => CompletionPolicy::Immediate,
        None if v == "held" => CompletionPolicy::Held,
        None if v == "scatter" => CompletionPolicy::Scatter,
        Some(("batch", n)) => CompletionPolicy::Batched(num(n)? as usize),
        Some(("reorder", n)) => CompletionPolicy::Reordered(num(n)? as usize),
        Some(("delay", n)) => CompletionPolicy::Delayed(Duration::from_millis(num(n)?)),
        _ => return Err(format!("completion={v}: expected immediate, batch:N, reorder:N, delay:MS, scatter or held")),
    })
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterKind::Loopback => write!(f, "loopback"),
            AdapterKind::Pair(p) => write!(f, "pair (peer {p})"),
            AdapterKind::Null => write!(f, "null"),
            AdapterKind::Tap(n) => write!(f, "tap {n}"),
        }
    }
}

/// A frame as an adapter holds it: the bytes of its NET_BUFFER and the
/// 802.1Q tag carried beside them, out of band.
///
/// On send, `tci` is the tag of the NBL's `Ieee8021QNetBufferListInfo`
/// when the adapter advertises 802.1Q (`vlan=on`) and the info is not 0;
/// an adapter without 802.1Q ignores the info, as such a miniport does, so
/// `tci` is `None` and only a tag written into `data` reaches the wire. On
/// receive, an adapter with 802.1Q strips a tag from the wire into `tci`
/// (the receive NBL's info, as NICs with VLAN offload do); one without it
/// leaves the tag inline. Either way [`Frame::wire`] is the frame as it is
/// on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    /// The 802.1Q TCI carried out of band (see above).
    pub tci: Option<u16>,
}

/// The 802.1Q TPID.
pub const TPID_8021Q: u16 = 0x8100;

impl Frame {
    /// The frame on the wire: `data` with the out-of-band tag (if any)
    /// inserted after the two MAC addresses.
    pub fn wire(&self) -> Vec<u8> {
        match self.tci {
            Some(t) if self.data.len() >= 12 => {
                let mut w = Vec::with_capacity(self.data.len() + 4);
                w.extend_from_slice(&self.data[..12]);
                w.extend_from_slice(&TPID_8021Q.to_be_bytes());
                w.extend_from_slice(&t.to_be_bytes());
                w.extend_from_slice(&self.data[12..]);
                w
            }
            _ => self.data.clone(),
        }
    }

    /// A frame taken off the wire by an adapter that strips 802.1Q tags
    /// (`strip`, an adapter with `vlan=on`) or leaves them inline.
    pub fn from_wire(wire: Vec<u8>, strip: bool) -> Frame {
        Frame { data: wire, tci: None }.received(strip)
    }

    /// This frame as the receiving adapter indicates it: its outer tag
    /// stripped into `tci` (`strip`), or the whole wire frame inline.
    pub fn received(self, strip: bool) -> Frame {
        match (self.tci, strip) {
            (Some(_), true) => self,
            (Some(_), false) => Frame { data: self.wire(), tci: None },
            (None, true) => match inline_tci(&self.data) {
                Some(t) => {
                    let mut data = self.data;
                    data.drain(12..16);
                    Frame { data, tci: Some(t) }
                }
                None => self,
            },
            (None, false) => self,
        }
    }
}

/// The TCI of the 802.1Q tag `frame` carries inline (TPID 0x8100 after the
/// MAC addresses, and room for the EtherType after it), if any.
pub fn inline_tci(frame: &[u8]) -> Option<u16> {
    (frame.len() >= 18 && frame[12..14] == TPID_8021Q.to_be_bytes()).then(|| u16::from_be_bytes([frame[14], frame[15]]))
}

/// The adapter's state, as its OIDs report it.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub mtu: u32,
    pub mac: [u8; 6],
    pub permanent_mac: [u8; 6],
    pub link_up: bool,
    pub speed: u64,
    pub packet_filter: u32,
    pub lookahead: u32,
    pub multicast: Vec<[u8; 6]>,
    pub powered: bool,
    /// The packet filters the miniport advertises: `AdapterSpec`'s
    /// `supported_filters` until a restart changes them
    /// (`RestartSpec::supported_filters`).
    pub supported_filters: u32,
}

pub(crate) const MAX_MULTICAST: usize = 32;
pub(crate) const SUPPORTED_FILTERS: u32 = NDIS_PACKET_TYPE_DIRECTED
    | NDIS_PACKET_TYPE_MULTICAST
    | NDIS_PACKET_TYPE_ALL_MULTICAST
    | NDIS_PACKET_TYPE_BROADCAST
    | NDIS_PACKET_TYPE_PROMISCUOUS;

/// Counters of an adapter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub rx_dropped: AtomicU64,
    /// Of `rx_dropped`: frames that found none of the miniport's receive
    /// buffers free (`AdapterSpec::rx_buffers`).
    pub rx_no_buffer: AtomicU64,
    /// Frames NDIS did not indicate because the binding's packet filter,
    /// multicast list or MAC did not accept them.
    pub rx_filtered: AtomicU64,
    /// Frames the adapter failed to put on its wire (a TAP write that
    /// failed).
    pub tx_errors: AtomicU64,
    /// Send NBLs whose `Ieee8021QNetBufferListInfo` was set although the
    /// adapter does not advertise 802.1Q: the tag was ignored.
    pub tx_tags_ignored: AtomicU64,
    /// Binds at which NDIS turned the adapter's URO off.
    pub uro_turned_off: AtomicU64,
}

/// Frames waiting to be indicated by the adapter's receive thread.
pub(crate) struct RxQueue {
    /// Frames, each with whether NDIS loops it back (a send with
    /// `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`) rather than the wire brought it.
    pub q: Mutex<VecDeque<(Frame, bool)>>,
    pub cv: Condvar,
    pub stop: AtomicBool,
    pub busy: Mutex<usize>,
    pub idle: Condvar,
}

impl RxQueue {
    pub(crate) fn new() -> Self {
        RxQueue {
            q: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            busy: Mutex::new(0),
            idle: Condvar::new(),
        }
    }

    /// A frame from the wire.
    pub(crate) fn push(&self, f: Frame) {
        lock(&self.q).push_back((f, false));
        self.cv.notify_one();
    }

    /// A frame NDIS loops back from a send.
    pub(crate) fn push_loopback(&self, f: Frame) {
        lock(&self.q).push_back((f, true));
        self.cv.notify_one();
    }

    /// Waits until the queue is empty and nothing is being indicated.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        if let Some(k) = crate::kernel::kernel().filter(|k| k.sched_here().is_some()) {
            return k.wait_until(timeout, "a receive queue to drain", || {
                let q = lock(&self.q);
                let b = lock(&self.busy);
                *b == 0 && q.is_empty()
            });
        }
        let deadline = crate::starve::Deadline::after(timeout);
        loop {
            // Lock order: the queue, then the busy count, as the receive
            // thread takes them (the other order deadlocks with it).
            let q = lock(&self.q);
            let b = lock(&self.busy);
            if *b == 0 && q.is_empty() {
                return true;
            }
            drop(q);
            let Some(left) = deadline.left() else { return false };
            // Holding `busy` until the wait, a decrement (and its notify)
            // cannot slip in between; the short bound covers a frame that
            // is queued but not yet taken.
            let wait = left.min(Duration::from_millis(10));
            drop(self.idle.wait_timeout(b, wait).unwrap_or_else(|e| e.into_inner()).0);
        }
    }
}

/// A MAC address for adapter `idx` (locally administered).
pub(crate) fn default_mac(idx: usize) -> [u8; 6] {
    [0x02, 0x00, 0x5e, 0x10, 0x00, (idx as u8).wrapping_add(1)]
}

// ---------------------------------------------------------------------------
// TAP
// ---------------------------------------------------------------------------

/// An open Linux TAP device.
#[allow(dead_code)]
pub(crate) struct Tap {
    pub fd: i32,
    pub name: String,
}

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;

impl Tap {
    /// Creates (or attaches to) TAP interface `name` in the calling
    /// thread's network namespace.
    pub(crate) fn open(name: &str) -> Result<Tap, String> {
        // SAFETY: opening a device node with a NUL-terminated path.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("open /dev/net/tun: {}", std::io::Error::last_os_error()));
        }
        let mut req = IfReq { name: [0; 16], flags: IFF_TAP | IFF_NO_PI, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF with a valid ifreq.
        if unsafe { libc::ioctl(fd, TUNSETIFF, &mut req) } < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: closing our fd.
            unsafe { libc::close(fd) };
            return Err(format!("TUNSETIFF {name}: {e}"));
        }
        Ok(Tap { fd, name: name.into() })
    }

    /// Writes one frame.
    pub(crate) fn write(&self, frame: &[u8]) -> bool {
        // SAFETY: writing a valid buffer to our fd.
        unsafe { libc::write(self.fd, frame.as_ptr().cast(), frame.len()) == frame.len() as isize }
    }

    /// Reads one frame, waiting at most `timeout_ms`; `None` on timeout.
    pub(crate) fn read(&self, buf: &mut [u8], timeout_ms: i32) -> Option<usize> {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: polling our fd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r <= 0 {
            return None;
        }
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
        (n > 0).then_some(n as usize)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // SAFETY: closing our fd once.
        unsafe { libc::close(self.fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..12].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f[59] = 0xee;
        f
    }

    fn tagged(tci: u16) -> Vec<u8> {
        let u = untagged();
        [&u[..12], &[0x81, 0x00], &tci.to_be_bytes()[..], &u[12..]].concat()
    }

    #[test]
    fn the_vlan_option_decides_the_mac_options() {
        let on = &AdapterSpec::parse("null").unwrap()[0];
        assert!(on.vlan, "on by default");
        assert_eq!(on.mac_options(), NDIS_MAC_OPTION_8021Q_VLAN | NDIS_MAC_OPTION_8021P_PRIORITY);
        assert_eq!(on.mac_options(), 0x240);
        let off = &AdapterSpec::parse("pair:a,b@vlan=off").unwrap();
        assert!(off.iter().all(|s| !s.vlan && s.mac_options() == 0));
        assert!(AdapterSpec::parse("null@vlan=maybe").unwrap_err().contains("expected on or off"));
    }

    #[test]
    fn other_protocols_hold_multicast_entries_only_as_many_as_the_list_has() {
        assert_eq!(AdapterSpec::parse("null").unwrap()[0].multicast_held, 0);
        assert_eq!(AdapterSpec::parse("null@multicast-held=32").unwrap()[0].multicast_held, 32);
        assert_eq!(AdapterSpec::parse("null@bind-status=3").unwrap()[0].bind_status, 3);
        assert!(AdapterSpec::parse("null@bind-status=17").is_err());
        for bad in ["33", "-1", "many"] {
            let e = AdapterSpec::parse(&format!("null@multicast-held={bad}")).unwrap_err();
            assert!(e.contains("0 to 32"), "{e}");
        }
    }

    #[test]
    fn the_wire_carries_an_out_of_band_tag_once() {
        let f = Frame { data: untagged(), tci: Some(0xa005) };
        assert_eq!(f.wire(), tagged(0xa005));
        assert_eq!(Frame { data: tagged(7), tci: None }.wire(), tagged(7));
        assert_eq!(Frame { data: untagged(), tci: None }.wire(), untagged());
    }

    #[test]
    fn a_receiver_strips_the_outer_tag_only_when_it_does_802_1q() {
        // Stripping: a tag carried inline or out of band ends up in `tci`.
        for f in [Frame { data: tagged(0), tci: None }, Frame { data: untagged(), tci: Some(0) }] {
            assert_eq!(f.received(true), Frame { data: untagged(), tci: Some(0) });
        }
        // Not stripping: the wire frame, tag inline.
        for f in [Frame { data: tagged(0x2064), tci: None }, Frame { data: untagged(), tci: Some(0x2064) }] {
            assert_eq!(f.received(false), Frame { data: tagged(0x2064), tci: None });
        }
        // Untagged frames pass either way; a stack of two tags loses one.
        for strip in [false, true] {
            assert_eq!(Frame::from_wire(untagged(), strip), Frame { data: untagged(), tci: None });
        }
        let two = Frame { data: tagged(5), tci: Some(9) };
        assert_eq!(two.clone().received(true), two);
        assert_eq!(Frame::from_wire(two.wire(), true), Frame { data: tagged(5), tci: Some(9) });
        // Too short for a tag and an EtherType: left alone.
        let short = tagged(5)[..17].to_vec();
        assert_eq!(inline_tci(&short), None);
        assert_eq!(Frame::from_wire(short.clone(), true).data, short);
    }
}
