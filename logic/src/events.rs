//! A handle's event queue: bounded, with a count of what it dropped. When
//! full it drops its oldest event: the newest say what is true now (a
//! reader that fell behind learns how many it missed, from the first event
//! it reads, and then has every event after, the last ones included).

use alloc::collections::VecDeque;
use rawnic_proto::EventRecord;

/// Events a handle keeps before it drops the oldest.
pub const CAPACITY: usize = 64;

pub struct EventQueue {
    q: VecDeque<EventRecord>,
    seq: u64,
    lost: u32,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl EventQueue {
    pub fn new() -> Self {
        EventQueue { q: VecDeque::new(), seq: 0, lost: 0 }
    }

    /// An empty queue with room for `CAPACITY` events, so that a push never
    /// allocates (and no event is lost for want of memory); `None` when
    /// that room cannot be had.
    pub fn try_with_capacity() -> Option<Self> {
        let mut q = VecDeque::new();
        q.try_reserve_exact(CAPACITY).ok()?;
        Some(EventQueue { q, seq: 0, lost: 0 })
    }

    /// Queues an event; when full, counts it as lost instead.
    pub fn push(&mut self, kind: u16, binding_id: u32, speed: u64, mtu: u32) {
        self.push_record(EventRecord { kind, binding_id, speed, mtu, ..EventRecord::default() });
    }

    /// Queues `ev` (its sequence number and lost count are set here),
    /// dropping the oldest event when full (or, in a queue made without
    /// room, when no memory can be had; with none to drop, `ev` is lost).
    pub fn push_record(&mut self, ev: EventRecord) {
        self.seq += 1;
        if self.q.len() >= CAPACITY || self.q.try_reserve(1).is_err() {
            self.lost = self.lost.saturating_add(1);
            if self.q.pop_front().is_none() {
                return;
            }
        }
        self.q.push_back(EventRecord { seq: self.seq, lost: 0, ..ev });
    }

    /// The oldest event, carrying the count of events lost before it.
    pub fn pop(&mut self) -> Option<EventRecord> {
        let mut e = self.q.pop_front()?;
        e.lost = core::mem::take(&mut self.lost);
        Some(e)
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_with_lost_count_and_sequence() {
        let mut q = EventQueue::new();
        for i in 0..(CAPACITY as u32 + 5) {
            q.push(rawnic_proto::event::LINK_UP, i, 0, 0);
        }
        assert_eq!(q.len(), CAPACITY);
        // The five oldest went; the first left says so.
        let first = q.pop().unwrap();
        assert_eq!((first.seq, first.binding_id, first.lost), (6, 5, 5));
        let second = q.pop().unwrap();
        assert_eq!((second.seq, second.lost), (7, 0));
        // The newest is there.
        let mut last = second;
        while let Some(e) = q.pop() {
            last = e;
        }
        assert_eq!(last.seq, CAPACITY as u64 + 5);
        // A queue made with its room never drops for want of memory.
        let mut q = EventQueue::try_with_capacity().unwrap();
        for i in 0..CAPACITY as u32 {
            q.push(rawnic_proto::event::LINK_DOWN, i, 0, 0);
        }
        assert_eq!((q.len(), q.pop().unwrap().lost), (CAPACITY, 0));
    }
}
