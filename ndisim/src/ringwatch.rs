//! The user's side of frame ownership in a UMEM (`rawnic_proto::ring`),
//! checked: rule `umem-after-handback`.
//!
//! A frame the driver hands back to the user, on the rx ring (the rx
//! producer index passes a descriptor naming it) or on the completion ring
//! (its offset), is the user's until the user gives it to the driver again
//! on the fill or the tx ring. The driver must not write it meanwhile: the
//! user may be reading it, or writing a frame to send into it.
//!
//! ndisim cannot see the driver's writes to user memory as they happen (it
//! maps the pages for the driver; the writes are plain stores), so a
//! `RingWatch` checksums each frame when the user takes it back and checks
//! it again when the user gives it to the driver, when asked
//! (`check_all`), whenever the simulation's violations are read
//! (`Sim::violations`, `Sim::unload`) and when the watch is dropped. The
//! test, acting as the user, tells it what it does:
//!
//! - `handed_back(addr, ring)` when it consumes an rx descriptor or a
//!   completion entry (after the driver's producer index passed it);
//! - `reclaim(addr)` before it posts `addr` on the fill ring or in a tx
//!   descriptor (before its producer index passes the entry);
//! - `take(addr)` before it writes into a frame it holds without giving it
//!   yet (a frame back from the completion ring, refilled to be sent): the
//!   frame is checked and no longer watched.
//!
//! The whole frame is checksummed (`frame_size` bytes), whatever the
//! descriptor's length: the driver may write none of it. An entry may name
//! a frame the driver already has through another entry (two tx
//! descriptors into one frame): the frame is watched only once every entry
//! naming it has come back. Addresses outside the frames (a tx descriptor
//! the driver refused) are not frames anyone owns and are ignored.
//!
//! The checksum is four independent multiply-rotate lanes over the frame's
//! 64-bit words: every step is a bijection, so a write that changes one
//! word is always seen, and a 4 KiB frame costs about a microsecond.

use crate::io::UserRegion;
use crate::kernel::Kernel;
use crate::sim::{Handle, Sim};
use crate::verifier::{LateCheck, Rule, Verifier, Violation, lock};
use rawnic_proto::ring::{FRAME_SIZES, RingLayout};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

/// Which ring handed a frame back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handback {
    /// An rx descriptor.
    Rx,
    /// A completion ring entry.
    Completion,
}

impl Handback {
    fn name(self) -> &'static str {
        match self {
            Handback::Rx => "rx",
            Handback::Completion => "completion",
        }
    }
}

/// Watches the frames of one UMEM that the driver handed back (see the
/// module's documentation).
pub struct RingWatch {
    inner: Arc<Inner>,
}

struct Inner {
    region: Arc<UserRegion>,
    layout: RingLayout,
    /// Where violations go (the simulation may be gone before the watch).
    kernel: Weak<Kernel>,
    frames: Mutex<Frames>,
}

#[derive(Clone, Copy)]
struct Held {
    sum: u64,
    from: Handback,
}

struct Frames {
    /// Per frame: entries naming it that the user gave the driver and the
    /// driver has not handed back.
    given: Vec<u32>,
    /// Per frame: its checksum while the user holds it and it is watched.
    held: Vec<Option<Held>>,
    watched: usize,
}

const LARGEST_FRAME: usize = FRAME_SIZES[FRAME_SIZES.len() - 1] as usize;

impl RingWatch {
    /// A watch over the UMEM `region` laid out as `layout` (the user's
    /// memory: offsets are from its first byte), reporting to `sim`. No
    /// frame is watched until one is handed back.
    pub fn new(sim: &Sim, region: Arc<UserRegion>, layout: RingLayout) -> RingWatch {
        Self::in_kernel(sim.kernel(), region, layout)
    }

    /// The same, reporting to the simulation `handle` is open in.
    pub fn for_handle(handle: &Handle, region: Arc<UserRegion>, layout: RingLayout) -> RingWatch {
        Self::in_kernel(handle.kernel(), region, layout)
    }

    fn in_kernel(k: &Arc<Kernel>, region: Arc<UserRegion>, layout: RingLayout) -> RingWatch {
        let watch = Self::with_kernel(Arc::downgrade(k), region, layout);
        let late: Weak<Inner> = Arc::downgrade(&watch.inner);
        let late: Weak<dyn LateCheck> = late;
        k.verifier.add_late_check(late);
        watch
    }

    fn with_kernel(kernel: Weak<Kernel>, region: Arc<UserRegion>, layout: RingLayout) -> RingWatch {
        assert!(
            layout.total <= region.len(),
            "a UMEM of {} bytes does not fit the {}-byte region",
            layout.total,
            region.len()
        );
        assert!(layout.frame_size as usize <= LARGEST_FRAME, "frames of {} bytes", layout.frame_size);
        let n = layout.frame_count as usize;
        let frames = Mutex::new(Frames { given: vec![0; n], held: vec![None; n], watched: 0 });
        RingWatch { inner: Arc::new(Inner { region, layout, kernel, frames }) }
    }

