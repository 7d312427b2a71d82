//! Calls into a binding's handlers, counted while they run (`enter_call`,
//! `CallGuard`): once the close began no new one is made (but for the
//! completions of what the driver still has outstanding), and the close
//! waits for the ones running on other threads (a close the driver makes
//! from inside a handler does not wait for itself).

use super::Binding;
use std::cell::RefCell;
use std::sync::atomic::Ordering;

thread_local! {
    /// Bindings whose handlers this thread is inside of (a close the
    /// driver makes from inside one does not wait for itself).
    static IN_CALLS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A call into a binding's handler, counted while it runs.
pub(crate) struct CallGuard<'a> {
    b: &'a Binding,
}

impl<'a> CallGuard<'a> {
    /// The binding the call is into.
    pub(crate) fn binding(&self) -> &'a Binding {
        self.b
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let me = self.b as *const Binding as usize;
        IN_CALLS.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(i) = c.iter().rposition(|&x| x == me) {
                c.remove(i);
            }
        });
        self.b.calls.fetch_sub(2, Ordering::AcqRel);
    }
}
impl Binding {
    /// Counts a call into the binding's handlers; `None` once the close
    /// began, unless `always` (completions of what the driver still has
    /// outstanding are delivered regardless).
    pub(crate) fn enter_call(&self, always: bool) -> Option<CallGuard<'_>> {
        if always {
            self.calls.fetch_add(2, Ordering::AcqRel);
        } else {
            let mut v = self.calls.load(Ordering::Acquire);
            loop {
                if v & 1 != 0 {
                    return None;
                }
                match self.calls.compare_exchange_weak(v, v + 2, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(x) => v = x,
                }
            }
        }
        let me = self as *const Binding as usize;
        IN_CALLS.with(|c| c.borrow_mut().push(me));
        Some(CallGuard { b: self })
    }

    /// Calls into the binding running on other threads.
    pub(super) fn calls_elsewhere(&self) -> u64 {
        let me = self as *const Binding as usize;
        let mine = IN_CALLS.with(|c| c.borrow().iter().filter(|&&x| x == me).count() as u64);
        (self.calls.load(Ordering::Acquire) >> 1).saturating_sub(mine)
    }
}
