//! The verifier: Driver Verifier / NDIS bug check 0x7C style rules. Each
//! broken rule is recorded as a `Violation` (the simulation goes on, as
//! Driver Verifier does in its logging mode); the report lists them at
//! unload.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, Weak};

/// A verifier rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `NdisSendNetBufferLists` while the binding is not Running (from
    /// NDIS's view: before the restart completed, or after the pause
    /// notification was issued).
    SendNotRunning,
    /// A sent NBL whose `SourceHandle` is not the binding handle.
    SendSourceHandle,
    /// A sent frame longer than the adapter's largest: its MTU (the
    /// `MtuSize` of the bind or of the last restart) plus the 14-byte
    /// Ethernet header, plus 4 when the frame carries an 802.1Q tag inline
    /// (OID_GEN_MAXIMUM_TOTAL_SIZE: "the largest packet that a protocol
    /// driver can pass to the NdisSendNetBufferLists function").
    SendOversize,
    /// Touching, resending, freeing or returning an NBL that NDIS owns.
    NblOwnership,
    /// A pause completed while sends were outstanding or received NBLs
    /// were still retained.
    PauseOutstanding,
    /// A received NBL kept after the receive handler returned, although it
    /// was indicated while the binding was pausing (after the pause handler
    /// returned) or paused, or the pause completed while the handler ran.
    RetainedWhilePaused,
    /// Received NBLs still kept once the handler of an indication that
    /// carried `NDIS_RECEIVE_FLAGS_RESOURCES` because the miniport ran low
    /// on receive buffers had returned, although they were kept before it
    /// (only on adapters with a bounded receive pool, `rx-buffers=N`).
    RetainedWhenLow,
    /// `NdisCloseAdapterEx` while sends, OID requests or retained receives
    /// of the binding were outstanding.
    CloseOutstanding,
    /// `NdisCloseAdapterEx` while another thread is still inside a call on
    /// that binding handle (or its close completed while one still runs).
    CloseDuringCall,
    /// NBLs still allocated or retained at unbind, pool free or deregister.
    NblLeak,
    /// An IRP completed twice.
    IrpDoubleComplete,
    /// An IRP never completed by unload (or by the close of its handle).
    IrpNotCompleted,
    /// A dispatch routine returned `STATUS_PENDING` without
    /// `IoMarkIrpPending`, marked pending and returned another status, or
    /// returned a final status that differs from the IRP's.
    IrpPendingMismatch,
    /// An IRP completed with its cancel routine still set.
    IrpCancelRoutineSet,
    /// An IRP completed with `Information` larger than its output buffer.
    IrpInformationOverflow,
    /// A buffered IRP returned output bytes the driver never wrote: the
    /// I/O manager would copy stale kernel memory to the caller. ndisim
    /// fills the output part of every system buffer with a poison pattern
    /// and looks for it in what comes back.
    IrpStaleOutput,
    /// `IoCompleteRequest` called while the thread holds a spin lock (an
    /// NDIS spin lock or the cancel spin lock; Static Driver Verifier's
    /// SpinLockSafe: completion runs other drivers' completion routines,
    /// which may take locks of their own) or an NDIS RW lock.
    IrpCompleteUnderLock,
    /// An IRP completed on another thread while its cancel routine runs,
    /// before the routine released the cancel spin lock it was called with.
    IrpCompleteInCancel,
    /// An OID request that NDIS still owns was submitted again (NDIS would
    /// complete it twice).
    OidDoubleComplete,
    /// Spin lock acquire/release imbalance: release without acquire,
    /// release by another thread, recursive acquire, a lock still held when
    /// a callback returns, or freed while held.
    SpinLockImbalance,
    /// A function called at an IRQL its documentation does not allow.
    Irql,
    /// Pool allocations not freed at unload.
    PoolLeak,
    /// Pool freed twice, or a free of memory the pool never gave out.
    PoolDoubleFree,
    /// `ExFreePoolWithTag` with a tag other than the allocation's.
    PoolTagMismatch,
    /// Kernel objects left at unload: devices, symbolic links, handles,
    /// work items, RW locks, MDLs, NBL pools, open bindings.
    ResourceLeak,
    /// `NdisCompleteNetPnPEvent`, `NdisCompleteBindAdapterEx` or
    /// `NdisCompleteUnbindAdapterEx` without a pending event of that kind.
    UnexpectedCompletion,
    /// A PnP event (pause, restart, bind, unbind, ...) that did not
    /// complete within the watchdog time.
    Watchdog,
    /// A control device with a symbolic link and no DACL (world-accessible).
    InsecureDevice,
    /// A work item queued while already queued, or freed while queued.
    WorkItemMisuse,
    /// A malformed structure or handle passed to NDIS or the kernel.
    InvalidParameter,
    /// Executable memory asked for: non-paged pool without the NX bit, or
    /// an MDL mapped without `MdlMappingNoExecute`.
    NoExecute,
    /// An `NDIS_RECEIVE_FLAGS_RESOURCES` indication's chain came back
    /// changed: other NBLs, another order, or rewritten `Next` links.
    ResourcesChain,
    /// A received NBL's data, or the NET_BUFFERs and MDLs that describe it,
    /// changed while the driver held it: a protocol has read-only access to
    /// what NDIS indicates (other protocols may be reading the same NBLs).
    /// Seen when the NBL comes back to NDIS; with checksums off, in the
    /// MDLs ndisim reuses from frame to frame only.
    ReceiveModified,
    /// Locks taken in an order that can deadlock: a cycle in the graph of
    /// which lock was taken while which was held (Driver Verifier's
    /// deadlock detection), even if no deadlock happened.
    LockOrder,
    /// The driver's frames went deeper than its stack budget (a share of
    /// the 24 KiB kernel stack that NDIS, the miniport and filters use
    /// too), seen at an export, in `__chkstk` or by the stack's
    /// high-water mark.
    StackBudget,
    /// A mapping of user pages outlived the lock on them: the driver
    /// touched a system mapping after the pages were unlocked (the IRP
    /// that locked them was completed, or `MmUnlockPages`), a partial MDL's
    /// own mapping was still there when they were unlocked, or NDIS still
    /// held (or was given) an NBL whose MDLs describe them.
    MappingAfterUnlock,
    /// An MDL from `IoAllocateMdl` not freed (`IoFreeMdl`) by unload.
    MdlLeak,
    /// Pages the driver locked with `MmProbeAndLockPages` still locked
    /// when the handle whose memory they are closed, when their MDL was
    /// freed, or at unload.
    PagesLockedAtClose,
    /// The driver wrote a UMEM frame it had handed back to the user (on the
    /// rx ring or the completion ring) before the user gave it to the
    /// driver again (fill or tx ring). Seen by a `RingWatch`, which the
    /// test (acting as the user) tells what it consumes and what it gives:
    /// when the frame is given again, when asked, and at unload.
    UmemAfterHandback,
    /// A pool block freed while something still uses memory in it: a spin
    /// lock a thread holds, an OID request NDIS owns, the context of a
    /// binding NDIS may still call, or the context of a queued work item.
    /// ndisim keeps such a block (so it leaks too) instead of letting NDIS
    /// or the driver use freed memory.
    FreedInUse,
    /// An NDIS function called from a context that forbids it:
    /// `NdisReEnumerateProtocolBindings` from `ProtocolBindAdapterEx`,
    /// `ProtocolUnbindAdapterEx` or a binding's `ProtocolNetPnPEvent` (the
    /// NdisReEnumerateProtocolBindings rule of Static Driver Verifier);
    /// `NdisCloseAdapterEx` outside the binding's bind or unbind (pended
    /// or not; elsewhere a protocol calls `NdisUnbindAdapter`);
    /// `NdisDeregisterProtocolDriver` from any `Protocol*` handler.
    PnpContext,
    /// An OID request or a send on a binding whose adapter is in a
    /// low-power state: after the binding's `NetEventSetPower` handler for
    /// D1, D2 or D3 returned, until the adapter is back in D0 (NDIS
    /// restarts the binding, or sends `NetEventSetPower` for D0). "If the
    /// miniport adapter is in a low-power state, the protocol driver cannot
    /// issue any OID requests", and from NDIS 6.30 on, once told of the
    /// event it "must stop generating new I/O requests" (Handling PnP
    /// Events and Power Management Events in a Protocol Driver). NDIS
    /// fails them with `NDIS_STATUS_LOW_POWER_STATE`.
    LowPower,
    /// A line of the driver's debug output (`DbgPrintEx`) containing a
    /// text the test forbade (`SimBuilder::forbid_debug_lines`): a driver's
    /// own report that one of its safety nets caught a broken invariant
    /// (rawnic.sys's `safety net: ` lines). Windows goes on; the line says
    /// the driver is wrong. Checked as each line is printed, so a long run
    /// keeping only its last lines loses none.
    ForbiddenDebugLine,
    /// A direct-I/O write's buffer (the IRP's `MdlAddress`) changed between
    /// the request and its completion: the data of a write is the caller's
    /// and read-only to the driver. Driver Verifier's invariant MDL
    /// checking ("An invariant buffer, for the write request, cannot be
    /// modified throughout the entire lifetime of the IRP") stops the
    /// machine with bug check 0xC4, parameter 0x1010.
    IrpWriteModified,
}

