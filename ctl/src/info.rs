//! `list`, `version`, `wait`, `stats`, `oid` and `watch`.

use crate::cli::{OidArgs, WatchArgs};
use crate::common::{Ctx, Fail, Res, now_ns, plural, quoted, utc};
use crate::json;
use rawnic_client::oid::{self, decode, display_oid, filter_names, format_speed, hex};
use rawnic_client::rawnic_proto;
use rawnic_client::{Binding, Counters, Device, EventKind, OpenOptions};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub fn list(ctx: &Ctx) -> Res {
    let dev = ctx.device()?;
    let list = dev.list()?;
    if ctx.global.json {
        return ctx.json(&list.iter().map(json::Binding::from).collect::<Vec<_>>());
    }
    if list.is_empty() {
        return ctx.out("rawnic is bound to no adapter");
    }
    for b in &list {
        let speed = if b.xmit_speed == b.rcv_speed {
            format_speed(b.xmit_speed)
        } else {
            format!("{} out, {} in", format_speed(b.xmit_speed), format_speed(b.rcv_speed))
        };
        match &b.alias {
            Some(a) => ctx.out(format!("{}: {a} ({})  {}", b.index, b.name, quoted(&b.description)))?,
            None => ctx.out(format!("{}: {}  {}", b.index, b.name, quoted(&b.description)))?,
        }
        ctx.out(format!(
            "   {}, link {} ({speed}, {} duplex), mtu {}, mac {}, filter {}, {}",
            b.state_name(),
            b.link_name(),
            b.duplex_name(),
            b.mtu,
            b.mac,
            filter_names(b.packet_filter),
            plural(b.open_handles, "open handle", "open handles")
        ))?;
        let not_allowed = (rawnic_proto::filter::ALL - b.supported_filters) | b.refused_filters;
        if !b.supported_filters.is_empty() && !not_allowed.is_empty() {
            ctx.out(format!("   the adapter does not allow filter {}", filter_names(not_allowed)))?;
        }
    }
    Ok(())
}

pub fn version(ctx: &Ctx) -> Res {
    let dev = ctx.device()?;
    let v = dev.version()?;
    let (a, b, c) = v.driver;
    if ctx.global.json {
        return ctx.json(&json::Version {
            rawnicctl: env!("CARGO_PKG_VERSION"),
            driver: format!("{a}.{b}.{c}"),
            wire_format: v.proto_version,
            ndis: format!("{}.{}", v.ndis.0, v.ndis.1),
            max_batch: v.max_batch,
        });
    }
    ctx.out(format!("rawnicctl {}", env!("CARGO_PKG_VERSION")))?;
    ctx.out(format!(
        "driver {a}.{b}.{c}, wire format {}, NDIS {}.{}, at most {} frames per batch",
        v.proto_version, v.ndis.0, v.ndis.1, v.max_batch
    ))
}

pub fn wait(ctx: &Ctx, timeout: Option<Duration>) -> Res {
    let dev = ctx.device()?;
    let n = dev.wait_binds_complete(timeout)?;
    if ctx.global.json {
        return ctx.json(&json::Bindings { bindings: n });
    }
    ctx.out(format!("binds are complete: {}", plural(n, "binding", "bindings")))
}

/// Opens the adapter on a handle that receives nothing.
fn open_quiet(ctx: &Ctx) -> Res<(Device, Binding)> {
    let dev = ctx.device()?;
    let b = ctx.adapter(&dev)?;
    dev.open_binding(&OpenOptions::new(&b.name).send_only())?;
    Ok((dev, b))
}

