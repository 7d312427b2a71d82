//! `arping`: ARP requests for a target address, the replies timed.

use crate::cli::ArpingArgs;
use crate::common::{Ctx, Fail, Res, plural};
use crate::json;
use rawnic_client::ether::{Arp, ETHERTYPE_ARP};
use rawnic_client::{MacAddr, OpenOptions, SendFrame, filter};
use std::time::{Duration, Instant};

/// The reply to a request from `source` for `target`, if `frame` is one.
pub fn matching_reply(frame: &[u8], target: std::net::Ipv4Addr, source: std::net::Ipv4Addr) -> Option<Arp> {
    Arp::from_frame(frame).filter(|a| a.op == Arp::REPLY && a.sender_ip == target && a.target_ip == source)
}

pub fn arping(ctx: &Ctx, a: &ArpingArgs) -> Res {
    let dev = ctx.device()?;
    let b = ctx.adapter(&dev)?;
    let info = dev.open_binding(
        &OpenOptions::new(&b.name).ethertype(ETHERTYPE_ARP).packet_filter(filter::DIRECTED | filter::BROADCAST),
    )?;
    let mac = a.src_mac.unwrap_or(info.mac);
    let request = Arp::request(mac, a.source, a.target).to_frame(mac);
    let tci = a.vlan.map(|t| t.0);
    if !ctx.global.json {
        ctx.out(format!("ARPING {} from {} {mac} on {}", a.target, a.source, b.name))?;
    }
    let mut rtts: Vec<Duration> = Vec::new();
    for seq in 0..a.count {
        let sent_at = Instant::now();
        dev.send_batch(&[SendFrame { data: &request, tci }])?;
        // A timeout too long for an Instant is no limit.
        let deadline = sent_at.checked_add(a.timeout);
        let mut reply: Option<(MacAddr, Duration)> = None;
        while reply.is_none() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                break;
            }
            let records = dev.read_records(rawnic_client::DEFAULT_READ_SIZE, left)?;
            let now = Instant::now();
            reply = records
                .iter()
                .find_map(|f| matching_reply(&f.wire_bytes().0, a.target, a.source))
                .map(|r| (r.sender_mac, now - sent_at));
        }
        match reply {
            Some((from, rtt)) => {
                rtts.push(rtt);
                let ms = rtt.as_secs_f64() * 1e3;
                if ctx.global.json {
                    ctx.json(&json::Reply { seq, target: a.target, mac: from, rtt_ms: json::rounded(ms, 3) })?;
                } else {
                    ctx.out(format!("reply from {} [{from}]  seq={seq}  time={ms:.3} ms", a.target))?;
                }
            }
            None => {
                if ctx.global.json {
                    ctx.json(&json::NoReply { seq, target: a.target, timeout: true })?;
                } else {
                    ctx.out(format!(
                        "no reply from {}  seq={seq}  (waited {})",
                        a.target,
                        rawnic_client::format_duration(a.timeout)
                    ))?;
                }
            }
        }
        if seq + 1 < a.count {
            let next = sent_at.checked_add(a.interval);
            std::thread::sleep(next.map_or(a.interval, |n| n.saturating_duration_since(Instant::now())));
        }
    }
    let got = rtts.len() as u64;
    if !ctx.global.json {
        let mut line =
            format!("{} sent, {} received", plural(a.count, "request", "requests"), plural(got, "reply", "replies"));
        if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
            let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
            let ms = |d: &Duration| d.as_secs_f64() * 1e3;
            line.push_str(&format!(", round trip min/avg/max {:.3}/{:.3}/{:.3} ms", ms(min), ms(&avg), ms(max)));
        }
        ctx.out(line)?;
    }
    if got == 0 {
        return Err(Fail::Error(format!("no reply from {} to {}", a.target, plural(a.count, "request", "requests"))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn only_the_matching_reply_counts() {
        let us = MacAddr([2, 0, 0, 0, 0, 1]);
        let them = MacAddr([2, 0, 0, 0, 0, 2]);
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let reply = Arp { op: Arp::REPLY, sender_mac: them, sender_ip: dst, target_mac: us, target_ip: src };
        assert_eq!(matching_reply(&reply.to_frame(them), dst, src), Some(reply));
        // A request, a reply from someone else, a reply to someone else.
        assert_eq!(matching_reply(&Arp::request(them, dst, src).to_frame(them), dst, src), None);
        let other = Arp { sender_ip: Ipv4Addr::new(10, 0, 0, 9), ..reply };
        assert_eq!(matching_reply(&other.to_frame(them), dst, src), None);
        let elsewhere = Arp { target_ip: Ipv4Addr::new(10, 0, 0, 7), ..reply };
        assert_eq!(matching_reply(&elsewhere.to_frame(them), dst, src), None);
    }
}
