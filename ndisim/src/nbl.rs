//! NET_BUFFER_LISTs, NET_BUFFERs and MDLs as NDIS allocates them.
//!
//! Every NBL ndisim hands out sits in a block behind a hidden header (as
//! NDIS keeps its own header before an NBL): the header says who owns the
//! NBL (the driver, or NDIS because it is in flight or indicated), which
//! binding it went to, and the checksum taken when NDIS took it. NBLs are
//! 0x180 bytes, the larger of the sizes Windows versions use. A NET_BUFFER
//! of a NET_BUFFER pool (`NdisAllocateNetBuffer`) has a header of its own
//! (`NbHdr`): its pool, and whether it is allocated or free.

use crate::verifier::Checksum;
use ndis_sys::*;
use std::alloc::Layout;
use std::sync::atomic::{AtomicU8, AtomicUsize};

/// The NBL size ndisim allocates.
pub const NBL_SIZE: usize = 0x180;
const HDR: usize = 112;
pub(crate) const NBL_MAGIC: u64 = 0x4C42_4E4D_4953_444E; // "NDISMNBL"

/// Who owns an NBL.
pub(crate) mod own {
    /// Freed back to its pool.
    pub const FREE: u8 = 0;
    /// The driver allocated it and owns it.
    pub const DRIVER: u8 = 1;
    /// Sent: NDIS owns it until the send completion.
    pub const IN_FLIGHT: u8 = 2;
    /// An NDIS receive NBL that NDIS holds.
    pub const NDIS: u8 = 3;
    /// Indicated to the driver, which may keep it until it returns it.
    pub const INDICATED: u8 = 4;
    /// Indicated with NDIS_RECEIVE_FLAGS_RESOURCES: the driver may not keep
    /// it, and NDIS takes it back when the handler returns.
    pub const INDICATED_RESOURCES: u8 = 5;
    /// Indicated, and the receive handler has not returned yet: the driver
    /// has not kept it (yet). When the handler returns, `INDICATED` (kept)
    /// unless the driver returned it.
    pub const INDICATED_IN_CALL: u8 = 6;
    /// Returned while its indication's handler still ran: NDIS owns it,
    /// but its receive slot stays with that indication until the handler
    /// returns (so it is not reused meanwhile).
    pub const RETURNED_IN_CALL: u8 = 7;
    /// Inside `NdisFreeNetBufferList`, on its way to `FREE`.
    pub const FREEING: u8 = 8;
}

/// The hidden header before each NBL.
#[repr(C, align(16))]
pub(crate) struct NblHdr {
    pub magic: u64,
    pub owner: AtomicU8,
    /// 1: the NBL was allocated with its NET_BUFFER (which is freed with it).
    pub with_nb: u8,
    /// 1: a receive NBL of an adapter.
    pub receive: u8,
    /// A sent NBL the miniport fails: 1 + its index in the send failures
    /// (`ndis::send`), 0 when it sends it. Set at the send, read at the
    /// completion, which may give failed and sent NBLs in one chain.
    pub fail: u8,
    /// A sent NBL's NET_BUFFERs (frames), counted at the send.
    pub frames: u32,
    /// The `NblPool` (sends) or the adapter's receive pool.
    pub pool: usize,
    /// The `Binding` it was sent on or indicated to.
    pub binding: AtomicUsize,
    pub checksum: u64,
    /// The context area allocation (0 when none) and its size.
    pub context: usize,
    pub context_size: usize,
    /// A receive NBL's `RecvSlot`.
    pub slot: usize,
    /// A sent NBL's first MDL of the driver's (`IoAllocateMdl` or a
    /// partial MDL in its pool), counted by the memory manager while NDIS
    /// has the NBL (`io::umem::Umem::on_send`); 0 when none.
    pub sent_mdl: usize,
    /// What `Umem::on_send` found of a sent NBL's memory: the memory
    /// manager's generation then, with bit 63 set when some of it is user
    /// memory; 0 when it did not look, or found memory that was not locked.
    pub sent_seen: u64,
    /// The data buffer NDIS preallocated with the NBL's NET_BUFFER (a pool
    /// with a `DataSize`), its size and the MDL that describes it; 0 when
    /// none. They stay with the block, reused with it.
    pub data: usize,
    pub data_len: usize,
    pub data_mdl: usize,
}

const _: () = assert!(std::mem::size_of::<NblHdr>() == HDR);

