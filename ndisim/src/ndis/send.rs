//! The send path: `NdisSendNetBufferLists`, the adapter's completion
//! policies, and the wire.

use super::*;
use crate::adapter::{self, CompletionPolicy, Frame};
use crate::kernel::{self, DISPATCH_LEVEL, Kernel, call_driver, check_irql_max, irql};
use crate::nbl::{self, own};
use crate::verifier::{Checksum, Rule, lock};
use std::sync::atomic::Ordering;

pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<usize>) -> R) -> R {
    SCRATCH.with(|s| {
        let mut v = std::mem::take(&mut *s.borrow_mut());
        v.clear();
        let r = f(&mut v);
        *s.borrow_mut() = v;
        r
    })
}

/// A send made while the binding's pause handler runs on this thread.
fn pause_in_handler_running_here(b: &Binding) -> bool {
    b.pause_in_handler.load(Ordering::Acquire) && in_own_pause_handler(b)
}

/// `Sim::stall_send_calls`: the call waits here, inside
/// `NdisSendNetBufferLists` and before NDIS walks the chain (as a thread
/// that NDIS, a filter driver or the miniport keeps a while before it gets
/// to the sends), until `Sim::release_send_calls`, at most the watchdog's
/// time. The NBLs are NDIS's from the call on.
fn stall_send_call(k: &Kernel, a: &Adapter) {
    stall_while(k, &a.send_stall, &a.send_stalled, "an NdisSendNetBufferLists call the test stalled");
}

