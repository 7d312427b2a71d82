//! NET_BUFFER_LIST ownership.
//!
//! Send: the binding owns a `SendPool` of preallocated NBLs, each with one
//! NET_BUFFER and one MDL over a buffer of its own. `Binding::begin_send`
//! takes NBLs out of the pool only while the binding is Running (the pool
//! lock and the binding's gate prove it) and counts them in flight;
//! `SendBatch::send` gives them to NDIS, after which nothing in rawnic can
//! reach them; `send_net_buffer_lists_complete` takes them back, in any
//! order and in chains that mix sends, and puts them back in the pool.
//!
//! Receive: `Indication` walks what NDIS indicated. A frame is copied out,
//! or, when NDIS allows it (no `NDIS_RECEIVE_FLAGS_RESOURCES`) and the
//! binding's budget has room, its NBL is retained: the `RetainedFrame`
//! keeps a reference, and the NBL goes back to NDIS with
//! `NdisReturnNetBufferLists` when the last reference drops. Everything not
//! retained is returned before the indication handler returns.

use super::alloc::{try_vec, AllocError};
use super::protocol::{binding_ref, irql_from_flag, Binding, Protocol};
use super::sync::Irql;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use ndis_sys::*;

/// NBLs a pool starts with, and grows by.
const CHUNK_SLOTS: usize = 256;
/// Most send NBLs one binding may own.
pub const MAX_SEND_NBLS: usize = 16 * 1024;
/// Most received NBLs one binding may retain at a time.
pub const RETAIN_BUDGET: usize = 64;

/// One frame's send buffer size for `mtu`: the frame, an 802.1Q tag of
/// slack, rounded to a cache line.
fn slot_size(mtu: u32) -> usize {
    (mtu as usize + 14 + 4 + 63) & !63
}

/// `NDIS_NET_BUFFER_LIST_8021Q_INFO` from an 802.1Q TCI.
pub fn ieee8021q_info(tci: u16) -> usize {
    let priority = (tci >> 13) as usize;
    let cfi = ((tci >> 12) & 1) as usize;
    let vlan = (tci & 0x0FFF) as usize;
    priority | (cfi << 3) | (vlan << 4)
}

/// The TCI an `NDIS_NET_BUFFER_LIST_8021Q_INFO` describes.
pub fn tci_from_info(info: usize) -> u16 {
    let priority = (info & 7) as u16;
    let cfi = ((info >> 3) & 1) as u16;
    let vlan = ((info >> 4) & 0x0FFF) as u16;
    (priority << 13) | (cfi << 12) | vlan
}

