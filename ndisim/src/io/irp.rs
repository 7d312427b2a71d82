//! IRPs: building one with its stack location and buffers (buffered,
//! direct or neither), calling the driver's dispatch routine, checking what
//! it returned against how it completed the IRP, `IofCompleteRequest`, and
//! freeing the IRP once both are done.

use super::file::{Request, maybe_close};
use super::revoke::{self, Buf, Pages};
use super::{
    FILE_OPEN, IRP_BUFFERED_IO, IRP_INPUT_OPERATION, Identity, IoResult, IrpBlock, IrpRec, Method, SL_PENDING_RETURNED,
    Waiter,
};
use crate::kernel::{self, DISPATCH_LEVEL, Kernel, PASSIVE_LEVEL, call_driver};
use crate::nbl;
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;
use std::sync::Arc;

thread_local! {
    /// The next request this thread sends is cancelled before the driver's
    /// dispatch routine runs (`cancel_at_dispatch`).
    static CANCEL_AT_DISPATCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `send`, the next request of which (from this thread) is cancelled
/// after the I/O manager listed its IRP on the thread and before it calls
/// the driver: `CancelIoEx` from another thread at that moment, when
/// `IoCancelIrp` sets `Irp->Cancel`, finds no cancel routine and returns.
/// The driver sees the flag only if it looks once it set its routine (a
/// driver that queues the IRP without looking leaves it pending: nothing
/// will call the routine).
pub(crate) fn cancel_at_dispatch<R>(send: impl FnOnce() -> R) -> R {
    CANCEL_AT_DISPATCH.set(true);
    let r = send();
    CANCEL_AT_DISPATCH.set(false);
    r
}

pub(super) fn major_name(m: u8) -> &'static str {
    match m {
        IRP_MJ_CREATE => "IRP_MJ_CREATE",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE",
        IRP_MJ_READ => "IRP_MJ_READ",
        IRP_MJ_WRITE => "IRP_MJ_WRITE",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL",
        IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP",
        _ => "IRP_MJ_?",
    }
}

