//! The client over the device bridge, against the in-process fake driver
//! (`rawnic_client::fake`) and, for protocol faults, a scripted server.
#![cfg(unix)]

use rawnic_client::fake::{FakeAdapter, FakeDriver, test_frame};
use rawnic_client::oid::{
    OID_802_3_CURRENT_ADDRESS, OID_802_3_MULTICAST_LIST, OID_GEN_CURRENT_LOOKAHEAD, OID_GEN_VENDOR_DESCRIPTION,
};
use rawnic_client::*;
use rawnic_proto::bridge::{CompletionHeader, RequestHeader, op};
use rawnic_proto::{NtStatus, event};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

fn fake() -> FakeDriver {
    FakeDriver::start(vec![FakeAdapter::new("eth-a", MAC_A), FakeAdapter::new("eth-b", MAC_B)]).unwrap()
}

/// Waits (polling) until `f` holds; panics if it never does, so that a
/// broken test fails instead of hanging.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn ops(fake: &FakeDriver, op: u8) -> Vec<u64> {
    fake.log().iter().filter(|l| l.op == op).map(|l| l.tag).collect()
}

#[test]
fn lists_opens_and_reports_the_version() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    let v = dev.version().unwrap();
    assert_eq!(v.proto_version, rawnic_proto::PROTO_VERSION);
    let list = dev.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].index, list[0].id, list[0].name.as_str(), list[0].mac), (0, 1, "eth-a", MAC_A));
    assert_eq!((list[1].state_name(), list[1].link_name(), list[1].mtu), ("running", "up", 1500));
    assert_eq!(dev.binding(), None);
    let info = dev.open_binding(&OpenOptions::new("eth-b").ethertype(0x88b5)).unwrap();
    assert_eq!((info.binding_id, info.mtu, info.mac), (2, 1500, MAC_B));
    assert_eq!(dev.binding(), Some(info));
    // A second open on the same handle is refused, in a sentence.
    let e = dev.open_binding(&OpenOptions::new("eth-a")).unwrap_err();
    assert_eq!(e.status(), Some(NtStatus::INVALID_DEVICE_STATE));
    assert!(e.to_string().starts_with("opening the binding failed: the handle is in the wrong state"), "{e}");
    assert_eq!(dev.list().unwrap()[1].open_handles, 1);
}

#[test]
fn unknown_adapters_and_bad_options_are_explained() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    let e = dev.open_binding(&OpenOptions::new("nope")).unwrap_err();
    assert_eq!(e.status(), Some(NtStatus::OBJECT_NAME_NOT_FOUND));
    assert!(e.to_string().contains("no binding has that adapter name"), "{e}");
    let e = dev.open_binding(&OpenOptions::new("eth-a").snaplen(4)).unwrap_err();
    assert_eq!(e.to_string(), "a snap length of 4 bytes is shorter than an Ethernet header (14)");
    let e = dev.open_binding(&OpenOptions::new("eth-a").queue_bytes(10)).unwrap_err();
    assert!(e.to_string().starts_with("a receive queue of 10 bytes is out of range"), "{e}");
    let e = dev.open_binding(&OpenOptions::new("eth-a").ethertypes(&[1; 33])).unwrap_err();
    assert!(e.to_string().contains("at most 32"), "{e}");
    let e =
        dev.open_binding(&OpenOptions::new("eth-a").packet_filter(PacketFilter::from_bits_retain(0x100))).unwrap_err();
    assert!(e.to_string().starts_with("packet filter 0x100 has bits the driver does not allow"), "{e}");
    // Nothing invalid reached the driver.
    assert_eq!(fake.log().iter().filter(|l| l.code == rawnic_proto::IOCTL_RAWNIC_OPEN).count(), 1);
}