struct PoolChunk {
    mem: Box<[u8]>,
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
/// `ProtocolReserved[2]` the buffer's size.
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
    /// A pool for frames of `mtu` bytes, with its first chunk.
    pub(crate) fn new(protocol_handle: NDIS_HANDLE, mtu: u32) -> Result<Self, AllocError> {
        let mut params = NET_BUFFER_LIST_POOL_PARAMETERS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
                Size: NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            },
            ProtocolId: NDIS_PROTOCOL_ID_DEFAULT,
            fAllocateNetBuffer: 1,
            ContextSize: 0,
            PoolTag: super::alloc::POOL_TAG,
            DataSize: 0,
        };
        // SAFETY: the parameters are initialised; the handle is the
        // protocol's registration handle.
        let nbl_pool = unsafe { NdisAllocateNetBufferListPool(protocol_handle, &mut params) };
        if nbl_pool.is_null() {
            return Err(AllocError);
        }
        let mut pool = SendPool {
            nbl_pool,
            protocol_handle,
            slot_size: slot_size(mtu),
            chunks: Vec::new(),
            free_head: ptr::null_mut(),
            free_count: 0,
            total: 0,
            peak_in_use: 0,
        };
        pool.grow()?;
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

    /// Adds a chunk of NBLs.
    fn grow(&mut self) -> Result<(), AllocError> {
        if self.nbl_pool.is_null() || self.total + CHUNK_SLOTS > MAX_SEND_NBLS {
            return Err(AllocError);
        }
        let size = self.slot_size.checked_mul(CHUNK_SLOTS).ok_or(AllocError)?;
        let mut mem = try_vec::<u8>(size)?;
        mem.resize(size, 0);
        let mut chunk = PoolChunk { mem: mem.into_boxed_slice(), nbls: try_vec(CHUNK_SLOTS)?, mdls: try_vec(CHUNK_SLOTS)? };
        let base = chunk.mem.as_mut_ptr();
        for i in 0..CHUNK_SLOTS {
            // SAFETY: `i * slot_size` is inside `mem`, which lives as long as
            // the chunk (and so as long as the MDL and NBL over it).
            let buf = unsafe { base.add(i * self.slot_size) };
            // SAFETY: `buf` is non-paged pool of `slot_size` bytes.
            let mdl = unsafe { NdisAllocateMdl(self.protocol_handle, buf.cast(), self.slot_size as u32) };
            if mdl.is_null() {
                Self::free_chunk(&mut chunk);
                return Err(AllocError);
            }
            chunk.mdls.push(mdl);
            // SAFETY: the pool allocates NET_BUFFERs with its NBLs; the MDL
            // describes `slot_size` bytes.
            let nbl = unsafe {
                NdisAllocateNetBufferAndNetBufferList(self.nbl_pool, 0, 0, mdl, 0, self.slot_size)
            };
            if nbl.is_null() {
                Self::free_chunk(&mut chunk);
                return Err(AllocError);
            }
            // SAFETY: the NBL is new and ours.
            unsafe {
                (*nbl).ProtocolReserved[1] = buf.cast();
                (*nbl).ProtocolReserved[2] = self.slot_size as PVOID;
            }
            chunk.nbls.push(nbl);
        }
        for &nbl in &chunk.nbls {
            // SAFETY: the NBLs are ours and not on any list yet.
            unsafe { (*nbl).anon.anon.Next = self.free_head };
            self.free_head = nbl;
        }
        self.free_count += CHUNK_SLOTS;
        self.total += CHUNK_SLOTS;
        self.chunks.push(chunk);
        Ok(())
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
            let next = unsafe { (*cur).anon.anon.Next };
            if i + 1 == n {
                // SAFETY: as above; cut the chain after the n-th.
                unsafe { (*cur).anon.anon.Next = ptr::null_mut() };
            }
            cur = next;
        }
        self.free_head = if n == 0 { head } else { cur };
        self.free_count -= n;
        self.peak_in_use = self.peak_in_use.max(self.total - self.free_count);
        (if n == 0 { ptr::null_mut() } else { head }, n)
    }

    /// Puts back a chain of `count` NBLs whose last one is `tail`.
    fn put(&mut self, head: *mut NET_BUFFER_LIST, tail: *mut NET_BUFFER_LIST, count: usize) {
        if count == 0 {
            return;
        }
        // SAFETY: the chain's NBLs came from this pool and are ours again.
        unsafe { (*tail).anon.anon.Next = self.free_head };
        self.free_head = head;
        self.free_count += count;
    }

    /// Frees every NBL, MDL and buffer, and the NBL pool. All NBLs must be
    /// back (the binding is Paused or closing); any that are not are leaked
    /// rather than freed under NDIS.
    pub(crate) fn release_all(&mut self) {
        if self.free_count != self.total {
            crate::kprint!(
                super::debug::LEVEL_ERROR,
                "send pool released with {} NBLs in flight; leaking them",
                self.total - self.free_count
            );
            self.chunks.clear();
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

    /// Rebuilds the pool for a new MTU. Only while nothing is in flight.
    pub(crate) fn resize(&mut self, mtu: u32) -> Result<(), AllocError> {
        let size = slot_size(mtu);
        if size == self.slot_size || self.free_count != self.total {
            return if size == self.slot_size { Ok(()) } else { Err(AllocError) };
        }
        let chunks = self.chunks.len().max(1);
        for chunk in &mut self.chunks {
            Self::free_chunk(chunk);
        }
        self.chunks.clear();
        self.free_head = ptr::null_mut();
        self.free_count = 0;
        self.total = 0;
        self.slot_size = size;
        for _ in 0..chunks {
            self.grow()?;
        }
        Ok(())
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
    /// The binding is not Running.
    NotRunning,
    /// No send NBL is free and the pool cannot grow.
    NoResources,
}

/// NBLs taken from the pool, being filled; `send` hands them to NDIS.
///
/// Holding one means: the binding was Running when it was made, its gate
/// is held (so it stays Running until `send` returns), and the binding
/// counts `taken` NBLs in flight.
pub struct SendBatch<'b, T: Protocol> {
    binding: &'b Binding<T>,
    /// The binding's NDIS handle, read once (every NBL's SourceHandle).
    handle: NDIS_HANDLE,
    gate: Option<super::sync::GateGuard<'b>>,
    head: *mut NET_BUFFER_LIST,
    next: *mut NET_BUFFER_LIST,
    last_filled: *mut NET_BUFFER_LIST,
    filled: usize,
    taken: usize,
    bytes: u64,
}

impl<T: Protocol> Binding<T> {
    /// Takes up to `want` send NBLs, if the binding is Running.
    pub fn begin_send(&self, want: usize) -> Result<SendBatch<'_, T>, SendError> {
        let gate = self.gate().read(Irql::AtMostDispatch);
        let (head, taken) = {
            let mut c = self.core.lock_dpr(gate.at_dispatch());
            if !c.sm.is_running() {
                return Err(SendError::NotRunning);
            }
            let (head, n) = c.pool.take(want);
            c.sends_in_flight += n as u64;
            (head, n)
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
        })
    }
}