pub(crate) unsafe extern "win64" fn NdisSendNetBufferLists(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    flags: u32,
) {
    const CALL: &str = "NdisSendNetBufferLists";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        // The page lists the two flags a protocol's send supports; the
        // others (`_SINGLE_QUEUE`, the Hyper-V switch's) belong to
        // filters and make promises a protocol cannot keep.
        if flags & !(NDIS_SEND_FLAGS_DISPATCH_LEVEL | NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK) != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "SendFlags {flags:#x}: a protocol may pass only NDIS_SEND_FLAGS_DISPATCH_LEVEL and NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK"
                ),
            )
            .report();
        }
        // ndisim's miniports allocate no ports: only the default one is.
        if port != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("PortNumber {port}: the miniport allocated no such port (a protocol without ports sends on 0)"),
            )
            .report();
        }
        if flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 && irql() != DISPATCH_LEVEL {
            Violation::new(
                Rule::Irql,
                CALL,
                "NDIS_SEND_FLAGS_DISPATCH_LEVEL is set but the caller is not at DISPATCH_LEVEL",
            )
            .report();
        }
        let Some(in_call) = k.ndis.binding(h, CALL, false) else { return };
        let b = in_call.get();
        // `_In_`: NDIS walks the chain from its head.
        if nbls.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "NetBufferLists is NULL")
                .with_binding(b.name.clone())
                .report();
            return;
        }
        stall_send_call(k, k.ndis.adapter(b.adapter));
        let mode = k.verifier.checksum();
        // The largest frame without a tag inline (MTU plus header).
        let max_frame = k.ndis.adapter(b.adapter).max_frame.load(Ordering::Acquire);
        with_scratch(|list| {
            let mut cur = nbls;
            // The memory manager, held for the whole chain (and let go
            // before anything calls into the driver).
            let mut track = k.io.umem.active().then(|| k.io.umem.track());
            while !cur.is_null() {
                if !nbl::valid(cur) {
                    Violation::new(
                        Rule::InvalidParameter,
                        CALL,
                        "not an NBL allocated by NDIS; the rest of the chain is dropped",
                    )
                    .with_binding(b.name.clone())
                    .with_object(cur as usize)
                    .report();
                    break;
                }
                // SAFETY: a valid NBL; `Next` is read before NDIS relinks it.
                let next = unsafe { (*cur).anon.anon.Next };
                // SAFETY: valid.
                let o = unsafe { nbl::owner(cur) };
                if let Err(st) = o.compare_exchange(own::DRIVER, own::IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire) {
                    if st == own::IN_FLIGHT && list.contains(&(cur as usize)) {
                        // Not walked for ever.
                        Violation::new(
                            Rule::InvalidParameter,
                            CALL,
                            "the chain loops back to an NBL earlier in it; the rest of the chain is dropped",
                        )
                        .with_binding(b.name.clone())
                        .with_object(cur as usize)
                        .report();
                        break;
                    }
                    let why = match st {
                        own::IN_FLIGHT => "sent an NBL again while NDIS still owns it from an earlier send",
                        own::FREE | own::FREEING => "sent an NBL that was freed",
                        _ => "sent a receive NBL that NDIS owns",
                    };
                    Violation::new(Rule::NblOwnership, CALL, why)
                        .with_binding(b.name.clone())
                        .with_object(cur as usize)
                        .report();
                    cur = next;
                    continue;
                }
                // SAFETY: the NBL is now NDIS's.
                unsafe {
                    if (*cur).SourceHandle != h {
                        Violation::new(
                            Rule::SendSourceHandle,
                            CALL,
                            format!(
                                "SourceHandle is {:#x}, not the binding handle {:#x}",
                                (*cur).SourceHandle as usize,
                                h as usize
                            ),
                        )
                        .with_binding(b.name.clone())
                        .with_object(cur as usize)
                        .report();
                    }
                    let mut nb = (*cur).anon.anon.FirstNetBuffer;
                    let mut frames = 0;
                    // A NET_BUFFER longer than the largest untagged frame.
                    let mut long = false;
                    while !nb.is_null() {
                        frames += 1;
                        // NdisAllocateNetBufferAndNetBufferList's remarks
                        // (nf-nblapi-ndisallocatenetbufferandnetbufferlist):
                        // NBLs and NET_BUFFERs come from NDIS pools, never
                        // from a driver's own memory or its stack.
                        if !nbl::nb_valid(nb) {
                            Violation::new(
                                Rule::InvalidParameter,
                                CALL,
                                format!(
                                    "NET_BUFFER {:#x} of the NBL was not allocated by NDIS (driver memory or stack)",
                                    nb as usize
                                ),
                            )
                            .with_binding(b.name.clone())
                            .with_object(cur as usize)
                            .report();
                        }
                        if let Some(why) = nbl::nb_layout_error(nb) {
                            Violation::new(Rule::InvalidParameter, CALL, format!("a NET_BUFFER of the NBL: {why}"))
                                .with_binding(b.name.clone())
                                .with_object(cur as usize)
                                .report();
                        } else {
                            let len = (*nb).anon.anon.anon.DataLength as usize;
                            long |= len > max_frame;
                            // An Ethernet miniport reads a header (and
                            // NDIS's loopback test its destination).
                            if len < 14 {
                                Violation::new(
                                    Rule::InvalidParameter,
                                    CALL,
                                    format!("a {len}-byte frame, shorter than the 14-byte Ethernet header"),
                                )
                                .with_binding(b.name.clone())
                                .with_object(cur as usize)
                                .report();
                            }
                        }
                        nb = (*nb).anon.anon.Next;
                    }
                    if frames == 0 {
                        Violation::new(Rule::InvalidParameter, CALL, "an NBL with no NET_BUFFER")
                            .with_binding(b.name.clone())
                            .with_object(cur as usize)
                            .report();
                    }
                    let hd = nbl::hdr(cur);
                    (*hd).frames = frames;
                    (*hd).fail = 0;
                    (*hd).binding.store(b as *const Binding as usize, Ordering::Relaxed);
                    // Memory of user regions must be locked for as long as
                    // NDIS has the NBL; what is not is not read.
                    let mut user = false;
                    let refused = track.as_mut().is_some_and(|t| {
                        t.on_send(cur)
                            .map(|u| user = u)
                            .map_err(|why| {
                                Violation::new(
                                    Rule::MappingAfterUnlock,
                                    CALL,
                                    format!(
                                        "sent an NBL whose data is not locked memory: {why}; NDIS does not read it"
                                    ),
                                )
                                .with_binding(b.name.clone())
                                .with_object(cur as usize)
                                .report();
                            })
                            .is_err()
                    });
                    scribble_reserved(cur, true);
                    (*hd).checksum = if refused { nbl::REFUSED } else { nbl::checksum(cur, user_mode(mode, user)) };
                    if long {
                        oversize(
                            b,
                            cur,
                            max_frame,
                            if refused {
                                Bound::Unread
                            } else if user {
                                Bound::User
                            } else {
                                Bound::Read
                            },
                        );
                    }
                }
                list.push(cur as usize);
                // NDIS links the NBLs it holds as it pleases (its `Next` was
                // read above): a driver that walks a chain it sent reads
                // garbage, as it would on Windows.
                // SAFETY: NDIS's NBL now; relinked at its completion.
                unsafe {
                    (*cur).anon.anon.Next = 0xBAD0_F11E_DDDD_DDD0usize as *mut NET_BUFFER_LIST;
                    (*cur).anon2.Status = NDIS_STATUS_PENDING;
                }
                cur = next;
            }
            drop(track);
            let n = list.len() as u64;
            if n == 0 {
                return;
            }
            b.sends.fetch_add(n, Ordering::AcqRel);
            let f = k.ndis.stats.in_flight.fetch_add(n, Ordering::AcqRel) + n;
            k.ndis.stats.in_flight_peak.fetch_max(f, Ordering::AcqRel);
            k.ndis.stats.sends.fetch_add(n, Ordering::Relaxed);
            if pause_in_handler_running_here(b) {
                // The driver knows of the pause: a violation. The send
                // still goes down as one racing with the pause from another
                // processor would, so the miniport's side is the same.
                Violation::new(
                    Rule::SendNotRunning,
                    CALL,
                    format!(
                        "sent {n} NBL(s) from the binding's own pause handler: the binding is Pausing and sends stop"
                    ),
                )
                .with_binding(b.name.clone())
                .with_object(list[0])
                .report();
            }
            if !b.running.load(Ordering::Acquire) && !b.pause_in_handler.load(Ordering::Acquire) {
                Violation::new(
                    Rule::SendNotRunning,
                    CALL,
                    format!(
                        "sent {n} NBL(s) while the binding is {:?}; NDIS fails them with NDIS_STATUS_PAUSED",
                        b.state()
                    ),
                )
                .with_binding(b.name.clone())
                .with_object(list[0])
                .report();
                complete_nbls(k, list, NDIS_STATUS_PAUSED);
                return;
            }
            let a = k.ndis.adapter(b.adapter);
            if !lock(&a.model).powered {
                Violation::new(
                    Rule::LowPower,
                    CALL,
                    format!(
                        "sent {n} NBL(s) while the adapter is in a low-power state (after NetEventSetPower for D1-D3, before D0); NDIS fails them with NDIS_STATUS_LOW_POWER_STATE"
                    ),
                )
                .with_binding(b.name.clone())
                .with_object(list[0])
                .report();
                complete_nbls(k, list, NDIS_STATUS_LOW_POWER_STATE);
                return;
            }
            if a.spec.send_fail > 0 {
                if !b.running.load(Ordering::Acquire) {
                    // A send racing the pause: NDIS fails it.
                    complete_nbls(k, list, NDIS_STATUS_PAUSED);
                    return;
                }
                fail_some(k, a, list);
                if list.is_empty() {
                    return;
                }
            }
            transmit(k, a, list, flags & NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK != 0);
            // The policy is read under the lock of what the adapter holds
            // back (and `set_completion` changes it under the same lock), so
            // no send joins a batch or the held list after a policy change
            // has flushed it: it would wait for a release that never comes.
            let mut held = lock(&a.held);
            let policy = *lock(&a.policy);
            match policy {
                CompletionPolicy::Immediate => {
                    drop(held);
                    complete_nbls(k, list, NDIS_STATUS_SUCCESS)
                }
                CompletionPolicy::Batched(nb) | CompletionPolicy::Reordered(nb) => {
                    let ready = {
                        held.extend_from_slice(list);
                        // Once a pause has begun nothing is held back: the
                        // pause flushed the batch, and a send that raced
                        // with it (allowed until the pause handler returns)
                        // would otherwise wait for sends that cannot come,
                        // and the pause with it. Read under the lock the
                        // flush takes, so no send lands after it unseen.
                        if held.len() >= nb || !b.running.load(Ordering::Acquire) {
                            Some(std::mem::take(&mut *held))
                        } else {
                            None
                        }
                    };
                    drop(held);
                    if let Some(mut ready) = ready {
                        if matches!(policy, CompletionPolicy::Reordered(_)) {
                            ready.reverse();
                        }
                        complete_nbls(k, &ready, NDIS_STATUS_SUCCESS);
                    }
                }
                CompletionPolicy::Delayed(d) => {
                    drop(held);
                    let owned = list.clone();
                    k.dpc.push(d, DISPATCH_LEVEL, move || {
                        if let Some(k) = kernel::kernel() {
                            complete_nbls(k, &owned, NDIS_STATUS_SUCCESS);
                        }
                    });
                }
                CompletionPolicy::Scatter => {
                    drop(held);
                    scatter(k, a, list.clone());
                }
                CompletionPolicy::Held => held.extend_from_slice(list),
            }
        });
    })
}