#[test]
fn a_refused_create_is_an_error() {
    let fake = fake();
    fake.deny_create(true);
    let e = Device::open(&fake.device_path()).unwrap_err();
    assert_eq!(e.status(), Some(NtStatus::ACCESS_DENIED));
    assert!(e.to_string().starts_with("opening the device failed: access denied"), "{e}");
}

#[test]
fn missing_sockets_and_windows_paths_are_explained() {
    let e = Device::open("unix:/nonexistent/rawnic.sock").unwrap_err();
    assert!(
        e.to_string().starts_with("cannot connect to the device bridge at /nonexistent/rawnic.sock (no such socket"),
        "{e}"
    );
    let e = Device::open("\\\\.\\RawNic").unwrap_err();
    assert!(e.to_string().contains("is a Windows device path"), "{e}");
    assert!(Device::open("unix:").unwrap_err().to_string().contains("names no socket"));
}

#[test]
fn a_list_larger_than_the_first_buffer_is_read_whole() {
    let adapters: Vec<FakeAdapter> = (0..40)
        .map(|i| {
            let mut a = FakeAdapter::new(
                &format!("\\DEVICE\\{{{i:08}-0000-0000-0000-000000000000}}"),
                MacAddr([2, 0, 0, 0, 1, i]),
            );
            a.description = format!("a long description of virtual adapter number {i} {}", "x".repeat(60));
            a
        })
        .collect();
    let fake = FakeDriver::start(adapters).unwrap();
    let dev = Device::open(&fake.device_path()).unwrap();
    let list = dev.list().unwrap();
    assert_eq!(list.len(), 40);
    assert_eq!(list[39].mac, MacAddr([2, 0, 0, 0, 1, 39]));
    // The first request was too small, the second took what was needed.
    let lists: Vec<u32> =
        fake.log().iter().filter(|l| l.code == rawnic_proto::IOCTL_RAWNIC_LIST_BINDINGS).map(|l| l.out_len).collect();
    assert_eq!(lists.len(), 2);
    assert!(lists[1] > lists[0]);
}

#[test]
fn a_pending_read_completes_while_another_thread_sends() {
    let fake = fake();
    let dev = Arc::new(Device::open(&fake.device_path()).unwrap());
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let reader = {
        let dev = Arc::clone(&dev);
        std::thread::spawn(move || dev.read_frames(None).unwrap())
    };
    eventually("the read pends", || fake.pending() == 1);
    // The same handle sends while its read is pending.
    let frame = test_frame(MAC_A, 0x88b5, b"sent");
    dev.send_batch(&[SendFrame { data: &frame, tci: None }]).unwrap();
    assert_eq!(fake.sent().len(), 1);
    fake.inject(1, &test_frame(MAC_B, 0x88b5, b"hello"), None);
    let frames = reader.join().unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(&frames[0].data[14..], b"hello");
    assert_eq!(frames[0].as_ref().origlen(), 60.min(frames[0].data.len() as u32));
}

#[test]
fn completions_arrive_in_any_order() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let read = dev.submit(Request::Read, &[], 4096).unwrap();
    let mut input = [0u8; 4];
    rawnic_proto::EmptyRequest::emit(&mut input).unwrap();
    let wait = dev
        .submit(Request::Ioctl(rawnic_proto::IOCTL_RAWNIC_WAIT_EVENT), &input, rawnic_proto::EventRecord::LEN)
        .unwrap();
    eventually("both pend", || fake.pending() == 2);
    // The later request completes first.
    fake.raise_event(event::LINK_DOWN, 1, 0, 0);
    let c = wait.wait(None).unwrap();
    let ev = rawnic_proto::EventRecord::parse(&c.data).unwrap();
    assert_eq!((ev.kind, ev.binding_id, ev.seq), (event::LINK_DOWN, 1, 1));
    fake.inject(1, &test_frame(MAC_B, 0x0800, &[0; 46]), None);
    let c = read.wait(None).unwrap();
    assert_eq!(c.status, NtStatus::SUCCESS);
    assert_eq!(Records::parse(c.data).unwrap().len(), 1);
}

