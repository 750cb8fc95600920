//! `/metrics`: the daemon and its processes in the Prometheus text format (0.0.4), encoded
//! by `prometheus-client` from one orchestrator [`Snapshot`] plus the CPU clock and `/proc`
//! reads made in the scraping request's task.
//!
//! The `node_supervisord_*` families carry the names and labels of node_exporter's
//! supervisord collector, so existing dashboards work unchanged; `supervisord_*` are ours,
//! and `process_*` are the standard names for the daemon's own process.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::orchestrator::stats::{ExitCause, RestartCause};
use crate::orchestrator::{ProcSample, Snapshot};
use crate::procsup::ProcessState;
use crate::sys::procfs::{SelfUsage, Usage};

/// The `Content-Type` of the response.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Everything one scrape reports.
#[derive(Debug)]
pub struct Scrape {
    pub snapshot: Snapshot,
    /// The usage of each process of the snapshot, in its order.
    pub usage: Vec<Option<Usage>>,
    pub daemon: SelfUsage,
    /// Wall-clock now, in seconds since the epoch.
    pub now: f64,
}

/// The exposition text of `scrape`.
pub fn render(scrape: Scrape) -> String {
    // About 1.6 KB per process; growing a string this size by doubling copies it again.
    let mut out = String::with_capacity(4096 + 1800 * scrape.snapshot.procs.len());
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    // Writing into a String cannot fail; an encoder error would be a bug in a name.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::warn!("metrics encoding failed: {e}");
    }
    out
}

type Fam<'a> = MetricEncoder<'a>;