/// How `oversize` bounds a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// `max_frame`, or `max_frame + 4` with a tag inline.
    Read,
    /// The bytes are not read (their memory was not locked):
    /// `max_frame + 4`.
    Unread,
    /// In user memory: `max_frame`. A tag inline there is the user's to
    /// change after the driver checked it, and the NIC reads it later.
    User,
}

/// Reports each NET_BUFFER of `nbl` longer than its bound (`Bound`):
/// `max_frame`, 4 more if it carries an 802.1Q tag inline (TPID 0x8100 or
/// 0x88A8 after the addresses). NET_BUFFERs whose data cannot be walked
/// are reported as such already.
///
/// # Safety
/// `nbl` is a valid NBL whose NET_BUFFERs' MDL chains cover their data.
unsafe fn oversize(b: &Binding, nbl: *mut NET_BUFFER_LIST, max_frame: usize, bound: Bound) {
    // SAFETY: per the caller.
    let mut nb = unsafe { (*nbl).anon.anon.FirstNetBuffer };
    while !nb.is_null() {
        // SAFETY: per the caller.
        let len = unsafe { (*nb).anon.anon.anon.DataLength } as usize;
        let tagged = || {
            let mut head = [0u8; 14];
            let mut at = 0;
            // SAFETY: per the caller.
            unsafe {
                nbl::for_each_piece(nb, |p| {
                    let n = p.len().min(head.len() - at);
                    head[at..at + n].copy_from_slice(&p[..n]);
                    at += n;
                })
            };
            matches!(u16::from_be_bytes([head[12], head[13]]), 0x8100 | 0x88A8)
        };
        // SAFETY: per the caller.
        let walkable = unsafe { nbl::nb_layout_error(nb) }.is_none();
        let over = match bound {
            Bound::Read => len > max_frame + 4 || (len > max_frame && !tagged()),
            Bound::Unread => len > max_frame + 4,
            Bound::User => len > max_frame,
        };
        if walkable && over {
            Violation::new(
                Rule::SendOversize,
                "NdisSendNetBufferLists",
                format!(
                    "a {len}-byte frame{}, longer than the adapter's largest ({max_frame} bytes: its MTU and the Ethernet header, 4 more with a tag inline{})",
                    if bound == Bound::User { " in user memory" } else { "" },
                    if bound == Bound::User { ", which in user memory the user may change after the driver checked it" } else { "" }
                ),
            )
            .with_binding(b.name.clone())
            .with_object(nbl as usize)
            .report();
        }
        // SAFETY: per the caller.
        nb = unsafe { (*nb).anon.anon.Next };
    }
}

