//! Kernel handles: `ObOpenObjectByPointer` on a device object of the
//! driver (to set its security) and `ZwClose`.

use crate::kernel::{self, PASSIVE_LEVEL};
use crate::verifier::Violation;
use crate::verifier::{Rule, lock};
use ndis_sys::*;

/// The driver's routines that run in the system process (DriverEntry, the
/// unload routine, a work item's routine on a system worker thread). Any
/// other (a dispatch routine runs in the requester's process, NDIS's
/// handlers in whatever thread NDIS calls from) must ask for a kernel
/// handle: ObOpenObjectByPointer's page, "If the caller is not running in
/// the system process context, these flags must include
/// OBJ_KERNEL_HANDLE".
const SYSTEM_CONTEXT: [&str; 3] = ["DriverEntry", "DriverUnload", "WorkerRoutine"];

/// Whose handle table a handle is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// OBJ_KERNEL_HANDLE: the kernel's, usable from any process.
    Kernel,
    /// The system process's (opened without the flag in a routine that
    /// runs there): usable only from such routines.
    System,
    /// Some other process's (opened without the flag elsewhere: reported
    /// at the open).
    Process,
}

/// The driver routine this thread runs in, and whether it runs in the
/// system process.
fn context() -> (&'static str, bool) {
    let h = crate::stack::current_handler();
    (h, SYSTEM_CONTEXT.contains(&h))
}

/// Reports the use by `call` of a handle of the system process's table
/// from a routine that does not run there (ZwClose's page: a handle that a
/// DriverEntry routine opened "cannot subsequently be closed by the same
/// driver's dispatch routines").
pub(super) fn check_scope(call: &str, h: HANDLE, scope: Scope) {
    let (handler, system) = context();
    if scope == Scope::System && !system {
        Violation::new(
            Rule::InvalidParameter,
            call,
            format!(
                "a handle opened without OBJ_KERNEL_HANDLE in the system process, used in {handler}, which need not run there: in another process the value names nothing, or another of that process's handles"
            ),
        )
        .with_object(h as usize)
        .report();
    }
}

pub(crate) unsafe extern "win64" fn ObOpenObjectByPointer(
    object: PVOID,
    attrs: u32,
    _state: PVOID,
    _access: ACCESS_MASK,
    _otype: PVOID,
    _mode: KPROCESSOR_MODE,
    out: *mut HANDLE,
) -> NTSTATUS {
    const CALL: &str = "ObOpenObjectByPointer";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        let mut st = lock(&k.io.st);
        if !st.devices.iter().any(|d| std::ptr::addr_eq(d.dev, object) && !d.deleted) {
            drop(st);
            Violation::new(Rule::InvalidParameter, CALL, "ndisim opens device objects of the driver only")
                .with_object(object as usize)
                .report();
            return STATUS_INVALID_PARAMETER;
        }
        if out.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        let kernel_handle = attrs & OBJ_KERNEL_HANDLE != 0;
        let (handler, system) = context();
        if !kernel_handle && !system {
            drop(st);
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "HandleAttributes lacks OBJ_KERNEL_HANDLE in {handler}, which need not run in the system process: the handle would go into the calling process's handle table, where user mode can use it"
                ),
            )
            .with_object(object as usize)
            .report();
            st = lock(&k.io.st);
        }
        st.next_handle += 4;
        let h = st.next_handle | if kernel_handle { 0xFFFF_FFFF_8000_0000 } else { 0 };
        let scope = match (kernel_handle, system) {
            (true, _) => Scope::Kernel,
            (false, true) => Scope::System,
            (false, false) => Scope::Process,
        };
        st.handles.insert(h, (object as usize, scope));
        // SAFETY: the driver's out parameter.
        unsafe { *out = h as HANDLE };
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn ZwClose(h: HANDLE) -> NTSTATUS {
    const CALL: &str = "ZwClose";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        let Some((_, scope)) = lock(&k.io.st).handles.remove(&(h as usize)) else {
            Violation::new(Rule::InvalidParameter, CALL, "not an open handle").with_object(h as usize).report();
            return STATUS_INVALID_HANDLE;
        };
        // (Closed all the same, so that the run goes on; on Windows it
        // would stay open in the system process.)
        check_scope(CALL, h, scope);
        STATUS_SUCCESS
    })
}
