//! The application state machine: a pure function from what the operator observes (the
//! application's spec and status, its pods, the time) to the next status and the actions
//! that bring the cluster there. The reconciler only observes, calls [`decide`] and carries
//! out the actions, so every transition is tested here without an API server.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use k8s_openapi::api::core::v1::Service;

use crate::builder::driver_pod_name;
use crate::crd::{
    AppCondition, AppState, DriverInfo, ExecutorState, RestartPolicyType, SparkApplicationSpec, SparkApplicationStatus,
};
use crate::spec::SpecError;
use crate::ui::DriverExposure;

mod executors;
use executors::manage_executors;

/// Default seconds before a rerun (kubeflow's default retry interval is 5 s as well).
pub const DEFAULT_RETRY_INTERVAL_SECS: i64 = 5;
/// Backoff grows by doubling up to this multiple of the configured interval.
pub const MAX_BACKOFF_FACTOR: i64 = 16;
/// Requeue interval while waiting for pods to go away or as a safety net while active.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Requeue interval while waiting for deleted pods to disappear before a rerun.
pub const SHORT_REQUEUE: Duration = Duration::from_secs(5);
/// How long past its deletion deadline (`metadata.deletionTimestamp`, which already
/// includes the grace period) a terminating pod may linger before it is force-deleted:
/// a pod whose node stopped answering stays Terminating for ever, and would block the
/// rerun that reuses its name.
///
/// Long, because a pod on a partitioned node may still be running: force-deleting it
/// lets the rerun's new driver start beside it (Kubernetes' own warning about force
/// deletion); five minutes is the default `pod-eviction-timeout` after which the node
/// controller gives up on such a node too.
pub const STUCK_TERMINATING: Duration = Duration::from_secs(300);

/// Operator-wide settings of the state machine and the reconciler.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long a submitted driver pod may stay pending (unschedulable, pulling an image,
    /// ...) before the run fails.
    pub driver_start_timeout: Duration,
    /// How long an executor pod may stay pending (unschedulable, pulling an image, ...).
    /// When no executor of the run is running by then, the run fails with the pod's
    /// waiting reason instead of waiting for ever; otherwise an `ExecutorPending` warning
    /// is recorded and the run goes on with the executors it has.
    pub executor_start_timeout: Duration,
    /// Failed executors replaced per run; past this, failed executors are not replaced.
    pub max_executor_failures: i32,
    /// The UI Service, Ingresses and metrics scraping.
    pub ui: crate::ui::UiSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            driver_start_timeout: Duration::from_secs(300),
            executor_start_timeout: Duration::from_secs(300),
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
    /// The pod's UID.
    pub uid: Option<String>,
    /// When a terminating pod should be gone (`metadata.deletionTimestamp`).
    pub deletion_deadline: Option<Timestamp>,
    /// When the pod was created (`metadata.creationTimestamp`).
    pub created: Option<Timestamp>,
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
    /// Names of pods an earlier application object of the same name created (another
    /// UID; [`crate::builder::LABEL_APP_UID`]) that still exist. They are never counted,
    /// adopted or deleted as this application's; a submission waits until the garbage
    /// collector has removed them, since their names are this application's too.
    pub earlier_pods: Vec<String>,
    /// The driver's executor demand, read from its UI while it runs with dynamic
    /// allocation on ([`crate::allocation`]); None otherwise or when it did not answer.
    pub demand: Option<crate::allocation::Demand>,
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
    /// Delete one executor pod (precondition: its UID): dynamic allocation releases it.
    DeleteExecutor {
        /// Pod name.
        name: String,
        /// Its UID.
        uid: String,
    },
    /// Delete a pod stuck Terminating with no grace period (precondition: its UID).
    ForceDeletePod {
        /// Pod name.
        name: String,
        /// Its UID.
        uid: String,
    },
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

    /// Force-deletes this application's pods that are overdue past their deletion
    /// deadline by [`STUCK_TERMINATING`], and requeues for the next one due.
    fn force_delete_stuck(&mut self) {
        let obs = self.obs;
        let grace = SignedDuration::try_from(STUCK_TERMINATING).unwrap_or(SignedDuration::MAX);
        for pod in obs.driver.iter().chain(obs.executors.values()).filter(|p| p.terminating) {
            let (Some(deadline), Some(uid)) = (pod.deletion_deadline, pod.uid.clone()) else { continue };
            let due = deadline.saturating_add(grace).unwrap_or(deadline);
            if obs.now < due {
                self.requeue(until(obs.now, due));
                continue;
            }
            let action = Action::ForceDeletePod { name: pod.name.clone(), uid };
            if !self.actions.contains(&action) {
                self.actions.push(action);
                self.note(
                    true,
                    "PodForceDeleted",
                    format!(
                        "pod {} was still terminating {}s after its deletion deadline (its node may be gone); \
                         deleted without grace",
                        pod.name,
                        STUCK_TERMINATING.as_secs()
                    ),
                );
            }
        }
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
            // Pods of an earlier application object of the same name may still be going
            // away; the driver pod's name is reused, so wait for them.
            let terminating =
                obs.driver.as_ref().is_some_and(|p| p.terminating) || obs.executors.values().any(|p| p.terminating);
            if !obs.earlier_pods.is_empty() {
                draft.status.application_state.error_message = Some(format!(
                    "waiting for the pods of an earlier SparkApplication named {} to be deleted: {}",
                    obs.name,
                    obs.earlier_pods.join(", ")
                ));
                draft.requeue(SHORT_REQUEUE);
            } else if terminating {
                draft.force_delete_stuck();
                draft.requeue(SHORT_REQUEUE);
            } else {
                draft.status.application_state.error_message = None;
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
                // The driver ran and ended between two looks: the run counts as an
                // execution attempt all the same (its container started).
                PodPhase::Succeeded => {
                    draft.status.execution_attempts += 1;
                    draft.complete()
                }
                PodPhase::Failed => {
                    if driver.termination.is_some() {
                        draft.status.execution_attempts += 1;
                    }
                    draft.fail_run(describe_end(&driver))
                }
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
    } else if draft.obs.driver.is_some() || !draft.obs.executors.is_empty() || !draft.obs.earlier_pods.is_empty() {
        // Deleted pods may still be terminating; the driver pod's name is reused.
        draft.delete_all_pods();
        draft.force_delete_stuck();
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
mod tests;
