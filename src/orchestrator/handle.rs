//! The typed way into the orchestrator: every other task holds a clone of this.

use tokio::sync::{mpsc, oneshot};

use super::msg::{Reply, Request};
use crate::fault::{Fault, FaultKind};

/// Requests that may wait for the orchestrator. Requests are small and answered at once;
/// a full inbox means the daemon is overloaded, and callers wait their turn.
pub const ORCH_INBOX: usize = 1024;

/// A cheap, cloneable handle.
#[derive(Clone, Debug)]
pub struct OrchestratorHandle {
    tx: mpsc::Sender<Request>,
}

impl OrchestratorHandle {
    pub(super) fn new(tx: mpsc::Sender<Request>) -> OrchestratorHandle {
        OrchestratorHandle { tx }
    }

    /// Sends a request built around a fresh reply channel and awaits the answer. When the
    /// orchestrator is gone (the daemon is stopping), the answer is SHUTDOWN_STATE, which
    /// is what Python answers while shutting down.
    pub async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, Fault> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Fault::bare(FaultKind::ShutdownState))?;
        rx.await.map_err(|_| Fault::bare(FaultKind::ShutdownState))
    }
}
