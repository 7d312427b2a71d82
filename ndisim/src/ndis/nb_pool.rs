//! NET_BUFFER pools and the NET_BUFFERs the driver allocates from them
//! (`NdisAllocateNetBufferPool`, `NdisAllocateNetBuffer`,
//! `NdisFreeNetBuffer`, `NdisFreeNetBufferPool`), to chain several on an
//! NBL of a pool made without `fAllocateNetBuffer`.

use super::pool::{data_start, in_flight_where, live_pool, pool_params, refuse_pool, report_live, retire};
use super::*;
use crate::kernel::{DISPATCH_LEVEL, Kernel, check_irql_max};
use crate::nbl::{self, nb_state};
use crate::verifier::{Rule, lock};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const NB_POOL_MAGIC: u64 = 0x4C4F_4F50_4642_4E44; // "DNBFPOOL"

/// A NET_BUFFER pool. Its address is the pool handle.
#[repr(C)]
pub(crate) struct NbPool {
    pub magic: u64,
    pub tag: u32,
    /// The pool's `DataSize`: for `NdisAllocateNetBufferMdlAndData`, which
    /// ndisim does not export; `NdisAllocateNetBuffer` refuses such a pool.
    pub data_size: u32,
    pub freed: AtomicBool,
    /// NET_BUFFERs allocated and not freed.
    pub live: AtomicUsize,
    pub free_list: Mutex<Vec<usize>>,
    /// Every NET_BUFFER block of the pool (kept until the simulation ends).
    pub all: Mutex<Vec<usize>>,
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBufferPool(
    h: NDIS_HANDLE,
    p: *mut NET_BUFFER_POOL_PARAMETERS,
) -> NDIS_HANDLE {
    const CALL: &str = "NdisAllocateNetBufferPool";
    export(CALL, std::ptr::null_mut(), |k| {
        // NdisAllocateNetBufferPool (nf-nblapi-ndisallocatenetbufferpool):
        // the header says NDIS_OBJECT_TYPE_DEFAULT, revision 1 and its size.
        let rev = (NET_BUFFER_POOL_PARAMETERS_REVISION_1, NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1);
        // SAFETY: the driver's parameters.
        let Some(pp) = (unsafe { pool_params(k, h, p, CALL, |pp| pp.Header, rev) }) else {
            return std::ptr::null_mut();
        };
        if pp.PoolTag == 0 {
            return refuse_pool(CALL, p as usize, "PoolTag is zero".into());
        }
        if k.fail_alloc() || k.refuse_ndis_pool() {
            return std::ptr::null_mut();
        }
        let pool = Arc::new(NbPool {
            magic: NB_POOL_MAGIC,
            tag: pp.PoolTag,
            data_size: pp.DataSize,
            freed: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            free_list: Mutex::new(Vec::new()),
            all: Mutex::new(Vec::new()),
        });
        let hp = Arc::as_ptr(&pool) as NDIS_HANDLE;
        lock(&k.ndis.nb_pools).push(pool);
        super::owned::allocated(k, hp as usize, "a NET_BUFFER pool");
        hp
    })
}

/// The NET_BUFFER pool `h` names, if it is one not freed (else reported).
fn nb_pool_of(k: &Kernel, h: NDIS_HANDLE, call: &str) -> Option<Arc<NbPool>> {
    let problems = ("the NET_BUFFER pool was freed already", "not a NET_BUFFER pool handle");
    live_pool(&k.ndis.nb_pools, |p| p.freed.load(Ordering::Acquire), h, call, problems)
}

pub(crate) unsafe extern "win64" fn NdisFreeNetBufferPool(h: NDIS_HANDLE) {
    const CALL: &str = "NdisFreeNetBufferPool";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = nb_pool_of(k, h, CALL) else { return };
        // The page: every NET_BUFFER of the pool is freed first.
        let live = pool.live.load(Ordering::Acquire);
        if live != 0 {
            // Those on an NBL NDIS holds are worse than leaked: NDIS and
            // the miniport still read them.
            let mut in_flight = 0;
            in_flight_where(k, |nb| {
                in_flight += usize::from(pool_of_nb(nb) == Some(Arc::as_ptr(&pool) as usize));
                false
            });
            let held = "on NBLs sent and not completed: NDIS still owns those";
            report_live(CALL, h, live, "NET_BUFFER(s)", in_flight, held);
        }
        retire(k, h, &pool.freed, &pool.free_list);
    })
}

