//! What `--json` prints: one `Serialize` type per shape of value, each with
//! the description of its fields that `rawnicctl help COMMAND` shows
//! (`Shape::DOC`). A test checks that every type has exactly the fields its
//! description lists. Values are printed one per line (`Ctx::json`).

use rawnic_client::{MacAddr, PacketFilter};
use serde::{Serialize, Serializer};
use std::fmt::Display;
use std::net::Ipv4Addr;

/// How a shape is described: what one value is, and each field with what
/// it holds.
pub struct Doc {
    pub what: &'static str,
    pub fields: &'static [(&'static str, &'static str)],
}

/// A shape of JSON value that rawnicctl prints.
pub trait Shape: Serialize {
    const DOC: Doc;
}

/// The text of a command's help about its JSON values.
pub fn help(docs: &[Doc]) -> String {
    let mut out = String::from("JSON output (--json), one value per line:");
    for d in docs {
        out.push_str(&format!("\n  {}:", d.what));
        for (name, meaning) in d.fields {
            out.push_str(&format!("\n    {name:<18} {meaning}"));
        }
    }
    out
}

/// Writes a value by its `Display` form (MAC addresses).
fn display<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Writes packet filter bits as their number.
fn bits<S: Serializer>(f: &PacketFilter, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u32(f.bits())
}

/// `v` rounded to `places` decimals, for times and rates.
pub fn rounded(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

/// `compile`: the program.
#[derive(Serialize)]
pub struct Program<'a> {
    pub expression: &'a str,
    pub instructions: Vec<[u32; 4]>,
}

impl Shape for Program<'_> {
    const DOC: Doc = Doc {
        what: "an object",
        fields: &[
            ("expression", "the filter expression"),
            ("instructions", "the program: [code, jt, jf, k] per instruction, as tcpdump -ddd prints them"),
        ],
    };
}

/// `list`: the adapters, in one array.
#[derive(Serialize)]
pub struct Binding<'a> {
    pub index: usize,
    pub id: u32,
    pub name: &'a str,
    pub alias: Option<&'a str>,
    pub description: &'a str,
    pub state: &'static str,
    pub link: &'static str,
    pub duplex: &'static str,
    pub mtu: u32,
    pub xmit_speed: u64,
    pub rcv_speed: u64,
    #[serde(serialize_with = "display")]
    pub mac: MacAddr,
    #[serde(serialize_with = "bits")]
    pub packet_filter: PacketFilter,
    #[serde(serialize_with = "bits")]
    pub supported_filters: PacketFilter,
    #[serde(serialize_with = "bits")]
    pub refused_filters: PacketFilter,
    pub open_handles: u32,
}

impl<'a> From<&'a rawnic_client::Binding> for Binding<'a> {
    fn from(b: &'a rawnic_client::Binding) -> Self {
        Binding {
            index: b.index,
            id: b.id,
            name: &b.name,
            alias: b.alias.as_deref(),
            description: &b.description,
            state: b.state_name(),
            link: b.link_name(),
            duplex: b.duplex_name(),
            mtu: b.mtu,
            xmit_speed: b.xmit_speed,
            rcv_speed: b.rcv_speed,
            mac: b.mac,
            packet_filter: b.packet_filter,
            supported_filters: b.supported_filters,
            refused_filters: b.refused_filters,
            open_handles: b.open_handles,
        }
    }
}

impl Shape for Binding<'_> {
    const DOC: Doc = Doc {
        what: "one array with an object per adapter",
        fields: &[
            ("index", "its index, what --adapter INDEX takes"),
            ("id", "the driver's id of the binding (events name it)"),
            ("name", "the adapter's name, what --adapter NAME takes"),
            ("alias", "the name the host gives the interface, or null"),
            ("description", "the adapter's description"),
            ("state", "the binding's state: running, paused, ..."),
            ("link", "up, down or unknown"),
            ("duplex", "full, half or unknown"),
            ("mtu", "bytes"),
            ("xmit_speed", "bits per second"),
            ("rcv_speed", "bits per second"),
            ("mac", "the adapter's MAC address, \"02:00:00:00:00:01\""),
            ("packet_filter", "the binding's packet filter bits"),
            ("supported_filters", "the filter bits the adapter supports"),
            ("refused_filters", "the filter bits the adapter refused to set"),
            ("open_handles", "handles open on the binding"),
        ],
    };
}

/// `version`.
#[derive(Serialize)]
pub struct Version {
    pub rawnicctl: &'static str,
    pub driver: String,
    pub wire_format: u16,
    pub ndis: String,
    pub max_batch: u32,
}

impl Shape for Version {
    const DOC: Doc = Doc {
        what: "an object",
        fields: &[
            ("rawnicctl", "rawnicctl's version, \"0.1.0\""),
            ("driver", "the driver's version"),
            ("wire_format", "the driver's wire-format version"),
            ("ndis", "the NDIS version the driver registered with, \"6.30\""),
            ("max_batch", "the most frames one SEND_BATCH request takes"),
        ],
    };
}