    /// The user consumed an entry of `ring` naming `addr` (an rx
    /// descriptor's `addr`, or a completion entry): once every entry naming
    /// its frame is back, the frame is checksummed and watched.
    pub fn handed_back(&self, addr: u64, ring: Handback) {
        let i = &*self.inner;
        let Some(f) = i.frame_of(addr) else { return };
        let mut fr = lock(&i.frames);
        fr.given[f] = fr.given[f].saturating_sub(1);
        if fr.given[f] > 0 {
            return;
        }
        let sum = i.sum(f);
        match fr.held[f] {
            Some(h) if h.sum != sum => {
                // Back twice without being given in between (or given
                // before the watch began), and written meanwhile.
                let v = i.violation(f, h.from, "handed_back", " (it came back again meanwhile)");
                i.report(v);
            }
            Some(_) => {}
            None => fr.watched += 1,
        }
        fr.held[f] = Some(Held { sum, from: ring });
    }

    /// The user is about to give `addr`'s frame to the driver (post it on
    /// the fill ring or in a tx descriptor): checked if it was watched, and
    /// the driver's again. Returns the violation found, if any (also
    /// reported).
    pub fn reclaim(&self, addr: u64) -> Option<Violation> {
        let i = &*self.inner;
        let f = i.frame_of(addr)?;
        let mut fr = lock(&i.frames);
        fr.given[f] = fr.given[f].saturating_add(1);
        i.release(&mut fr, f, "reclaim")
    }

    /// The user is about to write into `addr`'s frame, which it holds:
    /// checked if it was watched, and no longer watched. Returns the
    /// violation found, if any (also reported).
    pub fn take(&self, addr: u64) -> Option<Violation> {
        let i = &*self.inner;
        let f = i.frame_of(addr)?;
        let mut fr = lock(&i.frames);
        i.release(&mut fr, f, "take")
    }

    /// Checks every watched frame now. Each write is reported once: a frame
    /// found changed is watched from its new contents.
    pub fn check_all(&self) -> Vec<Violation> {
        let found = self.inner.check("check_all");
        for v in &found {
            self.inner.report(v.clone());
        }
        found
    }

    /// Frames handed back and watched.
    pub fn watched(&self) -> usize {
        lock(&self.inner.frames).watched
    }

    /// Entries naming `addr`'s frame that the user gave the driver and the
    /// driver has not handed back (0 outside the frames).
    pub fn given(&self, addr: u64) -> u32 {
        let i = &*self.inner;
        i.frame_of(addr).map_or(0, |f| lock(&i.frames).given[f])
    }

    pub fn layout(&self) -> &RingLayout {
        &self.inner.layout
    }

    pub fn region(&self) -> &Arc<UserRegion> {
        &self.inner.region
    }
}

impl Inner {
    fn frame_of(&self, addr: u64) -> Option<usize> {
        let rel = usize::try_from(addr).ok()?.checked_sub(self.layout.frames)?;
        let f = rel / self.layout.frame_size as usize;
        (f < self.layout.frame_count as usize).then_some(f)
    }

    fn offset(&self, f: usize) -> usize {
        self.layout.frames + f * self.layout.frame_size as usize
    }

    fn sum(&self, f: usize) -> u64 {
        let mut buf = [0u8; LARGEST_FRAME];
        let bytes = &mut buf[..self.layout.frame_size as usize];
        self.region.read(self.offset(f), bytes);
        checksum(bytes)
    }

    fn violation(&self, f: usize, from: Handback, call: &str, more: &str) -> Violation {
        let off = self.offset(f);
        Violation::new(
            Rule::UmemAfterHandback,
            call,
            format!(
                "UMEM frame {f} (offset {off:#x}) of user region #{} changed after the driver handed it back on the {} ring{more}: the user holds it until it gives it again on the fill or tx ring",
                self.region.id(),
                from.name(),
            ),
        )
        .with_object(self.region.as_ptr() as usize + off)
    }

    /// Checks frame `f` if it is watched, and stops watching it.
    fn release(&self, fr: &mut Frames, f: usize, call: &str) -> Option<Violation> {
        let h = fr.held[f].take()?;
        fr.watched -= 1;
        if self.sum(f) == h.sum {
            return None;
        }
        let v = self.violation(f, h.from, call, "");
        self.report(v.clone());
        Some(v)
    }

    /// Checks every watched frame; a changed one is watched from its new
    /// contents. Returns what it found, unreported.
    fn check(&self, call: &str) -> Vec<Violation> {
        let mut fr = lock(&self.frames);
        if fr.watched == 0 {
            return Vec::new();
        }
        let mut found = Vec::new();
        for f in 0..fr.held.len() {
            let Some(h) = fr.held[f] else { continue };
            let sum = self.sum(f);
            if sum != h.sum {
                found.push(self.violation(f, h.from, call, ""));
                fr.held[f] = Some(Held { sum, from: h.from });
            }
        }
        found
    }