/// Builds an IRP for `major` and calls the driver's dispatch routine.
pub(super) fn send(
    k: &Kernel,
    file: usize,
    major: u8,
    req: Option<Request<'_>>,
    desired: u32,
    who: Identity,
    waiter: Arc<Waiter>,
) -> usize {
    let dev = lock(&k.io.st).files.get(&file).map(|f| f.dev).unwrap_or(0);
    let devp = dev as *mut DEVICE_OBJECT;
    let special = k.pool.is_special();
    let (block, block_pages) = take_block(k, special);
    // SAFETY: a live device object.
    let do_flags = unsafe { (*devp).Flags };
    let mut rec = IrpRec {
        block,
        file,
        major,
        code: 0,
        completed: false,
        dispatch_status: None,
        completion: None,
        pins: 0,
        cancel_running: false,
        waiter,
        out_len: 0,
        in_len: 0,
        method: Method::Buffered,
        system_buffer: Buf::default(),
        user_out: Buf::default(),
        user_in: Buf::default(),
        block_pages,
        marked_at_completion: false,
        mdl: std::ptr::null_mut(),
        region: None,
        invariant: None,
    };
    // SAFETY: fresh IRP memory.
    unsafe {
        let b = &mut *block;
        let irp = &mut b.irp;
        irp.Type = 6;
        irp.Size = (std::mem::size_of::<IRP>() + std::mem::size_of::<IO_STACK_LOCATION>()) as u16;
        irp.StackCount = 1;
        irp.CurrentLocation = 1;
        irp.RequestorMode = UserMode;
        irp.IoStatus.anon.Status = STATUS_NOT_SUPPORTED;
        irp.Tail.Overlay.anon2.CurrentStackLocation = &mut b.stack;
        irp.Tail.Overlay.OriginalFileObject = file as *mut FILE_OBJECT;
        irp.Tail.Overlay.Thread = 0xFFFF_D000_0000_1000usize as PVOID;
        let s = &mut b.stack;
        s.MajorFunction = major;
        s.DeviceObject = devp;
        s.FileObject = file as *mut FILE_OBJECT;
        match req {
            None if major == IRP_MJ_CREATE => {
                b.sec.DesiredAccess = desired;
                b.sec.FullCreateOptions = FILE_OPEN << 24;
                // The opener's token, in the access state (no impersonation).
                b.access.OriginalDesiredAccess = desired;
                b.access.RemainingDesiredAccess = desired;
                b.access.SubjectSecurityContext.PrimaryToken = who.token();
                b.sec.AccessState = &mut b.access;
                s.Parameters.Create.SecurityContext = &mut b.sec;
                s.Parameters.Create.Options = FILE_OPEN << 24;
                s.Parameters.Create.ShareAccess = 3;
            }
            None => {}
            Some(Request::Read(len)) => {
                rec.out_len = len;
                s.Parameters.Read.Length = len as u32;
                if do_flags & DO_DIRECT_IO != 0 {
                    rec.method = Method::Direct;
                    rec.user_out = Buf::new(special, &[], len, 0);
                    if len > 0 {
                        rec.mdl = nbl::alloc_mdl(rec.user_out.as_ptr() as usize, len, false);
                        irp.MdlAddress = rec.mdl;
                    }
                } else if do_flags & DO_BUFFERED_IO != 0 {
                    rec.system_buffer = Buf::new(special, &[], len, 0);
                    irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                    irp.Flags = IRP_BUFFERED_IO | IRP_INPUT_OPERATION;
                } else {
                    rec.method = Method::Neither;
                    rec.user_out = Buf::new(special, &[], len, 0);
                    irp.UserBuffer = rec.user_out.as_mut_ptr().cast();
                }
            }
            Some(Request::Write(data)) => {
                s.Parameters.Write.Length = data.len() as u32;
                if do_flags & DO_DIRECT_IO != 0 {
                    rec.method = Method::Direct;
                    rec.user_in = Buf::new(special, data, 0, 0);
                    rec.invariant = Some(data.to_vec());
                    if !data.is_empty() {
                        rec.mdl = nbl::alloc_mdl(rec.user_in.as_ptr() as usize, data.len(), false);
                        irp.MdlAddress = rec.mdl;
                    }
                } else if do_flags & DO_BUFFERED_IO != 0 {
                    rec.system_buffer = Buf::new(special, data, 0, 0);
                    irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                    irp.Flags = IRP_BUFFERED_IO;
                } else {
                    rec.method = Method::Neither;
                    rec.user_in = Buf::new(special, data, 0, 0);
                    irp.UserBuffer = rec.user_in.as_mut_ptr().cast();
                }
            }
            Some(Request::Ioctl { code, input, out_len }) => {
                rec.out_len = out_len;
                rec.code = code;
                let p = &mut s.Parameters.DeviceIoControl;
                p.IoControlCode = code;
                p.InputBufferLength = input.len() as u32;
                p.OutputBufferLength = out_len as u32;
                match code & 3 {
                    METHOD_BUFFERED => {
                        // The input, then poison up to the output length
                        // (one pass over the buffer): output the driver
                        // returns without writing it shows up as poison.
                        rec.system_buffer = Buf::new(special, input, out_len, poison(k));
                        rec.in_len = input.len();
                        if input.len().max(out_len) > 0 {
                            irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                        }
                        irp.Flags = IRP_BUFFERED_IO | if out_len > 0 { IRP_INPUT_OPERATION } else { 0 };
                    }
                    METHOD_IN_DIRECT | METHOD_OUT_DIRECT => {
                        rec.method = Method::Direct;
                        rec.system_buffer = Buf::new(special, input, 0, 0);
                        if !input.is_empty() {
                            irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                        }
                        rec.user_out = Buf::new(special, &[], out_len, 0);
                        if out_len > 0 {
                            rec.mdl = nbl::alloc_mdl(rec.user_out.as_ptr() as usize, out_len, false);
                            irp.MdlAddress = rec.mdl;
                        }
                    }
                    _ => {
                        rec.method = Method::Neither;
                        rec.user_in = Buf::new(special, input, 0, 0);
                        rec.user_out = Buf::new(special, &[], out_len, 0);
                        p.Type3InputBuffer =
                            if input.is_empty() { std::ptr::null_mut() } else { rec.user_in.as_mut_ptr().cast() };
                        irp.UserBuffer =
                            if out_len == 0 { std::ptr::null_mut() } else { rec.user_out.as_mut_ptr().cast() };
                    }
                }
            }
            Some(Request::IoctlRegion { code, input, region, skip }) => {
                // The I/O manager probed and locked the caller's pages:
                // the MDL describes them at their user address, locked,
                // and not mapped (`file::request` checked the method and
                // that `skip` leaves bytes of the region).
                let len = region.len() - skip;
                rec.out_len = len;
                rec.code = code;
                rec.method = Method::Direct;
                let p = &mut s.Parameters.DeviceIoControl;
                p.IoControlCode = code;
                p.InputBufferLength = input.len() as u32;
                p.OutputBufferLength = len as u32;
                rec.system_buffer = Buf::new(special, input, 0, 0);
                if !input.is_empty() {
                    irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                }
                rec.mdl = nbl::alloc_mdl(region.as_ptr() as usize + skip, len, false);
                irp.MdlAddress = rec.mdl;
                k.io.umem.lock_irp(&region, rec.mdl as usize, block as usize, file);
                rec.region = Some(region);
            }
        }
    }
    let irp = block as usize;
    {
        let mut st = lock(&k.io.st);
        st.done_irps.remove(&irp);
        let mut late = false;
        if let Some(f) = st.files.get_mut(&file) {
            f.irps.push(irp);
            late = f.cleaned && !matches!(major, IRP_MJ_CLEANUP | IRP_MJ_CLOSE);
        }
        st.late_requests += u64::from(late);
        if !matches!(major, IRP_MJ_CREATE | IRP_MJ_CLEANUP | IRP_MJ_CLOSE) && CANCEL_AT_DISPATCH.take() {
            rec.waiter.mark_cancelled();
            st.cancels_in_dispatch += 1;
            // SAFETY: the IRP is not the driver's yet; IoCancelIrp sets
            // the flag and takes the (still null) routine.
            unsafe { (*block).irp.Cancel = 1 };
        }
        st.irps.insert(irp, rec);
    }
    let drv = *lock(&k.io.driver) as *mut DRIVER_OBJECT;
    // SAFETY: the driver object is ours; its table has a routine per major.
    let dispatch = unsafe { (*drv).MajorFunction[major as usize] };
    let name = major_name(major);
    let status = match dispatch {
        Some(f) => call_driver(name, PASSIVE_LEVEL, || {
            // SAFETY: the driver's dispatch routine with its device and a
            // live IRP whose current stack location is set.
            unsafe { f(devp, block.cast()) }
        }),
        None => {
            Violation::new(Rule::InvalidParameter, name, "MajorFunction entry is NULL").with_object(irp).report();
            STATUS_INVALID_DEVICE_REQUEST
        }
    };
    dispatch_returned(k, irp, status, name);
    irp
}

