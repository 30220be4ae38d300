//! The reconciler: observes an application's pods, runs the state machine
//! ([`crate::state::decide`]) and carries out its decision against the API server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as ControllerAction, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, field, info, info_span, warn};

use crate::builder::{self, CONTAINER_NAME, LABEL_EXECUTOR_ID, LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY};
use crate::crd::{SparkApplication, SparkApplicationStatus};
use crate::metrics::Metrics;
use crate::spec;
use crate::state::{self, Action, Decision, Observed, PodPhase, PodView, Settings, Termination};
use crate::{ui, ui_port};

/// Field manager name for server-side apply.
pub const FIELD_MANAGER: &str = "ember-operator";

/// Delay before retrying a reconcile that failed.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(10);

/// Errors of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API request failed.
    #[error("kubernetes API request {operation} failed: {source}")]
    Kube {
        /// What the request did.
        operation: &'static str,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The object has no namespace (the CRD is namespaced, so this is a broken object).
    #[error("SparkApplication {0} has no namespace")]
    MissingNamespace(String),
}

impl Error {
    /// Short kind for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { operation, .. } => operation,
            Error::MissingNamespace(_) => "missing_namespace",
        }
    }
}

/// Where reconciles get the time from; tests fix it.
#[derive(Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// A settable time.
    Fixed(Arc<Mutex<Timestamp>>),
}

impl Clock {
    /// The time now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Event recorder.
    pub recorder: Recorder,
    /// State machine settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Clock.
    pub clock: Clock,
}

impl Context {
    /// A context reporting events as `ember-operator` from `instance`.
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter { controller: FIELD_MANAGER.to_string(), instance };
        Context { recorder: Recorder::new(client.clone(), reporter), client, settings, metrics, clock: Clock::System }
    }
}

fn kube_err(operation: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { operation, source }
}

/// What the operator reports of a pod.
pub fn pod_view(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Unknown") => PodPhase::Unknown,
        _ => PodPhase::Pending,
    };
    let container =
        status.and_then(|s| s.container_statuses.as_ref()).and_then(|cs| cs.iter().find(|c| c.name == CONTAINER_NAME));
    let container_state = container.and_then(|c| c.state.as_ref());
    let termination = container_state.and_then(|s| s.terminated.as_ref()).map(|t| Termination {
        exit_code: t.exit_code,
        reason: t.reason.clone(),
        message: t.message.clone(),
    });
    let waiting = container_state
        .and_then(|s| s.waiting.as_ref())
        .filter(|w| w.reason.as_deref() != Some("ContainerCreating"))
        .and_then(|w| {
            w.reason.as_ref().map(|reason| match &w.message {
                Some(message) => format!("{reason}: {message}"),
                None => reason.clone(),
            })
        })
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| {
                    cs.iter().find(|c| {
                        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
                    })
                })
                .map(|c| format!("Unschedulable: {}", c.message.clone().unwrap_or_default()))
        });
    PodView {
        name: pod.name_any(),
        phase,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        waiting,
        termination,
    }
}

/// Splits an application's pods into the driver and the executors by id.
pub fn observe_pods(pods: &[Pod]) -> (Option<PodView>, BTreeMap<i32, PodView>) {
    let mut driver = None;
    let mut executors = BTreeMap::new();
    for pod in pods {
        let labels = pod.labels();
        match labels.get(LABEL_ROLE).map(String::as_str) {
            Some("driver") => driver = Some(pod_view(pod)),
            Some("executor") => {
                if let Some(id) = labels.get(LABEL_EXECUTOR_ID).and_then(|id| id.parse::<i32>().ok()) {
                    executors.insert(id, pod_view(pod));
                }
            }
            _ => {}
        }
    }
    (driver, executors)
}

/// A failed submission the restart policy handles, as opposed to one worth retrying
/// soon: the API server refused the object for good (invalid, forbidden, over quota).
fn is_submission_rejection(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status)
        if (400..500).contains(&status.code) && status.code != 409 && status.code != 429)
}

