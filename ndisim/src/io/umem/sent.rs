//! The memory manager's side of sends: which of the driver's MDLs NDIS
//! has (counted per MDL, listed per NBL in its header), and whether a sent
//! NBL's memory is still locked, from the send to its completion. A ring's
//! frames are sent again and again, so each MDL's record keeps where its
//! data was last found (`Seen`), and a completion with nothing locked,
//! unlocked, mapped or unmapped since its send takes the send's answer.

use super::{Place, St, Umem};
use crate::verifier::lock;
use ndis_sys::*;
use std::sync::MutexGuard;

/// The bit of `NblHdr::sent_seen` that says the NBL holds user memory.
const USER_BIT: u32 = 63;

/// The driver's MDLs in one sent NBL: nearly always one, kept inline.
#[derive(Default)]
struct Mine {
    first: Option<usize>,
    more: Vec<usize>,
}

impl Mine {
    fn push(&mut self, m: usize) {
        if self.first.is_none() {
            self.first = Some(m);
        } else {
            self.more.push(m);
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.first.into_iter().chain(self.more.iter().copied())
    }
}

/// A place an MDL's data was found at (`Place::Locked` or `Place::Other`:
/// the two that only a change of regions, locks or mappings can change),
/// for `[va, va + len)`, while `St::generation` was `generation`. A send
/// and its completion look up the same MDLs again and again (a ring's
/// frames): this answers them without the search, and is as exact, since
/// every change that could move the answer bumps the generation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    generation: u64,
    va: usize,
    len: usize,
    locked: bool,
}

impl Seen {
    /// Never matches (generations start at 1).
    pub(super) const NONE: Seen = Seen { generation: 0, va: 0, len: 0, locked: false };
}

impl Umem {
    /// Where an MDL's data is, as `place_of`; for the driver's MDLs,
    /// through the record's `Seen` when nothing changed since it was
    /// stored. `count` adds to its count of NBLs with NDIS (a send: 1, a
    /// completion: -1, else 0), and it is listed in `mine` when it is the
    /// driver's.
    ///
    /// # Safety
    /// `mdl` is a valid MDL.
    unsafe fn mdl_place(st: &mut St, mdl: *mut MDL, count: i32, mine: &mut Mine) -> Place {
        // SAFETY: per the caller.
        let (va, len) = unsafe { (crate::nbl::data_va(mdl) as usize, (*mdl).ByteCount as usize) };
        let generation = st.generation;
        let Some(r) = st.mdls.get_mut(&(mdl as usize)) else { return Self::place_of(st, va, len) };
        r.in_ndis = r.in_ndis.saturating_add_signed(count);
        mine.push(mdl as usize);
        let seen = r.seen;
        if seen.generation == generation && seen.va == va && seen.len == len {
            return if seen.locked { Place::Locked } else { Place::Other };
        }
        let place = Self::place_of(st, va, len);
        let locked = match place {
            Place::Other => false,
            Place::Locked => true,
            // Not stored: a region's death alone can change it.
            Place::Gone(_) => return place,
        };
        if let Some(r) = st.mdls.get_mut(&(mdl as usize)) {
            r.seen = Seen { generation, va, len, locked };
        }
        place
    }

    /// The places of every MDL of `nbl` (`mdl_place`, with `count`):
    /// `Err` names memory no longer locked, `Ok(true)` when some is user
    /// memory.
    ///
    /// # Safety
    /// As `on_send`.
    unsafe fn nbl_places(st: &mut St, nbl: *mut NET_BUFFER_LIST, count: i32, mine: &mut Mine) -> Result<bool, String> {
        let mut bad = None;
        let mut user = false;
        // SAFETY: per the caller.
        unsafe {
            each_mdl(nbl, |m| match Self::mdl_place(st, m, count, mine) {
                Place::Other => {}
                Place::Locked => user = true,
                Place::Gone(w) => {
                    user = true;
                    bad.get_or_insert(format!("MDL {:#x} describes {w}", m as usize));
                }
            })
        };
        bad.map_or(Ok(user), Err)
    }

    /// The memory manager held for a run of sends or completions (one
    /// call's NBLs): one lock for all of them. Nothing that could come back
    /// to the memory manager (a call into the driver) may run while it is
    /// held.
    pub(crate) fn track(&self) -> SendTrack<'_> {
        SendTrack { umem: self, st: lock(&self.st) }
    }
}

/// `Umem::track`.
pub(crate) struct SendTrack<'a> {
    umem: &'a Umem,
    st: MutexGuard<'a, St>,
}

