//! The receive path of the real rawnic.sys in ndisim, seen through READ:
//! NBLs indicated while pausing, retained NBLs given back when a handle
//! closes or a low indication meets a pause on its way, readers that fall
//! behind, frames in any
//! MDL layout, mapped or not, reads mapped only to be filled, and the pool
//! budget of all receive queues. The verifier stays clean.

use ndisim::{InjectOpts, IoToken, NbLayout, RestartSpec};
use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::races::racing;

/// "Receives indicated during Pausing are returned at once": NDIS may still
/// indicate while a pause waits for sends; the driver neither queues nor
/// keeps them.
#[test]
fn frames_indicated_while_pausing_are_returned_at_once() {
    let sim = start(&["null@completion=held"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    assert_eq!(send(&h, &[frame(PEER, PEER, 0x88b5, 60, 0)]).accepted, 1);
    std::thread::scope(|s| {
        let pausing = s.spawn(|| sim.pause(a));
        while entry(&sim, 0).state != state::PAUSING {
            std::thread::yield_now();
        }
        let big = frame(BROADCAST, PEER, 0x88b5, 1000, 1);
        sim.inject(a, &[&big[..], &big[..]], &InjectOpts::default()).unwrap();
        assert_eq!(sim.outstanding(a).receives_retained, 0, "nothing is kept while pausing");
        assert_eq!(stats(&h).queued_frames, 0, "nothing is queued while pausing");
        assert!(!pausing.is_finished());
        sim.release_sends(a, None).unwrap();
        pausing.join().unwrap().unwrap();
    });
    assert_eq!(stats(&h).binding.rx_frames, 0, "the binding did not take them");
    sim.restart(a, &RestartSpec::default()).unwrap();
    h.close();
    finish(sim);
}

#[test]
fn a_reader_that_falls_behind_gets_copies_and_holds_no_nbl() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let big: Vec<Vec<u8>> = (0..40).map(|i| frame(BROADCAST, PEER, 0x88b5, 300 + i, i as u32)).collect();
    // Up to 16 frames of 256 bytes or more are retained while no read waits.
    for f in &big[..16] {
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    }
    assert_eq!(retained(&sim, a, 16), 16);
    // The 17th: the reader is behind; the 16 are copied, their NBLs go back,
    // and from then on frames are copied.
    for f in &big[16..] {
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    }
    assert_eq!(retained(&sim, a, 0), 0);
    let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, big, "every frame, in order, whether retained or copied");
    // The queue drained: retention starts again.
    sim.inject(a, &[&big[0][..]], &InjectOpts::default()).unwrap();
    assert_eq!(retained(&sim, a, 1), 1);
    assert_eq!(read(&h, 1 << 20)[0].1, big[0]);
    assert_eq!(retained(&sim, a, 0), 0);
    h.close();
    finish(sim);
}