/// Reconciles one application.
pub async fn reconcile(app: Arc<SparkApplication>, ctx: Arc<Context>) -> Result<ControllerAction, Error> {
    let span = info_span!(
        "reconcile",
        namespace = field::Empty,
        app = %app.name_any(),
        state = field::Empty,
        next_state = field::Empty,
    );
    let started = Instant::now();
    let result = reconcile_inner(app, &ctx, &span).instrument(span.clone()).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    ctx.metrics.reconciles.inc();
    result
}

async fn reconcile_inner(
    app: Arc<SparkApplication>,
    ctx: &Context,
    span: &tracing::Span,
) -> Result<ControllerAction, Error> {
    let name = app.name_any();
    let namespace = app.namespace().ok_or_else(|| Error::MissingNamespace(name.clone()))?;
    span.record("namespace", namespace.as_str());
    if app.metadata.deletion_timestamp.is_some() {
        // Being deleted: the garbage collector removes the owned pods and Service.
        return Ok(ControllerAction::await_change());
    }
    let status = app.status.clone().unwrap_or_default();
    span.record("state", status.application_state.state.as_str());

    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.metrics.api_request("list_pods");
    let listed =
        pods.list(&ListParams::default().labels(&builder::app_selector(&name))).await.map_err(kube_err("list_pods"))?;
    let (driver, executors) = observe_pods(&listed.items);

    let valid = spec::validate_with(&app, &ctx.settings.ui);
    let now = ctx.clock.now();
    let observed = Observed {
        name: &name,
        namespace: &namespace,
        generation: app.metadata.generation,
        spec: &app.spec,
        spec_check: valid.as_ref().map(|_| ()).map_err(Clone::clone),
        web_ui: valid.as_ref().ok().and_then(|v| v.ui.web_ui.clone()),
        status: &status,
        driver,
        executors,
        now,
    };
    let mut decision = state::decide(&observed, &ctx.settings);
    span.record("next_state", decision.status.application_state.state.as_str());

    // Creations first: if one fails, the status is not advanced and the next reconcile
    // decides the same again (applies are idempotent).
    if let Ok(valid) = &valid {
        for action in decision.actions.clone() {
            match action {
                Action::Submit => match submit(ctx, &app, valid, &namespace).await {
                    Ok(ui_service) => {
                        if let Some(service) = ui_service {
                            state::record_web_ui_service(&mut decision.status, &service);
                        }
                    }
                    Err(err) => match err {
                        Error::Kube { source, .. } if is_submission_rejection(&source) => {
                            warn!(error = %source, "submission rejected by the API server");
                            decision = state::submission_failed(&app.spec, decision, source.to_string(), now);
                        }
                        other => return Err(other),
                    },
                },
                Action::CreateExecutor(id) => {
                    let pod = builder::executor_pod(&app, valid, id);
                    ctx.metrics.api_request("apply_pod");
                    pods.patch(
                        &builder::executor_pod_name(&name, id),
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&pod),
                    )
                    .await
                    .map_err(kube_err("apply_executor_pod"))?;
                }
                _ => {}
            }
        }
    }

    // Once the driver runs: where its UI really listens (crate::ui_port).
    if let Ok(valid) = &valid {
        let driver_ip = listed
            .items
            .iter()
            .find(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some("driver"))
            .and_then(|p| p.status.as_ref()?.pod_ip.as_deref());
        let web_ui = valid.ui.web_ui.as_ref();
        let probe = ui_port::probe_needed(
            &decision.status,
            web_ui,
            observed.driver.as_ref(),
            driver_ip,
            &app.spec.spark_conf,
            now,
        );
        if let (Some(probe), Some(web_ui)) = (probe, web_ui) {
            match ui_port::find_ui_port(&probe, ui_port::PROBE_TIMEOUT).await {
                Some(port) => {
                    info!(port, "driver web UI found");
                    if let Some((moved, note)) = ui_port::record_ui_port(&mut decision.status, web_ui, port) {
                        let service = ui::driver_exposure_service(&app, &moved);
                        ctx.metrics.api_request("apply_service");
                        let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
                        let applied = services
                            .patch(
                                &moved.service_name,
                                &PatchParams::apply(FIELD_MANAGER).force(),
                                &Patch::Apply(&service),
                            )
                            .await
                            .map_err(kube_err("apply_ui_service"))?;
                        state::record_web_ui_service(&mut decision.status, &applied);
                        decision.notes.push(note);
                    }
                }
                None => {
                    let again =
                        decision.requeue_after.map_or(ui_port::PROBE_INTERVAL, |d| d.min(ui_port::PROBE_INTERVAL));
                    decision.requeue_after = Some(again);
                }
            }
        }
    }

    // The status is written before any deletion, so a driver's end is recorded before
    // its pod can go.
    if decision.status != status {
        write_status(ctx, &app, &namespace, &decision.status).await?;
    }

    for action in &decision.actions {
        match action {
            Action::DeleteAllPods | Action::DeleteExecutors => {
                let selector = if *action == Action::DeleteAllPods {
                    builder::app_selector(&name)
                } else {
                    builder::executor_selector(&name)
                };
                ctx.metrics.api_request("delete_pods");
                pods.delete_collection(&DeleteParams::background(), &ListParams::default().labels(&selector))
                    .await
                    .map_err(kube_err("delete_pods"))?;
            }
            Action::DeleteApplication => {
                let apps: Api<SparkApplication> = Api::namespaced(ctx.client.clone(), &namespace);
                ctx.metrics.api_request("delete_application");
                match apps.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => info!("deleted after timeToLiveSeconds"),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(err) => return Err(kube_err("delete_application")(err)),
                }
            }
            Action::Submit | Action::CreateExecutor(_) => {}
        }
    }

    publish_notes(ctx, &app, &decision).await;
    if decision.status.application_state.state != status.application_state.state {
        info!(
            from = status.application_state.state.as_str(),
            to = decision.status.application_state.state.as_str(),
            "state changed"
        );
    }
    Ok(match decision.requeue_after {
        Some(after) => ControllerAction::requeue(after.max(Duration::from_millis(100))),
        None => ControllerAction::await_change(),
    })
}

