//! NBL pools, NBLs and MDLs the driver allocates.

use super::*;
use crate::kernel::{DISPATCH_LEVEL, Kernel, check_irql_max};
use crate::nbl::{self, own};
use crate::verifier::{Rule, lock};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// MEMORY_ALLOCATION_ALIGNMENT on x64: the unit context sizes and
/// backfills are counted in.
const ALLOC_ALIGN: u16 = 16;

/// The `ProtocolId` values NET_BUFFER_LIST_POOL_PARAMETERS allows (ndis.h:
/// NDIS_PROTOCOL_ID_DEFAULT, _TCP_IP, _IPX, _NBF).
const PROTOCOL_IDS: [u8; 4] = [NDIS_PROTOCOL_ID_DEFAULT, 0x02, 0x06, 0x07];

pub(super) fn valid_ndis_handle(k: &Kernel, h: NDIS_HANDLE, call: &str) -> bool {
    let ok = k.ndis.protocol().is_some_and(|p| std::ptr::addr_eq(Arc::as_ptr(&p), h))
        || lock(&k.ndis.bindings)
            .iter()
            .any(|b| std::ptr::addr_eq(Arc::as_ptr(b), h) && !b.closed.load(Ordering::Acquire));
    if !ok {
        Violation::new(
            Rule::InvalidParameter,
            call,
            "NdisHandle is not the protocol's registration handle (or an open binding handle)",
        )
        .with_object(h as usize)
        .report();
    }
    ok
}

/// The checks both pool allocations begin with (IRQL, `NdisHandle`, a
/// parameters block whose header is `NDIS_OBJECT_TYPE_DEFAULT`, `revision`
/// and at least `size` bytes); the parameters, or `None` (reported).
///
/// # Safety
/// `p` is null or the driver's parameters block, read for the call.
pub(super) unsafe fn pool_params<'a, P>(
    k: &Kernel,
    h: NDIS_HANDLE,
    p: *mut P,
    call: &str,
    header: impl Fn(&P) -> NDIS_OBJECT_HEADER,
    (revision, size): (u8, u16),
) -> Option<&'a P> {
    check_irql_max(call, DISPATCH_LEVEL);
    if !valid_ndis_handle(k, h, call) {
        return None;
    }
    if p.is_null() {
        Violation::new(Rule::InvalidParameter, call, "null Parameters").report();
        return None;
    }
    // SAFETY: per the caller, not null.
    let pp = unsafe { &*p };
    let hd = header(pp);
    if hd.Type != NDIS_OBJECT_TYPE_DEFAULT || hd.Revision != revision || hd.Size < size {
        refuse_pool(
            call,
            p as usize,
            format!("bad header {{Type {:#x}, Revision {}, Size {:#x}}}", hd.Type, hd.Revision, hd.Size),
        );
        return None;
    }
    Some(pp)
}

/// A pool parameter ndisim refuses: reported, and no pool.
pub(super) fn refuse_pool(call: &str, params: usize, d: String) -> NDIS_HANDLE {
    Violation::new(Rule::InvalidParameter, call, d).with_object(params).report();
    std::ptr::null_mut()
}