/// A counter's name and how to read it.
type Field = (&'static str, fn(&Counters) -> u64);

const COUNTERS: [Field; 8] = [
    ("rx_frames", |c| c.rx_frames),
    ("rx_bytes", |c| c.rx_bytes),
    ("rx_queue_drops", |c| c.rx_queue_drops),
    ("rx_truncated", |c| c.rx_truncated),
    ("tx_frames", |c| c.tx_frames),
    ("tx_bytes", |c| c.tx_bytes),
    ("tx_errors", |c| c.tx_errors),
    ("tx_in_flight", |c| c.tx_in_flight),
];

pub fn stats(ctx: &Ctx) -> Res {
    let (dev, b) = open_quiet(ctx)?;
    let s = dev.stats()?;
    if ctx.global.json {
        return ctx.json(&json::Stats {
            adapter: &b.name,
            queued_frames: s.queued_frames,
            queued_bytes: s.queued_bytes,
            requested_filter: s.requested_filter,
            effective_filter: s.effective_filter,
            filter_pending: s.flags & rawnic_proto::stats_flags::FILTER_PENDING != 0,
            handle: json::Counters::from(&s.handle),
            binding: json::Counters::from(&s.binding),
        });
    }
    ctx.out(format!("{}: {} frames ({} bytes) queued on this handle", b.name, s.queued_frames, s.queued_bytes))?;
    ctx.out(format!("  the adapter's packet filter: {}", filter_names(b.packet_filter)))?;
    if !s.requested_filter.is_empty() {
        ctx.out(format!("  this handle's packet filter: {}", filter_names(s.effective_filter)))?;
    }
    if let Some(why) = rawnic_client::stats_filter_note(&s) {
        ctx.out(format!("  {why}"))?;
    }
    ctx.out(format!("  {:<16} {:>20} {:>20}", "", "binding", "this handle"))?;
    for (name, get) in COUNTERS {
        ctx.out(format!("  {name:<16} {:>20} {:>20}", get(&s.binding), get(&s.handle)))?;
    }
    Ok(())
}

pub fn oid(ctx: &Ctx, a: &OidArgs) -> Res {
    match a {
        OidArgs::Names => {
            for i in oid::NAMED {
                let settable = rawnic_proto::OID_SET_ALLOW_LIST.contains(&i.oid);
                if ctx.global.json {
                    ctx.json(&json::OidName { name: i.name, oid: i.oid, settable })?;
                } else {
                    ctx.out(format!("{:#010x}  {}{}", i.oid, i.name, if settable { "  (settable)" } else { "" }))?;
                }
            }
            Ok(())
        }
        OidArgs::Get { oid, info, len, raw } => {
            let (dev, _) = open_quiet(ctx)?;
            let data = match len {
                Some(n) => dev.query_oid_raw(*oid, *n)?.check(false)?.data,
                None => dev.query_oid(*oid)?,
            };
            let value = if *raw { hex(&data) } else { decode(*oid, &data) };
            if ctx.global.json {
                return ctx.json(&json::OidValue {
                    oid: *oid,
                    name: info.map(|i| i.name),
                    bytes: data.len(),
                    data: hex(&data),
                    value,
                });
            }
            if value.contains('\n') {
                ctx.out(format!("{}:", display_oid(*oid)))?;
                for line in value.lines() {
                    ctx.out(format!("  {line}"))?;
                }
                Ok(())
            } else {
                ctx.out(format!("{}: {value}", display_oid(*oid)))
            }
        }
        OidArgs::Set { oid, value } => {
            let (dev, _) = open_quiet(ctx)?;
            let read = dev.set_oid(*oid, value)?;
            if ctx.global.json {
                return ctx.json(&json::OidSet { oid: *oid, bytes: read });
            }
            ctx.out(format!("set {}: the adapter took {read} of {} bytes", display_oid(*oid), value.len()))
        }
    }
}

pub fn watch(ctx: &Ctx, a: &WatchArgs) -> Res {
    let dev = ctx.device()?;
    let mut names: HashMap<u32, String> = dev.list()?.into_iter().map(|b| (b.id, b.name)).collect();
    let only = match &ctx.global.adapter {
        Some(_) => {
            let b = ctx.adapter(&dev)?;
            dev.open_binding(&OpenOptions::new(&b.name).send_only())?;
            Some(b.id)
        }
        None => None,
    };
    // A timeout too long for an Instant is no limit.
    let deadline = a.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut seen = 0u64;
    while a.count.is_none_or(|c| seen < c) {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            break;
        }
        let Some(ev) = dev.wait_event(left)? else { break };
        if only.is_some_and(|id| id != ev.binding_id) {
            continue;
        }
        if !names.contains_key(&ev.binding_id) {
            // A new binding: learn its name.
            names.extend(dev.list()?.into_iter().map(|b| (b.id, b.name)));
        }
        let name = names.get(&ev.binding_id).map_or("", String::as_str);
        let kind = ev.event_kind().name();
        let when = utc(now_ns());
        if ctx.global.json {
            ctx.json(&json::Event {
                time: when,
                kind,
                binding_id: ev.binding_id,
                adapter: name,
                seq: ev.seq,
                speed: ev.speed,
                mtu: ev.mtu,
                lost: ev.lost,
                filter: ev.filter,
                refused: ev.refused,
            })?;
        } else {
            let detail = match ev.event_kind() {
                EventKind::LinkUp | EventKind::LinkDown if ev.speed != 0 => format!(", {}", format_speed(ev.speed)),
                EventKind::FilterRefused => {
                    format!(", refused {}, the handle gets {}", filter_names(ev.refused), filter_names(ev.filter))
                }
                EventKind::FilterFailed => format!(
                    ", the adapter failed to set the packet filter: until it does the handle gets {} and misses {}",
                    filter_names(ev.filter),
                    filter_names(ev.refused)
                ),
                _ if ev.mtu != 0 => format!(", mtu {}", ev.mtu),
                _ => String::new(),
            };
            let lost = if ev.lost > 0 { format!(" ({} earlier events were lost)", ev.lost) } else { String::new() };
            ctx.out(format!(
                "{when}  {kind:<9}  binding {} {}{detail}  seq {}{lost}",
                ev.binding_id,
                quoted(name),
                ev.seq
            ))?;
        }
        seen += 1;
    }
    match a.count {
        Some(c) if seen < c => Err(Fail::Error(format!(
            "watch timed out after {} with {seen} of {c} events",
            rawnic_client::format_duration(a.timeout.unwrap_or_default())
        ))),
        _ => Ok(()),
    }
}
