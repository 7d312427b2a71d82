//! Lock-order checking: Driver Verifier's deadlock detection.
//!
//! Every time a thread takes a lock while holding others, each held lock
//! gets an edge to the new one ("was held while this was taken"). A new
//! edge that closes a cycle means two code paths take the same locks in
//! opposite orders: on Windows, two CPUs running them at once deadlock.
//! The cycle is reported when it first becomes possible, whether or not
//! this run deadlocked, as Verifier does.
//!
//! Spin locks, NDIS RW locks (read or write) and the cancel spin lock are
//! nodes, named by address. A lock's node goes when the lock is freed
//! (`NdisFreeSpinLock`, `NdisFreeRWLock`) or when the pool block holding
//! it is, so a reused address starts afresh. Readers are not told apart
//! from writers: a read-read inversion can still deadlock behind a waiting
//! writer, so ndisim is the stricter of the two.

use crate::kernel::{Held, LockKind};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The lock-order graph of one simulation.
#[derive(Default)]
pub(crate) struct LockOrder {
    graph: Mutex<Graph>,
    /// Bumped whenever a node goes, so per-thread caches of known edges
    /// are dropped.
    generation: AtomicU64,
    /// This graph's identity in the per-thread caches.
    id: u64,
}

#[derive(Default)]
struct Graph {
    /// Edges: held lock → locks taken while it was held, with the call
    /// that first took each.
    out: BTreeMap<usize, BTreeMap<usize, String>>,
    /// The same edges reversed, to drop a node quickly.
    into: BTreeMap<usize, BTreeSet<usize>>,
    /// Cycles already reported (by the edge that closed them).
    reported: HashSet<(usize, usize)>,
}

/// Edges a thread knows are in a graph: (graph id, generation, edges).
type KnownEdges = (u64, u64, HashSet<(usize, usize), BuildHasherDefault<EdgeHasher>>);

thread_local! {
    static KNOWN: RefCell<KnownEdges> =
        const { RefCell::new((0, 0, HashSet::with_hasher(BuildHasherDefault::new()))) };
}

/// The hash of the per-thread cache of known edges: a multiply per word
/// (the cache is looked up on every acquisition made while holding a
/// lock; its keys are lock addresses, not chosen by an adversary).
#[derive(Default)]
struct EdgeHasher(u64);

impl Hasher for EdgeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // (Addresses are aligned: fold the high bits, which the multiply
        // filled, into the low ones the table indexes by.)
        self.0 ^ (self.0 >> 32)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A lock-order cycle that a new acquisition closed.
pub(crate) struct Cycle {
    pub detail: String,
}

fn kind_name(k: LockKind) -> &'static str {
    match k {
        LockKind::Spin => "spin lock",
        LockKind::Read => "RW lock (read)",
        LockKind::Write => "RW lock (write)",
    }
}