/// Applies the driver's Services and Ingresses, then the driver pod; returns the UI
/// Service as the API server stored it (with its cluster IP), when there is one.
async fn submit(
    ctx: &Context,
    app: &SparkApplication,
    valid: &spec::ValidSpec,
    namespace: &str,
) -> Result<Option<Service>, Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace);
    let service = builder::driver_service(app, valid);
    ctx.metrics.api_request("apply_service");
    services
        .patch(&service.name_any(), &params, &Patch::Apply(&service))
        .await
        .map_err(kube_err("apply_driver_service"))?;
    let mut ui_service = None;
    let exposures =
        valid.ui.web_ui.iter().map(|e| (e, true)).chain(valid.ui.driver_ingresses.iter().map(|e| (e, false)));
    for (exposure, is_ui) in exposures {
        let service = ui::driver_exposure_service(app, exposure);
        ctx.metrics.api_request("apply_service");
        let applied = services
            .patch(&exposure.service_name, &params, &Patch::Apply(&service))
            .await
            .map_err(kube_err(if is_ui { "apply_ui_service" } else { "apply_driver_ingress_service" }))?;
        if is_ui {
            ui_service = Some(applied);
        }
        if let Some(ingress) = ui::driver_exposure_ingress(app, exposure) {
            ctx.metrics.api_request("apply_ingress");
            ingresses
                .patch(&ingress.name_any(), &params, &Patch::Apply(&ingress))
                .await
                .map_err(kube_err("apply_ingress"))?;
        }
    }
    if valid.authenticate {
        create_auth_secret(ctx, app, namespace).await?;
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let pod = builder::driver_pod(app, valid);
    ctx.metrics.api_request("apply_pod");
    pods.patch(&pod.name_any(), &params, &Patch::Apply(&pod)).await.map_err(kube_err("apply_driver_pod"))?;
    Ok(ui_service)
}

/// Creates the application's `spark.authenticate` Secret unless it exists
/// ([`crate::auth`]): a resubmitted driver keeps the secret its executors have.
async fn create_auth_secret(ctx: &Context, app: &SparkApplication, namespace: &str) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = crate::auth::auth_secret(app, &crate::auth::generate_secret());
    ctx.metrics.api_request("create_secret");
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(kube_err("create_auth_secret")(e)),
    }
}

