//! What a protocol allocated to establish a binding: the NDIS read/write
//! locks, NBL pools and I/O work items its `ProtocolBindAdapterEx` made
//! (on the handler's own thread). NDIS: when a protocol completes an
//! unbind, it has released every resource it allocated to establish the
//! binding. ndisim checks at that moment, the `NdisCompleteUnbindAdapterEx`
//! call or the unbind handler's synchronous return, that none of them is
//! still allocated: a driver that frees its binding a moment after (the
//! thread that completed the unbind still holding it) fails at once, not
//! only when the deregistration happens to win the race.

use super::Kernel;
use crate::verifier::{Rule, Violation, lock};
use std::cell::Cell;

thread_local! {
    /// The bind (its context) whose handler runs on this thread, or 0.
    static IN_BIND: Cell<usize> = const { Cell::new(0) };
}

/// Runs the bind handler `f` of bind `key`, noting what it allocates.
pub(crate) fn in_bind<R>(key: usize, f: impl FnOnce() -> R) -> R {
    let outer = IN_BIND.with(|c| c.replace(key));
    let r = f();
    IN_BIND.with(|c| c.set(outer));
    r
}

/// An object the driver just allocated (`what`: its kind, for reports).
pub(crate) fn allocated(k: &Kernel, obj: usize, what: &'static str) {
    let bind = IN_BIND.with(Cell::get);
    if bind != 0 {
        lock(&k.ndis.bind_owned).insert(obj, (bind, what));
    }
}

/// An object the driver freed.
pub(crate) fn freed(k: &Kernel, obj: usize) {
    lock(&k.ndis.bind_owned).remove(&obj);
}

/// The bind `key` made binding `binding` (or failed: `None`, and what it
/// allocated is forgotten).
pub(crate) fn bind_finished(k: &Kernel, key: usize, binding: Option<usize>) {
    let mut m = lock(&k.ndis.bind_owned);
    match binding {
        Some(b) => m.values_mut().filter(|(o, _)| *o == key).for_each(|(o, _)| *o = b),
        None => m.retain(|_, (o, _)| *o != key),
    }
}

/// The unbind of `binding` (named `name`) completes now (`call`): what its
/// bind allocated must be freed.
pub(crate) fn check_released(k: &Kernel, binding: usize, name: Option<String>, call: &str) {
    released(k, binding, name, call, "the unbind completed", "completes the unbind");
}

/// The bind `key` fails now (`call`, with a failure status): what it
/// allocated must be freed (NDIS: a protocol that fails a bind has freed
/// what it allocated to establish the binding).
pub(crate) fn check_bind_failed(k: &Kernel, key: usize, call: &str) {
    released(k, key, None, call, "the bind failed", "fails the bind");
}

fn released(k: &Kernel, owner: usize, name: Option<String>, call: &str, what: &str, when: &str) {
    let mut left: Vec<&'static str> = {
        let mut m = lock(&k.ndis.bind_owned);
        let left = m.values().filter(|(o, _)| *o == owner).map(|(_, w)| *w).collect();
        m.retain(|_, (o, _)| *o != owner);
        left
    };
    left.sort_unstable();
    if !left.is_empty() {
        Violation::new(
            Rule::ResourceLeak,
            call,
            format!(
                "{what} with {} allocated for the binding in its bind handler still allocated ({}); \
                 a protocol has released what it allocated for a binding when it {when}",
                left.len(),
                left.join(", ")
            ),
        )
        .with_binding(name)
        .report();
    }
}