fn labels(p: &ProcSample) -> [(&'static str, &str); 2] {
    [("name", p.info.name.as_str()), ("group", p.info.group.as_str())]
}

/// Whole numbers are written as integers: shorter, and much cheaper to format than floats
/// (most samples are counts).
fn whole(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}

fn gauge(m: &mut Fam<'_>, labels: &impl EncodeLabelSet, v: f64) -> Result<(), std::fmt::Error> {
    match whole(v) {
        Some(n) => ConstGauge::new(n).encode(m.encode_family(labels)?),
        None => ConstGauge::new(v).encode(m.encode_family(labels)?),
    }
}

fn counter(m: &mut Fam<'_>, labels: &impl EncodeLabelSet, v: f64) -> Result<(), std::fmt::Error> {
    match whole(v).and_then(|n| u64::try_from(n).ok()) {
        Some(n) => ConstCounter::new(n).encode(m.encode_family(labels)?),
        None => ConstCounter::new(v).encode(m.encode_family(labels)?),
    }
}

impl Scrape {
    /// One gauge family with a value per process (`None`: no sample for that process).
    fn per_process(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        kind: MetricType,
        value: impl Fn(usize, &ProcSample) -> Option<f64>,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, kind)?;
        for (i, p) in self.snapshot.procs.iter().enumerate() {
            if let Some(v) = value(i, p) {
                match kind {
                    MetricType::Counter => counter(&mut m, &labels(p), v)?,
                    _ => gauge(&mut m, &labels(p), v)?,
                }
            }
        }
        Ok(())
    }

    fn compatible(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let running = |p: &ProcSample| p.info.state == ProcessState::Running;
        self.per_process(enc, "node_supervisord_up", "Process Up", MetricType::Gauge, |_, p| {
            Some(if running(p) { 1.0 } else { 0.0 })
        })?;
        self.per_process(
            enc,
            "node_supervisord_state",
            "Process State",
            MetricType::Gauge,
            |_, p| Some(f64::from(p.info.state.code())),
        )?;
        self.per_process(
            enc,
            "node_supervisord_exit_status",
            "Process Exit Status",
            MetricType::Gauge,
            |_, p| Some(p.info.exitstatus as f64),
        )?;
        // node_exporter reports the start time of RUNNING processes only.
        self.per_process(
            enc,
            "node_supervisord_start_time_seconds",
            "Process start time",
            MetricType::Gauge,
            |_, p| running(p).then_some(p.info.start as f64),
        )
    }

    fn lifecycle(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(
            "supervisord_process_restarts",
            "Starts after the first one, by cause: exited (autorestart), backoff (retry after an early exit), autorecovery, request (an explicit start)",
            None,
            MetricType::Counter,
        )?;
        for p in &self.snapshot.procs {
            for cause in RestartCause::ALL {
                let l = [labels(p)[0], labels(p)[1], ("cause", cause.label())];
                counter(&mut m, &l, p.stats.restarts_by(cause) as f64)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "supervisord_process_exits",
            "Ends of a process, by cause: expected, unexpected (exit status not in exitcodes), early (before startsecs), stopped (by a stop or shutdown), spawn_error",
            None,
            MetricType::Counter,
        )?;
        for p in &self.snapshot.procs {
            for cause in ExitCause::ALL {
                let l = [labels(p)[0], labels(p)[1], ("cause", cause.label())];
                counter(&mut m, &l, p.stats.exits_by(cause) as f64)?;
            }
        }
        self.per_process(
            enc,
            "supervisord_process_fatal_transitions",
            "Transitions into FATAL (start retries used up)",
            MetricType::Counter,
            |_, p| Some(p.stats.fatal() as f64),
        )?;
        self.per_process(
            enc,
            "supervisord_process_backoff_seconds",
            "Time spent in BACKOFF",
            MetricType::Counter,
            |_, p| Some(p.backoff_seconds),
        )?;
        // The check families list only the processes that have the check.
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        self.per_process(
            enc,
            "supervisord_process_ready",
            "1 when the process passed its ready_check since its last start (processes with a ready_check)",
            MetricType::Gauge,
            |_, p| p.info.lifecycle.as_ref()?.ready.map(flag),
        )?;
        fn health(p: &ProcSample) -> Option<&str> {
            p.info.lifecycle.as_ref().filter(|_| p.has_health_check).map(|l| l.health.as_str())
        }
        self.per_process(
            enc,
            "supervisord_process_healthy",
            "1 while the process is RUNNING and its last health_check passed (processes with a health_check)",
            MetricType::Gauge,
            |_, p| health(p).map(|h| flag(h == "healthy")),
        )?;
        self.per_process(
            enc,
            "supervisord_process_health_check_failures",
            "Failed health_check attempts (processes with a health_check)",
            MetricType::Counter,
            |_, p| health(p).map(|_| p.stats.health_failed() as f64),
        )
    }

    fn usage(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.per_process(
            enc,
            "supervisord_process_cpu_seconds",
            "User and system CPU time of the running process (not of its children)",
            MetricType::Counter,
            |i, _| self.usage.get(i).copied().flatten().map(|u| u.cpu_seconds),
        )?;
        self.per_process(
            enc,
            "supervisord_process_resident_memory_bytes",
            "Resident memory of the running process",
            MetricType::Gauge,
            |i, _| self.usage.get(i).copied().flatten().map(|u| u.resident_bytes as f64),
        )?;
        for (name, help, dropped) in [
            ("supervisord_process_output_bytes", "Output bytes written to the log file", false),
            (
                "supervisord_process_output_dropped_bytes",
                "Output bytes lost because writing the log file failed",
                true,
            ),
        ] {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for p in &self.snapshot.procs {
                for (channel, c) in ["stdout", "stderr"].into_iter().zip(&p.output) {
                    let v = if dropped { c.dropped() } else { c.written() };
                    let l = [labels(p)[0], labels(p)[1], ("channel", channel)];
                    counter(&mut m, &l, v as f64)?;
                }
            }
        }
        let mut m = enc.encode_descriptor(
            "supervisord_listener_buffer_overflows",
            "Events an event listener pool dropped because its buffer was full",
            None,
            MetricType::Counter,
        )?;
        for (pool, n) in &self.snapshot.pool_overflows {
            counter(&mut m, &[("pool", pool.as_str())], *n as f64)?;
        }
        Ok(())
    }

    fn daemon(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let none: [(&str, &str); 0] = [];
        let mut one = |name: &str, help: &str, kind: MetricType, v: Option<f64>| {
            let Some(v) = v else { return Ok(()) };
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => counter(&mut m, &none, v),
                _ => gauge(&mut m, &none, v),
            }
        };
        one(
            "supervisord_state",
            "The daemon's state: 1 RUNNING, 0 RESTARTING, -1 SHUTDOWN",
            MetricType::Gauge,
            Some(self.snapshot.state.code() as f64),
        )?;
        one(
            "supervisord_autorecovery_enabled",
            "1 while automatic restarts are allowed",
            MetricType::Gauge,
            Some(if self.snapshot.autorecovery { 1.0 } else { 0.0 }),
        )?;
        let (u, start) = (self.daemon.usage, self.daemon.start_time);
        one(
            "supervisord_uptime_seconds",
            "Seconds since the daemon started",
            MetricType::Gauge,
            start.map(|s| (self.now - s).max(0.0)),
        )?;
        one(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            MetricType::Counter,
            u.map(|u| u.cpu_seconds),
        )?;
        one(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            MetricType::Gauge,
            u.map(|u| u.resident_bytes as f64),
        )?;
        one(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            MetricType::Gauge,
            start,
        )?;
        one(
            "process_open_fds",
            "Number of open file descriptors",
            MetricType::Gauge,
            self.daemon.open_fds.map(|n| n as f64),
        )?;
        one(
            "process_max_fds",
            "Maximum number of open file descriptors",
            MetricType::Gauge,
            self.daemon.max_fds.map(|n| n as f64),
        )
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.compatible(&mut enc)?;
        self.lifecycle(&mut enc)?;
        self.usage(&mut enc)?;
        self.daemon(&mut enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::{DaemonState, ProcessInfo};

    fn sample_proc(i: usize) -> ProcSample {
        ProcSample {
            info: ProcessInfo {
                name: format!("p{i:03}"),
                group: "g".into(),
                start: 1_700_000_000,
                stop: 0,
                now: 1_700_000_100,
                state: ProcessState::Running,
                spawnerr: String::new(),
                exitstatus: 0,
                stdout_logfile: String::new(),
                stderr_logfile: String::new(),
                pid: 1000 + i as i64,
                description: String::new(),
                last_exit: None,
                lifecycle: None,
            },
            autostart: true,
            has_health_check: false,
            completed: false,
            stats: Default::default(),
            backoff_seconds: 0.5,
            output: Default::default(),
        }
    }

    fn scrape(n: usize) -> Scrape {
        Scrape {
            snapshot: Snapshot {
                state: DaemonState::Running,
                procs: (0..n).map(sample_proc).collect(),
                pool_overflows: vec![("lst".into(), 3)],
                autorecovery: true,
            },
            usage: (0..n)
                .map(|_| Some(Usage { cpu_seconds: 1.25, resident_bytes: 4096 }))
                .collect(),
            daemon: SelfUsage {
                usage: None,
                start_time: None,
                open_fds: Some(12),
                max_fds: Some(1024),
            },
            now: 1.7e9,
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_labels_are_escaped() {
        let mut s = scrape(2);
        s.snapshot.procs[1].info.name = "we\"ird\\name".into();
        let text = render(s);
        assert!(text.contains("# TYPE node_supervisord_up gauge\n"));
        assert!(text.contains("node_supervisord_up{name=\"p000\",group=\"g\"} 1\n"), "{text}");
        assert!(text.contains("name=\"we\\\"ird\\\\name\""), "{text}");
        assert!(
            text.contains(
                "supervisord_process_cpu_seconds_total{name=\"p000\",group=\"g\"} 1.25\n"
            )
        );
        assert!(text.contains("supervisord_listener_buffer_overflows_total{pool=\"lst\"} 3\n"));
        assert!(text.contains("process_open_fds 12\n"));
        // No usage of our own process: those families are left out, not zero.
        assert!(!text.contains("\nprocess_cpu_seconds_total"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(
                text.contains(&format!("# TYPE {name} "))
                    || text.contains(&format!("# TYPE {} ", name.trim_end_matches("_total"))),
                "{name} has no TYPE"
            );
        }
    }
}
