//! One task per `[eventlistener:x]` pool: it holds the pool's bounded buffer and hands
//! each event to one member that is RUNNING (past `startsecs`, as the orchestrator tells
//! it) and READY (as that member's [`pump`](super::pump) tells it), in member order, as
//! `EventListenerPool.dispatch` does. It never awaits a send: events arrive by `try_send`
//! from the orchestrator, and deliveries go to pumps over one-slot channels that are
//! always empty when a member is READY. A listener that stops reading therefore stalls
//! only its own pump; the buffer fills, and the oldest events are dropped and logged.

use crate::logio::pump::SinkSender;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::buffer::{BufferNote, Buffered, PoolBuffer};
use super::event::{Event, envelope};
use super::pump::{self, Delivery, PumpReport};
use crate::logio::mainlog::Level;
use crate::logio::mainlog_task::MainLogHandle;

/// A pool's inbox: events, attached listeners, and pump reports. Pumps and runners
/// `send().await` (the pool always drains); the orchestrator `try_send`s.
pub const POOL_INBOX: usize = 1024;

/// A listener process the runner just spawned: its pipes go to the pool, not to the log.
pub struct Attach {
    pub name: String,
    /// The write end of the listener's stdin.
    pub stdin: OwnedFd,
    /// The read end of the listener's stdout (the protocol channel).
    pub stdout: OwnedFd,
    /// `stdout_logfile`: Python records the raw protocol bytes there (through a writer task
    /// on the pump runtime, so a slow log never stalls the protocol; output that would put
    /// it more than `SINK_BACKLOG_MAX` behind is left out of it, and the daemon log says so).
    pub log: Option<SinkSender>,
    pub strip_ansi: bool,
}

pub(crate) enum PoolMsg {
    Event {
        event: Arc<Event>,
        serial: u64,
        copies: usize,
    },
    Attach(Attach),
    /// The member's process entered (`true`) or left (`false`) RUNNING.
    Running {
        name: String,
        running: bool,
    },
    Pump {
        name: String,
        generation: u64,
        report: PumpReport,
    },
    /// The group was removed: end the task (and with it the pumps).
    Close,
}

/// The way into a pool task.
#[derive(Clone)]
pub struct PoolHandle {
    pub(crate) tx: mpsc::Sender<PoolMsg>,
}

impl fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolHandle")
    }
}

impl PoolHandle {
    /// Hands a freshly spawned listener's pipes to the pool. False when the pool is gone
    /// (its group was removed); the pipes are then closed, which the listener sees as EOF.
    pub async fn attach(&self, attach: Attach) -> bool {
        self.tx.send(PoolMsg::Attach(attach)).await.is_ok()
    }
}

struct Link {
    generation: u64,
    deliver: mpsc::Sender<Delivery>,
    ready: bool,
    in_flight: Option<Buffered<Arc<Event>>>,
}

struct Member {
    name: String,
    running: bool,
    link: Option<Link>,
}

impl Member {
    fn dispatchable(&self) -> bool {
        self.running && self.link.as_ref().is_some_and(|l| l.ready)
    }
}

/// What a pool needs to start.
pub struct PoolSetup {
    pub name: String,
    /// `identifier`, the envelope's `server:`.
    pub server: String,
    pub buffer_size: usize,
    /// Member process names in the group's order.
    pub members: Vec<String>,
    pub log: MainLogHandle,
    /// Counts events the full buffer dropped (read by metrics scrapes).
    pub overflows: Arc<AtomicU64>,
}

struct Pool {
    name: String,
    server: String,
    buffer: PoolBuffer<Arc<Event>>,
    members: Vec<Member>,
    log: MainLogHandle,
    tx: mpsc::Sender<PoolMsg>,
    next_generation: u64,
    overflows: Arc<AtomicU64>,
}

/// Starts a pool task.
pub fn spawn(setup: PoolSetup) -> PoolHandle {
    let (tx, rx) = mpsc::channel(POOL_INBOX);
    let pool = Pool {
        buffer: PoolBuffer::new(setup.buffer_size),
        members: setup
            .members
            .into_iter()
            .map(|name| Member { name, running: false, link: None })
            .collect(),
        name: setup.name,
        server: setup.server,
        log: setup.log,
        tx: tx.clone(),
        next_generation: 0,
        overflows: setup.overflows,
    };
    tokio::spawn(pool.run(rx));
    PoolHandle { tx }
}