/// The pool of `nb` when it is a NET_BUFFER of a NET_BUFFER pool.
fn pool_of_nb(nb: *mut NET_BUFFER) -> Option<usize> {
    // SAFETY: `pool_nb` found a header there.
    nbl::pool_nb(nb).map(|h| unsafe { (*h).pool })
}

pub(crate) unsafe extern "win64" fn NdisAllocateNetBuffer(
    h: NDIS_HANDLE,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: SIZE_T,
) -> *mut NET_BUFFER {
    const CALL: &str = "NdisAllocateNetBuffer";
    export(CALL, std::ptr::null_mut(), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(pool) = nb_pool_of(k, h, CALL) else { return std::ptr::null_mut() };
        // NdisAllocateNetBufferMdlAndData's remarks: a pool whose
        // NET_BUFFERs come with data (a DataSize) is not one to call
        // NdisAllocateNetBuffer on; NET_BUFFER_POOL_PARAMETERS asks for a
        // DataSize of zero from a driver that does not use that call.
        if pool.data_size != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "the pool was created with DataSize {} (for NdisAllocateNetBufferMdlAndData; it must be zero for this call)",
                    pool.data_size
                ),
            )
            .with_object(h as usize)
            .report();
            return std::ptr::null_mut();
        }
        let Some((cur, cur_off)) = data_start(CALL, mdl_chain, data_offset, data_length) else {
            return std::ptr::null_mut();
        };
        if k.fail_alloc() || k.refuse_nbl() {
            return std::ptr::null_mut();
        }
        let reuse = lock(&pool.free_list).pop();
        let nb = match reuse {
            Some(p) => {
                let nb = p as *mut NET_BUFFER;
                // SAFETY: a free-listed block of this pool: cleared for reuse.
                unsafe {
                    std::ptr::write_bytes(nb, 0, 1);
                    (*nb).NdisPoolHandle = h;
                }
                nb
            }
            None => {
                let nb = nbl::alloc_pool_nb(Arc::as_ptr(&pool) as usize);
                if nb.is_null() {
                    return nb;
                }
                lock(&pool.all).push(nb as usize);
                nb
            }
        };
        // SAFETY: our fresh NET_BUFFER, with its header.
        unsafe {
            let d = &mut (*nb).anon.anon;
            d.MdlChain = mdl_chain;
            d.CurrentMdl = cur;
            d.CurrentMdlOffset = cur_off;
            d.DataOffset = data_offset;
            d.anon.DataLength = data_length as u32;
            let hd = nbl::pool_nb(nb).expect("a pool NET_BUFFER");
            (*hd).state.store(nb_state::LIVE, Ordering::Release);
        }
        pool.live.fetch_add(1, Ordering::AcqRel);
        nb
    })
}