impl<T: Protocol> SendBatch<'_, T> {
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

    /// Copies `frame` into the next NBL. `tci` asks NDIS to send it with
    /// 802.1Q information; `tag` comes back in the send completion.
    /// Returns false when the batch is full or the frame does not fit.
    #[inline]
    pub fn push(&mut self, frame: &[u8], tci: Option<u16>, tag: u32) -> bool {
        let nbl = self.next;
        if nbl.is_null() {
            return false;
        }
        // SAFETY: `nbl` was taken from the pool for this batch and NDIS
        // does not own it; its buffer and size are in ProtocolReserved
        // (pool invariant), and its one NET_BUFFER describes that buffer.
        unsafe {
            let n = &mut *nbl;
            let cap = n.ProtocolReserved[2] as usize;
            if frame.len() > cap {
                return false;
            }
            ptr::copy_nonoverlapping(frame.as_ptr(), n.ProtocolReserved[1].cast::<u8>(), frame.len());
            let nb = &mut *n.anon.anon.FirstNetBuffer;
            nb.anon.anon.anon.DataLength = frame.len() as u32;
            nb.anon.anon.CurrentMdl = nb.anon.anon.MdlChain;
            nb.anon.anon.CurrentMdlOffset = 0;
            nb.anon.anon.DataOffset = 0;
            n.SourceHandle = self.handle;
            n.anon2.Status = NDIS_STATUS_SUCCESS;
            n.NetBufferListInfo[Ieee8021QNetBufferListInfo] = match tci {
                Some(t) => ieee8021q_info(t) as PVOID,
                None => ptr::null_mut(),
            };
            n.ProtocolReserved[0] = ((tag as usize) | (frame.len() << 32)) as PVOID;
            self.last_filled = nbl;
            self.next = n.anon.anon.Next;
        }
        self.filled += 1;
        self.bytes += frame.len() as u64;
        true
    }

    /// Sends the filled NBLs as one chain (FIFO: NDIS keeps the order) and
    /// gives the unused ones back. Returns (frames, bytes) sent.
    pub fn send(mut self) -> (usize, u64) {
        let result = (self.filled, self.bytes);
        let unused = self.next;
        let head = if self.filled == 0 { ptr::null_mut() } else { self.head };
        if !self.last_filled.is_null() {
            // SAFETY: the last filled NBL is ours until the send below.
            unsafe { (*self.last_filled).anon.anon.Next = ptr::null_mut() };
        }
        self.give_back(unused, self.taken - self.filled);
        if !head.is_null() {
            debug_assert!(self.gate.is_some(), "the gate is held until the send");
            // SAFETY: the chain holds `filled` NBLs of this binding's pool,
            // each with SourceHandle set; from here NDIS owns them until
            // `send_net_buffer_lists_complete`. The gate (held by `self`)
            // keeps the binding Running across the call, at DISPATCH_LEVEL.
            unsafe {
                NdisSendNetBufferLists(self.handle, head, 0, NDIS_SEND_FLAGS_DISPATCH_LEVEL)
            };
        }
        self.taken = 0;
        self.filled = 0;
        self.head = ptr::null_mut();
        self.next = ptr::null_mut();
        self.gate = None;
        result
    }

    /// Puts `count` NBLs starting at `first` back in the pool.
    fn give_back(&mut self, first: *mut NET_BUFFER_LIST, count: usize) {
        if count == 0 {
            return;
        }
        let mut tail = first;
        for _ in 1..count {
            // SAFETY: the unused NBLs are still chained as taken, and ours.
            tail = unsafe { (*tail).anon.anon.Next };
        }
        let gate = self.gate.as_ref().expect("gate held");
        let ready = {
            let mut c = self.binding.core.lock_dpr(gate.at_dispatch());
            c.pool.put(first, tail, count);
            c.sends_in_flight -= count as u64;
            self.binding.pause_ready(&mut c)
        };
        debug_assert!(ready.is_none(), "the gate keeps a pause from starting");
        let _ = ready;
    }
}

