//! MDLs the driver allocates: `IoAllocateMdl`, `IoBuildPartialMdl` and
//! `IoFreeMdl`. Every one is tracked (`umem`) until it is freed; one left
//! at unload breaks rule `mdl-leak`.

use crate::kernel::{self, DISPATCH_LEVEL};
use crate::nbl;
use crate::verifier::{Rule, Violation};
use ndis_sys::*;

/// The largest buffer one MDL describes (Windows 7 and later: 4 GiB less a
/// page).
const MAX_MDL_BYTES: u64 = (1 << 32) - 4096;

pub(crate) unsafe extern "win64" fn IoAllocateMdl(
    va: PVOID,
    len: u32,
    secondary: BOOLEAN,
    charge_quota: BOOLEAN,
    irp: *mut IRP,
) -> *mut MDL {
    const CALL: &str = "IoAllocateMdl";
    crate::ndis::export(CALL, std::ptr::null_mut(), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if charge_quota != 0 {
            Violation::new(Rule::InvalidParameter, CALL, "ChargeQuota is reserved: drivers pass FALSE").report();
        }
        if !irp.is_null() {
            // The I/O manager would free the MDL with the IRP; rawnic passes
            // NULL, and ndisim does not model MDLs chained to IRPs.
            Violation::new(
                Rule::InvalidParameter,
                CALL,
                "an Irp to chain the MDL to: not modelled by ndisim (pass NULL and free the MDL with IoFreeMdl)",
            )
            .with_object(irp as usize)
            .report();
            return std::ptr::null_mut();
        }
        if secondary != 0 {
            Violation::new(Rule::InvalidParameter, CALL, "SecondaryBuffer must be FALSE when no IRP is given").report();
        }
        let va = va as usize;
        if len as u64 > MAX_MDL_BYTES || va.checked_add(len as usize).is_none() {
            return std::ptr::null_mut();
        }
        if k.fail_alloc() {
            return std::ptr::null_mut();
        }
        let pages = nbl::span_pages(va, len as usize);
        let p = nbl::alloc_mdl_pages(pages);
        if p.is_null() {
            return p;
        }
        // SAFETY: a fresh MDL of ours: what MmInitializeMdl sets (no
        // flags: the pages are neither locked nor mapped yet).
        unsafe {
            (*p).StartVa = (va & !0xFFF) as PVOID;
            (*p).ByteOffset = (va & 0xFFF) as u32;
            (*p).ByteCount = len;
        }
        k.io.umem.add_mdl(p as usize, pages);
        p
    })
}

