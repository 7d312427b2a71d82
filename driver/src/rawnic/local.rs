//! Frames sent from this host, handed to the binding's handles.
//!
//! NDIS loops a protocol's sends back to the other protocols bound to the
//! adapter whose packet filters accept them, never to the protocol that
//! sent them (unless it asks, with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`).
//! rawnic's handles share one binding, so NDIS cannot do it for them:
//! rawnic gives each handle's sends to the handles whose local-sends mode
//! and filters accept them, as a capture tool expects, marked
//! `frame_flags::OUTBOUND`. rawnic does not ask NDIS for the loopback, so
//! no frame is delivered twice.

use super::Rawnic;
use super::client::{AtomicCounters, Completions, Mode};
use crate::kernel::protocol::Binding;
use crate::kernel::time;
use proto::{FrameHeader, frame_flags};
use rawnic_logic::filter::{classify, ethertypes};

/// Hands `frames`, just sent by handle `sender` on `b` (each with the TCI
/// NDIS was asked to tag it with), to every open handle that takes them.
pub(super) fn deliver<'f, I>(b: &Binding<Rawnic>, sender: u32, frames: I)
where
    I: Iterator<Item = (&'f [u8], Option<u16>)> + Clone,
{
    let table = b.clients.lock();
    // Most bindings have no handle that receives: nothing to do.
    if table.receivers == 0 {
        return;
    }
    let ts = time::unix_ns();
    let mut done = Completions::new();
    for c in table.iter() {
        let mut st = c.state.lock_dpr(table.at_dispatch());
        if st.filter.receives_nothing()
            || !st.local_sends.wants(c.id == sender)
            || !matches!(st.mode, Mode::Open { .. })
        {
            continue;
        }
        let (mut q_frames, mut q_bytes, mut drops, mut cut) = (0u64, 0u64, 0u64, 0u64);
        for (data, tci) in frames.clone() {
            let (outer, inner) = ethertypes(&data[..data.len().min(18)]);
            if !st.filter.accepts(classify(data, &b.mac), outer, inner) {
                continue;
            }
            let len = data.len() as u32;
            let caplen = if st.snaplen != 0 { len.min(st.snaplen) } else { len };
            let mut flags = frame_flags::OUTBOUND;
            if caplen < len {
                flags |= frame_flags::TRUNCATED;
            }
            if tci.is_some() {
                flags |= frame_flags::VLAN;
            }
            let hdr = FrameHeader { caplen, origlen: len, timestamp_ns: ts, flags, tci: tci.unwrap_or(0) };
            let pushed = st.ring.push_with(&hdr, |d| {
                let n = d.len();
                d.copy_from_slice(&data[..n]);
                n
            });
            if pushed.is_ok() {
                q_frames += 1;
                q_bytes += len as u64;
                if caplen < len {
                    cut += 1;
                }
            } else {
                drops += 1;
            }
        }
        st.serve_reads(&mut done);
        drop(st);
        let k = &c.counters;
        AtomicCounters::add(&k.rx_frames, q_frames);
        AtomicCounters::add(&k.rx_bytes, q_bytes);
        AtomicCounters::add(&k.rx_queue_drops, drops);
        AtomicCounters::add(&k.rx_truncated, cut);
        AtomicCounters::add(&b.counters.rx_queue_drops, drops);
        AtomicCounters::add(&b.counters.rx_truncated, cut);
    }
    drop(table);
    done.complete();
}
