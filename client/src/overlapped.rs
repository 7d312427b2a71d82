//! The rules of one overlapped Windows request — what the call that issued
//! it means, how it is waited for, cancelled and collected, and when its
//! memory may be freed — written against [`OsRequest`], a small trait of the
//! system calls a request makes once it is issued. `windows.rs` implements
//! the trait with `WaitForSingleObject`, the `OVERLAPPED`'s status block and
//! `CancelIoEx`; the tests here implement it with a scripted fake, so these
//! rules run on every host, not only on Windows.
//!
//! The rule everything else serves: a queued request's `OVERLAPPED` and
//! buffers belong to the driver until its status block stops reading
//! `STATUS_PENDING` (`HasOverlappedIoCompleted`). Nothing here frees them
//! before that. A request that was cancelled (because its timeout passed,
//! or because it was dropped) gets [`CANCEL_GRACE`] to complete, as on the
//! bridge; one that is still pending then — or whose wait failed, so that
//! nobody can tell — is leaked: its memory lives for the rest of the
//! process, because the driver may still write it.
#![cfg_attr(not(windows), allow(dead_code))]

use crate::error::{Error, Result};
use crate::transport::{CANCEL_GRACE, Completion, Request, deadline_after};
use rawnic_proto::NtStatus;
use std::time::{Duration, Instant};

/// `ERROR_IO_INCOMPLETE` (winerror.h): the request is not complete yet.
pub(crate) const ERROR_IO_INCOMPLETE: u32 = 996;
/// `ERROR_IO_PENDING` (winerror.h): the request was queued.
pub(crate) const ERROR_IO_PENDING: u32 = 997;
/// `ERROR_MORE_DATA` (winerror.h): `STATUS_BUFFER_OVERFLOW`, a warning.
pub(crate) const ERROR_MORE_DATA: u32 = 234;
/// `INFINITE` (winbase.h) as a wait in milliseconds.
pub(crate) const INFINITE: u32 = u32::MAX;

/// How often the status block is read when the event cannot be waited
/// for.
const POLL: Duration = Duration::from_millis(5);

/// How a wait for a request's event ended.
#[derive(Debug)]
pub(crate) enum Signal {
    /// The event is set.
    Set,
    /// The time given passed first.
    TimedOut,
    /// The wait itself failed (for example, the event handle is bad).
    Failed(Error),
}

/// The system calls an issued request makes.
pub(crate) trait OsRequest {
    /// Waits up to `ms` milliseconds ([`INFINITE`]: no limit) for the
    /// request's event.
    fn wait_event(&self, ms: u32) -> Signal;
    /// Whether the status block still reads `STATUS_PENDING`: the driver
    /// may still write the request's memory.
    fn status_pending(&self) -> bool;
    /// Asks the system to cancel the request; one that is no longer pending
    /// is not an error.
    fn cancel(&self) -> Result<()>;
    /// The status, `Information` and output of a request that is over.
    fn completion(&mut self) -> Completion;
    /// Gives the request's memory up for good, without freeing it.
    fn leak(self)
    where
        Self: Sized;
}

/// Where a request stands once the call that issued it has returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Queued: the driver owns the request until its status block is
    /// written.
    InFlight,
    /// Completed during the call: the status block holds the result.
    Completed,
    /// Failed during the call with this status; the status block was not
    /// written and nothing was queued.
    Synchronous(NtStatus),
}