/// An NBL block: header, NBL and (optionally) one NET_BUFFER.
const BLOCK: usize = HDR + NBL_SIZE + std::mem::size_of::<NET_BUFFER>();

fn block_layout() -> Layout {
    Layout::from_size_align(BLOCK, 16).expect("NBL block layout")
}

/// Allocates a zeroed NBL (with a NET_BUFFER when `with_nb`).
pub(crate) fn alloc_nbl(pool: usize, with_nb: bool, receive: bool) -> *mut NET_BUFFER_LIST {
    // SAFETY: a non-zero layout.
    let p = unsafe { std::alloc::alloc_zeroed(block_layout()) };
    if p.is_null() {
        return std::ptr::null_mut();
    }
    let hdr = p.cast::<NblHdr>();
    // SAFETY: `p` is a fresh zeroed block of `BLOCK` bytes, 16-aligned.
    unsafe {
        (*hdr).magic = NBL_MAGIC;
        (*hdr).owner = AtomicU8::new(if receive { own::NDIS } else { own::DRIVER });
        (*hdr).with_nb = with_nb as u8;
        (*hdr).receive = receive as u8;
        (*hdr).pool = pool;
        let nbl = p.add(HDR).cast::<NET_BUFFER_LIST>();
        (*nbl).NdisPoolHandle = pool as NDIS_HANDLE;
        if with_nb {
            let nb = p.add(HDR + NBL_SIZE).cast::<NET_BUFFER>();
            (*nb).NdisPoolHandle = pool as NDIS_HANDLE;
            (*nbl).anon.anon.FirstNetBuffer = nb;
        }
        nbl
    }
}

/// Frees an NBL block for good.
///
/// # Safety
/// `nbl` came from `alloc_nbl` and is not used again.
pub(crate) unsafe fn free_block(nbl: *mut NET_BUFFER_LIST) {
    // SAFETY: per the caller.
    unsafe {
        let h = hdr(nbl);
        if (*h).context != 0 {
            std::alloc::dealloc((*h).context as *mut u8, Layout::from_size_align_unchecked((*h).context_size, 16));
        }
        if (*h).data_mdl != 0 {
            free_mdl((*h).data_mdl as *mut MDL);
        }
        if (*h).data != 0 {
            std::alloc::dealloc((*h).data as *mut u8, Layout::from_size_align_unchecked((*h).data_len, 16));
        }
        (*h).magic = 0;
        std::alloc::dealloc(h.cast(), block_layout());
    }
}

/// The data buffer of `len` bytes NDIS preallocates with the NET_BUFFER of
/// an NBL of a pool with a `DataSize`, and a fresh MDL that describes all
/// of it (the one a reused block had is replaced: the driver may have
/// changed it). The buffer stays with the block, and holds `fill` in every
/// byte each time it is handed out: no page promises NDIS clears it
/// (NET_BUFFER_LIST_POOL_PARAMETERS, NdisAllocateNetBufferList), and a
/// reused one would hold its last frame, which a driver that forgets to
/// write part of its frame would send again unnoticed. Null when an
/// allocation fails.
///
/// # Safety
/// `nbl` came from `alloc_nbl` and is the caller's; `len` is the same
/// for every call on one block (its pool's `DataSize`), and not zero.
pub(crate) unsafe fn preallocated_data(nbl: *mut NET_BUFFER_LIST, len: usize, fill: u8) -> *mut MDL {
    // SAFETY: per the caller.
    unsafe {
        let h = hdr(nbl);
        if (*h).data == 0 {
            let Ok(lay) = Layout::from_size_align(len, 16) else { return std::ptr::null_mut() };
            let d = std::alloc::alloc(lay);
            if d.is_null() {
                return std::ptr::null_mut();
            }
            ((*h).data, (*h).data_len) = (d as usize, len);
        } else if (*h).data_mdl != 0 {
            free_mdl((*h).data_mdl as *mut MDL);
        }
        std::ptr::write_bytes((*h).data as *mut u8, fill, len);
        let m = alloc_mdl((*h).data, len, true);
        (*h).data_mdl = m as usize;
        m
    }
}

/// The header of an NBL ndisim allocated.
///
/// # Safety
/// `nbl` points into memory where a header could be (checked by `valid`).
pub(crate) unsafe fn hdr(nbl: *mut NET_BUFFER_LIST) -> *mut NblHdr {
    (nbl as usize - HDR) as *mut NblHdr
}

