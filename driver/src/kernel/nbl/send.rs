//! Send NBLs: the binding's pool, the batch a send fills, and the
//! completion that gives them back.
//!
//! The binding owns a `SendPool` of preallocated NBLs, each with one
//! NET_BUFFER and one MDL over a buffer of its own. `Binding::begin_send`
//! takes NBLs out of the pool only while sends may reach NDIS (the gate,
//! held shared, and the `ndis_running` flag under the binding's lock prove it)
//! and counts them in flight; `SendBatch::send` gives them to NDIS, after
//! which nothing in rawnic can reach them; `send_net_buffer_lists_complete`
//! takes them back, in any order and in chains that mix sends, and puts
//! them back in the pool.

use super::zerocopy::{RESERVED_RING, ZcReturns};
use super::{NblLinks, first_nb, nb_fields, next_nbl};
use crate::kernel::alloc::{AllocError, try_vec};
use crate::kernel::protocol::{Binding, NdisStatus, Protocol, SendShape, binding_arc, irql_from_flag};
use crate::kernel::sync::{GateGuard, GateState, Irql};
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::Ordering;
use ndis_sys::*;
use rawnic_logic::vlan::{TagPlacement, copy_tagged};

/// NBLs a pool starts with, and grows by (fewer when an allocation of one
/// fails: the chunk keeps those made).
const CHUNK_SLOTS: usize = 256;
/// Most send NBLs one binding may own.
pub const MAX_SEND_NBLS: usize = 16 * 1024;

/// One frame's send buffer size for `mtu`: the frame, an 802.1Q tag (a
/// frame sent with its tag inline is MTU + 18 bytes), rounded to a cache
/// line.
fn slot_size(mtu: u32) -> usize {
    (mtu as usize + 14 + 4 + 63) & !63
}

struct PoolChunk {
    mem: Vec<u8>,
    nbls: Vec<*mut NET_BUFFER_LIST>,
    mdls: Vec<*mut MDL>,
}

/// The send NBLs a binding owns.
///
/// # Invariants
/// `free_head` links (through `NET_BUFFER_LIST::Next`) exactly `free_count`
/// NBLs of `chunks` that NDIS does not own. Every NBL of `chunks` is either
/// on that list, or in flight (NDIS owns it), or in a `SendBatch` being
/// filled. Each NBL's `ProtocolReserved[1]` is its buffer and
/// `ProtocolReserved[2]`'s low 32 bits the buffer's size (its high 32 bits,
/// from `SendBatch::push` to the completion, the frame's length as the
/// caller gave it; `ProtocolReserved[0]` is the frame's owner).
pub struct SendPool {
    nbl_pool: NDIS_HANDLE,
    protocol_handle: NDIS_HANDLE,
    slot_size: usize,
    chunks: Vec<PoolChunk>,
    free_head: *mut NET_BUFFER_LIST,
    free_count: usize,
    total: usize,
    /// Most NBLs this pool holds at once (high-water mark).
    pub(crate) peak_in_use: usize,
}

impl SendPool {
    /// A pool for frames of `mtu` bytes, with its first chunk if memory
    /// allows (if not, the first send grows it: a bind does not fail for
    /// want of send NBLs, which NDIS would not retry).
    pub(crate) fn new(protocol_handle: NDIS_HANDLE, mtu: u32) -> Result<Self, AllocError> {
        let chunks = try_vec(4)?;
        // SAFETY: the protocol's registration handle (caller).
        let nbl_pool = unsafe { super::nbl_pool(protocol_handle, true) }.ok_or(AllocError)?;
        let mut pool = SendPool {
            nbl_pool,
            protocol_handle,
            slot_size: slot_size(mtu),
            chunks,
            free_head: ptr::null_mut(),
            free_count: 0,
            total: 0,
            peak_in_use: 0,
        };
        // Best effort: `take` grows it when it is empty.
        let _ = pool.grow();
        Ok(pool)
    }

    pub fn free_count(&self) -> usize {
        self.free_count
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Whether its buffers have the size frames of `mtu` need.
    pub(crate) fn fits(&self, mtu: u32) -> bool {
        self.slot_size == slot_size(mtu)
    }

    /// Whether its buffers can take frames of `mtu` (they may be larger).
    pub(crate) fn holds(&self, mtu: u32) -> bool {
        self.slot_size >= slot_size(mtu)
    }

    /// (total, free, peak in use).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (self.total, self.free_count, self.peak_in_use)
    }

