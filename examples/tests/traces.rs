//! OTLP traces: a two-stage job (reduceByKey, then an aggregate) on `local-cluster`
//! with real executor processes exports its spans to an OTLP/gRPC receiver run by
//! the test (the collector's `TraceService`), and they form one tree: the
//! application, its job, the job's two stages, and each stage's tasks as the
//! executors recorded them.

mod support;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Proc;

/// A span as received, with the `service.name` of the process that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }
    fn id(&self) -> &[u8] {
        &self.span.span_id
    }
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// The in-test collector: keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service =
                resource_spans.resource.as_ref().and_then(|r| attr(&r.attributes, "service.name")).unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| Received { service: service.clone(), span }));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Serves the collector on 127.0.0.1 (any port) until the runtime is dropped.
fn start_collector(runtime: &tokio::runtime::Runtime, collector: Collector) -> std::net::SocketAddr {
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let address = listener.local_addr().expect("address");
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    address
}

fn named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Received> {
    spans.iter().filter(|s| s.span.name == name).collect()
}

/// The tasks every stage span announces (`num_tasks`) have all arrived.
fn complete(spans: &[Received]) -> bool {
    let stages = named(spans, "stage");
    named(spans, "application").len() == 1
        && stages.len() == 2
        && stages.iter().all(|stage| {
            let want: usize = stage.attr("num_tasks").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
            named(spans, "task").iter().filter(|t| t.span.parent_span_id == stage.id()).count() >= want
        })
}

#[test]
fn a_two_stage_job_is_one_trace_from_the_application_to_the_executors_tasks() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let collector = Collector::default();
    let address = start_collector(&runtime, collector.clone());

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF")
        .env_remove("OTEL_SERVICE_NAME")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{address}"))
        .args(["--master", "local-cluster[2,1,256]", "--conf", "spark.ui.enabled=false"])
        .args(["reduce-by-key", "--pairs", "20000", "--keys", "50", "--partitions", "4"]);
    let result = Proc::spawn(cmd).result();
    assert_eq!(result["distinct_keys"], 50, "{result}");

    // The driver flushes when its context stops, executors before they exit, and
    // the driver waits for them: what is missing now is only in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.spans.lock().unwrap().clone();
        if complete(&spans) {
            break spans;
        }
        assert!(Instant::now() < deadline, "the span tree never completed; received:\n{spans:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };

    let traces: BTreeSet<&[u8]> = spans.iter().map(|s| s.span.trace_id.as_slice()).collect();
    assert_eq!(traces.len(), 1, "every span is in one trace: {spans:#?}");

    let app = named(&spans, "application");
    let app = app[0];
    assert!(app.span.parent_span_id.is_empty(), "the application's span is the root");
    assert_eq!(app.service, "ember-driver");
    assert!(app.attr("app_id").is_some_and(|id| id.starts_with("app-")), "{app:?}");

    let jobs = named(&spans, "job");
    assert_eq!(jobs.len(), 1, "one job: {jobs:#?}");
    let job = jobs[0];
    assert_eq!(job.span.parent_span_id, app.id());
    assert_eq!(job.service, "ember-driver");
    let job_id = job.attr("job_id").expect("job_id");

    let stages = named(&spans, "stage");
    let kinds: BTreeSet<String> = stages.iter().filter_map(|s| s.attr("kind")).collect();
    assert_eq!(kinds, BTreeSet::from(["ResultStage".to_string(), "ShuffleMapStage".to_string()]));
    let mut stage_by_span: HashMap<&[u8], &Received> = HashMap::new();
    for stage in &stages {
        assert_eq!(stage.span.parent_span_id, job.id(), "a stage's parent is its job: {stage:?}");
        assert_eq!(stage.service, "ember-driver");
        assert_eq!(stage.attr("job_id").as_ref(), Some(&job_id));
        assert!(stage.attr("stage_id").is_some() && stage.attr("stage_attempt").as_deref() == Some("0"));
        stage_by_span.insert(stage.id(), stage);
    }

    let tasks = named(&spans, "task");
    let mut executors = BTreeSet::new();
    for task in &tasks {
        let stage = stage_by_span
            .get(task.span.parent_span_id.as_slice())
            .unwrap_or_else(|| panic!("a task's parent is a stage: {task:?}"));
        assert_eq!(task.service, "ember-executor", "task spans are recorded on the executors");
        assert_eq!(task.attr("stage_id"), stage.attr("stage_id"));
        assert_eq!(task.attr("job_id").as_ref(), Some(&job_id));
        assert!(task.attr("task_id").is_some() && task.attr("partition").is_some());
        assert!(task.span.start_time_unix_nano >= stage.span.start_time_unix_nano, "a task starts after its stage");
        assert!(task.span.end_time_unix_nano <= job.span.end_time_unix_nano, "a task ends before its job");
        executors.insert(task.attr("executor_id").expect("executor_id"));
    }
    assert_eq!(executors, BTreeSet::from(["1".to_string(), "2".to_string()]), "both executors ran tasks");
    for stage in &stages {
        let partitions: BTreeSet<String> =
            tasks.iter().filter(|t| t.span.parent_span_id == stage.id()).filter_map(|t| t.attr("partition")).collect();
        assert_eq!(partitions.len().to_string(), stage.attr("num_tasks").expect("num_tasks"), "{stage:?}");
    }
}
