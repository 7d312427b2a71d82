//! The knobs of `gen/knobs.rs`, run: work items held
//! (`NicAction::HoldWorkItems`), allocations stalled
//! (`NicAction::StallAllocations`), a return to D0 held before its
//! set-power event (`PnpAction::HeldD0`), cancels from threads the
//! run does not wait for (`IoAction::CancelAway`), and a stall aimed at
//! one spin-lock acquire inside a handler (`PnpAction::StallLockAcquire`)
//! or at one call there (`PnpAction::StallCall`). Each spell is ended by
//! the actor that began it, and the NIC actor ends any still on as its
//! list ends (`end`; the PnP actor always lets its D0 go), so the end checks run with every work item,
//! allocation and return to D0 let go; a cancel routine's stall may last
//! into the teardown, which must cope (the unload joins the cancel's
//! thread before its report).

use super::{Ctx, Edges, lock};
use ndisim::IoToken;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the knobs caught, for `Edges`.
#[derive(Default)]
pub(super) struct Counts {
    /// Work items found waiting as a hold ended.
    work_items_held: AtomicU64,
    /// Returns to D0 found held before their set-power event.
    d0_held: AtomicU64,
    /// Allocations the spells stalled (`Sim::pool_allocations_stalled`).
    allocations_stalled: AtomicU64,
    /// Spells aimed at a size the driver had live blocks of (or the
    /// schedule named), and those of them cast by handle threads
    /// (`IoAction::StallAllocations`).
    allocation_spells: AtomicU64,
    timed_spells: AtomicU64,
    /// Requests cancelled from threads nobody waits for.
    cancels_away: AtomicU64,
    /// Stalls aimed at a handler's spin-lock acquire, and those made.
    lock_aims: AtomicU64,
    lock_stalls: AtomicU64,
    /// The handler of the aim armed now.
    lock_aim: std::sync::Mutex<Option<&'static str>>,
    /// Stalls aimed at a call inside a handler, and those made; whether
    /// one is armed now.
    call_aims: AtomicU64,
    call_stalls: AtomicU64,
    call_aim: std::sync::atomic::AtomicBool,
}

impl Counts {
    /// Them, as `Edges`.
    pub(super) fn edges(&self) -> Edges {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Edges {
            work_items_held: get(&self.work_items_held),
            d0_held: get(&self.d0_held),
            allocations_stalled: get(&self.allocations_stalled),
            allocation_spells: get(&self.allocation_spells),
            timed_spells: get(&self.timed_spells),
            cancels_away: get(&self.cancels_away),
            lock_aims: get(&self.lock_aims),
            lock_stalls: get(&self.lock_stalls),
            call_aims: get(&self.call_aims),
            call_stalls: get(&self.call_stalls),
            ..Edges::default()
        }
    }
}

/// The system worker thread held for `ms`.
pub(super) fn hold_work_items(c: &Ctx<'_>, ms: u32) {
    c.sim.hold_work_items();
    c.sim.sleep(Duration::from_millis(u64::from(ms)));
    c.knobs.work_items_held.fetch_add(c.sim.pending_work_items() as u64, Ordering::Relaxed);
    c.sim.release_work_items();
}

/// A stall of `ms` aimed at the `nth` spin-lock acquire inside handler
/// `handler` (`ndisim::slow::HANDLERS[handler]`), armed until the next
/// such aim or the end of the schedule's body (`take_lock_aim`), so a
/// handler the schedule calls rarely (a pause, an unbind) still meets it;
/// the stalls the last aim made are counted first.
pub(super) fn stall_lock_acquire(c: &Ctx<'_>, handler: u8, nth: u8, ms: u32) {
    take_lock_aim(c);
    let name = ndisim::slow::HANDLERS[usize::from(handler) % ndisim::slow::HANDLERS.len()];
    let nth = u64::from(nth.max(1));
    let d = Duration::from_millis(u64::from(ms));
    if c.sim.stall_lock_acquire(name, nth, d).is_ok() {
        c.knobs.lock_aims.fetch_add(1, Ordering::Relaxed);
        *lock(&c.knobs.lock_aim) = Some(name);
    }
}

/// Counts the stalls the armed lock aim made, and takes it back (an aim
/// at none left never comes due): at the next aim, and, with the call
/// aim's (`take_call_aim`), once every actor has ended, before the end
/// checks.
pub(super) fn take_lock_aim(c: &Ctx<'_>) {
    if let Some(name) = lock(&c.knobs.lock_aim).take() {
        let (_, stalls, _) = c.sim.lock_acquire_stalls();
        c.knobs.lock_stalls.fetch_add(stalls, Ordering::Relaxed);
        let _ = c.sim.stall_lock_acquire(name, 0, Duration::ZERO);
    }
    take_call_aim(c);
}

/// A stall of `ms` aimed at the `nth` call inside handler `handler` of
/// any export (`pick` 0) or of the `pick - 1`th of those the run has seen
/// the driver call there, before the export's body or `after` it, armed
/// as `stall_lock_acquire`'s aim is.
pub(super) fn stall_call(c: &Ctx<'_>, handler: u8, pick: u16, nth: u16, after: bool, ms: u32) {
    take_call_aim(c);
    let name = ndisim::slow::HANDLERS[usize::from(handler) % ndisim::slow::HANDLERS.len()];
    let seen = c.sim.calls_made_in(name);
    let export = match pick {
        0 => None,
        p => seen.get(usize::from(p - 1) % seen.len().max(1)).map(|&(call, _)| call),
    };
    let d = Duration::from_millis(u64::from(ms));
    if c.sim.stall_call(name, export, u64::from(nth.max(1)), after, d).is_ok() {
        c.knobs.call_aims.fetch_add(1, Ordering::Relaxed);
        c.knobs.call_aim.store(true, Ordering::Relaxed);
    }
}

