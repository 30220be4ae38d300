//! Prometheus metrics of the operator: its own (`ember_operator_*`) and kubeflow
//! spark-operator's application metrics under kubeflow's names (`spark_application_*`,
//! with a `namespace` label), so dashboards and alerts written for kubeflow keep working.
//! Counters carry OpenMetrics' `_total` suffix.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crd::{AppState, SparkApplicationStatus};
use crate::state::Decision;

/// Buckets (seconds) of the start latency and run time histograms: 1 s to 4 h.
const RUN_BUCKETS: [f64; 12] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0];

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

/// Labels of kubeflow's application metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// The application's namespace.
    pub namespace: String,
}

type ByNamespace<M> = Family<NamespaceLabels, M>;
type HistogramByNamespace = Family<NamespaceLabels, Histogram, fn() -> Histogram>;

/// What one reconcile's decision means for kubeflow's application metrics, read from the
/// transitions it records ([`Decision::notes`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A driver was submitted; `first` for the application's first submission.
    Submitted {
        /// The application's first submission.
        first: bool,
    },
    /// The API server refused a submission.
    SubmissionFailed,
    /// The driver started running, `latency` seconds after its submission.
    Started {
        /// Seconds from submission to running.
        latency: Option<f64>,
    },
    /// A run ended with success after `seconds` (submission to end).
    Succeeded {
        /// Run time in seconds.
        seconds: Option<f64>,
    },
    /// A run failed after `seconds` (submission to end).
    Failed {
        /// Run time in seconds.
        seconds: Option<f64>,
    },
}

/// The [`RunEvent`]s of a decision, given the time it was made.
pub fn run_events(decision: &Decision, now: jiff::Timestamp) -> Vec<RunEvent> {
    let status: &SparkApplicationStatus = &decision.status;
    let submitted = status.last_submission_attempt_time.as_ref().map(|t| t.0);
    let since_submission = |end: Option<jiff::Timestamp>| {
        let (start, end) = (submitted?, end?);
        Some(end.duration_since(start).as_secs_f64().max(0.0))
    };
    let ended = status.termination_time.as_ref().map(|t| t.0);
    decision
        .notes
        .iter()
        .filter_map(|note| match note.reason.as_str() {
            // The first submission that was not refused (a refused one records no
            // SparkApplicationSubmitted).
            "SparkApplicationSubmitted" => {
                Some(RunEvent::Submitted { first: status.submission_attempts - status.submission_failures == 1 })
            }
            "SubmissionFailed" | "SparkApplicationSubmissionFailed" => Some(RunEvent::SubmissionFailed),
            "SparkApplicationRunning" => Some(RunEvent::Started { latency: since_submission(Some(now)) }),
            "SparkApplicationCompleted" => Some(RunEvent::Succeeded { seconds: since_submission(ended) }),
            "SparkApplicationFailed" | "SparkApplicationRunFailed" if submitted.is_some() => {
                Some(RunEvent::Failed { seconds: since_submission(ended) })
            }
            _ => None,
        })
        .collect()
}

/// Labels of the applications-by-state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// Application state (`NEW` for the empty state).
    pub state: String,
}

/// Labels of the reconcile error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Error kind.
    pub error: String,
}

/// Labels of the API request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// What the operator did: `list_pods`, `apply_pod`, `patch_status`, ...
    pub operation: String,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Applications by state, refreshed from the controllers' caches at each scrape.
    pub applications: Family<StateLabels, Gauge>,
    /// Reconcile durations in seconds.
    pub reconcile_duration: Histogram,
    /// Reconciles that ended in an error, by kind.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Kubernetes API requests made by reconciles, by operation.
    pub api_requests: Family<RequestLabels, Counter>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    /// kubeflow's `spark_application_count`: applications submitted at least once.
    pub app_count: ByNamespace<Counter>,
    /// kubeflow's `spark_application_submit_count`: driver submissions (reruns included).
    pub app_submit_count: ByNamespace<Counter>,
    /// kubeflow's `spark_application_failed_submission_count`.
    pub app_failed_submission_count: ByNamespace<Counter>,
    /// kubeflow's `spark_application_running_count`, from the controllers' caches at
    /// each scrape.
    pub app_running_count: ByNamespace<Gauge>,
    /// kubeflow's `spark_application_success_count`: runs that completed.
    pub app_success_count: ByNamespace<Counter>,
    /// kubeflow's `spark_application_failure_count`: runs that failed.
    pub app_failure_count: ByNamespace<Counter>,
    /// kubeflow's `spark_application_start_latency_seconds`: submission to driver running.
    pub app_start_latency: HistogramByNamespace,
    /// kubeflow's `spark_application_success_execution_time_seconds`.
    pub app_success_execution_time: HistogramByNamespace,
    /// kubeflow's `spark_application_failure_execution_time_seconds`.
    pub app_failure_execution_time: HistogramByNamespace,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The label value of a state in metrics.