/// The live pool `h` names among `pools`, if not `freed`; else `None`,
/// reported as `(freed already, not a pool)`.
pub(super) fn live_pool<P>(
    pools: &Mutex<Vec<Arc<P>>>,
    freed: impl Fn(&P) -> bool,
    h: NDIS_HANDLE,
    call: &str,
    (was_freed, not_one): (&str, &str),
) -> Option<Arc<P>> {
    let p = lock(pools).iter().find(|p| std::ptr::addr_eq(Arc::as_ptr(p), h)).cloned();
    let problem = match p {
        Some(p) if !freed(&p) => return Some(p),
        Some(_) => was_freed,
        None => not_one,
    };
    Violation::new(Rule::InvalidParameter, call, problem).with_object(h as usize).report();
    None
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBufferListPool(
    h: NDIS_HANDLE,
    p: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
) -> NDIS_HANDLE {
    const CALL: &str = "NdisAllocateNetBufferListPool";
    export(CALL, std::ptr::null_mut(), |k| {
        let rev = (NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1, NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1);
        // SAFETY: the driver's parameters.
        let Some(pp) = (unsafe { pool_params(k, h, p, CALL, |pp| pp.Header, rev) }) else {
            return std::ptr::null_mut();
        };
        let refuse = |d: String| refuse_pool(CALL, p as usize, d);
        // NET_BUFFER_LIST_POOL_PARAMETERS (ns-nblapi-net_buffer_list_pool_parameters):
        // miniports, filters and intermediate drivers pass
        // NDIS_PROTOCOL_ID_DEFAULT, a protocol one of the four documented
        // ids; ndisim holds every driver to those four.
        if !PROTOCOL_IDS.contains(&pp.ProtocolId) {
            return refuse(format!("ProtocolId {:#x} is none of the NDIS_PROTOCOL_ID_* values", pp.ProtocolId));
        }
        if pp.ContextSize % ALLOC_ALIGN != 0 {
            return refuse(format!("ContextSize {} is not a multiple of MEMORY_ALLOCATION_ALIGNMENT", pp.ContextSize));
        }
        if pp.PoolTag == 0 {
            return refuse("PoolTag is zero".into());
        }
        if pp.DataSize != 0 && pp.fAllocateNetBuffer == 0 {
            return refuse("DataSize needs fAllocateNetBuffer".into());
        }
        if k.fail_alloc() || k.refuse_ndis_pool() {
            return std::ptr::null_mut();
        }
        let pool = Arc::new(NblPool {
            magic: POOL_MAGIC,
            tag: pp.PoolTag,
            context_size: pp.ContextSize,
            alloc_nb: pp.fAllocateNetBuffer != 0,
            data_size: pp.DataSize,
            freed: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            free_list: Mutex::new(Vec::new()),
            all: Mutex::new(Vec::new()),
        });
        let hp = Arc::as_ptr(&pool) as NDIS_HANDLE;
        lock(&k.ndis.pools).push(pool);
        super::owned::allocated(k, hp as usize, "an NBL pool");
        hp
    })
}

pub(super) fn pool_of(k: &Kernel, h: NDIS_HANDLE, call: &str) -> Option<Arc<NblPool>> {
    let problems = ("the NBL pool was freed already", "not an NBL pool handle");
    live_pool(&k.ndis.pools, |p| p.freed.load(Ordering::Acquire), h, call, problems)
}

pub(crate) unsafe extern "win64" fn NdisFreeNetBufferListPool(h: NDIS_HANDLE) {
    const CALL: &str = "NdisFreeNetBufferListPool";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = pool_of(k, h, CALL) else { return };
        let live = pool.live.load(Ordering::Acquire);
        if live != 0 {
            // Those NDIS still holds are worse than leaked: their send
            // completion will hand them back from a freed pool.
            let in_flight = lock(&pool.all)
                .iter()
                .filter(|&&n| {
                    // SAFETY: the pool's NBLs stay allocated until the
                    // simulation ends; their owner word is an atomic.
                    let o = unsafe { nbl::owner(n as *mut NET_BUFFER_LIST) };
                    o.load(Ordering::Acquire) == own::IN_FLIGHT
                })
                .count();
            let what = "NBL(s)";
            let held =
                "sent and not completed: NDIS still owns those, and its completion hands them back from a freed pool";
            report_live(CALL, h, live, what, in_flight, held);
        }
        retire(k, h, &pool.freed, &pool.free_list);
    })
}

/// A pool freed with `live` of its `what` still allocated, `in_flight` of
/// them `held` by NDIS: reported (rule nbl-leak).
pub(super) fn report_live(call: &str, h: NDIS_HANDLE, live: usize, what: &str, in_flight: usize, held: &str) {
    let detail = if in_flight == 0 {
        format!("the pool is freed with {live} {what} still allocated")
    } else {
        format!("the pool is freed with {live} {what} still allocated, {in_flight} of them {held}")
    };
    Violation::new(Rule::NblLeak, call, detail).with_object(h as usize).report();
}

/// A pool freed: marked so, no longer the driver's, and its free list
/// emptied. Its blocks stay allocated (those freed marked free) until the
/// simulation ends, so a late use of one is caught, not a use after free.
pub(super) fn retire(k: &Kernel, h: NDIS_HANDLE, freed: &AtomicBool, free_list: &Mutex<Vec<usize>>) {
    freed.store(true, Ordering::Release);
    super::owned::freed(k, h as usize);
    lock(free_list).clear();
}

