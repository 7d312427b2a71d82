//! Zero-copy frames checked against one MTU must not reach NDIS after a
//! pause and a restart lowered it: a kick racing a pause and a restart to a
//! smaller MTU, under the deterministic scheduler, sends its full-size
//! frames before the pause, is refused, or gives them back unsent; never
//! does a frame longer than the new MTU allows go out (ndisim's
//! send-oversize), and every frame comes back on the completion ring once.

use rawnic_proto::*;
use rawnic_tests::drv::*;
use rawnic_tests::rings::*;

#[test]
fn a_kick_racing_a_restart_to_a_smaller_mtu_never_sends_a_frame_too_long() {
    let mut orders = [0u32; 3];
    for seed in 0..60u64 {
        // The kick (a DEVICE_CONTROL) stalls now and then in virtual time,
        // so a whole pause and restart fit between its check and its send.
        let slow = ndisim::slow::Slow::new(&["IRP_MJ_DEVICE_CONTROL"], 300, 20_000, seed).unwrap();
        let sim =
            rawnic_tests::rawnic_builder().adapter("null").deterministic(seed).slow_handlers(slow).start().unwrap();
        let a = sim.adapter_id("null0").unwrap();
        let (h, _) = open(&sim, 0, PacketFilter::NONE, &[]);
        let u = User::attach(&h, SETUP);
        // Full-size frames for MTU 1500: 1514 bytes, too long for MTU 1000.
        u.post_copies(&frame(PEER, PEER, 0x88b5, 1514, 3), 4);
        let (st, reply) = kick_racing(&sim, &h, seed % 64, || {
            sim.pause(a).unwrap();
            sim.restart(a, &ndisim::RestartSpec { mtu: Some(1000), ..Default::default() }).unwrap();
        });
        let comps = u.completions();
        match st {
            NtStatus::SUCCESS => {
                let r = reply.unwrap();
                // Sent before the pause, or refused (invalid) once the MTU
                // was read as 1000.
                assert_eq!(r.sent + r.invalid, 4, "seed {seed}");
                assert_eq!(comps.len(), 4, "seed {seed}");
                assert_eq!(sim.sent_frames(a), u64::from(r.sent), "seed {seed}");
                orders[0] += 1;
            }
            NtStatus::DEVICE_NOT_READY if comps.is_empty() => {
                assert_eq!(sim.sent_frames(a), 0, "seed {seed}");
                orders[1] += 1;
            }
            NtStatus::DEVICE_NOT_READY => {
                assert_eq!((comps.len(), sim.sent_frames(a)), (4, 0), "seed {seed}");
                orders[2] += 1;
            }
            s => panic!("seed {seed}: the kick completed with {s:?}"),
        }
        let v = sim.violations();
        assert!(v.is_empty(), "seed {seed}: {v:?}");
        detach(&h, u);
        h.close();
        finish(sim);
    }
    eprintln!("orders (sent, refused, given back): {orders:?}");
}