#[test]
fn a_timed_out_read_is_cancelled_by_its_tag() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let frames = dev.read_frames(Some(Duration::from_millis(20))).unwrap();
    assert!(frames.is_empty());
    let reads = ops(&fake, op::READ);
    assert_eq!(reads.len(), 1);
    assert_eq!(ops(&fake, op::CANCEL), reads, "the CANCEL names the read's tag");
    assert_eq!(fake.pending(), 0);
    // The raw layer says it timed out.
    let e = dev.call(Request::Read, &[], 4096, Some(Duration::from_millis(1))).unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(e.to_string(), "reading frames did not finish within 1 ms and was cancelled");
    // Frames that arrive later are not lost.
    fake.inject(1, &test_frame(MAC_B, 0x88b5, b"later"), None);
    assert_eq!(dev.read_frames(None).unwrap().len(), 1);
}

#[test]
fn a_timed_out_wait_for_binds_is_an_error_and_a_completed_one_counts() {
    let fake = fake();
    fake.hold_binds();
    let dev = Arc::new(Device::open(&fake.device_path()).unwrap());
    let e = dev.wait_binds_complete(Some(Duration::from_millis(5))).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(e.to_string().starts_with("waiting for NDIS to finish binding did not finish within"), "{e}");
    let waiter = {
        let dev = Arc::clone(&dev);
        std::thread::spawn(move || dev.wait_binds_complete(None))
    };
    eventually("the wait pends", || fake.pending() == 1);
    fake.complete_binds();
    assert_eq!(waiter.join().unwrap().unwrap(), 2);
}

#[test]
fn a_canceller_ends_a_wait_in_another_thread() {
    let fake = fake();
    let dev = Arc::new(Device::open(&fake.device_path()).unwrap());
    let waiter = {
        let dev = Arc::clone(&dev);
        std::thread::spawn(move || dev.wait_event(None))
    };
    eventually("the wait pends", || fake.pending() == 1);
    dev.canceller().cancel_all().unwrap();
    let e = waiter.join().unwrap().unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert_eq!(e.to_string(), "waiting for an event was cancelled");
    assert_eq!(fake.pending(), 0);
}

#[test]
fn dropping_a_pending_request_cancels_it() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let p = dev.submit(Request::Read, &[], 4096).unwrap();
    eventually("the read pends", || fake.pending() == 1);
    p.cancel().unwrap();
    drop(p);
    let p = dev.submit(Request::Read, &[], 4096).unwrap();
    eventually("the read pends", || fake.pending() == 1);
    drop(p);
    eventually("the dropped read is cancelled", || fake.pending() == 0);
    assert_eq!(ops(&fake, op::CANCEL), ops(&fake, op::READ));
    // Its completion was discarded: the next read gets the next frame.
    fake.inject(1, &test_frame(MAC_B, 0x88b5, b"next"), None);
    let f = dev.read_frames(None).unwrap();
    assert_eq!(&f[0].data[14..18], b"next");
}

#[test]
fn closing_the_device_sends_close_and_cancels_what_pends() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let keep = dev.canceller();
    drop(dev);
    assert_eq!(fake.closed(), 1);
    assert_eq!(ops(&fake, op::CLOSE).len(), 1);
    // A canceller outliving its device does nothing.
    keep.cancel_all().unwrap();
    // With a request pending on another thread's handle.
    let dev2 = Device::open(&fake.device_path()).unwrap();
    dev2.open_binding(&OpenOptions::new("eth-a")).unwrap();
    assert_eq!(dev2.list().unwrap()[0].open_handles, 1, "the closed handle is gone");
}

