//! The application state machine: a pure function from what the operator observes (the
//! application's spec and status, its pods, the time) to the next status and the actions
//! that bring the cluster there. The reconciler only observes, calls [`decide`] and carries
//! out the actions, so every transition is tested here without an API server.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use k8s_openapi::api::core::v1::Service;

use crate::builder::{driver_pod_name, executor_pod_name};
use crate::crd::{
    AppCondition, AppState, DriverInfo, ExecutorState, RestartPolicyType, SparkApplicationSpec, SparkApplicationStatus,
};
use crate::spec::SpecError;
use crate::ui::DriverExposure;

/// Default seconds before a rerun (kubeflow's default retry interval is 5 s as well).
pub const DEFAULT_RETRY_INTERVAL_SECS: i64 = 5;
/// Backoff grows by doubling up to this multiple of the configured interval.
pub const MAX_BACKOFF_FACTOR: i64 = 16;
/// Requeue interval while waiting for pods to go away or as a safety net while active.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Requeue interval while waiting for deleted pods to disappear before a rerun.
pub const SHORT_REQUEUE: Duration = Duration::from_secs(5);

/// Operator-wide settings of the state machine and the reconciler.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long a submitted driver pod may stay pending (unschedulable, pulling an image,
    /// ...) before the run fails.
    pub driver_start_timeout: Duration,
    /// Failed executors replaced per run; past this, failed executors are not replaced.
    pub max_executor_failures: i32,
    /// The UI Service, Ingresses and metrics scraping.
    pub ui: crate::ui::UiSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            driver_start_timeout: Duration::from_secs(300),
            max_executor_failures: 10,
            ui: crate::ui::UiSettings::default(),
        }
    }
}

/// Phase of a pod (`status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Accepted, containers not all started.
    Pending,
    /// Bound to a node, container started.
    Running,
    /// Container exited with 0.
    Succeeded,
    /// Container exited non-zero, or the pod was evicted.
    Failed,
    /// The node stopped reporting.
    Unknown,
}

/// What the operator sees of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Phase.
    pub phase: PodPhase,
    /// The pod has a deletion timestamp.
    pub terminating: bool,
    /// Why the pod has not started, when it is pending for a reason worth reporting
    /// (`ImagePullBackOff: ...`, `Unschedulable: ...`).
    pub waiting: Option<String>,
    /// How the container ended, when it did: exit code, reason and message.
    pub termination: Option<Termination>,
}

/// How the engine container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// Exit code.
    pub exit_code: i32,
    /// Kubernetes' reason (`Error`, `OOMKilled`, ...).
    pub reason: Option<String>,
    /// The termination message (or the end of the log).
    pub message: Option<String>,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// Application name.
    pub name: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The spec.
    pub spec: &'a SparkApplicationSpec,
    /// Result of [`crate::spec::validate`].
    pub spec_check: Result<(), SpecError>,
    /// The UI Service (and Ingress) a submission creates, from the valid spec
    /// ([`crate::ui::UiPlan::web_ui`]); None when the UI or its Service is off.
    pub web_ui: Option<DriverExposure>,
    /// The current status.
    pub status: &'a SparkApplicationStatus,
    /// The driver pod, if it exists.
    pub driver: Option<PodView>,
    /// Executor pods that exist, by executor id.
    pub executors: BTreeMap<i32, PodView>,
    /// The time now.
    pub now: Timestamp,
}

/// A change to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply the driver's Services (headless, UI, `driverIngressOptions`), their Ingresses
    /// and the driver pod.
    Submit,
    /// Apply executor pod `id`.
    CreateExecutor(i32),
    /// Delete all executor pods of the application.
    DeleteExecutors,
    /// Delete every pod of the application (driver included).
    DeleteAllPods,
    /// Delete the application itself; owner references take its pods and Service.
    DeleteApplication,
}

/// A Kubernetes event to record on the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// PascalCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The status to write (written only if it differs from the current one).
    pub status: SparkApplicationStatus,
    /// Actions, carried out in order: creations, then the status write, then deletions.
    pub actions: Vec<Action>,
    /// Events to record.
    pub notes: Vec<Note>,
    /// When to look again even if nothing changes.
    pub requeue_after: Option<Duration>,
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn until(now: Timestamp, deadline: Timestamp) -> Duration {
    let left = deadline.duration_since(now);
    if left.is_negative() { Duration::ZERO } else { left.unsigned_abs() }
}

/// Backoff before rerun `attempt` (1-based): the interval doubled per earlier attempt,
/// capped at [`MAX_BACKOFF_FACTOR`] times the interval.
pub fn backoff(interval_secs: Option<i64>, attempt: i32) -> SignedDuration {
    let base = interval_secs.unwrap_or(DEFAULT_RETRY_INTERVAL_SECS).max(0);
    let factor =
        1i64.checked_shl(attempt.saturating_sub(1).clamp(0, 30) as u32).unwrap_or(i64::MAX).min(MAX_BACKOFF_FACTOR);
    SignedDuration::from_secs(base.saturating_mul(factor))
}

