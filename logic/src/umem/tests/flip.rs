//! Fill entries that change between the driver's reads: each is used as
//! it was when checked, never read again.

use super::*;

/// `Mem` whose fill ring entries change at every read the driver makes
/// (each second read gives an address that is no frame's start instead of
/// what the entry holds): a user rewriting its entries as fast as the
/// driver reads them.
struct Flipping<'a> {
    mem: &'a Mem,
    fill: usize,
    reads: core::cell::Cell<u64>,
}

/// `Flipping`'s ring entries: the fill ring's flip.
#[derive(Clone, Copy)]
struct FlipEntries<'a> {
    inner: MemEntries<'a>,
    flip: Option<&'a Flipping<'a>>,
}

impl<const W: usize> EntryWords<W> for FlipEntries<'_> {
    fn load(&self, i: u32) -> [u64; W] {
        let words: [u64; W] = self.inner.load(i);
        let Some(f) = self.flip else { return words };
        let n = f.reads.get();
        f.reads.set(n + 1);
        if n % 2 == 0 {
            return words;
        }
        let l = RingLayout::new(&flip_setup()).unwrap();
        // Inside a frame, the UMEM's last byte, past it, a frame's index
        // past 32 bits.
        let bad = [words[0] + 1, l.total as u64 - 1, l.total as u64, words[0] + (2048 << 32)][(n / 2 % 4) as usize];
        core::array::from_fn(|_| bad)
    }
    fn store(&self, i: u32, words: [u64; W]) {
        self.inner.store(i, words)
    }
}

impl SharedMem for Flipping<'_> {
    type Entries<'a, const W: usize>
        = FlipEntries<'a>
    where
        Self: 'a;
    fn entries<const W: usize>(&self, first: usize, count: u32) -> Option<FlipEntries<'_>> {
        let inner = <Mem as SharedMem>::entries::<W>(self.mem, first, count)?;
        Some(FlipEntries { inner, flip: (first == self.fill).then_some(self) })
    }
    fn load_u32(&self, off: usize) -> u32 {
        self.mem.load_u32(off)
    }
    fn store_u32(&self, off: usize, v: u32) {
        self.mem.store_u32(off, v)
    }
    fn load_u64(&self, off: usize) -> u64 {
        self.mem.load_u64(off)
    }
    fn store_u64(&self, off: usize, v: u64) {
        self.mem.store_u64(off, v)
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        self.mem.read(off, dst)
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.mem.write(off, src)
    }
}

fn flip_setup() -> RingSetup {
    RingSetup { frame_size: 2048, frame_count: 16, fill: 16, rx: 16, tx: 8, completion: 8 }
}

/// Fill entries that change between any two reads (every second read
/// gives an address no frame starts at): whatever the driver takes, one
/// frame at a time or a batch at a time, is what it checked. Each frame
/// is copied to a frame's start, the descriptor names the offset the
/// copy went to, and each entry consumed is placed or counted invalid.
/// (Would catch: an entry read again after its check, for the copy or the
/// descriptor; the read-ahead entry used without its check.) From each
/// of `wrap::BASES`.
#[test]
fn fill_entries_that_change_at_every_read_are_used_as_checked() {
    wrap::from_each_base(|b| {
        let l = RingLayout::new(&flip_setup()).unwrap();
        let m = Mem(RefCell::new(vec![0xEE; l.total]));
        wrap::user_at(&l, &m, b);
        let fm = Flipping { mem: &m, fill: l.fill.entry_at(0), reads: core::cell::Cell::new(0) };
        let mut s = wrap::state_at(l, b);
        s.announce(&fm);
        let mut copies = Vec::new();
        for round in 0..6u32 {
            // A full fill ring of frames, a full rx ring of room.
            let base = m.load_u32(l.fill.consumer());
            for k in 0..16 {
                m.store_u64(l.fill.entry_at(base.wrapping_add(k)), frame(&l, u64::from((k + round) % 16)));
            }
            m.store_u32(l.fill.producer(), base.wrapping_add(16));
            // Flip the phase, so the read ahead finds each kind in turn.
            fm.reads.set(fm.reads.get() + u64::from(round % 2));
            let desc = |_: &u32| RxDesc { origlen: 60, ..RxDesc::default() };
            {
                let mut r = s.rx_run(&fm);
                let _ = r.frame(&fm, RxDesc { origlen: 60, ..RxDesc::default() }, |off, _| {
                    copies.push(off as u64);
                    60
                });
                let items: Vec<u32> = (0..5).collect();
                r.frames::<u32, 32>(&fm, &items, u32::MAX, desc, |_, off, _| copies.push(off as u64), |_, _| {});
                let _ = r.frame(&fm, RxDesc { origlen: 60, ..RxDesc::default() }, |off, _| {
                    copies.push(off as u64);
                    60
                });
            }
            s.publish(&fm);
            m.store_u32(l.rx.consumer(), m.load_u32(l.rx.producer()));
        }
        assert!(copies.len() >= 20, "frames were placed: {}", copies.len());
        assert!(s.counters.fill_invalid >= 10, "flipped entries were seen: {}", s.counters.fill_invalid);
        for &off in &copies {
            assert!(l.is_frame_start(off), "a copy to {off:#x}, no frame's start");
        }
        // The rx ring's descriptors name the offsets copied to, in order.
        let prod = m.load_u32(l.rx.producer()).wrapping_sub(b.rx);
        assert_eq!(prod as usize, copies.len());
        assert_eq!(s.counters.rx_frames, copies.len() as u64);
        let named: Vec<u64> = (prod - 16.min(prod)..prod)
            .map(|i| {
                let mut raw = [0u8; RxDesc::LEN];
                m.read(l.rx.entry_at(b.rx(i)), &mut raw);
                RxDesc::from_bytes(&raw).addr
            })
            .collect();
        assert_eq!(named, copies[copies.len() - named.len()..]);
        let fill_cons = m.load_u32(l.fill.consumer()).wrapping_sub(b.fill);
        assert_eq!(u64::from(fill_cons), s.counters.rx_frames + s.counters.fill_invalid);
    });
}