/// `wait`.
#[derive(Serialize)]
pub struct Bindings {
    pub bindings: u32,
}

impl Shape for Bindings {
    const DOC: Doc = Doc { what: "an object", fields: &[("bindings", "how many bindings there are")] };
}

/// One set of counters (`stats`).
#[derive(Serialize)]
pub struct Counters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub rx_queue_drops: u64,
    pub rx_truncated: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_in_flight: u64,
}

impl From<&rawnic_client::Counters> for Counters {
    fn from(c: &rawnic_client::Counters) -> Self {
        Counters {
            rx_frames: c.rx_frames,
            rx_bytes: c.rx_bytes,
            rx_queue_drops: c.rx_queue_drops,
            rx_truncated: c.rx_truncated,
            tx_frames: c.tx_frames,
            tx_bytes: c.tx_bytes,
            tx_errors: c.tx_errors,
            tx_in_flight: c.tx_in_flight,
        }
    }
}

impl Shape for Counters {
    const DOC: Doc = Doc {
        what: "handle and binding, each an object of counters",
        fields: &[
            ("rx_frames", "frames received (binding: indicated by NDIS)"),
            ("rx_bytes", "their bytes"),
            ("rx_queue_drops", "frames dropped because a receive queue was full"),
            ("rx_truncated", "frames cut to the snap length"),
            ("tx_frames", "frames sent and completed successfully"),
            ("tx_bytes", "their bytes"),
            ("tx_errors", "frames NDIS completed with a failure"),
            ("tx_in_flight", "frames handed to NDIS and not completed yet"),
        ],
    };
}

/// `stats`.
#[derive(Serialize)]
pub struct Stats<'a> {
    pub adapter: &'a str,
    pub queued_frames: u32,
    pub queued_bytes: u64,
    #[serde(serialize_with = "bits")]
    pub requested_filter: PacketFilter,
    #[serde(serialize_with = "bits")]
    pub effective_filter: PacketFilter,
    pub filter_pending: bool,
    pub handle: Counters,
    pub binding: Counters,
}

impl Shape for Stats<'_> {
    const DOC: Doc = Doc {
        what: "an object",
        fields: &[
            ("adapter", "the adapter's name"),
            ("queued_frames", "frames waiting in the new handle's receive queue"),
            ("queued_bytes", "their bytes"),
            ("requested_filter", "the packet filter the handle asked for"),
            ("effective_filter", "the packet filter it gets"),
            (
                "filter_pending",
                "the adapter does not have the handle's filter yet (a set failed for a passing reason and is tried again): effective_filter is what it gets meanwhile",
            ),
            ("handle", "the handle's counters (below)"),
            ("binding", "the binding's counters (below)"),
        ],
    };
}

/// `oid get`.
#[derive(Serialize)]
pub struct OidValue {
    pub oid: u32,
    pub name: Option<&'static str>,
    pub bytes: usize,
    pub data: String,
    pub value: String,
}

impl Shape for OidValue {
    const DOC: Doc = Doc {
        what: "an object",
        fields: &[
            ("oid", "the OID's number"),
            ("name", "its name, or null when rawnicctl does not know it"),
            ("bytes", "how many bytes of data the adapter returned"),
            ("data", "the data in hex"),
            ("value", "the data decoded as text (with --raw, hex)"),
        ],
    };
}

/// `oid set`.
#[derive(Serialize)]
pub struct OidSet {
    pub oid: u32,
    pub bytes: u32,
}

impl Shape for OidSet {
    const DOC: Doc =
        Doc { what: "an object", fields: &[("oid", "the OID's number"), ("bytes", "how many bytes the adapter took")] };
}

/// `oid names`: one per OID.
#[derive(Serialize)]
pub struct OidName {
    pub name: &'static str,
    pub oid: u32,
    pub settable: bool,
}

impl Shape for OidName {
    const DOC: Doc = Doc {
        what: "an object per OID",
        fields: &[
            ("name", "the OID's name"),
            ("oid", "its number"),
            ("settable", "whether the driver lets `oid set` set it"),
        ],
    };
}

/// `watch`: one per event.
#[derive(Serialize)]
pub struct Event<'a> {
    pub time: String,
    pub kind: &'static str,
    pub binding_id: u32,
    pub adapter: &'a str,
    pub seq: u64,
    pub speed: u64,
    pub mtu: u32,
    pub lost: u32,
    #[serde(serialize_with = "bits")]
    pub filter: PacketFilter,
    #[serde(serialize_with = "bits")]
    pub refused: PacketFilter,
}

