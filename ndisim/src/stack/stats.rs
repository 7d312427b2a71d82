//! A simulation's stack figures: each handler's deepest call, the budget
//! check, and the stacks' high-water marks at unload.

use super::gate::{KERNEL_STACK, Slot};
use crate::kernel::Kernel;
use crate::verifier::{Rule, Violation, lock, lock_process};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// One handler's deepest call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerDepth {
    /// The handler NDIS or the I/O manager called (the outermost).
    pub handler: String,
    /// Bytes of stack the driver's frames used below the handler's entry
    /// at the deepest sample (return addresses included).
    pub depth: usize,
    /// The handler running at that sample (another one when the driver
    /// called an export that called back into it).
    pub innermost: String,
    /// The driver code there, by its symbol (`?` when unknown).
    pub at: String,
}

/// The driver's stack use in a simulation (`Report::stack`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackReport {
    /// The budget the depths were checked against.
    pub budget: usize,
    /// Each handler's deepest call, deepest first.
    pub handlers: Vec<HandlerDepth>,
    /// The deepest any driver stack was written below a handler's entry
    /// (its high-water mark, less ndisim's frames above the handler).
    pub high_water: usize,
}

impl StackReport {
    /// The deepest sampled call, if the driver called anything.
    pub fn deepest(&self) -> Option<&HandlerDepth> {
        self.handlers.first()
    }
}

impl std::fmt::Display for StackReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stack: ")?;
        match self.deepest() {
            Some(h) => {
                write!(f, "deepest {} bytes in {}", h.depth, h.handler)?;
                if h.innermost != h.handler {
                    write!(f, " (inside {})", h.innermost)?;
                }
                write!(f, " at {}", h.at)?;
            }
            None => write!(f, "no sample")?,
        }
        write!(
            f,
            ", high-water {} bytes; budget {} bytes of a {}-byte kernel stack",
            self.high_water, self.budget, KERNEL_STACK
        )
    }
}

