//! The reconciler: observes an application's pods, runs the state machine
//! ([`crate::state::decide`]) and carries out its decision against the API server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action as ControllerAction, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, field, info, info_span, warn};

use crate::builder::{self, LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY};
use crate::crd::{AppState, SparkApplication};
use crate::metrics::Metrics;
use crate::ownership::{self, ClaimError};
use crate::spec;
use crate::state::{self, Action, Decision, Observed, Settings};
use crate::{allocation, ui, ui_port};

mod pods;
mod submission;
pub use pods::{PodsByObject, observe_pods, pod_view, split_by_object};
use submission::submit;

/// Field manager name for server-side apply.
pub const FIELD_MANAGER: &str = "ember-operator";

/// Delay before retrying a reconcile that failed for the first time; it doubles with each
/// further consecutive failure of the same application ([`error_backoff`]).
pub const ERROR_REQUEUE: Duration = Duration::from_secs(2);
/// Longest delay between retries of a failing reconcile.
pub const MAX_ERROR_REQUEUE: Duration = Duration::from_secs(300);

/// Delay before the next retry after `failures` consecutive failed reconciles (1-based):
/// [`ERROR_REQUEUE`] doubled per earlier failure, at most [`MAX_ERROR_REQUEUE`], as
/// client-go's per-item exponential rate limiter does for kubeflow's controller.
pub fn error_backoff(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
    ERROR_REQUEUE.saturating_mul(factor).min(MAX_ERROR_REQUEUE)
}

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
    /// Creating an object failed, or its name is held by another owner
    /// ([`crate::ownership`]).
    #[error("{operation}: {source}")]
    Claim {
        /// What the request did.
        operation: &'static str,
        /// The error.
        #[source]
        source: ClaimError,
    },
    /// The object has no namespace (the CRD is namespaced, so this is a broken object).
    #[error("SparkApplication {0} has no namespace")]
    MissingNamespace(String),
}

impl Error {
    /// Short kind for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { operation, .. } | Error::Claim { operation, .. } => operation,
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
    /// Consecutive failed reconciles per application (`namespace/name`), for
    /// [`error_backoff`]; an application's entry goes with its first successful reconcile.
    pub failures: Mutex<BTreeMap<String, u32>>,
}

impl Context {
    /// A context reporting events as `ember-operator` from `instance`.
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter { controller: FIELD_MANAGER.to_string(), instance };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics,
            clock: Clock::System,
            failures: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Maps a failed request of `operation` to [`Error::Kube`].
pub fn kube_err(operation: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { operation, source }
}

fn claim_err(operation: &'static str) -> impl FnOnce(ClaimError) -> Error {
    move |source| Error::Claim { operation, source }
}

/// Delay before looking again when a status write lost a race with another writer.
pub const CONFLICT_REQUEUE: Duration = Duration::from_millis(200);

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
    let key = failure_key(&app);
    measured(&ctx, key, reconcile_inner(app, &ctx, &span).instrument(span.clone())).await
}

