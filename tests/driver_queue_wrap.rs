//! A handle's copy-mode receive queue in the real rawnic.sys once it has
//! wrapped: at its byte bound (`MIN_QUEUE_BYTES`, which its first
//! allocation already is), a record that fits in neither the gap between
//! its wrapped tail and its head nor the end makes it compact in place
//! (`RxRing::compact`'s wrapped arm: the two runs rotated to the start),
//! and the retained frames it holds in both runs move with it. Every
//! frame reads back whole and in order; a retained frame read into a
//! buffer too short for it comes cut, and says so.

use rawnic_proto::*;
use rawnic_tests::drv::*;

#[test]
fn a_wrapped_queue_at_its_bound_compacts_and_keeps_every_record_in_order() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let bound = MIN_QUEUE_BYTES as usize;
    let h = open_bounded(&sim, 0, filter::DEFAULT, bound as u32);
    let rec = FrameHeader::record_len;
    let (small, large) = (rec(60), rec(1000));
    let mut seq = 0u32;
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut queued = 0usize;
    let mut inject = |lens: &[usize], sent: &mut Vec<Vec<u8>>, queued: &mut usize| {
        let fs = inject_numbered(&sim, a, lens.iter().copied(), &mut seq);
        *queued += fs.iter().map(|f| rec(f.len())).sum::<usize>();
        sent.extend(fs);
    };
    // 100 small frames (copied), two long ones (retained), then small ones
    // until the end has 16 bytes or more left, but less than a long
    // record's room.
    inject(&[60; 100], &mut sent, &mut queued);
    inject(&[1000, 1000], &mut sent, &mut queued);
    let fill = (bound - queued - 16) / small;
    inject(&vec![60; fill], &mut sent, &mut queued);
    let end = bound - queued;
    assert!((16..large).contains(&end), "{end} bytes left at the end");
    assert_eq!(stats(&h).queued_bytes as usize, queued);
    assert_eq!(retained(&sim, a, 2), 2);
    // The first 40 read: room at the head for a long record and more.
    let mut got: Vec<(FrameHeader, Vec<u8>)> = read(&h, 40 * small);
    assert_eq!(got.len(), 40);
    queued -= 40 * small;
    let head = 40 * small;
    // A long one (retained) wraps to offset 0: it fits at the head, not at
    // the end.
    inject(&[1000], &mut sent, &mut queued);
    assert_eq!(retained(&sim, a, 3), 3);
    // Small ones, then one sized so that the gap left before the head is
    // less than a long record, but the gap and the end together are more.
    let mut gap = head - large;
    let want = large - end.next_multiple_of(8).min(large - 8);
    let mut lens = Vec::new();
    while gap - small >= want + small {
        lens.push(60);
        gap -= small;
    }
    let last = gap - want;
    lens.push(last - FrameHeader::LEN);
    gap -= last;
    inject(&lens, &mut sent, &mut queued);
    assert!(gap < large && gap + end >= large, "gap {gap}, end {end}");
    assert_eq!(stats(&h).queued_bytes as usize, queued);
    // The long record that fits in neither: the queue compacts.
    inject(&[1000], &mut sent, &mut queued);
    assert_eq!(retained(&sim, a, 4), 4, "the new long frame is retained too");
    let st = stats(&h);
    assert_eq!((st.handle.rx_queue_drops, st.queued_bytes as usize), (0, queued), "taken by compacting the queue");
    // Read back a record at a time into a buffer that holds one small one
    // (or the sized one), not two:
    // the long (retained) ones come cut to it, and say so.
    let room = 2 * small - 8;
    loop {
        let more = read(&h, room);
        assert_eq!(more.len(), 1);
        got.extend(more);
        if stats(&h).queued_frames == 0 {
            break;
        }
    }
    assert_eq!(got.len(), sent.len());
    let mut cut = 0;
    for (i, ((hdr, d), f)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(hdr.origlen as usize, f.len(), "record {i}");
        if d.len() < f.len() {
            cut += 1;
            assert_ne!(hdr.flags & frame_flags::TRUNCATED, 0, "record {i}");
            assert_eq!(d.len(), room - FrameHeader::LEN, "record {i}");
        }
        assert_eq!(&d[..], &f[..d.len()], "record {i}: whole and in order");
    }
    assert_eq!(cut, 4, "the four long frames");
    assert_eq!(retained(&sim, a, 0), 0);
    h.close();
    finish(sim);
}