struct Deepest {
    handler: &'static str,
    depth: usize,
    innermost: &'static str,
    at: usize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Which simulation each slot is painted for (by slot index).
static OWNERS: Mutex<Vec<(usize, Weak<Stats>)>> = Mutex::new(Vec::new());

/// Slot `index` stops serving its simulation (its thread ended, or it goes
/// to another simulation): its high-water mark counts for that one.
pub(crate) fn release(index: usize, high_water: usize) {
    let owner = {
        let mut o = lock_process(&OWNERS);
        match o.iter().position(|(i, _)| *i == index) {
            Some(p) => o.swap_remove(p).1.upgrade(),
            None => None,
        }
    };
    if let Some(s) = owner {
        s.fold(high_water);
    }
}

/// One simulation's stack figures.
pub(crate) struct Stats {
    id: u64,
    budget: usize,
    handlers: Mutex<Vec<Deepest>>,
    /// High-water marks of slots before they were painted again.
    released: Mutex<usize>,
    /// Slots painted for it.
    slots: Mutex<Vec<usize>>,
    /// The most bytes of ndisim's frames above a handler.
    glue: AtomicUsize,
    /// A write past the budget that no sample saw was reported.
    unsampled: std::sync::atomic::AtomicBool,
    /// What its stacks are painted with.
    paint: u64,
}

impl Stats {
    /// A simulation's stacks: `budget` bytes for the driver's frames, and
    /// painted with `PAINT` xor'ed with `garbage` in every byte.
    pub(crate) fn new(budget: usize, garbage: u8) -> Arc<Stats> {
        Arc::new(Stats {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            budget,
            paint: super::PAINT ^ u64::from_ne_bytes([garbage; 8]),
            handlers: Mutex::new(Vec::new()),
            released: Mutex::new(0),
            slots: Mutex::new(Vec::new()),
            glue: AtomicUsize::new(0),
            unsampled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn paint(&self) -> u64 {
        self.paint
    }

    /// Slot `index` was painted for this simulation.
    pub(crate) fn adopt(self: &Arc<Self>, index: usize) {
        lock_process(&OWNERS).push((index, Arc::downgrade(self)));
        let mut s = lock(&self.slots);
        if !s.contains(&index) {
            s.push(index);
        }
    }

    /// A slot of this simulation is painted again: its mark so far counts.
    pub(crate) fn fold(&self, high_water: usize) {
        let mut f = lock(&self.released);
        *f = (*f).max(high_water);
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// The outermost call `handler` wrote the stack below the budget line
    /// while no export or `__chkstk` call was that deep (reported once).
    pub(crate) fn unsampled(&self, k: &Kernel, handler: &'static str) {
        if self.unsampled.swap(true, Ordering::AcqRel) {
            return;
        }
        k.verifier.report(Violation::new(
            Rule::StackBudget,
            handler,
            format!(
                "the driver wrote its stack deeper than the budget of {} bytes (the stack's paint below the budget line is gone) in code that called no export and no __chkstk that deep; the report's high-water mark says how deep",
                self.budget
            ),
        ));
    }

    pub(crate) fn glue(&self, bytes: usize) {
        self.glue.fetch_max(bytes, Ordering::Relaxed);
    }

    /// A call of `handler` went `depth` bytes deep (deeper than this thread
    /// saw it go before).
    pub(crate) fn note(&self, k: &Kernel, handler: &'static str, innermost: &'static str, depth: usize, at: usize) {
        let over = {
            let mut h = lock(&self.handlers);
            match h.iter_mut().find(|e| std::ptr::eq(e.handler, handler)) {
                Some(e) if e.depth >= depth => return,
                Some(e) => {
                    let first_over = e.depth <= self.budget && depth > self.budget;
                    *e = Deepest { handler, depth, innermost, at };
                    first_over
                }
                None => {
                    h.push(Deepest { handler, depth, innermost, at });
                    depth > self.budget
                }
            }
        };
        if over {
            let inside = if innermost == handler { String::new() } else { format!(" inside {innermost}") };
            k.verifier.report(Violation::new(
                Rule::StackBudget,
                handler,
                format!(
                    "the driver's frames went {depth} bytes deep (deepest{inside} at {}); the budget is {} bytes of the {KERNEL_STACK}-byte kernel stack that NDIS, the miniport and filters share",
                    symbol(k, at),
                    self.budget
                ),
            ));
        }
    }

    /// The figures at unload. A high-water mark past the budget that no
    /// sample saw (a leaf that called nothing that deep) is reported here.
    pub(crate) fn report(self: &Arc<Self>, k: &Kernel) -> StackReport {
        let mut marked = *lock(&self.released);
        let slots = lock(&self.slots).clone();
        for i in slots {
            let mine =
                lock_process(&OWNERS).iter().any(|(j, w)| *j == i && std::ptr::eq(w.as_ptr(), Arc::as_ptr(self)));
            if let (true, Some(slot)) = (mine, Slot::of(i)) {
                marked = marked.max(super::high_water(&slot));
            }
        }
        // The mark counts from the top of the stack; ndisim's frames above
        // the handler are not the driver's (at most `glue` of them).
        let high_water = marked.saturating_sub(self.glue.load(Ordering::Relaxed));
        let mut handlers: Vec<HandlerDepth> = lock(&self.handlers)
            .iter()
            .map(|e| HandlerDepth {
                handler: e.handler.to_string(),
                depth: e.depth,
                innermost: e.innermost.to_string(),
                at: symbol(k, e.at),
            })
            .collect();
        handlers.sort_by(|a, b| b.depth.cmp(&a.depth).then_with(|| a.handler.cmp(&b.handler)));
        let sampled = handlers.first().map_or(0, |h| h.depth);
        if high_water > self.budget && sampled <= self.budget && !self.unsampled.load(Ordering::Acquire) {
            k.verifier.report(Violation::new(
                Rule::StackBudget,
                "driver code",
                format!(
                    "the driver wrote its stack {high_water} bytes deep (the stack's high-water mark at unload), past the budget of {} bytes; it called no export and no __chkstk that deep, so the handler is not known",
                    self.budget
                ),
            ));
        }
        StackReport { budget: self.budget, handlers, high_water }
    }
}

/// The driver's function at `at`, demangled and without its hash.
fn symbol(k: &Kernel, at: usize) -> String {
    if at == 0 {
        return "?".into();
    }
    let s = k.symbolize(at);
    match s.rsplit_once('+') {
        Some((name, off)) => format!("{:#}+{off}", rustc_demangle::demangle(name)),
        None => s,
    }
}
