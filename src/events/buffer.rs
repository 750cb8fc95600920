//! A pool's event buffer (`EventListenerPool.event_buffer` and `_acceptEvent`): a FIFO of
//! at most `buffer_size` events. A full buffer drops its oldest event to make room, with
//! Python's ERRO line; a rejected event goes back at the head with its pool serial kept.
//! Pure and generic over what an event is.

use std::collections::VecDeque;

use super::event::Serial;
use crate::logio::mainlog::Level;

/// An event as a pool holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffered<E> {
    pub event: E,
    /// The global serial (the same in every pool).
    pub serial: u64,
    /// This pool's serial for it, given on first acceptance.
    pub pool_serial: u64,
}

/// Something the buffer logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BufferNote {
    /// An event this pool already numbered came back (DEBG).
    Rebuffering { serial: u64, len: usize, max: usize },
    /// The oldest event was dropped to make room (ERRO).
    Overflowed { serial: u64 },
}

impl BufferNote {
    /// The daemon log line for pool `pool`.
    pub fn line(&self, pool: &str) -> (Level, String) {
        match self {
            BufferNote::Rebuffering { serial, len, max } => (
                Level::Debug,
                format!("rebuffering event {serial} for pool {pool} (buf size={len}, max={max})"),
            ),
            BufferNote::Overflowed { serial } => (
                Level::Error,
                format!("pool {pool} event buffer overflowed, discarding event {serial}"),
            ),
        }
    }
}

/// The buffer and the pool's serial counter.
#[derive(Debug)]
pub struct PoolBuffer<E> {
    items: VecDeque<Buffered<E>>,
    max: usize,
    serials: Serial,
}

impl<E> PoolBuffer<E> {
    /// An empty buffer holding at most `max` (`buffer_size`, at least 1) events.
    pub fn new(max: usize) -> PoolBuffer<E> {
        PoolBuffer { items: VecDeque::new(), max: max.max(1), serials: Serial::new() }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// The oldest event.
    pub fn front(&self) -> Option<&Buffered<E>> {
        self.items.front()
    }

    /// A new event reaches the pool: it gets the next pool serial and goes to the tail.
    pub fn accept(&mut self, event: E, serial: u64) -> (u64, Vec<BufferNote>) {
        let pool_serial = self.serials.take_next();
        let notes = self.insert(Buffered { event, serial, pool_serial }, false, Vec::new());
        (pool_serial, notes)
    }

    /// An event this pool already numbered comes back: rejected (at the head) or
    /// delivered twice because two subscriptions match it (at the tail).
    pub fn accept_again(&mut self, item: Buffered<E>, head: bool) -> Vec<BufferNote> {
        let notes = vec![BufferNote::Rebuffering {
            serial: item.serial,
            len: self.items.len(),
            max: self.max,
        }];
        self.insert(item, head, notes)
    }

    fn insert(
        &mut self,
        item: Buffered<E>,
        head: bool,
        mut notes: Vec<BufferNote>,
    ) -> Vec<BufferNote> {
        if self.items.len() >= self.max
            && let Some(old) = self.items.pop_front()
        {
            notes.push(BufferNote::Overflowed { serial: old.serial });
        }
        if head {
            self.items.push_front(item);
        } else {
            self.items.push_back(item);
        }
        notes
    }

    /// Takes the oldest event for dispatch.
    pub fn pop(&mut self) -> Option<Buffered<E>> {
        self.items.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serials(b: &PoolBuffer<&str>) -> Vec<u64> {
        b.items.iter().map(|i| i.serial).collect()
    }

    #[test]
    fn fifo_with_pool_serials() {
        let mut b = PoolBuffer::new(3);
        assert_eq!(b.accept("a", 10), (0, vec![]));
        assert_eq!(b.accept("b", 11), (1, vec![]));
        let first = b.pop().unwrap();
        assert_eq!((first.event, first.serial, first.pool_serial), ("a", 10, 0));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_says_so() {
        let mut b = PoolBuffer::new(2);
        b.accept("a", 0);
        b.accept("b", 1);
        let (ps, notes) = b.accept("c", 2);
        assert_eq!(ps, 2);
        assert_eq!(notes, vec![BufferNote::Overflowed { serial: 0 }]);
        assert_eq!(serials(&b), vec![1, 2]);
        assert_eq!(
            notes[0].line("lst"),
            (Level::Error, "pool lst event buffer overflowed, discarding event 0".to_string())
        );
    }

    #[test]
    fn a_rejected_event_goes_back_to_the_head_keeping_its_pool_serial() {
        let mut b = PoolBuffer::new(5);
        b.accept("a", 0);
        b.accept("b", 1);
        let a = b.pop().unwrap();
        let notes = b.accept_again(a, true);
        assert_eq!(notes, vec![BufferNote::Rebuffering { serial: 0, len: 1, max: 5 }]);
        assert_eq!(notes[0].line("lst").1, "rebuffering event 0 for pool lst (buf size=1, max=5)");
        let again = b.pop().unwrap();
        assert_eq!((again.serial, again.pool_serial), (0, 0));
    }

    #[test]
    fn rebuffering_into_a_full_buffer_drops_the_oldest_then_inserts_at_the_head() {
        let mut b = PoolBuffer::new(2);
        b.accept("a", 0);
        b.accept("b", 1);
        let a = b.pop().unwrap();
        b.accept("c", 2);
        let notes = b.accept_again(a, true);
        assert_eq!(
            notes,
            vec![
                BufferNote::Rebuffering { serial: 0, len: 2, max: 2 },
                BufferNote::Overflowed { serial: 1 }
            ]
        );
        assert_eq!(serials(&b), vec![0, 2]);
    }

    #[test]
    fn a_double_subscription_appends_a_second_copy() {
        let mut b = PoolBuffer::new(4);
        b.accept("a", 7);
        let copy = Buffered { event: "a", serial: 7, pool_serial: 0 };
        b.accept_again(copy, false);
        assert_eq!(serials(&b), vec![7, 7]);
    }

    #[test]
    fn size_zero_is_treated_as_one() {
        let mut b = PoolBuffer::new(0);
        b.accept("a", 0);
        let (_, notes) = b.accept("b", 1);
        assert_eq!(notes, vec![BufferNote::Overflowed { serial: 0 }]);
        assert_eq!(b.max(), 1);
    }
}
