//! Locking and mapping an MDL's pages: `MmMapLockedPagesSpecifyCache`,
//! `MmUnmapLockedPages`, `MmProbeAndLockPages` and `MmUnlockPages`.
//!
//! Pages of a user region (`UserRegion`) are mapped into "system space"
//! as a second mapping of the region's memfd, never at the user address,
//! and the mapping lives only as long as the lock it was made under
//! (`umem`).

use crate::kernel::{self, APC_LEVEL, DISPATCH_LEVEL};
use crate::nbl;
use crate::verifier::Rule;
use crate::verifier::Violation;
use ndis_sys::*;

pub(crate) unsafe extern "win64" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    mode: KPROCESSOR_MODE,
    _cache: u32,
    requested: PVOID,
    bugcheck: u32,
    prio: u32,
) -> PVOID {
    const CALL: &str = "MmMapLockedPagesSpecifyCache";
    crate::ndis::export(CALL, std::ptr::null_mut(), |k| {
        if mode == KernelMode && prio & 0x4000_0000 == 0 {
            Violation::new(
                Rule::NoExecute,
                CALL,
                format!("Priority {prio:#x} lacks MdlMappingNoExecute: the kernel mapping would be executable"),
            )
            .with_object(mdl as usize)
            .report();
        }
        kernel::check_irql_max(CALL, if mode == KernelMode { DISPATCH_LEVEL } else { APC_LEVEL });
        if mdl.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null MDL").report();
            return std::ptr::null_mut();
        }
        // The routine's page (learn.microsoft.com,
        // nf-wdm-mmmaplockedpagesspecifycache): a kernel-mode mapping that
        // fails for want of resources stops the machine when
        // BugCheckOnFailure is TRUE, and drivers are told to pass FALSE.
        if bugcheck != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "BugCheckOnFailure is {bugcheck}: drivers pass FALSE (with TRUE, a mapping that fails for want of system PTEs is a bug check instead of NULL)"
                ),
            )
            .with_object(mdl as usize)
            .report();
        }
        // Same page: a user-mode mapping that fails raises an exception the
        // caller must catch in a try/except block. A Rust driver has none,
        // so on Windows the failure is a bug check; ndisim does not model
        // mappings into a process either, and maps nothing.
        if mode != KernelMode {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "AccessMode {mode} (UserMode): a user-mode mapping that fails raises an exception only a __try/__except block can catch, which a Rust driver cannot have, so the machine would bug check; ndisim maps nothing and returns NULL"
                ),
            )
            .with_object(mdl as usize)
            .report();
            return std::ptr::null_mut();
        }
        if !requested.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "RequestedAddress must be NULL for a kernel-mode mapping")
                .with_object(mdl as usize)
                .report();
        }
        // SAFETY: the driver's MDL, which describes memory of this process.
        let m = unsafe { &mut *mdl };
        if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) == 0 {
            Violation::new(Rule::InvalidParameter, CALL, "the MDL's pages are not locked")
                .with_object(mdl as usize)
                .report();
        }
        // MmBuildMdlForNonPagedPool's page: the pages of such an MDL "are
        // already mapped to the system address space", and drivers "must
        // not try ... to create additional system-address-space mappings
        // by using the MmMapLockedPagesSpecifyCache routine" (undefined
        // behaviour; MmGetSystemAddressForMdlSafe returns the address
        // instead). NdisAllocateMdl's MDLs, and partial MDLs built from
        // them, are such MDLs. The run goes on with the address the MDL
        // already has.
        if m.MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "the MDL describes non-paged pool (MDL_SOURCE_IS_NONPAGED_POOL: NdisAllocateMdl's or MmBuildMdlForNonPagedPool's, or a partial MDL of one), already mapped to system space: no other kernel mapping of it may be made (MmGetSystemAddressForMdlSafe returns MappedSystemVa)",
            )
            .with_object(mdl as usize)
            .report();
            return m.MappedSystemVa;
        }
        if k.fail_alloc() || k.refuse_map() {
            // Driver Verifier's low-resources simulation fails mappings too
            // (learn.microsoft.com, devtest/low-resources-simulation: it
            // names MmGetSystemAddressForMdlSafe and this routine): NULL,
            // and the MDL stays unmapped.
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        let va = unsafe { nbl::mdl_va(mdl) } as usize;
        // A mapping made over one the MDL has: the earlier one leaks.
        let remapped = |flags: i16| {
            if flags & MDL_MAPPED_TO_SYSTEM_VA != 0 {
                Violation::new(
                    Rule::InvalidParameter,
                    CALL,
                    "the MDL is mapped already (MDL_MAPPED_TO_SYSTEM_VA): the earlier mapping leaks (MmGetSystemAddressForMdlSafe maps once)",
                )
                .with_object(mdl as usize)
                .report();
            }
        };
        match k.io.umem.map(mdl as usize, va, m.ByteCount as usize) {
            None => {
                remapped(m.MdlFlags);
                m.MappedSystemVa = va as PVOID;
                m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
                va as PVOID
            }
            Some(Err(why)) => {
                Violation::new(Rule::InvalidParameter, CALL, why).with_object(mdl as usize).report();
                std::ptr::null_mut()
            }
            Some(Ok(sys)) => {
                remapped(m.MdlFlags);
                m.MappedSystemVa = sys as PVOID;
                m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
                if m.MdlFlags & MDL_PARTIAL != 0 {
                    m.MdlFlags |= MDL_PARTIAL_HAS_BEEN_MAPPED;
                }
                sys as PVOID
            }
        }
    })
}