    /// Makes more NBLs: first in a chunk an allocation failure left short
    /// (so that a shortage does not leave the pool with many chunks of a
    /// few NBLs each, and its bound in chunks reached with few NBLs), else
    /// in a new chunk. `Err` when none could be made.
    fn grow(&mut self) -> Result<(), AllocError> {
        if self.nbl_pool.is_null() {
            return Err(AllocError);
        }
        let i = match self.chunks.iter().position(|c| c.nbls.len() < CHUNK_SLOTS) {
            Some(i) => i,
            None => {
                // Chunks are kept whole from here: their number bounds the
                // memory.
                if (self.chunks.len() + 1) * CHUNK_SLOTS > MAX_SEND_NBLS {
                    return Err(AllocError);
                }
                self.chunks.try_reserve(1).map_err(|_| AllocError)?;
                let size = self.slot_size.checked_mul(CHUNK_SLOTS).ok_or(AllocError)?;
                let mut mem = try_vec::<u8>(size)?;
                mem.resize(size, 0);
                self.chunks.push(PoolChunk { mem, nbls: try_vec(CHUNK_SLOTS)?, mdls: try_vec(CHUNK_SLOTS)? });
                self.chunks.len() - 1
            }
        };
        let made = self.fill_chunk(i);
        if made == 0 {
            if self.chunks[i].nbls.is_empty() {
                // A new chunk none could be made in goes.
                self.chunks.swap_remove(i);
            }
            return Err(AllocError);
        }
        Ok(())
    }

    /// Makes NBLs for chunk `i`'s slots that have none, in order, until an
    /// allocation fails; they go on the free list. How many were made.
    fn fill_chunk(&mut self, i: usize) -> usize {
        let (slot_size, protocol_handle, nbl_pool) = (self.slot_size, self.protocol_handle, self.nbl_pool);
        let chunk = &mut self.chunks[i];
        let base = chunk.mem.as_mut_ptr();
        let mut made = 0;
        // Slot `k` has its NBL when `k < nbls.len()`: they are made in order.
        while chunk.nbls.len() < CHUNK_SLOTS {
            let k = chunk.nbls.len();
            // SAFETY: `k * slot_size` is inside `mem`, which lives as long as
            // the chunk (and so as long as the MDL and NBL over it).
            let buf = unsafe { base.add(k * slot_size) };
            // SAFETY: `buf` is non-paged pool of `slot_size` bytes.
            let mdl = unsafe { NdisAllocateMdl(protocol_handle, buf.cast(), slot_size as u32) };
            if mdl.is_null() {
                break;
            }
            // SAFETY: the pool allocates NET_BUFFERs with its NBLs; the MDL
            // describes `slot_size` bytes.
            let nbl = unsafe { NdisAllocateNetBufferAndNetBufferList(nbl_pool, 0, 0, mdl, 0, slot_size) };
            if nbl.is_null() {
                // SAFETY: the MDL just made, in no NBL.
                unsafe { NdisFreeMdl(mdl) };
                break;
            }
            // Room for `CHUNK_SLOTS` of each was made with the chunk.
            chunk.mdls.push(mdl);
            // SAFETY: the NBL is new and ours.
            let n = unsafe { &mut *nbl };
            n.ProtocolReserved[1] = buf.cast();
            n.ProtocolReserved[2] = slot_size as PVOID;
            // No ring: the completion tells the pool's NBLs from zero-copy ones by it.
            n.ProtocolReserved[RESERVED_RING] = ptr::null_mut();
            n.anon.anon.Next = self.free_head;
            self.free_head = nbl;
            chunk.nbls.push(nbl);
            made += 1;
        }
        self.free_count += made;
        self.total += made;
        made
    }

    fn free_chunk(chunk: &mut PoolChunk) {
        for nbl in chunk.nbls.drain(..) {
            // SAFETY: the NBL came from this pool and NDIS does not own it.
            unsafe { NdisFreeNetBufferList(nbl) };
        }
        for mdl in chunk.mdls.drain(..) {
            // SAFETY: the MDL came from NdisAllocateMdl and no NBL uses it.
            unsafe { NdisFreeMdl(mdl) };
        }
    }