/// Checks `ContextSize` and `ContextBackFill` of an NBL allocation: both
/// multiples of MEMORY_ALLOCATION_ALIGNMENT (NdisAllocateNetBufferList's
/// and NdisAllocateNetBufferAndNetBufferList's pages). False when refused
/// (reported).
fn context_sizes_ok(call: &str, context_size: u16, context_backfill: u16) -> bool {
    for (what, v) in [("ContextSize", context_size), ("ContextBackFill", context_backfill)] {
        if v % ALLOC_ALIGN != 0 {
            Violation::new(
                Rule::InvalidParameter,
                call,
                format!("{what} {v} is not a multiple of MEMORY_ALLOCATION_ALIGNMENT"),
            )
            .report();
            return false;
        }
    }
    true
}

/// Where the data a NET_BUFFER will describe starts in `mdl_chain`, for a
/// call that makes one (`NdisAllocateNetBufferAndNetBufferList`,
/// `NdisAllocateNetBuffer`): the current MDL and the offset in it. Their
/// pages: without an MDL chain, DataOffset and DataLength are 0 (there is
/// no data space for them to describe); with one, they lie within it.
/// `None` when refused (reported).
pub(super) fn data_start(
    call: &str,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: SIZE_T,
) -> Option<(*mut MDL, u32)> {
    if mdl_chain.is_null() {
        if data_offset != 0 || data_length != 0 {
            Violation::new(
                Rule::InvalidParameter,
                call,
                format!(
                    "MdlChain is NULL but DataOffset is {data_offset} and DataLength {data_length} (both must be 0)"
                ),
            )
            .report();
            return None;
        }
        return Some((std::ptr::null_mut(), 0));
    }
    let mut total = 0usize;
    let mut m = mdl_chain;
    let (mut cur, mut cur_off): (*mut MDL, u32) = (std::ptr::null_mut(), 0u32);
    let mut last: *mut MDL = std::ptr::null_mut();
    while !m.is_null() {
        // SAFETY: the driver's MDL chain.
        let bc = unsafe { (*m).ByteCount } as usize;
        if cur.is_null() && (data_offset as usize) < total + bc {
            cur = m;
            cur_off = (data_offset as usize - total) as u32;
        }
        total += bc;
        last = m;
        // SAFETY: as above.
        m = unsafe { (*m).Next };
    }
    if cur.is_null() && data_offset as usize == total {
        // The data starts at the chain's very end (no data): the current
        // MDL is the last one, at its end.
        cur = last;
        // SAFETY: the driver's MDL, walked above.
        cur_off = unsafe { (*last).ByteCount };
    }
    if (data_offset as usize).saturating_add(data_length) > total {
        Violation::new(
            Rule::InvalidParameter,
            call,
            format!("DataOffset {data_offset} + DataLength {data_length} exceed the MDL chain's {total} bytes"),
        )
        .report();
        return None;
    }
    Some((cur, cur_off))
}

/// An NBL block of `pool` (handle `h`) for an allocation: one freed before,
/// cleared (with its NET_BUFFER when the pool preallocates them), or a new
/// one. A pool's blocks all have a NET_BUFFER or none, as the pool was
/// made. Null when the allocation fails.
fn take_nbl(pool: &Arc<NblPool>, h: NDIS_HANDLE) -> *mut NET_BUFFER_LIST {
    let reuse = lock(&pool.free_list).pop();
    if let Some(p) = reuse {
        let n = p as *mut NET_BUFFER_LIST;
        // SAFETY: a free-listed block of this pool: clear it for reuse.
        unsafe {
            std::ptr::write_bytes(n.cast::<u8>(), 0, nbl::NBL_SIZE);
            (*n).NdisPoolHandle = h;
            if pool.alloc_nb {
                let nb = (n as *mut u8).add(nbl::NBL_SIZE).cast::<NET_BUFFER>();
                std::ptr::write_bytes(nb, 0, 1);
                (*nb).NdisPoolHandle = h;
                (*n).anon.anon.FirstNetBuffer = nb;
            }
        }
        return n;
    }
    let n = nbl::alloc_nbl(Arc::as_ptr(pool) as usize, pool.alloc_nb, false);
    if !n.is_null() {
        lock(&pool.all).push(n as usize);
    }
    n
}