impl Pool {
    async fn run(mut self, mut rx: mpsc::Receiver<PoolMsg>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                PoolMsg::Event { event, serial, copies } => self.accept(event, serial, copies),
                PoolMsg::Attach(a) => self.attach(a),
                PoolMsg::Running { name, running } => {
                    if let Some(m) = self.members.iter_mut().find(|m| m.name == name) {
                        m.running = running;
                    }
                }
                PoolMsg::Pump { name, generation, report } => {
                    self.on_report(&name, generation, report)
                }
                PoolMsg::Close => return,
            }
            self.dispatch();
        }
    }

    fn note(&self, notes: Vec<BufferNote>) {
        for n in notes {
            if matches!(n, BufferNote::Overflowed { .. }) {
                self.overflows.fetch_add(1, Ordering::Relaxed);
            }
            let (level, line) = n.line(&self.name);
            if self.log.enabled(level) {
                self.log.log(level, line);
            }
        }
    }

    fn accept(&mut self, event: Arc<Event>, serial: u64, copies: usize) {
        let (pool_serial, notes) = self.buffer.accept(event.clone(), serial);
        self.note(notes);
        // Python subscribes once per matching `events=` entry, so an event matching two
        // entries is accepted twice (the second time as a rebuffering).
        for _ in 1..copies {
            let again = Buffered { event: event.clone(), serial, pool_serial };
            let notes = self.buffer.accept_again(again, false);
            self.note(notes);
        }
    }

    fn rebuffer(&mut self, item: Buffered<Arc<Event>>) {
        let notes = self.buffer.accept_again(item, true);
        self.note(notes);
    }

    fn attach(&mut self, a: Attach) {
        let Some(idx) = self.members.iter().position(|m| m.name == a.name) else { return };
        // A new process replaces an old pump whose listener held its event.
        let old = self.members.get_mut(idx).and_then(|m| m.link.take());
        if let Some(item) = old.and_then(|l| l.in_flight) {
            self.rebuffer(item);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let (deliver, deliver_rx) = mpsc::channel(1);
        if let Some(m) = self.members.get_mut(idx) {
            m.link = Some(Link { generation, deliver, ready: false, in_flight: None });
        }
        tokio::spawn(pump::run(pump::PumpSetup {
            attach: a,
            generation,
            pool: self.tx.clone(),
            deliveries: deliver_rx,
            log: self.log.clone(),
        }));
    }

    fn on_report(&mut self, name: &str, generation: u64, report: PumpReport) {
        let Some(m) = self.members.iter_mut().find(|m| m.name == name) else { return };
        if m.link.as_ref().is_none_or(|l| l.generation != generation) {
            return;
        }
        if report == PumpReport::Gone {
            if let Some(item) = m.link.take().and_then(|l| l.in_flight) {
                self.rebuffer(item);
            }
            return;
        }
        let Some(link) = m.link.as_mut() else { return };
        let back = match report {
            PumpReport::Ready => {
                link.ready = true;
                None
            }
            PumpReport::Result { processed } => {
                let item = link.in_flight.take();
                if processed { None } else { item }
            }
            PumpReport::Unknown => {
                link.ready = false;
                None
            }
            PumpReport::Bounced => {
                link.ready = false;
                link.in_flight.take()
            }
            PumpReport::Gone => None,
        };
        if let Some(item) = back {
            self.rebuffer(item);
        }
    }

    /// Python's `dispatch`: the oldest event to the first RUNNING and READY member, until
    /// the buffer is empty or nobody is ready.
    fn dispatch(&mut self) {
        while !self.buffer.is_empty() {
            let Some(idx) = self.members.iter().position(Member::dispatchable) else { return };
            let Some(item) = self.buffer.pop() else { return };
            let bytes =
                envelope(&self.server, item.serial, &self.name, item.pool_serial, &item.event)
                    .into_bytes();
            let serial = item.serial;
            let Some(m) = self.members.get_mut(idx) else { return };
            let Some(link) = m.link.as_mut() else { return };
            if link.deliver.try_send(Delivery { serial, bytes }).is_err() {
                // The pump is gone; its Gone report is on the way.
                m.link = None;
                self.rebuffer(item);
                continue;
            }
            link.ready = false;
            link.in_flight = Some(item);
            if self.log.enabled(Level::Debug) {
                self.log.log(Level::Debug, format!("event {serial} sent to listener {}", m.name));
                // Python pops the next event, finds nobody ready and puts it back.
                if let Some(next) = self.buffer.front()
                    && !self.members.iter().any(Member::dispatchable)
                {
                    let note = BufferNote::Rebuffering {
                        serial: next.serial,
                        len: self.buffer.len() - 1,
                        max: self.buffer.max(),
                    };
                    self.note(vec![note]);
                }
            }
        }
    }
}
