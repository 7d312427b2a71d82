//! The end's read of what a handle left open still has queued.

use super::{Ctx, Kind, check_reply};
use ndisim::Handle;
use rawnic_proto::FrameRecords;

/// Reads back what handle `h` still has queued (`queued` frames, its
/// GET_STATS says), checking each record as any read's (intact, in order,
/// its tag, its filters: a frame a queue's growth or a retained NBL
/// spoiled is found here, where no reader came); returns the frames read.
/// A read that waits while frames are queued is a problem.
pub(in crate::run) fn read_queued(c: &Ctx<'_>, h: &Handle, mut queued: u32) -> u64 {
    let mut read = 0;
    while queued > 0 {
        let Ok(t) = h.read_async(256 * 1024) else { break };
        let Some(r) = t.wait_for(c.watchdog) else {
            c.problem(format!(
                "read: a read of handle {h:?} waited {:?} while its GET_STATS said {queued} frames were queued",
                c.watchdog
            ));
            t.cancel();
            let _ = t.wait_for(c.watchdog);
            break;
        };
        let n = match (r.status, FrameRecords::new_checked(&r.data)) {
            (0, Ok(recs)) => recs.len() as u32,
            _ => 0,
        };
        check_reply(c, Kind::Read, &t, &r);
        if n == 0 {
            break;
        }
        read += u64::from(n);
        queued = queued.saturating_sub(n);
    }
    read
}