    /// Takes up to `want` NBLs (growing the pool if needed), as a chain.
    fn take(&mut self, want: usize) -> (*mut NET_BUFFER_LIST, usize) {
        while self.free_count < want && self.grow().is_ok() {}
        let n = want.min(self.free_count);
        let head = self.free_head;
        let mut cur = head;
        for i in 0..n {
            // SAFETY: `cur` is on the free list (invariant), so it is ours.
            let node = unsafe { &mut *cur };
            let next = next_nbl(node);
            if i + 1 == n {
                // Cut the chain after the n-th.
                node.anon.anon.Next = ptr::null_mut();
            }
            cur = next;
        }
        self.free_head = if n == 0 { head } else { cur };
        self.free_count -= n;
        self.peak_in_use = self.peak_in_use.max(self.total - self.free_count);
        (if n == 0 { ptr::null_mut() } else { head }, n)
    }

    /// Puts back a chain of `count` NBLs whose last one is `tail`.
    ///
    /// # Safety
    /// When `count` is not 0: `head` starts a chain of `count` NBLs of this
    /// pool, ending at `tail`, that are ours (never sent, or given back by
    /// NDIS) and on no other list.
    unsafe fn put(&mut self, head: *mut NET_BUFFER_LIST, tail: *mut NET_BUFFER_LIST, count: usize) {
        if count == 0 {
            return;
        }
        // SAFETY: the chain's NBLs came from this pool and are ours again
        // (the caller's promise).
        let t = unsafe { &mut *tail };
        t.anon.anon.Next = self.free_head;
        self.free_head = head;
        self.free_count += count;
    }

    /// Frees every NBL, MDL and buffer, and the NBL pool. All NBLs must be
    /// back (the binding is Paused or closing); any that are not are leaked
    /// rather than freed under NDIS.
    pub(crate) fn release_all(&mut self) {
        if self.free_count != self.total {
            crate::safety_net!("send pool released with {} NBLs in flight; leaking them", self.total - self.free_count);
            for chunk in self.chunks.drain(..) {
                core::mem::forget(chunk);
            }
        } else {
            for chunk in &mut self.chunks {
                Self::free_chunk(chunk);
            }
            self.chunks.clear();
        }
        self.free_head = ptr::null_mut();
        self.free_count = 0;
        self.total = 0;
        if !self.nbl_pool.is_null() {
            // SAFETY: every NBL of the pool is freed (or deliberately leaked
            // above, in which case NDIS reports the leak).
            unsafe { NdisFreeNetBufferListPool(self.nbl_pool) };
            self.nbl_pool = ptr::null_mut();
        }
    }
}

impl Drop for SendPool {
    fn drop(&mut self) {
        self.release_all();
    }
}

/// Why a send could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Sends may not reach NDIS now: the binding is not Running (or NDIS has
    /// not finished restarting it).
    NotRunning,
    /// No send NBL is free and the pool cannot grow.
    NoResources,
}

/// NBLs taken from the pool, being filled; `send` hands them to NDIS.
///
/// Holding one means: sends could reach NDIS when it was made, its gate is
/// held (so a pause cannot begin until `send` returns), and the binding
/// counts `taken` NBLs in flight.
pub struct SendBatch<'b, T: Protocol> {
    binding: &'b Binding<T>,
    /// The binding's NDIS handle, read once (every NBL's SourceHandle).
    handle: NDIS_HANDLE,
    gate: Option<GateGuard<'b>>,
    head: *mut NET_BUFFER_LIST,
    next: *mut NET_BUFFER_LIST,
    last_filled: *mut NET_BUFFER_LIST,
    filled: usize,
    taken: usize,
    bytes: u64,
    /// What the frames must fit, as it was when the NBLs were taken
    /// (`Core::send_shape`, which cannot change before they are back).
    shape: SendShape,
}

