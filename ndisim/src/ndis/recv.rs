//! The receive path: indications and `NdisReturnNetBufferLists`.

use super::in_handler::{InHandler, Told};
use super::rx_flags::info_flags;
use super::rx_pool::{CALL_IN_HANDLER, check_free, check_mdls, fill_slot, restore_mdls, scribble};
use super::*;
use crate::adapter::{self};
use crate::kernel::{DISPATCH_LEVEL, Kernel, PASSIVE_LEVEL, call_driver, check_irql_max, irql};
use crate::nbl::{self, own};
use crate::verifier::{Checksum, Rule, lock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

impl Adapter {
    pub(crate) fn new(idx: usize, name: String, spec: adapter::AdapterSpec, tap: Option<adapter::Tap>) -> Adapter {
        let mac = spec.mac.unwrap_or_else(|| adapter::default_mac(idx));
        let guid = format!("{{5E1A0D15-{:04X}-4E44-9A11-{:012X}}}", idx, idx as u64 + 0x5245_4E44);
        Adapter {
            idx,
            ndis_name: wstr(&format!("\\DEVICE\\{guid}")),
            desc: format!("ndisim {} adapter {name}", spec.kind),
            model: Mutex::new(Model {
                mtu: spec.mtu,
                mac,
                permanent_mac: mac,
                link_up: spec.link_up,
                speed: spec.speed,
                packet_filter: 0,
                lookahead: spec.mtu,
                multicast: Vec::new(),
                powered: true,
                supported_filters: spec.supported_filters,
            }),
            max_frame: std::sync::atomic::AtomicUsize::new(spec.mtu as usize + 14),
            binding: Mutex::new(None),
            opening: Mutex::new(None),
            status_jobs: AtomicU64::new(0),
            link_gate: AtomicBool::new(false),
            statuses_in_bind: AtomicU64::new(0),
            policy: Mutex::new(spec.completion),
            held: Mutex::new(Vec::new()),
            oid_hold: AtomicBool::new(spec.hold_oids),
            oid_answer_on_arrival: AtomicBool::new(false),
            oid_stall: AtomicBool::new(false),
            oid_stalled: AtomicU64::new(0),
            oid_stall_return: AtomicBool::new(false),
            oid_stalled_return: AtomicU64::new(0),
            send_stall: AtomicBool::new(false),
            send_stalled: AtomicU64::new(0),
            d0_hold: AtomicBool::new(false),
            d0_held: AtomicU64::new(0),
            give_back: AtomicBool::new(false),
            pnp_gate: AtomicBool::new(false),
            captured: Mutex::new(Vec::new()),
            failed_sends: Mutex::new(Vec::new()),
            capture: AtomicBool::new(spec.capture),
            vlan: AtomicBool::new(spec.vlan),
            uro: AtomicBool::new(false),
            rx: adapter::RxQueue::new(),
            recv_free: Mutex::new(Vec::new()),
            recv_all: Mutex::new(Vec::new()),
            recv_out: AtomicU64::new(0),
            low_begun: AtomicU64::new(0),
            low_done: AtomicU64::new(0),
            in_handler: AtomicU64::new(0),
            low_reported: AtomicBool::new(false),
            peer: OnceLock::new(),
            tap,
            counters: adapter::Counters::default(),
            resume_running: AtomicBool::new(false),
            failing_oids: Mutex::new(spec.failing_oids.clone()),
            busy_oids: Mutex::new(Vec::new()),
            oids_failed: std::sync::atomic::AtomicU64::new(0),
            multicast_sets_failed: std::sync::atomic::AtomicU64::new(0),
            filter_sets_failed: std::sync::atomic::AtomicU64::new(0),
            loopbacks_kept: std::sync::atomic::AtomicU64::new(0),
            send_draws: std::sync::atomic::AtomicU64::new(0),
            reindicate_draws: std::sync::atomic::AtomicU64::new(0),
            cancel_draws: std::sync::atomic::AtomicU64::new(0),
            scatter_draws: std::sync::atomic::AtomicU64::new(0),
            info_draws: std::sync::atomic::AtomicU64::new(0),
            oid_log: Mutex::new(Vec::new()),
            set_answers: Mutex::new(Vec::new()),
            pnp_log: Mutex::new(Vec::new()),
            rebind: std::sync::atomic::AtomicU8::new(super::reenum::REBIND_NONE),
            opens: AtomicU64::new(0),
            name,
            spec,
        }
    }

    /// Does the adapter do 802.1Q in hardware now.
    pub(crate) fn vlan(&self) -> bool {
        self.vlan.load(Ordering::Acquire)
    }

    /// One draw of `per_mille` from the adapter's counter `draws` (a count,
    /// so a deterministic run draws the same), mixed with `salt`: the
    /// draw's hash when it hit, for picking among outcomes.
    pub(crate) fn draw(&self, draws: &std::sync::atomic::AtomicU64, per_mille: u32, salt: u64) -> Option<u64> {
        let h = self.draw_rng(draws, salt).next_u64();
        (h % 1000 < u64::from(per_mille)).then_some(h)
    }

    /// The generator of the next draw from the adapter's counter `draws`,
    /// mixed with `salt`, for choices of more than one outcome.
    pub(crate) fn draw_rng(&self, draws: &std::sync::atomic::AtomicU64, salt: u64) -> crate::rng::Rng {
        let n = draws.fetch_add(1, Ordering::Relaxed);
        crate::rng::Rng::new(n ^ (self.idx as u64) << 48 ^ salt)
    }

    /// The `MacOptions` it advertises now.
    pub(crate) fn mac_options(&self) -> u32 {
        adapter::mac_options(self.vlan())
    }
}

/// Whether a binding with packet filter `filter`, on an adapter with
/// address `mac` and multicast list `multicast`, receives `frame`.
pub(crate) fn accepts(filter: u32, mac: &[u8; 6], multicast: &[[u8; 6]], frame: &[u8]) -> bool {
    if filter & NDIS_PACKET_TYPE_PROMISCUOUS != 0 {
        return true;
    }
    let Some(&dst) = frame.first_chunk::<6>() else { return false };
    if dst == [0xFF; 6] {
        filter & NDIS_PACKET_TYPE_BROADCAST != 0
    } else if dst[0] & 1 != 0 {
        filter & NDIS_PACKET_TYPE_ALL_MULTICAST != 0
            || (filter & NDIS_PACKET_TYPE_MULTICAST != 0 && multicast.contains(&dst))
    } else {
        filter & NDIS_PACKET_TYPE_DIRECTED != 0 && dst == *mac
    }
}

/// Indicates `frames` to the adapter's binding (those its packet filter
/// accepts). Returns frames indicated.
pub(crate) fn indicate(k: &Kernel, a: &Adapter, frames: &[&[u8]], o: &InjectOpts) -> Result<usize, SimError> {
    let Some(b) = lock(&a.binding).clone() else {
        a.counters.rx_dropped.fetch_add(frames.len() as u64, Ordering::Relaxed);
        return Err(SimError::State(format!("adapter {} is not bound", a.name)));
    };
    // NDIS indicates in Running, Pausing and Paused ("For a binding in the
    // Paused state, the protocol driver ... should return receive
    // indications immediately", Pausing a Binding), and in Restarting: NDIS
    // restarts a stack from the miniport up, so the miniport may indicate
    // before the protocol's restart completes (no page says it will not;
    // the stricter choice); and while it unbinds ("The driver can get
    // receive and status indications from the underlying miniport adapter
    // until the close operation is complete", ProtocolUnbindAdapterEx),
    // until it calls NdisCloseAdapterEx (`enter_call` refuses from there).
    match b.state() {
        BindingState::Running
        | BindingState::Pausing
        | BindingState::Paused
        | BindingState::Restarting
        | BindingState::Closing => {}
        s => {
            a.counters.rx_dropped.fetch_add(frames.len() as u64, Ordering::Relaxed);
            return Err(SimError::State(format!("binding {} is {s:?}: NDIS indicates no receives", a.name)));
        }
    }
    if frames.iter().any(|f| f.is_empty()) {
        return Err(SimError::Other("an empty frame".into()));
    }
    // A miniport indicates a NET_BUFFER per frame it received, and NDIS
    // passes up no NBL without one ("A linked list of NET_BUFFER_LIST
    // structures ... Each NET_BUFFER_LIST structure is usually associated
    // with one NET_BUFFER structure"): a test asking for one is refused,
    // not handed to the driver.
    if o.nbl_sizes.contains(&0) {
        return Err(SimError::Other("an NBL with no NET_BUFFER: no miniport indicates one".into()));
    }
    check_coalesce(a, o)?;
    // (Again once the filter has taken its frames: NBLs are counted over
    // those. Without coalescing there is nothing to find.)
    let coalescing = o.coalescing();
    if coalescing {
        check_coalesced_groups(o, &o.nbl_groups(frames.len()))?;
    }
    // NDIS indicates to a binding only the frames its packet filter,
    // multicast list and MAC address accept (nothing while the filter is 0).
    let total = frames.len();
    let accepted: Vec<&[u8]>;
    let frames = {
        let m = lock(&a.model);
        let takes = |f: &[u8]| accepts(m.packet_filter, &m.mac, &m.multicast, f);
        if m.packet_filter & NDIS_PACKET_TYPE_PROMISCUOUS != 0 {
            frames
        } else {
            // (No copy of the list when the filter takes every frame.)
            match frames.iter().position(|f| !takes(f)) {
                None => frames,
                Some(i) => {
                    accepted = frames[..i]
                        .iter()
                        .copied()
                        .chain(frames[i + 1..].iter().copied().filter(|f| takes(f)))
                        .collect();
                    &accepted[..]
                }
            }
        }
    };
    if frames.len() < total {
        a.counters.rx_filtered.fetch_add((total - frames.len()) as u64, Ordering::Relaxed);
        if frames.is_empty() {
            return Ok(0);
        }
    }
    // The indication holds a reference on the binding: none starts once the
    // driver began closing it, and the close waits for this one.
    let Some(_call) = b.enter_call(false) else {
        a.counters.rx_dropped.fetch_add(frames.len() as u64, Ordering::Relaxed);
        return Err(SimError::State(format!("binding {} is closing: NDIS indicates no receives", a.name)));
    };
    let per_ind = o.nbls_per_indication.max(1);
    let u = o.uniform();
    // Each NBL's frame count, in order; indications of `per_ind` NBLs.
    let groups = o.nbl_groups(frames.len());
    if coalescing {
        check_coalesced_groups(o, &groups)?;
    }
    let handler = b.proto.chars.ReceiveNetBufferListsHandler.expect("validated");
    let ctx = b.ctx;
    let bp = Arc::as_ptr(&b) as usize;
    let level = if o.dispatch { DISPATCH_LEVEL } else { PASSIVE_LEVEL };
    let mut done = 0;
    let (mut at_frame, mut at_nbl) = (0, 0);
    for sizes in groups.chunks(per_ind) {
        // This indication's frames, the first of them the injection's
        // frame `first`, in NBLs from the injection's NBL `first_nbl`.
        let (first, first_nbl) = (at_frame, at_nbl);
        let whole: usize = sizes.iter().sum();
        at_frame += whole;
        at_nbl += sizes.len();
        // The miniport's receive buffers: frames that find none are
        // dropped; an indication that leaves it low says so.
        let (got, low) = a.reserve_rx(sizes.len());
        let sizes = &sizes[..got.min(sizes.len())];
        let chunk = &frames[first..first + sizes.iter().sum::<usize>()];
        if chunk.len() < whole {
            let dropped = (whole - chunk.len()) as u64;
            a.counters.rx_dropped.fetch_add(dropped, Ordering::Relaxed);
            a.counters.rx_no_buffer.fetch_add(dropped, Ordering::Relaxed);
        }
        if chunk.is_empty() {
            continue;
        }
        let resources = o.resources || low;
        let low_at = if low {
            k.ndis.stats.indications_low.fetch_add(1, Ordering::Relaxed);
            a.low_begins(k, &b)
        } else {
            0
        };
        let mut flags = if o.dispatch && !o.unflagged { NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL } else { 0 };
        if resources {
            flags |= NDIS_RECEIVE_FLAGS_RESOURCES;
        }
        flags |= info_flags(a, chunk, o, first_nbl, sizes);
        with_scratch(|slots| {
            a.take_slots(k, sizes.len(), slots);
            let mode = k.verifier.checksum();
            let mut f0 = 0;
            for (j, (&size, &s)) in sizes.iter().zip(slots.iter()).enumerate() {
                let s = s as *mut RecvSlot;
                let nf = &chunk[f0..f0 + size];
                // SAFETY: a slot we just took.
                unsafe {
                    fill_slot(a, s, nf, o, first + f0, first_nbl + j, u);
                    let n = (*s).nbl;
                    if !u.plain && o.loopback_of(first_nbl + j) {
                        (*n).NblFlags |= NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET;
                        // NDIS loops back another protocol's send NBL with
                        // that send's info: checksum and LSO requests, a
                        // cancel ID, and in the slots a receive reads as
                        // RSC and URO counts, send-only values (USO, bytes
                        // transferred). A receiver that reads them as
                        // coalescing counts gets these (unless the test set
                        // its own).
                        for (slot, v) in [
                            (TcpIpChecksumNetBufferListInfo, 0x11usize),
                            (2, 0x05B4_0001),
                            (NetBufferListCancelId, 0x5E4D),
                            (TcpReceiveBytesTransferred, 0x0100_05B4),
                            (TcpRecvSegCoalesceInfo, 0x05B4_0003),
                        ] {
                            if (*n).NetBufferListInfo[slot].is_null() {
                                (*n).NetBufferListInfo[slot] = v as PVOID;
                            }
                        }
                    }
                    let hd = nbl::hdr(n);
                    (*hd).binding.store(bp, Ordering::Relaxed);
                    (*hd).owner.store(
                        if resources { own::INDICATED_RESOURCES } else { own::INDICATED_IN_CALL },
                        Ordering::Release,
                    );
                    // Linked to the next slot's NBL (a slot's NBL is fixed
                    // for its life), the last one's `Next` null.
                    let next = slots.get(j + 1).map_or(std::ptr::null_mut(), |&q| (*(q as *mut RecvSlot)).nbl);
                    (*n).anon.anon.Next = next;
                    // Filled and linked; the driver has not seen it yet.
                    // (The sum covers neither `Next` nor the other slots.)
                    (*s).indicated_sum = nbl::received_checksum(n, mode);
                    (*s).indicated_mode = mode;
                }
                f0 += size;
            }
            let count = slots.len() as u32;
            if !resources {
                b.recvs.fetch_add(count as u64, Ordering::AcqRel);
                let held = k.ndis.stats.recv_held.fetch_add(count as u64, Ordering::AcqRel) + count as u64;
                k.ndis.stats.recv_held_peak.fetch_max(held, Ordering::AcqRel);
            }
            a.counters.rx_frames.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            a.counters.rx_bytes.fetch_add(chunk.iter().map(|f| f.len() as u64).sum(), Ordering::Relaxed);
            k.ndis.stats.indications.fetch_add(1, Ordering::Relaxed);
            if b.state() == BindingState::Restarting {
                k.ndis.stats.indications_restarting.fetch_add(1, Ordering::Relaxed);
            }
            if b.closed.load(Ordering::Acquire) {
                k.ndis.stats.indications_closing.fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: our first slot.
            let head = unsafe { (*(slots[0] as *mut RecvSlot)).nbl };
            let restarts_before = b.restarts.load(Ordering::Acquire);
            let phase_before = b.pause_phase.load(Ordering::Acquire);
            // NumberOfNetBufferLists: "The number of NET_BUFFER_LIST
            // structures that are in the linked list".
            debug_assert_eq!(
                // SAFETY: our chain, linked above; the driver has not seen it.
                std::iter::successors(Some(head), |&n| Some(unsafe { (*n).anon.anon.Next }).filter(|p| !p.is_null()))
                    .count(),
                count as usize
            );
            let _in_handler = InHandler::enter(&a.in_handler);
            // The handler knows its IRQL when the flag says DISPATCH_LEVEL
            // (it cannot go below the IRQL it was called at): its returns
            // say so too (`NdisReturnNetBufferLists`).
            let told = Told::set(flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0);
            call_driver("ProtocolReceiveNetBufferLists", level, || {
                // SAFETY: the driver's handler with its binding context and
                // NBLs that stay valid while it may hold them.
                unsafe { handler(ctx as NDIS_HANDLE, head, 0, count, flags) }
            });
            drop(told);
            if resources {
                check_resources_chain(&b, head, slots, sizes);
                for &s in slots.iter() {
                    // SAFETY: our slot, back from the handler.
                    unsafe { check_unmodified(&b, s as *mut RecvSlot, "ProtocolReceiveNetBufferLists") };
                }
                for &s in slots.iter() {
                    let s = s as *mut RecvSlot;
                    // SAFETY: our slot; NDIS takes it back on return.
                    let o = unsafe { nbl::owner((*s).nbl) };
                    o.store(own::NDIS, Ordering::Release);
                }
                a.put_slots(k, slots);
                if low_at != 0 {
                    a.low_done.fetch_max(low_at, Ordering::AcqRel);
                }
            } else {
                // Where the pause stood when the handler returned, read
                // before looking at what the driver kept: an NBL it gives
                // back after this is not held against it.
                let phase_after = b.pause_phase.load(Ordering::Acquire);
                // A restart that completed meanwhile: the driver may have
                // seen the binding Running, however it stood before.
                let restarted = b.restarts.load(Ordering::Acquire) != restarts_before;
                // What the driver kept past its handler; the slots of what it
                // returned during the call go back now.
                let mut kept = 0u64;
                let low_begun = a.low_begun.load(Ordering::Acquire);
                slots.retain(|&s| {
                    // SAFETY: our slot; its NBL was indicated in this call.
                    let o = unsafe {
                        // When it was kept, if it is (set first: rule
                        // retained-when-low reads it once the NBL reads kept).
                        (*(s as *mut RecvSlot)).kept_at.store(low_begun, Ordering::Release);
                        nbl::owner((*(s as *mut RecvSlot)).nbl)
                    };
                    if o.compare_exchange(own::INDICATED_IN_CALL, own::INDICATED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        b.retained.fetch_add(1, Ordering::AcqRel);
                        kept += 1;
                        // SAFETY: as above; the driver only reads its NBLs.
                        if unsafe { (*(*(s as *mut RecvSlot)).nbl).NblFlags } & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET != 0 {
                            a.loopbacks_kept.fetch_add(1, Ordering::Relaxed);
                        }
                        false
                    } else if o
                        .compare_exchange(own::RETURNED_IN_CALL, own::NDIS, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        // Given back inside the handler: unchanged since.
                        if mode != Checksum::Off {
                            // SAFETY: our slot again, no one else's.
                            unsafe { check_free(s as *mut RecvSlot, mode, CALL_IN_HANDLER) };
                        }
                        true
                    } else {
                        false
                    }
                });
                if !slots.is_empty() {
                    a.put_slots(k, slots);
                }
                // Kept while the binding is still pausing or paused, and either
                // indicated after the driver knew of the pause (its handler
                // had returned), or kept past the pause's completion. (If
                // NDIS restarted the binding meanwhile, the driver may have
                // seen it Running.)
                if kept > 0
                    && phase_after >= PAUSE_PENDING
                    && ((phase_before >= PAUSE_PENDING && !restarted) || phase_after == PAUSE_DONE)
                {
                    let when = if phase_after == PAUSE_DONE && phase_before < PAUSE_PENDING {
                        "kept past the completion of the binding's pause"
                    } else {
                        "indicated while the binding was pausing (after its pause handler returned) or paused; such receives go back at once"
                    };
                    Violation::new(
                        Rule::RetainedWhilePaused,
                        "ProtocolReceiveNetBufferLists",
                        format!("{kept} received NBL(s) kept after the handler returned: {when} (pause phase {phase_before} when the indication began, {phase_after} when it returned)"),
                    )
                    .with_binding(b.name.clone())
                    .report();
                }
            }
        });
        done += chunk.len();
    }
    Ok(done)
}

/// A received NBL coming back to NDIS (returned, or its
/// `NDIS_RECEIVE_FLAGS_RESOURCES` indication returned): its data and what
/// describes it must be as indicated. A protocol has read-only access to
/// received data (ProtocolReceivePacket, whose contract NDIS 6's
/// ProtocolReceiveNetBufferLists keeps; NDIS indicates the same NBLs to
/// every protocol bound to the adapter).
///
/// # Safety
/// `s` is a slot of an NBL NDIS indicated to `b` and takes back now.
#[inline]
unsafe fn check_unmodified(b: &Binding, s: *mut RecvSlot, call: &str) {
    // SAFETY: per the caller. (No sum taken: nothing to compare, and no
    // call.)
    if unsafe { (*s).indicated_sum } != 0 {
        // SAFETY: per the caller.
        unsafe { compare_indicated(b, s, call) };
    } else {
        // Without a sum, the reused MDLs at least.
        // SAFETY: per the caller.
        unsafe { check_mdls(s, call, b) };
    }
}

/// `check_unmodified` of a slot whose indication took a sum.
///
/// # Safety
/// As `check_unmodified`.
#[inline(never)]
unsafe fn compare_indicated(b: &Binding, s: *mut RecvSlot, call: &str) {
    // SAFETY: per the caller.
    let (n, want, mode) = unsafe { ((*s).nbl, (*s).indicated_sum, (*s).indicated_mode) };
    if want == 0 {
        return;
    }
    // SAFETY: the NBL and the NET_BUFFERs and MDLs NDIS built for it (a
    // driver that relinked them is caught by the sum, and the walk is
    // bounded).
    if unsafe { nbl::received_checksum(n, mode) } != want {
        Violation::new(
            Rule::ReceiveModified,
            call,
            "a received NBL came back with its data, NET_BUFFERs or MDLs changed: the driver has read-only access to what NDIS indicates",
        )
        .with_binding(b.name.clone())
        .with_object(n as usize)
        .report();
        // The MDLs ndisim reuses for the next frames, as built.
        // SAFETY: per the caller.
        unsafe { restore_mdls(s) };
    }
}

/// After an `NDIS_RECEIVE_FLAGS_RESOURCES` indication returns, the chain
/// NDIS takes back must be the one it gave: the same NBLs in the same
/// order, the last one's `Next` null, and each NBL's own NET_BUFFERs
/// (`sizes[i]` of them in NBL `i`) linked as they were.
fn check_resources_chain(b: &Arc<Binding>, head: *mut NET_BUFFER_LIST, slots: &[usize], sizes: &[usize]) {
    let mut cur = head;
    for (i, (&s, &n)) in slots.iter().zip(sizes).enumerate() {
        let s = s as *mut RecvSlot;
        // SAFETY: our slots, alive until we put them back.
        let (want, nbs) = unsafe { ((*s).nbl, &(*s).nbs) };
        if cur != want {
            let what =
                if cur.is_null() { "ends early".to_string() } else { format!("has {cur:p} where NDIS put {want:p}") };
            Violation::new(
                Rule::ResourcesChain,
                "ProtocolReceiveNetBufferLists",
                format!("the chain returned from an NDIS_RECEIVE_FLAGS_RESOURCES indication of {} NBL(s) {what} at position {i}", slots.len()),
            )
            .with_binding(b.name.clone())
            .with_object(head as usize)
            .report();
            return;
        }
        // SAFETY: our NBL and NET_BUFFERs; the handler has returned.
        unsafe {
            let mut nb = (*want).anon.anon.FirstNetBuffer;
            for (j, r) in nbs[..n].iter().enumerate() {
                if nb != r.nb {
                    Violation::new(
                        Rule::ResourcesChain,
                        "ProtocolReceiveNetBufferLists",
                        format!("NBL {i} of an NDIS_RECEIVE_FLAGS_RESOURCES indication came back with its NET_BUFFER list changed at position {j}"),
                    )
                    .with_binding(b.name.clone())
                    .with_object(want as usize)
                    .report();
                    return;
                }
                nb = (*nb).anon.anon.Next;
            }
            if !nb.is_null() {
                Violation::new(
                    Rule::ResourcesChain,
                    "ProtocolReceiveNetBufferLists",
                    format!("NBL {i} of an NDIS_RECEIVE_FLAGS_RESOURCES indication came back with NET_BUFFERs added"),
                )
                .with_binding(b.name.clone())
                .with_object(want as usize)
                .report();
                return;
            }
            cur = (*want).anon.anon.Next;
        }
    }
    if !cur.is_null() {
        Violation::new(
            Rule::ResourcesChain,
            "ProtocolReceiveNetBufferLists",
            format!("the chain returned from an NDIS_RECEIVE_FLAGS_RESOURCES indication of {} NBL(s) goes on past its last NBL", slots.len()),
        )
        .with_binding(b.name.clone())
        .with_object(head as usize)
        .report();
    }
}

pub(crate) unsafe extern "win64" fn NdisReturnNetBufferLists(h: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    const CALL: &str = "NdisReturnNetBufferLists";
    export_yield_after(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if flags & !NDIS_RETURN_FLAGS_DISPATCH_LEVEL != 0 {
            // The page: "This function supports the
            // NDIS_RETURN_FLAGS_DISPATCH_LEVEL flag"; the others
            // (`_SINGLE_QUEUE`, `_SWITCH_SINGLE_SOURCE`) make promises about
            // the chain that a protocol cannot know to be true.
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("ReturnFlags {flags:#x}: only NDIS_RETURN_FLAGS_DISPATCH_LEVEL is supported"),
            )
            .report();
        }
        if flags & NDIS_RETURN_FLAGS_DISPATCH_LEVEL != 0 && irql() != DISPATCH_LEVEL {
            Violation::new(
                Rule::Irql,
                CALL,
                "NDIS_RETURN_FLAGS_DISPATCH_LEVEL is set but the caller is not at DISPATCH_LEVEL",
            )
            .report();
        }
        // Dispatch IRQL Tracking: "If the known current IRQL is
        // DISPATCH_LEVEL, the caller should set this flag"; only a caller
        // that does not know may clear it. Inside a receive handler NDIS
        // called with NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL the IRQL is known.
        if flags & NDIS_RETURN_FLAGS_DISPATCH_LEVEL == 0
            && super::in_handler::told_dispatch()
            && irql() == DISPATCH_LEVEL
        {
            Violation::new(
                Rule::Irql,
                CALL,
                "NDIS_RETURN_FLAGS_DISPATCH_LEVEL is clear inside a receive handler that NDIS called with NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: the IRQL is known to be DISPATCH_LEVEL",
            )
            .report();
        }
        let Some(in_call) = k.ndis.binding(h, CALL, true) else { return };
        let b = in_call.get();
        // `_In_`: NDIS walks the chain from its head.
        if nbls.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "NetBufferLists is NULL")
                .with_binding(b.name.clone())
                .report();
            return;
        }
        // Slots go back to their adapter, and counts to their binding, a
        // batch at a time (one lock and one atomic per batch, not per NBL).
        struct Back<'k> {
            k: &'k Kernel,
            adapter: usize,
            binding: usize,
            slots: [usize; 32],
            n: usize,
        }
        impl Back<'_> {
            fn flush(&mut self) {
                if self.n == 0 {
                    return;
                }
                // The buffers first, then the counts: whoever sees the
                // binding hold none (`Sim::outstanding`) finds its buffers
                // back with the miniport too (`Sim::receive_buffers`).
                self.k.ndis.adapter(self.adapter).put_slots(self.k, &self.slots[..self.n]);
                // SAFETY: bindings live for the simulation.
                unsafe { (*(self.binding as *const Binding)).recvs.fetch_sub(self.n as u64, Ordering::AcqRel) };
                self.k.ndis.stats.recv_held.fetch_sub(self.n as u64, Ordering::AcqRel);
                self.n = 0;
            }
            fn push(&mut self, adapter: usize, binding: usize, slot: usize) {
                if self.n == self.slots.len() || (self.n != 0 && (adapter, binding) != (self.adapter, self.binding)) {
                    self.flush();
                }
                self.adapter = adapter;
                self.binding = binding;
                self.slots[self.n] = slot;
                self.n += 1;
            }
        }
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                self.flush();
            }
        }
        let mut back = Back { k, adapter: 0, binding: 0, slots: [0; 32], n: 0 };
        // A frame the miniport indicates once the returns are done
        // (`AdapterSpec::reindicate`), with its adapter.
        let mut again: Option<(usize, Vec<u8>)> = None;
        let mut cur = nbls;
        while !cur.is_null() {
            if !nbl::valid(cur) {
                Violation::new(
                    Rule::InvalidParameter,
                    CALL,
                    "not an NBL NDIS indicated; the rest of the chain is ignored",
                )
                .with_binding(b.name.clone())
                .with_object(cur as usize)
                .report();
                return;
            }
            // SAFETY: valid.
            let (next, hd) = unsafe { ((*cur).anon.anon.Next, nbl::hdr(cur)) };
            // SAFETY: valid.
            let o = unsafe { nbl::owner(cur) };
            // SAFETY: a valid NBL's header: its slot and pool are fixed, its
            // binding set before the indication.
            let (bp, slot, aidx) = unsafe { ((*hd).binding.load(Ordering::Relaxed), (*hd).slot, (*hd).pool) };
            // Checked before the ownership moves: once this NBL reads
            // RETURNED_IN_CALL, its indication (on another CPU, its handler
            // returned) may put the slot back and a NIC refill it. While
            // the driver holds it, nobody else writes it.
            let state = o.load(Ordering::Acquire);
            if matches!(state, own::INDICATED_IN_CALL | own::INDICATED) {
                // SAFETY: the slot of an NBL the driver holds and gives back now.
                unsafe { check_unmodified(b, slot as *mut RecvSlot, CALL) };
            }
            if state == own::INDICATED_IN_CALL {
                // Given back inside its own indication: the miniport may
                // refill the buffer the moment this call returns, so it is
                // overwritten now, not when the handler returns (a driver
                // that reads the frame, or the NBL's `Next`, after giving it
                // back reads garbage, as on Windows).
                // SAFETY: as above; its indication does nothing with the
                // slot until the NBL reads returned.
                unsafe { scribble(k, slot as *mut RecvSlot) };
            }
            let was = match o.compare_exchange(
                own::INDICATED_IN_CALL,
                own::RETURNED_IN_CALL,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(x) => Ok(x),
                Err(_) => o.compare_exchange(own::INDICATED, own::NDIS, Ordering::AcqRel, Ordering::Acquire),
            };
            match was {
                Ok(prev) => {
                    if bp != b as *const Binding as usize {
                        Violation::new(
                            Rule::InvalidParameter,
                            CALL,
                            "returned on a binding other than the one it was indicated to",
                        )
                        .with_binding(b.name.clone())
                        .with_object(cur as usize)
                        .report();
                    }
                    if prev == own::INDICATED {
                        if again.is_none() {
                            // (Only after its indication returned: not as a
                            // recursion inside the driver's receive handler.)
                            // SAFETY: the slot of an NBL the driver gave back
                            // now, not yet put back.
                            again = unsafe { reindication(k, aidx, slot as *mut RecvSlot) }.map(|f| (aidx, f));
                        }
                        // SAFETY: a receive NBL: its binding lives for the
                        // simulation.
                        unsafe { (*(bp as *const Binding)).retained.fetch_sub(1, Ordering::AcqRel) };
                        back.push(aidx, bp, slot);
                    } else {
                        // Its indication is still running: the slot goes
                        // back when that handler returns; the counts now.
                        // SAFETY: as above.
                        unsafe { (*(bp as *const Binding)).recvs.fetch_sub(1, Ordering::AcqRel) };
                        k.ndis.stats.recv_held.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                Err(st) => {
                    let why = match st {
                        own::INDICATED_RESOURCES => {
                            "returned an NBL indicated with NDIS_RECEIVE_FLAGS_RESOURCES (NDIS takes those back when the handler returns)"
                        }
                        own::NDIS | own::RETURNED_IN_CALL => "returned an NBL that NDIS already owns (returned twice)",
                        _ => "returned an NBL that was not indicated to the driver (a send NBL?)",
                    };
                    // Not walked further: after an NBL that is not the
                    // driver's, its `Next` is not either (a chain that
                    // loops back on itself ends here, not never).
                    Violation::new(Rule::NblOwnership, CALL, format!("{why}; the rest of the chain is ignored"))
                        .with_binding(b.name.clone())
                        .with_object(cur as usize)
                        .report();
                    return;
                }
            }
            cur = next;
        }
        back.flush();
        if let Some((aidx, frame)) = again {
            REINDICATING.with(|r| r.set(true));
            // (At its caller's IRQL, which NDIS does not know: the flag
            // clear, as it would leave it.)
            let o = InjectOpts { dispatch: irql() == DISPATCH_LEVEL, unflagged: true, ..InjectOpts::default() };
            // Not bound, paused or filtered out: nothing indicated.
            let _ = indicate(k, k.ndis.adapter(aidx), &[&frame], &o);
            REINDICATING.with(|r| r.set(false));
        }
    })
}

thread_local! {
    /// An indication from inside `NdisReturnNetBufferLists` is running on
    /// this thread: returns inside it do not indicate again.
    static REINDICATING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// With the adapter's `reindicate` draw, a copy of the first frame of the
/// returned NBL in `s`, for the miniport to indicate once the returns are
/// done (as a frame that was waiting for this receive buffer).
///
/// # Safety
/// `s` is the slot of an NBL the driver gave back in this call.
unsafe fn reindication(k: &Kernel, aidx: usize, s: *mut RecvSlot) -> Option<Vec<u8>> {
    let a = k.ndis.adapter(aidx);
    if a.spec.reindicate == 0 || REINDICATING.with(|r| r.get()) {
        return None;
    }
    a.draw(&a.reindicate_draws, a.spec.reindicate, 0x5245_494E)?;
    let mut frame = Vec::new();
    // SAFETY: per the caller: its NET_BUFFER and MDLs are NDIS's again.
    unsafe {
        let nb = (*(*s).nbl).anon.anon.FirstNetBuffer;
        if nb.is_null() {
            return None;
        }
        nbl::for_each_piece(nb, |p| frame.extend_from_slice(p));
    }
    (!frame.is_empty()).then_some(frame)
}