pub(crate) unsafe extern "win64" fn MmUnmapLockedPages(base: PVOID, mdl: *mut MDL) {
    const CALL: &str = "MmUnmapLockedPages";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if mdl.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null MDL").report();
            return;
        }
        // SAFETY: the driver's MDL.
        let m = unsafe { &mut *mdl };
        if m.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA == 0 || m.MappedSystemVa != base {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!("BaseAddress {:#x} is not the MDL's system mapping", base as usize),
            )
            .with_object(mdl as usize)
            .report();
            return;
        }
        if m.MdlFlags & MDL_PARTIAL != 0 && m.MdlFlags & MDL_PARTIAL_HAS_BEEN_MAPPED == 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "a partial MDL that shares its source's mapping (it was built from a mapped MDL) has no mapping of its own to unmap",
            )
            .with_object(mdl as usize)
            .report();
            return;
        }
        if k.io.umem.unmap(base as usize, mdl as usize) == Some(false) {
            Violation::new(Rule::InvalidParameter, CALL, "the mapping belongs to another MDL")
                .with_object(mdl as usize)
                .report();
            return;
        }
        m.MdlFlags &= !(MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED);
        m.MappedSystemVa = std::ptr::null_mut();
    })
}

pub(crate) unsafe extern "win64" fn MmProbeAndLockPages(mdl: *mut MDL, mode: KPROCESSOR_MODE, op: u32) {
    const CALL: &str = "MmProbeAndLockPages";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, APC_LEVEL);
        if mdl.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null MDL").report();
            return;
        }
        if op > IoModifyAccess || mode > UserMode {
            Violation::new(Rule::InvalidParameter, CALL, format!("AccessMode {mode} / Operation {op} out of range"))
                .with_object(mdl as usize)
                .report();
        }
        // SAFETY: the driver's MDL.
        let m = unsafe { &mut *mdl };
        if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "the MDL already describes locked, partial or non-paged pages: only a fresh MDL from IoAllocateMdl is probed and locked",
            )
            .with_object(mdl as usize)
            .report();
            return;
        }
        // SAFETY: as above.
        let va = unsafe { nbl::mdl_va(mdl) } as usize;
        let len = m.ByteCount as usize;
        if k.io.umem.lock_probe(mdl as usize, va, len).is_err() {
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                format!(
                    "{va:#x}+{len} is not memory of a live user region: Windows raises an exception (STATUS_ACCESS_VIOLATION) that only a __try/__except block can catch, which a Rust driver cannot have, so the machine would bug check; ndisim leaves the pages unlocked"
                ),
            )
            .with_object(mdl as usize)
            .report();
            return;
        }
        m.MdlFlags |= MDL_PAGES_LOCKED;
        let pages = nbl::span_pages(va, len);
        // SAFETY: the driver's MDL from IoAllocateMdl, with room for the
        // PFNs of the range it was made for (`IoAllocateMdl`).
        let cap = unsafe { if k.io.umem.with_mdl(mdl as usize, |_| ()).is_ok() { nbl::mdl_capacity(mdl) } else { 0 } };
        // SAFETY: the PFN array follows the MDL; at most its capacity.
        let pfns = unsafe { mdl.add(1) }.cast::<u64>();
        for i in 0..pages.min(cap) {
            // SAFETY: within the capacity.
            unsafe { *pfns.add(i) = ((va >> 12) + i) as u64 };
        }
    })
}

pub(crate) unsafe extern "win64" fn MmUnlockPages(mdl: *mut MDL) {
    const CALL: &str = "MmUnlockPages";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if mdl.is_null() {
            Violation::new(Rule::InvalidParameter, CALL, "null MDL").report();
            return;
        }
        match k.io.umem.lock_kind(mdl as usize) {
            Some(super::umem::LockKind::Probe) => {}
            Some(super::umem::LockKind::Irp(irp)) => {
                Violation::new(
                    Rule::InvalidParameter,
                    CALL,
                    format!(
                        "the MDL is IRP {irp:#x}'s, locked by the I/O manager, which unlocks it when the IRP completes"
                    ),
                )
                .with_object(mdl as usize)
                .report();
                return;
            }
            None => {
                // MmUnlockPages' page (nf-wdm-mmunlockpages): only memory the
                // MDL itself locked with MmProbeAndLockPages. A partial MDL
                // locks nothing: its pages are its source's.
                // SAFETY: the driver's MDL.
                let partial = unsafe { (*mdl).MdlFlags } & MDL_PARTIAL != 0;
                let d = if partial {
                    "a partial MDL (IoBuildPartialMdl) locks nothing of its own: unlock the MDL it was built from, which locked the pages"
                } else {
                    "the MDL's pages were not locked by MmProbeAndLockPages"
                };
                Violation::new(Rule::InvalidParameter, CALL, d).with_object(mdl as usize).report();
                return;
            }
        }
        k.io.umem.unlock(mdl as usize, CALL);
        // SAFETY: the driver's MDL.
        let m = unsafe { &mut *mdl };
        // Unlocking also releases the MDL's own system mapping (revoked
        // with the lock above).
        m.MdlFlags &= !(MDL_PAGES_LOCKED | MDL_MAPPED_TO_SYSTEM_VA);
        m.MappedSystemVa = std::ptr::null_mut();
    })
}