#[test]
fn large_sends_are_split_and_unaccepted_tails_resent_in_order() {
    let fake = fake();
    fake.set_max_batch(1000);
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a").send_only()).unwrap();
    let frames: Vec<Vec<u8>> = (0..2500u32).map(|i| test_frame(MAC_A, 0x88b5, &i.to_be_bytes())).collect();
    let send: Vec<SendFrame<'_>> =
        frames.iter().enumerate().map(|(i, f)| SendFrame { data: f, tci: (i % 2 == 0).then_some(100) }).collect();
    // Batch 1 takes 300 of 1000, batch 2 none, then everything.
    fake.plan_sends(&[300, 0]);
    let s = dev.send_batch(&send).unwrap();
    assert_eq!(s.frames, 2500);
    assert_eq!(s.bytes, 2500 * 18);
    assert_eq!(s.partial, 2);
    // 300, 0, then 1000, 1000, 200.
    assert_eq!(s.batches, 5);
    let sent = fake.sent();
    assert_eq!(sent.len(), 2500);
    for (i, f) in sent.iter().enumerate() {
        assert_eq!(f.data, frames[i], "frame {i} in order");
        assert_eq!(f.tci, (i % 2 == 0).then_some(100));
    }
    // Batches also respect a byte limit and a frame limit.
    // (A record is 8 + 18 bytes padded to 32; the header 16.)
    let opts = SendOptions { max_batch_frames: Some(7), max_batch_bytes: 200, ..SendOptions::default() };
    let s = dev.send_batch_with(&send[..10], &opts).unwrap();
    assert_eq!((s.frames, s.batches), (10, 2));
    let opts = SendOptions { max_batch_frames: Some(3), ..SendOptions::default() };
    let s = dev.send_batch_with(&send[..10], &opts).unwrap();
    assert_eq!((s.frames, s.batches), (10, 4));
    // A frame larger than the byte limit still goes, alone.
    let opts = SendOptions { max_batch_bytes: 1, ..SendOptions::default() };
    let s = dev.send_batch_with(&send[..3], &opts).unwrap();
    assert_eq!((s.frames, s.batches), (3, 3));
}

#[test]
fn a_driver_that_accepts_nothing_fails_the_send() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let frame = test_frame(MAC_A, 0x88b5, b"x");
    let send = vec![SendFrame { data: &frame, tci: None }; 4];
    fake.plan_sends(&[2]);
    fake.plan_sends(&[0; 10_000]);
    let opts = SendOptions { stall_timeout: Duration::from_millis(10), ..SendOptions::default() };
    let e = dev.send_batch_with(&send, &opts).unwrap_err();
    assert_eq!(e.status(), Some(NtStatus::INSUFFICIENT_RESOURCES));
    assert_eq!(e.to_string(), "sending stopped after 2 frames had been sent");
    let why = std::error::Error::source(&e).expect("the send's failure").to_string();
    assert!(why.starts_with("sending frames failed:"), "{why}");
}

#[test]
fn frames_are_checked_before_they_are_sent() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let short = [0u8; 10];
    let long = vec![0u8; 1515];
    let ok = test_frame(MAC_A, 0x88b5, b"x");
    let e = dev.send_batch(&[SendFrame { data: &ok, tci: None }, SendFrame { data: &short, tci: None }]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "frame 1 is 10 bytes long; a frame is 14 to 1514 bytes (the Ethernet header and at most the MTU)"
    );
    assert!(dev.send_batch(&[SendFrame { data: &long, tci: None }]).is_err());
    let e = dev.send_batch(&[SendFrame { data: &ok, tci: Some(0x0fff) }]).unwrap_err();
    assert!(e.to_string().contains("VLAN ID 4095"));
    assert!(fake.sent().is_empty());
    // WriteFile sends one frame.
    dev.write_frame(&ok).unwrap();
    assert!(fake.sent()[0].by_write);
    assert!(dev.write_frame(&short).is_err());
}