pub(crate) unsafe extern "win64" fn IoBuildPartialMdl(source: *mut MDL, target: *mut MDL, va: PVOID, len: u32) {
    const CALL: &str = "IoBuildPartialMdl";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let bad = |d: String, obj: usize| Violation::new(Rule::InvalidParameter, CALL, d).with_object(obj).report();
        if source.is_null() || target.is_null() {
            bad("null SourceMdl or TargetMdl".into(), 0);
            return;
        }
        if !k.io.umem.known(source as usize) && k.io.umem.with_mdl(source as usize, |_| ()) == Err(true) {
            // (An MDL NDIS gave the driver is a valid source too, and not
            // tracked here; a freed one is not.)
            bad("SourceMdl was freed (IoFreeMdl, or the I/O manager's when its IRP completed)".into(), source as usize);
            return;
        }
        // (Room, whether the target is in the driver's pool.)
        let (cap, in_pool) = match k.io.umem.with_mdl(target as usize, |r| (r.pages, r.in_pool)) {
            Ok((pages, false)) => (pages, false),
            _ => match pool_target(k, target) {
                Ok(pages) => (pages, true),
                Err(d) => {
                    bad(d, target as usize);
                    return;
                }
            },
        };
        // SAFETY: the source is a live MDL (the driver's, an IRP's or
        // NDIS's); the target is the driver's (checked).
        let (s, t) = unsafe { (&*source, &mut *target) };
        if s.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) == 0 {
            bad("SourceMdl's pages are neither locked nor non-paged pool".into(), source as usize);
            return;
        }
        if k.io.umem.lock_kind(target as usize).is_some() {
            // IoFreeMdl's page (learn.microsoft.com, nf-wdm-iofreemdl): pages
            // an MDL locked are unlocked through it before it goes; and
            // MmUnlockPages' page (nf-wdm-mmunlockpages): the MDL given to it
            // describes what MmProbeAndLockPages locked. Rebuilt as a
            // partial, the target would describe the source's pages instead:
            // its own stay locked for good, and unlocking it would unlock
            // pages it never locked.
            bad(
                "TargetMdl's own pages are still locked (MmProbeAndLockPages): MmUnlockPages it before rebuilding it as a partial MDL, or its pages stay locked and unlocking it later unlocks the source's".into(),
                target as usize,
            );
            return;
        }
        if t.MdlFlags & MDL_PARTIAL_HAS_BEEN_MAPPED != 0 {
            bad(
                "TargetMdl still has a mapping of its own (MDL_PARTIAL_HAS_BEEN_MAPPED): MmPrepareMdlForReuse before reusing it, or the mapping leaks".into(),
                target as usize,
            );
            return;
        }
        // SAFETY: a live MDL.
        let sva = unsafe { nbl::mdl_va(source) } as usize;
        let send = sva + s.ByteCount as usize;
        if let Some(id) = k.io.umem.unlocked_region(source as usize, sva, s.ByteCount as usize) {
            // IoBuildPartialMdl's page (nf-wdm-iobuildpartialmdl): the
            // source's physical pages are locked before the call. A partial
            // source keeps the flags it was built with, so the lock is looked
            // up where it was taken.
            bad(
                format!(
                    "SourceMdl describes user region #{id}'s pages, whose lock is gone (the MDL it was built from was unlocked, or its IRP completed): the partial MDL would describe pages that may already be reused"
                ),
                source as usize,
            );
            return;
        }
        // (The driver read the address from the source, which may be an
        // unmapped MDL's: `nbl::UNMAPPED_ALIAS`; the partial is unmapped
        // too.)
        let alias = s.StartVa as usize & nbl::UNMAPPED_ALIAS;
        let va = va as usize & !nbl::UNMAPPED_ALIAS;
        let n = if len == 0 { send.saturating_sub(va) } else { len as usize };
        if va < sva || va.checked_add(n).is_none_or(|e| e > send) || n == 0 {
            bad(
                format!(
                    "{va:#x}+{n} is not inside the source MDL's {sva:#x}+{}: the partial MDL would describe pages the source does not lock",
                    s.ByteCount
                ),
                target as usize,
            );
            return;
        }
        let pages = nbl::span_pages(va, n);
        if pages > cap {
            bad(format!("TargetMdl was allocated for {cap} page(s); {va:#x}+{n} spans {pages}"), target as usize);
            return;
        }
        t.StartVa = (va & !0xFFF | alias) as PVOID;
        t.ByteOffset = (va & 0xFFF) as u32;
        t.ByteCount = n as u32;
        t.Process = s.Process;
        let keep = s.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL);
        if s.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA != 0 && !s.MappedSystemVa.is_null() {
            // Shares the source's mapping.
            t.MappedSystemVa = (s.MappedSystemVa as usize + (va - sva)) as PVOID;
            t.MdlFlags = keep | MDL_PARTIAL | MDL_MAPPED_TO_SYSTEM_VA;
        } else if s.MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL != 0 {
            t.MappedSystemVa = va as PVOID;
            t.MdlFlags = keep | MDL_PARTIAL;
        } else {
            t.MappedSystemVa = std::ptr::null_mut();
            t.MdlFlags = keep | MDL_PARTIAL;
        }
        let first = (va >> 12) - (sva >> 12);
        // SAFETY: both PFN arrays follow their MDLs; the source's covers
        // its range (of which this is a part), the target has room for
        // `pages` (checked).
        unsafe {
            let from = source.add(1).cast::<u64>().add(first);
            std::ptr::copy(from, target.add(1).cast::<u64>(), pages);
        }
        if in_pool {
            // Tracked from its first build, with the room its `Size` gives now.
            k.io.umem.add_pool_mdl(target as usize, cap);
        }
        let _ = k.io.umem.with_mdl(target as usize, |r| r.source = Some(source as usize));
    })
}