fn dispatch_returned(k: &Kernel, irp: usize, status: NTSTATUS, name: &str) {
    let mut st = lock(&k.io.st);
    let Some(rec) = st.irps.get_mut(&irp) else { return };
    rec.dispatch_status = Some(status);
    let marked = if rec.completed {
        rec.marked_at_completion
    } else {
        // SAFETY: the IRP memory lives as long as its record until it
        // completes.
        unsafe { (*rec.block).stack.Control & SL_PENDING_RETURNED != 0 }
    };
    let mut problems = Vec::new();
    if status == STATUS_PENDING && !marked {
        problems.push("returned STATUS_PENDING without IoMarkIrpPending".to_string());
    }
    if status != STATUS_PENDING && marked {
        problems.push(format!("called IoMarkIrpPending but returned {status:#010x}, not STATUS_PENDING"));
    }
    if status != STATUS_PENDING {
        match rec.completion {
            None => problems.push(format!(
                "returned {status:#010x} without completing the IRP (return STATUS_PENDING for an IRP completed later)"
            )),
            Some((s, _)) if s != status => {
                problems.push(format!("returned {status:#010x} but completed the IRP with {s:#010x}"))
            }
            _ => {}
        }
    }
    let done = rec.completed;
    drop(st);
    for p in problems {
        Violation::new(Rule::IrpPendingMismatch, name, p).with_object(irp).report();
    }
    if done {
        retire(k, irp);
    }
}