impl<T: Protocol> Binding<T> {
    /// Takes up to `want` send NBLs, if sends may reach NDIS. The batch
    /// holds the send gate with its lock state in `gate_state`, in the
    /// caller's frame.
    pub fn begin_send<'b>(&'b self, gate_state: &'b mut GateState, want: usize) -> Result<SendBatch<'b, T>, SendError> {
        let gate = self.gate().read(gate_state, Irql::AtMostDispatch);
        let (head, taken, shape) = {
            let mut c = self.core.lock_dpr(gate.at_dispatch());
            if !c.ndis_running || c.low_power {
                return Err(SendError::NotRunning);
            }
            let (head, n) = c.pool.take(want);
            c.sends_in_flight += n as u64;
            (head, n, c.send_shape)
        };
        if taken == 0 {
            return Err(SendError::NoResources);
        }
        Ok(SendBatch {
            binding: self,
            handle: self.ndis_handle(),
            gate: Some(gate),
            head,
            next: head,
            last_filled: ptr::null_mut(),
            filled: 0,
            taken,
            bytes: 0,
            shape,
        })
    }
}

impl<T: Protocol> SendBatch<'_, T> {
    /// The adapter's MAC options these NBLs go out under (where a tag may
    /// go depends on them): those of the restart NDIS last made, which no
    /// restart changes before the batch is back.
    pub fn mac_options(&self) -> u32 {
        self.shape.mac_options
    }

    /// NBLs taken; at most this many frames can be pushed.
    pub fn capacity(&self) -> usize {
        self.taken
    }

    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Copies `frame` into the next NBL, with its 802.1Q tag where `tag`
    /// says: in the NBL's `Ieee8021QNetBufferListInfo` (the adapter inserts
    /// it), or written into the frame after its two MAC addresses (TPID
    /// 0x8100, then the TCI). `owner` comes back in the send completion,
    /// whole, with `frame.len()` (the bytes the caller gave).
    /// Returns false when the batch is full or the frame is longer than the
    /// binding's MTU allows now (the caller checked it against the MTU it
    /// read earlier, which a pause and a restart may have changed since).
    #[inline]
    pub fn push(&mut self, frame: &[u8], tag: TagPlacement, owner: u64) -> bool {
        let nbl = self.next;
        let inline = match tag {
            TagPlacement::Inline(t) => Some(t),
            _ => None,
        };
        if nbl.is_null() {
            return false;
        }
        let len = frame.len() + tag.added_len();
        // SAFETY: `nbl` was taken from the pool for this batch and NDIS
        // does not own it.
        let n = unsafe { &mut *nbl };
        // Its buffer (of `cap` bytes) and size are in ProtocolReserved (pool
        // invariant).
        let cap = n.ProtocolReserved[2] as u32 as usize;
        if len > cap || !tag.fits(frame, self.shape.max_frame) {
            return false;
        }
        // SAFETY: `len <= cap` bytes of the NBL's buffer, which nothing else
        // references while the batch holds the NBL.
        let buf = unsafe { core::slice::from_raw_parts_mut(n.ProtocolReserved[1].cast::<u8>(), len) };
        copy_tagged(frame, inline, buf);
        // A frame longer than the untagged largest goes only with its own
        // tag, whose TPID is read again from the copy: `frame` may be user
        // memory (a WriteFile's direct buffer), which its user can rewrite
        // after the check above, and the copy is what NDIS sends.
        if len > self.shape.max_frame && matches!(tag, TagPlacement::None) && !tag.fits(buf, self.shape.max_frame) {
            return false;
        }
        // SAFETY: the NBL's one NET_BUFFER, which describes that buffer and
        // is ours as the NBL is.
        let nb = unsafe { &mut *first_nb(n) };
        nb.anon.anon.anon.DataLength = len as u32;
        nb.anon.anon.CurrentMdl = nb_fields(nb).MdlChain;
        nb.anon.anon.CurrentMdlOffset = 0;
        nb.anon.anon.DataOffset = 0;
        n.SourceHandle = self.handle;
        n.anon2.Status = NDIS_STATUS_SUCCESS;
        n.NetBufferListInfo[Ieee8021QNetBufferListInfo] = match tag {
            TagPlacement::Info(t) => super::ieee8021q_info(t) as PVOID,
            _ => ptr::null_mut(),
        };
        n.ProtocolReserved[0] = owner as usize as PVOID;
        n.ProtocolReserved[2] = (cap | (frame.len() << 32)) as PVOID;
        self.last_filled = nbl;
        self.next = next_nbl(n);
        self.filled += 1;
        self.bytes += frame.len() as u64;
        true
    }

    /// The last frame `push` filled, as its NBL holds it: what NDIS will
    /// send (the user's buffer it came from may have changed since).
    pub fn last_pushed(&self) -> Option<&[u8]> {
        if self.last_filled.is_null() {
            return None;
        }
        // SAFETY: the last filled NBL is ours until `send` (which takes
        // `self`), and `push` left it unchanged but for `Next`.
        let n = unsafe { &*self.last_filled };
        // SAFETY: its one NET_BUFFER, ours as the NBL is.
        let nb = unsafe { &*first_nb(n) };
        let len = super::nb_data_length(nb) as usize;
        // SAFETY: `push` wrote `len` bytes (at most the buffer's size) at
        // the start of the NBL's buffer (ProtocolReserved[1], pool
        // invariant); nothing writes them while the batch holds the NBL.
        Some(unsafe { core::slice::from_raw_parts(n.ProtocolReserved[1].cast::<u8>(), len) })
    }

    /// Sends the filled NBLs as one chain (FIFO: NDIS keeps the order) and
    /// gives the unused ones back. Returns (frames, bytes) sent.
    pub fn send(mut self) -> (usize, u64) {
        let result = (self.filled, self.bytes);
        let unused = self.next;
        let head = if self.filled == 0 { ptr::null_mut() } else { self.head };
        if !self.last_filled.is_null() {
            // SAFETY: the last filled NBL is ours until the send below.
            let last = unsafe { &mut *self.last_filled };
            last.anon.anon.Next = ptr::null_mut();
        }
        // SAFETY: the NBLs from `next` on were taken and not filled: still
        // chained as taken, never sent.
        unsafe { self.give_back(unused, self.taken - self.filled) };
        if !head.is_null() {
            debug_assert!(self.gate.is_some(), "the gate is held until the send");
            // SAFETY: the chain holds `filled` NBLs of this binding's pool,
            // each with SourceHandle set; from here NDIS owns them until
            // `send_net_buffer_lists_complete`. The gate (held by `self`)
            // keeps a pause from beginning across the call, at
            // DISPATCH_LEVEL.
            unsafe { NdisSendNetBufferLists(self.handle, head, 0, NDIS_SEND_FLAGS_DISPATCH_LEVEL) };
        }
        self.taken = 0;
        self.filled = 0;
        self.head = ptr::null_mut();
        self.next = ptr::null_mut();
        self.gate = None;
        result
    }

    /// Puts `count` NBLs starting at `first` back in the pool.
    ///
    /// # Safety
    /// When `count` is not 0: `first` starts `count` NBLs this batch took
    /// and never sent, still chained as taken.
    unsafe fn give_back(&mut self, first: *mut NET_BUFFER_LIST, count: usize) {
        if count == 0 {
            return;
        }
        let mut tail = first;
        for _ in 1..count {
            // SAFETY: the unused NBLs are still chained as taken, and ours.
            tail = next_nbl(unsafe { &*tail });
        }
        let gate = self.gate.as_ref().expect("gate held");
        let mut c = self.binding.core.lock_dpr(gate.at_dispatch());
        // SAFETY: `count` NBLs of the binding's pool from `first` to
        // `tail`, never sent (the caller's promise).
        unsafe { c.pool.put(first, tail, count) };
        c.sends_in_flight -= count as u64;
        // The gate keeps a pause from beginning, so none waits for these.
    }
}