impl<T: Protocol> Drop for SendBatch<'_, T> {
    fn drop(&mut self) {
        if self.taken > 0 {
            let head = self.head;
            let n = self.taken;
            self.give_back(head, n);
        }
    }
}

/// `ProtocolSendNetBufferListsComplete`.
pub(crate) unsafe extern "win64" fn send_net_buffer_lists_complete<T: Protocol>(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    flags: u32,
) {
    // SAFETY: NDIS passes our binding context, held while it runs.
    let b = unsafe { binding_ref::<T>(ctx) };
    let irql = irql_from_flag(flags, NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL);
    let mut walk = CompletionWalk { cur: nbls, tail: ptr::null_mut(), count: 0 };
    b.proto_send_complete(&mut walk);
    // Drain what the logic did not look at, to find the tail and count.
    for _ in walk.by_ref() {}
    if walk.count == 0 {
        return;
    }
    let ready = {
        let mut c = b.core.lock_at(irql);
        c.pool.put(nbls, walk.tail, walk.count);
        c.sends_in_flight -= walk.count as u64;
        b.pause_ready(&mut c)
    };
    if let Some(n) = ready {
        b.finish_pause(n);
    }
}

/// Walks a completed chain, yielding (tag, bytes, status) per NBL.
struct CompletionWalk {
    cur: *mut NET_BUFFER_LIST,
    tail: *mut NET_BUFFER_LIST,
    count: usize,
}

impl Iterator for CompletionWalk {
    type Item = (u32, u32, NDIS_STATUS);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: NDIS gave these NBLs back: they are ours again.
        let n = unsafe { &*self.cur };
        let word = n.ProtocolReserved[0] as usize;
        // SAFETY: a status is a plain integer in either union member.
        let status = unsafe { n.anon2.Status };
        self.tail = self.cur;
        // SAFETY: as above.
        self.cur = unsafe { n.anon.anon.Next };
        self.count += 1;
        Some((word as u32, (word >> 32) as u32, status))
    }
}

// ---------------------------------------------------------------------------
// Receive
// ---------------------------------------------------------------------------

/// Copies `len` bytes of a NET_BUFFER's data, from `offset`, into `dst`.
/// Returns the bytes copied.
///
/// # Safety
/// `nb` is a valid NET_BUFFER whose MDL chain describes at least its
/// `DataLength` bytes, owned by the caller for the call.
unsafe fn copy_from_nb(nb: *const NET_BUFFER, offset: usize, dst: &mut [u8]) -> usize {
    // SAFETY: valid per the caller.
    let nb = unsafe { &*nb };
    // SAFETY: plain reads of the NET_BUFFER's head.
    let (mut mdl, mut skip, total) = unsafe {
        (nb.anon.anon.CurrentMdl, nb.anon.anon.CurrentMdlOffset as usize, nb.anon.anon.anon.DataLength as usize)
    };
    if offset >= total {
        return 0;
    }
    let want = dst.len().min(total - offset);
    skip += offset;
    let mut done = 0;
    while done < want && !mdl.is_null() {
        // SAFETY: `mdl` is in the NET_BUFFER's chain (caller).
        let m = unsafe { &*mdl };
        let count = m.ByteCount as usize;
        if skip >= count {
            skip -= count;
            mdl = m.Next;
            continue;
        }
        // SAFETY: a valid MDL; mapping it is what MmGetSystemAddressForMdlSafe does.
        let va = unsafe { system_address(mdl) };
        if va.is_null() {
            break;
        }
        let n = (count - skip).min(want - done);
        // SAFETY: the mapping covers `count` bytes; `skip + n <= count` and
        // `done + n <= dst.len()`.
        unsafe { ptr::copy_nonoverlapping(va.add(skip), dst.as_mut_ptr().add(done), n) };
        done += n;
        skip = 0;
        mdl = m.Next;
    }
    done
}