/// True when `nbl` is an NBL ndisim allocated and has not freed.
pub(crate) fn valid(nbl: *mut NET_BUFFER_LIST) -> bool {
    if nbl.is_null() || (nbl as usize) % 8 != 0 || (nbl as usize) < 0x10000 {
        return false;
    }
    // SAFETY: NBLs the driver passes are ndisim's (else the magic fails);
    // the header is read before trusting anything else.
    unsafe { (*hdr(nbl)).magic == NBL_MAGIC }
}

/// True when `nb` is a NET_BUFFER ndisim allocated and has not freed: the
/// one that came with an NBL (`preallocated`), or a live one of a
/// NET_BUFFER pool.
///
/// The pool's header is looked for first: it is the 32 bytes before the
/// NET_BUFFER, inside its own block, or inside the NBL of a preallocated
/// one. `preallocated` reads where an NBL's header would be, 496 bytes
/// before, which for a pool's NET_BUFFER is outside its block (memory the
/// process may have freed, or a page it may not read).
pub(crate) fn nb_valid(nb: *mut NET_BUFFER) -> bool {
    match pool_nb(nb) {
        // SAFETY: `pool_nb` found a header there.
        Some(h) => unsafe { (*h).state.load(std::sync::atomic::Ordering::Acquire) == nb_state::LIVE },
        None => preallocated(nb),
    }
}

/// True when `nb` is the NET_BUFFER that came with an NBL ndisim allocated
/// (`fAllocateNetBuffer`): it is freed with its NBL, never on its own.
pub(crate) fn preallocated(nb: *mut NET_BUFFER) -> bool {
    let nbl = (nb as usize).wrapping_sub(NBL_SIZE) as *mut NET_BUFFER_LIST;
    // SAFETY: the header is read only when `valid` found one there.
    nb as usize > NBL_SIZE && valid(nbl) && unsafe { (*hdr(nbl)).with_nb } == 1
}

// ---------------------------------------------------------------------------
// NET_BUFFERs of NET_BUFFER pools
// ---------------------------------------------------------------------------

const NB_HDR: usize = 32;
pub(crate) const NB_MAGIC: u64 = 0x4642_4E4D_4953_444E; // "NDISMNBF"

/// A NET_BUFFER pool's NET_BUFFER's state.
pub(crate) mod nb_state {
    /// Freed back to its pool (`NdisFreeNetBuffer`).
    pub const FREE: u8 = 0;
    /// Allocated (`NdisAllocateNetBuffer`) and not freed.
    pub const LIVE: u8 = 1;
}

/// The hidden header before each NET_BUFFER of a NET_BUFFER pool.
#[repr(C, align(16))]
pub(crate) struct NbHdr {
    pub magic: u64,
    pub state: AtomicU8,
    /// The `NbPool` it belongs to.
    pub pool: usize,
}

const _: () = assert!(std::mem::size_of::<NbHdr>() == NB_HDR);

fn nb_block_layout() -> Layout {
    Layout::from_size_align(NB_HDR + std::mem::size_of::<NET_BUFFER>(), 16).expect("NET_BUFFER block layout")
}

/// A zeroed NET_BUFFER of NET_BUFFER pool `pool`, allocated (`LIVE`);
/// null when the allocation fails.
pub(crate) fn alloc_pool_nb(pool: usize) -> *mut NET_BUFFER {
    // SAFETY: a non-zero layout.
    let p = unsafe { std::alloc::alloc_zeroed(nb_block_layout()) };
    if p.is_null() {
        return std::ptr::null_mut();
    }
    let h = p.cast::<NbHdr>();
    // SAFETY: a fresh zeroed block, 16-aligned, with room for both.
    unsafe {
        (*h).magic = NB_MAGIC;
        (*h).state = AtomicU8::new(nb_state::LIVE);
        (*h).pool = pool;
        let nb = p.add(NB_HDR).cast::<NET_BUFFER>();
        (*nb).NdisPoolHandle = pool as NDIS_HANDLE;
        nb
    }
}