/// What the return of `ReadFile`, `WriteFile` or `DeviceIoControl` means:
/// `issued` is `Ok` for TRUE and `Err(GetLastError())` for FALSE;
/// `status_pending` is [`OsRequest::status_pending`] read after the call;
/// `recover` finds the interface NTSTATUS behind a Win32 error. `Err(code)`:
/// the call failed before anything was queued, with an error that maps to
/// no interface status.
pub(crate) fn classify(
    issued: std::result::Result<(), u32>,
    status_pending: bool,
    recover: impl FnOnce(u32) -> Option<NtStatus>,
) -> std::result::Result<Start, u32> {
    match issued {
        // Completed during the call. A status block that still reads
        // pending is not trusted: the request is treated as queued, so its
        // memory is kept until the status block says otherwise.
        Ok(()) if status_pending => Ok(Start::InFlight),
        Ok(()) => Ok(Start::Completed),
        Err(ERROR_IO_PENDING) => Ok(Start::InFlight),
        // A warning (STATUS_BUFFER_OVERFLOW) with the status block and the
        // output written.
        Err(ERROR_MORE_DATA) if !status_pending => Ok(Start::Completed),
        // Failed before it was queued — ERROR_MORE_DATA too when the status
        // block was never written, which would otherwise read as
        // STATUS_PENDING, a success: the status comes from the error.
        Err(code) => recover(code).map(Start::Synchronous).ok_or(code),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Queued and not known to be over.
    InFlight,
    /// Over: the status block holds the result.
    Completed,
    /// Failed during the call with this status.
    Synchronous(NtStatus),
}

/// Why a wait for a request is giving up on it.
enum GiveUp {
    /// Its timeout passed: [`Error::TimedOut`], unless it completes anyway.
    Timeout,
    /// The wait could not be done: this error.
    Failed(Error),
}

/// One issued request and its state.
pub(crate) struct Overlapped<R: OsRequest> {
    /// `None` once the request has been leaked.
    req: Option<R>,
    state: State,
    /// How long a cancelled request gets to complete.
    grace: Duration,
}

impl<R: OsRequest> Overlapped<R> {
    pub(crate) fn new(req: R, start: Start) -> Self {
        let state = match start {
            Start::InFlight => State::InFlight,
            Start::Completed => State::Completed,
            Start::Synchronous(s) => State::Synchronous(s),
        };
        Overlapped { req: Some(req), state, grace: CANCEL_GRACE }
    }

    #[cfg(test)]
    fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn req(&self) -> &R {
        self.req.as_ref().expect("a request that was leaked is never used again")
    }

    /// Waits for the event until `deadline` (`None`: no limit).
    fn wait_until(&self, deadline: Option<Instant>) -> Signal {
        loop {
            let ms = match deadline {
                None => INFINITE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Rounded up, so that a wait never ends early and spins.
                    left.as_nanos().div_ceil(1_000_000).min(u128::from(INFINITE - 1)) as u32
                }
            };
            match self.req().wait_event(ms) {
                Signal::TimedOut if deadline.is_none_or(|d| Instant::now() < d) => continue,
                s => return s,
            }
        }
    }

    /// The request is over if its status block says so.
    fn settled(&mut self) -> bool {
        if self.state == State::InFlight && !self.req().status_pending() {
            self.state = State::Completed;
        }
        self.state != State::InFlight
    }

    /// Cancels the request and waits for it for the grace period; `true`
    /// once it is over, `false` if it was leaked instead.
    fn cancel_and_settle(&mut self) -> Result<bool> {
        let cancelled = self.cancel();
        let deadline = deadline_after(self.grace);
        let _ = self.wait_until(deadline);
        // Whatever ended the wait, only the status block tells whether the
        // driver is done with the memory. If the event could not be waited
        // for, or was set while the status block still read pending, watch
        // the status block for the rest of the grace period.
        while !self.settled() && deadline.is_none_or(|d| Instant::now() < d) {
            std::thread::sleep(POLL);
        }
        if self.settled() {
            return Ok(true);
        }
        if let Some(req) = self.req.take() {
            req.leak();
        }
        cancelled.map(|()| false)
    }

    fn collect(&mut self) -> Completion {
        match self.state {
            State::Synchronous(status) => Completion { status, information: 0, data: Vec::new() },
            _ => self.req.as_mut().expect("only a request that is over is collected").completion(),
        }
    }

    /// Waits for the request's completion. With a timeout, a request still
    /// pending then is cancelled and given the grace period: if it
    /// completes as cancelled the result is [`Error::TimedOut`]; if it
    /// completed anyway, its completion; if it does not complete, it is
    /// leaked and the result is [`Error::TimedOut`].
    pub(crate) fn wait(mut self, request: Request, timeout: Option<Duration>) -> Result<Completion> {
        if self.state == State::InFlight {
            let give_up = match self.wait_until(timeout.and_then(deadline_after)) {
                Signal::Set if self.settled() => None,
                // The event is set but the status block still reads
                // pending: the event cannot be trusted.
                Signal::Set => {
                    Some(GiveUp::Failed(Error::Win32 { call: "HasOverlappedIoCompleted", code: ERROR_IO_INCOMPLETE }))
                }
                Signal::TimedOut => Some(GiveUp::Timeout),
                Signal::Failed(e) => Some(GiveUp::Failed(e)),
            };
            if let Some(why) = give_up {
                let over = self.cancel_and_settle();
                let timed_out = || Error::TimedOut { request, after: timeout.unwrap_or_default() };
                return match over {
                    Ok(true) => {
                        let c = self.collect();
                        match why {
                            // It completed before the cancel reached it:
                            // nothing it received is lost.
                            _ if c.status != NtStatus::CANCELLED => Ok(c),
                            GiveUp::Timeout => Err(timed_out()),
                            GiveUp::Failed(e) => Err(e),
                        }
                    }
                    // Leaked.
                    Ok(false) => match why {
                        GiveUp::Timeout => Err(timed_out()),
                        GiveUp::Failed(e) => Err(e),
                    },
                    Err(cancel) => Err(cancel),
                };
            }
        }
        Ok(self.collect())
    }

    /// Asks the system to cancel the request, if it is still pending.
    pub(crate) fn cancel(&self) -> Result<()> {
        match (&self.req, self.state) {
            (Some(req), State::InFlight) => req.cancel(),
            _ => Ok(()),
        }
    }
}