impl Shape for Event<'_> {
    const DOC: Doc = Doc {
        what: "an object per event",
        fields: &[
            ("time", "when rawnicctl got it, RFC 3339 UTC"),
            ("kind", "link-up, link-down, paused, restarted, unbound, bound, filter-refused, filter-failed, ..."),
            ("binding_id", "the binding's id (as `list` gives it)"),
            ("adapter", "the adapter's name"),
            ("seq", "the event's number on this handle (lost ones count)"),
            ("speed", "link events: bits per second, else 0"),
            ("mtu", "restart events: the MTU, else 0"),
            ("lost", "events lost before this one (the queue was full)"),
            (
                "filter",
                "filter-refused: the handle's packet filter now; filter-failed: what it gets until a set succeeds; else 0",
            ),
            (
                "refused",
                "filter-refused: the bits the adapter refused; filter-failed: what the handle misses meanwhile; else 0",
            ),
        ],
    };
}

/// `recv`: one per frame.
#[derive(Serialize)]
pub struct Frame {
    pub ts_ns: u64,
    pub time: String,
    pub caplen: usize,
    pub origlen: u32,
    pub direction: &'static str,
    pub loopback: bool,
    pub truncated: bool,
    pub vlan: Option<u16>,
    pub priority: Option<u8>,
    pub coalesced: bool,
    pub segments: Option<u16>,
    pub segment_size: Option<u16>,
    pub dst: Option<String>,
    pub src: Option<String>,
    pub ethertype: u16,
    pub summary: String,
    pub data: String,
}

impl Shape for Frame {
    const DOC: Doc = Doc {
        what: "an object per frame",
        fields: &[
            ("ts_ns", "receive time, nanoseconds since 1970-01-01 UTC"),
            ("time", "the same as RFC 3339 UTC with nanoseconds"),
            ("caplen", "bytes captured (see --snaplen)"),
            ("origlen", "the frame's length"),
            ("direction", "in, or out for frames sent from this host"),
            ("loopback", "whether NDIS looped it back from another protocol"),
            ("truncated", "whether it was cut to the snap length"),
            ("vlan", "the 802.1Q VLAN ID, or null when untagged"),
            ("priority", "the 802.1Q priority, or null when untagged"),
            ("coalesced", "whether the NIC coalesced it from several segments (RSC, URO)"),
            ("segments", "how many segments it was coalesced from, or null if not known"),
            ("segment_size", "the size of each coalesced UDP segment, or null if not known"),
            ("dst", "destination MAC, or null if not captured"),
            ("src", "source MAC, or null if not captured"),
            ("ethertype", "the EtherType (inside the tag), 0 if not captured"),
            ("summary", "a one-line summary, as without --json"),
            ("data", "the captured bytes in hex"),
        ],
    };
}

/// `recv --pcapng FILE`: one at the end.
#[derive(Serialize)]
pub struct Capture<'a> {
    pub frames: u64,
    pub bytes: u64,
    pub file: &'a str,
}

impl Shape for Capture<'_> {
    const DOC: Doc = Doc {
        what: "with --pcapng FILE (not -), one object at the end instead",
        fields: &[("frames", "frames written"), ("bytes", "their length on the wire"), ("file", "the file")],
    };
}

/// `send`: one at the end.
#[derive(Serialize)]
pub struct Sent<'a> {
    pub adapter: &'a str,
    pub frames: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rate: f64,
}

impl Shape for Sent<'_> {
    const DOC: Doc = Doc {
        what: "one object at the end",
        fields: &[
            ("adapter", "the adapter's name"),
            ("frames", "frames sent"),
            ("bytes", "their bytes"),
            ("seconds", "how long it took"),
            ("rate", "frames per second"),
        ],
    };
}

/// `arping`: a reply.
#[derive(Serialize)]
pub struct Reply {
    pub seq: u64,
    pub target: Ipv4Addr,
    #[serde(serialize_with = "display")]
    pub mac: MacAddr,
    pub rtt_ms: f64,
}

impl Shape for Reply {
    const DOC: Doc = Doc {
        what: "an object per request answered",
        fields: &[
            ("seq", "the request's number, from 0"),
            ("target", "the address asked for"),
            ("mac", "the MAC address that replied"),
            ("rtt_ms", "the round trip in milliseconds"),
        ],
    };
}

/// `arping`: a request nobody answered in time.
#[derive(Serialize)]
pub struct NoReply {
    pub seq: u64,
    pub target: Ipv4Addr,
    pub timeout: bool,
}

impl Shape for NoReply {
    const DOC: Doc = Doc {
        what: "an object per request not answered in time",
        fields: &[("seq", "the request's number, from 0"), ("target", "the address asked for"), ("timeout", "true")],
    };
}

/// `selftest`: one per step.
#[derive(Serialize)]
pub struct Step<'a> {
    pub step: &'a str,
    pub pass: bool,
    pub detail: &'a str,
}