impl<T: Protocol> Drop for SendBatch<'_, T> {
    fn drop(&mut self) {
        if self.taken > 0 {
            let head = self.head;
            let n = self.taken;
            // SAFETY: a batch dropped unsent: every NBL it took is still
            // chained from `head` as taken.
            unsafe { self.give_back(head, n) };
        }
    }
}

/// `ProtocolSendNetBufferListsComplete`.
pub(crate) unsafe extern "win64" fn send_net_buffer_lists_complete<T: Protocol>(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    flags: u32,
) {
    // SAFETY: NDIS passes our binding context and holds its count (the
    // close waits for every send).
    let b = unsafe { binding_arc::<T>(ctx) };
    let irql = irql_from_flag(flags, NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL);
    // NDIS may mix the pool's NBLs and zero-copy ones (a ring in their
    // ProtocolReserved) in one chain: each kind goes its own way. With no
    // zero-copy send in flight (the count rises before NDIS sees one), the
    // chain is all the pool's.
    let (pool_head, zc_head, zc) = if b.zc_in_flight.load(Ordering::Acquire) == 0 {
        (nbls, ptr::null_mut(), 0)
    } else {
        // SAFETY: NDIS gave the chain back: its NBLs are ours again.
        unsafe { split_completed(nbls) }
    };
    let mut walk = CompletionWalk { cur: pool_head, tail: ptr::null_mut(), count: 0 };
    if !pool_head.is_null() {
        b.proto().send_complete(&b, &mut walk);
        // Drain what the logic did not look at, to find the tail and count.
        for _ in walk.by_ref() {}
    }
    if !zc_head.is_null() {
        // SAFETY: the chain's zero-copy NBLs, given back by NDIS: each
        // names its ring, whose anchor counted it at the send.
        let returns = unsafe { ZcReturns::completed(zc_head) };
        b.proto().ring_send_complete(&b, returns);
        b.zc_in_flight.fetch_sub(zc, Ordering::Release);
    }
    let total = walk.count + zc;
    if total == 0 {
        return;
    }
    let ready = {
        let mut c = b.core.lock_at(irql);
        // SAFETY: the walk went over the chain's pool NBLs (given back by
        // NDIS, ours): `walk.count` of them, ending at `walk.tail`.
        unsafe { c.pool.put(pool_head, walk.tail, walk.count) };
        c.sends_in_flight -= total as u64;
        b.pause_ready(&mut c)
    };
    if let Some(n) = ready {
        b.finish_pause(n);
    }
}

