//! Every thread's stack when ndisim's first watchdog of a schedule gives
//! up (`ndisim::verifier::set_watchdog_hook`), wherever it was: in an
//! actor's call or in the unload's unbinds, which no actor sees.

use super::lock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The stacks, once taken.
pub(super) static HOOK_STACKS: Mutex<Option<String>> = Mutex::new(None);
/// Whether this schedule wants them (free-running only: a deterministic
/// one replays).
static WANT_STACKS: AtomicBool = AtomicBool::new(false);

fn on_watchdog() {
    if WANT_STACKS.load(Ordering::Relaxed) {
        let mut st = lock(&HOOK_STACKS);
        if st.is_none() {
            *st = Some(crate::supervise::stacks_of(std::process::id()));
        }
    }
}

/// Arms the watchdog's stacks for the next schedule (`free`: taken).
pub(super) fn watchdog_stacks_for(free: bool) {
    ndisim::verifier::set_watchdog_hook(on_watchdog);
    *lock(&HOOK_STACKS) = None;
    WANT_STACKS.store(free, Ordering::Relaxed);
}