/// What a miniport in trouble fails sends with.
const SEND_FAILURES: &[NDIS_STATUS] = &[
    NDIS_STATUS_FAILURE,
    NDIS_STATUS_RESOURCES,
    NDIS_STATUS_MEDIA_DISCONNECTED,
    NDIS_STATUS_REQUEST_ABORTED,
    NDIS_STATUS_SEND_ABORTED,
    NDIS_STATUS_RESET_IN_PROGRESS,
];

/// `send-fail=N`: fails N in 1000 of `list` (drawn from the adapter's own
/// count of sends, so a deterministic run fails the same ones), each with
/// one of `SEND_FAILURES`, and marks them (`NblHdr::fail`; they are not
/// transmitted). For one send in two the failed NBLs are given back at
/// once, grouped by status, and leave `list`; for the other they stay,
/// and the completion policy gives them back with the rest: one chain
/// then mixes NBLs sent and failed, each with its own status, as a
/// miniport completing a batch does.
fn fail_some(k: &Kernel, a: &Adapter, list: &mut Vec<usize>) {
    let mut failed = 0;
    let mut mixed = None;
    for &p in list.iter() {
        let Some(h) = a.draw(&a.send_draws, a.spec.send_fail, 0) else { continue };
        let i = (h / 1000) as usize % SEND_FAILURES.len();
        mixed.get_or_insert(h >> 40 & 1 == 1);
        // SAFETY: NDIS's NBL, in flight.
        unsafe { (*nbl::hdr(p as *mut NET_BUFFER_LIST)).fail = i as u8 + 1 };
        failed += 1;
    }
    if failed == 0 || mixed == Some(true) {
        return;
    }
    // Out of the list, with their marks, before any goes back: a driver
    // may send an NBL again as soon as it is back (from its completion
    // handler, or on another CPU), which marks it anew, so none is read
    // once given back.
    let mut gone: Vec<(u8, usize)> = Vec::new();
    list.retain(|&p| {
        // SAFETY: as above.
        let fail = unsafe { (*nbl::hdr(p as *mut NET_BUFFER_LIST)).fail };
        if fail != 0 {
            gone.push((fail, p));
        }
        fail == 0
    });
    for (i, &st) in SEND_FAILURES.iter().enumerate() {
        let these: Vec<usize> = gone.iter().filter(|g| g.0 == i as u8 + 1).map(|g| g.1).collect();
        if !these.is_empty() {
            complete_nbls(k, &these, st);
        }
    }
}