/// `MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute)`.
///
/// # Safety
/// `mdl` is a valid MDL of locked or non-paged memory.
pub(crate) unsafe fn system_address(mdl: *mut MDL) -> *mut u8 {
    // SAFETY: valid per the caller.
    let m = unsafe { &*mdl };
    if m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        m.MappedSystemVa.cast()
    } else {
        // SAFETY: maps the locked pages; returns null on failure.
        unsafe {
            MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, ptr::null_mut(), 0, NormalPagePriorityNoExecute)
                .cast()
        }
    }
}

/// Frames handed to the logic at a time.
pub const CHUNK: usize = 32;

/// One received frame (a NET_BUFFER), valid during the indication.
#[derive(Clone, Copy)]
pub struct RecvFrame<'a> {
    nb: NonNull<NET_BUFFER>,
    len: u32,
    tci: u16,
    /// Index of its NBL in the indication's `open` table.
    nbl: u8,
    _ind: PhantomData<&'a ()>,
}

impl<'a> RecvFrame<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 802.1Q TCI the NIC reported (0 when none).
    pub fn tci(&self) -> u16 {
        self.tci
    }

    /// Copies from `offset` into `dst`; returns the bytes copied.
    #[inline]
    pub fn copy_to(&self, offset: usize, dst: &mut [u8]) -> usize {
        // SAFETY: the frame is part of an indication the caller is inside
        // of (the lifetime ties it to the `Indication`).
        unsafe { copy_from_nb(self.nb.as_ptr(), offset, dst) }
    }

    /// The frame's first `N` bytes (fewer if it is shorter): read in place
    /// when the first MDL holds them mapped (what `NdisGetDataBuffer`
    /// does), else copied into `scratch`.
    #[inline]
    pub fn head<'s, const N: usize>(&self, scratch: &'s mut [u8; N]) -> &'s [u8]
    where
        'a: 's,
    {
        let want = N.min(self.len as usize);
        // SAFETY: the frame's NET_BUFFER and its first MDL belong to the
        // indication the caller is inside of (`'a`, which outlives `'s`);
        // a mapped MDL's `MappedSystemVa` covers its `ByteCount` bytes, of
        // which `[offset, offset + want)` is checked to be inside.
        unsafe {
            let nb = &*self.nb.as_ptr();
            let mdl = nb.anon.anon.CurrentMdl;
            let offset = nb.anon.anon.CurrentMdlOffset as usize;
            if !mdl.is_null() {
                let m = &*mdl;
                let mapped = m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
                if mapped && !m.MappedSystemVa.is_null() && (m.ByteCount as usize).saturating_sub(offset) >= want {
                    return core::slice::from_raw_parts(m.MappedSystemVa.cast::<u8>().add(offset), want);
                }
            }
        }
        let n = self.copy_to(0, &mut scratch[..want]);
        &scratch[..n]
    }
}

/// An NBL of the indication whose frames are being handed out.
#[derive(Clone, Copy)]
struct OpenNbl {
    nbl: *mut NET_BUFFER_LIST,
    /// Its retention slot, once a frame of it is retained.
    slot: Option<u16>,
    /// All its frames have been handed out.
    finished: bool,
}

const NO_NBL: OpenNbl = OpenNbl { nbl: ptr::null_mut(), slot: None, finished: false };

/// A receive indication, walked by the logic a chunk of frames at a time.
///
/// Every NBL goes back to NDIS before the handler returns unless a frame of
/// it was retained; a retained NBL also holds an "indication" reference
/// until all its frames were handed out, so it cannot go back while the
/// walk still reads it.
pub struct Indication<'a, T: Protocol> {
    binding: &'a Binding<T>,
    next_nbl: *mut NET_BUFFER_LIST,
    cur_nb: *mut NET_BUFFER,
    cur_tci: u16,
    cur: Option<u8>,
    open: [OpenNbl; CHUNK],
    n_open: usize,
    resources: bool,
    irql: Irql<'a>,
    returns: ReturnChain,
    /// Frames NDIS indicated.
    pub frames_indicated: u32,
}

