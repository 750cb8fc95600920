//! Unbounded per-process channels (runner commands, pump controls) that cost almost
//! nothing while empty: a process has three of them for its whole life, and tokio's
//! unbounded channel allocates a block of 32 slots up front (over a kilobyte each, most
//! of an idle process's memory). These allocate a node per message instead.

use std::future::poll_fn;
use std::pin::Pin;

use futures_channel::mpsc;
use futures_core::Stream;

/// Creates an unbounded channel.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::unbounded();
    (Sender(tx), Receiver(rx))
}

/// The sending side; never waits.
#[derive(Debug)]
pub struct Sender<T>(mpsc::UnboundedSender<T>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Sender<T> {
    /// Queues `msg`; gives it back when the receiver is gone.
    pub fn send(&self, msg: T) -> Result<(), T> {
        self.0.unbounded_send(msg).map_err(mpsc::TrySendError::into_inner)
    }

    /// True once the receiver is gone or closed.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The receiving side.
#[derive(Debug)]
pub struct Receiver<T>(mpsc::UnboundedReceiver<T>);

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone (or after `close`) and the
    /// queue is empty. Cancel-safe: a message is only taken when it is returned.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| Pin::new(&mut self.0).poll_next(cx)).await
    }

    /// `recv` for a hand-written future: polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        Pin::new(&mut self.0).poll_next(cx)
    }

    /// A message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        self.0.try_recv().ok()
    }

    /// Refuses further messages; those already queued can still be received.
    pub fn close(&mut self) {
        self.0.close();
    }
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
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.recv().await, Some(2));
        drop((tx, tx2));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn close_keeps_queued_messages_and_refuses_new_ones() {
        let (tx, mut rx) = unbounded();
        assert!(tx.send("a").is_ok());
        rx.close();
        assert_eq!(tx.send("b"), Err("b"));
        assert_eq!(rx.try_recv(), Some("a"));
        assert_eq!(rx.try_recv(), None);
    }
}