/// Gives sent NBLs back to their bindings (grouped by binding, in order):
/// checks their checksums, sets their status (`status`, or the failure the
/// miniport marked an NBL with) and calls
/// `ProtocolSendNetBufferListsComplete` at the IRQL the miniport completes
/// them at: DISPATCH_LEVEL (with `NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL`)
/// from a DPC or a caller at DISPATCH_LEVEL, PASSIVE_LEVEL (without it)
/// from a thread at PASSIVE_LEVEL, as a miniport that completes sends from
/// a work item or its own thread does. A driver that takes the completion
/// for DISPATCH_LEVEL without looking at the flag is caught here.
pub(crate) fn complete_nbls(k: &Kernel, nbls: &[usize], status: NDIS_STATUS) {
    complete_nbls_as(k, nbls, status, false)
}

/// `CompletionPolicy::Scatter`: `list` (one send's NBLs) shuffled and cut
/// into up to three groups, each completed now or from a DPC.
fn scatter(k: &Kernel, a: &Adapter, mut list: Vec<usize>) {
    if list.is_empty() {
        return;
    }
    let mut r = a.draw_rng(&a.scatter_draws, 0x5343_4154);
    for i in (1..list.len()).rev() {
        list.swap(i, r.below(i as u64 + 1) as usize);
    }
    let pieces = r.range(1, 3).min(list.len() as u64) as usize;
    let mut cuts: Vec<usize> = (1..pieces).map(|_| r.range(1, list.len() as u64 - 1) as usize).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut from = 0;
    for to in cuts.into_iter().chain([list.len()]) {
        let group = list[from..to].to_vec();
        from = to;
        let unflagged = r.chance(500);
        if r.chance(400) {
            // At the caller's IRQL, before the send call returns.
            complete_nbls_as(k, &group, NDIS_STATUS_SUCCESS, unflagged);
        } else {
            let d = std::time::Duration::from_micros(r.below(2001));
            k.dpc.push(d, DISPATCH_LEVEL, move || {
                if let Some(k) = kernel::kernel() {
                    complete_nbls_as(k, &group, NDIS_STATUS_SUCCESS, unflagged);
                }
            });
        }
    }
}