impl Shape for Step<'_> {
    const DOC: Doc = Doc {
        what: "an object per step",
        fields: &[
            ("step", "what it checked"),
            ("pass", "whether it passed"),
            ("detail", "what it saw, or why it failed"),
        ],
    };
}

/// `selftest`: the tally at the end.
#[derive(Serialize)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

impl Shape for Summary {
    const DOC: Doc = Doc {
        what: "one object at the end",
        fields: &[("passed", "steps that passed"), ("failed", "steps that failed")],
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The keys of a JSON object, in the order written.
    struct Keys(Vec<String>);

    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, serde::de::IgnoredAny)) = map.next_entry()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(Visit)
        }
    }

    /// The fields of `v`'s JSON object, in the order written.
    fn fields<T: Shape>(v: &T) -> Vec<String> {
        serde_json::from_str::<Keys>(&serde_json::to_string(v).unwrap()).unwrap().0
    }

    fn documented<T: Shape>(v: &T) {
        let doc: Vec<&str> = T::DOC.fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(fields(v), doc, "{}", T::DOC.what);
    }

    #[test]
    fn every_shape_has_the_fields_its_help_lists() {
        let b = crate::common::tests::binding(0, "eth0", "d");
        documented(&Binding::from(&b));
        documented(&Version { rawnicctl: "", driver: "".into(), wire_format: 3, ndis: "".into(), max_batch: 1 });
        documented(&Bindings { bindings: 1 });
        documented(&Program { expression: "arp", instructions: vec![[6, 0, 0, 0]] });
        let c = rawnic_client::Counters::default();
        documented(&Counters::from(&c));
        documented(&Stats {
            adapter: "",
            queued_frames: 0,
            queued_bytes: 0,
            requested_filter: PacketFilter::NONE,
            effective_filter: PacketFilter::NONE,
            filter_pending: false,
            handle: Counters::from(&c),
            binding: Counters::from(&c),
        });
        documented(&OidValue { oid: 1, name: None, bytes: 0, data: "".into(), value: "".into() });
        documented(&OidSet { oid: 1, bytes: 4 });
        documented(&OidName { name: "", oid: 1, settable: false });
        documented(&Event {
            time: "".into(),
            kind: "",
            binding_id: 1,
            adapter: "",
            seq: 0,
            speed: 0,
            mtu: 0,
            lost: 0,
            filter: PacketFilter::NONE,
            refused: PacketFilter::NONE,
        });
        documented(&Frame {
            ts_ns: 0,
            time: "".into(),
            caplen: 0,
            origlen: 0,
            direction: "in",
            loopback: false,
            truncated: false,
            vlan: None,
            priority: None,
            coalesced: false,
            segments: None,
            segment_size: None,
            dst: None,
            src: None,
            ethertype: 0,
            summary: "".into(),
            data: "".into(),
        });
        documented(&Capture { frames: 0, bytes: 0, file: "" });
        documented(&Sent { adapter: "", frames: 0, bytes: 0, seconds: 0.0, rate: 0.0 });
        let target = Ipv4Addr::new(10, 0, 0, 1);
        documented(&Reply { seq: 0, target, mac: MacAddr::ZERO, rtt_ms: 0.0 });
        documented(&NoReply { seq: 0, target, timeout: true });
        documented(&Step { step: "", pass: true, detail: "" });
        documented(&Summary { passed: 0, failed: 0 });
    }

    #[test]
    fn values_are_written_as_the_tests_and_scripts_read_them() {
        let r =
            Reply { seq: 2, target: Ipv4Addr::new(10, 0, 0, 1), mac: MacAddr([2, 0, 0, 0, 0, 0x77]), rtt_ms: 0.125 };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"seq": 2, "target": "10.0.0.1", "mac": "02:00:00:00:00:77", "rtt_ms": 0.125})
        );
        assert_eq!(
            serde_json::to_string(&OidValue {
                oid: 7,
                name: None,
                bytes: 1,
                data: "0a".into(),
                value: "\"q\"\n".into()
            })
            .unwrap(),
            r#"{"oid":7,"name":null,"bytes":1,"data":"0a","value":"\"q\"\n"}"#
        );
        assert_eq!(rounded(1.234_567_89, 6), 1.234_568);
        assert_eq!(rounded(99.96, 1), 100.0);
    }

    #[test]
    fn the_help_lists_each_field_under_its_shape() {
        let h = help(&[Reply::DOC, NoReply::DOC]);
        assert!(
            h.starts_with("JSON output (--json), one value per line:\n  an object per request answered:\n    seq ")
        );
        assert!(h.contains("\n    rtt_ms             the round trip in milliseconds\n"), "{h}");
        assert!(h.ends_with("    timeout            true"), "{h}");
    }
}
