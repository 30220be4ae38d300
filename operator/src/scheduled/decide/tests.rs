use super::*;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use crate::scheduled::crd::ScheduledSparkApplication;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A scheduled application created at 10:00:00 UTC with `spec` merged over a valid one.
fn scheduled(spec: Value) -> ScheduledSparkApplication {
    let mut base = json!({
        "schedule": "* * * * *",
        "template": {"image": "ember:test", "mainApplicationFile": "local:///opt/ember/bin/ember-examples"},
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "ember.dev/v1alpha1", "kind": "ScheduledSparkApplication",
        "metadata": {"name": "nightly", "namespace": "jobs", "uid": "uid-1", "generation": 1,
                     "creationTimestamp": "2026-12-01T10:00:00Z"},
        "spec": base,
    }))
    .unwrap()
}

fn run(name: &str, scheduled: &str, outcome: RunOutcome) -> RunView {
    RunView { name: name.to_string(), scheduled: at(scheduled), outcome, deleting: false }
}

/// `scheduled` after `decision` was written and carried out.
fn after(mut app: ScheduledSparkApplication, decision: &ScheduleDecision) -> ScheduledSparkApplication {
    app.status = Some(decision.status.clone());
    app
}

fn ui() -> UiSettings {
    UiSettings::default()
}

#[test]
fn every_minute_with_forbid_runs_once_at_a_time_and_the_waiting_time_runs_when_the_run_ends() {
    let app = scheduled(json!({"concurrencyPolicy": "Forbid"}));
    // 10:00:30: nothing is due yet; look again at 10:01.
    let d = decide(&app, &[], at("2026-12-01T10:00:30Z"), &ui());
    assert_eq!(d.create, None);
    assert_eq!(d.status.schedule_state, ScheduleState::Scheduled);
    assert_eq!(d.status.next_run, Some(Time(at("2026-12-01T10:01:00Z"))));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    let app = after(app, &d);

    // 10:01:00: the first run.
    let first = "nightly-1796119260";
    let d = decide(&app, &[], at("2026-12-01T10:01:00Z"), &ui());
    assert_eq!(d.create, Some((first.to_string(), at("2026-12-01T10:01:00Z"))));
    assert_eq!(d.status.last_run, Some(Time(at("2026-12-01T10:01:00Z"))));
    assert_eq!(d.status.last_run_name.as_deref(), Some(first));
    assert_eq!(d.status.active_run_names, [first]);
    assert_eq!(d.status.next_run, Some(Time(at("2026-12-01T10:02:00Z"))));
    assert_eq!(d.notes[0].reason, "RunCreated");
    let app = after(app, &d);

    // 10:02:00 and 10:02:30, the first run still active: the 10:02 run waits.
    let active = [run(first, "2026-12-01T10:01:00Z", RunOutcome::Active)];
    let d = decide(&app, &active, at("2026-12-01T10:02:00Z"), &ui());
    assert_eq!(d.create, None);
    assert!(d.delete.is_empty());
    assert_eq!(d.status.next_run, Some(Time(at("2026-12-01T10:02:00Z"))), "the waiting time, in the past");
    let reason = d.status.reason.clone().unwrap();
    assert!(reason.contains("next run waits for nightly-1796119260 to end (concurrencyPolicy Forbid)"), "{reason}");
    assert_eq!(d.notes.len(), 1, "one RunWaiting event");
    assert_eq!(d.requeue_after, Some(WAIT_RECHECK));
    let app = after(app, &d);
    let d = decide(&app, &active, at("2026-12-01T10:02:30Z"), &ui());
    assert_eq!(d.create, None);
    assert!(d.notes.is_empty(), "the same wait is not reported again");

    // 10:02:40: the first run completed; the 10:02 run starts at once.
    let done = [run(first, "2026-12-01T10:01:00Z", RunOutcome::Succeeded)];
    let d = decide(&app, &done, at("2026-12-01T10:02:40Z"), &ui());
    let second = "nightly-1796119320";
    assert_eq!(d.create, Some((second.to_string(), at("2026-12-01T10:02:00Z"))));
    assert_eq!(d.status.reason, None);
    assert_eq!(d.status.past_successful_run_names, [first]);
    assert_eq!(d.status.next_run, Some(Time(at("2026-12-01T10:03:00Z"))));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(20)));
}