impl SendTrack<'_> {
    /// NDIS takes `nbl` (a send): the driver's MDLs in it are counted as
    /// NDIS's, and `Err` says what memory it describes that is no longer
    /// locked (the miniport must not read it). `Ok(true)` when some of its
    /// data is user memory (a region, or a mapping of one): its bytes are
    /// the user's to change at any moment, so the send's ownership checksum
    /// covers only its structures.
    ///
    /// # Safety
    /// `nbl` is a valid NBL of ndisim's with valid NET_BUFFERs and MDL
    /// chains.
    pub(crate) unsafe fn on_send(&mut self, nbl: *mut NET_BUFFER_LIST) -> Result<bool, String> {
        let st = &mut *self.st;
        let mut mine = Mine::default();
        // SAFETY: per the caller.
        let r = unsafe { Umem::nbl_places(st, nbl, 1, &mut mine) };
        let seen = match r {
            Ok(user) => st.generation | u64::from(user) << USER_BIT,
            Err(_) => 0,
        };
        // SAFETY: an NBL of ndisim's (caller), which NDIS now owns.
        unsafe {
            let h = crate::nbl::hdr(nbl);
            (*h).sent_mdl = mine.first.unwrap_or(0);
            (*h).sent_seen = seen;
        }
        if !mine.is_empty() {
            st.sent += 1;
            if !mine.more.is_empty() {
                st.sent_more.insert(nbl as usize, mine.more);
            }
            // Only whether anything is tracked matters to `active`.
            if st.sent == 1 {
                self.umem.bump(st);
            }
        }
        r
    }

    /// NDIS gives `nbl` back: `Err` as `on_send`, for memory unlocked
    /// while NDIS owned it; `Ok(true)` as `on_send`.
    ///
    /// # Safety
    /// As `on_send`.
    pub(crate) unsafe fn on_complete(&mut self, nbl: *mut NET_BUFFER_LIST) -> Result<bool, String> {
        let st = &mut *self.st;
        // SAFETY: an NBL of ndisim's (caller), still NDIS's.
        let (first, seen) = unsafe {
            let h = crate::nbl::hdr(nbl);
            (std::mem::take(&mut (*h).sent_mdl), std::mem::take(&mut (*h).sent_seen))
        };
        let counted: Mine = if first == 0 {
            Mine::default()
        } else {
            st.sent -= 1;
            let more = if st.sent_more.is_empty() { None } else { st.sent_more.remove(&(nbl as usize)) };
            Mine { first: Some(first), more: more.unwrap_or_default() }
        };
        if seen != 0 && seen & !(1 << USER_BIT) == st.generation {
            // Nothing was locked, unlocked, mapped or unmapped since the
            // send looked: its memory is where it was. (A chain changed
            // meanwhile is the ownership checksum's to see.)
            for m in counted.iter() {
                if let Some(r) = st.mdls.get_mut(&m) {
                    r.in_ndis = r.in_ndis.saturating_sub(1);
                }
            }
            if first != 0 && st.sent == 0 {
                self.umem.bump(st);
            }
            return Ok(seen >> USER_BIT != 0);
        }
        // The MDLs counted at the send are uncounted, whatever the chain
        // holds now (a changed chain is the ownership checksum's to see):
        // the walk uncounts the chain's, and if those are not the ones
        // counted, that is undone and the counted ones uncounted.
        let mut now = Mine::default();
        // SAFETY: per the caller.
        let r = unsafe { Umem::nbl_places(st, nbl, -1, &mut now) };
        if now.first != counted.first || now.more != counted.more {
            for (list, by) in [(&now, 1), (&counted, -1)] {
                for m in list.iter() {
                    if let Some(rec) = st.mdls.get_mut(&m) {
                        rec.in_ndis = rec.in_ndis.saturating_add_signed(by);
                    }
                }
            }
        }
        if first != 0 {
            self.umem.bump(st);
        }
        r
    }
}

/// Calls `f` with every MDL of every NET_BUFFER of `nbl` (at most 1024
/// each).
///
/// # Safety
/// `nbl` is a valid NBL with valid NET_BUFFERs and MDL chains.
unsafe fn each_mdl(nbl: *mut NET_BUFFER_LIST, mut f: impl FnMut(*mut MDL)) {
    // SAFETY: per the caller.
    let mut nb = unsafe { (*nbl).anon.anon.FirstNetBuffer };
    let mut g = 0;
    while !nb.is_null() && g < 1024 {
        g += 1;
        // SAFETY: a valid NET_BUFFER (caller).
        let mut m = unsafe { (*nb).anon.anon.MdlChain };
        let mut h = 0;
        while !m.is_null() && h < 1024 {
            h += 1;
            f(m);
            // SAFETY: a valid MDL (caller).
            m = unsafe { (*m).Next };
        }
        // SAFETY: as above.
        nb = unsafe { (*nb).anon.anon.Next };
    }
}

#[cfg(test)]
mod tests {
    use super::super::Umem;
    use crate::io::UserRegion;
    use crate::nbl;
    use ndis_sys::*;

    /// An NBL of one NET_BUFFER whose one MDL is `mdl`.
    fn nbl_of(mdl: *mut MDL, len: u32) -> *mut NET_BUFFER_LIST {
        let n = nbl::alloc_nbl(0, true, false);
        // SAFETY: a fresh NBL with its NET_BUFFER.
        unsafe {
            let nb = (*n).anon.anon.FirstNetBuffer;
            (*nb).anon.anon.MdlChain = mdl;
            (*nb).anon.anon.CurrentMdl = mdl;
            (*nb).anon.anon.anon.DataLength = len;
        }
        n
    }