fn condition_type(state: AppState) -> Option<&'static str> {
    match state {
        AppState::New => None,
        AppState::Submitted => Some("Submitted"),
        AppState::Running => Some("Running"),
        AppState::Completed => Some("Completed"),
        AppState::Failed | AppState::SubmissionFailed => Some("Failed"),
        AppState::PendingRerun => Some("PendingRerun"),
        AppState::Suspended => Some("Suspended"),
    }
}

/// Builds [`Decision`]s: the status being edited, the actions and notes so far.
struct Draft<'a> {
    obs: &'a Observed<'a>,
    status: SparkApplicationStatus,
    actions: Vec<Action>,
    notes: Vec<Note>,
    requeue_after: Option<Duration>,
    /// The driver start timeout, for the requeue after a submission.
    timeout: Duration,
}

impl<'a> Draft<'a> {
    fn new(obs: &'a Observed<'a>, timeout: Duration) -> Self {
        let mut status = obs.status.clone();
        status.observed_generation = obs.generation;
        Draft { obs, status, actions: Vec::new(), notes: Vec::new(), requeue_after: None, timeout }
    }

    fn note(&mut self, warning: bool, reason: &str, message: impl Into<String>) {
        self.notes.push(Note { warning, reason: reason.to_string(), message: message.into() });
    }

    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(match self.requeue_after {
            Some(current) => current.min(after),
            None => after,
        });
    }

    /// Moves to `state` (see [`transition`]).
    fn transition(&mut self, state: AppState, reason: &str, message: impl Into<String>) {
        let note = transition(&mut self.status, self.obs.now, state, reason, message.into());
        self.notes.push(note);
    }

    /// Forgets the pods of the previous run, before a new submission.
    fn reset_run(&mut self) {
        self.status.executor_state.clear();
        self.status.running_executors = 0;
        self.status.last_executor_id = 0;
        self.status.executor_failures = 0;
        self.status.driver_info = Default::default();
    }

    fn has_live_pods(&self) -> bool {
        self.obs.driver.as_ref().is_some_and(|p| !p.terminating) || self.obs.executors.values().any(|p| !p.terminating)
    }

    fn has_live_executors(&self) -> bool {
        self.obs.executors.values().any(|p| !p.terminating)
    }

    fn delete_all_pods(&mut self) {
        // Deleting every pod covers deleting the executors.
        self.actions.retain(|a| *a != Action::DeleteExecutors);
        if self.has_live_pods() && !self.actions.contains(&Action::DeleteAllPods) {
            self.actions.push(Action::DeleteAllPods);
        }
    }

    fn delete_executors(&mut self) {
        if self.has_live_executors()
            && !self.actions.contains(&Action::DeleteExecutors)
            && !self.actions.contains(&Action::DeleteAllPods)
        {
            self.actions.push(Action::DeleteExecutors);
        }
        for state in self.status.executor_state.values_mut() {
            if matches!(state, ExecutorState::Pending | ExecutorState::Running | ExecutorState::Unknown) {
                *state = ExecutorState::Completed;
            }
        }
        self.status.running_executors = 0;
    }

    fn submit(&mut self) {
        let name = self.obs.name;
        self.reset_run();
        self.status.submission_attempts += 1;
        self.status.last_submission_attempt_time = Some(time(self.obs.now));
        self.status.termination_time = None;
        self.status.rerun_time = None;
        let ui = self.obs.web_ui.as_ref();
        let ingress = ui.and_then(|u| u.ingress.as_ref());
        self.status.driver_info = DriverInfo {
            pod_name: Some(driver_pod_name(name)),
            web_ui_service_name: ui.map(|u| u.service_name.clone()),
            web_ui_port: ui.map(|u| u.port),
            // Known once the API server has allocated the Service's cluster IP: see
            // [`record_web_ui_service`].
            web_ui_address: None,
            web_ui_ingress_name: ingress.map(|i| i.name.clone()),
            web_ui_ingress_address: ingress.map(|i| i.url.to_string()),
            // Found once the driver runs: see [`crate::ui_port`].
            web_ui_target_port: None,
        };
        self.actions.push(Action::Submit);
        self.transition(
            AppState::Submitted,
            "SparkApplicationSubmitted",
            format!("submitted driver pod {} (attempt {})", driver_pod_name(name), self.status.submission_attempts),
        );
        self.requeue(self.timeout);
    }

    /// The run ended with success.
    fn complete(&mut self) {
        self.status.termination_time = Some(time(self.obs.now));
        self.status.application_state.error_message = None;
        self.delete_executors();
        self.transition(
            AppState::Completed,
            "SparkApplicationCompleted",
            format!("driver pod {} exited with code 0", driver_pod_name(self.obs.name)),
        );
        if self.obs.spec.restart_policy.policy_type == RestartPolicyType::Always {
            let policy = &self.obs.spec.restart_policy;
            let delay = backoff(policy.on_failure_retry_interval, 1);
            self.schedule_rerun(delay, "restartPolicy Always");
        } else {
            ttl(self);
        }
    }

    /// The run failed: rerun if the restart policy allows, else FAILED.
    fn fail_run(&mut self, message: String) {
        self.status.termination_time = Some(time(self.obs.now));
        self.status.application_state.error_message = Some(message.clone());
        let policy = &self.obs.spec.restart_policy;
        let retry = match policy.policy_type {
            RestartPolicyType::Never => false,
            RestartPolicyType::Always => true,
            RestartPolicyType::OnFailure => self.status.execution_failures < policy.on_failure_retries.unwrap_or(0),
        };
        if retry {
            self.status.execution_failures += 1;
            let delay = backoff(policy.on_failure_retry_interval, self.status.execution_failures);
            self.delete_executors();
            self.transition(AppState::Failed, "SparkApplicationRunFailed", message);
            self.schedule_rerun(delay, "the run failed");
        } else {
            self.delete_executors();
            self.transition(AppState::Failed, "SparkApplicationFailed", message);
            ttl(self);
        }
    }

    fn schedule_rerun(&mut self, delay: SignedDuration, why: &str) {
        let at = self.obs.now.saturating_add(delay).unwrap_or(self.obs.now);
        self.status.rerun_time = Some(time(at));
        // The driver pod goes too: the rerun reuses its name. Its end is already recorded
        // in the status written before any deletion.
        self.delete_all_pods();
        self.transition(
            AppState::PendingRerun,
            "SparkApplicationPendingRerun",
            format!("{why}; rerun in {}s", delay.as_secs()),
        );
        self.requeue(until(self.obs.now, at));
    }

    fn finish(self) -> Decision {
        Decision { status: self.status, actions: self.actions, notes: self.notes, requeue_after: self.requeue_after }
    }
}