#[test]
fn received_frames_keep_their_flags() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a").snaplen(20).ethertype(0x88b5)).unwrap();
    let f1 = test_frame(MAC_B, 0x88b5, &[7; 50]);
    fake.inject(1, &f1, Some(0xa005));
    fake.inject(1, &test_frame(MAC_B, 0x0800, &[1; 50]), None); // filtered out
    fake.inject(1, &test_frame(MAC_B, 0x88b5, &[]), None);
    let recs = dev.read_records(4096, None).unwrap();
    let v: Vec<FrameRef<'_>> = recs.iter().collect();
    assert_eq!(v.len(), 2);
    assert!(v[0].is_truncated());
    assert_eq!((v[0].data.len(), v[0].origlen()), (20, 64));
    let tci = v[0].tci().unwrap();
    assert_eq!((tci.vlan_id(), tci.priority()), (5, 5));
    let (wire, origlen) = v[0].wire_bytes();
    assert_eq!(&wire[12..16], &[0x81, 0x00, 0xa0, 0x05]);
    assert_eq!((wire.len(), origlen), (24, 68));
    assert!(!v[1].is_truncated());
    assert_eq!(v[1].tci(), None);
    let st = dev.stats().unwrap();
    assert_eq!((st.handle.rx_frames, st.handle.rx_truncated, st.binding.rx_frames), (2, 1, 3));
}

/// A record's flags, not its TCI, say whether the frame had a tag and
/// whether it must be put back for the wire (and pcapng).
#[test]
fn a_tag_of_tci_0_is_a_tag_and_an_inline_one_is_not_put_back_twice() {
    let frame = |flags: u16, tci: u16, data: &[u8]| {
        let header = FrameHeader {
            caplen: data.len() as u32,
            origlen: data.len() as u32,
            timestamp_ns: 1,
            flags,
            tci,
            ..Default::default()
        };
        Frame { header, data: data.to_vec() }
    };
    let plain = test_frame(MAC_B, 0x88b5, &[7; 46]);
    let inline0 = ether::insert_vlan_tag(&plain, 0);
    // Inline, TCI 0: tagged, and on the wire as it is.
    let f = frame(frame_flags::TAGGED, 0, &inline0);
    assert_eq!((f.as_ref().tci(), f.as_ref().tag_stripped()), (Some(Tci(0)), false));
    assert_eq!(f.as_ref().wire_bytes(), (std::borrow::Cow::Borrowed(&inline0[..]), 64));
    // Stripped with TCI 0 (NDIS cannot say it, a record can): put back.
    let f = frame(frame_flags::TAGGED | frame_flags::VLAN, 0, &plain);
    assert_eq!(f.as_ref().tci(), Some(Tci(0)));
    assert_eq!(f.as_ref().wire_bytes(), (std::borrow::Cow::Owned(inline0.clone()), 64));
    // No tag.
    let f = frame(0, 0, &plain);
    assert_eq!((f.as_ref().tci(), f.as_ref().wire_bytes().0.into_owned()), (None, plain.clone()));

    // The fake reports tags as the driver does.
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a").ethertype(0x88b5)).unwrap();
    fake.inject(1, &inline0, None);
    fake.inject(1, &plain, Some(0));
    let recs = dev.read_records(4096, None).unwrap();
    let v: Vec<(Option<Tci>, bool)> = recs.iter().map(|f| (f.tci(), f.tag_stripped())).collect();
    assert_eq!(v, [(Some(Tci(0)), false), (None, false)]);
}

