//! The driver's Prometheus metrics (prometheus-client), kept by a listener on the
//! bus and served by the web UI on `/metrics`. Names follow Prometheus
//! conventions: `ember_` prefix, base units (seconds, bytes), `_total` on counters.

use crate::listener::{Event, Listener, TaskStatus};
use ember_executor::metrics::{Outcome, ShuffleCounters, task_outcome_counters};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

type Source = Box<dyn Fn() -> u64 + Send + Sync>;

/// The driver's metrics and their registry.
pub struct DriverMetrics {
    registry: Registry,
    jobs: Family<Outcome, Counter>,
    stages: Family<Outcome, Counter>,
    tasks: Family<Outcome, Counter>,
    /// `tasks` for success, failed, killed: looked up once, not per task.
    task_outcomes: [Counter; 3],
    task_duration: Histogram,
    shuffle: ShuffleCounters,
    speculative_tasks: Counter,
    jobs_active: Gauge,
    executors_alive: Gauge,
    executors_removed: Counter,
    broadcast_uploaded: Counter,
    streaming: StreamingMetrics,
    /// Reads the driver's broadcast bytes uploaded so far (set by the context) and
    /// the value last added to the counter.
    broadcast_source: Mutex<(Option<Source>, u64)>,
}

impl Default for DriverMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DriverMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ember");
        let m = Self {
            jobs: Family::default(),
            stages: Family::default(),
            tasks: Family::default(),
            task_outcomes: Default::default(),
            task_duration: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 4.0, 10)),
            shuffle: ShuffleCounters::default(),
            speculative_tasks: Counter::default(),
            jobs_active: Gauge::default(),
            executors_alive: Gauge::default(),
            executors_removed: Counter::default(),
            broadcast_uploaded: Counter::default(),
            streaming: StreamingMetrics::default(),
            broadcast_source: Mutex::new((None, 0)),
            registry: Registry::default(),
        };
        registry.register("jobs", "Jobs ended, by outcome", m.jobs.clone());
        registry.register("jobs_active", "Jobs running now", m.jobs_active.clone());
        registry.register("stages", "Stage attempts ended, by outcome", m.stages.clone());
        registry.register("tasks", "Task attempts ended, by outcome", m.tasks.clone());
        registry.register(
            "task_duration_seconds",
            "Duration of ended task attempts, launch to result, as the driver saw it",
            m.task_duration.clone(),
        );
        m.shuffle.register(&mut registry);
        registry.register(
            "speculative_tasks",
            "Speculative copies of slow tasks launched",
            m.speculative_tasks.clone(),
        );
        registry.register("executors_alive", "Executors registered now", m.executors_alive.clone());
        registry.register("executors_removed", "Executors lost or stopped", m.executors_removed.clone());
        registry.register(
            "broadcast_uploaded_bytes",
            "Broadcast and file piece bytes the driver uploaded",
            m.broadcast_uploaded.clone(),
        );
        m.streaming.register(&mut registry);
        let task_outcomes = task_outcome_counters(&m.tasks);
        Self { registry, task_outcomes, ..m }
    }

    /// Where `broadcast_uploaded_bytes` reads the driver's upload total at each scrape.
    pub fn set_broadcast_source(&self, source: impl Fn() -> u64 + Send + Sync + 'static) {
        self.broadcast_source.lock().0 = Some(Box::new(source));
    }

    /// The listener that keeps these metrics current.
    pub fn listener(self: &Arc<Self>) -> Box<dyn Listener> {
        Box::new(MetricsListener(self.clone()))
    }

    fn count(family: &Family<Outcome, Counter>, outcome: &str) {
        family.get_or_create(&Outcome { outcome: outcome.to_string() }).inc();
    }

    fn on_event(&self, event: &Event) {
        match event {
            Event::JobStart(_) => {
                self.jobs_active.inc();
            }
            Event::JobEnd(e) => {
                self.jobs_active.dec();
                Self::count(&self.jobs, if e.succeeded { "succeeded" } else { "failed" });
            }
            Event::StageCompleted(e) => {
                Self::count(&self.stages, if e.failure.is_none() { "completed" } else { "failed" });
            }
            Event::TaskStart(e) if e.task.speculative => {
                self.speculative_tasks.inc();
            }
            Event::TaskEnd(e) => {
                let outcome = match e.status {
                    TaskStatus::Success => 0,
                    TaskStatus::Failed => 1,
                    TaskStatus::Killed => 2,
                };
                self.task_outcomes[outcome].inc();
                let m = &e.metrics;
                self.task_duration.observe(m.duration_ms as f64 / 1000.0);
                self.shuffle.add(
                    (m.shuffle_read_bytes, m.shuffle_read_records),
                    (m.shuffle_write_bytes, m.shuffle_write_records),
                    m.spill_bytes,
                );
            }
            Event::ExecutorAdded(_) => {
                self.executors_alive.inc();
            }
            Event::ExecutorRemoved(_) => {
                self.executors_alive.dec();
                self.executors_removed.inc();
            }
            Event::StreamingBatchSubmitted(_) => {
                self.streaming.active.inc();
            }
            Event::StreamingBatchCompleted(b) => self.streaming.completed(b),
            _ => {}
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        {
            let mut source = self.broadcast_source.lock();
            if let Some(read) = &source.0 {
                let now = read();
                self.broadcast_uploaded.inc_by(now.saturating_sub(source.1));
                source.1 = source.1.max(now);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Streaming batches (Spark's streaming source: `lastCompletedBatch_schedulingDelay` and the like, as histograms).
struct StreamingMetrics {
    batches: Counter,
    active: Gauge,
    input_records: Counter,
    scheduling_delay: Histogram,
    processing_time: Histogram,
    total_delay: Histogram,
}

impl Default for StreamingMetrics {
    fn default() -> Self {
        // 10 ms to ~45 min by factors of 2.5: a 100 ms batch and a late 10 s one both land in range.
        let buckets = || Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.5, 12));
        Self {
            batches: Counter::default(),
            active: Gauge::default(),
            input_records: Counter::default(),
            scheduling_delay: buckets(),
            processing_time: buckets(),
            total_delay: buckets(),
        }
    }
}

impl StreamingMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register("streaming_batches", "Streaming batches completed", self.batches.clone());
        registry.register("streaming_batches_active", "Streaming batches waiting or running", self.active.clone());
        registry.register(
            "streaming_input_records",
            "Records receivers delivered to completed streaming batches",
            self.input_records.clone(),
        );
        registry.register(
            "streaming_scheduling_delay_seconds",
            "Time a streaming batch waited for earlier ones (processing start - submission)",
            self.scheduling_delay.clone(),
        );
        registry.register(
            "streaming_processing_time_seconds",
            "Time a streaming batch's jobs took",
            self.processing_time.clone(),
        );
        registry.register(
            "streaming_total_delay_seconds",
            "From a streaming batch's time to the end of its jobs",
            self.total_delay.clone(),
        );
    }

    fn completed(&self, b: &crate::listener::StreamingBatch) {
        self.batches.inc();
        self.active.dec();
        self.input_records.inc_by(b.input_records);
        let seconds = |ms: Option<u64>| ms.unwrap_or(0) as f64 / 1000.0;
        self.scheduling_delay.observe(seconds(b.scheduling_delay_ms()));
        self.processing_time.observe(seconds(b.processing_time_ms()));
        self.total_delay.observe(seconds(b.total_delay_ms()));
    }
}

struct MetricsListener(Arc<DriverMetrics>);

impl Listener for MetricsListener {
    fn name(&self) -> &'static str {
        "metrics"
    }
    fn on_event(&mut self, event: &Event) {
        self.0.on_event(event);
    }
}
