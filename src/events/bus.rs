//! The orchestrator's side of events: the listener registry (which pool subscribes to
//! what, in subscription order), the global serial, and the TICK clock. It lives inside
//! the orchestrator and is only ever called from its loop; it publishes to pools with
//! `try_send` and never waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::event::{Event, Serial, timeslice};
use super::hook::Publisher;
use super::kind::{EventType, TICKS};
use super::pool::{self, PoolHandle, PoolMsg, PoolSetup};
use crate::config::{GroupConfig, GroupKind};
use crate::logio::mainlog::Level;
use crate::logio::mainlog_task::MainLogHandle;

/// Output events that may wait for the orchestrator. Past this, the pumps' hooks drop
/// events (and count them) rather than wait.
pub const EVENT_INBOX: usize = 4096;

struct PoolEntry {
    name: String,
    subscriptions: Vec<EventType>,
    handle: PoolHandle,
    overflows: Arc<AtomicU64>,
}

/// The registry, the serial and the tick clock.
pub struct Bus {
    server: String,
    serial: Serial,
    pools: Vec<PoolEntry>,
    log: MainLogHandle,
    publisher: Publisher,
    /// The last timeslice seen for TICK_5, TICK_60, TICK_3600 (Python's `ticks`), set at
    /// startup so the first tick is the first boundary after it.
    last_ticks: [u64; 3],
}

fn epoch_secs(wall: SystemTime) -> f64 {
    wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Bus {
    /// The global serial, handed to the next incarnation after a restart: Python's
    /// serials keep counting across reloads, and listeners may rely on that.
    pub fn serial(&self) -> Serial {
        self.serial.clone()
    }

    /// A bus with no pools, and the inbox output events reach the orchestrator on.
    pub fn new(
        server: String,
        log: MainLogHandle,
        wall: SystemTime,
        serial: Serial,
    ) -> (Bus, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(EVENT_INBOX);
        let secs = epoch_secs(wall) as u64;
        let last_ticks = TICKS.map(|(_, period)| timeslice(period, secs));
        let bus = Bus {
            server,
            serial,
            pools: Vec::new(),
            publisher: Publisher::new(tx, log.clone()),
            log,
            last_ticks,
        };
        (bus, rx)
    }

    /// The sender runners give their output hooks.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Registers and starts the pool of an `[eventlistener:x]` group (before its
    /// PROCESS_GROUP_ADDED is published, so that it receives that event, as in Python).
    /// `None` for other groups.
    pub fn add_pool(&mut self, gc: &GroupConfig) -> Option<PoolHandle> {
        let GroupKind::EventListener(kind) = &gc.kind else {
            return None;
        };
        let (events, buffer_size) = (&kind.events, &kind.buffer_size);
        self.remove_pool(&gc.name);
        let overflows = Arc::new(AtomicU64::new(0));
        let handle = pool::spawn(PoolSetup {
            name: gc.name.clone(),
            server: self.server.clone(),
            buffer_size: *buffer_size,
            members: gc.processes.iter().map(|p| p.name.clone()).collect(),
            log: self.log.clone(),
            overflows: overflows.clone(),
        });
        let subscriptions = events.iter().filter_map(|e| EventType::from_name(e)).collect();
        self.pools.push(PoolEntry {
            name: gc.name.clone(),
            subscriptions,
            handle: handle.clone(),
            overflows,
        });
        Some(handle)
    }

    /// Unsubscribes and ends a pool (its group was removed).
    pub fn remove_pool(&mut self, name: &str) {
        if let Some(i) = self.pools.iter().position(|p| p.name == name) {
            let entry = self.pools.remove(i);
            let _ = entry.handle.tx.try_send(PoolMsg::Close);
        }
    }

    /// Each pool's name and how many events its full buffer has dropped.
    pub fn overflows(&self) -> Vec<(String, u64)> {
        self.pools.iter().map(|p| (p.name.clone(), p.overflows.load(Ordering::Relaxed))).collect()
    }

    /// Whether `group` is a listener pool.
    pub fn is_pool(&self, group: &str) -> bool {
        self.pools.iter().any(|p| p.name == group)
    }

    /// Tells a pool whether its member `process` is RUNNING (events only go to RUNNING
    /// members).
    pub fn member_running(&self, group: &str, process: &str, running: bool) {
        if let Some(p) = self.pools.iter().find(|p| p.name == group) {
            let msg = PoolMsg::Running { name: process.to_string(), running };
            if p.handle.tx.try_send(msg).is_err() {
                self.log.log(
                    Level::Error,
                    format!("pool {group} inbox full, state of {process} not delivered"),
                );
            }
        }
    }

    /// Publishes `event` to every subscribing pool. The global serial is taken only when
    /// some pool subscribes (Python numbers an event when the first pool accepts it).
    pub fn publish(&mut self, event: Event) {
        let matches: Vec<(usize, usize)> = self
            .pools
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let n = p.subscriptions.iter().filter(|s| event.kind.is_a(**s)).count();
                (n > 0).then_some((i, n))
            })
            .collect();
        if matches.is_empty() {
            return;
        }
        let serial = self.serial.take_next();
        let event = Arc::new(event);
        for (i, copies) in matches {
            let Some(p) = self.pools.get(i) else { continue };
            let msg = PoolMsg::Event { event: event.clone(), serial, copies };
            if p.handle.tx.try_send(msg).is_err() {
                self.log.log(
                    Level::Error,
                    format!("pool {} inbox full, discarding event {serial}", p.name),
                );
            }
        }
    }

    fn subscribes(&self, kind: EventType) -> bool {
        self.pools.iter().any(|p| p.subscriptions.iter().any(|s| kind.is_a(*s)))
    }

    /// When the orchestrator should next call [`Bus::tick`]: the next boundary of a
    /// period some pool subscribes to, or `None` (no timer at all) when none does.
    pub fn next_tick(&self, now: Instant, wall: SystemTime) -> Option<Instant> {
        let secs = epoch_secs(wall);
        let next = TICKS
            .iter()
            .filter(|(kind, _)| self.subscribes(*kind))
            .map(|&(_, period)| next_boundary(period, secs))
            .min_by(f64::total_cmp)?;
        // A hair past the boundary, so the timeslice has surely changed when it fires.
        let wait = (next - secs).max(0.0) + 0.001;
        Some(now + Duration::from_secs_f64(wait))
    }

    /// Python's `supervisord.tick`: a TICK event for each period whose timeslice changed.
    pub fn tick(&mut self, wall: SystemTime) {
        let secs = epoch_secs(wall) as u64;
        for (i, (kind, period)) in TICKS.iter().enumerate() {
            let this = timeslice(*period, secs);
            if let Some(last) = self.last_ticks.get_mut(i)
                && *last != this
            {
                *last = this;
                self.publish(Event::tick(*kind, this));
            }
        }
    }
}

/// The first multiple of `period` strictly after `secs`.
fn next_boundary(period: u64, secs: f64) -> f64 {
    let p = period.max(1) as f64;
    ((secs / p).floor() + 1.0) * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(next_boundary(5, 1795469624.5), 1795469625.0);
        assert_eq!(next_boundary(5, 1795469625.0), 1795469630.0);
        assert_eq!(next_boundary(60, 1795469625.0), 1795469640.0);
        assert_eq!(next_boundary(3600, 3599.9), 3600.0);
    }
}