/// `complete_nbls`; `unflagged`: at DISPATCH_LEVEL, without
/// `NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL` (a hint NDIS may leave clear).
pub(crate) fn complete_nbls_as(k: &Kernel, nbls: &[usize], status: NDIS_STATUS, unflagged: bool) {
    let mode = k.verifier.checksum();
    let mut i = 0;
    while i < nbls.len() {
        // SAFETY: in-flight NBLs of ours.
        let bp = unsafe { (*nbl::hdr(nbls[i] as *mut NET_BUFFER_LIST)).binding.load(Ordering::Relaxed) };
        let mut j = i;
        // SAFETY: as above.
        let binding_of = |p: usize| unsafe { (*nbl::hdr(p as *mut NET_BUFFER_LIST)).binding.load(Ordering::Relaxed) };
        while j < nbls.len() && binding_of(nbls[j]) == bp {
            j += 1;
        }
        // SAFETY: bindings live for the simulation.
        let b = unsafe { &*(bp as *const Binding) };
        let group = &nbls[i..j];
        let (mut frames, mut failed) = (0, 0);
        // The memory manager, held for the group (and let go before the
        // driver's handler).
        let mut track = k.io.umem.active().then(|| k.io.umem.track());
        for (x, &p) in group.iter().enumerate() {
            let n = p as *mut NET_BUFFER_LIST;
            // SAFETY: NDIS owns `n` until the handler below.
            unsafe {
                let fail = (*nbl::hdr(n)).fail;
                let status = if fail == 0 { status } else { SEND_FAILURES[usize::from(fail - 1)] };
                if status == NDIS_STATUS_SUCCESS {
                    frames += u64::from((*nbl::hdr(n)).frames);
                } else {
                    failed += u64::from((*nbl::hdr(n)).frames);
                }
                let refused = (*nbl::hdr(n)).checksum == nbl::REFUSED;
                let mut user = false;
                let gone = track.as_mut().is_some_and(|t| {
                    t.on_complete(n)
                        .map(|u| user = u)
                        .map_err(|why| {
                            if !refused {
                                Violation::new(
                                    Rule::MappingAfterUnlock,
                                    "NdisSendNetBufferLists",
                                    format!("the pages a sent NBL describes were unlocked while NDIS owned it: {why}"),
                                )
                                .with_binding(b.name.clone())
                                .with_object(p)
                                .report();
                            }
                        })
                        .is_err()
                });
                if status != NDIS_STATUS_SUCCESS && !refused && !gone {
                    super::failed::keep(k, b, n);
                }
                if mode != Checksum::Off && !refused && !gone {
                    let c = nbl::checksum(n, user_mode(mode, user));
                    if c != (*nbl::hdr(n)).checksum {
                        Violation::new(
                            Rule::NblOwnership,
                            "NdisSendNetBufferLists",
                            "the NBL (or its NET_BUFFERs, MDLs or data) changed while NDIS owned it, between the send and its completion",
                        )
                        .with_binding(b.name.clone())
                        .with_object(p)
                        .report();
                    }
                }
                scribble_reserved(n, false);
                (*n).anon2.Status = status;
                (*n).anon.anon.Next = group.get(x + 1).map_or(std::ptr::null_mut(), |&q| q as *mut NET_BUFFER_LIST);
                let was = nbl::owner(n).swap(own::DRIVER, Ordering::AcqRel);
                if was != own::IN_FLIGHT {
                    // NDIS's own bookkeeping, not the driver's doing: a
                    // completion of an NBL it does not hold.
                    k.verifier.internal_error(format!(
                        "completed send NBL {p:#x}, which NDIS does not hold (owner state {was}): given back twice"
                    ));
                }
            }
        }
        let cnt = group.len() as u64;
        b.sent_ok.fetch_add(frames, Ordering::Relaxed);
        if failed != 0 {
            b.sent_failed.fetch_add(failed, Ordering::Relaxed);
        }
        b.completing.fetch_add(cnt, Ordering::AcqRel);
        b.sends.fetch_sub(cnt, Ordering::AcqRel);
        k.ndis.stats.in_flight.fetch_sub(cnt, Ordering::AcqRel);
        drop(track);
        let handler = b.proto.chars.SendNetBufferListsCompleteHandler.expect("validated");
        let ctx = b.ctx;
        let head = group[0] as *mut NET_BUFFER_LIST;
        let at = if irql() >= DISPATCH_LEVEL { DISPATCH_LEVEL } else { kernel::PASSIVE_LEVEL };
        let flags = if at == DISPATCH_LEVEL && !unflagged { NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL } else { 0 };
        let call = b.enter_call(true);
        call_driver("ProtocolSendNetBufferListsComplete", at, || {
            // SAFETY: the driver's handler with its binding context and the
            // NBLs it sent, now its own again.
            unsafe { handler(ctx as NDIS_HANDLE, head, flags) }
        });
        drop(call);
        b.completing.fetch_sub(cnt, Ordering::AcqRel);
        i = j;
    }
}