#[test]
fn oids_are_queried_and_set() {
    let mut a = FakeAdapter::new("eth-a", MAC_A);
    a.description = "d".repeat(3000);
    let fake = FakeDriver::start(vec![a]).unwrap();
    let dev = Device::open(&fake.device_path()).unwrap();
    // Before OPEN, the driver refuses.
    assert_eq!(dev.query_oid(OID_802_3_CURRENT_ADDRESS).unwrap_err().status(), Some(NtStatus::INVALID_DEVICE_STATE));
    dev.open_binding(&OpenOptions::new("eth-a").send_only()).unwrap();
    assert_eq!(dev.query_oid(OID_802_3_CURRENT_ADDRESS).unwrap(), MAC_A.0.to_vec());
    // Too long for the first buffer: asked again with what the adapter needs.
    let d = dev.query_oid(OID_GEN_VENDOR_DESCRIPTION).unwrap();
    assert_eq!(d.len(), 3001);
    let raw = dev.query_oid_raw(OID_GEN_VENDOR_DESCRIPTION, 16).unwrap();
    assert_eq!((raw.ndis_status as u32, raw.bytes_needed), (0xC001_0016, 3001));
    // Sets.
    assert_eq!(dev.set_oid(OID_GEN_CURRENT_LOOKAHEAD, &256u32.to_le_bytes()).unwrap(), 4);
    assert_eq!(dev.query_oid(OID_GEN_CURRENT_LOOKAHEAD).unwrap(), 256u32.to_le_bytes().to_vec());
    let e = dev.set_oid(OID_GEN_CURRENT_LOOKAHEAD, &[1, 2]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "setting OID_GEN_CURRENT_LOOKAHEAD (0x0001010f) failed at the adapter: the data buffer has the wrong length for this OID (NDIS_STATUS_INVALID_LENGTH, 0xc0010014)"
    );
    let e = dev.set_oid(OID_802_3_CURRENT_ADDRESS, &[0; 6]).unwrap_err();
    assert_eq!(e.status(), Some(NtStatus::ACCESS_DENIED));
    assert!(e.to_string().starts_with("setting an OID failed: access denied"), "{e}");
    dev.set_oid(OID_802_3_MULTICAST_LIST, &[1, 0, 0x5e, 0, 0, 1]).unwrap();
    let e = dev.query_oid(0x7777_7777).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("querying OID 0x77777777 failed at the adapter: the adapter does not support this OID"),
        "{e}"
    );
}

#[test]
fn stats_count_what_the_handle_sent() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-b")).unwrap();
    let f = test_frame(MAC_B, 0x88b5, &[0; 46]);
    dev.send_batch(&[SendFrame { data: &f, tci: None }; 5]).unwrap();
    let s = dev.stats().unwrap();
    assert_eq!((s.handle.tx_frames, s.handle.tx_bytes, s.binding.tx_frames), (5, 300, 5));
}

#[test]
fn events_time_out_quietly() {
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    assert_eq!(dev.wait_event(Some(Duration::from_millis(5))).unwrap(), None);
    fake.raise_event(event::BOUND, 2, 0, 1500);
    let ev = dev.wait_event(None).unwrap().unwrap();
    assert_eq!((ev.kind, ev.binding_id, ev.mtu), (event::BOUND, 2, 1500));
}

/// A server that answers CREATE, then runs `script` on the first request.
fn scripted(
    script: impl FnOnce(&mut std::os::unix::net::UnixStream, RequestHeader) + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    let path = std::env::temp_dir().join(format!(
        "rawnic-script-{}-{:?}.sock",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let device = format!("unix:{}", path.display());
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = std::fs::remove_file(&path);
        let read_req = |s: &mut std::os::unix::net::UnixStream| {
            let mut h = [0u8; RequestHeader::LEN];
            s.read_exact(&mut h).unwrap();
            let h = RequestHeader::parse(&h).unwrap();
            let mut input = vec![0u8; h.in_len as usize];
            s.read_exact(&mut input).unwrap();
            h
        };
        let create = read_req(&mut s);
        assert_eq!(create.op, op::CREATE);
        assert_eq!(create.code, rawnic_proto::bridge::GENERIC_READ | rawnic_proto::bridge::GENERIC_WRITE);
        complete(&mut s, create.tag, 0, &[]);
        let first = read_req(&mut s);
        script(&mut s, first);
    });
    (device, t)
}