/// The header of `nb` when it is a NET_BUFFER of a NET_BUFFER pool (live
/// or freed; blocks stay allocated until the simulation ends).
pub(crate) fn pool_nb(nb: *mut NET_BUFFER) -> Option<*mut NbHdr> {
    if nb.is_null() || (nb as usize) % 16 != 0 || (nb as usize) < 0x10000 {
        return None;
    }
    let h = (nb as usize - NB_HDR) as *mut NbHdr;
    // SAFETY: NET_BUFFERs the driver passes are ndisim's (else the magic
    // fails); the magic is read before trusting anything else.
    (unsafe { (*h).magic } == NB_MAGIC).then_some(h)
}

/// Frees a NET_BUFFER pool's block for good.
///
/// # Safety
/// `nb` came from `alloc_pool_nb` and is not used again.
pub(crate) unsafe fn free_pool_nb(nb: *mut NET_BUFFER) {
    // SAFETY: per the caller: the header precedes the NET_BUFFER.
    unsafe {
        let h = nb.cast::<u8>().sub(NB_HDR);
        (*h.cast::<NbHdr>()).magic = 0;
        std::alloc::dealloc(h, nb_block_layout());
    }
}

/// The NBL's owner.
///
/// # Safety
/// `valid(nbl)`.
pub(crate) unsafe fn owner(nbl: *mut NET_BUFFER_LIST) -> &'static AtomicU8 {
    // SAFETY: per the caller.
    unsafe { &(*hdr(nbl)).owner }
}

// ---------------------------------------------------------------------------
// MDLs
// ---------------------------------------------------------------------------

/// Bytes of an MDL describing `len` bytes at `va`, with its PFN array.
fn mdl_bytes(va: usize, len: usize) -> usize {
    std::mem::size_of::<MDL>() + span_pages(va, len) * 8
}

/// Pages that `len` bytes at `va` touch (at least one).
pub(crate) fn span_pages(va: usize, len: usize) -> usize {
    ((va & 0xFFF) + len).div_ceil(4096).max(1)
}

/// Bytes before each MDL that hold its allocation's size: `Size` is a
/// CSHORT, too small for the MDL of a large buffer, and the driver may
/// rebuild an MDL (`IoBuildPartialMdl`) to describe fewer pages than it
/// has room for.
const MDL_PREFIX: usize = 16;

/// An MDL with room for `pages` PFNs, zeroed but for `Size`; null when the
/// allocation fails.
pub(crate) fn alloc_mdl_pages(pages: usize) -> *mut MDL {
    let size = std::mem::size_of::<MDL>() + pages.max(1) * 8;
    let Ok(layout) = Layout::from_size_align(MDL_PREFIX + size, 16) else { return std::ptr::null_mut() };
    // SAFETY: non-zero layout.
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the prefix is ours, 16-byte aligned.
    unsafe { base.cast::<usize>().write(size) };
    // SAFETY: the MDL follows the prefix, inside the block.
    let p = unsafe { base.add(MDL_PREFIX) }.cast::<MDL>();
    // SAFETY: `p` is a fresh block large enough for the MDL and its PFNs.
    unsafe { (*p).Size = size.min(i16::MAX as usize & !7) as i16 };
    p
}

/// Set in the `StartVa` of an MDL that describes locked pages with no
/// system mapping (`alloc_mdl` without `nonpaged`): bit 62 makes it a
/// non-canonical x86-64 address, so any access through it faults. On
/// Windows such an MDL's virtual address belongs to the context it was
/// made in (a user buffer of some process, or none at all): a driver that
/// reads it at DISPATCH_LEVEL in an arbitrary thread reads another
/// process's memory or bug checks. Only the mapping
/// (`MmGetSystemAddressForMdlSafe`) gives an address to read; ndisim's
/// own reads (the miniport's DMA) go through `mdl_va`, which clears it.
pub(crate) const UNMAPPED_ALIAS: usize = 1 << 62;