impl<R: OsRequest> Drop for Overlapped<R> {
    fn drop(&mut self) {
        if self.req.is_some() && !self.settled() {
            // The driver may still write the request's memory: cancel, and
            // wait (bounded) until it lets go; leaked if it does not.
            let _ = self.cancel_and_settle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex, MutexGuard};

    const SUCCESS: NtStatus = NtStatus(0);

    /// What the fake driver does with a cancel.
    #[derive(Clone, Copy)]
    enum OnCancel {
        /// Completes the request with this status at once.
        Complete(NtStatus),
        /// Completes the request with this status a while later.
        CompleteAfter(Duration, NtStatus),
        /// Nothing: the request stays pending.
        Ignore,
    }

    /// The fake request's state, shared with the test that checks it.
    struct Script {
        /// The status block: `None` while it reads STATUS_PENDING.
        status: Option<NtStatus>,
        /// When the driver completes the request by itself.
        completes_at: Option<(Instant, NtStatus)>,
        on_cancel: OnCancel,
        /// The event is set (by a completion, or spuriously).
        event: bool,
        /// Every wait fails, as with a bad event handle.
        wait_fails: bool,
        cancels: u32,
        leaked: bool,
        /// Dropped (its memory freed); `freed_pending` if the status block
        /// still read pending then — the use-after-free the rules prevent.
        freed: bool,
        freed_pending: bool,
    }

    impl Script {
        fn complete(&mut self, status: NtStatus) {
            if self.status.is_none() {
                self.status = Some(status);
                self.event = true;
            }
        }

        /// Applies a completion whose time has come.
        fn tick(&mut self) {
            if let Some((at, status)) = self.completes_at {
                if Instant::now() >= at {
                    self.completes_at = None;
                    self.complete(status);
                }
            }
        }
    }

    #[derive(Clone)]
    struct Fake(Arc<Mutex<Script>>);

    impl Fake {
        fn new(on_cancel: OnCancel) -> Fake {
            Fake(Arc::new(Mutex::new(Script {
                status: None,
                completes_at: None,
                on_cancel,
                event: false,
                wait_fails: false,
                cancels: 0,
                leaked: false,
                freed: false,
                freed_pending: false,
            })))
        }

        fn completing_after(self, after: Duration, status: NtStatus) -> Fake {
            self.s().completes_at = Some((Instant::now().checked_add(after).unwrap(), status));
            self
        }

        fn s(&self) -> MutexGuard<'_, Script> {
            self.0.lock().unwrap()
        }

        /// The request over it, as if the call that issued it returned
        /// `start`.
        fn pending(&self, start: Start) -> Overlapped<Fake> {
            Overlapped::new(self.clone(), start).with_grace(Duration::from_millis(60))
        }

        /// (cancels, leaked, freed, freed while pending)
        fn outcome(&self) -> (u32, bool, bool, bool) {
            let s = self.s();
            (s.cancels, s.leaked, s.freed, s.freed_pending)
        }
    }

