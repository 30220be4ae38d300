//! The `ScheduledSparkApplication` custom resource: a [`SparkApplicationSpec`] run on a
//! cron schedule. Field names are kubeflow spark-operator's `v1beta2` ones (with v2's
//! `timeZone`); the group is Ember's own, like [`crate::crd::SparkApplication`]'s.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::SparkApplicationSpec;

/// Runs kept of each outcome when the spec gives no limit (kubeflow's default).
pub const DEFAULT_RUN_HISTORY_LIMIT: i32 = 1;

/// A `SparkApplication` created on a cron schedule.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ember.dev",
    version = "v1alpha1",
    kind = "ScheduledSparkApplication",
    plural = "scheduledsparkapplications",
    singular = "scheduledsparkapplication",
    shortname = "scheduledsparkapp",
    namespaced,
    status = "ScheduledSparkApplicationStatus",
    doc = "An Ember application run on a cron schedule: each run is a SparkApplication owned by this object.",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Suspend","type":"boolean","jsonPath":".spec.suspend"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.scheduleState"}"#,
    printcolumn = r#"{"name":"Last Run","type":"date","jsonPath":".status.lastRun"}"#,
    printcolumn = r#"{"name":"Next Run","type":"string","jsonPath":".status.nextRun"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledSparkApplicationSpec {
    /// When to run: a cron expression of five fields (minute hour day-of-month month
    /// day-of-week, as Kubernetes CronJob and kubeflow take), optionally with a leading
    /// seconds field (six fields); a nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`); or `@every <duration>` (whole seconds: `@every 90s`, `@every 1h30m`; so long
    /// after the previous run's scheduled time). A `CRON_TZ=<zone> ` prefix sets the time
    /// zone as `timeZone` does.
    #[schemars(length(min = 1))]
    pub schedule: String,

    /// IANA time zone the schedule is read in (`Europe/Berlin`, `America/New_York`), or
    /// `UTC` (the default), or `Local` (the operator's own zone). Daylight saving time is
    /// honoured: with a single minute and hour (`30 2 * * *`), a time skipped by a clock
    /// change runs right after the change and a repeated one runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,

    /// The application each run creates, named `<name>-<scheduled time in Unix seconds>`.
    /// Its `suspend` must not be true (every run would wait forever).
    pub template: SparkApplicationSpec,

    /// True stops new runs; runs already started go on. Ticks passed while suspended are
    /// not made up for, except the latest one when `suspend` is set back to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,

    /// What a scheduled time does while an earlier run is still active.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,

    /// Completed runs to keep (the newest ones); older ones are deleted. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_run_history_limit: Option<i32>,

    /// Failed runs to keep (the newest ones); older ones are deleted. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_run_history_limit: Option<i32>,
}

/// What a scheduled time does while an earlier run is active (kubeflow's and Kubernetes
/// CronJob's `concurrencyPolicy`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Start the new run alongside the active ones.
    #[default]
    Allow,
    /// Start no run while one is active. The time is not lost: when the active run ends,
    /// the latest time that passed meanwhile runs at once (as a CronJob without
    /// `startingDeadlineSeconds` does).
    Forbid,
    /// Delete the active runs, then start the new one.
    Replace,
}

/// Whether the operator accepted the schedule (kubeflow's `ScheduleState`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ScheduleState {
    /// Not yet seen by the operator.
    #[default]
    #[serde(rename = "")]
    New,
    /// The schedule and the template are valid; runs are created on time.
    Scheduled,
    /// The schedule, the time zone or the template is invalid (see `reason`); nothing
    /// runs until the spec is fixed.
    FailedValidation,
}

/// Observed state of a scheduled application, written only by the operator.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledSparkApplicationStatus {
    /// Whether the spec was accepted.
    #[serde(default)]
    pub schedule_state: ScheduleState,

    /// Why the spec was refused, or what a due run waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// Scheduled time of the latest run created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Time>,

    /// Name of the latest run created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_name: Option<String>,

    /// The next scheduled time: in the past while a due run waits (`Forbid`); absent
    /// while suspended or invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Time>,

    /// Runs not yet completed or failed, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_run_names: Vec<String>,

    /// Completed runs kept under `successfulRunHistoryLimit`, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_successful_run_names: Vec<String>,

    /// Failed runs kept under `failedRunHistoryLimit`, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_failed_run_names: Vec<String>,

    /// The `metadata.generation` of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