impl Rule {
    /// Every rule.
    pub const ALL: &'static [Rule] = &[
        Rule::SendNotRunning,
        Rule::SendSourceHandle,
        Rule::SendOversize,
        Rule::NblOwnership,
        Rule::PauseOutstanding,
        Rule::RetainedWhilePaused,
        Rule::RetainedWhenLow,
        Rule::CloseOutstanding,
        Rule::CloseDuringCall,
        Rule::NblLeak,
        Rule::IrpDoubleComplete,
        Rule::IrpNotCompleted,
        Rule::IrpPendingMismatch,
        Rule::IrpCancelRoutineSet,
        Rule::IrpInformationOverflow,
        Rule::IrpStaleOutput,
        Rule::IrpCompleteUnderLock,
        Rule::IrpCompleteInCancel,
        Rule::OidDoubleComplete,
        Rule::SpinLockImbalance,
        Rule::Irql,
        Rule::PoolLeak,
        Rule::PoolDoubleFree,
        Rule::PoolTagMismatch,
        Rule::ResourceLeak,
        Rule::UnexpectedCompletion,
        Rule::Watchdog,
        Rule::InsecureDevice,
        Rule::WorkItemMisuse,
        Rule::InvalidParameter,
        Rule::NoExecute,
        Rule::ResourcesChain,
        Rule::ReceiveModified,
        Rule::LockOrder,
        Rule::StackBudget,
        Rule::MappingAfterUnlock,
        Rule::MdlLeak,
        Rule::PagesLockedAtClose,
        Rule::UmemAfterHandback,
        Rule::FreedInUse,
        Rule::PnpContext,
        Rule::LowPower,
        Rule::ForbiddenDebugLine,
        Rule::IrpWriteModified,
    ];

    /// The rule's name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::SendNotRunning => "send-not-running",
            Rule::SendSourceHandle => "send-source-handle",
            Rule::SendOversize => "send-oversize",
            Rule::NblOwnership => "nbl-ownership",
            Rule::PauseOutstanding => "pause-with-outstanding",
            Rule::RetainedWhilePaused => "retained-while-paused",
            Rule::RetainedWhenLow => "retained-when-low",
            Rule::CloseOutstanding => "close-with-outstanding",
            Rule::CloseDuringCall => "close-during-call",
            Rule::NblLeak => "nbl-leak",
            Rule::IrpDoubleComplete => "irp-double-complete",
            Rule::IrpNotCompleted => "irp-not-completed",
            Rule::IrpPendingMismatch => "irp-pending-mismatch",
            Rule::IrpCancelRoutineSet => "irp-cancel-routine-at-completion",
            Rule::IrpInformationOverflow => "irp-information-overflow",
            Rule::IrpStaleOutput => "irp-stale-output",
            Rule::IrpCompleteUnderLock => "irp-complete-under-lock",
            Rule::IrpCompleteInCancel => "irp-complete-in-cancel",
            Rule::OidDoubleComplete => "oid-double-complete",
            Rule::SpinLockImbalance => "spinlock-imbalance",
            Rule::Irql => "irql",
            Rule::PoolLeak => "pool-leak",
            Rule::PoolDoubleFree => "pool-double-free",
            Rule::PoolTagMismatch => "pool-tag-mismatch",
            Rule::ResourceLeak => "resource-leak",
            Rule::UnexpectedCompletion => "unexpected-completion",
            Rule::Watchdog => "watchdog",
            Rule::InsecureDevice => "insecure-device",
            Rule::WorkItemMisuse => "workitem-misuse",
            Rule::InvalidParameter => "invalid-parameter",
            Rule::NoExecute => "no-execute",
            Rule::ResourcesChain => "resources-chain",
            Rule::ReceiveModified => "receive-modified",
            Rule::LockOrder => "lock-order",
            Rule::StackBudget => "stack-budget",
            Rule::MappingAfterUnlock => "mapping-after-unlock",
            Rule::MdlLeak => "mdl-leak",
            Rule::PagesLockedAtClose => "pages-locked-at-close",
            Rule::UmemAfterHandback => "umem-after-handback",
            Rule::FreedInUse => "freed-in-use",
            Rule::PnpContext => "pnp-context",
            Rule::LowPower => "low-power",
            Rule::ForbiddenDebugLine => "forbidden-debug-line",
            Rule::IrpWriteModified => "irp-write-modified",
        }
    }

    /// The rule with this name.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.name() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    /// The function (export or driver handler) in which it was seen.
    pub call: String,
    /// The binding's adapter name, when one is involved.
    pub binding: Option<String>,
    /// The NBL, IRP, lock or pool address involved.
    pub object: Option<usize>,
    /// What happened.
    pub detail: String,
}