/// Splits a completed chain into the pool's NBLs and zero-copy ones, each
/// in its original order. Returns (pool chain, zero-copy chain, zero-copy
/// count). A chain of zero-copy NBLs only (a ring's kick) is looked at,
/// not relinked.
///
/// # Safety
/// `head` is a chain (or null) NDIS gave back: its NBLs are ours.
unsafe fn split_completed(head: *mut NET_BUFFER_LIST) -> (*mut NET_BUFFER_LIST, *mut NET_BUFFER_LIST, usize) {
    let (mut cur, mut zc) = (head, 0);
    while !cur.is_null() {
        // SAFETY: NDIS gave the chain back: its NBLs are ours again.
        let n = unsafe { &*cur };
        if n.ProtocolReserved[RESERVED_RING].is_null() {
            // SAFETY: the caller's chain.
            return unsafe { split_mixed(head) };
        }
        zc += 1;
        cur = next_nbl(n);
    }
    (ptr::null_mut(), head, zc)
}

/// `split_completed` of a chain with some of the pool's NBLs.
///
/// # Safety
/// As for `split_completed`.
#[cold]
unsafe fn split_mixed(head: *mut NET_BUFFER_LIST) -> (*mut NET_BUFFER_LIST, *mut NET_BUFFER_LIST, usize) {
    let mut chains = [NblLinks::EMPTY; 2];
    let (mut cur, mut zc) = (head, 0);
    while !cur.is_null() {
        // SAFETY: NDIS gave the chain back: its NBLs are ours again.
        let n = unsafe { &mut *cur };
        let next = next_nbl(n);
        let k = usize::from(!n.ProtocolReserved[RESERVED_RING].is_null());
        // SAFETY: ours, and off the chain NDIS gave back (its `Next` was
        // read).
        unsafe { chains[k].append(cur) };
        zc += k;
        cur = next;
    }
    (chains[0].head(), chains[1].head(), zc)
}

/// Walks a completed chain, yielding (tag, bytes, status) per NBL.
struct CompletionWalk {
    cur: *mut NET_BUFFER_LIST,
    tail: *mut NET_BUFFER_LIST,
    count: usize,
}

impl Iterator for CompletionWalk {
    type Item = (u64, u32, NdisStatus);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: NDIS gave these NBLs back: they are ours again.
        let n = unsafe { &*self.cur };
        let owner = n.ProtocolReserved[0] as usize as u64;
        let len = (n.ProtocolReserved[2] as usize >> 32) as u32;
        // SAFETY: a status is a plain integer in either union member.
        let status = unsafe { n.anon2.Status };
        self.tail = self.cur;
        self.cur = next_nbl(n);
        self.count += 1;
        Some((owner, len, NdisStatus(status)))
    }
}
