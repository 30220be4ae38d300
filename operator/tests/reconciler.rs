//! Reconciler tests against a fake API server at the HTTP level (see `support`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use ember_operator::crd::{AppState, ExecutorState};
use kube::runtime::controller::Action;
use serde_json::json;
use support::{Harness, application, base_spec};

const PODS: &str = "/api/v1/namespaces/jobs/pods";
const APP: &str = "/apis/ember.dev/v1alpha1/namespaces/jobs/sparkapplications/sumsq";
const STATUS: &str = "/apis/ember.dev/v1alpha1/namespaces/jobs/sparkapplications/sumsq/status";
const SERVICES: &str = "/api/v1/namespaces/jobs/services";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/jobs/events";

fn env_value(pod: &k8s_openapi::api::core::v1::Pod, name: &str) -> Option<String> {
    pod.spec.as_ref().unwrap().containers[0]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// Submits and brings the driver to Running with `instances` executors.
async fn running(instances: i32) -> Harness {
    let h = Harness::new(application("sumsq", base_spec(instances)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    assert_eq!(h.state(), "RUNNING");
    h
}

#[tokio::test]
async fn first_submission_creates_service_and_driver_only() {
    let h = Harness::new(application("sumsq", base_spec(2)));
    let (action, requests) = h.reconcile_counting().await;
    assert_eq!(
        requests,
        [
            format!("GET {APP}"),
            format!("GET {PODS}"),
            format!("POST {SERVICES}"),
            format!("POST {SERVICES}"),
            format!("POST {PODS}"),
            format!("PATCH {STATUS}"),
            format!("POST {EVENTS}"),
        ]
    );
    assert_eq!(h.pod_names(), ["sumsq-driver"], "no executors before the driver runs");
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Submitted);
    assert_eq!(status.submission_attempts, 1);
    assert_eq!(status.execution_attempts, 0);
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.driver_info.pod_name.as_deref(), Some("sumsq-driver"));
    // The UI Service (kubeflow's `<app>-ui-svc`), at the cluster IP the API server gave it.
    assert_eq!(status.driver_info.web_ui_service_name.as_deref(), Some("sumsq-ui-svc"));
    assert_eq!(status.driver_info.web_ui_port, Some(4040));
    let ui = h.cluster.lock().unwrap().services["sumsq-ui-svc"].clone();
    let ip = ui.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert_eq!(status.driver_info.web_ui_address, Some(format!("{ip}:4040")));
    let ui_spec = ui.spec.unwrap();
    assert_eq!(ui_spec.selector.unwrap()["spark-role"], "driver");
    assert_eq!(ui_spec.ports.unwrap()[0].name.as_deref(), Some("spark-driver-ui-port"));
    assert_eq!(status.conditions[0].type_, "Submitted");
    assert_eq!(h.event_reasons(), ["SparkApplicationSubmitted"]);
    // Requeued at the driver start timeout so a stuck driver is noticed without events.
    assert_eq!(action, Action::requeue(Duration::from_secs(120)));

    let driver = h.pod("sumsq-driver");
    assert_eq!(env_value(&driver, "EMBER_ROLE").as_deref(), Some("driver"));
    // A second reconcile while the driver is pending changes nothing.
    let (_, requests) = h.reconcile_counting().await;
    assert_eq!(requests, [format!("GET {APP}"), format!("GET {PODS}")]);
}

#[tokio::test]
async fn executors_are_created_once_the_driver_runs() {
    let h = Harness::new(application("sumsq", base_spec(3)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    let (_, requests) = h.reconcile_counting().await;
    assert_eq!(
        requests,
        [
            format!("GET {APP}"),
            format!("GET {PODS}"),
            format!("POST {PODS}"),
            format!("POST {PODS}"),
            format!("POST {PODS}"),
            format!("PATCH {STATUS}"),
            format!("POST {EVENTS}"),
        ]
    );
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Running);
    assert_eq!(status.execution_attempts, 1);
    assert_eq!(status.running_executors, 3);
    assert_eq!(status.last_executor_id, 3);
    let exec = h.pod("sumsq-exec-2");
    assert_eq!(env_value(&exec, "EMBER_EXECUTOR_ID").as_deref(), Some("2"));
    assert_eq!(env_value(&exec, "EMBER_DRIVER_URL").as_deref(), Some("http://sumsq-driver-svc.jobs.svc:7078"));
    assert_eq!(env_value(&exec, "EMBER_EXECUTOR_MEMORY_MB").as_deref(), Some("512"));
}

#[tokio::test]
async fn failed_and_deleted_executors_are_replaced_with_new_ids() {
    let h = running(2).await;
    h.set_phase("sumsq-exec-1", "Running", None);
    h.set_phase("sumsq-exec-2", "Failed", Some((137, "OOMKilled", "")));
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.executor_state["sumsq-exec-2"], ExecutorState::Failed);
    assert_eq!(status.executor_state["sumsq-exec-3"], ExecutorState::Pending);
    assert_eq!(status.executor_failures, 1);
    assert_eq!(status.running_executors, 2);
    assert!(h.pod_names().contains(&"sumsq-exec-3".to_string()));

    // A pod deleted under the operator (kubectl delete pod) counts as failed too.
    h.remove_pod("sumsq-exec-1");
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.executor_state["sumsq-exec-1"], ExecutorState::Failed);
    assert_eq!(status.executor_state["sumsq-exec-4"], ExecutorState::Pending);
    assert_eq!(status.executor_failures, 2);
    assert_eq!(env_value(&h.pod("sumsq-exec-4"), "EMBER_EXECUTOR_ID").as_deref(), Some("4"));
    let reasons = h.event_reasons();
    assert_eq!(reasons.iter().filter(|r| *r == "ExecutorFailed").count(), 2);
    assert_eq!(reasons.iter().filter(|r| *r == "ExecutorReplaced").count(), 2);

    // Past the limit (3 in the harness), failed executors are no longer replaced.
    for id in [3, 4] {
        h.set_phase(&format!("sumsq-exec-{id}"), "Failed", Some((1, "Error", "")));
    }
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.executor_failures, 4);
    assert_eq!(status.last_executor_id, 4, "no replacement past the limit");
    assert!(h.event_reasons().contains(&"ExecutorReplacementLimit".to_string()));
}