impl Violation {
    /// A violation of `rule`, seen in `call` (an export or a driver
    /// handler), saying what happened; no binding or object yet.
    pub fn new(rule: Rule, call: impl Into<String>, detail: impl Into<String>) -> Violation {
        Violation { rule, call: call.into(), binding: None, object: None, detail: detail.into() }
    }

    /// Names the binding involved (by its adapter's name), if any.
    pub fn with_binding(self, binding: impl Into<Option<String>>) -> Violation {
        Violation { binding: binding.into(), ..self }
    }

    /// Gives the address of the NBL, IRP, lock or pool block involved, if
    /// any.
    pub fn with_object(self, object: impl Into<Option<usize>>) -> Violation {
        Violation { object: object.into(), ..self }
    }

    /// Records it in the current thread's simulation (or prints it when the
    /// thread is in none). A caller that holds the `Kernel` and may not be
    /// in it gives it to `Verifier::report` instead.
    pub(crate) fn report(self) {
        match crate::kernel::kernel() {
            Some(k) => k.verifier.report(self),
            None => eprintln!("ndisim: VERIFIER (no simulation): {self}"),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] in {}", self.rule, self.call)?;
        if let Some(b) = &self.binding {
            write!(f, " (binding {b})")?;
        }
        if let Some(o) = self.object {
            write!(f, " (object {o:#x})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How much of an in-flight NBL the verifier checksums at send and checks
/// at completion (and of a received NBL at return, checked at reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Nothing: for benchmarks.
    Off,
    /// The NBL, NET_BUFFER and MDL structures.
    Headers,
    /// The structures and every data byte.
    Full,
}

/// A check the harness registers with the verifier (a `RingWatch`), run
/// whenever the violations are read: by `Sim::violations` and at unload.
pub(crate) trait LateCheck: Send + Sync {
    fn late_check(&self, v: &Verifier);
}

/// The verifier's record.
pub(crate) struct Verifier {
    violations: Mutex<Vec<Violation>>,
    internal: Mutex<Vec<String>>,
    checksum: AtomicU8,
    echo: bool,
    late: Mutex<Vec<Weak<dyn LateCheck>>>,
}

static WATCHDOG_HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets a function the process calls, on the reporting thread, each time a
/// watchdog gives up (rule `watchdog`): a harness takes every thread's
/// stack there, while whatever the operation waits for still waits (a
/// completion that comes right after the watchdog, "late, not lost", may
/// have waited for what the giving up let go). Set once; false if it was
/// set already.
pub fn set_watchdog_hook(hook: fn()) -> bool {
    WATCHDOG_HOOK.set(hook).is_ok()
}

impl Verifier {
    pub(crate) fn new(checksum: Checksum, echo: bool) -> Self {
        Verifier {
            violations: Mutex::new(Vec::new()),
            internal: Mutex::new(Vec::new()),
            checksum: AtomicU8::new(checksum as u8),
            echo,
            late: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn checksum(&self) -> Checksum {
        match self.checksum.load(Ordering::Relaxed) {
            0 => Checksum::Off,
            1 => Checksum::Headers,
            _ => Checksum::Full,
        }
    }

    pub(crate) fn set_checksum(&self, c: Checksum) {
        self.checksum.store(c as u8, Ordering::Relaxed);
    }

    pub(crate) fn report(&self, v: Violation) {
        if self.echo {
            eprintln!("ndisim: VERIFIER: {v}");
        }
        let watchdog = v.rule == Rule::Watchdog;
        lock(&self.violations).push(v);
        if watchdog {
            if let Some(hook) = WATCHDOG_HOOK.get() {
                hook();
            }
        }
    }

    pub(crate) fn internal_error(&self, what: String) {
        eprintln!("ndisim: INTERNAL ERROR: {what}");
        lock(&self.internal).push(what);
    }

    /// Registers a check that `violations` runs first, for as long as it
    /// lives.
    pub(crate) fn add_late_check(&self, c: Weak<dyn LateCheck>) {
        let mut l = lock(&self.late);
        l.retain(|w| w.strong_count() > 0);
        l.push(c);
    }

    pub(crate) fn violations(&self) -> Vec<Violation> {
        // Upgraded and run with no lock of ours held: a check reports.
        let checks: Vec<_> = lock(&self.late).iter().filter_map(Weak::upgrade).collect();
        for c in checks {
            c.late_check(self);
        }
        lock(&self.violations).clone()
    }

    pub(crate) fn internal_errors(&self) -> Vec<String> {
        lock(&self.internal).clone()
    }
}

/// Locks a process-wide mutex, one that every simulation in the process
/// shares (the stack gate's slots, their owners): another simulation's
/// thread may hold it for a moment, which is no deadlock of this one's
/// scheduler, so `lock`'s warning would be false. Ignores poisoning.
pub(crate) fn lock_process<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks a std mutex of one simulation, ignoring poisoning (a panic
/// elsewhere was already recorded as an internal error).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            if crate::kernel::kernel().is_some_and(|k| k.sched_here().is_some()) {
                // One thread runs at a time: the holder is suspended at a
                // scheduling point with the lock held, and never will be
                // able to release it. A bug of ndisim's.
                crate::kernel::write_stderr(
                    "\n*** ndisim: INTERNAL ERROR: an ndisim lock is held across a scheduling point; the deterministic simulation deadlocks\n",
                );
            }
            m.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_is_built_in_one_place() {
        let v = Violation::new(Rule::Irql, "NdisFoo", "called at DIRQL");
        assert_eq!(v.to_string(), "[irql] in NdisFoo: called at DIRQL");
        let v = v.with_binding("loop0".to_string()).with_object(0x1000);
        assert_eq!(v.to_string(), "[irql] in NdisFoo (binding loop0) (object 0x1000): called at DIRQL");
        let v = v.with_binding(None).with_object(None);
        assert_eq!((v.binding, v.object), (None, None));
    }
}
