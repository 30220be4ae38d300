//! The scheduler's decision: a pure function from a scheduled application, its runs and
//! the time to what to create, what to delete and the status to write. The clock is an
//! argument, so tests step through minutes, days and clock changes without waiting.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::scheduled::crd::{
    ConcurrencyPolicy, DEFAULT_RUN_HISTORY_LIMIT, ScheduleState, ScheduledSparkApplication,
    ScheduledSparkApplicationStatus,
};
use crate::scheduled::run::{self, MAX_SCHEDULED_NAME_LEN, RunOutcome, RunView};
use crate::scheduled::schedule::Schedule;
use crate::spec;
use crate::state::Note;
use crate::ui::UiSettings;

/// How long a run that waits (`Forbid`) is looked at again without any change of its
/// runs: a safety net, since the end of a run wakes the reconcile by itself.
pub const WAIT_RECHECK: Duration = Duration::from_secs(60);

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDecision {
    /// The run to create, with its scheduled time.
    pub create: Option<(String, Timestamp)>,
    /// Active runs to delete before the new run is created (`Replace`).
    pub replace: Vec<String>,
    /// Finished runs beyond the history limits, deleted after the new run is created.
    pub delete: Vec<String>,
    /// The status to write.
    pub status: ScheduledSparkApplicationStatus,
    /// When to look again (the next scheduled time); `None` waits for a change.
    pub requeue_after: Option<Duration>,
    /// Events to record.
    pub notes: Vec<Note>,
}

fn note(warning: bool, reason: &str, message: String) -> Note {
    Note { warning, reason: reason.to_string(), message }
}

/// Checks what a scheduled application can check before its first run: the schedule,
/// the time zone, its name's length and the template (as a run's `SparkApplication`).
pub fn validate(scheduled: &ScheduledSparkApplication, ui: &UiSettings) -> Result<Schedule, String> {
    let name = scheduled.name_any();
    if name.len() > MAX_SCHEDULED_NAME_LEN {
        return Err(format!(
            "metadata.name: {} characters is longer than {MAX_SCHEDULED_NAME_LEN}, the most that leaves room for a run's suffix (-<Unix seconds>) and its driver Service's",
            name.len()
        ));
    }
    let schedule =
        Schedule::parse(&scheduled.spec.schedule, scheduled.spec.time_zone.as_deref()).map_err(|e| e.to_string())?;
    let probe = run::run_application(scheduled, Timestamp::UNIX_EPOCH);
    spec::validate_with(&probe, ui).map_err(|e| format!("spec.template: {e}"))?;
    if scheduled.spec.template.suspend {
        return Err(
            "spec.template.suspend: true would make every run wait forever; set spec.suspend to pause the schedule"
                .to_string(),
        );
    }
    Ok(schedule)
}

fn limit(value: Option<i32>) -> usize {
    usize::try_from(value.unwrap_or(DEFAULT_RUN_HISTORY_LIMIT)).unwrap_or(0)
}

