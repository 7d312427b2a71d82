//! The NBL, NET_BUFFER and MDL checks of `nbl`.

use super::*;

/// An NBL with its NET_BUFFER on a chain of two MDLs (64 and 32 bytes
/// of `buf`), described as the data's 90 bytes from offset 4.
struct Two {
    nbl: *mut NET_BUFFER_LIST,
    mdls: [*mut MDL; 2],
    _buf: Vec<u8>,
}

impl Two {
    fn new() -> Two {
        let buf = vec![0u8; 96];
        let a = alloc_mdl(buf.as_ptr() as usize, 64, true);
        let b = alloc_mdl(buf.as_ptr() as usize + 64, 32, true);
        let nbl = alloc_nbl(0, true, false);
        // SAFETY: our fresh MDLs and NBL with its NET_BUFFER.
        unsafe {
            (*a).Next = b;
            let d = &mut (*(*nbl).anon.anon.FirstNetBuffer).anon.anon;
            d.MdlChain = a;
            d.CurrentMdl = a;
            d.CurrentMdlOffset = 4;
            d.DataOffset = 4;
            d.anon.DataLength = 90;
        }
        Two { nbl, mdls: [a, b], _buf: buf }
    }

    /// Changes the NET_BUFFER's fields with `f` (given the MDLs), then
    /// says what is inconsistent.
    fn with(&mut self, f: impl FnOnce(&mut NET_BUFFER_FIELDS, [*mut MDL; 2])) -> Option<String> {
        // SAFETY: our NBL's NET_BUFFER, borrowed for the call only.
        f(unsafe { &mut (*(*self.nbl).anon.anon.FirstNetBuffer).anon.anon }, self.mdls);
        self.error()
    }

    fn error(&self) -> Option<String> {
        // SAFETY: our NET_BUFFER and MDLs.
        unsafe { nb_layout_error((*self.nbl).anon.anon.FirstNetBuffer) }
    }
}

impl Drop for Two {
    fn drop(&mut self) {
        // SAFETY: ours, freed once.
        unsafe {
            free_block(self.nbl);
            self.mdls.iter().for_each(|&m| free_mdl(m));
        }
    }
}

#[test]
fn a_consistent_net_buffer_passes() {
    let mut t = Two::new();
    assert_eq!(t.error(), None);
    // The data starting in the second MDL, and at the end of the first.
    let e = t.with(|d, m| (d.CurrentMdl, d.CurrentMdlOffset, d.DataOffset, d.anon.DataLength) = (m[1], 2, 66, 30));
    assert_eq!(e, None);
    let e = t.with(|d, m| (d.CurrentMdl, d.CurrentMdlOffset, d.DataOffset, d.anon.DataLength) = (m[0], 64, 64, 32));
    assert_eq!(e, None);
    // No chain, no data.
    let e = t.with(|d, _| {
        (d.MdlChain, d.CurrentMdl, d.CurrentMdlOffset, d.DataOffset, d.anon.DataLength) =
            (std::ptr::null_mut(), std::ptr::null_mut(), 0, 0, 0)
    });
    assert_eq!(e, None);
}

#[test]
fn only_a_net_buffer_ndis_allocated_is_valid() {
    let t = Two::new();
    // SAFETY: our NBL.
    assert!(nb_valid(unsafe { (*t.nbl).anon.anon.FirstNetBuffer }));
    // A copy in memory of the driver's own, with room before it.
    let mut own = vec![0u64; 256];
    let nb = own[128..].as_mut_ptr().cast::<NET_BUFFER>();
    // SAFETY: our NET_BUFFER, into our buffer's second half.
    unsafe { std::ptr::copy_nonoverlapping((*t.nbl).anon.anon.FirstNetBuffer, nb, 1) };
    assert!(!nb_valid(nb));
    assert!(!nb_valid(std::ptr::null_mut()));
}