fn complete(s: &mut impl Write, tag: u64, status: i32, data: &[u8]) {
    let mut b = vec![0u8; CompletionHeader::LEN + data.len()];
    CompletionHeader { tag, status, information: data.len() as u64, data_len: data.len() as u32 }.emit(&mut b).unwrap();
    b[CompletionHeader::LEN..].copy_from_slice(data);
    s.write_all(&b).unwrap();
}

#[test]
fn a_completion_for_an_unknown_tag_breaks_the_connection_clearly() {
    let (path, t) = scripted(|s, req| complete(s, req.tag + 100, 0, &[]));
    let dev = Device::open(&path).unwrap();
    let e = dev.stats().unwrap_err();
    assert_eq!(
        e.to_string(),
        "the connection to the device bridge ended: the bridge completed request 102, which is not outstanding"
    );
    t.join().unwrap();
    // Later requests say the same.
    assert!(matches!(dev.list().unwrap_err(), Error::Disconnected { .. }));
}

#[test]
fn more_data_than_asked_for_breaks_the_connection() {
    let (path, t) = scripted(|s, req| complete(s, req.tag, 0, &[0u8; 200]));
    let dev = Device::open(&path).unwrap();
    let e = dev.stats().unwrap_err();
    let want = format!("returned 200 bytes for request 2 whose output buffer holds {}", rawnic_proto::StatsReply::LEN);
    assert!(e.to_string().contains(&want), "{e}");
    t.join().unwrap();
}

#[test]
fn a_bridge_that_goes_away_fails_pending_requests() {
    let (path, t) = scripted(|s, _req| s.shutdown(std::net::Shutdown::Both).unwrap());
    let dev = Device::open(&path).unwrap();
    let e = dev.wait_event(None).unwrap_err();
    assert_eq!(e.to_string(), "the connection to the device bridge ended: the bridge closed the connection");
    t.join().unwrap();
}

#[test]
fn malformed_replies_are_reported() {
    let (path, t) = scripted(|s, req| {
        // A STATS reply one byte short.
        let mut b = vec![0u8; rawnic_proto::StatsReply::LEN - 1];
        b[0] = rawnic_proto::PROTO_VERSION as u8;
        complete(s, req.tag, 0, &b);
    });
    let dev = Device::open(&path).unwrap();
    let e = dev.stats().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the driver's reply to GET_STATS is malformed: its length does not match the lengths it declares; {} bytes",
            rawnic_proto::StatsReply::LEN - 1
        )
    );
    t.join().unwrap();
    let (path, t) = scripted(|s, req| {
        let mut b = vec![0u8; rawnic_proto::StatsReply::LEN];
        b[0] = rawnic_proto::PROTO_VERSION as u8 + 1;
        complete(s, req.tag, 0, &b);
    });
    let dev = Device::open(&path).unwrap();
    let e = dev.stats().unwrap_err();
    let want = format!(
        "the driver speaks wire-format version {} and this client speaks version {}",
        rawnic_proto::PROTO_VERSION + 1,
        rawnic_proto::PROTO_VERSION
    );
    assert!(e.to_string().starts_with(&want), "{e}");
    t.join().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn the_fake_has_no_rings_and_says_so() {
    use rawnic_client::ring::{RingConfig, Umem};
    let fake = fake();
    let dev = Device::open(&fake.device_path()).unwrap();
    dev.open_binding(&OpenOptions::new("eth-a")).unwrap();
    let e = Umem::attach(&dev, &RingConfig::default()).unwrap_err();
    assert_eq!(e.status(), Some(NtStatus::NOT_SUPPORTED));
    assert_eq!(e.to_string(), "attaching the rings failed: not supported (STATUS_NOT_SUPPORTED, 0xc00000bb)");
    // The shared memory reached the fake as the bridge says.
    assert_eq!(ops(&fake, op::IOCTL_SHARED).len(), 1);
    // The handle is still usable.
    dev.stats().unwrap();
}