/// Builds an MDL for `len` bytes at `va`. `nonpaged` marks it as
/// describing non-paged pool (mapped); otherwise it describes locked pages
/// that must be mapped with `MmMapLockedPagesSpecifyCache`, and its
/// `StartVa` cannot be read through (`UNMAPPED_ALIAS`).
pub(crate) fn alloc_mdl(va: usize, len: usize, nonpaged: bool) -> *mut MDL {
    let pages = span_pages(va, len);
    let p = alloc_mdl_pages(pages);
    if p.is_null() {
        return p;
    }
    debug_assert_eq!(mdl_bytes(va, len), std::mem::size_of::<MDL>() + pages * 8);
    // SAFETY: `p` is a fresh block large enough for the MDL and its PFNs.
    unsafe {
        (*p).StartVa = (va & !0xFFF | if nonpaged { 0 } else { UNMAPPED_ALIAS }) as PVOID;
        (*p).ByteOffset = (va & 0xFFF) as u32;
        (*p).ByteCount = len as u32;
        if nonpaged {
            (*p).MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL;
            (*p).MappedSystemVa = va as PVOID;
        } else {
            (*p).MdlFlags = MDL_PAGES_LOCKED;
            // Not mapped: `MappedSystemVa` means nothing until a mapping
            // sets it (MmInitializeMdl leaves it as the memory had it, and
            // only MDL_MAPPED_TO_SYSTEM_VA or MDL_SOURCE_IS_NONPAGED_POOL
            // make it the data's address). Not null, which a driver could
            // take for "not mapped" without a look at the flags: the
            // described address with `UNMAPPED_ALIAS`, which faults when
            // read through.
            (*p).MappedSystemVa = (va | UNMAPPED_ALIAS) as PVOID;
        }
        let pfns = p.add(1).cast::<u64>();
        for i in 0..pages {
            *pfns.add(i) = ((va >> 12) + i) as u64;
        }
    }
    p
}

/// PFNs an MDL has room for.
///
/// # Safety
/// `mdl` came from `alloc_mdl` or `alloc_mdl_pages` and is not freed.
pub(crate) unsafe fn mdl_capacity(mdl: *const MDL) -> usize {
    // SAFETY: per the caller: the prefix precedes the MDL.
    let size = unsafe { mdl.cast::<u8>().sub(MDL_PREFIX).cast::<usize>().read() };
    (size - std::mem::size_of::<MDL>()) / 8
}

/// # Safety
/// `mdl` came from `alloc_mdl` or `alloc_mdl_pages` and is not used again.
pub(crate) unsafe fn free_mdl(mdl: *mut MDL) {
    // SAFETY: per the caller: the prefix precedes the MDL and holds the
    // allocation's size.
    unsafe {
        let base = mdl.cast::<u8>().sub(MDL_PREFIX);
        let size = base.cast::<usize>().read();
        std::alloc::dealloc(base, Layout::from_size_align_unchecked(MDL_PREFIX + size, 16));
    }
}

/// The virtual address an MDL describes, where ndisim reads it (without
/// `UNMAPPED_ALIAS`).
///
/// # Safety
/// `mdl` is a valid MDL.
pub(crate) unsafe fn mdl_va(mdl: *const MDL) -> *mut u8 {
    // SAFETY: per the caller.
    unsafe { (((*mdl).StartVa as usize + (*mdl).ByteOffset as usize) & !UNMAPPED_ALIAS) as *mut u8 }
}

/// The address the miniport reads an MDL's data at: its system mapping
/// when it has one (mapped, or non-paged pool), else the address it
/// describes.
///
/// # Safety
/// `mdl` is a valid MDL.
pub(crate) unsafe fn data_va(mdl: *const MDL) -> *mut u8 {
    // SAFETY: per the caller.
    unsafe {
        let sys = (*mdl).MappedSystemVa;
        if (*mdl).MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 && !sys.is_null() {
            sys.cast()
        } else {
            mdl_va(mdl)
        }
    }
}

/// Calls `f` with each piece of a NET_BUFFER's data, in order.
///
/// # Safety
/// `nb` is a valid NET_BUFFER whose MDL chain covers its data.
pub(crate) unsafe fn for_each_piece(nb: *const NET_BUFFER, mut f: impl FnMut(&[u8])) -> usize {
    // SAFETY: per the caller.
    unsafe {
        let d = &(*nb).anon.anon;
        let mut mdl = d.CurrentMdl;
        let mut skip = d.CurrentMdlOffset as usize;
        let mut left = d.anon.DataLength as usize;
        let total = left;
        while left > 0 && !mdl.is_null() {
            let count = (*mdl).ByteCount as usize;
            if skip < count {
                let n = (count - skip).min(left);
                f(std::slice::from_raw_parts(data_va(mdl).add(skip), n));
                left -= n;
            }
            skip = skip.saturating_sub(count);
            mdl = (*mdl).Next;
        }
        total - left
    }
}

