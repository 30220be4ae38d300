//! Prometheus metrics of the operator.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crd::AppState;

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
        let mut registry = Registry::with_prefix("ember_operator");
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
            registry: Mutex::new(registry),
            applications,
            reconcile_duration,
            reconcile_errors,
            reconciles,
            api_requests,
            leader,
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

    /// Sets the applications-by-state gauge from a list of current states.
    pub fn set_application_states(&self, states: impl IntoIterator<Item = AppState>) {
        let mut counts = std::collections::HashMap::new();
        for state in states {
            *counts.entry(state).or_insert(0i64) += 1;
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
        m.set_application_states([AppState::Running, AppState::Running, AppState::Completed]);
        m.reconcile_error("kube");
        let text = m.encode();
        assert!(text.contains(r#"ember_operator_applications{state="RUNNING"} 2"#), "{text}");
        assert!(text.contains(r#"ember_operator_applications{state="COMPLETED"} 1"#));
        assert!(text.contains(r#"ember_operator_applications{state="FAILED"} 0"#));
        assert!(text.contains(r#"ember_operator_reconcile_errors_total{error="kube"} 1"#));
        assert!(text.contains("ember_operator_reconcile_duration_seconds_bucket"));
    }
}
