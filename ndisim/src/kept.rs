//! What NDIS would have freed but ndisim keeps until its simulation ends:
//! a PnP event's notification, a bind's or an unbind's context. The
//! driver may have kept a pointer to one (a bug NDIS would not catch at
//! once either), so it must not become ndisim's memory again while the
//! driver can still run; once the simulation is over (the driver
//! unloaded, its threads joined) nothing can, and `Kept::release` frees
//! them. Before, they were leaked, for the life of the process: a
//! process that runs many simulations (a fuzzer) grew by them.

use crate::verifier::lock;
use std::sync::Mutex;

/// One box kept: its address and how to drop it.
struct Entry {
    ptr: usize,
    drop: unsafe fn(usize),
}

/// The boxes a simulation keeps until it ends.
#[derive(Default)]
pub(crate) struct Kept {
    boxes: Mutex<Vec<Entry>>,
}

/// # Safety
/// `ptr` came from `Box::<T>::into_raw` and is dropped once.
unsafe fn drop_box<T>(ptr: usize) {
    // SAFETY: per the caller.
    drop(unsafe { Box::from_raw(ptr as *mut T) });
}

impl Kept {
    /// Keeps `b` (at the same address) until `release`.
    pub(crate) fn keep<T: 'static>(&self, b: Box<T>) {
        let ptr = Box::into_raw(b) as usize;
        lock(&self.boxes).push(Entry { ptr, drop: drop_box::<T> });
    }

    /// How many boxes are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.boxes).len()
    }

    /// Frees every box kept (the simulation is over: nothing of the driver
    /// runs any more).
    pub(crate) fn release(&self) {
        let all = std::mem::take(&mut *lock(&self.boxes));
        for e in all {
            // SAFETY: each entry is a box `keep` took, dropped once (it
            // left the list above).
            unsafe { (e.drop)(e.ptr) };
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn kept_boxes_stay_until_released_then_drop_once() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let k = Kept::default();
        let b = Box::new(Counted(dropped.clone()));
        let at = &*b as *const Counted as usize;
        k.keep(b);
        k.keep(Box::new(Counted(dropped.clone())));
        assert_eq!(k.len(), 2);
        // Still there, at the same address.
        // SAFETY: kept, not released.
        assert!(Arc::ptr_eq(unsafe { &(*(at as *const Counted)).0 }, &dropped));
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        k.release();
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
        assert_eq!(k.len(), 0);
        k.release();
        drop(k);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }
}