/// Hands `n`, taken from `pool`, to the driver: its owner, its context
/// area (the pool's `ContextSize`, and the call's size and backfill) and
/// the pool's count.
///
/// # Safety
/// `n` came from `take_nbl(pool, ..)` and nothing else has it.
unsafe fn give_nbl(k: &Kernel, pool: &NblPool, n: *mut NET_BUFFER_LIST, context_size: u16, context_backfill: u16) {
    // SAFETY: per the caller.
    unsafe {
        nbl::owner(n).store(own::DRIVER, Ordering::Release);
        // The protocol's words hold what fresh pool holds: no page promises
        // NDIS clears them ("Reserved for use by protocol drivers"), and a
        // reused NBL's would be its last owner's.
        let garbage = usize::from_ne_bytes([k.pool.fill(); 8]) as PVOID;
        (*n).ProtocolReserved = [garbage; 4];
        if pool.alloc_nb {
            (*(*n).anon.anon.FirstNetBuffer).ProtocolReserved = [garbage; 6];
        }
        let csize = context_size as usize + context_backfill as usize + pool.context_size as usize;
        if csize > 0 {
            let lay = std::alloc::Layout::from_size_align(32 + csize, 16).expect("context layout");
            let c = std::alloc::alloc(lay).cast::<NET_BUFFER_LIST_CONTEXT>();
            // The context data holds what fresh pool holds: no page
            // promises NDIS clears it (NET_BUFFER_LIST_CONTEXT,
            // NdisAllocateNetBufferList, NET_BUFFER_LIST_POOL_PARAMETERS),
            // and a used block's would be its last owner's.
            std::ptr::write_bytes(c.cast::<u8>(), k.pool.fill(), lay.size());
            (*c).Next = std::ptr::null_mut();
            (*c).Size = csize as u16;
            (*c).Offset = (context_backfill as usize + pool.context_size as usize) as u16;
            (*n).Context = c;
            let hd = nbl::hdr(n);
            (*hd).context = c as usize;
            (*hd).context_size = 32 + csize;
        }
    }
    pool.live.fetch_add(1, Ordering::AcqRel);
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBufferAndNetBufferList(
    h: NDIS_HANDLE,
    context_size: u16,
    context_backfill: u16,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: SIZE_T,
) -> *mut NET_BUFFER_LIST {
    const CALL: &str = "NdisAllocateNetBufferAndNetBufferList";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = pool_of(k, h, CALL) else { return std::ptr::null_mut() };
        if !pool.alloc_nb {
            Violation::new(Rule::InvalidParameter, CALL, "the pool was not created with fAllocateNetBuffer")
                .with_object(h as usize)
                .report();
            return std::ptr::null_mut();
        }
        // NdisAllocateNetBufferAndNetBufferList (nf-nblapi-ndisallocatenetbufferandnetbufferlist)
        // and NdisAllocateNetBufferListPool's remarks: only a pool made with
        // fAllocateNetBuffer and a DataSize of zero (NET_BUFFERs without
        // data buffers) serves this call.
        if pool.data_size != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("the pool was created with DataSize {} (it must be zero for this call)", pool.data_size),
            )
            .with_object(h as usize)
            .report();
            return std::ptr::null_mut();
        }
        if !context_sizes_ok(CALL, context_size, context_backfill) {
            return std::ptr::null_mut();
        }
        let Some((cur, cur_off)) = data_start(CALL, mdl_chain, data_offset, data_length) else {
            return std::ptr::null_mut();
        };
        if k.fail_alloc() || k.refuse_nbl() {
            return std::ptr::null_mut();
        }
        let n = take_nbl(&pool, h);
        if n.is_null() {
            return n;
        }
        // SAFETY: `n` is our fresh NBL with its NET_BUFFER.
        unsafe {
            let d = &mut (*(*n).anon.anon.FirstNetBuffer).anon.anon;
            d.MdlChain = mdl_chain;
            d.CurrentMdl = cur;
            d.CurrentMdlOffset = cur_off;
            d.DataOffset = data_offset;
            d.anon.DataLength = data_length as u32;
            give_nbl(k, &pool, n, context_size, context_backfill);
        }
        n
    })
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBufferList(
    h: NDIS_HANDLE,
    context_size: u16,
    context_backfill: u16,
) -> *mut NET_BUFFER_LIST {
    const CALL: &str = "NdisAllocateNetBufferList";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = pool_of(k, h, CALL) else { return std::ptr::null_mut() };
        if !context_sizes_ok(CALL, context_size, context_backfill) {
            return std::ptr::null_mut();
        }
        if k.fail_alloc() || k.refuse_nbl() {
            return std::ptr::null_mut();
        }
        let n = take_nbl(&pool, h);
        if n.is_null() {
            return n;
        }
        // NdisAllocateNetBufferList (nf-nblapi-ndisallocatenetbufferlist)
        // and NET_BUFFER_LIST_POOL_PARAMETERS: from a pool made with
        // fAllocateNetBuffer the NBL comes with one NET_BUFFER, and with
        // an MDL and a data buffer of the pool's DataSize when it has one
        // (ndisim describes all of it as the data, from offset 0); from
        // one made without, with no NET_BUFFER (FirstNetBuffer NULL).
        if pool.alloc_nb && pool.data_size != 0 {
            // SAFETY: our NBL with its NET_BUFFER, a block of this pool.
            unsafe {
                let m = nbl::preallocated_data(n, pool.data_size as usize, k.pool.fill());
                if m.is_null() {
                    nbl::owner(n).store(own::FREE, Ordering::Release);
                    lock(&pool.free_list).push(n as usize);
                    return std::ptr::null_mut();
                }
                let d = &mut (*(*n).anon.anon.FirstNetBuffer).anon.anon;
                d.MdlChain = m;
                d.CurrentMdl = m;
                d.anon.DataLength = pool.data_size;
            }
        }
        // SAFETY: our fresh NBL.
        unsafe { give_nbl(k, &pool, n, context_size, context_backfill) };
        n
    })
}