/// Moves `status` to `state`: sets the matching condition True (and the other True ones
/// False), and returns the event that records the transition.
fn transition(
    status: &mut SparkApplicationStatus,
    now: Timestamp,
    state: AppState,
    reason: &str,
    message: String,
) -> Note {
    let now = time(now);
    status.application_state.state = state;
    let current = condition_type(state);
    for cond in &mut status.conditions {
        if Some(cond.type_.as_str()) != current && cond.status == "True" {
            cond.status = "False".into();
            cond.reason = Some(reason.to_string());
            cond.message = Some(message.clone());
            cond.last_transition_time = Some(now.clone());
        }
    }
    if let Some(type_) = current {
        match status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(cond) => {
                if cond.status != "True" {
                    cond.last_transition_time = Some(now.clone());
                }
                cond.status = "True".into();
                cond.reason = Some(reason.to_string());
                cond.message = Some(message.clone());
            }
            None => status.conditions.push(AppCondition {
                type_: type_.to_string(),
                status: "True".into(),
                reason: Some(reason.to_string()),
                message: Some(message.clone()),
                last_transition_time: Some(now),
            }),
        }
    }
    Note {
        warning: matches!(state, AppState::Failed | AppState::SubmissionFailed) || reason.ends_with("Failed"),
        reason: reason.to_string(),
        message,
    }
}

/// Why a pod ended, in one line for `errorMessage`.
fn describe_end(pod: &PodView) -> String {
    match &pod.termination {
        Some(t) => {
            let mut text = format!("driver pod {} exited with code {}", pod.name, t.exit_code);
            if let Some(reason) = &t.reason {
                text.push_str(&format!(" ({reason})"));
            }
            if let Some(message) = t.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
                text.push_str(": ");
                text.push_str(message);
            }
            text
        }
        None => format!("driver pod {} failed", pod.name),
    }
}