#[test]
fn a_net_buffer_pool_s_net_buffer_is_valid_while_allocated() {
    let nb = alloc_pool_nb(0x1234_0000);
    assert!(nb_valid(nb));
    assert!(!preallocated(nb));
    let h = pool_nb(nb).unwrap();
    // SAFETY: the header of our NET_BUFFER.
    assert_eq!(unsafe { (*h).pool }, 0x1234_0000);
    // A copy in the driver's own memory is none of NDIS's.
    let mut own = vec![0u128; 64];
    let copy = own[32..].as_mut_ptr().cast::<NET_BUFFER>();
    // SAFETY: our NET_BUFFER, into our buffer's second half.
    unsafe { std::ptr::copy_nonoverlapping(nb, copy, 1) };
    assert!(!nb_valid(copy));
    // Freed, it is no longer valid; its block stays.
    // SAFETY: the header found above.
    unsafe { (*h).state.store(nb_state::FREE, std::sync::atomic::Ordering::Release) };
    assert!(!nb_valid(nb));
    assert!(pool_nb(nb).is_some());
    // SAFETY: ours, not used again.
    unsafe { free_pool_nb(nb) };
}

#[test]
fn an_nbl_without_net_buffer_has_none_that_is_valid() {
    let n = alloc_nbl(0, false, false);
    // SAFETY: our NBL.
    assert!(unsafe { (*n).anon.anon.FirstNetBuffer }.is_null());
    // Where a preallocated one would be, there is none.
    assert!(!nb_valid((n as usize + NBL_SIZE) as *mut NET_BUFFER));
    // SAFETY: ours, not used again.
    unsafe { free_block(n) };
}

#[test]
fn each_inconsistency_is_named() {
    type Break = fn(&mut NET_BUFFER_FIELDS, [*mut MDL; 2]);
    let cases: [(&str, Break); 5] = [
        ("no MDL chain", |d, _| d.MdlChain = std::ptr::null_mut()),
        ("not an MDL of", |d, _| d.CurrentMdl = d as *mut NET_BUFFER_FIELDS as *mut MDL),
        ("past the end of CurrentMdl", |d, m| (d.CurrentMdl, d.CurrentMdlOffset) = (m[1], 33)),
        ("point 6 bytes into the MDL chain, DataOffset 4", |d, _| d.CurrentMdlOffset = 6),
        ("exceed the MDL chain's 96 bytes", |d, _| d.anon.DataLength = 93),
    ];
    for (want, break_it) in cases {
        let got = Two::new().with(break_it);
        assert!(got.as_deref().is_some_and(|g| g.contains(want)), "{want}: {got:?}");
    }
}

/// A NET_BUFFER of a NET_BUFFER pool is judged by its own header alone:
/// nothing before its block is read (the block may start a page after one
/// nobody may read, or after memory the process freed: an AddressSanitizer
/// run of the explorer saw `nb_valid` read 496 bytes before such a block,
/// where an NBL's header would be, in freed memory).
#[test]
fn a_pool_net_buffer_is_judged_by_its_own_header_alone() {
    const PAGE: usize = 4096;
    // SAFETY: a fresh private anonymous mapping of two pages.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    // SAFETY: the first page of our mapping; nothing of it is read again.
    assert_eq!(unsafe { libc::mprotect(base, PAGE, libc::PROT_NONE) }, 0);
    // A pool block laid out as `alloc_pool_nb` lays it out, at the start of
    // the second page.
    let h = (base as usize + PAGE) as *mut NbHdr;
    // SAFETY: our readable page, 16-aligned, large enough for the header.
    unsafe {
        (*h).magic = NB_MAGIC;
        (*h).state = AtomicU8::new(nb_state::LIVE);
        (*h).pool = 0x1234_0000;
    }
    let nb = (h as usize + NB_HDR) as *mut NET_BUFFER;
    assert!(nb_valid(nb));
    // SAFETY: our header.
    unsafe { (*h).state.store(nb_state::FREE, std::sync::atomic::Ordering::Release) };
    assert!(!nb_valid(nb));
    // SAFETY: our mapping, no longer used.
    assert_eq!(unsafe { libc::munmap(base, 2 * PAGE) }, 0);
}
