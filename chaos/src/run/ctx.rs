//! The schedule's shared context's helpers: sleeping in the simulation's
//! time, excused refusals, spells, ring epochs, problems and teardown
//! marks, frame numbers and adapter addresses.

use super::*;

impl Ctx<'_> {
    /// Sleeps a millisecond of the simulation's time at a time, `max` at
    /// most, until `done`; whether it is.
    pub(super) fn wait_until(&self, max: Duration, done: impl Fn() -> bool) -> bool {
        let mut waited = Duration::ZERO;
        while !done() {
            if waited >= max {
                return false;
            }
            self.sim.sleep(Duration::from_millis(1));
            waited += Duration::from_millis(1);
        }
        true
    }

    /// Whether a damaged request's status `st` is excused rather than the
    /// driver's: INSUFFICIENT_RESOURCES when memory was short (the I/O
    /// manager's IRP or buffer), INVALID_HANDLE from the I/O manager on a
    /// handle `shared` with a thread that may have closed it.
    pub(super) fn refusal_excused(&self, shared: bool, st: rawnic_proto::NtStatus) -> bool {
        use rawnic_proto::NtStatus;
        ((self.sched.lowres > 0 || self.sim.alloc_failures() > 0) && st == NtStatus::INSUFFICIENT_RESOURCES)
            || (shared && st == NtStatus::INVALID_HANDLE)
    }

    /// Holds a spell of late OID returns or slow cancel routines on for
    /// `ms` (`IoAction::AwaitSpell` sees it on).
    pub(super) fn spell(&self, ms: u32) {
        self.spells.fetch_add(1, Ordering::Relaxed);
        self.sim.sleep(Duration::from_millis(u64::from(ms)));
        self.spells.fetch_sub(1, Ordering::Relaxed);
    }

    /// Before a spell of late OID returns or slow cancel routines: waits a
    /// little (at most 200 ms) for a handle thread to wait for it
    /// (`IoAction::AwaitSpell`), so the requests after that wait walk into
    /// the spell.
    pub(super) fn spell_meets_its_callers(&self) {
        self.wait_until(Duration::from_millis(200), || self.awaiting_spell.load(Ordering::Relaxed) > 0);
    }

    /// `n` frames of file object `file` went (`sent_by_file`).
    pub(super) fn sent(&self, file: Option<(usize, u64)>, n: u64) {
        if let Some(f) = file.filter(|_| n != 0) {
            *lock(&self.sent_by_file).entry(f).or_default() += n;
        }
    }

    /// The ring epoch and busy count of handle `h`.
    pub(super) fn ring_key(h: &Arc<Handle>) -> usize {
        (Arc::as_ptr(h) as usize / std::mem::align_of::<Handle>()) % RING_KEYS
    }

    /// Handle `key`'s ring epoch.
    pub(super) fn ring_epoch(&self, key: usize) -> u64 {
        self.ring_epoch[key].load(Ordering::Acquire)
    }

    /// Notes that handle `key` is made, or attaches rings, now.
    pub(super) fn ring_handle_made(&self, key: usize) {
        self.ring_made_at[key].fetch_min(self.pnp_epoch.load(Ordering::Acquire), Ordering::AcqRel);
    }

    /// Whether an unbind (or uninstall or power change) ran or runs since
    /// handle `key` was made (`ring_handle_made`): its RING_WAITs may fail.
    pub(super) fn ring_unbound_since_made(&self, key: usize) -> bool {
        let at = self.ring_made_at[key].load(Ordering::Acquire);
        at != u64::MAX && self.torn_down_since(at)
    }

    /// Something that may end handle `key`'s waits: its epoch moves before
    /// and after `f`, and it counts as under way until after the second
    /// move, so a wait sent after the first move that `f` cancels is
    /// checked either while `f` is under way or after the second move.
    pub(super) fn ring_event<T>(&self, key: usize, f: impl FnOnce() -> T) -> T {
        self.ring_epoch[key].fetch_add(1, Ordering::AcqRel);
        self.ring_busy[key].fetch_add(1, Ordering::AcqRel);
        let out = f();
        self.ring_epoch[key].fetch_add(1, Ordering::AcqRel);
        self.ring_busy[key].fetch_sub(1, Ordering::AcqRel);
        out
    }

    /// Keeps handle `h` open for the receive accounts (once, however many
    /// threads shared it).
    pub(super) fn keep_open(&self, h: Arc<Handle>) {
        let mut v = lock(&self.survivors);
        if !v.iter().any(|x| Arc::ptr_eq(x, &h)) {
            v.push(h);
        }
    }

    pub(super) fn problem(&self, p: String) {
        let mut v = lock(&self.problems);
        if v.len() < 20 {
            v.push(p);
        }
    }

    /// Runs `f`, an unbind, an uninstall or a power change, counted so that
    /// the OIDs it aborts are not taken for stray cancels.
    pub(super) fn teardown(&self, f: impl FnOnce()) {
        self.pnp_busy.fetch_add(1, Ordering::AcqRel);
        self.pnp_epoch.fetch_add(1, Ordering::AcqRel);
        f();
        self.pnp_epoch.fetch_add(1, Ordering::AcqRel);
        self.pnp_busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether an unbind, uninstall or power change ran or began since
    /// `epoch`, or runs now.
    pub(super) fn torn_down_since(&self, epoch: u64) -> bool {
        self.pnp_busy.load(Ordering::Acquire) > 0 || self.pnp_epoch.load(Ordering::Acquire) != epoch
    }

    /// The first watchdog of a free-running run: every thread's stack now,
    /// before this thread goes on (its next action may be what unblocks the
    /// operation, as a completion that comes right after the watchdog
    /// suggests).
    pub(super) fn take_stacks(&self) {
        if self.sched.mode != Mode::Free {
            return;
        }
        let mut st = lock(&self.stacks);
        // The watchdog's hook took them already, when it gave up.
        if st.is_none() && lock(&HOOK_STACKS).is_none() {
            *st = Some(crate::supervise::stacks_of(std::process::id()));
        }
    }

    pub(super) fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn mac(&self, a: usize) -> [u8; 6] {
        self.sim.adapter_mac(self.adapters[a]).unwrap_or([0; 6])
    }

    /// The result of a simulation call: a refusal for the state is fine, a
    /// watchdog or a driver failure of a pause is not (the verifier records
    /// those too).
    pub(super) fn sim_result(&self, what: &str, r: Result<(), SimError>) {
        self.actions.fetch_add(1, Ordering::Relaxed);
        progressed();
        match r {
            Ok(()) => {}
            Err(SimError::State(_)) | Err(SimError::Status(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(e @ SimError::Watchdog(_)) => {
                self.problem(format!("{what}: {e}"));
                self.take_stacks();
            }
            Err(SimError::Other(e)) => self.problem(format!("{what}: {e}")),
        }
    }
}