pub(crate) unsafe extern "win64" fn NdisFreeNetBuffer(nb: *mut NET_BUFFER) {
    const CALL: &str = "NdisFreeNetBuffer";
    export(CALL, (), |k| {
        check_irql_max(CALL, DISPATCH_LEVEL);
        let Some(hd) = nbl::pool_nb(nb) else {
            let why = if nbl::preallocated(nb) {
                "the NET_BUFFER came with its NBL (fAllocateNetBuffer): NdisFreeNetBufferList frees it, NdisFreeNetBuffer takes only one from NdisAllocateNetBuffer"
            } else {
                "not a NET_BUFFER from NdisAllocateNetBuffer"
            };
            Violation::new(Rule::InvalidParameter, CALL, why).with_object(nb as usize).report();
            return;
        };
        // SAFETY: `pool_nb` found the header; blocks live until the end.
        let state = unsafe { &(*hd).state };
        if state.load(Ordering::Acquire) != nb_state::LIVE {
            Violation::new(Rule::NblOwnership, CALL, "freed a NET_BUFFER that is already free (double free)")
                .with_object(nb as usize)
                .report();
            return;
        }
        // On an NBL NDIS owns, the NET_BUFFER is NDIS's until the send
        // completes: reported, and kept (NDIS and the miniport go on
        // reading it).
        if let Some(n) = in_flight_where(k, |x| x == nb) {
            Violation::new(
                Rule::NblOwnership,
                CALL,
                format!(
                    "freed NET_BUFFER {:#x}, chained on a sent NBL that NDIS still owns (before its send completed)",
                    nb as usize
                ),
            )
            .with_object(n)
            .report();
            return;
        }
        // Taken in one step: of two frees racing, one wins and the other
        // is reported.
        if state.compare_exchange(nb_state::LIVE, nb_state::FREE, Ordering::AcqRel, Ordering::Acquire).is_err() {
            Violation::new(
                Rule::NblOwnership,
                CALL,
                "freed a NET_BUFFER that another thread freed at the same moment (double free)",
            )
            .with_object(nb as usize)
            .report();
            return;
        }
        // SAFETY: as above.
        let pool_addr = unsafe { (*hd).pool };
        let Some(pool) = lock(&k.ndis.nb_pools).iter().find(|p| Arc::as_ptr(p) as usize == pool_addr).cloned() else {
            k.verifier.internal_error(format!("NET_BUFFER {:#x} names no NET_BUFFER pool", nb as usize));
            return;
        };
        pool.live.fetch_sub(1, Ordering::AcqRel);
        if pool.freed.load(Ordering::Acquire) {
            Violation::new(Rule::InvalidParameter, CALL, "freed a NET_BUFFER after its pool was freed")
                .with_object(nb as usize)
                .report();
            return;
        }
        lock(&pool.free_list).push(nb as usize);
    })
}

impl Ndis {
    /// NET_BUFFER pools the driver has not freed.
    pub(crate) fn live_nb_pools(&self) -> usize {
        lock(&self.nb_pools).iter().filter(|p| !p.freed.load(Ordering::Acquire)).count()
    }
}

/// Reports NET_BUFFER pools the driver did not free, and the NET_BUFFERs
/// of those it did not free.
pub(super) fn nb_leak_check(k: &Kernel) {
    for p in lock(&k.ndis.nb_pools).iter().filter(|p| !p.freed.load(Ordering::Acquire)) {
        let tag = crate::pool::tag_str(p.tag);
        Violation::new(Rule::ResourceLeak, "DriverUnload", format!("NET_BUFFER pool (tag {tag}) was never freed"))
            .with_object(Arc::as_ptr(p) as usize)
            .report();
        let live = p.live.load(Ordering::Acquire);
        if live != 0 {
            Violation::new(
                Rule::NblLeak,
                "DriverUnload",
                format!("{live} NET_BUFFER(s) of pool (tag {tag}) were never freed"),
            )
            .with_object(Arc::as_ptr(p) as usize)
            .report();
        }
    }
}

/// Frees what ndisim allocated for NET_BUFFER pools (after the driver is
/// gone).
pub(super) fn free_nb_pools(k: &Kernel) {
    for p in lock(&k.ndis.nb_pools).drain(..) {
        for &nb in lock(&p.all).iter() {
            // SAFETY: the driver is unloaded; nothing uses these now.
            unsafe { nbl::free_pool_nb(nb as *mut NET_BUFFER) };
        }
        lock(&p.free_list).clear();
    }
}