impl<'a, T: Protocol> Indication<'a, T> {
    /// Whether NDIS asked for its NBLs back on return (low resources):
    /// then every frame must be copied.
    pub fn must_copy(&self) -> bool {
        self.resources
    }

    pub fn irql(&self) -> Irql<'a> {
        self.irql
    }

    /// The next frames (up to `CHUNK`), or `None` when all were handed out.
    pub fn next_chunk(&mut self) -> Option<Chunk<'_, 'a, T>> {
        let mut frames = [RecvFrame { nb: NonNull::dangling(), len: 0, tci: 0, nbl: 0, _ind: PhantomData }; CHUNK];
        let mut n = 0;
        loop {
            if self.cur_nb.is_null() {
                if let Some(i) = self.cur.take() {
                    self.open[i as usize].finished = true;
                }
                if self.next_nbl.is_null() || self.n_open == CHUNK {
                    break;
                }
                let nbl = self.next_nbl;
                // SAFETY: indicated NBLs, owned for the duration of the call;
                // unlinking them is ours to do.
                let (next, first_nb, info) = unsafe {
                    let x = &mut *nbl;
                    let next = x.anon.anon.Next;
                    x.anon.anon.Next = ptr::null_mut();
                    (next, x.anon.anon.FirstNetBuffer, x.NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize)
                };
                self.next_nbl = next;
                self.open[self.n_open] = OpenNbl { nbl, slot: None, finished: false };
                self.cur = Some(self.n_open as u8);
                self.n_open += 1;
                self.cur_nb = first_nb;
                self.cur_tci = tci_from_info(info);
                continue;
            }
            if n == CHUNK {
                break;
            }
            let nb = self.cur_nb;
            // SAFETY: a NET_BUFFER of an indicated NBL.
            let (len, next) = unsafe { ((*nb).anon.anon.anon.DataLength, (*nb).anon.anon.Next) };
            frames[n] = RecvFrame {
                // SAFETY: checked non-null above.
                nb: unsafe { NonNull::new_unchecked(nb) },
                len,
                tci: self.cur_tci,
                nbl: self.cur.expect("an NBL is open"),
                _ind: PhantomData,
            };
            n += 1;
            self.cur_nb = next;
        }
        if n == 0 {
            self.end_chunk();
            return None;
        }
        Some(Chunk { ind: self, frames, n })
    }

    /// Settles the NBLs whose frames are all handed out: back to NDIS, or
    /// (retained) their indication reference dropped.
    fn end_chunk(&mut self) {
        let mut keep = NO_NBL;
        for i in 0..self.n_open {
            let o = self.open[i];
            if !o.finished {
                keep = o;
                continue;
            }
            match o.slot {
                None => self.returns.push(o.nbl),
                Some(s) => self.binding.retain_host().release(s),
            }
        }
        // Entries at and past `n_open` are never read: no need to clear them.
        if keep.nbl.is_null() {
            self.n_open = 0;
            self.cur = None;
        } else {
            self.open[0] = keep;
            self.n_open = 1;
            self.cur = Some(0);
        }
    }
}

/// Up to `CHUNK` frames of an indication.
pub struct Chunk<'i, 'a, T: Protocol> {
    ind: &'i mut Indication<'a, T>,
    frames: [RecvFrame<'a>; CHUNK],
    n: usize,
}

impl<'a, T: Protocol> Chunk<'_, 'a, T> {
    pub fn frames(&self) -> &[RecvFrame<'a>] {
        &self.frames[..self.n]
    }

    pub fn must_copy(&self) -> bool {
        self.ind.resources
    }

    /// Keeps frame `i` of this chunk after the indication returns. `None`
    /// when NDIS asked for its resources back or the binding's retention
    /// budget is used up: then copy it.
    pub fn retain(&mut self, i: usize) -> Option<RetainedFrame> {
        if self.ind.resources || i >= self.n {
            return None;
        }
        let f = self.frames[i];
        let host = self.ind.binding.retain_host();
        let open = &mut self.ind.open[f.nbl as usize];
        let slot = match open.slot {
            Some(s) => {
                host.add_ref(s);
                s
            }
            None => {
                let s = host.new_slot(open.nbl, self.ind.irql)?;
                open.slot = Some(s);
                s
            }
        };
        Some(RetainedFrame { host: NonNull::from(host), slot, nb: f.nb, len: f.len, tci: f.tci })
    }
}