impl LockOrder {
    pub(crate) fn new() -> Self {
        LockOrder { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), ..Default::default() }
    }

    /// `addr` (a `kind` lock) is about to be taken by `call` while `held`
    /// are held (oldest first). Records the edges; returns the cycle the
    /// first new edge closes, if any.
    pub(crate) fn acquiring(&self, held: &[Held], addr: usize, kind: LockKind, call: &str) -> Option<Cycle> {
        if held.is_empty() {
            return None;
        }
        let generation = self.generation.load(Ordering::Acquire);
        // Most acquisitions repeat an order already seen: answer those
        // without the shared graph.
        let all_known = KNOWN.with(|k| {
            let mut k = k.borrow_mut();
            if k.0 != self.id || k.1 != generation {
                *k = (self.id, generation, HashSet::default());
            }
            held.iter().all(|h| h.addr == addr || k.2.contains(&(h.addr, addr)))
        });
        if all_known {
            return None;
        }
        let mut g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for h in held {
            if h.addr == addr {
                continue;
            }
            let new = !g.out.get(&h.addr).is_some_and(|m| m.contains_key(&addr));
            if new {
                // Does `addr` already reach the held lock? Then this edge
                // closes a cycle.
                if found.is_none() && !g.reported.contains(&(h.addr, addr)) {
                    if let Some(path) = g.path(addr, h.addr) {
                        g.reported.insert((h.addr, addr));
                        found = Some(g.describe(h, addr, kind, call, &path));
                    }
                }
                g.out.entry(h.addr).or_default().insert(addr, call.to_string());
                g.into.entry(addr).or_default().insert(h.addr);
            }
        }
        drop(g);
        if self.generation.load(Ordering::Acquire) == generation {
            KNOWN.with(|k| {
                let mut k = k.borrow_mut();
                for h in held {
                    k.2.insert((h.addr, addr));
                }
            });
        }
        found
    }

    /// The locks in `[lo, hi)` are gone (freed, or their memory is).
    pub(crate) fn forget(&self, lo: usize, hi: usize) {
        let mut g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        let mut gone: Vec<usize> = g.out.range(lo..hi).map(|(&a, _)| a).collect();
        gone.extend(g.into.range(lo..hi).map(|(&a, _)| a));
        if gone.is_empty() {
            return;
        }
        for a in gone {
            if let Some(m) = g.out.remove(&a) {
                for b in m.keys() {
                    if let Some(s) = g.into.get_mut(b) {
                        s.remove(&a);
                    }
                }
            }
            if let Some(s) = g.into.remove(&a) {
                for b in s {
                    if let Some(m) = g.out.get_mut(&b) {
                        m.remove(&a);
                    }
                }
            }
            g.reported.retain(|&(x, y)| x != a && y != a);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Graph {
    /// A path of edges from `from` to `to` (the nodes after `from`).
    fn path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut path = vec![to];
                let mut cur = to;
                while let Some(&p) = prev.get(&cur) {
                    if p == from {
                        break;
                    }
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for &m in self.out.get(&n).into_iter().flat_map(|m| m.keys()) {
                if seen.insert(m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        None
    }

    fn describe(&self, held: &Held, addr: usize, kind: LockKind, call: &str, path: &[usize]) -> Cycle {
        // The earlier order: addr → … → held, each edge with its call.
        let mut earlier = Vec::new();
        let mut a = addr;
        for &b in path {
            let by = self.out.get(&a).and_then(|m| m.get(&b)).map_or("?", String::as_str);
            earlier.push(format!("{b:#x} taken by {by} while {a:#x} was held"));
            a = b;
        }
        Cycle {
            detail: format!(
                "{call} takes {} {addr:#x} while holding {} {:#x}, but earlier {}: two CPUs taking them in these orders deadlock",
                kind_name(kind),
                kind_name(held.kind),
                held.addr,
                earlier.join(", then ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(addr: usize) -> Held {
        Held { addr, kind: LockKind::Spin, state: 0 }
    }

    #[test]
    fn an_inversion_is_a_cycle_and_is_reported_once() {
        let g = LockOrder::new();
        assert!(g.acquiring(&[h(0x10)], 0x20, LockKind::Spin, "A").is_none());
        let c = g.acquiring(&[h(0x20)], 0x10, LockKind::Spin, "B").expect("cycle");
        assert!(c.detail.contains("0x10") && c.detail.contains("0x20"), "{}", c.detail);
        assert!(g.acquiring(&[h(0x20)], 0x10, LockKind::Spin, "B").is_none());
    }

    #[test]
    fn a_longer_cycle_is_found_and_consistent_orders_are_not() {
        let g = LockOrder::new();
        assert!(g.acquiring(&[h(1)], 2, LockKind::Spin, "x").is_none());
        assert!(g.acquiring(&[h(2)], 3, LockKind::Spin, "x").is_none());
        // Taking 3 while holding only 2 is consistent with 1 → 2 → 3.
        assert!(g.acquiring(&[h(2)], 3, LockKind::Spin, "x").is_none());
        let c = g.acquiring(&[h(3)], 1, LockKind::Spin, "y").expect("1 → 2 → 3 → 1");
        assert!(c.detail.contains("0x2"), "{}", c.detail);
    }

    #[test]
    fn a_freed_lock_forgets_its_order() {
        let g = LockOrder::new();
        assert!(g.acquiring(&[h(0x10)], 0x20, LockKind::Spin, "A").is_none());
        g.forget(0x20, 0x28);
        assert!(g.acquiring(&[h(0x20)], 0x10, LockKind::Spin, "B").is_none());
    }
}