#[tokio::test]
async fn driver_success_completes_and_removes_executors() {
    let h = running(2).await;
    h.set_phase("sumsq-driver", "Succeeded", Some((0, "Completed", "")));
    let (_, requests) = h.reconcile_counting().await;
    assert_eq!(
        requests,
        [
            format!("GET {APP}"),
            format!("GET {PODS}"),
            format!("PATCH {STATUS}"),
            format!("DELETE {PODS}"),
            format!("POST {EVENTS}"),
        ]
    );
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Completed);
    assert_eq!(status.termination_time.unwrap().0, support::t0());
    assert_eq!(status.running_executors, 0);
    assert_eq!(h.pod_names(), ["sumsq-driver"], "the driver stays for its log");
    // Nothing more to do afterwards.
    let (action, requests) = h.reconcile_counting().await;
    assert_eq!(requests, [format!("GET {APP}"), format!("GET {PODS}")]);
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn failure_is_retried_with_backoff_then_fails() {
    let mut spec = base_spec(1);
    spec["restartPolicy"] = json!({"type": "OnFailure", "onFailureRetries": 1, "onFailureRetryInterval": 10});
    let h = Harness::new(application("sumsq", spec));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Failed", Some((3, "Error", "panicked at job.rs:7: boom")));
    let (action, requests) = h.reconcile_counting().await;
    // The status (with the driver's message) is written before the pods are deleted.
    let patch = requests.iter().position(|r| *r == format!("PATCH {STATUS}")).unwrap();
    let delete = requests.iter().position(|r| *r == format!("DELETE {PODS}")).unwrap();
    assert!(patch < delete, "{requests:?}");
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::PendingRerun);
    let message = status.application_state.error_message.unwrap();
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("boom"), "{message}");
    assert_eq!(status.execution_failures, 1);
    assert!(h.pod_names().is_empty());
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));

    // Before the backoff has passed nothing is submitted.
    h.advance(9);
    let (action, requests) = h.reconcile_counting().await;
    assert_eq!(requests, [format!("GET {APP}"), format!("GET {PODS}")]);
    assert_eq!(action, Action::requeue(Duration::from_secs(1)));
    h.advance(1);
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Submitted);
    assert_eq!(status.submission_attempts, 2);

    // The second failure exhausts the retries.
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    assert_eq!(h.app().status.unwrap().execution_attempts, 2);
    h.set_phase("sumsq-driver", "Failed", Some((1, "Error", "second failure")));
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Failed);
    assert!(status.application_state.error_message.unwrap().contains("second failure"));
    assert_eq!(h.pod_names(), ["sumsq-driver"]);
    let reasons = h.event_reasons();
    assert!(reasons.contains(&"SparkApplicationRunFailed".to_string()));
    assert!(reasons.contains(&"SparkApplicationPendingRerun".to_string()));
    assert_eq!(reasons.last().unwrap(), "SparkApplicationFailed");
}