/// A frame NDIS looped back from another protocol's send is copied, never
/// retained, whatever its length and even with no read waiting: its NBL
/// goes back within the indication, so that protocol's send completes then,
/// not when a rawnic reader gets to it. A frame from the wire of the same
/// length is retained (the test can tell). Before, a looped-back frame of
/// 256 bytes or more was retained until read.
#[test]
fn a_looped_back_frame_is_copied_and_its_nbl_goes_back_within_the_indication() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let looped: Vec<Vec<u8>> = (0..3).map(|i| frame(BROADCAST, PEER, 0x88b5, 1000 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = looped.iter().map(|f| &f[..]).collect();
    let lo = InjectOpts { loopback: true, ..InjectOpts::default() };
    assert_eq!(sim.inject(a, &refs[..1], &lo).unwrap(), 1);
    assert_eq!(sim.outstanding(a).receives_retained, 0, "back within its indication");
    // Several in one indication, and one NBL of two.
    let two = InjectOpts { nbs_per_nbl: 2, ..lo.clone() };
    assert_eq!(sim.inject(a, &refs[1..], &two).unwrap(), 2);
    assert_eq!(sim.outstanding(a).receives_retained, 0, "back within their indication");
    // The wire's frame of the same length is retained.
    let wire = frame(BROADCAST, PEER, 0x88b5, 1000, 9);
    assert_eq!(sim.inject(a, &[&wire[..]], &InjectOpts::default()).unwrap(), 1);
    assert_eq!(retained(&sim, a, 1), 1);
    let got = read(&h, 1 << 20);
    assert_eq!(got.len(), 4);
    for (i, (hdr, data)) in got.iter().enumerate().take(3) {
        assert_eq!(data, &looped[i], "copied intact");
        assert_eq!(
            hdr.flags & (frame_flags::OUTBOUND | frame_flags::LOOPBACK),
            frame_flags::OUTBOUND | frame_flags::LOOPBACK
        );
    }
    assert_eq!(got[3].1, wire);
    assert_eq!(retained(&sim, a, 0), 0);
    h.close();
    finish(sim);
}

/// A miniport with few receive buffers says so: an indication that leaves
/// it low carries NDIS_RECEIVE_FLAGS_RESOURCES, and the driver gives back
/// at once every NBL it retained before (copying their frames into their
/// queues), not only the ones of that indication: the NIC gets its
/// buffers back, the reader still reads every frame, in order.
#[test]
fn a_miniport_low_on_receive_buffers_gets_back_what_was_retained() {
    // Twenty buffers: an indication that leaves fewer than five free is a
    // low-resources one.
    let sim = start(&["null@rx-buffers=20"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let big: Vec<Vec<u8>> = (0..32).map(|i| frame(BROADCAST, PEER, 0x88b5, 300 + i, i as u32)).collect();
    for f in &big[..15] {
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    }
    assert_eq!(retained(&sim, a, 15), 15);
    assert_eq!(sim.receive_buffers(a), (15, 0), "fifteen of the twenty buffers held");
    // The sixteenth leaves four: the miniport is low, and gets all back.
    sim.inject(a, &[&big[15][..]], &InjectOpts::default()).unwrap();
    assert_eq!(retained(&sim, a, 0), 0);
    assert_eq!(sim.receive_buffers(a), (0, 0), "every buffer back with the miniport");
    // Retention goes on while the NIC is not low again (the reader still
    // has the sixteen queued, so it is not behind).
    for f in &big[16..] {
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    }
    assert!(sim.outstanding(a).receives_retained <= 15);
    let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, big, "every frame, in order, whether retained, copied or given back early");
    assert_eq!(retained(&sim, a, 0), 0);
    assert_eq!(sim.receive_buffers(a).1, 0, "no frame found the NIC without a buffer");
    h.close();
    finish(sim);
}

/// A handle closed with frames in its queue that are still in their NBLs
/// gives those NBLs back as its cleanup ends, not at the binding's next
/// indication, pause or unbind, nor from its work item, which may not run
/// for a long time (ndisim holds it here) while the NIC runs short of
/// receive buffers. Another handle keeps the binding busy and must not
/// lose its own.
#[test]
fn a_handle_closed_with_retained_frames_gives_their_nbls_back_at_once() {
    let sim = start(&["null@rx-buffers=64"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let (other, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let big: Vec<Vec<u8>> = (0..6).map(|i| frame(BROADCAST, PEER, 0x88b5, 1000 + i, i as u32)).collect();
    for f in &big {
        sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    }
    // Both queues hold the six, in the same NBLs.
    assert_eq!(retained(&sim, a, 6), 6);
    let got: Vec<Vec<u8>> = read(&other, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, big);
    assert_eq!(sim.outstanding(a).receives_retained, 6, "still in the first handle's queue");
    sim.hold_work_items();
    h.close();
    assert_eq!(sim.outstanding(a).receives_retained, 0, "the closed handle's NBLs are back with the NIC");
    sim.release_work_items();
    assert_eq!(sim.receive_buffers(a), (0, 0), "every buffer back with the miniport");
    // The binding goes on for the other handle.
    sim.inject(a, &[&big[0][..]], &InjectOpts::default()).unwrap();
    let got: Vec<Vec<u8>> = read(&other, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, vec![big[0].clone()]);
    other.close();
    finish(sim);
}

/// Frames as NICs may lay them out in MDLs (headroom, header-data split,
/// chains of small buffers, a split inside the addresses or the tag) reach
/// a reader intact: copied at the indication (short frames, and every
/// frame of a RESOURCES indication), or retained and copied at the read
/// (long ones), and cut at the read as well.
#[test]
fn frames_in_any_mdl_layout_are_read_intact() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let mut tagged = frame(BROADCAST, PEER, 0x8100, 300, 7);
    tagged[14..18].copy_from_slice(&[0x20, 0x05, 0x88, 0xb5]);
    let frames = [
        frame(BROADCAST, PEER, 0x88b5, 60, 1),
        frame(BROADCAST, PEER, 0x88b5, 1514, 2),
        tagged,
        frame(BROADCAST, PEER, 0x88b5, 300, 3),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    for layout in std::iter::once(NbLayout::default()).chain(shaped_layouts()) {
        for resources in [false, true] {
            let o = InjectOpts { layout, resources, nbls_per_indication: 2, ..InjectOpts::default() };
            sim.inject(a, &refs, &o).unwrap();
            let want = if resources { 0 } else { 3 };
            assert_eq!(retained(&sim, a, want), want, "{layout:?}: the long frames are retained");
            let got = read(&h, 1 << 20);
            let data: Vec<&[u8]> = got.iter().map(|(_, d)| &d[..]).collect();
            assert_eq!(data, refs, "{layout:?}, resources {resources}");
            assert_eq!((got[2].0.flags & frame_flags::TAGGED, got[2].0.tci), (frame_flags::TAGGED, 0x2005));
            assert!(got.iter().all(|(r, d)| r.caplen as usize == d.len() && r.origlen as usize == d.len()));
            // A retained frame cut at the read.
            sim.inject(a, &[refs[1]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
            let got = read(&h, FrameHeader::LEN + 100);
            assert_eq!((got[0].1.as_slice(), got[0].0.origlen), (&frames[1][..100], 1514), "{layout:?}");
        }
    }
    assert_eq!(retained(&sim, a, 0), 0);
    h.close();
    finish(sim);
}

/// Received MDLs that are locked pages not mapped yet: the driver maps
/// them, and reads the frames intact. When no mapping can be had (low
/// resources), nothing is passed off as the frame's bytes: the record is
/// cut to what could be read (here nothing), marked truncated and counted,
/// and no frame is retained that could not be read later.
#[test]
fn frames_in_unmapped_mdls_are_mapped_or_cut_honestly() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let frames = [frame(BROADCAST, PEER, 0x88b5, 60, 1), frame(BROADCAST, PEER, 0x88b5, 300, 2)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    for layout in [
        NbLayout { unmapped: true, ..NbLayout::default() },
        NbLayout { headroom: 2, first: 14, chunk: 64, unmapped: true, ..NbLayout::default() },
    ] {
        sim.inject(a, &refs, &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
        assert_eq!(retained(&sim, a, 1), 1, "{layout:?}: mapped, the long one is retained");
        let got = read(&h, 1 << 16);
        assert_eq!(got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), frames, "{layout:?}");
        sim.refuse_mappings(u64::MAX);
        sim.inject(a, &refs, &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
        assert_eq!(retained(&sim, a, 0), 0, "{layout:?}: nothing retained that cannot be read");
        sim.refuse_mappings(0);
        let got = read(&h, 1 << 16);
        let seen: Vec<(u32, u32, u16)> =
            got.iter().map(|(r, _)| (r.caplen, r.origlen, r.flags & frame_flags::TRUNCATED)).collect();
        assert_eq!(seen, [(0, 60, frame_flags::TRUNCATED), (0, 300, frame_flags::TRUNCATED)], "{layout:?}");
    }
    assert_eq!(stats(&h).handle.rx_truncated, 4);
    h.close();
    finish(sim);
}

/// A frame whose header cannot be read (no mapping under low resources)
/// cannot be classified: a promiscuous handle gets it as a record cut to
/// nothing, and a handle whose filters it might have passed counts it as
/// dropped. Before, it was taken for another host's frame, and the handle
/// that wanted broadcasts missed it without a count.
#[test]
fn a_frame_whose_header_cannot_be_read_is_counted_by_who_may_have_wanted_it() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (all, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let (some, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    let layout = NbLayout { unmapped: true, ..NbLayout::default() };
    sim.refuse_mappings(u64::MAX);
    sim.inject(a, &[&f[..], &f[..]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
    sim.refuse_mappings(0);
    let got = read(&all, 1 << 16);
    let seen: Vec<(u32, u32, u16)> =
        got.iter().map(|(r, _)| (r.caplen, r.origlen, r.flags & frame_flags::TRUNCATED)).collect();
    assert_eq!(seen, [(0, 60, frame_flags::TRUNCATED); 2]);
    let s = stats(&some);
    assert_eq!((s.handle.rx_frames, s.handle.rx_queue_drops), (0, 2), "counted as dropped");
    // The header's mapping refused, the copy's not: the record is whole,
    // and not marked cut.
    sim.refuse_mappings(1);
    sim.inject(a, &[&f[..]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
    assert_eq!(sim.refuse_mappings(0), 0, "the header's mapping was refused");
    let got = read(&all, 1 << 16);
    assert_eq!(got.iter().map(|(r, d)| (r.caplen, r.flags, d.clone())).collect::<Vec<_>>(), [(60, 0, f.clone())]);
    assert_eq!(stats(&some).handle.rx_queue_drops, 3);
    // A frame that can be read reaches both.
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    assert_eq!(read(&some, 1 << 16).len(), 1);
    assert_eq!(read(&all, 1 << 16).len(), 1);
    all.close();
    some.close();
    finish(sim);
}

/// A frame with an 802.1Q or 802.1ad tag inline whose first MDL holds the
/// addresses and the TPID, and whose next MDL cannot be mapped (low
/// resources): its header (18 bytes with the tag) could not be read
/// whole, so it cannot be classified. A handle listing the EtherType
/// behind the tag counts it as dropped, and so does one listing the TPID;
/// a promiscuous handle gets it. Before, it was taken for an untagged frame
/// of EtherType 0x8100 with nothing behind it: the first handle lost it
/// without a count, and the second got it.
#[test]
fn a_tagged_frame_whose_tag_cannot_be_read_is_counted_by_who_may_have_wanted_it() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (all, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let (inner, _) = open(&sim, 0, filter::DEFAULT, &[0x88b5]);
    let (tpid, _) = open(&sim, 0, filter::DEFAULT, &[0x8100, 0x88a8]);
    let layout = NbLayout { headroom: 2, first: 14, chunk: 64, unmapped: true, ..NbLayout::default() };
    for (k, tpid_bytes) in [[0x81u8, 0x00], [0x88, 0xa8]].into_iter().enumerate() {
        let mut f = frame(BROADCAST, PEER, 0x88b5, 120, k as u32);
        f.splice(12..12, [tpid_bytes[0], tpid_bytes[1], 0x20, 0x05]);
        // The first MDL's mapping (the addresses and the TPID) goes
        // through, the second's is refused: the header's read stops at 14.
        sim.refuse_mappings_after(1, 1);
        sim.inject(a, &[&f[..]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
        sim.refuse_mappings(0);
        assert_eq!(read(&all, 1 << 16).len(), 1, "the promiscuous handle gets it");
        for (h, what) in [(&inner, "the EtherType behind the tag"), (&tpid, "the TPIDs")] {
            let s = stats(h);
            assert_eq!(
                (s.handle.rx_frames, s.handle.rx_queue_drops, s.queued_frames),
                (0, k as u64 + 1, 0),
                "a handle listing {what}: counted as dropped"
            );
        }
    }
    // Mapped, the same frame goes to the handle listing the inner
    // EtherType and to the one listing the TPIDs.
    let mut f = frame(BROADCAST, PEER, 0x88b5, 120, 9);
    f.splice(12..12, [0x88, 0xa8, 0x20, 0x05]);
    sim.inject(a, &[&f[..]], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
    assert_eq!(read(&inner, 1 << 16).len(), 1);
    assert_eq!(read(&tpid, 1 << 16).len(), 1);
    assert_eq!(read(&all, 1 << 16).len(), 1);
    for h in [all, inner, tpid] {
        h.close();
    }
    finish(sim);
}

/// NDIS may indicate at DISPATCH_LEVEL with NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL
/// clear (the flag is a hint): every frame is received, retained ones
/// too, to the queue and to rings alike, and nothing assumes PASSIVE_LEVEL
/// (ndisim checks each call's IRQL).
#[test]
fn indications_at_dispatch_level_without_the_flag_are_received() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let frames: Vec<Vec<u8>> = (0..8).map(|i| frame(BROADCAST, PEER, 0x88b5, 60 + 100 * i, i as u32)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let o = InjectOpts { unflagged: true, nbls_per_indication: 4, ..InjectOpts::default() };
    sim.inject(a, &refs, &o).unwrap();
    assert_eq!(read(&h, 1 << 16).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), frames);
    h.close();
    finish(sim);
}

/// A READ that waits holds no system mapping of its buffer: the buffer is
/// mapped when a frame is there to fill it. A read whose buffer cannot be
/// mapped then (low resources) fails STATUS_INSUFFICIENT_RESOURCES and the
/// frame waits for the next read; none completes with STATUS_SUCCESS and
/// no frame (end of file to ReadFile's caller). Before, every pended read
/// was mapped as it pended, and one whose mapping failed later completed
/// with no frame.
#[test]
fn pending_reads_are_mapped_only_to_be_filled() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    // No mapping can be had: the reads pend all the same.
    sim.refuse_mappings(u64::MAX);
    let reads: Vec<IoToken> = (0..3).map(|_| h.read_async(4096).unwrap()).collect();
    assert!(reads.iter().all(|t| t.try_result().is_none()), "they pend");
    assert_eq!(sim.refuse_mappings(1), u64::MAX, "nothing was mapped to pend them");
    // One frame: the first read cannot be mapped and fails; the second
    // gets the frame; the third still waits.
    let f = frame(BROADCAST, PEER, 0x88b5, 60, 1);
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    assert_eq!(status(reads[0].wait().unwrap().status), NtStatus::INSUFFICIENT_RESOURCES);
    let r = reads[1].wait().unwrap();
    assert_eq!(r.status, 0);
    assert_eq!(records(&r).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), vec![f.clone()]);
    assert!(reads[2].try_result().is_none());
    sim.inject(a, &[&f[..]], &InjectOpts::default()).unwrap();
    assert_eq!(reads[2].wait().unwrap().status, 0);
    h.close();
    finish(sim);
}

#[test]
fn all_receive_queues_together_take_at_most_their_pool_budget() {
    // Five handles that each may queue MAX_QUEUE_BYTES, and never read:
    // together they would take more than MAX_QUEUES_POOL_BYTES of
    // non-paged pool. The queues stop growing at the budget (frames that
    // do not fit are dropped and counted), and a closed handle gives its
    // share back.
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let name = {
        let h = sim.open().unwrap();
        let n = list(&h)[0].name.clone();
        h.close();
        n
    };
    let handles: Vec<ndisim::Handle> = (0..5)
        .map(|_| {
            let h = sim.open().unwrap();
            let req = open_request(&name, filter::PROMISCUOUS, &[], MAX_QUEUE_FRAMES, MAX_QUEUE_BYTES, 0);
            assert_eq!(h.ioctl(IOCTL_RAWNIC_OPEN, &req, OpenReply::LEN).status, 0);
            h
        })
        .collect();
    let f = frame(BROADCAST, PEER, 0x88b5, 1514, 1);
    let flood = |n: usize| {
        let refs: Vec<&[u8]> = vec![&f[..]; 64];
        for _ in 0..n / 64 {
            sim.inject(a, &refs, &InjectOpts::default()).unwrap();
        }
    };
    let record = FrameHeader::record_len(1514) as u64;
    let per_queue = MAX_QUEUE_BYTES as u64 / record;
    flood(per_queue as usize + 64);
    let queued: Vec<u64> = handles.iter().map(|h| stats(h).queued_bytes).collect();
    let total: u64 = queued.iter().sum();
    assert!(total <= MAX_QUEUES_POOL_BYTES as u64, "{queued:?}: {total} bytes queued in all");
    // Some queues got their whole bound, the others stopped short of it
    // and dropped what did not fit.
    let full = queued.iter().filter(|&&q| q + record > MAX_QUEUE_BYTES as u64).count();
    assert!((1..5).contains(&full), "{queued:?}");
    for h in &handles {
        let s = stats(h);
        // Nothing read: every frame taken is queued, the rest dropped.
        assert_eq!(s.queued_frames as u64, s.handle.rx_frames);
        if s.queued_bytes + record <= MAX_QUEUE_BYTES as u64 {
            assert!(s.handle.rx_queue_drops > 0, "a short queue dropped: {queued:?}");
        }
    }
    // Closing the full ones gives their memory back: a short queue grows
    // again.
    let (short, rest): (Vec<_>, Vec<_>) =
        handles.into_iter().partition(|h| stats(h).queued_bytes + record <= MAX_QUEUE_BYTES as u64);
    for h in rest {
        h.close();
    }
    let before = stats(&short[0]).queued_bytes;
    flood(per_queue as usize / 4);
    assert!(stats(&short[0]).queued_bytes > before, "the queue grew once the others closed");
    for h in short {
        h.close();
    }
    finish(sim);
}

/// Requests that one indication satisfies together (a dozen pending READs,
/// or every RING_WAIT of a handle) are completed once the locks are let go.
/// Gathering them allocates nothing: before, past a few kept inline they
/// went into a `Vec`, and when that could not grow (low resources) the IRP
/// was completed on the spot, under the handle's lock
/// (irp-complete-under-lock).
#[test]
fn requests_an_indication_satisfies_together_complete_without_memory() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    // Twelve READs, each filled by one frame of one indication.
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let frames: Vec<Vec<u8>> = (0..12).map(|i| frame(BROADCAST, PEER, 0x88b5, 60, i)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    // The handle's queue grows once (it keeps what it grew).
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    assert_eq!(read(&h, 4096).len(), 12);
    // Room for one record each.
    let reads: Vec<IoToken> = (0..12).map(|_| h.read_async(FrameHeader::LEN + 100).unwrap()).collect();
    sim.refuse_pool_allocations(1_000);
    // One indication of all twelve.
    sim.inject(a, &refs, &InjectOpts { nbls_per_indication: 12, ..Default::default() }).unwrap();
    for t in reads {
        let r = t.wait().unwrap();
        assert_eq!(status(r.status), NtStatus::SUCCESS);
        assert_eq!(records(&r).len(), 1);
    }
    sim.refuse_pool_allocations(0);
    h.close();
    // Six RING_WAITs of the one handle that receives (the one-pass ring
    // path), all woken by one frame.
    let (g, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let u = rawnic_tests::rings::User::attach(&g, rawnic_tests::rings::SETUP);
    u.fill((0..4).map(|i| u.frame(i)));
    let req = rawnic_tests::rings::wait_request(ring::wait_flags::RX);
    let waits: Vec<IoToken> =
        (0..6).map(|_| g.ioctl_async(IOCTL_RAWNIC_RING_WAIT, &req, ring::RingReply::LEN).unwrap()).collect();
    sim.refuse_pool_allocations(1_000);
    sim.inject(a, &refs[..1], &InjectOpts::default()).unwrap();
    for t in waits {
        assert_eq!(status(t.wait().unwrap().status), NtStatus::SUCCESS);
    }
    sim.refuse_pool_allocations(0);
    rawnic_tests::rings::detach(&g, u);
    g.close();
    // (`finish`: the report is clean; irp-complete-under-lock included.)
    finish(sim);
}

/// A queue whose records wrap round its buffer grows with them in order
/// (M251 of mutation round 6: the growth took the records from the
/// buffer's start, the newer run first). 256 frames of 1000 bytes (records
/// of 1024) fill the queue's first buffer of 256 KiB; 8 read make room at
/// its start, 8 more wrap into it, and the next one makes it grow.
#[test]
fn a_queue_that_wraps_then_grows_keeps_its_frames_in_order() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let frames: Vec<Vec<u8>> = (0..265u16)
        .map(|i| {
            let mut f = frame(BROADCAST, PEER, 0x88b5, 1000, u32::from(i));
            f[14..16].copy_from_slice(&i.to_be_bytes());
            f
        })
        .collect();
    let inject = |fs: &[Vec<u8>]| {
        for c in fs.chunks(64) {
            let refs: Vec<&[u8]> = c.iter().map(|f| &f[..]).collect();
            sim.inject(a, &refs, &InjectOpts::default()).unwrap();
        }
    };
    inject(&frames[..256]);
    assert_eq!(stats(&h).queued_frames, 256);
    let first: Vec<Vec<u8>> = read(&h, 8 * 1024).into_iter().map(|(_, d)| d).collect();
    assert!(first == frames[..8], "the first 8 frames");
    inject(&frames[256..]);
    assert_eq!(stats(&h).queued_frames, 257);
    let rest: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
    let ids = |fs: &[Vec<u8>]| fs.iter().map(|f| u16::from_be_bytes([f[14], f[15]])).collect::<Vec<_>>();
    assert_eq!(ids(&rest), ids(&frames[8..]), "frames 8 to 264, in order");
    assert!(rest == frames[8..], "and intact");
    h.close();
    finish(sim);
}

/// A retained frame (its data still in its NBL) keeps its place when the
/// queue grows (M253 of mutation round 6: the growth moved the records
/// but gave the retained one's slot to the record after it). Short frames
/// are copied, not retained, so with no read waiting one retained frame
/// of 1000 bytes and 1300 copied ones of 200 (records of 224) outgrow the
/// queue's first buffer of 256 KiB.
#[test]
fn a_queue_that_grows_keeps_a_retained_frame_in_its_place() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let frames: Vec<Vec<u8>> = (0..1301u16)
        .map(|i| {
            let mut f = frame(BROADCAST, PEER, 0x88b5, if i == 0 { 1000 } else { 200 }, u32::from(i));
            f[14..16].copy_from_slice(&i.to_be_bytes());
            f
        })
        .collect();
    sim.inject(a, &[&frames[0][..]], &InjectOpts::default()).unwrap();
    assert_eq!(retained(&sim, a, 1), 1, "the long frame is retained");
    for c in frames[1..].chunks(64) {
        let refs: Vec<&[u8]> = c.iter().map(|f| &f[..]).collect();
        sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    }
    assert_eq!(stats(&h).queued_frames, 1301);
    assert_eq!(retained(&sim, a, 1), 1, "and stays so while the queue grows");
    let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
    assert_eq!(retained(&sim, a, 0), 0);
    assert!(got[0] == frames[0], "the retained frame, first and intact");
    assert!(got == frames, "every frame, in order and intact");
    h.close();
    finish(sim);
}

/// A READ with room for a record's header alone (the least it takes) gets
/// the first frame cut to nothing, its header saying how long it was (M254
/// of mutation round 6: it completed with nothing, a frame queued).
#[test]
fn a_read_with_room_for_a_header_alone_gets_the_first_frame_cut_to_nothing() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
    let frames: Vec<Vec<u8>> = (0..2).map(|i| frame(BROADCAST, PEER, 0x88b5, 100, i)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    sim.inject(a, &refs, &InjectOpts::default()).unwrap();
    let t = h.read_async(FrameHeader::LEN).unwrap();
    let r = t.wait_for(std::time::Duration::from_secs(10)).expect("the read completes at once");
    assert_eq!((r.status, r.data.len()), (0, FrameHeader::LEN));
    let got = records(&r);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.caplen, got[0].0.origlen), (0, 100));
    assert_ne!(got[0].0.flags & frame_flags::TRUNCATED, 0);
    assert_eq!(stats(&h).queued_frames, 1, "the second frame is still queued");
    assert_eq!(read(&h, 4096)[0].1, frames[1]);
    h.close();
    finish(sim);
}

/// A long frame that would be retained (no read waits) whose header maps
/// and whose later MDLs do not (low resources at that moment): it cannot
/// be retained, since a read could not copy it later, so it is copied at
/// once. With the mapping refused once, the copy (which asks again) gets
/// the whole frame; refused for good, the record is cut to the header,
/// marked truncated. Nothing is retained either way, and a frame mapped
/// again is retained again.
#[test]
fn a_frame_whose_data_cannot_be_mapped_is_copied_not_retained() {
    let sim = start(&["null"]);
    let a = sim.adapter_id("null0").unwrap();
    let (h, _) = open(&sim, 0, filter::PROMISCUOUS, &[]);
    let layout = NbLayout { headroom: 2, first: 14, chunk: 64, unmapped: true, ..NbLayout::default() };
    let opts = InjectOpts { layout, ..InjectOpts::default() };
    let f = frame(BROADCAST, PEER, 0x88b5, 300, 1);
    let whole = |h: &ndisim::Handle| {
        let got = read(h, 1 << 16);
        got.iter().map(|(r, d)| (r.caplen, r.origlen, r.flags & frame_flags::TRUNCATED, d.clone())).collect::<Vec<_>>()
    };
    sim.inject(a, &[&f[..]], &opts).unwrap();
    assert_eq!(retained(&sim, a, 1), 1, "mapped, it is retained");
    assert_eq!(whole(&h), [(300, 300, 0, f.clone())]);
    // The header's mappings go through (the first two MDLs: a tag would
    // be in the second), the next MDL's is refused once.
    sim.refuse_mappings_after(2, 1);
    sim.inject(a, &[&f[..]], &opts).unwrap();
    assert_eq!(sim.refuse_mappings(0), 0, "the data's mapping was refused");
    assert_eq!(retained(&sim, a, 0), 0, "not retained: a read could not copy it");
    assert_eq!(whole(&h), [(300, 300, 0, f.clone())], "copied whole at once");
    // Refused for good after the header: cut honestly, to what the
    // first two MDLs hold.
    sim.refuse_mappings_after(2, u64::MAX);
    sim.inject(a, &[&f[..]], &opts).unwrap();
    sim.refuse_mappings(0);
    assert_eq!(retained(&sim, a, 0), 0);
    assert_eq!(whole(&h), [(78, 300, frame_flags::TRUNCATED, f[..78].to_vec())]);
    sim.inject(a, &[&f[..]], &opts).unwrap();
    assert_eq!(retained(&sim, a, 1), 1, "mapped again, retained again");
    assert_eq!(whole(&h), [(300, 300, 0, f.clone())]);
    h.close();
    finish(sim);
}

/// An indication saying the miniport is low on receive buffers
/// (`NDIS_RECEIVE_FLAGS_RESOURCES`) that comes while a pause is on its
/// way (the binding no longer Running, its retained NBLs not yet given
/// back by the pause) gives back every NBL the driver retained at once,
/// as one does while Running: the NIC is short now, not once the pause
/// gets there. The pause stalls at each of its spin-lock acquires in turn
/// (`Sim::stall_lock_acquire`, virtual time under the deterministic
/// scheduler) while the other thread indicates; whatever the step, when
/// the indication returns nothing is retained.
#[test]
fn a_low_resources_indication_during_a_pause_gives_back_what_was_retained() {
    let big: Vec<Vec<u8>> = (0..6).map(|i| frame(BROADCAST, PEER, 0x88b5, 1000 + i, i as u32)).collect();
    let refs: Vec<&[u8]> = big.iter().map(|f| &f[..]).collect();
    let low = InjectOpts { resources: true, ..Default::default() };
    let (mut landed, mut runs) = (0, 0);
    for seed in 0..2u64 {
        for nth in 1..=24u64 {
            let sim = start_with(&["null@rx-buffers=64"], |b| b.deterministic(seed));
            let a = sim.adapter_id("null0").unwrap();
            let (h, _) = open(&sim, 0, filter::DEFAULT, &[]);
            sim.inject(a, &refs, &InjectOpts::default()).unwrap();
            assert_eq!(sim.outstanding(a).receives_retained, 6, "seed {seed} nth {nth}: retained before");
            let r = racing(
                &sim,
                "ProtocolNetPnPEvent",
                nth,
                || sim.pause(a).unwrap(),
                || {
                    sim.inject(a, &[&big[0][..]], &low).unwrap();
                    sim.outstanding(a).receives_retained
                },
            );
            let (during, retained) = (r.stalled_at_start, r.racer);
            runs += 1;
            if during {
                landed += 1;
            }
            assert_eq!(retained, 0, "seed {seed} nth {nth} (pause stalled: {during}): NBLs kept past a low indication");
            sim.restart(a, &RestartSpec::default()).unwrap();
            let got: Vec<Vec<u8>> = read(&h, 1 << 20).into_iter().map(|(_, d)| d).collect();
            assert_eq!(&got[..6], &big[..], "seed {seed} nth {nth}: the six retained frames, copied");
            h.close();
            finish(sim);
        }
    }
    assert!(landed >= 4, "the indication landed inside the stalled pause in {landed} of {runs} runs");
}