/// What NDIS and the miniport leave in the areas that are theirs while
/// they own a sent NBL (its and its NET_BUFFERs' `NdisReserved` and
/// `MiniportReserved`, and the owner's `Scratch`): whatever they put
/// there, from the send on (`in_flight`; checksummed with the rest, so a
/// driver writing them meanwhile is caught) and at the completion. A
/// driver that kept per-send context in them, not in `ProtocolReserved`,
/// reads a pattern back at the completion.
///
/// # Safety
/// `n` is a sent NBL NDIS owns, with its NET_BUFFERs.
unsafe fn scribble_reserved(n: *mut NET_BUFFER_LIST, in_flight: bool) {
    let junk: usize = if in_flight { 0xBAD0_F11E_0000_0000 } else { 0xBAD0_5EED_0000_0000 };
    // SAFETY: per the caller.
    unsafe {
        (*n).NdisReserved = [(junk | 1) as PVOID, (junk | 2) as PVOID];
        (*n).MiniportReserved = [(junk | 3) as PVOID, (junk | 4) as PVOID];
        (*n).Scratch = (junk | 5) as PVOID;
        let mut nb = (*n).anon.anon.FirstNetBuffer;
        let mut guard = 0;
        while !nb.is_null() && guard < 1024 {
            guard += 1;
            (*nb).NdisReserved = [(junk | 6) as PVOID; 2];
            (*nb).MiniportReserved = [(junk | 7) as PVOID; 4];
            nb = (*nb).anon.anon.Next;
        }
    }
}

/// Releases held send completions of `a` (all of them, or the first `n`).
/// Sets how the adapter completes sends. Leaving a batching policy
/// completes the batch, as a miniport that stops batching would: nothing
/// else would (only a send under batching or a pause flushes one).
pub(crate) fn set_completion(k: &Kernel, a: &Adapter, p: CompletionPolicy) {
    let batch = {
        let mut held = lock(&a.held);
        let mut policy = lock(&a.policy);
        let was_batching = matches!(*policy, CompletionPolicy::Batched(_) | CompletionPolicy::Reordered(_));
        let batching = matches!(p, CompletionPolicy::Batched(_) | CompletionPolicy::Reordered(_));
        *policy = p;
        if was_batching && !batching && p != CompletionPolicy::Held { std::mem::take(&mut *held) } else { Vec::new() }
    };
    complete_nbls(k, &batch, NDIS_STATUS_SUCCESS);
}

pub(crate) fn release_sends(k: &Kernel, a: &Adapter, n: Option<usize>) -> usize {
    let take = {
        let mut held = lock(&a.held);
        let n = n.unwrap_or(held.len()).min(held.len());
        held.drain(..n).collect::<Vec<_>>()
    };
    let count = take.len();
    complete_nbls(k, &take, NDIS_STATUS_SUCCESS);
    count
}