    fn report(&self, v: Violation) {
        match self.kernel.upgrade() {
            Some(k) => k.verifier.report(v),
            None => eprintln!("ndisim: VERIFIER (the simulation is gone): {v}"),
        }
    }
}

impl LateCheck for Inner {
    fn late_check(&self, v: &Verifier) {
        for found in self.check("Sim::violations or unload") {
            v.report(found);
        }
    }
}

impl Drop for RingWatch {
    fn drop(&mut self) {
        for v in self.inner.check("RingWatch drop") {
            self.inner.report(v);
        }
    }
}

impl fmt::Debug for RingWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingWatch({:?}, {} frames watched)", self.inner.region, self.watched())
    }
}

/// The frame checksum (see the module's documentation).
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    #[inline(always)]
    fn step(h: u64, w: u64) -> u64 {
        (h ^ w).wrapping_mul(K).rotate_left(29)
    }
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    };
    let mut lanes = [0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344, 0xa409_3822_299f_31d0, 0x082e_fa98_ec4e_6c89];
    let mut blocks = bytes.chunks_exact(32);
    for b in &mut blocks {
        for (l, c) in lanes.iter_mut().zip(b.chunks_exact(8)) {
            *l = step(*l, word(c));
        }
    }
    for (l, c) in lanes.iter_mut().zip(blocks.remainder().chunks(8)) {
        *l = step(*l, word(c));
    }
    lanes.into_iter().fold(bytes.len() as u64, step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawnic_proto::ring::RingSetup;

    fn watch() -> RingWatch {
        let s = RingSetup { frame_size: 2048, frame_count: 8, fill: 8, rx: 8, tx: 8, completion: 8 };
        let l = RingLayout::new(&s).unwrap();
        RingWatch::with_kernel(Weak::new(), UserRegion::new(l.total).unwrap(), l)
    }

    fn frame(w: &RingWatch, i: u64) -> u64 {
        w.layout().frames as u64 + i * w.layout().frame_size as u64
    }

    #[test]
    fn one_changed_word_anywhere_changes_the_checksum() {
        let mut b = vec![0u8; 2048];
        let base = checksum(&b);
        for i in (0..2048).step_by(97) {
            for bit in [0x01, 0x80] {
                b[i] ^= bit;
                assert_ne!(checksum(&b), base, "byte {i} bit {bit:#x}");
                b[i] ^= bit;
            }
        }
        assert_eq!(checksum(&b), base);
        assert_ne!(checksum(&b[..2047]), checksum(&b[..2046]), "lengths count");
    }

    #[test]
    fn a_write_after_the_handback_is_seen_when_the_frame_is_given_again() {
        let w = watch();
        let (a, b) = (frame(&w, 2), frame(&w, 5) + 100);
        w.reclaim(a);
        w.reclaim(b);
        // Written by the driver while it had them: fine.
        w.region().write(a as usize, b"received");
        w.handed_back(a, Handback::Rx);
        w.handed_back(b, Handback::Completion);
        assert_eq!(w.watched(), 2);
        assert!(w.check_all().is_empty());
        w.region().write(frame(&w, 5) as usize + 2047, b"!");
        let found = w.check_all();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, Rule::UmemAfterHandback);
        assert!(found[0].detail.contains("frame 5 ") && found[0].detail.contains("completion ring"), "{found:?}");
        assert!(w.check_all().is_empty(), "reported once");
        assert!(w.reclaim(a).is_none());
        w.region().write(a as usize, b"late");
        assert!(w.reclaim(a).is_none(), "given again: the driver's to write");
        assert_eq!(w.given(a), 2);
        // Out of the frames: ignored.
        w.handed_back(u64::MAX, Handback::Completion);
        w.handed_back(frame(&w, 8), Handback::Completion);
        assert!(w.reclaim(3).is_none());
    }

    #[test]
    fn a_frame_is_watched_only_when_every_entry_naming_it_is_back() {
        let w = watch();
        let a = frame(&w, 1);
        w.reclaim(a);
        w.reclaim(a + 64);
        w.handed_back(a + 64, Handback::Completion);
        assert_eq!(w.watched(), 0, "the driver still has it through the other entry");
        w.region().write(a as usize, b"legit");
        w.handed_back(a, Handback::Rx);
        assert_eq!(w.watched(), 1);
        w.region().write(a as usize + 10, b"x");
        let v = w.reclaim(a).expect("caught at the reclaim");
        assert!(v.call == "reclaim" && v.detail.contains("rx ring"), "{v}");
        // The user's own writes, announced with take, are not the driver's.
        w.handed_back(a, Handback::Rx);
        assert!(w.take(a).is_none());
        w.region().write(a as usize, b"the user's");
        assert!(w.reclaim(a).is_none());
        assert_eq!(w.watched(), 0);
    }
}
