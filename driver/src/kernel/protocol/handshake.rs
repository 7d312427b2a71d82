//! The handshake of a handler that may pend and the completion that may
//! beat it to the finish.

use core::sync::atomic::{AtomicU8, Ordering};

/// Two parties finishing one NDIS operation: the handler that may return
/// `NDIS_STATUS_PENDING`, and the completion that may run on another CPU
/// before or after it returns. Whoever comes second does the follow-up.
pub(crate) struct Handshake(AtomicU8);

const RETURNED: u8 = 1;
const COMPLETED: u8 = 2;

impl Handshake {
    pub(crate) const fn new() -> Self {
        Handshake(AtomicU8::new(0))
    }

    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// The handler is returning: `true` means the operation is still going
    /// and its completion will do the follow-up.
    pub(crate) fn handler_returns(&self) -> bool {
        self.0.fetch_or(RETURNED, Ordering::AcqRel) & COMPLETED == 0
    }

    /// The operation finished: `true` means the handler already returned,
    /// so the completion does the follow-up.
    pub(crate) fn completes(&self) -> bool {
        self.0.fetch_or(COMPLETED, Ordering::AcqRel) & RETURNED != 0
    }
}