    impl OsRequest for Fake {
        fn wait_event(&self, ms: u32) -> Signal {
            let start = Instant::now();
            let limit = (ms != INFINITE).then(|| Duration::from_millis(u64::from(ms)));
            loop {
                {
                    let mut s = self.s();
                    if s.wait_fails {
                        return Signal::Failed(Error::Win32 { call: "WaitForSingleObject", code: 6 });
                    }
                    s.tick();
                    if s.event {
                        return Signal::Set;
                    }
                }
                if limit.is_some_and(|l| start.elapsed() >= l) {
                    return Signal::TimedOut;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        fn status_pending(&self) -> bool {
            let mut s = self.s();
            s.tick();
            s.status.is_none()
        }

        fn cancel(&self) -> Result<()> {
            let mut s = self.s();
            s.cancels += 1;
            match s.on_cancel {
                OnCancel::Complete(status) => s.complete(status),
                OnCancel::CompleteAfter(after, status) => {
                    s.completes_at = Some((Instant::now().checked_add(after).unwrap(), status));
                }
                OnCancel::Ignore => {}
            }
            Ok(())
        }

        fn completion(&mut self) -> Completion {
            let s = self.s();
            let status = s.status.expect("collected only once over");
            Completion { status, information: 3, data: vec![1, 2, 3] }
        }

        fn leak(self) {
            self.s().leaked = true;
            std::mem::forget(self);
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            // Only the request's own value counts (the test keeps a clone).
            if Arc::strong_count(&self.0) == 2 {
                let mut s = self.s();
                s.freed = true;
                s.freed_pending = s.status.is_none();
            }
        }
    }

    fn is_timeout(r: &Result<Completion>, after: Duration) -> bool {
        matches!(r, Err(Error::TimedOut { request: Request::Read, after: a }) if *a == after)
    }

    #[test]
    fn the_issuing_call_is_read_with_the_status_block() {
        let never = |_| None;
        let overflow = |code| (code == ERROR_MORE_DATA).then_some(NtStatus::BUFFER_OVERFLOW);
        assert_eq!(classify(Ok(()), false, never), Ok(Start::Completed));
        // TRUE with a status block that still reads pending is not trusted.
        assert_eq!(classify(Ok(()), true, never), Ok(Start::InFlight));
        assert_eq!(classify(Err(ERROR_IO_PENDING), true, never), Ok(Start::InFlight));
        assert_eq!(classify(Err(ERROR_MORE_DATA), false, never), Ok(Start::Completed));
        // ERROR_MORE_DATA with the status block never written: the status
        // comes from the error, never STATUS_PENDING read as a success.
        assert_eq!(classify(Err(ERROR_MORE_DATA), true, overflow), Ok(Start::Synchronous(NtStatus::BUFFER_OVERFLOW)));
        assert_eq!(classify(Err(ERROR_MORE_DATA), true, never), Err(ERROR_MORE_DATA));
        assert_eq!(
            classify(Err(5), true, |_| Some(NtStatus::ACCESS_DENIED)),
            Ok(Start::Synchronous(NtStatus::ACCESS_DENIED))
        );
        assert_eq!(classify(Err(87), true, never), Err(87));
    }

    #[test]
    fn a_request_that_completes_in_time_is_collected_and_freed() {
        let fake =
            Fake::new(OnCancel::Complete(NtStatus::CANCELLED)).completing_after(Duration::from_millis(20), SUCCESS);
        let c = fake.pending(Start::InFlight).wait(Request::Read, Some(Duration::from_secs(5))).unwrap();
        assert_eq!((c.status, c.data), (SUCCESS, vec![1, 2, 3]));
        assert_eq!(fake.outcome(), (0, false, true, false));
        // Without a timeout, and with one too large for an Instant.
        for timeout in [None, Some(Duration::MAX)] {
            let fake = Fake::new(OnCancel::Ignore).completing_after(Duration::from_millis(10), SUCCESS);
            assert_eq!(fake.pending(Start::InFlight).wait(Request::Read, timeout).unwrap().status, SUCCESS);
            assert_eq!(fake.outcome(), (0, false, true, false));
        }
    }

    #[test]
    fn a_timed_out_request_is_cancelled_and_waited_for() {
        let after = Duration::from_millis(20);
        let fake = Fake::new(OnCancel::Complete(NtStatus::CANCELLED));
        let r = fake.pending(Start::InFlight).wait(Request::Read, Some(after));
        assert!(is_timeout(&r, after), "{r:?}");
        assert_eq!(fake.outcome(), (1, false, true, false));
        // It completed before the cancel reached it: its completion is
        // returned, so nothing it received is lost.
        let fake = Fake::new(OnCancel::Complete(SUCCESS));
        let c = fake.pending(Start::InFlight).wait(Request::Read, Some(after)).unwrap();
        assert_eq!((c.status, c.data.len()), (SUCCESS, 3));
        assert_eq!(fake.outcome(), (1, false, true, false));
    }

    #[test]
    fn a_request_the_driver_never_completes_is_leaked_after_the_grace_period() {
        let after = Duration::from_millis(20);
        let fake = Fake::new(OnCancel::Ignore);
        let start = Instant::now();
        let r = fake.pending(Start::InFlight).wait(Request::Read, Some(after));
        let took = start.elapsed();
        assert!(is_timeout(&r, after), "{r:?}");
        assert_eq!(fake.outcome(), (1, true, false, false));
        // The timeout and the grace period, not forever.
        assert!(took >= Duration::from_millis(80) && took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn a_failed_wait_never_frees_what_the_driver_owns() {
        // The wait fails (a bad event handle): the request is cancelled;
        // if it then completes it is freed, else leaked. Either way the
        // wait's error is the result.
        for (on_cancel, leaked) in [(OnCancel::Complete(NtStatus::CANCELLED), false), (OnCancel::Ignore, true)] {
            for timeout in [None, Some(Duration::from_secs(5))] {
                let fake = Fake::new(on_cancel);
                fake.s().wait_fails = true;
                let r = fake.pending(Start::InFlight).wait(Request::Read, timeout);
                assert!(matches!(r, Err(Error::Win32 { call: "WaitForSingleObject", code: 6 })), "{r:?}");
                assert_eq!(fake.outcome(), (1, leaked, !leaked, false));
            }
        }
    }

    #[test]
    fn after_a_failed_wait_the_status_block_is_watched_for_the_grace_period() {
        // The event cannot be waited for, but the cancelled request
        // completes within the grace period: it is freed, not leaked.
        let fake = Fake::new(OnCancel::CompleteAfter(Duration::from_millis(20), NtStatus::CANCELLED));
        fake.s().wait_fails = true;
        let r = fake.pending(Start::InFlight).wait(Request::Read, Some(Duration::from_secs(5)));
        assert!(matches!(r, Err(Error::Win32 { call: "WaitForSingleObject", .. })), "{r:?}");
        assert_eq!(fake.outcome(), (1, false, true, false));
        // The same when it is dropped.
        let fake = Fake::new(OnCancel::CompleteAfter(Duration::from_millis(20), NtStatus::CANCELLED));
        fake.s().wait_fails = true;
        drop(fake.pending(Start::InFlight));
        assert_eq!(fake.outcome(), (1, false, true, false));
    }

    #[test]
    fn a_cancel_that_completes_late_within_the_grace_period_is_waited_for() {
        let after = Duration::from_millis(10);
        let fake = Fake::new(OnCancel::CompleteAfter(Duration::from_millis(20), NtStatus::CANCELLED));
        let r = fake.pending(Start::InFlight).wait(Request::Read, Some(after));
        assert!(is_timeout(&r, after), "{r:?}");
        assert_eq!(fake.outcome(), (1, false, true, false));
    }

    #[test]
    fn dropping_a_request_that_is_over_frees_it_without_a_cancel() {
        let fake = Fake::new(OnCancel::Ignore).completing_after(Duration::ZERO, SUCCESS);
        drop(fake.pending(Start::InFlight));
        assert_eq!(fake.outcome(), (0, false, true, false));
    }

    #[test]
    fn an_event_set_while_the_status_block_reads_pending_is_not_trusted() {
        let fake = Fake::new(OnCancel::Ignore);
        fake.s().event = true;
        let r = fake.pending(Start::InFlight).wait(Request::Read, None);
        assert!(
            matches!(r, Err(Error::Win32 { call: "HasOverlappedIoCompleted", code: ERROR_IO_INCOMPLETE })),
            "{r:?}"
        );
        assert_eq!(fake.outcome(), (1, true, false, false));
    }

    #[test]
    fn dropping_a_pending_request_cancels_it_and_frees_or_leaks_it() {
        let fake = Fake::new(OnCancel::Complete(NtStatus::CANCELLED));
        drop(fake.pending(Start::InFlight));
        assert_eq!(fake.outcome(), (1, false, true, false));
        let fake = Fake::new(OnCancel::Ignore);
        let start = Instant::now();
        drop(fake.pending(Start::InFlight));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(fake.outcome(), (1, true, false, false));
    }

    #[test]
    fn requests_over_at_once_are_collected_without_waiting() {
        let fake = Fake::new(OnCancel::Ignore);
        fake.s().status = Some(NtStatus::BUFFER_OVERFLOW);
        let p = fake.pending(Start::Completed);
        p.cancel().unwrap();
        assert_eq!(p.wait(Request::Read, None).unwrap().status, NtStatus::BUFFER_OVERFLOW);
        assert_eq!(fake.outcome(), (0, false, true, false));
        // Failed during the call: the status from the error, no data; the
        // never-written status block is not read.
        let fake = Fake::new(OnCancel::Ignore);
        let c = fake.pending(Start::Synchronous(NtStatus::ACCESS_DENIED)).wait(Request::Read, None).unwrap();
        assert_eq!((c.status, c.information, c.data.len()), (NtStatus::ACCESS_DENIED, 0, 0));
        let (cancels, leaked, freed, _) = fake.outcome();
        assert_eq!((cancels, leaked, freed), (0, false, true));
        drop(fake.pending(Start::Synchronous(NtStatus::ACCESS_DENIED)));
        assert_eq!(fake.outcome().0, 0);
    }

    #[test]
    fn cancel_reaches_only_a_pending_request() {
        let fake = Fake::new(OnCancel::Complete(NtStatus::CANCELLED));
        let p = fake.pending(Start::InFlight);
        p.cancel().unwrap();
        let c = p.wait(Request::Read, None).unwrap();
        assert_eq!(c.status, NtStatus::CANCELLED);
        assert_eq!(fake.outcome(), (1, false, true, false));
    }

    #[test]
    fn requests_are_send() {
        fn send<T: Send>() {}
        send::<Overlapped<Fake>>();
    }
}