/// The adapter puts the frames on its wire. With `loop_back`
/// (`NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`), NDIS also indicates each frame
/// back to the sending binding, if its packet filter accepts it, marked
/// `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`; without it, NDIS never loops a
/// protocol's sends back to that protocol. An adapter that advertises
/// 802.1Q takes each NBL's `Ieee8021QNetBufferListInfo` as the tag to
/// insert; one that does not ignores it (and counts it in
/// `tx_tags_ignored`), as such a miniport does.
pub(super) fn transmit(k: &Kernel, a: &Adapter, list: &[usize], loop_back: bool) {
    let capture = a.capture.load(Ordering::Relaxed);
    let needs_bytes = capture
        || loop_back
        || a.tap.is_some()
        || matches!(a.spec.kind, adapter::AdapterKind::Loopback | adapter::AdapterKind::Pair(_));
    // Counted once per call, not per frame: the null adapter's cost per
    // frame stays a few loads and stores.
    let (mut frames, mut bytes, mut ignored) = (0u64, 0u64, 0u64);
    let vlan = a.vlan();
    for &p in list {
        let n = p as *mut NET_BUFFER_LIST;
        // SAFETY: NDIS owns the NBL (in flight); its NBs and MDLs are the
        // driver's, valid while in flight.
        // SAFETY: as above.
        let (checksum, fail) = unsafe { ((*nbl::hdr(n)).checksum, (*nbl::hdr(n)).fail) };
        if checksum == nbl::REFUSED || fail != 0 {
            // Its memory was not locked: the miniport does not read it; or
            // the miniport fails it.
            continue;
        }
        // SAFETY: as above.
        unsafe {
            let info = (*n).NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize;
            if info != 0 && !vlan {
                ignored += 1;
            }
            let tci = (info != 0 && vlan).then(|| {
                let prio = (info & 7) as u16;
                let cfi = ((info >> 3) & 1) as u16;
                let vlan = ((info >> 4) & 0xFFF) as u16;
                (prio << 13) | (cfi << 12) | vlan
            });
            let mut nb = (*n).anon.anon.FirstNetBuffer;
            while !nb.is_null() {
                let len = (*nb).anon.anon.anon.DataLength as u64;
                frames += 1;
                bytes += len;
                if needs_bytes {
                    let mut data = Vec::with_capacity(len as usize);
                    nbl::copy_nb(nb, &mut data);
                    deliver(k, a, Frame { data, tci }, capture, loop_back);
                }
                nb = (*nb).anon.anon.Next;
            }
        }
    }
    a.counters.tx_frames.fetch_add(frames, Ordering::Relaxed);
    a.counters.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
    if ignored != 0 {
        a.counters.tx_tags_ignored.fetch_add(ignored, Ordering::Relaxed);
    }
}

/// One frame onto the adapter's wire: written to its TAP device (with the
/// tag inline, as on a real wire; a failed write is a transmit error),
/// queued for the receiving end of a pair (which strips the tag or not, as
/// it advertises), looped back when asked, and captured as the adapter
/// took it.
pub(super) fn deliver(k: &Kernel, a: &Adapter, f: Frame, capture: bool, loop_back: bool) {
    if let Some(t) = &a.tap {
        if !t.write(&f.wire()) {
            a.counters.tx_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let adapter::AdapterKind::Pair(_) = &a.spec.kind {
        if let Some(&peer) = a.peer.get() {
            k.ndis.adapter(peer).rx.push(f.clone());
        }
    }
    if loop_back {
        a.rx.push_loopback(f.clone());
    }
    if capture {
        lock(&a.captured).push(f);
    }
}

/// The checksum mode for a sent NBL: its data is left out when it is user
/// memory (`user`: a zero-copy send from a UMEM), which the user may change
/// while NDIS sends it; only the driver's changes are the driver's fault.
fn user_mode(mode: Checksum, user: bool) -> Checksum {
    if mode == Checksum::Full && user { Checksum::Headers } else { mode }
}