/// Frees an IRP whose completion and dispatch are both done and that no
/// cancel holds.
pub(super) fn retire(k: &Kernel, irp: usize) {
    let mut st = lock(&k.io.st);
    let Some(rec) = st.irps.get(&irp) else { return };
    if !(rec.completed && rec.dispatch_status.is_some()) || rec.pins > 0 {
        return;
    }
    let file = rec.file;
    let mut rec = st.irps.remove(&irp).expect("present");
    st.done_irps.insert(irp);
    if let Some(f) = st.files.get_mut(&file) {
        f.irps.retain(|&i| i != irp);
    }
    // Its block is kept for the next request (`LOOKASIDE`).
    if st.irp_lookaside.len() < LOOKASIDE && rec.block_pages.is_none() && !rec.block.is_null() {
        st.irp_lookaside.push(rec.block as usize);
        rec.block = std::ptr::null_mut();
    }
    drop(st);
    free_irp(k, rec);
    maybe_close(k, file);
}

/// IRPs the I/O manager keeps for reuse, as Windows' IRP lookaside lists
/// do: the next request gets the memory of the IRP that completed last,
/// so a driver that names IRPs by address (a stale cancel reaching the
/// next request, say) is caught here rather than never. Under special
/// pool IRPs are freed instead, as Driver Verifier's I/O verification
/// takes them from special pool: a use after completion then touches freed
/// memory (which AddressSanitizer builds of ndisim report).
const LOOKASIDE: usize = 8;

/// A zeroed IRP block: under special pool on pages of its own (revoked at
/// completion), else the last one freed, or a new one.
fn take_block(k: &Kernel, special: bool) -> (*mut IrpBlock, Option<Pages>) {
    if special {
        let (pages, b) = revoke::irp_pages::<IrpBlock>();
        return (b, Some(pages));
    }
    let reused = lock(&k.io.st).irp_lookaside.pop();
    match reused {
        Some(b) => {
            let b = b as *mut IrpBlock;
            // SAFETY: a block of ours no IRP uses (it was retired); IRP
            // blocks are plain data.
            unsafe { b.write(std::mem::zeroed()) };
            (b, None)
        }
        // SAFETY: IRP blocks are plain data.
        None => (Box::into_raw(Box::new(unsafe { std::mem::zeroed::<IrpBlock>() })), None),
    }
}

/// Frees an IRP's MDL, and its block unless `retire` kept it. A region's
/// pages are unlocked first, which revokes their system mappings.
pub(super) fn free_irp(k: &Kernel, mut rec: IrpRec) {
    if rec.region.is_some() {
        k.io.umem.unlock(rec.mdl as usize, "IofCompleteRequest");
    }
    let irp = rec.block as usize;
    revoke_memory(k, &mut rec, irp);
    // SAFETY: the IRP and MDL were allocated in `send` and are done.
    unsafe {
        if !rec.mdl.is_null() {
            nbl::free_mdl(rec.mdl);
        }
        if !rec.block.is_null() {
            drop(Box::from_raw(rec.block));
        }
    }
}

