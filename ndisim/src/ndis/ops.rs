//! NDIS operations a protocol's handler may pend (bind, unbind, PnP
//! events): begun before the handler is called, returned, completed (by
//! the `NdisComplete*` call), and waited for by the watchdog.

use super::*;
use crate::kernel::Kernel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Bind,
    Unbind,
    Pnp,
}

pub(super) struct Op {
    /// The thread that runs its handler.
    pub(super) thread: std::thread::ThreadId,
    /// When the watchdog gave up on it (time the process could run).
    pub(super) abandoned: Option<std::time::Duration>,
    pub(super) kind: OpKind,
    /// For a PnP event, its `NET_PNP_EVENT_CODE`, and for a set-power
    /// event the `NET_DEVICE_POWER_STATE` it asks for (else 0).
    pub(super) event: u32,
    pub(super) power: u32,
    pub(super) key: usize,
    pub(super) binding: usize,
    pub(super) completed: Option<NDIS_STATUS>,
    pub(super) returned: bool,
}

impl Ndis {
    /// The binding of the pending operation `kind` with context `key`.
    pub(super) fn op_binding(&self, kind: OpKind, key: usize) -> Option<usize> {
        lock(&self.ops).iter().find(|o| o.kind == kind && o.key == key && o.completed.is_none()).map(|o| o.binding)
    }

    /// Whether a bind or an unbind of binding `b` is in progress: its
    /// handler runs, or it pended and the driver has not completed it yet.
    /// (A bind names its binding from the `NdisOpenAdapterEx` that made it;
    /// an operation the watchdog gave up on still counts.)
    pub(super) fn bind_or_unbind_pending(&self, b: &Binding) -> bool {
        let bp = b as *const Binding as usize;
        lock(&self.ops)
            .iter()
            .any(|o| matches!(o.kind, OpKind::Bind | OpKind::Unbind) && o.binding == bp && o.completed.is_none())
    }

    /// The PnP events of binding `binding` whose handler returned
    /// `NDIS_STATUS_PENDING` and that the driver has not completed yet, in
    /// the order they came.
    pub(crate) fn pnp_pending(&self, binding: usize) -> Vec<u32> {
        lock(&self.ops)
            .iter()
            .filter(|o| o.kind == OpKind::Pnp && o.binding == binding && o.returned && o.completed.is_none())
            .map(|o| o.event)
            .collect()
    }

    pub(super) fn op_begin(&self, kind: OpKind, key: usize, binding: usize, (event, power): (u32, u32)) {
        lock(&self.ops).push(Op {
            thread: std::thread::current().id(),
            abandoned: None,
            kind,
            key,
            binding,
            event,
            power,
            completed: None,
            returned: false,
        });
    }

    /// A `NdisComplete*` call. False (and a violation) when no such
    /// operation is pending.
    pub(super) fn op_complete(
        &self,
        kind: OpKind,
        key: usize,
        status: NDIS_STATUS,
        call: &str,
        b: Option<&Binding>,
    ) -> bool {
        let mut ops = lock(&self.ops);
        match ops.iter_mut().find(|o| o.kind == kind && o.key == key && o.completed.is_none()) {
            Some(o) => {
                // The handler's page: NdisComplete* follows a return of
                // NDIS_STATUS_PENDING; a handler that finished in time
                // returns its status instead. A completion from another
                // processor may race with the return (nothing can stop
                // it), but one made on the handler's own thread, while the
                // handler is still on the stack, relies on what NDIS never
                // promised.
                let early = !o.returned && o.thread == std::thread::current().id();
                o.completed = Some(status);
                let (abandoned, bp, k2, event, power) = (o.abandoned, o.binding, o.key, o.event, o.power);
                if abandoned.is_some() {
                    // Completed after the watchdog gave up: NDIS finishes
                    // the operation now. Say how late, so a report tells a
                    // slow completion (an overloaded machine) from a lost
                    // one (never completed: a leak or a hang at unload).
                    ops.retain(|x| x.key != k2);
                }
                let late = abandoned.map(|at| crate::starve::now().saturating_sub(at));
                if bp != 0 && kind == OpKind::Pnp {
                    // The event is complete the moment the driver says so:
                    // NDIS's view of the binding changes before
                    // NdisCompleteNetPnPEvent returns.
                    // SAFETY: bindings live for the simulation.
                    pnp_done(unsafe { &*(bp as *const Binding) }, (event, power), status);
                }
                self.ops_cv.notify_all();
                drop(ops);
                if early {
                    let b = (bp != 0).then(|| self.binding_name(bp)).flatten();
                    Violation::new(
                        Rule::UnexpectedCompletion,
                        call,
                        format!(
                            "the {kind:?} operation was completed from inside its own handler, before it returned NDIS_STATUS_PENDING (return the status instead)"
                        ),
                    )
                    .with_binding(b)
                    .with_object(key)
                    .report();
                }
                if let Some(late) = late {
                    Violation::new(
                        Rule::Watchdog,
                        call,
                        format!(
                            "the {kind:?} operation the watchdog gave up on completed {} ms after it did: late, not lost",
                            late.as_millis()
                        ),
                    )
                    .with_binding(b.map(|b| b.name.clone()))
                    .with_object(key)
                    .report();
                }
                true
            }
            None => {
                drop(ops);
                Violation::new(
                    Rule::UnexpectedCompletion,
                    call,
                    format!("no {kind:?} operation with this context is waiting for completion (the handler did not return NDIS_STATUS_PENDING, or it was completed already)"),
                )
                .with_binding(b.map(|b| b.name.clone()))
                .with_object(key)
                .report();
                false
            }
        }
    }