async fn write_status(
    ctx: &Context,
    app: &SparkApplication,
    namespace: &str,
    status: &SparkApplicationStatus,
) -> Result<(), Error> {
    let apps: Api<SparkApplication> = Api::namespaced(ctx.client.clone(), namespace);
    let body = serde_json::json!({
        "apiVersion": SparkApplication::api_version(&()),
        "kind": SparkApplication::kind(&()),
        "status": status,
    });
    ctx.metrics.api_request("patch_status");
    apps.patch_status(&app.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(kube_err("patch_status"))?;
    Ok(())
}

async fn publish_notes(ctx: &Context, app: &SparkApplication, decision: &Decision) {
    let reference = app.object_ref(&());
    for note in &decision.notes {
        let event = Event {
            type_: if note.warning { EventType::Warning } else { EventType::Normal },
            reason: note.reason.clone(),
            note: Some(truncate(&note.message, 1000)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        ctx.metrics.api_request("create_event");
        // An event that cannot be recorded must not hold up the application.
        if let Err(err) = ctx.recorder.publish(&event, &reference).await {
            warn!(error = %err, reason = %note.reason, "could not record event");
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What to do after a failed reconcile.
pub fn error_policy(_app: Arc<SparkApplication>, err: &Error, ctx: Arc<Context>) -> ControllerAction {
    warn!(error = %err, "reconcile failed");
    ctx.metrics.reconcile_error(err.metric_label());
    ControllerAction::requeue(ERROR_REQUEUE)
}

/// Runs the controller for the given namespaces (all when empty) until `shutdown`
/// completes. Application states are reported to `metrics` from the controllers' caches
/// through the returned stores.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    stores: Arc<Mutex<Vec<Store<SparkApplication>>>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let client = ctx.client.clone();
    let scopes: Vec<Option<String>> =
        if namespaces.is_empty() { vec![None] } else { namespaces.into_iter().map(Some).collect() };
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let mut controllers = Vec::new();
    for scope in scopes {
        let (apps, pods, services, ingresses): (Api<SparkApplication>, Api<Pod>, Api<Service>, Api<Ingress>) =
            match &scope {
                Some(ns) => (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
            };
        // Owned objects' changes (a driver pod ending, a deleted Service or Ingress) map
        // back to their application through the controller owner reference.
        let controller = Controller::new(apps, watcher::Config::default().any_semantic())
            .owns(pods, owned.clone())
            .owns(services, owned.clone())
            .owns(ingresses, owned.clone())
            .graceful_shutdown_on(shutdown.clone());
        stores.lock().unwrap_or_else(|e| e.into_inner()).push(controller.store());
        info!(namespace = scope.as_deref().unwrap_or("<all>"), "starting controller");
        controllers.push(controller.run(reconcile, error_policy, ctx.clone()).for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "controller event");
            }
        }));
    }
    futures::future::join_all(controllers).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app-driver", "labels": {LABEL_ROLE: "driver"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pod_view_reports_why_a_pod_waits_or_how_it_ended() {
        let unschedulable = pod(serde_json::json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient memory."}]}));
        assert_eq!(
            pod_view(&unschedulable).waiting.as_deref(),
            Some("Unschedulable: 0/1 nodes are available: 1 Insufficient memory.")
        );
        let pulling = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "ember", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}));
        assert_eq!(pod_view(&pulling).waiting.as_deref(), Some("ImagePullBackOff: Back-off pulling image \"x\""));
        let creating = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "ember", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(pod_view(&creating).waiting, None, "normal start is not a problem");
        let failed = pod(serde_json::json!({"phase": "Failed", "containerStatuses": [{
            "name": "ember", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}));
        let view = pod_view(&failed);
        assert_eq!(view.phase, PodPhase::Failed);
        assert_eq!(
            view.termination,
            Some(Termination { exit_code: 137, reason: Some("OOMKilled".into()), message: None })
        );
        let (driver, executors) = observe_pods(&[failed]);
        assert!(driver.is_some() && executors.is_empty());
    }
}
