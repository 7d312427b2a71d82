//! Mapping an MDL's pages into system space:
//! `MmMapLockedPagesSpecifyCache`.

use crate::kernel::{self, DISPATCH_LEVEL};
use crate::nbl;
use crate::verifier::Rule;
use crate::verifier::Violation;
use ndis_sys::*;

pub(crate) unsafe extern "win64" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    mode: KPROCESSOR_MODE,
    _cache: u32,
    requested: PVOID,
    _bugcheck: u32,
    prio: u32,
) -> PVOID {
    const CALL: &str = "MmMapLockedPagesSpecifyCache";
    crate::ndis::export(CALL, std::ptr::null_mut(), |_k| {
        if mode == KernelMode && prio & 0x4000_0000 == 0 {
            Violation::new(
                Rule::NoExecute,
                CALL,
                format!("Priority {prio:#x} lacks MdlMappingNoExecute: the kernel mapping would be executable"),
            )
            .with_object(mdl as usize)
            .report();
        }
        kernel::check_irql_max(CALL, if mode == KernelMode { DISPATCH_LEVEL } else { kernel::APC_LEVEL });
        if mdl.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null MDL").report();
            return std::ptr::null_mut();
        }
        if !requested.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "RequestedAddress must be NULL for a kernel-mode mapping")
                .with_object(mdl as usize)
                .report();
        }
        // SAFETY: the driver's MDL, which describes memory of this process.
        unsafe {
            let m = &mut *mdl;
            if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) == 0 {
                Violation::new(Rule::InvalidParameter, CALL, "the MDL's pages are not locked")
                    .with_object(mdl as usize)
                    .report();
            }
            let va = nbl::mdl_va(mdl);
            m.MappedSystemVa = va.cast();
            m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
            va.cast()
        }
    })
}
