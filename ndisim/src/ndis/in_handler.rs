//! Guards around a call of the driver's receive handler: the adapter's
//! count of handlers running (`in_handler`, which rule retained-when-low
//! waits on) and this thread's note that the handler was told it runs at
//! DISPATCH_LEVEL (which `NdisReturnNetBufferLists` checks its flag
//! against). Each is put back when its guard drops, also when the
//! indication unwinds.

use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// The innermost receive handler running on this thread was called
    /// with `NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL` (saved and restored around
    /// each call, so a handler nested in a return or a send is its own).
    static TOLD_DISPATCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the innermost receive handler running on this thread was told
/// it runs at DISPATCH_LEVEL.
pub(super) fn told_dispatch() -> bool {
    TOLD_DISPATCH.with(|t| t.get())
}

/// A receive handler running on an adapter's binding, counted in its
/// `in_handler` from `enter` until dropped: also when the indication
/// unwinds (an ndisim panic inside the call, caught by whoever runs the
/// indication), which would otherwise leave the count up for good and rule
/// retained-when-low, which waits for no handler to run, off.
pub(super) struct InHandler<'a>(&'a AtomicU64);

impl<'a> InHandler<'a> {
    pub(super) fn enter(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InHandler(count)
    }
}

impl Drop for InHandler<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// This thread's `TOLD_DISPATCH` for one handler call, the one before put
/// back when dropped: also when the call unwinds, which would otherwise
/// leave the thread's later returns judged as if inside that handler.
pub(super) struct Told(bool);

impl Told {
    pub(super) fn set(told: bool) -> Self {
        Told(TOLD_DISPATCH.with(|t| t.replace(told)))
    }
}

impl Drop for Told {
    fn drop(&mut self) {
        TOLD_DISPATCH.with(|t| t.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_call_that_unwinds_leaves_the_count_and_the_flag_as_they_were() {
        let count = AtomicU64::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _in = InHandler::enter(&count);
            let _told = Told::set(true);
            assert_eq!(count.load(Ordering::Acquire), 1);
            assert!(told_dispatch());
            panic!("unwinds through the indication");
        }));
        assert!(r.is_err());
        assert_eq!(count.load(Ordering::Acquire), 0, "no handler runs now");
        assert!(!told_dispatch(), "this thread is in no receive handler");
    }
}
