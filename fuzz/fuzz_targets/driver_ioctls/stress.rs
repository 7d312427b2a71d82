//! The step kinds that put the driver under the pressure a single
//! thread's program cannot: requests from several threads at once (on one
//! handle or several, racing a close or a `CancelIoEx` of their handle),
//! requests that reach the driver through a reference to a file whose
//! handle is closed (after its IRP_MJ_CLEANUP), and pool, NBL and
//! system-mapping allocations refused from some point on.
//!
//! They are judged as every other answer is (`answered`): none of them
//! makes a status wrong but STATUS_CANCELLED of a request nothing could
//! have cancelled, and STATUS_PENDING; INSUFFICIENT_RESOURCES, and the
//! INVALID_HANDLE the I/O manager gives a request sent after the close,
//! are answers like others. What they must not do is what the end of the
//! run checks: every request completes, and the unload is clean (no leak
//! of what a failed allocation's path took, no request left pending after
//! the cleanup).

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the current run had a shortage aimed at it: answers then
/// count apart (an INSUFFICIENT_RESOURCES under a shortage is a failure
/// path reached, not the same outcome as one without).
pub(super) static SHORT: AtomicBool = AtomicBool::new(false);

/// One thread's part in a race.
enum Act {
    Ioctl {
        slot: usize,
        code: u32,
        input: Vec<u8>,
        out: usize,
    },
    Read {
        slot: usize,
        len: usize,
    },
    Write {
        slot: usize,
        frame: Vec<u8>,
    },
    CancelIo {
        slot: usize,
    },
    /// CloseHandle by one thread while others use the handle
    /// (`Handle::close_shared`; `cancel`: as a dying process).
    Close {
        slot: usize,
        cancel: bool,
    },
}

impl Act {
    fn slot(&self) -> usize {
        match *self {
            Act::Ioctl { slot, .. }
            | Act::Read { slot, .. }
            | Act::Write { slot, .. }
            | Act::CancelIo { slot }
            | Act::Close { slot, .. } => slot,
        }
    }

    fn describe(&self) -> String {
        match self {
            Act::Ioctl { slot, code, input, out } => {
                format!("ioctl slot {slot} {code:#x} in {} out {out}", input.len())
            }
            Act::Read { slot, len } => format!("read slot {slot} {len}"),
            Act::Write { slot, frame } => format!("write slot {slot} {} bytes", frame.len()),
            Act::CancelIo { slot } => format!("cancel_io slot {slot}"),
            Act::Close { slot, cancel } => format!("close_shared slot {slot} cancel {cancel}"),
        }
    }
}

/// A request of the program's kinds, drawn as the single-thread steps
/// draw theirs (without the odd output lengths: the race is the point).
fn request_act(r: &Run<'_>, u: &mut Unstructured<'_>, slot: usize) -> libfuzzer_sys::arbitrary::Result<Act> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => {
            let code = code_of(u)?;
            let (mut input, right) = request(u, code, &r.names)?;
            damage(u, &mut input)?;
            let out = if u.ratio(1, 4)? { right.saturating_sub(1) } else { right };
            Act::Ioctl { slot, code, input, out }
        }
        2 => Act::Read { slot, len: *u.choose(&[20usize, 1514, 65536])? },
        _ => {
            let mut frame = frame(u)?;
            damage(u, &mut frame)?;
            Act::Write { slot, frame }
        }
    })
}

/// Sends the request `a` through `fr` (`None` for an action that is not
/// a request).
fn send(fr: &FileRef, a: &Act) -> Option<(Result<IoToken, i32>, Kind)> {
    Some(match a {
        Act::Ioctl { code, input, out, .. } => (fr.ioctl_async(*code, input, *out), Kind::Ioctl(*code)),
        Act::Read { len, .. } => (fr.read_async(*len), Kind::Read),
        Act::Write { frame, .. } => (fr.write_async(frame), Kind::Write),
        Act::CancelIo { .. } | Act::Close { .. } => return None,
    })
}