pub(crate) unsafe extern "win64" fn NdisFreeNetBufferList(n: *mut NET_BUFFER_LIST) {
    const CALL: &str = "NdisFreeNetBufferList";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !nbl::valid(n) {
            Violation::new(Rule::InvalidParameter, CALL, "not an NBL allocated by NDIS")
                .with_object(n as usize)
                .report();
            return;
        }
        // SAFETY: valid.
        let o = unsafe { nbl::owner(n) };
        // Taken from the driver in one step: of two frees racing (or a free
        // racing a send on another CPU), one wins and the other is
        // reported, instead of both finding the NBL the driver's and
        // putting it on the free list twice.
        if let Err(st) = o.compare_exchange(own::DRIVER, own::FREEING, Ordering::AcqRel, Ordering::Acquire) {
            let why = match st {
                own::FREEING => "freed an NBL that another thread is freeing at the same moment (double free)",
                own::FREE => "freed an NBL that is already free (double free)",
                own::IN_FLIGHT => "freed a sent NBL that NDIS owns until its send completes",
                _ => "freed a receive NBL that belongs to NDIS",
            };
            Violation::new(Rule::NblOwnership, CALL, why).with_object(n as usize).report();
            return;
        }
        // NdisFreeNetBufferList's remarks: it frees only the NET_BUFFER
        // that came with the NBL; one of a NET_BUFFER pool still chained
        // is the driver's to reuse or free, so not a violation here (one
        // never freed is its pool's leak).
        // SAFETY: valid; its pool is one of ours.
        let pool_addr = unsafe { (*nbl::hdr(n)).pool };
        let Some(pool) = lock(&k.ndis.pools).iter().find(|p| Arc::as_ptr(p) as usize == pool_addr).cloned() else {
            o.store(own::DRIVER, Ordering::Release);
            Violation::new(Rule::InvalidParameter, CALL, "the NBL's pool is unknown").with_object(n as usize).report();
            return;
        };
        o.store(own::FREE, Ordering::Release);
        // SAFETY: ours again; drop its context.
        unsafe {
            let hd = nbl::hdr(n);
            if (*hd).context != 0 {
                std::alloc::dealloc(
                    (*hd).context as *mut u8,
                    std::alloc::Layout::from_size_align_unchecked((*hd).context_size, 16),
                );
                (*hd).context = 0;
            }
        }
        pool.live.fetch_sub(1, Ordering::AcqRel);
        if pool.freed.load(Ordering::Acquire) {
            Violation::new(Rule::InvalidParameter, CALL, "freed an NBL after its pool was freed")
                .with_object(n as usize)
                .report();
            return;
        }
        lock(&pool.free_list).push(n as usize);
    })
}