#[tokio::test]
async fn invalid_spec_fails_with_the_field_and_creates_no_pods() {
    let mut spec = base_spec(2);
    spec["executor"]["memory"] = json!("lots");
    let h = Harness::new(application("sumsq", spec));
    let (action, requests) = h.reconcile_counting().await;
    assert_eq!(
        requests,
        [format!("GET {APP}"), format!("GET {PODS}"), format!("PATCH {STATUS}"), format!("POST {EVENTS}")]
    );
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Failed);
    let message = status.application_state.error_message.unwrap();
    assert!(message.contains("spec.executor.memory"), "{message}");
    assert!(h.pod_names().is_empty());
    assert_eq!(h.event_reasons(), ["InvalidSpec"]);
    assert_eq!(action, Action::await_change());
    // Stable: no rewrite, no new events.
    let (_, requests) = h.reconcile_counting().await;
    assert_eq!(requests, [format!("GET {APP}"), format!("GET {PODS}")]);
}

#[tokio::test]
async fn a_restarted_operator_does_not_resubmit_a_running_application() {
    let first = running(2).await;
    first.set_phase("sumsq-exec-1", "Running", None);
    first.set_phase("sumsq-exec-2", "Running", None);
    first.reconcile().await;
    let cluster = first.cluster.clone();
    drop(first);

    let restarted = Harness::with_cluster(cluster);
    let (_, requests) = restarted.reconcile_counting().await;
    assert_eq!(requests, [format!("GET {APP}"), format!("GET {PODS}")], "only observes");
    let status = restarted.app().status.unwrap();
    assert_eq!(status.submission_attempts, 1);
    assert_eq!(status.last_executor_id, 2);
}

#[tokio::test]
async fn driver_stuck_in_image_pull_fails_after_the_start_timeout() {
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.reconcile().await;
    h.set_waiting("sumsq-driver", "ImagePullBackOff", "Back-off pulling image \"nope:1\"");
    h.advance(60);
    let (action, _) = h.reconcile_counting().await;
    assert_eq!(h.state(), "SUBMITTED");
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    h.advance(60);
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Failed);
    let message = status.application_state.error_message.unwrap();
    assert!(message.contains("did not start within 120s"), "{message}");
    assert!(message.contains("ImagePullBackOff"), "{message}");
}