/// Decides what the scheduled application needs at `now`, given its runs.
///
/// - The latest scheduled time in `(status.lastRun, now]` (from the object's creation when
///   nothing ran yet) is due; earlier missed times are dropped.
/// - A due time creates a run unless `suspend` is set; under `Forbid` it waits while a
///   run is active, under `Replace` the active runs are deleted first.
/// - Completed and failed runs beyond `successfulRunHistoryLimit` and
///   `failedRunHistoryLimit` are deleted, oldest first.
/// - An invalid spec ([`validate`]) creates nothing and says why in `reason`.
pub fn decide(
    scheduled: &ScheduledSparkApplication,
    runs: &[RunView],
    now: Timestamp,
    ui: &UiSettings,
) -> ScheduleDecision {
    let spec = &scheduled.spec;
    let old = scheduled.status.clone().unwrap_or_default();
    let mut status = ScheduledSparkApplicationStatus {
        last_run: old.last_run.clone(),
        last_run_name: old.last_run_name.clone(),
        observed_generation: scheduled.metadata.generation,
        ..Default::default()
    };
    let mut decision = ScheduleDecision {
        create: None,
        replace: Vec::new(),
        delete: Vec::new(),
        status: Default::default(),
        requeue_after: None,
        notes: vec![],
    };

    // History: newest first per outcome; those past the limit go.
    let mut runs: Vec<&RunView> = runs.iter().filter(|r| !r.deleting).collect();
    runs.sort_by(|a, b| b.scheduled.cmp(&a.scheduled).then_with(|| b.name.cmp(&a.name)));
    for (outcome, keep, names) in [
        (RunOutcome::Succeeded, limit(spec.successful_run_history_limit), &mut status.past_successful_run_names),
        (RunOutcome::Failed, limit(spec.failed_run_history_limit), &mut status.past_failed_run_names),
    ] {
        for (i, r) in runs.iter().filter(|r| r.outcome == outcome).enumerate() {
            if i < keep {
                names.push(r.name.clone());
            } else {
                decision.delete.push(r.name.clone());
            }
        }
    }
    let mut active: Vec<String> =
        runs.iter().rev().filter(|r| r.outcome == RunOutcome::Active).map(|r| r.name.clone()).collect();

    let schedule = match validate(scheduled, ui) {
        Ok(schedule) => schedule,
        Err(reason) => {
            if old.schedule_state != ScheduleState::FailedValidation || old.reason.as_deref() != Some(&reason) {
                decision.notes.push(note(true, "FailedValidation", reason.clone()));
            }
            status.schedule_state = ScheduleState::FailedValidation;
            status.reason = Some(reason);
            status.active_run_names = active;
            decision.status = status;
            return decision;
        }
    };
    status.schedule_state = ScheduleState::Scheduled;
    if spec.suspend {
        status.active_run_names = active;
        decision.status = status;
        return decision;
    }

    let created = scheduled.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let cursor = old.last_run.as_ref().map_or(created, |t| t.0);
    let mut next = schedule.next_after(cursor);
    if let Some(due) = schedule.latest_due(cursor, now) {
        let name = run::run_name(scheduled, due);
        let exists = runs.iter().any(|r| r.name == name);
        match spec.concurrency_policy {
            _ if exists => {
                // Created by a reconcile whose status write did not land: this time ran.
                status.last_run = Some(Time(due));
                status.last_run_name = Some(name);
                next = schedule.next_after(due);
            }
            ConcurrencyPolicy::Forbid if !active.is_empty() => {
                // Without the due time, which moves on while it waits: one event and one
                // status write per wait (status.nextRun has the time).
                let reason = format!("the next run waits for {} to end (concurrencyPolicy Forbid)", active.join(", "));
                if old.reason.as_deref() != Some(&reason) {
                    decision.notes.push(note(false, "RunWaiting", reason.clone()));
                }
                status.reason = Some(reason);
                next = Some(due);
                decision.requeue_after = Some(WAIT_RECHECK);
            }
            policy => {
                if policy == ConcurrencyPolicy::Replace && !active.is_empty() {
                    decision.notes.push(note(
                        false,
                        "RunReplaced",
                        format!("deleting {} for the run due at {due} (concurrencyPolicy Replace)", active.join(", ")),
                    ));
                    decision.replace.append(&mut active);
                }
                decision.notes.push(note(false, "RunCreated", format!("created {name} for {due}")));
                active.push(name.clone());
                status.last_run = Some(Time(due));
                status.last_run_name = Some(name.clone());
                decision.create = Some((name, due));
                next = schedule.next_after(due);
            }
        }
    }
    if decision.requeue_after.is_none() {
        decision.requeue_after = next.map(|t| {
            let wait = t.duration_since(now);
            Duration::try_from(wait).unwrap_or(Duration::ZERO).max(Duration::from_millis(1))
        });
    }
    status.next_run = next.map(Time);
    status.active_run_names = active;
    decision.status = status;
    decision
}

#[cfg(test)]
mod tests;