pub(crate) unsafe extern "win64" fn NdisAllocateMdl(h: NDIS_HANDLE, va: PVOID, len: u32) -> *mut MDL {
    const CALL: &str = "NdisAllocateMdl";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !valid_ndis_handle(k, h, CALL) {
            return std::ptr::null_mut();
        }
        if va.is_null() || len == 0 {
            Violation::new(Rule::InvalidParameter, CALL, "null VirtualAddress or zero Length").report();
            return std::ptr::null_mut();
        }
        // The page: the function "only accepts memory from the nonpaged
        // pool"; the stack, driver globals, paged pool and user memory need
        // IoAllocateMdl and MmProbeAndLockPages.
        let what = match k.pool.containing(va as usize, len as usize) {
            Some(b) if b.pool_type & 1 == 0 => None,
            Some(_) => Some("paged pool"),
            None => Some("memory outside any pool block (the stack, a global, user memory, or past a block's end)"),
        };
        if let Some(what) = what {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("VirtualAddress..+Length is {what}: NdisAllocateMdl takes non-paged pool only"),
            )
            .with_object(va as usize)
            .report();
            return std::ptr::null_mut();
        }
        if k.fail_alloc() {
            return std::ptr::null_mut();
        }
        let m = nbl::alloc_mdl(va as usize, len as usize, true);
        if !m.is_null() {
            lock(&k.ndis.mdls).insert(m as usize);
        }
        m
    })
}

/// A sent NBL NDIS owns one of whose NET_BUFFERs `holds` (a scan: only
/// at `NdisFreeMdl`, `NdisFreeNetBuffer` and the free of a NET_BUFFER
/// pool, which drivers call at teardown).
pub(super) fn in_flight_where(k: &Kernel, mut holds: impl FnMut(*mut NET_BUFFER) -> bool) -> Option<usize> {
    for p in lock(&k.ndis.pools).iter() {
        for &n in lock(&p.all).iter() {
            let n = n as *mut NET_BUFFER_LIST;
            // SAFETY: the pool's NBLs live as long as the pool; a sent one's
            // NET_BUFFERs are NDIS's, unchanged until completion.
            let found = unsafe {
                nbl::owner(n).load(Ordering::Acquire) == own::IN_FLIGHT && {
                    let mut nb = (*n).anon.anon.FirstNetBuffer;
                    let mut found = false;
                    let mut guard = 0;
                    while !nb.is_null() && !found && guard < 1024 {
                        guard += 1;
                        found = holds(nb);
                        nb = (*nb).anon.anon.Next;
                    }
                    found
                }
            };
            if found {
                return Some(n as usize);
            }
        }
    }
    None
}

/// A sent NBL NDIS owns whose NET_BUFFERs' MDL chains hold `m`.
fn in_flight_with(k: &Kernel, m: *mut MDL) -> Option<usize> {
    in_flight_where(k, |nb| {
        // SAFETY: a NET_BUFFER of a sent NBL, and its MDLs: NDIS's, valid
        // until the completion.
        let mut d = unsafe { (*nb).anon.anon.MdlChain };
        let mut guard = 0;
        while !d.is_null() && guard < 1024 {
            guard += 1;
            if d == m {
                return true;
            }
            // SAFETY: as above.
            d = unsafe { (*d).Next };
        }
        false
    })
}

pub(crate) unsafe extern "win64" fn NdisFreeMdl(m: *mut MDL) {
    const CALL: &str = "NdisFreeMdl";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        if !lock(&k.ndis.mdls).contains(&(m as usize)) {
            Violation::new(Rule::InvalidParameter, CALL, "not an MDL from NdisAllocateMdl (or freed already)")
                .with_object(m as usize)
                .report();
            return;
        }
        // An MDL a sent NBL still holds is NDIS's until the completion:
        // reported, and kept (NDIS and the miniport go on reading it).
        if let Some(n) = in_flight_with(k, m) {
            Violation::new(
                Rule::NblOwnership,
                CALL,
                "freed an MDL of a sent NBL that NDIS still owns (before its send completed)",
            )
            .with_object(n)
            .report();
            return;
        }
        lock(&k.ndis.mdls).remove(&(m as usize));
        // SAFETY: allocated by NdisAllocateMdl, freed once.
        unsafe { nbl::free_mdl(m) };
    })
}