impl<T: Protocol> Drop for Chunk<'_, '_, T> {
    fn drop(&mut self) {
        self.ind.end_chunk();
    }
}

/// NBLs to give back to NDIS, chained.
pub struct ReturnChain {
    head: *mut NET_BUFFER_LIST,
    tail: *mut NET_BUFFER_LIST,
    len: usize,
}

impl ReturnChain {
    pub(crate) const fn new() -> Self {
        ReturnChain { head: ptr::null_mut(), tail: ptr::null_mut(), len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, nbl: *mut NET_BUFFER_LIST) {
        // SAFETY: the NBL is an indicated one we own, unlinked.
        unsafe { (*nbl).anon.anon.Next = ptr::null_mut() };
        if self.tail.is_null() {
            self.head = nbl;
        } else {
            // SAFETY: `tail` is on this chain and ours.
            unsafe { (*self.tail).anon.anon.Next = nbl };
        }
        self.tail = nbl;
        self.len += 1;
    }

    /// Appends `other`'s NBLs.
    pub(crate) fn append(&mut self, other: ReturnChain) {
        if other.head.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = other.head;
        } else {
            // SAFETY: `tail` is on this chain and ours; `other` is a chain of
            // NBLs we own.
            unsafe { (*self.tail).anon.anon.Next = other.head };
        }
        self.tail = other.tail;
        self.len += other.len;
    }

    /// `NdisReturnNetBufferLists`.
    pub(crate) fn return_to(self, binding_handle: NDIS_HANDLE, irql: Irql<'_>) {
        if self.head.is_null() {
            return;
        }
        let flags = match irql {
            Irql::Dispatch(_) => NDIS_RETURN_FLAGS_DISPATCH_LEVEL,
            Irql::AtMostDispatch => 0,
        };
        // SAFETY: the chain holds indicated NBLs we own and no longer use.
        unsafe { NdisReturnNetBufferLists(binding_handle, self.head, flags) };
    }
}

/// `ProtocolReceiveNetBufferLists`.
pub(crate) unsafe extern "win64" fn receive_net_buffer_lists<T: Protocol>(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    count: u32,
    flags: u32,
) {
    // SAFETY: NDIS passes our binding context, held while it runs.
    let b = unsafe { binding_ref::<T>(ctx) };
    let irql = irql_from_flag(flags, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL);
    let resources = flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0;
    let gate = b.gate().read(irql);
    let at = gate.at_dispatch();
    let running = {
        let mut c = b.core.lock_dpr(at);
        let running = c.sm.is_running();
        if running {
            c.indicating += 1;
        }
        running
    };
    if !running {
        // Not Running (Pausing, or NDIS misbehaving): give everything back
        // at once.
        drop(gate);
        if !resources {
            let flags = if matches!(irql, Irql::Dispatch(_)) { NDIS_RETURN_FLAGS_DISPATCH_LEVEL } else { 0 };
            // SAFETY: the indicated NBLs, untouched, returned whole.
            unsafe { NdisReturnNetBufferLists(b.ndis_handle(), nbls, flags) };
        }
        return;
    }
    let mut ind = Indication {
        binding: b,
        next_nbl: nbls,
        cur_nb: ptr::null_mut(),
        cur_tci: 0,
        cur: None,
        open: [NO_NBL; CHUNK],
        n_open: 0,
        resources,
        irql: Irql::Dispatch(at),
        returns: ReturnChain::new(),
        frames_indicated: count,
    };
    b.proto_receive(&mut ind);
    // Frames the logic did not walk: their NBLs go back too.
    while ind.next_chunk().is_some() {}
    let own = core::mem::replace(&mut ind.returns, ReturnChain::new());
    // Retained NBLs released meanwhile (here or on other processors) go
    // back in the same call, if this is the last indication running.
    let deferred = {
        let mut c = b.core.lock_dpr(at);
        c.indicating -= 1;
        if c.indicating == 0 {
            core::mem::replace(&mut c.deferred_returns, ReturnChain::new())
        } else {
            ReturnChain::new()
        }
    };
    drop(gate);
    let released = deferred.len() as u64;
    // With NDIS_RECEIVE_FLAGS_RESOURCES this indication's own NBLs are not
    // returned (NDIS takes them back); retained ones always are.
    let mut returns = if resources { ReturnChain::new() } else { own };
    returns.append(deferred);
    returns.return_to(b.ndis_handle(), irql);
    if released != 0 {
        let ready = {
            let mut c = b.core.lock_at(irql);
            c.retained -= released;
            b.pause_ready(&mut c)
        };
        if let Some(n) = ready {
            b.finish_pause(n);
        }
    }
}