#[test]
fn allow_starts_alongside_and_replace_deletes_the_active_runs_first() {
    let last = json!({"lastRun": "2026-12-01T10:01:00Z", "lastRunName": "nightly-1796119260"});
    let active = [run("nightly-1796119260", "2026-12-01T10:01:00Z", RunOutcome::Active)];
    for (policy, deleted) in [("Allow", vec![]), ("Replace", vec!["nightly-1796119260".to_string()])] {
        let mut app = scheduled(json!({"concurrencyPolicy": policy}));
        app.status = Some(serde_json::from_value(last.clone()).unwrap());
        let d = decide(&app, &active, at("2026-12-01T10:02:05Z"), &ui());
        assert_eq!(d.create.as_ref().map(|c| c.0.as_str()), Some("nightly-1796119320"), "{policy}");
        assert_eq!(d.replace, deleted, "{policy}");
        assert!(d.delete.is_empty(), "{policy}");
        let expected_active: Vec<&str> = if policy == "Allow" {
            vec!["nightly-1796119260", "nightly-1796119320"]
        } else {
            vec!["nightly-1796119320"]
        };
        assert_eq!(d.status.active_run_names, expected_active, "{policy}");
    }
}

#[test]
fn history_limits_keep_the_newest_runs_of_each_outcome() {
    let app = scheduled(json!({"successfulRunHistoryLimit": 2, "failedRunHistoryLimit": 0, "suspend": true}));
    let runs = [
        run("nightly-1", "2026-12-01T10:01:00Z", RunOutcome::Succeeded),
        run("nightly-2", "2026-12-01T10:02:00Z", RunOutcome::Failed),
        run("nightly-3", "2026-12-01T10:03:00Z", RunOutcome::Succeeded),
        run("nightly-4", "2026-12-01T10:04:00Z", RunOutcome::Succeeded),
        run("nightly-5", "2026-12-01T10:05:00Z", RunOutcome::Failed),
        run("nightly-6", "2026-12-01T10:06:00Z", RunOutcome::Active),
        RunView { deleting: true, ..run("nightly-0", "2026-12-01T10:00:00Z", RunOutcome::Succeeded) },
    ];
    let d = decide(&app, &runs, at("2026-12-01T10:06:30Z"), &ui());
    assert_eq!(d.delete, ["nightly-1", "nightly-5", "nightly-2"]);
    assert_eq!(d.status.past_successful_run_names, ["nightly-4", "nightly-3"]);
    assert!(d.status.past_failed_run_names.is_empty());
    assert_eq!(d.status.active_run_names, ["nightly-6"]);
    // Defaults: one of each.
    let app = scheduled(json!({"suspend": true}));
    let d = decide(&app, &runs, at("2026-12-01T10:06:30Z"), &ui());
    assert_eq!(d.status.past_successful_run_names, ["nightly-4"]);
    assert_eq!(d.status.past_failed_run_names, ["nightly-5"]);
    assert_eq!(d.delete, ["nightly-3", "nightly-1", "nightly-2"]);
}

#[test]
fn suspended_runs_nothing_and_the_latest_missed_time_runs_on_resume() {
    let app = scheduled(json!({"suspend": true}));
    let d = decide(&app, &[], at("2026-12-01T10:05:30Z"), &ui());
    assert_eq!(d.create, None);
    assert_eq!(d.status.next_run, None);
    assert_eq!(d.requeue_after, None, "a spec change wakes it");
    let app = after(scheduled(json!({"suspend": false})), &d);
    let d = decide(&app, &[], at("2026-12-01T10:07:30Z"), &ui());
    assert_eq!(
        d.create,
        Some(("nightly-1796119620".to_string(), at("2026-12-01T10:07:00Z"))),
        "only 10:07, not 10:01..10:06"
    );
}

