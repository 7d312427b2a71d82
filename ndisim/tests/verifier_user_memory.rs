//! The verifier's rules on user memory: MDLs, locked pages and the
//! mappings of them, an IRP's buffers after its completion, and UMEM
//! frames handed back to the user. Each is proven by a deliberately wrong
//! fixture driver that breaks exactly that rule; the other rules are in
//! `verifier.rs` and the other `verifier_*.rs` files.

use ndisim::*;
use rawnic_tests::fixture;
use rawnic_tests::verifier::{only, start};
use std::time::Duration;

// --- User memory and MDLs -------------------------------------------------------

const FIXTURE: &str = "\\\\.\\Fixture";
const CODE_MAP: u32 = 0x0012_0000 | (0x900 << 2) | 2;
const CODE_TOUCH: u32 = 0x0012_0000 | (0x901 << 2);
const CODE_SEND: u32 = 0x0012_0000 | (0x902 << 2) | 2;
const CODE_GOOD: u32 = 0x0012_0000 | (0x903 << 2) | 2;

#[test]
fn mdl_leak() {
    let sim = start("mdl_leak", &[]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    assert_eq!(h.ioctl(0x0012_0000, &[1, 2, 3, 4], 0).status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::MdlLeak);
    assert!(r.violations.iter().any(|v| v.detail.contains("IoFreeMdl")), "{r}");
}

#[test]
fn pages_locked_at_close() {
    let sim = start("pages_locked", &[]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(3 * 4096).unwrap();
    let t = h.ioctl_region_async(CODE_MAP, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::PagesLockedAtClose);
    // When the handle closed, and when the MDL was freed still locked.
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert_eq!(calls, ["IRP_MJ_CLOSE", "IoFreeMdl"], "{r}");
    assert!(r.violations[0].detail.contains(&format!("region #{}", region.id())), "{r}");
}

#[test]
fn mapping_after_unlock_with_ndis() {
    // The fixture sends a frame out of the IRP's buffer and completes the
    // IRP; while the adapter holds the send, the pages are unlocked.
    let sim = start("mapping_after_unlock", &["loopback@completion=held"]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(4096).unwrap();
    region.write(0, &[0xFF; 60]);
    let t = h.ioctl_region_async(CODE_SEND, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    assert_eq!(sim.release_sends(AdapterId(0), None).unwrap(), 1);
    h.close();
    let r = sim.unload();
    only(&r, Rule::MappingAfterUnlock);
    // At the unlock (the IRP's completion), and when NDIS gave it back.
    let calls: Vec<&str> = r.violations.iter().map(|v| v.call.as_str()).collect();
    assert_eq!(calls, ["IofCompleteRequest", "NdisSendNetBufferLists"], "{r}");
}

#[test]
fn user_memory_done_right_is_clean() {
    // The same fixture's correct path: its own MDL probed, locked, mapped,
    // unmapped, unlocked and freed; a partial MDL sharing the IRP's
    // mapping, sent, and the IRP completed when the send is back. The
    // mapping is not the user address, and writes through it are the
    // user's bytes.
    for completion in ["immediate", "held", "delay:5"] {
        let sim = start("mapping_after_unlock", &[&format!("loopback@completion={completion},capture=on")]);
        let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
        let region = UserRegion::new(2 * 4096).unwrap();
        let frame: Vec<u8> = (0..60).map(|i| if i < 6 { 0xFF } else { i as u8 }).collect();
        region.write(0, &frame);
        let t = h.ioctl_region_async(CODE_GOOD, &[], region.clone()).unwrap();
        if completion == "held" {
            assert!(t.wait_for(Duration::from_millis(50)).is_none(), "pending until the send is back");
            sim.release_sends(AdapterId(0), None).unwrap();
        }
        assert_eq!(t.wait().expect("completed").status, 0);
        let mut want = frame.clone();
        want[1] = 0xB2;
        assert_eq!(region.to_vec(0, 60), want, "written through the driver's own mapping");
        assert_eq!(sim.captured(AdapterId(0))[0].data, want);
        h.close();
        let r = sim.unload();
        assert!(r.is_clean(), "{completion}: {r}");
    }
}

#[test]
fn mdl_misuse_is_an_invalid_parameter() {
    let sim = start("mdl_misuse", &[]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(2 * 4096).unwrap();
    assert_eq!(h.ioctl_region_async(CODE_MAP, &[], region).unwrap().wait().expect("completed").status, 0);
    h.close();
    let r = sim.unload();
    only(&r, Rule::InvalidParameter);
    let seen: Vec<(&str, &str)> = r.violations.iter().map(|v| (v.call.as_str(), v.detail.as_str())).collect();
    assert_eq!(seen.len(), 4, "{r}");
    assert!(seen[0].0 == "IoBuildPartialMdl" && seen[0].1.contains("not inside the source"), "{r}");
    assert!(seen[1].0 == "IoBuildPartialMdl" && seen[1].1.contains("allocated for 1 page(s)"), "{r}");
    assert!(seen[2].0 == "IoFreeMdl" && seen[2].1.contains("already freed"), "{r}");
    assert!(seen[3].0 == "MmProbeAndLockPages" && seen[3].1.contains("cannot have"), "{r}");
}

/// The scenario `mapping_after_unlock_faults` runs in a child process:
/// the driver maps the IRP's buffer, the IRP completes, and the driver
/// reads through its old mapping.
#[test]
fn mapping_after_unlock_child() {
    if std::env::var_os("NDISIM_MAPPING_CHILD").is_none() {
        return;
    }
    let sim = start("mapping_after_unlock", &["null"]);
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let region = UserRegion::new(4096).unwrap();
    let t = h.ioctl_region_async(CODE_MAP, &[], region.clone()).unwrap();
    assert_eq!(t.wait().expect("completed").status, 0);
    assert_eq!(region.to_vec(0, 1), [0xA1], "the driver wrote through its mapping");
    eprintln!("region #{} mapped and completed", region.id());
    h.ioctl(CODE_TOUCH, &[], 0);
    eprintln!("the driver read a revoked mapping and nothing happened");
}

/// Runs this binary's test `name` alone in a child process, with `env`
/// set (the child test does nothing without it): its exit code and all
/// it printed.
fn child(name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

#[test]
fn mapping_after_unlock_faults() {
    let (code, text) = child("mapping_after_unlock_child", &[("NDISIM_MAPPING_CHILD", "1")]);
    assert_eq!(code, Some(EXIT_DRIVER_FAULT), "{text}");
    assert!(text.contains("mapped and completed"), "{text}");
    assert!(text.contains("DRIVER FAULT: access violation") && text.contains("mapping_after_unlock5ioctl"), "{text}");
    assert!(
        text.contains("rule mapping-after-unlock") && text.contains("revoked when its pages were unlocked"),
        "{text}"
    );
    assert!(!text.contains("nothing happened"), "{text}");
}

/// The scenario `irp_touched_after_completion_faults` runs in a child
/// process: `irp_touch` completes an IOCTL, then touches it (function 0:
/// its system buffer, 1: the IRP), under special pool or not.
#[test]
fn irp_touch_child() {
    let Some(func) = std::env::var_os("NDISIM_IRP_TOUCH_CHILD") else { return };
    let func: u32 = func.to_str().unwrap().parse().unwrap();
    let special = std::env::var_os("NDISIM_IRP_TOUCH_SPECIAL").is_some();
    let sim = Sim::builder().driver(fixture("irp_touch")).special_pool(special).start().unwrap();
    let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
    let r = h.ioctl(0x0012_0000 | (func << 2), &[], 16);
    // (Without special pool the caller's bytes may even show the late
    // write: the buffer moved to the caller at the completion.)
    assert_eq!((r.status, r.data.len()), (0, 4));
    eprintln!("the driver touched a completed IRP and nothing happened");
    h.close();
    assert!(sim.unload().is_clean());
}

fn irp_touch(func: u32, special: bool) -> (Option<i32>, String) {
    let func = func.to_string();
    let mut env = vec![("NDISIM_IRP_TOUCH_CHILD", func.as_str())];
    if special {
        env.push(("NDISIM_IRP_TOUCH_SPECIAL", "1"));
    }
    child("irp_touch_child", &env)
}

#[test]
fn irp_touched_after_completion_faults_under_special_pool() {
    for (func, what) in
        [(0, "the system buffer of IRP_MJ_DEVICE_CONTROL IRP"), (1, "the IRP itself of IRP_MJ_DEVICE_CONTROL IRP")]
    {
        let (code, text) = irp_touch(func, true);
        assert_eq!(code, Some(EXIT_DRIVER_FAULT), "function {func}: {text}");
        assert!(text.contains("DRIVER FAULT: access violation") && text.contains("irp_touch5ioctl"), "{text}");
        assert!(text.contains(what) && text.contains("revoked when the IRP was completed"), "{text}");
        assert!(!text.contains("nothing happened"), "{text}");
        // Without special pool the touch goes unseen (the memory is the
        // caller's or the next request's by then).
        let (code, text) = irp_touch(func, false);
        assert_eq!(code, Some(0), "function {func} without special pool: {text}");
        assert!(text.contains("nothing happened"), "{text}");
    }
    // Function 2 touches nothing after the completion: clean either way.
    for special in [true, false] {
        let (code, text) = irp_touch(2, special);
        assert_eq!(code, Some(0), "{text}");
    }
}

// --- UMEM frames handed back ----------------------------------------------------

const UMEM_ATTACH: u32 = 0x0012_0000 | (0x910 << 2) | 2;
const UMEM_AGAIN: u32 = 0x0012_0000 | (0x911 << 2);
const UMEM_TOUCH: u32 = 0x0012_0000 | (0x912 << 2);
const UMEM_DETACH: u32 = 0x0012_0000 | (0x913 << 2);

/// The user of `umem_touch`'s rings, watched.
struct UmemUser {
    h: Handle,
    l: rawnic_proto::ring::RingLayout,
    m: std::sync::Arc<UserRegion>,
    watch: RingWatch,
    attach: IoToken,
}

impl UmemUser {
    /// Puts frame `i` on the fill ring, then attaches (the fixture takes
    /// it and hands it back on the rx ring at once).
    fn attach(sim: &Sim, i: u64) -> UmemUser {
        use rawnic_proto::ring::{RingLayout, RingSetup};
        let s = RingSetup { frame_size: 2048, frame_count: 8, fill: 8, rx: 8, tx: 8, completion: 8 };
        let l = RingLayout::new(&s).unwrap();
        let m = UserRegion::new(l.total).unwrap();
        let watch = RingWatch::new(sim, m.clone(), l);
        let h = sim.open_path(FIXTURE, 0xC000_0000, Identity::Admin).unwrap();
        let mut input = [0u8; RingSetup::LEN];
        s.emit(&mut input).unwrap();
        let f = l.frames as u64 + i * l.frame_size as u64;
        watch.reclaim(f);
        m.store_u64(l.fill.entry_at(0), f);
        m.store_u32(l.fill.producer(), 1);
        let attach = h.ioctl_region_async(UMEM_ATTACH, &input, m.clone()).unwrap();
        assert!(attach.try_result().is_none(), "the attach stays pending");
        UmemUser { h, l, m, watch, attach }
    }

    fn frame(&self, i: u64) -> u64 {
        self.l.frames as u64 + i * self.l.frame_size as u64
    }

    fn fill(&self, i: u64) {
        let p = self.m.load_u32(self.l.fill.producer());
        self.watch.reclaim(self.frame(i));
        self.m.store_u64(self.l.fill.entry_at(p), self.frame(i));
        self.m.store_u32(self.l.fill.producer(), p + 1);
    }

    /// Consumes the rx ring: the frames' offsets.
    fn rx(&self) -> Vec<u64> {
        let prod = self.m.load_u32(self.l.rx.producer());
        let mut c = self.m.load_u32(self.l.rx.consumer());
        let mut out = Vec::new();
        while c != prod {
            let addr = self.m.load_u64(self.l.rx.entry_at(c));
            self.watch.handed_back(addr, Handback::Rx);
            out.push(addr);
            c += 1;
        }
        self.m.store_u32(self.l.rx.consumer(), c);
        out
    }

    fn detach(self) -> (Handle, RingWatch) {
        assert_eq!(self.h.ioctl(UMEM_DETACH, &[], 0).status, 0);
        assert_eq!(self.attach.wait().expect("completed").status, 0);
        (self.h, self.watch)
    }
}

#[test]
fn umem_after_handback_seen_when_the_frame_is_given_again() {
    let sim = start("umem_touch", &[]);
    let u = UmemUser::attach(&sim, 3);
    assert_eq!(u.rx(), [u.frame(3)]);
    assert_eq!(u.m.to_vec(u.frame(3) as usize, 6), [0xFF; 6], "the driver's frame");
    assert!(u.watch.check_all().is_empty(), "handed back and untouched");
    assert_eq!(u.h.ioctl(UMEM_TOUCH, &[], 0).status, 0);
    let v = u.watch.reclaim(u.frame(3)).expect("the late write, seen at the reclaim");
    assert_eq!(v.object, Some(u.m.as_ptr() as usize + u.frame(3) as usize));
    let want = format!("frame 3 (offset {:#x}) of user region #{}", u.frame(3), u.m.id());
    let (h, watch) = u.detach();
    h.close();
    let r = sim.unload();
    drop(watch);
    only(&r, Rule::UmemAfterHandback);
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(r.violations[0].call, "reclaim");
    assert!(r.violations[0].detail.contains(&want), "{r}");
    assert!(r.violations[0].detail.contains("rx ring"), "{r}");
}

#[test]
fn umem_after_handback_seen_at_unload() {
    // Written after it was handed back and never given again: the unload
    // checks the frames the user holds.
    let sim = start("umem_touch", &[]);
    let u = UmemUser::attach(&sim, 6);
    assert_eq!(u.rx(), [u.frame(6)]);
    assert!(sim.violations().is_empty());
    assert_eq!(u.h.ioctl(UMEM_TOUCH, &[], 0).status, 0);
    let seen = sim.violations();
    assert_eq!(seen.len(), 1, "Sim::violations checks the watched frames: {seen:?}");
    let (h, watch) = u.detach();
    h.close();
    let r = sim.unload();
    drop(watch);
    only(&r, Rule::UmemAfterHandback);
    assert_eq!(r.violations.len(), 1, "one write, reported once: {r}");
    assert!(r.violations[0].detail.contains("frame 6 "), "{r}");
}

#[test]
fn umem_frames_given_again_before_the_driver_writes_them_are_clean() {
    // The fixture's correct path: the frame goes back on the fill ring
    // before the driver receives into it again.
    let sim = start("umem_touch", &[]);
    let u = UmemUser::attach(&sim, 2);
    assert_eq!(u.rx(), [u.frame(2)]);
    u.fill(2);
    assert_eq!(u.h.ioctl(UMEM_AGAIN, &[], 0).status, 0);
    assert_eq!(u.rx(), [u.frame(2)]);
    assert_eq!(u.watch.watched(), 1);
    assert_eq!(u.h.ioctl(UMEM_AGAIN, &[], 0).status as u32, 0xC000_0184, "the fill ring is empty");
    let (h, watch) = u.detach();
    h.close();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
    assert!(watch.check_all().is_empty());
}

/// The scenario `an_unmapped_mdls_virtual_address_faults` runs in a child
/// process: `unmapped_va` reads a received frame through the address its
/// MDL describes; mapped first (ndisim's usual receive buffers, non-paged
/// pool), then unmapped.
#[test]
fn unmapped_va_child() {
    if std::env::var_os("NDISIM_UNMAPPED_VA_CHILD").is_none() {
        return;
    }
    let sim = start("unmapped_va", &["null"]);
    let mut f = vec![0xFFu8; 60];
    f[12..14].copy_from_slice(&[0x88, 0xB5]);
    sim.inject(AdapterId(0), &[&f], &InjectOpts::default()).unwrap();
    eprintln!("a mapped frame read through its MDL's address");
    let layout = NbLayout { unmapped: true, ..NbLayout::default() };
    sim.inject(AdapterId(0), &[&f], &InjectOpts { layout, ..InjectOpts::default() }).unwrap();
    eprintln!("an unmapped frame read through its MDL's address and nothing happened");
}

#[test]
fn an_unmapped_mdls_virtual_address_faults() {
    let (code, text) = child("unmapped_va_child", &[("NDISIM_UNMAPPED_VA_CHILD", "1")]);
    assert_eq!(code, Some(EXIT_DRIVER_FAULT), "{text}");
    assert!(text.contains("a mapped frame read"), "{text}");
    assert!(text.contains("DRIVER FAULT: general protection") && text.contains("recv_unmapped_va"), "{text}");
    assert!(text.contains("MmGetSystemAddressForMdlSafe"), "{text}");
    assert!(!text.contains("nothing happened"), "{text}");
}