/// A received frame rawnic kept after the indication. Its NBL goes back to
/// NDIS when the last `RetainedFrame` of it drops.
///
/// # Invariants
/// `host` is the `RetainTable` of a binding that cannot finish pausing
/// (and so cannot unbind) while this frame exists; `slot` holds a reference
/// counted for this frame; `nb` belongs to that slot's NBL.
pub struct RetainedFrame {
    host: NonNull<dyn RetainHost>,
    slot: u16,
    nb: NonNull<NET_BUFFER>,
    len: u32,
    tci: u16,
}

// SAFETY: a retained NBL may be read and returned from any thread; the
// host is synchronised by its lock.
unsafe impl Send for RetainedFrame {}

impl RetainedFrame {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn tci(&self) -> u16 {
        self.tci
    }

    /// Copies from `offset` into `dst`; returns the bytes copied.
    pub fn copy_to(&self, offset: usize, dst: &mut [u8]) -> usize {
        // SAFETY: the NBL is retained (invariant), so the NET_BUFFER and
        // its memory stay valid and ours.
        unsafe { copy_from_nb(self.nb.as_ptr(), offset, dst) }
    }
}

impl Drop for RetainedFrame {
    fn drop(&mut self) {
        // SAFETY: the host outlives every retained frame (invariant).
        unsafe { self.host.as_ref() }.release(self.slot);
    }
}

/// The binding side of retention, without its type parameter.
pub(crate) trait RetainHost: Sync {
    fn new_slot(&self, nbl: *mut NET_BUFFER_LIST, irql: Irql<'_>) -> Option<u16>;
    fn add_ref(&self, slot: u16);
    fn release(&self, slot: u16);
}

/// Retained NBLs of one binding, with their reference counts.
pub(crate) struct RetainTable {
    slots: [(usize, u32); RETAIN_BUDGET],
    free: Vec<u16>,
}

impl RetainTable {
    pub(crate) fn new() -> Self {
        RetainTable { slots: [(0, 0); RETAIN_BUDGET], free: (0..RETAIN_BUDGET as u16).rev().collect() }
    }
}

impl<T: Protocol> RetainHost for Binding<T> {
    fn new_slot(&self, nbl: *mut NET_BUFFER_LIST, irql: Irql<'_>) -> Option<u16> {
        let mut c = self.core.lock_at(irql);
        let s = c.retain.free.pop()?;
        // One reference for the frame, one for the indication until every
        // frame of the NBL has been handed out.
        c.retain.slots[s as usize] = (nbl as usize, 2);
        c.retained += 1;
        Some(s)
    }

    fn add_ref(&self, slot: u16) {
        let mut c = self.core.lock_at(Irql::AtMostDispatch);
        c.retain.slots[slot as usize].1 += 1;
    }

    fn release(&self, slot: u16) {
        let mut c = self.core.lock();
        let entry = &mut c.retain.slots[slot as usize];
        entry.1 -= 1;
        if entry.1 != 0 {
            return;
        }
        let nbl = entry.0 as *mut NET_BUFFER_LIST;
        entry.0 = 0;
        c.retain.free.push(slot);
        if c.indicating != 0 {
            // The indication that ends last returns it, with its own.
            c.deferred_returns.push(nbl);
            return;
        }
        drop(c);
        let mut chain = ReturnChain::new();
        chain.push(nbl);
        self.release_retained(chain, Irql::AtMostDispatch);
    }
}

impl<T: Protocol> Binding<T> {
    fn retain_host(&self) -> &(dyn RetainHost + 'static) {
        let host: &dyn RetainHost = self;
        // SAFETY: lifetime extension only: a binding outlives its retained
        // frames, because it cannot pause (and so cannot unbind) while any
        // exists (see `RetainedFrame`'s invariant).
        unsafe { core::mem::transmute::<&dyn RetainHost, &(dyn RetainHost + 'static)>(host) }
    }
}

/// Counts of one pool, for statistics.
pub fn pool_counts(p: &SendPool) -> (usize, usize, usize) {
    (p.total, p.free_count, p.peak_in_use)
}