#[test]
fn the_schedule_is_read_in_its_time_zone() {
    let app = scheduled(json!({"schedule": "0 12 * * *", "timeZone": "Europe/Berlin"}));
    let d = decide(&app, &[], at("2026-12-01T11:00:00Z"), &ui());
    assert_eq!(d.create.unwrap().1, at("2026-12-01T11:00:00Z"), "12:00 in Berlin is 11:00 UTC in winter");
    let d = decide(&app, &[], at("2026-12-01T10:59:59Z"), &ui());
    assert_eq!(d.create, None);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
}

#[test]
fn an_invalid_spec_runs_nothing_and_says_why_once() {
    for (spec, want) in [
        (json!({"schedule": "every night"}), "spec.schedule \"every night\" is not a cron expression"),
        (json!({"timeZone": "Berlin"}), "spec.timeZone \"Berlin\" is not a known time zone"),
        (
            json!({"template": {"image": "ember:test", "mainApplicationFile": "local:///opt/ember/bin/job", "suspend": true}}),
            "spec.template.suspend",
        ),
        (
            json!({"template": {"image": "ember:test", "mainApplicationFile": "/opt/ember/bin/job"}}),
            "spec.template: invalid spec.mainApplicationFile",
        ),
    ] {
        let app = scheduled(spec);
        let d = decide(&app, &[], at("2026-12-01T10:05:00Z"), &ui());
        assert_eq!(d.create, None);
        assert_eq!(d.status.schedule_state, ScheduleState::FailedValidation);
        let reason = d.status.reason.clone().unwrap();
        assert!(reason.contains(want), "{reason}");
        assert_eq!(d.notes.len(), 1);
        assert!(d.notes[0].warning);
        assert_eq!(d.requeue_after, None);
        let d = decide(&after(app, &d), &[], at("2026-12-01T10:06:00Z"), &ui());
        assert!(d.notes.is_empty(), "reported once");
    }
    let mut app = scheduled(json!({}));
    app.metadata.name = Some("a".repeat(MAX_SCHEDULED_NAME_LEN + 1));
    let d = decide(&app, &[], at("2026-12-01T10:05:00Z"), &ui());
    assert!(d.status.reason.unwrap().contains("room for a run's suffix"));
    app.metadata.name = Some("a".repeat(MAX_SCHEDULED_NAME_LEN));
    let d = decide(&app, &[], at("2026-12-01T10:05:00Z"), &ui());
    assert!(spec::validate(&crate::scheduled::run::run_application(&app, d.create.unwrap().1)).is_ok());
}

#[test]
fn every_duration_counts_from_the_previous_run() {
    let app = scheduled(json!({"schedule": "@every 90s"}));
    let d = decide(&app, &[], at("2026-12-01T10:01:30Z"), &ui());
    assert_eq!(d.create.as_ref().unwrap().1, at("2026-12-01T10:01:30Z"));
    assert_eq!(d.status.next_run, Some(Time(at("2026-12-01T10:03:00Z"))));
}

#[test]
fn a_run_made_by_a_reconcile_whose_status_was_lost_is_not_made_again() {
    // 10:01's run exists, but the status still says nothing ran (its write lost a race).
    let app = scheduled(json!({"concurrencyPolicy": "Forbid"}));
    let made = [run("nightly-1796119260", "2026-12-01T10:01:00Z", RunOutcome::Active)];
    let d = decide(&app, &made, at("2026-12-01T10:01:02Z"), &ui());
    assert_eq!(d.create, None);
    assert_eq!(d.status.reason, None, "not waiting for itself");
    assert_eq!(d.status.last_run, Some(Time(at("2026-12-01T10:01:00Z"))));
    assert_eq!(d.status.last_run_name.as_deref(), Some("nightly-1796119260"));
    assert_eq!(d.status.active_run_names, ["nightly-1796119260"]);
    assert_eq!(d.status.next_run, Some(Time(at("2026-12-01T10:02:00Z"))));
}
