//! Whether a thread is inside one of the protocol's entry points that NDIS
//! calls (its `Protocol*` handlers), for the calls a driver must never make
//! from there (`NdisDeregisterProtocolDriver`).

use std::cell::Cell;

thread_local! {
    /// Calls of this thread into the protocol's `Protocol*` handlers (the
    /// entry points NDIS calls) under way, nested ones counted.
    static IN_NDIS_CALLBACK: Cell<u32> = const { Cell::new(0) };
}

/// This thread runs one of the protocol's NDIS handlers while it lives.
pub(crate) struct NdisCallback(());

impl NdisCallback {
    pub(crate) fn enter() -> Self {
        IN_NDIS_CALLBACK.with(|c| c.set(c.get() + 1));
        NdisCallback(())
    }
}

impl Drop for NdisCallback {
    fn drop(&mut self) {
        IN_NDIS_CALLBACK.with(|c| c.set(c.get() - 1));
    }
}

/// Whether this thread is inside an entry point NDIS called (a
/// `Protocol*` handler), directly or below it.
pub(crate) fn in_ndis_callback() -> bool {
    IN_NDIS_CALLBACK.with(Cell::get) != 0
}