/// Decides the next status and actions. Pure: same input, same output.
pub fn decide(obs: &Observed<'_>, settings: &Settings) -> Decision {
    let mut draft = Draft::new(obs, settings.driver_start_timeout);
    let state = obs.status.application_state.state;
    let spec_changed = obs.status.observed_generation.is_some() && obs.status.observed_generation != obs.generation;

    // An invalid spec never gets pods.
    if let Err(err) = &obs.spec_check {
        let message = err.to_string();
        draft.delete_all_pods();
        if state != AppState::Failed || obs.status.application_state.error_message.as_deref() != Some(message.as_str())
        {
            draft.status.application_state.error_message = Some(message.clone());
            draft.status.termination_time = Some(time(obs.now));
            draft.status.rerun_time = None;
            draft.status.running_executors = 0;
            draft.transition(AppState::Failed, "InvalidSpec", message);
        }
        ttl(&mut draft);
        return draft.finish();
    }

    if obs.spec.suspend {
        draft.delete_all_pods();
        if state != AppState::Suspended && (!state.is_terminal() || spec_changed) {
            draft.status.running_executors = 0;
            draft.status.rerun_time = None;
            draft.transition(AppState::Suspended, "SparkApplicationSuspended", "spec.suspend is true; pods deleted");
        }
        if draft.actions.contains(&Action::DeleteAllPods) {
            draft.requeue(SHORT_REQUEUE);
        }
        return draft.finish();
    }

    if state == AppState::Suspended || (spec_changed && state != AppState::New) {
        // Resumed, or the spec changed: start over with fresh attempt counters once the
        // old pods are gone.
        draft.status.execution_failures = 0;
        draft.status.submission_failures = 0;
        draft.status.application_state.error_message = None;
        draft.status.rerun_time = Some(time(obs.now));
        draft.delete_all_pods();
        let (reason, why) = if state == AppState::Suspended {
            ("SparkApplicationResumed", "spec.suspend is false")
        } else {
            ("SpecChanged", "the spec changed")
        };
        draft.transition(AppState::PendingRerun, reason, format!("{why}; submitting again"));
        return rerun_when_clear(draft);
    }

    match state {
        AppState::New => {
            // Pods of an earlier application of the same name may still be going away;
            // the driver pod's name is reused, so wait for them.
            let terminating =
                obs.driver.as_ref().is_some_and(|p| p.terminating) || obs.executors.values().any(|p| p.terminating);
            if terminating {
                draft.requeue(SHORT_REQUEUE);
            } else {
                draft.submit();
            }
        }
        AppState::PendingRerun => return rerun_when_clear(draft),
        AppState::Submitted => match obs.driver.clone() {
            None => draft.fail_run(format!("driver pod {} disappeared before it started", driver_pod_name(obs.name))),
            Some(driver) if driver.terminating => {
                draft.fail_run(format!("driver pod {} was deleted before it started", driver.name))
            }
            Some(driver) => match driver.phase {
                PodPhase::Pending => {
                    let started = obs.status.last_submission_attempt_time.as_ref().map(|t| t.0).unwrap_or(obs.now);
                    let timeout =
                        SignedDuration::try_from(settings.driver_start_timeout).unwrap_or(SignedDuration::MAX);
                    let deadline = started.saturating_add(timeout).unwrap_or(started);
                    if obs.now >= deadline {
                        let why = driver.waiting.clone().unwrap_or_else(|| "still pending".to_string());
                        draft.fail_run(format!(
                            "driver pod {} did not start within {}s: {why}",
                            driver.name,
                            settings.driver_start_timeout.as_secs()
                        ));
                        // A driver that never started has no log worth keeping, and left
                        // pending it would hold its resource requests.
                        draft.delete_all_pods();
                    } else {
                        draft.requeue(until(obs.now, deadline));
                    }
                }
                PodPhase::Running | PodPhase::Unknown => {
                    draft.status.execution_attempts += 1;
                    draft.transition(
                        AppState::Running,
                        "SparkApplicationRunning",
                        format!("driver pod {} is running", driver.name),
                    );
                    manage_executors(&mut draft, settings);
                }
                PodPhase::Succeeded => draft.complete(),
                PodPhase::Failed => draft.fail_run(describe_end(&driver)),
            },
        },
        AppState::Running => match obs.driver.clone() {
            None => draft.fail_run(format!("driver pod {} disappeared while running", driver_pod_name(obs.name))),
            Some(driver) => match driver.phase {
                PodPhase::Succeeded => draft.complete(),
                PodPhase::Failed => draft.fail_run(describe_end(&driver)),
                _ if driver.terminating => {
                    draft.fail_run(format!("driver pod {} was deleted while running", driver.name))
                }
                PodPhase::Pending | PodPhase::Running | PodPhase::Unknown => {
                    manage_executors(&mut draft, settings);
                }
            },
        },
        AppState::Completed | AppState::Failed | AppState::SubmissionFailed => {
            // Executors of an ended run go (the driver stays for its log).
            draft.delete_executors();
            ttl(&mut draft);
        }
        AppState::Suspended => unreachable!("handled above"),
    }
    draft.finish()
}

/// In PENDING_RERUN: submit once the backoff has passed and the old pods are gone.
fn rerun_when_clear(mut draft: Draft<'_>) -> Decision {
    let now = draft.obs.now;
    let due = draft.status.rerun_time.as_ref().map(|t| t.0).unwrap_or(now);
    if now < due {
        draft.delete_all_pods();
        draft.requeue(until(now, due));
    } else if draft.obs.driver.is_some() || !draft.obs.executors.is_empty() {
        // Deleted pods may still be terminating; the driver pod's name is reused.
        draft.delete_all_pods();
        draft.requeue(SHORT_REQUEUE);
    } else {
        draft.submit();
    }
    draft.finish()
}

/// After the end: delete the application once `timeToLiveSeconds` has passed.
fn ttl(draft: &mut Draft<'_>) {
    let (Some(ttl), Some(ended)) =
        (draft.obs.spec.time_to_live_seconds, draft.status.termination_time.as_ref().map(|t| t.0))
    else {
        return;
    };
    let deadline = ended.saturating_add(SignedDuration::from_secs(ttl.max(0))).unwrap_or(ended);
    if draft.obs.now >= deadline {
        draft.actions.push(Action::DeleteApplication);
        draft.note(
            false,
            "SparkApplicationExpired",
            format!("timeToLiveSeconds ({ttl}) passed since the end; deleting"),
        );
    } else {
        draft.requeue(until(draft.obs.now, deadline));
    }
}

fn executor_state(pod: &PodView) -> ExecutorState {
    if pod.terminating && pod.phase != PodPhase::Succeeded {
        return ExecutorState::Failed;
    }
    match pod.phase {
        PodPhase::Pending => ExecutorState::Pending,
        PodPhase::Running => ExecutorState::Running,
        PodPhase::Succeeded => ExecutorState::Completed,
        PodPhase::Failed => ExecutorState::Failed,
        PodPhase::Unknown => ExecutorState::Unknown,
    }
}

