//! What a pool block still held when the driver freed it.
//!
//! `ExFreePoolWithTag` of a block in which something is still in use is a
//! use after free waiting to happen, on a path that may run rarely: the
//! holder of a spin lock releases it into freed memory, NDIS completes an
//! OID request there, or calls a binding's handlers (or a queued work
//! item's routine) with a context that points there. Driver Verifier's
//! special pool catches the later access, when it comes and if the memory
//! was not reused; ndisim catches the free, every time, and keeps the
//! block so that the later access stays harmless here (it is reported as
//! `freed-in-use`, and the kept block as a leak).

use crate::kernel::Kernel;
use crate::verifier::{Rule, Violation, lock};

/// Checks `base..base + len`, a live block the driver is freeing; true
/// when something in it is in use (reported; the block must be kept).
/// Otherwise the spin locks in it are forgotten with it.
pub(crate) fn in_use(k: &Kernel, base: usize, len: usize) -> bool {
    const CALL: &str = "ExFreePoolWithTag";
    let (lo, hi) = (base, base + len.max(1));
    let mut keep = false;
    let mut report = |what: String, object: usize, binding: Option<String>| {
        keep = true;
        Violation::new(Rule::FreedInUse, CALL, format!("freed the {len}-byte pool block at {base:#x} holding {what}"))
            .with_object(object)
            .with_binding(binding)
            .report();
    };
    let locks: Vec<usize> = lock(&k.ndis.spin_locks).range(lo..hi).copied().collect();
    for &l in &locks {
        // SAFETY: a spin lock inside the block, which is still allocated.
        if unsafe { crate::sync::spin_is_held(l as *mut usize) } {
            report(format!("a spin lock (at offset {}) that is held", l - base), l, None);
        }
    }
    for r in k.ndis.oids_in(lo, hi) {
        report(
            format!(
                "an NDIS_OID_REQUEST (at offset {}) that NDIS owns: it is pending, and NDIS writes its result and passes it to ProtocolOidRequestComplete",
                r - base
            ),
            r,
            None,
        );
    }
    for (buf, oid) in k.ndis.oid_buffers_in(lo, hi) {
        report(
            format!(
                "the InformationBuffer of a pending request for OID {oid:#x} (at offset {}): the miniport reads or writes it until the request completes",
                buf.wrapping_sub(base) as isize
            ),
            buf,
            None,
        );
    }
    for (name, ctx) in k.ndis.contexts_in(lo, hi) {
        report(
            format!(
                "the ProtocolBindingContext (at offset {}) of a binding NDIS may still call: its close has not completed",
                ctx - base
            ),
            ctx,
            Some(name),
        );
    }
    for c in crate::io::queued_contexts_in(k, lo, hi) {
        report(
            format!("the context (at offset {}) of a queued work item, which its routine will be given", c - base),
            c,
            None,
        );
    }
    if let Some(p) = k.ndis.protocol().filter(|p| (lo..hi).contains(&p.ctx)) {
        report(
            format!(
                "the ProtocolDriverContext (at offset {}) of the registered protocol: NDIS passes it until NdisDeregisterProtocolDriver",
                p.ctx - base
            ),
            p.ctx,
            None,
        );
    }
    if !keep {
        let mut g = lock(&k.ndis.spin_locks);
        for l in locks {
            g.remove(&l);
        }
    }
    keep
}