    /// The same driver MDL sent again and again is answered from its record
    /// while nothing changes, and looked up again as soon as its pages are
    /// unlocked: at the completion of a send NDIS had then, and at the next
    /// send.
    #[test]
    fn a_remembered_place_goes_with_the_lock() {
        let umem = Umem::new();
        let region = UserRegion::new(8192).unwrap();
        let va = region.as_ptr() as usize;
        let lock_mdl = nbl::alloc_mdl(va, 8192, false);
        umem.lock_irp(&region, lock_mdl as usize, 0x1000, 0x2000);
        // The driver's MDL over the region's second page.
        let mine = nbl::alloc_mdl(va + 4096, 60, false);
        umem.add_mdl(mine as usize, 1);
        let n = nbl_of(mine, 60);
        let in_ndis = |u: &Umem| u.with_mdl(mine as usize, |r| r.in_ndis).unwrap();
        for _ in 0..3 {
            // SAFETY: a valid NBL of ours with a valid chain.
            assert_eq!(unsafe { umem.track().on_send(n) }, Ok(true));
            assert_eq!(in_ndis(&umem), 1);
            // SAFETY: as above.
            assert_eq!(unsafe { umem.track().on_complete(n) }, Ok(true));
            assert_eq!(in_ndis(&umem), 0);
        }
        // Unlocked while NDIS has it: its completion says so.
        // SAFETY: as above.
        assert_eq!(unsafe { umem.track().on_send(n) }, Ok(true));
        umem.unlock(lock_mdl as usize, "test");
        // SAFETY: as above.
        let e = unsafe { umem.track().on_complete(n) }.unwrap_err();
        assert!(e.contains("pages are not locked"), "{e}");
        assert_eq!(in_ndis(&umem), 0);
        // And a send after it too.
        // SAFETY: as above.
        assert!(unsafe { umem.track().on_send(n) }.is_err());
        // SAFETY: as above.
        assert!(unsafe { umem.track().on_complete(n) }.is_err());
        assert_eq!(in_ndis(&umem), 0);
        umem.remove_mdl(mine as usize);
        // SAFETY: ours, no longer used.
        unsafe {
            (*(*n).anon.anon.FirstNetBuffer).anon.anon.MdlChain = std::ptr::null_mut();
            nbl::free_block(n);
            nbl::free_mdl(mine);
            nbl::free_mdl(lock_mdl);
        }
    }

    /// An NBL of several NET_BUFFERs (one of its own, one of a NET_BUFFER
    /// pool), each a frame in another page of the region through a driver
    /// MDL of its own: the send counts every one as NDIS's, the completion
    /// gives every one back, and the unlock of the page under the second
    /// is seen at the completion.
    #[test]
    fn every_net_buffer_of_a_sent_nbl_is_counted() {
        let umem = Umem::new();
        let region = UserRegion::new(3 * 4096).unwrap();
        let va = region.as_ptr() as usize;
        let lock_mdl = nbl::alloc_mdl(va, 3 * 4096, false);
        umem.lock_irp(&region, lock_mdl as usize, 0x1000, 0x2000);
        let mdls: Vec<*mut MDL> = (1..3).map(|p| nbl::alloc_mdl(va + p * 4096, 60, false)).collect();
        for &m in &mdls {
            umem.add_mdl(m as usize, 1);
        }
        let n = nbl_of(mdls[0], 60);
        let second = nbl::alloc_pool_nb(0);
        // SAFETY: our NBL and NET_BUFFERs.
        unsafe {
            let d = &mut (*second).anon.anon;
            (d.MdlChain, d.CurrentMdl, d.anon.DataLength) = (mdls[1], mdls[1], 60);
            (*(*n).anon.anon.FirstNetBuffer).anon.anon.Next = second;
        }
        let in_ndis =
            |u: &Umem| mdls.iter().map(|&m| u.with_mdl(m as usize, |r| r.in_ndis).unwrap()).collect::<Vec<_>>();
        // SAFETY: a valid NBL of ours with valid chains.
        assert_eq!(unsafe { umem.track().on_send(n) }, Ok(true));
        assert_eq!(in_ndis(&umem), [1, 1]);
        // SAFETY: as above.
        assert_eq!(unsafe { umem.track().on_complete(n) }, Ok(true));
        assert_eq!(in_ndis(&umem), [0, 0]);
        // SAFETY: as above.
        assert_eq!(unsafe { umem.track().on_send(n) }, Ok(true));
        umem.unlock(lock_mdl as usize, "test");
        // SAFETY: as above.
        let e = unsafe { umem.track().on_complete(n) }.unwrap_err();
        assert!(e.contains("pages are not locked"), "{e}");
        assert_eq!(in_ndis(&umem), [0, 0]);
        // SAFETY: ours, no longer used.
        unsafe {
            (*(*n).anon.anon.FirstNetBuffer).anon.anon = std::mem::zeroed();
            nbl::free_block(n);
            nbl::free_pool_nb(second);
            for &m in &mdls {
                umem.remove_mdl(m as usize);
                nbl::free_mdl(m);
            }
            nbl::free_mdl(lock_mdl);
        }
    }
}