/// While the driver runs: record executor states, count failures, and create executors
/// up to `executor.instances` with fresh ids.
fn manage_executors(draft: &mut Draft<'_>, settings: &Settings) {
    let obs = draft.obs;
    let mut states: BTreeMap<String, ExecutorState> = BTreeMap::new();
    for pod in obs.executors.values() {
        states.insert(pod.name.clone(), executor_state(pod));
    }
    // Executors the status knows but that no longer exist were deleted under us.
    for (name, previous) in &obs.status.executor_state {
        if !states.contains_key(name) {
            let now = match previous {
                ExecutorState::Completed | ExecutorState::Failed => *previous,
                _ => ExecutorState::Failed,
            };
            states.insert(name.clone(), now);
        }
    }
    let mut newly_failed = Vec::new();
    for (name, state) in &states {
        let before = obs.status.executor_state.get(name);
        if *state == ExecutorState::Failed && before != Some(&ExecutorState::Failed) {
            newly_failed.push(name.clone());
        }
    }
    draft.status.executor_failures += newly_failed.len() as i32;
    for name in &newly_failed {
        draft.note(true, "ExecutorFailed", format!("executor pod {name} failed or was deleted"));
    }

    let alive = obs
        .executors
        .values()
        .filter(|p| !p.terminating && matches!(p.phase, PodPhase::Pending | PodPhase::Running | PodPhase::Unknown))
        .count() as i32;
    let completed = obs.executors.values().filter(|p| p.phase == PodPhase::Succeeded).count() as i32;
    // Pods may exist that the status does not know yet (created by a reconcile whose
    // status write did not happen); new ids start above every existing one.
    if let Some(highest) = obs.executors.keys().max() {
        draft.status.last_executor_id = draft.status.last_executor_id.max(*highest);
    }
    let wanted = (obs.spec.executor.instances - alive - completed).max(0);
    let first_run = obs.status.last_executor_id == 0 && draft.status.executor_failures == 0;
    let mut created = 0;
    if wanted > 0 {
        if !first_run && draft.status.executor_failures > settings.max_executor_failures {
            if !newly_failed.is_empty() {
                draft.note(
                    true,
                    "ExecutorReplacementLimit",
                    format!(
                        "{} executors failed, more than the limit of {}; not replacing them",
                        draft.status.executor_failures, settings.max_executor_failures
                    ),
                );
            }
        } else {
            for _ in 0..wanted {
                draft.status.last_executor_id += 1;
                let id = draft.status.last_executor_id;
                draft.actions.push(Action::CreateExecutor(id));
                states.insert(executor_pod_name(obs.name, id), ExecutorState::Pending);
                created += 1;
            }
            if !first_run {
                draft.note(
                    false,
                    "ExecutorReplaced",
                    format!("created {created} executor pod(s) to keep {} running", obs.spec.executor.instances),
                );
            }
        }
    }
    draft.status.executor_state = states;
    draft.status.running_executors = alive + created;
    draft.requeue(RESYNC);
}

/// Records the UI Service as the API server returned it from the submission's apply:
/// `webUIAddress` becomes its cluster IP and `webUIPort`, `ip:port` (`[ip]:port` for
/// IPv6), as kubeflow reports it. A Service other than the status' UI Service, or one
/// without a cluster IP (headless, or none allocated), leaves the status as it is.
pub fn record_web_ui_service(status: &mut SparkApplicationStatus, service: &Service) {
    let info = &mut status.driver_info;
    if info.web_ui_service_name.is_none() || service.metadata.name != info.web_ui_service_name {
        return;
    }
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).filter(|ip| !ip.is_empty() && *ip != "None");
    if let (Some(ip), Some(port)) = (ip, info.web_ui_port) {
        info.web_ui_address = Some(if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") });
    }
}

