//! Mapping an MDL's pages into system space:
//! `MmMapLockedPagesSpecifyCache`.

use super::viol;
use crate::kernel::{self, DISPATCH_LEVEL};
use crate::nbl;
use crate::verifier::Rule;
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
            viol(
                Rule::NoExecute,
                CALL,
                Some(mdl as usize),
                format!("Priority {prio:#x} lacks MdlMappingNoExecute: the kernel mapping would be executable"),
            );
        }
        kernel::check_irql_max(CALL, if mode == KernelMode { DISPATCH_LEVEL } else { kernel::APC_LEVEL });
        if mdl.is_null() {
            viol(Rule::InvalidParameter, CALL, None, "null MDL".into());
            return std::ptr::null_mut();
        }
        if !requested.is_null() {
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(mdl as usize),
                "RequestedAddress must be NULL for a kernel-mode mapping".into(),
            );
        }
        // SAFETY: the driver's MDL, which describes memory of this process.
        unsafe {
            let m = &mut *mdl;
            if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) == 0 {
                viol(Rule::InvalidParameter, CALL, Some(mdl as usize), "the MDL's pages are not locked".into());
            }
            let va = nbl::mdl_va(mdl);
            m.MappedSystemVa = va.cast();
            m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
            va.cast()
        }
    })
}
