//! The output-pump side of events: a [`Publisher`] is the lossy way into the orchestrator's
//! event inbox (`try_send` only, drops counted and logged), and [`EventHook`] is the
//! `logio::pump::OutputHook` that turns a child's output into PROCESS_LOG and
//! PROCESS_COMMUNICATION events.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::event::Event;
use crate::logio::Channel;
use crate::logio::mainlog::Level;
use crate::logio::mainlog_task::MainLogHandle;
use crate::logio::pump::OutputHook;

/// A cloneable, never-blocking sender of events to the orchestrator. One pointer: every
/// runner with output events holds a clone.
#[derive(Clone)]
pub struct Publisher(Arc<PublisherInner>);

struct PublisherInner {
    tx: mpsc::Sender<Event>,
    dropped: AtomicU64,
    log: MainLogHandle,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("dropped", &self.dropped()).finish()
    }
}

impl Publisher {
    pub fn new(tx: mpsc::Sender<Event>, log: MainLogHandle) -> Publisher {
        Publisher(Arc::new(PublisherInner { tx, dropped: AtomicU64::new(0), log }))
    }

    /// Hands `event` to the orchestrator, or drops it when its inbox is full: a child that
    /// writes faster than events can be handled loses events, never log bytes, and never
    /// slows anything down. Drops are logged at 1, 2, 4, 8, … so a storm stays readable.
    pub fn publish(&self, event: Event) {
        if self.0.tx.try_send(event).is_err() {
            let n = self.0.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                self.0.log.log(
                    Level::Error,
                    format!("event queue full: {n} output events discarded so far"),
                );
            }
        }
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

/// The hook one output pump runs for one channel of one process.
pub struct EventHook {
    pub publisher: Publisher,
    pub name: String,
    pub group: String,
    pub pid: u32,
    pub channel: Channel,
    /// `*_events_enabled`: PROCESS_LOG events for each chunk.
    pub log_events: bool,
}

impl OutputHook for EventHook {
    fn on_output(&mut self, data: &[u8]) {
        if self.log_events {
            self.publisher.publish(Event::process_log(
                &self.name,
                &self.group,
                self.pid,
                self.channel,
                data,
            ));
        }
    }

    fn on_communication(&mut self, payload: Vec<u8>) {
        self.publisher.publish(Event::process_communication(
            &self.name,
            &self.group,
            self.pid,
            self.channel,
            &payload,
        ));
    }
}
