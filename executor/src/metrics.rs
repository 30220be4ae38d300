//! An executor's Prometheus metrics (prometheus-client) on `/metrics`, served on
//! `ember.executor.metrics.port` (default 0: any free port, announced on stderr
//! as `executor <id>: metrics at http://<address>/metrics`; set a fixed port for
//! scraping in Kubernetes). Names follow Prometheus conventions:
//! `ember_executor_` prefix, base units, `_total` on counters.

use ember_core::protocol::TaskOutcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The `outcome` label of ended jobs, stages and tasks (tasks: success, failed, killed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

/// The task counters of `family` for success, failed and killed, in that order:
/// looked up once, so counting a task allocates no label, and all three show
/// from the first scrape.
pub fn task_outcome_counters(family: &Family<Outcome, Counter>) -> [Counter; 3] {
    ["success", "failed", "killed"]
        .map(|outcome| family.get_or_create(&Outcome { outcome: outcome.to_string() }).clone())
}

/// Shuffle and spill counters of ended tasks, the same on the driver (from task
/// events) and on executors (from their own tasks): `shuffle_read_bytes_total`,
/// `shuffle_read_records_total`, `shuffle_write_bytes_total`,
/// `shuffle_write_records_total`, `spill_bytes_total` (bytes as stored: compressed).
#[derive(Clone, Default)]
pub struct ShuffleCounters {
    read_bytes: Counter,
    read_records: Counter,
    write_bytes: Counter,
    write_records: Counter,
    spill_bytes: Counter,
}

impl ShuffleCounters {
    /// Registers the five counters in `registry` (under its prefix).
    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            ("shuffle_read_bytes", "Shuffle bytes read by ended tasks", &self.read_bytes),
            ("shuffle_read_records", "Shuffle records read by ended tasks", &self.read_records),
            ("shuffle_write_bytes", "Shuffle bytes written by ended tasks", &self.write_bytes),
            ("shuffle_write_records", "Shuffle records written by ended tasks", &self.write_records),
            ("spill_bytes", "Bytes ended tasks spilled to disk", &self.spill_bytes),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
    }

    /// Adds one task's figures: shuffle read (bytes, records), written (bytes, records), spilled bytes.
    pub fn add(&self, read: (u64, u64), write: (u64, u64), spill_bytes: u64) {
        self.read_bytes.inc_by(read.0);
        self.read_records.inc_by(read.1);
        self.write_bytes.inc_by(write.0);
        self.write_records.inc_by(write.1);
        self.spill_bytes.inc_by(spill_bytes);
    }
}

/// Where the scrape reads values kept elsewhere (running tasks, broadcast uploads).
pub trait Gauges: Send + Sync {
    fn running_tasks(&self) -> usize;
    fn broadcast_bytes_uploaded(&self) -> u64;
}

/// The executor's metrics and their registry.
pub struct ExecutorMetrics {
    registry: Registry,
    tasks: Family<Outcome, Counter>,
    /// `tasks` for success, failed, killed: looked up once, not per task.
    task_outcomes: [Counter; 3],
    run_time: Histogram,
    shuffle: ShuffleCounters,
    running: Gauge,
    broadcast_uploaded: Gauge,
    gauges: Arc<dyn Gauges>,
}

impl ExecutorMetrics {
    /// Creates and registers every metric; `gauges` is read at each scrape.
    pub fn new(gauges: Arc<dyn Gauges>) -> Self {
        let mut registry = Registry::with_prefix("ember_executor");
        let m = Self {
            registry: Registry::default(),
            tasks: Family::default(),
            task_outcomes: Default::default(),
            run_time: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            shuffle: ShuffleCounters::default(),
            running: Gauge::default(),
            broadcast_uploaded: Gauge::default(),
            gauges,
        };
        registry.register("tasks", "Task attempts this executor ended, by outcome", m.tasks.clone());
        registry.register("tasks_running", "Task attempts running now", m.running.clone());
        registry.register("task_run_seconds", "Time ended task attempts ran here", m.run_time.clone());
        m.shuffle.register(&mut registry);
        registry.register(
            "broadcast_uploaded_bytes",
            "Broadcast and file piece bytes this executor served to peers",
            m.broadcast_uploaded.clone(),
        );
        let task_outcomes = task_outcome_counters(&m.tasks);
        Self { registry, task_outcomes, ..m }
    }

    /// Counts an ended task attempt.
    pub fn task_ended(&self, outcome: &TaskOutcome) {
        let (index, run_ms) = match outcome {
            TaskOutcome::Success { metrics, run_ms, .. } => {
                self.shuffle.add(
                    (metrics.shuffle_bytes_read, metrics.shuffle_records_read),
                    (metrics.shuffle_bytes_written, metrics.shuffle_records_written),
                    metrics.spill_bytes,
                );
                (0, Some(*run_ms))
            }
            TaskOutcome::Failed { run_ms, .. } => (1, Some(*run_ms)),
            TaskOutcome::Killed { .. } => (2, None),
        };
        self.task_outcomes[index].inc();
        if let Some(ms) = run_ms {
            self.run_time.observe(ms as f64 / 1000.0);
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        self.running.set(self.gauges.running_tasks() as i64);
        self.broadcast_uploaded.set(self.gauges.broadcast_bytes_uploaded() as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// `/logs/stderr?bytes=N`: the last N bytes (default 100 KiB, at most 1 MiB) of
/// this executor's stderr as text (see `crate::logs`); the header
/// `X-Ember-Log-Total-Bytes` says how much was written in all. 404 when stderr is
/// not captured, 400 for a malformed `bytes`.
fn log_tail(uri: &axum::http::Uri) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let wanted = uri.query().unwrap_or_default().split('&').find_map(|p| p.strip_prefix("bytes="));
    let n = match wanted.map(str::parse::<usize>) {
        None => crate::logs::DEFAULT_TAIL_BYTES,
        Some(Ok(n)) => n.min(crate::logs::LOG_TAIL_BYTES),
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "bytes must be a number of bytes\n").into_response(),
    };
    match crate::logs::tail(n) {
        Some((bytes, total)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::HeaderName::from_static("x-ember-log-total-bytes"), total.to_string()),
            ],
            String::from_utf8_lossy(&bytes).into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "this executor does not keep its log\n").into_response(),
    }
}

/// Serves `/metrics` and `/logs/stderr` on `listener` until the runtime ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<ExecutorMetrics>) {
    use axum::http::header;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.encode()) }
            }),
        )
        .route("/logs/stderr", axum::routing::get(|uri: axum::http::Uri| async move { log_tail(&uri) }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "executor metrics server stopped");
    }
}