#[tokio::test]
async fn a_transient_api_error_does_not_advance_the_status() {
    let h = Harness::new(application("sumsq", base_spec(2)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.cluster.lock().unwrap().fail_pod_apply_named = Some("sumsq-exec-2".into());
    let err = h.try_reconcile().await.unwrap_err();
    assert!(err.to_string().contains("create_executor_pod"), "{err}");
    let first = ember_operator::reconciler::error_policy(Arc::new(h.app()), &err, h.ctx.clone());
    let second = ember_operator::reconciler::error_policy(Arc::new(h.app()), &err, h.ctx.clone());
    assert_eq!((first, second), (Action::requeue(Duration::from_secs(2)), Action::requeue(Duration::from_secs(4))));
    assert!(h.ctx.metrics.encode().contains(r#"ember_operator_reconcile_errors_total{error="create_executor_pod"} 2"#));
    assert_eq!(h.state(), "SUBMITTED", "nothing recorded for a half-done step");

    // The retry decides the same again; executor 1 exists already and is this
    // application's, so it is kept as it is.
    h.cluster.lock().unwrap().fail_pod_apply_named = None;
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Running);
    assert_eq!(status.last_executor_id, 2);
    assert_eq!(status.execution_attempts, 1);
    assert_eq!(h.pod_names(), ["sumsq-driver", "sumsq-exec-1", "sumsq-exec-2"]);
    assert!(h.ctx.failures.lock().unwrap().is_empty(), "a success resets the backoff");
}

#[tokio::test]
async fn rejected_submission_ends_in_submission_failed() {
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.cluster.lock().unwrap().reject_pod_apply =
        Some((422, "Pod \"sumsq-driver\" is invalid: spec.containers[0].image: Required value".into()));
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::SubmissionFailed);
    assert!(status.application_state.error_message.unwrap().contains("is invalid"));
    assert_eq!(h.event_reasons(), ["SparkApplicationSubmissionFailed"]);
}

#[tokio::test]
async fn ttl_deletes_the_application_after_the_end() {
    let mut spec = base_spec(1);
    spec["timeToLiveSeconds"] = json!(60);
    let h = Harness::new(application("sumsq", spec));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Succeeded", Some((0, "Completed", "")));
    let (action, _) = h.reconcile_counting().await;
    assert_eq!(h.state(), "COMPLETED");
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    h.advance(30);
    let (action, requests) = h.reconcile_counting().await;
    assert_eq!(requests, [format!("GET {APP}"), format!("GET {PODS}")]);
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    h.advance(30);
    let (_, requests) = h.reconcile_counting().await;
    assert!(
        requests.contains(&"DELETE /apis/ember.dev/v1alpha1/namespaces/jobs/sparkapplications/sumsq".to_string()),
        "{requests:?}"
    );
    assert!(!h.app_exists());
    assert!(h.pod_names().is_empty());
}

#[tokio::test]
async fn suspend_deletes_pods_and_resume_submits_again() {
    let h = running(1).await;
    let mut app = h.app();
    app.spec.suspend = true;
    app.metadata.generation = Some(2);
    h.cluster.lock().unwrap().store_app(app);
    h.reconcile().await;
    assert_eq!(h.state(), "SUSPENDED");
    assert!(h.pod_names().is_empty());
    let mut app = h.app();
    app.spec.suspend = false;
    app.metadata.generation = Some(3);
    h.cluster.lock().unwrap().store_app(app);
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Submitted);
    assert_eq!(status.submission_attempts, 2);
    assert_eq!(status.observed_generation, Some(3));
}

/// API requests per submission, by phase, for growing executor counts: everything but
/// the executor pod applies is constant. Printed for docs/BENCHMARKS.md (Operator).
#[tokio::test]
async fn api_requests_per_submission_are_constant_apart_from_executor_pods() {
    let mut rows = Vec::new();
    let mut reconciles = 0u32;
    let started = std::time::Instant::now();
    for instances in [1, 4, 16, 64] {
        reconciles += 4;
        let h = Harness::new(application("sumsq", base_spec(instances)));
        let (_, submit) = h.reconcile_counting().await;
        h.set_phase("sumsq-driver", "Running", None);
        let (_, start) = h.reconcile_counting().await;
        for id in 1..=instances {
            h.set_phase(&format!("sumsq-exec-{id}"), "Running", None);
        }
        let (_, steady) = h.reconcile_counting().await;
        h.set_phase("sumsq-driver", "Succeeded", Some((0, "Completed", "")));
        let (_, end) = h.reconcile_counting().await;
        let executor_applies = start.iter().filter(|r| **r == format!("POST {PODS}")).count();
        assert_eq!(executor_applies, instances as usize);
        // The application, the pod list, the headless and UI Services, the driver pod, the
        // status, the event.
        assert_eq!(submit.len(), 7, "{submit:?}");
        assert_eq!(start.len() - executor_applies, 4, "{start:?}");
        assert_eq!(end.len(), 5, "{end:?}");
        rows.push((instances, submit.len(), start.len(), steady.len(), end.len()));
    }
    let per_reconcile = started.elapsed() / reconciles;
    println!("executors | submit | driver running | steady | completion | total");
    for (n, submit, start, steady, end) in rows {
        println!("{n} | {submit} | {start} | {steady} | {end} | {}", submit + start + steady + end);
    }
    // Includes the in-process fake API server and JSON (de)serialization on both sides.
    println!("mean wall time per reconcile: {per_reconcile:?}");
}

/// kubeflow's application metrics, under kubeflow's names with a namespace label.
#[tokio::test]
async fn kubeflow_application_metrics_count_submissions_runs_and_their_times() {
    let mut spec = base_spec(1);
    spec["restartPolicy"] = json!({"type": "OnFailure", "onFailureRetries": 1, "onFailureRetryInterval": 1});
    let h = Harness::new(application("sumsq", spec));
    h.reconcile().await;
    h.advance(3);
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    h.advance(10);
    h.set_phase("sumsq-driver", "Failed", Some((1, "Error", "boom")));
    h.reconcile().await;
    h.advance(1);
    h.reconcile().await;
    assert_eq!(h.state(), "SUBMITTED");
    // The second run completes before the operator sees it running.
    h.advance(20);
    h.set_phase("sumsq-driver", "Succeeded", Some((0, "Completed", "")));
    h.reconcile().await;
    assert_eq!(h.state(), "COMPLETED");
    let text = h.ctx.metrics.encode();
    for line in [
        r#"spark_application_count_total{namespace="jobs"} 1"#,
        r#"spark_application_submit_count_total{namespace="jobs"} 2"#,
        r#"spark_application_failure_count_total{namespace="jobs"} 1"#,
        r#"spark_application_success_count_total{namespace="jobs"} 1"#,
        r#"spark_application_start_latency_seconds_sum{namespace="jobs"} 3.0"#,
        r#"spark_application_start_latency_seconds_count{namespace="jobs"} 1"#,
        r#"spark_application_failure_execution_time_seconds_sum{namespace="jobs"} 13.0"#,
        r#"spark_application_success_execution_time_seconds_sum{namespace="jobs"} 20.0"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}