/// The submission (driver pod or Service) was rejected by the API server: retry if the
/// restart policy allows, else SUBMISSION_FAILED. Applied to a [`Decision`] that submitted.
pub fn submission_failed(
    spec: &SparkApplicationSpec,
    mut decision: Decision,
    message: String,
    now: Timestamp,
) -> Decision {
    let status = &mut decision.status;
    let policy = &spec.restart_policy;
    let message = format!("submission failed: {message}");
    status.application_state.error_message = Some(message.clone());
    status.termination_time = Some(time(now));
    status.driver_info = Default::default();
    decision.actions.retain(|a| *a == Action::DeleteAllPods);
    decision.notes.clear();
    let retry = policy.policy_type == RestartPolicyType::OnFailure
        && status.submission_failures < policy.on_submission_failure_retries.unwrap_or(0);
    let (state, reason) = if retry {
        status.submission_failures += 1;
        let delay = backoff(policy.on_submission_failure_retry_interval, status.submission_failures);
        let at = now.saturating_add(delay).unwrap_or(now);
        status.rerun_time = Some(time(at));
        decision.requeue_after = Some(until(now, at));
        (AppState::PendingRerun, "SubmissionFailed")
    } else {
        decision.requeue_after = None;
        (AppState::SubmissionFailed, "SparkApplicationSubmissionFailed")
    };
    decision.notes = vec![transition(status, now, state, reason, message)];
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RestartPolicy, SparkApplicationSpec};

    fn t0() -> Timestamp {
        "2026-11-01T10:00:00Z".parse().unwrap()
    }

    fn spec() -> SparkApplicationSpec {
        serde_json::from_value(serde_json::json!({
            "image": "img", "mainApplicationFile": "local:///bin/job",
            "executor": {"instances": 2}
        }))
        .unwrap()
    }

    fn pod(name: &str, phase: PodPhase) -> PodView {
        PodView { name: name.into(), phase, terminating: false, waiting: None, termination: None }
    }

    fn ended(name: &str, code: i32, message: &str) -> PodView {
        PodView {
            termination: Some(Termination {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                message: Some(message.into()),
            }),
            ..pod(name, if code == 0 { PodPhase::Succeeded } else { PodPhase::Failed })
        }
    }

    fn status(state: AppState) -> SparkApplicationStatus {
        let mut s = SparkApplicationStatus::default();
        s.application_state.state = state;
        s.observed_generation = Some(1);
        s.submission_attempts = 1;
        s.last_submission_attempt_time = Some(Time(t0()));
        s
    }

    fn running_status() -> SparkApplicationStatus {
        let mut s = status(AppState::Running);
        s.execution_attempts = 1;
        s.last_executor_id = 2;
        s.running_executors = 2;
        s.executor_state = BTreeMap::from([
            ("app-exec-1".to_string(), ExecutorState::Running),
            ("app-exec-2".to_string(), ExecutorState::Running),
        ]);
        s
    }

    fn live_executors(ids: &[i32]) -> BTreeMap<i32, PodView> {
        ids.iter().map(|id| (*id, pod(&format!("app-exec-{id}"), PodPhase::Running))).collect()
    }

    struct Case {
        name: &'static str,
        spec: SparkApplicationSpec,
        spec_ok: bool,
        generation: i64,
        status: SparkApplicationStatus,
        driver: Option<PodView>,
        executors: BTreeMap<i32, PodView>,
        after_secs: i64,
        want_state: AppState,
        want_actions: Vec<Action>,
        want_error: Option<&'static str>,
    }

    fn case(name: &'static str, status: SparkApplicationStatus) -> Case {
        Case {
            name,
            spec: spec(),
            spec_ok: true,
            generation: 1,
            status,
            driver: None,
            executors: BTreeMap::new(),
            after_secs: 0,
            want_state: AppState::New,
            want_actions: vec![],
            want_error: None,
        }
    }

    fn on_failure(retries: i32) -> SparkApplicationSpec {
        let mut s = spec();
        s.restart_policy = RestartPolicy {
            policy_type: RestartPolicyType::OnFailure,
            on_failure_retries: Some(retries),
            on_failure_retry_interval: Some(10),
            ..Default::default()
        };
        s
    }

    fn cases() -> Vec<Case> {
        let settings_timeout = 300;
        vec![
            Case {
                want_state: AppState::Submitted,
                want_actions: vec![Action::Submit],
                ..case("new application is submitted", SparkApplicationStatus::default())
            },
            Case {
                driver: Some(PodView { terminating: true, ..pod("app-driver", PodPhase::Running) }),
                want_state: AppState::New,
                ..case(
                    "new application waits for a terminating pod of the same name",
                    SparkApplicationStatus::default(),
                )
            },
            Case {
                spec_ok: false,
                want_state: AppState::Failed,
                want_actions: vec![],
                want_error: Some("invalid spec.executor.memory"),
                ..case("invalid spec fails without pods", SparkApplicationStatus::default())
            },
            Case {
                driver: Some(pod("app-driver", PodPhase::Pending)),
                want_state: AppState::Submitted,
                ..case("pending driver: wait", status(AppState::Submitted))
            },
            Case {
                driver: Some(pod("app-driver", PodPhase::Running)),
                want_state: AppState::Running,
                want_actions: vec![Action::CreateExecutor(1), Action::CreateExecutor(2)],
                ..case("running driver: executors created", status(AppState::Submitted))
            },
            Case {
                driver: Some(pod("app-driver", PodPhase::Running)),
                executors: BTreeMap::from([(1, pod("app-exec-1", PodPhase::Pending))]),
                want_state: AppState::Running,
                want_actions: vec![Action::CreateExecutor(2)],
                ..case(
                    "executor left by a half-done reconcile is kept; ids continue above it",
                    status(AppState::Submitted),
                )
            },
            Case {
                driver: Some(ended("app-driver", 0, "")),
                want_state: AppState::Completed,
                ..case("driver done before running was seen", status(AppState::Submitted))
            },
            Case {
                driver: Some(PodView {
                    waiting: Some("ImagePullBackOff: no such image".into()),
                    ..pod("app-driver", PodPhase::Pending)
                }),
                after_secs: settings_timeout,
                want_state: AppState::Failed,
                want_actions: vec![Action::DeleteAllPods],
                want_error: Some("did not start within 300s: ImagePullBackOff"),
                ..case("driver start timeout", status(AppState::Submitted))
            },
            Case {
                driver: None,
                want_state: AppState::Failed,
                want_error: Some("disappeared before it started"),
                ..case("driver pod gone before start", status(AppState::Submitted))
            },
            Case {
                driver: Some(pod("app-driver", PodPhase::Running)),
                executors: live_executors(&[1, 2]),
                want_state: AppState::Running,
                ..case("steady running", running_status())
            },
            Case {
                driver: Some(pod("app-driver", PodPhase::Running)),
                executors: {
                    let mut e = live_executors(&[1]);
                    e.insert(2, ended("app-exec-2", 1, "lost"));
                    e
                },
                want_state: AppState::Running,
                want_actions: vec![Action::CreateExecutor(3)],
                ..case("failed executor replaced with a new id", running_status())
            },
            Case {
                driver: Some(pod("app-driver", PodPhase::Running)),
                executors: live_executors(&[2]),
                want_state: AppState::Running,
                want_actions: vec![Action::CreateExecutor(3)],
                ..case("vanished executor replaced", running_status())
            },
            Case {
                driver: Some(ended("app-driver", 0, "")),
                executors: live_executors(&[1, 2]),
                want_state: AppState::Completed,
                want_actions: vec![Action::DeleteExecutors],
                ..case("driver exit 0 completes", running_status())
            },
            Case {
                driver: Some(ended("app-driver", 2, "bad input")),
                executors: live_executors(&[1, 2]),
                want_state: AppState::Failed,
                want_actions: vec![Action::DeleteExecutors],
                want_error: Some("exited with code 2 (Error): bad input"),
                ..case("driver exit 2 fails (Never)", running_status())
            },
            Case {
                spec: on_failure(1),
                driver: Some(ended("app-driver", 2, "bad input")),
                executors: live_executors(&[1, 2]),
                want_state: AppState::PendingRerun,
                want_actions: vec![Action::DeleteAllPods],
                want_error: Some("bad input"),
                ..case("driver failure with retries left reruns", running_status())
            },
            Case {
                spec: on_failure(1),
                driver: Some(ended("app-driver", 2, "again")),
                want_state: AppState::Failed,
                want_error: Some("again"),
                ..case("driver failure with no retries left fails", {
                    let mut s = running_status();
                    s.execution_failures = 1;
                    s
                })
            },
            Case {
                want_state: AppState::PendingRerun,
                ..case("rerun waits for its backoff", {
                    let mut s = status(AppState::PendingRerun);
                    s.rerun_time = Some(Time(t0().checked_add(SignedDuration::from_secs(5)).unwrap()));
                    s
                })
            },
            Case {
                driver: Some(PodView { terminating: true, ..pod("app-driver", PodPhase::Failed) }),
                want_state: AppState::PendingRerun,
                ..case("rerun waits for old pods to go", status(AppState::PendingRerun))
            },
            Case {
                want_state: AppState::Submitted,
                want_actions: vec![Action::Submit],
                ..case("rerun submits when due and clear", status(AppState::PendingRerun))
            },
            Case {
                spec: SparkApplicationSpec { suspend: true, ..spec() },
                generation: 2,
                driver: Some(pod("app-driver", PodPhase::Running)),
                executors: live_executors(&[1, 2]),
                want_state: AppState::Suspended,
                want_actions: vec![Action::DeleteAllPods],
                ..case("suspend deletes pods", running_status())
            },
            Case {
                generation: 3,
                want_state: AppState::Submitted,
                want_actions: vec![Action::Submit],
                ..case("resume submits", status(AppState::Suspended))
            },
            Case {
                generation: 2,
                driver: Some(pod("app-driver", PodPhase::Running)),
                want_state: AppState::PendingRerun,
                want_actions: vec![Action::DeleteAllPods],
                ..case("spec change while running restarts", running_status())
            },
            Case {
                generation: 2,
                want_state: AppState::Submitted,
                want_actions: vec![Action::Submit],
                ..case("fixed spec after failure submits", status(AppState::Failed))
            },
            Case {
                driver: Some(ended("app-driver", 0, "")),
                want_state: AppState::Completed,
                ..case("completed stays completed", {
                    let mut s = status(AppState::Completed);
                    s.termination_time = Some(Time(t0()));
                    s
                })
            },
            Case {
                spec: SparkApplicationSpec { time_to_live_seconds: Some(60), ..spec() },
                after_secs: 60,
                want_state: AppState::Completed,
                want_actions: vec![Action::DeleteApplication],
                ..case("ttl passed deletes the application", {
                    let mut s = status(AppState::Completed);
                    s.termination_time = Some(Time(t0()));
                    s
                })
            },
        ]
    }

    #[test]
    fn transitions() {
        let settings = Settings::default();
        for c in cases() {
            let obs = Observed {
                name: "app",
                namespace: "ns",
                generation: Some(c.generation),
                spec: &c.spec,
                spec_check: if c.spec_ok {
                    Ok(())
                } else {
                    Err(SpecError { field: "spec.executor.memory".into(), reason: "bad".into() })
                },
                web_ui: None,
                status: &c.status,
                driver: c.driver.clone(),
                executors: c.executors.clone(),
                now: t0().checked_add(SignedDuration::from_secs(c.after_secs)).unwrap(),
            };
            let d = decide(&obs, &settings);
            assert_eq!(d.status.application_state.state, c.want_state, "{}", c.name);
            assert_eq!(d.actions, c.want_actions, "{}", c.name);
            assert_eq!(d.status.observed_generation, Some(c.generation), "{}", c.name);
            if let Some(want) = c.want_error {
                let got = d.status.application_state.error_message.clone().unwrap_or_default();
                assert!(got.contains(want), "{}: {got:?} lacks {want:?}", c.name);
            }
            // Deciding again from the result is stable: no new state, no repeated work
            // beyond what the observation still calls for.
            assert_eq!(decide(&obs, &settings), d, "{}: deterministic", c.name);
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let secs = |n| backoff(Some(10), n).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(5), secs(6), secs(40)], [10, 20, 40, 160, 160, 160]);
        assert_eq!(backoff(None, 1).as_secs(), DEFAULT_RETRY_INTERVAL_SECS);
        assert_eq!(backoff(Some(0), 3).as_secs(), 0);
    }

    #[test]
    fn submission_rejection_retries_then_gives_up() {
        let mut s = spec();
        s.restart_policy = RestartPolicy {
            policy_type: RestartPolicyType::OnFailure,
            on_submission_failure_retries: Some(1),
            on_submission_failure_retry_interval: Some(7),
            ..Default::default()
        };
        let fresh = SparkApplicationStatus::default();
        let obs = Observed {
            name: "app",
            namespace: "ns",
            generation: Some(1),
            spec: &s,
            spec_check: Ok(()),
            web_ui: None,
            status: &fresh,
            driver: None,
            executors: BTreeMap::new(),
            now: t0(),
        };
        let d = submission_failed(&s, decide(&obs, &Settings::default()), "forbidden".into(), t0());
        assert_eq!(d.status.application_state.state, AppState::PendingRerun);
        assert_eq!(d.status.submission_failures, 1);
        assert_eq!(d.requeue_after, Some(Duration::from_secs(7)));
        assert!(d.actions.is_empty());
        let again = submission_failed(&s, Decision { status: d.status.clone(), ..d }, "forbidden".into(), t0());
        assert_eq!(again.status.application_state.state, AppState::SubmissionFailed);
        assert!(again.status.application_state.error_message.unwrap().contains("forbidden"));
    }

    #[test]
    fn submission_points_driver_info_at_the_ui_service_and_ingress() {
        let spec: SparkApplicationSpec = serde_json::from_value(serde_json::json!({
            "image": "img", "mainApplicationFile": "local:///bin/job",
            "sparkConf": {"spark.ui.port": "4050"}, "sparkUIOptions": {"servicePort": 80}
        }))
        .unwrap();
        let mut app = crate::crd::SparkApplication::new("app", spec.clone());
        app.metadata.namespace = Some("ns".into());
        let settings = crate::ui::UiSettings {
            ingress_url_format: Some("{{$appName}}.{{$appNamespace}}.example.com".into()),
            ..Default::default()
        };
        let plan = crate::ui::plan(&app, &settings).unwrap();
        let fresh = SparkApplicationStatus::default();
        let obs = Observed {
            name: "app",
            namespace: "ns",
            generation: Some(1),
            spec: &spec,
            spec_check: Ok(()),
            web_ui: plan.web_ui.clone(),
            status: &fresh,
            driver: None,
            executors: BTreeMap::new(),
            now: t0(),
        };
        let mut d = decide(&obs, &Settings::default());
        assert_eq!(d.actions, [Action::Submit]);
        let info = d.status.driver_info.clone();
        assert_eq!(info.pod_name.as_deref(), Some("app-driver"));
        assert_eq!(info.web_ui_service_name.as_deref(), Some("app-ui-svc"));
        assert_eq!(info.web_ui_port, Some(80), "the Service's port, not the driver's 4050");
        assert_eq!(info.web_ui_address, None, "no cluster IP before the Service is applied");
        assert_eq!(info.web_ui_ingress_name.as_deref(), Some("app-ui-ingress"));
        assert_eq!(info.web_ui_ingress_address.as_deref(), Some("http://app.ns.example.com"));

        // The Service as the API server returned it: its cluster IP makes the address.
        let service = |name: &str, ip: &str| -> Service {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": {"clusterIP": ip}})).unwrap()
        };
        record_web_ui_service(&mut d.status, &service("app-driver-svc", "10.0.0.9"));
        assert_eq!(d.status.driver_info.web_ui_address, None, "another Service");
        record_web_ui_service(&mut d.status, &service("app-ui-svc", "None"));
        assert_eq!(d.status.driver_info.web_ui_address, None, "headless");
        record_web_ui_service(&mut d.status, &service("app-ui-svc", "10.0.0.7"));
        assert_eq!(d.status.driver_info.web_ui_address.as_deref(), Some("10.0.0.7:80"));
        record_web_ui_service(&mut d.status, &service("app-ui-svc", "fd00::7"));
        assert_eq!(d.status.driver_info.web_ui_address.as_deref(), Some("[fd00::7]:80"));

        // With the UI off there is no UI Service, and nothing points at one.
        let obs = Observed { web_ui: None, ..obs };
        let mut d = decide(&obs, &Settings::default());
        let info = d.status.driver_info.clone();
        assert_eq!((info.web_ui_service_name, info.web_ui_port, info.web_ui_ingress_name), (None, None, None));
        record_web_ui_service(&mut d.status, &service("app-ui-svc", "10.0.0.7"));
        assert_eq!(d.status.driver_info.web_ui_address, None);
    }
}