    /// The handler returned `status`: the operation's final status, waiting
    /// for the completion call when it pended.
    pub(super) fn op_returned(
        &self,
        k: &Kernel,
        kind: OpKind,
        key: usize,
        status: NDIS_STATUS,
        call: &str,
        what: &str,
    ) -> Result<NDIS_STATUS, SimError> {
        let mut ops = lock(&self.ops);
        let i = ops.iter().position(|o| o.kind == kind && o.key == key && !o.returned).expect("op begun");
        if status != NDIS_STATUS_PENDING {
            let o = ops.remove(i);
            drop(ops);
            if o.completed.is_some() {
                Violation::new(
                    Rule::UnexpectedCompletion,
                    call,
                    format!("{what}: the handler returned {status:#x} (not NDIS_STATUS_PENDING) but the driver also called the completion function"),
                )
                .with_object(key)
                .report();
            }
            return Ok(status);
        }
        ops[i].returned = true;
        if k.sched_here().is_some() {
            // Deterministic: wait in virtual time, letting the completion
            // run.
            drop(ops);
            let done = |o: &Op| o.kind == kind && o.key == key && o.returned && o.completed.is_some();
            k.wait_until(k.config.watchdog, "a pending NDIS operation", || lock(&self.ops).iter().any(done));
            ops = lock(&self.ops);
        }
        // Time the process could run (crate::starve).
        let deadline = crate::starve::now() + k.config.watchdog;
        loop {
            let i = ops.iter().position(|o| o.kind == kind && o.key == key && o.returned).expect("op present");
            if let Some(s) = ops[i].completed {
                ops.remove(i);
                return Ok(s);
            }
            let now = crate::starve::now();
            if now >= deadline || k.sched_here().is_some() {
                let b = ops[i].binding;
                ops[i].abandoned = Some(now);
                drop(ops);
                let bname = self.binding_name(b);
                Violation::new(
                    Rule::Watchdog,
                    call,
                    format!(
                        "{what} pended and was not completed within {} ms{}",
                        k.config.watchdog.as_millis(),
                        self.held_by_test(b)
                    ),
                )
                .with_binding(bname)
                .with_object(key)
                .report();
                return Err(SimError::Watchdog(format!(
                    "{what} did not complete within {} ms",
                    k.config.watchdog.as_millis()
                )));
            }
            ops = self.ops_cv.wait_timeout(ops, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl super::Ndis {
    /// What binding `b`'s adapter holds for the test that nobody released
    /// (`hold_sends`, `hold_oids`), said after a watchdog's report: a
    /// driver's pause or unbind that waits for them waits rightly.
    fn held_by_test(&self, b: usize) -> String {
        let Some(binding) = self.binding_at(b) else {
            return String::new();
        };
        let a = self.adapter(binding.adapter);
        let sends = lock(&a.held).len();
        let held = *lock(&a.policy) == crate::adapter::CompletionPolicy::Held;
        let oids = if a.oid_hold.load(Ordering::Acquire) {
            lock(&self.oids).iter().filter(|p| p.binding.adapter == a.idx).count()
        } else {
            0
        };
        match (held && sends > 0, oids > 0) {
            (false, false) => String::new(),
            (s, o) => format!(
                " (the test holds {}{}{} at the adapter and has not released them; a pause or unbind waits for them rightly)",
                if s { format!("{sends} send NBL(s) (`hold_sends`)") } else { String::new() },
                if s && o { " and " } else { "" },
                if o { format!("{oids} OID request(s) (`hold_oids`)") } else { String::new() },
            ),
        }
    }
}