/// What is inconsistent in a NET_BUFFER's description of its data, if
/// anything: `CurrentMdl` must be an MDL of `MdlChain`, `CurrentMdlOffset`
/// within it, the two together at `DataOffset` bytes into the chain, and
/// `DataLength` bytes must follow. NdisAllocateNetBufferAndNetBufferList's
/// remarks (nf-nblapi-ndisallocatenetbufferandnetbufferlist) ask a driver
/// that puts another MDL chain on a NET_BUFFER to keep these four fields
/// consistent with it; NDIS and the miniport walk the data by them.
///
/// # Safety
/// `nb` is a valid NET_BUFFER; its MDLs, if any, are valid.
pub(crate) unsafe fn nb_layout_error(nb: *const NET_BUFFER) -> Option<String> {
    /// MDLs walked before the chain is taken for a cycle.
    const MAX_MDLS: usize = 1 << 16;
    // SAFETY: per the caller.
    unsafe {
        let d = &(*nb).anon.anon;
        let (off, len) = (d.DataOffset as usize, d.anon.DataLength as usize);
        if d.MdlChain.is_null() {
            return (off != 0 || len != 0).then(|| format!("no MDL chain, but DataOffset {off} and DataLength {len}"));
        }
        let (mut m, mut total, mut at, mut n) = (d.MdlChain, 0usize, None, 0usize);
        while !m.is_null() {
            n += 1;
            if n > MAX_MDLS {
                return Some(format!("the MDL chain has more than {MAX_MDLS} MDLs (a cycle?)"));
            }
            if m == d.CurrentMdl && at.is_none() {
                at = Some(total);
            }
            total += (*m).ByteCount as usize;
            m = (*m).Next;
        }
        let Some(before) = at else {
            return Some(format!(
                "CurrentMdl {:#x} is not an MDL of the NET_BUFFER's MDL chain",
                d.CurrentMdl as usize
            ));
        };
        let cur_off = d.CurrentMdlOffset as usize;
        if cur_off > (*d.CurrentMdl).ByteCount as usize {
            return Some(format!(
                "CurrentMdlOffset {cur_off} is past the end of CurrentMdl ({} bytes)",
                (*d.CurrentMdl).ByteCount
            ));
        }
        if before + cur_off != off {
            return Some(format!(
                "CurrentMdl and CurrentMdlOffset point {} bytes into the MDL chain, DataOffset {off}",
                before + cur_off
            ));
        }
        (off + len > total).then(|| format!("DataOffset {off} + DataLength {len} exceed the MDL chain's {total} bytes"))
    }
}

/// Copies a NET_BUFFER's data into `out` (cleared first).
///
/// # Safety
/// As `for_each_piece`.
pub(crate) unsafe fn copy_nb(nb: *const NET_BUFFER, out: &mut Vec<u8>) {
    out.clear();
    // SAFETY: per the caller.
    unsafe { for_each_piece(nb, |p| out.extend_from_slice(p)) };
}

// ---------------------------------------------------------------------------
// Checksums of NBLs NDIS owns
// ---------------------------------------------------------------------------

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        let mut h = self.0;
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x100_0000_01b3).rotate_left(17);
    }
}

/// The checksum NDIS records for a sent NBL it refused without reading
/// (its memory was not locked): even, so no checksum (always odd) or
/// `Checksum::Off`'s 0 is it.
pub(crate) const REFUSED: u64 = 2;

/// Checksum of an NBL as NDIS holds it: the NBL (but for `Next`, which NDIS
/// relinks, and `Status`, which NDIS sets), its NET_BUFFERs and MDLs, and
/// with `Full` the data.
///
/// # Safety
/// `nbl` is a valid NBL with valid NET_BUFFERs and MDLs.
pub(crate) unsafe fn checksum(nbl: *mut NET_BUFFER_LIST, mode: Checksum) -> u64 {
    if mode == Checksum::Off {
        return 0;
    }
    let mut h = Fnv::new();
    // SAFETY: per the caller.
    unsafe {
        let base = nbl as *const u64;
        let status_word = std::mem::offset_of!(NET_BUFFER_LIST, anon2) / 8;
        for i in 1..NBL_SIZE / 8 {
            if i != status_word {
                h.word(*base.add(i));
            }
        }
        // The word holding Status also holds Flags: keep Flags.
        h.word((*nbl).Flags as u64);
        let mut nb = (*nbl).anon.anon.FirstNetBuffer;
        let mut guard = 0;
        while !nb.is_null() && guard < 1024 {
            guard += 1;
            let w = nb as *const u64;
            for i in 0..std::mem::size_of::<NET_BUFFER>() / 8 {
                h.word(*w.add(i));
            }
            hash_mdls(&mut h, (*nb).anon.anon.MdlChain);
            if mode == Checksum::Full {
                for_each_piece(nb, |p| h.bytes(p));
            }
            nb = (*nb).anon.anon.Next;
        }
    }
    h.0 | 1
}