/// Counts the stalls the armed call aim made, and takes it back.
fn take_call_aim(c: &Ctx<'_>) {
    if c.knobs.call_aim.swap(false, Ordering::Relaxed) {
        let (_, stalls, _) = c.sim.call_stalls();
        c.knobs.call_stalls.fetch_add(stalls, Ordering::Relaxed);
        let _ = c.sim.stall_call("WorkerRoutine", None, 0, false, Duration::ZERO);
    }
}

/// The size a spell aims at: `bytes`, or the `pick`th of the sizes of the
/// driver's live pool blocks now (none if it has none); the spell counted.
fn spell_size(c: &Ctx<'_>, bytes: u32, pick: u16) -> Option<usize> {
    let size = match bytes {
        0 => {
            let sizes = c.sim.live_pool_sizes();
            if sizes.is_empty() {
                return None;
            }
            sizes[usize::from(pick) % sizes.len()]
        }
        b => b as usize,
    };
    c.knobs.allocation_spells.fetch_add(1, Ordering::Relaxed);
    Some(size)
}

/// Allocations of one size stalled for `ms` (`spell_size`), this thread
/// sleeping meanwhile.
pub(super) fn stall_allocations(c: &Ctx<'_>, bytes: u32, pick: u16, ms: u32) {
    let Some(size) = spell_size(c, bytes, pick) else { return };
    c.sim.stall_pool_allocations_of(size);
    // In steps of a millisecond, as before the count came from ndisim (so
    // each seed keeps its interleaving).
    for _ in 0..ms.max(1) {
        c.sim.sleep(Duration::from_millis(1));
    }
    c.sim.release_pool_allocations();
}

/// Allocations of one size stalled for `ms` (`spell_size`) by a spell
/// that ends by itself, this thread going on at once (into the requests
/// that allocate that size, `gen/knobs.rs`).
pub(super) fn timed_spell(c: &Ctx<'_>, bytes: u32, pick: u16, ms: u32) {
    let Some(size) = spell_size(c, bytes, pick) else { return };
    c.knobs.timed_spells.fetch_add(1, Ordering::Relaxed);
    c.sim.stall_pool_allocations_for(size, Duration::from_millis(u64::from(ms.max(1))));
}

/// Takes the count of the allocations the run's spells stalled.
pub(super) fn count_stalled_allocations(c: &Ctx<'_>) {
    c.knobs.allocations_stalled.store(c.sim.pool_allocations_stalled(), Ordering::Relaxed);
}

/// D0 for adapter `a` on one thread, its set-power event held until
/// another lets it go `ms` later (or at once, if the return came to no
/// set-power event within `ms`).
pub(super) fn held_d0(c: &Ctx<'_>, a: usize, ms: u32) {
    let id = c.adapters[a];
    c.sim_result("hold d0", c.sim.hold_set_power_d0(id));
    let up = move || c.teardown(|| c.sim_result("power", c.sim.set_power(id, 1)));
    let release = move || {
        let wait = Duration::from_millis(u64::from(ms));
        if c.wait_until(wait, || c.sim.held_set_power_d0(id) != 0) {
            c.knobs.d0_held.fetch_add(1, Ordering::Relaxed);
            c.sim.sleep(wait);
        }
        c.sim_result("release d0", c.sim.release_set_power_d0(id));
    };
    c.sim.run_actors(vec![Box::new(up), Box::new(release)]);
}

/// Cancels each of `tokens` from a thread of its own, after aiming a
/// stall of `stall_ms` at the next cancel routine's first spin-lock
/// acquire.
pub(super) fn cancel_away<K>(c: &Ctx<'_>, tokens: &[(IoToken, K)], stall_ms: u32) {
    let mut tokens = tokens.iter().map(|(t, _)| t).filter(|t| t.try_result().is_none()).peekable();
    if tokens.peek().is_none() {
        return;
    }
    if stall_ms > 0 {
        let _ = c.sim.stall_lock_acquire("CancelRoutine", 1, Duration::from_millis(u64::from(stall_ms)));
    }
    for t in tokens {
        t.cancel_on_another_thread();
        c.knobs.cancels_away.fetch_add(1, Ordering::Relaxed);
    }
}

/// In a schedule that cancels away (none otherwise: another stall aimed
/// at a lock is not theirs), as the driver unloads: whether the last aim
/// stalled a cancel routine, and the routines still stalled.
pub(super) fn cancels_in_unload(sim: &ndisim::Sim, s: &crate::schedule::Schedule) -> (u64, u64) {
    let away = s.handles.iter().flatten().any(|a| matches!(a, crate::schedule::IoAction::CancelAway { .. }));
    let (_, made, now) = sim.lock_acquire_stalls();
    if away { (made.min(1), now) } else { (0, 0) }
}

/// At the end of a NIC actor's list: nothing held any longer.
pub(super) fn end(c: &Ctx<'_>) {
    c.sim.release_work_items();
    c.sim.release_pool_allocations();
}
