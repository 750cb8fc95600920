//! Unbounded per-process channels (runner commands, pump controls) that cost almost
//! nothing while empty: a process has them for its whole life, and tokio's unbounded
//! channel allocates a block of 32 slots up front (over a kilobyte each), `futures`' a
//! message-sized stub node beside its shared state. These are one small allocation while
//! empty; the queue's buffer exists only while messages wait.
//!
//! The queue sits behind a `Mutex` held only to push or pop (one receiver, senders that
//! never wait), never across an `await` or a wake.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Creates an unbounded channel.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(State {
        queue: VecDeque::new(),
        waker: None,
        senders: 1,
        closed: false,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

struct State<T> {
    queue: VecDeque<T>,
    /// The receiver waiting for a message (or for the last sender to go).
    waker: Option<Waker>,
    /// Live senders (`u32` keeps the state, and so the allocation, within 80 bytes).
    senders: u32,
    /// The receiver is gone or closed: sends are refused.
    closed: bool,
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    // Nothing panics while the lock is held; a poisoned state is still consistent.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sending side; never waits.
pub struct Sender<T>(Shared<T>);

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("closed", &self.is_closed()).finish()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.0).senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.0);
            state.senders -= 1;
            if state.senders == 0 { state.waker.take() } else { None }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Queues `msg`; gives it back when the receiver is gone.
    pub fn send(&self, msg: T) -> Result<(), T> {
        let waker = {
            let mut state = lock(&self.0);
            if state.closed {
                return Err(msg);
            }
            state.queue.push_back(msg);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// True once the receiver is gone or closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.0).closed
    }
}

/// The receiving side.
pub struct Receiver<T>(Shared<T>);

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queue = {
            let mut state = lock(&self.0);
            state.closed = true;
            state.waker = None;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a message's drop may wake someone.
        drop(queue);
    }
}

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone (or after `close`) and the
    /// queue is empty. Cancel-safe: a message is only taken when it is returned.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// `recv` for a hand-written future: polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = lock(&self.0);
        if let Some(msg) = take(&mut state) {
            return Poll::Ready(Some(msg));
        }
        if state.closed || state.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// A message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        take(&mut lock(&self.0))
    }

    /// Refuses further messages; those already queued can still be received.
    pub fn close(&mut self) {
        lock(&self.0).closed = true;
    }
}

/// The next queued message; the queue's buffer is freed once it is empty, so an idle
/// channel holds none.
fn take<T>(state: &mut State<T>) -> Option<T> {
    let msg = state.queue.pop_front()?;
    if state.queue.is_empty() {
        state.queue = VecDeque::new();
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_ends_when_senders_are_gone() {
        let (tx, mut rx) = unbounded();
        let tx2 = tx.clone();
        assert!(tx.send(1).is_ok());
        assert!(tx2.send(2).is_ok());
        assert!(tx.send(3).is_ok());
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.recv().await, Some(2));
        drop((tx, tx2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn close_keeps_queued_messages_and_refuses_new_ones() {
        let (tx, mut rx) = unbounded();
        assert!(tx.send("a").is_ok());
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.send("b"), Err("b"));
        assert_eq!(rx.try_recv(), Some("a"));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(rx.recv().await, None);
    }

    #[test]
    fn a_dropped_receiver_refuses_sends_and_drops_what_was_queued() {
        let (tx, rx) = unbounded();
        let queued = Arc::new(());
        assert!(tx.send(queued.clone()).is_ok());
        drop(rx);
        assert_eq!(Arc::strong_count(&queued), 1);
        assert!(tx.is_closed());
        assert!(tx.send(queued).is_err());
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_send_from_another_thread_and_for_the_last_drop() {
        let (tx, mut rx) = unbounded();
        let tx2 = tx.clone();
        let sender = std::thread::spawn(move || {
            for n in 0..1000 {
                assert!(tx2.send(n).is_ok());
            }
        });
        for n in 0..1000 {
            assert_eq!(rx.recv().await, Some(n));
        }
        sender.join().unwrap();
        let dropper = std::thread::spawn(move || drop(tx));
        assert_eq!(rx.recv().await, None);
        dropper.join().unwrap();
    }

    /// One small allocation per channel while it is empty (80 bytes with the `Arc`'s
    /// counts): no buffer is kept for the messages once they are received.
    #[test]
    fn an_emptied_channel_keeps_no_buffer() {
        let (tx, mut rx) = unbounded();
        for n in 0..100 {
            assert!(tx.send(n).is_ok());
        }
        while rx.try_recv().is_some() {}
        assert_eq!(lock(&rx.0).queue.capacity(), 0);
        assert!(size_of::<Mutex<State<[u64; 8]>>>() <= 64);
    }
}