/// Runs one reconcile of the object `key`: counts it and its duration in the metrics, and
/// on success forgets the object's consecutive failures ([`back_off`]).
pub async fn measured(
    ctx: &Context,
    key: String,
    work: impl std::future::Future<Output = Result<ControllerAction, Error>>,
) -> Result<ControllerAction, Error> {
    let started = Instant::now();
    let result = work.await;
    if result.is_ok() {
        ctx.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
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
    // The controller's cache can lag behind this operator's own last status write: a
    // reconcile deciding from a stale status would repeat a step already taken (and, in
    // PENDING_RERUN, delete the rerun's new driver). Each reconcile therefore decides
    // from the object as the API server has it now; the status write below is
    // conditional on that version.
    let apps: Api<SparkApplication> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.metrics.api_request("get_application");
    let Some(app) = apps.get_opt(&name).await.map_err(kube_err("get_application"))? else {
        return Ok(ControllerAction::await_change());
    };
    if app.metadata.deletion_timestamp.is_some() {
        return Ok(ControllerAction::await_change());
    }
    let app = Arc::new(app);
    let status = app.status.clone().unwrap_or_default();
    span.record("state", status.application_state.state.as_str());

    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.metrics.api_request("list_pods");
    let listed = pods
        .list(&ListParams::default().labels(&builder::same_name_selector(&name)))
        .await
        .map_err(kube_err("list_pods"))?;
    let split = split_by_object(&listed.items, &app);
    for pod in &split.unlabelled {
        // Made by an operator before the UID label: labelled now, so the selectors the
        // operator deletes by find it.
        let patch = serde_json::json!({"metadata": {"labels": {
            builder::LABEL_EMBER_APP_NAME: name.as_str(),
            builder::LABEL_APP_UID: builder::app_uid(&app),
        }}});
        ctx.metrics.api_request("label_pod");
        pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err("label_pod"))?;
    }
    let (driver, executors) = observe_pods(split.ours.iter().copied());
    let earlier_pods = split.earlier;

    let valid = spec::validate_with(&app, &ctx.settings.ui);
    let driver_ip = split
        .ours
        .iter()
        .find(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some("driver"))
        .and_then(|p| p.status.as_ref()?.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty());
    // Dynamic allocation: what the running driver asks for (crate::allocation).
    let demand = match (&valid, driver_ip) {
        (Ok(valid), Some(ip))
            if status.application_state.state == AppState::Running && valid.dynamic_allocation.is_some() =>
        {
            let port = status.driver_info.web_ui_target_port.or(valid.ui.ui_port).and_then(|p| u16::try_from(p).ok());
            match port {
                Some(port) => allocation::fetch_demand(ip, port).await,
                None => None,
            }
        }
        _ => None,
    };
    if let Some(d) = &demand {
        tracing::debug!(target_executors = d.target, pending_tasks = d.pending_tasks, "driver's executor demand");
    }
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
        earlier_pods,
        demand,
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
                        Error::Kube { source, .. } | Error::Claim { source: ClaimError::Kube(source), .. }
                            if is_submission_rejection(&source) =>
                        {
                            warn!(error = %source, "submission rejected by the API server");
                            decision = state::submission_failed(&app.spec, decision, source.to_string(), now);
                        }
                        Error::Claim { source: taken @ ClaimError::Taken { .. }, .. } => {
                            warn!(error = %taken, "submission refused: a name it needs is taken");
                            decision = state::submission_failed(&app.spec, decision, taken.to_string(), now);
                        }
                        Error::Claim { source: earlier @ ClaimError::Earlier { .. }, .. } => {
                            // Nothing is advanced: the next reconcile decides the same again.
                            info!(reason = %earlier, "waiting for the garbage collector before submitting");
                            return Ok(ControllerAction::requeue(state::SHORT_REQUEUE));
                        }
                        other => return Err(other),
                    },
                },
                Action::CreateExecutor(id) => {
                    let pod = builder::executor_pod(&app, valid, id);
                    ctx.metrics.api_request("create_pod");
                    match ownership::create_owned(&pods, &pod, &app, false, FIELD_MANAGER).await {
                        Ok(_) => {}
                        // The id is used up: the next reconcile counts it as a failed
                        // executor and, within maxExecutorFailures, creates another.
                        Err(ClaimError::Kube(err)) if is_submission_rejection(&err) => {
                            warn!(error = %err, "executor pod refused by the API server");
                            decision.notes.push(state::Note {
                                warning: true,
                                reason: "ExecutorRejected".to_string(),
                                message: format!("executor pod {}: {err}", builder::executor_pod_name(&name, id)),
                            });
                        }
                        Err(err @ (ClaimError::Taken { .. } | ClaimError::Earlier { .. })) => {
                            warn!(error = %err, "executor pod name taken; skipping executor id {id}");
                            decision.notes.push(state::Note {
                                warning: true,
                                reason: "ExecutorRejected".to_string(),
                                message: err.to_string(),
                            });
                        }
                        Err(err) => return Err(claim_err("create_executor_pod")(err)),
                    }
                }
                _ => {}
            }
        }
    }

    // Once the driver runs: where its UI really listens (crate::ui_port).
    if let Ok(valid) = &valid {
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
                        let annotation = ui_port::moved_scrape_annotation(
                            valid.ui.scrape_annotations,
                            &app.spec.driver.pod.annotations,
                            port,
                        );
                        if let (Some(patch), Some(driver)) = (annotation, observed.driver.as_ref()) {
                            ctx.metrics.api_request("patch_pod");
                            pods.patch(&driver.name, &PatchParams::default(), &Patch::Merge(&patch))
                                .await
                                .map_err(kube_err("patch_driver_scrape_port"))?;
                        }
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
        match write_status(ctx, app.as_ref(), &decision.status, "patch_status").await {
            Err(Error::Kube { source: kube::Error::Api(s), .. }) if s.code == 409 => {
                // Another writer (a user's edit, another operator instance) changed the
                // object since it was read: nothing of this decision's deletions may run.
                info!("the application changed while reconciling; deciding again");
                return Ok(ControllerAction::requeue(CONFLICT_REQUEUE));
            }
            other => other?,
        }
        ctx.metrics.record_decision(&namespace, &decision, now);
    }

    for action in &decision.actions {
        match action {
            Action::DeleteAllPods | Action::DeleteExecutors => {
                let selector = if *action == Action::DeleteAllPods {
                    builder::app_selector(&app)
                } else {
                    builder::executor_selector(&app)
                };
                ctx.metrics.api_request("delete_pods");
                pods.delete_collection(&DeleteParams::background(), &ListParams::default().labels(&selector))
                    .await
                    .map_err(kube_err("delete_pods"))?;
            }
            Action::DeleteApplication => {
                let apps: Api<SparkApplication> = Api::namespaced(ctx.client.clone(), &namespace);
                ctx.metrics.api_request("delete_application");
                // Only this object: one recreated under the name since the read stays.
                let params = DeleteParams {
                    preconditions: Some(Preconditions { uid: app.metadata.uid.clone(), resource_version: None }),
                    ..DeleteParams::background()
                };
                match apps.delete(&name, &params).await {
                    Ok(_) => info!("deleted after timeToLiveSeconds"),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(err) => return Err(kube_err("delete_application")(err)),
                }
            }
            Action::DeleteExecutor { name, uid } => {
                if delete_pod_of_uid(ctx, &pods, name, uid, None, "delete_pod").await? {
                    info!(pod = %name, "executor pod released by dynamic allocation");
                }
            }
            Action::ForceDeletePod { name, uid } => {
                if delete_pod_of_uid(ctx, &pods, name, uid, Some(0), "force_delete_pod").await? {
                    warn!(pod = %name, "force-deleted a pod stuck terminating");
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

/// Deletes pod `name` only if its UID is still `uid` (a new pod of that name stays),
/// with `grace_seconds` (None: the pod's own). Returns false when it was gone already
/// or is another pod now. `operation` names the request in metrics and errors.
async fn delete_pod_of_uid(
    ctx: &Context,
    pods: &Api<Pod>,
    name: &str,
    uid: &str,
    grace_seconds: Option<u32>,
    operation: &'static str,
) -> Result<bool, Error> {
    let params = DeleteParams {
        grace_period_seconds: grace_seconds,
        preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..DeleteParams::background()
    };
    ctx.metrics.api_request(operation);
    match pods.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(err) => Err(kube_err(operation)(err)),
    }
}

/// Writes `status` to the namespaced object `object` by server-side apply, counted as
/// `operation`. With `metadata.resourceVersion` the apply is conditional: an
/// [`Error::Kube`] with a 409 if the object changed since this reconcile read it.
pub async fn write_status<K>(
    ctx: &Context,
    object: &K,
    status: &impl serde::Serialize,
    operation: &'static str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = object.namespace().ok_or_else(|| Error::MissingNamespace(object.name_any()))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"resourceVersion": object.resource_version()},
        "status": status,
    });
    ctx.metrics.api_request(operation);
    api.patch_status(&object.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(kube_err(operation))?;
    Ok(())
}

async fn publish_notes(ctx: &Context, app: &SparkApplication, decision: &Decision) {
    publish(ctx, &app.object_ref(&()), &decision.notes).await;
}

/// Records `notes` as events of the object `reference`; one that cannot be recorded is
/// logged and skipped.
pub async fn publish(ctx: &Context, reference: &k8s_openapi::api::core::v1::ObjectReference, notes: &[state::Note]) {
    for note in notes {
        let event = Event {
            type_: if note.warning { EventType::Warning } else { EventType::Normal },
            reason: note.reason.clone(),
            note: Some(truncate(&note.message, 1000)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        ctx.metrics.api_request("create_event");
        // An event that cannot be recorded must not hold up the application.
        if let Err(err) = ctx.recorder.publish(&event, reference).await {
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

fn failure_key(app: &SparkApplication) -> String {
    format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any())
}

/// What to do after a failed reconcile: retry after [`error_backoff`] of the
/// application's consecutive failures.
pub fn error_policy(app: Arc<SparkApplication>, err: &Error, ctx: Arc<Context>) -> ControllerAction {
    back_off(&ctx, failure_key(&app), err)
}

/// Counts one more consecutive failure of the object `key` and returns the retry after
/// [`error_backoff`] of them.
pub fn back_off(ctx: &Context, key: String, err: &Error) -> ControllerAction {
    let failures = {
        let mut counts = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = error_backoff(failures);
    warn!(error = %err, failures, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    ctx.metrics.reconcile_error(err.metric_label());
    ControllerAction::requeue(delay)
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
        controllers.push(
            controller
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|result| async move {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "controller event");
                    }
                })
                .boxed(),
        );
        controllers.push(
            crate::scheduled::reconciler::run_controller(ctx.clone(), client.clone(), scope, shutdown.clone()).boxed(),
        );
    }
    futures::future::join_all(controllers).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_errors_back_off_exponentially_up_to_a_cap() {
        let delays: Vec<u64> = (1..=10).map(|n| error_backoff(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(error_backoff(u32::MAX), MAX_ERROR_REQUEUE);
    }
}