pub fn state_label(state: AppState) -> &'static str {
    match state {
        AppState::New => "NEW",
        other => other.as_str(),
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let app_count = ByNamespace::<Counter>::default();
        let app_submit_count = ByNamespace::<Counter>::default();
        let app_failed_submission_count = ByNamespace::<Counter>::default();
        let app_running_count = ByNamespace::<Gauge>::default();
        let app_success_count = ByNamespace::<Counter>::default();
        let app_failure_count = ByNamespace::<Counter>::default();
        let app_start_latency = HistogramByNamespace::new_with_constructor(run_histogram as fn() -> Histogram);
        let app_success_execution_time = HistogramByNamespace::new_with_constructor(run_histogram as fn() -> Histogram);
        let app_failure_execution_time = HistogramByNamespace::new_with_constructor(run_histogram as fn() -> Histogram);
        root.register("spark_application_count", "SparkApplications submitted at least once", app_count.clone());
        root.register(
            "spark_application_submit_count",
            "Driver submissions, reruns included",
            app_submit_count.clone(),
        );
        root.register(
            "spark_application_failed_submission_count",
            "Submissions the API server refused",
            app_failed_submission_count.clone(),
        );
        root.register("spark_application_running_count", "SparkApplications running", app_running_count.clone());
        root.register("spark_application_success_count", "Runs that completed", app_success_count.clone());
        root.register("spark_application_failure_count", "Runs that failed", app_failure_count.clone());
        root.register(
            "spark_application_start_latency_seconds",
            "Seconds from a driver's submission to its running",
            app_start_latency.clone(),
        );
        root.register(
            "spark_application_success_execution_time_seconds",
            "Seconds from submission to the end of runs that completed",
            app_success_execution_time.clone(),
        );
        root.register(
            "spark_application_failure_execution_time_seconds",
            "Seconds from submission to the end of runs that failed",
            app_failure_execution_time.clone(),
        );
        let registry = root.sub_registry_with_prefix("ember_operator");
        let applications = Family::<StateLabels, Gauge>::default();
        let reconcile_duration = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconciles = Counter::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register("applications", "SparkApplications by state", applications.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile of a SparkApplication",
            reconcile_duration.clone(),
        );
        registry.register("reconcile_errors", "Reconciles that failed, by error kind", reconcile_errors.clone());
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "api_requests",
            "Kubernetes API requests made by reconciles, by operation",
            api_requests.clone(),
        );
        registry.register("leader", "1 while this replica holds the leader Lease", leader.clone());
        Metrics {
            registry: Mutex::new(root),
            applications,
            reconcile_duration,
            reconcile_errors,
            reconciles,
            api_requests,
            leader,
            app_count,
            app_submit_count,
            app_failed_submission_count,
            app_running_count,
            app_success_count,
            app_failure_count,
            app_start_latency,
            app_success_execution_time,
            app_failure_execution_time,
        }
    }

    /// Records kubeflow's application metrics for a decision of an application in
    /// `namespace` whose status was written, made at `now`.
    pub fn record_decision(&self, namespace: &str, decision: &Decision, now: jiff::Timestamp) {
        let labels = NamespaceLabels { namespace: namespace.to_string() };
        for event in run_events(decision, now) {
            match event {
                RunEvent::Submitted { first } => {
                    if first {
                        self.app_count.get_or_create(&labels).inc();
                    }
                    self.app_submit_count.get_or_create(&labels).inc();
                }
                RunEvent::SubmissionFailed => {
                    self.app_failed_submission_count.get_or_create(&labels).inc();
                }
                RunEvent::Started { latency } => {
                    if let Some(latency) = latency {
                        self.app_start_latency.get_or_create(&labels).observe(latency);
                    }
                }
                RunEvent::Succeeded { seconds } => {
                    self.app_success_count.get_or_create(&labels).inc();
                    if let Some(seconds) = seconds {
                        self.app_success_execution_time.get_or_create(&labels).observe(seconds);
                    }
                }
                RunEvent::Failed { seconds } => {
                    self.app_failure_count.get_or_create(&labels).inc();
                    if let Some(seconds) = seconds {
                        self.app_failure_execution_time.get_or_create(&labels).observe(seconds);
                    }
                }
            }
        }
    }

    /// Counts one API request of `operation`.
    pub fn api_request(&self, operation: &str) {
        self.api_requests.get_or_create(&RequestLabels { operation: operation.to_string() }).inc();
    }

    /// Counts one failed reconcile.
    pub fn reconcile_error(&self, kind: &str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { error: kind.to_string() }).inc();
    }

    /// Sets the applications-by-state gauge and kubeflow's running count by namespace
    /// from the current `(namespace, state)` of every application.
    pub fn set_application_states(&self, states: impl IntoIterator<Item = (String, AppState)>) {
        let mut counts = std::collections::HashMap::new();
        let mut running = std::collections::BTreeMap::new();
        for (namespace, state) in states {
            *counts.entry(state).or_insert(0i64) += 1;
            *running.entry(namespace).or_insert(0i64) += i64::from(state == AppState::Running);
        }
        // Namespaces seen before and without applications now go to 0.
        self.app_running_count.clear();
        for (namespace, n) in running {
            self.app_running_count.get_or_create(&NamespaceLabels { namespace }).set(n);
        }
        for state in AppState::ALL {
            self.applications
                .get_or_create(&StateLabels { state: state_label(state).to_string() })
                .set(counts.get(&state).copied().unwrap_or(0));
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_counted_with_zeros_for_absent_states() {
        let m = Metrics::new();
        m.set_application_states([
            ("a".to_string(), AppState::Running),
            ("b".to_string(), AppState::Running),
            ("b".to_string(), AppState::Completed),
        ]);
        m.reconcile_error("kube");
        let text = m.encode();
        assert!(text.contains(r#"ember_operator_applications{state="RUNNING"} 2"#), "{text}");
        assert!(text.contains(r#"ember_operator_applications{state="COMPLETED"} 1"#));
        assert!(text.contains(r#"ember_operator_applications{state="FAILED"} 0"#));
        assert!(text.contains(r#"ember_operator_reconcile_errors_total{error="kube"} 1"#));
        assert!(text.contains("ember_operator_reconcile_duration_seconds_bucket"));
        assert!(text.contains(r#"spark_application_running_count{namespace="b"} 1"#), "{text}");
    }
}
