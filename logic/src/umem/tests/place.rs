//! Where `TxRun::take` says a frame lies, in each of its copies (2 KiB
//! frames, 4 KiB ones, any other size).

use super::*;

/// For each frame size, `take` hands on the frame index and offset
/// within that `place` gives, for addresses in, between, before and past
/// the frames (from each of `wrap::BASES`: the tx ring's walk across its
/// index's wrap).
#[test]
fn each_copy_of_take_places_frames_as_place_does() {
    // 8192 is no size a layout allows: the copy with the run's own shift
    // and mask, on a layout made for 4 KiB frames and then changed.
    for (size, b) in [2048u32, 4096, 8192].into_iter().flat_map(|size| wrap::BASES.map(|b| (size, b))) {
        let s = RingSetup { frame_size: size.min(4096), frame_count: 16, fill: 8, rx: 8, tx: 64, completion: 64 };
        let mut l = RingLayout::new(&s).unwrap();
        l.frame_size = size;
        let m = Mem(RefCell::new(vec![0; l.total]));
        wrap::user_at(&l, &m, b);
        let mut st = wrap::state_at(l, b);
        st.announce(&m);
        let base = l.frames as u64;
        let size = u64::from(size);
        let addrs =
            [base, base + 7, base + size - 60, base + 3 * size + 100, base + 20 * size + 1, base - 1, 5, u64::MAX];
        let descs: Vec<TxDesc> = addrs.iter().map(|&addr| TxDesc { addr, len: 60, flags: 0 }).collect();
        tx(&l, &m, &descs);
        assert_eq!(st.tx_refresh(&st.tx_side(&m), 64), descs.len() as u32);
        let side = st.tx_side(&m);
        let mut run = st.tx_run();
        let want: Vec<(u64, u64)> = descs.iter().map(|d| run.place(d)).collect();
        for (i, &(index, within)) in want.iter().enumerate() {
            let rel = addrs[i].wrapping_sub(base);
            assert_eq!((index, within), (rel / size, rel % size));
        }
        let mut got = Vec::new();
        let taken = run.take(&side, 64, 1518, |_, _, index, within| {
            got.push((index, within));
            true
        });
        assert_eq!(taken, (descs.len() as u32, 0));
        assert_eq!(got, want);
    }
}
