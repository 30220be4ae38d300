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

/// The `outcome` label of ended tasks: success, failed, killed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
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
    run_time: Histogram,
    shuffle_read_bytes: Counter,
    shuffle_read_records: Counter,
    shuffle_write_bytes: Counter,
    shuffle_write_records: Counter,
    spill_bytes: Counter,
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
            run_time: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            shuffle_read_bytes: Counter::default(),
            shuffle_read_records: Counter::default(),
            shuffle_write_bytes: Counter::default(),
            shuffle_write_records: Counter::default(),
            spill_bytes: Counter::default(),
            running: Gauge::default(),
            broadcast_uploaded: Gauge::default(),
            gauges,
        };
        registry.register("tasks", "Task attempts this executor ended, by outcome", m.tasks.clone());
        registry.register("tasks_running", "Task attempts running now", m.running.clone());
        registry.register("task_run_seconds", "Time ended task attempts ran here", m.run_time.clone());
        registry.register("shuffle_read_bytes", "Shuffle bytes read by successful tasks", m.shuffle_read_bytes.clone());
        registry.register(
            "shuffle_read_records",
            "Shuffle records read by successful tasks",
            m.shuffle_read_records.clone(),
        );
        registry.register(
            "shuffle_write_bytes",
            "Shuffle bytes written by successful tasks",
            m.shuffle_write_bytes.clone(),
        );
        registry.register(
            "shuffle_write_records",
            "Shuffle records written by successful tasks",
            m.shuffle_write_records.clone(),
        );
        registry.register("spill_bytes", "Bytes spilled to disk by successful tasks", m.spill_bytes.clone());
        registry.register(
            "broadcast_uploaded_bytes",
            "Broadcast and file piece bytes this executor served to peers",
            m.broadcast_uploaded.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts an ended task attempt.
    pub fn task_ended(&self, outcome: &TaskOutcome) {
        let (label, run_ms) = match outcome {
            TaskOutcome::Success { metrics, run_ms, .. } => {
                self.shuffle_read_bytes.inc_by(metrics.shuffle_bytes_read);
                self.shuffle_read_records.inc_by(metrics.shuffle_records_read);
                self.shuffle_write_bytes.inc_by(metrics.shuffle_bytes_written);
                self.shuffle_write_records.inc_by(metrics.shuffle_records_written);
                self.spill_bytes.inc_by(metrics.spill_bytes);
                ("success", Some(*run_ms))
            }
            TaskOutcome::Failed { run_ms, .. } => ("failed", Some(*run_ms)),
            TaskOutcome::Killed { .. } => ("killed", None),
        };
        self.tasks.get_or_create(&Outcome { outcome: label.to_string() }).inc();
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

/// Serves `/metrics` on `listener` until the runtime ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<ExecutorMetrics>) {
    use axum::http::header;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.encode()) }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "executor metrics server stopped");
    }
}
