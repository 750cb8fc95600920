//! What the daemon shows about itself besides the RPC methods: `/metrics`, `/healthz`,
//! `/readyz`, and the status records of `weka.getAllProcessStatus` (`status --json`, the
//! web page). Each asks the orchestrator for one [`Snapshot`]; `/proc` reads and rendering
//! happen off the orchestrator's thread (a scrape's on a thread of its own).

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use super::metrics::{self, Scrape};
use super::value::Value;
use crate::orchestrator::stats::{ExitCause, RestartCause};
use crate::orchestrator::{DaemonState, Detail, OrchestratorHandle, ProcSample, Request, Snapshot};
use crate::procsup::ProcessState;
use crate::sys::{clock, procfs};

/// How long `/healthz` waits for the orchestrator before calling it stuck.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// A plain answer: status code, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn text(status: u16, body: impl Into<String>) -> Page {
    Page { status, content_type: "text/plain; charset=utf-8", body: body.into() }
}

async fn snapshot(orch: &OrchestratorHandle) -> Option<Snapshot> {
    let ask = orch.ask(|reply| Request::Snapshot { detail: Detail::Counts, reply });
    tokio::time::timeout(HEALTH_TIMEOUT, ask).await.ok()?.ok()
}

/// `/metrics`.
pub async fn metrics(orch: &OrchestratorHandle) -> Page {
    let Some(snapshot) = snapshot(orch).await else {
        return text(503, "the daemon is shutting down or not answering\n");
    };
    let now = clock::wall_now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let (reply, answer) = oneshot::channel();
    let job = ScrapeJob { snapshot, now, reply };
    let sent = match scraper() {
        Some(thread) => thread.send(job).await.map_err(|e| e.0),
        None => Err(job),
    };
    if let Err(job) = sent {
        // No thread of its own: the same work on the blocking pool, keeping no descriptor.
        let _ = tokio::task::spawn_blocking(move || {
            job.run(&mut procfs::UsageReader::default(), false)
        })
        .await;
    }
    match answer.await {
        Ok(body) => Page { status: 200, content_type: metrics::CONTENT_TYPE, body },
        Err(_) => text(500, "metrics could not be rendered\n"),
    }
}

/// One scrape's work off the orchestrator's thread: the `/proc` reads and the rendering.
struct ScrapeJob {
    snapshot: Snapshot,
    now: f64,
    reply: oneshot::Sender<String>,
}

impl ScrapeJob {
    /// Reads through `reader`, which keeps descriptors between scrapes when `keep` is set
    /// and [`procfs::statm_budget`] allows.
    fn run(self, reader: &mut procfs::UsageReader, keep: bool) {
        let ScrapeJob { snapshot, now, reply } = self;
        let pids: Vec<Option<u32>> = snapshot
            .procs
            .iter()
            .map(|p| u32::try_from(p.info.pid).ok().filter(|&pid| pid > 0))
            .collect();
        let daemon = procfs::self_usage();
        let budget = match (keep, daemon.open_fds, daemon.max_fds) {
            (true, Some(open), Some(limit)) => {
                let not_running = pids.iter().filter(|p| p.is_none()).count();
                procfs::statm_budget(open, reader.kept(), limit, not_running)
            }
            _ => 0,
        };
        let usage = reader.read(&pids, budget);
        let _ = reply.send(metrics::render(Scrape { snapshot, usage, daemon, now }));
    }
}

/// The thread that serves scrapes (see [`ScrapeJob`]) and owns the descriptors its
/// [`procfs::UsageReader`] keeps between them; started by the first scrape. Scrapes queue
/// on its channel.
fn scraper() -> Option<&'static mpsc::Sender<ScrapeJob>> {
    static SCRAPER: OnceLock<Option<mpsc::Sender<ScrapeJob>>> = OnceLock::new();
    let start = || {
        let (tx, mut rx) = mpsc::channel::<ScrapeJob>(16);
        let serve = move || {
            let mut reader = procfs::UsageReader::default();
            while let Some(job) = rx.blocking_recv() {
                job.run(&mut reader, true);
            }
        };
        match std::thread::Builder::new().name("metrics".into()).spawn(serve) {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("metrics: no thread of their own ({e}); using the blocking pool");
                None
            }
        }
    };
    SCRAPER.get_or_init(start).as_ref()
}

/// `/healthz`: 200 when the orchestrator's loop answers and the daemon is RUNNING.
pub async fn healthz(orch: &OrchestratorHandle) -> Page {
    let ask = orch.ask(|reply| Request::GetState { reply });
    match tokio::time::timeout(HEALTH_TIMEOUT, ask).await {
        Ok(Ok(DaemonState::Running)) => text(200, "ok\n"),
        Ok(Ok(state)) => text(503, format!("daemon state is {}\n", state.name())),
        Ok(Err(_)) => text(503, "the daemon is shutting down\n"),
        Err(_) => {
            text(503, format!("the daemon did not answer within {} s\n", HEALTH_TIMEOUT.as_secs()))
        }
    }
}

/// `/readyz`: 200 when the daemon is RUNNING and every autostart process is RUNNING (which
/// with a `ready_check` means ready) or has completed (a one-shot that exited as expected).
pub async fn readyz(orch: &OrchestratorHandle) -> Page {
    let Some(snap) = snapshot(orch).await else {
        return text(503, "the daemon is shutting down or not answering\n");
    };
    if snap.state != DaemonState::Running {
        return text(503, format!("daemon state is {}\n", snap.state.name()));
    }
    let waiting: Vec<String> = snap
        .procs
        .iter()
        .filter(|p| p.autostart && p.info.state != ProcessState::Running && !p.completed)
        .map(|p| format!("{} {}", key(p), p.info.state.name()))
        .collect();
    if waiting.is_empty() {
        text(200, "ready\n")
    } else {
        text(503, format!("not ready: {}\n", waiting.join(", ")))
    }
}

/// supervisorctl's name for a process: `name` alone when the group has its name.
fn key(p: &ProcSample) -> String {
    if p.info.group == p.info.name {
        p.info.name.clone()
    } else {
        crate::orchestrator::names::key(&p.info.group, &p.info.name)
    }
}

/// One record of `weka.getAllProcessStatus`: `getProcessInfo`'s fields, then ours.
pub fn status_value(p: ProcSample) -> Value {
    let restarts = Value::Struct(
        RestartCause::ALL
            .iter()
            .map(|&c| (c.label().into(), Value::Int(count(p.stats.restarts_by(c)))))
            .collect(),
    );
    let exits = Value::Struct(
        ExitCause::ALL
            .iter()
            .map(|&c| (c.label().into(), Value::Int(count(p.stats.exits_by(c)))))
            .collect(),
    );
    let mut members = super::methods::info_members(p.info);
    members.extend([
        ("autostart".into(), Value::Bool(p.autostart)),
        ("restarts".into(), Value::Int(count(p.stats.restart_count()))),
        ("restarts_by_cause".into(), restarts),
        ("exits_by_cause".into(), exits),
        ("fatal_count".into(), Value::Int(count(p.stats.fatal()))),
        ("backoff_seconds".into(), Value::Double(p.backoff_seconds)),
        ("stdout_bytes".into(), Value::Int(count(p.output[0].written()))),
        ("stderr_bytes".into(), Value::Int(count(p.output[1].written()))),
    ]);
    Value::Struct(members)
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