/// A target MDL the driver built in its own pool (`MmInitializeMdl`):
/// the pages its PFN array has room for, or what is wrong with it. The
/// `IoBuildPartialMdl` page allows a target "allocated from non-paged
/// pool"; `MmInitializeMdl` sets its `Size` to the header and the PFN
/// array, which must lie in one live non-paged block of the driver's.
fn pool_target(k: &kernel::Kernel, target: *mut MDL) -> Result<usize, String> {
    const HEADER: usize = std::mem::size_of::<MDL>();
    let t = target as usize;
    if t % std::mem::align_of::<MDL>() != 0 {
        return Err(format!("TargetMdl {t:#x} is not 8-byte aligned"));
    }
    let Some(block) = k.pool.containing(t, HEADER) else {
        return Err(
            "TargetMdl is neither an MDL from IoAllocateMdl nor one in a live block of the driver's pool (MmInitializeMdl), or it was freed"
                .into(),
        );
    };
    if block.pool_type & 1 == 1 {
        return Err("TargetMdl is in paged pool: an MDL must be in non-paged memory".into());
    }
    // SAFETY: the header lies in a live block of the driver's (checked).
    let size = i32::from(unsafe { (*target).Size });
    if size < (HEADER + 8) as i32 || size % 8 != 0 {
        return Err(format!(
            "TargetMdl's Size is {size}: MmInitializeMdl sets it to the {HEADER}-byte header and 8 bytes per page the buffer spans"
        ));
    }
    let size = size as usize;
    if t + size > block.addr + block.size {
        return Err(format!(
            "TargetMdl's Size ({size} bytes) runs past the end of its pool block ({:#x}+{}): its PFN array would overrun it",
            block.addr, block.size
        ));
    }
    Ok((size - HEADER) / 8)
}

pub(crate) unsafe extern "win64" fn IoFreeMdl(mdl: *mut MDL) {
    const CALL: &str = "IoFreeMdl";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        const IN_POOL: &str = "not an MDL from IoAllocateMdl: an MDL built in the driver's own pool (MmInitializeMdl) goes with its block (ExFreePoolWithTag)";
        let in_ndis = match k.io.umem.with_mdl(mdl as usize, |r| (r.in_ndis, r.in_pool)) {
            Ok((n, false)) => n,
            Ok((_, true)) => {
                Violation::new(Rule::InvalidParameter, CALL, IN_POOL).with_object(mdl as usize).report();
                return;
            }
            Err(freed) => {
                let d = if k.pool.containing(mdl as usize, 1).is_some() {
                    IN_POOL
                } else if freed {
                    "freed an MDL that was already freed"
                } else {
                    "not an MDL from IoAllocateMdl (an IRP's MDL is the I/O manager's to free)"
                };
                Violation::new(Rule::InvalidParameter, CALL, d).with_object(mdl as usize).report();
                return;
            }
        };
        if in_ndis > 0 {
            Violation::new(
                Rule::NblOwnership,
                CALL,
                format!("freed an MDL that is in {in_ndis} NBL(s) NDIS still owns (sent, not yet completed)"),
            )
            .with_object(mdl as usize)
            .report();
            // Kept: the miniport still reads it.
            return;
        }
        if k.io.umem.lock_kind(mdl as usize).is_some() {
            Violation::new(
                Rule::PagesLockedAtClose,
                CALL,
                "freed an MDL whose pages are still locked (MmUnlockPages first): they stay locked for good",
            )
            .with_object(mdl as usize)
            .report();
            k.io.umem.unlock(mdl as usize, CALL);
        }
        // A partial MDL's own mapping is released here, as IoFreeMdl does.
        k.io.umem.remove_mdl(mdl as usize);
        // SAFETY: the driver's MDL from IoAllocateMdl, no longer tracked.
        unsafe { nbl::free_mdl(mdl) };
    })
}

/// The driver frees a pool block `base..base + len`: MDLs it built there
/// that NDIS still has in sent NBLs, or that keep a system mapping of
/// their own, break the rules as `IoFreeMdl` of them would. True when the
/// block must stay (NDIS still reads an MDL in it): it is then kept, and
/// reported at unload as the driver's leak.
pub(crate) fn pool_mdls_freed(k: &kernel::Kernel, base: usize, len: usize) -> bool {
    const CALL: &str = "ExFreePoolWithTag";
    let mut keep = false;
    for (m, in_ndis, mapped) in k.io.umem.pool_freed(base, len) {
        if in_ndis > 0 {
            keep = true;
            Violation::new(
                Rule::NblOwnership,
                CALL,
                format!("freed the pool holding an MDL that is in {in_ndis} NBL(s) NDIS still owns (sent, not yet completed)"),
            )
            .with_object(m)
            .report();
        }
        if mapped {
            Violation::new(
                Rule::MdlLeak,
                CALL,
                "freed the pool holding a partial MDL with a system mapping of its own (MDL_PARTIAL_HAS_BEEN_MAPPED): MmPrepareMdlForReuse first, or the mapping leaks",
            )
            .with_object(m)
            .report();
        }
    }
    keep
}