/// Hashes each MDL of a chain (at most 1024): its `Next`, address and
/// byte count. Not Size/MdlFlags (flags may gain MAPPED_TO_SYSTEM_VA),
/// Process or MappedSystemVa (set by a mapping).
///
/// # Safety
/// `mdl` is null or a valid MDL chain.
unsafe fn hash_mdls(h: &mut Fnv, mut mdl: *mut MDL) {
    let mut guard = 0;
    while !mdl.is_null() && guard < 1024 {
        guard += 1;
        let m = mdl as *const u64;
        // SAFETY: a valid MDL (caller): its first six words are its own.
        unsafe {
            h.word(*m);
            h.word(*m.add(4));
            h.word(*m.add(5));
            mdl = (*mdl).Next;
        }
    }
}

/// Checksum of what a protocol may only read in a received NBL: the frame
/// data (with `Full`) and what describes it, the NBL's first NET_BUFFER,
/// each NET_BUFFER's links, MDLs, offsets and length, and each MDL's
/// `Next`, address and byte count; the NBL's and NET_BUFFERs' NDIS and
/// miniport reserved words and pool handles. Not `Next`, which a driver
/// may relink to queue the NBLs it keeps, nor `ProtocolReserved`,
/// `Scratch` or the context, which are the receiver's to use.
///
/// # Safety
/// `nbl` is a valid NBL with valid NET_BUFFERs and MDLs.
#[inline]
pub(crate) unsafe fn received_checksum(nbl: *mut NET_BUFFER_LIST, mode: Checksum) -> u64 {
    if mode == Checksum::Off {
        return 0;
    }
    // SAFETY: per the caller.
    unsafe { received_sum(nbl, mode) }
}

/// `received_checksum` while checksumming.
///
/// # Safety
/// As `received_checksum`.
#[inline(never)]
unsafe fn received_sum(nbl: *mut NET_BUFFER_LIST, mode: Checksum) -> u64 {
    let mut h = Fnv::new();
    // SAFETY: per the caller.
    unsafe {
        // The NBL's own fields NDIS routes it by and tells the receivers
        // with (the same NBL goes to every protocol bound to the adapter):
        // not `Next`, the reserved areas or the context, which the
        // receiver may use.
        let n = &*nbl;
        h.word(n.SourceHandle as u64);
        h.word(u64::from(n.NblFlags));
        h.word(u64::from(n.Flags));
        // And what only NDIS and the miniport may write.
        for w in n.NdisReserved.iter().chain(&n.MiniportReserved) {
            h.word(*w as u64);
        }
        h.word(n.NdisPoolHandle as u64);
        h.word(n.ParentNetBufferList as u64);
        h.word(n.ChildRefCount as u64);
        for i in n.NetBufferListInfo {
            h.word(i as u64);
        }
        let mut nb = (*nbl).anon.anon.FirstNetBuffer;
        h.word(nb as u64);
        let mut guard = 0;
        while !nb.is_null() && guard < 1024 {
            guard += 1;
            let d = &(*nb).anon.anon;
            h.word(d.Next as u64);
            h.word(d.CurrentMdl as u64);
            h.word(d.CurrentMdlOffset as u64);
            h.word(d.anon.DataLength as u64);
            h.word(d.MdlChain as u64);
            h.word(d.DataOffset as u64);
            let b = &*nb;
            for w in b.NdisReserved.iter().chain(&b.MiniportReserved) {
                h.word(*w as u64);
            }
            h.word(b.NdisPoolHandle as u64);
            h.word(u64::from(b.ChecksumBias));
            h.word(b.DataPhysicalAddress);
            hash_mdls(&mut h, d.MdlChain);
            if mode == Checksum::Full {
                for_each_piece(nb, |p| h.bytes(p));
            }
            nb = d.Next;
        }
    }
    h.0 | 1
}

#[cfg(test)]
mod tests;
