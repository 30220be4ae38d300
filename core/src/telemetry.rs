//! OpenTelemetry traces of an application: spans for the application, each job,
//! each stage attempt and each task attempt, exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the OpenTelemetry SDK's variable, e.g.
//! `http://collector:4317`). Without it nothing here runs: no exporter, no thread,
//! no span beyond the ones the logs already had.
//!
//! Driver and executors are the same binary and both install the layer built here
//! (`ember::logging::init`). The driver records the application, job and stage
//! spans; a task launch carries the W3C `traceparent` of its stage attempt's span
//! (`TaskDescription::trace_parent`, the W3C Trace Context header's value) and the
//! executor's task span takes it as its parent, so one trace covers every process
//! of an application. Only spans of [`TARGET`] are exported (log events are not).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The `tracing` target of the spans that are exported.
pub const TARGET: &str = "ember::trace";

/// The variable naming the OTLP/gRPC endpoint (OpenTelemetry's own).
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The W3C Trace Context header carrying a span's identity.
const TRACEPARENT: &str = "traceparent";

/// How long one export may take, and how long a flush waits for it.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The process's side of the application's traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Records the application, job and stage spans.
    Driver,
    /// Records task spans under the driver's stage spans.
    Executor,
}

impl Role {
    fn service_name(self) -> &'static str {
        match self {
            Role::Driver => "ember-driver",
            Role::Executor => "ember-executor",
        }
    }
}

/// Errors setting up span export.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter's runtime (one thread driving its gRPC channel) did not start.
    #[error("starting the OTLP exporter's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The OTLP exporter could not be built (a malformed endpoint, for example).
    #[error("building the OTLP span exporter for {endpoint}: {source}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// The SDK's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// This process already set span export up.
    #[error("OTLP span export is already set up in this process")]
    AlreadySetUp,
}

struct Export {
    provider: SdkTracerProvider,
    /// Drives the exporter's gRPC channel; lives as long as the process.
    _runtime: tokio::runtime::Runtime,
}

static EXPORT: OnceLock<Export> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The endpoint of `OTEL_EXPORTER_OTLP_ENDPOINT`, when set and not blank.
pub fn endpoint_from_env() -> Option<String> {
    std::env::var(ENDPOINT_ENV).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A layer exporting the spans of [`TARGET`] to `endpoint` (OTLP over gRPC, batched).
/// The resource's `service.name` is `OTEL_SERVICE_NAME` when set, else
/// `ember-driver` or `ember-executor`; `ember.role` and, on executors,
/// `ember.executor.id` (from `EMBER_EXECUTOR_ID`) are added. Call [`activate`]
/// once the subscriber holding the layer is installed, or [`shutdown`] if it was not.
/// Errors: a second set-up in one process, the exporter's thread, the endpoint.
pub fn otlp_layer<S>(endpoint: &str, role: Role) -> Result<Box<dyn Layer<S> + Send + Sync>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if EXPORT.get().is_some() {
        return Err(TelemetryError::AlreadySetUp);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ember-otlp")
        .enable_all()
        .build()
        .map_err(TelemetryError::Runtime)?;
    // The exporter's channel is created in, and driven by, that runtime; the batch
    // processor's own thread sends from it.
    let exporter = {
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|source| TelemetryError::Exporter { endpoint: endpoint.to_string(), source })?
    };
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "ember.role",
        match role {
            Role::Driver => "driver",
            Role::Executor => "executor",
        },
    ));
    if std::env::var("OTEL_SERVICE_NAME").map(|v| v.trim().is_empty()).unwrap_or(true) {
        resource = resource.with_service_name(role.service_name());
    }
    if role == Role::Executor
        && let Ok(id) = std::env::var("EMBER_EXECUTOR_ID")
    {
        resource = resource.with_attribute(opentelemetry::KeyValue::new("ember.executor.id", id));
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    let tracer = provider.tracer("ember");
    if EXPORT.set(Export { provider, _runtime: runtime }).is_err() {
        return Err(TelemetryError::AlreadySetUp);
    }
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_filter(tracing_subscriber::filter::Targets::new().with_target(TARGET, tracing::Level::INFO));
    Ok(Box::new(layer))
}

/// Turns span recording on: the layer of [`otlp_layer`] is installed.
pub fn activate() {
    if EXPORT.get().is_some() {
        ENABLED.store(true, Ordering::Release);
    }
}

/// Whether spans are exported: only then do the engine's trace-only spans exist.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of `span` (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`),
/// None when traces are off or the span is not recorded.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_none() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` (not yet entered) a child of the span a `traceparent` names.
/// False when traces are off, the value does not parse, or the span is not recorded.
pub fn set_parent(span: &tracing::Span, traceparent: &str) -> bool {
    if !enabled() || span.is_none() {
        return false;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if !cx.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(cx).is_ok()
}

/// Exports the spans ended so far; waits at most the SDK's flush timeout (5 s).
/// Does nothing when traces are off.
pub fn flush() {
    if let Some(export) = EXPORT.get()
        && let Err(e) = export.provider.force_flush()
    {
        tracing::warn!(error = %e, "exporting the last spans failed");
    }
}

/// Exports the spans ended so far and stops exporting, waiting at most `timeout`
/// (before a process exits). Does nothing when traces are off.
pub fn shutdown(timeout: Duration) {
    ENABLED.store(false, Ordering::Release);
    if let Some(export) = EXPORT.get()
        && let Err(e) = export.provider.shutdown_with_timeout(timeout)
    {
        tracing::warn!(error = %e, "exporting the last spans failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_propagated_when_traces_are_off() {
        let span = tracing::info_span!(target: TARGET, "stage");
        assert_eq!(traceparent(&span), None);
        assert!(!set_parent(&span, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    }
}