/// Takes back an IRP's pages and its buffers' (special pool; a no-op for
/// heap memory): a touch after this faults. The block is left null.
fn revoke_memory(k: &Kernel, rec: &mut IrpRec, irp: usize) {
    let major = major_name(rec.major);
    k.io.revoked.revoke_buf(&mut rec.system_buffer, "the system buffer", major, irp);
    k.io.revoked.revoke_buf(&mut rec.user_out, "the output buffer (its direct-I/O mapping or user buffer)", major, irp);
    k.io.revoked.revoke_buf(&mut rec.user_in, "the input buffer (its direct-I/O mapping or user buffer)", major, irp);
    if let Some(p) = rec.block_pages.take() {
        k.io.revoked.revoke(p, "the IRP itself", major, irp);
        rec.block = std::ptr::null_mut();
    }
}

pub(crate) unsafe extern "win64" fn IofCompleteRequest(irp: *mut IRP, _boost: CCHAR) {
    const CALL: &str = "IofCompleteRequest";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let p = irp as usize;
        // Spin locks (the NDIS ones and the cancel spin lock): SDV's
        // SpinLockSafe; and NDIS RW locks, read or written, which also
        // hold the processor at DISPATCH_LEVEL (a send completion NDIS
        // makes inside a sender's NdisSendNetBufferLists runs under the
        // sender's hold).
        let held = kernel::held_locks();
        if !held.is_empty() {
            let locks: Vec<String> = held.iter().map(|h| format!("{:?} lock {:#x}", h.kind, h.addr)).collect();
            // Windows lets it pass; SDV's SpinLockSafe does not, and an
            // upper driver's completion routine taking a lock of its own
            // could deadlock or bug check there.
            let what = lock(&k.io.st).irps.get(&p).map_or("an IRP", |r| major_name(r.major));
            Violation::new(
                Rule::IrpCompleteUnderLock,
                CALL,
                format!("completed {what} while holding {}", locks.join(", ")),
            )
            .with_object(p)
            .report();
        }
        let mut st = lock(&k.io.st);
        let Some(rec) = st.irps.get_mut(&p) else {
            let twice = st.done_irps.contains(&p);
            drop(st);
            if twice {
                Violation::new(Rule::IrpDoubleComplete, CALL, "completed an IRP that was already completed")
                    .with_object(p)
                    .report();
            } else {
                Violation::new(Rule::InvalidParameter, CALL, "not an IRP the I/O manager sent").with_object(p).report();
            }
            return;
        };
        if rec.completed {
            drop(st);
            Violation::new(Rule::IrpDoubleComplete, CALL, "completed an IRP that was already completed")
                .with_object(p)
                .report();
            return;
        }
        // SAFETY: a live IRP of ours.
        let (status, info, cancel_routine, control) = unsafe {
            let i = &*irp;
            (i.IoStatus.anon.Status, i.IoStatus.Information, i.CancelRoutine, (*rec.block).stack.Control)
        };
        // SAFETY: as above: PendingReturned mirrors the stack's flag.
        unsafe { (*irp).PendingReturned = control & SL_PENDING_RETURNED };
        let mut problems = Vec::new();
        if rec.cancel_running && !super::cancel::cancelling_here(p) {
            // Windows' IoCancelIrp holds no reference across the routine:
            // completed now, the IRP is freed or reused under a routine
            // that still reads it (its stack location, its file object).
            problems.push((
                Rule::IrpCompleteInCancel,
                "completed on another thread while its cancel routine runs and still holds the cancel spin lock \
                 (IoSetCancelRoutine returned NULL: wait for the cancel spin lock, or leave the IRP to the routine)"
                    .to_string(),
            ));
        }
        if cancel_routine.is_some() {
            problems.push((
                Rule::IrpCancelRoutineSet,
                "completed with its cancel routine still set (clear it with IoSetCancelRoutine(Irp, NULL) first)"
                    .to_string(),
            ));
        }
        if status == STATUS_PENDING {
            problems.push((Rule::IrpPendingMismatch, "completed with status STATUS_PENDING".to_string()));
        } else if status as u32 == 0xFFFF_FFFF {
            // Bug check 0xC9, parameter 6: "status marked as pending (or
            // equal to -1)".
            problems.push((Rule::IrpPendingMismatch, "completed with status -1 (0xFFFFFFFF)".to_string()));
        }
        if let Some(at) = rec.invariant.as_deref().and_then(|d| changed_at(d, &rec.user_in)) {
            problems.push((
                Rule::IrpWriteModified,
                format!(
                    "completed a direct-I/O write whose buffer the driver changed (from byte {at} on): a write's data is read-only to the driver (Driver Verifier's invariant MDL checking: bug check 0xC4, 0x1010)"
                ),
            ));
        }
        let is_error = (status as u32) >> 30 == 3;
        let out_cap = match (rec.major, rec.method) {
            (IRP_MJ_READ, _) | (IRP_MJ_DEVICE_CONTROL, _) => Some(rec.out_len),
            _ => None,
        };
        let mut n = info;
        if let Some(cap) = out_cap {
            if info > cap && !is_error {
                problems.push((
                    Rule::IrpInformationOverflow,
                    format!("Information {info} is larger than the output buffer's {cap} bytes"),
                ));
                n = cap;
            }
        }
        if rec.method == Method::Buffered && rec.major == IRP_MJ_DEVICE_CONTROL && !is_error {
            if let Some(at) = stale_run(&rec.system_buffer, rec.in_len, n, poison(k)) {
                problems.push((
                    Rule::IrpStaleOutput,
                    format!("returned {n} bytes, but bytes from {at} on were never written (they still hold ndisim's poison): the caller would get stale kernel memory"),
                ));
            }
        }
        let data = if is_error || out_cap.is_none() {
            Vec::new()
        } else {
            match rec.method {
                // The caller gets the buffer itself, cut to what was
                // written: nothing is copied outside special pool (the
                // driver may not touch it once the IRP is completed; the
                // memory stays valid if it does, but under special pool
                // it is revoked, below).
                Method::Buffered => rec.system_buffer.take_prefix(n),
                // (A region's IRP has no copy: its memory is live, and
                // `user_out` is empty.)
                _ => rec.user_out.take_prefix(n),
            }
        };
        let (major, code, file) = (rec.major, rec.code, rec.file);
        rec.completed = true;
        rec.marked_at_completion = control & SL_PENDING_RETURNED != 0;
        // Nobody holds the IRP (an IoCancelIrp under way keeps it until it
        // lets go, and `retire` revokes it then): its memory goes now.
        if rec.pins == 0 {
            revoke_memory(k, rec, p);
        }
        rec.completion = Some((status, info));
        let waiter = rec.waiter.clone();
        if st.outputs.is_some() {
            let seq = st.files.get(&file).map_or(0, |f| f.seq);
            if let Some(o) = st.outputs.as_mut() {
                o.push(seq, major, code, status, info, &data);
            }
        }
        drop(st);
        for (rule, d) in problems {
            Violation::new(rule, CALL, d).with_object(p).report();
        }
        waiter.complete(IoResult { status, information: info, data });
        retire(k, p);
    })
}

/// The first offset at which `now` differs from `was` (its first
/// `was.len()` bytes).
fn changed_at(was: &[u8], now: &[u8]) -> Option<usize> {
    was.iter().zip(now).position(|(a, b)| a != b)
}

/// What ndisim fills the output part of a system buffer with.
const POISON: u8 = 0xD5;

/// This simulation's poison (`POISON`, or another byte under
/// `SimBuilder::garbage`).
fn poison(k: &Kernel) -> u8 {
    POISON ^ k.config.garbage
}
/// Poison bytes in a row that count as never written.
const STALE_RUN: usize = 16;

/// The offset of a run of `STALE_RUN` bytes `poison` in `buf[from..n]`.
fn stale_run(buf: &[u8], from: usize, n: usize, poison: u8) -> Option<usize> {
    let end = n.min(buf.len());
    if from >= end {
        return None;
    }
    let mut run = 0;
    for (i, &b) in buf[from..end].iter().enumerate() {
        run = if b == poison { run + 1 } else { 0 };
        if run == STALE_RUN {
            return Some(from + i + 1 - STALE_RUN);
        }
    }
    None
}