impl Run<'_> {
    /// Two or three of the program's actions at once, each on a thread
    /// of its own: requests on one handle or on several, a close or a
    /// `CancelIoEx` of a handle another thread is sending on.
    pub(super) fn race(&mut self, u: &mut Unstructured<'_>) -> Res {
        let n = u.int_in_range(2..=3)?;
        let mut acts = Vec::with_capacity(n);
        for _ in 0..n {
            // Slots low: two of three actors on one handle more often than not.
            let slot = usize::from(u.int_in_range(0..=3u8)?) % SLOTS;
            acts.push(match u.int_in_range(0..=5)? {
                0..=3 => request_act(self, u, slot)?,
                4 => Act::CancelIo { slot },
                _ => Act::Close { slot, cancel: u.ratio(1, 3)? },
            });
        }
        let what: Vec<String> = acts.iter().map(Act::describe).collect();
        self.note(format!("race [{}]", what.join(" | ")));
        // Each actor finds its handle open (a create is not what races).
        for a in &acts {
            let _ = self.handle(a.slot());
        }
        let sent: Mutex<Vec<(Result<IoToken, i32>, Kind)>> = Mutex::new(Vec::new());
        {
            let slots = &self.slots;
            let sent = &sent;
            let actors: Vec<Box<dyn FnOnce() + Send + '_>> = acts
                .iter()
                .map(|a| {
                    Box::new(move || {
                        let Some(h) = slots[a.slot()].as_ref() else { return };
                        let t = match a {
                            Act::Ioctl { code, input, out, .. } => {
                                (h.ioctl_async(*code, input, *out), Kind::Ioctl(*code))
                            }
                            Act::Read { len, .. } => (h.read_async(*len), Kind::Read),
                            Act::Write { frame, .. } => (h.write_async(frame), Kind::Write),
                            Act::CancelIo { .. } => {
                                h.cancel_io();
                                return;
                            }
                            Act::Close { cancel, .. } => {
                                h.close_shared(*cancel);
                                return;
                            }
                        };
                        sent.lock().unwrap_or_else(|e| e.into_inner()).push(t);
                    }) as Box<dyn FnOnce() + Send + '_>
                })
                .collect();
            self.s.run_actors(actors);
        }
        // A handle closed in the race is gone for the program too.
        for a in &acts {
            if let Act::Close { slot, .. } = *a {
                self.slots[slot] = None;
                self.rings[slot] = None;
            }
        }
        for (t, kind) in sent.into_inner().unwrap_or_else(|e| e.into_inner()) {
            self.submitted(t, kind);
        }
        self.reap();
        Ok(())
    }

    /// The handle of `slot` closed while another thread holds a reference
    /// to its file object (its request past the I/O manager's handle
    /// check), and one to three requests sent through that reference: they
    /// reach the driver after the file's IRP_MJ_CLEANUP, which must end
    /// (or refuse) them itself, as nothing will cancel them any more. The
    /// reference is kept until the end of the run (IRP_MJ_CLOSE waits for
    /// it), so a request the driver leaves pending is found by `finish`.
    ///
    /// Or (one time in six) the handle stays open and the first request is
    /// cancelled between the I/O manager and the dispatch routine
    /// (`cancelled_at_dispatch`): `CancelIoEx` from another thread at that
    /// moment.
    pub(super) fn late(&mut self, u: &mut Unstructured<'_>, slot: usize) -> Res {
        let mode = u.int_in_range(0..=5u8)?;
        let n = u.int_in_range(1..=3)?;
        let mut acts = Vec::with_capacity(n);
        for _ in 0..n {
            acts.push(request_act(self, u, slot)?);
        }
        let what: Vec<String> = acts.iter().map(Act::describe).collect();
        if mode == 5 {
            self.note(format!("cancelled at dispatch slot {slot} [{}]", what.join(" | ")));
            return self.cancelled_at_dispatch(slot, acts);
        }
        let abandon = mode == 4;
        self.note(format!("late slot {slot} abandon {abandon} [{}]", what.join(" | ")));
        let Some(h) = self.slots[slot].take() else { return Ok(()) };
        self.rings[slot] = None;
        let fr = h.reference();
        if abandon {
            h.abandon()
        } else {
            h.close()
        }
        let Some(fr) = fr else { return Ok(()) };
        for a in &acts {
            let Some((t, kind)) = send(&fr, a) else { continue };
            self.submitted(t, kind);
        }
        self.refs.push(fr);
        self.reap();
        Ok(())
    }

    /// The first of `acts` cancelled before its dispatch routine runs; the
    /// others sent after it. Nothing will call a cancel routine the driver
    /// sets for the first: it must see `Irp->Cancel` itself, so the request
    /// completes with no more help (a wait the driver queued regardless
    /// would wait for data, an event or the handle's close). Requests the
    /// adapter completes late complete on their own, so waiting for it
    /// (at most the watchdog's time) judges every kind alike.
    fn cancelled_at_dispatch(&mut self, slot: usize, acts: Vec<Act>) -> Res {
        let Some(fr) = self.handle(slot).and_then(Handle::reference) else { return Ok(()) };
        let mut acts = acts.iter();
        if let Some((t, kind)) = acts.next().and_then(|a| fr.cancelled_at_dispatch(|fr| send(fr, a))) {
            match t {
                Ok(token) => match token.wait() {
                    Some(res) => {
                        let detaches = self.detaches_of(token.file());
                        self.answer(&Pending { token, kind, detaches }, &res)
                    }
                    None => panic!(
                        "{kind:?} cancelled before its dispatch routine ran was left pending (nothing else cancels it)\n{}",
                        self.trail()
                    ),
                },
                Err(status) => self.submitted(Err(status), kind),
            }
        }
        for a in acts {
            let Some((t, kind)) = send(&fr, a) else { continue };
            self.submitted(t, kind);
        }
        self.refs.push(fr);
        self.reap();
        Ok(())
    }

    /// A shortage from now on: after `skip` more of them, the driver's
    /// pool allocations, or NDIS's NBL allocations for it, or system
    /// mappings of MDLs, are refused (`n` of them; many is a shortage that
    /// lasts the rest of the program). `finish` ends what is left of it
    /// before the handles close (closes under a shortage are run by the
    /// close steps themselves).
    pub(super) fn short(&mut self, u: &mut Unstructured<'_>) -> Res {
        let what = u.int_in_range(0..=2)?;
        let skip = *u.choose(&[0u64, 0, 1, 2, 3, 5, 8, 20])?;
        let n = *u.choose(&[1u64, 1, 2, 4, 1 << 20])?;
        self.note(format!("short {} skip {skip} refuse {n}", ["pool", "nbl", "mapping"][what]));
        match what {
            0 => self.s.short_of_pool(skip, n),
            1 => self.s.refuse_nbl_allocations_after(skip, n),
            _ => self.s.refuse_mappings_after(skip, n),
        }
        SHORT.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Ends every shortage (what the run's end closes and unloads is not
    /// under one: the unload's checks stay those of a normal unload).
    pub(super) fn plenty(&self) {
        self.s.short_of_pool(0, 0);
        self.s.refuse_nbl_allocations_after(0, 0);
        self.s.refuse_mappings_after(0, 0);
    }
}
