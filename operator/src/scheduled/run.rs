//! The `SparkApplication`s a `ScheduledSparkApplication` creates (its runs): their names,
//! labels and owner, and what the scheduler reads back from them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::builder::{LABEL_MANAGED_BY, MANAGED_BY};
use crate::crd::{AppState, SparkApplication};
use crate::scheduled::crd::ScheduledSparkApplication;
use crate::spec::MAX_APP_NAME_LEN;

/// Label with the name of the scheduled application a run belongs to (kubeflow's key).
pub const LABEL_SCHEDULED_APP_NAME: &str = "sparkoperator.k8s.io/scheduled-app-name";
/// Label with the UID of the scheduled application object a run belongs to: the runs of
/// an earlier object of the same name are never counted as this one's.
pub const LABEL_SCHEDULED_APP_UID: &str = "ember.dev/scheduled-app-uid";
/// Annotation with a run's scheduled time (RFC 3339, UTC).
pub const ANNOTATION_SCHEDULED_TIME: &str = "ember.dev/scheduled-time";

/// Characters a run's name adds to the scheduled application's: `-` and ten digits of
/// Unix seconds (enough until the year 2286).
pub const RUN_SUFFIX_LEN: usize = 11;
/// Longest scheduled application name: its runs' names must pass
/// [`crate::spec::MAX_APP_NAME_LEN`].
pub const MAX_SCHEDULED_NAME_LEN: usize = MAX_APP_NAME_LEN - RUN_SUFFIX_LEN;

/// How a run stands, from its `SparkApplication` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Not yet completed or failed (reruns included).
    Active,
    /// `COMPLETED`.
    Succeeded,
    /// `FAILED` or `SUBMISSION_FAILED`: no retries left.
    Failed,
}

/// What the scheduler knows of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// The run's `SparkApplication` name.
    pub name: String,
    /// Its scheduled time.
    pub scheduled: Timestamp,
    /// How it stands.
    pub outcome: RunOutcome,
    /// Being deleted already.
    pub deleting: bool,
}

/// The name of the run scheduled at `at`: `<scheduled name>-<Unix seconds>`. A time has one
/// name, so a run created twice for the same time (an operator restarting between the
/// create and its status write) is one object.
pub fn run_name(scheduled: &ScheduledSparkApplication, at: Timestamp) -> String {
    format!("{}-{}", scheduled.name_any(), at.as_second())
}

/// The controller owner reference every run carries: deleting the scheduled application
/// deletes its runs, and a run's changes wake its scheduled application's reconcile.
pub fn owner_reference(scheduled: &ScheduledSparkApplication) -> OwnerReference {
    OwnerReference {
        api_version: ScheduledSparkApplication::api_version(&()).into_owned(),
        kind: ScheduledSparkApplication::kind(&()).into_owned(),
        name: scheduled.name_any(),
        uid: scheduled.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The run scheduled at `at`: the template under [`run_name`], with the scheduled
/// application's labels plus [`LABEL_SCHEDULED_APP_NAME`], [`LABEL_SCHEDULED_APP_UID`] and
/// [`LABEL_MANAGED_BY`], the time in [`ANNOTATION_SCHEDULED_TIME`], and
/// [`owner_reference`].
pub fn run_application(scheduled: &ScheduledSparkApplication, at: Timestamp) -> SparkApplication {
    let mut labels: BTreeMap<String, String> = scheduled.labels().clone();
    labels.insert(LABEL_SCHEDULED_APP_NAME.to_string(), scheduled.name_any());
    labels.insert(LABEL_SCHEDULED_APP_UID.to_string(), scheduled.uid().unwrap_or_default());
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    SparkApplication {
        metadata: ObjectMeta {
            name: Some(run_name(scheduled, at)),
            namespace: scheduled.namespace(),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(ANNOTATION_SCHEDULED_TIME.to_string(), at.to_string())])),
            owner_references: Some(vec![owner_reference(scheduled)]),
            ..Default::default()
        },
        spec: scheduled.spec.template.clone(),
        status: None,
    }
}

/// Whether `app` is a run of this scheduled application object: its controller owner
/// reference names it with its UID.
pub fn is_run_of(app: &SparkApplication, scheduled: &ScheduledSparkApplication) -> bool {
    let uid = scheduled.uid().unwrap_or_default();
    app.owner_references()
        .iter()
        .any(|r| r.controller == Some(true) && r.kind == ScheduledSparkApplication::kind(&()) && r.uid == uid)
}

/// What the scheduler reads of a run: its time from [`ANNOTATION_SCHEDULED_TIME`] (else
/// its creation time) and its outcome from its state.
pub fn run_view(app: &SparkApplication) -> RunView {
    let scheduled = app
        .annotations()
        .get(ANNOTATION_SCHEDULED_TIME)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .or_else(|| app.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let state = app.status.as_ref().map(|s| s.application_state.state).unwrap_or_default();
    let outcome = match state {
        AppState::Completed => RunOutcome::Succeeded,
        AppState::Failed | AppState::SubmissionFailed => RunOutcome::Failed,
        _ => RunOutcome::Active,
    };
    RunView { name: app.name_any(), scheduled, outcome, deleting: app.metadata.deletion_timestamp.is_some() }
}
